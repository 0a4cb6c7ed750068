//! The fast CPU path: forward and backward passes over a contiguous range of stages, on plain
//! buffers in the channel-major layout of [`ops`](super::ops).
//!
//! candle would run every layer as several tensor operations, each allocating its result, and its
//! backward pass would add every gradient into a freshly zeroed tensor. Here a whole range of
//! stages is one step for candle (see `segment.rs`); inside it, ReLUs are fused into the
//! convolutions, the Fire concatenation costs nothing, buffers are recycled, and the backward pass
//! writes each gradient exactly once.
//!
//! Convolutions run block by block over the output positions (the columns of the channel-major
//! activations), in parallel: each task unfolds its block (im2col) into a cache-sized scratch,
//! multiplies, and applies bias and ReLU while the block is still in cache, so the unfolded
//! matrices are never written to memory in full. Weight gradients accumulate per task and are
//! summed at the end.

use std::ops::Range;
use std::sync::Arc;

use candle_core::{bail, Result};
use rayon::prelude::*;

use super::arch::{self, StageKind, DROPOUT_SCALE, STAGES};
use super::buffers::{Buffer, BufferPool};
use super::ops::conv::{
    add_bias_relu, col2im, im2col, relu_backward, relu_backward_rows, Kernel, SAME_3X3,
};
use super::ops::gemm::{matmul, Mat, MatMut, SharedColumns};
use super::ops::pool::{
    global_avg_pool_backward, global_avg_pool_forward, max_pool_backward, max_pool_forward,
};
use super::ops::{cbhw_to_nchw, nchw_to_cbhw, Geom};

const CONV1: Kernel = Kernel {
    size: 3,
    stride: 2,
    pad: 0,
};
const EXPAND3X3: Kernel = SAME_3X3;

/// Scratch values per parallel task: about 4 MiB, so that two tasks stay in the shared cache.
const BLOCK_FLOATS: usize = 1 << 20;
/// Fewest positions per block: the weight-gradient products reduce over a block's positions,
/// and much shorter reductions spend more time loading and storing the gradient than computing.
const MIN_BLOCK: usize = 512;

/// What one stage keeps for its backward pass besides its input and output.
enum Saved {
    Nothing,
    MaxPool { argmax: Vec<u8> },
    Fire { squeezed: Buffer },
}

/// Positions per block when block-local buffers take `per_position` values per position:
/// about [`BLOCK_FLOATS`] in all, but at least [`MIN_BLOCK`] positions.
fn block_len(per_position: usize) -> usize {
    (BLOCK_FLOATS / per_position.max(1)).max(MIN_BLOCK)
}

/// Splits `0..n` into blocks of `len` positions (the last one shorter).
fn blocks(n: usize, len: usize) -> Vec<Range<usize>> {
    (0..n)
        .step_by(len)
        .map(|start| start..(start + len).min(n))
        .collect()
}

/// Runs `task` on every block in parallel; each block accumulates into its own zeroed buffers of
/// `lens.0` f32 values (weight gradients) and `lens.1` f64 values (bias sums), with scratch made by
/// `scratch`. Returns the sums over blocks, added in block order: float addition is not
/// associative, and summing per worker (rayon's `fold`) made the result depend on which thread
/// stole which block, so two identical runs drifted apart. In block order the gradients are the
/// same bit for bit whatever the scheduling and the thread count.
fn sum_over_blocks<S: Send>(
    pool: &Arc<BufferPool>,
    blocks: Vec<Range<usize>>,
    lens: (usize, usize),
    scratch: impl Fn() -> S + Sync + Send,
    task: impl Fn(&mut [f32], &mut [f64], &mut S, Range<usize>) + Sync + Send,
) -> (Buffer, Vec<f64>) {
    let zeros = || {
        let mut weights = pool.take(lens.0);
        weights.fill(0.0);
        (weights, vec![0f64; lens.1])
    };
    let partials: Vec<(Buffer, Vec<f64>)> = blocks
        .into_par_iter()
        .map_init(&scratch, |s, range| {
            let (mut w, mut b) = zeros();
            task(&mut w, &mut b, s, range);
            (w, b)
        })
        .collect();
    let mut partials = partials.into_iter();
    let Some((mut w1, mut b1)) = partials.next() else {
        return zeros();
    };
    for (w2, b2) in partials {
        w1.iter_mut().zip(w2.iter()).for_each(|(a, b)| *a += b);
        b1.iter_mut().zip(&b2).for_each(|(a, b)| *a += b);
    }
    (w1, b1)
}

/// Everything the backward pass needs from the forward pass.
pub(crate) struct Trace {
    stages: Range<usize>,
    /// `acts[0]` is the segment input, `acts[i + 1]` the output of the segment's i-th stage.
    acts: Vec<Buffer>,
    geoms: Vec<Geom>,
    saved: Vec<Saved>,
}

/// Shape of the segment output as candle sees it: `[B, C, H, W]`, or `[B, C]` after pool10.
fn output_dims(stages: &Range<usize>, out: Geom) -> Vec<usize> {
    if STAGES[stages.end - 1].kind == StageKind::GlobalAvgPool {
        vec![out.b, out.c]
    } else {
        vec![out.b, out.c, out.h, out.w]
    }
}

/// Checks an input `[B, C, H, W]` against a segment and returns the geometry of every stage output.
fn plan(stages: &Range<usize>, dims: &[usize]) -> Result<Vec<Geom>> {
    if stages.is_empty() || stages.end > STAGES.len() {
        bail!("invalid stage range {stages:?}")
    }
    let &[b, c, h, w] = dims else {
        bail!("expected an input of shape [B, C, H, W], got {dims:?}")
    };
    let first = &STAGES[stages.start];
    if c != first.in_channels {
        bail!(
            "{} expects {} input channels, got {c}",
            first.name,
            first.in_channels
        )
    }
    let mut geoms = vec![Geom { c, b, h, w }];
    for stage in &STAGES[stages.clone()] {
        let prev = geoms[geoms.len() - 1];
        let (Some(h), Some(w)) = (stage.output_side(prev.h), stage.output_side(prev.w)) else {
            bail!(
                "a {}x{} feature map is too small for {}",
                prev.h,
                prev.w,
                stage.name
            )
        };
        geoms.push(Geom {
            c: stage.out_channels,
            b,
            h,
            w,
        });
    }
    Ok(geoms)
}

/// A convolution's two tensors, named as the checkpoint names them (`<layer>.weight`,
/// `<layer>.bias`). `T` is `&[f32]` for parameters, `&mut [f32]` for their gradients.
struct Conv<T> {
    weight: T,
    bias: T,
}

/// A Fire module's tensors, named as the checkpoint names them (`features.N.squeeze.weight`, ...).
struct Fire<T> {
    squeeze: Conv<T>,
    expand1x1: Conv<T>,
    expand3x3: Conv<T>,
}

/// The tensors of one stage: none (pools), one convolution (conv1, conv10) or a Fire module.
enum StageParams<T> {
    None,
    Conv(Conv<T>),
    Fire(Fire<T>),
}

impl<T> StageParams<T> {
    /// Names a stage's tensors, given in the order of [`arch::Stage::params`].
    fn named(kind: &StageKind, tensors: Vec<T>) -> StageParams<T> {
        let mut tensors = tensors.into_iter();
        let mut conv = || Conv {
            weight: tensors.next().expect("a weight per convolution"),
            bias: tensors.next().expect("a bias per convolution"),
        };
        match kind {
            StageKind::Conv1 | StageKind::Classifier => StageParams::Conv(conv()),
            StageKind::Fire { .. } => StageParams::Fire(Fire {
                squeeze: conv(),
                expand1x1: conv(),
                expand3x3: conv(),
            }),
            StageKind::MaxPool | StageKind::GlobalAvgPool => StageParams::None,
        }
    }

    fn conv(&self) -> &Conv<T> {
        match self {
            StageParams::Conv(conv) => conv,
            _ => unreachable!("a convolution stage has one convolution's tensors"),
        }
    }

    fn fire(&self) -> &Fire<T> {
        match self {
            StageParams::Fire(fire) => fire,
            _ => unreachable!("a Fire stage has a Fire module's tensors"),
        }
    }

    fn conv_mut(&mut self) -> &mut Conv<T> {
        match self {
            StageParams::Conv(conv) => conv,
            _ => unreachable!("a convolution stage has one convolution's tensors"),
        }
    }

    fn fire_mut(&mut self) -> &mut Fire<T> {
        match self {
            StageParams::Fire(fire) => fire,
            _ => unreachable!("a Fire stage has a Fire module's tensors"),
        }
    }
}

/// Splits packed parameters into one slice per tensor, named and grouped by stage.
fn split_params<'a>(
    stages: &Range<usize>,
    mut packed: &'a [f32],
) -> Result<Vec<StageParams<&'a [f32]>>> {
    let expected: usize = STAGES[stages.clone()]
        .iter()
        .flat_map(|s| s.params())
        .map(|p| p.len())
        .sum();
    if packed.len() != expected {
        bail!(
            "expected {expected} packed parameters for stages {stages:?}, got {}",
            packed.len()
        )
    }
    Ok(STAGES[stages.clone()]
        .iter()
        .map(|stage| {
            let tensors = stage
                .params()
                .iter()
                .map(|p| {
                    let (head, rest) = packed.split_at(p.len());
                    packed = rest;
                    head
                })
                .collect();
            StageParams::named(&stage.kind, tensors)
        })
        .collect())
}

/// Mutable counterpart of [`split_params`] for the gradient buffer (length already checked).
fn split_grads<'a>(
    stages: &Range<usize>,
    mut packed: &'a mut [f32],
) -> Vec<StageParams<&'a mut [f32]>> {
    STAGES[stages.clone()]
        .iter()
        .map(|stage| {
            let tensors = stage
                .params()
                .iter()
                .map(|p| {
                    let (head, rest) = std::mem::take(&mut packed).split_at_mut(p.len());
                    packed = rest;
                    head
                })
                .collect();
            StageParams::named(&stage.kind, tensors)
        })
        .collect()
}

/// Runs `stages` on `input` (`[B, C, H, W]`, contiguous). `dropout` is the keep-mask of drop9 in
/// `[B, 512, h, w]` order (training only). Returns the output in candle's layout, its shape,
/// and the trace for the backward pass when `keep_trace` is set.
pub(crate) fn forward(
    stages: Range<usize>,
    input: &[f32],
    dims: &[usize],
    packed: &[f32],
    dropout: Option<&[u8]>,
    pool: &Arc<BufferPool>,
    keep_trace: bool,
) -> Result<(Vec<f32>, Vec<usize>, Option<Trace>)> {
    let geoms = plan(&stages, dims)?;
    let params = split_params(&stages, packed)?;
    if input.len() != geoms[0].len() {
        bail!(
            "input holds {} values, its shape {dims:?} needs {}",
            input.len(),
            geoms[0].len()
        )
    }
    if let Some(mask) = dropout {
        let Some(at) = stages.clone().position(|s| s == arch::CLASSIFIER) else {
            bail!("dropout mask given to stages {stages:?}, which have no dropout")
        };
        if mask.len() != geoms[at].len() {
            bail!(
                "dropout mask holds {} values, drop9 has {}",
                mask.len(),
                geoms[at].len()
            )
        }
    }
    pool.begin_pass();
    let mut current = pool.take(geoms[0].len());
    nchw_to_cbhw(input, geoms[0], &mut current);
    let mut acts = Vec::new();
    let mut saved = Vec::new();
    for (i, stage_index) in stages.clone().enumerate() {
        let started = profile::Stamp::now();
        let (out, keep) = run_stage(
            stage_index,
            &current,
            geoms[i],
            geoms[i + 1],
            &params[i],
            dropout,
            pool,
            keep_trace,
        );
        profile::record(stage_index, false, started);
        if keep_trace {
            acts.push(std::mem::replace(&mut current, out));
            saved.push(keep);
        } else {
            current = out;
        }
    }
    let last = geoms[geoms.len() - 1];
    let mut output = vec![0.0; last.len()];
    cbhw_to_nchw(&current, last, &mut output);
    let out_dims = output_dims(&stages, last);
    let trace = keep_trace.then(|| {
        acts.push(current);
        Trace {
            stages,
            acts,
            geoms,
            saved,
        }
    });
    Ok((output, out_dims, trace))
}

/// Forward pass of one stage from `x` (geometry `xg`) to a new buffer (geometry `og`), with what
/// its backward pass needs besides input and output when `keep` is set.
#[allow(clippy::too_many_arguments)]
fn run_stage(
    stage_index: usize,
    x: &[f32],
    xg: Geom,
    og: Geom,
    p: &StageParams<&[f32]>,
    dropout: Option<&[u8]>,
    pool: &Arc<BufferPool>,
    keep: bool,
) -> (Buffer, Saved) {
    let n = og.n();
    let mut out = pool.take(og.len());
    let saved = match STAGES[stage_index].kind {
        StageKind::Conv1 => {
            let conv = p.conv();
            let taps = xg.c * 9;
            let shared = SharedColumns::new(&mut out, og.c, n);
            let len = block_len(taps + og.c);
            blocks(n, len).into_par_iter().for_each_init(
                || pool.take(taps * len),
                |cols, r| {
                    let cols = &mut cols[..taps * r.len()];
                    im2col(x, xg, CONV1, r.clone(), cols);
                    // SAFETY: the blocks partition the columns and each is written by one task.
                    let mut dst = unsafe { shared.block(r.clone()) };
                    matmul(
                        &mut dst,
                        Mat::new(conv.weight, og.c, taps),
                        Mat::new(cols, taps, r.len()),
                        false,
                    );
                    add_bias_relu(&mut dst, conv.bias);
                },
            );
            Saved::Nothing
        }
        StageKind::MaxPool => {
            let mut argmax = if keep { vec![0; og.len()] } else { Vec::new() };
            let argmax_out = keep.then_some(argmax.as_mut_slice());
            max_pool_forward(x, xg.planes(), xg.h, xg.w, &mut out, argmax_out);
            if keep {
                Saved::MaxPool { argmax }
            } else {
                Saved::Nothing
            }
        }
        StageKind::Fire {
            squeeze: s,
            expand: e,
        } => {
            let fire = p.fire();
            let mut squeezed = pool.take(s * n);
            let shared = SharedColumns::new(&mut squeezed, s, n);
            blocks(n, block_len(xg.c + s))
                .into_par_iter()
                .for_each(|r| {
                    // SAFETY: the blocks partition the columns and each is written by one task.
                    let mut dst = unsafe { shared.block(r.clone()) };
                    matmul(
                        &mut dst,
                        Mat::new(fire.squeeze.weight, s, xg.c),
                        Mat::columns(x, xg.c, n, r),
                        false,
                    );
                    add_bias_relu(&mut dst, fire.squeeze.bias);
                });
            let sg = Geom { c: s, ..xg };
            let squeezed_ref: &[f32] = &squeezed;
            let shared = SharedColumns::new(&mut out, 2 * e, n);
            let len = block_len(9 * s + 2 * e);
            blocks(n, len).into_par_iter().for_each_init(
                || pool.take(9 * s * len),
                |cols, r| {
                    let cols = &mut cols[..9 * s * r.len()];
                    im2col(squeezed_ref, sg, EXPAND3X3, r.clone(), cols);
                    // SAFETY: the blocks partition the columns and each is written by one task.
                    let (mut out1, mut out3) = unsafe { shared.block(r.clone()) }.split_rows(e);
                    let squeezed_block = Mat::columns(squeezed_ref, s, n, r.clone());
                    let (expand1x1, expand3x3) = (&fire.expand1x1, &fire.expand3x3);
                    matmul(
                        &mut out1,
                        Mat::new(expand1x1.weight, e, s),
                        squeezed_block,
                        false,
                    );
                    add_bias_relu(&mut out1, expand1x1.bias);
                    matmul(
                        &mut out3,
                        Mat::new(expand3x3.weight, e, 9 * s),
                        Mat::new(cols, 9 * s, r.len()),
                        false,
                    );
                    add_bias_relu(&mut out3, expand3x3.bias);
                },
            );
            if keep {
                Saved::Fire { squeezed }
            } else {
                Saved::Nothing
            }
        }
        StageKind::Classifier => {
            let conv = p.conv();
            let shared = SharedColumns::new(&mut out, og.c, n);
            let len = block_len(xg.c + og.c);
            let scratch = || pool.take(if dropout.is_some() { xg.c * len } else { 0 });
            blocks(n, len)
                .into_par_iter()
                .for_each_init(scratch, |dropped, r| {
                    let input = match dropout {
                        Some(mask) => {
                            let dropped = &mut dropped[..xg.c * r.len()];
                            drop_columns(x, xg, mask, r.clone(), dropped);
                            Mat::new(dropped, xg.c, r.len())
                        }
                        None => Mat::columns(x, xg.c, n, r.clone()),
                    };
                    // SAFETY: the blocks partition the columns and each is written by one task.
                    let mut dst = unsafe { shared.block(r) };
                    matmul(&mut dst, Mat::new(conv.weight, og.c, xg.c), input, false);
                    add_bias_relu(&mut dst, conv.bias);
                });
            Saved::Nothing
        }
        StageKind::GlobalAvgPool => {
            global_avg_pool_forward(x, xg.planes(), xg.h * xg.w, &mut out);
            Saved::Nothing
        }
    };
    (out, saved)
}

/// Splits the positions `range` into runs within one image plane: (offset in the range, image,
/// offset in the plane, length).
fn plane_runs(
    range: Range<usize>,
    plane: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let start = range.start;
    let mut p = range.start;
    std::iter::from_fn(move || {
        (p < range.end).then(|| {
            let (b, s) = (p / plane, p % plane);
            let len = (plane - s).min(range.end - p);
            p += len;
            (p - len - start, b, s, len)
        })
    })
}

/// Copies columns `range` of channel-major `x` (`[C, N]`) into `dst` (`[C, range.len()]`),
/// multiplied by drop9's keep-mask (given in `[B, C, H, W]` order) and the dropout scale.
fn drop_columns(x: &[f32], g: Geom, mask: &[u8], range: Range<usize>, dst: &mut [f32]) {
    let plane = g.h * g.w;
    for (c, out) in dst.chunks_exact_mut(range.len()).enumerate() {
        for (at, b, s, len) in plane_runs(range.clone(), plane) {
            let keep = &mask[(b * g.c + c) * plane + s..][..len];
            let src = &x[c * g.n() + range.start + at..][..len];
            for ((o, &v), &k) in out[at..at + len].iter_mut().zip(src).zip(keep) {
                *o = if k != 0 { v * DROPOUT_SCALE } else { 0.0 };
            }
        }
    }
}

/// Dropout's backward pass on a block of input gradients (columns `range`, in place).
fn drop_gradient(grad: &mut MatMut<'_>, g: Geom, mask: &[u8], range: Range<usize>) {
    let plane = g.h * g.w;
    for c in 0..grad.rows() {
        let row = grad.row(c);
        for (at, b, s, len) in plane_runs(range.clone(), plane) {
            let keep = &mask[(b * g.c + c) * plane + s..][..len];
            for (v, &k) in row[at..at + len].iter_mut().zip(keep) {
                *v = if k != 0 { *v * DROPOUT_SCALE } else { 0.0 };
            }
        }
    }
}

/// expand3x3's weights `[E, S, 3, 3]` rearranged as `[S, E * 9]` with the taps reversed: the
/// matrix that maps the unfolded output gradient back to the squeeze output (a transposed
/// convolution written as a gather, so parallel blocks never write the same position).
fn flip_taps(weights: &[f32], e: usize, s: usize) -> Vec<f32> {
    let mut flipped = vec![0.0; s * e * 9];
    for ei in 0..e {
        for si in 0..s {
            for tap in 0..9 {
                flipped[si * e * 9 + ei * 9 + tap] = weights[(ei * s + si) * 9 + 8 - tap];
            }
        }
    }
    flipped
}

/// Scratch of one Fire backward task.
struct FireScratch {
    cols: Buffer,
    grad_cols: Buffer,
    squeeze_grad: Buffer,
}

/// Gradients of a traced forward pass. `grad_out` has the shape of the forward output;
/// returns the input gradient (in candle's layout, when `input_grad` is set) and the gradient
/// of the packed parameters.
pub(crate) fn backward(
    trace: &Trace,
    packed: &[f32],
    grad_out: &[f32],
    dropout: Option<&[u8]>,
    input_grad: bool,
    pool: &Arc<BufferPool>,
) -> Result<(Option<Vec<f32>>, Vec<f32>)> {
    let stages = &trace.stages;
    let params = split_params(stages, packed)?;
    let last = trace.geoms[trace.geoms.len() - 1];
    if grad_out.len() != last.len() {
        bail!(
            "output gradient holds {} values, the output has {}",
            grad_out.len(),
            last.len()
        )
    }
    let mut packed_grads = vec![0.0; packed.len()];
    let mut grads = split_grads(stages, &mut packed_grads);
    let mut grad = pool.take(last.len());
    nchw_to_cbhw(grad_out, last, &mut grad);
    for i in (0..stages.len()).rev() {
        let want_dx = i > 0 || input_grad;
        let started = profile::Stamp::now();
        let next = backward_stage(
            trace,
            i,
            grad,
            &params[i],
            &mut grads[i],
            dropout,
            want_dx,
            pool,
        );
        profile::record(stages.start + i, true, started);
        match next {
            Some(g) => grad = g,
            None => return Ok((None, packed_grads)),
        }
    }
    let first = trace.geoms[0];
    let mut dx = vec![0.0; first.len()];
    cbhw_to_nchw(&grad, first, &mut dx);
    Ok((Some(dx), packed_grads))
}

/// Per-stage timings for `model::profile` (test builds only; no-ops otherwise). Besides wall
/// time it records the CPU time of the whole process, which other programs on a shared machine
/// inflate far less.
pub(crate) mod profile {
    #[cfg(test)]
    pub struct Stamp {
        wall: std::time::Instant,
        cpu_ns: u64,
    }

    #[cfg(not(test))]
    pub struct Stamp;

    impl Stamp {
        #[cfg(test)]
        pub fn now() -> Self {
            Self {
                wall: std::time::Instant::now(),
                cpu_ns: process_cpu_ns(),
            }
        }

        #[cfg(not(test))]
        #[inline(always)]
        pub fn now() -> Self {
            Self
        }
    }

    /// One timing: stage index, backward pass?, wall seconds, CPU seconds (all threads).
    #[cfg(test)]
    pub type Timing = (usize, bool, f64, f64);

    #[cfg(test)]
    static TIMES: std::sync::Mutex<Vec<Timing>> = std::sync::Mutex::new(Vec::new());

    /// CPU time of every thread of this process so far (Linux; 0 elsewhere).
    #[cfg(test)]
    pub fn process_cpu_ns() -> u64 {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return 0;
        };
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    #[cfg(test)]
    pub fn record(stage: usize, backward: bool, since: Stamp) {
        let cpu = process_cpu_ns().saturating_sub(since.cpu_ns) as f64 * 1e-9;
        TIMES
            .lock()
            .unwrap()
            .push((stage, backward, since.wall.elapsed().as_secs_f64(), cpu));
    }

    #[cfg(not(test))]
    #[inline(always)]
    pub fn record(_stage: usize, _backward: bool, _since: Stamp) {}

    /// Drains the timings recorded so far.
    #[cfg(test)]
    pub fn take() -> Vec<Timing> {
        std::mem::take(&mut *TIMES.lock().unwrap())
    }
}

/// Backward pass of the segment's `i`-th stage given the gradient of its output (consumed).
#[allow(clippy::too_many_arguments)]
fn backward_stage(
    trace: &Trace,
    i: usize,
    mut g: Buffer,
    p: &StageParams<&[f32]>,
    dp: &mut StageParams<&mut [f32]>,
    dropout: Option<&[u8]>,
    want_dx: bool,
    pool: &Arc<BufferPool>,
) -> Option<Buffer> {
    let (x, out) = (&trace.acts[i], &trace.acts[i + 1]);
    let (xg, og) = (trace.geoms[i], trace.geoms[i + 1]);
    let n = og.n();
    match (&STAGES[trace.stages.start + i].kind, &trace.saved[i]) {
        (StageKind::Conv1, Saved::Nothing) => {
            let (conv, dconv) = (p.conv(), dp.conv_mut());
            let taps = xg.c * 9;
            relu_backward(&mut g, out, n, dconv.bias);
            let g: &[f32] = &g;
            let len = block_len(taps + og.c);
            let (dw, _) = sum_over_blocks(
                pool,
                blocks(n, len),
                (og.c * taps, 0),
                || pool.take(taps * len),
                |dw, _, cols, r| {
                    let cols = &mut cols[..taps * r.len()];
                    im2col(x, xg, CONV1, r.clone(), cols);
                    let cols = Mat::new(cols, taps, r.len());
                    matmul(
                        &mut MatMut::new(dw, og.c, taps),
                        Mat::columns(g, og.c, n, r),
                        cols.t(),
                        true,
                    );
                },
            );
            dconv.weight.copy_from_slice(&dw);
            want_dx.then(|| {
                let mut dcols = pool.take(taps * n);
                let shared = SharedColumns::new(&mut dcols, taps, n);
                blocks(n, block_len(taps + og.c))
                    .into_par_iter()
                    .for_each(|r| {
                        // SAFETY: the blocks partition the columns and each is written by one task.
                        let mut dst = unsafe { shared.block(r.clone()) };
                        matmul(
                            &mut dst,
                            Mat::new(conv.weight, og.c, taps).t(),
                            Mat::columns(g, og.c, n, r),
                            false,
                        );
                    });
                let mut dx = pool.take(xg.len());
                col2im(&dcols, xg, CONV1, &mut dx);
                dx
            })
        }
        (StageKind::MaxPool, Saved::MaxPool { argmax }) => want_dx.then(|| {
            let mut dx = pool.take(xg.len());
            max_pool_backward(&g, argmax, xg.planes(), xg.h, xg.w, &mut dx);
            dx
        }),
        (
            &StageKind::Fire {
                squeeze: s,
                expand: e,
            },
            Saved::Fire { squeezed },
        ) => {
            let (fire, dfire) = (p.fire(), dp.fire_mut());
            {
                let (g1, g3) = g.split_at_mut(e * n);
                relu_backward(g1, &out[..e * n], n, dfire.expand1x1.bias);
                relu_backward(g3, &out[e * n..], n, dfire.expand3x3.bias);
            }
            let (g1, g3): (&[f32], &[f32]) = g.split_at(e * n);
            let flipped = flip_taps(fire.expand3x3.weight, e, s);
            let (sg, eg) = (Geom { c: s, ..xg }, Geom { c: e, ..xg });
            let mut dx = want_dx.then(|| pool.take(xg.len()));
            let shared_dx = dx.as_deref_mut().map(|dx| SharedColumns::new(dx, xg.c, n));
            let lens = (s * xg.c + e * s + e * 9 * s, s);
            let len = block_len(9 * s + 9 * e + s);
            let scratch = || FireScratch {
                cols: pool.take(9 * s * len),
                grad_cols: pool.take(9 * e * len),
                squeeze_grad: pool.take(s * len),
            };
            let (w, b) =
                sum_over_blocks(pool, blocks(n, len), lens, scratch, |w, b, scratch, r| {
                    let len = r.len();
                    let (dws, rest) = w.split_at_mut(s * xg.c);
                    let (dwe1, dwe3) = rest.split_at_mut(e * s);
                    let (g1, g3) = (
                        Mat::columns(g1, e, n, r.clone()),
                        Mat::columns(g3, e, n, r.clone()),
                    );
                    let squeezed_block = Mat::columns(squeezed, s, n, r.clone());
                    // Weight gradients of both expands, from the recomputed unfolded squeeze output.
                    let cols = &mut scratch.cols[..9 * s * len];
                    im2col(squeezed, sg, EXPAND3X3, r.clone(), cols);
                    let cols = Mat::new(cols, 9 * s, len);
                    matmul(&mut MatMut::new(dwe3, e, 9 * s), g3, cols.t(), true);
                    matmul(&mut MatMut::new(dwe1, e, s), g1, squeezed_block.t(), true);
                    // Gradient of the squeeze output: both expands' contributions, then its ReLU.
                    let grad_cols = &mut scratch.grad_cols[..9 * e * len];
                    im2col(&g[e * n..], eg, EXPAND3X3, r.clone(), grad_cols);
                    let grad_cols = Mat::new(grad_cols, 9 * e, len);
                    let mut dsq = MatMut::new(&mut scratch.squeeze_grad, s, len);
                    matmul(&mut dsq, Mat::new(&flipped, s, 9 * e), grad_cols, false);
                    matmul(
                        &mut dsq,
                        Mat::new(fire.expand1x1.weight, e, s).t(),
                        g1,
                        true,
                    );
                    relu_backward_rows(&mut dsq, squeezed_block, b);
                    let dsq = Mat::new(&scratch.squeeze_grad[..s * len], s, len);
                    matmul(
                        &mut MatMut::new(dws, s, xg.c),
                        dsq,
                        Mat::columns(x, xg.c, n, r.clone()).t(),
                        true,
                    );
                    if let Some(shared) = &shared_dx {
                        // SAFETY: the blocks partition the columns and each is written by one task.
                        let mut dst = unsafe { shared.block(r) };
                        matmul(
                            &mut dst,
                            Mat::new(fire.squeeze.weight, s, xg.c).t(),
                            dsq,
                            false,
                        );
                    }
                });
            let (ws, rest) = w.split_at(s * xg.c);
            let (we1, we3) = rest.split_at(e * s);
            dfire.squeeze.weight.copy_from_slice(ws);
            dfire.expand1x1.weight.copy_from_slice(we1);
            dfire.expand3x3.weight.copy_from_slice(we3);
            dfire
                .squeeze
                .bias
                .iter_mut()
                .zip(&b)
                .for_each(|(d, &v)| *d = v as f32);
            dx
        }
        (StageKind::Classifier, Saved::Nothing) => {
            let (conv, dconv) = (p.conv(), dp.conv_mut());
            relu_backward(&mut g, out, n, dconv.bias);
            let g: &[f32] = &g;
            let mut dx = want_dx.then(|| pool.take(xg.len()));
            let shared_dx = dx.as_deref_mut().map(|dx| SharedColumns::new(dx, xg.c, n));
            let lens = (og.c * xg.c, 0);
            let len = block_len(xg.c + og.c);
            let (dw, _) = sum_over_blocks(
                pool,
                blocks(n, len),
                lens,
                || pool.take(if dropout.is_some() { xg.c * len } else { 0 }),
                |dw, _, dropped, r| {
                    let input = match dropout {
                        Some(mask) => {
                            let dropped = &mut dropped[..xg.c * r.len()];
                            drop_columns(x, xg, mask, r.clone(), dropped);
                            Mat::new(dropped, xg.c, r.len())
                        }
                        None => Mat::columns(x, xg.c, n, r.clone()),
                    };
                    let g_block = Mat::columns(g, og.c, n, r.clone());
                    matmul(&mut MatMut::new(dw, og.c, xg.c), g_block, input.t(), true);
                    if let Some(shared) = &shared_dx {
                        // SAFETY: the blocks partition the columns and each is written by one task.
                        let mut dst = unsafe { shared.block(r.clone()) };
                        matmul(
                            &mut dst,
                            Mat::new(conv.weight, og.c, xg.c).t(),
                            g_block,
                            false,
                        );
                        if let Some(mask) = dropout {
                            drop_gradient(&mut dst, xg, mask, r);
                        }
                    }
                },
            );
            dconv.weight.copy_from_slice(&dw);
            dx
        }
        (StageKind::GlobalAvgPool, Saved::Nothing) => want_dx.then(|| {
            let mut dx = pool.take(xg.len());
            global_avg_pool_backward(&g, xg.planes(), xg.h * xg.w, &mut dx);
            dx
        }),
        _ => unreachable!("trace does not match its stages"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_inputs_are_reported_not_panicked() {
        let pool = BufferPool::new();
        let params = vec![0.0; arch::backbone_params()[0..2].iter().map(|p| p.len()).sum()];
        let err = forward(0..1, &[0.0; 12], &[1, 3, 2, 2], &params, None, &pool, false)
            .err()
            .unwrap();
        assert!(err.to_string().contains("too small"), "{err}");
        let err = forward(0..1, &[0.0; 16], &[1, 4, 2, 2], &params, None, &pool, false)
            .err()
            .unwrap();
        assert!(err.to_string().contains("input channels"), "{err}");
        let err = forward(
            0..1,
            &[0.0; 27],
            &[1, 3, 3, 3],
            &params[1..],
            None,
            &pool,
            false,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("packed parameters"), "{err}");
        let err = forward(
            0..1,
            &[0.0; 27],
            &[1, 3, 3, 3],
            &params,
            Some(&[1]),
            &pool,
            false,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("no dropout"), "{err}");
    }

    use crate::model::testutil::uniform;

    /// Parameters that keep every ReLU of `stages` far from its kink for positive inputs:
    /// non-negative weights with mean 1 / fan-in, and biases of +1 (alive) or -1000 (dead, every
    /// third channel, so the masking of dead units is checked too). The network is then exactly
    /// linear around the test point (weight steps up to 0.2 cross no kink for activations below 5,
    /// input steps of 1 move no pre-activation by more than 2 / fan-in), and central differences
    /// with large steps are precise.
    fn linear_regime_params(stages: &Range<usize>, seed: u64) -> Vec<f32> {
        let specs: Vec<_> = STAGES[stages.clone()]
            .iter()
            .flat_map(|s| s.params())
            .collect();
        specs
            .iter()
            .enumerate()
            .flat_map(|(i, spec)| {
                if spec.shape.len() == 1 {
                    (0..spec.len())
                        .map(|c| if c % 3 == 0 { -1000.0 } else { 1.0 })
                        .collect::<Vec<_>>()
                } else {
                    let fan_in: usize = spec.shape[1..].iter().product();
                    uniform(spec.len(), 1.0 / fan_in as f32, seed + i as u64)
                        .into_iter()
                        .map(|v| v + 1.0 / fan_in as f32)
                        .collect()
                }
            })
            .collect()
    }

    /// `sum(output * weights)` in f64.
    fn objective(
        stages: &Range<usize>,
        x: &[f32],
        dims: &[usize],
        params: &[f32],
        mask: Option<&[u8]>,
        weights: &[f32],
    ) -> f64 {
        let pool = BufferPool::new();
        let (out, _, _) = forward(stages.clone(), x, dims, params, mask, &pool, false).unwrap();
        out.iter()
            .zip(weights)
            .map(|(&o, &w)| f64::from(o) * f64::from(w))
            .sum()
    }

    /// Compares the engine's gradients with central differences on a sample of coordinates: eight
    /// of the input (step `steps[0]`) and two per parameter tensor (step `steps[1]`).
    fn check_gradients(
        stages: Range<usize>,
        x: &[f32],
        dims: &[usize],
        params: &[f32],
        mask: Option<&[u8]>,
        steps: [f32; 2],
        seed: u64,
    ) {
        let pool = BufferPool::new();
        let (out, _, trace) = forward(stages.clone(), x, dims, params, mask, &pool, true).unwrap();
        let weights = uniform(out.len(), 1.0, seed + 1000);
        let (dx, dp) = backward(&trace.unwrap(), params, &weights, mask, true, &pool).unwrap();
        let dx = dx.unwrap();
        let rms = |g: &[f32]| {
            (g.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / g.len() as f64).sqrt()
        };
        assert!(
            rms(&dx) > 0.0 && (dp.is_empty() || rms(&dp) > 0.0),
            "vanishing gradients make this check vacuous"
        );

        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
        let mut coords: Vec<(bool, usize)> = (0..8)
            .map(|_| (true, rand::Rng::random_range(&mut rng, 0..x.len())))
            .collect();
        let mut offset = 0;
        for spec in STAGES[stages.clone()].iter().flat_map(|s| s.params()) {
            for _ in 0..2 {
                coords.push((
                    false,
                    offset + rand::Rng::random_range(&mut rng, 0..spec.len()),
                ));
            }
            offset += spec.len();
        }
        for (is_input, i) in coords {
            let (analytic, scale) = if is_input {
                (dx[i], rms(&dx))
            } else {
                (dp[i], rms(&dp))
            };
            let at = |delta: f32| {
                let (mut x, mut p) = (x.to_vec(), params.to_vec());
                if is_input {
                    x[i] += delta
                } else {
                    p[i] += delta
                }
                objective(&stages, &x, dims, &p, mask, &weights)
            };
            let step = if is_input { steps[0] } else { steps[1] };
            let numeric = (at(step) - at(-step)) / (2.0 * f64::from(step));
            // Rounding of the f32 outputs limits the differences to about 1e-3 of the gradient scale.
            let tolerance = 1e-2 * (f64::from(analytic).abs() + 0.25 * scale);
            assert!(
                (numeric - f64::from(analytic)).abs() <= tolerance,
                "stages {stages:?}, {} {i}: analytic {analytic}, central difference {numeric}",
                if is_input { "input" } else { "parameter" }
            );
        }
    }

    /// Positive inputs (the regime `linear_regime_params` is built for).
    fn positive_input(dims: &[usize], seed: u64) -> Vec<f32> {
        uniform(dims.iter().product(), 0.5, seed)
            .into_iter()
            .map(|v| v + 1.0)
            .collect()
    }

    #[test]
    fn conv1_gradients_match_central_differences() {
        // 2 x 55 x 55 output positions: three blocks.
        let (stages, dims) = (0..1, [2, 3, 111, 112]);
        let params = linear_regime_params(&stages, 10);
        check_gradients(
            stages,
            &positive_input(&dims, 1),
            &dims,
            &params,
            None,
            [1.0, 0.2],
            10,
        );
    }

    #[test]
    fn max_pool_gradients_match_central_differences_at_clipped_edges() {
        // 6x8 planes: the last window of each axis is clipped to 2 rows / 2 columns. Values are
        // distinct and at least 0.01 apart, so the +-1e-3 steps never change a window's maximum.
        let dims = [1, 64, 6, 8];
        let len: usize = dims.iter().product();
        let mut x: Vec<f32> = (0..len).map(|i| (i as f32) * 0.01 - 15.0).collect();
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(2);
        rand::seq::SliceRandom::shuffle(x.as_mut_slice(), &mut rng);
        check_gradients(1..2, &x, &dims, &[], None, [1e-3, 1e-3], 20);
    }

    #[test]
    fn fire_stack_gradients_match_central_differences() {
        // 2 x 20 x 21 positions: several blocks, whose unfolding reads across block boundaries.
        let (stages, dims) = (2..4, [2, 64, 20, 21]);
        let params = linear_regime_params(&stages, 30);
        check_gradients(
            stages,
            &positive_input(&dims, 3),
            &dims,
            &params,
            None,
            [1.0, 0.2],
            30,
        );
    }

    #[test]
    fn classifier_gradients_with_dropout_match_central_differences() {
        // fire9, drop9 + conv10 + relu_conv10, pool10, with half of drop9's inputs dropped.
        // 2 x 10 x 10 positions: two blocks of conv10.
        let (stages, dims) = (11..14, [2, 512, 10, 10]);
        let len: usize = dims.iter().product();
        let mask: Vec<u8> = uniform(len, 1.0, 4)
            .iter()
            .map(|&v| u8::from(v > 0.0))
            .collect();
        let params = linear_regime_params(&stages, 40);
        check_gradients(
            stages,
            &positive_input(&dims, 5),
            &dims,
            &params,
            Some(&mask),
            [1.0, 0.2],
            40,
        );
    }

    #[test]
    fn max_pool_matches_candle_where_ceil_and_floor_agree() {
        // For odd sides ceil mode adds no window, so candle's floor-mode max_pool2d applies.
        use candle_core::{Device, Tensor};
        let dims = [2, 64, 11, 13];
        let x = uniform(dims.iter().product(), 1.0, 6);
        let pool = BufferPool::new();
        let (ours, out_dims, _) = forward(1..2, &x, &dims, &[], None, &pool, false).unwrap();
        let t = Tensor::from_vec(x, &dims, &Device::Cpu).unwrap();
        let candle = t.max_pool2d_with_stride(3, 2).unwrap();
        assert_eq!(candle.dims(), out_dims.as_slice());
        assert_eq!(
            candle.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            ours
        );
        let reference = super::super::reference::max_pool_3x3_s2_ceil(&t).unwrap();
        assert_eq!(
            reference.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            ours
        );
    }
}
