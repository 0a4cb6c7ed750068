//! One classifier: a model with its class names and input size, owning what every consumer
//! (predict, eval, gradcam, scan, the dashboard's gallery) does with it: resize and normalise
//! images the way training fed them, classify them in batches, and explain the decisions with
//! heatmaps. Keeping these in one place means a picture is prepared the same way wherever it is
//! classified.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor, D};
use candle_nn::VarMap;
use image::RgbImage;
use serde::Serialize;

use super::evaluation::{self, Prediction};
use crate::core::math::argmax;
use crate::data::augment::write_chw_normalized;
use crate::data::decode::{load_rgb, resize_exact};
use crate::data::inputs::{read_each, FileOutcome};
use crate::data::loader::DecodedSet;
use crate::explain::methods::{explain, Explanation, Target};
use crate::explain::overlay::overlay;
use crate::explain::settings::CamSettings;
use crate::model::{
    self, CheckpointMeta, LoadOptions, LoadedModel, SqueezeNet, HEAD_BIAS, HEAD_WEIGHT,
    MIN_INPUT_SIDE,
};

/// Images per forward pass: enough to amortise a pass, little enough for memory.
pub const IMAGES_PER_PASS: usize = 32;
/// Images per pass when a whole decoded set is classified (the test pass, `eval`).
const SET_BATCH: usize = 100;

/// A model ready to classify: network, class names in output order, input side in pixels.
pub struct Classifier {
    pub model: SqueezeNet,
    /// The variables behind `model` (the head's weights, for scans).
    varmap: VarMap,
    pub classes: Vec<String>,
    /// Images are resized to `input_size` x `input_size` before they enter the network.
    pub input_size: u32,
    /// What the checkpoint said about itself.
    pub meta: CheckpointMeta,
    pub device: Device,
}

/// One image file's answer (`predict`).
#[derive(Debug, Clone, Serialize)]
pub struct ClassAnswer {
    pub path: PathBuf,
    pub label: String,
    pub index: usize,
    pub score: f32,
    /// Every class's probability, in the model's class order.
    pub probabilities: Vec<f32>,
    /// Whether the input was like the training images and of a size the model can judge.
    #[serde(flatten)]
    pub input: super::unfamiliar::InputCheck,
}

impl Classifier {
    /// Loads the checkpoint `file` strictly; class names and the input size come from the file,
    /// else from `options`, else it is an error.
    pub fn open(file: &Path, device: &Device, options: &LoadOptions) -> Result<Classifier> {
        Classifier::from_loaded(model::load_model_with(file, device, options)?, file, device)
    }

    /// A classifier from a checkpoint already read from `file`: it must know its input size.
    pub fn from_loaded(loaded: LoadedModel, file: &Path, device: &Device) -> Result<Classifier> {
        let Some(input_size) = loaded.meta.input_size else {
            bail!(
                "{} does not record the input size it was trained at: give --input-size N \
                 (torchvision's ImageNet weights were trained at 224)",
                file.display()
            )
        };
        ensure!(
            input_size as usize >= MIN_INPUT_SIDE,
            "{}: input size {input_size} is below the network's minimum of {MIN_INPUT_SIDE} px",
            file.display()
        );
        Ok(Classifier {
            model: loaded.model,
            varmap: loaded.varmap,
            classes: loaded.classes,
            input_size,
            meta: loaded.meta,
            device: device.clone(),
        })
    }

    /// The head's weights `[classes, 1000]` (row-major) and biases, read once for a scan; None
    /// for bare ImageNet weights, whose outputs are relu_conv10's averages themselves.
    pub fn head(&self) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        if !self.model.has_head() {
            return Ok(None);
        }
        Ok(Some((
            self.weight(HEAD_WEIGHT)?.1,
            self.weight(HEAD_BIAS)?.1,
        )))
    }

    /// One of the model's tensors by its torchvision name (or `head.weight`, `head.bias`): its
    /// shape and its values, row-major.
    pub fn weight(&self, key: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let vars = self
            .varmap
            .data()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let var = vars
            .get(key)
            .with_context(|| format!("the model has no {key}"))?;
        let tensor = var.as_tensor();
        Ok((
            tensor.dims().to_vec(),
            tensor.flatten_all()?.to_vec1::<f32>()?,
        ))
    }

    /// Images as the network takes them: resized to the input size, scaled and normalised with
    /// ImageNet's mean and deviation, `[B, 3, S, S]`.
    pub fn preprocess(&self, images: &[RgbImage]) -> Result<Tensor> {
        let side = self.input_size as usize;
        let plane = 3 * side * side;
        let mut data = vec![0f32; images.len() * plane];
        for (image, out) in images.iter().zip(data.chunks_mut(plane)) {
            write_chw_normalized(&resize_exact(image, self.input_size), out);
        }
        Ok(Tensor::from_vec(
            data,
            (images.len(), 3, side, side),
            &self.device,
        )?)
    }

    /// Softmax probabilities of each image, [`IMAGES_PER_PASS`] images per pass.
    pub fn probabilities(&self, images: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(IMAGES_PER_PASS) {
            let logits = self.model.forward_t(&self.preprocess(chunk)?, false)?;
            out.extend(
                candle_nn::ops::softmax(&logits, D::Minus1)?
                    .to_vec2::<f32>()
                    .context("cannot read the network's output")?,
            );
        }
        Ok(out)
    }

    /// Reads and classifies image files, one outcome each in order: a file that cannot be read
    /// or decoded is a failed outcome with the reason, and so is an image whose network output is
    /// not finite (a label read off NaN would be a confident lie). Errors only when the model
    /// itself cannot run.
    pub fn classify_files(&self, paths: &[PathBuf]) -> Result<Vec<FileOutcome<ClassAnswer>>> {
        let mut out = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(IMAGES_PER_PASS) {
            let (images, read) = read_each(chunk, load_rgb);
            let outputs = self.probabilities(&images)?;
            for (path, read) in chunk.iter().zip(read) {
                let failed = |error: String| FileOutcome::Failed {
                    path: path.clone(),
                    error,
                };
                let probabilities = match read {
                    Ok(i) => outputs[i].clone(),
                    Err(error) => {
                        out.push(failed(error));
                        continue;
                    }
                };
                out.push(match label_of(&probabilities) {
                    Some(index) => FileOutcome::Done(ClassAnswer {
                        path: path.clone(),
                        label: self.classes[index].clone(),
                        index,
                        score: probabilities[index],
                        probabilities,
                        input: Default::default(),
                    }),
                    None => failed(not_finite(&probabilities)),
                });
            }
        }
        Ok(out)
    }

    /// Classifies a set decoded at the input size, [`SET_BATCH`] images per pass.
    pub fn classify_set(&self, set: &Arc<DecodedSet>) -> Result<Vec<Prediction>> {
        ensure!(
            set.size == self.input_size,
            "images decoded at {} px for a model that takes {} px",
            set.size,
            self.input_size
        );
        evaluation::classify(&self.model, set, SET_BATCH, &self.device)
    }

    /// Heatmaps of `images` (any size) as the network sees them, [`IMAGES_PER_PASS`] per pass.
    pub fn explain(
        &self,
        images: &[RgbImage],
        cam: &CamSettings,
        target: Target,
    ) -> Result<Vec<Explanation>> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(IMAGES_PER_PASS) {
            out.extend(explain(
                &self.model,
                &self.preprocess(chunk)?,
                &cam.layer,
                cam.method,
                target,
            )?);
        }
        Ok(out)
    }

    /// One image's heatmap drawn over it, with the explanation. The picture is square, at the
    /// input size or `min_side` if larger (small training images stay legible).
    pub fn overlay(
        &self,
        image: &RgbImage,
        cam: &CamSettings,
        target: Target,
        min_side: u32,
    ) -> Result<(RgbImage, Explanation)> {
        let explanation = self
            .explain(std::slice::from_ref(image), cam, target)?
            .pop()
            .context("no explanation")?;
        let shown = resize_exact(image, self.input_size.max(min_side));
        Ok((
            overlay(&shown, &explanation.cam, &cam.style())?,
            explanation,
        ))
    }
}

/// The class an output stands for: its most probable one, or None when any probability is not
/// a finite number (NaN from a broken model must never become a label).
pub fn label_of(probabilities: &[f32]) -> Option<usize> {
    probabilities
        .iter()
        .all(|p| p.is_finite())
        .then(|| argmax(probabilities))
}

/// Why an output has no label, for messages.
pub fn not_finite(probabilities: &[f32]) -> String {
    format!(
        "the network's output is not a finite number ({probabilities:?}): no label; the model is \
         broken (weights that overflow?)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::methods::Method;

    /// The folder scripts/torch_reference.py --maps writes (or CRACKSCOPE_TORCH_REFERENCE), and
    /// the shared data, or None after saying why the comparison is skipped.
    fn torch_reference() -> Option<(PathBuf, PathBuf, serde_json::Value)> {
        let data = crate::model::testutil::data_dir()?;
        let dir = std::env::var_os("CRACKSCOPE_TORCH_REFERENCE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/torch-reference")
            });
        let Ok(text) = std::fs::read_to_string(dir.join("reference.json")) else {
            crate::core::testdata::say_skipped(&format!(
                "no {} (run scripts/torch_reference.py --maps)",
                dir.join("reference.json").display()
            ));
            return None;
        };
        Some((data, dir, serde_json::from_str(&text).unwrap()))
    }

    /// Worst absolute differences (probabilities, seed map, Grad-CAM map) between crackscope and
    /// PyTorch float64 over the reference photos, read from PNG copies or the JPEGs themselves.
    fn worst_differences(png: bool) -> Option<(f64, f64, f64)> {
        let (data, dir, reference) = torch_reference()?;
        let classifier = Classifier::open(
            &dir.join("random-head.safetensors"),
            &Device::Cpu,
            &LoadOptions::default(),
        )
        .unwrap();
        let worst = |a: &[f32], b: &serde_json::Value| -> f64 {
            let b: Vec<f64> = b
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|v| match v.as_array() {
                    Some(row) => row.iter().map(|x| x.as_f64().unwrap()).collect(),
                    None => vec![v.as_f64().unwrap()],
                })
                .collect();
            assert_eq!(a.len(), b.len());
            a.iter()
                .zip(&b)
                .map(|(&x, y)| (x as f64 - y).abs())
                .fold(0.0, f64::max)
        };
        let mut out = (0f64, 0f64, 0f64);
        for photo in reference["photos"].as_array().unwrap() {
            let path = if png {
                dir.join("png").join(photo["png"].as_str().unwrap())
            } else {
                data.join(photo["photo"].as_str().unwrap())
            };
            let image = load_rgb(&path).unwrap();
            let probabilities = &classifier
                .probabilities(std::slice::from_ref(&image))
                .unwrap()[0];
            let mut cam = CamSettings {
                layer: "relu_conv10".into(),
                method: Method::Seed,
                ..CamSettings::default()
            };
            let seed = classifier
                .explain(std::slice::from_ref(&image), &cam, Target::Predicted)
                .unwrap();
            cam.method = Method::GradCam;
            let gradcam = classifier
                .explain(std::slice::from_ref(&image), &cam, Target::Predicted)
                .unwrap();
            assert_eq!(seed[0].class as u64, photo["predicted"].as_u64().unwrap());
            let p = worst(probabilities, &photo["probabilities"]);
            let s = worst(&seed[0].cam.rows().concat(), &photo["seed"]);
            let g = worst(&gradcam[0].cam.rows().concat(), &photo["gradcam"]);
            eprintln!(
                "{} ({}): probabilities {p:.2e}, seed map {s:.2e}, Grad-CAM map {g:.2e}",
                photo["photo"].as_str().unwrap(),
                if png { "PNG" } else { "JPEG" }
            );
            out = (out.0.max(p), out.1.max(s), out.2.max(g));
        }
        eprintln!(
            "worst: probabilities {:.2e}, seed {:.2e}, Grad-CAM {:.2e}",
            out.0, out.1, out.2
        );
        Some(out)
    }

    #[test]
    fn probabilities_and_maps_agree_with_pytorch_float64_on_the_same_pixels() {
        let Some((p, seed, gradcam)) = worst_differences(true) else {
            return;
        };
        assert!(p <= 1e-5, "probabilities differ by {p:e}");
        assert!(
            seed <= 1e-3 && gradcam <= 1e-3,
            "maps differ by {seed:e} / {gradcam:e}"
        );
    }

    #[test]
    fn probabilities_and_maps_agree_with_pytorch_float64_on_the_jpeg_photos() {
        let Some((p, seed, gradcam)) = worst_differences(false) else {
            return;
        };
        assert!(p <= 1e-5, "probabilities differ by {p:e}");
        assert!(
            seed <= 1e-3 && gradcam <= 1e-3,
            "maps differ by {seed:e} / {gradcam:e}"
        );
    }
}
