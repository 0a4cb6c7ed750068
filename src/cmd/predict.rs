//! `crackscope predict`: classify image files with a checkpoint or bare ImageNet weights.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{Tensor, D};
use serde::Serialize;

use crate::cli::PredictArgs;
use crate::data::augment::write_chw_normalized;
use crate::data::decode::{load_rgb, resize_exact};
use crate::model::{self, LoadedModel};
use crate::run::RunDir;

/// One image's answer, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct PredictionOut {
    pub path: PathBuf,
    pub label: String,
    pub index: usize,
    pub score: f32,
    /// Every class's probability, in the model's class order.
    pub probabilities: Vec<f32>,
}

pub fn predict(args: &PredictArgs) -> Result<()> {
    let (device, _) = crate::device::resolve(args.device)?;
    let model_path = model_file(&args.model)?;
    if crate::oneclass::model_file::is_oneclass_file(&model_path) {
        return crate::cmd::oneclass::predict(args, &model_path);
    }
    let loaded = model::load_model(&model_path, &device)?;
    let mut results = Vec::with_capacity(args.images.len());
    for chunk in args.images.chunks(32) {
        results.extend(classify_files(&loaded, chunk, &device)?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    for r in &results {
        let mut ranked: Vec<usize> = (0..r.probabilities.len()).collect();
        ranked.sort_by(|&a, &b| r.probabilities[b].total_cmp(&r.probabilities[a]));
        let top: Vec<String> = ranked
            .iter()
            .take(args.top.max(1))
            .map(|&i| format!("{} {:.3}", loaded.classes[i], r.probabilities[i]))
            .collect();
        println!("{}: {}", r.path.display(), top.join(", "));
    }
    Ok(())
}

/// The input size a checkpoint was trained at (its `input_size` metadata), else the seed's 227.
pub fn input_size(loaded: &LoadedModel) -> u32 {
    loaded
        .metadata
        .get("input_size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(227)
}

/// A run directory stands for its best model.
pub fn model_file(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        Ok(RunDir::open(path)?.best_model())
    } else {
        Ok(path.to_path_buf())
    }
}

/// Reads, resizes and classifies image files; an unreadable one is an error naming it.
pub fn classify_files(
    loaded: &LoadedModel,
    paths: &[PathBuf],
    device: &candle_core::Device,
) -> Result<Vec<PredictionOut>> {
    let side = input_size(loaded);
    let size = side as usize;
    let plane = 3 * size * size;
    let mut data = vec![0f32; paths.len() * plane];
    for (path, out) in paths.iter().zip(data.chunks_mut(plane)) {
        let image = load_rgb(path)?;
        write_chw_normalized(&resize_exact(&image, side), out);
    }
    let x = Tensor::from_vec(data, (paths.len(), 3, size, size), device)?;
    let logits = loaded.model.forward_t(&x, false)?;
    let probabilities = candle_nn::ops::softmax(&logits, D::Minus1)?
        .to_vec2::<f32>()
        .context("cannot read the network's output")?;
    Ok(paths
        .iter()
        .zip(probabilities)
        .map(|(path, probabilities)| {
            let index = crate::train::evaluate::argmax(&probabilities);
            PredictionOut {
                path: path.clone(),
                label: loaded.classes[index].clone(),
                index,
                score: probabilities[index],
                probabilities,
            }
        })
        .collect())
}
