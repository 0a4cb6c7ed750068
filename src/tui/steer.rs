//! Steering a training from the dashboard: pause, stop and "save a checkpoint now". The dashboard
//! only asks; the worker decides when (between iterations). In-process training is steered through
//! its [`Control`] flags, another process through a small request file in its run directory.

use std::path::Path;
use std::sync::Mutex;

use crate::run::steer::Control;
use crate::run::{ControlFile, RunDir};
use anyhow::{bail, Context, Result};

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
/// Each request is addressed to the training that holds the run's lock at that moment, so a
/// dashboard left open across a stop and a `--resume` steers the new training, and a training that
/// is gone is reported rather than sent requests no one will read.
pub struct RunDirSteer {
    run: RunDir,
    state: Mutex<ControlFile>,
}

impl RunDirSteer {
    /// Continues from the requests already in the file for the live training (a paused run stays
    /// paused, the save counter keeps counting up), or starts from "nothing requested".
    pub fn new(run_dir: &Path) -> Result<RunDirSteer> {
        let run = RunDir {
            path: run_dir.to_path_buf(),
        };
        let state = ControlFile::read(&run.control())?.unwrap_or_default();
        Ok(RunDirSteer {
            run,
            state: Mutex::new(state),
        })
    }

    /// Applies a change and rewrites the file; on failure the remembered state is left as it was, so
    /// what this process believes matches what the worker can read.
    fn update(&self, change: impl FnOnce(&mut ControlFile)) -> Result<()> {
        let Some(holder) = self.run.live_training() else {
            bail!(
                "no training is running in {}; continue it with `{}`",
                self.run.path.display(),
                self.run.resume_command()
            );
        };
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = state.clone();
        if next.session != holder.session {
            // A new training (a resume) of the directory: earlier requests were not for it.
            next = ControlFile {
                session: holder.session,
                ..ControlFile::default()
            };
        }
        change(&mut next);
        let path = self.run.control();
        next.write(&path).with_context(|| {
            format!(
                "cannot pass the request to the training through {}",
                path.display()
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
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.paused
            && self
                .run
                .live_training()
                .is_some_and(|h| h.session == state.session)
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
        let run = RunDir {
            path: dir.path().to_path_buf(),
        };
        let lock = run.lock().unwrap();
        let session = lock.holder.session;
        let steer = RunDirSteer::new(dir.path()).unwrap();
        steer.set_paused(true).unwrap();
        steer.save_now().unwrap();
        steer.save_now().unwrap();
        assert_eq!(
            read(dir.path()),
            ControlFile {
                session,
                paused: true,
                stop: false,
                save_now_seq: 2
            }
        );
        let text = std::fs::read_to_string(run.control()).unwrap();
        assert_eq!(
            text,
            format!(r#"{{"session":{session},"paused":true,"stop":false,"save_now_seq":2}}"#)
        );

        // A second watcher continues the counter and sees the pause.
        let again = RunDirSteer::new(dir.path()).unwrap();
        assert!(again.paused());
        again.save_now().unwrap();
        again.stop().unwrap();
        assert_eq!(
            read(dir.path()),
            ControlFile {
                session,
                paused: false,
                stop: true,
                save_now_seq: 3
            }
        );

        // The training ends: requests are refused with the way to continue it.
        drop(lock);
        assert!(!again.paused());
        let err = again.set_paused(true).expect_err("nobody to steer");
        assert!(format!("{err:#}").contains("--resume"), "{err:#}");

        // A resumed training (a new session) gets fresh requests, never the old stop.
        let resumed = run.lock().unwrap();
        again.save_now().unwrap();
        assert_eq!(
            read(dir.path()),
            ControlFile {
                session: resumed.holder.session,
                paused: false,
                stop: false,
                save_now_seq: 1
            }
        );
    }

    #[test]
    fn a_failed_write_is_reported_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir {
            path: dir.path().to_path_buf(),
        };
        let _lock = run.lock().unwrap();
        let steer = RunDirSteer::new(dir.path()).unwrap();
        // control.json's place is taken by a directory: the request cannot be written.
        std::fs::create_dir(run.control()).unwrap();
        let err = steer.set_paused(true).expect_err("write fails");
        assert!(format!("{err:#}").contains("control.json"), "{err:#}");
        assert!(!steer.paused());
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
