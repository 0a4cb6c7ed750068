//! Styles of the dashboard in one place, so `NO_COLOR` (<https://no-color.org>) turns every colour off
//! at once: without colours, emphasis is carried by bold, dim and reversed text only.

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    colors: bool,
}

impl Theme {
    pub fn new(colors: bool) -> Theme {
        Theme { colors }
    }

    /// Colours unless `NO_COLOR` is set to a non-empty value.
    pub fn from_env() -> Theme {
        Theme::new(std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
    }

    pub fn colors(&self) -> bool {
        self.colors
    }

    fn pick(&self, colored: Style, plain: Style) -> Style {
        if self.colors {
            colored
        } else {
            plain
        }
    }

    pub fn title(&self) -> Style {
        self.pick(
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn selected(&self) -> Style {
        self.pick(
            Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )
    }

    pub fn dim(&self) -> Style {
        self.pick(
            Style::new().fg(Color::DarkGray),
            Style::new().add_modifier(Modifier::DIM),
        )
    }

    pub fn key(&self) -> Style {
        self.pick(
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn good(&self) -> Style {
        self.pick(Style::new().fg(Color::Green), Style::new())
    }

    pub fn bad(&self) -> Style {
        self.pick(
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn warn(&self) -> Style {
        self.pick(
            Style::new().fg(Color::Yellow),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    /// Raw per-batch values: visible but in the background.
    pub fn raw_series(&self) -> Style {
        self.pick(
            Style::new().fg(Color::Blue),
            Style::new().add_modifier(Modifier::DIM),
        )
    }

    pub fn smooth_series(&self) -> Style {
        self.pick(
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn validation_series(&self) -> Style {
        self.pick(
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn gauge(&self) -> Style {
        self.pick(Style::new().fg(Color::Cyan), Style::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_colours_no_style_sets_a_colour() {
        let theme = Theme::new(false);
        for style in [
            theme.title(),
            theme.selected(),
            theme.dim(),
            theme.key(),
            theme.good(),
            theme.bad(),
            theme.warn(),
            theme.raw_series(),
            theme.smooth_series(),
            theme.validation_series(),
            theme.gauge(),
        ] {
            assert_eq!((style.fg, style.bg), (None, None), "{style:?}");
        }
        assert!(Theme::new(true).title().fg.is_some());
    }
}
