//! Pictures that stay on the terminal after the frame that drew them (sixel and iTerm2 pixels,
//! kitty pictures placed directly): after each frame, what the last frame drew and this one no
//! longer covers is taken away, kitty's by id, the others by clearing the screen and drawing the
//! frame again. A view switch, the help, a resize or paging thus never leaves a picture behind.

use std::io::Write;

use ratatui::backend::Backend;
use ratatui::layout::Rect;
use ratatui::{Frame, Terminal};

use crate::imaging::{picture_log, protocols};

/// A picture as a frame drew it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drawn {
    pub rect: Rect,
    pub id: u32,
    /// It stays on the terminal after the frame (see `Picture::lingers`).
    pub lingers: bool,
    /// Its kitty id, when kitty placed it (then it is deleted by id, not cleared).
    pub kitty: Option<u32>,
}

impl Drawn {
    pub fn of(picture: &super::picture::Picture, rect: Rect) -> Drawn {
        Drawn {
            rect,
            id: picture.id(),
            lingers: picture.lingers(),
            kitty: picture.kitty_id(),
        }
    }
}

/// What the terminal needs after a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Cleanup {
    Nothing,
    /// Delete these kitty pictures.
    DeleteKitty(Vec<u32>),
    /// Pixels were left where nothing covers them now: clear the screen and draw again.
    Redraw,
}

/// The lingering pictures on screen.
#[derive(Debug, Default)]
pub struct Lingering {
    shown: Vec<Drawn>,
}

impl Lingering {
    /// Takes in the pictures the frame just drawn holds, and says what to clean up.
    pub fn after_frame(&mut self, mut drawn: Vec<Drawn>) -> Cleanup {
        drawn.retain(|d| d.lingers);
        let gone_kitty: Vec<u32> = self
            .shown
            .iter()
            .filter_map(|old| old.kitty)
            .filter(|id| !drawn.iter().any(|new| new.kitty == Some(*id)))
            .collect();
        // Pixels stay until a picture of the same place overwrites them all.
        let uncovered = self
            .shown
            .iter()
            .filter(|old| old.kitty.is_none())
            .any(|old| {
                !drawn
                    .iter()
                    .any(|new| new.rect == old.rect && new.kitty.is_none())
            });
        self.shown = drawn;
        if uncovered {
            Cleanup::Redraw
        } else if gone_kitty.is_empty() {
            Cleanup::Nothing
        } else {
            Cleanup::DeleteKitty(gone_kitty)
        }
    }

    /// The screen was cleared: nothing lingers (kitty's pictures are deleted with it).
    pub fn cleared(&mut self) {
        self.shown.clear();
    }
}

/// What a frame drew: its pictures, and how many more it wanted that were not ready.
#[derive(Debug, Default)]
pub struct FramePictures {
    pub drawn: Vec<Drawn>,
    pub pending: usize,
}

/// Draws a frame with `draw`, then takes away the pictures of the last frame it no longer shows.
/// Kitty's deletions go straight to stdout, the terminal the dashboard draws on. An error means
/// the terminal is gone.
pub fn draw_frame<B: Backend>(
    terminal: &mut Terminal<B>,
    lingering: &mut Lingering,
    mut draw: impl FnMut(&mut Frame) -> FramePictures,
) -> Result<(), ()> {
    let mut frame = FramePictures::default();
    terminal.draw(|f| frame = draw(f)).map_err(|_| ())?;
    log_frame(&frame);
    match lingering.after_frame(std::mem::take(&mut frame.drawn)) {
        Cleanup::Nothing => Ok(()),
        Cleanup::DeleteKitty(ids) => {
            let deletes: String = ids.into_iter().map(protocols::kitty_delete).collect();
            let mut out = std::io::stdout();
            out.write_all(deletes.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|_| ())
        }
        Cleanup::Redraw => {
            terminal.clear().map_err(|_| ())?;
            lingering.cleared();
            terminal.draw(|f| frame = draw(f)).map_err(|_| ())?;
            log_frame(&frame);
            lingering.after_frame(frame.drawn);
            Ok(())
        }
    }
}

fn log_frame(frame: &FramePictures) {
    if picture_log::enabled() {
        let on_screen: Vec<(u32, u16, u16)> = frame
            .drawn
            .iter()
            .map(|d| (d.id, d.rect.x, d.rect.y))
            .collect();
        picture_log::frame(&on_screen, frame.pending);
    }
}

/// Deletes every kitty picture on screen (as the view ends, before the screen is handed back).
pub fn delete_kitty_pictures() {
    let mut out = std::io::stdout();
    let _ = out
        .write_all(protocols::KITTY_DELETE_ALL.as_bytes())
        .and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sixel(x: u16, id: u32) -> Drawn {
        Drawn {
            rect: Rect::new(x, 1, 10, 5),
            id,
            lingers: true,
            kitty: None,
        }
    }

    fn kitty(x: u16, id: u32) -> Drawn {
        Drawn {
            kitty: Some(id),
            ..sixel(x, id)
        }
    }

    #[test]
    fn pixels_left_uncovered_need_a_redraw_and_kitty_pictures_a_delete() {
        let mut lingering = Lingering::default();
        assert_eq!(
            lingering.after_frame(vec![sixel(0, 1), sixel(20, 2)]),
            Cleanup::Nothing
        );
        // Paging: new pictures in the same places overwrite the old ones.
        assert_eq!(
            lingering.after_frame(vec![sixel(0, 3), sixel(20, 4)]),
            Cleanup::Nothing
        );
        // A view without pictures, or the help hiding them: the pixels must go.
        assert_eq!(lingering.after_frame(vec![sixel(0, 3)]), Cleanup::Redraw);
        assert_eq!(lingering.after_frame(vec![]), Cleanup::Redraw);
        assert_eq!(lingering.after_frame(vec![]), Cleanup::Nothing);
        // Half blocks are text: they go with the frame.
        let text = Drawn {
            lingers: false,
            ..sixel(0, 5)
        };
        assert_eq!(lingering.after_frame(vec![text]), Cleanup::Nothing);
        assert_eq!(lingering.after_frame(vec![]), Cleanup::Nothing);

        assert_eq!(
            lingering.after_frame(vec![kitty(0, 7), kitty(20, 8)]),
            Cleanup::Nothing
        );
        // The same picture moved keeps its id (kitty moves it); a replaced one is deleted.
        assert_eq!(
            lingering.after_frame(vec![kitty(5, 7), kitty(20, 9)]),
            Cleanup::DeleteKitty(vec![8])
        );
        lingering.cleared();
        assert_eq!(lingering.after_frame(vec![]), Cleanup::Nothing);
    }
}
