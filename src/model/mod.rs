//! SqueezeNet v1.1 (torchvision's `squeezenet1_1`) in candle, fast enough to fine-tune on a CPU.
//!
//! - [`SqueezeNet`]: the network built from a `VarBuilder`, torchvision parameter names, an
//!   optional classification head (`fc_add`), and Grad-CAM split points ([`CAM_LAYERS`]).
//! - [`load_torchvision`], [`save_checkpoint`], [`load_model`]: weights in and out.
//! - [`summary`]: the `analyzeNetwork` table.
//!
//! On the CPU the stages run on a dedicated engine (`engine`, `ops`): activations channel-major,
//! 1x1 convolutions as single matrix products, 3x3 ones through im2col, ReLU fused, buffers
//! recycled, each range of stages one candle custom operation with a hand-written backward pass.
//! On other devices the same stages run as ordinary candle operations (`reference`), which is
//! also what the engine is tested against.

mod arch;
mod buffers;
mod checkpoint;
mod engine;
mod ops;
mod reference;
mod segment;
mod squeezenet;
mod summary;
mod weights;

pub use arch::{IMAGENET_CLASSES, MIN_INPUT_SIDE};
pub use checkpoint::{load_model, save_checkpoint, LoadedModel};
pub use squeezenet::{init_head, SqueezeNet, CAM_LAYERS, HEAD_BIAS, HEAD_WEIGHT};
pub use summary::{summary, LayerSummary};
pub use weights::load_torchvision;

#[cfg(test)]
mod profile;
#[cfg(test)]
mod testutil;
