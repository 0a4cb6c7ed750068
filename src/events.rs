//! The one event type that flows from the training worker to every consumer: the headless printer,
//! the metrics log (`metrics.jsonl`) and the dashboard. Each line of `metrics.jsonl` is one `Event`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Training begins (or resumes at `start_iteration`).
    Started(RunStart),
    /// One optimizer step on one mini-batch (loss and accuracy of that mini-batch).
    Iteration {
        epoch: usize,
        iteration: usize,
        loss: f32,
        accuracy: f32,
        learning_rate: f64,
        images_per_s: f32,
        elapsed_s: f64,
    },
    /// The whole validation set, evaluated after `iteration`.
    Validation {
        epoch: usize,
        iteration: usize,
        loss: f32,
        accuracy: f32,
        elapsed_s: f64,
    },
    /// An epoch ended.
    Epoch {
        epoch: usize,
        iteration: usize,
        elapsed_s: f64,
    },
    /// A checkpoint was written; `best` when it is the new best by validation accuracy.
    Checkpoint {
        iteration: usize,
        path: PathBuf,
        best: bool,
        val_accuracy: Option<f32>,
    },
    /// A note for the user (few iterations, files skipped, ...).
    Notice { message: String },
    /// Training stopped normally (`stopped_early` after a stop request).
    Finished {
        iteration: usize,
        best_val_accuracy: Option<f32>,
        stopped_early: bool,
        elapsed_s: f64,
    },
    /// The test set was classified with the best checkpoint.
    Tested {
        accuracy: f32,
        confusion: Vec<Vec<usize>>,
        classes: Vec<String>,
    },
    /// Training cannot go on; the last good checkpoint is kept.
    Failed { message: String },
}

/// What a training announces when it starts: the run's fixed facts, kept by every consumer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStart {
    pub run: PathBuf,
    pub device: String,
    pub classes: Vec<String>,
    /// Images per class in each split, in class order.
    pub train_per_class: Vec<usize>,
    pub val_per_class: Vec<usize>,
    pub test_per_class: Vec<usize>,
    pub batch_size: usize,
    pub epochs: usize,
    pub iterations_per_epoch: usize,
    pub start_iteration: usize,
    pub learning_rate: f64,
}

impl RunStart {
    pub fn total_iterations(&self) -> usize {
        self.epochs * self.iterations_per_epoch
    }
}

impl Event {
    /// Iteration events are frequent and superseded by the next one: a consumer that falls behind may
    /// skip them, never the others.
    pub fn is_frequent(&self) -> bool {
        matches!(self, Event::Iteration { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `metrics.jsonl` written before `RunStart` existed must still be read, and new lines match.
    #[test]
    fn started_is_one_flat_json_object() {
        let line = r#"{"event":"started","run":"runs/x","device":"cpu","classes":["a","b"],"train_per_class":[1,2],"val_per_class":[1,1],"test_per_class":[0,1],"batch_size":4,"epochs":2,"iterations_per_epoch":3,"start_iteration":0,"learning_rate":0.001}"#;
        let event: Event = serde_json::from_str(line).unwrap();
        let Event::Started(start) = &event else {
            panic!("{event:?}")
        };
        assert_eq!((start.classes.len(), start.total_iterations()), (2, 6));
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::from_str::<serde_json::Value>(line).unwrap()
        );
    }
}
