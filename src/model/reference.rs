//! The portable path: the same stages written with standard differentiable candle operations.
//!
//! It runs on any device (the engine is CPU-only), and on the CPU it is the independent
//! implementation the engine is tested against. It is slow to train on the CPU: candle's conv2d
//! backward goes through a naive transposed convolution.

use std::ops::Range;

use candle_core::{bail, Result, Tensor, D};

use super::arch::{StageKind, STAGES};

/// Runs `stages` on `x` (`[B, C, H, W]`). `params` are the stages' tensors in packing order;
/// `dropout` is drop9's multiplier (0 or 2 per value, shaped like its input) when training.
pub(crate) fn forward(
    stages: Range<usize>,
    x: &Tensor,
    params: &[Tensor],
    dropout: Option<&Tensor>,
) -> Result<Tensor> {
    let mut x = x.clone();
    let mut params = params.iter();
    let mut next = || {
        params
            .next()
            .ok_or_else(|| candle_core::Error::Msg("too few parameters".into()))
    };
    for stage in &STAGES[stages] {
        x = match stage.kind {
            StageKind::Conv1 => conv_relu(&drop_unused_edge(&x)?, next()?, next()?, 0, 2)?,
            StageKind::MaxPool => max_pool_3x3_s2_ceil(&x)?,
            StageKind::Fire { .. } => {
                let squeezed = conv_relu(&x, next()?, next()?, 0, 1)?;
                let expand1 = conv_relu(&squeezed, next()?, next()?, 0, 1)?;
                let expand3 = conv_relu(&squeezed, next()?, next()?, 1, 1)?;
                Tensor::cat(&[expand1, expand3], 1)?
            }
            StageKind::Classifier => {
                let x = match dropout {
                    Some(multiplier) => x.mul(multiplier)?,
                    None => x,
                };
                conv_relu(&x, next()?, next()?, 0, 1)?
            }
            StageKind::GlobalAvgPool => x.flatten_from(2)?.mean(D::Minus1)?,
        };
    }
    Ok(x)
}

/// conv1's 3x3 stride-2 windows never reach the last row (column) when the side minus 3 is
/// odd; cropping it leaves the output unchanged and spares candle's conv2d backward, which drops
/// the output padding such sides need.
fn drop_unused_edge(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let x = if h >= 3 && (h - 3) % 2 == 1 {
        x.narrow(2, 0, h - 1)?
    } else {
        x.clone()
    };
    if w >= 3 && (w - 3) % 2 == 1 {
        x.narrow(3, 0, w - 1)
    } else {
        Ok(x)
    }
}

fn conv_relu(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    padding: usize,
    stride: usize,
) -> Result<Tensor> {
    let y = x.conv2d(weight, padding, stride, 1, 1)?;
    y.broadcast_add(&bias.reshape((1, bias.dim(0)?, 1, 1))?)?
        .relu()
}

/// PyTorch's `MaxPool2d(3, 2, ceil_mode=True)` from differentiable pieces: max pooling is
/// separable, and along one axis a 3-wide stride-2 window at output `o` covers inputs
/// `2o, 2o + 1, 2o + 2`, i.e. the even, odd and next even element once the axis is padded with
/// -inf and folded into pairs.
pub(crate) fn max_pool_3x3_s2_ceil(x: &Tensor) -> Result<Tensor> {
    let x = pool_axis(x, 3)?;
    pool_axis(&x, 2)
}

fn pool_axis(x: &Tensor, dim: usize) -> Result<Tensor> {
    let len = x.dim(dim)?;
    if len < 2 {
        bail!("max pool needs at least 2 values along dim {dim}, got {len}")
    }
    let out = len / 2;
    let mut pad_shape = x.dims().to_vec();
    pad_shape[dim] = 2 * out + 2 - len;
    let pad = Tensor::full(f32::NEG_INFINITY, pad_shape, x.device())?.to_dtype(x.dtype())?;
    let padded = Tensor::cat(&[x, &pad], dim)?;
    let mut pairs = padded.dims().to_vec();
    pairs[dim] = out + 1;
    pairs.insert(dim + 1, 2);
    let pairs = padded.reshape(pairs)?;
    let even = pairs.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)?;
    let odd = pairs.narrow(dim + 1, 1, 1)?.squeeze(dim + 1)?;
    let first = even.narrow(dim, 0, out)?;
    let middle = odd.narrow(dim, 0, out)?;
    let last = even.narrow(dim, 1, out)?;
    first.maximum(&middle)?.maximum(&last)
}
