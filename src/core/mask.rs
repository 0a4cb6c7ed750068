//! Masks grown by a radius: pixel scores within a tolerance, and tests that measure how near a map
//! lies to a crack, ask the same question of a mask.

use image::GrayImage;

/// `mask` grown by `radius` pixels in a square neighbourhood: a sliding count along the rows,
/// then down the columns, linear in the pixels whatever the radius. Scores within a tolerance,
/// and tests measuring how near a map lies to a mask, use it.
pub fn grown(mask: &GrayImage, radius: u32) -> GrayImage {
    if radius == 0 {
        return mask.clone();
    }
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let r = radius as usize;
    let mut rows = GrayImage::new(w as u32, h as u32);
    for (src, dst) in mask
        .as_raw()
        .chunks_exact(w)
        .zip(rows.as_mut().chunks_exact_mut(w))
    {
        let mut inside = 0usize;
        for x in 0..w + r {
            if x < w && src[x] > 0 {
                inside += 1;
            }
            if x > 2 * r && src[x - 2 * r - 1] > 0 {
                inside -= 1;
            }
            if x >= r {
                dst[x - r] = if inside > 0 { 255 } else { 0 };
            }
        }
    }
    let mut out = GrayImage::new(w as u32, h as u32);
    let mut inside = vec![0u32; w];
    let (src, dst) = (rows.as_raw(), out.as_mut());
    for y in 0..h + r {
        if y < h {
            for (c, &v) in inside.iter_mut().zip(&src[y * w..(y + 1) * w]) {
                *c += u32::from(v > 0);
            }
        }
        if y > 2 * r {
            let old = y - 2 * r - 1;
            for (c, &v) in inside.iter_mut().zip(&src[old * w..(old + 1) * w]) {
                *c -= u32::from(v > 0);
            }
        }
        if y >= r {
            let row = &mut dst[(y - r) * w..(y - r + 1) * w];
            for (d, &c) in row.iter_mut().zip(&inside) {
                *d = if c > 0 { 255 } else { 0 };
            }
        }
    }
    out
}
