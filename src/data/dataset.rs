//! Finds the labelled images of a folder-per-class dataset, like MATLAB's
//! `imageDatastore(root, 'IncludeSubfolders', true, 'LabelSource', 'foldernames')`.
//!
//! Every file is read once, hashed (so the split can keep exact duplicates out of two splits) and its
//! header checked, so unreadable files are reported up front instead of failing a training run. A
//! bad file is never fatal: it is listed in [`Dataset::skipped`] with the reason.
//!
//! Never a wrong label: an image reachable under two classes (the same file through a symbolic
//! link, or the same bytes copied into two class folders) is a labelling conflict and left out of
//! every class, with both paths in the reason. Links are followed as torchvision's `ImageFolder`
//! does (an image is labelled by the class folder it appears in, wherever the link points), except
//! one that loops back to a folder it is inside of, which is skipped.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::decode;
use crate::core::warn::warn;

/// File extensions (compared case-insensitively) taken as images; others are ignored silently.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"];

/// A discovered dataset. Classes are the sorted names of the root's sub-folders; items are ordered by
/// class, then by path, so every later step is deterministic.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The root folder, canonicalised so that saved manifests do not depend on the working directory;
    /// with several roots, the deepest folder that holds them all.
    pub root: PathBuf,
    /// The dataset folders scanned (canonical), in the order given.
    pub roots: Vec<PathBuf>,
    /// The name of each root as a data source (see [`crate::data::sources`]), in root order.
    pub sources: Vec<String>,
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
    /// Index into [`Dataset::roots`] (and [`Dataset::sources`]) of the folder it was found in.
    pub source: usize,
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

/// One dataset folder or several: what [`discover`] accepts.
pub trait DatasetRoots {
    fn roots(&self) -> Vec<PathBuf>;
}

impl DatasetRoots for Path {
    fn roots(&self) -> Vec<PathBuf> {
        vec![self.to_path_buf()]
    }
}

impl DatasetRoots for PathBuf {
    fn roots(&self) -> Vec<PathBuf> {
        vec![self.clone()]
    }
}

impl DatasetRoots for [PathBuf] {
    fn roots(&self) -> Vec<PathBuf> {
        self.to_vec()
    }
}

impl DatasetRoots for Vec<PathBuf> {
    fn roots(&self) -> Vec<PathBuf> {
        self.clone()
    }
}

/// Scans one dataset folder, or several merged: each visible sub-folder of a root is a class, and
/// every image beneath it, at any depth, is an item of that class. Several roots are merged by class
/// folder name (the classes are the sorted union of their names), so that e.g. `Positive` of two
/// datasets is one class; duplicates and labelling conflicts are found across all of them. Hidden
/// files and folders (name starting with `.`) are ignored, which also keeps out macOS
/// `._photo.jpg` companions. Symbolic links are followed, each folder visited once per class; a
/// link back to a root or to a folder it is inside of is skipped.
///
/// Errors when a root is missing or not a folder, is given twice, there are fewer than two classes,
/// or a class has no usable image. Unreadable files and labelling conflicts are skipped with a
/// warning on stderr.
pub fn discover<R: DatasetRoots + ?Sized>(roots: &R) -> Result<Dataset> {
    let given = roots.roots();
    if given.is_empty() {
        bail!("no dataset folder given");
    }
    let mut canonical_roots: Vec<PathBuf> = Vec::with_capacity(given.len());
    // (class name, class folder, index of its root)
    let mut class_dirs: Vec<(String, PathBuf, usize)> = Vec::new();
    for root in &given {
        let meta = fs::metadata(root)
            .with_context(|| format!("dataset folder {} cannot be opened", root.display()))?;
        if !meta.is_dir() {
            bail!(
                "dataset path {} is not a folder; expected a folder with one sub-folder per class",
                root.display()
            );
        }
        let canonical = fs::canonicalize(root)
            .with_context(|| format!("cannot resolve dataset folder {}", root.display()))?;
        if canonical_roots.contains(&canonical) {
            bail!("dataset folder {} is given twice", root.display());
        }
        let mut dirs: Vec<PathBuf> = visible_entries(&canonical)
            .with_context(|| format!("cannot list dataset folder {}", root.display()))?
            .into_iter()
            .filter(|path| path.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let name = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            class_dirs.push((name, dir, canonical_roots.len()));
        }
        canonical_roots.push(canonical);
    }
    let mut classes: Vec<String> = class_dirs.iter().map(|(name, ..)| name.clone()).collect();
    classes.sort();
    classes.dedup();
    let shown = || {
        let names: Vec<String> = given.iter().map(|r| r.display().to_string()).collect();
        names.join(" + ")
    };
    if classes.len() < 2 {
        bail!(
            "dataset folder {} has {} class folder(s) [{}]; a classifier needs at least two, \
             one sub-folder per class",
            shown(),
            classes.len(),
            classes.join(", ")
        );
    }
    let dirs_of = |label: usize| -> Vec<&(String, PathBuf, usize)> {
        class_dirs
            .iter()
            .filter(|(name, ..)| *name == classes[label])
            .collect()
    };

    let mut skipped = Vec::new();
    // (file, class, root it was found under)
    let mut candidates: Vec<(PathBuf, usize, usize)> = Vec::new();
    for label in 0..classes.len() {
        let mut walk = Walk {
            ancestors: Vec::new(),
            visited: HashSet::new(),
            files: Vec::new(),
            skipped: &mut skipped,
        };
        let mut files: Vec<(PathBuf, usize)> = Vec::new();
        for (_, dir, root) in dirs_of(label) {
            walk.ancestors = vec![canonical_roots[*root].clone()];
            walk.collect(dir);
            files.extend(walk.files.drain(..).map(|path| (path, *root)));
        }
        files.sort();
        candidates.extend(files.into_iter().map(|(path, root)| (path, label, root)));
    }

    let checked: Vec<Result<[u8; 32], String>> = candidates
        .par_iter()
        .map(|(path, ..)| check_file(path))
        .collect();
    let mut items = Vec::with_capacity(candidates.len());
    for ((path, label, source), result) in candidates.into_iter().zip(checked) {
        match result {
            Ok(hash) => items.push(Item {
                path,
                label,
                hash,
                source,
            }),
            Err(reason) => skipped.push(Skipped { path, reason }),
        }
    }
    let conflicts = labelling_conflicts(&items, &classes);
    let conflicted = conflicts.len();
    let left_out: HashSet<&Path> = conflicts.iter().map(|c| c.path.as_path()).collect();
    items.retain(|item| !left_out.contains(item.path.as_path()));
    skipped.extend(conflicts);
    for skip in &skipped {
        warn(format!("skipping {}: {}", skip.path.display(), skip.reason));
    }

    let dataset = Dataset {
        root: common_ancestor(&canonical_roots),
        sources: crate::data::sources::names(&canonical_roots, &[])?,
        roots: canonical_roots.clone(),
        classes: classes.clone(),
        items,
        skipped,
    };
    for (label, count) in dataset.class_counts().into_iter().enumerate() {
        if count == 0 {
            let dirs: Vec<&PathBuf> = dirs_of(label).into_iter().map(|(_, dir, _)| dir).collect();
            let shown_dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            let shown_dirs = shown_dirs.join(", ");
            let (conflicts, bad): (Vec<&Skipped>, Vec<&Skipped>) = dataset
                .skipped
                .iter()
                .filter(|s| dirs.iter().any(|dir| s.path.starts_with(dir)))
                .partition(|s| s.reason.starts_with(CONFLICT));
            if !conflicts.is_empty() {
                bail!(
                    "class '{}' ({shown_dirs}) has no usable images: {} are labelling conflicts, also \
                     found under another class (first: {}: {}); {} unreadable; fix the links or \
                     copies ({conflicted} conflicts in all)",
                    dataset.classes[label],
                    conflicts.len(),
                    conflicts[0].path.display(),
                    conflicts[0].reason,
                    bad.len()
                );
            }
            bail!(
                "class '{}' ({shown_dirs}) has no readable images ({} unreadable file(s) skipped; \
                 readable extensions: {})",
                dataset.classes[label],
                bad.len(),
                IMAGE_EXTENSIONS.join(" ")
            );
        }
    }
    Ok(dataset)
}

/// The deepest folder that holds every root (the root itself when there is one), so that the
/// split's entries can stay relative to it.
fn common_ancestor(roots: &[PathBuf]) -> PathBuf {
    let mut common = roots[0].clone();
    while !roots.iter().all(|r| r.starts_with(&common)) {
        if !common.pop() {
            break;
        }
    }
    common
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

/// How every labelling conflict's reason starts (also how the empty-class message finds them).
const CONFLICT: &str = "labelling conflict";
/// How the reasons of links not followed start: one that loops, one to a folder seen already.
const LOOP: &str = "symbolic link loop";
const SEEN_TWICE: &str = "folder already scanned";

impl Skipped {
    /// True for a file (or folder) that could not be read; false for one left out on purpose: a
    /// labelling conflict, or a link that loops or reaches a folder a second time.
    pub fn is_unreadable(&self) -> bool {
        ![CONFLICT, LOOP, SEEN_TWICE]
            .iter()
            .any(|start| self.reason.starts_with(start))
    }
}

/// The items whose bytes also appear under another class, each as a [`Skipped`] naming a copy in
/// another class: all copies are left out, since either label could be the wrong one.
fn labelling_conflicts(items: &[Item], classes: &[String]) -> Vec<Skipped> {
    let mut by_hash: HashMap<[u8; 32], Vec<&Item>> = HashMap::new();
    for item in items {
        by_hash.entry(item.hash).or_default().push(item);
    }
    let mut conflicts = Vec::new();
    for item in items {
        let copies = &by_hash[&item.hash];
        let Some(other) = copies.iter().find(|other| other.label != item.label) else {
            continue;
        };
        let same_file = match (fs::canonicalize(&item.path), fs::canonicalize(&other.path)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        let how = if same_file {
            "the same file (through a symbolic link)"
        } else {
            "an identical copy"
        };
        conflicts.push(Skipped {
            path: item.path.clone(),
            reason: format!(
                "{CONFLICT}: labelled '{}' here, but {how} is {} in class '{}'; left out of both",
                classes[item.label],
                other.path.display(),
                classes[other.label]
            ),
        });
    }
    conflicts
}

/// One class's walk through its folder and the folders linked from it.
struct Walk<'a> {
    /// Canonical paths of the dataset root and of the folders being walked, outermost first: a
    /// link to one of them would loop.
    ancestors: Vec<PathBuf>,
    /// Canonical paths of the folders already walked for this class.
    visited: HashSet<PathBuf>,
    files: Vec<PathBuf>,
    skipped: &'a mut Vec<Skipped>,
}

impl Walk<'_> {
    /// Appends the image files beneath `dir` to `files`, recursing into sub-folders. A folder that
    /// cannot be listed, loops back to an ancestor, or is reached a second time through a link is
    /// noted in `skipped`.
    fn collect(&mut self, dir: &Path) {
        let canonical = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        if let Some(ancestor) = self.ancestors.iter().find(|a| **a == canonical) {
            let reason = format!(
                "{LOOP}s back to {}, a folder it is inside of; not followed",
                ancestor.display()
            );
            self.skipped.push(Skipped {
                path: dir.to_path_buf(),
                reason,
            });
            return;
        }
        if !self.visited.insert(canonical.clone()) {
            self.skipped.push(Skipped {
                path: dir.to_path_buf(),
                reason: format!("{SEEN_TWICE} through another path (symbolic link)"),
            });
            return;
        }
        let entries = match visible_entries(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.skipped.push(Skipped {
                    path: dir.to_path_buf(),
                    reason: format!("cannot list folder: {e}"),
                });
                return;
            }
        };
        self.ancestors.push(canonical);
        for path in entries {
            // `metadata` follows links; a dangling link fails here and is reported if it looks
            // like an image.
            match fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => self.collect(&path),
                Ok(_) if has_image_extension(&path) => self.files.push(path),
                Err(e) if has_image_extension(&path) => self.skipped.push(Skipped {
                    path,
                    reason: format!("cannot open: {e}"),
                }),
                _ => {}
            }
        }
        self.ancestors.pop();
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

/// The files of `paths` that cannot be read or do not hold a sane image header now, with the
/// reason (checked in parallel, without decoding pixels).
pub fn unreadable(paths: &[PathBuf]) -> Vec<Skipped> {
    let checked: Vec<Option<String>> = paths.par_iter().map(|p| check_file(p).err()).collect();
    paths
        .iter()
        .zip(checked)
        .filter_map(|(path, reason)| {
            reason.map(|reason| Skipped {
                path: path.clone(),
                reason,
            })
        })
        .collect()
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
        let ds = discover(dir.path()).unwrap();
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
        let (a, b) = (discover(dir.path()).unwrap(), discover(dir.path()).unwrap());
        assert_eq!(a.items, b.items);
        assert_eq!(a.skipped, b.skipped);
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_folders_are_followed_once() {
        let dir = tempfile::tempdir().unwrap();
        let crack = mixed_tree(dir.path());
        std::os::unix::fs::symlink(&crack, crack.join("deep/loop")).unwrap();
        let ds = discover(dir.path()).unwrap();
        assert_eq!(ds.class_counts(), [1, 7]);
        assert!(ds.skipped.iter().any(|s| s.path.ends_with("deep/loop")));
    }

    /// `Negative/` with 6 images and `Positive/` with 5 plus `Positive/sub/` with 4.
    #[cfg(unix)]
    fn two_classes(root: &Path) {
        write_jpegs(&root.join("Negative"), 6, 0);
        write_jpegs(&root.join("Positive"), 5, 100);
        write_jpegs(&root.join("Positive/sub"), 4, 200);
    }

    #[cfg(unix)]
    fn conflict<'a>(ds: &'a Dataset, path: &Path) -> &'a str {
        let skip = ds
            .skipped
            .iter()
            .find(|s| s.path == path)
            .unwrap_or_else(|| panic!("{} not skipped: {:?}", path.display(), ds.skipped));
        assert!(
            skip.reason.starts_with("labelling conflict"),
            "{}",
            skip.reason
        );
        &skip.reason
    }

    #[test]
    fn several_roots_merge_classes_by_name_and_find_conflicts_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_jpegs(&a.join("Negative"), 3, 0);
        write_jpegs(&a.join("Positive"), 2, 50);
        write_jpegs(&b.join("Positive"), 4, 100);
        write_jpegs(&b.join("Spalling"), 2, 150);
        // The same bytes under another class in the other root: a labelling conflict.
        fs::copy(a.join("Negative/0.jpg"), b.join("Spalling/copied.jpg")).unwrap();
        let ds = discover(&vec![a.clone(), b.clone()]).unwrap();
        assert_eq!(ds.classes, ["Negative", "Positive", "Spalling"]);
        assert_eq!(ds.class_counts(), [2, 6, 2]);
        let (ca, cb) = (fs::canonicalize(&a).unwrap(), fs::canonicalize(&b).unwrap());
        assert_eq!(ds.roots, [ca.clone(), cb.clone()]);
        assert_eq!(ds.root, fs::canonicalize(dir.path()).unwrap());
        let positives: Vec<_> = ds.items.iter().filter(|i| i.label == 1).collect();
        assert_eq!(
            positives.iter().filter(|i| i.path.starts_with(&ca)).count(),
            2
        );
        assert_eq!(
            positives.iter().filter(|i| i.path.starts_with(&cb)).count(),
            4
        );
        let reason = conflict(&ds, &cb.join("Spalling/copied.jpg"));
        assert!(
            reason.contains(&ca.join("Negative/0.jpg").display().to_string()),
            "{reason}"
        );

        let message = format!(
            "{:#}",
            discover(&vec![a.clone(), a.join("../a")]).unwrap_err()
        );
        assert!(message.contains("given twice"), "{message}");
        let message = format!(
            "{:#}",
            discover(&vec![a.clone(), dir.path().join("nope")]).unwrap_err()
        );
        assert!(message.contains("nope"), "{message}");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_into_another_class_is_a_conflict_naming_both_paths() {
        let dir = tempfile::tempdir().unwrap();
        two_classes(dir.path());
        let root = fs::canonicalize(dir.path()).unwrap();
        std::os::unix::fs::symlink(root.join("Positive/sub"), root.join("Negative/borrowed"))
            .unwrap();
        let ds = discover(dir.path()).unwrap();
        // Neither label for the 4 images reachable under both classes.
        assert_eq!(ds.class_counts(), [6, 5]);
        assert!(ds
            .items
            .iter()
            .all(|i| !i.path.starts_with(root.join("Positive/sub"))
                && !i.path.starts_with(root.join("Negative/borrowed"))));
        let linked = root.join("Negative/borrowed/2.jpg");
        let original = root.join("Positive/sub/2.jpg");
        let reason = conflict(&ds, &linked);
        assert!(reason.contains(&original.display().to_string()), "{reason}");
        assert!(
            reason.contains("symbolic link") && reason.contains("'Positive'"),
            "{reason}"
        );
        let reason = conflict(&ds, &original);
        assert!(reason.contains(&linked.display().to_string()), "{reason}");
        assert_eq!(ds.skipped.len(), 8, "{:?}", ds.skipped);
    }

    #[test]
    fn the_same_bytes_in_two_classes_are_a_conflict_and_copies_in_one_class_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        write_jpegs(&dir.path().join("Negative"), 3, 0);
        write_jpegs(&dir.path().join("Positive"), 3, 100);
        let root = fs::canonicalize(dir.path()).unwrap();
        fs::copy(root.join("Positive/1.jpg"), root.join("Negative/copy.jpg")).unwrap();
        fs::copy(root.join("Positive/2.jpg"), root.join("Positive/again.jpg")).unwrap();
        let ds = discover(dir.path()).unwrap();
        assert_eq!(ds.class_counts(), [3, 3], "{:?}", ds.items);
        let reason = conflict(&ds, &root.join("Negative/copy.jpg"));
        assert!(
            reason.contains("identical copy")
                && reason.contains(&root.join("Positive/1.jpg").display().to_string()),
            "{reason}"
        );
        conflict(&ds, &root.join("Positive/1.jpg"));
        // A copy inside one class is no conflict: the split drops it (see split.rs).
        assert!(ds
            .items
            .iter()
            .any(|i| i.path.ends_with("Positive/again.jpg")));
        assert_eq!(ds.skipped.len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_loop_back_to_the_root_from_the_first_class_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        two_classes(dir.path());
        let root = fs::canonicalize(dir.path()).unwrap();
        std::os::unix::fs::symlink("..", root.join("Negative/up")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("Positive/sub/top")).unwrap();
        let ds = discover(dir.path()).unwrap();
        assert_eq!(ds.class_counts(), [6, 9]);
        for link in ["Negative/up", "Positive/sub/top"] {
            let skip = ds.skipped.iter().find(|s| s.path.ends_with(link)).unwrap();
            assert!(skip.reason.contains("loops back"), "{}", skip.reason);
            assert!(
                skip.reason.contains(&root.display().to_string()),
                "{}",
                skip.reason
            );
        }
        assert_eq!(ds.skipped.len(), 2, "{:?}", ds.skipped);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_to_a_whole_class_folder_stops_with_the_conflict_named() {
        let dir = tempfile::tempdir().unwrap();
        two_classes(dir.path());
        let root = fs::canonicalize(dir.path()).unwrap();
        std::os::unix::fs::symlink(root.join("Positive"), root.join("Negative/all")).unwrap();
        let message = format!("{:#}", discover(dir.path()).unwrap_err());
        assert!(
            message.contains("class 'Positive'") && message.contains("no usable images"),
            "{message}"
        );
        assert!(
            message.contains("9 are labelling conflicts") && message.contains("Negative/all"),
            "{message}"
        );
        assert!(!message.contains("no readable images"), "{message}");
    }

    #[cfg(unix)]
    #[test]
    fn links_to_files_and_folders_outside_are_labelled_by_where_they_appear() {
        let outside = tempfile::tempdir().unwrap();
        write_jpegs(&outside.path().join("batch1"), 3, 50);
        write_jpegs(&outside.path().join("loose"), 1, 150);
        let dir = tempfile::tempdir().unwrap();
        two_classes(dir.path());
        let root = fs::canonicalize(dir.path()).unwrap();
        std::os::unix::fs::symlink(outside.path().join("batch1"), root.join("Positive/ext"))
            .unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("loose/0.jpg"),
            root.join("Negative/linked.jpg"),
        )
        .unwrap();
        let ds = discover(dir.path()).unwrap();
        assert_eq!(ds.class_counts(), [7, 12]);
        let label_of = |rel: &str| {
            ds.items
                .iter()
                .find(|i| i.path == root.join(rel))
                .map(|i| ds.classes[i.label].as_str())
        };
        assert_eq!(label_of("Positive/ext/1.jpg"), Some("Positive"));
        assert_eq!(label_of("Negative/linked.jpg"), Some("Negative"));
        assert!(ds.skipped.is_empty(), "{:?}", ds.skipped);
    }

    #[test]
    fn missing_root_and_file_root_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let message = format!("{:#}", discover(&missing).unwrap_err());
        assert!(
            message.contains("nope") && message.contains("cannot be opened"),
            "{message}"
        );
        let file = dir.path().join("file.jpg");
        write(&file, b"x");
        let message = format!("{:#}", discover(&file).unwrap_err());
        assert!(message.contains("is not a folder"), "{message}");
    }

    #[test]
    fn one_class_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_jpegs(&dir.path().join("Positive"), 2, 0);
        let message = format!("{:#}", discover(dir.path()).unwrap_err());
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
        let message = format!("{:#}", discover(dir.path()).unwrap_err());
        assert!(message.contains("class 'Negative'"), "{message}");
        assert!(message.contains("has no readable images"), "{message}");
        assert!(message.contains("1 unreadable"), "{message}");
    }

    #[test]
    fn real_brickwork_photos_scan_as_two_classes() {
        let Some(data) = crate::core::testdata::shared_data("") else {
            return;
        };
        let ds = discover(&data.join("brickwork-cracks")).unwrap();
        assert_eq!(ds.classes, ["Negative", "Positive"]);
        assert_eq!(ds.class_counts(), [340, 349]);
        assert!(ds.skipped.is_empty(), "{:?}", ds.skipped);
    }
}
