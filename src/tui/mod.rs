//! The terminal dashboard: live training, results and a Grad-CAM browser, over SSH too.
//!
//! One loop owns the terminal and draws at most once a [`FRAME`] from the state in `app` (views in
//! `views` only read it). Around it, separate threads and tasks joined by channels: the event
//! source (a live training's channel, or `metrics.jsonl` followed by `watch`), the keyboard reader
//! (`input`), and the slow picture work (`jobs`: the [`Gallery`] and the terminal encoder). The
//! training never waits for the dashboard: the dashboard only reads what the worker sends, and
//! asks through [`Steer`].
//!
//! Entry points: [`run`] (async) and [`run_blocking`].

mod app;
mod browser;
#[cfg(test)]
mod fake;
mod gallery;
mod history;
mod images;
mod input;
mod jobs;
mod keymap;
mod lingering;
mod memory;
#[cfg(test)]
mod oneclass_tests;
mod picture;
mod scan;
mod screen;
#[cfg(test)]
mod snapshots;
mod steer;
mod terminal;
#[cfg(test)]
mod tests;
mod theme;
mod views;
mod watch;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ratatui::backend::Backend;
use ratatui::Terminal;
use tokio::sync::mpsc;

pub use app::{Exit, View};
pub use gallery::{Gallery, LayerRow, PictureSpec, TestItem};
pub use images::{GraphicsChoice, GRAPHICS_ENV};
pub use scan::run_blocking as run_scan_view;
pub use steer::{RunDirSteer, Steer};

use crate::events::Event;
use crate::termio::{tmux, Graphics, Protocol};
use app::{App, AppSetup, Origin, Wants};
use input::Input;
use jobs::{Reply, Workers};
use lingering::Lingering;
use screen::{Screen, Signals};
use terminal::TerminalSession;
use theme::Theme;

/// Shortest time between two frames: events and keys that arrive meanwhile are drawn together.
pub const FRAME: Duration = Duration::from_millis(50);

/// Where the dashboard's events come from.
pub enum Source {
    /// A training in this process: its events as it sends them. The worker should send
    /// `Iteration` events with `try_send` (never waiting for the dashboard; the dashboard copes
    /// with missing ones) and the rare others with `send`.
    Live(mpsc::Receiver<Event>),
    /// A run directory, possibly written by another process: its `metrics.jsonl`, followed.
    Watch(PathBuf),
}

#[derive(Debug, Clone)]
pub struct DashboardOptions {
    pub graphics: GraphicsChoice,
    pub start_view: View,
    /// Switch to the browser when the test results arrive (the demo ends there).
    pub land_in_browser: bool,
    /// Draw with colours; [`Default`] follows `NO_COLOR`.
    pub colors: bool,
}

impl Default for DashboardOptions {
    fn default() -> Self {
        DashboardOptions {
            graphics: GraphicsChoice::Auto,
            start_view: View::Training,
            land_in_browser: false,
            colors: Theme::from_env().colors(),
        }
    }
}

/// Runs the dashboard until the user quits or the terminal goes away, and says how it ended.
///
/// `steer` is `None` where the training cannot be steered (a finished run, a read-only watch). With
/// [`Exit::StopTraining`] the stop was already requested through `steer`. A lost terminal (SSH
/// hang-up, SIGHUP) ends the dashboard quietly with [`Exit::LeaveRunning`]; the process keeps going
/// (SIGHUP is handled from then on, so it no longer ends the process).
pub async fn run(
    source: Source,
    steer: Option<Arc<dyn Steer>>,
    gallery: Box<dyn Gallery>,
    options: DashboardOptions,
) -> Result<Exit> {
    if !(std::io::stdout().is_terminal()) {
        bail!("the dashboard needs a terminal on standard output (use --headless to train without one)");
    }
    let (origin, events) = match source {
        Source::Live(receiver) => (Origin::Live, receiver),
        Source::Watch(run_dir) => (Origin::Watch, watch::follow(run_dir)),
    };
    let mut app = App::new(AppSetup {
        origin,
        steer,
        theme: Theme::new(options.colors),
        start_view: options.start_view,
        land_in_browser: options.land_in_browser,
        classes: gallery.classes(),
        methods: gallery.methods(),
        layers: gallery.layers(),
    });
    app.browser.spec = gallery.default_spec();
    let (mut screen, keys, graphics) = Screen::open(options.graphics)?;
    let (reply_sender, replies) = mpsc::unbounded_channel();
    let workers = Workers::start(gallery, graphics.clone(), reply_sender)?;

    let channels = Channels {
        events,
        keys,
        replies,
        events_open: true,
        replies_open: true,
    };
    let end = event_loop(
        &mut screen.session.terminal,
        &mut app,
        channels,
        workers,
        &mut screen.signals,
        &graphics,
    )
    .await;
    let lost = matches!(end, LoopEnd::TerminalLost);
    if !lost && graphics.protocol == Protocol::KittyDirect {
        lingering::delete_kitty_pictures();
    }
    screen.close(lost);
    Ok(match end {
        LoopEnd::Chosen(exit) => exit,
        LoopEnd::TerminalLost => Exit::LeaveRunning,
    })
}

/// [`run`] for callers without an async runtime (one is made for the dashboard), or inside a
/// multi-threaded tokio runtime.
pub fn run_blocking(
    source: Source,
    steer: Option<Arc<dyn Steer>>,
    gallery: Box<dyn Gallery>,
    options: DashboardOptions,
) -> Result<Exit> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
                bail!("the dashboard cannot block a single-threaded tokio runtime: await tui::run instead");
            }
            tokio::task::block_in_place(|| handle.block_on(run(source, steer, gallery, options)))
        }
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the dashboard's async runtime")?
            .block_on(run(source, steer, gallery, options)),
    }
}

struct Channels {
    events: mpsc::Receiver<Event>,
    keys: mpsc::UnboundedReceiver<Input>,
    replies: mpsc::UnboundedReceiver<Reply>,
    events_open: bool,
    replies_open: bool,
}

enum LoopEnd {
    Chosen(Exit),
    /// Hang-up, unwritable or unreadable terminal, or a panic elsewhere that restored it.
    TerminalLost,
}

/// Events applied per wake-up before drawing again, so a long log read back by `watch` still lets
/// keys through.
const EVENT_BATCH: usize = 4096;

async fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    mut channels: Channels,
    mut workers: Workers,
    signals: &mut Signals,
    graphics: &Graphics,
) -> LoopEnd {
    let mut lingering = Lingering::default();
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut wants = Wants::default();
    let mut dirty = true;
    let mut memory_read: Option<Instant> = None;
    loop {
        if TerminalSession::panicked() {
            return LoopEnd::TerminalLost;
        }
        tokio::select! {
            event = channels.events.recv(), if channels.events_open => {
                match event {
                    Some(event) => {
                        app.apply(event);
                        for _ in 0..EVENT_BATCH {
                            match channels.events.try_recv() {
                                Ok(event) => app.apply(event),
                                Err(_) => break,
                            }
                        }
                    }
                    None => {
                        channels.events_open = false;
                        app.source_closed();
                    }
                }
                dirty = true;
            }
            input = channels.keys.recv() => match input {
                Some(Input::Key(key)) => {
                    if let Some(exit) = app.handle_key(key) {
                        return LoopEnd::Chosen(exit);
                    }
                    dirty = true;
                }
                Some(Input::Lost) | None => return LoopEnd::TerminalLost,
            },
            reply = channels.replies.recv(), if channels.replies_open => match reply {
                Some(reply) => {
                    workers.received(&reply);
                    app.apply_reply(reply);
                    dirty = true;
                }
                None => channels.replies_open = false,
            },
            _ = signals.hangup.recv() => return LoopEnd::TerminalLost,
            _ = signals.resize.recv() => {
                if graphics.passthrough {
                    tmux::refresh_origin();
                }
                dirty = true;
            }
            _ = frame.tick() => {
                if app.origin == Origin::Live && memory_read.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    app.memory_bytes = memory::resident_bytes();
                    memory_read = Some(Instant::now());
                    dirty = true;
                }
                if dirty {
                    // A terminal that cannot be written to is gone (SSH hang-up): end quietly.
                    let drawn = lingering::draw_frame(terminal, &mut lingering, |f| {
                        wants = Wants::default();
                        views::draw(f, app, &mut wants);
                        lingering::FramePictures {
                            drawn: std::mem::take(&mut wants.drawn),
                            pending: wants.pending,
                        }
                    });
                    if drawn.is_err() {
                        return LoopEnd::TerminalLost;
                    }
                    app.note_layout(&wants);
                    dirty = false;
                }
                let request = if workers.gallery_busy() { None } else { app.next_request(&wants) };
                let encoding = app.next_encoding(&wants);
                workers.dispatch(request, encoding);
            }
        }
    }
}
