//! End-to-end tests of `crackscope scan`: outputs per photo, the JSON's shape, EXIF orientation,
//! the crack class, folders and scores against masks.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use common::*;
use crackscope::model::{init_backbone, init_head, save_checkpoint, CheckpointMeta, SqueezeNet};
use image::{GrayImage, ImageEncoder, Rgb, RgbImage};

/// What `scan` writes is checked with random weights (what it finds is tested in the library
/// with a trained model).
fn checkpoint(dir: &Path, classes: &[&str]) -> PathBuf {
    random_checkpoint(dir, classes)
}

fn photo(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            (x * 5 % 256) as u8,
            (y * 3 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    })
}

/// A random-weights model of `classes` and one photo of `size` in `dir`.
fn model_and_photo(dir: &Path, classes: &[&str], size: (u32, u32)) -> (PathBuf, PathBuf) {
    let image = dir.join("wall.png");
    photo(size.0, size.1).save(&image).unwrap();
    (checkpoint(dir, classes), image)
}

/// A JPEG stored `width` x `height` with EXIF orientation 6 (shown rotated a quarter turn).
fn sideways_jpeg(path: &Path, width: u32, height: u32) {
    let mut exif = b"MM\0\x2a\0\0\0\x08".to_vec();
    exif.extend_from_slice(&[0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90);
    encoder.set_exif_metadata(exif).unwrap();
    encoder
        .write_image(
            photo(width, height).as_raw(),
            width,
            height,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn scan_writes_overlay_and_mask_and_json_per_photo_upright() {
    let dir = tempfile::tempdir().unwrap();
    let model = checkpoint(dir.path(), &["Negative", "Positive"]);
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    photo(200, 130).save(photos.join("wall.png")).unwrap();
    sideways_jpeg(&photos.join("turned.jpg"), 160, 100);
    std::fs::write(photos.join("notes.txt"), "not a photo").unwrap();
    let out = dir.path().join("out");
    let said = ok_stdout(&run(&[
        "scan",
        "--model",
        model.to_str().unwrap(),
        photos.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]));
    let json: serde_json::Value = serde_json::from_str(&said).unwrap();
    let list = json.as_array().unwrap();
    assert_eq!(list.len(), 2, "{said}");
    // Sorted by name: turned.jpg first, 100 x 160 once upright.
    let turned = &list[0];
    assert!(turned["path"].as_str().unwrap().ends_with("turned.jpg"));
    assert_eq!(
        (turned["width"].as_u64(), turned["height"].as_u64()),
        (Some(100), Some(160))
    );
    let wall = &list[1];
    assert_eq!(
        (wall["width"].as_u64(), wall["height"].as_u64()),
        (Some(200), Some(130))
    );
    // 64 px windows at the default stride of 32: x 0, 32, 64, 96, 128, 136; y 0, 32, 64, 66.
    let windows = wall["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 24);
    let last = &windows[23];
    assert_eq!(
        (
            last["x"].as_u64(),
            last["y"].as_u64(),
            last["size"].as_u64()
        ),
        (Some(136), Some(66), Some(64))
    );
    let p = last["probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    let fraction = wall["crack_fraction"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&fraction));
    assert!(wall["regions"].is_array());
    for region in wall["regions"].as_array().unwrap() {
        for key in ["x", "y", "width", "height", "area"] {
            assert!(region[key].is_u64(), "{region}");
        }
    }
    let mask = image::open(out.join("wall-mask.png")).unwrap().to_luma8();
    assert_eq!(mask.dimensions(), (200, 130));
    let in_mask = mask.pixels().filter(|p| p.0[0] > 0).count() as f64 / (200.0 * 130.0);
    assert!((in_mask - fraction).abs() < 1e-9);
    let overlay = image::open(out.join("turned-overlay.png")).unwrap();
    assert_eq!((overlay.width(), overlay.height()), (100, 160));
    // No temporary files left.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // Per photo an overlay, a mask, a map and the windows' descriptors, and the folder's
    // scan.json and scan.lock.
    assert_eq!(names.len(), 10, "{names:?}");
}

#[test]
fn windows_can_be_described_alone_and_the_folder_remembers_it() {
    use crackscope::scan::descriptors;
    let dir = tempfile::tempdir().unwrap();
    let (model, image) = model_and_photo(dir.path(), &["Negative", "Positive"], (200, 130));
    let scan = |out: &Path, extra: &[&str]| {
        let (model, image, out) = (model.to_str(), image.to_str(), out.to_str());
        let args = ["scan", "--model", model.unwrap(), image.unwrap(), "--json"];
        run(&[&args[..], &["--out", out.unwrap()], extra].concat())
    };
    let (shared, alone) = (dir.path().join("shared"), dir.path().join("alone"));
    let shared_json: serde_json::Value =
        serde_json::from_str(&ok_stdout(&scan(&shared, &[]))).unwrap();
    let alone_json: serde_json::Value =
        serde_json::from_str(&ok_stdout(&scan(&alone, &["--descriptors", "alone"]))).unwrap();
    assert_eq!(
        shared_json[0]["windows"], alone_json[0]["windows"],
        "the windows' scores do not change"
    );
    let read = |folder: &Path| descriptors::read(&folder.join("wall-descriptors.safetensors"), 24);
    let (a, b) = (read(&shared).unwrap(), read(&alone).unwrap());
    assert_ne!(
        a, b,
        "windows alone are described without the photo around them"
    );
    let record = std::fs::read_to_string(alone.join("scan.json")).unwrap();
    assert!(record.contains(r#""descriptors": "alone""#), "{record}");
    // Continuing that folder with the other descriptors would mix two kinds in one scan.
    let mixed = scan(&alone, &[]);
    assert!(!mixed.status.success());
    let said = text(&mixed);
    assert!(said.contains("descriptors alone, not shared"), "{said}");
}

#[test]
fn crack_class_is_found_by_name_or_the_error_lists_the_classes() {
    let dir = tempfile::tempdir().unwrap();
    let (model, image) = model_and_photo(dir.path(), &["intact", "damaged"], (64, 64));
    let out = dir.path().join("out");
    let base = [
        "scan",
        "--model",
        model.to_str().unwrap(),
        image.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let failed = run(&base);
    assert!(!failed.status.success());
    let said = text(&failed);
    assert!(
        said.contains("intact, damaged") && said.contains("--positive"),
        "{said}"
    );
    let mut named = base.to_vec();
    named.extend(["--positive", "DAMAGED"]);
    let said = ok(&run(&named));
    assert!(said.contains("crack class damaged"), "{said}");
    let mut unknown = base.to_vec();
    unknown.extend(["--positive", "rust"]);
    let said = text(&run(&unknown));
    assert!(said.contains("unknown class \"rust\""), "{said}");
}

#[test]
fn masks_give_scores_per_photo_and_overall() {
    let dir = tempfile::tempdir().unwrap();
    let model = checkpoint(dir.path(), &["Negative", "Positive"]);
    let photos = dir.path().join("photos");
    let masks = dir.path().join("masks");
    std::fs::create_dir(&photos).unwrap();
    std::fs::create_dir(&masks).unwrap();
    photo(128, 96).save(photos.join("p1.png")).unwrap();
    let mut truth = GrayImage::new(128, 96);
    for x in 10..120 {
        truth.put_pixel(x, 48, image::Luma([255]));
    }
    truth.save(masks.join("p1.png")).unwrap();
    let out = dir.path().join("out");
    let args = [
        "scan",
        "--model",
        model.to_str().unwrap(),
        photos.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--masks",
        masks.to_str().unwrap(),
    ];
    let said = ok(&run(&args));
    assert!(
        said.contains("overall") && said.contains("px IoU"),
        "{said}"
    );
    let overall: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert!(overall["window"].get("f1").is_some() && overall["pixel"].get("iou").is_some());
    // Run again, the scan is continued: the photo's scores are counted again from its pictures.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let again = run(&json_args);
    ok(&again);
    let json: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(json[0]["metrics"]["tolerance"].as_u64(), Some(2));
    let recounted: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(recounted, overall);
    // A mask of the wrong size makes the photo a failed row naming both files.
    GrayImage::new(10, 10).save(masks.join("p1.png")).unwrap();
    let fresh = dir.path().join("fresh");
    let mut fresh_args = args.to_vec();
    fresh_args[5] = fresh.to_str().unwrap();
    let failed = run(&fresh_args);
    assert_eq!(failed.status.code(), Some(4));
    let said = text(&failed);
    assert!(said.contains("p1.png") && said.contains("10x10"), "{said}");
}

/// Peak resident memory of finished child processes, in MiB (Linux reports kilobytes).
fn children_peak_mib() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

/// A 100-megapixel photo scans within 2 GiB (memory stated in src/scan/mod.rs). Ignored by
/// default: writing and scanning the photo takes about a minute on two cores.
#[test]
#[ignore]
fn a_100_megapixel_photo_scans_within_2_gib() {
    let dir = tempfile::tempdir().unwrap();
    let varmap = VarMap::new();
    SqueezeNet::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        Some(2),
    )
    .unwrap();
    init_backbone(&varmap, 1).unwrap();
    init_head(&varmap, 1).unwrap();
    let model = dir.path().join("model.safetensors");
    let names = vec!["Negative".to_string(), "Positive".to_string()];
    let meta = CheckpointMeta {
        input_size: Some(227),
        ..Default::default()
    };
    save_checkpoint(&model, &varmap, &names, &meta).unwrap();
    for (w, h) in [(4032u32, 3024u32), (11_547, 8_660)] {
        let path = dir.path().join(format!("photo-{w}x{h}.jpg"));
        photo(w, h).save(&path).unwrap();
        let start = std::time::Instant::now();
        ok(&run(&[
            "scan",
            "--model",
            model.to_str().unwrap(),
            path.to_str().unwrap(),
            "--out",
            dir.path().join(format!("out-{w}x{h}")).to_str().unwrap(),
        ]));
        let peak = children_peak_mib();
        eprintln!(
            "{w}x{h}: scan command {:.2} s (decode, scan, PNGs), peak memory so far {peak:.0} MiB",
            start.elapsed().as_secs_f64()
        );
        assert!(peak < 2048.0, "{w}x{h}: {peak:.0} MiB");
    }
}

#[test]
fn synthetic_photos_come_with_exact_masks_that_scan_reads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("surfaces");
    ok(&run(&[
        "synth",
        "--out",
        root.to_str().unwrap(),
        "--photos",
        "4",
        "--size",
        "160",
        "--detail",
        "64",
    ]));
    for i in 1..=4 {
        let photo = image::open(root.join(format!("photos/photo_{i:05}.jpg"))).unwrap();
        let mask = image::open(root.join(format!("masks/photo_{i:05}.png")))
            .unwrap()
            .to_luma8();
        assert_eq!((photo.width(), photo.height()), (160, 160));
        assert_eq!(mask.dimensions(), (160, 160));
        let cracked = mask.pixels().filter(|p| p.0[0] == 255).count();
        // Every fourth photo is crack-free; the others have a crack path across them.
        assert_eq!(
            cracked == 0,
            i % 4 == 0,
            "photo {i}: {cracked} crack pixels"
        );
        assert!(mask.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
    }
    let model = checkpoint(dir.path(), &["Negative", "Positive"]);
    let said = ok(&run(&[
        "scan",
        "--model",
        model.to_str().unwrap(),
        root.join("photos").to_str().unwrap(),
        "--masks",
        root.join("masks").to_str().unwrap(),
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]));
    assert!(
        said.contains("photo_00004.jpg") && said.contains("overall"),
        "{said}"
    );
    let err = text(&run(&[
        "synth",
        "--out",
        root.to_str().unwrap(),
        "--photos",
        "1",
        "--size",
        "100",
        "--detail",
        "227",
    ]));
    assert!(err.contains("--detail 227"), "{err}");
}

#[test]
fn a_checkpoint_without_class_names_scans_with_classes_given() {
    let dir = tempfile::tempdir().unwrap();
    let named = checkpoint(dir.path(), &["Negative", "Positive"]);
    // The same tensors as a PyTorch user saves them: no metadata at all.
    let bytes = std::fs::read(&named).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let bare = dir.path().join("bare.safetensors");
    std::fs::write(&bare, safetensors::serialize(file.tensors(), None).unwrap()).unwrap();
    let wall = dir.path().join("wall.png");
    photo(150, 100).save(&wall).unwrap();
    let out = dir.path().join("out");
    let scan = |extra: &[&str]| {
        let mut args = vec![
            "scan",
            "--model",
            bare.to_str().unwrap(),
            wall.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let refused = scan(&["--input-size", "64"]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("--classes"), "{}", text(&refused));
    ok(&scan(&[
        "--classes",
        "Negative,Positive",
        "--input-size",
        "64",
    ]));
    assert!(out.join("wall-overlay.png").is_file() && out.join("wall-mask.png").is_file());
}

/// A one-class model file on a random backbone (no downloads): a bank of 32-pixel-window patches
/// of one photo, threshold 1.5 (and for scans `scan_threshold`).
fn one_class_model(dir: &Path, scan_threshold: Option<f32>) -> PathBuf {
    use crackscope::detector::oneclass::{features::Extractor, model::fit_bank, threshold};
    let varmap = VarMap::new();
    let model = SqueezeNet::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        None,
    )
    .unwrap();
    init_backbone(&varmap, 2).unwrap();
    let settings = crackscope::detector::oneclass::Settings {
        input_size: 32,
        ..Default::default()
    };
    let extractor = Extractor::new(model, varmap, settings).unwrap();
    let normal = photo(96, 96);
    let crops: Vec<RgbImage> = [(0, 0), (32, 0), (0, 32), (64, 64)]
        .iter()
        .map(|&(x, y)| image::imageops::crop_imm(&normal, x, y, 32, 32).to_image())
        .collect();
    let bank = fit_bank(&extractor, &crops, &mut |_| {}).unwrap();
    let model = crackscope::detector::oneclass::OneClassModel {
        extractor,
        bank,
        threshold: threshold::Threshold {
            value: 1.5,
            rule: threshold::ThresholdRule::NormalFalsePositiveRate {
                false_positive_rate: 0.01,
            },
        },
        scan_threshold: scan_threshold.map(|value| threshold::Threshold {
            value,
            rule: threshold::ThresholdRule::NormalFalsePositiveRate {
                false_positive_rate: 0.01,
            },
        }),
        normal_class: "Negative".into(),
        classes: vec!["Negative".into(), "Positive".into()],
    };
    let path = dir.join("oneclass.safetensors");
    crackscope::detector::oneclass::model_file::save(&model, &path).unwrap();
    path
}

#[test]
fn a_one_class_model_scans_with_anomaly_scores_on_its_threshold_scale() {
    // A model file written before scans shared one pass has no scan threshold: it scans window
    // by window against its threshold; a newer one in one pass against its scan threshold.
    for (scan_threshold, t) in [(None, 1.5), (Some(1.25), 1.25)] {
        one_class_scan_on_threshold_scale(scan_threshold, t);
    }
}

fn one_class_scan_on_threshold_scale(scan_threshold: Option<f32>, t: f64) {
    let dir = tempfile::tempdir().unwrap();
    let model = one_class_model(dir.path(), scan_threshold);
    let image = dir.path().join("wall.png");
    photo(100, 70).save(&image).unwrap();
    let out = dir.path().join("out");
    // A folder per setting (a folder holds one scan); --json prints the same scan.
    let args = |extra: &[&str]| {
        let setting: Vec<&str> = extra.iter().copied().filter(|a| *a != "--json").collect();
        let folder = PathBuf::from(format!("{}{}", out.display(), setting.join("_")));
        let mut a = vec![
            "scan".to_string(),
            "--model".into(),
            model.display().to_string(),
            image.display().to_string(),
            "--out".into(),
            folder.display().to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let scan = |extra: &[&str]| {
        let all = args(extra);
        run(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let first = scan(&["--json"]);
    let said = ok(&first);
    let json: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let wall = &json[0];
    // 32 px windows (the model's input size) at the default stride of 16.
    let windows = wall["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 6 * 4, "{said}");
    for w in windows {
        let (s, p) = (
            w["score"].as_f64().unwrap(),
            w["probability"].as_f64().unwrap(),
        );
        assert!((p - s / (s + t)).abs() < 1e-5, "{w}");
    }
    let mask = image::open(out.join("wall-mask.png")).unwrap().into_luma8();
    assert_eq!(mask.dimensions(), (100, 70));
    let in_mask = mask.as_raw().iter().filter(|&&v| v > 0).count() as f64 / 7000.0;
    assert!((wall["crack_fraction"].as_f64().unwrap() - in_mask).abs() < 1e-9);
    // Every distance is at least 0, so threshold 0 takes the whole photo.
    let all = scan(&["--json", "--threshold", "0"]);
    ok(&all);
    let all: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(all[0]["crack_fraction"].as_f64(), Some(1.0));
    // The table says what the numbers are.
    let table = ok(&scan(&[]));
    assert!(
        table.contains("one-class model (normal class Negative)"),
        "{table}"
    );
    // A one-class model has no crack class to name, nor window descriptors to compute.
    for (flag, value) in [("--positive", "Positive"), ("--descriptors", "alone")] {
        let refused = scan(&[flag, value]);
        assert!(!refused.status.success());
        let err = text(&refused);
        assert!(err.contains("one-class") && err.contains(flag), "{err}");
    }
}
