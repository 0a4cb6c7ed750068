//! Pixels as the colours a terminal is sent for half blocks: 24-bit as they are, or the nearest
//! colour of the palette that reaches the screen unchanged where 24-bit colours would not (see
//! `termio::colours`). The palette's colours are xterm's, which mlterm, tmux and most terminals
//! share for the cube and grey ramp (16-255) and by default for the basic 8.

use image::{Rgb, RgbImage};

use crate::termio::Colours;

/// A colour as sent to the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shade {
    Rgb(Rgb<u8>),
    /// A palette index.
    Indexed(u8),
}

/// xterm's default basic colours: black, red, green, yellow, blue, magenta, cyan, white.
const BASIC: [[u8; 3]; 8] = [
    [0, 0, 0],
    [205, 0, 0],
    [0, 205, 0],
    [205, 205, 0],
    [0, 0, 238],
    [205, 0, 205],
    [0, 205, 205],
    [229, 229, 229],
];

/// The levels of each channel in the 6x6x6 colour cube (indices 16-231).
const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

/// `pixel` as sent in `colours`.
pub fn shade(pixel: Rgb<u8>, colours: Colours) -> Shade {
    match colours {
        Colours::Direct => Shade::Rgb(pixel),
        Colours::Palette256 => Shade::Indexed(nearest_256(pixel)),
        Colours::Basic8 => Shade::Indexed(nearest_basic(pixel)),
    }
}

/// The colour the screen shows for `shade`.
pub fn shown(shade: Shade) -> Rgb<u8> {
    match shade {
        Shade::Rgb(pixel) => pixel,
        Shade::Indexed(index) => Rgb(palette(index)),
    }
}

/// `image` as the screen will show it in `colours`.
pub fn as_shown(image: &RgbImage, colours: Colours) -> RgbImage {
    let mut shown_image = image.clone();
    if colours != Colours::Direct {
        for pixel in shown_image.pixels_mut() {
            *pixel = shown(shade(*pixel, colours));
        }
    }
    shown_image
}

/// The RGB of palette entry `index` (xterm's defaults).
fn palette(index: u8) -> [u8; 3] {
    match index {
        0..=7 => BASIC[usize::from(index)],
        // The bright basic colours: not used here, given as xterm's for completeness.
        8 => [127, 127, 127],
        9..=15 => BASIC[usize::from(index - 8)].map(|c| if c > 0 { 255 } else { 0 }),
        16..=231 => {
            let i = index - 16;
            [
                CUBE[usize::from(i / 36)],
                CUBE[usize::from(i / 6 % 6)],
                CUBE[usize::from(i % 6)],
            ]
        }
        _ => [8 + 10 * (index - 232); 3],
    }
}

fn distance(a: [u8; 3], b: [u8; 3]) -> u32 {
    a.iter()
        .zip(b)
        .map(|(&x, y)| (i32::from(x) - i32::from(y)).unsigned_abs().pow(2))
        .sum()
}

/// The nearest of the cube's and the grey ramp's colours (16-255; the basic 16 vary between
/// terminals).
fn nearest_256(Rgb(pixel): Rgb<u8>) -> u8 {
    let level = |v: u8| -> u8 {
        match v {
            0..=47 => 0,
            48..=114 => 1,
            _ => (v - 35) / 40,
        }
    };
    let [r, g, b] = pixel.map(level);
    let cube = 16 + 36 * r + 6 * g + b;
    let mean = (pixel.iter().map(|&c| u32::from(c)).sum::<u32>() / 3) as u8;
    let grey = 232 + (mean.saturating_sub(3) / 10).min(23);
    if distance(palette(grey), pixel) < distance(palette(cube), pixel) {
        grey
    } else {
        cube
    }
}

fn nearest_basic(Rgb(pixel): Rgb<u8>) -> u8 {
    (0..8u8)
        .min_by_key(|&i| distance(BASIC[usize::from(i)], pixel))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nearest by brute force over the same entries.
    fn brute(pixel: [u8; 3], entries: std::ops::RangeInclusive<u8>) -> u32 {
        entries.map(|i| distance(palette(i), pixel)).min().unwrap()
    }

    #[test]
    fn palette_colours_are_the_nearest_of_their_palette() {
        let mut seed = 12345u32;
        for _ in 0..5000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let pixel = [(seed >> 8) as u8, (seed >> 16) as u8, (seed >> 24) as u8];
            let Shade::Indexed(i) = shade(Rgb(pixel), Colours::Palette256) else {
                panic!("not a palette colour");
            };
            assert!(i >= 16);
            assert_eq!(
                distance(palette(i), pixel),
                brute(pixel, 16..=255),
                "{pixel:?}"
            );
            let Shade::Indexed(i) = shade(Rgb(pixel), Colours::Basic8) else {
                panic!("not a basic colour");
            };
            assert_eq!(
                distance(palette(i), pixel),
                brute(pixel, 0..=7),
                "{pixel:?}"
            );
        }
    }

    #[test]
    fn the_palette_is_xterms() {
        assert_eq!(palette(16), [0, 0, 0]);
        assert_eq!(palette(196), [255, 0, 0]);
        assert_eq!(palette(231), [255, 255, 255]);
        assert_eq!(palette(232), [8, 8, 8]);
        assert_eq!(palette(255), [238, 238, 238]);
        assert_eq!(palette(4), [0, 0, 238]);
        // A palette colour shows as itself; 24-bit colours pass unchanged.
        let red = Rgb([255, 0, 0]);
        assert_eq!(shown(shade(red, Colours::Palette256)), red);
        let odd = Rgb([1, 2, 3]);
        assert_eq!(shown(shade(odd, Colours::Direct)), odd);
        let image = RgbImage::from_pixel(2, 2, Rgb([250, 10, 10]));
        assert_eq!(
            as_shown(&image, Colours::Palette256).get_pixel(1, 1),
            &Rgb([255, 0, 0])
        );
    }
}
