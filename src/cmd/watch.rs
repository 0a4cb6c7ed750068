//! `crackscope watch RUN`: the dashboard on a run directory of either kind, fed by its
//! `metrics.jsonl`: live while another process trains (steered through `RUN/control.json`), or the
//! finished run's results. `crackscope watch SCAN_FOLDER`: the scan view on a `crackscope scan`'s output
//! folder (what it has recorded, with a warning when the scan is unfinished or still running).
//! `crackscope watch RUN RUN ...`: several runs side by side.

use std::sync::Arc;

use anyhow::{bail, Result};

use crate::app::gallery::RunGallery;
use crate::cli::WatchArgs;
use crate::detector::Kind;
use crate::run::steer::{RunDirSteer, Steer};
use crate::run::{NotARunDirectory, RunDir};
use crate::tui::{self, Dashboard, DashboardOptions, GraphicsChoice};

pub fn watch(args: &WatchArgs) -> Result<()> {
    let colors = DashboardOptions::default().colors;
    if let [_, _, ..] = args.runs.as_slice() {
        return tui::run_compare_view(
            args.runs.clone(),
            GraphicsChoice::resolve(args.graphics)?,
            colors,
        );
    }
    let target = &args.runs[0];
    // A scan folder is recognised by its scan.json, a run directory by its config.toml.
    if crate::scan::output::is_scan_folder(target) {
        say_how_far(target);
        return tui::run_scan_view(target, GraphicsChoice::resolve(args.graphics)?, colors);
    }
    let run = match RunDir::open(target) {
        Ok(run) => run,
        Err(e) if e.is::<NotARunDirectory>() => bail!(
            "{} is neither a run directory (no config.toml) nor a scan output folder (no {})",
            target.display(),
            crate::scan::output::RECORD_FILE
        ),
        Err(e) => return Err(e),
    };
    // Steering is offered while the dashboard shows a training running (the latest segment of the
    // log, so a resumed run is steerable); each request goes to whichever training holds the run's
    // lock then, and is refused with the `--resume` command when none does.
    // A one-class fit is a single pass that cannot be paused or stopped: nothing to steer.
    let kind = run.model_kind();
    let steer: Option<Arc<dyn Steer>> = match kind {
        Kind::Classifier => Some(Arc::new(RunDirSteer::new(&run.path)?)),
        Kind::OneClass => None,
    };
    let options = DashboardOptions {
        graphics: GraphicsChoice::resolve(args.graphics)?,
        ..DashboardOptions::default()
    };
    let gallery = RunGallery::open(&run, kind)?;
    Dashboard::watch(run.path.clone(), steer, Box::new(gallery), options)?;
    Ok(())
}

/// A scan folder whose scan is under way, stopped, or has photos it could not scan says so: the
/// view shows the photos recorded.
fn say_how_far(folder: &std::path::Path) {
    let Ok(record) = crate::scan::output::read(folder) else {
        return; // the view reports what is wrong with it
    };
    let lock = folder.join(crate::app::scan_folder::LOCK_FILE);
    if let Some(holder) = crate::run::lock::live_holder(&lock) {
        crate::core::warn::warn(format!(
            "a scan (process {}) is still writing {}: the view shows the {} photos recorded so far",
            holder.pid,
            folder.display(),
            record.photos.len()
        ));
    } else if !record.finished {
        crate::core::warn::warn(format!(
            "the scan in {} is not finished ({} photos recorded): run its command again to finish it",
            folder.display(),
            record.photos.len()
        ));
    }
    if !record.failed.is_empty() {
        crate::core::warn::warn(format!(
            "{} photos could not be scanned (listed in {} with the reason)",
            record.failed.len(),
            folder.join(crate::scan::output::RECORD_FILE).display()
        ));
    }
}
