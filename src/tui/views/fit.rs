//! The Training tab of a one-class fit: a fit has no loss curves, so it shows the fit's stages
//! (features, coreset, validation), the fitted bank and threshold, and once the test images are
//! scored, their histogram.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{LineGauge, Paragraph, Wrap};
use ratatui::Frame;

use super::histogram::draw_histogram;
use super::scores::figure;
use super::training::{steering, steering_footer};
use super::{bordered, duration, Component, Effect, Origin, Shared, Wants};
use crate::run::event::FitStage;
use crate::run::state::{OneClassFit, Phase};
use crate::tui::keymap::{Action, View};

/// The Training tab of a one-class fit.
pub struct FitScreen;

impl Component for FitScreen {
    fn view(&self) -> View {
        View::Training
    }

    fn draw(&self, frame: &mut Frame, area: Rect, shared: &Shared, _wants: &mut Wants) {
        match &shared.run.one_class {
            Some(fit) if shared.run.phase != Phase::Waiting => draw_fit(frame, area, shared, fit),
            _ => waiting(frame, area, shared),
        }
    }

    /// A fit cannot be steered: its keys say so, as the Training tab's do on a read-only run.
    fn handle(&mut self, action: Action, _shared: &mut Shared) -> Vec<Effect> {
        steering(action)
    }

    fn footer(&self, shared: &Shared) -> Vec<(&'static str, &'static str)> {
        steering_footer(self.view(), shared)
    }
}

/// Before the first event.
fn waiting(frame: &mut Frame, area: Rect, shared: &Shared) {
    let text = match shared.origin {
        Origin::Live => "Waiting for the training to start (loading data and weights)…",
        Origin::Watch => "Waiting for events in the run's metrics.jsonl…",
    };
    frame.render_widget(
        Paragraph::new(text).block(bordered("Training", shared)),
        area,
    );
}

fn draw_fit(frame: &mut Frame, area: Rect, shared: &Shared, fit: &OneClassFit) {
    let theme = &shared.theme;
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
            Span::raw(duration(shared.run.progress.elapsed_s)),
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
    draw_stages(frame, stages, shared, fit);
    let [model, scores] = Layout::vertical([Constraint::Length(6), Constraint::Min(0)]).areas(rest);
    draw_model(frame, model, shared, fit);
    match &fit.scores {
        Some(found) => draw_histogram(frame, scores, shared, found),
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

fn draw_stages(frame: &mut Frame, area: Rect, shared: &Shared, fit: &OneClassFit) {
    let theme = &shared.theme;
    let block = bordered("Fitting", shared);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = Layout::vertical([Constraint::Length(1); FitStage::ALL.len()]).split(inner);
    for (stage, row) in FitStage::ALL.into_iter().zip(rows.iter()) {
        let [name, gauge] =
            Layout::horizontal([Constraint::Length(12), Constraint::Min(0)]).areas(*row);
        let current = fit.stage == Some(stage) && shared.run.phase == Phase::Running;
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

fn draw_model(frame: &mut Frame, area: Rect, shared: &Shared, fit: &OneClassFit) {
    let theme = &shared.theme;
    let block = bordered("Model", shared);
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
        None if matches!(shared.run.phase, Phase::Failed(_)) => {
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
