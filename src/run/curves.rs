//! A run's curves read back from its events (`metrics.jsonl`): loss and accuracy of every
//! mini-batch and of every validation, by iteration. What report figures and comparisons of
//! runs draw; a resumed run's repeated iterations count once (the later value).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::run::event::Event;
use crate::run::log::read_from;

/// `(iteration, value)` pairs in iteration order.
pub type Curve = Vec<(usize, f64)>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curves {
    pub train_loss: Curve,
    pub train_accuracy: Curve,
    pub val_loss: Curve,
    pub val_accuracy: Curve,
    /// The test accuracy of the last test pass, when there was one.
    pub test_accuracy: Option<f64>,
    /// The iterations the run planned (from its last start), when it started.
    pub planned_iterations: Option<usize>,
    /// How the log ends: None for a run still going, or one whose process died.
    pub end: Option<Ending>,
}

/// The last word of a run's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Finished,
    /// Stopped before its last epoch (by a request or a signal), resumable.
    Stopped,
    Failed,
}

impl Curves {
    /// The curves of the events in the log at `path`.
    pub fn read(path: &Path) -> Result<Curves> {
        Ok(Curves::of(&read_from(path, 0)?.events))
    }

    pub fn of(events: &[Event]) -> Curves {
        let mut maps: [BTreeMap<usize, f64>; 4] = Default::default();
        let mut curves = Curves::default();
        for event in events {
            match event {
                Event::Started(start) => {
                    curves.planned_iterations = Some(start.total_iterations());
                    curves.end = None;
                }
                Event::Iteration {
                    iteration,
                    loss,
                    accuracy,
                    ..
                } => {
                    maps[0].insert(*iteration, f64::from(*loss));
                    maps[1].insert(*iteration, f64::from(*accuracy));
                }
                Event::Validation {
                    iteration,
                    loss,
                    accuracy,
                    ..
                } => {
                    maps[2].insert(*iteration, f64::from(*loss));
                    maps[3].insert(*iteration, f64::from(*accuracy));
                }
                Event::Tested { accuracy, .. } => curves.test_accuracy = Some(f64::from(*accuracy)),
                Event::Finished { stopped_early, .. } => {
                    curves.end = Some(if *stopped_early {
                        Ending::Stopped
                    } else {
                        Ending::Finished
                    })
                }
                Event::Failed { .. } => curves.end = Some(Ending::Failed),
                _ => {}
            }
        }
        let [a, b, c, d] = maps.map(|m| m.into_iter().collect::<Curve>());
        curves.train_loss = a;
        curves.train_accuracy = b;
        curves.val_loss = c;
        curves.val_accuracy = d;
        curves
    }

    /// The best validation accuracy and its iteration.
    pub fn best_validation(&self) -> Option<(usize, f64)> {
        self.val_accuracy
            .iter()
            .copied()
            .fold(None, |best, (i, a)| match best {
                Some((_, b)) if b >= a => best,
                _ => Some((i, a)),
            })
    }

    /// The last iteration logged.
    pub fn last_iteration(&self) -> Option<usize> {
        self.train_loss.last().map(|(i, _)| *i)
    }
}

/// An exponentially smoothed copy of `curve`, as MATLAB's training-progress plot and the
/// dashboard draw it (weight 0.8 on the past: about the last 5 to 10 mini-batches count).
pub fn smoothed(curve: &Curve) -> Curve {
    let mut ema: Option<f64> = None;
    curve
        .iter()
        .map(|&(i, v)| {
            let s = ema.map_or(v, |e| 0.8 * e + 0.2 * v);
            ema = Some(s);
            (i, s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iteration(iteration: usize, loss: f32) -> Event {
        Event::Iteration {
            epoch: 1,
            iteration,
            loss,
            accuracy: 0.5,
            learning_rate: 1e-3,
            images_per_s: 1.0,
            elapsed_s: 0.0,
        }
    }

    #[test]
    fn a_resumed_runs_repeated_iterations_count_once() {
        let events = [
            iteration(1, 0.9),
            iteration(2, 0.8),
            iteration(3, 0.7),
            // Resumed from the checkpoint at 2: iteration 3 again, then 4.
            iteration(3, 0.6),
            iteration(4, 0.5),
            Event::Validation {
                epoch: 1,
                iteration: 4,
                loss: 0.4,
                accuracy: 0.75,
                elapsed_s: 0.0,
            },
        ];
        let curves = Curves::of(&events);
        let loss: Vec<f64> = curves.train_loss.iter().map(|p| p.1).collect();
        assert_eq!(loss, [0.9f32, 0.8, 0.6, 0.5].map(f64::from).to_vec());
        assert_eq!(curves.best_validation(), Some((4, 0.75)));
        assert_eq!(curves.end, None);
        assert_eq!(smoothed(&vec![(1, 1.0), (2, 0.0)]), [(1, 1.0), (2, 0.8)]);
    }
}
