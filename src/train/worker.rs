//! The training loop. It owns the model and the optimizer, reads batches, and reports everything it
//! does as [`Event`]s; it never prints and never waits for whoever listens.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor, D};
use candle_nn::VarMap;

use crate::config::{Recipe, Shuffle};
use crate::data::augment::Augment;
use crate::data::loader::{BatchLoader, DecodedSet, EpochPlan};
use crate::events::{Event, RunStart};
use crate::model::{self, SqueezeNet};
use crate::run::RunDir;
use crate::train::control::{Control, ControlFileWatcher};
use crate::train::evaluate::{classify, summarize};
use crate::train::optimizer::{Adam, AdamConfig};

/// Everything one training needs, prepared by the `train` command.
pub struct TrainJob {
    pub run: RunDir,
    pub recipe: Recipe,
    pub device: Device,
    pub device_name: String,
    pub classes: Vec<String>,
    pub train: Arc<DecodedSet>,
    pub val: Arc<DecodedSet>,
    pub test_per_class: Vec<usize>,
    pub varmap: VarMap,
    pub model: SqueezeNet,
    pub optimizer: Adam,
    /// Iterations already done (non-zero when resuming).
    pub start_iteration: usize,
    /// Best validation accuracy so far (when resuming).
    pub best_val_accuracy: Option<f32>,
    pub control: Arc<Control>,
}

/// How a training ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub iterations: usize,
    pub best_val_accuracy: Option<f32>,
    pub stopped_early: bool,
}

/// Iterations per epoch: MATLAB drops the last partial mini-batch of each epoch.
pub fn iterations_per_epoch(train_images: usize, batch_size: usize) -> usize {
    train_images / batch_size
}

pub fn run(mut job: TrainJob, emit: &mut dyn FnMut(Event)) -> Result<Outcome> {
    let started = Instant::now();
    let recipe = job.recipe.clone();
    let batch_size = recipe.train.batch_size.min(job.train.images.len());
    let per_epoch = iterations_per_epoch(job.train.images.len(), batch_size).max(1);
    let total = per_epoch * recipe.train.epochs;
    let size = recipe.data.input_size as usize;
    let augment = Augment {
        flip: recipe.augment.flip,
        translate: recipe.augment.translate,
    };

    emit(Event::Started(RunStart {
        run: job.run.path.clone(),
        device: job.device_name.clone(),
        classes: job.classes.clone(),
        train_per_class: job.train.count_per_class(job.classes.len()),
        val_per_class: job.val.count_per_class(job.classes.len()),
        test_per_class: job.test_per_class.clone(),
        batch_size,
        epochs: recipe.train.epochs,
        iterations_per_epoch: per_epoch,
        start_iteration: job.start_iteration,
        learning_rate: recipe.train.learning_rate,
    }));

    let mut iteration = job.start_iteration;
    let mut best = job.best_val_accuracy;
    let mut stopped_early = false;
    let mut last_saved = iteration;
    let mut remote = ControlFileWatcher::new(job.run.control());
    'epochs: for epoch in (iteration / per_epoch)..recipe.train.epochs {
        let order_seed = match recipe.train.shuffle {
            Shuffle::EveryEpoch => Some(mix(recipe.train.seed, epoch as u64)),
            Shuffle::Once => Some(mix(recipe.train.seed, 0)),
            Shuffle::Never => None,
        };
        let plan = EpochPlan {
            batch_size,
            shuffle: order_seed,
            augment: Some(augment),
            augment_seed: mix(recipe.train.seed ^ 0xA5A5, epoch as u64),
            drop_last: true,
        };
        let batches = BatchLoader::new(job.train.clone(), plan)?;
        // When resuming mid-epoch the loader replays the same order; skip what was done.
        let skip = iteration - epoch * per_epoch;
        for batch in batches.skip(skip) {
            let batch = batch?;
            remote.poll(&job.control);
            while job.control.paused() && !job.control.stop_requested() {
                std::thread::sleep(std::time::Duration::from_millis(100));
                remote.poll(&job.control);
            }
            if job.control.stop_requested() {
                stopped_early = true;
                break 'epochs;
            }
            let step_started = Instant::now();
            let n = batch.labels.len();
            let x = Tensor::from_vec(batch.data, (n, 3, size, size), &job.device)?;
            let y = Tensor::from_vec(batch.labels, n, &job.device)?;
            let logits = job.model.forward_t(&x, true)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            let loss_value = loss.to_scalar::<f32>()?;
            if !loss_value.is_finite() {
                let message = format!(
                    "the loss became {loss_value} at iteration {}; stopping. The last good checkpoint is {} \
                     (try a smaller learning rate)",
                    iteration + 1,
                    job.run.last_model().display()
                );
                emit(Event::Failed {
                    message: message.clone(),
                });
                anyhow::bail!(message);
            }
            let grads = loss.backward()?;
            job.optimizer.step(&grads)?;
            let correct = logits
                .argmax(D::Minus1)?
                .eq(&y)?
                .to_dtype(candle_core::DType::F32)?
                .sum_all()?;
            let accuracy = correct.to_scalar::<f32>()? / n as f32;
            iteration += 1;
            emit(Event::Iteration {
                epoch: epoch + 1,
                iteration,
                loss: loss_value,
                accuracy,
                learning_rate: recipe.train.learning_rate,
                images_per_s: n as f32 / step_started.elapsed().as_secs_f32(),
                elapsed_s: started.elapsed().as_secs_f64(),
            });

            let validate_now = iteration % recipe.train.val_every == 0 || iteration == total;
            if validate_now {
                let accuracy = validate(&job, epoch + 1, iteration, &started, emit)?;
                let is_best = best.is_none_or(|b| accuracy > b);
                if is_best {
                    best = Some(accuracy);
                }
                save(&job, iteration, epoch + 1, best, is_best, emit)?;
                last_saved = iteration;
            } else if job.control.take_save_request() {
                save(&job, iteration, epoch + 1, best, false, emit)?;
                last_saved = iteration;
            }
        }
        emit(Event::Epoch {
            epoch: epoch + 1,
            iteration,
            elapsed_s: started.elapsed().as_secs_f64(),
        });
    }

    if stopped_early && last_saved != iteration {
        // A model never validated cannot be ranked: keep it as the latest, and as the best only when
        // there is no better one yet.
        let epoch = iteration / per_epoch + 1;
        save(&job, iteration, epoch, best, best.is_none(), emit)?;
    }
    emit(Event::Finished {
        iteration,
        best_val_accuracy: best,
        stopped_early,
        elapsed_s: started.elapsed().as_secs_f64(),
    });
    Ok(Outcome {
        iterations: iteration,
        best_val_accuracy: best,
        stopped_early,
    })
}

fn validate(
    job: &TrainJob,
    epoch: usize,
    iteration: usize,
    started: &Instant,
    emit: &mut dyn FnMut(Event),
) -> Result<f32> {
    let predictions = classify(
        &job.model,
        &job.val,
        job.recipe.train.batch_size,
        &job.device,
    )?;
    let (confusion, loss) = summarize(&predictions, &job.classes);
    let accuracy = confusion.accuracy() as f32;
    emit(Event::Validation {
        epoch,
        iteration,
        loss,
        accuracy,
        elapsed_s: started.elapsed().as_secs_f64(),
    });
    Ok(accuracy)
}

/// Writes the latest checkpoint and the optimizer state, and the best model when `is_best`.
fn save(
    job: &TrainJob,
    iteration: usize,
    epoch: usize,
    best: Option<f32>,
    is_best: bool,
    emit: &mut dyn FnMut(Event),
) -> Result<()> {
    let meta = model::CheckpointMeta {
        input_size: Some(job.recipe.data.input_size),
        iteration: Some(iteration),
        epoch: Some(epoch),
        best_val_accuracy: best,
    };
    let last = job.run.last_model();
    model::save_checkpoint(&last, &job.varmap, &job.classes, &meta)?;
    save_optimizer(&job.run.optimizer_state(), &job.optimizer)?;
    if is_best {
        model::save_checkpoint(&job.run.best_model(), &job.varmap, &job.classes, &meta)?;
    }
    emit(Event::Checkpoint {
        iteration,
        path: if is_best { job.run.best_model() } else { last },
        best: is_best,
        val_accuracy: best,
    });
    Ok(())
}

fn save_optimizer(path: &Path, optimizer: &Adam) -> Result<()> {
    let state = optimizer.state()?;
    let bytes = safetensors::serialize(state.iter().map(|(k, v)| (k.as_str(), v)), None)
        .context("cannot serialise the optimizer state")?;
    crate::fsutil::write_atomic(path, &bytes)
}

/// Derives independent seeds for the epochs from one seed (SplitMix64's finaliser).
pub fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn adam_config(recipe: &Recipe) -> AdamConfig {
    AdamConfig::matlab(recipe.train.learning_rate, recipe.train.l2)
}
