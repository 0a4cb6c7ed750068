//! The shared computation: SqueezeNet is convolutional up to relu_conv10, followed by a global
//! average pool and (for fine-tuned models) a linear head. The head is linear, so it commutes with
//! the average: a window's logits are the average over its relu_conv10 cells of each cell's
//! "class scores" `W · A(cell)`, plus the bias. Running the network once over the whole photo
//! (in tiles) and keeping only those per-cell scores lets every window, however much the windows
//! overlap, be classified from one pass, and Grad-CAM at relu_conv10 comes for free: its channel
//! weights are `W[class] / cells`, so a window's map is `relu(score[class])` over its cells.
//!
//! Tiles carry a margin of [`MARGIN_CELLS`] cells on every side that faces the rest of the photo
//! (more than the 207-pixel receptive field needs), so a tiled pass gives the same cells as one pass
//! over the whole photo; tiles bound the memory whatever the photo's size.

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use image::RgbImage;

use super::windows::CELL;
use crate::data::augment::write_chw_normalized;
use crate::model::{LoadedModel, SqueezeNet, HEAD_BIAS, HEAD_WEIGHT};

/// The layer whose cells are shared.
const LAYER: &str = "relu_conv10";
/// Channels of relu_conv10 (torchvision's 1000 ImageNet outputs).
const CHANNELS: usize = 1000;
/// Cells of context around a tile: cell j depends on pixels 16j - 88 ..= 16j + 118, so 7 cells
/// (112 px) on each side give the tile's interior cells exactly as one pass would.
pub const MARGIN_CELLS: usize = 7;
/// Largest tile (input pixels, margin included): about 64 bytes of conv1 output per input pixel,
/// so a 4-megapixel tile keeps the network's working memory near half a gigabyte.
pub const TILE_PIXELS: usize = 4 << 20;

/// A model ready to scan: the network, its classes, its input size (the window) and its head.
pub struct ScanModel {
    pub model: SqueezeNet,
    pub classes: Vec<String>,
    /// The input size it was trained at: the side of a window.
    pub window: u32,
    /// `[classes, 1000]` row-major; None for bare ImageNet weights (the logits are relu_conv10's
    /// averages themselves).
    head_weight: Option<Vec<f32>>,
    head_bias: Vec<f32>,
    device: Device,
    /// The variables behind `model`, to build a fresh network (with an empty buffer pool) when
    /// the tile shape changes: the pool keeps the last shapes' buffers, several tiles' worth.
    varmap: candle_nn::VarMap,
}

/// Loads a checkpoint for scanning (strictly, as every command does; `options` supply class
/// names or an input size the file does not hold): the one place the scan reads a model file.
pub fn load_scan_model(
    path: &Path,
    device: &Device,
    options: &crate::model::LoadOptions,
) -> Result<ScanModel> {
    ScanModel::new(
        crate::model::load_model_with(path, device, options)?,
        device,
    )
}

impl ScanModel {
    pub fn new(loaded: LoadedModel, device: &Device) -> Result<ScanModel> {
        let Some(window) = loaded.meta.input_size else {
            anyhow::bail!(
                "the model file records no input size (crackscope checkpoints do; give a run \
                 directory or a checkpoint written by `crackscope train`)"
            );
        };
        ensure!(
            window as usize >= crate::model::MIN_INPUT_SIDE,
            "the model's input size {window} is too small to scan with"
        );
        let (head_weight, head_bias) = if loaded.model.has_head() {
            let vars = loaded
                .varmap
                .data()
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let read = |key: &str| -> Result<Vec<f32>> {
                let var = vars
                    .get(key)
                    .with_context(|| format!("the model has no {key}"))?;
                Ok(var.as_tensor().flatten_all()?.to_vec1::<f32>()?)
            };
            (Some(read(HEAD_WEIGHT)?), read(HEAD_BIAS)?)
        } else {
            (None, vec![0.0; CHANNELS])
        };
        ensure!(
            head_bias.len() == loaded.classes.len(),
            "the model has {} outputs for {} classes",
            head_bias.len(),
            loaded.classes.len()
        );
        Ok(ScanModel {
            model: loaded.model,
            classes: loaded.classes,
            window,
            head_weight,
            head_bias,
            device: device.clone(),
            varmap: loaded.varmap,
        })
    }

    /// A network over the same variables with buffers of its own.
    fn fresh_network(&self) -> Result<SqueezeNet> {
        let vb =
            candle_nn::VarBuilder::from_varmap(&self.varmap, candle_core::DType::F32, &self.device);
        let head = self.head_weight.as_ref().map(|_| self.classes.len());
        SqueezeNet::new(vb, head)
    }

    pub fn bias(&self) -> &[f32] {
        &self.head_bias
    }

    /// relu_conv10 cells along a side of `pixels`: conv1 (3, stride 2, no padding), then three
    /// ceil-mode 3x3 stride-2 max pools, each halving the side (see `model::arch`).
    pub fn cells_for(pixels: u32) -> usize {
        let pixels = pixels as usize;
        if pixels < crate::model::MIN_INPUT_SIDE {
            return 0;
        }
        ((pixels - 3) / 2 + 1) / 8
    }
}

/// Per-cell class scores over a grid of relu_conv10 cells whose cell (i, j) sits at pixel
/// (16 j, 16 i) of the photo: `values[(i * cols + j) * classes + k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CellScores {
    pub rows: usize,
    pub cols: usize,
    pub classes: usize,
    pub values: Vec<f32>,
}

impl CellScores {
    pub fn at(&self, row: usize, col: usize) -> &[f32] {
        let i = (row * self.cols + col) * self.classes;
        &self.values[i..i + self.classes]
    }
}

/// Runs the network over `photo` in tiles and returns the class scores of a `rows` x `cols`
/// grid of cells (pixels past the photo's right and bottom edges repeat the edge).
pub fn cell_scores(
    scan: &ScanModel,
    photo: &RgbImage,
    rows: usize,
    cols: usize,
    tile_pixels: usize,
) -> Result<CellScores> {
    let classes = scan.classes.len();
    let mut out = CellScores {
        rows,
        cols,
        classes,
        values: vec![0.0; rows * cols * classes],
    };
    let m = MARGIN_CELLS;
    let side = |cells: usize| cells * CELL as usize + 1;
    // Square tiles (the least margin per interior cell), the whole grid when it fits; at least 4
    // interior cells a side. Equal tiles also let the network's buffer pool reuse its buffers.
    let square = (((tile_pixels as f64).sqrt() as usize) / CELL as usize)
        .saturating_sub(2 * m)
        .max(4);
    let fits = side(rows) * side(cols) <= tile_pixels;
    let (tile_rows, tile_cols) = if fits {
        (rows.max(1), cols.max(1))
    } else {
        (square.min(rows.max(1)), square.min(cols.max(1)))
    };
    let mut network: Option<((usize, usize), SqueezeNet)> = None;
    for r0 in (0..rows).step_by(tile_rows) {
        let r1 = (r0 + tile_rows).min(rows);
        for c0 in (0..cols).step_by(tile_cols) {
            let c1 = (c0 + tile_cols).min(cols);
            let (tr0, tc0) = (r0.saturating_sub(m), c0.saturating_sub(m));
            let (tr1, tc1) = ((r1 + m).min(rows), (c1 + m).min(cols));
            let shape = (tr1 - tr0, tc1 - tc0);
            if network.as_ref().is_none_or(|(s, _)| *s != shape) {
                // The old network's buffers go before the new one allocates its own.
                drop(network.take());
                network = Some((shape, scan.fresh_network()?));
            }
            let net = &network.as_ref().expect("set above").1;
            let tile = tile_scores(scan, net, photo, (tr0, tr1), (tc0, tc1))?;
            for r in r0..r1 {
                for c in c0..c1 {
                    let src = ((r - tr0) * (tc1 - tc0) + (c - tc0)) * classes;
                    let dst = (r * cols + c) * classes;
                    out.values[dst..dst + classes].copy_from_slice(&tile[src..src + classes]);
                }
            }
        }
    }
    Ok(out)
}

/// Class scores of cells `rows.0..rows.1` x `cols.0..cols.1`, from one pass over their pixels.
fn tile_scores(
    scan: &ScanModel,
    network: &SqueezeNet,
    photo: &RgbImage,
    rows: (usize, usize),
    cols: (usize, usize),
) -> Result<Vec<f32>> {
    let cell = CELL as usize;
    let (nr, nc) = (rows.1 - rows.0, cols.1 - cols.0);
    let (x0, y0) = (cols.0 * cell, rows.0 * cell);
    let (pw, ph) = (photo.width() as usize, photo.height() as usize);
    // The pixels the cells need, and beyond them whatever of the photo lies within the margin:
    // the last cells of the grid then see the photo's real edge, as a window there does.
    let reach = |n: usize, start: usize, photo_side: usize| {
        (n * cell + 1).max(
            photo_side
                .saturating_sub(start)
                .min((n + MARGIN_CELLS) * cell + 1),
        )
    };
    let (w, h) = (reach(nc, x0, pw), reach(nr, y0, ph));
    let (out_rows, out_cols) = (
        ScanModel::cells_for(h as u32),
        ScanModel::cells_for(w as u32),
    );
    let mut pixels = RgbImage::new(w as u32, h as u32);
    let src = photo.as_raw();
    for (y, line) in pixels.chunks_exact_mut(w * 3).enumerate() {
        let sy = (y0 + y).min(ph - 1);
        let row = &src[sy * pw * 3..(sy + 1) * pw * 3];
        let inside = pw.saturating_sub(x0).min(w);
        line[..inside * 3].copy_from_slice(&row[x0 * 3..(x0 + inside) * 3]);
        let edge = [
            row[(pw - 1) * 3],
            row[(pw - 1) * 3 + 1],
            row[(pw - 1) * 3 + 2],
        ];
        for px in line[inside * 3..].chunks_exact_mut(3) {
            px.copy_from_slice(&edge);
        }
    }
    let mut data = vec![0f32; 3 * w * h];
    write_chw_normalized(&pixels, &mut data);
    drop(pixels);
    let x = Tensor::from_vec(data, (1, 3, h, w), &scan.device)?;
    let features = network.forward_to(&x, LAYER)?;
    let dims = features.dims().to_vec();
    if dims != [1, CHANNELS, out_rows, out_cols] || out_rows < nr || out_cols < nc {
        bail!("relu_conv10 of a {w}x{h} tile is {dims:?}, expected at least {nr}x{nc} cells");
    }
    let features = if (out_rows, out_cols) == (nr, nc) {
        features
    } else {
        features.narrow(2, 0, nr)?.narrow(3, 0, nc)?
    };
    let a = features.flatten_all()?.to_vec1::<f32>()?;
    drop(features);
    let plane = nr * nc;
    let classes = scan.classes.len();
    let mut scores = vec![0f32; plane * classes];
    match &scan.head_weight {
        Some(weight) => {
            // Class-major accumulation (unit stride over cells), then transposed to cell-major.
            let mut by_class = vec![0f32; classes * plane];
            for (k, acc) in by_class.chunks_exact_mut(plane).enumerate() {
                for (c, channel) in a.chunks_exact(plane).enumerate() {
                    let wk = weight[k * CHANNELS + c];
                    if wk != 0.0 {
                        acc.iter_mut().zip(channel).for_each(|(s, &v)| *s += wk * v);
                    }
                }
            }
            for k in 0..classes {
                for p in 0..plane {
                    scores[p * classes + k] = by_class[k * plane + p];
                }
            }
        }
        None => {
            for (c, channel) in a.chunks_exact(plane).enumerate() {
                for p in 0..plane {
                    scores[p * classes + c] = channel[p];
                }
            }
        }
    }
    Ok(scores)
}

/// The reference the shared pass is measured against: each window cut out and classified on its
/// own, in batches. Returns the probability of class `positive` per window.
pub fn classify_windows(
    scan: &ScanModel,
    photo: &RgbImage,
    windows: &[super::windows::Window],
    positive: usize,
) -> Result<Vec<f32>> {
    let side = scan.window as usize;
    let plane = 3 * side * side;
    let mut out = Vec::with_capacity(windows.len());
    for chunk in windows.chunks(32) {
        let mut data = vec![0f32; chunk.len() * plane];
        for (w, dst) in chunk.iter().zip(data.chunks_exact_mut(plane)) {
            let crop = image::imageops::crop_imm(photo, w.x, w.y, w.size, w.size).to_image();
            write_chw_normalized(&crop, dst);
        }
        let x = Tensor::from_vec(data, (chunk.len(), 3, side, side), &scan.device)?;
        let logits = scan.model.forward_t(&x, false)?.to_vec2::<f32>()?;
        out.extend(
            logits
                .iter()
                .map(|l| crate::explain::methods::softmax(l)[positive]),
        );
    }
    Ok(out)
}
