//! Classification statistics: the confusion counts and what is read off them (accuracy, per-class
//! precision, recall and F1). One calculator for every consumer: the validation and test passes,
//! `eval`, `report.json`, the headless printer and the dashboard, so they never disagree.
//!
//! A figure whose denominator is zero is *undefined*, not zero: precision of a class that was never
//! predicted is `None` (printed "—", saved as `null`). Calling it 0 would make "never predicted"
//! look like "always wrong when predicted". F1 is computed as 2·TP / (2·TP + FP + FN), which agrees
//! with the harmonic mean of precision and recall wherever both exist, and stays defined (0) for a
//! class that has images but was never predicted; it is undefined only for a class absent from
//! both the truth and the predictions.
//!
//! [`auroc`] ranks scores instead: the one implementation behind the one-class reports and the
//! scan's window scores.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// How an undefined figure is shown in tables (the CLI and the dashboard).
pub const UNDEFINED: &str = "—";

/// Rows are the true classes, columns the predicted ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub classes: Vec<String>,
    pub counts: Vec<Vec<usize>>,
}

/// The figures of one class; `None` where the figure is undefined (see the module's notes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassStats {
    pub class: String,
    /// Images of this class (true class).
    pub support: usize,
    /// `None` when nothing was predicted as this class.
    pub precision: Option<f64>,
    /// `None` when the class has no images.
    pub recall: Option<f64>,
    /// `None` when the class has no images and was never predicted.
    pub f1: Option<f64>,
}

impl Confusion {
    pub fn new(classes: Vec<String>) -> Confusion {
        let k = classes.len();
        Confusion {
            classes,
            counts: vec![vec![0; k]; k],
        }
    }

    /// Counts (truth, predicted) pairs; pairs naming a class outside `classes` (a stale file, say)
    /// are left out rather than trusted.
    pub fn from_pairs(
        classes: Vec<String>,
        pairs: impl IntoIterator<Item = (usize, usize)>,
    ) -> Confusion {
        let mut confusion = Confusion::new(classes);
        let k = confusion.classes.len();
        for (truth, predicted) in pairs {
            if truth < k && predicted < k {
                confusion.add(truth, predicted);
            }
        }
        confusion
    }

    /// Counts one image; both indices must be classes of the matrix.
    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth][predicted] += 1;
    }

    pub fn total(&self) -> usize {
        self.counts.iter().flatten().sum()
    }

    /// Images on the diagonal.
    pub fn correct(&self) -> usize {
        self.counts
            .iter()
            .enumerate()
            .filter_map(|(i, row)| row.get(i))
            .sum()
    }

    /// Fraction correct, 0 for an empty matrix (no image, none right): the trainer logs a number
    /// for every validation. Consumers that can show "no figure" check [`Confusion::total`].
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total()).unwrap_or(0.0)
    }

    /// Images of the class (row) `truth`.
    pub fn support(&self, truth: usize) -> usize {
        self.counts[truth].iter().sum()
    }

    /// Images predicted as the class (column) `predicted`.
    pub fn predicted(&self, predicted: usize) -> usize {
        self.counts
            .iter()
            .map(|row| row.get(predicted).copied().unwrap_or(0))
            .sum()
    }

    /// Fraction of row `truth` in each column ("row percentages"); `None` for an empty row.
    pub fn row_fractions(&self, truth: usize) -> Vec<Option<f64>> {
        let support = self.support(truth);
        self.counts[truth]
            .iter()
            .map(|&n| ratio(n, support))
            .collect()
    }

    /// Precision, recall and F1 of each class.
    pub fn per_class(&self) -> Vec<ClassStats> {
        (0..self.counts.len())
            .map(|c| {
                let tp = self.counts[c].get(c).copied().unwrap_or(0);
                let support = self.support(c);
                let predicted = self.predicted(c);
                // FN + FP = (support - TP) + (predicted - TP).
                let f1 = ratio(2 * tp, support + predicted);
                ClassStats {
                    class: self.classes.get(c).cloned().unwrap_or_default(),
                    support,
                    precision: ratio(tp, predicted),
                    recall: ratio(tp, support),
                    f1,
                }
            })
            .collect()
    }

    /// [`Confusion::render`] for at most `max_classes` classes. Beyond that the matrix (which
    /// grows with the square of the classes: 11 MB of text for 1000) is left out and the per-class
    /// table shows the `max_classes` classes with the lowest F1, then how many there are in all.
    pub fn render_capped(&self, max_classes: usize) -> String {
        if self.classes.len() <= max_classes {
            return self.render();
        }
        let mut stats = self.per_class();
        // Worst first; undefined F1 (no images, never predicted) last.
        stats.sort_by(|a, b| {
            a.f1.unwrap_or(f64::INFINITY)
                .total_cmp(&b.f1.unwrap_or(f64::INFINITY))
        });
        stats.truncate(max_classes);
        let width = stats
            .iter()
            .map(|s| s.class.len())
            .max()
            .unwrap_or(5)
            .max(9);
        let mut out = format!(
            "{} classes: the confusion matrix is not printed; the {max_classes} classes with \
             the lowest F1:\n",
            self.classes.len()
        );
        out.push_str(&stats_table(&stats, width));
        let _ = writeln!(
            out,
            "... and {} more classes (every class and the whole matrix: the JSON report)",
            self.classes.len() - max_classes
        );
        out.push_str(&self.accuracy_line());
        out
    }

    fn accuracy_line(&self) -> String {
        format!(
            "accuracy {:.4} ({} of {})\n",
            self.accuracy(),
            self.correct(),
            self.total()
        )
    }

    /// The matrix and the per-class table as plain text for a terminal.
    pub fn render(&self) -> String {
        let width = self
            .classes
            .iter()
            .map(|c| c.len())
            .max()
            .unwrap_or(5)
            .max(9);
        let mut out = String::new();
        let _ = writeln!(out, "{:width$}  predicted ->", "true \\");
        let _ = write!(out, "{:width$}", "");
        for c in &self.classes {
            let _ = write!(out, "  {c:>width$}");
        }
        out.push('\n');
        for (i, row) in self.counts.iter().enumerate() {
            let _ = write!(out, "{:width$}", self.classes[i]);
            for (&n, fraction) in row.iter().zip(self.row_fractions(i)) {
                let percent = 100.0 * fraction.unwrap_or(0.0);
                let _ = write!(out, "  {:>width$}", format!("{n} ({percent:.0}%)"));
            }
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&stats_table(&self.per_class(), width));
        out.push_str(&self.accuracy_line());
        out
    }
}

/// Precision, recall, F1 and images of each class, one line each under a header.
fn stats_table(stats: &[ClassStats], width: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:width$}  {:>9}  {:>9}  {:>9}  {:>7}",
        "class", "precision", "recall", "F1", "images"
    );
    for s in stats {
        let _ = writeln!(
            out,
            "{:width$}  {:>9}  {:>9}  {:>9}  {:>7}",
            s.class,
            figure(s.precision, 4),
            figure(s.recall, 4),
            figure(s.f1, 4),
            s.support
        );
    }
    out
}

/// A figure with `decimals` places, or [`UNDEFINED`].
pub fn figure(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| UNDEFINED.to_string(), |v| format!("{v:.decimals$}"))
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Area under the ROC curve: the probability that a random positive outscores a random
/// negative, a tie counting one half (so a constant scorer gets 0.5); None unless both kinds are
/// present. NaN scores rank highest, so a broken score never looks negative.
pub fn auroc(scores: &[f32], positive: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), positive.len(), "one label per score");
    let positives = positive.iter().filter(|&&p| p).count();
    let negatives = positive.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Mann-Whitney U with mid-ranks for ties.
    let mut rank_sum = 0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mid_rank * order[i..=j].iter().filter(|&&k| positive[k]).count() as f64;
        i = j + 1;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_classes() -> Vec<String> {
        vec!["Negative".into(), "Positive".into()]
    }

    #[test]
    fn statistics_from_a_known_matrix() {
        let mut c = Confusion::new(two_classes());
        // 8 negatives: 6 right, 2 called positive; 4 positives: 3 right, 1 missed.
        for _ in 0..6 {
            c.add(0, 0);
        }
        for _ in 0..2 {
            c.add(0, 1);
        }
        for _ in 0..3 {
            c.add(1, 1);
        }
        c.add(1, 0);
        assert_eq!(c.total(), 12);
        assert!((c.accuracy() - 0.75).abs() < 1e-12);
        let s = c.per_class();
        assert!((s[1].precision.unwrap() - 0.6).abs() < 1e-12);
        assert!((s[1].recall.unwrap() - 0.75).abs() < 1e-12);
        assert!((s[1].f1.unwrap() - 2.0 * 0.6 * 0.75 / 1.35).abs() < 1e-12);
        assert_eq!(s[0].support, 8);
        let text = c.render();
        assert!(
            text.contains("6 (75%)") && text.contains("accuracy 0.7500 (9 of 12)"),
            "{text}"
        );
    }

    #[test]
    fn scores_match_hand_computed_values() {
        // 8 Negative: 7 right, 1 called Positive; 10 Positive: 9 right, 1 called Negative.
        let c = Confusion {
            classes: two_classes(),
            counts: vec![vec![7, 1], vec![1, 9]],
        };
        assert_eq!(c.accuracy(), 16.0 / 18.0);
        let s = c.per_class();
        assert_eq!(s[0].precision, Some(7.0 / 8.0));
        assert_eq!(s[0].recall, Some(7.0 / 8.0));
        assert_eq!(s[1].precision, Some(9.0 / 10.0));
        assert_eq!(s[1].recall, Some(9.0 / 10.0));
        assert!((s[1].f1.unwrap() - 0.9).abs() < 1e-12);
        assert_eq!(s[1].support, 10);
        assert_eq!(c.row_fractions(0), vec![Some(0.875), Some(0.125)]);
    }

    #[test]
    fn f1_equals_the_harmonic_mean_wherever_both_exist() {
        let c = Confusion {
            classes: vec!["a".into(), "b".into(), "c".into()],
            counts: vec![vec![5, 2, 1], vec![3, 0, 4], vec![0, 6, 2]],
        };
        for s in c.per_class() {
            let (p, r) = (s.precision.unwrap(), s.recall.unwrap());
            let mean = if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            };
            assert!((s.f1.unwrap() - mean).abs() < 1e-12, "{s:?}");
        }
    }

    /// The figures the CLI, report.json and the dashboard all show for a class never predicted.
    #[test]
    fn never_predicted_class_has_undefined_precision_and_zero_recall_and_f1() {
        let mut c = Confusion::new(vec!["a".into(), "b".into()]);
        c.add(0, 0);
        c.add(1, 0);
        let s = c.per_class();
        assert_eq!(s[1].precision, None);
        assert_eq!(s[1].recall, Some(0.0));
        assert_eq!(s[1].f1, Some(0.0));
        let text = c.render();
        // The per-class table's line (the matrix has a row "b" too).
        let line = text.lines().rfind(|l| l.starts_with("b ")).unwrap();
        assert_eq!(
            line.split_whitespace().collect::<Vec<_>>(),
            ["b", UNDEFINED, "0.0000", "0.0000", "1"]
        );
        let json = serde_json::to_value(&s[1]).unwrap();
        assert!(json["precision"].is_null(), "{json}");
        assert_eq!(json["f1"], 0.0);
    }

    #[test]
    fn empty_classes_give_no_number_instead_of_nan() {
        let c = Confusion {
            classes: two_classes(),
            counts: vec![vec![0, 0], vec![0, 5]],
        };
        let s = c.per_class();
        assert_eq!(s[0].precision, None);
        assert_eq!(s[0].recall, None);
        assert_eq!(s[0].f1, None);
        assert_eq!(c.row_fractions(0), vec![None, None]);
        let empty = Confusion::new(vec!["a".into()]);
        assert_eq!((empty.total(), empty.accuracy()), (0, 0.0));
    }

    #[test]
    fn pairs_are_counted_by_truth_and_prediction() {
        let c = Confusion::from_pairs(two_classes(), [(0, 0), (0, 1), (1, 1), (5, 0), (0, 2)]);
        assert_eq!(c.counts, vec![vec![1, 1], vec![0, 1]]);
        assert_eq!((c.correct(), c.total()), (2, 3));
    }

    #[test]
    fn auroc_of_perfect_reversed_constant_and_tied_scores() {
        let labels = [false, false, true, true];
        assert_eq!(auroc(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(auroc(&[0.9, 0.8, 0.2, 0.1], &labels), Some(0.0));
        assert_eq!(auroc(&[0.5; 4], &labels), Some(0.5));
        assert_eq!(auroc(&[0.1, 0.2], &[false, false]), None);
        assert_eq!(auroc(&[0.2], &[true]), None);
        assert_eq!(auroc(&[0.5, 0.5], &[true, false]), Some(0.5));
        assert_eq!(auroc(&[0.2, 0.7, 0.9], &[true, false, true]), Some(0.5));
    }

    #[test]
    fn auroc_matches_hand_computed_pairs() {
        // Pairs (positive, negative): 0.8 beats 0.1, 0.4, loses to 0.9 -> 2; 0.35 beats 0.1 -> 1.
        // AUROC = 3 / 6.
        let scores = [0.1, 0.4, 0.35, 0.8, 0.9];
        let labels = [false, false, true, true, false];
        assert!((auroc(&scores, &labels).unwrap() - 0.5).abs() < 1e-12);
        // A tie across the kinds counts one half: (0.4 vs 0.4) + (0.4 beats 0.1) = 1.5 of 2.
        assert_eq!(auroc(&[0.1, 0.4, 0.4], &[false, false, true]), Some(0.75));
        // NaN ranks above every number.
        assert_eq!(auroc(&[f32::NAN, 0.9], &[true, false]), Some(1.0));
    }
}
