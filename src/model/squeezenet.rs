//! SqueezeNet v1.1 as candle sees it: variables named like torchvision's, a forward pass that is
//! differentiable end to end, and split points for Grad-CAM.

use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Init, Linear, VarBuilder, VarMap};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::arch::{self, StageKind, CLASSIFIER, FEATURE_CHANNELS, IMAGENET_CLASSES, MIN_INPUT_SIDE, STAGES};
use super::buffers::BufferPool;
use super::reference;
use super::segment::SegmentOp;

/// Layers (MATLAB names) whose output [`SqueezeNet::forward_to`] returns and
/// [`SqueezeNet::forward_from`] continues from.
pub const CAM_LAYERS: &[&str] = &[
    "relu_conv1",
    "pool1",
    "fire2-concat",
    "fire3-concat",
    "pool3",
    "fire4-concat",
    "fire5-concat",
    "pool5",
    "fire6-concat",
    "fire7-concat",
    "fire8-concat",
    "fire9-concat",
    "relu_conv10",
];

/// Variable names of the classification head added after pool10 (MATLAB's `fc_add`).
pub const HEAD_WEIGHT: &str = "head.weight";
pub const HEAD_BIAS: &str = "head.bias";

/// torchvision's `squeezenet1_1` plus an optional `Linear(1000 -> classes)` head.
pub struct SqueezeNet {
    /// The 52 backbone variables in the engine's packing order.
    backbone: Vec<Tensor>,
    head: Option<Linear>,
    classes: usize,
    dropout_rng: Mutex<ChaCha8Rng>,
    buffers: Arc<BufferPool>,
    /// Run CPU inputs on the engine (tests switch this off to get the reference path).
    use_engine: bool,
}

impl SqueezeNet {
    /// Builds the network from `vb` (usually backed by a `VarMap`, so that it can be trained).
    /// `head: Some(k)` adds a `Linear(1000 -> k)` head; `None` keeps the 1000 ImageNet outputs.
    ///
    /// Variables the builder does not hold yet start at zero, so building is deterministic: load
    /// the backbone with [`load_torchvision`](super::load_torchvision) and initialise the head
    /// with [`init_head`] (or use [`SqueezeNet::pretrained`], which does both).
    pub fn new(vb: VarBuilder, head: Option<usize>) -> Result<Self> {
        ensure!(vb.dtype() == DType::F32, "SqueezeNet computes in f32, the variable builder uses {:?}", vb.dtype());
        let zero = Init::Const(0.0);
        let backbone = arch::backbone_params()
            .iter()
            .map(|p| vb.get_with_hints(p.shape.as_slice(), &p.key, zero))
            .collect::<candle_core::Result<Vec<_>>>()
            .context("cannot create the SqueezeNet backbone variables")?;
        let head = match head {
            Some(0) => bail!("a classification head needs at least one class"),
            Some(k) => {
                let weight = vb.get_with_hints((k, IMAGENET_CLASSES), HEAD_WEIGHT, zero)?;
                let bias = vb.get_with_hints(k, HEAD_BIAS, zero)?;
                Some(Linear::new(weight, Some(bias)))
            }
            None => None,
        };
        Ok(Self {
            backbone,
            classes: head.as_ref().map_or(IMAGENET_CLASSES, |h| h.weight().dim(0).unwrap_or(0)),
            head,
            dropout_rng: Mutex::new(ChaCha8Rng::seed_from_u64(0)),
            buffers: BufferPool::new(),
            use_engine: true,
        })
    }

    /// The usual start of fine-tuning: torchvision weights from `weights` (`.pth` or
    /// `.safetensors`) and a fresh `classes`-way head drawn from `seed`, in a new `VarMap`.
    pub fn pretrained(weights: &Path, classes: usize, seed: u64, device: &Device) -> Result<(Self, VarMap)> {
        let varmap = VarMap::new();
        let model = Self::new(VarBuilder::from_varmap(&varmap, DType::F32, device), Some(classes))?;
        super::load_torchvision(&varmap, weights)?;
        init_head(&varmap, seed)?;
        model.set_dropout_seed(seed);
        Ok((model, varmap))
    }

    /// Number of outputs (head classes, or 1000 without a head).
    pub fn num_classes(&self) -> usize {
        self.classes
    }

    /// Whether a classification head follows pool10.
    pub fn has_head(&self) -> bool {
        self.head.is_some()
    }

    /// Restarts the dropout mask sequence (the only randomness in a forward pass).
    pub fn set_dropout_seed(&self, seed: u64) {
        *self.dropout_rng.lock().unwrap_or_else(PoisonError::into_inner) = ChaCha8Rng::seed_from_u64(seed);
    }

    /// Logits `[B, classes]` for normalised images `[B, 3, H, W]` (H, W >= 17). Dropout (drop9,
    /// p = 0.5) is active only when `train`; training mode also keeps the activations for
    /// `backward`, which otherwise recomputes them.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        check_images(x)?;
        let pooled = self.run(arch::ALL, x, train)?;
        self.apply_head(&pooled)
    }

    /// The feature map `[B, C, h, w]` of `layer` (one of [`CAM_LAYERS`]) in evaluation mode.
    pub fn forward_to(&self, x: &Tensor, layer: &str) -> Result<Tensor> {
        check_images(x)?;
        let stage = cam_stage(layer)?;
        self.run(0..stage + 1, x, false)
    }

    /// Logits from a feature map of `layer`, in evaluation mode:
    /// `forward_from(&forward_to(x, l)?, l)` equals `forward_t(x, false)`. Gradients flow back
    /// into `features` (wrap it in a `Var` for Grad-CAM).
    pub fn forward_from(&self, features: &Tensor, layer: &str) -> Result<Tensor> {
        let stage = cam_stage(layer)?;
        let expected = STAGES[stage].out_channels;
        let dims = features.dims();
        ensure!(
            dims.len() == 4 && dims[1] == expected,
            "features of {layer} must be [B, {expected}, h, w], got {dims:?}"
        );
        let pooled = self.run(stage + 1..STAGES.len(), features, false)?;
        self.apply_head(&pooled)
    }

    fn apply_head(&self, pooled: &Tensor) -> Result<Tensor> {
        Ok(match &self.head {
            Some(head) => head.forward(pooled)?,
            None => pooled.clone(),
        })
    }

    /// Runs `stages` on `x`, on the engine or with candle operations.
    fn run(&self, stages: Range<usize>, x: &Tensor, train: bool) -> Result<Tensor> {
        ensure!(x.dtype() == DType::F32, "SqueezeNet computes in f32, got {:?} input", x.dtype());
        let (batch, _, h, w) = x.dims4()?;
        let dropout = match train && stages.contains(&CLASSIFIER) {
            true => {
                let side = |s| arch::side_after(stages.start..CLASSIFIER, s).context("input too small for drop9");
                Some((batch, side(h)?, side(w)?))
            }
            false => None,
        };
        let dropout = dropout.map(|(b, h, w)| (self.draw_keep_mask(b * FEATURE_CHANNELS * h * w), [b, FEATURE_CHANNELS, h, w]));
        let params = &self.backbone[arch::param_range(stages.clone())];
        let out = if x.device().is_cpu() && self.use_engine {
            let packed = if params.is_empty() {
                Tensor::zeros(0, DType::F32, x.device())?
            } else {
                let flat = params.iter().map(|p| p.flatten_all()).collect::<candle_core::Result<Vec<_>>>()?;
                Tensor::cat(&flat, 0)?
            };
            let op = SegmentOp::new(stages.clone(), dropout.map(|(mask, _)| mask), train, self.buffers.clone());
            x.contiguous()?.apply_op2(&packed, op)?
        } else {
            let multiplier = dropout
                .map(|(mask, shape)| {
                    let values: Vec<f32> = mask.iter().map(|&k| f32::from(k) * 2.0).collect();
                    Tensor::from_vec(values, shape.as_slice(), x.device())
                })
                .transpose()?;
            reference::forward(stages.clone(), x, params, multiplier.as_ref())?
        };
        Ok(out)
    }

    /// One keep/drop bit per value from the model's seeded generator.
    fn draw_keep_mask(&self, len: usize) -> Vec<u8> {
        let mut rng = self.dropout_rng.lock().unwrap_or_else(PoisonError::into_inner);
        let mut mask = Vec::with_capacity(len + 63);
        while mask.len() < len {
            let bits = rng.next_u64();
            mask.extend((0..64).map(|i| ((bits >> i) & 1) as u8));
        }
        mask.truncate(len);
        mask
    }

    /// The same variables on the reference path, for tests of the engine.
    #[cfg(test)]
    pub(crate) fn reference_twin(&self) -> Self {
        Self {
            backbone: self.backbone.clone(),
            head: self.head.clone(),
            classes: self.classes,
            dropout_rng: Mutex::new(self.dropout_rng.lock().unwrap().clone()),
            buffers: BufferPool::new(),
            use_engine: false,
        }
    }
}

fn check_images(x: &Tensor) -> Result<()> {
    let dims = x.dims();
    ensure!(
        dims.len() == 4 && dims[1] == 3,
        "SqueezeNet expects images shaped [B, 3, H, W], got {dims:?}"
    );
    ensure!(
        dims[2] >= MIN_INPUT_SIDE && dims[3] >= MIN_INPUT_SIDE,
        "SqueezeNet needs images of at least {MIN_INPUT_SIDE}x{MIN_INPUT_SIDE} pixels, got {}x{}",
        dims[2],
        dims[3]
    );
    Ok(())
}

/// Stage index of a Grad-CAM layer name.
fn cam_stage(layer: &str) -> Result<usize> {
    match arch::stage_index(layer) {
        Some(i) if CAM_LAYERS.contains(&layer) && STAGES[i].kind != StageKind::GlobalAvgPool => Ok(i),
        _ => bail!("unknown layer {layer:?}; feature maps can be taken at: {}", CAM_LAYERS.join(", ")),
    }
}

/// Draws the head (`head.weight`, `head.bias` in `varmap`) afresh from `seed`, as MATLAB's
/// `fullyConnectedLayer` does by default: Glorot-uniform weights, zero bias.
pub fn init_head(varmap: &VarMap, seed: u64) -> Result<()> {
    let vars = varmap.data().lock().unwrap_or_else(PoisonError::into_inner);
    let (Some(weight), Some(bias)) = (vars.get(HEAD_WEIGHT), vars.get(HEAD_BIAS)) else {
        bail!("the model has no classification head to initialise")
    };
    let (classes, inputs) = weight.as_tensor().dims2()?;
    let limit = (6.0 / (classes + inputs) as f64).sqrt() as f32;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<f32> = (0..classes * inputs).map(|_| rng.random_range(-limit..limit)).collect();
    let device = weight.as_tensor().device();
    weight.set(&Tensor::from_vec(values, (classes, inputs), device)?)?;
    bias.set(&Tensor::zeros(classes, DType::F32, device)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use candle_core::Var;

    use super::*;
    use crate::model::testutil::{assert_close, random_model, random_tensor, to_vec};

    /// Gradients of `sum(logits * weights)` for every variable of `varmap` and for `x`.
    fn gradients(model: &SqueezeNet, varmap: &VarMap, x: &Var, train: bool) -> (Vec<f32>, Vec<(String, Vec<f32>)>) {
        let logits = model.forward_t(x.as_tensor(), train).unwrap();
        let weights = random_tensor(logits.dims(), 99);
        let grads = (logits.clone() * weights).unwrap().sum_all().unwrap().backward().unwrap();
        let vars = varmap.data().lock().unwrap();
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        let per_var = names.into_iter().map(|n| (n.clone(), to_vec(grads.get(vars[n].as_tensor()).unwrap()))).collect();
        let mut all = to_vec(&logits);
        all.extend(to_vec(grads.get(x.as_tensor()).unwrap()));
        (all, per_var)
    }

    #[test]
    fn engine_matches_reference_forward_and_gradients() {
        let (model, varmap) = random_model(Some(3), 1);
        let reference = model.reference_twin();
        // Non-square input; conv1 makes 17x18 of it, so the pools see clipped ceil-mode windows.
        // (Odd sides: candle's own conv2d backward drops the output padding stride 2 needs
        // for even sides, so the reference path cannot differentiate those.)
        let x = Var::from_tensor(&random_tensor(&[2, 3, 35, 37], 7)).unwrap();
        for train in [false, true] {
            model.set_dropout_seed(5);
            reference.set_dropout_seed(5);
            let (engine_out, engine_grads) = gradients(&model, &varmap, &x, train);
            let (reference_out, reference_grads) = gradients(&reference, &varmap, &x, train);
            assert_close(&engine_out, &reference_out, 1e-4, &format!("logits and input gradient (train {train})"));
            for ((name, a), (_, b)) in engine_grads.iter().zip(&reference_grads) {
                assert!(b.iter().any(|&v| v != 0.0), "{name}: reference gradient is all zero");
                assert_close(a, b, 1e-4, &format!("gradient of {name} (train {train})"));
            }
        }
    }

    #[test]
    fn dropout_is_seeded_and_only_in_training() {
        let (model, _) = random_model(None, 2);
        let x = random_tensor(&[1, 3, 33, 33], 3);
        let eval1 = to_vec(&model.forward_t(&x, false).unwrap());
        let eval2 = to_vec(&model.forward_t(&x, false).unwrap());
        assert_eq!(eval1, eval2);
        model.set_dropout_seed(11);
        let train1 = to_vec(&model.forward_t(&x, true).unwrap());
        let train2 = to_vec(&model.forward_t(&x, true).unwrap());
        model.set_dropout_seed(11);
        let train1_again = to_vec(&model.forward_t(&x, true).unwrap());
        assert_ne!(train1, eval1, "dropout had no effect in training");
        assert_ne!(train1, train2, "consecutive masks are identical");
        assert_eq!(train1, train1_again, "same seed, different masks");
    }

    #[test]
    fn forward_to_then_forward_from_equals_forward() {
        let (model, _) = random_model(Some(2), 3);
        let x = random_tensor(&[2, 3, 41, 39], 4);
        let full = to_vec(&model.forward_t(&x, false).unwrap());
        for &layer in CAM_LAYERS {
            let features = model.forward_to(&x, layer).unwrap();
            let stage = arch::stage_index(layer).unwrap();
            assert_eq!(features.dim(1).unwrap(), STAGES[stage].out_channels, "{layer}");
            let logits = to_vec(&model.forward_from(&features, layer).unwrap());
            assert_close(&logits, &full, 1e-5, layer);
        }
        // Gradients reach a detached feature map wrapped in a Var (what Grad-CAM does).
        let features = Var::from_tensor(&model.forward_to(&x, "fire9-concat").unwrap().detach()).unwrap();
        let logits = model.forward_from(features.as_tensor(), "fire9-concat").unwrap();
        let grads = logits.narrow(1, 0, 1).unwrap().sum_all().unwrap().backward().unwrap();
        let grad = grads.get(features.as_tensor()).expect("no gradient for the feature map");
        assert_eq!(grad.dims(), features.dims());
        assert!(to_vec(grad).iter().any(|&v| v != 0.0));
    }

    #[test]
    fn bad_layer_names_and_inputs_are_errors() {
        let (model, _) = random_model(None, 4);
        let x = random_tensor(&[1, 3, 32, 32], 5);
        let err = model.forward_to(&x, "fire10-concat").unwrap_err().to_string();
        assert!(err.contains("fire10-concat") && err.contains("relu_conv1") && err.contains("fire9-concat"), "{err}");
        assert!(model.forward_to(&x, "pool10").is_err());
        let small = random_tensor(&[1, 3, 16, 40], 5);
        assert!(model.forward_t(&small, false).unwrap_err().to_string().contains("at least 17x17"));
        let gray = random_tensor(&[1, 1, 32, 32], 5);
        assert!(model.forward_t(&gray, false).unwrap_err().to_string().contains("[B, 3, H, W]"));
        let wrong = random_tensor(&[1, 64, 8, 8], 5);
        assert!(model.forward_from(&wrong, "fire2-concat").unwrap_err().to_string().contains("128"));
    }
}
