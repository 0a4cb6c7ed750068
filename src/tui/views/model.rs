//! Model view: the network summary, one row per layer, scrollable.

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::Frame;

use super::bordered;
use crate::tui::app::{App, Loaded, Wants};

/// The Model view's own state: how far the layer table is scrolled, and how many rows fit.
#[derive(Debug)]
pub struct ModelState {
    pub scroll: usize,
    /// Rows visible as last drawn, for paging.
    pub rows: usize,
}

impl Default for ModelState {
    fn default() -> Self {
        ModelState {
            scroll: 0,
            rows: 10,
        }
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, wants: &mut Wants) {
    let rows = match &app.summary {
        Loaded::Ready(rows) => rows,
        Loaded::Loading => {
            frame.render_widget(
                Paragraph::new("reading the model…").block(bordered("Model", app)),
                area,
            );
            return;
        }
        Loaded::Failed(message) => {
            frame.render_widget(
                Paragraph::new(format!("cannot summarise the model: {message}"))
                    .style(app.theme.bad())
                    .block(bordered("Model", app)),
                area,
            );
            return;
        }
    };
    let total: usize = rows.iter().map(|r| r.params).sum();
    // Border (2) and header row (1).
    let visible = area.height.saturating_sub(3) as usize;
    wants.model_rows = Some(visible);
    let first = app.model.scroll.min(rows.len().saturating_sub(visible));
    let title = format!(
        "Model · {} layers · {} parameters · rows {}-{}",
        rows.len(),
        thousands(total),
        first + 1,
        (first + visible).min(rows.len())
    );
    let body = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(i, r)| {
            Row::new([
                (i + 1).to_string(),
                r.name.clone(),
                r.kind.clone(),
                r.output.clone(),
                thousands(r.params),
            ])
        });
    let table = Table::new(
        body,
        [
            Constraint::Length(4),
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Length(11),
        ],
    )
    .header(Row::new(["#", "Layer", "Type", "Output", "Parameters"]).style(app.theme.title()))
    .block(bordered(title, app));
    frame.render_widget(table, area);
}

/// 1235496 -> "1,235,496".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_separated() {
        assert_eq!(super::thousands(1_235_496), "1,235,496");
        assert_eq!(super::thousands(512), "512");
        assert_eq!(super::thousands(1000), "1,000");
    }
}
