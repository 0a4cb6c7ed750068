//! Images in, training batches out: the data side of the seed demo.
//!
//! The stages mirror the MATLAB calls they replace, each in its own file:
//! - [`scan`]: `imageDatastore(..., 'IncludeSubfolders', true, 'LabelSource', 'foldernames')`
//! - [`split`]: `splitEachLabel(imds, 0.1, 0.1, 0.1, 'randomized')`, saved as a manifest so a run's
//!   test set never changes
//! - [`decode`]: `readimage` for any supported file, plus the resize of `augmentedImageDatastore`
//! - [`augment`]: `imageDataAugmenter` (flip, translation) and the network's input encoding
//! - [`loader`]: decode once (or on the fly, see [`budget`]), then shuffled, augmented mini-batches
//!   prefetched in the background
//! - [`budget`]: how much memory decoded images may take
//! - [`inputs`]: one outcome per input file where a command reads many
//! - [`patches`]: training windows cut from annotated photos, with a manifest of their photos
//! - [`sources`]: which `--data` folder each image came from, by name, and its split fractions
//! - [`synth`]: the embedded synthetic crack dataset (no downloads)

pub mod augment;
pub mod budget;
pub mod dataset;
pub mod decode;
pub mod inputs;
pub mod loader;
pub mod patches;
pub mod samples;
pub mod sources;
pub mod split;
pub mod synth;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The random stream for one `purpose` ("split", "epoch", ...) of a user's seed.
///
/// Hashing the purpose into the key keeps the streams of different stages unrelated even though
/// they share one seed; `stream` then separates instances of a stage (a class, an epoch).
pub(crate) fn rng_for(purpose: &str, seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::from_seed(blake3::derive_key(
        &format!("crackscope 2025 data {purpose}"),
        &seed.to_le_bytes(),
    ));
    rng.set_stream(stream);
    rng
}

/// Fixtures shared by the tests of every stage: small images in each supported encoding.
#[cfg(test)]
pub(crate) mod test_support {
    use std::io::Cursor;
    use std::path::Path;

    use image::{ImageFormat, Rgb, RgbImage};

    /// A deterministic colourful image, so encoders cannot collapse it and every fixture differs.
    pub fn pattern(width: u32, height: u32, salt: u8) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            Rgb([
                (x * 7 + y * 3) as u8 ^ salt,
                (x * 13 + salt as u32) as u8,
                (y * 11) as u8 ^ salt.rotate_left(3),
            ])
        })
    }

    pub fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        img.write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    }

    /// A PNG whose header claims 100000x100000 pixels, followed by a token of image data.
    pub fn absurd_png() -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut writer = png::Encoder::new(&mut bytes, 100_000, 100_000)
            .write_header()
            .unwrap();
        writer
            .write_chunk(png::chunk::IDAT, &[0x78, 0x9C, 0x03, 0x00])
            .unwrap();
        drop(writer); // Writes IEND.
        bytes
    }

    pub fn write(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Writes `salt`-distinct JPEGs `0.jpg..n.jpg` into `dir`.
    pub fn write_jpegs(dir: &Path, n: usize, salt: u8) {
        for i in 0..n {
            let img = pattern(24, 20, salt.wrapping_add((i as u8).wrapping_mul(17)));
            write(
                &dir.join(format!("{i}.jpg")),
                &encode(&img, ImageFormat::Jpeg),
            );
        }
    }
}
