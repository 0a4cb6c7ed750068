//! Which pooled features tell unfamiliar images apart (the measurement behind
//! `detector::familiarity`'s choice of layers; README, "Unfamiliar input").
//!
//! ```sh
//! cargo run --release --example familiarity_layers -- MODEL BANK_LIST NAME=LIST_OR_DIR...
//! ```
//!
//! BANK_LIST: a text file of the model's training images (one path a line; at most 1000 are
//! used, evenly spaced). Each NAME=... is a test set: a text file of paths or a folder (searched
//! for images); `stripes` and `noise` are generated pictures (50 each). Every image is resized to
//! the model's input size as `predict` resizes it. For each candidate feature (a layer's channel
//! means, or several layers' means side by side) two measures are fitted on the bank: the
//! summary as training fits it (standardised features, `Familiarity`), and the cosine distance
//! of the means scaled to unit length (the first design, which measured relu_conv10 so). Printed:
//! the share of each test set over each threshold (the 99th percentile of the bank's own
//! nearest-neighbour distances).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use image::RgbImage;

use crackscope::data::augment::write_chw_normalized;
use crackscope::data::decode::{load_rgb, resize_exact};
use crackscope::detector::familiarity::{bank_indices, Familiarity};
use crackscope::model::SqueezeNet;

/// The layers whose channel means are measured, in network order.
const LAYERS: [&str; 4] = [
    "fire3-concat",
    "fire5-concat",
    "fire9-concat",
    "relu_conv10",
];

/// A candidate: the layers (indices into `LAYERS`) whose means are put side by side.
const CANDIDATES: [(&str, &[usize]); 7] = [
    ("relu_conv10", &[3]),
    ("fire9", &[2]),
    ("fire5", &[1]),
    ("fire3", &[0]),
    ("fire5+fire9", &[1, 2]),
    ("fire3+fire5+fire9", &[0, 1, 2]),
    ("fire9+relu_conv10", &[2, 3]),
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 3,
        "usage: MODEL BANK_LIST NAME=LIST_OR_DIR..."
    );
    let device = Device::Cpu;
    let loaded = crackscope::model::load_model(Path::new(&args[0]), &device)?;
    let size = loaded.meta.input_size.unwrap_or(227);
    let bank_paths = list(&args[1])?;
    let chosen: Vec<PathBuf> = bank_indices(bank_paths.len())
        .into_iter()
        .map(|i| bank_paths[i].clone())
        .collect();
    let bank = means(&loaded.model, &images(&chosen, size)?, &device)?;
    let standardised: Vec<Familiarity> = CANDIDATES
        .iter()
        .map(|(name, layers)| {
            let rows: Vec<f32> = bank.iter().flat_map(|m| side_by_side(m, layers)).collect();
            Familiarity::fit(&rows, rows.len() / bank.len(), name, chosen.len())
        })
        .collect::<Result<_>>()?;
    let cosine: Vec<Cosine> = CANDIDATES
        .iter()
        .map(|(_, layers)| Cosine::fit(bank.iter().map(|m| side_by_side(m, layers)).collect()))
        .collect();
    print!("{:<22}", "set (images)");
    for measure in ["std", "cos"] {
        for (name, _) in CANDIDATES {
            print!("{:>22}", format!("{measure} {name}"));
        }
    }
    println!();
    for set in &args[2..] {
        let (name, source) = set.split_once('=').context("NAME=LIST_OR_DIR")?;
        let pictures = match source {
            "stripes" => (0..50).map(|i| stripes(i, size)).collect(),
            "noise" => (0..50).map(|i| noise(i, size)).collect(),
            _ => images(&list(source)?, size)?,
        };
        let test = means(&loaded.model, &pictures, &device)?;
        let share = |flagged: usize| format!("{:.1} %", 100.0 * flagged as f64 / test.len() as f64);
        print!("{:<22}", format!("{name} ({})", test.len()));
        for (summary, (_, layers)) in standardised.iter().zip(CANDIDATES) {
            let flagged = test
                .iter()
                .filter(|m| summary.check(&side_by_side(m, layers)).unwrap().unfamiliar)
                .count();
            print!("{:>22}", share(flagged));
        }
        for (measure, (_, layers)) in cosine.iter().zip(CANDIDATES) {
            let flagged = test
                .iter()
                .filter(|m| measure.distance(&side_by_side(m, layers), None) > measure.threshold)
                .count();
            print!("{:>22}", share(flagged));
        }
        println!();
    }
    Ok(())
}

/// Paths from a list file, or the images under a folder.
fn list(source: &str) -> Result<Vec<PathBuf>> {
    let path = Path::new(source);
    if path.is_dir() {
        let mut found: Vec<PathBuf> = walk(path)?
            .into_iter()
            .filter(|p| {
                let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
                matches!(ext.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")
            })
            .collect();
        found.sort();
        return Ok(found);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {source}"))?;
    Ok(text
        .lines()
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .collect())
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

fn images(paths: &[PathBuf], size: u32) -> Result<Vec<RgbImage>> {
    paths
        .iter()
        .map(|p| Ok(resize_exact(&load_rgb(p)?, size)))
        .collect()
}

/// Each image's channel means at every layer of `LAYERS`.
fn means(model: &SqueezeNet, images: &[RgbImage], device: &Device) -> Result<Vec<Vec<Vec<f32>>>> {
    let mut out = Vec::new();
    for chunk in images.chunks(32) {
        let (w, h) = chunk[0].dimensions();
        let plane = 3 * (w * h) as usize;
        let mut data = vec![0f32; chunk.len() * plane];
        for (image, dst) in chunk.iter().zip(data.chunks_exact_mut(plane)) {
            write_chw_normalized(image, dst);
        }
        let x = Tensor::from_vec(data, (chunk.len(), 3, h as usize, w as usize), device)?;
        let mut maps = vec![model.forward_to(&x, LAYERS[0])?];
        for pair in LAYERS.windows(2) {
            let next = model.forward_between(maps.last().unwrap(), pair[0], pair[1])?;
            maps.push(next);
        }
        let pooled: Vec<Vec<f32>> = maps
            .iter()
            .map(|m| {
                m.mean((2, 3))?
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1()
            })
            .collect::<candle_core::Result<_>>()?;
        for i in 0..chunk.len() {
            out.push(
                LAYERS
                    .iter()
                    .zip(&pooled)
                    .map(|(_, all)| {
                        let dim = all.len() / chunk.len();
                        all[i * dim..(i + 1) * dim].to_vec()
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// The chosen layers' means side by side.
fn side_by_side(means: &[Vec<f32>], layers: &[usize]) -> Vec<f32> {
    layers
        .iter()
        .flat_map(|&l| means[l].iter().copied())
        .collect()
}

/// Cosine distance of means scaled to unit length (each layer's part scaled alone), nearest
/// neighbour, threshold the 99th percentile of the bank's own.
struct Cosine {
    rows: Vec<Vec<f32>>,
    threshold: f32,
}

impl Cosine {
    fn fit(rows: Vec<Vec<f32>>) -> Cosine {
        let mut c = Cosine {
            rows: rows.iter().map(|r| unit(r)).collect(),
            threshold: 0.0,
        };
        let mut own: Vec<f32> = (0..rows.len())
            .map(|i| c.distance(&rows[i], Some(i)))
            .collect();
        own.sort_by(f32::total_cmp);
        c.threshold = own[((0.99 * own.len() as f64).ceil() as usize).clamp(1, own.len()) - 1];
        c
    }

    fn distance(&self, row: &[f32], skip: Option<usize>) -> f32 {
        let u = unit(row);
        let best = self
            .rows
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .map(|(_, r)| r.iter().zip(&u).map(|(a, b)| a * b).sum::<f32>())
            .fold(f32::NEG_INFINITY, f32::max);
        (2.0 - 2.0 * best).max(0.0).sqrt()
    }
}

fn unit(row: &[f32]) -> Vec<f32> {
    let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    row.iter().map(|v| v / norm).collect()
}

fn stripes(i: u32, size: u32) -> RgbImage {
    let width = 4 + i % 12;
    RgbImage::from_fn(size, size, |x, y| {
        match ((x + i) / width + y / (2 * width)) % 3 {
            0 => image::Rgb([230, 20, 20]),
            1 => image::Rgb([20, 200, 40]),
            _ => image::Rgb([30, 40, 240]),
        }
    })
}

fn noise(i: u32, size: u32) -> RgbImage {
    let mut state = 0x9E37_79B9u32.wrapping_mul(i + 1);
    RgbImage::from_fn(size, size, |_, _| {
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        };
        image::Rgb([next(), next(), next()])
    })
}
