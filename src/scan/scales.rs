//! Scanning at several scales: the photo resized by each factor and scanned as it is, so that a
//! window covers as much of the surface as a training patch did (a 12-megapixel phone photo
//! whose hairlines span a few pixels at 227 px windows, say, scanned at 0.25 as well as 1).
//!
//! The combination rule: every scale's windows are kept, mapped back to the photo's pixels (a
//! 227-pixel window at scale 0.5 is a 454-pixel window of the photo); the crack map is, at each
//! 16-pixel cell of the photo, the largest value any scale's map has there (a crack found at any
//! scale shows), so the mask and regions follow from that map as at one scale.

use anyhow::{ensure, Result};
use image::imageops::{resize, FilterType};
use image::RgbImage;

use crate::core::windows::CELL;
use crate::scan::descriptors::Descriptors;
use crate::scan::map::{CrackMap, WindowScore};
use crate::scan::scanner::Scanner;

/// Checks a `--scale` list: factors in (0, 4], none twice.
pub fn validate(scales: &[f32]) -> Result<()> {
    for (i, &s) in scales.iter().enumerate() {
        ensure!(
            s > 0.0 && s <= 4.0 && s.is_finite(),
            "--scale {s}: a scale is a factor in (0, 4] (0.5 halves the photo)"
        );
        ensure!(!scales[..i].contains(&s), "--scale {s} is given twice");
    }
    Ok(())
}

/// Whether `scales` means anything but the photo as it is.
pub fn is_plain(scales: &[f32]) -> bool {
    scales.is_empty() || scales == [1.0]
}

/// The scale of `scales` nearest 1 (where a window covers what a training image did, when the
/// scales were chosen so); 1 for a plain scan.
pub fn nearest_to_one(scales: &[f32]) -> f32 {
    scales
        .iter()
        .copied()
        .min_by(|a, b| a.ln().abs().total_cmp(&b.ln().abs()))
        .unwrap_or(1.0)
}

/// The photo's crack map at every scale of `scales`, combined (see the module's rule).
pub(crate) fn scan_at_scales(
    scanner: &Scanner,
    photo: &RgbImage,
    stride: u32,
    scales: &[f32],
) -> Result<CrackMap> {
    if is_plain(scales) {
        return scanner.scan(photo, stride);
    }
    let (width, height) = photo.dimensions();
    let mut maps = Vec::with_capacity(scales.len());
    for &scale in scales {
        let map = if scale == 1.0 {
            scanner.scan(photo, stride)?
        } else {
            let (w, h) = scaled(width, height, scale);
            let window = scanner.window();
            ensure!(
                w >= window && h >= window,
                "at scale {scale} the photo is {w}x{h}, smaller than one {window}-pixel window"
            );
            scanner.scan(&resize(photo, w, h, FilterType::Triangle), stride)?
        };
        maps.push((scale, map));
    }
    Ok(combine(width, height, &maps))
}

fn scaled(width: u32, height: u32, scale: f32) -> (u32, u32) {
    let side = |v: u32| ((v as f32 * scale).round() as u32).max(1);
    (side(width), side(height))
}

/// The maps of one photo at several scales as one map of the photo at its own size.
pub(crate) fn combine(width: u32, height: u32, maps: &[(f32, CrackMap)]) -> CrackMap {
    let (cols, rows) = (
        width.div_ceil(CELL) as usize,
        height.div_ceil(CELL) as usize,
    );
    let mut cells = vec![0f32; rows * cols];
    let mut windows = Vec::new();
    for (scale, map) in maps {
        let scale = f64::from(*scale);
        // The map's cell under a photo coordinate.
        let cell = |p: usize, len: usize| -> usize {
            let centre = (p as f64 + 0.5) * f64::from(CELL) * scale;
            ((centre / f64::from(CELL)) as usize).min(len.saturating_sub(1))
        };
        if map.rows > 0 && map.cols > 0 {
            for i in 0..rows {
                let mi = cell(i, map.rows);
                for j in 0..cols {
                    let v = map.cells[mi * map.cols + cell(j, map.cols)];
                    let c = &mut cells[i * cols + j];
                    *c = c.max(v);
                }
            }
        }
        windows.extend(map.windows.iter().map(|w| {
            let back = |v: u32| (f64::from(v) / scale).round() as u32;
            let size = back(w.size).min(width).min(height);
            WindowScore {
                x: back(w.x).min(width - size),
                y: back(w.y).min(height - size),
                size,
                ..*w
            }
        }));
    }
    // Descriptors follow their windows, kept only where every scale has them.
    let descriptors = if maps
        .iter()
        .all(|(_, m)| m.descriptors.windows() == m.windows.len())
    {
        Descriptors {
            values: maps
                .iter()
                .flat_map(|(_, m)| m.descriptors.values.iter().copied())
                .collect(),
        }
    } else {
        Descriptors::default()
    };
    CrackMap {
        width,
        height,
        windows,
        rows,
        cols,
        cells,
        descriptors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(x: u32, y: u32, size: u32, probability: f32) -> WindowScore {
        WindowScore {
            x,
            y,
            size,
            probability,
            score: None,
        }
    }

    #[test]
    fn windows_map_back_to_the_photo_and_the_map_keeps_the_largest_value() {
        // A 64 x 32 photo: 4 x 2 cells. At scale 1 one hot cell (row 0, col 3); at scale 0.5 the
        // photo is 32 x 16, 2 x 1 cells, the left one warm.
        let full = CrackMap {
            width: 64,
            height: 32,
            windows: vec![window(32, 0, 32, 0.9)],
            rows: 2,
            cols: 4,
            cells: vec![0.0, 0.0, 0.1, 0.9, 0.0, 0.0, 0.0, 0.2],
            descriptors: Default::default(),
        };
        let half = CrackMap {
            width: 32,
            height: 16,
            windows: vec![window(0, 0, 16, 0.6), window(16, 0, 16, 0.1)],
            rows: 1,
            cols: 2,
            cells: vec![0.6, 0.1],
            descriptors: Default::default(),
        };
        let map = combine(64, 32, &[(1.0, full), (0.5, half)]);
        assert_eq!((map.rows, map.cols), (2, 4));
        // The half map's left cell covers the photo's two left columns of cells, both rows.
        assert_eq!(map.cells, vec![0.6, 0.6, 0.1, 0.9, 0.6, 0.6, 0.1, 0.2]);
        assert_eq!(
            map.windows,
            vec![
                window(32, 0, 32, 0.9),
                window(0, 0, 32, 0.6),
                window(32, 0, 32, 0.1)
            ]
        );
    }

    #[test]
    fn scale_lists_are_checked() {
        assert!(validate(&[0.5, 1.0]).is_ok());
        for bad in [vec![0.0], vec![5.0], vec![0.5, 0.5], vec![f32::NAN]] {
            assert!(validate(&bad).is_err(), "{bad:?}");
        }
        assert!(is_plain(&[]) && is_plain(&[1.0]) && !is_plain(&[0.5]));
    }
}
