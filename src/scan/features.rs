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
//! over the whole photo; tiles bound the memory whatever the photo's size. The tiles of a photo
//! have one length per axis (the fewest cells computed within the memory bound), so the network's
//! buffer pool serves them all, and the photos after it, from one working set: faulting in fresh
//! pages for every tile cost about a third of the scan.

use anyhow::{bail, ensure, Result};
use candle_core::Tensor;
use image::RgbImage;

use super::descriptors::{self, Descriptors, DIM};
use crate::core::windows::{Window, CELL};
use crate::data::augment::write_chw_normalized;
use crate::detector::classifier::Classifier;

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
/// Windows run at once when each is described alone: 32 windows of 227 pixels hold about
/// 100 MB of conv1 output, well under a shared tile's (a 12-megapixel scan's peak is unchanged).
const ALONE_BATCH: usize = 32;

/// A classifier ready to scan: its network, classes and input size (the side of a window), its
/// head read out once for the per-cell class scores, and the projection that gives each cell's
/// descriptor (see [`descriptors`]).
pub struct ScanModel<'a> {
    pub classifier: &'a Classifier,
    /// The input size it was trained at: the side of a window.
    pub window: u32,
    /// `[classes, 1000]` row-major; None for bare ImageNet weights (the logits are relu_conv10's
    /// averages themselves).
    head_weight: Option<Vec<f32>>,
    head_bias: Vec<f32>,
    /// `[DIM, 1000]`: relu_conv10 to a cell's descriptor.
    projection: Tensor,
}

impl<'a> ScanModel<'a> {
    /// The classifier's head, read for scanning; the classifier checked its input size when it
    /// was opened (the one place a model file's checks are made).
    pub fn new(classifier: &'a Classifier) -> Result<ScanModel<'a>> {
        let (head_weight, head_bias) = match classifier.head()? {
            Some((weight, bias)) => (Some(weight), bias),
            None => (None, vec![0.0; CHANNELS]),
        };
        ensure!(
            head_bias.len() == classifier.classes.len(),
            "the model has {} outputs for {} classes",
            head_bias.len(),
            classifier.classes.len()
        );
        let projection = Tensor::from_vec(
            descriptors::projection(CHANNELS),
            (DIM, CHANNELS),
            &classifier.device,
        )?;
        Ok(ScanModel {
            classifier,
            window: classifier.input_size,
            head_weight,
            head_bias,
            projection,
        })
    }

    pub fn bias(&self) -> &[f32] {
        &self.head_bias
    }

    /// Classes, whose scores come first in each cell's values (its descriptor follows).
    pub fn classes(&self) -> usize {
        self.classifier.classes.len()
    }

    /// Each of `windows` (all inside `photo`, of the window's side) described as a model trained
    /// on it sees it: cut out, run alone, relu_conv10 averaged over its own cells and projected
    /// ([`descriptors::Source::Alone`]).
    pub fn describe_alone(&self, photo: &RgbImage, windows: &[Window]) -> Result<Descriptors> {
        let side = self.window as usize;
        let image_len = 3 * side * side;
        let mut values = Vec::with_capacity(windows.len() * DIM);
        for batch in windows.chunks(ALONE_BATCH) {
            let mut pixels = vec![0f32; batch.len() * image_len];
            for (w, out) in batch.iter().zip(pixels.chunks_exact_mut(image_len)) {
                ensure!(
                    w.size == self.window
                        && w.x + w.size <= photo.width()
                        && w.y + w.size <= photo.height(),
                    "window {w:?} is not a {side}-pixel window inside the {}x{} photo",
                    photo.width(),
                    photo.height()
                );
                let crop = image::imageops::crop_imm(photo, w.x, w.y, w.size, w.size).to_image();
                write_chw_normalized(&crop, out);
            }
            let x = Tensor::from_vec(
                pixels,
                (batch.len(), 3, side, side),
                &self.classifier.device,
            )?;
            let averages = self.classifier.model.forward_to(&x, LAYER)?.mean((2, 3))?;
            let projected = averages.matmul(&self.projection.t()?)?;
            values.extend(projected.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(Descriptors { values })
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

/// Values per cell over a grid of 16-pixel cells whose cell (i, j) sits at pixel (16 j, 16 i)
/// of the photo: `values[(i * cols + j) * per_cell + k]`. For a classifier, the class scores of
/// relu_conv10's cells followed by the cell's descriptor; for a one-class model, patch distances.
#[derive(Debug, Clone, PartialEq)]
pub struct CellScores {
    pub rows: usize,
    pub cols: usize,
    pub per_cell: usize,
    pub values: Vec<f32>,
}

impl CellScores {
    pub fn at(&self, row: usize, col: usize) -> &[f32] {
        let i = (row * self.cols + col) * self.per_cell;
        &self.values[i..i + self.per_cell]
    }
}

/// What a tiled pass runs on each tile: a network whose output gives a fixed number of values
/// for each 16-pixel cell, computed the same whether the cell's tile is small or the whole photo
/// (within the margin of [`MARGIN_CELLS`]).
pub trait TileScorer {
    /// Values per cell.
    fn per_cell(&self) -> usize;

    /// The values of cells `0..cells.0` x `0..cells.1` of a tile (`[(i * cells.1 + j) *
    /// per_cell + k]`), from its `size.0` x `size.1` (width x height) pixels, normalised
    /// channel-major, the tile's first cell at its top-left corner.
    fn tile_values(
        &self,
        pixels: Vec<f32>,
        size: (usize, usize),
        cells: (usize, usize),
    ) -> Result<Vec<f32>>;
}

/// One tile along one axis: the cells it computes (`start..end`, margins included) and those it
/// contributes (`used`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
    used: (usize, usize),
}

/// `count` tiles of equal length over `cells` cells, neighbours overlapping by two margins (the
/// last one moved back to end at the grid's end), so that the network's buffers fit every tile.
fn spans(cells: usize, count: usize) -> Vec<Span> {
    let m = MARGIN_CELLS;
    if count <= 1 || cells == 0 {
        return vec![Span {
            start: 0,
            end: cells,
            used: (0, cells),
        }];
    }
    let len = (cells + 2 * m * (count - 1)).div_ceil(count).min(cells);
    let mut out: Vec<Span> = Vec::with_capacity(count);
    for i in 0..count {
        let start = (i * (len - 2 * m)).min(cells - len);
        let from = out.last().map_or(0, |s| s.used.1);
        let to = if i + 1 == count {
            cells
        } else {
            start + len - m
        };
        out.push(Span {
            start,
            end: start + len,
            used: (from, to),
        });
    }
    out
}

/// Photo pixels a tile of cells `span` reads along a side of `photo_side` pixels: exactly its
/// cells' (16 n + 1), except that the tile at the grid's end also takes whatever of the photo lies
/// within a margin beyond it, so its last cells see the photo's real edge as one pass would.
fn pixel_extent(span: Span, grid_cells: usize, photo_side: usize) -> usize {
    let cell = CELL as usize;
    let own = (span.end - span.start) * cell + 1;
    if span.end < grid_cells {
        return own;
    }
    let left = photo_side.saturating_sub(span.start * cell);
    own.max(left.min(own + MARGIN_CELLS * cell))
}

/// The tiling of a `rows` x `cols` grid whose largest tile reads at most `tile_pixels` pixels
/// and which computes the fewest cells; a tile's interior is at least 4 cells a side.
fn plan_tiles(
    rows: usize,
    cols: usize,
    photo: (usize, usize),
    tile_pixels: usize,
) -> (Vec<Span>, Vec<Span>) {
    let most = |cells: usize| 1 + cells.saturating_sub(2 * MARGIN_CELLS) / 4;
    let extent = |spans: &[Span], cells: usize, side: usize| {
        spans
            .iter()
            .map(|&s| pixel_extent(s, cells, side))
            .max()
            .unwrap_or(0)
    };
    let computed = |spans: &[Span]| spans.iter().map(|s| s.end - s.start).sum::<usize>();
    let mut best: Option<(usize, Vec<Span>, Vec<Span>)> = None;
    for a in 1..=most(rows) {
        let by_rows = spans(rows, a);
        let tall = extent(&by_rows, rows, photo.1);
        for b in 1..=most(cols) {
            let by_cols = spans(cols, b);
            let wide = extent(&by_cols, cols, photo.0);
            let work = computed(&by_rows) * computed(&by_cols);
            if tall * wide <= tile_pixels && best.as_ref().is_none_or(|(w, ..)| work < *w) {
                best = Some((work, by_rows.clone(), by_cols));
            }
            if tall * wide <= tile_pixels {
                break; // more columns only add margins
            }
        }
    }
    match best {
        Some((_, r, c)) => (r, c),
        // Even the smallest tiles read more: take them anyway (a tiny limit, as in tests).
        None => (spans(rows, most(rows)), spans(cols, most(cols))),
    }
}

/// Runs `scorer` over `photo` in tiles and returns its values for a `rows` x `cols` grid of
/// cells (pixels past the photo's right and bottom edges repeat the edge).
pub fn cell_scores(
    scorer: &impl TileScorer,
    photo: &RgbImage,
    rows: usize,
    cols: usize,
    tile_pixels: usize,
) -> Result<CellScores> {
    let per_cell = scorer.per_cell();
    let mut out = CellScores {
        rows,
        cols,
        per_cell,
        values: vec![0.0; rows * cols * per_cell],
    };
    let photo_size = (photo.width() as usize, photo.height() as usize);
    let (by_rows, by_cols) = plan_tiles(rows, cols, photo_size, tile_pixels);
    let mut tiles: Vec<(Span, Span, (usize, usize))> = by_rows
        .iter()
        .flat_map(|&r| {
            by_cols.iter().map(move |&c| {
                let extent = (
                    pixel_extent(c, cols, photo_size.0),
                    pixel_extent(r, rows, photo_size.1),
                );
                (r, c, extent)
            })
        })
        .collect();
    // The largest first (the tile at the grid's end may be a few pixels larger): its buffers
    // then serve every other tile.
    tiles.sort_by_key(|&(.., (w, h))| std::cmp::Reverse(w * h));
    for (r, c, extent) in tiles {
        let (x0, y0) = (c.start * CELL as usize, r.start * CELL as usize);
        let pixels = tile_pixels_at(photo, (x0, y0), extent);
        let cells = (r.end - r.start, c.end - c.start);
        let tile = scorer.tile_values(pixels, extent, cells)?;
        ensure!(
            tile.len() == cells.0 * cells.1 * per_cell,
            "a tile gave {} values for {}x{} cells",
            tile.len(),
            cells.0,
            cells.1
        );
        let tile_cols = cells.1;
        for row in r.used.0..r.used.1 {
            let src = ((row - r.start) * tile_cols + (c.used.0 - c.start)) * per_cell;
            let dst = (row * cols + c.used.0) * per_cell;
            let len = (c.used.1 - c.used.0) * per_cell;
            out.values[dst..dst + len].copy_from_slice(&tile[src..src + len]);
        }
    }
    Ok(out)
}

/// The `w` x `h` pixels of `photo` from `(x0, y0)`, normalised channel-major for the network;
/// pixels past the photo's right and bottom edges repeat the edge.
fn tile_pixels_at(photo: &RgbImage, (x0, y0): (usize, usize), (w, h): (usize, usize)) -> Vec<f32> {
    let (pw, ph) = (photo.width() as usize, photo.height() as usize);
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
    data
}

impl TileScorer for ScanModel<'_> {
    fn per_cell(&self) -> usize {
        self.classes() + DIM
    }

    /// The class scores of relu_conv10's cells, then their descriptors.
    fn tile_values(
        &self,
        pixels: Vec<f32>,
        (w, h): (usize, usize),
        (nr, nc): (usize, usize),
    ) -> Result<Vec<f32>> {
        let (out_rows, out_cols) = (
            ScanModel::cells_for(h as u32),
            ScanModel::cells_for(w as u32),
        );
        let x = Tensor::from_vec(pixels, (1, 3, h, w), &self.classifier.device)?;
        let features = self.classifier.model.forward_to(&x, LAYER)?;
        drop(x);
        let dims = features.dims().to_vec();
        if dims != [1, CHANNELS, out_rows, out_cols] || out_rows < nr || out_cols < nc {
            bail!("relu_conv10 of a {w}x{h} tile is {dims:?}, expected at least {nr}x{nc} cells");
        }
        let plane = out_rows * out_cols;
        let projected = self
            .projection
            .matmul(&features.reshape((CHANNELS, plane))?)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        // Read in place (the map is tens of megabytes: no copies), cells (i < nr, j < nc) only.
        let (storage, layout) = features.storage_and_layout();
        let candle_core::Storage::Cpu(cpu) = &*storage else {
            bail!("the scan runs on the CPU")
        };
        let all = cpu.as_slice::<f32>()?;
        let a = match layout.contiguous_offsets() {
            Some((from, to)) => &all[from..to],
            None => bail!("relu_conv10 came back non-contiguous"),
        };
        let classes = self.classes();
        let per_cell = classes + DIM;
        let mut scores = vec![0f32; nr * nc * per_cell];
        match &self.head_weight {
            Some(weight) => {
                // Class-major accumulation a row of cells at a time (unit stride), then transposed.
                let mut acc = vec![0f32; nc];
                for k in 0..classes {
                    for i in 0..nr {
                        acc.fill(0.0);
                        for (c, channel) in a.chunks_exact(plane).enumerate() {
                            let wk = weight[k * CHANNELS + c];
                            if wk != 0.0 {
                                let line = &channel[i * out_cols..i * out_cols + nc];
                                acc.iter_mut().zip(line).for_each(|(s, &v)| *s += wk * v);
                            }
                        }
                        for (j, &v) in acc.iter().enumerate() {
                            scores[(i * nc + j) * per_cell + k] = v;
                        }
                    }
                }
            }
            None => {
                for (c, channel) in a.chunks_exact(plane).enumerate() {
                    for i in 0..nr {
                        for j in 0..nc {
                            scores[(i * nc + j) * per_cell + c] = channel[i * out_cols + j];
                        }
                    }
                }
            }
        }
        for (d, channel) in projected.chunks_exact(plane).enumerate() {
            for i in 0..nr {
                for j in 0..nc {
                    scores[(i * nc + j) * per_cell + classes + d] = channel[i * out_cols + j];
                }
            }
        }
        Ok(scores)
    }
}

/// The reference the shared pass is measured against: each window cut out and classified on its
/// own, in batches. Returns the probability of class `positive` per window.
pub fn classify_windows(
    scan: &ScanModel,
    photo: &RgbImage,
    windows: &[crate::core::windows::Window],
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
        let x = Tensor::from_vec(data, (chunk.len(), 3, side, side), &scan.classifier.device)?;
        let logits = scan
            .classifier
            .model
            .forward_t(&x, false)?
            .to_vec2::<f32>()?;
        out.extend(
            logits
                .iter()
                .map(|l| crate::core::math::softmax(l)[positive]),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_share_one_length_cover_the_grid_once_and_keep_their_margins() {
        for (cells, count) in [(189, 2), (252, 2), (252, 5), (40, 3), (30, 1), (541, 7)] {
            let spans = spans(cells, count);
            assert_eq!(spans.len(), count);
            let len = spans[0].end - spans[0].start;
            let mut next = 0;
            for s in &spans {
                assert_eq!(s.end - s.start, len, "{cells} cells in {count}: {spans:?}");
                assert_eq!(s.used.0, next, "{spans:?}");
                assert!(s.used.0 == 0 || s.used.0 >= s.start + MARGIN_CELLS, "{s:?}");
                assert!(
                    s.used.1 == cells || s.used.1 + MARGIN_CELLS <= s.end,
                    "{s:?}"
                );
                next = s.used.1;
            }
            assert_eq!(next, cells);
        }
        // A 4032 x 3024 photo at 227-pixel windows: 189 x 252 cells in 2 x 2 tiles of at most
        // 4 megapixels, 14% more cells than the grid.
        let (rows, cols) = plan_tiles(189, 252, (4032, 3024), TILE_PIXELS);
        assert_eq!((rows.len(), cols.len()), (2, 2));
        let tall = rows.iter().map(|&s| pixel_extent(s, 189, 3024)).max();
        let wide = cols.iter().map(|&s| pixel_extent(s, 252, 4032)).max();
        assert!(tall.unwrap() * wide.unwrap() <= TILE_PIXELS);
    }
}
