//! A small Sixel encoder. viuer speaks Sixel only through optional native code and always asks the
//! terminal first whether it can, and a terminal that never answers would hang the program; with
//! our own encoder the caller decides and nothing waits.

use std::fmt::Write as _;

use image::RgbImage;

/// Intensity levels per channel: a 6 x 6 x 6 colour cube, 216 registers, which every Sixel terminal
/// has room for.
const LEVELS: usize = 6;
const COLOURS: usize = LEVELS * LEVELS * LEVELS;
/// 4 x 4 ordered-dither thresholds (Bayer): smooth shading without the colour cube's banding, and the
/// same output for the same image.
const BAYER: [[u8; 4]; 4] = [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]];

/// Encodes `img` as one complete Sixel sequence (DCS ... ST), pixel for pixel: resize it to the size
/// it should have on screen first.
pub fn encode(img: &RgbImage) -> String {
    let (width, height) = (img.width() as usize, img.height() as usize);
    let indices: Vec<u8> = img
        .enumerate_pixels()
        .map(|(x, y, p)| {
            let threshold = (BAYER[y as usize % 4][x as usize % 4] as f32 + 0.5) / 16.0;
            let level = |v: u8| {
                ((v as f32 / 255.0 * (LEVELS - 1) as f32 + threshold) as usize).min(LEVELS - 1)
            };
            (level(p.0[0]) * LEVELS * LEVELS + level(p.0[1]) * LEVELS + level(p.0[2])) as u8
        })
        .collect();

    let mut out = String::with_capacity(width * height / 2 + 4096);
    out.push_str("\x1bP0;1q");
    let _ = write!(out, "\"1;1;{width};{height}");
    let mut used = [false; COLOURS];
    for &i in &indices {
        used[i as usize] = true;
    }
    for (colour, _) in used.iter().enumerate().filter(|(_, u)| **u) {
        let percent = |level: usize| level * 100 / (LEVELS - 1);
        let (r, g, b) = (
            colour / (LEVELS * LEVELS),
            colour / LEVELS % LEVELS,
            colour % LEVELS,
        );
        let _ = write!(
            out,
            "#{colour};2;{};{};{}",
            percent(r),
            percent(g),
            percent(b)
        );
    }

    // One band is six pixel rows; each colour present in it is one pass of sixel characters whose
    // six bits say which of the six rows that colour covers in that column.
    let mut bits = vec![0u8; COLOURS * width];
    for (band, band_start) in (0..height).step_by(6).enumerate() {
        if band > 0 {
            out.push('-');
        }
        let mut present = [false; COLOURS];
        for row in band_start..(band_start + 6).min(height) {
            for (x, &colour) in indices[row * width..][..width].iter().enumerate() {
                bits[colour as usize * width + x] |= 1 << (row - band_start);
                present[colour as usize] = true;
            }
        }
        let mut first = true;
        for colour in (0..COLOURS).filter(|&c| present[c]) {
            if !first {
                out.push('$');
            }
            first = false;
            let _ = write!(out, "#{colour}");
            let row = &mut bits[colour * width..][..width];
            push_run_length(&mut out, row);
            row.fill(0);
        }
    }
    out.push_str("\x1b\\");
    out
}

/// Appends one pass of sixel characters, runs of four or more written as `!count char`; trailing
/// empty columns are left out.
fn push_run_length(out: &mut String, row: &[u8]) {
    let used = row.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1);
    let mut x = 0;
    while x < used {
        let run = row[x..used].iter().take_while(|&&b| b == row[x]).count();
        let ch = char::from(b'?' + row[x]);
        if run >= 4 {
            let _ = write!(out, "!{run}{ch}");
        } else {
            (0..run).for_each(|_| out.push(ch));
        }
        x += run;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// Decodes the subset of Sixel that `encode` writes, back to pixels (black where nothing was
    /// painted).
    fn decode(sixel: &str) -> RgbImage {
        let body = sixel
            .strip_prefix("\x1bP0;1q\"1;1;")
            .unwrap()
            .strip_suffix("\x1b\\")
            .unwrap();
        let mut chars = body.chars().peekable();
        let number = |chars: &mut std::iter::Peekable<std::str::Chars>| {
            let mut n = 0usize;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = n * 10 + d as usize;
                chars.next();
            }
            n
        };
        let width = number(&mut chars);
        assert_eq!(chars.next(), Some(';'));
        let height = number(&mut chars);
        let mut img = RgbImage::new(width as u32, height as u32);
        let mut palette = vec![[0u8; 3]; COLOURS];
        let (mut colour, mut x, mut band) = (0usize, 0usize, 0usize);
        while let Some(c) = chars.next() {
            match c {
                '#' => {
                    colour = number(&mut chars);
                    if chars.peek() == Some(&';') {
                        chars.next();
                        assert_eq!(number(&mut chars), 2);
                        let mut rgb = [0u8; 3];
                        for v in &mut rgb {
                            assert_eq!(chars.next(), Some(';'));
                            *v = (number(&mut chars) * 255 / 100) as u8;
                        }
                        palette[colour] = rgb;
                    }
                }
                '$' => x = 0,
                '-' => (x, band) = (0, band + 1),
                '!' | '?'..='~' => {
                    let run = if c == '!' { number(&mut chars) } else { 1 };
                    let bits = if c == '!' { chars.next().unwrap() } else { c } as u8 - b'?';
                    for _ in 0..run {
                        for row in 0..6 {
                            if bits >> row & 1 == 1 {
                                img.put_pixel(
                                    x as u32,
                                    (band * 6 + row) as u32,
                                    Rgb(palette[colour]),
                                );
                            }
                        }
                        x += 1;
                    }
                }
                other => panic!("unexpected {other:?} in sixel body"),
            }
        }
        img
    }

    #[test]
    fn colours_on_the_cube_survive_a_round_trip_exactly() {
        let levels = [0u8, 51, 102, 153, 204, 255];
        let img = RgbImage::from_fn(23, 13, |x, y| {
            Rgb([
                levels[(x as usize) % 6],
                levels[(y as usize) % 6],
                levels[(x as usize + y as usize) % 6],
            ])
        });
        let sixel = encode(&img);
        assert!(sixel.starts_with("\x1bP0;1q\"1;1;23;13#"));
        assert_eq!(decode(&sixel), img);
    }

    #[test]
    fn runs_are_compressed_and_dithering_keeps_mean_tone() {
        let grey = RgbImage::from_pixel(200, 12, Rgb([128, 128, 128]));
        let sixel = encode(&grey);
        assert!(
            sixel.len() < 2000,
            "a flat image should compress well, got {} bytes",
            sixel.len()
        );
        assert_eq!(sixel.matches('-').count(), 1, "12 rows are two bands");
        let decoded = decode(&sixel);
        let mean = decoded.pixels().map(|p| p.0[0] as f64).sum::<f64>() / (200.0 * 12.0);
        assert!((mean - 128.0).abs() < 4.0, "dithered mean {mean}");
    }

    #[test]
    fn empty_image_is_a_valid_empty_sequence() {
        assert_eq!(encode(&RgbImage::new(0, 0)), "\x1bP0;1q\"1;1;0;0\x1b\\");
    }
}
