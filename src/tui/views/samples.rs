//! Samples view: labelled tiles of the dataset, as the seed demo shows before training.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{bordered, draw_picture, Component, Loaded, Shared, Wants};
use crate::tui::images::ImageKey;
use crate::tui::keymap::View;

/// The Samples tab: the labelled tiles of the dataset, as the seed demo shows before training.
pub struct SamplesScreen;

impl Component for SamplesScreen {
    fn view(&self) -> View {
        View::Samples
    }

    fn draw(&self, frame: &mut Frame, area: Rect, shared: &Shared, wants: &mut Wants) {
        draw(frame, area, shared, wants);
    }
}

fn draw(frame: &mut Frame, area: Rect, shared: &Shared, wants: &mut Wants) {
    let block = bordered("Samples of the dataset", shared);
    let [inner, counts] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(block.inner(area));
    frame.render_widget(block, area);
    frame.render_widget(
        Line::styled(split_counts(shared), shared.theme.dim()).centered(),
        counts,
    );
    match &shared.samples {
        Loaded::Ready(true) => {
            draw_picture(frame, inner, shared, ImageKey::Samples, wants, "rendering…")
        }
        Loaded::Ready(false) => {
            frame.render_widget(Paragraph::new("No sample images to show."), inner)
        }
        Loaded::Loading => frame.render_widget(
            Paragraph::new("rendering…").style(shared.theme.dim()),
            inner,
        ),
        Loaded::Failed(message) => frame.render_widget(
            Paragraph::new(format!("cannot show samples: {message}")).style(shared.theme.bad()),
            inner,
        ),
    }
}

/// "train 640 · val 80 · test 200 (per class 320/320 · 40/40 · 100/100)".
fn split_counts(shared: &Shared) -> String {
    let run = &shared.run.start;
    if run.train_per_class.is_empty() {
        return String::new();
    }
    let total = |v: &[usize]| v.iter().sum::<usize>();
    let per_class = |v: &[usize]| {
        v.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join("/")
    };
    format!(
        "train {} · val {} · test {} (per class {} · {} · {})",
        total(&run.train_per_class),
        total(&run.val_per_class),
        total(&run.test_per_class),
        per_class(&run.train_per_class),
        per_class(&run.val_per_class),
        per_class(&run.test_per_class),
    )
}
