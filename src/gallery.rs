//! The dashboard's pictures for a run directory: the sample tiles, the network summary, the test
//! predictions, and Grad-CAM overlays from the run's checkpoints. It implements the dashboard's
//! [`Gallery`] so that the dashboard itself knows nothing of candle, files or Grad-CAM.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use image::RgbImage;

use crate::cmd::predict::input_size;
use crate::cmd::samples::sample_grid;
use crate::config::Recipe;
use crate::data::augment::write_chw_normalized;
use crate::data::decode::{load_rgb, resize_exact};
use crate::data::split::Manifest;
use crate::explain::colormap::Colormap;
use crate::explain::methods::{explain_features, Method, Target};
use crate::explain::overlay::{overlay, Style};
use crate::model::{self, LoadedModel, CAM_LAYERS};
use crate::run::predictions::Predictions;
use crate::run::RunDir;
use crate::tui::{Gallery, LayerRow, PictureSpec, TestItem};

/// Pictures are shown at least this large, so that small training images stay legible.
const MIN_PICTURE_SIDE: u32 = 227;
/// Explaining one image at a time is quick on the CPU, and leaves a GPU to the training.
const EXPLAIN_DEVICE: Device = Device::Cpu;
/// Validation images in the Training view's Grad-CAM panel.
const PANEL_IMAGES: usize = 4;

pub struct RunGallery {
    run: RunDir,
    manifest: Manifest,
    recipe: Recipe,
    items: Vec<TestItem>,
    /// The best model, loaded on first use and kept while its file is unchanged.
    best: Option<(std::time::SystemTime, LoadedModel)>,
}

impl RunGallery {
    pub fn open(run: &RunDir) -> Result<RunGallery> {
        Ok(RunGallery {
            manifest: Manifest::load(&run.manifest())?,
            recipe: Recipe::load(&run.recipe())?,
            run: run.clone(),
            items: Vec::new(),
            best: None,
        })
    }

    /// Layers in the order the dashboard cycles through them: the seed's relu_conv10 first, then
    /// from the deepest Fire module down.
    fn layer_names() -> Vec<&'static str> {
        CAM_LAYERS.iter().rev().copied().collect()
    }

    fn best_model(&mut self) -> Result<&LoadedModel> {
        let path = self.run.best_model();
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .with_context(|| format!("no model yet ({} is missing)", path.display()))?;
        if self.best.as_ref().is_none_or(|(seen, _)| *seen != modified) {
            self.best = Some((modified, model::load_model(&path, &EXPLAIN_DEVICE)?));
        }
        Ok(&self.best.as_ref().expect("just loaded").1)
    }

    fn colormap(&self) -> Result<Colormap> {
        self.recipe
            .gradcam
            .colormap
            .parse()
            .map_err(anyhow::Error::msg)
    }
}

impl Gallery for RunGallery {
    fn classes(&self) -> Vec<String> {
        self.manifest.classes.clone()
    }

    fn methods(&self) -> Vec<String> {
        Method::ALL.iter().map(|m| m.name().to_string()).collect()
    }

    fn layers(&self) -> Vec<String> {
        Self::layer_names().into_iter().map(String::from).collect()
    }

    fn samples(&mut self) -> Result<Option<RgbImage>> {
        let path = self.run.samples();
        if path.is_file() {
            return Ok(Some(
                image::open(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .to_rgb8(),
            ));
        }
        let grid = sample_grid(&self.manifest.root, 16, self.recipe.data.split_seed)?;
        crate::cmd::samples::write_png(&grid, &path)?;
        Ok(Some(grid))
    }

    fn summary(&mut self) -> Result<Vec<LayerRow>> {
        let rows = model::summary(
            Some(self.manifest.classes.len()),
            self.recipe.data.input_size,
        )?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let [c, h, w] = r.output;
                LayerRow {
                    name: r.name,
                    kind: r.kind.to_string(),
                    output: format!("{h}x{w}x{c}"),
                    params: r.params,
                }
            })
            .collect())
    }

    fn test_items(&mut self) -> Result<Vec<TestItem>> {
        if self.items.is_empty() {
            self.items = read_predictions(&self.run.predictions(), &self.manifest.classes)?;
        }
        Ok(self.items.clone())
    }

    fn picture(&mut self, item: usize, spec: &PictureSpec) -> Result<RgbImage> {
        let path = self
            .items
            .get(item)
            .context("no such test image")?
            .path
            .clone();
        let image = load_rgb(&path)?;
        if !spec.overlay {
            return Ok(resize_exact(&image, image.width().max(MIN_PICTURE_SIDE)));
        }
        let colormap = self.colormap()?;
        let best = self.best_model()?;
        Ok(explain(best, &EXPLAIN_DEVICE, colormap, &image, spec)?.0)
    }

    fn save_picture(&mut self, item: usize, spec: &PictureSpec) -> Result<PathBuf> {
        let picture = self.picture(item, spec)?;
        let source = &self.items[item].path;
        let stem = source
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let name = if spec.overlay {
            format!(
                "{stem}-{}-{}.png",
                self.methods()[spec.method],
                self.layers()[spec.layer]
            )
        } else {
            format!("{stem}.png")
        };
        let path = self.run.path.join("pictures").join(name);
        crate::cmd::samples::write_png(&picture, &path)?;
        Ok(path)
    }

    fn validation_cams(&mut self, _iteration: usize) -> Result<Vec<(RgbImage, String)>> {
        let checkpoint = self.run.last_model();
        if !checkpoint.is_file() {
            return Ok(Vec::new());
        }
        let loaded = model::load_model(&checkpoint, &EXPLAIN_DEVICE)?;
        let spec = PictureSpec::default();
        let mut panel = Vec::new();
        for entry in panel_entries(&self.manifest) {
            let path = self.manifest.absolute(entry);
            let image = load_rgb(&path)?;
            let (picture, predicted, score) =
                explain(&loaded, &EXPLAIN_DEVICE, self.colormap()?, &image, &spec)?;
            let classes = &self.manifest.classes;
            panel.push((
                picture,
                format!(
                    "{} -> {} {score:.2}",
                    classes[entry.label], classes[predicted]
                ),
            ));
        }
        Ok(panel)
    }
}

/// Grad-CAM of one image as `spec` asks, drawn over it; also the predicted class and its score.
fn explain(
    loaded: &LoadedModel,
    device: &Device,
    colormap: Colormap,
    image: &RgbImage,
    spec: &PictureSpec,
) -> Result<(RgbImage, usize, f32)> {
    let side = input_size(loaded);
    let resized = resize_exact(image, side);
    let mut data = vec![0f32; 3 * (side * side) as usize];
    write_chw_normalized(&resized, &mut data);
    let x = Tensor::from_vec(data, (1, 3, side as usize, side as usize), device)?;
    let layer = RunGallery::layer_names()[spec.layer.min(CAM_LAYERS.len() - 1)];
    let method = Method::ALL[spec.method.min(Method::ALL.len() - 1)];
    let target = spec.class.map_or(Target::Predicted, Target::Class);
    let features = loaded.model.forward_to(&x, layer)?;
    let explanation = explain_features(
        &features,
        |f| loaded.model.forward_from(f, layer),
        method,
        target,
    )?
    .pop()
    .context("no explanation")?;
    let shown = resize_exact(image, side.max(MIN_PICTURE_SIDE));
    let picture = overlay(
        &shown,
        &explanation.cam,
        &Style {
            colormap,
            alpha: spec.alpha(),
        },
    )?;
    let score = explanation.probabilities[explanation.predicted];
    Ok((picture, explanation.predicted, score))
}

/// A few fixed validation images, alternating between the classes, for the Training view's panel.
fn panel_entries(manifest: &Manifest) -> Vec<&crate::data::split::Entry> {
    let classes = manifest.classes.len();
    let mut chosen = Vec::new();
    for round in 0..PANEL_IMAGES {
        let class = round % classes;
        if let Some(entry) = manifest
            .val
            .iter()
            .filter(|e| e.label == class)
            .nth(round / classes)
        {
            chosen.push(entry);
        }
    }
    chosen
}

/// Reads `predictions.csv` back (absent before the run was tested: no items).
fn read_predictions(path: &Path, classes: &[String]) -> Result<Vec<TestItem>> {
    let Some(predictions) = Predictions::load(path)? else {
        return Ok(Vec::new());
    };
    if predictions.classes != classes {
        bail!(
            "{} lists classes {:?}, not the run's {:?}",
            path.display(),
            predictions.classes,
            classes
        );
    }
    Ok(predictions
        .rows
        .into_iter()
        .map(|row| TestItem {
            score: row.score(),
            loss: -row.probabilities[row.truth].max(1e-30).ln(),
            path: row.path,
            truth: row.truth,
            predicted: row.predicted,
        })
        .collect())
}
