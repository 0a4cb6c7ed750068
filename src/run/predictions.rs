//! `predictions.csv`: one row per test image (path, true and predicted class, the predicted class's
//! probability, then every class's probability), written after a run is tested and read back by the
//! dashboard's gallery.
//!
//! The one writer and the one reader of the file, both through the `csv` crate, so class names and
//! paths with commas, quotes, line breaks or any Unicode survive the round trip.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

/// Columns before the per-class probabilities.
const FIXED: [&str; 4] = ["path", "truth", "predicted", "score"];
/// Prefix of each probability column's name, followed by the class name.
const PROBABILITY_PREFIX: &str = "p_";

/// One classified image.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRow {
    pub path: PathBuf,
    /// Index into [`Predictions::classes`].
    pub truth: usize,
    /// Index into [`Predictions::classes`].
    pub predicted: usize,
    /// Probability of every class, in [`Predictions::classes`] order.
    pub probabilities: Vec<f32>,
}

impl PredictionRow {
    /// The probability of the predicted class (the file's `score` column).
    pub fn score(&self) -> f32 {
        self.probabilities[self.predicted]
    }
}

/// The whole file: the classes (from the header) and the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub classes: Vec<String>,
    pub rows: Vec<PredictionRow>,
}

impl Predictions {
    /// Writes the file atomically. Probabilities are written with 6 decimals.
    pub fn save(&self, path: &Path) -> Result<()> {
        let n = self.classes.len();
        for (i, row) in self.rows.iter().enumerate() {
            ensure!(
                row.truth < n && row.predicted < n && row.probabilities.len() == n,
                "prediction row {i} ({}) does not fit the {n} classes",
                row.path.display()
            );
        }
        let mut writer = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
        header.extend(
            self.classes
                .iter()
                .map(|c| format!("{PROBABILITY_PREFIX}{c}")),
        );
        writer.write_record(&header)?;
        for row in &self.rows {
            let mut record = vec![
                row.path.display().to_string(),
                self.classes[row.truth].clone(),
                self.classes[row.predicted].clone(),
                format!("{:.6}", row.score()),
            ];
            record.extend(row.probabilities.iter().map(|p| format!("{p:.6}")));
            writer.write_record(&record)?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot encode {}: {e}", path.display()))?;
        crate::core::fsutil::write_atomic(path, &bytes)
    }

    /// Reads the file; `None` when it does not exist (a run not tested yet). Errors name the file
    /// and the line.
    pub fn load(path: &Path) -> Result<Option<Predictions>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Self::parse(&bytes)
            .with_context(|| format!("{} is not a predictions file", path.display()))
            .map(Some)
    }

    fn parse(bytes: &[u8]) -> Result<Predictions> {
        let mut reader = csv::Reader::from_reader(bytes);
        let header = reader.headers().context("cannot read its header")?.clone();
        let columns: Vec<&str> = header.iter().collect();
        ensure!(
            columns.len() > FIXED.len() && columns[..FIXED.len()] == FIXED,
            "its header does not start with {} and class columns",
            FIXED.join(",")
        );
        let classes = columns[FIXED.len()..]
            .iter()
            .map(|column| {
                column
                    .strip_prefix(PROBABILITY_PREFIX)
                    .map(str::to_string)
                    .with_context(|| {
                        format!("header column \"{column}\" is not {PROBABILITY_PREFIX}<class>")
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let class_index = |name: &str| classes.iter().position(|c| c == name);
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.context("cannot read a row")?;
            let line = record.position().map_or(0, |p| p.line());
            let row = (|| -> Result<PredictionRow> {
                let field = |i: usize| record.get(i).unwrap_or_default();
                let Some(truth) = class_index(field(1)) else {
                    bail!("true class \"{}\" is not in the header", field(1));
                };
                let Some(predicted) = class_index(field(2)) else {
                    bail!("predicted class \"{}\" is not in the header", field(2));
                };
                let probabilities = (FIXED.len()..FIXED.len() + classes.len())
                    .map(|i| {
                        field(i)
                            .parse::<f32>()
                            .with_context(|| format!("\"{}\" is not a probability", field(i)))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(PredictionRow {
                    path: PathBuf::from(field(0)),
                    truth,
                    predicted,
                    probabilities,
                })
            })()
            .with_context(|| format!("line {line}"))?;
            rows.push(row);
        }
        Ok(Predictions { classes, rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn awkward() -> Predictions {
        let classes = vec![
            "Crack, wide".to_string(),
            "say \"no\"".to_string(),
            "two\nlines".to_string(),
            "fissure é 裂缝 🧱".to_string(),
        ];
        let rows = vec![
            PredictionRow {
                path: PathBuf::from("/data/Crack, wide/a \"b\".jpg"),
                truth: 0,
                predicted: 2,
                probabilities: vec![0.25, 0.125, 0.5, 0.125],
            },
            PredictionRow {
                path: PathBuf::from("/data/two\nlines/ü,ß.png"),
                truth: 2,
                predicted: 2,
                probabilities: vec![0.0, 0.0, 1.0, 0.0],
            },
            PredictionRow {
                path: PathBuf::from("relative/裂缝.jpg"),
                truth: 3,
                predicted: 1,
                probabilities: vec![0.1, 0.6, 0.1, 0.2],
            },
        ];
        Predictions { classes, rows }
    }

    #[test]
    fn any_class_name_and_path_survives_the_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("predictions.csv");
        let written = awkward();
        written.save(&path).unwrap();
        let read = Predictions::load(&path).unwrap().unwrap();
        assert_eq!(read.classes, written.classes);
        assert_eq!(read.rows.len(), written.rows.len());
        for (r, w) in read.rows.iter().zip(&written.rows) {
            assert_eq!(
                (&r.path, r.truth, r.predicted),
                (&w.path, w.truth, w.predicted)
            );
            for (a, b) in r.probabilities.iter().zip(&w.probabilities) {
                assert!((a - b).abs() < 1e-6, "{a} vs {b}");
            }
            assert!((r.score() - w.score()).abs() < 1e-6);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary file left behind");
    }

    #[test]
    fn the_file_keeps_its_columns_for_other_readers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("predictions.csv");
        Predictions {
            classes: vec!["Negative".into(), "Positive".into()],
            rows: vec![PredictionRow {
                path: PathBuf::from("/d/Positive/1.jpg"),
                truth: 1,
                predicted: 0,
                probabilities: vec![0.75, 0.25],
            }],
        }
        .save(&path)
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "path,truth,predicted,score,p_Negative,p_Positive\n\
             /d/Positive/1.jpg,Positive,Negative,0.750000,0.750000,0.250000\n"
        );
    }

    #[test]
    fn a_missing_file_is_none_and_a_bad_one_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("predictions.csv");
        assert_eq!(Predictions::load(&path).unwrap(), None);
        for (text, problem) in [
            ("name,age\nx,1\n", "header does not start"),
            ("path,truth,predicted,score,q_A\n", "is not p_<class>"),
            (
                "path,truth,predicted,score,p_A,p_B\nx,A,C,0.5,0.5,0.5\n",
                "line 2: predicted class \"C\"",
            ),
            (
                "path,truth,predicted,score,p_A,p_B\nx,A,B,0.5,0.5,0.5\ny,B,A,0.5,half,0.5\n",
                "line 3: \"half\" is not a probability",
            ),
            (
                "path,truth,predicted,score,p_A,p_B\nx,A,B,0.5\n",
                "cannot read a row",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let message = format!("{:#}", Predictions::load(&path).unwrap_err());
            assert!(
                message.contains("predictions.csv") && message.contains(problem),
                "{text:?}: {message}"
            );
        }
    }

    #[test]
    fn rows_that_do_not_fit_the_classes_are_refused() {
        let mut bad = awkward();
        bad.rows[1].probabilities.pop();
        let dir = tempfile::tempdir().unwrap();
        let message = format!("{:#}", bad.save(&dir.path().join("p.csv")).unwrap_err());
        assert!(message.contains("row 1"), "{message}");
    }
}
