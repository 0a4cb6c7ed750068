//! Training-step profile (ignored by default; it takes a minute):
//!
//! ```text
//! cargo test --release --lib model::profile -- --ignored --nocapture
//! ```
//!
//! Times forward, backward and an Adam update on a batch of 32 227x227 images, and shows how the
//! engine's share of it divides among the stages.

use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::optim::{AdamW, Optimizer};

use super::arch::STAGES;
use super::engine;
use super::testutil::{random_model, random_tensor};

const BATCH: usize = 32;
const SIDE: usize = 227;
const STEPS: usize = 5;

#[test]
#[ignore = "profile: run explicitly with --ignored --nocapture"]
fn profile_training_step() {
    let (model, varmap) = random_model(Some(2), 1);
    engine::profile::take();
    let mut adam = AdamW::new_lr(varmap.all_vars(), 1e-4).unwrap();
    let x = random_tensor(&[BATCH, 3, SIDE, SIDE], 2);
    let targets = Tensor::from_vec(
        (0..BATCH as u32).map(|i| i % 2).collect::<Vec<_>>(),
        BATCH,
        &Device::Cpu,
    )
    .unwrap();
    let (mut fwd, mut bwd, mut upd) = (0.0, 0.0, 0.0);
    let mut cpu = 0.0;
    for step in 0..=STEPS {
        let cpu0 = engine::profile::process_cpu_ns();
        let t0 = Instant::now();
        let logits = model.forward_t(&x, true).unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &targets).unwrap();
        let t1 = Instant::now();
        let grads = loss.backward().unwrap();
        let t2 = Instant::now();
        adam.step(&grads).unwrap();
        let t3 = Instant::now();
        if step > 0 {
            cpu += (engine::profile::process_cpu_ns() - cpu0) as f64 * 1e-9;
            fwd += (t1 - t0).as_secs_f64();
            bwd += (t2 - t1).as_secs_f64();
            upd += (t3 - t2).as_secs_f64();
        }
    }
    let per_step = (fwd + bwd + upd) / STEPS as f64;
    println!(
        "training step, batch {BATCH} at {SIDE}px, {} threads: {:.0} ms = forward {:.0} + backward {:.0} + Adam {:.0} ms -> {:.1} images/s",
        rayon::current_num_threads(),
        per_step * 1e3,
        fwd / STEPS as f64 * 1e3,
        bwd / STEPS as f64 * 1e3,
        upd / STEPS as f64 * 1e3,
        BATCH as f64 / per_step
    );
    println!(
        "CPU time per step (all threads): {:.0} ms",
        cpu / STEPS as f64 * 1e3
    );

    let t = Instant::now();
    for _ in 0..STEPS {
        model.forward_t(&x, false).unwrap();
    }
    let inference = t.elapsed().as_secs_f64() / STEPS as f64;
    println!(
        "inference forward: {:.0} ms -> {:.1} images/s",
        inference * 1e3,
        BATCH as f64 / inference
    );

    // Stage by stage, from the engine's own timings of the training steps above.
    let times = engine::profile::take();
    println!(
        "{:<14} {:>8} {:>8} {:>8} {:>8}",
        "stage", "fwd ms", "fwd cpu", "bwd ms", "bwd cpu"
    );
    let mut totals = [0.0; 4];
    for (i, stage) in STAGES.iter().enumerate() {
        // The first entries are the warm-up step; the inference passes add forward entries.
        let mean = |backward: bool, cpu: bool| {
            let t: Vec<f64> = times
                .iter()
                .filter(|t| t.0 == i && t.1 == backward)
                .map(|t| if cpu { t.3 } else { t.2 })
                .collect();
            t[1..=STEPS].iter().sum::<f64>() / STEPS as f64 * 1e3
        };
        let row = [
            mean(false, false),
            mean(false, true),
            mean(true, false),
            mean(true, true),
        ];
        println!(
            "{:<14} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            stage.name, row[0], row[1], row[2], row[3]
        );
        for (t, r) in totals.iter_mut().zip(row) {
            *t += r;
        }
    }
    println!(
        "{:<14} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        "sum of stages", totals[0], totals[1], totals[2], totals[3]
    );
}
