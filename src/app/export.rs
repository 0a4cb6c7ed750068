//! `export`: a model argument (run or file) written in another format.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Device;

use crate::detector::Model;
use crate::export::onnx::{self, Exported};
use crate::model::LoadOptions;

/// Writes the model that `target` stands for (a run's best model, a checkpoint or a one-class
/// model file) as ONNX at `out`.
pub fn export_onnx(target: &Path, options: &LoadOptions, out: &Path) -> Result<Exported> {
    let (detector, _) = super::open_model(target, &Device::Cpu, options)?;
    match &detector.model {
        Model::Classifier(classifier) => onnx::export(classifier, out),
        Model::OneClass(model) => onnx::oneclass::export(model, out)
            .with_context(|| format!("cannot export {}", detector.path.display())),
    }
}
