//! Comparing screenshots with the pictures that should be on them: mean colours of blocks (which
//! smooths over sixel's dithering and the terminals' scaling), found by searching for where a
//! picture sits, then checked at the places the program says it drew them.

use image::RgbImage;

/// Sums of an image's colours over every top-left rectangle, for the mean of any rectangle in
/// constant time.
pub struct Integral {
    width: u32,
    height: u32,
    sums: Vec<[u64; 3]>,
}

impl Integral {
    pub fn new(img: &RgbImage) -> Integral {
        let (w, h) = (img.width(), img.height());
        let stride = w as usize + 1;
        let mut sums = vec![[0u64; 3]; stride * (h as usize + 1)];
        for y in 0..h as usize {
            let mut row = [0u64; 3];
            for x in 0..w as usize {
                let p = img.get_pixel(x as u32, y as u32).0;
                for c in 0..3 {
                    row[c] += u64::from(p[c]);
                    sums[(y + 1) * stride + x + 1][c] = sums[y * stride + x + 1][c] + row[c];
                }
            }
        }
        Integral {
            width: w,
            height: h,
            sums,
        }
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Mean colour of the rectangle (cut to the image); None when nothing of it is inside.
    pub fn mean(&self, x: f64, y: f64, w: f64, h: f64) -> Option<[f64; 3]> {
        let x0 = (x.round().max(0.0) as u32).min(self.width);
        let y0 = (y.round().max(0.0) as u32).min(self.height);
        let x1 = ((x + w).round().max(0.0) as u32).min(self.width);
        let y1 = ((y + h).round().max(0.0) as u32).min(self.height);
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        let stride = self.width as usize + 1;
        let at = |x: u32, y: u32| self.sums[y as usize * stride + x as usize];
        let (a, b, c, d) = (at(x0, y0), at(x1, y0), at(x0, y1), at(x1, y1));
        let n = f64::from((x1 - x0) * (y1 - y0));
        Some([0, 1, 2].map(|k| (d[k] + a[k] - b[k] - c[k]) as f64 / n))
    }
}

fn distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|k| (a[k] - b[k]).abs()).sum::<f64>() / 3.0
}

/// Mean absolute difference (0-255) between the screenshot at (`x`, `y`), over `w` x `h` pixels,
/// and `expected` scaled to that size, compared as `grid` x `grid` blocks. Blocks outside the
/// screenshot count as completely different.
pub fn difference(
    screen: &Integral,
    expected: &Integral,
    (x, y, w, h): (f64, f64, f64, f64),
    grid: u32,
) -> f64 {
    let (ew, eh) = expected.size();
    let (sx, sy) = (f64::from(ew) / w, f64::from(eh) / h);
    let (bw, bh) = (w / f64::from(grid), h / f64::from(grid));
    // A pixel in from each block's edges: terminals blend neighbouring pixels when they scale.
    let inset_x = (bw * 0.15).min(2.0);
    let inset_y = (bh * 0.15).min(2.0);
    let mut total = 0.0;
    for j in 0..grid {
        for i in 0..grid {
            let (bx, by) = (f64::from(i) * bw + inset_x, f64::from(j) * bh + inset_y);
            let (cw, chh) = (bw - 2.0 * inset_x, bh - 2.0 * inset_y);
            let want = expected.mean(bx * sx, by * sy, cw * sx, chh * sy);
            let seen = screen.mean(x + bx, y + by, cw, chh);
            total += match (want, seen) {
                (Some(a), Some(b)) => distance(a, b),
                _ => 255.0,
            };
        }
    }
    total / f64::from(grid * grid)
}

/// Where `expected`, shown at `w` x `h`, best matches the screenshot among top-left corners
/// `x` in `xs`, `y` in `ys`: (x, y, difference).
pub fn find(
    screen: &Integral,
    expected: &Integral,
    (w, h): (f64, f64),
    xs: std::ops::Range<i64>,
    ys: std::ops::Range<i64>,
) -> (i64, i64, f64) {
    let coarse = 6;
    let mut best = (0, 0, f64::MAX);
    for y in ys.clone() {
        for x in xs.clone() {
            let d = difference(screen, expected, (x as f64, y as f64, w, h), coarse);
            if d < best.2 {
                best = (x, y, d);
            }
        }
    }
    // Refine around the best coarse match with a finer grid.
    let (bx, by, _) = best;
    let mut fine = (bx, by, f64::MAX);
    for y in (by - 2).max(ys.start)..(by + 3).min(ys.end) {
        for x in (bx - 2).max(xs.start)..(bx + 3).min(xs.end) {
            let d = difference(screen, expected, (x as f64, y as f64, w, h), 16);
            if d < fine.2 {
                fine = (x, y, d);
            }
        }
    }
    fine
}

/// Mean absolute difference between half blocks on screen at (`x`, `y`) in cells of `cell`
/// pixels and `expected` (one pixel a half cell). The middle of each half cell is compared;
/// where the picture ends halfway down a cell the lower half is not looked at.
pub fn half_block_difference(
    screen: &Integral,
    expected: &RgbImage,
    (x, y): (f64, f64),
    (cw, ch): (f64, f64),
) -> f64 {
    let mut total = 0.0;
    let mut count = 0.0;
    for py in 0..expected.height() {
        for px in 0..expected.width() {
            let row = f64::from(py / 2);
            let upper = py % 2 == 0;
            let top = y + row * ch + if upper { 0.0 } else { ch / 2.0 };
            let (inset_x, inset_y) = ((cw * 0.25).max(1.0), (ch * 0.12).max(1.0));
            let seen = screen.mean(
                x + f64::from(px) * cw + inset_x,
                top + inset_y,
                cw - 2.0 * inset_x,
                ch / 2.0 - 2.0 * inset_y,
            );
            let want = expected.get_pixel(px, py).0.map(f64::from);
            total += seen.map_or(255.0, |s| distance(s, want));
            count += 1.0;
        }
    }
    if count == 0.0 {
        255.0
    } else {
        total / count
    }
}
