//! Patch features from the ImageNet SqueezeNet, PatchCore's way: the feature maps of one or two
//! mid-level layers (fine local texture, and shapes over a wider field), each reduced to a fixed
//! number of values (every channel, means of channel groups, or a random projection) and averaged
//! over a square neighbourhood (so that every patch sees its surroundings), then brought to one
//! grid (the deepest layer's) and concatenated.

use std::path::Path;
use std::sync::PoisonError;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Layout, Storage, Tensor};
use candle_nn::{VarBuilder, VarMap};
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::data::augment::write_chw_normalized;
use crate::model::SqueezeNet;

use super::bank::{gaussian, matmul};
use super::{Edge, PatchValues, Settings};

/// Images per forward pass: enough to keep both cores busy, few enough that the feature maps of
/// one batch stay small (16 images of fire3 at 227 px are 26 MB).
pub const BATCH: usize = 16;

/// The network through the deepest feature layer, and how its maps become patches.
pub struct Extractor {
    model: SqueezeNet,
    /// The model's variables, for saving the backbone beside the bank.
    varmap: VarMap,
    settings: Settings,
    /// Per layer, with [`PatchValues::Projection`]: the `width x channels` projection matrix.
    projections: Vec<Option<Vec<f32>>>,
}

/// One image's patches: `grid * grid` rows of `dim` values, row-major over the grid.
pub type Patches = Vec<f32>;

impl Extractor {
    /// `model` (with its variables `varmap`) must hold the backbone through the settings'
    /// deepest layer.
    pub fn new(model: SqueezeNet, varmap: VarMap, settings: Settings) -> Result<Extractor> {
        settings.validate()?;
        let projections = settings
            .layers
            .iter()
            .enumerate()
            .map(|(l, layer)| match settings.values {
                PatchValues::Projection(width) => {
                    let channels = crate::model::layer_channels(layer).expect("validated layer");
                    Some(projection_matrix(settings.seed, l, width, channels))
                }
                PatchValues::All | PatchValues::Means(_) => None,
            })
            .collect();
        Ok(Extractor {
            model,
            varmap,
            settings,
            projections,
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

    /// Layer `l`'s `width x channels` projection matrix (row-major), with
    /// [`PatchValues::Projection`].
    pub fn projection(&self, l: usize) -> Option<&[f32]> {
        self.projections.get(l)?.as_deref()
    }

    /// Patches of every image (each `input_size` square, as decoded for the model).
    pub fn patches(&self, images: &[RgbImage]) -> Result<Vec<Patches>> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(BATCH) {
            out.extend(self.batch_patches(chunk)?);
        }
        Ok(out)
    }

    /// The layers' feature maps of `x`, contiguous; each deeper one from the one before, in one
    /// pass.
    fn layer_maps(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let layers = &self.settings.layers;
        let mut maps: Vec<Tensor> = vec![self.model.forward_to(x, &layers[0])?];
        for pair in layers.windows(2) {
            let next =
                self.model
                    .forward_between(maps.last().expect("one map"), &pair[0], &pair[1])?;
            maps.push(next);
        }
        maps.into_iter()
            .map(|m| Ok(m.contiguous()?))
            .collect::<Result<_>>()
    }

    /// How layer `l`'s planes reduce to its patch values.
    fn reduction(&self, l: usize) -> Reduction<'_> {
        match (self.settings.values, &self.projections[l]) {
            (PatchValues::Projection(width), Some(matrix)) => {
                Reduction::Projection { matrix, width }
            }
            (PatchValues::Means(width), _) => Reduction::Means(width),
            _ => Reduction::All,
        }
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
        let tensors = self.layer_maps(&x)?;
        with_feature_maps(&tensors, |maps| self.patches_of(maps, images.len()))
    }

    /// The patches of each of the `count` images of a batch's feature `maps`.
    fn patches_of(&self, maps: &[FeatureMap<'_>], count: usize) -> Result<Vec<Patches>> {
        let grid = maps.last().expect("one layer").h;
        let widths = self.settings.layer_widths();
        let dim = self.settings.dim();
        let around = self.around();
        Ok((0..count)
            .into_par_iter()
            .map(|b| {
                // Each patch is the layers' values side by side; each layer writes into place.
                let mut patches = vec![0f32; grid * grid * dim];
                let mut offset = 0;
                for (l, (map, &width)) in maps.iter().zip(&widths).enumerate() {
                    let image = map.image(b);
                    let reduced = image.reduce(&self.reduction(l), false);
                    image.write_patches(&reduced, width, around, grid, &mut patches, offset, dim);
                    offset += width;
                }
                patches
            })
            .collect())
    }

    /// Each patch's neighbourhood, as the settings give it.
    fn around(&self) -> Around {
        Around {
            reach: self.settings.neighbourhood / 2,
            edge: self.settings.edge,
        }
    }

    /// Input pixels per patch of the grid (the deepest layer's step: 8 for fire5).
    pub fn patch_stride(&self) -> usize {
        crate::model::layer_stride(self.settings.grid_layer()).expect("validated layer")
    }

    /// Patches along each side of an image (the grid of [`Extractor::patches`]).
    pub fn grid(&self) -> usize {
        let side = self.settings.input_size as usize;
        crate::model::layer_side(self.settings.grid_layer(), side).expect("validated input size")
    }

    /// Whether a tile's patches ([`Extractor::tile_patches`]) are exactly a window's: each
    /// layer's map of a window is then exactly its share of the patch grid (fire5's 28 cells
    /// under fire7's 14 at 227 px), so the tile's block means are the window's area resampling.
    /// Not so where the sides round apart (fire5's 27 under fire7's 13 at 224 px): a window's
    /// adaptive pooling then averages 2 or 3 cells, depending on where the window starts.
    pub fn tiles_match_windows(&self) -> bool {
        let side = self.settings.input_size as usize;
        let (grid, stride) = (self.grid(), self.patch_stride());
        self.settings.layers.iter().all(|l| {
            let ratio = stride / crate::model::layer_stride(l).expect("validated layer");
            crate::model::layer_side(l, side) == Some(grid * ratio)
        })
    }

    /// Patches along each side of an image whose values depend on where the image ends: the
    /// fire modules' zero padding and the neighbourhood averaging reach that far in, and one more
    /// patch for the ceil-mode pools' clipped last windows on the right and bottom. The patches
    /// inside them are the same whether the image stands alone or is a window of a larger photo (5
    /// for fire5 and a 3x3 neighbourhood; the scan test `inner_patches_do_not_depend_on_the_window_edge`
    /// checks it).
    pub fn edge_patches(&self) -> usize {
        let stride = self.patch_stride();
        // Each layer's padding and its own neighbourhood in input pixels; the deepest reaches
        // farthest, but a shallower layer is counted too.
        let reach = self
            .settings
            .layers
            .iter()
            .map(|l| {
                let layer_stride = crate::model::layer_stride(l).expect("validated layer");
                crate::model::layer_padding_reach(l).expect("validated layer")
                    + layer_stride * (self.settings.neighbourhood / 2)
            })
            .max()
            .unwrap_or(0);
        reach.div_ceil(stride) + 1
    }

    /// The patches of the deepest layer's cells `0..cells.0` x `0..cells.1` of a tile of any
    /// size (`size` = width, height; `pixels` normalised channel-major), row-major, for a scan's
    /// shared pass. They are computed as a window's are, except that a patch sees its real
    /// neighbours where a window's edge patch sees only those inside it, and a shallower layer
    /// comes to the deepest one's grid as the mean of the cells under each patch (2 x 2 for fire3
    /// under fire5): what a window's area resampling computes.
    pub fn tile_patches(
        &self,
        pixels: Vec<f32>,
        (w, h): (usize, usize),
        (rows, cols): (usize, usize),
    ) -> Result<Vec<f32>> {
        let x = Tensor::from_vec(pixels, (1, 3, h, w), &Device::Cpu)?;
        let tensors = self.layer_maps(&x)?;
        drop(x);
        with_feature_maps(&tensors, |maps| {
            self.tile_patches_of(maps, (w, h), (rows, cols))
        })
    }

    /// [`Extractor::tile_patches`] from the tile's feature `maps`.
    fn tile_patches_of(
        &self,
        maps: &[FeatureMap<'_>],
        (w, h): (usize, usize),
        (rows, cols): (usize, usize),
    ) -> Result<Vec<f32>> {
        let deepest = maps.last().expect("one layer");
        ensure!(
            deepest.h >= rows && deepest.w >= cols,
            "{} of a {w}x{h} tile is {}x{}, expected at least {rows}x{cols} cells",
            self.settings.grid_layer(),
            deepest.h,
            deepest.w
        );
        let widths = self.settings.layer_widths();
        let dim = self.settings.dim();
        let around = self.around();
        let mut patches = vec![0f32; rows * cols * dim];
        let mut offset = 0;
        for (l, (map, &width)) in maps.iter().zip(&widths).enumerate() {
            let layer = &self.settings.layers[l];
            let ratio =
                self.patch_stride() / crate::model::layer_stride(layer).expect("validated layer");
            let image = map.image(0);
            let reduced = image.reduce(&self.reduction(l), true);
            // One plane per value, in parallel, then interleaved into the patch rows.
            let planes: Vec<Vec<f32>> = (0..width)
                .into_par_iter()
                .map(|d| image.block_means(&reduced, d, around, ratio, (rows, cols)))
                .collect();
            for (d, plane) in planes.iter().enumerate() {
                for (patch, &v) in patches.chunks_exact_mut(dim).zip(plane) {
                    patch[offset + d] = v;
                }
            }
            offset += width;
        }
        Ok(patches)
    }
}

/// Runs `f` on `tensors` (contiguous CPU feature maps) read in place as [`FeatureMap`]s.
fn with_feature_maps<T>(
    tensors: &[Tensor],
    f: impl FnOnce(&[FeatureMap<'_>]) -> Result<T>,
) -> Result<T> {
    let held: Vec<_> = tensors.iter().map(|m| m.storage_and_layout()).collect();
    let maps: Vec<FeatureMap<'_>> = held
        .iter()
        .zip(tensors)
        .map(|((storage, layout), m)| FeatureMap::borrow(storage, layout, m.dims()))
        .collect::<Result<_>>()?;
    f(&maps)
}

/// Layer `l`'s `width x channels` Gaussian projection, scaled by `1/sqrt(width)` so that
/// distances keep their size (Johnson-Lindenstrauss); the same for the same seed and layer.
fn projection_matrix(seed: u64, l: usize, width: usize, channels: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // A stream of its own for each layer (and apart from the coreset's, which uses stream 0).
    rng.set_stream(1 + l as u64);
    let scale = 1.0 / (width as f32).sqrt();
    (0..width * channels)
        .map(|_| gaussian(&mut rng) * scale)
        .collect()
}

/// A patch's neighbourhood: `reach` cells each way, and what the average counts past the border.
#[derive(Debug, Clone, Copy)]
struct Around {
    reach: usize,
    edge: Edge,
}

/// How a layer's channel planes become its value planes.
enum Reduction<'a> {
    All,
    Means(usize),
    Projection { matrix: &'a [f32], width: usize },
}

/// A layer's value planes of one image: the channel planes themselves, channel groups averaged
/// on demand, or projected planes computed at once (one matrix product).
enum Reduced {
    Channels,
    Groups(usize),
    Projected(Vec<f32>),
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
    /// This image's value planes under `reduction`; a projection runs as one matrix product
    /// (on rayon's threads when `parallel`: a scan's tile is one large image).
    fn reduce(&self, reduction: &Reduction<'_>, parallel: bool) -> Reduced {
        match *reduction {
            Reduction::All => Reduced::Channels,
            Reduction::Means(width) => Reduced::Groups(width),
            Reduction::Projection { matrix, width } => {
                let plane = self.h * self.w;
                let mut out = vec![0f32; width * plane];
                matmul(
                    (width, self.channels, plane),
                    matrix,
                    self.values,
                    false,
                    &mut out,
                    parallel,
                );
                Reduced::Projected(out)
            }
        }
    }

    /// Value plane `d` of `reduced`, into `scratch` where it must be computed.
    fn plane<'s>(&'s self, reduced: &'s Reduced, d: usize, scratch: &'s mut [f32]) -> &'s [f32] {
        let plane = self.h * self.w;
        match reduced {
            Reduced::Channels => &self.values[d * plane..(d + 1) * plane],
            Reduced::Projected(values) => &values[d * plane..(d + 1) * plane],
            Reduced::Groups(width) => {
                let (c0, c1) = group_bounds(d, self.channels, *width);
                scratch.copy_from_slice(&self.values[c0 * plane..(c0 + 1) * plane]);
                for c in c0 + 1..c1 {
                    let src = &self.values[c * plane..(c + 1) * plane];
                    scratch.iter_mut().zip(src).for_each(|(r, s)| *r += s);
                }
                let scale = 1.0 / (c1 - c0) as f32;
                scratch.iter_mut().for_each(|r| *r *= scale);
                scratch
            }
        }
    }

    /// Value planes `0..width` of `reduced`, each averaged over its `around` neighbourhoods and
    /// resampled to `grid` x `grid` (area average when larger, bilinear when smaller). Patch
    /// `cell`'s values go to `out[cell * stride + offset..][..width]`.
    #[allow(clippy::too_many_arguments)]
    fn write_patches(
        &self,
        reduced: &Reduced,
        width: usize,
        around: Around,
        grid: usize,
        out: &mut [f32],
        offset: usize,
        stride: usize,
    ) {
        assert_eq!(self.h, self.w, "a window's feature maps are square");
        let n = self.h;
        debug_assert_eq!(out.len(), grid * grid * stride);
        // Scratch planes reused for every value (one allocation each per image, not per value).
        let mut scratch = Scratch::new(n * n);
        let mut resampled = vec![0f32; grid * grid];
        for d in 0..width {
            self.smooth_plane(reduced, d, around, &mut scratch);
            resample_into(&scratch.smoothed, n, grid, &mut resampled);
            for (cell, &v) in resampled.iter().enumerate() {
                out[cell * stride + offset + d] = v;
            }
        }
    }

    /// Value plane `d`, averaged over its neighbourhoods, into `scratch.smoothed`.
    fn smooth_plane(&self, reduced: &Reduced, d: usize, around: Around, scratch: &mut Scratch) {
        let Scratch {
            reduced: buffer,
            rows,
            smoothed,
        } = scratch;
        let plane = self.plane(reduced, d, buffer);
        box_into(
            plane,
            (self.h, self.w),
            around.reach,
            around.edge,
            rows,
            smoothed,
        );
    }

    /// Value plane `d`, smoothed, then averaged over `ratio` x `ratio` blocks of cells
    /// (clipped at the map's edge): the values of the `cells.0` x `cells.1` patches whose cells
    /// are `ratio` times larger than this map's.
    fn block_means(
        &self,
        reduced: &Reduced,
        d: usize,
        around: Around,
        ratio: usize,
        (rows, cols): (usize, usize),
    ) -> Vec<f32> {
        let mut scratch = Scratch::new(self.h * self.w);
        self.smooth_plane(reduced, d, around, &mut scratch);
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

/// Working planes of [`ImageMap::smooth_plane`], reused from one value to the next.
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

/// Mean of each cell's `(2 reach + 1)`-square neighbourhood in an `n` x `n` plane: over the
/// neighbours inside it, or with the cells outside counted as zeros ([`Edge::Zeros`]).
#[cfg(test)]
fn box_mean(src: &[f32], n: usize, reach: usize, edge: Edge, dst: &mut [f32]) {
    let mut rows = vec![0f32; n * n];
    box_into(src, (n, n), reach, edge, &mut rows, dst);
}

/// [`box_mean`] of an `h` x `w` plane, with the row pass kept in `rows` (scratch of `h * w`).
/// Sums run left to right and top to bottom, as the plain definition's; the column pass adds
/// whole rows so that the compiler vectorises it.
fn box_into(
    src: &[f32],
    (h, w): (usize, usize),
    reach: usize,
    edge: Edge,
    rows: &mut [f32],
    dst: &mut [f32],
) {
    let plane = h * w;
    assert!(src.len() == plane && rows.len() == plane && dst.len() == plane);
    if reach == 0 {
        dst.copy_from_slice(src);
        return;
    }
    // Cells averaged over along one side: those inside, or the whole span with zeros counted.
    let counted = |lo: usize, hi: usize| match edge {
        Edge::Inside => (hi - lo + 1) as f32,
        Edge::Zeros => (2 * reach + 1) as f32,
    };
    for (line, row) in src.chunks_exact(w).zip(rows.chunks_exact_mut(w)) {
        for (x, r) in row.iter_mut().enumerate() {
            let (x0, x1) = (x.saturating_sub(reach), (x + reach).min(w - 1));
            *r = line[x0..=x1].iter().sum::<f32>() / counted(x0, x1);
        }
    }
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(reach), (y + reach).min(h - 1));
        let out = &mut dst[y * w..(y + 1) * w];
        out.copy_from_slice(&rows[y0 * w..(y0 + 1) * w]);
        for yy in y0 + 1..=y1 {
            for (o, r) in out.iter_mut().zip(&rows[yy * w..(yy + 1) * w]) {
                *o += r;
            }
        }
        let count = counted(y0, y1);
        if count != 1.0 {
            let scale = 1.0 / count;
            out.iter_mut().for_each(|o| *o *= scale);
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
            let (y0, y1) = area_bounds(gy, n, g);
            for gx in 0..g {
                let (x0, x1) = area_bounds(gx, n, g);
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

/// The cells `i0..i1` of `n` that output cell `i` of `g` averages when shrinking (PyTorch's
/// adaptive average pooling bounds).
fn area_bounds(i: usize, n: usize, g: usize) -> (usize, usize) {
    (i * n / g, ((i + 1) * n).div_ceil(g))
}

/// [`resample_into`] along one side as a row-major `g x n` matrix `R`: the resampled plane is
/// `R X R^T` (both ways of resampling are separable), for graphs that compute it as products.
pub(crate) fn resample_matrix(n: usize, g: usize) -> Vec<f32> {
    let mut matrix = vec![0f32; g * n];
    for (i, row) in matrix.chunks_exact_mut(n).enumerate() {
        if n == g {
            row[i] = 1.0;
        } else if n > g {
            let (i0, i1) = area_bounds(i, n, g);
            row[i0..i1].fill(1.0 / (i1 - i0) as f32);
        } else {
            let (a, b, w) = bilinear_taps(i, n, g);
            row[a] += 1.0 - w;
            row[b] += w;
        }
    }
    matrix
}

/// Channels `c0..c1` that value `d` of `width` channel-group means averages (PyTorch's
/// adaptive_avg_pool1d bounds).
pub(crate) fn group_bounds(d: usize, channels: usize, width: usize) -> (usize, usize) {
    (d * channels / width, ((d + 1) * channels).div_ceil(width))
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
        box_mean(&plane, n, 1, Edge::Inside, &mut smoothed);
        // Interior cell (1, 1): mean of rows 0..=2, columns 0..=2 = value at (1, 1).
        assert_eq!(smoothed[n + 1], plane[n + 1]);
        // Corner (0, 0): mean of the 2x2 block {0, 1, 6, 7}.
        assert_eq!(smoothed[0], 3.5);
        // With zeros counted (PyTorch's avg_pool2d(3, 1, 1)): the same sum over 9 cells; the
        // interior is unchanged.
        box_mean(&plane, n, 1, Edge::Zeros, &mut smoothed);
        assert!((smoothed[0] - 14.0 / 9.0).abs() < 1e-6, "{}", smoothed[0]);
        assert_eq!(smoothed[n + 1], plane[n + 1]);
        // A 5x5 neighbourhood: corner (0, 0) is the mean of the 3x3 block {0, 1, 2, 6, ...}.
        box_mean(&plane, n, 2, Edge::Inside, &mut smoothed);
        assert_eq!(smoothed[0], 7.0);
        box_mean(&plane, n, 0, Edge::Zeros, &mut smoothed);
        assert_eq!(smoothed, plane);
        // 6 -> 3 averages 2x2 blocks; 3 -> 6 keeps a constant plane constant.
        let down = resample(&plane, 6, 3);
        assert_eq!(down[0], (0.0 + 1.0 + 6.0 + 7.0) / 4.0);
        let up = resample(&[2.0; 9], 3, 6);
        assert!(up.iter().all(|&v| (v - 2.0).abs() < 1e-6));
    }

    /// The plain definitions the fast paths must agree with: channels reduced (groups averaged,
    /// kept, or projected by `matrix`), each plane averaged over its neighbourhood and resampled,
    /// one value at a time.
    fn reference_patches(
        map: &ImageMap<'_>,
        values: PatchValues,
        matrix: &[f32],
        around: Around,
        grid: usize,
    ) -> Vec<f32> {
        let reach = around.reach;
        let n = map.h;
        let plane = n * n;
        let width = values.width(map.channels);
        let channel = |c: usize| &map.values[c * plane..(c + 1) * plane];
        let mut out = vec![0f32; grid * grid * width];
        for d in 0..width {
            let mut reduced = vec![0f32; plane];
            match values {
                PatchValues::All => reduced.copy_from_slice(channel(d)),
                PatchValues::Means(_) => {
                    let (c0, c1) = (
                        d * map.channels / width,
                        ((d + 1) * map.channels).div_ceil(width),
                    );
                    for c in c0..c1 {
                        reduced
                            .iter_mut()
                            .zip(channel(c))
                            .for_each(|(r, s)| *r += s);
                    }
                    reduced.iter_mut().for_each(|r| *r /= (c1 - c0) as f32);
                }
                PatchValues::Projection(_) => {
                    for c in 0..map.channels {
                        let m = matrix[d * map.channels + c];
                        reduced
                            .iter_mut()
                            .zip(channel(c))
                            .for_each(|(r, s)| *r += m * s);
                    }
                }
            }
            let mut smoothed = vec![0f32; plane];
            for y in 0..n {
                for x in 0..n {
                    let (mut sum, mut count) = (0.0, 0.0);
                    for yy in y.saturating_sub(reach)..=(y + reach).min(n - 1) {
                        for xx in x.saturating_sub(reach)..=(x + reach).min(n - 1) {
                            sum += reduced[yy * n + xx];
                            count += 1.0;
                        }
                    }
                    if around.edge == Edge::Zeros {
                        count = ((2 * reach + 1) * (2 * reach + 1)) as f32;
                    }
                    smoothed[y * n + x] = sum / count;
                }
            }
            for (cell, v) in resample(&smoothed, n, grid).into_iter().enumerate() {
                out[cell * width + d] = v;
            }
        }
        out
    }

    #[test]
    fn patches_agree_with_the_plain_definitions() {
        // Uneven channel groups, odd sides, shrinking, growing and keeping the grid, the
        // one-cell plane; every reduction, neighbourhoods of 1, 3 and 5, both edges.
        let mut seed = 1u32;
        let cases = [
            (10, 7, PatchValues::Means(4), 3, 1, Edge::Inside),
            (9, 5, PatchValues::Means(3), 8, 1, Edge::Zeros),
            (6, 4, PatchValues::Means(6), 4, 2, Edge::Inside),
            (3, 1, PatchValues::Means(2), 1, 1, Edge::Zeros),
            (5, 6, PatchValues::All, 3, 0, Edge::Zeros),
            (5, 6, PatchValues::All, 6, 1, Edge::Zeros),
            (7, 9, PatchValues::Projection(4), 9, 2, Edge::Inside),
            (7, 9, PatchValues::Projection(4), 9, 2, Edge::Zeros),
            (8, 5, PatchValues::Projection(11), 5, 1, Edge::Inside),
        ];
        for (channels, n, values, grid, reach, edge) in cases {
            let around = Around { reach, edge };
            let mut random = |count: usize| -> Vec<f32> {
                (0..count)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (seed >> 8) as f32 / (1 << 24) as f32 * 4.0 - 1.0
                    })
                    .collect()
            };
            let map_values = random(channels * n * n);
            let width = values.width(channels);
            let matrix = random(width * channels);
            let map = ImageMap {
                values: &map_values,
                channels,
                h: n,
                w: n,
            };
            let expected = reference_patches(&map, values, &matrix, around, grid);
            let reduction = match values {
                PatchValues::All => Reduction::All,
                PatchValues::Means(w) => Reduction::Means(w),
                PatchValues::Projection(width) => Reduction::Projection {
                    matrix: &matrix,
                    width,
                },
            };
            let reduced = map.reduce(&reduction, false);
            let mut both = vec![f32::NAN; grid * grid * 2 * width];
            map.write_patches(&reduced, width, around, grid, &mut both, width, 2 * width);
            for (cell, want) in expected.chunks(width).enumerate() {
                let got = &both[cell * 2 * width + width..][..width];
                for (g, w) in got.iter().zip(want) {
                    assert!(
                        (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                        "{values}, {around:?}: {g} vs {w}"
                    );
                }
                // The other layer's half is left alone.
                assert!(both[cell * 2 * width..][..width].iter().all(|v| v.is_nan()));
            }
        }
    }
}
