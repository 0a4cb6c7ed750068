//! `report.json`: a classifier's test results (accuracy, confusion counts, per-class statistics,
//! skipped files), with its one writer and one reader.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::core::stats::ClassStats;
use crate::data::dataset::Skipped;

/// What `report.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub model: PathBuf,
    /// What was classified, in words ("test split of runs/x", or a folder).
    pub data: String,
    pub images: usize,
    pub accuracy: f64,
    pub loss: f32,
    pub classes: Vec<String>,
    /// Rows: true class; columns: predicted class.
    pub confusion: Vec<Vec<usize>>,
    pub per_class: Vec<ClassStats>,
    pub skipped: Vec<Skipped>,
}

impl Report {
    /// Writes the report atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::core::fsutil::write_atomic(path, &serde_json::to_vec_pretty(self)?)
    }

    /// Reads a report written by [`Report::save`].
    pub fn load(path: &Path) -> Result<Report> {
        let text =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a crackscope report", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_as_written() {
        let report = Report {
            model: PathBuf::from("runs/a/model.safetensors"),
            data: "test split of runs/a".into(),
            images: 5,
            accuracy: 0.8,
            loss: 0.25,
            classes: vec!["Negative".into(), "Crack, \"wide\"".into()],
            confusion: vec![vec![2, 1], vec![0, 2]],
            per_class: crate::core::stats::Confusion {
                classes: vec!["Negative".into(), "Crack, \"wide\"".into()],
                counts: vec![vec![2, 1], vec![0, 2]],
            }
            .per_class(),
            skipped: vec![Skipped {
                path: PathBuf::from("Negative/broken.jpg"),
                reason: "not an image".into(),
            }],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        report.save(&path).unwrap();
        let back = Report::load(&path).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&report).unwrap()
        );
        assert_eq!(back.confusion, report.confusion);
        assert!(Report::load(&dir.path().join("missing.json")).is_err());
    }
}
