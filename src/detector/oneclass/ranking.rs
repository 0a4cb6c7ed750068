//! Threshold-free ranking quality of anomaly scores: AUROC and average precision.
//!
//! Both treat anomalies as the positive kind and higher scores as more anomalous; ties are
//! handled exactly (a tie between a normal and an anomalous image counts one half for AUROC, and
//! tied scores form one step of the precision-recall curve), so a constant scorer gets 0.5.

/// AUROC comes from the one implementation in [`crate::core::stats`].
pub use crate::core::stats::auroc;

/// Average precision (the area under the precision-recall curve as a step function, as
/// scikit-learn computes it), or None unless both kinds are present.
pub fn average_precision(scores: &[f32], anomalous: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), anomalous.len(), "one label per score");
    let positives = anomalous.iter().filter(|&&a| a).count();
    if positives == 0 || positives == anomalous.len() {
        return None;
    }
    let mut order = ascending(scores);
    order.reverse();
    let (mut hits, mut seen, mut ap) = (0usize, 0usize, 0f64);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let new_hits = order[i..=j].iter().filter(|&&k| anomalous[k]).count();
        hits += new_hits;
        seen += j - i + 1;
        ap += (new_hits as f64 / positives as f64) * (hits as f64 / seen as f64);
        i = j + 1;
    }
    Some(ap)
}

/// Indices sorted by ascending score (NaN last, so a broken score never looks normal).
fn ascending(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_reversed_and_constant_scores() {
        let labels = [false, false, true, true];
        assert_eq!(average_precision(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(average_precision(&[0.5; 4], &labels), Some(0.5));
        assert_eq!(average_precision(&[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn matches_hand_computed_values() {
        let scores = [0.1, 0.4, 0.35, 0.8, 0.9];
        let labels = [false, false, true, true, false];
        // Ranked: 0.9 (n), 0.8 (a): precision 1/2 at recall 1/2; 0.4 (n), 0.35 (a): 2/4 at 1.
        let ap = average_precision(&scores, &labels).unwrap();
        assert!((ap - (0.5 * 0.5 + 0.5 * 0.5)).abs() < 1e-12, "{ap}");
    }
}
