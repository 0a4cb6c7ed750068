//! `crackscope export`: the ONNX file, run by another runtime (tract), gives crackscope's own
//! probabilities and Grad-CAM maps, for images prepared as the README says; its batch is free;
//! its metadata describes the preprocessing; one-class models export their score, patch
//! distances and anomaly map, equal to crackscope's own; bad files are refused.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use common::*;
use crackscope::model::{init_backbone, SqueezeNet};
use image::{Rgb, RgbImage};
use tract_onnx::prelude::*;

const SIDE: u32 = 64;
const CLASSES: [&str; 3] = ["Negative", "Positive", "stain, dark"];
/// The README's preprocessing.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// A checkpoint with random weights (seeded) for three classes at 64 px.
fn checkpoint(dir: &Path, seed: u64) -> PathBuf {
    random_model(&dir.join("model.safetensors"), &CLASSES, seed, |_| {})
}

/// Images at the input size (so no resizing is involved), each of its own pattern.
fn images() -> Vec<RgbImage> {
    (0..4u32)
        .map(|i| {
            RgbImage::from_fn(SIDE, SIDE, |x, y| {
                let crack = (x as i32 - (y as i32 * (i as i32 + 1)) / 3).abs() < 2;
                let v = ((x * 7 + y * 13 + i * 41) % 200) as u8;
                if crack {
                    Rgb([20, 20, 25])
                } else {
                    Rgb([v, v.wrapping_add(i as u8 * 30), 255 - v])
                }
            })
        })
        .collect()
}

/// `[N, 3, S, S]` as the README says: RGB planes, (pixel / 255 - mean) / std.
fn prepared(images: &[RgbImage]) -> Tensor {
    let side = SIDE as usize;
    let mut data = Vec::with_capacity(images.len() * 3 * side * side);
    for image in images {
        for c in 0..3 {
            data.extend(
                image
                    .pixels()
                    .map(|p| (p.0[c] as f32 / 255.0 - MEAN[c]) / STD[c]),
            );
        }
    }
    tract_ndarray::Array4::from_shape_vec((images.len(), 3, side, side), data)
        .unwrap()
        .into()
}

/// Probabilities `[N, K]` and maps `[N, K, h, w]` from the ONNX file, run by tract.
fn run_onnx(file: &Path, images: &[RgbImage]) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
    let model = tract_onnx::onnx()
        .model_for_path(file)
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let outputs = model.run(tvec!(prepared(images).into())).unwrap();
    let probabilities = outputs[0].to_plain_array_view::<f32>().unwrap();
    let cam = outputs[1].to_plain_array_view::<f32>().unwrap();
    assert_eq!(probabilities.shape(), [images.len(), CLASSES.len()]);
    assert_eq!(cam.shape()[..2], [images.len(), CLASSES.len()]);
    let p = probabilities
        .outer_iter()
        .map(|row| row.iter().copied().collect())
        .collect();
    let maps = cam
        .outer_iter()
        .map(|image| {
            image
                .outer_iter()
                .map(|map| map.iter().copied().collect())
                .collect()
        })
        .collect();
    (p, maps)
}

/// Grad-CAM as crackscope makes it from an exported map: ReLU, then rescaled to 0..1.
fn gradcam_of(cam: &[f32]) -> Vec<f32> {
    let relu: Vec<f32> = cam.iter().map(|v| v.max(0.0)).collect();
    let (lo, hi) = relu
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    relu.iter()
        .map(|v| if hi > lo { (v - lo) / (hi - lo) } else { 0.0 })
        .collect()
}

fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Writes `images` as PNG files (lossless: both sides read the same pixels).
fn write_images(dir: &Path, images: &[RgbImage]) -> Vec<String> {
    images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let path = dir.join(format!("image-{i}.png"));
            image.save(&path).unwrap();
            path.to_str().unwrap().to_string()
        })
        .collect()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&ok_stdout(out)).unwrap()
}

fn floats(value: &serde_json::Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| match v.as_array() {
            Some(row) => row.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
            None => vec![v.as_f64().unwrap() as f32],
        })
        .collect()
}

#[test]
fn exported_model_gives_crackscopes_probabilities_and_gradcam_maps() {
    let dir = tempfile::tempdir().unwrap();
    let model = checkpoint(dir.path(), 7);
    let model = model.to_str().unwrap();
    let file = dir.path().join("model.onnx");
    let out = ok(&run(&["export", model, "--out", file.to_str().unwrap()]));
    assert!(out.contains("probabilities"), "{out}");

    let images = images();
    let paths = write_images(dir.path(), &images);
    let (probabilities, maps) = run_onnx(&file, &images);
    // crackscope's own answers, from the commands a user runs.
    let mut args = vec!["predict", "--json", "--model", model];
    args.extend(paths.iter().map(String::as_str));
    let predicted = json(&run(&args));
    let mut worst_p = 0f32;
    for (i, answer) in predicted.as_array().unwrap().iter().enumerate() {
        worst_p = worst_p.max(worst(&floats(&answer["probabilities"]), &probabilities[i]));
    }
    let mut worst_map = 0f32;
    for (class, _name) in CLASSES.iter().enumerate() {
        let class_arg = class.to_string();
        let out_dir = dir.path().join(format!("gradcam-{class}"));
        let mut args = vec![
            "gradcam",
            "--json",
            "--method",
            "gradcam",
            "--layer",
            "relu_conv10",
            "--class",
            &class_arg,
            "--out",
            out_dir.to_str().unwrap(),
            "--model",
            model,
        ];
        args.extend(paths.iter().map(String::as_str));
        let explained = json(&run(&args));
        for (i, record) in explained.as_array().unwrap().iter().enumerate() {
            assert_eq!(record["index"].as_u64(), Some(class as u64));
            let own = floats(&record["cam"]);
            worst_map = worst_map.max(worst(&own, &gradcam_of(&maps[i][class])));
        }
    }
    eprintln!("worst differences: probabilities {worst_p:.2e}, Grad-CAM maps {worst_map:.2e}");
    assert!(worst_p <= 1e-5, "probabilities differ by {worst_p:e}");
    assert!(worst_map <= 1e-4, "maps differ by {worst_map:e}");
}

#[test]
fn the_batch_dimension_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let model = checkpoint(dir.path(), 3);
    let file = dir.path().join("model.onnx");
    ok(&run(&[
        "export",
        model.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]));
    let images = images();
    let (all, _) = run_onnx(&file, &images);
    let (one, _) = run_onnx(&file, &images[2..3]);
    assert!(worst(&all[2], &one[0]) <= 1e-6);
}

// One-class models: the graph gives crackscope's own scores, patch distances and anomaly maps.

use crackscope::detector::oneclass::features::Extractor;
use crackscope::detector::oneclass::model::fit_bank;
use crackscope::detector::oneclass::threshold::{Threshold, ThresholdRule};
use crackscope::detector::oneclass::{model_file, Edge, OneClassModel, PatchValues, Settings};

/// Normal images: smooth shaded surfaces with their own grain.
fn surfaces(count: u32) -> Vec<RgbImage> {
    (0..count)
        .map(|i| {
            RgbImage::from_fn(SIDE, SIDE, |x, y| {
                let v = (120 + (x * (3 + i % 4) + y * (5 + i % 3) + i * 17) % 40) as u8;
                Rgb([v, v.saturating_sub(5), v.saturating_add(8)])
            })
        })
        .collect()
}

/// Surfaces a one-class model is fitted on: at the defaults (fire7's 3x3 grid at 64 px) 576
/// patches, so that the bank of 600 at most is over 512 entries and crackscope searches it with
/// lower bounds, where the exported file takes every product.
const FIT_SURFACES: u32 = 64;

/// A one-class model with random backbone weights (seeded), fitted on [`FIT_SURFACES`] surfaces
/// with `settings`, saved at `dir/name.safetensors`.
fn one_class_model(dir: &Path, name: &str, settings: Settings) -> PathBuf {
    let varmap = VarMap::new();
    let net = SqueezeNet::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        None,
    )
    .unwrap();
    init_backbone(&varmap, 11).unwrap();
    let extractor = Extractor::new(net, varmap, settings).unwrap();
    let bank = fit_bank(&extractor, &surfaces(FIT_SURFACES), &mut |_| {}).unwrap();
    let model = OneClassModel {
        extractor,
        bank,
        threshold: Threshold {
            value: 1.5,
            rule: ThresholdRule::BestF1 { f1: 1.0 },
        },
        scan_threshold: None,
        normal_class: "Negative".into(),
        classes: vec!["Negative".into(), "Positive".into()],
    };
    let path = dir.join(format!("{name}.safetensors"));
    model_file::save(&model, &path).unwrap();
    path
}

/// Largest difference between `a` and `b`, relative to the largest magnitude in `a`, or to
/// `floor` where that is smaller.
fn worst_relative(a: &[f32], b: &[f32], floor: f32) -> f32 {
    let scale = a
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(floor)
        .max(f32::MIN_POSITIVE);
    worst(a, b) / scale
}

#[test]
fn exported_one_class_model_gives_crackscopes_scores_and_anomaly_maps() {
    let dir = tempfile::tempdir().unwrap();
    let base = Settings {
        input_size: SIDE,
        coreset_ratio: 1.0,
        max_bank: 600,
        ..Settings::default()
    };
    let variants = [
        // The defaults: fire5 + fire7, every channel, 3x3 with zeros at the border, fire5's 7x7
        // map averaged onto fire7's 3x3 grid; a bank of 576 x 640 is searched with lower bounds
        // by crackscope.
        ("defaults", base.clone()),
        // Two layers (fire3's 15x15 map to fire5's 7x7 grid), group means, the cells inside
        // counted at the border, 5x5 neighbourhoods, a random bank.
        (
            "means",
            Settings {
                layers: vec!["fire3-concat".into(), "fire5-concat".into()],
                values: PatchValues::Means(24),
                neighbourhood: 5,
                edge: Edge::Inside,
                sampling: crackscope::detector::oneclass::Sampling::Random,
                ..base.clone()
            },
        ),
        // A random projection of fire4 and fire5, no neighbourhood, no smoothing.
        (
            "projection",
            Settings {
                layers: vec!["fire4-concat".into(), "fire5-concat".into()],
                values: PatchValues::Projection(40),
                neighbourhood: 1,
                smoothing_sigma: 0.0,
                ..base.clone()
            },
        ),
    ];
    // Surfaces like the normal ones, and the crack pattern images.
    let mut images = surfaces(FIT_SURFACES + 3)[FIT_SURFACES as usize..].to_vec();
    images.extend(self::images());
    for (name, settings) in variants {
        let path = one_class_model(dir.path(), name, settings);
        let file = dir.path().join(format!("{name}.onnx"));
        let said = ok(&run(&[
            "export",
            path.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
        ]));
        assert!(said.contains("anomaly_map"), "{said}");
        // crackscope's own scores and maps, from the model file as predict reads it.
        let model = model_file::load(&path).unwrap();
        let own = model.score(&images).unwrap();
        let onnx = tract_onnx::onnx()
            .model_for_path(&file)
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let outputs = onnx.run(tvec!(prepared(&images).into())).unwrap();
        let scores = outputs[0].to_plain_array_view::<f32>().unwrap();
        let patches = outputs[1].to_plain_array_view::<f32>().unwrap();
        let maps = outputs[2].to_plain_array_view::<f32>().unwrap();
        let grid = own[0].grid;
        let side = SIDE as usize;
        assert_eq!(scores.shape(), [images.len()]);
        assert_eq!(patches.shape(), [images.len(), grid, grid]);
        assert_eq!(maps.shape(), [images.len(), side, side]);
        let (mut worst_score, mut worst_patch, mut worst_map) = (0f32, 0f32, 0f32);
        // An image whose every patch is in the bank scores 0 (with random weights, deep features
        // of plain surfaces can all be zero): its differences are taken relative to a hundredth
        // of the largest score instead of to 0.
        let floor = 1e-2 * own.iter().map(|s| s.score).fold(0f32, f32::max);
        for (i, scored) in own.iter().enumerate() {
            let score = scores[i];
            worst_score = worst_score.max((score - scored.score).abs() / scored.score.max(floor));
            let onnx_patches: Vec<f32> = patches
                .outer_iter()
                .nth(i)
                .unwrap()
                .iter()
                .copied()
                .collect();
            worst_patch =
                worst_patch.max(worst_relative(&scored.patch_scores, &onnx_patches, floor));
            let onnx_map: Vec<f32> = maps.outer_iter().nth(i).unwrap().iter().copied().collect();
            worst_map = worst_map.max(worst_relative(
                &model.anomaly_map(scored).values,
                &onnx_map,
                floor,
            ));
        }
        eprintln!(
            "{name}: bank {} x {}, worst relative differences: scores {worst_score:.2e}, patch \
             distances {worst_patch:.2e}, maps {worst_map:.2e}",
            model.bank.len(),
            model.bank.dim()
        );
        assert!(
            worst_score <= 1e-4,
            "{name}: scores differ by {worst_score:e}"
        );
        assert!(
            worst_patch <= 1e-4,
            "{name}: patch distances differ by {worst_patch:e}"
        );
        assert!(worst_map <= 1e-4, "{name}: maps differ by {worst_map:e}");
    }
}
