//! Figures for reports, as PNG files: a run's training progress (the seed's plot: accuracy and
//! loss of every mini-batch, raw and smoothed, with the validations) and its test confusion
//! matrix. Written into `RUN/figures/` at the end of a training and by `crackscope figures`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use image::{Rgb, RgbImage};

use crate::imaging::chart::{count_matrix, line_chart, Chart, Mark, Series, WHITE};
use crate::imaging::write_png;
use crate::run::curves::{smoothed, Curve, Curves};
use crate::run::report::Report;
use crate::run::RunDir;

/// The folder inside a run directory.
pub const DIR_NAME: &str = "figures";
pub const PROGRESS_FILE: &str = "training-progress.png";
pub const CONFUSION_FILE: &str = "confusion.png";

const RAW_ACCURACY: Rgb<u8> = Rgb([160, 190, 235]);
const SMOOTH_ACCURACY: Rgb<u8> = Rgb([30, 90, 200]);
const RAW_LOSS: Rgb<u8> = Rgb([245, 190, 150]);
const SMOOTH_LOSS: Rgb<u8> = Rgb([220, 90, 20]);
const VALIDATION: Rgb<u8> = Rgb([20, 20, 20]);

/// Writes the figures a run has data for into `out` (default `RUN/figures/`): the training
/// progress once it has iterations, the confusion matrix once it has been tested. Returns the
/// files written; a run with neither is an error that says so.
pub fn run_figures(run: &Path, out: Option<&Path>) -> Result<Vec<PathBuf>> {
    let run = RunDir::open(run)?;
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| run.path.join(DIR_NAME));
    let mut written = Vec::new();
    let curves = if run.metrics().is_file() {
        Curves::read(&run.metrics())?
    } else {
        Curves::default()
    };
    let report = if run.report().is_file() {
        Some(Report::load(&run.report())?)
    } else {
        None
    };
    if curves.train_loss.is_empty() && report.is_none() {
        bail!(
            "{} has no training iterations and no test report yet: nothing to draw",
            run.path.display()
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    if !curves.train_loss.is_empty() {
        let path = out.join(PROGRESS_FILE);
        write_png(&progress_figure(&curves), &path)?;
        written.push(path);
    }
    if let Some(report) = report {
        let path = out.join(CONFUSION_FILE);
        let title = format!("Test confusion, accuracy {:.1}%", 100.0 * report.accuracy());
        write_png(
            &count_matrix(&title, report.classes(), report.confusion()),
            &path,
        )?;
        written.push(path);
    }
    Ok(written)
}

/// The seed's training-progress plot: accuracy (%) above, loss below.
pub fn progress_figure(curves: &Curves) -> RgbImage {
    let percent =
        |c: &Curve| -> Vec<(f64, f64)> { c.iter().map(|&(i, v)| (i as f64, 100.0 * v)).collect() };
    let plain = |c: &Curve| -> Vec<(f64, f64)> { c.iter().map(|&(i, v)| (i as f64, v)).collect() };
    let accuracy = Chart {
        title: "Accuracy (%)".into(),
        x_label: "iteration".into(),
        y_label: "%".into(),
        y_range: Some((0.0, 100.0)),
        series: vec![
            series(
                "training",
                percent(&curves.train_accuracy),
                RAW_ACCURACY,
                Mark::Line,
            ),
            series(
                "training (smoothed)",
                percent(&smoothed(&curves.train_accuracy)),
                SMOOTH_ACCURACY,
                Mark::Line,
            ),
            series(
                "validation",
                percent(&curves.val_accuracy),
                VALIDATION,
                Mark::LineDots,
            ),
        ],
    };
    let loss = Chart {
        title: "Loss".into(),
        x_label: "iteration".into(),
        y_label: "cross-entropy".into(),
        y_range: None,
        series: vec![
            series("training", plain(&curves.train_loss), RAW_LOSS, Mark::Line),
            series(
                "training (smoothed)",
                plain(&smoothed(&curves.train_loss)),
                SMOOTH_LOSS,
                Mark::Line,
            ),
            series(
                "validation",
                plain(&curves.val_loss),
                VALIDATION,
                Mark::LineDots,
            ),
        ],
    };
    stack(&[line_chart(&accuracy, 900, 420), line_chart(&loss, 900, 360)])
}

fn series(name: &str, points: Vec<(f64, f64)>, colour: Rgb<u8>, mark: Mark) -> Series {
    Series {
        name: name.into(),
        points,
        colour,
        mark,
    }
}

/// Pictures one above the other on white.
pub fn stack(parts: &[RgbImage]) -> RgbImage {
    let width = parts.iter().map(RgbImage::width).max().unwrap_or(1);
    let height = parts.iter().map(RgbImage::height).sum::<u32>().max(1);
    let mut out = RgbImage::from_pixel(width, height, WHITE);
    let mut y = 0;
    for part in parts {
        image::imageops::replace(&mut out, part, 0, i64::from(y));
        y += part.height();
    }
    out
}
