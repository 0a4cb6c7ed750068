//! A picture made for its place on screen (on the encoder thread) and drawn as a widget: scaled
//! to fill the place with the terminal's own cell size, written in the protocol the terminal
//! answered for (`termio::Graphics`), through tmux where it has to be. Pictures drawn with escape
//! sequences sit in their top-left cell; the other cells are left to them.

use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use image::imageops::{self, FilterType};
use image::{DynamicImage, Rgb, RgbImage};
use ratatui::buffer::{Buffer, CellDiffOption};
use ratatui::layout::{Rect, Size};
use ratatui::style::Color;
use ratatui::widgets::Widget;
use ratatui_image::protocol::kitty::Kitty;
use ratatui_image::protocol::Protocol as Placeholders;

use crate::imaging::palette::{self, Shade};
use crate::imaging::picture_log;
use crate::imaging::protocols::{self, HalfBlock};
use crate::termio::{tmux, Graphics, Protocol};

/// tmux 3.3 drops a passed-through sequence longer than its input buffer (1 MiB): a sixel
/// picture through tmux is made smaller until it fits under this.
const PASSTHROUGH_LIMIT: usize = 900_000;

pub struct Picture {
    id: u32,
    cells: Size,
    kind: Kind,
}

enum Kind {
    /// Sixel, iTerm2 or kitty placed directly: `body` is written at the top-left cell (with its
    /// escapes doubled when `passthrough`).
    Escape {
        body: String,
        passthrough: bool,
        kitty: bool,
    },
    /// kitty's Unicode placeholders (ratatui-image's implementation).
    Placeholders(Placeholders),
    HalfBlocks(Vec<Vec<HalfBlock>>),
}

impl Picture {
    /// The cells it covers.
    pub fn size(&self) -> Size {
        self.cells
    }

    /// Tells this picture from every other one made in this process.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// It stays on screen after its frame (sixel and iTerm2 pixels, kitty placements) until
    /// overwritten or deleted; text-like pictures (half blocks, placeholders) go with the text.
    pub fn lingers(&self) -> bool {
        matches!(self.kind, Kind::Escape { .. })
    }

    /// Its kitty image id, when it is a kitty picture placed directly (deleted by id).
    pub fn kitty_id(&self) -> Option<u32> {
        match self.kind {
            Kind::Escape { kitty: true, .. } => Some(self.id),
            _ => None,
        }
    }
}

/// Ids for kitty pictures: from a random start, so two programs in one terminal do not collide.
fn next_id() -> u32 {
    static START: OnceLock<u32> = OnceLock::new();
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let start = *START.get_or_init(|| rand::random::<u32>() >> 8);
    start
        .wrapping_add(COUNT.fetch_add(1, Ordering::Relaxed))
        .max(1)
}

/// Makes `image` into a picture filling as much of `area` (cells) as its proportions allow.
pub fn encode(graphics: &Graphics, image: &RgbImage, area: Size) -> Result<Picture, String> {
    let fit = graphics.fit(image.width(), image.height(), area.width, area.height);
    if fit.cols == 0 || fit.rows == 0 {
        return Err("no room for the picture".into());
    }
    let sized = resized(image, fit.px_w, fit.px_h);
    let id = next_id();
    let cells = Size::new(fit.cols, fit.rows);
    let escape = |body: String, kitty: bool| Kind::Escape {
        body: if graphics.passthrough {
            tmux::double_escapes(&body)
        } else {
            body
        },
        passthrough: graphics.passthrough,
        kitty,
    };
    let png = |img: &RgbImage| protocols::png(img).map_err(|e| format!("{e:#}"));
    let log = |sent: &RgbImage| {
        let protocol = graphics.protocol.to_string();
        picture_log::picture(id, &protocol, sent, (fit.cols, fit.rows), graphics.cell);
    };
    match graphics.protocol {
        Protocol::Sixel => {}
        Protocol::HalfBlocks => log(&palette::as_shown(&sized, graphics.colours)),
        _ => log(&sized),
    }
    let kind = match graphics.protocol {
        Protocol::HalfBlocks => Kind::HalfBlocks(protocols::half_blocks(&sized, graphics.colours)),
        Protocol::Sixel => {
            let (sixel, sent) = sixel_within_limit(&sized, graphics.passthrough);
            log(&sent);
            escape(sixel, false)
        }
        Protocol::Iterm2 => escape(protocols::iterm2(&png(&sized)?, fit.cols, fit.rows), false),
        Protocol::KittyDirect => escape(protocols::kitty(&png(&sized)?, Some(id), true), true),
        Protocol::KittyPlaceholders => Kind::Placeholders(Placeholders::Kitty(
            Kitty::new(
                DynamicImage::ImageRgb8(sized),
                cells,
                id,
                graphics.passthrough,
                false,
            )
            .map_err(|e| e.to_string())?,
        )),
    };
    Ok(Picture { id, cells, kind })
}

fn resized(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    if (image.width(), image.height()) == (width, height) {
        image.clone()
    } else {
        imageops::resize(image, width, height, FilterType::Triangle)
    }
}

/// The sixel sequence of `sized`, made smaller while it would be too long for tmux to pass on
/// (then the picture does not fill its place, but shows), and the pixels it holds.
fn sixel_within_limit(sized: &RgbImage, passthrough: bool) -> (String, RgbImage) {
    let mut sixel = protocols::sixel(sized);
    let mut image = sized.clone();
    while passthrough && sixel.len() > PASSTHROUGH_LIMIT && image.width() > 16 {
        let shrink = (PASSTHROUGH_LIMIT as f64 / sixel.len() as f64).sqrt() * 0.95;
        let (w, h) = (
            ((f64::from(image.width()) * shrink) as u32).max(1),
            ((f64::from(image.height()) * shrink) as u32).max(1),
        );
        image = imageops::resize(&image, w, h, FilterType::Triangle);
        sixel = protocols::sixel(&image);
    }
    (sixel, image)
}

/// A half block's colour as ratatui writes it.
fn colour(shade: Shade) -> Color {
    match shade {
        Shade::Rgb(Rgb([r, g, b])) => Color::Rgb(r, g, b),
        Shade::Indexed(index) => Color::Indexed(index),
    }
}

const ONE_CELL: CellDiffOption = CellDiffOption::ForcedWidth(NonZeroU16::new(1).unwrap());

impl Widget for &Picture {
    /// Draws at the top-left of `area`, cut to it (pictures are made for their area).
    fn render(self, area: Rect, buf: &mut Buffer) {
        let width = area.width.min(self.cells.width);
        let height = area.height.min(self.cells.height);
        if width == 0 || height == 0 {
            return;
        }
        match &self.kind {
            Kind::HalfBlocks(rows) => {
                for (y, row) in rows.iter().enumerate().take(height as usize) {
                    for (x, (upper, lower)) in row.iter().enumerate().take(width as usize) {
                        let position = (area.x + x as u16, area.y + y as u16);
                        if let Some(cell) = buf.cell_mut(position) {
                            cell.set_symbol("▀")
                                .set_fg(colour(*upper))
                                .set_bg(lower.map_or(Color::Reset, colour));
                        }
                    }
                }
            }
            Kind::Placeholders(placeholders) => {
                ratatui_image::Image::new(placeholders).render(area, buf)
            }
            Kind::Escape {
                body, passthrough, ..
            } => {
                if width < self.cells.width || height < self.cells.height {
                    // A picture cut short would spill out of its place: drawn only whole.
                    return;
                }
                // Blank the cells first (so no text shows beside pixels that do not reach a
                // cell's edge), then the picture, and back to where the cursor was.
                let mut symbol = String::with_capacity(body.len() + 16 * usize::from(height) + 64);
                for _ in 0..height {
                    symbol.push_str(&format!("\x1b[{width}X\x1b[1B"));
                }
                symbol.push_str(&format!("\x1b[{height}A"));
                if *passthrough {
                    symbol.push_str(&tmux::wrap_at(body, area.x, area.y));
                } else {
                    symbol.push_str("\x1b7");
                    symbol.push_str(body);
                    symbol.push_str("\x1b8");
                }
                for y in area.y..area.y + height {
                    for x in area.x..area.x + width {
                        if let Some(cell) = buf.cell_mut((x, y)) {
                            cell.set_diff_option(CellDiffOption::Skip);
                        }
                    }
                }
                if let Some(cell) = buf.cell_mut((area.x, area.y)) {
                    cell.set_symbol(&symbol).set_diff_option(ONE_CELL);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graphics(protocol: Protocol) -> Graphics {
        Graphics {
            protocol,
            cell: (8, 17),
            passthrough: false,
            drawer: "test".into(),
            max_picture: None,
            colours: crate::termio::Colours::Direct,
            note: None,
        }
    }

    #[test]
    fn pictures_fill_their_place_at_the_terminals_cell_size() {
        // The sample grid's 262 px used to stay 262 px in a panel of about 1270 x 730 px.
        let grid = RgbImage::new(262, 262);
        let area = Size::new(158, 43); // 1264 x 731 px at 8 x 17
        for protocol in [Protocol::Sixel, Protocol::Iterm2, Protocol::KittyDirect] {
            let picture = encode(&graphics(protocol), &grid, area).unwrap();
            // 731 px tall: 43 rows, and as wide as tall.
            assert_eq!(picture.size(), Size::new(92, 43), "{protocol}");
            assert!(picture.lingers());
        }
        let half = encode(&Graphics::halfblocks(), &grid, area).unwrap();
        assert_eq!(half.size(), Size::new(86, 43));
        assert!(!half.lingers());
    }

    #[test]
    fn escape_pictures_sit_in_their_first_cell_and_skip_the_rest() {
        let picture = encode(
            &graphics(Protocol::Sixel),
            &RgbImage::new(32, 34),
            Size::new(4, 2),
        )
        .unwrap();
        assert_eq!(picture.size(), Size::new(4, 2));
        let mut buf = Buffer::empty(Rect::new(0, 0, 10, 5));
        picture.render(Rect::new(2, 1, 6, 3), &mut buf);
        let first = &buf[(2, 1)];
        assert!(first
            .symbol()
            .starts_with("\x1b[4X\x1b[1B\x1b[4X\x1b[1B\x1b[2A\x1b7\x1bP"));
        assert!(first.symbol().ends_with("\x1b\\\x1b8"));
        assert_eq!(buf[(3, 1)].diff_option, CellDiffOption::Skip);
        assert_eq!(buf[(5, 2)].diff_option, CellDiffOption::Skip);
        assert_eq!(
            buf[(6, 1)].diff_option,
            CellDiffOption::None,
            "beyond the picture"
        );
        // Cut short, it is not drawn at all.
        let mut small = Buffer::empty(Rect::new(0, 0, 10, 5));
        picture.render(Rect::new(0, 0, 3, 2), &mut small);
        assert_eq!(small[(0, 0)].symbol(), " ");
    }

    #[test]
    fn through_tmux_a_picture_moves_to_its_place_on_the_outer_screen() {
        let mut through = graphics(Protocol::KittyDirect);
        through.passthrough = true;
        let picture = encode(&through, &RgbImage::new(16, 17), Size::new(2, 1)).unwrap();
        assert_eq!(picture.kitty_id(), Some(picture.id()));
        let mut buf = Buffer::empty(Rect::new(0, 0, 10, 5));
        picture.render(Rect::new(3, 2, 2, 1), &mut buf);
        let symbol = buf[(3, 2)].symbol().to_string();
        // Blanked in the pane, then wrapped with escapes doubled, with its own move.
        assert!(
            symbol.starts_with("\x1b[2X\x1b[1B\x1b[1A\x1bPtmux;\x1b\x1b7\x1b\x1b["),
            "{symbol:?}"
        );
        assert!(symbol.contains("\x1b\x1b_Ga=T,f=100,q=2,i="));
        assert!(symbol.ends_with("\x1b\x1b8\x1b\\"));
    }

    #[test]
    fn half_blocks_are_whole_cells_of_two_pixels() {
        let mut image = RgbImage::from_pixel(3, 4, image::Rgb([10, 20, 30]));
        image.put_pixel(0, 1, image::Rgb([200, 0, 0]));
        let picture = encode(&Graphics::halfblocks(), &image, Size::new(3, 2)).unwrap();
        assert_eq!(picture.size(), Size::new(3, 2));
        let mut buf = Buffer::empty(Rect::new(0, 0, 3, 2));
        picture.render(Rect::new(0, 0, 3, 2), &mut buf);
        assert_eq!(buf[(0, 0)].symbol(), "▀");
        assert_eq!(buf[(0, 0)].fg, Color::Rgb(10, 20, 30));
        assert_eq!(buf[(0, 0)].bg, Color::Rgb(200, 0, 0));
        // Where 24-bit colours would not arrive intact: palette colours.
        let palette = Graphics::halfblocks_in(crate::termio::Colours::Palette256, None);
        let picture = encode(&palette, &image, Size::new(3, 2)).unwrap();
        picture.render(Rect::new(0, 0, 3, 2), &mut buf);
        assert_eq!(buf[(0, 0)].fg, Color::Indexed(233));
        assert_eq!(buf[(0, 0)].bg, Color::Indexed(160));
        // An odd number of pixel rows would end on half a cell of the terminal's background (the
        // dark edge of issue 20): pictures are made whole cells tall.
        let odd = encode(
            &Graphics::halfblocks(),
            &RgbImage::new(3, 3),
            Size::new(3, 2),
        )
        .unwrap();
        let mut buf = Buffer::empty(Rect::new(0, 0, 3, 2));
        odd.render(Rect::new(0, 0, 3, 2), &mut buf);
        assert!(buf
            .content()
            .iter()
            .all(|c| c.symbol() != "▀" || c.bg != Color::Reset));
    }
}
