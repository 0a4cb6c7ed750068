//! End-to-end checks of fitting and scoring on synthetic concrete (normal = synthetic Negative)
//! with the ImageNet weights; they skip, saying why, where the weights are absent.

use std::path::PathBuf;

use image::RgbImage;

use super::features::Extractor;
use super::model::{fit_bank, score_with};
use super::ranking::auroc;
use super::Settings;
use crate::data::synth::{image_seed, render};

/// The shared ImageNet weights, or None (after saying why): random features would not say
/// whether one-class scoring works.
pub(crate) fn imagenet_weights() -> Option<PathBuf> {
    crate::core::testdata::shared_data("pretrained/squeezenet1_1.safetensors")
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
    // 128 px keeps the test quick; the patch grid (fire7's) is then 7x7.
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
    let grid = Extractor::imagenet(&weights, settings(1)).unwrap().grid();
    assert!(
        12 * grid * grid / 2 > 50,
        "the ratio alone stays under the bound"
    );
    assert_eq!(a.len(), 50, "half of 12 images x {grid}x{grid} patches");
    assert_eq!(a, fit(1));
    assert_ne!(a, fit(2));
    // One image is too few.
    let extractor = Extractor::imagenet(&weights, settings(1)).unwrap();
    let err = fit_bank(&extractor, &images[..1], &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("at least 2"), "{err}");
}

/// At the default settings (at 128 px, so that the test is quick: fire7's grid is then 7x7, and
/// without the ratio's cap, so that 24 images' 1176 patches give the bank its full default size
/// and it is searched with lower bounds, as from hundreds of images): the same images and seed
/// give the same bank on any number of threads, and their scores agree with a brute-force search.
#[test]
fn default_fit_is_deterministic_on_any_thread_count_and_scores_exactly() {
    let Some(weights) = imagenet_weights() else {
        return;
    };
    let size = 128;
    let settings = Settings {
        input_size: size,
        coreset_ratio: 1.0,
        ..Settings::default()
    };
    let images = synthetic(24, false, 0, size);
    let fit = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let extractor = Extractor::imagenet(&weights, settings.clone()).unwrap();
            fit_bank(&extractor, &images, &mut |_| {}).unwrap()
        })
    };
    let one = fit(1);
    assert_eq!(one, fit(3), "the bank depends on the thread count");
    assert_eq!(one, fit(2));
    let extractor = Extractor::imagenet(&weights, settings.clone()).unwrap();
    let patches = 24 * extractor.grid() * extractor.grid();
    assert_eq!(
        one.len(),
        super::bank::coreset_size(patches, settings.coreset_ratio, settings.max_bank)
            .min(settings.max_candidates.min(patches))
    );
    assert_eq!(
        one.len(),
        settings.max_bank,
        "the default bank at its full size"
    );
    let queries = extractor
        .patches(&synthetic(2, true, 0, size))
        .unwrap()
        .concat();
    let searched = one.nearest_squared(&queries);
    let brute = one.nearest_squared_brute_force(&queries);
    for (s, b) in searched.iter().zip(&brute) {
        assert!((s - b).abs() <= 1e-3 * b.max(1.0), "{s} vs {b}");
    }
}

#[test]
fn model_file_round_trip_scores_the_same_and_bad_files_are_errors() {
    use super::model::OneClassModel;
    use super::model_file::{is_oneclass_file, load, save};
    use super::threshold::{Threshold, ThresholdRule};
    let Some(weights) = imagenet_weights() else {
        return;
    };
    let settings = Settings {
        input_size: 96,
        max_bank: 64,
        seed: 3,
        ..Settings::default()
    };
    let extractor = Extractor::imagenet(&weights, settings).unwrap();
    let bank = fit_bank(&extractor, &synthetic(6, false, 0, 96), &mut |_| {}).unwrap();
    let model = OneClassModel {
        extractor,
        bank,
        threshold: Threshold {
            value: 1.5,
            rule: ThresholdRule::BestF1 { f1: 0.9 },
        },
        scan_threshold: Some(Threshold {
            value: 1.25,
            rule: ThresholdRule::BestF1 { f1: 0.8 },
        }),
        normal_class: "Negative".into(),
        classes: vec!["Negative".into(), "Positive".into()],
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    save(&model, &path).unwrap();
    assert!(is_oneclass_file(&path));
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "a temporary file was left behind");
    let loaded = load(&path).unwrap();
    assert_eq!(loaded.bank, model.bank);
    assert_eq!(loaded.threshold, model.threshold);
    assert_eq!(loaded.scan_threshold, model.scan_threshold);
    assert_eq!(loaded.settings(), model.settings());
    assert_eq!(
        (loaded.normal_class.as_str(), &loaded.classes),
        ("Negative", &model.classes)
    );
    let images = synthetic(3, true, 0, 96);
    assert_eq!(
        loaded.score(&images).unwrap(),
        model.score(&images).unwrap()
    );

    // Not one-class files: a plain weights file is not taken for one; a truncated one is an
    // error naming the file.
    assert!(!is_oneclass_file(&weights));
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = load(&cut).err().expect("a truncated model is an error");
    assert!(format!("{err:#}").contains("cut.safetensors"), "{err:#}");
}
