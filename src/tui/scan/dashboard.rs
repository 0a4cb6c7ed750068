//! The scan view's loop: `crackscope watch SCAN_FOLDER`. One loop owns the terminal and draws at
//! most once a [`FRAME`](crate::tui::FRAME) from [`ScanView`]; a thread of its own opens photos and
//! makes the pictures, one at a time, always for what the latest frame wants, so keys pressed
//! while a 100-megapixel photo opens are never queued behind stale pictures.
//!
//! It opens its screen as the training dashboard does (`screen`) and encodes pictures with the
//! dashboard's encoder (`picture`), so it behaves and looks as the dashboard does.

use std::io::IsTerminal;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use anyhow::{bail, Context, Result};
use ratatui::backend::Backend;
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::draw;
use super::render::Layers;
use super::view::{PhotoState, RenderJob, ScanView};
use crate::scan_output::{self, ScanRecord};
use crate::termio::{tmux, Graphics, GraphicsChoice, Protocol};
use crate::tui::input::Input;
use crate::tui::jobs::JOB_THREAD_PREFIX;
use crate::tui::lingering::{self, Lingering};
use crate::tui::picture::{self, Picture};
use crate::tui::screen::{Screen, Signals};
use crate::tui::terminal::TerminalSession;
use crate::tui::theme::Theme;
use crate::tui::FRAME;

/// Opens the scan view on a scan's output folder until the user quits.
pub fn run_blocking(folder: &Path, graphics: GraphicsChoice, colors: bool) -> Result<()> {
    let record = scan_output::read(folder)?;
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
        .block_on(run(folder.to_path_buf(), record, graphics, colors))
}

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

async fn run(
    folder: PathBuf,
    record: ScanRecord,
    graphics: GraphicsChoice,
    colors: bool,
) -> Result<()> {
    let mut view = ScanView::new(folder.clone(), record.clone(), Theme::new(colors));
    let (mut screen, keys, graphics) = Screen::open(graphics)?;
    view.cell_pixels = cell_pixels(&graphics);
    let (reply_sender, replies) = mpsc::unbounded_channel();
    let jobs = start_painter(folder, record, graphics.clone(), reply_sender)?;
    let lost = event_loop(
        &mut screen.session.terminal,
        &mut view,
        keys,
        replies,
        jobs,
        &mut screen.signals,
        graphics.passthrough,
    )
    .await;
    if !lost && graphics.protocol == Protocol::KittyDirect {
        lingering::delete_kitty_pictures();
    }
    screen.close(lost);
    Ok(())
}

/// Runs until the user quits (false) or the terminal is gone (true).
async fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    view: &mut ScanView,
    mut keys: mpsc::UnboundedReceiver<Input>,
    mut replies: mpsc::UnboundedReceiver<Reply>,
    jobs: std_mpsc::Sender<RenderJob>,
    signals: &mut Signals,
    passthrough: bool,
) -> bool {
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut in_flight = false;
    let mut lingering = Lingering::default();
    let mut replies_open = true;
    loop {
        if TerminalSession::panicked() {
            return true;
        }
        tokio::select! {
            input = keys.recv() => match input {
                Some(Input::Key(key)) => {
                    if view.handle_key(key) {
                        return false;
                    }
                    dirty = true;
                }
                Some(Input::Lost) | None => return true,
            },
            reply = replies.recv(), if replies_open => match reply {
                Some(reply) => {
                    if apply_reply(view, reply) {
                        in_flight = false;
                    }
                    dirty = true;
                }
                // The picture thread is gone; its last words came as a reply.
                None => replies_open = false,
            },
            _ = signals.hangup.recv() => return true,
            _ = signals.resize.recv() => {
                if passthrough {
                    tmux::refresh_origin();
                }
                dirty = true;
            }
            _ = frame.tick() => {
                if dirty {
                    let mut cells = None;
                    let drawn = lingering::draw_frame(terminal, &mut lingering, |f| {
                        let mut drawn = Vec::new();
                        cells = draw::draw(f, view, &mut drawn);
                        let waiting = drawn.is_empty() && !view.help && next_job(view).is_some();
                        lingering::FramePictures {
                            drawn,
                            pending: usize::from(waiting),
                        }
                    });
                    if drawn.is_err() {
                        return true;
                    }
                    if let Some(cells) = cells {
                        view.set_area(cells);
                    }
                    dirty = false;
                }
                if !in_flight {
                    if let Some(job) = next_job(view) {
                        in_flight = jobs.send(job).is_ok();
                    }
                }
            }
        }
    }
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

/// Opens photos and makes pictures on a thread of its own; one photo's layers are kept at a time.
fn start_painter(
    folder: PathBuf,
    record: ScanRecord,
    graphics: Graphics,
    replies: mpsc::UnboundedSender<Reply>,
) -> Result<std_mpsc::Sender<RenderJob>> {
    let (sender, jobs) = std_mpsc::channel::<RenderJob>();
    std::thread::Builder::new()
        .name(format!("{JOB_THREAD_PREFIX}scan"))
        .spawn(move || {
            let mut painter = Painter::new(folder, record, graphics);
            for job in jobs {
                for reply in painter.answer(job) {
                    if replies.send(reply).is_err() {
                        return;
                    }
                }
            }
        })
        .context("cannot start the scan view's picture thread")?;
    Ok(sender)
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
            let image = layers.render(job.viewport, job.pixels, job.toggles, job.region);
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
