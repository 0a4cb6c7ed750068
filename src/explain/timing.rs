//! How long one explanation takes: the number `crackscope bench` reports for Grad-CAM.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use candle_core::{Device, Tensor};
use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::methods::{explain, Method, Target};
use super::overlay::{overlay, Style};
use crate::model::SqueezeNet;

/// Mean wall time per image to explain `batch` images of `size` x `size` at `layer` with
/// `method` and draw their overlays, over `repeats` batches after one warm-up batch. The inputs
/// are seeded noise: the work does not depend on the pixels.
pub fn time_per_image(
    model: &SqueezeNet,
    device: &Device,
    size: usize,
    batch: usize,
    layer: &str,
    method: Method,
    repeats: usize,
) -> Result<Duration> {
    ensure!(
        batch > 0 && repeats > 0,
        "timing needs at least one image and one repeat"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let values: Vec<f32> = (0..batch * 3 * size * size)
        .map(|_| rng.random_range(-2.0..2.0))
        .collect();
    let x = Tensor::from_vec(values, (batch, 3, size, size), device)?;
    let image = RgbImage::from_pixel(size as u32, size as u32, Rgb([128, 128, 128]));
    let style = Style::default();
    let run = || -> Result<()> {
        for e in explain(model, &x, layer, method, Target::Predicted)? {
            overlay(&image, &e.cam, &style)?;
        }
        Ok(())
    };
    run()?;
    let start = Instant::now();
    for _ in 0..repeats {
        run()?;
    }
    Ok(start.elapsed() / (repeats * batch) as u32)
}

#[cfg(test)]
mod tests {
    use candle_core::DType;
    use candle_nn::{VarBuilder, VarMap};

    use super::*;

    #[test]
    fn measures_a_positive_time_and_rejects_empty_work() {
        let varmap = VarMap::new();
        let model = SqueezeNet::new(
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
            Some(2),
        )
        .unwrap();
        crate::model::init_backbone(&varmap, 0).unwrap();
        let t = time_per_image(
            &model,
            &Device::Cpu,
            48,
            2,
            "relu_conv10",
            Method::GradCam,
            1,
        )
        .unwrap();
        assert!(t > Duration::ZERO);
        assert!(time_per_image(
            &model,
            &Device::Cpu,
            48,
            0,
            "relu_conv10",
            Method::GradCam,
            1
        )
        .is_err());
    }
}
