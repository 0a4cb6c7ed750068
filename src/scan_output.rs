//! The folder `crackscope scan --out` fills, as a file format: `scan.json` (this module's
//! [`ScanRecord`]) beside each photo's overlay, mask and map PNGs. `crackscope scan` is its one
//! writer and the dashboard's scan view (`crackscope watch FOLDER`) its one reader; both go through
//! these types, so the two cannot drift apart. Nothing here knows of the model: the dashboard reads
//! a finished scan from disk.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

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
    /// Connected crack regions in the mask.
    pub regions: usize,
    pub windows: Vec<WindowRecord>,
    pub overlay: String,
    pub mask: String,
    /// The crack map at cell resolution: a grey PNG, 0..255 for probabilities 0..1, one pixel per
    /// `map_cell` x `map_cell` photo pixels (cell j's value belongs at pixel `map_cell` j + `map_cell` / 2).
    pub map: String,
    pub map_cell: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsRecord>,
}

/// One window and its crack probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    pub x: u32,
    pub y: u32,
    pub size: u32,
    pub probability: f32,
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

/// True when `dir` looks like a scan's output folder (it holds the record).
pub fn is_scan_folder(dir: &Path) -> bool {
    dir.join(RECORD_FILE).is_file()
}

/// Writes the record into `dir` (atomically).
pub fn write(dir: &Path, record: &ScanRecord) -> Result<()> {
    let text = serde_json::to_string_pretty(record)?;
    crate::fsutil::write_atomic(&dir.join(RECORD_FILE), text.as_bytes())
}

/// Reads the record of the scan folder `dir`, with errors that name the file.
pub fn read(dir: &Path) -> Result<ScanRecord> {
    let path = dir.join(RECORD_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "{} is not a scan output folder (it has no {RECORD_FILE}; `crackscope scan --out {}` writes one)",
                dir.display(),
                dir.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let record: ScanRecord = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid scan record", path.display()))?;
    if record.format != FORMAT_VERSION {
        bail!(
            "{} has format {}, this crackscope reads format {FORMAT_VERSION}: scan the photos again",
            path.display(),
            record.format
        );
    }
    for photo in &record.photos {
        for name in [&photo.overlay, &photo.mask, &photo.map] {
            if Path::new(name).components().count() != 1 {
                bail!(
                    "{}: {name:?} is not a file name inside the folder",
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
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ScanRecord {
        ScanRecord {
            format: FORMAT_VERSION,
            class: "Positive".into(),
            threshold: 0.5,
            colormap: "jet".into(),
            alpha: 0.5,
            photos: vec![PhotoRecord {
                photo: "/photos/wall.jpg".into(),
                width: 640,
                height: 480,
                crack_fraction: 0.125,
                regions: 2,
                windows: vec![WindowRecord {
                    x: 0,
                    y: 16,
                    size: 227,
                    probability: 0.75,
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
            }],
            overall: None,
        }
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

        let mut newer = record();
        newer.format = FORMAT_VERSION + 1;
        write(dir.path(), &newer).unwrap();
        let message = format!("{:#}", read(dir.path()).unwrap_err());
        assert!(message.contains("scan the photos again"), "{message}");
    }
}
