//! Reading a photo the way it is meant to be seen: decoded with the dataset loader's checks and
//! limits, then turned upright by its EXIF orientation (cameras store portrait photos sideways);
//! the photos of a folder, and the hand-drawn mask that goes with a photo (`scan --masks`,
//! `patches`).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use image::metadata::Orientation;
use image::{GrayImage, ImageDecoder, ImageReader, RgbImage};

use crate::data::dataset::IMAGE_EXTENSIONS;
use crate::data::decode::{apply_orientation, decode_rgb};

/// The photo at `path` as 8-bit RGB, upright.
pub fn load_upright(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let image = decode_rgb(&bytes, path)?;
    let orientation = orientation(&bytes);
    if orientation == Orientation::NoTransforms {
        return Ok(image);
    }
    Ok(apply_orientation(image, orientation))
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

/// Files given, and the photos of folders given (sorted by name).
pub fn photo_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("cannot read folder {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_photo_name(p))
                .collect();
            found.sort();
            ensure!(!found.is_empty(), "{} holds no photos", input.display());
            out.extend(found);
        } else if input.is_file() {
            out.push(input.clone());
        } else {
            bail!("{}: no such file or folder", input.display());
        }
    }
    Ok(out)
}

fn is_photo_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

pub fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "photo".into())
}

/// The mask in `dir` with the photo's file stem (any image format), nonzero = crack, upright.
pub fn true_mask(dir: &Path, photo: &Path, size: (u32, u32)) -> Result<GrayImage> {
    let stem = file_stem(photo);
    let candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read mask folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_photo_name(p) && file_stem(p) == stem)
        .collect();
    let Some(path) = candidates.into_iter().min() else {
        bail!(
            "no mask for {} in {} (expected a file named {stem}.png or similar)",
            photo.display(),
            dir.display()
        )
    };
    let rgb: RgbImage = load_upright(&path)?;
    ensure!(
        rgb.dimensions() == size,
        "{} is {}x{} but its photo {} is {}x{}",
        path.display(),
        rgb.width(),
        rgb.height(),
        photo.display(),
        size.0,
        size.1
    );
    let mut mask = GrayImage::new(size.0, size.1);
    for (m, px) in mask.pixels_mut().zip(rgb.pixels()) {
        m.0[0] = if px.0.iter().any(|&c| c > 0) { 255 } else { 0 };
    }
    Ok(mask)
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
