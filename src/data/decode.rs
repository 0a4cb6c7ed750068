//! Any supported image file -> 8-bit RGB at the network's input size.
//!
//! The format is taken from the file's content, never its extension, because datasets collected from
//! the web are full of PNGs named `.jpg`. Headers are checked against fixed limits before any pixel
//! buffer exists, so a hostile or corrupt header claiming 100000x100000 pixels is a clear error rather
//! than a multi-gigabyte allocation.
//!
//! Pixels are PIL's `Image.open(p).convert('RGB')`, the loader behind torchvision's `ImageFolder`,
//! so that a model moved between PyTorch and crackscope sees the same inputs: JPEG through
//! libjpeg-turbo ([`jpeg`]), the other formats through `image`, then PIL's conversion rules.
//! EXIF orientation is not applied (PIL's `open` does not either); [`exif_orientation`] and
//! [`apply_orientation`] are there for callers that want upright photos.

pub mod jpeg;

use std::io::Cursor;
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use image::imageops::{self, FilterType};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, Rgb, RgbImage};

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
/// As PIL's `convert('RGB')`: grayscale is replicated to three channels, palettes are expanded,
/// alpha and transparency are dropped (the colour under a transparent pixel is kept), 16-bit
/// colour keeps the high byte, and 16-bit grayscale (PIL's `I;16`) is clipped at 255.
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
    if format == ImageFormat::Jpeg {
        // The header and size were checked by `image`'s parser; libjpeg-turbo decodes the pixels.
        drop(decoder);
        return jpeg::decode_rgb(bytes);
    }
    let image = DynamicImage::from_decoder(decoder)
        .map_err(|e| anyhow!("corrupt or truncated {format:?} data: {e}"))?;
    let gray16 = format == ImageFormat::Png && png_is_16_bit_gray(bytes);
    Ok(to_rgb8_as_pil(image, gray16))
}

/// The EXIF orientation a file asks for (`NoTransforms` when it has none). Decoding never applies
/// it, as PIL's `open` does not; see [`apply_orientation`].
#[cfg(test)]
pub fn exif_orientation(bytes: &[u8]) -> Result<Orientation> {
    let (mut decoder, format) = open_decoder(bytes)?;
    decoder
        .orientation()
        .map_err(|e| anyhow!("unreadable {format:?} orientation metadata: {e}"))
}

/// Turns a decoded image upright as its EXIF orientation says (PIL's `ImageOps.exif_transpose`).
pub fn apply_orientation(image: RgbImage, orientation: Orientation) -> RgbImage {
    let mut image = DynamicImage::ImageRgb8(image);
    image.apply_orientation(orientation);
    image.into_rgb8()
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

/// Whether a PNG's header says 16-bit grayscale, which PIL opens as mode `I;16` even when a tRNS
/// chunk (which `image` expands to an alpha channel) makes one grey level transparent.
fn png_is_16_bit_gray(bytes: &[u8]) -> bool {
    // Signature (8), IHDR length and type (8), width and height (8), then bit depth and colour type.
    bytes.get(16 - 4..16) == Some(b"IHDR") && bytes.get(24..26) == Some(&[16, 0])
}

/// Converts any colour type to 8-bit RGB with the rules of PIL's `convert('RGB')`.
///
/// PIL drops alpha rather than compositing it, reads 16-bit colour PNG/TIFF samples through its
/// `;16B` raw modes (the high byte, truncated), and converts `I;16` grayscale by clipping each
/// value to 0..=255 (so most of a full-range 16-bit image comes out white). `gray16` says the
/// file is such grayscale even if `image` added an alpha channel for its transparency.
fn to_rgb8_as_pil(image: DynamicImage, gray16: bool) -> RgbImage {
    let (width, height) = (image.width(), image.height());
    let from_gray16 = |values: &[u16], step: usize| {
        let mut rgb = RgbImage::new(width, height);
        for (out, v) in rgb.pixels_mut().zip(values.chunks_exact(step)) {
            *out = Rgb([v[0].min(255) as u8; 3]);
        }
        rgb
    };
    let high_bytes = |values: &[u16], step: usize, gray: bool| {
        let mut rgb = RgbImage::new(width, height);
        for (out, v) in rgb.pixels_mut().zip(values.chunks_exact(step)) {
            let high = |c: usize| (v[if gray { 0 } else { c }] >> 8) as u8;
            *out = Rgb([high(0), high(1), high(2)]);
        }
        rgb
    };
    match image {
        DynamicImage::ImageLuma16(gray) => from_gray16(gray.as_raw(), 1),
        DynamicImage::ImageLumaA16(gray) if gray16 => from_gray16(gray.as_raw(), 2),
        DynamicImage::ImageLumaA16(gray) => high_bytes(gray.as_raw(), 2, true),
        DynamicImage::ImageRgb16(rgb) => high_bytes(rgb.as_raw(), 3, false),
        DynamicImage::ImageRgba16(rgba) => high_bytes(rgba.as_raw(), 4, false),
        DynamicImage::ImageRgba8(rgba) => {
            let mut rgb = RgbImage::new(width, height);
            for (out, px) in rgb.pixels_mut().zip(rgba.pixels()) {
                *out = Rgb([px[0], px[1], px[2]]);
            }
            rgb
        }
        // 8-bit grey (with or without alpha) is replicated and its alpha dropped; float images
        // (TIFF only) keep image's scaling of 0..=1 to 0..=255.
        other => other.into_rgb8(),
    }
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
    fn gray16_is_clipped_at_255_like_pil() {
        let values = [0u16, 100, 255, 256, 40_000, 65_535];
        let gray: ImageBuffer<Luma<u16>, Vec<u16>> =
            ImageBuffer::from_fn(6, 1, |x, _| Luma([values[x as usize]]));
        let mut bytes = Cursor::new(Vec::new());
        gray.write_to(&mut bytes, ImageFormat::Png).unwrap();
        let decoded = decode(bytes.get_ref()).unwrap();
        let got: Vec<u8> = decoded.pixels().map(|p| p[0]).collect();
        assert_eq!(got, [0, 100, 255, 255, 255, 255]);
        assert!(decoded.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    }

    #[test]
    fn rgb16_keeps_the_high_byte_like_pil() {
        let rgb: ImageBuffer<Rgb<u16>, Vec<u16>> =
            ImageBuffer::from_fn(2, 1, |x, _| Rgb([[255, 40_000][x as usize], 511, 65_535]));
        let mut bytes = Cursor::new(Vec::new());
        rgb.write_to(&mut bytes, ImageFormat::Png).unwrap();
        let decoded = decode(bytes.get_ref()).unwrap();
        assert_eq!(decoded.get_pixel(0, 0).0, [0, 1, 255]);
        assert_eq!(decoded.get_pixel(1, 0).0, [156, 1, 255]);
    }

    #[test]
    fn alpha_is_dropped_like_pil() {
        let rgba = RgbaImage::from_fn(3, 1, |x, _| Rgba([200, 100, 50, [255, 128, 0][x as usize]]));
        let mut bytes = Cursor::new(Vec::new());
        rgba.write_to(&mut bytes, ImageFormat::Png).unwrap();
        let decoded = decode(bytes.get_ref()).unwrap();
        for x in 0..3 {
            assert_eq!(decoded.get_pixel(x, 0).0, [200, 100, 50]);
        }
    }

    /// The expected pixels recorded with PIL by scripts/pil_pixel_hashes.py.
    fn pil_hashes() -> serde_json::Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pil_hashes.json");
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    /// Width, height and BLAKE3 of the RGB bytes, as the script hashes PIL's output.
    fn pixel_hash(path: &Path) -> (u32, u32, blake3::Hash) {
        let rgb = load_rgb(path).unwrap_or_else(|e| panic!("{e:#}"));
        (rgb.width(), rgb.height(), blake3::hash(rgb.as_raw()))
    }

    /// Names of the `recorded` images under `root` whose decoded pixels differ from PIL's.
    fn differing_from_pil(root: &Path, recorded: &serde_json::Value) -> Vec<String> {
        let recorded = recorded.as_object().expect("an object of images");
        assert!(!recorded.is_empty());
        let mut differing = Vec::new();
        for (name, want) in recorded {
            let (width, height, hash) = pixel_hash(&root.join(name));
            let got = (
                u64::from(width),
                u64::from(height),
                hash.to_hex().to_string(),
            );
            let want = (
                want["width"].as_u64().unwrap(),
                want["height"].as_u64().unwrap(),
                want["blake3"].as_str().unwrap().to_string(),
            );
            if got != want {
                differing.push(format!("{name}: got {got:?}, PIL {want:?}"));
            }
        }
        differing
    }

    #[test]
    fn fixtures_decode_to_pils_pixels() {
        // Baseline, progressive, 4:2:0, 4:2:2, 4:4:4, restart markers, grey, CMYK; PNGs with
        // alpha, palettes with transparency, 16-bit grey and colour, low bit depths; TIFF, WebP.
        let hashes = pil_hashes();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/decode");
        let fixtures = &hashes["fixtures"];
        for variant in [
            "progressive_420.jpg",
            "cmyk.jpg",
            "gray16.png",
            "palette_trns.png",
        ] {
            assert!(fixtures.get(variant).is_some(), "{variant} not recorded");
        }
        let differing = differing_from_pil(&root, fixtures);
        assert!(differing.is_empty(), "{differing:#?}");
    }

    #[test]
    fn shared_photos_decode_to_pils_pixels() {
        let Some(data) = crate::core::testdata::shared_data("") else {
            return;
        };
        let hashes = pil_hashes();
        let differing = differing_from_pil(&data, &hashes["shared_files"]);
        assert!(differing.is_empty(), "{differing:#?}");
        for (folder, want) in hashes["shared_sets"].as_object().unwrap() {
            let (files, hash) = folder_hash(&data, folder);
            assert_eq!(files, want["files"].as_u64().unwrap(), "images in {folder}");
            assert_eq!(
                hash.to_hex().as_str(),
                want["blake3"].as_str().unwrap(),
                "pixels of the {files} images of {folder} differ from PIL's"
            );
        }
    }

    /// One hash over a folder's images in sorted order, as scripts/pil_pixel_hashes.py makes it.
    fn folder_hash(data: &Path, folder: &str) -> (u64, blake3::Hash) {
        use rayon::prelude::*;
        let mut names = Vec::new();
        let mut pending = vec![data.join(folder)];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let lower = path.to_string_lossy().to_lowercase();
                if path.is_dir() {
                    pending.push(path);
                } else if [".jpg", ".jpeg", ".png"].iter().any(|e| lower.ends_with(e)) {
                    let name = path.strip_prefix(data).unwrap().to_string_lossy();
                    names.push(name.replace(std::path::MAIN_SEPARATOR, "/"));
                }
            }
        }
        names.sort();
        let digests: Vec<_> = names
            .par_iter()
            .map(|n| pixel_hash(&data.join(n)))
            .collect();
        let mut combined = blake3::Hasher::new();
        for (name, (width, height, digest)) in names.iter().zip(&digests) {
            combined.update(name.as_bytes()).update(b"\0");
            combined
                .update(&width.to_le_bytes())
                .update(&height.to_le_bytes());
            combined.update(digest.as_bytes());
        }
        (names.len() as u64, combined.finalize())
    }

    #[test]
    fn exif_orientation_is_reported_but_not_applied() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/decode/exif_orientation_6.jpg");
        let bytes = std::fs::read(&path).unwrap();
        let stored = decode(&bytes).unwrap();
        assert_eq!(stored.dimensions(), (67, 45));
        let orientation = exif_orientation(&bytes).unwrap();
        assert_eq!(orientation, Orientation::Rotate90);
        let upright = apply_orientation(stored.clone(), orientation);
        assert_eq!(upright.dimensions(), (45, 67));
        // Rotated clockwise: the stored top-left pixel ends at the top-right.
        assert_eq!(upright.get_pixel(44, 0), stored.get_pixel(0, 0));
        let plain = encode(&pattern(8, 8, 1), ImageFormat::Png);
        assert_eq!(exif_orientation(&plain).unwrap(), Orientation::NoTransforms);
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
