//! Browser view: test images one at a time (with their facts beside them) or as a grid, with the
//! Grad-CAM overlay as the browser state asks.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::{bordered, draw_picture, uniform_cells};
use crate::tui::app::{App, Loaded, Wants};
use crate::tui::images::ImageKey;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, wants: &mut Wants) {
    let items = app.test_items();
    if items.is_empty() {
        let text = match &app.items {
            Loaded::Failed(message) => format!("cannot read the test results: {message}"),
            Loaded::Loading => "rendering…".to_string(),
            Loaded::Ready(_) => {
                "No test results yet: the browser fills once the run has been tested.".to_string()
            }
        };
        frame.render_widget(Paragraph::new(text).block(bordered("Browser", app)), area);
        return;
    }
    if app.browser.visible().is_empty() {
        frame.render_widget(
            Paragraph::new("No test image matches the filter (f and F change it).")
                .block(bordered("Browser", app)),
            area,
        );
        return;
    }
    if app.browser.grid {
        draw_grid(frame, area, app, wants);
    } else {
        draw_single(frame, area, app, wants);
    }
}

fn draw_single(frame: &mut Frame, area: Rect, app: &App, wants: &mut Wants) {
    let b = &app.browser;
    let Some(item) = b.selected() else { return };
    let it = &app.test_items()[item];
    let info_width = if area.width >= 120 { 40 } else { 30 };
    let [picture_area, info] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(info_width)]).areas(area);
    let name = it
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let block = bordered(name, app);
    let inner = block.inner(picture_area);
    frame.render_widget(block, picture_area);
    draw_picture(
        frame,
        inner,
        app,
        ImageKey::Picture { item, spec: b.spec },
        wants,
        "rendering…",
    );
    // The neighbours are likely next: have them computed while the user looks at this one.
    for pos in [b.cursor() + 1, b.cursor().wrapping_sub(1)] {
        if let Some(&next) = b.visible().get(pos) {
            wants.prefetch.push(ImageKey::Picture {
                item: next,
                spec: b.spec,
            });
        }
    }
    frame.render_widget(
        Paragraph::new(facts(app, item)).block(bordered("Test image", app)),
        info,
    );
}

fn facts(app: &App, item: usize) -> Vec<Line<'static>> {
    if let Some(lines) = super::oneclass::facts(app, item) {
        return lines;
    }
    let theme = &app.theme;
    let b = &app.browser;
    let it = &app.test_items()[item];
    let field = |name: &str, value: String| super::fact_line(theme, name, value);
    let verdict = super::verdict_span(theme, it.is_correct());
    let filter = |f: Option<usize>| f.map_or("all".to_string(), |c| app.class_name(c));
    let explained = match b.spec.class {
        None => "predicted class".to_string(),
        Some(c) => app.class_name(c),
    };
    let method = app.methods.get(b.spec.method).cloned().unwrap_or_default();
    let layer = app.layers.get(b.spec.layer).cloned().unwrap_or_default();
    vec![
        field(
            "Image",
            format!("{} of {}", b.cursor() + 1, b.visible().len()),
        ),
        field("True", app.class_name(it.truth)),
        Line::from(vec![
            Span::styled(format!("{:<10}", "Predicted"), theme.dim()),
            Span::raw(app.class_name(it.predicted)),
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
            if b.spec.overlay {
                format!("on, alpha {}%", b.spec.alpha_percent)
            } else {
                "off".into()
            },
        ),
        field("Method", method),
        field("Layer", layer),
        field("Explains", explained),
    ]
}

fn draw_grid(frame: &mut Frame, area: Rect, app: &App, wants: &mut Wants) {
    let theme = &app.theme;
    let b = &app.browser;
    // Tiles of at least 16x8 cells (picture and caption) keep pictures recognisable.
    let inner = Block::bordered().inner(area);
    let columns = (inner.width / 16).max(1) as usize;
    let rows = (inner.height / 8).max(1) as usize;
    let page = b.page(columns * rows);
    wants.grid = Some((columns, rows));
    let title = format!(
        "Browser · {}-{} of {} · {} · overlay {}",
        page.start + 1,
        page.end,
        b.visible().len(),
        b.order.label(),
        if b.spec.overlay { "on" } else { "off" }
    );
    frame.render_widget(bordered(title, app), area);
    let tiles = uniform_cells(inner, columns, rows);
    for (pos, tile) in page.clone().zip(tiles) {
        let item = b.visible()[pos];
        let it = &app.test_items()[item];
        let selected = pos == b.cursor();
        let style = if selected {
            theme.selected()
        } else {
            theme.dim()
        };
        let caption = format!(
            "{} {} {:.2}",
            if it.is_correct() { "✓" } else { "✗" },
            app.class_name(it.predicted),
            it.score
        );
        let block = Block::bordered()
            .border_style(style)
            .title_bottom(Line::styled(caption, style));
        let inside = block.inner(tile);
        frame.render_widget(block, tile);
        let key = ImageKey::Picture { item, spec: b.spec };
        draw_picture(frame, inside, app, key, wants, "rendering…");
    }
}
