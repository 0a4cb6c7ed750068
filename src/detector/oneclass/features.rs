//! Patch features from the ImageNet SqueezeNet, PatchCore's way: the feature maps of two
//! mid-level layers (fine local texture, and shapes over a wider field), each averaged over
//! groups of channels down to a fixed width and over a 3x3 neighbourhood (so that every patch
//! sees its surroundings), then brought to one grid (the deeper layer's) and concatenated.

use std::path::Path;
use std::sync::PoisonError;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Layout, Storage, Tensor};
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

    /// The two layers' feature maps of `x`, contiguous; the deeper from the shallower, in one pass.
    fn layer_maps(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let [low, high] = &self.settings.layers;
        let low_map = self.model.forward_to(x, low)?;
        let high_map = self.model.forward_between(&low_map, low, high)?;
        Ok((low_map.contiguous()?, high_map.contiguous()?))
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
        let (low_map, high_map) = self.layer_maps(&x)?;
        let (low_storage, low_layout) = low_map.storage_and_layout();
        let (high_storage, high_layout) = high_map.storage_and_layout();
        let low_map = FeatureMap::borrow(&low_storage, low_layout, low_map.dims())?;
        let high_map = FeatureMap::borrow(&high_storage, high_layout, high_map.dims())?;
        let grid = high_map.h;
        let per_layer = self.settings.dims_per_layer;
        Ok((0..images.len())
            .into_par_iter()
            .map(|b| {
                // Each patch is [low dims | high dims]; both layers write straight into place.
                let mut patches = vec![0f32; grid * grid * 2 * per_layer];
                low_map
                    .image(b)
                    .write_patches(per_layer, grid, &mut patches, 0);
                high_map
                    .image(b)
                    .write_patches(per_layer, grid, &mut patches, per_layer);
                patches
            })
            .collect())
    }

    /// Input pixels per patch of the grid (the deeper layer's step: 8 for fire5).
    pub fn patch_stride(&self) -> usize {
        crate::model::layer_stride(&self.settings.layers[1]).expect("validated layer")
    }

    /// Patches along each side of an image whose values depend on where the image ends: the
    /// fire modules' zero padding and the 3x3 smoothing reach that far in, and one more patch for
    /// the ceil-mode pools' clipped last windows on the right and bottom. The patches inside
    /// them are the same whether the image stands alone or is a window of a larger photo (5 for
    /// fire5; the scan test `inner_patches_do_not_depend_on_the_window_edge` checks it).
    pub fn edge_patches(&self) -> usize {
        let high = &self.settings.layers[1];
        let reach = crate::model::layer_padding_reach(high).expect("validated layer");
        let stride = self.patch_stride();
        (reach + stride).div_ceil(stride) + 1
    }

    /// The patches of the deeper layer's cells `0..cells.0` x `0..cells.1` of a tile of any
    /// size (`size` = width, height; `pixels` normalised channel-major), row-major, for a scan's
    /// shared pass. They are computed as a window's are, except that a patch sees its real
    /// neighbours where a window's edge patch sees only those inside it, and the shallower layer
    /// comes to the deeper one's grid as the mean of the cells under each patch (2 x 2 for fire3
    /// under fire5): what a 227-pixel window's area resampling computes.
    pub fn tile_patches(
        &self,
        pixels: Vec<f32>,
        (w, h): (usize, usize),
        (rows, cols): (usize, usize),
    ) -> Result<Vec<f32>> {
        let x = Tensor::from_vec(pixels, (1, 3, h, w), &Device::Cpu)?;
        let (low_map, high_map) = self.layer_maps(&x)?;
        drop(x);
        let [low, high] = &self.settings.layers;
        let (low_storage, low_layout) = low_map.storage_and_layout();
        let (high_storage, high_layout) = high_map.storage_and_layout();
        let low_map = FeatureMap::borrow(&low_storage, low_layout, low_map.dims())?;
        let high_map = FeatureMap::borrow(&high_storage, high_layout, high_map.dims())?;
        ensure!(
            high_map.h >= rows && high_map.w >= cols,
            "{high} of a {w}x{h} tile is {}x{}, expected at least {rows}x{cols} cells",
            high_map.h,
            high_map.w
        );
        let ratio = self.patch_stride() / crate::model::layer_stride(low).expect("validated layer");
        let per_layer = self.settings.dims_per_layer;
        let (low_image, high_image) = (low_map.image(0), high_map.image(0));
        // One plane per dimension, in parallel, then interleaved into the patch rows.
        let planes: Vec<Vec<f32>> = (0..2 * per_layer)
            .into_par_iter()
            .map(|d| {
                if d < per_layer {
                    low_image.block_means(d, per_layer, ratio, (rows, cols))
                } else {
                    high_image.block_means(d - per_layer, per_layer, 1, (rows, cols))
                }
            })
            .collect();
        let dim = 2 * per_layer;
        let mut patches = vec![0f32; rows * cols * dim];
        for (d, plane) in planes.iter().enumerate() {
            for (patch, &v) in patches.chunks_exact_mut(dim).zip(plane) {
                patch[d] = v;
            }
        }
        Ok(patches)
    }
}

/// A batch of feature maps `[B, C, h, w]`, read in place (the maps of a batch are tens of
/// megabytes: no copies).
struct FeatureMap<'a> {
    values: &'a [f32],
    channels: usize,
    h: usize,
    w: usize,
}

/// One image of a [`FeatureMap`].
struct ImageMap<'a> {
    values: &'a [f32],
    channels: usize,
    h: usize,
    w: usize,
}

impl<'a> FeatureMap<'a> {
    /// The values of a contiguous CPU tensor of shape `dims`, held in `storage` at `layout`.
    fn borrow(storage: &'a Storage, layout: &Layout, dims: &[usize]) -> Result<FeatureMap<'a>> {
        let &[_, channels, h, w] = dims else {
            bail!("feature maps have four dimensions, got {dims:?}");
        };
        let Storage::Cpu(cpu) = storage else {
            bail!("one-class features are read on the CPU")
        };
        let all = cpu.as_slice::<f32>().context("cannot read a feature map")?;
        let Some((from, to)) = layout.contiguous_offsets() else {
            bail!("a feature map came back non-contiguous")
        };
        Ok(FeatureMap {
            values: &all[from..to],
            channels,
            h,
            w,
        })
    }

    fn image(&self, b: usize) -> ImageMap<'_> {
        let len = self.channels * self.h * self.w;
        ImageMap {
            values: &self.values[b * len..(b + 1) * len],
            channels: self.channels,
            h: self.h,
            w: self.w,
        }
    }
}

impl ImageMap<'_> {
    /// Channel groups averaged to `dims` planes, each averaged over 3x3 neighbourhoods (edges
    /// over the cells that exist) and resampled to `grid` x `grid` (area average when larger,
    /// bilinear when smaller). Patch `cell`'s values go to `out[cell * stride + offset..][..dims]`
    /// with `stride = 2 * dims` (the two layers of a patch side by side).
    fn write_patches(&self, dims: usize, grid: usize, out: &mut [f32], offset: usize) {
        assert_eq!(self.h, self.w, "a window's feature maps are square");
        let n = self.h;
        let plane = n * n;
        let stride = 2 * dims;
        debug_assert_eq!(out.len(), grid * grid * stride);
        // Scratch planes reused for every dimension (one allocation each per image, not per dim).
        let mut scratch = Scratch::new(plane);
        let mut resampled = vec![0f32; grid * grid];
        for d in 0..dims {
            self.smooth_dimension(d, dims, &mut scratch);
            resample_into(&scratch.smoothed, n, grid, &mut resampled);
            for (cell, &v) in resampled.iter().enumerate() {
                out[cell * stride + offset + d] = v;
            }
        }
    }

    /// Dimension `d` of `dims`: its channel group averaged (PyTorch's adaptive_avg_pool1d
    /// bounds), then each cell averaged over its 3x3 neighbourhood, into `scratch.smoothed`.
    fn smooth_dimension(&self, d: usize, dims: usize, scratch: &mut Scratch) {
        let plane = self.h * self.w;
        let (c0, c1) = (
            d * self.channels / dims,
            ((d + 1) * self.channels).div_ceil(dims),
        );
        let reduced = &mut scratch.reduced;
        reduced.copy_from_slice(&self.values[c0 * plane..(c0 + 1) * plane]);
        for c in c0 + 1..c1 {
            let src = &self.values[c * plane..(c + 1) * plane];
            reduced.iter_mut().zip(src).for_each(|(r, s)| *r += s);
        }
        let scale = 1.0 / (c1 - c0) as f32;
        reduced.iter_mut().for_each(|r| *r *= scale);
        box3_into(
            reduced,
            (self.h, self.w),
            &mut scratch.rows,
            &mut scratch.smoothed,
        );
    }

    /// Dimension `d` of `dims`, smoothed, then averaged over `ratio` x `ratio` blocks of cells
    /// (clipped at the map's edge): the values of the `cells.0` x `cells.1` patches whose cells
    /// are `ratio` times larger than this map's.
    fn block_means(
        &self,
        d: usize,
        dims: usize,
        ratio: usize,
        (rows, cols): (usize, usize),
    ) -> Vec<f32> {
        let mut scratch = Scratch::new(self.h * self.w);
        self.smooth_dimension(d, dims, &mut scratch);
        let smoothed = &scratch.smoothed;
        let span = |i: usize, side: usize| {
            let start = (i * ratio).min(side - 1);
            start..(start + ratio).min(side)
        };
        let mut out = Vec::with_capacity(rows * cols);
        for i in 0..rows {
            let ys = span(i, self.h);
            for j in 0..cols {
                let xs = span(j, self.w);
                let sum: f32 = ys
                    .clone()
                    .map(|y| {
                        smoothed[y * self.w + xs.start..y * self.w + xs.end]
                            .iter()
                            .sum::<f32>()
                    })
                    .sum();
                out.push(sum / (ys.len() * xs.len()) as f32);
            }
        }
        out
    }
}

/// Working planes of [`ImageMap::smooth_dimension`], reused from one dimension to the next.
struct Scratch {
    reduced: Vec<f32>,
    rows: Vec<f32>,
    smoothed: Vec<f32>,
}

impl Scratch {
    fn new(plane: usize) -> Scratch {
        Scratch {
            reduced: vec![0f32; plane],
            rows: vec![0f32; plane],
            smoothed: vec![0f32; plane],
        }
    }
}

/// 3x3 mean of an `n` x `n` plane, over the neighbours inside it (rows, then columns).
#[cfg(test)]
fn box3(src: &[f32], n: usize, dst: &mut [f32]) {
    let mut rows = vec![0f32; n * n];
    box3_into(src, (n, n), &mut rows, dst);
}

/// [`box3`] of an `h` x `w` plane, with the row pass kept in `rows` (scratch of `h * w`). Sums run in the same order as
/// the plain definition (left to right, top to bottom), written so that the compiler vectorises
/// the column pass over whole rows.
fn box3_into(src: &[f32], (h, w): (usize, usize), rows: &mut [f32], dst: &mut [f32]) {
    let plane = h * w;
    assert!(src.len() == plane && rows.len() == plane && dst.len() == plane);
    for (line, row) in src.chunks_exact(w).zip(rows.chunks_exact_mut(w)) {
        if w == 1 {
            row[0] = line[0];
            continue;
        }
        row[0] = (line[0] + line[1]) / 2.0;
        for x in 1..w - 1 {
            row[x] = (line[x - 1] + line[x] + line[x + 1]) / 3.0;
        }
        row[w - 1] = (line[w - 2] + line[w - 1]) / 2.0;
    }
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(1), (y + 1).min(h - 1));
        let scale = 1.0 / (y1 - y0 + 1) as f32;
        let out = &mut dst[y * w..(y + 1) * w];
        let first = &rows[y0 * w..(y0 + 1) * w];
        match y1 - y0 {
            0 => out.copy_from_slice(first),
            1 => {
                let second = &rows[y1 * w..(y1 + 1) * w];
                for ((o, a), b) in out.iter_mut().zip(first).zip(second) {
                    *o = (a + b) * scale;
                }
            }
            _ => {
                let second = &rows[(y0 + 1) * w..(y0 + 2) * w];
                let third = &rows[y1 * w..(y1 + 1) * w];
                for (((o, a), b), c) in out.iter_mut().zip(first).zip(second).zip(third) {
                    *o = (a + b + c) * scale;
                }
            }
        }
    }
}

/// An `n` x `n` plane resampled to `g` x `g`: adaptive average pooling when shrinking,
/// bilinear interpolation (pixel centres aligned) when growing.
#[cfg(test)]
fn resample(src: &[f32], n: usize, g: usize) -> Vec<f32> {
    let mut out = vec![0f32; g * g];
    resample_into(src, n, g, &mut out);
    out
}

/// [`resample`] into `out` (`g * g` values).
fn resample_into(src: &[f32], n: usize, g: usize, out: &mut [f32]) {
    assert_eq!(out.len(), g * g);
    if n == g {
        out.copy_from_slice(src);
    } else if n > g {
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
        for gy in 0..g {
            let (ya, yb, wy) = bilinear_taps(gy, n, g);
            for gx in 0..g {
                let (xa, xb, wx) = bilinear_taps(gx, n, g);
                let top = src[ya * n + xa] * (1.0 - wx) + src[ya * n + xb] * wx;
                let bottom = src[yb * n + xa] * (1.0 - wx) + src[yb * n + xb] * wx;
                out[gy * g + gx] = top * (1.0 - wy) + bottom * wy;
            }
        }
    }
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

    /// The plain definitions the fast paths must agree with: channel groups averaged, each
    /// plane smoothed over its 3x3 neighbourhood and resampled, one dimension at a time.
    fn reference_patches(map: &ImageMap<'_>, dims: usize, grid: usize) -> Vec<f32> {
        let n = map.h;
        let plane = n * n;
        let mut out = vec![0f32; grid * grid * dims];
        for d in 0..dims {
            let (c0, c1) = (
                d * map.channels / dims,
                ((d + 1) * map.channels).div_ceil(dims),
            );
            let mut reduced = vec![0f32; plane];
            for c in c0..c1 {
                for (r, s) in reduced
                    .iter_mut()
                    .zip(&map.values[c * plane..(c + 1) * plane])
                {
                    *r += s;
                }
            }
            reduced.iter_mut().for_each(|r| *r /= (c1 - c0) as f32);
            let mut smoothed = vec![0f32; plane];
            for y in 0..n {
                for x in 0..n {
                    let (mut sum, mut count) = (0.0, 0.0);
                    for yy in y.saturating_sub(1)..=(y + 1).min(n - 1) {
                        for xx in x.saturating_sub(1)..=(x + 1).min(n - 1) {
                            sum += reduced[yy * n + xx];
                            count += 1.0;
                        }
                    }
                    smoothed[y * n + x] = sum / count;
                }
            }
            for (cell, v) in resample(&smoothed, n, grid).into_iter().enumerate() {
                out[cell * dims + d] = v;
            }
        }
        out
    }

    #[test]
    fn patches_agree_with_the_plain_definitions() {
        // Uneven channel groups, odd sides, shrinking, growing and keeping the grid, and the
        // one-cell plane.
        let mut seed = 1u32;
        for (channels, n, dims, grid) in [(10, 7, 4, 3), (9, 5, 3, 8), (6, 4, 6, 4), (3, 1, 2, 1)] {
            let values: Vec<f32> = (0..channels * n * n)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 8) as f32 / (1 << 24) as f32 * 4.0 - 1.0
                })
                .collect();
            let map = ImageMap {
                values: &values,
                channels,
                h: n,
                w: n,
            };
            let expected = reference_patches(&map, dims, grid);
            let mut both = vec![f32::NAN; grid * grid * 2 * dims];
            map.write_patches(dims, grid, &mut both, dims);
            for (cell, want) in expected.chunks(dims).enumerate() {
                let got = &both[cell * 2 * dims + dims..][..dims];
                for (g, w) in got.iter().zip(want) {
                    assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{g} vs {w}");
                }
                // The other layer's half is left alone.
                assert!(both[cell * 2 * dims..][..dims].iter().all(|v| v.is_nan()));
            }
        }
    }
}
