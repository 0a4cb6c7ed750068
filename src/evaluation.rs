//! Classifying a labelled set with a saved model into a [`Report`] and per-image predictions: the
//! test pass after training and `crackscope eval` share it, so both save the same files.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::classify::{open_run_model, Classifier};
use crate::config::{DataRoots, Recipe};
use crate::data::loader::DecodedSet;
use crate::data::scan::scan;
use crate::data::scan::Skipped;
use crate::model::LoadOptions;
use crate::run::predictions::{PredictionRow, Predictions};
use crate::run::report::Report;
use crate::run::RunDir;
use crate::train::evaluate::{summarize, Prediction};

/// The test split of a run, classified with `model_path`; writes `report.json` and `predictions.csv`.
pub fn evaluate_split(run: &RunDir, model_path: &Path, recipe: &Recipe) -> Result<Report> {
    let (device, _) = crate::device::resolve(recipe.train.device)?;
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

/// Classes up to which the terminal gets the whole confusion matrix; `report.json` (and `--json`)
/// always hold all of it.
pub const MAX_PRINTED_CLASSES: usize = 20;
/// Skipped files listed by name, per kind, on the terminal; `report.json` lists them all.
pub const MAX_LISTED_FILES: usize = 20;

/// The report as `eval` and the end of training print it: the confusion counts and statistics
/// (capped at [`MAX_PRINTED_CLASSES`] classes), then the skipped files.
pub fn report_text(report: &Report) -> String {
    let mut confusion = crate::stats::Confusion::new(report.classes.clone());
    confusion.counts = report.confusion.clone();
    let mut text = format!(
        "\n{} images of the {} with {}\n",
        report.images,
        report.data,
        report.model.display()
    );
    text.push_str(&confusion.render_capped(MAX_PRINTED_CLASSES));
    text.push_str(&skipped_text(&report.skipped));
    text
}

/// The files a report left out, in two lists: those that could not be read, and those left out on
/// purpose (labelling conflicts, links that loop); at most [`MAX_LISTED_FILES`] named of each.
pub fn skipped_text(skipped: &[Skipped]) -> String {
    use std::fmt::Write;
    let (unreadable, on_purpose): (Vec<&Skipped>, Vec<&Skipped>) =
        skipped.iter().partition(|s| s.is_unreadable());
    let mut text = String::new();
    for (files, what) in [
        (unreadable, "unreadable files skipped"),
        (
            on_purpose,
            "files left out on purpose (labelling conflicts, links that loop)",
        ),
    ] {
        if files.is_empty() {
            continue;
        }
        let _ = writeln!(text, "{} {what}:", files.len());
        for s in files.iter().take(MAX_LISTED_FILES) {
            let _ = writeln!(text, "  {}: {}", s.path.display(), s.reason);
        }
        if files.len() > MAX_LISTED_FILES {
            let _ = writeln!(
                text,
                "  ... and {} more (all in the JSON report)",
                files.len() - MAX_LISTED_FILES
            );
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn report(classes: usize, skipped: Vec<Skipped>) -> Report {
        let names: Vec<String> = (0..classes).map(|c| format!("class {c}")).collect();
        let mut confusion = crate::stats::Confusion::new(names.clone());
        for c in 0..classes {
            confusion.add(c, c);
            confusion.add(c, (c + 1) % classes);
        }
        Report {
            model: PathBuf::from("model.safetensors"),
            data: "a test".into(),
            images: 2 * classes,
            accuracy: confusion.accuracy(),
            loss: 0.5,
            per_class: confusion.per_class(),
            classes: names,
            confusion: confusion.counts,
            skipped,
        }
    }

    #[test]
    fn a_report_of_many_classes_prints_a_capped_summary() {
        let text = report_text(&report(1000, Vec::new()));
        assert!(text.len() < 10_000, "{} bytes printed", text.len());
        assert!(
            text.contains("1000 classes: the confusion matrix is not printed")
                && text.contains("and 980 more classes")
                && text.contains("accuracy 0.5000 (1000 of 2000)"),
            "{text}"
        );
        // A few classes still get the whole matrix.
        let text = report_text(&report(3, Vec::new()));
        assert!(
            text.contains("predicted ->") && text.contains("class 2"),
            "{text}"
        );
    }

    #[test]
    fn skipped_files_are_listed_by_kind_and_capped() {
        let mut skipped: Vec<Skipped> = (0..50)
            .map(|i| Skipped {
                path: PathBuf::from(format!("Positive/{i}.jpg")),
                reason: "truncated JPEG".into(),
            })
            .collect();
        skipped.push(Skipped {
            path: PathBuf::from("Negative/twin.jpg"),
            reason: "labelling conflict: labelled 'Negative' here, but ...".into(),
        });
        let text = skipped_text(&skipped);
        assert!(text.contains("50 unreadable files skipped:"), "{text}");
        assert!(text.contains("... and 30 more"), "{text}");
        assert!(
            text.contains("1 files left out on purpose") && text.contains("Negative/twin.jpg"),
            "{text}"
        );
        assert!(text.lines().count() < 30, "{text}");
    }
}
