//! End-to-end tests of the data side: training with one thread, training over the memory budget,
//! class names of any characters, a symbolic link that would relabel images, and `eval` on a run
//! that cannot be written to.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use crackscope::run::predictions::Predictions;

/// `per_class` synthetic 64 px images per class in `dir/data`, the class folders renamed to `names`.
fn dataset(dir: &Path, per_class: usize, names: [&str; 2]) -> std::path::PathBuf {
    let data = synth_dataset(dir, per_class, 3);
    for (from, to) in ["Negative", "Positive"].into_iter().zip(names) {
        if from != to {
            std::fs::rename(data.join(from), data.join(to)).unwrap();
        }
    }
    data
}

/// A short, small recipe: 64 px, one epoch of batches of 8.
fn small_recipe(dir: &Path) -> String {
    let path = dir.join("small.toml");
    std::fs::write(
        &path,
        "[data]\nsplit = [0.5, 0.25, 0.25]\ninput_size = 64\n[augment]\ntranslate = 6\n\
         [train]\nbatch_size = 8\nepochs = 1\nval_every = 3\ndevice = \"cpu\"\n",
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

fn train(dir: &Path, data: &Path, run_dir: &Path, extra: &[&str], threads: &str) -> String {
    let recipe = small_recipe(dir);
    let mut cmd = crackscope();
    cmd.env("RAYON_NUM_THREADS", threads).args([
        "train",
        "--config",
        &recipe,
        "--data",
        data.to_str().unwrap(),
        "--run",
        run_dir.to_str().unwrap(),
        "--headless",
    ]);
    cmd.args(extra);
    // Generous: the run takes seconds; a deadlock would otherwise hang the test forever.
    ok(&run_with_limit(&mut cmd, Duration::from_secs(240)))
}

#[test]
fn one_thread_trains_and_any_class_name_survives_predictions_csv() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["Crack, \"wide\"", "sans fissure é 裂缝"];
    let data = dataset(dir.path(), 24, names);
    let run_dir = dir.path().join("run");
    let said = train(dir.path(), &data, &run_dir, &[], "1");
    assert!(run_dir.join("report.json").is_file(), "{said}");

    let predictions = Predictions::load(&run_dir.join("predictions.csv"))
        .unwrap()
        .expect("predictions.csv written");
    assert_eq!(predictions.classes, names);
    assert_eq!(predictions.rows.len(), 12);
    for row in &predictions.rows {
        let folder = row.path.parent().unwrap().file_name().unwrap();
        assert_eq!(folder.to_str().unwrap(), names[row.truth]);
    }
}

#[test]
fn a_training_set_over_the_memory_budget_is_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 24, ["Negative", "Positive"]);
    let run_dir = dir.path().join("run");
    // 12 validation images of 64 px take 147 KB: they fit, the 24 training images (295 KB) do not.
    let said = train(
        dir.path(),
        &data,
        &run_dir,
        &["--memory-budget", "200KB"],
        "2",
    );
    assert!(
        said.contains("decoding training (295 KB decoded) images on the fly")
            && !said.contains("validation ("),
        "{said}"
    );
    assert!(run_dir.join("report.json").is_file(), "{said}");

    let bad = run(&["train", "--data", "x", "--memory-budget", "lots"]);
    assert!(!bad.status.success());
    let message = text(&bad);
    assert!(
        message.contains("data.memory_budget") && message.contains("lots"),
        "{message}"
    );
}

#[cfg(unix)]
#[test]
fn a_link_into_another_class_is_left_out_and_listed_in_skipped_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 24, ["Negative", "Positive"]);
    let outside = dir.path().join("more-negatives");
    std::fs::create_dir(&outside).unwrap();
    let positives: Vec<_> = std::fs::read_dir(data.join("Positive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // Two positives also reachable as negatives: neither label may be used.
    for (i, path) in positives.iter().take(2).enumerate() {
        std::os::unix::fs::symlink(path, outside.join(format!("n{i}.jpg"))).unwrap();
    }
    std::os::unix::fs::symlink(&outside, data.join("Negative/linked")).unwrap();
    let run_dir = dir.path().join("run");
    let said = train(dir.path(), &data, &run_dir, &[], "2");
    let skipped = std::fs::read_to_string(run_dir.join("skipped.json")).unwrap();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&skipped).unwrap();
    assert_eq!(entries.len(), 4, "{skipped}");
    assert!(
        entries
            .iter()
            .all(|e| e["reason"].as_str().unwrap().contains("labelling conflict")),
        "{skipped}"
    );
    assert!(said.contains("labelling conflict"), "{said}");
    let split = std::fs::read_to_string(run_dir.join("split.json")).unwrap();
    assert!(!split.contains("linked"), "{split}");
}

#[cfg(unix)]
#[test]
fn eval_on_a_read_only_run_prints_its_results_and_warns() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 24, ["Negative", "Positive"]);
    let run_dir = dir.path().join("run");
    train(dir.path(), &data, &run_dir, &[], "2");
    let report_before = std::fs::read(run_dir.join("report.json")).unwrap();

    let set_mode = |mode: u32| {
        std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set_mode(0o555);
    let probe = run_dir.join("probe");
    let still_writable = std::fs::write(&probe, b"").is_ok();
    if still_writable {
        // Permissions do not bind this user (root): stand a folder where report.json goes, which
        // no write can replace either.
        std::fs::remove_file(&probe).unwrap();
        set_mode(0o755);
        std::fs::remove_file(run_dir.join("report.json")).unwrap();
        std::fs::create_dir_all(run_dir.join("report.json/occupied")).unwrap();
    }
    let out = run(&["eval", run_dir.to_str().unwrap()]);
    set_mode(0o755);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("12 images of the test split"),
        "no results printed:\n{said}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not be saved") && stderr.contains("report.json"),
        "{said}"
    );
    if !still_writable {
        assert_eq!(
            std::fs::read(run_dir.join("report.json")).unwrap(),
            report_before
        );
    }
}
