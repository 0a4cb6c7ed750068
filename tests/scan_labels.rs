//! A scan folder's labels as training data: `train --data SCAN_FOLDER` (and `patches --scan`)
//! cut the windows of `labels.csv` from the photos, and `train --init RUN` starts from a run's
//! model. The labels file is written here as another tool would write it.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use common::*;
use crackscope::data::patches::{label_window, POSITIVE};

/// A random-weight checkpoint of 64-pixel input classifying `classes`.
fn checkpoint(path: &Path, classes: &[&str], seed: u64) -> PathBuf {
    random_model(path, classes, seed, |_| {})
}

/// Eight synthetic 192 px photos with masks, scanned with a random model into `dir/scan`, and a
/// labels.csv that answers every window from the true mask (crack / no crack / skip).
fn labelled_scan(dir: &Path) -> (PathBuf, PathBuf, HashMap<&'static str, usize>) {
    let surfaces = synth_photos(&dir.join("surfaces"), 8, 192);
    let model = checkpoint(&dir.join("start.safetensors"), &["Negative", "Positive"], 1);
    let scan = dir.join("scan");
    ok(&run(&[
        "scan",
        "--model",
        model.to_str().unwrap(),
        surfaces.join("photos").to_str().unwrap(),
        "--out",
        scan.to_str().unwrap(),
    ]));
    let record = crackscope::scan::output::read(&scan).unwrap();
    let mut csv = String::from("photo,x,y,size,label\n");
    let mut counts = HashMap::new();
    for photo in &record.photos {
        let stem = photo.photo.file_stem().unwrap().to_str().unwrap();
        let mask = image::open(surfaces.join("masks").join(format!("{stem}.png")))
            .unwrap()
            .to_luma8();
        for w in &photo.windows {
            let label = match label_window(&mask, w.x, w.y, w.size, 0.01) {
                Some(c) if c == POSITIVE => "crack",
                Some(_) => "no-crack",
                None => "skip",
            };
            *counts.entry(label).or_default() += 1;
            csv += &format!(
                "\"{}\",{},{},{},{label}\n",
                photo.photo.display(),
                w.x,
                w.y,
                w.size
            );
        }
    }
    std::fs::write(scan.join("labels.csv"), csv).unwrap();
    assert!(counts["crack"] > 0 && counts["no-crack"] > 0, "{counts:?}");
    (scan, model, counts)
}

fn recipe(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("recipe.toml");
    std::fs::write(
        &path,
        format!(
            "[data]\nsplit = [0.6, 0.2, 0.2]\ninput_size = 64\n\
             [train]\nbatch_size = 16\nepochs = 1\nval_every = 50\ndevice = \"cpu\"\n{extra}"
        ),
    )
    .unwrap();
    path
}

fn tensor(path: &Path, name: &str) -> Vec<f32> {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    tensors[name].flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn a_labelled_scan_folder_is_a_dataset_and_init_starts_from_a_runs_model() {
    let dir = tempfile::tempdir().unwrap();
    let (scan, start, counts) = labelled_scan(dir.path());
    // A learning rate too small to move anything: the trained model is the --init model.
    let config = recipe(dir.path(), "learning_rate = 1e-12\n");
    let run_dir = dir.path().join("run");
    let said = ok(&run(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--data",
        scan.to_str().unwrap(),
        "--init",
        start.to_str().unwrap(),
        "--run",
        run_dir.to_str().unwrap(),
        "--headless",
    ]));
    assert!(said.contains("starting from the model of"), "{said}");
    let labelled = counts["crack"] + counts["no-crack"];
    assert!(
        said.contains(&format!("{labelled} labelled windows of 8 photos")),
        "{said}"
    );
    // The windows were cut into the run, as a patch set whose photos stay in one split each.
    let cut = run_dir.join("labels-1-scan");
    let manifest = std::fs::read_to_string(cut.join("patches.csv")).unwrap();
    assert_eq!(manifest.lines().count(), labelled + 1);
    let positives = std::fs::read_dir(cut.join("Positive")).unwrap().count();
    assert_eq!(positives, counts["crack"]);
    let split: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("split.json")).unwrap()).unwrap();
    let root = PathBuf::from(split["root"].as_str().unwrap());
    let photo_of: HashMap<String, String> = manifest
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[2].to_string())
        })
        .collect();
    let mut home: HashMap<String, &str> = HashMap::new();
    for part in ["train", "val", "test"] {
        for entry in split[part].as_array().unwrap() {
            let path = root.join(entry["path"].as_str().unwrap());
            let file = path.strip_prefix(cut.canonicalize().unwrap()).unwrap();
            let photo = photo_of[&file.to_string_lossy().into_owned()].clone();
            let first = *home.entry(photo.clone()).or_insert(part);
            assert_eq!(first, part, "windows of {photo} in {first} and {part}");
        }
    }
    // The head (not only the backbone) came from --init; the recipe says where from.
    let trained = run_dir.join("last.safetensors");
    for name in ["head.weight", "features.0.weight"] {
        let (a, b) = (tensor(&start, name), tensor(&trained, name));
        let most = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(most < 1e-5, "{name} moved by {most}");
    }
    let config = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(config.contains("init = "), "{config}");

    // `patches --scan` writes the same windows where the user says.
    let out = dir.path().join("patches");
    let said = ok(&run(&[
        "patches",
        "--scan",
        scan.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(
        said.contains(&format!("{} Positive", counts["crack"])),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("patches.csv")).unwrap(),
        manifest
    );
}

#[test]
fn init_with_other_classes_and_scan_folders_without_labels_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (scan, _, _) = labelled_scan(dir.path());
    let config = recipe(dir.path(), "");
    let other = checkpoint(&dir.path().join("other.safetensors"), &["A", "B"], 2);
    let run_dir = dir.path().join("run");
    let out = run(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--data",
        scan.to_str().unwrap(),
        "--init",
        other.to_str().unwrap(),
        "--run",
        run_dir.to_str().unwrap(),
        "--headless",
    ]);
    let said = text(&out);
    assert!(!out.status.success());
    assert!(
        said.contains("other.safetensors")
            && said.contains("[\"A\", \"B\"]")
            && said.contains("same classes"),
        "{said}"
    );
    assert!(!run_dir.exists(), "a failed start leaves no run behind");
    // A run directory without a model yet, and a path that is nothing.
    let out = run(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--data",
        scan.to_str().unwrap(),
        "--init",
        dir.path().join("nothing").to_str().unwrap(),
        "--headless",
    ]);
    assert!(text(&out).contains("no such run directory or model file"));

    // A scan folder whose labels file names a photo the scan does not have.
    std::fs::write(
        scan.join("labels.csv"),
        "photo,x,y,size,label\n/elsewhere/p.jpg,0,0,64,crack\n",
    )
    .unwrap();
    let out = run(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--data",
        scan.to_str().unwrap(),
        "--headless",
    ]);
    let said = text(&out);
    assert!(
        !out.status.success()
            && said.contains("labels.csv line 2")
            && said.contains("not a photo of this scan"),
        "{said}"
    );
    // No labels at all.
    std::fs::remove_file(scan.join("labels.csv")).unwrap();
    let out = run(&[
        "patches",
        "--scan",
        scan.to_str().unwrap(),
        "--out",
        dir.path().join("p").to_str().unwrap(),
    ]);
    let said = text(&out);
    assert!(
        !out.status.success() && said.contains("has no labelled windows"),
        "{said}"
    );
}

#[test]
fn scans_at_several_scales_keep_every_scales_windows_and_record_the_scales() {
    let dir = tempfile::tempdir().unwrap();
    let surfaces = synth_photos(&dir.path().join("surfaces"), 2, 256);
    let model = checkpoint(
        &dir.path().join("m.safetensors"),
        &["Negative", "Positive"],
        1,
    );
    let scan = |out: &Path, scales: &str| {
        run(&[
            "scan",
            "--model",
            model.to_str().unwrap(),
            surfaces.join("photos").to_str().unwrap(),
            "--masks",
            surfaces.join("masks").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--scale",
            scales,
        ])
    };
    let out = dir.path().join("scan");
    ok(&scan(&out, "0.5,1"));
    let record = crackscope::scan::output::read(&out).unwrap();
    assert_eq!(
        record.settings.as_ref().unwrap().scales,
        Some(vec![0.5, 1.0])
    );
    for photo in &record.photos {
        // At 0.5 the photo is 128 px: 64-px windows at stride 32, 3 x 3, each 128 px of the
        // photo; at 1, 7 x 7 of 64 px.
        let sizes = |s: u32| photo.windows.iter().filter(|w| w.size == s).count();
        assert_eq!((sizes(128), sizes(64), photo.windows.len()), (9, 49, 58));
        assert!(photo
            .windows
            .iter()
            .all(|w| w.x + w.size <= 256 && w.y + w.size <= 256));
        assert!(photo.metrics.is_some(), "scored against the masks");
    }
    // The same folder with other scales is another scan: refused, naming the difference.
    let said = text(&scan(&out, "0.25"));
    assert!(said.contains("scales"), "{said}");
    // A scale that leaves the photo smaller than a window is that photo's error.
    let small = scan(&dir.path().join("small"), "0.2");
    assert_eq!(small.status.code(), Some(4), "{}", text(&small));
    assert!(text(&small).contains("smaller than one 64-pixel window"));
    // Patches at a scale: cut from the halved photo and mask.
    let cut = dir.path().join("cut");
    ok(&run(&[
        "patches",
        "--photos",
        surfaces.join("photos").to_str().unwrap(),
        "--masks",
        surfaces.join("masks").to_str().unwrap(),
        "--out",
        cut.to_str().unwrap(),
        "--size",
        "64",
        "--scale",
        "0.5",
    ]));
    let manifest = std::fs::read_to_string(cut.join("patches.csv")).unwrap();
    assert!(
        manifest.lines().skip(1).all(|l| {
            let f: Vec<u32> = l.split(',').skip(3).map(|v| v.parse().unwrap()).collect();
            f[0] + f[2] <= 128 && f[1] + f[2] <= 128
        }),
        "{manifest}"
    );
}
