//! End-to-end tests of commands over many input files and of models that must not be trusted:
//! one bad file among many is a reported row (with its reason and exit code 4), never the end of
//! the command; weights that are not finite numbers are refused at load, naming the tensor and the
//! file; an output that is not a number never becomes a label.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use common::*;
use crackscope::model::{self, SqueezeNet};

/// The exit code of a command that reported every usable file but some it could not use
/// (README, "Exit codes").
const EXIT_SOME_FAILED: i32 = 4;

/// A random 2-class crackscope checkpoint at 64 px; `tweak` may change its variables first.
fn checkpoint(path: &Path, tweak: impl Fn(&VarMap)) {
    random_model(path, &["Negative", "Positive"], 1, tweak);
}

/// Sets every value of the variable `name` to `value` (one value when `first_only`).
fn set(varmap: &VarMap, name: &str, value: f32, first_only: bool) {
    let vars = varmap.data().lock().unwrap();
    let var = &vars[name];
    let mut values = var
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    if first_only {
        values[0] = value;
    } else {
        values.fill(value);
    }
    var.set(&Tensor::from_vec(values, var.dims(), &Device::Cpu).unwrap())
        .unwrap();
}

fn picture(path: &Path, salt: u8) {
    image::RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([(x * 4) as u8 ^ salt, (y * 4) as u8, salt.wrapping_mul(3)])
    })
    .save(path)
    .unwrap();
}

/// Two good pictures and three bad files (missing, a truncated JPEG, text named .png), in the
/// order they are passed.
fn mixed_files(dir: &Path) -> Vec<PathBuf> {
    let good_a = dir.join("good-a.png");
    let good_b = dir.join("good-b.png");
    picture(&good_a, 1);
    picture(&good_b, 2);
    let jpeg = dir.join("whole.jpg");
    image::RgbImage::from_pixel(64, 64, image::Rgb([90, 90, 90]))
        .save(&jpeg)
        .unwrap();
    let bytes = std::fs::read(&jpeg).unwrap();
    let truncated = dir.join("truncated.jpg");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = dir.join("garbage.png");
    std::fs::write(&garbage, b"not a picture at all, only some words").unwrap();
    vec![good_a, dir.join("missing.png"), truncated, garbage, good_b]
}

fn strs(paths: &[PathBuf]) -> Vec<&str> {
    paths.iter().map(|p| p.to_str().unwrap()).collect()
}

#[test]
fn predict_reports_every_good_file_and_each_bad_one_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("model.safetensors");
    checkpoint(&model_path, |_| {});
    let files = mixed_files(dir.path());
    let mut args = vec!["predict", "--model", model_path.to_str().unwrap()];
    args.extend(strs(&files));
    let out = run(&args);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(EXIT_SOME_FAILED), "{said}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "one row per file, in order:\n{said}");
    for (line, file) in lines.iter().zip(&files) {
        assert!(line.starts_with(file.to_str().unwrap()), "{line}");
    }
    for good in [0, 4] {
        assert!(
            lines[good].contains("Negative ") && lines[good].contains("Positive "),
            "{}",
            lines[good]
        );
    }
    assert!(lines[1].contains("cannot classify") && lines[1].contains("cannot read"));
    assert!(lines[2].contains("cannot classify"), "{}", lines[2]);
    assert!(lines[3].contains("cannot classify"), "{}", lines[3]);
    assert!(
        said.contains("3 of 5 files could not be classified"),
        "{said}"
    );

    // JSON: every file, the bad ones as {path, error}; still exit code 4.
    args.push("--json");
    let out = run(&args);
    assert_eq!(out.status.code(), Some(EXIT_SOME_FAILED), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 5);
    for (row, file) in rows.iter().zip(&files) {
        assert_eq!(row["path"], file.to_str().unwrap());
    }
    assert!(rows[0]["label"].is_string() && rows[4]["label"].is_string());
    for bad in &rows[1..4] {
        assert!(bad["error"].is_string() && bad["label"].is_null(), "{bad}");
    }
}

#[test]
fn eval_reports_unreadable_files_apart_from_labelling_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("model.safetensors");
    checkpoint(&model_path, |_| {});
    let data = dir.path().join("data");
    for (class, salt) in [("Negative", 10), ("Positive", 20)] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..3 {
            picture(&data.join(class).join(format!("{i}.png")), salt + i);
        }
    }
    // The same picture under both classes: left out on purpose, not unreadable.
    picture(&data.join("Negative/twin.png"), 99);
    picture(&data.join("Positive/twin.png"), 99);
    let eval = |json: bool| {
        let mut args = vec![
            "eval",
            model_path.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ];
        if json {
            args.push("--json");
        }
        run(&args)
    };
    let said = ok(&eval(false));
    assert!(said.contains("6 images"), "{said}");
    assert!(
        said.contains("2 files left out on purpose") && !said.contains("unreadable"),
        "{said}"
    );

    // A file that decodes no more: reported, the others evaluated, exit code 4.
    let broken = data.join("Positive/1.png");
    let bytes = std::fs::read(&broken).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    let out = eval(false);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(EXIT_SOME_FAILED), "{said}");
    assert!(said.contains("5 images"), "{said}");
    assert!(
        said.contains("1 unreadable files skipped") && said.contains("Positive/1.png"),
        "{said}"
    );
    assert!(said.contains("2 files left out on purpose"), "{said}");
    assert!(said.contains("1 of 6 files could not be read"), "{said}");
    let out = eval(true);
    assert_eq!(out.status.code(), Some(EXIT_SOME_FAILED), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["images"], 5);
    assert_eq!(report["skipped"].as_array().unwrap().len(), 3);
}

#[test]
fn weights_that_are_not_finite_are_refused_naming_the_tensor_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let nan_model = dir.path().join("nan-model.safetensors");
    checkpoint(&nan_model, |v| {
        set(v, "features.3.squeeze.weight", f32::NAN, true)
    });
    let image = dir.path().join("x.png");
    picture(&image, 5);
    let refused = |out: &std::process::Output, file: &Path, tensor: &str| {
        let said = text(out);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(
            said.contains(file.to_str().unwrap())
                && said.contains(tensor)
                && said.contains("not finite"),
            "{said}"
        );
    };
    let out = run(&[
        "predict",
        "--model",
        nan_model.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    refused(&out, &nan_model, "features.3.squeeze.weight");
    let data = dir.path().join("data");
    for (class, salt) in [("Negative", 10), ("Positive", 20)] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..4 {
            picture(&data.join(class).join(format!("{i}.png")), salt + i);
        }
    }
    let out = run(&[
        "eval",
        nan_model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    refused(&out, &nan_model, "features.3.squeeze.weight");

    // --weights: bare torchvision-named backbone weights with an infinite value.
    let varmap = VarMap::new();
    SqueezeNet::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        None,
    )
    .unwrap();
    model::init_backbone(&varmap, 2).unwrap();
    set(&varmap, "features.12.expand1x1.bias", f32::INFINITY, true);
    let bare = dir.path().join("backbone.safetensors");
    let vars = varmap.data().lock().unwrap();
    let tensors: std::collections::HashMap<String, Tensor> = vars
        .iter()
        .filter(|(k, _)| k.starts_with("features.") || k.starts_with("classifier."))
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    drop(vars);
    candle_core::safetensors::save(&tensors, &bare).unwrap();
    let config = dir.path().join("recipe.toml");
    std::fs::write(
        &config,
        "[data]\nsplit = [0.4, 0.3, 0.3]\ninput_size = 64\n[train]\nepochs = 1\nbatch_size = 2\n\
         device = \"cpu\"\n",
    )
    .unwrap();
    let out = run(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--weights",
        bare.to_str().unwrap(),
        "--run",
        dir.path().join("run").to_str().unwrap(),
        "--headless",
    ]);
    refused(&out, &bare, "features.12.expand1x1.bias");
}

#[test]
fn an_output_that_is_not_a_number_is_never_a_label() {
    let dir = tempfile::tempdir().unwrap();
    // Finite weights whose head overflows: every logit is infinite, every probability NaN.
    let model_path = dir.path().join("overflowing.safetensors");
    checkpoint(&model_path, |v| set(v, "head.weight", 3e38, false));
    let image = dir.path().join("x.png");
    picture(&image, 7);
    let out = run(&[
        "predict",
        "--model",
        model_path.to_str().unwrap(),
        image.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(EXIT_SOME_FAILED), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json[0]["label"].is_null(), "{json}");
    assert!(
        json[0]["error"]
            .as_str()
            .unwrap()
            .contains("not a finite number"),
        "{json}"
    );

    let data = dir.path().join("data");
    for class in ["Negative", "Positive"] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        picture(&data.join(class).join("a.png"), class.as_bytes()[0]);
    }
    let out = run(&[
        "eval",
        model_path.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("not a finite number") && !said.contains("accuracy"),
        "{said}"
    );
}
