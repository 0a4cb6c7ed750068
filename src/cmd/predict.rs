//! `crackscope predict`: image files through a model of either kind: each image's most likely
//! classes, or its anomaly score and verdict. A file that cannot be judged is a row with the
//! reason; the command then ends with [`SomeInputsFailed`] (its own exit code) after reporting
//! every other file.

use anyhow::Result;

use crate::cli::PredictArgs;
use crate::data::inputs::{FileOutcome, SomeInputsFailed};
use crate::detector::Answer;

pub fn predict(args: &PredictArgs) -> Result<()> {
    let (device, _) = crate::model::device::resolve(args.device)?;
    let (detector, _) =
        crate::app::open_model(&args.model, &device, &args.model_options.load_options())?;
    let outcomes = detector.answer_files(&args.images)?;
    let (verb, done) = detector.kind().judging();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
        return SomeInputsFailed::check(&outcomes, done);
    }
    for outcome in &outcomes {
        let answer = match outcome {
            FileOutcome::Done(answer) => answer,
            FileOutcome::Failed { path, error } => {
                println!("{}: cannot {verb}: {error}", path.display());
                continue;
            }
        };
        match answer {
            Answer::Class(r) => {
                let mut ranked: Vec<usize> = (0..r.probabilities.len()).collect();
                ranked.sort_by(|&a, &b| r.probabilities[b].total_cmp(&r.probabilities[a]));
                let top: Vec<String> = ranked
                    .iter()
                    .take(args.top.max(1))
                    .map(|&i| format!("{} {:.3}", detector.classes()[i], r.probabilities[i]))
                    .collect();
                println!("{}: {}", r.path.display(), top.join(", "));
            }
            Answer::Anomaly(a) => println!(
                "{}: {} (anomaly score {:.4}, threshold {:.4})",
                a.path.display(),
                a.verdict,
                a.score,
                a.threshold
            ),
        }
    }
    SomeInputsFailed::check(&outcomes, done)
}
