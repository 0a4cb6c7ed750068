//! `crackscope compare`: runs side by side (see [`crate::app::compare`]): a table of status,
//! recipe differences and results, and with `--figure` their curves overlaid in one PNG.

use anyhow::Result;

use crate::app::compare::{compare as read_runs, overlay_figure, short_name, Comparison};
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
    let mut head = vec![
        "run".to_string(),
        "status".into(),
        "iterations".into(),
        "best val (iter)".into(),
        "test".into(),
    ];
    head.extend(comparison.differing_keys.iter().cloned());
    let mut rows = vec![head];
    for run in &comparison.runs {
        let curves = &run.curves;
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
        let mut row = vec![
            short_name(&run.path),
            run.status.to_string(),
            iterations,
            best,
            test,
        ];
        row.extend(run.differences.iter().map(|(_, v)| v.clone()));
        rows.push(row);
    }
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
