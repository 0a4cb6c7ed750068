//! The scan view end to end: `crackscope synth --photos` and `scan` make an output folder, which
//! `crackscope watch` recognises and shows; driven through tmux like a user at a terminal.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::tmux::Tmux;
use common::*;

/// Three synthetic photos with masks, scanned (with scores, at `threshold`) into `dir/out`.
fn scanned_folder(dir: &Path, threshold: &str) -> PathBuf {
    let root = synth_photos(&dir.join("surfaces"), 3, 200);
    let out = dir.join("out");
    ok(&run(&[
        "scan",
        "--model",
        random_checkpoint(dir, &["Negative", "Positive"])
            .to_str()
            .unwrap(),
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
        // Every window's descriptor, one row a window, for suggesting windows by their look.
        let descriptors = photo
            .descriptors
            .as_ref()
            .expect("a classifier's scan keeps them");
        let rows = crackscope::scan::descriptors::read(&out.join(descriptors), photo.windows.len())
            .unwrap();
        assert!(rows.values.iter().any(|&v| v != 0.0));
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

#[test]
fn windows_are_labelled_by_keyboard_saved_at_once_and_a_stopped_session_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = scanned_folder(dir.path(), "0.5");
    let labels = out.join("labels.csv");
    let command = format!(
        "CRACKSCOPE_GRAPHICS=halfblocks {} watch {}; echo EXIT-CODE-$?; sleep 600",
        env!("CARGO_BIN_EXE_crackscope"),
        out.display()
    );
    let Some(tmux) = Tmux::start("crackscope-scan-labels", &command) else {
        return;
    };
    let limit = Duration::from_secs(60);
    tmux.wait_for("zoom ×1", limit);
    tmux.keys("l");
    let first = tmux.wait_for("labels 0: 0 crack, 0 no crack", limit);
    assert!(
        first.contains("c crack") && first.contains("x no crack"),
        "{first}"
    );
    tmux.keys("c");
    tmux.wait_for("labels 1: 1 crack, 0 no crack, 0 skipped", limit);
    tmux.keys("x");
    tmux.wait_for("labels 2: 1 crack, 1 no crack, 0 skipped", limit);
    tmux.keys("s");
    tmux.wait_for("1 skipped", limit);
    // Each answer is on disk at once: the skip too.
    assert_eq!(std::fs::read_to_string(&labels).unwrap().lines().count(), 4);
    tmux.keys("u");
    tmux.wait_for("is unlabelled again", limit);
    tmux.keys("?");
    tmux.wait_for("crack, no crack, skip", limit);
    tmux.keys("Escape");
    tmux.keys("q");
    let after = tmux.wait_for("EXIT-CODE-", limit);
    assert!(after.contains("EXIT-CODE-0"), "{after}");
    let saved = std::fs::read_to_string(&labels).unwrap();
    let rows: Vec<&str> = saved.lines().collect();
    assert_eq!(rows.len(), 3, "{saved}");
    assert_eq!(rows[0], "photo,x,y,size,label");
    assert!(
        rows[1].ends_with(",crack") && rows[2].ends_with(",no-crack"),
        "{saved}"
    );
    drop(tmux);

    // A new session on the folder starts from the file: two labels, and the next suggestion is
    // a window not yet labelled.
    let Some(tmux) = Tmux::start("crackscope-scan-labels-again", &command) else {
        return;
    };
    tmux.wait_for("zoom ×1", limit);
    tmux.keys("l");
    let again = tmux.wait_for("labels 2: 1 crack, 1 no crack", limit);
    let record = crackscope::scan::output::read(&out).unwrap();
    let shown = |row: &str| {
        let f: Vec<&str> = row.split(',').collect();
        let name = Path::new(f[0])
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        format!("{name} x {} y {}", f[1], f[2])
    };
    for row in &rows[1..] {
        assert!(
            !again.contains(&shown(row)),
            "{row} suggested again:\n{again}"
        );
    }
    assert!(record.photos.len() == 3);
    tmux.keys("c");
    tmux.wait_for("labels 3: 2 crack", limit);
    // `y`: the typical-looks order, from the scan's window descriptors; the window it shows
    // first is the library's first suggestion for these labels.
    use crackscope::scan::labels::{self, Suggest};
    let so_far = labels::read(&out, &record).unwrap();
    let looks = labels::read_descriptors(&out, &record).unwrap();
    let expected = labels::suggest(&record, &so_far, Suggest::Typical, &looks)[0];
    tmux.keys("y");
    // A default scan's descriptors come from its shared pass: the view says how to do better.
    tmux.wait_for("looks from the scan's shared pass", limit);
    tmux.keys("x");
    tmux.wait_for("labels 4: 2 crack, 2 no crack", limit);
    tmux.keys("q");
    tmux.wait_for("EXIT-CODE-0", limit);
    let saved = std::fs::read_to_string(&labels).unwrap();
    let last = saved.lines().last().unwrap();
    let [photo, x, y] = [0, 1, 2].map(|i| last.split(',').nth(i).unwrap().to_string());
    assert_eq!(
        (Path::new(&photo), x.parse().unwrap(), y.parse().unwrap()),
        (
            record.photos[expected.photo].photo.as_path(),
            expected.x,
            expected.y
        ),
        "{saved}"
    );
    assert!(last.ends_with(",no-crack"), "{saved}");
}
