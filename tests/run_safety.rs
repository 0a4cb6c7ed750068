//! End-to-end tests of what a long, unattended training relies on: signals from job schedulers
//! and SSH, one owner per run directory, control requests that reach only the training they were
//! meant for, exit codes, and identical numbers from identical runs. Each drives the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;

/// The exit code of a training stopped before its end (README, "Exit codes").
const EXIT_STOPPED: i32 = 3;

/// A tiny synthetic dataset: 24 images per class at 64 px.
fn synth(dir: &Path) -> PathBuf {
    synth_n(dir, 24)
}

fn synth_n(dir: &Path, per_class: usize) -> PathBuf {
    synth_dataset(dir, per_class, 5)
}

fn recipe(dir: &Path, epochs: usize) -> PathBuf {
    let path = dir.join("recipe.toml");
    std::fs::write(
        &path,
        format!(
            "[data]\nsplit = [0.5, 0.25, 0.25]\ninput_size = 64\n[augment]\ntranslate = 4\n\
             [train]\nbatch_size = 8\nepochs = {epochs}\nlearning_rate = 5e-4\nval_every = 1000\n\
             device = \"cpu\"\n"
        ),
    )
    .unwrap();
    path
}

fn train_args(dir: &Path, data: &Path, run_dir: &Path, epochs: usize) -> Vec<String> {
    [
        "train",
        "--config",
        recipe(dir, epochs).to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--run",
        run_dir.to_str().unwrap(),
        "--headless",
    ]
    .map(String::from)
    .to_vec()
}

fn events(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn count(events: &[serde_json::Value], kind: &str) -> usize {
    events.iter().filter(|e| e["event"] == kind).count()
}

/// Waits until the run has logged `n` more iterations than `after`.
fn wait_for_iterations(child: &mut Child, run_dir: &Path, n: usize, out: &Path) {
    let started = Instant::now();
    while count(&events(run_dir), "iteration") < n {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("training ended early ({status}):\n{}", said(out));
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no iterations:\n{}",
            said(out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn leftover_temporaries(run_dir: &Path) -> Vec<String> {
    std::fs::read_dir(run_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect()
}

/// The iteration the resume state is at, from its metadata.
fn resume_iteration(run_dir: &Path) -> usize {
    safetensors_metadata(&run_dir.join("resume.safetensors"))["iteration"]
        .parse()
        .unwrap()
}

#[test]
fn sigint_sigterm_and_sighup_each_end_with_a_checkpoint_and_the_resume_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    for (signal, name) in [
        (libc::SIGTERM, "term"),
        (libc::SIGHUP, "hup"),
        (libc::SIGINT, "int"),
    ] {
        let run_dir = dir.path().join(format!("run-{name}"));
        let out = dir.path().join(name);
        let args = train_args(dir.path(), &data, &run_dir, 500);
        let mut child = spawn(&args, &out);
        wait_for_iterations(&mut child, &run_dir, 2, &out);

        if signal == libc::SIGTERM {
            // While it runs, the directory is owned: a second training of it is refused.
            let second = run(&["train", "--resume", run_dir.to_str().unwrap(), "--headless"]);
            assert!(!second.status.success());
            assert!(text(&second).contains("in use"), "{}", text(&second));
            let again = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
            assert!(!again.status.success());
            assert!(text(&again).contains("in use"), "{}", text(&again));
        }

        send(&child, signal);
        let status = wait(&mut child, &out);
        let all = said(&out);
        assert_eq!(status.code(), Some(EXIT_STOPPED), "{name}: {status}\n{all}");
        assert!(
            all.contains(&format!(
                "crackscope train --resume {}",
                run_dir.to_str().unwrap()
            )),
            "{name}: no resume command:\n{all}"
        );
        let log = events(&run_dir);
        let finished = log
            .iter()
            .find(|e| e["event"] == "finished")
            .unwrap_or_else(|| panic!("{name}: no end logged:\n{all}"));
        assert_eq!(finished["stopped_early"], true);
        let stopped_at = finished["iteration"].as_u64().unwrap() as usize;
        assert_eq!(resume_iteration(&run_dir), stopped_at, "{name}: {all}");
        assert!(
            leftover_temporaries(&run_dir).is_empty(),
            "{name}: {:?}",
            leftover_temporaries(&run_dir)
        );
        // Stopped before any validation: the test says it used the last model.
        assert!(all.contains("not a validated best"), "{name}: {all}");
    }
}

#[test]
fn a_second_signal_quits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    let run_dir = dir.path().join("run");
    let out = dir.path().join("log");
    let mut child = spawn(&train_args(dir.path(), &data, &run_dir, 500), &out);
    wait_for_iterations(&mut child, &run_dir, 1, &out);
    send(&child, libc::SIGTERM);
    // Signals sent back to back may arrive as one: send the second once the first was taken in.
    let started = Instant::now();
    while !said(&out).contains("stopping after this iteration") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "first signal not acknowledged:\n{}",
            said(&out)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    send(&child, libc::SIGTERM);
    let status = wait(&mut child, &out);
    let all = said(&out);
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status}\n{all}");
    assert!(all.contains("quitting at once"), "{all}");
    assert!(leftover_temporaries(&run_dir).is_empty());
}

#[test]
fn a_stop_request_is_obeyed_once_and_never_by_the_resumed_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    let run_dir = dir.path().join("run");
    let out = dir.path().join("log");
    let mut child = spawn(&train_args(dir.path(), &data, &run_dir, 500), &out);
    wait_for_iterations(&mut child, &run_dir, 2, &out);

    // What `watch` writes: a stop addressed to the training holding the lock.
    let holder: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("train.lock")).unwrap()).unwrap();
    let stop = serde_json::json!({
        "session": holder["session"], "paused": true, "stop": true, "save_now_seq": 0
    });
    std::fs::write(run_dir.join("control.json"), stop.to_string()).unwrap();
    let status = wait(&mut child, &out);
    assert_eq!(status.code(), Some(EXIT_STOPPED), "{}", said(&out));
    assert!(
        !run_dir.join("control.json").exists(),
        "the request was consumed"
    );

    // The same request left behind (say, written late by a watcher) must not stop or pause a
    // resume: it runs to its end.
    std::fs::write(run_dir.join("control.json"), stop.to_string()).unwrap();
    let stopped_at = resume_iteration(&run_dir);
    let per_epoch = 24 / 8;
    let epochs = stopped_at / per_epoch + 2;
    let resumed = run_with_limit(
        crackscope().args([
            "train",
            "--resume",
            run_dir.to_str().unwrap(),
            "--epochs",
            &epochs.to_string(),
            "--headless",
        ]),
        Duration::from_secs(300),
    );
    let all = ok(&resumed);
    assert!(all.contains("resuming after iteration"), "{all}");
    let log = events(&run_dir);
    let last = log.iter().rfind(|e| e["event"] == "finished").unwrap();
    assert_eq!(last["stopped_early"], false, "{all}");
    assert_eq!(
        last["iteration"].as_u64().unwrap() as usize,
        epochs * per_epoch
    );
}

#[test]
fn runs_are_never_overwritten_and_failed_starts_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());

    let run_dir = dir.path().join("bad-weights");
    let mut args = train_args(dir.path(), &data, &run_dir, 1);
    args.extend(["--weights".into(), "/nonexistent/squeezenet.pth".into()]);
    let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!out.status.success());
    assert!(
        !run_dir.exists(),
        "a failed start left {}:\n{}",
        run_dir.display(),
        text(&out)
    );

    let run_dir = dir.path().join("no-data");
    let args = train_args(dir.path(), &dir.path().join("missing"), &run_dir, 1);
    let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!out.status.success());
    assert!(!run_dir.exists(), "{}", text(&out));

    let run_dir = dir.path().join("done");
    let args: Vec<String> = train_args(dir.path(), &data, &run_dir, 1);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&run(&args));
    let model_before = std::fs::read(run_dir.join("model.safetensors")).unwrap();
    let again = run(&args);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("already holds a run") && text(&again).contains("--resume"),
        "{}",
        text(&again)
    );
    assert_eq!(
        std::fs::read(run_dir.join("model.safetensors")).unwrap(),
        model_before
    );
    assert!(leftover_temporaries(&run_dir).is_empty());
}

/// Everything in metrics.jsonl but what measures time (and the run's own path).
fn numbers(run_dir: &Path) -> Vec<serde_json::Value> {
    events(run_dir)
        .into_iter()
        .map(|mut e| {
            let fields = e.as_object_mut().unwrap();
            for timing in ["elapsed_s", "images_per_s", "run", "path"] {
                fields.remove(timing);
            }
            e
        })
        .collect()
}

#[test]
fn the_same_recipe_and_seed_give_the_same_numbers_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    // Batches of 32 at 64 px: enough positions that the engine splits its gradient sums into
    // several parallel blocks (summed in scheduling order, identical runs differed by iteration 4).
    let data = synth_n(dir.path(), 64);
    let mut runs = Vec::new();
    for name in ["a", "b"] {
        let run_dir = dir.path().join(name);
        let mut args = train_args(dir.path(), &data, &run_dir, 8);
        args.extend(["--batch-size".into(), "32".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&run_with_limit(
            crackscope().args(&args).env("RAYON_NUM_THREADS", "2"),
            Duration::from_secs(300),
        ));
        runs.push(numbers(&run_dir));
    }
    assert!(count(&runs[0], "iteration") >= 16);
    for (i, (a, b)) in runs[0].iter().zip(&runs[1]).enumerate() {
        assert_eq!(a, b, "event {i} differs");
    }
    assert_eq!(runs[0].len(), runs[1].len());
}

/// Rewrites a run as older versions left it: `last.safetensors` beside a separate
/// `optimizer.safetensors` (keys `m.*`, `v.*`, `step`), no resume state. `step_offset` makes the two
/// disagree, as a kill between their two writes did.
fn make_legacy(run_dir: &Path, step_offset: u32) {
    let bytes = std::fs::read(run_dir.join("resume.safetensors")).unwrap();
    let state = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in state.tensors() {
        let Some(key) = name.strip_prefix("optimizer/") else {
            continue;
        };
        let mut data = view.data().to_vec();
        if key == "step" {
            let step = u32::from_le_bytes(data[..4].try_into().unwrap()) + step_offset;
            data = step.to_le_bytes().to_vec();
        }
        owned.push((key.to_string(), view.dtype(), view.shape().to_vec(), data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(k, dtype, shape, data)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    std::fs::write(
        run_dir.join("optimizer.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(run_dir.join("resume.safetensors")).unwrap();
}

#[test]
fn runs_of_older_versions_resume_or_say_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    let run_dir = dir.path().join("run");
    let args = train_args(dir.path(), &data, &run_dir, 1);
    ok(&run(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let resume = |epochs: &str| {
        run(&[
            "train",
            "--resume",
            run_dir.to_str().unwrap(),
            "--epochs",
            epochs,
            "--headless",
        ])
    };

    // Model and optimizer state of different iterations: refused, saying why.
    make_legacy(&run_dir, 1);
    let out = resume("2");
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("optimizer.safetensors") && said.contains("mix"),
        "{said}"
    );

    // Consistent ones resume, and the run moves to the one-file resume state.
    make_legacy_consistent(&run_dir);
    let said = ok(&resume("2"));
    assert!(said.contains("resuming after iteration 3"), "{said}");
    assert!(run_dir.join("resume.safetensors").is_file());
    assert!(!run_dir.join("optimizer.safetensors").exists());
}

/// Puts the step of a legacy optimizer file back in line with the checkpoint.
fn make_legacy_consistent(run_dir: &Path) {
    let path = run_dir.join("optimizer.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let state = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = state
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let mut data = view.data().to_vec();
            if name == "step" {
                let step = u32::from_le_bytes(data[..4].try_into().unwrap()) - 1;
                data = step.to_le_bytes().to_vec();
            }
            (name, view.dtype(), view.shape().to_vec(), data)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(k, dtype, shape, data)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn a_checkpoint_that_cannot_be_written_names_the_file_and_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    let run_dir = dir.path().join("run");
    let args = train_args(dir.path(), &data, &run_dir, 1);
    ok(&run(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    // last.safetensors cannot be replaced (a directory holds its name), as good as a full disk.
    std::fs::remove_file(run_dir.join("last.safetensors")).unwrap();
    std::fs::create_dir_all(run_dir.join("last.safetensors/in-the-way")).unwrap();
    let out = run(&[
        "train",
        "--resume",
        run_dir.to_str().unwrap(),
        "--epochs",
        "2",
        "--headless",
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("cannot write") && said.contains("last.safetensors"),
        "{said}"
    );
    assert!(
        said.contains("last good checkpoint is")
            && said.contains("resume.safetensors (iteration 6)"),
        "{said}"
    );
    // last.safetensors was never written at iteration 6: the message must not offer it; and the
    // error is printed once, not by the progress printer and again by the command.
    assert!(!said.contains("model in"), "{said}");
    assert_eq!(
        said.matches("checkpoint at iteration 6 failed").count(),
        1,
        "{said}"
    );
    // ... and it is loadable.
    assert_eq!(resume_iteration(&run_dir), 6);
    assert!(
        leftover_temporaries(&run_dir).is_empty(),
        "{:?}",
        leftover_temporaries(&run_dir)
    );
}

/// A recipe like [`recipe`] whose every iteration is validated and checkpointed, with images
/// decoded on the fly (a memory budget of 0), as a large dataset is.
fn streamed_recipe(dir: &Path) -> PathBuf {
    let path = dir.join("streamed.toml");
    std::fs::write(
        &path,
        "[data]\nsplit = [0.5, 0.25, 0.25]\ninput_size = 64\nmemory_budget = \"0\"\n\
         [augment]\ntranslate = 4\n[train]\nbatch_size = 8\nepochs = 500\n\
         learning_rate = 5e-4\nval_every = 1\ndevice = \"cpu\"\n",
    )
    .unwrap();
    path
}

/// The files of one part ("train", "val", "test") of a run's split.json.
fn split_files(run_dir: &Path, part: &str) -> Vec<(PathBuf, usize)> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("split.json")).unwrap()).unwrap();
    let root = PathBuf::from(manifest["root"].as_str().unwrap());
    manifest[part]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                root.join(e["path"].as_str().unwrap()),
                e["label"].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

fn last_started(run_dir: &Path) -> serde_json::Value {
    events(run_dir)
        .into_iter()
        .rfind(|e| e["event"] == "started")
        .expect("a start logged")
}

fn sum(value: &serde_json::Value) -> u64 {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum()
}

#[test]
fn a_resumed_run_keeps_its_split_and_names_the_files_it_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    let run_dir = dir.path().join("run");
    let out = dir.path().join("log");
    let args: Vec<String> = [
        "train",
        "--config",
        streamed_recipe(dir.path()).to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--run",
        run_dir.to_str().unwrap(),
        "--headless",
    ]
    .map(String::from)
    .to_vec();
    let mut child = spawn(&args, &out);
    let started = Instant::now();
    while count(&events(&run_dir), "checkpoint") < 2 {
        assert!(child.try_wait().unwrap().is_none(), "{}", said(&out));
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{}",
            said(&out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Half the training images of each class, two validation and one test image go away while
    // the streamed training reads them.
    let train = split_files(&run_dir, "train");
    let mut lost: Vec<PathBuf> = Vec::new();
    for label in 0..2 {
        let of_class: Vec<&PathBuf> = train
            .iter()
            .filter(|f| f.1 == label)
            .map(|f| &f.0)
            .collect();
        lost.extend(
            of_class[..of_class.len() / 2]
                .iter()
                .map(|p| p.to_path_buf()),
        );
    }
    lost.extend(
        split_files(&run_dir, "val")[..2]
            .iter()
            .map(|f| f.0.clone()),
    );
    lost.push(split_files(&run_dir, "test")[0].0.clone());
    for path in &lost {
        std::fs::remove_file(path).unwrap();
    }
    let status = wait(&mut child, &out);
    let all = said(&out);
    assert_eq!(status.code(), Some(1), "{all}");
    let resume_command = format!("crackscope train --resume {}", run_dir.to_str().unwrap());
    assert!(
        all.contains("any more")
            && all.contains("last good checkpoint is")
            && all.contains("resume.safetensors (iteration")
            && all.contains(&resume_command)
            && all.contains("--allow-missing"),
        "{all}"
    );
    assert_eq!(all.matches("last good checkpoint is").count(), 1, "{all}");
    let checkpointed = resume_iteration(&run_dir);

    // Resuming is refused, naming the lost files, and changes nothing.
    let skipped_before = std::fs::read(run_dir.join("skipped.json")).unwrap();
    let resume = |extra: &[&str]| {
        let mut args = vec!["train", "--resume", run_dir.to_str().unwrap(), "--headless"];
        args.extend(extra);
        run_with_limit(crackscope().args(&args), Duration::from_secs(300))
    };
    let refused = resume(&[]);
    let said_now = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said_now}");
    assert!(
        said_now.contains(&format!(
            "{} files of the run's split are missing",
            lost.len()
        )) && said_now.contains(lost[0].to_str().unwrap())
            && said_now.contains("--allow-missing"),
        "{said_now}"
    );
    assert_eq!(
        std::fs::read(run_dir.join("skipped.json")).unwrap(),
        skipped_before
    );
    assert_eq!(resume_iteration(&run_dir), checkpointed);

    // Asked to, it goes on without them: smaller sets, a new best, the lost files listed.
    let per_epoch = 12 / 8;
    let epochs = (checkpointed / per_epoch + 1).to_string();
    let all = ok(&resume(&["--allow-missing", "--epochs", &epochs]));
    assert!(
        all.contains(&format!("going on without {} files", lost.len())),
        "{all}"
    );
    assert!(all.contains("starts a new best"), "{all}");
    let start = last_started(&run_dir);
    assert_eq!(start["train_per_class"], serde_json::json!([6, 6]), "{all}");
    assert_eq!(sum(&start["val_per_class"]), 10, "{all}");
    assert_eq!(sum(&start["test_per_class"]), 11, "{all}");
    let skipped: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(run_dir.join("skipped.json")).unwrap()).unwrap();
    for path in &lost {
        assert!(
            skipped.iter().any(|s| s["path"] == path.to_str().unwrap()),
            "{} not in skipped.json",
            path.display()
        );
    }
    // The best accuracy after the resume was measured on the new validation set only.
    let log = events(&run_dir);
    let resumed_at = log.iter().rposition(|e| e["event"] == "started").unwrap();
    let best_after = log[resumed_at..]
        .iter()
        .filter(|e| e["event"] == "validation")
        .map(|e| e["accuracy"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    let finished = log.iter().rfind(|e| e["event"] == "finished").unwrap();
    assert_eq!(
        finished["best_val_accuracy"].as_f64().unwrap() as f32,
        best_after as f32
    );

    // Once left out, the files stay out: a further resume needs no flag and keeps the sets.
    let epochs = (checkpointed / per_epoch + 2).to_string();
    let all = ok(&resume(&["--epochs", &epochs]));
    assert!(!all.contains("new best"), "{all}");
    assert_eq!(
        last_started(&run_dir)["train_per_class"],
        serde_json::json!([6, 6])
    );
}

#[test]
fn a_run_stopped_before_its_first_checkpoint_resumes_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    let run_dir = dir.path().join("run");
    let out = dir.path().join("log");
    let mut child = spawn(&train_args(dir.path(), &data, &run_dir, 500), &out);
    wait_for_iterations(&mut child, &run_dir, 1, &out);
    // Killed while it wrote its first checkpoint: only the temporary file of it exists.
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::write(run_dir.join(".resume.safetensors.tmp99999"), b"half a file").unwrap();
    assert!(!run_dir.join("resume.safetensors").exists());

    // A new training may not take the directory; --resume starts it again.
    let again = run(&train_args(dir.path(), &data, &run_dir, 1)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert!(text(&again).contains("--resume"), "{}", text(&again));
    let resume = |epochs: &str| {
        run_with_limit(
            crackscope().args([
                "train",
                "--resume",
                run_dir.to_str().unwrap(),
                "--epochs",
                epochs,
                "--headless",
            ]),
            Duration::from_secs(300),
        )
    };
    let all = ok(&resume("1"));
    assert!(
        all.contains("no checkpoint yet") && all.contains("iteration 0"),
        "{all}"
    );
    let finished = events(&run_dir)
        .into_iter()
        .rfind(|e| e["event"] == "finished")
        .unwrap();
    assert_eq!(finished["iteration"], 3, "{all}");
    assert_eq!(resume_iteration(&run_dir), 3);
    assert!(leftover_temporaries(&run_dir).is_empty());

    // A resume whose epochs are done already says that nothing was trained.
    let all = ok(&resume("1"));
    assert!(
        all.contains("nothing to train") && all.contains("--epochs 2 or more"),
        "{all}"
    );
}
