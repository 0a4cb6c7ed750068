//! The ways a picture is written to a terminal, for the command line and the dashboard alike:
//! the escape sequences of kitty, iTerm2 and sixel graphics, and coloured half blocks. Each takes
//! a picture already at the size it should have on screen (see `termio::Graphics::fit`).

use std::io;

use anyhow::{Context, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use image::{ImageFormat, Rgb, RgbImage};

use super::palette::{self, Shade};
use crate::termio::Colours;

pub use super::sixel::encode as sixel;

/// The picture as PNG, which kitty and iTerm2 take.
pub fn png(img: &RgbImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    img.write_to(&mut io::Cursor::new(&mut bytes), ImageFormat::Png)
        .context("cannot encode the picture as PNG for the terminal")?;
    Ok(bytes)
}

/// kitty graphics: a PNG sent in base64 chunks of at most 4096 bytes and shown at its own size at
/// the cursor (`a=T`). `q=2` tells the terminal not to answer, so nothing lands in our input.
/// With an `id` (and placement 1) a later picture of the same id replaces it and it can be
/// deleted; `keep_cursor` leaves the cursor where it was (`C=1`).
pub fn kitty(png: &[u8], id: Option<u32>, keep_cursor: bool) -> String {
    let encoded = BASE64.encode(png);
    let chunks: Vec<&[u8]> = encoded.as_bytes().chunks(4096).collect();
    let mut out = String::with_capacity(encoded.len() + chunks.len() * 16 + 64);
    for (k, chunk) in chunks.iter().enumerate() {
        let more = u8::from(k + 1 < chunks.len());
        if k == 0 {
            out.push_str("\x1b_Ga=T,f=100,q=2");
            if let Some(id) = id {
                out.push_str(&format!(",i={id},p=1"));
            }
            if keep_cursor {
                out.push_str(",C=1");
            }
            out.push_str(&format!(",m={more};"));
        } else {
            out.push_str(&format!("\x1b_Gm={more};"));
        }
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\x1b\\");
    }
    out
}

/// Deletes the kitty picture `id` and its data.
pub fn kitty_delete(id: u32) -> String {
    format!("\x1b_Ga=d,d=I,i={id},q=2\x1b\\")
}

/// Deletes every kitty picture on screen and its data.
pub const KITTY_DELETE_ALL: &str = "\x1b_Ga=d,d=A,q=2\x1b\\";

/// iTerm2 inline image (OSC 1337) in `cols` x `rows` cells, keeping its proportions.
pub fn iterm2(png: &[u8], cols: u16, rows: u16) -> String {
    format!(
        "\x1b]1337;File=inline=1;size={};width={cols};height={rows};preserveAspectRatio=1:{}\x07",
        png.len(),
        BASE64.encode(png)
    )
}

/// One cell of half blocks: the upper pixel as the foreground of `▀`, the lower one as its
/// background; None where the picture ends halfway down the cell (the terminal's own background
/// shows, not a dark edge).
pub type HalfBlock = (Shade, Option<Shade>);

/// The picture as rows of half-block cells in `colours`, two pixel rows a cell.
pub fn half_blocks(img: &RgbImage, colours: Colours) -> Vec<Vec<HalfBlock>> {
    let at = |x: u32, y: u32| palette::shade(*img.get_pixel(x, y), colours);
    (0..img.height().div_ceil(2))
        .map(|row| {
            (0..img.width())
                .map(|x| {
                    let lower = (2 * row + 1 < img.height()).then(|| at(x, 2 * row + 1));
                    (at(x, 2 * row), lower)
                })
                .collect()
        })
        .collect()
}

/// Half blocks as text in `colours`, one line a row, each ending with the colours reset.
pub fn half_block_lines(img: &RgbImage, colours: Colours) -> Vec<String> {
    let sgr = |layer: u8, shade: Shade| match shade {
        Shade::Rgb(Rgb([r, g, b])) => format!("\x1b[{layer}8;2;{r};{g};{b}m"),
        Shade::Indexed(i) if i < 8 => format!("\x1b[{layer}{i}m"),
        Shade::Indexed(i) => format!("\x1b[{layer}8;5;{i}m"),
    };
    half_blocks(img, colours)
        .into_iter()
        .map(|row| {
            let mut line = String::with_capacity(row.len() * 40);
            for (upper, lower) in row {
                line.push_str(&sgr(3, upper));
                match lower {
                    Some(lower) => line.push_str(&sgr(4, lower)),
                    None => line.push_str("\x1b[49m"),
                }
                line.push('▀');
            }
            line.push_str("\x1b[0m");
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kitty_sends_png_in_quiet_chunks() {
        let png = vec![7u8; 7000]; // base64: 9336 bytes -> chunks of 4096, 4096, 1144
        let text = kitty(&png, Some(12), true);
        assert!(text.starts_with("\x1b_Ga=T,f=100,q=2,i=12,p=1,C=1,m=1;"));
        assert_eq!(text.matches("\x1b_G").count(), 3);
        assert_eq!(text.matches("m=1;").count(), 2);
        assert_eq!(text.matches("\x1b_Gm=0;").count(), 1);
        assert!(text.ends_with("\x1b\\"));
        let payload: String = text
            .split("\x1b_G")
            .filter(|s| !s.is_empty())
            .map(|s| s.split_once(';').unwrap().1.trim_end_matches("\x1b\\"))
            .collect();
        assert_eq!(BASE64.decode(payload).unwrap(), png);
        assert!(kitty(&png, None, false).starts_with("\x1b_Ga=T,f=100,q=2,m=1;"));
    }

    #[test]
    fn iterm2_sends_a_sized_inline_file() {
        let expected = format!(
            "\x1b]1337;File=inline=1;size=9;width=30;height=9;preserveAspectRatio=1:{}\x07",
            BASE64.encode(b"png bytes")
        );
        assert_eq!(iterm2(b"png bytes", 30, 9), expected);
    }

    #[test]
    fn half_blocks_end_on_the_background_not_on_a_dark_edge() {
        let mut img = RgbImage::from_pixel(2, 3, Rgb([200, 100, 50]));
        img.put_pixel(1, 1, Rgb([1, 2, 3]));
        let cells = half_blocks(&img, Colours::Direct);
        assert_eq!(cells.len(), 2);
        let (orange, dark) = (Shade::Rgb(Rgb([200, 100, 50])), Shade::Rgb(Rgb([1, 2, 3])));
        assert_eq!(cells[0][1], (orange, Some(dark)));
        // The odd last pixel row: its lower half is the terminal's background.
        assert_eq!(cells[1][0], (orange, None));
        let lines = half_block_lines(&img, Colours::Direct);
        assert!(lines[0].starts_with("\x1b[38;2;200;100;50m\x1b[48;2;200;100;50m▀"));
        assert!(lines[1].contains("\x1b[49m▀") && lines[1].ends_with("\x1b[0m"));
    }

    #[test]
    fn half_blocks_in_a_palette_send_its_indices() {
        let img = RgbImage::from_pixel(1, 2, Rgb([250, 5, 5]));
        let palette = half_block_lines(&img, Colours::Palette256);
        assert_eq!(palette[0], "\x1b[38;5;196m\x1b[48;5;196m▀\x1b[0m");
        let basic = half_block_lines(&img, Colours::Basic8);
        assert_eq!(basic[0], "\x1b[31m\x1b[41m▀\x1b[0m");
    }
}
