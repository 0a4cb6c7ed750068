//! The memory bank of normal patch features: greedy coreset subsampling that bounds its size, and
//! exact nearest-neighbour distances computed as blocked matrix products.
//!
//! The coreset is PatchCore's: start from a random patch, then repeatedly add the patch farthest
//! from everything chosen so far, so that the bank covers the whole normal feature space with few
//! entries. Distances during selection are taken on a seeded Gaussian random projection (much
//! cheaper, and by Johnson-Lindenstrauss close to the real ones). Scoring then uses exact squared
//! distances, `|q|^2 + |b|^2 - 2 q.b`, with the `q.b` for a block of queries against a block of
//! bank entries as one gemm call.

use anyhow::{bail, ensure, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Queries and bank entries per gemm call: a 128 x 512 block of products is 256 KiB, which
/// stays in cache while its minima are taken.
const QUERY_BLOCK: usize = 128;
const BANK_BLOCK: usize = 512;

/// Patch features of normal images, one row of `dim` values per entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Bank {
    dim: usize,
    entries: Vec<f32>,
    /// Squared norm of every entry.
    norms: Vec<f32>,
}

impl Bank {
    pub fn new(dim: usize, entries: Vec<f32>) -> Result<Bank> {
        ensure!(dim > 0, "bank entries need at least one dimension");
        ensure!(
            !entries.is_empty() && entries.len() % dim == 0,
            "a bank of {dim}-dimensional entries cannot hold {} values",
            entries.len()
        );
        if entries.iter().any(|v| !v.is_finite()) {
            bail!("the bank holds values that are not finite numbers");
        }
        let norms = entries.chunks(dim).map(squared_norm).collect();
        Ok(Bank {
            dim,
            entries,
            norms,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.norms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }

    /// The entries, row after row.
    pub fn entries(&self) -> &[f32] {
        &self.entries
    }

    /// The squared distance from each query (rows of `dim` values) to its nearest entry. Runs on
    /// the calling thread; callers parallelise over images.
    pub fn nearest_squared(&self, queries: &[f32]) -> Vec<f32> {
        assert_eq!(
            queries.len() % self.dim,
            0,
            "queries of the bank's dimension"
        );
        let count = queries.len() / self.dim;
        let mut best = vec![f32::INFINITY; count];
        let mut products = vec![0f32; QUERY_BLOCK * BANK_BLOCK];
        for q0 in (0..count).step_by(QUERY_BLOCK) {
            let qn = QUERY_BLOCK.min(count - q0);
            let q = &queries[q0 * self.dim..(q0 + qn) * self.dim];
            let q_norms: Vec<f32> = q.chunks(self.dim).map(squared_norm).collect();
            for b0 in (0..self.len()).step_by(BANK_BLOCK) {
                let bn = BANK_BLOCK.min(self.len() - b0);
                let b = &self.entries[b0 * self.dim..(b0 + bn) * self.dim];
                let out = &mut products[..qn * bn];
                dot_products(q, b, self.dim, out);
                for (r, row) in out.chunks(bn).enumerate() {
                    let nearest = row
                        .iter()
                        .zip(&self.norms[b0..b0 + bn])
                        .map(|(&dot, &norm)| norm - 2.0 * dot)
                        .fold(f32::INFINITY, f32::min);
                    let d = (q_norms[r] + nearest).max(0.0);
                    if d < best[q0 + r] {
                        best[q0 + r] = d;
                    }
                }
            }
        }
        best
    }
}

/// `out[i * bn + j] = q_i . b_j` for row-major `q` (qn x dim) and `b` (bn x dim).
fn dot_products(q: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
    let (qn, bn) = (q.len() / dim, b.len() / dim);
    assert_eq!(out.len(), qn * bn);
    // SAFETY: the strides describe `q` (qn x dim, row-major), `b` read as its transpose
    // (dim x bn) and `out` (qn x bn, row-major), all within the slices' lengths as asserted.
    unsafe {
        gemm::gemm(
            qn,
            bn,
            dim,
            out.as_mut_ptr(),
            1,
            bn as isize,
            false,
            q.as_ptr(),
            1,
            dim as isize,
            b.as_ptr(),
            dim as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

fn squared_norm(row: &[f32]) -> f32 {
    row.iter().map(|v| v * v).sum()
}

/// The bank size for `patches` candidate patches: `ratio` of them, at least one, at most `max`.
pub fn coreset_size(patches: usize, ratio: f64, max: usize) -> usize {
    ((patches as f64 * ratio).ceil() as usize)
        .clamp(1, max.max(1))
        .min(patches)
}

/// Indices of at most `target` rows of `features` (rows of `dim` values) chosen greedily, each the
/// farthest from those before it; fewer when the rest duplicate chosen rows. Distances are taken
/// on a random projection to `projection_dim` values (none when that is not smaller than `dim`).
/// The same `seed` and input always give the same choice.
#[cfg(test)]
pub fn greedy_coreset(
    features: &[f32],
    dim: usize,
    target: usize,
    projection_dim: usize,
    seed: u64,
) -> Vec<usize> {
    greedy_coreset_reporting(features, dim, target, projection_dim, seed, &mut |_, _| {})
}

/// [`greedy_coreset`], calling `progress(chosen, target)` after each row it chooses (the
/// selection is the slow part of a fit with a large bank, so displays show it advance).
pub fn greedy_coreset_reporting(
    features: &[f32],
    dim: usize,
    target: usize,
    projection_dim: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Vec<usize> {
    assert!(dim > 0 && features.len() % dim == 0, "rows of {dim} values");
    let count = features.len() / dim;
    if count == 0 || target == 0 {
        return Vec::new();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (points, pdim) = if projection_dim > 0 && projection_dim < dim {
        (
            project(features, dim, projection_dim, &mut rng),
            projection_dim,
        )
    } else {
        (features.to_vec(), dim)
    };
    let mut nearest = vec![f32::INFINITY; count];
    let mut chosen = vec![rng.random_range(0..count)];
    // Chunks of a fixed size, so that the reduction (and so the choice) is the same on any number
    // of threads.
    const CHUNK: usize = 4096;
    while chosen.len() < target.min(count) {
        let last = &points[chosen[chosen.len() - 1] * pdim..][..pdim];
        let (far_index, far_distance) = nearest
            .par_chunks_mut(CHUNK)
            .zip(points.par_chunks(CHUNK * pdim))
            .enumerate()
            .map(|(c, (near, rows))| {
                let mut best = (usize::MAX, -1.0f32);
                for (i, (n, row)) in near.iter_mut().zip(rows.chunks(pdim)).enumerate() {
                    let d: f32 = row.iter().zip(last).map(|(a, b)| (a - b) * (a - b)).sum();
                    if d < *n {
                        *n = d;
                    }
                    if *n > best.1 {
                        best = (c * CHUNK + i, *n);
                    }
                }
                best
            })
            .reduce(
                || (usize::MAX, -1.0),
                |a, b| {
                    if b.1 > a.1 || (b.1 == a.1 && b.0 < a.0) {
                        b
                    } else {
                        a
                    }
                },
            );
        if far_distance <= 0.0 {
            break; // everything left duplicates a chosen row
        }
        chosen.push(far_index);
        progress(chosen.len(), target.min(count));
    }
    chosen
}

/// `features` (count x dim) times a Gaussian matrix (dim x pdim) drawn from `rng`.
fn project(features: &[f32], dim: usize, pdim: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let matrix: Vec<f32> = (0..dim * pdim).map(|_| gaussian(rng)).collect();
    let count = features.len() / dim;
    let mut out = vec![0f32; count * pdim];
    out.par_chunks_mut(QUERY_BLOCK * pdim)
        .zip(features.par_chunks(QUERY_BLOCK * dim))
        .for_each(|(out, rows)| {
            let n = rows.len() / dim;
            // SAFETY: `rows` is n x dim, `matrix` dim x pdim and `out` n x pdim, all row-major.
            unsafe {
                gemm::gemm(
                    n,
                    pdim,
                    dim,
                    out.as_mut_ptr(),
                    1,
                    pdim as isize,
                    false,
                    rows.as_ptr(),
                    1,
                    dim as isize,
                    matrix.as_ptr(),
                    1,
                    pdim as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        });
    out
}

/// A standard normal draw (Box-Muller).
fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_rows(count: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..count * dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect()
    }

    fn brute_force(bank: &[f32], queries: &[f32], dim: usize) -> Vec<f32> {
        queries
            .chunks(dim)
            .map(|q| {
                bank.chunks(dim)
                    .map(|b| q.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>())
                    .fold(f32::INFINITY, f32::min)
            })
            .collect()
    }

    #[test]
    fn nearest_distances_match_brute_force_across_blocks() {
        // 700 entries and 300 queries: several blocks of each, the last ones partial.
        let dim = 37;
        let entries = random_rows(700, dim, 1);
        let queries = random_rows(300, dim, 2);
        let bank = Bank::new(dim, entries.clone()).unwrap();
        let fast = bank.nearest_squared(&queries);
        let slow = brute_force(&entries, &queries, dim);
        for (f, s) in fast.iter().zip(&slow) {
            assert!((f - s).abs() <= 1e-4 * s.max(1.0), "{f} vs {s}");
        }
        // A query equal to an entry is at distance (close to) zero.
        let d = bank.nearest_squared(&entries[5 * dim..6 * dim]);
        assert!(d[0] < 1e-4, "{d:?}");
    }

    #[test]
    fn coreset_stays_within_its_bound_and_covers_the_clusters() {
        // Four tight clusters of 500 points each: a coreset of 4 takes one from each.
        let dim = 16;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let centres = [-30.0f32, -10.0, 10.0, 30.0];
        let mut rows = Vec::new();
        for i in 0..2000 {
            for _ in 0..dim {
                rows.push(centres[i % 4] + rng.random_range(-0.1..0.1));
            }
        }
        let chosen = greedy_coreset(&rows, dim, 4, 8, 7);
        assert_eq!(chosen.len(), 4);
        let mut clusters: Vec<usize> = chosen.iter().map(|&i| i % 4).collect();
        clusters.sort();
        assert_eq!(clusters, [0, 1, 2, 3]);
        for target in [1, 50, 333] {
            let chosen = greedy_coreset(&rows, dim, target, 8, 7);
            assert_eq!(chosen.len(), target);
            let mut unique = chosen.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), target, "an entry was chosen twice");
        }
        assert_eq!(coreset_size(200_000, 0.01, 1024), 1024);
        assert_eq!(coreset_size(5_000, 0.01, 1024), 50);
        assert_eq!(coreset_size(10, 0.01, 1024), 1);
    }

    #[test]
    fn coreset_is_deterministic_per_seed_and_stops_at_duplicates() {
        let rows = random_rows(3000, 24, 4);
        let a = greedy_coreset(&rows, 24, 100, 8, 11);
        assert_eq!(a, greedy_coreset(&rows, 24, 100, 8, 11));
        assert_ne!(a, greedy_coreset(&rows, 24, 100, 8, 12));
        // Three distinct rows repeated: no more than three can be chosen.
        let repeated: Vec<f32> = (0..300).flat_map(|i| [(i % 3) as f32, 1.0]).collect();
        assert_eq!(greedy_coreset(&repeated, 2, 10, 0, 0).len(), 3);
    }

    #[test]
    fn bad_banks_are_errors() {
        assert!(Bank::new(3, vec![]).is_err());
        assert!(Bank::new(3, vec![1.0; 4]).is_err());
        assert!(Bank::new(1, vec![f32::NAN]).is_err());
    }
}
