//! Training augmentation and the network's input encoding.
//!
//! The seed demo's augmentation is MATLAB's `imageDataAugmenter('RandXReflection', true,
//! 'RandXTranslation', [-30 30], 'RandYTranslation', [-30 30])`: it flips left-right with
//! probability 1/2 and shifts by a random whole number of pixels, filling uncovered pixels with
//! black. SqueezeNet (as trained by torchvision) expects planar CHW floats scaled to [0, 1] and
//! standardised per channel with the ImageNet statistics.
//!
//! Photos taken in the field (drones, phones) differ from the seed's patches in light, colour,
//! orientation, distance and focus, so further augmentations can be switched on, all off in the
//! seed's recipe. Per image, in this order:
//! 1. colour jitter with torchvision's `ColorJitter` factors, each uniform in `[1 - x, 1 + x]`:
//!    brightness (scale towards black), contrast (blend with the image's mean grey), saturation
//!    (blend with each pixel's grey), in that fixed order (torchvision shuffles it), clamped to
//!    [0, 1] after each;
//! 2. Gaussian blur with a sigma uniform in `[0, blur]` pixels (torchvision's `GaussianBlur` with
//!    `sigma=(0, blur)`), kernel radius `ceil(3 sigma)`, mirrored edges;
//! 3. geometry about the image's centre: zoom by a factor uniform in `scale` (bilinear; zooming
//!    out leaves a black frame, zooming in crops), a random multiple of 90 degrees, a vertical
//!    flip with probability 1/2, then the seed's horizontal flip and translation.
//!
//! Colour and blur act on the photo before geometry, so the black fill stays black and the blur
//! does not smear it into the picture.
//!
//! This runs for every training image of every epoch. The seed's augmentation alone takes a fused
//! path: one pass from the stored image straight into the batch buffer through a byte -> float
//! lookup table. The others work in a per-thread scratch buffer reused from image to image.
//! Either way an image's draws come only from the rng it is given, so results depend on the seed
//! and the image's place in the epoch, never on the number of threads.

use std::cell::RefCell;
use std::sync::LazyLock;

use image::RgbImage;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Random augmentation applied to each training image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Mirror left-right with probability 1/2.
    pub flip: bool,
    /// Shift x and y independently by a uniform whole number of pixels in `[-translate, translate]`.
    pub translate: u32,
    /// Multiply by a factor uniform in `[1 - brightness, 1 + brightness]`; 0 is off.
    pub brightness: f32,
    /// Blend with the mean grey by a factor uniform in `[1 - contrast, 1 + contrast]`; 0 is off.
    pub contrast: f32,
    /// Blend with each pixel's grey by a factor uniform in `[1 - saturation, 1 + saturation]`.
    pub saturation: f32,
    /// Rotate by a uniform random multiple of 90 degrees.
    pub rotate90: bool,
    /// Mirror top-bottom with probability 1/2.
    pub vflip: bool,
    /// Zoom about the centre by a factor uniform in `[scale[0], scale[1]]`; `[1, 1]` is off.
    pub scale: [f32; 2],
    /// Gaussian blur with a sigma uniform in `[0, blur]` pixels; 0 is off.
    pub blur: f32,
}

impl Augment {
    /// Leaves every image as it is.
    pub const NONE: Augment = Augment {
        flip: false,
        translate: 0,
        brightness: 0.0,
        contrast: 0.0,
        saturation: 0.0,
        rotate90: false,
        vflip: false,
        scale: [1.0, 1.0],
        blur: 0.0,
    };

    /// The seed demo's augmentation: left-right flips and shifts of up to 30 pixels.
    pub const SEED: Augment = Augment {
        flip: true,
        translate: 30,
        ..Augment::NONE
    };

    /// Whether only the seed's flip and translation are on (the fused, table-driven path).
    fn seed_kind_only(&self) -> bool {
        let Augment {
            flip, translate, ..
        } = *self;
        *self
            == Augment {
                flip,
                translate,
                ..Augment::NONE
            }
    }
}

impl Default for Augment {
    fn default() -> Self {
        Augment::NONE
    }
}

/// The largest `blur` sigma in pixels (its kernel spans `2 * ceil(3 * sigma) + 1` taps).
pub const MAX_BLUR_SIGMA: f32 = 10.0;
const MAX_BLUR_RADIUS: usize = 30;

/// Per-channel mean of ImageNet in [0, 1] (R, G, B).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// Per-channel standard deviation of ImageNet in [0, 1] (R, G, B).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Grey value weights of R, G and B (ITU-R 601, as PIL; torchvision rounds 0.299 to 0.2989).
const GREY: [f32; 3] = [0.299, 0.587, 0.114];

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

thread_local! {
    /// The photo in planar [0, 1] floats while colour and blur work on it; one per loader thread.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}
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

/// One random draw of every augmentation for one image.
#[derive(Debug, Clone, Copy)]
struct Draw {
    place: Placement,
    /// Clockwise quarter turns, 0 to 3.
    quarter_turns: u8,
    vflip: bool,
    zoom: f32,
    brightness: f32,
    contrast: f32,
    saturation: f32,
    sigma: f32,
}

impl Draw {
    /// The seed's draws come first and the others only when switched on, so a recipe without
    /// them consumes the rng exactly as before they existed.
    fn random(aug: &Augment, rng: &mut impl Rng) -> Self {
        let place = Placement::draw(aug, rng);
        let quarter_turns = if aug.rotate90 {
            rng.random_range(0..4)
        } else {
            0
        };
        let vflip = aug.vflip && rng.random_bool(0.5);
        let [low, high] = aug.scale;
        let zoom = if low < high {
            rng.random_range(low..=high)
        } else {
            low
        };
        let brightness = jitter_factor(aug.brightness, rng);
        let contrast = jitter_factor(aug.contrast, rng);
        let saturation = jitter_factor(aug.saturation, rng);
        let sigma = if aug.blur > 0.0 {
            rng.random_range(0.0..=aug.blur)
        } else {
            0.0
        };
        Draw {
            place,
            quarter_turns,
            vflip,
            zoom,
            brightness,
            contrast,
            saturation,
            sigma,
        }
    }
}

/// A factor uniform in `[1 - x, 1 + x]` (never below 0), or exactly 1 when `x` is 0.
fn jitter_factor(x: f32, rng: &mut impl Rng) -> f32 {
    if x > 0.0 {
        rng.random_range((1.0 - x)..=(1.0 + x)).max(0.0)
    } else {
        1.0
    }
}

/// Writes the augmented image into `out` as planar [0, 1] floats (black outside the photo), with
/// `unit` as scratch space.
fn render(img: &RgbImage, draw: &Draw, unit: &mut Vec<f32>, out: &mut [f32]) {
    let (width, height) = (img.width() as usize, img.height() as usize);
    unit.resize(3 * width * height, 0.0);
    load_jittered(img, draw, unit);
    if let Some((taps, len)) = gaussian_kernel(draw.sigma) {
        // `out` is free until the geometry step fills it, so the blur uses it as its buffer.
        blur_planes(unit, out, width, height, &taps[..len]);
    }
    place(unit, width, height, draw, out);
}

/// Fills `unit` with the image's planar [0, 1] values after brightness, contrast and saturation.
fn load_jittered(img: &RgbImage, draw: &Draw, unit: &mut [f32]) {
    let plane = img.width() as usize * img.height() as usize;
    let (r, rest) = unit.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    let k = draw.brightness;
    for (((px, r), g), b) in img
        .as_raw()
        .chunks_exact(3)
        .zip(&mut *r)
        .zip(&mut *g)
        .zip(&mut *b)
    {
        *r = (f32::from(px[0]) / 255.0 * k).min(1.0);
        *g = (f32::from(px[1]) / 255.0 * k).min(1.0);
        *b = (f32::from(px[2]) / 255.0 * k).min(1.0);
    }
    let grey = |r: f32, g: f32, b: f32| GREY[0] * r + GREY[1] * g + GREY[2] * b;
    if draw.contrast != 1.0 && plane > 0 {
        let sum: f64 = r
            .iter()
            .zip(&*g)
            .zip(&*b)
            .map(|((&r, &g), &b)| f64::from(grey(r, g, b)))
            .sum();
        let mean = (sum / plane as f64) as f32;
        let (k, offset) = (draw.contrast, (1.0 - draw.contrast) * mean);
        for v in r.iter_mut().chain(&mut *g).chain(&mut *b) {
            *v = (k * *v + offset).clamp(0.0, 1.0);
        }
    }
    if draw.saturation != 1.0 {
        let k = draw.saturation;
        for ((r, g), b) in r.iter_mut().zip(g).zip(b) {
            let offset = (1.0 - k) * grey(*r, *g, *b);
            *r = (k * *r + offset).clamp(0.0, 1.0);
            *g = (k * *g + offset).clamp(0.0, 1.0);
            *b = (k * *b + offset).clamp(0.0, 1.0);
        }
    }
}

/// The normalised Gaussian of `sigma` over `2 * ceil(3 sigma) + 1` taps (on the stack), or `None`
/// when it would be a single tap.
fn gaussian_kernel(sigma: f32) -> Option<([f32; 2 * MAX_BLUR_RADIUS + 1], usize)> {
    let radius = ((3.0 * sigma).ceil() as usize).min(MAX_BLUR_RADIUS);
    if sigma <= 0.0 || radius == 0 {
        return None;
    }
    let mut taps = [0.0; 2 * MAX_BLUR_RADIUS + 1];
    let len = 2 * radius + 1;
    for (i, tap) in taps[..len].iter_mut().enumerate() {
        let d = i as f32 - radius as f32;
        *tap = (-d * d / (2.0 * sigma * sigma)).exp();
    }
    let total: f32 = taps[..len].iter().sum();
    taps[..len].iter_mut().for_each(|t| *t /= total);
    Some((taps, len))
}

/// Index `i` mirrored into `0..n` without repeating the edge (PyTorch's "reflect" padding).
fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m >= n as isize { period - m } else { m }) as usize
}

/// Blurs each plane of `unit` in place with the separable `kernel`, through `buffer`.
fn blur_planes(unit: &mut [f32], buffer: &mut [f32], width: usize, height: usize, kernel: &[f32]) {
    let radius = kernel.len() / 2;
    let plane = width * height;
    for (src, tmp) in unit
        .chunks_exact_mut(plane)
        .zip(buffer.chunks_exact_mut(plane))
    {
        for (row, out) in src.chunks_exact(width).zip(tmp.chunks_exact_mut(width)) {
            for (x, out) in out.iter_mut().enumerate() {
                *out = if x >= radius && x + radius < width {
                    row[x - radius..=x + radius]
                        .iter()
                        .zip(kernel)
                        .map(|(v, k)| v * k)
                        .sum()
                } else {
                    kernel
                        .iter()
                        .enumerate()
                        .map(|(i, k)| k * row[reflect((x + i) as isize - radius as isize, width)])
                        .sum()
                };
            }
        }
        for (y, out) in src.chunks_exact_mut(width).enumerate() {
            out.fill(0.0);
            for (i, k) in kernel.iter().enumerate() {
                let sy = reflect((y + i) as isize - radius as isize, height);
                for (o, v) in out.iter_mut().zip(&tmp[sy * width..(sy + 1) * width]) {
                    *o += k * v;
                }
            }
        }
    }
}

/// Samples `unit` through the draw's geometry into `out` (planar [0, 1], black where the moved
/// photo does not reach), bilinearly; whole-pixel positions read exactly one source pixel.
fn place(unit: &[f32], width: usize, height: usize, draw: &Draw, out: &mut [f32]) {
    let plane = width * height;
    let (w, h) = (width as f32, height as f32);
    let (cx, cy) = (w / 2.0 - 0.5, h / 2.0 - 0.5);
    let inverse_zoom = 1.0 / draw.zoom;
    // Output (x, y) -> source: undo the translation, the flips, the quarter turns, the zoom.
    let source = |x: usize, y: usize| -> (f32, f32) {
        let mut tx = (x as i64 - draw.place.dx) as f32;
        let mut ty = (y as i64 - draw.place.dy) as f32;
        if draw.place.flip {
            tx = w - 1.0 - tx;
        }
        if draw.vflip {
            ty = h - 1.0 - ty;
        }
        let (mut u, mut v) = (tx - cx, ty - cy);
        for _ in 0..draw.quarter_turns {
            (u, v) = (v, -u);
        }
        if draw.zoom != 1.0 {
            (u, v) = (u * inverse_zoom, v * inverse_zoom);
        }
        (u + cx, v + cy)
    };
    let (src_r, rest) = unit.split_at(plane);
    let (src_g, src_b) = rest.split_at(plane);
    let (out_r, rest) = out.split_at_mut(plane);
    let (out_g, out_b) = rest.split_at_mut(plane);
    for y in 0..height {
        for x in 0..width {
            let (sx, sy) = source(x, y);
            let o = y * width + x;
            if !(sx >= -0.5 && sx < w - 0.5 && sy >= -0.5 && sy < h - 0.5) {
                (out_r[o], out_g[o], out_b[o]) = (0.0, 0.0, 0.0);
                continue;
            }
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let clamp_x = |v: f32| (v.max(0.0) as usize).min(width - 1);
            let clamp_y = |v: f32| (v.max(0.0) as usize).min(height - 1);
            let (xa, xb, ya, yb) = (
                clamp_x(x0),
                clamp_x(x0 + 1.0),
                clamp_y(y0),
                clamp_y(y0 + 1.0),
            );
            let (i00, i01, i10, i11) = (
                ya * width + xa,
                ya * width + xb,
                yb * width + xa,
                yb * width + xb,
            );
            // a + f * (b - a) is exactly a when f is 0, so unzoomed geometry copies pixels.
            let lerp = |p: &[f32]| {
                let top = p[i00] + fx * (p[i01] - p[i00]);
                let bottom = p[i10] + fx * (p[i11] - p[i10]);
                top + fy * (bottom - top)
            };
            (out_r[o], out_g[o], out_b[o]) = (lerp(src_r), lerp(src_g), lerp(src_b));
        }
    }
}

/// Returns a randomly augmented copy of `img`, filled with black where nothing shows (what the
/// batch writer does, as a picture: the tests look at it).
#[cfg(test)]
pub fn augment(img: &RgbImage, aug: &Augment, rng: &mut impl Rng) -> RgbImage {
    if !aug.seed_kind_only() {
        let draw = Draw::random(aug, rng);
        let mut unit = vec![0.0; 3 * img.width() as usize * img.height() as usize];
        render(img, &draw, &mut Vec::new(), &mut unit);
        let plane = unit.len() / 3;
        let mut out = RgbImage::new(img.width(), img.height());
        for (i, px) in out.chunks_exact_mut(3).enumerate() {
            for (c, v) in px.iter_mut().enumerate() {
                *v = (unit[c * plane + i] * 255.0).round() as u8;
            }
        }
        return out;
    }
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

/// [`augment`] followed by [`write_chw_normalized`], without the intermediate image; with only
/// the seed's flip and translation it is one pass and writes exactly what the two-step path would
/// (the other augmentations skip the rounding to bytes).
///
/// # Panics
/// If `out.len()` is not `3 * width * height`.
pub fn write_augmented_chw(img: &RgbImage, aug: &Augment, rng: &mut impl Rng, out: &mut [f32]) {
    if !aug.seed_kind_only() {
        let draw = Draw::random(aug, rng);
        let plane = planes(img, out)[0].len();
        SCRATCH.with_borrow_mut(|unit| render(img, &draw, unit, out));
        for (c, channel) in out.chunks_exact_mut(plane).enumerate() {
            // The same arithmetic as the byte table, so unchanged pixels encode identically.
            channel
                .iter_mut()
                .for_each(|v| *v = (*v - IMAGENET_MEAN[c]) / IMAGENET_STD[c]);
        }
        return;
    }
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
            ..Augment::NONE
        };
        assert_eq!(augment(&img, &none, &mut ChaCha8Rng::seed_from_u64(0)), img);
    }

    #[test]
    fn flip_mirrors_columns_about_half_the_time() {
        let img = with_marker(10, 6, 2, 4);
        let flip = Augment {
            flip: true,
            translate: 0,
            ..Augment::NONE
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
            ..Augment::NONE
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
            ..Augment::NONE
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
            ..Augment::NONE
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
            ..Augment::NONE
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

    /// Every new augmentation on, at strengths a user might pick.
    const ALL: Augment = Augment {
        flip: true,
        translate: 5,
        brightness: 0.3,
        contrast: 0.3,
        saturation: 0.3,
        rotate90: true,
        vflip: true,
        scale: [0.8, 1.25],
        blur: 1.5,
    };

    /// The draw that changes nothing but what `place` says.
    fn neutral(place: Placement) -> Draw {
        Draw {
            place,
            quarter_turns: 0,
            vflip: false,
            zoom: 1.0,
            brightness: 1.0,
            contrast: 1.0,
            saturation: 1.0,
            sigma: 0.0,
        }
    }

    /// The augmented image's planar [0, 1] values for one draw.
    fn rendered(img: &RgbImage, draw: &Draw) -> Vec<f32> {
        let mut out = vec![f32::NAN; 3 * img.width() as usize * img.height() as usize];
        render(img, draw, &mut Vec::new(), &mut out);
        out
    }

    fn grey_image(width: u32, height: u32, value: u8) -> RgbImage {
        RgbImage::from_pixel(width, height, Rgb([value; 3]))
    }

    #[test]
    fn settings_at_zero_keep_the_seed_path_and_its_draws() {
        let img = pattern(31, 31, 2);
        let off = Augment {
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            rotate90: false,
            vflip: false,
            scale: [1.0, 1.0],
            blur: 0.0,
            ..Augment::SEED
        };
        assert!(off.seed_kind_only() && Augment::SEED.seed_kind_only());
        assert!(!ALL.seed_kind_only());
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut fused = vec![0.0; 3 * 31 * 31];
            write_augmented_chw(&img, &off, &mut rng, &mut fused);
            let mut expected = vec![0.0; 3 * 31 * 31];
            write_chw_normalized(
                &augment(&img, &Augment::SEED, &mut ChaCha8Rng::seed_from_u64(seed)),
                &mut expected,
            );
            assert_eq!(fused, expected, "seed {seed}");
        }
    }

    #[test]
    fn general_path_reproduces_the_seed_geometry_exactly() {
        // The scratch-buffer path with neutral colour, blur and zoom must give the fused path's
        // bytes and floats, or switching on any new key would also change flips and shifts.
        let img = pattern(29, 17, 6);
        let aug = Augment {
            translate: 7,
            ..Augment::SEED
        };
        for seed in 0..60 {
            let place = Placement::draw(&aug, &mut ChaCha8Rng::seed_from_u64(seed));
            let unit = rendered(&img, &neutral(place));
            let legacy = augment(&img, &aug, &mut ChaCha8Rng::seed_from_u64(seed));
            let mut want = vec![0.0; unit.len()];
            write_chw_normalized(&legacy, &mut want);
            let plane = 29 * 17;
            for (i, (&u, &w)) in unit.iter().zip(&want).enumerate() {
                let c = i / plane;
                assert_eq!(
                    (u - IMAGENET_MEAN[c]) / IMAGENET_STD[c],
                    w,
                    "seed {seed}, value {i}"
                );
            }
        }
    }

    #[test]
    fn rotate90_gives_each_quarter_turn_of_a_known_pattern() {
        let img = pattern(12, 12, 5);
        let turns = [
            img.clone(),
            image::imageops::rotate90(&img),
            image::imageops::rotate180(&img),
            image::imageops::rotate270(&img),
        ];
        let aug = Augment {
            rotate90: true,
            ..Augment::NONE
        };
        let mut counts = [0; 4];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..400 {
            let out = augment(&img, &aug, &mut rng);
            let k = turns
                .iter()
                .position(|t| *t == out)
                .expect("output is not a quarter turn of the input");
            counts[k] += 1;
        }
        assert!(counts.iter().all(|&n| (70..130).contains(&n)), "{counts:?}");
        // A marker in the top-left corner goes to the top-right after one clockwise turn.
        let marked = with_marker(8, 8, 0, 0);
        let draw = Draw {
            quarter_turns: 1,
            ..neutral(Placement {
                flip: false,
                dx: 0,
                dy: 0,
            })
        };
        let unit = rendered(&marked, &draw);
        assert_eq!(unit[7], 1.0, "red of the marker at (7, 0)");
        assert_eq!(unit.iter().filter(|&&v| v > 0.0).count(), 3);
    }

    #[test]
    fn vflip_mirrors_rows_about_half_the_time() {
        let img = pattern(9, 7, 4);
        let mirrored = image::imageops::flip_vertical(&img);
        let aug = Augment {
            vflip: true,
            ..Augment::NONE
        };
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let mut flipped = 0;
        for _ in 0..400 {
            let out = augment(&img, &aug, &mut rng);
            if out == mirrored {
                flipped += 1;
            } else {
                assert_eq!(out, img);
            }
        }
        assert!((160..240).contains(&flipped), "flipped {flipped} of 400");
    }

    #[test]
    fn scale_keeps_the_size_and_zooms_about_the_centre() {
        // Red rises 4 per column, so a zoom shows up as the slope of red across a row.
        let img = RgbImage::from_fn(40, 40, |x, _| Rgb([(x * 4 + 20) as u8, 100, 50]));
        let fixed = |zoom: f32| Augment {
            scale: [zoom, zoom],
            ..Augment::NONE
        };
        let zoomed_in = augment(&img, &fixed(2.0), &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(zoomed_in.dimensions(), (40, 40));
        for x in 1..39u32 {
            // Output column x shows source column (x - 19.5) / 2 + 19.5.
            let want = ((x as f32 - 19.5) / 2.0 + 19.5) * 4.0 + 20.0;
            let got = f32::from(zoomed_in.get_pixel(x, 20)[0]);
            assert!((got - want).abs() <= 1.0, "column {x}: {got} vs {want}");
        }
        let zoomed_out = augment(&img, &fixed(0.5), &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(zoomed_out.dimensions(), (40, 40));
        // The whole photo shrinks into the middle 20 x 20; around it is black.
        assert_eq!(zoomed_out.get_pixel(5, 20).0, [0, 0, 0]);
        assert_eq!(zoomed_out.get_pixel(20, 35).0, [0, 0, 0]);
        assert_ne!(zoomed_out.get_pixel(20, 20).0, [0, 0, 0]);
        let left = f32::from(zoomed_out.get_pixel(11, 20)[0]);
        let right = f32::from(zoomed_out.get_pixel(28, 20)[0]);
        assert!(
            (right - left - 17.0 * 8.0).abs() <= 2.0,
            "{left} .. {right}"
        );
        // A range draws different zooms: the centre stays, the edges move.
        let range = Augment {
            scale: [0.5, 2.0],
            ..Augment::NONE
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let edges: std::collections::HashSet<u8> = (0..50)
            .map(|_| augment(&img, &range, &mut rng).get_pixel(2, 20)[0])
            .collect();
        assert!(edges.len() > 10, "{edges:?}");
    }

    #[test]
    fn blur_smooths_a_step_edge_and_keeps_the_mean() {
        let img = RgbImage::from_fn(32, 8, |x, _| Rgb([if x < 16 { 40 } else { 200 }; 3]));
        let draw = Draw {
            sigma: 2.0,
            ..neutral(Placement {
                flip: false,
                dx: 0,
                dy: 0,
            })
        };
        let unit = rendered(&img, &draw);
        let row: Vec<f32> = unit[3 * 32..4 * 32].iter().map(|v| v * 255.0).collect();
        assert!(row.windows(2).all(|p| p[1] >= p[0] - 1e-4), "{row:?}");
        assert!((row[0] - 40.0).abs() < 1e-3 && (row[31] - 200.0).abs() < 1e-3);
        assert!(row[15] > 60.0 && row[15] < 120.0, "{}", row[15]);
        assert!(row[16] > 120.0 && row[16] < 180.0, "{}", row[16]);
        let mean = row.iter().sum::<f32>() / 32.0;
        assert!((mean - 120.0).abs() < 0.01, "mean {mean}");
        // The sigma is drawn per image: some draws blur less than others.
        let aug = Augment {
            blur: 3.0,
            ..Augment::NONE
        };
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let at_edge: std::collections::HashSet<u8> = (0..40)
            .map(|_| augment(&img, &aug, &mut rng).get_pixel(15, 4)[0])
            .collect();
        assert!(at_edge.len() > 5, "{at_edge:?}");
    }

    #[test]
    fn brightness_scales_every_pixel_by_one_factor_in_range() {
        let img = RgbImage::from_fn(10, 10, |x, y| {
            Rgb([(x * 10 + 20) as u8, (y * 10 + 30) as u8, 80])
        });
        let aug = Augment {
            brightness: 0.4,
            ..Augment::NONE
        };
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (mut lowest, mut highest) = (f32::MAX, f32::MIN);
        for _ in 0..200 {
            let out = augment(&img, &aug, &mut rng);
            let factor = f32::from(out.get_pixel(0, 0)[2]) / 80.0;
            lowest = lowest.min(factor);
            highest = highest.max(factor);
            for (a, b) in img.pixels().zip(out.pixels()) {
                for c in 0..3 {
                    let want = (f32::from(a[c]) * factor).min(255.0);
                    assert!((f32::from(b[c]) - want).abs() <= 1.5, "{a:?} -> {b:?}");
                }
            }
        }
        assert!((0.59..0.65).contains(&lowest), "lowest factor {lowest}");
        assert!(
            highest > 1.35 && highest <= 1.41,
            "highest factor {highest}"
        );
    }

    #[test]
    fn contrast_scales_deviations_from_the_mean_grey() {
        let img = RgbImage::from_fn(8, 8, |x, _| Rgb([(x * 8 + 90) as u8; 3]));
        let mean = img.pixels().map(|p| f32::from(p[0])).sum::<f32>() / 64.0;
        for contrast in [0.5, 1.5] {
            let draw = Draw {
                contrast,
                ..neutral(Placement {
                    flip: false,
                    dx: 0,
                    dy: 0,
                })
            };
            let unit = rendered(&img, &draw);
            for (i, p) in img.pixels().enumerate() {
                let want = mean + contrast * (f32::from(p[0]) - mean);
                assert!((unit[i] * 255.0 - want).abs() < 0.02, "{contrast}: {i}");
            }
        }
    }

    #[test]
    fn saturation_keeps_greys_and_each_pixels_grey_value() {
        let mut img = grey_image(4, 4, 120);
        img.put_pixel(1, 1, Rgb([200, 60, 30]));
        let grey = |p: [f32; 3]| GREY[0] * p[0] + GREY[1] * p[1] + GREY[2] * p[2];
        for saturation in [0.0, 0.5, 1.4] {
            let draw = Draw {
                saturation,
                ..neutral(Placement {
                    flip: false,
                    dx: 0,
                    dy: 0,
                })
            };
            let unit = rendered(&img, &draw);
            let pixel = |i: usize| [unit[i], unit[16 + i], unit[32 + i]];
            let kept = pixel(0).iter().all(|&v| (v - 120.0 / 255.0).abs() < 1e-6);
            assert!(kept, "grey stays grey: {:?}", pixel(0));
            let before = [200.0 / 255.0, 60.0 / 255.0, 30.0 / 255.0];
            let after = pixel(5);
            assert!(
                (grey(after) - grey(before)).abs() < 1e-4,
                "{saturation}: {after:?}"
            );
            if saturation == 0.0 {
                assert!(after.iter().all(|&v| (v - grey(before)).abs() < 1e-6));
            }
        }
    }

    #[test]
    fn all_augmentations_follow_the_seed_alone() {
        let img = pattern(33, 33, 9);
        let run = |seed: u64| {
            let mut out = vec![0.0; 3 * 33 * 33];
            write_augmented_chw(&img, &ALL, &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            out
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        // The per-thread scratch buffer carries nothing from one image to the next.
        let other = pattern(33, 33, 200);
        let mut scratch_used = vec![0.0; 3 * 33 * 33];
        write_augmented_chw(
            &other,
            &ALL,
            &mut ChaCha8Rng::seed_from_u64(7),
            &mut scratch_used,
        );
        assert_eq!(run(1), run(1));
        assert!(run(3).iter().all(|v| v.is_finite()));
    }

    #[test]
    fn reflect_mirrors_without_repeating_the_edge() {
        let got: Vec<usize> = (-4..9).map(|i| reflect(i, 5)).collect();
        assert_eq!(got, [4, 3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1, 0]);
        assert_eq!(reflect(-3, 1), 0);
    }
}
