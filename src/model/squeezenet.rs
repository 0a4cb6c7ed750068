//! SqueezeNet v1.1 as candle sees it: variables named like torchvision's, a forward pass that is
//! differentiable end to end, and split points for Grad-CAM.

use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Init, Linear, VarBuilder, VarMap};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::arch::{
    self, StageKind, CLASSIFIER, DROPOUT_SCALE, FEATURE_CHANNELS, IMAGENET_CLASSES, MIN_INPUT_SIDE,
    STAGES,
};
use super::buffers::BufferPool;
use super::segment::SegmentOp;
use super::{matmul_path, reference};

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
        ensure!(
            vb.dtype() == DType::F32,
            "SqueezeNet computes in f32, the variable builder uses {:?}",
            vb.dtype()
        );
        let zero = Init::Const(0.0);
        let backbone = arch::backbone_params()
            .iter()
            .map(|p| vb.get_with_hints(p.shape.as_slice(), &p.key, zero))
            .collect::<candle_core::Result<Vec<_>>>()
            .context("cannot create the SqueezeNet backbone variables")?;
        let classes = head.unwrap_or(IMAGENET_CLASSES);
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
            classes,
            head,
            dropout_rng: Mutex::new(ChaCha8Rng::seed_from_u64(0)),
            buffers: BufferPool::new(),
            use_engine: true,
        })
    }

    /// The usual start of fine-tuning: torchvision weights from `weights` (`.pth` or
    /// `.safetensors`) and a fresh `classes`-way head drawn from `seed`, in a new `VarMap`.
    pub fn pretrained(
        weights: &Path,
        classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<(Self, VarMap)> {
        let varmap = VarMap::new();
        let model = Self::new(
            VarBuilder::from_varmap(&varmap, DType::F32, device),
            Some(classes),
        )?;
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
        *self
            .dropout_rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = ChaCha8Rng::seed_from_u64(seed);
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

    /// The feature map of `to` from that of `from` (both [`CAM_LAYERS`], `from` before `to`), in
    /// evaluation mode: two layers' maps for the price of one pass (one-class features).
    pub fn forward_between(&self, features: &Tensor, from: &str, to: &str) -> Result<Tensor> {
        let (start, end) = (cam_stage(from)?, cam_stage(to)?);
        ensure!(start < end, "{to} does not come after {from}");
        let expected = STAGES[start].out_channels;
        let dims = features.dims();
        ensure!(
            dims.len() == 4 && dims[1] == expected,
            "features of {from} must be [B, {expected}, h, w], got {dims:?}"
        );
        self.run(start + 1..end + 1, features, false)
    }

    fn apply_head(&self, pooled: &Tensor) -> Result<Tensor> {
        Ok(match &self.head {
            Some(head) => head.forward(pooled)?,
            None => pooled.clone(),
        })
    }

    /// Runs `stages` on `x`, on the engine or with candle operations.
    fn run(&self, stages: Range<usize>, x: &Tensor, train: bool) -> Result<Tensor> {
        ensure!(
            x.dtype() == DType::F32,
            "SqueezeNet computes in f32, got {:?} input",
            x.dtype()
        );
        let (batch, _, h, w) = x.dims4()?;
        let dropout = if train && stages.contains(&CLASSIFIER) {
            let side = |s| {
                arch::side_after(stages.start..CLASSIFIER, s).context("input too small for drop9")
            };
            let shape = [batch, FEATURE_CHANNELS, side(h)?, side(w)?];
            Some((self.draw_keep_mask(shape.iter().product()), shape))
        } else {
            None
        };
        let params = &self.backbone[arch::param_range(stages.clone())];
        let out = if x.device().is_cpu() && self.use_engine {
            let packed = if params.is_empty() {
                Tensor::zeros(0, DType::F32, x.device())?
            } else {
                let flat = params
                    .iter()
                    .map(|p| p.flatten_all())
                    .collect::<candle_core::Result<Vec<_>>>()?;
                Tensor::cat(&flat, 0)?
            };
            let op = SegmentOp::new(
                stages.clone(),
                dropout.map(|(mask, _)| mask),
                train,
                self.buffers.clone(),
            );
            x.contiguous()?.apply_op2(&packed, op)?
        } else {
            let multiplier = dropout
                .map(|(mask, shape)| {
                    let values = mask.iter().map(|&k| f32::from(k) * DROPOUT_SCALE).collect();
                    Tensor::from_vec(values, shape.as_slice(), x.device())
                })
                .transpose()?;
            if x.device().is_cpu() || !matmul_path_chosen() {
                reference::forward(stages.clone(), x, params, multiplier.as_ref())?
            } else {
                matmul_path::forward(stages.clone(), x, params, multiplier.as_ref())?
            }
        };
        Ok(out)
    }

    /// One keep/drop bit per value from the model's seeded generator.
    fn draw_keep_mask(&self, len: usize) -> Vec<u8> {
        let mut rng = self
            .dropout_rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut mask = Vec::with_capacity(len + 63);
        while mask.len() < len {
            let bits = rng.next_u64();
            mask.extend((0..64).map(|i| ((bits >> i) & 1) as u8));
        }
        mask.truncate(len);
        mask
    }

    /// The backbone tensors of `stages`, in packing order.
    #[cfg(test)]
    pub(crate) fn backbone_params(&self, stages: Range<usize>) -> Vec<Tensor> {
        self.backbone[arch::param_range(stages)].to_vec()
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

/// Off the CPU the network runs as matrix products ([`matmul_path`]) unless
/// `CRACKSCOPE_GPU_PATH=reference` asks for stock candle convolutions, so that the two can be timed
/// against each other on a GPU.
fn matmul_path_chosen() -> bool {
    static CHOSEN: LazyLock<bool> =
        LazyLock::new(|| std::env::var("CRACKSCOPE_GPU_PATH").map_or(true, |v| v != "reference"));
    *CHOSEN
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
        Some(i) if CAM_LAYERS.contains(&layer) && STAGES[i].kind != StageKind::GlobalAvgPool => {
            Ok(i)
        }
        _ => bail!(
            "unknown layer {layer:?}; feature maps can be taken at: {}",
            CAM_LAYERS.join(", ")
        ),
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
    let values: Vec<f32> = (0..classes * inputs)
        .map(|_| rng.random_range(-limit..limit))
        .collect();
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
    fn gradients(
        model: &SqueezeNet,
        varmap: &VarMap,
        x: &Var,
        train: bool,
    ) -> (Vec<f32>, Vec<(String, Vec<f32>)>) {
        let logits = model.forward_t(x.as_tensor(), train).unwrap();
        let weights = random_tensor(logits.dims(), 99);
        let grads = (logits.clone() * weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let vars = varmap.data().lock().unwrap();
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        let per_var = names
            .into_iter()
            .map(|n| (n.clone(), to_vec(grads.get(vars[n].as_tensor()).unwrap())))
            .collect();
        let mut all = to_vec(&logits);
        all.extend(to_vec(grads.get(x.as_tensor()).unwrap()));
        (all, per_var)
    }

    #[test]
    fn engine_matches_reference_forward_and_gradients() {
        let (model, varmap) = random_model(Some(3), 1);
        let reference = model.reference_twin();
        // Non-square input, one side with an unused last column for conv1; conv1 makes 17x18 of
        // it, so the pools see clipped ceil-mode windows. Kept small: the larger the input, the
        // likelier a ReLU input within rounding error of zero, where the two paths may
        // legitimately take different sides of the kink.
        let x = Var::from_tensor(&random_tensor(&[2, 3, 35, 38], 7)).unwrap();
        for train in [false, true] {
            model.set_dropout_seed(5);
            reference.set_dropout_seed(5);
            let (engine_out, engine_grads) = gradients(&model, &varmap, &x, train);
            let (reference_out, reference_grads) = gradients(&reference, &varmap, &x, train);
            assert_close(
                &engine_out,
                &reference_out,
                1e-4,
                &format!("logits and input gradient (train {train})"),
            );
            for ((name, a), (_, b)) in engine_grads.iter().zip(&reference_grads) {
                assert!(
                    b.iter().any(|&v| v != 0.0),
                    "{name}: reference gradient is all zero"
                );
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
            assert_eq!(
                features.dim(1).unwrap(),
                STAGES[stage].out_channels,
                "{layer}"
            );
            let logits = to_vec(&model.forward_from(&features, layer).unwrap());
            assert_close(&logits, &full, 1e-5, layer);
        }
        // Gradients reach a detached feature map wrapped in a Var (what Grad-CAM does).
        let features =
            Var::from_tensor(&model.forward_to(&x, "fire9-concat").unwrap().detach()).unwrap();
        let logits = model
            .forward_from(features.as_tensor(), "fire9-concat")
            .unwrap();
        let grads = logits
            .narrow(1, 0, 1)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let grad = grads
            .get(features.as_tensor())
            .expect("no gradient for the feature map");
        assert_eq!(grad.dims(), features.dims());
        assert!(to_vec(grad).iter().any(|&v| v != 0.0));
    }

    #[test]
    fn grad_cam_gradient_at_relu_conv10_is_the_head_weight_spread_over_the_map() {
        // After relu_conv10 come pool10 and the head, so d logit[k] / d feature[c, y, x] is
        // head.weight[k, c] / (h * w) at every position: an exact check of forward_from's backward.
        let (model, varmap) = random_model(Some(2), 5);
        let x = random_tensor(&[1, 3, 64, 64], 6);
        let features = model.forward_to(&x, "relu_conv10").unwrap();
        let features = Var::from_tensor(&features).unwrap();
        let logits = model
            .forward_from(features.as_tensor(), "relu_conv10")
            .unwrap();
        let score = logits.narrow(1, 1, 1).unwrap().sum_all().unwrap();
        let grad = to_vec(score.backward().unwrap().get(features.as_tensor()).unwrap());
        let head = to_vec(varmap.data().lock().unwrap()[HEAD_WEIGHT].as_tensor());
        let (_, c, h, w) = features.dims4().unwrap();
        for channel in 0..c {
            let expected = head[IMAGENET_CLASSES + channel] / (h * w) as f32;
            for &g in &grad[channel * h * w..(channel + 1) * h * w] {
                assert!(
                    (g - expected).abs() <= 1e-6 * expected.abs().max(1e-3),
                    "channel {channel}: {g} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn pretrained_draws_a_seeded_glorot_head_and_is_shareable_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<SqueezeNet>();
        let Some(data) = crate::model::testutil::data_dir() else {
            return;
        };
        let weights = data.join("pretrained/squeezenet1_1.safetensors");
        let head = |seed| {
            let (model, varmap) = SqueezeNet::pretrained(&weights, 2, seed, &Device::Cpu).unwrap();
            assert_eq!((model.num_classes(), model.has_head()), (2, true));
            let vars = varmap.data().lock().unwrap();
            (
                to_vec(vars[HEAD_WEIGHT].as_tensor()),
                to_vec(vars[HEAD_BIAS].as_tensor()),
            )
        };
        let (weight, bias) = head(7);
        let limit = (6.0f32 / 1002.0).sqrt();
        assert!(weight.iter().all(|v| v.abs() <= limit) && weight.iter().any(|&v| v != 0.0));
        assert_eq!(bias, vec![0.0, 0.0]);
        assert_eq!(head(7).0, weight, "same seed, different head");
        assert_ne!(head(8).0, weight, "different seeds, same head");
    }

    #[test]
    fn bad_layer_names_and_inputs_are_errors() {
        let (model, _) = random_model(None, 4);
        let x = random_tensor(&[1, 3, 32, 32], 5);
        let err = model
            .forward_to(&x, "fire10-concat")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fire10-concat")
                && err.contains("relu_conv1")
                && err.contains("fire9-concat"),
            "{err}"
        );
        assert!(model.forward_to(&x, "pool10").is_err());
        let small = random_tensor(&[1, 3, 16, 40], 5);
        assert!(model
            .forward_t(&small, false)
            .unwrap_err()
            .to_string()
            .contains("at least 17x17"));
        let gray = random_tensor(&[1, 1, 32, 32], 5);
        assert!(model
            .forward_t(&gray, false)
            .unwrap_err()
            .to_string()
            .contains("[B, 3, H, W]"));
        let wrong = random_tensor(&[1, 64, 8, 8], 5);
        assert!(model
            .forward_from(&wrong, "fire2-concat")
            .unwrap_err()
            .to_string()
            .contains("128"));
    }

    /// Mean and unbiased standard deviation (what `torch.Tensor.std` computes), in f64.
    fn mean_std(values: &[f32]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        (mean, var.sqrt())
    }

    fn assert_rel(actual: f64, expected: f64, tol: f64, what: &str) {
        assert!(
            (actual - expected).abs() <= tol * expected.abs().max(1e-3),
            "{what}: {actual:.6e}, PyTorch {expected:.6e}"
        );
    }

    /// `synthetic_bricks` of scripts/torch_reference.py, bit for bit: a brick wall with mortar
    /// lines, per-brick shades, pixel noise and (image 0) a dark diagonal crack, as HWC bytes.
    fn synthetic_bricks(index: u64, height: usize, width: usize) -> Vec<u8> {
        let mut out = vec![0u8; height * width * 3];
        for y in 0..height as i64 {
            for x in 0..width as i64 {
                let row = y / 24;
                let shifted = x + (row % 2) * 24;
                let brick = (row * 131 + (shifted / 48) * 71) % 61;
                let mortar = y % 24 < 3 || shifted % 48 < 3;
                let crack = index == 0 && (3 * y - 2 * x - 60).abs() < 7;
                for c in 0..3i64 {
                    let h = ((x as u64 * 73856093)
                        ^ (y as u64 * 19349663)
                        ^ (c as u64 * 83492791)
                        ^ (index * 2654435761)) as u32;
                    let noise = i64::from(h.wrapping_mul(2246822519) >> 8) % 41 - 20;
                    let base = if mortar {
                        200 - 10 * c
                    } else {
                        120 + if c == 0 { 40 } else { 0 } + brick
                    };
                    let value = if crack {
                        (base + noise) / 4
                    } else {
                        base + noise
                    };
                    out[((y as usize) * width + x as usize) * 3 + c as usize] =
                        value.clamp(0, 255) as u8;
                }
            }
        }
        out
    }

    /// The pixel checksums scripts/torch_reference.py prints.
    fn checksums(hwc: &[u8]) -> (u64, u64) {
        let sum = hwc.iter().map(|&v| u64::from(v)).sum();
        let weighted = hwc
            .iter()
            .enumerate()
            .map(|(i, &v)| u64::from(v) * (i as u64 % 7 + 1))
            .sum();
        (sum, weighted)
    }

    fn normalise(hwc: &[u8], h: usize, w: usize) -> Tensor {
        const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
        const STD: [f32; 3] = [0.229, 0.224, 0.225];
        let mut chw = vec![0f32; 3 * h * w];
        for (i, px) in hwc.chunks(3).enumerate() {
            for c in 0..3 {
                chw[c * h * w + i] = (f32::from(px[c]) / 255.0 - MEAN[c]) / STD[c];
            }
        }
        Tensor::from_vec(chw, (3, h, w), &Device::Cpu).unwrap()
    }

    fn pretrained(data: &std::path::Path) -> (SqueezeNet, VarMap) {
        let varmap = VarMap::new();
        let model = SqueezeNet::new(
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
            None,
        )
        .unwrap();
        crate::model::load_torchvision(&varmap, &data.join("pretrained/squeezenet1_1.pth"))
            .unwrap();
        (model, varmap)
    }

    /// Expected values printed by `scripts/torch_reference.py` (PyTorch 2.15.0, torchvision
    /// 0.29.2, CPU, shared weights) for a batch of two 227x227 `synthetic_bricks` images. The
    /// tolerance is 1e-3 relative; this machine agrees to better than 1e-5.
    #[test]
    fn matches_pytorch_on_a_227_pixel_batch() {
        let Some(data) = crate::model::testutil::data_dir() else {
            return;
        };
        let (model, varmap) = pretrained(&data);
        let pixel_sums = [(25_591_290, 102_365_623), (25_975_060, 103_901_670)];
        let mut images = Vec::new();
        for (index, expected) in pixel_sums.into_iter().enumerate() {
            let pixels = synthetic_bricks(index as u64, 227, 227);
            assert_eq!(
                checksums(&pixels),
                expected,
                "synthetic image {index} differs from the script's"
            );
            images.push(normalise(&pixels, 227, 227));
        }
        let x = Tensor::stack(&images, 0).unwrap();

        let logits = model.forward_t(&x, false).unwrap();
        // PyTorch's top 6 per image; the top-5 sets are separated from the 6th by >= 0.05.
        let top6: [(&[usize], &[f64]); 2] = [
            (
                &[840, 489, 872, 892, 784, 904],
                &[10.225715, 10.224243, 9.245494, 9.13713, 9.065203, 8.772742],
            ),
            (
                &[794, 904, 539, 446, 591, 533],
                &[9.017186, 8.778382, 7.877444, 7.773878, 7.590344, 7.539655],
            ),
        ];
        for (b, (indices, values)) in top6.iter().enumerate() {
            let row = to_vec(&logits.get(b).unwrap());
            let mut order: Vec<usize> = (0..row.len()).collect();
            order.sort_by(|&i, &j| row[j].total_cmp(&row[i]));
            let mut top5 = order[..5].to_vec();
            top5.sort_unstable();
            let mut expected = indices[..5].to_vec();
            expected.sort_unstable();
            assert_eq!(
                top5, expected,
                "image {b}: top-5 classes differ from PyTorch"
            );
            for (&i, &v) in indices.iter().zip(*values) {
                assert_rel(f64::from(row[i]), v, 1e-3, &format!("image {b} logit {i}"));
            }
        }

        let feature_stats = [
            ("relu_conv1", 3.152017616e-01, 5.506864283e-01),
            ("pool1", 6.809865092e-01, 7.202929845e-01),
            ("fire2-concat", 7.297044527e-01, 1.218691305e+00),
            ("fire5-concat", 6.429931636e+00, 1.147727891e+01),
            ("fire9-concat", 7.543016389e-01, 4.603503051e+00),
            ("relu_conv10", 2.755959272e+00, 3.729649317e+00),
        ];
        for (layer, mean, std) in feature_stats {
            let (m, s) = mean_std(&to_vec(&model.forward_to(&x, layer).unwrap()));
            assert_rel(m, mean, 1e-3, &format!("{layer} mean"));
            assert_rel(s, std, 1e-3, &format!("{layer} std"));
        }

        // Gradients of sum_b logit[b, top1[b]] (PyTorch's top1 = 840, 794) in evaluation mode.
        let objective =
            logits.get(0).unwrap().get(840).unwrap() + logits.get(1).unwrap().get(794).unwrap();
        let objective = objective.unwrap();
        assert_rel(
            f64::from(objective.to_scalar::<f32>().unwrap()),
            1.924290085e+01,
            1e-3,
            "objective",
        );
        let grads = objective.backward().unwrap();
        let expected_grads = [
            ("features.0.weight", 2.849713059e+01, 1.312641621e+00),
            ("features.0.bias", 5.344807552e+00, 1.062451243e+00),
            (
                "features.3.squeeze.weight",
                2.382342404e+01,
                -1.655042887e+00,
            ),
            (
                "features.3.expand3x3.weight",
                5.787386436e+01,
                1.725497539e-03,
            ),
            (
                "features.7.expand1x1.bias",
                2.436152338e-01,
                -2.217944711e-02,
            ),
            (
                "features.12.expand3x3.weight",
                4.413682673e+01,
                1.444150880e-02,
            ),
            ("classifier.1.weight", 7.727908702e+01, 0.0),
            ("classifier.1.bias", 1.414212972e+00, 0.0),
        ];
        let vars = varmap.data().lock().unwrap();
        for (name, norm, first) in expected_grads {
            let g = to_vec(grads.get(vars[name].as_tensor()).unwrap());
            let n = g.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
            assert_rel(n, norm, 1e-3, &format!("gradient norm of {name}"));
            assert!(
                (f64::from(g[0]) - first).abs() <= 1e-3 * norm,
                "{name}[0]: {} vs {first}",
                g[0]
            );
        }

        // The gradient reaching fire9's output, as Grad-CAM takes it.
        let features = Var::from_tensor(&model.forward_to(&x, "fire9-concat").unwrap()).unwrap();
        let logits = model
            .forward_from(features.as_tensor(), "fire9-concat")
            .unwrap();
        let objective = (logits.get(0).unwrap().get(840).unwrap()
            + logits.get(1).unwrap().get(794).unwrap())
        .unwrap();
        let grad = to_vec(
            objective
                .backward()
                .unwrap()
                .get(features.as_tensor())
                .unwrap(),
        );
        let (mean, std) = mean_std(&grad);
        assert_rel(mean, 3.821773172e-05, 1e-3, "fire9-concat gradient mean");
        assert_rel(std, 1.870753558e-04, 1e-3, "fire9-concat gradient std");
        let sum_abs: f64 = grad.iter().map(|&v| f64::from(v.abs())).sum();
        assert_rel(
            sum_abs,
            3.004713258e+01,
            1e-3,
            "fire9-concat gradient sum |g|",
        );
    }

    /// The kitten check of the shared data's README: torchvision preprocessing (shorter side 256,
    /// centre crop 224) and the pretrained weights must see a kit fox (278) or a tiger cat (282);
    /// PyTorch's top-5 is 278, 282, 287, 281, 151.
    #[test]
    fn pretrained_weights_see_a_cat_or_fox_in_the_kitten() {
        let Some(data) = crate::model::testutil::data_dir() else {
            return;
        };
        let (model, _) = pretrained(&data);
        let photo = image::open(data.join("pretrained/kitten.jpg"))
            .unwrap()
            .to_rgb8();
        let (w, h) = photo.dimensions();
        let scale = 256.0 / w.min(h) as f64;
        let (rw, rh) = (
            (w as f64 * scale).round() as u32,
            (h as f64 * scale).round() as u32,
        );
        let resized =
            image::imageops::resize(&photo, rw, rh, image::imageops::FilterType::Triangle);
        let crop = image::imageops::crop_imm(&resized, (rw - 224) / 2, (rh - 224) / 2, 224, 224)
            .to_image();
        let x = normalise(crop.as_raw(), 224, 224).unsqueeze(0).unwrap();
        let probs = candle_nn::ops::softmax(&model.forward_t(&x, false).unwrap(), 1).unwrap();
        let probs = to_vec(&probs);
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&i, &j| probs[j].total_cmp(&probs[i]));
        eprintln!(
            "kitten top-5: {:?}",
            order[..5]
                .iter()
                .map(|&i| (i, probs[i]))
                .collect::<Vec<_>>()
        );
        assert!(
            [278, 282].contains(&order[0]),
            "top-1 is class {}",
            order[0]
        );
        // Resampling differs a little from PIL's, so allow some slack on the probabilities.
        let pytorch = [
            (278, 0.362),
            (282, 0.268),
            (287, 0.103),
            (281, 0.076),
            (151, 0.066),
        ];
        for (class, p) in pytorch {
            assert!(
                order[..5].contains(&class),
                "class {class} not in the top 5 {:?}",
                &order[..5]
            );
            assert!(
                (probs[class] - p).abs() < 0.015,
                "class {class}: p = {} vs PyTorch {p}",
                probs[class]
            );
        }
    }
}
