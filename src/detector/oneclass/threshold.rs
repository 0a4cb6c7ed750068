//! The decision threshold, chosen on validation images: an image is anomalous when its score is
//! above it.
//!
//! With anomalies among the validation images the threshold maximises their F1 score; with
//! normal images only it lets at most a stated fraction of them through as false alarms (the
//! highest normal score when that fraction rounds to none, so a fresh normal image is flagged
//! with a probability of about 1 / (n + 1) for n validation images).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// How the threshold was chosen, kept in the model file and the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum ThresholdRule {
    /// The best F1 of the anomalies among the validation images.
    BestF1 { f1: f64 },
    /// At most `false_positive_rate` of the normal validation images above it.
    NormalFalsePositiveRate { false_positive_rate: f64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub value: f32,
    #[serde(flatten)]
    pub rule: ThresholdRule,
}

impl Threshold {
    /// The rule in words, for reports and the dashboard.
    pub fn rule_text(&self) -> String {
        match self.rule {
            ThresholdRule::BestF1 { f1 } => format!("best validation F1 {f1:.3}"),
            ThresholdRule::NormalFalsePositiveRate {
                false_positive_rate,
            } => format!(
                "no anomalies among the validation images: at most {:.1}% of normal ones above it",
                100.0 * false_positive_rate
            ),
        }
    }
}

/// Chooses the threshold from validation `scores` and whether each image is anomalous.
pub fn choose(scores: &[f32], anomalous: &[bool], false_positive_rate: f64) -> Result<Threshold> {
    assert_eq!(scores.len(), anomalous.len(), "one label per score");
    if scores.is_empty() {
        bail!("no validation images to choose the anomaly threshold from");
    }
    if let Some(bad) = scores.iter().find(|s| !s.is_finite()) {
        bail!("a validation score is not a finite number ({bad})");
    }
    if !(0.0..1.0).contains(&false_positive_rate) {
        bail!("the false-positive rate must be in [0, 1), got {false_positive_rate}");
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let positives = anomalous.iter().filter(|&&a| a).count();
    if positives > 0 {
        // Flag the top k images for every k at a boundary between distinct scores.
        let (mut best, mut best_f1, mut hits) = (None, -1.0, 0usize);
        for (k, &i) in order.iter().enumerate() {
            hits += usize::from(anomalous[i]);
            let next = order.get(k + 1).map(|&j| scores[j]);
            if next == Some(scores[i]) {
                continue;
            }
            let f1 = 2.0 * hits as f64 / (k + 1 + positives) as f64;
            if f1 > best_f1 {
                best_f1 = f1;
                best = Some(between(scores[i], next));
            }
        }
        return Ok(Threshold {
            value: best.expect("at least one candidate"),
            rule: ThresholdRule::BestF1 { f1: best_f1 },
        });
    }
    let allowed = (false_positive_rate * scores.len() as f64).floor() as usize;
    let value = if allowed == 0 {
        scores[order[0]]
    } else {
        // The `allowed` highest are flagged; ties with the next one are not, so place it below
        // the boundary only where the scores differ.
        let (flagged_low, next) = (scores[order[allowed - 1]], scores[order[allowed]]);
        if flagged_low == next {
            next
        } else {
            between(flagged_low, Some(next))
        }
    };
    Ok(Threshold {
        value,
        rule: ThresholdRule::NormalFalsePositiveRate {
            false_positive_rate,
        },
    })
}

/// A threshold that flags `lowest_flagged` but not `next` (the next lower score, if any).
fn between(lowest_flagged: f32, next: Option<f32>) -> f32 {
    match next {
        Some(next) => {
            let mid = next + (lowest_flagged - next) / 2.0;
            if mid < lowest_flagged {
                mid
            } else {
                next
            }
        }
        None => just_below(lowest_flagged),
    }
}

/// The largest f32 below `x` (finite `x`).
fn just_below(x: f32) -> f32 {
    if x == 0.0 {
        -f32::from_bits(1)
    } else if x > 0.0 {
        f32::from_bits(x.to_bits() - 1)
    } else {
        f32::from_bits(x.to_bits() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flagged(t: &Threshold, scores: &[f32]) -> Vec<bool> {
        scores.iter().map(|&s| s > t.value).collect()
    }

    #[test]
    fn best_f1_separates_separable_scores() {
        let scores = [0.1, 0.3, 0.2, 0.9, 0.7];
        let labels = [false, false, false, true, true];
        let t = choose(&scores, &labels, 0.01).unwrap();
        assert_eq!(flagged(&t, &scores), labels);
        assert_eq!(t.rule, ThresholdRule::BestF1 { f1: 1.0 });
        assert!(t.value > 0.3 && t.value < 0.7, "{t:?}");
    }

    #[test]
    fn best_f1_trades_off_overlapping_scores() {
        // Flagging the top 3 (0.9, 0.8, 0.5) catches both anomalies with one false alarm:
        // F1 = 4 / 5, better than the top 1 (2 / 3).
        let scores = [0.9, 0.8, 0.5, 0.2, 0.1];
        let labels = [true, false, true, false, false];
        let t = choose(&scores, &labels, 0.01).unwrap();
        assert_eq!(flagged(&t, &scores), [true, true, true, false, false]);
        assert_eq!(t.rule, ThresholdRule::BestF1 { f1: 0.8 });
        // Every image anomalous: all flagged, the lowest included.
        let t = choose(&[0.0, 0.5], &[true, true], 0.01).unwrap();
        assert_eq!(flagged(&t, &[0.0, 0.5]), [true, true]);
    }

    #[test]
    fn normal_only_keeps_the_stated_false_positive_rate() {
        let scores: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let labels = vec![false; 100];
        let t = choose(&scores, &labels, 0.05).unwrap();
        assert_eq!(flagged(&t, &scores).iter().filter(|&&f| f).count(), 5);
        assert_eq!(
            t.rule,
            ThresholdRule::NormalFalsePositiveRate {
                false_positive_rate: 0.05
            }
        );
        // Too few images for the rate to allow one: the highest normal score.
        let t = choose(&scores[..10], &labels[..10], 0.05).unwrap();
        assert_eq!(t.value, 9.0);
        // Ties at the boundary are not flagged (fewer false alarms than allowed, never more).
        let t = choose(&[1.0, 1.0, 1.0, 0.0], &[false; 4], 0.25).unwrap();
        assert!(flagged(&t, &[1.0, 1.0, 1.0, 0.0]).iter().all(|&f| !f));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(choose(&[], &[], 0.01).is_err());
        assert!(choose(&[f32::NAN], &[false], 0.01).is_err());
        assert!(choose(&[1.0], &[false], 1.5).is_err());
    }
}
