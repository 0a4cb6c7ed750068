//! Mini-batches for training and evaluation.
//!
//! A set's images are either decoded and resized once ([`decode_all`]) and kept in memory (at
//! 227x227 one image is 155 KB, so the seed's 4000 training images take 620 MB, far cheaper than
//! decoding JPEGs every epoch), or, when that would exceed the memory budget
//! ([`super::budget`]), checked once ([`stream_all`]) and decoded again for every batch. Both give
//! the same batches. Each epoch ([`EpochPlan`]), a background thread turns them into normalised
//! (and for training, shuffled and augmented) float batches, a few batches ahead of the consumer.
//!
//! Batches are built on the loader's own thread pool, never on rayon's global pool: the trainer
//! runs inside the global pool and blocks while it waits for a batch, so with a pool of one thread
//! the only thread that could build the batch would be the one waiting for it.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use anyhow::{bail, ensure, Context, Result};
use image::RgbImage;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::augment::{write_augmented_chw, write_chw_normalized, Augment};
use super::dataset::Skipped;
use super::decode::{decode_bytes, resize_exact};
use super::rng_for;
use crate::core::warn::warn;

/// Batches prepared ahead of the consumer: enough to hide a slow batch, few enough that memory
/// stays bounded (a batch of 100 at 227x227 is 62 MB of floats).
const PREFETCH: usize = 2;

/// Whether a set's images are decoded once and kept, or decoded again for every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residency {
    InMemory,
    Streamed,
}

/// Where a set's pixels come from.
#[derive(Debug, Clone)]
pub enum Images {
    /// Decoded and resized once, kept in memory (every image is `size` x `size`).
    InMemory(Vec<RgbImage>),
    /// Decoded from [`DecodedSet::paths`] for each batch; this many images, all checked decodable.
    Streamed(usize),
}

impl Images {
    pub fn len(&self) -> usize {
        match self {
            Images::InMemory(images) => images.len(),
            Images::Streamed(count) => *count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A labelled image set at the network's input size, in memory or streamed from disk.
#[derive(Debug, Clone)]
pub struct DecodedSet {
    pub images: Images,
    pub labels: Vec<usize>,
    pub paths: Vec<PathBuf>,
    /// Files that could not be decoded (for example truncated), with the reason.
    pub skipped: Vec<Skipped>,
    pub size: u32,
}

impl DecodedSet {
    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    pub fn residency(&self) -> Residency {
        match self.images {
            Images::InMemory(_) => Residency::InMemory,
            Images::Streamed(_) => Residency::Streamed,
        }
    }

    /// How many images each label has, for labels `0..classes` (longer if a label is out of range,
    /// so such a mistake shows instead of vanishing).
    pub fn count_per_class(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        for &label in &self.labels {
            if label >= counts.len() {
                counts.resize(label + 1, 0);
            }
            counts[label] += 1;
        }
        counts
    }

    /// Image `i` at input size: borrowed when in memory, decoded from its file when streamed.
    pub(crate) fn image(&self, i: usize) -> Result<std::borrow::Cow<'_, RgbImage>> {
        match &self.images {
            Images::InMemory(images) => Ok(std::borrow::Cow::Borrowed(&images[i])),
            Images::Streamed(_) => {
                let path = &self.paths[i];
                decode_resized(path, self.size)
                    .map(std::borrow::Cow::Owned)
                    .with_context(|| FileChanged(path.clone()))
            }
        }
    }
}

/// A streamed file that could be read when the set was checked and cannot be now (deleted,
/// replaced, damaged): the context of such a batch error, so callers can tell it apart.
#[derive(Debug)]
pub struct FileChanged(pub PathBuf);

impl std::fmt::Display for FileChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot decode {} any more", self.0.display())
    }
}

/// Reads, decodes and resizes one file: the one way both residencies get an image's pixels.
fn decode_resized(path: &Path, size: u32) -> Result<RgbImage> {
    let bytes = std::fs::read(path).context("cannot read")?;
    Ok(resize_exact(&decode_bytes(&bytes)?, size))
}

/// Decodes and resizes every file in parallel and keeps the images. Files that fail are skipped
/// with a warning on stderr and listed in [`DecodedSet::skipped`]; the rest keep their input order.
pub fn decode_all(paths_and_labels: &[(PathBuf, usize)], size: u32) -> DecodedSet {
    load(paths_and_labels, size, Residency::InMemory)
}

/// Like [`decode_all`], but keeps no pixels: every file is decoded once to leave out those that
/// fail (so the set, and every batch, is the one [`decode_all`] gives), then decoded again for each
/// batch. Memory no longer grows with the number of images.
#[cfg(test)]
pub fn stream_all(paths_and_labels: &[(PathBuf, usize)], size: u32) -> DecodedSet {
    load(paths_and_labels, size, Residency::Streamed)
}

/// [`decode_all`] or [`stream_all`].
pub fn load(paths_and_labels: &[(PathBuf, usize)], size: u32, residency: Residency) -> DecodedSet {
    let keep = residency == Residency::InMemory;
    let decoded: Vec<Result<Option<RgbImage>>> = paths_and_labels
        .par_iter()
        .map(|(path, _)| decode_resized(path, size).map(|image| keep.then_some(image)))
        .collect();
    let mut images = Vec::with_capacity(if keep { decoded.len() } else { 0 });
    let mut labels = Vec::with_capacity(decoded.len());
    let mut paths = Vec::with_capacity(decoded.len());
    let mut skipped = Vec::new();
    for ((path, label), result) in paths_and_labels.iter().zip(decoded) {
        match result {
            Ok(image) => {
                images.extend(image);
                labels.push(*label);
                paths.push(path.clone());
            }
            Err(e) => {
                let reason = format!("{e:#}");
                warn(format!("skipping {}: {reason}", path.display()));
                skipped.push(Skipped {
                    path: path.clone(),
                    reason,
                });
            }
        }
    }
    let images = match residency {
        Residency::InMemory => Images::InMemory(images),
        Residency::Streamed => Images::Streamed(labels.len()),
    };
    DecodedSet {
        images,
        labels,
        paths,
        skipped,
        size,
    }
}

/// One mini-batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `[n, 3, size, size]`, normalised with the ImageNet mean and std.
    pub data: Vec<f32>,
    pub labels: Vec<u32>,
    /// Positions in the [`DecodedSet`] of the images, in batch order.
    pub indices: Vec<usize>,
}

/// How one pass over a set is served.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPlan {
    pub batch_size: usize,
    /// `Some(seed)` visits the images in a random order drawn from `seed` (a different seed each
    /// epoch for MATLAB's 'every-epoch'); `None` keeps set order.
    pub shuffle: Option<u64>,
    /// Random flip/translation for training; `None` for evaluation.
    pub augment: Option<Augment>,
    /// Seed of the augmentation draws; give each epoch its own, or every epoch sees the same flips
    /// and shifts.
    pub augment_seed: u64,
    /// Leave out the last incomplete batch, as MATLAB's training does (an epoch is
    /// floor(n / batch) iterations); evaluation keeps it.
    pub drop_last: bool,
}

impl EpochPlan {
    /// Every image once, in set order, unaugmented, the last batch possibly smaller.
    pub fn evaluation(batch_size: usize) -> EpochPlan {
        EpochPlan {
            batch_size,
            shuffle: None,
            augment: None,
            augment_seed: 0,
            drop_last: false,
        }
    }
}

/// The batches of one epoch, built on a background thread (started by the first `next`) and
/// received in order, at most [`PREFETCH`] ahead of the consumer. A streamed image that can no
/// longer be decoded (changed on disk since it was checked) ends the epoch with an error.
///
/// Dropping it early stops the thread: the pending send fails once the receiver is gone, and the
/// drop waits for the thread to exit, so nothing outlives the loader.
pub struct BatchLoader {
    set: Arc<DecodedSet>,
    plan: EpochPlan,
    /// Batches not yet handed out.
    remaining: usize,
    worker: Worker,
}

enum Worker {
    NotStarted,
    Running {
        batches: Receiver<Result<Batch>>,
        thread: JoinHandle<()>,
    },
    /// No thread could be started: batches are built on the consumer's thread instead.
    Inline {
        schedule: Box<Schedule>,
        next: usize,
    },
    Finished,
}

impl BatchLoader {
    /// One epoch of `set` as `plan` says.
    ///
    /// Errors on a zero batch size, or an in-memory set whose images are not all `size` x `size`.
    pub fn new(set: Arc<DecodedSet>, plan: EpochPlan) -> Result<Self> {
        ensure!(plan.batch_size > 0, "batch size must be at least 1");
        ensure!(
            set.len() == set.labels.len() && set.len() == set.paths.len(),
            "decoded set has {} images but {} labels and {} paths",
            set.len(),
            set.labels.len(),
            set.paths.len()
        );
        if let Images::InMemory(images) = &set.images {
            let expected = (set.size, set.size);
            if let Some(i) = images.iter().position(|img| img.dimensions() != expected) {
                bail!(
                    "image {i} of the decoded set is {:?}, not {}x{}",
                    images[i].dimensions(),
                    set.size,
                    set.size
                );
            }
        }
        let remaining = if plan.drop_last {
            set.len() / plan.batch_size
        } else {
            set.len().div_ceil(plan.batch_size)
        };
        Ok(BatchLoader {
            set,
            plan,
            remaining,
            worker: Worker::NotStarted,
        })
    }

    /// The epoch's order and augmentation key; cheap (a shuffle of the indices).
    fn schedule(&self) -> Schedule {
        let mut order: Vec<usize> = (0..self.set.len()).collect();
        if let Some(seed) = self.plan.shuffle {
            order.shuffle(&mut rng_for("shuffle", seed, 0));
        }
        Schedule {
            set: Arc::clone(&self.set),
            batch_size: self.plan.batch_size,
            order,
            augment: self.plan.augment,
            augment_rng: rng_for("augment", self.plan.augment_seed, 0),
        }
    }

    /// Starts producing batches `first..first + remaining` of the epoch.
    fn start(&mut self, first: usize) {
        let schedule = self.schedule();
        let count = self.remaining;
        let (sender, batches) = sync_channel(PREFETCH);
        let work = move || {
            for k in first..first + count {
                let batch = schedule.batch(k);
                let failed = batch.is_err();
                if sender.send(batch).is_err() || failed {
                    return; // The consumer stopped early, or the epoch cannot go on.
                }
            }
        };
        let spawned = std::thread::Builder::new()
            .name("crackscope-batches".into())
            .spawn(work);
        self.worker = match spawned {
            Ok(thread) => Worker::Running { batches, thread },
            Err(e) => {
                // Out of threads: slower, but the epoch is still complete.
                warn(format!(
                    "cannot start a batch-loading thread ({e}); loading without prefetch"
                ));
                Worker::Inline {
                    schedule: Box::new(self.schedule()),
                    next: first,
                }
            }
        };
    }

    /// Waits for the thread; re-raises its panic, if any, on the consumer's thread rather than
    /// letting the epoch end silently short.
    fn finish(&mut self) {
        let worker = std::mem::replace(&mut self.worker, Worker::Finished);
        if let Worker::Running { batches, thread } = worker {
            drop(batches); // Makes a pending send fail, which ends the thread.
            if let Err(panic) = thread.join() {
                if !std::thread::panicking() {
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }
}

impl Iterator for BatchLoader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.remaining == 0 {
            self.finish();
            return None;
        }
        if matches!(self.worker, Worker::NotStarted) {
            self.start(0);
        }
        let batch = match &mut self.worker {
            Worker::Running { batches, .. } => batches.recv().ok(),
            Worker::Inline { schedule, next } => {
                *next += 1;
                Some(schedule.batch(*next - 1))
            }
            Worker::NotStarted | Worker::Finished => None,
        };
        match batch {
            Some(Ok(batch)) => {
                self.remaining -= 1;
                Some(Ok(batch))
            }
            Some(Err(e)) => {
                self.remaining = 0;
                self.finish();
                Some(Err(e))
            }
            None => {
                self.finish(); // Re-raises a panic of the thread, the only way to get here early.
                None
            }
        }
    }

    /// Skipping before the first batch (as `skip` does when resuming mid-epoch) starts at batch `n`
    /// instead of building and discarding the earlier ones.
    fn nth(&mut self, n: usize) -> Option<Result<Batch>> {
        if matches!(self.worker, Worker::NotStarted) {
            let skipped = n.min(self.remaining);
            self.remaining -= skipped;
            if self.remaining > 0 {
                self.start(skipped);
            }
            return self.next();
        }
        for _ in 0..n {
            if let Err(e) = self.next()? {
                return Some(Err(e));
            }
        }
        self.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for BatchLoader {}

impl Drop for BatchLoader {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The pool that builds batches, sized like rayon's global pool (`RAYON_NUM_THREADS`, or one
/// thread per CPU); `None` when no thread could be started (batches are then built serially).
fn loader_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = rayon::current_num_threads();
        match rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("crackscope-load-{i}"))
            .build()
        {
            Ok(pool) => Some(pool),
            Err(e) => {
                warn(format!(
                    "cannot start batch-loading threads ({e}); loading serially"
                ));
                None
            }
        }
    })
    .as_ref()
}

/// Everything needed to build any batch of one epoch.
struct Schedule {
    set: Arc<DecodedSet>,
    batch_size: usize,
    /// The epoch's visiting order (indices into the set).
    order: Vec<usize>,
    augment: Option<Augment>,
    /// Image at epoch position p draws its augmentation from stream p of this generator, so a batch
    /// is the same whatever the scheduling, the residency, and whether or not earlier batches were
    /// built.
    augment_rng: ChaCha8Rng,
}

impl Schedule {
    /// Batch `k` of the epoch, its images filled in parallel on the loader's pool.
    fn batch(&self, k: usize) -> Result<Batch> {
        let start = k * self.batch_size;
        let indices = &self.order[start..(start + self.batch_size).min(self.order.len())];
        let size = self.set.size as usize;
        let per_image = 3 * size * size;
        let mut data = vec![0.0; indices.len() * per_image];
        let fill = |(slot, (out, &i)): (usize, (&mut [f32], &usize))| -> Result<()> {
            let image = self.set.image(i)?;
            match &self.augment {
                Some(aug) => {
                    let mut rng = self.augment_rng.clone();
                    rng.set_stream((start + slot) as u64);
                    write_augmented_chw(&image, aug, &mut rng, out);
                }
                None => write_chw_normalized(&image, out),
            }
            Ok(())
        };
        match loader_pool() {
            Some(pool) => pool.install(|| {
                data.par_chunks_mut(per_image)
                    .zip(indices)
                    .enumerate()
                    .try_for_each(fill)
            })?,
            None => data
                .chunks_mut(per_image)
                .zip(indices)
                .enumerate()
                .try_for_each(fill)?,
        }
        Ok(Batch {
            data,
            labels: indices.iter().map(|&i| self.set.labels[i] as u32).collect(),
            indices: indices.to_vec(),
        })
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::augment::{IMAGENET_MEAN, IMAGENET_STD};
    use crate::data::test_support::{encode, pattern, write, write_jpegs};
    use image::{ImageFormat, Rgb};
    use std::time::{Duration, Instant};

    /// `n` 4x4 images whose red channel encodes their index, labelled `index % 2`.
    fn numbered_set(n: usize) -> Arc<DecodedSet> {
        Arc::new(DecodedSet {
            images: Images::InMemory(
                (0..n)
                    .map(|i| RgbImage::from_pixel(4, 4, Rgb([i as u8, 0, 0])))
                    .collect(),
            ),
            labels: (0..n).map(|i| i % 2).collect(),
            paths: (0..n).map(|i| PathBuf::from(format!("{i}.png"))).collect(),
            skipped: Vec::new(),
            size: 4,
        })
    }

    fn patterned_set(n: usize) -> Arc<DecodedSet> {
        Arc::new(DecodedSet {
            images: Images::InMemory((0..n).map(|i| pattern(16, 16, i as u8)).collect()),
            labels: vec![0; n],
            paths: vec![PathBuf::new(); n],
            skipped: Vec::new(),
            size: 16,
        })
    }

    fn index_encoded_in(batch: &Batch, slot: usize) -> usize {
        let red = batch.data[slot * 48];
        ((red * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255.0).round() as usize
    }

    fn loader(
        set: &Arc<DecodedSet>,
        batch: usize,
        shuffle: Option<u64>,
        drop_last: bool,
    ) -> BatchLoader {
        BatchLoader::new(
            Arc::clone(set),
            EpochPlan {
                shuffle,
                drop_last,
                ..EpochPlan::evaluation(batch)
            },
        )
        .unwrap()
    }

    /// Every batch of a loader, failing the test on an error.
    fn all(loader: BatchLoader) -> Vec<Batch> {
        loader.collect::<Result<Vec<_>>>().unwrap()
    }

    fn training(batch_size: usize, shuffle: u64, augment: Augment, augment_seed: u64) -> EpochPlan {
        EpochPlan {
            batch_size,
            shuffle: Some(shuffle),
            augment: Some(augment),
            augment_seed,
            drop_last: false,
        }
    }

    fn order(batches: &[Batch]) -> Vec<usize> {
        batches.iter().flat_map(|b| b.indices.clone()).collect()
    }

    #[test]
    fn evaluation_serves_every_image_once_in_order_with_partial_batch() {
        let set = numbered_set(23);
        let batches = loader(&set, 5, None, false);
        assert_eq!(batches.len(), 5);
        let batches = all(batches);
        let sizes: Vec<usize> = batches.iter().map(|b| b.indices.len()).collect();
        assert_eq!(sizes, [5, 5, 5, 5, 3]);
        assert_eq!(order(&batches), (0..23).collect::<Vec<_>>());
        for batch in &batches {
            assert_eq!(batch.data.len(), batch.indices.len() * 48);
            for (slot, &i) in batch.indices.iter().enumerate() {
                assert_eq!(
                    index_encoded_in(batch, slot),
                    i,
                    "data does not belong to its index"
                );
                assert_eq!(batch.labels[slot], (i % 2) as u32);
            }
        }
    }

    #[test]
    fn shuffled_epochs_differ_by_seed_and_drop_the_partial_batch() {
        let set = numbered_set(50);
        let epoch = |seed: u64| -> Vec<usize> {
            let batches = all(loader(&set, 8, Some(seed), true));
            assert_eq!(batches.len(), 6, "floor(50 / 8) batches");
            assert!(batches.iter().all(|b| b.indices.len() == 8));
            order(&batches)
        };
        let (first, second) = (epoch(100), epoch(101));
        assert_ne!(first, second);
        assert_eq!(first, epoch(100), "the same seed must give the same order");
        let mut unique = first.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 48, "no image twice in an epoch");
        assert_ne!(first, (0..48).collect::<Vec<_>>());
    }

    #[test]
    fn shuffled_epoch_without_drop_last_covers_every_index_once() {
        let set = numbered_set(50);
        let mut seen = order(&all(loader(&set, 8, Some(3), false)));
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn augmentation_is_reproducible_and_follows_its_seed() {
        let set = patterned_set(12);
        let aug = Augment {
            flip: true,
            translate: 4,
            ..Augment::NONE
        };
        let epoch = |augment_seed: u64| -> Vec<Batch> {
            let plan = EpochPlan {
                drop_last: true,
                ..training(4, 9, aug, augment_seed)
            };
            all(BatchLoader::new(Arc::clone(&set), plan).unwrap())
        };
        let a = epoch(1);
        assert_eq!(a, epoch(1));
        let b = epoch(2);
        assert_eq!(
            order(&a),
            order(&b),
            "the augment seed must not change the order"
        );
        assert_ne!(a, b);
        let plain = all(loader(&set, 4, Some(9), true));
        assert_eq!(order(&a), order(&plain));
        assert_ne!(a[0].data, plain[0].data, "augmentation changed nothing");
    }

    #[test]
    fn skipping_batches_gives_the_same_later_batches() {
        let set = patterned_set(30);
        let aug = Augment {
            flip: true,
            translate: 3,
            ..Augment::NONE
        };
        let make = || BatchLoader::new(Arc::clone(&set), training(4, 5, aug, 5)).unwrap();
        let every = all(make());
        assert_eq!(every.len(), 8);
        let resumed = make().skip(3);
        assert_eq!(resumed.len(), 5);
        assert_eq!(resumed.collect::<Result<Vec<_>>>().unwrap(), every[3..]);
        assert_eq!(make().skip(20).count(), 0);
        let mut running = make();
        running.next();
        assert_eq!(
            running.nth(1).unwrap().unwrap(),
            every[2],
            "nth after starting"
        );
    }

    #[test]
    fn inline_fallback_serves_the_same_batches() {
        let set = patterned_set(10);
        let aug = Augment {
            flip: true,
            translate: 2,
            ..Augment::NONE
        };
        let make = || BatchLoader::new(Arc::clone(&set), training(3, 4, aug, 4)).unwrap();
        let threaded = all(make());
        let mut inline = make();
        // What `start` does when no thread can be spawned.
        inline.worker = Worker::Inline {
            schedule: Box::new(inline.schedule()),
            next: 0,
        };
        assert_eq!(all(inline), threaded);
    }

    #[test]
    fn photo_augmentations_depend_on_seed_and_position_only() {
        // Each image draws from its own stream of the epoch's generator, whichever thread fills
        // it and whatever that thread's scratch buffer held before.
        let set = patterned_set(11);
        let aug = Augment {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
            rotate90: true,
            vflip: true,
            scale: [0.8, 1.25],
            blur: 2.0,
            ..Augment::SEED
        };
        let batches = all(BatchLoader::new(Arc::clone(&set), training(4, 3, aug, 6)).unwrap());
        let per_image = 3 * 16 * 16;
        let mut position = 0;
        for batch in &batches {
            for (slot, &i) in batch.indices.iter().enumerate() {
                let Images::InMemory(images) = &set.images else {
                    unreachable!()
                };
                let mut rng = rng_for("augment", 6, 0);
                rng.set_stream(position);
                let mut want = vec![0.0; per_image];
                crate::data::augment::write_augmented_chw(&images[i], &aug, &mut rng, &mut want);
                assert_eq!(
                    batch.data[slot * per_image..(slot + 1) * per_image],
                    want[..],
                    "image at position {position}"
                );
                position += 1;
            }
        }
        assert_eq!(position, 11);
    }

    #[test]
    fn dropping_the_loader_early_stops_its_thread() {
        let set = numbered_set(200);
        let start = Instant::now();
        for _ in 0..20 {
            let mut batches = loader(&set, 1, None, false);
            assert!(batches.next().is_some());
            // Give the thread time to fill the channel and block on send.
            std::thread::sleep(Duration::from_millis(5));
            drop(batches);
        }
        // Never started: nothing to stop.
        drop(loader(&set, 1, None, false));
        assert!(start.elapsed() < Duration::from_secs(10), "drop hung");
    }

    #[test]
    fn bad_arguments_are_errors() {
        let message = format!(
            "{:#}",
            BatchLoader::new(numbered_set(4), EpochPlan::evaluation(0))
                .err()
                .unwrap()
        );
        assert!(message.contains("batch size"), "{message}");
        let mut odd = (*numbered_set(3)).clone();
        if let Images::InMemory(images) = &mut odd.images {
            images[1] = RgbImage::new(5, 4);
        }
        let message = format!(
            "{:#}",
            BatchLoader::new(Arc::new(odd), EpochPlan::evaluation(2))
                .err()
                .unwrap()
        );
        assert!(
            message.contains("image 1") && message.contains("(5, 4)"),
            "{message}"
        );
    }

    /// Files of several sizes and formats (resized differently), plus one that cannot be decoded.
    fn files_on_disk(dir: &Path) -> Vec<(PathBuf, usize)> {
        let mut files = Vec::new();
        for i in 0..13u8 {
            let (format, ext) = if i % 3 == 0 {
                (ImageFormat::Png, "png")
            } else {
                (ImageFormat::Jpeg, "jpg")
            };
            let path = dir.join(format!("{i:02}.{ext}"));
            let img = pattern(20 + u32::from(i) * 3, 30 - u32::from(i), i.wrapping_mul(29));
            write(&path, &encode(&img, format));
            files.push((path, usize::from(i % 2)));
        }
        let broken = dir.join("broken.jpg");
        write(&broken, b"not a jpeg at all");
        files.insert(5, (broken, 1));
        files
    }

    #[test]
    fn streamed_sets_give_the_batches_of_in_memory_sets() {
        let dir = tempfile::tempdir().unwrap();
        let files = files_on_disk(dir.path());
        let kept = Arc::new(decode_all(&files, 24));
        let streamed = Arc::new(stream_all(&files, 24));
        assert_eq!(streamed.residency(), Residency::Streamed);
        assert_eq!(kept.residency(), Residency::InMemory);
        assert!(matches!(streamed.images, Images::Streamed(13)));
        assert_eq!(streamed.paths, kept.paths);
        assert_eq!(streamed.labels, kept.labels);
        assert_eq!(streamed.skipped, kept.skipped);
        assert!(streamed.skipped[0].path.ends_with("broken.jpg"));
        let aug = Augment {
            flip: true,
            translate: 5,
            ..Augment::NONE
        };
        for plan in [
            training(4, 11, aug, 12),
            EpochPlan {
                drop_last: true,
                ..training(5, 3, aug, 8)
            },
            EpochPlan::evaluation(6),
        ] {
            let from_memory = all(BatchLoader::new(Arc::clone(&kept), plan).unwrap());
            let from_disk = all(BatchLoader::new(Arc::clone(&streamed), plan).unwrap());
            assert!(!from_memory.is_empty());
            assert_eq!(from_disk, from_memory, "{plan:?}");
        }
    }

    #[test]
    fn a_streamed_file_gone_since_the_check_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = files_on_disk(dir.path());
        let set = Arc::new(stream_all(&files, 16));
        let gone = set.paths[7].clone();
        std::fs::remove_file(&gone).unwrap();
        let results: Vec<Result<Batch>> = BatchLoader::new(set, EpochPlan::evaluation(4))
            .unwrap()
            .collect();
        assert_eq!(results.len(), 2, "the epoch ends at the failed batch");
        assert!(results[0].is_ok());
        let message = format!("{:#}", results[1].as_ref().unwrap_err());
        assert!(
            message.contains(&gone.display().to_string()) && message.contains("cannot read"),
            "{message}"
        );
    }

    #[test]
    fn counts_per_class_show_out_of_range_labels() {
        let set = numbered_set(5);
        assert_eq!(set.count_per_class(2), [3, 2]);
        assert_eq!(set.count_per_class(3), [3, 2, 0]);
        assert_eq!(set.count_per_class(1), [3, 2]);
    }

    #[test]
    fn decode_all_resizes_and_lists_undecodable_files() {
        let dir = tempfile::tempdir().unwrap();
        write_jpegs(dir.path(), 2, 0);
        let png = dir.path().join("wide.png");
        write(&png, &encode(&pattern(40, 10, 1), ImageFormat::Png));
        let jpeg = encode(&pattern(64, 64, 2), ImageFormat::Jpeg);
        let truncated = dir.path().join("truncated.jpg");
        write(&truncated, &jpeg[..jpeg.len() / 2]);
        let missing = dir.path().join("gone.jpg");
        let inputs = vec![
            (dir.path().join("0.jpg"), 1),
            (truncated.clone(), 0),
            (png.clone(), 0),
            (missing.clone(), 1),
            (dir.path().join("1.jpg"), 1),
        ];
        let set = decode_all(&inputs, 12);
        assert_eq!(set.paths, [inputs[0].0.clone(), png, inputs[4].0.clone()]);
        assert_eq!(set.labels, [1, 0, 1]);
        assert_eq!(set.size, 12);
        let Images::InMemory(images) = &set.images else {
            panic!("decode_all keeps its images");
        };
        assert!(images.iter().all(|img| img.dimensions() == (12, 12)));
        let skipped: Vec<&PathBuf> = set.skipped.iter().map(|s| &s.path).collect();
        assert_eq!(skipped, [&truncated, &missing]);
        assert!(
            set.skipped[0].reason.contains("truncated JPEG"),
            "{}",
            set.skipped[0].reason
        );
        assert!(
            set.skipped[1].reason.contains("cannot read"),
            "{}",
            set.skipped[1].reason
        );
    }

    #[test]
    fn real_photos_flow_from_scan_to_batches() {
        let Some(data) = crate::core::testdata::shared_data("") else {
            return;
        };
        let ds = crate::data::dataset::discover(&data.join("brickwork-cracks")).unwrap();
        let fractions = crate::data::split::Fractions {
            train: 0.1,
            val: 0.1,
            test: 0.1,
        };
        let split = crate::data::split::split_each_label(&ds, &fractions, 2020).unwrap();
        assert_eq!(
            split.duplicates_dropped, 0,
            "the README says duplicates were removed"
        );
        let manifest = crate::data::split::Manifest::from_split(&ds, &fractions, 2020, &split);
        let entries: Vec<(PathBuf, usize)> = manifest
            .train
            .iter()
            .map(|e| (manifest.absolute(e), e.label))
            .collect();
        let set = Arc::new(decode_all(&entries, 227));
        assert!(set.skipped.is_empty(), "{:?}", set.skipped);
        assert_eq!(
            set.count_per_class(2),
            [34, 34],
            "floor(0.1 * 340), floor(0.1 * 349)"
        );
        let aug = Augment {
            flip: true,
            translate: 30,
            ..Augment::NONE
        };
        let plan = EpochPlan {
            drop_last: true,
            ..training(16, 1, aug, 1)
        };
        let batches = all(BatchLoader::new(set, plan).unwrap());
        assert_eq!(batches.len(), 4, "floor(68 / 16)");
        let batch = &batches[0];
        assert_eq!(batch.data.len(), 16 * 3 * 227 * 227);
        let mean = batch.data.iter().map(|&v| f64::from(v)).sum::<f64>() / batch.data.len() as f64;
        assert!(
            mean.abs() < 1.5,
            "normalised photos should be roughly centred, mean {mean}"
        );
    }
}
