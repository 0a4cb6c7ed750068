//! Preparing a training (new or resumed: recipe, split, decoded images, model, `skipped.json`) and
//! running it to its end: the worker on its own thread, its events shown headless or on the
//! dashboard, signals turned into stop requests, then the test pass on the best model. `train` and
//! `demo` share it, so both start and end a run the same way.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use candle_core::DType;
use candle_nn::{VarBuilder, VarMap};

use tokio::sync::mpsc;

use crate::cli::{DisplayArgs, RecipeArgs};
use crate::config::Recipe;
use crate::data::budget::{load_for_training, MemoryBudget};
use crate::data::scan::{scan, Skipped};
use crate::data::split::{split_each_label, Entry, Fractions, Manifest};
use crate::evaluation::{evaluate_split, report_text};
use crate::events::Event;
use crate::gallery::RunGallery;
use crate::headless::Headless;
use crate::model::{self, SqueezeNet};
use crate::run::report::Report;
use crate::run::{resume, NewRun, RunDir, RunLock};
use crate::runlog::RunLog;
use crate::train::control::Control;
use crate::train::optimizer::Adam;
use crate::train::worker::{self, adam_config, iterations_per_epoch, TrainJob};
use crate::tui::{self, DashboardOptions, Exit, GraphicsChoice, Source, Steer};

/// How a training that did not fail ended; the process's exit code tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every epoch done (exit code 0).
    Finished,
    /// Stopped before the end by a request or a signal, with a checkpoint to resume from
    /// ([`RunEnd::EXIT_STOPPED`]).
    Stopped,
}

impl RunEnd {
    /// The exit code of a training stopped before its end (documented in the README).
    pub const EXIT_STOPPED: u8 = 3;
}

/// A training ready to start, and the hold on its run directory.
pub struct Prepared {
    pub job: TrainJob,
    claim: Claim,
    /// Said at the start of the training (as events, so the dashboard and the log have them).
    notices: Vec<String>,
}

/// A new run is removed if its start fails; a resumed one only needs its lock held.
enum Claim {
    New(NewRun),
    Resumed { _lock: RunLock },
}

/// The recipe from `--config` (or `base`), with the command-line flags on top.
pub fn resolve_recipe(args: &RecipeArgs, base: Recipe) -> Result<Recipe> {
    let mut recipe = match &args.config {
        Some(path) => Recipe::load(path)?,
        None => base,
    };
    recipe.apply(&args.overrides())?;
    Ok(recipe)
}

/// A new run in `new` (made and locked by the caller): scan and split the data, save the recipe and
/// the manifest, build the model. On error `new` is dropped, which removes the half-made run.
pub fn prepare_new(recipe: Recipe, new: NewRun) -> Result<Prepared> {
    let dataset = scan(&recipe.data.root)?;
    let [train, val, test] = recipe.data.split;
    let fractions = Fractions { train, val, test };
    let split = split_each_label(&dataset, &fractions, recipe.data.split_seed)?;
    let run = new.run.clone();
    let session = new.lock.holder.session;
    crate::fsutil::write_atomic(&run.recipe(), recipe.to_toml().as_bytes())?;
    let manifest = Manifest::from_split(&dataset, &fractions, recipe.data.split_seed, &split);
    manifest.save(&run.manifest())?;
    if split.duplicates_dropped > 0 {
        println!(
            "{} exact duplicate files left out so that no image is in two splits",
            split.duplicates_dropped
        );
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
    )?;
    Ok(Prepared {
        job,
        claim: Claim::New(new),
        notices,
    })
}

/// Continue a run from its last checkpoint with its own recipe and split; `--epochs` may extend it.
/// Files of the split that went missing or unreadable since the start refuse the resume unless
/// `allow_missing`. A run stopped before its first checkpoint starts again from iteration 0.
pub fn prepare_resume(path: &Path, args: &RecipeArgs, allow_missing: bool) -> Result<Prepared> {
    let run = RunDir::open(path)?;
    if crate::oneclass::gallery::is_oneclass_run(&run) {
        bail!(
            "{} is a one-class run: its fit is a single pass with nothing to resume; fit again \
             with `crackscope train --one-class` into a new run directory",
            run.path.display()
        );
    }
    if !args.data.is_empty() || args.split.is_some() || args.seed.is_some() || args.config.is_some()
    {
        bail!("--resume keeps the run's data, split and seed; drop --data, --split, --seed and --config");
    }
    let lock = run.lock()?;
    // Requests left for an earlier training of this directory are not for this one.
    crate::run::ControlFile::remove(&run.control())?;
    let mut recipe = Recipe::load(&run.recipe())?;
    recipe.apply(&args.overrides())?;
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
    )?;
    notices.extend(more);
    Ok(Prepared {
        job,
        claim: Claim::Resumed { _lock: lock },
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

/// What a resumed run continues from.
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
) -> Result<(TrainJob, Vec<String>)> {
    let (device, device_name) = crate::device::resolve(recipe.train.device)?;
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
    if let Some(note) = streamed {
        println!("{note}");
    }
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
    write_skipped(&run, &skipped)?;
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
                eprintln!(
                    "warning: no --weights given: training SqueezeNet from scratch, without the ImageNet features \
                     that make fine-tuning fast and accurate on few images (--weights imagenet fetches \
                     torchvision's squeezenet1_1-b8a52dc0.pth, see README)"
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

fn count_entries(entries: &[Entry], classes: usize) -> Vec<usize> {
    let mut counts = vec![0; classes];
    for e in entries {
        counts[e.label] += 1;
    }
    counts
}

fn write_skipped(run: &RunDir, skipped: &[Skipped]) -> Result<()> {
    crate::run::skipped::save(&run.skipped(), skipped)?;
    if !skipped.is_empty() {
        println!(
            "{} files left out (unreadable, labelling conflicts or looping links; listed in {})",
            skipped.len(),
            run.skipped().display()
        );
    }
    Ok(())
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

/// How the run shows itself while it trains.
pub enum Display {
    /// Progress bar and lines (`--headless`, or stdout is not a terminal).
    Headless,
    /// The ratatui dashboard.
    Dashboard(DashboardOptions),
}

impl Display {
    /// The dashboard on a terminal unless `--headless`; progress lines otherwise.
    pub fn choose(args: &DisplayArgs, land_in_browser: bool) -> Result<Display> {
        if args.headless || !std::io::stdout().is_terminal() {
            return Ok(Display::Headless);
        }
        Ok(Display::Dashboard(DashboardOptions {
            graphics: GraphicsChoice::resolve(args.graphics)?,
            land_in_browser,
            ..DashboardOptions::default()
        }))
    }
}

/// Trains and then tests on a worker thread, showing its events as `display` says.
pub fn run_to_end(prepared: Prepared, display: Display) -> Result<RunEnd> {
    let Prepared {
        job,
        mut claim,
        mut notices,
    } = prepared;
    let run = job.run.clone();
    let recipe = job.recipe.clone();
    let control = job.control.clone();
    notices.extend(few_iterations_notice(&job));
    // The dashboard handles hang-ups itself: the training goes on without a terminal.
    let headless = matches!(display, Display::Headless);
    let _signals = signals::stop_on_signals(control.clone(), run.clone(), headless)?;

    let (tx, mut rx) = mpsc::channel::<Event>(4096);
    let mut log = RunLog::append_to(&run.path)?;
    if let Claim::New(new) = &mut claim {
        // From the first event on, the directory is a run, kept whatever happens.
        new.keep();
    }
    let worker_run = run.clone();
    let worker = std::thread::Builder::new().name("train".into()).spawn(
        move || -> Result<(Report, bool)> {
            let mut emit = |event: Event| {
                if let Err(e) = log.write(&event) {
                    let _ = writeln!(std::io::stderr(), "warning: {e:#}");
                }
                // Never wait for a consumer: one that fell this far behind can re-read metrics.jsonl.
                let _ = tx.try_send(event);
            };
            for message in notices {
                emit(Event::Notice { message });
            }
            // Run inside rayon's pool: the engine's many short parallel sections then start on the
            // worker threads directly instead of being handed over (and waited for) one by one.
            let outcome = rayon::scope(|_| worker::run(job, &mut emit))?;
            if outcome.iterations == 0 {
                bail!("stopped before the first iteration; nothing to test");
            }
            let report = evaluate_split(&worker_run, &worker_run.best_model(), &recipe)?;
            emit(Event::Tested {
                accuracy: report.accuracy as f32,
                confusion: report.confusion.clone(),
                classes: report.classes.clone(),
            });
            Ok((report, outcome.stopped_early))
        },
    )?;

    let terminal_alive = match display {
        Display::Headless => {
            let mut printer = Headless::new();
            while let Some(event) = rx.blocking_recv() {
                printer.handle(&event);
            }
            true
        }
        Display::Dashboard(options) => {
            let gallery = RunGallery::open(&run)?;
            let steer: Arc<dyn Steer> = control.clone();
            let exit =
                tui::run_blocking(Source::Live(rx), Some(steer), Box::new(gallery), options)?;
            if exit == Exit::LeaveRunning {
                say(&format!(
                    "training goes on in this process; `crackscope watch {}` shows it again",
                    run.path.display()
                ));
            }
            exit != Exit::LeaveRunning
        }
    };
    let (report, stopped) = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the training thread panicked"))??;
    if terminal_alive {
        print!("{}", report_text(&report));
        println!("run directory: {}", run.path.display());
        if stopped {
            say(&format!(
                "training was stopped before its end; continue it with `{}`",
                run.resume_command()
            ));
        }
    }
    drop(claim);
    Ok(if stopped {
        RunEnd::Stopped
    } else {
        RunEnd::Finished
    })
}

/// Prints a line if stdout still works; after an SSH hang-up it does not, and must not panic.
fn say(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// Stopping on signals: job schedulers (Slurm, Kubernetes, systemd) end jobs with SIGTERM, a closed
/// SSH session sends SIGHUP, and Ctrl-C sends SIGINT. The first asks the worker to stop after a
/// checkpoint; a second exits at once.
mod signals {
    use std::io::Write;
    use std::sync::Arc;

    use anyhow::{Context, Result};
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::iterator::{Handle, Signals};

    use crate::run::RunDir;
    use crate::train::control::Control;

    /// Stops listening when dropped.
    pub struct Listening(Handle);

    impl Drop for Listening {
        fn drop(&mut self) {
            self.0.close();
        }
    }

    /// Listens for SIGINT and SIGTERM, and SIGHUP when `hangup` (headless: the dashboard keeps
    /// training after a hang-up, and handles it itself).
    pub fn stop_on_signals(control: Arc<Control>, run: RunDir, hangup: bool) -> Result<Listening> {
        let mut wanted = vec![SIGINT, SIGTERM];
        if hangup {
            wanted.push(SIGHUP);
        }
        let mut signals = Signals::new(&wanted).context("cannot listen for signals")?;
        let handle = signals.handle();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    let name = match signal {
                        SIGINT => "interrupt (SIGINT)",
                        SIGTERM => "SIGTERM",
                        _ => "hang-up (SIGHUP)",
                    };
                    if control.stop_requested() {
                        // Whatever atomic write was under way leaves only its temporary file.
                        for leftover in crate::run::lock::leftover_temporaries(&run.path) {
                            let _ = std::fs::remove_file(leftover);
                        }
                        let _ = writeln!(
                            std::io::stderr(),
                            "\n{name} again: quitting at once; `{}` continues from the last checkpoint",
                            run.resume_command()
                        );
                        std::process::exit(128 + signal);
                    }
                    let _ = writeln!(
                        std::io::stderr(),
                        "\n{name}: stopping after this iteration with a checkpoint (send it again to \
                         quit at once); `{}` continues the run",
                        run.resume_command()
                    );
                    control.request_stop();
                    control.set_paused(false);
                }
            })
            .context("cannot start the signal listener")?;
        Ok(Listening(handle))
    }
}
