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
