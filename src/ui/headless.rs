//! A consumer of training events for plain terminals, pipes and logs: a progress bar (on a terminal)
//! and one line per validation, checkpoint of note, and the end.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::app::job::Observer;
use crate::run::event::Event;
use crate::run::recipe::OutputNetwork;
use crate::run::state::RunState;

pub struct Headless {
    bar: ProgressBar,
    /// On a pipe there is no bar: print a progress line this often (iterations).
    line_every: usize,
    live: bool,
    /// The run as the events so far describe it (the reducer the dashboard uses too).
    state: RunState,
}

impl Default for Headless {
    fn default() -> Self {
        Self::new()
    }
}

impl Headless {
    pub fn new() -> Headless {
        let live = std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
        if !live {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} it  {elapsed_precise} eta {eta}  {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Headless {
            bar,
            line_every: usize::MAX,
            live,
            state: RunState::default(),
        }
    }

    /// Prints a line; a closed stdout (pipe gone, SSH hang-up) is ignored so the training goes on.
    fn say(&self, text: impl AsRef<str>) {
        self.bar.suspend(|| {
            let _ = writeln!(std::io::stdout(), "{}", text.as_ref());
        });
    }

    fn handle(&mut self, event: &Event) {
        self.state.apply(event);
        match event {
            Event::Started(start) => {
                self.say(split_table(
                    &start.classes,
                    &start.train_per_class,
                    &start.val_per_class,
                    &start.test_per_class,
                ));
                let total = self.state.total_iterations();
                let (epochs, per_epoch) = (start.epochs, start.iterations_per_epoch);
                self.say(format!(
                    "training on {}: {epochs} epochs x {per_epoch} iterations of {} images{}",
                    start.device,
                    start.batch_size,
                    if start.start_iteration > 0 {
                        format!(", resuming after iteration {}", start.start_iteration)
                    } else {
                        String::new()
                    }
                ));
                self.bar.set_length(total as u64);
                self.bar.set_position(start.start_iteration as u64);
                self.bar.reset_eta();
                self.line_every = (total / 10).max(1);
                if self.live {
                    self.bar.enable_steady_tick(Duration::from_millis(500));
                }
            }
            Event::Iteration {
                epoch,
                iteration,
                loss,
                accuracy,
                images_per_s,
                ..
            } => {
                let message = format!(
                    "epoch {epoch}  loss {loss:.4}  acc {:.1}%  {images_per_s:.1} img/s",
                    accuracy * 100.0
                );
                self.bar.set_position(*iteration as u64);
                if !self.live && iteration % self.line_every == 0 {
                    self.say(format!(
                        "iteration {iteration}/{}: {message}",
                        self.state.total_iterations()
                    ));
                }
                self.bar.set_message(message);
            }
            Event::Validation {
                epoch,
                iteration,
                loss,
                accuracy,
                ..
            } => self.say(format!(
                "iteration {iteration} (epoch {epoch}): validation accuracy {:.2}%, loss {loss:.4}",
                accuracy * 100.0
            )),
            Event::Checkpoint {
                path, best: true, ..
            } => self.say(format!("  best so far, saved {}", path.display())),
            Event::Checkpoint { .. }
            | Event::Epoch { .. }
            | Event::Tested { .. }
            | Event::AnomalyScored(_) => {}
            Event::FitStarted(start) => {
                let normal = start.classes.iter().position(|c| *c == start.normal_class);
                let train: Vec<usize> = (0..start.classes.len())
                    .map(|i| if Some(i) == normal { start.train_images } else { 0 })
                    .collect();
                self.say(split_table(
                    &start.classes,
                    &train,
                    &start.val_per_class,
                    &start.test_per_class,
                ));
                self.say(format!(
                    "one-class fit on {}: {} training images of '{}', features of {}, a bank of at most {} entries",
                    start.device,
                    start.train_images,
                    start.normal_class,
                    start.layers.join(" + "),
                    start.max_bank
                ));
                if self.live {
                    self.bar.enable_steady_tick(Duration::from_millis(500));
                }
            }
            Event::Fitting {
                stage, done, total, ..
            } => {
                if self.bar.length() != Some(*total as u64) {
                    self.bar.set_length(*total as u64);
                    self.bar.reset_eta();
                }
                self.bar.set_position(*done as u64);
                self.bar.set_message(format!("{} ({})", stage.label(), stage.unit()));
                if !self.live && done == total {
                    self.say(format!("{}: {done}/{total} {}", stage.label(), stage.unit()));
                }
            }
            Event::Fitted {
                bank_entries,
                threshold,
                threshold_rule,
                scan_threshold,
                val_auroc,
                elapsed_s,
            } => self.say(format!(
                "bank of {bank_entries} entries, threshold {threshold:.4} ({threshold_rule}){}{}, fitted in {}",
                scan_threshold
                    .map(|t| format!(", scan threshold {t:.4}"))
                    .unwrap_or_default(),
                val_auroc
                    .map(|a| format!(", validation AUROC {a:.3}"))
                    .unwrap_or_default(),
                format_duration(*elapsed_s)
            )),
            Event::Notice { message } => self.say(format!("note: {message}")),
            Event::Finished { elapsed_s, .. } if self.state.one_class.is_some() => {
                self.bar.finish_and_clear();
                self.say(format!(
                    "fit finished in {}; scoring the test images",
                    format_duration(*elapsed_s)
                ));
            }
            Event::Finished {
                iteration,
                best_val_accuracy,
                stopped_early,
                elapsed_s,
            } => {
                self.bar.finish_and_clear();
                self.say(finished_line(
                    *iteration,
                    *best_val_accuracy,
                    *stopped_early,
                    *elapsed_s,
                    self.state.start.output_network,
                ));
            }
            // The training's error reaches the command, which prints it once.
            Event::Failed { .. } => self.bar.abandon(),
        }
    }
}

impl Observer for Headless {
    fn event(&mut self, event: &Event) {
        self.handle(event);
    }
}

/// The images per class in each split (the seed checks `numTrainImages` before training).
pub fn split_table(classes: &[String], train: &[usize], val: &[usize], test: &[usize]) -> String {
    let width = classes.iter().map(|c| c.len()).max().unwrap_or(5).max(5);
    let mut out = format!(
        "{:width$}  {:>8}  {:>10}  {:>8}\n",
        "class", "train", "validation", "test"
    );
    for (i, class) in classes.iter().enumerate() {
        out += &format!(
            "{class:width$}  {:>8}  {:>10}  {:>8}\n",
            train[i], val[i], test[i]
        );
    }
    let sum = |v: &[usize]| v.iter().sum::<usize>();
    out += &format!(
        "{:width$}  {:>8}  {:>10}  {:>8}",
        "total",
        sum(train),
        sum(val),
        sum(test)
    );
    out
}

pub fn format_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{seconds:.1}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60),
    }
}

/// The training's last line: how it ended, and the model it kept when that is not the best
/// validation accuracy's (the figure would otherwise read as the kept model's).
fn finished_line(
    iteration: usize,
    best_val_accuracy: Option<f32>,
    stopped_early: bool,
    elapsed_s: f64,
    kept: OutputNetwork,
) -> String {
    let best = best_val_accuracy
        .map(|a| format!("{:.2}%", a * 100.0))
        .unwrap_or_else(|| "none".into());
    let ended = format!(
        "training {} after {iteration} iterations in {}",
        if stopped_early { "stopped" } else { "finished" },
        format_duration(elapsed_s)
    );
    match kept {
        OutputNetwork::BestValidation => format!("{ended}; best validation accuracy {best}"),
        OutputNetwork::LastIteration => {
            format!("{ended}; kept the last iteration's model (best validation accuracy {best})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_table_lists_every_class_and_totals() {
        let t = split_table(
            &["Negative".into(), "Positive".into()],
            &[2000, 2000],
            &[200, 201],
            &[5, 6],
        );
        assert!(
            t.contains("Negative      2000         200         5"),
            "{t}"
        );
        assert!(
            t.contains("total         4000         401        11"),
            "{t}"
        );
    }

    #[test]
    fn the_finished_line_names_the_kept_model_when_it_is_the_last() {
        let line = |kept| finished_line(60, Some(0.997), false, 41.0, kept);
        assert_eq!(
            line(OutputNetwork::BestValidation),
            "training finished after 60 iterations in 41.0s; best validation accuracy 99.70%"
        );
        assert_eq!(
            line(OutputNetwork::LastIteration),
            "training finished after 60 iterations in 41.0s; kept the last iteration's model \
             (best validation accuracy 99.70%)"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(12.34), "12.3s");
        assert_eq!(format_duration(83.0), "1m23s");
        assert_eq!(format_duration(3723.0), "1h02m03s");
    }
}
