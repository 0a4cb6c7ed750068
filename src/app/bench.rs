//! `crackscope bench`: the engine's speed on data it makes itself, with the same workload and keys
//! as `scripts/bench_torch.py`, so that the two can be compared side by side (README, "Benchmarks").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use image::codecs::jpeg::JpegEncoder;
use serde::Serialize;

use crate::data::augment::{write_augmented_chw, write_chw_normalized, Augment};
use crate::data::decode::jpeg::decode_with_image_crate;
use crate::data::loader::Residency;
use crate::data::loader::{load, BatchLoader, EpochPlan};
use crate::data::synth::{generate, render, SynthOptions, JPEG_QUALITY, SIZE_RANGE};
use crate::explain::methods::Method;
use crate::explain::timing::time_per_image;
use crate::model::device::DeviceChoice;
use crate::model::{self, SqueezeNet};
use crate::train::optimizer::{Adam, AdamConfig};

/// Untimed runs before the measured ones (caches, buffer pool, lazily built tables), as the script.
const WARMUP: usize = 2;
/// Adam as in the seed recipe and in `bench_torch.py`: learning rate 2e-4, L2 1e-4.
const LEARNING_RATE: f64 = 2e-4;
const L2: f64 = 1e-4;
/// The layer Grad-CAM explains, as the script's `gradcam`.
const GRADCAM_LAYER: &str = "relu_conv10";
/// The seed recipe's augmentation, as the script's transforms.
const AUGMENT: Augment = Augment::SEED;
/// Every `[augment]` key on, at the strengths of scripts/augment_uav75.sh.
const AUGMENT_ALL: Augment = Augment {
    brightness: 0.4,
    contrast: 0.4,
    saturation: 0.4,
    rotate90: true,
    vflip: true,
    scale: [0.8, 1.25],
    blur: 2.0,
    ..Augment::SEED
};

/// What `--json` prints: the five figures under the script's keys, plus what they were measured on.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub engine: String,
    pub device: String,
    pub threads: usize,
    pub batch: usize,
    pub size: usize,
    /// Forward + backward + Adam step on a 2-class SqueezeNet v1.1.
    pub train_images_per_s: f64,
    /// Forward pass without dropout or kept activations.
    pub infer_images_per_s: f64,
    /// Grad-CAM of one image at relu_conv10, overlay included.
    pub gradcam_ms: f64,
    /// Decode + resize of generated JPEGs, then one augmented epoch of batches.
    pub pipeline_images_per_s: f64,
    /// One augmented epoch of batches decoded on the fly from the same JPEGs (the mode of training
    /// sets over the memory budget), after the one-off check that every file decodes.
    pub pipeline_streaming_images_per_s: f64,
    /// `crackscope scan` of one [`SCAN_PHOTO`] photo at the default stride (windows of `size`):
    /// the shared pass, window probabilities, crack map, mask and regions; decoding and PNG
    /// encoding excluded. Megapixels of photo per second.
    pub scan_megapixels_per_s: f64,
    /// The seed's augmentation plus encoding of one decoded image into batch floats, one thread.
    pub augment_images_per_s: f64,
    /// The same with every `[augment]` key on (colour jitter, blur, zoom, turns, flips).
    pub augment_all_images_per_s: f64,
    /// The same photo's windows cut out and classified one by one in batches of 32 (what the
    /// shared pass replaces): timed on the first 64 windows, scaled to all of the photo's.
    pub scan_window_by_window_megapixels_per_s: f64,
    /// Highest resident memory of the process (VmHWM); None where /proc is absent.
    pub peak_rss_mb: Option<f64>,
    /// One-class fitting (features, candidate patches, coreset) on decoded normal images, CPU.
    pub oneclass_fit_images_per_s: f64,
    /// One-class scoring (features, nearest bank entries) of decoded images, CPU, timed in turns
    /// with `infer_images_per_s` (the same load on a shared machine).
    pub oneclass_score_images_per_s: f64,
    /// JPEG decoding alone on one thread with libjpeg-turbo, the decoder crackscope uses.
    pub jpeg_decode_images_per_s: f64,
    /// The same files with the `image` crate's JPEG decoder, used before (for comparison).
    pub jpeg_decode_images_per_s_image_crate: f64,
}

/// The photo size `bench` scans: a 12-megapixel phone or drone photo, as in the concrete dataset's
/// source photos.
pub const SCAN_PHOTO: (u32, u32) = (4032, 3024);

/// What to measure on: the device, the batch and image size, how many timed runs.
#[derive(Debug, Clone, Copy)]
pub struct BenchSettings {
    pub device: DeviceChoice,
    pub batch: usize,
    pub size: u32,
    pub reps: usize,
}

/// Runs every measurement of `args` and reads the peak memory last, so that it covers them all.
pub fn measure(args: &BenchSettings) -> Result<BenchReport> {
    ensure!(args.batch > 0, "--batch must be at least 1");
    ensure!(args.reps > 0, "--reps must be at least 1");
    ensure!(
        args.size >= 17,
        "--size {} is too small: SqueezeNet needs at least 17 pixels",
        args.size
    );
    let (device, name) = crate::model::device::resolve(args.device)?;
    let device_label = if device.is_cpu() { "cpu".into() } else { name };
    let size = args.size as usize;

    let varmap = VarMap::new();
    let model = SqueezeNet::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &device),
        Some(2),
    )?;
    model::init_backbone(&varmap, 0)?;
    model::init_head(&varmap, 0)?;
    model.set_dropout_seed(0);
    let mut optimizer = Adam::new(&varmap, AdamConfig::matlab(LEARNING_RATE, L2))?;
    let (x, y) = synthetic_batch(args.batch, args.size, &device)?;

    // Inside rayon's pool, as the trainer runs (src/cmd/train.rs): the engine's parallel sections
    // then start on the worker threads instead of being handed over one by one.
    let oneclass = rayon::scope(|_| OneClassBench::fit(args.batch, args.size))?;
    let (train_s, infer_s, oneclass_score_s) =
        rayon::scope(|_| -> Result<(Duration, Duration, Duration)> {
            let train = median_time(args.reps, || {
                let logits = model.forward_t(&x, true)?;
                let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
                let grads = loss.backward()?;
                optimizer.step(&grads)?;
                Ok(())
            })?;
            // Classification and one-class scoring take turns, so that both see the same load
            // of a shared machine: their ratio is the comparison the README makes.
            let (infer, score) = paired_median_times(
                args.reps,
                || {
                    model.forward_t(&x, false)?;
                    Ok(())
                },
                || oneclass.score(),
            )?;
            Ok((train, infer, score))
        })?;
    let gradcam = rayon::scope(|_| gradcam_time(&model, &device, size, args.reps * 4))?;
    let pipeline = pipeline_images_per_s(args.batch, args.size, args.reps, Residency::InMemory)?;
    let streaming = pipeline_images_per_s(args.batch, args.size, args.reps, Residency::Streamed)?;
    let jpeg = jpeg_decode_images_per_s(args.size, args.reps)?;
    let augment = augment_images_per_s(args.size, &AUGMENT, args.reps)?;
    let augment_all = augment_images_per_s(args.size, &AUGMENT_ALL, args.reps)?;
    let (scan_s, window_by_window_s) =
        rayon::scope(|_| scan_time(args.size, args.reps.min(3), &device))?;
    let megapixels = f64::from(SCAN_PHOTO.0) * f64::from(SCAN_PHOTO.1) / 1e6;

    Ok(BenchReport {
        engine: format!("crackscope {}", env!("CARGO_PKG_VERSION")),
        device: device_label,
        threads: rayon::current_num_threads(),
        batch: args.batch,
        size,
        train_images_per_s: args.batch as f64 / train_s.as_secs_f64(),
        infer_images_per_s: args.batch as f64 / infer_s.as_secs_f64(),
        gradcam_ms: gradcam.as_secs_f64() * 1000.0,
        pipeline_images_per_s: pipeline,
        pipeline_streaming_images_per_s: streaming,
        scan_megapixels_per_s: megapixels / scan_s.as_secs_f64(),
        scan_window_by_window_megapixels_per_s: megapixels / window_by_window_s,
        augment_images_per_s: augment,
        augment_all_images_per_s: augment_all,
        peak_rss_mb: peak_rss_mb()?,
        oneclass_fit_images_per_s: oneclass.fit_images_per_s,
        oneclass_score_images_per_s: oneclass.queries.len() as f64 / oneclass_score_s.as_secs_f64(),
        jpeg_decode_images_per_s: jpeg.libjpeg_turbo,
        jpeg_decode_images_per_s_image_crate: jpeg.image_crate,
    })
}

/// Windows timed for the window-by-window figure: two batches.
const WINDOWS_TIMED: usize = 64;

/// The median time to scan a synthetic [`SCAN_PHOTO`] photo with `size`-pixel windows, and the
/// seconds window-by-window classification of all its windows takes (from [`WINDOWS_TIMED`]).
fn scan_time(size: u32, reps: usize, device: &Device) -> Result<(Duration, f64)> {
    use crate::scan::map::{scan_photo, ScanOptions};
    let varmap = VarMap::new();
    let model = SqueezeNet::new(
        VarBuilder::from_varmap(&varmap, DType::F32, device),
        Some(2),
    )?;
    model::init_backbone(&varmap, 1)?;
    model::init_head(&varmap, 1)?;
    let loaded = model::LoadedModel {
        model,
        varmap,
        classes: vec!["Negative".into(), "Positive".into()],
        meta: model::CheckpointMeta {
            input_size: Some(size),
            ..Default::default()
        },
        layout: model::HeadLayout::Head,
    };
    let classifier = crate::detector::classifier::Classifier::from_loaded(
        loaded,
        Path::new("random weights"),
        device,
    )?;
    let scan = crate::scan::ScanModel::new(&classifier)?;
    let (w, h) = SCAN_PHOTO;
    let surface = crate::data::synth::render_photo(2, w.max(h), size, true).image;
    let photo = image::imageops::crop_imm(&surface, 0, 0, w, h).to_image();
    drop(surface);
    let opts = ScanOptions::new(crate::core::windows::default_stride(size), 1);
    let shared = median_time(reps, || {
        let map = scan_photo(&scan, &photo, &opts)?;
        let mask = map.mask(0.5);
        std::hint::black_box(crate::scan::regions::regions(&mask));
        Ok(())
    })?;
    let windows = crate::core::windows::grid(w, h, size, opts.stride)?;
    let timed = &windows[..WINDOWS_TIMED.min(windows.len())];
    let alone = median_time(1, || {
        std::hint::black_box(crate::scan::features::classify_windows(
            &scan, &photo, timed, 1,
        )?);
        Ok(())
    })?;
    let whole = alone.as_secs_f64() * windows.len() as f64 / timed.len() as f64;
    Ok((shared, whole))
}

/// `batch` normalised synthetic surfaces (every other one cracked) and their labels.
fn synthetic_batch(batch: usize, size: u32, device: &Device) -> Result<(Tensor, Tensor)> {
    let plane = 3 * (size as usize).pow(2);
    let mut data = vec![0.0f32; batch * plane];
    let mut labels = Vec::with_capacity(batch);
    for (i, out) in data.chunks_exact_mut(plane).enumerate() {
        let crack = i % 2 == 1;
        write_chw_normalized(&render(i as u64, size, crack).image, out);
        labels.push(u32::from(crack));
    }
    let x = Tensor::from_vec(data, (batch, 3, size as usize, size as usize), device)?;
    let y = Tensor::from_vec(labels, batch, device)?;
    Ok((x, y))
}

/// The median wall time of `reps` runs of `work`, after [`WARMUP`] untimed ones.
fn median_time(reps: usize, mut work: impl FnMut() -> Result<()>) -> Result<Duration> {
    for _ in 0..WARMUP {
        work()?;
    }
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        work()?;
        times.push(start.elapsed());
    }
    Ok(median(times))
}

/// The median times of `first` and `second`, run in turns (after [`WARMUP`] runs of each), so
/// that a change of the machine's load between them reaches both.
fn paired_median_times(
    reps: usize,
    mut first: impl FnMut() -> Result<()>,
    mut second: impl FnMut() -> Result<()>,
) -> Result<(Duration, Duration)> {
    for _ in 0..WARMUP {
        first()?;
        second()?;
    }
    let (mut a, mut b) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    for _ in 0..reps {
        let start = Instant::now();
        first()?;
        a.push(start.elapsed());
        let start = Instant::now();
        second()?;
        b.push(start.elapsed());
    }
    Ok((median(a), median(b)))
}

/// The middle value (the mean of the two middle ones for an even count); `times` is not empty.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    let mid = times.len() / 2;
    if times.len() % 2 == 0 {
        (times[mid - 1] + times[mid]) / 2
    } else {
        times[mid]
    }
}

/// The median over `reps` single-image Grad-CAM runs (each after time_per_image's own warm-up).
fn gradcam_time(model: &SqueezeNet, device: &Device, size: usize, reps: usize) -> Result<Duration> {
    let times = (0..reps)
        .map(|_| time_per_image(model, device, size, 1, GRADCAM_LAYER, Method::GradCam, 1))
        .collect::<Result<Vec<_>>>()?;
    Ok(median(times))
}

/// Images per second, median of `reps`, on JPEGs generated into a temporary folder: in memory,
/// decode + resize of every file then one augmented, shuffled epoch of [`BatchLoader`] batches;
/// streamed, one such epoch decoding every image again (its one-off check is not timed).
fn pipeline_images_per_s(
    batch: usize,
    size: u32,
    reps: usize,
    residency: Residency,
) -> Result<f64> {
    // Enough images for a few batches, and never so few that thread start-up dominates.
    let per_class = batch.max(32);
    let dir = TempDir::create()?;
    let summary = generate(
        &dir.path.join("data"),
        &SynthOptions {
            per_class,
            size: size.clamp(32, 4096),
            seed: 0,
        },
    )?;
    let files = jpeg_files(&summary.root)?;
    let load_all = || -> Result<std::sync::Arc<_>> {
        let set = load(&files, size, residency);
        if set.len() != files.len() {
            bail!(
                "{} generated images could not be decoded",
                files.len() - set.len()
            );
        }
        Ok(std::sync::Arc::new(set))
    };
    let checked = match residency {
        Residency::Streamed => Some(load_all()?),
        Residency::InMemory => None,
    };
    let plan = EpochPlan {
        batch_size: batch,
        shuffle: Some(0),
        augment: Some(AUGMENT),
        augment_seed: 0,
        drop_last: false,
    };
    let time = median_time(reps, || {
        let set = match &checked {
            Some(set) => std::sync::Arc::clone(set),
            None => load_all()?,
        };
        for b in BatchLoader::new(set, plan)? {
            std::hint::black_box(b?.data);
        }
        Ok(())
    })?;
    Ok(files.len() as f64 / time.as_secs_f64())
}

/// Images per second through [`write_augmented_chw`] on this thread (decoded image in, batch
/// floats out), median of `reps` passes over a few rendered surfaces.
fn augment_images_per_s(size: u32, augment: &Augment, reps: usize) -> Result<f64> {
    use rand::SeedableRng;
    let images: Vec<_> = (0..32)
        .map(|i| render(3000 + i, size, i % 2 == 1).image)
        .collect();
    let mut out = vec![0.0f32; 3 * (size as usize).pow(2)];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let time = median_time(reps, || {
        for image in &images {
            write_augmented_chw(image, augment, &mut rng, &mut out);
            std::hint::black_box(&out);
        }
        Ok(())
    })?;
    Ok(images.len() as f64 / time.as_secs_f64())
}

/// Normal images fitted on per one-class measurement: the coreset then chooses its full bank
/// (`max_bank` entries) from its full candidate pool, as it would from thousands of images, so
/// the rate is a lower bound for larger sets.
pub const ONECLASS_FIT_IMAGES: usize = 256;

/// A one-class model fitted with the default settings at `size`, on the CPU with random backbone
/// weights (the speed hardly depends on the weights), and the images its scoring is timed on.
struct OneClassBench {
    extractor: crate::detector::oneclass::features::Extractor,
    bank: crate::detector::oneclass::bank::Bank,
    queries: Vec<image::RgbImage>,
    /// One fit of [`ONECLASS_FIT_IMAGES`] rendered surfaces (features, candidates, coreset).
    fit_images_per_s: f64,
}

impl OneClassBench {
    fn fit(batch: usize, size: u32) -> Result<OneClassBench> {
        use crate::detector::oneclass::features::Extractor;
        use crate::detector::oneclass::model::fit_bank;
        let varmap = VarMap::new();
        let model = SqueezeNet::new(
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
            None,
        )?;
        model::init_backbone(&varmap, 0)?;
        // The bank at its largest (`max_bank`), as from thousands of images: the ratio's cap is off.
        let settings = crate::detector::oneclass::Settings {
            input_size: size,
            coreset_ratio: 1.0,
            ..Default::default()
        };
        let extractor = Extractor::new(model, varmap, settings)?;
        let mut images: Vec<_> = (0..ONECLASS_FIT_IMAGES)
            .map(|i| render(1000 + i as u64, size, false).image)
            .collect();
        let start = Instant::now();
        let bank = fit_bank(&extractor, &images, &mut |_| {})?;
        let fit_images_per_s = ONECLASS_FIT_IMAGES as f64 / start.elapsed().as_secs_f64();
        images.truncate(batch.min(images.len()));
        Ok(OneClassBench {
            extractor,
            bank,
            queries: images,
            fit_images_per_s,
        })
    }

    /// Scores the queries once (features and nearest bank entries).
    fn score(&self) -> Result<()> {
        let scored = crate::detector::oneclass::model::score_with(
            &self.extractor,
            &self.bank,
            &self.queries,
        )?;
        std::hint::black_box(scored);
        Ok(())
    }
}

/// Images per second of each JPEG decoder, measured on the same files.
struct JpegDecodeRates {
    libjpeg_turbo: f64,
    image_crate: f64,
}

/// Decodes generated JPEGs (encoded as `generate` writes them) from memory on the calling thread
/// with each decoder in turn, median of `reps`; the decoders must agree on every image's size.
fn jpeg_decode_images_per_s(size: u32, reps: usize) -> Result<JpegDecodeRates> {
    const IMAGES: u64 = 64;
    let side = size.clamp(*SIZE_RANGE.start(), *SIZE_RANGE.end());
    let files = (0..IMAGES)
        .map(|i| -> Result<Vec<u8>> {
            let mut jpeg = Vec::new();
            JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY)
                .encode_image(&render(i, side, i % 2 == 1).image)?;
            Ok(jpeg)
        })
        .collect::<Result<Vec<_>>>()?;
    let rate = |decode: fn(&[u8]) -> Result<image::RgbImage>| -> Result<f64> {
        let time = median_time(reps, || {
            for file in &files {
                let rgb = decode(file)?;
                ensure!(rgb.dimensions() == (side, side), "decoded a wrong size");
                std::hint::black_box(rgb);
            }
            Ok(())
        })?;
        Ok(files.len() as f64 / time.as_secs_f64())
    };
    Ok(JpegDecodeRates {
        libjpeg_turbo: rate(|bytes| {
            crate::data::decode::decode_rgb(bytes, Path::new("generated.jpg"))
        })?,
        image_crate: rate(decode_with_image_crate)?,
    })
}

/// Every file of the class folders of `root`, labelled by folder (sorted: the same order each run).
fn jpeg_files(root: &Path) -> Result<Vec<(PathBuf, usize)>> {
    let mut files = Vec::new();
    for (label, class) in ["Negative", "Positive"].iter().enumerate() {
        let dir = root.join(class);
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            files.push((entry.path(), label));
        }
    }
    files.sort();
    Ok(files)
}

/// A folder of its own under the system's temporary directory, removed when dropped (also on error).
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn create() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("crackscope-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path)
            .with_context(|| format!("cannot create the temporary folder {}", path.display()))?;
        Ok(Self { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The process's peak resident memory in MB from `/proc/self/status` (Linux); None elsewhere.
fn peak_rss_mb() -> Result<Option<f64>> {
    let status = match std::fs::read_to_string("/proc/self/status") {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context("cannot read /proc/self/status"),
    };
    parse_vm_hwm(&status)
        .map(Some)
        .context("/proc/self/status has no readable VmHWM line")
}

/// The `VmHWM:   123456 kB` line of a `/proc/<pid>/status` text, in MB (1024 kB).
fn parse_vm_hwm(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut words = line["VmHWM:".len()..].split_whitespace();
    let kb: f64 = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_or_the_mean_of_the_two_middle_times() {
        let ms = Duration::from_millis;
        assert_eq!(median(vec![ms(9), ms(1), ms(5)]), ms(5));
        assert_eq!(median(vec![ms(8), ms(2), ms(4), ms(100)]), ms(6));
        assert_eq!(median(vec![ms(3)]), ms(3));
    }

    #[test]
    fn reads_the_peak_resident_memory_in_megabytes() {
        let status = "Name:\tcrackscope\nVmPeak:\t  999 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 10 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(2.0));
        assert_eq!(parse_vm_hwm("VmRSS:\t 10 kB\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t lots kB\n"), None);
    }

    #[test]
    fn the_pipeline_figure_is_a_positive_rate_and_leaves_no_folder_behind() {
        let before = leftover_folders();
        for residency in [Residency::InMemory, Residency::Streamed] {
            let rate = pipeline_images_per_s(4, 48, 1, residency).unwrap();
            assert!(rate.is_finite() && rate > 0.0, "{residency:?}: {rate}");
        }
        assert_eq!(leftover_folders(), before);
    }

    #[test]
    fn both_jpeg_decode_figures_are_positive_rates() {
        let rates = jpeg_decode_images_per_s(40, 1).unwrap();
        for rate in [rates.libjpeg_turbo, rates.image_crate] {
            assert!(rate.is_finite() && rate > 0.0, "{rate}");
        }
    }

    fn leftover_folders() -> usize {
        let prefix = format!("crackscope-bench-{}-", std::process::id());
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            })
            .count()
    }
}
