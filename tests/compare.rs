//! `crackscope compare`: runs side by side from their own files (no training here: the runs'
//! logs are written as a training writes them).

mod common;

use std::path::Path;

use common::*;

/// A run directory whose recipe sets `batch_size`, and whose log holds `losses` one an
/// iteration, validations at `validations` (iteration, accuracy) and, when `finished`, the end
/// and a test.
fn fake_run(
    dir: &Path,
    name: &str,
    batch_size: usize,
    validations: &[(usize, f32)],
    finished: bool,
) -> String {
    let run = dir.join(name);
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("config.toml"),
        format!("[data]\ninput_size = 64\n[train]\nbatch_size = {batch_size}\nepochs = 2\n"),
    )
    .unwrap();
    let mut log = String::new();
    for iteration in 1..=8 {
        log += &format!(
            "{{\"event\":\"iteration\",\"epoch\":1,\"iteration\":{iteration},\"loss\":{},\"accuracy\":0.5,\"learning_rate\":0.001,\"images_per_s\":10.0,\"elapsed_s\":1.0}}\n",
            1.0 / iteration as f32
        );
        for &(at, accuracy) in validations.iter().filter(|(at, _)| *at == iteration) {
            log += &format!(
                "{{\"event\":\"validation\",\"epoch\":1,\"iteration\":{at},\"loss\":0.3,\"accuracy\":{accuracy},\"elapsed_s\":1.0}}\n"
            );
        }
    }
    if finished {
        log += "{\"event\":\"finished\",\"iteration\":8,\"best_val_accuracy\":0.9,\"stopped_early\":false,\"elapsed_s\":9.0}\n";
        log += "{\"event\":\"tested\",\"accuracy\":0.875,\"confusion\":[[7,1],[1,7]],\"classes\":[\"Negative\",\"Positive\"]}\n";
    }
    std::fs::write(run.join("metrics.jsonl"), log).unwrap();
    run.to_str().unwrap().to_string()
}

#[test]
fn runs_are_shown_side_by_side_with_their_differences_and_results() {
    let dir = tempfile::tempdir().unwrap();
    let a = fake_run(dir.path(), "a", 32, &[(4, 0.8), (8, 0.9)], true);
    let b = fake_run(dir.path(), "b", 16, &[(4, 0.7)], false);
    let figure = dir.path().join("curves.png");
    let out = ok(&run(&[
        "compare",
        &a,
        &b,
        "--figure",
        figure.to_str().unwrap(),
    ]));
    let lines: Vec<&str> = out.lines().collect();
    // The head names the differing recipe key and only that one.
    assert!(lines[0].contains("train.batch_size"), "{out}");
    assert!(!lines[0].contains("train.epochs"), "{out}");
    let row_a = lines.iter().find(|l| l.starts_with("a ")).unwrap();
    let row_b = lines.iter().find(|l| l.starts_with("b ")).unwrap();
    assert!(row_a.contains("finished") && row_a.contains("90.0% (8)") && row_a.contains("87.5%"));
    assert!(row_a.trim_end().ends_with("32"), "{row_a}");
    // b's log has no end and no process holds it: not running, no test yet.
    assert!(
        row_b.contains("not running") && row_b.contains("70.0% (4)"),
        "{row_b}"
    );
    assert!(
        row_b.contains('—') && row_b.trim_end().ends_with("16"),
        "{row_b}"
    );
    let picture = image::open(&figure).unwrap();
    assert!(picture.width() >= 900 && picture.height() >= 700);
}

#[test]
fn a_folder_that_is_not_a_run_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let a = fake_run(dir.path(), "a", 32, &[], true);
    let out = run(&["compare", &a, dir.path().join("nothing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("nothing"), "{}", text(&out));
}
