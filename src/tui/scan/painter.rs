//! The scan view's loop: `crackscope watch SCAN_FOLDER`. One loop owns the terminal and draws at
//! most once a [`FRAME`](crate::tui::FRAME) from [`ScanView`]; a thread of its own opens photos and
//! makes the pictures, one at a time, always for what the latest frame wants, so keys pressed
//! while a 100-megapixel photo opens are never queued behind stale pictures.
//!
//! It opens its screen as the training dashboard does (`screen`) and encodes pictures with the
//! browser's encoder (`images`), so it behaves and looks as the dashboard does.

use std::io::IsTerminal;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use anyhow::{bail, Context, Result};
use image::{DynamicImage, RgbImage};
use ratatui::backend::Backend;
use ratatui::layout::Size;
use ratatui::Terminal;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::halfblocks::Halfblocks;
use ratatui_image::protocol::Protocol;
use tokio::sync::mpsc;

use super::draw;
use super::render::Layers;
use super::view::{PhotoState, RenderJob, ScanView};
use crate::scan::output::{self, ScanRecord};
use crate::tui::images::{self, GraphicsChoice};
use crate::tui::input::Input;
use crate::tui::jobs::JOB_THREAD_PREFIX;
use crate::tui::screen::{Screen, Signals};
use crate::tui::terminal::TerminalSession;
use crate::tui::theme::Theme;
use crate::tui::FRAME;

/// Opens the scan view on a scan's output folder until the user quits.
pub fn run_blocking(folder: &Path, graphics: GraphicsChoice, colors: bool) -> Result<()> {
    let record = output::read(folder)?;
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
        result: Result<Protocol, String>,
    },
}

async fn run(
    folder: PathBuf,
    record: ScanRecord,
    graphics: GraphicsChoice,
    colors: bool,
) -> Result<()> {
    let mut view = ScanView::new(folder.clone(), record.clone(), Theme::new(colors));
    let (mut screen, keys, picker) = Screen::open(graphics)?;
    view.cell_pixels = cell_pixels(&picker);
    let (reply_sender, replies) = mpsc::unbounded_channel();
    let jobs = start_painter(folder, record, picker, reply_sender)?;
    let lost = event_loop(
        &mut screen.session.terminal,
        &mut view,
        keys,
        replies,
        jobs,
        &mut screen.signals,
        screen.pictures_linger,
    )
    .await;
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
    clear_on_change: bool,
) -> bool {
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut in_flight = false;
    let mut shown_layout = None;
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
            _ = signals.resize.recv() => dirty = true,
            _ = frame.tick() => {
                if dirty {
                    // Sixel and iTerm2 pictures stay on screen until overwritten: clear when
                    // what sits where changes.
                    let layout = (view.help, view.cursor, view.picture.as_ref().map(|(_, p)| p.size()));
                    if clear_on_change && shown_layout != Some(layout) && terminal.clear().is_err() {
                        return true;
                    }
                    shown_layout = Some(layout);
                    let mut cells = None;
                    if terminal.draw(|f| cells = draw::draw(f, view)).is_err() {
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
    picker: Picker,
    replies: mpsc::UnboundedSender<Reply>,
) -> Result<std_mpsc::Sender<RenderJob>> {
    let (sender, jobs) = std_mpsc::channel::<RenderJob>();
    std::thread::Builder::new()
        .name(format!("{JOB_THREAD_PREFIX}scan"))
        .spawn(move || {
            let mut painter = Painter::new(folder, record, picker);
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
    picker: Picker,
    open: Option<(usize, Layers)>,
}

impl Painter {
    pub fn new(folder: PathBuf, record: ScanRecord, picker: Picker) -> Painter {
        Painter {
            folder,
            record,
            picker,
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
            encode(&self.picker, image, job.cells)
        }))
        .unwrap_or_else(|_| Err("internal error (panic) while drawing".into()));
        replies.push(Reply::Drawn { job, result });
        replies
    }
}

/// Pixels per cell that pictures are drawn at: the font's for real graphics; for half blocks the
/// two a cell shows (drawing the nominal font's 200 would only be thrown away by the encoder).
pub fn cell_pixels(picker: &Picker) -> (u32, u32) {
    if picker.protocol_type() == ProtocolType::Halfblocks {
        return (1, 2);
    }
    let font = picker.font_size();
    (font.width.max(1) as u32, font.height.max(1) as u32)
}

/// The picture for the terminal, as the browser's (`images::encode`); half blocks straight from
/// the picture drawn at two pixels a cell, without the round trip through the nominal font size.
fn encode(picker: &Picker, image: RgbImage, cells: Size) -> Result<Protocol, String> {
    if picker.protocol_type() != ProtocolType::Halfblocks {
        return images::encode(picker, &image, cells);
    }
    let size = Size::new(
        (image.width() as u16).min(cells.width),
        (image.height().div_ceil(2) as u16).min(cells.height),
    );
    Halfblocks::new(DynamicImage::ImageRgb8(image), size)
        .map(Protocol::Halfblocks)
        .map_err(|e| e.to_string())
}
