//! The dashboard's screens as components, one module each, and what they share. A screen owns
//! its state, turns the actions of its keys (its scope in the keymap) into what it does, and
//! draws itself from that state and the [`Shared`] store: the run as the events describe it, what
//! the gallery delivered, the pictures, the theme. What only the shared can do (the status line,
//! steering, asking the gallery) a screen asks for as [`Effect`]s. The shared around them
//! (`shared`, `frame`) keeps the tabs, the overlay, the status line and the run.
//!
//! - [`training`], [`fit`]: the Training tab of a training, and of a one-class fit.
//! - [`samples`], [`model`]: the sample tiles, the network summary.
//! - [`results`], [`scores`]: the Results tab of a classifier's test, and of a one-class model's.
//! - [`browser`]: the test images with their heatmaps.

pub mod browser;
mod fit;
mod histogram;
pub mod model;
mod results;
mod samples;
mod scores;
pub mod training;

use ratatui::layout::{Constraint, Flex, Layout, Rect, Size};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Wrap};
use ratatui::Frame;

use super::images::{ImageKey, ImageStore, Shown};
use super::jobs::{Reply, Request};
use super::keymap::{self, Action, Command, View};
use super::lingering::Drawn;
use super::theme::Theme;
use crate::app::gallery::{LayerRow, PictureSpec, TestItem};
use crate::run::event::Event;
use crate::run::state::{Phase, RunState};

/// One screen of the dashboard.
pub trait Component {
    /// Its tab, and its scope in the keymap.
    fn view(&self) -> View;

    /// Draws the screen into `area`, reporting in `wants` the pictures it drew (and what it
    /// would like next).
    fn draw(&self, frame: &mut Frame, area: Rect, shared: &Shared, wants: &mut Wants);

    /// What an action of the screen's own keys does here.
    fn handle(&mut self, _action: Action, _shared: &mut Shared) -> Vec<Effect> {
        Vec::new()
    }

    /// An event of the run, after the run state took it in.
    fn event(&mut self, _event: &Event) {}

    /// A gallery answer; each screen takes what is for it.
    fn reply(&mut self, _reply: &Reply, _shared: &mut Shared) {}

    /// Takes in what the last frame reported about its layout.
    fn note_layout(&mut self, _wants: &Wants) {}

    /// Gallery work this screen wants while it is shown.
    fn request(&mut self) -> Option<Request> {
        None
    }

    /// The keys that work here, in keymap order: the help screen lists them and the footer
    /// shows the most useful. All of its view's commands, unless the screen leaves some out.
    fn commands(&self) -> Vec<&'static Command> {
        keymap::view_commands(self.view()).collect()
    }

    /// The keys its footer shows, most useful first: its commands' footer pairs.
    fn footer(&self, _shared: &Shared) -> Vec<(&'static str, &'static str)> {
        self.commands()
            .into_iter()
            .flat_map(|command| command.footer.iter().copied())
            .collect()
    }
}

/// What a screen asks of the shared.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A message on the status line.
    Say(String),
    /// An error on the status line.
    Complain(String),
    /// Work for the gallery.
    Ask(Request),
    /// Pause the training, or resume it.
    TogglePause,
    /// Ask whether to stop the training.
    ConfirmStop,
    /// A checkpoint after the current iteration.
    SaveCheckpoint,
}

/// The dashboard's screens, one per tab.
pub struct Tabs {
    /// A training's charts, or a fit's stages.
    pub training: Box<dyn Component>,
    pub samples: samples::SamplesScreen,
    pub model: model::ModelScreen,
    /// A classifier's test results, or a one-class model's scores.
    pub results: Box<dyn Component>,
    pub browser: browser::BrowserScreen,
}

impl Tabs {
    /// The tabs of a training's dashboard.
    pub fn training() -> Tabs {
        Tabs {
            training: Box::new(training::TrainingScreen::default()),
            samples: samples::SamplesScreen,
            model: model::ModelScreen::default(),
            results: Box::new(results::ResultsScreen),
            browser: browser::BrowserScreen::new(browser::Facts::Classes),
        }
    }

    /// The tabs of a one-class fit's dashboard: its stages, its scores, the browser's facts.
    pub fn fit() -> Tabs {
        Tabs {
            training: Box::new(fit::FitScreen),
            results: Box::new(scores::ScoresScreen),
            browser: browser::BrowserScreen::new(browser::Facts::Scores),
            ..Tabs::training()
        }
    }

    pub fn screen(&self, view: View) -> &dyn Component {
        match view {
            View::Training => self.training.as_ref(),
            View::Samples => &self.samples,
            View::Model => &self.model,
            View::Results => self.results.as_ref(),
            // Not a tab: the scan view runs on its own (`scan`); the dashboard never shows it.
            View::Browser | View::Scan => &self.browser,
        }
    }

    pub fn screen_mut(&mut self, view: View) -> &mut dyn Component {
        match view {
            View::Training => self.training.as_mut(),
            View::Samples => &mut self.samples,
            View::Model => &mut self.model,
            View::Results => self.results.as_mut(),
            View::Browser | View::Scan => &mut self.browser,
        }
    }

    /// Every screen, in tab order.
    pub fn each_mut(&mut self) -> [&mut dyn Component; 5] {
        [
            self.training.as_mut(),
            &mut self.samples,
            &mut self.model,
            self.results.as_mut(),
            &mut self.browser,
        ]
    }
}

/// Something asked of the gallery and its fate.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded<T> {
    Loading,
    Ready(T),
    Failed(String),
}

impl<T> Loaded<T> {
    pub fn of(result: Result<T, String>) -> Loaded<T> {
        match result {
            Ok(value) => Loaded::Ready(value),
            Err(message) => Loaded::Failed(message),
        }
    }
}

/// What the last frame needed, reported by the screens while drawing.
#[derive(Debug, Default)]
pub struct Wants {
    /// Pictures drawn, with the cell size they were drawn at.
    pub images: Vec<(ImageKey, Size)>,
    /// Pictures likely needed next (fetched, not encoded).
    pub prefetch: Vec<ImageKey>,
    /// Columns and rows of the browser grid, for paging.
    pub grid: Option<(usize, usize)>,
    /// Rows visible in the model table, for paging.
    pub model_rows: Option<usize>,
    /// Pictures drawn, with their places (see `lingering`).
    pub drawn: Vec<Drawn>,
    /// Pictures wanted that were not ready to draw.
    pub pending: usize,
    /// Set by the frame before the screens draw: pictures wait while the help or a question is
    /// open.
    pub hold_pictures: bool,
}

/// Where the events come from: the caller's own training or another process's run directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Live,
    Watch,
}

/// What every screen reads: the run as the events describe it (the reducer shared with the
/// headless printer), what the gallery delivered, the pictures, and how test pictures are drawn.
pub struct Shared {
    pub run: RunState,
    pub origin: Origin,
    /// The event source has not ended.
    pub source_open: bool,
    pub theme: Theme,
    /// From the gallery: class, method and layer names.
    pub classes: Vec<String>,
    pub methods: Vec<String>,
    pub layers: Vec<String>,
    /// `Ready(true)`: the tiles are in the image store; `Ready(false)`: the gallery has none.
    pub samples: Loaded<bool>,
    pub summary: Loaded<Vec<LayerRow>>,
    pub items: Loaded<Vec<TestItem>>,
    pub images: ImageStore,
    /// How test pictures are drawn (overlay, opacity, method, layer, class): the browser sets
    /// it, and the Results tab's thumbnails follow it.
    pub spec: PictureSpec,
    /// Someone to ask for pause, stop and checkpoints.
    pub steerable: bool,
    pub paused: bool,
    /// Iteration at which the user asked for a checkpoint, until one arrives.
    pub save_requested: Option<usize>,
    pub memory_bytes: Option<u64>,
}

impl Shared {
    /// Class names: the gallery's, else those of the run.
    pub fn class_names(&self) -> &[String] {
        if self.classes.is_empty() {
            &self.run.start.classes
        } else {
            &self.classes
        }
    }

    pub fn class_name(&self, index: usize) -> String {
        self.class_names()
            .get(index)
            .cloned()
            .unwrap_or_else(|| format!("class {index}"))
    }

    pub fn test_items(&self) -> &[TestItem] {
        match &self.items {
            Loaded::Ready(items) => items,
            _ => &[],
        }
    }

    /// True while a training is going on that quitting would leave behind.
    pub fn training_running(&self) -> bool {
        match self.run.phase {
            Phase::Running => self.source_open || self.origin == Origin::Watch,
            Phase::Waiting => self.origin == Origin::Live && self.source_open,
            _ => false,
        }
    }

    /// Steering is possible: someone to ask, and something running to ask it of.
    pub fn can_steer(&self) -> bool {
        self.steerable && self.training_running()
    }
}

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// A `width` x `height` rectangle centred in `area` (pictures, dialogs).
pub(super) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(row);
    cell
}

/// Draws the picture for `key` fitted and centred in `area`, or what stands in for it, and records
/// that the frame wants it at this size.
fn draw_picture(
    frame: &mut Frame,
    area: Rect,
    shared: &Shared,
    key: ImageKey,
    wants: &mut Wants,
    missing: &str,
) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let size = Size::new(area.width, area.height);
    wants.images.push((key, size));
    let placeholder = |text: &str, style: Style| {
        Paragraph::new(text.to_string())
            .style(style)
            .wrap(Wrap { trim: true })
            .centered()
    };
    match shared.images.shown(&key, size) {
        // Pictures wait while the help or a question is open: those that stay on screen would
        // cover it, and the others are hidden alike so that every terminal shows the same.
        Shown::Encoded(_) if wants.hold_pictures => {}
        Shown::Encoded(picture) => {
            let drawn = picture.size();
            let cell = centered(area, drawn.width, drawn.height);
            frame.render_widget(picture, cell);
            wants.drawn.push(Drawn::of(picture, cell));
        }
        Shown::Pending => {
            wants.pending += 1;
            frame.render_widget(
                placeholder("rendering…", shared.theme.dim()),
                middle_line(area),
            )
        }
        Shown::Failed(message) => {
            frame.render_widget(placeholder(message, shared.theme.bad()), area)
        }
        Shown::Missing => {
            frame.render_widget(placeholder(missing, shared.theme.dim()), middle_line(area))
        }
    }
}

/// The lower half of an area, so one-line placeholders sit in the middle.
fn middle_line(area: Rect) -> Rect {
    let offset = area.height.saturating_sub(1) / 2;
    Rect {
        y: area.y + offset,
        height: area.height - offset,
        ..area
    }
}

/// A picture's caption, "truth→said 0.97", with the names cut to their first three letters
/// when the whole line would not fit `width` cells (a centred line too long loses both ends).
fn outcome_caption(truth: &str, said: &str, score: f32, width: u16) -> String {
    let text = format!("{truth}→{said} {score:.2}");
    if text.chars().count() <= width as usize {
        return text;
    }
    let short = |name: &str| name.chars().take(3).collect::<String>();
    format!("{}→{} {score:.2}", short(truth), short(said))
}

/// Splits `area` into `count` tiles, each with `caption` lines under its picture, choosing the
/// number of columns that gives the largest pictures (a square picture is twice as wide in cells).
fn tile_grid(area: Rect, count: usize, caption: u16) -> Vec<(Rect, Rect)> {
    if count == 0 || area.width == 0 || area.height <= caption {
        return Vec::new();
    }
    let best_columns = (1..=count)
        .max_by_key(|&columns| {
            let rows = count.div_ceil(columns) as u16;
            let w = area.width / columns as u16;
            let h = (area.height / rows).saturating_sub(caption);
            // Side of the largest square picture that fits, in half-cells.
            (w.min(2 * h), std::cmp::Reverse(columns))
        })
        .unwrap_or(1);
    let rows = count.div_ceil(best_columns);
    uniform_cells(area, best_columns, rows)
        .into_iter()
        .take(count)
        .map(|tile| {
            let [picture, text] =
                Layout::vertical([Constraint::Min(0), Constraint::Length(caption)]).areas(tile);
            (picture, text)
        })
        .collect()
}

/// `columns` x `rows` tiles of one size, row by row, the grid centred in `area`: pictures made
/// for equal tiles come out equal and line up (tiles of a ratio split differ by a cell, and so
/// did their pictures and where they sat).
pub(super) fn uniform_cells(area: Rect, columns: usize, rows: usize) -> Vec<Rect> {
    let (columns, rows) = (columns.max(1) as u16, rows.max(1) as u16);
    let (w, h) = (area.width / columns, area.height / rows);
    let x0 = area.x + (area.width - w * columns) / 2;
    let y0 = area.y + (area.height - h * rows) / 2;
    (0..rows)
        .flat_map(|r| (0..columns).map(move |c| Rect::new(x0 + c * w, y0 + r * h, w, h)))
        .collect()
}

/// "1h 02m", "3m 20s", "42s".
/// One line of the browser's facts panel: a dim name column, then the value.
fn fact_line(theme: &Theme, name: &str, value: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{name:<10}"), theme.dim()),
        Span::raw(value),
    ])
}

/// Whether the model got a test image right, as the facts panel marks it.
fn verdict_span(theme: &Theme, correct: bool) -> Span<'static> {
    if correct {
        Span::styled(" ✓ correct", theme.good())
    } else {
        Span::styled(" ✗ wrong", theme.bad())
    }
}

fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// One count of a confusion matrix, with its share of the row when known: green on the
/// diagonal, red off it when not zero.
fn confusion_cell(count: usize, share: Option<f64>, correct: bool, theme: &Theme) -> Cell<'static> {
    let text = match share {
        Some(f) => format!("{count} ({})", percent(f)),
        None => count.to_string(),
    };
    let style = if correct {
        theme.good()
    } else if count > 0 {
        theme.bad()
    } else {
        theme.dim()
    };
    Cell::from(text).style(style)
}

/// Says so and returns true when the terminal is smaller than `width` x `height` cells.
pub fn too_small(frame: &mut Frame, (width, height): (u16, u16)) -> bool {
    let area = frame.area();
    if area.width >= width && area.height >= height {
        return false;
    }
    let text = format!(
        "terminal too small (need {width}x{height}, have {}x{})",
        area.width, area.height
    );
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
    true
}

fn percent(fraction: f64) -> String {
    format!("{:.1}%", 100.0 * fraction)
}

fn bordered(title: impl Into<String>, shared: &Shared) -> Block<'static> {
    Block::new()
        .borders(Borders::ALL)
        .title(format!(" {} ", title.into()))
        .title_style(shared.theme.title())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(42.4), "42s");
        assert_eq!(duration(200.0), "3m 20s");
        assert_eq!(duration(3720.0), "1h 02m");
        assert_eq!(duration(-3.0), "0s");
    }

    #[test]
    fn tiles_fill_the_area_without_overlap() {
        let area = Rect::new(0, 0, 60, 20);
        let tiles = tile_grid(area, 3, 1);
        assert_eq!(tiles.len(), 3);
        for (picture, caption) in &tiles {
            assert!(area.contains(picture.as_position()) && caption.height == 1);
            assert_eq!(caption.y, picture.y + picture.height);
        }
        for (i, a) in tiles.iter().enumerate() {
            for b in &tiles[i + 1..] {
                assert!(!a.0.intersects(b.0));
            }
        }
        // A wide area puts the three side by side.
        assert!(tiles.iter().all(|(p, _)| p.y == 0));
        assert!(tile_grid(area, 0, 1).is_empty());
    }

    /// The Training view's 2 x 2 Grad-CAM grid: its right-hand pictures sat 8-16 px off the left
    /// ones, as ratio splits made tiles a cell apart in size. All tiles are equal now, in rows and
    /// columns that line up.
    #[test]
    fn grid_tiles_are_equal_and_aligned() {
        let area = Rect::new(3, 2, 33, 21);
        let tiles = tile_grid(area, 4, 1);
        assert_eq!(tiles.len(), 4);
        let size = tiles[0].0.as_size();
        assert!(tiles.iter().all(|(p, _)| p.as_size() == size), "{tiles:?}");
        assert_eq!(tiles[0].0.x, tiles[2].0.x);
        assert_eq!(tiles[1].0.x, tiles[3].0.x);
        assert_eq!(tiles[0].0.y, tiles[1].0.y);
        assert_eq!(tiles[1].0.x - tiles[0].0.x, size.width);
        let cells = uniform_cells(Rect::new(0, 0, 118, 37), 7, 4);
        assert!(cells.iter().all(|c| (c.width, c.height) == (16, 9)));
        assert_eq!((cells[0].x, cells[0].y), (3, 0), "the grid is centred");
    }
}
