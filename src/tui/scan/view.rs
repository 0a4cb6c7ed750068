//! The scan view's state: which photo of a finished scan is shown, how far zoomed in, where, with
//! which layers, and which of its crack regions was last jumped to. Keys change it through
//! [`ScanView::handle_key`]; the drawing (`draw`) only reads it and the loop (`dashboard`) asks
//! for pictures of what it describes. Nothing here touches the terminal or decodes a picture, so
//! tests drive it directly.

use std::path::PathBuf;

use crossterm::event::{KeyEvent, KeyEventKind};
use ratatui::layout::Size;

use super::render::{Toggles, Viewport};
use crate::scan::output::{PhotoRecord, ScanRecord};
use crate::tui::keymap::{self, Action, View};
use crate::tui::picture::Picture;
use crate::tui::theme::Theme;

/// Zoomed in at most this many output pixels per photo pixel: enough to see single pixels.
pub const MAX_SCALE: f64 = 8.0;
/// A pan moves the view by this share of its width or height.
const PAN_SHARE: f64 = 0.25;
/// A crack region jumped to is zoomed until its box would fill more than this share of the
/// view's width or height (zoom steps double, so it ends up filling 40 to 80 % of the view's
/// width or height, unless the zoom limits stop it first).
const REGION_FILL: f64 = 0.8;

/// What a frame needs drawn: a photo, a part of it, at a size, with layers. Pictures are made for
/// exactly this and kept while it stays the same.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderJob {
    /// Index into the record's photos.
    pub photo: usize,
    pub viewport: Viewport,
    /// Pixels of the picture.
    pub pixels: (u32, u32),
    /// Cells it is drawn in.
    pub cells: Size,
    pub toggles: Toggles,
    /// The crack region jumped to, outlined thicker.
    pub region: Option<usize>,
    /// The window being labelled, outlined in its own colour.
    pub focus: Option<crate::scan::labels::WindowKey>,
}

/// How the current photo's opening went.
#[derive(Debug, Clone, PartialEq)]
pub enum PhotoState {
    Loading,
    /// Open; with a note when the overlay stands in for a missing photo.
    Ready(Option<String>),
    Failed(String),
}

pub struct ScanView {
    pub folder: PathBuf,
    pub record: ScanRecord,
    /// Photo indices, most cracked first (as the scan's table ranks them).
    pub order: Vec<usize>,
    /// Position in `order`.
    pub cursor: usize,
    /// Zoom steps beyond "whole photo"; each doubles the magnification.
    pub zoom: u32,
    /// Centre of the view, in photo pixels.
    pub centre: (f64, f64),
    pub toggles: Toggles,
    /// The crack region last jumped to in this photo (index into its `region_boxes`).
    pub region: Option<usize>,
    /// Pixels and cells of the picture area, as the last frame laid it out.
    pub area: Option<(u32, u32, Size)>,
    /// Pixels per terminal cell (the graphics protocol's idea of the font).
    pub cell_pixels: (u32, u32),
    pub help: bool,
    /// The threshold sweep panel is open (`truth::draw_sweep`).
    pub sweep: bool,
    pub message: Option<String>,
    pub photo_state: PhotoState,
    /// The last picture made, with what it shows.
    pub picture: Option<(RenderJob, Picture)>,
    pub theme: Theme,
    /// The scan's labels and the labelling session (`labelling`).
    pub labelling: super::labelling::Labelling,
}

impl ScanView {
    pub fn new(folder: PathBuf, record: ScanRecord, theme: Theme) -> ScanView {
        let mut order: Vec<usize> = (0..record.photos.len()).collect();
        order.sort_by(|&a, &b| {
            record.photos[b]
                .crack_fraction
                .total_cmp(&record.photos[a].crack_fraction)
        });
        let mut view = ScanView {
            folder,
            record,
            order,
            cursor: 0,
            zoom: 0,
            centre: (0.0, 0.0),
            toggles: Toggles::default(),
            region: None,
            area: None,
            cell_pixels: (10, 20),
            help: false,
            sweep: false,
            message: None,
            photo_state: PhotoState::Loading,
            picture: None,
            theme,
            labelling: Default::default(),
        };
        view.reset_view();
        view
    }

    /// Index of the photo shown, if the scan has any.
    pub fn photo_index(&self) -> Option<usize> {
        self.order.get(self.cursor).copied()
    }

    pub fn photo(&self) -> Option<&PhotoRecord> {
        self.photo_index().map(|i| &self.record.photos[i])
    }

    fn photo_size(&self) -> (f64, f64) {
        self.photo()
            .map(|p| (p.width as f64, p.height as f64))
            .unwrap_or((1.0, 1.0))
    }

    /// Output pixels per photo pixel with the whole photo in the area.
    fn fit_scale(&self) -> f64 {
        let (w, h) = self.photo_size();
        match self.area {
            Some((aw, ah, _)) if aw > 0 && ah > 0 => (aw as f64 / w).min(ah as f64 / h),
            _ => 1.0,
        }
    }

    /// Output pixels per photo pixel at the current zoom.
    pub fn scale(&self) -> f64 {
        self.fit_scale() * f64::from(1u32 << self.zoom.min(30))
    }

    /// The most zoom steps that stay within [`MAX_SCALE`] (at least none).
    pub fn max_zoom(&self) -> u32 {
        let room = MAX_SCALE / self.fit_scale();
        if room <= 1.0 {
            0
        } else {
            room.log2().floor() as u32
        }
    }

    /// Photo pixels in view at `zoom` steps: the area's proportions, never more than the photo.
    pub(super) fn view_size_at(&self, zoom: u32) -> (f64, f64) {
        let (w, h) = self.photo_size();
        let scale = self.fit_scale() * f64::from(1u32 << zoom.min(30));
        match self.area {
            Some((aw, ah, _)) if aw > 0 && ah > 0 => {
                ((aw as f64 / scale).min(w), (ah as f64 / scale).min(h))
            }
            _ => (w, h),
        }
    }

    /// The part of the photo in view: the area's proportions at the current scale, never beyond
    /// the photo's edges.
    pub fn viewport(&self) -> Viewport {
        let (w, h) = self.photo_size();
        let (width, height) = self.view_size_at(self.zoom);
        let x = (self.centre.0 - width / 2.0).clamp(0.0, w - width);
        let y = (self.centre.1 - height / 2.0).clamp(0.0, h - height);
        Viewport {
            x,
            y,
            width,
            height,
        }
    }

    /// Keeps the centre where the viewport can be: half a view from each edge.
    pub(super) fn clamp_centre(&mut self) {
        let (w, h) = self.photo_size();
        let view = self.viewport();
        let clamp = |c: f64, half: f64, len: f64| {
            if half * 2.0 >= len {
                len / 2.0
            } else {
                c.clamp(half, len - half)
            }
        };
        self.centre = (
            clamp(self.centre.0, view.width / 2.0, w),
            clamp(self.centre.1, view.height / 2.0, h),
        );
    }

    /// Whole photo, centred.
    fn reset_view(&mut self) {
        let (w, h) = self.photo_size();
        self.zoom = 0;
        self.centre = (w / 2.0, h / 2.0);
    }

    /// Takes in the picture area the last frame laid out (cells), in pixels of the graphics
    /// protocol; zoom and centre are kept within what the new area allows.
    pub fn set_area(&mut self, cells: Size) {
        let pixels = (
            cells.width as u32 * self.cell_pixels.0,
            cells.height as u32 * self.cell_pixels.1,
        );
        if self.area.map(|(w, h, _)| (w, h)) == Some(pixels) {
            return;
        }
        self.area = Some((pixels.0, pixels.1, cells));
        self.zoom = self.zoom.min(self.max_zoom());
        self.clamp_centre();
    }

    /// The picture the current state calls for, once the area is known.
    pub fn wanted(&self) -> Option<RenderJob> {
        let photo = self.photo_index()?;
        let (_, _, cells) = self.area?;
        if cells.width == 0 || cells.height == 0 {
            return None;
        }
        let viewport = self.viewport();
        let scale = self.scale();
        let pixels = (
            ((viewport.width * scale).round() as u32).max(1),
            ((viewport.height * scale).round() as u32).max(1),
        );
        Some(RenderJob {
            photo,
            viewport,
            pixels,
            cells,
            toggles: self.toggles,
            region: self.region,
            focus: self
                .labelling
                .current
                .filter(|w| self.labelling.active && w.photo == photo),
        })
    }

    /// Reacts to a key; `true` ends the view.
    pub fn handle_key(&mut self, key: KeyEvent) -> bool {
        if key.kind == KeyEventKind::Release {
            return false;
        }
        if self.help {
            // Any key closes the help, as in the training dashboard.
            self.help = false;
            return false;
        }
        let action = keymap::action_for(View::Scan, key);
        self.message = None;
        let Some(action) = action else {
            return false;
        };
        match action {
            Action::Quit => return true,
            Action::Help => self.help = true,
            Action::PanLeft => self.pan(-1.0, 0.0),
            Action::PanRight => self.pan(1.0, 0.0),
            Action::PanUp => self.pan(0.0, -1.0),
            Action::PanDown => self.pan(0.0, 1.0),
            Action::ZoomIn => {
                if self.zoom < self.max_zoom() {
                    self.zoom += 1;
                    self.clamp_centre();
                } else {
                    self.message = Some("zoomed in as far as it goes".into());
                }
            }
            Action::ZoomOut => {
                if self.zoom > 0 {
                    self.zoom -= 1;
                    self.clamp_centre();
                } else {
                    self.message = Some("the whole photo is shown".into());
                }
            }
            Action::ZoomFit => self.reset_view(),
            Action::Next => self.go_to(self.cursor as isize + 1),
            Action::Previous => self.go_to(self.cursor as isize - 1),
            Action::First => self.go_to(0),
            Action::Last => self.go_to(self.order.len() as isize - 1),
            Action::ToggleMap => self.toggles.map = !self.toggles.map,
            Action::ToggleMask => self.toggles.mask = !self.toggles.mask,
            Action::ToggleWindows => self.toggles.windows = !self.toggles.windows,
            Action::ToggleRegions => self.toggles.regions = !self.toggles.regions,
            Action::ToggleTruth => match super::truth::unavailable(&self.record) {
                Some(why) => self.message = Some(why.into()),
                None => self.toggles.truth = !self.toggles.truth,
            },
            Action::ToggleSweep => self.sweep = !self.sweep,
            Action::NextRegion => self.jump_to_region(true),
            Action::PreviousRegion => self.jump_to_region(false),
            a if super::labelling::is_labelling(a) => self.label_action(a),
            _ => {}
        }
        false
    }

    fn pan(&mut self, dx: f64, dy: f64) {
        let view = self.viewport();
        self.centre.0 += dx * PAN_SHARE * view.width;
        self.centre.1 += dy * PAN_SHARE * view.height;
        self.clamp_centre();
    }

    pub(super) fn go_to(&mut self, position: isize) {
        if self.order.is_empty() {
            return;
        }
        let last = self.order.len() - 1;
        let position = position.clamp(0, last as isize) as usize;
        if position == self.cursor {
            self.message = Some(if position == 0 {
                "this is the most cracked photo (the first)".into()
            } else {
                "this is the least cracked photo (the last)".into()
            });
            return;
        }
        self.cursor = position;
        self.region = None;
        self.photo_state = PhotoState::Loading;
        self.reset_view();
        self.clamp_centre();
    }

    /// Steps to the next (or previous) crack region of the photo, largest first and round again
    /// after the last; centres the view on its box and zooms in until the box fills most of the
    /// view (within the zoom limits), and says which region it is.
    fn jump_to_region(&mut self, forward: bool) {
        let Some(photo) = self.photo() else { return };
        let (count, boxes) = (photo.regions, photo.region_boxes.len());
        if boxes == 0 {
            self.message = Some(if count == 0 {
                "no crack regions in this photo".into()
            } else {
                format!(
                    "this scan.json counts {count} regions but has no boxes (an older scan): \
                     scan again to outline them"
                )
            });
            return;
        }
        let i = match (self.region, forward) {
            (None, true) => 0,
            (None, false) => boxes - 1,
            (Some(i), true) => (i + 1) % boxes,
            (Some(i), false) => (i + boxes - 1) % boxes,
        };
        let b = photo.region_boxes[i];
        let (bw, bh) = (f64::from(b.width), f64::from(b.height));
        let mut zoom = 0;
        if self.area.is_some() {
            while zoom < self.max_zoom() {
                let (vw, vh) = self.view_size_at(zoom + 1);
                if bw > REGION_FILL * vw || bh > REGION_FILL * vh {
                    break;
                }
                zoom += 1;
            }
        }
        let mut message = format!("region {} of {count}, area {} px", i + 1, b.area);
        if boxes < count {
            message += &format!(" (the {boxes} largest are outlined)");
        }
        self.region = Some(i);
        // A region jumped to is shown, even when the outlines were turned off.
        self.toggles.regions = true;
        self.zoom = zoom;
        self.centre = (f64::from(b.x) + bw / 2.0, f64::from(b.y) + bh / 2.0);
        self.clamp_centre();
        self.message = Some(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::output::{RegionRecord, ScanRecord};
    use crossterm::event::{KeyCode, KeyModifiers};

    fn photo(name: &str, width: u32, height: u32, crack_fraction: f64) -> PhotoRecord {
        PhotoRecord {
            crack_fraction,
            ..PhotoRecord::for_test(name, width, height)
        }
    }

    /// Three photos; the area is 100 x 50 cells of 10 x 20 pixels (1000 x 1000 pixels).
    fn view() -> ScanView {
        let record = ScanRecord::for_test(vec![
            photo("a.jpg", 4000, 2000, 0.01),
            photo("b.jpg", 500, 500, 0.30),
            photo("c.jpg", 100, 100, 0.0),
        ]);
        let mut view = ScanView::new("scan".into(), record, Theme::new(false));
        view.set_area(Size::new(100, 50));
        view
    }

    fn press(view: &mut ScanView, code: KeyCode) -> bool {
        view.handle_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn photos_are_ranked_by_crack_fraction_and_paging_stops_at_the_ends() {
        let mut v = view();
        let names = |v: &ScanView| v.photo().unwrap().name();
        assert_eq!(names(&v), "b.jpg");
        press(&mut v, KeyCode::Char('n'));
        assert_eq!(names(&v), "a.jpg");
        assert_eq!(v.photo_state, PhotoState::Loading, "a new photo loads");
        press(&mut v, KeyCode::PageDown);
        assert_eq!(names(&v), "c.jpg");
        press(&mut v, KeyCode::Char('n'));
        assert_eq!(names(&v), "c.jpg");
        assert!(v.message.as_deref().unwrap().contains("last"));
        press(&mut v, KeyCode::Home);
        assert_eq!(names(&v), "b.jpg");
        press(&mut v, KeyCode::Char('p'));
        assert!(v.message.as_deref().unwrap().contains("first"));
    }

    #[test]
    fn the_whole_photo_fits_first_and_zoom_keeps_the_centre() {
        let mut v = view();
        press(&mut v, KeyCode::Char('n')); // a.jpg, 4000 x 2000 in 1000 x 1000 pixels
        let whole = v.viewport();
        assert_eq!(
            (whole.x, whole.y, whole.width, whole.height),
            (0.0, 0.0, 4000.0, 2000.0)
        );
        assert!(close(v.scale(), 0.25));
        // Move off-centre first, so keeping the centre means something.
        press(&mut v, KeyCode::Char('+'));
        press(&mut v, KeyCode::Right);
        let before = v.viewport();
        let centre = (
            before.x + before.width / 2.0,
            before.y + before.height / 2.0,
        );
        press(&mut v, KeyCode::Char('+'));
        let after = v.viewport();
        assert!(close(after.width, before.width / 2.0));
        assert!(close(after.x + after.width / 2.0, centre.0));
        assert!(close(after.y + after.height / 2.0, centre.1));
        press(&mut v, KeyCode::Char('-'));
        assert_eq!(v.viewport(), before, "out again: the same view");
        // 0.25 px per photo px up to 8: five doublings, then no further.
        for _ in 0..10 {
            press(&mut v, KeyCode::Char('='));
        }
        assert_eq!(v.zoom, 5);
        assert!(close(v.scale(), 8.0));
        assert!(v.message.as_deref().unwrap().contains("as far"));
        press(&mut v, KeyCode::Char('0'));
        assert_eq!(v.viewport(), whole);
        press(&mut v, KeyCode::Char('-'));
        assert!(v.message.as_deref().unwrap().contains("whole photo"));
    }

    #[test]
    fn panning_stops_at_the_edges() {
        let mut v = view();
        press(&mut v, KeyCode::Char('n')); // a.jpg
        press(&mut v, KeyCode::Char('+'));
        press(&mut v, KeyCode::Char('+')); // 1 px per photo px: a 1000 x 1000 view
        let start = v.viewport();
        assert_eq!((start.width, start.height), (1000.0, 1000.0));
        press(&mut v, KeyCode::Right);
        assert!(
            close(v.viewport().x, start.x + 250.0),
            "a quarter of the view"
        );
        for _ in 0..40 {
            press(&mut v, KeyCode::Right);
            press(&mut v, KeyCode::Down);
        }
        let corner = v.viewport();
        assert_eq!((corner.x, corner.y), (3000.0, 1000.0));
        // One step back leaves the edge at once (no hidden overshoot to pay back).
        press(&mut v, KeyCode::Left);
        assert!(close(v.viewport().x, 2750.0));
        for _ in 0..40 {
            press(&mut v, KeyCode::Left);
            press(&mut v, KeyCode::Up);
        }
        let origin = v.viewport();
        assert_eq!((origin.x, origin.y), (0.0, 0.0));
        // Zoomed out, there is nothing to pan.
        press(&mut v, KeyCode::Char('0'));
        press(&mut v, KeyCode::Left);
        assert_eq!(v.viewport().x, 0.0);
    }

    #[test]
    fn toggles_help_and_quit() {
        let mut v = view();
        assert_eq!(v.toggles, Toggles::default());
        press(&mut v, KeyCode::Char('m'));
        press(&mut v, KeyCode::Char('k'));
        press(&mut v, KeyCode::Char('w'));
        assert_eq!(
            v.toggles,
            Toggles {
                map: false,
                mask: true,
                windows: false,
                regions: true,
                truth: false,
            }
        );
        let job = v.wanted().unwrap();
        assert_eq!(job.toggles, v.toggles);
        assert_eq!(job.cells, Size::new(100, 50));
        press(&mut v, KeyCode::Char('?'));
        assert!(v.help);
        assert!(!press(&mut v, KeyCode::Char('m')), "closes the help only");
        assert!(!v.help && !v.toggles.map);
        assert!(press(&mut v, KeyCode::Char('q')));
    }

    fn boxed(x: u32, y: u32, width: u32, height: u32, area: u64) -> RegionRecord {
        RegionRecord {
            x,
            y,
            width,
            height,
            area,
        }
    }

    /// The view on a.jpg (4000 x 2000, 0.25 px per photo px at fit, up to 5 zoom steps) with
    /// these region boxes (largest first) out of `count`.
    fn view_with_regions(boxes: Vec<RegionRecord>, count: usize) -> ScanView {
        let mut v = view();
        let a = v.order[1];
        v.record.photos[a].region_boxes = boxes;
        v.record.photos[a].regions = count;
        press(&mut v, KeyCode::Char('n'));
        assert_eq!(v.photo().unwrap().name(), "a.jpg");
        v
    }

    fn contains(view: Viewport, b: RegionRecord) -> bool {
        view.x <= f64::from(b.x)
            && view.y <= f64::from(b.y)
            && f64::from(b.x + b.width) <= view.x + view.width
            && f64::from(b.y + b.height) <= view.y + view.height
    }

    #[test]
    fn region_jumps_go_largest_first_round_both_ways_and_say_where() {
        let boxes = vec![
            boxed(2000, 1000, 500, 100, 9000),
            boxed(0, 0, 2, 2, 4),
            boxed(50, 100, 3900, 100, 3),
        ];
        let mut v = view_with_regions(boxes.clone(), 3);
        let visit = |v: &mut ScanView, key: char| {
            press(v, KeyCode::Char(key));
            v.region
        };
        assert_eq!(visit(&mut v, ']'), Some(0));
        assert_eq!(v.wanted().unwrap().region, Some(0), "drawn thicker");
        assert_eq!(v.message.as_deref(), Some("region 1 of 3, area 9000 px"));
        let facts = super::super::draw::facts(&v, v.photo().unwrap());
        assert!(facts.contains("region 1 of 3"), "{facts}");
        assert_eq!(visit(&mut v, ']'), Some(1));
        assert_eq!(visit(&mut v, ']'), Some(2));
        assert_eq!(visit(&mut v, ']'), Some(0), "round again after the last");
        assert_eq!(visit(&mut v, '['), Some(2), "and back before the first");
        assert_eq!(v.message.as_deref(), Some("region 3 of 3, area 3 px"));
        // Another photo starts from its own largest region.
        press(&mut v, KeyCode::Char('n'));
        assert_eq!(v.region, None);
        press(&mut v, KeyCode::Char('p'));
        assert_eq!(
            visit(&mut v, '['),
            Some(2),
            "backwards starts at the smallest"
        );
    }

    #[test]
    fn a_region_jumped_to_is_centred_and_fills_the_view_within_the_zoom_limits() {
        let boxes = vec![
            boxed(2000, 1000, 500, 100, 9000),
            boxed(0, 0, 2, 2, 4),
            boxed(50, 100, 3900, 100, 3),
        ];
        let mut v = view_with_regions(boxes.clone(), 3);
        // 500 px wide: at 1 px per photo px (zoom 2) it fills half the 1000 px view; one more
        // step would leave it more than 80 % of a 500 px view.
        press(&mut v, KeyCode::Char(']'));
        assert_eq!(v.zoom, 2);
        let view = v.viewport();
        assert!(close(view.x + view.width / 2.0, 2250.0));
        assert!(close(view.y + view.height / 2.0, 1050.0));
        assert!(contains(view, boxes[0]));
        // A 2 px speck in the corner: zoomed in as far as the view goes, the view at the edge.
        press(&mut v, KeyCode::Char(']'));
        assert_eq!(v.zoom, v.max_zoom());
        assert!(close(v.scale(), MAX_SCALE));
        let view = v.viewport();
        assert_eq!((view.x, view.y), (0.0, 0.0));
        assert!(contains(view, boxes[1]));
        // Nearly as wide as the photo: the whole photo.
        press(&mut v, KeyCode::Char(']'));
        assert_eq!(v.zoom, 0);
        assert!(contains(v.viewport(), boxes[2]));
        // Before the area is known there is nothing to fit: the whole photo, centred on the box.
        let mut no_area = ScanView::new("scan".into(), v.record.clone(), Theme::new(false));
        no_area.cursor = v.cursor;
        press(&mut no_area, KeyCode::Char(']'));
        assert_eq!(no_area.zoom, 0);
    }

    #[test]
    fn photos_without_region_boxes_say_why_and_stay_put() {
        let mut v = view(); // b.jpg: no regions
        press(&mut v, KeyCode::Char('+'));
        let before = v.viewport();
        press(&mut v, KeyCode::Char(']'));
        assert_eq!(v.message.as_deref(), Some("no crack regions in this photo"));
        press(&mut v, KeyCode::Char('['));
        assert_eq!(v.region, None);
        assert_eq!(v.viewport(), before);
        // A scan.json from before boxes were kept counts regions it cannot show.
        let mut old = view_with_regions(Vec::new(), 7);
        press(&mut old, KeyCode::Char(']'));
        let message = old.message.clone().unwrap();
        assert!(
            message.contains("7 regions") && message.contains("scan again"),
            "{message}"
        );
        assert_eq!((old.region, old.zoom), (None, 0));
        // Fewer boxes than regions (capped): said with the count.
        let mut capped = view_with_regions(vec![boxed(10, 10, 5, 5, 20)], 900);
        press(&mut capped, KeyCode::Char(']'));
        assert_eq!(
            capped.message.as_deref(),
            Some("region 1 of 900, area 20 px (the 1 largest are outlined)")
        );
    }

    #[test]
    fn region_outlines_are_on_at_first_and_toggle() {
        let mut v = view();
        assert!(v.toggles.regions);
        press(&mut v, KeyCode::Char('r'));
        assert!(!v.toggles.regions);
        assert!(!v.wanted().unwrap().toggles.regions, "the picture follows");
        press(&mut v, KeyCode::Char('r'));
        assert!(v.toggles.regions);
        // Jumping to a region turns hidden outlines back on.
        let mut v = view_with_regions(vec![boxed(10, 10, 20, 20, 300)], 1);
        press(&mut v, KeyCode::Char('r'));
        assert!(!v.toggles.regions);
        press(&mut v, KeyCode::Char(']'));
        assert!(v.toggles.regions && v.region == Some(0));
    }

    #[test]
    fn a_new_area_keeps_zoom_and_view_within_bounds() {
        let mut v = view(); // b.jpg, 500 x 500
        v.set_area(Size::new(50, 25)); // 500 x 500 pixels: 1 px per photo px at fit
        for _ in 0..5 {
            press(&mut v, KeyCode::Char('+'));
        }
        assert_eq!(v.zoom, 3, "up to 8 px per photo px");
        press(&mut v, KeyCode::Right);
        // A larger area fits the photo at 2 px per photo px: only 2 doublings are left.
        v.set_area(Size::new(100, 50));
        assert_eq!(v.zoom, 2);
        let view = v.viewport();
        assert!(view.x >= 0.0 && view.x + view.width <= 500.0);
        assert_eq!(v.wanted().unwrap().pixels, (1000, 1000));
    }
}
