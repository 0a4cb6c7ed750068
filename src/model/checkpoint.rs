//! Self-contained checkpoints: one `.safetensors` file with the backbone under torchvision's
//! names, the head, and metadata (class names in output order plus the caller's own pairs), so a
//! trained model can be shared as a single file and read by any safetensors tool.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::PoisonError;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};

use super::arch::{self, ParamSpec, IMAGENET_CLASSES};
use super::squeezenet::{SqueezeNet, HEAD_BIAS, HEAD_WEIGHT};
use super::weights::{assign, check_tensors, imagenet_class_names, read_weights};
use crate::fsutil::write_atomic;

/// Metadata key marking a crackscope checkpoint, and its value.
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "crackscope-squeezenet1_1";
/// Metadata key of the JSON array of class names.
const CLASSES_KEY: &str = "classes";

/// A model read from disk, with what it needs to be used or trained further.
pub struct LoadedModel {
    pub model: SqueezeNet,
    /// The variables behind `model` (for further training or saving).
    pub varmap: VarMap,
    /// Class names in output order.
    pub classes: Vec<String>,
    /// The extra pairs given to [`save_checkpoint`] (empty for bare torchvision weights).
    pub metadata: BTreeMap<String, String>,
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
/// head); `extra` pairs are stored as metadata and come back from [`load_model`].
pub fn save_checkpoint(
    path: &Path,
    varmap: &VarMap,
    classes: &[String],
    extra: &BTreeMap<String, String>,
) -> Result<()> {
    for reserved in [FORMAT_KEY, CLASSES_KEY] {
        ensure!(
            !extra.contains_key(reserved),
            "checkpoint metadata key {reserved:?} is reserved"
        );
    }
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
    let mut metadata: HashMap<String, String> =
        extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    metadata.insert(FORMAT_KEY.into(), FORMAT.into());
    metadata.insert(CLASSES_KEY.into(), serde_json::to_string(classes)?);
    let bytes =
        safetensors::serialize(views, Some(metadata)).context("cannot serialise the checkpoint")?;
    write_atomic(path, &bytes)
}

/// Reads a crackscope checkpoint, or bare torchvision weights (`.pth` / `.safetensors`: no head,
/// the 1000 ImageNet classes named from `imagenet_classes.txt` beside the file when present).
pub fn load_model(path: &Path, device: &Device) -> Result<LoadedModel> {
    let file = read_weights(path)?;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    if file.metadata.get(FORMAT_KEY).map(String::as_str) != Some(FORMAT) {
        let model = SqueezeNet::new(vb, None)?;
        let specs = arch::backbone_params();
        check_tensors(path, &file.tensors, &specs)?;
        assign(&varmap, &file.tensors, &specs)?;
        let classes = imagenet_class_names(path)?;
        return Ok(LoadedModel {
            model,
            varmap,
            classes,
            metadata: BTreeMap::new(),
        });
    }
    let classes_json = file
        .metadata
        .get(CLASSES_KEY)
        .with_context(|| format!("{}: checkpoint without class names", path.display()))?;
    let classes: Vec<String> = serde_json::from_str(classes_json).with_context(|| {
        format!(
            "{}: class names are not a JSON array of strings",
            path.display()
        )
    })?;
    let mut specs = arch::backbone_params();
    let head = match file.tensors.get(HEAD_WEIGHT) {
        Some(weight) => {
            let outputs = weight.dim(0)?;
            specs.extend(head_specs(outputs));
            Some(outputs)
        }
        None => None,
    };
    let outputs = head.unwrap_or(IMAGENET_CLASSES);
    if classes.len() != outputs {
        bail!(
            "{}: {} class names for {outputs} outputs",
            path.display(),
            classes.len()
        )
    }
    check_tensors(path, &file.tensors, &specs)?;
    let model = SqueezeNet::new(vb, head)?;
    assign(&varmap, &file.tensors, &specs)?;
    let metadata = file
        .metadata
        .into_iter()
        .filter(|(k, _)| k != FORMAT_KEY && k != CLASSES_KEY)
        .collect::<BTreeMap<_, _>>();
    Ok(LoadedModel {
        model,
        varmap,
        classes,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testutil::{data_dir, random_model, random_tensor, to_vec};

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn checkpoint_round_trip_keeps_outputs_classes_and_metadata() {
        let (model, varmap) = random_model(Some(2), 8);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let classes = names(&["Negative", "Positive"]);
        let extra = BTreeMap::from([
            ("epoch".to_string(), "3".to_string()),
            ("iteration".into(), "120".into()),
        ]);
        save_checkpoint(&path, &varmap, &classes, &extra).unwrap();
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
        assert_eq!(loaded.metadata, extra);
        assert_eq!(loaded.model.num_classes(), 2);
        let x = random_tensor(&[2, 3, 29, 31], 9);
        let before = to_vec(&model.forward_t(&x, false).unwrap());
        assert_eq!(to_vec(&loaded.model.forward_t(&x, false).unwrap()), before);
        // The file is plain safetensors with torchvision's names.
        let bytes = std::fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(
            st.tensor("features.3.expand3x3.weight").unwrap().shape(),
            &[64, 16, 3, 3]
        );
        assert_eq!(st.tensor("head.weight").unwrap().shape(), &[2, 1000]);
    }

    #[test]
    fn bad_checkpoints_and_arguments_are_errors() {
        let (_, varmap) = random_model(Some(2), 9);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let classes = names(&["a", "b"]);
        let err = save_checkpoint(&path, &varmap, &names(&["a"]), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1 class names") && err.contains("2 outputs"),
            "{err}"
        );
        let reserved = BTreeMap::from([("classes".to_string(), "x".to_string())]);
        assert!(save_checkpoint(&path, &varmap, &classes, &reserved)
            .unwrap_err()
            .to_string()
            .contains("reserved"));
        assert!(!path.exists());

        save_checkpoint(&path, &varmap, &classes, &BTreeMap::new()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let truncated = dir.path().join("truncated.safetensors");
        std::fs::write(&truncated, &bytes[..bytes.len() - 1000]).unwrap();
        let err = format!("{:#}", load_model(&truncated, &Device::Cpu).err().unwrap());
        assert!(err.contains("truncated.safetensors"), "{err}");
        // Tampered metadata: class names that are not JSON, or too few of them.
        let file = crate::model::weights::read_weights(&path).unwrap();
        let data: Vec<(String, Vec<usize>, Vec<u8>)> = file
            .tensors
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    t.dims().to_vec(),
                    to_vec(t).iter().flat_map(|v| v.to_le_bytes()).collect(),
                )
            })
            .collect();
        for (classes, expected) in [
            ("[\"a\", 1]", "not a JSON array"),
            ("[\"a\"]", "1 class names for 2 outputs"),
        ] {
            let views = data.iter().map(|(k, shape, b)| {
                (
                    k.as_str(),
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                        .unwrap(),
                )
            });
            let metadata = HashMap::from([
                (FORMAT_KEY.to_string(), FORMAT.to_string()),
                (CLASSES_KEY.into(), classes.into()),
            ]);
            let tampered = dir.path().join("tampered.safetensors");
            std::fs::write(
                &tampered,
                safetensors::serialize(views, Some(metadata)).unwrap(),
            )
            .unwrap();
            let err = format!("{:#}", load_model(&tampered, &Device::Cpu).err().unwrap());
            assert!(
                err.contains("tampered.safetensors") && err.contains(expected),
                "{err}"
            );
        }
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a model at all, but long enough").unwrap();
        assert!(
            format!("{:#}", load_model(&text, &Device::Cpu).err().unwrap()).contains("notes.txt")
        );
    }

    #[test]
    fn bare_torchvision_weights_load_without_head_with_imagenet_names() {
        let Some(data) = data_dir() else { return };
        for file in ["squeezenet1_1.pth", "squeezenet1_1.safetensors"] {
            let loaded = load_model(&data.join("pretrained").join(file), &Device::Cpu).unwrap();
            assert!(!loaded.model.has_head());
            assert_eq!(loaded.model.num_classes(), 1000);
            assert_eq!(loaded.classes[282], "tiger cat");
            assert!(loaded.metadata.is_empty());
        }
        // Without the list beside it, classes are numbered.
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("weights.pth");
        std::fs::copy(data.join("pretrained/squeezenet1_1.pth"), &copy).unwrap();
        assert_eq!(
            load_model(&copy, &Device::Cpu).unwrap().classes[3],
            "class 3"
        );
    }
}
