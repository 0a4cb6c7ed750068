//! Convolution helpers: unfolding (im2col) a block of output positions, its adjoint fold
//! (col2im), and the cheap per-channel passes around every convolution (bias + ReLU, ReLU's
//! gradient mask fused with the bias gradient).

use rayon::prelude::*;

use super::gemm::{Mat, MatMut};
use super::Geom;

/// Square kernel geometry: side, stride and zero padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kernel {
    pub size: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Kernel {
    /// Output side for an input side (the caller has checked that the kernel fits).
    pub fn out_side(&self, side: usize) -> usize {
        (side + 2 * self.pad - self.size) / self.stride + 1
    }

    /// Output columns `lo..hi` whose input column `x * stride + tap - pad` lies inside `0..side`.
    fn valid(&self, tap: usize, side: usize, out: usize) -> (usize, usize) {
        let lo = self.pad.saturating_sub(tap).div_ceil(self.stride);
        let hi = if side + self.pad > tap {
            ((side + self.pad - tap - 1) / self.stride + 1).min(out)
        } else {
            0
        };
        (lo.min(hi), hi)
    }
}

/// Unfolds the output positions `positions` (indices into `B * OH * OW`) of a convolution over
/// `src` (`[C, B, H, W]`) into `dst`, a `[C * k * k, positions.len()]` matrix whose row
/// `c * k * k + ky * k + kx` holds the input pixel under tap (ky, kx) (zero in the padding).
/// That row order matches a PyTorch weight `[O, C, k, k]` read as an `[O, C * k * k]` matrix.
pub(crate) fn im2col(
    src: &[f32],
    g: Geom,
    kernel: Kernel,
    positions: std::ops::Range<usize>,
    dst: &mut [f32],
) {
    if kernel == SAME_3X3 {
        return im2col_same_3x3(src, g, positions, dst);
    }
    let (oh, ow) = (kernel.out_side(g.h), kernel.out_side(g.w));
    let taps = kernel.size * kernel.size;
    let len = positions.len();
    for (row_index, row) in dst[..g.c * taps * len].chunks_exact_mut(len).enumerate() {
        let c = row_index / taps;
        let (ky, kx) = ((row_index % taps) / kernel.size, row_index % kernel.size);
        let (x_lo, x_hi) = kernel.valid(kx, g.w, ow);
        let (y_lo, y_hi) = kernel.valid(ky, g.h, oh);
        // Walk the positions one output line (fixed image and output row) at a time.
        let mut p = positions.start;
        while p < positions.end {
            let (b, y, x0) = (p / (oh * ow), p / ow % oh, p % ow);
            let x1 = ow.min(x0 + positions.end - p);
            let out = &mut row[p - positions.start..p - positions.start + x1 - x0];
            p += x1 - x0;
            if y < y_lo || y >= y_hi {
                out.fill(0.0);
                continue;
            }
            let line =
                &src[((c * g.b + b) * g.h + y * kernel.stride + ky - kernel.pad) * g.w..][..g.w];
            let (lo, hi) = (x_lo.clamp(x0, x1), x_hi.clamp(x0, x1));
            out[..lo - x0].fill(0.0);
            out[hi.max(lo) - x0..].fill(0.0);
            if lo >= hi {
                continue;
            }
            let target = &mut out[lo - x0..hi - x0];
            if kernel.stride == 1 {
                let shift = lo + kx - kernel.pad;
                target.copy_from_slice(&line[shift..shift + hi - lo]);
            } else {
                let src = line[lo * kernel.stride + kx - kernel.pad..]
                    .iter()
                    .step_by(kernel.stride);
                for (v, s) in target.iter_mut().zip(src) {
                    *v = *s;
                }
            }
        }
    }
}

/// The 3x3, stride 1, padding 1 convolution of the Fire modules.
pub(crate) const SAME_3X3: Kernel = Kernel {
    size: 3,
    stride: 1,
    pad: 1,
};

/// [`im2col`] for [`SAME_3X3`], where output and input share positions: the row of tap
/// (ky, kx) is the input plane shifted by `(ky - 1) * W + (kx - 1)`. Each run of positions within
/// one image is therefore one contiguous copy (zero where the shift leaves the plane), after
/// which only the pixels that the shift wrapped around a line edge are cleared. Far fewer and
/// longer copies than line by line, which matters for the 13- and 14-pixel lines of fire6-fire9.
fn im2col_same_3x3(src: &[f32], g: Geom, positions: std::ops::Range<usize>, dst: &mut [f32]) {
    let plane = g.h * g.w;
    let len = positions.len();
    for (row_index, row) in dst[..g.c * 9 * len].chunks_exact_mut(len).enumerate() {
        let c = row_index / 9;
        let (ky, kx) = (row_index % 9 / 3, row_index % 3);
        let shift = (ky * g.w + kx) as isize - (g.w + 1) as isize;
        let mut p = positions.start;
        while p < positions.end {
            let (b, s) = (p / plane, p % plane);
            let run = (plane - s).min(positions.end - p);
            let out = &mut row[p - positions.start..p - positions.start + run];
            let source = &src[(c * g.b + b) * plane..][..plane];
            // Source indices s + shift .. s + shift + run, clipped to the plane.
            let first = (s as isize + shift).max(0) as usize;
            let end = ((s + run) as isize + shift).clamp(0, plane as isize) as usize;
            let lead = (first as isize - s as isize - shift) as usize;
            let copied = end.saturating_sub(first);
            out[..lead.min(run)].fill(0.0);
            if copied > 0 {
                out[lead..lead + copied].copy_from_slice(&source[first..end]);
            }
            out[(lead + copied).min(run)..].fill(0.0);
            // Taps reading left of column 0 or right of column W - 1 wrapped to the next line.
            let edge = match kx {
                0 => Some(0),
                2 => Some(g.w - 1),
                _ => None,
            };
            if let Some(edge) = edge {
                let start = (edge + g.w - s % g.w) % g.w;
                for v in out.iter_mut().skip(start).step_by(g.w) {
                    *v = 0.0;
                }
            }
            p += run;
        }
    }
}

/// The adjoint of [`im2col`] over all positions: sums every entry of `cols`
/// (`[C * k * k, B * OH * OW]`) back onto the input pixel it was read from. `dst`
/// (`[C, B, H, W]`) is overwritten.
pub(crate) fn col2im(cols: &[f32], g: Geom, kernel: Kernel, dst: &mut [f32]) {
    let (oh, ow) = (kernel.out_side(g.h), kernel.out_side(g.w));
    let taps = kernel.size * kernel.size;
    let n_out = g.b * oh * ow;
    dst[..g.len()]
        .par_chunks_mut(g.n())
        .enumerate()
        .for_each(|(c, channel)| {
            channel.fill(0.0);
            for tap in 0..taps {
                let (ky, kx) = (tap / kernel.size, tap % kernel.size);
                let row = &cols[(c * taps + tap) * n_out..][..n_out];
                let (x_lo, x_hi) = kernel.valid(kx, g.w, ow);
                let (y_lo, y_hi) = kernel.valid(ky, g.h, oh);
                for b in 0..g.b {
                    let plane = &mut channel[b * g.h * g.w..][..g.h * g.w];
                    for y in y_lo..y_hi {
                        let src = &row[(b * oh + y) * ow..][..ow];
                        let line = &mut plane[(y * kernel.stride + ky - kernel.pad) * g.w..][..g.w];
                        for (x, s) in src.iter().enumerate().take(x_hi).skip(x_lo) {
                            line[x * kernel.stride + kx - kernel.pad] += s;
                        }
                    }
                }
            }
        });
}

/// `dst[o, :] = relu(dst[o, :] + bias[o])`; NaN stays NaN, as in PyTorch.
pub(crate) fn add_bias_relu(dst: &mut MatMut<'_>, bias: &[f32]) {
    assert_eq!(dst.rows(), bias.len());
    for (o, &b) in bias.iter().enumerate() {
        for v in dst.row(o) {
            let t = *v + b;
            *v = if t < 0.0 { 0.0 } else { t };
        }
    }
}

/// ReLU's backward pass on rows of `grad` (a dense `[rows, len]` block): zeroes the gradient
/// wherever the ReLU output (`output`, same shape, possibly strided) was not positive, and adds
/// each masked row's sum (the bias gradient) to `sums`.
pub(crate) fn relu_backward_rows(grad: &mut MatMut<'_>, output: Mat<'_>, sums: &mut [f64]) {
    for (r, sum) in sums.iter_mut().enumerate().take(grad.rows()) {
        *sum += mask_and_sum(grad.row(r), output.row(r));
    }
}

/// Zeroes `grad` where `output <= 0` and returns the sum of what is left. Works in chunks that
/// stay in L1: a masking loop, then eight f32 lanes of partial sums (both shapes the compiler
/// vectorises), flushed into f64 every chunk to stay accurate over very long rows.
fn mask_and_sum(grad: &mut [f32], output: &[f32]) -> f64 {
    let mut total = 0.0f64;
    for (g, o) in grad.chunks_mut(1024).zip(output.chunks(1024)) {
        for (g, &o) in g.iter_mut().zip(o) {
            *g = if o > 0.0 { *g } else { 0.0 };
        }
        let mut lanes = [0.0f32; 8];
        let whole = g.chunks_exact(8);
        let rest: f32 = whole.remainder().iter().sum();
        for chunk in whole {
            for (lane, &v) in lanes.iter_mut().zip(chunk) {
                *lane += v;
            }
        }
        total += lanes.iter().map(|&v| f64::from(v)).sum::<f64>() + f64::from(rest);
    }
    total
}

/// [`relu_backward_rows`] over a whole `[rows, n]` activation, in parallel over rows; writes the
/// bias gradient to `bias_grad`.
pub(crate) fn relu_backward(grad: &mut [f32], output: &[f32], n: usize, bias_grad: &mut [f32]) {
    grad[..bias_grad.len() * n]
        .par_chunks_mut(n)
        .zip(output.par_chunks(n))
        .zip(bias_grad.par_iter_mut())
        .for_each(|((g, o), b)| {
            *b = mask_and_sum(g, o) as f32;
        });
}

#[cfg(test)]
mod tests {
    use super::super::gemm::matmul;
    use super::*;

    /// Direct convolution of one channel-major input with weights `[O, C, k, k]` (no bias).
    fn direct_conv(
        src: &[f32],
        g: Geom,
        weights: &[f32],
        outputs: usize,
        kernel: Kernel,
    ) -> Vec<f32> {
        let (oh, ow) = (kernel.out_side(g.h), kernel.out_side(g.w));
        let k = kernel.size;
        let mut out = vec![0.0; outputs * g.b * oh * ow];
        for o in 0..outputs {
            for b in 0..g.b {
                for y in 0..oh {
                    for x in 0..ow {
                        let mut acc = 0.0;
                        for c in 0..g.c {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let iy =
                                        (y * kernel.stride + ky) as isize - kernel.pad as isize;
                                    let ix =
                                        (x * kernel.stride + kx) as isize - kernel.pad as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let v = src
                                        [((c * g.b + b) * g.h + iy as usize) * g.w + ix as usize];
                                    acc += v * weights[((o * g.c + c) * k + ky) * k + kx];
                                }
                            }
                        }
                        out[((o * g.b + b) * oh + y) * ow + x] = acc;
                    }
                }
            }
        }
        out
    }

    fn values(len: usize, seed: f32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as f32 + seed) * 0.731).sin())
            .collect()
    }

    const KERNELS: [Kernel; 2] = [
        Kernel {
            size: 3,
            stride: 1,
            pad: 1,
        },
        Kernel {
            size: 3,
            stride: 2,
            pad: 0,
        },
    ];

    #[test]
    fn unfolded_blocks_times_weights_equal_direct_convolution() {
        let g = Geom {
            c: 2,
            b: 2,
            h: 7,
            w: 6,
        };
        let src = values(g.len(), 0.0);
        for kernel in KERNELS {
            let outputs = 3;
            let weights = values(outputs * g.c * 9, 5.0);
            let n_out = g.b * kernel.out_side(g.h) * kernel.out_side(g.w);
            let expected = direct_conv(&src, g, &weights, outputs, kernel);
            // Blocks that start and end mid-line and span images.
            for step in [n_out, 5, 7] {
                let mut out = vec![0.0; outputs * n_out];
                let mut start = 0;
                while start < n_out {
                    let range = start..(start + step).min(n_out);
                    let mut cols = vec![f32::NAN; g.c * 9 * range.len()];
                    im2col(&src, g, kernel, range.clone(), &mut cols);
                    let mut block = vec![0.0; outputs * range.len()];
                    let weights = Mat::new(&weights, outputs, g.c * 9);
                    let dst = &mut MatMut::new(&mut block, outputs, range.len());
                    matmul(dst, weights, Mat::new(&cols, g.c * 9, range.len()), false);
                    for o in 0..outputs {
                        out[o * n_out + range.start..o * n_out + range.end]
                            .copy_from_slice(&block[o * range.len()..(o + 1) * range.len()]);
                    }
                    start = range.end;
                }
                for (a, b) in out.iter().zip(&expected) {
                    assert!(
                        (a - b).abs() < 1e-5,
                        "{kernel:?}, blocks of {step}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn fold_is_the_adjoint_of_unfold() {
        // <im2col(x), y> == <x, col2im(y)> for all x, y characterises the adjoint.
        let g = Geom {
            c: 3,
            b: 2,
            h: 6,
            w: 5,
        };
        for kernel in KERNELS {
            let n_out = g.b * kernel.out_side(g.h) * kernel.out_side(g.w);
            let x = values(g.len(), 1.0);
            let y = values(g.c * 9 * n_out, 2.0);
            let mut cols = vec![0.0; y.len()];
            im2col(&x, g, kernel, 0..n_out, &mut cols);
            let mut folded = vec![f32::NAN; g.len()];
            col2im(&y, g, kernel, &mut folded);
            let lhs: f64 = cols.iter().zip(&y).map(|(a, b)| f64::from(a * b)).sum();
            let rhs: f64 = x.iter().zip(&folded).map(|(a, b)| f64::from(a * b)).sum();
            assert!(
                (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
                "{kernel:?}: {lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn elementwise_passes() {
        let mut out = vec![-1.0, 0.5, 2.0, -3.0, 1.5, 1.0];
        add_bias_relu(&mut MatMut::new(&mut out, 2, 3), &[1.0, -1.0]);
        assert_eq!(out, vec![0.0, 1.5, 3.0, 0.0, 0.5, 0.0]);
        let mut nan = vec![f32::NAN];
        add_bias_relu(&mut MatMut::new(&mut nan, 1, 1), &[0.0]);
        assert!(nan[0].is_nan(), "ReLU swallowed a NaN");
        let mut grad = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut bias = vec![0.0; 2];
        relu_backward(&mut grad, &out, 3, &mut bias);
        assert_eq!(grad, vec![0.0, 2.0, 3.0, 0.0, 5.0, 0.0]);
        assert_eq!(bias, vec![5.0, 5.0]);
    }
}
