//! `crackscope patches`: photos and crack masks in, a folder-per-class patch dataset out.

use anyhow::{Context, Result};
use image::imageops::{resize, FilterType};
use image::{GrayImage, RgbImage};

use crate::app::scan_labels::write_dataset;
use crate::cli::PatchesArgs;
use crate::core::windows::default_stride;
use crate::data::patches::{PatchOptions, PatchWriter};
use crate::scan::photo::load_upright;
use crate::scan::photo::{photo_files, true_mask};

pub fn patches(args: &PatchesArgs) -> Result<()> {
    let options = PatchOptions {
        size: args.size,
        stride: args.stride.unwrap_or_else(|| default_stride(args.size)),
        min_crack_share: args.min_crack_share,
    };
    crate::scan::scales::validate(&[args.scale])?;
    let (Some(photo_folder), Some(masks)) = (&args.photos, &args.masks) else {
        let scan = args
            .scan
            .as_deref()
            .context("give --photos and --masks, or --scan")?;
        let set = write_dataset(scan, &args.out)?;
        println!(
            "{} labelled windows of {} photos from {}: {} Positive (crack), {} Negative (no crack) \
             -> {}",
            set.crack + set.no_crack,
            set.photos,
            scan.display(),
            set.crack,
            set.no_crack,
            args.out.display()
        );
        return Ok(());
    };
    // Check both folders before anything is written.
    let photos = photo_files(std::slice::from_ref(photo_folder))?;
    std::fs::read_dir(masks)
        .with_context(|| format!("cannot read mask folder {}", masks.display()))?;
    let mut writer = PatchWriter::create(&args.out, options)?;
    let (mut positive, mut negative, mut left_out) = (0, 0, 0);
    for path in &photos {
        let photo = load_upright(path)?;
        let mask = true_mask(masks, path, photo.dimensions())?;
        let (photo, mask) = at_scale(photo, mask, args.scale);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let counts = writer.add_photo(&name, &photo, &mask)?;
        positive += counts.positive;
        negative += counts.negative;
        left_out += counts.left_out;
    }
    let out = writer.finish()?;
    println!(
        "{} photos, {}-px windows at stride {}: {positive} Positive, {negative} Negative, {left_out} \
         left out (a crack near the border only, or under {} of the centre) -> {}",
        photos.len(),
        options.size,
        options.stride,
        options.min_crack_share,
        out.display()
    );
    if positive == 0 || negative == 0 {
        eprintln!(
            "warning: one class got no patches; training needs both (try another --min-crack-share \
             or --stride)"
        );
    }
    Ok(())
}

/// The photo and its mask resized by `scale` (1: as they are). The mask is averaged down and
/// any covered pixel kept, so a hairline does not vanish when the photo shrinks.
fn at_scale(photo: RgbImage, mask: GrayImage, scale: f32) -> (RgbImage, GrayImage) {
    if scale == 1.0 {
        return (photo, mask);
    }
    let side = |v: u32| ((v as f32 * scale).round() as u32).max(1);
    let (w, h) = (side(photo.width()), side(photo.height()));
    let mut mask = resize(&mask, w, h, FilterType::Triangle);
    mask.pixels_mut()
        .for_each(|p| p.0[0] = if p.0[0] > 0 { 255 } else { 0 });
    (resize(&photo, w, h, FilterType::Triangle), mask)
}
