//! The terminal's input side, read with a bounded wait: the one place that reads the terminal,
//! used by the probe at start and then by the dashboard's keyboard reader. Also raw mode for a
//! command-line probe.

/// The terminal's input side: stdin when it is the terminal, else the controlling tty (the same
/// terminal crossterm puts in raw mode). Shared by the probe and the keyboard reader, one after the
/// other, so nothing else is ever left reading it.
pub struct TtyInput {
    file: Option<std::fs::File>,
}

/// What one wait for input gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Bytes(usize),
    /// Nothing within the time given (or a signal interrupted the wait).
    Nothing,
    /// End of file, an error or a hang-up: the terminal is gone.
    Closed,
}

impl TtyInput {
    pub fn open() -> anyhow::Result<TtyInput> {
        use anyhow::Context;
        use std::io::IsTerminal;
        let file = if std::io::stdin().is_terminal() {
            None
        } else {
            Some(std::fs::File::open("/dev/tty").context("cannot open /dev/tty to read keys")?)
        };
        Ok(TtyInput { file })
    }

    /// Waits up to `timeout` for input and reads what is there into `buffer`.
    pub fn read(&self, buffer: &mut [u8], timeout: std::time::Duration) -> Read {
        use std::io::ErrorKind;
        use std::os::fd::AsRawFd;
        let fd = self.file.as_ref().map_or(0, |f| f.as_raw_fd());
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd, for the length given.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        // After a failed call: a signal or "try again" is not the end of the terminal.
        let transient = || {
            matches!(
                std::io::Error::last_os_error().kind(),
                ErrorKind::Interrupted | ErrorKind::WouldBlock
            )
        };
        if ready < 0 {
            return if transient() {
                Read::Nothing
            } else {
                Read::Closed
            };
        }
        if ready == 0 {
            return Read::Nothing;
        }
        if poll.revents & libc::POLLIN == 0 {
            // POLLHUP, POLLERR or POLLNVAL without data.
            return Read::Closed;
        }
        // SAFETY: reads at most buffer.len() bytes into the buffer.
        let n = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
        match n {
            n if n > 0 => Read::Bytes(n as usize),
            0 => Read::Closed,
            _ if transient() => Read::Nothing,
            _ => Read::Closed,
        }
    }
}

/// Raw mode for as long as it lives, unless it was on already (the dashboard's): a command-line
/// probe needs the terminal's answers unechoed and without waiting for a line end.
pub struct RawMode {
    was_on: bool,
}

impl RawMode {
    pub fn enter() -> std::io::Result<RawMode> {
        let was_on = crossterm::terminal::is_raw_mode_enabled()?;
        if !was_on {
            crossterm::terminal::enable_raw_mode()?;
        }
        Ok(RawMode { was_on })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if !self.was_on {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
}
