//! How heatmaps are made and drawn (layer, method, opacity, colormap), and the file names of the
//! pictures, so that `gradcam`, the dashboard and the figures agree on both.

use anyhow::{ensure, Result};

use super::colormap::Colormap;
use super::methods::Method;
use super::overlay::Style;
use crate::model::CAM_LAYERS;

/// How heatmaps are made and drawn: the recipe's `[gradcam]` keys, typed, after flags.
#[derive(Debug, Clone, PartialEq)]
pub struct CamSettings {
    /// One of [`CAM_LAYERS`].
    pub layer: String,
    pub method: Method,
    pub alpha: f32,
    pub colormap: Colormap,
}

impl Default for CamSettings {
    /// The defaults of `config/default.toml` (the seed's): relu_conv10, the seed's method, jet at
    /// half opacity (the recipe's own test checks that the two agree).
    fn default() -> Self {
        CamSettings {
            layer: "relu_conv10".into(),
            method: Method::default(),
            alpha: 0.5,
            colormap: Colormap::Jet,
        }
    }
}

impl CamSettings {
    /// Flags given on the command line replace the recipe's values.
    pub fn with_overrides(
        mut self,
        layer: Option<&str>,
        method: Option<Method>,
        alpha: Option<f32>,
        colormap: Option<Colormap>,
    ) -> Result<CamSettings> {
        if let Some(layer) = layer {
            self.layer = layer.to_string();
        }
        self.method = method.unwrap_or(self.method);
        self.alpha = alpha.unwrap_or(self.alpha);
        self.colormap = colormap.unwrap_or(self.colormap);
        self.check()?;
        Ok(self)
    }

    pub fn check(&self) -> Result<()> {
        ensure!(
            CAM_LAYERS.contains(&self.layer.as_str()),
            "unknown layer {:?}; feature maps can be taken at: {}",
            self.layer,
            CAM_LAYERS.join(", ")
        );
        ensure!(
            (0.0..=1.0).contains(&self.alpha),
            "heatmap opacity {} is not between 0 and 1",
            self.alpha
        );
        Ok(())
    }

    pub fn style(&self) -> Style {
        Style {
            colormap: self.colormap,
            alpha: self.alpha,
        }
    }
}

/// A method's name as it may appear in a file name ("gradcam++" -> "gradcampp").
pub fn file_safe(method: Method) -> String {
    method.name().replace('+', "p")
}

/// `<stem>-<method>-<layer>.png`: the file of one heatmap picture, the same for `gradcam` and the
/// dashboard, so pictures of other methods or layers never overwrite each other.
pub fn picture_name(stem: &str, method: Method, layer: &str) -> String {
    format!("{stem}-{}-{layer}.png", file_safe(method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picture_names_escape_plus_and_carry_method_and_layer() {
        assert_eq!(
            picture_name("crack", Method::GradCamPlusPlus, "fire9-concat"),
            "crack-gradcampp-fire9-concat.png"
        );
        assert_ne!(
            picture_name("x", Method::Seed, "relu_conv10"),
            picture_name("x", Method::Seed, "fire9-concat")
        );
    }
}
