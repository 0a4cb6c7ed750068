//! Model view: the network summary, one row per layer, scrollable.

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::Frame;

use super::{bordered, Component, Effect, Loaded, Shared, Wants};
use crate::tui::keymap::{Action, View};

/// The Model tab: the layer table, how far it is scrolled, and how many rows fit.
#[derive(Debug)]
pub struct ModelScreen {
    pub scroll: usize,
    /// Rows visible as last drawn, for paging.
    pub rows: usize,
}

impl Default for ModelScreen {
    fn default() -> Self {
        ModelScreen {
            scroll: 0,
            rows: 10,
        }
    }
}

impl Component for ModelScreen {
    fn view(&self) -> View {
        View::Model
    }

    fn draw(&self, frame: &mut Frame, area: Rect, shared: &Shared, wants: &mut Wants) {
        draw(self, frame, area, shared, wants);
    }

    fn handle(&mut self, action: Action, shared: &mut Shared) -> Vec<Effect> {
        let rows = match &shared.summary {
            Loaded::Ready(rows) => rows.len(),
            _ => 0,
        };
        let last = rows.saturating_sub(self.rows);
        self.scroll = match action {
            Action::Down => self.scroll + 1,
            Action::Up => self.scroll.saturating_sub(1),
            Action::PageDown => self.scroll + self.rows,
            Action::PageUp => self.scroll.saturating_sub(self.rows),
            Action::First => 0,
            Action::Last => last,
            _ => self.scroll,
        }
        .min(last);
        Vec::new()
    }

    fn note_layout(&mut self, wants: &Wants) {
        if let Some(rows) = wants.model_rows {
            self.rows = rows.max(1);
        }
    }
}

fn draw(screen: &ModelScreen, frame: &mut Frame, area: Rect, shared: &Shared, wants: &mut Wants) {
    let rows = match &shared.summary {
        Loaded::Ready(rows) => rows,
        Loaded::Loading => {
            frame.render_widget(
                Paragraph::new("reading the model…").block(bordered("Model", shared)),
                area,
            );
            return;
        }
        Loaded::Failed(message) => {
            frame.render_widget(
                Paragraph::new(format!("cannot summarise the model: {message}"))
                    .style(shared.theme.bad())
                    .block(bordered("Model", shared)),
                area,
            );
            return;
        }
    };
    let total: usize = rows.iter().map(|r| r.params).sum();
    // Border (2) and header row (1).
    let visible = area.height.saturating_sub(3) as usize;
    wants.model_rows = Some(visible);
    let first = screen.scroll.min(rows.len().saturating_sub(visible));
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
    .header(Row::new(["#", "Layer", "Type", "Output", "Parameters"]).style(shared.theme.title()))
    .block(bordered(title, shared));
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
