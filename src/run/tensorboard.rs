//! `RUN/tensorboard/events.out.tfevents.*`: a run's metrics as TensorBoard event files, so that
//! `tensorboard --logdir runs` shows every run beside the others. One writer (scalars from the
//! run's events, written as they happen) and one reader (the records back, their checksums
//! checked).
//!
//! The file format is TensorFlow's record file: each record is its length (u64, little-endian),
//! the masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data. Each
//! record's data is an `Event` protobuf (`tensorflow/core/util/event.proto`); the first says
//! which version of the format follows, the others carry `Summary` values: plain scalars
//! (`simple_value`), which TensorBoard's scalar dashboard reads, and at the end of a run a few
//! PNG-encoded pictures (`image`: the confusion matrix, heatmaps of test images) for its Images
//! tab.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use image::RgbImage;
use prost::Message;

use crate::run::event::Event;

/// The folder inside a run directory.
pub const DIR_NAME: &str = "tensorboard";

/// What the first record of every file says: the record format's version.
pub const FILE_VERSION: &str = "brain.Event:2";

/// Scalar tags, grouped the way TensorBoard shows them (by the part before the slash).
pub const TRAIN_LOSS: &str = "train/loss";
pub const TRAIN_ACCURACY: &str = "train/accuracy";
pub const LEARNING_RATE: &str = "train/learning_rate";
pub const IMAGES_PER_S: &str = "train/images_per_s";
pub const VALIDATION_LOSS: &str = "validation/loss";
pub const VALIDATION_ACCURACY: &str = "validation/accuracy";
pub const TEST_ACCURACY: &str = "test/accuracy";
pub const TEST_AUROC: &str = "test/auroc";
pub const TEST_AVERAGE_PRECISION: &str = "test/average_precision";
pub const VALIDATION_AUROC: &str = "validation/auroc";

/// `tensorflow.Event`, the fields written here.
#[derive(Clone, PartialEq, Message)]
pub struct TfEvent {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(oneof = "What", tags = "3, 5")]
    pub what: Option<What>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value` with a scalar (`simple_value`) or a picture (`image`).
#[derive(Clone, PartialEq, Message)]
pub struct SummaryValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    #[prost(message, optional, tag = "4")]
    pub image: Option<SummaryImage>,
}

/// `tensorflow.Summary.Image`: an encoded picture, which TensorBoard's Images tab shows.
#[derive(Clone, PartialEq, Message)]
pub struct SummaryImage {
    #[prost(int32, tag = "1")]
    pub height: i32,
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 1 grey, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    /// The PNG file's bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// `SummaryImage::colorspace` of RGB pictures.
const RGB: i32 = 3;

/// Appends a run's scalars to its own event file. Every record is written whole with one
/// `write` and flushed, so TensorBoard (which reads live files) never sees half a record for
/// long, and a crash loses at most the record being written.
pub struct EventWriter {
    file: File,
    path: PathBuf,
    /// The last step seen: validation and test events are drawn at the training's iteration.
    step: i64,
}

impl EventWriter {
    /// A new event file in `RUN/tensorboard/` (one per process: TensorBoard reads every file of
    /// the folder, so a resumed run continues the same curves).
    pub fn create_in(run_dir: &Path) -> Result<EventWriter> {
        let dir = run_dir.join(DIR_NAME);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        // TensorBoard finds files by "tfevents" in the name; the rest only keeps them apart.
        let path = dir.join(format!(
            "events.out.tfevents.{}.{:09}.{}.crackscope",
            now.as_secs(),
            now.subsec_nanos(),
            std::process::id()
        ));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut writer = EventWriter {
            file,
            path,
            step: 0,
        };
        writer.append(&TfEvent {
            wall_time: wall_time(),
            step: 0,
            what: Some(What::FileVersion(FILE_VERSION.into())),
        })?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the scalars `event` carries (none for most kinds).
    pub fn write(&mut self, event: &Event) -> Result<()> {
        let (step, scalars) = scalars_of(event, self.step);
        self.step = step;
        if scalars.is_empty() {
            return Ok(());
        }
        self.append(&TfEvent {
            wall_time: wall_time(),
            step,
            what: Some(What::Summary(Summary {
                value: scalars
                    .into_iter()
                    .map(|(tag, value)| SummaryValue {
                        tag: tag.to_string(),
                        simple_value: Some(value),
                        image: None,
                    })
                    .collect(),
            })),
        })
    }

    /// Writes `pictures` (tag, picture) at `step` as PNG-encoded image summaries, one record.
    pub fn write_pictures(&mut self, step: i64, pictures: &[(String, RgbImage)]) -> Result<()> {
        let mut value = Vec::with_capacity(pictures.len());
        for (tag, picture) in pictures {
            let mut png = Vec::new();
            picture
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .with_context(|| format!("cannot encode the picture {tag}"))?;
            value.push(SummaryValue {
                tag: tag.clone(),
                simple_value: None,
                image: Some(SummaryImage {
                    height: picture.height() as i32,
                    width: picture.width() as i32,
                    colorspace: RGB,
                    encoded_image_string: png,
                }),
            });
        }
        self.append(&TfEvent {
            wall_time: wall_time(),
            step,
            what: Some(What::Summary(Summary { value })),
        })
    }

    fn append(&mut self, event: &TfEvent) -> Result<()> {
        self.file
            .write_all(&record(&event.encode_to_vec()))
            .with_context(|| format!("cannot append to {}", self.path.display()))
    }
}

/// The step and scalars of one run event; `step` is the training's iteration so far (events
/// without an iteration of their own, such as the test, are drawn there).
pub fn scalars_of(event: &Event, step: i64) -> (i64, Vec<(&'static str, f32)>) {
    match event {
        Event::Started(start) => (start.start_iteration as i64, vec![]),
        Event::Iteration {
            iteration,
            loss,
            accuracy,
            learning_rate,
            images_per_s,
            ..
        } => (
            *iteration as i64,
            vec![
                (TRAIN_LOSS, *loss),
                (TRAIN_ACCURACY, *accuracy),
                (LEARNING_RATE, *learning_rate as f32),
                (IMAGES_PER_S, *images_per_s),
            ],
        ),
        Event::Validation {
            iteration,
            loss,
            accuracy,
            ..
        } => (
            *iteration as i64,
            vec![(VALIDATION_LOSS, *loss), (VALIDATION_ACCURACY, *accuracy)],
        ),
        Event::Tested { accuracy, .. } => (step, vec![(TEST_ACCURACY, *accuracy)]),
        Event::Fitted {
            val_auroc: Some(auroc),
            ..
        } => (step, vec![(VALIDATION_AUROC, *auroc as f32)]),
        Event::AnomalyScored(scores) => {
            let mut out = Vec::new();
            if let Some(auroc) = scores.auroc {
                out.push((TEST_AUROC, auroc as f32));
            }
            if let Some(ap) = scores.average_precision {
                out.push((TEST_AVERAGE_PRECISION, ap as f32));
            }
            (step, out)
        }
        _ => (step, vec![]),
    }
}

fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// One record of the file format around `data`.
pub fn record(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc32c(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// The records of an event file, decoded, each checksum checked. A last record cut short (a
/// writer mid-record) ends the list; anything else that is wrong is an error naming the file
/// and the byte offset.
pub fn read_events(path: &Path) -> Result<Vec<TfEvent>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut events = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < 12 {
            break;
        }
        let length_bytes = &rest[..8];
        let stored = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes"));
        ensure!(
            stored == masked_crc32c(length_bytes),
            "{}: the length of the record at byte {at} fails its checksum",
            path.display()
        );
        let length = u64::from_le_bytes(length_bytes.try_into().expect("8 bytes")) as usize;
        let Some(data) = rest.get(12..12 + length) else {
            break;
        };
        let Some(crc) = rest.get(12 + length..16 + length) else {
            break;
        };
        if u32::from_le_bytes(crc.try_into().expect("4 bytes")) != masked_crc32c(data) {
            bail!(
                "{}: the record at byte {at} fails its checksum",
                path.display()
            );
        }
        events.push(TfEvent::decode(data).with_context(|| {
            format!(
                "{}: the record at byte {at} is not an event",
                path.display()
            )
        })?);
        at += 16 + length;
    }
    Ok(events)
}

/// Every event file of a run, oldest first (names start with their creation time).
pub fn event_files(run_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(run_dir.join(DIR_NAME))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("tfevents"))
        })
        .collect();
    files.sort();
    files
}

/// `(step, value)` of every scalar `tag` in a run's event files, in the order written.
pub fn read_scalars(run_dir: &Path, tag: &str) -> Result<Vec<(i64, f32)>> {
    let mut out = Vec::new();
    for file in event_files(run_dir) {
        for event in read_events(&file)? {
            if let Some(What::Summary(summary)) = event.what {
                out.extend(
                    summary
                        .value
                        .iter()
                        .filter(|v| v.tag == tag)
                        .filter_map(|v| v.simple_value.map(|x| (event.step, x))),
                );
            }
        }
    }
    Ok(out)
}

/// `(step, tag, picture)` of every image summary in a run's event files, in the order written,
/// each decoded from its PNG bytes.
pub fn read_pictures(run_dir: &Path) -> Result<Vec<(i64, String, RgbImage)>> {
    let mut out = Vec::new();
    for file in event_files(run_dir) {
        for event in read_events(&file)? {
            let Some(What::Summary(summary)) = event.what else {
                continue;
            };
            for value in summary.value {
                let Some(image) = value.image else { continue };
                let picture = image::load_from_memory(&image.encoded_image_string)
                    .with_context(|| {
                        format!(
                            "{}: the picture {} is not an image",
                            file.display(),
                            value.tag
                        )
                    })?
                    .to_rgb8();
                ensure!(
                    (picture.width() as i32, picture.height() as i32)
                        == (image.width, image.height),
                    "{}: the picture {} is {}x{} but its summary says {}x{}",
                    file.display(),
                    value.tag,
                    picture.width(),
                    picture.height(),
                    image.width,
                    image.height
                );
                out.push((event.step, value.tag, picture));
            }
        }
    }
    Ok(out)
}

/// CRC-32C (Castagnoli), masked as TensorFlow's record files store it: rotated right by 15 bits
/// plus a constant, so that a CRC of data holding CRCs stays well distributed.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// CRC-32C (polynomial 0x1EDC6F41, reflected), one table lookup per byte: event files are small.
pub fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = i as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82f6_3b78
                } else {
                    crc >> 1
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    !data.iter().fold(!0u32, |crc, &byte| {
        TABLE[((crc ^ byte as u32) & 0xff) as usize] ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_published_check_values() {
        // The check value of CRC-32C (RFC 3720, appendix B.4) and its all-zero vector.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
    }

    #[test]
    fn events_are_read_back_with_their_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EventWriter::create_in(dir.path()).unwrap();
        for iteration in 1..=3 {
            writer
                .write(&Event::Iteration {
                    epoch: 1,
                    iteration,
                    loss: 1.0 / iteration as f32,
                    accuracy: 0.5,
                    learning_rate: 2e-4,
                    images_per_s: 10.0,
                    elapsed_s: 1.0,
                })
                .unwrap();
        }
        writer
            .write(&Event::Validation {
                epoch: 1,
                iteration: 3,
                loss: 0.4,
                accuracy: 0.9,
                elapsed_s: 2.0,
            })
            .unwrap();
        writer
            .write(&Event::Tested {
                accuracy: 0.875,
                confusion: vec![],
                classes: vec![],
                sources: Vec::new(),
            })
            .unwrap();
        let files = event_files(dir.path());
        assert_eq!(files, [writer.path().to_path_buf()]);
        let events = read_events(&files[0]).unwrap();
        assert_eq!(events[0].what, Some(What::FileVersion(FILE_VERSION.into())));
        assert_eq!(events.len(), 1 + 3 + 1 + 1);
        assert_eq!(
            read_scalars(dir.path(), TRAIN_LOSS).unwrap(),
            [(1, 1.0), (2, 0.5), (3, 1.0 / 3.0)]
        );
        assert_eq!(
            read_scalars(dir.path(), VALIDATION_ACCURACY).unwrap(),
            [(3, 0.9)]
        );
        // The test result is drawn at the last iteration.
        assert_eq!(
            read_scalars(dir.path(), TEST_ACCURACY).unwrap(),
            [(3, 0.875)]
        );
        assert_eq!(
            read_scalars(dir.path(), LEARNING_RATE).unwrap()[0],
            (1, 2e-4)
        );
    }

    #[test]
    fn pictures_are_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EventWriter::create_in(dir.path()).unwrap();
        let a = RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 40, y as u8 * 80, 7]));
        let b = RgbImage::from_pixel(2, 4, image::Rgb([1, 2, 3]));
        writer
            .write_pictures(
                12,
                &[("test/a".into(), a.clone()), ("test/b".into(), b.clone())],
            )
            .unwrap();
        let pictures = read_pictures(dir.path()).unwrap();
        assert_eq!(
            pictures,
            [(12, "test/a".to_string(), a), (12, "test/b".to_string(), b)]
        );
        // Scalars and pictures do not mix.
        assert!(read_scalars(dir.path(), "test/a").unwrap().is_empty());
    }

    #[test]
    fn a_damaged_record_is_named_and_a_cut_one_ends_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EventWriter::create_in(dir.path()).unwrap();
        writer
            .write(&Event::Validation {
                epoch: 1,
                iteration: 7,
                loss: 0.4,
                accuracy: 0.9,
                elapsed_s: 2.0,
            })
            .unwrap();
        let path = writer.path().to_path_buf();
        drop(writer);
        let whole = std::fs::read(&path).unwrap();
        // Cut inside the last record: the records before it are still read.
        std::fs::write(&path, &whole[..whole.len() - 3]).unwrap();
        assert_eq!(read_events(&path).unwrap().len(), 1);
        // A flipped byte in the data fails the checksum, with the file and offset named.
        let mut damaged = whole.clone();
        let last = damaged.len() - 6;
        damaged[last] ^= 0x40;
        std::fs::write(&path, &damaged).unwrap();
        let error = format!("{:#}", read_events(&path).unwrap_err());
        assert!(error.contains("fails its checksum"), "{error}");
        assert!(error.contains(&path.display().to_string()), "{error}");
    }
}
