//! Command-line definitions (clap) and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::explain::colormap::Colormap;
use crate::explain::methods::Method;
use crate::explain::overlay::parse_alpha;
use crate::model::device::DeviceChoice;
use crate::run::recipe::{parse_split, OutputNetwork, Overrides};
use crate::tui::GraphicsChoice;

#[derive(Debug, Parser)]
#[command(
    name = "crackscope",
    version,
    about = "Fine-tune SqueezeNet v1.1 to classify images (crack vs normal, or any folder-per-class set) \
             and explain its decisions with Grad-CAM.",
    after_help = "Start with `crackscope demo`: it makes a synthetic crack dataset and trains on it."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The one-command tour: make a synthetic crack dataset in a run directory, show sample tiles,
    /// train on it with config/demo.toml and evaluate.
    Demo(DemoArgs),
    /// Generate a synthetic concrete dataset: DIR/Negative (surfaces) and DIR/Positive (with cracks).
    Synth(SynthArgs),
    /// Show random labelled images of a dataset as a tile grid (inline on a terminal, or a PNG).
    Samples(SamplesArgs),
    /// Fine-tune SqueezeNet v1.1 with the seed's recipe (config/default.toml), then test it.
    Train(TrainArgs),
    /// Evaluate a trained model on its run's test split or on another folder-per-class dataset.
    Eval(EvalArgs),
    /// Classify images with a crackscope checkpoint or bare torchvision SqueezeNet weights.
    Predict(PredictArgs),
    /// Print the network's layers, output sizes at the input size and learnable parameters.
    Model(ModelArgs),
    /// Open the dashboard on a run directory: live while it trains (with pause / stop / save), or
    /// its results and test images once it has finished; on a `scan` output folder, its photos
    /// with their crack maps.
    Watch(WatchArgs),
    /// Explain decisions with heatmaps (the seed's Grad-CAM formula, Grad-CAM, Grad-CAM++,
    /// Ablation-CAM): an overlay per image and the seed's figure, or the figure for a run's test
    /// images.
    Gradcam(GradcamArgs),
    /// Fetch torchvision's ImageNet weights into the cache, or list the cache.
    #[command(subcommand)]
    Weights(WeightsCommand),
    /// Measure training, inference, Grad-CAM and input-pipeline speed on generated data (the same
    /// workload and JSON keys as scripts/bench_torch.py).
    Bench(BenchArgs),
    /// Crack maps of whole photos: windows of the model's input size slid over each photo
    /// (classified from one shared pass), a map sharpened with Grad-CAM, an overlay and a mask
    /// PNG per photo; with --masks, window- and pixel-level scores against hand-drawn masks.
    Scan(ScanArgs),
    /// Merge the shards of a scan (`scan --shard K/N`) into one scan folder, as one process
    /// scanning every photo would have written it.
    ScanMerge(ScanMergeArgs),
    /// Cut a folder-per-class training set (Positive/, Negative/ and a patches.csv manifest) from
    /// photos and their crack masks, the way the concrete crack dataset was cut from photos.
    Patches(PatchesArgs),
    /// Write a classifier (a run's best model or a checkpoint) as an ONNX file for ONNX Runtime,
    /// OpenVINO or TensorRT: class probabilities and the class-activation map at relu_conv10.
    Export(ExportArgs),
    /// Write a run's report figures as PNG: the training progress (accuracy and loss, raw and
    /// smoothed, with the validations) and the test confusion matrix (RUN/figures/ by default).
    Figures(FiguresArgs),
    /// Runs side by side: status, the recipe keys that differ, iterations, best validation and
    /// test accuracy; with --figure, their curves overlaid in one PNG.
    Compare(CompareArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run directory [default: runs/<timestamp>]
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Synthetic images per class.
    #[arg(long, default_value_t = 400)]
    pub per_class: usize,
    #[command(flatten)]
    pub train: RecipeArgs,
    #[command(flatten)]
    pub display: DisplayArgs,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output folder (created; gets Negative/ and Positive/).
    #[arg(long)]
    pub out: PathBuf,
    /// Images per class.
    #[arg(long, default_value_t = 500)]
    pub per_class: usize,
    /// Image size in pixels (square).
    #[arg(long, default_value_t = 227)]
    pub size: u32,
    /// Random seed; the same seed gives the same images.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write this many whole photos (photos/ and their exact crack masks in masks/) instead of
    /// a patch dataset; --size is then the photo's side.
    #[arg(long)]
    pub photos: Option<usize>,
    /// With --photos: textures and cracks look as in a patch of this many pixels.
    #[arg(long, default_value_t = 227)]
    pub detail: u32,
}

#[derive(Debug, Args)]
pub struct SamplesArgs {
    /// Dataset folder, one sub-folder per class.
    pub data: PathBuf,
    /// How many random images.
    #[arg(long, default_value_t = 16)]
    pub count: usize,
    /// Write the grid to this PNG file instead of printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Random seed of the choice of images.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Flags that override the recipe file.
#[derive(Debug, Args, Clone, Default)]
pub struct RecipeArgs {
    /// Recipe file (TOML) [default: the built-in config/default.toml]
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Dataset folder, one sub-folder per class; give it more than once to merge datasets (their
    /// classes are joined by folder name). NAME=DIR names it as a data source (default: the
    /// folder's name), for --split-for and the results per source.
    #[arg(long, value_name = "[NAME=]DIR")]
    pub data: Vec<PathBuf>,
    /// torchvision SqueezeNet v1.1 weights (.pth or .safetensors), or `imagenet`: torchvision's
    /// squeezenet1_1-b8a52dc0.pth, fetched once and cached (see `crackscope weights`).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Passes over the training images [default: the recipe's train.epochs, 5 in
    /// config/default.toml].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per optimizer step (mini-batch) [default: the recipe's train.batch_size, 100 in
    /// config/default.toml]; smaller batches give more steps per epoch.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Fractions of each class for train,validation,test, e.g. 0.1,0.1,0.1.
    #[arg(long, value_parser = parse_split)]
    pub split: Option<[f64; 3]>,
    /// Fractions of one data source instead of --split's, e.g. drone=0.7,0.15,0.15 (repeatable;
    /// the name is a --data source's).
    #[arg(long, value_name = "NAME=TRAIN,VAL,TEST", value_parser = crate::data::sources::parse_split_for)]
    pub split_for: Vec<(String, [f64; 3])>,
    /// Validate every this many iterations.
    #[arg(long)]
    pub val_every: Option<usize>,
    /// Seed of the split, shuffling, augmentation and initial weights.
    #[arg(long)]
    pub seed: Option<u64>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<DeviceChoice>,
    /// Memory for decoded images: auto (half the available memory) or a size such as 4GB; sets
    /// over it are decoded on the fly.
    #[arg(long, value_name = "SIZE")]
    pub memory_budget: Option<String>,
}

/// How a training shows itself.
#[derive(Debug, Args, Clone, Default)]
pub struct DisplayArgs {
    /// Print progress lines instead of opening the dashboard (the default when stdout is not a terminal).
    #[arg(long)]
    pub headless: bool,
    /// Pictures in the dashboard: auto, kitty, sixel, iterm2 or halfblocks [env: CRACKSCOPE_GRAPHICS]
    #[arg(long)]
    pub graphics: Option<GraphicsChoice>,
}

impl RecipeArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            data: self.data.clone(),
            weights: self.weights.clone(),
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.lr,
            split: self.split,
            split_for: self.split_for.clone(),
            val_every: self.val_every,
            seed: self.seed,
            device: self.device,
            memory_budget: self.memory_budget.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Run directory [default: runs/<timestamp>]
    #[arg(long, conflicts_with = "resume")]
    pub run: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint, with the same split.
    #[arg(long, value_name = "RUN")]
    pub resume: Option<PathBuf>,
    /// With --resume: go on without the files of the split that went missing or unreadable since
    /// the run started (they are refused otherwise); the validation set then changes, so a new
    /// best accuracy starts.
    #[arg(long, requires = "resume")]
    pub allow_missing: bool,
    /// Start from this run's model (its model.safetensors, or a checkpoint file), head included,
    /// instead of --weights; its classes must be the data's.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["resume", "one_class"])]
    pub init: Option<PathBuf>,
    /// The model the run keeps and tests: the best validation accuracy's, or the last
    /// iteration's (for validation sets of a few dozen images, which rank models by chance)
    /// [default: the recipe's train.output_network, best-validation in config/default.toml].
    #[arg(long, value_enum, conflicts_with_all = ["resume", "one_class"])]
    pub output_network: Option<OutputNetwork>,
    /// Learn from normal images only (needs --weights): fit a memory bank of ImageNet features on
    /// the normal class's training images; the other classes serve validation and test only.
    #[arg(long)]
    pub one_class: bool,
    /// The normal class for --one-class [default: the class named Negative, normal or ok]
    #[arg(long, requires = "one_class")]
    pub normal: Option<String>,
    #[command(flatten)]
    pub oneclass: OneClassArgs,
    #[command(flatten)]
    pub display: DisplayArgs,
}

/// `train --one-class`'s settings (the recipe's `[oneclass]` keys; README, one-class section).
#[derive(Debug, Args, Clone, Default)]
pub struct OneClassArgs {
    /// Feature layers for --one-class, one or two in network order [recipe: oneclass.layers]
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LAYER,...",
        requires = "one_class"
    )]
    pub layers: Option<Vec<String>>,
    /// Values per layer for --one-class: all, mean:N or projection:N [recipe: oneclass.values]
    #[arg(long, requires = "one_class")]
    pub values: Option<crate::detector::oneclass::PatchValues>,
    /// Patches square averaged around each patch for --one-class (odd) [recipe: oneclass.neighbourhood]
    #[arg(long, value_name = "PATCHES", requires = "one_class")]
    pub neighbourhood: Option<usize>,
    /// What --one-class's neighbourhood average counts past the feature map's border: inside
    /// (the cells there) or zeros (PatchCore's padding) [recipe: oneclass.edge]
    #[arg(long, requires = "one_class")]
    pub edge: Option<crate::detector::oneclass::Edge>,
    /// Most bank entries for --one-class [recipe: oneclass.bank]
    #[arg(long, value_name = "ENTRIES", requires = "one_class")]
    pub bank: Option<usize>,
    /// How --one-class draws its bank: coreset or random [recipe: oneclass.sampling]
    #[arg(long, requires = "one_class")]
    pub sampling: Option<crate::detector::oneclass::Sampling>,
    /// Candidate patches the --one-class bank is drawn from [recipe: oneclass.candidates]
    #[arg(long, value_name = "PATCHES", requires = "one_class")]
    pub candidates: Option<usize>,
    /// Fraction of all patches the --one-class bank keeps, up to --bank [recipe: oneclass.coreset_ratio]
    #[arg(long, value_name = "FRACTION", requires = "one_class")]
    pub coreset_ratio: Option<f64>,
}

impl OneClassArgs {
    pub fn overrides(&self) -> crate::run::recipe::OneClassOverrides {
        crate::run::recipe::OneClassOverrides {
            layers: self.layers.clone(),
            values: self.values,
            neighbourhood: self.neighbourhood,
            edge: self.edge,
            bank: self.bank,
            sampling: self.sampling,
            candidates: self.candidates,
            coreset_ratio: self.coreset_ratio,
        }
    }
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The run directory of a running or finished training, or the output folder of
    /// `crackscope scan` (its photos with their crack maps, masks and windows); several run
    /// directories: their curves and results side by side.
    #[arg(required = true, value_name = "RUN")]
    pub runs: Vec<PathBuf>,
    /// Pictures in the dashboard: auto, kitty, sixel, iterm2 or halfblocks [env: CRACKSCOPE_GRAPHICS]
    #[arg(long)]
    pub graphics: Option<GraphicsChoice>,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run directory (uses its best model and test split) or a checkpoint file.
    pub target: PathBuf,
    /// Evaluate on this folder-per-class dataset instead of the run's test split; give it more
    /// than once to merge datasets (their classes are joined by folder name), NAME=DIR to name
    /// its results.
    #[arg(long, value_name = "[NAME=]DIR")]
    pub data: Vec<PathBuf>,
    #[command(flatten)]
    pub model_options: ModelOptions,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

/// What a checkpoint from elsewhere may not say about itself.
#[derive(Debug, Args, Clone, Default)]
pub struct ModelOptions {
    /// Class names in output order, for a checkpoint that does not name them [default: the
    /// file's own, else classes.txt beside it]
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    pub classes: Option<Vec<String>>,
    /// Input size in pixels, for a checkpoint that does not record it (torchvision's ImageNet
    /// weights: 224).
    #[arg(long, value_name = "PIXELS")]
    pub input_size: Option<u32>,
}

impl ModelOptions {
    pub fn load_options(&self) -> crate::model::LoadOptions {
        crate::model::LoadOptions {
            classes: self.classes.clone(),
            input_size: self.input_size,
        }
    }
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A crackscope checkpoint (.safetensors), a run directory, or torchvision weights (.pth/.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub model_options: ModelOptions,
    /// Images to classify.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Print a JSON array (path, label, index, probabilities).
    #[arg(long)]
    pub json: bool,
    /// How many of the most likely classes to print per image.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A run directory (its best model) or a crackscope checkpoint (.safetensors).
    #[arg(value_name = "RUN|MODEL")]
    pub model: PathBuf,
    #[command(flatten)]
    pub model_options: ModelOptions,
    /// The ONNX file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run directories.
    #[arg(required = true, value_name = "RUN")]
    pub runs: Vec<PathBuf>,
    /// Also write the runs' curves (validation accuracy, smoothed training loss) to this PNG.
    #[arg(long, value_name = "FILE")]
    pub figure: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FiguresArgs {
    /// The run directory, or a scan folder of `scan --masks` (its threshold sweep).
    pub run: PathBuf,
    /// Folder for the PNG files [default: RUN/figures or SCAN/figures]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A checkpoint or weights file whose head (number of classes) to show [default: 2 classes].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Input size in pixels.
    #[arg(long, default_value_t = 227)]
    pub size: u32,
}

#[derive(Debug, Args)]
pub struct GradcamArgs {
    /// A crackscope checkpoint, a run directory (its best model) or torchvision weights.
    #[arg(long, conflicts_with = "run", required_unless_present = "run")]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub model_options: ModelOptions,
    /// Images to explain.
    #[arg(conflicts_with = "run", required_unless_present = "run")]
    pub images: Vec<PathBuf>,
    /// Explain random images of this run's test split; the figure goes into the run directory.
    #[arg(long, value_name = "RUN")]
    pub run: Option<PathBuf>,
    /// How many test images with --run (the seed shows 12, in 3 rows of 4).
    #[arg(long, default_value_t = 12)]
    pub count: usize,
    /// With --run: only test images the model gets wrong.
    #[arg(long, requires = "run")]
    pub misclassified: bool,
    /// Seed of the choice of test images with --run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// seed (the demo's formula), gradcam, gradcam++ or ablation (gradient-free, slower)
    /// [default: the recipe's gradcam.method: the run's, else config/default.toml's]
    #[arg(long)]
    pub method: Option<Method>,
    /// Layer whose feature maps are explained: relu_conv10 (the seed's), fire2-concat ...
    /// fire9-concat, ... [default: the recipe's gradcam.layer]
    #[arg(long)]
    pub layer: Option<String>,
    /// Class to explain, by name or output index [default: each image's predicted class]
    #[arg(long)]
    pub class: Option<String>,
    /// Folder for the overlays and the figure [default: gradcam]
    #[arg(long, conflicts_with = "run")]
    pub out: Option<PathBuf>,
    /// Print a JSON array (path, label, index, score, predicted, method, layer, cam, ...).
    #[arg(long)]
    pub json: bool,
    /// Heatmap opacity, 0 (image only) to 1 (heatmap only) [default: the recipe's gradcam.alpha]
    #[arg(long, value_parser = parse_alpha)]
    pub alpha: Option<f32>,
    /// Heatmap colours: jet, turbo or gray [default: the recipe's gradcam.colormap]
    #[arg(long)]
    pub colormap: Option<Colormap>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// Images per training and inference step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Input size in pixels (square).
    #[arg(long, default_value_t = 227)]
    pub size: u32,
    /// Worker threads [default: all cores, or RAYON_NUM_THREADS]
    #[arg(long)]
    pub threads: Option<usize>,
    /// Timed repetitions of each measurement (after 2 warm-up runs); the median is reported.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Print one JSON object (the keys of scripts/bench_torch.py) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum WeightsCommand {
    /// Download torchvision's squeezenet1_1-b8a52dc0.pth (or $CRACKSCOPE_WEIGHTS_URL), check its
    /// SHA-256 and cache it; prints the cached file. Does nothing when it is already cached.
    Fetch,
    /// List the cached weight files and whether each passes its check.
    List,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// A run directory (its best model) or a checkpoint file.
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub model_options: ModelOptions,
    /// Photos, or folders of photos (JPEG, PNG, TIFF, BMP, WebP; not searched recursively).
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
    /// Folder for the overlay, mask and map PNGs and scan.json (`crackscope watch FOLDER` shows them).
    #[arg(long, default_value = "scan")]
    pub out: PathBuf,
    /// Pixels between windows [default: half a window, rounded down to 16 px]
    #[arg(long)]
    pub stride: Option<u32>,
    /// The crack class [default: the class named Positive, crack or cracked, any case]
    #[arg(long)]
    pub positive: Option<String>,
    /// Crack probability from which a window is outlined and a pixel is in the mask.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Folder of true crack masks (same file stem as each photo; nonzero = crack) to score against.
    #[arg(long)]
    pub masks: Option<PathBuf>,
    /// Pixel tolerance of the pixel-level scores (--masks).
    #[arg(long, default_value_t = 2)]
    pub tolerance: u32,
    /// Print a JSON array with an object per photo instead of the table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub sharding: ShardArgs,
    /// Scan the photo resized by each of these factors (e.g. 0.25,0.5,1): every scale's windows
    /// mapped back to the photo, the map the largest value of any scale [default: 1]
    #[arg(long, value_delimiter = ',', value_name = "FACTOR,...")]
    pub scale: Vec<f32>,
    /// What each window's descriptor (for the scan view's typical order, `y`) is computed from:
    /// shared, the one pass over the photo (free); alone, each window run by itself as training
    /// sees it (a second pass: a scan about three times as long at the default stride; the
    /// typical order was measured better with it)
    #[arg(long, value_enum, default_value_t)]
    pub descriptors: crate::scan::descriptors::Source,
}

/// Which share of a scan's photos this process takes (`crackscope scan`; array jobs).
#[derive(Debug, Args, Clone, Default)]
pub struct ShardArgs {
    /// Scan only shard K of N of the photos (every N-th photo from the K-th), into
    /// OUT/shard-K-of-N; `crackscope scan-merge OUT` merges the shards [default: from
    /// SLURM_ARRAY_TASK_ID, or JOB_COMPLETION_INDEX with --shard-count, when set]
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::scan::plan::Shard>,
    /// The number of shards, for a Kubernetes indexed job (JOB_COMPLETION_INDEX) or to override
    /// SLURM_ARRAY_TASK_COUNT.
    #[arg(long, value_name = "N")]
    pub shard_count: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ScanMergeArgs {
    /// The merged scan folder (new, empty, or an earlier merge of the same scan); by default
    /// also where the shards' folders are (OUT/shard-K-of-N).
    pub out: PathBuf,
    /// The shards' scan folders [default: the shard-K-of-N folders inside OUT]
    pub shards: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PatchesArgs {
    /// Folder of photos (JPEG, PNG, TIFF, BMP, WebP; not searched recursively).
    #[arg(long, required_unless_present = "scan", conflicts_with = "scan")]
    pub photos: Option<PathBuf>,
    /// Folder of crack masks, one per photo with the same file stem; nonzero = crack.
    #[arg(long, required_unless_present = "scan", conflicts_with = "scan")]
    pub masks: Option<PathBuf>,
    /// Instead of photos and masks: a scan folder whose labels.csv (windows labelled in
    /// `crackscope watch`) gives the patches and their classes.
    #[arg(long, value_name = "SCAN_FOLDER")]
    pub scan: Option<PathBuf>,
    /// The dataset folder to write (must not exist or be empty).
    #[arg(long)]
    pub out: PathBuf,
    /// Window side in pixels (the network's input size).
    #[arg(long, default_value_t = 227)]
    pub size: u32,
    /// Pixels between windows [default: scan's default for --size, half a window rounded down to
    /// 16 px, so the patches are the windows a scan classifies]
    #[arg(long)]
    pub stride: Option<u32>,
    /// Share of a window's central region (the middle half of each side) that crack pixels must
    /// cover for a Positive patch; 0.005 is a 1-pixel hairline across about 60 % of it at 227 px.
    #[arg(long, default_value_t = 0.005)]
    pub min_crack_share: f64,
    /// Resize each photo and its mask by this factor before cutting (as `scan --scale` does), so
    /// a window covers what a training patch covered; x and y are then in the resized photo.
    #[arg(long, default_value_t = 1.0, conflicts_with = "scan")]
    pub scale: f32,
}
