//! `crackscope gradcam`: heatmaps of image files or of a run's test images, for a model of
//! either kind (see [`crate::app::heatmaps`]); prints a line per image (or JSON) and shows the
//! figure inline on a terminal.

use std::io::Write;

use anyhow::Result;

use crate::app::heatmaps::{heatmaps, Figure, HeatmapRecord, HeatmapRequest};
use crate::cli::GradcamArgs;
use crate::imaging::terminal::print_inline;

pub fn gradcam(args: &GradcamArgs) -> Result<()> {
    let (device, _) = crate::model::device::resolve(args.device)?;
    let request = HeatmapRequest {
        model: args.model.clone(),
        images: args.images.clone(),
        run: args.run.clone(),
        count: args.count,
        misclassified: args.misclassified,
        seed: args.seed,
        out: args.out.clone(),
        class: args.class.clone(),
        method: args.method,
        layer: args.layer.clone(),
        alpha: args.alpha,
        colormap: args.colormap,
        options: args.model_options.load_options(),
    };
    match heatmaps(&request, &device)? {
        Some(figure) => print_figure(args, &figure),
        None if args.json => say("[]\n"),
        None => say("the model classifies every test image correctly: nothing to show\n"),
    }
}

/// JSON, or a line per image and the figure (inline on a terminal; on a pipe or file the printed
/// paths say where the pictures are).
fn print_figure(args: &GradcamArgs, figure: &Figure) -> Result<()> {
    if args.json {
        return say(&format!(
            "{}\n",
            serde_json::to_string_pretty(&figure.records)?
        ));
    }
    let mut text = String::new();
    let mut one_class = false;
    for record in &figure.records {
        match record {
            HeatmapRecord::Class(r) => {
                let truth = r
                    .truth
                    .as_ref()
                    .map(|t| format!(", true class {t}"))
                    .unwrap_or_default();
                let explained = if r.label == r.predicted {
                    String::new()
                } else {
                    format!(", explaining {}", r.label)
                };
                let written = r
                    .overlay
                    .as_ref()
                    .map(|p| format!(" -> {}", p.display()))
                    .unwrap_or_default();
                text += &format!(
                    "{}: {} {:.3}{truth}{explained}{written}\n",
                    r.path.display(),
                    r.predicted,
                    r.predicted_score
                );
            }
            HeatmapRecord::Anomaly(r) => {
                one_class = true;
                text += &format!("{}: {} {:.4}\n", r.path.display(), r.verdict, r.score);
            }
        }
    }
    if one_class {
        return say(&format!("{text}anomaly maps: {}\n", figure.path.display()));
    }
    text += &format!(
        "figure ({}, {}): {}\n",
        figure.cam.method.name(),
        figure.cam.layer,
        figure.path.display()
    );
    say(&text)?;
    print_inline(&figure.figure, None)?;
    Ok(())
}

/// Writes to stdout; a reader that stopped reading (`| head`) is not an error, nor a panic as
/// `println!` would make it.
fn say(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to stdout"))
        }
        _ => Ok(()),
    }
}
