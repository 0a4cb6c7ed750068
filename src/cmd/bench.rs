//! `crackscope bench`: the engine's speed on data it makes itself, with the same workload and keys
//! as `scripts/bench_torch.py` (see [`crate::app::bench`]); JSON or a table.

use std::fmt::Write;

use anyhow::{ensure, Context, Result};

use crate::app::bench::{measure, BenchReport, BenchSettings, ONECLASS_FIT_IMAGES, SCAN_PHOTO};
use crate::cli::BenchArgs;

pub fn bench(args: &BenchArgs) -> Result<()> {
    if let Some(threads) = args.threads {
        ensure!(threads > 0, "--threads must be at least 1");
        // The global pool, not a local one: the batch loader's thread and decode_all use it too.
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("cannot size rayon's thread pool (was it already started?)")?;
    }
    let report = measure(&BenchSettings {
        device: args.device,
        batch: args.batch,
        size: args.size,
        reps: args.reps,
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

/// The report as `bench` prints it without `--json`.
fn table(r: &BenchReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} on {}, {} threads, batch {}, {}x{} px",
        r.engine, r.device, r.threads, r.batch, r.size, r.size
    );
    let _ = writeln!(
        out,
        "  training (forward + backward + Adam)  {:>9.1} images/s",
        r.train_images_per_s
    );
    let _ = writeln!(
        out,
        "  inference                             {:>9.1} images/s",
        r.infer_images_per_s
    );
    let _ = writeln!(
        out,
        "  Grad-CAM at relu_conv10               {:>9.1} ms/image",
        r.gradcam_ms
    );
    let _ = writeln!(
        out,
        "  input pipeline (decode + augment)     {:>9.1} images/s",
        r.pipeline_images_per_s
    );
    let _ = writeln!(
        out,
        "  input pipeline, streamed (per epoch)  {:>9.1} images/s",
        r.pipeline_streaming_images_per_s
    );
    let _ = writeln!(
        out,
        "  augment + encode, seed's keys (1 thr) {:>9.1} images/s",
        r.augment_images_per_s
    );
    let _ = writeln!(
        out,
        "  augment + encode, every key (1 thr)   {:>9.1} images/s",
        r.augment_all_images_per_s
    );
    let _ = writeln!(
        out,
        "  one-class fit ({ONECLASS_FIT_IMAGES} images)             {:>9.1} images/s",
        r.oneclass_fit_images_per_s
    );
    let _ = writeln!(
        out,
        "  one-class scoring                     {:>9.1} images/s ({:.2}x inference, timed in turns)",
        r.oneclass_score_images_per_s,
        r.oneclass_score_images_per_s / r.infer_images_per_s
    );
    let _ = writeln!(
        out,
        "  JPEG decode, 1 thread (libjpeg-turbo) {:>9.1} images/s",
        r.jpeg_decode_images_per_s
    );
    let _ = writeln!(
        out,
        "  JPEG decode, 1 thread (image crate)   {:>9.1} images/s (decoder used before)",
        r.jpeg_decode_images_per_s_image_crate
    );
    let _ = writeln!(
        out,
        "  scan of a {}x{} photo                {:>9.2} megapixels/s",
        SCAN_PHOTO.0, SCAN_PHOTO.1, r.scan_megapixels_per_s
    );
    let _ = writeln!(
        out,
        "  the same, window by window            {:>9.2} megapixels/s",
        r.scan_window_by_window_megapixels_per_s
    );
    match r.peak_rss_mb {
        Some(mb) => {
            let _ = writeln!(out, "  peak memory (VmHWM)                   {mb:>9.1} MB");
        }
        None => {
            let _ = writeln!(
                out,
                "  peak memory (VmHWM)                   not available here"
            );
        }
    }
    out
}
