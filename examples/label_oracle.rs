//! Plays the person at the scan view's labelling keys, for measuring the labelling loop
//! (`scripts/labelling_loop.sh`): walks a scan folder's windows in the order the view suggests
//! them (the same `scan::labels::suggest`; `typical` in rounds, as the view's `y` does), or at
//! random, answers each from the photo's true crack
//! mask by the rule `crackscope patches` uses (crack when crack pixels cover `--min-crack-share`
//! of the window's central region, no crack when the window holds no crack pixel, skip
//! otherwise), and writes the folder's `labels.csv` as the view would, until `--budget` windows
//! have a crack or no-crack label (labels already in the file count).
//!
//! `--rare N` makes the pool one where cracks are rare, as in most inspection photos: of the
//! windows holding any crack pixel it keeps one in N (chosen by a hash of the photo's name and
//! the window's place, so every round keeps the same ones) and the rest are not offered at all.
//!
//!   cargo run --release --example label_oracle -- SCAN_FOLDER MASK_FOLDER --budget 50 \
//!       [--order least-sure|top-scored|spread|typical|random] [--seed 0] \
//!       [--min-crack-share 0.005] \
//!       [--rare N]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use crackscope::data::patches::{label_window, NEGATIVE, POSITIVE};
use crackscope::scan::labels::{self, Label, Suggest, WindowKey};
use crackscope::scan::output;
use image::GrayImage;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use sha2::{Digest, Sha256};

struct Options {
    scan: PathBuf,
    masks: PathBuf,
    budget: usize,
    order: String,
    seed: u64,
    min_crack_share: f64,
    rare: Option<u32>,
}

fn options() -> Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut o = Options {
        scan: PathBuf::new(),
        masks: PathBuf::new(),
        budget: 0,
        order: "least-sure".into(),
        seed: 0,
        min_crack_share: 0.005,
        rare: None,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--budget" => o.budget = value("--budget")?.parse()?,
            "--order" => o.order = value("--order")?,
            "--seed" => o.seed = value("--seed")?.parse()?,
            "--min-crack-share" => o.min_crack_share = value("--min-crack-share")?.parse()?,
            "--rare" => o.rare = Some(value("--rare")?.parse()?).filter(|&n| n > 1),
            _ if arg.starts_with("--") => bail!("unknown flag {arg}"),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [scan, masks] = <[PathBuf; 2]>::try_from(positional)
        .map_err(|_| anyhow::anyhow!("give SCAN_FOLDER MASK_FOLDER --budget N"))?;
    (o.scan, o.masks) = (scan, masks);
    Ok(o)
}

/// The mask of `photo` in `masks`: the file with the photo's stem (any image extension).
fn mask_of(masks: &Path, photo: &Path) -> Result<GrayImage> {
    let stem = photo.file_stem().context("a photo without a name")?;
    for entry in std::fs::read_dir(masks)? {
        let path = entry?.path();
        if path.file_stem() == Some(stem) {
            return Ok(image::open(&path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .into_luma8());
        }
    }
    bail!("no mask for {} in {}", photo.display(), masks.display())
}

/// Whether `--rare keep` keeps a window: those without a crack pixel always, the others one in
/// `keep` by a hash of `stem:x:y` (its first 32 bits).
fn kept_when_rare(mask: &GrayImage, stem: &str, w: &output::WindowRecord, keep: u32) -> bool {
    let (right, bottom) = (
        (w.x + w.size).min(mask.width()),
        (w.y + w.size).min(mask.height()),
    );
    let any_crack = (w.y..bottom).any(|y| (w.x..right).any(|x| mask.get_pixel(x, y).0[0] > 0));
    let digest = Sha256::digest(format!("{stem}:{}:{}", w.x, w.y));
    let hash = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    !any_crack || hash % keep == 0
}

/// The label a person gives by `patches`' rule.
fn answer(mask: &GrayImage, w: WindowKey, min_crack_share: f64) -> Label {
    match label_window(mask, w.x, w.y, w.size, min_crack_share) {
        Some(c) if c == POSITIVE => Label::Crack,
        Some(c) if c == NEGATIVE => Label::NoCrack,
        _ => Label::Skip,
    }
}

fn main() -> Result<()> {
    let o = options()?;
    let mut record = output::read(&o.scan)?;
    let how = match o.order.as_str() {
        "least-sure" => Some(Suggest::LeastSure),
        "top-scored" => Some(Suggest::TopScored),
        "spread" => Some(Suggest::Spread),
        "typical" => Some(Suggest::Typical),
        "random" => None,
        other => bail!("--order {other}: least-sure, top-scored, spread, typical or random"),
    };
    let mut looks = match how {
        Some(Suggest::Typical) => labels::read_descriptors(&o.scan, &record)?,
        _ => Vec::new(),
    };
    if let Some(keep) = o.rare {
        for (i, photo) in record.photos.iter_mut().enumerate() {
            let mask = mask_of(&o.masks, &photo.photo)?;
            let stem = photo
                .photo
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy();
            let kept: Vec<bool> = photo
                .windows
                .iter()
                .map(|w| kept_when_rare(&mask, &stem, w, keep))
                .collect();
            if let Some(d) = looks.get_mut(i) {
                d.retain(|w| kept[w]);
            }
            let mut kept = kept.into_iter();
            photo.windows.retain(|_| kept.next().unwrap_or(false));
        }
    }
    let mut labels = labels::read(&o.scan, &record)?;
    let mut masks: HashMap<usize, GrayImage> = HashMap::new();
    let mut looked = 0;
    // The typical order comes a round at a time; the others whole.
    loop {
        let order: Vec<WindowKey> = match how {
            Some(how) => labels::suggest(&record, &labels, how, &looks),
            None => {
                // Every unlabelled window once, in an order drawn from the seed.
                let mut all = labels::suggest(&record, &labels, Suggest::TopScored, &[]);
                all.sort_by_key(|w| (w.photo, w.y, w.x, w.size));
                all.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(o.seed));
                all
            }
        };
        let before = looked;
        for w in order {
            if labels.counts().labelled() >= o.budget {
                break;
            }
            let mask = match masks.get(&w.photo) {
                Some(mask) => mask,
                None => {
                    let mask = mask_of(&o.masks, &record.photos[w.photo].photo)?;
                    masks.entry(w.photo).or_insert(mask)
                }
            };
            labels.set(w, answer(mask, w, o.min_crack_share));
            looked += 1;
        }
        let more = how == Some(Suggest::Typical) && looked > before;
        if !more || labels.counts().labelled() >= o.budget {
            break;
        }
    }
    labels::write(&o.scan, &record, &labels)?;
    let c = labels.counts();
    println!(
        "{}: looked at {looked} more windows; {} labels ({} crack, {} no crack), {} skipped",
        labels::path(&o.scan).display(),
        c.labelled(),
        c.crack,
        c.no_crack,
        c.skip
    );
    Ok(())
}
