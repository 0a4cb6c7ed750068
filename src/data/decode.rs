//! Any supported image file -> 8-bit RGB at the network's input size.
//!
//! The format is taken from the file's content, never its extension, because datasets collected from
//! the web are full of PNGs named `.jpg`. Headers are checked against fixed limits before any pixel
//! buffer exists, so a hostile or corrupt header claiming 100000x100000 pixels is a clear error rather
//! than a multi-gigabyte allocation.

use std::io::Cursor;
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

/// Largest accepted width or height. Camera photos are well below it; anything above is almost
/// certainly a corrupt header.
pub const MAX_SIDE: u32 = 16_384;

/// Largest decoded pixel buffer (and decoder working memory) for one image. Several images decode in
/// parallel, so this bounds peak memory per worker thread.
pub const MAX_DECODED_BYTES: u64 = 512 * 1024 * 1024;

/// The encodings crackscope reads (the image crate is built with exactly these).
const SUPPORTED: [ImageFormat; 5] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::Bmp,
    ImageFormat::Tiff,
    ImageFormat::WebP,
];

/// Decodes an in-memory image file to 8-bit RGB. `path` only names the file in errors.
///
/// Grayscale is replicated to three channels, 16-bit samples are rounded to 8 bits, palettes are
/// expanded, and alpha is composited on black (a fully transparent pixel becomes black whatever
/// colour it hides, so invisible content cannot influence the classifier).
pub fn decode_rgb(bytes: &[u8], path: &Path) -> Result<RgbImage> {
    decode_bytes(bytes).with_context(|| format!("cannot decode image {}", path.display()))
}

/// Reads and decodes an image file; see [`decode_rgb`].
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode_rgb(&bytes, path)
}

/// Resizes to `size` x `size`, ignoring aspect ratio as MATLAB's `augmentedImageDatastore` does.
///
/// The filter is bilinear (image's `Triangle`), whose support widens when shrinking, so downscaled
/// images are anti-aliased like MATLAB's `imresize`. Images already at the size are copied unchanged.
pub fn resize_exact(img: &RgbImage, size: u32) -> RgbImage {
    if img.dimensions() == (size, size) {
        return img.clone();
    }
    imageops::resize(img, size, size, FilterType::Triangle)
}

/// Checks everything that can be checked without decoding pixels (format, header, size limits, and
/// for JPEG that the data is complete) and returns the dimensions. The error says what is wrong
/// without naming the file (callers add that).
pub(crate) fn probe(bytes: &[u8]) -> Result<(u32, u32)> {
    let (decoder, _) = open_decoder(bytes)?;
    Ok(decoder.dimensions())
}

/// Decodes fully; the error says what is wrong without naming the file.
pub(crate) fn decode_bytes(bytes: &[u8]) -> Result<RgbImage> {
    let (decoder, format) = open_decoder(bytes)?;
    let image = DynamicImage::from_decoder(decoder)
        .map_err(|e| anyhow!("corrupt or truncated {format:?} data: {e}"))?;
    Ok(to_rgb8_on_black(image))
}

/// Guesses the format from the content and parses the header, then checks the claimed size before
/// anything is allocated for pixels.
fn open_decoder(bytes: &[u8]) -> Result<(impl ImageDecoder + '_, ImageFormat)> {
    ensure!(!bytes.is_empty(), "empty file (0 bytes)");
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .context("cannot read the file header")?;
    let format = match reader.format() {
        Some(format) if SUPPORTED.contains(&format) => format,
        Some(format) => {
            bail!("{format:?} images are not supported (use JPEG, PNG, BMP, TIFF or WebP)")
        }
        None => bail!("not an image: content is not JPEG, PNG, BMP, TIFF or WebP"),
    };
    // Width and height are checked below instead of through `Limits`, so the message can quote them.
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    // image's errors already include their cause, so only the text is kept (no repeated chain).
    let decoder = reader
        .into_decoder()
        .map_err(|e| anyhow!("bad {format:?} header: {e}"))?;
    let (width, height) = decoder.dimensions();
    ensure!(
        width > 0 && height > 0,
        "{format:?} header claims an empty {width}x{height} image"
    );
    ensure!(
        width <= MAX_SIDE && height <= MAX_SIDE,
        "{format:?} header claims {width}x{height} pixels, more than the limit of {MAX_SIDE} a side"
    );
    ensure!(
        decoder.total_bytes() <= MAX_DECODED_BYTES,
        "{format:?} image of {width}x{height} pixels ({:?}) needs {} MiB, more than the limit of {} MiB",
        decoder.color_type(),
        decoder.total_bytes() >> 20,
        MAX_DECODED_BYTES >> 20
    );
    // The JPEG decoder pads a cut-off file with grey instead of failing, so check for the end.
    ensure!(
        format != ImageFormat::Jpeg || jpeg_reaches_end_marker(bytes),
        "truncated JPEG: the data stops before the end-of-image marker"
    );
    Ok((decoder, format))
}

/// Walks a JPEG's marker structure to see whether it reaches the end-of-image marker (FF D9), as
/// every complete file does. Segment lengths are followed, so the end markers of embedded thumbnails
/// (inside APP segments) do not count; in entropy-coded data, stuffed `FF 00` bytes and restart
/// markers are stepped over. Bytes after the end marker (camera trailers) are allowed.
fn jpeg_reaches_end_marker(bytes: &[u8]) -> bool {
    let mut pos = 2; // After the start-of-image marker the format guess matched.
    loop {
        let Some(offset) = bytes
            .get(pos..)
            .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
        else {
            return false;
        };
        pos += offset;
        let Some(&code) = bytes.get(pos + 1) else {
            return false;
        };
        match code {
            0xD9 => return true,
            // Stuffing, fill, restart markers, TEM and SOI: no length field follows.
            0x00 | 0xFF | 0xD0..=0xD8 | 0x01 => pos += 1,
            _ => {
                let Some(&[high, low]) = bytes.get(pos + 2..pos + 4) else {
                    return false;
                };
                pos += 2 + usize::from(u16::from_be_bytes([high, low]));
            }
        }
    }
}

/// Converts any colour type to 8-bit RGB, compositing alpha on black.
fn to_rgb8_on_black(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (width, height) = rgba.dimensions();
    let mut rgb = RgbImage::new(width, height);
    for (out, px) in rgb.pixels_mut().zip(rgba.pixels()) {
        let alpha = u16::from(px[3]);
        for c in 0..3 {
            // Rounded a * c / 255.
            out[c] = ((u16::from(px[c]) * alpha + 127) / 255) as u8;
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_support::{absurd_png, encode, pattern};
    use image::{ImageBuffer, Luma, Rgba, RgbaImage};

    fn decode(bytes: &[u8]) -> Result<RgbImage> {
        decode_rgb(bytes, Path::new("fixture.img"))
    }

    #[test]
    fn lossless_formats_round_trip_exactly() {
        let img = pattern(31, 17, 5);
        for format in [
            ImageFormat::Png,
            ImageFormat::Bmp,
            ImageFormat::Tiff,
            ImageFormat::WebP,
        ] {
            let decoded = decode(&encode(&img, format)).unwrap();
            assert_eq!(decoded, img, "{format:?} changed the pixels");
        }
    }

    #[test]
    fn jpeg_decodes_close_to_the_original() {
        let img = RgbImage::from_pixel(32, 24, image::Rgb([200, 40, 90]));
        let decoded = decode(&encode(&img, ImageFormat::Jpeg)).unwrap();
        assert_eq!(decoded.dimensions(), (32, 24));
        let px = decoded.get_pixel(10, 10);
        for (got, want) in px.0.iter().zip([200u8, 40, 90]) {
            assert!(
                got.abs_diff(want) <= 4,
                "jpeg pixel {px:?} too far from [200, 40, 90]"
            );
        }
    }

    #[test]
    fn format_comes_from_content_not_extension() {
        let img = pattern(8, 8, 1);
        let decoded = decode_rgb(&encode(&img, ImageFormat::Png), Path::new("photo.jpg")).unwrap();
        assert_eq!(decoded, img);
    }

    #[test]
    fn gray16_is_scaled_to_8_bits_in_all_channels() {
        let gray: ImageBuffer<Luma<u16>, Vec<u16>> =
            ImageBuffer::from_fn(4, 2, |x, _| Luma([(x as u16) * 20_000]));
        let mut bytes = Cursor::new(Vec::new());
        gray.write_to(&mut bytes, ImageFormat::Png).unwrap();
        let decoded = decode(bytes.get_ref()).unwrap();
        for x in 0..4 {
            let v = (f64::from(x * 20_000) / 257.0).round() as u8;
            assert_eq!(decoded.get_pixel(x, 1).0, [v, v, v]);
        }
    }

    #[test]
    fn alpha_is_composited_on_black() {
        let rgba = RgbaImage::from_fn(3, 1, |x, _| Rgba([200, 100, 50, [255, 128, 0][x as usize]]));
        let mut bytes = Cursor::new(Vec::new());
        rgba.write_to(&mut bytes, ImageFormat::Png).unwrap();
        let decoded = decode(bytes.get_ref()).unwrap();
        assert_eq!(decoded.get_pixel(0, 0).0, [200, 100, 50]);
        assert_eq!(decoded.get_pixel(1, 0).0, [100, 50, 25]);
        assert_eq!(decoded.get_pixel(2, 0).0, [0, 0, 0]);
    }

    #[test]
    fn bad_inputs_are_errors_naming_file_and_problem() {
        let cases: [(&[u8], &str); 3] = [
            (b"", "empty file"),
            (b"this is a text file, not a photo", "not an image"),
            (b"GIF89a\x01\x00\x01\x00", "Gif images are not supported"),
        ];
        for (bytes, problem) in cases {
            let message = format!(
                "{:#}",
                decode_rgb(bytes, Path::new("dir/bad.jpg")).unwrap_err()
            );
            assert!(message.contains("dir/bad.jpg"), "{message}");
            assert!(message.contains(problem), "{message}");
        }
    }

    #[test]
    fn absurd_header_is_rejected_before_allocation() {
        let bytes = absurd_png();
        let message = format!("{:#}", decode(&bytes).unwrap_err());
        assert!(message.contains("100000x100000"), "{message}");
        assert!(probe(&bytes).is_err());
    }

    #[test]
    fn truncated_jpeg_is_detected() {
        let bytes = encode(&pattern(64, 64, 3), ImageFormat::Jpeg);
        assert_eq!(probe(&bytes).unwrap(), (64, 64));
        for cut in [bytes.len() / 2, bytes.len() - 2] {
            let message = format!("{:#}", decode(&bytes[..cut]).unwrap_err());
            assert!(
                message.contains("truncated JPEG"),
                "cut at {cut}: {message}"
            );
        }
        let mut trailer = bytes.clone();
        trailer.extend_from_slice(b"camera trailer after the end marker");
        assert!(decode(&trailer).is_ok());
    }

    #[test]
    fn end_marker_check_skips_thumbnails_and_stuffing() {
        // SOI, an APP1 segment hiding a thumbnail's FF D9, then scan data with FF 00 and RST0.
        let app1 = [0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0x12, 0x34];
        let scan = [
            0xFF, 0xDA, 0x00, 0x02, 0x11, 0xFF, 0x00, 0x22, 0xFF, 0xD0, 0x33,
        ];
        let body: Vec<u8> = [&[0xFF, 0xD8][..], &app1, &scan].concat();
        assert!(
            !jpeg_reaches_end_marker(&body),
            "thumbnail end marker must not count"
        );
        assert!(jpeg_reaches_end_marker(
            &[&body[..], &[0xFF, 0xD9]].concat()
        ));
        // A segment length running past the end of the data.
        assert!(!jpeg_reaches_end_marker(&[
            0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xFF, 0x00
        ]));
    }

    #[test]
    fn resize_exact_makes_a_square_and_skips_same_size() {
        let img = pattern(40, 10, 2);
        let resized = resize_exact(&img, 20);
        assert_eq!(resized.dimensions(), (20, 20));
        let uniform = RgbImage::from_pixel(50, 30, image::Rgb([9, 99, 199]));
        assert!(resize_exact(&uniform, 20)
            .pixels()
            .all(|p| p.0 == [9, 99, 199]));
        assert_eq!(resize_exact(&img, 40).dimensions(), (40, 40));
        let square = pattern(16, 16, 4);
        assert_eq!(resize_exact(&square, 16), square);
    }
}
