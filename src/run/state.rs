//! What the events so far say about a training run: one reducer ([`RunState::apply`]) shared by
//! every consumer that shows a run (the headless printer, the dashboard, `watch` through the
//! dashboard), so they agree on its phase, progress and results. Nothing here draws.

use std::collections::VecDeque;
use std::path::PathBuf;

use crate::run::event::{AnomalyScores, Event, FitStage, FitStart, RunStart};

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// No `Started` event yet.
    Waiting,
    Running,
    Finished {
        stopped_early: bool,
        best_val_accuracy: Option<f32>,
    },
    Failed(String),
    /// The live event stream closed without a `Finished` event.
    Ended,
}

#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub epoch: usize,
    pub iteration: usize,
    pub learning_rate: f64,
    pub images_per_s: f32,
    pub elapsed_s: f64,
    /// (iteration, elapsed) when this session's first iteration was seen, for the ETA.
    rate_origin: Option<(usize, f64)>,
}

#[derive(Debug, Clone)]
pub struct CheckpointInfo {
    pub iteration: usize,
    pub path: PathBuf,
    pub best: bool,
    pub val_accuracy: Option<f32>,
}

#[derive(Debug, Clone)]
pub struct Tested {
    pub accuracy: f32,
    pub confusion: Vec<Vec<usize>>,
    pub classes: Vec<String>,
    /// The results of each data source, when there were several.
    pub sources: Vec<super::report::SourceResult>,
}

/// A one-class fit as its events describe it.
#[derive(Debug, Clone, Default)]
pub struct OneClassFit {
    pub start: FitStart,
    /// (done, total) of each stage reached, in [`FitStage::ALL`] order.
    pub stages: [Option<(usize, usize)>; 3],
    /// The stage the latest progress came from.
    pub stage: Option<FitStage>,
    pub fitted: Option<Fitted>,
    /// The test images' scores (after the fit).
    pub scores: Option<AnomalyScores>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub bank_entries: usize,
    pub threshold: f32,
    pub threshold_rule: String,
    pub scan_threshold: Option<f32>,
    pub val_auroc: Option<f64>,
}

impl OneClassFit {
    pub fn stage_progress(&self, stage: FitStage) -> Option<(usize, usize)> {
        self.stages[FitStage::ALL
            .iter()
            .position(|&s| s == stage)
            .expect("every stage is listed")]
    }
}

/// The latest validation: (iteration, loss, accuracy).
pub type ValidationPoint = (usize, f32, f32);

/// Notices kept for display.
const NOTICES: usize = 3;

#[derive(Debug, Clone)]
pub struct RunState {
    pub phase: Phase,
    /// The `Started` event's facts (defaults until it arrives).
    pub start: RunStart,
    pub progress: Progress,
    pub last_validation: Option<ValidationPoint>,
    pub checkpoint: Option<CheckpointInfo>,
    /// The latest few notices, oldest first.
    pub notices: VecDeque<String>,
    pub tested: Option<Tested>,
    /// Set for a one-class run (by its `FitStarted` event, or its results).
    pub one_class: Option<OneClassFit>,
}

impl Default for RunState {
    fn default() -> Self {
        RunState {
            phase: Phase::Waiting,
            start: RunStart::default(),
            progress: Progress::default(),
            last_validation: None,
            checkpoint: None,
            notices: VecDeque::new(),
            tested: None,
            one_class: None,
        }
    }
}

impl RunState {
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Started(start) => {
                self.start = start.clone();
                self.progress = Progress {
                    epoch: start.start_iteration / start.iterations_per_epoch.max(1),
                    iteration: start.start_iteration,
                    learning_rate: start.learning_rate,
                    ..Progress::default()
                };
                self.phase = Phase::Running;
            }
            &Event::Iteration {
                epoch,
                iteration,
                learning_rate,
                images_per_s,
                elapsed_s,
                ..
            } => {
                let progress = &mut self.progress;
                progress.rate_origin.get_or_insert((iteration, elapsed_s));
                progress.epoch = epoch;
                progress.iteration = iteration;
                progress.learning_rate = learning_rate;
                progress.images_per_s = images_per_s;
                progress.elapsed_s = elapsed_s;
                if self.phase == Phase::Waiting {
                    self.phase = Phase::Running;
                }
            }
            &Event::Validation {
                iteration,
                loss,
                accuracy,
                elapsed_s,
                ..
            } => {
                self.last_validation = Some((iteration, loss, accuracy));
                self.progress.elapsed_s = self.progress.elapsed_s.max(elapsed_s);
            }
            &Event::Epoch {
                epoch, elapsed_s, ..
            } => {
                self.progress.epoch = self.progress.epoch.max(epoch);
                self.progress.elapsed_s = self.progress.elapsed_s.max(elapsed_s);
            }
            Event::Checkpoint {
                iteration,
                path,
                best,
                val_accuracy,
            } => {
                self.checkpoint = Some(CheckpointInfo {
                    iteration: *iteration,
                    path: path.clone(),
                    best: *best,
                    val_accuracy: *val_accuracy,
                });
            }
            Event::Notice { message } => {
                if self.notices.len() == NOTICES {
                    self.notices.pop_front();
                }
                self.notices.push_back(message.clone());
            }
            &Event::Finished {
                iteration,
                best_val_accuracy,
                stopped_early,
                elapsed_s,
            } => {
                self.progress.iteration = self.progress.iteration.max(iteration);
                self.progress.elapsed_s = self.progress.elapsed_s.max(elapsed_s);
                self.phase = Phase::Finished {
                    stopped_early,
                    best_val_accuracy,
                };
            }
            Event::Tested {
                accuracy,
                confusion,
                classes,
                sources,
            } => {
                self.tested = Some(Tested {
                    accuracy: *accuracy,
                    confusion: confusion.clone(),
                    classes: classes.clone(),
                    sources: sources.clone(),
                });
            }
            Event::Failed { message } => self.phase = Phase::Failed(message.clone()),
            Event::FitStarted(start) => {
                self.one_class = Some(OneClassFit {
                    start: start.clone(),
                    ..OneClassFit::default()
                });
                self.progress = Progress::default();
                self.phase = Phase::Running;
            }
            &Event::Fitting {
                stage,
                done,
                total,
                elapsed_s,
            } => {
                let fit = self.one_class.get_or_insert_with(OneClassFit::default);
                let index = FitStage::ALL.iter().position(|&s| s == stage);
                if let Some(index) = index {
                    fit.stages[index] = Some((done, total));
                }
                fit.stage = Some(stage);
                self.progress.elapsed_s = self.progress.elapsed_s.max(elapsed_s);
                if self.phase == Phase::Waiting {
                    self.phase = Phase::Running;
                }
            }
            Event::Fitted {
                bank_entries,
                threshold,
                threshold_rule,
                scan_threshold,
                val_auroc,
                elapsed_s,
            } => {
                let fit = self.one_class.get_or_insert_with(OneClassFit::default);
                fit.fitted = Some(Fitted {
                    bank_entries: *bank_entries,
                    threshold: *threshold,
                    threshold_rule: threshold_rule.clone(),
                    scan_threshold: *scan_threshold,
                    val_auroc: *val_auroc,
                });
                self.progress.elapsed_s = self.progress.elapsed_s.max(*elapsed_s);
            }
            Event::AnomalyScored(scores) => {
                self.one_class
                    .get_or_insert_with(OneClassFit::default)
                    .scores = Some(scores.clone());
            }
        }
    }

    /// The events stopped coming from a live training without a `Finished` or `Failed`.
    pub fn stream_ended(&mut self) {
        if matches!(self.phase, Phase::Running | Phase::Waiting) {
            self.phase = Phase::Ended;
        }
    }

    pub fn total_iterations(&self) -> usize {
        self.start.total_iterations()
    }

    /// Estimated seconds left, from the pace of the iterations seen so far.
    pub fn eta_s(&self) -> Option<f64> {
        let (origin_iteration, origin_elapsed) = self.progress.rate_origin?;
        let done = self.progress.iteration.checked_sub(origin_iteration)?;
        let spent = self.progress.elapsed_s - origin_elapsed;
        if done == 0 || spent <= 0.0 {
            return None;
        }
        let left = self
            .total_iterations()
            .saturating_sub(self.progress.iteration);
        Some(left as f64 * spent / done as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iteration(iteration: usize, elapsed_s: f64) -> Event {
        Event::Iteration {
            epoch: 1,
            iteration,
            loss: 0.5,
            accuracy: 0.5,
            learning_rate: 1e-3,
            images_per_s: 10.0,
            elapsed_s,
        }
    }

    #[test]
    fn a_resumed_run_counts_its_eta_from_this_session_and_ends_finished() {
        let mut state = RunState::default();
        assert_eq!(state.phase, Phase::Waiting);
        state.apply(&Event::Started(RunStart {
            epochs: 2,
            iterations_per_epoch: 10,
            start_iteration: 10,
            ..RunStart::default()
        }));
        assert_eq!(
            (state.phase.clone(), state.progress.epoch),
            (Phase::Running, 1)
        );
        state.apply(&iteration(11, 100.0));
        assert_eq!(state.eta_s(), None, "one iteration gives no pace");
        state.apply(&iteration(15, 108.0));
        // 4 iterations in 8 s; 5 left.
        assert_eq!(state.eta_s(), Some(10.0));
        state.apply(&Event::Finished {
            iteration: 20,
            best_val_accuracy: Some(0.9),
            stopped_early: false,
            elapsed_s: 118.0,
        });
        assert_eq!(state.progress.iteration, 20);
        state.stream_ended();
        assert!(matches!(state.phase, Phase::Finished { .. }));
    }

    #[test]
    fn a_one_class_fit_records_each_stage_the_bank_and_the_scores() {
        let mut state = RunState::default();
        state.apply(&Event::FitStarted(FitStart {
            train_images: 40,
            normal_class: "Negative".into(),
            ..FitStart::default()
        }));
        assert_eq!(state.phase, Phase::Running);
        let fitting = |stage, done, total| Event::Fitting {
            stage,
            done,
            total,
            elapsed_s: done as f64,
        };
        state.apply(&fitting(FitStage::Features, 16, 40));
        state.apply(&fitting(FitStage::Features, 40, 40));
        state.apply(&fitting(FitStage::Coreset, 5, 20));
        let fit = state.one_class.as_ref().unwrap();
        assert_eq!(fit.stage_progress(FitStage::Features), Some((40, 40)));
        assert_eq!(fit.stage_progress(FitStage::Coreset), Some((5, 20)));
        assert_eq!(fit.stage_progress(FitStage::Validation), None);
        assert_eq!(fit.stage, Some(FitStage::Coreset));
        assert_eq!(state.progress.elapsed_s, 40.0);
        state.apply(&Event::Fitted {
            bank_entries: 20,
            threshold: 0.5,
            threshold_rule: "best validation F1 1.000".into(),
            scan_threshold: Some(0.4),
            val_auroc: Some(1.0),
            elapsed_s: 41.0,
        });
        state.apply(&Event::Finished {
            iteration: 0,
            best_val_accuracy: None,
            stopped_early: false,
            elapsed_s: 41.0,
        });
        let fit = state.one_class.as_ref().unwrap();
        assert_eq!(fit.fitted.as_ref().unwrap().bank_entries, 20);
        assert!(matches!(state.phase, Phase::Finished { .. }));
    }

    #[test]
    fn only_the_latest_notices_are_kept_and_a_silent_end_is_noted() {
        let mut state = RunState::default();
        for i in 0..5 {
            state.apply(&Event::Notice {
                message: format!("n{i}"),
            });
        }
        assert_eq!(state.notices, ["n2", "n3", "n4"]);
        state.stream_ended();
        assert_eq!(state.phase, Phase::Ended);
    }
}
