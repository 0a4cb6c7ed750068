//! Warnings from inside the library (a file skipped, a thread that could not start, a line the
//! metrics log could not take) travel through here instead of being printed where they arise:
//! the binary prints them on stderr, and a full-screen view shows them in its status line while it
//! owns the terminal, so that no warning is ever written over the dashboard. Without a sink (the
//! library's own tests) they are dropped.

use std::sync::{Arc, PoisonError, RwLock};

type Sink = Arc<dyn Fn(&str) + Send + Sync>;

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Hands `message` (without a "warning:" prefix) to whoever shows warnings now.
pub fn warn(message: impl AsRef<str>) {
    let sink = SINK.read().unwrap_or_else(PoisonError::into_inner).clone();
    if let Some(sink) = sink {
        sink(message.as_ref());
    }
}

/// Sends warnings to `sink` until the returned guard is dropped; then the previous sink is back.
pub fn redirect(sink: impl Fn(&str) + Send + Sync + 'static) -> Redirect {
    let mut current = SINK.write().unwrap_or_else(PoisonError::into_inner);
    let previous = current.replace(Arc::new(sink));
    Redirect { previous }
}

/// While alive, warnings go where [`redirect`] sent them.
#[must_use = "warnings go back to the previous sink when this is dropped"]
pub struct Redirect {
    previous: Option<Sink>,
}

impl Redirect {
    /// Keeps the redirection for the rest of the process (the binary's stderr printer).
    pub fn forever(mut self) {
        self.previous = None;
        std::mem::forget(self);
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        *SINK.write().unwrap_or_else(PoisonError::into_inner) = self.previous.take();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn a_redirection_collects_warnings_until_dropped() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        {
            let collect = Arc::clone(&seen);
            let _guard = redirect(move |m| collect.lock().unwrap().push(m.to_string()));
            warn("skipping a.jpg: not an image");
        }
        warn("after the guard");
        let seen = seen.lock().unwrap();
        assert!(seen.contains(&"skipping a.jpg: not an image".to_string()));
        assert!(!seen.contains(&"after the guard".to_string()));
    }
}
