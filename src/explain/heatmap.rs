//! The low-resolution class-activation map every method produces, and MATLAB's `rescale`.

use anyhow::{ensure, Result};

/// A single-channel map in row-major order (one value per feature-map cell, or per pixel once
/// resized). Kept as plain `f32`s so that colouring, resizing and JSON output need no tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub height: usize,
    pub width: usize,
    pub values: Vec<f32>,
}

impl Heatmap {
    pub fn new(height: usize, width: usize, values: Vec<f32>) -> Result<Heatmap> {
        ensure!(
            values.len() == height * width,
            "a {height}x{width} map needs {} values, got {}",
            height * width,
            values.len()
        );
        Ok(Heatmap {
            height,
            width,
            values,
        })
    }

    pub fn get(&self, row: usize, col: usize) -> f32 {
        self.values[row * self.width + col]
    }

    /// The map as rows of numbers (the shape `--json` prints).
    pub fn rows(&self) -> Vec<Vec<f32>> {
        self.values
            .chunks(self.width.max(1))
            .map(<[f32]>::to_vec)
            .collect()
    }

    /// A copy mapped min -> 0 and max -> 1 (see [`rescale`]).
    pub fn rescaled(&self) -> Heatmap {
        let mut values = self.values.clone();
        rescale(&mut values);
        Heatmap { values, ..*self }
    }
}

/// MATLAB's `rescale`: the smallest value becomes 0, the largest 1, linearly in between.
/// A constant map (no contrast to show) becomes all zeros rather than 0/0 = NaN, and non-finite
/// entries become 0 so nothing downstream ever sees a NaN.
pub fn rescale(values: &mut [f32]) {
    // f64 so that even the full f32 range (-MAX..MAX) has a finite width.
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v as f64), hi.max(v as f64))
        });
    let range = hi - lo;
    if range <= 0.0 {
        values.fill(0.0);
        return;
    }
    for v in values.iter_mut() {
        *v = if v.is_finite() {
            ((*v as f64 - lo) / range).clamp(0.0, 1.0) as f32
        } else {
            0.0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescale_maps_min_to_zero_and_max_to_one_linearly() {
        let mut v = vec![-2.0, 0.0, 2.0, 6.0];
        rescale(&mut v);
        assert_eq!(v, vec![0.0, 0.25, 0.5, 1.0]);
    }

    #[test]
    fn constant_map_rescales_to_zeros_not_nan() {
        for c in [0.0f32, 3.5, -1e30, f32::MAX] {
            let mut v = vec![c; 9];
            rescale(&mut v);
            assert_eq!(v, vec![0.0; 9], "constant {c}");
        }
        let mut empty: Vec<f32> = vec![];
        rescale(&mut empty);
    }

    #[test]
    fn non_finite_values_never_reach_the_output() {
        let mut v = vec![1.0, f32::NAN, 3.0, f32::INFINITY];
        rescale(&mut v);
        assert_eq!(v, vec![0.0, 0.0, 1.0, 0.0]);
        let mut huge = vec![-f32::MAX, 0.0, f32::MAX];
        rescale(&mut huge);
        assert_eq!(huge, vec![0.0, 0.5, 1.0]);
    }

    #[test]
    fn rows_and_shape_check() {
        let m = Heatmap::new(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(m.rows(), vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]);
        assert_eq!(m.get(1, 0), 4.0);
        assert!(Heatmap::new(2, 2, vec![0.0; 3]).is_err());
    }
}
