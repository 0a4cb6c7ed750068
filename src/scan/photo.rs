//! Reading a photo the way it is meant to be seen: decoded with the dataset loader's checks and
//! limits, then turned upright by its EXIF orientation (cameras store portrait photos sideways).

use std::io::Cursor;
use std::path::Path;

use anyhow::{Context, Result};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::data::decode::decode_rgb;

/// The photo at `path` as 8-bit RGB, upright.
pub fn load_upright(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let image = decode_rgb(&bytes, path)?;
    let orientation = orientation(&bytes);
    if orientation == Orientation::NoTransforms {
        return Ok(image);
    }
    let mut dynamic = DynamicImage::ImageRgb8(image);
    dynamic.apply_orientation(orientation);
    Ok(dynamic.into_rgb8())
}

/// The EXIF orientation, or none when the file has no (readable) EXIF data: a damaged tag must
/// not make an otherwise good photo unreadable.
fn orientation(bytes: &[u8]) -> Orientation {
    let read = || -> Option<Orientation> {
        let reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .ok()?;
        reader.into_decoder().ok()?.orientation().ok()
    };
    read().unwrap_or(Orientation::NoTransforms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::jpeg::JpegEncoder;
    use image::{ExtendedColorType, ImageEncoder, Rgb};

    /// A big-endian TIFF block with one IFD entry: Orientation (0x0112), SHORT, `value`.
    fn exif_orientation(value: u16) -> Vec<u8> {
        let mut b = b"MM\0\x2a\0\0\0\x08".to_vec();
        b.extend_from_slice(&1u16.to_be_bytes());
        b.extend_from_slice(&0x0112u16.to_be_bytes());
        b.extend_from_slice(&3u16.to_be_bytes());
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&value.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&0u32.to_be_bytes());
        b
    }

    #[test]
    fn exif_orientation_turns_the_photo_upright() {
        // 40 x 24, stored sideways: a red block in the stored top-left corner.
        let stored = RgbImage::from_fn(40, 24, |x, y| {
            if x < 10 && y < 8 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        let dir = tempfile::tempdir().unwrap();
        for (tag, size, red_at) in [
            (1u16, (40, 24), (2, 2)),
            // 6: the camera was turned clockwise; rotating 90 degrees clockwise shows it upright,
            // which brings the stored top-left corner to the top-right.
            (6, (24, 40), (21, 2)),
            (3, (40, 24), (37, 21)),
        ] {
            let mut bytes = Vec::new();
            let mut encoder = JpegEncoder::new_with_quality(&mut bytes, 95);
            encoder.set_exif_metadata(exif_orientation(tag)).unwrap();
            encoder
                .write_image(stored.as_raw(), 40, 24, ExtendedColorType::Rgb8)
                .unwrap();
            let path = dir.path().join(format!("photo-{tag}.jpg"));
            std::fs::write(&path, &bytes).unwrap();
            let upright = load_upright(&path).unwrap();
            assert_eq!(upright.dimensions(), size, "orientation {tag}");
            let px = upright.get_pixel(red_at.0, red_at.1).0;
            assert!(px[0] > 200 && px[2] < 60, "orientation {tag}: {px:?}");
        }
        let err = load_upright(&dir.path().join("missing.jpg")).unwrap_err();
        assert!(format!("{err:#}").contains("missing.jpg"));
    }
}
