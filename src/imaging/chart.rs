//! Report figures drawn without a plotting library: line charts (curves over iterations, with
//! axes, ticks and a legend) and a labelled matrix of counts (a confusion matrix). Pixels only,
//! in the 8x8 font the rest of the pictures use, so a figure looks the same everywhere.

use image::{Rgb, RgbImage};

use super::text::{draw_label, label_size};

pub const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
pub const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
const AXIS: Rgb<u8> = Rgb([90, 90, 90]);

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Points joined by straight lines.
    Line,
    /// Points joined by lines, each point also marked with a dot (sparse series: validation).
    LineDots,
}

/// One curve of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub colour: Rgb<u8>,
    pub mark: Mark,
}

/// A chart: its title, axis names, the y range (None: from the data) and curves.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub y_range: Option<(f64, f64)>,
    pub series: Vec<Series>,
}

/// Margins around the plot area, in pixels.
const LEFT: u32 = 70;
const RIGHT: u32 = 20;
const TOP: u32 = 36;
const BOTTOM: u32 = 48;

/// `chart` drawn at `width` x `height` on white. Non-finite points are left out.
pub fn line_chart(chart: &Chart, width: u32, height: u32) -> RgbImage {
    let mut img = RgbImage::from_pixel(
        width.max(LEFT + RIGHT + 40),
        height.max(TOP + BOTTOM + 40),
        WHITE,
    );
    let (width, height) = img.dimensions();
    let plot = Rect {
        x: LEFT as f64,
        y: TOP as f64,
        w: (width - LEFT - RIGHT) as f64,
        h: (height - TOP - BOTTOM) as f64,
    };
    let finite = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let (x_lo, x_hi) = span(finite().map(|p| p.0));
    let (y_lo, y_hi) = chart.y_range.unwrap_or_else(|| span(finite().map(|p| p.1)));
    let to_px = |x: f64, y: f64| {
        (
            plot.x + (x - x_lo) / (x_hi - x_lo) * plot.w,
            plot.y + plot.h - (y - y_lo) / (y_hi - y_lo) * plot.h,
        )
    };
    // Grid and ticks.
    for tick in ticks(y_lo, y_hi, 6) {
        let (_, py) = to_px(x_lo, tick);
        line(&mut img, plot.x, py, plot.x + plot.w, py, GRID);
        let text = tick_text(tick, y_hi - y_lo);
        let (w, h) = label_size(&text, 1);
        draw_label(
            &mut img,
            &text,
            LEFT.saturating_sub(w + 4),
            (py as u32).saturating_sub(h / 2),
            1,
            BLACK,
            WHITE,
        );
    }
    for tick in ticks(x_lo, x_hi, 8) {
        let (px, _) = to_px(tick, y_lo);
        line(&mut img, px, plot.y, px, plot.y + plot.h, GRID);
        let text = tick_text(tick, x_hi - x_lo);
        let (w, _) = label_size(&text, 1);
        draw_label(
            &mut img,
            &text,
            (px as u32).saturating_sub(w / 2),
            (plot.y + plot.h) as u32 + 4,
            1,
            BLACK,
            WHITE,
        );
    }
    // Axes.
    line(
        &mut img,
        plot.x,
        plot.y + plot.h,
        plot.x + plot.w,
        plot.y + plot.h,
        AXIS,
    );
    line(&mut img, plot.x, plot.y, plot.x, plot.y + plot.h, AXIS);
    // Curves, clipped to the plot.
    for series in &chart.series {
        let points: Vec<(f64, f64)> = series
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| {
                let (px, py) = to_px(x, y.clamp(y_lo, y_hi));
                (px, py)
            })
            .collect();
        for pair in points.windows(2) {
            thick_line(&mut img, pair[0], pair[1], series.colour);
        }
        if series.mark == Mark::LineDots || points.len() == 1 {
            for &(px, py) in &points {
                dot(&mut img, px, py, 3, series.colour);
            }
        }
    }
    // Title, axis names, legend.
    let (title_w, _) = label_size(&chart.title, 2);
    draw_label(
        &mut img,
        &chart.title,
        (width.saturating_sub(title_w)) / 2,
        4,
        2,
        BLACK,
        WHITE,
    );
    let (x_w, _) = label_size(&chart.x_label, 1);
    draw_label(
        &mut img,
        &chart.x_label,
        LEFT + (plot.w as u32).saturating_sub(x_w) / 2,
        height - 18,
        1,
        BLACK,
        WHITE,
    );
    draw_label(&mut img, &chart.y_label, 4, TOP - 14, 1, BLACK, WHITE);
    let mut legend_y = TOP + 6;
    for series in &chart.series {
        let (w, h) = label_size(&series.name, 1);
        let x = (LEFT + plot.w as u32).saturating_sub(w + 24);
        for dx in 0..14 {
            for dy in 0..3 {
                put(
                    &mut img,
                    (x + dx) as i64,
                    (legend_y + h / 2 + dy - 1) as i64,
                    series.colour,
                );
            }
        }
        draw_label(&mut img, &series.name, x + 18, legend_y, 1, BLACK, WHITE);
        legend_y += h + 2;
    }
    img
}

/// A `k` x `k` matrix of counts: rows are `row_name`s (true classes), columns the same classes
/// (predicted), each cell shaded by its share of its row and labelled with its count and row
/// percentage.
pub fn count_matrix(title: &str, classes: &[String], counts: &[Vec<usize>]) -> RgbImage {
    let k = classes.len().max(1) as u32;
    let cell = (480 / k).clamp(40, 120);
    let name_w = classes
        .iter()
        .map(|c| label_size(&short(c), 1).0)
        .max()
        .unwrap_or(0)
        + 12;
    let left = name_w.max(80);
    let top = 72;
    let width = (left + k * cell + 20).max(label_size(title, 2).0 + 20);
    let height = top + k * cell + 40;
    let mut img = RgbImage::from_pixel(width, height, WHITE);
    let (title_w, _) = label_size(title, 2);
    draw_label(
        &mut img,
        title,
        (width.saturating_sub(title_w)) / 2,
        4,
        2,
        BLACK,
        WHITE,
    );
    draw_label(&mut img, "predicted ->", left, 30, 1, BLACK, WHITE);
    draw_label(&mut img, "true", 4, 30, 1, BLACK, WHITE);
    for (i, row) in counts.iter().enumerate().take(k as usize) {
        let total: usize = row.iter().sum();
        let y = top + i as u32 * cell;
        let name = short(&classes[i]);
        draw_label(&mut img, &name, 4, y + cell / 2 - 5, 1, BLACK, WHITE);
        for (j, &count) in row.iter().enumerate().take(k as usize) {
            let x = left + j as u32 * cell;
            let share = if total > 0 {
                count as f64 / total as f64
            } else {
                0.0
            };
            // White to a deep blue by share; the diagonal in blue, the rest in red.
            let (r, g, b) = if i == j {
                (40.0, 90.0, 200.0)
            } else {
                (200.0, 50.0, 40.0)
            };
            let mix = |c: f64| (255.0 - (255.0 - c) * share) as u8;
            let colour = Rgb([mix(r), mix(g), mix(b)]);
            for py in y + 1..y + cell {
                for px in x + 1..x + cell {
                    img.put_pixel(px, py, colour);
                }
            }
            let ink = if share > 0.55 { WHITE } else { BLACK };
            let count_text = count.to_string();
            let percent = format!("{:.1}%", 100.0 * share);
            for (n, text) in [count_text, percent].iter().enumerate() {
                let (w, h) = label_size(text, 1);
                draw_label(
                    &mut img,
                    text,
                    x + (cell.saturating_sub(w)) / 2,
                    y + cell / 2 - h + n as u32 * (h + 2),
                    1,
                    ink,
                    colour,
                );
            }
        }
    }
    for j in 0..k {
        let name = short(&classes[j as usize]);
        let (w, _) = label_size(&name, 1);
        let x = left + j * cell + cell.saturating_sub(w) / 2;
        draw_label(&mut img, &name, x, top - 16, 1, BLACK, WHITE);
    }
    img
}

/// Class names longer than a label allows, cut with an ellipsis.
fn short(name: &str) -> String {
    if name.chars().count() <= 16 {
        name.to_string()
    } else {
        format!("{}...", name.chars().take(13).collect::<String>())
    }
}

struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

/// The range of `values`, widened when empty or flat so that it can be divided by.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    if lo > hi {
        (0.0, 1.0)
    } else if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

/// Round tick values between `lo` and `hi`, about `count` of them (steps of 1, 2 or 5 times a
/// power of ten).
pub fn ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    let raw = (hi - lo) / count.max(1) as f64;
    if raw.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return vec![lo];
    }
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn tick_text(value: f64, range: f64) -> String {
    if range >= 10.0 || value.fract() == 0.0 && range >= 2.0 {
        format!("{value:.0}")
    } else if range >= 1.0 {
        format!("{value:.1}")
    } else if range >= 0.1 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, colour: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, colour);
    }
}

/// A one-pixel line (a simple DDA: enough for grid lines and axes).
fn line(img: &mut RgbImage, x0: f64, y0: f64, x1: f64, y1: f64, colour: Rgb<u8>) {
    let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as usize;
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        put(
            img,
            (x0 + (x1 - x0) * t).round() as i64,
            (y0 + (y1 - y0) * t).round() as i64,
            colour,
        );
    }
}

/// A two-pixel-wide line for curves.
fn thick_line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), colour: Rgb<u8>) {
    line(img, a.0, a.1, b.0, b.1, colour);
    line(img, a.0, a.1 + 1.0, b.0, b.1 + 1.0, colour);
}

fn dot(img: &mut RgbImage, x: f64, y: f64, radius: i64, colour: Rgb<u8>) {
    let (cx, cy) = (x.round() as i64, y.round() as i64);
    for dy in -radius..=radius {
        for dx in -radius..=radius {
            if dx * dx + dy * dy <= radius * radius {
                put(img, cx + dx, cy + dy, colour);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        assert_eq!(ticks(0.0, 100.0, 5), [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let fine = ticks(0.13, 0.71, 6);
        let expected = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
        assert_eq!(fine.len(), expected.len());
        assert!(fine
            .iter()
            .zip(expected)
            .all(|(a, b)| (a - b).abs() < 1e-12));
        assert_eq!(ticks(3.0, 3.0, 4), [3.0]);
    }

    #[test]
    fn curves_land_where_their_values_say() {
        let chart = Chart {
            title: "t".into(),
            y_range: Some((0.0, 1.0)),
            series: vec![Series {
                name: "s".into(),
                points: vec![(0.0, 0.0), (10.0, 1.0)],
                colour: Rgb([200, 0, 0]),
                mark: Mark::Line,
            }],
            ..Chart::default()
        };
        let img = line_chart(&chart, 400, 300);
        // The curve runs from the bottom-left corner of the plot to its top-right corner.
        let red = |x: u32, y: u32| img.get_pixel(x, y) == &Rgb([200, 0, 0]);
        assert!(red(LEFT, 300 - BOTTOM) || red(LEFT, 300 - BOTTOM + 1));
        assert!(red(400 - RIGHT, TOP) || red(400 - RIGHT, TOP + 1));
        // Nothing of it below the diagonal's far end.
        assert!(!red(400 - RIGHT, 300 - BOTTOM - 5));
    }

    #[test]
    fn a_matrix_cell_is_shaded_by_its_share_of_the_row() {
        let classes = vec!["a".to_string(), "b".to_string()];
        let img = count_matrix("confusion", &classes, &[vec![10, 0], vec![5, 5]]);
        // Row a: all on the diagonal, deepest blue; row b split evenly.
        let cell = (480 / 2u32).clamp(40, 120);
        let at = |i: u32, j: u32| *img.get_pixel(80 + j * cell + 3, 72 + i * cell + 3);
        assert_eq!(at(0, 0), Rgb([40, 90, 200]));
        assert_eq!(at(0, 1), WHITE);
        assert!(at(1, 0).0[0] > 200 && at(1, 0).0[1] < 200);
    }
}
