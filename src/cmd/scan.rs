//! `crackscope scan`: photos in, crack maps out (see [`crate::app::scan`]); a progress bar on
//! stderr while it works, then a table ranked by crack fraction, or JSON.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::app::scan::{
    folder_of, scan_photos, Metrics, PhotoOut, ScanEnd, ScanProgress, ScanRequest,
};
use crate::cli::{ScanArgs, ScanMergeArgs};
use crate::data::inputs::{FileOutcome, SomeInputsFailed};
use crate::scan::plan::Shard;

pub fn scan(args: &ScanArgs) -> Result<ScanEnd> {
    let shard = match args.sharding.shard {
        Some(shard) => Some(shard),
        None => {
            Shard::from_environment(|name| std::env::var(name).ok(), args.sharding.shard_count)?
        }
    };
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
        shard,
        scales: args.scale.clone(),
        descriptors: args.descriptors,
    };
    let again = this_command();
    let stop = Arc::new(AtomicBool::new(false));
    let _listening = stop_on_signals(stop.clone(), folder_of(&args.out, shard), again.clone())?;
    let mut bar: Option<ProgressBar> = None;
    let scanned = scan_photos(
        &request,
        &mut |p: ScanProgress| {
            let bar = bar.get_or_insert_with(|| progress(p.total));
            bar.set_position(p.done as u64);
            match p.next {
                Some(path) => bar.set_message(path.display().to_string()),
                None => bar.finish_and_clear(),
            }
        },
        &|| stop.load(Ordering::SeqCst),
    )?;
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&scanned.photos)?)
    } else {
        table(
            &scanned.photos,
            scanned.overall.as_ref(),
            &scanned.heading,
            args.threshold,
            &scanned.folder,
        )
    };
    // A closed pipe (| head) ends the output quietly.
    let _ = std::io::stdout().write_all(text.as_bytes());
    let mut note = std::io::stderr();
    if !scanned.familiarity_known {
        let _ = writeln!(note, "{}", super::no_familiarity_note(&args.model));
    }
    for photo in scanned.photos.iter().filter_map(|o| match o {
        FileOutcome::Done(p) => Some(p),
        FileOutcome::Failed { .. } => None,
    }) {
        if let Some(check) = photo.familiarity.filter(|c| c.unfamiliar) {
            let _ = writeln!(
                note,
                "warning: {} is unlike the model's training images ({} of {} windows sampled \
                 over it are, median feature distance {:.3} over the threshold {:.3}): do not \
                 trust its crack map",
                photo.path.display(),
                check.unfamiliar_windows,
                check.windows,
                check.distance,
                check.threshold
            );
        }
    }
    if scanned.earlier > 0 {
        let _ = writeln!(
            note,
            "{} photos were scanned by an earlier run of this scan and kept",
            scanned.earlier
        );
    }
    if scanned.end == ScanEnd::Stopped {
        let _ = writeln!(
            note,
            "stopped with {} photos left to scan; {} holds the photos done, and `{again}` \
             continues the scan",
            scanned.left,
            scanned.folder.display()
        );
        return Ok(ScanEnd::Stopped);
    }
    if let Some(shard) = shard {
        let _ = writeln!(
            note,
            "shard {shard} done; when every shard is: crackscope scan-merge {}",
            quote(&args.out.display().to_string())
        );
    }
    SomeInputsFailed::check(&scanned.photos, "scanned")?;
    Ok(ScanEnd::Finished)
}

/// `crackscope scan-merge`: the shards of a scan merged into one scan folder.
pub fn merge(args: &ScanMergeArgs) -> Result<()> {
    let merged = crate::app::scan_merge::merge(&args.out, &args.shards)?;
    println!(
        "merged {} shards into {}: {} photos scanned{}",
        merged.shards,
        merged.folder.display(),
        merged.photos,
        if merged.failed > 0 {
            format!(", {} could not be (listed in its scan.json)", merged.failed)
        } else {
            String::new()
        }
    );
    println!(
        "browse them: crackscope watch {}",
        quote(&merged.folder.display().to_string())
    );
    Ok(())
}

/// The first SIGINT, SIGTERM or SIGHUP stops the scan after the photo under way (its record
/// written); a second quits at once, leaving the record of the photos done before.
fn stop_on_signals(
    stop: Arc<AtomicBool>,
    folder: std::path::PathBuf,
    again: String,
) -> Result<crate::app::signals::Listening> {
    crate::app::signals::listen(true, move |signal, name| {
        // Not eprintln!: after an SSH hang-up stderr is gone, and that must not become a panic.
        let mut err = std::io::stderr();
        if stop.swap(true, Ordering::SeqCst) {
            for leftover in crate::run::lock::leftover_temporaries(&folder) {
                let _ = std::fs::remove_file(leftover);
            }
            let _ = writeln!(
                err,
                "\n{name} again: quitting at once; {} holds the photos recorded so far, and \
                 `{again}` continues the scan",
                folder.display()
            );
            std::process::exit(128 + signal);
        }
        let _ = writeln!(
            err,
            "\n{name}: stopping after this photo (send it again to quit at once); `{again}` \
             continues the scan"
        );
    })
}

/// The command line that started this process, as it can be typed again.
fn this_command() -> String {
    let mut args = std::env::args();
    let _program = args.next();
    std::iter::once("crackscope".to_string())
        .chain(args.map(|a| quote(&a)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
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

/// Photos ranked by crack fraction, with scores when masks were given; then the photos that
/// could not be scanned, with the reason.
fn table(
    outcomes: &[FileOutcome<PhotoOut>],
    overall: Option<&Metrics>,
    heading: &str,
    threshold: f32,
    folder: &std::path::Path,
) -> String {
    let mut order: Vec<&PhotoOut> = outcomes
        .iter()
        .filter_map(|o| match o {
            FileOutcome::Done(out) => Some(out),
            FileOutcome::Failed { .. } => None,
        })
        .collect();
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
    for r in &order {
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
    for outcome in outcomes {
        if let FileOutcome::Failed { path, error } = outcome {
            out += &format!("{:>8}  {}: {error}\n", "failed", path.display());
        }
    }
    if !order.is_empty() {
        out += &format!("overlays and masks: {}\n", folder.display());
        out += &format!(
            "browse them: crackscope watch {}\n",
            quote(&folder.display().to_string())
        );
    }
    out
}
