//! Pooling kernels on `h x w` planes: the 3x3 stride-2 ceil-mode max pool of SqueezeNet (candle's
//! `max_pool2d` has neither ceil mode nor a backward pass for overlapping windows) and the global
//! average pool.

use rayon::prelude::*;

/// Output side of the 3x3 stride-2 ceil-mode max pool (see `arch::Stage::output_side`).
fn max_pool_out(side: usize) -> usize {
    side / 2
}

/// 3x3 stride-2 ceil-mode max pool over `planes` planes of `h x w`. Windows at the right and
/// bottom edges are clipped to the input. When `argmax` is given, it receives for every output
/// the window position (`dy * 3 + dx`) of the first maximum in row-major order, which is where
/// PyTorch sends the gradient on ties. NaN wins, as in PyTorch.
pub(crate) fn max_pool_forward(
    src: &[f32],
    planes: usize,
    h: usize,
    w: usize,
    dst: &mut [f32],
    argmax: Option<&mut [u8]>,
) {
    let (plane_in, plane_out) = (h * w, max_pool_out(h) * max_pool_out(w));
    let inputs = src[..planes * plane_in].par_chunks(plane_in);
    let outputs = dst[..planes * plane_out].par_chunks_mut(plane_out);
    let scratch = || Scratch::new(h, w);
    match argmax {
        Some(argmax) => inputs
            .zip(outputs)
            .zip(argmax[..planes * plane_out].par_chunks_mut(plane_out))
            .for_each_init(scratch, |scratch, ((input, out), arg)| {
                scratch.pool_plane::<true>(input, out);
                for (a, &s) in arg.iter_mut().zip(&scratch.out_arg) {
                    *a = s as u8;
                }
            }),
        None => inputs
            .zip(outputs)
            .for_each_init(scratch, |scratch, (input, out)| {
                scratch.pool_plane::<false>(input, out)
            }),
    }
}

/// Working memory of one plane's pooling.
///
/// The comparisons are data-dependent, so a branchy scan mispredicts about half the time (four
/// times slower on real activations). The pool is therefore written as unit-stride loops of
/// compare-and-select that the compiler vectorises: each row is split into its even and odd
/// columns, so that window `x` covers `even[x], odd[x], even[x + 1]`; a horizontal pass takes the
/// maximum of each row's windows, a vertical pass the maximum of three such rows. Window
/// positions travel as f32 so that they select in the same vector lanes as the values.
struct Scratch {
    h: usize,
    w: usize,
    even: Vec<f32>,
    odd: Vec<f32>,
    row_max: Vec<f32>,
    row_arg: Vec<f32>,
    out_arg: Vec<f32>,
}

/// `candidate` (at window position `at`) replaces the running maximum if it is larger or NaN.
#[inline(always)]
fn scan(best: f32, best_at: f32, candidate: f32, at: f32) -> (f32, f32) {
    #[allow(clippy::eq_op)] // `c != c` is the vectorisable NaN test
    let take = candidate > best || candidate != candidate;
    if take {
        (candidate, at)
    } else {
        (best, best_at)
    }
}

impl Scratch {
    fn new(h: usize, w: usize) -> Self {
        let (oh, ow) = (max_pool_out(h), max_pool_out(w));
        Self {
            h,
            w,
            even: vec![0.0; w.div_ceil(2)],
            odd: vec![0.0; w / 2],
            row_max: vec![0.0; h * ow],
            row_arg: vec![0.0; h * ow],
            out_arg: vec![0.0; oh * ow],
        }
    }

    /// Pools one plane into `out`, leaving the window positions in `out_arg` when `ARGS`. Without
    /// a backward pass to follow (inference, scans) the positions are not tracked at all: the
    /// compiler drops their selects, which were half the pool's work.
    fn pool_plane<const ARGS: bool>(&mut self, input: &[f32], out: &mut [f32]) {
        let (h, w) = (self.h, self.w);
        let (oh, ow) = (max_pool_out(h), max_pool_out(w));
        // Windows with a third column / row; with an even side the last window is clipped to two.
        let (full_x, full_y) = ((w - 1) / 2, (h - 1) / 2);
        for (y, line) in input.chunks_exact(w).enumerate() {
            for ((e, o), pair) in self
                .even
                .iter_mut()
                .zip(self.odd.iter_mut())
                .zip(line.chunks_exact(2))
            {
                (*e, *o) = (pair[0], pair[1]);
            }
            if w % 2 == 1 {
                self.even[w / 2] = line[w - 1];
            }
            let maxima = &mut self.row_max[y * ow..(y + 1) * ow];
            let args = &mut self.row_arg[y * ow..(y + 1) * ow];
            let columns = self.even.iter().zip(&self.odd).zip(&self.even[1..]);
            for ((m, a), ((&e0, &o), &e1)) in maxima
                .iter_mut()
                .zip(args.iter_mut())
                .zip(columns)
                .take(full_x)
            {
                let (best, at) = scan(e0, 0.0, o, 1.0);
                let (best, at) = scan(best, at, e1, 2.0);
                *m = best;
                if ARGS {
                    *a = at;
                }
            }
            if full_x < ow {
                let (best, at) = scan(self.even[ow - 1], 0.0, self.odd[ow - 1], 1.0);
                maxima[ow - 1] = best;
                if ARGS {
                    args[ow - 1] = at;
                }
            }
        }
        for y in 0..oh {
            let row = |r: usize| {
                (
                    &self.row_max[r * ow..(r + 1) * ow],
                    &self.row_arg[r * ow..(r + 1) * ow],
                )
            };
            let ((max0, arg0), (max1, arg1)) = (row(2 * y), row(2 * y + 1));
            let out_line = &mut out[y * ow..(y + 1) * ow];
            let arg_line = &mut self.out_arg[y * ow..(y + 1) * ow];
            let pairs = out_line
                .iter_mut()
                .zip(arg_line.iter_mut())
                .zip(max0.iter().zip(arg0).zip(max1.iter().zip(arg1)));
            if y < full_y {
                let (max2, arg2) = row(2 * y + 2);
                for (((o, a), ((&m0, &a0), (&m1, &a1))), (&m2, &a2)) in
                    pairs.zip(max2.iter().zip(arg2))
                {
                    let (best, at) = scan(m0, a0, m1, 3.0 + a1);
                    let (best, at) = scan(best, at, m2, 6.0 + a2);
                    *o = best;
                    if ARGS {
                        *a = at;
                    }
                }
            } else {
                for ((o, a), ((&m0, &a0), (&m1, &a1))) in pairs {
                    let (best, at) = scan(m0, a0, m1, 3.0 + a1);
                    *o = best;
                    if ARGS {
                        *a = at;
                    }
                }
            }
        }
    }
}

/// Backward pass of [`max_pool_forward`]: each output gradient goes to its window's recorded
/// maximum; `dst` (`planes x h x w`) is overwritten.
pub(crate) fn max_pool_backward(
    grad: &[f32],
    argmax: &[u8],
    planes: usize,
    h: usize,
    w: usize,
    dst: &mut [f32],
) {
    let (oh, ow) = (max_pool_out(h), max_pool_out(w));
    dst[..planes * h * w]
        .par_chunks_mut(h * w)
        .zip(grad[..planes * oh * ow].par_chunks(oh * ow))
        .zip(argmax[..planes * oh * ow].par_chunks(oh * ow))
        .for_each(|((input, grad), arg)| {
            input.fill(0.0);
            for y in 0..oh {
                for x in 0..ow {
                    let at = usize::from(arg[y * ow + x]);
                    input[(2 * y + at / 3) * w + 2 * x + at % 3] += grad[y * ow + x];
                }
            }
        });
}

/// Mean of each `h x w` plane.
pub(crate) fn global_avg_pool_forward(
    src: &[f32],
    planes: usize,
    plane_len: usize,
    dst: &mut [f32],
) {
    dst[..planes].par_iter_mut().enumerate().for_each(|(p, d)| {
        let sum: f64 = src[p * plane_len..(p + 1) * plane_len]
            .iter()
            .map(|&v| f64::from(v))
            .sum();
        *d = (sum / plane_len as f64) as f32;
    });
}

/// Backward pass of [`global_avg_pool_forward`]: spreads each gradient evenly over its plane.
pub(crate) fn global_avg_pool_backward(
    grad: &[f32],
    planes: usize,
    plane_len: usize,
    dst: &mut [f32],
) {
    let scale = 1.0 / plane_len as f32;
    dst[..planes * plane_len]
        .par_chunks_mut(plane_len)
        .zip(&grad[..planes])
        .for_each(|(plane, &g)| {
            plane.fill(g * scale);
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_mode_keeps_clipped_edge_windows() {
        // 4x5 plane -> 2x2 output; the last column window covers input columns 2..5 only for
        // x = 1 (2*1 .. 2*1+3 = 2..5), the last row window rows 2..4 (clipped to 2 rows).
        let src: Vec<f32> = (0..20).map(|i| i as f32).collect();
        let mut out = vec![0.0; 4];
        let mut arg = vec![0u8; 4];
        max_pool_forward(&src, 1, 4, 5, &mut out, Some(&mut arg));
        assert_eq!(out, vec![12.0, 14.0, 17.0, 19.0]);
        assert_eq!(arg, vec![8, 8, 5, 5]);
    }

    #[test]
    fn ties_go_to_the_first_maximum_like_pytorch() {
        let src = vec![1.0, 3.0, 3.0, 0.0, 3.0, 2.0, 3.0, 0.0, 0.0];
        let mut out = vec![0.0; 1];
        let mut arg = vec![0u8; 1];
        max_pool_forward(&src, 1, 3, 3, &mut out, Some(&mut arg));
        assert_eq!((out[0], arg[0]), (3.0, 1));
        let mut grad_in = vec![f32::NAN; 9];
        max_pool_backward(&[2.5], &arg, 1, 3, 3, &mut grad_in);
        assert_eq!(grad_in, vec![0.0, 2.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn nan_wins_its_window_like_pytorch() {
        let mut src: Vec<f32> = (0..9).map(|i| i as f32).collect();
        src[4] = f32::NAN;
        let (mut out, mut arg) = (vec![0.0; 1], vec![0u8; 1]);
        max_pool_forward(&src, 1, 3, 3, &mut out, Some(&mut arg));
        assert!(out[0].is_nan());
        assert_eq!(arg[0], 4);
        max_pool_forward(&src, 1, 3, 3, &mut out, None);
        assert!(out[0].is_nan());
    }

    #[test]
    fn pooling_without_positions_gives_the_same_values() {
        // Odd and even sides (clipped last windows), ties, and a NaN in some planes.
        for (h, w) in [(7, 9), (8, 6), (13, 13), (2, 5)] {
            let planes = 3;
            let mut src: Vec<f32> = (0..planes * h * w)
                .map(|i| ((i * 7919) % 23) as f32 - 11.0)
                .collect();
            src[h * w + w / 2] = f32::NAN;
            let len = planes * max_pool_out(h) * max_pool_out(w);
            let (mut tracked, mut untracked) = (vec![0.0; len], vec![0.0; len]);
            let mut arg = vec![0u8; len];
            max_pool_forward(&src, planes, h, w, &mut tracked, Some(&mut arg));
            max_pool_forward(&src, planes, h, w, &mut untracked, None);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&tracked), bits(&untracked), "{h}x{w}");
        }
    }

    #[test]
    fn overlapping_windows_accumulate_gradient() {
        // The centre column/row of a 5x5 plane is shared by neighbouring windows.
        let mut src = vec![0.0; 25];
        src[2 * 5 + 2] = 9.0;
        let mut out = vec![0.0; 4];
        let mut arg = vec![0u8; 4];
        max_pool_forward(&src, 1, 5, 5, &mut out, Some(&mut arg));
        assert_eq!(out, vec![9.0; 4]);
        let mut grad_in = vec![0.0; 25];
        max_pool_backward(&[1.0, 2.0, 3.0, 4.0], &arg, 1, 5, 5, &mut grad_in);
        assert_eq!(grad_in[12], 10.0);
        assert_eq!(grad_in.iter().sum::<f32>(), 10.0);
    }

    #[test]
    fn global_average_and_its_gradient() {
        let src = vec![1.0, 2.0, 3.0, 6.0, 0.0, 0.0];
        let mut out = vec![0.0; 2];
        global_avg_pool_forward(&src, 2, 3, &mut out);
        assert_eq!(out, vec![2.0, 2.0]);
        let mut grad_in = vec![0.0; 6];
        global_avg_pool_backward(&[3.0, 6.0], 2, 3, &mut grad_in);
        assert_eq!(grad_in, vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    }
}
