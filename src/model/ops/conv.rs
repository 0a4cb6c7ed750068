//! Convolution helpers: unfold (im2col) and its adjoint fold (col2im) for square kernels, plus the
//! cheap per-channel passes that surround every convolution (bias + ReLU, ReLU's gradient mask,
//! bias gradients).

use rayon::prelude::*;

use super::{Geom, CHUNK};

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

/// Unfolds `src` (`[C, B, H, W]`) into `dst`, a `[C * k * k, B * OH * OW]` matrix whose row
/// `c * k * k + ky * k + kx` holds the input pixel under tap (ky, kx) for every output position.
/// That row order matches a PyTorch weight `[O, C, k, k]` read as an `[O, C * k * k]` matrix.
pub(crate) fn im2col(src: &[f32], g: Geom, kernel: Kernel, dst: &mut [f32]) {
    let (oh, ow) = (kernel.out_side(g.h), kernel.out_side(g.w));
    let taps = kernel.size * kernel.size;
    let n_out = g.b * oh * ow;
    dst[..g.c * taps * n_out]
        .par_chunks_mut(n_out)
        .enumerate()
        .for_each(|(row_index, row)| {
            let c = row_index / taps;
            let (ky, kx) = ((row_index % taps) / kernel.size, row_index % kernel.size);
            let (x_lo, x_hi) = kernel.valid(kx, g.w, ow);
            let (y_lo, y_hi) = kernel.valid(ky, g.h, oh);
            for b in 0..g.b {
                let plane = &src[(c * g.b + b) * g.h * g.w..][..g.h * g.w];
                for y in 0..oh {
                    let out = &mut row[(b * oh + y) * ow..][..ow];
                    if y < y_lo || y >= y_hi {
                        out.fill(0.0);
                        continue;
                    }
                    let line = &plane[(y * kernel.stride + ky - kernel.pad) * g.w..][..g.w];
                    out[..x_lo].fill(0.0);
                    out[x_hi..].fill(0.0);
                    if kernel.stride == 1 {
                        let shift = x_lo + kx - kernel.pad;
                        out[x_lo..x_hi].copy_from_slice(&line[shift..shift + x_hi - x_lo]);
                    } else {
                        for (x, v) in out.iter_mut().enumerate().take(x_hi).skip(x_lo) {
                            *v = line[x * kernel.stride + kx - kernel.pad];
                        }
                    }
                }
            }
        });
}

/// The adjoint of [`im2col`]: sums every column entry back onto the input pixel it was read
/// from. `dst` (`[C, B, H, W]`) is overwritten.
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
                        if kernel.stride == 1 {
                            let shift = x_lo + kx - kernel.pad;
                            let target = &mut line[shift..shift + x_hi - x_lo];
                            for (t, s) in target.iter_mut().zip(&src[x_lo..x_hi]) {
                                *t += s;
                            }
                        } else {
                            for (x, s) in src.iter().enumerate().take(x_hi).skip(x_lo) {
                                line[x * kernel.stride + kx - kernel.pad] += s;
                            }
                        }
                    }
                }
            }
        });
}

/// `out[o, :] = max(out[o, :] + bias[o], 0)` for a `[O, n]` matrix.
pub(crate) fn add_bias_relu(out: &mut [f32], bias: &[f32], n: usize) {
    out[..bias.len() * n]
        .par_chunks_mut(n)
        .zip(bias)
        .for_each(|(row, &b)| {
            for v in row.iter_mut() {
                *v = (*v + b).max(0.0);
            }
        });
}

/// ReLU's backward pass in place: zeroes the gradient wherever the ReLU output was not positive.
pub(crate) fn relu_backward(grad: &mut [f32], output: &[f32]) {
    assert_eq!(grad.len(), output.len());
    grad.par_chunks_mut(CHUNK)
        .zip(output.par_chunks(CHUNK))
        .for_each(|(g, o)| {
            for (g, &o) in g.iter_mut().zip(o) {
                if o <= 0.0 {
                    *g = 0.0;
                }
            }
        });
}

/// Bias gradient: `dst[o] = sum of row o` of a `[O, n]` matrix, summed in f64.
pub(crate) fn row_sums(rows: &[f32], n: usize, dst: &mut [f32]) {
    dst.par_iter_mut().enumerate().for_each(|(o, d)| {
        *d = rows[o * n..(o + 1) * n]
            .iter()
            .map(|&v| f64::from(v))
            .sum::<f64>() as f32;
    });
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn unfold_then_product_equals_direct_convolution() {
        let g = Geom {
            c: 2,
            b: 2,
            h: 7,
            w: 6,
        };
        let src = values(g.len(), 0.0);
        for kernel in [
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
        ] {
            let outputs = 3;
            let weights = values(outputs * g.c * 9, 5.0);
            let (oh, ow) = (kernel.out_side(g.h), kernel.out_side(g.w));
            let n_out = g.b * oh * ow;
            let mut cols = vec![f32::NAN; g.c * 9 * n_out];
            im2col(&src, g, kernel, &mut cols);
            let mut out = vec![0.0; outputs * n_out];
            super::super::gemm::matmul(
                &mut out,
                super::super::gemm::Mat::new(&weights, outputs, g.c * 9),
                super::super::gemm::Mat::new(&cols, g.c * 9, n_out),
                false,
            );
            let expected = direct_conv(&src, g, &weights, outputs, kernel);
            for (a, b) in out.iter().zip(&expected) {
                assert!((a - b).abs() < 1e-5, "{kernel:?}: {a} vs {b}");
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
        for kernel in [
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
        ] {
            let n_out = g.b * kernel.out_side(g.h) * kernel.out_side(g.w);
            let x = values(g.len(), 1.0);
            let y = values(g.c * 9 * n_out, 2.0);
            let mut cols = vec![0.0; y.len()];
            im2col(&x, g, kernel, &mut cols);
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
        let mut out = vec![-1.0, 0.5, 2.0, -3.0];
        add_bias_relu(&mut out, &[1.0, -1.0], 2);
        assert_eq!(out, vec![0.0, 1.5, 1.0, 0.0]);
        let mut grad = vec![1.0, 2.0, 3.0, 4.0];
        relu_backward(&mut grad, &out);
        assert_eq!(grad, vec![0.0, 2.0, 3.0, 0.0]);
        let mut sums = vec![0.0; 2];
        row_sums(&grad, 2, &mut sums);
        assert_eq!(sums, vec![2.0, 3.0]);
    }
}
