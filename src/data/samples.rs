//! The seed's first figure: random labelled tiles of a dataset.

use anyhow::Result;
use image::RgbImage;
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::core::warn::warn;
use crate::data::dataset::{discover, DatasetRoots};
use crate::data::decode::load_rgb;
use crate::imaging::grid::{grid_cols, labelled_tile};

/// `count` random images of the dataset at `root` (one folder or several merged; fewer if it has
/// fewer), tiled with their labels.
pub fn sample_grid<R: DatasetRoots + ?Sized>(
    root: &R,
    count: usize,
    seed: u64,
) -> Result<RgbImage> {
    let dataset = discover(root)?;
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
            Err(e) => warn(format!("skipping {}: {e:#}", item.path.display())),
        }
    }
    anyhow::ensure!(
        !tiles.is_empty(),
        "none of the chosen images of {} could be read",
        dataset.root.display()
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
