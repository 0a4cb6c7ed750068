//! A run from start to end, of either kind: a new or resumed training, or a one-class fit.
//! Preparing one (recipe, split, decoded images, model, `skipped.json`) happens on the calling
//! thread; then the job runs on a worker thread ([`super::job`]) whose events go to the run's
//! metrics log and to the observer the command chose, signals become stop requests, and the run
//! ends with the test pass on its best model, the same for both kinds ([`super::evaluate`]).
//! `train`, `train --one-class` and `demo` share it, so every run starts and ends the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use candle_core::DType;
use candle_nn::{VarBuilder, VarMap};

use super::evaluate::test_split;
use super::job::{self, Exit, Observer, Running};
use super::signals;
use crate::core::warn::warn;
use crate::data::budget::{load_for_training, MemoryBudget};
use crate::data::dataset::{discover, Skipped};
use crate::data::split::{split_each_label, Entry, Fractions, Manifest};
use crate::detector::oneclass::normal_class;
use crate::detector::{Detector, Kind, Model};
use crate::model::{self, LoadOptions, SqueezeNet};
use crate::run::event::{AnomalyScores, Event, ScoreHistogram, HISTOGRAM_BINS};
use crate::run::log::RunLog;
use crate::run::recipe::{Overrides, Recipe};
use crate::run::report::Report;
use crate::run::steer::Control;
use crate::run::{resume, NewRun, RunDir, RunLock};
use crate::train::fit::{self, FitJob};
use crate::train::optimizer::Adam;
use crate::train::worker::{self, adam_config, iterations_per_epoch, TrainJob};

/// How a run that did not fail ended; the process's exit code tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every epoch done, or the fit finished (exit code 0).
    Finished,
    /// Stopped before the end by a request or a signal, with a checkpoint to resume from
    /// ([`RunEnd::EXIT_STOPPED`]).
    Stopped,
}

impl RunEnd {
    /// The exit code of a training stopped before its end (documented in the README).
    pub const EXIT_STOPPED: u8 = 3;
}

/// A run ready to start, and the hold on its run directory.
pub struct Prepared {
    job: Job,
    claim: Claim,
    /// What the user should know before it starts (duplicates left out, images streamed,
    /// files skipped), for the command to print.
    pub notes: Vec<String>,
}

/// What runs on the worker thread.
enum Job {
    Train(Box<TrainJob>),
    Fit(Box<FitJob>),
}

/// A new run is removed if its start fails; a resumed one only needs its lock held.
enum Claim {
    New(NewRun),
    Resumed { _lock: RunLock },
}

impl Prepared {
    /// The run directory.
    pub fn run(&self) -> &RunDir {
        match &self.job {
            Job::Train(job) => &job.run,
            Job::Fit(job) => &job.run,
        }
    }

    /// The kind of model the run makes.
    pub fn kind(&self) -> Kind {
        match self.job {
            Job::Train(_) => Kind::Classifier,
            Job::Fit(_) => Kind::OneClass,
        }
    }

    /// Where a training takes pause, stop and save requests; a fit cannot be steered.
    pub fn control(&self) -> Option<Arc<Control>> {
        match &self.job {
            Job::Train(job) => Some(job.control.clone()),
            Job::Fit(_) => None,
        }
    }
}

/// The recipe from `config` (or `base`), with the command-line flags on top.
pub fn resolve_recipe(
    config: Option<&Path>,
    overrides: &Overrides,
    base: Recipe,
) -> Result<Recipe> {
    let mut recipe = match config {
        Some(path) => Recipe::load(path)?,
        None => base,
    };
    recipe.apply(overrides)?;
    Ok(recipe)
}

/// A new training in `new` (made and locked by the caller): scan and split the data, save the
/// recipe and the manifest, build the model. On error `new` is dropped, which removes the
/// half-made run.
pub fn prepare_new(recipe: Recipe, new: NewRun) -> Result<Prepared> {
    let dataset = discover(&recipe.data.root)?;
    let [train, val, test] = recipe.data.split;
    let fractions = Fractions { train, val, test };
    let split = split_each_label(&dataset, &fractions, recipe.data.split_seed)?;
    let run = new.run.clone();
    let session = new.lock.holder.session;
    crate::core::fsutil::write_atomic(&run.recipe(), recipe.to_toml().as_bytes())?;
    let manifest = Manifest::from_split(&dataset, &fractions, recipe.data.split_seed, &split);
    manifest.save(&run.manifest())?;
    let mut notes = Vec::new();
    if split.duplicates_dropped > 0 {
        notes.push(format!(
            "{} exact duplicate files left out so that no image is in two splits",
            split.duplicates_dropped
        ));
    }
    let job = build_job(
        run,
        recipe,
        &manifest,
        dataset.skipped,
        None,
        session,
        &mut notes,
    )?;
    Ok(Prepared {
        job: Job::Train(Box::new(job)),
        claim: Claim::New(new),
        notes,
    })
}

/// Continue a training from its last checkpoint with its own recipe and split, `overrides` on
/// top (`--epochs` may extend it).
pub fn prepare_resume(path: &Path, overrides: &Overrides) -> Result<Prepared> {
    let run = RunDir::open(path)?;
    let lock = run.lock()?;
    // Requests left for an earlier training of this directory are not for this one.
    crate::run::ControlFile::remove(&run.control())?;
    let mut recipe = Recipe::load(&run.recipe())?;
    recipe.apply(overrides)?;
    let manifest = Manifest::load(&run.manifest())?;
    let from = if run.resume_state().is_file() {
        ResumeFrom::State(run.resume_state())
    } else if run.last_model().is_file() {
        ResumeFrom::Legacy {
            model: run.last_model(),
            optimizer: run.legacy_optimizer_state(),
        }
    } else {
        bail!(
            "{} has no checkpoint to resume from ({} is missing)",
            run.path.display(),
            run.resume_state().display()
        );
    };
    let mut notes = Vec::new();
    let job = build_job(
        run,
        recipe,
        &manifest,
        Vec::new(),
        Some(from),
        lock.holder.session,
        &mut notes,
    )?;
    Ok(Prepared {
        job: Job::Train(Box::new(job)),
        claim: Claim::Resumed { _lock: lock },
        notes,
    })
}

/// A new one-class fit (at `run_path`, or a fresh name): the data scanned and split, the normal
/// class (`normal`, else the one named like Negative) with at least 2 training images, validation
/// images to choose the threshold from; then the run is made and its recipe and split saved.
/// The ImageNet weights are required: random features tell nothing apart.
pub fn prepare_fit(
    recipe: Recipe,
    normal: Option<&str>,
    run_path: Option<&Path>,
) -> Result<Prepared> {
    if recipe.train.weights.as_os_str().is_empty() {
        bail!(
            "one-class mode needs the ImageNet weights: give --weights squeezenet1_1-b8a52dc0.pth \
             (or .safetensors); random features cannot tell normal from anomalous"
        );
    }
    let dataset = discover(&recipe.data.root)?;
    let normal = normal_class(&dataset.classes, normal)?;
    let [train, val, test] = recipe.data.split;
    let fractions = Fractions { train, val, test };
    let split = split_each_label(&dataset, &fractions, recipe.data.split_seed)?;
    let manifest = Manifest::from_split(&dataset, &fractions, recipe.data.split_seed, &split);
    let normal_train = manifest.train.iter().filter(|e| e.label == normal).count();
    if normal_train < 2 {
        bail!(
            "one-class fitting needs at least 2 training images of the normal class '{}'; \
             the split gives it {normal_train} (raise the train fraction with --split)",
            manifest.classes[normal]
        );
    }
    if manifest.val.is_empty() {
        bail!(
            "the split has no validation images to choose the anomaly threshold from (see --split)"
        );
    }
    // Locked while fitting; removed again if the fit fails before its model file is written.
    let new = NewRun::create(run_path)?;
    let run = new.run.clone();
    crate::core::fsutil::write_atomic(&run.recipe(), recipe.to_toml().as_bytes())?;
    manifest.save(&run.manifest())?;
    Ok(Prepared {
        job: Job::Fit(Box::new(FitJob {
            run,
            recipe,
            manifest,
            normal,
            skipped: dataset.skipped,
        })),
        claim: Claim::New(new),
        notes: Vec::new(),
    })
}

/// What `--resume` continues from.
enum ResumeFrom {
    /// The one-unit resume state.
    State(PathBuf),
    /// A run of an older version: its latest model and a separate optimizer file, which must agree.
    Legacy { model: PathBuf, optimizer: PathBuf },
}

fn build_job(
    run: RunDir,
    recipe: Recipe,
    manifest: &Manifest,
    mut skipped: Vec<Skipped>,
    resume_from: Option<ResumeFrom>,
    session: u64,
    notes: &mut Vec<String>,
) -> Result<TrainJob> {
    let (device, device_name) = crate::model::device::resolve(recipe.train.device)?;
    let size = recipe.data.input_size;
    let budget = MemoryBudget::resolve(&recipe.data.memory_budget)?;
    let (train_set, val_set, streamed) = load_for_training(
        &manifest.labelled(&manifest.train),
        &manifest.labelled(&manifest.val),
        size,
        &budget,
    );
    notes.extend(streamed);
    skipped.extend(train_set.skipped.iter().cloned());
    skipped.extend(val_set.skipped.iter().cloned());
    crate::run::skipped::save(&run.skipped(), &skipped)?;
    if !skipped.is_empty() {
        notes.push(format!(
            "{} files left out (unreadable, labelling conflicts or looping links; listed in {})",
            skipped.len(),
            run.skipped().display()
        ));
    }
    if train_set.images.is_empty() || val_set.images.is_empty() {
        bail!(
            "no readable training or validation images (see {})",
            run.skipped().display()
        );
    }
    let classes = manifest.classes.clone();
    let test_per_class = count_entries(&manifest.test, classes.len());

    let seed = recipe.train.seed;
    let mut start_iteration = 0;
    let mut best_val_accuracy = None;
    let varmap = VarMap::new();
    let model = SqueezeNet::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &device),
        Some(classes.len()),
    )?;
    let mut optimizer = Adam::new(&varmap, adam_config(&recipe))?;
    match &resume_from {
        Some(ResumeFrom::State(path)) => {
            let state = resume::read(path, &device)?;
            if state.progress.classes != classes {
                bail!(
                    "{} classifies {:?}, not the run's classes {:?}",
                    path.display(),
                    state.progress.classes,
                    classes
                );
            }
            resume::restore_model(path, &varmap, &state.model)?;
            optimizer
                .load_state(&state.optimizer)
                .with_context(|| format!("cannot resume from {}", path.display()))?;
            start_iteration = state.progress.iteration;
            best_val_accuracy = state.progress.best_val_accuracy;
        }
        Some(ResumeFrom::Legacy {
            model: model_path,
            optimizer: optimizer_path,
        }) => {
            let loaded = model::load_model(model_path, &device)?;
            if loaded.classes != classes {
                bail!(
                    "{} classifies {:?}, not the run's classes {:?}",
                    model_path.display(),
                    loaded.classes,
                    classes
                );
            }
            start_iteration = loaded
                .meta
                .iteration
                .with_context(|| format!("{} has no iteration", model_path.display()))?;
            best_val_accuracy = loaded.meta.best_val_accuracy;
            let tensors: std::collections::HashMap<_, _> = loaded
                .varmap
                .data()
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
                .collect();
            resume::restore_model(model_path, &varmap, &tensors)?;
            let state = candle_core::safetensors::load(optimizer_path, &device).with_context(|| {
                format!(
                    "cannot read the optimizer state {} (needed to resume a run of an older version)",
                    optimizer_path.display()
                )
            })?;
            optimizer
                .load_state(&state)
                .with_context(|| format!("cannot resume from {}", optimizer_path.display()))?;
            if optimizer.steps_taken() != start_iteration {
                bail!(
                    "{} is at iteration {start_iteration} but the optimizer state {} at step {}: \
                     an older version was stopped between the two writes, and resuming would mix \
                     them. Start a new run (e.g. with --weights {})",
                    model_path.display(),
                    optimizer_path.display(),
                    optimizer.steps_taken(),
                    run.best_model().display()
                );
            }
        }
        None => {
            if recipe.train.weights.as_os_str().is_empty() {
                warn(
                    "no --weights given: training SqueezeNet from scratch, without the ImageNet features \
                     that make fine-tuning fast and accurate on few images (--weights imagenet fetches \
                     torchvision's squeezenet1_1-b8a52dc0.pth, see README)",
                );
                model::init_backbone(&varmap, seed)?;
            } else {
                model::load_torchvision(&varmap, &model::fetch::resolve(&recipe.train.weights)?)?;
            }
            model::init_head(&varmap, seed)?;
        }
    }
    model.set_dropout_seed(worker::dropout_seed(seed, start_iteration));

    let job = TrainJob {
        run,
        device,
        device_name,
        classes,
        train: Arc::new(train_set),
        val: Arc::new(val_set),
        test_per_class,
        varmap,
        model,
        optimizer,
        start_iteration,
        best_val_accuracy,
        control: Arc::new(Control::default()),
        recipe,
        session,
    };
    Ok(job)
}

fn count_entries(entries: &[Entry], classes: usize) -> Vec<usize> {
    let mut counts = vec![0; classes];
    for e in entries {
        counts[e.label] += 1;
    }
    counts
}

/// Warns when the recipe gives too few optimizer steps to learn much.
fn few_iterations_notice(job: &TrainJob) -> Option<String> {
    let batch = job.recipe.train.batch_size;
    let per_epoch = iterations_per_epoch(job.train.images.len(), batch.min(job.train.images.len()));
    let total = per_epoch * job.recipe.train.epochs;
    (total < 20).then(|| {
        format!(
            "only {total} iterations in all ({} training images, batch {batch}, {} epochs): too few to learn \
             much; try a smaller --batch-size (e.g. {}) or more --epochs",
            job.train.images.len(),
            job.recipe.train.epochs,
            (job.train.images.len() / 20).clamp(1, 32)
        )
    })
}

/// A run under way: its job on the worker thread, followed by the observer until it ended or
/// the user left.
pub struct Session {
    running: Running<Tested>,
    claim: Claim,
    kind: Kind,
    run: RunDir,
    followed: Exit,
    _signals: Option<signals::Listening>,
}

/// A finished run: its test report, and whether it was stopped before its end.
pub struct Ended {
    pub report: Report,
    pub run: RunDir,
    pub stopped: bool,
}

/// What the worker hands back: the test report and whether the training stopped early.
type Tested = (Report, bool);

/// Starts the prepared run on a worker thread and lets `observer` follow it; returns when the
/// observer is done (the run's events ended, or the user left the dashboard: see
/// [`Session::followed`]). [`Session::wait`] then waits for the run's end.
pub fn start(prepared: Prepared, observer: &mut dyn Observer) -> Result<Session> {
    let Prepared { job, mut claim, .. } = prepared;
    let (run, kind) = match &job {
        Job::Train(job) => (job.run.clone(), Kind::Classifier),
        Job::Fit(job) => (job.run.clone(), Kind::OneClass),
    };
    let log = RunLog::append_to(&run.path)?;
    let signals = match &job {
        // The dashboard handles hang-ups itself: the training goes on without a terminal.
        Job::Train(train) => Some(signals::stop_on_signals(
            train.control.clone(),
            run.clone(),
            !observer.survives_hangup(),
        )?),
        // A fit cannot be paused or stopped: signals end the process as they always do.
        Job::Fit(_) => None,
    };
    if let (Claim::New(new), Job::Train(_)) = (&mut claim, &job) {
        // From the first event on, the directory is a training run, kept whatever happens.
        new.keep();
    }
    let name = match kind {
        Kind::Classifier => "train",
        Kind::OneClass => "one-class fit",
    };
    let mut running = job::start(name, Some(log), move |emit| run_job(job, emit))?;
    let followed = running.follow(observer)?;
    Ok(Session {
        running,
        claim,
        kind,
        run,
        followed,
        _signals: signals,
    })
}

impl Session {
    /// How following the run ended: [`Exit::LeaveRunning`] when the user left it running (the
    /// terminal may be gone: print only what may fail quietly).
    pub fn followed(&self) -> Exit {
        self.followed
    }

    pub fn run(&self) -> &RunDir {
        &self.run
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Waits for the run's end: the test report and whether it was stopped early. A fit that
    /// failed leaves no run directory behind.
    pub fn wait(self) -> Result<Ended> {
        let Session {
            running,
            mut claim,
            run,
            ..
        } = self;
        let (report, stopped) = running.wait()?;
        if let Claim::New(new) = &mut claim {
            new.keep();
        }
        drop(claim);
        Ok(Ended {
            report,
            run,
            stopped,
        })
    }
}

/// The worker: the training or the fit, then the test pass on the best model, its report and
/// predictions saved and announced.
fn run_job(job: Job, emit: &mut (dyn FnMut(Event) + Send)) -> Result<Tested> {
    let (run, detector, stopped, fit_seconds) = match job {
        Job::Train(job) => {
            let run = job.run.clone();
            let device_choice = job.recipe.train.device;
            if let Some(message) = few_iterations_notice(&job) {
                emit(Event::Notice { message });
            }
            // Run inside rayon's pool: the engine's many short parallel sections then start on
            // the worker threads directly instead of being handed over (and waited for) one by
            // one.
            let outcome = rayon::scope(|_| worker::train(*job, emit))?;
            if outcome.iterations == 0 {
                bail!("stopped before the first iteration; nothing to test");
            }
            let (device, _) = crate::model::device::resolve(device_choice)?;
            let detector = Detector::open(&run.best_model(), &device, &LoadOptions::default())?;
            (run, detector, outcome.stopped_early, None)
        }
        Job::Fit(job) => {
            let run = job.run.clone();
            let fitted = fit::fit(*job, emit)?;
            let detector = Detector {
                path: run.best_model(),
                model: Model::OneClass(fitted.model),
            };
            (run, detector, false, Some(fitted.seconds))
        }
    };
    let mut tested = test_split(&run, &detector)?;
    if let Report::Anomaly(report) = &mut tested.report {
        report.fit_seconds = fit_seconds;
    }
    tested.save(&run)?;
    if let (Report::Anomaly(report), crate::detector::evaluation::Verdicts::Anomaly(verdicts)) =
        (&tested.report, &tested.evaluation.verdicts)
    {
        let anomalous = verdicts.anomalous(&tested.evaluation.labels);
        emit(Event::AnomalyScored(AnomalyScores {
            normal_class: report.normal_class.clone(),
            auroc: report.auroc,
            average_precision: report.average_precision,
            threshold: report.threshold.value,
            histogram: ScoreHistogram::of(
                &verdicts.scores,
                &anomalous,
                HISTOGRAM_BINS,
                report.threshold.value,
            ),
        }));
    }
    emit(Event::Tested {
        accuracy: tested.report.accuracy() as f32,
        confusion: tested.report.confusion().to_vec(),
        classes: tested.report.classes().to_vec(),
    });
    Ok((tested.report, stopped))
}
