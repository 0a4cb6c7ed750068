//! `export`: a model argument (run or file) written in another format.

use std::path::Path;

use anyhow::{bail, Result};
use candle_core::Device;

use crate::detector::Model;
use crate::export::onnx::{self, Exported};
use crate::model::LoadOptions;

/// Writes the classifier that `target` stands for (a run's best model or a checkpoint) as ONNX
/// at `out`. A one-class model is refused with the reason.
pub fn export_onnx(target: &Path, options: &LoadOptions, out: &Path) -> Result<Exported> {
    let (detector, _) = super::open_model(target, &Device::Cpu, options)?;
    match &detector.model {
        Model::Classifier(classifier) => onnx::export(classifier, out),
        Model::OneClass(_) => bail!(
            "{} is a one-class model: ONNX export covers classifiers only (its nearest-neighbour \
             search over the memory bank and the smoothed anomaly map are not exported yet)",
            detector.path.display()
        ),
    }
}
