//! A one-class (PatchCore-like) model as an ONNX graph: the backbone through its feature layers,
//! each layer's values (every channel, channel-group means or the random projection, as 1x1
//! convolutions), the neighbourhood average (AveragePool, counting the zeros past the border or
//! not, as the model was fitted), the shallower layer brought to the patch grid (a product with
//! the resampling matrix on each side), and the nearest-neighbour search as a matrix product with
//! the memory bank (an initializer). Outputs: each image's score, every patch's distance and the
//! smoothed anomaly map at the input size (the stretch and the Gaussian are linear and separable:
//! one product on each side).
//!
//! The nearest entry to a patch `p` is the `b_j` of least `|b_j|^2 / 2 - p.b_j` (one matrix
//! product with the bank for all patches), taken with `p` and the entries centred on the bank's
//! mean (far less cancellation in float32 than the raw features, whose values are all positive);
//! its distance is then measured as the sum of squared differences, as crackscope's search does.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use prost::Message;

use super::proto::*;
use super::{
    fixed, image_input, int, ints, named_dimension, preprocessing, value_info, wrap, Exported,
    Graph, Weight, META_CLASSES,
};
use crate::core::fsutil::write_atomic;
use crate::detector::oneclass::features::{group_bounds, resample_matrix};
use crate::detector::oneclass::map::anomaly_map_matrix;
use crate::detector::oneclass::{Edge, OneClassModel, PatchValues};
use crate::model::{layer_channels, layer_side};

/// Names of the one-class graph's outputs.
pub const SCORE: &str = "score";
pub const PATCH_SCORES: &str = "patch_scores";
pub const ANOMALY_MAP: &str = "anomaly_map";

/// Metadata keys of the decision.
pub const META_THRESHOLD: &str = "threshold";
pub const META_SCAN_THRESHOLD: &str = "scan_threshold";

/// Protobuf messages cannot exceed 2 GiB; the bank is by far the largest initializer. Banks
/// beyond this are refused rather than written as a file no runtime reads.
const MAX_BANK_BYTES: usize = 1 << 30;

/// Writes `model` as an ONNX file at `out` (atomically).
pub fn export(model: &OneClassModel, out: &Path) -> Result<Exported> {
    let proto = model_proto(model)?;
    let bytes = proto.encode_to_vec();
    write_atomic(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Exported {
        classes: model.classes.clone(),
        input_size: model.settings().input_size,
        cam_side: model.extractor.grid(),
        bytes: bytes.len(),
        outputs: format!(
            "\"{SCORE}\" [batch], \"{PATCH_SCORES}\" [batch, {g}, {g}] and \"{ANOMALY_MAP}\" \
             [batch, {s}, {s}]; threshold {t}",
            g = model.extractor.grid(),
            s = model.settings().input_size,
            t = model.threshold.value,
        ),
    })
}

/// The whole one-class model as ONNX.
pub fn model_proto(model: &OneClassModel) -> Result<ModelProto> {
    let settings = model.settings();
    let side = settings.input_size as usize;
    let grid = model.extractor.grid();
    let bank = &model.bank;
    let (dim, entries) = (bank.dim(), bank.len());
    ensure!(
        entries * dim * 4 <= MAX_BANK_BYTES,
        "the memory bank ({entries} x {dim} values, {:.1} GiB) is too large for one ONNX file \
         (protobuf messages stop at 2 GiB); fit with a smaller --bank",
        (entries * dim * 4) as f64 / (1u64 << 30) as f64
    );
    ensure!(
        settings.dim() == dim,
        "the bank's entries have {dim} values but the settings give patches of {}",
        settings.dim()
    );
    let weights: HashMap<String, Weight> = model
        .extractor
        .backbone_tensors()
        .into_iter()
        .map(|(name, tensor)| {
            let values = tensor.flatten_all()?.to_vec1::<f32>()?;
            Ok((name, (tensor.dims().to_vec(), values)))
        })
        .collect::<Result<_>>()?;
    let weight = |key: &str| -> Result<Weight> {
        weights
            .get(key)
            .cloned()
            .with_context(|| format!("the one-class model has no backbone tensor {key}"))
    };

    let mut graph = Graph::default();
    let taps: Vec<&str> = settings.layers.iter().map(String::as_str).collect();
    let maps = graph.backbone(&weight, &taps)?;
    let mut planes = Vec::with_capacity(maps.len());
    for (l, (layer, map)) in settings.layers.iter().zip(&maps).enumerate() {
        planes.push(layer_values(&mut graph, model, l, layer, map, grid)?);
    }
    let features = match planes.as_slice() {
        [one] => one.clone(),
        _ => {
            let inputs: Vec<&str> = planes.iter().map(String::as_str).collect();
            graph.node("Concat", "patch_values", &inputs, vec![int("axis", 1)])
        }
    };

    // [N, D, g, g] -> [N, g*g, D]: one row per patch, row-major over the grid.
    let shape = graph.int64_initializer("patch_rows_shape", &[0, dim as i64, -1]);
    let rows = graph.node("Reshape", "patch_rows", &[&features, &shape], vec![]);
    let patches = graph.node(
        "Transpose",
        "patches",
        &[&rows],
        vec![ints("perm", &[0, 2, 1])],
    );
    let (mean, centred_bank) = centred(bank.entries(), dim);
    let mean = graph.initializer("bank_mean", &[dim], mean);
    let patches = graph.node("Sub", "patches_centred", &[&patches, &mean], vec![]);
    // The nearest entry is the one of least |b_j|^2 / 2 - p.b_j (one product with the bank);
    // its distance is then measured as a sum of squared differences, free of that expansion's
    // rounding.
    let half_norms: Vec<f32> = centred_bank
        .chunks_exact(dim)
        .map(|e| e.iter().map(|v| v * v).sum::<f32>() / 2.0)
        .collect();
    let bank = graph.initializer("bank", &[entries, dim], centred_bank);
    let half_norms = graph.initializer("bank_half_squared_norms", &[entries], half_norms);
    let bank_t = graph.node(
        "Transpose",
        "bank_transposed",
        &[&bank],
        vec![ints("perm", &[1, 0])],
    );
    let products = graph.node("MatMul", "bank_products", &[&patches, &bank_t], vec![]);
    let ranks = graph.node("Sub", "bank_ranks", &[&half_norms, &products], vec![]);
    let nearest = graph.node(
        "ArgMin",
        "nearest_entry",
        &[&ranks],
        vec![int("axis", 2), int("keepdims", 0)],
    );
    let nearest = graph.node(
        "Gather",
        "nearest_values",
        &[&bank, &nearest],
        vec![int("axis", 0)],
    );
    let difference = graph.node("Sub", "nearest_difference", &[&patches, &nearest], vec![]);
    let squared_distance = graph.node(
        "ReduceSumSquare",
        "nearest_squared",
        &[&difference],
        vec![ints("axes", &[2]), int("keepdims", 0)],
    );
    let distance = graph.node("Sqrt", "nearest_distance", &[&squared_distance], vec![]);
    let grid_shape = graph.int64_initializer("grid_shape", &[0, grid as i64, grid as i64]);
    let patch_scores = graph.node_named(
        "Reshape",
        "patch_scores",
        &[&distance, &grid_shape],
        PATCH_SCORES,
        vec![],
    );
    graph.node_named(
        "ReduceMax",
        "image_score",
        &[&patch_scores],
        SCORE,
        vec![ints("axes", &[1, 2]), int("keepdims", 0)],
    );
    let stretch = anomaly_map_matrix(grid, side, settings.smoothing_sigma);
    let stretch_t = transposed(&stretch, side, grid);
    let stretch = graph.initializer("map_rows", &[side, grid], stretch);
    let stretch_t = graph.initializer("map_columns", &[grid, side], stretch_t);
    let half = graph.node("MatMul", "map_half", &[&stretch, &patch_scores], vec![]);
    graph.node_named("MatMul", "map", &[&half, &stretch_t], ANOMALY_MAP, vec![]);

    let batch = || named_dimension("batch");
    let (side, grid) = (side as i64, grid as i64);
    let graph = GraphProto {
        node: graph.nodes,
        name: Some("crackscope_oneclass_squeezenet1_1".into()),
        initializer: graph.initializers,
        doc_string: Some(
            "PatchCore-like one-class model on the ImageNet SqueezeNet v1.1, fitted by \
             crackscope: image score, patch distances and anomaly map"
                .into(),
        ),
        input: vec![image_input(side)],
        output: vec![
            value_info(
                SCORE,
                vec![batch()],
                "anomaly score: the largest patch distance; above the metadata's threshold is \
                 an anomaly",
            ),
            value_info(
                PATCH_SCORES,
                vec![batch(), fixed(grid), fixed(grid)],
                "each patch's distance to its nearest memory-bank entry, on the patch grid",
            ),
            value_info(
                ANOMALY_MAP,
                vec![batch(), fixed(side), fixed(side)],
                "the patch distances stretched to the input size (bilinear) and smoothed \
                 (Gaussian of map_sigma pixels, edges mirrored)",
            ),
        ],
    };
    Ok(wrap(
        graph,
        "Input: RGB images resized (bilinear, aspect ratio ignored) to input_size, scaled to \
         0..1, minus mean, divided by std, NCHW. Outputs: score, patch_scores, anomaly_map.",
        metadata(model)?,
    ))
}

/// Layer `l`'s patch values on the patch grid, `[N, width, grid, grid]`, from its map `map`.
fn layer_values(
    graph: &mut Graph,
    model: &OneClassModel,
    l: usize,
    layer: &str,
    map: &str,
    grid: usize,
) -> Result<String> {
    let settings = model.settings();
    let channels = layer_channels(layer).with_context(|| format!("unknown layer {layer}"))?;
    let side = layer_side(layer, settings.input_size as usize)
        .with_context(|| format!("the input size is too small for {layer}"))?;
    let name = layer.trim_end_matches("-concat");
    let width = settings.values.width(channels);
    // Reduction as a 1x1 convolution without bias: a [width, channels] matrix.
    let reduction = match settings.values {
        PatchValues::All => None,
        PatchValues::Means(_) => {
            let mut matrix = vec![0f32; width * channels];
            for (d, row) in matrix.chunks_exact_mut(channels).enumerate() {
                let (c0, c1) = group_bounds(d, channels, width);
                row[c0..c1].fill(1.0 / (c1 - c0) as f32);
            }
            Some(matrix)
        }
        PatchValues::Projection(_) => Some(
            model
                .extractor
                .projection(l)
                .with_context(|| format!("the model has no projection matrix for {layer}"))?
                .to_vec(),
        ),
    };
    let mut x = map.to_string();
    if let Some(matrix) = reduction {
        let w = graph.initializer(
            &format!("{name}-reduction.weight"),
            &[width, channels, 1, 1],
            matrix,
        );
        x = graph.node("Conv", &format!("{name}-reduction"), &[&x, &w], vec![]);
    }
    let reach = (settings.neighbourhood / 2) as i64;
    if reach > 0 {
        let size = 2 * reach + 1;
        x = graph.node(
            "AveragePool",
            &format!("{name}-neighbourhood"),
            &[&x],
            vec![
                ints("kernel_shape", &[size, size]),
                ints("strides", &[1, 1]),
                ints("pads", &[reach, reach, reach, reach]),
                int("count_include_pad", i64::from(settings.edge == Edge::Zeros)),
            ],
        );
    }
    if side != grid {
        let rows = resample_matrix(side, grid);
        let columns = transposed(&rows, grid, side);
        let rows = graph.initializer(&format!("{name}-to-grid-rows"), &[grid, side], rows);
        let columns = graph.initializer(&format!("{name}-to-grid-columns"), &[side, grid], columns);
        let half = graph.node(
            "MatMul",
            &format!("{name}-to-grid-half"),
            &[&rows, &x],
            vec![],
        );
        x = graph.node(
            "MatMul",
            &format!("{name}-on-grid"),
            &[&half, &columns],
            vec![],
        );
    }
    Ok(x)
}

/// The bank's mean entry and the entries minus it (the mean summed in f64).
fn centred(entries: &[f32], dim: usize) -> (Vec<f32>, Vec<f32>) {
    let count = (entries.len() / dim).max(1) as f64;
    let mut sum = vec![0f64; dim];
    for entry in entries.chunks_exact(dim) {
        for (s, &v) in sum.iter_mut().zip(entry) {
            *s += f64::from(v);
        }
    }
    let mean: Vec<f32> = sum.iter().map(|s| (s / count) as f32).collect();
    let centred = entries
        .chunks_exact(dim)
        .flat_map(|entry| entry.iter().zip(&mean).map(|(v, m)| v - m))
        .collect();
    (mean, centred)
}

/// The transpose of a row-major `rows x columns` matrix.
fn transposed(matrix: &[f32], rows: usize, columns: usize) -> Vec<f32> {
    let mut out = vec![0f32; matrix.len()];
    for r in 0..rows {
        for c in 0..columns {
            out[c * rows + r] = matrix[r * columns + c];
        }
    }
    out
}

/// The preprocessing, the classes, the decision and the settings the model was fitted with.
fn metadata(model: &OneClassModel) -> Result<Vec<(&'static str, String)>> {
    let settings = model.settings();
    let mut pairs = vec![(META_CLASSES, serde_json::to_string(&model.classes)?)];
    pairs.extend(preprocessing(settings.input_size)?);
    pairs.extend([
        ("kind", "one-class".to_string()),
        ("normal_class", model.normal_class.clone()),
        (META_THRESHOLD, model.threshold.value.to_string()),
        ("threshold_rule", model.threshold.rule_text()),
        ("settings", serde_json::to_string(settings)?),
        ("bank_entries", model.bank.len().to_string()),
        (
            "score",
            "largest patch distance to the nearest memory-bank entry; score > threshold is an \
             anomaly (not one of the normal class)"
                .to_string(),
        ),
        (
            "anomaly_map",
            "patch distances stretched to input_size (bilinear, pixel centres aligned) and \
             smoothed with a Gaussian of settings.smoothing_sigma pixels (truncated at 4 sigma, \
             edges mirrored); crackscope colours it with the threshold at the colour table's \
             middle"
                .to_string(),
        ),
    ]);
    if let Some(scan) = &model.scan_threshold {
        pairs.push((META_SCAN_THRESHOLD, scan.value.to_string()));
    }
    Ok(pairs)
}
