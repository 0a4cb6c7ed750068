//! The seed's picture: the map blown up to the image size (bicubic), painted with a colour table
//! the way `imagesc` does, and laid over the image at a given opacity (`'AlphaData', 0.5`).

use anyhow::{ensure, Result};
use image::{Rgb, RgbImage};

use super::colormap::{entry_for, Colormap};
use super::heatmap::{rescale, Heatmap};
use super::resize::imresize_bicubic;

/// How a heatmap is drawn over its image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    pub colormap: Colormap,
    /// Opacity of the heatmap: 0 shows only the image, 1 only the heatmap.
    pub alpha: f32,
}

impl Default for Style {
    /// The seed's choice: jet at half opacity.
    fn default() -> Self {
        Style {
            colormap: Colormap::Jet,
            alpha: 0.5,
        }
    }
}

/// Checks an opacity given by a user (`--alpha`).
pub fn parse_alpha(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(a) if (0.0..=1.0).contains(&a) => Ok(a),
        _ => Err(format!("alpha must be a number from 0 to 1, got '{text}'")),
    }
}

/// `cam` (any resolution) over `image`: resized to the image with MATLAB's bicubic `imresize`,
/// coloured and blended.
pub fn overlay(image: &RgbImage, cam: &Heatmap, style: &Style) -> Result<RgbImage> {
    let (w, h) = image.dimensions();
    let full = imresize_bicubic(cam, h as usize, w as usize)?;
    blend(image, &colorize(&full, style.colormap), style.alpha)
}

/// Paints `map` pixel by pixel as `imagesc` does: the colour limits are the map's own minimum and
/// maximum (so the cubic's overshoot past [0, 1] still spans the whole table), equal-width bins.
/// A constant map takes the first colour.
pub fn colorize(map: &Heatmap, colormap: Colormap) -> RgbImage {
    let table = colormap.table();
    let mut scaled = map.values.clone();
    rescale(&mut scaled);
    let mut out = RgbImage::new(map.width as u32, map.height as u32);
    for (pixel, &t) in out.pixels_mut().zip(&scaled) {
        *pixel = table[entry_for(t)];
    }
    out
}

/// `alpha * heat + (1 - alpha) * base` per channel, rounded to the nearest level.
pub fn blend(base: &RgbImage, heat: &RgbImage, alpha: f32) -> Result<RgbImage> {
    ensure!(
        (0.0..=1.0).contains(&alpha),
        "alpha must be from 0 to 1, got {alpha}"
    );
    ensure!(
        base.dimensions() == heat.dimensions(),
        "cannot blend a {:?} heatmap over a {:?} image",
        heat.dimensions(),
        base.dimensions()
    );
    let mut out = base.clone();
    for (o, h) in out.pixels_mut().zip(heat.pixels()) {
        *o = Rgb(std::array::from_fn(|c| {
            (alpha * h.0[c] as f32 + (1.0 - alpha) * o.0[c] as f32)
                .round()
                .clamp(0.0, 255.0) as u8
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blend_mixes_each_channel_at_alpha() {
        let base = RgbImage::from_pixel(3, 2, Rgb([200, 0, 100]));
        let heat = RgbImage::from_pixel(3, 2, Rgb([0, 255, 101]));
        let half = blend(&base, &heat, 0.5).unwrap();
        assert!(half.pixels().all(|p| p.0 == [100, 128, 101])); // 127.5 and 100.5 round up
        let quarter = blend(&base, &heat, 0.25).unwrap();
        assert!(quarter.pixels().all(|p| p.0 == [150, 64, 100]));
        assert_eq!(blend(&base, &heat, 0.0).unwrap(), base);
        assert_eq!(blend(&base, &heat, 1.0).unwrap(), heat);
    }

    #[test]
    fn blend_rejects_bad_alpha_and_mismatched_sizes() {
        let a = RgbImage::new(4, 4);
        assert!(blend(&a, &RgbImage::new(4, 5), 0.5).is_err());
        assert!(blend(&a, &a, 1.5).is_err());
        assert!(blend(&a, &a, f32::NAN).is_err());
        assert_eq!(parse_alpha("0.3"), Ok(0.3));
        assert!(parse_alpha("-0.1").unwrap_err().contains("-0.1"));
        assert!(parse_alpha("half").is_err());
    }

    #[test]
    fn colorize_spans_the_table_from_the_maps_own_range() {
        let map = Heatmap::new(1, 3, vec![-0.2, 0.4, 1.0]).unwrap();
        let jet = Colormap::Jet.table();
        let img = colorize(&map, Colormap::Jet);
        assert_eq!(*img.get_pixel(0, 0), jet[0]);
        assert_eq!(*img.get_pixel(1, 0), jet[128]); // (0.4 + 0.2) / 1.2 = 0.5
        assert_eq!(*img.get_pixel(2, 0), jet[255]);
    }

    #[test]
    fn constant_map_paints_the_first_colour() {
        let map = Heatmap::new(2, 2, vec![0.0; 4]).unwrap();
        let img = colorize(&map, Colormap::Jet);
        assert!(img.pixels().all(|p| *p == Colormap::Jet.table()[0]));
    }

    #[test]
    fn overlay_puts_the_hot_spot_where_the_map_peaks() {
        // 2x2 map hot at the bottom right, over a mid-gray 40x40 image.
        let cam = Heatmap::new(2, 2, vec![0.0, 0.0, 0.0, 1.0]).unwrap();
        let image = RgbImage::from_pixel(40, 40, Rgb([128, 128, 128]));
        let out = overlay(&image, &cam, &Style::default()).unwrap();
        assert_eq!(out.dimensions(), (40, 40));
        let hot = out.get_pixel(39, 39).0;
        let cold = out.get_pixel(0, 0).0;
        // The peak takes jet's last entry, dark red [0.5 0 0], half over gray.
        assert_eq!(hot, [128, 64, 64]);
        assert!(
            cold[2] > cold[0] + 40 && cold[2] > cold[1] + 40,
            "top left should be blue: {cold:?}"
        );
    }
}
