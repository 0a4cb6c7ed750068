//! `crackscope watch RUN`: the dashboard on a run directory, fed by its `metrics.jsonl`: live while
//! another process trains (steered through `RUN/control.json`), or the finished run's results.
//! `crackscope watch SCAN_FOLDER`: the scan view on a finished `crackscope scan`'s output folder.

use std::sync::Arc;

use anyhow::{bail, Result};

use crate::cli::WatchArgs;
use crate::gallery::RunGallery;
use crate::run::{NotARunDirectory, RunDir};
use crate::tui::{self, DashboardOptions, GraphicsChoice, RunDirSteer, Source, Steer};

pub fn watch(args: &WatchArgs) -> Result<()> {
    // A scan folder is recognised by its scan.json, a run directory by its config.toml.
    if crate::scan_output::is_scan_folder(&args.run) {
        let colors = DashboardOptions::default().colors;
        return tui::run_scan_view(&args.run, GraphicsChoice::resolve(args.graphics)?, colors);
    }
    let run = match RunDir::open(&args.run) {
        Ok(run) => run,
        Err(e) if e.is::<NotARunDirectory>() => bail!(
            "{} is neither a run directory (no config.toml) nor a scan output folder (no {})",
            args.run.display(),
            crate::scan_output::RECORD_FILE
        ),
        Err(e) => return Err(e),
    };
    // Steering is offered while the dashboard shows a training running (the latest segment of the
    // log, so a resumed run is steerable); each request goes to whichever training holds the run's
    // lock then, and is refused with the `--resume` command when none does.
    // A one-class fit is a single pass that cannot be paused or stopped: nothing to steer.
    let one_class = crate::oneclass::gallery::is_oneclass_run(&run);
    let steer: Option<Arc<dyn Steer>> = if one_class {
        None
    } else {
        Some(Arc::new(RunDirSteer::new(&run.path)?))
    };
    let options = DashboardOptions {
        graphics: GraphicsChoice::resolve(args.graphics)?,
        ..DashboardOptions::default()
    };
    // A one-class run draws anomaly maps in the browser instead of Grad-CAM.
    let gallery: Box<dyn tui::Gallery> = if one_class {
        Box::new(crate::oneclass::gallery::OneClassGallery::open(&run)?)
    } else {
        Box::new(RunGallery::open(&run)?)
    };
    tui::run_blocking(Source::Watch(run.path.clone()), steer, gallery, options)?;
    Ok(())
}
