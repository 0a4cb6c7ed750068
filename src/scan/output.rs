//! The folder `crackscope scan --out` fills, as a file format: `scan.json` (this module's
//! [`ScanRecord`]) beside each photo's overlay, mask and map PNGs and, for classifiers' scans, its
//! window descriptors ([`crate::scan::descriptors`]). `crackscope scan` is its one writer and the
//! dashboard's scan view (`crackscope watch FOLDER`) its one reader; both go through these types,
//! so the two cannot drift apart. Nothing here knows of the model: the dashboard reads a finished
//! scan from disk.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::scan::descriptors::Source;
use crate::scan::plan::Shard;
use crate::scan::regions::Region;
use crate::scan::sweep::Sweep;

/// The record's file name inside the output folder.
pub const RECORD_FILE: &str = "scan.json";
/// Bumped when a change would make older readers misread the record.
pub const FORMAT_VERSION: u32 = 1;

/// A whole scan: its settings and one entry per photo (in scan order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanRecord {
    pub format: u32,
    /// The crack class's name.
    pub class: String,
    /// Probability from which windows are outlined and pixels are in the mask.
    pub threshold: f32,
    /// The recipe's colormap name and opacity, as the overlay PNGs were painted.
    pub colormap: String,
    pub alpha: f32,
    pub photos: Vec<PhotoRecord>,
    /// Scores over all photos, when the scan was given true masks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overall: Option<MetricsRecord>,
    /// What made the numbers (model, window, stride, masks): a scan continues, or merges with,
    /// only a record of equal settings. Absent in records written before scans could continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<ScanSettings>,
    /// The photo list this record is part of, and the shard of it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanRecord>,
    /// Photos that could not be scanned, with the reason (a later run of the scan tries again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<FailedRecord>,
    /// False while photos of the plan are still to be scanned (a scan under way, stopped or
    /// killed); rerunning the same command finishes it. Records of older versions were finished.
    #[serde(default = "finished_by_default")]
    pub finished: bool,
    /// Counts at every threshold of a grid over all photos, when scanned against true masks
    /// (see [`crate::scan::sweep`]); absent in older records and where a photo has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Sweep>,
}

fn finished_by_default() -> bool {
    true
}

/// The settings a scan's numbers depend on, beside the record's `class`, `threshold`,
/// `colormap` and `alpha`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanSettings {
    /// The model file (absolute) and its SHA-256: the same path holding other weights is
    /// another model.
    pub model: PathBuf,
    pub model_sha256: String,
    /// Window side and stride in pixels.
    pub window: u32,
    pub stride: u32,
    /// The true masks' folder (absolute) and the pixel tolerance, when scored against masks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masks: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<u32>,
    /// The factors the photos were resized by and scanned at (`scan --scale`); absent: as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scales: Option<Vec<f32>>,
    /// What the windows' descriptors were computed from (`scan --descriptors`); absent: the
    /// shared pass.
    #[serde(default, skip_serializing_if = "Source::is_shared")]
    pub descriptors: Source,
}

/// The photo list of the scan a record belongs to: its length and digest
/// ([`crate::scan::plan::digest`]), and which shard of it this record holds (none: all of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    pub photos: usize,
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
}

/// A photo the scan could not use, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedRecord {
    pub photo: PathBuf,
    /// Its place in the plan's photo list.
    pub index: usize,
    pub error: String,
}

/// One photo's scan. Picture names are file names inside the output folder, so the folder can be
/// moved; `photo` is the absolute path of the original.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoRecord {
    pub photo: PathBuf,
    /// After EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub crack_fraction: f64,
    /// Connected crack regions in the mask (all of them, however many boxes are kept).
    pub regions: usize,
    /// The regions' bounding boxes, largest area first, at most [`MAX_REGION_BOXES`] of them.
    /// Empty in records written before boxes were kept (`regions` still counts them there).
    #[serde(default)]
    pub region_boxes: Vec<RegionRecord>,
    pub windows: Vec<WindowRecord>,
    pub overlay: String,
    pub mask: String,
    /// The crack map at cell resolution: a grey PNG, 0..255 for probabilities 0..1, one pixel per
    /// `map_cell` x `map_cell` photo pixels (cell j's value belongs at pixel `map_cell` j + `map_cell` / 2).
    pub map: String,
    pub map_cell: u32,
    /// Its windows' descriptors (see [`crate::scan::descriptors`]): a file name inside the
    /// folder, absent for one-class models' scans and scans made before they were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptors: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsRecord>,
    /// Its place in the plan's photo list (photos are recorded in that order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// This photo's counts at every threshold of the sweep, when scanned against a true mask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Sweep>,
    /// Whether the photo is like the model's training images (windows sampled over it);
    /// absent when the model file has no familiarity summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub familiarity: Option<crate::detector::unfamiliar::PhotoCheck>,
}

/// One window and its crack probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    pub x: u32,
    pub y: u32,
    pub size: u32,
    pub probability: f32,
    /// A one-class model's anomaly score itself (absent for classifiers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
}

/// One connected crack region: its bounding box (photo pixels, `x`..`x + width` by
/// `y`..`y + height`) and its area in mask pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionRecord {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub area: u64,
}

/// Boxes kept per photo. A noisy mask can hold tens of thousands of specks; nobody steps through
/// more than this many by hand, and the record stays small (about 130 bytes a box as written, so
/// 65 KB a photo at most). The count in [`PhotoRecord::regions`] stays exact.
pub const MAX_REGION_BOXES: usize = 500;

/// The boxes to record for `regions` (largest first, as [`regions`](crate::scan::regions::regions)
/// orders them): the first [`MAX_REGION_BOXES`].
pub fn region_boxes(regions: &[Region]) -> Vec<RegionRecord> {
    regions
        .iter()
        .take(MAX_REGION_BOXES)
        .map(|r| RegionRecord {
            x: r.x,
            y: r.y,
            width: r.width,
            height: r.height,
            area: r.area,
        })
        .collect()
}

/// Scores against true masks; `None` where a ratio has nothing to count.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricsRecord {
    pub window_precision: Option<f64>,
    pub window_recall: Option<f64>,
    pub window_f1: Option<f64>,
    pub window_auroc: Option<f64>,
    pub pixel_precision: Option<f64>,
    pub pixel_recall: Option<f64>,
    pub pixel_f1: Option<f64>,
    pub pixel_iou: Option<f64>,
    /// Pixel tolerance of the pixel scores.
    pub tolerance: u32,
}

impl PhotoRecord {
    /// The photo's file name, for lists and titles.
    pub fn name(&self) -> String {
        self.photo
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.photo.display().to_string())
    }

    /// Windows whose probability reaches `threshold`.
    pub fn cracked_windows(&self, threshold: f32) -> usize {
        self.windows
            .iter()
            .filter(|w| w.probability >= threshold)
            .count()
    }
}

impl PhotoRecord {
    /// The names of its files inside the folder: its pictures, then its window descriptors if
    /// it has them.
    pub fn files(&self) -> Vec<&str> {
        let pictures = [&self.overlay, &self.mask, &self.map];
        pictures
            .into_iter()
            .chain(&self.descriptors)
            .map(String::as_str)
            .collect()
    }
}

/// True when `dir` looks like a scan's output folder (it holds the record).
pub fn is_scan_folder(dir: &Path) -> bool {
    dir.join(RECORD_FILE).is_file()
}

/// Writes the record into `dir` (atomically; streamed, since a campaign's record reaches hundreds
/// of megabytes).
pub fn write(dir: &Path, record: &ScanRecord) -> Result<()> {
    crate::core::fsutil::write_atomic_with(&dir.join(RECORD_FILE), |file| {
        serde_json::to_writer_pretty(file, record).map_err(std::io::Error::other)
    })
}

/// Reads the record of the scan folder `dir`, with errors that name the file.
pub fn read(dir: &Path) -> Result<ScanRecord> {
    let path = dir.join(RECORD_FILE);
    let file = match std::fs::File::open(&path) {
        Ok(file) => std::io::BufReader::new(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "{} is not a scan output folder (it has no {RECORD_FILE}; `crackscope scan --out {}` writes one)",
                dir.display(),
                dir.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let record: ScanRecord = serde_json::from_reader(file)
        .with_context(|| format!("{} is not a valid scan record", path.display()))?;
    if record.format != FORMAT_VERSION {
        bail!(
            "{} has format {}, this crackscope reads format {FORMAT_VERSION}: scan the photos again",
            path.display(),
            record.format
        );
    }
    let mut seen = std::collections::HashSet::new();
    for photo in &record.photos {
        for name in photo.files() {
            if Path::new(name).components().count() != 1 {
                bail!(
                    "{}: {name:?} is not a file name inside the folder",
                    path.display()
                );
            }
            if !seen.insert(name) {
                bail!(
                    "{}: {name:?} belongs to two photos (a scan of an older version whose \
                     photos' names collided): scan the photos again",
                    path.display()
                );
            }
        }
        if photo.map_cell == 0 || photo.width == 0 || photo.height == 0 {
            bail!(
                "{}: {} has a zero size or map cell",
                path.display(),
                photo.photo.display()
            );
        }
        if photo.region_boxes.len() > photo.regions {
            bail!(
                "{}: {} has {} region boxes but counts {} regions",
                path.display(),
                photo.photo.display(),
                photo.region_boxes.len(),
                photo.regions
            );
        }
        if let Some(r) = photo.region_boxes.iter().find(|r| {
            r.width == 0
                || r.height == 0
                || u64::from(r.x) + u64::from(r.width) > u64::from(photo.width)
                || u64::from(r.y) + u64::from(r.height) > u64::from(photo.height)
        }) {
            bail!(
                "{}: {} has a region box {}x{} at ({}, {}) that is empty or outside its {}x{} pixels",
                path.display(),
                photo.photo.display(),
                r.width,
                r.height,
                r.x,
                r.y,
                photo.width,
                photo.height
            );
        }
    }
    Ok(record)
}

/// Records for tests elsewhere: every field at its plainest, so a test names only what it is
/// about (`PhotoRecord { crack_fraction: 0.3, ..PhotoRecord::for_test("a.jpg", 400, 100) }`) and
/// a new field is added here once.
#[cfg(test)]
impl PhotoRecord {
    pub(crate) fn for_test(name: &str, width: u32, height: u32) -> PhotoRecord {
        PhotoRecord {
            photo: format!("/photos/{name}").into(),
            width,
            height,
            crack_fraction: 0.0,
            regions: 0,
            region_boxes: Vec::new(),
            windows: Vec::new(),
            overlay: format!("{name}-overlay.png"),
            mask: format!("{name}-mask.png"),
            map: format!("{name}-map.png"),
            map_cell: 16,
            metrics: None,
            index: None,
            sweep: None,
            familiarity: None,
            descriptors: None,
        }
    }

    /// Windows of 100 pixels side by side along the top row, with these probabilities.
    pub(crate) fn with_row_of_windows(mut self, probabilities: &[f32]) -> PhotoRecord {
        self.windows = probabilities
            .iter()
            .enumerate()
            .map(|(i, &probability)| WindowRecord {
                x: 100 * i as u32,
                y: 0,
                size: 100,
                probability,
                score: None,
            })
            .collect();
        self
    }
}

#[cfg(test)]
impl ScanRecord {
    /// A finished scan of `photos` at threshold 0.5, without settings, plan or scores.
    pub(crate) fn for_test(photos: Vec<PhotoRecord>) -> ScanRecord {
        ScanRecord {
            format: FORMAT_VERSION,
            class: "Positive".into(),
            threshold: 0.5,
            colormap: "jet".into(),
            alpha: 0.5,
            photos,
            overall: None,
            sweep: None,
            settings: None,
            plan: None,
            failed: Vec::new(),
            finished: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ScanRecord {
        ScanRecord::for_test(vec![PhotoRecord {
            photo: "/photos/wall.jpg".into(),
            width: 640,
            height: 480,
            crack_fraction: 0.125,
            regions: 2,
            region_boxes: vec![
                RegionRecord {
                    x: 10,
                    y: 20,
                    width: 30,
                    height: 5,
                    area: 90,
                },
                RegionRecord {
                    x: 600,
                    y: 0,
                    width: 40,
                    height: 480,
                    area: 60,
                },
            ],
            windows: vec![WindowRecord {
                x: 0,
                y: 16,
                size: 227,
                probability: 0.75,
                score: None,
            }],
            overlay: "wall-overlay.png".into(),
            mask: "wall-mask.png".into(),
            map: "wall-map.png".into(),
            map_cell: 16,
            metrics: Some(MetricsRecord {
                pixel_iou: Some(0.4),
                tolerance: 2,
                ..MetricsRecord::default()
            }),
            index: None,
            sweep: None,
            familiarity: None,
            descriptors: None,
        }])
    }

    #[test]
    fn a_written_record_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_scan_folder(dir.path()));
        write(dir.path(), &record()).unwrap();
        assert!(is_scan_folder(dir.path()));
        assert_eq!(read(dir.path()).unwrap(), record());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [RECORD_FILE], "no temporary file left");
    }

    #[test]
    fn bad_records_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let message = format!("{:#}", read(dir.path()).unwrap_err());
        assert!(message.contains("is not a scan output folder"), "{message}");

        std::fs::write(dir.path().join(RECORD_FILE), "{").unwrap();
        let message = format!("{:#}", read(dir.path()).unwrap_err());
        assert!(
            message.contains("scan.json is not a valid scan record"),
            "{message}"
        );

        let mut escaping = record();
        escaping.photos[0].mask = "../elsewhere.png".into();
        write(dir.path(), &escaping).unwrap();
        let message = format!("{:#}", read(dir.path()).unwrap_err());
        assert!(
            message.contains("not a file name inside the folder"),
            "{message}"
        );

        let mut outside = record();
        outside.photos[0].region_boxes[1].width = 41; // 600 + 41 > 640
        write(dir.path(), &outside).unwrap();
        let message = format!("{:#}", read(dir.path()).unwrap_err());
        assert!(
            message.contains("scan.json") && message.contains("region box 41x480 at (600, 0)"),
            "{message}"
        );

        let mut newer = record();
        newer.format = FORMAT_VERSION + 1;
        write(dir.path(), &newer).unwrap();
        let message = format!("{:#}", read(dir.path()).unwrap_err());
        assert!(message.contains("scan the photos again"), "{message}");
    }

    /// A scan.json written before region boxes were kept: it opens, with the count and no boxes.
    #[test]
    fn a_record_without_region_boxes_reads_with_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut value = serde_json::to_value(record()).unwrap();
        value["photos"][0]
            .as_object_mut()
            .unwrap()
            .remove("region_boxes")
            .unwrap();
        std::fs::write(dir.path().join(RECORD_FILE), value.to_string()).unwrap();
        let old = read(dir.path()).unwrap();
        assert_eq!(old.photos[0].regions, 2);
        assert!(old.photos[0].region_boxes.is_empty());
        let mut expected = record();
        expected.photos[0].region_boxes.clear();
        assert_eq!(old, expected);
    }

    #[test]
    fn region_boxes_keep_the_largest_in_order_up_to_the_cap() {
        let specks: Vec<Region> = (0..MAX_REGION_BOXES as u32 + 20)
            .map(|i| Region {
                x: i,
                y: 0,
                width: 1,
                height: 1,
                area: 10_000 - u64::from(i),
            })
            .collect();
        let boxes = region_boxes(&specks);
        assert_eq!(boxes.len(), MAX_REGION_BOXES);
        assert_eq!(boxes[0].area, 10_000);
        assert_eq!(boxes[MAX_REGION_BOXES - 1].x, MAX_REGION_BOXES as u32 - 1);
        assert_eq!(region_boxes(&specks[..3]).len(), 3);
    }
}
