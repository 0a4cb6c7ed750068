//! `crackscope watch RUN`: the dashboard on a run directory, fed by its `metrics.jsonl`: live while
//! another process trains (steered through `RUN/control.json`), or the finished run's results.

use std::sync::Arc;

use anyhow::Result;

use crate::cli::WatchArgs;
use crate::events::Event;
use crate::gallery::RunGallery;
use crate::run::RunDir;
use crate::runlog;
use crate::tui::{self, DashboardOptions, GraphicsChoice, RunDirSteer, Source, Steer};

pub fn watch(args: &WatchArgs) -> Result<()> {
    let run = RunDir::open(&args.run)?;
    let (events, _) = runlog::read_from(&run.metrics(), 0).unwrap_or_default();
    let finished = events
        .iter()
        .any(|e| matches!(e, Event::Finished { .. } | Event::Failed { .. }));
    // A finished run has nothing to steer.
    let steer: Option<Arc<dyn Steer>> = if finished {
        None
    } else {
        Some(Arc::new(RunDirSteer::new(&run.path)?))
    };
    let options = DashboardOptions {
        graphics: GraphicsChoice::resolve(args.graphics)?,
        ..DashboardOptions::default()
    };
    tui::run_blocking(
        Source::Watch(run.path.clone()),
        steer,
        Box::new(RunGallery::open(&run)?),
        options,
    )?;
    Ok(())
}
