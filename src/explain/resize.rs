//! MATLAB's `imresize(map, [rows cols], 'bicubic')` for a single-channel float map, so that the
//! heatmap has the seed's exact shape once blown up to the image size.
//!
//! MATLAB's recipe: Keys' cubic kernel with a = -0.5; output sample x (1-based) reads the input at
//! u = x/scale + 0.5 * (1 - 1/scale) (pixel centres line up); the input is mirrored at its edges
//! (..., 2, 1 | 1, 2, ... | n, n-1, ...); the weights of each output sample are normalised to sum
//! to 1; when shrinking, the kernel is stretched by 1/scale (antialiasing). Floats are not clamped,
//! so the cubic's small overshoot survives, as in MATLAB.

use anyhow::{ensure, Result};

use super::heatmap::Heatmap;

/// Resizes `map` to `height` x `width` exactly as MATLAB's bicubic `imresize` does.
pub fn imresize_bicubic(map: &Heatmap, height: usize, width: usize) -> Result<Heatmap> {
    ensure!(
        map.height > 0 && map.width > 0 && height > 0 && width > 0,
        "cannot resize a {}x{} map to {height}x{width}",
        map.height,
        map.width
    );
    let rows = Contributions::new(map.height, height);
    let cols = Contributions::new(map.width, width);
    // Along the rows first (MATLAB's order when both scales are equal; the result does not depend
    // on it beyond rounding), accumulating in f64.
    let mut tall = vec![0f64; height * map.width];
    for out_row in 0..height {
        let dst = &mut tall[out_row * map.width..(out_row + 1) * map.width];
        for (&src_row, &w) in rows.taps(out_row) {
            let src = &map.values[src_row * map.width..(src_row + 1) * map.width];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d += w * s as f64;
            }
        }
    }
    let mut values = Vec::with_capacity(height * width);
    for line in tall.chunks(map.width) {
        for out_col in 0..width {
            let v: f64 = cols.taps(out_col).map(|(&c, &w)| w * line[c]).sum();
            values.push(v as f32);
        }
    }
    Heatmap::new(height, width, values)
}

/// Keys' cubic convolution kernel with a = -0.5 (MATLAB's `cubic`).
fn cubic(x: f64) -> f64 {
    let ax = x.abs();
    if ax <= 1.0 {
        1.5 * ax.powi(3) - 2.5 * ax * ax + 1.0
    } else if ax <= 2.0 {
        -0.5 * ax.powi(3) + 2.5 * ax * ax - 4.0 * ax + 2.0
    } else {
        0.0
    }
}

/// For each output sample along one axis: which input samples it reads, with what weight.
struct Contributions {
    per_output: usize,
    indices: Vec<usize>,
    weights: Vec<f64>,
}

impl Contributions {
    fn new(in_len: usize, out_len: usize) -> Contributions {
        let scale = out_len as f64 / in_len as f64;
        // Shrinking stretches the kernel (antialiasing); enlarging uses it as it is.
        let stretch = scale.min(1.0);
        let kernel_width = 4.0 / stretch;
        let per_output = kernel_width.ceil() as usize + 2;
        let mut indices = Vec::with_capacity(out_len * per_output);
        let mut weights = Vec::with_capacity(out_len * per_output);
        for x in 1..=out_len {
            let u = x as f64 / scale + 0.5 * (1.0 - 1.0 / scale);
            let left = (u - kernel_width / 2.0).floor() as i64;
            let start = weights.len();
            for k in 0..per_output as i64 {
                let position = left + k; // 1-based, may lie outside the input
                weights.push(stretch * cubic(stretch * (u - position as f64)));
                indices.push(mirror(position, in_len));
            }
            let sum: f64 = weights[start..].iter().sum();
            weights[start..].iter_mut().for_each(|w| *w /= sum);
        }
        Contributions {
            per_output,
            indices,
            weights,
        }
    }

    fn taps(&self, out: usize) -> impl Iterator<Item = (&usize, &f64)> {
        let range = out * self.per_output..(out + 1) * self.per_output;
        self.indices[range.clone()].iter().zip(&self.weights[range])
    }
}

/// The 0-based input sample MATLAB reads for 1-based `position`: symmetric padding with the edge
/// sample repeated (positions 0, -1 read samples 1, 2; positions n+1, n+2 read n, n-1).
fn mirror(position: i64, len: usize) -> usize {
    let period = 2 * len as i64;
    let k = (position - 1).rem_euclid(period) as usize;
    if k < len {
        k
    } else {
        2 * len - 1 - k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32, tol: f32) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn two_times_upscale_matches_hand_worked_matlab_values() {
        // 1x4 -> 1x8. Output 1 reads u = 0.75 with taps at positions -1, 0, 1, 2 (weights h(1.75),
        // h(0.75), h(0.25), h(-1.25) = -0.0234375, 0.2265625, 0.8671875, -0.0703125); mirrored,
        // positions -1 and 0 read samples 2 and 1: out1 = 1.09375 a - 0.09375 b. Likewise
        // out2 = 0.796875 a + 0.2265625 b - 0.0234375 c (u = 1.25),
        // out3 = 0.203125 a + 0.8671875 b - 0.0703125 c (u = 1.75), out8 = 1.09375 d - 0.09375 c.
        let (a, b, c, d) = (1.0f32, 2.0, 4.0, 8.0);
        let map = Heatmap::new(1, 4, vec![a, b, c, d]).unwrap();
        let out = imresize_bicubic(&map, 1, 8).unwrap();
        let expected = [
            (0, 1.09375 * a - 0.09375 * b),
            (1, 0.796875 * a + 0.2265625 * b - 0.0234375 * c),
            (2, 0.203125 * a + 0.8671875 * b - 0.0703125 * c),
            (7, 1.09375 * d - 0.09375 * c),
        ];
        for (i, want) in expected {
            assert!(
                close(out.values[i], want, 1e-6),
                "out[{i}] = {} != {want}",
                out.values[i]
            );
        }
    }

    #[test]
    fn constant_stays_constant_up_and_down() {
        let map = Heatmap::new(14, 14, vec![0.37; 196]).unwrap();
        for (h, w) in [(227, 227), (5, 9), (14, 14), (1, 1)] {
            let out = imresize_bicubic(&map, h, w).unwrap();
            assert_eq!((out.height, out.width), (h, w));
            assert!(out.values.iter().all(|&v| close(v, 0.37, 1e-6)), "{h}x{w}");
        }
    }

    #[test]
    fn linear_ramp_stays_linear_in_the_interior() {
        // Sample j (1-based) holds 3j - 1; output x reads the input at u, so it must hold 3u - 1
        // wherever all four taps lie inside the input (cubic convolution reproduces ramps).
        let n = 10;
        let map = Heatmap::new(1, n, (1..=n).map(|j| 3.0 * j as f32 - 1.0).collect()).unwrap();
        let out_len = 37;
        let out = imresize_bicubic(&map, 1, out_len).unwrap();
        let scale = out_len as f64 / n as f64;
        let mut checked = 0;
        for x in 1..=out_len {
            let u = x as f64 / scale + 0.5 * (1.0 - 1.0 / scale);
            if u - 2.0 >= 1.0 && u + 2.0 <= n as f64 {
                assert!(
                    close(out.values[x - 1], (3.0 * u - 1.0) as f32, 1e-4),
                    "x = {x}"
                );
                checked += 1;
            }
        }
        assert!(checked > 15);
    }

    #[test]
    fn samples_are_reproduced_exactly_at_their_centres() {
        // With scale 3, output 3k+2 (1-based) sits exactly on input sample k+1.
        let values: Vec<f32> = (0..20).map(|i| ((i * 7919) % 13) as f32 / 13.0).collect();
        let map = Heatmap::new(4, 5, values).unwrap();
        let out = imresize_bicubic(&map, 12, 15).unwrap();
        for r in 0..4 {
            for c in 0..5 {
                assert!(
                    close(out.get(3 * r + 1, 3 * c + 1), map.get(r, c), 1e-6),
                    "({r},{c})"
                );
            }
        }
    }

    #[test]
    fn two_dimensional_resize_is_separable() {
        // A product map f(r) g(c) must come out as resize(f) x resize(g), axes not swapped.
        let f = [0.0f32, 1.0, 0.5];
        let g = [2.0f32, -1.0, 0.0, 3.0, 1.0];
        let map = Heatmap::new(
            3,
            5,
            f.iter()
                .flat_map(|a| g.iter().map(move |b| a * b))
                .collect(),
        )
        .unwrap();
        let out = imresize_bicubic(&map, 7, 11).unwrap();
        let fr = imresize_bicubic(&Heatmap::new(3, 1, f.to_vec()).unwrap(), 7, 1).unwrap();
        let gr = imresize_bicubic(&Heatmap::new(1, 5, g.to_vec()).unwrap(), 1, 11).unwrap();
        for r in 0..7 {
            for c in 0..11 {
                assert!(
                    close(out.get(r, c), fr.values[r] * gr.values[c], 1e-5),
                    "({r},{c})"
                );
            }
        }
    }

    #[test]
    fn shrinking_averages_instead_of_aliasing() {
        // A pixel-wide checkerboard halved must come out near its mean, not as a checkerboard.
        let map = Heatmap::new(
            16,
            16,
            (0..256).map(|i| ((i / 16 + i % 16) % 2) as f32).collect(),
        )
        .unwrap();
        let out = imresize_bicubic(&map, 8, 8).unwrap();
        assert!(
            out.values.iter().all(|&v| close(v, 0.5, 0.1)),
            "{:?}",
            out.values
        );
        // Away from the mirrored edges the stretched kernel weighs both colours exactly equally.
        for r in 2..6 {
            for c in 2..6 {
                assert!(
                    close(out.get(r, c), 0.5, 1e-6),
                    "({r},{c}) = {}",
                    out.get(r, c)
                );
            }
        }
    }

    #[test]
    fn empty_sizes_are_errors() {
        let map = Heatmap::new(2, 2, vec![0.0; 4]).unwrap();
        assert!(imresize_bicubic(&map, 0, 3).is_err());
        assert!(imresize_bicubic(&Heatmap::new(0, 2, vec![]).unwrap(), 3, 3).is_err());
    }
}
