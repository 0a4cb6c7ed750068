//! Training-step profile (ignored by default; it takes about a minute):
//!
//! ```text
//! cargo test --release --lib model::profile -- --ignored --nocapture
//! RAYON_NUM_THREADS=1 cargo test --release --lib model::profile -- --ignored --nocapture
//! ```
//!
//! Times forward, backward and an Adam update on a batch of 32 227x227 images, and shows how the
//! engine's share of it divides among the stages. Reports the best and the median of several
//! steps, in wall time and in CPU time of the whole process: on a shared machine the best step
//! and the CPU time are the least disturbed by other programs.
//!
//! Measured on the 2-core development VM (AMD EPYC, AVX2), machine otherwise idle, against
//! PyTorch 2.15 (torchvision squeezenet1_1 + Linear head, Adam, same batch, same threads):
//!
//! | threads | crackscope train step | PyTorch train step | crackscope inference | PyTorch inference |
//! | ------- | --------------------- | ------------------ | -------------------- | ----------------- |
//! | 1       | 1302 ms (24.6 img/s)  | 2501 ms (12.8)     | 427 ms (75 img/s)    | 993 ms (32)       |
//! | 2       | 724 ms (44.2 img/s)   | 1409 ms (22.7)     | 230 ms (139 img/s)   | 531 ms (60)       |
//!
//! About two thirds of a step is inside gemm's matrix-product kernels (~60 GFLOP/s per core);
//! the rest is unfolding, pooling and the ReLU/bias passes, which are memory-bound.

use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::optim::{AdamW, Optimizer};

use super::arch::STAGES;
use super::engine::{self, profile::process_cpu_ns};
use super::testutil::{random_model, random_tensor};

const BATCH: usize = 32;
const SIDE: usize = 227;
const STEPS: usize = 7;

/// (best, median) of some samples, in milliseconds.
fn best_median(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    (samples[0] * 1e3, samples[samples.len() / 2] * 1e3)
}

#[test]
#[ignore = "profile: run explicitly with --ignored --nocapture"]
fn profile_training_step() {
    let (model, varmap) = random_model(Some(2), 1);
    let mut adam = AdamW::new_lr(varmap.all_vars(), 1e-4).unwrap();
    let x = random_tensor(&[BATCH, 3, SIDE, SIDE], 2);
    let labels: Vec<u32> = (0..BATCH as u32).map(|i| i % 2).collect();
    let targets = Tensor::from_vec(labels, BATCH, &Device::Cpu).unwrap();
    // Per step: total wall, forward, backward, Adam, total CPU (seconds).
    let mut steps: Vec<[f64; 5]> = Vec::new();
    for step in 0..=STEPS {
        if step == 1 {
            engine::profile::take(); // forget the warm-up step
        }
        let cpu0 = process_cpu_ns();
        let t0 = Instant::now();
        let logits = model.forward_t(&x, true).unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &targets).unwrap();
        let t1 = Instant::now();
        let grads = loss.backward().unwrap();
        let t2 = Instant::now();
        adam.step(&grads).unwrap();
        let t3 = Instant::now();
        let cpu = (process_cpu_ns() - cpu0) as f64 * 1e-9;
        let secs = |a: Instant, b: Instant| (b - a).as_secs_f64();
        steps.push([secs(t0, t3), secs(t0, t1), secs(t1, t2), secs(t2, t3), cpu]);
    }
    let times = engine::profile::take();
    let steps = &steps[1..];
    let column = |i: usize| best_median(steps.iter().map(|s| s[i]).collect());
    let ((best, median), (cpu_best, cpu_median)) = (column(0), column(4));
    println!(
        "training step, batch {BATCH} at {SIDE}px, {} threads: best {best:.0} ms ({:.1} images/s), \
         median {median:.0} ms; CPU time best {cpu_best:.0} ms, median {cpu_median:.0} ms",
        rayon::current_num_threads(),
        BATCH as f64 * 1e3 / best,
    );
    let parts = [(1, "forward"), (2, "backward"), (3, "Adam update")];
    for (i, name) in parts {
        let (b, m) = column(i);
        println!("  {name:<12} best {b:>6.0} ms, median {m:>6.0} ms");
    }

    let mut inference = Vec::new();
    for _ in 0..STEPS {
        let t = Instant::now();
        model.forward_t(&x, false).unwrap();
        inference.push(t.elapsed().as_secs_f64());
    }
    let (b, m) = best_median(inference);
    println!(
        "inference forward: best {b:.0} ms ({:.1} images/s), median {m:.0} ms",
        BATCH as f64 * 1e3 / b
    );

    // Stage by stage (medians over the training steps), from the engine's own timings.
    println!(
        "{:<14} {:>8} {:>8} {:>8} {:>8}",
        "stage", "fwd ms", "fwd cpu", "bwd ms", "bwd cpu"
    );
    let mut totals = [0.0; 4];
    for (i, stage) in STAGES.iter().enumerate() {
        let median = |backward: bool, cpu: bool| {
            let samples = times
                .iter()
                .filter(|t| t.0 == i && t.1 == backward)
                .map(|t| if cpu { t.3 } else { t.2 })
                .take(STEPS)
                .collect();
            best_median(samples).1
        };
        let row = [
            median(false, false),
            median(false, true),
            median(true, false),
            median(true, true),
        ];
        println!(
            "{:<14} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            stage.name, row[0], row[1], row[2], row[3]
        );
        totals.iter_mut().zip(row).for_each(|(t, r)| *t += r);
    }
    println!(
        "{:<14} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        "sum of stages", totals[0], totals[1], totals[2], totals[3]
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(peak) = status.lines().find(|l| l.starts_with("VmHWM")) {
        println!(
            "peak resident memory of the test process: {}",
            peak.trim_start_matches("VmHWM:").trim()
        );
    }
}
