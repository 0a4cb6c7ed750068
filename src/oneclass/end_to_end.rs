//! End-to-end checks of fitting and scoring on synthetic concrete (normal = synthetic Negative)
//! with the ImageNet weights; they skip, saying why, where the weights are absent.

use std::path::PathBuf;

use image::RgbImage;

use super::features::Extractor;
use super::model::{fit_bank, score_with};
use super::ranking::auroc;
use super::Settings;
use crate::data::synth::{image_seed, render};

/// The shared ImageNet weights, or None (after saying why).
pub(crate) fn imagenet_weights() -> Option<PathBuf> {
    let dir = std::env::var_os("CRACKSCOPE_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let path = dir.join("pretrained/squeezenet1_1.safetensors");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipping: ImageNet weights not found at {} (set CRACKSCOPE_TEST_DATA); random \
             features would not say whether one-class scoring works",
            path.display()
        );
        None
    }
}

fn synthetic(count: usize, crack: bool, first: usize, size: u32) -> Vec<RgbImage> {
    (first..first + count)
        .map(|i| render(image_seed(7, usize::from(crack), i), size, crack).image)
        .collect()
}

/// Fits on `train` normal images and returns the AUROC over `test` normal and anomalous ones.
fn measured_auroc(settings: Settings, weights: &std::path::Path, train: usize, test: usize) -> f64 {
    let size = settings.input_size;
    let extractor = Extractor::imagenet(weights, settings).unwrap();
    let bank = fit_bank(&extractor, &synthetic(train, false, 0, size), &mut |_| {}).unwrap();
    let normal = score_with(&extractor, &bank, &synthetic(test, false, train, size)).unwrap();
    let cracked = score_with(&extractor, &bank, &synthetic(test, true, 0, size)).unwrap();
    let scores: Vec<f32> = normal.iter().chain(&cracked).map(|s| s.score).collect();
    let labels: Vec<bool> = (0..2 * test).map(|i| i >= test).collect();
    auroc(&scores, &labels).unwrap()
}

#[test]
fn synthetic_cracks_outscore_synthetic_surfaces() {
    let Some(weights) = imagenet_weights() else {
        return;
    };
    // 128 px keeps the test quick; the patch grid is then 16x16.
    let settings = Settings {
        input_size: 128,
        ..Settings::default()
    };
    let auroc = measured_auroc(settings, &weights, 40, 30);
    eprintln!("synthetic AUROC (40 normal training images, 30 + 30 test images): {auroc:.3}");
    assert!(auroc > 0.85, "AUROC {auroc}");
}

#[test]
fn fitting_is_deterministic_per_seed_and_bounded() {
    let Some(weights) = imagenet_weights() else {
        return;
    };
    let settings = |seed| Settings {
        input_size: 96,
        coreset_ratio: 0.5,
        max_bank: 50,
        seed,
        ..Settings::default()
    };
    let images = synthetic(12, false, 0, 96);
    let fit = |seed| {
        let extractor = Extractor::imagenet(&weights, settings(seed)).unwrap();
        fit_bank(&extractor, &images, &mut |_| {}).unwrap()
    };
    let a = fit(1);
    assert_eq!(
        a.len(),
        50,
        "half of 12 images x 121 patches is past the bound of 50"
    );
    assert_eq!(a, fit(1));
    assert_ne!(a, fit(2));
    // One image is too few.
    let extractor = Extractor::imagenet(&weights, settings(1)).unwrap();
    let err = fit_bank(&extractor, &images[..1], &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("at least 2"), "{err}");
}

/// Layer and size choices compared on synthetic data (run with `--ignored --nocapture`); the
/// figures are in the README's one-class section.
#[test]
#[ignore]
fn compare_feature_choices() {
    let Some(weights) = imagenet_weights() else {
        return;
    };
    let layers = [
        ["fire2-concat", "fire3-concat"],
        ["fire3-concat", "fire5-concat"],
        ["fire5-concat", "fire7-concat"],
    ];
    for [low, high] in layers {
        for (dims, max_bank) in [(64, 1024), (128, 1024), (64, 4096)] {
            let settings = Settings {
                layers: [low.into(), high.into()],
                dims_per_layer: dims,
                max_bank,
                ..Settings::default()
            };
            let started = std::time::Instant::now();
            let auroc = measured_auroc(settings, &weights, 100, 60);
            eprintln!(
                "{low} + {high}, {dims} per layer, bank <= {max_bank}: AUROC {auroc:.3} ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
}
