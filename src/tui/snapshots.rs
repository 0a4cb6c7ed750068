//! Snapshot tests: every view drawn from a recorded list of events, compared with the screen text
//! kept in `src/tui/snapshots/<name>.txt`, so any change to a view shows up as a diff in review.
//!
//! After an intended change, rewrite the files and read the diff before committing:
//! `UPDATE_SNAPSHOTS=1 cargo test --release --lib tui::snapshots`.
//! A plain text file per screen (no snapshot crate): the harness already renders the screen to
//! text, and git shows the diff.

use std::path::PathBuf;

use crossterm::event::KeyCode;

use super::keymap::View;
use super::tests::{recorded_run, Harness};
use super::views::Origin;

const WIDTH: u16 = 100;
const HEIGHT: u16 = 30;

fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/tui/snapshots")
        .join(format!("{name}.txt"))
}

/// Compares `screen` with the stored snapshot `name` (or stores it, with `UPDATE_SNAPSHOTS` set).
pub(super) fn assert_snapshot(name: &str, screen: &str) {
    let path = snapshot_path(name);
    let screen = format!(
        "{}\n",
        screen
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
    );
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &screen).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "no snapshot {} ({e}); run with UPDATE_SNAPSHOTS=1 to create it:\n{screen}",
            path.display()
        )
    });
    if stored != screen {
        let stored_lines: Vec<&str> = stored.lines().collect();
        let diff: Vec<String> = screen
            .lines()
            .enumerate()
            .filter(|(i, line)| stored_lines.get(*i) != Some(line))
            .map(|(i, line)| {
                format!(
                    "line {}:\n  - {}\n  + {line}",
                    i + 1,
                    stored_lines.get(i).unwrap_or(&"")
                )
            })
            .collect();
        panic!(
            "{name} differs from {} (UPDATE_SNAPSHOTS=1 to accept):\n{}\nnow:\n{screen}",
            path.display(),
            diff.join("\n")
        );
    }
}

fn view(ui: &mut Harness, view: View) -> String {
    ui.press(KeyCode::Char(char::from(b'1' + view.index() as u8)));
    ui.settle()
}

#[test]
fn every_view_of_a_finished_run_matches_its_snapshot() {
    let mut ui = Harness::new(WIDTH, HEIGHT, Origin::Live, recorded_run(3, true));
    for (name, v) in [
        ("finished-training", View::Training),
        ("finished-samples", View::Samples),
        ("finished-model", View::Model),
        ("finished-results", View::Results),
        ("finished-browser", View::Browser),
    ] {
        let screen = view(&mut ui, v);
        assert_snapshot(name, &screen);
    }
    ui.press(KeyCode::Char('g'));
    assert_snapshot("finished-browser-grid", &ui.settle());
    ui.press(KeyCode::Char('?'));
    assert_snapshot("help", &ui.settle());
}

#[test]
fn a_running_training_and_its_questions_match_their_snapshots() {
    let mut ui = Harness::new(WIDTH, HEIGHT, Origin::Live, recorded_run(2, false));
    assert_snapshot("running-training", &ui.settle());
    assert_snapshot("running-results", &view(&mut ui, View::Results));
    ui.press(KeyCode::Char('1'));
    ui.press(KeyCode::Char('p'));
    assert_snapshot("running-paused", &ui.settle());
    ui.press(KeyCode::Char('s'));
    assert_snapshot("running-confirm-stop", &ui.settle());
    ui.press(KeyCode::Esc);
    ui.press(KeyCode::Char('q'));
    assert_snapshot("running-confirm-quit", &ui.settle());
}

#[test]
fn a_dashboard_before_any_event_matches_its_snapshot() {
    let mut ui = Harness::new(WIDTH, HEIGHT, Origin::Watch, Vec::new());
    assert_snapshot("waiting-training", &ui.settle());
}

#[test]
fn the_scan_view_matches_its_snapshots() {
    use super::scan::render::tests::folder_with_photo;
    use super::scan::tests::ScanHarness;
    let dir = tempfile::tempdir().unwrap();
    let record = folder_with_photo(dir.path(), 640, 320);
    let mut ui = ScanHarness::new(dir.path(), record, WIDTH, HEIGHT);
    assert_snapshot("scan-view", &ui.settle());
    ui.press(KeyCode::Char('+'));
    ui.press(KeyCode::Right);
    ui.press(KeyCode::Char('k'));
    assert_snapshot("scan-view-zoomed-mask", &ui.settle());
    ui.press(KeyCode::Char('?'));
    assert_snapshot("scan-help", &ui.settle());
}
