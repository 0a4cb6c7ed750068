//! `crackscope predict`: image files through a model of either kind: each image's most likely
//! classes, or its anomaly score and verdict. A file that cannot be judged is a row with the
//! reason; the command then ends with [`SomeInputsFailed`] (its own exit code) after reporting
//! every other file.

use anyhow::Result;

use crate::cli::PredictArgs;
use crate::data::inputs::{FileOutcome, SomeInputsFailed};
use crate::detector::{Answer, Detector};

pub fn predict(args: &PredictArgs) -> Result<()> {
    let (device, _) = crate::model::device::resolve(args.device)?;
    let (detector, _) =
        crate::app::open_model(&args.model, &device, &args.model_options.load_options())?;
    let outcomes = detector.answer_files(&args.images)?;
    warn_about_inputs(&detector, &outcomes);
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

/// On stderr, so that `--json` output stays one document: a model without a familiarity summary
/// (once), and each answer given for an oversized or unfamiliar image.
fn warn_about_inputs(detector: &Detector, outcomes: &[FileOutcome<Answer>]) {
    if detector.familiarity.is_none() {
        eprintln!("{}", super::no_familiarity_note(&detector.path));
    }
    for answer in outcomes.iter().filter_map(|o| match o {
        FileOutcome::Done(a) => Some(a),
        FileOutcome::Failed { .. } => None,
    }) {
        let path = answer.path().display();
        if let Some(hint) = &answer.input().oversized {
            eprintln!(
                "warning: {path} is {}x{}: {}",
                hint.width, hint.height, hint.advice
            );
        }
        if let Some(check) = answer.input().familiarity.filter(|c| c.unfamiliar) {
            eprintln!("{}", super::unfamiliar_warning(&path.to_string(), &check));
        }
    }
}
