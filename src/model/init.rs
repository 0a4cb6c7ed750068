//! Fresh backbone weights, for training without pretrained ones: torchvision's own scheme for
//! SqueezeNet (Kaiming-uniform convolutions, the final conv10 drawn from N(0, 0.01), zero biases), so a
//! network trained from scratch here starts as one trained from scratch in PyTorch would.

use std::sync::PoisonError;

use anyhow::{Context, Result};
use candle_core::Tensor;
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::arch::backbone_params;

/// torchvision's key of conv10, the one convolution it initialises differently.
const CONV10_WEIGHT: &str = "classifier.1.weight";

/// Draws every backbone variable of `varmap` afresh from `seed`.
pub fn init_backbone(varmap: &VarMap, seed: u64) -> Result<()> {
    let vars = varmap.data().lock().unwrap_or_else(PoisonError::into_inner);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for spec in backbone_params() {
        let var = vars
            .get(&spec.key)
            .with_context(|| format!("the model has no backbone variable {}", spec.key))?;
        let count: usize = spec.shape.iter().product();
        let values: Vec<f32> = if spec.key.ends_with("bias") {
            vec![0.0; count]
        } else if spec.key == CONV10_WEIGHT {
            (0..count)
                .map(|_| 0.01 * standard_normal(&mut rng))
                .collect()
        } else {
            // torchvision's kaiming_uniform_ (a = 0): U(-sqrt(6 / fan_in), sqrt(6 / fan_in)).
            let fan_in: usize = spec.shape[1..].iter().product();
            let bound = (6.0 / fan_in as f32).sqrt();
            (0..count)
                .map(|_| rng.random_range(-bound..bound))
                .collect()
        };
        let device = var.as_tensor().device();
        var.set(&Tensor::from_vec(values, spec.shape.as_slice(), device)?)?;
    }
    Ok(())
}

/// Box-Muller: one N(0, 1) draw.
fn standard_normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SqueezeNet;
    use candle_core::{DType, Device};
    use candle_nn::VarBuilder;

    #[test]
    fn fresh_backbone_has_torchvision_scales_and_is_reproducible() {
        let draw = |seed| {
            let varmap = VarMap::new();
            SqueezeNet::new(
                VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
                Some(2),
            )
            .unwrap();
            init_backbone(&varmap, seed).unwrap();
            let vars = varmap.data().lock().unwrap();
            let conv1: Vec<f32> = vars["features.0.weight"]
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let conv10: Vec<f32> = vars[CONV10_WEIGHT]
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let bias: Vec<f32> = vars["features.0.bias"].as_tensor().to_vec1().unwrap();
            (conv1, conv10, bias)
        };
        let (conv1, conv10, bias) = draw(1);
        let bound = (6.0f32 / 27.0).sqrt();
        assert!(conv1.iter().all(|v| v.abs() <= bound));
        assert!(conv1.iter().map(|v| v.abs()).fold(0.0, f32::max) > 0.9 * bound);
        let std = (conv10.iter().map(|v| v * v).sum::<f32>() / conv10.len() as f32).sqrt();
        assert!((std - 0.01).abs() < 0.001, "conv10 std {std}");
        assert!(bias.iter().all(|&b| b == 0.0));
        assert_eq!(draw(1).0, conv1);
        assert_ne!(draw(2).0, conv1);
    }
}
