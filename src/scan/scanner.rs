//! A detector of either kind ready to scan photos: a classifier's crack class read from its
//! shared pass ([`super::map`]), or a one-class model's anomaly scores ([`super::anomaly`]), and
//! what the numbers mean in words.

use anyhow::{bail, ensure, Result};
use image::RgbImage;

use super::anomaly::scan_photo_one_class;
use super::descriptors::Source;
use super::features::ScanModel;
use super::map::{scan_photo, CrackMap, ScanOptions};
use crate::core::classes;
use crate::detector::oneclass::OneClassModel;
use crate::detector::{Detector, Model};

/// Class names taken as the crack class when --positive is not given (any case).
const CRACK_NAMES: [&str; 3] = ["positive", "crack", "cracked"];

/// What scores the windows: a classifier (its crack class's probability, the map from Grad-CAM)
/// or a one-class model (its anomaly score, the map from its anomaly maps).
pub enum Scanner<'a> {
    Classifier {
        model: ScanModel<'a>,
        positive: usize,
        /// What its windows' descriptors are computed from.
        descriptors: Source,
    },
    OneClass(&'a OneClassModel),
}

impl<'a> Scanner<'a> {
    /// `detector` ready to scan; `positive` names a classifier's crack class (see
    /// [`positive_class`]), which a one-class model has none of.
    pub fn new(detector: &'a Detector, positive: Option<&str>) -> Result<Scanner<'a>> {
        match &detector.model {
            Model::OneClass(model) => {
                ensure!(
                    positive.is_none(),
                    "{} is a one-class model: it has no crack class to name with --positive",
                    detector.path.display()
                );
                Ok(Scanner::OneClass(model))
            }
            Model::Classifier(classifier) => {
                let model = ScanModel::new(classifier)?;
                let positive = positive_class(positive, &classifier.classes)?;
                Ok(Scanner::Classifier {
                    model,
                    positive,
                    descriptors: Source::Shared,
                })
            }
        }
    }

    /// The scanner with its windows described from `source`; a one-class model describes no
    /// windows, so asking it for any but the default is refused.
    pub fn describing(self, source: Source) -> Result<Scanner<'a>> {
        match self {
            Scanner::Classifier {
                model, positive, ..
            } => Ok(Scanner::Classifier {
                model,
                positive,
                descriptors: source,
            }),
            Scanner::OneClass(model) => {
                ensure!(
                    source.is_shared(),
                    "a one-class model keeps no window descriptors: --descriptors is for \
                     classifiers (the typical order of the scan view)"
                );
                Ok(Scanner::OneClass(model))
            }
        }
    }

    /// The side of a window: the model's input size.
    pub fn window(&self) -> u32 {
        match self {
            Scanner::Classifier { model, .. } => model.window,
            Scanner::OneClass(model) => model.settings().input_size,
        }
    }

    pub fn scan(&self, photo: &RgbImage, stride: u32) -> Result<CrackMap> {
        match self {
            Scanner::Classifier {
                model,
                positive,
                descriptors,
            } => scan_photo(
                model,
                photo,
                &ScanOptions {
                    descriptors: *descriptors,
                    ..ScanOptions::new(stride, *positive)
                },
            ),
            Scanner::OneClass(model) => scan_photo_one_class(model, photo, stride),
        }
    }

    /// What the map shows, for the scan view: the crack class, or the one-class model's anomalies.
    pub fn class_name(&self) -> String {
        match self {
            Scanner::Classifier {
                model, positive, ..
            } => model.classifier.classes[*positive].clone(),
            Scanner::OneClass(model) => format!("anomaly (not {})", model.normal_class),
        }
    }

    /// The table's first line: what the numbers mean.
    pub fn heading(&self, threshold: f32) -> String {
        match self {
            Scanner::Classifier {
                model, positive, ..
            } => {
                format!(
                    "crack class {}, threshold {threshold}",
                    model.classifier.classes[*positive]
                )
            }
            Scanner::OneClass(model) => format!(
                "one-class model (normal class {}): windows and map as score / (score + {}), \
                 0.5 at the model's {}threshold; threshold {threshold}",
                model.normal_class,
                model.threshold_for_scans(),
                if model.scan_threshold.is_some() {
                    "scan "
                } else {
                    ""
                }
            ),
        }
    }
}

/// `--positive`, else the class named Positive, crack or cracked (any case).
pub fn positive_class(wanted: Option<&str>, classes: &[String]) -> Result<usize> {
    let found = match wanted {
        Some(name) => classes::find(classes, name),
        None => classes::named_like(classes, &CRACK_NAMES).first().copied(),
    };
    match found {
        Some(i) => Ok(i),
        None => {
            let listed = classes::listed(classes, "");
            match wanted {
                Some(name) => bail!("unknown class {name:?}; the model's classes are: {listed}"),
                None => bail!(
                    "the model has no class named Positive, crack or cracked; name the crack \
                     class with --positive (the model's classes are: {listed})"
                ),
            }
        }
    }
}
