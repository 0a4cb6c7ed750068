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

/// To the picture thread.
pub enum PainterJob {
    /// Make this picture; answered by [`Reply`]s.
    Draw(RenderJob),
    /// Open this photo beside the one open, unanswered: the next window to label is on it, so
    /// its picture comes without the wait for the photo (a 12-megapixel photo takes a few
    /// tenths of a second to open) when the person answers the current one.
    OpenAhead(usize),
}

/// Photos opened ahead at most this large, so that holding two never doubles a huge photo's
/// memory.
const AHEAD_MAX_PIXELS: u64 = 25_000_000;

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

/// What the picture thread holds: the scan, the open photo and the one opened ahead.
pub struct Painter {
    folder: PathBuf,
    record: ScanRecord,
    graphics: Graphics,
    open: Option<(usize, Layers)>,
    ahead: Option<(usize, Layers)>,
}

impl Painter {
    pub fn new(folder: PathBuf, record: ScanRecord, graphics: Graphics) -> Painter {
        Painter {
            folder,
            record,
            graphics,
            open: None,
            ahead: None,
        }
    }

    /// Carries out one job; the replies to send back.
    pub fn take(&mut self, job: PainterJob) -> Vec<Reply> {
        match job {
            PainterJob::Draw(job) => self.draw(job),
            PainterJob::OpenAhead(photo) => {
                self.open_ahead(photo);
                Vec::new()
            }
        }
    }

    /// See [`PainterJob::OpenAhead`]. A photo that cannot be opened is left for the picture that
    /// asks for it to report.
    fn open_ahead(&mut self, photo: usize) {
        let held = |slot: &Option<(usize, Layers)>| slot.as_ref().is_some_and(|(i, _)| *i == photo);
        let Some(record) = self.record.photos.get(photo) else {
            return;
        };
        let pixels = u64::from(record.width) * u64::from(record.height);
        if held(&self.open) || held(&self.ahead) || pixels > AHEAD_MAX_PIXELS {
            return;
        }
        self.ahead = None;
        self.ahead = self.load(photo).ok().map(|layers| (photo, layers));
    }

    /// Opens the job's photo when another one is open (or takes it from the one opened ahead),
    /// then draws the picture. Panics are caught and reported as failures.
    fn draw(&mut self, job: RenderJob) -> Vec<Reply> {
        let mut replies = Vec::new();
        if self.open.as_ref().map(|(i, _)| *i) != Some(job.photo) {
            // Drop the previous photo first: two 100-megapixel photos need not fit together.
            self.open = None;
            let opened = match self.ahead.take_if(|(i, _)| *i == job.photo) {
                Some((_, layers)) => Ok(layers),
                None => self.load(job.photo),
            };
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

    /// A photo's layers, a panic caught as a failure.
    fn load(&self, photo: usize) -> Result<Layers, String> {
        let record = &self.record.photos[photo];
        catch_unwind(AssertUnwindSafe(|| {
            Layers::load(&self.folder, &self.record, record).map_err(|e| format!("{e:#}"))
        }))
        .unwrap_or_else(|_| Err("internal error (panic) while opening the photo".into()))
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
