//! A program in a pseudo-terminal whose far end the test plays, as a terminal emulator would: it
//! keeps everything the program writes and answers the program's queries (device attributes,
//! version, cell size, cursor position, kitty graphics, status) as the terminal it pretends to be.
//! Queries wrapped in tmux's passthrough reach the pretend outer terminal only when the pretend
//! tmux lets them through, as tmux does.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The terminal window: 120 x 40 cells of 8 x 17 pixels (xterm's with DejaVu Sans Mono 10).
pub const COLUMNS: u16 = 120;
pub const ROWS: u16 = 40;
pub const CELL: (u16, u16) = (8, 17);

/// How a pretend terminal answers.
#[derive(Clone, Debug, Default)]
pub struct Answers {
    /// Its answer to "ESC [ c" (primary device attributes) after "ESC [", e.g. "?1;2c".
    pub device_attributes: &'static str,
    /// Its answer to XTVERSION ("ESC [ > 0 q"), e.g. "XTerm(379)"; None: no answer.
    pub version: Option<&'static str>,
    /// Answers the kitty graphics query with OK.
    pub kitty_graphics: bool,
    /// Answers "ESC [ 16 t" with its cell size.
    pub cell_size: bool,
    /// Answers "ESC [ 6 n" with a cursor position.
    pub cursor_position: bool,
    /// For a pretend tmux: the outer terminal that answers queries wrapped in passthrough.
    pub outer: Option<Box<Answers>>,
    /// For a pretend tmux: whether wrapped queries pass (`allow-passthrough on`).
    pub passthrough: bool,
    /// Environment the terminal sets for its programs (besides TERM).
    pub env: Vec<(&'static str, &'static str)>,
    pub term: &'static str,
}

impl Answers {
    /// xterm 379 started with `-ti vt340`: sixel in its device attributes, no cell size report
    /// (its window operations are off by default).
    pub fn xterm_sixel() -> Answers {
        Answers {
            device_attributes: "?63;1;2;4;6;9;15;16;22;28c",
            version: Some("XTerm(379)"),
            cursor_position: true,
            term: "xterm",
            ..Answers::default()
        }
    }

    /// xterm as most distributions start it: no sixel.
    pub fn xterm_plain() -> Answers {
        Answers {
            device_attributes: "?64;1;2;6;9;15;16;17;18;21;22;28c",
            ..Answers::xterm_sixel()
        }
    }

    /// kitty at `version` (0.26.5 is Debian 12's): kitty graphics, no sixel.
    pub fn kitty(version: &'static str) -> Answers {
        Answers {
            device_attributes: "?62;c",
            version: Some(version),
            kitty_graphics: true,
            cell_size: true,
            cursor_position: true,
            env: vec![("KITTY_WINDOW_ID", "1")],
            term: "xterm-kitty",
            ..Answers::default()
        }
    }

    /// Konsole 22.12: answers for kitty graphics (which it draws only partly) and sixel, and
    /// draws iTerm2 pictures.
    pub fn konsole() -> Answers {
        Answers {
            device_attributes: "?62;1;4c",
            version: Some("Konsole 22.12.3"),
            kitty_graphics: true,
            cell_size: true,
            cursor_position: true,
            env: vec![("KONSOLE_VERSION", "221203")],
            term: "xterm-256color",
            ..Answers::default()
        }
    }

    /// tmux 3.3a (without sixel) inside `outer`: answers plain queries itself, and passes wrapped
    /// ones to `outer` when `passthrough` is on.
    pub fn tmux(outer: Answers, passthrough: bool) -> Answers {
        Answers {
            device_attributes: "?1;2c",
            version: Some("tmux 3.3a"),
            cursor_position: true,
            outer: Some(Box::new(outer)),
            passthrough,
            env: vec![("TMUX", "/tmp/tmux-test/default,1,0"), ("TMUX_PANE", "%0")],
            term: "tmux-256color",
            ..Answers::default()
        }
    }

    /// The replies to the queries in `sequence` (one escape sequence, as written).
    fn reply(&self, sequence: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(sequence);
        if let Some(inner) = text.strip_prefix("\x1bPtmux;") {
            let Some(outer) = self.outer.as_ref().filter(|_| self.passthrough) else {
                return Vec::new();
            };
            let inner = inner.strip_suffix("\x1b\\").unwrap_or(inner);
            let unwrapped = inner.replace("\x1b\x1b", "\x1b");
            let mut out = Vec::new();
            for seq in sequences(unwrapped.as_bytes()).0 {
                out.extend(outer.reply(seq));
            }
            return out;
        }
        let (cw, ch) = CELL;
        match text.as_ref() {
            "\x1b[c" | "\x1b[0c" => format!("\x1b[{}", self.device_attributes).into_bytes(),
            "\x1b[>0q" | "\x1b[>q" => match self.version {
                Some(version) => format!("\x1bP>|{version}\x1b\\").into_bytes(),
                None => Vec::new(),
            },
            "\x1b[16t" if self.cell_size => format!("\x1b[6;{ch};{cw}t").into_bytes(),
            "\x1b[6n" if self.cursor_position => b"\x1b[1;1R".to_vec(),
            "\x1b[5n" => b"\x1b[0n".to_vec(),
            s if s.starts_with("\x1b_G") && s.contains("a=q") && self.kitty_graphics => {
                let id = s[3..]
                    .split([',', ';'])
                    .find_map(|kv| kv.strip_prefix("i="))
                    .unwrap_or("1");
                format!("\x1b_Gi={id};OK\x1b\\").into_bytes()
            }
            _ => Vec::new(),
        }
    }
}

/// Splits `bytes` into escape sequences (CSI, DCS, APC, OSC); returns them and how many bytes
/// were complete. Text between them is skipped. Sixel pictures (device control strings) longer
/// than any query are skipped through [`Skipping`] instead.
fn sequences(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut found = Vec::new();
    let mut i = 0;
    let mut complete = 0;
    while i < bytes.len() {
        if bytes[i] != 0x1b {
            i += 1;
            complete = i;
            continue;
        }
        let Some(&kind) = bytes.get(i + 1) else {
            break;
        };
        let end = match kind {
            b'[' => bytes[i + 2..]
                .iter()
                .position(|b| (0x40..=0x7e).contains(b))
                .map(|p| i + 2 + p + 1),
            b'P' | b'_' | b']' | b'^' => {
                let body = &bytes[i + 2..];
                let mut end = None;
                let mut k = 0;
                while k < body.len() {
                    if kind == b']' && body[k] == 0x07 {
                        end = Some(i + 2 + k + 1);
                        break;
                    }
                    if body[k] == 0x1b {
                        match body.get(k + 1) {
                            // tmux doubles the escapes of what it passes through.
                            Some(0x1b) => k += 2,
                            Some(b'\\') => {
                                end = Some(i + 2 + k + 2);
                                break;
                            }
                            Some(_) => k += 1,
                            None => break,
                        }
                        continue;
                    }
                    k += 1;
                }
                end
            }
            _ => Some(i + 2),
        };
        let Some(end) = end else { break };
        found.push(&bytes[i..end]);
        i = end;
        complete = end;
    }
    (found, complete)
}

struct Shared {
    output: Vec<u8>,
    /// Bytes sent together with the next reply to a cursor-position query, as when the user types
    /// while the terminal answers.
    bundle: Option<Vec<u8>>,
    cursor_queries: usize,
}

/// A program running in a pretend terminal; killed when dropped.
pub struct PtyProgram {
    child: Child,
    master: Option<Arc<File>>,
    shared: Arc<Mutex<Shared>>,
    hang_up: Arc<AtomicBool>,
}

impl PtyProgram {
    /// Starts `program args` in a new session whose controlling terminal is a pseudo-terminal
    /// answered as `answers` says. The environment holds only PATH, HOME, TERM, the terminal's own
    /// variables and `extra`.
    pub fn start(
        program: &Path,
        args: &[&str],
        answers: Answers,
        extra: &[(&str, &str)],
    ) -> PtyProgram {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: ROWS,
            ws_col: COLUMNS,
            ws_xpixel: COLUMNS * CELL.0,
            ws_ypixel: ROWS * CELL.1,
        };
        // SAFETY: two out-pointers to ints, no name buffer, default termios, a valid winsize.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // Neither end may leak into this or any other child: a program holding the terminal's far
        // end open would never see it hang up.
        for fd in [master, slave] {
            // SAFETY: fcntl on descriptors openpty just returned.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        // SAFETY: openpty returned two open descriptors that nothing else owns.
        let (master, slave) = unsafe { (File::from_raw_fd(master), File::from_raw_fd(slave)) };
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("TERM", answers.term)
            .envs(answers.env.iter().copied())
            .envs(extra.iter().copied())
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("the program starts");
        drop(command); // closes the parent's copies of the terminal's program side
        let master = Arc::new(master);
        let shared = Arc::new(Mutex::new(Shared {
            output: Vec::new(),
            bundle: None,
            cursor_queries: 0,
        }));
        let hang_up = Arc::new(AtomicBool::new(false));
        {
            let master = Arc::clone(&master);
            let shared = Arc::clone(&shared);
            let hang_up = Arc::clone(&hang_up);
            std::thread::spawn(move || serve(master, answers, shared, hang_up));
        }
        PtyProgram {
            child,
            master: Some(master),
            shared,
            hang_up,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything written so far.
    pub fn output(&self) -> Vec<u8> {
        self.shared.lock().unwrap().output.clone()
    }

    pub fn output_len(&self) -> usize {
        self.shared.lock().unwrap().output.len()
    }

    /// Everything written since byte `from`, as text (lossy).
    pub fn text_since(&self, from: usize) -> String {
        let shared = self.shared.lock().unwrap();
        String::from_utf8_lossy(&shared.output[from.min(shared.output.len())..]).into_owned()
    }

    /// How many cursor-position queries the program made.
    pub fn cursor_queries(&self) -> usize {
        self.shared.lock().unwrap().cursor_queries
    }

    /// Types `bytes`.
    pub fn send(&self, bytes: &[u8]) {
        let master = self.master.as_ref().expect("the terminal is still there");
        (&**master).write_all(bytes).expect("write to the terminal");
    }

    /// Types `first`, and `then` right after: if the program asks where the cursor is in between,
    /// `then` arrives in the same read as the answer (a user typing on while the terminal
    /// answers); otherwise it is typed 300 ms later.
    pub fn send_then(&self, first: &[u8], then: &[u8]) {
        self.shared.lock().unwrap().bundle = Some(then.to_vec());
        self.send(first);
        std::thread::sleep(Duration::from_millis(300));
        let unsent = self.shared.lock().unwrap().bundle.take();
        if let Some(bytes) = unsent {
            self.send(&bytes);
        }
    }

    /// Waits until the output since byte `from` holds `text`; false after `limit`.
    pub fn wait_for(&self, text: &str, from: usize, limit: Duration) -> bool {
        let started = Instant::now();
        let needle = text.as_bytes();
        let mut checked = from;
        while started.elapsed() < limit {
            {
                let shared = self.shared.lock().unwrap();
                let start = checked.min(shared.output.len());
                if shared.output[start..]
                    .windows(needle.len())
                    .any(|w| w == needle)
                {
                    return true;
                }
                checked = shared.output.len().saturating_sub(needle.len()).max(from);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }

    /// The exit status once the program has ended, waiting up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            if started.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }

    /// Closes the terminal, as when its window or SSH connection goes away: the program's side
    /// reads end-of-file and the session gets SIGHUP.
    pub fn hang_up(&mut self) {
        self.hang_up.store(true, Ordering::SeqCst);
        self.master = None;
    }

    /// CPU seconds the program has used (user + system), from /proc.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which is in parentheses): utime is the 12th, stime 13th.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (ticks(11) + ticks(12)) / hz
    }
}

impl Drop for PtyProgram {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.hang_up.store(true, Ordering::SeqCst);
    }
}

/// The terminal's side: reads what the program writes, keeps it and answers queries, until told
/// to hang up (then the last handle on the terminal closes) or the program's side is gone.
fn serve(
    master: Arc<File>,
    answers: Answers,
    shared: Arc<Mutex<Shared>>,
    hang_up: Arc<AtomicBool>,
) {
    let fd = master.as_raw_fd();
    let mut buffer = vec![0u8; 1 << 16];
    let mut scanned = 0;
    let mut skipping: Option<usize> = None;
    while !hang_up.load(Ordering::SeqCst) {
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut poll, 1, 50) } <= 0 {
            continue;
        }
        let n = match (&*master).read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut state = shared.lock().unwrap();
        state.output.extend_from_slice(&buffer[..n]);
        // A long string sequence (a picture) is no query: skip to its end without scanning it
        // again at every read.
        if let Some(end) = skip_long_string(&state.output, &mut scanned, &mut skipping) {
            scanned = end;
        }
        if skipping.is_some() {
            continue;
        }
        let (found, complete) = sequences(&state.output[scanned..]);
        let mut replies = Vec::new();
        let mut cursor_queries = 0;
        for sequence in found {
            let reply = answers.reply(sequence);
            if sequence == b"\x1b[6n" {
                cursor_queries += 1;
            }
            replies.push((sequence == b"\x1b[6n", reply));
        }
        scanned += complete;
        state.cursor_queries += cursor_queries;
        let mut out = Vec::new();
        for (is_cursor, reply) in replies {
            out.extend(reply);
            if is_cursor {
                if let Some(bundle) = state.bundle.take() {
                    out.extend(bundle);
                }
            }
        }
        drop(state);
        if !out.is_empty() {
            let _ = (&*master).write_all(&out);
        }
    }
}

/// Queries are short: once an unfinished sequence at `scanned` runs past this many bytes it is a
/// picture, and only its terminator is looked for (from `skipping`, where the last look ended).
const LONGEST_QUERY: usize = 512;

/// Moves past a long unfinished string sequence at `scanned`; returns where it ends once it has.
fn skip_long_string(
    output: &[u8],
    scanned: &mut usize,
    skipping: &mut Option<usize>,
) -> Option<usize> {
    if skipping.is_none() {
        let rest = &output[*scanned..];
        let (_, complete) = sequences(rest);
        let unfinished = &rest[complete..];
        if unfinished.len() > LONGEST_QUERY && unfinished.first() == Some(&0x1b) {
            *scanned += complete;
            *skipping = Some(*scanned + 2);
        } else {
            return None;
        }
    }
    let from = skipping.expect("set above");
    match output[from..].windows(2).position(|w| w == b"\x1b\\") {
        Some(p) => {
            *skipping = None;
            Some(from + p + 2)
        }
        None => {
            *skipping = Some(output.len().saturating_sub(1).max(from));
            None
        }
    }
}
