//! Asking the terminal what it draws: one query written, its answers read with a bounded wait,
//! once, before anyone else reads the terminal (the dashboard starts its keyboard reader after,
//! and hands it whatever was typed meanwhile). Inside tmux the same query goes a second time
//! through tmux's passthrough, to the terminal outside, when tmux lets it through.

use std::io::Write;
use std::time::{Duration, Instant};

use super::replies::{self, Reply, Scan};
use super::tmux;
use super::tty::{Read, TtyInput};

/// How long a terminal may take to answer before it is taken not to: most answer within a few
/// milliseconds, over SSH within a round trip.
pub const ANSWER_TIMEOUT: Duration = Duration::from_millis(1000);

/// What one terminal said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// It answered (its device attributes came, which every terminal sends).
    pub answered: bool,
    /// It answered the kitty graphics query with OK.
    pub kitty: bool,
    /// Its device attributes include 4, sixel graphics.
    pub sixel: bool,
    /// Its XTVERSION answer, e.g. "XTerm(379)", "kitty(0.26.5)", "Konsole 22.12.3", "tmux 3.3a".
    pub version: Option<String>,
    /// Its cell size in pixels (width, height), when it says.
    pub cell: Option<(u16, u16)>,
    /// The largest sixel picture it draws (XTSMGRAPHICS), when it says: xterm draws nothing of
    /// a larger one.
    pub sixel_max: Option<(u32, u32)>,
}

impl Report {
    fn take(&mut self, reply: Reply) {
        match reply {
            Reply::KittyGraphics { ok } => self.kitty |= ok,
            Reply::Version(version) => self.version = Some(version),
            Reply::CellSize { width, height } if width > 0 && height > 0 => {
                self.cell = Some((width, height))
            }
            Reply::SixelGeometry { width, height } if width > 0 && height > 0 => {
                self.sixel_max = Some((width, height))
            }
            Reply::DeviceAttributes(attributes) => {
                self.sixel = attributes.contains(&4);
                self.answered = true;
            }
            _ => {}
        }
    }
}

/// Everything known about the terminal: its own answers, tmux's pane and the outer terminal's
/// answers when there is a tmux that passes them, and the cell size the window's size gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TerminalInfo {
    /// The answers of whatever this process writes to (tmux itself inside tmux).
    pub direct: Report,
    /// The tmux pane this process runs in, when tmux could be asked.
    pub tmux: Option<tmux::Pane>,
    /// The terminal outside tmux, asked through passthrough (when it is on).
    pub outer: Option<Report>,
    /// Cell size from the window's size in pixels (the terminal's `TIOCGWINSZ`), when it gives one.
    pub window_cell: Option<(u16, u16)>,
}

/// The query: kitty graphics (a 1-pixel image that is only checked, `a=q`), XTVERSION, the cell
/// size, the largest sixel picture (XTSMGRAPHICS), and last the device attributes, which every
/// terminal answers: their arrival ends the wait. Terminals answer in order. tmux and screen
/// take the kitty query for a window title, so it is left out where they answer themselves.
pub fn query(kitty: bool) -> String {
    let kitty = if kitty {
        "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
    } else {
        ""
    };
    format!("{kitty}\x1b[>0q\x1b[16t\x1b[?2;1;0S\x1b[c")
}

/// Asks the terminal (and, in a tmux pane that passes pictures through, the terminal outside).
/// Raw mode must be on. Returns what was learnt and the bytes typed meanwhile, which are keys for
/// whoever reads the terminal next.
pub fn probe(
    tty: &TtyInput,
    out: &mut impl Write,
    var: &impl Fn(&str) -> Option<String>,
) -> (TerminalInfo, Vec<u8>) {
    let mut read = |buffer: &mut [u8], wait: Duration| tty.read(buffer, wait);
    let mut typed = Vec::new();
    let in_tmux = tmux::inside(var);
    let direct = ask(&mut read, out, &query(!in_tmux), &mut typed);
    let pane = if in_tmux { tmux::ask(var) } else { None };
    let outer = match &pane {
        Some(pane) if pane.passthrough && direct.answered => {
            tmux::set_origin(pane.origin);
            Some(ask(&mut read, out, &tmux::wrap(&query(true)), &mut typed))
        }
        _ => None,
    };
    let info = TerminalInfo {
        direct,
        tmux: pane,
        outer,
        window_cell: window_cell(),
    };
    (info, typed)
}

/// The cell size the window's size in pixels gives (`TIOCGWINSZ`), for terminals that fill it in.
pub fn window_cell() -> Option<(u16, u16)> {
    let size = crossterm::terminal::window_size().ok()?;
    if size.width == 0 || size.height == 0 || size.columns == 0 || size.rows == 0 {
        return None;
    }
    let cell = (size.width / size.columns, size.height / size.rows);
    (cell.0 > 0 && cell.1 > 0).then_some(cell)
}

/// Writes `query` and reads answers until the device attributes come or [`ANSWER_TIMEOUT`]
/// passes. Bytes that are not answers go to `typed`.
fn ask(
    read: &mut impl FnMut(&mut [u8], Duration) -> Read,
    out: &mut impl Write,
    query: &str,
    typed: &mut Vec<u8>,
) -> Report {
    let mut report = Report::default();
    for reply in exchange(read, out, query, typed, |reply| {
        matches!(reply, Reply::DeviceAttributes(_))
    }) {
        report.take(reply);
    }
    report
}

/// Where the cursor is (row, column, 1-based), asked of the terminal: the command line needs it
/// to place a picture through tmux. Raw mode must be on.
pub fn cursor_position(tty: &TtyInput, out: &mut impl Write) -> Option<(u16, u16)> {
    let mut read = |buffer: &mut [u8], wait: Duration| tty.read(buffer, wait);
    let replies = exchange(&mut read, out, "\x1b[6n", &mut Vec::new(), |reply| {
        matches!(reply, Reply::CursorPosition { .. })
    });
    replies.into_iter().find_map(|reply| match reply {
        Reply::CursorPosition { row, column } => Some((row, column)),
        _ => None,
    })
}

/// Writes `query` and collects the answers until one is `last` or [`ANSWER_TIMEOUT`] passes.
/// Bytes that are not answers go to `typed`.
fn exchange(
    read: &mut impl FnMut(&mut [u8], Duration) -> Read,
    out: &mut impl Write,
    query: &str,
    typed: &mut Vec<u8>,
    last: impl Fn(&Reply) -> bool,
) -> Vec<Reply> {
    let mut replies = Vec::new();
    if out
        .write_all(query.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return replies;
    }
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 1024];
    let mut done = false;
    while !done {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        match read(&mut buffer, left) {
            Read::Bytes(n) => pending.extend_from_slice(&buffer[..n]),
            Read::Nothing => continue,
            Read::Closed => break,
        }
        let used = sort_out(&pending, &mut replies, typed, &last, &mut done);
        pending.drain(..used);
    }
    typed.extend(pending);
    replies
}

/// Takes the answers out of `bytes` into `replies` and the rest into `typed`, up to an unfinished
/// sequence; sets `done` at the `last` answer (what follows it is the user's). Returns how many
/// bytes were dealt with.
fn sort_out(
    bytes: &[u8],
    replies: &mut Vec<Reply>,
    typed: &mut Vec<u8>,
    last: &impl Fn(&Reply) -> bool,
    done: &mut bool,
) -> usize {
    let mut i = 0;
    while i < bytes.len() {
        if *done {
            typed.extend_from_slice(&bytes[i..]);
            return bytes.len();
        }
        match replies::scan(&bytes[i..]) {
            Scan::Reply(reply, used) => {
                *done = last(&reply);
                replies.push(reply);
                i += used;
            }
            Scan::NotReply => {
                typed.push(bytes[i]);
                i += 1;
            }
            Scan::NeedMore => return i,
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal that answers with `chunks`, one per read, then nothing.
    fn answering(chunks: Vec<&'static [u8]>) -> impl FnMut(&mut [u8], Duration) -> Read {
        let mut chunks = chunks.into_iter();
        move |buffer, _| match chunks.next() {
            Some(chunk) => {
                buffer[..chunk.len()].copy_from_slice(chunk);
                Read::Bytes(chunk.len())
            }
            None => Read::Closed,
        }
    }

    #[test]
    fn answers_are_collected_and_keys_typed_meanwhile_kept() {
        let mut written = Vec::new();
        let mut typed = Vec::new();
        let mut read = answering(vec![
            b"\x1b_Gi=31;OK\x1b\\\x1bP>|kitty(0.26.5)",
            // A key typed while the terminal answers, and a reply split across reads.
            b"\x1b\\q\x1b[6;20",
            b";9t\x1b[?62;c\x1b[A",
        ]);
        let report = ask(&mut read, &mut written, &query(true), &mut typed);
        assert_eq!(written, query(true).as_bytes());
        assert_eq!(
            report,
            Report {
                answered: true,
                kitty: true,
                sixel: false,
                version: Some("kitty(0.26.5)".into()),
                cell: Some((9, 20)),
                sixel_max: None,
            }
        );
        assert_eq!(typed, b"q\x1b[A");
    }

    #[test]
    fn a_silent_terminal_gives_an_empty_report_in_bounded_time() {
        let mut typed = Vec::new();
        let started = Instant::now();
        let mut read = |_: &mut [u8], wait: Duration| {
            std::thread::sleep(wait.min(Duration::from_millis(50)));
            Read::Nothing
        };
        let report = ask(&mut read, &mut Vec::new(), &query(false), &mut typed);
        assert_eq!(report, Report::default());
        assert!(started.elapsed() < ANSWER_TIMEOUT + Duration::from_millis(500));
    }
}
