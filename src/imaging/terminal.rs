//! Printing an image inline in the terminal without ever waiting on the terminal.
//!
//! viuer asks the terminal whether it speaks the kitty (and Sixel) graphics protocols and then
//! blocks reading stdin until an answer arrives, which on a terminal that never answers is forever.
//! So the protocol is decided here from environment hints alone (or the user's
//! `CRACKSCOPE_GRAPHICS`); kitty, iTerm2 and Sixel escapes are written directly, and viuer draws
//! half blocks with every protocol switched off, a path on which it queries nothing.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageFormat, RgbImage};

use super::sixel;

/// Environment variable that overrides the protocol guess, here and in the dashboard (like its
/// `--graphics` option). Read only through [`GraphicsChoice::from_env`].
pub const GRAPHICS_ENV: &str = "CRACKSCOPE_GRAPHICS";

/// The user's choice of graphics protocol (`--graphics`, or [`GRAPHICS_ENV`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphicsChoice {
    /// Guess (inline printing) or ask the terminal (dashboard).
    #[default]
    Auto,
    Kitty,
    Sixel,
    Iterm2,
    /// Unicode half blocks with colours: works everywhere, including over plain SSH.
    Halfblocks,
}

impl FromStr for GraphicsChoice {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "auto" => GraphicsChoice::Auto,
            "kitty" => GraphicsChoice::Kitty,
            "sixel" => GraphicsChoice::Sixel,
            "iterm2" => GraphicsChoice::Iterm2,
            "halfblocks" => GraphicsChoice::Halfblocks,
            other => bail!("unknown graphics protocol {other:?} (expected auto, kitty, sixel, iterm2 or halfblocks)"),
        })
    }
}

impl fmt::Display for GraphicsChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GraphicsChoice::Auto => "auto",
            GraphicsChoice::Kitty => "kitty",
            GraphicsChoice::Sixel => "sixel",
            GraphicsChoice::Iterm2 => "iterm2",
            GraphicsChoice::Halfblocks => "halfblocks",
        })
    }
}

impl GraphicsChoice {
    /// [`GRAPHICS_ENV`] as looked up by `var`: `None` when unset or blank.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<GraphicsChoice>> {
        match var(GRAPHICS_ENV) {
            Some(value) if !value.trim().is_empty() => value
                .parse()
                .map(Some)
                .map_err(|e| anyhow!("environment variable {GRAPHICS_ENV}: {e}")),
            _ => Ok(None),
        }
    }

    /// The command-line value if given, else [`GRAPHICS_ENV`] if set, else `Auto`.
    pub fn resolve(option: Option<GraphicsChoice>) -> Result<GraphicsChoice> {
        match option {
            Some(choice) => Ok(choice),
            None => Ok(Self::from_env(|key| std::env::var(key).ok())?.unwrap_or_default()),
        }
    }
}

/// How an image reaches the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Graphics {
    /// kitty's graphics protocol (kitty, Ghostty).
    Kitty,
    /// iTerm2's inline images (iTerm2, WezTerm, mintty, Konsole, ...).
    Iterm2,
    /// DEC Sixel (foot, mlterm, Windows Terminal, xterm built with it, ...).
    Sixel,
    /// Coloured half-block characters: works in any colour terminal, at low resolution.
    HalfBlocks,
}

/// What `print_inline` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printed {
    /// The image was written to the terminal, taking `cols` x `rows` character cells.
    Inline {
        graphics: Graphics,
        cols: u32,
        rows: u32,
    },
    /// stdout is not a terminal (a pipe or a file): nothing was written, so the caller can print a
    /// text fallback such as the image's path.
    NotATerminal,
}

/// Prints `img` at the cursor, `width_cells` character cells wide (default: its natural size,
/// capped at the terminal width), and moves the cursor below it. Writes nothing when stdout is not
/// a terminal. Never reads from the terminal, so it cannot hang waiting for a reply.
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
    let graphics = detect_graphics(|key| std::env::var(key).ok())?;
    let screen = Screen::query();
    let fit = screen.fit(img.width(), img.height(), width_cells);
    let stdout = io::stdout();
    match graphics {
        Graphics::HalfBlocks => return print_half_blocks(img, width_cells, screen.cols),
        Graphics::Kitty => write_kitty(
            &mut stdout.lock(),
            &png(&shrink_to(img, &fit))?,
            fit.cols,
            fit.rows,
        ),
        Graphics::Iterm2 => write_iterm2(
            &mut stdout.lock(),
            &png(&shrink_to(img, &fit))?,
            fit.cols,
            fit.rows,
        ),
        Graphics::Sixel => {
            let sized = imageops::resize(img, fit.px_w, fit.px_h, FilterType::Triangle);
            write_sixel(&mut stdout.lock(), &sized)
        }
    }
    .context("cannot write the image to the terminal")?;
    Ok(Printed::Inline {
        graphics,
        cols: fit.cols,
        rows: fit.rows,
    })
}

/// Half blocks through viuer, with its kitty and iTerm2 support checks switched off: the kitty
/// check is the one that waits for the terminal to answer.
fn print_half_blocks(
    img: &RgbImage,
    width_cells: Option<u32>,
    screen_cols: u32,
) -> Result<Printed> {
    let config = viuer::Config {
        absolute_offset: false,
        use_kitty: false,
        use_iterm: false,
        width: Some(width_cells.unwrap_or(img.width()).min(screen_cols)),
        ..Default::default()
    };
    let (cols, rows) = viuer::print(&DynamicImage::ImageRgb8(img.clone()), &config)
        .context("cannot print the image with half blocks")?;
    Ok(Printed::Inline {
        graphics: Graphics::HalfBlocks,
        cols,
        rows,
    })
}

/// The protocol to use, from `CRACKSCOPE_GRAPHICS` when set (and not `auto`), otherwise guessed from
/// what terminals announce in the environment. `var` looks up an environment variable.
pub fn detect_graphics(var: impl Fn(&str) -> Option<String>) -> Result<Graphics> {
    Ok(match GraphicsChoice::from_env(&var)?.unwrap_or_default() {
        GraphicsChoice::Auto => guess_graphics(&var),
        GraphicsChoice::Kitty => Graphics::Kitty,
        GraphicsChoice::Iterm2 => Graphics::Iterm2,
        GraphicsChoice::Sixel => Graphics::Sixel,
        GraphicsChoice::Halfblocks => Graphics::HalfBlocks,
    })
}

fn guess_graphics(var: &impl Fn(&str) -> Option<String>) -> Graphics {
    let set = |key: &str| var(key).is_some_and(|v| !v.is_empty());
    let term = var("TERM").unwrap_or_default();
    let program = var("TERM_PROGRAM").unwrap_or_default();
    let lc_terminal = var("LC_TERMINAL").unwrap_or_default();
    // Multiplexers drop or mangle graphics escapes unless passthrough is set up; the outer
    // terminal's variables leak into them, so check this first.
    if set("TMUX") || set("ZELLIJ") || term.starts_with("screen") || term.starts_with("tmux") {
        return Graphics::HalfBlocks;
    }
    if set("KITTY_WINDOW_ID")
        || term == "xterm-kitty"
        || term == "xterm-ghostty"
        || program == "ghostty"
    {
        return Graphics::Kitty;
    }
    let iterm_like = ["iTerm", "WezTerm", "mintty", "rio", "WarpTerminal"];
    if set("ITERM_SESSION_ID")
        || set("KONSOLE_VERSION")
        || iterm_like
            .iter()
            .any(|name| program.contains(name) || lc_terminal.contains(name))
    {
        return Graphics::Iterm2;
    }
    let sixel_terms = ["foot", "mlterm", "contour", "yaft"];
    if set("WT_SESSION")
        || term.contains("sixel")
        || sixel_terms.iter().any(|name| term.starts_with(name))
    {
        return Graphics::Sixel;
    }
    Graphics::HalfBlocks
}

/// The terminal's width in cells and, where it reports it, its cell size in pixels.
struct Screen {
    cols: u32,
    /// Pixel size of one cell; a common 1:2 cell when the terminal does not say.
    cell_w: u32,
    cell_h: u32,
}

/// Where an image goes: `cols` x `rows` cells, drawn from a `px_w` x `px_h` picture.
#[derive(Debug, PartialEq, Eq)]
struct Fit {
    cols: u32,
    rows: u32,
    px_w: u32,
    px_h: u32,
}

impl Screen {
    fn query() -> Self {
        // An ioctl on the terminal, not a query it must answer. Some (serial lines, `script`)
        // report 0 x 0: then assume the classic 80 x 24.
        let (cols, rows, width, height) = match crossterm::terminal::window_size() {
            Ok(size) if size.columns > 0 && size.rows > 0 => {
                (size.columns, size.rows, size.width, size.height)
            }
            _ => (80, 24, 0, 0),
        };
        let (cols, rows) = (u32::from(cols), u32::from(rows));
        let (cell_w, cell_h) = if width > 0 && height > 0 {
            (
                (u32::from(width) / cols).max(1),
                (u32::from(height) / rows).max(1),
            )
        } else {
            (10, 20)
        };
        Screen {
            cols,
            cell_w,
            cell_h,
        }
    }

    /// The cells for an image of `w` x `h` pixels: `width_cells` wide, or its natural width capped at
    /// the terminal's, and as many rows as keep its aspect ratio.
    fn fit(&self, w: u32, h: u32, width_cells: Option<u32>) -> Fit {
        let natural = w.div_ceil(self.cell_w);
        let cols = width_cells.unwrap_or(natural.min(self.cols)).max(1);
        let px_w = cols.saturating_mul(self.cell_w);
        let px_h = ((u64::from(px_w) * u64::from(h) / u64::from(w.max(1))) as u32).max(1);
        Fit {
            cols,
            rows: px_h.div_ceil(self.cell_h),
            px_w,
            px_h,
        }
    }
}

/// `img` no larger than the picture `fit` asks for: the terminal scales it to the cells anyway,
/// and the escape sequence for a large image runs to megabytes.
fn shrink_to<'a>(img: &'a RgbImage, fit: &Fit) -> Cow<'a, RgbImage> {
    if img.width() > fit.px_w || img.height() > fit.px_h {
        Cow::Owned(imageops::resize(
            img,
            fit.px_w,
            fit.px_h,
            FilterType::Triangle,
        ))
    } else {
        Cow::Borrowed(img)
    }
}

fn png(img: &RgbImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    img.write_to(&mut io::Cursor::new(&mut bytes), ImageFormat::Png)
        .context("cannot encode the image as PNG for the terminal")?;
    Ok(bytes)
}

/// kitty graphics protocol: a PNG sent in base64 chunks of at most 4096 bytes, scaled to `cols` x
/// `rows` cells. `q=2` tells the terminal not to reply, so no answer lands in our input.
fn write_kitty(out: &mut impl Write, png: &[u8], cols: u32, rows: u32) -> io::Result<()> {
    let encoded = BASE64.encode(png);
    let chunks: Vec<&[u8]> = encoded.as_bytes().chunks(4096).collect();
    for (k, chunk) in chunks.iter().enumerate() {
        let more = u8::from(k + 1 < chunks.len());
        if k == 0 {
            write!(out, "\x1b_Ga=T,f=100,q=2,c={cols},r={rows},m={more};")?;
        } else {
            write!(out, "\x1b_Gm={more};")?;
        }
        out.write_all(chunk)?;
        out.write_all(b"\x1b\\")?;
    }
    writeln!(out)?;
    out.flush()
}

/// iTerm2 inline image (OSC 1337), `cols` x `rows` cells.
fn write_iterm2(out: &mut impl Write, png: &[u8], cols: u32, rows: u32) -> io::Result<()> {
    write!(
        out,
        "\x1b]1337;File=inline=1;size={};width={cols};height={rows};preserveAspectRatio=1:{}\x07",
        png.len(),
        BASE64.encode(png)
    )?;
    writeln!(out)?;
    out.flush()
}

/// Sixel, pixel for pixel: `img` must already have its on-screen size.
fn write_sixel(out: &mut impl Write, img: &RgbImage) -> io::Result<()> {
    out.write_all(sixel::encode(img).as_bytes())?;
    writeln!(out)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn protocol_is_guessed_from_terminal_hints() {
        let cases: [(&[(&str, &str)], Graphics); 10] = [
            (&[("TERM", "xterm-kitty")], Graphics::Kitty),
            (
                &[("KITTY_WINDOW_ID", "3"), ("TERM", "xterm-256color")],
                Graphics::Kitty,
            ),
            (&[("TERM_PROGRAM", "ghostty")], Graphics::Kitty),
            (&[("TERM_PROGRAM", "iTerm.app")], Graphics::Iterm2),
            (&[("TERM_PROGRAM", "WezTerm")], Graphics::Iterm2),
            (&[("TERM", "foot")], Graphics::Sixel),
            (&[("WT_SESSION", "abc")], Graphics::Sixel),
            (&[("TERM", "xterm-256color")], Graphics::HalfBlocks),
            (&[], Graphics::HalfBlocks),
            // Inside tmux the outer kitty's variables are still set, but its escapes would not pass.
            (
                &[
                    ("TERM", "tmux-256color"),
                    ("KITTY_WINDOW_ID", "1"),
                    ("TMUX", "/tmp/x,1,0"),
                ],
                Graphics::HalfBlocks,
            ),
        ];
        for (vars, expected) in cases {
            assert_eq!(detect_graphics(env(vars)).unwrap(), expected, "{vars:?}");
        }
    }

    #[test]
    fn graphics_choice_parses_every_documented_value() {
        for (text, choice) in [
            ("auto", GraphicsChoice::Auto),
            ("kitty", GraphicsChoice::Kitty),
            ("SIXEL", GraphicsChoice::Sixel),
            ("iterm2", GraphicsChoice::Iterm2),
            (" halfblocks ", GraphicsChoice::Halfblocks),
        ] {
            assert_eq!(text.parse::<GraphicsChoice>().unwrap(), choice);
            assert_eq!(
                choice.to_string().parse::<GraphicsChoice>().unwrap(),
                choice
            );
        }
        let err = "ascii".parse::<GraphicsChoice>().unwrap_err().to_string();
        assert!(err.contains("ascii") && err.contains("halfblocks"), "{err}");
        assert_eq!(
            GraphicsChoice::resolve(Some(GraphicsChoice::Kitty)).unwrap(),
            GraphicsChoice::Kitty
        );
    }

    #[test]
    fn environment_override_wins_and_bad_values_are_explained() {
        let kitty = [("TERM", "xterm-kitty")];
        for (value, expected) in [
            ("sixel", Graphics::Sixel),
            ("HalfBlocks", Graphics::HalfBlocks),
            (" iterm2 ", Graphics::Iterm2),
            ("auto", Graphics::Kitty),
            ("", Graphics::Kitty),
        ] {
            let vars = [kitty[0], (GRAPHICS_ENV, value)];
            assert_eq!(detect_graphics(env(&vars)).unwrap(), expected, "{value:?}");
        }
        let error = detect_graphics(env(&[(GRAPHICS_ENV, "jpeg")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("CRACKSCOPE_GRAPHICS")
                && error.contains("jpeg")
                && error.contains("halfblocks"),
            "{error}"
        );
    }

    #[test]
    fn kitty_sends_png_in_quiet_chunks_sized_in_cells() {
        let png = vec![7u8; 7000]; // base64: 9336 bytes -> chunks of 4096, 4096, 1144
        let mut out = Vec::new();
        write_kitty(&mut out, &png, 40, 12).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("\x1b_Ga=T,f=100,q=2,c=40,r=12,m=1;"));
        assert_eq!(text.matches("\x1b_G").count(), 3);
        assert_eq!(text.matches("m=1;").count(), 2);
        assert_eq!(text.matches("\x1b_Gm=0;").count(), 1);
        assert!(text.ends_with("\x1b\\\n"));
        let payload: String = text
            .split("\x1b_G")
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.split_once(';')
                    .unwrap()
                    .1
                    .trim_end_matches('\n')
                    .trim_end_matches("\x1b\\")
            })
            .collect();
        assert_eq!(BASE64.decode(payload).unwrap(), png);
    }

    #[test]
    fn iterm2_sends_sized_inline_file() {
        let mut out = Vec::new();
        write_iterm2(&mut out, b"png bytes", 30, 9).unwrap();
        let expected = format!(
            "\x1b]1337;File=inline=1;size=9;width=30;height=9;preserveAspectRatio=1:{}\x07\n",
            BASE64.encode(b"png bytes")
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn images_fit_the_terminal_width_and_keep_their_aspect() {
        let screen = Screen {
            cols: 80,
            cell_w: 10,
            cell_h: 20,
        };
        // A 908 px wide grid would need 91 cells: capped at the terminal's 80.
        assert_eq!(
            screen.fit(908, 454, None),
            Fit {
                cols: 80,
                rows: 20,
                px_w: 800,
                px_h: 400
            }
        );
        // A small image keeps its natural size.
        assert_eq!(
            screen.fit(227, 227, None),
            Fit {
                cols: 23,
                rows: 12,
                px_w: 230,
                px_h: 230
            }
        );
        assert_eq!(
            screen.fit(227, 227, Some(10)),
            Fit {
                cols: 10,
                rows: 5,
                px_w: 100,
                px_h: 100
            }
        );
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
            .env(GRAPHICS_ENV, "kitty")
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
