//! The one-class model file: one safetensors file holding the bank (`oneclass.bank`), the
//! backbone's `features.*` tensors it was computed with (torchvision names), and in its metadata
//! the settings, threshold and class names. Scoring needs nothing else, so a copied model file
//! always scores as it did when it was written.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::PoisonError;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::model::SqueezeNet;

use super::bank::Bank;
use super::features::Extractor;
use super::model::OneClassModel;
use super::threshold::Threshold;
use super::Settings;

/// The metadata value of `format` that marks a one-class model file.
pub const FORMAT: &str = "crackscope-oneclass-patchcore";
const BANK: &str = "oneclass.bank";
/// Metadata key of [`OneClassModel::scan_threshold`].
const SCAN_THRESHOLD: &str = "scan_threshold";
/// Longest header accepted when sniffing a file (the real one is a few KiB).
const MAX_HEADER: u64 = 16 << 20;

/// Whether `path` is a one-class model file (read from its header only; false for anything
/// else, including unreadable files, which the ordinary loaders then report). Only
/// [`crate::detector::Kind::of_file`] asks.
pub(crate) fn is_oneclass_file(path: &Path) -> bool {
    header_format(path).as_deref() == Some(FORMAT)
}

fn header_format(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).ok()?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return None;
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&header).ok()?;
    Some(
        json.get("__metadata__")?
            .get("format")?
            .as_str()?
            .to_string(),
    )
}

/// Writes `model` to `path` atomically.
pub fn save(model: &OneClassModel, path: &Path) -> Result<()> {
    let mut tensors = model.extractor.backbone_tensors();
    let bank = &model.bank;
    tensors.push((
        BANK.to_string(),
        Tensor::from_slice(bank.entries(), (bank.len(), bank.dim()), &Device::Cpu)?,
    ));
    let mut metadata: HashMap<String, String> = [
        ("format", FORMAT.to_string()),
        ("settings", serde_json::to_string(model.settings())?),
        ("threshold", serde_json::to_string(&model.threshold)?),
        ("normal_class", model.normal_class.clone()),
        ("classes", serde_json::to_string(&model.classes)?),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(scan) = &model.scan_threshold {
        metadata.insert(SCAN_THRESHOLD.into(), serde_json::to_string(scan)?);
    }
    let named = tensors.iter().map(|(k, t)| (k.as_str(), t));
    let bytes = crate::core::stable_safetensors::serialize(named, metadata)
        .context("cannot serialise the one-class model")?;
    crate::core::fsutil::write_atomic(path, &bytes)
}

/// Reads a model written by [`save`]; every problem is an error naming the file.
pub fn load(path: &Path) -> Result<OneClassModel> {
    let what = || format!("one-class model {}", path.display());
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", what()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("{} is not a valid safetensors file", what()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        bail!(
            "{} is not a one-class model (no format {FORMAT:?})",
            path.display()
        );
    }
    let field = |key: &str| {
        meta.get(key)
            .with_context(|| format!("{} lacks its {key:?} metadata", what()))
    };
    let settings: Settings = serde_json::from_str(field("settings")?)
        .with_context(|| format!("{}: unreadable settings", what()))?;
    settings
        .validate()
        .with_context(|| format!("{}: bad settings", what()))?;
    let threshold: Threshold = serde_json::from_str(field("threshold")?)
        .with_context(|| format!("{}: unreadable threshold", what()))?;
    // Absent from files written before scans shared one pass: they scan window by window.
    let scan_threshold: Option<Threshold> = meta
        .get(SCAN_THRESHOLD)
        .map(|text| serde_json::from_str(text))
        .transpose()
        .with_context(|| format!("{}: unreadable scan threshold", what()))?;
    let classes: Vec<String> = serde_json::from_str(field("classes")?)
        .with_context(|| format!("{}: unreadable classes", what()))?;
    let normal_class = field("normal_class")?.clone();
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .with_context(|| format!("{}: unreadable tensors", what()))?;
    crate::model::check_finite(path, &tensors)?;
    let bank_tensor = tensors
        .get(BANK)
        .with_context(|| format!("{} holds no bank ({BANK})", what()))?;
    let (rows, dim) = bank_tensor
        .dims2()
        .with_context(|| format!("{}: the bank is not a matrix", what()))?;
    if dim != settings.dim() || rows > settings.max_bank {
        bail!(
            "{}: a bank of {rows} x {dim} does not fit its settings ({} values, at most {} entries)",
            what(),
            settings.dim(),
            settings.max_bank
        );
    }
    let bank = Bank::new(dim, bank_tensor.flatten_all()?.to_vec1::<f32>()?)
        .with_context(|| format!("{}: bad bank", what()))?;

    let varmap = VarMap::new();
    let network = SqueezeNet::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        None,
    )?;
    {
        let vars = varmap.data().lock().unwrap_or_else(PoisonError::into_inner);
        for (key, var) in vars.iter().filter(|(k, _)| k.starts_with("features.")) {
            let stored = tensors
                .get(key)
                .with_context(|| format!("{} lacks the backbone tensor {key}", what()))?;
            var.set(stored)
                .with_context(|| format!("{}: backbone tensor {key}", what()))?;
        }
    }
    Ok(OneClassModel {
        extractor: Extractor::new(network, varmap, settings)?,
        bank,
        threshold,
        scan_threshold,
        normal_class,
        classes,
    })
}
