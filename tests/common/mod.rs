//! Helpers shared by the end-to-end tests: run the real binary, find the shared test data.

#![allow(dead_code)]

pub mod pixels;
pub mod pty;
pub mod tmux;
pub mod x11;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn crackscope() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crackscope"));
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs to completion, failing the test (with the output) after `limit`: no test may hang.
pub fn run_with_limit(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > limit {
            child.kill().ok();
            let out = child.wait_with_output().expect("output");
            panic!(
                "command did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn run(args: &[&str]) -> Output {
    run_with_limit(crackscope().args(args), Duration::from_secs(600))
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts success, showing everything the command said when it failed.
pub fn ok(out: &Output) -> String {
    let all = text(out);
    assert!(
        out.status.success(),
        "command failed ({:?}):\n{all}",
        out.status
    );
    all
}

/// The shared test data (see `crackscope::core::testdata`): skips with a message when absent.
#[allow(unused_imports)]
pub use crackscope::core::testdata::shared_data;

/// `per_class` synthetic 64 px images per class in `dir/data` (`crackscope synth`, drawn from
/// `seed`): a dataset small enough for a test's CPU budget.
pub fn synth_dataset(dir: &std::path::Path, per_class: usize, seed: u64) -> std::path::PathBuf {
    let data = dir.join("data");
    ok(&run(&[
        "synth",
        "--out",
        data.to_str().unwrap(),
        "--per-class",
        &per_class.to_string(),
        "--size",
        "64",
        "--seed",
        &seed.to_string(),
    ]));
    data
}

/// A finished run of the demo (`demo --headless`, 30 synthetic images per class, one epoch) in
/// `dir/run`: a run directory with samples, validation Grad-CAMs, a report and test images.
pub fn finished_run(dir: &std::path::Path) -> std::path::PathBuf {
    let run_dir = dir.join("run");
    ok(&run(&[
        "demo",
        "--headless",
        "--per-class",
        "30",
        "--epochs",
        "1",
        "--run",
        run_dir.to_str().unwrap(),
    ]));
    run_dir
}
