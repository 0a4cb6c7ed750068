//! Grad-CAM and friends: why did the network pick a class? Each method turns one layer's feature
//! map into a low-resolution [`heatmap::Heatmap`]; the rest of this module draws it the way the
//! seed's MATLAB demo does (bicubic resize, jet, half-transparent overlay).

pub mod colormap;
pub mod figure;
pub mod heatmap;
#[cfg(test)]
mod localization;
pub mod methods;
pub mod overlay;
pub mod resize;
pub mod settings;
pub mod timing;
