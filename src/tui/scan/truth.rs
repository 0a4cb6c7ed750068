//! The scan view's comparison with the true masks of a `scan --masks`: the errors layer (`t`:
//! the photo in grey, each pixel and window by verdict, in the colours of `scan::verdict`, the same
//! as the overlay PNGs) and the threshold sweep panel (`g`: precision, recall and F1 per threshold
//! from scan.json, the scan's threshold marked). Only the scan folder's files and the true masks
//! it names are read.

use anyhow::{Context, Result};
use image::{GrayImage, Rgb};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use crate::scan::map::WindowScore;
use crate::scan::output::{PhotoRecord, ScanRecord};
use crate::scan::sweep::Sweep;
use crate::scan::verdict::{self, Verdict};

use super::view::ScanView;

/// A photo's verdicts against its true mask, ready to draw at any zoom.
pub struct TruthLayers {
    /// Pixel verdict codes, halved like the photo (keeping the largest code: misses and false
    /// alarms stay visible zoomed out).
    pub levels: Vec<GrayImage>,
    /// Each window's verdict, in the record's window order.
    pub windows: Vec<Verdict>,
}

/// Why the errors layer cannot be shown for a scan (none: it can).
pub fn unavailable(record: &ScanRecord) -> Option<&'static str> {
    match &record.settings {
        Some(s) if s.masks.is_some() => None,
        _ => Some("this scan had no true masks: scan with --masks DIR to see hits, misses and false alarms"),
    }
}

impl TruthLayers {
    /// The verdicts of `photo` against its true mask (from the folder the scan recorded), with
    /// `predicted` the scan's mask; None when the scan had no masks.
    pub fn load(
        record: &ScanRecord,
        photo: &PhotoRecord,
        predicted: &GrayImage,
        pyramid: impl FnOnce(GrayImage) -> Vec<GrayImage>,
    ) -> Result<Option<TruthLayers>> {
        let Some(settings) = &record.settings else {
            return Ok(None);
        };
        let Some(masks) = &settings.masks else {
            return Ok(None);
        };
        let size = (photo.width, photo.height);
        let truth = crate::scan::photo::true_mask(masks, &photo.photo, size)
            .with_context(|| format!("the true mask of {}", photo.name()))?;
        let tolerance = settings.tolerance.unwrap_or_default();
        let windows = photo
            .windows
            .iter()
            .map(|w| {
                let score = WindowScore {
                    x: w.x,
                    y: w.y,
                    size: w.size,
                    probability: w.probability,
                    score: w.score,
                };
                verdict::window_verdict(&truth, &score, record.threshold)
            })
            .collect();
        let pixels = verdict::pixel_verdicts(predicted, &truth, tolerance);
        Ok(Some(TruthLayers {
            levels: pyramid(pixels),
            windows,
        }))
    }

    /// The colour of the verdict that wins among the pixels of level `level` in columns `xs` and
    /// rows `ys` (inclusive): an output pixel covers up to two of the level's each way, and a
    /// one-pixel crack must not fall between the samples.
    pub fn tint(&self, level: usize, xs: (usize, usize), ys: (usize, usize)) -> Option<Rgb<u8>> {
        let codes = self.levels.get(level)?;
        let width = codes.width() as usize;
        let raw = codes.as_raw();
        let best = (ys.0..=ys.1)
            .flat_map(|y| (xs.0..=xs.1).map(move |x| raw[y * width + x]))
            .max()?;
        Verdict::from_code(best).colour()
    }
}

/// The photo under the verdicts: its grey, dimmed as the overlay PNGs draw it.
pub fn grey(rgb: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = rgb.map(f32::from);
    let v = (verdict::GREY_DIM * (0.299 * r + 0.587 * g + 0.114 * b)).round() as u8;
    [v; 3]
}

/// The legend of the errors layer, for the note line and the help.
pub const LEGEND: &str =
    "errors: sky blue hit, yellow miss, vermillion false alarm, white not scored";

fn cell(value: Option<f64>) -> String {
    value.map_or("   —  ".into(), |v| format!("{v:6.3}"))
}

/// The sweep as table lines: threshold, window P R F1, pixel P R F1 over all photos, this photo's
/// window and pixel F1; the scan's threshold marked.
pub fn sweep_lines(record: &ScanRecord, photo: Option<&PhotoRecord>) -> Vec<String> {
    let Some(all) = &record.sweep else {
        return vec![match unavailable(record) {
            Some(why) => why.to_string(),
            None => "this scan.json has no threshold sweep (written before sweeps were counted, \
                     or a photo lacks one): scan again to sweep"
                .to_string(),
        }];
    };
    let here = photo.and_then(|p| p.sweep.as_ref());
    let mut lines = vec![
        "              all photos                                  this photo".to_string(),
        "  threshold   win P  win R  win F1   px P   px R  px F1    win F1  px F1".to_string(),
    ];
    let mine = here.map(Sweep::scores);
    for (i, s) in all.scores().iter().enumerate() {
        let mark = if s.threshold == record.threshold {
            "▶"
        } else {
            " "
        };
        let (wf, pf) = mine
            .as_ref()
            .and_then(|m| m.get(i))
            .map_or((None, None), |m| (m.windows.f1, m.pixels.f1));
        lines.push(format!(
            "{mark} {:>8.2}  {} {} {}  {} {} {}    {} {}",
            s.threshold,
            cell(s.windows.precision),
            cell(s.windows.recall),
            cell(s.windows.f1),
            cell(s.pixels.precision),
            cell(s.pixels.recall),
            cell(s.pixels.f1),
            cell(wf),
            cell(pf),
        ));
    }
    lines
}

/// The sweep panel over the picture.
pub fn draw_sweep(frame: &mut Frame, area: Rect, view: &ScanView) {
    let theme = &view.theme;
    let lines: Vec<Line> = sweep_lines(&view.record, view.photo())
        .into_iter()
        .map(|text| {
            if text.starts_with('▶') {
                Line::styled(text, theme.selected())
            } else {
                Line::from(Span::raw(text))
            }
        })
        .collect();
    let width = 78.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = crate::tui::views::centered(area, width, height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(" threshold sweep (g closes) ")
                .title_style(theme.title()),
        ),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use super::super::render::tests::folder_with_photo;
    use super::super::tests::ScanHarness;
    use super::*;
    use crate::scan::output::ScanSettings;
    use crate::scan::sweep::{photo_sweep, thresholds};
    use crossterm::event::KeyCode;

    /// The folder of `folder_with_photo` (its mask a line at x = 320) scored against a true mask
    /// with a line at x = 100: the scan's line is a false alarm, the true one a miss.
    fn scored(dir: &std::path::Path) -> ScanRecord {
        let mut record = folder_with_photo(dir, 640, 320);
        let masks = dir.join("truth");
        std::fs::create_dir(&masks).unwrap();
        GrayImage::from_fn(640, 320, |x, _| image::Luma([255 * u8::from(x == 100)]))
            .save(masks.join("wall.png"))
            .unwrap();
        record.settings = Some(ScanSettings {
            model: "/models/m.safetensors".into(),
            model_sha256: "0".repeat(64),
            window: 32,
            stride: 16,
            masks: Some(masks),
            tolerance: Some(2),
            scales: None,
            descriptors: Default::default(),
        });
        record
    }

    fn vermillion((r, g, b): (u8, u8, u8)) -> bool {
        r > 150 && g < 110 && b < 50
    }

    fn yellow((r, g, b): (u8, u8, u8)) -> bool {
        r > 150 && g > 150 && b < 90
    }

    #[test]
    fn t_shows_misses_and_false_alarms_in_their_colours_over_grey() {
        let dir = tempfile::tempdir().unwrap();
        let record = scored(dir.path());
        let mut ui = ScanHarness::new(dir.path(), record, 100, 30);
        ui.settle();
        assert!(!ui.shows_colour(yellow), "no errors layer at first");
        ui.press(KeyCode::Char('t'));
        let screen = ui.settle();
        assert!(ui.view.toggles.truth);
        assert!(
            screen.contains("wall.png · windows + regions + errors"),
            "{screen}"
        );
        assert!(screen.contains("sky blue hit, yellow miss"), "{screen}");
        assert!(ui.shows_colour(yellow), "the true line, missed:\n{screen}");
        assert!(
            ui.shows_colour(vermillion),
            "the scan's line, a false alarm"
        );
        // The map's colours are gone: the photo is grey under the verdicts.
        assert!(
            !ui.shows_colour(|(r, g, b)| b > 200 && r < 50 && g < 50),
            "no jet blue"
        );
        ui.press(KeyCode::Char('t'));
        ui.settle();
        assert!(!ui.shows_colour(yellow), "off again");
    }

    #[test]
    fn without_masks_t_says_why_and_g_says_there_is_no_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let record = folder_with_photo(dir.path(), 64, 64);
        let mut ui = ScanHarness::new(dir.path(), record, 100, 30);
        ui.settle();
        ui.press(KeyCode::Char('t'));
        let screen = ui.settle();
        assert!(!ui.view.toggles.truth);
        assert!(screen.contains("this scan had no true masks"), "{screen}");
        ui.press(KeyCode::Char('g'));
        let screen = ui.settle();
        assert!(screen.contains("threshold sweep (g closes)"), "{screen}");
        assert!(screen.contains("this scan had no true masks"), "{screen}");
    }

    #[test]
    fn g_shows_the_sweep_with_the_scan_threshold_marked() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = scored(dir.path());
        let truth = GrayImage::from_fn(64, 64, |x, _| image::Luma([255 * u8::from(x == 30)]));
        let map = crate::scan::map::CrackMap {
            width: 64,
            height: 64,
            windows: Vec::new(),
            rows: 4,
            cols: 4,
            cells: (0..16).map(|i| i as f32 / 16.0).collect(),
            descriptors: Default::default(),
        };
        let sweep = photo_sweep(&map, &truth, 2, &thresholds(0.5));
        record.photos[0].sweep = Some(sweep.clone());
        record.sweep = Some(sweep);
        let lines = sweep_lines(&record, record.photos.first());
        assert_eq!(lines.len(), 2 + 19);
        let marked: Vec<&String> = lines.iter().filter(|l| l.starts_with('▶')).collect();
        assert_eq!(marked.len(), 1);
        assert!(marked[0].contains("0.50"), "{}", marked[0]);
        let mut ui = ScanHarness::new(dir.path(), record, 100, 30);
        ui.settle();
        ui.press(KeyCode::Char('g'));
        let screen = ui.settle();
        assert!(screen.contains("▶     0.50"), "{screen}");
        assert!(
            !ui.shows_picture(),
            "the picture waits while the panel is open"
        );
        ui.press(KeyCode::Char('g'));
        ui.settle();
        assert!(ui.shows_picture());
    }
}
