//! The Results tab of a one-class model: the ranking quality (AUROC, average precision), the
//! threshold with the confusion at it, per data source when there are several, and the histogram
//! of both kinds' scores with the threshold marked. Before the test scores arrive it says what the
//! Results tab of a training says.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::histogram::draw_histogram;
use super::results;
use super::{bordered, confusion_cell, percent, Component, Shared, Wants};
use crate::run::event::AnomalyScores;
use crate::tui::keymap::View;

/// The Results tab of a one-class model.
pub struct ScoresScreen;

impl Component for ScoresScreen {
    fn view(&self) -> View {
        View::Results
    }

    fn draw(&self, frame: &mut Frame, area: Rect, shared: &Shared, wants: &mut Wants) {
        match shared
            .run
            .one_class
            .as_ref()
            .and_then(|f| f.scores.as_ref())
        {
            Some(scores) => draw_scores(frame, area, shared, scores),
            None => results::draw(frame, area, shared, wants),
        }
    }
}

fn draw_scores(frame: &mut Frame, area: Rect, shared: &Shared, scores: &AnomalyScores) {
    let sources = results::several_sources(shared);
    let [summary, per_source, histogram] = Layout::vertical([
        Constraint::Length(9),
        Constraint::Length(results::sources_height(sources)),
        Constraint::Min(0),
    ])
    .areas(area);
    if let Some(tested) = shared.run.tested.as_ref().filter(|_| !sources.is_empty()) {
        results::draw_sources(frame, per_source, shared, sources, &tested.classes);
    }
    let [figures, matrix] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(summary);
    draw_figures(frame, figures, shared, scores);
    draw_confusion(frame, matrix, shared);
    draw_histogram(frame, histogram, shared, scores);
}

/// A ranking figure, or "n/a" when the scores cannot give it.
pub(super) fn figure(value: Option<f64>) -> String {
    value.map_or("n/a".into(), |v| format!("{v:.4}"))
}

fn draw_figures(frame: &mut Frame, area: Rect, shared: &Shared, scores: &AnomalyScores) {
    let theme = &shared.theme;
    let field = |name: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{name:<18}"), theme.dim()),
            Span::raw(value),
        ])
    };
    let mut lines = vec![
        field("AUROC", figure(scores.auroc)),
        field("average precision", figure(scores.average_precision)),
        field("threshold", format!("{:.4}", scores.threshold)),
    ];
    if let Some(tested) = &shared.run.tested {
        let total: usize = tested.confusion.iter().flatten().sum();
        let correct: usize = (0..tested.confusion.len())
            .filter_map(|i| tested.confusion[i].get(i))
            .sum();
        lines.push(field(
            "accuracy",
            format!(
                "{} ({correct}/{total})",
                percent(f64::from(tested.accuracy))
            ),
        ));
    }
    if let Some(rule) = shared
        .run
        .one_class
        .as_ref()
        .and_then(|f| f.fitted.as_ref())
        .map(|f| f.threshold_rule.clone())
    {
        lines.push(Line::styled(rule, theme.dim()));
    }
    if scores.auroc.is_none() {
        lines.push(Line::styled(
            "AUROC needs both kinds among the test images",
            theme.dim(),
        ));
    }
    let title = format!("Test images · normal = {}", scores.normal_class);
    frame.render_widget(
        Paragraph::new(lines)
            .block(bordered(title, shared))
            .wrap(Wrap { trim: true }),
        area,
    );
}

/// The confusion at the threshold from the `Tested` event (rows: true kind, columns: verdict).
fn draw_confusion(frame: &mut Frame, area: Rect, shared: &Shared) {
    let theme = &shared.theme;
    let block = bordered("At the threshold", shared);
    let Some(tested) = &shared.run.tested else {
        frame.render_widget(
            Paragraph::new("the verdicts come with the test results").block(block),
            area,
        );
        return;
    };
    let header = std::iter::once(Cell::from("true \\ verdict"))
        .chain(tested.classes.iter().map(|c| Cell::from(c.clone())))
        .collect::<Row>()
        .style(theme.title());
    let rows = tested.confusion.iter().enumerate().map(|(t, row)| {
        let total: usize = row.iter().sum();
        std::iter::once(
            Cell::from(tested.classes.get(t).cloned().unwrap_or_default()).style(theme.title()),
        )
        .chain(row.iter().enumerate().map(|(p, &count)| {
            let share = (total > 0).then(|| count as f64 / total as f64);
            confusion_cell(count, share, p == t, theme)
        }))
        .collect::<Row>()
    });
    let widths = std::iter::once(Constraint::Length(15))
        .chain(tested.classes.iter().map(|_| Constraint::Fill(1)));
    frame.render_widget(Table::new(rows, widths).header(header).block(block), area);
}
