//! The network on a CUDA GPU checked against the CPU engine: forward pass, gradients, one Adam step
//! and Grad-CAM. Built only with `--features cuda` (scripts/cuda/build.sh bundles it as `gpu-tests`
//! for scripts/gpu-check.sh); every test skips with a message when no GPU can be opened.
#![cfg(feature = "cuda")]

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use crackscope::explain::methods::{explain, Method, Target};
use crackscope::model::SqueezeNet;
use crackscope::train::optimizer::{Adam, AdamConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The first GPU, or None after saying why the test is skipped.
fn gpu() -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(device) => Some(device),
        Err(e) => {
            crackscope::core::testdata::say_skipped(&format!("no usable CUDA GPU ({e})"));
            None
        }
    }
}

fn uniform(len: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-scale..scale)).collect()
}

/// The same random network (fan-in scaled weights, slightly positive biases, so that activations
/// neither vanish nor explode) on the CPU and on `gpu`.
fn twins(gpu: &Device, classes: usize) -> ((SqueezeNet, VarMap), (SqueezeNet, VarMap)) {
    let build = |device: &Device| {
        let varmap = VarMap::new();
        let model = SqueezeNet::new(
            VarBuilder::from_varmap(&varmap, DType::F32, device),
            Some(classes),
        )
        .unwrap();
        (model, varmap)
    };
    let (cpu, gpu_twin) = (build(&Device::Cpu), build(gpu));
    let cpu_vars = cpu.1.data().lock().unwrap();
    let gpu_vars = gpu_twin.1.data().lock().unwrap();
    let mut names: Vec<&String> = cpu_vars.keys().collect();
    names.sort();
    for (i, name) in names.into_iter().enumerate() {
        let dims = cpu_vars[name].dims().to_vec();
        let len = dims.iter().product();
        let values = if dims.len() == 1 {
            uniform(len, 0.05, i as u64)
                .iter()
                .map(|v| v + 0.05)
                .collect()
        } else {
            let fan_in: usize = dims[1..].iter().product();
            uniform(len, (3.0 / fan_in as f32).sqrt() * 1.4, i as u64)
        };
        let host = Tensor::from_vec(values, dims.as_slice(), &Device::Cpu).unwrap();
        cpu_vars[name].set(&host).unwrap();
        gpu_vars[name].set(&host.to_device(gpu).unwrap()).unwrap();
    }
    drop((cpu_vars, gpu_vars));
    (cpu, gpu_twin)
}

fn images(batch: usize, side: usize, device: &Device) -> Tensor {
    let values = uniform(batch * 3 * side * side, 2.0, 99);
    Tensor::from_vec(values, (batch, 3, side, side), device).unwrap()
}

fn host(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .unwrap()
        .to_device(&Device::Cpu)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

/// Largest |a - b| relative to the reference's largest magnitude.
fn relative_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    got.iter()
        .zip(want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

fn assert_close(got: &[f32], want: &[f32], tolerance: f32, what: &str) {
    let error = relative_error(got, want);
    assert!(
        error <= tolerance,
        "{what}: GPU differs from the CPU engine by {error:e} (relative; allowed {tolerance:e})"
    );
    eprintln!("{what}: relative difference {error:e}");
}

fn labels(batch: usize, classes: usize, device: &Device) -> Tensor {
    let values: Vec<u32> = (0..batch).map(|i| (i % classes) as u32).collect();
    Tensor::from_vec(values, batch, device).unwrap()
}

#[test]
fn forward_pass_matches_the_cpu_engine() {
    let Some(gpu) = gpu() else { return };
    let ((cpu_model, _), (gpu_model, _)) = twins(&gpu, 2);
    for side in [227, 64] {
        let x = images(4, side, &Device::Cpu);
        let want = host(&cpu_model.forward_t(&x, false).unwrap());
        let got = host(
            &gpu_model
                .forward_t(&x.to_device(&gpu).unwrap(), false)
                .unwrap(),
        );
        assert_close(&got, &want, 1e-4, &format!("logits at {side} px"));
    }
}

#[test]
fn gradients_match_the_cpu_engine_in_training_mode() {
    let Some(gpu) = gpu() else { return };
    let ((cpu_model, cpu_vars), (gpu_model, gpu_vars)) = twins(&gpu, 2);
    // The same dropout masks on both sides: they are drawn on the host from the model's seed.
    cpu_model.set_dropout_seed(7);
    gpu_model.set_dropout_seed(7);
    let x = images(6, 227, &Device::Cpu);
    let loss = |model: &SqueezeNet, device: &Device| {
        let logits = model
            .forward_t(&x.to_device(device).unwrap(), true)
            .unwrap();
        candle_nn::loss::cross_entropy(&logits, &labels(6, 2, device)).unwrap()
    };
    let cpu_loss = loss(&cpu_model, &Device::Cpu);
    let gpu_loss = loss(&gpu_model, &gpu);
    assert_close(&host(&gpu_loss), &host(&cpu_loss), 1e-4, "loss");
    let cpu_grads = cpu_loss.backward().unwrap();
    let gpu_grads = gpu_loss.backward().unwrap();
    let cpu_data = cpu_vars.data().lock().unwrap();
    let gpu_data = gpu_vars.data().lock().unwrap();
    let mut names: Vec<&String> = cpu_data.keys().collect();
    names.sort();
    for name in names {
        let want = cpu_grads.get(cpu_data[name].as_tensor()).map(host);
        let got = gpu_grads.get(gpu_data[name].as_tensor()).map(host);
        match (got, want) {
            (Some(got), Some(want)) => {
                assert_close(&got, &want, 2e-3, &format!("d loss / d {name}"))
            }
            (got, want) => panic!(
                "{name}: gradient present on GPU {}, on CPU {}",
                got.is_some(),
                want.is_some()
            ),
        }
    }
}

#[test]
fn one_adam_step_moves_the_weights_as_on_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let ((cpu_model, cpu_vars), (gpu_model, gpu_vars)) = twins(&gpu, 3);
    let config = AdamConfig::matlab(2e-4, 1e-4);
    let mut cpu_adam = Adam::new(&cpu_vars, config).unwrap();
    let mut gpu_adam = Adam::new(&gpu_vars, config).unwrap();
    let x = images(4, 96, &Device::Cpu);
    for (model, adam, device) in [
        (&cpu_model, &mut cpu_adam, Device::Cpu),
        (&gpu_model, &mut gpu_adam, gpu.clone()),
    ] {
        let logits = model
            .forward_t(&x.to_device(&device).unwrap(), false)
            .unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &labels(4, 3, &device)).unwrap();
        adam.step(&loss.backward().unwrap()).unwrap();
    }
    let weight = |vars: &VarMap, name: &str| -> Var { vars.data().lock().unwrap()[name].clone() };
    for name in [
        "features.0.weight",
        "features.12.expand3x3.weight",
        "head.weight",
    ] {
        assert_close(
            &host(weight(&gpu_vars, name).as_tensor()),
            &host(weight(&cpu_vars, name).as_tensor()),
            1e-5,
            &format!("{name} after one step"),
        );
    }
}

#[test]
fn grad_cam_maps_match_the_cpu_engine() {
    let Some(gpu) = gpu() else { return };
    let ((cpu_model, _), (gpu_model, _)) = twins(&gpu, 2);
    let x = images(3, 227, &Device::Cpu);
    for method in [Method::Seed, Method::GradCam, Method::GradCamPlusPlus] {
        for layer in ["relu_conv10", "fire9-concat"] {
            let want = explain(&cpu_model, &x, layer, method, Target::Predicted).unwrap();
            let got = explain(
                &gpu_model,
                &x.to_device(&gpu).unwrap(),
                layer,
                method,
                Target::Predicted,
            )
            .unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(
                    g.predicted, w.predicted,
                    "{method} at {layer}: predicted class"
                );
                assert_close(
                    &g.cam.values,
                    &w.cam.values,
                    1e-3,
                    &format!("{method} map at {layer}"),
                );
            }
        }
    }
}
