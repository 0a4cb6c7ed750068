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
use crate::data::sources::SplitSettings;
use crate::data::split::{Entry, Fractions, Manifest};
use crate::detector::oneclass::normal_class;
use crate::detector::{Detector, Kind, Model};
use crate::model::{self, LoadOptions, SqueezeNet};
use crate::run::event::{AnomalyScores, Event, ScoreHistogram, HISTOGRAM_BINS};
use crate::run::log::RunLog;
use crate::run::recipe::{Overrides, Recipe};
use crate::run::report::Report;
use crate::run::steer::Control;
use crate::run::tensorboard::EventWriter;
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
    /// Said at the start of the run, as events (so the dashboard and the log have them): a
    /// resume's lost files or new validation set.
    notices: Vec<String>,
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
    // Named before scan folders are replaced, so that a scan folder's source keeps its name.
    let sources = recipe.data.root.source_names()?;
    split_settings(&recipe).check(&sources)?;
    // Scan folders among the roots become their labelled windows, cut into the run.
    let (roots, mut notes) = super::scan_labels::dataset_roots(&recipe.data.root, &new.run.path)?;
    let mut dataset = discover(&roots)?;
    dataset.sources = sources;
    let (split, manifest) = split_settings(&recipe).split(&dataset)?;
    let run = new.run.clone();
    let session = new.lock.holder.session;
    crate::core::fsutil::write_atomic(&run.recipe(), recipe.to_toml().as_bytes())?;
    manifest.save(&run.manifest())?;
    if split.duplicates_dropped > 0 {
        notes.push(format!(
            "{} exact duplicate files left out so that no image is in two splits",
            split.duplicates_dropped
        ));
    }
    let (job, notices) = build_job(
        run,
        recipe,
        &manifest,
        Split::New {
            skipped: dataset.skipped,
        },
        None,
        session,
        &mut notes,
    )?;
    Ok(Prepared {
        job: Job::Train(Box::new(job)),
        claim: Claim::New(new),
        notes,
        notices,
    })
}

/// Continue a run from its last checkpoint with its own recipe and split; `--epochs` may extend it.
/// Files of the split that went missing or unreadable since the start refuse the resume unless
/// `allow_missing`. A run stopped before its first checkpoint starts again from iteration 0.
/// `changes_split`: the command asked for other data, split, seed or recipe, which a resume
/// refuses.
pub fn prepare_resume(
    path: &Path,
    overrides: &Overrides,
    changes_split: bool,
    allow_missing: bool,
) -> Result<Prepared> {
    let run = RunDir::open(path)?;
    if run.model_kind() == Kind::OneClass {
        bail!(
            "{} is a one-class run: its fit is a single pass with nothing to resume; fit again \
             with `crackscope train --one-class` into a new run directory",
            run.path.display()
        );
    }
    if changes_split {
        bail!("--resume keeps the run's data, split and seed; drop --data, --split, --split-for, --seed and --config");
    }
    let lock = run.lock()?;
    // Requests left for an earlier training of this directory are not for this one.
    crate::run::ControlFile::remove(&run.control())?;
    let mut recipe = Recipe::load(&run.recipe())?;
    recipe.apply(overrides)?;
    let manifest = Manifest::load(&run.manifest())?;
    let mut notices = Vec::new();
    let from = if run.resume_state().is_file() {
        Some(ResumeFrom::State(run.resume_state()))
    } else if run.last_model().is_file() {
        Some(ResumeFrom::Legacy {
            model: run.last_model(),
            optimizer: run.legacy_optimizer_state(),
        })
    } else {
        // Stopped before its first checkpoint was whole (killed while writing it, say): nothing
        // to continue, so the run starts again with its own recipe and split.
        notices.push(format!(
            "{} has no checkpoint yet (stopped before the first one was written): training it \
             again from iteration 0 with its own recipe and split",
            run.path.display()
        ));
        None
    };
    // Files left out when the run started stay out, whatever became of them since.
    let left_out = match crate::run::skipped::load(&run.skipped()) {
        Ok(list) => list,
        Err(_) if !run.skipped().exists() => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut notes = Vec::new();
    let (job, more) = build_job(
        run,
        recipe,
        &manifest,
        Split::Resumed {
            left_out,
            allow_missing,
        },
        from,
        lock.holder.session,
        &mut notes,
    )?;
    notices.extend(more);
    Ok(Prepared {
        job: Job::Train(Box::new(job)),
        claim: Claim::Resumed { _lock: lock },
        notes,
        notices,
    })
}

/// Where a training's images come from: a new split (with what the dataset scan left out), or a
/// resumed run's saved split.
enum Split {
    New {
        skipped: Vec<Skipped>,
    },
    Resumed {
        /// `skipped.json`: files left out at the start (and by earlier resumes), left out again.
        left_out: Vec<Skipped>,
        /// Go on without files that went missing or unreadable since (`--allow-missing`).
        allow_missing: bool,
    },
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
    let sources = recipe.data.root.source_names()?;
    split_settings(&recipe).check(&sources)?;
    let mut dataset = discover(&recipe.data.root)?;
    dataset.sources = sources;
    let normal = normal_class(&dataset.classes, normal)?;
    let (_, manifest) = split_settings(&recipe).split(&dataset)?;
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
        notices: Vec::new(),
    })
}

/// The recipe's split: `data.split`, `data.split_for` and `data.split_seed`.
fn split_settings(recipe: &Recipe) -> SplitSettings<'_> {
    let [train, val, test] = recipe.data.split;
    SplitSettings {
        fractions: Fractions { train, val, test },
        per_source: &recipe.data.split_for,
        seed: recipe.data.split_seed,
    }
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
    split: Split,
    resume_from: Option<ResumeFrom>,
    session: u64,
    notes: &mut Vec<String>,
) -> Result<(TrainJob, Vec<String>)> {
    let (device, device_name) = crate::model::device::resolve(recipe.train.device)?;
    let size = recipe.data.input_size;
    let budget = MemoryBudget::resolve(&recipe.data.memory_budget)?;
    let mut notices = Vec::new();
    let (manifest, mut skipped) = match &split {
        Split::New { skipped } => (manifest.clone(), skipped.clone()),
        Split::Resumed { left_out, .. } => {
            let paths = left_out.iter().map(|s| s.path.clone()).collect();
            (manifest.without(&paths), left_out.clone())
        }
    };
    let (train_set, val_set, streamed) = load_for_training(
        &manifest.labelled(&manifest.train),
        &manifest.labelled(&manifest.val),
        size,
        &budget,
    );
    notes.extend(streamed);
    let mut failed: Vec<Skipped> = train_set.skipped.clone();
    failed.extend(val_set.skipped.iter().cloned());
    let mut test = manifest.test.clone();
    if let Split::Resumed { allow_missing, .. } = split {
        failed = resume::lost_since_start(&run, &manifest, failed, allow_missing)?;
        if !failed.is_empty() {
            notices.push(format!(
                "going on without {} files missing or unreadable since the run started (listed in {})",
                failed.len(),
                run.skipped().display()
            ));
            let lost = failed.iter().map(|s| s.path.clone()).collect();
            test = manifest.without(&lost).test;
        }
    }
    skipped.extend(failed);
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
    let test_per_class = count_entries(&test, classes.len());
    let validation_set = resume::validation_fingerprint(&val_set.paths);

    let seed = recipe.train.seed;
    let mut start_iteration = 0;
    let mut best_val_accuracy = None;
    // Whether the validation images are those the saved best accuracy was measured on.
    let mut same_validation = val_set.skipped.is_empty();
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
            // States of older versions do not say: then only a validation file lost now tells.
            if let Some(saved) = &state.progress.validation_set {
                same_validation = *saved == validation_set;
            }
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
            let tensors = tensors_of(&loaded.varmap);
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
        None if !recipe.train.init.as_os_str().is_empty() => {
            let from = init_model(&recipe.train.init)?;
            let loaded = model::load_model(&from, &device)?;
            if loaded.classes != classes {
                bail!(
                    "--init {}: its model classifies {:?}, but the data's classes are {:?}; \
                     --init needs a model of the same classes (rename the class folders, or \
                     start from --weights)",
                    from.display(),
                    loaded.classes,
                    classes
                );
            }
            let tensors = tensors_of(&loaded.varmap);
            resume::restore_model(&from, &varmap, &tensors)?;
            notes.push(format!(
                "starting from the model of {} (head included)",
                from.display()
            ));
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
    if best_val_accuracy.is_some() && !same_validation {
        // Accuracies on two different validation sets cannot be ranked against each other.
        best_val_accuracy = None;
        notices.push(format!(
            "the validation set is not the one the best accuracy so far was measured on: the next \
             validation starts a new best ({} keeps the old best model until then)",
            run.best_model().display()
        ));
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
    Ok((job, notices))
}

/// A model's variables as plain tensors, by name.
fn tensors_of(varmap: &VarMap) -> std::collections::HashMap<String, candle_core::Tensor> {
    varmap
        .data()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect()
}

/// The checkpoint `--init` names: a run directory's best model, or a model file itself.
fn init_model(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        let best = RunDir::open(path)?.best_model();
        if !best.is_file() {
            bail!(
                "--init {}: the run has no model yet ({} is missing)",
                path.display(),
                best.display()
            );
        }
        Ok(best)
    } else if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        bail!(
            "--init {}: no such run directory or model file",
            path.display()
        )
    }
}

fn count_entries(entries: &[Entry], classes: usize) -> Vec<usize> {
    let mut counts = vec![0; classes];
    for e in entries {
        counts[e.label] += 1;
    }
    counts
}

/// Warns when the recipe gives too few optimizer steps to learn much, and when no validation
/// (so no checkpoint) comes before the last iteration.
fn schedule_notices(job: &TrainJob) -> Vec<String> {
    let batch = job.recipe.train.batch_size;
    let per_epoch = iterations_per_epoch(job.train.images.len(), batch.min(job.train.images.len()));
    let total = per_epoch * job.recipe.train.epochs;
    let val_every = job.recipe.train.val_every;
    let mut notices = Vec::new();
    if total < 20 {
        notices.push(format!(
            "only {total} iterations in all ({} training images, batch {batch}, {} epochs): too few to learn \
             much; try a smaller --batch-size (e.g. {}) or more --epochs",
            job.train.images.len(),
            job.recipe.train.epochs,
            (job.train.images.len() / 20).clamp(1, 32)
        ));
    }
    let remaining = total.saturating_sub(job.start_iteration);
    if remaining > 1 && job.start_iteration + val_every >= total {
        notices.push(format!(
            "validation every {val_every} iterations: nothing is validated or checkpointed before \
             the last iteration ({total}); try --val-every {}",
            (total / 4).max(1)
        ));
    }
    notices
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
    let Prepared {
        job,
        mut claim,
        notices,
        ..
    } = prepared;
    let (run, kind) = match &job {
        Job::Train(job) => (job.run.clone(), Kind::Classifier),
        Job::Fit(job) => (job.run.clone(), Kind::OneClass),
    };
    let mut logs: job::Logs = vec![Box::new(RunLog::append_to(&run.path)?)];
    // TensorBoard's copy of the metrics is a convenience: a run goes on without it.
    match EventWriter::create_in(&run.path) {
        Ok(writer) => logs.push(Box::new(writer)),
        Err(e) => warn(format!("no TensorBoard log: {e:#}")),
    }
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
    let mut running = job::start(name, logs, move |emit| {
        for message in notices {
            emit(Event::Notice { message });
        }
        run_job(job, emit)
    })?;
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
    let (run, detector, stopped, fit_seconds, last_iteration) = match job {
        Job::Train(job) => {
            let run = job.run.clone();
            let device_choice = job.recipe.train.device;
            for message in schedule_notices(&job) {
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
            (
                run,
                detector,
                outcome.stopped_early,
                None,
                outcome.iterations,
            )
        }
        Job::Fit(job) => {
            let run = job.run.clone();
            let fitted = fit::fit(*job, emit)?;
            let detector = Detector {
                path: run.best_model(),
                model: Model::OneClass(fitted.model),
                familiarity: crate::detector::familiarity::Familiarity::read(&run.best_model())?,
            };
            (run, detector, false, Some(fitted.seconds), 0)
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
        sources: tested.report.sources().to_vec(),
    });
    // Figures are a convenience: a run whose figures cannot be drawn is still a finished run.
    if let Err(e) = super::figures::run_figures(&run.path, None) {
        warn(format!("no report figures: {e:#}"));
    }
    // So are TensorBoard's pictures of the test (the confusion matrix, a few heatmaps).
    let kind = detector.kind();
    if let Err(e) = super::figures::tensorboard_pictures(&run, kind, last_iteration as i64) {
        warn(format!("no pictures in the TensorBoard log: {e:#}"));
    }
    Ok((tested.report, stopped))
}
