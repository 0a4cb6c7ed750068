//! The SqueezeNet v1.1 layer table, shared by the fast engine, the reference path, weight loading
//! and the summary, so that the architecture is written down exactly once.
//!
//! The network is cut into *stages*: the smallest pieces whose output is a feature map worth naming
//! (ReLUs are fused into the convolution before them, as MATLAB's `relu_*` layers follow directly).

use std::ops::Range;

/// The smallest input side the network accepts: every max pool needs at least 2 pixels of input.
pub const MIN_INPUT_SIDE: usize = 17;

/// ImageNet classes of the pretrained classifier (conv10's output channels).
pub const IMAGENET_CLASSES: usize = 1000;

/// Channels entering the classifier (fire9's output).
pub const FEATURE_CHANNELS: usize = 512;

/// drop9 keeps half of the values and doubles them (PyTorch's inverted dropout, p = 0.5).
pub(crate) const DROPOUT_SCALE: f32 = 2.0;

/// What a stage computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StageKind {
    /// conv1 (3 -> 64, 3x3, stride 2, no padding) followed by relu_conv1.
    Conv1,
    /// 3x3 max pool, stride 2, ceil mode (PyTorch's `MaxPool2d(3, 2, ceil_mode=True)`).
    MaxPool,
    /// Fire module: squeeze 1x1 + ReLU, then [ReLU(expand 1x1), ReLU(expand 3x3, pad 1)] stacked.
    Fire { squeeze: usize, expand: usize },
    /// drop9 (p = 0.5, training only), conv10 (512 -> 1000, 1x1) and relu_conv10.
    Classifier,
    /// pool10: global average pool to one value per channel.
    GlobalAvgPool,
}

/// One stage of the network.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stage {
    pub kind: StageKind,
    /// MATLAB name of the stage's output layer (the name callers use to split the network).
    pub name: &'static str,
    /// torchvision module path owning the stage's parameters, if it has any.
    pub torch_prefix: Option<&'static str>,
    pub in_channels: usize,
    pub out_channels: usize,
}

const fn fire(name: &'static str, prefix: &'static str, cin: usize, s: usize, e: usize) -> Stage {
    Stage {
        kind: StageKind::Fire {
            squeeze: s,
            expand: e,
        },
        name,
        torch_prefix: Some(prefix),
        in_channels: cin,
        out_channels: 2 * e,
    }
}

const fn pool(name: &'static str, channels: usize) -> Stage {
    Stage {
        kind: StageKind::MaxPool,
        name,
        torch_prefix: None,
        in_channels: channels,
        out_channels: channels,
    }
}

/// The stages in order; torchvision's `features.N` indices are kept in `torch_prefix`.
pub(crate) const STAGES: [Stage; 14] = [
    Stage {
        kind: StageKind::Conv1,
        name: "relu_conv1",
        torch_prefix: Some("features.0"),
        in_channels: 3,
        out_channels: 64,
    },
    pool("pool1", 64),
    fire("fire2-concat", "features.3", 64, 16, 64),
    fire("fire3-concat", "features.4", 128, 16, 64),
    pool("pool3", 128),
    fire("fire4-concat", "features.6", 128, 32, 128),
    fire("fire5-concat", "features.7", 256, 32, 128),
    pool("pool5", 256),
    fire("fire6-concat", "features.9", 256, 48, 192),
    fire("fire7-concat", "features.10", 384, 48, 192),
    fire("fire8-concat", "features.11", 384, 64, 256),
    fire("fire9-concat", "features.12", 512, 64, 256),
    Stage {
        kind: StageKind::Classifier,
        name: "relu_conv10",
        torch_prefix: Some("classifier.1"),
        in_channels: FEATURE_CHANNELS,
        out_channels: IMAGENET_CLASSES,
    },
    Stage {
        kind: StageKind::GlobalAvgPool,
        name: "pool10",
        torch_prefix: None,
        in_channels: IMAGENET_CLASSES,
        out_channels: IMAGENET_CLASSES,
    },
];

/// All stages.
pub(crate) const ALL: Range<usize> = 0..STAGES.len();

/// Index of the classifier stage (the only one with dropout).
pub(crate) const CLASSIFIER: usize = 12;

/// One learnable tensor: torchvision key and shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParamSpec {
    pub key: String,
    pub shape: Vec<usize>,
}

impl ParamSpec {
    fn new(key: String, shape: &[usize]) -> Self {
        Self {
            key,
            shape: shape.to_vec(),
        }
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

impl Stage {
    /// The stage's parameters in the order the engine packs them.
    pub fn params(&self) -> Vec<ParamSpec> {
        let Some(prefix) = self.torch_prefix else {
            return Vec::new();
        };
        let (cin, cout) = (self.in_channels, self.out_channels);
        match self.kind {
            StageKind::Conv1 => vec![
                ParamSpec::new(format!("{prefix}.weight"), &[cout, cin, 3, 3]),
                ParamSpec::new(format!("{prefix}.bias"), &[cout]),
            ],
            StageKind::Fire {
                squeeze: s,
                expand: e,
            } => vec![
                ParamSpec::new(format!("{prefix}.squeeze.weight"), &[s, cin, 1, 1]),
                ParamSpec::new(format!("{prefix}.squeeze.bias"), &[s]),
                ParamSpec::new(format!("{prefix}.expand1x1.weight"), &[e, s, 1, 1]),
                ParamSpec::new(format!("{prefix}.expand1x1.bias"), &[e]),
                ParamSpec::new(format!("{prefix}.expand3x3.weight"), &[e, s, 3, 3]),
                ParamSpec::new(format!("{prefix}.expand3x3.bias"), &[e]),
            ],
            StageKind::Classifier => vec![
                ParamSpec::new(format!("{prefix}.weight"), &[cout, cin, 1, 1]),
                ParamSpec::new(format!("{prefix}.bias"), &[cout]),
            ],
            StageKind::MaxPool | StageKind::GlobalAvgPool => Vec::new(),
        }
    }

    /// Output height (or width) for an input side `side`, or None when the input is too small.
    pub fn output_side(&self, side: usize) -> Option<usize> {
        match self.kind {
            StageKind::Conv1 => (side >= 3).then(|| (side - 3) / 2 + 1),
            // ceil((side - 3) / 2) + 1 with PyTorch's rule that a window must start inside the
            // input; that simplifies to side / 2, and PyTorch rejects the empty output of side 1.
            StageKind::MaxPool => (side >= 2).then_some(side / 2),
            StageKind::Fire { .. } | StageKind::Classifier => Some(side),
            StageKind::GlobalAvgPool => (side >= 1).then_some(1),
        }
    }
}

/// Every backbone parameter (the 52 torchvision tensors) in packing order.
pub(crate) fn backbone_params() -> Vec<ParamSpec> {
    STAGES.iter().flat_map(|s| s.params()).collect()
}

/// Range of indices into [`backbone_params`] owned by the stages in `stages`.
pub(crate) fn param_range(stages: Range<usize>) -> Range<usize> {
    let count = |r: Range<usize>| STAGES[r].iter().map(|s| s.params().len()).sum::<usize>();
    let start = count(0..stages.start);
    start..start + count(stages)
}

/// Spatial side after running `stages` on an input of side `side`, or None if it is too small.
pub(crate) fn side_after(stages: Range<usize>, side: usize) -> Option<usize> {
    STAGES[stages]
        .iter()
        .try_fold(side, |s, stage| stage.output_side(s))
}

/// Input pixels per step of the feature map that stage `index` puts out: conv1 and each max pool
/// halve the map.
pub(crate) fn stride_after(index: usize) -> usize {
    STAGES[..=index]
        .iter()
        .filter(|s| matches!(s.kind, StageKind::Conv1 | StageKind::MaxPool))
        .fold(1, |stride, _| stride * 2)
}

/// Input pixels from an input's edge within which the feature map of stage `index` depends on
/// the zero padding of the fire modules' 3x3 convolutions (one input cell each).
pub(crate) fn padding_reach(index: usize) -> usize {
    (1..=index)
        .filter(|&i| matches!(STAGES[i].kind, StageKind::Fire { .. }))
        .map(|i| stride_after(i - 1))
        .sum()
}

/// Index of the stage whose output carries the MATLAB name `name`.
pub(crate) fn stage_index(name: &str) -> Option<usize> {
    STAGES.iter().position(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_table_matches_torchvision() {
        let params = backbone_params();
        assert_eq!(params.len(), 52);
        assert_eq!(params.iter().map(ParamSpec::len).sum::<usize>(), 1_235_496);
        assert_eq!(params[0].key, "features.0.weight");
        assert_eq!(params[2].key, "features.3.squeeze.weight");
        assert_eq!(params[51].key, "classifier.1.bias");
        assert_eq!(param_range(2..4), 2..14);
        assert_eq!(param_range(ALL), 0..52);
    }

    #[test]
    fn spatial_sizes_follow_pytorch() {
        // Measured with torchvision: 227 -> 113 -> 56 -> 28 -> 14; 224 -> 111 -> 55 -> 27 -> 13.
        assert_eq!(side_after(0..1, 227), Some(113));
        assert_eq!(side_after(0..2, 227), Some(56));
        assert_eq!(side_after(0..CLASSIFIER + 1, 227), Some(14));
        assert_eq!(side_after(0..CLASSIFIER + 1, 224), Some(13));
        // PyTorch accepts 17x17 (features end at 1x1) and rejects 15x15.
        assert_eq!(side_after(0..CLASSIFIER, MIN_INPUT_SIDE), Some(1));
        assert_eq!(side_after(0..CLASSIFIER, MIN_INPUT_SIDE - 1), None);
        let stride = |name| stride_after(stage_index(name).unwrap());
        assert_eq!(stride("relu_conv1"), 2);
        assert_eq!(stride("fire3-concat"), 4);
        assert_eq!(stride("fire5-concat"), 8);
        assert_eq!(stride("relu_conv10"), 16);
        let reach = |name| padding_reach(stage_index(name).unwrap());
        assert_eq!(reach("fire3-concat"), 4 + 4);
        assert_eq!(reach("fire5-concat"), 4 + 4 + 8 + 8);
    }
}
