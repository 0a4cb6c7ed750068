//! The layer table MATLAB's `analyzeNetwork` shows: every layer by its MATLAB name, with its kind,
//! output size and learnable parameter count.

use anyhow::{bail, Result};

use super::arch::{StageKind, MIN_INPUT_SIDE, STAGES};

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSummary {
    /// MATLAB layer name (`conv1`, `fire2-squeeze1x1`, ..., `fc_add`, `prob`).
    pub name: String,
    /// Layer type as MATLAB names it ("Convolution", "ReLU", ...).
    pub kind: &'static str,
    /// Output size `[channels, height, width]`.
    pub output: [usize; 3],
    /// Learnable parameters (weights + biases).
    pub params: usize,
}

/// Rows for SqueezeNet v1.1 on `size x size` inputs, with a `head`-class `fc_add` layer when
/// given. The parameters total 1,235,496 without a head.
pub fn summary(head: Option<usize>, size: u32) -> Result<Vec<LayerSummary>> {
    let size = size as usize;
    if size < MIN_INPUT_SIDE {
        bail!("SqueezeNet needs inputs of at least {MIN_INPUT_SIDE}x{MIN_INPUT_SIDE} pixels, got {size}x{size}")
    }
    let mut rows = Vec::new();
    let mut push = |name: String, kind, output, params| {
        rows.push(LayerSummary {
            name,
            kind,
            output,
            params,
        })
    };
    push("data".into(), "Image Input", [3, size, size], 0);
    let mut side = size;
    for stage in &STAGES {
        let cin = stage.in_channels;
        let Some(next) = stage.output_side(side) else {
            bail!("input {size}x{size} too small for {}", stage.name)
        };
        side = next;
        let out = [stage.out_channels, side, side];
        match stage.kind {
            StageKind::Conv1 => {
                push(
                    "conv1".into(),
                    "Convolution",
                    out,
                    stage.out_channels * (cin * 9 + 1),
                );
                push(stage.name.into(), "ReLU", out, 0);
            }
            StageKind::MaxPool => push(stage.name.into(), "Max Pooling", out, 0),
            StageKind::Fire {
                squeeze: s,
                expand: e,
            } => {
                let fire = stage.name.trim_end_matches("-concat");
                push(
                    format!("{fire}-squeeze1x1"),
                    "Convolution",
                    [s, side, side],
                    s * (cin + 1),
                );
                push(
                    format!("{fire}-relu_squeeze1x1"),
                    "ReLU",
                    [s, side, side],
                    0,
                );
                push(
                    format!("{fire}-expand1x1"),
                    "Convolution",
                    [e, side, side],
                    e * (s + 1),
                );
                push(format!("{fire}-relu_expand1x1"), "ReLU", [e, side, side], 0);
                push(
                    format!("{fire}-expand3x3"),
                    "Convolution",
                    [e, side, side],
                    e * (9 * s + 1),
                );
                push(format!("{fire}-relu_expand3x3"), "ReLU", [e, side, side], 0);
                push(stage.name.into(), "Depth concatenation", out, 0);
            }
            StageKind::Classifier => {
                push("drop9".into(), "Dropout", [cin, side, side], 0);
                push(
                    "conv10".into(),
                    "Convolution",
                    out,
                    stage.out_channels * (cin + 1),
                );
                push(stage.name.into(), "ReLU", out, 0);
            }
            StageKind::GlobalAvgPool => push(stage.name.into(), "Global Average Pooling", out, 0),
        }
    }
    let classes = match head {
        Some(k) => {
            push(
                "fc_add".into(),
                "Fully Connected",
                [k, 1, 1],
                k * (STAGES[STAGES.len() - 1].out_channels + 1),
            );
            k
        }
        None => STAGES[STAGES.len() - 1].out_channels,
    };
    push("prob".into(), "Softmax", [classes, 1, 1], 0);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_shapes_match_matlab_and_torchvision() {
        let rows = summary(None, 227).unwrap();
        assert_eq!(rows.iter().map(|r| r.params).sum::<usize>(), 1_235_496);
        let rows2 = summary(Some(2), 227).unwrap();
        assert_eq!(rows2.iter().map(|r| r.params).sum::<usize>(), 1_237_498);
        let find = |name: &str| rows2.iter().find(|r| r.name == name).unwrap().clone();
        assert_eq!(find("conv1").output, [64, 113, 113]);
        assert_eq!(find("pool1").output, [64, 56, 56]);
        assert_eq!(find("fire2-expand3x3").params, 64 * (16 * 9 + 1));
        assert_eq!(find("fire9-concat").output, [512, 14, 14]);
        assert_eq!(find("relu_conv10").output, [1000, 14, 14]);
        assert_eq!(find("fc_add").output, [2, 1, 1]);
        // data, conv1 + relu, pool1, 8 fires x 7, pool3, pool5, drop9 + conv10 + relu, pool10, fc, prob
        assert_eq!(rows2.len(), 1 + 2 + 1 + 8 * 7 + 2 + 3 + 1 + 2);
        assert_eq!(rows2.last().unwrap().name, "prob");
        assert!(summary(None, 16).is_err());
    }
}
