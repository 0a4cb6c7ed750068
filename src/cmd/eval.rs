//! `crackscope eval`: classify a labelled set with a saved model (see [`crate::evaluation`]), print
//! the confusion counts and statistics, save `report.json` and `predictions.csv`. Unreadable files
//! are reported and end the command with [`SomeInputsFailed`] once the rest is reported.

use anyhow::{bail, Result};

use crate::cli::EvalArgs;
use crate::config::DataRoots;
use crate::data::inputs::SomeInputsFailed;
use crate::evaluation::{evaluate_folder, report_text, test_split};
use crate::run::report::Report;
use crate::run::RunDir;

pub fn eval(args: &EvalArgs) -> Result<()> {
    if let Some((model, run)) = crate::oneclass::model_file::find(&args.target)? {
        return crate::cmd::oneclass::eval(args, &model, run.as_ref());
    }
    let (device, _) = crate::device::resolve(args.device)?;
    let options = args.model_options.load_options();
    // Saving comes after printing: a run on a read-only disk still shows its results.
    let mut unsaved = None;
    let report = if args.target.is_dir() {
        let run = RunDir::open(&args.target)?;
        match data_roots(args) {
            None => {
                let tested = test_split(&run, &run.best_model(), &options, &device)?;
                unsaved = tested.save(&run).err();
                tested.report
            }
            Some(data) => evaluate_folder(&run.best_model(), &data, &options, &device)?,
        }
    } else {
        let Some(data) = data_roots(args) else {
            bail!(
                "{} is a model file: give --data DIR to evaluate it on a folder-per-class dataset \
                 (or pass a run directory to use its test split)",
                args.target.display()
            );
        };
        evaluate_folder(&args.target, &data, &options, &device)?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if let Some(e) = unsaved {
        eprintln!(
            "warning: the results above could not be saved in {}: {e:#}",
            args.target.display()
        );
    }
    SomeInputsFailed::check_skipped(&report.skipped, report.images)
}

/// The `--data` folders, when any were given.
pub fn data_roots(args: &EvalArgs) -> Option<DataRoots> {
    (!args.data.is_empty()).then(|| DataRoots(args.data.clone()))
}

/// Prints [`report_text`].
pub fn print_report(report: &Report) {
    print!("{}", report_text(report));
}
