//! `crackscope train` (and `train --one-class`): a new or resumed training, or a one-class fit,
//! prepared and run to its end by [`crate::app::session`], shown on the dashboard or as lines;
//! then the test report.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::{bail, Result};

use crate::app::gallery::RunGallery;
use crate::app::job::{Exit, Observer};
use crate::app::session::{self, Prepared, RunEnd};
use crate::cli::{DisplayArgs, RecipeArgs, TrainArgs};
use crate::detector::Kind;
use crate::run::recipe::Recipe;
use crate::run::steer::Steer;
use crate::run::NewRun;
use crate::tui::{Dashboard, DashboardOptions, GraphicsChoice};
use crate::ui::headless::Headless;

pub fn train(args: &TrainArgs) -> Result<RunEnd> {
    let display = args.display.clone();
    let prepared = if args.one_class {
        if args.resume.is_some() {
            bail!(
                "--resume does not apply to --one-class: fitting is a single pass, start a new run"
            );
        }
        let mut recipe = resolve_recipe(&args.recipe, Recipe::default())?;
        recipe.oneclass.apply(&args.oneclass.overrides());
        recipe.validate("command line")?;
        session::prepare_fit(recipe, args.normal.as_deref(), args.run.as_deref())?
    } else {
        match &args.resume {
            Some(run) => {
                let r = &args.recipe;
                let changes_split = !r.data.is_empty()
                    || r.split.is_some()
                    || !r.split_for.is_empty()
                    || r.seed.is_some()
                    || r.config.is_some();
                session::prepare_resume(run, &r.overrides(), changes_split, args.allow_missing)?
            }
            None => {
                let mut recipe = resolve_recipe(&args.recipe, Recipe::default())?;
                if let Some(init) = &args.init {
                    recipe.train.init = init.clone();
                }
                if let Some(keep) = args.output_network {
                    recipe.train.output_network = keep;
                }
                session::prepare_new(recipe, NewRun::create(args.run.as_deref())?)?
            }
        }
    };
    run_to_end(prepared, &display, false)
}

/// The recipe from `--config` (or `base`), with the command-line flags on top.
pub fn resolve_recipe(args: &RecipeArgs, base: Recipe) -> Result<Recipe> {
    session::resolve_recipe(args.config.as_deref(), &args.overrides(), base)
}

/// Runs a prepared run to its end, shown as `display` says, and prints its report (unless the
/// dashboard was left while the run went on: the terminal may be gone).
pub fn run_to_end(
    prepared: Prepared,
    display: &DisplayArgs,
    land_in_browser: bool,
) -> Result<RunEnd> {
    for note in &prepared.notes {
        println!("{note}");
    }
    let mut observer = observer(display, &prepared, land_in_browser)?;
    let session = session::start(prepared, observer.as_mut())?;
    let left = session.followed() == Exit::LeaveRunning;
    let run = session.run().clone();
    if left {
        say(&match session.kind() {
            Kind::Classifier => format!(
                "training goes on in this process; `crackscope watch {}` shows it again",
                run.path.display()
            ),
            Kind::OneClass => "the fit goes on in this process until it is done".into(),
        });
    }
    let kind = session.kind();
    let ended = session.wait()?;
    if left {
        if kind == Kind::OneClass {
            say(&format!(
                "fitted: `crackscope eval {}` shows the results",
                run.path.display()
            ));
        }
    } else {
        print!("{}", ended.report.text());
        println!("run directory: {}", run.path.display());
        if ended.stopped {
            say(&format!(
                "training was stopped before its end; continue it with `{}`",
                run.resume_command()
            ));
        }
    }
    Ok(if ended.stopped {
        RunEnd::Stopped
    } else {
        RunEnd::Finished
    })
}

/// The dashboard on a terminal unless `--headless`; progress lines otherwise.
fn observer(
    display: &DisplayArgs,
    prepared: &Prepared,
    land_in_browser: bool,
) -> Result<Box<dyn Observer>> {
    if headless(display) {
        return Ok(Box::new(Headless::new()));
    }
    let options = DashboardOptions {
        graphics: GraphicsChoice::resolve(display.graphics)?,
        land_in_browser,
        ..DashboardOptions::default()
    };
    let gallery = RunGallery::open(prepared.run(), prepared.kind())?;
    let steer = prepared.control().map(|c| c as Arc<dyn Steer>);
    Ok(Box::new(Dashboard::live(steer, Box::new(gallery), options)))
}

/// Whether the run is shown as lines: `--headless`, or stdout is not a terminal.
pub fn headless(display: &DisplayArgs) -> bool {
    display.headless || !std::io::stdout().is_terminal()
}

/// Prints a line if stdout still works; after an SSH hang-up it does not, and must not panic.
fn say(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}
