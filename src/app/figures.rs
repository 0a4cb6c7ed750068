//! Figures for reports, as PNG files: a run's training progress (the seed's plot: accuracy and
//! loss of every mini-batch, raw and smoothed, with the validations) and its test confusion
//! matrix. Written into `RUN/figures/` at the end of a training and by `crackscope figures`; the
//! confusion matrix and a few heatmaps of test images also go into the run's TensorBoard log.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use image::{Rgb, RgbImage};

use super::gallery::{Gallery, RunGallery, TestItem};
use crate::detector::Kind;
use crate::imaging::chart::{count_matrix, line_chart, Chart, Mark, Series, WHITE};
use crate::imaging::write_png;
use crate::run::curves::{smoothed, Curve, Curves};
use crate::run::report::Report;
use crate::run::tensorboard::EventWriter;
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

/// Heatmaps of test images a run's TensorBoard log shows: its worst mistakes first, then one
/// image of each class judged right.
const TENSORBOARD_HEATMAPS: usize = 4;

/// Writes a tested run's confusion matrix (the `confusion.png` figure) and a few heatmaps of its
/// test images (Grad-CAM at the recipe's settings; a one-class run's anomaly maps) into a new
/// TensorBoard event file of the run, at `step` (the last iteration). Returns the tags written.
pub fn tensorboard_pictures(run: &RunDir, kind: Kind, step: i64) -> Result<Vec<String>> {
    let mut pictures = Vec::new();
    let report = Report::load(&run.report())?;
    let title = format!("Test confusion, accuracy {:.1}%", 100.0 * report.accuracy());
    pictures.push((
        "test/confusion".to_string(),
        count_matrix(&title, report.classes(), report.confusion()),
    ));
    let mut gallery = RunGallery::open(run, kind)?;
    let classes = gallery.classes();
    let items = gallery.test_items()?;
    let spec = gallery.default_spec();
    let what = match kind {
        Kind::Classifier => "gradcam",
        Kind::OneClass => "anomaly_map",
    };
    for item in chosen_items(&items, TENSORBOARD_HEATMAPS) {
        let it = &items[item];
        let name = |c: usize| classes.get(c).cloned().unwrap_or_else(|| c.to_string());
        let file = it
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tag = format!(
            "test/{what}/{} {} as {} {file}",
            if it.is_correct() { "right" } else { "wrong" },
            name(it.truth),
            name(it.predicted)
        );
        pictures.push((tag, gallery.picture(item, &spec)?));
    }
    let mut writer = EventWriter::create_in(&run.path)?;
    writer.write_pictures(step, &pictures)?;
    Ok(pictures.into_iter().map(|(tag, _)| tag).collect())
}

/// Up to `count` test items: mistakes by loss, the worst first, up to half of them; then the
/// most confident right answer of each true class in turn; then further mistakes.
fn chosen_items(items: &[TestItem], count: usize) -> Vec<usize> {
    let by = |right: bool, key: fn(&TestItem) -> f32| {
        let mut chosen: Vec<usize> = (0..items.len())
            .filter(|&i| items[i].is_correct() == right)
            .collect();
        chosen.sort_by(|&a, &b| key(&items[b]).total_cmp(&key(&items[a])));
        chosen
    };
    let wrong = by(false, |it| it.loss);
    let right = by(true, |it| it.score);
    let mut out: Vec<usize> = wrong.iter().copied().take(count / 2).collect();
    let mut classes: Vec<usize> = right.iter().map(|&i| items[i].truth).collect();
    classes.sort_unstable();
    classes.dedup();
    for class in classes {
        if let Some(&i) = right.iter().find(|&&i| items[i].truth == class) {
            if out.len() < count {
                out.push(i);
            }
        }
    }
    for &i in wrong.iter().skip(count / 2).chain(&right) {
        if out.len() >= count {
            break;
        }
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn item(truth: usize, predicted: usize, score: f32, loss: f32) -> TestItem {
        TestItem {
            path: PathBuf::from("x.png"),
            truth,
            predicted,
            score,
            loss,
        }
    }

    #[test]
    fn heatmaps_show_the_worst_mistakes_and_each_class_judged_right() {
        let items = [
            item(0, 0, 0.9, 0.1),
            item(0, 1, 0.6, 0.9),
            item(1, 1, 0.95, 0.05),
            item(1, 0, 0.8, 1.6),
            item(0, 0, 0.99, 0.01),
            item(1, 0, 0.55, 0.8),
        ];
        // Mistakes 3 (loss 1.6) and 1 (0.9); the surest right of class 0 (4) and of class 1 (2).
        assert_eq!(chosen_items(&items, 4), [3, 1, 4, 2]);
        // Without mistakes, right answers fill the places.
        let right = [items[0].clone(), items[2].clone(), items[4].clone()];
        assert_eq!(chosen_items(&right, 4), [2, 1, 0]);
        assert!(chosen_items(&[], 4).is_empty());
    }
}
