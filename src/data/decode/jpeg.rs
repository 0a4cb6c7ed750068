//! JPEG pixels as libjpeg-turbo gives them, then converted to RGB as PIL does.
//!
//! PIL, torchvision, OpenCV and MATLAB all decode JPEG with libjpeg(-turbo)'s defaults: the accurate
//! integer IDCT (`JDCT_ISLOW`) and "fancy" (triangle-filtered) chroma upsampling. Other decoders
//! round differently by a few levels per pixel, which moves probabilities and Grad-CAM maps of a
//! model trained elsewhere. mozjpeg is libjpeg-turbo's fork with its decoder unchanged; it is built
//! without its nasm SIMD code unless the `jpeg-simd` feature asks for it (the pixels are the same:
//! libjpeg-turbo keeps its SIMD code bit-exact with its C code).

use std::panic::{catch_unwind, AssertUnwindSafe};

use anyhow::{anyhow, bail, ensure, Result};
use image::RgbImage;
use mozjpeg::{ColorSpace, DctMethod, Decompress};

/// Decodes a complete JPEG file to RGB: PIL's `Image.open(p).convert('RGB')`, pixel for pixel.
///
/// Three-component files come out as libjpeg converts them to RGB, grayscale is replicated, and
/// four-component (CMYK or YCCK) files are read as Adobe's inverted CMYK and converted with PIL's
/// formula. The error says what is wrong without naming the file (callers add that).
pub(crate) fn decode_rgb(bytes: &[u8]) -> Result<RgbImage> {
    // libjpeg reports fatal errors by unwinding out of the C code (the mozjpeg crate's error
    // manager), so the decoder runs inside catch_unwind and its message becomes an error.
    match catch_unwind(AssertUnwindSafe(|| decode_unwinding(bytes))) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("unknown libjpeg error");
            bail!(
                "corrupt or unsupported JPEG data: {}",
                message.trim_start_matches("libjpeg fatal error: ")
            )
        }
    }
}

/// The decoding itself; libjpeg's fatal errors unwind through it.
fn decode_unwinding(bytes: &[u8]) -> Result<RgbImage> {
    let io_error = |e: std::io::Error| anyhow!("corrupt JPEG data: {e}");
    let mut decompress = Decompress::new_mem(bytes).map_err(io_error)?;
    // libjpeg's defaults, set explicitly because they define the pixels.
    decompress.dct_method(DctMethod::IntegerSlow);
    decompress.do_fancy_upsampling(true);
    let (width, height) = decompress.size();
    let (width, height) = (
        u32::try_from(width).map_err(|_| anyhow!("JPEG width {width} is too large"))?,
        u32::try_from(height).map_err(|_| anyhow!("JPEG height {height} is too large"))?,
    );
    let source = decompress.color_space();
    let pixels = match source {
        ColorSpace::JCS_GRAYSCALE | ColorSpace::JCS_YCbCr | ColorSpace::JCS_RGB => {
            let mut started = decompress.rgb().map_err(io_error)?;
            let rgb: Vec<u8> = started.read_scanlines().map_err(io_error)?;
            started.finish().map_err(io_error)?;
            rgb
        }
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => {
            let mut started = decompress
                .to_colorspace(ColorSpace::JCS_CMYK)
                .map_err(io_error)?;
            let cmyk: Vec<u8> = started.read_scanlines().map_err(io_error)?;
            started.finish().map_err(io_error)?;
            inverted_cmyk_to_rgb(&cmyk)
        }
        other => bail!("JPEG colour space {other:?} is not supported (only grey, RGB and CMYK)"),
    };
    ensure!(
        pixels.len() == width as usize * height as usize * 3,
        "JPEG decoder returned {} bytes for {width}x{height} pixels",
        pixels.len()
    );
    RgbImage::from_raw(width, height, pixels)
        .ok_or_else(|| anyhow!("JPEG pixel buffer does not match {width}x{height}"))
}

/// PIL reads every four-component JPEG as inverted CMYK (the Adobe convention: its rawmode
/// `CMYK;I`) and converts CMYK to RGB as `r = (255 - k) - (255 - k) * c / 255`, rounded its way.
fn inverted_cmyk_to_rgb(stored: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(stored.len() / 4 * 3);
    for px in stored.chunks_exact(4) {
        let not_k = i32::from(px[3]); // 255 - k, with k = 255 - stored
        for &stored_ink in &px[..3] {
            let ink = 255 - i32::from(stored_ink);
            rgb.push((not_k - mul_div_255(ink, not_k)).clamp(0, 255) as u8);
        }
    }
    rgb
}

/// `a * b / 255` rounded as PIL's `MULDIV255` macro rounds it.
fn mul_div_255(a: i32, b: i32) -> i32 {
    let t = a * b + 128;
    ((t >> 8) + t) >> 8
}

/// The `image` crate's own JPEG decoder, which crackscope used before: kept so that `bench` can
/// compare its speed (and pixels) with libjpeg-turbo's.
pub fn decode_with_image_crate(bytes: &[u8]) -> Result<RgbImage> {
    let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
        .map_err(|e| anyhow!("corrupt JPEG data: {e}"))?;
    Ok(image.into_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_conversion_is_pils() {
        // Stored (inverted) values; expected RGB from PIL's cmyk2rgb on the un-inverted values.
        assert_eq!(inverted_cmyk_to_rgb(&[255, 255, 255, 255]), [255, 255, 255]);
        assert_eq!(inverted_cmyk_to_rgb(&[0, 0, 0, 255]), [0, 0, 0]);
        assert_eq!(inverted_cmyk_to_rgb(&[255, 255, 255, 0]), [0, 0, 0]);
        // c = 100, m = 0, y = 255, k = 55: nk = 200, 200 - 200 * 100 / 255 = 121.57 -> 122.
        assert_eq!(inverted_cmyk_to_rgb(&[155, 255, 0, 200]), [122, 200, 0]);
    }

    #[test]
    fn libjpeg_errors_become_errors_not_panics() {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10];
        bytes.extend_from_slice(&[0x00, 0x10, 0x01, 0x01, 0x11, 0x00, 0xFF, 0xD9]);
        let message = format!("{:#}", decode_rgb(&bytes).unwrap_err());
        assert!(message.contains("JPEG"), "{message}");
        let message = format!("{:#}", decode_rgb(b"not a jpeg at all").unwrap_err());
        assert!(message.contains("JPEG"), "{message}");
    }
}
