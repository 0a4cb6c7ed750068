//! Grad-CAM and friends: why did the network pick a class? Each method turns one layer's feature
//! map into a low-resolution [`heatmap::Heatmap`]; the rest of this module draws it the way the
//! seed's MATLAB demo does (bicubic resize, jet, half-transparent overlay).

pub(crate) mod colormap;
pub(crate) mod figure;
pub(crate) mod heatmap;
#[cfg(test)]
mod localization;
pub mod methods;
pub(crate) mod overlay;
pub(crate) mod resize;
pub(crate) mod settings;
pub(crate) mod timing;
