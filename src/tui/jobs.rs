//! Slow work off the UI loop: one thread owns the [`Gallery`] (Grad-CAM, decoding), another encodes
//! pictures for the terminal. The loop keeps at most one request in flight on each and chooses the
//! next one from what the last frame wanted, so pictures the user paged past are never computed.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use anyhow::{Context, Result};
use image::RgbImage;
use ratatui::layout::Size;

use super::images::ImageKey;
use super::picture::{self, Picture};
use super::scan::painter::{Painter, PainterJob, Reply as PaintReply};
use super::scan::view::RenderJob;
use crate::app::gallery::{CamCaption, Gallery, LayerRow, PictureSpec, TestItem};
use crate::scan::output::ScanRecord;
use crate::termio::Graphics;

/// Threads whose panics are caught and shown in the dashboard; the panic hook leaves the terminal
/// alone for them.
pub const JOB_THREAD_PREFIX: &str = "crackscope-tui-";

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Samples,
    Summary,
    TestItems,
    Picture { item: usize, spec: PictureSpec },
    Save { item: usize, spec: PictureSpec },
    ValidationCams { iteration: usize },
}

/// Answers, with errors flattened to their full message (context chain included).
pub enum Reply {
    Samples(Result<Option<RgbImage>, String>),
    Summary(Result<Vec<LayerRow>, String>),
    TestItems(Result<Vec<TestItem>, String>),
    Picture {
        item: usize,
        spec: PictureSpec,
        result: Result<RgbImage, String>,
    },
    Saved(Result<PathBuf, String>),
    ValidationCams {
        iteration: usize,
        result: Result<Vec<(RgbImage, CamCaption)>, String>,
    },
    Encoded {
        key: ImageKey,
        size: Size,
        result: Result<Picture, String>,
    },
    /// From the scan view's painter.
    Painted(PaintReply),
}

impl Reply {
    /// Whether this answers the gallery thread (as opposed to the encoder).
    pub fn is_from_gallery(&self) -> bool {
        !matches!(self, Reply::Encoded { .. } | Reply::Painted(_))
    }
}

/// A picture to encode at a cell size.
pub type EncodeJob = (ImageKey, Size, Arc<RgbImage>);

/// The threads behind a view: the gallery and the encoder for the run's dashboard, the painter
/// for the scan view.
pub struct Workers {
    gallery: Option<mpsc::Sender<Request>>,
    encoder: Option<mpsc::Sender<EncodeJob>>,
    painter: Option<mpsc::Sender<PainterJob>>,
    gallery_busy: bool,
}

impl Workers {
    /// Starts both threads; their answers arrive on `replies` (so the async loop can await them).
    pub fn start(
        gallery: Box<dyn Gallery>,
        graphics: Graphics,
        replies: tokio::sync::mpsc::UnboundedSender<Reply>,
    ) -> Result<Workers> {
        let (gallery_tx, gallery_rx) = mpsc::channel::<Request>();
        let gallery_replies = replies.clone();
        std::thread::Builder::new()
            .name(format!("{JOB_THREAD_PREFIX}gallery"))
            .spawn(move || serve_gallery(gallery, gallery_rx, gallery_replies))
            .context("cannot start the dashboard's picture thread")?;
        let (encoder_tx, encoder_rx) = mpsc::channel::<EncodeJob>();
        std::thread::Builder::new()
            .name(format!("{JOB_THREAD_PREFIX}encoder"))
            .spawn(move || {
                for (key, size, image) in encoder_rx {
                    let result = catch_unwind(AssertUnwindSafe(|| {
                        picture::encode(&graphics, &image, size)
                    }))
                    .unwrap_or_else(|panic| Err(panic_message(panic)));
                    if replies.send(Reply::Encoded { key, size, result }).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start the dashboard's encoder thread")?;
        Ok(Workers {
            gallery: Some(gallery_tx),
            encoder: Some(encoder_tx),
            painter: None,
            gallery_busy: false,
        })
    }

    /// The scan view's painter: opens photos of the scan folder and makes pictures on a thread of
    /// its own, one photo's layers kept at a time.
    pub fn painting(
        folder: PathBuf,
        record: ScanRecord,
        graphics: Graphics,
        replies: tokio::sync::mpsc::UnboundedSender<Reply>,
    ) -> Result<Workers> {
        let (sender, jobs) = mpsc::channel::<PainterJob>();
        std::thread::Builder::new()
            .name(format!("{JOB_THREAD_PREFIX}scan"))
            .spawn(move || {
                let mut painter = Painter::new(folder, record, graphics);
                for job in jobs {
                    for reply in painter.take(job) {
                        if replies.send(Reply::Painted(reply)).is_err() {
                            return;
                        }
                    }
                }
            })
            .context("cannot start the scan view's picture thread")?;
        Ok(Workers {
            gallery: None,
            encoder: None,
            painter: Some(sender),
            gallery_busy: false,
        })
    }

    /// No workers: a view that makes no pictures (several runs side by side).
    pub fn idle() -> Workers {
        Workers {
            gallery: None,
            encoder: None,
            painter: None,
            gallery_busy: false,
        }
    }

    /// Hands the painter a picture to make; false when it is gone.
    pub fn paint(&mut self, job: RenderJob) -> bool {
        self.send_painter(PainterJob::Draw(job))
    }

    /// Has the painter open a photo ahead (see [`PainterJob::OpenAhead`]).
    pub fn open_ahead(&mut self, photo: usize) -> bool {
        self.send_painter(PainterJob::OpenAhead(photo))
    }

    fn send_painter(&self, job: PainterJob) -> bool {
        self.painter.as_ref().is_some_and(|p| p.send(job).is_ok())
    }

    pub fn gallery_busy(&self) -> bool {
        self.gallery_busy
    }

    /// Call for every reply that came back.
    pub fn received(&mut self, reply: &Reply) {
        if reply.is_from_gallery() {
            self.gallery_busy = false;
        }
    }

    /// Sends the next gallery request and the next encoding, when the respective thread is idle.
    pub fn dispatch(&mut self, next_request: Option<Request>, next_encoding: Option<EncodeJob>) {
        if let (Some(request), Some(gallery)) = (next_request, &self.gallery) {
            debug_assert!(!self.gallery_busy);
            // A send fails only when the thread is gone; its last words already came as a reply.
            self.gallery_busy = gallery.send(request).is_ok();
        }
        if let (Some(job), Some(encoder)) = (next_encoding, &self.encoder) {
            let _ = encoder.send(job);
        }
    }
}

fn serve_gallery(
    mut gallery: Box<dyn Gallery>,
    requests: mpsc::Receiver<Request>,
    replies: tokio::sync::mpsc::UnboundedSender<Reply>,
) {
    for request in requests {
        let reply = catch_unwind(AssertUnwindSafe(|| answer(gallery.as_mut(), &request)))
            .unwrap_or_else(|panic| failed(request, panic_message(panic)));
        if replies.send(reply).is_err() {
            break;
        }
    }
}

fn flat<T>(result: Result<T>) -> Result<T, String> {
    result.map_err(|e| format!("{e:#}"))
}

fn answer(gallery: &mut dyn Gallery, request: &Request) -> Reply {
    match *request {
        Request::Samples => Reply::Samples(flat(gallery.samples())),
        Request::Summary => Reply::Summary(flat(gallery.summary())),
        Request::TestItems => Reply::TestItems(flat(gallery.test_items())),
        Request::Picture { item, spec } => Reply::Picture {
            item,
            spec,
            result: flat(gallery.picture(item, &spec)),
        },
        Request::Save { item, spec } => Reply::Saved(flat(gallery.save_picture(item, &spec))),
        Request::ValidationCams { iteration } => Reply::ValidationCams {
            iteration,
            result: flat(gallery.validation_cams(iteration)),
        },
    }
}

/// The reply a request gets when the gallery panicked on it.
fn failed(request: Request, message: String) -> Reply {
    match request {
        Request::Samples => Reply::Samples(Err(message)),
        Request::Summary => Reply::Summary(Err(message)),
        Request::TestItems => Reply::TestItems(Err(message)),
        Request::Picture { item, spec } => Reply::Picture {
            item,
            spec,
            result: Err(message),
        },
        Request::Save { .. } => Reply::Saved(Err(message)),
        Request::ValidationCams { iteration } => Reply::ValidationCams {
            iteration,
            result: Err(message),
        },
    }
}

fn panic_message(panic: Box<dyn Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into());
    format!("internal error (panic): {text}")
}
