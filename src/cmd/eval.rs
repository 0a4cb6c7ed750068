//! `crackscope eval` and the test pass after training: classify a labelled set with a saved model,
//! print the confusion counts and statistics, save `report.json` and `predictions.csv`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::cli::EvalArgs;
use crate::config::Recipe;
use crate::data::loader::{decode_all, DecodedSet};
use crate::data::scan::{scan, Skipped};
use crate::data::split::Manifest;
use crate::model::{self, LoadedModel};
use crate::run::RunDir;
use crate::train::evaluate::{classify, summarize, Prediction};
use crate::train::metrics::ClassStats;

/// What `report.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub model: PathBuf,
    /// What was classified, in words ("test split of runs/x", or a folder).
    pub data: String,
    pub images: usize,
    pub accuracy: f64,
    pub loss: f32,
    pub classes: Vec<String>,
    /// Rows: true class; columns: predicted class.
    pub confusion: Vec<Vec<usize>>,
    pub per_class: Vec<ClassStats>,
    pub skipped: Vec<Skipped>,
}

pub fn eval(args: &EvalArgs) -> Result<()> {
    if let Some((model, run)) = crate::oneclass::model_file::find(&args.target)? {
        return crate::cmd::oneclass::eval(args, &model, run.as_ref());
    }
    let (device, _) = crate::device::resolve(args.device)?;
    let report = if args.target.is_dir() {
        let run = RunDir::open(&args.target)?;
        match &args.data {
            None => {
                let recipe = Recipe::load(&run.recipe())?;
                evaluate_split_on(&run, &run.best_model(), &recipe, &device)?
            }
            Some(data) => evaluate_folder(&run.best_model(), data, &device)?,
        }
    } else {
        let Some(data) = &args.data else {
            bail!(
                "{} is a model file: give --data DIR to evaluate it on a folder-per-class dataset \
                 (or pass a run directory to use its test split)",
                args.target.display()
            );
        };
        evaluate_folder(&args.target, data, &device)?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// The test split of a run, classified with `model_path`; writes `report.json` and `predictions.csv`.
pub fn evaluate_split(run: &RunDir, model_path: &Path, recipe: &Recipe) -> Result<Report> {
    let (device, _) = crate::device::resolve(recipe.train.device)?;
    evaluate_split_on(run, model_path, recipe, &device)
}

fn evaluate_split_on(
    run: &RunDir,
    model_path: &Path,
    recipe: &Recipe,
    device: &candle_core::Device,
) -> Result<Report> {
    let (manifest, loaded) = load_run_model(run, model_path, device)?;
    let paths: Vec<_> = manifest
        .test
        .iter()
        .map(|e| (manifest.absolute(e), e.label))
        .collect();
    let set = Arc::new(decode_all(&paths, recipe.data.input_size));
    let (report, predictions) = classify_set(
        &loaded,
        model_path,
        &set,
        format!("test split of {}", run.path.display()),
        device,
    )?;
    crate::fsutil::write_atomic(&run.report(), &serde_json::to_vec_pretty(&report)?)?;
    write_predictions(&run.predictions(), &set, &predictions, &loaded.classes)?;
    Ok(report)
}

/// A run's split manifest and a model for it; a model of other classes is an error naming both.
pub fn load_run_model(
    run: &RunDir,
    model_path: &Path,
    device: &candle_core::Device,
) -> Result<(Manifest, LoadedModel)> {
    let manifest = Manifest::load(&run.manifest())?;
    let loaded = model::load_model(model_path, device)?;
    if loaded.classes != manifest.classes {
        bail!(
            "{} classifies {:?} but the run's data has classes {:?}",
            model_path.display(),
            loaded.classes,
            manifest.classes
        );
    }
    Ok((manifest, loaded))
}

/// Every image of a folder-per-class dataset; its class names must be among the model's.
fn evaluate_folder(model_path: &Path, data: &Path, device: &candle_core::Device) -> Result<Report> {
    let loaded = model::load_model(model_path, device)?;
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
    let mut set = decode_all(&paths, crate::cmd::predict::input_size(&loaded));
    set.skipped.extend(dataset.skipped);
    Ok(classify_set(
        &loaded,
        model_path,
        &Arc::new(set),
        data.display().to_string(),
        device,
    )?
    .0)
}

fn classify_set(
    loaded: &LoadedModel,
    model_path: &Path,
    set: &Arc<DecodedSet>,
    description: String,
    device: &candle_core::Device,
) -> Result<(Report, Vec<Prediction>)> {
    if set.images.is_empty() {
        bail!("no readable images to evaluate in the {description}");
    }
    let predictions = classify(&loaded.model, set, 100, device)?;
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
    let mut confusion = crate::train::metrics::Confusion::new(report.classes.clone());
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

/// One line per image: path, true and predicted class, the predicted class's score, every probability.
fn write_predictions(
    path: &Path,
    set: &DecodedSet,
    predictions: &[Prediction],
    classes: &[String],
) -> Result<()> {
    let mut csv = String::from("path,truth,predicted,score");
    for c in classes {
        csv += &format!(",p_{}", csv_field(c));
    }
    csv.push('\n');
    for p in predictions {
        csv += &format!(
            "{},{},{},{:.6}",
            csv_field(&set.paths[p.index].display().to_string()),
            csv_field(&classes[p.truth]),
            csv_field(&classes[p.predicted]),
            p.probabilities[p.predicted]
        );
        for prob in &p.probabilities {
            csv += &format!(",{prob:.6}");
        }
        csv.push('\n');
    }
    crate::fsutil::write_atomic(path, csv.as_bytes()).context("cannot save the predictions")
}

/// Quotes a CSV field when it holds a comma, quote or newline (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
