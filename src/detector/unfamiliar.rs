//! Saying when an answer is not to be trusted because of the input itself: an image much larger
//! than the input size (a whole photo squeezed into one window; `scan` is the command for those)
//! and an image unlike the training images (its features far from theirs, see
//! [`super::familiarity`]). Both travel with each answer as fields ([`InputCheck`]) for the
//! command to print; nothing here prints.

use std::path::PathBuf;

use anyhow::Result;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::familiarity::{classifier_features, patch_features_mean, Check};
use super::{Answer, Detector, Model};
use crate::data::decode::{load_rgb, resize_exact};
use crate::data::inputs::FileOutcome;

/// An image whose long side is over this many input sizes is a whole photo: resized to one
/// window, its cracks shrink below what the model was trained to see (a 2448-pixel photo full of
/// cracks becomes 227 pixels of texture).
pub const OVERSIZED_FACTOR: u32 = 3;

/// What was found about one input, beside its answer (each field absent when there is nothing
/// to say, or, for `familiarity`, when the model file carries no summary).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InputCheck {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub familiarity: Option<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oversized: Option<Oversized>,
}

/// An image much larger than the input size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Oversized {
    pub width: u32,
    pub height: u32,
    pub input_size: u32,
    /// What to do instead.
    pub advice: String,
}

/// Whether an image of `width` x `height` is oversized for a model taking `input_size` pixels.
pub fn oversized(width: u32, height: u32, input_size: u32) -> Option<Oversized> {
    (width.max(height) > OVERSIZED_FACTOR * input_size).then(|| Oversized {
        width,
        height,
        input_size,
        advice: format!(
            "the image is over {OVERSIZED_FACTOR}x the model's input size and was shrunk to one \
             {input_size}-pixel window: `crackscope scan` is the command for whole photos"
        ),
    })
}

impl Detector {
    /// Each image's pooled features as the familiarity summary takes them, from images at the
    /// input size: a classifier's fire5 mean, a one-class model's patch features' mean.
    pub fn pooled_features(&self, images: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        match &self.model {
            Model::Classifier(c) => {
                let flat = classifier_features(&c.model, images, &c.device)?;
                let dim = flat.len() / images.len().max(1);
                Ok(flat.chunks(dim.max(1)).map(<[f32]>::to_vec).collect())
            }
            Model::OneClass(m) => patch_features_mean(m, images),
        }
    }

    /// Whether a photo scanned at `scale` (the photo resized by it, then cut into windows of the
    /// input size) is like the training images: windows of that size sampled evenly over it
    /// (at most [`PHOTO_SAMPLE_SIDE`] a side), each measured as `predict` measures an image.
    /// None when the model file has no summary. Not the photo's features averaged whole: the
    /// mean of many windows, cracked and clear, lies between the training images and far from
    /// each.
    pub fn photo_familiarity(&self, photo: &RgbImage, scale: f32) -> Result<Option<PhotoCheck>> {
        let Some(summary) = &self.familiarity else {
            return Ok(None);
        };
        let size = self.input_size();
        let side =
            ((size as f32 / scale).round() as u32).clamp(1, photo.width().min(photo.height()));
        let starts = |extent: u32| {
            let n = extent.div_ceil(side).clamp(1, PHOTO_SAMPLE_SIDE);
            let room = extent - side;
            (0..n).map(move |i| if n == 1 { room / 2 } else { room * i / (n - 1) })
        };
        let windows: Vec<RgbImage> = starts(photo.height())
            .flat_map(|y| starts(photo.width()).map(move |x| (x, y)))
            .map(|(x, y)| {
                let crop = image::imageops::crop_imm(photo, x, y, side, side).to_image();
                if side == size {
                    crop
                } else {
                    resize_exact(&crop, size)
                }
            })
            .collect();
        let mut distances = Vec::with_capacity(windows.len());
        for features in self.pooled_features(&windows)? {
            distances.push(summary.check(&features)?);
        }
        Ok(Some(PhotoCheck::of(&distances, summary.stored.threshold)))
    }

    /// The familiarity of pooled `features` (None when the model file has no summary).
    pub fn familiarity_of(&self, features: &[f32]) -> Result<Option<Check>> {
        self.familiarity
            .as_ref()
            .map(|f| f.check(features))
            .transpose()
    }

    /// Adds each answered file's [`InputCheck`]: the files are read again (each at most
    /// [`CHECK_BATCH`] at a time) for their size and, when the model carries a summary, their
    /// features.
    pub(super) fn check_inputs(&self, answers: &mut [FileOutcome<Answer>]) -> Result<()> {
        let size = self.input_size();
        let answered: Vec<usize> = (0..answers.len())
            .filter(|&i| !answers[i].is_failed())
            .collect();
        for chunk in answered.chunks(CHECK_BATCH) {
            let mut checks = Vec::with_capacity(chunk.len());
            let mut inputs = Vec::with_capacity(chunk.len());
            for &i in chunk {
                let FileOutcome::Done(answer) = &answers[i] else {
                    continue;
                };
                // The file was just read to answer it; a failure now is the file changing.
                let image = load_rgb(answer.path())?;
                checks.push((
                    i,
                    InputCheck {
                        familiarity: None,
                        oversized: oversized(image.width(), image.height(), size),
                    },
                ));
                if self.familiarity.is_some() {
                    inputs.push(resize_exact(&image, size));
                }
            }
            if self.familiarity.is_some() {
                for ((_, check), features) in checks.iter_mut().zip(self.pooled_features(&inputs)?)
                {
                    check.familiarity = self.familiarity_of(&features)?;
                }
            }
            for (i, check) in checks {
                if let FileOutcome::Done(answer) = &mut answers[i] {
                    *answer.input_mut() = check;
                }
            }
        }
        Ok(())
    }
}

/// Files read at once for their checks.
const CHECK_BATCH: usize = 32;

/// Most windows a side sampled from a scanned photo for its familiarity (36 in all: a fraction
/// of a second beside a scan of hundreds of windows).
pub const PHOTO_SAMPLE_SIDE: u32 = 6;

/// A scanned photo's familiarity, as scan.json and `scan --json` carry it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhotoCheck {
    /// The median distance of the sampled windows to the training images.
    pub distance: f32,
    /// The model's threshold (see [`Check`]).
    pub threshold: f32,
    /// Whether most sampled windows are unlike the training images (the median is over the
    /// threshold): the photo as a whole is not what the model learnt from.
    pub unfamiliar: bool,
    /// Windows sampled, and how many of them were unlike the training images.
    pub windows: usize,
    pub unfamiliar_windows: usize,
}

impl PhotoCheck {
    fn of(checks: &[Check], threshold: f32) -> PhotoCheck {
        let mut distances: Vec<f32> = checks.iter().map(|c| c.distance).collect();
        distances.sort_by(f32::total_cmp);
        let distance = distances
            .get(distances.len() / 2)
            .copied()
            .unwrap_or(f32::NAN);
        let unfamiliar_windows = checks.iter().filter(|c| c.unfamiliar).count();
        PhotoCheck {
            distance,
            threshold,
            unfamiliar: 2 * unfamiliar_windows > checks.len(),
            windows: checks.len(),
            unfamiliar_windows,
        }
    }
}

impl Answer {
    pub fn path(&self) -> &PathBuf {
        match self {
            Answer::Class(a) => &a.path,
            Answer::Anomaly(a) => &a.path,
        }
    }

    pub fn input(&self) -> &InputCheck {
        match self {
            Answer::Class(a) => &a.input,
            Answer::Anomaly(a) => &a.input,
        }
    }

    fn input_mut(&mut self) -> &mut InputCheck {
        match self {
            Answer::Class(a) => &mut a.input,
            Answer::Anomaly(a) => &mut a.input,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_images_over_three_input_sizes_are_oversized() {
        assert_eq!(oversized(681, 400, 227), None);
        let hint = oversized(2448, 3264, 227).unwrap();
        assert_eq!(
            (hint.width, hint.height, hint.input_size),
            (2448, 3264, 227)
        );
        assert!(hint.advice.contains("crackscope scan"), "{}", hint.advice);
        assert!(oversized(400, 682, 227).is_some());
    }
}
