//! One module per subcommand: each turns parsed arguments into work and output.

pub mod bench;
pub mod compare;
pub mod demo;
pub mod eval;
pub mod export;
pub mod figures;
pub mod gradcam;
pub mod model;
pub mod patches;
pub mod predict;
pub mod samples;
pub mod scan;
pub mod synth;
pub mod train;
pub mod watch;
pub mod weights;

use crate::detector::familiarity::Check;

/// Said once by commands whose model file has no familiarity summary.
pub(crate) fn no_familiarity_note(model: &std::path::Path) -> String {
    format!(
        "note: {} carries no familiarity summary (files written before models kept one, or by \
         other tools, do not): images unlike its training images cannot be told apart; train or \
         fit again with crackscope to add one",
        model.display()
    )
}

/// The warning for an answer about an image unlike the training images.
pub(crate) fn unfamiliar_warning(what: &str, check: &Check) -> String {
    format!(
        "warning: {what} is unlike the model's training images (feature distance {:.3} over its \
         threshold {:.3}): do not trust the answer",
        check.distance, check.threshold
    )
}
