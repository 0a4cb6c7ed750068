//! Browser view: test images one at a time (with their facts beside them) or as a grid, with the
//! Grad-CAM overlay as the browser state asks.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::{bordered, draw_picture, uniform_cells, Component, Effect, Loaded, Shared, Wants};
use crate::tui::browser::BrowserState;
use crate::tui::images::ImageKey;
use crate::tui::jobs::{Reply, Request};
use crate::tui::keymap::{self, Action, Command, View};

/// The Browser tab: its position, filters and order among the test images.
pub struct BrowserScreen {
    pub state: BrowserState,
    facts: Facts,
}

/// What the panel beside a picture says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facts {
    /// A classifier's: predicted class, score and loss, the explanation's method, layer, class.
    Classes,
    /// A one-class model's: the verdict, the anomaly score beside the threshold, the features.
    Scores,
}

impl BrowserScreen {
    pub fn new(facts: Facts) -> BrowserScreen {
        BrowserScreen {
            state: BrowserState::default(),
            facts,
        }
    }
}

impl Component for BrowserScreen {
    fn view(&self) -> View {
        View::Browser
    }

    fn draw(&self, frame: &mut Frame, area: Rect, shared: &Shared, wants: &mut Wants) {
        draw(self, frame, area, shared, wants);
    }

    /// Picture settings work before the test items arrive; moving over none does nothing.
    fn handle(&mut self, action: Action, shared: &mut Shared) -> Vec<Effect> {
        let items = shared.test_items().to_vec();
        let classes = shared.class_names().len();
        let browser = &mut self.state;
        let spec = &mut shared.spec;
        let (columns, rows) = browser.cells;
        let page = if browser.grid {
            (columns * rows) as isize
        } else {
            10
        };
        match action {
            Action::Next => browser.step(1),
            Action::Previous => browser.step(-1),
            Action::Down if browser.grid => browser.step(columns as isize),
            Action::Up if browser.grid => browser.step(-(columns as isize)),
            Action::PageDown => browser.step(page),
            Action::PageUp => browser.step(-page),
            Action::First => browser.first(),
            Action::Last => browser.last(),
            Action::ToggleGrid => browser.grid = !browser.grid,
            Action::NextMisclassified if !browser.next_misclassified(&items) => {
                return vec![Effect::Say(
                    "no misclassified image among those shown".into(),
                )];
            }
            Action::FilterTruth => browser.cycle_truth_filter(classes, &items),
            Action::FilterPredicted => browser.cycle_predicted_filter(classes, &items),
            Action::CycleOrder => browser.cycle_order(&items),
            Action::ToggleOverlay => spec.overlay = !spec.overlay,
            Action::MoreOpaque => change_alpha(spec, true),
            Action::LessOpaque => change_alpha(spec, false),
            Action::CycleMethod | Action::CycleLayer | Action::CycleExplainedClass
                if self.facts == Facts::Scores =>
            {
                return vec![Effect::Say(
                    "a one-class model has one map, the anomaly map: no method, layer or class to choose"
                        .into(),
                )];
            }
            Action::CycleMethod => spec.method = cycle(spec.method, shared.methods.len()),
            Action::CycleLayer => spec.layer = cycle(spec.layer, shared.layers.len()),
            Action::CycleExplainedClass => spec.class = next_class(spec.class, classes),
            Action::SavePicture => {
                return match browser.selected() {
                    Some(item) => vec![
                        Effect::Ask(Request::Save { item, spec: *spec }),
                        Effect::Say("saving the picture…".into()),
                    ],
                    None => vec![Effect::Complain("no picture selected".into())],
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn reply(&mut self, reply: &Reply, _shared: &mut Shared) {
        if let Reply::TestItems(Ok(items)) = reply {
            self.state.rebuild(items);
        }
    }

    fn note_layout(&mut self, wants: &Wants) {
        if let Some((columns, rows)) = wants.grid {
            self.state.cells = (columns.max(1), rows.max(1));
        }
    }

    /// A one-class model's map is the anomaly map: the keys that choose an explanation's method,
    /// layer and class do nothing there, so its footer and help leave them out.
    fn commands(&self) -> Vec<&'static Command> {
        keymap::view_commands(self.view())
            .filter(|command| {
                self.facts == Facts::Classes
                    || !command.bindings.iter().any(|(_, action)| {
                        matches!(
                            action,
                            Action::CycleMethod | Action::CycleLayer | Action::CycleExplainedClass
                        )
                    })
            })
            .collect()
    }
}

/// Opacity changes in these steps, kept strictly between "no heatmap" and "only heatmap".
const ALPHA_STEP: u8 = 10;

fn change_alpha(spec: &mut crate::app::gallery::PictureSpec, up: bool) {
    let alpha = spec.alpha_percent;
    spec.alpha_percent = if up {
        alpha.saturating_add(ALPHA_STEP).min(100 - ALPHA_STEP)
    } else {
        alpha.saturating_sub(ALPHA_STEP).max(ALPHA_STEP)
    };
}

/// The next of `count` choices, round.
fn cycle(current: usize, count: usize) -> usize {
    (current + 1) % count.max(1)
}

/// Predicted class, then each class in turn.
fn next_class(current: Option<usize>, classes: usize) -> Option<usize> {
    match current {
        None if classes > 0 => Some(0),
        Some(c) if c + 1 < classes => Some(c + 1),
        _ => None,
    }
}

fn draw(screen: &BrowserScreen, frame: &mut Frame, area: Rect, shared: &Shared, wants: &mut Wants) {
    let items = shared.test_items();
    if items.is_empty() {
        let text = match &shared.items {
            Loaded::Failed(message) => format!("cannot read the test results: {message}"),
            Loaded::Loading => "rendering…".to_string(),
            Loaded::Ready(_) => {
                "No test results yet: the browser fills once the run has been tested.".to_string()
            }
        };
        frame.render_widget(
            Paragraph::new(text).block(bordered("Browser", shared)),
            area,
        );
        return;
    }
    if screen.state.visible().is_empty() {
        frame.render_widget(
            Paragraph::new("No test image matches the filter (f and F change it).")
                .block(bordered("Browser", shared)),
            area,
        );
        return;
    }
    if screen.state.grid {
        draw_grid(screen, frame, area, shared, wants);
    } else {
        draw_single(screen, frame, area, shared, wants);
    }
}

fn draw_single(
    screen: &BrowserScreen,
    frame: &mut Frame,
    area: Rect,
    shared: &Shared,
    wants: &mut Wants,
) {
    let b = &screen.state;
    let Some(item) = b.selected() else { return };
    let it = &shared.test_items()[item];
    let info_width = if area.width >= 120 { 40 } else { 30 };
    let [picture_area, info] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(info_width)]).areas(area);
    let name = it
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The same file name is often in every class folder: the class tells them apart.
    let block = bordered(format!("{} · {name}", shared.class_name(it.truth)), shared);
    let inner = block.inner(picture_area);
    frame.render_widget(block, picture_area);
    draw_picture(
        frame,
        inner,
        shared,
        ImageKey::Picture {
            item,
            spec: shared.spec,
        },
        wants,
        "rendering…",
    );
    // The neighbours are likely next: have them computed while the user looks at this one.
    for pos in [b.cursor() + 1, b.cursor().wrapping_sub(1)] {
        if let Some(&next) = b.visible().get(pos) {
            wants.prefetch.push(ImageKey::Picture {
                item: next,
                spec: shared.spec,
            });
        }
    }
    frame.render_widget(
        Paragraph::new(facts(screen, shared, item)).block(bordered("Test image", shared)),
        info,
    );
}

/// The panel beside a picture; a one-class run's before its threshold is known says what a
/// classifier's does.
fn facts(screen: &BrowserScreen, shared: &Shared, item: usize) -> Vec<Line<'static>> {
    if screen.facts == Facts::Scores {
        if let Some(lines) = score_facts(&screen.state, shared, item) {
            return lines;
        }
    }
    let theme = &shared.theme;
    let b = &screen.state;
    let it = &shared.test_items()[item];
    let field = |name: &str, value: String| super::fact_line(theme, name, value);
    let verdict = super::verdict_span(theme, it.is_correct());
    let filter = |f: Option<usize>| f.map_or("all".to_string(), |c| shared.class_name(c));
    let explained = match shared.spec.class {
        None => "predicted class".to_string(),
        Some(c) => shared.class_name(c),
    };
    let method = shared
        .methods
        .get(shared.spec.method)
        .cloned()
        .unwrap_or_default();
    let layer = shared
        .layers
        .get(shared.spec.layer)
        .cloned()
        .unwrap_or_default();
    vec![
        field(
            "Image",
            format!("{} of {}", b.cursor() + 1, b.visible().len()),
        ),
        field("True", shared.class_name(it.truth)),
        Line::from(vec![
            Span::styled(format!("{:<10}", "Predicted"), theme.dim()),
            Span::raw(shared.class_name(it.predicted)),
            verdict,
        ]),
        field("Score", format!("{:.3}", it.score)),
        field("Loss", format!("{:.3}", it.loss)),
        Line::default(),
        field("True in", filter(b.truth_filter)),
        field("Pred. in", filter(b.predicted_filter)),
        field("Order", b.order.label().to_string()),
        field(
            "Overlay",
            if shared.spec.overlay {
                format!("on, alpha {}%", shared.spec.alpha_percent)
            } else {
                "off".into()
            },
        ),
        field("Method", method),
        field("Layer", layer),
        field("Explains", explained),
    ]
}

fn draw_grid(
    screen: &BrowserScreen,
    frame: &mut Frame,
    area: Rect,
    shared: &Shared,
    wants: &mut Wants,
) {
    let b = &screen.state;
    let theme = &shared.theme;
    // A one-class run's tiles show each image's anomaly score, as its single view does; the
    // title says what the number is and gives the threshold it is read against.
    let one_class_threshold = match screen.facts {
        Facts::Scores => threshold(shared),
        Facts::Classes => None,
    };
    // Tiles of at least 16x8 cells (picture and caption) keep pictures recognisable.
    let inner = Block::bordered().inner(area);
    let columns = (inner.width / 16).max(1) as usize;
    let rows = (inner.height / 8).max(1) as usize;
    let page = b.page(columns * rows);
    wants.grid = Some((columns, rows));
    let mut title = format!(
        "Browser · {}-{} of {} · {} · overlay {}",
        page.start + 1,
        page.end,
        b.visible().len(),
        b.order.label(),
        if shared.spec.overlay { "on" } else { "off" }
    );
    if let Some(threshold) = one_class_threshold {
        title.push_str(&format!(" · anomaly score, threshold {threshold:.4}"));
    }
    frame.render_widget(bordered(title, shared), area);
    let tiles = uniform_cells(inner, columns, rows);
    for (pos, tile) in page.clone().zip(tiles) {
        let item = b.visible()[pos];
        let it = &shared.test_items()[item];
        let selected = pos == b.cursor();
        let style = if selected {
            theme.selected()
        } else {
            theme.dim()
        };
        let mark = if it.is_correct() { "✓" } else { "✗" };
        let caption = match one_class_threshold {
            Some(threshold) => format!("{mark} score {:.4}", it.anomaly_score(threshold)),
            None => format!("{mark} {} {:.2}", shared.class_name(it.predicted), it.score),
        };
        let block = Block::bordered()
            .border_style(style)
            .title_bottom(Line::styled(caption, style));
        let inside = block.inner(tile);
        frame.render_widget(block, tile);
        let key = ImageKey::Picture {
            item,
            spec: shared.spec,
        };
        draw_picture(frame, inside, shared, key, wants, "rendering…");
    }
}

/// The threshold of a one-class run, once the events have given it.
fn threshold(shared: &Shared) -> Option<f32> {
    let fit = shared.run.one_class.as_ref()?;
    fit.scores
        .as_ref()
        .map(|s| s.threshold)
        .or(fit.fitted.as_ref().map(|f| f.threshold))
}

/// The panel of a test image of a one-class run: its kind, the verdict, and its anomaly score
/// beside the threshold (None until the threshold is known).
fn score_facts(b: &BrowserState, shared: &Shared, item: usize) -> Option<Vec<Line<'static>>> {
    let threshold = threshold(shared)?;
    let theme = &shared.theme;
    let it = shared.test_items().get(item)?;
    let field = |name: &str, value: String| super::fact_line(theme, name, value);
    let verdict = super::verdict_span(theme, it.is_correct());
    let filter = |f: Option<usize>| f.map_or("all".to_string(), |c| shared.class_name(c));
    let score = it.anomaly_score(threshold);
    Some(vec![
        field(
            "Image",
            format!("{} of {}", b.cursor() + 1, b.visible().len()),
        ),
        field("True", shared.class_name(it.truth)),
        Line::from(vec![
            Span::styled(format!("{:<10}", "Verdict"), theme.dim()),
            Span::raw(shared.class_name(it.predicted)),
            verdict,
        ]),
        field("Score", format!("{score:.4}")),
        field("Threshold", format!("{threshold:.4}")),
        field("Margin", format!("{:+.4}", score - threshold)),
        Line::default(),
        field("True in", filter(b.truth_filter)),
        field("Verd. in", filter(b.predicted_filter)),
        field("Order", b.order.label().to_string()),
        field(
            "Map",
            if shared.spec.overlay {
                format!("on, alpha {}%", shared.spec.alpha_percent)
            } else {
                "off".into()
            },
        ),
        Line::styled("Features", theme.dim()),
        Line::raw(
            shared
                .layers
                .get(shared.spec.layer)
                .cloned()
                .unwrap_or_default(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::gallery::PictureSpec;

    #[test]
    fn picture_settings_cycle_and_stay_in_range() {
        let mut spec = PictureSpec::default();
        for _ in 0..20 {
            change_alpha(&mut spec, true);
        }
        assert_eq!(spec.alpha_percent, 90);
        for _ in 0..20 {
            change_alpha(&mut spec, false);
        }
        assert_eq!(spec.alpha_percent, 10);
        assert_eq!(cycle(0, 2), 1);
        assert_eq!(cycle(1, 2), 0);
        assert_eq!(cycle(0, 1), 0);
        assert_eq!(cycle(0, 0), 0);
        let mut class = next_class(None, 2);
        class = next_class(class, 2);
        assert_eq!(class, Some(1));
        assert_eq!(next_class(class, 2), None);
    }
}
