//! End-to-end tests of what `crackscope scan --masks` shows of its errors: the overlay painted by
//! verdict (hit, miss, false alarm) and the threshold sweep in scan.json, which a continued scan
//! and a merge of shards add up to what one scan of every photo records.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use image::{GrayImage, RgbImage};

/// Three synthetic photos with exact masks, and a model with random weights (what is checked is
/// the bookkeeping, not what the model finds).
struct Surfaces {
    model: String,
    photos: String,
    masks: PathBuf,
}

impl Surfaces {
    fn new(dir: &Path) -> Surfaces {
        let root = synth_photos(&dir.join("surfaces"), 3, 160);
        let model = random_checkpoint(dir, &["Negative", "Positive"]);
        Surfaces {
            model: model.display().to_string(),
            photos: root.join("photos").display().to_string(),
            masks: root.join("masks"),
        }
    }

    /// `scan --masks` of the photos into `out`, with `extra` flags.
    fn scan(&self, out: &Path, extra: &[&str]) {
        let mut args = vec![
            "scan",
            "--model",
            &self.model,
            &self.photos,
            "--masks",
            self.masks.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ok(&run(&args));
    }
}

/// The first pixel of `mask` that is `wanted` and away from the window outlines (64 px windows
/// every 32 px).
fn pixel_between_outlines(mask: &GrayImage, wanted: impl Fn(u8) -> bool) -> (u32, u32) {
    let inside = |v: u32| !matches!(v % 32, 0 | 31);
    mask.enumerate_pixels()
        .find(|(x, y, p)| wanted(p.0[0]) && inside(*x) && inside(*y))
        .map(|(x, y, _)| (x, y))
        .expect("such a pixel")
}

fn overlay(folder: &Path) -> RgbImage {
    image::open(folder.join("photo_00001-overlay.png"))
        .unwrap()
        .to_rgb8()
}

fn record(folder: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(folder.join("scan.json")).unwrap()).unwrap()
}

#[test]
fn the_sweep_is_recorded_per_photo_and_overall_and_shards_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let surfaces = Surfaces::new(dir.path());
    let scan = |out: &Path, extra: &[&str]| {
        surfaces.scan(out, &[&["--threshold", "0.42"], extra].concat());
    };
    let whole = dir.path().join("whole");
    scan(&whole, &[]);
    let r = record(&whole);
    let sweep = r["sweep"].as_array().expect("an overall sweep");
    assert_eq!(sweep.len(), 20, "the 0.05 grid and the scan's own 0.42");
    let at = sweep
        .iter()
        .find(|p| (p["threshold"].as_f64().unwrap() - 0.42).abs() < 1e-6)
        .expect("the scan's threshold is swept");
    // At the scan's own threshold the sweep's counts give the scan's own scores.
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(whole.join("metrics.json")).unwrap()).unwrap();
    let (tp, fp, fn_) = (
        at["windows"]["true_positive"].as_f64().unwrap(),
        at["windows"]["false_positive"].as_f64().unwrap(),
        at["windows"]["false_negative"].as_f64().unwrap(),
    );
    if tp + fp > 0.0 {
        let precision = metrics["window"]["precision"].as_f64().unwrap();
        assert!((precision - tp / (tp + fp)).abs() < 1e-9);
    }
    let recall = metrics["window"]["recall"].as_f64().unwrap();
    assert!((recall - tp / (tp + fn_)).abs() < 1e-9);
    let px = &at["pixels"];
    let pixel_recall = metrics["pixel"]["recall"].as_f64().unwrap();
    let expected = px["truth_matched"].as_f64().unwrap() / px["truth"].as_f64().unwrap();
    assert!((pixel_recall - expected).abs() < 1e-9);
    // Recall falls (never rises) as the threshold rises.
    let recalls: Vec<u64> = sweep
        .iter()
        .map(|p| p["pixels"]["truth_matched"].as_u64().unwrap())
        .collect();
    assert!(recalls.windows(2).all(|w| w[0] >= w[1]), "{recalls:?}");
    for photo in r["photos"].as_array().unwrap() {
        assert_eq!(photo["sweep"].as_array().unwrap().len(), 20);
    }

    // Two shards merged: the same overall sweep (counts add up).
    let campaign = dir.path().join("campaign");
    scan(&campaign, &["--shard", "1/2"]);
    scan(&campaign, &["--shard", "2/2"]);
    ok(&run(&["scan-merge", campaign.to_str().unwrap()]));
    assert_eq!(record(&campaign)["sweep"], r["sweep"]);
    let shard = record(&campaign.join("shard-1-of-2"));
    assert_ne!(
        shard["sweep"], r["sweep"],
        "a shard alone counts fewer photos"
    );

    // A scan without masks has no sweep.
    let plain = dir.path().join("plain");
    ok(&run(&[
        "scan",
        "--model",
        &surfaces.model,
        &surfaces.photos,
        "--out",
        plain.to_str().unwrap(),
    ]));
    assert!(record(&plain).get("sweep").is_none());

    // `figures` draws the sweep of a scan with masks, and says why it cannot without.
    let said = ok(&run(&["figures", whole.to_str().unwrap()]));
    let figure = whole.join("figures").join("threshold-sweep.png");
    assert!(said.contains("threshold-sweep.png"), "{said}");
    let picture = image::open(&figure).unwrap();
    assert!(picture.width() >= 900 && picture.height() >= 700);
    let refused = run(&["figures", plain.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("no threshold sweep"),
        "{}",
        text(&refused)
    );
}

#[test]
fn the_overlay_against_masks_shows_verdicts_in_their_colours_on_grey() {
    let dir = tempfile::tempdir().unwrap();
    let surfaces = Surfaces::new(dir.path());
    let out = dir.path().join("out");
    // Threshold 0: every window and pixel is predicted, so every crack pixel is a hit and
    // every crack-free window a false alarm.
    surfaces.scan(&out, &["--threshold", "0"]);
    let painted = overlay(&out);
    let truth = image::open(surfaces.masks.join("photo_00001.png"))
        .unwrap()
        .to_luma8();
    let count = |colour: [u8; 3]| painted.pixels().filter(|p| p.0 == colour).count();
    let (false_alarm, miss) = (count([213, 94, 0]), count([240, 228, 66]));
    assert!(
        false_alarm > 0,
        "clear windows outlined in vermillion at threshold 0"
    );
    assert_eq!(miss, 0, "nothing is missed at threshold 0");
    // Every pixel is predicted, so each is tinted: near a crack sky blue, elsewhere vermillion.
    let (x, y) = pixel_between_outlines(&truth, |v| v > 0);
    let on_crack = painted.get_pixel(x, y).0;
    assert!(
        on_crack[2] > on_crack[0],
        "a crack pixel found is bluish: {on_crack:?}"
    );

    // Threshold 1: nothing predicted; crack pixels are misses (yellowish), and so are crack
    // windows' outlines; the rest is grey.
    let high = dir.path().join("high");
    surfaces.scan(&high, &["--threshold", "1"]);
    let painted = overlay(&high);
    let missed = painted.get_pixel(x, y).0;
    assert!(
        missed[0] > missed[2] + 60 && missed[1] > missed[2] + 60,
        "a crack pixel missed is yellowish: {missed:?}"
    );
    let (gx, gy) = pixel_between_outlines(&truth, |v| v == 0);
    let grey = painted.get_pixel(gx, gy).0;
    assert!(
        grey[0] == grey[1] && grey[1] == grey[2],
        "elsewhere the photo is grey: {grey:?}"
    );
}

/// The real binary under tmux: `t` shows the errors layer with its legend, `g` the sweep with the
/// scan's threshold marked, and both close again.
#[test]
fn watch_shows_errors_and_the_sweep_by_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    Surfaces::new(dir.path()).scan(&out, &[]);
    let command = format!(
        "CRACKSCOPE_GRAPHICS=halfblocks {} watch {}; echo EXIT-CODE-$?; sleep 600",
        env!("CARGO_BIN_EXE_crackscope"),
        out.display()
    );
    let Some(tmux) = common::tmux::Tmux::start("crackscope-scan-errors", &command) else {
        return;
    };
    let limit = std::time::Duration::from_secs(60);
    tmux.wait_for("zoom ×1", limit);
    tmux.keys("t");
    let shown = tmux.wait_for("sky blue hit, yellow miss", limit);
    assert!(shown.contains("+ errors"), "{shown}");
    tmux.keys("g");
    let sweep = tmux.wait_for("threshold sweep (g closes)", limit);
    assert!(sweep.contains("▶     0.50"), "{sweep}");
    assert!(
        sweep.contains("win F1") && sweep.contains("px F1"),
        "{sweep}"
    );
    tmux.keys("g");
    tmux.keys("t");
    let back = tmux.wait_for("map + windows + regions ", limit);
    assert!(!back.contains("threshold sweep"), "{back}");
    tmux.keys("q");
    let after = tmux.wait_for("EXIT-CODE-", limit);
    assert!(after.contains("EXIT-CODE-0"), "{after}");
}
