//! The recipe: every setting of a run, read from TOML (defaults = the seed demo's), overridden by flags,
//! and validated with messages that name the key, the file and what was expected.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::detector::oneclass::{Edge, PatchValues, Sampling, Settings};
use crate::explain::settings::CamSettings;
use crate::model::device::DeviceChoice;

/// The recipe shipped as `config/default.toml`; compiled in so the binary works from any directory.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");
/// The demo's recipe, `config/demo.toml`, layered over the default one.
pub const DEMO_TOML: &str = include_str!("../../config/demo.toml");

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recipe {
    pub data: DataConfig,
    pub augment: AugmentConfig,
    pub train: TrainConfig,
    pub gradcam: GradcamConfig,
    pub oneclass: OneClassConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub root: DataRoots,
    pub split: [f64; 3],
    pub split_seed: u64,
    /// Split fractions of named data sources, in place of `split` for them (`--split-for`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub split_for: BTreeMap<String, [f64; 3]>,
    pub input_size: u32,
    /// Cap on memory for decoded images: "auto" (half the available memory) or a size ("4GB");
    /// sets over it are decoded on the fly. See [`crate::data::budget`].
    pub memory_budget: String,
}

/// The dataset folder, or several whose classes are merged by folder name (`data.root = "a"` or
/// `["a", "b"]`, or `--data` given more than once). One folder is written back as a plain string.
/// A folder may be given a source name as `NAME=DIR` (see [`crate::data::sources`]); the names
/// travel beside the paths, which is what the rest of the program reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRoots {
    paths: Vec<PathBuf>,
    /// The name given to each folder (`NAME=DIR`), if any.
    names: Vec<Option<String>>,
}

impl DataRoots {
    pub fn one(path: impl Into<PathBuf>) -> Self {
        DataRoots::from_specs(vec![path.into()])
    }

    /// Folders as the user wrote them: `DIR` or `NAME=DIR`.
    pub fn from_specs(specs: Vec<PathBuf>) -> Self {
        let (names, paths) = specs
            .iter()
            .map(|spec| crate::data::sources::parse_named(spec))
            .unzip();
        DataRoots { paths, names }
    }

    /// One name per folder: the given one, else the folder's (see
    /// [`crate::data::sources::names`]).
    pub fn source_names(&self) -> Result<Vec<String>> {
        crate::data::sources::names(&self.paths, &self.names)
    }

    /// Each folder as the user wrote it.
    fn specs(&self) -> Vec<PathBuf> {
        self.paths
            .iter()
            .zip(&self.names)
            .map(|(path, name)| match name {
                Some(name) => PathBuf::from(format!("{name}={}", path.display())),
                None => path.clone(),
            })
            .collect()
    }
}

impl std::ops::Deref for DataRoots {
    type Target = [PathBuf];

    fn deref(&self) -> &[PathBuf] {
        &self.paths
    }
}

impl fmt::Display for DataRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        f.write_str(&names.join(" + "))
    }
}

impl crate::data::dataset::DatasetRoots for DataRoots {
    fn roots(&self) -> Vec<PathBuf> {
        self.paths.clone()
    }
}

impl Serialize for DataRoots {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.specs().as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for DataRoots {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a folder name or a list of folder names")]
        enum OneOrMany {
            One(PathBuf),
            Many(Vec<PathBuf>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(path) => DataRoots::from_specs(vec![path]),
            OneOrMany::Many(paths) => DataRoots::from_specs(paths),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    pub flip: bool,
    pub translate: u32,
    /// Colour jitter as torchvision's `ColorJitter`: each factor uniform in `[1 - x, 1 + x]`.
    /// (f64 here so that the run's saved recipe shows 0.4, not 0.4000000059604645.)
    pub brightness: f64,
    pub contrast: f64,
    pub saturation: f64,
    pub rotate90: bool,
    pub vflip: bool,
    /// Zoom factor range `[min, max]`.
    pub scale: [f64; 2],
    /// Largest Gaussian blur sigma in pixels (the sigma is uniform in `[0, blur]`).
    pub blur: f64,
}

impl AugmentConfig {
    /// The augmentation the training loader applies.
    pub fn to_augment(&self) -> crate::data::augment::Augment {
        crate::data::augment::Augment {
            flip: self.flip,
            translate: self.translate,
            brightness: self.brightness as f32,
            contrast: self.contrast as f32,
            saturation: self.saturation as f32,
            rotate90: self.rotate90,
            vflip: self.vflip,
            scale: self.scale.map(|z| z as f32),
            blur: self.blur as f32,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Empty means "train from scratch".
    pub weights: PathBuf,
    pub optimizer: Optimizer,
    pub batch_size: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    pub l2: f64,
    pub shuffle: Shuffle,
    pub val_every: usize,
    pub device: DeviceChoice,
    pub seed: u64,
    /// A run directory or checkpoint whose model (head included) a new training starts from
    /// instead of `weights`; empty: none. Written only when set, so older recipes read the same.
    #[serde(skip_serializing_if = "is_unset")]
    pub init: PathBuf,
    /// Which model the run keeps and tests. Written only when not the default, so older recipes
    /// read the same.
    #[serde(skip_serializing_if = "OutputNetwork::is_default")]
    pub output_network: OutputNetwork,
}

fn is_unset(path: &Path) -> bool {
    path.as_os_str().is_empty()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradcamConfig {
    pub layer: String,
    pub method: String,
    pub alpha: f32,
    pub colormap: String,
}

/// How `train --one-class` fits (see [`crate::detector::oneclass::Settings`], whose defaults these are).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OneClassConfig {
    pub layers: Vec<String>,
    pub values: PatchValues,
    pub neighbourhood: usize,
    pub edge: Edge,
    pub bank: usize,
    pub sampling: Sampling,
    pub coreset_ratio: f64,
    pub candidates: usize,
    /// Gaussian smoothing of the anomaly map, in pixels (f64 so the saved recipe shows 4.0).
    pub map_sigma: f64,
    pub false_positive_rate: f64,
}

impl Default for OneClassConfig {
    fn default() -> Self {
        let s = Settings::default();
        OneClassConfig {
            layers: s.layers,
            values: s.values,
            neighbourhood: s.neighbourhood,
            edge: s.edge,
            bank: s.max_bank,
            sampling: s.sampling,
            coreset_ratio: s.coreset_ratio,
            candidates: s.max_candidates,
            map_sigma: f64::from(s.smoothing_sigma),
            false_positive_rate: s.false_positive_rate,
        }
    }
}

impl OneClassConfig {
    /// The model's settings for images of `input_size` pixels and the run's `seed`.
    pub fn settings(&self, input_size: u32, seed: u64) -> Settings {
        Settings {
            layers: self.layers.clone(),
            values: self.values,
            neighbourhood: self.neighbourhood,
            edge: self.edge,
            input_size,
            sampling: self.sampling,
            coreset_ratio: self.coreset_ratio,
            max_bank: self.bank,
            max_candidates: self.candidates,
            smoothing_sigma: self.map_sigma as f32,
            false_positive_rate: self.false_positive_rate,
            seed,
            ..Settings::default()
        }
    }

    /// Applies `train --one-class`'s flags.
    pub fn apply(&mut self, o: &OneClassOverrides) {
        if let Some(v) = &o.layers {
            self.layers = v.clone();
        }
        if let Some(v) = o.values {
            self.values = v;
        }
        if let Some(v) = o.neighbourhood {
            self.neighbourhood = v;
        }
        if let Some(v) = o.edge {
            self.edge = v;
        }
        if let Some(v) = o.bank {
            self.bank = v;
        }
        if let Some(v) = o.sampling {
            self.sampling = v;
        }
        if let Some(v) = o.candidates {
            self.candidates = v;
        }
        if let Some(v) = o.coreset_ratio {
            self.coreset_ratio = v;
        }
    }
}

/// `train --one-class`'s flags; `None` keeps the recipe's value.
#[derive(Debug, Clone, Default)]
pub struct OneClassOverrides {
    pub layers: Option<Vec<String>>,
    pub values: Option<PatchValues>,
    pub neighbourhood: Option<usize>,
    pub edge: Option<Edge>,
    pub bank: Option<usize>,
    pub sampling: Option<Sampling>,
    pub candidates: Option<usize>,
    pub coreset_ratio: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    Adam,
}

/// Which model a run keeps as its model (`model.safetensors`) and tests (MATLAB's
/// 'OutputNetwork' option).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OutputNetwork {
    /// The model of the best validation accuracy so far.
    #[default]
    BestValidation,
    /// The last iteration's model: for validation sets of a few dozen images, whose accuracy
    /// ranks models by chance.
    LastIteration,
}

impl OutputNetwork {
    pub fn is_default(&self) -> bool {
        *self == OutputNetwork::default()
    }
}

/// When the training set is reshuffled (MATLAB's 'Shuffle' option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shuffle {
    EveryEpoch,
    Once,
    Never,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            root: DataRoots::one("Concrete Crack Images for Classification"),
            split: [0.1, 0.1, 0.1],
            split_seed: 0,
            split_for: BTreeMap::new(),
            input_size: 227,
            memory_budget: crate::data::budget::AUTO.into(),
        }
    }
}

impl Default for AugmentConfig {
    fn default() -> Self {
        // The seed's flip and translation; everything else off.
        let seed = crate::data::augment::Augment::SEED;
        AugmentConfig {
            flip: seed.flip,
            translate: seed.translate,
            brightness: seed.brightness.into(),
            contrast: seed.contrast.into(),
            saturation: seed.saturation.into(),
            rotate90: seed.rotate90,
            vflip: seed.vflip,
            scale: seed.scale.map(f64::from),
            blur: seed.blur.into(),
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            weights: PathBuf::new(),
            optimizer: Optimizer::Adam,
            batch_size: 100,
            epochs: 5,
            learning_rate: 2e-4,
            l2: 1e-4,
            shuffle: Shuffle::EveryEpoch,
            val_every: 30,
            device: DeviceChoice::Auto,
            seed: 0,
            init: PathBuf::new(),
            output_network: OutputNetwork::default(),
        }
    }
}

impl Default for GradcamConfig {
    fn default() -> Self {
        GradcamConfig {
            layer: "relu_conv10".into(),
            method: crate::explain::methods::Method::default().name().into(),
            alpha: 0.5,
            colormap: "jet".into(),
        }
    }
}

impl GradcamConfig {
    /// The `[gradcam]` section as heatmap settings; a bad value is an error naming the key.
    pub fn settings(&self) -> Result<CamSettings> {
        let settings = CamSettings {
            layer: self.layer.clone(),
            method: self
                .method
                .parse()
                .map_err(|e| anyhow::anyhow!("gradcam.method: {e}"))?,
            alpha: self.alpha,
            colormap: self
                .colormap
                .parse()
                .map_err(|e| anyhow::anyhow!("gradcam.colormap: {e}"))?,
        };
        settings.check()?;
        Ok(settings)
    }
}

/// Command-line values that take precedence over the file; `None` keeps the file's value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Empty keeps the file's `data.root`.
    pub data: Vec<PathBuf>,
    pub weights: Option<PathBuf>,
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f64>,
    pub split: Option<[f64; 3]>,
    /// Per-source split fractions (`--split-for NAME=...`), added to the file's.
    pub split_for: Vec<(String, [f64; 3])>,
    pub val_every: Option<usize>,
    pub seed: Option<u64>,
    pub device: Option<DeviceChoice>,
    pub memory_budget: Option<String>,
}

impl Recipe {
    /// Parses a recipe file's text; `origin` names it in errors. Keys it leaves out keep their defaults.
    pub fn from_toml(text: &str, origin: &str) -> Result<Recipe> {
        let recipe: Recipe = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{origin} ({}): {}",
                describe_toml_error(&e, text),
                e.message().trim()
            )
        })?;
        recipe.validate(origin)?;
        Ok(recipe)
    }

    /// Reads a recipe file; relative paths inside it stay relative to the current directory.
    pub fn load(path: &Path) -> Result<Recipe> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Recipe::from_toml(&text, &path.display().to_string())
    }

    /// The demo's recipe: `config/demo.toml` over the defaults.
    pub fn demo() -> Recipe {
        Recipe::from_toml(DEMO_TOML, "config/demo.toml").expect("config/demo.toml is valid")
    }

    /// Applies command-line overrides and checks the result again (`origin` names the flags).
    pub fn apply(&mut self, o: &Overrides) -> Result<()> {
        if !o.data.is_empty() {
            self.data.root = DataRoots::from_specs(o.data.clone());
        }
        if let Some(v) = &o.weights {
            self.train.weights = v.clone();
        }
        if let Some(v) = o.epochs {
            self.train.epochs = v;
        }
        if let Some(v) = o.batch_size {
            self.train.batch_size = v;
        }
        if let Some(v) = o.learning_rate {
            self.train.learning_rate = v;
        }
        if let Some(v) = o.split {
            self.data.split = v;
        }
        for (name, fractions) in &o.split_for {
            self.data.split_for.insert(name.clone(), *fractions);
        }
        if let Some(v) = o.val_every {
            self.train.val_every = v;
        }
        if let Some(v) = o.seed {
            self.train.seed = v;
            self.data.split_seed = v;
        }
        if let Some(v) = o.device {
            self.train.device = v;
        }
        if let Some(v) = &o.memory_budget {
            self.data.memory_budget = v.clone();
        }
        self.validate("command line")
    }

    /// Checks value ranges; the message names the key, where it came from and what was expected.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let bad = |key: &str, expected: &str, found: String| -> Result<()> {
            bail!("{origin}: bad value for `{key}`: expected {expected}, found {found}")
        };
        if self.data.root.is_empty() {
            bad(
                "data.root",
                "a folder or a list of folders",
                "an empty list".into(),
            )?;
        }
        let splits = std::iter::once(("data.split".to_string(), self.data.split)).chain(
            self.data
                .split_for
                .iter()
                .map(|(name, split)| (format!("data.split_for.{name}"), *split)),
        );
        for (key_name, split) in splits {
            let [tr, va, te] = split;
            for (key, f) in [("train", tr), ("validation", va), ("test", te)] {
                if !(f > 0.0 && f <= 1.0) {
                    bad(
                        &key_name,
                        &format!("three fractions in (0, 1] (the {key} fraction is off)"),
                        format!("{split:?}"),
                    )?;
                }
            }
            if tr + va + te > 1.0 + 1e-9 {
                bad(
                    &key_name,
                    "fractions that sum to at most 1",
                    format!("{split:?} (sum {})", tr + va + te),
                )?;
            }
        }
        if !(32..=1024).contains(&self.data.input_size) {
            bad(
                "data.input_size",
                "a size from 32 to 1024 pixels",
                self.data.input_size.to_string(),
            )?;
        }
        if let Err(e) = crate::data::budget::check_setting(&self.data.memory_budget) {
            bad(
                "data.memory_budget",
                "\"auto\" or a size such as 4GB, 512MiB or 0",
                format!("\"{}\" ({e})", self.data.memory_budget),
            )?;
        }
        if self.augment.translate >= self.data.input_size / 2 {
            bad(
                "augment.translate",
                "less than half the input size",
                self.augment.translate.to_string(),
            )?;
        }
        for (key, x) in [
            ("augment.brightness", self.augment.brightness),
            ("augment.contrast", self.augment.contrast),
            ("augment.saturation", self.augment.saturation),
        ] {
            if !(0.0..=1.0).contains(&x) {
                bad(
                    key,
                    "a number from 0 (off) to 1: the factor is uniform in [1 - x, 1 + x]",
                    x.to_string(),
                )?;
            }
        }
        let [low, high] = self.augment.scale;
        if !(0.25..=4.0).contains(&low) || !(0.25..=4.0).contains(&high) || low > high {
            bad(
                "augment.scale",
                "[min, max] zoom factors with 0.25 <= min <= max <= 4 ([1.0, 1.0] is off)",
                format!("{:?}", self.augment.scale),
            )?;
        }
        let max_blur = f64::from(crate::data::augment::MAX_BLUR_SIGMA);
        if !(0.0..=max_blur).contains(&self.augment.blur) {
            bad(
                "augment.blur",
                &format!("a sigma from 0 (off) to {max_blur} pixels"),
                self.augment.blur.to_string(),
            )?;
        }
        if self.train.batch_size == 0 {
            bad("train.batch_size", "at least 1", "0".into())?;
        }
        if self.train.epochs == 0 {
            bad("train.epochs", "at least 1", "0".into())?;
        }
        if !(self.train.learning_rate > 0.0 && self.train.learning_rate.is_finite()) {
            bad(
                "train.learning_rate",
                "a positive number",
                self.train.learning_rate.to_string(),
            )?;
        }
        if !(self.train.l2 >= 0.0 && self.train.l2.is_finite()) {
            bad(
                "train.l2",
                "zero or a positive number",
                self.train.l2.to_string(),
            )?;
        }
        if self.train.val_every == 0 {
            bad("train.val_every", "at least 1 iteration", "0".into())?;
        }
        if let Err(e) = self
            .gradcam
            .method
            .parse::<crate::explain::methods::Method>()
        {
            bad(
                "gradcam.method",
                "seed, gradcam, gradcam++ or ablation",
                format!("\"{}\" ({e})", self.gradcam.method),
            )?;
        }
        if let Err(e) = self
            .gradcam
            .colormap
            .parse::<crate::explain::colormap::Colormap>()
        {
            bad(
                "gradcam.colormap",
                "jet, turbo or gray",
                format!("\"{}\" ({e})", self.gradcam.colormap),
            )?;
        }
        if !(0.0..=1.0).contains(&self.gradcam.alpha) {
            bad(
                "gradcam.alpha",
                "a number from 0 to 1",
                self.gradcam.alpha.to_string(),
            )?;
        }
        if let Err(e) = self
            .oneclass
            .settings(self.data.input_size, self.train.seed)
            .validate()
        {
            bail!("{origin}: bad [oneclass] settings: {e}");
        }
        Ok(())
    }

    /// The resolved recipe as TOML, saved in each run directory.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a recipe always serialises")
    }
}

/// Says where in the file a TOML error is, in words a user can act on.
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].lines().count().max(1);
            let snippet = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}: `{snippet}`")
        }
        None => "in the file".to_string(),
    }
}

/// Parses `--split 0.1,0.1,0.1` (or with spaces / brackets).
pub fn parse_split(s: &str) -> Result<[f64; 3], String> {
    let parts: Vec<&str> = s
        .trim_matches(|c| c == '[' || c == ']')
        .split([',', ' '])
        .filter(|p| !p.is_empty())
        .collect();
    let values: Vec<f64> = parts
        .iter()
        .map(|p| {
            p.parse::<f64>()
                .map_err(|_| format!("\"{p}\" is not a number"))
        })
        .collect::<Result<_, _>>()?;
    values.try_into().map_err(|_| {
        format!("expected three fractions TRAIN,VAL,TEST such as 0.1,0.1,0.1, found \"{s}\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::colormap::Colormap;
    use crate::explain::methods::Method;

    #[test]
    fn shipped_default_file_is_the_seed_recipe() {
        let file = Recipe::from_toml(DEFAULT_TOML, "config/default.toml").unwrap();
        assert_eq!(file, Recipe::default());
        let r = file;
        assert_eq!(r.data.split, [0.1, 0.1, 0.1]);
        assert_eq!(r.data.input_size, 227);
        assert!(r.augment.flip);
        assert_eq!(r.augment.translate, 30);
        assert_eq!(r.train.optimizer, Optimizer::Adam);
        assert_eq!(r.train.batch_size, 100);
        assert_eq!(r.train.epochs, 5);
        assert_eq!(r.train.learning_rate, 2e-4);
        assert_eq!(r.train.l2, 1e-4);
        assert_eq!(r.train.shuffle, Shuffle::EveryEpoch);
        assert_eq!(r.train.val_every, 30);
        assert_eq!(r.train.device, DeviceChoice::Auto);
        assert_eq!(r.gradcam.layer, "relu_conv10");
        assert_eq!(r.gradcam.alpha, 0.5);
        assert_eq!(r.gradcam.colormap, "jet");
    }

    #[test]
    fn oneclass_keys_reach_the_settings_and_flags_override_them() {
        let mut r = Recipe::from_toml(
            "[oneclass]\nlayers = [\"fire5-concat\"]\nvalues = \"projection:48\"\nbank = 900\nsampling = \"random\"\nedge = \"zeros\"\n",
            "oc.toml",
        )
        .unwrap();
        let s = r.oneclass.settings(227, 5);
        assert_eq!(s.layers, ["fire5-concat"]);
        assert_eq!(s.values, PatchValues::Projection(48));
        assert_eq!((s.max_bank, s.sampling, s.seed), (900, Sampling::Random, 5));
        assert_eq!(s.edge, Edge::Zeros);
        assert_eq!(s.neighbourhood, Settings::default().neighbourhood);
        r.oneclass.apply(&OneClassOverrides {
            values: Some(PatchValues::All),
            neighbourhood: Some(5),
            edge: Some(Edge::Inside),
            ..Default::default()
        });
        assert_eq!(r.oneclass.edge, Edge::Inside);
        assert_eq!(r.oneclass.values, PatchValues::All);
        assert_eq!(r.oneclass.neighbourhood, 5);
        assert_eq!(Recipe::from_toml(&r.to_toml(), "again").unwrap(), r);
        // The built-in recipe gives the built-in settings.
        let default = Recipe::default().oneclass.settings(227, 0);
        assert_eq!(default, Settings::default());
        for (bad, expected) in [
            ("[oneclass]\nvalues = \"median:3\"\n", "mean:N"),
            ("[oneclass]\nneighbourhood = 4\n", "odd"),
            (
                "[oneclass]\nlayers = [\"fire5-concat\", \"fire3-concat\"]\n",
                "network order",
            ),
            ("[oneclass]\nsampling = \"best\"\n", "sampling"),
            ("[oneclass]\nedge = \"mirror\"\n", "edge"),
        ] {
            let msg = format!("{:#}", Recipe::from_toml(bad, "bad.toml").unwrap_err());
            assert!(msg.contains("bad.toml") && msg.contains(expected), "{msg}");
        }
    }

    #[test]
    fn partial_file_keeps_defaults_and_flags_override_it() {
        let mut r = Recipe::from_toml("[train]\nepochs = 2\n", "mine.toml").unwrap();
        assert_eq!(r.train.epochs, 2);
        assert_eq!(r.train.batch_size, 100);
        r.apply(&Overrides {
            epochs: Some(7),
            batch_size: Some(8),
            learning_rate: Some(1e-3),
            split: Some([0.5, 0.25, 0.25]),
            device: Some(DeviceChoice::Cpu),
            data: vec!["x".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(r.train.epochs, 7);
        assert_eq!(r.train.batch_size, 8);
        assert_eq!(r.train.learning_rate, 1e-3);
        assert_eq!(r.data.split, [0.5, 0.25, 0.25]);
        assert_eq!(r.train.device, DeviceChoice::Cpu);
        assert_eq!(r.data.root, DataRoots::one("x"));
    }

    #[test]
    fn data_root_is_a_folder_or_a_list_and_writes_back_as_read() {
        let one = Recipe::from_toml("[data]\nroot = \"a\"\n", "one.toml").unwrap();
        assert_eq!(one.data.root, DataRoots::one("a"));
        assert!(one.to_toml().contains("root = \"a\""), "{}", one.to_toml());
        let two = Recipe::from_toml("[data]\nroot = [\"a\", \"b\"]\n", "two.toml").unwrap();
        assert_eq!(
            two.data.root,
            DataRoots::from_specs(vec!["a".into(), "b".into()])
        );
        assert_eq!(Recipe::from_toml(&two.to_toml(), "again").unwrap(), two);
        let msg = format!(
            "{:#}",
            Recipe::from_toml("[data]\nroot = []\n", "none.toml").unwrap_err()
        );
        assert!(
            msg.contains("none.toml") && msg.contains("data.root"),
            "{msg}"
        );
        let msg = format!(
            "{:#}",
            Recipe::from_toml("[data]\nroot = 3\n", "num.toml").unwrap_err()
        );
        assert!(msg.contains("num.toml") && msg.contains("folder"), "{msg}");
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let err = Recipe::from_toml("[train]\nepochz = 2\n", "mine.toml").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("mine.toml"), "{msg}");
        assert!(msg.contains("epochz"), "{msg}");
        assert!(
            msg.contains("[train]"),
            "the message points at the table: {msg}"
        );
    }

    #[test]
    fn bad_type_and_bad_range_name_key_file_and_expectation() {
        let msg = format!(
            "{:#}",
            Recipe::from_toml("[train]\nlearning_rate = \"fast\"\n", "a.toml").unwrap_err()
        );
        assert!(
            msg.contains("a.toml") && msg.contains("learning_rate"),
            "{msg}"
        );
        let msg = format!(
            "{:#}",
            Recipe::from_toml("[train]\nlearning_rate = -1.0\n", "b.toml").unwrap_err()
        );
        assert!(
            msg.contains("b.toml")
                && msg.contains("train.learning_rate")
                && msg.contains("positive"),
            "{msg}"
        );
        let msg = format!(
            "{:#}",
            Recipe::from_toml("[data]\nsplit = [0.5, 0.5, 0.5]\n", "c.toml").unwrap_err()
        );
        assert!(msg.contains("data.split") && msg.contains("sum"), "{msg}");
        let msg = format!(
            "{:#}",
            Recipe::from_toml("[train]\ndevice = \"tpu\"\n", "d.toml").unwrap_err()
        );
        assert!(msg.contains("d.toml") && msg.contains("cuda:N"), "{msg}");
    }

    #[test]
    fn photo_augmentations_are_off_in_the_seed_recipe_and_read_from_the_file() {
        assert_eq!(
            Recipe::default().augment.to_augment(),
            crate::data::augment::Augment::SEED
        );
        let text = "[augment]\nbrightness = 0.4\ncontrast = 0.2\nsaturation = 1\nrotate90 = true\n\
                    vflip = true\nscale = [0.8, 1.25]\nblur = 2\n";
        let aug = Recipe::from_toml(text, "photos.toml")
            .unwrap()
            .augment
            .to_augment();
        assert_eq!(
            aug,
            crate::data::augment::Augment {
                brightness: 0.4,
                contrast: 0.2,
                saturation: 1.0,
                rotate90: true,
                vflip: true,
                scale: [0.8, 1.25],
                blur: 2.0,
                ..crate::data::augment::Augment::SEED
            }
        );
    }

    #[test]
    fn out_of_range_augmentations_name_the_file_and_key() {
        for (line, key, expected) in [
            (
                "brightness = -0.1",
                "augment.brightness",
                "from 0 (off) to 1",
            ),
            ("contrast = 1.5", "augment.contrast", "from 0 (off) to 1"),
            (
                "saturation = nan",
                "augment.saturation",
                "from 0 (off) to 1",
            ),
            ("scale = [1.2, 0.9]", "augment.scale", "min <= max"),
            ("scale = [0.1, 1.0]", "augment.scale", "0.25 <="),
            ("blur = -1.0", "augment.blur", "from 0 (off) to 10 pixels"),
            ("blur = 11", "augment.blur", "from 0 (off) to 10 pixels"),
        ] {
            let err =
                Recipe::from_toml(&format!("[augment]\n{line}\n"), "photos.toml").expect_err(line);
            let msg = format!("{err:#}");
            assert!(
                msg.contains("photos.toml") && msg.contains(key) && msg.contains(expected),
                "{line}: {msg}"
            );
        }
        let msg = format!(
            "{:#}",
            Recipe::from_toml("[augment]\nscale = [1.0]\n", "photos.toml").unwrap_err()
        );
        assert!(
            msg.contains("photos.toml") && msg.contains("scale"),
            "{msg}"
        );
    }

    #[test]
    fn demo_recipe_is_valid_and_resolved_recipe_round_trips() {
        let mut photos = Recipe::default();
        photos.augment.brightness = 0.4;
        photos.augment.scale = [0.8, 1.25];
        let text = photos.to_toml();
        assert!(text.contains("brightness = 0.4\n"), "{text}");
        assert_eq!(Recipe::from_toml(&text, "round trip").unwrap(), photos);
        let demo = Recipe::demo();
        assert_eq!(demo.train.optimizer, Optimizer::Adam);
        let again = Recipe::from_toml(&demo.to_toml(), "round trip").unwrap();
        assert_eq!(again, demo);
    }

    #[test]
    fn split_and_device_flags_parse() {
        assert_eq!(parse_split("0.1,0.2,0.3").unwrap(), [0.1, 0.2, 0.3]);
        assert_eq!(parse_split("[0.1, 0.2, 0.3]").unwrap(), [0.1, 0.2, 0.3]);
        assert!(parse_split("0.1,0.2").is_err());
        assert_eq!(
            "cuda:1".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(1)
        );
        assert!("gpu".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn recipe_keys_and_flags_make_the_settings() {
        let recipe = GradcamConfig {
            layer: "fire8-concat".into(),
            method: "gradcam++".into(),
            alpha: 0.25,
            colormap: "turbo".into(),
        };
        let from_recipe = recipe.settings().unwrap();
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
        assert_eq!(
            GradcamConfig::default().settings().unwrap(),
            CamSettings::default()
        );
    }
}
