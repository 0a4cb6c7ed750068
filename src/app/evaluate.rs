//! Classifying a labelled set with a saved model into a [`Report`] and per-image predictions: the
//! test pass after training and `crackscope eval` share it, so both save the same files.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::data::dataset::scan;
use crate::data::loader::DecodedSet;
use crate::detector::classifier::{open_run_model, Classifier};
use crate::model::LoadOptions;
use crate::run::predictions::{PredictionRow, Predictions};
use crate::run::recipe::{DataRoots, Recipe};
use crate::run::report::Report;
use crate::run::RunDir;
use crate::train::evaluate::{summarize, Prediction};

/// The test split of a run, classified with `model_path`; writes `report.json` and `predictions.csv`.
pub fn evaluate_split(run: &RunDir, model_path: &Path, recipe: &Recipe) -> Result<Report> {
    let (device, _) = crate::model::device::resolve(recipe.train.device)?;
    evaluate_split_on(run, model_path, &LoadOptions::default(), &device)
}

/// The images are prepared at the checkpoint's input size (the run's `data.input_size`, which
/// training records in every checkpoint).
fn evaluate_split_on(
    run: &RunDir,
    model_path: &Path,
    options: &LoadOptions,
    device: &candle_core::Device,
) -> Result<Report> {
    let tested = test_split(run, model_path, options, device)?;
    tested.save(run)?;
    Ok(tested.report)
}

/// A run's test split, classified, not yet saved.
pub struct TestedSplit {
    pub report: Report,
    set: Arc<DecodedSet>,
    predictions: Vec<Prediction>,
    classes: Vec<String>,
}

impl TestedSplit {
    /// Writes `report.json` and `predictions.csv`.
    pub fn save(&self, run: &RunDir) -> Result<()> {
        self.report.save(&run.report())?;
        write_predictions(
            &run.predictions(),
            &self.set,
            &self.predictions,
            &self.classes,
        )
    }
}

/// A run's test split classified with `model_path`, without saving it (`eval` prints before saving).
pub fn test_split(
    run: &RunDir,
    model_path: &Path,
    options: &LoadOptions,
    device: &candle_core::Device,
) -> Result<TestedSplit> {
    let (manifest, loaded) = open_run_model(run, model_path, device, options)?;
    let paths: Vec<_> = manifest
        .test
        .iter()
        .map(|e| (manifest.absolute(e), e.label))
        .collect();
    let set = Arc::new(loaded.decode_set(&paths));
    let (report, predictions) = classify_set(
        &loaded,
        model_path,
        &set,
        format!("test split of {}", run.path.display()),
    )?;
    Ok(TestedSplit {
        report,
        set,
        predictions,
        classes: loaded.classes,
    })
}

/// Every image of a folder-per-class dataset; its class names must be among the model's.
pub fn evaluate_folder(
    model_path: &Path,
    data: &DataRoots,
    options: &LoadOptions,
    device: &candle_core::Device,
) -> Result<Report> {
    let loaded = Classifier::open(model_path, device, options)?;
    let dataset = scan(data)?;
    let mut paths = Vec::with_capacity(dataset.items.len());
    for item in &dataset.items {
        let name = &dataset.classes[item.label];
        let Some(label) = loaded.classes.iter().position(|c| c == name) else {
            bail!(
                "{data}: class folder '{name}' is not one of the model's classes {:?}",
                loaded.classes
            );
        };
        paths.push((item.path.clone(), label));
    }
    let mut set = loaded.decode_set(&paths);
    set.skipped.extend(dataset.skipped);
    Ok(classify_set(&loaded, model_path, &Arc::new(set), data.to_string())?.0)
}

fn classify_set(
    loaded: &Classifier,
    model_path: &Path,
    set: &Arc<DecodedSet>,
    description: String,
) -> Result<(Report, Vec<Prediction>)> {
    if set.images.is_empty() {
        bail!("no readable images to evaluate in the {description}");
    }
    let predictions = loaded.classify_set(set)?;
    let (confusion, loss) = summarize(&predictions, &loaded.classes);
    let report = Report {
        model: model_path.to_path_buf(),
        data: description,
        images: predictions.len(),
        accuracy: confusion.accuracy(),
        loss,
        per_class: confusion.per_class(),
        classes: confusion.classes.clone(),
        confusion: confusion.counts,
        skipped: set.skipped.clone(),
    };
    Ok((report, predictions))
}

/// The report as `eval` and the end of training print it: the confusion counts and statistics, then
/// the skipped files.
pub fn report_text(report: &Report) -> String {
    use std::fmt::Write;
    let mut confusion = crate::core::stats::Confusion::new(report.classes.clone());
    confusion.counts = report.confusion.clone();
    let mut text = format!(
        "\n{} images of the {} with {}\n",
        report.images,
        report.data,
        report.model.display()
    );
    text.push_str(&confusion.render());
    if !report.skipped.is_empty() {
        let _ = writeln!(text, "{} unreadable files skipped:", report.skipped.len());
        for s in &report.skipped {
            let _ = writeln!(text, "  {}: {}", s.path.display(), s.reason);
        }
    }
    text
}

/// One row per image, in `predictions.csv`'s format (see [`Predictions`]).
fn write_predictions(
    path: &Path,
    set: &DecodedSet,
    predictions: &[Prediction],
    classes: &[String],
) -> Result<()> {
    let rows = predictions
        .iter()
        .map(|p| PredictionRow {
            path: set.paths[p.index].clone(),
            truth: p.truth,
            predicted: p.predicted,
            probabilities: p.probabilities.clone(),
        })
        .collect();
    Predictions {
        classes: classes.to_vec(),
        rows,
    }
    .save(path)
    .context("cannot save the predictions")
}
