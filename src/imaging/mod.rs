//! Pictures for people: labelled image tiles, PNG files and printing images inline in a terminal.

pub mod grid;
pub mod sixel;
pub mod terminal;
pub mod text;

use std::path::Path;

use anyhow::{Context, Result};
use image::RgbImage;

/// Writes a PNG atomically (a finished picture or nothing, never half a file).
pub fn write_png(image: &RgbImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .context("cannot encode PNG")?;
    crate::fsutil::write_atomic(path, &bytes)
}
