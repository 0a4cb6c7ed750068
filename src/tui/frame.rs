//! The frame around the dashboard's screens: the tabs with the run's phase, the status line, the
//! footer with the shown screen's keys (and those that work everywhere), the help with every
//! screen's keys, the quit and stop questions, and the "terminal too small" message.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Tabs};
use ratatui::Frame;

use super::app::{App, Overlay, Phase};
use super::keymap::{self, View};
use super::views::{centered, too_small, Wants, MIN_HEIGHT, MIN_WIDTH};

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
    wants.hold_pictures = app.overlay.is_some();
    app.screen().draw(frame, body, &app.shared, wants);
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
    let theme = &app.shared.theme;
    match &app.shared.run.phase {
        Phase::Waiting => ("waiting".into(), theme.dim()),
        Phase::Running if app.shared.paused => ("paused".into(), theme.warn()),
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
    frame.render_widget(Span::styled("crackscope", app.shared.theme.title()), name);
    let titles = View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} {}", i + 1, v.title()));
    frame.render_widget(
        Tabs::new(titles)
            .select(app.view.index())
            .highlight_style(app.shared.theme.selected())
            .divider("│"),
        tabs,
    );
    frame.render_widget(
        Line::from(Span::styled(phase, phase_style)).right_aligned(),
        state,
    );
}

fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.shared.theme;
    let line = if let Some(status) = &app.status {
        Line::from(Span::styled(
            status.text.clone(),
            if status.error {
                theme.bad()
            } else {
                theme.warn()
            },
        ))
    } else if let Phase::Failed(message) = &app.shared.run.phase {
        Line::from(Span::styled(
            format!("training failed: {message}"),
            theme.bad(),
        ))
    } else if let Some(notice) = app.shared.run.notices.back() {
        Line::from(vec![
            Span::styled("note: ", theme.dim()),
            Span::raw(notice.clone()),
        ])
    } else {
        Line::default()
    };
    frame.render_widget(line, area);
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.shared.theme;
    let global: Vec<_> = keymap::global_commands()
        .flat_map(|command| command.footer.iter().copied())
        .collect();
    let width = |(key, label): &(&str, &str)| key.chars().count() + label.chars().count() + 3;
    let mut budget = (area.width as usize).saturating_sub(global.iter().map(width).sum::<usize>());
    let mut shown = Vec::new();
    for pair in app.screen().footer(&app.shared) {
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
            Span::styled(format!("  {keys:<30}"), app.shared.theme.key()),
            Span::raw(what.to_string()),
        ])
    };
    let mut lines = Vec::new();
    let sections = std::iter::once(("Everywhere", keymap::global_commands().collect::<Vec<_>>()))
        .chain(
            View::ALL
                .iter()
                .map(|&view| (view.title(), app.tabs.screen(view).commands())),
        );
    for (title, commands) in sections {
        if commands.is_empty() {
            continue;
        }
        lines.push(Line::from(Span::styled(title, app.shared.theme.title())));
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
                .title_style(app.shared.theme.title()),
        ),
        popup,
    );
}
