//! `train --one-class` and the commands that read its model, end to end on synthetic data
//! (normal = synthetic Negative). They need the ImageNet weights and skip, saying so, without them.

mod common;

use std::path::Path;

use common::*;

fn weights() -> Option<String> {
    shared_data("pretrained/squeezenet1_1.safetensors").map(|p| p.display().to_string())
}

fn synth(dir: &Path, per_class: usize) -> String {
    let data = dir.join("data");
    let per_class = per_class.to_string();
    ok(&run(&[
        "synth",
        "--out",
        data.to_str().unwrap(),
        "--per-class",
        &per_class,
        "--seed",
        "5",
    ]));
    data.display().to_string()
}

/// `train --one-class` on half of `data` into `run_dir`, headless; what it printed.
fn fit(data: &str, weights: &str, run_dir: &str) -> String {
    ok(&run(&[
        "train",
        "--one-class",
        "--data",
        data,
        "--weights",
        weights,
        "--split",
        "0.5,0.25,0.25",
        "--run",
        run_dir,
        "--headless",
    ]))
}

#[test]
fn one_class_run_scores_synthetic_cracks_above_surfaces() {
    let Some(weights) = weights() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 40);
    let run_dir = dir.path().join("run");
    let run_s = run_dir.to_str().unwrap();
    let out = fit(&data, &weights, run_s);
    assert!(out.contains("AUROC"), "{out}");
    // The fit also chooses the threshold scans read windows against, keeps it in the file and
    // reports it.
    let model =
        crackscope::detector::oneclass::model_file::load(&run_dir.join("model.safetensors"))
            .unwrap();
    assert!(model.scan_threshold.is_some());
    // The fit's images' pooled features travel with the model (80 normal training images).
    let summary =
        crackscope::detector::familiarity::Familiarity::read(&run_dir.join("model.safetensors"))
            .unwrap()
            .expect("the fit adds a familiarity summary");
    assert_eq!(summary.stored.features, "patch features mean");
    assert_eq!(summary.dim(), model.settings().dim());
    assert!(
        out.contains("scan threshold     "),
        "the report names it too:\n{out}"
    );
    for file in [
        "model.safetensors",
        "report.json",
        "predictions.csv",
        "metrics.jsonl",
        "split.json",
    ] {
        assert!(run_dir.join(file).is_file(), "{file} missing:\n{out}");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap();
    let auroc = report["auroc"]
        .as_f64()
        .expect("both kinds in the test split");
    assert!(auroc > 0.85, "test AUROC {auroc}: {report}");
    assert!(report["average_precision"].as_f64().is_some());
    assert_eq!(report["normal_class"], "Negative");
    let confusion: Vec<Vec<u64>> = serde_json::from_value(report["confusion"].clone()).unwrap();
    assert_eq!(confusion.iter().flatten().sum::<u64>(), 20);
    let predictions = std::fs::read_to_string(run_dir.join("predictions.csv")).unwrap();
    assert_eq!(predictions.lines().count(), 21, "{predictions}");
    assert!(predictions.starts_with("path,truth,kind,score,verdict"));
    let log = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    assert!(log.contains("\"event\":\"tested\""), "{log}");
    dashboard_reads_the_run(&run_dir, auroc);
    // TensorBoard's pictures: the confusion matrix and four anomaly maps, decoded from PNG.
    let pictures = crackscope::run::tensorboard::read_pictures(&run_dir).unwrap();
    let tags: Vec<&str> = pictures.iter().map(|(_, tag, _)| tag.as_str()).collect();
    assert_eq!(tags[0], "test/confusion", "{tags:?}");
    assert_eq!(
        tags.iter()
            .filter(|t| t.starts_with("test/anomaly_map/"))
            .count(),
        4,
        "{tags:?}"
    );

    // eval on the run: the same figures; --json carries them.
    let eval = ok(&run(&["eval", run_s, "--json"]));
    let again: serde_json::Value = serde_json::from_str(&eval).unwrap();
    assert_eq!(again["auroc"], report["auroc"]);

    // predict: score and verdict per image.
    let crack = Path::new(&data).join("Positive/pos_00001.jpg");
    let out = ok(&run(&[
        "predict",
        "--model",
        run_s,
        crack.to_str().unwrap(),
    ]));
    assert!(out.contains("anomaly score"), "{out}");

    // gradcam: the anomaly map over test images, in the run directory.
    ok(&run(&["gradcam", "--run", run_s, "--count", "4"]));
    let figure = image::open(run_dir.join("anomaly-maps.png")).unwrap();
    assert!(figure.width() > 227);
}

/// What the dashboard gets from a fitted run: the fit's events in `metrics.jsonl` (every stage
/// to its end, the bank within its bound, the test scores agreeing with report.json), and the
/// browser's items and anomaly maps from the one-class gallery.
fn dashboard_reads_the_run(run_dir: &Path, auroc: f64) {
    use crackscope::app::gallery::{Gallery, PictureSpec, RunGallery};
    use crackscope::detector::Kind;
    use crackscope::run::event::{Event, FitStage};
    use crackscope::run::RunDir;

    let read = crackscope::run::log::read_from(&run_dir.join("metrics.jsonl"), 0).unwrap();
    assert_eq!(read.skipped_lines, 0);
    let events = read.events;
    let Some(Event::FitStarted(start)) = events.first() else {
        panic!("a fit starts with fit_started: {events:?}")
    };
    assert_eq!(
        (start.normal_class.as_str(), start.train_images),
        ("Negative", 20)
    );
    for stage in FitStage::ALL {
        let last = events.iter().rev().find_map(|e| match e {
            Event::Fitting {
                stage: s,
                done,
                total,
                ..
            } if *s == stage => Some((*done, *total)),
            _ => None,
        });
        let (done, total) = last.unwrap_or_else(|| panic!("no {stage:?} progress: {events:?}"));
        assert!(
            done == total && total > 0,
            "{stage:?} ends at {done}/{total}"
        );
    }
    let bank = events.iter().find_map(|e| match e {
        Event::Fitted { bank_entries, .. } => Some(*bank_entries),
        _ => None,
    });
    assert!(
        bank.is_some_and(|b| b > 0 && b <= start.max_bank),
        "{bank:?}"
    );
    let scores = events
        .iter()
        .find_map(|e| match e {
            Event::AnomalyScored(scores) => Some(scores.clone()),
            _ => None,
        })
        .expect("anomaly_scored");
    assert_eq!(scores.auroc, Some(auroc));
    let h = &scores.histogram;
    assert_eq!(
        (
            h.normal.iter().sum::<usize>(),
            h.anomalous.iter().sum::<usize>()
        ),
        (10, 10)
    );

    let run = RunDir::open(run_dir).unwrap();
    assert_eq!(run.model_kind(), Kind::OneClass);
    let mut gallery = RunGallery::open(&run, Kind::OneClass).unwrap();
    assert_eq!(gallery.classes(), ["normal", "anomaly"]);
    let items = gallery.test_items().unwrap();
    assert_eq!(items.len(), 20);
    assert_eq!(items.iter().filter(|i| i.truth == 1).count(), 10);
    let with_map = gallery.picture(0, &PictureSpec::default()).unwrap();
    let plain = PictureSpec {
        overlay: false,
        ..PictureSpec::default()
    };
    let photo = gallery.picture(0, &plain).unwrap();
    assert_eq!(with_map.dimensions(), photo.dimensions());
    assert_ne!(with_map, photo, "the anomaly map is drawn over the photo");
    let saved = gallery.save_picture(0, &PictureSpec::default()).unwrap();
    // Named by kind and file: the same file name in two class folders never collides.
    assert!(saved.ends_with(Path::new("pictures").join(format!(
        "{}-{}-anomaly.png",
        gallery.classes()[items[0].truth],
        items[0].path.file_stem().unwrap().to_string_lossy()
    ))));
}

#[test]
fn one_class_bad_input_gets_clear_errors() {
    let Some(weights) = weights() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 4);
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--one-class", "--data", &data, "--headless"];
        args.extend_from_slice(extra);
        run(&args)
    };
    // No normal class of that name: the classes are listed.
    let out = train(&["--weights", &weights, "--normal", "sound"]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("Negative, Positive"), "{said}");
    // One normal training image.
    let out = train(&["--weights", &weights, "--split", "0.25,0.5,0.25"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("at least 2 training images"),
        "{}",
        text(&out)
    );
    // No ImageNet weights.
    let out = train(&[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("ImageNet weights"), "{}", text(&out));
    // No class named like a normal one and no --normal.
    let renamed = dir.path().join("renamed");
    std::fs::create_dir_all(&renamed).unwrap();
    std::fs::rename(Path::new(&data).join("Negative"), renamed.join("sound")).unwrap();
    std::fs::rename(Path::new(&data).join("Positive"), renamed.join("cracked")).unwrap();
    let out = run(&[
        "train",
        "--one-class",
        "--data",
        renamed.to_str().unwrap(),
        "--weights",
        &weights,
        "--headless",
    ]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("cracked, sound") && said.contains("--normal"),
        "{said}"
    );
    // An empty folder.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run(&[
        "train",
        "--one-class",
        "--data",
        empty.to_str().unwrap(),
        "--weights",
        &weights,
        "--headless",
    ]);
    assert!(!out.status.success());
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
}

/// What a classifier takes but a one-class model has no use for is refused with the reason, not
/// ignored: --resume (a fit is one pass), --method, --layer and --class (the map is the anomaly
/// map), --classes and --input-size (the file records them).
#[test]
fn flags_that_do_not_apply_to_a_one_class_model_are_refused() {
    let Some(weights) = weights() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 8);
    let run_dir = dir.path().join("run");
    let run_s = run_dir.to_str().unwrap();
    fit(&data, &weights, run_s);
    let image = Path::new(&data).join("Positive").join("00000.jpg");
    let image = if image.is_file() {
        image.display().to_string()
    } else {
        std::fs::read_dir(Path::new(&data).join("Positive"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
            .display()
            .to_string()
    };
    let refused = |args: &[&str], flags: &[&str]| {
        let out = run(args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {said}");
        for flag in flags {
            assert!(said.contains(flag), "{args:?}: {said}");
        }
        said
    };
    let said = refused(
        &["train", "--resume", run_s, "--headless"],
        &["one-class run"],
    );
    assert!(said.contains("--one-class"), "{said}");
    refused(
        &[
            "gradcam",
            "--model",
            run_s,
            &image,
            "--method",
            "gradcam++",
            "--out",
            run_s,
        ],
        &["--method does not apply", "anomaly map"],
    );
    refused(
        &["predict", "--model", run_s, &image, "--classes", "A,B,C"],
        &["--classes does not apply", "records its classes"],
    );
    refused(
        &["eval", run_s, "--classes", "A,B,C", "--input-size", "64"],
        &["--classes and --input-size do not apply"],
    );
    // Without them, the same commands work: a one-class run directory given as --model with
    // image files is explained (no --run involved).
    ok(&run(&["predict", "--model", run_s, &image]));
    let maps = dir.path().join("maps");
    let said = ok(&run(&[
        "gradcam",
        "--model",
        run_s,
        &image,
        "--out",
        maps.to_str().unwrap(),
    ]));
    assert!(said.contains("anomaly maps"), "{said}");
    // And export writes it as ONNX with its score and anomaly map (tests/export.rs compares
    // the outputs with crackscope's own).
    let said = ok(&run(&[
        "export",
        run_s,
        "--out",
        dir.path().join("m.onnx").to_str().unwrap(),
    ]));
    assert!(said.contains("\"score\" [batch]"), "{said}");
    assert!(dir.path().join("m.onnx").is_file());
}

/// A model file from before fire5 + fire7 became the default records its layers (fire5 alone),
/// so it keeps scoring as it was fitted: its settings, exactly as such a file holds them, read
/// back as fire5's 256 values, not as today's defaults.
#[test]
fn a_model_file_from_the_previous_defaults_keeps_its_settings() {
    use crackscope::detector::oneclass::Settings;
    // The metadata of a file fitted with `train --one-class` at the previous defaults.
    let stored = r#"{"layers":["fire5-concat"],"values":"all","neighbourhood":3,"edge":"zeros","input_size":227,"sampling":"coreset","coreset_ratio":0.01,"max_bank":1024,"max_candidates":40000,"projection_dim":32,"smoothing_sigma":4.0,"false_positive_rate":0.01,"seed":0}"#;
    let settings: Settings = serde_json::from_str(stored).unwrap();
    assert_eq!(settings.layers, ["fire5-concat"]);
    assert_eq!(settings.dim(), 256);
    assert_ne!(settings.layers, Settings::default().layers);
    assert_eq!(
        settings,
        Settings {
            layers: vec!["fire5-concat".into()],
            ..Settings::default()
        },
        "only the layers changed with the defaults"
    );
}
