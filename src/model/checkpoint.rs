//! Self-contained checkpoints: one `.safetensors` file with the backbone under torchvision's
//! names, the head, and metadata (class names in output order plus the caller's own pairs), so a
//! trained model can be shared as a single file and read by any safetensors tool.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::PoisonError;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};

use super::arch::{self, ParamSpec, IMAGENET_CLASSES};
use super::squeezenet::{SqueezeNet, HEAD_BIAS, HEAD_WEIGHT};
use super::weights::{assign, check_tensors, imagenet_class_names, read_weights};
use crate::fsutil::write_atomic;

/// Metadata key marking a crackscope checkpoint, and its value.
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "crackscope-squeezenet1_1";
/// Metadata key of the JSON array of class names.
const CLASSES_KEY: &str = "classes";

/// A model read from disk, with what it needs to be used or trained further.
pub struct LoadedModel {
    pub model: SqueezeNet,
    /// The variables behind `model` (for further training or saving).
    pub varmap: VarMap,
    /// Class names in output order.
    pub classes: Vec<String>,
    /// The extra pairs given to [`save_checkpoint`] (empty for bare torchvision weights).
    pub metadata: BTreeMap<String, String>,
}

fn head_specs(classes: usize) -> Vec<ParamSpec> {
    vec![
        ParamSpec { key: HEAD_WEIGHT.into(), shape: vec![classes, IMAGENET_CLASSES] },
        ParamSpec { key: HEAD_BIAS.into(), shape: vec![classes] },
    ]
}

/// Writes the model in `varmap` to `path` atomically (a crash never leaves a partial file).
/// `classes` must match the head's outputs (or be the 1000 ImageNet names for a model without a
/// head); `extra` pairs are stored as metadata and come back from [`load_model`].
pub fn save_checkpoint(path: &Path, varmap: &VarMap, classes: &[String], extra: &BTreeMap<String, String>) -> Result<()> {
    for reserved in [FORMAT_KEY, CLASSES_KEY] {
        ensure!(!extra.contains_key(reserved), "checkpoint metadata key {reserved:?} is reserved");
    }
    let vars = varmap.data().lock().unwrap_or_else(PoisonError::into_inner);
    let outputs = match vars.get(HEAD_WEIGHT) {
        Some(w) => w.as_tensor().dim(0)?,
        None => IMAGENET_CLASSES,
    };
    ensure!(
        classes.len() == outputs,
        "{} class names given for a model with {outputs} outputs",
        classes.len()
    );
    let mut specs = arch::backbone_params();
    if vars.contains_key(HEAD_WEIGHT) {
        specs.extend(head_specs(outputs));
    }
    let mut data = Vec::with_capacity(specs.len());
    for spec in &specs {
        let var = vars.get(&spec.key).with_context(|| format!("the model has no variable {}", spec.key))?;
        let values = var.as_tensor().to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        data.push((spec.key.clone(), var.dims().to_vec(), bytes));
    }
    drop(vars);
    let views = data
        .iter()
        .map(|(key, shape, bytes)| Ok((key.as_str(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut metadata: HashMap<String, String> = extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    metadata.insert(FORMAT_KEY.into(), FORMAT.into());
    metadata.insert(CLASSES_KEY.into(), serde_json::to_string(classes)?);
    let bytes = safetensors::serialize(views, Some(metadata)).context("cannot serialise the checkpoint")?;
    write_atomic(path, &bytes)
}

/// Reads a crackscope checkpoint, or bare torchvision weights (`.pth` / `.safetensors`: no head,
/// the 1000 ImageNet classes named from `imagenet_classes.txt` beside the file when present).
pub fn load_model(path: &Path, device: &Device) -> Result<LoadedModel> {
    let file = read_weights(path)?;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    if file.metadata.get(FORMAT_KEY).map(String::as_str) != Some(FORMAT) {
        let model = SqueezeNet::new(vb, None)?;
        let specs = arch::backbone_params();
        check_tensors(path, &file.tensors, &specs)?;
        assign(&varmap, &file.tensors, &specs)?;
        let classes = imagenet_class_names(path)?;
        return Ok(LoadedModel { model, varmap, classes, metadata: BTreeMap::new() });
    }
    let classes_json = file.metadata.get(CLASSES_KEY).with_context(|| format!("{}: checkpoint without class names", path.display()))?;
    let classes: Vec<String> = serde_json::from_str(classes_json)
        .with_context(|| format!("{}: class names are not a JSON array of strings", path.display()))?;
    let mut specs = arch::backbone_params();
    let head = match file.tensors.get(HEAD_WEIGHT) {
        Some(weight) => {
            let outputs = weight.dim(0)?;
            specs.extend(head_specs(outputs));
            Some(outputs)
        }
        None => None,
    };
    let outputs = head.unwrap_or(IMAGENET_CLASSES);
    if classes.len() != outputs {
        bail!("{}: {} class names for {outputs} outputs", path.display(), classes.len())
    }
    check_tensors(path, &file.tensors, &specs)?;
    let model = SqueezeNet::new(vb, head)?;
    assign(&varmap, &file.tensors, &specs)?;
    let metadata =
        file.metadata.into_iter().filter(|(k, _)| k != FORMAT_KEY && k != CLASSES_KEY).collect::<BTreeMap<_, _>>();
    Ok(LoadedModel { model, varmap, classes, metadata })
}
