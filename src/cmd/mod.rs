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
