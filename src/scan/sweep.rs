//! Precision and recall at every threshold of a grid, for windows and for pixels, counted during a
//! scan against true masks, so that choosing a threshold needs no second scan.
//!
//! Only counts are kept (per photo, in `scan.json`); they add up over photos, so a continued scan
//! and a merge of shards sum the photos' counts and get what one scan of every photo would have.
//! The counts at the scan's own threshold (always one of the grid's) are those of the scan's
//! metrics exactly.
//!
//! Pixels are counted without a mask per threshold: each pixel's map value is reduced to its *level*
//! (how many thresholds of the grid it reaches), so a pixel is predicted at threshold k when its
//! level exceeds k. Tolerance matching needs two things per pixel: whether a true pixel lies
//! within the tolerance (independent of the threshold), and, for a true pixel, the highest level
//! within the tolerance (it is matched at threshold k when that exceeds k). Both are one pass
//! each; three histograms of levels then give every threshold's counts.

use anyhow::{ensure, Result};
use image::GrayImage;
use serde::{Deserialize, Serialize};

use super::map::{CrackMap, WindowScore};
use super::metrics::{window_truth, PixelCounts, Scores, WindowCounts, WindowTruth};
use crate::core::mask::{grown, largest_within};

/// Thresholds of the grid besides the scan's own: 0.05 to 0.95 in steps of 0.05.
const GRID_STEPS: u32 = 19;

/// The sweep's thresholds for a scan at `threshold`: the grid and the scan's own, ascending.
pub fn thresholds(threshold: f32) -> Vec<f32> {
    let mut all: Vec<f32> = (1..=GRID_STEPS).map(|i| i as f32 / 20.0).collect();
    if !all.contains(&threshold) {
        all.push(threshold);
        all.sort_by(f32::total_cmp);
    }
    all
}

/// Window counts at one threshold (scored windows only: border windows are not scored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowTally {
    pub true_positive: u64,
    pub false_positive: u64,
    pub false_negative: u64,
    pub true_negative: u64,
}

/// Counts at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub threshold: f32,
    pub windows: WindowTally,
    pub pixels: PixelCounts,
}

/// Counts at every threshold of the grid, ascending; they add up over photos.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sweep {
    pub points: Vec<SweepPoint>,
}

/// Precision, recall and F1 of windows and pixels at one threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepScores {
    pub threshold: f32,
    pub windows: Scores,
    pub pixels: Scores,
}

impl WindowTally {
    fn counts(&self) -> WindowCounts {
        WindowCounts {
            true_positive: self.true_positive,
            false_positive: self.false_positive,
            false_negative: self.false_negative,
            true_negative: self.true_negative,
            ..WindowCounts::default()
        }
    }
}

impl Sweep {
    /// Adds another photo's (or shard's) counts; both must be on the same thresholds.
    pub fn add(&mut self, other: &Sweep) -> Result<()> {
        if self.points.is_empty() {
            self.points = other.points.clone();
            return Ok(());
        }
        let same = self.points.len() == other.points.len()
            && self
                .points
                .iter()
                .zip(&other.points)
                .all(|(a, b)| a.threshold == b.threshold);
        ensure!(
            same,
            "threshold sweeps on different thresholds cannot be added"
        );
        for (a, b) in self.points.iter_mut().zip(&other.points) {
            let (w, o) = (&mut a.windows, &b.windows);
            w.true_positive += o.true_positive;
            w.false_positive += o.false_positive;
            w.false_negative += o.false_negative;
            w.true_negative += o.true_negative;
            a.pixels.add(&b.pixels);
        }
        Ok(())
    }

    /// The figures at every threshold.
    pub fn scores(&self) -> Vec<SweepScores> {
        self.points
            .iter()
            .map(|p| SweepScores {
                threshold: p.threshold,
                windows: p.windows.counts().scores(),
                pixels: p.pixels.scores(),
            })
            .collect()
    }

    /// The point at `threshold`, if it is one of the sweep's.
    pub fn at(&self, threshold: f32) -> Option<&SweepPoint> {
        self.points.iter().find(|p| p.threshold == threshold)
    }
}

/// How many of `thresholds` (ascending) `v` reaches.
fn level(v: f32, thresholds: &[f32]) -> u8 {
    thresholds.partition_point(|&t| t <= v) as u8
}

/// One photo's sweep: its windows against the truth by the central-region rule, and its map's
/// pixels (at the photo's resolution, as the scan's mask is made) within `tolerance` of the true
/// mask.
pub fn photo_sweep(map: &CrackMap, truth: &GrayImage, tolerance: u32, thresholds: &[f32]) -> Sweep {
    let windows = window_tallies(&map.windows, truth, thresholds);
    let pixels = pixel_counts_per_threshold(map, truth, tolerance, thresholds);
    Sweep {
        points: thresholds
            .iter()
            .zip(windows)
            .zip(pixels)
            .map(|((&threshold, windows), pixels)| SweepPoint {
                threshold,
                windows,
                pixels,
            })
            .collect(),
    }
}

fn window_tallies(
    windows: &[WindowScore],
    truth: &GrayImage,
    thresholds: &[f32],
) -> Vec<WindowTally> {
    let mut tallies = vec![WindowTally::default(); thresholds.len()];
    for w in windows {
        let crack = match window_truth(truth, w) {
            WindowTruth::Crack => true,
            WindowTruth::Clear => false,
            WindowTruth::Border => continue,
        };
        for (tally, &t) in tallies.iter_mut().zip(thresholds) {
            match (crack, w.probability >= t) {
                (true, true) => tally.true_positive += 1,
                (false, true) => tally.false_positive += 1,
                (true, false) => tally.false_negative += 1,
                (false, false) => tally.true_negative += 1,
            }
        }
    }
    tallies
}

fn pixel_counts_per_threshold(
    map: &CrackMap,
    truth: &GrayImage,
    tolerance: u32,
    thresholds: &[f32],
) -> Vec<PixelCounts> {
    let (w, h) = (map.width as usize, map.height as usize);
    let mut levels = GrayImage::new(map.width, map.height);
    map.for_each_row(|y, line| {
        let row = &mut levels.as_mut()[y as usize * w..(y as usize + 1) * w];
        for (l, &v) in row.iter_mut().zip(line) {
            *l = level(v, thresholds);
        }
    });
    let near_truth = grown(truth, tolerance);
    let highest_near = largest_within(&levels, tolerance);
    let bins = thresholds.len() + 1;
    let (mut all, mut near, mut truth_best) =
        (vec![0u64; bins], vec![0u64; bins], vec![0u64; bins]);
    let mut true_pixels = 0u64;
    for i in 0..w * h {
        let l = levels.as_raw()[i] as usize;
        all[l] += 1;
        if near_truth.as_raw()[i] > 0 {
            near[l] += 1;
        }
        if truth.as_raw()[i] > 0 {
            true_pixels += 1;
            truth_best[highest_near.as_raw()[i] as usize] += 1;
        }
    }
    // Pixels at level above k are predicted at threshold k (0-based): suffix sums.
    let above = |hist: &[u64], k: usize| hist[k + 1..].iter().sum::<u64>();
    (0..thresholds.len())
        .map(|k| PixelCounts {
            predicted: above(&all, k),
            truth: true_pixels,
            predicted_matched: above(&near, k),
            truth_matched: above(&truth_best, k),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::metrics::{pixel_counts, window_counts};

    /// A 64 x 48 map with a ramp of values, windows of 32 px at stride 16, and a crack line.
    fn case() -> (CrackMap, GrayImage) {
        let (rows, cols) = (3, 4);
        let cells: Vec<f32> = (0..rows * cols)
            .map(|i| (i as f32 * 0.37).fract())
            .collect();
        let mut windows = Vec::new();
        for (n, (x, y)) in [(0, 0), (16, 0), (32, 0), (0, 16), (16, 16), (32, 16)]
            .into_iter()
            .enumerate()
        {
            windows.push(WindowScore {
                x,
                y,
                size: 32,
                probability: n as f32 / 6.0 + 0.04,
                score: None,
            });
        }
        let map = CrackMap {
            width: 64,
            height: 48,
            windows,
            rows,
            cols,
            cells,
            descriptors: Default::default(),
        };
        let mut truth = GrayImage::new(64, 48);
        for x in 10..50 {
            truth.put_pixel(x, 20 + x / 10, image::Luma([255]));
        }
        (map, truth)
    }

    #[test]
    fn every_threshold_counts_as_the_scan_would_at_that_threshold() {
        let (map, truth) = case();
        let thresholds = thresholds(0.5);
        assert_eq!(thresholds.len(), 19, "0.5 is on the grid");
        for tolerance in [0, 2] {
            let sweep = photo_sweep(&map, &truth, tolerance, &thresholds);
            for point in &sweep.points {
                let t = point.threshold;
                let direct = pixel_counts(&map.mask(t), &truth, tolerance);
                assert_eq!(point.pixels, direct, "pixels at {t}, tolerance {tolerance}");
                let w = window_counts(&map.windows, &truth, t);
                assert_eq!(
                    (
                        point.windows.true_positive,
                        point.windows.false_positive,
                        point.windows.false_negative,
                        point.windows.true_negative
                    ),
                    (
                        w.true_positive,
                        w.false_positive,
                        w.false_negative,
                        w.true_negative
                    ),
                    "windows at {t}"
                );
            }
        }
    }

    #[test]
    fn an_off_grid_threshold_joins_the_grid_and_sweeps_add_up() {
        let t = thresholds(0.42);
        assert_eq!(t.len(), 20);
        assert!(t.windows(2).all(|p| p[0] < p[1]) && t.contains(&0.42));
        let (map, truth) = case();
        let one = photo_sweep(&map, &truth, 1, &t);
        let mut sum = Sweep::default();
        sum.add(&one).unwrap();
        sum.add(&one).unwrap();
        let p = sum.at(0.42).unwrap();
        let q = one.at(0.42).unwrap();
        assert_eq!(p.pixels.truth, 2 * q.pixels.truth);
        assert_eq!(p.windows.true_negative, 2 * q.windows.true_negative);
        // Other thresholds are refused, not added wrongly.
        let other = photo_sweep(&map, &truth, 1, &thresholds(0.5));
        assert!(sum.add(&other).is_err());
    }
}
