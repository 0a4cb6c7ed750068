//! Training patches cut from annotated photos, the way the concrete crack dataset was made from
//! whole photos: windows of the network's input size at a stride, labelled from the photo's crack
//! mask, written as a folder-per-class dataset with a manifest of where each patch came from.
//!
//! - Positive: crack pixels cover at least `min_crack_share` of the window's central region (the
//!   middle half of each side, the same region `scan --masks` uses to call a window a crack
//!   window).
//! - Negative: the window holds no crack pixel at all, not even near its border.
//! - Anything between (a crack only near the border, or too little of one in the centre) is left
//!   out: such a window is neither a clear example of a crack nor of a clean surface.
//!
//! The manifest ([`MANIFEST`]) lets the split keep the overlapping windows of one photo together
//! (see [`super::split`]). The dataset is built in a hidden folder beside the target and renamed
//! into place at the end, so an interrupted run never leaves a half-made dataset.

use std::collections::HashMap;
use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use image::codecs::jpeg::JpegEncoder;
use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use crate::core::fsutil;
use crate::core::windows::starts;

/// The manifest's file name at the dataset's root.
pub const MANIFEST: &str = "patches.csv";
/// The class folders a patch dataset has.
pub const POSITIVE: &str = "Positive";
pub const NEGATIVE: &str = "Negative";
/// JPEG quality of the patches: the concrete dataset's patches are JPEGs too, and at 95 a hairline
/// crack keeps its edges while a patch takes about a quarter of a PNG's space.
const JPEG_QUALITY: u8 = 95;

/// How windows are cut and labelled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatchOptions {
    /// Side of a window in pixels.
    pub size: u32,
    /// Pixels between windows; the last row and column end at the photo's edge.
    pub stride: u32,
    /// Share (0 to 1] of the central region that crack pixels must cover for a Positive.
    pub min_crack_share: f64,
}

impl PatchOptions {
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.size >= 4,
            "--size must be at least 4 pixels, got {}",
            self.size
        );
        ensure!(self.stride >= 1, "--stride must be at least 1 pixel");
        ensure!(
            self.min_crack_share > 0.0 && self.min_crack_share <= 1.0,
            "--min-crack-share must be in (0, 1], got {}",
            self.min_crack_share
        );
        Ok(())
    }
}

/// The label of one window, or `None` when it is left out.
pub fn label_window(
    mask: &GrayImage,
    x: u32,
    y: u32,
    size: u32,
    min_share: f64,
) -> Option<&'static str> {
    let quarter = size / 4;
    let (cx0, cy0, cx1, cy1) = (
        x + quarter,
        y + quarter,
        x + size - quarter,
        y + size - quarter,
    );
    let (mut centre, mut anywhere) = (0u64, 0u64);
    for yy in y..y + size {
        for xx in x..x + size {
            if mask.get_pixel(xx, yy).0[0] > 0 {
                anywhere += 1;
                if (cx0..cx1).contains(&xx) && (cy0..cy1).contains(&yy) {
                    centre += 1;
                }
            }
        }
    }
    let central_area = (cx1 - cx0) as f64 * (cy1 - cy0) as f64;
    if anywhere == 0 {
        Some(NEGATIVE)
    } else if centre as f64 >= min_share * central_area {
        Some(POSITIVE)
    } else {
        None
    }
}

/// One line of the manifest: a patch and where it was cut from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRow {
    /// Relative to the dataset's root, `/`-separated (`Positive/photo_x113_y0.jpg`).
    pub file: String,
    pub class: String,
    /// The photo's file name.
    pub photo: String,
    pub x: u32,
    pub y: u32,
    pub size: u32,
}

/// Windows of one photo by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhotoCounts {
    pub positive: usize,
    pub negative: usize,
    pub left_out: usize,
}

/// Writes a patch dataset photo by photo; [`PatchWriter::finish`] puts it in place.
pub struct PatchWriter {
    out: PathBuf,
    staging: PathBuf,
    options: PatchOptions,
    rows: Vec<ManifestRow>,
    photos: HashMap<String, String>,
    finished: bool,
}

impl PatchWriter {
    /// Starts a dataset for `out`, which must not exist yet or be an empty folder: patches of an
    /// earlier cut mixed with new ones would make the manifest lie.
    pub fn create(out: &Path, options: PatchOptions) -> Result<Self> {
        options.validate()?;
        if out.exists() {
            ensure!(
                out.is_dir(),
                "{} exists and is not a folder; give a new folder for the dataset",
                out.display()
            );
            let mut entries =
                fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))?;
            ensure!(
                entries.next().is_none(),
                "{} is not empty; give a new or empty folder for the dataset (nothing is \
                 overwritten)",
                out.display()
            );
        }
        let name = out
            .file_name()
            .with_context(|| format!("{} is not a folder name", out.display()))?
            .to_string_lossy()
            .into_owned();
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
        let staging = parent.join(format!(".{name}.partial{}", std::process::id()));
        if staging.exists() {
            fs::remove_dir_all(&staging)
                .with_context(|| format!("cannot clear {}", staging.display()))?;
        }
        for class in [NEGATIVE, POSITIVE] {
            fs::create_dir_all(staging.join(class))
                .with_context(|| format!("cannot create folder in {}", staging.display()))?;
        }
        Ok(PatchWriter {
            out: out.to_path_buf(),
            staging,
            options,
            rows: Vec::new(),
            photos: HashMap::new(),
            finished: false,
        })
    }

    /// Cuts and writes the labelled windows of one photo. `name` is the photo's file name (its
    /// stem names the patches); `mask` is its crack mask at the photo's size, nonzero = crack.
    pub fn add_photo(
        &mut self,
        name: &str,
        photo: &RgbImage,
        mask: &GrayImage,
    ) -> Result<PhotoCounts> {
        ensure!(
            photo.dimensions() == mask.dimensions(),
            "the mask of {name} is {}x{} but the photo is {}x{}",
            mask.width(),
            mask.height(),
            photo.width(),
            photo.height()
        );
        let stem = self.claim_stem(name)?;
        let PatchOptions {
            size,
            stride,
            min_crack_share,
        } = self.options;
        let xs = starts(photo.width(), size, stride).with_context(|| format!("photo {name}"))?;
        let ys = starts(photo.height(), size, stride).with_context(|| format!("photo {name}"))?;
        let mut counts = PhotoCounts::default();
        for &y in &ys {
            for &x in &xs {
                let Some(class) = label_window(mask, x, y, size, min_crack_share) else {
                    counts.left_out += 1;
                    continue;
                };
                self.write_window(name, &stem, photo, (x, y, size), class)?;
                if class == POSITIVE {
                    counts.positive += 1;
                } else {
                    counts.negative += 1;
                }
            }
        }
        Ok(counts)
    }

    /// Writes windows of one photo whose classes are already known (labelled by a person, say):
    /// each `(x, y, size, class)`, `class` [`POSITIVE`] or [`NEGATIVE`].
    pub fn add_windows(
        &mut self,
        name: &str,
        photo: &RgbImage,
        windows: &[(u32, u32, u32, &'static str)],
    ) -> Result<()> {
        let stem = self.claim_stem(name)?;
        for &(x, y, size, class) in windows {
            ensure!(
                x + size <= photo.width() && y + size <= photo.height(),
                "the {size}-pixel window at x {x}, y {y} is not inside {name} ({}x{})",
                photo.width(),
                photo.height()
            );
            self.write_window(name, &stem, photo, (x, y, size), class)?;
        }
        Ok(())
    }

    /// The stem that names a photo's patches; two photos with one stem are refused.
    fn claim_stem(&mut self, name: &str) -> Result<String> {
        let stem = Path::new(name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.to_string());
        if let Some(earlier) = self.photos.insert(stem.clone(), name.to_string()) {
            bail!("{earlier} and {name} have the same file stem; their patches would share names");
        }
        Ok(stem)
    }

    /// Cuts one window, writes it as a JPEG into its class folder and records it.
    fn write_window(
        &mut self,
        name: &str,
        stem: &str,
        photo: &RgbImage,
        (x, y, size): (u32, u32, u32),
        class: &str,
    ) -> Result<()> {
        let file = if size == self.options.size {
            format!("{class}/{stem}_x{x}_y{y}.jpg")
        } else {
            format!("{class}/{stem}_x{x}_y{y}_s{size}.jpg")
        };
        let window = image::imageops::crop_imm(photo, x, y, size, size).to_image();
        let mut bytes = Cursor::new(Vec::new());
        window
            .write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY))
            .with_context(|| format!("cannot encode {file}"))?;
        let path = self.staging.join(&file);
        fs::write(&path, bytes.into_inner())
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.rows.push(ManifestRow {
            file,
            class: class.to_string(),
            photo: name.to_string(),
            x,
            y,
            size,
        });
        Ok(())
    }

    /// Writes the manifest and moves the dataset to its folder.
    pub fn finish(mut self) -> Result<PathBuf> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        for row in &self.rows {
            writer
                .serialize(row)
                .context("cannot encode the manifest")?;
        }
        let bytes = writer.into_inner().context("cannot encode the manifest")?;
        fsutil::write_atomic(&self.staging.join(MANIFEST), &bytes)?;
        if self.out.is_dir() {
            // Checked empty in `create`; remove_dir refuses if something appeared since.
            fs::remove_dir(&self.out).with_context(|| {
                format!(
                    "{} is no longer empty; the patches are left in {}",
                    self.out.display(),
                    self.staging.display()
                )
            })?;
        }
        fs::rename(&self.staging, &self.out).with_context(|| {
            format!(
                "cannot move {} to {}",
                self.staging.display(),
                self.out.display()
            )
        })?;
        self.finished = true;
        Ok(self.out.clone())
    }
}

impl Drop for PatchWriter {
    /// A dataset that was not finished (an error, an interrupt) leaves nothing behind.
    fn drop(&mut self) {
        if !self.finished {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// The manifest of the dataset at `root`, or `None` when it has none.
pub fn read_manifest(root: &Path) -> Result<Option<Vec<ManifestRow>>> {
    let path = root.join(MANIFEST);
    if !path.is_file() {
        return Ok(None);
    }
    let mut reader = csv::Reader::from_path(&path)
        .with_context(|| format!("cannot read patch manifest {}", path.display()))?;
    let rows = reader
        .deserialize()
        .collect::<Result<Vec<ManifestRow>, _>>()
        .with_context(|| format!("patch manifest {} is corrupt", path.display()))?;
    Ok(Some(rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Luma, Rgb};

    fn mask_with(width: u32, height: u32, crack: &[(u32, u32)]) -> GrayImage {
        let mut mask = GrayImage::new(width, height);
        for &(x, y) in crack {
            mask.put_pixel(x, y, Luma([255]));
        }
        mask
    }

    #[test]
    fn windows_are_labelled_from_the_central_region() {
        // 16-px windows: the central region is pixels 4..12 of each side, 64 pixels.
        let none = mask_with(16, 16, &[]);
        assert_eq!(label_window(&none, 0, 0, 16, 0.05), Some(NEGATIVE));
        // 4 pixels in the centre = 6.25 % of it.
        let four = mask_with(16, 16, &[(5, 5), (6, 6), (7, 7), (8, 8)]);
        assert_eq!(label_window(&four, 0, 0, 16, 0.05), Some(POSITIVE));
        assert_eq!(label_window(&four, 0, 0, 16, 0.0625), Some(POSITIVE));
        assert_eq!(
            label_window(&four, 0, 0, 16, 0.07),
            None,
            "too little crack: left out"
        );
        // A crack pixel only near the border: neither clean nor a crack patch.
        let border = mask_with(16, 16, &[(0, 15)]);
        assert_eq!(label_window(&border, 0, 0, 16, 0.01), None);
        // The window's offset counts: the same pixel is central to a window further on.
        let far = mask_with(32, 16, &[(24, 8)]);
        assert_eq!(label_window(&far, 0, 0, 16, 0.01), Some(NEGATIVE));
        assert_eq!(label_window(&far, 16, 0, 16, 0.01), Some(POSITIVE));
    }

    #[test]
    fn writer_cuts_labels_and_records_every_patch() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("patches");
        // 40 x 20 photo, 20-px windows at stride 10: x 0, 10, 20 and y 0.
        let photo = RgbImage::from_fn(40, 20, |x, y| Rgb([x as u8 * 6, y as u8 * 12, 90]));
        // A crack through the centre of the last window (x 25..35 is its central region) only.
        let mask = mask_with(40, 20, &[(29, 8), (29, 9), (29, 10), (29, 11)]);
        let options = PatchOptions {
            size: 20,
            stride: 10,
            min_crack_share: 0.03,
        };
        let mut writer = PatchWriter::create(&out, options).unwrap();
        let counts = writer.add_photo("wall.jpg", &photo, &mask).unwrap();
        // x=0 holds no crack; x=10 has the crack in its border only (x 29 is outside 15..25).
        assert_eq!(
            counts,
            PhotoCounts {
                positive: 1,
                negative: 1,
                left_out: 1
            }
        );
        writer.finish().unwrap();

        let rows = read_manifest(&out).unwrap().unwrap();
        let expected = |file: &str, class: &str, x| ManifestRow {
            file: file.into(),
            class: class.into(),
            photo: "wall.jpg".into(),
            x,
            y: 0,
            size: 20,
        };
        assert_eq!(
            rows,
            vec![
                expected("Negative/wall_x0_y0.jpg", "Negative", 0),
                expected("Positive/wall_x20_y0.jpg", "Positive", 20),
            ]
        );
        let patch = image::open(out.join("Positive/wall_x20_y0.jpg"))
            .unwrap()
            .to_rgb8();
        assert_eq!(patch.dimensions(), (20, 20));
        // The patch is the photo's pixels at (20, 0): red grows with x (JPEG-close).
        let red = patch.get_pixel(10, 10).0[0] as i32;
        assert!((red - 30 * 6).abs() < 12, "red {red}");
        // Nothing but the dataset is left in the parent folder.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("patches")]);
    }

    #[test]
    fn a_used_folder_is_refused_and_a_failed_cut_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let options = PatchOptions {
            size: 20,
            stride: 10,
            min_crack_share: 0.03,
        };
        let used = dir.path().join("used");
        fs::create_dir_all(&used).unwrap();
        fs::write(used.join("keep.txt"), b"x").unwrap();
        let err = format!("{:#}", PatchWriter::create(&used, options).err().unwrap());
        assert!(err.contains("used") && err.contains("not empty"), "{err}");

        // An empty folder is fine; a photo smaller than a window fails naming it.
        let empty = dir.path().join("empty");
        fs::create_dir_all(&empty).unwrap();
        let mut writer = PatchWriter::create(&empty, options).unwrap();
        let small = RgbImage::new(10, 30);
        let err = writer
            .add_photo("tiny.png", &small, &GrayImage::new(10, 30))
            .unwrap_err();
        assert!(format!("{err:#}").contains("tiny.png"), "{err:#}");
        let err = writer
            .add_photo("odd.png", &RgbImage::new(40, 20), &GrayImage::new(20, 20))
            .unwrap_err();
        assert!(format!("{err:#}").contains("odd.png"), "{err:#}");
        drop(writer);
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("empty"), "used".into()]
        );
        assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);

        for bad in [
            PatchOptions {
                size: 20,
                stride: 0,
                min_crack_share: 0.1,
            },
            PatchOptions {
                size: 20,
                stride: 10,
                min_crack_share: 0.0,
            },
            PatchOptions {
                size: 20,
                stride: 10,
                min_crack_share: 1.5,
            },
        ] {
            assert!(
                PatchWriter::create(&dir.path().join("new"), bad).is_err(),
                "{bad:?}"
            );
        }
    }
}
