//! The run directory: everything one training run writes and later commands read back.

pub mod predictions;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Paths inside a run directory, in one place so writers and readers agree.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `path`, or `runs/<timestamp>` when none is given.
    pub fn create(path: Option<&Path>) -> Result<RunDir> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                PathBuf::from("runs").join(chrono::Local::now().format("%Y%m%d-%H%M%S").to_string())
            }
        };
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create run directory {}", path.display()))?;
        Ok(RunDir { path })
    }

    /// An existing run directory, recognised by its resolved recipe.
    pub fn open(path: &Path) -> Result<RunDir> {
        let run = RunDir {
            path: path.to_path_buf(),
        };
        if !path.is_dir() {
            bail!(
                "{} is not a run directory (no such directory)",
                path.display()
            );
        }
        if !run.recipe().is_file() {
            bail!(
                "{} is not a run directory (it has no config.toml)",
                path.display()
            );
        }
        Ok(run)
    }

    /// The resolved recipe the run was started with.
    pub fn recipe(&self) -> PathBuf {
        self.path.join("config.toml")
    }
    /// The split manifest (`split.json`): the run's train/validation/test files, fixed for good.
    pub fn manifest(&self) -> PathBuf {
        self.path.join("split.json")
    }
    /// Files skipped because they could not be read, with the reasons.
    pub fn skipped(&self) -> PathBuf {
        self.path.join("skipped.json")
    }
    pub fn metrics(&self) -> PathBuf {
        self.path.join(crate::runlog::FILE_NAME)
    }
    /// The best checkpoint by validation accuracy.
    pub fn best_model(&self) -> PathBuf {
        self.path.join("model.safetensors")
    }
    /// The latest checkpoint, the one `--resume` continues from.
    pub fn last_model(&self) -> PathBuf {
        self.path.join("last.safetensors")
    }
    /// Adam's moments for the latest checkpoint.
    pub fn optimizer_state(&self) -> PathBuf {
        self.path.join("optimizer.safetensors")
    }
    pub fn report(&self) -> PathBuf {
        self.path.join("report.json")
    }
    pub fn predictions(&self) -> PathBuf {
        self.path.join("predictions.csv")
    }
    /// Requests to a running training from another process (`watch`).
    pub fn control(&self) -> PathBuf {
        self.path.join("control.json")
    }
    pub fn samples(&self) -> PathBuf {
        self.path.join("samples.png")
    }
}
