//! What the dashboard needs to show pictures, asked through one trait so the dashboard knows nothing
//! of candle, decoding or Grad-CAM. Every call may be slow (100 ms and more): the dashboard makes them
//! on a worker thread of its own and shows "rendering…" meanwhile, one call at a time.

use std::path::PathBuf;

use anyhow::Result;
use image::RgbImage;

/// One row of the network summary (Model view).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRow {
    pub name: String,
    /// What the layer is ("Conv2d 3x3/2", "Fire", "ReLU", ...).
    pub kind: String,
    /// Output shape as the user should read it, e.g. "64x56x56".
    pub output: String,
    /// Learnable parameters of this layer.
    pub params: usize,
}

/// One classified test image.
#[derive(Debug, Clone, PartialEq)]
pub struct TestItem {
    pub path: PathBuf,
    /// Index into [`Gallery::classes`].
    pub truth: usize,
    pub predicted: usize,
    /// Softmax probability of the predicted class.
    pub score: f32,
    /// Cross-entropy loss of this image against its true class.
    pub loss: f32,
}

impl TestItem {
    pub fn is_correct(&self) -> bool {
        self.truth == self.predicted
    }

    /// A test image of a one-class run: classes are the kinds (0 normal, 1 anomaly), `predicted`
    /// is the verdict, `score` the distance of the anomaly score from the threshold (so "least
    /// sure first" lists the images nearest to it) and `loss` how far the score lies on the
    /// wrong side of it (so "highest loss first" lists the worst mistakes).
    pub fn scored(path: PathBuf, anomalous: bool, anomaly_score: f32, threshold: f32) -> TestItem {
        let margin = anomaly_score - threshold;
        TestItem {
            path,
            truth: usize::from(anomalous),
            predicted: usize::from(anomaly_score > threshold),
            score: margin.abs(),
            loss: if anomalous { -margin } else { margin },
        }
    }

    /// The anomaly score of an item made by [`TestItem::scored`] with the same threshold.
    pub fn anomaly_score(&self, threshold: f32) -> f32 {
        if self.truth == 1 {
            threshold - self.loss
        } else {
            threshold + self.loss
        }
    }
}

/// How to draw one test picture. Hashable so each drawn variant is cached on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PictureSpec {
    /// Heatmap over the photo, or the plain photo.
    pub overlay: bool,
    /// Opacity of the heatmap in percent (MATLAB's demo uses 50).
    pub alpha_percent: u8,
    /// Index into [`Gallery::methods`].
    pub method: usize,
    /// Index into [`Gallery::layers`].
    pub layer: usize,
    /// The class to explain; `None` explains the predicted class (as the seed demo does).
    pub class: Option<usize>,
}

impl PictureSpec {
    pub fn alpha(&self) -> f32 {
        f32::from(self.alpha_percent) / 100.0
    }
}

impl Default for PictureSpec {
    fn default() -> Self {
        PictureSpec {
            overlay: true,
            alpha_percent: 50,
            method: 0,
            layer: 0,
            class: None,
        }
    }
}

/// The source of everything the dashboard draws as a picture; implemented by the application
/// (Grad-CAM on the trained model) and by a fake in tests.
pub trait Gallery: Send {
    /// Class names, in the index order used by [`TestItem`] and [`PictureSpec::class`].
    fn classes(&self) -> Vec<String>;
    /// Names of the explanation methods (at least one), e.g. "Grad-CAM".
    fn methods(&self) -> Vec<String>;
    /// Names of the layers that can be explained (at least one), e.g. "relu_conv10".
    fn layers(&self) -> Vec<String>;
    /// How the browser draws its first picture (the recipe's Grad-CAM settings).
    fn default_spec(&self) -> PictureSpec {
        PictureSpec::default()
    }
    /// The labelled sample tiles of the dataset as one picture; `None` when there are none to show.
    fn samples(&mut self) -> Result<Option<RgbImage>>;
    /// The network summary, input to output.
    fn summary(&mut self) -> Result<Vec<LayerRow>>;
    /// The classified test images; empty until the run was tested.
    fn test_items(&mut self) -> Result<Vec<TestItem>>;
    /// Test image `item` (index into [`Gallery::test_items`]) drawn as `view` asks, at the
    /// resolution it should be seen at (kitty, sixel and iTerm2 never enlarge it; see
    /// `images::encode`).
    fn picture(&mut self, item: usize, view: &PictureSpec) -> Result<RgbImage>;
    /// Saves that same picture into the run directory and says where.
    fn save_picture(&mut self, item: usize, view: &PictureSpec) -> Result<PathBuf>;
    /// A few fixed validation images with the Grad-CAM of the model as of `iteration`, each with a
    /// caption (its label and the prediction), for the Training view.
    fn validation_cams(&mut self, iteration: usize) -> Result<Vec<(RgbImage, String)>>;
}
