//! Heatmaps of decisions, for a model of either kind: an overlay per image file and a figure of
//! them all, or the figure of a run's test images (the seed's 3 x 4 figure). A classifier's maps
//! are Grad-CAM's (or another method's) of one class; a one-class model's are its anomaly maps.
//! One figure writer serves both: the images are chosen, drawn, named and put together the same
//! way, and only the map and the words under it come from the kind.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Result};
use candle_core::Device;
use image::RgbImage;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::core::warn::warn;
use crate::data::decode::load_rgb;
use crate::data::split::Manifest;
use crate::detector::{patch_rows, refuse_flags, Detector, Explained, Kind, Model};
use crate::explain::colormap::Colormap;
use crate::explain::figure::figure;
use crate::explain::methods::{Method, Target};
use crate::explain::settings::{file_safe, CamSettings};
use crate::imaging::write_png;
use crate::model::LoadOptions;
use crate::run::recipe::Recipe;
use crate::run::RunDir;

/// Images per forward/backward pass: enough to amortise a pass, little enough for memory.
const IMAGES_AT_ONCE: usize = 16;

/// What to explain and how: image files with a model (`model`, `images`), or `count` random
/// test images of a run (`run`); the rest overrides the recipe's `[gradcam]` keys.
#[derive(Debug, Clone, Default)]
pub struct HeatmapRequest {
    /// A model file or a run directory (its best model and recipe), with `images`.
    pub model: Option<PathBuf>,
    pub images: Vec<PathBuf>,
    /// A run whose test images are explained; the figure goes into it.
    pub run: Option<PathBuf>,
    pub count: usize,
    /// Only test images the model gets wrong.
    pub misclassified: bool,
    /// Seed of the choice of test images.
    pub seed: u64,
    /// Folder for the overlays and the figure of image files [default: gradcam].
    pub out: Option<PathBuf>,
    /// The class to explain, by name or output index (classifiers).
    pub class: Option<String>,
    pub method: Option<Method>,
    pub layer: Option<String>,
    pub alpha: Option<f32>,
    pub colormap: Option<Colormap>,
    /// Class names and input size for a checkpoint that lacks them.
    pub options: LoadOptions,
}

/// One image's heatmap, as `--json` prints it: a classifier's explanation or a one-class map.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum HeatmapRecord {
    Class(CamOut),
    Anomaly(MapOut),
}

/// A classifier's explanation of one image.
#[derive(Debug, Serialize)]
pub struct CamOut {
    pub path: PathBuf,
    /// The class explained, by name.
    pub label: String,
    /// The class explained, as the network's output index.
    pub index: usize,
    /// The explained class's probability.
    pub score: f32,
    /// The class the network predicts, and its probability.
    pub predicted: String,
    pub predicted_score: f32,
    /// The true class, when the image comes from a run's test split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<String>,
    pub method: String,
    pub layer: String,
    /// The map at the layer's resolution, rows of numbers in [0, 1], before resizing.
    pub cam: Vec<Vec<f32>>,
    /// The overlay PNG written for this image (image mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay: Option<PathBuf>,
}

/// A one-class model's anomaly map of one image.
#[derive(Debug, Serialize)]
pub struct MapOut {
    pub path: PathBuf,
    pub score: f32,
    pub verdict: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<String>,
    /// Patch distances on the feature grid, rows of numbers (before upsampling and smoothing).
    pub patch_scores: Vec<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay: Option<PathBuf>,
}

/// What a heatmap request produced.
pub struct Figure {
    pub records: Vec<HeatmapRecord>,
    /// The figure of every panel, also written to `path`.
    pub figure: RgbImage,
    pub path: PathBuf,
    /// The settings the maps were made with.
    pub cam: CamSettings,
}

/// Heatmaps as `request` asks: of a run's test images, or of image files. None when only
/// mistakes were asked for and the model makes none.
pub fn heatmaps(request: &HeatmapRequest, device: &Device) -> Result<Option<Figure>> {
    match &request.run {
        Some(run) => explain_run(request, run, device),
        None => explain_files(request, device).map(Some),
    }
}

/// The heatmap settings: the recipe's `[gradcam]` keys, each replaced by its flag when given.
fn cam_settings(request: &HeatmapRequest, recipe: &Recipe) -> Result<CamSettings> {
    recipe.gradcam.settings()?.with_overrides(
        request.layer.as_deref(),
        request.method,
        request.alpha,
        request.colormap,
    )
}

/// Image mode: an overlay PNG per image and the figure, in `out` (default `gradcam/`). The
/// recipe is the run's when the model is a run directory, else the built-in one.
pub fn explain_files(request: &HeatmapRequest, device: &Device) -> Result<Figure> {
    let Some(model_arg) = &request.model else {
        bail!("give --model MODEL with the images, or --run RUN")
    };
    ensure!(!request.images.is_empty(), "no images given to explain");
    let (detector, run) = super::open_model(model_arg, device, &request.options)?;
    refuse_class_choices(&detector, request)?;
    let recipe = match &run {
        Some(run) => Recipe::load(&run.recipe())?,
        None => Recipe::default(),
    };
    let cam = cam_settings(request, &recipe)?;
    let target = target_class(&detector, request.class.as_deref())?;
    let out_dir = request
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("gradcam"));
    let mut names = HashSet::new();
    let mut panels = Vec::with_capacity(request.images.len());
    let mut records = Vec::with_capacity(request.images.len());
    for chunk in request.images.chunks(IMAGES_AT_ONCE) {
        let images = chunk
            .iter()
            .map(|p| load_rgb(p))
            .collect::<Result<Vec<_>>>()?;
        let explained = detector.explain(&images, &cam, target)?;
        for ((path, image), e) in chunk.iter().zip(&images).zip(&explained) {
            let picture = detector.draw(image, e, &cam)?;
            let file = out_dir.join(unique_name(&detector, path, &cam, &mut names));
            write_png(&picture, &file)?;
            panels.push((picture, detector.title(e)));
            records.push(record(&detector, path, None, e, &cam, Some(file)));
        }
    }
    let path = out_dir.join(match detector.kind() {
        Kind::Classifier => format!("grid-{}-{}.png", file_safe(cam.method), cam.layer),
        Kind::OneClass => "grid-anomaly.png".into(),
    });
    finish(records, &panels, path, cam)
}

/// Run mode: the figure of `count` random test images of a run (or only those the model gets
/// wrong), written into the run directory, with the run's recipe. None when `misclassified`
/// finds no mistakes.
pub fn explain_run(
    request: &HeatmapRequest,
    run: &Path,
    device: &Device,
) -> Result<Option<Figure>> {
    ensure!(
        request.images.is_empty(),
        "give either --run RUN or image files, not both"
    );
    ensure!(request.count > 0, "--count must be at least 1");
    let run = RunDir::open(run)?;
    let detector = Detector::open(&run.best_model(), device, &request.options)?;
    refuse_class_choices(&detector, request)?;
    let cam = cam_settings(request, &Recipe::load(&run.recipe())?)?;
    let manifest = Manifest::load(&run.manifest())?;
    let description = format!("test split of {}", run.path.display());
    detector.check_classes(&manifest.classes, true, &description)?;
    ensure!(
        !manifest.test.is_empty(),
        "{} has an empty test split",
        run.manifest().display()
    );
    let target = target_class(&detector, request.class.as_deref())?;
    // A fixed random order of the test split; the first `count` readable images (only mistakes:
    // the first `count` the model gets wrong), explained a batch at a time.
    let mut order: Vec<usize> = (0..manifest.test.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(request.seed));
    let mut panels = Vec::with_capacity(request.count);
    let mut records = Vec::with_capacity(request.count);
    for chunk in order.chunks(IMAGES_AT_ONCE) {
        let mut paths = Vec::with_capacity(chunk.len());
        let mut images = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let path = manifest.absolute(&manifest.test[i]);
            match load_rgb(&path) {
                Ok(image) => {
                    images.push(image);
                    paths.push((path, manifest.test[i].label));
                }
                Err(e) => warn(format!("skipping a test image: {e:#}")),
            }
        }
        let explained = detector.explain(&images, &cam, target)?;
        for (((path, truth), image), e) in paths.iter().zip(&images).zip(&explained) {
            let mistake = is_mistake(e, *truth);
            if records.len() == request.count || (request.misclassified && !mistake) {
                continue;
            }
            panels.push((detector.draw(image, e, &cam)?, detector.title(e)));
            let truth = &manifest.classes[*truth];
            records.push(record(&detector, path, Some(truth), e, &cam, None));
        }
        if records.len() == request.count {
            break;
        }
    }
    if records.is_empty() {
        ensure!(
            request.misclassified,
            "none of the test images of {} could be read",
            run.path.display()
        );
        return Ok(None);
    }
    let which = if request.misclassified {
        "gradcam-misclassified"
    } else {
        "gradcam"
    };
    let name = match detector.kind() {
        Kind::Classifier => format!("{which}-{}-{}.png", file_safe(cam.method), cam.layer),
        Kind::OneClass => "anomaly-maps.png".into(),
    };
    finish(records, &panels, run.path.join(name), cam).map(Some)
}

/// A one-class model's map is the anomaly map: the choices of a classifier's explanation are
/// refused with the reason rather than ignored.
fn refuse_class_choices(detector: &Detector, request: &HeatmapRequest) -> Result<()> {
    if detector.kind() != Kind::OneClass {
        return Ok(());
    }
    refuse_flags(
        &detector.path,
        &[
            ("--method", request.method.is_some()),
            ("--layer", request.layer.is_some()),
            ("--class", request.class.is_some()),
            ("--misclassified", request.misclassified),
        ],
        "its map is the anomaly map (each patch's distance to the normal bank), not a \
         Grad-CAM of a class at a layer",
    )
}

/// `--class`: for a classifier, a class name (exact, else ignoring case) or an output index;
/// none means each image's predicted class. A one-class model has one map per image.
fn target_class(detector: &Detector, class: Option<&str>) -> Result<Target> {
    let (Some(wanted), Model::Classifier(_)) = (class, &detector.model) else {
        return Ok(Target::Predicted);
    };
    let classes = detector.classes();
    if let Some(i) = crate::core::classes::find(classes, wanted) {
        return Ok(Target::Class(i));
    }
    if let Ok(i) = wanted.parse::<usize>() {
        ensure!(
            i < classes.len(),
            "class index {i} is out of range: the model has {} classes",
            classes.len()
        );
        return Ok(Target::Class(i));
    }
    let listed = crate::core::classes::listed(
        classes,
        &format!("; an index 0..{} works too", classes.len()),
    );
    bail!("unknown class {wanted:?}; the model's classes are: {listed}")
}

/// Whether a classifier gets a test image of class `truth` wrong (`--misclassified`, which a
/// one-class model refuses).
fn is_mistake(e: &Explained, truth: usize) -> bool {
    match e {
        Explained::Class(e) => e.predicted != truth,
        Explained::Anomaly(_) => false,
    }
}

fn record(
    detector: &Detector,
    path: &Path,
    truth: Option<&String>,
    e: &Explained,
    cam: &CamSettings,
    overlay: Option<PathBuf>,
) -> HeatmapRecord {
    match e {
        Explained::Class(e) => {
            let classes = detector.classes();
            HeatmapRecord::Class(CamOut {
                path: path.to_path_buf(),
                label: classes[e.class].clone(),
                index: e.class,
                score: e.probabilities[e.class],
                predicted: classes[e.predicted].clone(),
                predicted_score: e.probabilities[e.predicted],
                truth: truth.cloned(),
                method: cam.method.name().to_string(),
                layer: cam.layer.clone(),
                cam: e.cam.rows(),
                overlay,
            })
        }
        Explained::Anomaly(s) => HeatmapRecord::Anomaly(MapOut {
            path: path.to_path_buf(),
            score: s.score,
            verdict: detector.verdict(s.score).to_string(),
            truth: truth.cloned(),
            patch_scores: patch_rows(s),
            overlay,
        }),
    }
}

fn finish(
    records: Vec<HeatmapRecord>,
    panels: &[(RgbImage, String)],
    path: PathBuf,
    cam: CamSettings,
) -> Result<Figure> {
    let figure = figure(panels);
    write_png(&figure, &path)?;
    Ok(Figure {
        records,
        figure,
        path,
        cam,
    })
}

/// The picture's file name ([`Detector::picture_name`]), with a counter after the stem when two
/// images share one.
fn unique_name(
    detector: &Detector,
    path: &Path,
    cam: &CamSettings,
    taken: &mut HashSet<String>,
) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let mut name = detector.picture_name(&stem, cam);
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = detector.picture_name(&format!("{stem}-{n}"), cam);
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use crate::data::split::Manifest;

    use super::*;
    use crate::data::split::{Entry, Fractions};
    use crate::data::synth::render;
    use crate::explain::colormap::Colormap;
    use crate::explain::methods::Method;

    const SIDE: u32 = 64;
    const CLASSES: [&str; 2] = ["Negative", "Positive"];

    /// A fresh 2-class checkpoint for 64 px inputs.
    fn checkpoint(path: &Path) {
        crate::model::testutil::write_untrained_checkpoint(path, &CLASSES, SIDE);
    }

    /// A synthetic image (with a crack for odd `i`) saved as PNG at `path`.
    fn picture(path: &Path, i: u64, side: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        render(i, side, i % 2 == 1).image.save(path).unwrap();
    }

    fn args(model: Option<PathBuf>, images: Vec<PathBuf>, out: Option<PathBuf>) -> HeatmapRequest {
        HeatmapRequest {
            model,
            images,
            count: 12,
            out,
            ..HeatmapRequest::default()
        }
    }

    /// The classifier's records of a figure.
    fn cams(figure: &Figure) -> Vec<&CamOut> {
        figure
            .records
            .iter()
            .map(|r| match r {
                HeatmapRecord::Class(c) => c,
                HeatmapRecord::Anomaly(_) => panic!("a classifier made an anomaly map"),
            })
            .collect()
    }

    #[test]
    fn image_mode_writes_overlays_and_figure_and_reports_the_json_shape() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model.safetensors");
        checkpoint(&model);
        // Two images share a stem; one is larger than the network's input.
        let images = vec![
            dir.path().join("a/crack.png"),
            dir.path().join("b/crack.png"),
            dir.path().join("c.png"),
        ];
        picture(&images[0], 1, SIDE);
        picture(&images[1], 2, SIDE);
        picture(&images[2], 3, 100);
        let out = dir.path().join("out");
        let outcome = explain_files(
            &args(Some(model), images.clone(), Some(out.clone())),
            &Device::Cpu,
        )
        .unwrap();

        let json = serde_json::to_value(&outcome.records).unwrap();
        let items = json.as_array().unwrap();
        assert_eq!(items.len(), 3);
        for (item, path) in items.iter().zip(&images) {
            let keys: Vec<&str> = item
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            for key in [
                "path",
                "label",
                "index",
                "score",
                "predicted",
                "method",
                "layer",
                "cam",
                "overlay",
            ] {
                assert!(keys.contains(&key), "missing {key} in {item}");
            }
            assert!(
                !keys.contains(&"truth"),
                "image mode has no true class: {item}"
            );
            assert_eq!(item["path"], path.display().to_string());
            let index = item["index"].as_u64().unwrap() as usize;
            assert_eq!(item["label"], CLASSES[index]);
            assert_eq!(
                (item["method"].as_str(), item["layer"].as_str()),
                (Some("seed"), Some("relu_conv10"))
            );
            // 64 px -> relu_conv10 is 3 x 3; rows of numbers in [0, 1], rescaled.
            let cam = item["cam"].as_array().unwrap();
            assert_eq!(cam.len(), 3);
            let values: Vec<f64> = cam
                .iter()
                .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
                .collect();
            assert_eq!(values.len(), 9);
            assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
            assert!(values.contains(&1.0) && values.contains(&0.0));
        }
        // One overlay per image at the image's own size, names made unique, and the figure.
        let written: Vec<PathBuf> = cams(&outcome)
            .iter()
            .map(|r| r.overlay.clone().unwrap())
            .collect();
        assert_eq!(
            written,
            vec![
                out.join("crack-seed-relu_conv10.png"),
                out.join("crack-2-seed-relu_conv10.png"),
                out.join("c-seed-relu_conv10.png")
            ]
        );
        assert_eq!(
            image::open(&written[2]).unwrap().to_rgb8().dimensions(),
            (100, 100)
        );
        assert_eq!(outcome.path, out.join("grid-seed-relu_conv10.png"));
        let figure = image::open(&outcome.path).unwrap().to_rgb8();
        assert_eq!(figure, outcome.figure);
        assert!(
            figure.width() > 2 * figure.height(),
            "3 panels side by side: {:?}",
            figure.dimensions()
        );
    }

    #[test]
    fn a_named_class_is_explained_for_every_image() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model.safetensors");
        checkpoint(&model);
        let image = dir.path().join("x.png");
        picture(&image, 5, SIDE);
        for (class, index) in [("Positive", 1), ("negative", 0), ("1", 1)] {
            let mut a = args(
                Some(model.clone()),
                vec![image.clone()],
                Some(dir.path().join("out")),
            );
            a.class = Some(class.into());
            a.method = Some(Method::GradCamPlusPlus);
            let outcome = explain_files(&a, &Device::Cpu).unwrap();
            assert_eq!(cams(&outcome)[0].index, index, "--class {class}");
            assert_eq!(cams(&outcome)[0].label, CLASSES[index]);
            assert!(outcome.path.ends_with("grid-gradcampp-relu_conv10.png"));
        }
    }

    #[test]
    fn errors_name_the_layer_class_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model.safetensors");
        checkpoint(&model);
        let good = dir.path().join("good.png");
        picture(&good, 1, SIDE);
        let out = Some(dir.path().join("out"));
        let message =
            |a: HeatmapRequest| format!("{:#}", explain_files(&a, &Device::Cpu).err().unwrap());

        let mut a = args(Some(model.clone()), vec![good.clone()], out.clone());
        a.layer = Some("fire10-concat".into());
        let text = message(a);
        assert!(
            text.contains("fire10-concat") && text.contains("fire9-concat, relu_conv10"),
            "{text}"
        );

        let mut a = args(Some(model.clone()), vec![good.clone()], out.clone());
        a.class = Some("Crack".into());
        let text = message(a);
        assert!(
            text.contains("\"Crack\"") && text.contains("Negative, Positive"),
            "{text}"
        );

        let mut a = args(Some(model.clone()), vec![good.clone()], out.clone());
        a.class = Some("2".into());
        assert!(message(a).contains("out of range"));

        let broken = dir.path().join("broken.jpg");
        std::fs::write(&broken, b"not a picture").unwrap();
        let text = message(args(Some(model), vec![good, broken.clone()], out));
        assert!(text.contains(&broken.display().to_string()), "{text}");
    }

    /// A run directory as training leaves it: recipe, split manifest, best model; two training,
    /// two validation and six test images.
    fn run_dir(root: &Path) -> PathBuf {
        let data = root.join("data");
        let mut entries = Vec::new();
        for i in 0..10u64 {
            let class = CLASSES[(i % 2) as usize];
            let relative = PathBuf::from(class).join(format!("{i}.png"));
            picture(&data.join(&relative), i, SIDE);
            entries.push(Entry {
                path: relative,
                label: (i % 2) as usize,
                source: None,
            });
        }
        let test = entries.split_off(4);
        let val = entries.split_off(2);
        let run = root.join("run");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("config.toml"), "").unwrap();
        let manifest = Manifest {
            root: data,
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
            train: entries,
            val,
            test,
        };
        manifest.save(&run.join("split.json")).unwrap();
        checkpoint(&run.join("model.safetensors"));
        run
    }

    #[test]
    fn run_mode_explains_random_test_images_into_the_run_directory() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_dir(dir.path());
        let mut a = args(None, Vec::new(), None);
        a.count = 4;
        let outcome = explain_run(&a, &run, &Device::Cpu).unwrap().unwrap();
        assert_eq!(outcome.records.len(), 4);
        assert_eq!(outcome.path, run.join("gradcam-seed-relu_conv10.png"));
        assert!(outcome.path.is_file());
        let paths: HashSet<_> = cams(&outcome).iter().map(|r| r.path.clone()).collect();
        assert_eq!(paths.len(), 4, "four different test images");
        for r in cams(&outcome) {
            let truth = r.truth.as_deref().expect("run mode knows the true class");
            let expected = if r.path.starts_with(dir.path().join("data/Positive")) {
                "Positive"
            } else {
                "Negative"
            };
            assert_eq!(truth, expected);
            assert!(r.overlay.is_none());
        }
        // The same seed picks the same images; another seed another choice.
        let again = explain_run(&a, &run, &Device::Cpu).unwrap().unwrap();
        let order = |o: &Figure| cams(o).iter().map(|r| r.path.clone()).collect::<Vec<_>>();
        assert_eq!(order(&again), order(&outcome));
        a.seed = 7;
        assert_ne!(
            order(&explain_run(&a, &run, &Device::Cpu).unwrap().unwrap()),
            order(&outcome)
        );
    }

    #[test]
    fn misclassified_mode_shows_only_mistakes() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_dir(dir.path());
        let mut a = args(None, Vec::new(), None);
        a.misclassified = true;
        a.method = Some(Method::GradCam);
        // An untrained model gets some of the six wrong (it cannot tell the classes apart).
        let outcome = explain_run(&a, &run, &Device::Cpu)
            .unwrap()
            .expect("mistakes to show");
        assert!(!outcome.records.is_empty() && outcome.records.len() < 6);
        assert!(cams(&outcome)
            .iter()
            .all(|r| Some(&r.predicted) != r.truth.as_ref()));
        assert_eq!(
            outcome.path,
            run.join("gradcam-misclassified-gradcam-relu_conv10.png")
        );
    }

    /// Whether every pixel of a picture is gray (r = g = b).
    fn all_gray(picture: &RgbImage) -> bool {
        picture.pixels().all(|p| p[0] == p[1] && p[1] == p[2])
    }

    #[test]
    fn recipe_gradcam_keys_drive_run_and_image_mode_and_flags_override_them() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_dir(dir.path());
        std::fs::write(
            run.join("config.toml"),
            "[gradcam]\nlayer = \"fire9-concat\"\nmethod = \"gradcam++\"\nalpha = 1.0\n\
             colormap = \"gray\"\n",
        )
        .unwrap();
        // --run: the run's recipe chooses layer and method (and so the figure's name).
        let mut a = args(None, Vec::new(), None);
        a.count = 2;
        let outcome = explain_run(&a, &run, &Device::Cpu).unwrap().unwrap();
        assert_eq!(
            (
                cams(&outcome)[0].method.as_str(),
                cams(&outcome)[0].layer.as_str()
            ),
            ("gradcam++", "fire9-concat")
        );
        // fire9-concat of a 64 px input is 3 x 3 as well; the name says which map it is.
        assert_eq!(outcome.path, run.join("gradcam-gradcampp-fire9-concat.png"));
        // Alpha 1 and the gray colormap: the overlays are the heatmap alone, in gray.
        let image = dir.path().join("x.png");
        picture(&image, 3, SIDE);
        let out = dir.path().join("out");
        let a = args(Some(run.clone()), vec![image.clone()], Some(out.clone()));
        let outcome = explain_files(&a, &Device::Cpu).unwrap();
        let written = cams(&outcome)[0].overlay.clone().unwrap();
        assert_eq!(written, out.join("x-gradcampp-fire9-concat.png"));
        assert!(all_gray(&image::open(&written).unwrap().to_rgb8()));
        // Flags override each key; a second run with another method keeps the first's files.
        let mut a = args(Some(run.clone()), vec![image], Some(out.clone()));
        a.method = Some(Method::Seed);
        a.layer = Some("relu_conv10".into());
        a.colormap = Some(Colormap::Jet);
        a.alpha = Some(0.5);
        let outcome = explain_files(&a, &Device::Cpu).unwrap();
        let second = cams(&outcome)[0].overlay.clone().unwrap();
        assert_eq!(second, out.join("x-seed-relu_conv10.png"));
        assert!(written.is_file() && second.is_file());
        assert!(!all_gray(&image::open(&second).unwrap().to_rgb8()));
    }
}
