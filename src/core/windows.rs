//! The windows that cover a photo: squares of the model's input size at a stride, the last row
//! and column moved back so that they end exactly at the photo's edge.

use anyhow::{ensure, Result};
use serde::Serialize;

/// Pixels per cell of the relu_conv10 map (conv1 and three max pools, each of stride 2).
pub const CELL: u32 = 16;

/// One window: its top-left corner and side, in photo pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub x: u32,
    pub y: u32,
    pub size: u32,
}

/// The default stride: half a window, rounded down to whole cells so that most windows start on
/// the feature map's 16-pixel grid and share its cells exactly (112 for 227-pixel windows).
pub fn default_stride(size: u32) -> u32 {
    (size / 2 / CELL * CELL).max(CELL).min(size)
}

/// Start positions along one axis of `length` pixels: 0, stride, 2 * stride, ... and a last one
/// at `length - size` so the far edge is covered. A photo side shorter than a window is an error
/// (the caller says which photo).
pub fn starts(length: u32, size: u32, stride: u32) -> Result<Vec<u32>> {
    ensure!(stride > 0, "the stride must be at least 1 pixel");
    ensure!(
        length >= size,
        "a side of {length} pixels is smaller than one {size}-pixel window"
    );
    let last = length - size;
    let mut out: Vec<u32> = (0..=last).step_by(stride as usize).collect();
    if *out.last().expect("0 is always a start") != last {
        out.push(last);
    }
    Ok(out)
}

/// All windows of a `width` x `height` photo, row by row.
pub fn grid(width: u32, height: u32, size: u32, stride: u32) -> Result<Vec<Window>> {
    let xs = starts(width, size, stride)?;
    let ys = starts(height, size, stride)?;
    Ok(ys
        .iter()
        .flat_map(|&y| xs.iter().map(move |&x| Window { x, y, size }))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_every_pixel_and_stay_inside() {
        for (w, h, size, stride) in [
            (227, 227, 227, 112),
            (4032, 3024, 227, 112),
            (500, 300, 64, 32),
            (301, 229, 64, 50),
            (64, 1000, 64, 64),
            (97, 97, 64, 200),
        ] {
            let windows = grid(w, h, size, stride).unwrap();
            let mut covered = vec![0u32; (w * h) as usize];
            for win in &windows {
                assert!(
                    win.x + size <= w && win.y + size <= h,
                    "{win:?} leaves {w}x{h}"
                );
                for y in win.y..win.y + size {
                    for x in win.x..win.x + size {
                        covered[(y * w + x) as usize] += 1;
                    }
                }
            }
            assert!(
                covered.iter().all(|&c| c > 0),
                "{w}x{h}, size {size}, stride {stride}: a pixel is uncovered"
            );
            // The last row and column end at the edge, and starts step by the stride.
            let xs = starts(w, size, stride).unwrap();
            assert_eq!(*xs.last().unwrap(), w - size);
            assert!(xs.windows(2).all(|p| p[1] > p[0] && p[1] - p[0] <= stride));
        }
    }

    #[test]
    fn default_stride_is_half_a_window_on_the_cell_grid_and_small_photos_are_errors() {
        assert_eq!(default_stride(227), 112);
        assert_eq!(default_stride(64), 32);
        assert_eq!(default_stride(20), 16);
        assert_eq!(starts(4032, 227, 112).unwrap().len(), 35);
        let err = grid(100, 300, 227, 112).unwrap_err().to_string();
        assert!(err.contains("100 pixels"), "{err}");
        assert!(starts(300, 227, 0).is_err());
    }
}
