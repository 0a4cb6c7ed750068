//! Per-class random split into train/validation/test, like MATLAB's
//! `splitEachLabel(imds, 0.1, 0.1, 0.1, 'randomized')`, and the manifest that pins it down.
//!
//! Three rules go beyond MATLAB: identical files (same hash) are reduced to one before splitting, so a
//! test image can never also be a training image; the overlapping windows cut from one photo (listed
//! in a dataset folder's patch manifest, see [`super::patches`]) all go to the same split, so a test
//! window never shares pixels with a training one; and the split is saved as a [`Manifest`] that
//! later commands reload, so a run's test set never changes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::dataset::Dataset;
use super::patches::read_manifest;
use super::rng_for;
use crate::core::fsutil;

/// Share of each class's unique images in each split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fractions {
    pub train: f64,
    pub val: f64,
    pub test: f64,
}

impl Fractions {
    /// Each fraction must lie in (0, 1] and together they may not exceed 1.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("train", self.train),
            ("validation", self.val),
            ("test", self.test),
        ] {
            ensure!(
                value > 0.0 && value <= 1.0,
                "the {name} fraction must be in (0, 1], got {value}"
            );
        }
        let sum = self.train + self.val + self.test;
        ensure!(
            sum <= 1.0 + SLACK,
            "train + validation + test fractions add up to {sum}, more than 1"
        );
        Ok(())
    }

    /// How many of `n` images each split gets: `floor(fraction * n)`, like MATLAB.
    fn counts(&self, n: usize) -> [usize; 3] {
        // SLACK keeps e.g. 0.29 * 100 = 28.999999999999996 from flooring to 28.
        [self.train, self.val, self.test].map(|f| (f * n as f64 + SLACK).floor() as usize)
    }
}

/// Tolerance for floating-point error in fraction arithmetic.
const SLACK: f64 = 1e-9;

/// Indices into [`Dataset::items`], ascending within each split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
    /// Items left out because an earlier item (in scan order) has identical bytes.
    pub duplicates_dropped: usize,
}

/// Splits each class at random, reproducibly from `seed`.
///
/// Exact duplicates are dropped first, keeping the first in scan order (class, then path), even when
/// the copies sit in different classes. Of the `n` unique images of a class, `floor(fraction * n)` go
/// to each split and the rest are unused. Each class shuffles with its own ChaCha8 stream (the class
/// index), so one class's split does not depend on the size of another.
///
/// Items listed in a root's patch manifest are split by photo instead (see [`split_photos`]); the
/// other items of the same dataset keep the rule above.
pub fn split_each_label(ds: &Dataset, fractions: &Fractions, seed: u64) -> Result<Split> {
    split_by_source(ds, &vec![*fractions; source_count(ds)], seed)
}

/// The sources of a dataset (one for a dataset made without any).
fn source_count(ds: &Dataset) -> usize {
    ds.roots.len().max(ds.sources.len()).max(1)
}

/// [`split_each_label`] with fractions of their own for each data source (`fractions[s]` for the
/// items of source `s`): each class of each source is split by its source's fractions, and the
/// windows of one photo stay together within their source. The first source's streams are those
/// of a single-source split, so a dataset of one folder splits as it always did.
pub fn split_by_source(ds: &Dataset, fractions: &[Fractions], seed: u64) -> Result<Split> {
    ensure!(
        fractions.len() == source_count(ds),
        "{} split fractions for {} data sources",
        fractions.len(),
        source_count(ds)
    );
    for f in fractions {
        f.validate()?;
    }
    let photo_of = photo_groups(ds)?;
    let sources = fractions.len();
    let classes = ds.classes.len();
    let mut seen = HashSet::with_capacity(ds.items.len());
    // per_class[source * classes + label]; grouped[source]
    let mut per_class: Vec<Vec<usize>> = vec![Vec::new(); sources * classes];
    let mut grouped: Vec<Vec<usize>> = vec![Vec::new(); sources];
    let mut unique = vec![0usize; classes];
    let mut duplicates_dropped = 0;
    for (index, item) in ds.items.iter().enumerate() {
        if !seen.insert(item.hash) {
            duplicates_dropped += 1;
            continue;
        }
        unique[item.label] += 1;
        let source = item.source.min(sources - 1);
        if photo_of[index].is_some() {
            grouped[source].push(index);
        } else {
            per_class[source * classes + item.label].push(index);
        }
    }

    let mut split = Split {
        train: Vec::new(),
        val: Vec::new(),
        test: Vec::new(),
        duplicates_dropped,
    };
    for (slot, mut indices) in per_class.into_iter().enumerate() {
        let (source, label) = (slot / classes, slot % classes);
        let [train, val, test] = fractions[source].counts(indices.len());
        let stream = ((source as u64) << 32) | label as u64;
        indices.shuffle(&mut rng_for("split", seed, stream));
        split.train.extend_from_slice(&indices[..train]);
        split.val.extend_from_slice(&indices[train..train + val]);
        split
            .test
            .extend_from_slice(&indices[train + val..train + val + test]);
    }
    for (source, items) in grouped.iter().enumerate() {
        let [train, val, test] = split_photos(
            ds,
            items,
            &photo_of,
            &fractions[source],
            seed,
            source as u64,
        );
        split.train.extend(train);
        split.val.extend(val);
        split.test.extend(test);
    }
    let any_grouped = grouped.iter().any(|g| !g.is_empty());
    for (label, class) in ds.classes.iter().enumerate() {
        let count = |part: &[usize]| part.iter().filter(|&&i| ds.items[i].label == label).count();
        let (train, val, test) = (count(&split.train), count(&split.val), count(&split.test));
        if train == 0 || val == 0 || test == 0 {
            let shown: Vec<String> = fractions
                .iter()
                .map(|f| format!("{}/{}/{}", f.train, f.val, f.test))
                .collect();
            let mut shown_unique = shown.clone();
            shown_unique.dedup();
            bail!(
                "class '{class}' has {} unique images: fractions {} give {train} train, {val} \
                 validation and {test} test images{}; every split needs at least one, so use larger \
                 fractions or add images",
                unique[label],
                if shown_unique.len() == 1 {
                    shown_unique[0].clone()
                } else {
                    let names: Vec<String> = shown
                        .iter()
                        .enumerate()
                        .map(|(s, f)| {
                            format!("{f} ({})", ds.sources.get(s).map_or("?", String::as_str))
                        })
                        .collect();
                    names.join(", ")
                },
                if any_grouped { " (windows of one photo kept together)" } else { "" }
            );
        }
    }
    for part in [&mut split.train, &mut split.val, &mut split.test] {
        part.sort_unstable();
    }
    Ok(split)
}

/// For each item, the photo it was cut from (an id) when a root's patch manifest lists it.
fn photo_groups(ds: &Dataset) -> Result<Vec<Option<usize>>> {
    let roots = if ds.roots.is_empty() {
        std::slice::from_ref(&ds.root)
    } else {
        &ds.roots[..]
    };
    let mut photo_of_file: HashMap<PathBuf, usize> = HashMap::new();
    let mut photo_ids: HashMap<(usize, String), usize> = HashMap::new();
    for (r, root) in roots.iter().enumerate() {
        for row in read_manifest(root)?.unwrap_or_default() {
            let next = photo_ids.len();
            let id = *photo_ids.entry((r, row.photo)).or_insert(next);
            photo_of_file.insert(root.join(&row.file), id);
        }
    }
    Ok(ds
        .items
        .iter()
        .map(|item| photo_of_file.get(&item.path).copied())
        .collect())
}

/// Splits the windows of photos photo by photo: each photo's windows all go to one split, chosen so
/// that every class's count in every split stays as close as it can to `fraction * windows of that
/// class`. Photos are placed largest first (ties in a seeded random order), each where it reduces
/// the squared distance to those targets most, the unused remainder being a fourth place.
fn split_photos(
    ds: &Dataset,
    items: &[usize],
    photo_of: &[Option<usize>],
    fractions: &Fractions,
    seed: u64,
    stream: u64,
) -> [Vec<usize>; 3] {
    let classes = ds.classes.len();
    let mut photos: HashMap<usize, Vec<usize>> = HashMap::new();
    for &i in items {
        photos
            .entry(photo_of[i].expect("grouped items have a photo"))
            .or_default()
            .push(i);
    }
    let mut photos: Vec<(usize, Vec<usize>)> = photos.into_iter().collect();
    photos.sort_unstable_by_key(|(id, _)| *id);
    photos.shuffle(&mut rng_for("photo split", seed, stream));
    photos.sort_by_key(|(_, windows)| std::cmp::Reverse(windows.len()));

    let mut totals = vec![0i64; classes];
    for &i in items {
        totals[ds.items[i].label] += 1;
    }
    // targets[place][class]; place 3 is "unused".
    let mut targets = vec![vec![0i64; classes]; 4];
    for (c, &n) in totals.iter().enumerate() {
        let [tr, va, te] = fractions.counts(n as usize).map(|k| k as i64);
        targets[0][c] = tr;
        targets[1][c] = va;
        targets[2][c] = te;
        targets[3][c] = n - tr - va - te;
    }
    let mut counts = vec![vec![0i64; classes]; 4];
    let mut out: [Vec<usize>; 3] = Default::default();
    for (_, windows) in photos {
        let mut of_class = vec![0i64; classes];
        for &i in &windows {
            of_class[ds.items[i].label] += 1;
        }
        // Change of sum (n - t)^2 when the photo's windows join a place.
        let cost = |place: usize| -> i64 {
            (0..classes)
                .map(|c| of_class[c] * (2 * (counts[place][c] - targets[place][c]) + of_class[c]))
                .sum()
        };
        let place = (0..4).min_by_key(|&p| cost(p)).expect("four places");
        for c in 0..classes {
            counts[place][c] += of_class[c];
        }
        if place < 3 {
            out[place].extend(windows);
        }
    }
    out
}

/// One image of a saved split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative to [`Manifest::root`], so a dataset folder can be moved along with its manifest.
    pub path: PathBuf,
    pub label: usize,
    /// Index into [`Manifest::sources`] of the data source it came from; absent where the split
    /// has one source (and in manifests from before sources were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<usize>,
}

/// A split written to disk, so that training, evaluation and explanation all see the same images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub root: PathBuf,
    /// The dataset folders merged into this split (one for most runs); absent in older manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roots: Vec<PathBuf>,
    /// The data sources' names, one per root; absent in older manifests, whose sources are then
    /// named after their folders when loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    pub classes: Vec<String>,
    pub seed: u64,
    /// The fractions of every source without one of its own.
    pub fractions: Fractions,
    /// The sources split by fractions of their own (`--split-for`), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_fractions: BTreeMap<String, Fractions>,
    pub train: Vec<Entry>,
    pub val: Vec<Entry>,
    pub test: Vec<Entry>,
}

impl Manifest {
    pub fn from_split(ds: &Dataset, fractions: &Fractions, seed: u64, split: &Split) -> Self {
        let entries = |indices: &[usize]| -> Vec<Entry> {
            indices
                .iter()
                .map(|&i| {
                    let item = &ds.items[i];
                    // Items always lie under root; were one not to, its full path still works
                    // because `root.join(absolute)` yields the absolute path.
                    let path = item
                        .path
                        .strip_prefix(&ds.root)
                        .unwrap_or(&item.path)
                        .to_path_buf();
                    Entry {
                        path,
                        label: item.label,
                        source: (ds.roots.len() > 1).then_some(item.source),
                    }
                })
                .collect()
        };
        Manifest {
            root: ds.root.clone(),
            roots: ds.roots.clone(),
            sources: ds.sources.clone(),
            classes: ds.classes.clone(),
            seed,
            fractions: *fractions,
            source_fractions: BTreeMap::new(),
            train: entries(&split.train),
            val: entries(&split.val),
            test: entries(&split.test),
        }
    }

    /// Writes pretty JSON atomically, so an interrupted save never leaves a half manifest.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .with_context(|| format!("cannot encode split manifest for {}", path.display()))?;
        fsutil::write_atomic(path, &json)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read split manifest {}", path.display()))?;
        let mut manifest: Manifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("split manifest {} is corrupt", path.display()))?;
        manifest
            .check()
            .with_context(|| format!("split manifest {} is inconsistent", path.display()))?;
        if manifest.sources.is_empty() {
            manifest.name_sources()?;
        }
        Ok(manifest)
    }

    /// Names the sources of a manifest written before they were recorded: each folder by its
    /// name, each entry by the folder it lies in (the deepest, should one hold another).
    fn name_sources(&mut self) -> Result<()> {
        let roots = self.dataset_roots();
        self.sources = crate::data::sources::names(&roots, &[])?;
        if roots.len() < 2 {
            return Ok(());
        }
        let root = self.root.clone();
        for entry in self
            .train
            .iter_mut()
            .chain(self.val.iter_mut())
            .chain(self.test.iter_mut())
        {
            let path = root.join(&entry.path);
            entry.source = roots
                .iter()
                .enumerate()
                .filter(|(_, r)| path.starts_with(r))
                .max_by_key(|(_, r)| r.components().count())
                .map(|(s, _)| s);
        }
        Ok(())
    }

    /// The index into [`Manifest::sources`] of an entry's source.
    pub fn source_of(&self, entry: &Entry) -> usize {
        entry.source.unwrap_or(0)
    }

    /// The sources' names, one at least.
    pub fn source_names(&self) -> Vec<String> {
        if self.sources.is_empty() {
            vec!["data".to_string()]
        } else {
            self.sources.clone()
        }
    }

    /// The dataset folders the split was made from.
    pub fn dataset_roots(&self) -> Vec<PathBuf> {
        if self.roots.is_empty() {
            vec![self.root.clone()]
        } else {
            self.roots.clone()
        }
    }

    /// Where an entry's file is on disk.
    pub fn absolute(&self, entry: &Entry) -> PathBuf {
        self.root.join(&entry.path)
    }

    /// `entries` (one of the splits) as files on disk with their labels.
    pub fn labelled(&self, entries: &[Entry]) -> Vec<(PathBuf, usize)> {
        entries
            .iter()
            .map(|e| (self.absolute(e), e.label))
            .collect()
    }

    /// The split without the files in `left_out` (absolute paths, as [`Manifest::absolute`]
    /// gives them): what a run trains on when some of its files were left out at its start.
    pub fn without(&self, left_out: &HashSet<PathBuf>) -> Manifest {
        let keep = |entries: &[Entry]| -> Vec<Entry> {
            entries
                .iter()
                .filter(|e| !left_out.contains(&self.absolute(e)))
                .cloned()
                .collect()
        };
        Manifest {
            train: keep(&self.train),
            val: keep(&self.val),
            test: keep(&self.test),
            ..self.clone()
        }
    }

    /// Rejects a manifest that parses but cannot be used (edited by hand, or from another version).
    fn check(&self) -> Result<()> {
        ensure!(
            self.classes.len() >= 2,
            "it lists {} class(es), need at least two",
            self.classes.len()
        );
        self.fractions.validate()?;
        for (name, entries) in [
            ("train", &self.train),
            ("val", &self.val),
            ("test", &self.test),
        ] {
            ensure!(!entries.is_empty(), "its {name} split is empty");
            let sources = self.sources.len().max(self.roots.len()).max(1);
            if let Some(bad) = entries
                .iter()
                .find(|e| e.source.is_some_and(|s| s >= sources))
            {
                bail!(
                    "{name} entry {} has source {} but there are only {sources} sources",
                    bad.path.display(),
                    bad.source.unwrap_or_default(),
                );
            }
            if let Some(bad) = entries.iter().find(|e| e.label >= self.classes.len()) {
                bail!(
                    "{name} entry {} has label {} but there are only {} classes",
                    bad.path.display(),
                    bad.label,
                    self.classes.len()
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::Item;

    const TENTHS: Fractions = Fractions {
        train: 0.1,
        val: 0.1,
        test: 0.1,
    };

    /// A synthetic dataset: `counts[c]` items of class c, hashed from a per-item id so each is
    /// unique unless `same` maps it to another id.
    fn dataset(counts: &[usize], same: impl Fn(usize) -> usize) -> Dataset {
        let root = PathBuf::from("/data");
        let classes: Vec<String> = (0..counts.len()).map(|c| format!("class{c}")).collect();
        let mut items = Vec::new();
        for (label, &n) in counts.iter().enumerate() {
            for i in 0..n {
                let id = items.len();
                items.push(Item {
                    path: root.join(&classes[label]).join(format!("{i:05}.jpg")),
                    label,
                    hash: *blake3::hash(&same(id).to_le_bytes()).as_bytes(),
                    source: 0,
                });
            }
        }
        Dataset {
            roots: vec![root.clone()],
            sources: vec!["data".into()],
            root,
            classes,
            items,
            skipped: Vec::new(),
        }
    }

    fn labels(ds: &Dataset, indices: &[usize]) -> Vec<usize> {
        let mut counts = vec![0; ds.classes.len()];
        for &i in indices {
            counts[ds.items[i].label] += 1;
        }
        counts
    }

    #[test]
    fn counts_are_floor_of_fraction_per_class() {
        let ds = dataset(&[200, 205], |id| id);
        let split = split_each_label(&ds, &TENTHS, 7).unwrap();
        assert_eq!(labels(&ds, &split.train), [20, 20]);
        assert_eq!(labels(&ds, &split.val), [20, 20]);
        assert_eq!(labels(&ds, &split.test), [20, 20]);
        let uneven = Fractions {
            train: 0.29,
            val: 0.5,
            test: 0.2,
        };
        let split = split_each_label(&dataset(&[100, 100], |id| id), &uneven, 7).unwrap();
        assert_eq!(
            (split.train.len(), split.val.len(), split.test.len()),
            (58, 100, 40)
        );
    }

    #[test]
    fn same_seed_same_split_other_seed_other_split() {
        let ds = dataset(&[300, 300], |id| id);
        let a = split_each_label(&ds, &TENTHS, 1).unwrap();
        assert_eq!(a, split_each_label(&ds, &TENTHS, 1).unwrap());
        let b = split_each_label(&ds, &TENTHS, 2).unwrap();
        assert_ne!(a.train, b.train);
        assert_ne!(a.test, b.test);
    }

    #[test]
    fn splits_are_disjoint_and_sorted() {
        let ds = dataset(&[100, 80], |id| id);
        let fractions = Fractions {
            train: 0.6,
            val: 0.2,
            test: 0.2,
        };
        let split = split_each_label(&ds, &fractions, 3).unwrap();
        let all: Vec<usize> = [&split.train, &split.val, &split.test]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let unique: HashSet<usize> = all.iter().copied().collect();
        assert_eq!(unique.len(), all.len());
        assert_eq!(all.len(), 180, "fractions summing to 1 use every image");
        assert!(split.train.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn duplicates_never_cross_splits_and_first_copy_wins() {
        // Items 1..=9 copy item 0 (same class); item 25 (class 1) copies item 15 (class 0).
        let ds = dataset(&[20, 20], |id| match id {
            1..=9 => 0,
            25 => 15,
            id => id,
        });
        let fractions = Fractions {
            train: 0.4,
            val: 0.3,
            test: 0.3,
        };
        let split = split_each_label(&ds, &fractions, 9).unwrap();
        assert_eq!(split.duplicates_dropped, 10);
        let used: Vec<usize> = [&split.train, &split.val, &split.test]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        for dropped in (1..=9).chain([25]) {
            assert!(
                !used.contains(&dropped),
                "duplicate item {dropped} was used"
            );
        }
        let hashes: HashSet<[u8; 32]> = used.iter().map(|&i| ds.items[i].hash).collect();
        assert_eq!(hashes.len(), used.len(), "two used items share contents");
        // Class 0 keeps 11 unique images (0, 10..=19): 4/3/3; class 1 keeps 19: 7/5/5.
        assert_eq!(labels(&ds, &split.train), [4, 7]);
        assert_eq!(labels(&ds, &split.test), [3, 5]);
    }

    #[test]
    fn class_too_small_for_fractions_is_named() {
        let ds = dataset(&[100, 9], |id| id);
        let message = format!("{:#}", split_each_label(&ds, &TENTHS, 0).unwrap_err());
        assert!(
            message.contains("class 'class1' has 9 unique images"),
            "{message}"
        );
        assert!(message.contains("larger fractions"), "{message}");
    }

    #[test]
    fn invalid_fractions_are_rejected() {
        let ds = dataset(&[50, 50], |id| id);
        for (bad, problem) in [
            (
                Fractions {
                    train: 0.0,
                    val: 0.1,
                    test: 0.1,
                },
                "train fraction",
            ),
            (
                Fractions {
                    train: 0.5,
                    val: 1.5,
                    test: 0.1,
                },
                "validation fraction",
            ),
            (
                Fractions {
                    train: 0.5,
                    val: 0.1,
                    test: f64::NAN,
                },
                "test fraction",
            ),
            (
                Fractions {
                    train: 0.5,
                    val: 0.4,
                    test: 0.2,
                },
                "more than 1",
            ),
        ] {
            let message = format!("{:#}", split_each_label(&ds, &bad, 0).unwrap_err());
            assert!(message.contains(problem), "{message}");
        }
    }

    #[test]
    fn manifest_round_trips_with_relative_paths() {
        let ds = dataset(&[30, 30], |id| id);
        let split = split_each_label(&ds, &TENTHS, 5).unwrap();
        let manifest = Manifest::from_split(&ds, &TENTHS, 5, &split);
        assert_eq!(manifest.test.len(), 6);
        let first = &manifest.train[0];
        assert!(first.path.is_relative());
        assert_eq!(manifest.absolute(first), ds.items[split.train[0]].path);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs/split.json");
        manifest.save(&path).unwrap();
        assert_eq!(Manifest::load(&path).unwrap(), manifest);
    }

    /// A dataset at a real folder whose patch manifest lists `photos` photos, photo p holding
    /// `p % 5 + 2` Positive and `p % 3 + 4` Negative windows, plus `loose` unlisted images a class.
    fn patch_dataset(dir: &Path, photos: usize, loose: usize) -> Dataset {
        use crate::data::patches::{ManifestRow, MANIFEST};
        let classes = vec!["Negative".to_string(), "Positive".to_string()];
        let mut rows = Vec::new();
        for p in 0..photos {
            for (class, n) in [("Positive", p % 5 + 2), ("Negative", p % 3 + 4)] {
                for w in 0..n {
                    rows.push(ManifestRow {
                        file: format!("{class}/photo{p}_x{w}_y0.jpg"),
                        class: class.into(),
                        photo: format!("photo{p}.jpg"),
                        x: w as u32,
                        y: 0,
                        size: 16,
                    });
                }
            }
        }
        let mut writer = csv::Writer::from_path(dir.join(MANIFEST)).unwrap();
        for row in &rows {
            writer.serialize(row).unwrap();
        }
        writer.flush().unwrap();
        let mut items: Vec<Item> = rows
            .iter()
            .map(|r| Item {
                path: dir.join(&r.file),
                label: usize::from(r.class == "Positive"),
                hash: *blake3::hash(r.file.as_bytes()).as_bytes(),
                source: 0,
            })
            .collect();
        for (label, class) in classes.iter().enumerate() {
            for i in 0..loose {
                let file = format!("{class}/loose{i}.jpg");
                items.push(Item {
                    path: dir.join(&file),
                    label,
                    hash: *blake3::hash(file.as_bytes()).as_bytes(),
                    source: 0,
                });
            }
        }
        items.sort_by(|a, b| (a.label, &a.path).cmp(&(b.label, &b.path)));
        Dataset {
            root: dir.to_path_buf(),
            roots: vec![dir.to_path_buf()],
            sources: vec!["data".into()],
            classes,
            items,
            skipped: Vec::new(),
        }
    }

    #[test]
    fn windows_of_one_photo_stay_in_one_split_with_fractions_kept_per_class() {
        let dir = tempfile::tempdir().unwrap();
        let ds = patch_dataset(dir.path(), 40, 50);
        let fractions = Fractions {
            train: 0.5,
            val: 0.2,
            test: 0.2,
        };
        let split = split_each_label(&ds, &fractions, 3).unwrap();
        let photo = |i: usize| -> Option<String> {
            let name = ds.items[i].path.file_name()?.to_string_lossy().into_owned();
            name.starts_with("photo")
                .then(|| name.split('_').next().unwrap().to_string())
        };
        let mut home: HashMap<String, &str> = HashMap::new();
        for (part, indices) in [
            ("train", &split.train),
            ("val", &split.val),
            ("test", &split.test),
        ] {
            for &i in indices.iter() {
                if let Some(p) = photo(i) {
                    let first = *home.entry(p.clone()).or_insert(part);
                    assert_eq!(first, part, "{p} is in {first} and {part}");
                }
            }
        }
        // Photos' windows per class: Positive 2..=6 (160 in all), Negative 4..=6 (198 in all).
        // Each split stays within one photo's windows of its target; loose images split exactly.
        let grouped = |indices: &[usize], label: usize| {
            indices
                .iter()
                .filter(|&&i| photo(i).is_some() && ds.items[i].label == label)
                .count() as i64
        };
        for (indices, f) in [(&split.train, 0.5), (&split.val, 0.2), (&split.test, 0.2)] {
            for (label, total) in [(0usize, 198.0_f64), (1, 160.0)] {
                let target = (f * total).floor() as i64;
                let got = grouped(indices, label);
                assert!(
                    (got - target).abs() <= 6,
                    "class {label}: {got} vs {target}"
                );
            }
            let loose = indices.iter().filter(|&&i| photo(i).is_none()).count();
            assert_eq!(loose, 2 * (f * 50.0_f64 + 1e-9).floor() as usize);
        }
        assert_eq!(split, split_each_label(&ds, &fractions, 3).unwrap());
        assert_ne!(split, split_each_label(&ds, &fractions, 4).unwrap());
    }

    #[test]
    fn too_few_photos_for_every_split_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let ds = patch_dataset(dir.path(), 2, 0);
        let message = format!("{:#}", split_each_label(&ds, &TENTHS, 0).unwrap_err());
        assert!(
            message.contains("windows of one photo kept together"),
            "{message}"
        );
    }

    /// Two sources: `counts[s][c]` images of class c in source s, under `/data/s{s}`.
    fn two_source_dataset(counts: [[usize; 2]; 2]) -> Dataset {
        let root = PathBuf::from("/data");
        let classes: Vec<String> = vec!["Negative".into(), "Positive".into()];
        let mut items = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            for (source, per_class) in counts.iter().enumerate() {
                for i in 0..per_class[label] {
                    let path = root.join(format!("s{source}/{class}/{i:05}.jpg"));
                    items.push(Item {
                        hash: *blake3::hash(path.to_string_lossy().as_bytes()).as_bytes(),
                        path,
                        label,
                        source,
                    });
                }
            }
        }
        Dataset {
            roots: vec![root.join("s0"), root.join("s1")],
            sources: vec!["concrete".into(), "drone".into()],
            root,
            classes,
            items,
            skipped: Vec::new(),
        }
    }

    #[test]
    fn each_source_and_class_is_split_by_its_own_fractions() {
        let ds = two_source_dataset([[200, 100], [24, 36]]);
        let drone = Fractions {
            train: 0.5,
            val: 0.25,
            test: 0.25,
        };
        let split = split_by_source(&ds, &[TENTHS, drone], 3).unwrap();
        let count = |part: &[usize], source: usize, label: usize| {
            part.iter()
                .filter(|&&i| ds.items[i].source == source && ds.items[i].label == label)
                .count()
        };
        // concrete: a tenth of each class; drone: half, a quarter, a quarter of each class.
        for part in [&split.train, &split.val, &split.test] {
            assert_eq!(count(part, 0, 0), 20);
            assert_eq!(count(part, 0, 1), 10);
        }
        assert_eq!(
            (count(&split.train, 1, 0), count(&split.train, 1, 1)),
            (12, 18)
        );
        assert_eq!((count(&split.val, 1, 0), count(&split.val, 1, 1)), (6, 9));
        assert_eq!((count(&split.test, 1, 0), count(&split.test, 1, 1)), (6, 9));

        // The manifest records each entry's source and the overriding fractions.
        let mut per_source = BTreeMap::new();
        per_source.insert("drone".to_string(), [0.5, 0.25, 0.25]);
        let settings = crate::data::sources::SplitSettings {
            fractions: TENTHS,
            per_source: &per_source,
            seed: 3,
        };
        let (again, manifest) = settings.split(&ds).unwrap();
        assert_eq!(again, split);
        assert_eq!(manifest.source_fractions["drone"], drone);
        let drone_test = manifest.test.iter().filter(|e| e.source == Some(1)).count();
        assert_eq!(drone_test, 15);
        // A name that is no source is refused, naming the sources.
        per_source.insert("uav".to_string(), [0.5, 0.25, 0.25]);
        let settings = crate::data::sources::SplitSettings {
            fractions: TENTHS,
            per_source: &per_source,
            seed: 3,
        };
        let message = format!("{:#}", settings.split(&ds).unwrap_err());
        assert!(
            message.contains("'uav'") && message.contains("concrete, drone"),
            "{message}"
        );
    }

    #[test]
    fn a_manifest_without_sources_still_loads_with_sources_by_folder() {
        let ds = two_source_dataset([[30, 30], [20, 20]]);
        let split = split_by_source(&ds, &[TENTHS, TENTHS], 1).unwrap();
        let manifest = Manifest::from_split(&ds, &TENTHS, 1, &split);
        let mut old = serde_json::to_value(&manifest).unwrap();
        old.as_object_mut().unwrap().remove("sources");
        for part in ["train", "val", "test"] {
            for entry in old[part].as_array_mut().unwrap() {
                entry.as_object_mut().unwrap().remove("source");
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("split.json");
        std::fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
        let back = Manifest::load(&path).unwrap();
        assert_eq!(back.sources, ["s0", "s1"]);
        for (a, b) in back.test.iter().zip(&manifest.test) {
            assert_eq!(a.source, b.source, "{}", a.path.display());
        }
    }

    #[test]
    fn corrupt_or_missing_manifest_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("split.json");
        let message = format!("{:#}", Manifest::load(&path).unwrap_err());
        assert!(message.contains("cannot read split manifest") && message.contains("split.json"));

        std::fs::write(&path, b"{\"root\": \"/data\", \"classes\": [").unwrap();
        let message = format!("{:#}", Manifest::load(&path).unwrap_err());
        assert!(
            message.contains("split.json") && message.contains("is corrupt"),
            "{message}"
        );

        let ds = dataset(&[30, 30], |id| id);
        let split = split_each_label(&ds, &TENTHS, 5).unwrap();
        let mut manifest = Manifest::from_split(&ds, &TENTHS, 5, &split);
        manifest.val[0].label = 2;
        manifest.save(&path).unwrap();
        let message = format!("{:#}", Manifest::load(&path).unwrap_err());
        assert!(
            message.contains("label 2 but there are only 2 classes"),
            "{message}"
        );
    }
}
