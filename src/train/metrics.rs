//! Classification statistics: the confusion matrix and what is read off it (accuracy, per-class
//! precision, recall and F1), as printed after training and by `eval`, and saved as `report.json`.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// Rows are the true classes, columns the predicted ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub classes: Vec<String>,
    pub counts: Vec<Vec<usize>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassStats {
    pub class: String,
    pub support: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Confusion {
    pub fn new(classes: Vec<String>) -> Confusion {
        let k = classes.len();
        Confusion {
            classes,
            counts: vec![vec![0; k]; k],
        }
    }

    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth][predicted] += 1;
    }

    pub fn total(&self) -> usize {
        self.counts.iter().flatten().sum()
    }

    pub fn correct(&self) -> usize {
        (0..self.classes.len()).map(|i| self.counts[i][i]).sum()
    }

    /// Fraction correct; 0 for an empty matrix.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    /// Precision, recall and F1 of each class; a class never predicted has precision 0 (not NaN).
    pub fn per_class(&self) -> Vec<ClassStats> {
        let k = self.classes.len();
        (0..k)
            .map(|c| {
                let tp = self.counts[c][c];
                let support: usize = self.counts[c].iter().sum();
                let predicted: usize = (0..k).map(|r| self.counts[r][c]).sum();
                let precision = ratio(tp, predicted);
                let recall = ratio(tp, support);
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassStats {
                    class: self.classes[c].clone(),
                    support,
                    precision,
                    recall,
                    f1,
                }
            })
            .collect()
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
            let support: usize = row.iter().sum();
            for &n in row {
                let _ = write!(
                    out,
                    "  {:>width$}",
                    format!("{n} ({:.0}%)", 100.0 * ratio(n, support))
                );
            }
            out.push('\n');
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "{:width$}  {:>9}  {:>9}  {:>9}  {:>7}",
            "class", "precision", "recall", "F1", "images"
        );
        for s in self.per_class() {
            let _ = writeln!(
                out,
                "{:width$}  {:>9.4}  {:>9.4}  {:>9.4}  {:>7}",
                s.class, s.precision, s.recall, s.f1, s.support
            );
        }
        let _ = writeln!(
            out,
            "accuracy {:.4} ({} of {})",
            self.accuracy(),
            self.correct(),
            self.total()
        );
        out
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_from_a_known_matrix() {
        let mut c = Confusion::new(vec!["Negative".into(), "Positive".into()]);
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
        assert!((s[1].precision - 0.6).abs() < 1e-12);
        assert!((s[1].recall - 0.75).abs() < 1e-12);
        assert!((s[1].f1 - 2.0 * 0.6 * 0.75 / 1.35).abs() < 1e-12);
        assert_eq!(s[0].support, 8);
        let text = c.render();
        assert!(
            text.contains("6 (75%)") && text.contains("accuracy 0.7500 (9 of 12)"),
            "{text}"
        );
    }

    #[test]
    fn never_predicted_class_has_zero_precision_not_nan() {
        let mut c = Confusion::new(vec!["a".into(), "b".into()]);
        c.add(0, 0);
        c.add(1, 0);
        let s = c.per_class();
        assert_eq!(s[1].precision, 0.0);
        assert_eq!(s[1].f1, 0.0);
    }
}
