//! The one-class commands: `train --one-class` fits a bank on the normal class's training images;
//! `eval`, `predict` and `gradcam` hand one-class model files here. The work is in
//! [`crate::train::fit`]; this module turns arguments into its calls and prints the results.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};

use crate::app::session::resolve_recipe;
use crate::app::session::Display;
use crate::cli::{EvalArgs, GradcamArgs, PredictArgs, TrainArgs};
use crate::data::split::Manifest;
use crate::detector::oneclass::model_file;
use crate::oneclass::gallery::OneClassGallery;
use crate::run::event::Event;
use crate::run::recipe::Recipe;
use crate::run::RunDir;
use crate::train::fit::{
    anomaly_maps, evaluate_split, fit_run, rule_text, score_files, score_folder, MapRequest,
    OneClassReport, KINDS,
};
use crate::tui::{self, DashboardOptions, Exit, Source};
use crate::ui::headless::Headless;

/// `crackscope train --one-class`.
pub fn train(args: &TrainArgs) -> Result<()> {
    if args.resume.is_some() {
        bail!("--resume does not apply to --one-class: fitting is a single pass, start a new run");
    }
    let recipe = resolve_recipe(&args.recipe, Recipe::default())?;
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
    if !r.skipped.is_empty() {
        println!("{} unreadable files skipped:", r.skipped.len());
        for s in &r.skipped {
            println!("  {}: {}", s.path.display(), s.reason);
        }
    }
}

/// `crackscope eval` of a one-class model (`model_path`; `run` when given as a run directory).
pub fn eval(args: &EvalArgs, model_path: &Path, run: Option<&RunDir>) -> Result<()> {
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
    Ok(())
}

/// `crackscope predict` with a one-class model: the anomaly score and verdict of every image.
pub fn predict(args: &PredictArgs, model_path: &Path) -> Result<()> {
    let model = model_file::load(model_path)?;
    let out = score_files(&model, &args.images)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for o in &out {
            println!(
                "{}: {} (anomaly score {:.4}, threshold {:.4})",
                o.path.display(),
                o.verdict,
                o.score,
                o.threshold
            );
        }
    }
    Ok(())
}

/// `crackscope gradcam` with a one-class model: the anomaly map takes Grad-CAM's place.
pub fn gradcam(args: &GradcamArgs, model_path: &Path, run: Option<&RunDir>) -> Result<()> {
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
