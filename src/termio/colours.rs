//! Which colours half-block pictures may use. Most terminals draw any 24-bit colour, but two
//! common setups do not, and there a picture drawn in 24-bit colours comes out wrong:
//! - mlterm keeps at most 240 distinct 24-bit colours on screen and reuses their slots beyond
//!   that, so a grid of pictures shows in colours of other pictures;
//! - tmux passes 24-bit colours to the terminal outside only when it knows that terminal takes
//!   them (its terminfo entry, its `terminal-features`, or its answer to tmux's own query); else
//!   it maps every colour to that terminal's 256 or 8 palette colours.
//!
//! Drawing in the palette that will arrive keeps pictures as the program means them, and where
//! that is only 8 colours the user is told how to get all of them.

use super::tmux::{self, Client};

/// The colours half blocks are drawn in, fewest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Colours {
    /// The 8 basic colours (0-7), as tmux sends to a terminal whose terminfo entry has 8.
    Basic8,
    /// The 6x6x6 cube and grey ramp of the 256-colour palette (16-255), the same on every
    /// terminal that has them.
    Palette256,
    /// Any 24-bit colour.
    Direct,
}

/// The colours pictures reach the screen in, and a note for the user when they are too few to
/// show a picture well. `client` is tmux's view of the terminal outside, inside tmux.
pub fn decide(
    var: &impl Fn(&str) -> Option<String>,
    client: Option<&Client>,
) -> (Colours, Option<String>) {
    if !tmux::inside(var) {
        let term = var("TERM").unwrap_or_default();
        let mlterm = term.starts_with("mlterm") || var("MLTERM").is_some_and(|v| !v.is_empty());
        let colours = if mlterm {
            Colours::Palette256
        } else {
            Colours::Direct
        };
        return (colours, None);
    }
    // tmux that cannot be asked: 24-bit colours, as most terminals take them.
    let Some(client) = client else {
        return (Colours::Direct, None);
    };
    let sent = if client.truecolour {
        Colours::Direct
    } else if client.colours >= 256 {
        Colours::Palette256
    } else {
        Colours::Basic8
    };
    let colours = if client.name.starts_with("mlterm") {
        sent.min(Colours::Palette256)
    } else {
        sent
    };
    let note = (colours == Colours::Basic8).then(|| {
        format!(
            "tmux sends only {} colours to this terminal ({}), so pictures in half blocks are \
             coarse; with `set -as terminal-features ',{}*:RGB'` in ~/.tmux.conf (and tmux \
             started again) it sends all of them",
            client.colours, client.name, client.name
        )
    });
    (colours, note)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        }
    }

    fn client(name: &str, truecolour: bool, colours: u32) -> Client {
        Client {
            name: name.into(),
            truecolour,
            colours,
        }
    }

    const TMUX: &[(&str, &str)] = &[
        ("TMUX", "/tmp/tmux-0/default,1,0"),
        ("TERM", "tmux-256color"),
    ];

    #[test]
    fn terminals_outside_tmux_take_24_bit_colours_except_mlterm() {
        let xterm = decide(&vars(&[("TERM", "xterm")]), None);
        assert_eq!(xterm, (Colours::Direct, None));
        let mlterm = decide(&vars(&[("TERM", "mlterm")]), None);
        assert_eq!(mlterm, (Colours::Palette256, None));
        // Over SSH TERM may be another name; mlterm's own variable still says who draws.
        let renamed = decide(
            &vars(&[("TERM", "xterm-256color"), ("MLTERM", "3.9.0")]),
            None,
        );
        assert_eq!(renamed.0, Colours::Palette256);
    }

    #[test]
    fn inside_tmux_pictures_use_the_colours_tmux_sends_on() {
        let tmux = vars(TMUX);
        let rgb = client("xterm", true, 8);
        assert_eq!(decide(&tmux, Some(&rgb)), (Colours::Direct, None));
        let palette = client("screen-256color", false, 256);
        assert_eq!(decide(&tmux, Some(&palette)).0, Colours::Palette256);
        // mlterm keeps too few 24-bit colours at once, even when tmux would send them.
        let mlterm_rgb = client("mlterm", true, 8);
        assert_eq!(decide(&tmux, Some(&mlterm_rgb)).0, Colours::Palette256);
        // 8 colours: drawn in them, with the fix named.
        let (colours, note) = decide(&tmux, Some(&client("mlterm", false, 8)));
        assert_eq!(colours, Colours::Basic8);
        let note = note.unwrap();
        assert!(
            note.contains("set -as terminal-features ',mlterm*:RGB'"),
            "{note}"
        );
        // A tmux that cannot be asked: as before, 24-bit colours.
        assert_eq!(decide(&tmux, None), (Colours::Direct, None));
    }
}
