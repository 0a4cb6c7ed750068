//! Drawing the scan view: the photos ranked by crack fraction, the current one's picture, a line of
//! facts (size, zoom, viewport, crack fraction, scores against masks), the keys, and the help. It
//! only reads [`ScanView`] and reports the picture area's size back to the caller.

use ratatui::layout::{Constraint, Layout, Rect, Size};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::view::{PhotoState, ScanView};
use crate::scan::output::{MetricsRecord, PhotoRecord};
use crate::tui::keymap::{self, Action};
use crate::tui::lingering::Drawn;

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 14;
/// Columns of the photo list.
const LIST_WIDTH: u16 = 30;

/// Draws the whole screen; returns the picture area's size in cells (None when too small to draw)
/// and adds the picture it drew to `drawn`.
pub fn draw(frame: &mut Frame, view: &ScanView, drawn: &mut Vec<Drawn>) -> Option<Size> {
    if crate::tui::views::too_small(frame, (MIN_WIDTH, MIN_HEIGHT)) {
        return None;
    }
    let area = frame.area();
    let [title, body, facts, note, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_title(frame, title, view);
    let [list, picture] =
        Layout::horizontal([Constraint::Length(LIST_WIDTH), Constraint::Min(0)]).areas(body);
    draw_list(frame, list, view);
    let cells = draw_picture(frame, picture, view, drawn);
    draw_facts(frame, facts, view);
    draw_note(frame, note, view);
    draw_footer(frame, footer, view);
    if view.sweep && !view.help {
        super::truth::draw_sweep(frame, body, view);
    }
    if view.help {
        draw_help(frame, area, view);
    }
    Some(cells)
}

fn draw_title(frame: &mut Frame, area: Rect, view: &ScanView) {
    let theme = &view.theme;
    let record = &view.record;
    let line = Line::from(vec![
        Span::styled("crackscope scan  ", theme.title()),
        Span::raw(view.folder.display().to_string()),
        Span::styled(
            format!(
                " · class {} · threshold {} · {} photo{}",
                record.class,
                record.threshold,
                record.photos.len(),
                if record.photos.len() == 1 { "" } else { "s" }
            ),
            theme.dim(),
        ),
    ]);
    frame.render_widget(line, area);
}

fn draw_list(frame: &mut Frame, area: Rect, view: &ScanView) {
    let theme = &view.theme;
    let block = Block::bordered()
        .title(" crack %  photo ")
        .title_style(theme.title());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = inner.height as usize;
    if rows == 0 {
        return;
    }
    // Keep the cursor in view, a third of the way down when scrolling.
    let first = view
        .cursor
        .saturating_sub(rows / 3)
        .min(view.order.len().saturating_sub(rows));
    let lines: Vec<Line> = view
        .order
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(position, &index)| {
            let photo = &view.record.photos[index];
            let text = format!("{:>7.2}  {}", 100.0 * photo.crack_fraction, photo.name());
            let style = if position == view.cursor {
                theme.selected()
            } else {
                Style::default()
            };
            Line::styled(text, style)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The picture (or why there is none) in a frame titled with the photo's name; returns the cells
/// inside the frame.
fn draw_picture(frame: &mut Frame, area: Rect, view: &ScanView, drawn: &mut Vec<Drawn>) -> Size {
    let theme = &view.theme;
    let Some(photo) = view.photo() else {
        let block = Block::bordered().title(" no photos ");
        frame.render_widget(
            Paragraph::new("This scan has no photos.").block(block),
            area,
        );
        return Size::new(0, 0);
    };
    let block = Block::bordered()
        .title(format!(" {} · {} ", photo.name(), layers(view)))
        .title_style(theme.title());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let current = view
        .picture
        .as_ref()
        .filter(|(job, _)| Some(job.photo) == view.photo_index());
    match (&view.photo_state, current) {
        (PhotoState::Failed(message), _) => frame.render_widget(
            Paragraph::new(format!("cannot show this photo: {message}"))
                .style(theme.bad())
                .wrap(Wrap { trim: true }),
            inner,
        ),
        // The picture waits while the help is open (one that stays on screen would cover it).
        (_, Some(_)) if view.help || view.sweep => {}
        (_, Some((_, picture))) => {
            let size = picture.size();
            let cell = crate::tui::views::centered(inner, size.width, size.height);
            frame.render_widget(picture, cell);
            drawn.push(Drawn::of(picture, cell));
        }
        (_, None) => {
            let middle = Rect {
                y: inner.y + inner.height.saturating_sub(1) / 2,
                height: inner.height.min(1),
                ..inner
            };
            frame.render_widget(
                Paragraph::new(format!("opening {}…", photo.name()))
                    .style(theme.dim())
                    .centered(),
                middle,
            );
        }
    }
    Size::new(inner.width, inner.height)
}

fn score(name: &str, value: Option<f64>) -> Option<String> {
    value.map(|v| format!("{name} {v:.3}"))
}

/// Scores against the true mask, shortest first.
fn metrics_text(m: &MetricsRecord) -> String {
    [
        score("px IoU", m.pixel_iou),
        score("px F1", m.pixel_f1),
        score("px P", m.pixel_precision),
        score("px R", m.pixel_recall),
        score("win F1", m.window_f1),
        score("win AUC", m.window_auroc),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
}

/// The photo's facts and what is in view.
pub fn facts(view: &ScanView, photo: &PhotoRecord) -> String {
    let v = view.viewport();
    let mut parts = vec![
        format!("{}×{}", photo.width, photo.height),
        format!("zoom ×{}", 1u64 << view.zoom.min(63)),
        format!(
            "view x {:.0}-{:.0} y {:.0}-{:.0}",
            v.x,
            v.x + v.width,
            v.y,
            v.y + v.height
        ),
        format!("crack {:.2}%", 100.0 * photo.crack_fraction),
        format!(
            "windows {}/{}",
            photo.cracked_windows(view.record.threshold),
            photo.windows.len()
        ),
        match view.region {
            Some(i) => format!("region {} of {}", i + 1, photo.regions),
            None => format!("regions {}", photo.regions),
        },
    ];
    if let Some(m) = &photo.metrics {
        parts.push(metrics_text(m));
    }
    parts.join(" · ")
}

fn draw_facts(frame: &mut Frame, area: Rect, view: &ScanView) {
    let Some(photo) = view.photo() else { return };
    frame.render_widget(
        Line::from(vec![
            Span::styled(format!("{} ", photo.name()), view.theme.title()),
            Span::raw(facts(view, photo)),
        ]),
        area,
    );
}

/// The layers drawn over the photo, for the picture's title.
fn layers(view: &ScanView) -> String {
    let on: Vec<&str> = [
        ("map", view.toggles.map),
        ("mask", view.toggles.mask),
        ("windows", view.toggles.windows),
        ("regions", view.toggles.regions),
        ("errors", view.toggles.truth),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(name, _)| *name)
    .collect();
    if view.toggles.truth {
        // The errors layer replaces the map and the mask.
        let rest: Vec<&str> = on
            .into_iter()
            .filter(|l| !matches!(*l, "map" | "mask"))
            .collect();
        rest.join(" + ")
    } else if on.is_empty() {
        "photo only".to_string()
    } else {
        on.join(" + ")
    }
}

/// The last message, else the photo's note (overlay standing in), else the overall scores.
fn draw_note(frame: &mut Frame, area: Rect, view: &ScanView) {
    let theme = &view.theme;
    let line = if let Some(message) = &view.message {
        Line::styled(message.clone(), theme.warn())
    } else if view.labelling.active {
        Line::raw(view.labelling.status(view))
    } else if let PhotoState::Ready(Some(note)) = &view.photo_state {
        Line::styled(note.clone(), theme.warn())
    } else if view.toggles.truth {
        Line::styled(super::truth::LEGEND, theme.dim())
    } else if let Some(overall) = &view.record.overall {
        Line::from(vec![
            Span::styled("all photos: ", theme.dim()),
            Span::raw(metrics_text(overall)),
            Span::styled(
                format!(" (pixel tolerance {} px)", overall.tolerance),
                theme.dim(),
            ),
        ])
    } else {
        Line::default()
    };
    frame.render_widget(line, area);
}

/// The keys in table order (most useful first; while labelling, the labelling keys first) while
/// they fit, then help and quit, which always show: what does not fit is left to `?`.
fn footer_keys(width: u16, labelling: bool) -> Vec<(&'static str, &'static str)> {
    let always = |c: &keymap::Command| {
        c.bindings
            .iter()
            .any(|(_, a)| matches!(a, Action::Help | Action::Quit))
    };
    let size = |(key, label): &(&str, &str)| key.chars().count() + label.chars().count() + 3;
    let last: Vec<_> = keymap::view_commands(keymap::View::Scan)
        .filter(|c| always(c))
        .flat_map(|c| c.footer.iter().copied())
        .collect();
    let mut budget = (width as usize).saturating_sub(last.iter().map(size).sum());
    let mut shown = Vec::new();
    let labels_first = |c: &&keymap::Command| {
        !(labelling
            && c.bindings
                .iter()
                .any(|(_, a)| super::labelling::is_labelling(*a)))
    };
    // The answer keys only mean something while labelling.
    let answers = |c: &keymap::Command| c.bindings.iter().any(|(_, a)| *a == Action::LabelCrack);
    let mut commands: Vec<_> = keymap::view_commands(keymap::View::Scan)
        .filter(|c| !always(c) && (labelling || !answers(c)))
        .collect();
    commands.sort_by_key(labels_first);
    for pair in commands.into_iter().flat_map(|c| c.footer.iter().copied()) {
        if size(&pair) > budget {
            break;
        }
        budget -= size(&pair);
        shown.push(pair);
    }
    shown.extend(last);
    shown
}

fn draw_footer(frame: &mut Frame, area: Rect, view: &ScanView) {
    let spans: Vec<Span> = footer_keys(area.width, view.labelling.active)
        .into_iter()
        .flat_map(|(key, label)| {
            [
                Span::styled(key, view.theme.key()),
                Span::raw(format!(" {label}  ")),
            ]
        })
        .collect();
    frame.render_widget(Line::from(spans), area);
}

fn draw_help(frame: &mut Frame, area: Rect, view: &ScanView) {
    let mut lines = vec![Line::styled("Scan view", view.theme.title())];
    lines.extend(keymap::view_commands(keymap::View::Scan).map(|c| {
        Line::from(vec![
            Span::styled(format!("  {:<28}", c.keys), view.theme.key()),
            Span::raw(c.help),
        ])
    }));
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "  Layers: map = crack probability in the scan's colormap; mask = pixels at or above",
    ));
    lines.push(Line::raw(
        "  the threshold (magenta); windows = windows at or above it (white outlines);",
    ));
    lines.push(Line::raw(
        "  regions = connected crack regions of the mask (cyan boxes; ] and [ visit them).",
    ));
    lines.push(Line::raw(format!("  {}", super::truth::LEGEND)));
    lines.push(Line::raw(
        "  Labels: for the framed window, saved at once to labels.csv (train --data FOLDER).",
    ));
    lines.push(Line::raw("  any key closes this help"));
    let width = 90.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = crate::tui::views::centered(area, width, height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Keys ")),
        popup,
    );
}
