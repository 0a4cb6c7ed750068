//! The dashboard driven through tmux, as a user at a terminal drives it: keys in, screen out.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::tmux::Tmux;
use common::*;

fn shell_command(run: &Path, args: &str) -> String {
    format!(
        "CRACKSCOPE_GRAPHICS=halfblocks {} {args} --run {}; echo EXIT-CODE-$?; sleep 600",
        env!("CARGO_BIN_EXE_crackscope"),
        run.display()
    )
}

#[test]
fn demo_trains_lands_in_the_browser_switches_views_and_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("demo");
    let Some(tmux) = Tmux::start(
        "crackscope-demo",
        &shell_command(&run, "demo --per-class 60 --epochs 2"),
    ) else {
        return;
    };
    tmux.wait_for("Training", Duration::from_secs(120));
    // After training and testing, the demo lands in the browser on the first test image.
    let browser = tmux.wait_for("Image     1 of", Duration::from_secs(300));
    assert!(
        browser.contains("Predicted") && browser.contains("relu_conv10"),
        "{browser}"
    );
    tmux.keys("Right");
    tmux.wait_for("Image     2 of", Duration::from_secs(30));

    tmux.keys("4");
    let results = tmux.wait_for("Per class", Duration::from_secs(30));
    assert!(
        results.contains("Negative") && results.contains("Positive"),
        "{results}"
    );
    tmux.keys("3");
    tmux.wait_for("relu_conv1", Duration::from_secs(30));
    tmux.keys("2");
    tmux.wait_for("Samples of the dataset", Duration::from_secs(30));

    tmux.keys("q");
    let after = tmux.wait_for("EXIT-CODE-", Duration::from_secs(60));
    assert!(after.contains("EXIT-CODE-0"), "{after}");
    // Back on the normal screen: the dashboard's tab bar is gone, the test report was printed.
    assert!(
        !after.contains("1 Training │ 2 Samples"),
        "terminal not restored:\n{after}"
    );
    assert!(run.join("report.json").is_file());
}

#[test]
fn a_lost_terminal_leaves_the_training_running_and_watch_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth_dataset(dir.path(), 60, 0);
    let recipe = dir.path().join("r.toml");
    std::fs::write(&recipe, "[data]\nsplit = [0.6, 0.2, 0.2]\ninput_size = 64\n[train]\nbatch_size = 8\nepochs = 6\nval_every = 5\ndevice = \"cpu\"\n").unwrap();
    let run_dir = dir.path().join("run");
    let args = format!(
        "train --config {} --data {}",
        recipe.display(),
        data.display()
    );
    let Some(session) = Tmux::start("crackscope-hangup", &shell_command(&run_dir, &args)) else {
        return;
    };
    session.wait_for("Iteration", Duration::from_secs(120));
    // The SSH connection drops: the terminal and everything attached to it goes away.
    session.kill();

    let started = Instant::now();
    let log = run_dir.join("metrics.jsonl");
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("\"tested\"")
    {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the training did not finish after the hang-up"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(run_dir.join("report.json").is_file());

    let watch = Tmux::start(
        "crackscope-watch",
        &format!(
            "CRACKSCOPE_GRAPHICS=halfblocks {} watch {}",
            env!("CARGO_BIN_EXE_crackscope"),
            run_dir.display()
        ),
    )
    .expect("tmux is there");
    let screen = watch.wait_for("finished", Duration::from_secs(60));
    assert!(screen.contains("Training"), "{screen}");
    watch.keys("q");
}

/// `train --one-class` on a terminal: the dashboard shows the fit, then the results with the
/// score histogram and the browser with anomaly maps; `watch` shows the same finished run.
#[test]
fn a_one_class_fit_shows_its_results_live_and_in_watch() {
    let Some(weights) = shared_data("pretrained/squeezenet1_1.safetensors") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&run(&[
        "synth",
        "--out",
        data.to_str().unwrap(),
        "--per-class",
        "24",
        "--seed",
        "5",
    ]));
    let run_dir = dir.path().join("oneclass");
    let args = format!(
        "train --one-class --data {} --weights {} --split 0.5,0.25,0.25",
        data.display(),
        weights.display()
    );
    let Some(tmux) = Tmux::start("crackscope-oneclass", &shell_command(&run_dir, &args)) else {
        return;
    };
    let fit = tmux.wait_for("bank entries", Duration::from_secs(120));
    assert!(
        fit.contains("Fit on 12 normal images of 'Negative'"),
        "{fit}"
    );
    tmux.wait_for("validation AUROC", Duration::from_secs(120));
    tmux.keys("4");
    let results = tmux.wait_for("average precision", Duration::from_secs(120));
    assert!(
        results.contains("Anomaly scores") && results.contains("true \\ verdict"),
        "{results}"
    );
    tmux.keys("5");
    let browser = tmux.wait_for("Threshold", Duration::from_secs(60));
    assert!(browser.contains("Verdict"), "{browser}");
    tmux.keys("q");
    let after = tmux.wait_for("EXIT-CODE-", Duration::from_secs(60));
    assert!(
        after.contains("EXIT-CODE-0") && after.contains("AUROC"),
        "{after}"
    );
    tmux.kill();

    let watch = format!(
        "CRACKSCOPE_GRAPHICS=halfblocks {} watch {}; echo EXIT-CODE-$?; sleep 600",
        env!("CARGO_BIN_EXE_crackscope"),
        run_dir.display()
    );
    let Some(tmux) = Tmux::start("crackscope-oneclass-watch", &watch) else {
        return;
    };
    tmux.wait_for("finished", Duration::from_secs(60));
    tmux.keys("4");
    tmux.wait_for("Anomaly scores", Duration::from_secs(30));
    tmux.keys("5");
    tmux.wait_for("Threshold", Duration::from_secs(60));
    tmux.keys("q");
    let after = tmux.wait_for("EXIT-CODE-", Duration::from_secs(30));
    assert!(after.contains("EXIT-CODE-0"), "{after}");
}
