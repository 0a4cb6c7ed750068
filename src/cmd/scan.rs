//! `crackscope scan`: photos in, crack maps out (overlay and mask PNGs, a ranked table or JSON,
//! scores against hand-drawn masks).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use candle_core::Device;
use image::{GrayImage, RgbImage};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::classify::model_file;
use crate::cli::ScanArgs;
use crate::config::Recipe;
use crate::explain::colormap::Colormap;
use crate::explain::overlay::Style;
use crate::oneclass::OneClassModel;
use crate::run::RunDir;
use crate::scan::anomaly::scan_photo_one_class;
use crate::scan::map::{scan_photo, CrackMap, ScanOptions, WindowScore};
use crate::scan::metrics::{pixel_counts, window_counts, PixelCounts, Scores, WindowCounts};
use crate::scan::regions::{regions, Region};
use crate::scan::windows::default_stride;
use crate::scan::{load_scan_model, overlay, photo::load_upright, ScanModel};
use crate::scan_output::{self, MetricsRecord, PhotoRecord, ScanRecord, WindowRecord};

/// File extensions taken from a folder of photos.
const PHOTO_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp"];
/// Class names taken as the crack class when --positive is not given (any case).
const CRACK_NAMES: [&str; 3] = ["positive", "crack", "cracked"];

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

pub fn scan(args: &ScanArgs) -> Result<()> {
    ensure!(
        (0.0..=1.0).contains(&args.threshold),
        "--threshold must be from 0 to 1, got {}",
        args.threshold
    );
    let scanner = Scanner::load(args)?;
    let stride = args
        .stride
        .unwrap_or_else(|| default_stride(scanner.window()));
    ensure!(stride > 0, "--stride must be at least 1 pixel");
    let style = style_of(&args.model)?;
    let photos = photo_files(&args.photos)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let bar = progress(photos.len());
    let mut results = Vec::with_capacity(photos.len());
    let mut records = Vec::with_capacity(photos.len());
    let (mut all_windows, mut all_pixels) = (WindowCounts::default(), PixelCounts::default());
    for path in &photos {
        bar.set_message(path.display().to_string());
        let mut photo = load_upright(path)?;
        let map = scanner
            .scan(&photo, stride)
            .with_context(|| format!("cannot scan {}", path.display()))?;
        let mask = map.mask(args.threshold);
        let found = regions(&mask);
        let in_mask = mask.as_raw().iter().filter(|&&v| v > 0).count();
        let metrics = match &args.masks {
            Some(dir) => {
                let truth = true_mask(dir, path, photo.dimensions())?;
                let w = window_counts(&map.windows, &truth, args.threshold);
                let p = pixel_counts(&mask, &truth, args.tolerance);
                all_windows.add(&w);
                all_pixels.add(&p);
                Some(Metrics {
                    window: w.scores(),
                    border_windows: w.border,
                    pixel: p.scores(),
                    tolerance: args.tolerance,
                })
            }
            None => None,
        };
        overlay::paint(&mut photo, &map, &style, args.threshold);
        let stem = file_stem(path);
        let overlay_path = args.out.join(format!("{stem}-overlay.png"));
        let mask_path = args.out.join(format!("{stem}-mask.png"));
        crate::imaging::write_png(&photo, &overlay_path)?;
        crate::imaging::write_png(&mask, &mask_path)?;
        let map_name = format!("{stem}-map.png");
        crate::imaging::write_png(&cell_map(&map), &args.out.join(&map_name))?;
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
        bar.inc(1);
    }
    bar.finish_and_clear();
    let overall = args.masks.as_ref().map(|_| Metrics {
        window: all_windows.scores(),
        border_windows: all_windows.border,
        pixel: all_pixels.scores(),
        tolerance: args.tolerance,
    });
    if let Some(overall) = &overall {
        let text = serde_json::to_string_pretty(overall)?;
        crate::fsutil::write_atomic(&args.out.join("metrics.json"), text.as_bytes())?;
    }
    scan_output::write(
        &args.out,
        &ScanRecord {
            format: scan_output::FORMAT_VERSION,
            class: scanner.class_name(),
            threshold: args.threshold,
            colormap: style.colormap.to_string(),
            alpha: style.alpha,
            photos: records,
            overall: overall.as_ref().map(metrics_record),
        },
    )?;
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&results)?)
    } else {
        table(
            &results,
            overall.as_ref(),
            &scanner.heading(args.threshold),
            args.threshold,
        )
    };
    // A closed pipe (| head) ends the output quietly.
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(())
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
        region_boxes: scan_output::region_boxes(regions),
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
        map_cell: crate::scan::windows::CELL,
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

/// What scores the windows: a classifier (its crack class's probability, the map from Grad-CAM)
/// or a one-class model (its anomaly score, the map from its anomaly maps).
// One scanner per command: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Scanner {
    Classifier { model: ScanModel, positive: usize },
    OneClass(OneClassModel),
}

impl Scanner {
    fn load(args: &ScanArgs) -> Result<Scanner> {
        if let Some((path, _)) = crate::oneclass::model_file::find(&args.model)? {
            ensure!(
                args.positive.is_none(),
                "{} is a one-class model: it has no crack class to name with --positive",
                args.model.display()
            );
            return Ok(Scanner::OneClass(crate::oneclass::model_file::load(&path)?));
        }
        let model = load_scan_model(
            &model_file(&args.model)?,
            &Device::Cpu,
            &args.model_options.load_options(),
        )?;
        let positive = positive_class(args.positive.as_deref(), &model.classes)?;
        Ok(Scanner::Classifier { model, positive })
    }

    /// The side of a window: the model's input size.
    fn window(&self) -> u32 {
        match self {
            Scanner::Classifier { model, .. } => model.window,
            Scanner::OneClass(model) => model.settings().input_size,
        }
    }

    fn scan(&self, photo: &RgbImage, stride: u32) -> Result<CrackMap> {
        match self {
            Scanner::Classifier { model, positive } => {
                scan_photo(model, photo, &ScanOptions::new(stride, *positive))
            }
            Scanner::OneClass(model) => scan_photo_one_class(model, photo, stride),
        }
    }

    /// The table's first line: what the numbers mean.
    /// What the map shows, for the scan view: the crack class, or the one-class model's anomalies.
    fn class_name(&self) -> String {
        match self {
            Scanner::Classifier { model, positive } => model.classes[*positive].clone(),
            Scanner::OneClass(model) => format!("anomaly (not {})", model.normal_class),
        }
    }

    fn heading(&self, threshold: f32) -> String {
        match self {
            Scanner::Classifier { model, positive } => {
                format!(
                    "crack class {}, threshold {threshold}",
                    model.classes[*positive]
                )
            }
            Scanner::OneClass(model) => format!(
                "one-class model (normal class {}): windows and map as score / (score + {}), \
                 0.5 at the model's {}threshold; threshold {threshold}",
                model.normal_class,
                model.threshold_for_scans(),
                if model.scan_threshold.is_some() {
                    "scan "
                } else {
                    ""
                }
            ),
        }
    }
}

/// `--positive`, else the class named Positive, crack or cracked (any case).
fn positive_class(wanted: Option<&str>, classes: &[String]) -> Result<usize> {
    let found = match wanted {
        Some(name) => classes
            .iter()
            .position(|c| c == name)
            .or_else(|| classes.iter().position(|c| c.eq_ignore_ascii_case(name))),
        None => classes
            .iter()
            .position(|c| CRACK_NAMES.contains(&c.to_ascii_lowercase().as_str())),
    };
    match found {
        Some(i) => Ok(i),
        None => {
            let listed = if classes.len() <= 20 {
                classes.join(", ")
            } else {
                format!(
                    "{}, ... ({} in all)",
                    classes[..10].join(", "),
                    classes.len()
                )
            };
            match wanted {
                Some(name) => bail!("unknown class {name:?}; the model's classes are: {listed}"),
                None => bail!(
                    "the model has no class named Positive, crack or cracked; name the crack \
                     class with --positive (the model's classes are: {listed})"
                ),
            }
        }
    }
}

/// The recipe's colormap and opacity for a run directory; the seed's for a checkpoint file.
fn style_of(model: &Path) -> Result<Style> {
    let recipe = if model.is_dir() {
        Recipe::load(&RunDir::open(model)?.recipe())?
    } else {
        Recipe::from_toml(crate::config::DEFAULT_TOML, "config/default.toml")?
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

/// Files given, and the photos of folders given (sorted by name).
pub fn photo_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("cannot read folder {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_photo_name(p))
                .collect();
            found.sort();
            ensure!(!found.is_empty(), "{} holds no photos", input.display());
            out.extend(found);
        } else if input.is_file() {
            out.push(input.clone());
        } else {
            bail!("{}: no such file or folder", input.display());
        }
    }
    Ok(out)
}

fn is_photo_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PHOTO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "photo".into())
}

/// The mask in `dir` with the photo's file stem (any image format), nonzero = crack, upright.
pub fn true_mask(dir: &Path, photo: &Path, size: (u32, u32)) -> Result<GrayImage> {
    let stem = file_stem(photo);
    let candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read mask folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_photo_name(p) && file_stem(p) == stem)
        .collect();
    let Some(path) = candidates.into_iter().min() else {
        bail!(
            "no mask for {} in {} (expected a file named {stem}.png or similar)",
            photo.display(),
            dir.display()
        )
    };
    let rgb: RgbImage = load_upright(&path)?;
    ensure!(
        rgb.dimensions() == size,
        "{} is {}x{} but its photo {} is {}x{}",
        path.display(),
        rgb.width(),
        rgb.height(),
        photo.display(),
        size.0,
        size.1
    );
    let mut mask = GrayImage::new(size.0, size.1);
    for (m, px) in mask.pixels_mut().zip(rgb.pixels()) {
        m.0[0] = if px.0.iter().any(|&c| c > 0) { 255 } else { 0 };
    }
    Ok(mask)
}

/// A bar on stderr when several photos stream through (hidden off a terminal).
fn progress(photos: usize) -> ProgressBar {
    if photos < 2 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(photos as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {pos}/{len} photos, {eta} left  {wide_msg}")
    {
        bar.set_style(style);
    }
    bar
}

fn fmt_score(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into())
}

/// Photos ranked by crack fraction, with scores when masks were given.
fn table(results: &[PhotoOut], overall: Option<&Metrics>, heading: &str, threshold: f32) -> String {
    let mut order: Vec<&PhotoOut> = results.iter().collect();
    order.sort_by(|a, b| b.crack_fraction.total_cmp(&a.crack_fraction));
    let mut out = format!("{heading}\n");
    out += &format!(
        "{:>8} {:>8} {:>8} {:>10}",
        "crack %", "windows", "cracked", "regions"
    );
    if overall.is_some() {
        out += &format!(
            " {:>7} {:>7} {:>7} {:>7} {:>7}",
            "win F1", "win AUC", "px P", "px R", "px IoU"
        );
    }
    out += "  photo\n";
    let row = |m: &Metrics| {
        format!(
            " {:>7} {:>7} {:>7} {:>7} {:>7}",
            fmt_score(m.window.f1),
            fmt_score(m.window.auroc),
            fmt_score(m.pixel.precision),
            fmt_score(m.pixel.recall),
            fmt_score(m.pixel.iou)
        )
    };
    for r in order {
        let cracked = r
            .windows
            .iter()
            .filter(|w| w.probability >= threshold)
            .count();
        out += &format!(
            "{:>8.2} {:>8} {:>8} {:>10}",
            100.0 * r.crack_fraction,
            r.windows.len(),
            cracked,
            r.regions.len()
        );
        if let Some(m) = &r.metrics {
            out += &row(m);
        }
        out += &format!("  {}\n", r.path.display());
    }
    if let Some(m) = overall {
        out += &format!("{:>8} {:>8} {:>8} {:>10}", "", "", "", "overall");
        out += &row(m);
        out += &format!(
            "  (pixel tolerance {} px; {} windows with cracks only near their border not scored)\n",
            m.tolerance, m.border_windows
        );
    }
    if let Some(first) = results.first() {
        if let Some(dir) = first.overlay.parent() {
            out += &format!("overlays and masks: {}\n", dir.display());
            out += &format!("browse them: crackscope watch {}\n", dir.display());
        }
    }
    out
}
