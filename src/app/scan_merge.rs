//! Merging the shards of a scan (`crackscope scan-merge`): the folders that `scan --shard K/N`
//! wrote, each a scan folder of its own, become one scan folder with every photo, as one process
//! scanning the whole list would have written it (the same names, windows and fractions; the
//! same record but for timing-free fields). Pictures are hard-linked where the file system allows
//! (copied where it does not), so the shards stay whole and the merge costs no space.
//!
//! Every shard must be present once, finished, of the same scan (model, settings, photo list) and
//! not in use; anything else is refused before the merged folder is touched. The merged folder
//! follows [`super::scan_folder`]'s rules: a merge interrupted midway is finished by running it
//! again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::scan::{metrics_record, overall_metrics, overall_sweep};
use super::scan_folder::{differences, is_shard_folder, ScanFolder, LOCK_FILE, METRICS_FILE};
use crate::run::lock::{self, RunLock};
use crate::scan::output::{self, ScanRecord};
use crate::scan::plan;

/// What a merge made.
#[derive(Debug)]
pub struct Merged {
    pub folder: PathBuf,
    pub shards: usize,
    pub photos: usize,
    pub failed: usize,
}

/// Merges the scan folders `shards` (or, when none are given, the `shard-K-of-N` folders inside
/// `out`) into the scan folder `out`.
pub fn merge(out: &Path, shards: &[PathBuf]) -> Result<Merged> {
    let shards = if shards.is_empty() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(out)
            .with_context(|| format!("cannot read {}", out.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_shard_folder(p))
            .collect();
        found.sort();
        if found.is_empty() {
            bail!(
                "{} holds no shard folders (shard-K-of-N, written by `crackscope scan --shard \
                 K/N --out {}`); name the shards' folders after it",
                out.display(),
                out.display()
            );
        }
        found
    } else {
        shards.to_vec()
    };
    // Held until the merge ends: a shard still scanning cannot be merged half-done.
    let mut held: Vec<RunLock> = Vec::new();
    let mut records: Vec<(PathBuf, ScanRecord)> = Vec::new();
    for shard in &shards {
        held.push(lock::acquire_or(&shard.join(LOCK_FILE), |who| {
            format!(
                "{} is in use by a scan that is still running{who}; merge when it has ended",
                shard.display()
            )
        })?);
        records.push((shard.clone(), output::read(shard)?));
    }
    let (photos, names, template) = whole_list(&records)?;
    let (mut folder, _) = ScanFolder::open(out, template, &photos, &names)?;
    let done = folder.done();
    for (shard, record) in &records {
        for entry in &record.photos {
            let Some(i) = entry.index else { continue };
            if done.contains(&i) {
                continue;
            }
            folder.clear_pictures(&names[i])?;
            for name in entry.files() {
                link_or_copy(&shard.join(name), &out.join(name))?;
            }
            folder.add_photo(entry.clone());
            folder.save(false)?;
        }
        for failure in &record.failed {
            if !done.contains(&failure.index) {
                folder.add_failure(failure.clone());
            }
        }
    }
    let (overall, _) = overall_metrics(&folder, &HashMap::new())?;
    if let Some(overall) = &overall {
        let text = serde_json::to_string_pretty(overall)?;
        crate::core::fsutil::write_atomic(&out.join(METRICS_FILE), text.as_bytes())?;
    }
    folder.record.overall = overall.as_ref().map(metrics_record);
    folder.record.sweep = overall_sweep(&folder.record)?;
    folder.record.finished = true;
    folder.save(true)?;
    Ok(Merged {
        folder: out.to_path_buf(),
        shards: records.len(),
        photos: folder.record.photos.len(),
        failed: folder.record.failed.len(),
    })
}

/// The whole photo list and its output names, rebuilt from the shards' records, and the merged
/// folder's empty record; refuses shards that are not all the finished shards of one scan.
fn whole_list(
    records: &[(PathBuf, ScanRecord)],
) -> Result<(Vec<PathBuf>, Vec<String>, ScanRecord)> {
    let (first_path, first) = &records[0];
    let shard_of = |path: &Path, record: &ScanRecord| {
        record
            .plan
            .as_ref()
            .and_then(|p| p.shard.map(|s| (p.photos, s)))
            .with_context(|| {
                format!(
                    "{} is not a shard of a scan (its scan.json has no shard); merge only the \
                     folders of `crackscope scan --shard K/N`",
                    path.display()
                )
            })
    };
    let (total, first_shard) = shard_of(first_path, first)?;
    let mut template = first.clone();
    template.photos.clear();
    template.failed.clear();
    template.overall = None;
    template.sweep = None;
    template.finished = false;
    if let Some(plan) = &mut template.plan {
        plan.shard = None;
    }
    let mut seen: HashMap<usize, &Path> = HashMap::new();
    let mut photos: Vec<Option<PathBuf>> = vec![None; total];
    for (path, record) in records {
        let (_, shard) = shard_of(path, record)?;
        let mut same_plan = record.clone();
        if let Some(plan) = &mut same_plan.plan {
            plan.shard = first.plan.as_ref().and_then(|p| p.shard);
        }
        let differ = differences(&same_plan, first);
        if !differ.is_empty() {
            bail!(
                "{} is a shard of another scan than {} ({})",
                path.display(),
                first_path.display(),
                differ.join("; ")
            );
        }
        if shard.count != first_shard.count {
            bail!(
                "{} is shard {shard} but {} is shard {first_shard}: shards of one scan share N",
                path.display(),
                first_path.display()
            );
        }
        if let Some(other) = seen.insert(shard.index, path) {
            bail!(
                "{} and {} are both shard {shard}",
                other.display(),
                path.display()
            );
        }
        if !record.finished {
            bail!(
                "{} (shard {shard}) is not finished: rerun its scan command to finish it, then merge",
                path.display()
            );
        }
        let places = record
            .photos
            .iter()
            .filter_map(|p| p.index.map(|i| (i, &p.photo)))
            .chain(record.failed.iter().map(|f| (f.index, &f.photo)));
        for (i, photo) in places {
            if i >= total || !shard.takes(i) {
                bail!(
                    "{}: {} is recorded at place {i}, which is not shard {shard}'s",
                    path.display(),
                    photo.display()
                );
            }
            photos[i] = Some(photo.clone());
        }
    }
    if let Some(missing) = (1..=first_shard.count).find(|k| !seen.contains_key(k)) {
        bail!(
            "shard {missing}/{} is missing: merge all {} shards' folders",
            first_shard.count,
            first_shard.count
        );
    }
    let photos: Vec<PathBuf> = photos
        .into_iter()
        .enumerate()
        .map(|(i, p)| p.with_context(|| format!("no shard recorded the photo at place {i}")))
        .collect::<Result<_>>()?;
    let digest = template.plan.as_ref().map(|p| p.digest.as_str());
    if digest != Some(plan::digest(&photos).as_str()) {
        bail!("the shards' photos are not the photo list their scan.json names");
    }
    let names = plan::output_names(&photos);
    Ok((photos, names, template))
}

/// `to` as a hard link of `from`, or a copy (written atomically) where links cannot be made.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    crate::core::fsutil::write_atomic(to, &bytes)
}
