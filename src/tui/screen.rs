//! What a full-screen view holds while it runs: the terminal session, the hang-up and resize
//! signals, the keyboard reader and how pictures are drawn. The training dashboard and the scan
//! view open their screen here, so both ask the terminal the same question at the same moment
//! (once, before the keyboard reader starts: from then on the reader is the terminal's only
//! reader), survive an SSH hang-up the same way and hand the terminal back in the same order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use tokio::sync::mpsc;

use super::input::{self, Input};
use super::terminal::TerminalSession;
use crate::imaging::picture_log;
use crate::termio::tty::TtyInput;
use crate::termio::{self, Graphics, GraphicsChoice};

/// A view's hold on the terminal, from [`Screen::open`] to [`Screen::close`].
pub struct Screen {
    pub session: TerminalSession,
    pub signals: Signals,
    stop_reading: Arc<AtomicBool>,
    reader: JoinHandle<()>,
}

impl Screen {
    /// Takes the terminal, asks it what it draws, and starts the keyboard reader; gives the keys
    /// as they are typed and how pictures are drawn. A protocol forced by `choice` that the
    /// terminal does not draw is refused (the terminal handed back first).
    pub fn open(
        choice: GraphicsChoice,
    ) -> Result<(Screen, mpsc::UnboundedReceiver<Input>, Graphics)> {
        let signals = Signals::new()?;
        let session = TerminalSession::enter()?;
        let tty = TtyInput::open()?;
        let var = |key: &str| std::env::var(key).ok();
        let (graphics, typed) = if choice == GraphicsChoice::Halfblocks {
            (Graphics::halfblocks_here(&var), Vec::new())
        } else {
            let (info, typed) = termio::probe(&tty, &mut std::io::stdout(), &var);
            // On a refusal the session's guard gives the terminal back before the message.
            (termio::choose(&info, &var, choice)?, typed)
        };
        picture_log::terminal(
            &graphics.protocol.to_string(),
            graphics.passthrough,
            &graphics.drawer,
            termio::probe::window_cell(),
        );
        let stop_reading = Arc::new(AtomicBool::new(false));
        let (key_sender, keys) = mpsc::unbounded_channel();
        let reader = input::spawn_reader(tty, typed, key_sender, Arc::clone(&stop_reading))?;
        let screen = Screen {
            session,
            signals,
            stop_reading,
            reader,
        };
        Ok((screen, keys, graphics))
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
