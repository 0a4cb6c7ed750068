//! The one-class ablation behind the defaults (README, one-class section; rerun it with
//! `scripts/oneclass_ablation.sh`).
//!
//! ```sh
//! cargo run --release --example oneclass_ablation -- --data DIR --weights squeezenet1_1.pth \
//!     --out DIR [--split 0.25,0.2,0.3] [--split-seed 0] [--axis NAME]... [--max-eval N] [--scores]
//!     [--held-out-only]
//! ```
//!
//! The data (folder-per-class, normal class `Negative`) is split as `train --one-class` splits it,
//! and the manifest written to `OUT/split.json`: the normal training images are fitted on, the
//! validation split is where choices are made ("choice") and the test split is held out
//! ("report"); the normal images the split leaves unused serve the row with more normal images
//! than the training split has. Every row is one change of the settings; rows that share their
//! feature settings share one pass of the network over the images. Per row: bank entries and
//! memory, fit time (the features of its normal images, measured per image, plus drawing the
//! candidates and choosing the bank), scoring images/s (features plus nearest-neighbour search,
//! per image), and AUROC and average precision on both splits. Written as `OUT/ablation.jsonl`
//! (one row a line, as each finishes) and `OUT/ablation.md`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use image::RgbImage;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crackscope::data::dataset::discover;
use crackscope::data::loader::{decode_all, Images};
use crackscope::data::split::{split_each_label, Fractions, Manifest};
use crackscope::detector::oneclass::bank::Bank;
use crackscope::detector::oneclass::features::Extractor;
use crackscope::detector::oneclass::model::{bank_of, bank_rows, Candidates};
use crackscope::detector::oneclass::ranking::{auroc, average_precision};
use crackscope::detector::oneclass::{Edge, PatchValues, Sampling, Settings};

/// One change of the settings (and of the number of normal images fitted on).
#[derive(Clone)]
struct Row {
    axis: &'static str,
    label: String,
    settings: Settings,
    normal_images: usize,
}

#[derive(Serialize)]
struct Measured {
    axis: String,
    label: String,
    features: String,
    normal_images: usize,
    candidates: usize,
    bank_entries: usize,
    values: usize,
    bank_mib: f64,
    fit_s: f64,
    score_images_per_s: f64,
    choice_auroc: f64,
    choice_ap: f64,
    report_auroc: f64,
    report_ap: f64,
    choice_images: usize,
    report_images: usize,
}

struct Args {
    data: PathBuf,
    weights: PathBuf,
    out: PathBuf,
    split: [f64; 3],
    split_seed: u64,
    axes: Vec<String>,
    /// Row labels left out (rows already measured).
    skip: Vec<String>,
    max_eval: Option<usize>,
    /// Write every row's per-image scores (and a random bank's patch indices) under OUT/scores.
    scores: bool,
    /// Score the held-out test split only (the choice split's columns are left empty): for
    /// confirming on another split what was chosen on the first, at 60% of the scoring.
    held_out_only: bool,
    base: Settings,
}

fn parse_args() -> Result<Args> {
    let mut args = std::env::args().skip(1);
    let mut data = None;
    let mut weights = None;
    let mut out = None;
    let mut split = [0.25, 0.2, 0.3];
    let mut split_seed = 0;
    let mut axes = Vec::new();
    let mut skip = Vec::new();
    let mut max_eval = None;
    let mut scores = false;
    let mut held_out_only = false;
    let mut base = Settings::default();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => data = Some(PathBuf::from(value()?)),
            "--weights" => weights = Some(PathBuf::from(value()?)),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--split" => {
                let text = value()?;
                let parts: Vec<f64> = text
                    .split(',')
                    .map(|p| p.trim().parse())
                    .collect::<Result<_, _>>()
                    .with_context(|| format!("--split {text}: three fractions"))?;
                split = parts
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("--split {text}: three fractions"))?;
            }
            "--split-seed" => split_seed = value()?.parse()?,
            "--axis" => axes.push(value()?),
            "--skip" => skip.push(value()?),
            "--max-eval" => max_eval = Some(value()?.parse()?),
            "--scores" => scores = true,
            "--held-out-only" => held_out_only = true,
            // The base settings every row changes one thing of (default: the built-in defaults).
            "--base-values" => base.values = value()?.parse().map_err(anyhow::Error::msg)?,
            "--base-bank" => base.max_bank = value()?.parse()?,
            "--base-sampling" => {
                base.sampling = match value()?.as_str() {
                    "coreset" => Sampling::Coreset,
                    "random" => Sampling::Random,
                    other => bail!("--base-sampling {other}: coreset or random"),
                }
            }
            "--base-candidates" => base.max_candidates = value()?.parse()?,
            "--base-neighbourhood" => base.neighbourhood = value()?.parse()?,
            "--base-layers" => base.layers = value()?.split(',').map(String::from).collect(),
            "--base-edge" => base.edge = value()?.parse().map_err(anyhow::Error::msg)?,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(Args {
        data: data.context("--data DIR is required")?,
        weights: weights.context("--weights FILE is required")?,
        out: out.context("--out DIR is required")?,
        split,
        split_seed,
        axes,
        skip,
        max_eval,
        scores,
        held_out_only,
        base,
    })
}

/// The rows: the base settings, then one change at a time along each axis.
fn rows(base: &Settings, fit_images: usize) -> Vec<Row> {
    let row = |axis, label: String, f: &dyn Fn(&mut Settings)| {
        let mut settings = base.clone();
        f(&mut settings);
        Row {
            axis,
            label,
            settings,
            normal_images: fit_images,
        }
    };
    let mut rows = vec![row("base", "base".into(), &|_| {})];
    // PatchCore-lite as scripts/patchcore_lite.py computes it (fire5, every channel, 3x3 with
    // zeros counted at the border, a random bank of 20,000 of all patches), then each of its
    // differences from the defaults of the time alone: the border, the bank, the layers.
    let reference = |s: &mut Settings| {
        s.layers = vec!["fire5-concat".into()];
        s.values = PatchValues::All;
        s.neighbourhood = 3;
        s.edge = Edge::Zeros;
        s.sampling = Sampling::Random;
        s.max_bank = 20_000;
        s.coreset_ratio = 1.0;
        s.max_candidates = usize::MAX;
    };
    rows.push(row(
        "reference",
        "reference: fire5, zeros, random 20000".into(),
        &reference,
    ));
    rows.push(row("reference", "reference, edges inside".into(), &|s| {
        reference(s);
        s.edge = Edge::Inside;
    }));
    rows.push(row(
        "reference",
        "reference, coreset 1024 of 40000".into(),
        &|s| {
            reference(s);
            s.sampling = Sampling::Coreset;
            s.max_bank = 1024;
            s.max_candidates = 40_000;
        },
    ));
    rows.push(row("reference", "reference, fire3+fire5".into(), &|s| {
        reference(s);
        s.layers = vec!["fire3-concat".into(), "fire5-concat".into()];
    }));
    // PatchCore-lite's features with smaller banks: what the search costs against what it ranks.
    for (sampling, bank, candidates) in [
        (Sampling::Coreset, 2048, 40_000),
        (Sampling::Coreset, 4096, 40_000),
        (Sampling::Coreset, 4096, 160_000),
        (Sampling::Random, 4096, usize::MAX),
        (Sampling::Random, 8192, usize::MAX),
    ] {
        let name = format!("{sampling:?}").to_lowercase();
        let label = match candidates {
            usize::MAX => format!("fire5, zeros, {name} {bank}"),
            _ => format!("fire5, zeros, {name} {bank} of {candidates}"),
        };
        rows.push(row("fire5", label, &|s| {
            reference(s);
            s.sampling = sampling;
            s.max_bank = bank;
            s.max_candidates = candidates;
        }));
    }
    // The border alone on the defaults of the time (fire3 + fire5, every channel, a coreset of
    // at most 1024 of 40,000 candidates), and with a larger coreset.
    for (edge, bank) in [
        (Edge::Inside, 1024),
        (Edge::Zeros, 1024),
        (Edge::Zeros, 4096),
    ] {
        let name = format!("{edge:?}").to_lowercase();
        let label = format!("fire3+fire5, {name}, coreset {bank} of 40000");
        rows.push(row("edge", label, &|s| {
            s.layers = vec!["fire3-concat".into(), "fire5-concat".into()];
            s.values = PatchValues::All;
            s.neighbourhood = 3;
            s.edge = edge;
            s.sampling = Sampling::Coreset;
            s.max_bank = bank;
            s.coreset_ratio = 1.0;
            s.max_candidates = 40_000;
        }));
    }
    // Random banks from all patches, as PatchCore-lite draws its bank (a greedy coreset's
    // selection grows with bank x candidates: see the sampling rows for what it buys).
    for bank in [1024, 2048, 4096, 8192, 16384, 32768] {
        rows.push(row("bank", format!("bank {bank} (random)"), &|s| {
            s.max_bank = bank;
            s.coreset_ratio = 1.0;
            s.max_candidates = usize::MAX;
            s.sampling = Sampling::Random;
        }));
    }
    rows.push(row("bank-all", "bank: all patches".into(), &|s| {
        s.max_bank = usize::MAX;
        s.coreset_ratio = 1.0;
        s.max_candidates = usize::MAX;
        s.sampling = Sampling::Random;
    }));
    for candidates in [10_000, 40_000, 160_000] {
        rows.push(row(
            "candidates",
            format!("candidates {candidates}"),
            &|s| {
                s.max_candidates = candidates;
            },
        ));
    }
    for values in [
        PatchValues::Means(32),
        PatchValues::Means(64),
        PatchValues::Means(128),
        PatchValues::All,
        PatchValues::Projection(64),
        PatchValues::Projection(128),
    ] {
        rows.push(row("values", format!("values {values}"), &|s| {
            s.values = values
        }));
    }
    for layers in [
        &["fire5-concat"][..],
        &["fire2-concat", "fire3-concat"],
        &["fire3-concat", "fire5-concat"],
        &["fire4-concat", "fire5-concat"],
        &["fire5-concat", "fire7-concat"],
    ] {
        rows.push(row(
            "layers",
            format!("layers {}", layers.join("+")),
            &|s| {
                s.layers = layers.iter().map(|l| l.to_string()).collect();
            },
        ));
    }
    for neighbourhood in [1, 3, 5] {
        rows.push(row(
            "neighbourhood",
            format!("neighbourhood {neighbourhood}x{neighbourhood}"),
            &|s| s.neighbourhood = neighbourhood,
        ));
    }
    for bank in [1024, 4096] {
        for sampling in [Sampling::Coreset, Sampling::Random] {
            let name = format!("{sampling:?}").to_lowercase();
            rows.push(row("sampling", format!("{name} bank {bank}"), &|s| {
                s.sampling = sampling;
                s.max_bank = bank;
                s.coreset_ratio = 1.0;
            }));
        }
    }
    // Coreset banks of a fixed size (the ratio's cap off), chosen from the base's candidates.
    for bank in [1024, 2048, 4096] {
        rows.push(row("coreset", format!("coreset bank {bank}"), &|s| {
            s.sampling = Sampling::Coreset;
            s.max_bank = bank;
            s.coreset_ratio = 1.0;
        }));
    }
    for images in [62, 125, 250, 500, 1000] {
        let mut r = row("normal-images", format!("{images} normal images"), &|_| {});
        r.normal_images = images;
        rows.push(r);
    }
    // Several changes at once: every channel of fire5 alone (PatchCore-lite's features) or of
    // fire3 + fire5, with larger banks.
    for layers in [&["fire5-concat"][..], &["fire3-concat", "fire5-concat"]] {
        for (sampling, bank) in [
            (Sampling::Coreset, 4096),
            (Sampling::Coreset, 8192),
            (Sampling::Random, 4096),
            (Sampling::Random, 8192),
            (Sampling::Random, 16384),
        ] {
            let name = format!("{sampling:?}").to_lowercase();
            let label = format!("{} all, {name} bank {bank}", layers.join("+"));
            rows.push(row("combined", label, &|s| {
                s.layers = layers.iter().map(|l| l.to_string()).collect();
                s.values = PatchValues::All;
                s.sampling = sampling;
                s.max_bank = bank;
                s.coreset_ratio = 1.0;
                if sampling == Sampling::Random {
                    s.max_candidates = usize::MAX;
                }
            }));
        }
    }
    rows
}

/// What a row's features depend on: rows equal in it share the network's pass.
fn feature_key(s: &Settings) -> String {
    format!(
        "{} {} n{} {:?}",
        s.layers.join("+"),
        s.values,
        s.neighbourhood,
        s.edge
    )
}

fn main() -> Result<()> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.out)?;
    let dataset = discover(&args.data)?;
    let normal = dataset
        .classes
        .iter()
        .position(|c| c == "Negative")
        .context("the data needs a Negative class")?;
    let [train, val, test] = args.split;
    let fractions = Fractions { train, val, test };
    let split = split_each_label(&dataset, &fractions, args.split_seed)?;
    let manifest = Manifest::from_split(&dataset, &fractions, args.split_seed, &split);
    manifest.save(&args.out.join("split.json"))?;

    // Normal images: the training split's, then those the split leaves unused (in a seeded order).
    let size = args.base.input_size;
    let in_split: std::collections::HashSet<usize> = split
        .train
        .iter()
        .chain(&split.val)
        .chain(&split.test)
        .copied()
        .collect();
    let mut rest: Vec<(PathBuf, usize)> = (0..dataset.items.len())
        .filter(|i| !in_split.contains(i) && dataset.items[*i].label == normal)
        .map(|i| (dataset.items[i].path.clone(), normal))
        .collect();
    rest.shuffle(&mut ChaCha8Rng::seed_from_u64(args.split_seed));
    let train_normal: Vec<_> = manifest
        .labelled(&manifest.train)
        .into_iter()
        .filter(|(_, l)| *l == normal)
        .collect();
    let train_count = train_normal.len();
    let fit_paths: Vec<_> = train_normal.into_iter().chain(rest).collect();

    let mut all_rows = rows(&args.base, train_count);
    if !args.axes.is_empty() {
        all_rows.retain(|r| args.axes.iter().any(|a| a == r.axis));
    }
    all_rows.retain(|r| !args.skip.contains(&r.label));
    let most_images = all_rows.iter().map(|r| r.normal_images).max().unwrap_or(0);
    let fit_set = decode_all(&fit_paths[..most_images.min(fit_paths.len())], size);
    let fit_images = in_memory(&fit_set.images)?;
    let eval_split = |entries, name: &str| -> Result<EvalSet> {
        let mut labelled = manifest.labelled(entries);
        if let Some(max) = args.max_eval {
            // Balanced: the first max/2 of each kind, in a seeded order.
            labelled.shuffle(&mut ChaCha8Rng::seed_from_u64(args.split_seed + 1));
            let (mut normals, mut others) = (0, 0);
            labelled.retain(|(_, l)| {
                let count = if *l == normal {
                    &mut normals
                } else {
                    &mut others
                };
                *count += 1;
                *count <= max / 2
            });
        }
        let set = decode_all(&labelled, size);
        if !set.skipped.is_empty() {
            bail!(
                "{} unreadable images in the {name} split",
                set.skipped.len()
            );
        }
        let anomalous = set.labels.iter().map(|&l| l != normal).collect();
        Ok(EvalSet {
            images: in_memory(&set.images)?.to_vec(),
            anomalous,
            paths: set.paths,
        })
    };
    let choice = if args.held_out_only {
        EvalSet {
            images: Vec::new(),
            anomalous: Vec::new(),
            paths: Vec::new(),
        }
    } else {
        eval_split(&manifest.val, "validation")?
    };
    let report = eval_split(&manifest.test, "test")?;
    eprintln!(
        "{} normal images to fit (training split {train_count}), choice {} images, report {} images; {} rows; {} threads",
        fit_images.len(),
        choice.images.len(),
        report.images.len(),
        all_rows.len(),
        rayon::current_num_threads()
    );

    let mut groups: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for row in all_rows {
        groups
            .entry(feature_key(&row.settings))
            .or_default()
            .push(row);
    }
    let mut jsonl = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(args.out.join("ablation.jsonl"))?;
    let mut measured = Vec::new();
    for (key, group) in groups {
        eprintln!("features {key}: {} rows", group.len());
        let extractor = Extractor::imagenet(&args.weights, group[0].settings.clone())?;
        let need = group.iter().map(|r| r.normal_images).max().unwrap_or(0);
        let started = Instant::now();
        let fit_patches = extractor.patches(&fit_images[..need.min(fit_images.len())])?;
        let feature_s_per_image = started.elapsed().as_secs_f64() / fit_patches.len() as f64;
        let mut banks = Vec::new();
        for row in &group {
            let n = row.normal_images.min(fit_patches.len());
            let started = Instant::now();
            let mut candidates = Candidates::new(row.settings.dim());
            for (i, patches) in fit_patches[..n].iter().enumerate() {
                candidates.draw(&row.settings, i, n, patches);
            }
            let chosen = bank_rows(&row.settings, &candidates, &mut |_| {});
            let bank = bank_of(&candidates, &chosen)?;
            let fit_s = started.elapsed().as_secs_f64() + feature_s_per_image * n as f64;
            eprintln!(
                "  {}: bank {} x {} in {fit_s:.1} s",
                row.label,
                bank.len(),
                bank.dim()
            );
            if args.scores && candidates.len() == candidates.patches_total() {
                // Every patch drawn, in order: the indices are image * patches + patch, as
                // scripts/patchcore_lite.py --bank-indices reads them.
                let dir = args.out.join("scores");
                std::fs::create_dir_all(&dir)?;
                let file = dir.join(format!("{}.bank.json", slug(&row.label)));
                std::fs::write(file, serde_json::to_string(&chosen)?)?;
            }
            banks.push((bank, fit_s, candidates.len(), n));
        }
        drop(fit_patches);
        let bank_refs: Vec<&Bank> = banks.iter().map(|(b, ..)| b).collect();
        let (choice_scores, choice_s) = score_all(&extractor, &bank_refs, &choice.images)?;
        let (report_scores, report_s) = score_all(&extractor, &bank_refs, &report.images)?;
        let images = (choice.images.len() + report.images.len()) as f64;
        for (i, row) in group.iter().enumerate() {
            let (bank, fit_s, candidates, n) = &banks[i];
            let seconds =
                choice_s.features + report_s.features + choice_s.search[i] + report_s.search[i];
            let m = Measured {
                axis: row.axis.into(),
                label: row.label.clone(),
                features: key.clone(),
                normal_images: *n,
                candidates: *candidates,
                bank_entries: bank.len(),
                values: bank.dim(),
                bank_mib: (bank.len() * bank.dim() * 4) as f64 / (1 << 20) as f64,
                fit_s: *fit_s,
                score_images_per_s: images / seconds,
                choice_auroc: auroc(&choice_scores[i], &choice.anomalous).unwrap_or(f64::NAN),
                choice_ap: average_precision(&choice_scores[i], &choice.anomalous)
                    .unwrap_or(f64::NAN),
                report_auroc: auroc(&report_scores[i], &report.anomalous).unwrap_or(f64::NAN),
                report_ap: average_precision(&report_scores[i], &report.anomalous)
                    .unwrap_or(f64::NAN),
                choice_images: choice.images.len(),
                report_images: report.images.len(),
            };
            if args.scores {
                let mut csv = String::from("split,path,anomalous,score\n");
                for (name, set, scores) in [
                    ("val", &choice, &choice_scores[i]),
                    ("test", &report, &report_scores[i]),
                ] {
                    for ((path, a), s) in set.paths.iter().zip(&set.anomalous).zip(scores) {
                        csv.push_str(&format!("{name},{},{},{s}\n", path.display(), u8::from(*a)));
                    }
                }
                let dir = args.out.join("scores");
                std::fs::create_dir_all(&dir)?;
                std::fs::write(dir.join(format!("{}.csv", slug(&row.label))), csv)?;
            }
            eprintln!(
                "  {}: choice AUROC {:.4} AP {:.4}, report AUROC {:.4} AP {:.4}, {:.1} images/s",
                m.label,
                m.choice_auroc,
                m.choice_ap,
                m.report_auroc,
                m.report_ap,
                m.score_images_per_s
            );
            writeln!(jsonl, "{}", serde_json::to_string(&m)?)?;
            measured.push(m);
        }
    }
    write_table(&args.out.join("ablation.md"), &measured)?;
    Ok(())
}

/// A split's decoded images, which of them are anomalies, and their files.
struct EvalSet {
    images: Vec<RgbImage>,
    anomalous: Vec<bool>,
    paths: Vec<PathBuf>,
}

/// A row's label as a file name.
fn slug(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn in_memory(images: &Images) -> Result<&[RgbImage]> {
    match images {
        Images::InMemory(images) => Ok(images),
        Images::Streamed(_) => bail!("the ablation keeps its images in memory"),
    }
}

/// Seconds spent on features (shared) and on each bank's search.
struct Timing {
    features: f64,
    search: Vec<f64>,
}

/// Every image's score against every bank, the network run once per image.
fn score_all(
    extractor: &Extractor,
    banks: &[&Bank],
    images: &[RgbImage],
) -> Result<(Vec<Vec<f32>>, Timing)> {
    let mut scores = vec![Vec::with_capacity(images.len()); banks.len()];
    let mut timing = Timing {
        features: 0.0,
        search: vec![0.0; banks.len()],
    };
    for chunk in images.chunks(32) {
        let started = Instant::now();
        let patches = extractor.patches(chunk)?;
        timing.features += started.elapsed().as_secs_f64();
        for (b, bank) in banks.iter().enumerate() {
            let started = Instant::now();
            let best: Vec<f32> = patches
                .par_iter()
                .map(|p| {
                    bank.nearest_squared(p)
                        .into_iter()
                        .fold(0f32, f32::max)
                        .sqrt()
                })
                .collect();
            timing.search[b] += started.elapsed().as_secs_f64();
            scores[b].extend(best);
        }
    }
    Ok((scores, timing))
}

fn write_table(path: &Path, rows: &[Measured]) -> Result<()> {
    let mut text = String::from(
        "| axis | setting | normal images | bank | values | bank MiB | fit s | score images/s | choice AUROC | choice AP | held-out AUROC | held-out AP |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for m in rows {
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
            m.axis,
            m.label,
            m.normal_images,
            m.bank_entries,
            m.values,
            m.bank_mib,
            m.fit_s,
            m.score_images_per_s,
            m.choice_auroc,
            m.choice_ap,
            m.report_auroc,
            m.report_ap
        ));
    }
    std::fs::write(path, text)?;
    Ok(())
}
