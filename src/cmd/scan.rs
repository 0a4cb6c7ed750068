//! `crackscope scan`: photos in, crack maps out (see [`crate::app::scan`]); a progress bar on
//! stderr while it works, then a table ranked by crack fraction, or JSON.

use std::io::Write;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::app::scan::{scan_photos, Metrics, PhotoOut, ScanProgress, ScanRequest};
use crate::cli::ScanArgs;

pub fn scan(args: &ScanArgs) -> Result<()> {
    let request = ScanRequest {
        model: args.model.clone(),
        options: args.model_options.load_options(),
        photos: args.photos.clone(),
        out: args.out.clone(),
        stride: args.stride,
        positive: args.positive.clone(),
        threshold: args.threshold,
        masks: args.masks.clone(),
        tolerance: args.tolerance,
    };
    let mut bar: Option<ProgressBar> = None;
    let scanned = scan_photos(&request, &mut |p: ScanProgress| {
        let bar = bar.get_or_insert_with(|| progress(p.total));
        bar.set_position(p.done as u64);
        match p.next {
            Some(path) => bar.set_message(path.display().to_string()),
            None => bar.finish_and_clear(),
        }
    })?;
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&scanned.photos)?)
    } else {
        table(
            &scanned.photos,
            scanned.overall.as_ref(),
            &scanned.heading,
            args.threshold,
        )
    };
    // A closed pipe (| head) ends the output quietly.
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(())
}

/// A bar on stderr when several photos stream through (hidden off a terminal).
fn progress(photos: usize) -> ProgressBar {
    if photos < 2 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(photos as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {pos}/{len} photos, {eta} left  {wide_msg}")
    {
        bar.set_style(style);
    }
    bar
}

fn fmt_score(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into())
}

/// Photos ranked by crack fraction, with scores when masks were given.
fn table(results: &[PhotoOut], overall: Option<&Metrics>, heading: &str, threshold: f32) -> String {
    let mut order: Vec<&PhotoOut> = results.iter().collect();
    order.sort_by(|a, b| b.crack_fraction.total_cmp(&a.crack_fraction));
    let mut out = format!("{heading}\n");
    out += &format!(
        "{:>8} {:>8} {:>8} {:>10}",
        "crack %", "windows", "cracked", "regions"
    );
    if overall.is_some() {
        out += &format!(
            " {:>7} {:>7} {:>7} {:>7} {:>7}",
            "win F1", "win AUC", "px P", "px R", "px IoU"
        );
    }
    out += "  photo\n";
    let row = |m: &Metrics| {
        format!(
            " {:>7} {:>7} {:>7} {:>7} {:>7}",
            fmt_score(m.window.f1),
            fmt_score(m.window.auroc),
            fmt_score(m.pixel.precision),
            fmt_score(m.pixel.recall),
            fmt_score(m.pixel.iou)
        )
    };
    for r in order {
        let cracked = r
            .windows
            .iter()
            .filter(|w| w.probability >= threshold)
            .count();
        out += &format!(
            "{:>8.2} {:>8} {:>8} {:>10}",
            100.0 * r.crack_fraction,
            r.windows.len(),
            cracked,
            r.regions.len()
        );
        if let Some(m) = &r.metrics {
            out += &row(m);
        }
        out += &format!("  {}\n", r.path.display());
    }
    if let Some(m) = overall {
        out += &format!("{:>8} {:>8} {:>8} {:>10}", "", "", "", "overall");
        out += &row(m);
        out += &format!(
            "  (pixel tolerance {} px; {} windows with cracks only near their border not scored)\n",
            m.tolerance, m.border_windows
        );
    }
    if let Some(first) = results.first() {
        if let Some(dir) = first.overlay.parent() {
            out += &format!("overlays and masks: {}\n", dir.display());
            out += &format!("browse them: crackscope watch {}\n", dir.display());
        }
    }
    out
}
