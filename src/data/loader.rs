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

use anyhow::{ensure, Context, Result};
use image::RgbImage;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
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

/// How one epoch is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochOptions {
    pub batch_size: usize,
    /// With `epoch`, determines the shuffle order and every augmentation draw.
    pub seed: u64,
    pub epoch: u64,
    /// Reorder at random each epoch (MATLAB's 'Shuffle', 'every-epoch'); otherwise set order.
    pub shuffle: bool,
    pub augment: Option<Augment>,
    /// Leave out the last incomplete batch, as MATLAB does in training (floor(n / batch) iterations).
    pub drop_last: bool,
}

impl EpochOptions {
    /// Shuffled, optionally augmented, last partial batch dropped: what `trainNetwork` does.
    pub fn training(batch_size: usize, seed: u64, epoch: u64, augment: Option<Augment>) -> Self {
        EpochOptions {
            batch_size,
            seed,
            epoch,
            shuffle: true,
            augment,
            drop_last: true,
        }
    }

    /// In order, unaugmented, every image: what `classify` does.
    pub fn evaluation(batch_size: usize) -> Self {
        EpochOptions {
            batch_size,
            seed: 0,
            epoch: 0,
            shuffle: false,
            augment: None,
            drop_last: false,
        }
    }

    /// How many batches an epoch over `n` images has.
    pub fn batch_count(&self, n: usize) -> usize {
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }
}

/// The batches of one epoch, built on a background thread and received in order.
///
/// Dropping it early stops the thread: the pending send fails once the receiver is gone, and the
/// drop waits for the thread to exit, so nothing outlives the loader.
pub struct BatchLoader {
    batches: Option<Receiver<Batch>>,
    worker: Option<JoinHandle<()>>,
    remaining: usize,
}

impl BatchLoader {
    /// Starts serving one epoch of `set`. Errors on a zero batch size or an image whose size is not
    /// the set's.
    pub fn epoch(set: Arc<DecodedSet>, options: EpochOptions) -> Result<Self> {
        ensure!(options.batch_size > 0, "batch size must be at least 1");
        ensure!(
            set.images.len() == set.labels.len(),
            "decoded set has {} images but {} labels",
            set.images.len(),
            set.labels.len()
        );
        if let Some(i) = set
            .images
            .iter()
            .position(|img| img.dimensions() != (set.size, set.size))
        {
            anyhow::bail!(
                "image {} of the decoded set is {:?}, not {}x{}",
                i,
                set.images[i].dimensions(),
                set.size,
                set.size
            );
        }
        let remaining = options.batch_count(set.len());
        let (sender, batches) = sync_channel(PREFETCH);
        let worker = std::thread::Builder::new()
            .name(format!("crackscope-batches-epoch{}", options.epoch))
            .spawn(move || {
                let mut rng = rng_for("epoch", options.seed, options.epoch);
                let mut order: Vec<usize> = (0..set.len()).collect();
                if options.shuffle {
                    order.shuffle(&mut rng);
                }
                for indices in order.chunks(options.batch_size).take(remaining) {
                    let batch = build_batch(&set, indices, options.augment, &mut rng);
                    if sender.send(batch).is_err() {
                        return; // The consumer stopped early.
                    }
                }
            })
            .context("cannot start the batch-loading thread")?;
        Ok(BatchLoader {
            batches: Some(batches),
            worker: Some(worker),
            remaining,
        })
    }

    /// Waits for the worker; re-raises its panic, if any, on the consumer's thread rather than
    /// letting the epoch end silently short.
    fn finish(&mut self) {
        self.batches = None;
        if let Some(worker) = self.worker.take() {
            if let Err(panic) = worker.join() {
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
        match self.batches.as_ref()?.recv() {
            Ok(batch) => {
                self.remaining -= 1;
                Some(batch)
            }
            Err(_) => {
                self.finish();
                None
            }
        }
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

/// Fills one batch, images in parallel. Each image's augmentation gets its own rng seeded from
/// the epoch stream in batch order, so the result does not depend on how rayon schedules threads.
fn build_batch(
    set: &DecodedSet,
    indices: &[usize],
    augment: Option<Augment>,
    rng: &mut ChaCha8Rng,
) -> Batch {
    let per_image = 3 * set.size as usize * set.size as usize;
    let mut data = vec![0.0; indices.len() * per_image];
    match augment {
        Some(aug) => {
            let seeds: Vec<u64> = indices.iter().map(|_| rng.random()).collect();
            data.par_chunks_mut(per_image)
                .zip(indices)
                .zip(seeds)
                .for_each(|((out, &i), seed)| {
                    write_augmented_chw(
                        &set.images[i],
                        &aug,
                        &mut ChaCha8Rng::seed_from_u64(seed),
                        out,
                    )
                });
        }
        None => {
            data.par_chunks_mut(per_image)
                .zip(indices)
                .for_each(|(out, &i)| write_chw_normalized(&set.images[i], out));
        }
    }
    Batch {
        data,
        labels: indices.iter().map(|&i| set.labels[i] as u32).collect(),
        indices: indices.to_vec(),
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

    fn index_encoded_in(batch: &Batch, slot: usize) -> usize {
        let red = batch.data[slot * 48];
        (((red * IMAGENET_STD[0]) + IMAGENET_MEAN[0]) * 255.0).round() as usize
    }

    fn epoch(set: &Arc<DecodedSet>, options: EpochOptions) -> Vec<Batch> {
        BatchLoader::epoch(Arc::clone(set), options)
            .unwrap()
            .collect()
    }

    #[test]
    fn evaluation_serves_every_image_once_in_order_with_partial_batch() {
        let set = numbered_set(23);
        let loader = BatchLoader::epoch(Arc::clone(&set), EpochOptions::evaluation(5)).unwrap();
        assert_eq!(loader.len(), 5);
        let batches: Vec<Batch> = loader.collect();
        let sizes: Vec<usize> = batches.iter().map(|b| b.indices.len()).collect();
        assert_eq!(sizes, [5, 5, 5, 5, 3]);
        let indices: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
        assert_eq!(indices, (0..23).collect::<Vec<_>>());
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
    fn training_shuffles_differently_each_epoch_and_drops_partial_batch() {
        let set = numbered_set(50);
        let order = |e: u64| -> Vec<usize> {
            let batches = epoch(&set, EpochOptions::training(8, 42, e, None));
            assert_eq!(batches.len(), 6, "floor(50 / 8) batches");
            assert!(batches.iter().all(|b| b.indices.len() == 8));
            batches.iter().flat_map(|b| b.indices.clone()).collect()
        };
        let (first, second) = (order(0), order(1));
        assert_ne!(first, second);
        assert_eq!(
            first,
            order(0),
            "same seed and epoch must give the same order"
        );
        let mut sorted = first.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 48, "no image twice in an epoch");
        assert_ne!(first, (0..48).collect::<Vec<_>>());
    }

    #[test]
    fn shuffled_epoch_without_drop_last_covers_every_index_once() {
        let set = numbered_set(50);
        let options = EpochOptions {
            drop_last: false,
            ..EpochOptions::training(8, 1, 3, None)
        };
        let mut seen: Vec<usize> = epoch(&set, options)
            .iter()
            .flat_map(|b| b.indices.clone())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn augmented_batches_are_reproducible_and_vary_by_epoch() {
        let images: Vec<RgbImage> = (0..12).map(|i| pattern(16, 16, i as u8)).collect();
        let set = Arc::new(DecodedSet {
            labels: vec![0; 12],
            paths: vec![PathBuf::new(); 12],
            images,
            skipped: Vec::new(),
            size: 16,
        });
        let aug = Some(Augment {
            flip: true,
            translate: 4,
        });
        let a = epoch(&set, EpochOptions::training(4, 9, 0, aug));
        assert_eq!(a, epoch(&set, EpochOptions::training(4, 9, 0, aug)));
        let plain = epoch(
            &set,
            EpochOptions {
                augment: None,
                ..EpochOptions::training(4, 9, 0, aug)
            },
        );
        assert_eq!(
            a[0].indices, plain[0].indices,
            "augmentation must not change the order"
        );
        assert_ne!(a[0].data, plain[0].data, "augmentation changed nothing");
        assert_ne!(a, epoch(&set, EpochOptions::training(4, 9, 1, aug)));
    }

    #[test]
    fn dropping_the_loader_early_stops_its_thread() {
        let set = numbered_set(200);
        let start = Instant::now();
        for _ in 0..20 {
            let mut loader =
                BatchLoader::epoch(Arc::clone(&set), EpochOptions::evaluation(1)).unwrap();
            assert!(loader.next().is_some());
            // Give the worker time to fill the channel and block on send.
            std::thread::sleep(Duration::from_millis(5));
            drop(loader);
        }
        assert!(start.elapsed() < Duration::from_secs(10), "drop hung");
    }

    #[test]
    fn bad_options_are_errors() {
        let set = numbered_set(4);
        let message = format!(
            "{:#}",
            BatchLoader::epoch(set, EpochOptions::evaluation(0))
                .err()
                .unwrap()
        );
        assert!(message.contains("batch size"), "{message}");
        let mut odd = (*numbered_set(3)).clone();
        odd.images[1] = RgbImage::new(5, 4);
        let message = format!(
            "{:#}",
            BatchLoader::epoch(Arc::new(odd), EpochOptions::evaluation(2))
                .err()
                .unwrap()
        );
        assert!(
            message.contains("image 1") && message.contains("(5, 4)"),
            "{message}"
        );
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
        assert!(set.images.iter().all(|img| img.dimensions() == (12, 12)));
        let skipped: Vec<&PathBuf> = set.skipped.iter().map(|s| &s.path).collect();
        assert_eq!(skipped, [&truncated, &missing]);
        assert!(
            set.skipped[0].reason.contains("truncated"),
            "{}",
            set.skipped[0].reason
        );
        assert!(
            set.skipped[1].reason.contains("cannot read"),
            "{}",
            set.skipped[1].reason
        );
    }
}
