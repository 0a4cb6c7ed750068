//! Which windows to label next by what they look like: the most typical window of each part of
//! the pool no label covers yet (TypiClust: Hacohen, Dekel and Weinshall, "Active learning on a
//! budget", ICML 2022).
//!
//! With a few dozen labels a model learns most from windows that stand for many others, and
//! least from outliers; orders by the model's own score (least sure, spread over scores) or by
//! distance (the window farthest from those looked at) measured no better than random windows at
//! those budgets (README, "The labelling loop, measured"). So the windows, described by their
//! [`super::descriptors`] scaled to length 1, are cut by k-means into as many clusters as
//! windows looked at so far plus the labels of one more round; of the clusters holding no window
//! looked at, largest first, each offers its most typical window: the one nearest on average to
//! its [`NEIGHBOURS`] nearest neighbours in the cluster. A round gives as many new labels as
//! there are already (at least [`FIRST_ROUND`]), so the clusters follow what has been learned.
//!
//! Everything is seeded by the number of windows looked at: the same labels give the same
//! suggestions, so a stopped session resumes with the queue it had.

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// New labels the first round asks for.
pub const FIRST_ROUND: usize = 50;
/// Neighbours a window's typicality is measured over.
pub const NEIGHBOURS: usize = 20;
/// Windows clustered at most (those looked at always among them, the rest drawn at random): the
/// cost is windows x clusters x 64 a k-means step, so a campaign's hundreds of thousands of
/// windows stay a second's work; each cluster still has hundreds of members to be typical of.
const MAX_POINTS: usize = 10_000;
/// Members of a cluster compared pairwise for typicality at most (drawn at random beyond).
const MAX_MEMBERS: usize = 2_000;
/// k-means steps at most (it usually settles in a few dozen).
const STEPS: usize = 50;

/// The windows to show next, as indices into `rows` (`dim` numbers a window), best first.
/// `looked[w]` says window `w` has been looked at (labelled or skipped); `labelled` counts the
/// crack and no-crack answers among them. Empty only when every window has been looked at.
pub fn next_round(rows: &[f32], dim: usize, looked: &[bool], labelled: usize) -> Vec<usize> {
    let n = looked.len();
    assert_eq!(rows.len(), n * dim, "one row of {dim} numbers a window");
    let seen = looked.iter().filter(|&&l| l).count();
    let mut rng = ChaCha8Rng::seed_from_u64(0x007E_1CA1 ^ seen as u64);
    let points = clustered(looked, &mut rng);
    let x = unit_rows(rows, dim, &points);
    let k = (seen + labelled.max(FIRST_ROUND)).min(points.len());
    if k == 0 {
        return Vec::new();
    }
    let assign = kmeans(&x, dim, k, &mut rng);
    let mut clusters: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (p, &c) in assign.iter().enumerate() {
        clusters[c].push(p);
    }
    let mut open: Vec<Vec<usize>> = clusters
        .into_iter()
        .filter(|members| !members.is_empty() && members.iter().all(|&p| !looked[points[p]]))
        .collect();
    open.sort_by_key(|members| std::cmp::Reverse(members.len()));
    let picks: Vec<usize> = open
        .iter()
        .map(|members| points[most_typical(&x, dim, members, &mut rng)])
        .collect();
    if picks.is_empty() {
        // Every cluster holds a window looked at: those left look exactly like one (a blank
        // wall's windows can), so they come as they are, in the record's order.
        return (0..n).filter(|&w| !looked[w]).collect();
    }
    picks
}

/// The windows to cluster: all of them, or beyond [`MAX_POINTS`] those looked at and a random
/// draw of the rest.
fn clustered(looked: &[bool], rng: &mut ChaCha8Rng) -> Vec<usize> {
    let n = looked.len();
    if n <= MAX_POINTS {
        return (0..n).collect();
    }
    let mut points: Vec<usize> = (0..n).filter(|&w| looked[w]).collect();
    let rest: Vec<usize> = (0..n).filter(|&w| !looked[w]).collect();
    let room = MAX_POINTS.saturating_sub(points.len()).min(rest.len());
    points.extend(sample(rng, rest.len(), room).into_iter().map(|i| rest[i]));
    points.sort_unstable();
    points
}

/// The rows of `points`, each scaled to length 1 (a zero row stays zero).
fn unit_rows(rows: &[f32], dim: usize, points: &[usize]) -> Vec<f32> {
    let mut x = Vec::with_capacity(points.len() * dim);
    for &p in points {
        let row = &rows[p * dim..(p + 1) * dim];
        let length = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        let scale = if length > 0.0 { 1.0 / length } else { 0.0 };
        x.extend(row.iter().map(|v| v * scale));
    }
    x
}

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(u, v)| (u - v) * (u - v)).sum()
}

/// k-means (k-means++ start, then Lloyd's steps) of the rows of `x`: each row's cluster.
fn kmeans(x: &[f32], dim: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let n = x.len() / dim;
    let row = |i: usize| &x[i * dim..(i + 1) * dim];
    let mut centres: Vec<f32> = Vec::with_capacity(k * dim);
    let first = rng.random_range(0..n);
    centres.extend_from_slice(row(first));
    let mut nearest: Vec<f32> = (0..n)
        .map(|i| squared_distance(row(i), row(first)))
        .collect();
    for _ in 1..k {
        let total: f64 = nearest.iter().map(|&d| f64::from(d)).sum();
        let pick = if total > 0.0 {
            let mut at = rng.random_range(0.0..total);
            let mut chosen = n - 1;
            for (i, &d) in nearest.iter().enumerate() {
                at -= f64::from(d);
                if at < 0.0 {
                    chosen = i;
                    break;
                }
            }
            chosen
        } else {
            rng.random_range(0..n)
        };
        centres.extend_from_slice(row(pick));
        for (i, d) in nearest.iter_mut().enumerate() {
            *d = d.min(squared_distance(row(i), row(pick)));
        }
    }
    let mut assign = vec![usize::MAX; n];
    for _ in 0..STEPS {
        let mut changed = false;
        for (i, a) in assign.iter_mut().enumerate() {
            let best = (0..k)
                .map(|c| squared_distance(row(i), &centres[c * dim..(c + 1) * dim]))
                .enumerate()
                .min_by(|p, q| p.1.total_cmp(&q.1))
                .map_or(0, |(c, _)| c);
            changed |= *a != best;
            *a = best;
        }
        if !changed {
            break;
        }
        // Each centre moves to its members' mean; an emptied cluster keeps its centre.
        let mut sums = vec![0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (i, &c) in assign.iter().enumerate() {
            counts[c] += 1;
            for (s, &v) in sums[c * dim..(c + 1) * dim].iter_mut().zip(row(i)) {
                *s += f64::from(v);
            }
        }
        for c in (0..k).filter(|&c| counts[c] > 0) {
            for (centre, s) in centres[c * dim..(c + 1) * dim]
                .iter_mut()
                .zip(&sums[c * dim..(c + 1) * dim])
            {
                *centre = (s / counts[c] as f64) as f32;
            }
        }
    }
    assign
}

/// The member of a cluster (row indices into `x`) with the smallest mean distance to its
/// [`NEIGHBOURS`] nearest fellow members, that is the highest typicality.
fn most_typical(x: &[f32], dim: usize, members: &[usize], rng: &mut ChaCha8Rng) -> usize {
    if members.len() <= 2 {
        return members[0];
    }
    let compared: Vec<usize> = if members.len() > MAX_MEMBERS {
        let mut drawn: Vec<usize> = sample(rng, members.len(), MAX_MEMBERS)
            .into_iter()
            .map(|i| members[i])
            .collect();
        drawn.sort_unstable();
        drawn
    } else {
        members.to_vec()
    };
    let row = |i: usize| &x[i * dim..(i + 1) * dim];
    let near = NEIGHBOURS.min(compared.len() - 1);
    let mut best = (f32::INFINITY, compared[0]);
    let mut distances = Vec::with_capacity(compared.len());
    for &a in &compared {
        distances.clear();
        distances.extend(
            compared
                .iter()
                .filter(|&&b| b != a)
                .map(|&b| squared_distance(row(a), row(b)).sqrt()),
        );
        distances.select_nth_unstable_by(near - 1, f32::total_cmp);
        let mean = distances[..near].iter().sum::<f32>() / near as f32;
        if mean < best.0 {
            best = (mean, a);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `per_blob` points in each of `centres` (2-d), jittered by at most `spread`.
    fn blobs(centres: &[(f32, f32)], per_blob: &[usize], spread: f32, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut rows = Vec::new();
        for (&(cx, cy), &count) in centres.iter().zip(per_blob) {
            for _ in 0..count {
                rows.push(cx + rng.random_range(-spread..spread));
                rows.push(cy + rng.random_range(-spread..spread));
            }
        }
        rows
    }

    #[test]
    fn the_typical_window_is_the_heart_of_its_cluster() {
        // One tight crowd round (1, 0) and a few stragglers farther out on the same side.
        let mut rows = blobs(&[(1.0, 0.0)], &[30], 0.02, 1);
        rows.extend([1.0, 0.3, 1.0, -0.3, 0.9, 0.25]);
        let x = unit_rows(&rows, 2, &(0..33).collect::<Vec<_>>());
        let members: Vec<usize> = (0..33).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let pick = most_typical(&x, 2, &members, &mut rng);
        assert!(pick < 30, "a straggler ({pick}) was taken as typical");
    }

    #[test]
    fn a_round_covers_every_cluster_once_largest_first_and_skips_those_looked_at() {
        // Four well-separated directions with 400, 300, 200 and 100 windows.
        let centres = [(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)];
        let rows = blobs(&centres, &[400, 300, 200, 100], 0.05, 2);
        let n = 1000;
        let blob = |w: usize| match w {
            0..400 => 0,
            400..700 => 1,
            700..900 => 2,
            _ => 3,
        };
        // Nothing looked at yet: 50 clusters, the first round's labels; every blob gets some.
        let first = next_round(&rows, 2, &vec![false; n], 0);
        assert_eq!(first.len(), FIRST_ROUND);
        let blobs_hit: std::collections::HashSet<usize> = first.iter().map(|&w| blob(w)).collect();
        assert_eq!(
            blobs_hit.len(),
            4,
            "every kind of window offered: {first:?}"
        );
        let unique: std::collections::HashSet<usize> = first.iter().copied().collect();
        assert_eq!(unique.len(), first.len(), "a window offered twice");
        // Everything of three blobs looked at: only the fourth's windows are offered.
        let looked: Vec<bool> = (0..n).map(|w| blob(w) != 2).collect();
        let next = next_round(&rows, 2, &looked, 60);
        assert!(
            !next.is_empty() && next.iter().all(|&w| blob(w) == 2),
            "{next:?}"
        );
        // The same state, the same suggestions.
        assert_eq!(next, next_round(&rows, 2, &looked, 60));
        // All looked at: nothing more.
        assert!(next_round(&rows, 2, &vec![true; n], 100).is_empty());
        // Windows exactly like one looked at share its cluster whatever k is; they still come.
        let twins = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
        assert_eq!(next_round(&twins, 2, &[true, false, true], 2), vec![1]);
    }

    #[test]
    fn a_campaign_sized_pool_is_clustered_from_a_draw() {
        let n = MAX_POINTS * 3;
        let rows = blobs(&[(1.0, 0.0), (0.0, 1.0)], &[n / 2, n / 2], 0.3, 3);
        let mut looked = vec![false; n];
        looked[7] = true;
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let points = clustered(&looked, &mut rng);
        assert_eq!(points.len(), MAX_POINTS);
        assert!(
            points.contains(&7),
            "a window looked at left out of the clusters"
        );
        let picks = next_round(&rows, 2, &looked, 1);
        assert!(!picks.is_empty() && !picks.contains(&7));
    }
}
