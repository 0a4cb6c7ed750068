//! Results view: the test set's confusion matrix with counts and row percentages, per-class
//! precision, recall and F1, the accuracy, and the hardest test images with label and score.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::{
    bordered, confusion_cell, draw_picture, outcome_caption, percent, tile_grid, Component, Loaded,
    Shared, Wants,
};
use crate::core::stats::{self, Confusion};
use crate::run::report::SourceResult;
use crate::tui::images::ImageKey;
use crate::tui::keymap::View;

/// The Results tab of a classifier's test.
pub struct ResultsScreen;

impl Component for ResultsScreen {
    fn view(&self) -> View {
        View::Results
    }

    fn draw(&self, frame: &mut Frame, area: Rect, shared: &Shared, wants: &mut Wants) {
        draw(frame, area, shared, wants);
    }
}

/// The confusion matrix, the per-class figures and the hardest test images (before the test:
/// what is missing).
pub(super) fn draw(frame: &mut Frame, area: Rect, shared: &Shared, wants: &mut Wants) {
    let items = shared.test_items();
    let confusion = match &shared.run.tested {
        Some(t) => Confusion {
            classes: if t.classes.is_empty() {
                shared.class_names().to_vec()
            } else {
                t.classes.clone()
            },
            counts: t.confusion.clone(),
        },
        None if !items.is_empty() => Confusion::from_pairs(
            shared.class_names().to_vec(),
            items.iter().map(|item| (item.truth, item.predicted)),
        ),
        None => {
            let text = match &shared.items {
                Loaded::Failed(message) => format!("cannot read the test results: {message}"),
                _ => "Not tested yet: results appear when training has finished and the test set is classified."
                    .to_string(),
            };
            frame.render_widget(
                Paragraph::new(text).block(bordered("Results", shared)),
                area,
            );
            return;
        }
    };
    let thumbs_width = if area.width >= 120 {
        area.width * 2 / 5
    } else {
        30
    };
    let [left, right] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(thumbs_width)]).areas(area);
    let n = confusion.classes.len();
    let sources = several_sources(shared);
    let [matrix, scores, per_source] = Layout::vertical([
        Constraint::Length(n as u16 + 3),
        Constraint::Min(n as u16 + 3),
        Constraint::Length(sources_height(sources)),
    ])
    .areas(left);
    draw_matrix(frame, matrix, shared, &confusion);
    draw_scores(frame, scores, shared, &confusion);
    if !sources.is_empty() {
        draw_sources(frame, per_source, shared, sources, &confusion.classes);
    }
    draw_hardest(frame, right, shared, wants);
}

fn draw_matrix(frame: &mut Frame, area: Rect, shared: &Shared, confusion: &Confusion) {
    let theme = &shared.theme;
    let classes = &confusion.classes;
    let (correct, total) = (confusion.correct(), confusion.total());
    let accuracy = shared
        .run
        .tested
        .as_ref()
        .map(|t| f64::from(t.accuracy))
        .or_else(|| (total > 0).then(|| confusion.accuracy()));
    let header = std::iter::once(Cell::from("true \\ predicted"))
        .chain(classes.iter().map(|c| Cell::from(c.clone())))
        .collect::<Row>()
        .style(theme.title());
    let rows = confusion.counts.iter().enumerate().map(|(t, row)| {
        let fractions = confusion.row_fractions(t);
        std::iter::once(
            Cell::from(classes.get(t).cloned().unwrap_or_default()).style(theme.title()),
        )
        .chain(
            row.iter()
                .zip(fractions)
                .enumerate()
                .map(|(p, (&count, fraction))| confusion_cell(count, fraction, p == t, theme)),
        )
        .collect::<Row>()
    });
    let widths =
        std::iter::once(Constraint::Length(17)).chain(classes.iter().map(|_| Constraint::Fill(1)));
    let title = match accuracy {
        Some(a) => format!(
            "Confusion matrix · accuracy {} ({correct}/{total})",
            percent(a)
        ),
        None => "Confusion matrix".to_string(),
    };
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(bordered(title, shared)),
        area,
    );
}

fn draw_scores(frame: &mut Frame, area: Rect, shared: &Shared, confusion: &Confusion) {
    let rows = confusion.per_class().into_iter().map(|s| {
        Row::new([
            s.class,
            stats::figure(s.precision, 3),
            stats::figure(s.recall, 3),
            stats::figure(s.f1, 3),
            s.support.to_string(),
        ])
    });
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(7),
    ];
    let table = Table::new(rows, widths)
        .header(
            Row::new(["Class", "Precision", "Recall", "F1", "Images"]).style(shared.theme.title()),
        )
        .block(bordered("Per class", shared));
    frame.render_widget(table, area);
}

/// The test results of each data source, when the run has several (none for one: the overall
/// figures say it all).
pub(super) fn several_sources(shared: &Shared) -> &[SourceResult] {
    match &shared.run.tested {
        Some(t) if t.sources.len() > 1 => &t.sources,
        _ => &[],
    }
}

/// Rows of the per-source table with its header and border (0 when there is no table).
pub(super) fn sources_height(sources: &[SourceResult]) -> u16 {
    if sources.is_empty() {
        0
    } else {
        sources.len() as u16 + 3
    }
}

/// One row per data source: its images, accuracy, each class's recall and, for a one-class
/// model, its AUROC, so that a source holding the mistakes shows beside the overall figure.
pub(super) fn draw_sources(
    frame: &mut Frame,
    area: Rect,
    shared: &Shared,
    sources: &[SourceResult],
    classes: &[String],
) {
    // A one-class model's sources carry AUROC (where they hold both kinds).
    let ranked = sources.iter().any(|s| s.auroc.is_some());
    let rows = sources.iter().map(|s| {
        let right: usize = (0..s.confusion.len()).map(|c| s.confusion[c][c]).sum();
        let style = if right == s.images {
            shared.theme.good()
        } else {
            shared.theme.bad()
        };
        std::iter::once(Cell::from(s.name.clone()))
            .chain([
                Cell::from(s.images.to_string()),
                Cell::from(format!("{} ({right}/{})", percent(s.accuracy), s.images)).style(style),
            ])
            .chain(s.recall.iter().map(|r| Cell::from(stats::figure(*r, 3))))
            .chain(ranked.then(|| Cell::from(stats::figure(s.auroc, 4))))
            .collect::<Row>()
    });
    let header = ["Source", "Images", "Accuracy"]
        .into_iter()
        .map(String::from)
        .chain(classes.iter().map(|c| format!("Recall {c}")))
        .chain(ranked.then(|| "AUROC".to_string()))
        .collect::<Row>()
        .style(shared.theme.title());
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(7),
        Constraint::Length(18),
    ]
    .into_iter()
    .chain(classes.iter().map(|_| Constraint::Fill(1)))
    .chain(ranked.then_some(Constraint::Length(8)));
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(bordered("Per data source", shared)),
        area,
    );
}

/// The test images with the highest loss: the mistakes first, then the least sure successes.
fn draw_hardest(frame: &mut Frame, area: Rect, shared: &Shared, wants: &mut Wants) {
    let block = bordered("Hardest test images", shared);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let items = shared.test_items();
    if items.is_empty() {
        frame.render_widget(
            Paragraph::new("rendering…").style(shared.theme.dim()),
            inner,
        );
        return;
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| items[b].loss.total_cmp(&items[a].loss));
    // About 8 rows per picture and caption keeps them recognisable.
    let count = (inner.height as usize / 8).clamp(1, 4) * if inner.width >= 40 { 2 } else { 1 };
    order.truncate(count);
    for (&item, (picture, caption)) in order.iter().zip(tile_grid(inner, order.len(), 1)) {
        let key = ImageKey::Picture {
            item,
            spec: shared.spec,
        };
        draw_picture(frame, picture, shared, key, wants, "rendering…");
        let it = &items[item];
        let style = if it.is_correct() {
            shared.theme.good()
        } else {
            shared.theme.bad()
        };
        let (truth, predicted) = (shared.class_name(it.truth), shared.class_name(it.predicted));
        let text = outcome_caption(&truth, &predicted, it.score, caption.width);
        frame.render_widget(Line::from(Span::styled(text, style)).centered(), caption);
    }
}
