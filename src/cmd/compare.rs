//! `crackscope compare`: runs side by side (see [`crate::app::compare`]): a table of status,
//! recipe differences and results, and with `--figure` their curves overlaid in one PNG.

use anyhow::Result;

use crate::app::compare::{compare as read_runs, overlay_figure, Comparison};
use crate::cli::CompareArgs;
use crate::imaging::write_png;

pub fn compare(args: &CompareArgs) -> Result<()> {
    let comparison = read_runs(&args.runs)?;
    print!("{}", table(&comparison));
    if let Some(path) = &args.figure {
        write_png(&overlay_figure(&comparison), path)?;
        println!("curves: {}", path.display());
    }
    Ok(())
}

/// One row a run: its name, status, progress, best validation, test accuracy, then each recipe
/// key that differs between the runs.
pub fn table(comparison: &Comparison) -> String {
    let mut rows = vec![comparison.header()];
    rows.extend(comparison.runs.iter().map(|run| run.cells()));
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    if comparison.differing_keys.is_empty() && comparison.runs.len() > 1 {
        out += "(the runs' recipes are the same)\n";
    }
    out
}
