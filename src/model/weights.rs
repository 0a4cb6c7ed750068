//! Reading weight files (PyTorch's zip `.pth` and `.safetensors`, recognised by their content) and
//! setting torchvision-named tensors into a `VarMap`.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::PoisonError;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use super::arch::{self, ParamSpec};

/// What a weights file holds.
pub(crate) struct WeightsFile {
    pub tensors: HashMap<String, Tensor>,
    /// safetensors metadata (empty for `.pth`).
    pub metadata: HashMap<String, String>,
}

/// Reads every tensor of `path` onto the CPU, telling the format by the first bytes rather than
/// by the extension.
pub(crate) fn read_weights(path: &Path) -> Result<WeightsFile> {
    let file = read_any_weights(path)?;
    if file.metadata.get("format").map(String::as_str) == Some(RESUME_STATE_FORMAT) {
        bail!(
            "{} is a resume state (what `crackscope train --resume` continues a run from: the \
             model together with the optimizer's state), not a model: use model.safetensors (the \
             best model) or last.safetensors (the latest) from the same run directory",
            path.display()
        );
    }
    check_finite(path, &file.tensors)?;
    Ok(file)
}

/// The metadata `format` of `RUN/resume.safetensors` (written and read by the run directory's
/// resume state; here so that loading one as a model is told apart from a broken model).
pub const RESUME_STATE_FORMAT: &str = "crackscope-resume-1";

/// Refuses tensors holding NaN or infinite values, naming them and the file: such weights give
/// NaN outputs, which argmax would turn into a confident first class.
pub fn check_finite(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let mut bad = Vec::new();
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for name in names {
        let tensor = &tensors[name];
        if !tensor.dtype().is_float() {
            continue;
        }
        let values = tensor
            .to_dtype(candle_core::DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .with_context(|| format!("{}: cannot read tensor {name}", path.display()))?;
        let nan = values.iter().filter(|v| v.is_nan()).count();
        let infinite = values.iter().filter(|v| v.is_infinite()).count();
        if nan + infinite > 0 {
            bad.push(format!(
                "{name} ({nan} NaN and {infinite} infinite of {} values)",
                values.len()
            ));
        }
    }
    if !bad.is_empty() {
        bail!(
            "{}: weights that are not finite numbers, refused (a training that diverged, or a \
             damaged file): {}",
            path.display(),
            abbreviate(&bad)
        );
    }
    Ok(())
}

/// Reads every tensor of `path`, whatever they hold (see [`read_weights`]).
fn read_any_weights(path: &Path) -> Result<WeightsFile> {
    let mut magic = [0u8; 8];
    let read = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .with_context(|| format!("cannot read weights file {}", path.display()))?;
    if read >= 4 && &magic[..4] == b"PK\x03\x04" {
        read_pth(path)
    } else if read == 8 {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read weights file {}", path.display()))?;
        read_safetensors(&bytes).with_context(|| {
            format!(
                "{} is neither a PyTorch zip nor valid safetensors (not weights, or corrupt)",
                path.display()
            )
        })
    } else {
        bail!(
            "{} is not a weights file: only {read} bytes long",
            path.display()
        )
    }
}

fn read_pth(path: &Path) -> Result<WeightsFile> {
    let context = || format!("cannot read PyTorch weights {}", path.display());
    let pth = candle_core::pickle::PthTensors::new(path, None).with_context(context)?;
    let mut tensors = HashMap::new();
    for name in pth.tensor_infos().keys() {
        let tensor = pth
            .get(name)
            .with_context(|| format!("{}: tensor {name}", context()))?;
        if let Some(tensor) = tensor {
            tensors.insert(name.clone(), tensor);
        }
    }
    if tensors.is_empty() {
        bail!(
            "{} holds no tensors: expected a state_dict saved with torch.save(model.state_dict(), path)",
            path.display()
        )
    }
    Ok(WeightsFile {
        tensors,
        metadata: HashMap::new(),
    })
}

/// Parses safetensors bytes (tensors onto the CPU, plus the header's metadata).
pub(crate) fn read_safetensors(bytes: &[u8]) -> Result<WeightsFile> {
    let (_, header) =
        safetensors::SafeTensors::read_metadata(bytes).context("invalid safetensors header")?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
        .context("invalid safetensors data")?;
    Ok(WeightsFile { tensors, metadata })
}

/// Checks that `tensors` holds exactly the tensors of `specs` (PyTorch's strict loading: none
/// missing, none unused) with the right shapes; the error lists every missing, unused or
/// wrongly shaped key at once.
pub(crate) fn check_tensors(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
    specs: &[ParamSpec],
) -> Result<()> {
    let missing: Vec<String> = specs
        .iter()
        .filter(|s| !tensors.contains_key(&s.key))
        .map(|s| s.key.clone())
        .collect();
    let mut unused: Vec<String> = tensors
        .keys()
        .filter(|k| !specs.iter().any(|s| &s.key == *k))
        .cloned()
        .collect();
    unused.sort_unstable();
    check_strict(path, specs.len(), &missing, &unused)?;
    let wrong: Vec<String> = specs
        .iter()
        .filter(|s| tensors[&s.key].dims() != s.shape.as_slice())
        .map(|s| {
            format!(
                "{} (expected {:?}, found {:?})",
                s.key,
                s.shape,
                tensors[&s.key].dims()
            )
        })
        .collect();
    if !wrong.is_empty() {
        bail!(
            "{}: wrong tensor shapes: {}",
            path.display(),
            wrong.join("; ")
        )
    }
    Ok(())
}

/// Copies the tensors named in `specs` into the matching variables of `varmap` (converted to the
/// variable's dtype and device). Call [`check_tensors`] first.
pub(crate) fn assign(
    varmap: &VarMap,
    tensors: &HashMap<String, Tensor>,
    specs: &[ParamSpec],
) -> Result<()> {
    let vars = varmap.data().lock().unwrap_or_else(PoisonError::into_inner);
    for spec in specs {
        let var = vars.get(&spec.key).with_context(|| {
            format!(
                "the model has no variable {}: build the SqueezeNet first",
                spec.key
            )
        })?;
        let value = tensors[&spec.key]
            .to_dtype(var.dtype())?
            .to_device(var.device())?;
        var.set(&value)
            .with_context(|| format!("cannot set {}", spec.key))?;
    }
    Ok(())
}

/// Loads torchvision `squeezenet1_1` weights (`.pth` as `torch.save(state_dict)` writes it, or
/// `.safetensors` with the same keys) into the backbone variables of `varmap`, one by one. The
/// head, if any, is left as it is. Nothing is set unless every tensor is present, well shaped and
/// used (a file with a head is a checkpoint: continue its run with `--resume` instead).
pub fn load_torchvision(varmap: &VarMap, path: &Path) -> Result<()> {
    let file = read_weights(path)?;
    let specs = arch::backbone_params();
    check_tensors(path, &file.tensors, &specs)?;
    assign(varmap, &file.tensors, &specs)
}

/// The ImageNet class names for bare torchvision weights: `imagenet_classes.txt` beside the
/// weights file (one name a line) when present, otherwise "class N".
pub(crate) fn imagenet_class_names(weights: &Path) -> Result<Vec<String>> {
    let list = weights.with_file_name("imagenet_classes.txt");
    if !list.exists() {
        return Ok((0..arch::IMAGENET_CLASSES)
            .map(|i| format!("class {i}"))
            .collect());
    }
    let text = std::fs::read_to_string(&list)
        .with_context(|| format!("cannot read {}", list.display()))?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.len() != arch::IMAGENET_CLASSES {
        bail!(
            "{} lists {} class names, expected {}",
            list.display(),
            names.len(),
            arch::IMAGENET_CLASSES
        )
    }
    Ok(names)
}

/// PyTorch's strict loading: an error naming the missing and the unused tensors (of `expected`
/// in all), or nothing when there are none. One message for every loader.
pub(crate) fn check_strict(
    path: &Path,
    expected: usize,
    missing: &[String],
    unused: &[String],
) -> Result<()> {
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "{} of {expected} tensors missing: {}",
            missing.len(),
            abbreviate(missing)
        ));
    }
    if !unused.is_empty() {
        problems.push(format!(
            "{} tensors in the file unused: {}",
            unused.len(),
            abbreviate(unused)
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "{}: not SqueezeNet v1.1 weights with torchvision names (loading is strict, as \
         PyTorch's load_state_dict(strict=True)): {}",
        path.display(),
        problems.join("; ")
    )
}

/// At most 12 names, then how many in all.
fn abbreviate(names: &[String]) -> String {
    const SHOWN: usize = 12;
    if names.len() <= SHOWN {
        names.join(", ")
    } else {
        format!(
            "{}, ... ({} in all)",
            names[..SHOWN].join(", "),
            names.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use candle_core::DType;
    use candle_nn::VarBuilder;

    use super::*;
    use crate::model::testutil::{data_dir, to_vec, write_f32_safetensors};
    use crate::model::SqueezeNet;

    /// The shared weights as (key, shape, values), in packing order.
    fn shared_tensors(data: &Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let file = read_weights(&data.join("pretrained/squeezenet1_1.safetensors")).unwrap();
        arch::backbone_params()
            .into_iter()
            .map(|s| {
                let values = to_vec(&file.tensors[&s.key]);
                (s.key, s.shape, values)
            })
            .collect()
    }

    fn empty_model() -> VarMap {
        let varmap = VarMap::new();
        SqueezeNet::new(
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
            Some(2),
        )
        .unwrap();
        varmap
    }

    fn var_values(varmap: &VarMap, key: &str) -> Vec<f32> {
        to_vec(varmap.data().lock().unwrap()[key].as_tensor())
    }

    #[test]
    fn pth_and_safetensors_load_the_same_weights() {
        let Some(data) = data_dir() else { return };
        let (from_pth, from_safetensors) = (empty_model(), empty_model());
        load_torchvision(&from_pth, &data.join("pretrained/squeezenet1_1.pth")).unwrap();
        load_torchvision(
            &from_safetensors,
            &data.join("pretrained/squeezenet1_1.safetensors"),
        )
        .unwrap();
        let specs = arch::backbone_params();
        assert_eq!(specs.len(), 52);
        let mut total = 0;
        for spec in &specs {
            let a = var_values(&from_pth, &spec.key);
            assert_eq!(a, var_values(&from_safetensors, &spec.key), "{}", spec.key);
            assert!(a.iter().any(|&v| v != 0.0), "{} was not loaded", spec.key);
            total += a.len();
        }
        assert_eq!(total, 1_235_496);
        // The head is left as it was.
        assert!(var_values(&from_pth, "head.weight")
            .iter()
            .all(|&v| v == 0.0));
    }

    #[test]
    fn missing_tensors_are_listed_and_nothing_is_set() {
        let Some(data) = data_dir() else { return };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partial.safetensors");
        let tensors: Vec<_> = shared_tensors(&data)
            .into_iter()
            .filter(|(k, _, _)| k != "features.3.squeeze.weight" && k != "classifier.1.bias")
            .collect();
        write_f32_safetensors(&path, &tensors, None);
        let varmap = empty_model();
        let err = format!("{:#}", load_torchvision(&varmap, &path).unwrap_err());
        assert!(
            err.contains("partial.safetensors") && err.contains("2 of 52"),
            "{err}"
        );
        assert!(
            err.contains("features.3.squeeze.weight") && err.contains("classifier.1.bias"),
            "{err}"
        );
        assert!(
            var_values(&varmap, "features.0.weight")
                .iter()
                .all(|&v| v == 0.0),
            "a tensor was set"
        );
    }

    #[test]
    fn wrong_shapes_name_the_key_and_both_shapes() {
        let Some(data) = data_dir() else { return };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reshaped.safetensors");
        let mut tensors = shared_tensors(&data);
        tensors[0].1 = vec![64, 3, 1, 9];
        write_f32_safetensors(&path, &tensors, None);
        let err = format!("{:#}", load_torchvision(&empty_model(), &path).unwrap_err());
        assert!(
            err.contains("features.0.weight (expected [64, 3, 3, 3], found [64, 3, 1, 9])"),
            "{err}"
        );
    }

    #[test]
    fn garbage_empty_and_truncated_files_are_errors() {
        let Some(data) = data_dir() else { return };
        let dir = tempfile::tempdir().unwrap();
        let pth = std::fs::read(data.join("pretrained/squeezenet1_1.pth")).unwrap();
        let st = std::fs::read(data.join("pretrained/squeezenet1_1.safetensors")).unwrap();
        let mut bad_zip = b"PK\x03\x04".to_vec();
        bad_zip.extend(std::iter::repeat_n(7u8, 500));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty.pth", Vec::new()),
            (
                "text.safetensors",
                b"these are not weights, just a note of some length".to_vec(),
            ),
            ("half.pth", pth[..pth.len() / 2].to_vec()),
            ("half.safetensors", st[..st.len() / 2].to_vec()),
            ("header-only.safetensors", st[..100].to_vec()),
            ("bad.pth", bad_zip),
        ];
        let varmap = empty_model();
        for (name, bytes) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let err = format!("{:#}", load_torchvision(&varmap, &path).expect_err(name));
            assert!(
                err.contains(name),
                "{name}: error does not name the file: {err}"
            );
        }
        let missing = dir.path().join("missing.pth");
        assert!(
            format!("{:#}", load_torchvision(&varmap, &missing).unwrap_err())
                .contains("missing.pth")
        );
    }

    #[test]
    fn imagenet_names_come_from_the_list_beside_the_weights() {
        let Some(data) = data_dir() else { return };
        let names = imagenet_class_names(&data.join("pretrained/squeezenet1_1.pth")).unwrap();
        assert_eq!(
            (names[0].as_str(), names[278].as_str()),
            ("tench", "kit fox")
        );
        let dir = tempfile::tempdir().unwrap();
        let fallback = imagenet_class_names(&dir.path().join("weights.pth")).unwrap();
        assert_eq!((fallback.len(), fallback[7].as_str()), (1000, "class 7"));
        std::fs::write(dir.path().join("imagenet_classes.txt"), "a\nb\n").unwrap();
        let err = imagenet_class_names(&dir.path().join("weights.pth"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lists 2 class names"), "{err}");
    }
}
