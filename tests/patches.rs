//! End-to-end tests of `crackscope patches` (windows cut from photos and masks, labelled from the
//! masks, with a manifest) and of training on several merged `--data` folders, whose split keeps
//! each photo's windows together.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;
use image::{GrayImage, Luma, Rgb, RgbImage};

/// A photo with a distinct texture, saved as JPEG.
fn write_photo(path: &Path, width: u32, height: u32, salt: u32) {
    let photo = RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            (x * 3 + salt) as u8,
            (y * 5 + salt * 7) as u8,
            ((x ^ y) + salt) as u8,
        ])
    });
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    photo.save(path).unwrap();
}

/// A black mask with the given crack pixels white, saved as PNG.
fn write_mask(path: &Path, width: u32, height: u32, crack: impl IntoIterator<Item = (u32, u32)>) {
    let mut mask = GrayImage::new(width, height);
    for (x, y) in crack {
        mask.put_pixel(x, y, Luma([255]));
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    mask.save(path).unwrap();
}

fn patches(photos: &Path, masks: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "patches",
        "--photos",
        photos.to_str().unwrap(),
        "--masks",
        masks.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn patches_are_labelled_from_the_masks_and_listed_in_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let (photos, masks, out) = (
        dir.path().join("photos"),
        dir.path().join("masks"),
        dir.path().join("set"),
    );
    // 64 x 32 photos, 32 px windows at stride 32: windows at x = 0 and x = 32. The central region
    // of a window is its pixels 8..24 each way (256 pixels).
    write_photo(&photos.join("wall.jpg"), 64, 32, 1);
    // 16 crack pixels down the centre of the second window (6 % of its centre): Positive; the first
    // window holds none: Negative.
    write_mask(&masks.join("wall.png"), 64, 32, (8..24).map(|y| (48, y)));
    write_photo(&photos.join("deck.jpg"), 64, 32, 2);
    // One crack pixel in the first window's border: left out; the second window: Negative.
    write_mask(&masks.join("deck.png"), 64, 32, [(2, 2)]);
    // A faint crack: 4 centre pixels (1.6 %), under --min-crack-share 0.02: left out.
    write_photo(&photos.join("slab.jpg"), 64, 32, 3);
    write_mask(&masks.join("slab.png"), 64, 32, (10..14).map(|y| (16, y)));

    let said = ok(&patches(
        &photos,
        &masks,
        &out,
        &[
            "--size",
            "32",
            "--stride",
            "32",
            "--min-crack-share",
            "0.02",
        ],
    ));
    assert!(
        said.contains("1 Positive, 3 Negative, 2 left out"),
        "{said}"
    );
    assert_eq!(names(&out), ["Negative", "Positive", "patches.csv"]);
    assert_eq!(names(&out.join("Positive")), ["wall_x32_y0.jpg"]);
    assert_eq!(
        names(&out.join("Negative")),
        ["deck_x32_y0.jpg", "slab_x32_y0.jpg", "wall_x0_y0.jpg"]
    );
    // Photos are taken in name order (deck, slab, wall), windows row by row.
    let manifest = std::fs::read_to_string(out.join("patches.csv")).unwrap();
    assert_eq!(
        manifest,
        "file,class,photo,x,y,size\n\
         Negative/deck_x32_y0.jpg,Negative,deck.jpg,32,0,32\n\
         Negative/slab_x32_y0.jpg,Negative,slab.jpg,32,0,32\n\
         Negative/wall_x0_y0.jpg,Negative,wall.jpg,0,0,32\n\
         Positive/wall_x32_y0.jpg,Positive,wall.jpg,32,0,32\n"
    );
    let patch = image::open(out.join("Positive/wall_x32_y0.jpg"))
        .unwrap()
        .to_rgb8();
    assert_eq!(patch.dimensions(), (32, 32));
    // The patch holds the photo's pixels from x = 32 (JPEG-close): red = 3x + 1.
    let red = patch.get_pixel(4, 16).0[0] as i32;
    assert!((red - (3 * 36 + 1)).abs() < 16, "red {red}");
    // No staging folder left beside the dataset.
    assert_eq!(names(dir.path()), ["masks", "photos", "set"]);

    // A used folder is refused and left alone.
    let out = patches(&photos, &masks, &out, &["--size", "32"]);
    let said = text(&out);
    assert!(
        !out.status.success() && said.contains("set") && said.contains("not empty"),
        "{said}"
    );
    assert_eq!(names(&dir.path().join("set/Positive")), ["wall_x32_y0.jpg"]);
}

#[test]
fn bad_inputs_name_the_file_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (photos, masks) = (dir.path().join("photos"), dir.path().join("masks"));
    write_photo(&photos.join("a.jpg"), 64, 32, 1);
    write_mask(&masks.join("a.png"), 64, 32, []);
    /// What is wrong, how the files are made so, and what the error must say.
    type Case<'a> = (&'a str, Box<dyn Fn() + 'a>, &'a [&'a str]);
    let cases: [Case; 4] = [
        (
            "no mask",
            Box::new(|| write_photo(&photos.join("b.jpg"), 64, 32, 2)),
            &["b.jpg", "no mask"],
        ),
        (
            "mask of another size",
            Box::new(|| write_mask(&masks.join("b.png"), 32, 32, [])),
            &["b.png", "32x32", "64x32"],
        ),
        (
            "unreadable photo",
            Box::new(|| {
                std::fs::remove_file(photos.join("b.jpg")).unwrap();
                std::fs::remove_file(masks.join("b.png")).unwrap();
                std::fs::write(photos.join("c.jpg"), b"not a jpeg").unwrap();
                write_mask(&masks.join("c.png"), 64, 32, []);
            }),
            &["c.jpg"],
        ),
        (
            "photo smaller than a window",
            Box::new(|| {
                std::fs::remove_file(photos.join("c.jpg")).unwrap();
                write_photo(&photos.join("d.jpg"), 16, 16, 4);
                write_mask(&masks.join("d.png"), 16, 16, []);
            }),
            &["d.jpg", "smaller"],
        ),
    ];
    for (what, make, expected) in cases {
        make();
        let out = patches(&photos, &masks, &dir.path().join("set"), &["--size", "32"]);
        let said = text(&out);
        assert!(!out.status.success(), "{what}: succeeded\n{said}");
        for needle in expected {
            assert!(said.contains(needle), "{what}: {needle} not said:\n{said}");
        }
        assert!(!said.contains("panicked"), "{what}:\n{said}");
        assert_eq!(
            names(dir.path()),
            ["masks", "photos"],
            "{what}: something left behind"
        );
    }
    let out = patches(
        &photos,
        &dir.path().join("nowhere"),
        &dir.path().join("set"),
        &[],
    );
    assert!(
        !out.status.success() && text(&out).contains("nowhere"),
        "{}",
        text(&out)
    );
}

/// The manifest's photo for each file of the patch dataset.
fn photo_of(patch_set: &Path) -> HashMap<String, String> {
    let mut reader = csv::Reader::from_path(patch_set.join("patches.csv")).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[2].to_string())
        })
        .collect()
}

#[test]
fn training_merges_several_data_folders_and_keeps_each_photos_windows_together() {
    let dir = tempfile::tempdir().unwrap();
    // (1) a synthetic patch dataset; (2) patches cut from synthetic whole photos with exact masks;
    // (3) a third class found in one folder only.
    let synth = synth_dataset(dir.path(), 30, 5);
    let photos = synth_photos(&dir.path().join("photos"), 12, 192);
    let cut = dir.path().join("cut");
    ok(&patches(
        &photos.join("photos"),
        &photos.join("masks"),
        &cut,
        &[
            "--size",
            "64",
            "--stride",
            "32",
            "--min-crack-share",
            "0.01",
        ],
    ));
    let other = dir.path().join("other");
    let extra = synth_dataset(&dir.path().join("x"), 10, 99);
    std::fs::create_dir_all(&other).unwrap();
    std::fs::rename(extra.join("Negative"), other.join("Spalling")).unwrap();

    let run_dir = dir.path().join("run");
    let recipe = dir.path().join("recipe.toml");
    std::fs::write(
        &recipe,
        "[data]\nsplit = [0.6, 0.2, 0.2]\ninput_size = 64\n[augment]\ntranslate = 6\n\
         [train]\nbatch_size = 32\nepochs = 1\nval_every = 50\ndevice = \"cpu\"\n",
    )
    .unwrap();
    let said = ok(&run(&[
        "train",
        "--config",
        recipe.to_str().unwrap(),
        "--data",
        synth.to_str().unwrap(),
        "--data",
        cut.to_str().unwrap(),
        "--data",
        other.to_str().unwrap(),
        "--run",
        run_dir.to_str().unwrap(),
        "--headless",
    ]));
    let split: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("split.json")).unwrap()).unwrap();
    assert_eq!(
        split["classes"],
        serde_json::json!(["Negative", "Positive", "Spalling"]),
        "{said}"
    );
    let roots: Vec<PathBuf> = split["roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| PathBuf::from(r.as_str().unwrap()))
        .collect();
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap();
    assert_eq!(
        roots,
        [canonical(&synth), canonical(&cut), canonical(&other)]
    );
    let root = PathBuf::from(split["root"].as_str().unwrap());
    let windows = photo_of(&cut);
    let mut home: HashMap<String, &str> = HashMap::new();
    let mut from = [0usize; 3];
    for part in ["train", "val", "test"] {
        for entry in split[part].as_array().unwrap() {
            let path = root.join(entry["path"].as_str().unwrap());
            let r = roots
                .iter()
                .position(|r| path.starts_with(r))
                .expect("entry under a root");
            from[r] += 1;
            if r == 1 {
                let file = path
                    .strip_prefix(&roots[1])
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let photo = windows[&file].clone();
                let first = *home.entry(photo.clone()).or_insert(part);
                assert_eq!(first, part, "windows of {photo} in {first} and {part}");
            }
        }
    }
    assert!(from.iter().all(|&n| n > 0), "entries per root {from:?}");
    assert!(home.len() >= 3, "photos used: {home:?}");
    // The recipe saved in the run lists both folders, and eval reuses the run's merged split.
    let config = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(
        config.contains(cut.file_name().unwrap().to_str().unwrap()),
        "{config}"
    );
    let out = run(&["eval", run_dir.to_str().unwrap(), "--json"]);
    ok(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tested: usize = split["test"].as_array().unwrap().len();
    assert_eq!(report["images"].as_u64(), Some(tested as u64));
}
