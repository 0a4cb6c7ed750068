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
    let (oh, ow) = (max_pool_out(h), max_pool_out(w));
    let pool_plane = |(input, out): (&[f32], &mut [f32]), mut arg: Option<&mut [u8]>| {
        for y in 0..oh {
            let y_end = (2 * y + 3).min(h);
            for x in 0..ow {
                let x_end = (2 * x + 3).min(w);
                let mut best = input[2 * y * w + 2 * x];
                let mut best_at = 0;
                for iy in 2 * y..y_end {
                    for ix in 2 * x..x_end {
                        let v = input[iy * w + ix];
                        if v > best || v.is_nan() {
                            best = v;
                            best_at = (iy - 2 * y) * 3 + ix - 2 * x;
                        }
                    }
                }
                out[y * ow + x] = best;
                if let Some(arg) = arg.as_deref_mut() {
                    arg[y * ow + x] = best_at as u8;
                }
            }
        }
    };
    let inputs = src[..planes * h * w].par_chunks(h * w);
    let outputs = dst[..planes * oh * ow].par_chunks_mut(oh * ow);
    match argmax {
        Some(argmax) => inputs
            .zip(outputs)
            .zip(argmax[..planes * oh * ow].par_chunks_mut(oh * ow))
            .for_each(|(pair, arg)| pool_plane(pair, Some(arg))),
        None => inputs.zip(outputs).for_each(|pair| pool_plane(pair, None)),
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
