//! The overlay PNG of a scan: the photo, the crack map in the recipe's colormap and opacity, and
//! the crack windows outlined. Painted into the photo's own buffer, a row of the map at a time.

use image::{Rgb, RgbImage};

use super::map::CrackMap;
use crate::explain::colormap::entry_for;
use crate::explain::overlay::Style;

/// Outline colour of crack windows: white stands out on every colormap.
const OUTLINE: Rgb<u8> = Rgb([255, 255, 255]);

/// Blends the map (absolute scale: 0 and 1 are the colormap's ends, so photos compare) over
/// `photo` and outlines the windows whose probability reaches `threshold`.
pub fn paint(photo: &mut RgbImage, map: &CrackMap, style: &Style, threshold: f32) {
    let table = style.colormap.table();
    let width = photo.width() as usize;
    let alpha = style.alpha;
    let raw: &mut [u8] = photo.as_mut();
    map.for_each_row(|y, line| {
        let row = &mut raw[y as usize * width * 3..(y as usize + 1) * width * 3];
        for (px, &v) in row.chunks_exact_mut(3).zip(line) {
            let heat = table[entry_for(v.clamp(0.0, 1.0))].0;
            for (c, h) in px.iter_mut().zip(heat) {
                *c = (alpha * h as f32 + (1.0 - alpha) * *c as f32)
                    .round()
                    .clamp(0.0, 255.0) as u8;
            }
        }
    });
    let thickness = (photo.width().min(photo.height()) / 500).clamp(1, 4);
    for w in map.windows.iter().filter(|w| w.probability >= threshold) {
        let (x1, y1) = (w.x + w.size - 1, w.y + w.size - 1);
        for t in 0..thickness {
            for x in w.x..=x1 {
                photo.put_pixel(x, w.y + t, OUTLINE);
                photo.put_pixel(x, y1 - t, OUTLINE);
            }
            for y in w.y..=y1 {
                photo.put_pixel(w.x + t, y, OUTLINE);
                photo.put_pixel(x1 - t, y, OUTLINE);
            }
        }
    }
}
