//! CPU kernels of the engine. Activations are laid out channel-major, `[C, B, H, W]`: each
//! channel is one contiguous block holding that channel for the whole batch, so a 1x1 convolution
//! is a single matrix product `W[O, C] x X[C, B*H*W]` and stacking channel blocks (the Fire
//! concatenation) is free.

pub(crate) mod conv;
pub(crate) mod gemm;
pub(crate) mod pool;

/// Shape of a channel-major activation `[c, b, h, w]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geom {
    pub c: usize,
    pub b: usize,
    pub h: usize,
    pub w: usize,
}

impl Geom {
    /// Values per channel (the column count of the activation seen as a matrix).
    pub fn n(&self) -> usize {
        self.b * self.h * self.w
    }

    pub fn len(&self) -> usize {
        self.c * self.n()
    }

    /// Number of `h x w` planes.
    pub fn planes(&self) -> usize {
        self.c * self.b
    }
}

/// Reorders `[B, C, H, W]` (candle's layout) into `[C, B, H, W]`.
pub(crate) fn nchw_to_cbhw(src: &[f32], g: Geom, dst: &mut [f32]) {
    use rayon::prelude::*;
    let plane = g.h * g.w;
    dst[..g.len()]
        .par_chunks_mut(g.n())
        .enumerate()
        .for_each(|(c, block)| {
            for (b, out) in block.chunks_mut(plane).enumerate() {
                let start = (b * g.c + c) * plane;
                out.copy_from_slice(&src[start..start + plane]);
            }
        });
}

/// Reorders `[C, B, H, W]` back into `[B, C, H, W]`.
pub(crate) fn cbhw_to_nchw(src: &[f32], g: Geom, dst: &mut [f32]) {
    use rayon::prelude::*;
    let plane = g.h * g.w;
    dst[..g.len()]
        .par_chunks_mut(g.c * plane)
        .enumerate()
        .for_each(|(b, image)| {
            for (c, out) in image.chunks_mut(plane).enumerate() {
                let start = (c * g.b + b) * plane;
                out.copy_from_slice(&src[start..start + plane]);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trip_moves_each_plane() {
        let g = Geom {
            c: 3,
            b: 2,
            h: 2,
            w: 1,
        };
        let nchw: Vec<f32> = (0..g.len()).map(|i| i as f32).collect();
        let mut cbhw = vec![0.0; g.len()];
        nchw_to_cbhw(&nchw, g, &mut cbhw);
        // Channel 1 of image 0 is NCHW elements 2..4, and sits right after channel 0 of both images.
        assert_eq!(&cbhw[..6], &[0.0, 1.0, 6.0, 7.0, 2.0, 3.0]);
        let mut back = vec![0.0; g.len()];
        cbhw_to_nchw(&cbhw, g, &mut back);
        assert_eq!(back, nchw);
    }
}
