//! From shared cell scores to what a user sees: each window's crack probability, a crack map that
//! combines the windows with their Grad-CAM maps, and that map at the photo's resolution.
//!
//! The map is kept at the resolution of relu_conv10's cells (16 pixels) and blown up bilinearly a
//! row at a time, so no full-resolution float map ever exists, even for a 100-megapixel photo.
//! Each cell's value is the mean, over the windows that contain it, of the window's crack
//! probability times its Grad-CAM map there (rescaled to [0, 1] within the window, as
//! `crackscope gradcam` draws it): high where confident windows agree the evidence lies, so the
//! map is as sharp as the cells (16 px) rather than the windows' stride.

use anyhow::Result;
use image::{GrayImage, RgbImage};
use serde::Serialize;

use super::descriptors::{self, Descriptors};
use super::features::{cell_scores, CellScores, ScanModel, TILE_PIXELS};
use crate::core::math::softmax;
use crate::core::windows::{grid, Window, CELL};
use crate::explain::heatmap::rescale;

/// How a window that does not start on the 16-pixel cell grid picks its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alignment {
    /// The cells nearest to the window (shifted at most 8 pixels); measured closest to
    /// classifying the windows one by one (see `bench`).
    #[default]
    Nearest,
    /// The cells at or left of/above the window's corner (shifted up to 15 pixels).
    Floor,
}

impl Alignment {
    /// The first cell of a window starting at pixel `start`.
    pub fn first_cell(self, start: u32) -> usize {
        match self {
            Alignment::Nearest => ((start + CELL / 2) / CELL) as usize,
            Alignment::Floor => (start / CELL) as usize,
        }
    }
}

/// One window and the crack class's probability for it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowScore {
    pub x: u32,
    pub y: u32,
    pub size: u32,
    /// The crack class's probability; for a one-class model its anomaly score on the scale
    /// `score / (score + threshold)` (0.5 at the model's threshold, see [`super::anomaly`]).
    pub probability: f32,
    /// A one-class model's anomaly score itself (absent for classifiers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
}

impl WindowScore {
    pub fn window(&self) -> Window {
        Window {
            x: self.x,
            y: self.y,
            size: self.size,
        }
    }
}

/// A photo's scan: window probabilities and the crack map at cell resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct CrackMap {
    pub width: u32,
    pub height: u32,
    pub windows: Vec<WindowScore>,
    /// Cell (i, j) covers pixels 16 j.., 16 i..; values in [0, 1].
    pub rows: usize,
    pub cols: usize,
    pub cells: Vec<f32>,
    /// Each window's descriptor, in the order of `windows` (see [`super::descriptors`]); empty
    /// where the scanner gives none (one-class models).
    pub descriptors: Descriptors,
}

/// Settings of one scan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanOptions {
    pub stride: u32,
    /// Output index of the crack class.
    pub positive: usize,
    pub alignment: Alignment,
    /// Largest tile the network runs on at once (pixels).
    pub tile_pixels: usize,
    /// What the windows' descriptors are computed from.
    pub descriptors: descriptors::Source,
}

impl ScanOptions {
    pub fn new(stride: u32, positive: usize) -> Self {
        ScanOptions {
            stride,
            positive,
            alignment: Alignment::default(),
            tile_pixels: TILE_PIXELS,
            descriptors: descriptors::Source::Shared,
        }
    }
}

/// Scans one photo: classifies every window from one shared pass and builds the crack map.
pub fn scan_photo(model: &ScanModel, photo: &RgbImage, opts: &ScanOptions) -> Result<CrackMap> {
    let (width, height) = photo.dimensions();
    let windows = grid(width, height, model.window, opts.stride)?;
    let n = ScanModel::cells_for(model.window);
    let extent = |start: u32| opts.alignment.first_cell(start) + n;
    let cols = windows.iter().map(|w| extent(w.x)).max().unwrap_or(0);
    let rows = windows.iter().map(|w| extent(w.y)).max().unwrap_or(0);
    let scores = cell_scores(model, photo, rows, cols, opts.tile_pixels)?;
    let mut map = combine(model.bias(), &scores, &windows, n, opts);
    if opts.descriptors == descriptors::Source::Alone {
        map.descriptors = model.describe_alone(photo, &windows)?;
    }
    Ok(map)
}

/// Window probabilities and the combined map from cell scores.
fn combine(
    bias: &[f32],
    scores: &CellScores,
    windows: &[Window],
    n: usize,
    opts: &ScanOptions,
) -> CrackMap {
    let classes = bias.len();
    // What follows the class scores in a cell's values: its descriptor.
    let described = scores.per_cell - classes;
    let mut descriptors = Vec::with_capacity(windows.len() * described);
    let mut descriptor = vec![0f64; described];
    let mut sum = vec![0f32; scores.rows * scores.cols];
    let mut count = vec![0u32; scores.rows * scores.cols];
    let mut scored = Vec::with_capacity(windows.len());
    let mut logits = vec![0f64; classes];
    let mut cam = vec![0f32; n * n];
    for w in windows {
        let (r0, c0) = (
            opts.alignment.first_cell(w.y),
            opts.alignment.first_cell(w.x),
        );
        logits.fill(0.0);
        descriptor.fill(0.0);
        for i in 0..n {
            for j in 0..n {
                let (s, d) = scores.at(r0 + i, c0 + j).split_at(classes);
                logits.iter_mut().zip(s).for_each(|(l, &v)| *l += v as f64);
                descriptor
                    .iter_mut()
                    .zip(d)
                    .for_each(|(a, &v)| *a += v as f64);
                cam[i * n + j] = s[opts.positive].max(0.0);
            }
        }
        descriptors.extend(descriptor.iter().map(|&a| (a / (n * n) as f64) as f32));
        let logits: Vec<f32> = logits
            .iter()
            .zip(bias)
            .map(|(&l, &b)| (l / (n * n) as f64) as f32 + b)
            .collect();
        let p = softmax(&logits)[opts.positive];
        rescale(&mut cam);
        for i in 0..n {
            for j in 0..n {
                let at = (r0 + i) * scores.cols + c0 + j;
                sum[at] += p * cam[i * n + j];
                count[at] += 1;
            }
        }
        scored.push(WindowScore {
            x: w.x,
            y: w.y,
            size: w.size,
            probability: p,
            score: None,
        });
    }
    let cells = sum
        .iter()
        .zip(&count)
        .map(|(&s, &c)| if c == 0 { 0.0 } else { s / c as f32 })
        .collect();
    let (width, height) = windows
        .last()
        .map(|w| (w.x + w.size, w.y + w.size))
        .unwrap_or((0, 0));
    CrackMap {
        width,
        height,
        windows: scored,
        rows: scores.rows,
        cols: scores.cols,
        cells,
        descriptors: Descriptors {
            values: descriptors,
        },
    }
}

/// Bilinear taps along one axis: for each pixel, the two cells around it and the second's weight.
/// Cell j's value sits at the centre of its 16 pixels (16 j + 8); beyond the outer centres the
/// edge cell's value holds.
fn taps(pixels: u32, cells: usize) -> Vec<(usize, usize, f32)> {
    (0..pixels)
        .map(|p| {
            let u = ((p as f32 + 0.5) - CELL as f32 / 2.0) / CELL as f32;
            let u = u.clamp(0.0, cells.saturating_sub(1) as f32);
            let j0 = u.floor() as usize;
            let j1 = (j0 + 1).min(cells - 1);
            (j0, j1, u - j0 as f32)
        })
        .collect()
}

impl CrackMap {
    /// Calls `row` with each row of the map at the photo's resolution, top to bottom; only one
    /// row exists at a time.
    pub fn for_each_row(&self, mut row: impl FnMut(u32, &[f32])) {
        if self.cols == 0 || self.rows == 0 {
            return;
        }
        let xs = taps(self.width, self.cols);
        let ys = taps(self.height, self.rows);
        let mut line = vec![0f32; self.width as usize];
        let cell_row = |i: usize| &self.cells[i * self.cols..(i + 1) * self.cols];
        for (y, &(i0, i1, ty)) in ys.iter().enumerate() {
            let (a, b) = (cell_row(i0), cell_row(i1));
            for (v, &(j0, j1, tx)) in line.iter_mut().zip(&xs) {
                let top = a[j0] + tx * (a[j1] - a[j0]);
                let bottom = b[j0] + tx * (b[j1] - b[j0]);
                *v = top + ty * (bottom - top);
            }
            row(y as u32, &line);
        }
    }

    /// 255 where the map reaches `threshold`, 0 elsewhere.
    pub fn mask(&self, threshold: f32) -> GrayImage {
        let mut mask = GrayImage::new(self.width, self.height);
        let width = self.width as usize;
        self.for_each_row(|y, line| {
            let start = y as usize * width;
            for (m, &v) in mask.as_mut()[start..start + width].iter_mut().zip(line) {
                *m = if v >= threshold { 255 } else { 0 };
            }
        });
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_picks_nearest_or_lower_cell() {
        assert_eq!(Alignment::Nearest.first_cell(3805), 238);
        assert_eq!(Alignment::Floor.first_cell(3805), 237);
        assert_eq!(Alignment::Nearest.first_cell(112), 7);
        assert_eq!(Alignment::Nearest.first_cell(7), 0);
    }

    #[test]
    fn pixel_rows_interpolate_between_cell_centres() {
        let map = CrackMap {
            width: 48,
            height: 16,
            windows: Vec::new(),
            rows: 1,
            cols: 3,
            cells: vec![0.0, 1.0, 0.0],
            descriptors: Default::default(),
        };
        let mut rows = Vec::new();
        map.for_each_row(|_, line| rows.push(line.to_vec()));
        assert_eq!(rows.len(), 16);
        let line = &rows[0];
        assert_eq!(line[0], 0.0);
        assert_eq!(line[7], 0.0); // left of cell 0's centre: the edge value holds
        assert!((line[23] - 0.96875).abs() < 1e-6);
        assert!((line[24] - 0.96875).abs() < 1e-6);
        let mask = map.mask(0.5);
        let row: Vec<u8> = (0..48).map(|x| mask.get_pixel(x, 5).0[0]).collect();
        let first = row.iter().position(|&m| m > 0).unwrap();
        let last = row.iter().rposition(|&m| m > 0).unwrap();
        assert_eq!((first, last), (16, 31), "{row:?}");
    }
}
