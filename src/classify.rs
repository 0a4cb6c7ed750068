//! One classifier: a model with its class names and input size, owning what every consumer
//! (predict, eval, gradcam, the dashboard's gallery) does with it: resize and normalise images
//! the way training fed them, classify them in batches, and explain the decisions with heatmaps.
//! Keeping these in one place means a picture is prepared the same way wherever it is classified.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor, D};
use image::RgbImage;

use crate::config::GradcamConfig;
use crate::data::augment::write_chw_normalized;
use crate::data::decode::{load_rgb, resize_exact};
use crate::data::inputs::{read_each, FileOutcome};
use crate::data::loader::{decode_all, DecodedSet};
use crate::data::split::Manifest;
use crate::explain::colormap::Colormap;
use crate::explain::methods::{explain, Explanation, Method, Target};
use crate::explain::overlay::{overlay, Style};
use crate::model::{self, CheckpointMeta, LoadOptions, SqueezeNet, CAM_LAYERS, MIN_INPUT_SIDE};
use crate::run::RunDir;
use crate::train::evaluate::{self, argmax};

/// Images per forward pass: enough to amortise a pass, little enough for memory.
pub const BATCH: usize = 32;

/// A model ready to classify: network, class names in output order, input side in pixels.
pub struct Classifier {
    pub model: SqueezeNet,
    pub classes: Vec<String>,
    /// Images are resized to `input_size` x `input_size` before they enter the network.
    pub input_size: u32,
    /// What the checkpoint said about itself.
    pub meta: CheckpointMeta,
    /// The checkpoint file it came from.
    pub path: PathBuf,
    pub device: Device,
}

/// One image's answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Prediction {
    pub path: PathBuf,
    pub label: String,
    pub index: usize,
    pub score: f32,
    /// Every class's probability, in the model's class order.
    pub probabilities: Vec<f32>,
}

/// The checkpoint a model argument stands for: a file as it is, a run directory its best model.
pub fn model_file(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        Ok(RunDir::open(path)?.best_model())
    } else {
        Ok(path.to_path_buf())
    }
}

/// A run's split manifest and a classifier for it; a model of other classes is an error naming
/// both.
pub fn open_run_model(
    run: &RunDir,
    model_path: &Path,
    device: &Device,
    options: &LoadOptions,
) -> Result<(Manifest, Classifier)> {
    let manifest = Manifest::load(&run.manifest())?;
    let classifier = Classifier::open(model_path, device, options)?;
    if classifier.classes != manifest.classes {
        bail!(
            "{} classifies {:?} but the run's data has classes {:?}",
            model_path.display(),
            classifier.classes,
            manifest.classes
        );
    }
    Ok((manifest, classifier))
}

impl Classifier {
    /// Loads the checkpoint `path` stands for (see [`model_file`]) strictly; class names and the
    /// input size come from the file, else from `options`, else it is an error.
    pub fn open(path: &Path, device: &Device, options: &LoadOptions) -> Result<Classifier> {
        let file = model_file(path)?;
        let loaded = model::load_model_with(&file, device, options)?;
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
            classes: loaded.classes,
            input_size,
            meta: loaded.meta,
            path: file,
            device: device.clone(),
        })
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

    /// Softmax probabilities of each image, [`BATCH`] images per pass.
    pub fn probabilities(&self, images: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(BATCH) {
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
    pub fn classify_files(&self, paths: &[PathBuf]) -> Result<Vec<FileOutcome<Prediction>>> {
        let mut out = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(BATCH) {
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
                    Some(index) => FileOutcome::Done(Prediction {
                        path: path.clone(),
                        label: self.classes[index].clone(),
                        index,
                        score: probabilities[index],
                        probabilities,
                    }),
                    None => failed(not_finite(&probabilities)),
                });
            }
        }
        Ok(out)
    }

    /// Decodes labelled files at the input size, in parallel; unreadable ones are listed as
    /// skipped (a whole data set is classified despite a few broken files).
    pub fn decode_set(&self, paths_and_labels: &[(PathBuf, usize)]) -> DecodedSet {
        decode_all(paths_and_labels, self.input_size)
    }

    /// Classifies a decoded set (see [`Classifier::decode_set`]), 100 images per pass.
    pub fn classify_set(&self, set: &Arc<DecodedSet>) -> Result<Vec<evaluate::Prediction>> {
        ensure!(
            set.size == self.input_size,
            "images decoded at {} px for a model that takes {} px",
            set.size,
            self.input_size
        );
        evaluate::classify(&self.model, set, 100, &self.device)
    }

    /// Heatmaps of `images` (any size) as the network sees them, [`BATCH`] per pass.
    pub fn explain(
        &self,
        images: &[RgbImage],
        cam: &CamSettings,
        target: Target,
    ) -> Result<Vec<Explanation>> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(BATCH) {
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

/// How heatmaps are made and drawn: the recipe's `[gradcam]` keys, typed, after flags.
#[derive(Debug, Clone, PartialEq)]
pub struct CamSettings {
    /// One of [`CAM_LAYERS`].
    pub layer: String,
    pub method: Method,
    pub alpha: f32,
    pub colormap: Colormap,
}

impl Default for CamSettings {
    /// The defaults of `config/default.toml` (the seed's).
    fn default() -> Self {
        CamSettings::from_recipe(&GradcamConfig::default()).expect("the default recipe is valid")
    }
}

impl CamSettings {
    /// The recipe's `[gradcam]` section; a bad value is an error naming the key.
    pub fn from_recipe(recipe: &GradcamConfig) -> Result<CamSettings> {
        let settings = CamSettings {
            layer: recipe.layer.clone(),
            method: recipe
                .method
                .parse()
                .map_err(|e| anyhow::anyhow!("gradcam.method: {e}"))?,
            alpha: recipe.alpha,
            colormap: recipe
                .colormap
                .parse()
                .map_err(|e| anyhow::anyhow!("gradcam.colormap: {e}"))?,
        };
        settings.check()?;
        Ok(settings)
    }

    /// Flags given on the command line replace the recipe's values.
    pub fn with_overrides(
        mut self,
        layer: Option<&str>,
        method: Option<Method>,
        alpha: Option<f32>,
        colormap: Option<Colormap>,
    ) -> Result<CamSettings> {
        if let Some(layer) = layer {
            self.layer = layer.to_string();
        }
        self.method = method.unwrap_or(self.method);
        self.alpha = alpha.unwrap_or(self.alpha);
        self.colormap = colormap.unwrap_or(self.colormap);
        self.check()?;
        Ok(self)
    }

    fn check(&self) -> Result<()> {
        ensure!(
            CAM_LAYERS.contains(&self.layer.as_str()),
            "unknown layer {:?}; feature maps can be taken at: {}",
            self.layer,
            CAM_LAYERS.join(", ")
        );
        ensure!(
            (0.0..=1.0).contains(&self.alpha),
            "heatmap opacity {} is not between 0 and 1",
            self.alpha
        );
        Ok(())
    }

    pub fn style(&self) -> Style {
        Style {
            colormap: self.colormap,
            alpha: self.alpha,
        }
    }
}

/// A method's name as it may appear in a file name ("gradcam++" -> "gradcampp").
pub fn file_safe(method: Method) -> String {
    method.name().replace('+', "p")
}

/// `<stem>-<method>-<layer>.png`: the file of one heatmap picture, the same for `gradcam` and the
/// dashboard, so pictures of other methods or layers never overwrite each other.
pub fn picture_name(stem: &str, method: Method, layer: &str) -> String {
    format!("{stem}-{}-{layer}.png", file_safe(method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picture_names_escape_plus_and_carry_method_and_layer() {
        assert_eq!(
            picture_name("crack", Method::GradCamPlusPlus, "fire9-concat"),
            "crack-gradcampp-fire9-concat.png"
        );
        assert_ne!(
            picture_name("x", Method::Seed, "relu_conv10"),
            picture_name("x", Method::Seed, "fire9-concat")
        );
    }

    #[test]
    fn recipe_keys_and_flags_make_the_settings() {
        let recipe = GradcamConfig {
            layer: "fire8-concat".into(),
            method: "gradcam++".into(),
            alpha: 0.25,
            colormap: "turbo".into(),
        };
        let from_recipe = CamSettings::from_recipe(&recipe).unwrap();
        assert_eq!(
            from_recipe,
            CamSettings {
                layer: "fire8-concat".into(),
                method: Method::GradCamPlusPlus,
                alpha: 0.25,
                colormap: Colormap::Turbo,
            }
        );
        let flagged = from_recipe
            .clone()
            .with_overrides(Some("pool5"), Some(Method::Ablation), None, None)
            .unwrap();
        assert_eq!(
            (flagged.layer.as_str(), flagged.method, flagged.alpha),
            ("pool5", Method::Ablation, 0.25)
        );
        assert!(from_recipe
            .with_overrides(Some("fire10"), None, None, None)
            .is_err());
        // One default method everywhere: the recipe's, the enum's and the settings'.
        assert_eq!(CamSettings::default().method, Method::default());
        assert_eq!(GradcamConfig::default().method, Method::default().name());
    }

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
            eprintln!(
                "skipping: no {} (run scripts/torch_reference.py --maps)",
                dir.join("reference.json").display()
            );
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
