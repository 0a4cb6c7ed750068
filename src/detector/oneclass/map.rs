//! The per-location anomaly map: patch distances on the feature grid, stretched to the input
//! size (bilinear) and smoothed with a Gaussian (PatchCore's sigma of 4 pixels), and how it is
//! drawn over an image with fixed colour limits, so that a normal image looks calm instead of
//! having its own small differences stretched over the whole colour table.

use anyhow::Result;
use image::RgbImage;

use crate::explain::colormap::{entry_for, Colormap};
use crate::explain::heatmap::Heatmap;
use crate::explain::overlay::blend;
use crate::explain::resize::imresize_bicubic;

use super::features::bilinear_taps;

/// `grid` x `grid` patch scores as a `side` x `side` map, blurred with a Gaussian of `sigma` pixels.
pub fn anomaly_map(patch_scores: &[f32], grid: usize, side: usize, sigma: f32) -> Heatmap {
    assert_eq!(patch_scores.len(), grid * grid, "one score per grid cell");
    let taps: Vec<(usize, usize, f32)> = (0..side).map(|i| bilinear_taps(i, grid, side)).collect();
    let mut values = vec![0f32; side * side];
    for (y, &(ya, yb, wy)) in taps.iter().enumerate() {
        for (x, &(xa, xb, wx)) in taps.iter().enumerate() {
            let at = |r: usize, c: usize| patch_scores[r * grid + c];
            let top = at(ya, xa) * (1.0 - wx) + at(ya, xb) * wx;
            let bottom = at(yb, xa) * (1.0 - wx) + at(yb, xb) * wx;
            values[y * side + x] = top * (1.0 - wy) + bottom * wy;
        }
    }
    if sigma > 0.0 {
        gaussian_blur(&mut values, side, sigma);
    }
    Heatmap {
        height: side,
        width: side,
        values,
    }
}

/// [`anomaly_map`] along one side as a row-major `side x grid` matrix `A` (the stretch, then
/// the blur: both linear and separable): the map of patch scores `X` is `A X A^T`, for graphs
/// that compute it as products.
pub(crate) fn anomaly_map_matrix(grid: usize, side: usize, sigma: f32) -> Vec<f32> {
    let mut stretch = vec![0f64; side * grid];
    for (i, row) in stretch.chunks_exact_mut(grid).enumerate() {
        let (a, b, w) = bilinear_taps(i, grid, side);
        row[a] += f64::from(1.0 - w);
        row[b] += f64::from(w);
    }
    if sigma <= 0.0 {
        return stretch.into_iter().map(|v| v as f32).collect();
    }
    let (kernel, radius) = gaussian_kernel(sigma);
    let mut matrix = vec![0f64; side * grid];
    for (y, row) in matrix.chunks_exact_mut(grid).enumerate() {
        for (k, &weight) in kernel.iter().enumerate() {
            let source = mirror(y as isize + k as isize - radius, side);
            for (m, s) in row
                .iter_mut()
                .zip(&stretch[source * grid..(source + 1) * grid])
            {
                *m += f64::from(weight) * s;
            }
        }
    }
    matrix.into_iter().map(|v| v as f32).collect()
}

/// The normalised Gaussian of `sigma`, truncated at 4 sigma, and its radius.
fn gaussian_kernel(sigma: f32) -> (Vec<f32>, isize) {
    let radius = (4.0 * sigma).round() as isize;
    let mut kernel: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= total);
    (kernel, radius)
}

/// Index `i` of a line of `n`, mirrored at the ends as scipy's 'reflect':
/// ... 1 0 | 0 1 ... n-1 | n-1 n-2 ...
fn mirror(i: isize, n: usize) -> usize {
    let n = n as isize;
    let period = 2 * n;
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - 1 - m }) as usize
}

/// Separable Gaussian blur of a square plane, truncated at 4 sigma, edges mirrored (scipy's
/// `gaussian_filter` defaults, which PatchCore uses).
fn gaussian_blur(values: &mut [f32], side: usize, sigma: f32) {
    let (kernel, radius) = gaussian_kernel(sigma);
    let mirror = |i: isize| mirror(i, side);
    let mut tmp = vec![0f32; values.len()];
    for y in 0..side {
        for x in 0..side {
            tmp[y * side + x] = kernel
                .iter()
                .enumerate()
                .map(|(k, w)| w * values[y * side + mirror(x as isize + k as isize - radius)])
                .sum();
        }
    }
    for y in 0..side {
        for x in 0..side {
            values[y * side + x] = kernel
                .iter()
                .enumerate()
                .map(|(k, w)| w * tmp[mirror(y as isize + k as isize - radius) * side + x])
                .sum();
        }
    }
}

/// `map` over `image` (resized to it), coloured with fixed limits: 0 takes the colormap's first
/// colour, the threshold its middle, twice the threshold and above its last.
pub fn draw_over(
    image: &RgbImage,
    map: &Heatmap,
    threshold: f32,
    colormap: Colormap,
    alpha: f32,
) -> Result<RgbImage> {
    let (w, h) = image.dimensions();
    let full = imresize_bicubic(map, h as usize, w as usize)?;
    let table = colormap.table();
    let top = (2.0 * threshold).max(f32::MIN_POSITIVE);
    let mut heat = RgbImage::new(w, h);
    for (pixel, &v) in heat.pixels_mut().zip(&full.values) {
        let t = if v.is_finite() {
            (v / top).clamp(0.0, 1.0)
        } else {
            1.0
        };
        *pixel = table[entry_for(t)];
    }
    blend(image, &heat, alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_a_constant_and_peaks_where_the_patch_is() {
        let flat = anomaly_map(&[3.0; 16], 4, 32, 4.0);
        assert!(flat.values.iter().all(|&v| (v - 3.0).abs() < 1e-4));
        let mut scores = vec![0.0; 16];
        scores[4 + 3] = 1.0; // row 1, column 3
        let map = anomaly_map(&scores, 4, 32, 2.0);
        let peak = map
            .values
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        let (row, col) = (peak / 32, peak % 32);
        assert!((8..16).contains(&row) && col >= 24, "peak at {row}, {col}");
    }
}
