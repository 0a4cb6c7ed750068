//! Fitting a one-class model in a prepared run (its recipe and split already written): decode
//! the normal class's training images and every validation image, extract patch features, choose
//! the memory bank, score the validation images to choose the threshold (and the scan threshold),
//! and save the model file. Like the training worker it only emits events: `fit_started`,
//! `fitting` per stage, `fitted`, a notice with the model's path, `finished`. The test pass that
//! follows is the same as a training's (see `app::session`).

use std::time::Instant;

use anyhow::{bail, Result};

use crate::data::dataset::Skipped;
use crate::data::loader::decode_all;
use crate::data::split::{Entry, Manifest};
use crate::detector::evaluation::in_memory;
use crate::detector::oneclass::features::{Extractor, BATCH};
use crate::detector::oneclass::model::{fit_bank, score_with, FitStep};
use crate::detector::oneclass::{model_file, ranking, threshold, OneClassModel};
use crate::run::event::{Event, FitStage, FitStart};
use crate::run::recipe::Recipe;
use crate::run::RunDir;

/// A fit ready to start: the run (recipe and split written), the index of the normal class in
/// the split's classes, and the files the dataset walk left out.
pub struct FitJob {
    pub run: RunDir,
    pub recipe: Recipe,
    pub manifest: Manifest,
    pub normal: usize,
    pub skipped: Vec<Skipped>,
}

/// A fitted model, saved in the run, and how long the fit took.
pub struct Fitted {
    pub model: OneClassModel,
    pub seconds: f64,
}

/// Fits the bank on the normal class's training images and chooses the thresholds on every
/// class's validation images; writes `skipped.json` and the model file.
pub fn fit(job: FitJob, emit: &mut dyn FnMut(Event)) -> Result<Fitted> {
    let FitJob {
        run,
        recipe,
        manifest,
        normal,
        mut skipped,
    } = job;
    let normal_name = manifest.classes[normal].clone();
    let train_entries: Vec<Entry> = manifest
        .train
        .iter()
        .filter(|e| e.label == normal)
        .cloned()
        .collect();
    let size = recipe.data.input_size;
    let started = Instant::now();
    let train_set = decode_all(&manifest.labelled(&train_entries), size);
    let val_set = decode_all(&manifest.labelled(&manifest.val), size);
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
    super::familiarity::summarize_oneclass(&run.best_model(), &model, &train_set, emit)?;
    emit(Event::Fitted {
        bank_entries: model.bank.len(),
        threshold: model.threshold.value,
        threshold_rule: model.threshold.rule_text(),
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

    Ok(Fitted {
        model,
        seconds: fit_seconds,
    })
}
