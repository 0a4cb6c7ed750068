//! The application: what the commands ask for, between the library and the command line. Each
//! module is one job a command starts and whose result it prints: training or fitting a run
//! ([`session`], on a worker thread whose events go to an observer, [`job`]), judging a model on
//! labelled data ([`evaluate`]), heatmaps of files or a run ([`heatmaps`]), scanning photos
//! ([`scan`]), the benchmark harness ([`bench`]), and the pictures the dashboard asks for
//! ([`gallery`]). Nothing here prints: results and notes come back to the command.

pub(crate) mod bench;
pub mod compare;
pub(crate) mod evaluate;
pub mod export;
pub mod figures;
pub mod gallery;
pub(crate) mod heatmaps;
pub(crate) mod job;
pub mod scan;
pub mod scan_figures;
pub(crate) mod scan_folder;
pub mod scan_labels;
pub(crate) mod scan_merge;
pub mod session;
pub(crate) mod signals;

use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::Device;

use crate::detector::Detector;
use crate::model::LoadOptions;
use crate::run::RunDir;

/// The model file a model argument stands for, and its run: a file as it is, a run directory's
/// best model.
pub fn model_target(target: &Path) -> Result<(PathBuf, Option<RunDir>)> {
    if target.is_dir() {
        let run = RunDir::open(target)?;
        Ok((run.best_model(), Some(run)))
    } else {
        Ok((target.to_path_buf(), None))
    }
}

/// Opens the model a model argument stands for (see [`model_target`]), of whichever kind it is.
pub fn open_model(
    target: &Path,
    device: &Device,
    options: &LoadOptions,
) -> Result<(Detector, Option<RunDir>)> {
    let (file, run) = model_target(target)?;
    Ok((Detector::open(&file, device, options)?, run))
}
