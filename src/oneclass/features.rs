//! Patch features from the ImageNet SqueezeNet, PatchCore's way: the feature maps of two
//! mid-level layers (fine local texture, and shapes over a wider field), each averaged over
//! groups of channels down to a fixed width and over a 3x3 neighbourhood (so that every patch
//! sees its surroundings), then brought to one grid (the deeper layer's) and concatenated.

use std::path::Path;
use std::sync::PoisonError;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use image::RgbImage;
use rayon::prelude::*;

use crate::data::augment::write_chw_normalized;
use crate::model::SqueezeNet;

use super::Settings;

/// Images per forward pass: enough to keep both cores busy, few enough that the feature maps of
/// one batch stay small (16 images of fire3 at 227 px are 26 MB).
pub const BATCH: usize = 16;

/// The network through the deepest feature layer, and how its maps become patches.
pub struct Extractor {
    model: SqueezeNet,
    /// The model's variables, for saving the backbone beside the bank.
    varmap: VarMap,
    settings: Settings,
}

/// One image's patches: `grid * grid` rows of `dim` values, row-major over the grid.
pub type Patches = Vec<f32>;

impl Extractor {
    /// `model` (with its variables `varmap`) must hold the backbone through the settings'
    /// deepest layer.
    pub fn new(model: SqueezeNet, varmap: VarMap, settings: Settings) -> Result<Extractor> {
        settings.validate()?;
        Ok(Extractor {
            model,
            varmap,
            settings,
        })
    }

    /// The ImageNet SqueezeNet from torchvision weights (`.pth` or `.safetensors`).
    pub fn imagenet(weights: &Path, settings: Settings) -> Result<Extractor> {
        let varmap = VarMap::new();
        let model = SqueezeNet::new(
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
            None,
        )?;
        crate::model::load_torchvision(&varmap, weights)?;
        Extractor::new(model, varmap, settings)
    }

    /// The backbone's convolution tensors (`features.*`, torchvision names), sorted by name.
    pub fn backbone_tensors(&self) -> Vec<(String, Tensor)> {
        let vars = self
            .varmap
            .data()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut tensors: Vec<(String, Tensor)> = vars
            .iter()
            .filter(|(k, _)| k.starts_with("features."))
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        tensors
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Patches of every image (each `input_size` square, as decoded for the model).
    pub fn patches(&self, images: &[RgbImage]) -> Result<Vec<Patches>> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(BATCH) {
            out.extend(self.batch_patches(chunk)?);
        }
        Ok(out)
    }

    fn batch_patches(&self, images: &[RgbImage]) -> Result<Vec<Patches>> {
        let side = self.settings.input_size;
        let size = side as usize;
        let plane = 3 * size * size;
        let mut data = vec![0f32; images.len() * plane];
        for (image, out) in images.iter().zip(data.chunks_mut(plane)) {
            if image.dimensions() != (side, side) {
                bail!(
                    "one-class features need {side}x{side} images, got {}x{}",
                    image.width(),
                    image.height()
                );
            }
            write_chw_normalized(image, out);
        }
        let x = Tensor::from_vec(data, (images.len(), 3, size, size), &Device::Cpu)?;
        let [low, high] = &self.settings.layers;
        let low_map = self.model.forward_to(&x, low)?;
        let high_map = self.model.forward_between(&low_map, low, high)?;
        let maps = [low_map, high_map].map(|m| FeatureMap::read(&m));
        let [low_map, high_map] = maps;
        let (low_map, high_map) = (low_map?, high_map?);
        let grid = high_map.side;
        let per_layer = self.settings.dims_per_layer;
        Ok((0..images.len())
            .into_par_iter()
            .map(|b| {
                let low = low_map.image(b).to_patches(per_layer, grid);
                let high = high_map.image(b).to_patches(per_layer, grid);
                // Concatenate per patch: [low dims | high dims].
                let mut patches = Vec::with_capacity(grid * grid * 2 * per_layer);
                for (l, h) in low.chunks(per_layer).zip(high.chunks(per_layer)) {
                    patches.extend_from_slice(l);
                    patches.extend_from_slice(h);
                }
                patches
            })
            .collect())
    }
}

/// A batch of square feature maps `[B, C, side, side]` as plain floats.
struct FeatureMap {
    values: Vec<f32>,
    channels: usize,
    side: usize,
}

/// One image of a [`FeatureMap`].
struct ImageMap<'a> {
    values: &'a [f32],
    channels: usize,
    side: usize,
}

impl FeatureMap {
    fn read(t: &Tensor) -> Result<FeatureMap> {
        let (_, channels, h, w) = t.dims4()?;
        ensure!(
            h == w,
            "square inputs give square feature maps, got {h}x{w}"
        );
        let values = t
            .flatten_all()?
            .to_vec1::<f32>()
            .context("cannot read a feature map")?;
        Ok(FeatureMap {
            values,
            channels,
            side: h,
        })
    }

    fn image(&self, b: usize) -> ImageMap<'_> {
        let len = self.channels * self.side * self.side;
        ImageMap {
            values: &self.values[b * len..(b + 1) * len],
            channels: self.channels,
            side: self.side,
        }
    }
}

impl ImageMap<'_> {
    /// Channel groups averaged to `dims` planes, each averaged over 3x3 neighbourhoods (edges
    /// over the cells that exist) and resampled to `grid` x `grid` (area average when larger,
    /// bilinear when smaller); returned patch-major (`grid * grid` rows of `dims` values).
    fn to_patches(&self, dims: usize, grid: usize) -> Vec<f32> {
        let n = self.side;
        let plane = n * n;
        let mut out = vec![0f32; grid * grid * dims];
        let mut reduced = vec![0f32; plane];
        let mut smoothed = vec![0f32; plane];
        for d in 0..dims {
            // Adaptive average over channels (PyTorch's adaptive_avg_pool1d bounds).
            let (c0, c1) = (
                d * self.channels / dims,
                ((d + 1) * self.channels).div_ceil(dims),
            );
            reduced.fill(0.0);
            for c in c0..c1 {
                let src = &self.values[c * plane..(c + 1) * plane];
                reduced.iter_mut().zip(src).for_each(|(r, s)| *r += s);
            }
            let scale = 1.0 / (c1 - c0) as f32;
            reduced.iter_mut().for_each(|r| *r *= scale);
            box3(&reduced, n, &mut smoothed);
            let resampled = resample(&smoothed, n, grid);
            for (cell, v) in resampled.into_iter().enumerate() {
                out[cell * dims + d] = v;
            }
        }
        out
    }
}

/// 3x3 mean of an `n` x `n` plane, over the neighbours inside it (rows, then columns).
fn box3(src: &[f32], n: usize, dst: &mut [f32]) {
    let mut rows = vec![0f32; n * n];
    for y in 0..n {
        let line = &src[y * n..(y + 1) * n];
        for x in 0..n {
            let (x0, x1) = (x.saturating_sub(1), (x + 1).min(n - 1));
            rows[y * n + x] = line[x0..=x1].iter().sum::<f32>() / (x1 - x0 + 1) as f32;
        }
    }
    for y in 0..n {
        let (y0, y1) = (y.saturating_sub(1), (y + 1).min(n - 1));
        let scale = 1.0 / (y1 - y0 + 1) as f32;
        for x in 0..n {
            dst[y * n + x] = (y0..=y1).map(|r| rows[r * n + x]).sum::<f32>() * scale;
        }
    }
}

/// An `n` x `n` plane resampled to `g` x `g`: adaptive average pooling when shrinking,
/// bilinear interpolation (pixel centres aligned) when growing.
pub(crate) fn resample(src: &[f32], n: usize, g: usize) -> Vec<f32> {
    if n == g {
        return src.to_vec();
    }
    let mut out = vec![0f32; g * g];
    if n > g {
        for gy in 0..g {
            let (y0, y1) = (gy * n / g, ((gy + 1) * n).div_ceil(g));
            for gx in 0..g {
                let (x0, x1) = (gx * n / g, ((gx + 1) * n).div_ceil(g));
                let mut sum = 0.0;
                for y in y0..y1 {
                    sum += src[y * n + x0..y * n + x1].iter().sum::<f32>();
                }
                out[gy * g + gx] = sum / ((y1 - y0) * (x1 - x0)) as f32;
            }
        }
    } else {
        let taps: Vec<(usize, usize, f32)> = (0..g).map(|i| bilinear_taps(i, n, g)).collect();
        for (gy, &(ya, yb, wy)) in taps.iter().enumerate() {
            for (gx, &(xa, xb, wx)) in taps.iter().enumerate() {
                let top = src[ya * n + xa] * (1.0 - wx) + src[ya * n + xb] * wx;
                let bottom = src[yb * n + xa] * (1.0 - wx) + src[yb * n + xb] * wx;
                out[gy * g + gx] = top * (1.0 - wy) + bottom * wy;
            }
        }
    }
    out
}

/// Source cells and weight of the second for output cell `i` when stretching `n` cells to `g`
/// (align_corners = false, clamped at the edges).
pub(crate) fn bilinear_taps(i: usize, n: usize, g: usize) -> (usize, usize, f32) {
    let u = ((i as f32 + 0.5) * n as f32 / g as f32 - 0.5).max(0.0);
    let a = (u.floor() as usize).min(n - 1);
    let b = (a + 1).min(n - 1);
    (a, b, u - a as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_filter_and_resampling_keep_constants_and_averages() {
        let n = 6;
        let plane: Vec<f32> = (0..n * n).map(|i| i as f32).collect();
        let mut smoothed = vec![0.0; n * n];
        box3(&plane, n, &mut smoothed);
        // Interior cell (1, 1): mean of rows 0..=2, columns 0..=2 = value at (1, 1).
        assert_eq!(smoothed[n + 1], plane[n + 1]);
        // Corner (0, 0): mean of the 2x2 block {0, 1, 6, 7}.
        assert_eq!(smoothed[0], 3.5);
        // 6 -> 3 averages 2x2 blocks; 3 -> 6 keeps a constant plane constant.
        let down = resample(&plane, 6, 3);
        assert_eq!(down[0], (0.0 + 1.0 + 6.0 + 7.0) / 4.0);
        let up = resample(&[2.0; 9], 3, 6);
        assert!(up.iter().all(|&v| (v - 2.0).abs() < 1e-6));
    }
}
