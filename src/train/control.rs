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

/// Requests from another process (`crackscope watch RUN`), kept in `RUN/control.json`. The watcher
/// rewrites the whole file atomically; the worker polls it between iterations.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ControlFile {
    pub paused: bool,
    pub stop: bool,
    /// Incremented for each "save a checkpoint now" request.
    pub save_now_seq: u64,
}

impl ControlFile {
    pub fn read(path: &std::path::Path) -> Option<ControlFile> {
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn write(&self, path: &std::path::Path) -> anyhow::Result<()> {
        crate::fsutil::write_atomic(path, &serde_json::to_vec(self).expect("serialises"))
    }
}

/// Applies a run directory's `control.json` to a [`Control`], remembering what it has seen so that one
/// save request saves once. A missing or unreadable file changes nothing.
#[derive(Debug)]
pub struct ControlFileWatcher {
    path: std::path::PathBuf,
    seen_save_seq: u64,
    last_modified: Option<std::time::SystemTime>,
}

impl ControlFileWatcher {
    /// Starts from the file as it is now: requests made before this run started are not replayed.
    pub fn new(path: std::path::PathBuf) -> ControlFileWatcher {
        let seen_save_seq = ControlFile::read(&path).map_or(0, |f| f.save_now_seq);
        ControlFileWatcher {
            path,
            seen_save_seq,
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
        let Some(file) = ControlFile::read(&self.path) else {
            return;
        };
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
        ControlFile {
            paused: false,
            stop: false,
            save_now_seq: 3,
        }
        .write(&path)
        .unwrap();
        let control = Control::default();
        let mut watcher = ControlFileWatcher::new(path.clone());
        watcher.poll(&control);
        assert!(
            !control.take_save_request(),
            "a request older than the run is not replayed"
        );

        std::thread::sleep(std::time::Duration::from_millis(20));
        ControlFile {
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
}
