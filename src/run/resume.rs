//! `RUN/resume.safetensors`: everything `train --resume` continues from (the model's variables,
//! Adam's moments and step count, the iteration, the best validation accuracy) in one file written
//! with one atomic rename. A training killed at any moment therefore leaves either the previous
//! unit or the new one, never a model of one iteration beside optimizer state of another.
//!
//! The model files users share (`model.safetensors`, `last.safetensors`) stay plain checkpoints;
//! this file is for resuming only.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use crate::data::dataset::Skipped;

/// Metadata value marking a resume-state file (loading one as a model says what it is).
const FORMAT: &str = crate::model::RESUME_STATE_FORMAT;
const MODEL_PREFIX: &str = "model/";
const OPTIMIZER_PREFIX: &str = "optimizer/";
/// Metadata key of [`Progress::validation_set`].
const VALIDATION_SET: &str = "validation_set";

/// Where a training stood when the state was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Optimizer steps done.
    pub iteration: usize,
    /// The (1-based) epoch of that iteration.
    pub epoch: usize,
    pub best_val_accuracy: Option<f32>,
    pub classes: Vec<String>,
    /// [`validation_fingerprint`] of the images `best_val_accuracy` was measured on; absent in
    /// states of older versions.
    pub validation_set: Option<String>,
}

/// Names a validation set (its files, in order), so a best accuracy is never compared with one
/// measured on other images.
pub fn validation_fingerprint(paths: &[std::path::PathBuf]) -> String {
    let mut hasher = blake3::Hasher::new();
    for path in paths {
        hasher.update(path.as_os_str().as_encoded_bytes());
        hasher.update(&[0]);
    }
    hasher.finalize().to_hex()[..16].to_string()
}

/// The files of a resumed run's split (`manifest`, less what was left out at its start) that
/// cannot be read any more: those its training and validation sets could not decode (`failed`)
/// and the test files that fail a check now (the test split is read only at the end). A run keeps
/// its split, so any such file refuses the resume, naming them, unless `allow_missing`.
pub fn lost_since_start(
    run: &super::RunDir,
    manifest: &crate::data::split::Manifest,
    mut failed: Vec<Skipped>,
    allow_missing: bool,
) -> Result<Vec<Skipped>> {
    let test: Vec<std::path::PathBuf> =
        manifest.test.iter().map(|e| manifest.absolute(e)).collect();
    failed.extend(crate::data::dataset::unreadable(&test));
    if !failed.is_empty() && !allow_missing {
        return Err(lost_files_error(&run.resume_command(), &failed));
    }
    Ok(failed)
}

/// The refusal of a resume whose split lost files since the run started (the split never
/// changes silently), naming them and the flag that goes on without them.
fn lost_files_error(resume_command: &str, lost: &[Skipped]) -> anyhow::Error {
    const SHOWN: usize = 10;
    let mut listed: Vec<String> = lost
        .iter()
        .take(SHOWN)
        .map(|s| format!("  {}: {}", s.path.display(), s.reason))
        .collect();
    if lost.len() > SHOWN {
        listed.push(format!("  ... and {} more", lost.len() - SHOWN));
    }
    anyhow::anyhow!(
        "{} files of the run's split are missing or unreadable since it started:\n{}\nA run \
         keeps its split, so it does not resume without them. Restore them, or go on without \
         them with `{resume_command} --allow-missing` (they are then listed in skipped.json, \
         and a smaller validation set starts a new best accuracy)",
        lost.len(),
        listed.join("\n")
    )
}

/// A resume state read back from disk.
pub struct ResumeState {
    pub progress: Progress,
    /// The model's variables by name.
    pub model: HashMap<String, Tensor>,
    /// What [`crate::train::optimizer::Adam::state`] returned.
    pub optimizer: HashMap<String, Tensor>,
}

/// Writes the unit to `path` atomically (temporary file + rename).
pub fn write(
    path: &Path,
    progress: &Progress,
    varmap: &VarMap,
    optimizer: &HashMap<String, Tensor>,
) -> Result<()> {
    let vars: Vec<(String, Tensor)> = {
        let data = varmap
            .data()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        data.iter()
            .map(|(k, v)| (format!("{MODEL_PREFIX}{k}"), v.as_tensor().detach()))
            .collect()
    };
    let mut tensors: Vec<(String, Tensor)> = vars;
    tensors.extend(
        optimizer
            .iter()
            .map(|(k, v)| (format!("{OPTIMIZER_PREFIX}{k}"), v.clone())),
    );
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut metadata = HashMap::new();
    metadata.insert("format".to_string(), FORMAT.to_string());
    metadata.insert("iteration".to_string(), progress.iteration.to_string());
    metadata.insert("epoch".to_string(), progress.epoch.to_string());
    metadata.insert(
        "classes".to_string(),
        serde_json::to_string(&progress.classes).expect("class names serialise"),
    );
    if let Some(best) = progress.best_val_accuracy {
        metadata.insert("best_val_accuracy".to_string(), best.to_string());
    }
    if let Some(set) = &progress.validation_set {
        metadata.insert(VALIDATION_SET.to_string(), set.clone());
    }
    let named = tensors.iter().map(|(k, v)| (k.as_str(), v));
    let bytes = crate::core::stable_safetensors::serialize(named, metadata)
        .with_context(|| format!("cannot serialise the resume state {}", path.display()))?;
    crate::core::fsutil::write_atomic(path, &bytes)
}

/// Reads a unit written by [`write`]; errors name the file and what is wrong with it.
pub fn read(path: &Path, device: &Device) -> Result<ResumeState> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let what = || format!("{} is not a crackscope resume state", path.display());
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).with_context(what)?;
    let meta: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        bail!("{}", what());
    }
    let number = |key: &str| -> Result<usize> {
        meta.get(key)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{}: no valid `{key}` in its metadata", path.display()))
    };
    let classes = meta
        .get("classes")
        .and_then(|v| serde_json::from_str(v).ok())
        .with_context(|| format!("{}: no class names in its metadata", path.display()))?;
    let progress = Progress {
        iteration: number("iteration")?,
        epoch: number("epoch")?,
        best_val_accuracy: meta.get("best_val_accuracy").and_then(|v| v.parse().ok()),
        classes,
        validation_set: meta.get(VALIDATION_SET).cloned(),
    };
    let tensors = candle_core::safetensors::load_buffer(&bytes, device).with_context(what)?;
    crate::model::check_finite(path, &tensors)?;
    let mut model = HashMap::new();
    let mut optimizer = HashMap::new();
    for (key, tensor) in tensors {
        if let Some(name) = key.strip_prefix(MODEL_PREFIX) {
            model.insert(name.to_string(), tensor);
        } else if let Some(name) = key.strip_prefix(OPTIMIZER_PREFIX) {
            optimizer.insert(name.to_string(), tensor);
        } else {
            bail!("{}: unexpected tensor `{key}`", path.display());
        }
    }
    Ok(ResumeState {
        progress,
        model,
        optimizer,
    })
}

/// Sets every variable of `varmap` from `model`; a missing, extra or mis-shaped tensor is an error
/// naming it, so a state can never half-apply.
pub fn restore_model(path: &Path, varmap: &VarMap, model: &HashMap<String, Tensor>) -> Result<()> {
    let data = varmap
        .data()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(extra) = model.keys().find(|k| !data.contains_key(*k)) {
        bail!(
            "{}: tensor `{extra}` is not a variable of the model",
            path.display()
        );
    }
    for (name, var) in data.iter() {
        let tensor = model
            .get(name)
            .with_context(|| format!("{}: the model's `{name}` is missing", path.display()))?;
        ensure!(
            tensor.dims() == var.dims(),
            "{}: `{name}` has shape {:?}, the model expects {:?}",
            path.display(),
            tensor.dims(),
            var.dims()
        );
        var.set(&tensor.to_dtype(var.dtype())?.to_device(var.device())?)
            .with_context(|| format!("{}: cannot restore `{name}`", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    fn model() -> VarMap {
        let varmap = VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        vb.get_with_hints(3, "layer.weight", candle_nn::Init::Const(0.25))
            .unwrap();
        varmap
    }

    fn progress(iteration: usize) -> Progress {
        Progress {
            iteration,
            epoch: 2,
            best_val_accuracy: Some(0.75),
            classes: vec!["a".into(), "b".into()],
            validation_set: Some("0123456789abcdef".into()),
        }
    }

    #[test]
    fn the_unit_round_trips_and_a_failed_write_keeps_the_last_good_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resume.safetensors");
        let varmap = model();
        let mut optimizer = HashMap::new();
        optimizer.insert(
            "step".to_string(),
            Tensor::new(&[12u32], &Device::Cpu).unwrap(),
        );
        write(&path, &progress(12), &varmap, &optimizer).unwrap();

        // A write that cannot complete (here: its temporary name is taken by a directory, as good
        // as a full disk) fails naming the file, and leaves the previous unit as it was.
        let blocker = dir
            .path()
            .join(format!(".resume.safetensors.tmp{}", std::process::id()));
        std::fs::create_dir(&blocker).unwrap();
        let err = write(&path, &progress(13), &varmap, &optimizer).expect_err("write fails");
        assert!(format!("{err:#}").contains("resume.safetensors"), "{err:#}");
        std::fs::remove_dir(&blocker).unwrap();

        let state = read(&path, &Device::Cpu).unwrap();
        assert_eq!(state.progress, progress(12));
        assert_eq!(state.optimizer["step"].to_vec1::<u32>().unwrap(), [12]);
        let other = model();
        other.data().lock().unwrap()["layer.weight"]
            .set(&Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        restore_model(&path, &other, &state.model).unwrap();
        assert_eq!(
            other.data().lock().unwrap()["layer.weight"]
                .as_tensor()
                .to_vec1::<f32>()
                .unwrap(),
            [0.25; 3]
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "left behind: {names:?}");
    }

    #[test]
    fn a_file_of_another_kind_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resume.safetensors");
        std::fs::write(&path, b"garbage").unwrap();
        let err = read(&path, &Device::Cpu).err().expect("refused");
        assert!(format!("{err:#}").contains("not a crackscope resume state"));
    }

    #[test]
    fn a_state_with_weights_that_are_not_finite_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resume.safetensors");
        let varmap = model();
        varmap.data().lock().unwrap()["layer.weight"]
            .set(&Tensor::new(&[0.5f32, f32::NAN, 1.0], &Device::Cpu).unwrap())
            .unwrap();
        write(&path, &progress(3), &varmap, &HashMap::new()).unwrap();
        let err = format!("{:#}", read(&path, &Device::Cpu).err().expect("refused"));
        assert!(
            err.contains("resume.safetensors") && err.contains("model/layer.weight (1 NaN"),
            "{err}"
        );
    }
}
