//! Which way pictures reach the screen, decided once from what the terminal answered (then what
//! the environment says, for terminals that answer nothing), and the user's choice, which is
//! refused with the reason when the terminal does not answer for it. One decision for the
//! command line (`samples`, `gradcam`) and the dashboard, so both draw alike.

use std::fmt;
use std::str::FromStr;

use anyhow::{anyhow, bail, Result};

use super::colours::{self, Colours};
use super::probe::{Report, TerminalInfo};
use super::tmux;

/// Environment variable that overrides the protocol guess, here and in the dashboard (like its
/// `--graphics` option). Read only through [`GraphicsChoice::from_env`].
pub const GRAPHICS_ENV: &str = "CRACKSCOPE_GRAPHICS";

/// The user's choice of graphics protocol (`--graphics`, or [`GRAPHICS_ENV`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphicsChoice {
    /// Whatever the terminal answers for, best first.
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

/// How pictures reach the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// kitty graphics shown through Unicode placeholder characters (kitty 0.28 and later,
    /// Ghostty): they are text to tmux, so they survive it.
    KittyPlaceholders,
    /// kitty graphics placed at the cursor (kitty before 0.28, Konsole, WezTerm).
    KittyDirect,
    /// iTerm2 inline images (iTerm2, WezTerm, Konsole, mintty).
    Iterm2,
    /// DEC sixel (xterm `-ti vt340`, mlterm, foot, Konsole, Windows Terminal, ...).
    Sixel,
    /// Coloured half-block characters: any colour terminal, two pixels a cell.
    HalfBlocks,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::KittyPlaceholders => "kitty (placeholders)",
            Protocol::KittyDirect => "kitty",
            Protocol::Iterm2 => "iterm2",
            Protocol::Sixel => "sixel",
            Protocol::HalfBlocks => "halfblocks",
        })
    }
}

/// The decision: a protocol, the cell size pictures are made for, and whether they go through
/// tmux's passthrough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graphics {
    pub protocol: Protocol,
    /// Pixels per cell of the terminal that draws (for half blocks the two pixels a cell shows).
    pub cell: (u16, u16),
    /// Wrapped for tmux, drawn by the terminal outside it.
    pub passthrough: bool,
    /// Who draws, for messages ("XTerm(379)", "XTerm(379) outside tmux 3.3a").
    pub drawer: String,
    /// The largest picture in pixels the terminal draws, when it says (xterm's sixel limit).
    pub max_picture: Option<(u32, u32)>,
    /// The colours half blocks are drawn in (what reaches the screen unchanged).
    pub colours: Colours,
    /// Something the user should know about how pictures look here (too few colours), to be
    /// shown once where the view shows notices.
    pub note: Option<String>,
}

/// Where a picture goes: `cols` x `rows` cells, drawn from a `px_w` x `px_h` picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    pub cols: u16,
    pub rows: u16,
    pub px_w: u32,
    pub px_h: u32,
}

/// A cell's size when the terminal does not say: a common 1:2 cell.
const GUESSED_CELL: (u16, u16) = (10, 20);

impl Graphics {
    /// Half blocks in 24-bit colours.
    #[cfg(test)]
    pub fn halfblocks() -> Graphics {
        Graphics::halfblocks_in(Colours::Direct, None)
    }

    /// Half blocks in `colours`, with the `note` that goes with them.
    pub fn halfblocks_in(colours: Colours, note: Option<String>) -> Graphics {
        Graphics {
            protocol: Protocol::HalfBlocks,
            cell: (1, 2),
            passthrough: false,
            drawer: "any terminal".into(),
            max_picture: None,
            colours,
            note,
        }
    }

    /// Half blocks in the colours this terminal takes, decided without asking it anything (the
    /// user chose half blocks): from the environment and, inside tmux, from tmux.
    pub fn halfblocks_here(var: &impl Fn(&str) -> Option<String>) -> Graphics {
        let client = tmux::inside(var).then(|| tmux::client(var)).flatten();
        let (colours, note) = colours::decide(var, client.as_ref());
        Graphics::halfblocks_in(colours, note)
    }

    /// The largest size with a `w` x `h` picture's proportions inside `cols` x `rows` cells, in
    /// pixels of this terminal: pictures fill their place, whatever size they were made at.
    pub fn fit(&self, w: u32, h: u32, cols: u16, rows: u16) -> Fit {
        let (cw, ch) = (u32::from(self.cell.0.max(1)), u32::from(self.cell.1.max(1)));
        let (mut box_w, mut box_h) = (u32::from(cols) * cw, u32::from(rows) * ch);
        if let Some((max_w, max_h)) = self.max_picture {
            (box_w, box_h) = (box_w.min(max_w), box_h.min(max_h));
        }
        if w == 0 || h == 0 || box_w == 0 || box_h == 0 {
            return Fit {
                cols: 0,
                rows: 0,
                px_w: 0,
                px_h: 0,
            };
        }
        let scale = (f64::from(box_w) / f64::from(w)).min(f64::from(box_h) / f64::from(h));
        let px_w = ((f64::from(w) * scale).round() as u32).clamp(1, box_w);
        let mut px_h = ((f64::from(h) * scale).round() as u32).clamp(1, box_h);
        if self.protocol == Protocol::HalfBlocks && px_h > 1 {
            // Whole cells only: a last row with one pixel shows the terminal's background and
            // the half-block glyph's edges.
            px_h -= px_h % 2;
        }
        Fit {
            cols: px_w.div_ceil(cw) as u16,
            rows: px_h.div_ceil(ch) as u16,
            px_w,
            px_h,
        }
    }
}

/// Decides how pictures are drawn from what the terminal said (`info`), the environment (`var`,
/// for terminals that say nothing) and the user's `choice`. A forced protocol the terminal does
/// not answer for is refused, with what it does draw.
pub fn choose(
    info: &TerminalInfo,
    var: &impl Fn(&str) -> Option<String>,
    choice: GraphicsChoice,
) -> Result<Graphics> {
    let client = info.tmux.as_ref().and_then(|pane| pane.client.as_ref());
    let (colours, note) = colours::decide(var, client);
    let halfblocks = || Graphics::halfblocks_in(colours, note.clone());
    if choice == GraphicsChoice::Halfblocks {
        return Ok(halfblocks());
    }
    let drawing = Drawing::of(info, var);
    let offered: Vec<(GraphicsChoice, Result<Protocol, String>)> = [
        GraphicsChoice::Kitty,
        GraphicsChoice::Iterm2,
        GraphicsChoice::Sixel,
    ]
    .into_iter()
    .map(|c| (c, drawing.supports(c)))
    .collect();
    let works = |c: GraphicsChoice| {
        offered
            .iter()
            .find(|(o, _)| *o == c)
            .and_then(|(_, r)| r.as_ref().ok().copied())
    };
    let cell = drawing
        .report
        .and_then(|r| r.cell)
        .or(info.direct.cell)
        .or(info.window_cell);
    let sixel_max = drawing.report.and_then(|r| r.sixel_max);
    let graphics = |protocol: Protocol, cell: (u16, u16)| Graphics {
        protocol,
        cell,
        passthrough: drawing.passthrough && protocol != Protocol::HalfBlocks,
        drawer: drawing.name.clone(),
        max_picture: sixel_max.filter(|_| protocol == Protocol::Sixel),
        colours,
        note: None,
    };
    if choice == GraphicsChoice::Auto {
        let order = if drawing.kitty_first {
            [
                GraphicsChoice::Kitty,
                GraphicsChoice::Iterm2,
                GraphicsChoice::Sixel,
            ]
        } else {
            [
                GraphicsChoice::Iterm2,
                GraphicsChoice::Sixel,
                GraphicsChoice::Kitty,
            ]
        };
        return Ok(match (order.into_iter().find_map(works), cell) {
            (Some(protocol), Some(cell)) => graphics(protocol, cell),
            // Without a cell size no picture can be sized to its place.
            _ => halfblocks(),
        });
    }
    match works(choice) {
        Some(protocol) => Ok(graphics(protocol, cell.unwrap_or(GUESSED_CELL))),
        None => {
            let reason = offered
                .iter()
                .find(|(o, _)| *o == choice)
                .and_then(|(_, r)| r.as_ref().err().cloned())
                .unwrap_or_default();
            let drawn: Vec<String> = offered
                .iter()
                .filter(|(_, r)| r.is_ok())
                .map(|(c, _)| c.to_string())
                .chain(["halfblocks".to_string()])
                .collect();
            bail!(
                "{choice} pictures were asked for (--graphics or {GRAPHICS_ENV}), but {} does not \
                 draw them: {reason}. It draws {}; `auto` picks the best of those.",
                drawing.name,
                drawn.join(", ")
            )
        }
    }
}

/// The terminal that would draw the pictures, and how they would reach it.
struct Drawing<'a> {
    /// Its answers; None when nothing can reach it (tmux passes nothing through).
    report: Option<&'a Report>,
    /// Through tmux's passthrough.
    passthrough: bool,
    /// Why nothing reaches it, when it does not.
    blocked: Option<String>,
    /// tmux itself draws sixel (tmux built with sixel answers for it).
    tmux_sixel: bool,
    /// kitty (or Ghostty) itself: its own protocol comes first.
    kitty_first: bool,
    /// What the environment says, for a terminal outside tmux that answered nothing at all.
    hint: Option<GraphicsChoice>,
    name: String,
}

impl<'a> Drawing<'a> {
    fn of(info: &'a TerminalInfo, var: &impl Fn(&str) -> Option<String>) -> Drawing<'a> {
        let term = var("TERM").unwrap_or_default();
        let tmux_answered = info
            .direct
            .version
            .as_deref()
            .is_some_and(|v| v.starts_with("tmux"));
        let in_tmux = tmux::inside(var) || tmux_answered;
        let direct_name = info.direct.version.clone().unwrap_or_else(|| {
            if term.is_empty() {
                "the terminal".into()
            } else {
                format!("the terminal ({term})")
            }
        });
        let mut drawing = Drawing {
            report: Some(&info.direct),
            passthrough: false,
            blocked: None,
            tmux_sixel: in_tmux && info.direct.sixel,
            kitty_first: false,
            hint: None,
            name: direct_name.clone(),
        };
        if in_tmux {
            match (&info.tmux, &info.outer) {
                (Some(pane), Some(outer)) if pane.passthrough && outer.answered => {
                    drawing.report = Some(outer);
                    drawing.passthrough = true;
                    drawing.name = format!(
                        "{} outside {direct_name}",
                        outer.version.as_deref().unwrap_or("the terminal")
                    );
                }
                (Some(pane), _) if !pane.passthrough => {
                    drawing.report = None;
                    drawing.blocked = Some(
                        "tmux passes pictures to the terminal outside it only with \
                         `tmux set -g allow-passthrough on`"
                            .into(),
                    )
                }
                (Some(_), _) => {
                    drawing.report = None;
                    drawing.blocked =
                        Some("the terminal outside tmux did not answer through tmux".into())
                }
                (None, _) => {
                    drawing.report = None;
                    drawing.blocked = Some(
                        "tmux cannot be asked whether it passes pictures through ($TMUX is not \
                         set here)"
                            .into(),
                    )
                }
            }
        } else if !info.direct.answered {
            drawing.hint = environment_hint(var);
        }
        let name = drawing
            .report
            .and_then(|r| r.version.as_deref())
            .unwrap_or("")
            .to_ascii_lowercase();
        let kitty_env = !in_tmux
            && (term == "xterm-kitty"
                || term == "xterm-ghostty"
                || var("KITTY_WINDOW_ID").is_some_and(|v| !v.is_empty()));
        drawing.kitty_first = name.starts_with("kitty") || name.starts_with("ghostty") || kitty_env;
        drawing
    }

    /// The protocol `choice` becomes here, or why the terminal does not draw it.
    fn supports(&self, choice: GraphicsChoice) -> Result<Protocol, String> {
        if choice == GraphicsChoice::Sixel && self.tmux_sixel {
            return Ok(Protocol::Sixel);
        }
        if self.hint == Some(choice) {
            return Ok(match choice {
                GraphicsChoice::Kitty => Protocol::KittyDirect,
                GraphicsChoice::Iterm2 => Protocol::Iterm2,
                _ => Protocol::Sixel,
            });
        }
        let Some(report) = self.report else {
            return Err(self.blocked.clone().unwrap_or_default());
        };
        if !report.answered {
            return Err("it answered no query (not even its device attributes)".into());
        }
        let version = report.version.as_deref().unwrap_or("");
        match choice {
            GraphicsChoice::Kitty if !report.kitty => {
                Err("it does not answer the kitty graphics query".into())
            }
            GraphicsChoice::Kitty if placeholders_work(version) => Ok(Protocol::KittyPlaceholders),
            GraphicsChoice::Kitty if self.passthrough => Err(format!(
                "{version} draws kitty pictures inside tmux only from kitty 0.28 (Unicode \
                 placeholders)"
            )),
            GraphicsChoice::Kitty => Ok(Protocol::KittyDirect),
            GraphicsChoice::Sixel if report.sixel => Ok(Protocol::Sixel),
            GraphicsChoice::Sixel => Err("its device attributes do not include sixel".into()),
            GraphicsChoice::Iterm2 if draws_iterm2(version) => Ok(Protocol::Iterm2),
            GraphicsChoice::Iterm2 => Err(
                "it does not say it is a terminal that draws iTerm2 pictures (iTerm2, WezTerm, \
                 Konsole, mintty)"
                    .into(),
            ),
            GraphicsChoice::Auto | GraphicsChoice::Halfblocks => Ok(Protocol::HalfBlocks),
        }
    }
}

/// kitty 0.28 and later, and Ghostty, show pictures through Unicode placeholders.
fn placeholders_work(version: &str) -> bool {
    let lower = version.to_ascii_lowercase();
    if lower.starts_with("ghostty") {
        return true;
    }
    let Some(numbers) = lower
        .strip_prefix("kitty(")
        .and_then(|rest| rest.split(')').next())
    else {
        return false;
    };
    let parts: Vec<u32> = numbers.split('.').map(|n| n.parse().unwrap_or(0)).collect();
    let (major, minor) = (
        parts.first().copied().unwrap_or(0),
        parts.get(1).copied().unwrap_or(0),
    );
    major > 0 || minor >= 28
}

/// Terminals known (by their XTVERSION answer) to draw iTerm2 inline images.
fn draws_iterm2(version: &str) -> bool {
    let lower = version.to_ascii_lowercase();
    ["iterm2", "wezterm", "konsole", "mintty", "rio", "warp"]
        .iter()
        .any(|name| lower.starts_with(name))
}

/// What terminals announce in the environment, for one that answered no query: kitty, iTerm2-like
/// and sixel terminals by their usual variables.
fn environment_hint(var: &impl Fn(&str) -> Option<String>) -> Option<GraphicsChoice> {
    let set = |key: &str| var(key).is_some_and(|v| !v.is_empty());
    let term = var("TERM").unwrap_or_default();
    let program = var("TERM_PROGRAM").unwrap_or_default();
    let lc_terminal = var("LC_TERMINAL").unwrap_or_default();
    if set("KITTY_WINDOW_ID") || term == "xterm-kitty" || term == "xterm-ghostty" {
        return Some(GraphicsChoice::Kitty);
    }
    let iterm_like = ["iTerm", "WezTerm", "mintty", "rio", "WarpTerminal"];
    if set("ITERM_SESSION_ID")
        || set("KONSOLE_VERSION")
        || iterm_like
            .iter()
            .any(|name| program.contains(name) || lc_terminal.contains(name))
    {
        return Some(GraphicsChoice::Iterm2);
    }
    let sixel_terms = ["foot", "mlterm", "contour", "yaft"];
    if set("WT_SESSION")
        || term.contains("sixel")
        || sixel_terms.iter().any(|name| term.starts_with(name))
    {
        return Some(GraphicsChoice::Sixel);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::termio::tmux::Pane;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn report(version: &str, kitty: bool, sixel: bool, cell: Option<(u16, u16)>) -> Report {
        Report {
            answered: true,
            kitty,
            sixel,
            version: Some(version.into()),
            cell,
            sixel_max: None,
        }
    }

    fn direct(report: Report) -> TerminalInfo {
        TerminalInfo {
            direct: report,
            window_cell: Some((8, 17)),
            ..TerminalInfo::default()
        }
    }

    fn xterm() -> Report {
        Report {
            sixel_max: Some((1000, 816)),
            ..report("XTerm(379)", false, true, None)
        }
    }

    fn kitty(version: &str) -> Report {
        report(version, true, false, Some((9, 20)))
    }

    fn konsole() -> Report {
        report("Konsole 22.12.3", true, true, Some((8, 18)))
    }

    fn in_tmux(outer: Option<Report>, passthrough: bool) -> TerminalInfo {
        TerminalInfo {
            direct: report("tmux 3.3a", false, false, None),
            tmux: Some(Pane {
                passthrough,
                origin: (0, 0),
                client: None,
            }),
            outer,
            window_cell: Some((8, 17)),
        }
    }

    const TMUX_VARS: [(&str, &str); 2] = [
        ("TMUX", "/tmp/tmux-0/default,1,0"),
        ("TERM", "tmux-256color"),
    ];

    fn pick(info: &TerminalInfo, env: &[(&str, &str)], choice: GraphicsChoice) -> Result<Graphics> {
        choose(info, &vars(env), choice)
    }

    #[test]
    fn auto_takes_what_the_terminal_answers_for() {
        let auto = GraphicsChoice::Auto;
        let sixel = pick(&direct(xterm()), &[("TERM", "xterm")], auto).unwrap();
        assert_eq!(sixel.protocol, Protocol::Sixel);
        assert_eq!(sixel.cell, (8, 17), "from the window's size");
        assert_eq!(sixel.max_picture, Some((1000, 816)));
        assert!(!sixel.passthrough);
        // kitty before 0.28 has no Unicode placeholders: pictures are placed directly.
        let old = pick(&direct(kitty("kitty(0.26.5)")), &[], auto).unwrap();
        assert_eq!((old.protocol, old.cell), (Protocol::KittyDirect, (9, 20)));
        let new = pick(&direct(kitty("kitty(0.35.2)")), &[], auto).unwrap();
        assert_eq!(new.protocol, Protocol::KittyPlaceholders);
        // Konsole answers for kitty and sixel but draws iTerm2 pictures best.
        let konsole_auto = pick(&direct(konsole()), &[("KONSOLE_VERSION", "221203")], auto);
        assert_eq!(konsole_auto.unwrap().protocol, Protocol::Iterm2);
        // A terminal without graphics, or one whose cell size is unknown: half blocks.
        let plain = report("XTerm(379)", false, false, None);
        assert_eq!(
            pick(&direct(plain), &[], auto).unwrap().protocol,
            Protocol::HalfBlocks
        );
        let no_cell = TerminalInfo {
            window_cell: None,
            ..direct(xterm())
        };
        assert_eq!(
            pick(&no_cell, &[], auto).unwrap().protocol,
            Protocol::HalfBlocks
        );
    }

    #[test]
    fn a_terminal_that_answers_nothing_is_taken_at_its_environments_word() {
        let silent = TerminalInfo {
            window_cell: Some((10, 20)),
            ..TerminalInfo::default()
        };
        let foot = pick(&silent, &[("TERM", "foot")], GraphicsChoice::Auto).unwrap();
        assert_eq!(foot.protocol, Protocol::Sixel);
        let wezterm = pick(
            &silent,
            &[("TERM_PROGRAM", "WezTerm")],
            GraphicsChoice::Iterm2,
        );
        assert_eq!(wezterm.unwrap().protocol, Protocol::Iterm2);
        let refused = pick(&silent, &[("TERM", "xterm")], GraphicsChoice::Sixel).unwrap_err();
        assert!(
            refused.to_string().contains("answered no query"),
            "{refused}"
        );
    }

    #[test]
    fn forced_protocols_are_refused_with_what_the_terminal_draws() {
        let kitty_in_xterm = pick(&direct(xterm()), &[], GraphicsChoice::Kitty).unwrap_err();
        let message = kitty_in_xterm.to_string();
        assert!(
            message.contains("XTerm(379)")
                && message.contains("kitty graphics query")
                && message.contains("It draws sixel, halfblocks"),
            "{message}"
        );
        let sixel_in_kitty = pick(&direct(kitty("kitty(0.26.5)")), &[], GraphicsChoice::Sixel);
        assert!(sixel_in_kitty
            .unwrap_err()
            .to_string()
            .contains("device attributes"));
        let iterm_in_kitty = pick(&direct(kitty("kitty(0.26.5)")), &[], GraphicsChoice::Iterm2);
        assert!(iterm_in_kitty.unwrap_err().to_string().contains("iTerm2"));
        // What the terminal does draw is drawn when forced, half blocks always.
        for (choice, protocol) in [
            (GraphicsChoice::Kitty, Protocol::KittyDirect),
            (GraphicsChoice::Sixel, Protocol::Sixel),
            (GraphicsChoice::Iterm2, Protocol::Iterm2),
            (GraphicsChoice::Halfblocks, Protocol::HalfBlocks),
        ] {
            assert_eq!(
                pick(&direct(konsole()), &[], choice).unwrap().protocol,
                protocol
            );
        }
    }

    #[test]
    fn inside_tmux_pictures_pass_only_where_tmux_lets_them() {
        // allow-passthrough off (tmux's default): half blocks, and pictures are refused saying how.
        let closed = in_tmux(None, false);
        let auto = pick(&closed, &TMUX_VARS, GraphicsChoice::Auto).unwrap();
        assert_eq!(auto.protocol, Protocol::HalfBlocks);
        let forced = pick(&closed, &TMUX_VARS, GraphicsChoice::Sixel).unwrap_err();
        assert!(
            forced.to_string().contains("allow-passthrough on"),
            "{forced}"
        );
        // On: the outer terminal's answers decide, and pictures go wrapped to it.
        let open = in_tmux(Some(xterm()), true);
        let sixel = pick(&open, &TMUX_VARS, GraphicsChoice::Auto).unwrap();
        assert_eq!(sixel.protocol, Protocol::Sixel);
        assert!(sixel.passthrough);
        assert!(
            sixel.drawer.contains("XTerm(379) outside tmux 3.3a"),
            "{}",
            sixel.drawer
        );
        // kitty before 0.28 cannot keep pictures inside tmux; 0.28 and later do, as placeholders.
        let old_kitty = in_tmux(Some(kitty("kitty(0.26.5)")), true);
        assert_eq!(
            pick(&old_kitty, &TMUX_VARS, GraphicsChoice::Auto)
                .unwrap()
                .protocol,
            Protocol::HalfBlocks
        );
        let refused = pick(&old_kitty, &TMUX_VARS, GraphicsChoice::Kitty).unwrap_err();
        assert!(refused.to_string().contains("0.28"), "{refused}");
        let new_kitty = in_tmux(Some(kitty("kitty(0.35.2)")), true);
        let placeholders = pick(&new_kitty, &TMUX_VARS, GraphicsChoice::Auto).unwrap();
        assert_eq!(placeholders.protocol, Protocol::KittyPlaceholders);
        assert!(placeholders.passthrough);
        // tmux cannot be asked (over SSH from a local tmux): half blocks, never a guess.
        let remote = TerminalInfo {
            tmux: None,
            ..in_tmux(Some(xterm()), true)
        };
        let over_ssh = pick(&remote, &[("TERM", "tmux-256color")], GraphicsChoice::Auto).unwrap();
        assert_eq!(over_ssh.protocol, Protocol::HalfBlocks);
    }

    #[test]
    fn pictures_fit_within_what_the_terminal_draws() {
        let mut sixel = pick(&direct(xterm()), &[], GraphicsChoice::Auto).unwrap();
        // A 128 x 42-cell panel is 1024 px wide; xterm draws at most 1000.
        let fit = sixel.fit(600, 600, 128, 42);
        assert_eq!((fit.px_w, fit.px_h), (714, 714));
        let wide = sixel.fit(1200, 600, 128, 42);
        assert_eq!((wide.px_w, wide.px_h), (1000, 500));
        sixel.max_picture = None;
        assert_eq!(sixel.fit(1200, 600, 128, 42).px_w, 1024);
        // Half blocks: two pixels a cell, whole cells.
        let half = Graphics::halfblocks().fit(100, 97, 50, 30);
        assert_eq!((half.px_w, half.px_h, half.rows), (50, 48, 24));
    }
}
