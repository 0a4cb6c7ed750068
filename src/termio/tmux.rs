//! tmux between us and the terminal. tmux 3.3 draws no pictures itself; with `allow-passthrough`
//! on it hands escape sequences wrapped as `ESC P tmux; ... ESC \` to the terminal outside, as they
//! are, wherever that terminal's cursor happens to be. So a picture is sent wrapped, with its own
//! move to the pane's place on the outer screen, and only when tmux lets it through: its setting
//! and the pane's place are asked of tmux itself (the `tmux` command, through `$TMUX`), never
//! changed.

use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The pane this process runs in, as tmux describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pane {
    /// `allow-passthrough` is on (or `all`) for this pane.
    pub passthrough: bool,
    /// The pane's top-left cell on the outer terminal (column, row), 0-based.
    pub origin: (u16, u16),
    /// The terminal outside, as tmux knows it (it decides which colours reach it).
    pub client: Option<Client>,
}

/// The terminal a tmux client runs in, as tmux sees it: tmux turns every colour a program sends
/// into one this terminal takes, by its terminfo entry and `terminal-features`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its `TERM` ("mlterm", "xterm-256color").
    pub name: String,
    /// tmux sends it 24-bit colours as they are.
    pub truecolour: bool,
    /// How many palette colours tmux thinks it has (8, 16, 256).
    pub colours: u32,
}

/// Whether this process runs inside tmux (or GNU screen, which passes nothing through), by the
/// variables they set.
pub fn inside(var: &impl Fn(&str) -> Option<String>) -> bool {
    let term = var("TERM").unwrap_or_default();
    var("TMUX").is_some_and(|v| !v.is_empty())
        || term.starts_with("tmux")
        || term.starts_with("screen")
}

/// Asks tmux about this process's pane; None outside tmux or when tmux cannot be asked (`$TMUX`
/// unset, as over SSH from a local tmux, or the `tmux` command missing).
pub fn ask(var: &impl Fn(&str) -> Option<String>) -> Option<Pane> {
    var("TMUX").filter(|v| !v.is_empty())?;
    let pane = var("TMUX_PANE").filter(|p| !p.is_empty());
    let passthrough = tmux(
        &["show-options", "-Apv"],
        pane.as_deref(),
        &["allow-passthrough"],
    )?;
    let origin = origin_of(pane.as_deref())?;
    Some(Pane {
        passthrough: matches!(passthrough.trim(), "on" | "all"),
        origin,
        client: client_of(pane.as_deref()),
    })
}

/// The terminal outside tmux for this process's pane; None outside tmux or when tmux cannot say.
pub fn client(var: &impl Fn(&str) -> Option<String>) -> Option<Client> {
    var("TMUX").filter(|v| !v.is_empty())?;
    client_of(var("TMUX_PANE").filter(|p| !p.is_empty()).as_deref())
}

fn client_of(pane: Option<&str>) -> Option<Client> {
    let tty = tmux(&["display-message", "-p"], pane, &["#{client_tty}"])?;
    // Every client's terminal with the capabilities tmux uses for it (`tmux info`).
    let terminals = tmux(&["show-messages", "-T"], None, &[])?;
    parse_client(&terminals, tty.trim())
}

/// The section of `show-messages -T` output for the client on `tty`: its header
/// ("Terminal 0: mlterm for /dev/pts/0, flags=0x31:"), then one capability a line
/// ("13: colors: (number) 256", "208: setrgbf: (string) ...", "197: RGB: [missing]").
fn parse_client(terminals: &str, tty: &str) -> Option<Client> {
    let mut client: Option<Client> = None;
    for line in terminals.lines() {
        if let Some(header) = line.strip_prefix("Terminal ") {
            if client.is_some() {
                break;
            }
            let Some((name, rest)) = header
                .split_once(": ")
                .and_then(|(_, rest)| rest.split_once(" for "))
            else {
                continue;
            };
            if rest.split(',').next().unwrap_or_default().trim() == tty {
                client = Some(Client {
                    name: name.to_string(),
                    truecolour: false,
                    colours: 8,
                });
            }
            continue;
        }
        let Some(found) = client.as_mut() else {
            continue;
        };
        let mut fields = line.trim().splitn(3, ": ");
        let (_, Some(capability), Some(value)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let present = !value.starts_with("[missing]");
        match capability {
            "colors" => {
                let number = value.trim_start_matches("(number)").trim();
                found.colours = number.parse().unwrap_or(found.colours);
            }
            // tmux's own 24-bit capabilities (the RGB feature sets setrgbf), or the terminfo
            // extensions some entries carry.
            "setrgbf" | "RGB" | "Tc" if present => found.truecolour = true,
            _ => {}
        }
    }
    client
}

/// The pane's top-left on the outer terminal: its place in the window, below the status line when
/// that is at the top.
fn origin_of(pane: Option<&str>) -> Option<(u16, u16)> {
    let format = "#{pane_left} #{pane_top} #{status} #{status-position}";
    let line = tmux(&["display-message", "-p"], pane, &[format])?;
    parse_origin(&line)
}

fn parse_origin(line: &str) -> Option<(u16, u16)> {
    let mut fields = line.split_whitespace();
    let left: u16 = fields.next()?.parse().ok()?;
    let top: u16 = fields.next()?.parse().ok()?;
    let status = fields.next().unwrap_or("off");
    let position = fields.next().unwrap_or("bottom");
    let status_lines = match status {
        "off" => 0,
        "on" => 1,
        n => n.parse().unwrap_or(1),
    };
    let above = if position == "top" { status_lines } else { 0 };
    Some((left, top + above))
}

/// Runs `tmux ARGS [-t PANE] TAIL` and gives its output; None when it fails.
fn tmux(args: &[&str], pane: Option<&str>, tail: &[&str]) -> Option<String> {
    let mut command = Command::new("tmux");
    command.args(args);
    if let Some(pane) = pane {
        command.args(["-t", pane]);
    }
    let output = command
        .args(tail)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The pane's place on the outer terminal, for pictures drawn through passthrough: set when the
/// terminal is probed, refreshed when the window changes size (a split moves panes). One per
/// process, as the terminal is.
static ORIGIN: Mutex<Option<(u16, u16)>> = Mutex::new(None);

pub fn origin() -> (u16, u16) {
    ORIGIN
        .lock()
        .map(|o| o.unwrap_or_default())
        .unwrap_or_default()
}

pub fn set_origin(origin: (u16, u16)) {
    if let Ok(mut slot) = ORIGIN.lock() {
        *slot = Some(origin);
    }
}

/// Asks tmux again where the pane is (after a resize); keeps the last answer if it cannot.
pub fn refresh_origin() {
    let pane = std::env::var("TMUX_PANE").ok();
    if let Some(origin) = origin_of(pane.as_deref()) {
        set_origin(origin);
    }
}

/// `sequence` wrapped for tmux to pass through: its escapes doubled, inside `ESC P tmux; ... ESC \`.
pub fn wrap(sequence: &str) -> String {
    let mut out = String::with_capacity(sequence.len() + sequence.len() / 64 + 16);
    out.push_str("\x1bPtmux;");
    out.push_str(&double_escapes(sequence));
    out.push_str("\x1b\\");
    out
}

/// The escapes of `sequence` doubled, as tmux wants them inside its passthrough.
pub fn double_escapes(sequence: &str) -> String {
    sequence.replace('\x1b', "\x1b\x1b")
}

/// A picture's escape sequence (escapes already doubled by [`double_escapes`]) wrapped for tmux
/// and drawn at cell (`column`, `row`) of the pane: the outer terminal's cursor is saved, moved
/// there, and put back, so tmux's idea of it stays right.
pub fn wrap_at(doubled: &str, column: u16, row: u16) -> String {
    let (left, top) = origin();
    let mut out = String::with_capacity(doubled.len() + 48);
    out.push_str("\x1bPtmux;\x1b\x1b7");
    out.push_str(&format!(
        "\x1b\x1b[{};{}H",
        u32::from(top) + u32::from(row) + 1,
        u32::from(left) + u32::from(column) + 1
    ));
    out.push_str(doubled);
    out.push_str("\x1b\x1b8\x1b\\");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pane_origin_counts_a_status_line_at_the_top() {
        assert_eq!(parse_origin("51 0 on bottom"), Some((51, 0)));
        assert_eq!(parse_origin("0 12 on top"), Some((0, 13)));
        assert_eq!(parse_origin("3 4 2 top"), Some((3, 6)));
        assert_eq!(parse_origin("3 4 off top"), Some((3, 4)));
        assert_eq!(parse_origin("x"), None);
    }

    #[test]
    fn the_clients_terminal_and_its_colours_are_read_from_tmux_info() {
        let info = "Terminal 0: xterm for /dev/pts/3, flags=0x3d:\n\
                    \x20 13: colors: (number) 256\n\
                    \x20 197: RGB: [missing]\n\
                    \x20 208: setrgbf: (string) \\033[38;2;%p1%d;%p2%d;%p3%dm\n\
                    Terminal 1: mlterm for /dev/pts/0, flags=0x20:\n\
                    \x20 13: colors: (number) 8\n\
                    \x20 197: RGB: [missing]\n\
                    \x20 208: setrgbf: [missing]\n\
                    \x20 223: Tc: [missing]\n";
        let mlterm = Client {
            name: "mlterm".into(),
            truecolour: false,
            colours: 8,
        };
        assert_eq!(parse_client(info, "/dev/pts/0"), Some(mlterm));
        let xterm = parse_client(info, "/dev/pts/3").unwrap();
        assert!(xterm.truecolour && xterm.colours == 256, "{xterm:?}");
        assert_eq!(parse_client(info, "/dev/pts/9"), None);
        assert_eq!(parse_client("", "/dev/pts/0"), None);
    }

    #[test]
    fn wrapped_sequences_double_their_escapes_and_move_on_the_outer_screen() {
        assert_eq!(wrap("\x1b[c"), "\x1bPtmux;\x1b\x1b[c\x1b\\");
        set_origin((10, 2));
        let drawn = wrap_at(&double_escapes("\x1bPq#0!5~\x1b\\"), 4, 3);
        assert_eq!(
            drawn,
            "\x1bPtmux;\x1b\x1b7\x1b\x1b[6;15H\x1b\x1bPq#0!5~\x1b\x1b\\\x1b\x1b8\x1b\\"
        );
    }

    #[test]
    fn tmux_and_screen_are_recognised_by_their_variables() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(inside(&vars(&[("TMUX", "/tmp/tmux-0/default,1,0")])));
        assert!(inside(&vars(&[("TERM", "tmux-256color")])));
        assert!(inside(&vars(&[("TERM", "screen.xterm-256color")])));
        assert!(!inside(&vars(&[("TERM", "xterm-256color"), ("TMUX", "")])));
    }
}
