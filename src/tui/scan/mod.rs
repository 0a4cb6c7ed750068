//! The scan view: a finished scan's photos with their crack maps, masks and windows, panned and
//! zoomed by keyboard. It reads only the scan folder's files (`scan::output`), never the model,
//! and runs in the same loop as the run's dashboard (`event_loop`), with a painter thread of its
//! own for the pictures.
//!
//! - `view`: its state and keys; `draw`: the screen; `render`: a photo's pixels and layers;
//!   `painter`: opening photos and making pictures on the painter's thread; `truth`: hits,
//!   misses and false alarms against true masks, and the threshold sweep panel; `labelling`:
//!   windows labelled by keyboard into the folder's `labels.csv`.

mod draw;
pub(super) mod labelling;
pub(super) mod painter;
pub(super) mod render;
#[cfg(test)]
pub(super) mod tests;
pub(super) mod truth;
pub(super) mod view;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use crossterm::event::KeyEvent;
use ratatui::layout::Size;
use ratatui::Frame;

use super::event_loop::{run_on_screen, Program};
use super::images::GraphicsChoice;
use super::jobs::{Reply, Workers};
use super::theme::Theme;
use super::views::Wants;
use crate::app::job::Exit;
use crate::scan::output::{self, ScanRecord};
use painter::{apply_reply, cell_pixels, next_job, Reply as PaintReply};
use view::ScanView;

/// Opens the scan view on a scan's output folder until the user quits.
pub fn run_blocking(folder: &Path, graphics: GraphicsChoice, colors: bool) -> Result<()> {
    let record = output::read(folder)?;
    // A labels file that does not fit the scan is refused before the screen opens.
    let labels = crate::scan::labels::read(folder, &record)?;
    if !std::io::stdout().is_terminal() {
        bail!(
            "the scan view needs a terminal on standard output ({} holds the scan's pictures and scan.json)",
            folder.display()
        );
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the dashboard's async runtime")?
        .block_on(run(folder.to_path_buf(), record, labels, graphics, colors))
}

async fn run(
    folder: PathBuf,
    record: ScanRecord,
    labels: crate::scan::labels::Labels,
    graphics: GraphicsChoice,
    colors: bool,
) -> Result<()> {
    let mut screen_state = ScanScreen {
        view: ScanView::new(folder.clone(), record.clone(), Theme::new(colors)).with_labels(labels),
        in_flight: false,
        cells: None,
        ahead: None,
    };
    run_on_screen(
        &mut screen_state,
        None,
        graphics,
        |screen, graphics, replies| {
            screen.view.cell_pixels = cell_pixels(&graphics);
            Workers::painting(folder, record, graphics, replies)
        },
    )
    .await?;
    Ok(())
}

/// The scan view as the loop drives it: its state, whether a picture is being made, the
/// picture area the last frame had, and the photo the painter was last asked to open ahead.
pub(super) struct ScanScreen {
    pub view: ScanView,
    in_flight: bool,
    cells: Option<Size>,
    ahead: Option<usize>,
}

impl Program for ScanScreen {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Exit> {
        self.view.handle_key(key).then_some(Exit::Quit)
    }

    fn notice(&mut self, message: String) {
        self.view.message = Some(message);
    }

    fn apply_reply(&mut self, reply: Reply) {
        if let Reply::Painted(reply) = reply {
            if let PaintReply::Opened { photo, .. } = &reply {
                // Opened (ahead or not): a later wish to open it ahead is a new one.
                if self.ahead == Some(*photo) {
                    self.ahead = None;
                }
            }
            if apply_reply(&mut self.view, reply) {
                self.in_flight = false;
            }
        }
    }

    fn draw(&mut self, frame: &mut Frame, wants: &mut Wants) {
        self.cells = draw::draw(frame, &self.view, &mut wants.drawn);
        let waiting = wants.drawn.is_empty() && !self.view.help && next_job(&self.view).is_some();
        wants.pending = usize::from(waiting);
    }

    fn note_layout(&mut self, _wants: &Wants) {
        if let Some(cells) = self.cells.take() {
            self.view.set_area(cells);
        }
    }

    /// The picture the latest frame wants, one at a time, so keys pressed while a large photo
    /// opens are never queued behind stale pictures; with nothing to draw, the photo of the next
    /// window to label is opened ahead.
    fn work(&mut self, _wants: &Wants, workers: &mut Workers) {
        if self.in_flight {
            return;
        }
        if let Some(job) = next_job(&self.view) {
            self.in_flight = workers.paint(job);
        } else if let Some(photo) = self.view.photo_ahead() {
            if self.ahead != Some(photo) && workers.open_ahead(photo) {
                self.ahead = Some(photo);
            }
        }
    }
}
