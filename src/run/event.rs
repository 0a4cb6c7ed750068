//! The one event type that flows from the training worker to every consumer: the headless printer,
//! the metrics log (`metrics.jsonl`) and the dashboard. Each line of `metrics.jsonl` is one `Event`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::run::recipe::OutputNetwork;

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
    /// A checkpoint was written; `best` when it is the new best by validation accuracy;
    /// `val_accuracy` the validation accuracy of this checkpoint's model (None when it was saved
    /// without a validation: on request, or when stopped). Logs of earlier versions held the
    /// best accuracy so far here.
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
        /// The results of each data source, when there were several.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sources: Vec<super::report::SourceResult>,
    },
    /// Training cannot go on; the last good checkpoint is kept.
    Failed { message: String },
    /// A one-class fit begins (in place of `Started`): the run's fixed facts.
    FitStarted(FitStart),
    /// Progress of one stage of a one-class fit: `done` of `total` units (images, bank entries).
    Fitting {
        stage: FitStage,
        done: usize,
        total: usize,
        elapsed_s: f64,
    },
    /// The one-class model is fitted: its bank and the threshold chosen on the validation images.
    Fitted {
        bank_entries: usize,
        threshold: f32,
        /// How the threshold was chosen, in words.
        threshold_rule: String,
        /// What `scan` reads window scores against (chosen on the validation images' inner
        /// scores); absent from fits before scans shared one pass.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scan_threshold: Option<f32>,
        /// The ranking quality on the validation images (None unless both kinds are there).
        val_auroc: Option<f64>,
        elapsed_s: f64,
    },
    /// The anomaly scores of the test images (a one-class run; accuracy and confusion at the
    /// threshold come in the `Tested` event beside it).
    AnomalyScored(AnomalyScores),
}

/// What a one-class fit announces when it starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FitStart {
    pub run: PathBuf,
    pub device: String,
    /// Every class of the data; `normal_class` is one of them, the others are anomalies.
    pub classes: Vec<String>,
    pub normal_class: String,
    /// Normal training images the bank is fitted on.
    pub train_images: usize,
    /// Validation and test images per class, in class order.
    pub val_per_class: Vec<usize>,
    pub test_per_class: Vec<usize>,
    /// The feature layers and the bound on the bank.
    pub layers: Vec<String>,
    pub max_bank: usize,
}

/// The stages of a one-class fit, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitStage {
    /// Features of the normal training images (units: images).
    Features,
    /// Greedy coreset selection of the bank (units: bank entries).
    Coreset,
    /// Scoring the validation images to choose the threshold (units: images).
    Validation,
}

impl FitStage {
    pub const ALL: [FitStage; 3] = [FitStage::Features, FitStage::Coreset, FitStage::Validation];

    pub fn label(self) -> &'static str {
        match self {
            FitStage::Features => "features",
            FitStage::Coreset => "coreset",
            FitStage::Validation => "validation",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            FitStage::Features | FitStage::Validation => "images",
            FitStage::Coreset => "bank entries",
        }
    }
}

/// How well a one-class model's scores rank the test images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyScores {
    pub normal_class: String,
    /// None unless both kinds are among the test images.
    pub auroc: Option<f64>,
    pub average_precision: Option<f64>,
    pub threshold: f32,
    pub histogram: ScoreHistogram,
}

/// Bins of the score histogram in the `anomaly_scored` event: finer than any display shows
/// (each re-bins to its width), and a bounded line in `metrics.jsonl` whatever the test set.
pub const HISTOGRAM_BINS: usize = 120;

/// Scores of normal and anomalous images counted in equal bins over `[low, high]`: bounded in
/// size whatever the number of images, and re-binned by each display to its own width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreHistogram {
    pub low: f32,
    pub high: f32,
    /// Counts per bin of the normal images, then of the anomalous ones (same length).
    pub normal: Vec<usize>,
    pub anomalous: Vec<usize>,
}

impl ScoreHistogram {
    /// Bins `scores` (anomalous where `anomalous` says so) into `bins` bins spanning the finite
    /// scores and `include` (the threshold, so that it always falls inside the range).
    pub fn of(scores: &[f32], anomalous: &[bool], bins: usize, include: f32) -> ScoreHistogram {
        assert_eq!(scores.len(), anomalous.len(), "one label per score");
        let bins = bins.max(1);
        let finite = scores.iter().copied().filter(|s| s.is_finite());
        let (mut low, mut high) = finite
            .chain(include.is_finite().then_some(include))
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), s| {
                (l.min(s), h.max(s))
            });
        if low > high {
            (low, high) = (0.0, 1.0);
        } else if low == high {
            (low, high) = (low - 0.5, high + 0.5);
        }
        let mut histogram = ScoreHistogram {
            low,
            high,
            normal: vec![0; bins],
            anomalous: vec![0; bins],
        };
        for (&score, &anomaly) in scores.iter().zip(anomalous) {
            if let Some(bin) = histogram.bin_of(score) {
                let counts = if anomaly {
                    &mut histogram.anomalous
                } else {
                    &mut histogram.normal
                };
                counts[bin] += 1;
            }
        }
        histogram
    }

    pub fn bins(&self) -> usize {
        self.normal.len()
    }

    /// The bin a score falls in (None for a score that is not finite).
    pub fn bin_of(&self, score: f32) -> Option<usize> {
        if !score.is_finite() || self.bins() == 0 {
            return None;
        }
        let span = f64::from(self.high - self.low).max(f64::MIN_POSITIVE);
        let at = (f64::from(score - self.low) / span * self.bins() as f64).floor();
        Some((at.max(0.0) as usize).min(self.bins() - 1))
    }

    /// The same counts in at most `bins` wider bins, so a display can fit the histogram to its
    /// width: as many as possible that merge the same number of old bins each (merging unequal
    /// numbers would draw a comb of alternating heights).
    pub fn rebinned(&self, bins: usize) -> ScoreHistogram {
        let old = self.bins();
        let bins = (1..=bins.clamp(1, old.max(1)))
            .rev()
            .find(|n| old % n == 0)
            .unwrap_or(1);
        let mut out = ScoreHistogram {
            low: self.low,
            high: self.high,
            normal: vec![0; bins],
            anomalous: vec![0; bins],
        };
        for i in 0..old {
            let j = i * bins / old;
            out.normal[j] += self.normal[i];
            out.anomalous[j] += self.anomalous[i];
        }
        out
    }
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
    /// Which model the run keeps (`train.output_network`); absent in older logs: the best.
    #[serde(default, skip_serializing_if = "OutputNetwork::is_default")]
    pub output_network: OutputNetwork,
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
        matches!(self, Event::Iteration { .. } | Event::Fitting { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `metrics.jsonl` written before `RunStart` existed must still be read, and new lines match.
    #[test]
    fn histogram_counts_each_kind_and_rebins_without_losing_any() {
        let scores = [0.0, 0.15, 0.25, 0.95, 1.0, f32::NAN];
        let anomalous = [false, false, false, true, true, true];
        let h = ScoreHistogram::of(&scores, &anomalous, 10, 0.5);
        assert_eq!((h.low, h.high, h.bins()), (0.0, 1.0, 10));
        assert_eq!(h.normal.iter().sum::<usize>(), 3);
        assert_eq!(h.anomalous.iter().sum::<usize>(), 2, "NaN is not binned");
        assert_eq!((h.normal[0], h.normal[1], h.normal[2]), (1, 1, 1));
        assert_eq!(h.anomalous[9], 2, "the top score lands in the last bin");
        // 3 bins of 10 would not merge evenly: 2 bins of 5.
        let narrow = h.rebinned(3);
        assert_eq!(narrow.normal, [3, 0]);
        assert_eq!(narrow.anomalous, [0, 2]);
        assert_eq!(h.rebinned(5).normal, [2, 1, 0, 0, 0]);
        assert_eq!(h.rebinned(50).bins(), 10, "never more bins than counted");
        // The threshold widens the range; one distinct score still gets a range.
        let h = ScoreHistogram::of(&[2.0, 2.0], &[false, false], 4, 6.0);
        assert_eq!((h.low, h.high), (2.0, 6.0));
        let h = ScoreHistogram::of(&[2.0], &[false], 4, 2.0);
        assert!(h.low < 2.0 && h.high > 2.0);
    }

    /// A one-class fit's events as they appear in `metrics.jsonl`.
    #[test]
    fn one_class_events_are_flat_json_objects() {
        for line in [
            r#"{"event":"fitting","stage":"coreset","done":3,"total":10,"elapsed_s":1.5}"#,
            r#"{"event":"fitted","bank_entries":10,"threshold":0.5,"threshold_rule":"best validation F1 0.900","val_auroc":0.95,"elapsed_s":2.0}"#,
            r#"{"event":"anomaly_scored","normal_class":"Negative","auroc":0.9,"average_precision":null,"threshold":0.5,"histogram":{"low":0.0,"high":1.0,"normal":[1,0],"anomalous":[0,1]}}"#,
        ] {
            let event: Event = serde_json::from_str(line).unwrap();
            assert_eq!(
                serde_json::to_value(&event).unwrap(),
                serde_json::from_str::<serde_json::Value>(line).unwrap()
            );
        }
    }

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
