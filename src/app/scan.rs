//! Scanning a folder of photos: each photo's crack map from a model of either kind, written as
//! overlay, mask and map PNGs and recorded in the folder's `scan.json` (which `watch` opens),
//! with scores against hand-drawn masks when given. `crackscope scan` prints what comes back.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use candle_core::Device;
use image::GrayImage;
use serde::Serialize;

use crate::core::windows::default_stride;
use crate::explain::colormap::Colormap;
use crate::explain::overlay::Style;
use crate::model::LoadOptions;
use crate::run::recipe::Recipe;
use crate::run::RunDir;
use crate::scan::map::{CrackMap, WindowScore};
use crate::scan::metrics::{pixel_counts, window_counts, PixelCounts, Scores, WindowCounts};
use crate::scan::output::{self, MetricsRecord, PhotoRecord, ScanRecord, WindowRecord};
use crate::scan::overlay;
use crate::scan::photo::{file_stem, load_upright, photo_files, true_mask};
use crate::scan::regions::{regions, Region};
use crate::scan::scanner::Scanner;

/// What to scan and how (`crackscope scan`'s flags).
#[derive(Debug, Clone)]
pub struct ScanRequest {
    /// A model file or a run directory (its best model and its recipe's colours).
    pub model: PathBuf,
    pub options: LoadOptions,
    /// Photo files, and folders of photos.
    pub photos: Vec<PathBuf>,
    pub out: PathBuf,
    /// Pixels between windows [default: half a window, rounded to 16 px].
    pub stride: Option<u32>,
    /// A classifier's crack class [default: Positive, crack or cracked].
    pub positive: Option<String>,
    /// A window or pixel is a crack at or above this.
    pub threshold: f32,
    /// Hand-drawn masks to score against, and the pixel tolerance.
    pub masks: Option<PathBuf>,
    pub tolerance: u32,
}

/// One photo's result, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct PhotoOut {
    pub path: PathBuf,
    /// After EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub windows: Vec<WindowScore>,
    /// Share of the photo's pixels in the mask.
    pub crack_fraction: f64,
    pub regions: Vec<Region>,
    pub overlay: PathBuf,
    pub mask: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
}

/// Scores against a true mask (per photo, or over all photos).
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub window: Scores,
    /// Windows with crack pixels only near their border: neither crack nor clear, not scored.
    pub border_windows: u64,
    pub pixel: Scores,
    pub tolerance: u32,
}

/// A whole scan's results.
pub struct Scanned {
    pub photos: Vec<PhotoOut>,
    /// Over all photos, with masks.
    pub overall: Option<Metrics>,
    /// What the numbers mean, in words (the table's first line).
    pub heading: String,
}

/// Where a scan is, for a progress display: `done` of `total` photos, the next one's path.
pub struct ScanProgress<'a> {
    pub done: usize,
    pub total: usize,
    pub next: Option<&'a Path>,
}

/// Scans every photo of `request` into its output folder.
pub fn scan_photos(
    request: &ScanRequest,
    progress: &mut dyn FnMut(ScanProgress),
) -> Result<Scanned> {
    ensure!(
        (0.0..=1.0).contains(&request.threshold),
        "--threshold must be from 0 to 1, got {}",
        request.threshold
    );
    let (detector, _) = super::open_model(&request.model, &Device::Cpu, &request.options)?;
    let scanner = Scanner::new(&detector, request.positive.as_deref())?;
    let stride = request
        .stride
        .unwrap_or_else(|| default_stride(scanner.window()));
    ensure!(stride > 0, "--stride must be at least 1 pixel");
    let style = style_of(&request.model)?;
    let photos = photo_files(&request.photos)?;
    std::fs::create_dir_all(&request.out)
        .with_context(|| format!("cannot create {}", request.out.display()))?;
    let (out, threshold, total) = (&request.out, request.threshold, photos.len());
    let mut results = Vec::with_capacity(total);
    let mut records = Vec::with_capacity(total);
    let (mut all_windows, mut all_pixels) = (WindowCounts::default(), PixelCounts::default());
    for (done, path) in photos.iter().enumerate() {
        progress(ScanProgress {
            done,
            total,
            next: Some(path),
        });
        let mut photo = load_upright(path)?;
        let map = scanner
            .scan(&photo, stride)
            .with_context(|| format!("cannot scan {}", path.display()))?;
        let mask = map.mask(threshold);
        let found = regions(&mask);
        let in_mask = mask.as_raw().iter().filter(|&&v| v > 0).count();
        let metrics = match &request.masks {
            Some(dir) => {
                let truth = true_mask(dir, path, photo.dimensions())?;
                let w = window_counts(&map.windows, &truth, threshold);
                let p = pixel_counts(&mask, &truth, request.tolerance);
                all_windows.add(&w);
                all_pixels.add(&p);
                Some(Metrics {
                    window: w.scores(),
                    border_windows: w.border,
                    pixel: p.scores(),
                    tolerance: request.tolerance,
                })
            }
            None => None,
        };
        overlay::paint(&mut photo, &map, &style, threshold);
        let stem = file_stem(path);
        let overlay_path = out.join(format!("{stem}-overlay.png"));
        let mask_path = out.join(format!("{stem}-mask.png"));
        crate::imaging::write_png(&photo, &overlay_path)?;
        crate::imaging::write_png(&mask, &mask_path)?;
        let map_name = format!("{stem}-map.png");
        crate::imaging::write_png(&cell_map(&map), &out.join(&map_name))?;
        records.push(record_of(
            path,
            &map,
            in_mask,
            &found,
            metrics.as_ref(),
            map_name,
        )?);
        results.push(PhotoOut {
            path: path.clone(),
            width: map.width,
            height: map.height,
            crack_fraction: in_mask as f64 / (map.width as f64 * map.height as f64),
            windows: map.windows,
            regions: found,
            overlay: overlay_path,
            mask: mask_path,
            metrics,
        });
    }
    progress(ScanProgress {
        done: total,
        total,
        next: None,
    });
    let overall = request.masks.as_ref().map(|_| Metrics {
        window: all_windows.scores(),
        border_windows: all_windows.border,
        pixel: all_pixels.scores(),
        tolerance: request.tolerance,
    });
    if let Some(overall) = &overall {
        let text = serde_json::to_string_pretty(overall)?;
        crate::core::fsutil::write_atomic(&out.join("metrics.json"), text.as_bytes())?;
    }
    output::write(
        out,
        &ScanRecord {
            format: output::FORMAT_VERSION,
            class: scanner.class_name(),
            threshold,
            colormap: style.colormap.to_string(),
            alpha: style.alpha,
            photos: records,
            overall: overall.as_ref().map(metrics_record),
        },
    )?;
    Ok(Scanned {
        photos: results,
        overall,
        heading: scanner.heading(threshold),
    })
}

/// The crack map at cell resolution as a grey PNG (0..255 for 0..1), for the dashboard's scan view.
fn cell_map(map: &CrackMap) -> GrayImage {
    let pixels = map
        .cells
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    GrayImage::from_raw(map.cols as u32, map.rows as u32, pixels)
        .expect("one cell value per map pixel")
}

/// The photo's entry in the folder's scan.json (file names inside the folder, the photo's absolute
/// path), so `crackscope watch FOLDER` can show it later.
fn record_of(
    path: &Path,
    map: &CrackMap,
    in_mask: usize,
    regions: &[Region],
    metrics: Option<&Metrics>,
    map_name: String,
) -> Result<PhotoRecord> {
    let stem = file_stem(path);
    let photo = std::path::absolute(path)
        .with_context(|| format!("cannot make {} absolute", path.display()))?;
    Ok(PhotoRecord {
        photo,
        width: map.width,
        height: map.height,
        crack_fraction: in_mask as f64 / (map.width as f64 * map.height as f64),
        regions: regions.len(),
        region_boxes: output::region_boxes(regions),
        windows: map
            .windows
            .iter()
            .map(|w| WindowRecord {
                x: w.x,
                y: w.y,
                size: w.size,
                probability: w.probability,
            })
            .collect(),
        overlay: format!("{stem}-overlay.png"),
        mask: format!("{stem}-mask.png"),
        map: map_name,
        map_cell: crate::core::windows::CELL,
        metrics: metrics.map(metrics_record),
    })
}

fn metrics_record(m: &Metrics) -> MetricsRecord {
    MetricsRecord {
        window_precision: m.window.precision,
        window_recall: m.window.recall,
        window_f1: m.window.f1,
        window_auroc: m.window.auroc,
        pixel_precision: m.pixel.precision,
        pixel_recall: m.pixel.recall,
        pixel_f1: m.pixel.f1,
        pixel_iou: m.pixel.iou,
        tolerance: m.tolerance,
    }
}

/// The recipe's colormap and opacity for a run directory; the seed's for a checkpoint file.
fn style_of(model: &Path) -> Result<Style> {
    let recipe = if model.is_dir() {
        Recipe::load(&RunDir::open(model)?.recipe())?
    } else {
        Recipe::from_toml(crate::run::recipe::DEFAULT_TOML, "config/default.toml")?
    };
    let colormap: Colormap = recipe
        .gradcam
        .colormap
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    Ok(Style {
        colormap,
        alpha: recipe.gradcam.alpha,
    })
}
