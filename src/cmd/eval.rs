//! `crackscope eval`: a saved model of either kind on its run's test split or on a folder (see
//! [`crate::app::evaluate`]); prints the report and saves `report.json` and `predictions.csv`.
//! Unreadable files are reported and end the command with [`SomeInputsFailed`] once the rest is
//! reported.

use anyhow::{bail, Result};

use crate::app::evaluate::{evaluate_folder, test_split};
use crate::cli::EvalArgs;
use crate::data::inputs::SomeInputsFailed;
use crate::detector::Detector;
use crate::run::recipe::DataRoots;

pub fn eval(args: &EvalArgs) -> Result<()> {
    let (device, _) = crate::model::device::resolve(args.device)?;
    let (file, run) = crate::app::model_target(&args.target)?;
    let data = (!args.data.is_empty()).then(|| DataRoots::from_specs(args.data.clone()));
    if run.is_none() && data.is_none() {
        bail!(
            "{} is a model file: give --data DIR to evaluate it on a folder-per-class dataset \
             (or pass a run directory to use its test split)",
            args.target.display()
        );
    }
    let detector = Detector::open(&file, &device, &args.model_options.load_options())?;
    // Saving comes after printing: a run on a read-only disk still shows its results.
    let mut unsaved = None;
    let report = match (&run, data) {
        (_, Some(data)) => evaluate_folder(&detector, &data)?,
        (Some(run), None) => {
            let tested = test_split(run, &detector)?;
            unsaved = tested.save(run).err();
            tested.report
        }
        (None, None) => unreachable!("refused above"),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    if let Some(e) = unsaved {
        eprintln!(
            "warning: the results above could not be saved in {}: {e:#}",
            args.target.display()
        );
    }
    SomeInputsFailed::check_skipped(report.skipped(), report.images())
}
