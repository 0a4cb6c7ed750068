//! Owning the terminal: raw mode and the alternate screen while the dashboard runs, and the way
//! back on every exit path — normal return, error, and panic (through a panic hook that restores
//! the terminal before the panic message is printed).

use std::io::{stdout, Stdout};
use std::panic::{self, PanicHookInfo};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use crossterm::cursor::Show;
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use super::jobs::JOB_THREAD_PREFIX;

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Set by the panic hook: the terminal was handed back, the dashboard must end.
static PANICKED: AtomicBool = AtomicBool::new(false);

pub struct TerminalSession {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
    // Dropped after the terminal: restores it and puts the previous panic hook back.
    _restore: RestoreGuard,
}

impl TerminalSession {
    pub fn enter() -> Result<TerminalSession> {
        enable_raw_mode().context("cannot put the terminal in raw mode")?;
        // From here on, any early return restores the terminal through the guard.
        let guard = RestoreGuard::install();
        execute!(stdout(), EnterAlternateScreen)
            .context("cannot switch to the terminal's alternate screen")?;
        let terminal = Terminal::new(CrosstermBackend::new(stdout()))
            .context("cannot start drawing on the terminal")?;
        Ok(TerminalSession {
            terminal,
            _restore: guard,
        })
    }

    /// Ends a session whose terminal is gone (SSH hang-up). ratatui's terminal, when dropped,
    /// reports a failure to show the cursor with `eprintln!`, which panics on a dead terminal and
    /// would take the process (and the training) down: it is forgotten instead.
    pub fn abandon(self) {
        let TerminalSession { terminal, _restore } = self;
        std::mem::forget(terminal);
    }

    /// True once a panic handed the terminal back.
    pub fn panicked() -> bool {
        PANICKED.load(Ordering::SeqCst)
    }
}

struct RestoreGuard {
    previous_hook: Arc<Hook>,
}

impl RestoreGuard {
    fn install() -> RestoreGuard {
        PANICKED.store(false, Ordering::SeqCst);
        let previous_hook: Arc<Hook> = Arc::new(panic::take_hook());
        let chained = Arc::clone(&previous_hook);
        panic::set_hook(Box::new(move |info| {
            // The dashboard's own worker threads catch their panics and show them; for any other
            // the process may be going down, so give the terminal back before the message prints.
            let ours = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with(JOB_THREAD_PREFIX));
            if !ours {
                restore();
                PANICKED.store(true, Ordering::SeqCst);
                chained(info);
            }
        }));
        RestoreGuard { previous_hook }
    }
}

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        restore();
        // Replacing a hook while panicking aborts; the process is unwinding anyway.
        if !std::thread::panicking() {
            let previous = Arc::clone(&self.previous_hook);
            panic::set_hook(Box::new(move |info| previous(info)));
        }
    }
}

/// Leaves raw mode and the alternate screen; errors are ignored because a terminal that is gone
/// (SSH hang-up) cannot be restored and must not stop the caller.
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, Show);
}
