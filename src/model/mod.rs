//! SqueezeNet v1.1 (torchvision's `squeezenet1_1`) in candle, fast enough to fine-tune on a CPU.
//!
//! - [`SqueezeNet`]: the network built from a `VarBuilder`, torchvision parameter names, an
//!   optional classification head (`fc_add`), and Grad-CAM split points ([`CAM_LAYERS`]).
//! - [`load_torchvision`], [`save_checkpoint`], [`load_model`]: weights in and out.
//! - [`summary`]: the `analyzeNetwork` table.
//!
//! On the CPU the stages run on a dedicated engine (`engine`, `ops`): activations channel-major,
//! 1x1 convolutions as matrix products, 3x3 ones through im2col, all in parallel cache-sized
//! blocks with bias and ReLU fused, buffers recycled, each range of stages one candle custom
//! operation with a hand-written backward pass. On other devices the same stages run as ordinary
//! candle operations (`reference`), which is also what the engine is tested against.
//!
//! Fine-tuning and Grad-CAM, in outline:
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use candle_core::{Device, Tensor, Var};
//! use candle_nn::optim::{AdamW, Optimizer};
//! use crackscope::model::SqueezeNet;
//!
//! let device = Device::Cpu;
//! let weights = std::path::Path::new("squeezenet1_1.pth");
//! let (model, varmap) = SqueezeNet::pretrained(weights, 2, 42, &device)?;
//! let mut adam = AdamW::new_lr(varmap.all_vars(), 2e-4)?;
//! let images = Tensor::zeros((8, 3, 227, 227), candle_core::DType::F32, &device)?; // normalised
//! let labels = Tensor::zeros(8, candle_core::DType::U32, &device)?;
//! let loss = candle_nn::loss::cross_entropy(&model.forward_t(&images, true)?, &labels)?;
//! adam.backward_step(&loss)?;
//!
//! // Grad-CAM at relu_conv10 for class 1 of the first image.
//! let image = images.narrow(0, 0, 1)?;
//! let features = Var::from_tensor(&model.forward_to(&image, "relu_conv10")?)?;
//! let score = model.forward_from(features.as_tensor(), "relu_conv10")?.get(0)?.get(1)?;
//! let grads = score.backward()?;
//! let d_features = grads.get(features.as_tensor()).expect("gradient of the feature map");
//! # let _ = d_features;
//! # Ok(())
//! # }
//! ```

mod arch;
mod buffers;
mod checkpoint;
pub(crate) mod device;
mod engine;
pub mod fetch;
mod init;
mod matmul_path;
mod ops;
mod reference;
mod segment;
mod squeezenet;
mod summary;
mod weights;

/// The layer table, for writers of other formats (ONNX export) that rebuild the network.
pub(crate) use arch::{StageKind, STAGES};
pub use arch::{IMAGENET_CLASSES, MIN_INPUT_SIDE};
pub use checkpoint::{
    classes_file, load_model, load_model_with, save_checkpoint, CheckpointMeta, HeadLayout,
    LoadOptions, LoadedModel, CLASSES_FILE, FAMILIARITY_TENSOR,
};
pub use init::init_backbone;
pub use squeezenet::{init_head, SqueezeNet, CAM_LAYERS, HEAD_BIAS, HEAD_WEIGHT};
pub use summary::{summary, LayerSummary};
pub use weights::{check_finite, load_torchvision, RESUME_STATE_FORMAT};

#[cfg(test)]
mod profile;
#[cfg(test)]
pub(crate) mod testutil;

/// Input pixels per step of the feature map of `layer` (one of [`CAM_LAYERS`]).
pub fn layer_stride(layer: &str) -> Option<usize> {
    arch::stage_index(layer).map(arch::stride_after)
}

/// Channels of the feature map of `layer` (one of [`CAM_LAYERS`]).
pub fn layer_channels(layer: &str) -> Option<usize> {
    arch::stage_index(layer).map(|i| arch::STAGES[i].out_channels)
}

/// Side of the feature map of `layer` for a square input of `side` pixels (None when the input
/// is too small to reach it).
pub fn layer_side(layer: &str, side: usize) -> Option<usize> {
    arch::side_after(0..arch::stage_index(layer)? + 1, side)
}

/// Input pixels from an input's edge within which the feature map of `layer` depends on the
/// convolutions' zero padding (one of [`CAM_LAYERS`]).
pub fn layer_padding_reach(layer: &str) -> Option<usize> {
    arch::stage_index(layer).map(arch::padding_reach)
}
