//! Requests from the user to a running training (pause, stop, save now), shared with the worker
//! through atomics so that asking never blocks and the worker checks them between iterations.

use std::sync::atomic::{AtomicBool, Ordering};

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

pub use crate::run::ControlFile;

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
}
