//! Checkpoints in and out. crackscope writes one `.safetensors` file with the backbone under
//! torchvision's names, the head as `head.weight`/`head.bias`, and typed metadata
//! ([`CheckpointMeta`]: class names, input size, training position), so a trained model can be
//! shared as a single file and read by any safetensors tool or by PyTorch.
//!
//! Reading is strict, as PyTorch's `load_state_dict(strict=True)`: every tensor of the file is
//! used, or the error names the unused ones (and the missing ones). The head is found under the
//! names PyTorch users produce (see [`HeadLayout`]), from `.pth` or `.safetensors` alike.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::PoisonError;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::arch::{self, ParamSpec, FEATURE_CHANNELS, IMAGENET_CLASSES};
use super::squeezenet::{SqueezeNet, HEAD_BIAS, HEAD_WEIGHT};
use super::weights::{assign, check_tensors, imagenet_class_names, read_weights};
use crate::core::fsutil::write_atomic;

/// Metadata key marking a crackscope checkpoint, and its value (written for other tools; reading
/// no longer needs it).
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "crackscope-squeezenet1_1";
/// Metadata keys, one per field of [`CheckpointMeta`] plus the class names.
const CLASSES_KEY: &str = "classes";
const INPUT_SIZE_KEY: &str = "input_size";
const ITERATION_KEY: &str = "iteration";
const EPOCH_KEY: &str = "epoch";
const BEST_KEY: &str = "best_val_accuracy";
/// The tensor of the familiarity summary a model file may carry (`detector::familiarity`):
/// stored with the model, not part of the network, so loading leaves it out.
pub const FAMILIARITY_TENSOR: &str = "familiarity.bank";
/// The file beside a checkpoint that names its classes, one a line, when the file itself does not.
pub const CLASSES_FILE: &str = "classes.txt";
/// torchvision's classifier convolution, replaced by PyTorch users for another number of classes.
const CONV10_WEIGHT: &str = "classifier.1.weight";
const CONV10_BIAS: &str = "classifier.1.bias";

/// What a checkpoint says about itself besides its tensors and class names. One writer
/// ([`save_checkpoint`]) and one reader ([`load_model`]), so the keys live only here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckpointMeta {
    /// Side of the square images the model was trained at (images are resized to it).
    pub input_size: Option<u32>,
    /// Training iterations done when it was saved.
    pub iteration: Option<usize>,
    pub epoch: Option<usize>,
    /// The best validation accuracy seen so far in its run.
    pub best_val_accuracy: Option<f32>,
}

impl CheckpointMeta {
    fn to_pairs(&self, classes: &[String]) -> Result<HashMap<String, String>> {
        let mut pairs = HashMap::from([
            (FORMAT_KEY.to_string(), FORMAT.to_string()),
            (CLASSES_KEY.to_string(), serde_json::to_string(classes)?),
        ]);
        let mut put = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                pairs.insert(key.to_string(), v);
            }
        };
        put(INPUT_SIZE_KEY, self.input_size.map(|v| v.to_string()));
        put(ITERATION_KEY, self.iteration.map(|v| v.to_string()));
        put(EPOCH_KEY, self.epoch.map(|v| v.to_string()));
        put(BEST_KEY, self.best_val_accuracy.map(|v| v.to_string()));
        Ok(pairs)
    }

    /// Reads the known keys of a file's metadata (others, such as safetensors' own `format`, are
    /// left alone); a known key with a bad value is an error naming the file and the key.
    fn from_pairs(path: &Path, pairs: &HashMap<String, String>) -> Result<CheckpointMeta> {
        fn parse<T: std::str::FromStr>(
            path: &Path,
            pairs: &HashMap<String, String>,
            key: &str,
        ) -> Result<Option<T>> {
            pairs
                .get(key)
                .map(|v| {
                    v.trim().parse().ok().with_context(|| {
                        format!("{}: metadata {key} = {v:?} is not a number", path.display())
                    })
                })
                .transpose()
        }
        Ok(CheckpointMeta {
            input_size: parse(path, pairs, INPUT_SIZE_KEY)?,
            iteration: parse(path, pairs, ITERATION_KEY)?,
            epoch: parse(path, pairs, EPOCH_KEY)?,
            best_val_accuracy: parse(path, pairs, BEST_KEY)?,
        })
    }
}

/// Where the head of a weights file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadLayout {
    /// torchvision's network alone: 1000 ImageNet outputs, no head.
    Bare,
    /// `head.weight`/`head.bias` (`Linear(1000, k)`) beside torchvision's keys, as crackscope
    /// writes it.
    Head,
    /// `nn.Sequential(squeezenet1_1(), nn.Linear(1000, k))`: `0.features.…`, `0.classifier.…`,
    /// `1.weight`, `1.bias`.
    Sequential,
    /// torchvision's `classifier[1]` replaced by `Conv2d(512, k, 1)`: `classifier.1.*` with k
    /// outputs. Loaded exactly as an equivalent network: conv10's first k channels carry the
    /// file's filters, the other channels are zero (so ReLU and the average pool give zero), and
    /// an identity head picks the k channels.
    Classifier,
}

/// What the caller knows that a file may not say (command-line flags).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Class names in output order (`--classes A,B,...`), for files that do not name them.
    pub classes: Option<Vec<String>>,
    /// The input size (`--input-size N`), for files that do not record it.
    pub input_size: Option<u32>,
}

/// A model read from disk, with what it needs to be used or trained further.
pub struct LoadedModel {
    pub model: SqueezeNet,
    /// The variables behind `model` (for further training or saving).
    pub varmap: VarMap,
    /// Class names in output order.
    pub classes: Vec<String>,
    /// The file's metadata; `input_size` also set from [`LoadOptions`] when the file has none.
    pub meta: CheckpointMeta,
    /// Where the head was found.
    pub layout: HeadLayout,
}

fn head_specs(classes: usize) -> Vec<ParamSpec> {
    vec![
        ParamSpec {
            key: HEAD_WEIGHT.into(),
            shape: vec![classes, IMAGENET_CLASSES],
        },
        ParamSpec {
            key: HEAD_BIAS.into(),
            shape: vec![classes],
        },
    ]
}

/// Writes the model in `varmap` to `path` atomically (a crash never leaves a partial file).
/// `classes` must match the head's outputs (or be the 1000 ImageNet names for a model without a
/// head); `meta` comes back from [`load_model`].
pub fn save_checkpoint(
    path: &Path,
    varmap: &VarMap,
    classes: &[String],
    meta: &CheckpointMeta,
) -> Result<()> {
    let vars = varmap.data().lock().unwrap_or_else(PoisonError::into_inner);
    let outputs = match vars.get(HEAD_WEIGHT) {
        Some(w) => w.as_tensor().dim(0)?,
        None => IMAGENET_CLASSES,
    };
    ensure!(
        classes.len() == outputs,
        "{} class names given for a model with {outputs} outputs",
        classes.len()
    );
    let mut specs = arch::backbone_params();
    if vars.contains_key(HEAD_WEIGHT) {
        specs.extend(head_specs(outputs));
    }
    let mut data = Vec::with_capacity(specs.len());
    for spec in &specs {
        let var = vars
            .get(&spec.key)
            .with_context(|| format!("the model has no variable {}", spec.key))?;
        let values = var
            .as_tensor()
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        data.push((spec.key.clone(), var.dims().to_vec(), bytes));
    }
    drop(vars);
    let views = data
        .iter()
        .map(|(key, shape, bytes)| {
            Ok((
                key.as_str(),
                safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    shape.clone(),
                    bytes,
                )?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = crate::core::stable_safetensors::serialize(views, meta.to_pairs(classes)?)
        .context("cannot serialise the checkpoint")?;
    write_atomic(path, &bytes)
}

/// Reads a checkpoint (crackscope's or PyTorch's, see [`HeadLayout`]) or bare torchvision weights,
/// strictly; class names and the input size come from the file, else from `options`.
pub fn load_model_with(path: &Path, device: &Device, options: &LoadOptions) -> Result<LoadedModel> {
    let mut file = read_weights(path)?;
    file.tensors.remove(FAMILIARITY_TENSOR);
    let (layout, tensors) = match_tensors(path, file.tensors)?;
    let outputs = match layout {
        HeadLayout::Bare => IMAGENET_CLASSES,
        _ => tensors[HEAD_WEIGHT].dim(0)?,
    };
    let mut specs = arch::backbone_params();
    if layout != HeadLayout::Bare {
        specs.extend(head_specs(outputs));
    }
    check_tensors(path, &tensors, &specs)?;
    let classes = class_names(path, &file.metadata, options, outputs, layout)?;
    let mut meta = CheckpointMeta::from_pairs(path, &file.metadata)?;
    match (meta.input_size, options.input_size) {
        (Some(own), Some(given)) if own != given => bail!(
            "{} was trained at {own} px; --input-size {given} disagrees (leave it out)",
            path.display()
        ),
        (None, given) => meta.input_size = given,
        _ => {}
    }
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let head = (layout != HeadLayout::Bare).then_some(outputs);
    let model = SqueezeNet::new(vb, head)?;
    assign(&varmap, &tensors, &specs)?;
    Ok(LoadedModel {
        model,
        varmap,
        classes,
        meta,
        layout,
    })
}

/// [`load_model_with`] without options: the file must name its classes (or lie beside a
/// `classes.txt`).
pub fn load_model(path: &Path, device: &Device) -> Result<LoadedModel> {
    load_model_with(path, device, &LoadOptions::default())
}

/// Recognises the head layout and renames the file's tensors to crackscope's names; every tensor
/// must be used and every expected one present (PyTorch's strict loading), or the error names
/// them all. Shapes are checked afterwards by the caller.
fn match_tensors(
    path: &Path,
    tensors: HashMap<String, Tensor>,
) -> Result<(HeadLayout, HashMap<String, Tensor>)> {
    let sequential = tensors.keys().any(|k| k.starts_with("0."));
    let rename = |key: &str| -> String {
        if !sequential {
            return key.to_string();
        }
        match key {
            "1.weight" => HEAD_WEIGHT.to_string(),
            "1.bias" => HEAD_BIAS.to_string(),
            _ => key.strip_prefix("0.").unwrap_or(key).to_string(),
        }
    };
    // Original name beside each new one, for messages in the file's own terms.
    let mut original = HashMap::new();
    let mut renamed = HashMap::new();
    for (key, tensor) in tensors {
        let new = rename(&key);
        original.insert(new.clone(), key);
        renamed.insert(new, tensor);
    }
    let conv10_outputs = renamed.get(CONV10_WEIGHT).map(|w| w.dims()[0]);
    let layout = if sequential {
        HeadLayout::Sequential
    } else if renamed.contains_key(HEAD_WEIGHT) || renamed.contains_key(HEAD_BIAS) {
        HeadLayout::Head
    } else if conv10_outputs.is_some_and(|n| n != IMAGENET_CLASSES) {
        HeadLayout::Classifier
    } else {
        HeadLayout::Bare
    };
    let mut expected: Vec<String> = arch::backbone_params().into_iter().map(|s| s.key).collect();
    if matches!(layout, HeadLayout::Head | HeadLayout::Sequential) {
        expected.extend([HEAD_WEIGHT.to_string(), HEAD_BIAS.to_string()]);
    }
    let expected_set: BTreeSet<&String> = expected.iter().collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|k| !renamed.contains_key(*k))
        .map(|k| {
            if sequential && !k.starts_with("head.") {
                format!("0.{k}")
            } else if sequential {
                k.replace("head.", "1.")
            } else {
                k.clone()
            }
        })
        .collect();
    let mut unused: Vec<String> = renamed
        .keys()
        .filter(|k| !expected_set.contains(k))
        .map(|k| original[k].clone())
        .collect();
    unused.sort();
    super::weights::check_strict(path, expected.len(), &missing, &unused)?;
    if layout == HeadLayout::Classifier {
        embed_classifier(path, &mut renamed)?;
    }
    Ok((layout, renamed))
}

/// Turns a k-output conv10 into the equivalent 1000-channel conv10 plus identity head (see
/// [`HeadLayout::Classifier`]).
fn embed_classifier(path: &Path, tensors: &mut HashMap<String, Tensor>) -> Result<()> {
    let weight = &tensors[CONV10_WEIGHT];
    let bias = &tensors[CONV10_BIAS];
    let k = weight.dims()[0];
    ensure!(
        weight.dims() == [k, FEATURE_CHANNELS, 1, 1] && bias.dims() == [k],
        "{}: {CONV10_WEIGHT} {:?} and {CONV10_BIAS} {:?} are not a classifier of \
         [k, {FEATURE_CHANNELS}, 1, 1] and [k]",
        path.display(),
        weight.dims(),
        bias.dims()
    );
    ensure!(
        (1..IMAGENET_CLASSES).contains(&k),
        "{}: a classifier of {k} classes is not supported (at most {})",
        path.display(),
        IMAGENET_CLASSES - 1
    );
    let pad = IMAGENET_CLASSES - k;
    let weight = weight.to_dtype(DType::F32)?;
    let bias = bias.to_dtype(DType::F32)?;
    let device = weight.device().clone();
    let padded_weight = Tensor::cat(
        &[
            weight,
            Tensor::zeros((pad, FEATURE_CHANNELS, 1, 1), DType::F32, &device)?,
        ],
        0,
    )?;
    let padded_bias = Tensor::cat(&[bias, Tensor::zeros(pad, DType::F32, &device)?], 0)?;
    let identity = Tensor::cat(
        &[
            Tensor::eye(k, DType::F32, &device)?,
            Tensor::zeros((k, pad), DType::F32, &device)?,
        ],
        1,
    )?;
    tensors.insert(CONV10_WEIGHT.into(), padded_weight);
    tensors.insert(CONV10_BIAS.into(), padded_bias);
    tensors.insert(HEAD_WEIGHT.into(), identity);
    tensors.insert(HEAD_BIAS.into(), Tensor::zeros(k, DType::F32, &device)?);
    Ok(())
}

/// Class names in output order: the file's metadata, else `--classes`, else `classes.txt` beside
/// the file; bare ImageNet weights also take `imagenet_classes.txt` beside them, else are
/// numbered "class N" (the ImageNet index). Otherwise an error that asks for them.
fn class_names(
    path: &Path,
    metadata: &HashMap<String, String>,
    options: &LoadOptions,
    outputs: usize,
    layout: HeadLayout,
) -> Result<Vec<String>> {
    let check = |names: Vec<String>, source: &str| -> Result<Vec<String>> {
        ensure!(
            names.len() == outputs,
            "{source} names {} classes but {} has {outputs} outputs (rows of its head)",
            names.len(),
            path.display()
        );
        Ok(names)
    };
    if let Some(json) = metadata.get(CLASSES_KEY) {
        let names: Vec<String> = serde_json::from_str(json).with_context(|| {
            format!(
                "{}: class names are not a JSON array of strings",
                path.display()
            )
        })?;
        let names = check(names, &format!("{}'s metadata", path.display()))?;
        if let Some(given) = &options.classes {
            ensure!(
                *given == names,
                "{} names its classes {names:?}; --classes {} disagrees (leave it out)",
                path.display(),
                given.join(",")
            );
        }
        return Ok(names);
    }
    if let Some(given) = &options.classes {
        return check(given.clone(), "--classes");
    }
    let list = classes_file(path);
    if list.is_file() {
        return check(read_name_list(&list)?, &list.display().to_string());
    }
    if layout == HeadLayout::Bare {
        return imagenet_class_names(path);
    }
    bail!(
        "{} does not name its {outputs} classes: give them in output order with \
         --classes A,B,... or one a line in {}",
        path.display(),
        list.display()
    )
}

/// `classes.txt` beside `path`.
pub fn classes_file(path: &Path) -> PathBuf {
    path.with_file_name(CLASSES_FILE)
}

/// Non-empty trimmed lines of a text file.
pub(crate) fn read_name_list(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testutil::{
        data_dir, random_model, random_tensor, to_vec, write_f32_safetensors,
    };

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// (key, shape, f32 values) of every tensor of a model.
    type Raw = Vec<(String, Vec<usize>, Vec<f32>)>;

    fn raw(varmap: &VarMap) -> Raw {
        let vars = varmap.data().lock().unwrap();
        let mut out: Raw = vars
            .iter()
            .map(|(k, v)| (k.clone(), v.dims().to_vec(), to_vec(v.as_tensor())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn logits(model: &SqueezeNet) -> Vec<f32> {
        to_vec(
            &model
                .forward_t(&random_tensor(&[2, 3, 29, 31], 9), false)
                .unwrap(),
        )
    }

    fn error(path: &Path, options: &LoadOptions) -> String {
        format!(
            "{:#}",
            load_model_with(path, &Device::Cpu, options).err().unwrap()
        )
    }

    #[test]
    fn checkpoint_round_trip_keeps_outputs_classes_and_metadata() {
        let (model, varmap) = random_model(Some(2), 8);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let classes = names(&["Negative", "Positive"]);
        let meta = CheckpointMeta {
            input_size: Some(64),
            iteration: Some(120),
            epoch: Some(3),
            best_val_accuracy: Some(0.987_654_3),
        };
        save_checkpoint(&path, &varmap, &classes, &meta).unwrap();
        let entries: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            entries,
            vec![std::ffi::OsString::from("model.safetensors")],
            "temporary file left behind"
        );

        let loaded = load_model(&path, &Device::Cpu).unwrap();
        assert_eq!(loaded.classes, classes);
        assert_eq!(loaded.meta, meta);
        assert_eq!(loaded.layout, HeadLayout::Head);
        assert_eq!(loaded.model.num_classes(), 2);
        assert_eq!(logits(&loaded.model), logits(&model));
        // The file is plain safetensors with torchvision's names.
        let bytes = std::fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(
            st.tensor("features.3.expand3x3.weight").unwrap().shape(),
            &[64, 16, 3, 3]
        );
        assert_eq!(st.tensor("head.weight").unwrap().shape(), &[2, 1000]);
        // The same model saved again is the same file (scan folders know a model by its hash).
        let again = dir.path().join("again.safetensors");
        save_checkpoint(&again, &varmap, &classes, &meta).unwrap();
        assert!(
            std::fs::read(&again).unwrap() == bytes,
            "same model, other bytes"
        );
    }

    /// The names the README's PyTorch lines rely on: torchvision's keys for the backbone,
    /// `head.weight` [k, 1000] and `head.bias` [k] for `nn.Linear(1000, k)`, `classes` as a JSON
    /// array and `input_size` as a number in the metadata.
    #[test]
    fn exported_key_names_are_what_the_readme_pytorch_lines_load() {
        let (_, varmap) = random_model(Some(3), 4);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let meta = CheckpointMeta {
            input_size: Some(227),
            ..CheckpointMeta::default()
        };
        save_checkpoint(&path, &varmap, &names(&["a", "b", "c"]), &meta).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut keys: Vec<String> = st.names().into_iter().map(String::from).collect();
        keys.sort();
        let mut expected: Vec<String> =
            arch::backbone_params().into_iter().map(|s| s.key).collect();
        expected.extend(["head.weight".to_string(), "head.bias".to_string()]);
        expected.sort();
        assert_eq!(keys, expected);
        assert_eq!(st.tensor("head.weight").unwrap().shape(), &[3, 1000]);
        assert_eq!(st.tensor("head.bias").unwrap().shape(), &[3]);
        assert_eq!(
            st.tensor("classifier.1.weight").unwrap().shape(),
            &[1000, 512, 1, 1]
        );
        let metadata = header.metadata().clone().unwrap();
        assert_eq!(metadata["classes"], r#"["a","b","c"]"#);
        assert_eq!(metadata["input_size"], "227");
    }

    #[test]
    fn every_head_layout_loads_with_the_same_outputs() {
        let (model, varmap) = random_model(Some(3), 5);
        let reference = logits(&model);
        let dir = tempfile::tempdir().unwrap();
        let tensors = raw(&varmap);
        let classes = HashMap::from([("classes".to_string(), r#"["x","y","z"]"#.to_string())]);

        // head.* as a PyTorch user writes it with safetensors.torch.save_file (no format marker).
        let head = dir.path().join("head.safetensors");
        write_f32_safetensors(&head, &tensors, Some(classes.clone()));
        let loaded = load_model(&head, &Device::Cpu).unwrap();
        assert_eq!(loaded.layout, HeadLayout::Head);
        assert_eq!(loaded.classes, names(&["x", "y", "z"]));
        assert_eq!(logits(&loaded.model), reference);

        // nn.Sequential(squeezenet1_1(), nn.Linear(1000, 3)).state_dict().
        let sequential: Raw = tensors
            .iter()
            .map(|(k, s, v)| {
                let key = match k.as_str() {
                    "head.weight" => "1.weight".to_string(),
                    "head.bias" => "1.bias".to_string(),
                    _ => format!("0.{k}"),
                };
                (key, s.clone(), v.clone())
            })
            .collect();
        let seq = dir.path().join("seq.safetensors");
        write_f32_safetensors(&seq, &sequential, Some(classes.clone()));
        let loaded = load_model(&seq, &Device::Cpu).unwrap();
        assert_eq!(loaded.layout, HeadLayout::Sequential);
        assert_eq!(logits(&loaded.model), reference);

        // torchvision's squeezenet1_1(num_classes=3): classifier.1 is Conv2d(512, 3, 1).
        let (bare, bare_vars) = random_model(None, 6);
        let conv10: Raw = raw(&bare_vars)
            .into_iter()
            .map(|(k, s, v)| match k.as_str() {
                "classifier.1.weight" => (k, vec![3, 512, 1, 1], v[..3 * 512].to_vec()),
                "classifier.1.bias" => (k, vec![3], v[..3].to_vec()),
                _ => (k, s, v),
            })
            .collect();
        let torchvision = dir.path().join("tv.safetensors");
        write_f32_safetensors(&torchvision, &conv10, Some(classes));
        let loaded = load_model(&torchvision, &Device::Cpu).unwrap();
        assert_eq!(loaded.layout, HeadLayout::Classifier);
        assert_eq!(loaded.model.num_classes(), 3);
        // Its logits are the ImageNet network's first three.
        let full = logits(&bare);
        let expected: Vec<f32> = full
            .chunks(1000)
            .flat_map(|row| row[..3].to_vec())
            .collect();
        assert_eq!(logits(&loaded.model), expected);
    }

    #[test]
    fn unused_and_missing_tensors_are_named() {
        let (_, varmap) = random_model(Some(2), 7);
        let dir = tempfile::tempdir().unwrap();
        let mut tensors = raw(&varmap);
        tensors.retain(|(k, _, _)| k != "features.3.squeeze.bias");
        tensors.push(("extra.scale".into(), vec![1], vec![2.0]));
        tensors.push(("features.13.weight".into(), vec![2], vec![1.0, 2.0]));
        let path = dir.path().join("odd.safetensors");
        write_f32_safetensors(
            &path,
            &tensors,
            Some(HashMap::from([("classes".into(), r#"["a","b"]"#.into())])),
        );
        let text = error(&path, &LoadOptions::default());
        assert!(
            text.contains("odd.safetensors")
                && text.contains("1 of 54 tensors missing: features.3.squeeze.bias")
                && text.contains("2 tensors in the file unused: extra.scale, features.13.weight"),
            "{text}"
        );
        // Unused alone is an error too: a bare network with one extra tensor.
        let (_, bare) = random_model(None, 8);
        let mut tensors = raw(&bare);
        tensors.push(("num_batches_tracked".into(), vec![1], vec![0.0]));
        let path = dir.path().join("extra.safetensors");
        write_f32_safetensors(&path, &tensors, None);
        let text = error(&path, &LoadOptions::default());
        assert!(text.contains("unused: num_batches_tracked"), "{text}");
        assert!(!text.contains("missing"), "{text}");
        // Sequential names are reported in the file's own terms.
        let (_, with_head) = random_model(Some(2), 9);
        let seq: Raw = raw(&with_head)
            .into_iter()
            .filter(|(k, _, _)| k != "head.bias")
            .map(|(k, s, v)| {
                let key = if k == "head.weight" {
                    "1.weight".into()
                } else {
                    format!("0.{k}")
                };
                (key, s, v)
            })
            .collect();
        let path = dir.path().join("seq.safetensors");
        write_f32_safetensors(&path, &seq, None);
        let text = error(&path, &LoadOptions::default());
        assert!(text.contains("missing: 1.bias"), "{text}");
    }

    #[test]
    fn class_names_come_from_metadata_flag_or_classes_txt_else_an_error() {
        let (_, varmap) = random_model(Some(2), 10);
        let tensors = raw(&varmap);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torch.safetensors");
        write_f32_safetensors(&path, &tensors, None);
        // Nothing names them: the error asks for them.
        let text = error(&path, &LoadOptions::default());
        assert!(
            text.contains("torch.safetensors")
                && text.contains("does not name its 2 classes")
                && text.contains("--classes")
                && text.contains("classes.txt"),
            "{text}"
        );
        // --classes.
        let flag = LoadOptions {
            classes: Some(names(&["crack", "wall"])),
            input_size: None,
        };
        let loaded = load_model_with(&path, &Device::Cpu, &flag).unwrap();
        assert_eq!(loaded.classes, names(&["crack", "wall"]));
        // Rows that do not match the names.
        let three = LoadOptions {
            classes: Some(names(&["a", "b", "c"])),
            input_size: None,
        };
        let text = error(&path, &three);
        assert!(
            text.contains("--classes names 3 classes") && text.contains("2 outputs"),
            "{text}"
        );
        // classes.txt beside the file, when no flag is given.
        std::fs::write(dir.path().join("classes.txt"), "Negative\nPositive\n").unwrap();
        let loaded = load_model(&path, &Device::Cpu).unwrap();
        assert_eq!(loaded.classes, names(&["Negative", "Positive"]));
        assert_eq!(
            load_model_with(&path, &Device::Cpu, &flag).unwrap().classes,
            names(&["crack", "wall"]),
            "the flag comes before classes.txt"
        );
        std::fs::write(dir.path().join("classes.txt"), "one\n").unwrap();
        let text = error(&path, &LoadOptions::default());
        assert!(text.contains("classes.txt names 1 classes"), "{text}");
        // The file's metadata comes first; a flag that disagrees with it is an error.
        let named = dir.path().join("named.safetensors");
        write_f32_safetensors(
            &named,
            &tensors,
            Some(HashMap::from([("classes".into(), r#"["p","q"]"#.into())])),
        );
        assert_eq!(
            load_model(&named, &Device::Cpu).unwrap().classes,
            names(&["p", "q"])
        );
        assert!(error(&named, &flag).contains("disagrees"));
        for (json, expected) in [
            (r#"["a", 1]"#, "not a JSON array"),
            (r#"["a"]"#, "names 1 classes but"),
        ] {
            let bad = dir.path().join("tampered.safetensors");
            write_f32_safetensors(
                &bad,
                &tensors,
                Some(HashMap::from([("classes".into(), json.into())])),
            );
            let text = error(&bad, &LoadOptions::default());
            assert!(
                text.contains("tampered.safetensors") && text.contains(expected),
                "{text}"
            );
        }
    }

    #[test]
    fn input_size_comes_from_the_file_else_the_option() {
        let (_, varmap) = random_model(Some(2), 11);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let classes = names(&["a", "b"]);
        save_checkpoint(&path, &varmap, &classes, &CheckpointMeta::default()).unwrap();
        assert_eq!(
            load_model(&path, &Device::Cpu).unwrap().meta.input_size,
            None
        );
        let given = LoadOptions {
            classes: None,
            input_size: Some(96),
        };
        let loaded = load_model_with(&path, &Device::Cpu, &given).unwrap();
        assert_eq!(loaded.meta.input_size, Some(96));
        let meta = CheckpointMeta {
            input_size: Some(64),
            ..CheckpointMeta::default()
        };
        save_checkpoint(&path, &varmap, &classes, &meta).unwrap();
        assert!(error(&path, &given).contains("trained at 64 px"));
        let mut tensors = raw(&varmap);
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        write_f32_safetensors(
            &path,
            &tensors,
            Some(HashMap::from([
                ("classes".into(), r#"["a","b"]"#.into()),
                ("input_size".into(), "big".into()),
            ])),
        );
        assert!(error(&path, &LoadOptions::default()).contains("input_size = \"big\""));
    }

    #[test]
    fn bad_checkpoints_and_arguments_are_errors() {
        let (_, varmap) = random_model(Some(2), 9);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let classes = names(&["a", "b"]);
        let none = CheckpointMeta::default();
        let err = save_checkpoint(&path, &varmap, &names(&["a"]), &none)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1 class names") && err.contains("2 outputs"),
            "{err}"
        );
        assert!(!path.exists());

        save_checkpoint(&path, &varmap, &classes, &none).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let truncated = dir.path().join("truncated.safetensors");
        std::fs::write(&truncated, &bytes[..bytes.len() - 1000]).unwrap();
        assert!(error(&truncated, &LoadOptions::default()).contains("truncated.safetensors"));
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a model at all, but long enough").unwrap();
        assert!(error(&text, &LoadOptions::default()).contains("notes.txt"));
    }

    #[test]
    fn bare_torchvision_weights_load_without_head_with_imagenet_names() {
        let Some(data) = data_dir() else { return };
        for file in ["squeezenet1_1.pth", "squeezenet1_1.safetensors"] {
            let loaded = load_model(&data.join("pretrained").join(file), &Device::Cpu).unwrap();
            assert!(!loaded.model.has_head());
            assert_eq!(loaded.layout, HeadLayout::Bare);
            assert_eq!(loaded.model.num_classes(), 1000);
            assert_eq!(loaded.classes[282], "tiger cat");
            assert_eq!(loaded.meta, CheckpointMeta::default());
        }
        // Without the list beside it, classes are numbered by their ImageNet index.
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("weights.pth");
        std::fs::copy(data.join("pretrained/squeezenet1_1.pth"), &copy).unwrap();
        assert_eq!(
            load_model(&copy, &Device::Cpu).unwrap().classes[3],
            "class 3"
        );
    }

    #[test]
    fn a_resume_state_given_as_a_model_is_named_for_what_it_is() {
        let (_, varmap) = random_model(Some(2), 5);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resume.safetensors");
        let progress = crate::run::resume::Progress {
            iteration: 3,
            epoch: 1,
            best_val_accuracy: None,
            classes: names(&["a", "b"]),
            validation_set: None,
        };
        crate::run::resume::write(&path, &progress, &varmap, &HashMap::new()).unwrap();
        for text in [
            error(&path, &LoadOptions::default()),
            format!(
                "{:#}",
                crate::model::load_torchvision(&varmap, &path).unwrap_err()
            ),
        ] {
            assert!(
                text.contains("resume.safetensors is a resume state")
                    && text.contains("model.safetensors")
                    && !text.contains("tensors missing"),
                "{text}"
            );
        }
    }
}
