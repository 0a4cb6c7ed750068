//! `crackscope train`: prepare a run (recipe, split, decoded images, model), run the worker on its own
//! thread, show its events, then test the best model.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use candle_core::DType;
use candle_nn::{VarBuilder, VarMap};

use tokio::sync::mpsc;

use crate::cli::{DisplayArgs, RecipeArgs, TrainArgs};
use crate::cmd::eval::{evaluate_split, print_report, Report};
use crate::config::Recipe;
use crate::data::loader::{decode_all, DecodedSet};
use crate::data::scan::{scan, Skipped};
use crate::data::split::{split_each_label, Entry, Fractions, Manifest};
use crate::events::Event;
use crate::gallery::RunGallery;
use crate::headless::Headless;
use crate::model::{self, SqueezeNet};
use crate::run::RunDir;
use crate::runlog::RunLog;
use crate::train::control::Control;
use crate::train::optimizer::Adam;
use crate::train::worker::{self, adam_config, iterations_per_epoch, TrainJob};
use crate::tui::{self, DashboardOptions, Exit, GraphicsChoice, Source, Steer};

pub fn train(args: &TrainArgs) -> Result<()> {
    if args.one_class {
        return crate::cmd::oneclass::train(args);
    }
    let job = match &args.resume {
        Some(run) => prepare_resume(run, &args.recipe)?,
        None => {
            let recipe = resolve_recipe(&args.recipe, Recipe::default())?;
            prepare_new(recipe, args.run.as_deref())?
        }
    };
    run_to_end(job, Display::choose(&args.display, false)?)
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

/// A new run: scan and split the data, save the recipe and the manifest, build the model.
pub fn prepare_new(recipe: Recipe, run: Option<&Path>) -> Result<TrainJob> {
    let dataset = scan(&recipe.data.root)?;
    let [train, val, test] = recipe.data.split;
    let fractions = Fractions { train, val, test };
    let split = split_each_label(&dataset, &fractions, recipe.data.split_seed)?;
    let run = RunDir::create(run)?;
    crate::fsutil::write_atomic(&run.recipe(), recipe.to_toml().as_bytes())?;
    let manifest = Manifest::from_split(&dataset, &fractions, recipe.data.split_seed, &split);
    manifest.save(&run.manifest())?;
    if split.duplicates_dropped > 0 {
        println!(
            "{} exact duplicate files left out so that no image is in two splits",
            split.duplicates_dropped
        );
    }
    build_job(run, recipe, &manifest, dataset.skipped, None)
}

/// Continue a run from its last checkpoint with its own recipe and split; `--epochs` may extend it.
pub fn prepare_resume(path: &Path, args: &RecipeArgs) -> Result<TrainJob> {
    let run = RunDir::open(path)?;
    let mut recipe = Recipe::load(&run.recipe())?;
    if args.data.is_some() || args.split.is_some() || args.seed.is_some() || args.config.is_some() {
        bail!("--resume keeps the run's data, split and seed; drop --data, --split, --seed and --config");
    }
    recipe.apply(&args.overrides())?;
    let manifest = Manifest::load(&run.manifest())?;
    let last = run.last_model();
    if !last.is_file() {
        bail!(
            "{} has no checkpoint to resume from ({} is missing)",
            run.path.display(),
            last.display()
        );
    }
    build_job(run, recipe, &manifest, Vec::new(), Some(last))
}

fn build_job(
    run: RunDir,
    recipe: Recipe,
    manifest: &Manifest,
    mut skipped: Vec<Skipped>,
    resume_from: Option<PathBuf>,
) -> Result<TrainJob> {
    let (device, device_name) = crate::device::resolve(recipe.train.device)?;
    let size = recipe.data.input_size;
    let decode = |entries: &[Entry]| decode_all(&labelled_paths(manifest, entries), size);
    let train_set = decode(&manifest.train);
    let val_set = decode(&manifest.val);
    skipped.extend(train_set.skipped.iter().cloned());
    skipped.extend(val_set.skipped.iter().cloned());
    write_skipped(&run, &skipped)?;
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
    let (model, varmap) = match &resume_from {
        Some(checkpoint) => {
            let loaded = model::load_model(checkpoint, &device)?;
            if loaded.classes != classes {
                bail!(
                    "{} classifies {:?}, not the run's classes {:?}",
                    checkpoint.display(),
                    loaded.classes,
                    classes
                );
            }
            start_iteration = loaded
                .metadata
                .get("iteration")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            best_val_accuracy = loaded
                .metadata
                .get("best_val_accuracy")
                .and_then(|v| v.parse().ok());
            (loaded.model, loaded.varmap)
        }
        None => {
            let varmap = VarMap::new();
            let model = SqueezeNet::new(
                VarBuilder::from_varmap(&varmap, DType::F32, &device),
                Some(classes.len()),
            )?;
            if recipe.train.weights.as_os_str().is_empty() {
                eprintln!(
                    "warning: no --weights given: training SqueezeNet from scratch, without the ImageNet features \
                     that make fine-tuning fast and accurate on few images (get torchvision's \
                     squeezenet1_1-b8a52dc0.pth, see README)"
                );
                model::init_backbone(&varmap, seed)?;
            } else {
                model::load_torchvision(&varmap, &recipe.train.weights)?;
            }
            model::init_head(&varmap, seed)?;
            (model, varmap)
        }
    };
    // A resumed run draws new dropout masks rather than replaying those of its first iterations.
    model.set_dropout_seed(worker::mix(seed, start_iteration as u64));
    let mut optimizer = Adam::new(&varmap, adam_config(&recipe))?;
    if resume_from.is_some() {
        let state_path = run.optimizer_state();
        let state = candle_core::safetensors::load(&state_path, &device)
            .with_context(|| format!("cannot read the optimizer state {}", state_path.display()))?;
        optimizer.load_state(&state)?;
    }

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
    };
    Ok(job)
}

/// Files of a manifest split with their labels, as absolute paths.
pub fn labelled_paths(manifest: &Manifest, entries: &[Entry]) -> Vec<(PathBuf, usize)> {
    entries
        .iter()
        .map(|e| (manifest.absolute(e), e.label))
        .collect()
}

fn count_entries(entries: &[Entry], classes: usize) -> Vec<usize> {
    let mut counts = vec![0; classes];
    for e in entries {
        counts[e.label] += 1;
    }
    counts
}

fn write_skipped(run: &RunDir, skipped: &[Skipped]) -> Result<()> {
    let json = serde_json::to_vec_pretty(skipped).expect("skipped files serialise");
    crate::fsutil::write_atomic(&run.skipped(), &json)?;
    if !skipped.is_empty() {
        println!(
            "{} unreadable files skipped (listed in {})",
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
pub fn run_to_end(job: TrainJob, display: Display) -> Result<()> {
    let run = job.run.clone();
    let recipe = job.recipe.clone();
    let control = job.control.clone();
    let notice = few_iterations_notice(&job);
    install_interrupt_handler(control.clone());

    let (tx, mut rx) = mpsc::channel::<Event>(4096);
    let mut log = RunLog::append_to(&run.path)?;
    let worker_run = run.clone();
    let worker =
        std::thread::Builder::new()
            .name("train".into())
            .spawn(move || -> Result<Report> {
                let mut emit = |event: Event| {
                    if let Err(e) = log.write(&event) {
                        let _ = writeln!(std::io::stderr(), "warning: {e:#}");
                    }
                    // Never wait for a consumer: one that fell this far behind can re-read metrics.jsonl.
                    let _ = tx.try_send(event);
                };
                if let Some(message) = notice {
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
                Ok(report)
            })?;

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
    let report = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the training thread panicked"))??;
    if terminal_alive {
        print_report(&report);
        println!("run directory: {}", run.path.display());
    }
    Ok(())
}

/// Prints a line if stdout still works; after an SSH hang-up it does not, and must not panic.
fn say(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// Ctrl-C asks the worker to stop after a checkpoint; a second Ctrl-C exits at once.
fn install_interrupt_handler(control: Arc<Control>) {
    let _ = ctrlc::set_handler(move || {
        if control.stop_requested() {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this iteration (Ctrl-C again to quit at once)");
        control.request_stop();
    });
}

/// Decoded images of a manifest split (used by evaluation).
pub fn decode_entries(manifest: &Manifest, entries: &[Entry], size: u32) -> DecodedSet {
    decode_all(&labelled_paths(manifest, entries), size)
}
