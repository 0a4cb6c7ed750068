//! `crackscope samples`: the seed's first figure, random images of a dataset with their class names.

use std::path::Path;

use anyhow::{Context, Result};
use image::RgbImage;
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cli::SamplesArgs;
use crate::data::decode::load_rgb;
use crate::data::scan::scan;
use crate::imaging::grid::{grid_cols, labelled_tile};
use crate::imaging::terminal::{print_inline, Printed};

pub fn samples(args: &SamplesArgs) -> Result<()> {
    let grid = sample_grid(&args.data, args.count, args.seed)?;
    match &args.out {
        Some(out) => save_png(&grid, out),
        None => show(&grid, None),
    }
}

/// `count` random images of the dataset at `root` (fewer if it has fewer), tiled with their labels.
pub fn sample_grid(root: &Path, count: usize, seed: u64) -> Result<RgbImage> {
    let dataset = scan(root)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let chosen = sample(
        &mut rng,
        dataset.items.len(),
        count.min(dataset.items.len()),
    );
    let mut tiles = Vec::with_capacity(chosen.len());
    for index in chosen {
        let item = &dataset.items[index];
        match load_rgb(&item.path) {
            Ok(image) => tiles.push((image, dataset.classes[item.label].clone())),
            Err(e) => eprintln!("warning: skipping {}: {e:#}", item.path.display()),
        }
    }
    anyhow::ensure!(
        !tiles.is_empty(),
        "none of the chosen images of {} could be read",
        root.display()
    );
    // The seed's figure: MATLAB's imtile of 227 px images, square-ish grid, no gaps.
    let tile = tiles
        .iter()
        .map(|(image, _)| image.width().max(image.height()))
        .max()
        .unwrap_or(227)
        .min(227);
    Ok(labelled_tile(&tiles, grid_cols(tiles.len()), tile, 2))
}

/// Writes a PNG and says so.
pub fn save_png(image: &RgbImage, path: &Path) -> Result<()> {
    write_png(image, path)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Writes a PNG atomically.
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
