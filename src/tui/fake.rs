//! A gallery made of synthetic pictures (gradients, checkerboards) and fixed test results, so the
//! dashboard can be tested without a model or image files. It records every call it receives.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use image::{Rgb, RgbImage};

use crate::app::gallery::{CamCaption, Gallery, LayerRow, PictureSpec, TestItem};

pub struct FakeGallery {
    items: Vec<TestItem>,
    pub calls: Arc<Mutex<Vec<String>>>,
    /// Every picture request fails, as with a dataset that went missing.
    pub failing: bool,
    /// A one-class run's gallery: the kinds as classes, anomaly maps as the one method.
    one_class: bool,
}

impl FakeGallery {
    /// `count` test items over two classes; items 3 and 8 (when present) are misclassified. Scores
    /// and losses differ per item so sorting has something to do.
    pub fn new(count: usize) -> FakeGallery {
        let items = (0..count)
            .map(|i| {
                let truth = i % 2;
                let wrong = i == 3 || i == 8;
                let predicted = if wrong { 1 - truth } else { truth };
                let score = 0.55 + ((i * 37) % 45) as f32 / 100.0;
                let p_truth = if wrong { 1.0 - score } else { score };
                TestItem {
                    path: PathBuf::from(format!("test/{}/img{i:03}.jpg", CLASSES[truth])),
                    truth,
                    predicted,
                    score,
                    loss: -p_truth.ln(),
                }
            })
            .collect();
        FakeGallery {
            items,
            calls: Arc::default(),
            failing: false,
            one_class: false,
        }
    }

    /// `count` scored test images of a one-class run judged at [`ONE_CLASS_THRESHOLD`]: even
    /// items normal, odd ones anomalous, with items 3 and 8 on the wrong side of the threshold.
    pub fn one_class(count: usize) -> FakeGallery {
        let items = (0..count)
            .map(|i| {
                let anomalous = i % 2 == 1;
                let spread = ((i * 37) % 45) as f32 / 100.0;
                let score = match (anomalous, i == 3 || i == 8) {
                    (false, false) => 0.1 + spread,
                    (true, false) => 0.6 + spread,
                    (false, true) => 0.7,
                    (true, true) => 0.4,
                };
                TestItem::scored(
                    PathBuf::from(format!(
                        "test/{}/img{i:03}.jpg",
                        CLASSES[usize::from(anomalous)]
                    )),
                    anomalous,
                    score,
                    ONE_CLASS_THRESHOLD,
                )
            })
            .collect();
        FakeGallery {
            items,
            calls: Arc::default(),
            failing: false,
            one_class: true,
        }
    }

    pub fn items(&self) -> &[TestItem] {
        &self.items
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

const CLASSES: [&str; 2] = ["Negative", "Positive"];

/// The threshold of the fake one-class run.
pub const ONE_CLASS_THRESHOLD: f32 = 0.52;

fn gradient(width: u32, height: u32, tint: [u8; 3]) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let shade = (x * 255 / width.max(1)) as u8 / 2 + (y * 255 / height.max(1)) as u8 / 2;
        Rgb([
            shade / 2 + tint[0] / 2,
            shade / 2 + tint[1] / 2,
            shade / 2 + tint[2] / 2,
        ])
    })
}

impl Gallery for FakeGallery {
    fn classes(&self) -> Vec<String> {
        if self.one_class {
            return vec!["normal".into(), "anomaly".into()];
        }
        CLASSES.iter().map(|c| c.to_string()).collect()
    }

    fn methods(&self) -> Vec<String> {
        if self.one_class {
            return vec!["anomaly map".into()];
        }
        vec!["Grad-CAM".into(), "Grad-CAM++".into()]
    }

    fn layers(&self) -> Vec<String> {
        if self.one_class {
            return vec!["fire3-concat + fire5-concat".into()];
        }
        vec!["relu_conv10".into(), "fire9".into()]
    }

    fn samples(&mut self) -> Result<Option<RgbImage>> {
        self.record("samples".into());
        if self.failing {
            bail!("cannot read data/train: no such directory");
        }
        Ok(Some(RgbImage::from_fn(128, 128, |x, y| {
            if (x / 16 + y / 16) % 2 == 0 {
                Rgb([230, 230, 230])
            } else {
                Rgb([40, 40, 40])
            }
        })))
    }

    fn summary(&mut self) -> Result<Vec<LayerRow>> {
        self.record("summary".into());
        let mut rows = vec![LayerRow {
            name: "features.0".into(),
            kind: "Conv2d 3x3/2".into(),
            output: "64x113x113".into(),
            params: 1_792,
        }];
        for (i, fire) in [3, 4, 6, 7, 9, 10, 11, 12].iter().enumerate() {
            rows.push(LayerRow {
                name: format!("features.{fire}"),
                kind: "Fire".into(),
                output: format!("{}x27x27", 128 + 64 * i),
                params: 10_000 * (i + 1),
            });
        }
        rows.push(LayerRow {
            name: "classifier.1".into(),
            kind: "Conv2d 1x1".into(),
            output: "2x13x13".into(),
            params: 1_026,
        });
        Ok(rows)
    }

    fn test_items(&mut self) -> Result<Vec<TestItem>> {
        self.record("test_items".into());
        Ok(self.items.clone())
    }

    fn picture(&mut self, item: usize, view: &PictureSpec) -> Result<RgbImage> {
        self.record(format!("picture {item}"));
        if item >= self.items.len() || self.failing {
            bail!("cannot read test item {item}: no such file");
        }
        let heat = if view.overlay {
            (view.alpha() * 255.0) as u8
        } else {
            0
        };
        Ok(gradient(
            96,
            96,
            [heat, (item * 20 % 256) as u8, 255 - heat],
        ))
    }

    fn save_picture(&mut self, item: usize, view: &PictureSpec) -> Result<PathBuf> {
        self.record(format!(
            "save {item} overlay={} alpha={}",
            view.overlay, view.alpha_percent
        ));
        Ok(PathBuf::from(format!("run/pictures/img{item:03}.png")))
    }

    fn validation_cams(&mut self, iteration: usize) -> Result<Vec<(RgbImage, CamCaption)>> {
        self.record(format!("validation_cams {iteration}"));
        Ok((0..3)
            .map(|i| {
                let caption = CamCaption {
                    truth: CLASSES[i % 2].to_string(),
                    said: CLASSES[(i + 1) % 2].to_string(),
                    score: iteration as f32 / 100.0,
                };
                (gradient(64, 64, [200, 40 * i as u8, 0]), caption)
            })
            .collect())
    }
}
