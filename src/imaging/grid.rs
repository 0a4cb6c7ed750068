//! Several images as one picture, laid out like MATLAB's imtile: row-major, left to right and top
//! to bottom, every image resized to the same square tile.

use std::borrow::{Borrow, Cow};

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

use super::text::draw_label;

/// Colour between and after the tiles (imtile's default background).
pub const BACKGROUND: Rgb<u8> = Rgb([0, 0, 0]);
/// insertText's default look: black text on a yellow box.
pub const LABEL_TEXT: Rgb<u8> = Rgb([0, 0, 0]);
pub const LABEL_BOX: Rgb<u8> = Rgb([255, 255, 0]);

/// Columns for `n` tiles: the smallest square grid that holds them (16 -> 4 x 4, 12 -> 4 x 3).
pub fn grid_cols(n: usize) -> u32 {
    let mut cols = 1u32;
    while (cols as usize) * (cols as usize) < n {
        cols += 1;
    }
    cols
}

/// Label magnification for a tile side: about a twelfth of the tile per text line, as insertText's
/// 20 pt font sits on a 227 px image.
pub fn label_scale(tile: u32) -> u32 {
    ((tile + 55) / 110).max(1)
}

/// Tiles `images` into a grid of `cols` columns (at most one per image) and as many rows as needed,
/// each resized to `tile` x `tile`, with `gap` background pixels between neighbours. No images give
/// a 0 x 0 picture.
#[cfg(test)]
pub fn tile<I: Borrow<RgbImage>>(images: &[I], cols: u32, tile: u32, gap: u32) -> RgbImage {
    compose(
        images.iter().map(|img| fit(img.borrow(), tile)),
        images.len(),
        cols,
        tile,
        gap,
    )
}

/// Like [`tile`], with each text drawn at the top-left corner of its tile (black on yellow, as
/// MATLAB's insertText), at a size that suits the tile.
pub fn labelled_tile<I: Borrow<RgbImage>, S: AsRef<str>>(
    items: &[(I, S)],
    cols: u32,
    tile: u32,
    gap: u32,
) -> RgbImage {
    let scale = label_scale(tile);
    let tiles = items.iter().map(|(img, text)| {
        let mut tile_img = fit(img.borrow(), tile).into_owned();
        draw_label(
            &mut tile_img,
            text.as_ref(),
            0,
            0,
            scale,
            LABEL_TEXT,
            LABEL_BOX,
        );
        Cow::Owned(tile_img)
    });
    compose(tiles, items.len(), cols, tile, gap)
}

/// `img` at `size` x `size` (bilinear), borrowed when it already is; an empty image becomes a
/// background-coloured tile.
fn fit(img: &RgbImage, size: u32) -> Cow<'_, RgbImage> {
    let size = size.max(1);
    if img.dimensions() == (size, size) {
        Cow::Borrowed(img)
    } else if img.width() == 0 || img.height() == 0 {
        Cow::Owned(RgbImage::from_pixel(size, size, BACKGROUND))
    } else {
        Cow::Owned(imageops::resize(img, size, size, FilterType::Triangle))
    }
}

fn compose<'a>(
    tiles: impl Iterator<Item = Cow<'a, RgbImage>>,
    n: usize,
    cols: u32,
    tile: u32,
    gap: u32,
) -> RgbImage {
    if n == 0 {
        return RgbImage::new(0, 0);
    }
    let tile = tile.max(1);
    let cols = cols.clamp(1, n.min(u32::MAX as usize) as u32);
    let rows = n.div_ceil(cols as usize) as u32;
    let span = |count: u32| count * tile + (count - 1) * gap;
    let mut canvas = RgbImage::from_pixel(span(cols), span(rows), BACKGROUND);
    for (k, tile_img) in tiles.enumerate() {
        let (col, row) = (k as u32 % cols, k as u32 / cols);
        imageops::replace(
            &mut canvas,
            &*tile_img,
            (col * (tile + gap)) as i64,
            (row * (tile + gap)) as i64,
        );
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(value: u8, size: u32) -> RgbImage {
        RgbImage::from_pixel(size, size, Rgb([value, value, value]))
    }

    #[test]
    fn grid_has_imtile_dimensions_for_n_images() {
        for (n, cols, expected) in [
            (16, 4, (4 * 10 + 3 * 2, 4 * 10 + 3 * 2)),
            (5, 4, (46, 22)),
            (3, 4, (34, 10)),
            (1, 4, (10, 10)),
        ] {
            let images: Vec<RgbImage> = (0..n).map(|k| solid(k as u8, 7)).collect();
            assert_eq!(
                tile(&images, cols, 10, 2).dimensions(),
                expected,
                "{n} images in {cols} columns"
            );
        }
        assert_eq!(tile::<RgbImage>(&[], 4, 10, 2).dimensions(), (0, 0));
        assert_eq!(grid_cols(16), 4);
        assert_eq!(grid_cols(12), 4);
        assert_eq!(grid_cols(17), 5);
        assert_eq!(grid_cols(1), 1);
    }

    #[test]
    fn images_are_placed_row_major_with_background_gaps() {
        let images: Vec<RgbImage> = (1..=5).map(|k| solid(k * 40, 30)).collect();
        let grid = tile(&images, 3, 8, 1);
        for k in 0..5u32 {
            let (x, y) = ((k % 3) * 9, (k / 3) * 9);
            assert_eq!(
                grid.get_pixel(x + 4, y + 4).0[0],
                ((k + 1) * 40) as u8,
                "tile {k}"
            );
        }
        assert_eq!(*grid.get_pixel(8, 0), BACKGROUND, "gap between columns");
        assert_eq!(*grid.get_pixel(0, 8), BACKGROUND, "gap between rows");
        assert_eq!(
            *grid.get_pixel(2 * 9 + 4, 9 + 4),
            BACKGROUND,
            "empty slot after the last image"
        );
    }

    #[test]
    fn labels_land_on_their_own_tiles_top_left() {
        let images = [(solid(128, 20), "A"), (solid(128, 20), "")];
        let grid = labelled_tile(&images, 2, 40, 0);
        assert_eq!(*grid.get_pixel(0, 0), LABEL_BOX);
        assert!(grid
            .enumerate_pixels()
            .any(|(x, y, p)| x < 40 && y < 12 && *p == LABEL_TEXT));
        // The unlabelled tile and the lower part of the labelled one keep the image.
        assert!((40..80).all(|x| grid.get_pixel(x, 0).0 == [128; 3]));
        assert_eq!(grid.get_pixel(20, 30).0, [128; 3]);
        assert_eq!(label_scale(227), 2);
        assert_eq!(label_scale(64), 1);
    }
}
