//! Finds the labelled images of a folder-per-class dataset, like MATLAB's
//! `imageDatastore(root, 'IncludeSubfolders', true, 'LabelSource', 'foldernames')`.
//!
//! Every file is read once, hashed (so the split can keep exact duplicates out of two splits) and its
//! header checked, so unreadable files are reported up front instead of failing a training run. A
//! bad file is never fatal: it is listed in [`Dataset::skipped`] with the reason.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::decode;

/// File extensions (compared case-insensitively) taken as images; others are ignored silently.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"];

/// A scanned dataset. Classes are the sorted names of the root's sub-folders; items are ordered by
/// class, then by path, so every later step is deterministic.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The root folder, canonicalised so that saved manifests do not depend on the working directory.
    pub root: PathBuf,
    pub classes: Vec<String>,
    pub items: Vec<Item>,
    pub skipped: Vec<Skipped>,
}

/// One readable image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub path: PathBuf,
    /// Index into [`Dataset::classes`].
    pub label: usize,
    /// blake3 of the file's bytes: equal hashes mean identical files.
    pub hash: [u8; 32],
}

/// A file (or folder) left out, and why; goes into the run report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

impl Dataset {
    /// Number of items of each class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for item in &self.items {
            counts[item.label] += 1;
        }
        counts
    }
}

/// Scans `root`: each visible sub-folder is a class, and every image beneath it, at any depth, is
/// an item of that class. Hidden files and folders (name starting with `.`) are ignored, which also
/// keeps out macOS `._photo.jpg` companions. Symbolic links are followed, each folder visited once.
///
/// Errors when root is missing or not a folder, has fewer than two classes, or a class has no
/// readable image. Unreadable files are skipped with a warning on stderr.
pub fn scan(root: &Path) -> Result<Dataset> {
    let meta = fs::metadata(root)
        .with_context(|| format!("dataset folder {} cannot be opened", root.display()))?;
    if !meta.is_dir() {
        bail!(
            "dataset path {} is not a folder; expected a folder with one sub-folder per class",
            root.display()
        );
    }
    let root = fs::canonicalize(root)
        .with_context(|| format!("cannot resolve dataset folder {}", root.display()))?;

    let mut class_dirs: Vec<PathBuf> = visible_entries(&root)
        .with_context(|| format!("cannot list dataset folder {}", root.display()))?
        .into_iter()
        .filter(|path| path.is_dir())
        .collect();
    class_dirs.sort();
    let classes: Vec<String> = class_dirs
        .iter()
        .map(|dir| {
            dir.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    if classes.len() < 2 {
        bail!(
            "dataset folder {} has {} class folder(s) [{}]; a classifier needs at least two, \
             one sub-folder per class",
            root.display(),
            classes.len(),
            classes.join(", ")
        );
    }

    let mut skipped = Vec::new();
    let mut candidates: Vec<(PathBuf, usize)> = Vec::new();
    let mut visited = HashSet::new();
    for (label, dir) in class_dirs.iter().enumerate() {
        let mut files = Vec::new();
        collect_images(dir, &mut visited, &mut files, &mut skipped);
        files.sort();
        candidates.extend(files.into_iter().map(|path| (path, label)));
    }

    let checked: Vec<Result<[u8; 32], String>> = candidates
        .par_iter()
        .map(|(path, _)| check_file(path))
        .collect();
    let mut items = Vec::with_capacity(candidates.len());
    for ((path, label), result) in candidates.into_iter().zip(checked) {
        match result {
            Ok(hash) => items.push(Item { path, label, hash }),
            Err(reason) => skipped.push(Skipped { path, reason }),
        }
    }
    for skip in &skipped {
        eprintln!("warning: skipping {}: {}", skip.path.display(), skip.reason);
    }

    let dataset = Dataset {
        root,
        classes,
        items,
        skipped,
    };
    for (label, count) in dataset.class_counts().into_iter().enumerate() {
        if count == 0 {
            let dir = &class_dirs[label];
            let bad = dataset
                .skipped
                .iter()
                .filter(|s| s.path.starts_with(dir))
                .count();
            bail!(
                "class '{}' ({}) has no readable images ({bad} unreadable file(s) skipped; \
                 readable extensions: {})",
                dataset.classes[label],
                dir.display(),
                IMAGE_EXTENSIONS.join(" ")
            );
        }
    }
    Ok(dataset)
}

/// The paths of the non-hidden entries of `dir`.
fn visible_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            paths.push(entry.path());
        }
    }
    Ok(paths)
}

/// Appends the image files beneath `dir` to `files`, recursing into sub-folders. A folder that
/// cannot be listed, or is reached a second time through a link, is noted in `skipped`.
fn collect_images(
    dir: &Path,
    visited: &mut HashSet<PathBuf>,
    files: &mut Vec<PathBuf>,
    skipped: &mut Vec<Skipped>,
) {
    let canonical = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !visited.insert(canonical) {
        skipped.push(Skipped {
            path: dir.to_path_buf(),
            reason: "folder already scanned through another path (symbolic link)".into(),
        });
        return;
    }
    let entries = match visible_entries(dir) {
        Ok(entries) => entries,
        Err(e) => {
            skipped.push(Skipped {
                path: dir.to_path_buf(),
                reason: format!("cannot list folder: {e}"),
            });
            return;
        }
    };
    for path in entries {
        // `metadata` follows links; a dangling link fails here and is reported if it looks like an image.
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => collect_images(&path, visited, files, skipped),
            Ok(_) if has_image_extension(&path) => files.push(path),
            Err(e) if has_image_extension(&path) => skipped.push(Skipped {
                path,
                reason: format!("cannot open: {e}"),
            }),
            _ => {}
        }
    }
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| {
            IMAGE_EXTENSIONS
                .iter()
                .any(|known| ext.eq_ignore_ascii_case(known))
        })
}

/// Reads the file once: its blake3 hash if the header is a sane image, else why not.
fn check_file(path: &Path) -> Result<[u8; 32], String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    decode::probe(&bytes).map_err(|e| format!("{e:#}"))?;
    Ok(*blake3::hash(&bytes).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_support::{absurd_png, encode, pattern, write, write_jpegs};
    use image::{ImageBuffer, ImageFormat, Luma, Rgba, RgbaImage};
    use std::io::Cursor;

    fn palette_png() -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, 4, 4);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette(vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[0, 1, 2, 3].repeat(4)).unwrap();
        drop(writer);
        bytes
    }

    fn gray16_png() -> Vec<u8> {
        let gray: ImageBuffer<Luma<u16>, Vec<u16>> =
            ImageBuffer::from_fn(5, 5, |x, y| Luma([(x * 9000 + y * 300) as u16]));
        let mut bytes = Cursor::new(Vec::new());
        gray.write_to(&mut bytes, ImageFormat::Png).unwrap();
        bytes.into_inner()
    }

    fn rgba_png() -> Vec<u8> {
        let rgba = RgbaImage::from_fn(6, 3, |x, y| Rgba([x as u8 * 40, y as u8 * 80, 7, 128]));
        let mut bytes = Cursor::new(Vec::new());
        rgba.write_to(&mut bytes, ImageFormat::Png).unwrap();
        bytes.into_inner()
    }

    /// Two classes with every supported kind of good file, nested, plus every kind of bad file.
    fn mixed_tree(root: &Path) -> PathBuf {
        let crack = root.join("Positive");
        write(
            &crack.join("a.JPG"),
            &encode(&pattern(20, 20, 1), ImageFormat::Jpeg),
        );
        write(&crack.join("deep/er/b.png"), &gray16_png());
        write(&crack.join("deep/c.Png"), &palette_png());
        write(&crack.join("deep/d.png"), &rgba_png());
        write(
            &crack.join("e.bmp"),
            &encode(&pattern(9, 7, 2), ImageFormat::Bmp),
        );
        write(
            &crack.join("f.tiff"),
            &encode(&pattern(9, 7, 3), ImageFormat::Tiff),
        );
        write(
            &crack.join("g.webp"),
            &encode(&pattern(9, 7, 4), ImageFormat::WebP),
        );
        write(
            &crack.join("notes.txt"),
            b"not an image, ignored by extension",
        );
        write(&crack.join(".hidden.jpg"), b"ignored: hidden");
        let normal = root.join("Negative");
        write(
            &normal.join("ok.jpeg"),
            &encode(&pattern(30, 10, 5), ImageFormat::Jpeg),
        );
        write(&normal.join("empty.jpg"), b"");
        write(&normal.join("text.jpg"), b"hello, I am text");
        write(&normal.join("huge.png"), &absurd_png());
        let jpeg = encode(&pattern(64, 64, 6), ImageFormat::Jpeg);
        write(&normal.join("sub/truncated.jpg"), &jpeg[..jpeg.len() / 2]);
        write(&root.join(".git/x.jpg"), b"ignored: hidden class folder");
        write(
            &root.join("README.md"),
            b"loose files in root are not a class",
        );
        crack
    }

    #[test]
    fn scans_nested_mixed_formats_and_lists_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        mixed_tree(dir.path());
        let ds = scan(dir.path()).unwrap();
        assert_eq!(ds.classes, ["Negative", "Positive"]);
        assert_eq!(ds.class_counts(), [1, 7]);
        let names: Vec<String> = ds
            .items
            .iter()
            .map(|i| {
                i.path
                    .strip_prefix(&ds.root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "Negative/ok.jpeg",
                "Positive/a.JPG",
                "Positive/deep/c.Png",
                "Positive/deep/d.png",
                "Positive/deep/er/b.png",
                "Positive/e.bmp",
                "Positive/f.tiff",
                "Positive/g.webp",
            ]
        );
        let reason = |name: &str| {
            let skip = ds.skipped.iter().find(|s| s.path.ends_with(name)).unwrap();
            skip.reason.clone()
        };
        assert_eq!(ds.skipped.len(), 4, "{:?}", ds.skipped);
        assert!(reason("empty.jpg").contains("empty file"));
        assert!(reason("text.jpg").contains("not an image"));
        assert!(reason("huge.png").contains("100000x100000"));
        assert!(reason("truncated.jpg").contains("truncated JPEG"));
        let bytes = fs::read(&ds.items[0].path).unwrap();
        assert_eq!(ds.items[0].hash, *blake3::hash(&bytes).as_bytes());
    }

    #[test]
    fn scan_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        mixed_tree(dir.path());
        let (a, b) = (scan(dir.path()).unwrap(), scan(dir.path()).unwrap());
        assert_eq!(a.items, b.items);
        assert_eq!(a.skipped, b.skipped);
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_folders_are_followed_once() {
        let dir = tempfile::tempdir().unwrap();
        let crack = mixed_tree(dir.path());
        std::os::unix::fs::symlink(&crack, crack.join("deep/loop")).unwrap();
        let ds = scan(dir.path()).unwrap();
        assert_eq!(ds.class_counts(), [1, 7]);
        assert!(ds.skipped.iter().any(|s| s.path.ends_with("deep/loop")));
    }

    #[test]
    fn missing_root_and_file_root_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let message = format!("{:#}", scan(&missing).unwrap_err());
        assert!(
            message.contains("nope") && message.contains("cannot be opened"),
            "{message}"
        );
        let file = dir.path().join("file.jpg");
        write(&file, b"x");
        let message = format!("{:#}", scan(&file).unwrap_err());
        assert!(message.contains("is not a folder"), "{message}");
    }

    #[test]
    fn one_class_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_jpegs(&dir.path().join("Positive"), 2, 0);
        let message = format!("{:#}", scan(dir.path()).unwrap_err());
        assert!(
            message.contains("1 class folder(s) [Positive]"),
            "{message}"
        );
        assert!(message.contains("at least two"), "{message}");
    }

    #[test]
    fn class_without_readable_images_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_jpegs(&dir.path().join("Positive"), 2, 0);
        write(&dir.path().join("Negative/broken.jpg"), b"");
        let message = format!("{:#}", scan(dir.path()).unwrap_err());
        assert!(message.contains("class 'Negative'"), "{message}");
        assert!(message.contains("has no readable images"), "{message}");
        assert!(message.contains("1 unreadable"), "{message}");
    }

    #[test]
    fn real_brickwork_photos_scan_as_two_classes() {
        let Some(data) = crate::testdata::shared_data("") else {
            return;
        };
        let ds = scan(&data.join("brickwork-cracks")).unwrap();
        assert_eq!(ds.classes, ["Negative", "Positive"]);
        assert_eq!(ds.class_counts(), [340, 349]);
        assert!(ds.skipped.is_empty(), "{:?}", ds.skipped);
    }
}
