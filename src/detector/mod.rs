//! One type over every kind of model: a [`Detector`] is a classifier (fine-tuned SqueezeNet,
//! [`classifier`]) or a one-class model (PatchCore on SqueezeNet's features, [`oneclass`]),
//! opened from a model file. The kind of a file is decided here and nowhere else
//! ([`Kind::of_file`]); everything a command or the dashboard does with a model (class names,
//! input size, answering for image files, judging a labelled set, heatmaps, the names of their
//! pictures) goes through this type, so a third kind of model is one more variant here.
//!
//! - [`classifier`]: preprocessing, batched classification, Grad-CAM.
//! - [`oneclass`]: patch features, the memory bank, anomaly scores and maps, thresholds.
//! - [`evaluation`]: the answers on a labelled set, common to both kinds.

pub(crate) mod classifier;
pub(crate) mod evaluation;
pub mod familiarity;
pub mod oneclass;
pub mod unfamiliar;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, ensure, Context, Result};
use candle_core::Device;
use image::RgbImage;
use serde::Serialize;

use crate::data::decode::{load_rgb, resize_exact};
use crate::data::inputs::{read_each, FileOutcome};
use crate::data::loader::DecodedSet;
use crate::explain::methods::{Explanation, Method, Target};
use crate::explain::overlay::overlay;
use crate::explain::settings::{picture_name, CamSettings};
use crate::model::{LoadOptions, CAM_LAYERS};

use classifier::{ClassAnswer, Classifier};
use evaluation::{in_memory, AnomalyVerdicts, Evaluation, Verdicts, KINDS};
use oneclass::model::Scored;
use oneclass::OneClassModel;

/// The kinds of model, known before a model file exists (a run still training or fitting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Classifier,
    OneClass,
}

impl Kind {
    /// The kind of the model file at `path`, read from its header: a one-class model file says
    /// so; anything else (an unreadable file included) is taken for a classifier checkpoint,
    /// whose strict loader then says what is wrong with it.
    pub fn of_file(path: &Path) -> Kind {
        if oneclass::model_file::is_oneclass_file(path) {
            Kind::OneClass
        } else {
            Kind::Classifier
        }
    }

    /// The classes the dashboard sorts test images into: the data's for a classifier, the two
    /// kinds (normal, anomaly) for a one-class model.
    pub fn shown_classes(self, data_classes: &[String]) -> Vec<String> {
        match self {
            Kind::Classifier => data_classes.to_vec(),
            Kind::OneClass => KINDS.iter().map(|k| k.to_string()).collect(),
        }
    }

    /// The heatmap methods the browser cycles through.
    pub fn heatmap_methods(self) -> Vec<String> {
        match self {
            Kind::Classifier => Method::ALL.iter().map(|m| m.name().to_string()).collect(),
            Kind::OneClass => vec![oneclass::MAP_METHOD.to_string()],
        }
    }

    /// The layers the browser cycles through: the seed's relu_conv10 first, then from the
    /// deepest Fire module down; a one-class model's feature layers as one entry (fits use the
    /// default layers).
    pub fn heatmap_layers(self) -> Vec<String> {
        match self {
            Kind::Classifier => CAM_LAYERS.iter().rev().map(|l| l.to_string()).collect(),
            Kind::OneClass => vec![oneclass::Settings::default().layers.join(" + ")],
        }
    }

    /// What judging an image is called, as a verb and done ("classify", "classified").
    pub fn judging(self) -> (&'static str, &'static str) {
        match self {
            Kind::Classifier => ("classify", "classified"),
            Kind::OneClass => ("score", "scored"),
        }
    }

    /// Classes of the network's own head: a classifier's, none for the one-class backbone.
    pub fn head_outputs(self, classes: usize) -> Option<usize> {
        match self {
            Kind::Classifier => Some(classes),
            Kind::OneClass => None,
        }
    }
}

/// A model of either kind, with the file it was read from.
pub struct Detector {
    /// The model file.
    pub path: PathBuf,
    pub model: Model,
    /// The summary of its training images' features, when its file carries one (files written
    /// before summaries were kept do not).
    pub familiarity: Option<familiarity::Familiarity>,
}

/// The model itself, by kind.
// One model per command or gallery: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Model {
    Classifier(Classifier),
    OneClass(OneClassModel),
}

/// One image file's answer (`predict`), as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Class(ClassAnswer),
    Anomaly(AnomalyAnswer),
}

/// A one-class model's answer for one image file.
#[derive(Debug, Clone, Serialize)]
pub struct AnomalyAnswer {
    pub path: PathBuf,
    pub score: f32,
    pub threshold: f32,
    /// "normal" or "anomaly".
    pub verdict: String,
    /// Whether the input was like the fit's images and of a size the model can judge.
    #[serde(flatten)]
    pub input: unfamiliar::InputCheck,
}

/// One image's heatmap, as each kind makes it.
pub enum Explained {
    /// Grad-CAM (or another method) of one class.
    Class(Explanation),
    /// The anomaly map: every patch's distance to the bank.
    Anomaly(Scored),
}

impl Detector {
    /// Opens the model file at `file` as the kind it is ([`Kind::of_file`]). A classifier's
    /// class names and input size come from the file, else from `options`; a one-class model
    /// file holds everything it needs and runs on the CPU.
    pub fn open(file: &Path, device: &Device, options: &LoadOptions) -> Result<Detector> {
        let model = match Kind::of_file(file) {
            Kind::Classifier => Model::Classifier(Classifier::open(file, device, options)?),
            Kind::OneClass => {
                refuse_flags(
                    file,
                    &[
                        ("--classes", options.classes.is_some()),
                        ("--input-size", options.input_size.is_some()),
                    ],
                    "its file records its classes and input size",
                )?;
                Model::OneClass(oneclass::model_file::load(file)?)
            }
        };
        Ok(Detector {
            path: file.to_path_buf(),
            model,
            familiarity: familiarity::Familiarity::read(file)?,
        })
    }

    pub fn kind(&self) -> Kind {
        match self.model {
            Model::Classifier(_) => Kind::Classifier,
            Model::OneClass(_) => Kind::OneClass,
        }
    }

    /// Class names: a classifier's outputs; the classes of the data a one-class model was
    /// fitted on.
    pub fn classes(&self) -> &[String] {
        match &self.model {
            Model::Classifier(c) => &c.classes,
            Model::OneClass(m) => &m.classes,
        }
    }

    /// The side images are resized to.
    pub fn input_size(&self) -> u32 {
        match &self.model {
            Model::Classifier(c) => c.input_size,
            Model::OneClass(m) => m.settings().input_size,
        }
    }

    /// The answer for each image file, in order: a file that cannot be read or decoded, or whose
    /// output is not a finite number, is a failed outcome with the reason, and the others are
    /// still answered. Errors only when the model itself cannot run.
    pub fn answer_files(&self, paths: &[PathBuf]) -> Result<Vec<FileOutcome<Answer>>> {
        let mut answers = self.answers_alone(paths)?;
        self.check_inputs(&mut answers)?;
        Ok(answers)
    }

    /// [`Detector::answer_files`] before the inputs are checked.
    fn answers_alone(&self, paths: &[PathBuf]) -> Result<Vec<FileOutcome<Answer>>> {
        match &self.model {
            Model::Classifier(c) => Ok(c
                .classify_files(paths)?
                .into_iter()
                .map(|outcome| outcome.map(Answer::Class))
                .collect()),
            Model::OneClass(m) => {
                let size = m.settings().input_size;
                let (images, read) = read_each(paths, |p| Ok(resize_exact(&load_rgb(p)?, size)));
                let scored = m.score(&images)?;
                Ok(paths
                    .iter()
                    .zip(read)
                    .map(|(path, read)| match read.map(|i| scored[i].score) {
                        Ok(score) if score.is_finite() => {
                            FileOutcome::Done(Answer::Anomaly(AnomalyAnswer {
                                path: path.clone(),
                                score,
                                threshold: m.threshold.value,
                                verdict: KINDS[usize::from(m.is_anomalous(score))].into(),
                                input: Default::default(),
                            }))
                        }
                        Ok(score) => FileOutcome::Failed {
                            path: path.clone(),
                            error: format!(
                                "its anomaly score is {score}: no verdict; the model is broken"
                            ),
                        },
                        Err(error) => FileOutcome::Failed {
                            path: path.clone(),
                            error,
                        },
                    })
                    .collect())
            }
        }
    }

    /// Judges a set decoded at the input size whose labels index `classes` (the data's class
    /// names). A classifier needs them to be its own classes, in its order (see
    /// [`Detector::label_of`]); a one-class model needs its normal class among them.
    pub fn evaluate(&self, set: &Arc<DecodedSet>, classes: &[String]) -> Result<Evaluation> {
        let verdicts = match &self.model {
            Model::Classifier(c) => Verdicts::Classes(c.classify_set(set)?),
            Model::OneClass(m) => {
                let normal = classes
                    .iter()
                    .position(|c| *c == m.normal_class)
                    .with_context(|| {
                        format!(
                            "the data has no class '{}' (classes: {})",
                            m.normal_class,
                            classes.join(", ")
                        )
                    })?;
                let started = Instant::now();
                let scored = m.score(in_memory(set)?)?;
                let seconds = started.elapsed().as_secs_f64();
                Verdicts::Anomaly(AnomalyVerdicts {
                    normal_class: m.normal_class.clone(),
                    normal,
                    scores: scored.iter().map(|s| s.score).collect(),
                    threshold: m.threshold.clone(),
                    scan_threshold: m.scan_threshold.clone(),
                    images_per_s: set.len() as f64 / seconds.max(1e-9),
                })
            }
        };
        Ok(Evaluation::of_set(set, classes.to_vec(), verdicts))
    }

    /// Checks that data with `classes` can be judged: a classifier needs each class among its own
    /// (on a run's split, `split`, all of them in its order); a one-class model needs its normal
    /// class. `data` names the data in errors.
    pub fn check_classes(&self, classes: &[String], split: bool, data: &str) -> Result<()> {
        match &self.model {
            Model::Classifier(c) if split => ensure!(
                c.classes == classes,
                "{} classifies {:?} but the run's data has classes {:?}",
                self.path.display(),
                c.classes,
                classes
            ),
            Model::Classifier(c) => {
                if let Some(name) = classes.iter().find(|name| !c.classes.contains(name)) {
                    bail!(
                        "{data}: class folder '{name}' is not one of the model's classes {:?}",
                        c.classes
                    );
                }
            }
            Model::OneClass(m) => {
                if !classes.contains(&m.normal_class) {
                    let missing = anyhow!(
                        "the data has no class '{}' (classes: {})",
                        m.normal_class,
                        classes.join(", ")
                    );
                    return Err(if split {
                        missing
                    } else {
                        missing.context(format!("{data} must hold the model's normal class folder"))
                    });
                }
            }
        }
        Ok(())
    }

    /// The label a data class gets in a set this detector judges: a classifier's output index
    /// of that class (None when it has no such class); a one-class model keeps the data's own
    /// labels, `data_label`.
    pub fn label_of(&self, class: &str, data_label: usize) -> Option<usize> {
        match &self.model {
            Model::Classifier(c) => c.classes.iter().position(|c| c == class),
            Model::OneClass(_) => Some(data_label),
        }
    }

    /// The classes an evaluation of data with `classes` counts in: a classifier's own outputs
    /// (the data's labels are mapped onto them with [`Detector::label_of`]), the data's own for
    /// a one-class model.
    pub fn judged_classes(&self, classes: &[String]) -> Vec<String> {
        match &self.model {
            Model::Classifier(c) => c.classes.clone(),
            Model::OneClass(_) => classes.to_vec(),
        }
    }

    /// Heatmaps of `images` (any size): a classifier's explanation of `target` with `cam`, a
    /// one-class model's anomaly map.
    pub fn explain(
        &self,
        images: &[RgbImage],
        cam: &CamSettings,
        target: Target,
    ) -> Result<Vec<Explained>> {
        match &self.model {
            Model::Classifier(c) => Ok(c
                .explain(images, cam, target)?
                .into_iter()
                .map(Explained::Class)
                .collect()),
            Model::OneClass(m) => {
                let size = m.settings().input_size;
                let inputs: Vec<RgbImage> = images.iter().map(|i| resize_exact(i, size)).collect();
                Ok(m.score(&inputs)?
                    .into_iter()
                    .map(Explained::Anomaly)
                    .collect())
            }
        }
    }

    /// `picture` with the heatmap of `explained` drawn over it in `cam`'s colours and opacity
    /// (a one-class map with fixed limits: the threshold is the middle of the colour table).
    pub fn draw(
        &self,
        picture: &RgbImage,
        explained: &Explained,
        cam: &CamSettings,
    ) -> Result<RgbImage> {
        match (&self.model, explained) {
            (Model::OneClass(m), Explained::Anomaly(scored)) => oneclass::map::draw_over(
                picture,
                &m.anomaly_map(scored),
                m.threshold.value,
                cam.colormap,
                cam.alpha,
            ),
            (_, Explained::Class(e)) => overlay(picture, &e.cam, &cam.style()),
            (Model::Classifier(_), Explained::Anomaly(_)) => {
                anyhow::bail!("a classifier has no anomaly maps")
            }
        }
    }

    /// A test image `image` with its heatmap over it, as the dashboard shows it: square, at
    /// least `min_side` pixels (small images stay legible).
    pub fn picture(
        &self,
        image: &RgbImage,
        cam: &CamSettings,
        target: Target,
        min_side: u32,
    ) -> Result<(RgbImage, Explained)> {
        let explained = self
            .explain(std::slice::from_ref(image), cam, target)?
            .pop()
            .context("the model explained no image")?;
        let side = match &self.model {
            Model::Classifier(c) => c.input_size.max(min_side),
            Model::OneClass(_) => image.width().max(min_side),
        };
        let picture = self.draw(&resize_exact(image, side), &explained, cam)?;
        Ok((picture, explained))
    }

    /// The figure panel's title: the predicted class and its probability, or the verdict and
    /// the anomaly score.
    pub fn title(&self, explained: &Explained) -> String {
        match (&self.model, explained) {
            (Model::OneClass(_), Explained::Anomaly(s)) => {
                format!("{} {:.3}", self.verdict(s.score), s.score)
            }
            (_, Explained::Class(e)) => crate::explain::figure::title(
                &self.classes()[e.predicted],
                e.probabilities[e.predicted],
            ),
            (Model::Classifier(_), Explained::Anomaly(s)) => format!("{:.3}", s.score),
        }
    }

    /// A one-class verdict in words ("normal", "anomaly"); classifiers have none.
    pub fn verdict(&self, score: f32) -> &'static str {
        match &self.model {
            Model::OneClass(m) => KINDS[usize::from(m.is_anomalous(score))],
            Model::Classifier(_) => "",
        }
    }

    /// The file name of a saved heatmap picture of the image `stem`: the method and layer for a
    /// classifier (so pictures of other settings never overwrite each other), `-anomaly` for a
    /// one-class model.
    pub fn picture_name(&self, stem: &str, cam: &CamSettings) -> String {
        self.kind().picture_name(stem, cam)
    }
}

impl Kind {
    /// See [`Detector::picture_name`].
    pub fn picture_name(self, stem: &str, cam: &CamSettings) -> String {
        match self {
            Kind::Classifier => picture_name(stem, cam.method, &cam.layer),
            Kind::OneClass => format!("{stem}-anomaly.png"),
        }
    }
}

/// Refuses flags given for a classifier that a one-class model file has no use for: they would
/// otherwise be ignored without a word (`flags` pairs each with whether it was given).
pub fn refuse_flags(model_path: &Path, flags: &[(&str, bool)], why: &str) -> Result<()> {
    let given: Vec<&str> = flags.iter().filter(|(_, g)| *g).map(|(f, _)| *f).collect();
    if let Some((last, first)) = given.split_last() {
        let (named, verb) = if first.is_empty() {
            (last.to_string(), "does")
        } else {
            (format!("{} and {last}", first.join(", ")), "do")
        };
        bail!(
            "{named} {verb} not apply to a one-class model ({}): {why}",
            model_path.display()
        );
    }
    Ok(())
}

/// The patch distances of a one-class heatmap as rows (before stretching and smoothing), as
/// `gradcam --json` prints them.
pub fn patch_rows(scored: &Scored) -> Vec<Vec<f32>> {
    scored
        .patch_scores
        .chunks(scored.grid)
        .map(<[f32]>::to_vec)
        .collect()
}
