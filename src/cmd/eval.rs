//! `crackscope eval` and the test pass after training: classify a labelled set with a saved model,
//! print the confusion counts and statistics, save `report.json` and `predictions.csv`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::classify::{open_run_model, Classifier};
use crate::cli::EvalArgs;
use crate::config::Recipe;
use crate::data::loader::DecodedSet;
use crate::data::scan::scan;
use crate::model::LoadOptions;
use crate::run::predictions::{PredictionRow, Predictions};
use crate::run::report::Report;
use crate::run::RunDir;
use crate::train::evaluate::{summarize, Prediction};

pub fn eval(args: &EvalArgs) -> Result<()> {
    if let Some((model, run)) = crate::oneclass::model_file::find(&args.target)? {
        return crate::cmd::oneclass::eval(args, &model, run.as_ref());
    }
    let (device, _) = crate::device::resolve(args.device)?;
    let options = args.model_options.load_options();
    // Saving comes after printing: a run on a read-only disk still shows its results.
    let mut unsaved = None;
    let report = if args.target.is_dir() {
        let run = RunDir::open(&args.target)?;
        match &args.data {
            None => {
                let tested = test_split(&run, &run.best_model(), &options, &device)?;
                unsaved = tested.save(&run).err();
                tested.report
            }
            Some(data) => evaluate_folder(&run.best_model(), data, &options, &device)?,
        }
    } else {
        let Some(data) = &args.data else {
            bail!(
                "{} is a model file: give --data DIR to evaluate it on a folder-per-class dataset \
                 (or pass a run directory to use its test split)",
                args.target.display()
            );
        };
        evaluate_folder(&args.target, data, &options, &device)?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if let Some(e) = unsaved {
        eprintln!(
            "warning: the results above could not be saved in {}: {e:#}",
            args.target.display()
        );
    }
    Ok(())
}

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
struct TestedSplit {
    report: Report,
    set: Arc<DecodedSet>,
    predictions: Vec<Prediction>,
    classes: Vec<String>,
}

impl TestedSplit {
    /// Writes `report.json` and `predictions.csv`.
    fn save(&self, run: &RunDir) -> Result<()> {
        self.report.save(&run.report())?;
        write_predictions(
            &run.predictions(),
            &self.set,
            &self.predictions,
            &self.classes,
        )
    }
}

fn test_split(
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
fn evaluate_folder(
    model_path: &Path,
    data: &Path,
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
                "{}: class folder '{name}' is not one of the model's classes {:?}",
                data.display(),
                loaded.classes
            );
        };
        paths.push((item.path.clone(), label));
    }
    let mut set = loaded.decode_set(&paths);
    set.skipped.extend(dataset.skipped);
    Ok(classify_set(
        &loaded,
        model_path,
        &Arc::new(set),
        data.display().to_string(),
    )?
    .0)
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

pub fn print_report(report: &Report) {
    let mut confusion = crate::stats::Confusion::new(report.classes.clone());
    confusion.counts = report.confusion.clone();
    println!(
        "\n{} images of the {} with {}",
        report.images,
        report.data,
        report.model.display()
    );
    print!("{}", confusion.render());
    if !report.skipped.is_empty() {
        println!("{} unreadable files skipped:", report.skipped.len());
        for s in &report.skipped {
            println!("  {}: {}", s.path.display(), s.reason);
        }
    }
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
