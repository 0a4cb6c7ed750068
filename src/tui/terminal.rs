//! Owning the terminal: raw mode and the alternate screen while the dashboard runs, and the way
//! back on every exit path — normal return, error, and panic (through a panic hook that restores
//! the terminal before the panic message is printed). Drawing never asks the terminal anything
//! ([`QuietBackend`]): its answers would land on the keyboard reader's input.

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
use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use ratatui::Terminal;

use super::jobs::JOB_THREAD_PREFIX;

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Set by the panic hook: the terminal was handed back, the dashboard must end.
static PANICKED: AtomicBool = AtomicBool::new(false);

pub struct TerminalSession {
    pub terminal: Terminal<QuietBackend<CrosstermBackend<Stdout>>>,
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
        let terminal = Terminal::new(QuietBackend::new(CrosstermBackend::new(stdout())))
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

/// A backend that never asks the terminal where its cursor is. ratatui's `Terminal::clear` (on a
/// resize, or when pictures must go) asks, with a query whose answer arrives on the input the
/// keyboard reader owns: the reader took it, the dashboard gave up waiting and quit, or it took a
/// key along with it. On the alternate screen, full-screen, the cursor is wherever the last draw
/// left it, which this backend remembers instead.
pub struct QuietBackend<B> {
    inner: B,
    cursor: Position,
}

impl<B> QuietBackend<B> {
    pub fn new(inner: B) -> QuietBackend<B> {
        QuietBackend {
            inner,
            cursor: Position::ORIGIN,
        }
    }
}

impl<B: Backend> Backend for QuietBackend<B> {
    type Error = B::Error;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.inner.draw(content)
    }

    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }

    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }

    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        Ok(self.cursor)
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        self.cursor = position.into();
        self.inner.set_cursor_position(self.cursor)
    }

    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(clear_type)
    }

    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }

    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;

    /// A backend that fails the test if anyone asks where the cursor is.
    struct NoQuestions(TestBackend);

    impl Backend for NoQuestions {
        type Error = <TestBackend as Backend>::Error;
        fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
        where
            I: Iterator<Item = (u16, u16, &'a Cell)>,
        {
            self.0.draw(content)
        }
        fn hide_cursor(&mut self) -> Result<(), Self::Error> {
            self.0.hide_cursor()
        }
        fn show_cursor(&mut self) -> Result<(), Self::Error> {
            self.0.show_cursor()
        }
        fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
            panic!("the terminal was asked where its cursor is")
        }
        fn set_cursor_position<P: Into<Position>>(&mut self, p: P) -> Result<(), Self::Error> {
            self.0.set_cursor_position(p)
        }
        fn clear(&mut self) -> Result<(), Self::Error> {
            self.0.clear()
        }
        fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
            self.0.clear_region(clear_type)
        }
        fn size(&self) -> Result<Size, Self::Error> {
            self.0.size()
        }
        fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
            self.0.window_size()
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            self.0.flush()
        }
    }

    #[test]
    fn clearing_and_resizing_never_ask_the_terminal() {
        let mut terminal =
            Terminal::new(QuietBackend::new(NoQuestions(TestBackend::new(20, 5)))).unwrap();
        terminal
            .draw(|f| f.render_widget("picture", f.area()))
            .unwrap();
        terminal.clear().unwrap();
        terminal.backend_mut().inner.0.resize(30, 6);
        terminal
            .draw(|f| f.render_widget("again", f.area()))
            .unwrap();
        assert_eq!(terminal.size().unwrap(), Size::new(30, 6));
    }
}
