//! Per-class figures from a confusion matrix (rows: true class, columns: predicted class).

use super::gallery::TestItem;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassScores {
    /// `None` when nothing was predicted as this class (0/0).
    pub precision: Option<f64>,
    /// `None` when the class has no test images.
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    /// Test images of this class.
    pub support: usize,
}

/// Counts the test items into a `classes` x `classes` matrix; items with an out-of-range class are
/// left out rather than trusted.
pub fn confusion_from_items(items: &[TestItem], classes: usize) -> Vec<Vec<usize>> {
    let mut matrix = vec![vec![0; classes]; classes];
    for item in items {
        if item.truth < classes && item.predicted < classes {
            matrix[item.truth][item.predicted] += 1;
        }
    }
    matrix
}

/// Images on the diagonal and in all, of a confusion matrix.
pub fn correct_and_total(confusion: &[Vec<usize>]) -> (usize, usize) {
    let total: usize = confusion.iter().flatten().sum();
    let correct: usize = confusion
        .iter()
        .enumerate()
        .filter_map(|(i, row)| row.get(i))
        .sum();
    (correct, total)
}

pub fn accuracy(confusion: &[Vec<usize>]) -> Option<f64> {
    let (correct, total) = correct_and_total(confusion);
    (total > 0).then(|| correct as f64 / total as f64)
}

/// Fraction of row `row` in each column, for the "row percentages" of the matrix.
pub fn row_fractions(row: &[usize]) -> Vec<Option<f64>> {
    let total: usize = row.iter().sum();
    row.iter()
        .map(|&n| (total > 0).then(|| n as f64 / total as f64))
        .collect()
}

pub fn class_scores(confusion: &[Vec<usize>]) -> Vec<ClassScores> {
    (0..confusion.len())
        .map(|c| {
            let hits = confusion[c].get(c).copied().unwrap_or(0);
            let support: usize = confusion[c].iter().sum();
            let predicted: usize = confusion
                .iter()
                .map(|row| row.get(c).copied().unwrap_or(0))
                .sum();
            let precision = (predicted > 0).then(|| hits as f64 / predicted as f64);
            let recall = (support > 0).then(|| hits as f64 / support as f64);
            let f1 = match (precision, recall) {
                (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
                (Some(_), Some(_)) => Some(0.0),
                _ => None,
            };
            ClassScores {
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_hand_computed_values() {
        // 8 Negative: 7 right, 1 called Positive; 10 Positive: 9 right, 1 called Negative.
        let m = vec![vec![7, 1], vec![1, 9]];
        assert_eq!(accuracy(&m), Some(16.0 / 18.0));
        let s = class_scores(&m);
        assert_eq!(s[0].precision, Some(7.0 / 8.0));
        assert_eq!(s[0].recall, Some(7.0 / 8.0));
        assert_eq!(s[1].precision, Some(9.0 / 10.0));
        assert_eq!(s[1].recall, Some(9.0 / 10.0));
        assert!((s[1].f1.unwrap() - 0.9).abs() < 1e-12);
        assert_eq!(s[1].support, 10);
        assert_eq!(row_fractions(&m[0]), vec![Some(0.875), Some(0.125)]);
    }

    #[test]
    fn empty_classes_give_no_number_instead_of_nan() {
        let m = vec![vec![0, 0], vec![0, 5]];
        let s = class_scores(&m);
        assert_eq!(s[0].precision, None);
        assert_eq!(s[0].recall, None);
        assert_eq!(s[0].f1, None);
        assert_eq!(row_fractions(&m[0]), vec![None, None]);
        assert_eq!(accuracy(&[vec![0]]), None);
    }

    #[test]
    fn items_are_counted_by_truth_and_prediction() {
        let item = |truth, predicted| TestItem {
            path: "x".into(),
            truth,
            predicted,
            score: 0.9,
            loss: 0.1,
        };
        let items = [item(0, 0), item(0, 1), item(1, 1), item(5, 0)];
        assert_eq!(
            confusion_from_items(&items, 2),
            vec![vec![1, 1], vec![0, 1]]
        );
    }
}
