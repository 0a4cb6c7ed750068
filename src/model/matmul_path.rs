//! The network as matrix products, for devices other than the CPU (the engine is CPU-only).
//!
//! Stock candle convolutions train slowly on a GPU: conv2d's input gradient goes through a
//! hand-written transposed-convolution kernel. Here activations are kept channel-major,
//! `[C, B, H, W]`, as the CPU engine keeps them, so that every convolution is one matrix product
//! `weight [Cout, Cin * k * k] x columns [Cin * k * k, B * H * W]`: a 1x1 convolution needs no
//! unfolding at all (17 of the 26), a 3x3 one stacks nine shifted views of its input. Forward and
//! both backward products are then plain matmuls (cuBLAS on CUDA); the rest (shifts, pads,
//! concatenation, the ceil-mode max pool, bias and ReLU) are copies and element-wise kernels.
//! Built only from differentiable candle operations, so autograd gives the backward pass, and it
//! runs on the CPU too, where the tests check it against the engine and the reference path.

use std::ops::Range;

use candle_core::{Result, Tensor, D};

use super::arch::{StageKind, STAGES};
use super::reference::max_pool_3x3_s2_ceil;

/// Runs `stages` on `x` (`[B, C, H, W]`, returned in the same layout, or `[B, C]` after pool10).
/// `params` and `dropout` as in [`super::reference::forward`].
pub(crate) fn forward(
    stages: Range<usize>,
    x: &Tensor,
    params: &[Tensor],
    dropout: Option<&Tensor>,
) -> Result<Tensor> {
    let mut x = x.permute((1, 0, 2, 3))?.contiguous()?;
    let mut params = params.iter();
    let mut next = || {
        params
            .next()
            .ok_or_else(|| candle_core::Error::Msg("too few parameters".into()))
    };
    let mut pooled = false;
    for stage in &STAGES[stages] {
        x = match stage.kind {
            StageKind::Conv1 => conv3x3_relu(&x, next()?, next()?, 0, 2)?,
            // The pool works on the last two dimensions whatever comes before them.
            StageKind::MaxPool => max_pool_3x3_s2_ceil(&x)?,
            StageKind::Fire { .. } => {
                let squeezed = conv1x1_relu(&x, next()?, next()?)?;
                let expand1 = conv1x1_relu(&squeezed, next()?, next()?)?;
                let expand3 = conv3x3_relu(&squeezed, next()?, next()?, 1, 1)?;
                Tensor::cat(&[expand1, expand3], 0)?
            }
            StageKind::Classifier => {
                let x = match dropout {
                    Some(multiplier) => x.mul(&multiplier.permute((1, 0, 2, 3))?)?,
                    None => x,
                };
                conv1x1_relu(&x, next()?, next()?)?
            }
            StageKind::GlobalAvgPool => {
                pooled = true;
                x.flatten_from(2)?.mean(D::Minus1)?
            }
        };
    }
    if pooled {
        x.t()?.contiguous()
    } else {
        x.permute((1, 0, 2, 3))?.contiguous()
    }
}

/// `weight [Cout, Cin, 1, 1]` applied to `x [Cin, B, H, W]`, plus bias, ReLU.
fn conv1x1_relu(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let (cin, batch, h, w) = x.dims4()?;
    let cout = weight.dim(0)?;
    let y = weight
        .reshape((cout, cin))?
        .matmul(&x.reshape((cin, batch * h * w))?)?;
    bias_relu(&y, bias)?.reshape((cout, batch, h, w))
}

/// A 3x3 convolution (`padding` zeros on every side, `stride` 1 or 2) as one matrix product over
/// the nine shifted views of `x [Cin, B, H, W]`, plus bias, ReLU.
fn conv3x3_relu(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    padding: usize,
    stride: usize,
) -> Result<Tensor> {
    let x = if padding > 0 {
        x.pad_with_zeros(2, padding, padding)?
            .pad_with_zeros(3, padding, padding)?
    } else {
        x.clone()
    };
    let (cin, batch, h, w) = x.dims4()?;
    let (out_h, out_w) = ((h - 3) / stride + 1, (w - 3) / stride + 1);
    let mut views = Vec::with_capacity(9);
    for ky in 0..3 {
        let rows = strided(&x, 2, ky, out_h, stride)?;
        for kx in 0..3 {
            views.push(strided(&rows, 3, kx, out_w, stride)?);
        }
    }
    // Rows ordered (input channel, ky, kx): the order of the weight's flattened last three axes.
    let columns = Tensor::stack(&views, 1)?.reshape((cin * 9, batch * out_h * out_w))?;
    let cout = weight.dim(0)?;
    let y = weight.reshape((cout, cin * 9))?.matmul(&columns)?;
    bias_relu(&y, bias)?.reshape((cout, batch, out_h, out_w))
}

/// Elements `start, start + stride, ...` (`len` of them) along `dim`: a narrow for stride 1, and
/// for stride 2 a narrow to pairs of which the first is kept (zero-padded when the last pair would
/// run past the end, a value no kept element reads).
fn strided(x: &Tensor, dim: usize, start: usize, len: usize, stride: usize) -> Result<Tensor> {
    if stride == 1 {
        return x.narrow(dim, start, len);
    }
    debug_assert_eq!(stride, 2);
    let available = x.dim(dim)? - start;
    let x = if available < 2 * len {
        x.pad_with_zeros(dim, 0, 2 * len - available)?
    } else {
        x.clone()
    };
    let mut pairs = x.dims().to_vec();
    pairs[dim] = len;
    pairs.insert(dim + 1, 2);
    x.narrow(dim, start, 2 * len)?
        .reshape(pairs)?
        .narrow(dim + 1, 0, 1)?
        .squeeze(dim + 1)
}

/// `y [Cout, N] + bias`, ReLU.
fn bias_relu(y: &Tensor, bias: &Tensor) -> Result<Tensor> {
    y.broadcast_add(&bias.reshape((bias.dim(0)?, 1))?)?.relu()
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::super::arch;
    use super::super::testutil::{assert_close, random_model, random_tensor, to_vec};
    use super::super::SqueezeNet;
    use super::*;

    fn params(model: &SqueezeNet, stages: Range<usize>) -> Vec<Tensor> {
        model.backbone_params(stages)
    }

    #[test]
    fn every_stage_range_matches_the_reference_path() {
        let (model, _) = random_model(Some(2), 3);
        for side in [227, 64, 40, 17] {
            let x = random_tensor(&[2, 3, side, side], side as u64);
            for range in [arch::ALL, 0..1, 0..5, 3..9, 5..arch::CLASSIFIER] {
                let input = super::super::reference::forward(
                    0..range.start,
                    &x,
                    &params(&model, 0..range.start),
                    None,
                )
                .unwrap();
                let p = params(&model, range.clone());
                let want =
                    super::super::reference::forward(range.clone(), &input, &p, None).unwrap();
                let got = forward(range.clone(), &input, &p, None).unwrap();
                assert_eq!(got.dims(), want.dims(), "{range:?} at {side} px");
                assert_close(
                    &to_vec(&got),
                    &to_vec(&want),
                    1e-4,
                    &format!("{range:?} at {side} px"),
                );
            }
        }
    }

    #[test]
    fn gradients_match_the_reference_path_with_dropout() {
        let (model, _) = random_model(Some(2), 5);
        let x = Var::from_tensor(&random_tensor(&[2, 3, 67, 67], 1)).unwrap();
        let p: Vec<Var> = params(&model, arch::ALL)
            .iter()
            .map(|t| Var::from_tensor(t).unwrap())
            .collect();
        let side = arch::side_after(0..arch::CLASSIFIER, 67).unwrap();
        let mask: Vec<f32> = (0..2 * 512 * side * side)
            .map(|i| if (i * 7919) % 3 == 0 { 0.0 } else { 2.0 })
            .collect();
        let mask = Tensor::from_vec(mask, (2, 512, side, side), &Device::Cpu).unwrap();
        let weights = random_tensor(&[2, 1000], 9);
        let loss = |out: Tensor| out.mul(&weights).unwrap().sum_all().unwrap();
        let tensors: Vec<Tensor> = p.iter().map(|v| v.as_tensor().clone()).collect();
        let want = loss(
            super::super::reference::forward(arch::ALL, x.as_tensor(), &tensors, Some(&mask))
                .unwrap(),
        );
        let got = loss(forward(arch::ALL, x.as_tensor(), &tensors, Some(&mask)).unwrap());
        assert_close(&to_vec(&got), &to_vec(&want), 1e-4, "loss");
        let (want, got) = (want.backward().unwrap(), got.backward().unwrap());
        for (i, var) in std::iter::once(&x).chain(&p).enumerate() {
            let w = to_vec(want.get(var.as_tensor()).unwrap());
            let g = to_vec(got.get(var.as_tensor()).unwrap());
            assert_close(&g, &w, 1e-3, &format!("gradient {i}"));
        }
    }
}
