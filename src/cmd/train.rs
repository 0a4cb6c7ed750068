//! `crackscope train`: a new or resumed run prepared and run to its end by [`crate::app::session`].

use anyhow::Result;

use crate::app::session::{
    prepare_new, prepare_resume, resolve_recipe, run_to_end, Display, RunEnd,
};
use crate::cli::TrainArgs;
use crate::run::recipe::Recipe;
use crate::run::NewRun;

pub fn train(args: &TrainArgs) -> Result<RunEnd> {
    if args.one_class {
        crate::cmd::oneclass::train(args)?;
        return Ok(RunEnd::Finished);
    }
    let display = Display::choose(&args.display, false)?;
    let prepared = match &args.resume {
        Some(run) => prepare_resume(run, &args.recipe)?,
        None => {
            let recipe = resolve_recipe(&args.recipe, Recipe::default())?;
            prepare_new(recipe, NewRun::create(args.run.as_deref())?)?
        }
    };
    run_to_end(prepared, display)
}
