//! How a scan compares with a hand-drawn crack mask.
//!
//! - Windows: a window is a crack window when the central region of its mask (the middle half of
//!   each side, the part a window's label describes best) holds at least one crack pixel, and a
//!   clear window when it holds no crack pixel at all; predicted when its probability reaches the
//!   threshold. Precision, recall, F1 and AUROC over those two kinds. A window with crack pixels
//!   only near its border is neither, as in the concrete crack dataset's making and in
//!   `crackscope patches`: it is counted (`border`) but not scored, since calling it either way
//!   would be right.
//! - Pixels, with a tolerance of `t` pixels as crack-segmentation benchmarks score hairline cracks
//!   (a pixel counts as matched when the other mask has a pixel within `t` in both x and y):
//!   precision = predicted pixels near a true one / predicted pixels, recall = true pixels near a
//!   predicted one / true pixels, IoU = matched predicted / (predicted + unmatched true). With
//!   `t` = 0 these are the exact definitions.

use image::GrayImage;
use serde::{Deserialize, Serialize};

use super::map::WindowScore;
use crate::core::mask::grown;

/// Counts behind the window-level figures; they add up over photos.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WindowCounts {
    pub true_positive: u64,
    pub false_positive: u64,
    pub false_negative: u64,
    pub true_negative: u64,
    /// Windows with crack pixels only outside their central region, left out of the scores.
    pub border: u64,
    /// (probability, is a crack window) of every scored window, for the AUROC.
    #[serde(skip)]
    pub scored: Vec<(f32, bool)>,
}

/// Counts behind the pixel-level figures; they add up over photos.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixelCounts {
    pub predicted: u64,
    pub truth: u64,
    /// Predicted pixels within the tolerance of a true one.
    pub predicted_matched: u64,
    /// True pixels within the tolerance of a predicted one.
    pub truth_matched: u64,
}

/// The figures a user reads; None where a ratio has nothing to count (e.g. no crack predicted).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iou: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auroc: Option<f64>,
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn f1(p: Option<f64>, r: Option<f64>) -> Option<f64> {
    match (p, r) {
        (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
        (Some(_), Some(_)) => Some(0.0),
        _ => None,
    }
}

impl WindowCounts {
    pub fn add(&mut self, other: &WindowCounts) {
        self.true_positive += other.true_positive;
        self.false_positive += other.false_positive;
        self.false_negative += other.false_negative;
        self.true_negative += other.true_negative;
        self.border += other.border;
        self.scored.extend_from_slice(&other.scored);
    }

    pub fn scores(&self) -> Scores {
        let precision = ratio(self.true_positive, self.true_positive + self.false_positive);
        let recall = ratio(self.true_positive, self.true_positive + self.false_negative);
        Scores {
            precision,
            recall,
            f1: f1(precision, recall),
            iou: None,
            auroc: {
                let (scores, cracked): (Vec<f32>, Vec<bool>) = self.scored.iter().copied().unzip();
                crate::core::stats::auroc(&scores, &cracked)
            },
        }
    }
}

impl PixelCounts {
    pub fn add(&mut self, o: &PixelCounts) {
        self.predicted += o.predicted;
        self.truth += o.truth;
        self.predicted_matched += o.predicted_matched;
        self.truth_matched += o.truth_matched;
    }

    pub fn scores(&self) -> Scores {
        let precision = ratio(self.predicted_matched, self.predicted);
        let recall = ratio(self.truth_matched, self.truth);
        let union = self.predicted + self.truth - self.truth_matched;
        Scores {
            precision,
            recall,
            f1: f1(precision, recall),
            iou: ratio(self.predicted_matched, union).or(Some(1.0).filter(|_| union == 0)),
            auroc: None,
        }
    }
}

/// What a window's part of the true mask says about it (the rule above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowTruth {
    /// A crack pixel in the central region.
    Crack,
    /// No crack pixel anywhere in the window.
    Clear,
    /// Crack pixels only outside the central region: not scored.
    Border,
}

/// The window's truth by the rule above.
pub fn window_truth(truth: &GrayImage, w: &WindowScore) -> WindowTruth {
    let crack_in = |x0: u32, y0: u32, x1: u32, y1: u32| {
        let (x1, y1) = (x1.min(truth.width()), y1.min(truth.height()));
        (y0..y1).any(|y| (x0..x1).any(|x| truth.get_pixel(x, y).0[0] > 0))
    };
    let quarter = w.size / 4;
    let (x0, y0) = (w.x + quarter, w.y + quarter);
    let (x1, y1) = (w.x + w.size - quarter, w.y + w.size - quarter);
    if crack_in(x0, y0, x1, y1) {
        WindowTruth::Crack
    } else if crack_in(w.x, w.y, w.x + w.size, w.y + w.size) {
        WindowTruth::Border
    } else {
        WindowTruth::Clear
    }
}

/// Window counts of one photo against its mask.
pub fn window_counts(windows: &[WindowScore], truth: &GrayImage, threshold: f32) -> WindowCounts {
    let mut c = WindowCounts::default();
    for w in windows {
        let crack = match window_truth(truth, w) {
            WindowTruth::Crack => true,
            WindowTruth::Clear => false,
            WindowTruth::Border => {
                c.border += 1;
                continue;
            }
        };
        let said = w.probability >= threshold;
        match (crack, said) {
            (true, true) => c.true_positive += 1,
            (false, true) => c.false_positive += 1,
            (true, false) => c.false_negative += 1,
            (false, false) => c.true_negative += 1,
        }
        c.scored.push((w.probability, crack));
    }
    c
}

/// Pixel counts of a predicted mask against a true one (same size) with a tolerance in pixels.
pub fn pixel_counts(predicted: &GrayImage, truth: &GrayImage, tolerance: u32) -> PixelCounts {
    let near_truth = grown(truth, tolerance);
    let near_predicted = grown(predicted, tolerance);
    let count = |m: &GrayImage| m.as_raw().iter().filter(|&&v| v > 0).count() as u64;
    let both = |a: &GrayImage, b: &GrayImage| {
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .filter(|(&x, &y)| x > 0 && y > 0)
            .count() as u64
    };
    PixelCounts {
        predicted: count(predicted),
        truth: count(truth),
        predicted_matched: both(predicted, &near_truth),
        truth_matched: both(truth, &near_predicted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(rows: &[&str]) -> GrayImage {
        let (w, h) = (rows[0].len() as u32, rows.len() as u32);
        GrayImage::from_fn(w, h, |x, y| {
            image::Luma([255 * u8::from(rows[y as usize].as_bytes()[x as usize] == b'#')])
        })
    }

    #[test]
    fn pixel_metrics_are_exact_on_hand_made_masks() {
        let truth = mask(&[
            "........", //
            "..####..", "........", "........",
        ]);
        let predicted = mask(&[
            "........", //
            "...###..", "......#.", "#.......",
        ]);
        // Exact: 3 of 5 predicted pixels are true, 3 of 4 true pixels found.
        let exact = pixel_counts(&predicted, &truth, 0);
        assert_eq!(
            exact,
            PixelCounts {
                predicted: 5,
                truth: 4,
                predicted_matched: 3,
                truth_matched: 3
            }
        );
        let s = exact.scores();
        assert_eq!(s.precision, Some(0.6));
        assert_eq!(s.recall, Some(0.75));
        assert!((s.f1.unwrap() - 2.0 * 0.6 * 0.75 / 1.35).abs() < 1e-12);
        assert_eq!(s.iou, Some(3.0 / 6.0)); // |P ∩ T| / |P ∪ T|
                                            // One pixel of tolerance: the diagonal neighbour (6, 2) matches, (0, 3) does not; every
                                            // true pixel has a predicted one within a pixel.
        let near = pixel_counts(&predicted, &truth, 1);
        assert_eq!((near.predicted_matched, near.truth_matched), (4, 4));
        assert_eq!(near.scores().iou, Some(4.0 / 5.0));
        // Nothing predicted, nothing true: no precision, perfect IoU.
        let empty = GrayImage::new(8, 4);
        let s = pixel_counts(&empty, &empty, 2).scores();
        assert_eq!((s.precision, s.recall, s.iou), (None, None, Some(1.0)));
    }

    #[test]
    fn window_metrics_score_crack_and_clear_windows_and_leave_border_ones_out() {
        // 8 px windows: the central region is pixels 2..6 of each side.
        let mut truth = GrayImage::new(24, 8);
        truth.put_pixel(3, 4, image::Luma([255])); // centre of window 0
        truth.put_pixel(15, 0, image::Luma([255])); // corner of window 2 only
        let w = |x, p| WindowScore {
            x,
            y: 0,
            size: 8,
            probability: p,
            score: None,
        };
        assert_eq!(window_truth(&truth, &w(0, 0.0)), WindowTruth::Crack);
        assert_eq!(window_truth(&truth, &w(4, 0.0)), WindowTruth::Clear);
        assert_eq!(window_truth(&truth, &w(8, 0.0)), WindowTruth::Border);
        let windows = [w(0, 0.9), w(4, 0.6), w(8, 0.95), w(16, 0.2)];
        let c = window_counts(&windows, &truth, 0.5);
        assert_eq!(
            (
                c.true_positive,
                c.false_positive,
                c.false_negative,
                c.true_negative,
                c.border
            ),
            (1, 1, 0, 1, 1)
        );
        let s = c.scores();
        assert_eq!((s.precision, s.recall), (Some(0.5), Some(1.0)));
        assert_eq!(s.auroc, Some(1.0));
        // Ties count half (crate::core::stats::auroc's own tests hold the rest).
        let tied = [w(0, 0.9), w(4, 0.9), w(8, 0.2), w(16, 0.2)];
        assert_eq!(window_counts(&tied, &truth, 0.5).scores().auroc, Some(0.75));
    }
}
