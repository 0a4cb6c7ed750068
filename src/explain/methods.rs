//! The explanation methods: from one layer's feature maps A (`[B, C, h, w]`) and the rest of the
//! network (`forward_from`, feature map -> logits) to one low-resolution map per image.
//!
//! Gradients come from candle's autograd: the feature map is detached and wrapped in a `Var`, the
//! rest of the network runs on it, and one backward pass of a weighted sum of the logits gives
//! every image's gradient at once (the images of a batch do not interact in evaluation mode).

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{Tensor, Var};

use super::heatmap::Heatmap;
use crate::core::math::{argmax, softmax};
use crate::model::SqueezeNet;

/// How a class's evidence is turned into a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// The seed's MATLAB formula: d(softmax score)/dA summed over space, times A, summed over
    /// channels, no ReLU. Computed without the softmax's saturation (see [`seed_logit_weights`]).
    /// The default everywhere (flags, recipe, dashboard), as in the seed demo.
    #[default]
    Seed,
    /// Selvaraju et al. 2017: d(logit)/dA averaged over space, times A, summed, ReLU.
    GradCam,
    /// Chattopadhyay et al. 2018: Grad-CAM with per-position weights from the closed form for an
    /// exponential score, which credits several separate regions of one class.
    GradCamPlusPlus,
    /// Desai & Ramaswamy 2020 (gradient-free): each channel is weighted by how much the class's
    /// logit drops when that channel is zeroed; one extra forward pass per channel.
    Ablation,
}

impl Method {
    pub const ALL: [Method; 4] = [
        Method::Seed,
        Method::GradCam,
        Method::GradCamPlusPlus,
        Method::Ablation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Seed => "seed",
            Method::GradCam => "gradcam",
            Method::GradCamPlusPlus => "gradcam++",
            Method::Ablation => "ablation",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.to_ascii_lowercase().replace(['-', '_'], "");
        Method::ALL
            .into_iter()
            .find(|m| {
                m.name().replace('-', "") == wanted
                    || (wanted == "gradcampp" && *m == Method::GradCamPlusPlus)
            })
            .ok_or_else(|| {
                let names: Vec<_> = Method::ALL.iter().map(|m| m.name()).collect();
                format!("unknown method '{s}' (choose one of: {})", names.join(", "))
            })
    }
}

/// Which class each image's map explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The class the network predicts for that image.
    Predicted,
    /// The same class (an output index) for every image.
    Class(usize),
}

/// One image's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The class the map explains.
    pub class: usize,
    /// The class the network predicts.
    pub predicted: usize,
    /// Softmax of the logits.
    pub probabilities: Vec<f32>,
    /// The map at the layer's resolution, rescaled to [0, 1].
    pub cam: Heatmap,
}

/// Explains a batch of normalised images `[B, 3, H, W]` at `layer` (one of
/// [`crate::model::CAM_LAYERS`]) in one pass through the network.
pub fn explain(
    model: &SqueezeNet,
    images: &Tensor,
    layer: &str,
    method: Method,
    target: Target,
) -> Result<Vec<Explanation>> {
    let features = model.forward_to(images, layer)?;
    explain_features(&features, |f| model.forward_from(f, layer), method, target)
}

/// Explains every image of a batch. `features` is the layer's output `[B, C, h, w]` and
/// `forward_from` runs the rest of the network on such a tensor (gradients must flow through it).
pub fn explain_features<F>(
    features: &Tensor,
    forward_from: F,
    method: Method,
    target: Target,
) -> Result<Vec<Explanation>>
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    let (batch, channels, height, width) = features
        .dims4()
        .context("feature maps must be [B, C, h, w]")?;
    let features = features.detach();
    let maps = features.flatten_all()?.to_vec1::<f32>()?;
    let (logits, classes, gradients) = match method {
        Method::Ablation => {
            let logits = read_logits(&forward_from(&features)?, batch)?;
            let classes = targets(&logits, target)?;
            (logits, classes, None)
        }
        _ => {
            let var = Var::from_tensor(&features)?;
            let logits_tensor = forward_from(var.as_tensor())?;
            let logits = read_logits(&logits_tensor, batch)?;
            let classes = targets(&logits, target)?;
            let weights: Vec<f32> = logits
                .iter()
                .zip(&classes)
                .flat_map(|(row, &c)| match method {
                    Method::Seed => seed_logit_weights(row, c),
                    _ => one_hot(row.len(), c),
                })
                .collect();
            let gradients = weighted_logit_gradient(&var, &logits_tensor, weights)?;
            (logits, classes, Some(gradients))
        }
    };
    let plane = channels * height * width;
    let mut out = Vec::with_capacity(batch);
    for (b, row) in logits.iter().enumerate() {
        let a = &maps[b * plane..(b + 1) * plane];
        let channel_weights = match (&gradients, method) {
            (Some(g), Method::Seed) => seed_weights(&g[b * plane..(b + 1) * plane], channels),
            (Some(g), Method::GradCam) => gradcam_weights(&g[b * plane..(b + 1) * plane], channels),
            (Some(g), Method::GradCamPlusPlus) => {
                gradcam_pp_weights(a, &g[b * plane..(b + 1) * plane], channels)
            }
            (None, Method::Ablation) => {
                ablation_weights(&features, &forward_from, b, classes[b], row[classes[b]])?
            }
            _ => bail!("internal: {method} computed without its gradients"),
        };
        let relu = method != Method::Seed;
        let cam = weighted_channel_sum(a, &channel_weights, height * width, relu);
        out.push(Explanation {
            class: classes[b],
            predicted: argmax(row),
            probabilities: softmax(row),
            cam: Heatmap::new(height, width, cam)?.rescaled(),
        });
    }
    Ok(out)
}

/// d(sum over images and classes of weight x logit)/d(features), flattened; one backward pass.
fn weighted_logit_gradient(var: &Var, logits: &Tensor, weights: Vec<f32>) -> Result<Vec<f32>> {
    let weights = Tensor::from_vec(weights, logits.shape(), logits.device())?;
    let objective = logits.mul(&weights)?.sum_all()?;
    let grads = objective.backward()?;
    let gradient = grads
        .get(var.as_tensor())
        .context("the logits do not depend on the feature map: no gradient reached it")?;
    Ok(gradient.flatten_all()?.to_vec1::<f32>()?)
}

fn read_logits(logits: &Tensor, batch: usize) -> Result<Vec<Vec<f32>>> {
    let rows = logits
        .to_vec2::<f32>()
        .context("the network's output is not a [B, classes] matrix")?;
    ensure!(
        rows.len() == batch,
        "{} logit rows for {batch} images",
        rows.len()
    );
    ensure!(
        rows.iter().all(|r| !r.is_empty()),
        "the network has no outputs"
    );
    Ok(rows)
}

fn targets(logits: &[Vec<f32>], target: Target) -> Result<Vec<usize>> {
    logits
        .iter()
        .map(|row| match target {
            Target::Predicted => Ok(argmax(row)),
            Target::Class(c) if c < row.len() => Ok(c),
            Target::Class(c) => bail!(
                "class index {c} is out of range: the network has {} outputs",
                row.len()
            ),
        })
        .collect()
}

fn one_hot(len: usize, class: usize) -> Vec<f32> {
    (0..len)
        .map(|j| if j == class { 1.0 } else { 0.0 })
        .collect()
}

/// Logit weights whose gradient has the direction of d(softmax_c)/dA without its saturation.
///
/// d p_c/dA = p_c (1 - p_c) (dz_c/dA - sum_{j != c} q_j dz_j/dA), with q the softmax of the
/// logits other than c. The positive factor p_c (1 - p_c) underflows in f32 once the logit gap
/// passes about 17 (and only rescales the map anyway), so it is left out: weights e_c - q, where q
/// is computed from the other logits alone and is therefore exact for any gap. With a single
/// output the softmax is constant: all weights zero, a constant map.
pub fn seed_logit_weights(logits: &[f32], class: usize) -> Vec<f32> {
    if logits.len() < 2 {
        return vec![0.0; logits.len()];
    }
    let others_max = logits
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != class)
        .map(|(_, &z)| z as f64)
        .fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits
        .iter()
        .enumerate()
        .map(|(j, &z)| {
            if j == class {
                0.0
            } else {
                (z as f64 - others_max).exp()
            }
        })
        .collect();
    let total: f64 = exp.iter().sum();
    exp.iter()
        .enumerate()
        .map(|(j, e)| if j == class { 1.0 } else { (-e / total) as f32 })
        .collect()
}

/// The seed's channel weights: the gradient summed over space.
fn seed_weights(gradient: &[f32], channels: usize) -> Vec<f64> {
    let plane = gradient.len() / channels;
    gradient
        .chunks(plane)
        .map(|g| g.iter().map(|&v| v as f64).sum())
        .collect()
}

/// Grad-CAM's channel weights: the gradient averaged over space.
fn gradcam_weights(gradient: &[f32], channels: usize) -> Vec<f64> {
    let plane = gradient.len() / channels;
    gradient
        .chunks(plane)
        .map(|g| g.iter().map(|&v| v as f64).sum::<f64>() / plane as f64)
        .collect()
}

/// Grad-CAM++'s channel weights for the score exp(logit), whose higher derivatives are powers of
/// the first: alpha = g^2 / (2 g^2 + sum(A) g^3) per position, weight = sum alpha ReLU(g).
/// (The common factor exp(logit) is left out: it does not survive the rescale.)
fn gradcam_pp_weights(features: &[f32], gradient: &[f32], channels: usize) -> Vec<f64> {
    let plane = gradient.len() / channels;
    features
        .chunks(plane)
        .zip(gradient.chunks(plane))
        .map(|(a, g)| {
            let total: f64 = a.iter().map(|&v| v as f64).sum();
            g.iter()
                .map(|&g| {
                    let g = g as f64;
                    let denominator = 2.0 * g * g + total * g * g * g;
                    if g > 0.0 && denominator != 0.0 {
                        g * g / denominator * g
                    } else {
                        0.0
                    }
                })
                .sum()
        })
        .collect()
}

/// Feature values per forward pass of ablated copies (64 MB of f32), to bound memory.
const ABLATION_BATCH_VALUES: usize = 16 << 20;

/// Ablation-CAM's channel weights for image `b`: logit of `class` minus the logit with channel k
/// zeroed. (The paper divides by the logit, a per-image constant that only rescales the map, and
/// would flip it for a negative logit; it is left out.)
fn ablation_weights<F>(
    features: &Tensor,
    forward_from: &F,
    b: usize,
    class: usize,
    logit: f32,
) -> Result<Vec<f64>>
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    let (_, channels, height, width) = features.dims4()?;
    let plane = height * width;
    let image = features.get(b)?.flatten_all()?.to_vec1::<f32>()?;
    let per_pass = (ABLATION_BATCH_VALUES / image.len().max(1)).clamp(1, channels);
    let mut weights = Vec::with_capacity(channels);
    for first in (0..channels).step_by(per_pass) {
        let count = per_pass.min(channels - first);
        let mut copies = Vec::with_capacity(count * image.len());
        for k in first..first + count {
            let start = copies.len();
            copies.extend_from_slice(&image);
            copies[start + k * plane..start + (k + 1) * plane].fill(0.0);
        }
        let ablated =
            Tensor::from_vec(copies, (count, channels, height, width), features.device())?;
        let rows = read_logits(&forward_from(&ablated)?, count)?;
        weights.extend(rows.iter().map(|r| logit as f64 - r[class] as f64));
    }
    Ok(weights)
}

/// sum_k weight_k A_k per position, optionally followed by ReLU.
fn weighted_channel_sum(features: &[f32], weights: &[f64], plane: usize, relu: bool) -> Vec<f32> {
    let mut sum = vec![0f64; plane];
    for (a, &w) in features.chunks(plane).zip(weights) {
        if w != 0.0 {
            sum.iter_mut().zip(a).for_each(|(s, &v)| *s += w * v as f64);
        }
    }
    sum.into_iter()
        .map(|v| if relu { v.max(0.0) } else { v } as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// What follows relu_conv10: global average pooling, then a linear head `w` [K, C] + `bias`.
    struct PoolLinear {
        w: Vec<Vec<f32>>,
        bias: Vec<f32>,
    }

    impl PoolLinear {
        fn random(classes: usize, channels: usize, scale: f32, seed: u64) -> PoolLinear {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let w = (0..classes)
                .map(|_| {
                    (0..channels)
                        .map(|_| scale * rng.random_range(-1.0..1.0))
                        .collect()
                })
                .collect();
            let bias = (0..classes).map(|_| rng.random_range(-0.1..0.1)).collect();
            PoolLinear { w, bias }
        }

        fn forward(&self, features: &Tensor) -> Result<Tensor> {
            let (k, c) = (self.w.len(), self.w[0].len());
            let w = Tensor::from_vec(self.w.concat(), (k, c), features.device())?;
            let bias = Tensor::from_vec(self.bias.clone(), k, features.device())?;
            Ok(features
                .mean((2, 3))?
                .matmul(&w.t()?)?
                .broadcast_add(&bias)?)
        }

        /// sum_k coeff_k A_k of image `b`, with coefficient `coeff(k)`.
        fn combine(&self, maps: &[f32], plane: usize, coeff: impl Fn(usize) -> f64) -> Vec<f32> {
            let mut out = vec![0f64; plane];
            for (k, a) in maps.chunks(plane).enumerate() {
                out.iter_mut()
                    .zip(a)
                    .for_each(|(o, &v)| *o += coeff(k) * v as f64);
            }
            out.into_iter().map(|v| v as f32).collect()
        }
    }

    /// Non-negative feature maps (they come after a ReLU) `[batch, channels, side, side]`.
    fn features(batch: usize, channels: usize, side: usize, seed: u64) -> (Tensor, Vec<f32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let values: Vec<f32> = (0..batch * channels * side * side)
            .map(|_| rng.random_range(-1.0f32..2.0).max(0.0))
            .collect();
        (
            Tensor::from_vec(values.clone(), (batch, channels, side, side), &Device::Cpu).unwrap(),
            values,
        )
    }

    fn assert_maps_close(got: &Heatmap, want: Vec<f32>, what: &str) {
        let want = Heatmap::new(got.height, got.width, want)
            .unwrap()
            .rescaled();
        for (i, (g, w)) in got.values.iter().zip(&want.values).enumerate() {
            assert!(
                (g - w).abs() < 1e-4,
                "{what}: cell {i}: {g} vs closed form {w}"
            );
        }
        assert!(got.values.contains(&1.0), "{what}: not rescaled");
    }

    fn logit_gap(head: &PoolLinear, x: &Tensor) -> f32 {
        let z = head.forward(x).unwrap().to_vec2::<f32>().unwrap();
        z.iter()
            .map(|r| (r[0] - r[1]).abs())
            .fold(f32::INFINITY, f32::min)
    }

    #[test]
    fn gradcam_and_seed_match_their_closed_forms_after_global_pooling() {
        let (channels, side, batch) = (24, 5, 3);
        let (x, maps) = features(batch, channels, side, 1);
        let plane = side * side;
        // scale 1: moderate logits; scale 400: logit gaps far beyond f32 softmax saturation.
        for scale in [1.0f32, 400.0] {
            let head = PoolLinear::random(2, channels, scale, 7);
            if scale > 1.0 {
                assert!(logit_gap(&head, &x) >= 40.0, "gap {}", logit_gap(&head, &x));
            }
            let forward = |f: &Tensor| head.forward(f);
            let gradcam =
                explain_features(&x, forward, Method::GradCam, Target::Predicted).unwrap();
            let seed = explain_features(&x, forward, Method::Seed, Target::Predicted).unwrap();
            for b in 0..batch {
                let a = &maps[b * channels * plane..(b + 1) * channels * plane];
                let c = gradcam[b].class;
                let o = 1 - c;
                let relu: Vec<f32> = head
                    .combine(a, plane, |k| head.w[c][k] as f64)
                    .into_iter()
                    .map(|v| v.max(0.0))
                    .collect();
                assert_maps_close(
                    &gradcam[b].cam,
                    relu,
                    &format!("gradcam x{scale} image {b}"),
                );
                let difference = head.combine(a, plane, |k| (head.w[c][k] - head.w[o][k]) as f64);
                assert_maps_close(
                    &seed[b].cam,
                    difference,
                    &format!("seed x{scale} image {b}"),
                );
                assert_eq!(seed[b].class, c);
            }
        }
    }

    #[test]
    fn gradcam_pp_and_ablation_match_their_closed_forms_after_global_pooling() {
        let (channels, side) = (16, 4);
        let plane = (side * side) as f64;
        let (x, maps) = features(2, channels, side, 3);
        let head = PoolLinear::random(3, channels, 1.0, 11);
        let forward = |f: &Tensor| head.forward(f);
        let pp = explain_features(&x, forward, Method::GradCamPlusPlus, Target::Class(2)).unwrap();
        let ablation = explain_features(&x, forward, Method::Ablation, Target::Class(2)).unwrap();
        for b in 0..2 {
            let a = &maps[b * channels * side * side..(b + 1) * channels * side * side];
            let total = |k: usize| {
                a[k * side * side..(k + 1) * side * side]
                    .iter()
                    .map(|&v| v as f64)
                    .sum::<f64>()
            };
            // The gradient is w[2][k] / plane everywhere in channel k: alpha = 1 / (2 + sum(A_k) g).
            let pp_weight = |k: usize| {
                let g = head.w[2][k] as f64 / plane;
                if g > 0.0 {
                    plane * g / (2.0 + total(k) * g)
                } else {
                    0.0
                }
            };
            let want: Vec<f32> = head
                .combine(a, side * side, pp_weight)
                .into_iter()
                .map(|v| v.max(0.0))
                .collect();
            assert_maps_close(&pp[b].cam, want, &format!("gradcam++ image {b}"));
            // Zeroing channel k removes w[2][k] * mean(A_k) from the logit.
            let drop = |k: usize| head.w[2][k] as f64 * total(k) / plane;
            let want: Vec<f32> = head
                .combine(a, side * side, drop)
                .into_iter()
                .map(|v| v.max(0.0))
                .collect();
            assert_maps_close(&ablation[b].cam, want, &format!("ablation image {b}"));
            assert_eq!((pp[b].class, ablation[b].class), (2, 2));
        }
    }

    #[test]
    fn seed_weights_follow_the_exact_softmax_derivative_and_never_saturate() {
        // Moderate logits: in f64, dp_c/dz_j = p_c (delta_cj - p_j); divided by p_c (1 - p_c) it
        // must equal the weights.
        let logits = [0.3f32, -1.2, 2.0, 0.7];
        let p: Vec<f64> = softmax(&logits).iter().map(|&v| v as f64).collect();
        for c in 0..4 {
            let w = seed_logit_weights(&logits, c);
            for j in 0..4 {
                let exact = p[c] * (if j == c { 1.0 } else { 0.0 } - p[j]) / (p[c] * (1.0 - p[c]));
                assert!(
                    (w[j] as f64 - exact).abs() < 1e-5,
                    "c {c} j {j}: {} vs {exact}",
                    w[j]
                );
            }
        }
        // A gap of 300 underflows any f32 softmax; the weights stay e_c - e_o for two classes and a
        // proper distribution over the others for more.
        assert_eq!(seed_logit_weights(&[150.0, -150.0], 0), vec![1.0, -1.0]);
        assert_eq!(seed_logit_weights(&[150.0, -150.0], 1), vec![-1.0, 1.0]);
        let w = seed_logit_weights(&[200.0, -100.0, -100.0], 0);
        assert_eq!(w, vec![1.0, -0.5, -0.5]);
        assert_eq!(seed_logit_weights(&[3.0], 0), vec![0.0]);
    }

    #[test]
    fn explained_class_is_the_prediction_or_the_one_asked_for() {
        let (x, _) = features(2, 8, 3, 5);
        let head = PoolLinear::random(3, 8, 1.0, 2);
        let forward = |f: &Tensor| head.forward(f);
        let logits = head.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        let predicted = explain_features(&x, forward, Method::GradCam, Target::Predicted).unwrap();
        for (e, z) in predicted.iter().zip(&logits) {
            assert_eq!(e.class, argmax(z));
            assert_eq!(e.predicted, argmax(z));
            assert!((e.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        let named = explain_features(&x, forward, Method::Seed, Target::Class(1)).unwrap();
        assert!(named.iter().all(|e| e.class == 1));
        let err = explain_features(&x, forward, Method::GradCam, Target::Class(3)).unwrap_err();
        assert!(format!("{err:#}").contains("3 outputs"), "{err:#}");
    }

    #[test]
    fn a_class_without_positive_evidence_gives_a_zero_map_not_nan() {
        // All head weights negative: Grad-CAM's ReLU leaves nothing, rescale gives zeros.
        let (x, _) = features(1, 6, 3, 9);
        let mut head = PoolLinear::random(2, 6, 1.0, 4);
        head.w[0].iter_mut().for_each(|w| *w = -w.abs());
        let e = explain_features(
            &x,
            |f: &Tensor| head.forward(f),
            Method::GradCam,
            Target::Class(0),
        )
        .unwrap();
        assert!(
            e[0].cam.values.iter().all(|&v| v == 0.0),
            "{:?}",
            e[0].cam.values
        );
    }

    /// A 2-class SqueezeNet with torchvision's fresh-training initialisation.
    fn squeezenet(seed: u64) -> (SqueezeNet, candle_nn::VarMap) {
        let varmap = candle_nn::VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &Device::Cpu);
        let model = SqueezeNet::new(vb, Some(2)).unwrap();
        crate::model::init_backbone(&varmap, seed).unwrap();
        crate::model::init_head(&varmap, seed + 1).unwrap();
        (model, varmap)
    }

    fn images(batch: usize, side: usize, seed: u64) -> Tensor {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let values: Vec<f32> = (0..batch * 3 * side * side)
            .map(|_| rng.random_range(-2.0f32..2.0))
            .collect();
        Tensor::from_vec(values, (batch, 3, side, side), &Device::Cpu).unwrap()
    }

    fn head_weights(varmap: &candle_nn::VarMap) -> Vec<Vec<f32>> {
        let vars = varmap.data().lock().unwrap();
        vars[crate::model::HEAD_WEIGHT]
            .as_tensor()
            .to_vec2::<f32>()
            .unwrap()
    }

    #[test]
    fn squeezenet_relu_conv10_maps_match_the_head_weight_closed_forms() {
        // relu_conv10 feeds global average pooling and the linear head, so dz_c/dA_k is
        // W[c,k] / (h w) everywhere: Grad-CAM = ReLU(sum_k W[c,k] A_k), seed = sum_k (W[c,k] -
        // W[o,k]) A_k, each rescaled.
        let (model, varmap) = squeezenet(21);
        let x = images(2, 96, 5);
        let a = model.forward_to(&x, "relu_conv10").unwrap();
        let (_, channels, h, w) = a.dims4().unwrap();
        let maps = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let original = head_weights(&varmap);
        // Scale 1, then head weights scaled until every logit gap is at least 40.
        for scale in [1.0f32, 0.0] {
            let scale = if scale > 0.0 {
                scale
            } else {
                let z = model
                    .forward_t(&x, false)
                    .unwrap()
                    .to_vec2::<f32>()
                    .unwrap();
                let gap = z
                    .iter()
                    .map(|r| (r[0] - r[1]).abs())
                    .fold(f32::INFINITY, f32::min);
                (45.0 / gap).max(1.0)
            };
            let scaled: Vec<f32> = original.concat().iter().map(|v| v * scale).collect();
            let vars = varmap.data().lock().unwrap();
            vars[crate::model::HEAD_WEIGHT]
                .set(&Tensor::from_vec(scaled, (2, channels), &Device::Cpu).unwrap())
                .unwrap();
            drop(vars);
            let head = PoolLinear {
                w: head_weights(&varmap),
                bias: vec![0.0; 2],
            };
            let z = model
                .forward_t(&x, false)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            if scale > 1.0 {
                assert!(
                    z.iter().all(|r| (r[0] - r[1]).abs() >= 40.0),
                    "logits {z:?}"
                );
            }
            let gradcam = explain(
                &model,
                &x,
                "relu_conv10",
                Method::GradCam,
                Target::Predicted,
            )
            .unwrap();
            let seed = explain(&model, &x, "relu_conv10", Method::Seed, Target::Predicted).unwrap();
            for b in 0..2 {
                let plane = h * w;
                let a = &maps[b * channels * plane..(b + 1) * channels * plane];
                let c = argmax(&z[b]);
                assert_eq!((gradcam[b].class, seed[b].class), (c, c));
                let relu: Vec<f32> = head
                    .combine(a, plane, |k| head.w[c][k] as f64)
                    .into_iter()
                    .map(|v| v.max(0.0))
                    .collect();
                assert_maps_close(
                    &gradcam[b].cam,
                    relu,
                    &format!("gradcam x{scale} image {b}"),
                );
                let difference =
                    head.combine(a, plane, |k| (head.w[c][k] - head.w[1 - c][k]) as f64);
                assert_maps_close(
                    &seed[b].cam,
                    difference,
                    &format!("seed x{scale} image {b}"),
                );
            }
        }
    }

    #[test]
    fn squeezenet_gradient_at_fire9_matches_finite_differences() {
        let (model, _) = squeezenet(3);
        let x = images(1, 64, 8);
        let layer = "fire9-concat";
        let a = model.forward_to(&x, layer).unwrap().detach();
        let values = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let var = Var::from_tensor(&a).unwrap();
        let logits = model.forward_from(var.as_tensor(), layer).unwrap();
        let class = 1;
        let gradient = weighted_logit_gradient(&var, &logits, one_hot(2, class)).unwrap();
        let logit_at = |values: Vec<f32>| -> f64 {
            let t = Tensor::from_vec(values, a.shape(), &Device::Cpu).unwrap();
            model
                .forward_from(&t, layer)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap()[0][class] as f64
        };
        // Central differences in f32 need steps well above the logit's rounding (z ~ 0.3) yet
        // small enough not to cross ReLU kinks downstream: 1e-2 on a few entries at a time.
        let eps = 1e-2f32;
        let mut order: Vec<usize> = (0..gradient.len()).collect();
        order.sort_by(|&i, &j| gradient[j].abs().total_cmp(&gradient[i].abs()));
        // Element by element where the gradient is largest...
        for &i in &order[..6] {
            let mut up = values.clone();
            let mut down = values.clone();
            up[i] += eps;
            down[i] -= eps;
            let numeric = (logit_at(up) - logit_at(down)) / (2.0 * eps as f64);
            let g = gradient[i] as f64;
            assert!(
                (numeric - g).abs() <= 1e-2 * g.abs(),
                "element {i}: {numeric} vs {g}"
            );
        }
        // ...and along the gradient itself (every entry moves; a random direction's derivative
        // cancels down to the logit's rounding): (z(A + eD) - z(A - eD)) / 2e = <g, D>.
        let largest = gradient[order[0]].abs();
        let direction: Vec<f32> = gradient.iter().map(|g| g / largest).collect();
        let shifted = |sign: f32| {
            values
                .iter()
                .zip(&direction)
                .map(|(v, d)| v + sign * eps * d)
                .collect()
        };
        let numeric = (logit_at(shifted(1.0)) - logit_at(shifted(-1.0))) / (2.0 * eps as f64);
        let analytic: f64 = gradient
            .iter()
            .zip(&direction)
            .map(|(&g, &d)| g as f64 * d as f64)
            .sum();
        assert!(
            (numeric - analytic).abs() <= 1e-2 * analytic.abs(),
            "{numeric} vs {analytic}"
        );
    }

    #[test]
    fn batched_explanations_equal_one_image_at_a_time() {
        let (model, _) = squeezenet(9);
        let x = images(3, 64, 2);
        for method in Method::ALL {
            let together = explain(&model, &x, "fire9-concat", method, Target::Class(0)).unwrap();
            for (b, e) in together.iter().enumerate() {
                let alone = explain(
                    &model,
                    &x.narrow(0, b, 1).unwrap(),
                    "fire9-concat",
                    method,
                    Target::Class(0),
                )
                .unwrap();
                let same = e
                    .cam
                    .values
                    .iter()
                    .zip(&alone[0].cam.values)
                    .all(|(p, q)| (p - q).abs() < 1e-4);
                assert!(
                    same,
                    "{method} image {b}: {:?} vs {:?}",
                    e.cam.values, alone[0].cam.values
                );
                assert_eq!((e.cam.height, e.cam.width), (3, 3)); // 64 px -> 31 -> 15 -> 7 -> 3
            }
        }
    }

    #[test]
    fn unknown_layer_lists_the_valid_ones() {
        let (model, _) = squeezenet(1);
        let err = explain(
            &model,
            &images(1, 64, 1),
            "conv99",
            Method::GradCam,
            Target::Predicted,
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("conv99")
                && text.contains("relu_conv10")
                && text.contains("fire9-concat"),
            "{text}"
        );
    }

    #[test]
    fn method_names_parse() {
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>().unwrap(), m);
        }
        assert_eq!(
            "Grad-CAM++".parse::<Method>().unwrap(),
            Method::GradCamPlusPlus
        );
        assert_eq!(
            "gradcampp".parse::<Method>().unwrap(),
            Method::GradCamPlusPlus
        );
        let err = "lime".parse::<Method>().unwrap_err();
        assert!(
            err.contains("lime") && err.contains("seed, gradcam, gradcam++, ablation"),
            "{err}"
        );
    }
}
