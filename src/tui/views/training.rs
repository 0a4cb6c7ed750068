//! Training view: progress, speed and resources, loss and accuracy charts (raw, smoothed and
//! validation on the same axes, like MATLAB's training-progress plot), the recent trend as
//! sparklines, checkpoint status, and the validation Grad-CAMs of the current model.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, LineGauge, Paragraph, Sparkline};
use ratatui::Frame;

use super::{
    bordered, draw_picture, duration, outcome_caption, percent, tile_grid, Component, Effect,
    Origin, Shared, Wants,
};
use crate::app::gallery::CamCaption;
use crate::run::event::Event;
use crate::run::recipe::OutputNetwork;
use crate::run::state::Phase;
use crate::tui::history::{MetricHistory, Series};
use crate::tui::images::ImageKey;
use crate::tui::jobs::{Reply, Request};
use crate::tui::keymap::{Action, View};

/// The Training tab of a training: the charts' series and the latest validation Grad-CAMs.
#[derive(Debug, Default)]
pub struct TrainingScreen {
    pub history: MetricHistory,
    pub cams: Option<CamSet>,
    pub cams_error: Option<String>,
    /// The newest validation whose Grad-CAMs were not asked for yet.
    pub cams_due: Option<usize>,
}

/// The latest validation Grad-CAMs: images live in the store under `ValidationCam` keys.
#[derive(Debug, Clone)]
pub struct CamSet {
    pub iteration: usize,
    pub captions: Vec<CamCaption>,
}

fn draw_training(
    screen: &TrainingScreen,
    frame: &mut Frame,
    area: Rect,
    shared: &Shared,
    wants: &mut Wants,
) {
    if shared.run.phase == Phase::Waiting {
        let text = match shared.origin {
            Origin::Live => {
                "Waiting for the training to start (loading data and weights)…".to_string()
            }
            Origin::Watch => "Waiting for events in the run's metrics.jsonl…".to_string(),
        };
        frame.render_widget(
            Paragraph::new(text).block(bordered("Training", shared)),
            area,
        );
        return;
    }
    let [header, trend, body] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    draw_header(frame, header, shared);
    draw_trend(screen, frame, trend, shared);
    let cams_width = if area.width >= 120 {
        area.width / 3
    } else {
        28
    };
    let [charts, cams] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(cams_width)]).areas(body);
    let [accuracy, loss] =
        Layout::vertical([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(charts);
    let total = shared
        .run
        .total_iterations()
        .max(shared.run.progress.iteration)
        .max(1) as f64;
    draw_chart(
        frame,
        accuracy,
        shared,
        "Accuracy %",
        &screen.history.accuracy_percent,
        total,
        Some(100.0),
    );
    draw_chart(
        frame,
        loss,
        shared,
        "Loss",
        &screen.history.loss,
        total,
        None,
    );
    draw_cams(screen, frame, cams, shared, wants);
}

fn draw_header(frame: &mut Frame, area: Rect, shared: &Shared) {
    let theme = &shared.theme;
    let p = &shared.run.progress;
    let run = &shared.run.start;
    let total = run.total_iterations();
    let [counts, gauge, speed, checkpoint] =
        Layout::vertical([Constraint::Length(1); 4]).areas(area);

    // While running: time left; once over: the best validation accuracy, the figure that counts,
    // unless the run keeps its last model: then that is said, as the best is not what it tests.
    let keeps_last = run.output_network == OutputNetwork::LastIteration;
    let (outlook_label, outlook) = match (&shared.run.phase, shared.run.eta_s()) {
        (Phase::Running, _) if shared.paused => ("   ETA ", "paused".to_string()),
        (Phase::Running, Some(eta)) => ("   ETA ", duration(eta)),
        (Phase::Running, None) => ("   ETA ", "—".to_string()),
        (Phase::Finished { .. }, _) if keeps_last => {
            ("   model kept ", "the last iteration's".to_string())
        }
        (
            Phase::Finished {
                best_val_accuracy: Some(best),
                ..
            },
            _,
        ) => ("   best validation ", percent(f64::from(*best))),
        _ => ("   ETA ", "—".to_string()),
    };
    frame.render_widget(
        Line::from(vec![
            Span::styled("Epoch ", theme.dim()),
            Span::raw(format!("{}/{}", p.epoch, run.epochs)),
            Span::styled("   Iteration ", theme.dim()),
            Span::raw(format!("{}/{}", p.iteration, total)),
            Span::styled(outlook_label, theme.dim()),
            Span::raw(outlook),
            Span::styled("   elapsed ", theme.dim()),
            Span::raw(duration(p.elapsed_s)),
            Span::styled("   run ", theme.dim()),
            Span::raw(run.run.display().to_string()),
        ]),
        counts,
    );
    let ratio = if total > 0 {
        (p.iteration as f64 / total as f64).clamp(0.0, 1.0)
    } else {
        0.0
    };
    frame.render_widget(
        LineGauge::default()
            .ratio(ratio)
            .label(percent(ratio))
            .filled_style(theme.gauge()),
        gauge,
    );
    let memory = match shared.memory_bytes {
        Some(bytes) => format!("{} MiB", bytes / (1024 * 1024)),
        None => "—".to_string(),
    };
    frame.render_widget(
        Line::from(vec![
            Span::raw(format!("{:.1}", p.images_per_s)),
            Span::styled(" img/s   lr ", theme.dim()),
            Span::raw(format!("{:.1e}", p.learning_rate)),
            Span::styled("   device ", theme.dim()),
            Span::raw(run.device.clone()),
            Span::styled("   memory ", theme.dim()),
            Span::raw(memory),
            Span::styled("   batch ", theme.dim()),
            Span::raw(run.batch_size.to_string()),
        ]),
        speed,
    );
    frame.render_widget(checkpoint_line(shared), checkpoint);
}

fn checkpoint_line(shared: &Shared) -> Line<'static> {
    let theme = &shared.theme;
    let mut spans = vec![Span::styled("checkpoint ", theme.dim())];
    match &shared.run.checkpoint {
        Some(c) => {
            spans.push(Span::raw(format!("iteration {}", c.iteration)));
            if c.best {
                spans.push(Span::styled(" (best)", theme.good()));
            }
            if let Some(acc) = c.val_accuracy {
                spans.push(Span::raw(format!(" val {}", percent(f64::from(acc)))));
            }
            let name = c
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            spans.push(Span::styled(format!("  {name}"), theme.dim()));
        }
        None => spans.push(Span::styled("none yet", theme.dim())),
    }
    if shared.save_requested.is_some() {
        spans.push(Span::styled("  saving…", theme.warn()));
    }
    Line::from(spans)
}

fn draw_trend(screen: &TrainingScreen, frame: &mut Frame, area: Rect, shared: &Shared) {
    let theme = &shared.theme;
    let [loss_label, loss, acc_label, acc] = Layout::horizontal([
        Constraint::Length(12),
        Constraint::Fill(1),
        Constraint::Length(12),
        Constraint::Fill(1),
    ])
    .areas(area);
    frame.render_widget(Span::styled("trend  loss ", theme.dim()), loss_label);
    frame.render_widget(
        sparkline(&screen.history.loss, loss.width).style(theme.smooth_series()),
        loss,
    );
    frame.render_widget(Span::styled("  accuracy ", theme.dim()), acc_label);
    frame.render_widget(
        sparkline(&screen.history.accuracy_percent, acc.width).style(theme.smooth_series()),
        acc,
    );
}

/// The last `width` raw values, scaled between their own minimum and maximum so the shape shows.
fn sparkline(series: &Series, width: u16) -> Sparkline<'static> {
    let values: Vec<f64> = series.recent().collect();
    let values = &values[values.len().saturating_sub(width as usize)..];
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(1e-9);
    let data: Vec<u64> = values
        .iter()
        .map(|v| 1 + ((v - lo) / span * 99.0).round() as u64)
        .collect();
    Sparkline::default().data(data).max(100)
}

fn draw_chart(
    frame: &mut Frame,
    area: Rect,
    shared: &Shared,
    name: &str,
    series: &Series,
    total: f64,
    fixed_top: Option<f64>,
) {
    let theme = &shared.theme;
    // Two Braille dots per cell across; more points than that cannot be seen.
    let (raw, smoothed) = series.chart_data(2 * area.width as usize);
    let validation = series.validation();
    // Percentages read well with one decimal, losses need three.
    let decimals = if fixed_top.is_some() { 1 } else { 3 };
    let mut title = name.to_string();
    if let Some(last) = series.last_smoothed() {
        title.push_str(&format!(" · smoothed {last:.decimals$}"));
    }
    if let Some(&(_, v)) = validation.last() {
        title.push_str(&format!(" · validation {v:.decimals$}"));
    }
    let top = fixed_top.unwrap_or_else(|| (series.max_value().unwrap_or(1.0) * 1.1).max(1e-3));
    let datasets = vec![
        Dataset::default()
            .name("batch")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.raw_series())
            .data(&raw),
        Dataset::default()
            .name("smoothed")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.smooth_series())
            .data(&smoothed),
        Dataset::default()
            .name("validation")
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(theme.validation_series())
            .data(validation),
    ];
    let y_labels = [0.0, top / 2.0, top].map(|v| {
        if fixed_top.is_some() {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    });
    let chart = Chart::new(datasets)
        .block(bordered(title, shared))
        .x_axis(
            Axis::default()
                .bounds([0.0, total])
                .labels(["0".to_string(), format!("{}", total as u64)])
                .style(theme.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels(y_labels)
                .style(theme.dim()),
        );
    frame.render_widget(chart, area);
}

fn draw_cams(
    screen: &TrainingScreen,
    frame: &mut Frame,
    area: Rect,
    shared: &Shared,
    wants: &mut Wants,
) {
    let title = match &screen.cams {
        Some(cams) => format!("Grad-CAM @ {}", cams.iteration),
        None => "Grad-CAM".to_string(),
    };
    let block = bordered(title, shared);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(error) = &screen.cams_error {
        frame.render_widget(
            Paragraph::new(error.clone())
                .style(shared.theme.bad())
                .wrap(ratatui::widgets::Wrap { trim: true }),
            inner,
        );
        return;
    }
    let Some(cams) = &screen.cams else {
        let text = if shared.run.last_validation.is_some() {
            "rendering…"
        } else {
            "after the first validation"
        };
        frame.render_widget(
            Paragraph::new(text).style(shared.theme.dim()).centered(),
            inner,
        );
        return;
    };
    for (index, (picture, caption)) in tile_grid(inner, cams.captions.len(), 1)
        .into_iter()
        .enumerate()
    {
        let key = ImageKey::ValidationCam {
            iteration: cams.iteration,
            index,
        };
        draw_picture(frame, picture, shared, key, wants, "rendering…");
        let cam = &cams.captions[index];
        let text = outcome_caption(&cam.truth, &cam.said, cam.score, caption.width);
        frame.render_widget(Line::raw(text).centered(), caption);
    }
}

impl Component for TrainingScreen {
    fn view(&self) -> View {
        View::Training
    }

    fn draw(&self, frame: &mut Frame, area: Rect, shared: &Shared, wants: &mut Wants) {
        draw_training(self, frame, area, shared, wants);
    }

    fn handle(&mut self, action: Action, _shared: &mut Shared) -> Vec<Effect> {
        steering(action)
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::Iteration {
                iteration,
                loss,
                accuracy,
                ..
            } => self.history.record_iteration(*iteration, *loss, *accuracy),
            Event::Validation {
                iteration,
                loss,
                accuracy,
                ..
            } => {
                self.history.record_validation(*iteration, *loss, *accuracy);
                self.cams_due = Some(*iteration);
            }
            _ => {}
        }
    }

    fn reply(&mut self, reply: &Reply, shared: &mut Shared) {
        let Reply::ValidationCams { iteration, result } = reply else {
            return;
        };
        match result {
            Ok(cams) => {
                let mut captions = Vec::with_capacity(cams.len());
                for (index, (image, caption)) in cams.iter().enumerate() {
                    shared.images.put(
                        ImageKey::ValidationCam {
                            iteration: *iteration,
                            index,
                        },
                        Ok(image.clone()),
                    );
                    captions.push(caption.clone());
                }
                shared.images.retain(|key| match key {
                    ImageKey::ValidationCam { iteration: i, .. } => i == iteration,
                    _ => true,
                });
                self.cams = Some(CamSet {
                    iteration: *iteration,
                    captions,
                });
                self.cams_error = None;
            }
            Err(message) => self.cams_error = Some(message.clone()),
        }
    }

    fn request(&mut self) -> Option<Request> {
        self.cams_due
            .take()
            .map(|iteration| Request::ValidationCams { iteration })
    }

    fn footer(&self, shared: &Shared) -> Vec<(&'static str, &'static str)> {
        steering_footer(self.view(), shared)
    }
}

/// What the Training tab's keys ask: pause or resume, stop (after asking), a checkpoint now.
pub(super) fn steering(action: Action) -> Vec<Effect> {
    match action {
        Action::Pause => vec![Effect::TogglePause],
        Action::Stop => vec![Effect::ConfirmStop],
        Action::SaveCheckpoint => vec![Effect::SaveCheckpoint],
        _ => Vec::new(),
    }
}

/// The Training tab's keys for the footer: p/s/c while they can steer ("resume" while paused),
/// "read-only" while a training runs that they cannot steer (they would only say why), else none.
pub(super) fn steering_footer(view: View, shared: &Shared) -> Vec<(&'static str, &'static str)> {
    if !shared.can_steer() {
        return if shared.training_running() {
            vec![("p/s/c", "read-only")]
        } else {
            vec![]
        };
    }
    crate::tui::keymap::view_commands(view)
        .flat_map(|command| command.footer.iter().copied())
        .map(|(key, label)| match (key, label) {
            ("p", "pause") if shared.paused => (key, "resume"),
            pair => pair,
        })
        .collect()
}
