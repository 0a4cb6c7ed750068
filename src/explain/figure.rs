//! The seed's figure: the explained images in a grid (its 12 in 3 rows of 4), each titled with
//! the predicted class and its score.

use image::RgbImage;

use crate::imaging::grid::labelled_tile;

/// Columns of the seed's `subplot(3, 4, i)`.
pub const COLUMNS: u32 = 4;
/// Panel side in pixels: the network's input size, at which the seed shows its images.
pub const PANEL: u32 = 227;
/// Pixels between panels.
pub const GAP: u32 = 4;

/// The panels (overlays of any size, each resized to [`PANEL`]) with their titles, row by row.
pub fn figure(panels: &[(RgbImage, String)]) -> RgbImage {
    let cols = COLUMNS.min(panels.len().max(1) as u32);
    labelled_tile(panels, cols, PANEL, GAP)
}

/// A panel's title: "Positive 0.998".
pub fn title(class: &str, score: f32) -> String {
    format!("{class} {score:.3}")
}
