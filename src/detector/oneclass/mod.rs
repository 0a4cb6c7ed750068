//! One-class mode: learn what normal images look like from normal images only, and flag what
//! differs, with a map of where (the PatchCore method on the ImageNet SqueezeNet).
//!
//! - [`features`]: patches of mid-level features (two Fire layers, locally averaged, on one grid).
//! - [`bank`]: the memory bank of normal patches, bounded by greedy coreset subsampling, and
//!   nearest-neighbour distances as blocked matrix products.
//! - [`model`]: fitting and scoring (image score = the largest distance of any of its patches to
//!   the nearest bank entry), [`map`] the per-location anomaly map.
//! - [`threshold`]: the decision threshold from validation images; [`ranking`]: AUROC and
//!   average precision.
//! - [`run`]: one-class runs end to end (fit, test pass, reports, scoring files, maps), which the
//!   commands call.
//! - [`model_file`]: one safetensors file with the bank, the backbone it was computed with and
//!   every setting, so that scoring never depends on anything else.
//!
//! - [`predictions`]: the run's `predictions.csv`; [`gallery`]: the dashboard's pictures of a
//!   one-class run (anomaly maps in the browser).
//!
//! A fit reports itself in `metrics.jsonl` with `fit_started`, `fitting` (per stage),
//! `fitted`, `finished`, then `anomaly_scored` (AUROC, average precision, the score histogram)
//! and `tested` (accuracy and confusion at the threshold): the dashboard and `watch` read those.

pub(crate) mod bank;
#[cfg(test)]
mod end_to_end;
pub mod features;
pub(crate) mod map;
pub mod model;
pub mod model_file;
pub(crate) mod ranking;
pub mod threshold;

use anyhow::{bail, ensure, Result};
use serde::{Deserialize, Serialize};

use crate::model::{CAM_LAYERS, MIN_INPUT_SIDE};

pub use model::OneClassModel;

/// Everything that decides how a one-class model is fitted and scores, stored in its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The two feature layers, shallower first; the deeper one's grid is the patch grid.
    pub layers: [String; 2],
    /// Each layer's channels are averaged in groups down to this many values per patch.
    pub dims_per_layer: usize,
    /// Images are resized to this square side.
    pub input_size: u32,
    /// The bank keeps this fraction of all training patches ...
    pub coreset_ratio: f64,
    /// ... but never more than this many entries (it bounds memory and scoring time).
    pub max_bank: usize,
    /// Patches drawn at random (evenly over the images) to choose the coreset from.
    pub max_candidates: usize,
    /// Random projection width used while choosing the coreset.
    pub projection_dim: usize,
    /// Gaussian smoothing of the anomaly map, in pixels of the input.
    pub smoothing_sigma: f32,
    /// Without anomalies among the validation images, the threshold lets at most this fraction
    /// of normal validation images through as false alarms.
    pub false_positive_rate: f64,
    pub seed: u64,
}

impl Default for Settings {
    /// fire3 + fire5 at 64 values each on the 28x28 grid of a 227 px input, at most 1024 bank
    /// entries (see the measurements in the README's one-class section).
    fn default() -> Self {
        Settings {
            layers: ["fire3-concat".into(), "fire5-concat".into()],
            dims_per_layer: 64,
            input_size: 227,
            coreset_ratio: 0.01,
            max_bank: 1024,
            max_candidates: 40_000,
            projection_dim: 32,
            smoothing_sigma: 4.0,
            false_positive_rate: 0.01,
            seed: 0,
        }
    }
}

impl Settings {
    pub fn validate(&self) -> Result<()> {
        let position = |layer: &str| CAM_LAYERS.iter().position(|l| *l == layer);
        let [low, high] = &self.layers;
        match (position(low), position(high)) {
            (Some(a), Some(b)) if a < b && high != "relu_conv10" => {}
            _ => bail!(
                "one-class features need two layers in network order among {} (not relu_conv10), got {low} and {high}",
                CAM_LAYERS.join(", ")
            ),
        }
        ensure!(self.dims_per_layer > 0, "dims_per_layer must be at least 1");
        ensure!(
            self.input_size as usize >= MIN_INPUT_SIDE,
            "input size {} is below the network's minimum {MIN_INPUT_SIDE}",
            self.input_size
        );
        ensure!(
            self.coreset_ratio > 0.0 && self.coreset_ratio <= 1.0,
            "coreset_ratio must be in (0, 1], got {}",
            self.coreset_ratio
        );
        ensure!(self.max_bank > 0, "max_bank must be at least 1");
        ensure!(self.max_candidates > 0, "max_candidates must be at least 1");
        ensure!(
            (0.0..1.0).contains(&self.false_positive_rate),
            "false_positive_rate must be in [0, 1), got {}",
            self.false_positive_rate
        );
        ensure!(
            self.smoothing_sigma >= 0.0 && self.smoothing_sigma.is_finite(),
            "smoothing_sigma must be a non-negative number"
        );
        Ok(())
    }

    /// Values per patch.
    pub fn dim(&self) -> usize {
        2 * self.dims_per_layer
    }
}

/// The name of the browser's one heatmap method for a one-class model.
pub const MAP_METHOD: &str = "anomaly map";

/// Class names that mean "normal" when `--normal` is not given (any case).
pub const NORMAL_NAMES: [&str; 3] = ["negative", "normal", "ok"];

/// The index of the normal class: `requested` by name (exact, else any case), or the one class
/// named like [`NORMAL_NAMES`]; an error lists the classes otherwise.
pub fn normal_class(classes: &[String], requested: Option<&str>) -> Result<usize> {
    let found = match requested {
        Some(name) => crate::core::classes::find(classes, name),
        None => {
            let matches = crate::core::classes::named_like(classes, &NORMAL_NAMES);
            if matches.len() > 1 {
                bail!(
                    "several classes could be the normal one ({}); pick one with --normal CLASS",
                    matches
                        .iter()
                        .map(|&i| classes[i].as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            matches.first().copied()
        }
    };
    match (found, requested) {
        (Some(i), _) => Ok(i),
        (None, Some(name)) => bail!(
            "no class named '{name}' to use as the normal class; the classes are: {}",
            classes.join(", ")
        ),
        (None, None) => bail!(
            "no class named Negative, normal or ok to use as the normal class; the classes are: {} \
             (pick one with --normal CLASS)",
            classes.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn normal_class_by_default_name_or_flag() {
        assert_eq!(
            normal_class(&names(&["Negative", "Positive"]), None).unwrap(),
            0
        );
        assert_eq!(normal_class(&names(&["crack", "OK"]), None).unwrap(), 1);
        assert_eq!(normal_class(&names(&["a", "b"]), Some("B")).unwrap(), 1);
        let err = normal_class(&names(&["cracked", "sound"]), None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("cracked, sound") && text.contains("--normal"),
            "{text}"
        );
        let err = normal_class(&names(&["a", "b"]), Some("c")).unwrap_err();
        assert!(err.to_string().contains("a, b"), "{err}");
        assert!(normal_class(&names(&["ok", "Normal"]), None).is_err());
    }

    #[test]
    fn settings_are_checked() {
        Settings::default().validate().unwrap();
        let bad = |f: fn(&mut Settings)| {
            let mut s = Settings::default();
            f(&mut s);
            s.validate().is_err()
        };
        assert!(bad(|s| s.layers.swap(0, 1)));
        assert!(bad(|s| s.layers[1] = "nope".into()));
        assert!(bad(|s| s.max_bank = 0));
        assert!(bad(|s| s.coreset_ratio = 0.0));
        assert!(bad(|s| s.input_size = 8));
    }
}
