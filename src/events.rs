//! The one event type that flows from the training worker to every consumer: the headless printer,
//! the metrics log (`metrics.jsonl`) and the dashboard. Each line of `metrics.jsonl` is one `Event`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Training begins (or resumes at `start_iteration`).
    Started {
        run: PathBuf,
        device: String,
        classes: Vec<String>,
        /// Images per class in each split, in class order.
        train_per_class: Vec<usize>,
        val_per_class: Vec<usize>,
        test_per_class: Vec<usize>,
        batch_size: usize,
        epochs: usize,
        iterations_per_epoch: usize,
        start_iteration: usize,
        learning_rate: f64,
    },
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

impl Event {
    /// Iteration events are frequent and superseded by the next one: a consumer that falls behind may
    /// skip them, never the others.
    pub fn is_frequent(&self) -> bool {
        matches!(self, Event::Iteration { .. })
    }
}
