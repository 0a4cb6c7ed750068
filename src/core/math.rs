//! The two reductions every consumer of class scores needs, in one place so that they agree:
//! which class wins, and the probabilities of all of them.

/// The index of the largest value (the first of equals; 0 for an empty slice).
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

/// Softmax in f64, so probabilities of confident predictions are exact to f32 precision.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits
        .iter()
        .map(|&z| z as f64)
        .fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|&z| (z as f64 - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    exp.iter().map(|e| (e / total) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_equals() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), 1);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn softmax_does_not_saturate_for_confident_logits() {
        let p = softmax(&[0.0, 40.0]);
        assert!(p[0] > 0.0 && p[0] < 1e-17, "{p:?}");
        assert_eq!(p[1], 1.0);
    }
}
