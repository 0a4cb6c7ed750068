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

/// Asserts success and gives what the command printed on stdout alone: its JSON, without the
/// warnings and notes that go to stderr.
#[allow(dead_code)]
pub fn ok_stdout(out: &Output) -> String {
    ok(out);
    String::from_utf8_lossy(&out.stdout).into_owned()
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

/// `photos` synthetic `size`-pixel photos of cracked surfaces with their exact masks
/// (`crackscope synth --photos`, 64-pixel detail) in `out/photos` and `out/masks`; returns `out`.
pub fn synth_photos(out: &std::path::Path, photos: usize, size: u32) -> std::path::PathBuf {
    ok(&run(&[
        "synth",
        "--out",
        out.to_str().unwrap(),
        "--photos",
        &photos.to_string(),
        "--size",
        &size.to_string(),
        "--detail",
        "64",
    ]));
    out.to_path_buf()
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

/// A checkpoint with random weights, 64-pixel input and the given classes, in `dir`: enough to
/// check what a command writes (what a trained model finds is tested in the library).
pub fn random_checkpoint(dir: &std::path::Path, classes: &[&str]) -> std::path::PathBuf {
    random_model(&dir.join("model.safetensors"), classes, 1, |_| {})
}

/// [`random_checkpoint`] at `path`, its weights drawn from `seed`, which `tweak` may change
/// before it is saved.
pub fn random_model(
    path: &std::path::Path,
    classes: &[&str],
    seed: u64,
    tweak: impl Fn(&candle_nn::VarMap),
) -> std::path::PathBuf {
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};
    use crackscope::model::{
        init_backbone, init_head, save_checkpoint, CheckpointMeta, SqueezeNet,
    };
    let varmap = VarMap::new();
    SqueezeNet::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        Some(classes.len()),
    )
    .unwrap();
    init_backbone(&varmap, seed).unwrap();
    init_head(&varmap, seed).unwrap();
    tweak(&varmap);
    let names: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
    let meta = CheckpointMeta {
        input_size: Some(64),
        ..Default::default()
    };
    save_checkpoint(path, &varmap, &names, &meta).unwrap();
    path.to_path_buf()
}

/// The string metadata of a safetensors file (a checkpoint's iteration, epoch, classes).
pub fn safetensors_metadata(path: &std::path::Path) -> std::collections::HashMap<String, String> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    header.metadata().clone().unwrap_or_default()
}

/// Starts the binary with its output going to files beside `log` (a pipe nobody reads could
/// block it).
pub fn spawn(args: &[String], log: &std::path::Path) -> std::process::Child {
    crackscope()
        .args(args)
        .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .expect("binary starts")
}

/// What a process started by [`spawn`] has said so far (stdout, then stderr).
pub fn said(log: &std::path::Path) -> String {
    let read = |ext| std::fs::read_to_string(log.with_extension(ext)).unwrap_or_default();
    format!("{}{}", read("out"), read("err"))
}

/// Waits for a process started by [`spawn`] to end, failing (with what it said) after 300 s.
pub fn wait(child: &mut std::process::Child, log: &std::path::Path) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > Duration::from_secs(300) {
            child.kill().ok();
            panic!("the process did not end:\n{}", said(log));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to a process the test started.
pub fn send(child: &std::process::Child, signal: i32) {
    // SAFETY: kill(2) on the process this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}
