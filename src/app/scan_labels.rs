//! A scan folder's labels as a training set: the windows `labels.csv` marks crack or no crack, cut
//! from the original photos (upright, as scanned) into a patch dataset (`Positive/`, `Negative/`
//! and `patches.csv`, so the split keeps each photo's windows together). `train --data
//! SCAN_FOLDER` cuts them into the run directory when the run starts, so the run keeps the exact
//! images it was trained on whatever happens to the labels later; `patches --scan` writes them
//! where the user says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Result};

use crate::core::fsutil::file_safe_name;
use crate::data::patches::{PatchOptions, PatchWriter, NEGATIVE, POSITIVE};
use crate::scan::labels::{self, Label};
use crate::scan::output::{self, RECORD_FILE};

/// What was cut from a scan folder's labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelledSet {
    pub crack: usize,
    pub no_crack: usize,
    pub photos: usize,
}

/// Whether `folder` is a scan folder (it holds `scan.json`) rather than a folder-per-class set.
pub fn is_scan_folder(folder: &Path) -> bool {
    folder.join(RECORD_FILE).is_file()
}

/// Cuts the labelled windows of the scan folder `scan` into a new patch dataset at `out` (which
/// must not exist or be empty). Skipped windows are left out; a folder without a crack and a
/// no-crack label is refused, as is a photo that changed since the scan.
pub fn write_dataset(scan: &Path, out: &Path) -> Result<LabelledSet> {
    let record = output::read(scan)?;
    let labels = labels::read(scan, &record)?;
    let counts = labels.counts();
    let file = labels::path(scan);
    if counts.labelled() == 0 {
        bail!(
            "{} has no labelled windows ({}): label some in `crackscope watch {}` (keys l, c, x)",
            scan.display(),
            if file.is_file() {
                format!("{} holds only skips", file.display())
            } else {
                format!("no {}", labels::LABELS_FILE)
            },
            scan.display()
        );
    }
    let mut per_photo: BTreeMap<usize, Vec<(u32, u32, u32, &'static str)>> = BTreeMap::new();
    for row in labels.rows() {
        let class = match row.label {
            Label::Crack => POSITIVE,
            Label::NoCrack => NEGATIVE,
            Label::Skip => continue,
        };
        let w = row.window;
        per_photo
            .entry(w.photo)
            .or_default()
            .push((w.x, w.y, w.size, class));
    }
    let size = labels.rows()[0].window.size;
    let options = PatchOptions {
        size,
        stride: size,
        min_crack_share: 1.0,
    };
    let mut writer = PatchWriter::create(out, options)?;
    for (&index, windows) in &per_photo {
        let photo = &record.photos[index];
        let image = crate::scan::photo::load_upright(&photo.photo)?;
        ensure!(
            image.dimensions() == (photo.width, photo.height),
            "{} is {}x{} now, but was {}x{} when scanned into {}: its labelled windows would be \
             cut from other pixels",
            photo.photo.display(),
            image.width(),
            image.height(),
            photo.width,
            photo.height,
            scan.display()
        );
        // The scan's own unique name for the photo (its pictures' prefix).
        let name = photo
            .overlay
            .strip_suffix("-overlay.png")
            .map_or_else(|| photo.name(), str::to_string);
        writer.add_windows(&name, &image, windows)?;
    }
    writer.finish()?;
    Ok(LabelledSet {
        crack: counts.crack,
        no_crack: counts.no_crack,
        photos: per_photo.len(),
    })
}

/// The dataset folders a training reads: each scan folder among `roots` replaced by its labelled
/// windows, cut into `run/labels-N-NAME`; other folders as they are. Returns a note per scan
/// folder.
pub fn dataset_roots(roots: &[PathBuf], run: &Path) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let mut out = Vec::with_capacity(roots.len());
    let mut notes = Vec::new();
    for (i, root) in roots.iter().enumerate() {
        if !is_scan_folder(root) {
            out.push(root.clone());
            continue;
        }
        let name = root
            .file_name()
            .map_or_else(|| "scan".into(), |n| file_safe_name(&n.to_string_lossy()));
        let cut = run.join(format!("labels-{}-{name}", i + 1));
        let set = write_dataset(root, &cut)?;
        notes.push(format!(
            "{}: {} labelled windows of {} photos ({} crack as {POSITIVE}, {} no crack as \
             {NEGATIVE}) cut into {}",
            root.display(),
            set.crack + set.no_crack,
            set.photos,
            set.crack,
            set.no_crack,
            cut.display()
        ));
        out.push(cut);
    }
    Ok((out, notes))
}
