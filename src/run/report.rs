//! `report.json`: a model's results on a labelled set, with its one writer and one reader. Each
//! kind of model has its own figures ([`ClassReport`]: accuracy, confusion and per-class
//! statistics; [`AnomalyReport`]: AUROC, average precision and the confusion at the threshold),
//! made from the one [`Evaluation`] both kinds give. The file is the kind's report alone, as it
//! always was, so that reports written before this type existed still read.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::core::stats::{ClassStats, Confusion};
use crate::data::dataset::Skipped;
use crate::detector::evaluation::{AnomalyVerdicts, Evaluation, Verdicts, KINDS};
use crate::detector::oneclass::ranking;
use crate::detector::oneclass::threshold::Threshold;

/// What `report.json` holds, by kind of model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Report {
    Classes(ClassReport),
    Anomaly(AnomalyReport),
}

/// A classifier's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassReport {
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
    /// The results of each data source, when there were several (absent for one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceResult>,
}

/// A one-class model's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnomalyReport {
    pub model: PathBuf,
    /// What was scored, in words ("test split of runs/x", or a folder).
    pub data: String,
    pub images: usize,
    pub normal_class: String,
    /// Area under the ROC curve of the scores (None unless both kinds are present).
    pub auroc: Option<f64>,
    pub average_precision: Option<f64>,
    pub threshold: Threshold,
    /// What `scan` reads window scores against (absent for model files from before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_threshold: Option<Threshold>,
    /// Share of images whose verdict at the threshold matches their kind.
    pub accuracy: f64,
    /// `["normal", "anomaly"]`: the rows and columns of `confusion`.
    pub classes: Vec<String>,
    /// Rows: true kind; columns: verdict.
    pub confusion: Vec<Vec<usize>>,
    /// Mean score of each kind (None where a kind is absent).
    pub mean_score: [Option<f64>; 2],
    pub score_images_per_s: f64,
    /// Seconds the fit took (training only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit_seconds: Option<f64>,
    pub skipped: Vec<Skipped>,
    /// The results of each data source, when there were several (absent for one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceResult>,
}

/// One data source's share of a report (see [`crate::data::sources`]): a merged set can score
/// well overall while one source holds all the mistakes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceResult {
    pub name: String,
    pub images: usize,
    /// Share of the source's images judged right.
    pub accuracy: f64,
    /// Rows: true class (kind); columns: verdict, as the report's own confusion.
    pub confusion: Vec<Vec<usize>>,
    /// Each class's (kind's) recall within the source; None where the source has none of it.
    pub recall: Vec<Option<f64>>,
    /// A one-class model's AUROC within the source (None unless it holds both kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auroc: Option<f64>,
}

impl SourceResult {
    /// A source's figures from its confusion counts.
    fn of(name: String, confusion: Vec<Vec<usize>>, auroc: Option<f64>) -> SourceResult {
        let images: usize = confusion.iter().flatten().sum();
        let right: usize = (0..confusion.len()).map(|c| confusion[c][c]).sum();
        let recall = confusion
            .iter()
            .enumerate()
            .map(|(c, row)| {
                let n: usize = row.iter().sum();
                (n > 0).then(|| row[c] as f64 / n as f64)
            })
            .collect();
        SourceResult {
            name,
            images,
            accuracy: right as f64 / images.max(1) as f64,
            confusion,
            recall,
            auroc,
        }
    }
}

/// The results of each data source in `evaluation`: `names` the sources, `source_of` the source
/// of each judged image (in set order, as [`Evaluation::paths`]). A source with no judged image
/// is listed with none, so that the list always names every source.
pub fn per_source(
    evaluation: &Evaluation,
    names: &[String],
    source_of: &[usize],
) -> Vec<SourceResult> {
    let sources = names.len();
    let of = |image: usize| source_of.get(image).copied().unwrap_or(0).min(sources - 1);
    match &evaluation.verdicts {
        Verdicts::Classes(predictions) => {
            let classes = evaluation.classes.len();
            let mut counts = vec![vec![vec![0usize; classes]; classes]; sources];
            for p in predictions {
                counts[of(p.index)][p.truth][p.predicted] += 1;
            }
            names
                .iter()
                .zip(counts)
                .map(|(name, confusion)| SourceResult::of(name.clone(), confusion, None))
                .collect()
        }
        Verdicts::Anomaly(verdicts) => {
            let anomalous = verdicts.anomalous(&evaluation.labels);
            names
                .iter()
                .enumerate()
                .map(|(s, name)| {
                    let mut confusion = vec![vec![0usize; 2]; 2];
                    let (mut scores, mut kinds) = (Vec::new(), Vec::new());
                    for (image, (&score, &a)) in verdicts.scores.iter().zip(&anomalous).enumerate()
                    {
                        if of(image) == s {
                            confusion[usize::from(a)][usize::from(verdicts.flagged(score))] += 1;
                            scores.push(score);
                            kinds.push(a);
                        }
                    }
                    SourceResult::of(name.clone(), confusion, ranking::auroc(&scores, &kinds))
                })
                .collect()
        }
    }
}

impl Report {
    /// The report of `evaluation`, made by the model at `model` on the data `data` (in words).
    pub fn of(evaluation: &Evaluation, model: &Path, data: String) -> Report {
        match &evaluation.verdicts {
            Verdicts::Classes(predictions) => {
                let mut confusion = Confusion::new(evaluation.classes.clone());
                for p in predictions {
                    confusion.add(p.truth, p.predicted);
                }
                let loss = predictions.iter().map(|p| p.loss).sum::<f32>()
                    / predictions.len().max(1) as f32;
                Report::Classes(ClassReport {
                    model: model.to_path_buf(),
                    data,
                    images: predictions.len(),
                    accuracy: confusion.accuracy(),
                    loss,
                    per_class: confusion.per_class(),
                    classes: confusion.classes.clone(),
                    confusion: confusion.counts,
                    skipped: evaluation.skipped.clone(),
                    sources: Vec::new(),
                })
            }
            Verdicts::Anomaly(verdicts) => {
                Report::Anomaly(anomaly_report(evaluation, verdicts, model, data))
            }
        }
    }

    /// Writes the report atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::core::fsutil::write_atomic(path, &serde_json::to_vec_pretty(self)?)
    }

    /// Reads a report written by [`Report::save`] (of either kind).
    pub fn load(path: &Path) -> Result<Report> {
        let text =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a crackscope report", path.display()))
    }

    /// Share of images judged right.
    pub fn accuracy(&self) -> f64 {
        match self {
            Report::Classes(r) => r.accuracy,
            Report::Anomaly(r) => r.accuracy,
        }
    }

    /// The rows and columns of [`Report::confusion`].
    pub fn classes(&self) -> &[String] {
        match self {
            Report::Classes(r) => &r.classes,
            Report::Anomaly(r) => &r.classes,
        }
    }

    /// Rows: the truth; columns: the verdict.
    pub fn confusion(&self) -> &[Vec<usize>] {
        match self {
            Report::Classes(r) => &r.confusion,
            Report::Anomaly(r) => &r.confusion,
        }
    }

    /// Images judged.
    pub fn images(&self) -> usize {
        match self {
            Report::Classes(r) => r.images,
            Report::Anomaly(r) => r.images,
        }
    }

    /// The results of each data source (empty for a set of one source).
    pub fn sources(&self) -> &[SourceResult] {
        match self {
            Report::Classes(r) => &r.sources,
            Report::Anomaly(r) => &r.sources,
        }
    }

    /// Adds the results of each source, when there are several (see [`per_source`]).
    pub fn set_sources(&mut self, evaluation: &Evaluation, names: &[String], source_of: &[usize]) {
        let sources = if names.len() > 1 {
            per_source(evaluation, names, source_of)
        } else {
            Vec::new()
        };
        match self {
            Report::Classes(r) => r.sources = sources,
            Report::Anomaly(r) => r.sources = sources,
        }
    }

    /// Files left out, and why.
    pub fn skipped(&self) -> &[Skipped] {
        match self {
            Report::Classes(r) => &r.skipped,
            Report::Anomaly(r) => &r.skipped,
        }
    }

    /// The report as `eval` and the end of training print it.
    pub fn text(&self) -> String {
        match self {
            Report::Classes(r) => class_text(r),
            Report::Anomaly(r) => anomaly_text(r),
        }
    }
}

fn anomaly_report(
    evaluation: &Evaluation,
    verdicts: &AnomalyVerdicts,
    model: &Path,
    data: String,
) -> AnomalyReport {
    let scores = &verdicts.scores;
    let anomalous = verdicts.anomalous(&evaluation.labels);
    let mut confusion = vec![vec![0usize; 2]; 2];
    let mut sums = [(0f64, 0usize); 2];
    for (&s, &a) in scores.iter().zip(&anomalous) {
        confusion[usize::from(a)][usize::from(verdicts.flagged(s))] += 1;
        sums[usize::from(a)].0 += f64::from(s);
        sums[usize::from(a)].1 += 1;
    }
    AnomalyReport {
        model: model.to_path_buf(),
        data,
        images: scores.len(),
        normal_class: verdicts.normal_class.clone(),
        auroc: ranking::auroc(scores, &anomalous),
        average_precision: ranking::average_precision(scores, &anomalous),
        threshold: verdicts.threshold.clone(),
        scan_threshold: verdicts.scan_threshold.clone(),
        accuracy: (confusion[0][0] + confusion[1][1]) as f64 / scores.len().max(1) as f64,
        classes: KINDS.iter().map(|k| k.to_string()).collect(),
        confusion,
        mean_score: sums.map(|(sum, n)| (n > 0).then(|| sum / n as f64)),
        score_images_per_s: verdicts.images_per_s,
        fit_seconds: None,
        skipped: evaluation.skipped.clone(),
        sources: Vec::new(),
    }
}

/// Classes up to which the terminal gets the whole confusion matrix; `report.json` (and `--json`)
/// always hold all of it.
pub const MAX_PRINTED_CLASSES: usize = 20;
/// Skipped files listed by name, per kind, on the terminal; `report.json` lists them all.
pub const MAX_LISTED_FILES: usize = 20;

/// The confusion counts and statistics (capped at [`MAX_PRINTED_CLASSES`] classes), then the
/// skipped files.
fn class_text(report: &ClassReport) -> String {
    let mut confusion = Confusion::new(report.classes.clone());
    confusion.counts = report.confusion.clone();
    let mut text = format!(
        "\n{} images of the {} with {}\n",
        report.images,
        report.data,
        report.model.display()
    );
    text.push_str(&confusion.render_capped(MAX_PRINTED_CLASSES));
    text.push_str(&sources_text(&report.sources, &report.classes, false));
    text.push_str(&skipped_text(&report.skipped));
    text
}

/// Classes up to which the table of sources gives each class's recall (`report.json` always
/// holds them all).
const MAX_RECALL_COLUMNS: usize = 6;

/// The table of results per source, when there are several: images, accuracy and each class's
/// recall (a one-class model's: each kind's, and the AUROC).
pub fn sources_text(sources: &[SourceResult], classes: &[String], one_class: bool) -> String {
    if sources.is_empty() {
        return String::new();
    }
    let width = sources
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let recalls = classes.len() <= MAX_RECALL_COLUMNS;
    let mut text = String::new();
    let _ = write!(
        text,
        "\n{:<width$} {:>7} {:>17}",
        "source", "images", "accuracy"
    );
    if recalls {
        for class in classes {
            let _ = write!(text, "  recall {class}");
        }
    }
    if one_class {
        let _ = write!(text, "    AUROC");
    }
    text.push('\n');
    for s in sources {
        let right: usize = (0..s.confusion.len()).map(|c| s.confusion[c][c]).sum();
        let accuracy = format!("{:.4} ({right}/{})", s.accuracy, s.images);
        let _ = write!(text, "{:<width$} {:>7} {accuracy:>17}", s.name, s.images);
        if recalls {
            for (class, recall) in classes.iter().zip(&s.recall) {
                let shown = recall.map_or("-".to_string(), |r| format!("{r:.4}"));
                let _ = write!(text, "  {shown:>width$}", width = class.chars().count() + 7);
            }
        }
        if one_class {
            let shown = s.auroc.map_or("n/a".to_string(), |a| format!("{a:.4}"));
            let _ = write!(text, " {shown:>8}");
        }
        text.push('\n');
    }
    text
}

/// The ranking figures, the threshold and the confusion at it, the mean scores, the speed and
/// the skipped files.
fn anomaly_text(r: &AnomalyReport) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "\n{} images of the {} with {} (normal class: {})",
        r.images,
        r.data,
        r.model.display(),
        r.normal_class
    );
    let metric = |v: Option<f64>| v.map_or("n/a (needs both kinds)".into(), |v| format!("{v:.4}"));
    let _ = writeln!(text, "AUROC              {}", metric(r.auroc));
    let _ = writeln!(text, "average precision  {}", metric(r.average_precision));
    let _ = writeln!(
        text,
        "threshold          {:.4} ({})",
        r.threshold.value,
        r.threshold.rule_text()
    );
    if let Some(scan) = &r.scan_threshold {
        let _ = writeln!(
            text,
            "scan threshold     {:.4} ({}, inner patches; for `scan`)",
            scan.value,
            scan.rule_text()
        );
    }
    let _ = writeln!(text, "accuracy           {:.4}", r.accuracy);
    let _ = writeln!(
        text,
        "{:>16} {:>10} {:>10}",
        "true \\ verdict", KINDS[0], KINDS[1]
    );
    for (kind, row) in KINDS.iter().zip(&r.confusion) {
        let _ = writeln!(text, "{kind:>16} {:>10} {:>10}", row[0], row[1]);
    }
    for (kind, mean) in KINDS.iter().zip(r.mean_score) {
        if let Some(mean) = mean {
            let _ = writeln!(text, "mean score, {kind:<8} {mean:.4}");
        }
    }
    let _ = writeln!(
        text,
        "scoring            {:.1} images/s",
        r.score_images_per_s
    );
    text.push_str(&sources_text(&r.sources, &r.classes, true));
    text.push_str(&skipped_text(&r.skipped));
    text
}

/// The files a report left out, in two lists: those that could not be read, and those left out on
/// purpose (labelling conflicts, links that loop); at most [`MAX_LISTED_FILES`] named of each.
pub fn skipped_text(skipped: &[Skipped]) -> String {
    let (unreadable, on_purpose): (Vec<&Skipped>, Vec<&Skipped>) =
        skipped.iter().partition(|s| s.is_unreadable());
    let mut text = String::new();
    for (files, what) in [
        (unreadable, "unreadable files skipped"),
        (
            on_purpose,
            "files left out on purpose (labelling conflicts, links that loop)",
        ),
    ] {
        if files.is_empty() {
            continue;
        }
        let _ = writeln!(text, "{} {what}:", files.len());
        for s in files.iter().take(MAX_LISTED_FILES) {
            let _ = writeln!(text, "  {}: {}", s.path.display(), s.reason);
        }
        if files.len() > MAX_LISTED_FILES {
            let _ = writeln!(
                text,
                "  ... and {} more (all in the JSON report)",
                files.len() - MAX_LISTED_FILES
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_as_written() {
        let report = Report::Classes(ClassReport {
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
            sources: Vec::new(),
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        report.save(&path).unwrap();
        let back = Report::load(&path).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&report).unwrap()
        );
        assert!(matches!(back, Report::Classes(_)));
        assert_eq!(back.confusion(), report.confusion());
        assert!(Report::load(&dir.path().join("missing.json")).is_err());
    }

    #[test]
    fn a_one_class_report_reads_back_as_its_own_kind() {
        let text = r#"{"model":"m","data":"d","images":2,"normal_class":"ok","auroc":1.0,
            "average_precision":1.0,"threshold":{"value":0.5,"rule":"best_f1","f1":1.0},
            "accuracy":1.0,"classes":["normal","anomaly"],"confusion":[[1,0],[0,1]],
            "mean_score":[0.2,0.9],"score_images_per_s":10.0,"skipped":[]}"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, text).unwrap();
        let report = Report::load(&path).unwrap();
        let Report::Anomaly(r) = &report else {
            panic!("read as a classifier's report")
        };
        assert_eq!(r.normal_class, "ok");
        assert!(report.text().contains("AUROC              1.0000"));
    }

    fn report(classes: usize, skipped: Vec<Skipped>) -> Report {
        let names: Vec<String> = (0..classes).map(|c| format!("class {c}")).collect();
        let mut confusion = crate::core::stats::Confusion::new(names.clone());
        for c in 0..classes {
            confusion.add(c, c);
            confusion.add(c, (c + 1) % classes);
        }
        Report::Classes(ClassReport {
            model: PathBuf::from("model.safetensors"),
            data: "a test".into(),
            images: 2 * classes,
            accuracy: confusion.accuracy(),
            loss: 0.5,
            per_class: confusion.per_class(),
            classes: names,
            confusion: confusion.counts,
            skipped,
            sources: Vec::new(),
        })
    }

    #[test]
    fn a_report_of_many_classes_prints_a_capped_summary() {
        let text = Report::text(&report(1000, Vec::new()));
        assert!(text.len() < 10_000, "{} bytes printed", text.len());
        assert!(
            text.contains("1000 classes: the confusion matrix is not printed")
                && text.contains("and 980 more classes")
                && text.contains("accuracy 0.5000 (1000 of 2000)"),
            "{text}"
        );
        // A few classes still get the whole matrix.
        let text = Report::text(&report(3, Vec::new()));
        assert!(
            text.contains("predicted ->") && text.contains("class 2"),
            "{text}"
        );
    }

    #[test]
    fn skipped_files_are_listed_by_kind_and_capped() {
        let mut skipped: Vec<Skipped> = (0..50)
            .map(|i| Skipped {
                path: PathBuf::from(format!("Positive/{i}.jpg")),
                reason: "truncated JPEG".into(),
            })
            .collect();
        skipped.push(Skipped {
            path: PathBuf::from("Negative/twin.jpg"),
            reason: "labelling conflict: labelled 'Negative' here, but ...".into(),
        });
        let text = skipped_text(&skipped);
        assert!(text.contains("50 unreadable files skipped:"), "{text}");
        assert!(text.contains("... and 30 more"), "{text}");
        assert!(
            text.contains("1 files left out on purpose") && text.contains("Negative/twin.jpg"),
            "{text}"
        );
        assert!(text.lines().count() < 30, "{text}");
    }
}
