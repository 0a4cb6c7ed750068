//! One-class runs end to end: fitting a run (split, bank, threshold, test pass), scoring a run's
//! test split or a folder into a [`OneClassReport`] with `predictions.csv`, scoring image files, and
//! drawing anomaly maps. The commands only parse their arguments and print what comes back.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use image::RgbImage;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::classify::CamSettings;
use crate::config::{DataRoots, Recipe};
use crate::data::decode::{load_rgb, resize_exact};
use crate::data::inputs::{read_each, FileOutcome};
use crate::data::loader::{decode_all, DecodedSet, Images};
use crate::data::scan::{scan, Skipped};
use crate::data::split::{split_each_label, Entry, Fractions, Manifest};
use crate::events::{AnomalyScores, Event, FitStage, FitStart, ScoreHistogram};
use crate::explain::colormap::Colormap;
use crate::explain::figure::figure;
use crate::imaging::write_png;
use crate::oneclass::features::{Extractor, BATCH};
use crate::oneclass::map::draw_over;
use crate::oneclass::model::{fit_bank, score_with, FitStep, Scored};
use crate::oneclass::predictions::{self, ScoredRow};
use crate::oneclass::threshold::{self, Threshold};
use crate::oneclass::{model_file, normal_class, ranking, OneClassModel};
use crate::run::{NewRun, RunDir};
use crate::runlog::RunLog;

/// What `report.json` holds for a one-class model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OneClassReport {
    pub model: PathBuf,
    /// What was scored, in words ("test split of runs/x", or a folder).
    pub data: String,
    pub images: usize,
    pub normal_class: String,
    /// Area under the ROC curve of the scores (None unless both kinds are present).
    pub auroc: Option<f64>,
    pub average_precision: Option<f64>,
    pub threshold: Threshold,
    /// What `scan` reads window scores against (absent for model files from before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_threshold: Option<Threshold>,
    /// Share of images whose verdict at the threshold matches their kind.
    pub accuracy: f64,
    /// `["normal", "anomaly"]`: the rows and columns of `confusion`.
    pub classes: Vec<String>,
    /// Rows: true kind; columns: verdict.
    pub confusion: Vec<Vec<usize>>,
    /// Mean score of each kind (None where a kind is absent).
    pub mean_score: [Option<f64>; 2],
    pub score_images_per_s: f64,
    /// Seconds the fit took (training only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit_seconds: Option<f64>,
    pub skipped: Vec<Skipped>,
}

/// The two kinds, in the order of the report's rows and columns.
pub const KINDS: [&str; 2] = ["normal", "anomaly"];

/// Fits a one-class model on the normal class's training images in a new run (at `run_path`, or a
/// fresh name), chooses the threshold on the validation images, then scores the test split. Every
/// event goes to the run's `metrics.jsonl` and then to `show`. A run whose fit fails is removed.
pub fn fit_run(
    recipe: &Recipe,
    normal: Option<&str>,
    run_path: Option<&Path>,
    show: &mut dyn FnMut(&Event),
) -> Result<(OneClassReport, RunDir)> {
    if recipe.train.weights.as_os_str().is_empty() {
        bail!(
            "one-class mode needs the ImageNet weights: give --weights squeezenet1_1-b8a52dc0.pth \
             (or .safetensors); random features cannot tell normal from anomalous"
        );
    }
    let dataset = scan(&recipe.data.root)?;
    let normal = normal_class(&dataset.classes, normal)?;
    let [train, val, test] = recipe.data.split;
    let fractions = Fractions { train, val, test };
    let split = split_each_label(&dataset, &fractions, recipe.data.split_seed)?;
    let manifest = Manifest::from_split(&dataset, &fractions, recipe.data.split_seed, &split);
    let normal_name = manifest.classes[normal].clone();
    let train_entries: Vec<Entry> = manifest
        .train
        .iter()
        .filter(|e| e.label == normal)
        .cloned()
        .collect();
    if train_entries.len() < 2 {
        bail!(
            "one-class fitting needs at least 2 training images of the normal class '{normal_name}'; \
             the split gives it {} (raise the train fraction with --split)",
            train_entries.len()
        );
    }
    if manifest.val.is_empty() {
        bail!(
            "the split has no validation images to choose the anomaly threshold from (see --split)"
        );
    }
    // Locked while fitting; removed again if the fit fails before the model file is written.
    let mut new = NewRun::create(run_path)?;
    let run = new.run.clone();
    crate::fsutil::write_atomic(&run.recipe(), recipe.to_toml().as_bytes())?;
    manifest.save(&run.manifest())?;
    let mut log = RunLog::append_to(&run.path)?;
    let mut emit = |event: Event| {
        if let Err(e) = log.write(&event) {
            eprintln!("warning: {e:#}");
        }
        show(&event);
    };

    let size = recipe.data.input_size;
    let started = Instant::now();
    let train_set = decode_all(&manifest.labelled(&train_entries), size);
    let val_set = decode_all(&manifest.labelled(&manifest.val), size);
    let mut skipped = dataset.skipped.clone();
    skipped.extend(train_set.skipped.iter().cloned());
    skipped.extend(val_set.skipped.iter().cloned());
    crate::run::skipped::save(&run.skipped(), &skipped)?;
    if val_set.is_empty() {
        bail!(
            "no readable validation images (see {})",
            run.skipped().display()
        );
    }

    let settings = recipe.oneclass.settings(size, recipe.train.seed);
    let extractor = Extractor::imagenet(&recipe.train.weights, settings)?;
    let per_class = |entries: &[Entry]| {
        let mut counts = vec![0; manifest.classes.len()];
        for e in entries {
            counts[e.label] += 1;
        }
        counts
    };
    emit(Event::FitStarted(FitStart {
        run: run.path.clone(),
        device: "cpu".into(),
        classes: manifest.classes.clone(),
        normal_class: normal_name.clone(),
        train_images: train_set.len(),
        val_per_class: per_class(&manifest.val),
        test_per_class: per_class(&manifest.test),
        layers: extractor.settings().layers.to_vec(),
        max_bank: extractor.settings().max_bank,
    }));
    // Progress at most a few times a second (and always at the end of a stage): the coreset
    // reports every entry it chooses.
    let mut last_report: Option<(FitStage, Instant)> = None;
    let mut progress = |stage: FitStage, done: usize, total: usize| {
        let due = match last_report {
            Some((last, at)) => last != stage || at.elapsed().as_secs_f64() >= 0.25,
            None => true,
        };
        if due || done == total {
            last_report = Some((stage, Instant::now()));
            emit(Event::Fitting {
                stage,
                done,
                total,
                elapsed_s: started.elapsed().as_secs_f64(),
            });
        }
    };
    let bank = fit_bank(&extractor, in_memory(&train_set)?, &mut |step| match step {
        FitStep::Features { done, total } => progress(FitStage::Features, done, total),
        FitStep::Coreset { target, .. } => progress(FitStage::Coreset, 0, target),
        FitStep::CoresetChosen { chosen, target } => progress(FitStage::Coreset, chosen, target),
    })?;
    let val_images = in_memory(&val_set)?;
    let mut val_scores = Vec::with_capacity(val_images.len());
    progress(FitStage::Validation, 0, val_images.len());
    for chunk in val_images.chunks(BATCH) {
        val_scores.extend(score_with(&extractor, &bank, chunk)?);
        progress(FitStage::Validation, val_scores.len(), val_images.len());
    }
    let scores: Vec<f32> = val_scores.iter().map(|s| s.score).collect();
    let anomalous: Vec<bool> = val_set.labels.iter().map(|&l| l != normal).collect();
    let fpr = extractor.settings().false_positive_rate;
    let threshold = threshold::choose(&scores, &anomalous, fpr)?;
    let edge = extractor.edge_patches();
    let inner_scores: Vec<f32> = val_scores.iter().map(|s| s.inner_score(edge)).collect();
    let scan_threshold = Some(threshold::choose(&inner_scores, &anomalous, fpr)?);
    let fit_seconds = started.elapsed().as_secs_f64();
    let val_auroc = ranking::auroc(&scores, &anomalous);
    let model = OneClassModel {
        extractor,
        bank,
        threshold,
        scan_threshold,
        normal_class: normal_name,
        classes: manifest.classes.clone(),
    };
    model_file::save(&model, &run.best_model())?;
    new.keep();
    emit(Event::Fitted {
        bank_entries: model.bank.len(),
        threshold: model.threshold.value,
        threshold_rule: rule_text(&model.threshold),
        scan_threshold: model.scan_threshold.as_ref().map(|t| t.value),
        val_auroc,
        elapsed_s: fit_seconds,
    });
    emit(Event::Notice {
        message: format!("model in {}", run.best_model().display()),
    });
    emit(Event::Finished {
        iteration: 0,
        best_val_accuracy: None,
        stopped_early: false,
        elapsed_s: fit_seconds,
    });

    let (mut report, scored) = evaluate_split_scored(&run, &model, &manifest, size)?;
    report.fit_seconds = Some(fit_seconds);
    crate::fsutil::write_atomic(&run.report(), &serde_json::to_vec_pretty(&report)?)?;
    emit(Event::AnomalyScored(AnomalyScores {
        normal_class: report.normal_class.clone(),
        auroc: report.auroc,
        average_precision: report.average_precision,
        threshold: report.threshold.value,
        histogram: ScoreHistogram::of(
            &scored.scores,
            &scored.anomalous,
            HISTOGRAM_BINS,
            report.threshold.value,
        ),
    }));
    emit(Event::Tested {
        accuracy: report.accuracy as f32,
        confusion: report.confusion.clone(),
        classes: report.classes.clone(),
    });
    Ok((report, run))
}

/// The threshold's rule in words.
pub fn rule_text(t: &Threshold) -> String {
    match t.rule {
        threshold::ThresholdRule::BestF1 { f1 } => format!("best validation F1 {f1:.3}"),
        threshold::ThresholdRule::NormalFalsePositiveRate {
            false_positive_rate,
        } => format!(
            "no anomalies among the validation images: at most {:.1}% of normal ones above it",
            100.0 * false_positive_rate
        ),
    }
}

/// Bins of the score histogram in the `anomaly_scored` event: finer than any display shows
/// (each re-bins to its width), and a bounded line in `metrics.jsonl` whatever the test set.
pub const HISTOGRAM_BINS: usize = 120;

/// Each scored image's score and kind, in order.
pub struct ScoredSet {
    pub scores: Vec<f32>,
    pub anomalous: Vec<bool>,
}

/// The run's test split scored with `model`; writes `report.json` and `predictions.csv`.
pub fn evaluate_split(
    run: &RunDir,
    model: &OneClassModel,
    manifest: &Manifest,
    size: u32,
) -> Result<OneClassReport> {
    Ok(evaluate_split_scored(run, model, manifest, size)?.0)
}

/// [`evaluate_split`], with every image's score and kind for the score histogram.
pub fn evaluate_split_scored(
    run: &RunDir,
    model: &OneClassModel,
    manifest: &Manifest,
    size: u32,
) -> Result<(OneClassReport, ScoredSet)> {
    let set = decode_all(&manifest.labelled(&manifest.test), size);
    let normal = class_index(&manifest.classes, &model.normal_class)?;
    let (report, scored) = score_set(
        model,
        &run.best_model(),
        &set,
        normal,
        format!("test split of {}", run.path.display()),
        Some(&run.predictions()),
    )?;
    crate::fsutil::write_atomic(&run.report(), &serde_json::to_vec_pretty(&report)?)?;
    Ok((report, scored))
}

fn class_index(classes: &[String], name: &str) -> Result<usize> {
    classes.iter().position(|c| c == name).with_context(|| {
        format!(
            "the data has no class '{name}' (classes: {})",
            classes.join(", ")
        )
    })
}

/// Scores a decoded set whose label `normal` is the normal kind; writes the predictions when
/// `predictions` is given.
fn score_set(
    model: &OneClassModel,
    model_path: &Path,
    set: &DecodedSet,
    normal: usize,
    description: String,
    predictions: Option<&Path>,
) -> Result<(OneClassReport, ScoredSet)> {
    if set.is_empty() {
        bail!("no readable images to score in the {description}");
    }
    let started = Instant::now();
    let scored = model.score(in_memory(set)?)?;
    let seconds = started.elapsed().as_secs_f64();
    let scores: Vec<f32> = scored.iter().map(|s| s.score).collect();
    let anomalous: Vec<bool> = set.labels.iter().map(|&l| l != normal).collect();
    let mut confusion = vec![vec![0usize; 2]; 2];
    let mut sums = [(0f64, 0usize); 2];
    for (&s, &a) in scores.iter().zip(&anomalous) {
        confusion[usize::from(a)][usize::from(model.is_anomalous(s))] += 1;
        sums[usize::from(a)].0 += f64::from(s);
        sums[usize::from(a)].1 += 1;
    }
    if let Some(path) = predictions {
        write_predictions(path, model, set, &scores)?;
    }
    let report = OneClassReport {
        model: model_path.to_path_buf(),
        data: description,
        images: set.len(),
        normal_class: model.normal_class.clone(),
        auroc: ranking::auroc(&scores, &anomalous),
        average_precision: ranking::average_precision(&scores, &anomalous),
        threshold: model.threshold.clone(),
        scan_threshold: model.scan_threshold.clone(),
        accuracy: (confusion[0][0] + confusion[1][1]) as f64 / set.len() as f64,
        classes: KINDS.iter().map(|k| k.to_string()).collect(),
        confusion,
        mean_score: sums.map(|(sum, n)| (n > 0).then(|| sum / n as f64)),
        score_images_per_s: set.len() as f64 / seconds.max(1e-9),
        fit_seconds: None,
        skipped: set.skipped.clone(),
    };
    Ok((report, ScoredSet { scores, anomalous }))
}

/// One row per image: path, true class, its kind, the score and the verdict.
fn write_predictions(
    path: &Path,
    model: &OneClassModel,
    set: &DecodedSet,
    scores: &[f32],
) -> Result<()> {
    let rows: Vec<ScoredRow> = set
        .paths
        .iter()
        .zip(&set.labels)
        .zip(scores)
        .map(|((p, &label), &score)| {
            let class = model.classes.get(label).map(String::as_str).unwrap_or("?");
            ScoredRow {
                path: p.clone(),
                truth: class.to_string(),
                anomalous: class != model.normal_class,
                score,
                flagged: model.is_anomalous(score),
            }
        })
        .collect();
    predictions::save(path, &rows)
}

/// Every image of a folder-per-class dataset scored with `model`; the folder must hold the model's
/// normal class.
pub fn score_folder(
    model: &OneClassModel,
    model_path: &Path,
    data: &DataRoots,
) -> Result<OneClassReport> {
    let size = model.settings().input_size;
    let dataset = scan(data)?;
    let normal = class_index(&dataset.classes, &model.normal_class)
        .with_context(|| format!("{data} must hold the model's normal class folder"))?;
    let paths: Vec<(PathBuf, usize)> = dataset
        .items
        .iter()
        .map(|i| (i.path.clone(), i.label))
        .collect();
    let mut set = decode_all(&paths, size);
    set.skipped.extend(dataset.skipped);
    Ok(score_set(model, model_path, &set, normal, data.to_string(), None)?.0)
}

/// One image's answer from `predict`.
#[derive(Debug, Serialize)]
pub struct ScoreOut {
    pub path: PathBuf,
    pub score: f32,
    pub threshold: f32,
    /// "normal" or "anomaly".
    pub verdict: String,
}

/// The anomaly score and verdict of every image file, in order; a file that cannot be read (or
/// scores NaN) is a failed outcome with the reason, and the others are still scored.
pub fn score_files(model: &OneClassModel, paths: &[PathBuf]) -> Result<Vec<FileOutcome<ScoreOut>>> {
    let size = model.settings().input_size;
    let (images, read) = read_each(paths, |p| Ok(resize_exact(&load_rgb(p)?, size)));
    let scored = model.score(&images)?;
    Ok(paths
        .iter()
        .zip(read)
        .map(|(path, read)| match read.map(|i| scored[i].score) {
            Ok(score) if score.is_finite() => FileOutcome::Done(ScoreOut {
                path: path.clone(),
                score,
                threshold: model.threshold.value,
                verdict: KINDS[usize::from(model.is_anomalous(score))].into(),
            }),
            Ok(score) => FileOutcome::Failed {
                path: path.clone(),
                error: format!("its anomaly score is {score}: no verdict; the model is broken"),
            },
            Err(error) => FileOutcome::Failed {
                path: path.clone(),
                error,
            },
        })
        .collect())
}

/// One image's anomaly map, as `gradcam --json` prints it for a one-class model.
#[derive(Debug, Serialize)]
pub struct MapOut {
    pub path: PathBuf,
    pub score: f32,
    pub verdict: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<String>,
    /// Patch distances on the feature grid, rows of numbers (before upsampling and smoothing).
    pub patch_scores: Vec<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay: Option<PathBuf>,
}

/// What `gradcam` asks of a one-class model: test images of `run` (`count` of them, chosen with
/// `seed`) or the given `images`, their overlays written under `out` (default `gradcam/`).
pub struct MapRequest<'a> {
    pub images: &'a [PathBuf],
    pub count: usize,
    pub seed: u64,
    pub out: Option<PathBuf>,
    pub colormap: Option<Colormap>,
    pub alpha: Option<f32>,
}

/// Anomaly maps in Grad-CAM's place: one overlay per image (files when images were given), and a
/// figure of them all, whose path comes back with the maps.
pub fn anomaly_maps(
    request: &MapRequest,
    model_path: &Path,
    run: Option<&RunDir>,
) -> Result<(Vec<MapOut>, PathBuf)> {
    let model = model_file::load(model_path)?;
    // Colours as `gradcam` draws them: flags, else the run's recipe, else the defaults.
    let recipe_cam = match run {
        Some(run) => CamSettings::from_recipe(&Recipe::load(&run.recipe())?.gradcam)?,
        None => CamSettings::default(),
    };
    let style = (
        request.colormap.unwrap_or(recipe_cam.colormap),
        request.alpha.unwrap_or(recipe_cam.alpha),
    );
    let size = model.settings().input_size;
    let (paths, truths, out_dir, figure_path) = match run {
        Some(run) => {
            ensure!(
                request.images.is_empty(),
                "give either --run RUN or image files, not both"
            );
            ensure!(request.count > 0, "--count must be at least 1");
            let manifest = Manifest::load(&run.manifest())?;
            let mut order: Vec<usize> = (0..manifest.test.len()).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(request.seed));
            order.truncate(request.count);
            ensure!(
                !order.is_empty(),
                "{} has an empty test split",
                run.manifest().display()
            );
            let entries: Vec<&Entry> = order.iter().map(|&i| &manifest.test[i]).collect();
            (
                entries
                    .iter()
                    .map(|e| manifest.absolute(e))
                    .collect::<Vec<_>>(),
                entries
                    .iter()
                    .map(|e| Some(manifest.classes[e.label].clone()))
                    .collect::<Vec<_>>(),
                None,
                run.path.join("anomaly-maps.png"),
            )
        }
        None => {
            ensure!(!request.images.is_empty(), "no images given to explain");
            let dir = request
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("gradcam"));
            (
                request.images.to_vec(),
                vec![None; request.images.len()],
                Some(dir.clone()),
                dir.join("grid-anomaly.png"),
            )
        }
    };
    let mut panels = Vec::with_capacity(paths.len());
    let mut report = Vec::with_capacity(paths.len());
    for (chunk, truth_chunk) in paths.chunks(16).zip(truths.chunks(16)) {
        let originals = chunk
            .iter()
            .map(|p| load_rgb(p))
            .collect::<Result<Vec<_>>>()?;
        let inputs: Vec<RgbImage> = originals.iter().map(|i| resize_exact(i, size)).collect();
        let scored = model.score(&inputs)?;
        for (((path, original), s), truth) in
            chunk.iter().zip(&originals).zip(&scored).zip(truth_chunk)
        {
            let picture = overlay(&model, original, s, style)?;
            let verdict = KINDS[usize::from(model.is_anomalous(s.score))];
            let file = match &out_dir {
                Some(dir) => {
                    let stem = path
                        .file_stem()
                        .map_or("image".into(), |s| s.to_string_lossy());
                    let file = dir.join(format!("{stem}-anomaly.png"));
                    write_png(&picture, &file)?;
                    Some(file)
                }
                None => None,
            };
            panels.push((picture, format!("{verdict} {:.3}", s.score)));
            report.push(MapOut {
                path: path.clone(),
                score: s.score,
                verdict: verdict.into(),
                truth: truth.clone(),
                patch_scores: s.patch_scores.chunks(s.grid).map(<[f32]>::to_vec).collect(),
                overlay: file,
            });
        }
    }
    write_png(&figure(&panels), &figure_path)?;
    Ok((report, figure_path))
}

/// `image` with the anomaly map of its `scored` result over it.
pub fn overlay(
    model: &OneClassModel,
    image: &RgbImage,
    scored: &Scored,
    (colormap, alpha): (Colormap, f32),
) -> Result<RgbImage> {
    let map = model.anomaly_map(scored);
    draw_over(image, &map, model.threshold.value, colormap, alpha)
}

/// The pixels of a set decoded with [`decode_all`] (one-class fitting and scoring keep them).
fn in_memory(set: &DecodedSet) -> Result<&[RgbImage]> {
    match &set.images {
        Images::InMemory(images) => Ok(images),
        Images::Streamed(_) => bail!("one-class mode needs its images decoded in memory"),
    }
}
