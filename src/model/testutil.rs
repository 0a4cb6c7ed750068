//! Helpers shared by the model's tests.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{init_backbone, init_head, save_checkpoint, CheckpointMeta, SqueezeNet};

/// The shared test data folder, or None (after saying why) when its pretrained weights are absent.
pub fn data_dir() -> Option<PathBuf> {
    crate::core::testdata::shared_data("pretrained/squeezenet1_1.pth")?;
    Some(crate::core::testdata::root())
}

/// Deterministic values in [-scale, scale).
pub fn uniform(len: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-scale..scale)).collect()
}

pub fn random_tensor(shape: &[usize], seed: u64) -> Tensor {
    let len = shape.iter().product();
    Tensor::from_vec(uniform(len, 1.0, seed), shape, &Device::Cpu).unwrap()
}

/// A model with random weights scaled so that activations neither vanish nor explode, and
/// biases slightly positive so that most ReLUs are active.
pub fn random_model(head: Option<usize>, seed: u64) -> (SqueezeNet, VarMap) {
    let varmap = VarMap::new();
    let model = SqueezeNet::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        head,
    )
    .unwrap();
    let vars = varmap.data().lock().unwrap();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for (i, name) in names.into_iter().enumerate() {
        let var = &vars[name];
        let dims = var.dims().to_vec();
        let len: usize = dims.iter().product();
        let values = if dims.len() == 1 {
            uniform(len, 0.05, seed + i as u64)
                .into_iter()
                .map(|v| v + 0.05)
                .collect()
        } else {
            let fan_in: usize = dims[1..].iter().product();
            uniform(len, (3.0 / fan_in as f32).sqrt() * 1.4, seed + i as u64)
        };
        var.set(&Tensor::from_vec(values, dims.as_slice(), &Device::Cpu).unwrap())
            .unwrap();
    }
    drop(vars);
    (model, varmap)
}

pub fn to_vec(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Asserts |a - b| <= tol * max(1, |b|) elementwise (`b` is the reference).
pub fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}[{i}]: {x} vs {y} (tolerance {tol} x max |ref| {scale})"
        );
    }
}

/// Writes f32 `tensors` (name, shape, values) as a safetensors file with optional metadata, as a
/// PyTorch user's `safetensors.torch.save_file` would.
pub fn write_f32_safetensors(
    path: &std::path::Path,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    metadata: Option<std::collections::HashMap<String, String>>,
) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors.iter().zip(&bytes).map(|((k, shape, _), b)| {
        (
            k.as_str(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                .unwrap(),
        )
    });
    std::fs::write(path, safetensors::serialize(views, metadata).unwrap()).unwrap();
}

/// Trains conv10 and the head (`varmap`'s classifier and head tensors) of `model` for `steps`
/// full-batch AdamW steps on features of `split` computed once by the frozen backbone: a
/// fine-tuned network in seconds on two cores, for tests that need one that has learned.
pub fn fine_tune_top(
    model: &SqueezeNet,
    varmap: &VarMap,
    features: &Tensor,
    split: &str,
    labels: &Tensor,
    steps: usize,
) {
    let trained = {
        let vars = varmap.data().lock().unwrap();
        [
            "classifier.1.weight",
            "classifier.1.bias",
            "head.weight",
            "head.bias",
        ]
        .iter()
        .map(|k| vars[*k].clone())
        .collect()
    };
    let params = ParamsAdamW {
        lr: 2e-3,
        weight_decay: 0.0,
        ..Default::default()
    };
    let mut adam = AdamW::new(trained, params).unwrap();
    for _ in 0..steps {
        let logits = model.forward_from(features, split).unwrap();
        adam.backward_step(&candle_nn::loss::cross_entropy(&logits, labels).unwrap())
            .unwrap();
    }
}

/// Writes a checkpoint of an untrained network (initialised as training starts one, `seed` 1)
/// with a head for `classes`, recording `input_size`: what a run directory holds, for tests of
/// what reads one.
pub fn write_untrained_checkpoint(path: &Path, classes: &[&str], input_size: u32) {
    let varmap = VarMap::new();
    SqueezeNet::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        Some(classes.len()),
    )
    .unwrap();
    init_backbone(&varmap, 1).unwrap();
    init_head(&varmap, 2).unwrap();
    let meta = CheckpointMeta {
        input_size: Some(input_size),
        ..CheckpointMeta::default()
    };
    let classes: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
    save_checkpoint(path, &varmap, &classes, &meta).unwrap();
}
