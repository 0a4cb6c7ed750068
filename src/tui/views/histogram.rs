//! The anomaly-score histogram of a one-class run: normal images' counts as bars rising above a
//! middle axis, anomalous images' hanging below it, and the threshold as a vertical line, so the
//! two kinds and their overlap read at a glance in two colours and without colour too.
//!
//! Each half has its own scale (its tallest bin fills it): a handful of anomalies beside
//! thousands of normal images still shows its shape; the block's title gives the counts.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use ratatui::Frame;

use super::{bordered, Shared};
use crate::run::event::{AnomalyScores, ScoreHistogram};

/// Eighths of a cell filled from the bottom (bars rising to the axis above them).
const RISING: [&str; 9] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];

pub struct ScoreChart<'a> {
    pub histogram: &'a ScoreHistogram,
    pub threshold: f32,
    pub normal: Style,
    pub anomalous: Style,
    pub marker: Style,
    pub axis: Style,
}

impl ScoreChart<'_> {
    /// The column of `score` across `width` columns.
    fn column(&self, score: f32, width: u16) -> u16 {
        let h = self.histogram;
        let span = f64::from(h.high - h.low).max(f64::MIN_POSITIVE);
        let at = (f64::from(score - h.low) / span * f64::from(width)).floor();
        (at.max(0.0) as u16).min(width.saturating_sub(1))
    }
}

impl Widget for ScoreChart<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        // Bars above and below, the axis, and the score labels: at least one row for each half.
        if area.width < 8 || area.height < 4 {
            return;
        }
        let labels_y = area.bottom() - 1;
        let bars = area.height - 2;
        let up = bars.div_ceil(2);
        let down = bars - up;
        let axis_y = area.y + up;
        let width = area.width;
        let h = self.histogram.rebinned(width as usize);
        let bin_of_column = |c: u16| c as usize * h.bins() / width as usize;
        // Several columns share a bin when the histogram has fewer bins than columns.
        let per_column = |counts: &[usize]| -> Vec<usize> {
            (0..width).map(|c| counts[bin_of_column(c)]).collect()
        };
        let normal = per_column(&h.normal);
        let anomalous = per_column(&h.anomalous);
        let threshold_x = area.x + self.column(self.threshold, width);

        // Normal images: rising to the axis, in eighths of a cell.
        let top = normal.iter().copied().max().unwrap_or(0).max(1);
        for (c, &count) in normal.iter().enumerate() {
            let eighths = scaled(count, top, up as usize * 8);
            for row in 0..up {
                let filled = eighths.saturating_sub(row as usize * 8).min(8);
                if filled > 0 {
                    let y = axis_y - 1 - row;
                    buf[(area.x + c as u16, y)]
                        .set_symbol(RISING[filled])
                        .set_style(self.normal);
                }
            }
        }
        // Anomalous images: hanging from the axis, in halves of a cell (the block elements have
        // no finer steps from the top).
        let top = anomalous.iter().copied().max().unwrap_or(0).max(1);
        for (c, &count) in anomalous.iter().enumerate() {
            let halves = scaled(count, top, down as usize * 2);
            for row in 0..down {
                let filled = halves.saturating_sub(row as usize * 2).min(2);
                if filled > 0 {
                    buf[(area.x + c as u16, axis_y + 1 + row)]
                        .set_symbol(if filled == 2 { "█" } else { "▀" })
                        .set_style(self.anomalous);
                }
            }
        }
        // The axis, and the threshold line through every row the bars left empty.
        for x in area.x..area.right() {
            buf[(x, axis_y)].set_symbol("─").set_style(self.axis);
        }
        for y in area.y..labels_y {
            let cell = &mut buf[(threshold_x, y)];
            if y == axis_y {
                cell.set_symbol("┼").set_style(self.marker);
            } else if cell.symbol() == " " {
                cell.set_symbol("│").set_style(self.marker);
            }
        }
        // Scores under the axis ends and the threshold, where they do not overlap.
        let low = format!("{:.3}", h.low);
        let high = format!("{:.3}", h.high);
        let mark = format!("{:.3}", self.threshold);
        buf.set_string(area.x, labels_y, &low, self.axis);
        let high_x = area.right().saturating_sub(high.len() as u16);
        buf.set_string(high_x, labels_y, &high, self.axis);
        let mark_x = threshold_x
            .saturating_sub(mark.len() as u16 / 2)
            .max(area.x + low.len() as u16 + 1);
        if mark_x + (mark.len() as u16) < high_x {
            buf.set_string(mark_x, labels_y, &mark, self.marker);
        }
    }
}

/// `count` of `top` in `units`, at least one unit for any count above zero (a single image in a
/// bin must show).
fn scaled(count: usize, top: usize, units: usize) -> usize {
    if count == 0 {
        0
    } else {
        ((count * units).div_ceil(top)).clamp(1, units)
    }
}

/// The histogram of the test images' scores in a block of its own, the threshold marked.
pub(super) fn draw_histogram(
    frame: &mut Frame,
    area: Rect,
    shared: &Shared,
    scores: &AnomalyScores,
) {
    let theme = &shared.theme;
    let h = &scores.histogram;
    let (normal, anomalous): (usize, usize) = (h.normal.iter().sum(), h.anomalous.iter().sum());
    let block = bordered("Anomaly scores", shared).title(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn render(histogram: &ScoreHistogram, threshold: f32, width: u16, height: u16) -> Vec<String> {
        let area = Rect::new(0, 0, width, height);
        let mut buf = Buffer::empty(area);
        ScoreChart {
            histogram,
            threshold,
            normal: Style::default(),
            anomalous: Style::default(),
            marker: Style::default(),
            axis: Style::default(),
        }
        .render(area, &mut buf);
        (0..height)
            .map(|y| (0..width).map(|x| buf[(x, y)].symbol()).collect())
            .collect()
    }

    #[test]
    fn normal_rises_anomalous_hangs_and_the_threshold_splits_them() {
        // Normal scores low, anomalous high, threshold in the middle.
        let scores = [0.1, 0.1, 0.2, 0.8, 0.9, 0.9];
        let anomalous = [false, false, false, true, true, true];
        let h = ScoreHistogram::of(&scores, &anomalous, 20, 0.5);
        let rows = render(&h, 0.5, 20, 8);
        // 3 rows up, the axis, 3 rows down, the labels.
        assert_eq!(
            rows[3].chars().filter(|&c| c == '─').count(),
            19,
            "{rows:#?}"
        );
        assert_eq!(rows[3].chars().nth(10), Some('┼'), "{rows:#?}");
        // The normal bars sit left of the threshold and above the axis, the anomalous ones right
        // and below.
        let left_of = |row: &str, x: usize| row.chars().take(x).any(|c| c == '█');
        let right_of = |row: &str, x: usize| row.chars().skip(x + 1).any(|c| c == '█');
        assert!(
            left_of(&rows[2], 10) && !right_of(&rows[2], 10),
            "{rows:#?}"
        );
        assert!(
            right_of(&rows[4], 10) && !left_of(&rows[4], 10),
            "{rows:#?}"
        );
        assert!(
            rows[7].starts_with("0.100") && rows[7].ends_with("0.900"),
            "{rows:#?}"
        );
        assert!(rows[7].contains("0.500"), "{rows:#?}");
    }

    #[test]
    fn a_lone_image_still_shows_and_tiny_areas_draw_nothing() {
        let h = ScoreHistogram::of(&[0.0, 1.0, 1.0, 1.0], &[true, false, false, false], 10, 0.5);
        let rows = render(&h, 0.5, 10, 6);
        // The single anomaly at 0.0 beside three normal images at 1.0.
        assert_eq!(rows[3].chars().next(), Some('█'), "{rows:#?}");
        let blank = render(&h, 0.5, 5, 3);
        assert!(blank.iter().all(|r| r.trim().is_empty()));
    }
}
