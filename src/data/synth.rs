//! Procedurally generated concrete surfaces, with and without cracks: a crack/no-crack dataset that
//! ships with the code, so the demo, the tests and the benchmarks need no download.
//!
//! Every image is a pure function of a 64-bit seed, so any file can be regenerated from
//! `(seed, class, index)`, and every Positive image comes with an exact crack mask, which lets
//! Grad-CAM be checked against ground truth.
//!
//! Both classes draw their surfaces from the same generator, hard negatives included (formwork
//! seams, scratches, drawn lines of uniform width, dark stains), so the only systematic difference
//! between the classes is the crack itself: jagged, branching, varying in width and contrast.
//! The crack is drawn from its own random stream, so `render(seed, size, true)` is exactly
//! `render(seed, size, false)` plus a crack.

use std::f32::consts::{PI, TAU};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use image::codecs::jpeg::JpegEncoder;
use image::{GrayImage, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Folder names, in class-index order (the order a sorted folder scan finds them in).
pub const CLASS_NAMES: [&str; 2] = ["Negative", "Positive"];
/// File name prefixes, in class-index order.
const FILE_PREFIXES: [&str; 2] = ["neg", "pos"];
/// JPEG quality of the written files: close to the source dataset's look, without visible blocking.
pub const JPEG_QUALITY: u8 = 90;
/// Smallest and largest image side `generate` accepts: below 32 px a crack is a few pixels, above
/// 4096 px one image costs more memory than a dataset is worth.
pub const SIZE_RANGE: std::ops::RangeInclusive<u32> = 32..=4096;

/// One rendered image and the pixels its crack covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthetic {
    pub image: RgbImage,
    /// 255 where a crack covers at least half of the pixel, 0 elsewhere (all 0 for Negative).
    pub crack_mask: GrayImage,
}

/// What `generate` writes: `per_class` images of `size` x `size` pixels per class, from `seed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthOptions {
    pub per_class: usize,
    pub size: u32,
    pub seed: u64,
}

/// What `generate` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSummary {
    /// The folder holding `Negative/` and `Positive/`.
    pub root: PathBuf,
    /// Images written per class.
    pub per_class: usize,
    /// Total size of the JPEG files.
    pub bytes: u64,
}

/// The seed of image `index` of class `class` (0 = Negative, 1 = Positive) in the dataset made from
/// `seed`; `index` is the number in the file name (`neg_00001.jpg` is index 1).
pub fn image_seed(seed: u64, class: usize, index: usize) -> u64 {
    let h = splitmix64(seed);
    let h = splitmix64(h ^ class as u64);
    splitmix64(h ^ index as u64)
}

/// The file name of image `index` of class `class` (0 or 1), relative to the class folder.
fn file_name(class: usize, index: usize) -> String {
    format!("{}_{index:05}.jpg", FILE_PREFIXES[class])
}

/// Renders one `size` x `size` concrete surface, with a crack when `crack` is true. Sizes from
/// [`SIZE_RANGE`] look right; a size of 0 gives empty images.
pub fn render(seed: u64, size: u32, crack: bool) -> Synthetic {
    render_at_scale(seed, size, crack, None)
}

/// A whole synthetic photo of `size` x `size` pixels whose texture and cracks are drawn at the
/// scale of a `detail`-pixel image (a crack 3 to 10 px wide in a 227 px patch stays that wide in a
/// 2000 px photo), with cracks crossing it and its exact crack mask: ground truth for scanning
/// whole photos. `render_photo(seed, n, n, ..)` equals `render(seed, n, ..)`.
pub fn render_photo(seed: u64, size: u32, detail: u32, crack: bool) -> Synthetic {
    render_at_scale(seed, size, crack, Some(detail as f32 / 227.0))
}

fn render_at_scale(seed: u64, size: u32, crack: bool, scale: Option<f32>) -> Synthetic {
    if size == 0 {
        return Synthetic {
            image: RgbImage::new(0, 0),
            crack_mask: GrayImage::new(0, 0),
        };
    }
    let n = size as usize;
    let mut surface_rng = ChaCha8Rng::seed_from_u64(seed);
    let mut crack_rng = ChaCha8Rng::seed_from_u64(seed);
    crack_rng.set_stream(1);

    let mut look = Look::draw(&mut surface_rng, n);
    if let Some(scale) = scale {
        look.scale = scale;
    }
    let mut tone = vec![0.0f32; n * n];
    paint_surface(&mut tone, n, &look, &mut surface_rng);

    let mut cracks = if crack {
        Ink::with_cover(n)
    } else {
        Ink::new(n)
    };
    if crack {
        draw_cracks(&mut cracks, &look, &mut crack_rng);
    }
    let mut image = RgbImage::new(size, size);
    let mut crack_mask = GrayImage::new(size, size);
    let to_byte = look.tint.map(|tint| tint * 255.0);
    for (i, (rgb, mask)) in image.pixels_mut().zip(crack_mask.pixels_mut()).enumerate() {
        // The grain comes from the surface stream, which the crack does not touch, so it is the
        // same with and without a crack.
        let grain = look.grain * surface_rng.random_range(-1.0f32..1.0);
        let lum = tone[i] * (1.0 - cracks.at(i)) + grain;
        // `as u8` saturates, so this rounds and clamps to 0..=255.
        rgb.0 = to_byte.map(|scale| (lum * scale + 0.5) as u8);
        if crack && cracks.cover[i] >= 0.5 {
            mask.0[0] = 255;
        }
    }
    Synthetic { image, crack_mask }
}

/// Sides `generate_photos` accepts: a whole photo keeps three float planes of its size in memory.
pub const PHOTO_SIZE_RANGE: std::ops::RangeInclusive<u32> = 64..=8192;

/// Writes `count` whole photos ([`render_photo`]) as `out/photos/photo_00001.jpg ...` and their
/// exact crack masks as `out/masks/photo_00001.png ...` (255 = crack). Every fourth photo has no
/// crack. Returns `out`.
pub fn generate_photos(
    out: &Path,
    count: usize,
    size: u32,
    detail: u32,
    seed: u64,
) -> Result<PathBuf> {
    if !PHOTO_SIZE_RANGE.contains(&size) {
        bail!(
            "synthetic photo size {size} is outside {}..={} pixels",
            PHOTO_SIZE_RANGE.start(),
            PHOTO_SIZE_RANGE.end()
        );
    }
    if !SIZE_RANGE.contains(&detail) || detail > size {
        bail!(
            "--detail {detail} must be within {}..={} pixels and at most the photo size {size}",
            SIZE_RANGE.start(),
            SIZE_RANGE.end()
        );
    }
    let (photos, masks) = (out.join("photos"), out.join("masks"));
    for dir in [&photos, &masks] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for index in 1..=count {
        let photo = render_photo(image_seed(seed, 2, index), size, detail, index % 4 != 0);
        let name = format!("photo_{index:05}");
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY)
            .encode_image(&photo.image)
            .context("cannot encode a synthetic photo")?;
        crate::core::fsutil::write_atomic(&photos.join(format!("{name}.jpg")), &jpeg)?;
        let mut png = Vec::new();
        photo
            .crack_mask
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .context("cannot encode a crack mask")?;
        crate::core::fsutil::write_atomic(&masks.join(format!("{name}.png")), &png)?;
    }
    Ok(out.to_path_buf())
}

/// Writes `opts.per_class` Negative and Positive images as `out/Negative/neg_00001.jpg ...` and
/// `out/Positive/pos_00001.jpg ...`, in parallel; the same options always give the same bytes.
pub fn generate(out: &Path, opts: &SynthOptions) -> Result<SynthSummary> {
    if opts.per_class == 0 {
        bail!("cannot generate a synthetic dataset with 0 images per class");
    }
    if !SIZE_RANGE.contains(&opts.size) {
        bail!(
            "synthetic image size {} is outside {}..={} pixels",
            opts.size,
            SIZE_RANGE.start(),
            SIZE_RANGE.end()
        );
    }
    refuse_other_folders(out)?;
    for (class, name) in CLASS_NAMES.iter().enumerate() {
        let dir = out.join(name);
        fs::create_dir_all(&dir).with_context(|| {
            format!(
                "cannot create the synthetic dataset folder {}",
                dir.display()
            )
        })?;
        refuse_foreign_files(&dir, class, opts.per_class)?;
    }
    let bytes = (0..2 * opts.per_class)
        .into_par_iter()
        .map(|k| -> Result<u64> {
            let class = k / opts.per_class;
            let index = k % opts.per_class + 1;
            let path = out.join(CLASS_NAMES[class]).join(file_name(class, index));
            let synthetic = render(image_seed(opts.seed, class, index), opts.size, class == 1);
            let mut jpeg = Vec::new();
            JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY)
                .encode_image(&synthetic.image)
                .with_context(|| format!("cannot encode {} as JPEG", path.display()))?;
            write_unsynced(&path, &jpeg)?;
            Ok(jpeg.len() as u64)
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))?;
    Ok(SynthSummary {
        root: out.to_path_buf(),
        per_class: opts.per_class,
        bytes,
    })
}

/// Writes `bytes` under a hidden temporary name beside `path` and renames it into place, so an
/// interrupted run never leaves a truncated JPEG under a dataset name. Unlike
/// `fsutil::write_atomic` it does not wait for the disk (fsync): that costs about 8 ms a file, over
/// a minute for 8000 images, and a synthetic dataset can always be regenerated from its seed.
fn write_unsynced(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let result = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Fails when `out` holds anything besides the class folders: a folder-per-class scan of `out`
/// would take every other folder for a class (and `out` may well be a mistyped project folder).
fn refuse_other_folders(out: &Path) -> Result<()> {
    let entries = match fs::read_dir(out) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", out.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", out.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') && !CLASS_NAMES.contains(&name.as_ref()) {
            bail!(
                "{} already holds {name}; generate into an empty folder (a folder-per-class scan \
                 would read everything there as classes)",
                out.display()
            );
        }
    }
    Ok(())
}

/// Fails when `dir` holds files this run would not write (say, `neg_00900.jpg` from a larger earlier
/// run), since a folder-per-class scan would silently mix them into the dataset. Hidden files are
/// not images to a scan and are left alone.
fn refuse_foreign_files(dir: &Path, class: usize, per_class: usize) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let ours = name
            .strip_prefix(FILE_PREFIXES[class])
            .and_then(|rest| rest.strip_prefix('_'))
            .and_then(|rest| rest.strip_suffix(".jpg"))
            .and_then(|digits| digits.parse::<usize>().ok())
            .is_some_and(|index| {
                (1..=per_class).contains(&index) && name == file_name(class, index)
            });
        if !ours {
            bail!(
                "{} already holds {name}, which this run would not write; generate into an empty \
                 folder so no stale images mix into the dataset",
                dir.display()
            );
        }
    }
    Ok(())
}

/// Mixes a 64-bit value into a well-spread one (SplitMix64's finaliser): cheap, and the same on
/// every platform.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The per-image choices that shape a surface; drawn once so every part of the image agrees.
struct Look {
    n: usize,
    /// Pixels per pixel of the 227 px reference size: feature sizes scale with the image.
    scale: f32,
    /// Mean luminance in 0..1.
    base: f32,
    /// Multiplier on every texture amplitude: smooth, trowelled surfaces to rough, sandy ones.
    roughness: f32,
    /// Per-pixel sensor-like noise amplitude, in luminance units.
    grain: f32,
    /// Colour cast per channel (warm or cool grey).
    tint: [f32; 3],
}

impl Look {
    fn draw(rng: &mut ChaCha8Rng, n: usize) -> Self {
        let warmth = rng.random_range(-0.02..0.06);
        Look {
            n,
            scale: n as f32 / 227.0,
            base: rng.random_range(0.42..0.80),
            roughness: rng.random_range(0.45..1.5),
            grain: rng.random_range(0.01..0.045),
            tint: [1.0 + warmth, 1.0 + warmth * 0.3, 1.0 - warmth],
        }
    }
}

/// Fills `tone` (luminance, about 0..1) with a crack-free concrete surface.
fn paint_surface(tone: &mut [f32], n: usize, look: &Look, rng: &mut ChaCha8Rng) {
    tone.fill(look.base);

    // Texture: value noise from broad mottling down to aggregate-sized speckle.
    for (cell, amplitude) in [
        (0.45, 0.05),
        (0.18, 0.035),
        (0.07, 0.025),
        (0.025, 0.025),
        (0.01, 0.03),
    ] {
        let cell = (cell * n as f32).max(2.0);
        let amplitude = amplitude * look.roughness * rng.random_range(0.5..1.5);
        for_each_value_noise(n, cell, rng, |i, v| tone[i] += amplitude * v);
    }

    // Broad stains (damp patches, efflorescence): thresholded low-frequency noise, darker or lighter.
    for _ in 0..rng.random_range(0..3) {
        let stain = fractal_noise(n, n as f32 * rng.random_range(0.2..0.45), rng);
        let threshold = rng.random_range(0.05..0.35);
        let strength = rng.random_range(-0.05..0.1);
        for (t, v) in tone.iter_mut().zip(&stain) {
            *t *= 1.0 - strength * smoothstep(threshold, threshold + 0.35, *v);
        }
    }

    // Hard negative: small dark stains (oil, moisture), as dark as a crack but blob-shaped.
    if rng.random_bool(0.2) {
        let stain = fractal_noise(n, n as f32 * rng.random_range(0.08..0.2), rng);
        let threshold = rng.random_range(0.3..0.5);
        let strength = rng.random_range(0.12..0.35);
        for (t, v) in tone.iter_mut().zip(&stain) {
            *t *= 1.0 - strength * smoothstep(threshold, threshold + 0.2, *v);
        }
    }

    paint_pores(tone, look, rng);
    paint_lines(tone, look, rng);
    paint_shading(tone, n, rng);
}

/// Small dark holes left by air bubbles, a few with a lit rim.
fn paint_pores(tone: &mut [f32], look: &Look, rng: &mut ChaCha8Rng) {
    let n = look.n;
    let count = (rng.random_range(0.0..40.0f32).powi(2) / 40.0 * look.scale * look.scale) as usize;
    for _ in 0..count {
        let cx = rng.random_range(0.0..n as f32);
        let cy = rng.random_range(0.0..n as f32);
        let radius = (0.5 + 2.2 * rng.random::<f32>().powi(3)) * look.scale.max(0.5);
        let depth = rng.random_range(0.15..0.5);
        let rim = if rng.random_bool(0.3) {
            rng.random_range(0.03..0.1)
        } else {
            0.0
        };
        let reach = radius + 1.5;
        let (x0, x1) = pixel_span(cx - reach, cx + reach, n);
        let (y0, y1) = pixel_span(cy - reach, cy + reach, n);
        for y in y0..y1 {
            for x in x0..x1 {
                let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
                let inside = (radius + 0.5 - d).clamp(0.0, 1.0);
                let on_rim = (1.0 - (d - radius - 0.5).abs()).clamp(0.0, 1.0);
                tone[y * n + x] *= (1.0 - depth * inside) * (1.0 + rim * on_rim);
            }
        }
    }
}

/// Straight and gently curved lines that are not cracks: formwork seams, drawn lines of uniform
/// width, scratches.
fn paint_lines(tone: &mut [f32], look: &Look, rng: &mut ChaCha8Rng) {
    let n = look.n as f32;
    let mut dark = Ink::new(look.n);
    let mut light = Ink::new(look.n);

    // Formwork seams: faint, full-length, nearly axis-aligned, often with a tone step across them.
    if rng.random_bool(0.3) {
        for _ in 0..rng.random_range(1..=2) {
            let vertical = rng.random_bool(0.5);
            let at = rng.random_range(0.1..0.9) * n;
            let tilt = rng.random_range(-0.04..0.04) * n;
            let (a, b) = if vertical {
                ((at, -2.0), (at + tilt, n + 2.0))
            } else {
                ((-2.0, at), (n + 2.0, at + tilt))
            };
            let width = rng.random_range(0.8..2.2) * look.scale.max(0.6);
            dark.line(a, b, width, rng.random_range(0.04..0.15));
            let step = rng.random_range(-0.04..0.04);
            for (i, t) in tone.iter_mut().enumerate() {
                let (x, y) = ((i % look.n) as f32, (i / look.n) as f32);
                if side_of(a, b, (x, y)) > 0.0 {
                    *t *= 1.0 + step;
                }
            }
        }
    }

    // Drawn or cut lines of uniform width and crack-like darkness, straight or slightly bowed.
    if rng.random_bool(0.2) {
        for _ in 0..rng.random_range(1..=2) {
            let (a, b) = random_chord(rng, n);
            let bow = rng.random_range(-0.12..0.12) * distance(a, b);
            let width = rng.random_range(0.9..3.5) * look.scale.max(0.6);
            dark.curve(a, b, bow, width, rng.random_range(0.15..0.45));
        }
    }

    // Scratches: short, thin, straight, lighter or darker than the surface.
    if rng.random_bool(0.25) {
        for _ in 0..rng.random_range(1..=4) {
            let a = (rng.random_range(0.0..n), rng.random_range(0.0..n));
            let angle = rng.random_range(0.0..TAU);
            let length = rng.random_range(0.1..0.35) * n;
            let b = (a.0 + length * angle.cos(), a.1 + length * angle.sin());
            let width = rng.random_range(0.6..1.3) * look.scale.max(0.8);
            let target = if rng.random_bool(0.5) {
                &mut dark
            } else {
                &mut light
            };
            target.line(a, b, width, rng.random_range(0.08..0.22));
        }
    }

    for (i, t) in tone.iter_mut().enumerate() {
        *t *= (1.0 - dark.at(i)) * (1.0 + light.at(i));
    }
}

/// Uneven lighting: a linear gradient across the frame and a vignette towards the corners.
fn paint_shading(tone: &mut [f32], n: usize, rng: &mut ChaCha8Rng) {
    let angle = rng.random_range(0.0..TAU);
    let (gx, gy) = (angle.cos(), angle.sin());
    let gradient = rng.random_range(0.0..0.12);
    let vignette = rng.random_range(0.0..0.3);
    let half = n as f32 / 2.0;
    for (i, t) in tone.iter_mut().enumerate() {
        let u = ((i % n) as f32 + 0.5 - half) / half;
        let v = ((i / n) as f32 + 0.5 - half) / half;
        *t *= (1.0 + gradient * (u * gx + v * gy)) * (1.0 - vignette * (u * u + v * v) / 2.0);
    }
}

/// Draws one to three cracks: some cross the whole frame, some start and end inside it. A crack
/// that only grazes a corner would leave a Positive with hardly any crack in view, so cracks are
/// added (up to three more) until at least a third of the frame's side of crack path lies inside it.
fn draw_cracks(cracks: &mut Ink, look: &Look, rng: &mut ChaCha8Rng) {
    let n = look.n as f32;
    let count = match rng.random_range(0.0..1.0f32) {
        p if p < 0.7 => 1,
        p if p < 0.95 => 2,
        _ => 3,
    };
    let mut in_frame = 0.0;
    let mut drawn = 0;
    while drawn < count || (in_frame < n / 3.0 && drawn < count + 3) {
        drawn += 1;
        // A quarter hairline, the rest open cracks several pixels wide.
        let width = if rng.random_bool(0.25) {
            rng.random_range(1.5..2.5)
        } else {
            rng.random_range(2.5..10.0)
        };
        let width = width * look.scale.max(0.5);
        let walk = if rng.random_bool(0.7) {
            // Enter from a random edge, heading roughly inwards, and run until it leaves the frame.
            let edge = rng.random_range(0..4);
            let along = rng.random_range(0.2..0.8) * n;
            let (start, inward) = match edge {
                0 => ((along, -1.0), PI / 2.0),
                1 => ((n + 1.0, along), PI),
                2 => ((along, n + 1.0), -PI / 2.0),
                _ => ((-1.0, along), 0.0),
            };
            CrackWalk {
                start,
                heading: inward + rng.random_range(-0.6..0.6),
                length: 3.0 * n,
                width,
            }
        } else {
            // Short cracks are narrow: a wide one tapering within the frame would look like a leaf.
            let start = (
                rng.random_range(0.15..0.85) * n,
                rng.random_range(0.15..0.85) * n,
            );
            let length = rng.random_range(0.4..0.9) * n;
            let width = width.min(4.0 * look.scale.max(0.5));
            CrackWalk {
                start,
                heading: rng.random_range(0.0..TAU),
                length,
                width,
            }
        };
        in_frame += walk.draw(cracks, look, rng, 0);
    }
}

/// One crack (or branch) as a random walk: the heading jitters and kinks but is pulled back
/// towards a slowly drifting main direction, so the path is jagged yet goes somewhere.
struct CrackWalk {
    start: (f32, f32),
    heading: f32,
    length: f32,
    width: f32,
}

impl CrackWalk {
    const MAX_BRANCH_DEPTH: u32 = 2;

    /// Draws the crack and its branches; returns the length of its own path inside the frame.
    fn draw(&self, cracks: &mut Ink, look: &Look, rng: &mut ChaCha8Rng, depth: u32) -> f32 {
        let n = look.n as f32;
        let step = 1.5 * look.scale.max(0.5);
        let steps = (self.length / step).ceil() as usize;
        let jag = rng.random_range(0.03..0.12);
        let kink_chance = rng.random_range(0.06..0.14);
        let branch_chance = if depth < Self::MAX_BRANCH_DEPTH {
            rng.random_range(0.0..0.015)
        } else {
            0.0
        };
        // Width and contrast wander along the crack: smooth 1-D value noise over the step index.
        let mut width_profile = Wander::new(rng, 0.45, 1.5, 12.0);
        let mut contrast_profile = Wander::new(rng, 0.5, 0.9, 20.0);
        // Cracks inside the frame taper to hairline tips; those crossing it end off-frame.
        let taper_steps = (steps as f32 * 0.25).max(1.0);
        let (mut main, mut heading, mut at) = (self.heading, self.heading, self.start);
        let mut previous: Option<(f32, f32)> = None;
        let mut in_frame = 0.0;
        for i in 0..steps {
            main += rng.random_range(-0.015..0.015);
            heading += rng.random_range(-jag..jag) + 0.1 * wrap_angle(main - heading);
            if rng.random_bool(kink_chance) {
                let turn = rng.random_range(0.3..1.1);
                heading += if rng.random_bool(0.5) { turn } else { -turn };
            }
            let next = (at.0 + step * heading.cos(), at.1 + step * heading.sin());
            let tip = ((i + 1) as f32 / taper_steps)
                .min((steps - i) as f32 / taper_steps)
                .min(1.0);
            let ragged = rng.random_range(0.85..1.15);
            let width =
                (self.width * width_profile.next(rng) * ragged * (0.3 + 0.7 * tip)).max(0.9);
            let contrast = contrast_profile.next(rng) * (0.6 + 0.4 * tip);
            let (w0, c0) = previous.unwrap_or((width, contrast));
            cracks.segment(at, next, (w0, width), (c0, contrast));
            previous = Some((width, contrast));
            if rng.random_bool(branch_chance) {
                let side = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
                let branch = CrackWalk {
                    start: next,
                    heading: heading + side * rng.random_range(0.35..1.1),
                    length: rng.random_range(0.15..0.45) * n,
                    width: width * rng.random_range(0.45..0.8),
                };
                branch.draw(cracks, look, rng, depth + 1);
            }
            at = next;
            if (0.0..n).contains(&at.0) && (0.0..n).contains(&at.1) {
                in_frame += step;
            }
            let margin = 2.0 * self.width + 2.0;
            if at.0 < -margin || at.1 < -margin || at.0 > n + margin || at.1 > n + margin {
                break;
            }
        }
        in_frame
    }
}

/// A value that wanders smoothly within `low..high`, advancing one step per call.
struct Wander {
    low: f32,
    high: f32,
    period: f32,
    from: f32,
    to: f32,
    t: f32,
}

impl Wander {
    fn new(rng: &mut ChaCha8Rng, low: f32, high: f32, period: f32) -> Self {
        Wander {
            low,
            high,
            period,
            from: rng.random_range(low..high),
            to: rng.random_range(low..high),
            t: 0.0,
        }
    }

    fn next(&mut self, rng: &mut ChaCha8Rng) -> f32 {
        self.t += 1.0 / self.period;
        if self.t >= 1.0 {
            self.t -= 1.0;
            self.from = self.to;
            self.to = rng.random_range(self.low..self.high);
        }
        self.from + (self.to - self.from) * smoothstep(0.0, 1.0, self.t)
    }
}

/// Anti-aliased strokes: `ink` is how much each pixel darkens (0..1), `cover` how much of it the
/// strokes cover (kept only where a mask is wanted); both keep the maximum over overlapping
/// strokes. `ink` is allocated at the first stroke: most images have no lines to draw, and fresh
/// pages cost more than the drawing.
struct Ink {
    n: usize,
    ink: Vec<f32>,
    cover: Vec<f32>,
}

impl Ink {
    fn new(n: usize) -> Self {
        Ink {
            n,
            ink: Vec::new(),
            cover: Vec::new(),
        }
    }

    fn with_cover(n: usize) -> Self {
        Ink {
            n,
            ink: Vec::new(),
            cover: vec![0.0; n * n],
        }
    }

    /// The ink at pixel `i`, 0 where nothing was drawn.
    fn at(&self, i: usize) -> f32 {
        self.ink.get(i).copied().unwrap_or(0.0)
    }

    /// A straight stroke of uniform width and strength, cut into short pieces so each piece's
    /// bounding box stays small.
    fn line(&mut self, a: (f32, f32), b: (f32, f32), width: f32, strength: f32) {
        self.curve(a, b, 0.0, width, strength);
    }

    /// A stroke from `a` to `b` bowed sideways by `bow` pixels at its middle (a quadratic curve).
    fn curve(&mut self, a: (f32, f32), b: (f32, f32), bow: f32, width: f32, strength: f32) {
        let length = distance(a, b);
        if length == 0.0 {
            return;
        }
        let normal = ((a.1 - b.1) / length, (b.0 - a.0) / length);
        let control = (
            (a.0 + b.0) / 2.0 + 2.0 * bow * normal.0,
            (a.1 + b.1) / 2.0 + 2.0 * bow * normal.1,
        );
        let pieces = (length / 6.0).ceil().max(1.0) as usize;
        let point = |t: f32| {
            let s = 1.0 - t;
            (
                s * s * a.0 + 2.0 * s * t * control.0 + t * t * b.0,
                s * s * a.1 + 2.0 * s * t * control.1 + t * t * b.1,
            )
        };
        for k in 0..pieces {
            let (p, q) = (
                point(k as f32 / pieces as f32),
                point((k + 1) as f32 / pieces as f32),
            );
            self.segment(p, q, (width, width), (strength, strength));
        }
    }

    /// One straight piece whose width and strength change linearly from `a` to `b`. A pixel's
    /// coverage is how far its centre lies inside the stroke edge, plus half a pixel (so a pixel
    /// whose centre is on the edge is half covered).
    fn segment(&mut self, a: (f32, f32), b: (f32, f32), width: (f32, f32), strength: (f32, f32)) {
        let n = self.n;
        let reach = width.0.max(width.1) / 2.0 + 1.0;
        let (x0, x1) = pixel_span(a.0.min(b.0) - reach, a.0.max(b.0) + reach, n);
        let (y0, y1) = pixel_span(a.1.min(b.1) - reach, a.1.max(b.1) + reach, n);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let length_sq = dx * dx + dy * dy;
        if self.ink.is_empty() {
            self.ink = vec![0.0; n * n];
        }
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = (x as f32 + 0.5 - a.0, y as f32 + 0.5 - a.1);
                let t = if length_sq > 0.0 {
                    ((px * dx + py * dy) / length_sq).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let d = ((px - t * dx).powi(2) + (py - t * dy).powi(2)).sqrt();
                let half_width = (width.0 + (width.1 - width.0) * t) / 2.0;
                let cover = (half_width + 0.5 - d).clamp(0.0, 1.0);
                if cover > 0.0 {
                    let i = y * n + x;
                    let ink = cover * (strength.0 + (strength.1 - strength.0) * t);
                    self.ink[i] = self.ink[i].max(ink);
                    if let Some(c) = self.cover.get_mut(i) {
                        *c = c.max(cover);
                    }
                }
            }
        }
    }
}

/// Calls `f(pixel index, value)` for every pixel of an `n` x `n` field of value noise: random values
/// in -1..1 on a lattice `cell` pixels apart (randomly offset), smoothstep-interpolated. Rows of the
/// lattice are blended once per image row, so each pixel costs two loads and a lerp.
fn for_each_value_noise(n: usize, cell: f32, rng: &mut ChaCha8Rng, mut f: impl FnMut(usize, f32)) {
    let cells = (n as f32 / cell).ceil() as usize + 2;
    let lattice: Vec<f32> = (0..cells * cells)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let axis = |offset: f32| -> Vec<(usize, f32)> {
        (0..n)
            .map(|p| {
                let f = p as f32 / cell + offset;
                let i = (f as usize).min(cells - 2);
                (i, smoothstep(0.0, 1.0, f - i as f32))
            })
            .collect()
    };
    let columns = axis(rng.random_range(0.0..1.0));
    let rows = axis(rng.random_range(0.0..1.0));
    let mut blended = vec![0.0f32; cells];
    for (y, &(j, ty)) in rows.iter().enumerate() {
        let (upper, lower) = (
            &lattice[j * cells..][..cells],
            &lattice[(j + 1) * cells..][..cells],
        );
        for ((b, u), l) in blended.iter_mut().zip(upper).zip(lower) {
            *b = u + (l - u) * ty;
        }
        for (x, &(i, tx)) in columns.iter().enumerate() {
            f(y * n + x, blended[i] + (blended[i + 1] - blended[i]) * tx);
        }
    }
}

/// Three octaves of value noise (cells `cell`, about `cell / 2` and `cell / 4` apart), summed and
/// normalised to about -1..1: blob outlines without the square look of a single lattice.
fn fractal_noise(n: usize, cell: f32, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut field = vec![0.0f32; n * n];
    for (divisor, weight) in [(1.0, 1.0 / 1.75), (2.1, 0.5 / 1.75), (4.3, 0.25 / 1.75)] {
        for_each_value_noise(n, (cell / divisor).max(2.0), rng, |i, v| {
            field[i] += weight * v
        });
    }
    field
}

/// A random chord of the frame: either edge to edge or a shorter stretch inside it.
fn random_chord(rng: &mut ChaCha8Rng, n: f32) -> ((f32, f32), (f32, f32)) {
    let centre = (
        rng.random_range(0.2..0.8) * n,
        rng.random_range(0.2..0.8) * n,
    );
    let angle = rng.random_range(0.0..TAU);
    let half = if rng.random_bool(0.5) {
        n
    } else {
        rng.random_range(0.15..0.4) * n
    };
    let (c, s) = (angle.cos() * half, angle.sin() * half);
    ((centre.0 - c, centre.1 - s), (centre.0 + c, centre.1 + s))
}

/// The pixel indices whose centres can lie within `lo..hi`, clipped to `0..n`.
fn pixel_span(lo: f32, hi: f32, n: usize) -> (usize, usize) {
    let lo = lo.floor().max(0.0) as usize;
    let hi = (hi.ceil().max(0.0) as usize).min(n);
    (lo.min(hi), hi)
}

fn smoothstep(edge0: f32, edge1: f32, x: f32) -> f32 {
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn distance(a: (f32, f32), b: (f32, f32)) -> f32 {
    ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt()
}

/// Which side of the line through `a` and `b` the point `p` lies on (sign of the cross product).
fn side_of(a: (f32, f32), b: (f32, f32), p: (f32, f32)) -> f32 {
    (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0)
}

/// `angle` folded into -PI..PI.
fn wrap_angle(angle: f32) -> f32 {
    (angle + PI).rem_euclid(TAU) - PI
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(per_class: usize, size: u32) -> SynthOptions {
        SynthOptions {
            per_class,
            size,
            seed: 1,
        }
    }

    fn luminance(image: &RgbImage) -> Vec<f32> {
        image
            .pixels()
            .map(|p| (p.0[0] as f32 + p.0[1] as f32 + p.0[2] as f32) / 3.0)
            .collect()
    }

    fn mean(values: impl Iterator<Item = f32>) -> f32 {
        let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
        sum / count.max(1) as f32
    }

    #[test]
    fn same_seed_renders_identical_images_and_masks() {
        for crack in [false, true] {
            assert_eq!(render(42, 227, crack), render(42, 227, crack));
        }
    }

    #[test]
    fn different_seeds_render_different_images() {
        let images: Vec<RgbImage> = (0..20)
            .map(|k| render(image_seed(3, 0, k), 96, false).image)
            .collect();
        for a in 0..images.len() {
            for b in a + 1..images.len() {
                assert_ne!(images[a], images[b], "images {a} and {b} are identical");
            }
        }
        assert_ne!(image_seed(3, 0, 1), image_seed(3, 1, 1));
        assert_ne!(image_seed(3, 0, 1), image_seed(3, 0, 2));
        assert_ne!(image_seed(3, 0, 1), image_seed(4, 0, 1));
    }

    #[test]
    fn every_positive_has_a_crack_mask_and_no_negative_has_one() {
        for size in [32, 64, 227] {
            for index in 1..=150 {
                let positive = render(image_seed(11, 1, index), size, true);
                let crack_pixels = positive
                    .crack_mask
                    .pixels()
                    .filter(|p| p.0[0] == 255)
                    .count();
                // At least a short stroke's worth of pixels, well short of the whole frame.
                let area = (size * size) as usize;
                assert!(
                    crack_pixels >= size as usize / 3,
                    "size {size} index {index}: {crack_pixels} px"
                );
                assert!(
                    crack_pixels < area / 3,
                    "size {size} index {index}: {crack_pixels} px"
                );
                assert!(positive
                    .crack_mask
                    .pixels()
                    .all(|p| p.0[0] == 0 || p.0[0] == 255));

                let negative = render(image_seed(11, 0, index), size, false);
                assert!(
                    negative.crack_mask.pixels().all(|p| p.0[0] == 0),
                    "size {size} index {index}"
                );
            }
        }
    }

    #[test]
    fn crack_pixels_are_darker_than_their_neighbourhood() {
        let n = 227usize;
        let mut margins = Vec::new();
        for index in 1..=100 {
            let positive = render(image_seed(5, 1, index), n as u32, true);
            let lum = luminance(&positive.image);
            let mask: Vec<bool> = positive
                .crack_mask
                .pixels()
                .map(|p| p.0[0] == 255)
                .collect();
            // The neighbourhood: pixels within 6 px of a crack pixel that are not crack pixels.
            let mut near = vec![false; n * n];
            for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
                let (x, y) = (i % n, i / n);
                for ny in y.saturating_sub(6)..(y + 7).min(n) {
                    for nx in x.saturating_sub(6)..(x + 7).min(n) {
                        near[ny * n + nx] = true;
                    }
                }
            }
            let crack = mean((0..n * n).filter(|&i| mask[i]).map(|i| lum[i]));
            let around = mean((0..n * n).filter(|&i| near[i] && !mask[i]).map(|i| lum[i]));
            margins.push(around - crack);
        }
        // Measured: 83 grey levels on average, 46 at least.
        let average = mean(margins.iter().copied());
        let faintest = margins.iter().copied().fold(f32::INFINITY, f32::min);
        assert!(
            average > 50.0,
            "cracks are on average only {average:.1} grey levels darker"
        );
        assert!(
            faintest > 20.0,
            "a crack is only {faintest:.1} grey levels darker than its surroundings"
        );
    }

    /// The crack comes from its own random stream: with and without it, the surface is the same
    /// and only the crack's pixels and their anti-aliased fringe differ. (The frame's outer band
    /// is left out: a crack running just outside the frame darkens it with a fringe and no core.)
    #[test]
    fn a_crack_changes_only_the_pixels_near_it() {
        const REACH: usize = 3;
        let n = 128usize;
        let mut changed_total = 0;
        for index in 1..=20 {
            let seed = image_seed(9, 1, index);
            let with = render(seed, n as u32, true);
            let without = render(seed, n as u32, false);
            let mask: Vec<bool> = with.crack_mask.pixels().map(|p| p.0[0] == 255).collect();
            let near_crack = |x: usize, y: usize| {
                (y.saturating_sub(REACH)..(y + REACH + 1).min(n)).any(|ny| {
                    (x.saturating_sub(REACH)..(x + REACH + 1).min(n)).any(|nx| mask[ny * n + nx])
                })
            };
            let inner = REACH..n - REACH;
            for (i, (a, b)) in with.image.pixels().zip(without.image.pixels()).enumerate() {
                let (x, y) = (i % n, i / n);
                if a != b {
                    changed_total += 1;
                    let in_band = !inner.contains(&x) || !inner.contains(&y);
                    assert!(
                        in_band || near_crack(x, y),
                        "index {index}: ({x}, {y}) changed away from the crack"
                    );
                } else {
                    assert!(
                        !mask[i],
                        "index {index}: crack pixel ({x}, {y}) left unchanged"
                    );
                }
            }
        }
        assert!(
            changed_total > 20 * n,
            "cracks changed only {changed_total} pixels"
        );
    }

    /// Mean brightness alone must not tell the classes apart: the best single threshold on it
    /// should be barely better than a coin toss.
    #[test]
    fn mean_brightness_is_not_a_giveaway() {
        let brightness = |class: usize| -> Vec<f32> {
            (1..=200)
                .map(|index| {
                    mean(
                        luminance(&render(image_seed(21, class, index), 227, class == 1).image)
                            .into_iter(),
                    )
                })
                .collect()
        };
        let (negative, positive) = (brightness(0), brightness(1));
        let mut thresholds: Vec<f32> = negative.iter().chain(&positive).copied().collect();
        thresholds.sort_by(f32::total_cmp);
        let best = thresholds
            .iter()
            .map(|&t| {
                let right = negative.iter().filter(|&&v| v > t).count()
                    + positive.iter().filter(|&&v| v <= t).count();
                let accuracy = right as f32 / 400.0;
                accuracy.max(1.0 - accuracy)
            })
            .fold(0.0, f32::max);
        // Measured: 0.52.
        assert!(
            best < 0.62,
            "a brightness threshold separates the classes with accuracy {best:.3}"
        );
    }

    #[test]
    fn generate_writes_every_file_and_is_deterministic() {
        let opts = SynthOptions {
            per_class: 3,
            size: 64,
            seed: 77,
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let summary = generate(a.path(), &opts).unwrap();
        generate(b.path(), &opts).unwrap();
        assert_eq!(summary.per_class, 3);
        let mut total = 0;
        for (class, name) in CLASS_NAMES.iter().enumerate() {
            let mut files: Vec<String> = fs::read_dir(a.path().join(name))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            let prefix = FILE_PREFIXES[class];
            let expected: Vec<String> = (1..=3).map(|i| format!("{prefix}_0000{i}.jpg")).collect();
            assert_eq!(files, expected);
            for (index, file) in (1..=3).zip(&files) {
                let bytes = fs::read(a.path().join(name).join(file)).unwrap();
                assert_eq!(
                    bytes,
                    fs::read(b.path().join(name).join(file)).unwrap(),
                    "{file} differs between runs"
                );
                total += bytes.len() as u64;
                let decoded = image::load_from_memory(&bytes).unwrap().to_rgb8();
                assert_eq!(decoded.dimensions(), (64, 64));
                // The file is the rendered image of (seed, class, index), up to JPEG loss.
                let rendered = render(image_seed(77, class, index), 64, class == 1).image;
                let error = mean(
                    decoded
                        .as_raw()
                        .iter()
                        .zip(rendered.as_raw())
                        .map(|(d, r)| (*d as f32 - *r as f32).abs()),
                );
                assert!(error < 4.0, "{file}: mean JPEG error {error}");
            }
        }
        assert_eq!(summary.bytes, total);
        // Writing the same dataset again over itself is fine.
        generate(a.path(), &opts).unwrap();
    }

    #[test]
    fn generate_explains_bad_options_and_unwritable_folders() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-folder");
        fs::write(&file, b"x").unwrap();
        let error = generate(&file, &options(1, 64)).unwrap_err();
        assert!(format!("{error:#}").contains("not-a-folder"), "{error:#}");

        let zero = generate(dir.path(), &options(0, 64)).unwrap_err();
        assert!(zero.to_string().contains("0 images"), "{zero}");
        let tiny = generate(dir.path(), &options(1, 8)).unwrap_err();
        assert!(tiny.to_string().contains("size 8"), "{tiny}");
    }

    #[test]
    fn generate_refuses_to_mix_with_other_images() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), &options(4, 32)).unwrap();
        let error = generate(dir.path(), &options(2, 32)).unwrap_err();
        assert!(error.to_string().contains("neg_00003.jpg"), "{error}");

        let project = tempfile::tempdir().unwrap();
        fs::create_dir(project.path().join("src")).unwrap();
        let error = generate(project.path(), &options(1, 32)).unwrap_err();
        assert!(error.to_string().contains("src"), "{error}");
        assert!(
            !project.path().join("Negative").exists(),
            "nothing may be written beside other folders"
        );
    }
}
