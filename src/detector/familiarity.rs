//! Whether an image is like the images a model learnt from. A model answers confidently for
//! anything (a kitten is "Positive 1.000" to a crack classifier), so its file carries a summary of
//! its training images' features: each image's backbone features averaged over the image, for at
//! most [`MAX_BANK`] of them (a bank), with the distribution of the bank's own nearest-neighbour
//! distances. Distances are taken after every feature is scaled by its spread over the bank
//! (standardised), so that each counts by how much it varies among the training images rather
//! than by its size, and the magnitude of a response (a picture of noise excites every channel)
//! still counts. An image's distance is the root-mean-square standardised difference to the
//! nearest bank entry; it is *unfamiliar* when that distance is over the [`PERCENTILE`]th
//! percentile of the bank's own (leave-one-out) distances, so about 1 % of images like the
//! training images are flagged, whatever the model.
//!
//! The features: a classifier's fire5 averaged over the image ([`CLASSIFIER_LAYER`]; measured
//! against relu_conv10 and fire9, which a fine-tuned network shapes by its classes, so that an
//! unlike picture exciting the crack channels lands among the cracks: README, "Unfamiliar
//! input"); a one-class model's patch features averaged over the image. A scanned photo is
//! judged by windows sampled over it (`detector::unfamiliar`), each measured as an image is.
//!
//! The summary is stored in the model file itself (tensor [`BANK_TENSOR`], float16, and metadata
//! key [`META_KEY`]), so a copied file keeps it; files without it open as before and simply have
//! no familiarity. One writer ([`Familiarity::attach`]) and one reader ([`Familiarity::read`]).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::data::augment::write_chw_normalized;
use crate::detector::oneclass::OneClassModel;
use crate::model::SqueezeNet;

/// The tensor holding the bank (`[entries, dim]`, float16 to halve its size).
pub const BANK_TENSOR: &str = crate::model::FAMILIARITY_TENSOR;
/// The metadata key holding [`Stored`] as JSON.
pub const META_KEY: &str = "familiarity";
/// Most training images in the bank: 1000 x 1000 float16 values are 2 MB beside a classifier's
/// 5 MB, and the distance of one image to them is a millisecond.
pub const MAX_BANK: usize = 1000;
/// The percentile of the bank's own distances over which an image is unfamiliar.
pub const PERCENTILE: f64 = 99.0;
/// The classifier layer pooled for its features: early enough to describe the picture rather
/// than the classes, late enough to see texture.
pub const CLASSIFIER_LAYER: &str = "fire5-concat";
/// The smallest spread a feature is scaled by, as a share of the features' mean spread: a
/// feature that hardly varies over the bank must not turn noise into distance.
const SPREAD_FLOOR: f32 = 0.1;
/// Images per pass when gathering features.
const BATCH: usize = 32;

/// The summary as its metadata stores it (the bank is the tensor).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    /// Which features: "fire5-concat mean" or "patch features mean".
    pub features: String,
    /// Training images the bank holds.
    pub images: usize,
    /// Training images the model learnt from (the bank is an evenly spaced selection of them).
    pub of_images: usize,
    pub percentile: f64,
    /// The distance over which an image is unfamiliar.
    pub threshold: f32,
    /// The bank's own nearest-neighbour distances: median, 90th percentile, largest.
    pub own_median: f32,
    pub own_p90: f32,
    pub own_max: f32,
}

/// A model's summary of its training images.
#[derive(Debug, Clone, PartialEq)]
pub struct Familiarity {
    pub stored: Stored,
    /// The training images' features, `dim` values a row, as stored.
    rows: Vec<f32>,
    /// The same rows standardised.
    bank: Vec<f32>,
    /// Each feature's mean over the bank and the factor it is scaled by (1 / spread).
    centre: Vec<f32>,
    scale: Vec<f32>,
    dim: usize,
}

/// One image's (or photo's) familiarity, as the JSON outputs carry it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Distance of its pooled features to the nearest training image's (standardised, root mean
    /// square over the features).
    pub distance: f32,
    /// The model's threshold: the 99th percentile of its training images' own distances.
    pub threshold: f32,
    /// Over the threshold: unlike the training images, so the answer is not to be trusted.
    pub unfamiliar: bool,
}

impl Familiarity {
    /// The summary of `rows` (one image's pooled features each, `dim` values), `of_images` being
    /// how many training images they were chosen from. Needs at least two images.
    pub fn fit(rows: &[f32], dim: usize, features: &str, of_images: usize) -> Result<Familiarity> {
        ensure!(
            dim > 0 && rows.len() % dim == 0,
            "{} values are not rows of {dim}",
            rows.len()
        );
        let n = rows.len() / dim;
        ensure!(
            n >= 2,
            "a familiarity summary needs at least two images, got {n}"
        );
        // As the file stores them, so that a summary read back measures as this one does.
        let rows = Tensor::from_slice(rows, rows.len(), &Device::Cpu)?
            .to_dtype(DType::F16)?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        let mut summary = Familiarity::of_rows(rows, dim, Stored::default());
        let bank = &summary.bank;
        let mut own: Vec<f32> = (0..n)
            .map(|i| nearest(bank, dim, &bank[i * dim..(i + 1) * dim], Some(i)))
            .collect();
        own.sort_by(f32::total_cmp);
        let at = |p: f64| percentile_sorted(&own, p);
        summary.stored = Stored {
            features: features.to_string(),
            images: n,
            of_images,
            percentile: PERCENTILE,
            threshold: at(PERCENTILE),
            own_median: at(50.0),
            own_p90: at(90.0),
            own_max: own[n - 1],
        };
        Ok(summary)
    }

    /// The summary of a bank of `rows` (the stored form), its spread found from them.
    fn of_rows(rows: Vec<f32>, dim: usize, stored: Stored) -> Familiarity {
        let (centre, scale) = spread(&rows, dim);
        Familiarity {
            stored,
            bank: standardise(&rows, &centre, &scale),
            rows,
            centre,
            scale,
            dim,
        }
    }

    /// Values per image.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Distance of one image's pooled features to the nearest bank entry.
    pub fn distance(&self, features: &[f32]) -> f32 {
        let z = standardise(features, &self.centre, &self.scale);
        nearest(&self.bank, self.dim, &z, None)
    }

    /// One image's distance and verdict; features of the wrong length are an error (a model
    /// and a summary that do not belong together).
    pub fn check(&self, features: &[f32]) -> Result<Check> {
        ensure!(
            features.len() == self.dim,
            "{} feature values for a familiarity summary of {}",
            features.len(),
            self.dim
        );
        let distance = self.distance(features);
        Ok(Check {
            distance,
            threshold: self.stored.threshold,
            // A distance that is not a number (broken features) is no sign of familiarity.
            unfamiliar: distance.is_nan() || distance > self.stored.threshold,
        })
    }

    /// Adds this summary to the model file at `path` (replacing one it had), atomically; every
    /// other tensor and metadata key is kept as it was.
    pub fn attach(&self, path: &Path) -> Result<()> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .with_context(|| format!("{} is not a valid safetensors file", path.display()))?;
        let mut metadata: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
        metadata.insert(META_KEY.into(), serde_json::to_string(&self.stored)?);
        let mut tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .with_context(|| format!("{}: unreadable tensors", path.display()))?;
        let n = self.bank.len() / self.dim;
        tensors.insert(
            BANK_TENSOR.into(),
            Tensor::from_slice(&self.rows, (n, self.dim), &Device::Cpu)?.to_dtype(DType::F16)?,
        );
        let mut names: Vec<&String> = tensors.keys().collect();
        names.sort();
        let named = names.into_iter().map(|k| (k, &tensors[k]));
        let out = crate::core::stable_safetensors::serialize(named, metadata)
            .with_context(|| format!("cannot serialise {}", path.display()))?;
        crate::core::fsutil::write_atomic(path, &out)
    }

    /// The summary stored in the model file at `path`, or None for files written without one
    /// (older models, bare weights). A summary that is present but broken is an error naming
    /// the file.
    pub fn read(path: &Path) -> Result<Option<Familiarity>> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let Ok(file) = safetensors::SafeTensors::deserialize(&bytes) else {
            // Not safetensors (a PyTorch .pth): such files carry no summary.
            return Ok(None);
        };
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)?;
        let Some(text) = header.metadata().as_ref().and_then(|m| m.get(META_KEY)) else {
            return Ok(None);
        };
        let what = || format!("{}: familiarity summary", path.display());
        let stored: Stored = serde_json::from_str(text).with_context(what)?;
        let view = file
            .tensor(BANK_TENSOR)
            .with_context(|| format!("{}: metadata but no {BANK_TENSOR}", what()))?;
        let dtype = match view.dtype() {
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::F32 => DType::F32,
            other => bail!("{}: {BANK_TENSOR} is {other:?}", what()),
        };
        let shape = view.shape().to_vec();
        ensure!(
            shape.len() == 2 && shape[0] >= 2 && shape[1] > 0 && shape[0] == stored.images,
            "{}: a bank of shape {shape:?} for {} images",
            what(),
            stored.images
        );
        let bank = Tensor::from_raw_buffer(view.data(), dtype, &shape, &Device::Cpu)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        ensure!(
            bank.iter().all(|v| v.is_finite()) && stored.threshold.is_finite(),
            "{}: values that are not finite numbers",
            what()
        );
        Ok(Some(Familiarity::of_rows(bank, shape[1], stored)))
    }
}

/// Each feature's mean over `rows` and the factor that scales its spread (standard deviation,
/// at least [`SPREAD_FLOOR`] of the features' mean spread) to 1.
fn spread(rows: &[f32], dim: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (rows.len() / dim).max(1) as f64;
    let mut sum = vec![0f64; dim];
    let mut squares = vec![0f64; dim];
    for row in rows.chunks_exact(dim) {
        for ((s, q), &v) in sum.iter_mut().zip(&mut squares).zip(row) {
            *s += v as f64;
            *q += v as f64 * v as f64;
        }
    }
    let centre: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let deviation: Vec<f64> = squares
        .iter()
        .zip(&centre)
        .map(|(q, c)| (q / n - c * c).max(0.0).sqrt())
        .collect();
    let floor = SPREAD_FLOOR as f64 * deviation.iter().sum::<f64>() / dim as f64;
    let scale = deviation
        .iter()
        .map(|&d| (1.0 / d.max(floor).max(1e-12)) as f32)
        .collect();
    (centre.iter().map(|&c| c as f32).collect(), scale)
}

/// `rows` with each feature centred and scaled.
fn standardise(rows: &[f32], centre: &[f32], scale: &[f32]) -> Vec<f32> {
    rows.chunks_exact(centre.len())
        .flat_map(|row| {
            row.iter()
                .zip(centre)
                .zip(scale)
                .map(|((v, c), s)| (v - c) * s)
        })
        .collect()
}

/// The `p`th percentile of sorted `values` (nearest rank: the smallest value with at least p %
/// of the values at or below it).
fn percentile_sorted(values: &[f32], p: f64) -> f32 {
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// Root-mean-square difference of `query` to the nearest row of `bank` (`skip`: leave that row
/// out).
fn nearest(bank: &[f32], dim: usize, query: &[f32], skip: Option<usize>) -> f32 {
    let best = bank
        .chunks_exact(dim)
        .enumerate()
        .filter(|(i, _)| Some(*i) != skip)
        .map(|(_, row)| {
            row.iter()
                .zip(query)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
        })
        .fold(f32::INFINITY, f32::min);
    (best / dim as f32).sqrt()
}

/// Indices of at most [`MAX_BANK`] of `n` images, evenly spaced (every class of a set ordered by
/// class is represented in proportion).
pub fn bank_indices(n: usize) -> Vec<usize> {
    if n <= MAX_BANK {
        return (0..n).collect();
    }
    (0..MAX_BANK).map(|i| i * n / MAX_BANK).collect()
}

/// A classifier's features of images already at its input size: [`CLASSIFIER_LAYER`] averaged
/// over each image, `[images x channels]` row-major.
pub fn classifier_features(
    model: &SqueezeNet,
    images: &[RgbImage],
    device: &Device,
) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for chunk in images.chunks(BATCH) {
        let (w, h) = chunk[0].dimensions();
        let plane = 3 * (w * h) as usize;
        let mut data = vec![0f32; chunk.len() * plane];
        for (image, dst) in chunk.iter().zip(data.chunks_exact_mut(plane)) {
            ensure!(
                image.dimensions() == (w, h),
                "images of different sizes in one batch"
            );
            write_chw_normalized(image, dst);
        }
        let x = Tensor::from_vec(data, (chunk.len(), 3, h as usize, w as usize), device)?;
        let pooled = model
            .forward_to(&x, CLASSIFIER_LAYER)?
            .mean((2, 3))?
            .to_dtype(DType::F32)?;
        out.extend(pooled.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// A one-class model's features of images at its input size: its patch features averaged over
/// each image, one row per image.
pub fn patch_features_mean(model: &OneClassModel, images: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
    let dim = model.settings().dim();
    Ok(model
        .extractor
        .patches(images)?
        .iter()
        .map(|patches| {
            let mut mean = vec![0f64; dim];
            for row in patches.chunks_exact(dim) {
                mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
            }
            let n = (patches.len() / dim).max(1) as f64;
            mean.iter().map(|m| (m / n) as f32).collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` rows of `dim` values near `centre` (a deterministic spread).
    fn cloud(n: usize, dim: usize, centre: &[f32], spread: f32) -> Vec<f32> {
        let mut rows = Vec::with_capacity(n * dim);
        for i in 0..n {
            for (j, &c) in centre.iter().enumerate() {
                // Every row its own (a short cycle would repeat rows: nearest distances of 0).
                let mut h = ((i * dim + j) as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                let wobble = (h >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                rows.push(c + spread * wobble);
            }
        }
        rows
    }

    #[test]
    fn images_like_the_bank_pass_and_unlike_ones_are_flagged() {
        let dim = 8;
        let centre = [1.0, 0.5, 0.0, 0.0, 0.2, 0.0, 0.0, 0.3];
        let f = Familiarity::fit(&cloud(200, dim, &centre, 0.2), dim, "test", 200).unwrap();
        assert_eq!(f.stored.images, 200);
        assert!(
            f.stored.threshold > 0.0 && f.stored.threshold.is_finite(),
            "{:?}",
            f.stored
        );
        let like = f.check(&centre).unwrap();
        assert!(!like.unfamiliar, "{like:?}");
        let unlike = f.check(&[0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0]).unwrap();
        assert!(unlike.unfamiliar && unlike.distance > 1.0, "{unlike:?}");
        // No features at all is far from images that all have some.
        assert!(f.check(&[0.0; 8]).unwrap().unfamiliar);
        assert!(f.check(&[1.0; 3]).is_err());
    }

    #[test]
    fn about_one_percent_of_the_banks_own_images_are_over_the_threshold() {
        let dim = 4;
        let rows = cloud(500, dim, &[1.0, 1.0, 1.0, 1.0], 0.8);
        let f = Familiarity::fit(&rows, dim, "test", 500).unwrap();
        let over = (0..500)
            .filter(|&i| {
                let row = &f.bank[i * dim..(i + 1) * dim];
                nearest(&f.bank, dim, row, Some(i)) > f.stored.threshold
            })
            .count();
        assert!(over <= 5, "{over} of 500 over the 99th percentile");
    }

    #[test]
    fn bank_indices_are_at_most_the_cap_and_evenly_spread() {
        assert_eq!(bank_indices(3), vec![0, 1, 2]);
        let chosen = bank_indices(4000);
        assert_eq!(chosen.len(), MAX_BANK);
        assert_eq!((chosen[0], chosen[1], chosen[999]), (0, 4, 3996));
    }
}
