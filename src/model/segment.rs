//! The bridge between candle's autograd and the engine: a range of stages as one custom operation
//! on (input, packed parameters), so candle records one node where it would otherwise record
//! dozens of full-size intermediate tensors.

use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::buffers::BufferPool;
use super::engine::{self, Trace};

pub(crate) struct SegmentOp {
    stages: Range<usize>,
    /// drop9's keep-mask (`[B, 512, h, w]` order) when training.
    dropout: Option<Vec<u8>>,
    /// Keep the activations for one backward pass (training); otherwise `bwd` recomputes them.
    keep_trace: bool,
    pool: Arc<BufferPool>,
    trace: Mutex<Option<Trace>>,
}

impl SegmentOp {
    pub fn new(
        stages: Range<usize>,
        dropout: Option<Vec<u8>>,
        keep_trace: bool,
        pool: Arc<BufferPool>,
    ) -> Self {
        Self {
            stages,
            dropout,
            keep_trace,
            pool,
            trace: Mutex::new(None),
        }
    }
}

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!(
            "the SqueezeNet CPU engine computes in f32, its {what} is {:?}",
            storage.dtype()
        )
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("the SqueezeNet CPU engine needs a contiguous {what}")
    };
    Ok(&data[start..end])
}

impl CustomOp2 for SegmentOp {
    fn name(&self) -> &'static str {
        "squeezenet-segment"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let input = contiguous_f32(s1, l1, "input")?;
        let packed = contiguous_f32(s2, l2, "parameters")?;
        let (out, dims, trace) = engine::forward(
            self.stages.clone(),
            input,
            l1.dims(),
            packed,
            self.dropout.as_deref(),
            &self.pool,
            self.keep_trace,
        )?;
        *self.trace.lock().unwrap_or_else(PoisonError::into_inner) = trace;
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        p: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let packed = p.flatten_all()?.to_vec1::<f32>()?;
        let grad_out = grad.flatten_all()?.to_vec1::<f32>()?;
        // The trace is used up here so that its buffers return to the pool right away, even if
        // the caller keeps the graph alive; evaluation-mode passes kept none. Either way a
        // missing trace is recomputed, now that it is needed.
        let kept = self
            .trace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let trace = match kept {
            Some(trace) => trace,
            None => {
                let input = x.flatten_all()?.to_vec1::<f32>()?;
                let dropout = self.dropout.as_deref();
                let recomputed = engine::forward(
                    self.stages.clone(),
                    &input,
                    x.dims(),
                    &packed,
                    dropout,
                    &self.pool,
                    true,
                )?;
                match recomputed.2 {
                    Some(trace) => trace,
                    None => bail!("squeezenet-segment: no trace after recomputation"),
                }
            }
        };
        let (dx, dp) = engine::backward(
            &trace,
            &packed,
            &grad_out,
            self.dropout.as_deref(),
            x.track_op(),
            &self.pool,
        )?;
        let dx = dx
            .map(|dx| Tensor::from_vec(dx, x.shape(), x.device()))
            .transpose()?;
        Ok((dx, Some(Tensor::from_vec(dp, p.shape(), p.device())?)))
    }
}
