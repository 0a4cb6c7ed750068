//! `crackscope predict`: image files through a model of either kind: each image's most likely
//! classes, or its anomaly score and verdict.

use anyhow::Result;

use crate::cli::PredictArgs;
use crate::detector::Answer;

pub fn predict(args: &PredictArgs) -> Result<()> {
    let (device, _) = crate::model::device::resolve(args.device)?;
    let (detector, _) =
        crate::app::open_model(&args.model, &device, &args.model_options.load_options())?;
    let answers = detector.answer_files(&args.images)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answers)?);
        return Ok(());
    }
    for answer in &answers {
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
    Ok(())
}
