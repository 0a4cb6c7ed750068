//! Fitting a one-class model on normal images and scoring images with it.

use anyhow::{bail, Result};
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::explain::heatmap::Heatmap;

use super::bank::{coreset_size, greedy_coreset_reporting, Bank};
use super::features::{Extractor, BATCH};
use super::map::anomaly_map;
use super::threshold::Threshold;
use super::{Sampling, Settings};

/// A fitted one-class model: the feature extractor, the bank of normal patches, the threshold
/// and the names it was fitted with.
pub struct OneClassModel {
    pub extractor: Extractor,
    pub bank: Bank,
    pub threshold: Threshold,
    /// The threshold of a scan's window scores ([`Scored::inner_score`]), chosen on the same
    /// validation images by the same rule. None in model files written before scans shared one
    /// pass over each photo: those scan window by window against `threshold`.
    pub scan_threshold: Option<Threshold>,
    /// The class the bank was fitted on.
    pub normal_class: String,
    /// Every class of the data it was fitted on (the others are anomalies).
    pub classes: Vec<String>,
}

/// One image's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The largest distance of any patch to its nearest bank entry.
    pub score: f32,
    /// Every patch's distance, row-major over the `grid` x `grid` patch grid.
    pub patch_scores: Vec<f32>,
    pub grid: usize,
}

impl Scored {
    /// The largest distance among the patches at least `edge` patches inside the image's border:
    /// the score a scan's shared pass gives a window, where the patches nearer the border see the
    /// photo beyond it (see [`Extractor::edge_patches`]). An image too small to have inner patches
    /// keeps its middle one(s).
    pub fn inner_score(&self, edge: usize) -> f32 {
        let g = self.grid;
        let inner = inner_patches(g, edge);
        inner
            .clone()
            .flat_map(|r| &self.patch_scores[r * g + inner.start..r * g + inner.end])
            .copied()
            .fold(0.0, f32::max)
    }
}

/// The rows (and columns) of a `grid`-patch side at least `edge` patches inside its border; the
/// middle one or two when the side is too short for that.
pub fn inner_patches(grid: usize, edge: usize) -> std::ops::Range<usize> {
    let edge = edge.min(grid.saturating_sub(1) / 2);
    edge..grid - edge
}

/// Where fitting is, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FitStep {
    /// Features of `done` of `total` images extracted.
    Features { done: usize, total: usize },
    /// Choosing `target` bank entries from `candidates` patches.
    Coreset { candidates: usize, target: usize },
    /// `chosen` of the `target` bank entries chosen so far.
    CoresetChosen { chosen: usize, target: usize },
}

/// Fits the bank on `images` (normal ones, decoded at the settings' input size).
pub fn fit_bank(
    extractor: &Extractor,
    images: &[RgbImage],
    progress: &mut dyn FnMut(FitStep),
) -> Result<Bank> {
    let settings = extractor.settings();
    if images.len() < 2 {
        bail!(
            "one-class fitting needs at least 2 normal training images, got {}",
            images.len()
        );
    }
    let mut candidates = Candidates::new(settings.dim());
    for (c, chunk) in images.chunks(BATCH).enumerate() {
        let patches = extractor.patches(chunk)?;
        for (i, image_patches) in patches.iter().enumerate() {
            candidates.draw(settings, c * BATCH + i, images.len(), image_patches);
        }
        progress(FitStep::Features {
            done: (c * BATCH + chunk.len()).min(images.len()),
            total: images.len(),
        });
    }
    bank_from_candidates(settings, &candidates, progress)
}

/// The patches a bank is chosen from: at most `max_candidates`, drawn evenly over the images.
pub struct Candidates {
    dim: usize,
    rows: Vec<f32>,
    /// Patches of all the images, drawn or not (the coreset ratio is a fraction of them).
    patches_total: usize,
}

impl Candidates {
    pub fn new(dim: usize) -> Candidates {
        Candidates {
            dim,
            rows: Vec::new(),
            patches_total: 0,
        }
    }

    /// Draws image `index` of `images`'s share from its `patches` (seeded by the image's index,
    /// so the draw does not depend on how the images were batched).
    pub fn draw(&mut self, settings: &Settings, index: usize, images: usize, patches: &[f32]) {
        let dim = self.dim;
        let count = patches.len() / dim;
        self.patches_total += count;
        let per_image = settings.max_candidates.div_ceil(images).min(count);
        let mut rng = ChaCha8Rng::seed_from_u64(mix(settings.seed, index as u64));
        let mut picked = rand::seq::index::sample(&mut rng, count, per_image).into_vec();
        picked.sort_unstable();
        for p in picked {
            self.rows
                .extend_from_slice(&patches[p * dim..(p + 1) * dim]);
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The drawn patches, row after row.
    pub fn rows(&self) -> &[f32] {
        &self.rows
    }

    /// Patches of all the images offered, drawn or not.
    pub fn patches_total(&self) -> usize {
        self.patches_total
    }
}

/// The bank the settings choose from `candidates`: `coreset_ratio` of all patches, at most
/// `max_bank`, by greedy coreset or a seeded uniform draw.
pub fn bank_from_candidates(
    settings: &Settings,
    candidates: &Candidates,
    progress: &mut dyn FnMut(FitStep),
) -> Result<Bank> {
    bank_of(candidates, &bank_rows(settings, candidates, progress))
}

/// The bank of the candidates at `rows` (indices in the order they were drawn), in that order.
pub fn bank_of(candidates: &Candidates, rows: &[usize]) -> Result<Bank> {
    let dim = candidates.dim;
    let entries = rows
        .iter()
        .flat_map(|&i| candidates.rows[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    Bank::new(dim, entries)
}

/// Which candidates [`bank_from_candidates`] keeps, in the bank's order (indices into the
/// candidates, in the order they were drawn).
pub fn bank_rows(
    settings: &Settings,
    candidates: &Candidates,
    progress: &mut dyn FnMut(FitStep),
) -> Vec<usize> {
    let (dim, count) = (candidates.dim, candidates.len());
    let target = coreset_size(
        candidates.patches_total,
        settings.coreset_ratio,
        settings.max_bank,
    )
    .min(count);
    progress(FitStep::Coreset {
        candidates: count,
        target,
    });
    match settings.sampling {
        Sampling::Coreset => greedy_coreset_reporting(
            &candidates.rows,
            dim,
            target,
            settings.projection_dim,
            settings.seed,
            &mut |chosen, target| progress(FitStep::CoresetChosen { chosen, target }),
        ),
        Sampling::Random => {
            let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
            let mut picked = rand::seq::index::sample(&mut rng, count, target).into_vec();
            progress(FitStep::CoresetChosen {
                chosen: target,
                target,
            });
            picked.sort_unstable();
            picked
        }
    }
}

impl OneClassModel {
    /// Scores images decoded at the settings' input size.
    pub fn score(&self, images: &[RgbImage]) -> Result<Vec<Scored>> {
        score_with(&self.extractor, &self.bank, images)
    }

    /// The anomaly map of one scored image, at the input size.
    pub fn anomaly_map(&self, scored: &Scored) -> Heatmap {
        let s = self.extractor.settings();
        anomaly_map(
            &scored.patch_scores,
            scored.grid,
            s.input_size as usize,
            s.smoothing_sigma,
        )
    }

    /// What a scan's window scores are read against: the scan threshold, or the image threshold
    /// in model files written before it (they scan window by window).
    pub fn threshold_for_scans(&self) -> f32 {
        self.scan_threshold
            .as_ref()
            .unwrap_or(&self.threshold)
            .value
    }

    /// Whether a score is above the threshold.
    pub fn is_anomalous(&self, score: f32) -> bool {
        score > self.threshold.value
    }

    pub fn settings(&self) -> &Settings {
        self.extractor.settings()
    }
}

/// Scores `images` against `bank` (before a model with a threshold exists: validation).
pub fn score_with(extractor: &Extractor, bank: &Bank, images: &[RgbImage]) -> Result<Vec<Scored>> {
    let dim = bank.dim();
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(BATCH) {
        let patches = extractor.patches(chunk)?;
        out.par_extend(patches.into_par_iter().map(|p| {
            let patch_scores: Vec<f32> = bank
                .nearest_squared(&p)
                .into_iter()
                .map(f32::sqrt)
                .collect();
            let grid = ((p.len() / dim) as f64).sqrt().round() as usize;
            Scored {
                score: patch_scores.iter().copied().fold(0.0, f32::max),
                patch_scores,
                grid,
            }
        }));
    }
    Ok(out)
}

/// A seed for item `i` of a run seeded with `seed` (SplitMix64 finaliser).
fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
