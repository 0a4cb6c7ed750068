//! Window descriptors: a short vector per scanned window saying what the network sees in it, so
//! that windows can be suggested for labelling by what they look like
//! ([`super::labels::Suggest::Typical`]) and not only by the model's score.
//!
//! A window's descriptor is a fixed random projection of its relu_conv10 average (the 1000
//! numbers the head reads) to [`DIM`] numbers. The projection is linear, so, like the head, it
//! commutes with the average over the window's cells: the shared pass projects each cell once
//! and every window's descriptor is the average of its cells', at no extra pass over the photo.
//! A random ±1 projection keeps distances between the 1000-number averages within a few per cent
//! (Johnson-Lindenstrauss; Achlioptas's ±1 entries), which is all clustering needs, and 64
//! numbers a window keep the file small: 256 bytes a window, about 0.2 MB for a 12-megapixel
//! photo at stride 112, against megabytes for its overlay.
//!
//! That is the shared pass's view of a window: its cells see the photo around it too (a
//! relu_conv10 cell reads 207 pixels), where a model trained on labelled windows sees each window
//! alone. [`Source::Alone`] describes each window as training will see it, by a second pass that
//! runs every window cut out by itself (about (window / stride)² times the shared pass's
//! pixels); the typical order was measured better with it (README, "Windows described alone").
//!
//! The file, one per photo beside its pictures (named by [`PhotoRecord::descriptors`]), is
//! safetensors holding one float32 tensor `descriptors` of shape `[windows, DIM]`, its rows in
//! the order of the photo's windows in `scan.json`, so numpy or PyTorch read it as it is.
//!
//! [`PhotoRecord::descriptors`]: super::output::PhotoRecord::descriptors

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use rand::{RngCore, SeedableRng};

/// Numbers per window.
pub const DIM: usize = 64;
/// The tensor's name inside the file.
const TENSOR: &str = "descriptors";
/// Seed of the projection: every scan, by any build, projects alike, so descriptors of scans
/// made at different times can be compared.
const PROJECTION_SEED: u64 = 0x5EED_0FC0_FFEE;

/// What a window's descriptor is computed from (`scan --descriptors`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The shared pass's cells under the window, the photo around it seen too: no extra work.
    #[default]
    Shared,
    /// The window cut out and run alone, as a model trained on it sees it: a second pass.
    Alone,
}

impl Source {
    pub fn is_shared(&self) -> bool {
        *self == Source::Shared
    }
}

/// The name `--descriptors` takes, so messages spell it as the command line does.
impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum;
        let value = self.to_possible_value().expect("no variant is skipped");
        f.write_str(value.get_name())
    }
}

/// The projection from `channels` numbers to [`DIM`]: `[DIM, channels]` row-major, each entry
/// ±1/√DIM (so lengths are kept on average).
pub fn projection(channels: usize) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(PROJECTION_SEED);
    let scale = 1.0 / (DIM as f32).sqrt();
    let mut out = Vec::with_capacity(DIM * channels);
    while out.len() < DIM * channels {
        let bits = rng.next_u64();
        let take = (DIM * channels - out.len()).min(64);
        out.extend((0..take).map(|b| if bits >> b & 1 == 1 { scale } else { -scale }));
    }
    out
}

/// The descriptors of one photo's windows: `values[w * DIM..(w + 1) * DIM]` is window `w`'s.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Descriptors {
    pub values: Vec<f32>,
}

impl Descriptors {
    pub fn windows(&self) -> usize {
        self.values.len() / DIM
    }

    pub fn row(&self, window: usize) -> &[f32] {
        &self.values[window * DIM..(window + 1) * DIM]
    }

    /// The rows of the windows `keep` says yes to, in order (`keep` is called with each
    /// window's index).
    pub fn retain(&mut self, mut keep: impl FnMut(usize) -> bool) {
        let kept: Vec<f32> = (0..self.windows())
            .filter(|&w| keep(w))
            .flat_map(|w| self.row(w).iter().copied())
            .collect();
        self.values = kept;
    }
}

/// Writes `descriptors` to `path` atomically.
pub fn write(path: &Path, descriptors: &Descriptors) -> Result<()> {
    let bytes: Vec<u8> = descriptors
        .values
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let view = safetensors::tensor::TensorView::new(
        safetensors::Dtype::F32,
        vec![descriptors.windows(), DIM],
        &bytes,
    )?;
    let file = safetensors::serialize([(TENSOR, view)], None)?;
    crate::core::fsutil::write_atomic(path, &file)
}

/// Reads a descriptors file, which must hold `windows` rows of [`DIM`] float32 numbers.
pub fn read(path: &Path, windows: usize) -> Result<Descriptors> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let what = || format!("{}: not a window descriptors file", path.display());
    let file = safetensors::SafeTensors::deserialize(&bytes).with_context(what)?;
    let tensor = file.tensor(TENSOR).with_context(what)?;
    if tensor.dtype() != safetensors::Dtype::F32 || tensor.shape() != [windows, DIM] {
        bail!(
            "{}: descriptors of shape {:?} ({:?}), expected [{windows}, {DIM}] float32 (one row \
             a window of scan.json)",
            path.display(),
            tensor.shape(),
            tensor.dtype()
        );
    }
    let values: Vec<f32> = tensor
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    ensure!(
        values.iter().all(|v| v.is_finite()),
        "{}: descriptors that are not finite numbers",
        path.display()
    );
    Ok(Descriptors { values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_projection_is_fixed_balanced_and_keeps_lengths() {
        let p = projection(1000);
        assert_eq!(p, projection(1000), "the same every time");
        assert_eq!(p.len(), DIM * 1000);
        let positive = p.iter().filter(|&&v| v > 0.0).count();
        assert!(
            (31_000..33_000).contains(&positive),
            "{positive} of 64000 positive"
        );
        // A vector's length after projection, on average over directions, is its own.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut ratios = Vec::new();
        for _ in 0..50 {
            let x: Vec<f32> = (0..1000).map(|_| (rng.next_u32() % 1000) as f32).collect();
            let y: Vec<f32> = p
                .chunks_exact(1000)
                .map(|row| row.iter().zip(&x).map(|(a, b)| a * b).sum())
                .collect();
            let len = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
            ratios.push(len(&y) / len(&x));
        }
        let mean = ratios.iter().sum::<f32>() / ratios.len() as f32;
        assert!((0.85..1.15).contains(&mean), "mean length ratio {mean}");
    }

    #[test]
    fn files_round_trip_and_wrong_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.descriptors.safetensors");
        let d = Descriptors {
            values: (0..3 * DIM).map(|i| i as f32 * 0.5 - 7.0).collect(),
        };
        write(&path, &d).unwrap();
        assert_eq!(read(&path, 3).unwrap(), d);
        let wrong = read(&path, 4).unwrap_err().to_string();
        assert!(
            wrong.contains("a.descriptors.safetensors") && wrong.contains("[4, 64]"),
            "{wrong}"
        );
        std::fs::write(&path, b"not safetensors").unwrap();
        let garbage = format!("{:#}", read(&path, 3).unwrap_err());
        assert!(
            garbage.contains("not a window descriptors file"),
            "{garbage}"
        );
    }

    #[test]
    fn retain_keeps_the_chosen_rows_in_order() {
        let mut d = Descriptors {
            values: (0..4 * DIM).map(|i| (i / DIM) as f32).collect(),
        };
        d.retain(|w| w % 2 == 1);
        assert_eq!(d.windows(), 2);
        assert_eq!((d.row(0)[0], d.row(1)[DIM - 1]), (1.0, 3.0));
    }
}
