//! `crackscope export`: a classifier or one-class model as an ONNX file (see [`crate::export::onnx`]).

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
         std), outputs {}; classes {}",
        args.out.display(),
        exported.bytes as f64 / 1e6,
        exported.outputs,
        exported.classes.join(", "),
        s = exported.input_size,
    );
    Ok(())
}
