//! A scan folder's figure (`crackscope figures SCAN_FOLDER`): the threshold sweep of a scan
//! against true masks, precision, recall and F1 per threshold for windows and for pixels, with
//! the scan's own threshold marked, as one PNG.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use image::{Rgb, RgbImage};

use super::figures::{stack, DIR_NAME};
use crate::imaging::chart::{line_chart, Chart, Mark, Series};
use crate::imaging::write_png;
use crate::scan::metrics::Scores;
use crate::scan::output;

pub const SWEEP_FILE: &str = "threshold-sweep.png";

const PRECISION: Rgb<u8> = Rgb([0, 114, 178]);
const RECALL: Rgb<u8> = Rgb([230, 159, 0]);
const F1: Rgb<u8> = Rgb([0, 0, 0]);
const MARKER: Rgb<u8> = Rgb([170, 170, 170]);

/// Writes the sweep figure of the scan folder `folder` into `out` (default `FOLDER/figures/`).
pub fn scan_figures(folder: &Path, out: Option<&Path>) -> Result<Vec<PathBuf>> {
    let record = output::read(folder)?;
    let Some(sweep) = &record.sweep else {
        bail!(
            "{} has no threshold sweep: only a scan with --masks (by this version) counts one",
            folder.join(output::RECORD_FILE).display()
        );
    };
    let scores = sweep.scores();
    let chart = |title: &str, pick: fn(&crate::scan::sweep::SweepScores) -> Scores| {
        let line = |name: &str, colour, value: fn(&Scores) -> Option<f64>| Series {
            name: name.into(),
            points: scores
                .iter()
                .filter_map(|s| value(&pick(s)).map(|v| (f64::from(s.threshold), v)))
                .collect(),
            colour,
            mark: Mark::LineDots,
        };
        let t = f64::from(record.threshold);
        Chart {
            title: title.into(),
            x_label: "threshold".into(),
            y_label: "".into(),
            y_range: Some((0.0, 1.0)),
            series: vec![
                Series {
                    name: format!("scan threshold {t}"),
                    points: vec![(t, 0.0), (t, 1.0)],
                    colour: MARKER,
                    mark: Mark::Line,
                },
                line("precision", PRECISION, |s| s.precision),
                line("recall", RECALL, |s| s.recall),
                line("F1", F1, |s| s.f1),
            ],
        }
    };
    let tolerance = record
        .settings
        .as_ref()
        .and_then(|s| s.tolerance)
        .unwrap_or_default();
    let windows = chart("Windows (central-region truth)", |s| s.windows);
    let pixels = chart(
        &format!("Pixels (tolerance {tolerance} px)"),
        |s: &crate::scan::sweep::SweepScores| s.pixels,
    );
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| folder.join(DIR_NAME));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let path = out.join(SWEEP_FILE);
    let figure: RgbImage = stack(&[
        line_chart(&windows, 900, 380),
        line_chart(&pixels, 900, 380),
    ]);
    write_png(&figure, &path)?;
    Ok(vec![path])
}
