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
    let root = dir.join("surfaces");
    ok(&common::run(&[
        "synth",
        "--out",
        root.to_str().unwrap(),
        "--photos",
        "3",
        "--size",
        "300",
        "--detail",
        "64",
    ]));
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
