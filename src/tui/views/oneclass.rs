//! The Training and Results views of a one-class run: a fit has no loss curves, so the Training
//! view shows the fit's stages (features, coreset, validation) and the fitted bank; the Results
//! view shows the ranking quality (AUROC, average precision), the threshold with the confusion at
//! it, and the histogram of both kinds' scores with the threshold marked.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, LineGauge, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::histogram::ScoreChart;
use super::{bordered, confusion_cell, duration, percent};
use crate::events::{AnomalyScores, FitStage};
use crate::runstate::OneClassFit;
use crate::tui::app::{App, Phase};

/// The Training view of a one-class run.
pub fn draw_fit(frame: &mut Frame, area: Rect, app: &App, fit: &OneClassFit) {
    let theme = &app.theme;
    let start = &fit.start;
    let [facts, stages, rest] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(FitStage::ALL.len() as u16 + 2),
        Constraint::Min(0),
    ])
    .areas(area);
    let [first, second] = Layout::vertical([Constraint::Length(1); 2]).areas(facts);
    frame.render_widget(
        Line::from(vec![
            Span::styled("Fit on ", theme.dim()),
            Span::raw(format!(
                "{} normal images of '{}'",
                start.train_images, start.normal_class
            )),
            Span::styled("   elapsed ", theme.dim()),
            Span::raw(duration(app.run.progress.elapsed_s)),
            Span::styled("   run ", theme.dim()),
            Span::raw(start.run.display().to_string()),
        ]),
        first,
    );
    frame.render_widget(
        Line::from(vec![
            Span::styled("features ", theme.dim()),
            Span::raw(start.layers.join(" + ")),
            Span::styled("   bank ≤ ", theme.dim()),
            Span::raw(start.max_bank.to_string()),
            Span::styled("   device ", theme.dim()),
            Span::raw(start.device.clone()),
        ]),
        second,
    );
    draw_stages(frame, stages, app, fit);
    let [model, scores] = Layout::vertical([Constraint::Length(6), Constraint::Min(0)]).areas(rest);
    draw_model(frame, model, app, fit);
    match &fit.scores {
        Some(found) => draw_histogram(frame, scores, app, found),
        None => frame.render_widget(
            Paragraph::new(
                "The score histogram of the test images follows the fit (also in 4 Results).",
            )
            .style(theme.dim())
            .wrap(Wrap { trim: true }),
            scores,
        ),
    }
}

fn draw_stages(frame: &mut Frame, area: Rect, app: &App, fit: &OneClassFit) {
    let theme = &app.theme;
    let block = bordered("Fitting", app);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = Layout::vertical([Constraint::Length(1); FitStage::ALL.len()]).split(inner);
    for (stage, row) in FitStage::ALL.into_iter().zip(rows.iter()) {
        let [name, gauge] =
            Layout::horizontal([Constraint::Length(12), Constraint::Min(0)]).areas(*row);
        let current = fit.stage == Some(stage) && app.run.phase == Phase::Running;
        frame.render_widget(
            Span::styled(
                stage.label(),
                if current { theme.title() } else { theme.dim() },
            ),
            name,
        );
        match fit.stage_progress(stage) {
            Some((done, total)) => {
                let ratio = if total > 0 {
                    (done as f64 / total as f64).clamp(0.0, 1.0)
                } else {
                    1.0
                };
                frame.render_widget(
                    LineGauge::default()
                        .ratio(ratio)
                        .label(format!("{done}/{total} {}", stage.unit()))
                        .filled_style(theme.gauge()),
                    gauge,
                );
            }
            None => frame.render_widget(Span::styled("waiting", theme.dim()), gauge),
        }
    }
}

fn draw_model(frame: &mut Frame, area: Rect, app: &App, fit: &OneClassFit) {
    let theme = &app.theme;
    let block = bordered("Model", app);
    let text = match &fit.fitted {
        Some(f) => vec![
            Line::from(vec![
                Span::styled("bank ", theme.dim()),
                Span::raw(format!("{} entries", f.bank_entries)),
                Span::styled("   validation AUROC ", theme.dim()),
                Span::raw(figure(f.val_auroc)),
            ]),
            Line::from(
                [
                    Span::styled("threshold ", theme.dim()),
                    Span::raw(format!("{:.4}", f.threshold)),
                ]
                .into_iter()
                .chain(f.scan_threshold.into_iter().flat_map(|t| {
                    // What scan reads its windows against (their inner patches' scores).
                    [
                        Span::styled("   scan threshold ", theme.dim()),
                        Span::raw(format!("{t:.4}")),
                    ]
                }))
                .collect::<Vec<_>>(),
            ),
            Line::from(Span::styled(f.threshold_rule.clone(), theme.dim())),
        ],
        None if matches!(app.run.phase, Phase::Failed(_)) => {
            vec![Line::styled("the fit failed (see below)", theme.bad())]
        }
        None => vec![Line::styled(
            "fitting: the bank and the threshold come when the stages are done",
            theme.dim(),
        )],
    };
    frame.render_widget(
        Paragraph::new(text).block(block).wrap(Wrap { trim: true }),
        area,
    );
}

/// The Results view of a one-class run; `false` when there is nothing of one-class to show (then
/// the ordinary Results view draws).
pub fn draw_results(frame: &mut Frame, area: Rect, app: &App) -> bool {
    let Some(scores) = app.run.one_class.as_ref().and_then(|f| f.scores.as_ref()) else {
        return false;
    };
    let [summary, histogram] =
        Layout::vertical([Constraint::Length(9), Constraint::Min(0)]).areas(area);
    let [figures, matrix] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(summary);
    draw_figures(frame, figures, app, scores);
    draw_confusion(frame, matrix, app);
    draw_histogram(frame, histogram, app, scores);
    true
}

fn figure(value: Option<f64>) -> String {
    value.map_or("n/a".into(), |v| format!("{v:.4}"))
}

fn draw_figures(frame: &mut Frame, area: Rect, app: &App, scores: &AnomalyScores) {
    let theme = &app.theme;
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
    if let Some(tested) = &app.run.tested {
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
    if let Some(rule) = app
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
            .block(bordered(title, app))
            .wrap(Wrap { trim: true }),
        area,
    );
}

/// The confusion at the threshold from the `Tested` event (rows: true kind, columns: verdict).
fn draw_confusion(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let block = bordered("At the threshold", app);
    let Some(tested) = &app.run.tested else {
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

fn draw_histogram(frame: &mut Frame, area: Rect, app: &App, scores: &AnomalyScores) {
    let theme = &app.theme;
    let h = &scores.histogram;
    let (normal, anomalous): (usize, usize) = (h.normal.iter().sum(), h.anomalous.iter().sum());
    let block = bordered("Anomaly scores", app).title(
        Line::from(vec![
            Span::styled(format!(" normal {normal} ▲ "), theme.good()),
            Span::styled(format!("anomalous {anomalous} ▼ "), theme.bad()),
            Span::styled("│ threshold ", theme.key()),
        ])
        .right_aligned(),
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(
        ScoreChart {
            histogram: h,
            threshold: scores.threshold,
            normal: theme.good(),
            anomalous: theme.bad(),
            marker: theme.key(),
            axis: theme.dim(),
        },
        inner,
    );
}

/// The threshold of a one-class run, once the events have given it.
pub fn threshold(app: &App) -> Option<f32> {
    let fit = app.run.one_class.as_ref()?;
    fit.scores
        .as_ref()
        .map(|s| s.threshold)
        .or(fit.fitted.as_ref().map(|f| f.threshold))
}

/// The browser's facts about a test image of a one-class run (None for other runs): its kind,
/// the verdict, and its anomaly score beside the threshold.
pub fn facts(app: &App, item: usize) -> Option<Vec<Line<'static>>> {
    let threshold = threshold(app)?;
    let theme = &app.theme;
    let b = &app.browser;
    let it = app.test_items().get(item)?;
    let field = |name: &str, value: String| super::fact_line(theme, name, value);
    let verdict = super::verdict_span(theme, it.is_correct());
    let filter = |f: Option<usize>| f.map_or("all".to_string(), |c| app.class_name(c));
    Some(vec![
        field(
            "Image",
            format!("{} of {}", b.cursor() + 1, b.visible().len()),
        ),
        field("True", app.class_name(it.truth)),
        Line::from(vec![
            Span::styled(format!("{:<10}", "Verdict"), theme.dim()),
            Span::raw(app.class_name(it.predicted)),
            verdict,
        ]),
        field("Score", format!("{:.4}", it.anomaly_score(threshold))),
        field("Threshold", format!("{threshold:.4}")),
        Line::default(),
        field("True in", filter(b.truth_filter)),
        field("Verd. in", filter(b.predicted_filter)),
        field("Order", b.order.label().to_string()),
        field(
            "Map",
            if b.spec.overlay {
                format!("on, alpha {}%", b.spec.alpha_percent)
            } else {
                "off".into()
            },
        ),
        Line::styled("Features", theme.dim()),
        Line::raw(app.layers.get(b.spec.layer).cloned().unwrap_or_default()),
    ])
}
