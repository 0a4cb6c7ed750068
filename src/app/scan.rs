//! Scanning a folder of photos: each photo's crack map from a model of either kind, written as
//! overlay, mask and map PNGs and recorded in the folder's `scan.json` (which `watch` opens),
//! with scores against hand-drawn masks when given. The folder's rules (one owner, one scan,
//! continued where it stopped) are [`super::scan_folder`]'s; a photo that cannot be scanned is a
//! row with the reason, and the scan goes on. `crackscope scan` prints what comes back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use candle_core::Device;
use image::GrayImage;
use serde::Serialize;

use super::scan_folder::{output_files, Opened, ScanFolder, METRICS_FILE};
use crate::core::windows::default_stride;
use crate::data::inputs::FileOutcome;
use crate::detector::Detector;
use crate::explain::colormap::Colormap;
use crate::explain::overlay::Style;
use crate::model::LoadOptions;
use crate::run::recipe::Recipe;
use crate::run::RunDir;
use crate::scan::descriptors::{self, Source};
use crate::scan::map::{CrackMap, WindowScore};
use crate::scan::metrics::{pixel_counts, window_counts, PixelCounts, Scores, WindowCounts};
use crate::scan::output::{
    self, FailedRecord, MetricsRecord, PhotoRecord, PlanRecord, ScanRecord, ScanSettings,
    WindowRecord,
};
use crate::scan::overlay;
use crate::scan::photo::{load_upright, photo_files, true_mask};
use crate::scan::plan::{self, Shard};
use crate::scan::regions::{regions, Region};
use crate::scan::scanner::Scanner;
use crate::scan::sweep::{self, photo_sweep, Sweep};
use crate::scan::verdict;

/// What to scan and how (`crackscope scan`'s flags).
#[derive(Debug, Clone)]
pub struct ScanRequest {
    /// A model file or a run directory (its best model and its recipe's colours).
    pub model: PathBuf,
    pub options: LoadOptions,
    /// Photo files, and folders of photos.
    pub photos: Vec<PathBuf>,
    /// The scan's folder; a shard's is `out/shard-K-of-N` (see [`folder_of`]).
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
    /// Only this shard's share of the photos.
    pub shard: Option<Shard>,
    /// Factors the photo is resized by and scanned at (`scan::scales`); empty: as it is.
    pub scales: Vec<f32>,
    /// What the windows' descriptors are computed from.
    pub descriptors: Source,
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
    /// Connected crack regions: the (at most 500) largest, as scan.json keeps them.
    pub regions: Vec<Region>,
    pub overlay: PathBuf,
    pub mask: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// Whether the photo is like the model's training images (absent without a summary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub familiarity: Option<crate::detector::unfamiliar::PhotoCheck>,
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

/// How a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every photo was scanned or reported as failed.
    Finished,
    /// Stopped (a signal) with photos left; the same command continues.
    Stopped,
}

/// A whole scan's results.
pub struct Scanned {
    /// Every photo of the scan (or shard) scanned or failed so far, in list order: those of this
    /// run and those of earlier runs of the same scan.
    pub photos: Vec<FileOutcome<PhotoOut>>,
    /// Over all photos, with masks.
    pub overall: Option<Metrics>,
    /// What the numbers mean, in words (the table's first line).
    pub heading: String,
    /// The folder the scan wrote (a shard's own).
    pub folder: PathBuf,
    pub end: ScanEnd,
    /// Photos scanned by earlier runs and skipped by this one.
    pub earlier: usize,
    /// Photos still to scan (when stopped).
    pub left: usize,
    /// Whether the model file carries a familiarity summary (without one, no photo is checked).
    pub familiarity_known: bool,
}

/// Where a scan is, for a progress display: `done` of `total` photos, the next one's path.
pub struct ScanProgress<'a> {
    pub done: usize,
    pub total: usize,
    pub next: Option<&'a Path>,
}

/// The folder a scan into `out` writes: `out` itself, or a shard's own folder inside it.
pub fn folder_of(out: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(shard) => out.join(shard.folder_name()),
        None => out.to_path_buf(),
    }
}

/// What scanning needs besides the photo: the scanner and the request's settings.
struct Scanning<'a> {
    scanner: &'a Scanner<'a>,
    stride: u32,
    style: &'a Style,
    request: &'a ScanRequest,
    folder: &'a Path,
    /// For the photos' familiarity.
    detector: &'a Detector,
}

/// One photo scanned: its record and its counts against a true mask.
type Done = (PhotoRecord, Option<Counts>);
type Counts = (WindowCounts, PixelCounts);

/// Scans the photos of `request` into its folder, skipping those an earlier run of the same scan
/// recorded, until every photo is done or `stop` says to stop (it is asked before each photo).
pub fn scan_photos(
    request: &ScanRequest,
    progress: &mut dyn FnMut(ScanProgress),
    stop: &dyn Fn() -> bool,
) -> Result<Scanned> {
    ensure!(
        (0.0..=1.0).contains(&request.threshold),
        "--threshold must be from 0 to 1, got {}",
        request.threshold
    );
    let (detector, _) = super::open_model(&request.model, &Device::Cpu, &request.options)?;
    let scanner =
        Scanner::new(&detector, request.positive.as_deref())?.describing(request.descriptors)?;
    let stride = request
        .stride
        .unwrap_or_else(|| default_stride(scanner.window()));
    ensure!(stride > 0, "--stride must be at least 1 pixel");
    crate::scan::scales::validate(&request.scales)?;
    let style = style_of(&request.model)?;
    let photos: Vec<PathBuf> = photo_files(&request.photos)?
        .iter()
        .map(|p| {
            std::path::absolute(p).with_context(|| format!("cannot make {} absolute", p.display()))
        })
        .collect::<Result<_>>()?;
    let names = plan::output_names(&photos);
    let masks = match &request.masks {
        Some(dir) => Some(
            std::path::absolute(dir)
                .with_context(|| format!("cannot make {} absolute", dir.display()))?,
        ),
        None => None,
    };
    let fresh = ScanRecord {
        format: output::FORMAT_VERSION,
        class: scanner.class_name(),
        threshold: request.threshold,
        colormap: style.colormap.to_string(),
        alpha: style.alpha,
        photos: Vec::new(),
        overall: None,
        settings: Some(ScanSettings {
            model: std::path::absolute(&detector.path).unwrap_or(detector.path.clone()),
            model_sha256: crate::model::fetch::sha256_file(&detector.path)?,
            window: scanner.window(),
            stride,
            tolerance: masks.as_ref().map(|_| request.tolerance),
            masks,
            scales: (!crate::scan::scales::is_plain(&request.scales))
                .then(|| request.scales.clone()),
            descriptors: request.descriptors,
        }),
        plan: Some(PlanRecord {
            photos: photos.len(),
            digest: plan::digest(&photos),
            shard: request.shard,
        }),
        failed: Vec::new(),
        finished: false,
        sweep: None,
    };
    let folder_path = folder_of(&request.out, request.shard);
    let (mut folder, opened) = ScanFolder::open(&folder_path, fresh, &photos, &names)?;
    let earlier = match opened {
        Opened::New => 0,
        Opened::Continued { done } => done,
    };
    let done_before = folder.done();
    let mine: Vec<usize> = (0..photos.len())
        .filter(|&i| request.shard.is_none_or(|s| s.takes(i)))
        .collect();
    let to_scan: Vec<usize> = mine
        .iter()
        .copied()
        .filter(|i| !done_before.contains(i))
        .collect();
    let context = Scanning {
        scanner: &scanner,
        stride,
        style: &style,
        request,
        folder: &folder_path,
        detector: &detector,
    };
    let mut fresh_counts: HashMap<usize, Counts> = HashMap::new();
    let mut end = ScanEnd::Finished;
    let mut left = 0;
    for (n, &i) in to_scan.iter().enumerate() {
        if stop() {
            end = ScanEnd::Stopped;
            left = to_scan.len() - n;
            break;
        }
        progress(ScanProgress {
            done: n,
            total: to_scan.len(),
            next: Some(&photos[i]),
        });
        folder.clear_pictures(&names[i])?;
        let result = scan_one(&context, &photos[i], &names[i], i);
        match result {
            Ok((record, counts)) => {
                folder.add_photo(record);
                if let Some(counts) = counts {
                    fresh_counts.insert(i, counts);
                }
            }
            Err(Failure::Photo(error)) => {
                // Pictures written before the failure belong to no record.
                folder.clear_pictures(&names[i])?;
                folder.add_failure(FailedRecord {
                    photo: photos[i].clone(),
                    index: i,
                    error,
                });
            }
            Err(Failure::Output(error)) => {
                let _ = folder.clear_pictures(&names[i]);
                let _ = folder.save(true);
                return Err(error.context(format!(
                    "the scan stopped; {} holds the photos done so far, and the same command \
                     continues it",
                    folder_path.display()
                )));
            }
        }
        folder.save(false)?;
    }
    progress(ScanProgress {
        done: to_scan.len() - left,
        total: to_scan.len(),
        next: None,
    });
    folder.record.finished = end == ScanEnd::Finished;
    let (overall, per_photo) = overall_metrics(&folder, &fresh_counts)?;
    folder.record.overall = overall.as_ref().map(metrics_record);
    folder.record.sweep = overall_sweep(&folder.record)?;
    if let Some(overall) = &overall {
        let text = serde_json::to_string_pretty(overall)?;
        crate::core::fsutil::write_atomic(&folder_path.join(METRICS_FILE), text.as_bytes())?;
    }
    folder.save(true)?;
    let mut outcomes: Vec<(usize, FileOutcome<PhotoOut>)> = Vec::new();
    for record in &folder.record.photos {
        let Some(i) = record.index else { continue };
        let out = photo_out(&folder_path, record, per_photo.get(&i).cloned());
        outcomes.push((i, FileOutcome::Done(out)));
    }
    for failed in &folder.record.failed {
        outcomes.push((
            failed.index,
            FileOutcome::Failed {
                path: failed.photo.clone(),
                error: failed.error.clone(),
            },
        ));
    }
    outcomes.sort_by_key(|(i, _)| *i);
    Ok(Scanned {
        photos: outcomes.into_iter().map(|(_, o)| o).collect(),
        overall,
        heading: scanner.heading(request.threshold),
        folder: folder_path,
        end,
        earlier,
        left,
        familiarity_known: detector.familiarity.is_some(),
    })
}

/// Why a photo has no result: something about the photo (reported as its row; the scan goes
/// on), or the output could not be written (the scan stops).
enum Failure {
    Photo(String),
    Output(anyhow::Error),
}

/// Scans one photo and writes its pictures under `name`.
fn scan_one(c: &Scanning, path: &Path, name: &str, index: usize) -> Result<Done, Failure> {
    let as_row = |e: anyhow::Error| Failure::Photo(one_line(&e));
    let mut photo = load_upright(path).map_err(as_row)?;
    let scales = &c.request.scales;
    let map =
        crate::scan::scales::scan_at_scales(c.scanner, &photo, c.stride, scales).map_err(as_row)?;
    let familiarity = c
        .detector
        .photo_familiarity(&photo, crate::scan::scales::nearest_to_one(scales))
        .map_err(as_row)?;
    let threshold = c.request.threshold;
    let mask = map.mask(threshold);
    let found = regions(&mask);
    let in_mask = mask.as_raw().iter().filter(|&&v| v > 0).count();
    let truth = match &c.request.masks {
        Some(dir) => Some(true_mask(dir, path, photo.dimensions()).map_err(as_row)?),
        None => None,
    };
    let tolerance = c.request.tolerance;
    let counts = truth.as_ref().map(|truth| {
        (
            window_counts(&map.windows, truth, threshold),
            pixel_counts(&mask, truth, tolerance),
        )
    });
    let sweep = truth
        .as_ref()
        .map(|truth| photo_sweep(&map, truth, tolerance, &sweep::thresholds(threshold)));
    let metrics = counts.as_ref().map(|(w, p)| metrics_of(w, p, tolerance));
    let crack_fraction = in_mask as f64 / (map.width as f64 * map.height as f64);
    match &truth {
        // Against a true mask the overlay shows what was right and wrong (see `scan::verdict`).
        Some(truth) => {
            let windows: Vec<_> = map
                .windows
                .iter()
                .map(|w| (*w, verdict::window_verdict(truth, w, threshold)))
                .collect();
            let verdicts = verdict::pixel_verdicts(&mask, truth, tolerance);
            verdict::paint(&mut photo, &verdicts, &windows);
        }
        None => overlay::paint(&mut photo, &map, c.style, threshold),
    }
    let [overlay_name, mask_name, map_name, descriptors_name] = output_files(name);
    let described = !map.windows.is_empty() && map.descriptors.windows() == map.windows.len();
    let write = || -> Result<()> {
        crate::imaging::write_png(&photo, &c.folder.join(&overlay_name))?;
        crate::imaging::write_png(&mask, &c.folder.join(&mask_name))?;
        crate::imaging::write_png(&cell_map(&map), &c.folder.join(&map_name))?;
        if described {
            descriptors::write(&c.folder.join(&descriptors_name), &map.descriptors)?;
        }
        Ok(())
    };
    write().map_err(Failure::Output)?;
    let record = PhotoRecord {
        photo: path.to_path_buf(),
        width: map.width,
        height: map.height,
        crack_fraction,
        regions: found.len(),
        region_boxes: output::region_boxes(&found),
        windows: map
            .windows
            .iter()
            .map(|w| WindowRecord {
                x: w.x,
                y: w.y,
                size: w.size,
                probability: w.probability,
                score: w.score,
            })
            .collect(),
        overlay: overlay_name,
        mask: mask_name,
        map: map_name,
        map_cell: crate::core::windows::CELL,
        descriptors: described.then_some(descriptors_name),
        metrics: metrics.as_ref().map(metrics_record),
        index: Some(index),
        sweep,
        familiarity,
    };
    Ok((record, counts))
}

/// An error as one line, whatever the decoder's message looks like.
fn one_line(error: &anyhow::Error) -> String {
    format!("{error:#}")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn metrics_of(w: &WindowCounts, p: &PixelCounts, tolerance: u32) -> Metrics {
    Metrics {
        window: w.scores(),
        border_windows: w.border,
        pixel: p.scores(),
        tolerance,
    }
}

/// Scores over every recorded photo of `folder` when it was scanned against true masks, and each
/// photo's own: this run's photos from their `fresh` counts, earlier photos (an earlier run's, or
/// a shard's in a merge) counted again from their mask PNG and true mask.
pub(crate) fn overall_metrics(
    folder: &ScanFolder,
    fresh: &HashMap<usize, Counts>,
) -> Result<(Option<Metrics>, HashMap<usize, Metrics>)> {
    let Some(settings) = &folder.record.settings else {
        return Ok((None, HashMap::new()));
    };
    let (Some(masks), Some(tolerance)) = (&settings.masks, settings.tolerance) else {
        return Ok((None, HashMap::new()));
    };
    let threshold = folder.record.threshold;
    let (mut all_windows, mut all_pixels) = (WindowCounts::default(), PixelCounts::default());
    let mut per_photo = HashMap::new();
    for record in &folder.record.photos {
        let Some(i) = record.index else { continue };
        let counted;
        let (w, p) = match fresh.get(&i) {
            Some((w, p)) => (w, p),
            None => {
                counted = count_again(&folder.path, record, masks, threshold, tolerance)
                    .with_context(|| {
                        format!(
                            "cannot score {} (scanned by an earlier run) again for the overall \
                             scores",
                            record.photo.display()
                        )
                    })?;
                (&counted.0, &counted.1)
            }
        };
        per_photo.insert(i, metrics_of(w, p, tolerance));
        all_windows.add(w);
        all_pixels.add(p);
    }
    Ok((
        Some(metrics_of(&all_windows, &all_pixels, tolerance)),
        per_photo,
    ))
}

/// The sum of the recorded photos' threshold sweeps: none when the scan had no masks, or when a
/// photo has none (recorded by a version before sweeps).
pub(crate) fn overall_sweep(record: &ScanRecord) -> Result<Option<Sweep>> {
    if record.photos.is_empty() {
        return Ok(None);
    }
    let mut sum = Sweep::default();
    for photo in &record.photos {
        let Some(sweep) = &photo.sweep else {
            return Ok(None);
        };
        sum.add(sweep)
            .with_context(|| format!("the sweep of {}", photo.photo.display()))?;
    }
    Ok(Some(sum))
}

/// A recorded photo's counts against its true mask, from its mask PNG and windows.
fn count_again(
    folder: &Path,
    record: &PhotoRecord,
    masks: &Path,
    threshold: f32,
    tolerance: u32,
) -> Result<Counts> {
    let size = (record.width, record.height);
    let truth = true_mask(masks, &record.photo, size)?;
    let mask_file = folder.join(&record.mask);
    let predicted = image::open(&mask_file)
        .with_context(|| format!("cannot read {}", mask_file.display()))?
        .to_luma8();
    ensure!(
        predicted.dimensions() == size,
        "{} is not {}x{} as scan.json says",
        mask_file.display(),
        size.0,
        size.1
    );
    Ok((
        window_counts(&windows_of(record), &truth, threshold),
        pixel_counts(&predicted, &truth, tolerance),
    ))
}

fn windows_of(record: &PhotoRecord) -> Vec<WindowScore> {
    record
        .windows
        .iter()
        .map(|w| WindowScore {
            x: w.x,
            y: w.y,
            size: w.size,
            probability: w.probability,
            score: w.score,
        })
        .collect()
}

/// A recorded photo as the table and `--json` show it, read from its record: the same whether
/// this run or an earlier one scanned it.
fn photo_out(folder: &Path, record: &PhotoRecord, metrics: Option<Metrics>) -> PhotoOut {
    PhotoOut {
        path: record.photo.clone(),
        width: record.width,
        height: record.height,
        windows: windows_of(record),
        crack_fraction: record.crack_fraction,
        regions: record
            .region_boxes
            .iter()
            .map(|r| Region {
                x: r.x,
                y: r.y,
                width: r.width,
                height: r.height,
                area: r.area,
            })
            .collect(),
        overlay: folder.join(&record.overlay),
        mask: folder.join(&record.mask),
        metrics,
        familiarity: record.familiarity,
    }
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

pub(crate) fn metrics_record(m: &Metrics) -> MetricsRecord {
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
