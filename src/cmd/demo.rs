//! `crackscope demo`: the one-command tour. It makes a synthetic crack dataset inside the run
//! directory, shows its sample tiles, trains on it with `config/demo.toml` and tests the result.

use anyhow::Result;

use crate::cli::DemoArgs;
use crate::cmd::samples::{sample_grid, save_png, show};
use crate::cmd::train::{prepare_new, resolve_recipe, run_to_end, Display, RunEnd};
use crate::config::Recipe;
use crate::data::synth::{generate, SynthOptions};
use crate::run::NewRun;

pub fn demo(args: &DemoArgs) -> Result<RunEnd> {
    let mut recipe = resolve_recipe(&args.train, Recipe::demo())?;
    // Made and locked here (the synthetic data goes inside); removed again if the start fails.
    let new = NewRun::create(args.run.as_deref())?;
    let run = new.run.clone();
    let data = run.path.join("data");
    let options = SynthOptions {
        per_class: args.per_class,
        size: recipe.data.input_size,
        seed: recipe.data.split_seed,
    };
    println!(
        "making {} synthetic images in {}",
        2 * args.per_class,
        data.display()
    );
    generate(&data, &options)?;
    recipe.data.root = data.clone();

    let grid = sample_grid(&data, 16, recipe.data.split_seed)?;
    save_png(&grid, &run.samples())?;

    let display = Display::choose(&args.display, true)?;
    if matches!(display, Display::Headless) {
        show(&grid, Some(&run.samples()))?;
    }
    let prepared = prepare_new(recipe, new)?;
    run_to_end(prepared, display)
}
