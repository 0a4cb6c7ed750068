//! `crackscope export`: a classifier as an ONNX file (see [`crate::export::onnx`]).

use anyhow::Result;

use crate::cli::ExportArgs;

pub fn export(args: &ExportArgs) -> Result<()> {
    let exported = crate::app::export::export_onnx(
        &args.model,
        &args.model_options.load_options(),
        &args.out,
    )?;
    println!(
        "wrote {} ({:.1} MB): input \"image\" [batch, 3, {s}, {s}] (RGB, (pixel / 255 - mean) / \
         std), outputs \"probabilities\" [batch, {k}] and \"cam\" [batch, {k}, {c}, {c}]; classes {}",
        args.out.display(),
        exported.bytes as f64 / 1e6,
        exported.classes.join(", "),
        s = exported.input_size,
        k = exported.classes.len(),
        c = exported.cam_side,
    );
    Ok(())
}
