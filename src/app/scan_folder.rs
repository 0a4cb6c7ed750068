//! A scan's output folder, owned by one scan at a time and always in agreement with its
//! `scan.json`.
//!
//! - **One owner**: the scan (or merge) holds an exclusive lock on `FOLDER/scan.lock` while it
//!   works (see [`crate::run::lock`]); a second one into the same folder is refused, naming the
//!   process that holds it.
//! - **One scan per folder**: a new or empty folder starts a scan; a folder holding the record of
//!   the same scan (equal model file, settings and photo list) continues it; any other folder is
//!   refused with what differs, and nothing in it is touched.
//! - **Nothing unexplained**: every picture in the folder belongs to a recorded photo, except
//!   those of the photo being scanned. Pictures of a photo that a killed run had written but not
//!   yet recorded carry that photo's own output name; a continuing run removes them before it
//!   starts. A file of no photo is a reason to refuse the folder.
//! - **Written as photos finish**: the record is rewritten (atomically) after each photo, unless
//!   rewriting it would take more than a twentieth of the scan's time (a campaign's record grows to
//!   hundreds of megabytes); then after as many photos as keep it there. A stop, an error and the
//!   end always write it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::run::lock::{self, RunLock};
use crate::scan::output::{self, FailedRecord, PhotoRecord, ScanRecord, RECORD_FILE};

/// The lock file inside a scan folder.
pub const LOCK_FILE: &str = "scan.lock";
/// Scores over all photos against true masks (a scan with `--masks`).
pub const METRICS_FILE: &str = "metrics.json";

/// Record writes may take at most this share of the time between them.
const WRITE_SHARE: u32 = 20;

/// A scan folder held by this process, with its record as it stands.
pub struct ScanFolder {
    pub path: PathBuf,
    pub record: ScanRecord,
    _lock: RunLock,
    last_write: Instant,
    write_cost: Duration,
}

/// How [`ScanFolder::open`] found the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    New,
    /// The same scan, with this many photos already recorded as scanned.
    Continued {
        done: usize,
    },
}

/// The files a photo's output `name` is written to: its overlay, mask and map pictures, and its
/// window descriptors (written for classifiers' scans only, see `scan::descriptors`).
pub fn output_files(name: &str) -> [String; 4] {
    [
        format!("{name}-overlay.png"),
        format!("{name}-mask.png"),
        format!("{name}-map.png"),
        format!("{name}-descriptors.safetensors"),
    ]
}

/// True for a shard's folder inside a campaign's folder (`shard-K-of-N`).
pub fn is_shard_folder(path: &Path) -> bool {
    path.is_dir()
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("shard-"))
            .and_then(|n| n.split_once("-of-"))
            .is_some_and(|(k, n)| k.parse::<usize>().is_ok() && n.parse::<usize>().is_ok())
}

impl ScanFolder {
    /// Takes `path` for the scan whose empty record is `fresh` (settings and plan filled in),
    /// whose whole photo list is `photos` with output names `names`: see the module's rules.
    pub fn open(
        path: &Path,
        fresh: ScanRecord,
        photos: &[PathBuf],
        names: &[String],
    ) -> Result<(ScanFolder, Opened)> {
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let held = lock::acquire_or(&path.join(LOCK_FILE), |who| {
            format!(
                "{} is in use by another scan{who}; wait for it to end, or scan into another --out",
                path.display()
            )
        })?;
        for leftover in lock::leftover_temporaries(path) {
            let _ = std::fs::remove_file(leftover);
        }
        let (record, opened) = if output::is_scan_folder(path) {
            let earlier = output::read(path)?;
            let differences = differences(&earlier, &fresh);
            if !differences.is_empty() {
                bail!(
                    "{} holds another scan's results ({}); scan into another --out, or remove \
                     the folder to scan it again",
                    path.display(),
                    differences.join("; ")
                );
            }
            let record = keep_whole_entries(path, earlier, photos, names)?;
            let done = record.photos.len();
            (record, Opened::Continued { done })
        } else {
            (fresh, Opened::New)
        };
        let mut folder = ScanFolder {
            path: path.to_path_buf(),
            record,
            _lock: held,
            last_write: Instant::now(),
            write_cost: Duration::ZERO,
        };
        // A new scan writes its record before any picture: pictures without one are not ours.
        let pending = match opened {
            Opened::New => &[][..],
            Opened::Continued { .. } => names,
        };
        folder.clear_unrecorded(pending)?;
        folder.record.finished = false;
        folder.save(true)?;
        Ok((folder, opened))
    }

    /// Places in the photo list already scanned.
    pub fn done(&self) -> HashSet<usize> {
        self.record.photos.iter().filter_map(|p| p.index).collect()
    }

    /// Removes the files of the photo at `names`' `name`, before it is (re)scanned or after it
    /// failed, so no file is left that its record does not name.
    pub fn clear_pictures(&self, name: &str) -> Result<()> {
        for picture in output_files(name) {
            let file = self.path.join(picture);
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", file.display()))
                }
            }
        }
        Ok(())
    }

    /// Records a scanned photo (replacing an earlier failure of it).
    pub fn add_photo(&mut self, photo: PhotoRecord) {
        self.record.failed.retain(|f| Some(f.index) != photo.index);
        self.record.photos.retain(|p| p.index != photo.index);
        self.record.photos.push(photo);
    }

    /// Records a photo that could not be scanned.
    pub fn add_failure(&mut self, failure: FailedRecord) {
        self.record.failed.retain(|f| f.index != failure.index);
        self.record.failed.push(failure);
    }

    /// Writes the record, in photo-list order: always when `now`, else when enough time has
    /// passed since the last write (see the module's rules).
    pub fn save(&mut self, now: bool) -> Result<()> {
        if !now && self.last_write.elapsed() < self.write_cost * WRITE_SHARE {
            return Ok(());
        }
        let started = Instant::now();
        self.record.photos.sort_by_key(|p| p.index);
        self.record.failed.sort_by_key(|f| f.index);
        output::write(&self.path, &self.record)?;
        self.write_cost = started.elapsed();
        self.last_write = Instant::now();
        Ok(())
    }

    /// Removes the pictures of the photos named `pending` that the record does not name (a
    /// killed run's photo in progress); refuses the folder when it holds any other file that is
    /// not its own.
    fn clear_unrecorded(&self, pending: &[String]) -> Result<()> {
        let mut own: HashSet<String> = [RECORD_FILE, LOCK_FILE].map(String::from).into();
        if self
            .record
            .settings
            .as_ref()
            .is_some_and(|s| s.masks.is_some())
        {
            own.insert(METRICS_FILE.into()); // rewritten at the end
        }
        for photo in &self.record.photos {
            own.extend(photo.files().into_iter().map(String::from));
        }
        let pending: HashSet<String> = pending.iter().flat_map(|n| output_files(n)).collect();
        let mut foreign = Vec::new();
        let entries = std::fs::read_dir(&self.path)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", self.path.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if own.contains(&name) || is_shard_folder(&entry.path()) {
                continue;
            }
            if pending.contains(&name) {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("cannot remove {}", entry.path().display()))?;
            } else {
                foreign.push(name);
            }
        }
        if !foreign.is_empty() {
            foreign.sort();
            let more = foreign.len().saturating_sub(5);
            foreign.truncate(5);
            bail!(
                "{} holds files that are not its scan's ({}{}): {}; scan into a new or empty \
                 --out, or move them away",
                self.path.display(),
                foreign.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                },
                if output::is_scan_folder(&self.path) {
                    "they are no photo's pictures"
                } else {
                    "it has no scan.json, so it is no scan's folder (or one of an older version)"
                }
            );
        }
        Ok(())
    }
}

/// What differs between the scan recorded in a folder and the one asked for, in words (empty:
/// the same scan).
pub fn differences(earlier: &ScanRecord, asked: &ScanRecord) -> Vec<String> {
    let mut out = Vec::new();
    let compare = |out: &mut Vec<String>, what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what} {a}, not {b}"));
        }
    };
    compare(
        &mut out,
        "crack class",
        earlier.class.clone(),
        asked.class.clone(),
    );
    compare(
        &mut out,
        "threshold",
        earlier.threshold.to_string(),
        asked.threshold.to_string(),
    );
    compare(
        &mut out,
        "colours",
        format!("{} at {}", earlier.colormap, earlier.alpha),
        format!("{} at {}", asked.colormap, asked.alpha),
    );
    match (&earlier.settings, &asked.settings) {
        (None, _) | (_, None) => out.push(
            "it was written by an older crackscope, which did not record its settings".into(),
        ),
        (Some(e), Some(a)) => {
            if e.model_sha256 != a.model_sha256 {
                out.push(format!(
                    "model {} (SHA-256 {}), not {} (SHA-256 {})",
                    e.model.display(),
                    &e.model_sha256[..e.model_sha256.len().min(12)],
                    a.model.display(),
                    &a.model_sha256[..a.model_sha256.len().min(12)]
                ));
            }
            compare(
                &mut out,
                "window",
                e.window.to_string(),
                a.window.to_string(),
            );
            compare(
                &mut out,
                "stride",
                e.stride.to_string(),
                a.stride.to_string(),
            );
            let masks = |m: &Option<PathBuf>, t: Option<u32>| match m {
                Some(m) => format!("{} (tolerance {})", m.display(), t.unwrap_or_default()),
                None => "none".into(),
            };
            compare(
                &mut out,
                "true masks",
                masks(&e.masks, e.tolerance),
                masks(&a.masks, a.tolerance),
            );
            let scales = |s: &Option<Vec<f32>>| match s {
                Some(s) => format!("{s:?}"),
                None => "1".into(),
            };
            compare(&mut out, "scales", scales(&e.scales), scales(&a.scales));
            compare(
                &mut out,
                "descriptors",
                e.descriptors.to_string(),
                a.descriptors.to_string(),
            );
        }
    }
    match (&earlier.plan, &asked.plan) {
        (Some(e), Some(a)) => {
            if e.digest != a.digest {
                out.push(format!(
                    "another photo list ({} photos, not these {})",
                    e.photos, a.photos
                ));
            }
            let shard = |s: &Option<crate::scan::plan::Shard>| {
                s.map_or("the whole list".into(), |s| format!("shard {s}"))
            };
            compare(&mut out, "photos of", shard(&e.shard), shard(&a.shard));
        }
        _ if earlier.settings.is_some() => out.push("no photo list recorded".into()),
        _ => {}
    }
    out
}

/// The earlier record with only the entries that are whole: the photo at their place in the
/// list, under its own name, with all three pictures present. Others are dropped (their photos
/// are scanned again); an entry that names another photo's pictures refuses the folder.
fn keep_whole_entries(
    folder: &Path,
    mut record: ScanRecord,
    photos: &[PathBuf],
    names: &[String],
) -> Result<ScanRecord> {
    for entry in &record.photos {
        let matches = entry.index.is_some_and(|i| {
            i < photos.len()
                && photos[i] == entry.photo
                && entry
                    .files()
                    .into_iter()
                    .zip(output_files(&names[i]))
                    .all(|(own, expected)| own == expected)
        });
        if !matches {
            bail!(
                "{}: the entry of {} does not match its place in the photo list; scan into \
                 another --out",
                folder.join(RECORD_FILE).display(),
                entry.photo.display()
            );
        }
    }
    record
        .photos
        .retain(|p| p.files().iter().all(|f| folder.join(f).is_file()));
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::output::{PlanRecord, ScanSettings};

    fn photos() -> (Vec<PathBuf>, Vec<String>) {
        let photos: Vec<PathBuf> = ["/p/a.jpg", "/p/b.jpg"].map(PathBuf::from).to_vec();
        let names = crate::scan::plan::output_names(&photos);
        (photos, names)
    }

    fn fresh(sha: &str) -> ScanRecord {
        let (photos, _) = photos();
        ScanRecord {
            settings: Some(ScanSettings {
                model: "/m/model.safetensors".into(),
                model_sha256: sha.into(),
                window: 64,
                stride: 32,
                masks: None,
                tolerance: None,
                scales: None,
                descriptors: Default::default(),
            }),
            plan: Some(PlanRecord {
                photos: photos.len(),
                digest: crate::scan::plan::digest(&photos),
                shard: None,
            }),
            finished: false,
            ..ScanRecord::for_test(Vec::new())
        }
    }

    fn entry(index: usize) -> PhotoRecord {
        let (photos, names) = photos();
        let [overlay, mask, map, descriptors] = output_files(&names[index]);
        PhotoRecord {
            photo: photos[index].clone(),
            overlay,
            mask,
            map,
            descriptors: Some(descriptors),
            index: Some(index),
            ..PhotoRecord::for_test("", 64, 64)
        }
    }

    #[test]
    fn a_folder_is_held_continued_cleaned_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scan");
        let (photos, names) = photos();
        let (mut folder, opened) = ScanFolder::open(&path, fresh("aa"), &photos, &names).unwrap();
        assert_eq!(opened, Opened::New);
        assert!(!output::read(&path).unwrap().finished);
        let held = ScanFolder::open(&path, fresh("aa"), &photos, &names)
            .err()
            .unwrap();
        assert!(format!("{held:#}").contains("in use by another scan"));
        // Photo a recorded with its pictures; photo b's pictures written but not recorded.
        for name in output_files(&names[0])
            .iter()
            .chain(&output_files(&names[1]))
        {
            std::fs::write(path.join(name), "png").unwrap();
        }
        folder.add_photo(entry(0));
        folder.save(true).unwrap();
        drop(folder);

        let (folder, opened) = ScanFolder::open(&path, fresh("aa"), &photos, &names).unwrap();
        assert_eq!(opened, Opened::Continued { done: 1 });
        assert_eq!(folder.done(), [0].into());
        assert!(
            !path.join(&output_files(&names[1])[0]).exists(),
            "b's removed"
        );
        assert!(path.join(&output_files(&names[0])[0]).exists(), "a's kept");
        drop(folder);

        let other = ScanFolder::open(&path, fresh("bb"), &photos, &names)
            .err()
            .unwrap();
        let message = format!("{other:#}");
        assert!(
            message.contains("another scan's results") && message.contains("SHA-256 aa"),
            "{message}"
        );
        std::fs::write(path.join("notes.txt"), "mine").unwrap();
        let foreign = ScanFolder::open(&path, fresh("aa"), &photos, &names)
            .err()
            .unwrap();
        assert!(format!("{foreign:#}").contains("notes.txt"));
        assert_eq!(std::fs::read(path.join("notes.txt")).unwrap(), b"mine");
    }

    #[test]
    fn a_scan_continued_with_other_descriptors_is_another_scan() {
        let mut alone = fresh("aa");
        if let Some(settings) = alone.settings.as_mut() {
            settings.descriptors = crate::scan::descriptors::Source::Alone;
        }
        let differences = differences(&fresh("aa"), &alone);
        assert_eq!(differences.len(), 1, "{differences:?}");
        assert!(
            differences[0].contains("descriptors") && differences[0].contains("alone"),
            "{differences:?}"
        );
        let json = serde_json::to_string(&alone.settings).unwrap();
        assert!(json.contains(r#""descriptors":"alone""#), "{json}");
        let shared = serde_json::to_string(&fresh("aa").settings).unwrap();
        assert!(
            !shared.contains("descriptors"),
            "older readers see no new field: {shared}"
        );
    }
}
