//! `crackscope watch RUN RUN ...`: several runs side by side, re-read once a second from their
//! own files (see [`crate::app::compare`]): a table of status, progress, best validation, test
//! accuracy and the recipe keys that differ, above their validation-accuracy and smoothed
//! training-loss curves overlaid, one colour a run. Read-only: steering is `watch RUN`'s.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Row, Table};
use ratatui::Frame;

use super::event_loop::{run_on_screen, Program};
use super::images::GraphicsChoice;
use super::jobs::{Reply, Workers};
use super::theme::Theme;
use super::views::Wants;
use crate::app::compare::{compare, short_name, Comparison};
use crate::app::job::Exit;
use crate::run::curves::smoothed;

/// How often the runs' files are read again.
const REREAD: Duration = Duration::from_secs(1);

/// Colours of the runs, in order (then again).
const COLOURS: [Color; 6] = [
    Color::Cyan,
    Color::Yellow,
    Color::Green,
    Color::Magenta,
    Color::Blue,
    Color::Red,
];

/// Opens the view on `runs` until the user quits.
pub fn run_blocking(runs: Vec<PathBuf>, graphics: GraphicsChoice, colors: bool) -> Result<()> {
    // Read once before taking the terminal: a folder that is not a run is an error here.
    let comparison = compare(&runs)?;
    if !std::io::stdout().is_terminal() {
        bail!("watching several runs needs a terminal on standard output (`crackscope compare` prints the same table)");
    }
    let mut view = CompareView {
        runs,
        comparison,
        read_at: Instant::now(),
        theme: Theme::new(colors),
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the dashboard's async runtime")?
        .block_on(run_on_screen(&mut view, None, graphics, |_, _, _| {
            Ok(Workers::idle())
        }))?;
    Ok(())
}

/// The runs and what was last read of them.
pub(super) struct CompareView {
    runs: Vec<PathBuf>,
    comparison: Comparison,
    read_at: Instant,
    theme: Theme,
}

impl CompareView {
    #[cfg(test)]
    pub(super) fn new(runs: Vec<PathBuf>) -> Result<CompareView> {
        Ok(CompareView {
            comparison: compare(&runs)?,
            runs,
            read_at: Instant::now(),
            theme: Theme::new(false),
        })
    }

    pub(super) fn draw(&self, frame: &mut Frame) {
        let area = frame.area();
        let rows = self.comparison.runs.len() as u16;
        let [table, charts, footer] = Layout::vertical([
            Constraint::Length(rows + 3),
            Constraint::Min(6),
            Constraint::Length(1),
        ])
        .areas(area);
        self.draw_table(frame, table);
        let [accuracy, loss] =
            Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(charts);
        self.draw_accuracy(frame, accuracy);
        self.draw_loss(frame, loss);
        frame.render_widget(
            Line::from(vec![
                Span::styled("q", self.theme.key()),
                Span::styled(" quit   runs re-read every second", self.theme.dim()),
            ]),
            footer,
        );
    }

    fn draw_table(&self, frame: &mut Frame, area: Rect) {
        let head = self.comparison.header();
        let widths: Vec<Constraint> = head
            .iter()
            .enumerate()
            .map(|(i, h)| match i {
                0 => Constraint::Length(16),
                _ => Constraint::Length(h.len().max(11) as u16),
            })
            .collect();
        let rows = self
            .comparison
            .runs
            .iter()
            .enumerate()
            .map(|(n, run)| Row::new(run.cells()).style(self.run_style(n)));
        let table = Table::new(rows, widths)
            .header(Row::new(head).style(self.theme.dim()))
            .block(Block::bordered().title(Span::styled(" Runs ", self.theme.title())));
        frame.render_widget(table, area);
    }

    fn run_style(&self, n: usize) -> Style {
        if self.theme.colors() {
            Style::default().fg(COLOURS[n % COLOURS.len()])
        } else {
            Style::default()
        }
    }

    fn draw_accuracy(&self, frame: &mut Frame, area: Rect) {
        let series: Vec<Vec<(f64, f64)>> = self
            .comparison
            .runs
            .iter()
            .map(|r| {
                r.curves
                    .val_accuracy
                    .iter()
                    .map(|&(i, a)| (i as f64, 100.0 * a))
                    .collect()
            })
            .collect();
        self.draw_chart(
            frame,
            area,
            " Validation accuracy % ",
            &series,
            Some((0.0, 100.0)),
        );
    }

    fn draw_loss(&self, frame: &mut Frame, area: Rect) {
        let series: Vec<Vec<(f64, f64)>> = self
            .comparison
            .runs
            .iter()
            .map(|r| {
                smoothed(&r.curves.train_loss)
                    .iter()
                    .map(|&(i, v)| (i as f64, v))
                    .collect()
            })
            .collect();
        self.draw_chart(frame, area, " Training loss (smoothed) ", &series, None);
    }

    fn draw_chart(
        &self,
        frame: &mut Frame,
        area: Rect,
        title: &str,
        series: &[Vec<(f64, f64)>],
        y_range: Option<(f64, f64)>,
    ) {
        let points = series.iter().flatten();
        let x_max = points.clone().map(|p| p.0).fold(1.0, f64::max);
        let (y_lo, y_hi) = y_range.unwrap_or_else(|| {
            let (lo, hi) = points
                .clone()
                .map(|p| p.1)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                    (l.min(v), h.max(v))
                });
            if lo < hi {
                (lo.min(0.0), hi)
            } else {
                (0.0, 1.0)
            }
        });
        let datasets = series
            .iter()
            .zip(&self.comparison.runs)
            .enumerate()
            .map(|(n, (points, run))| {
                Dataset::default()
                    .name(short_name(&run.path))
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(self.run_style(n))
                    .data(points)
            })
            .collect();
        let label = |v: f64| Span::styled(format!("{v:.1}"), self.theme.dim());
        let chart = Chart::new(datasets)
            .block(Block::bordered().title(Span::styled(title.to_string(), self.theme.title())))
            .x_axis(
                Axis::default()
                    .bounds([0.0, x_max])
                    .labels([label(0.0), label(x_max)]),
            )
            .y_axis(
                Axis::default()
                    .bounds([y_lo, y_hi])
                    .labels([label(y_lo), label(y_hi)]),
            );
        frame.render_widget(chart, area);
    }
}

impl Program for CompareView {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Exit> {
        matches!(key.code, KeyCode::Char('q') | KeyCode::Esc).then_some(Exit::Quit)
    }

    fn apply_reply(&mut self, _reply: Reply) {}

    fn draw(&mut self, frame: &mut Frame, _wants: &mut Wants) {
        CompareView::draw(self, frame);
    }

    fn note_layout(&mut self, _wants: &Wants) {}

    fn work(&mut self, _wants: &Wants, _workers: &mut Workers) {}

    /// Reads the runs again once a second; a read that fails (a file mid-write) keeps the last.
    fn tick(&mut self) -> bool {
        if self.read_at.elapsed() < REREAD {
            return false;
        }
        self.read_at = Instant::now();
        match compare(&self.runs) {
            Ok(fresh) => {
                let changed = format!("{fresh:?}") != format!("{:?}", self.comparison);
                self.comparison = fresh;
                changed
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;

    #[test]
    fn runs_are_drawn_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = Vec::new();
        for (name, batch, accuracy) in [("first", 32, 0.8), ("second", 16, 0.9)] {
            let run = dir.path().join(name);
            std::fs::create_dir(&run).unwrap();
            std::fs::write(
                run.join("config.toml"),
                format!("[train]\nbatch_size = {batch}\n"),
            )
            .unwrap();
            std::fs::write(
                run.join("metrics.jsonl"),
                format!(
                    "{{\"event\":\"iteration\",\"epoch\":1,\"iteration\":1,\"loss\":0.9,\"accuracy\":0.5,\"learning_rate\":0.001,\"images_per_s\":1.0,\"elapsed_s\":1.0}}\n\
                     {{\"event\":\"validation\",\"epoch\":1,\"iteration\":1,\"loss\":0.5,\"accuracy\":{accuracy},\"elapsed_s\":1.0}}\n"
                ),
            )
            .unwrap();
            runs.push(run);
        }
        let view = CompareView::new(runs).unwrap();
        let mut terminal = Terminal::new(TestBackend::new(100, 24)).unwrap();
        terminal.draw(|f| view.draw(f)).unwrap();
        let screen: String = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        for expected in [
            "first",
            "second",
            "train.batch_size",
            "80.0% (1)",
            "90.0% (1)",
            "not running",
            "Validation accuracy",
        ] {
            assert!(screen.contains(expected), "{expected} missing");
        }
    }
}
