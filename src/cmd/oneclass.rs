//! The one-class commands: `train --one-class` fits a bank on the normal class's training images;
//! `eval`, `predict` and `gradcam` hand one-class model files here. The work is in
//! [`crate::oneclass::run`]; this module turns arguments into its calls and prints the results.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};

use crate::cli::{EvalArgs, GradcamArgs, ModelOptions, PredictArgs, TrainArgs};
use crate::config::Recipe;
use crate::data::inputs::{FileOutcome, SomeInputsFailed};
use crate::data::split::Manifest;
use crate::events::Event;
use crate::headless::Headless;
use crate::oneclass::gallery::OneClassGallery;
use crate::oneclass::model_file;
use crate::oneclass::run::{
    anomaly_maps, evaluate_split, fit_run, rule_text, score_files, score_folder, MapRequest,
    OneClassReport, KINDS,
};
use crate::run::RunDir;
use crate::train::session::resolve_recipe;
use crate::train::session::Display;
use crate::tui::{self, DashboardOptions, Exit, Source};

/// `crackscope train --one-class`.
pub fn train(args: &TrainArgs) -> Result<()> {
    if args.resume.is_some() {
        bail!("--resume does not apply to --one-class: fitting is a single pass, start a new run");
    }
    let mut recipe = resolve_recipe(&args.recipe, Recipe::default())?;
    recipe.oneclass.apply(&args.oneclass.overrides());
    recipe.validate("command line")?;
    let (report, run) = match Display::choose(&args.display, false)? {
        Display::Headless => {
            let mut printer = Headless::new();
            fit_run(
                &recipe,
                args.normal.as_deref(),
                args.run.as_deref(),
                &mut |event| printer.handle(event),
            )?
        }
        Display::Dashboard(options) => match fit_on_dashboard(recipe, args, options)? {
            Some(fitted) => fitted,
            None => return Ok(()),
        },
    };
    print_report(&report);
    println!("run directory: {}", run.path.display());
    Ok(())
}

/// Fits on a worker thread while the dashboard shows its events; None when the dashboard was
/// left before the fit ended (the terminal may be gone: only a line that cannot fail is printed).
fn fit_on_dashboard(
    recipe: Recipe,
    args: &TrainArgs,
    options: DashboardOptions,
) -> Result<Option<(OneClassReport, RunDir)>> {
    let gallery = OneClassGallery::for_recipe(&recipe)?;
    let run_cell = gallery.run_cell();
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(4096);
    let (normal, run_path) = (args.normal.clone(), args.run.clone());
    let worker = std::thread::Builder::new()
        .name("one-class fit".into())
        .spawn(move || {
            let mut show = |event: &Event| {
                if let Event::FitStarted(start) = event {
                    let _ = run_cell.set(RunDir {
                        path: start.run.clone(),
                    });
                }
                // Never wait for the dashboard: progress may be dropped, the rest is small.
                let _ = tx.try_send(event.clone());
            };
            let fitted = fit_run(&recipe, normal.as_deref(), run_path.as_deref(), &mut show);
            if let Err(e) = &fitted {
                let _ = tx.try_send(Event::Failed {
                    message: format!("{e:#}"),
                });
            }
            fitted
        })?;
    // A fit cannot be paused or stopped: nothing to steer.
    let exit = tui::run_blocking(Source::Live(rx), None, Box::new(gallery), options)?;
    if exit == Exit::LeaveRunning {
        let _ = writeln!(
            std::io::stdout(),
            "the fit goes on in this process until it is done"
        );
    }
    let (report, run) = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the fitting thread panicked"))??;
    if exit == Exit::LeaveRunning {
        let _ = writeln!(
            std::io::stdout(),
            "fitted: `crackscope eval {}` shows the results",
            run.path.display()
        );
        return Ok(None);
    }
    Ok(Some((report, run)))
}

pub fn print_report(r: &OneClassReport) {
    println!(
        "\n{} images of the {} with {} (normal class: {})",
        r.images,
        r.data,
        r.model.display(),
        r.normal_class
    );
    let metric = |v: Option<f64>| v.map_or("n/a (needs both kinds)".into(), |v| format!("{v:.4}"));
    println!("AUROC              {}", metric(r.auroc));
    println!("average precision  {}", metric(r.average_precision));
    println!(
        "threshold          {:.4} ({})",
        r.threshold.value,
        rule_text(&r.threshold)
    );
    if let Some(scan) = &r.scan_threshold {
        println!(
            "scan threshold     {:.4} ({}, inner patches; for `scan`)",
            scan.value,
            rule_text(scan)
        );
    }
    println!("accuracy           {:.4}", r.accuracy);
    println!(
        "{:>16} {:>10} {:>10}",
        "true \\ verdict", KINDS[0], KINDS[1]
    );
    for (kind, row) in KINDS.iter().zip(&r.confusion) {
        println!("{kind:>16} {:>10} {:>10}", row[0], row[1]);
    }
    for (kind, mean) in KINDS.iter().zip(r.mean_score) {
        if let Some(mean) = mean {
            println!("mean score, {kind:<8} {mean:.4}");
        }
    }
    println!("scoring            {:.1} images/s", r.score_images_per_s);
    print!("{}", crate::evaluation::skipped_text(&r.skipped));
}

/// Refuses the flags of a classifier checkpoint that a one-class model file has no use for: they
/// would otherwise be ignored without a word (`flags` lists the ones given).
fn refuse_flags(model_path: &Path, flags: &[(&str, bool)], why: &str) -> Result<()> {
    let given: Vec<&str> = flags.iter().filter(|(_, g)| *g).map(|(f, _)| *f).collect();
    if let Some((last, first)) = given.split_last() {
        let (named, verb) = if first.is_empty() {
            (last.to_string(), "does")
        } else {
            (format!("{} and {last}", first.join(", ")), "do")
        };
        bail!(
            "{named} {verb} not apply to a one-class model ({}): {why}",
            model_path.display()
        );
    }
    Ok(())
}

/// `--classes` and `--input-size` are for checkpoints that do not record them.
fn refuse_model_options(model_path: &Path, options: &ModelOptions) -> Result<()> {
    refuse_flags(
        model_path,
        &[
            ("--classes", options.classes.is_some()),
            ("--input-size", options.input_size.is_some()),
        ],
        "its file records its classes and input size",
    )
}

/// `crackscope eval` of a one-class model (`model_path`; `run` when given as a run directory).
pub fn eval(args: &EvalArgs, model_path: &Path, run: Option<&RunDir>) -> Result<()> {
    refuse_model_options(model_path, &args.model_options)?;
    let model = model_file::load(model_path)?;
    let size = model.settings().input_size;
    let report = match (run, crate::cmd::eval::data_roots(args)) {
        (Some(run), None) => {
            let manifest = Manifest::load(&run.manifest())?;
            evaluate_split(run, &model, &manifest, size)?
        }
        (_, Some(data)) => score_folder(&model, model_path, &data)?,
        (None, None) => bail!(
            "{} is a model file: give --data DIR to evaluate it on a folder-per-class dataset \
             (or pass a run directory to use its test split)",
            model_path.display()
        ),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    SomeInputsFailed::check_skipped(&report.skipped, report.images)
}

/// `crackscope predict` with a one-class model: the anomaly score and verdict of every image.
pub fn predict(args: &PredictArgs, model_path: &Path) -> Result<()> {
    refuse_model_options(model_path, &args.model_options)?;
    let model = model_file::load(model_path)?;
    let out = score_files(&model, &args.images)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for outcome in &out {
            match outcome {
                FileOutcome::Done(o) => println!(
                    "{}: {} (anomaly score {:.4}, threshold {:.4})",
                    o.path.display(),
                    o.verdict,
                    o.score,
                    o.threshold
                ),
                FileOutcome::Failed { path, error } => {
                    println!("{}: cannot score: {error}", path.display())
                }
            }
        }
    }
    SomeInputsFailed::check(&out, "scored")
}

/// `crackscope gradcam` with a one-class model: the anomaly map takes Grad-CAM's place.
pub fn gradcam(args: &GradcamArgs, model_path: &Path, run: Option<&RunDir>) -> Result<()> {
    refuse_model_options(model_path, &args.model_options)?;
    refuse_flags(
        model_path,
        &[
            ("--method", args.method.is_some()),
            ("--layer", args.layer.is_some()),
            ("--class", args.class.is_some()),
            ("--misclassified", args.misclassified),
        ],
        "its map is the anomaly map (each patch's distance to the normal bank), not a \
         Grad-CAM of a class at a layer",
    )?;
    let request = MapRequest {
        images: &args.images,
        count: args.count,
        seed: args.seed,
        out: args.out.clone(),
        colormap: args.colormap,
        alpha: args.alpha,
    };
    let (report, figure_path) = anomaly_maps(&request, model_path, run)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let mut out = std::io::stdout().lock();
        for r in &report {
            let _ = writeln!(out, "{}: {} {:.4}", r.path.display(), r.verdict, r.score);
        }
        let _ = writeln!(out, "anomaly maps: {}", figure_path.display());
    }
    Ok(())
}
