//! The run directory: everything one training run writes and later commands read back, with
//! typed readers and writers for the files that need more than a path: the resume state
//! ([`resume`]), the lock that makes one training the owner ([`lock`]) and the requests from
//! `watch` ([`control`]).

pub(crate) mod control;
pub mod curves;
pub mod event;
pub(crate) mod lock;
pub mod log;
pub(crate) mod recipe;
pub(crate) mod resume;
pub(crate) mod state;
pub(crate) mod steer;
pub mod tensorboard;

pub mod predictions;
pub(crate) mod report;
pub(crate) mod skipped;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use control::ControlFile;

use crate::detector::Kind;
use event::Event;
pub use lock::{Holder, RunLock};

/// A readable directory without a run's `config.toml`: told apart from one that cannot be read,
/// so `watch` can offer its other guess (a scan folder) only when that is what it is.
#[derive(Debug)]
pub struct NotARunDirectory(pub PathBuf);

impl std::fmt::Display for NotARunDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is not a run directory (it has no config.toml)",
            self.0.display()
        )
    }
}

impl std::error::Error for NotARunDirectory {}

/// Paths inside a run directory, in one place so writers and readers agree.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// An existing run directory, recognised by its resolved recipe.
    pub fn open(path: &Path) -> Result<RunDir> {
        let run = RunDir {
            path: path.to_path_buf(),
        };
        // A folder that cannot be read says so: "no config.toml" would send its owner looking
        // for a file that is there.
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!(
                "{} is not a run directory (not a directory)",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "{} is not a run directory (no such directory)",
                path.display()
            ),
            Err(e) => bail!("cannot read {}: {e}", path.display()),
        }
        if let Err(e) = std::fs::read_dir(path) {
            bail!("cannot read the directory {}: {e}", path.display());
        }
        match std::fs::metadata(run.recipe()) {
            Ok(meta) if meta.is_file() => Ok(run),
            Ok(_) => bail!("{} is not a file", run.recipe().display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(NotARunDirectory(path.to_path_buf()).into())
            }
            Err(e) => bail!("cannot read {}: {e}", run.recipe().display()),
        }
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
        self.path.join(log::FILE_NAME)
    }
    /// The best checkpoint by validation accuracy.
    pub fn best_model(&self) -> PathBuf {
        self.path.join("model.safetensors")
    }
    /// The latest checkpoint, the one `--resume` continues from.
    pub fn last_model(&self) -> PathBuf {
        self.path.join("last.safetensors")
    }
    /// Adam's moments, as versions before `resume.safetensors` kept them beside `last.safetensors`
    /// (read to resume those runs; removed once the run has a resume state).
    pub fn legacy_optimizer_state(&self) -> PathBuf {
        self.path.join("optimizer.safetensors")
    }
    /// What `--resume` continues from: model, optimizer state and iteration as one unit.
    pub fn resume_state(&self) -> PathBuf {
        self.path.join("resume.safetensors")
    }
    /// Held (flock) by the training that owns the directory.
    pub fn lock_file(&self) -> PathBuf {
        self.path.join("train.lock")
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

    /// The command that continues this run, as users should type it.
    pub fn resume_command(&self) -> String {
        format!("crackscope train --resume {}", shell_quote(&self.path))
    }

    /// Takes ownership of the directory for a training (see [`lock`]); refused while another
    /// training holds it. Temporary files a killed training left behind are removed.
    pub fn lock(&self) -> Result<RunLock> {
        let lock = lock::acquire(&self.lock_file(), &self.path)?;
        for leftover in lock::leftover_temporaries(&self.path) {
            let _ = std::fs::remove_file(leftover);
        }
        Ok(lock)
    }

    /// The kind of model this run makes: its model file says so; while a fit has not written it
    /// yet, a log that begins with a fit does.
    pub fn model_kind(&self) -> Kind {
        if Kind::of_file(&self.best_model()) == Kind::OneClass {
            return Kind::OneClass;
        }
        let fitting = log::read_from(&self.metrics(), 0).is_ok_and(|read| {
            read.events
                .iter()
                .find(|e| !matches!(e, Event::Notice { .. }))
                .is_some_and(|e| matches!(e, Event::FitStarted(_)))
        });
        if fitting {
            Kind::OneClass
        } else {
            Kind::Classifier
        }
    }

    /// The training running in this directory, if its process is alive.
    pub fn live_training(&self) -> Option<Holder> {
        lock::live_holder(&self.lock_file())
    }
}

/// A path as a shell word: left alone when it is plain, single-quoted otherwise.
fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// A run directory made for a new training and locked by it. Until [`NewRun::keep`] is called
/// (when training starts), dropping it removes what it made: a start that fails (bad data, bad
/// weights, no GPU) leaves no half-made run behind.
#[derive(Debug)]
pub struct NewRun {
    pub run: RunDir,
    pub lock: RunLock,
    /// Whether this process created the directory (otherwise it was there, empty).
    created: bool,
    keep: bool,
}

impl NewRun {
    /// Makes `path`, or `runs/<timestamp>` (with `-2`, `-3`, ... when taken) when none is given.
    /// A directory that holds anything (a finished run, other files) is refused: runs are never
    /// overwritten; `--resume` continues one.
    pub fn create(path: Option<&Path>) -> Result<NewRun> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let base = PathBuf::from("runs")
                    .join(chrono::Local::now().format("%Y%m%d-%H%M%S").to_string());
                (1..)
                    .map(|n| {
                        if n == 1 {
                            base.clone()
                        } else {
                            PathBuf::from(format!("{}-{n}", base.display()))
                        }
                    })
                    .find(|p| !p.exists())
                    .expect("some numbered name is free")
            }
        };
        let run = RunDir { path };
        let created = !run.path.exists();
        if !created {
            refuse_existing(&run)?;
        }
        if let Some(parent) = run.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create directory {}", parent.display()))?;
        }
        if created {
            std::fs::create_dir(&run.path)
                .with_context(|| format!("cannot create run directory {}", run.path.display()))?;
        }
        let mut new = NewRun {
            lock: match run.lock() {
                Ok(lock) => lock,
                Err(e) => {
                    if created {
                        let _ = std::fs::remove_dir_all(&run.path);
                    }
                    return Err(e);
                }
            },
            run,
            created,
            keep: false,
        };
        // Another process may have filled the directory between the check and the lock.
        if !new.created && dir_entries(&new.run.path)? > 1 {
            new.keep = true;
            refuse_existing(&new.run)?;
        }
        Ok(new)
    }

    /// The training has started: from now on the directory is a run, kept whatever happens.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for NewRun {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.run.path);
        if !self.created {
            let _ = std::fs::create_dir(&self.run.path);
        }
    }
}

fn dir_entries(path: &Path) -> Result<usize> {
    Ok(std::fs::read_dir(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .count())
}

fn refuse_existing(run: &RunDir) -> Result<()> {
    let path = &run.path;
    if !path.is_dir() {
        bail!(
            "cannot make run directory {}: a file of that name exists",
            path.display()
        );
    }
    if dir_entries(path)? == 0 {
        return Ok(());
    }
    if let Some(holder) = run.live_training() {
        bail!(
            "{} is in use by a running training (process {}); choose another --run",
            path.display(),
            holder.pid
        );
    }
    if run.recipe().is_file() {
        bail!(
            "{} already holds a run; runs are never overwritten: continue it with `{}`, or choose \
             another --run",
            path.display(),
            run.resume_command()
        );
    }
    bail!(
        "{} is not empty; a new run needs a new or empty directory (choose another --run)",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_run_is_removed_unless_kept_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run");
        let new = NewRun::create(Some(&path)).unwrap();
        assert!(path.join("train.lock").is_file());
        drop(new);
        assert!(!path.exists(), "a failed start leaves no directory");

        let mut new = NewRun::create(Some(&path)).unwrap();
        std::fs::write(new.run.recipe(), "x").unwrap();
        let err = NewRun::create(Some(&path)).expect_err("locked");
        assert!(format!("{err:#}").contains("in use"), "{err:#}");
        new.keep();
        drop(new);
        let err = NewRun::create(Some(&path)).expect_err("finished run kept");
        let text = format!("{err:#}");
        assert!(
            text.contains("already holds a run") && text.contains("--resume"),
            "{text}"
        );
        assert!(path.join("config.toml").is_file());

        // An empty directory the user made is used, and left empty after a failed start.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        drop(NewRun::create(Some(&empty)).unwrap());
        assert!(empty.is_dir() && dir_entries(&empty).unwrap() == 0);
    }

    #[test]
    fn resume_commands_survive_the_shell() {
        let run = RunDir {
            path: PathBuf::from("runs/a b'c"),
        };
        assert_eq!(
            run.resume_command(),
            "crackscope train --resume 'runs/a b'\\''c'"
        );
        let plain = RunDir {
            path: PathBuf::from("runs/20250101-120000"),
        };
        assert_eq!(
            plain.resume_command(),
            "crackscope train --resume runs/20250101-120000"
        );
    }
}
