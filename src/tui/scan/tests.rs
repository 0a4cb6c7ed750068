//! Whole scan-view tests: a scan folder made on disk, the real state, picture thread work (run in
//! line) and drawing, on ratatui's TestBackend with half-block pictures.

use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::draw;
use super::painter::{apply_reply, cell_pixels, next_job, Painter, PainterJob, Reply};
use super::render::tests::folder_with_photo;
use super::view::{PhotoState, ScanView};
use crate::scan::output::ScanRecord;
use crate::termio::Graphics;
use crate::tui::theme::Theme;

pub struct ScanHarness {
    pub view: ScanView,
    painter: Painter,
    terminal: Terminal<TestBackend>,
}

impl ScanHarness {
    /// The view on `folder`, titled "scan-out" (a fixed name, so snapshots do not depend on
    /// temporary folders).
    pub fn new(folder: &Path, record: ScanRecord, width: u16, height: u16) -> ScanHarness {
        let mut view = ScanView::new("scan-out".into(), record.clone(), Theme::new(false));
        let graphics = Graphics::halfblocks();
        view.cell_pixels = cell_pixels(&graphics);
        ScanHarness {
            view,
            painter: Painter::new(folder.to_path_buf(), record, graphics),
            terminal: Terminal::new(TestBackend::new(width, height)).unwrap(),
        }
    }

    /// Draws and makes the pictures the frames ask for until none is missing; returns the screen.
    pub fn settle(&mut self) -> String {
        for _ in 0..10 {
            let mut cells = None;
            let view = &self.view;
            self.terminal
                .draw(|f| cells = draw::draw(f, view, &mut Vec::new()))
                .unwrap();
            if let Some(cells) = cells {
                self.view.set_area(cells);
            }
            let Some(job) = next_job(&self.view) else {
                // Draw once more so the screen shows the last state.
                let view = &self.view;
                self.terminal
                    .draw(|f| {
                        draw::draw(f, view, &mut Vec::new());
                    })
                    .unwrap();
                return self.screen();
            };
            for reply in self.painter.take(PainterJob::Draw(job)) {
                apply_reply(&mut self.view, reply);
            }
        }
        panic!("the scan view did not settle:\n{}", self.screen());
    }

    pub fn press(&mut self, code: KeyCode) -> bool {
        self.view
            .handle_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    pub fn screen(&self) -> String {
        let buffer = self.terminal.backend().buffer();
        let width = buffer.area.width as usize;
        buffer
            .content
            .chunks(width)
            .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn shows_picture(&self) -> bool {
        self.shows_colour(|_| true)
    }

    /// Whether some cell of the picture has a colour (foreground or background) that `wanted` likes.
    pub fn shows_colour(&self, wanted: impl Fn((u8, u8, u8)) -> bool) -> bool {
        use ratatui::style::Color;
        self.terminal.backend().buffer().content.iter().any(|c| {
            [c.fg, c.bg]
                .iter()
                .any(|colour| matches!(*colour, Color::Rgb(r, g, b) if wanted((r, g, b))))
        })
    }
}

#[test]
fn the_view_draws_the_photo_and_its_facts_and_follows_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let record = folder_with_photo(dir.path(), 640, 320);
    let mut ui = ScanHarness::new(dir.path(), record, 100, 30);
    let screen = ui.settle();
    assert!(ui.shows_picture(), "{screen}");
    for text in [
        "crackscope scan  scan-out · class Positive · threshold 0.5 · 1 photo",
        "0.16  wall.png",
        "wall.png 640×320 · zoom ×1 · view x 0-640 y 0-320 · crack 0.16% · windows 1/2",
        "wall.png · map + windows + regions",
        "n/p photo",
    ] {
        assert!(screen.contains(text), "{text:?} missing:\n{screen}");
    }
    ui.press(KeyCode::Char('+'));
    ui.press(KeyCode::Char('m'));
    ui.press(KeyCode::Char('w'));
    ui.press(KeyCode::Char('r'));
    let screen = ui.settle();
    assert!(screen.contains("zoom ×2 · view x 160-480"), "{screen}");
    assert!(screen.contains("photo only"), "{screen}");
    let job = ui.view.picture.as_ref().unwrap().0;
    assert_eq!(
        job.viewport,
        ui.view.viewport(),
        "the picture follows the view"
    );
}

#[test]
fn a_photo_that_cannot_be_opened_says_why_and_the_next_one_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let mut record = folder_with_photo(dir.path(), 64, 64);
    let mut broken = record.photos[0].clone();
    broken.mask = "gone-mask.png".into();
    broken.crack_fraction = 0.9; // ranked first
    record.photos.push(broken);
    let mut ui = ScanHarness::new(dir.path(), record, 100, 30);
    let screen = ui.settle();
    assert!(matches!(ui.view.photo_state, PhotoState::Failed(_)));
    assert!(
        screen.contains("cannot show this photo") && screen.contains("gone-mask.png"),
        "{screen}"
    );
    ui.press(KeyCode::Char('n'));
    ui.settle();
    assert_eq!(ui.view.photo_state, PhotoState::Ready(None));
    assert!(ui.shows_picture());
}

#[test]
fn region_outlines_show_on_the_picture_and_the_jump_key_names_the_region() {
    let dir = tempfile::tempdir().unwrap();
    let record = folder_with_photo(dir.path(), 640, 320);
    let mut ui = ScanHarness::new(dir.path(), record, 100, 30);
    ui.settle();
    let cyan = |(r, g, b): (u8, u8, u8)| r < 60 && g > 200 && b > 200;
    assert!(ui.shows_colour(cyan), "the region's outline is drawn");
    ui.press(KeyCode::Char(']'));
    let screen = ui.settle();
    for text in [
        "region 1 of 1, area 320 px",
        "crack 0.16% · windows 1/2 · region 1 of 1",
    ] {
        assert!(screen.contains(text), "{text:?} missing:\n{screen}");
    }
    ui.press(KeyCode::Char('r'));
    let screen = ui.settle();
    assert!(screen.contains("wall.png · map + windows ─"), "{screen}");
    assert!(ui.shows_picture());
    assert!(!ui.shows_colour(cyan), "outlines off");
}

#[test]
fn a_narrow_footer_drops_whole_keys_but_keeps_help_and_quit() {
    let dir = tempfile::tempdir().unwrap();
    let record = folder_with_photo(dir.path(), 64, 64);
    let mut ui = ScanHarness::new(dir.path(), record, 80, 24);
    let screen = ui.settle();
    let footer = screen.lines().last().unwrap().trim_end();
    assert!(
        footer.starts_with("←→↑↓ pan  +/- zoom  n/p photo  [/] region"),
        "{footer}"
    );
    assert!(footer.ends_with("? help  q quit"), "{footer}");
    let wide = ScanHarness::new(dir.path(), ui.view.record.clone(), 140, 24).settle();
    assert!(
        wide.contains("w windows  r regions  t errors  g sweep  l/L/y/. label  ? help"),
        "{wide}"
    );
}

#[test]
fn a_photo_opened_ahead_is_drawn_without_being_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut record = super::render::tests::folder_with_photo(dir.path(), 64, 48);
    record.photos.push(record.photos[0].clone());
    let mut harness = ScanHarness::new(dir.path(), record.clone(), 60, 20);
    harness.settle();
    harness.press(KeyCode::Char('n'));
    let job = harness.view.wanted().unwrap();
    let mut painter = Painter::new(dir.path().to_path_buf(), record, Graphics::halfblocks());
    assert!(
        painter.take(PainterJob::OpenAhead(job.photo)).is_empty(),
        "no answer"
    );
    // Gone from the disk now: only the photo held ahead can give its picture.
    std::fs::remove_file(dir.path().join("wall.png")).unwrap();
    let replies = painter.take(PainterJob::Draw(job));
    match &replies[..] {
        [Reply::Opened { photo, result }, Reply::Drawn { result: drawn, .. }] => {
            assert_eq!(*photo, job.photo);
            assert_eq!(result, &Ok(None), "opened again, without the photo");
            assert!(drawn.is_ok());
        }
        _ => panic!("{} replies", replies.len()),
    }
}
