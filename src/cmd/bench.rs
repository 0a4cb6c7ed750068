//! `crackscope bench`: the engine's speed on data it makes itself, with the same workload and keys
//! as `scripts/bench_torch.py` (see [`crate::app::bench`]); JSON or a table.

use anyhow::{ensure, Context, Result};

use crate::app::bench::{measure, table, BenchSettings};
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
