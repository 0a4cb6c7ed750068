//! Steering a training from the dashboard: pause, stop and "save a checkpoint now". The dashboard
//! only asks; the worker decides when (between iterations). In-process training is steered through
//! its [`Control`] flags, another process through a small request file in its run directory.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::run::RunDir;
use crate::train::control::{Control, ControlFile};
use anyhow::{Context, Result};

/// Requests to a running training. Methods never block on the worker; an error means the request
/// could not be delivered (the dashboard shows it).
pub trait Steer: Send + Sync {
    fn set_paused(&self, paused: bool) -> Result<()>;
    /// Stop after a final checkpoint (a paused training is resumed to do so).
    fn stop(&self) -> Result<()>;
    /// Write a checkpoint after the current iteration.
    fn save_now(&self) -> Result<()>;
    /// Whether a pause is currently requested, so a dashboard attached later shows the truth.
    fn paused(&self) -> bool;
}

impl Steer for Control {
    fn set_paused(&self, paused: bool) -> Result<()> {
        Control::set_paused(self, paused);
        Ok(())
    }
    fn stop(&self) -> Result<()> {
        self.request_stop();
        Control::set_paused(self, false);
        Ok(())
    }
    fn save_now(&self) -> Result<()> {
        self.request_save();
        Ok(())
    }
    fn paused(&self) -> bool {
        Control::paused(self)
    }
}

/// Steers a training running in another process (`crackscope watch RUN`) through `RUN/control.json`.
pub struct RunDirSteer {
    path: PathBuf,
    state: Mutex<ControlFile>,
}

impl RunDirSteer {
    /// Continues from the requests already in the file (a paused run stays paused, the save counter
    /// keeps counting up), or starts from "nothing requested".
    pub fn new(run_dir: &Path) -> Result<RunDirSteer> {
        let path = RunDir {
            path: run_dir.to_path_buf(),
        }
        .control();
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a crackscope control file", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ControlFile::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(RunDirSteer {
            path,
            state: Mutex::new(state),
        })
    }

    /// Applies a change and rewrites the file; on failure the remembered state is left as it was, so
    /// what this process believes matches what the worker can read.
    fn update(&self, change: impl FnOnce(&mut ControlFile)) -> Result<()> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = state.clone();
        change(&mut next);
        let bytes = serde_json::to_vec(&next).expect("control requests always serialise");
        crate::fsutil::write_atomic(&self.path, &bytes).with_context(|| {
            format!(
                "cannot pass the request to the training through {}",
                self.path.display()
            )
        })?;
        *state = next;
        Ok(())
    }
}

impl Steer for RunDirSteer {
    fn set_paused(&self, paused: bool) -> Result<()> {
        self.update(|s| s.paused = paused)
    }
    fn stop(&self) -> Result<()> {
        self.update(|s| {
            s.stop = true;
            s.paused = false;
        })
    }
    fn save_now(&self) -> Result<()> {
        self.update(|s| s.save_now_seq += 1)
    }
    fn paused(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .paused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(dir: &Path) -> ControlFile {
        serde_json::from_slice(
            &std::fs::read(
                RunDir {
                    path: dir.to_path_buf(),
                }
                .control(),
            )
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn run_dir_requests_are_written_whole_and_resume_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let steer = RunDirSteer::new(dir.path()).unwrap();
        steer.set_paused(true).unwrap();
        steer.save_now().unwrap();
        steer.save_now().unwrap();
        assert_eq!(
            read(dir.path()),
            ControlFile {
                paused: true,
                stop: false,
                save_now_seq: 2
            }
        );
        let text = std::fs::read_to_string(
            RunDir {
                path: dir.path().to_path_buf(),
            }
            .control(),
        )
        .unwrap();
        assert_eq!(text, r#"{"paused":true,"stop":false,"save_now_seq":2}"#);

        // A second watcher continues the counter and sees the pause.
        let again = RunDirSteer::new(dir.path()).unwrap();
        assert!(again.paused());
        again.save_now().unwrap();
        again.stop().unwrap();
        assert_eq!(
            read(dir.path()),
            ControlFile {
                paused: false,
                stop: true,
                save_now_seq: 3
            }
        );
    }

    #[test]
    fn a_failed_write_is_reported_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let steer = RunDirSteer::new(&dir.path().join("gone")).unwrap();
        // The run directory is a file: the request cannot be written.
        std::fs::write(dir.path().join("gone"), b"").unwrap();
        let err = steer.set_paused(true).expect_err("write fails");
        assert!(format!("{err:#}").contains("control.json"), "{err:#}");
        assert!(!steer.paused());
    }

    #[test]
    fn a_corrupt_control_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            RunDir {
                path: dir.path().to_path_buf(),
            }
            .control(),
            b"{oops",
        )
        .unwrap();
        let err = RunDirSteer::new(dir.path())
            .err()
            .expect("corrupt file rejected");
        assert!(format!("{err:#}").contains("control.json"), "{err:#}");
    }

    #[test]
    fn in_process_control_receives_the_requests() {
        let control = Control::default();
        let steer: &dyn Steer = &control;
        steer.set_paused(true).unwrap();
        assert!(steer.paused() && control.paused());
        steer.save_now().unwrap();
        assert!(control.take_save_request());
        steer.stop().unwrap();
        assert!(
            control.stop_requested() && !control.paused(),
            "a stop resumes a paused worker"
        );
    }
}
