//! Scanning with a one-class model: the anomaly map takes Grad-CAM's place.
//!
//! The windows are those of a classifier's scan (the model's input size on the 16-pixel grid).
//! As for a classifier, one pass over the whole photo (in tiles, [`cell_scores`]) serves every
//! window however much they overlap: the network runs once per pixel, and each patch of the photo
//! (8 pixels for fire5) is looked up in the bank once, not once per window holding it. A window's
//! score is the largest distance among its inner patches ([`Scored::inner_score`]): those are
//! exactly what the window alone gives them, where the patches nearer its border see the photo
//! beyond it; the model's scan threshold was chosen on the same inner scores of its validation
//! images. A cell of the map (16 pixels) holds the mean distance of the patches on it.
//!
//! Model files written before the scan threshold existed scan window by window against their
//! image threshold, as they always did.
//!
//! Scores are distances without a natural scale, so windows and map carry `s / (s + t)` for a
//! score `s` and the threshold `t`: it ranks as the score does, lies in [0, 1) and is 0.5 exactly
//! at the threshold, so the scan's default `--threshold 0.5` is the model's own threshold and the
//! colormap's middle marks it. Each window also carries its raw `score`.

use anyhow::{ensure, Result};
use image::RgbImage;
use rayon::prelude::*;

use super::features::{cell_scores, TileScorer, TILE_PIXELS};
use super::map::{Alignment, CrackMap, WindowScore};
use crate::core::windows::{grid, Window, CELL};
use crate::detector::oneclass::model::{inner_patches, Scored};
use crate::detector::oneclass::OneClassModel;

/// Patches looked up in the bank per task.
const QUERY_CHUNK: usize = 1024;
/// Windows scored per call of the model when scanning window by window (bounds the crops and
/// feature maps held at once).
const CHUNK: usize = 64;

/// The scan's scale for a one-class score `score` under threshold `threshold`: 0.5 at it.
pub fn normalised(score: f32, threshold: f32) -> f32 {
    let t = threshold.max(f32::MIN_POSITIVE);
    let s = score.max(0.0);
    if s.is_finite() {
        s / (s + t)
    } else {
        1.0
    }
}

/// A one-class model as a tile scorer: each 16-pixel cell gets the distances to the bank of the
/// `per_axis` x `per_axis` patches on it (row-major).
struct PatchDistances<'a> {
    model: &'a OneClassModel,
    per_axis: usize,
}

impl<'a> PatchDistances<'a> {
    fn new(model: &'a OneClassModel) -> Result<PatchDistances<'a>> {
        let stride = model.extractor.patch_stride();
        ensure!(
            CELL as usize % stride == 0,
            "a one-class model whose patches are {stride} pixels apart cannot scan on the 16-pixel grid"
        );
        Ok(PatchDistances {
            model,
            per_axis: CELL as usize / stride,
        })
    }
}

impl TileScorer for PatchDistances<'_> {
    fn per_cell(&self) -> usize {
        self.per_axis * self.per_axis
    }

    fn tile_values(
        &self,
        pixels: Vec<f32>,
        size: (usize, usize),
        (rows, cols): (usize, usize),
    ) -> Result<Vec<f32>> {
        let k = self.per_axis;
        let patch_cols = cols * k;
        let patches = self
            .model
            .extractor
            .tile_patches(pixels, size, (rows * k, patch_cols))?;
        let bank = &self.model.bank;
        let distances: Vec<f32> = patches
            .par_chunks(QUERY_CHUNK * bank.dim())
            .flat_map_iter(|queries| bank.nearest_squared(queries))
            .map(f32::sqrt)
            .collect();
        // From rows of patches to cells of k x k patches.
        let mut out = Vec::with_capacity(distances.len());
        for i in 0..rows {
            for j in 0..cols {
                for a in 0..k {
                    let from = (i * k + a) * patch_cols + j * k;
                    out.extend_from_slice(&distances[from..from + k]);
                }
            }
        }
        Ok(out)
    }
}

/// Scans one photo with a one-class model at `stride`: in one shared pass with the model's
/// scan threshold, window by window without one, or where a tile's patches would not be exactly
/// a window's ([`Extractor::tiles_match_windows`]: two layers at an input size whose maps round
/// apart), so that a window's score is always the inner score its threshold was chosen on.
///
/// [`Extractor::tiles_match_windows`]: crate::detector::oneclass::features::Extractor::tiles_match_windows
pub fn scan_photo_one_class(
    model: &OneClassModel,
    photo: &RgbImage,
    stride: u32,
) -> Result<CrackMap> {
    match model.scan_threshold {
        Some(_) if model.extractor.tiles_match_windows() => {
            scan_shared(model, photo, stride, TILE_PIXELS)
        }
        _ => scan_window_by_window(model, photo, stride),
    }
}

/// The shared pass, in tiles of at most `tile_pixels`.
pub(super) fn scan_shared(
    model: &OneClassModel,
    photo: &RgbImage,
    stride: u32,
    tile_pixels: usize,
) -> Result<CrackMap> {
    let size = model.settings().input_size;
    let (width, height) = photo.dimensions();
    let windows = grid(width, height, size, stride)?;
    let scorer = PatchDistances::new(model)?;
    let k = scorer.per_axis;
    // A window's patches are those it has alone: its own patch grid (28 at 227 px, 27 at 224),
    // which the 16-pixel cells from its first one cover.
    let window_patches = model.extractor.grid();
    let n = window_patches.div_ceil(k);
    let first = |start: u32| Alignment::Nearest.first_cell(start);
    let (map_rows, map_cols) = (
        height.div_ceil(CELL) as usize,
        width.div_ceil(CELL) as usize,
    );
    let rows = windows
        .iter()
        .map(|w| first(w.y) + n)
        .fold(map_rows, usize::max);
    let cols = windows
        .iter()
        .map(|w| first(w.x) + n)
        .fold(map_cols, usize::max);
    let distances = cell_scores(&scorer, photo, rows, cols, tile_pixels)?;
    let threshold = model.threshold_for_scans();
    let patch = |r: usize, c: usize| distances.at(r / k, c / k)[(r % k) * k + c % k];
    // The inner ones of a window's patches, as `Scored::inner_score` takes them.
    let inner = inner_patches(window_patches, model.extractor.edge_patches());
    let scored = windows
        .iter()
        .map(|w| {
            let (r0, c0) = (first(w.y) * k, first(w.x) * k);
            let score = inner
                .clone()
                .flat_map(|r| inner.clone().map(move |c| (r0 + r, c0 + c)))
                .map(|(r, c)| patch(r, c))
                .fold(0f32, f32::max);
            WindowScore {
                x: w.x,
                y: w.y,
                size: w.size,
                probability: normalised(score, threshold),
                score: Some(score),
            }
        })
        .collect();
    let per_cell = distances.per_cell as f32;
    let cells = (0..map_rows)
        .flat_map(|i| (0..map_cols).map(move |j| (i, j)))
        .map(|(i, j)| normalised(distances.at(i, j).iter().sum::<f32>() / per_cell, threshold))
        .collect();
    Ok(CrackMap {
        width,
        height,
        windows: scored,
        rows: map_rows,
        cols: map_cols,
        cells,
        descriptors: Default::default(),
    })
}

/// The scan of a model without a scan threshold, or whose tiles are not exactly its windows:
/// each window cut out and scored alone (its inner score against the scan threshold where the
/// model has one, else its image score against the image threshold). A cell's value is the mean,
/// over the windows containing its centre, of their patch distances there (bilinear on each
/// window's patch grid).
fn scan_window_by_window(model: &OneClassModel, photo: &RgbImage, stride: u32) -> Result<CrackMap> {
    let size = model.settings().input_size;
    let (width, height) = photo.dimensions();
    let windows = grid(width, height, size, stride)?;
    let (rows, cols) = (
        height.div_ceil(CELL) as usize,
        width.div_ceil(CELL) as usize,
    );
    let mut sum = vec![0f32; rows * cols];
    let mut count = vec![0u32; rows * cols];
    let threshold = model.threshold_for_scans();
    let edge = model.extractor.edge_patches();
    let window_score = |s: &Scored| match model.scan_threshold {
        Some(_) => s.inner_score(edge),
        None => s.score,
    };
    let mut scored = Vec::with_capacity(windows.len());
    // A cell's centre, kept inside the photo (the last cell may reach past its edge).
    let centre = |j: usize, side: u32| (j as u32 * CELL + CELL / 2).min(side - 1);
    for (w, s) in windows
        .iter()
        .zip(score_windows_alone(model, photo, &windows)?)
    {
        let g = s.grid;
        // Patch-grid coordinate of a window pixel position (align_corners = false).
        let to_grid = |at: u32, start: u32| {
            let u = (at - start) as f32 + 0.5;
            (u * g as f32 / w.size as f32 - 0.5).clamp(0.0, (g - 1) as f32)
        };
        let inside = |start: u32, side: u32, cells: usize| {
            (0..cells).filter(move |&j| {
                let c = centre(j, side);
                c >= start && c < start + w.size
            })
        };
        for i in inside(w.y, height, rows) {
            let gy = to_grid(centre(i, height), w.y);
            let (y0, ty) = (gy.floor() as usize, gy.fract());
            let y1 = (y0 + 1).min(g - 1);
            for j in inside(w.x, width, cols) {
                let gx = to_grid(centre(j, width), w.x);
                let (x0, tx) = (gx.floor() as usize, gx.fract());
                let x1 = (x0 + 1).min(g - 1);
                let at = |r: usize, c: usize| s.patch_scores[r * g + c];
                let top = at(y0, x0) + tx * (at(y0, x1) - at(y0, x0));
                let bottom = at(y1, x0) + tx * (at(y1, x1) - at(y1, x0));
                sum[i * cols + j] += top + ty * (bottom - top);
                count[i * cols + j] += 1;
            }
        }
        let score = window_score(&s);
        scored.push(WindowScore {
            x: w.x,
            y: w.y,
            size: w.size,
            probability: normalised(score, threshold),
            score: Some(score),
        });
    }
    let cells = sum
        .iter()
        .zip(&count)
        .map(|(&s, &c)| {
            if c == 0 {
                0.0
            } else {
                normalised(s / c as f32, threshold)
            }
        })
        .collect();
    Ok(CrackMap {
        width,
        height,
        windows: scored,
        rows,
        cols,
        cells,
        descriptors: Default::default(),
    })
}

/// Each window cut out and scored alone, as `predict` scores an image: what the shared pass is
/// measured against.
pub fn score_windows_alone(
    model: &OneClassModel,
    photo: &RgbImage,
    windows: &[Window],
) -> Result<Vec<Scored>> {
    let mut out = Vec::with_capacity(windows.len());
    for chunk in windows.chunks(CHUNK) {
        let crops: Vec<RgbImage> = chunk
            .iter()
            .map(|w| image::imageops::crop_imm(photo, w.x, w.y, w.size, w.size).to_image())
            .collect();
        let results = model.score(&crops)?;
        ensure!(
            results.len() == chunk.len(),
            "the one-class model scored {} of {} windows",
            results.len(),
            chunk.len()
        );
        out.extend(results);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_is_half_at_the_threshold_and_keeps_the_order() {
        assert_eq!(normalised(2.0, 2.0), 0.5);
        assert_eq!(normalised(0.0, 2.0), 0.0);
        assert!(normalised(1.0, 2.0) < normalised(1.5, 2.0));
        assert!(normalised(100.0, 2.0) < 1.0);
        assert_eq!(normalised(f32::INFINITY, 2.0), 1.0);
        assert_eq!(normalised(1.0, 0.0), 1.0);
    }
}
