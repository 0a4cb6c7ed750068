//! A one-class run's `predictions.csv`: one row per scored image (path, true class, its kind, the
//! anomaly score and the verdict at the threshold), written after the test pass and read back by
//! the dashboard's browser. The one writer and the one reader of the format, through the `csv`
//! crate, so paths and class names with commas, quotes or line breaks survive the round trip.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

use crate::train::fit::KINDS;

const HEADER: [&str; 5] = ["path", "truth", "kind", "score", "verdict"];

/// One scored image.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredRow {
    pub path: PathBuf,
    /// The image's class in the data.
    pub truth: String,
    /// Its kind: not of the normal class.
    pub anomalous: bool,
    pub score: f32,
    /// The verdict: the score is above the threshold.
    pub flagged: bool,
}

/// Writes the rows atomically (scores with 6 decimals).
pub fn save(path: &Path, rows: &[ScoredRow]) -> Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(HEADER)?;
    for row in rows {
        writer.write_record([
            row.path.display().to_string(),
            row.truth.clone(),
            KINDS[usize::from(row.anomalous)].to_string(),
            format!("{:.6}", row.score),
            KINDS[usize::from(row.flagged)].to_string(),
        ])?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot encode {}: {e}", path.display()))?;
    crate::core::fsutil::write_atomic(path, &bytes).context("cannot save the predictions")
}

/// Reads the file; `None` when it does not exist (a run not scored yet). Errors name the file
/// and the line.
pub fn load(path: &Path) -> Result<Option<Vec<ScoredRow>>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    parse(&bytes)
        .with_context(|| format!("{} is not a one-class predictions file", path.display()))
        .map(Some)
}

fn parse(bytes: &[u8]) -> Result<Vec<ScoredRow>> {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader.headers().context("cannot read its header")?.clone();
    ensure!(
        header.iter().eq(HEADER),
        "its header is not {}",
        HEADER.join(",")
    );
    let kind = |text: &str| match KINDS.iter().position(|k| *k == text) {
        Some(i) => Ok(i == 1),
        None => bail!("\"{text}\" is neither {}", KINDS.join(" nor ")),
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.context("cannot read a row")?;
        let line = record.position().map_or(0, |p| p.line());
        let row = (|| -> Result<ScoredRow> {
            let field = |i: usize| record.get(i).unwrap_or_default();
            Ok(ScoredRow {
                path: PathBuf::from(field(0)),
                truth: field(1).to_string(),
                anomalous: kind(field(2))?,
                score: field(3)
                    .parse::<f32>()
                    .with_context(|| format!("\"{}\" is not a score", field(3)))?,
                flagged: kind(field(4))?,
            })
        })()
        .with_context(|| format!("line {line}"))?;
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_with_awkward_paths_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("predictions.csv");
        let rows = vec![
            ScoredRow {
                path: "data/Nega,tive/a \"b\".jpg".into(),
                truth: "Nega,tive".into(),
                anomalous: false,
                score: 0.25,
                flagged: true,
            },
            ScoredRow {
                path: "data/Positive/c.jpg".into(),
                truth: "Positive".into(),
                anomalous: true,
                score: 1.5,
                flagged: true,
            },
        ];
        save(&path, &rows).unwrap();
        assert_eq!(load(&path).unwrap().unwrap(), rows);
        assert_eq!(load(&dir.path().join("none.csv")).unwrap(), None);
        std::fs::write(
            &path,
            "path,truth,kind,score,verdict\na,b,normal,x,normal\n",
        )
        .unwrap();
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(
            err.contains("predictions.csv") && err.contains("line 2") && err.contains("score"),
            "{err}"
        );
        // A supervised run's file is not taken for a one-class one.
        std::fs::write(&path, "path,truth,predicted,score,p_a\n").unwrap();
        assert!(load(&path).is_err());
    }
}
