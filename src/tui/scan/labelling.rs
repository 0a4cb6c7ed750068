//! Labelling windows by keyboard in the scan view: step through the suggested windows (spread
//! over the model's scores and the photos, `scan::labels::Suggest::Spread`), or its top-scored
//! ones, or the typical window of each kind of window not labelled yet (`Suggest::Typical`, in
//! rounds: the next is chosen when one is done), or pick the window under the view's centre;
//! answer crack, no crack or skip with one key; undo. Every answer is written at once to the scan
//! folder's `labels.csv` (atomically, `scan::labels`), so a session stopped at any moment resumes
//! where it was: the suggestions leave out every window the file already labels.
//!
//! While labelling, the view is zoomed onto the current window (it fills about half the view, so
//! its surroundings show), the window is framed (white between black), and the crack map and window
//! outlines are hidden so the surface itself can be judged (`m` and `w` bring them back).

use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};

use super::render::{out_box, outline, Toggles, Viewport};
use super::view::ScanView;
use crate::scan::descriptors::Descriptors;
use crate::scan::labels::{self, Label, Labels, Suggest, WindowKey};
use crate::tui::keymap::Action;

/// The window being labelled fills at most this share of the view's width or height (zoom steps
/// double, so 25 to 50 %), leaving its surroundings in view.
const WINDOW_FILL: f64 = 0.5;
/// Frame of the window being labelled, inside out: black, white, black. Every colour is taken by
/// another layer (white windows, cyan regions, magenta mask, the errors' sky blue, yellow and
/// vermillion, the map's whole colour table); a white line between black ones is none of them
/// and shows on dark photos and bright maps alike.
const FOCUS_FRAME: [Rgb<u8>; 3] = [Rgb([0, 0, 0]), Rgb([255, 255, 255]), Rgb([0, 0, 0])];

/// The labels of the scan and where a labelling session stands.
#[derive(Debug, Clone, Default)]
pub struct Labelling {
    pub labels: Labels,
    /// Whether a session is under way (keys answer, the view follows the current window).
    pub active: bool,
    /// How the queue was ordered; `None` when only windows picked under the cursor are labelled.
    pub how: Option<Suggest>,
    queue: Vec<WindowKey>,
    /// Next position in `queue`.
    next: usize,
    pub current: Option<WindowKey>,
    /// Answers to take back: the window, the label it had before, and the window then current.
    undo: Vec<(WindowKey, Option<Label>, Option<WindowKey>)>,
    /// The layers shown before the session, given back when it ends.
    toggles_before: Option<Toggles>,
    /// The scan's window descriptors, read the first time [`Suggest::Typical`] asks.
    looks: Option<Vec<Descriptors>>,
    /// When the session under way began, and the answers given before it (the undo stack's
    /// length then): the pace said when it stops.
    began: Option<(Instant, usize)>,
}

impl Labelling {
    pub fn new(labels: Labels) -> Labelling {
        Labelling {
            labels,
            ..Labelling::default()
        }
    }

    /// The line the view shows while labelling: mode, place, window, model's probability, counts.
    pub fn status(&self, view: &ScanView) -> String {
        let counts = self.labels.counts();
        let mode = self
            .how
            .map_or("the window under the cursor", Suggest::describe);
        let place = match self.current {
            Some(w) => {
                let photo = &view.record.photos[w.photo];
                let probability = photo
                    .windows
                    .iter()
                    .find(|r| (r.x, r.y, r.size) == (w.x, w.y, w.size))
                    .map_or(String::new(), |r| format!(" · p {:.2}", r.probability));
                let left = self.queue.len().saturating_sub(self.next);
                format!(
                    "{} x {} y {} ({} px of {}×{}){probability} · {left} more suggested",
                    photo.name(),
                    w.x,
                    w.y,
                    w.size,
                    photo.width,
                    photo.height
                )
            }
            None => "no window: pan to one and press .".into(),
        };
        // Counts first: a narrow terminal cuts the end of the line.
        format!(
            "labels {}: {} crack, {} no crack, {} skipped · {place} · labelling {mode}",
            counts.labelled(),
            counts.crack,
            counts.no_crack,
            counts.skip
        )
    }
}

/// Said when the typical order starts on a scan described by its shared pass, where it was
/// measured no better than random windows (README, "Windows described alone").
const SHARED_LOOKS: &str =
    "looks from the scan's shared pass: a scan with --descriptors alone suggests better";

/// How fast windows were answered (undone ones not counted), for a person timing their own
/// labelling; `None` for a session too short to say.
fn pace(answers: usize, elapsed: Duration) -> Option<String> {
    let minutes = elapsed.as_secs_f64() / 60.0;
    if answers == 0 || elapsed < Duration::from_secs(10) {
        return None;
    }
    let rate = answers as f64 / minutes;
    let rate = if rate < 10.0 {
        format!("{rate:.1}")
    } else {
        format!("{rate:.0}")
    };
    Some(format!(
        "{answers} windows answered in {minutes:.1} min, {rate} a minute"
    ))
}

/// Whether an action belongs to labelling.
pub fn is_labelling(action: Action) -> bool {
    matches!(
        action,
        Action::LabelSuggested
            | Action::LabelTopScored
            | Action::LabelTypical
            | Action::LabelUnderCursor
            | Action::LabelCrack
            | Action::LabelNoCrack
            | Action::LabelSkip
            | Action::LabelUndo
    )
}

impl ScanView {
    /// Loads the scan folder's labels (the view starts with none when the file is absent).
    pub fn with_labels(mut self, labels: Labels) -> ScanView {
        self.labelling = Labelling::new(labels);
        self
    }

    /// Carries out a labelling action (see [`is_labelling`]).
    pub(super) fn label_action(&mut self, action: Action) {
        match action {
            Action::LabelSuggested => self.toggle_session(Suggest::Spread),
            Action::LabelTopScored => self.toggle_session(Suggest::TopScored),
            Action::LabelTypical => self.toggle_session(Suggest::Typical),
            Action::LabelUnderCursor => self.pick_under_cursor(),
            Action::LabelCrack => self.answer(Label::Crack),
            Action::LabelNoCrack => self.answer(Label::NoCrack),
            Action::LabelSkip => self.answer(Label::Skip),
            Action::LabelUndo => self.undo_label(),
            _ => {}
        }
    }

    /// Starts a session in `how`'s order, or ends the one under way in that order.
    fn toggle_session(&mut self, how: Suggest) {
        if self.labelling.active && self.labelling.how == Some(how) {
            self.stop_labelling();
            return;
        }
        let queue = match self.suggestions(how) {
            Ok(queue) => queue,
            Err(e) => {
                self.message = Some(format!("{e:#}"));
                return;
            }
        };
        self.begin();
        let l = &mut self.labelling;
        l.how = Some(how);
        l.queue = queue;
        l.next = 0;
        self.advance();
        let shared_looks = self
            .record
            .settings
            .as_ref()
            .is_some_and(|s| s.descriptors.is_shared());
        if how == Suggest::Typical && shared_looks && self.message.is_none() {
            self.message = Some(SHARED_LOOKS.into());
        }
    }

    /// The windows `how` suggests now; [`Suggest::Typical`] reads the scan's descriptors once.
    fn suggestions(&mut self, how: Suggest) -> anyhow::Result<Vec<WindowKey>> {
        if how == Suggest::Typical && self.labelling.looks.is_none() {
            self.labelling.looks = Some(labels::read_descriptors(&self.folder, &self.record)?);
        }
        let looks = self.labelling.looks.as_deref().unwrap_or_default();
        Ok(labels::suggest(
            &self.record,
            &self.labelling.labels,
            how,
            looks,
        ))
    }

    fn begin(&mut self) {
        if !self.labelling.active {
            self.labelling.toggles_before = Some(self.toggles);
            self.toggles.map = false;
            self.toggles.windows = false;
            self.labelling.active = true;
            self.labelling.began = Some((Instant::now(), self.labelling.undo.len()));
        }
    }

    /// Ends the session: the layers shown before it come back; the labels stay on disk.
    pub fn stop_labelling(&mut self) {
        let l = &mut self.labelling;
        l.active = false;
        l.current = None;
        let answers = l.undo.len();
        let pace = l
            .began
            .take()
            .and_then(|(at, before)| pace(answers.saturating_sub(before), at.elapsed()));
        if let Some(toggles) = l.toggles_before.take() {
            self.toggles = toggles;
        }
        let counts = self.labelling.labels.counts();
        self.message = Some(format!(
            "labelling stopped: {} labels in {}{}",
            counts.labelled(),
            labels::LABELS_FILE,
            pace.map_or(String::new(), |p| format!(" · {p}"))
        ));
    }

    /// The next suggested window not labelled since the queue was made, shown; none left ends
    /// the queue (the session stays on for windows picked under the cursor).
    fn advance(&mut self) {
        if let Some(w) = self.next_in_queue() {
            self.show_window(w);
            return;
        }
        // A typical-windows round done: the clusters are cut again over what is labelled now.
        if self.labelling.how == Some(Suggest::Typical) {
            if let Ok(round) = self.suggestions(Suggest::Typical) {
                self.labelling.queue = round;
                self.labelling.next = 0;
                if let Some(w) = self.next_in_queue() {
                    self.show_window(w);
                    return;
                }
            }
        }
        let l = &mut self.labelling;
        l.current = None;
        self.message = Some(
            "no more windows to suggest: every window has a label (u undoes, . labels the one \
             under the cursor)"
                .into(),
        );
    }

    /// The queue's next window not labelled since it was made, made current.
    fn next_in_queue(&mut self) -> Option<WindowKey> {
        let l = &mut self.labelling;
        while let Some(&w) = l.queue.get(l.next) {
            l.next += 1;
            if l.labels.get(&w).is_none() {
                l.current = Some(w);
                return Some(w);
            }
        }
        None
    }

    /// The photo of the window suggested after the current one, when it is another photo: the
    /// painter opens it while the person judges the current window.
    pub fn photo_ahead(&self) -> Option<usize> {
        let l = &self.labelling;
        if !l.active {
            return None;
        }
        let next = l
            .queue
            .iter()
            .skip(l.next)
            .find(|w| l.labels.get(w).is_none() && Some(**w) != l.current)?;
        (Some(next.photo) != self.photo_index()).then_some(next.photo)
    }

    /// Makes the window nearest the view's centre on the current photo the one to label.
    fn pick_under_cursor(&mut self) {
        let Some(index) = self.photo_index() else {
            return;
        };
        let view = self.viewport();
        let (cx, cy) = (view.x + view.width / 2.0, view.y + view.height / 2.0);
        let photo = &self.record.photos[index];
        let nearest = photo.windows.iter().min_by(|a, b| {
            let d = |w: &crate::scan::output::WindowRecord| {
                let half = f64::from(w.size) / 2.0;
                (f64::from(w.x) + half - cx).powi(2) + (f64::from(w.y) + half - cy).powi(2)
            };
            d(a).total_cmp(&d(b))
        });
        let Some(w) = nearest else {
            self.message = Some("this photo has no windows".into());
            return;
        };
        let key = WindowKey {
            photo: index,
            x: w.x,
            y: w.y,
            size: w.size,
        };
        self.begin();
        // The suggestions go on after it where they were.
        self.labelling.current = Some(key);
        self.show_window(key);
    }

    fn answer(&mut self, label: Label) {
        if !self.labelling.active {
            self.message = Some("press l (suggested windows), L (top-scored), y (typical looks) or . (the window under the cursor) to label".into());
            return;
        }
        let Some(window) = self.labelling.current else {
            self.message = Some("no window to label: pan to one and press .".into());
            return;
        };
        let before = self.labelling.labels.set(window, label);
        if let Err(e) = self.save_labels() {
            // Not kept: the file and the screen must agree.
            match before {
                Some(old) => self.labelling.labels.set(window, old),
                None => self.labelling.labels.remove(&window),
            };
            self.message = Some(format!("{e:#}"));
            return;
        }
        self.labelling.undo.push((window, before, Some(window)));
        self.advance_after_answer();
    }

    fn advance_after_answer(&mut self) {
        if self.labelling.how.is_some() {
            self.advance();
        } else {
            // Under the cursor: stay here; the user pans and picks the next.
            self.labelling.current = None;
        }
    }

    fn undo_label(&mut self) {
        let Some((window, before, current)) = self.labelling.undo.pop() else {
            self.message = Some("nothing to undo in this session".into());
            return;
        };
        let now = match before {
            Some(old) => self.labelling.labels.set(window, old),
            None => self.labelling.labels.remove(&window),
        };
        if let Err(e) = self.save_labels() {
            if let Some(label) = now {
                self.labelling.labels.set(window, label);
            }
            self.labelling.undo.push((window, before, current));
            self.message = Some(format!("{e:#}"));
            return;
        }
        self.begin();
        // Back to the window undone; the suggestion it led to comes again after it.
        let l = &mut self.labelling;
        if l.how.is_some() && l.next > 0 {
            if let Some(c) = l.current {
                if l.queue.get(l.next - 1) == Some(&c) {
                    l.next -= 1;
                }
            }
        }
        l.current = current.or(Some(window));
        self.show_window(window);
        self.message = Some(format!(
            "undone: {} x {} y {} is {}",
            self.record.photos[window.photo].name(),
            window.x,
            window.y,
            before.map_or("unlabelled again", Label::as_str)
        ));
    }

    fn save_labels(&self) -> anyhow::Result<()> {
        labels::write(&self.folder, &self.record, &self.labelling.labels)
    }

    /// Shows a window: its photo, zoomed until the window fills about half of the view, centred.
    fn show_window(&mut self, w: WindowKey) {
        if let Some(position) = self.order.iter().position(|&i| i == w.photo) {
            if position != self.cursor {
                self.go_to(position as isize);
            }
        }
        let size = f64::from(w.size);
        let mut zoom = 0;
        if self.area.is_some() {
            while zoom < self.max_zoom() {
                let (vw, vh) = self.view_size_at(zoom + 1);
                if size > WINDOW_FILL * vw || size > WINDOW_FILL * vh {
                    break;
                }
                zoom += 1;
            }
        }
        self.zoom = zoom;
        self.centre = (f64::from(w.x) + size / 2.0, f64::from(w.y) + size / 2.0);
        self.clamp_centre();
    }
}

/// Frames the window being labelled on a picture of `view` (three output pixels thick, just
/// outside the window, so its own pixels stay visible).
pub fn outline_focus(image: &mut RgbImage, view: Viewport, w: WindowKey) {
    let scale =
        (f64::from(image.width()) / view.width).min(f64::from(image.height()) / view.height);
    let (x0, y0, x1, y1) = out_box((w.x, w.y, w.size, w.size), view, scale);
    for (ring, colour) in (1..).zip(FOCUS_FRAME) {
        outline(image, (x0 - ring, y0 - ring, x1 + ring, y1 + ring), colour);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::output::{PhotoRecord, ScanRecord};
    use crate::tui::theme::Theme;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::layout::Size;

    fn press(view: &mut ScanView, c: char) {
        view.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }

    fn photo(name: &str, probabilities: &[f32]) -> PhotoRecord {
        PhotoRecord {
            crack_fraction: probabilities.iter().copied().fold(0.0, f32::max) as f64,
            ..PhotoRecord::for_test(name, 400, 100).with_row_of_windows(probabilities)
        }
    }

    fn record() -> ScanRecord {
        ScanRecord::for_test(vec![
            photo("a.jpg", &[0.9, 0.45, 0.1, 0.0]),
            photo("b.jpg", &[0.52, 0.0, 0.99, 0.3]),
        ])
    }

    fn view(folder: &std::path::Path) -> ScanView {
        let record = record();
        let labels = labels::read(folder, &record).unwrap();
        let mut v =
            ScanView::new(folder.to_path_buf(), record, Theme::new(false)).with_labels(labels);
        v.set_area(Size::new(100, 50));
        v
    }

    fn key(photo: usize, x: u32) -> WindowKey {
        WindowKey {
            photo,
            x,
            y: 0,
            size: 100,
        }
    }

    fn file(folder: &std::path::Path) -> String {
        std::fs::read_to_string(labels::path(folder)).unwrap()
    }

    #[test]
    fn keys_label_the_suggested_windows_save_each_answer_and_undo() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = view(dir.path());
        let suggested = labels::suggest(&record(), &Labels::default(), Suggest::Spread, &[]);
        let (first, second) = (suggested[0], suggested[1]);
        press(&mut v, 'c');
        assert!(
            v.message.as_deref().unwrap().contains("press l"),
            "not labelling yet"
        );
        press(&mut v, 'l');
        assert!(v.labelling.active);
        assert!(
            !v.toggles.map && !v.toggles.windows,
            "the surface itself shows"
        );
        // The first suggestion, shown on its photo, zoomed in and centred.
        assert_eq!(v.labelling.current, Some(first));
        assert_eq!(v.photo_index(), Some(first.photo));
        let shown = v.viewport();
        let x = first.x as f64;
        assert!(shown.x <= x && shown.x + shown.width >= x + 100.0);
        let job = v.wanted().unwrap();
        assert_eq!(job.focus, Some(first), "outlined in the picture");
        let status = v.labelling.status(&v);
        let name = ["a.jpg", "b.jpg"][first.photo];
        assert!(
            status.contains(&format!("{name} x {} y 0", first.x)),
            "{status}"
        );

        press(&mut v, 'c');
        assert_eq!(
            file(dir.path()),
            format!(
                "photo,x,y,size,label\n/photos/{name},{},0,100,crack\n",
                first.x
            )
        );
        assert_eq!(v.labelling.current, Some(second), "the next suggestion");
        assert_eq!(v.photo_index(), Some(second.photo));
        press(&mut v, 'x');
        press(&mut v, 's');
        let counts = v.labelling.labels.counts();
        assert_eq!((counts.crack, counts.no_crack, counts.skip), (1, 1, 1));
        assert!(v
            .labelling
            .status(&v)
            .contains("labels 2: 1 crack, 1 no crack, 1 skipped"));
        // Undo takes the skip back and shows its window again; the file follows.
        let skipped = v.labelling.labels.rows()[2].window;
        press(&mut v, 'u');
        assert_eq!(v.labelling.current, Some(skipped));
        assert_eq!(v.labelling.labels.get(&skipped), None);
        assert_eq!(file(dir.path()).lines().count(), 3);
        press(&mut v, 'c');
        assert_eq!(v.labelling.labels.get(&skipped), Some(Label::Crack));
        // Stopping gives the layers back, and the pace: three answers stand (one undone), the
        // session made to have begun two minutes ago.
        let (_, before) = v.labelling.began.unwrap();
        let two_minutes_ago = Instant::now() - Duration::from_secs(120);
        v.labelling.began = Some((two_minutes_ago, before));
        press(&mut v, 'l');
        assert!(!v.labelling.active && v.toggles.map && v.toggles.windows);
        assert_eq!(v.wanted().unwrap().focus, None);
        let said = v.message.as_deref().unwrap();
        assert!(
            said.contains("3 windows answered in 2.0 min, 1.5 a minute"),
            "{said}"
        );
    }

    #[test]
    fn the_photo_of_the_next_suggestion_is_the_one_to_open_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = view(dir.path());
        assert_eq!(v.photo_ahead(), None, "not labelling");
        press(&mut v, 'l');
        let suggested = labels::suggest(&record(), &Labels::default(), Suggest::Spread, &[]);
        let mut other_photo = 0;
        for pair in suggested.windows(2) {
            let (now, next) = (pair[0], pair[1]);
            assert_eq!(v.labelling.current, Some(now));
            let expected = (next.photo != now.photo).then_some(next.photo);
            assert_eq!(v.photo_ahead(), expected, "at {now:?}, {next:?} next");
            other_photo += usize::from(expected.is_some());
            press(&mut v, 'x');
        }
        assert!(
            other_photo > 0,
            "the order never changed photos: {suggested:?}"
        );
        assert_eq!(v.photo_ahead(), None, "nothing after the last");
    }

    #[test]
    fn the_pace_is_said_of_sessions_long_enough_to_tell() {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        assert_eq!(
            pace(150, minutes(10)).as_deref(),
            Some("150 windows answered in 10.0 min, 15 a minute")
        );
        assert_eq!(pace(0, minutes(10)), None, "nothing answered");
        assert_eq!(pace(3, Duration::from_secs(4)), None, "too short to tell");
    }

    #[test]
    fn a_stopped_session_resumes_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = view(dir.path());
        press(&mut first, 'l');
        press(&mut first, 'c');
        press(&mut first, 'x');
        drop(first);
        // A new view on the same folder: the two labels are read back and not suggested again;
        // the suggestions are made afresh around them.
        let mut again = view(dir.path());
        assert_eq!(again.labelling.labels.counts().labelled(), 2);
        press(&mut again, 'l');
        let fresh = labels::suggest(&record(), &again.labelling.labels, Suggest::Spread, &[]);
        assert_eq!(again.labelling.current, Some(fresh[0]));
        assert_eq!(again.labelling.labels.get(&fresh[0]), None);
        // Top-scored order skips the labelled ones too: the highest unlabelled window first.
        press(&mut again, 'L');
        let current = again.labelling.current.unwrap();
        assert_eq!(again.labelling.labels.get(&current), None);
        let highest_open = [(0, 0, 0.9f32), (1, 0, 0.52), (1, 200, 0.99), (0, 100, 0.45)]
            .into_iter()
            .filter(|&(p, x, _)| again.labelling.labels.get(&key(p, x)).is_none())
            .max_by(|a, b| a.2.total_cmp(&b.2))
            .unwrap();
        assert_eq!(current, key(highest_open.0, highest_open.1));
        assert_eq!(again.labelling.how, Some(Suggest::TopScored));
    }

    #[test]
    fn the_window_under_the_cursor_can_be_labelled() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = view(dir.path());
        // The first photo shown is the most cracked: b.jpg (0.99). Zoom in and pan right.
        assert_eq!(v.photo_index(), Some(1));
        // 200 x 200 pixels: 0.5 px per photo px at fit, 2 after two steps (a 100-px view).
        v.set_area(Size::new(20, 10));
        for _ in 0..2 {
            press(&mut v, '+');
        }
        v.centre = (350.0, 50.0);
        press(&mut v, '.');
        assert_eq!(v.labelling.current, Some(key(1, 300)));
        press(&mut v, 'x');
        assert_eq!(v.labelling.labels.get(&key(1, 300)), Some(Label::NoCrack));
        assert_eq!(v.labelling.current, None, "waits for the next pick");
        press(&mut v, 'c');
        assert!(v.message.as_deref().unwrap().contains("no window"));
    }

    #[test]
    fn the_focus_outline_surrounds_the_window() {
        let view = Viewport {
            x: 0.0,
            y: 0.0,
            width: 400.0,
            height: 200.0,
        };
        // 10 output pixels a 100-px window: x 10..20, y 5..15 in the picture.
        let key = WindowKey {
            photo: 0,
            x: 100,
            y: 50,
            size: 100,
        };
        let mut image = RgbImage::from_pixel(40, 20, Rgb([9, 9, 9]));
        outline_focus(&mut image, view, key);
        assert_eq!(*image.get_pixel(9, 10), FOCUS_FRAME[0], "inner ring");
        assert_eq!(*image.get_pixel(8, 10), FOCUS_FRAME[1], "middle ring");
        assert_eq!(*image.get_pixel(7, 10), FOCUS_FRAME[2], "outer ring");
        assert_eq!(*image.get_pixel(20, 10), FOCUS_FRAME[0]);
        assert_eq!(*image.get_pixel(15, 10), Rgb([9, 9, 9]), "inside untouched");
        assert_eq!(*image.get_pixel(6, 10), Rgb([9, 9, 9]), "outside untouched");
    }

    #[test]
    fn typical_looks_need_descriptors_and_come_round_after_round_until_all_are_labelled() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = view(dir.path());
        press(&mut v, 'y');
        assert!(!v.labelling.active, "no descriptors, no session");
        let said = v.message.clone().unwrap_or_default();
        assert!(said.contains("has no window descriptors"), "{said}");

        // 120 windows, more than a round of 50 asks for.
        let windows = 120;
        let mut record = ScanRecord::for_test(vec![PhotoRecord {
            descriptors: Some("a-descriptors.safetensors".into()),
            ..PhotoRecord::for_test("a.jpg", 100 * windows, 100)
                .with_row_of_windows(&vec![0.5; windows as usize])
        }]);
        record.photos[0].crack_fraction = 0.5;
        let values = (0..windows as usize * crate::scan::descriptors::DIM)
            .map(|i| ((i * 7919) % 101) as f32)
            .collect();
        crate::scan::descriptors::write(
            &dir.path().join("a-descriptors.safetensors"),
            &Descriptors { values },
        )
        .unwrap();
        let mut v = ScanView::new(dir.path().to_path_buf(), record, Theme::new(false))
            .with_labels(Labels::default());
        v.set_area(Size::new(100, 50));
        press(&mut v, 'y');
        assert_eq!(v.labelling.how, Some(Suggest::Typical));
        assert_eq!(v.message, None, "a scan of unknown settings gets no advice");
        let first_round = v.labelling.queue.len();
        assert!((1..=50).contains(&first_round), "{first_round}");
        for _ in 0..windows {
            assert!(v.labelling.current.is_some(), "{:?}", v.message);
            press(&mut v, 'x');
        }
        assert_eq!(v.labelling.labels.counts().no_crack, windows as usize);
        assert!(v.labelling.current.is_none());
        assert!(v.message.unwrap().contains("no more windows to suggest"));
    }

    #[test]
    fn typical_looks_on_shared_descriptors_point_to_windows_described_alone() {
        use crate::scan::descriptors::Source;
        let dir = tempfile::tempdir().unwrap();
        let windows = 4;
        for (source, advised) in [(Source::Shared, true), (Source::Alone, false)] {
            let mut record = ScanRecord::for_test(vec![PhotoRecord {
                descriptors: Some("a-descriptors.safetensors".into()),
                ..PhotoRecord::for_test("a.jpg", 100 * windows, 100)
                    .with_row_of_windows(&vec![0.5; windows as usize])
            }]);
            record.settings = Some(crate::scan::output::ScanSettings {
                model: "/m/model.safetensors".into(),
                model_sha256: "aa".into(),
                window: 100,
                stride: 100,
                masks: None,
                tolerance: None,
                scales: None,
                descriptors: source,
            });
            let values = (0..windows as usize * crate::scan::descriptors::DIM)
                .map(|i| (i % 13) as f32)
                .collect();
            let file = dir.path().join("a-descriptors.safetensors");
            crate::scan::descriptors::write(&file, &Descriptors { values }).unwrap();
            let mut v = ScanView::new(dir.path().to_path_buf(), record, Theme::new(false))
                .with_labels(Labels::default());
            v.set_area(Size::new(100, 50));
            press(&mut v, 'y');
            assert!(v.labelling.current.is_some());
            let said = v.message.clone().unwrap_or_default();
            assert_eq!(
                said.contains("--descriptors alone"),
                advised,
                "{source:?}: {said}"
            );
        }
    }
}
