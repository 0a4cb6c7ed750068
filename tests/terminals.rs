//! The dashboard and the scan view in a pretend terminal (a pseudo-terminal whose far end the test
//! plays, answering queries as a given terminal emulator does): they never end by themselves,
//! they end when the terminal hangs up, and they draw pictures with what the terminal answers for.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::pty::{Answers, PtyProgram};
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_crackscope");

/// A word only each dashboard view writes (one word: ratatui rewrites only the cells that change,
/// so a phrase may arrive cut by cursor moves where its spaces were blank already).
fn marker(view_key: &str) -> &'static str {
    match view_key {
        "1" => "Grad-CAM",
        "2" => "dataset",
        "3" => "Parameters",
        "4" => "Hardest",
        "5" => "Predicted",
        other => panic!("no marker for {other}"),
    }
}

/// Terminal output with its escape sequences shown as text, for failure messages.
fn readable(text: &str) -> String {
    let shown = text.replace('\x1b', "⎋");
    let chars: Vec<char> = shown.chars().collect();
    let tail = chars.len().saturating_sub(3000);
    chars[tail..].iter().collect()
}

fn watch(run: &Path, answers: Answers, extra_args: &[&str]) -> PtyProgram {
    let mut args = vec!["watch", run.to_str().unwrap()];
    args.extend_from_slice(extra_args);
    PtyProgram::start(Path::new(BIN), &args, answers, &[])
}

/// The race of issue 20: on a layout change with sixel pictures, the dashboard asked the terminal
/// where the cursor was (ratatui's `Terminal::clear`) while its keyboard thread read the same
/// input. A user typing on while the terminal answers makes the answer and the next key arrive
/// together: whichever thread read them, the dashboard either gave up waiting and quit, or the
/// key was eaten. Every key must take effect and the dashboard must stay.
#[test]
fn layout_keys_typed_quickly_never_end_the_dashboard_or_get_lost() {
    let dir = tempfile::tempdir().unwrap();
    let run = finished_run(dir.path());
    let mut term = watch(&run, Answers::xterm_sixel(), &["--graphics", "sixel"]);
    assert!(
        term.wait_for("finished", 0, Duration::from_secs(60)),
        "the dashboard did not open:\n{}",
        term.text_since(0)
    );
    let pairs = [
        ("2", "3"),
        ("4", "5"),
        ("1", "2"),
        ("5", "4"),
        ("3", "1"),
        ("2", "5"),
        ("4", "1"),
    ];
    for (first, then) in pairs {
        let from = term.output_len();
        term.send_then(first.as_bytes(), then.as_bytes());
        let shown = term.wait_for(marker(then), from, Duration::from_secs(5));
        assert!(
            term.running(),
            "the dashboard ended by itself after keys {first} {then}"
        );
        assert!(
            shown,
            "key {then} (typed right after {first}) was lost: its view never showed"
        );
    }
    assert_eq!(
        term.cursor_queries(),
        0,
        "the dashboard asked the terminal where the cursor is"
    );
    let from = term.output_len();
    term.send(b"q");
    let status = term.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "q did not end the dashboard: {status:?}\n{}",
        term.text_since(from)
    );
}

/// A scan folder of three synthetic photos, scanned with `run`'s model.
fn scan_folder(dir: &Path, run: &Path) -> PathBuf {
    let root = common::synth_photos(&dir.join("surfaces"), 3, 300);
    let out = dir.join("scan");
    ok(&common::run(&[
        "scan",
        "--model",
        run.to_str().unwrap(),
        root.join("photos").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    out
}

/// The scan view cleared the screen (and asked for the cursor) whenever the photo or the help
/// changed, so it too quit or lost keys; it must react to every key and stay.
#[test]
fn the_scan_view_reacts_to_every_key_and_stays() {
    let dir = tempfile::tempdir().unwrap();
    let run = finished_run(dir.path());
    let scan = scan_folder(dir.path(), &run);
    let mut term = watch(&scan, Answers::xterm_sixel(), &["--graphics", "sixel"]);
    assert!(
        term.wait_for("photo_00001", 0, Duration::from_secs(60)),
        "the scan view did not open:\n{}",
        term.text_since(0)
    );
    // `n`, `+` and `p` change what sits where; `?` right after each opens the help (its one
    // word "Layers:"), and any key closes it again.
    for first in ["n", "+", "p", "-"] {
        // Let the photo's picture arrive, so that the next key changes what is drawn.
        std::thread::sleep(Duration::from_millis(1500));
        let from = term.output_len();
        term.send_then(first.as_bytes(), b"?");
        let seen = term.wait_for("Layers:", from, Duration::from_secs(5));
        assert!(term.running(), "the scan view ended after keys {first} ?");
        assert!(
            seen,
            "? typed right after {first} was lost: no help\n{}",
            readable(&term.text_since(from))
        );
        term.send(b"x");
        std::thread::sleep(Duration::from_millis(400));
        assert!(term.running(), "the scan view ended after closing the help");
    }
    assert_eq!(
        term.cursor_queries(),
        0,
        "the scan view asked for the cursor"
    );
    term.send(b"q");
    assert!(term.wait_exit(Duration::from_secs(10)).is_some());
}

/// A terminal that hangs up while the dashboard waits for an answer (here one that never comes):
/// crossterm's cursor query then spun forever at full CPU. `watch` must end within seconds of the
/// hang-up, without spinning.
#[test]
fn watch_ends_when_its_terminal_hangs_up_even_while_waiting_for_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let run = finished_run(dir.path());
    let silent = Answers {
        cursor_position: false,
        ..Answers::xterm_sixel()
    };
    let mut term = watch(&run, silent, &["--graphics", "sixel"]);
    assert!(term.wait_for("finished", 0, Duration::from_secs(60)));
    term.send(b"2");
    std::thread::sleep(Duration::from_millis(500));
    term.hang_up();
    let started = Instant::now();
    let cpu_before = term.cpu_seconds();
    let ended = term.wait_exit(Duration::from_secs(5));
    let cpu = term.cpu_seconds() - cpu_before;
    assert!(
        ended.is_some(),
        "watch still running {:?} after its terminal hung up (CPU {cpu:.2} s meanwhile)",
        started.elapsed()
    );
}

/// Starts `args` in a pretend terminal answering as `answers`, with `extra` environment.
fn start(args: &[&str], answers: Answers, extra: &[(&str, &str)]) -> PtyProgram {
    PtyProgram::start(Path::new(BIN), args, answers, extra)
}

/// Waits for `marker` in the output from the start; the output so far either way.
fn output_after(term: &PtyProgram, marker: &str, limit: Duration) -> (bool, String) {
    let seen = term.wait_for(marker, 0, limit);
    (seen, term.text_since(0))
}

const SIXEL: &str = "\x1bP0;1q";
const KITTY_DIRECT: &str = "\x1b_Ga=T,f=100,q=2,i=";
const ITERM2: &str = "\x1b]1337;File=inline=1";
const HALF_BLOCK: &str = "▀";

/// Issue 20 (3, 4): the dashboard drew kitty 0.26.5's pictures as Unicode placeholders, which it
/// only has from 0.28, and Konsole got half blocks although it draws iTerm2 and sixel pictures.
/// Each terminal gets the pictures it answers for.
#[test]
fn the_dashboard_draws_what_each_terminal_answers_for() {
    let dir = tempfile::tempdir().unwrap();
    let run = finished_run(dir.path());
    let run = run.to_str().unwrap();
    let cases = [
        ("xterm -ti vt340", Answers::xterm_sixel(), SIXEL),
        (
            "kitty 0.26.5",
            Answers::kitty("kitty(0.26.5)"),
            KITTY_DIRECT,
        ),
        ("Konsole 22.12", Answers::konsole(), ITERM2),
        ("xterm without sixel", Answers::xterm_plain(), HALF_BLOCK),
    ];
    for (name, answers, expected) in cases {
        let mut term = start(&["watch", run], answers, &[]);
        let (seen, output) = output_after(&term, expected, Duration::from_secs(30));
        assert!(
            seen,
            "{name}: no {expected:?} pictures:\n{}",
            readable(&output)
        );
        if expected != HALF_BLOCK {
            assert!(!output.contains(HALF_BLOCK), "{name}: half blocks as well");
        }
        // kitty's placeholders are the character U+10EEEE, which kitty 0.26 shows as boxes.
        assert!(!output.contains('\u{10EEEE}'), "{name}: kitty placeholders");
        term.send(b"q");
        assert!(
            term.wait_exit(Duration::from_secs(10)).is_some(),
            "{name}: q"
        );
    }
    // kitty 0.28 and later: placeholders (which survive tmux).
    let mut term = start(&["watch", run], Answers::kitty("kitty(0.35.2)"), &[]);
    let (seen, output) = output_after(&term, "\u{10EEEE}", Duration::from_secs(30));
    assert!(seen, "kitty 0.35: no placeholders:\n{}", readable(&output));
    term.send(b"q");
    assert!(term.wait_exit(Duration::from_secs(10)).is_some());
}

/// Issue 20 (4): `samples` guessed from environment variables only, so it printed half blocks in
/// xterm while the dashboard found sixel. Both ask the terminal now, and agree.
#[test]
fn samples_prints_with_what_the_terminal_answers_for() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth_dataset(dir.path(), 8, 0);
    let data = data.to_str().unwrap();
    for (name, answers, expected) in [
        ("xterm -ti vt340", Answers::xterm_sixel(), SIXEL),
        (
            "kitty 0.26.5",
            Answers::kitty("kitty(0.26.5)"),
            "\x1b_Ga=T,f=100,q=2",
        ),
        ("Konsole 22.12", Answers::konsole(), ITERM2),
    ] {
        let mut term = start(&["samples", data, "--count", "4"], answers, &[]);
        let status = term.wait_exit(Duration::from_secs(60));
        let output = term.text_since(0);
        assert!(
            status.is_some_and(|s| s.success()),
            "{name}: {status:?}\n{}",
            readable(&output)
        );
        assert!(
            output.contains(expected),
            "{name}: no {expected:?}:\n{}",
            readable(&output)
        );
        assert!(!output.contains(HALF_BLOCK), "{name}: half blocks");
    }
}

/// Issue 20 (6): a forced protocol the terminal does not answer for drew coloured marks, floods
/// of text or overlapping grids. It is refused with what the terminal does draw, before anything
/// is drawn, by the dashboard and by the command line alike.
#[test]
fn a_forced_protocol_the_terminal_does_not_answer_for_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = finished_run(dir.path());
    let run = run.to_str().unwrap();
    for (name, answers, forced) in [
        ("xterm", Answers::xterm_sixel(), "kitty"),
        ("kitty", Answers::kitty("kitty(0.26.5)"), "sixel"),
        ("kitty", Answers::kitty("kitty(0.26.5)"), "iterm2"),
    ] {
        let mut term = start(&["watch", run, "--graphics", forced], answers.clone(), &[]);
        let status = term.wait_exit(Duration::from_secs(30));
        let output = term.text_since(0);
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(1),
            "{name} {forced}:\n{}",
            readable(&output)
        );
        assert!(
            output.contains(&format!("{forced} pictures were asked for"))
                && output.contains("It draws"),
            "{name} {forced}: {}",
            readable(&output)
        );
        assert!(!output.contains(SIXEL) && !output.contains(ITERM2) && !output.contains("a=T"));
        let data = format!("{run}/data");
        let samples = ["samples", data.as_str(), "--count", "2"];
        let mut term = start(&samples, answers, &[("CRACKSCOPE_GRAPHICS", forced)]);
        let status = term.wait_exit(Duration::from_secs(30));
        let output = term.text_since(0);
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(1),
            "samples {name} {forced}"
        );
        assert!(
            output.contains("It draws"),
            "samples {name} {forced}: {}",
            readable(&output)
        );
    }
}

/// A `tmux` command for the pretend tmux: says whether passthrough is on and where the pane is,
/// and logs every call (the tool must never change the user's tmux settings). Returns the PATH
/// that finds it and the log.
fn fake_tmux(dir: &Path, passthrough: bool) -> (String, PathBuf) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = dir.join("tmux-calls.txt");
    let script = format!(
        "#!/bin/sh\necho \"$@\" >> '{}'\ncase \"$*\" in\n  *allow-passthrough*) echo {} ;;\n  \
         *display-message*) echo '0 0 on bottom' ;;\nesac\n",
        calls.display(),
        if passthrough { "on" } else { "off" }
    );
    let tmux = bin.join("tmux");
    std::fs::write(&tmux, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmux, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (path, calls)
}

/// Issue 20 (2): inside tmux the dashboard turned tmux's passthrough on by itself, then wrote
/// sixel pictures through it with no place on the outer screen: empty panels, or garbage where
/// the outer cursor happened to be. Now tmux's setting is only read: off gives half blocks; on
/// gives pictures wrapped for tmux that move the outer cursor to their place and back.
#[test]
fn inside_tmux_pictures_pass_only_where_tmux_lets_them_and_know_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let run = finished_run(dir.path());
    let run = run.to_str().unwrap();

    let (path, calls) = fake_tmux(&dir.path().join("off"), false);
    let closed = Answers::tmux(Answers::xterm_sixel(), false);
    let mut term = start(&["watch", run], closed, &[("PATH", path.as_str())]);
    let (seen, output) = output_after(&term, HALF_BLOCK, Duration::from_secs(30));
    assert!(seen, "no half blocks:\n{}", readable(&output));
    assert!(
        !output.contains("\x1bPtmux;\x1b\x1bP"),
        "a sixel sent through tmux"
    );
    term.send(b"q");
    assert!(term.wait_exit(Duration::from_secs(10)).is_some());
    let asked = std::fs::read_to_string(&calls).unwrap_or_default();
    assert!(
        !asked.contains("set"),
        "the tool changed tmux's settings: {asked}"
    );

    let (path, _) = fake_tmux(&dir.path().join("on"), true);
    let open = Answers::tmux(Answers::xterm_sixel(), true);
    let mut term = start(&["watch", run], open, &[("PATH", path.as_str())]);
    // Saved cursor, a move on the outer screen, the sixel, the cursor back: all inside the wrap.
    let placed = "\x1bPtmux;\x1b\x1b7\x1b\x1b[";
    let (seen, output) = output_after(&term, placed, Duration::from_secs(30));
    assert!(seen, "no placed sixel through tmux:\n{}", readable(&output));
    std::thread::sleep(Duration::from_millis(500));
    let output = term.text_since(0);
    assert!(output.contains("\x1b\x1bP0;1q") && output.contains("\x1b\x1b8\x1b\\"));
    assert!(!output.contains(HALF_BLOCK), "half blocks as well");
    term.send(b"q");
    assert!(term.wait_exit(Duration::from_secs(10)).is_some());
}

/// Issue 20 (5): pictures kept the size the gallery made them (the sample grid 262 px in a panel
/// of about 1270 x 730 px). The Samples view's sixel picture now fills its panel's height.
#[test]
fn the_sample_grid_fills_its_panel() {
    let dir = tempfile::tempdir().unwrap();
    let run = finished_run(dir.path());
    let mut term = watch(&run, Answers::xterm_sixel(), &[]);
    assert!(term.wait_for("finished", 0, Duration::from_secs(60)));
    let from = term.output_len();
    term.send(b"2");
    std::thread::sleep(Duration::from_millis(300));
    let sixel_start = term.output_len();
    assert!(
        term.wait_for("\"1;1;", sixel_start.min(from), Duration::from_secs(20)),
        "no sixel picture"
    );
    std::thread::sleep(Duration::from_millis(500));
    let output = term.text_since(from);
    // The sixel's raster attributes: "1;1;width;height (both encoders write them).
    let raster = output
        .split("\"1;1;")
        .nth(1)
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_ascii_digit() || *c == ';')
                .collect::<String>()
        })
        .expect("raster attributes");
    let mut numbers = raster.split(';').filter_map(|n| n.parse::<u32>().ok());
    let (width, height) = (numbers.next().unwrap(), numbers.next().unwrap());
    // 40 rows of 17 px: the panel's inside is 35 rows (595 px) tall.
    assert!(
        height >= 560 && width.abs_diff(height) <= 2,
        "{width} x {height} px"
    );
    term.send(b"q");
    assert!(term.wait_exit(Duration::from_secs(10)).is_some());
}
