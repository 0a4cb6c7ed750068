//! The dashboard's pictures for a one-class run: the sample tiles, the backbone's summary, the
//! scored test images from `predictions.csv`, and anomaly maps over them in Grad-CAM's place. It
//! implements the dashboard's [`Gallery`], so the dashboard draws one-class runs through the same
//! job thread as Grad-CAM and knows nothing of the model.
//!
//! The browser's items use the two kinds as classes (`normal`, `anomaly`), made by
//! [`TestItem::scored`] against the threshold.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use anyhow::{Context, Result};
use image::RgbImage;

use crate::data::decode::{load_rgb, resize_exact};
use crate::data::samples::sample_grid;
use crate::explain::settings::CamSettings;
use crate::model;
use crate::run::event::Event;
use crate::run::log;
use crate::run::recipe::{DataRoots, Recipe};
use crate::run::RunDir;
use crate::tui::{Gallery, LayerRow, PictureSpec, TestItem};

use super::predictions::{self, ScoredRow};
use crate::detector::oneclass::model::OneClassModel;
use crate::detector::oneclass::{model_file, Settings};
use crate::train::fit::{overlay, OneClassReport, KINDS};

/// Pictures are shown at least this large, so that small images stay legible.
const MIN_PICTURE_SIDE: u32 = 227;

/// The name of the browser's one "method".
pub const METHOD: &str = "anomaly map";

/// Whether `run` is a one-class run: its model file says so, or (while it is still fitting) its
/// log begins with a fit.
pub fn is_oneclass_run(run: &RunDir) -> bool {
    if model_file::is_oneclass_file(&run.best_model()) {
        return true;
    }
    log::read_from(&run.metrics(), 0).is_ok_and(|read| {
        read.events
            .iter()
            .find(|e| !matches!(e, Event::Notice { .. }))
            .is_some_and(|e| matches!(e, Event::FitStarted(_)))
    })
}

/// One scored image as the browser lists it (see the module's notes).
/// The verdict is the file's (the score rounded to 6 decimals may sit on the threshold).
fn browser_item(row: ScoredRow, threshold: f32) -> TestItem {
    TestItem {
        predicted: usize::from(row.flagged),
        ..TestItem::scored(row.path, row.anomalous, row.score, threshold)
    }
}

pub struct OneClassGallery {
    /// The run, once known: at once for `watch`, when the fit announces it for a live fit.
    run: Arc<OnceLock<RunDir>>,
    data_roots: DataRoots,
    split_seed: u64,
    input_size: u32,
    /// The recipe's `[gradcam]` colours and opacity.
    cam: CamSettings,
    items: Vec<TestItem>,
    /// The model, loaded on first use and kept while its file is unchanged.
    model: Option<(SystemTime, OneClassModel)>,
}

impl OneClassGallery {
    /// The gallery of an existing run directory (`watch`).
    pub fn open(run: &RunDir) -> Result<OneClassGallery> {
        let recipe = Recipe::load(&run.recipe())?;
        let gallery = OneClassGallery::for_recipe(&recipe)
            .with_context(|| format!("{}", run.recipe().display()))?;
        gallery
            .run
            .set(run.clone())
            .expect("a new gallery has no run");
        Ok(gallery)
    }

    /// The gallery of a fit about to start with `recipe`, before its run directory exists: set
    /// the run in the returned cell when the fit announces it (its `fit_started` event). Until
    /// then there are no test images, and the samples come from the data folder.
    pub fn for_recipe(recipe: &Recipe) -> Result<OneClassGallery> {
        Ok(OneClassGallery {
            run: Arc::new(OnceLock::new()),
            data_roots: recipe.data.root.clone(),
            split_seed: recipe.data.split_seed,
            input_size: recipe.data.input_size,
            cam: recipe.gradcam.settings()?,
            items: Vec::new(),
            model: None,
        })
    }

    /// Where the run directory goes once it is known.
    pub fn run_cell(&self) -> Arc<OnceLock<RunDir>> {
        Arc::clone(&self.run)
    }

    fn run(&self) -> Result<&RunDir> {
        self.run
            .get()
            .context("the fit has not created its run directory yet")
    }

    fn model(&mut self) -> Result<&OneClassModel> {
        let path = self.run()?.best_model();
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .with_context(|| format!("no model yet ({} is missing)", path.display()))?;
        if self
            .model
            .as_ref()
            .is_none_or(|(seen, _)| *seen != modified)
        {
            self.model = Some((modified, model_file::load(&path)?));
        }
        Ok(&self.model.as_ref().expect("just loaded").1)
    }

    /// The threshold the predictions were judged with: the report's, else the model's.
    fn threshold(&mut self) -> Result<f32> {
        let report = self.run()?.report();
        if let Ok(text) = std::fs::read(&report) {
            if let Ok(report) = serde_json::from_slice::<OneClassReport>(&text) {
                return Ok(report.threshold.value);
            }
        }
        Ok(self.model()?.threshold.value)
    }
}

impl Gallery for OneClassGallery {
    fn classes(&self) -> Vec<String> {
        KINDS.iter().map(|k| k.to_string()).collect()
    }

    fn methods(&self) -> Vec<String> {
        vec![METHOD.into()]
    }

    fn layers(&self) -> Vec<String> {
        // Fits use the default layers (see `run::fit_run`).
        vec![Settings::default().layers.join(" + ")]
    }

    fn default_spec(&self) -> PictureSpec {
        PictureSpec {
            alpha_percent: (self.cam.alpha * 100.0).round() as u8,
            ..PictureSpec::default()
        }
    }

    fn samples(&mut self) -> Result<Option<RgbImage>> {
        let cached = self.run.get().map(RunDir::samples);
        if let Some(path) = cached.as_ref().filter(|p| p.is_file()) {
            return Ok(Some(
                image::open(path)
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .to_rgb8(),
            ));
        }
        let grid = sample_grid(&self.data_roots, 16, self.split_seed)?;
        if let Some(path) = cached {
            crate::imaging::write_png(&grid, &path)?;
        }
        Ok(Some(grid))
    }

    fn summary(&mut self) -> Result<Vec<LayerRow>> {
        // The backbone without a classifier head: the one-class model has none.
        let rows = model::summary(None, self.input_size)?;
        Ok(crate::app::gallery::layer_rows(rows))
    }

    fn test_items(&mut self) -> Result<Vec<TestItem>> {
        if self.items.is_empty() {
            let Some(run) = self.run.get() else {
                return Ok(Vec::new());
            };
            let Some(rows) = predictions::load(&run.predictions())? else {
                return Ok(Vec::new());
            };
            let threshold = self.threshold()?;
            self.items = rows
                .into_iter()
                .map(|row| browser_item(row, threshold))
                .collect();
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
        let original = load_rgb(&path)?;
        let image = resize_exact(&original, original.width().max(MIN_PICTURE_SIDE));
        if !spec.overlay {
            return Ok(image);
        }
        let colormap = self.cam.colormap;
        let model = self.model()?;
        let input = resize_exact(&original, model.settings().input_size);
        let scored = model.score(&[input])?;
        let scored = scored.first().context("the model scored no image")?;
        overlay(model, &image, scored, (colormap, spec.alpha()))
    }

    fn save_picture(&mut self, item: usize, spec: &PictureSpec) -> Result<PathBuf> {
        let picture = self.picture(item, spec)?;
        let stem = self.items[item]
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let name = if spec.overlay {
            format!("{stem}-anomaly.png")
        } else {
            format!("{stem}.png")
        };
        let path = self.run()?.path.join("pictures").join(name);
        crate::imaging::write_png(&picture, &path)?;
        Ok(path)
    }

    /// A fit has no validation rounds to explain.
    fn validation_cams(&mut self, _iteration: usize) -> Result<Vec<(RgbImage, String)>> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
