//! A classifier as an ONNX model, for runtimes that do not know crackscope (ONNX Runtime,
//! OpenVINO, TensorRT, tract). SqueezeNet's class score is the global average of relu_conv10
//! followed by the linear head, so the head applied at every position of relu_conv10 is the
//! class-activation map (Zhou et al. 2016), and its spatial mean plus the head's bias is the
//! logit. The graph computes it beside the probabilities: heatmaps from an exported model need
//! no gradient. crackscope's Grad-CAM at relu_conv10 is that map with a ReLU, rescaled to 0..1.
//!
//! Inputs and outputs (the batch dimension is free, named `batch`):
//! - `image` `[batch, 3, S, S]` float: RGB, `(pixel / 255 - mean) / std` per channel with
//!   ImageNet's mean and deviation, each image resized to S x S (S the training input size).
//! - `probabilities` `[batch, classes]`: the softmax of the logits.
//! - `cam` `[batch, classes, h, w]`: the class-activation map at relu_conv10 (h = w = 14 at
//!   227 px), without the head's bias.
//!
//! The preprocessing, class names and output meanings are also in the model's metadata.

pub mod oneclass;
pub mod proto;

use std::path::Path;

use anyhow::{ensure, Context, Result};
use prost::Message;

use crate::core::fsutil::write_atomic;
use crate::data::augment::{IMAGENET_MEAN, IMAGENET_STD};
use crate::detector::classifier::Classifier;
use crate::model::{layer_side, StageKind, HEAD_BIAS, HEAD_WEIGHT, IMAGENET_CLASSES, STAGES};
use proto::*;

/// Names of the graph's input and outputs.
pub const INPUT: &str = "image";
pub const PROBABILITIES: &str = "probabilities";
pub const CAM: &str = "cam";

/// The ONNX operator set the graph is written against (every operator used is unchanged since;
/// runtimes of the last years all read it) and the IR version that goes with it.
const OPSET: i64 = 13;
const IR_VERSION: i64 = 7;

/// Metadata keys (`metadata_props`) describing the preprocessing and outputs.
pub const META_CLASSES: &str = "classes";
pub const META_INPUT_SIZE: &str = "input_size";
pub const META_MEAN: &str = "mean";
pub const META_STD: &str = "std";

/// What was exported, for the command to print.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exported {
    pub classes: Vec<String>,
    pub input_size: u32,
    /// relu_conv10's side at the input size (a one-class model's: its patch grid's).
    pub cam_side: usize,
    pub bytes: usize,
    /// The graph's outputs with their shapes, for the command to print.
    pub outputs: String,
}

/// Writes `classifier` as an ONNX file at `out` (atomically: a failure leaves no partial file).
pub fn export(classifier: &Classifier, out: &Path) -> Result<Exported> {
    let model = model_proto(classifier)?;
    let bytes = model.encode_to_vec();
    write_atomic(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Exported {
        classes: classifier.classes.clone(),
        input_size: classifier.input_size,
        cam_side: cam_side(classifier)?,
        bytes: bytes.len(),
        outputs: format!(
            "\"{PROBABILITIES}\" [batch, {k}] and \"{CAM}\" [batch, {k}, {c}, {c}]",
            k = classifier.classes.len(),
            c = cam_side(classifier)?
        ),
    })
}

fn cam_side(classifier: &Classifier) -> Result<usize> {
    layer_side("relu_conv10", classifier.input_size as usize)
        .context("the input size is too small for relu_conv10")
}

/// The whole model: graph, operator set, producer and metadata.
pub fn model_proto(classifier: &Classifier) -> Result<ModelProto> {
    let classes = classifier.classes.len();
    let side = classifier.input_size as i64;
    let cam_side = cam_side(classifier)? as i64;
    let mut graph = Graph::default();
    let features = graph
        .backbone(&|key| classifier.weight(key), &["relu_conv10"])?
        .remove(0);
    let pooled = graph.node("GlobalAveragePool", "pool10", &[&features], vec![]);
    let pooled = graph.node("Flatten", "flatten", &[&pooled], vec![int("axis", 1)]);
    let (logits, cam) = if classifier.model.has_head() {
        let (shape, weight) = classifier.weight(HEAD_WEIGHT)?;
        let (_, bias) = classifier.weight(HEAD_BIAS)?;
        ensure!(
            shape == [classes, IMAGENET_CLASSES],
            "the head is {shape:?}, expected [{classes}, {IMAGENET_CLASSES}]"
        );
        let weight_name = graph.initializer(HEAD_WEIGHT, &shape, weight.clone());
        let bias_name = graph.initializer(HEAD_BIAS, &[classes], bias);
        let logits = graph.node(
            "Gemm",
            "head",
            &[&pooled, &weight_name, &bias_name],
            vec![int("transB", 1)],
        );
        // The same weights as a 1x1 convolution over relu_conv10: the head at every position.
        let conv_weight = graph.initializer(
            "head.weight_as_conv",
            &[classes, IMAGENET_CLASSES, 1, 1],
            weight,
        );
        let cam = graph.node(
            "Conv",
            "head_per_position",
            &[&features, &conv_weight],
            vec![],
        );
        (logits, cam)
    } else {
        // Bare ImageNet weights: the outputs are relu_conv10's averages, its channels the map.
        (pooled, features)
    };
    graph.node_named(
        "Softmax",
        "softmax",
        &[&logits],
        PROBABILITIES,
        vec![int("axis", 1)],
    );
    graph.node_named("Identity", "cam", &[&cam], CAM, vec![]);

    let batch = || named_dimension("batch");
    let graph = GraphProto {
        node: graph.nodes,
        name: Some("crackscope_squeezenet1_1".into()),
        initializer: graph.initializers,
        doc_string: Some(
            "SqueezeNet v1.1 fine-tuned by crackscope, with its class-activation map".into(),
        ),
        input: vec![image_input(side)],
        output: vec![
            value_info(
                PROBABILITIES,
                vec![batch(), fixed(classes as i64)],
                "softmax of the logits, in the order of the metadata's classes",
            ),
            value_info(
                CAM,
                vec![
                    batch(),
                    fixed(classes as i64),
                    fixed(cam_side),
                    fixed(cam_side),
                ],
                "class-activation map at relu_conv10 (the head at every position, without its \
                 bias); Grad-CAM at relu_conv10 is max(cam, 0) rescaled to 0..1",
            ),
        ],
    };
    Ok(wrap(
        graph,
        "Input: RGB images resized (bilinear, aspect ratio ignored) to input_size, scaled to \
         0..1, minus mean, divided by std, NCHW. Outputs: probabilities, cam.",
        metadata(classifier)?,
    ))
}

/// `graph` as a model: operator set, producer, description and metadata.
fn wrap(graph: GraphProto, doc: &str, metadata: Vec<(&'static str, String)>) -> ModelProto {
    ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("crackscope".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(doc.into()),
        graph: Some(graph),
        metadata_props: metadata
            .into_iter()
            .map(|(key, value)| StringStringEntryProto {
                key: Some(key.to_string()),
                value: Some(value),
            })
            .collect(),
    }
}

/// How an input image is prepared, for the metadata of every exported model.
fn preprocessing(input_size: u32) -> Result<Vec<(&'static str, String)>> {
    Ok(vec![
        (META_INPUT_SIZE, input_size.to_string()),
        ("input_layout", "NCHW".to_string()),
        ("channel_order", "RGB".to_string()),
        ("pixel_scale", "1/255".to_string()),
        (META_MEAN, serde_json::to_string(&IMAGENET_MEAN)?),
        (META_STD, serde_json::to_string(&IMAGENET_STD)?),
        (
            "resize",
            "bilinear (antialiased when shrinking), to input_size x input_size, aspect ratio \
             ignored"
                .to_string(),
        ),
    ])
}

/// Everything a user of the file needs to prepare its input and read its outputs.
fn metadata(classifier: &Classifier) -> Result<Vec<(&'static str, String)>> {
    let mut pairs = vec![(META_CLASSES, serde_json::to_string(&classifier.classes)?)];
    pairs.extend(preprocessing(classifier.input_size)?);
    pairs.extend([
        ("cam_layer", "relu_conv10".to_string()),
        (
            "cam",
            "head weights applied at every relu_conv10 position, without the bias: mean over \
             positions + bias = logit; Grad-CAM = rescale(max(cam[class], 0))"
                .to_string(),
        ),
    ]);
    Ok(pairs)
}

/// A tensor's shape and values, row-major.
type Weight = (Vec<usize>, Vec<f32>);

/// Nodes and initializers as they are added; each output takes a fresh name.
#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl Graph {
    /// The network from conv1 through the last of `taps` (stage names of the layer table, in
    /// network order), with the weights `weight` gives by torchvision name; returns each tap's
    /// output.
    fn backbone(
        &mut self,
        weight: &dyn Fn(&str) -> Result<Weight>,
        taps: &[&str],
    ) -> Result<Vec<String>> {
        let mut x = INPUT.to_string();
        let mut tapped = Vec::with_capacity(taps.len());
        for stage in STAGES.iter() {
            if tapped.len() == taps.len() {
                break;
            }
            let prefix = stage.torch_prefix.unwrap_or_default();
            x = match stage.kind {
                StageKind::Conv1 => {
                    let conv = self.conv(weight, &x, prefix, "conv1", 3, 2, 0)?;
                    self.node("Relu", stage.name, &[&conv], vec![])
                }
                StageKind::MaxPool => self.node(
                    "MaxPool",
                    stage.name,
                    &[&x],
                    vec![
                        ints("kernel_shape", &[3, 3]),
                        ints("strides", &[2, 2]),
                        int("ceil_mode", 1),
                    ],
                ),
                StageKind::Fire { .. } => {
                    let fire = stage.name.trim_end_matches("-concat");
                    let squeeze = format!("{prefix}.squeeze");
                    let s = self.conv(weight, &x, &squeeze, &format!("{fire}-squeeze"), 1, 1, 0)?;
                    let s = self.node("Relu", &format!("{fire}-relu_squeeze"), &[&s], vec![]);
                    let e1 = format!("{prefix}.expand1x1");
                    let e1 = self.conv(weight, &s, &e1, &format!("{fire}-expand1x1"), 1, 1, 0)?;
                    let e1 = self.node("Relu", &format!("{fire}-relu_expand1x1"), &[&e1], vec![]);
                    let e3 = format!("{prefix}.expand3x3");
                    let e3 = self.conv(weight, &s, &e3, &format!("{fire}-expand3x3"), 3, 1, 1)?;
                    let e3 = self.node("Relu", &format!("{fire}-relu_expand3x3"), &[&e3], vec![]);
                    self.node("Concat", stage.name, &[&e1, &e3], vec![int("axis", 1)])
                }
                StageKind::Classifier => {
                    let conv = self.conv(weight, &x, prefix, "conv10", 1, 1, 0)?;
                    self.node("Relu", stage.name, &[&conv], vec![])
                }
                // pool10 is the classifier's own, which also needs relu_conv10 itself.
                StageKind::GlobalAvgPool => break,
            };
            if taps.get(tapped.len()) == Some(&stage.name) {
                tapped.push(x.clone());
            }
        }
        ensure!(
            tapped.len() == taps.len(),
            "no layer {:?} in SqueezeNet's layer table (or not in network order)",
            taps[tapped.len()..].to_vec()
        );
        Ok(tapped)
    }

    /// A convolution with the weights `{prefix}.weight` and `{prefix}.bias`.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        weight: &dyn Fn(&str) -> Result<Weight>,
        x: &str,
        prefix: &str,
        name: &str,
        kernel: i64,
        stride: i64,
        pad: i64,
    ) -> Result<String> {
        let weight_key = format!("{prefix}.weight");
        let bias_key = format!("{prefix}.bias");
        let (shape, values) = weight(&weight_key)?;
        let weights = self.initializer(&weight_key, &shape, values);
        let (shape, values) = weight(&bias_key)?;
        let bias = self.initializer(&bias_key, &shape, values);
        Ok(self.node(
            "Conv",
            name,
            &[x, &weights, &bias],
            vec![
                ints("kernel_shape", &[kernel, kernel]),
                ints("strides", &[stride, stride]),
                ints("pads", &[pad, pad, pad, pad]),
            ],
        ))
    }

    /// A float tensor; returns its name.
    fn initializer(&mut self, name: &str, shape: &[usize], values: Vec<f32>) -> String {
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: Some(FLOAT),
            name: Some(name.to_string()),
            raw_data: Some(raw_data),
        });
        name.to_string()
    }

    /// An int64 vector (a shape or axes given as an input); returns its name.
    fn int64_initializer(&mut self, name: &str, values: &[i64]) -> String {
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: Some(INT64),
            name: Some(name.to_string()),
            raw_data: Some(raw_data),
        });
        name.to_string()
    }

    /// A node whose one output is named after the node; returns that name.
    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> String {
        self.node_named(op, name, inputs, name, attributes)
    }

    fn node_named(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        output: &str,
        attributes: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|i| i.to_string()).collect(),
            output: vec![output.to_string()],
            name: Some(name.to_string()),
            op_type: Some(op.to_string()),
            attribute: attributes,
        });
        output.to_string()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(ATTRIBUTE_INT),
        i: Some(value),
        ..AttributeProto::default()
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(ATTRIBUTE_INTS),
        ints: values.to_vec(),
        ..AttributeProto::default()
    }
}

fn fixed(size: i64) -> Dimension {
    Dimension {
        value: Some(DimensionValue::Fixed(size)),
    }
}

fn named_dimension(name: &str) -> Dimension {
    Dimension {
        value: Some(DimensionValue::Named(name.to_string())),
    }
}

/// The graph's input: a free batch of `side` x `side` RGB images, prepared as the metadata says.
fn image_input(side: i64) -> ValueInfoProto {
    value_info(
        INPUT,
        vec![named_dimension("batch"), fixed(3), fixed(side), fixed(side)],
        "RGB, resized to input_size x input_size, (pixel / 255 - mean) / std per channel",
    )
}

fn value_info(name: &str, dims: Vec<Dimension>, doc: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: Some(FLOAT),
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
        doc_string: Some(doc.to_string()),
    }
}
