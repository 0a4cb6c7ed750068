//! `crackscope predict`: classify image files with a checkpoint or bare ImageNet weights. A file
//! that cannot be classified is a row with the reason; the command then ends with
//! [`SomeInputsFailed`] (its own exit code) after reporting every other file.

use anyhow::Result;

use crate::classify::Classifier;
use crate::cli::PredictArgs;
use crate::data::inputs::{FileOutcome, SomeInputsFailed};

pub fn predict(args: &PredictArgs) -> Result<()> {
    let (device, _) = crate::device::resolve(args.device)?;
    let model_path = crate::classify::model_file(&args.model)?;
    if crate::oneclass::model_file::is_oneclass_file(&model_path) {
        return crate::cmd::oneclass::predict(args, &model_path);
    }
    let classifier = Classifier::open(&args.model, &device, &args.model_options.load_options())?;
    let results = classifier.classify_files(&args.images)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return SomeInputsFailed::check(&results, "classified");
    }
    for outcome in &results {
        let r = match outcome {
            FileOutcome::Done(r) => r,
            FileOutcome::Failed { path, error } => {
                println!("{}: cannot classify: {error}", path.display());
                continue;
            }
        };
        let mut ranked: Vec<usize> = (0..r.probabilities.len()).collect();
        ranked.sort_by(|&a, &b| r.probabilities[b].total_cmp(&r.probabilities[a]));
        let top: Vec<String> = ranked
            .iter()
            .take(args.top.max(1))
            .map(|&i| format!("{} {:.3}", classifier.classes[i], r.probabilities[i]))
            .collect();
        println!("{}: {}", r.path.display(), top.join(", "));
    }
    SomeInputsFailed::check(&results, "classified")
}
