//! The training loop. It owns the model and the optimizer, reads batches, and reports everything it
//! does as [`Event`]s; it never prints and never waits for whoever listens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use candle_core::{Device, Tensor, D};
use candle_nn::VarMap;
use rand::RngCore;

use crate::data::loader::{Batch, BatchLoader, DecodedSet, EpochPlan, FileChanged};
use crate::detector::evaluation::{classify, summarize};
use crate::model::{self, SqueezeNet};
use crate::run::event::{Event, RunStart};
use crate::run::recipe::{OutputNetwork, Recipe, Shuffle};
use crate::run::steer::{wait_while_paused, Control, ControlFileWatcher, Gate};
use crate::run::{resume, RunDir};
use crate::train::optimizer::{Adam, AdamConfig};

/// How often a paused training looks for new requests.
const PAUSE_POLL: Duration = Duration::from_millis(100);

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
    /// This training's session (its lock's): requests in `RUN/control.json` for others are ignored.
    pub session: u64,
}

/// How a training ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub iterations: usize,
    pub stopped_early: bool,
}

/// Iterations per epoch: MATLAB drops the last partial mini-batch of each epoch.
pub fn iterations_per_epoch(train_images: usize, batch_size: usize) -> usize {
    train_images / batch_size
}

/// The epoch (from 1) that `iteration` (from 1) belongs to: an epoch's last iteration is its own,
/// not the next epoch's first.
fn epoch_of(iteration: usize, per_epoch: usize) -> usize {
    iteration.div_ceil(per_epoch.max(1))
}

/// The seed of one random `purpose` ("epoch order", "augment", "dropout") and `stream` (an epoch,
/// an iteration) of the recipe's seed. Every stream of a run is drawn through
/// [`crate::data::rng_for`], so the streams stay unrelated however the seeds are numbered.
pub fn derive_seed(purpose: &str, seed: u64, stream: u64) -> u64 {
    crate::data::rng_for(purpose, seed, stream).next_u64()
}

/// The dropout masks of a training that starts (or resumes) at `start_iteration`: a resumed run
/// draws new masks rather than replaying those of its first iterations.
pub fn dropout_seed(seed: u64, start_iteration: usize) -> u64 {
    derive_seed("dropout", seed, start_iteration as u64)
}

/// What one optimizer step measured on its mini-batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepResult {
    pub loss: f32,
    pub accuracy: f32,
    pub images: usize,
}

/// One optimizer step on `batch` (images of `size` x `size`). A loss that is not finite is an
/// error and leaves the model as it was.
pub fn train_step(
    model: &SqueezeNet,
    optimizer: &mut Adam,
    batch: Batch,
    size: usize,
    device: &Device,
) -> Result<StepResult> {
    let n = batch.labels.len();
    let x = Tensor::from_vec(batch.data, (n, 3, size, size), device)?;
    let y = Tensor::from_vec(batch.labels, n, device)?;
    let logits = model.forward_t(&x, true)?;
    let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
    let loss_value = loss.to_scalar::<f32>()?;
    anyhow::ensure!(loss_value.is_finite(), NonFiniteLoss(loss_value));
    let grads = loss.backward()?;
    optimizer.step(&grads)?;
    let correct = logits
        .detach()
        .argmax(D::Minus1)?
        .eq(&y)?
        .to_dtype(candle_core::DType::F32)?
        .sum_all()?;
    Ok(StepResult {
        loss: loss_value,
        accuracy: correct.to_scalar::<f32>()? / n as f32,
        images: n,
    })
}

/// The loss diverged (a too large learning rate, usually).
#[derive(Debug)]
pub struct NonFiniteLoss(pub f32);

impl std::fmt::Display for NonFiniteLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the loss became {}", self.0)
    }
}

impl std::error::Error for NonFiniteLoss {}

pub fn train(mut job: TrainJob, emit: &mut dyn FnMut(Event)) -> Result<Outcome> {
    let started = Instant::now();
    let recipe = job.recipe.clone();
    let batch_size = recipe.train.batch_size.min(job.train.images.len());
    let per_epoch = iterations_per_epoch(job.train.images.len(), batch_size).max(1);
    let total = per_epoch * recipe.train.epochs;
    let size = recipe.data.input_size as usize;
    let augment = recipe.augment.to_augment();

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
        output_network: recipe.train.output_network,
    }));

    let mut iteration = job.start_iteration;
    let mut best = job.best_val_accuracy;
    // With `last-iteration` the validation accuracy is still followed (and shown), but the model
    // is written once, at the end.
    let keep_last = recipe.train.output_network == OutputNetwork::LastIteration;
    let mut stopped_early = false;
    // What is on disk: the resume state of the start point when resuming.
    let mut saved = Saved {
        resume: (iteration > 0).then_some(iteration),
        last_model: None,
    };
    if iteration >= total && iteration > 0 {
        emit(Event::Notice {
            message: format!(
                "nothing to train: the run is at iteration {iteration} and {} epochs end at \
                 iteration {total}; give --epochs {} or more to train further (the best model \
                 is tested again)",
                recipe.train.epochs,
                iteration / per_epoch + 1
            ),
        });
    }
    let mut remote = ControlFileWatcher::new(job.run.control(), job.session);
    let seed = recipe.train.seed;
    'epochs: for epoch in (iteration / per_epoch)..recipe.train.epochs {
        let order_seed = match recipe.train.shuffle {
            Shuffle::EveryEpoch => Some(derive_seed("epoch order", seed, epoch as u64)),
            Shuffle::Once => Some(derive_seed("epoch order", seed, 0)),
            Shuffle::Never => None,
        };
        let plan = EpochPlan {
            batch_size,
            shuffle: order_seed,
            augment: Some(augment),
            augment_seed: derive_seed("augment", seed, epoch as u64),
            drop_last: true,
        };
        let batches = BatchLoader::new(job.train.clone(), plan)?;
        // When resuming mid-epoch the loader replays the same order; skip what was done.
        let skip = iteration - epoch * per_epoch;
        for batch in batches.skip(skip) {
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => return Err(lost_file(&job.run, e, saved, emit)),
            };
            if wait_while_paused(&job.control, PAUSE_POLL, |c| remote.poll(c)) == Gate::Stop {
                stopped_early = true;
                break 'epochs;
            }
            let step_started = Instant::now();
            let step = match train_step(&job.model, &mut job.optimizer, batch, size, &job.device) {
                Ok(step) => step,
                Err(e) if e.is::<NonFiniteLoss>() => {
                    let message = format!(
                        "{e} at iteration {}; stopping. {} (try a smaller learning rate)",
                        iteration + 1,
                        last_good(&job.run, saved)
                    );
                    emit(Event::Failed {
                        message: message.clone(),
                    });
                    anyhow::bail!(message);
                }
                Err(e) => return Err(e),
            };
            iteration += 1;
            emit(Event::Iteration {
                epoch: epoch + 1,
                iteration,
                loss: step.loss,
                accuracy: step.accuracy,
                learning_rate: recipe.train.learning_rate,
                images_per_s: step.images as f32 / step_started.elapsed().as_secs_f32(),
                elapsed_s: started.elapsed().as_secs_f64(),
            });

            let validate_now = iteration % recipe.train.val_every == 0 || iteration == total;
            let save_now = if validate_now {
                let accuracy = validate(&job, epoch + 1, iteration, &started, emit)
                    .map_err(|e| lost_file(&job.run, e, saved, emit))?;
                let is_best = best.is_none_or(|b| accuracy > b);
                if is_best {
                    best = Some(accuracy);
                }
                Some((is_best && !keep_last, Some(accuracy)))
            } else {
                job.control.take_save_request().then_some((false, None))
            };
            if let Some((is_best, validated)) = save_now {
                let accuracy = Accuracy { best, validated };
                save_or_fail(
                    &job,
                    iteration,
                    epoch + 1,
                    accuracy,
                    is_best,
                    &mut saved,
                    emit,
                )?;
            }
        }
        emit(Event::Epoch {
            epoch: epoch + 1,
            iteration,
            elapsed_s: started.elapsed().as_secs_f64(),
        });
    }

    if stopped_early && saved.resume != Some(iteration) && iteration > job.start_iteration {
        // A model never validated cannot be ranked: keep it as the latest, and as the best only when
        // there is no better one yet.
        let epoch = epoch_of(iteration, per_epoch);
        let accuracy = Accuracy {
            best,
            validated: None,
        };
        save_or_fail(
            &job,
            iteration,
            epoch,
            accuracy,
            best.is_none() && !keep_last,
            &mut saved,
            emit,
        )?;
    }
    let model_missing = !job.run.best_model().exists();
    if keep_last && iteration > 0 && (iteration > job.start_iteration || model_missing) {
        keep_last_model(&job, iteration, epoch_of(iteration, per_epoch), best).map_err(|e| {
            write_failed(
                &job,
                &format!("the last model at iteration {iteration}"),
                e,
                saved,
                emit,
            )
        })?;
        emit(Event::Notice {
            message: format!(
                "kept the last iteration's model (iteration {iteration}) as {} \
                 (train.output_network = \"last-iteration\")",
                job.run.best_model().display()
            ),
        });
    }
    if stopped_early {
        if iteration > 0 && best.is_none() {
            emit(Event::Notice {
                message: format!(
                    "stopped before the first validation: the model tested is the last one \
                     (iteration {iteration}), not a validated best"
                ),
            });
        }
        if saved.resume.is_some() {
            emit(Event::Notice {
                message: format!(
                    "stopped at iteration {iteration} with a checkpoint; continue with `{}`",
                    job.run.resume_command()
                ),
            });
        }
    }
    // Requests were for this training, which has now consumed them all.
    let _ = crate::run::ControlFile::remove(&job.run.control());
    super::familiarity::summarize_classifier(&job.run.best_model(), &job.train, &job.device, emit)?;
    emit(Event::Finished {
        iteration,
        best_val_accuracy: best,
        stopped_early,
        elapsed_s: started.elapsed().as_secs_f64(),
    });
    Ok(Outcome {
        iterations: iteration,
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

/// The checkpoint files on disk and the iteration each holds, for error messages that name only
/// what exists.
#[derive(Debug, Clone, Copy, Default)]
struct Saved {
    /// `resume.safetensors`: what `--resume` continues from.
    resume: Option<usize>,
    /// `last.safetensors`, when this training wrote it.
    last_model: Option<usize>,
}

/// Where a failed training can be continued from, for its error message.
fn last_good(run: &RunDir, saved: Saved) -> String {
    match saved.resume {
        Some(iteration) => {
            let model = if saved.last_model == Some(iteration) {
                format!(", model in {}", run.last_model().display())
            } else {
                String::new()
            };
            format!(
                "The last good checkpoint is {} (iteration {iteration}{model}); `{}` continues \
                 from it",
                run.resume_state().display(),
                run.resume_command()
            )
        }
        None => "No checkpoint was written yet".to_string(),
    }
}

/// A batch or validation that could not be made (a streamed file gone or damaged since the
/// start, say): a `Failed` event and an error naming the problem, the last checkpoint and how to
/// continue.
fn lost_file(
    run: &RunDir,
    error: anyhow::Error,
    saved: Saved,
    emit: &mut dyn FnMut(Event),
) -> anyhow::Error {
    let advice = if error.downcast_ref::<FileChanged>().is_some() {
        ". A run keeps its split: restore the file, or add --allow-missing to that command to go \
         on without it"
    } else {
        ""
    };
    let message = format!("{error:#}; stopping. {}{advice}", last_good(run, saved));
    emit(Event::Failed {
        message: message.clone(),
    });
    anyhow::anyhow!(message)
}

/// [`save`], or a `Failed` event and an error naming the file that could not be written and the
/// last good checkpoint (a full disk must not lose the run).
/// The validation accuracies a checkpoint records: the best so far (in the files, for resuming)
/// and the checkpoint's own, when it was validated (in its event, for the dashboard).
#[derive(Debug, Clone, Copy)]
struct Accuracy {
    best: Option<f32>,
    validated: Option<f32>,
}

fn save_or_fail(
    job: &TrainJob,
    iteration: usize,
    epoch: usize,
    accuracy: Accuracy,
    is_best: bool,
    saved: &mut Saved,
    emit: &mut dyn FnMut(Event),
) -> Result<()> {
    save(job, iteration, epoch, accuracy, is_best, saved, emit).map_err(|e| {
        let what = format!("checkpoint at iteration {iteration}");
        write_failed(job, &what, e, *saved, emit)
    })
}

/// A `Failed` event and the error for a write that failed, naming the last good checkpoint.
fn write_failed(
    job: &TrainJob,
    what: &str,
    error: anyhow::Error,
    saved: Saved,
    emit: &mut dyn FnMut(Event),
) -> anyhow::Error {
    let message = format!("{what} failed: {error:#}. {}", last_good(&job.run, saved));
    emit(Event::Failed {
        message: message.clone(),
    });
    anyhow::anyhow!(message)
}

/// Writes the best model (when `is_best`), then the resume state (model, optimizer and iteration
/// as one atomic unit), then the latest model for users; `saved` follows what was written. Each
/// file is replaced atomically, and the resume state is what `--resume` reads, so a kill between
/// two writes never mixes iterations.
fn save(
    job: &TrainJob,
    iteration: usize,
    epoch: usize,
    accuracy: Accuracy,
    is_best: bool,
    saved: &mut Saved,
    emit: &mut dyn FnMut(Event),
) -> Result<()> {
    let best = accuracy.best;
    let meta = checkpoint_meta(job, iteration, epoch, best);
    if is_best {
        model::save_checkpoint(&job.run.best_model(), &job.varmap, &job.classes, &meta)?;
    }
    let progress = resume::Progress {
        iteration,
        epoch,
        best_val_accuracy: best,
        classes: job.classes.clone(),
        validation_set: Some(resume::validation_fingerprint(&job.val.paths)),
    };
    resume::write(
        &job.run.resume_state(),
        &progress,
        &job.varmap,
        &job.optimizer.state()?,
    )?;
    saved.resume = Some(iteration);
    // Superseded by the resume state: an old run's separate optimizer file must not be read again.
    let _ = std::fs::remove_file(job.run.legacy_optimizer_state());
    let last = job.run.last_model();
    model::save_checkpoint(&last, &job.varmap, &job.classes, &meta)?;
    saved.last_model = Some(iteration);
    emit(Event::Checkpoint {
        iteration,
        path: if is_best { job.run.best_model() } else { last },
        best: is_best,
        val_accuracy: accuracy.validated,
    });
    Ok(())
}

/// Writes the model as it is now as the run's model (`train.output_network = "last-iteration"`).
fn keep_last_model(
    job: &TrainJob,
    iteration: usize,
    epoch: usize,
    best: Option<f32>,
) -> Result<()> {
    let meta = checkpoint_meta(job, iteration, epoch, best);
    model::save_checkpoint(&job.run.best_model(), &job.varmap, &job.classes, &meta)
}

fn checkpoint_meta(
    job: &TrainJob,
    iteration: usize,
    epoch: usize,
    best: Option<f32>,
) -> model::CheckpointMeta {
    model::CheckpointMeta {
        input_size: Some(job.recipe.data.input_size),
        iteration: Some(iteration),
        epoch: Some(epoch),
        best_val_accuracy: best,
    }
}

pub fn adam_config(recipe: &Recipe) -> AdamConfig {
    AdamConfig::matlab(recipe.train.learning_rate, recipe.train.l2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use candle_nn::VarBuilder;

    #[test]
    fn a_stop_at_an_epochs_end_is_recorded_in_that_epoch() {
        assert_eq!(epoch_of(1, 40), 1);
        assert_eq!(epoch_of(40, 40), 1);
        assert_eq!(epoch_of(41, 40), 2);
        assert_eq!(epoch_of(80, 40), 2);
    }

    fn small_model() -> (SqueezeNet, VarMap) {
        let varmap = VarMap::new();
        let model = SqueezeNet::new(
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
            Some(2),
        )
        .unwrap();
        model::init_backbone(&varmap, 3).unwrap();
        model::init_head(&varmap, 3).unwrap();
        model.set_dropout_seed(1);
        (model, varmap)
    }

    fn batch(size: usize, n: usize) -> Batch {
        let per_image = 3 * size * size;
        Batch {
            data: (0..n * per_image)
                .map(|i| ((i * 7919) % 255) as f32 / 128.0 - 1.0)
                .collect(),
            labels: (0..n as u32).map(|i| i % 2).collect(),
            indices: (0..n).collect(),
        }
    }

    #[test]
    fn a_train_step_moves_the_model_and_measures_its_batch() {
        let (model, varmap) = small_model();
        let mut adam = Adam::new(&varmap, AdamConfig::matlab(1e-3, 1e-4)).unwrap();
        let head = || {
            varmap.data().lock().unwrap()[model::HEAD_BIAS]
                .as_tensor()
                .to_vec1::<f32>()
                .unwrap()
        };
        let before = head();
        let step = train_step(&model, &mut adam, batch(32, 4), 32, &Device::Cpu).unwrap();
        assert_eq!(step.images, 4);
        assert!(step.loss.is_finite() && step.loss > 0.0, "{step:?}");
        assert!(
            [0.0, 0.25, 0.5, 0.75, 1.0].contains(&step.accuracy),
            "{step:?}"
        );
        assert_eq!(adam.steps_taken(), 1);
        assert_ne!(head(), before, "the step changed nothing");
    }

    #[test]
    fn seeds_differ_by_purpose_and_stream_and_repeat() {
        assert_eq!(derive_seed("augment", 42, 3), derive_seed("augment", 42, 3));
        assert_ne!(derive_seed("augment", 42, 3), derive_seed("augment", 42, 4));
        assert_ne!(
            derive_seed("augment", 42, 3),
            derive_seed("epoch order", 42, 3)
        );
        assert_ne!(dropout_seed(42, 0), dropout_seed(42, 10));
    }
}
