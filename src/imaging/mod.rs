//! Pictures for people: labelled image tiles, PNG files and printing images inline in a terminal.

pub mod chart;
pub mod grid;
pub mod palette;
pub mod picture_log;
pub mod protocols;
pub mod sixel;
pub mod terminal;
pub mod text;

use std::path::Path;

use anyhow::{Context, Result};
use image::{EncodableLayout, ImageBuffer, PixelWithColorType};

/// Writes a PNG (colour or grey) atomically: a finished picture or nothing, never half a file.
pub fn write_png<P>(image: &ImageBuffer<P, Vec<P::Subpixel>>, path: &Path) -> Result<()>
where
    P: PixelWithColorType,
    [P::Subpixel]: EncodableLayout,
{
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .context("cannot encode PNG")?;
    crate::core::fsutil::write_atomic(path, &bytes)
}
