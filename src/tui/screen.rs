//! What a full-screen view holds while it runs: the terminal session, the hang-up and resize
//! signals, the keyboard reader and the terminal's picture protocol. The training dashboard and
//! the scan view open their screen here, so both ask about graphics at the same moment, survive an
//! SSH hang-up the same way and hand the terminal back in the same order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use ratatui_image::picker::{Picker, ProtocolType};
use tokio::sync::mpsc;

use super::images::{self, GraphicsChoice};
use super::input::{self, Input};
use super::terminal::TerminalSession;

/// A view's hold on the terminal, from [`Screen::open`] to [`Screen::close`].
pub struct Screen {
    pub session: TerminalSession,
    pub signals: Signals,
    /// Sixel and iTerm2 pictures stay on screen until overwritten: the view clears the screen
    /// when what sits where changes.
    pub pictures_linger: bool,
    stop_reading: Arc<AtomicBool>,
    reader: JoinHandle<()>,
}

impl Screen {
    /// Takes the terminal; also gives the keys as they are typed and the picture protocol, which
    /// the caller hands to its loop and its picture workers.
    pub fn open(
        graphics: GraphicsChoice,
    ) -> Result<(Screen, mpsc::UnboundedReceiver<Input>, Picker)> {
        let signals = Signals::new()?;
        let session = TerminalSession::enter()?;
        // The graphics question is answered on stdin: ask before the keyboard reader starts.
        let tty = input::TtyInput::open()?;
        let picker = images::pick(graphics, &tty);
        let stop_reading = Arc::new(AtomicBool::new(false));
        let (key_sender, keys) = mpsc::unbounded_channel();
        let reader = input::spawn_reader(tty, key_sender, Arc::clone(&stop_reading))?;
        let screen = Screen {
            session,
            signals,
            pictures_linger: matches!(
                picker.protocol_type(),
                ProtocolType::Sixel | ProtocolType::Iterm2
            ),
            stop_reading,
            reader,
        };
        Ok((screen, keys, picker))
    }

    /// Stops the keyboard reader, then gives the terminal back; a lost terminal (SSH hang-up)
    /// is left alone, so that nothing is written to it.
    pub fn close(self, terminal_lost: bool) {
        self.stop_reading.store(true, Ordering::Relaxed);
        let _ = self.reader.join();
        if terminal_lost {
            self.session.abandon();
        }
    }
}

/// Hang-up and resize notifications. Once watched, SIGHUP no longer ends the process: a view
/// whose terminal hangs up ends quietly and leaves the work running.
pub struct Signals {
    pub hangup: tokio::signal::unix::Signal,
    pub resize: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            hangup: signal(SignalKind::hangup()).context("cannot watch for terminal hang-ups")?,
            resize: signal(SignalKind::window_change())
                .context("cannot watch for terminal resizes")?,
        })
    }
}
