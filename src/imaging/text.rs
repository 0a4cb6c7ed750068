//! Short ASCII labels burnt into images, the way MATLAB's insertText does it: text at a corner on a
//! filled box, so it stays legible on any background.

use font8x8::legacy::BASIC_LEGACY;
use image::{Rgb, RgbImage};

/// Side of a font8x8 glyph, in unscaled pixels.
const GLYPH: u32 = 8;

/// Width and height in pixels of the box `draw_label` fills for `text` at `scale`: one glyph pixel
/// of padding around one 8 x 8 glyph per character.
pub fn label_size(text: &str, scale: u32) -> (u32, u32) {
    let scale = scale.max(1);
    let glyph = GLYPH.saturating_mul(scale);
    let pad = scale.saturating_mul(2);
    let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
    (
        chars.saturating_mul(glyph).saturating_add(pad),
        glyph.saturating_add(pad),
    )
}

/// Draws `text` in `fg` on a `bg` box whose top-left corner is at (`x`, `y`), each glyph pixel
/// magnified to `scale` x `scale` (a scale of 0 counts as 1). Characters outside printable ASCII are
/// drawn as `?`. Whatever falls outside the image is clipped; an empty `text` draws nothing.
pub fn draw_label(
    img: &mut RgbImage,
    text: &str,
    x: u32,
    y: u32,
    scale: u32,
    fg: Rgb<u8>,
    bg: Rgb<u8>,
) {
    if text.is_empty() {
        return;
    }
    let scale = scale.max(1);
    let (box_w, box_h) = label_size(text, scale);
    fill_clipped(img, x, y, box_w, box_h, bg);
    let glyph = GLYPH.saturating_mul(scale);
    let (origin_x, origin_y) = (x.saturating_add(scale), y.saturating_add(scale));
    for (k, ch) in text.chars().enumerate() {
        let glyph_x = origin_x.saturating_add((k as u32).saturating_mul(glyph));
        if glyph_x >= img.width() {
            break;
        }
        let code = if ch == ' ' || ch.is_ascii_graphic() {
            ch as usize
        } else {
            '?' as usize
        };
        for (row, bits) in BASIC_LEGACY[code].iter().enumerate() {
            for col in 0..GLYPH {
                // font8x8 stores each row with its leftmost pixel in the lowest bit.
                if bits >> col & 1 == 1 {
                    let px = glyph_x.saturating_add(col.saturating_mul(scale));
                    let py = origin_y.saturating_add((row as u32).saturating_mul(scale));
                    fill_clipped(img, px, py, scale, scale, fg);
                }
            }
        }
    }
}

/// Fills the `w` x `h` rectangle at (`x`, `y`) with `colour`, skipping what lies outside `img`.
fn fill_clipped(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, colour: Rgb<u8>) {
    let x_end = x.saturating_add(w).min(img.width());
    let y_end = y.saturating_add(h).min(img.height());
    for py in y..y_end {
        for px in x..x_end {
            img.put_pixel(px, py, colour);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREY: Rgb<u8> = Rgb([90, 90, 90]);
    const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
    const YELLOW: Rgb<u8> = Rgb([255, 255, 0]);

    fn changed_pixels(before: &RgbImage, after: &RgbImage) -> Vec<(u32, u32)> {
        before
            .enumerate_pixels()
            .filter(|(x, y, p)| after.get_pixel(*x, *y) != *p)
            .map(|(x, y, _)| (x, y))
            .collect()
    }

    #[test]
    fn label_paints_box_and_glyphs_inside_box_only() {
        let before = RgbImage::from_pixel(100, 60, GREY);
        let mut after = before.clone();
        draw_label(&mut after, "Crack", 10, 5, 2, BLACK, YELLOW);
        let (w, h) = label_size("Crack", 2);
        assert_eq!((w, h), (5 * 16 + 4, 20));
        let changed = changed_pixels(&before, &after);
        // The whole box changed (yellow background or black ink), nothing outside it did.
        assert_eq!(changed.len() as u32, w * h);
        assert!(changed
            .iter()
            .all(|&(x, y)| (10..10 + w).contains(&x) && (5..5 + h).contains(&y)));
        let ink = after.pixels().filter(|p| **p == BLACK).count();
        let paper = after.pixels().filter(|p| **p == YELLOW).count();
        assert!(ink > 100 && paper > ink, "ink {ink}, paper {paper}");
        // The one-glyph-pixel padding is plain background.
        assert!((10..10 + w)
            .all(|x| *after.get_pixel(x, 5) == YELLOW && *after.get_pixel(x, 6) == YELLOW));
    }

    #[test]
    fn glyphs_follow_font8x8_bit_order() {
        // 'I' in font8x8 is a centred vertical bar; its leftmost column is empty.
        let mut img = RgbImage::from_pixel(10, 10, GREY);
        draw_label(&mut img, "I", 0, 0, 1, BLACK, YELLOW);
        let glyph = BASIC_LEGACY['I' as usize];
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                let expected = if bits >> col & 1 == 1 { BLACK } else { YELLOW };
                assert_eq!(
                    *img.get_pixel(1 + col, 1 + row as u32),
                    expected,
                    "row {row} col {col}"
                );
            }
        }
    }

    #[test]
    fn label_clips_at_image_edges_without_panicking() {
        let before = RgbImage::from_pixel(30, 20, GREY);
        let mut after = before.clone();
        draw_label(&mut after, "Positive", 22, 15, 3, BLACK, YELLOW);
        let changed = changed_pixels(&before, &after);
        assert!(!changed.is_empty());
        assert!(changed.iter().all(|&(x, y)| x >= 22 && y >= 15));

        for (x, y) in [(30, 0), (0, 20), (u32::MAX, u32::MAX), (u32::MAX - 3, 0)] {
            let mut img = before.clone();
            draw_label(&mut img, "Negative", x, y, u32::MAX, BLACK, YELLOW);
            assert_eq!(
                img, before,
                "label at ({x}, {y}) lies outside and must change nothing"
            );
        }
        let mut tiny = RgbImage::new(0, 0);
        draw_label(&mut tiny, "x", 0, 0, 1, BLACK, YELLOW);
    }

    #[test]
    fn empty_text_draws_nothing_and_odd_characters_draw_as_question_marks() {
        let before = RgbImage::from_pixel(40, 20, GREY);
        let mut img = before.clone();
        draw_label(&mut img, "", 0, 0, 1, BLACK, YELLOW);
        assert_eq!(img, before);

        let mut odd = before.clone();
        let mut question = before.clone();
        draw_label(&mut odd, "é\n", 0, 0, 1, BLACK, YELLOW);
        draw_label(&mut question, "??", 0, 0, 1, BLACK, YELLOW);
        assert_eq!(odd, question);
    }
}
