//! Scanning with a one-class model: the anomaly map takes Grad-CAM's place.
//!
//! Every window (the model's input size, the same grid as a classifier's scan) is scored on its
//! own by the one-class model: its score is the largest distance of its patches to the bank of
//! normal patches, and its patch distances form its anomaly map. A cell of the photo's map (16
//! pixels, as for a classifier) holds the mean, over the windows containing its centre, of their
//! patch distances there (bilinear on each window's patch grid; PatchCore's 4-pixel smoothing is
//! finer than a cell and left out).
//!
//! Scores are distances without a natural scale, so windows and map carry `s / (s + t)` for a
//! score `s` and the model's threshold `t`: it ranks as the score does, lies in [0, 1) and is 0.5
//! exactly at the threshold, so the scan's default `--threshold 0.5` is the model's own threshold
//! and the colormap's middle marks it. Each window also carries its raw `score`.

use anyhow::{ensure, Result};
use image::RgbImage;

use super::map::{CrackMap, WindowScore};
use super::windows::{grid, CELL};
use crate::oneclass::OneClassModel;

/// Windows scored per call of the model (bounds the crops and feature maps held at once).
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

/// Scans one photo with a one-class model at `stride`.
pub fn scan_photo_one_class(
    model: &OneClassModel,
    photo: &RgbImage,
    stride: u32,
) -> Result<CrackMap> {
    let size = model.settings().input_size;
    let (width, height) = photo.dimensions();
    let windows = grid(width, height, size, stride)?;
    let (rows, cols) = (
        height.div_ceil(CELL) as usize,
        width.div_ceil(CELL) as usize,
    );
    let mut sum = vec![0f32; rows * cols];
    let mut count = vec![0u32; rows * cols];
    let threshold = model.threshold.value;
    let mut scored = Vec::with_capacity(windows.len());
    // A cell's centre, kept inside the photo (the last cell may reach past its edge).
    let centre = |j: usize, side: u32| (j as u32 * CELL + CELL / 2).min(side - 1);
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
        for (w, s) in chunk.iter().zip(&results) {
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
            scored.push(WindowScore {
                x: w.x,
                y: w.y,
                size: w.size,
                probability: normalised(s.score, threshold),
                score: Some(s.score),
            });
        }
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
    })
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
