//! A saved model, of either kind, on a labelled set: a run's test split (the test pass after
//! training and after a fit, and `crackscope eval RUN`) or a folder-per-class dataset (`eval
//! --data`). Both give a [`Report`]; the test split also `predictions.csv`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};

use crate::data::dataset::discover;
use crate::data::loader::decode_all;
use crate::data::split::Manifest;
use crate::detector::evaluation::Evaluation;
use crate::detector::Detector;
use crate::run::predictions::PredictionsFile;
use crate::run::recipe::DataRoots;
use crate::run::report::Report;
use crate::run::RunDir;

/// A run's test split, judged, not yet saved (`eval` prints before it saves).
pub struct Tested {
    pub report: Report,
    pub evaluation: Evaluation,
    /// The data sources' names and each judged image's source (for `predictions.csv`).
    pub source_names: Vec<String>,
    pub source_of: Vec<usize>,
}

impl Tested {
    /// Writes `report.json` and `predictions.csv`.
    pub fn save(&self, run: &RunDir) -> Result<()> {
        self.report.save(&run.report())?;
        PredictionsFile::of(&self.evaluation)
            .with_sources(&self.source_names, &self.source_of)
            .save(&run.predictions())
    }
}

/// The test split of `run` judged by `detector`; its classes must be the run's (a classifier's
/// in the same order, a one-class model's normal class among them).
pub fn test_split(run: &RunDir, detector: &Detector) -> Result<Tested> {
    let manifest = Manifest::load(&run.manifest())?;
    let description = format!("test split of {}", run.path.display());
    detector.check_classes(&manifest.classes, true, &description)?;
    let set = decode_all(&manifest.labelled(&manifest.test), detector.input_size());
    let evaluation = judge(detector, set, &manifest.classes, &description)?;
    let mut report = Report::of(&evaluation, &detector.path, description);
    let sources = manifest
        .test
        .iter()
        .map(|e| (manifest.absolute(e), manifest.source_of(e)));
    let source_names = manifest.source_names();
    let source_of = sources_of(&evaluation, sources);
    report.set_sources(&evaluation, &source_names, &source_of);
    Ok(Tested {
        report,
        evaluation,
        source_names,
        source_of,
    })
}

/// Every image of a folder-per-class dataset judged by `detector` (a classifier needs each class
/// folder among its classes, a one-class model its normal class among them).
pub fn evaluate_folder(detector: &Detector, data: &DataRoots) -> Result<Report> {
    let names = data.source_names()?;
    let dataset = discover(data)?;
    let description = data.to_string();
    detector.check_classes(&dataset.classes, false, &description)?;
    let labelled: Vec<_> = dataset
        .items
        .iter()
        .map(|item| {
            let label = detector
                .label_of(&dataset.classes[item.label], item.label)
                .expect("checked above");
            (item.path.clone(), label)
        })
        .collect();
    let mut set = decode_all(&labelled, detector.input_size());
    set.skipped.extend(dataset.skipped);
    let classes = detector.judged_classes(&dataset.classes);
    let evaluation = judge(detector, set, &classes, &description)?;
    let mut report = Report::of(&evaluation, &detector.path, description);
    let sources = dataset
        .items
        .iter()
        .map(|item| (item.path.clone(), item.source));
    report.set_sources(&evaluation, &names, &sources_of(&evaluation, sources));
    Ok(report)
}

/// The source of each judged image (in the evaluation's order), from each file's source.
fn sources_of(
    evaluation: &Evaluation,
    sources: impl Iterator<Item = (PathBuf, usize)>,
) -> Vec<usize> {
    let source: HashMap<PathBuf, usize> = sources.collect();
    evaluation
        .paths
        .iter()
        .map(|path| source.get(path).copied().unwrap_or(0))
        .collect()
}

fn judge(
    detector: &Detector,
    set: crate::data::loader::DecodedSet,
    classes: &[String],
    description: &str,
) -> Result<Evaluation> {
    if set.is_empty() {
        bail!("no readable images to evaluate in the {description}");
    }
    detector.evaluate(&Arc::new(set), classes)
}
