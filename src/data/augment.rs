//! The seed demo's training augmentation and the network's input encoding.
//!
//! MATLAB's `imageDataAugmenter('RandXReflection', true, 'RandXTranslation', [-30 30],
//! 'RandYTranslation', [-30 30])` flips left-right with probability 1/2 and shifts by a random
//! whole number of pixels, filling uncovered pixels with black. SqueezeNet (as trained by
//! torchvision) expects planar CHW floats scaled to [0, 1] and standardised per channel with the
//! ImageNet statistics.
//!
//! This runs for every training image of every epoch, so [`write_augmented_chw`] does both in one
//! pass from the stored image straight into the batch buffer, through a byte -> float lookup table.

use std::sync::LazyLock;

use image::RgbImage;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Random augmentation applied to each training image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Augment {
    /// Mirror left-right with probability 1/2.
    pub flip: bool,
    /// Shift x and y independently by a uniform whole number of pixels in `[-translate, translate]`.
    pub translate: u32,
}

/// Per-channel mean of ImageNet in [0, 1] (R, G, B).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// Per-channel standard deviation of ImageNet in [0, 1] (R, G, B).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// `NORMALIZED[c][v]` is the network input for byte `v` in channel `c`.
static NORMALIZED: LazyLock<[[f32; 256]; 3]> = LazyLock::new(|| {
    let mut table = [[0.0; 256]; 3];
    for (c, row) in table.iter_mut().enumerate() {
        for (v, value) in row.iter_mut().enumerate() {
            *value = (v as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        }
    }
    table
});

/// One random draw of the augmentation: output pixel (x, y) shows source pixel (x - dx, y - dy) of
/// the (possibly mirrored) image, black when that falls outside it.
#[derive(Debug, Clone, Copy)]
struct Placement {
    flip: bool,
    dx: i64,
    dy: i64,
}

/// Which output columns of a row show source pixels, and which source columns those are.
struct Span {
    /// Output columns `out_start..out_start + len`; the others are black.
    out_start: usize,
    /// Source columns `src_start..src_start + len`, read right to left when flipped.
    src_start: usize,
    len: usize,
}

impl Placement {
    /// Draws flip first, then dx, then dy, so every entry point consumes the rng identically.
    fn draw(aug: &Augment, rng: &mut impl Rng) -> Self {
        let flip = aug.flip && rng.random_bool(0.5);
        let t = i64::from(aug.translate);
        let (dx, dy) = if t > 0 {
            (rng.random_range(-t..=t), rng.random_range(-t..=t))
        } else {
            (0, 0)
        };
        Placement { flip, dx, dy }
    }

    /// The source row shown in output row `y`, if any.
    fn source_row(&self, y: usize, height: usize) -> Option<usize> {
        let sy = y as i64 - self.dy;
        (0..height as i64).contains(&sy).then_some(sy as usize)
    }

    /// The horizontal overlap of the shifted image with the output (the same for every row).
    fn span(&self, width: usize) -> Span {
        let w = width as i64;
        let out_start = self.dx.clamp(0, w);
        let out_end = (w + self.dx).clamp(out_start, w);
        let len = (out_end - out_start) as usize;
        // Without flip, output x shows column x - dx; mirrored, it shows width - 1 - (x - dx), so
        // the covered output columns map to the mirror image of the same range.
        let first = (out_start - self.dx) as usize;
        let src_start = if self.flip {
            width - first - len
        } else {
            first
        };
        Span {
            out_start: out_start as usize,
            src_start,
            len,
        }
    }
}

/// Returns a randomly flipped and shifted copy of `img`, filled with black where nothing shows.
pub fn augment(img: &RgbImage, aug: &Augment, rng: &mut impl Rng) -> RgbImage {
    let place = Placement::draw(aug, rng);
    let (width, height) = (img.width() as usize, img.height() as usize);
    let span = place.span(width);
    let src = img.as_raw();
    let mut out = RgbImage::new(img.width(), img.height());
    for (y, out_row) in out.chunks_exact_mut(width * 3).enumerate() {
        let Some(sy) = place.source_row(y, height) else {
            continue;
        };
        let from =
            &src[(sy * width + span.src_start) * 3..(sy * width + span.src_start + span.len) * 3];
        let to = &mut out_row[span.out_start * 3..(span.out_start + span.len) * 3];
        if place.flip {
            for (dst, px) in to.chunks_exact_mut(3).zip(from.chunks_exact(3).rev()) {
                dst.copy_from_slice(px);
            }
        } else {
            to.copy_from_slice(from);
        }
    }
    out
}

/// Writes `img` as planar CHW floats, each `(byte / 255 - mean) / std` for its channel.
///
/// # Panics
/// If `out.len()` is not `3 * width * height` (a caller bug: batch buffers are sized from the set).
pub fn write_chw_normalized(img: &RgbImage, out: &mut [f32]) {
    let [r, g, b] = planes(img, out);
    normalize_into(img.as_raw().chunks_exact(3), r, g, b);
}

/// [`augment`] followed by [`write_chw_normalized`] in one pass, without the intermediate image;
/// with the same rng state it writes exactly what the two-step path would.
///
/// # Panics
/// If `out.len()` is not `3 * width * height`.
pub fn write_augmented_chw(img: &RgbImage, aug: &Augment, rng: &mut impl Rng, out: &mut [f32]) {
    let place = Placement::draw(aug, rng);
    let (width, height) = (img.width() as usize, img.height() as usize);
    let span = place.span(width);
    let src = img.as_raw();
    let black = NORMALIZED.map(|channel| channel[0]);
    let [r, g, b] = planes(img, out);
    let rows = r
        .chunks_exact_mut(width)
        .zip(g.chunks_exact_mut(width))
        .zip(b.chunks_exact_mut(width));
    for (y, ((r, g), b)) in rows.enumerate() {
        let Some(sy) = place.source_row(y, height) else {
            r.fill(black[0]);
            g.fill(black[1]);
            b.fill(black[2]);
            continue;
        };
        let covered = span.out_start..span.out_start + span.len;
        for (plane, fill) in [
            (&mut *r, black[0]),
            (&mut *g, black[1]),
            (&mut *b, black[2]),
        ] {
            plane[..covered.start].fill(fill);
            plane[covered.end..].fill(fill);
        }
        let from =
            &src[(sy * width + span.src_start) * 3..(sy * width + span.src_start + span.len) * 3];
        let (r, g, b) = (
            &mut r[covered.clone()],
            &mut g[covered.clone()],
            &mut b[covered],
        );
        if place.flip {
            normalize_into(from.chunks_exact(3).rev(), r, g, b);
        } else {
            normalize_into(from.chunks_exact(3), r, g, b);
        }
    }
}

/// Splits a CHW buffer into its three channel planes.
fn planes<'a>(img: &RgbImage, out: &'a mut [f32]) -> [&'a mut [f32]; 3] {
    let plane = img.width() as usize * img.height() as usize;
    assert_eq!(
        out.len(),
        3 * plane,
        "output buffer does not fit a {:?} image",
        img.dimensions()
    );
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    [r, g, b]
}

/// Writes the normalised channels of each RGB pixel into the three planes.
fn normalize_into<'a>(
    pixels: impl Iterator<Item = &'a [u8]>,
    r: &mut [f32],
    g: &mut [f32],
    b: &mut [f32],
) {
    let [lr, lg, lb] = &*NORMALIZED;
    for (((px, r), g), b) in pixels.zip(r).zip(g).zip(b) {
        *r = lr[px[0] as usize];
        *g = lg[px[1] as usize];
        *b = lb[px[2] as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_support::pattern;
    use image::Rgb;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Finds where a 1-pixel marker landed; the rest of the image is black.
    fn marker_position(img: &RgbImage) -> Option<(u32, u32)> {
        img.enumerate_pixels()
            .find(|(_, _, p)| p.0 != [0, 0, 0])
            .map(|(x, y, _)| (x, y))
    }

    fn with_marker(width: u32, height: u32, x: u32, y: u32) -> RgbImage {
        let mut img = RgbImage::new(width, height);
        img.put_pixel(x, y, Rgb([255, 128, 1]));
        img
    }

    #[test]
    fn no_augmentation_is_identity() {
        let img = pattern(13, 9, 3);
        let none = Augment {
            flip: false,
            translate: 0,
        };
        assert_eq!(augment(&img, &none, &mut ChaCha8Rng::seed_from_u64(0)), img);
    }

    #[test]
    fn flip_mirrors_columns_about_half_the_time() {
        let img = with_marker(10, 6, 2, 4);
        let flip = Augment {
            flip: true,
            translate: 0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut flipped = 0;
        for _ in 0..400 {
            match marker_position(&augment(&img, &flip, &mut rng)) {
                Some((7, 4)) => flipped += 1,
                Some((2, 4)) => {}
                other => panic!("marker moved to {other:?}"),
            }
        }
        assert!((160..240).contains(&flipped), "flipped {flipped} of 400");
    }

    #[test]
    fn translation_moves_pixels_within_range_and_fills_black() {
        let img = pattern(20, 20, 9);
        let shift = Augment {
            flip: false,
            translate: 3,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..300 {
            let out = augment(&img, &shift, &mut rng);
            // Recover the shift from where source pixel (10, 10) went: the pattern is injective
            // near the centre, so exactly one candidate matches.
            let want = img.get_pixel(10, 10);
            let (x, y) = (7..=13)
                .flat_map(|x| (7..=13).map(move |y| (x, y)))
                .find(|&(x, y)| out.get_pixel(x, y) == want)
                .expect("centre pixel must stay within the translate range");
            let (dx, dy) = (x as i64 - 10, y as i64 - 10);
            seen.insert((dx, dy));
            for (ox, oy, p) in out.enumerate_pixels() {
                let (sx, sy) = (ox as i64 - dx, oy as i64 - dy);
                let expected = if (0..20).contains(&sx) && (0..20).contains(&sy) {
                    *img.get_pixel(sx as u32, sy as u32)
                } else {
                    Rgb([0, 0, 0])
                };
                assert_eq!(*p, expected, "pixel ({ox}, {oy}) for shift ({dx}, {dy})");
            }
        }
        assert_eq!(seen.len(), 49, "every shift in [-3, 3]^2 should occur");
    }

    #[test]
    fn flip_and_shift_together_match_the_definition() {
        let img = pattern(19, 11, 7);
        let aug = Augment {
            flip: true,
            translate: 6,
        };
        let (mut flips, mut shifts) = (0, 0);
        for seed in 0..100 {
            let place = Placement::draw(&aug, &mut ChaCha8Rng::seed_from_u64(seed));
            flips += usize::from(place.flip);
            shifts += usize::from(place.dx != 0 && place.dy != 0);
            let out = augment(&img, &aug, &mut ChaCha8Rng::seed_from_u64(seed));
            for (x, y, p) in out.enumerate_pixels() {
                let (tx, sy) = (i64::from(x) - place.dx, i64::from(y) - place.dy);
                let sx = if place.flip { 18 - tx } else { tx };
                let expected = if (0..19).contains(&sx) && (0..11).contains(&sy) {
                    *img.get_pixel(sx as u32, sy as u32)
                } else {
                    Rgb([0, 0, 0])
                };
                assert_eq!(*p, expected, "seed {seed}: pixel ({x}, {y}) for {place:?}");
            }
        }
        assert!(
            flips > 20 && flips < 80 && shifts > 50,
            "draws not varied: {flips} flips"
        );
    }

    #[test]
    fn shift_beyond_the_image_is_all_black() {
        let img = pattern(4, 4, 1);
        let far = Augment {
            flip: true,
            translate: 1000,
        };
        let out = augment(&img, &far, &mut ChaCha8Rng::seed_from_u64(2));
        assert!(out.pixels().all(|p| p.0 == [0, 0, 0]));
        let mut chw = vec![f32::NAN; 48];
        write_augmented_chw(&img, &far, &mut ChaCha8Rng::seed_from_u64(2), &mut chw);
        for c in 0..3 {
            let black = -IMAGENET_MEAN[c] / IMAGENET_STD[c];
            assert!(chw[c * 16..(c + 1) * 16].iter().all(|&v| v == black));
        }
    }

    #[test]
    fn normalisation_is_planar_and_standardised() {
        let mut img = RgbImage::new(2, 1);
        img.put_pixel(0, 0, Rgb([0, 255, 51]));
        img.put_pixel(1, 0, Rgb([255, 0, 204]));
        let mut out = vec![0.0; 6];
        write_chw_normalized(&img, &mut out);
        let expect = |v: f32, c: usize| (v / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        let want = [
            expect(0.0, 0),
            expect(255.0, 0),
            expect(255.0, 1),
            expect(0.0, 1),
            expect(51.0, 2),
            expect(204.0, 2),
        ];
        for (got, want) in out.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{out:?}");
        }
        assert!((out[0] - -2.117_904).abs() < 1e-5, "R=0 -> -0.485/0.229");
        assert!((out[1] - 2.248_908_3).abs() < 1e-5, "R=255 -> 0.515/0.229");
    }

    #[test]
    fn fused_path_matches_augment_then_normalise() {
        let img = pattern(37, 23, 4);
        let aug = Augment {
            flip: true,
            translate: 8,
        };
        for seed in 0..50 {
            let two_step = augment(&img, &aug, &mut ChaCha8Rng::seed_from_u64(seed));
            let mut expected = vec![0.0; 3 * 37 * 23];
            write_chw_normalized(&two_step, &mut expected);
            let mut fused = vec![f32::NAN; 3 * 37 * 23];
            write_augmented_chw(&img, &aug, &mut ChaCha8Rng::seed_from_u64(seed), &mut fused);
            assert_eq!(fused, expected, "seed {seed}");
        }
    }
}
