//! `crackscope synth`: write a synthetic concrete crack dataset.

use std::time::Instant;

use anyhow::Result;

use crate::cli::SynthArgs;
use crate::data::synth::{generate, generate_photos, SynthOptions};

pub fn synth(args: &SynthArgs) -> Result<()> {
    let started = Instant::now();
    if let Some(count) = args.photos {
        let root = generate_photos(&args.out, count, args.size, args.detail, args.seed)?;
        println!(
            "wrote {count} photos of {}x{} px to {} and their crack masks to {} in {:.1}s",
            args.size,
            args.size,
            root.join("photos").display(),
            root.join("masks").display(),
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let options = SynthOptions {
        per_class: args.per_class,
        size: args.size,
        seed: args.seed,
    };
    generate(&args.out, &options)?;
    println!(
        "wrote {} images of {}x{} px to {}/Negative and {}/Positive in {:.1}s",
        2 * args.per_class,
        args.size,
        args.size,
        args.out.display(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
