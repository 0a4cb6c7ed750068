//! Printing a picture inline on the terminal (`samples`, `gradcam`). The terminal is asked once,
//! with a bounded wait, what it draws (`termio`: the same decision the dashboard makes), and the
//! picture is fitted to the screen: never wider than the terminal, never so tall that its top
//! scrolls away.

use std::io::{self, IsTerminal, Write};

use anyhow::{bail, Context, Result};
use image::imageops::{self, FilterType};
use image::RgbImage;

use super::protocols;
use crate::termio::tty::{RawMode, TtyInput};
use crate::termio::{self, tmux, Graphics, Protocol};

pub use crate::termio::GraphicsChoice;

/// What `print_inline` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printed {
    /// The picture was written to the terminal, taking `cols` x `rows` character cells.
    Inline {
        protocol: Protocol,
        cols: u32,
        rows: u32,
    },
    /// stdout is not a terminal (a pipe or a file): nothing was written, so the caller can print a
    /// text fallback such as the picture's path.
    NotATerminal,
}

/// Prints `img` below the cursor, `width_cells` character cells wide (default: its natural size),
/// within the terminal's width and height, and moves the cursor below it. Writes nothing when
/// stdout is not a terminal. A protocol forced with `CRACKSCOPE_GRAPHICS` that the terminal does
/// not draw is an error that says what it draws.
pub fn print_inline(img: &RgbImage, width_cells: Option<u32>) -> Result<Printed> {
    if !io::stdout().is_terminal() {
        return Ok(Printed::NotATerminal);
    }
    if img.width() == 0 || img.height() == 0 {
        bail!(
            "cannot print an empty ({}x{}) image",
            img.width(),
            img.height()
        );
    }
    if width_cells == Some(0) {
        bail!("cannot print an image 0 cells wide");
    }
    let var = |key: &str| std::env::var(key).ok();
    let choice = GraphicsChoice::from_env(var)?.unwrap_or_default();
    let graphics = ask_terminal(choice, &var)?;
    if let Some(note) = &graphics.note {
        crate::core::warn::warn(note);
    }
    let screen = screen_cells();
    let fit = fit_on_screen(&graphics, img, width_cells, screen);
    let sized = if (img.width(), img.height()) == (fit.px_w, fit.px_h) {
        img.clone()
    } else {
        imageops::resize(img, fit.px_w, fit.px_h, FilterType::Triangle)
    };
    super::picture_log::terminal(
        &graphics.protocol.to_string(),
        graphics.passthrough,
        &graphics.drawer,
        termio::probe::window_cell(),
    );
    let shown = match graphics.protocol {
        Protocol::HalfBlocks => super::palette::as_shown(&sized, graphics.colours),
        _ => sized.clone(),
    };
    super::picture_log::picture(
        0,
        &graphics.protocol.to_string(),
        &shown,
        (fit.cols, fit.rows),
        graphics.cell,
    );
    let mut out = io::stdout().lock();
    write_picture(&mut out, &sized, &graphics, fit)
        .context("cannot write the picture to the terminal")?;
    Ok(Printed::Inline {
        protocol: graphics.protocol,
        cols: u32::from(fit.cols),
        rows: u32::from(fit.rows),
    })
}

/// How the terminal draws pictures: asked of it (in raw mode, for as long as it takes to answer)
/// unless half blocks were chosen.
fn ask_terminal(choice: GraphicsChoice, var: &impl Fn(&str) -> Option<String>) -> Result<Graphics> {
    if choice == GraphicsChoice::Halfblocks {
        return Ok(Graphics::halfblocks_here(var));
    }
    let info = {
        let _raw = RawMode::enter().context("cannot put the terminal in raw mode to ask it")?;
        let tty = TtyInput::open()?;
        termio::probe(&tty, &mut io::stdout(), var).0
    };
    termio::choose(&info, var, choice)
}

/// The terminal's size in cells; the classic 80 x 24 where it reports none (serial lines).
fn screen_cells() -> (u16, u16) {
    match crossterm::terminal::size() {
        Ok((cols, rows)) if cols > 0 && rows > 0 => (cols, rows),
        _ => (80, 24),
    }
}

/// The picture's place: `width_cells` wide or its natural size, within the screen less a line
/// for what follows.
fn fit_on_screen(
    graphics: &Graphics,
    img: &RgbImage,
    width_cells: Option<u32>,
    (screen_cols, screen_rows): (u16, u16),
) -> termio::Fit {
    let (cw, ch) = (
        u32::from(graphics.cell.0.max(1)),
        u32::from(graphics.cell.1.max(1)),
    );
    let natural = (img.width().div_ceil(cw), img.height().div_ceil(ch));
    let cols = width_cells.unwrap_or(natural.0).min(u32::from(screen_cols));
    let rows = match width_cells {
        Some(_) => u32::from(screen_rows),
        None => natural.1.min(u32::from(screen_rows)),
    };
    let rows = rows.min(u32::from(screen_rows.saturating_sub(1).max(1)));
    graphics.fit(img.width(), img.height(), cols as u16, rows as u16)
}

/// Writes the picture (already at its size on screen) below the cursor and leaves the cursor on
/// the line after it. Graphics go into lines made room for first, so the screen never scrolls
/// under a picture; through tmux they are placed where tmux says the cursor is.
fn write_picture(
    out: &mut impl Write,
    sized: &RgbImage,
    graphics: &Graphics,
    fit: termio::Fit,
) -> io::Result<()> {
    let escape = match graphics.protocol {
        Protocol::HalfBlocks => {
            for line in protocols::half_block_lines(sized, graphics.colours) {
                writeln!(out, "{line}")?;
            }
            return out.flush();
        }
        Protocol::Sixel => protocols::sixel(sized),
        Protocol::KittyDirect | Protocol::KittyPlaceholders => {
            protocols::kitty(&png_or_io_error(sized)?, None, true)
        }
        Protocol::Iterm2 => protocols::iterm2(&png_or_io_error(sized)?, fit.cols, fit.rows),
    };
    let rows = fit.rows.max(1);
    write!(out, "{}\x1b[{rows}A", "\n".repeat(usize::from(rows)))?;
    out.flush()?;
    if graphics.passthrough {
        let row = {
            let _raw = RawMode::enter()?;
            let tty = TtyInput::open().map_err(io::Error::other)?;
            termio::probe::cursor_position(&tty, out)
        };
        let row = row.map_or(0, |(row, _)| row.saturating_sub(1));
        out.write_all(tmux::wrap_at(&tmux::double_escapes(&escape), 0, row).as_bytes())?;
    } else {
        write!(out, "\x1b7{escape}\x1b8")?;
    }
    write!(out, "\x1b[{rows}B\r")?;
    out.flush()
}

fn png_or_io_error(img: &RgbImage) -> io::Result<Vec<u8>> {
    protocols::png(img).map_err(|e| io::Error::other(format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn pictures_fit_the_screen_width_and_height_and_keep_their_aspect() {
        let sixel = Graphics {
            protocol: Protocol::Sixel,
            cell: (8, 17),
            passthrough: false,
            drawer: "xterm".into(),
            max_picture: None,
            colours: termio::Colours::Direct,
            note: None,
        };
        // The 16-tile sample grid (908 x 908 px) on a 160 x 48 screen: it used to print 160
        // columns wide, its top scrolling away; now it fits 47 rows.
        let grid = RgbImage::new(908, 908);
        let fit = fit_on_screen(&sixel, &grid, None, (160, 48));
        assert_eq!(fit.rows, 47, "{fit:?}");
        assert!(fit.px_h <= 47 * 17 && fit.px_w == fit.px_h, "{fit:?}");
        // A small picture keeps its natural size, to within the whole cells it takes.
        let small = fit_on_screen(&sixel, &RgbImage::new(227, 227), None, (160, 48));
        assert_eq!((small.cols, small.px_w), (29, 232), "{small:?}");
        // Half blocks: two pixel rows a cell, within the screen too.
        let half = fit_on_screen(&Graphics::halfblocks(), &grid, None, (160, 48));
        assert!(half.rows <= 47 && half.cols <= 160, "{half:?}");
        assert_eq!(half.px_w, u32::from(half.cols));
        // A given width is kept unless the screen is narrower.
        let wide = fit_on_screen(&sixel, &grid, Some(20), (160, 48));
        assert_eq!(wide.cols, 20);
    }

    /// Runs `print_inline` in a child process whose stdout is a pipe: it must return at once,
    /// report `NotATerminal` and write nothing.
    #[test]
    fn print_inline_writes_nothing_and_returns_at_once_when_stdout_is_not_a_terminal() {
        const CHILD: &str = "CRACKSCOPE_PRINT_INLINE_CHILD";
        let img = RgbImage::from_pixel(64, 32, image::Rgb([200, 10, 10]));
        if std::env::var_os(CHILD).is_some() {
            let printed = print_inline(&img, Some(20));
            eprintln!("printed: {printed:?}");
            return;
        }
        let started = Instant::now();
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "imaging::terminal::tests::print_inline_writes_nothing_and_returns_at_once_when_stdout_is_not_a_terminal"])
            .args(["--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            // Even a terminal hint and a forced protocol must not make it draw into a pipe.
            .env(crate::termio::graphics::GRAPHICS_ENV, "kitty")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "child failed: {stderr}");
        assert!(stderr.contains("printed: Ok(NotATerminal)"), "{stderr}");
        assert!(
            !output.stdout.contains(&0x1b),
            "escape sequences written into a pipe"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}
