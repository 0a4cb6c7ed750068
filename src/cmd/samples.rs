//! `crackscope samples`: the seed's first figure, random images of a dataset with their class names.

use std::path::Path;

use anyhow::Result;
use image::RgbImage;

use crate::cli::SamplesArgs;
use crate::data::samples::sample_grid;
use crate::imaging::terminal::{print_inline, Printed};

pub fn samples(args: &SamplesArgs) -> Result<()> {
    let grid = sample_grid(&args.data, args.count, args.seed)?;
    match &args.out {
        Some(out) => save_png(&grid, out),
        None => show(&grid, None),
    }
}

/// Writes a PNG and says so.
pub fn save_png(image: &RgbImage, path: &Path) -> Result<()> {
    crate::imaging::write_png(image, path)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Prints the picture inline on a terminal; elsewhere says where to find it instead.
pub fn show(image: &RgbImage, saved_at: Option<&Path>) -> Result<()> {
    match print_inline(image, None)? {
        Printed::Inline { .. } => Ok(()),
        Printed::NotATerminal => {
            match saved_at {
                Some(path) => println!("(not a terminal: picture saved as {})", path.display()),
                None => {
                    println!("(not a terminal: no picture printed; use --out FILE.png to save it)")
                }
            }
            Ok(())
        }
    }
}
