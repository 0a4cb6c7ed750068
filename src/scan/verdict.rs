//! What a scan got right and wrong against a true mask, for the eye: each pixel and each window
//! is a hit, a miss or a false alarm (or nothing to see), in colours of its own.
//!
//! - Pixels follow the pixel scores (`metrics`): a predicted pixel with a true one within the
//!   tolerance, and a true pixel with a predicted one within it, are hits; a predicted pixel with
//!   none is a false alarm; a true pixel with none is a miss.
//! - Windows follow the window scores: the central-region rule says whether a window is a crack
//!   window, clear, or neither (crack pixels near its border only); a crack window reaching the
//!   threshold is a hit, one below it a miss, a clear window reaching it a false alarm. A border
//!   window reaching it is neither right nor wrong, and is outlined in a neutral white.
//!
//! Colours (from Okabe and Ito's palette for colour-blind readers, told apart by lightness as well
//! as hue, and drawn over the photo in grey so that no photo colour competes): hit sky blue,
//! miss yellow, false alarm vermillion.

use image::{GrayImage, Rgb, RgbImage};

use super::map::WindowScore;
use super::metrics::{window_truth, WindowTruth};
use crate::core::mask::grown;

/// A pixel's or a window's verdict, as stored in a verdict image (one byte a pixel); larger codes
/// win when pictures are shrunk, so that errors stay visible zoomed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Verdict {
    None = 0,
    Hit = 1,
    FalseAlarm = 2,
    Miss = 3,
    /// A window reaching the threshold with crack pixels only near its border: not scored.
    Unscored = 4,
}

/// Sky blue (86, 180, 233).
pub const HIT: Rgb<u8> = Rgb([86, 180, 233]);
/// Yellow (240, 228, 66).
pub const MISS: Rgb<u8> = Rgb([240, 228, 66]);
/// Vermillion (213, 94, 0).
pub const FALSE_ALARM: Rgb<u8> = Rgb([213, 94, 0]);
/// Windows not scored.
pub const UNSCORED: Rgb<u8> = Rgb([255, 255, 255]);
/// Opacity of verdict tints over the grey photo: the crack itself stays visible beneath.
pub const TINT_ALPHA: f32 = 0.7;
/// The photo under the verdicts: its grey, dimmed so that light concrete does not wash out yellow.
pub const GREY_DIM: f32 = 0.75;

impl Verdict {
    pub fn from_code(code: u8) -> Verdict {
        match code {
            1 => Verdict::Hit,
            2 => Verdict::FalseAlarm,
            3 => Verdict::Miss,
            4 => Verdict::Unscored,
            _ => Verdict::None,
        }
    }

    pub fn colour(self) -> Option<Rgb<u8>> {
        match self {
            Verdict::None => None,
            Verdict::Hit => Some(HIT),
            Verdict::FalseAlarm => Some(FALSE_ALARM),
            Verdict::Miss => Some(MISS),
            Verdict::Unscored => Some(UNSCORED),
        }
    }
}

/// Every pixel's verdict code (see [`Verdict`]) for a predicted mask against a true one.
pub fn pixel_verdicts(predicted: &GrayImage, truth: &GrayImage, tolerance: u32) -> GrayImage {
    let near_truth = grown(truth, tolerance);
    let near_predicted = grown(predicted, tolerance);
    let mut out = GrayImage::new(predicted.width(), predicted.height());
    let parts = (
        predicted.as_raw(),
        truth.as_raw(),
        near_truth.as_raw(),
        near_predicted.as_raw(),
    );
    for (i, v) in out.as_mut().iter_mut().enumerate() {
        let (p, t) = (parts.0[i] > 0, parts.1[i] > 0);
        let verdict = match (p, t) {
            (true, _) if parts.2[i] > 0 => Verdict::Hit,
            (true, _) => Verdict::FalseAlarm,
            (false, true) if parts.3[i] > 0 => Verdict::Hit,
            (false, true) => Verdict::Miss,
            (false, false) => Verdict::None,
        };
        *v = verdict as u8;
    }
    out
}

/// A window's verdict at `threshold` (see the module's rule).
pub fn window_verdict(truth: &GrayImage, window: &WindowScore, threshold: f32) -> Verdict {
    let said = window.probability >= threshold;
    match (window_truth(truth, window), said) {
        (WindowTruth::Crack, true) => Verdict::Hit,
        (WindowTruth::Crack, false) => Verdict::Miss,
        (WindowTruth::Clear, true) => Verdict::FalseAlarm,
        (WindowTruth::Border, true) => Verdict::Unscored,
        (_, false) => Verdict::None,
    }
}

/// Paints the errors picture into `photo`: the photo in dimmed grey, every pixel verdict tinted,
/// windows outlined in their verdict's colour (`thickness` pixels), hits first so that errors
/// are drawn over them.
pub fn paint(photo: &mut RgbImage, verdicts: &GrayImage, windows: &[(WindowScore, Verdict)]) {
    for (px, &code) in photo.pixels_mut().zip(verdicts.as_raw()) {
        let [r, g, b] = px.0;
        let grey = GREY_DIM * (0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32);
        let mut rgb = [grey; 3];
        if let Some(colour) = Verdict::from_code(code).colour() {
            for (c, o) in rgb.iter_mut().zip(colour.0) {
                *c = TINT_ALPHA * o as f32 + (1.0 - TINT_ALPHA) * *c;
            }
        }
        px.0 = rgb.map(|c| c.round().clamp(0.0, 255.0) as u8);
    }
    let thickness = (photo.width().min(photo.height()) / 500).clamp(1, 4);
    let mut ordered: Vec<&(WindowScore, Verdict)> = windows
        .iter()
        .filter(|(_, v)| *v != Verdict::None)
        .collect();
    ordered.sort_by_key(|(_, v)| match v {
        Verdict::Unscored => 0,
        Verdict::Hit => 1,
        _ => 2,
    });
    for (w, verdict) in ordered {
        let colour = verdict.colour().expect("filtered");
        let (x1, y1) = (w.x + w.size - 1, w.y + w.size - 1);
        for t in 0..thickness {
            for x in w.x..=x1 {
                photo.put_pixel(x, w.y + t, colour);
                photo.put_pixel(x, y1 - t, colour);
            }
            for y in w.y..=y1 {
                photo.put_pixel(w.x + t, y, colour);
                photo.put_pixel(x1 - t, y, colour);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_are_hits_misses_and_false_alarms_within_the_tolerance() {
        let mut truth = GrayImage::new(10, 3);
        let mut predicted = GrayImage::new(10, 3);
        for x in 0..4 {
            truth.put_pixel(x, 1, image::Luma([255]));
        }
        predicted.put_pixel(1, 0, image::Luma([255])); // next to the crack
        predicted.put_pixel(8, 1, image::Luma([255])); // far from it
        let v = pixel_verdicts(&predicted, &truth, 1);
        let at = |x, y| Verdict::from_code(v.get_pixel(x, y).0[0]);
        assert_eq!(at(1, 0), Verdict::Hit);
        assert_eq!(at(8, 1), Verdict::FalseAlarm);
        assert_eq!(at(0, 1), Verdict::Hit, "a predicted pixel within 1 px");
        assert_eq!(at(3, 1), Verdict::Miss, "no predicted pixel within 1 px");
        assert_eq!(at(5, 2), Verdict::None);
        let exact = pixel_verdicts(&predicted, &truth, 0);
        assert_eq!(exact.get_pixel(1, 0).0[0], Verdict::FalseAlarm as u8);
    }

    #[test]
    fn windows_are_judged_by_the_central_region_rule() {
        let mut truth = GrayImage::new(24, 8);
        truth.put_pixel(3, 4, image::Luma([255])); // centre of the window at 0
        truth.put_pixel(15, 0, image::Luma([255])); // corner of the window at 8 only
        let w = |x, p| WindowScore {
            x,
            y: 0,
            size: 8,
            probability: p,
            score: None,
        };
        assert_eq!(window_verdict(&truth, &w(0, 0.9), 0.5), Verdict::Hit);
        assert_eq!(window_verdict(&truth, &w(0, 0.1), 0.5), Verdict::Miss);
        assert_eq!(
            window_verdict(&truth, &w(16, 0.9), 0.5),
            Verdict::FalseAlarm
        );
        assert_eq!(window_verdict(&truth, &w(16, 0.1), 0.5), Verdict::None);
        assert_eq!(window_verdict(&truth, &w(8, 0.9), 0.5), Verdict::Unscored);
        assert_eq!(window_verdict(&truth, &w(8, 0.1), 0.5), Verdict::None);
    }

    #[test]
    fn the_errors_picture_is_grey_with_verdicts_in_their_colours() {
        let mut photo = RgbImage::from_pixel(20, 20, Rgb([200, 100, 50]));
        let mut verdicts = GrayImage::new(20, 20);
        verdicts.put_pixel(10, 10, image::Luma([Verdict::Miss as u8]));
        let window = WindowScore {
            x: 0,
            y: 0,
            size: 8,
            probability: 0.9,
            score: None,
        };
        paint(&mut photo, &verdicts, &[(window, Verdict::FalseAlarm)]);
        let plain = photo.get_pixel(15, 15).0;
        assert!(
            plain[0] == plain[1] && plain[1] == plain[2],
            "grey: {plain:?}"
        );
        assert_eq!(*photo.get_pixel(0, 0), FALSE_ALARM);
        let miss = photo.get_pixel(10, 10).0;
        assert!(
            miss[0] > miss[2] + 100 && miss[1] > miss[2] + 100,
            "yellowish: {miss:?}"
        );
    }
}
