//! End-to-end tests of scans at campaign scale (issue 22): a scan folder owned by one scan and
//! always in agreement with its scan.json, bad photos as rows, a scan stopped by a signal and
//! continued by the same command, shards merged into what one process writes. Each drives the
//! real binary.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use image::{Rgb, RgbImage};

/// The exit codes of a scan stopped with photos left, and of one with failed photos (README).
const EXIT_STOPPED: i32 = 3;
const EXIT_SOME_FAILED: i32 = 4;

/// A photo whose pixels depend on `seed`, so each photo's numbers are its own.
fn photo(width: u32, height: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            ((x * (5 + seed) + y) % 256) as u8,
            ((y * 3 + seed * 17) % 256) as u8,
            ((x + y * seed) % 256) as u8,
        ])
    })
}

/// `count` photos of `size` px in `dir` (made), named photo_000.png ...
fn photos(dir: &Path, count: u32, size: u32) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        photo(size, size - 8 * (i % 4), i)
            .save(dir.join(format!("photo_{i:03}.png")))
            .unwrap();
    }
    dir.to_path_buf()
}

fn scan_args(model: &Path, inputs: &[&Path], out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "scan".to_string(),
        "--model".into(),
        model.display().to_string(),
    ];
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    args.extend(["--out".into(), out.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run_args(args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args)
}

fn record(folder: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(folder.join("scan.json")).unwrap()).unwrap()
}

/// Files of the folder (no sub-folders).
fn files(folder: &Path) -> BTreeSet<String> {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The folder agrees with its scan.json: every picture belongs to exactly one recorded photo and
/// has that photo's size, so do its window descriptors, and nothing else is there.
fn assert_consistent(folder: &Path) {
    let json = record(folder);
    let mut expected: BTreeSet<String> = ["scan.json", "scan.lock"].map(String::from).into();
    if folder.join("metrics.json").exists() {
        expected.insert("metrics.json".into());
    }
    for entry in json["photos"].as_array().unwrap() {
        let size = (
            entry["width"].as_u64().unwrap() as u32,
            entry["height"].as_u64().unwrap() as u32,
        );
        for key in ["overlay", "mask"] {
            let name = entry[key].as_str().unwrap().to_string();
            let picture = image::open(folder.join(&name)).unwrap();
            assert_eq!(
                (picture.width(), picture.height()),
                size,
                "{name} is not the picture of {}",
                entry["photo"]
            );
            assert!(expected.insert(name.clone()), "{name} named twice");
        }
        let map = entry["map"].as_str().unwrap().to_string();
        assert!(expected.insert(map.clone()), "{map} named twice");
        // A classifier's scan: the windows' descriptors, one row a window.
        let descriptors = entry["descriptors"].as_str().unwrap().to_string();
        let windows = entry["windows"].as_array().unwrap().len();
        crackscope::scan::descriptors::read(&folder.join(&descriptors), windows).unwrap();
        assert!(
            expected.insert(descriptors.clone()),
            "{descriptors} named twice"
        );
    }
    assert_eq!(
        files(folder),
        expected,
        "files that scan.json does not name"
    );
}

/// What a scan found, without where its folder is: photos and failures in order.
fn findings(folder: &Path) -> (serde_json::Value, serde_json::Value) {
    let json = record(folder);
    (json["photos"].clone(), json["failed"].clone())
}

/// Waits until `ready` holds for the folder's scan.json, failing when the child ends first.
fn wait_for(
    child: &mut Child,
    folder: &Path,
    log: &Path,
    ready: impl Fn(&serde_json::Value) -> bool,
) {
    let started = Instant::now();
    loop {
        let json = std::fs::read(folder.join("scan.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        if json.as_ref().is_some_and(&ready) {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the scan ended first ({status}):\n{}", said(log));
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{}",
            said(log)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn photos_sharing_a_stem_or_a_name_get_pictures_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_checkpoint(dir.path(), &["Negative", "Positive"]);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    photo(100, 80, 1).save(a.join("x.jpg")).unwrap();
    photo(120, 70, 2).save(a.join("x.png")).unwrap();
    photo(90, 110, 3).save(b.join("x.png")).unwrap();
    let out = dir.path().join("out");
    ok(&run_args(&scan_args(&model, &[&a, &b], &out, &[])));
    let json = record(&out);
    let entries = json["photos"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let overlays: BTreeSet<&str> = entries
        .iter()
        .map(|e| e["overlay"].as_str().unwrap())
        .collect();
    assert_eq!(
        overlays,
        [
            "x.jpg-overlay.png",
            "x.png-overlay.png",
            "x.png~2-overlay.png"
        ]
        .into()
    );
    // Each picture has its own photo's size: none overwrote another.
    assert_consistent(&out);
}

#[test]
fn a_folder_holding_another_scan_or_other_files_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_checkpoint(dir.path(), &["Negative", "Positive"]);
    let input = photos(&dir.path().join("photos"), 2, 96);
    let out = dir.path().join("out");
    ok(&run_args(&scan_args(&model, &[&input], &out, &[])));
    let before = std::fs::read(out.join("scan.json")).unwrap();
    let other = run_args(&scan_args(&model, &[&input], &out, &["--threshold", "0.3"]));
    assert_eq!(other.status.code(), Some(1), "{}", text(&other));
    let message = text(&other);
    assert!(
        message.contains("holds another scan's results")
            && message.contains("threshold 0.5, not 0.3"),
        "{message}"
    );
    assert_eq!(std::fs::read(out.join("scan.json")).unwrap(), before);
    assert_consistent(&out);

    // A folder with files but no scan.json (an older version's scan, anything else) is no scan's.
    let used = dir.path().join("used");
    std::fs::create_dir_all(&used).unwrap();
    std::fs::write(used.join("metrics.json"), "{}").unwrap();
    std::fs::write(used.join("photo_000-mask.png"), "old").unwrap();
    let refused = run_args(&scan_args(&model, &[&input], &used, &[]));
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("no scan's folder"),
        "{}",
        text(&refused)
    );
    assert_eq!(
        std::fs::read(used.join("photo_000-mask.png")).unwrap(),
        b"old"
    );
    assert!(!used.join("scan.json").exists());
}

#[test]
fn a_second_scan_into_a_folder_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_checkpoint(dir.path(), &["Negative", "Positive"]);
    let input = photos(&dir.path().join("photos"), 24, 320);
    let out = dir.path().join("out");
    let args = scan_args(&model, &[&input], &out, &[]);
    let log = dir.path().join("first");
    let mut first = spawn(&args, &log);
    // The first scan holds the folder from its first record to its end.
    wait_for(&mut first, &out, &log, |json| json["finished"] == false);
    let second = run_args(&args);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    let message = text(&second);
    assert!(
        message.contains("in use by another scan")
            && message.contains(&format!("process {}", first.id())),
        "{message}"
    );
    assert!(wait(&mut first, &log).success(), "{}", said(&log));
    assert_eq!(record(&out)["photos"].as_array().unwrap().len(), 24);
    assert_consistent(&out);
}

#[test]
fn a_bad_photo_is_a_row_with_its_reason_and_the_scan_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_checkpoint(dir.path(), &["Negative", "Positive"]);
    let input = dir.path().join("photos");
    std::fs::create_dir_all(&input).unwrap();
    photo(100, 90, 1).save(input.join("a_good.png")).unwrap();
    std::fs::write(input.join("b_empty.jpg"), b"").unwrap();
    std::fs::write(input.join("c_garbage.png"), b"this is not a picture at all").unwrap();
    photo(120, 100, 2).save(input.join("d_whole.jpg")).unwrap();
    let jpeg = std::fs::read(input.join("d_whole.jpg")).unwrap();
    std::fs::write(input.join("e_truncated.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    photo(110, 100, 3).save(input.join("f_good.png")).unwrap();
    let out = dir.path().join("out");
    let result = run_args(&scan_args(&model, &[&input], &out, &[]));
    let message = text(&result);
    assert_eq!(result.status.code(), Some(EXIT_SOME_FAILED), "{message}");
    for bad in ["b_empty.jpg", "c_garbage.png", "e_truncated.jpg"] {
        assert!(
            message
                .lines()
                .any(|l| l.contains("failed") && l.contains(bad)),
            "{bad} is not a row:\n{message}"
        );
    }
    assert!(
        message.contains("3 of 6 files could not be scanned"),
        "{message}"
    );
    let json = record(&out);
    assert_eq!(json["photos"].as_array().unwrap().len(), 3);
    assert_eq!(json["finished"], true);
    let failed = json["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 3);
    assert!(failed
        .iter()
        .all(|f| !f["error"].as_str().unwrap().is_empty()));
    assert!(failed[0]["photo"]
        .as_str()
        .unwrap()
        .ends_with("b_empty.jpg"));
    assert_consistent(&out);
    // JSON rows too: {path, error} for the failed.
    let result = run_args(&scan_args(&model, &[&input], &out, &["--json"]));
    assert_eq!(result.status.code(), Some(EXIT_SOME_FAILED));
    let rows: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 6);
    assert!(rows[1]["error"].is_string() && rows[0]["windows"].is_array());
}

#[test]
fn a_signal_stops_the_scan_with_a_record_and_the_same_command_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_checkpoint(dir.path(), &["Negative", "Positive"]);
    let input = photos(&dir.path().join("photos"), 30, 320);
    let whole = dir.path().join("whole");
    ok(&run_args(&scan_args(&model, &[&input], &whole, &[])));
    for (round, signal) in [(1, libc::SIGTERM), (2, libc::SIGINT), (3, libc::SIGHUP)] {
        let out = dir.path().join(format!("out{round}"));
        let args = scan_args(&model, &[&input], &out, &[]);
        let log = dir.path().join(format!("stopped{round}"));
        let mut child = spawn(&args, &log);
        wait_for(&mut child, &out, &log, |json| {
            json["photos"].as_array().is_some_and(|p| p.len() >= 2)
        });
        send(&child, signal);
        let status = wait(&mut child, &log);
        let message = said(&log);
        assert_eq!(status.code(), Some(EXIT_STOPPED), "{message}");
        assert!(
            message.contains("photos left to scan") && message.contains("continues the scan"),
            "{message}"
        );
        let json = record(&out);
        assert_eq!(json["finished"], false);
        let done = json["photos"].as_array().unwrap().len();
        assert!((2..30).contains(&done), "{done} photos done");
        assert_consistent(&out);
        let again = ok(&run_args(&args));
        assert!(
            again.contains(&format!("{done} photos were scanned by an earlier run")),
            "{again}"
        );
        assert_eq!(record(&out)["finished"], true);
        assert_consistent(&out);
        assert_eq!(findings(&out), findings(&whole), "after {signal}");
    }
}

#[test]
fn a_rerun_of_a_finished_scan_skips_the_photos_done() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_checkpoint(dir.path(), &["Negative", "Positive"]);
    let input = photos(&dir.path().join("photos"), 3, 96);
    let out = dir.path().join("out");
    let args = scan_args(&model, &[&input], &out, &[]);
    ok(&run_args(&args));
    let before = findings(&out);
    // A photo that changed after its scan is not read again: it was done.
    std::fs::write(input.join("photo_001.png"), b"garbage now").unwrap();
    let said = ok(&run_args(&args));
    assert!(
        said.contains("3 photos were scanned by an earlier run"),
        "{said}"
    );
    assert_eq!(findings(&out), before);
    // A picture deleted by hand: that photo alone is scanned again.
    let removed = record(&out)["photos"][2]["mask"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(out.join(&removed)).unwrap();
    let said = ok(&run_args(&args));
    assert!(
        said.contains("2 photos were scanned by an earlier run"),
        "{said}"
    );
    assert_eq!(findings(&out), before);
    assert_consistent(&out);
}

#[test]
fn shards_merged_are_one_scan_of_all_photos() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_checkpoint(dir.path(), &["Negative", "Positive"]);
    let input = photos(&dir.path().join("photos"), 7, 96);
    std::fs::write(input.join("photo_999.png"), b"broken").unwrap();
    let whole = dir.path().join("whole");
    let status = run_args(&scan_args(&model, &[&input], &whole, &[]));
    assert_eq!(
        status.status.code(),
        Some(EXIT_SOME_FAILED),
        "{}",
        text(&status)
    );
    let out = dir.path().join("campaign");
    // Shard 1 as a flag, 2 as a Slurm array task, 3 as a Kubernetes indexed job.
    let args = scan_args(&model, &[&input], &out, &[]);
    let first = run_args(&[args.clone(), vec!["--shard".into(), "1/3".into()]].concat());
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let mut slurm = crackscope();
    slurm
        .args(&args)
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_MIN", "0")
        .env("SLURM_ARRAY_TASK_COUNT", "3");
    let second = run_with_limit(&mut slurm, Duration::from_secs(300));
    // The broken photo (place 7) is shard 2's: 7 % 3 = 1.
    assert_eq!(
        second.status.code(),
        Some(EXIT_SOME_FAILED),
        "{}",
        text(&second)
    );
    // Not merged while a shard is missing.
    let early = run(&["scan-merge", out.to_str().unwrap()]);
    assert!(
        text(&early).contains("shard 3/3 is missing"),
        "{}",
        text(&early)
    );
    let mut kubernetes: Command = crackscope();
    kubernetes
        .args(&args)
        .args(["--shard-count", "3"])
        .env("JOB_COMPLETION_INDEX", "2");
    let third = run_with_limit(&mut kubernetes, Duration::from_secs(300));
    assert!(third.status.success(), "{}", text(&third));
    for k in 1..=3 {
        assert_consistent(&out.join(format!("shard-{k}-of-3")));
    }
    let said = ok(&run(&["scan-merge", out.to_str().unwrap()]));
    assert!(said.contains("merged 3 shards"), "{said}");
    assert_consistent(&out);
    assert_eq!(findings(&out), findings(&whole));
    assert_eq!(record(&out)["finished"], true);
    // What `watch` opens reads back.
    crackscope::scan::output::read(&out).unwrap();

    // Refused: a shard of another scan, and a shard not finished.
    let other = dir.path().join("other");
    let args = scan_args(
        &model,
        &[&input],
        &other,
        &["--threshold", "0.3", "--shard", "1/3"],
    );
    assert_eq!(run_args(&args).status.code(), Some(0));
    let shard = |k: usize| out.join(format!("shard-{k}-of-3")).display().to_string();
    let merged = dir.path().join("merged").display().to_string();
    let mixed = run(&[
        "scan-merge",
        &merged,
        other.join("shard-1-of-3").to_str().unwrap(),
        &shard(2),
        &shard(3),
    ]);
    assert!(
        text(&mixed).contains("is a shard of another scan") && text(&mixed).contains("threshold"),
        "{}",
        text(&mixed)
    );
    let path = out.join("shard-3-of-3").join("scan.json");
    let mut unfinished = record(&out.join("shard-3-of-3"));
    unfinished["finished"] = false.into();
    std::fs::write(&path, unfinished.to_string()).unwrap();
    let early = run(&["scan-merge", &merged, &shard(1), &shard(2), &shard(3)]);
    assert!(text(&early).contains("is not finished"), "{}", text(&early));
    assert!(!Path::new(&merged).join("scan.json").exists());
}
