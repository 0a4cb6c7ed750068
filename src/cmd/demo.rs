//! `crackscope demo`: the one-command tour. It makes a synthetic crack dataset inside the run
//! directory, shows its sample tiles, trains on it with `config/demo.toml` and tests the result.

use anyhow::Result;

use crate::app::session::{prepare_new, RunEnd};
use crate::cli::DemoArgs;
use crate::cmd::samples::{save_png, show};
use crate::cmd::train::{headless, resolve_recipe, run_to_end};
use crate::data::samples::sample_grid;
use crate::data::synth::{generate, SynthOptions};
use crate::run::recipe::Recipe;
use crate::run::NewRun;

pub fn demo(args: &DemoArgs) -> Result<RunEnd> {
    let mut recipe = resolve_recipe(&args.train, Recipe::demo())?;
    choose_weights(&mut recipe);
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
    recipe.data.root = crate::run::recipe::DataRoots::one(data.clone());

    let grid = sample_grid(&data, 16, recipe.data.split_seed)?;
    save_png(&grid, &run.samples())?;

    if headless(&args.display) {
        show(&grid, Some(&run.samples()))?;
    }
    let prepared = prepare_new(recipe, new)?;
    run_to_end(prepared, &args.display, true)
}

/// The seed fine-tunes ImageNet weights (transfer learning): the demo does too when they are
/// cached (`crackscope weights fetch`), and trains from scratch otherwise, never downloading on
/// its own. Weights given with --weights or in the recipe are kept.
fn choose_weights(recipe: &mut Recipe) {
    if !recipe.train.weights.as_os_str().is_empty() {
        return;
    }
    let cached = crate::model::fetch::cache_dir()
        .and_then(|dir| crate::model::fetch::cached(&crate::model::fetch::imagenet_url(), &dir));
    match cached {
        Ok(Some(path)) => {
            println!(
                "fine-tuning torchvision's ImageNet weights from the cache ({})",
                path.display()
            );
            recipe.train.weights = path;
        }
        Ok(None) => println!(
            "training from scratch: no ImageNet weights cached (`crackscope weights fetch` gets \
             them, and the demo then fine-tunes them as the seed does)"
        ),
        Err(e) => {
            println!("training from scratch: the cached ImageNet weights are unusable: {e:#}")
        }
    }
}
