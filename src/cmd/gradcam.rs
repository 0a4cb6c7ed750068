//! `crackscope gradcam`: heatmaps of image files or a run's test images (see [`crate::app::heatmaps`]).

pub use crate::app::heatmaps::gradcam;
