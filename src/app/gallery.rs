//! The dashboard's pictures, asked through one trait ([`Gallery`]) so that the dashboard knows
//! nothing of candle, decoding or heatmaps, and the one implementation for a run directory of
//! either kind of model ([`RunGallery`]): the sample tiles, the network summary, the test images
//! from `predictions.csv`, heatmaps over them (Grad-CAM, or a one-class model's anomaly maps) and
//! the Training view's validation panel. Every call may be slow (100 ms and more): the dashboard
//! makes them on a worker thread of its own and shows "rendering…" meanwhile, one call at a time.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use image::RgbImage;

use crate::data::decode::{load_rgb, resize_exact};
use crate::data::samples::sample_grid;
use crate::data::split::{Entry, Manifest};
use crate::detector::{Detector, Explained, Kind, Model};
use crate::explain::methods::{Method, Target};
use crate::explain::settings::CamSettings;
use crate::model::{self, LoadOptions};
use crate::run::predictions::{Predictions, PredictionsFile, ScoredRow};
use crate::run::recipe::Recipe;
use crate::run::report::Report;
use crate::run::RunDir;

/// One row of the network summary (Model view).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRow {
    pub name: String,
    /// What the layer is ("Conv2d 3x3/2", "Fire", "ReLU", ...).
    pub kind: String,
    /// Output shape as the user should read it, e.g. "64x56x56".
    pub output: String,
    /// Learnable parameters of this layer.
    pub params: usize,
}

/// One classified test image.
#[derive(Debug, Clone, PartialEq)]
pub struct TestItem {
    pub path: PathBuf,
    /// Index into [`Gallery::classes`].
    pub truth: usize,
    pub predicted: usize,
    /// Softmax probability of the predicted class.
    pub score: f32,
    /// Cross-entropy loss of this image against its true class.
    pub loss: f32,
}

impl TestItem {
    pub fn is_correct(&self) -> bool {
        self.truth == self.predicted
    }

    /// A test image of a one-class run: classes are the kinds (0 normal, 1 anomaly), `predicted`
    /// is the verdict, `score` the distance of the anomaly score from the threshold (so "least
    /// sure first" lists the images nearest to it) and `loss` how far the score lies on the
    /// wrong side of it (so "highest loss first" lists the worst mistakes).
    pub fn scored(path: PathBuf, anomalous: bool, anomaly_score: f32, threshold: f32) -> TestItem {
        let margin = anomaly_score - threshold;
        TestItem {
            path,
            truth: usize::from(anomalous),
            predicted: usize::from(anomaly_score > threshold),
            score: margin.abs(),
            loss: if anomalous { -margin } else { margin },
        }
    }

    /// The anomaly score of an item made by [`TestItem::scored`] with the same threshold.
    pub fn anomaly_score(&self, threshold: f32) -> f32 {
        if self.truth == 1 {
            threshold - self.loss
        } else {
            threshold + self.loss
        }
    }
}

/// How to draw one test picture. Hashable so each drawn variant is cached on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PictureSpec {
    /// Heatmap over the photo, or the plain photo.
    pub overlay: bool,
    /// Opacity of the heatmap in percent (MATLAB's demo uses 50).
    pub alpha_percent: u8,
    /// Index into [`Gallery::methods`].
    pub method: usize,
    /// Index into [`Gallery::layers`].
    pub layer: usize,
    /// The class to explain; `None` explains the predicted class (as the seed demo does).
    pub class: Option<usize>,
}

impl PictureSpec {
    pub fn alpha(&self) -> f32 {
        f32::from(self.alpha_percent) / 100.0
    }
}

impl Default for PictureSpec {
    fn default() -> Self {
        PictureSpec {
            overlay: true,
            alpha_percent: 50,
            method: 0,
            layer: 0,
            class: None,
        }
    }
}

/// The source of everything the dashboard draws as a picture; implemented by the application
/// (Grad-CAM on the trained model) and by a fake in tests.
pub trait Gallery: Send {
    /// Class names, in the index order used by [`TestItem`] and [`PictureSpec::class`].
    fn classes(&self) -> Vec<String>;
    /// Names of the explanation methods (at least one), e.g. "Grad-CAM".
    fn methods(&self) -> Vec<String>;
    /// Names of the layers that can be explained (at least one), e.g. "relu_conv10".
    fn layers(&self) -> Vec<String>;
    /// How the browser draws its first picture (the recipe's Grad-CAM settings).
    fn default_spec(&self) -> PictureSpec {
        PictureSpec::default()
    }
    /// The labelled sample tiles of the dataset as one picture; `None` when there are none to show.
    fn samples(&mut self) -> Result<Option<RgbImage>>;
    /// The network summary, input to output.
    fn summary(&mut self) -> Result<Vec<LayerRow>>;
    /// The classified test images; empty until the run was tested.
    fn test_items(&mut self) -> Result<Vec<TestItem>>;
    /// Test image `item` (index into [`Gallery::test_items`]) drawn as `view` asks, at the
    /// resolution it should be seen at (kitty, sixel and iTerm2 never enlarge it; see
    /// `images::encode`).
    fn picture(&mut self, item: usize, view: &PictureSpec) -> Result<RgbImage>;
    /// Saves that same picture into the run directory and says where.
    fn save_picture(&mut self, item: usize, view: &PictureSpec) -> Result<PathBuf>;
    /// A few fixed validation images with the Grad-CAM of the model as of `iteration`, each with
    /// its label and the prediction, for the Training view.
    fn validation_cams(&mut self, iteration: usize) -> Result<Vec<(RgbImage, CamCaption)>>;
}

/// What a validation Grad-CAM's caption says, in parts, so that a narrow panel can shorten the
/// names instead of cutting the line.
#[derive(Debug, Clone, PartialEq)]
pub struct CamCaption {
    /// The image's class.
    pub truth: String,
    /// What the model said: the predicted class, or a one-class model's verdict.
    pub said: String,
    /// The predicted class's probability, or the anomaly score.
    pub score: f32,
}

/// Pictures are shown at least this large, so that small training images stay legible.
const MIN_PICTURE_SIDE: u32 = 227;
/// Explaining one image at a time is quick on the CPU, and leaves a GPU to the training.
const EXPLAIN_DEVICE: Device = Device::Cpu;
/// Validation images in the Training view's panel.
const PANEL_IMAGES: usize = 4;

/// The pictures of a run directory, for a model of the run's kind.
pub struct RunGallery {
    run: RunDir,
    kind: Kind,
    manifest: Manifest,
    recipe: Recipe,
    /// The recipe's `[gradcam]` keys: the browser's first picture and the validation panel.
    cam: CamSettings,
    items: Vec<TestItem>,
    /// The best model, loaded on first use and kept while its file is unchanged.
    best: Option<(SystemTime, Detector)>,
}

impl RunGallery {
    /// The gallery of `run`, whose model is of `kind` (see [`RunDir::model_kind`]; the model
    /// itself may not exist yet).
    pub fn open(run: &RunDir, kind: Kind) -> Result<RunGallery> {
        let recipe = Recipe::load(&run.recipe())?;
        Ok(RunGallery {
            manifest: Manifest::load(&run.manifest())?,
            cam: recipe
                .gradcam
                .settings()
                .with_context(|| format!("{}", run.recipe().display()))?,
            recipe,
            run: run.clone(),
            kind,
            items: Vec::new(),
            best: None,
        })
    }

    fn best_model(&mut self) -> Result<&Detector> {
        let path = self.run.best_model();
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .with_context(|| format!("no model yet ({} is missing)", path.display()))?;
        if self.best.as_ref().is_none_or(|(seen, _)| *seen != modified) {
            let detector = Detector::open(&path, &EXPLAIN_DEVICE, &LoadOptions::default())?;
            self.best = Some((modified, detector));
        }
        Ok(&self.best.as_ref().expect("just loaded").1)
    }

    /// The settings a picture spec asks for: a classifier's method, layer and opacity over the
    /// recipe's colormap; a one-class model's opacity (its map has no method or layer).
    fn cam_for(&self, spec: &PictureSpec) -> CamSettings {
        match self.kind {
            Kind::Classifier => {
                let layers = self.kind.heatmap_layers();
                CamSettings {
                    layer: layers[spec.layer.min(layers.len() - 1)].clone(),
                    method: Method::ALL[spec.method.min(Method::ALL.len() - 1)],
                    alpha: spec.alpha(),
                    colormap: self.cam.colormap,
                }
            }
            Kind::OneClass => CamSettings {
                alpha: spec.alpha(),
                ..self.cam.clone()
            },
        }
    }

    /// The threshold a one-class run's predictions were judged with: the report's, else the
    /// model's.
    fn threshold(&mut self) -> Result<f32> {
        if let Ok(Report::Anomaly(report)) = Report::load(&self.run.report()) {
            return Ok(report.threshold.value);
        }
        match &self.best_model()?.model {
            Model::OneClass(m) => Ok(m.threshold.value),
            Model::Classifier(_) => bail!(
                "{} is not a one-class model",
                self.run.best_model().display()
            ),
        }
    }
}

impl Gallery for RunGallery {
    fn classes(&self) -> Vec<String> {
        self.kind.shown_classes(&self.manifest.classes)
    }

    fn methods(&self) -> Vec<String> {
        self.kind.heatmap_methods()
    }

    fn layers(&self) -> Vec<String> {
        self.kind.heatmap_layers()
    }

    fn default_spec(&self) -> PictureSpec {
        PictureSpec {
            method: self
                .methods()
                .iter()
                .position(|m| *m == self.cam.method.name())
                .unwrap_or(0),
            layer: self
                .layers()
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
        let head = self.kind.head_outputs(self.manifest.classes.len());
        let rows = model::summary(head, self.recipe.data.input_size)?;
        Ok(layer_rows(rows))
    }

    fn test_items(&mut self) -> Result<Vec<TestItem>> {
        if self.items.is_empty() {
            let path = self.run.predictions();
            self.items = match PredictionsFile::load(&path)? {
                None => Vec::new(),
                Some(PredictionsFile::Classes(p)) => class_items(&path, p, &self.manifest.classes)?,
                Some(PredictionsFile::Anomaly(rows)) => {
                    let threshold = self.threshold()?;
                    rows.into_iter()
                        .map(|row| browser_item(row, threshold))
                        .collect()
                }
            };
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
        Ok(best.picture(&image, &cam, target, MIN_PICTURE_SIDE)?.0)
    }

    fn save_picture(&mut self, item: usize, spec: &PictureSpec) -> Result<PathBuf> {
        let picture = self.picture(item, spec)?;
        // Datasets often hold the same file name in every class folder: the class keeps the
        // pictures of two such images apart.
        let class = self
            .classes()
            .get(self.items[item].truth)
            .map(|c| crate::core::fsutil::file_safe_name(c))
            .unwrap_or_default();
        let file_stem = self.items[item]
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let stem = format!("{class}-{file_stem}");
        let name = if spec.overlay {
            self.kind.picture_name(&stem, &self.cam_for(spec))
        } else {
            format!("{stem}.png")
        };
        let path = self.run.path.join("pictures").join(name);
        crate::imaging::write_png(&picture, &path)?;
        Ok(path)
    }

    /// The latest checkpoint's heatmaps of a few validation images; none before the first
    /// checkpoint, nor for a fit (it has no validation rounds to explain).
    fn validation_cams(&mut self, _iteration: usize) -> Result<Vec<(RgbImage, CamCaption)>> {
        let checkpoint = self.run.last_model();
        if !checkpoint.is_file() {
            return Ok(Vec::new());
        }
        let latest = Detector::open(&checkpoint, &EXPLAIN_DEVICE, &LoadOptions::default())?;
        let classes = &self.manifest.classes;
        let mut panel = Vec::new();
        for entry in panel_entries(&self.manifest) {
            let image = load_rgb(&self.manifest.absolute(entry))?;
            let (picture, explained) =
                latest.picture(&image, &self.cam, Target::Predicted, MIN_PICTURE_SIDE)?;
            let (said, score) = match &explained {
                Explained::Class(e) => (classes[e.predicted].clone(), e.probabilities[e.predicted]),
                Explained::Anomaly(s) => (latest.verdict(s.score).to_string(), s.score),
            };
            let truth = classes[entry.label].clone();
            panel.push((picture, CamCaption { truth, said, score }));
        }
        Ok(panel)
    }
}

/// A few fixed validation images, alternating between the classes, for the Training view's panel.
fn panel_entries(manifest: &Manifest) -> Vec<&Entry> {
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

/// A classifier's `predictions.csv` as the browser lists it; its classes must be the run's.
fn class_items(path: &Path, predictions: Predictions, classes: &[String]) -> Result<Vec<TestItem>> {
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

/// One scored image of a one-class run as the browser lists it: the kinds are its classes (see
/// [`TestItem::scored`]). The verdict is the file's (the score rounded to 6 decimals may sit on
/// the threshold).
fn browser_item(row: ScoredRow, threshold: f32) -> TestItem {
    TestItem {
        predicted: usize::from(row.flagged),
        ..TestItem::scored(row.path, row.anomalous, row.score, threshold)
    }
}

/// The model's layer table as the dashboard's Model view shows it (output as HxWxC).
fn layer_rows(rows: Vec<model::LayerSummary>) -> Vec<LayerRow> {
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

    use super::*;
    use crate::data::split::{Entry, Fractions};
    use crate::data::synth::render;

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
                source: None,
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
            sources: Vec::new(),
            source_fractions: Default::default(),
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
        for model in [run.best_model(), run.last_model()] {
            crate::model::testutil::write_untrained_checkpoint(&model, &CLASSES, 64);
        }
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
        let mut gallery = RunGallery::open(&run, Kind::Classifier).unwrap();
        // The browser's first picture: the recipe's method, layer and opacity.
        let spec = gallery.default_spec();
        assert_eq!(gallery.methods()[spec.method], "gradcam");
        assert_eq!(gallery.layers()[spec.layer], "fire9-concat");
        assert_eq!(spec.alpha_percent, 100);
        assert_eq!(gallery.test_items().unwrap().len(), 1);
        // Alpha 1 with the gray colormap: the heatmap alone, in gray.
        assert!(all_gray(&gallery.picture(0, &spec).unwrap()));
        let saved = gallery.save_picture(0, &spec).unwrap();
        let items = gallery.test_items().unwrap();
        let class = &gallery.classes()[items[0].truth];
        assert!(
            saved.ends_with(format!("pictures/{class}-2-gradcam-fire9-concat.png")),
            "{}",
            saved.display()
        );
        // The validation panel draws with the recipe's settings too.
        let panel = gallery.validation_cams(1).unwrap();
        assert_eq!(panel.len(), 2);
        assert!(panel.iter().all(|(picture, _)| all_gray(picture)));
    }

    #[test]
    fn browser_items_keep_the_score_and_order_by_margin() {
        let threshold = 0.5;
        let make = |anomalous: bool, score: f32| {
            browser_item(
                ScoredRow {
                    path: "x".into(),
                    truth: "c".into(),
                    anomalous,
                    score,
                    flagged: score > threshold,
                    source: None,
                },
                threshold,
            )
        };
        // A normal image scored 0.9 is a worse mistake than an anomaly scored 0.4, and both
        // are mistakes; a sure anomaly is far from the threshold.
        let false_alarm = make(false, 0.9);
        let missed = make(true, 0.4);
        assert!(false_alarm.loss > missed.loss && missed.loss > 0.0);
        assert!(!false_alarm.is_correct() && !missed.is_correct());
        let sure = make(true, 2.0);
        assert!(sure.is_correct() && sure.loss < 0.0 && sure.score > false_alarm.score);
        for (item, score) in [(false_alarm, 0.9), (missed, 0.4), (sure, 2.0)] {
            assert!((item.anomaly_score(threshold) - score).abs() < 1e-6);
        }
    }
}
