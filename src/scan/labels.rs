//! A scan folder's window labels as a file format: `labels.csv` beside `scan.json`, one row per
//! window a person (or a script) judged, with the columns `photo,x,y,size,label`. The scan view
//! writes it as keys are pressed; `train --data SCAN_FOLDER` and `patches --scan` read it. It is
//! plain CSV so that other tools can read and write it too: rows may come in any order, a window
//! labelled twice keeps its last row, and a row that does not fit the scan (an unknown photo, a
//! window outside its photo, an unknown label) is an error naming the file, the line and why.
//!
//! Also here: the order in which the scan view suggests windows to label ([`suggest`]), so that
//! the view and any script that plays a labeller choose windows with the same code.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::core::fsutil;
use crate::scan::descriptors::{self, Descriptors, DIM};
use crate::scan::output::ScanRecord;
use crate::scan::typical;

/// The labels' file name inside a scan folder.
pub const LABELS_FILE: &str = "labels.csv";
/// The CSV header, in column order.
pub const HEADER: [&str; 5] = ["photo", "x", "y", "size", "label"];

/// What a person said about a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    Crack,
    NoCrack,
    /// Looked at and left undecided: not training data, but not suggested again either.
    Skip,
}

impl Label {
    /// The word in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Crack => "crack",
            Label::NoCrack => "no-crack",
            Label::Skip => "skip",
        }
    }

    /// Reads a label word: `crack`, `no-crack` (also `no crack`, `no_crack`, `nocrack`) or
    /// `skip`, in any case, spaces around ignored.
    pub fn parse(word: &str) -> Option<Label> {
        let w = word.trim().to_ascii_lowercase().replace([' ', '_'], "-");
        match w.as_str() {
            "crack" => Some(Label::Crack),
            "no-crack" | "nocrack" => Some(Label::NoCrack),
            "skip" => Some(Label::Skip),
            _ => None,
        }
    }
}

/// A window of a scanned photo: its photo (index into the record's photos) and square.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowKey {
    pub photo: usize,
    pub x: u32,
    pub y: u32,
    pub size: u32,
}

/// One labelled window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelledWindow {
    pub window: WindowKey,
    pub label: Label,
}

/// A scan's labels in the order they were given (a window labelled again moves to the end).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    rows: Vec<LabelledWindow>,
}

/// Counts by label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelCounts {
    pub crack: usize,
    pub no_crack: usize,
    pub skip: usize,
}

impl LabelCounts {
    /// Windows with a crack / no-crack answer (skips are not labels to train on).
    pub fn labelled(&self) -> usize {
        self.crack + self.no_crack
    }
}

impl Labels {
    pub fn rows(&self) -> &[LabelledWindow] {
        &self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn get(&self, window: &WindowKey) -> Option<Label> {
        self.rows
            .iter()
            .find(|r| r.window == *window)
            .map(|r| r.label)
    }

    /// Sets a window's label (replacing an earlier one); returns the label it had.
    pub fn set(&mut self, window: WindowKey, label: Label) -> Option<Label> {
        let before = self.remove(&window);
        self.rows.push(LabelledWindow { window, label });
        before
    }

    /// Forgets a window's label; returns it.
    pub fn remove(&mut self, window: &WindowKey) -> Option<Label> {
        let at = self.rows.iter().position(|r| r.window == *window)?;
        Some(self.rows.remove(at).label)
    }

    pub fn counts(&self) -> LabelCounts {
        let mut counts = LabelCounts::default();
        for r in &self.rows {
            match r.label {
                Label::Crack => counts.crack += 1,
                Label::NoCrack => counts.no_crack += 1,
                Label::Skip => counts.skip += 1,
            }
        }
        counts
    }

    /// The CSV text: the header, then one row per window, photos named as `scan.json` names them.
    pub fn to_csv(&self, record: &ScanRecord) -> Result<Vec<u8>> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(HEADER)?;
        for r in &self.rows {
            let w = r.window;
            let photo = record
                .photos
                .get(w.photo)
                .with_context(|| format!("no photo {} in the scan", w.photo))?;
            writer.write_record([
                photo.photo.to_string_lossy().as_ref(),
                &w.x.to_string(),
                &w.y.to_string(),
                &w.size.to_string(),
                r.label.as_str(),
            ])?;
        }
        writer.into_inner().context("cannot encode the labels")
    }

    /// Reads CSV text; `origin` names it in errors. Photos are matched by the path `scan.json`
    /// gives, else by file name when only one photo of the scan has it.
    pub fn from_csv(text: &[u8], record: &ScanRecord, origin: &Path) -> Result<Labels> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(text);
        let header = reader
            .headers()
            .with_context(|| format!("{} is not CSV", origin.display()))?
            .clone();
        let column = |name: &str| -> Result<usize> {
            header
                .iter()
                .position(|h| h.eq_ignore_ascii_case(name))
                .with_context(|| {
                    format!(
                        "{} has no `{name}` column (its header must name photo,x,y,size,label)",
                        origin.display()
                    )
                })
        };
        let (photo_col, x_col, y_col, size_col, label_col) = (
            column("photo")?,
            column("x")?,
            column("y")?,
            column("size")?,
            column("label")?,
        );
        let photos = PhotoLookup::new(record);
        let mut labels = Labels::default();
        for row in reader.records() {
            let row = row.with_context(|| format!("{} is not valid CSV", origin.display()))?;
            let line = row.position().map_or(0, |p| p.line());
            let at = |what: String| format!("{} line {line}: {what}", origin.display());
            if row.iter().all(|field| field.is_empty()) {
                continue;
            }
            let field = |i: usize| row.get(i).unwrap_or("");
            let photo_name = field(photo_col);
            let Some(photo) = photos.find(photo_name) else {
                bail!(at(format!(
                    "photo `{photo_name}` is not a photo of this scan (scan.json names each \
                     photo by its path)"
                )));
            };
            let number = |i: usize, name: &str| -> Result<u32> {
                field(i).parse::<u32>().map_err(|_| {
                    anyhow::anyhow!(at(format!(
                        "`{name}` is `{}`, not a whole number of pixels",
                        field(i)
                    )))
                })
            };
            let (x, y, size) = (
                number(x_col, "x")?,
                number(y_col, "y")?,
                number(size_col, "size")?,
            );
            let Some(label) = Label::parse(field(label_col)) else {
                bail!(at(format!(
                    "label `{}` is none of crack, no-crack, skip",
                    field(label_col)
                )));
            };
            let p = &record.photos[photo];
            if size == 0
                || u64::from(x) + u64::from(size) > u64::from(p.width)
                || u64::from(y) + u64::from(size) > u64::from(p.height)
            {
                bail!(at(format!(
                    "the {size}-pixel window at x {x}, y {y} is not inside {} ({}x{})",
                    p.name(),
                    p.width,
                    p.height
                )));
            }
            labels.set(WindowKey { photo, x, y, size }, label);
        }
        Ok(labels)
    }
}

/// Photos of a record by path and, where unambiguous, by file name.
struct PhotoLookup {
    by_path: HashMap<PathBuf, usize>,
    by_name: HashMap<String, Option<usize>>,
}

impl PhotoLookup {
    fn new(record: &ScanRecord) -> PhotoLookup {
        let mut by_path = HashMap::new();
        let mut by_name: HashMap<String, Option<usize>> = HashMap::new();
        for (i, p) in record.photos.iter().enumerate() {
            by_path.insert(p.photo.clone(), i);
            by_name
                .entry(p.name())
                .and_modify(|e| *e = None)
                .or_insert(Some(i));
        }
        PhotoLookup { by_path, by_name }
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.by_path
            .get(Path::new(name))
            .copied()
            .or_else(|| self.by_name.get(name).copied().flatten())
    }
}

/// The labels file of a scan folder.
pub fn path(folder: &Path) -> PathBuf {
    folder.join(LABELS_FILE)
}

/// Reads a scan folder's labels; none yet is an empty set.
pub fn read(folder: &Path, record: &ScanRecord) -> Result<Labels> {
    let file = path(folder);
    match std::fs::read(&file) {
        Ok(bytes) => Labels::from_csv(&bytes, record, &file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Labels::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// Writes a scan folder's labels whole, atomically (a crash leaves the previous file).
pub fn write(folder: &Path, record: &ScanRecord, labels: &Labels) -> Result<()> {
    fsutil::write_atomic(&path(folder), &labels.to_csv(record)?)
}

/// Which windows the scan view offers first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suggest {
    /// Those the model is least sure of (probability nearest the scan's threshold), taken from
    /// the photos in turn: every photo's least sure window first (the least sure of those
    /// first), then every photo's second, and so on, so that a few labels already span the
    /// photos instead of piling up on one.
    LeastSure,
    /// The highest probabilities first (the model's strongest claims, where false alarms show).
    TopScored,
    /// Spread over the model's scores and over the photos: the windows are cut into
    /// [`SCORE_BANDS`] bands by probability (equal counts), and the suggestions take a band each
    /// in turn, from the highest (false alarms, cracks) to the lowest (misses hide there when the
    /// model is confidently wrong), each band's photos in turn, and no window overlapping one
    /// already suggested or labelled in its photo until no other is left (then the rest, the
    /// bands still in turn). A model meeting a new kind of photo is often sure and wrong, so its
    /// least sure windows are a thin slice of what it gets wrong; this order shows every kind of
    /// mistake from the first labels on.
    Spread,
    /// By what the windows look like, not by the model's score: the most typical window of each
    /// cluster of look-alike windows no label covers yet, largest cluster first
    /// ([`crate::scan::typical`]); a round of as many labels as there are (at least 50), after
    /// which the clusters are cut again. Needs the scan's window descriptors ([`descriptors`]).
    Typical,
}

/// Score bands of [`Suggest::Spread`].
pub const SCORE_BANDS: usize = 4;

impl Suggest {
    pub fn describe(self) -> &'static str {
        match self {
            Suggest::LeastSure => "least sure first, spread over photos",
            Suggest::TopScored => "top-scored first",
            Suggest::Spread => "spread over scores and photos",
            Suggest::Typical => "typical of each uncovered cluster",
        }
    }
}

/// Every photo's window descriptors (see [`read_descriptors`]), which [`Suggest::Typical`] orders
/// by.
pub type PoolDescriptors = [Descriptors];

/// Reads the window descriptors of every photo of a scan folder, for [`Suggest::Typical`]; a
/// photo without them (scanned by a one-class model, or before scans kept them) is an error
/// saying so.
pub fn read_descriptors(folder: &Path, record: &ScanRecord) -> Result<Vec<Descriptors>> {
    record
        .photos
        .iter()
        .map(|p| match &p.descriptors {
            Some(name) => descriptors::read(&folder.join(name), p.windows.len()),
            None => bail!(
                "{}: {} has no window descriptors (a one-class model's scan, or one made before \
                 scans kept them); scan again with a classifier to have windows suggested by \
                 their look",
                folder.display(),
                p.name()
            ),
        })
        .collect()
}

/// The scan's windows in the order `how` suggests them, leaving out those already labelled
/// (skips included). Only [`Suggest::Typical`] reads `looks` (one entry a photo, from
/// [`read_descriptors`]), and it suggests the next round only; called again once that is
/// labelled, it gives the one after. Without descriptors for every photo it suggests nothing.
pub fn suggest(
    record: &ScanRecord,
    labels: &Labels,
    how: Suggest,
    looks: &PoolDescriptors,
) -> Vec<WindowKey> {
    let done: HashSet<WindowKey> = labels.rows.iter().map(|r| r.window).collect();
    match how {
        Suggest::TopScored => {
            let mut open = open_windows(record, &done);
            open.sort_by(|a, b| b.0.total_cmp(&a.0));
            open.into_iter().map(|(_, k)| k).collect()
        }
        Suggest::LeastSure => least_sure(open_windows(record, &done), record),
        Suggest::Spread => spread(open_windows(record, &done), &done, record.photos.len()),
        Suggest::Typical => typical_round(record, labels, &done, looks),
    }
}

/// Every window of the record with its probability, in the record's order (photos in scan
/// order, windows row by row).
fn all_windows(record: &ScanRecord) -> impl Iterator<Item = (f32, WindowKey)> + '_ {
    record.photos.iter().enumerate().flat_map(|(photo, p)| {
        p.windows.iter().map(move |w| {
            let key = WindowKey {
                photo,
                x: w.x,
                y: w.y,
                size: w.size,
            };
            (w.probability, key)
        })
    })
}

/// The windows not in `done`, with their probabilities; ties keep the record's order.
fn open_windows(record: &ScanRecord, done: &HashSet<WindowKey>) -> Vec<(f32, WindowKey)> {
    all_windows(record)
        .filter(|(_, k)| !done.contains(k))
        .collect()
}

/// [`Suggest::LeastSure`]'s order of the `open` windows.
fn least_sure(open: Vec<(f32, WindowKey)>, record: &ScanRecord) -> Vec<WindowKey> {
    let threshold = record.threshold;
    let mut per_photo = vec![Vec::new(); record.photos.len()];
    for (p, key) in open {
        per_photo[key.photo].push(((p - threshold).abs(), key));
    }
    for windows in &mut per_photo {
        windows.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let rounds = per_photo.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::new();
    for round in 0..rounds {
        let mut this: Vec<(f32, WindowKey)> = per_photo
            .iter()
            .filter_map(|windows| windows.get(round).copied())
            .collect();
        this.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.extend(this.into_iter().map(|(_, k)| k));
    }
    out
}

/// [`Suggest::Typical`]'s next round over every window of the record.
fn typical_round(
    record: &ScanRecord,
    labels: &Labels,
    done: &HashSet<WindowKey>,
    looks: &PoolDescriptors,
) -> Vec<WindowKey> {
    let described = looks.len() == record.photos.len()
        && record
            .photos
            .iter()
            .zip(looks)
            .all(|(p, d)| d.windows() == p.windows.len());
    if !described {
        return Vec::new();
    }
    let keys: Vec<WindowKey> = all_windows(record).map(|(_, k)| k).collect();
    let rows: Vec<f32> = looks
        .iter()
        .flat_map(|d| d.values.iter().copied())
        .collect();
    let looked: Vec<bool> = keys.iter().map(|k| done.contains(k)).collect();
    typical::next_round(&rows, DIM, &looked, labels.counts().labelled())
        .into_iter()
        .map(|w| keys[w])
        .collect()
}

/// [`Suggest::Spread`]'s order of the `open` windows (`done`: those labelled already).
fn spread(
    mut open: Vec<(f32, WindowKey)>,
    done: &HashSet<WindowKey>,
    photos: usize,
) -> Vec<WindowKey> {
    open.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total = open.len();
    // Each band: its photos' windows, in a scrambled but fixed order, and a turn over photos.
    let mut bands: Vec<Band> = (0..SCORE_BANDS)
        .map(|b| {
            let (from, to) = (b * total / SCORE_BANDS, (b + 1) * total / SCORE_BANDS);
            let mut per_photo = vec![Vec::new(); photos];
            for &(_, key) in &open[from..to] {
                per_photo[key.photo].push(key);
            }
            for windows in &mut per_photo {
                windows.sort_by_key(|k| {
                    let key = [k.photo as u64, k.x.into(), k.y.into(), k.size.into()];
                    std::cmp::Reverse(scramble(&key))
                });
            }
            let mut turn: Vec<usize> = (0..photos).filter(|&p| !per_photo[p].is_empty()).collect();
            turn.sort_by_key(|&p| scramble(&[p as u64, b as u64]));
            Band {
                per_photo,
                turn,
                next: 0,
            }
        })
        .collect();
    let mut taken: Vec<Vec<WindowKey>> = vec![Vec::new(); photos];
    for key in done {
        if let Some(windows) = taken.get_mut(key.photo) {
            windows.push(*key);
        }
    }
    let mut out = Vec::with_capacity(total);
    loop {
        let mut any = false;
        for band in &mut bands {
            let clear = |w: &WindowKey| taken[w.photo].iter().all(|t| !overlap(w, t));
            if let Some(key) = band.next_where(clear) {
                taken[key.photo].push(key);
                out.push(key);
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    // Then what overlaps a choice, still a band each in turn: a few labels per photo already
    // overlap every window of a small photo, and taking the rest band after band would give
    // the top band's windows (mostly cracks) for the next hundred labels.
    loop {
        let before = out.len();
        out.extend(
            bands
                .iter_mut()
                .filter_map(|band| band.next_where(|_| true)),
        );
        if out.len() == before {
            break;
        }
    }
    out
}

/// One score band of [`spread`]: its windows per photo (taken from the end) and whose turn it is.
struct Band {
    per_photo: Vec<Vec<WindowKey>>,
    turn: Vec<usize>,
    next: usize,
}

impl Band {
    /// The next window, photo after photo, that `fits`; windows passed over stay for later.
    fn next_where(&mut self, fits: impl Fn(&WindowKey) -> bool) -> Option<WindowKey> {
        for _ in 0..self.turn.len() {
            let photo = self.turn[self.next % self.turn.len()];
            self.next += 1;
            let windows = &mut self.per_photo[photo];
            if let Some(at) = windows.iter().rposition(&fits) {
                return Some(windows.remove(at));
            }
        }
        None
    }
}

fn overlap(a: &WindowKey, b: &WindowKey) -> bool {
    a.x < b.x + b.size && b.x < a.x + a.size && a.y < b.y + b.size && b.y < a.y + a.size
}

/// A fixed scrambling of some numbers (splitmix64), so that a band's windows come in no spatial
/// order and the same scan suggests the same windows each time, on every build.
fn scramble(values: &[u64]) -> u64 {
    values.iter().fold(0x9E37_79B9_7F4A_7C15, |h, &v| {
        let mut z = (h ^ v).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::output::{PhotoRecord, WindowRecord};

    fn photo(path: &str, probabilities: &[f32]) -> PhotoRecord {
        PhotoRecord {
            photo: path.into(),
            ..PhotoRecord::for_test("", 300, 100).with_row_of_windows(probabilities)
        }
    }

    fn record() -> ScanRecord {
        ScanRecord::for_test(vec![
            photo("/p/a, with comma.jpg", &[0.9, 0.45, 0.1]),
            photo("/p/b.jpg", &[0.52, 0.0, 0.99]),
        ])
    }

    fn key(photo: usize, x: u32) -> WindowKey {
        WindowKey {
            photo,
            x,
            y: 0,
            size: 100,
        }
    }

    #[test]
    fn labels_round_trip_through_csv_with_any_photo_path() {
        let record = record();
        let mut labels = Labels::default();
        labels.set(key(0, 100), Label::Crack);
        labels.set(key(1, 0), Label::NoCrack);
        labels.set(key(1, 200), Label::Skip);
        let text = labels.to_csv(&record).unwrap();
        let csv = String::from_utf8(text.clone()).unwrap();
        assert!(
            csv.starts_with("photo,x,y,size,label\n\"/p/a, with comma.jpg\",100,0,100,crack\n"),
            "{csv}"
        );
        let back = Labels::from_csv(&text, &record, Path::new("labels.csv")).unwrap();
        assert_eq!(back, labels);
        assert_eq!(
            back.counts(),
            LabelCounts {
                crack: 1,
                no_crack: 1,
                skip: 1
            }
        );
        // Written and read through the folder, atomically.
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path(), &record).unwrap().is_empty(), "none yet");
        write(dir.path(), &record, &labels).unwrap();
        assert_eq!(read(dir.path(), &record).unwrap(), labels);
    }

    #[test]
    fn hand_edited_files_are_read_tolerantly() {
        let record = record();
        // Columns in another order, spaces, upper case, a blank line, a file name for a path,
        // and a window labelled twice (the last row wins).
        let text = "label, size ,photo,x,y\n\
                    CRACK , 100, b.jpg, 0, 0\n\
                    \n\
                    No crack,100,/p/b.jpg,0,0\n\
                    skip,100,/p/a, with comma.jpg,0,0\n";
        // The unquoted comma splits that last field: named as an unknown photo.
        let err = Labels::from_csv(text.as_bytes(), &record, Path::new("l.csv")).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("l.csv line 5") && message.contains("not a photo of this scan"),
            "{message}"
        );
        let text = text.replace("/p/a, with comma.jpg", "\"/p/a, with comma.jpg\"");
        let labels = Labels::from_csv(text.as_bytes(), &record, Path::new("l.csv")).unwrap();
        assert_eq!(labels.get(&key(1, 0)), Some(Label::NoCrack));
        assert_eq!(labels.get(&key(0, 0)), Some(Label::Skip));
        assert_eq!(labels.rows().len(), 2);
    }

    #[test]
    fn rows_that_do_not_fit_the_scan_are_named() {
        let record = record();
        let cases = [
            ("photo,x,y,size\n/p/b.jpg,0,0,100\n", "no `label` column"),
            (
                "photo,x,y,size,label\n/p/b.jpg,250,0,100,crack\n",
                "line 2: the 100-pixel window at x 250, y 0 is not inside b.jpg (300x100)",
            ),
            (
                "photo,x,y,size,label\n/p/b.jpg,0,0,100,maybe\n",
                "line 2: label `maybe` is none of crack",
            ),
            (
                "photo,x,y,size,label\n/p/b.jpg,-1,0,100,crack\n",
                "line 2: `x` is `-1`, not a whole number",
            ),
            (
                "photo,x,y,size,label\n/elsewhere/c.jpg,0,0,100,crack\n",
                "line 2: photo `/elsewhere/c.jpg` is not a photo of this scan",
            ),
        ];
        for (text, expected) in cases {
            let err =
                Labels::from_csv(text.as_bytes(), &record, Path::new("s/labels.csv")).unwrap_err();
            let message = format!("{err:#}");
            assert!(
                message.contains("s/labels.csv") && message.contains(expected),
                "{message}"
            );
        }
    }

    #[test]
    fn least_sure_windows_come_first_spread_over_photos() {
        let record = record();
        let mut labels = Labels::default();
        let order = suggest(&record, &labels, Suggest::LeastSure, &[]);
        // Round 1: each photo's least sure (b 0.52 at 0.02, a 0.45 at 0.05); round 2: b 0.99
        // (0.49) and a 0.9 (0.40) -> a first; round 3: a 0.1 (0.40), b 0.0 (0.5).
        assert_eq!(
            order,
            vec![
                key(1, 0),
                key(0, 100),
                key(0, 0),
                key(1, 200),
                key(0, 200),
                key(1, 100)
            ]
        );
        labels.set(key(1, 0), Label::Skip);
        labels.set(key(0, 100), Label::Crack);
        let order = suggest(&record, &labels, Suggest::LeastSure, &[]);
        assert_eq!(
            order[..2],
            [key(0, 0), key(1, 200)],
            "labelled ones left out"
        );
        let top = suggest(&record, &Labels::default(), Suggest::TopScored, &[]);
        assert_eq!(top[..3], [key(1, 200), key(0, 0), key(1, 0)]);
    }

    /// Three photos of 400 x 400 pixels scanned by 200-pixel windows at a 100-pixel stride (9
    /// windows each, overlapping), scores rising through the photos and along each.
    fn overlapping_scan() -> ScanRecord {
        let photos = (0..3)
            .map(|p| {
                let mut photo = PhotoRecord::for_test(&format!("{p}.jpg"), 400, 400);
                photo.windows = (0..9)
                    .map(|i| WindowRecord {
                        x: 100 * (i % 3),
                        y: 100 * (i / 3),
                        size: 200,
                        probability: (p * 9 + i) as f32 / 27.0,
                        score: None,
                    })
                    .collect();
                photo
            })
            .collect();
        ScanRecord::for_test(photos)
    }

    #[test]
    fn spread_takes_every_score_band_in_turn_without_overlap_until_it_must() {
        let record = overlapping_scan();
        let probability = |k: &WindowKey| {
            let w = &record.photos[k.photo].windows;
            w.iter()
                .find(|w| (w.x, w.y) == (k.x, k.y))
                .unwrap()
                .probability
        };
        let order = suggest(&record, &Labels::default(), Suggest::Spread, &[]);
        assert_eq!(order.len(), 27, "every window once");
        assert_eq!(
            order.iter().collect::<HashSet<_>>().len(),
            27,
            "no window twice"
        );
        // The first four: one from each quarter of the scores, highest quarter first.
        let bands: Vec<usize> = order[..SCORE_BANDS]
            .iter()
            .map(|k| (probability(k) * 27.0) as usize * SCORE_BANDS / 27)
            .collect();
        assert_eq!(bands, vec![3, 2, 1, 0], "{order:?}");
        // No suggestion overlaps an earlier one of its photo until every window left does.
        let overlaps_earlier = |i: usize| {
            order[..i]
                .iter()
                .any(|b| b.photo == order[i].photo && overlap(&order[i], b))
        };
        let must = (0..27).find(|&i| overlaps_earlier(i)).unwrap();
        assert!(
            must >= 3,
            "each photo has at least one clear window: {order:?}"
        );
        for late in &order[must..] {
            assert!(
                order[..must]
                    .iter()
                    .any(|b| b.photo == late.photo && overlap(late, b)),
                "{late:?} was clear and came after an overlapping one: {order:?}"
            );
        }
        // Past that point the bands still take turns: the top band does not come all at once.
        let late_bands: Vec<usize> = order[must..must + SCORE_BANDS]
            .iter()
            .map(|k| (probability(k) * 27.0) as usize * SCORE_BANDS / 27)
            .collect();
        let mut distinct = late_bands.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() >= 3, "{late_bands:?}: {order:?}");
        // The same scan suggests the same order; labelled windows are left out and count as taken.
        assert_eq!(
            order,
            suggest(&record, &Labels::default(), Suggest::Spread, &[])
        );
        let mut labels = Labels::default();
        labels.set(order[0], Label::Crack);
        let again = suggest(&record, &labels, Suggest::Spread, &[]);
        assert!(!again.contains(&order[0]));
        let first_in_photo = again.iter().find(|k| k.photo == order[0].photo).unwrap();
        assert!(!overlap(first_in_photo, &order[0]));
    }

    #[test]
    fn typical_suggestions_come_from_the_descriptors_files_and_need_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = record();
        // Each window a direction of its own but two: a's first two windows look alike.
        for (p, photo) in record.photos.iter_mut().enumerate() {
            let name = format!("{p}-descriptors.safetensors");
            let values = (0..3)
                .flat_map(|w| {
                    let axis = if (p, w) == (0, 1) { 0 } else { 3 * p + w };
                    (0..DIM).map(move |d| if d == axis { 1.0 } else { 0.0 })
                })
                .collect();
            descriptors::write(&dir.path().join(&name), &Descriptors { values }).unwrap();
            photo.descriptors = Some(name);
        }
        let looks = read_descriptors(dir.path(), &record).unwrap();
        let mut labels = Labels::default();
        labels.set(key(1, 0), Label::Crack);
        let order = suggest(&record, &labels, Suggest::Typical, &looks);
        let unique: HashSet<&WindowKey> = order.iter().collect();
        assert_eq!(unique.len(), order.len(), "{order:?}");
        assert!(!order.contains(&key(1, 0)), "a window looked at came again");
        // Five windows left, five looks among them (a's first two alike): at most one of the
        // alike pair, and every other window.
        let alike = [key(0, 0), key(0, 100)];
        assert_eq!(
            order.iter().filter(|k| alike.contains(k)).count(),
            1,
            "{order:?}"
        );
        assert_eq!(order.len(), 4, "{order:?}");
        // Without descriptors for every photo, nothing (the view says why).
        assert!(suggest(&record, &labels, Suggest::Typical, &looks[..1]).is_empty());
        record.photos[1].descriptors = None;
        let missing = read_descriptors(dir.path(), &record)
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("b.jpg has no window descriptors"),
            "{missing}"
        );
    }
}
