//! Mini-batches for training and evaluation.
//!
//! Images are decoded and resized once ([`decode_all`]) and kept in memory: at 227x227 one image is
//! 155 KB, so the seed's 4000 training images take 620 MB, far cheaper than decoding JPEGs every
//! epoch. Each epoch, a background thread turns them into normalised (and for training, shuffled
//! and augmented) float batches, a few batches ahead of the consumer.

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{bail, ensure, Context, Result};
use image::RgbImage;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::augment::{write_augmented_chw, write_chw_normalized, Augment};
use super::decode::{decode_bytes, resize_exact};
use super::rng_for;
use super::scan::Skipped;

/// Batches prepared ahead of the consumer: enough to hide a slow batch, few enough that memory
/// stays bounded (a batch of 100 at 227x227 is 62 MB of floats).
const PREFETCH: usize = 2;

/// Decoded images at the network's input size, with their labels and origins (same order).
#[derive(Debug, Clone)]
pub struct DecodedSet {
    /// Every image is `size` x `size`.
    pub images: Vec<RgbImage>,
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
}

/// Decodes and resizes every file in parallel. Files that fail are skipped with a warning on
/// stderr and listed in [`DecodedSet::skipped`]; the rest keep their input order.
pub fn decode_all(paths_and_labels: &[(PathBuf, usize)], size: u32) -> DecodedSet {
    let decoded: Vec<Result<RgbImage>> = paths_and_labels
        .par_iter()
        .map(|(path, _)| {
            let bytes = std::fs::read(path).context("cannot read")?;
            Ok(resize_exact(&decode_bytes(&bytes)?, size))
        })
        .collect();
    let mut set = DecodedSet {
        images: Vec::with_capacity(decoded.len()),
        labels: Vec::with_capacity(decoded.len()),
        paths: Vec::with_capacity(decoded.len()),
        skipped: Vec::new(),
        size,
    };
    for ((path, label), result) in paths_and_labels.iter().zip(decoded) {
        match result {
            Ok(image) => {
                set.images.push(image);
                set.labels.push(*label);
                set.paths.push(path.clone());
            }
            Err(e) => {
                let reason = format!("{e:#}");
                eprintln!("warning: skipping {}: {reason}", path.display());
                set.skipped.push(Skipped {
                    path: path.clone(),
                    reason,
                });
            }
        }
    }
    set
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

/// The batches of one epoch, built on a background thread (started by the first `next`) and
/// received in order, at most [`PREFETCH`] ahead of the consumer.
///
/// Dropping it early stops the thread: the pending send fails once the receiver is gone, and the
/// drop waits for the thread to exit, so nothing outlives the loader.
pub struct BatchLoader {
    set: Arc<DecodedSet>,
    batch_size: usize,
    shuffle: Option<u64>,
    augment: Option<Augment>,
    augment_seed: u64,
    /// Batches not yet handed out.
    remaining: usize,
    worker: Worker,
}

enum Worker {
    NotStarted,
    Running {
        batches: Receiver<Batch>,
        thread: JoinHandle<()>,
    },
    /// No thread could be started: batches are built on the consumer's thread instead.
    Inline {
        plan: Box<Plan>,
        next: usize,
    },
    Finished,
}

impl BatchLoader {
    /// One epoch of `set` in batches of `batch_size`.
    ///
    /// - `shuffle`: `Some(seed)` visits the images in a random order drawn from `seed` (pass a
    ///   different seed each epoch for MATLAB's 'every-epoch'); `None` keeps set order.
    /// - `augment`: random flip/translation for training; `None` for evaluation. The draws come from
    ///   [`BatchLoader::with_augment_seed`], by default the shuffle seed (or 0).
    /// - `drop_last`: leave out the last incomplete batch, as MATLAB's training does (an epoch is
    ///   floor(n / batch) iterations); evaluation keeps it.
    ///
    /// Errors on a zero batch size, or a set whose images are not all `size` x `size`.
    pub fn epoch(
        set: Arc<DecodedSet>,
        batch_size: usize,
        shuffle: Option<u64>,
        augment: Option<Augment>,
        drop_last: bool,
    ) -> Result<Self> {
        ensure!(batch_size > 0, "batch size must be at least 1");
        ensure!(
            set.images.len() == set.labels.len(),
            "decoded set has {} images but {} labels",
            set.images.len(),
            set.labels.len()
        );
        let expected = (set.size, set.size);
        if let Some(i) = set
            .images
            .iter()
            .position(|img| img.dimensions() != expected)
        {
            bail!(
                "image {i} of the decoded set is {:?}, not {}x{}",
                set.images[i].dimensions(),
                set.size,
                set.size
            );
        }
        let remaining = if drop_last {
            set.len() / batch_size
        } else {
            set.len().div_ceil(batch_size)
        };
        Ok(BatchLoader {
            set,
            batch_size,
            shuffle,
            augment,
            augment_seed: shuffle.unwrap_or(0),
            remaining,
            worker: Worker::NotStarted,
        })
    }

    /// Sets the seed of the augmentation draws; give each epoch its own, or every epoch sees the
    /// same flips and shifts. Has no effect once batches have been taken.
    pub fn with_augment_seed(mut self, seed: u64) -> Self {
        self.augment_seed = seed;
        self
    }

    /// The epoch's order and augmentation key; cheap (a shuffle of the indices).
    fn plan(&self) -> Plan {
        let mut order: Vec<usize> = (0..self.set.len()).collect();
        if let Some(seed) = self.shuffle {
            order.shuffle(&mut rng_for("shuffle", seed, 0));
        }
        Plan {
            set: Arc::clone(&self.set),
            batch_size: self.batch_size,
            order,
            augment: self.augment,
            augment_rng: rng_for("augment", self.augment_seed, 0),
        }
    }

    /// Starts producing batches `first..first + remaining` of the epoch.
    fn start(&mut self, first: usize) {
        let plan = self.plan();
        let count = self.remaining;
        let (sender, batches) = sync_channel(PREFETCH);
        let work = move || {
            for k in first..first + count {
                if sender.send(plan.batch(k)).is_err() {
                    return; // The consumer stopped early.
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
                eprintln!(
                    "warning: cannot start a batch-loading thread ({e}); loading without prefetch"
                );
                Worker::Inline {
                    plan: Box::new(self.plan()),
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
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.remaining == 0 {
            self.finish();
            return None;
        }
        if matches!(self.worker, Worker::NotStarted) {
            self.start(0);
        }
        let batch = match &mut self.worker {
            Worker::Running { batches, .. } => batches.recv().ok(),
            Worker::Inline { plan, next } => {
                *next += 1;
                Some(plan.batch(*next - 1))
            }
            Worker::NotStarted | Worker::Finished => None,
        };
        match batch {
            Some(batch) => {
                self.remaining -= 1;
                Some(batch)
            }
            None => {
                self.finish(); // Re-raises a panic of the thread, the only way to get here early.
                None
            }
        }
    }

    /// Skipping before the first batch (as `skip` does when resuming mid-epoch) starts at batch `n`
    /// instead of building and discarding the earlier ones.
    fn nth(&mut self, n: usize) -> Option<Batch> {
        if matches!(self.worker, Worker::NotStarted) {
            let skipped = n.min(self.remaining);
            self.remaining -= skipped;
            if self.remaining > 0 {
                self.start(skipped);
            }
            return self.next();
        }
        for _ in 0..n {
            self.next()?;
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

/// Everything needed to build any batch of one epoch.
struct Plan {
    set: Arc<DecodedSet>,
    batch_size: usize,
    /// The epoch's visiting order (indices into the set).
    order: Vec<usize>,
    augment: Option<Augment>,
    /// Image at epoch position p draws its augmentation from stream p of this generator, so a batch
    /// is the same whatever rayon's scheduling, and whether or not earlier batches were built.
    augment_rng: ChaCha8Rng,
}

impl Plan {
    /// Batch `k` of the epoch, its images filled in parallel.
    fn batch(&self, k: usize) -> Batch {
        let start = k * self.batch_size;
        let indices = &self.order[start..(start + self.batch_size).min(self.order.len())];
        let size = self.set.size as usize;
        let per_image = 3 * size * size;
        let mut data = vec![0.0; indices.len() * per_image];
        data.par_chunks_mut(per_image)
            .zip(indices)
            .enumerate()
            .for_each(|(slot, (out, &i))| match &self.augment {
                Some(aug) => {
                    let mut rng = self.augment_rng.clone();
                    rng.set_stream((start + slot) as u64);
                    write_augmented_chw(&self.set.images[i], aug, &mut rng, out);
                }
                None => write_chw_normalized(&self.set.images[i], out),
            });
        Batch {
            data,
            labels: indices.iter().map(|&i| self.set.labels[i] as u32).collect(),
            indices: indices.to_vec(),
        }
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
            images: (0..n)
                .map(|i| RgbImage::from_pixel(4, 4, Rgb([i as u8, 0, 0])))
                .collect(),
            labels: (0..n).map(|i| i % 2).collect(),
            paths: (0..n).map(|i| PathBuf::from(format!("{i}.png"))).collect(),
            skipped: Vec::new(),
            size: 4,
        })
    }

    fn patterned_set(n: usize) -> Arc<DecodedSet> {
        Arc::new(DecodedSet {
            images: (0..n).map(|i| pattern(16, 16, i as u8)).collect(),
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
        BatchLoader::epoch(Arc::clone(set), batch, shuffle, None, drop_last).unwrap()
    }

    fn order(batches: &[Batch]) -> Vec<usize> {
        batches.iter().flat_map(|b| b.indices.clone()).collect()
    }

    #[test]
    fn evaluation_serves_every_image_once_in_order_with_partial_batch() {
        let set = numbered_set(23);
        let batches = loader(&set, 5, None, false);
        assert_eq!(batches.len(), 5);
        let batches: Vec<Batch> = batches.collect();
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
            let batches: Vec<Batch> = loader(&set, 8, Some(seed), true).collect();
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
        let mut seen = order(&loader(&set, 8, Some(3), false).collect::<Vec<_>>());
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn augmentation_is_reproducible_and_follows_its_seed() {
        let set = patterned_set(12);
        let aug = Some(Augment {
            flip: true,
            translate: 4,
        });
        let epoch = |augment_seed: u64| -> Vec<Batch> {
            BatchLoader::epoch(Arc::clone(&set), 4, Some(9), aug, true)
                .unwrap()
                .with_augment_seed(augment_seed)
                .collect()
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
        let plain: Vec<Batch> = loader(&set, 4, Some(9), true).collect();
        assert_eq!(order(&a), order(&plain));
        assert_ne!(a[0].data, plain[0].data, "augmentation changed nothing");
    }

    #[test]
    fn skipping_batches_gives_the_same_later_batches() {
        let set = patterned_set(30);
        let aug = Some(Augment {
            flip: true,
            translate: 3,
        });
        let make = || BatchLoader::epoch(Arc::clone(&set), 4, Some(5), aug, false).unwrap();
        let all: Vec<Batch> = make().collect();
        assert_eq!(all.len(), 8);
        let resumed = make().skip(3);
        assert_eq!(resumed.len(), 5);
        assert_eq!(resumed.collect::<Vec<_>>(), all[3..]);
        assert_eq!(make().skip(20).count(), 0);
        let mut running = make();
        running.next();
        assert_eq!(running.nth(1).unwrap(), all[2], "nth after starting");
    }

    #[test]
    fn inline_fallback_serves_the_same_batches() {
        let set = patterned_set(10);
        let aug = Some(Augment {
            flip: true,
            translate: 2,
        });
        let make = || BatchLoader::epoch(Arc::clone(&set), 3, Some(4), aug, false).unwrap();
        let threaded: Vec<Batch> = make().collect();
        let mut inline = make();
        // What `start` does when no thread can be spawned.
        inline.worker = Worker::Inline {
            plan: Box::new(inline.plan()),
            next: 0,
        };
        assert_eq!(inline.collect::<Vec<_>>(), threaded);
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
            BatchLoader::epoch(numbered_set(4), 0, None, None, false)
                .err()
                .unwrap()
        );
        assert!(message.contains("batch size"), "{message}");
        let mut odd = (*numbered_set(3)).clone();
        odd.images[1] = RgbImage::new(5, 4);
        let message = format!(
            "{:#}",
            BatchLoader::epoch(Arc::new(odd), 2, None, None, false)
                .err()
                .unwrap()
        );
        assert!(
            message.contains("image 1") && message.contains("(5, 4)"),
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
        assert!(set.images.iter().all(|img| img.dimensions() == (12, 12)));
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
        let Some(data) = crate::testdata::shared_data("") else {
            return;
        };
        let ds = crate::data::scan(&data.join("brickwork-cracks")).unwrap();
        let fractions = crate::data::Fractions {
            train: 0.1,
            val: 0.1,
            test: 0.1,
        };
        let split = crate::data::split_each_label(&ds, &fractions, 2020).unwrap();
        assert_eq!(
            split.duplicates_dropped, 0,
            "the README says duplicates were removed"
        );
        let manifest = crate::data::Manifest::from_split(&ds, &fractions, 2020, &split);
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
        let aug = Some(Augment {
            flip: true,
            translate: 30,
        });
        let batches: Vec<Batch> = BatchLoader::epoch(set, 16, Some(1), aug, true)
            .unwrap()
            .collect();
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
