//! Classifies a decoded image set with a model: the validation pass during training, the test pass
//! after it, and `crackscope eval`.

use anyhow::Result;
use candle_core::{DType, Device, Tensor, D};

use crate::data::loader::{BatchLoader, DecodedSet, EpochPlan};
use crate::model::SqueezeNet;
use crate::stats::Confusion;

/// One image's outcome.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Index into the evaluated set.
    pub index: usize,
    pub truth: usize,
    pub predicted: usize,
    pub probabilities: Vec<f32>,
    /// Cross-entropy of the true class.
    pub loss: f32,
}

/// Runs the network in evaluation mode (no dropout, no augmentation) over every image of `set`.
pub fn classify(
    model: &SqueezeNet,
    set: &std::sync::Arc<DecodedSet>,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Prediction>> {
    let size = set.size as usize;
    let mut out = Vec::with_capacity(set.images.len());
    for batch in BatchLoader::new(set.clone(), EpochPlan::evaluation(batch_size))? {
        let batch = batch?;
        let n = batch.labels.len();
        let x = Tensor::from_vec(batch.data, (n, 3, size, size), device)?;
        let logits = model.forward_t(&x, false)?.detach();
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_dtype(DType::F32)?;
        let rows = log_probs.to_vec2::<f32>()?;
        for ((row, &label), &index) in rows.into_iter().zip(&batch.labels).zip(&batch.indices) {
            // A NaN output has no class: argmax would call it the first one, confidently.
            if let Some(bad) = row.iter().find(|v| !v.is_finite()) {
                anyhow::bail!(
                    "the network's output for {} is not a finite number ({bad}): the model is \
                     broken, so no image gets a label",
                    set.paths[index].display()
                );
            }
            let predicted = argmax(&row);
            out.push(Prediction {
                index,
                truth: label as usize,
                predicted,
                loss: -row[label as usize],
                probabilities: row.iter().map(|lp| lp.exp()).collect(),
            });
        }
    }
    Ok(out)
}

/// The confusion matrix and the mean loss of a set of predictions.
pub fn summarize(predictions: &[Prediction], classes: &[String]) -> (Confusion, f32) {
    let mut confusion = Confusion::new(classes.to_vec());
    for p in predictions {
        confusion.add(p.truth, p.predicted);
    }
    let loss = predictions.iter().map(|p| p.loss).sum::<f32>() / predictions.len().max(1) as f32;
    (confusion, loss)
}

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
