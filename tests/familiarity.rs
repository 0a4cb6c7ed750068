//! Unfamiliar input: `predict` says when an image is a whole photo (scan is the command for
//! those) and, with a model file carrying a familiarity summary, how far each image (and each
//! scanned photo) is from the training images; model files without a summary still load, answer
//! as before, and say once that they cannot tell.

mod common;

use std::path::{Path, PathBuf};

use common::{ok, random_checkpoint, run, text};
use crackscope::data::synth::{render, render_photo};
use crackscope::detector::familiarity::Familiarity;

fn save(dir: &Path, name: &str, image: &image::RgbImage) -> PathBuf {
    let path = dir.join(name);
    image.save(&path).unwrap();
    path
}

fn predict_json(model: &Path, images: &[&Path]) -> (Vec<serde_json::Value>, String) {
    let mut args = vec!["predict", "--json", "--model", model.to_str().unwrap()];
    args.extend(images.iter().map(|p| p.to_str().unwrap()));
    let out = run(&args);
    assert!(out.status.success(), "{}", text(&out));
    let json: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    (json, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Synthetic surfaces at the model's 64-pixel input size, pooled as the summary pools them.
fn summary_of_synthetic_surfaces(model: &Path, count: usize) -> Familiarity {
    let detector =
        crackscope::detector::Detector::open(model, &candle_core::Device::Cpu, &Default::default())
            .unwrap();
    let images: Vec<_> = (0..count as u64)
        .map(|i| render(1000 + i, 64, i % 2 == 0).image)
        .collect();
    let rows: Vec<f32> = detector.pooled_features(&images).unwrap().concat();
    Familiarity::fit(&rows, rows.len() / count, "fire5-concat mean", count).unwrap()
}

#[test]
fn predict_on_a_whole_photo_points_to_scan_and_old_models_say_they_cannot_check() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_checkpoint(dir.path(), &["Negative", "Positive"]);
    // 400 px for a 64 px model: over 3 input sizes. 150 px is not.
    let photo = save(
        dir.path(),
        "photo.png",
        &render_photo(7, 400, 227, true).image,
    );
    let patch = save(
        dir.path(),
        "patch.png",
        &render_photo(8, 150, 227, true).image,
    );
    let (json, stderr) = predict_json(&model, &[&photo, &patch]);
    let hint = &json[0]["oversized"];
    assert_eq!(hint["width"], 400);
    assert_eq!(hint["input_size"], 64);
    assert!(hint["advice"].as_str().unwrap().contains("crackscope scan"));
    assert!(json[1].get("oversized").is_none(), "{}", json[1]);
    assert!(
        stderr.contains("photo.png is 400x400") && stderr.contains("crackscope scan"),
        "{stderr}"
    );
    assert!(!stderr.contains("patch.png is"), "{stderr}");
    // The model file predates summaries: answers as before, no field, one note.
    assert!(json.iter().all(|a| a.get("familiarity").is_none()));
    assert_eq!(
        stderr.matches("carries no familiarity summary").count(),
        1,
        "{stderr}"
    );
    // The plain output is unchanged on stdout; the warning goes to stderr.
    let plain = run(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        photo.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&plain.stdout);
    assert!(!stdout.contains("scan"), "{stdout}");
}

#[test]
fn a_summary_travels_in_the_model_file_and_predict_and_scan_report_each_images_distance() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_checkpoint(dir.path(), &["Negative", "Positive"]);
    let patch = save(dir.path(), "patch.png", &render(5, 64, true).image);
    let (before, _) = predict_json(&model, &[&patch]);

    let summary = summary_of_synthetic_surfaces(&model, 60);
    summary.attach(&model).unwrap();
    let read = Familiarity::read(&model)
        .unwrap()
        .expect("the summary is in the file");
    assert_eq!(read.stored, summary.stored);
    assert_eq!(read.dim(), 256);
    // The bank is fitted on the float16 values the file keeps: the same distances either way.
    let probe: Vec<f32> = (0..256).map(|i| ((i * 7) % 13) as f32).collect();
    assert_eq!(read.distance(&probe), summary.distance(&probe));

    // The file still loads strictly and answers exactly as before; the answer has the fields.
    let (after, stderr) = predict_json(&model, &[&patch]);
    assert_eq!(before[0]["probabilities"], after[0]["probabilities"]);
    let check = &after[0]["familiarity"];
    assert!(check["distance"].as_f64().unwrap() >= 0.0, "{check}");
    assert_eq!(
        check["threshold"].as_f64().unwrap() as f32,
        summary.stored.threshold
    );
    assert_eq!(check["unfamiliar"], false, "{check}");
    assert!(!stderr.contains("familiarity summary"), "{stderr}");

    // A scan records each photo's distance in scan.json and its JSON output.
    let photo = save(
        dir.path(),
        "wall.png",
        &render_photo(9, 256, 64, false).image,
    );
    let out_dir = dir.path().join("scan");
    let said = ok(&run(&[
        "scan",
        "--model",
        model.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
        photo.to_str().unwrap(),
    ]));
    assert!(!said.contains("carries no familiarity summary"), "{said}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("scan.json")).unwrap()).unwrap();
    let photo_check = &record["photos"][0]["familiarity"];
    assert!(
        photo_check["distance"].as_f64().is_some() && photo_check["unfamiliar"].is_boolean(),
        "{record}"
    );
}
