//! The scan view's picture work: opening a photo (on the painter's thread, one at a time, a
//! 100-megapixel photo included) and drawing the part of it a frame wants, encoded for the
//! terminal with the dashboard's encoder (`picture`); and how the view asks for it and takes the
//! answers in.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use super::render::Layers;
use super::view::{PhotoState, RenderJob, ScanView};
use crate::scan::output::ScanRecord;
use crate::termio::Graphics;
use crate::tui::picture::{self, Picture};

/// From the picture thread.
pub enum Reply {
    /// The photo at this index was opened (with a note when the overlay stands in), or not.
    Opened {
        photo: usize,
        result: Result<Option<String>, String>,
    },
    Drawn {
        job: RenderJob,
        result: Result<Picture, String>,
    },
}

/// The picture to ask for next: what the view wants, unless it is already shown or its photo
/// cannot be opened.
pub fn next_job(view: &ScanView) -> Option<RenderJob> {
    if matches!(view.photo_state, PhotoState::Failed(_)) {
        return None;
    }
    let job = view.wanted()?;
    match &view.picture {
        Some((shown, _)) if *shown == job => None,
        _ => Some(job),
    }
}

/// Takes in a reply; true when it ends the job in flight.
pub fn apply_reply(view: &mut ScanView, reply: Reply) -> bool {
    match reply {
        Reply::Opened { photo, result } => {
            let failed = result.is_err();
            if view.photo_index() == Some(photo) {
                view.photo_state = match result {
                    Ok(note) => PhotoState::Ready(note),
                    Err(message) => PhotoState::Failed(message),
                };
            }
            // A photo that cannot be opened gets no picture: the job ends here.
            failed
        }
        Reply::Drawn { job, result } => {
            match result {
                Ok(protocol) => view.picture = Some((job, protocol)),
                Err(message) if view.photo_index() == Some(job.photo) => {
                    view.photo_state = PhotoState::Failed(message)
                }
                Err(_) => {}
            }
            true
        }
    }
}

/// What the picture thread holds: the scan and the open photo.
pub struct Painter {
    folder: PathBuf,
    record: ScanRecord,
    graphics: Graphics,
    open: Option<(usize, Layers)>,
}

impl Painter {
    pub fn new(folder: PathBuf, record: ScanRecord, graphics: Graphics) -> Painter {
        Painter {
            folder,
            record,
            graphics,
            open: None,
        }
    }

    /// Opens the job's photo when another one is open, then draws the picture. Panics are caught
    /// and reported as failures.
    pub fn answer(&mut self, job: RenderJob) -> Vec<Reply> {
        let mut replies = Vec::new();
        if self.open.as_ref().map(|(i, _)| *i) != Some(job.photo) {
            // Drop the previous photo first: two 100-megapixel photos need not fit together.
            self.open = None;
            let photo = &self.record.photos[job.photo];
            let opened = catch_unwind(AssertUnwindSafe(|| {
                Layers::load(&self.folder, &self.record, photo).map_err(|e| format!("{e:#}"))
            }))
            .unwrap_or_else(|_| Err("internal error (panic) while opening the photo".into()));
            match opened {
                Ok(layers) => {
                    replies.push(Reply::Opened {
                        photo: job.photo,
                        result: Ok(layers.fallback.clone()),
                    });
                    self.open = Some((job.photo, layers));
                }
                Err(message) => {
                    replies.push(Reply::Opened {
                        photo: job.photo,
                        result: Err(message),
                    });
                    return replies;
                }
            }
        }
        let (_, layers) = self.open.as_ref().expect("opened above");
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut image = layers.render(job.viewport, job.pixels, job.toggles, job.region);
            if let Some(focus) = job.focus {
                super::labelling::outline_focus(&mut image, job.viewport, focus);
            }
            picture::encode(&self.graphics, &image, job.cells)
        }))
        .unwrap_or_else(|_| Err("internal error (panic) while drawing".into()));
        replies.push(Reply::Drawn { job, result });
        replies
    }
}

/// Pixels per cell that pictures are drawn at: the terminal's (for half blocks the two a cell
/// shows), so a picture is drawn at the size it is shown.
pub fn cell_pixels(graphics: &Graphics) -> (u32, u32) {
    (
        u32::from(graphics.cell.0.max(1)),
        u32::from(graphics.cell.1.max(1)),
    )
}
