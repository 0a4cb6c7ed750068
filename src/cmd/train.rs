//! `crackscope train`: a new or resumed run prepared and run to its end by [`crate::train::session`].

use anyhow::Result;

use crate::cli::TrainArgs;
use crate::config::Recipe;
use crate::run::NewRun;
use crate::train::session::{
    prepare_new, prepare_resume, resolve_recipe, run_to_end, Display, RunEnd,
};

pub fn train(args: &TrainArgs) -> Result<RunEnd> {
    if args.one_class {
        crate::cmd::oneclass::train(args)?;
        return Ok(RunEnd::Finished);
    }
    let display = Display::choose(&args.display, false)?;
    let prepared = match &args.resume {
        Some(run) => prepare_resume(run, &args.recipe, args.allow_missing)?,
        None => {
            let recipe = resolve_recipe(&args.recipe, Recipe::default())?;
            prepare_new(recipe, NewRun::create(args.run.as_deref())?)?
        }
    };
    run_to_end(prepared, display)
}
