//! A run merged from two named `--data` sources: each source split by its own fractions
//! (`--split-for`), and its results reported on their own (report.json, the printed report,
//! `eval`), adding up to the whole and agreeing with predictions.csv.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::*;

fn recipe(dir: &Path) -> String {
    let path = dir.join("recipe.toml");
    std::fs::write(
        &path,
        "[data]\ninput_size = 64\n[train]\nbatch_size = 16\nepochs = 1\nval_every = 5\ndevice = \"cpu\"\n",
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn two_sources_are_split_by_their_own_fractions_and_reported_apart() {
    let dir = tempfile::tempdir().unwrap();
    let concrete = synth_dataset(&dir.path().join("a"), 20, 7);
    let drone = synth_dataset(&dir.path().join("b"), 20, 8);
    let run_dir = dir.path().join("run");
    let (concrete_arg, drone_arg) = (
        format!("concrete={}", concrete.display()),
        format!("drone={}", drone.display()),
    );
    let config = recipe(dir.path());
    let printed = ok(&run(&[
        "train",
        "--config",
        &config,
        "--data",
        &concrete_arg,
        "--data",
        &drone_arg,
        "--split",
        "0.5,0.25,0.25",
        "--split-for",
        "drone=0.2,0.4,0.4",
        "--run",
        run_dir.to_str().unwrap(),
        "--headless",
    ]));

    // The split: per source and class, by that source's fractions (20 images a class).
    let split = json(&run_dir.join("split.json"));
    let sources: Vec<&str> = split["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(sources, ["concrete", "drone"]);
    let count = |part: &str, source: usize| {
        split[part]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["source"].as_u64() == Some(source as u64))
            .count()
    };
    // Two classes each.
    assert_eq!(
        [count("train", 0), count("val", 0), count("test", 0)],
        [20, 10, 10]
    );
    assert_eq!(
        [count("train", 1), count("val", 1), count("test", 1)],
        [8, 16, 16]
    );

    // The report: one entry per source, adding up to the whole.
    let report = json(&run_dir.join("report.json"));
    let per_source = report["sources"].as_array().expect("report.json sources");
    assert_eq!(per_source.len(), 2);
    assert_eq!(per_source[0]["name"], "concrete");
    assert_eq!(per_source[1]["name"], "drone");
    assert_eq!(per_source[0]["images"], 10);
    assert_eq!(per_source[1]["images"], 16);
    let confusion = |v: &serde_json::Value| -> Vec<Vec<u64>> {
        serde_json::from_value(v["confusion"].clone()).unwrap()
    };
    let whole = confusion(&report);
    let (a, b) = (confusion(&per_source[0]), confusion(&per_source[1]));
    for i in 0..2 {
        for j in 0..2 {
            assert_eq!(a[i][j] + b[i][j], whole[i][j], "confusion cell {i},{j}");
        }
    }

    // predictions.csv agrees: each source's right answers, by its source column (which names
    // the folder each image lies in).
    let mut right: HashMap<&str, (u64, u64)> = HashMap::new();
    let mut reader = csv_rows(&run_dir.join("predictions.csv"));
    let header = reader.remove(0);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (path, truth, predicted) = (column("path"), column("truth"), column("predicted"));
    assert_eq!(column("source"), header.len() - 1, "the last column");
    for row in &reader {
        let source = if Path::new(&row[path]).starts_with(&concrete) {
            "concrete"
        } else {
            assert!(Path::new(&row[path]).starts_with(&drone), "{}", row[path]);
            "drone"
        };
        assert_eq!(row[column("source")], source, "{}", row[path]);
        let entry = right.entry(source).or_default();
        entry.1 += 1;
        entry.0 += u64::from(row[truth] == row[predicted]);
    }
    for s in per_source {
        let (hits, total) = right[s["name"].as_str().unwrap()];
        assert_eq!(total, s["images"].as_u64().unwrap());
        let accuracy = s["accuracy"].as_f64().unwrap();
        assert!((accuracy - hits as f64 / total as f64).abs() < 1e-9, "{s}");
    }

    // The printed report and eval name both sources.
    for text in [printed, ok(&run(&["eval", run_dir.to_str().unwrap()]))] {
        assert!(
            text.contains("concrete") && text.contains("drone"),
            "{text}"
        );
    }
}

#[test]
fn fractions_for_a_source_that_is_not_there_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let concrete = synth_dataset(&dir.path().join("a"), 4, 7);
    let run_dir = dir.path().join("run");
    let config = recipe(dir.path());
    let out = run(&[
        "train",
        "--config",
        &config,
        "--data",
        concrete.to_str().unwrap(),
        "--split-for",
        "drone=0.2,0.4,0.4",
        "--run",
        run_dir.to_str().unwrap(),
        "--headless",
    ]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("drone"), "{said}");
    assert!(!run_dir.join("model.safetensors").exists());
}

/// The rows of a CSV file, header first.
fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap()
        .records()
        .map(|row| row.unwrap().iter().map(str::to_string).collect())
        .collect()
}
