//! Whole-photo crack maps: a trained patch classifier slid over inspection photos.
//!
//! - [`windows`]: the windows covering a photo (model input size, a stride, edges covered).
//! - [`features`]: one shared pass of the network over the photo (in tiles) instead of one pass
//!   per window; the per-cell values it keeps (a classifier's class scores, a one-class model's
//!   patch distances) give every window's score and map.
//! - [`map`]: window probabilities and the crack map (windows x Grad-CAM, at 16-pixel cells,
//!   blown up to the photo a row at a time), the binary mask.
//! - [`regions`], [`metrics`], [`overlay`]: connected crack regions, scores against hand-drawn
//!   masks, the overlay picture.
//! - [`photo`]: photos decoded upright (EXIF orientation).
//! - [`anomaly`]: the same windows and map from a one-class model (patch distances for Grad-CAM).
//! - [`descriptors`]: a short vector per window of what the network sees in it (from the same
//!   shared pass, or each window run alone), for suggesting windows to label by their look;
//!   [`typical`]: that suggestion.
//! - [`scanner`]: a detector of either kind ready to scan; [`output`]: the scan folder's files;
//!   [`plan`]: the photo list, its output names and its shards.
//! - [`sweep`]: precision and recall at every threshold of a grid, counted during a scan with
//!   masks; [`verdict`]: hits, misses and false alarms against a true mask, and their colours.
//!
//! Memory for a photo of P pixels: the decoded photo (3P bytes, painted over in place for the
//! overlay), the mask (P bytes), the network's working memory for one tile (about half a GiB, see
//! [`features::TILE_PIXELS`]) and the cell values ((classes + 64) x P / 256 floats, class scores
//! and descriptors: 12 MB for 12 MP); with `--masks`, the true mask and two grown copies (3P bytes
//! more). Measured peak of the whole `scan` command (decode, scan, PNG writing; tests/scan.rs,
//! ignored test): 868 MiB for 4032 x 3024, 1437 MiB for 11547 x 8660 (100 MP); before the
//! descriptors were kept, 847 and 1434 MiB.
//! The network keeps its working memory from one tile and photo to the next (faulting in fresh
//! pages for every tile cost about a third of the scan); a larger shape drops the shorter buffers.

pub(crate) mod anomaly;
pub mod descriptors;
pub(crate) mod features;
pub mod labels;
pub(crate) mod map;
pub(crate) mod metrics;
pub mod output;
pub(crate) mod overlay;
pub(crate) mod photo;
pub mod plan;
pub mod regions;
pub mod scales;
pub(crate) mod scanner;
pub mod sweep;
pub mod typical;
pub mod verdict;

#[cfg(test)]
mod tests;

pub use features::ScanModel;
pub use map::{scan_photo, Alignment, CrackMap, ScanOptions, WindowScore};
