//! A detector's answers on a labelled set of decoded images: the validation pass during training,
//! the test pass after it, and `crackscope eval`. One [`Evaluation`] for every kind of model, with
//! the kind's own part in [`Verdicts`]: the run's report and `predictions.csv` are made from it
//! (see `run::report`, `run::predictions`), the same way for both kinds.

use std::path::PathBuf;

use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor, D};
use image::RgbImage;

use super::oneclass::threshold::Threshold;
use crate::core::math::argmax;
use crate::core::stats::Confusion;
use crate::data::dataset::Skipped;
use crate::data::loader::{BatchLoader, DecodedSet, EpochPlan, Images};
use crate::model::SqueezeNet;

/// The two kinds of image a one-class model tells apart, in the order of its report's rows and
/// columns and of its verdicts.
pub const KINDS: [&str; 2] = ["normal", "anomaly"];

/// A labelled set as a detector judged it.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The data's class names, which `labels` index (for a classifier, its own classes).
    pub classes: Vec<String>,
    /// Each judged image and its true class, in set order.
    pub paths: Vec<PathBuf>,
    pub labels: Vec<usize>,
    /// Files that could not be read, and why.
    pub skipped: Vec<Skipped>,
    pub verdicts: Verdicts,
}

/// What each kind of model says about the images.
#[derive(Debug, Clone)]
pub enum Verdicts {
    /// A classifier: every image's class probabilities (in set order).
    Classes(Vec<Prediction>),
    /// A one-class model: every image's anomaly score against its threshold.
    Anomaly(AnomalyVerdicts),
}

/// A one-class model's scores of a set.
#[derive(Debug, Clone)]
pub struct AnomalyVerdicts {
    /// The class the model was fitted on; every other class is an anomaly.
    pub normal_class: String,
    /// Its index in [`Evaluation::classes`].
    pub normal: usize,
    /// One score per image, in set order.
    pub scores: Vec<f32>,
    pub threshold: Threshold,
    pub scan_threshold: Option<Threshold>,
    /// How fast the set was scored.
    pub images_per_s: f64,
}

impl AnomalyVerdicts {
    /// Whether each image is an anomaly (not of the normal class).
    pub fn anomalous(&self, labels: &[usize]) -> Vec<bool> {
        labels.iter().map(|&l| l != self.normal).collect()
    }

    /// Whether `score` is flagged (above the threshold).
    pub fn flagged(&self, score: f32) -> bool {
        score > self.threshold.value
    }
}

impl Evaluation {
    /// The set's paths, labels and skipped files around a kind's verdicts.
    pub fn of_set(set: &DecodedSet, classes: Vec<String>, verdicts: Verdicts) -> Evaluation {
        Evaluation {
            classes,
            paths: set.paths.clone(),
            labels: set.labels.clone(),
            skipped: set.skipped.clone(),
            verdicts,
        }
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// The pixels of a set decoded in memory (one-class scoring keeps them all).
pub fn in_memory(set: &DecodedSet) -> Result<&[RgbImage]> {
    match &set.images {
        Images::InMemory(images) => Ok(images),
        Images::Streamed(_) => bail!("one-class mode needs its images decoded in memory"),
    }
}

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
