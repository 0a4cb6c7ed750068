//! Steering a running training: pause, stop and "save a checkpoint now". The one who asks (the
//! dashboard, `watch` in another process, a signal) only asks, through [`Steer`]; the worker
//! decides when, between iterations. In-process requests go through the [`Control`] flags, shared
//! with the worker as atomics so that asking never blocks; requests from another process through
//! the run's `control.json` ([`RunDirSteer`] writes it, [`ControlFileWatcher`] applies it).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

use super::{ControlFile, RunDir};

#[derive(Debug, Default)]
pub struct Control {
    stop: AtomicBool,
    pause: AtomicBool,
    save_now: AtomicBool,
}

impl Control {
    /// Stop after the current iteration, writing a final checkpoint.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    pub fn set_paused(&self, paused: bool) {
        self.pause.store(paused, Ordering::SeqCst);
    }
    pub fn paused(&self) -> bool {
        self.pause.load(Ordering::SeqCst)
    }
    /// Write a checkpoint after the current iteration.
    pub fn request_save(&self) {
        self.save_now.store(true, Ordering::SeqCst);
    }
    /// True once per request.
    pub fn take_save_request(&self) -> bool {
        self.save_now.swap(false, Ordering::SeqCst)
    }
}

/// What the worker does before its next iteration, after honouring a pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Continue,
    Stop,
}

/// Waits while a pause is requested (polling `poll` for new requests every `interval`), then says
/// whether to go on or stop. A stop ends a pause.
pub fn wait_while_paused(
    control: &Control,
    interval: std::time::Duration,
    mut poll: impl FnMut(&Control),
) -> Gate {
    poll(control);
    while control.paused() && !control.stop_requested() {
        std::thread::sleep(interval);
        poll(control);
    }
    if control.stop_requested() {
        Gate::Stop
    } else {
        Gate::Continue
    }
}

/// Applies a run directory's `control.json` to a [`Control`], remembering what it has seen so that one
/// save request saves once. Only requests addressed to `session` (this training) count; a missing,
/// unreadable or foreign file changes nothing.
#[derive(Debug)]
pub struct ControlFileWatcher {
    path: std::path::PathBuf,
    session: u64,
    seen_save_seq: u64,
    last_modified: Option<std::time::SystemTime>,
}

impl ControlFileWatcher {
    /// Watches `path` for requests to the training `session`; none are expected yet (a starting
    /// training removes whatever file an earlier one left).
    pub fn new(path: std::path::PathBuf, session: u64) -> ControlFileWatcher {
        ControlFileWatcher {
            path,
            session,
            seen_save_seq: 0,
            last_modified: None,
        }
    }

    pub fn poll(&mut self, control: &Control) {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified.is_none() || modified == self.last_modified {
            return;
        }
        self.last_modified = modified;
        let Ok(Some(file)) = ControlFile::read(&self.path) else {
            return;
        };
        if file.session != self.session {
            return; // Meant for another training of this directory.
        }
        control.set_paused(file.paused);
        if file.stop {
            control.request_stop();
        }
        if file.save_now_seq > self.seen_save_seq {
            self.seen_save_seq = file.save_now_seq;
            control.request_save();
        }
    }
}

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

    #[test]
    fn control_file_requests_reach_the_worker_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.json");
        // Left by an earlier training of the directory (another session): never obeyed.
        ControlFile {
            session: 6,
            paused: true,
            stop: true,
            save_now_seq: 3,
        }
        .write(&path)
        .unwrap();
        let control = Control::default();
        let mut watcher = ControlFileWatcher::new(path.clone(), 7);
        watcher.poll(&control);
        assert!(
            !control.take_save_request() && !control.stop_requested() && !control.paused(),
            "a request meant for another training is not obeyed"
        );

        std::thread::sleep(std::time::Duration::from_millis(20));
        ControlFile {
            session: 7,
            paused: true,
            stop: false,
            save_now_seq: 4,
        }
        .write(&path)
        .unwrap();
        watcher.poll(&control);
        assert!(control.paused());
        assert!(control.take_save_request());
        watcher.poll(&control);
        assert!(!control.take_save_request(), "one request saves once");

        std::thread::sleep(std::time::Duration::from_millis(20));
        ControlFile {
            session: 7,
            paused: false,
            stop: true,
            save_now_seq: 4,
        }
        .write(&path)
        .unwrap();
        watcher.poll(&control);
        assert!(!control.paused());
        assert!(control.stop_requested());
    }

    #[test]
    fn a_pause_holds_the_worker_until_resumed_or_stopped() {
        let control = Control::default();
        assert_eq!(
            wait_while_paused(&control, std::time::Duration::ZERO, |_| {}),
            Gate::Continue
        );
        // Paused: the wait polls until a request (here the third poll) lifts the pause.
        control.set_paused(true);
        let mut polls = 0;
        let gate = wait_while_paused(&control, std::time::Duration::ZERO, |c| {
            polls += 1;
            if polls == 3 {
                c.set_paused(false);
            }
        });
        assert_eq!((gate, polls), (Gate::Continue, 3));
        // A stop ends a pause.
        control.set_paused(true);
        let gate = wait_while_paused(&control, std::time::Duration::ZERO, |c| c.request_stop());
        assert_eq!(gate, Gate::Stop);
    }

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
