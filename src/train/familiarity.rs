//! The familiarity summary of a finished training or fit (see `detector::familiarity`): the
//! model file's own features of at most 1000 of its training images, evenly spaced, decoded as
//! for evaluation (no augmentation), added to the model file. A separate pass after training
//! rather than features gathered during the last epoch: those would be of augmented images and
//! of weights that changed under them, and the best model may come from an earlier epoch. The
//! pass runs the network to the summary's features (fire5 for a classifier) over at most 1000
//! images; a notice says what was added and the threshold.

use anyhow::{Context, Result};
use candle_core::Device;
use image::RgbImage;

use crate::data::loader::DecodedSet;
use crate::detector::familiarity::{
    bank_indices, classifier_features, patch_features_mean, Familiarity, CLASSIFIER_LAYER,
};
use crate::detector::oneclass::OneClassModel;
use crate::run::event::Event;

/// Images per pass.
const CHUNK: usize = 32;

/// Adds the summary to the classifier saved at `model_file` from its training images `train`;
/// nothing when no model was saved.
pub fn summarize_classifier(
    model_file: &std::path::Path,
    train: &DecodedSet,
    device: &Device,
    emit: &mut dyn FnMut(Event),
) -> Result<()> {
    if !model_file.exists() || train.len() < 2 {
        return Ok(());
    }
    let loaded = crate::model::load_model(model_file, device)?;
    let rows = features_of(train, |images| {
        classifier_features(&loaded.model, images, device)
    })?;
    let features = format!("{CLASSIFIER_LAYER} mean");
    attach(model_file, &rows, &features, train.len(), emit)
}

/// Adds the summary to the one-class model saved at `model_file` from its fit images `train`.
pub fn summarize_oneclass(
    model_file: &std::path::Path,
    model: &OneClassModel,
    train: &DecodedSet,
    emit: &mut dyn FnMut(Event),
) -> Result<()> {
    if train.len() < 2 {
        return Ok(());
    }
    let rows = features_of(train, |images| {
        Ok(patch_features_mean(model, images)?.concat())
    })?;
    attach(model_file, &rows, "patch features mean", train.len(), emit)
}

/// The pooled features (`pool`) of the bank's images of `train`, row after row.
fn features_of(
    train: &DecodedSet,
    pool: impl Fn(&[RgbImage]) -> Result<Vec<f32>>,
) -> Result<Vec<f32>> {
    let mut rows = Vec::new();
    for chunk in bank_indices(train.len()).chunks(CHUNK) {
        let images = chunk
            .iter()
            .map(|&i| train.image(i).map(|image| image.into_owned()))
            .collect::<Result<Vec<_>>>()?;
        rows.extend(pool(&images)?);
    }
    Ok(rows)
}

fn attach(
    model_file: &std::path::Path,
    rows: &[f32],
    features: &str,
    of_images: usize,
    emit: &mut dyn FnMut(Event),
) -> Result<()> {
    let images = bank_indices(of_images).len();
    let summary = Familiarity::fit(rows, rows.len() / images, features, of_images)
        .context("cannot summarise the training images' features")?;
    summary.attach(model_file)?;
    emit(Event::Notice {
        message: format!(
            "familiarity summary of {} of {} training images added to the model: \
             images farther than {:.3} from all of them are flagged as unfamiliar",
            summary.stored.images, of_images, summary.stored.threshold
        ),
    });
    Ok(())
}
