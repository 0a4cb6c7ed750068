//! The dashboard's pictures for a run directory: the sample tiles, the network summary, the test
//! predictions, and Grad-CAM overlays from the run's checkpoints. It implements the dashboard's
//! [`Gallery`] so that the dashboard itself knows nothing of candle, files or Grad-CAM.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use image::RgbImage;

use crate::data::decode::{load_rgb, resize_exact};
use crate::data::samples::sample_grid;
use crate::data::split::Manifest;
use crate::detector::classifier::Classifier;
use crate::explain::methods::{Method, Target};
use crate::explain::settings::{picture_name, CamSettings};
use crate::model::{self, LoadOptions, CAM_LAYERS};
use crate::run::predictions::Predictions;
use crate::run::recipe::Recipe;
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
    /// The recipe's `[gradcam]` keys: the browser's first picture and the validation panel.
    cam: CamSettings,
    items: Vec<TestItem>,
    /// The best model, loaded on first use and kept while its file is unchanged.
    best: Option<(std::time::SystemTime, Classifier)>,
}

impl RunGallery {
    pub fn open(run: &RunDir) -> Result<RunGallery> {
        let recipe = Recipe::load(&run.recipe())?;
        Ok(RunGallery {
            manifest: Manifest::load(&run.manifest())?,
            cam: recipe
                .gradcam
                .settings()
                .with_context(|| format!("{}", run.recipe().display()))?,
            recipe,
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

    fn best_model(&mut self) -> Result<&Classifier> {
        let path = self.run.best_model();
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .with_context(|| format!("no model yet ({} is missing)", path.display()))?;
        if self.best.as_ref().is_none_or(|(seen, _)| *seen != modified) {
            let classifier = Classifier::open(&path, &EXPLAIN_DEVICE, &LoadOptions::default())?;
            self.best = Some((modified, classifier));
        }
        Ok(&self.best.as_ref().expect("just loaded").1)
    }

    /// The settings a picture spec asks for: its method, layer and opacity over the recipe's
    /// colormap.
    fn cam_for(&self, spec: &PictureSpec) -> CamSettings {
        let layers = Self::layer_names();
        CamSettings {
            layer: layers[spec.layer.min(layers.len() - 1)].to_string(),
            method: Method::ALL[spec.method.min(Method::ALL.len() - 1)],
            alpha: spec.alpha(),
            colormap: self.cam.colormap,
        }
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

    fn default_spec(&self) -> PictureSpec {
        PictureSpec {
            method: Method::ALL
                .iter()
                .position(|m| *m == self.cam.method)
                .unwrap_or(0),
            layer: Self::layer_names()
                .iter()
                .position(|l| *l == self.cam.layer)
                .unwrap_or(0),
            alpha_percent: (self.cam.alpha * 100.0).round() as u8,
            ..PictureSpec::default()
        }
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
        let grid = sample_grid(
            &self.manifest.dataset_roots(),
            16,
            self.recipe.data.split_seed,
        )?;
        crate::imaging::write_png(&grid, &path)?;
        Ok(Some(grid))
    }

    fn summary(&mut self) -> Result<Vec<LayerRow>> {
        let rows = model::summary(
            Some(self.manifest.classes.len()),
            self.recipe.data.input_size,
        )?;
        Ok(layer_rows(rows))
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
        let cam = self.cam_for(spec);
        let target = spec.class.map_or(Target::Predicted, Target::Class);
        let best = self.best_model()?;
        Ok(best.overlay(&image, &cam, target, MIN_PICTURE_SIDE)?.0)
    }

    fn save_picture(&mut self, item: usize, spec: &PictureSpec) -> Result<PathBuf> {
        let picture = self.picture(item, spec)?;
        let source = &self.items[item].path;
        let stem = source
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let name = if spec.overlay {
            let cam = self.cam_for(spec);
            picture_name(&stem, cam.method, &cam.layer)
        } else {
            format!("{stem}.png")
        };
        let path = self.run.path.join("pictures").join(name);
        crate::imaging::write_png(&picture, &path)?;
        Ok(path)
    }

    fn validation_cams(&mut self, _iteration: usize) -> Result<Vec<(RgbImage, String)>> {
        let checkpoint = self.run.last_model();
        if !checkpoint.is_file() {
            return Ok(Vec::new());
        }
        let loaded = Classifier::open(&checkpoint, &EXPLAIN_DEVICE, &LoadOptions::default())?;
        let mut panel = Vec::new();
        for entry in panel_entries(&self.manifest) {
            let path = self.manifest.absolute(entry);
            let image = load_rgb(&path)?;
            let (picture, explanation) =
                loaded.overlay(&image, &self.cam, Target::Predicted, MIN_PICTURE_SIDE)?;
            let predicted = explanation.predicted;
            let score = explanation.probabilities[predicted];
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

/// The model's layer table as the dashboard's Model view shows it (output as HxWxC).
pub(crate) fn layer_rows(rows: Vec<model::LayerSummary>) -> Vec<LayerRow> {
    rows.into_iter()
        .map(|r| {
            let [c, h, w] = r.output;
            LayerRow {
                name: r.name,
                kind: r.kind.to_string(),
                output: format!("{h}x{w}x{c}"),
                params: r.params,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use candle_core::DType;
    use candle_nn::{VarBuilder, VarMap};

    use super::*;
    use crate::data::split::{Entry, Fractions};
    use crate::data::synth::render;
    use crate::model::{init_backbone, init_head, save_checkpoint, CheckpointMeta, SqueezeNet};

    const CLASSES: [&str; 2] = ["Negative", "Positive"];

    /// A run whose recipe sets every `[gradcam]` key away from its default: two validation and
    /// one test image, both checkpoints, and predictions.csv.
    fn run_with_gradcam_recipe(root: &Path) -> RunDir {
        let data = root.join("data");
        let mut entries = Vec::new();
        for i in 0..3u64 {
            let relative = PathBuf::from(CLASSES[(i % 2) as usize]).join(format!("{i}.png"));
            let path = data.join(&relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            render(i, 64, i % 2 == 1).image.save(&path).unwrap();
            entries.push(Entry {
                path: relative,
                label: (i % 2) as usize,
            });
        }
        let run = RunDir {
            path: root.join("run"),
        };
        std::fs::create_dir_all(&run.path).unwrap();
        std::fs::write(
            run.recipe(),
            "[gradcam]\nlayer = \"fire9-concat\"\nmethod = \"gradcam\"\nalpha = 1.0\n\
             colormap = \"gray\"\n",
        )
        .unwrap();
        let test = entries.split_off(2);
        Manifest {
            root: data.clone(),
            roots: Vec::new(),
            classes: CLASSES.iter().map(|c| c.to_string()).collect(),
            seed: 0,
            fractions: Fractions {
                train: 0.1,
                val: 0.1,
                test: 0.1,
            },
            train: entries[..1].to_vec(),
            val: entries,
            test: test.clone(),
        }
        .save(&run.manifest())
        .unwrap();
        let varmap = VarMap::new();
        SqueezeNet::new(
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
            Some(2),
        )
        .unwrap();
        init_backbone(&varmap, 1).unwrap();
        init_head(&varmap, 2).unwrap();
        let meta = CheckpointMeta {
            input_size: Some(64),
            ..CheckpointMeta::default()
        };
        let classes: Vec<String> = CLASSES.iter().map(|c| c.to_string()).collect();
        save_checkpoint(&run.best_model(), &varmap, &classes, &meta).unwrap();
        save_checkpoint(&run.last_model(), &varmap, &classes, &meta).unwrap();
        std::fs::write(
            run.predictions(),
            format!(
                "path,truth,predicted,score,p_Negative,p_Positive\n{},Negative,Negative,0.6,0.6,0.4\n",
                data.join(&test[0].path).display()
            ),
        )
        .unwrap();
        run
    }

    fn all_gray(picture: &RgbImage) -> bool {
        picture.pixels().all(|p| p[0] == p[1] && p[1] == p[2])
    }

    #[test]
    fn recipe_gradcam_keys_reach_the_browser_and_the_validation_panel() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_with_gradcam_recipe(dir.path());
        let mut gallery = RunGallery::open(&run).unwrap();
        // The browser's first picture: the recipe's method, layer and opacity.
        let spec = gallery.default_spec();
        assert_eq!(gallery.methods()[spec.method], "gradcam");
        assert_eq!(gallery.layers()[spec.layer], "fire9-concat");
        assert_eq!(spec.alpha_percent, 100);
        assert_eq!(gallery.test_items().unwrap().len(), 1);
        // Alpha 1 with the gray colormap: the heatmap alone, in gray.
        assert!(all_gray(&gallery.picture(0, &spec).unwrap()));
        let saved = gallery.save_picture(0, &spec).unwrap();
        assert!(
            saved.ends_with("pictures/2-gradcam-fire9-concat.png"),
            "{}",
            saved.display()
        );
        // The validation panel draws with the recipe's settings too.
        let panel = gallery.validation_cams(1).unwrap();
        assert_eq!(panel.len(), 2);
        assert!(panel.iter().all(|(picture, _)| all_gray(picture)));
    }
}
