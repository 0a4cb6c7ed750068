//! `crackscope gradcam`: why did the network say that? Heatmaps over image files, or the seed's
//! 3 x 4 figure over random test images of a trained run.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Result};
use candle_core::Device;
use image::RgbImage;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::cli::GradcamArgs;
use crate::data::decode::load_rgb;
use crate::detector::classifier::{open_run_model, Classifier};
use crate::explain::figure::{figure, title};
use crate::explain::methods::{Explanation, Target};
use crate::explain::overlay::overlay;
use crate::explain::settings::{file_safe, picture_name, CamSettings};
use crate::imaging::terminal::print_inline;
use crate::imaging::write_png;
use crate::run::recipe::Recipe;
use crate::run::RunDir;

/// Images per forward/backward pass: enough to amortise a pass, little enough for memory.
const BATCH: usize = 16;

/// One image's explanation, as `--json` prints it.
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

/// What a `gradcam` invocation produced.
pub struct Outcome {
    pub report: Vec<CamOut>,
    /// The seed's figure, also written to `figure_path`.
    pub figure: RgbImage,
    pub figure_path: PathBuf,
}

pub fn gradcam(args: &GradcamArgs) -> Result<()> {
    let target = args.run.as_ref().or(args.model.as_ref());
    if let Some((model, run)) = target
        .map(|t| crate::detector::oneclass::model_file::find(t))
        .transpose()?
        .flatten()
    {
        return crate::cmd::oneclass::gradcam(args, &model, run.as_ref());
    }
    let (device, _) = crate::model::device::resolve(args.device)?;
    let outcome = match &args.run {
        Some(run) => explain_run(args, run, &device)?,
        None => Some(explain_files(args, &device)?),
    };
    match outcome {
        Some(outcome) => print_outcome(args, &outcome),
        None if args.json => say("[]\n"),
        None => say("the model classifies every test image correctly: nothing to show\n"),
    }
}

/// The heatmap settings: the recipe's `[gradcam]` keys, each replaced by its flag when given.
fn cam_settings(args: &GradcamArgs, recipe: &Recipe) -> Result<CamSettings> {
    recipe.gradcam.settings()?.with_overrides(
        args.layer.as_deref(),
        args.method,
        args.alpha,
        args.colormap,
    )
}

/// Image mode: an overlay PNG per image and the figure, in `--out` (default `gradcam/`). The
/// recipe is the run's when `--model` is a run directory, else the built-in one.
pub fn explain_files(args: &GradcamArgs, device: &Device) -> Result<Outcome> {
    let Some(model_arg) = &args.model else {
        bail!("give --model MODEL with the images, or --run RUN")
    };
    ensure!(!args.images.is_empty(), "no images given to explain");
    let recipe = if model_arg.is_dir() {
        Recipe::load(&RunDir::open(model_arg)?.recipe())?
    } else {
        Recipe::default()
    };
    let cam = cam_settings(args, &recipe)?;
    let classifier = Classifier::open(model_arg, device, &args.model_options.load_options())?;
    let target = resolve_class(args.class.as_deref(), &classifier.classes)?;
    let out_dir = args.out.clone().unwrap_or_else(|| PathBuf::from("gradcam"));
    let mut names = HashSet::new();
    let mut panels = Vec::with_capacity(args.images.len());
    let mut report = Vec::with_capacity(args.images.len());
    for chunk in args.images.chunks(BATCH) {
        let images = chunk
            .iter()
            .map(|p| load_rgb(p))
            .collect::<Result<Vec<_>>>()?;
        let explanations = classifier.explain(&images, &cam, target)?;
        for ((path, image), e) in chunk.iter().zip(&images).zip(&explanations) {
            let picture = overlay(image, &e.cam, &cam.style())?;
            let file = out_dir.join(unique_name(path, &cam, &mut names));
            write_png(&picture, &file)?;
            panels.push((picture, panel_title(&classifier, e)));
            report.push(cam_out(&classifier, path, None, e, &cam, Some(file)));
        }
    }
    let figure_path = out_dir.join(format!("grid-{}-{}.png", file_safe(cam.method), cam.layer));
    finish_figure(report, &panels, figure_path)
}

/// Run mode: the seed's figure for `count` random test images of a run (or only misclassified
/// ones), written into the run directory, with the run's recipe. None when `--misclassified`
/// finds no mistakes.
pub fn explain_run(args: &GradcamArgs, run: &Path, device: &Device) -> Result<Option<Outcome>> {
    ensure!(
        args.images.is_empty(),
        "give either --run RUN or image files, not both"
    );
    ensure!(args.count > 0, "--count must be at least 1");
    let run = RunDir::open(run)?;
    let cam = cam_settings(args, &Recipe::load(&run.recipe())?)?;
    let model_path = run.best_model();
    let (manifest, classifier) = open_run_model(
        &run,
        &model_path,
        device,
        &args.model_options.load_options(),
    )?;
    ensure!(
        !manifest.test.is_empty(),
        "{} has an empty test split",
        run.manifest().display()
    );
    let target = resolve_class(args.class.as_deref(), &classifier.classes)?;
    // A fixed random order of the test split; the first `count` readable images (with
    // --misclassified: the first `count` the network gets wrong), explained a batch at a time.
    let mut order: Vec<usize> = (0..manifest.test.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(args.seed));
    let mut panels = Vec::with_capacity(args.count);
    let mut report = Vec::with_capacity(args.count);
    for chunk in order.chunks(BATCH) {
        let mut paths = Vec::with_capacity(chunk.len());
        let mut images = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let path = manifest.absolute(&manifest.test[i]);
            match load_rgb(&path) {
                Ok(image) => {
                    images.push(image);
                    paths.push((path, manifest.test[i].label));
                }
                Err(e) => eprintln!("warning: skipping a test image: {e:#}"),
            }
        }
        let explanations = classifier.explain(&images, &cam, target)?;
        for (((path, truth), image), e) in paths.iter().zip(&images).zip(&explanations) {
            if report.len() == args.count || (args.misclassified && e.predicted == *truth) {
                continue;
            }
            panels.push((
                overlay(image, &e.cam, &cam.style())?,
                panel_title(&classifier, e),
            ));
            report.push(cam_out(&classifier, path, Some(*truth), e, &cam, None));
        }
        if report.len() == args.count {
            break;
        }
    }
    if report.is_empty() {
        ensure!(
            args.misclassified,
            "none of the test images of {} could be read",
            run.path.display()
        );
        return Ok(None);
    }
    let which = if args.misclassified {
        "gradcam-misclassified"
    } else {
        "gradcam"
    };
    let figure_path = run.path.join(format!(
        "{which}-{}-{}.png",
        file_safe(cam.method),
        cam.layer
    ));
    finish_figure(report, &panels, figure_path).map(Some)
}

/// `--class`: a class name (exact, else ignoring case) or an output index; none means each
/// image's predicted class.
fn resolve_class(class: Option<&str>, classes: &[String]) -> Result<Target> {
    let Some(wanted) = class else {
        return Ok(Target::Predicted);
    };
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

/// The seed's panel title: the predicted class and its score.
fn panel_title(classifier: &Classifier, e: &Explanation) -> String {
    title(
        &classifier.classes[e.predicted],
        e.probabilities[e.predicted],
    )
}

fn cam_out(
    classifier: &Classifier,
    path: &Path,
    truth: Option<usize>,
    e: &Explanation,
    cam: &CamSettings,
    overlay: Option<PathBuf>,
) -> CamOut {
    let loaded = classifier;
    CamOut {
        path: path.to_path_buf(),
        label: loaded.classes[e.class].clone(),
        index: e.class,
        score: e.probabilities[e.class],
        predicted: loaded.classes[e.predicted].clone(),
        predicted_score: e.probabilities[e.predicted],
        truth: truth.map(|t| loaded.classes[t].clone()),
        method: cam.method.name().to_string(),
        layer: cam.layer.clone(),
        cam: e.cam.rows(),
        overlay,
    }
}

fn finish_figure(
    report: Vec<CamOut>,
    panels: &[(RgbImage, String)],
    figure_path: PathBuf,
) -> Result<Outcome> {
    let figure = figure(panels);
    write_png(&figure, &figure_path)?;
    Ok(Outcome {
        report,
        figure,
        figure_path,
    })
}

/// JSON, or a line per image and the figure inline on a terminal (on a pipe or file the printed
/// paths say where the pictures are).
fn print_outcome(args: &GradcamArgs, outcome: &Outcome) -> Result<()> {
    if args.json {
        return say(&format!(
            "{}\n",
            serde_json::to_string_pretty(&outcome.report)?
        ));
    }
    let mut text = String::new();
    for r in &outcome.report {
        let truth = r
            .truth
            .as_ref()
            .map(|t| format!(", true class {t}"))
            .unwrap_or_default();
        let explained = if r.label == r.predicted {
            String::new()
        } else {
            format!(", explaining {}", r.label)
        };
        let written = r
            .overlay
            .as_ref()
            .map(|p| format!(" -> {}", p.display()))
            .unwrap_or_default();
        text += &format!(
            "{}: {} {:.3}{truth}{explained}{written}\n",
            r.path.display(),
            r.predicted,
            r.predicted_score
        );
    }
    if let Some(first) = outcome.report.first() {
        text += &format!("figure ({}, {}): ", first.method, first.layer);
    }
    text += &format!("{}\n", outcome.figure_path.display());
    say(&text)?;
    print_inline(&outcome.figure, None)?;
    Ok(())
}

/// Writes to stdout; a reader that stopped reading (`| head`) is not an error, nor a panic as
/// `println!` would make it.
fn say(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to stdout"))
        }
        _ => Ok(()),
    }
}

/// `<stem>-<method>-<layer>.png`, with a counter after the stem when two images share one.
fn unique_name(path: &Path, cam: &CamSettings, taken: &mut HashSet<String>) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let mut name = picture_name(&stem, cam.method, &cam.layer);
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = picture_name(&format!("{stem}-{n}"), cam.method, &cam.layer);
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use crate::data::split::Manifest;

    use candle_core::DType;
    use candle_nn::{VarBuilder, VarMap};

    use super::*;
    use crate::data::split::{Entry, Fractions};
    use crate::data::synth::render;
    use crate::explain::colormap::Colormap;
    use crate::explain::methods::Method;
    use crate::model::device::DeviceChoice;
    use crate::model::{init_backbone, init_head, save_checkpoint, CheckpointMeta, SqueezeNet};

    const SIDE: u32 = 64;
    const CLASSES: [&str; 2] = ["Negative", "Positive"];

    /// A fresh 2-class checkpoint for 64 px inputs.
    fn checkpoint(path: &Path) {
        let varmap = VarMap::new();
        SqueezeNet::new(
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
            Some(2),
        )
        .unwrap();
        init_backbone(&varmap, 1).unwrap();
        init_head(&varmap, 2).unwrap();
        let classes: Vec<String> = CLASSES.iter().map(|c| c.to_string()).collect();
        let meta = CheckpointMeta {
            input_size: Some(SIDE),
            ..CheckpointMeta::default()
        };
        save_checkpoint(path, &varmap, &classes, &meta).unwrap();
    }

    /// A synthetic image (with a crack for odd `i`) saved as PNG at `path`.
    fn picture(path: &Path, i: u64, side: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        render(i, side, i % 2 == 1).image.save(path).unwrap();
    }

    fn args(model: Option<PathBuf>, images: Vec<PathBuf>, out: Option<PathBuf>) -> GradcamArgs {
        GradcamArgs {
            model,
            model_options: Default::default(),
            images,
            run: None,
            count: 12,
            misclassified: false,
            seed: 0,
            method: None,
            layer: None,
            class: None,
            out,
            json: true,
            alpha: None,
            colormap: None,
            device: DeviceChoice::Cpu,
        }
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

        let json = serde_json::to_value(&outcome.report).unwrap();
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
        let written: Vec<PathBuf> = outcome
            .report
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
        assert_eq!(outcome.figure_path, out.join("grid-seed-relu_conv10.png"));
        let figure = image::open(&outcome.figure_path).unwrap().to_rgb8();
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
            assert_eq!(outcome.report[0].index, index, "--class {class}");
            assert_eq!(outcome.report[0].label, CLASSES[index]);
            assert!(outcome
                .figure_path
                .ends_with("grid-gradcampp-relu_conv10.png"));
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
            |a: GradcamArgs| format!("{:#}", explain_files(&a, &Device::Cpu).err().unwrap());

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
        assert_eq!(outcome.report.len(), 4);
        assert_eq!(
            outcome.figure_path,
            run.join("gradcam-seed-relu_conv10.png")
        );
        assert!(outcome.figure_path.is_file());
        let paths: HashSet<_> = outcome.report.iter().map(|r| r.path.clone()).collect();
        assert_eq!(paths.len(), 4, "four different test images");
        for r in &outcome.report {
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
        let order = |o: &Outcome| o.report.iter().map(|r| r.path.clone()).collect::<Vec<_>>();
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
        assert!(!outcome.report.is_empty() && outcome.report.len() < 6);
        assert!(outcome
            .report
            .iter()
            .all(|r| Some(&r.predicted) != r.truth.as_ref()));
        assert_eq!(
            outcome.figure_path,
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
                outcome.report[0].method.as_str(),
                outcome.report[0].layer.as_str()
            ),
            ("gradcam++", "fire9-concat")
        );
        // fire9-concat of a 64 px input is 3 x 3 as well; the name says which map it is.
        assert_eq!(
            outcome.figure_path,
            run.join("gradcam-gradcampp-fire9-concat.png")
        );
        // Alpha 1 and the gray colormap: the overlays are the heatmap alone, in gray.
        let image = dir.path().join("x.png");
        picture(&image, 3, SIDE);
        let out = dir.path().join("out");
        let a = args(Some(run.clone()), vec![image.clone()], Some(out.clone()));
        let outcome = explain_files(&a, &Device::Cpu).unwrap();
        let written = outcome.report[0].overlay.clone().unwrap();
        assert_eq!(written, out.join("x-gradcampp-fire9-concat.png"));
        assert!(all_gray(&image::open(&written).unwrap().to_rgb8()));
        // Flags override each key; a second run with another method keeps the first's files.
        let mut a = args(Some(run.clone()), vec![image], Some(out.clone()));
        a.method = Some(Method::Seed);
        a.layer = Some("relu_conv10".into());
        a.colormap = Some(Colormap::Jet);
        a.alpha = Some(0.5);
        let outcome = explain_files(&a, &Device::Cpu).unwrap();
        let second = outcome.report[0].overlay.clone().unwrap();
        assert_eq!(second, out.join("x-seed-relu_conv10.png"));
        assert!(written.is_file() && second.is_file());
        assert!(!all_gray(&image::open(&second).unwrap().to_rgb8()));
    }
}
