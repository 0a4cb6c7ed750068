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
    let mut magic = [0u8; 8];
    let read = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .with_context(|| format!("cannot read weights file {}", path.display()))?;
    if read >= 4 && &magic[..4] == b"PK\x03\x04" {
        read_pth(path)
    } else if read == 8 {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read weights file {}", path.display()))?;
        read_safetensors(&bytes).with_context(|| {
            format!("{} is not a weights file (neither a PyTorch zip nor a valid safetensors file)", path.display())
        })
    } else {
        bail!("{} is not a weights file: only {read} bytes long", path.display())
    }
}

fn read_pth(path: &Path) -> Result<WeightsFile> {
    let context = || format!("cannot read PyTorch weights {}", path.display());
    let pth = candle_core::pickle::PthTensors::new(path, None).with_context(context)?;
    let mut tensors = HashMap::new();
    for name in pth.tensor_infos().keys() {
        let tensor = pth.get(name).with_context(|| format!("{}: tensor {name}", context()))?;
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
    Ok(WeightsFile { tensors, metadata: HashMap::new() })
}

/// Parses safetensors bytes (tensors onto the CPU, plus the header's metadata).
pub(crate) fn read_safetensors(bytes: &[u8]) -> Result<WeightsFile> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).context("invalid safetensors header")?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu).context("invalid safetensors data")?;
    Ok(WeightsFile { tensors, metadata })
}

/// Checks that `tensors` holds every tensor of `specs` with the right shape; the error lists all
/// missing keys or all wrong shapes at once.
pub(crate) fn check_tensors(path: &Path, tensors: &HashMap<String, Tensor>, specs: &[ParamSpec]) -> Result<()> {
    let missing: Vec<&str> = specs.iter().filter(|s| !tensors.contains_key(&s.key)).map(|s| s.key.as_str()).collect();
    if !missing.is_empty() {
        bail!(
            "{}: not SqueezeNet v1.1 weights with torchvision names: {} of {} tensors missing: {}",
            path.display(),
            missing.len(),
            specs.len(),
            missing.join(", ")
        )
    }
    let wrong: Vec<String> = specs
        .iter()
        .filter(|s| tensors[&s.key].dims() != s.shape.as_slice())
        .map(|s| format!("{} (expected {:?}, found {:?})", s.key, s.shape, tensors[&s.key].dims()))
        .collect();
    if !wrong.is_empty() {
        bail!("{}: wrong tensor shapes: {}", path.display(), wrong.join("; "))
    }
    Ok(())
}

/// Copies the tensors named in `specs` into the matching variables of `varmap` (converted to the
/// variable's dtype and device). Call [`check_tensors`] first.
pub(crate) fn assign(varmap: &VarMap, tensors: &HashMap<String, Tensor>, specs: &[ParamSpec]) -> Result<()> {
    let vars = varmap.data().lock().unwrap_or_else(PoisonError::into_inner);
    for spec in specs {
        let var = vars
            .get(&spec.key)
            .with_context(|| format!("the model has no variable {}: build the SqueezeNet first", spec.key))?;
        let value = tensors[&spec.key].to_dtype(var.dtype())?.to_device(var.device())?;
        var.set(&value).with_context(|| format!("cannot set {}", spec.key))?;
    }
    Ok(())
}

/// Loads torchvision `squeezenet1_1` weights (`.pth` as `torch.save(state_dict)` writes it, or
/// `.safetensors` with the same keys) into the backbone variables of `varmap`, one by one. The
/// head, if any, is left as it is. Nothing is set unless every tensor is present and well shaped.
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
        return Ok((0..arch::IMAGENET_CLASSES).map(|i| format!("class {i}")).collect());
    }
    let text = std::fs::read_to_string(&list).with_context(|| format!("cannot read {}", list.display()))?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if names.len() != arch::IMAGENET_CLASSES {
        bail!("{} lists {} class names, expected {}", list.display(), names.len(), arch::IMAGENET_CLASSES)
    }
    Ok(names)
}
