//! Drawing: one function per view, each reading the [`App`] and reporting what pictures it drew (at
//! which size) in [`Wants`]. Here too the frame around the views: tabs, status line, key footer,
//! the help and question overlays, and the "terminal too small" message.

mod browser;
mod histogram;
mod model;
mod oneclass;
mod results;
mod samples;
mod training;

pub use model::ModelState;
pub use training::{CamSet, TrainingState};

use ratatui::layout::{Constraint, Flex, Layout, Rect, Size};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Tabs, Wrap};
use ratatui::Frame;

use super::app::{App, Overlay, Phase, View, Wants};
use super::images::{ImageKey, Shown};
use super::keymap;
use super::lingering::Drawn;
use super::theme::Theme;

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub fn draw(frame: &mut Frame, app: &App, wants: &mut Wants) {
    if too_small(frame, (MIN_WIDTH, MIN_HEIGHT)) {
        return;
    }
    let area = frame.area();
    let [tabs, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_tabs(frame, tabs, app);
    match app.view {
        View::Training => training::draw(frame, body, app, wants),
        View::Samples => samples::draw(frame, body, app, wants),
        View::Model => model::draw(frame, body, app, wants),
        View::Results => results::draw(frame, body, app, wants),
        View::Browser => browser::draw(frame, body, app, wants),
    }
    draw_status(frame, status, app);
    draw_footer(frame, footer, app);
    match app.overlay {
        Some(Overlay::Help) => draw_help(frame, area, app),
        Some(Overlay::ConfirmQuit) => draw_question(
            frame,
            area,
            app,
            "Quit",
            &[
                "The training is still running.",
                "",
                "s    stop it (after a final checkpoint) and quit",
                "l    leave it running and quit",
                "Esc  back to the dashboard",
            ],
        ),
        Some(Overlay::ConfirmStop) => draw_question(
            frame,
            area,
            app,
            "Stop",
            &[
                "Stop the training after a final checkpoint?",
                "",
                "y    yes, stop it",
                "any other key: no",
            ],
        ),
        None => {}
    }
}

fn phase_label(app: &App) -> (String, Style) {
    let theme = &app.theme;
    match &app.run.phase {
        Phase::Waiting => ("waiting".into(), theme.dim()),
        Phase::Running if app.paused => ("paused".into(), theme.warn()),
        Phase::Running => ("running".into(), theme.good()),
        Phase::Finished {
            stopped_early: true,
            ..
        } => ("stopped".into(), theme.warn()),
        Phase::Finished { .. } => ("finished".into(), theme.good()),
        Phase::Failed(_) => ("failed".into(), theme.bad()),
        Phase::Ended => ("ended".into(), theme.warn()),
    }
}

fn draw_tabs(frame: &mut Frame, area: Rect, app: &App) {
    let (phase, phase_style) = phase_label(app);
    let [name, tabs, state] = Layout::horizontal([
        Constraint::Length(11),
        Constraint::Min(0),
        Constraint::Length(phase.len() as u16 + 2),
    ])
    .areas(area);
    frame.render_widget(Span::styled("crackscope", app.theme.title()), name);
    let titles = View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} {}", i + 1, v.title()));
    frame.render_widget(
        Tabs::new(titles)
            .select(app.view.index())
            .highlight_style(app.theme.selected())
            .divider("│"),
        tabs,
    );
    frame.render_widget(
        Line::from(Span::styled(phase, phase_style)).right_aligned(),
        state,
    );
}

fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let line = if let Some(status) = &app.status {
        Line::from(Span::styled(
            status.text.clone(),
            if status.error {
                theme.bad()
            } else {
                theme.warn()
            },
        ))
    } else if let Phase::Failed(message) = &app.run.phase {
        Line::from(Span::styled(
            format!("training failed: {message}"),
            theme.bad(),
        ))
    } else if let Some(notice) = app.run.notices.back() {
        Line::from(vec![
            Span::styled("note: ", theme.dim()),
            Span::raw(notice.clone()),
        ])
    } else {
        Line::default()
    };
    frame.render_widget(line, area);
}

/// Keys that work in the current view, most useful first; what does not fit is left to `?`.
fn view_keys(app: &App) -> Vec<(&'static str, &'static str)> {
    if app.view == View::Training && !app.can_steer() {
        // p/s/c would only explain why they do nothing.
        return if app.training_running() {
            vec![("p/s/c", "read-only")]
        } else {
            vec![]
        };
    }
    keymap::view_commands(app.view)
        .flat_map(|command| command.footer.iter().copied())
        .map(|(key, label)| match (key, label) {
            ("p", "pause") if app.paused => (key, "resume"),
            pair => pair,
        })
        .collect()
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let global: Vec<_> = keymap::global_commands()
        .flat_map(|command| command.footer.iter().copied())
        .collect();
    let width = |(key, label): &(&str, &str)| key.chars().count() + label.chars().count() + 3;
    let mut budget = (area.width as usize).saturating_sub(global.iter().map(width).sum::<usize>());
    let mut shown = Vec::new();
    for pair in view_keys(app) {
        if width(&pair) > budget {
            break;
        }
        budget -= width(&pair);
        shown.push(pair);
    }
    let spans = shown.iter().chain(global.iter()).flat_map(|(key, label)| {
        [
            Span::styled(*key, theme.key()),
            Span::raw(format!(" {label}  ")),
        ]
    });
    frame.render_widget(Line::from(spans.collect::<Vec<_>>()), area);
}

/// Every key, by where it works, from the keymap.
fn draw_help(frame: &mut Frame, area: Rect, app: &App) {
    let key_line = |keys: &str, what: &str| {
        Line::from(vec![
            Span::styled(format!("  {keys:<30}"), app.theme.key()),
            Span::raw(what.to_string()),
        ])
    };
    let mut lines = Vec::new();
    let sections = std::iter::once(("Everywhere", keymap::global_commands().collect::<Vec<_>>()))
        .chain(
            View::ALL
                .iter()
                .map(|&view| (view.title(), keymap::view_commands(view).collect())),
        );
    for (title, commands) in sections {
        if commands.is_empty() {
            continue;
        }
        lines.push(Line::from(Span::styled(title, app.theme.title())));
        lines.extend(commands.iter().map(|c| key_line(c.keys, c.help)));
    }
    lines.push(key_line("", "any key closes this help"));
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = centered(area, 76.min(area.width), height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys ")),
        popup,
    );
}

fn draw_question(frame: &mut Frame, area: Rect, app: &App, title: &str, lines: &[&str]) {
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u16 + 4;
    let popup = centered(area, width.min(area.width), lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    let text: Vec<Line> = lines.iter().map(|l| Line::raw(*l)).collect();
    frame.render_widget(
        Paragraph::new(text).block(
            Block::bordered()
                .title(format!(" {title} "))
                .title_style(app.theme.title()),
        ),
        popup,
    );
}

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
    app: &App,
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
    match app.images.shown(&key, size) {
        // Pictures wait while the help or a question is open: those that stay on screen would
        // cover it, and the others are hidden alike so that every terminal shows the same.
        Shown::Encoded(_) if app.overlay.is_some() => {}
        Shown::Encoded(picture) => {
            let drawn = picture.size();
            let cell = centered(area, drawn.width, drawn.height);
            frame.render_widget(picture, cell);
            wants.drawn.push(Drawn::of(picture, cell));
        }
        Shown::Pending => {
            wants.pending += 1;
            frame.render_widget(
                placeholder("rendering…", app.theme.dim()),
                middle_line(area),
            )
        }
        Shown::Failed(message) => frame.render_widget(placeholder(message, app.theme.bad()), area),
        Shown::Missing => {
            frame.render_widget(placeholder(missing, app.theme.dim()), middle_line(area))
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

fn bordered(title: impl Into<String>, app: &App) -> Block<'static> {
    Block::new()
        .borders(Borders::ALL)
        .title(format!(" {} ", title.into()))
        .title_style(app.theme.title())
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
