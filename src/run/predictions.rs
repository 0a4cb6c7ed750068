//! `predictions.csv`: one row per judged image, written after a run is tested (and by `eval` of
//! its test split) and read back by the dashboard's gallery. A classifier's rows hold the path, the
//! true and predicted class, the predicted class's probability, then every class's probability
//! ([`Predictions`]); a one-class model's the path, the true class, its kind, the anomaly score and
//! the verdict at the threshold ([`ScoredRow`]). A run of several data sources adds a last column,
//! `source`, naming each image's. [`PredictionsFile`] is either, made from the one [`Evaluation`]
//! both kinds give, and read back by its header.
//!
//! The one writer and the one reader of the file, both through the `csv` crate, so class names and
//! paths with commas, quotes, line breaks or any Unicode survive the round trip.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

use crate::detector::evaluation::{Evaluation, Verdicts, KINDS};

/// The file of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum PredictionsFile {
    Classes(Predictions),
    Anomaly(Vec<ScoredRow>),
}

impl PredictionsFile {
    /// One row per image of `evaluation`, in set order.
    pub fn of(evaluation: &Evaluation) -> PredictionsFile {
        match &evaluation.verdicts {
            Verdicts::Classes(predictions) => PredictionsFile::Classes(Predictions {
                classes: evaluation.classes.clone(),
                rows: predictions
                    .iter()
                    .map(|p| PredictionRow {
                        path: evaluation.paths[p.index].clone(),
                        truth: p.truth,
                        predicted: p.predicted,
                        probabilities: p.probabilities.clone(),
                        source: None,
                    })
                    .collect(),
            }),
            Verdicts::Anomaly(verdicts) => PredictionsFile::Anomaly(
                evaluation
                    .paths
                    .iter()
                    .zip(&evaluation.labels)
                    .zip(&verdicts.scores)
                    .map(|((path, &label), &score)| {
                        let class = evaluation
                            .classes
                            .get(label)
                            .map(String::as_str)
                            .unwrap_or("?");
                        ScoredRow {
                            path: path.clone(),
                            truth: class.to_string(),
                            anomalous: class != verdicts.normal_class,
                            score,
                            flagged: verdicts.flagged(score),
                            source: None,
                        }
                    })
                    .collect(),
            ),
        }
    }

    /// Names each row's data source (`names[source_of[row]]`) when there are several; with one
    /// source the file keeps its plain columns.
    pub fn with_sources(mut self, names: &[String], source_of: &[usize]) -> PredictionsFile {
        if names.len() > 1 {
            let name = |i: usize| source_of.get(i).and_then(|&s| names.get(s)).cloned();
            match &mut self {
                PredictionsFile::Classes(p) => {
                    for (i, row) in p.rows.iter_mut().enumerate() {
                        row.source = name(i);
                    }
                }
                PredictionsFile::Anomaly(rows) => {
                    for (i, row) in rows.iter_mut().enumerate() {
                        row.source = name(i);
                    }
                }
            }
        }
        self
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        match self {
            PredictionsFile::Classes(p) => p.save(path),
            PredictionsFile::Anomaly(rows) => save_scored(path, rows),
        }
        .context("cannot save the predictions")
    }

    /// Reads the file of either kind, told apart by its header; `None` when it does not exist
    /// (a run not tested yet). Errors name the file and the line.
    pub fn load(path: &Path) -> Result<Option<PredictionsFile>> {
        let Some(bytes) = read(path)? else {
            return Ok(None);
        };
        let scored = csv::Reader::from_reader(bytes.as_slice())
            .headers()
            .is_ok_and(|h| h.get(2) == Some(SCORED_HEADER[2]));
        Ok(Some(if scored {
            PredictionsFile::Anomaly(parse_scored(&bytes).with_context(|| {
                format!("{} is not a one-class predictions file", path.display())
            })?)
        } else {
            PredictionsFile::Classes(
                Predictions::parse(&bytes)
                    .with_context(|| format!("{} is not a predictions file", path.display()))?,
            )
        }))
    }
}

/// The file's bytes; `None` when it does not exist.
fn read(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Columns before the per-class probabilities.
const FIXED: [&str; 4] = ["path", "truth", "predicted", "score"];
/// Prefix of each probability column's name, followed by the class name.
const PROBABILITY_PREFIX: &str = "p_";
/// The last column of a run of several data sources: each image's source.
const SOURCE_COLUMN: &str = "source";

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
    /// The data source the image came from, when the run has several.
    pub source: Option<String>,
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
        let sourced = self.rows.iter().any(|r| r.source.is_some());
        if sourced {
            header.push(SOURCE_COLUMN.into());
        }
        writer.write_record(&header)?;
        for row in &self.rows {
            let mut record = vec![
                row.path.display().to_string(),
                self.classes[row.truth].clone(),
                self.classes[row.predicted].clone(),
                format!("{:.6}", row.score()),
            ];
            record.extend(row.probabilities.iter().map(|p| format!("{p:.6}")));
            if sourced {
                record.push(row.source.clone().unwrap_or_default());
            }
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
        let Some(bytes) = read(path)? else {
            return Ok(None);
        };
        Self::parse(&bytes)
            .with_context(|| format!("{} is not a predictions file", path.display()))
            .map(Some)
    }

    fn parse(bytes: &[u8]) -> Result<Predictions> {
        let mut reader = csv::Reader::from_reader(bytes);
        let header = reader.headers().context("cannot read its header")?.clone();
        let mut columns: Vec<&str> = header.iter().collect();
        let sourced = columns.last() == Some(&SOURCE_COLUMN);
        if sourced {
            columns.pop();
        }
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
                    source: sourced.then(|| field(columns.len()).to_string()),
                })
            })()
            .with_context(|| format!("line {line}"))?;
            rows.push(row);
        }
        Ok(Predictions { classes, rows })
    }
}

const SCORED_HEADER: [&str; 5] = ["path", "truth", "kind", "score", "verdict"];

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
    /// The data source the image came from, when the run has several.
    pub source: Option<String>,
}

/// Writes one-class rows atomically (scores with 6 decimals).
fn save_scored(path: &Path, rows: &[ScoredRow]) -> Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let sourced = rows.iter().any(|r| r.source.is_some());
    let mut header = SCORED_HEADER.to_vec();
    if sourced {
        header.push(SOURCE_COLUMN);
    }
    writer.write_record(&header)?;
    for row in rows {
        let mut record = vec![
            row.path.display().to_string(),
            row.truth.clone(),
            KINDS[usize::from(row.anomalous)].to_string(),
            format!("{:.6}", row.score),
            KINDS[usize::from(row.flagged)].to_string(),
        ];
        if sourced {
            record.push(row.source.clone().unwrap_or_default());
        }
        writer.write_record(&record)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot encode {}: {e}", path.display()))?;
    crate::core::fsutil::write_atomic(path, &bytes)
}

fn parse_scored(bytes: &[u8]) -> Result<Vec<ScoredRow>> {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader.headers().context("cannot read its header")?.clone();
    let sourced = header.len() == SCORED_HEADER.len() + 1
        && header.get(SCORED_HEADER.len()) == Some(SOURCE_COLUMN);
    ensure!(
        header.iter().take(SCORED_HEADER.len()).eq(SCORED_HEADER)
            && (header.len() == SCORED_HEADER.len() || sourced),
        "its header is not {} (and {SOURCE_COLUMN} for several data sources)",
        SCORED_HEADER.join(",")
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
                source: sourced.then(|| field(SCORED_HEADER.len()).to_string()),
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
                source: None,
            },
            PredictionRow {
                path: PathBuf::from("/data/two\nlines/ü,ß.png"),
                truth: 2,
                predicted: 2,
                probabilities: vec![0.0, 0.0, 1.0, 0.0],
                source: None,
            },
            PredictionRow {
                path: PathBuf::from("relative/裂缝.jpg"),
                truth: 3,
                predicted: 1,
                probabilities: vec![0.1, 0.6, 0.1, 0.2],
                source: None,
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
                source: None,
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
    fn several_sources_add_a_source_column_that_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("predictions.csv");
        let names = ["concrete".to_string(), "drone, site 2".to_string()];
        let classes = PredictionsFile::Classes(awkward()).with_sources(&names, &[1, 0, 1]);
        classes.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("🧱,source\n"), "a last header column: {text}");
        let PredictionsFile::Classes(read) = PredictionsFile::load(&path).unwrap().unwrap() else {
            panic!("a classifier's file")
        };
        assert_eq!(read.classes, awkward().classes, "source is no class");
        let sources: Vec<_> = read.rows.iter().map(|r| r.source.as_deref()).collect();
        assert_eq!(
            sources,
            [
                Some("drone, site 2"),
                Some("concrete"),
                Some("drone, site 2")
            ]
        );

        let scored = |source| ScoredRow {
            path: "x.jpg".into(),
            truth: "Positive".into(),
            anomalous: true,
            score: 2.5,
            flagged: true,
            source,
        };
        let one_class = PredictionsFile::Anomaly(vec![scored(None), scored(None)])
            .with_sources(&names, &[0, 1]);
        one_class.save(&path).unwrap();
        assert_eq!(PredictionsFile::load(&path).unwrap(), Some(one_class));
        // One source: the plain columns, as before.
        let plain = PredictionsFile::Classes(awkward()).with_sources(&names[..1], &[0, 0, 0]);
        plain.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("source"), "{text}");
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

    #[test]
    fn one_class_rows_round_trip_with_awkward_paths_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("predictions.csv");
        let rows = vec![
            ScoredRow {
                path: "data/Nega,tive/a \"b\".jpg".into(),
                truth: "Nega,tive".into(),
                anomalous: false,
                score: 0.25,
                flagged: true,
                source: None,
            },
            ScoredRow {
                path: "data/Positive/c.jpg".into(),
                truth: "Positive".into(),
                anomalous: true,
                score: 1.5,
                flagged: true,
                source: None,
            },
        ];
        let file = PredictionsFile::Anomaly(rows);
        file.save(&path).unwrap();
        assert_eq!(PredictionsFile::load(&path).unwrap().unwrap(), file);
        assert_eq!(
            PredictionsFile::load(&dir.path().join("none.csv")).unwrap(),
            None
        );
        std::fs::write(
            &path,
            "path,truth,kind,score,verdict\na,b,normal,x,normal\n",
        )
        .unwrap();
        let err = format!("{:#}", PredictionsFile::load(&path).unwrap_err());
        assert!(
            err.contains("predictions.csv") && err.contains("line 2") && err.contains("score"),
            "{err}"
        );
        // A supervised run's file is not taken for a one-class one.
        std::fs::write(&path, "path,truth,predicted,score,p_a\n").unwrap();
        assert!(matches!(
            PredictionsFile::load(&path).unwrap(),
            Some(PredictionsFile::Classes(_))
        ));
    }
}
