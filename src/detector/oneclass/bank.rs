//! The memory bank of normal patch features: greedy coreset subsampling that bounds its size, and
//! exact nearest-neighbour distances computed as blocked matrix products.
//!
//! The coreset is PatchCore's: start from a random patch, then repeatedly add the patch farthest
//! from everything chosen so far, so that the bank covers the whole normal feature space with few
//! entries. Distances during selection are taken on a seeded Gaussian random projection (much
//! cheaper, and by Johnson-Lindenstrauss close to the real ones). Scoring then uses exact squared
//! distances, `|q|^2 + |b|^2 - 2 q.b`, with the `q.b` for a block of queries against a block of
//! bank entries as one gemm call.
//!
//! A large bank is searched with lower bounds first ([`Pruning`]): patch features vary mostly
//! along a few directions (32 principal directions hold about 90% of the variance of fire5's),
//! so the distance between the projections onto those directions, one narrow gemm, is a lower
//! bound that rules out almost every entry; only the few entries whose bound is below the best
//! distance found get their exact distance. The result is the exact nearest distance (the tests
//! compare it with brute force) at a fraction of the products.

use anyhow::{bail, ensure, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Queries and bank entries per gemm call: a 128 x 512 block of products is 256 KiB, which
/// stays in cache while its minima are taken.
const QUERY_BLOCK: usize = 128;
const BANK_BLOCK: usize = 512;

/// Patch features of normal images, one row of `dim` values per entry.
#[derive(Debug, Clone)]
pub struct Bank {
    dim: usize,
    entries: Vec<f32>,
    /// Squared norm of every entry.
    norms: Vec<f32>,
    /// Lower bounds for the search; None where brute force is as quick (few entries or values).
    pruning: Option<Pruning>,
}

impl PartialEq for Bank {
    /// Banks are equal when their entries are (the rest is computed from them).
    fn eq(&self, other: &Bank) -> bool {
        self.dim == other.dim && self.entries == other.entries
    }
}

/// Principal directions for lower bounds: with `basis` (`dim x width`, orthonormal columns),
/// `|P(q - mean) - P(b - mean)|^2 <= |q - b|^2` for every query `q` and entry `b`.
#[derive(Debug, Clone)]
struct Pruning {
    width: usize,
    mean: Vec<f32>,
    basis: Vec<f32>,
    /// Every entry projected (`len x width`), and the squared norm of each projection.
    projected: Vec<f32>,
    projected_norms: Vec<f32>,
}

/// Directions of the lower bound: enough to hold most of the variance of patch features,
/// few enough that the bound's products cost a fraction of the exact ones.
const PRUNING_WIDTH: usize = 32;
/// Banks searched with lower bounds: at least this many entries of at least 2 x
/// [`PRUNING_WIDTH`] values.
const PRUNING_MIN_ENTRIES: usize = 512;

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
        let norms: Vec<f32> = entries.chunks(dim).map(squared_norm).collect();
        let pruning = (dim >= 2 * PRUNING_WIDTH && norms.len() >= PRUNING_MIN_ENTRIES)
            .then(|| Pruning::new(&entries, dim, PRUNING_WIDTH));
        Ok(Bank {
            dim,
            entries,
            norms,
            pruning,
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

    /// The squared distance from each query (rows of `dim` values) to its nearest entry: exact,
    /// with lower bounds ruling out most entries in large banks. Runs on the calling thread;
    /// callers parallelise over images.
    pub fn nearest_squared(&self, queries: &[f32]) -> Vec<f32> {
        match &self.pruning {
            Some(pruning) => self.nearest_pruned(queries, pruning),
            None => self.nearest_squared_brute_force(queries),
        }
    }

    /// [`Bank::nearest_squared`] by blocked products with every entry.
    pub fn nearest_squared_brute_force(&self, queries: &[f32]) -> Vec<f32> {
        assert_eq!(
            queries.len() % self.dim,
            0,
            "queries of the bank's dimension"
        );
        let dim = self.dim;
        let count = queries.len() / dim;
        // Per query, the entry of least |b|^2 - 2 q.b (products in blocks), then its distance
        // as a sum of squared differences: the expansion alone loses the small distances to
        // cancellation between the large norms of features that are all positive.
        let mut best = vec![(f32::INFINITY, 0usize); count];
        let mut products = vec![0f32; QUERY_BLOCK * BANK_BLOCK];
        for q0 in (0..count).step_by(QUERY_BLOCK) {
            let qn = QUERY_BLOCK.min(count - q0);
            let q = &queries[q0 * dim..(q0 + qn) * dim];
            for b0 in (0..self.len()).step_by(BANK_BLOCK) {
                let bn = BANK_BLOCK.min(self.len() - b0);
                let b = &self.entries[b0 * dim..(b0 + bn) * dim];
                let out = &mut products[..qn * bn];
                dot_products(q, b, dim, out);
                for (r, row) in out.chunks(bn).enumerate() {
                    let best = &mut best[q0 + r];
                    for (j, (&dot, &norm)) in row.iter().zip(&self.norms[b0..b0 + bn]).enumerate() {
                        let rank = norm - 2.0 * dot;
                        if rank < best.0 {
                            *best = (rank, b0 + j);
                        }
                    }
                }
            }
        }
        best.iter()
            .zip(queries.chunks_exact(dim))
            .map(|(&(_, j), q)| squared_distance(q, &self.entries[j * dim..(j + 1) * dim]))
            .collect()
    }

    /// The search with lower bounds: per block of queries, the bound to every entry (one narrow
    /// product per block of entries); per query, the exact distance to the entry of least bound,
    /// then to every entry whose bound is below the best distance so far.
    fn nearest_pruned(&self, queries: &[f32], pruning: &Pruning) -> Vec<f32> {
        let dim = self.dim;
        assert_eq!(queries.len() % dim, 0, "queries of the bank's dimension");
        let count = queries.len() / dim;
        let len = self.len();
        let width = pruning.width;
        let projected = pruning.project(queries);
        let largest_projected = pruning.projected_norms.iter().copied().fold(0f32, f32::max);
        let mut best = vec![f32::INFINITY; count];
        let mut bounds = vec![0f32; QUERY_BLOCK * len];
        let mut products = vec![0f32; QUERY_BLOCK * BANK_BLOCK];
        for q0 in (0..count).step_by(QUERY_BLOCK) {
            let qn = QUERY_BLOCK.min(count - q0);
            let qp = &projected[q0 * width..(q0 + qn) * width];
            let qp_norms: Vec<f32> = qp.chunks(width).map(squared_norm).collect();
            for b0 in (0..len).step_by(BANK_BLOCK) {
                let bn = BANK_BLOCK.min(len - b0);
                let bp = &pruning.projected[b0 * width..(b0 + bn) * width];
                let out = &mut products[..qn * bn];
                dot_products(qp, bp, width, out);
                for (r, row) in out.chunks(bn).enumerate() {
                    let bound = &mut bounds[r * len + b0..r * len + b0 + bn];
                    for ((b, &dot), &norm) in bound
                        .iter_mut()
                        .zip(row)
                        .zip(&pruning.projected_norms[b0..b0 + bn])
                    {
                        *b = qp_norms[r] + norm - 2.0 * dot;
                    }
                }
            }
            for r in 0..qn {
                let q = &queries[(q0 + r) * dim..(q0 + r + 1) * dim];
                // Summed differences: no cancellation between large norms.
                let exact = |j: usize| squared_distance(q, &self.entries[j * dim..(j + 1) * dim]);
                let row = &bounds[r * len..(r + 1) * len];
                // The entries of least bound first: their exact distances bound the rest.
                let first = least_bounds(row);
                let mut nearest = first
                    .iter()
                    .filter(|&&j| j < len)
                    .map(|&j| exact(j))
                    .fold(f32::INFINITY, f32::min);
                // The bound is a sum of squares minus products in f32 (of centred, small values):
                // it is compared with room for its rounding, so that no entry is ruled out by it.
                let slack = 1e-4 * (qp_norms[r] + largest_projected) + f32::MIN_POSITIVE;
                for (j, &bound) in row.iter().enumerate() {
                    if bound <= nearest + slack && !first.contains(&j) {
                        nearest = nearest.min(exact(j));
                    }
                }
                best[q0 + r] = nearest;
            }
        }
        best
    }
}

impl Pruning {
    /// The bank's mean and `width` leading principal directions (subspace iteration on the
    /// covariance, seeded: the same entries always give the same directions).
    fn new(entries: &[f32], dim: usize, width: usize) -> Pruning {
        let len = entries.len() / dim;
        let mut mean = vec![0f64; dim];
        for row in entries.chunks(dim) {
            mean.iter_mut()
                .zip(row)
                .for_each(|(m, &v)| *m += f64::from(v));
        }
        let mean: Vec<f32> = mean.iter().map(|m| (m / len as f64) as f32).collect();
        let centred: Vec<f32> = entries
            .chunks(dim)
            .flat_map(|row| row.iter().zip(&mean).map(|(v, m)| v - m))
            .collect();
        // Covariance (up to scale) = centred^T centred, dim x dim.
        let transposed: Vec<f32> = (0..dim)
            .flat_map(|i| centred.iter().skip(i).step_by(dim).copied())
            .collect();
        let mut covariance = vec![0f32; dim * dim];
        matmul(
            (dim, len, dim),
            &transposed,
            &centred,
            false,
            &mut covariance,
            false,
        );
        let covariance: Vec<f64> = covariance.iter().map(|&c| f64::from(c)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_ba5e);
        let mut basis: Vec<f64> = (0..dim * width)
            .map(|_| f64::from(gaussian(&mut rng)))
            .collect();
        orthonormalise(&mut basis, dim, width);
        for _ in 0..SUBSPACE_ITERATIONS {
            let mut next = vec![0f64; dim * width];
            for i in 0..dim {
                let c = &covariance[i * dim..(i + 1) * dim];
                for k in 0..width {
                    next[i * width + k] = (0..dim).map(|j| c[j] * basis[j * width + k]).sum();
                }
            }
            orthonormalise(&mut next, dim, width);
            basis = next;
        }
        let basis: Vec<f32> = basis.iter().map(|&b| b as f32).collect();
        let mut pruning = Pruning {
            width,
            mean,
            basis,
            projected: Vec::new(),
            projected_norms: Vec::new(),
        };
        pruning.projected = pruning.project(entries);
        pruning.projected_norms = pruning.projected.chunks(width).map(squared_norm).collect();
        pruning
    }

    /// `rows` (of `dim` values) minus the mean, onto the basis: `rows x width`.
    fn project(&self, rows: &[f32]) -> Vec<f32> {
        let dim = self.mean.len();
        let count = rows.len() / dim;
        let mut out = vec![0f32; count * self.width];
        matmul(
            (count, dim, self.width),
            rows,
            &self.basis,
            false,
            &mut out,
            false,
        );
        let mean_projected: Vec<f32> = (0..self.width)
            .map(|k| {
                (0..dim)
                    .map(|i| self.mean[i] * self.basis[i * self.width + k])
                    .sum()
            })
            .collect();
        for row in out.chunks_mut(self.width) {
            row.iter_mut()
                .zip(&mean_projected)
                .for_each(|(v, m)| *v -= m);
        }
        out
    }
}

/// Entries measured exactly before the others are bounded: enough that the first upper bound is
/// close to the nearest distance.
const FIRST_MEASURED: usize = 4;

/// Indices of the [`FIRST_MEASURED`] least values of `row` (`usize::MAX` where it is shorter).
fn least_bounds(row: &[f32]) -> [usize; FIRST_MEASURED] {
    let mut index = [usize::MAX; FIRST_MEASURED];
    let mut value = [f32::INFINITY; FIRST_MEASURED];
    for (j, &b) in row.iter().enumerate() {
        if b < value[FIRST_MEASURED - 1] {
            let mut at = FIRST_MEASURED - 1;
            while at > 0 && value[at - 1] > b {
                value[at] = value[at - 1];
                index[at] = index[at - 1];
                at -= 1;
            }
            value[at] = b;
            index[at] = j;
        }
    }
    index
}

/// Rounds of subspace iteration: the bound is valid for any orthonormal basis; these only make
/// it tight (the leading directions of patch features stand well apart).
const SUBSPACE_ITERATIONS: usize = 12;

/// Makes the `width` columns of `basis` (`dim x width`, row-major) orthonormal (modified
/// Gram-Schmidt; a column that vanishes is replaced by a unit vector not yet spanned).
fn orthonormalise(basis: &mut [f64], dim: usize, width: usize) {
    for k in 0..width {
        // Twice: the second pass removes what rounding left of the first.
        for _ in 0..2 {
            remove_earlier_columns(basis, dim, width, k);
        }
        if normalise_column(basis, dim, width, k, 1e-12) {
            continue;
        }
        // Degenerate (rank below width): any direction orthogonal to the others keeps the
        // bound valid; take unit vectors until one is independent.
        for unit in 0..dim {
            for i in 0..dim {
                basis[i * width + k] = f64::from(u8::from(i == unit));
            }
            remove_earlier_columns(basis, dim, width, k);
            if normalise_column(basis, dim, width, k, 1e-6) {
                break;
            }
        }
    }
}

/// Column `k` of `basis` minus its projections on the columns before it.
fn remove_earlier_columns(basis: &mut [f64], dim: usize, width: usize, k: usize) {
    for prev in 0..k {
        let proj: f64 = (0..dim)
            .map(|i| basis[i * width + k] * basis[i * width + prev])
            .sum();
        for i in 0..dim {
            basis[i * width + k] -= proj * basis[i * width + prev];
        }
    }
}

/// Scales column `k` of `basis` to unit length if its length is above `least`; whether it was.
fn normalise_column(basis: &mut [f64], dim: usize, width: usize, k: usize, least: f64) -> bool {
    let norm = (0..dim)
        .map(|i| basis[i * width + k].powi(2))
        .sum::<f64>()
        .sqrt();
    if norm <= least {
        return false;
    }
    for i in 0..dim {
        basis[i * width + k] /= norm;
    }
    true
}

/// `out[i * bn + j] = q_i . b_j` for row-major `q` (qn x dim) and `b` (bn x dim).
fn dot_products(q: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
    let (qn, bn) = (q.len() / dim, b.len() / dim);
    matmul((qn, dim, bn), q, b, true, out, false);
}

/// `out = a x b` for row-major `a` (m x k) and `b` (k x n), or `a x b^T` for row-major `b`
/// (n x k) when `b_transposed`: the engine's gemm, on rayon's threads when `parallel`.
pub(crate) fn matmul(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    b: &[f32],
    b_transposed: bool,
    out: &mut [f32],
    parallel: bool,
) {
    assert!(a.len() == m * k && b.len() == k * n && out.len() == m * n);
    let (b_col, b_row) = if b_transposed {
        (k as isize, 1)
    } else {
        (1, n as isize)
    };
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `a` is m x k with row stride k, `b` read as k x n with the strides chosen above,
    // `out` m x n with row stride n; the assertion keeps every index inside the slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            b_col,
            b_row,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `|a - b|^2`, with eight running sums so that the compiler vectorises the loop.
fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0f32; 8];
    let whole = a.len() / 8 * 8;
    for (x, y) in a[..whole].chunks_exact(8).zip(b[..whole].chunks_exact(8)) {
        for i in 0..8 {
            let d = x[i] - y[i];
            sums[i] += d * d;
        }
    }
    let tail: f32 = a[whole..]
        .iter()
        .zip(&b[whole..])
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    sums.iter().sum::<f32>() + tail
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
            matmul((n, dim, pdim), rows, &matrix, false, out, false);
        });
    out
}

/// A standard normal draw (Box-Muller).
pub(crate) fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
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

    /// Features are all positive: rows far from the origin, with small distances between them.
    /// The distances must come out as the differences give them, not lost to the cancellation
    /// of `|q|^2 + |b|^2 - 2 q.b` in float32 (which gave errors larger than the distances).
    #[test]
    fn small_distances_far_from_the_origin_stay_exact() {
        let dim = 48;
        let entries: Vec<f32> = random_rows(100, dim, 3).iter().map(|v| 30.0 + v).collect();
        let bank = Bank::new(dim, entries.clone()).unwrap();
        assert!(bank.pruning.is_none(), "the plain products are tested here");
        let nudges = random_rows(100, dim, 4);
        let queries: Vec<f32> = entries
            .iter()
            .zip(&nudges)
            .map(|(e, n)| e + 0.01 * n)
            .collect();
        let exact: Vec<f64> = queries
            .chunks(dim)
            .map(|q| {
                entries
                    .chunks(dim)
                    .map(|b| {
                        q.iter()
                            .zip(b)
                            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
                            .sum::<f64>()
                    })
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        for (found, exact) in bank.nearest_squared(&queries).iter().zip(&exact) {
            assert!(
                (f64::from(*found) - exact).abs() <= 1e-3 * exact,
                "{found} vs {exact}"
            );
        }
    }

    /// Rows with most of their variance in `strong` directions (as patch features have it),
    /// around a common offset.
    fn structured_rows(count: usize, dim: usize, strong: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let directions: Vec<f32> = (0..strong * dim).map(|_| gaussian(&mut rng)).collect();
        (0..count)
            .flat_map(|_| {
                let weights: Vec<f32> = (0..strong).map(|_| 3.0 * gaussian(&mut rng)).collect();
                let noise: Vec<f32> = (0..dim).map(|_| 0.3 * gaussian(&mut rng)).collect();
                (0..dim)
                    .map(|i| {
                        5.0 + noise[i]
                            + (0..strong)
                                .map(|k| weights[k] * directions[k * dim + i])
                                .sum::<f32>()
                    })
                    .collect::<Vec<f32>>()
            })
            .collect()
    }

    #[test]
    fn pruned_search_gives_the_brute_force_distances() {
        // Structured rows (the bound rules most entries out), isotropic ones (it rules out few),
        // duplicates and queries equal to entries; banks of several blocks, the last partial.
        for (entries, queries, dim) in [
            (
                structured_rows(2000, 96, 12, 1),
                structured_rows(300, 96, 12, 2),
                96,
            ),
            (random_rows(1500, 64, 3), random_rows(200, 64, 4), 64),
            (
                structured_rows(700, 256, 40, 5),
                structured_rows(130, 256, 40, 6),
                256,
            ),
        ] {
            let mut entries = entries;
            entries.extend_from_within(..50 * dim);
            let bank = Bank::new(dim, entries.clone()).unwrap();
            assert!(
                bank.pruning.is_some(),
                "{} x {dim} is searched with bounds",
                bank.len()
            );
            let mut queries = queries;
            queries.extend_from_slice(&entries[7 * dim..9 * dim]);
            let fast = bank.nearest_squared(&queries);
            let exact = brute_force(&entries, &queries, dim);
            let blocked = bank.nearest_squared_brute_force(&queries);
            let largest = entries.chunks(dim).map(squared_norm).fold(0f32, f32::max);
            for (q, ((f, e), b)) in queries
                .chunks(dim)
                .zip(fast.iter().zip(&exact).zip(&blocked))
            {
                assert!((f - e).abs() <= 1e-4 * e.max(1.0), "{f} vs {e}");
                // The blocked products cancel large norms: exact up to their rounding.
                let rounding = 1e-5 * (squared_norm(q) + largest);
                assert!((b - e).abs() <= 1e-4 * e + rounding, "{b} vs {e}");
            }
        }
        // Too few entries or values for bounds: brute force.
        assert!(Bank::new(64, random_rows(100, 64, 7))
            .unwrap()
            .pruning
            .is_none());
        assert!(Bank::new(32, random_rows(1000, 32, 7))
            .unwrap()
            .pruning
            .is_none());
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
