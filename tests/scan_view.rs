//! The scan view end to end: `crackscope synth --photos` and `scan` make an output folder, which
//! `crackscope watch` recognises and shows; driven through tmux like a user at a terminal.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use common::tmux::Tmux;
use common::*;
use crackscope::model::{init_backbone, init_head, save_checkpoint, CheckpointMeta, SqueezeNet};

/// A checkpoint with random weights and a 64-pixel input: what it finds does not matter here.
fn checkpoint(dir: &Path) -> PathBuf {
    let varmap = VarMap::new();
    SqueezeNet::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        Some(2),
    )
    .unwrap();
    init_backbone(&varmap, 1).unwrap();
    init_head(&varmap, 1).unwrap();
    let path = dir.join("model.safetensors");
    let classes = ["Negative".to_string(), "Positive".to_string()];
    let meta = CheckpointMeta {
        input_size: Some(64),
        ..Default::default()
    };
    save_checkpoint(&path, &varmap, &classes, &meta).unwrap();
    path
}

/// Three synthetic photos with masks, scanned (with scores, at `threshold`) into `dir/out`.
fn scanned_folder(dir: &Path, threshold: &str) -> PathBuf {
    let root = dir.join("surfaces");
    ok(&run(&[
        "synth",
        "--out",
        root.to_str().unwrap(),
        "--photos",
        "3",
        "--size",
        "200",
        "--detail",
        "64",
    ]));
    let out = dir.join("out");
    ok(&run(&[
        "scan",
        "--model",
        checkpoint(dir).to_str().unwrap(),
        root.join("photos").to_str().unwrap(),
        "--masks",
        root.join("masks").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--threshold",
        threshold,
    ]));
    out
}

#[test]
fn scan_leaves_a_record_that_watch_recognises() {
    let dir = tempfile::tempdir().unwrap();
    let out = scanned_folder(dir.path(), "0.5");
    let record = crackscope::scan::output::read(&out).unwrap();
    assert_eq!(record.photos.len(), 3);
    assert_eq!(record.class, "Positive");
    assert!(record.overall.is_some(), "scores over all photos");
    for photo in &record.photos {
        assert!(photo.photo.is_absolute() && photo.photo.is_file());
        assert_eq!((photo.width, photo.height), (200, 200));
        assert!(photo.metrics.is_some());
        let map = image::open(out.join(&photo.map)).unwrap().to_luma8();
        // One map pixel per 16-pixel cell, reaching to within a cell of each edge (beyond the
        // last cell's centre its value holds).
        let covered = (map.width() * photo.map_cell, map.height() * photo.map_cell);
        let cell = photo.map_cell;
        assert!(
            covered.0 + cell > 200 && covered.1 + cell > 200 && covered.0 < 200 + 64,
            "{covered:?}"
        );
        for name in [&photo.overlay, &photo.mask] {
            assert!(out.join(name).is_file(), "{name}");
        }
        // The regions' boxes are those of the mask written beside them, largest first.
        let mask = image::open(out.join(&photo.mask)).unwrap().to_luma8();
        let found = crackscope::scan::regions::regions(&mask);
        assert_eq!(photo.regions, found.len());
        assert_eq!(
            photo.region_boxes,
            crackscope::scan::output::region_boxes(&found)
        );
    }

    // Without a terminal, watch says so (after recognising the folder).
    let said = text(&run(&["watch", out.to_str().unwrap()]));
    assert!(said.contains("needs a terminal"), "{said}");
    // A folder that is neither a run nor a scan is named in the error.
    let other = dir.path().join("surfaces");
    let said = text(&run(&["watch", other.to_str().unwrap()]));
    assert!(
        said.contains("neither a run directory") && said.contains("surfaces"),
        "{said}"
    );
}

#[test]
fn watch_opens_a_scan_folder_pans_zooms_pages_and_quits() {
    let dir = tempfile::tempdir().unwrap();
    // At threshold 0 every pixel is in the mask: one region, the whole photo, whatever the
    // random model finds.
    let out = scanned_folder(dir.path(), "0");
    let command = format!(
        "CRACKSCOPE_GRAPHICS=halfblocks {} watch {}; echo EXIT-CODE-$?; sleep 600",
        env!("CARGO_BIN_EXE_crackscope"),
        out.display()
    );
    let Some(tmux) = Tmux::start("crackscope-scan-view", &command) else {
        return;
    };
    let limit = Duration::from_secs(60);
    let first = tmux.wait_for("zoom ×1 · view x 0-200 y 0-200", limit);
    assert!(
        first.contains("crackscope scan") && first.contains("3 photos"),
        "{first}"
    );
    assert!(first.contains("photo_0000"), "{first}");
    tmux.keys("+");
    tmux.wait_for("zoom ×2", limit);
    tmux.keys("Right");
    tmux.keys("Right");
    // Two quarters of the view reach the right edge, and stop there.
    tmux.wait_for("-200 y", limit);
    tmux.keys("k");
    tmux.wait_for("map + mask + windows", limit);
    tmux.keys("n");
    tmux.wait_for("zoom ×1", limit);
    tmux.keys("]");
    tmux.wait_for("region 1 of 1, area 40000 px", limit);
    tmux.keys("?");
    tmux.wait_for("next / previous photo", limit);
    tmux.keys("Escape");
    tmux.wait_for("n/p photo", limit);
    tmux.keys("q");
    let after = tmux.wait_for("EXIT-CODE-", limit);
    assert!(after.contains("EXIT-CODE-0"), "{after}");
    assert!(
        !after.contains("n/p photo"),
        "the terminal is restored:\n{after}"
    );
}
