//! Runs side by side: each run's status, what its recipe changes against the others, and its
//! results (iterations, best validation, test accuracy), read from its own files; and one
//! figure that overlays their curves. What `crackscope compare` prints and draws.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use image::{Rgb, RgbImage};

use super::figures::stack;
use crate::imaging::chart::{line_chart, Chart, Mark, Series};
use crate::run::curves::{smoothed, Curves, Ending};
use crate::run::RunDir;

/// One run as the comparison shows it.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub path: PathBuf,
    /// "running", "finished", "stopped", "failed", "not running" (a log without an end and no
    /// process), "not started".
    pub status: &'static str,
    /// Recipe keys whose values differ between the compared runs, with this run's value.
    pub differences: Vec<(String, String)>,
    pub curves: Curves,
}

impl RunSummary {
    /// The run's row of the comparison table: name, status, progress, best validation (with its
    /// iteration), test accuracy, then its values of the differing recipe keys; "—" where unknown.
    pub fn cells(&self) -> Vec<String> {
        let curves = &self.curves;
        let iterations = match (curves.last_iteration(), curves.planned_iterations) {
            (Some(done), Some(planned)) => format!("{done}/{planned}"),
            (Some(done), None) => done.to_string(),
            (None, Some(planned)) => format!("0/{planned}"),
            (None, None) => "—".into(),
        };
        let best = curves
            .best_validation()
            .map(|(i, a)| format!("{:.1}% ({i})", 100.0 * a))
            .unwrap_or_else(|| "—".into());
        let test = curves
            .test_accuracy
            .map(|a| format!("{:.1}%", 100.0 * a))
            .unwrap_or_else(|| "—".into());
        let mut cells = vec![
            short_name(&self.path),
            self.status.to_string(),
            iterations,
            best,
            test,
        ];
        cells.extend(self.differences.iter().map(|(_, v)| v.clone()));
        cells
    }
}

/// The compared runs, in the order given.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub runs: Vec<RunSummary>,
    /// The recipe keys that differ (dotted, such as `train.batch_size`), sorted.
    pub differing_keys: Vec<String>,
}

impl Comparison {
    /// The table's header, column for column with [`RunSummary::cells`].
    pub fn header(&self) -> Vec<String> {
        let mut head: Vec<String> = ["run", "status", "iterations", "best val (iter)", "test"]
            .map(String::from)
            .to_vec();
        head.extend(self.differing_keys.iter().cloned());
        head
    }
}

/// Reads each run directory of `paths`.
pub fn compare(paths: &[PathBuf]) -> Result<Comparison> {
    ensure!(!paths.is_empty(), "no runs to compare");
    let mut recipes = Vec::with_capacity(paths.len());
    let mut runs = Vec::with_capacity(paths.len());
    for path in paths {
        let run = RunDir::open(path)?;
        let text = std::fs::read_to_string(run.recipe())
            .with_context(|| format!("cannot read {}", run.recipe().display()))?;
        let recipe: toml::Value = toml::from_str(&text)
            .with_context(|| format!("{} is not valid TOML", run.recipe().display()))?;
        let mut flat = BTreeMap::new();
        flatten("", &recipe, &mut flat);
        recipes.push(flat);
        let curves = if run.metrics().is_file() {
            Curves::read(&run.metrics())?
        } else {
            Curves::default()
        };
        runs.push(RunSummary {
            path: path.clone(),
            status: status(&run, &curves),
            differences: Vec::new(),
            curves,
        });
    }
    let mut keys: Vec<String> = recipes.iter().flat_map(|r| r.keys().cloned()).collect();
    keys.sort();
    keys.dedup();
    // Where the runs' data lives says nothing about the recipe: leave paths out.
    keys.retain(|k| k != "data.root" && k != "train.weights");
    let differing_keys: Vec<String> = keys
        .into_iter()
        .filter(|k| {
            let first = recipes[0].get(k);
            recipes.iter().any(|r| r.get(k) != first)
        })
        .collect();
    for (run, recipe) in runs.iter_mut().zip(&recipes) {
        run.differences = differing_keys
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    recipe.get(k).cloned().unwrap_or_else(|| "-".into()),
                )
            })
            .collect();
    }
    Ok(Comparison {
        runs,
        differing_keys,
    })
}

fn status(run: &RunDir, curves: &Curves) -> &'static str {
    match curves.end {
        Some(Ending::Finished) => "finished",
        Some(Ending::Stopped) => "stopped",
        Some(Ending::Failed) => "failed",
        None if run.live_training().is_some() => "running",
        None if curves.train_loss.is_empty() && curves.planned_iterations.is_none() => {
            "not started"
        }
        None => "not running",
    }
}

/// Every leaf of `value` as a dotted key and its TOML text.
fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, value, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Colours of the runs' curves, in order (then again).
const PALETTE: [Rgb<u8>; 6] = [
    Rgb([30, 90, 200]),
    Rgb([220, 90, 20]),
    Rgb([40, 150, 60]),
    Rgb([170, 40, 160]),
    Rgb([120, 120, 120]),
    Rgb([200, 30, 50]),
];

/// The runs' curves overlaid: validation accuracy above, smoothed training loss below, one
/// colour a run, named by its folder.
pub fn overlay_figure(comparison: &Comparison) -> RgbImage {
    let mut accuracy = Chart {
        title: "Validation accuracy (%)".into(),
        x_label: "iteration".into(),
        y_label: "%".into(),
        y_range: None,
        series: Vec::new(),
    };
    let mut loss = Chart {
        title: "Training loss (smoothed)".into(),
        x_label: "iteration".into(),
        y_label: "cross-entropy".into(),
        y_range: None,
        series: Vec::new(),
    };
    for (n, run) in comparison.runs.iter().enumerate() {
        let colour = PALETTE[n % PALETTE.len()];
        let name = short_name(&run.path);
        accuracy.series.push(Series {
            name: name.clone(),
            points: run
                .curves
                .val_accuracy
                .iter()
                .map(|&(i, v)| (i as f64, 100.0 * v))
                .collect(),
            colour,
            mark: Mark::LineDots,
        });
        loss.series.push(Series {
            name,
            points: smoothed(&run.curves.train_loss)
                .iter()
                .map(|&(i, v)| (i as f64, v))
                .collect(),
            colour,
            mark: Mark::Line,
        });
    }
    stack(&[line_chart(&accuracy, 900, 400), line_chart(&loss, 900, 360)])
}

/// A run's folder name (its last path component), for legends and column heads.
pub fn short_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_are_compared_key_by_key() {
        let value: toml::Value =
            toml::from_str("[train]\nbatch_size = 32\nepochs = 2\n[data]\nroot = \"x\"\n").unwrap();
        let mut flat = BTreeMap::new();
        flatten("", &value, &mut flat);
        assert_eq!(flat["train.batch_size"], "32");
        assert_eq!(flat["data.root"], "\"x\"");
    }
}
