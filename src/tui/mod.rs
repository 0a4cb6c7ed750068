//! The terminal dashboard: live training, results and a Grad-CAM browser, over SSH too.
//!
//! One loop (`event_loop`) owns the terminal and draws at most once a [`FRAME`]: the run's
//! dashboard (`app`: tabs of screens, `views`, each a component with its own state, keys and
//! drawing; `frame` around them; `keymap`, every key) or the scan view (`scan`). Around it,
//! separate threads and tasks joined by channels: the event source (a live job's channel, or
//! `metrics.jsonl` followed by `watch`), the keyboard reader (`input`), and the slow picture work
//! (`jobs`: the [`Gallery`], the terminal encoder, the scan view's painter). The training never
//! waits for the dashboard: the dashboard only reads what the worker sends, and asks through
//! [`Steer`].
//!
//! Entry points: [`Dashboard`], an observer of a job's events (`Dashboard::live`) or of a run
//! directory's log (`Dashboard::watch`), [`run_scan_view`] and [`run_compare_view`] (several
//! runs side by side).

mod app;
mod browser;
mod compare;
mod event_loop;
#[cfg(test)]
mod fake;
mod frame;
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
use crossterm::event::KeyEvent;
use ratatui::Frame;
use tokio::sync::mpsc;

pub use crate::app::job::Exit;
pub use compare::run_blocking as run_compare_view;
pub use images::GraphicsChoice;
pub use keymap::View;
pub use scan::run_blocking as run_scan_view;

use event_loop::{run_on_screen, LoopEnd, Program, EVENT_BATCH, MEMORY_EVERY};

use crate::app::gallery::Gallery;
use crate::app::job::Observer;
use crate::run::event::Event;
use crate::run::steer::Steer;
use app::{App, AppSetup};
use jobs::{Reply, Workers};
use theme::Theme;
use views::{Origin, Wants};

/// Shortest time between two frames: events and keys that arrive meanwhile are drawn together.
pub const FRAME: Duration = Duration::from_millis(50);

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

/// The dashboard as an [`Observer`]: each event goes into its state ([`App`]), and following a
/// job opens the screen and runs the loop until the user quits or the terminal goes away.
///
/// `steer` is `None` where the training cannot be steered (a fit, a finished run, a read-only
/// watch). With [`Exit::StopTraining`] the stop was already requested through `steer`. A lost
/// terminal (SSH hang-up, SIGHUP) ends the dashboard quietly with [`Exit::LeaveRunning`]; the
/// process keeps going (SIGHUP is handled from then on, so it no longer ends the process).
pub struct Dashboard {
    app: App,
    gallery: Option<Box<dyn Gallery>>,
    graphics: GraphicsChoice,
}

impl Dashboard {
    /// The dashboard of a job in this process, whose events it is handed.
    pub fn live(
        steer: Option<Arc<dyn Steer>>,
        gallery: Box<dyn Gallery>,
        options: DashboardOptions,
    ) -> Dashboard {
        Dashboard::new(Origin::Live, steer, gallery, options)
    }

    /// Runs the dashboard on a run directory possibly written by another process, following its
    /// `metrics.jsonl`, until the user quits or the terminal goes away.
    pub fn watch(
        run_dir: PathBuf,
        steer: Option<Arc<dyn Steer>>,
        gallery: Box<dyn Gallery>,
        options: DashboardOptions,
    ) -> Result<Exit> {
        let mut dashboard = Dashboard::new(Origin::Watch, steer, gallery, options);
        dashboard.app.watched_run = Some(run_dir.clone());
        dashboard.show(Feed::Log(run_dir))
    }

    fn new(
        origin: Origin,
        steer: Option<Arc<dyn Steer>>,
        gallery: Box<dyn Gallery>,
        options: DashboardOptions,
    ) -> Dashboard {
        let app = App::new(AppSetup {
            origin,
            steer,
            theme: Theme::new(options.colors),
            start_view: options.start_view,
            land_in_browser: options.land_in_browser,
            classes: gallery.classes(),
            methods: gallery.methods(),
            layers: gallery.layers(),
            spec: gallery.default_spec(),
        });
        Dashboard {
            app,
            gallery: Some(gallery),
            graphics: options.graphics,
        }
    }

    /// Shows `events` until the user quits or the terminal goes away. Library warnings meanwhile
    /// become notices on the status line instead of being printed over the screen.
    fn show(&mut self, feed: Feed) -> Result<Exit> {
        if !(std::io::stdout().is_terminal()) {
            bail!("the dashboard needs a terminal on standard output (use --headless to train without one)");
        }
        let Some(gallery) = self.gallery.take() else {
            bail!("the dashboard has been shown already");
        };
        let run = run(&mut self.app, feed, gallery, self.graphics);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
                    bail!("the dashboard cannot block a single-threaded tokio runtime");
                }
                tokio::task::block_in_place(|| handle.block_on(run))
            }
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the dashboard's async runtime")?
                .block_on(run),
        }
    }
}

impl Observer for Dashboard {
    fn event(&mut self, event: &Event) {
        self.app.apply(event.clone());
    }

    fn follow(&mut self, events: mpsc::Receiver<Event>) -> Result<Exit> {
        self.show(Feed::Events(events))
    }

    fn survives_hangup(&self) -> bool {
        true
    }
}

/// `events`, with the library's warnings joined in as notices while the returned guard lives.
/// The stream still ends when `events` does: the warnings hold only a weak sender.
fn with_warnings(
    mut events: mpsc::Receiver<Event>,
) -> Result<(mpsc::Receiver<Event>, crate::core::warn::Redirect)> {
    let (sender, merged) = mpsc::channel(EVENT_BATCH);
    let notices = sender.downgrade();
    let redirect = crate::core::warn::redirect(move |message| {
        if let Some(sender) = notices.upgrade() {
            let _ = sender.try_send(Event::Notice {
                message: format!("warning: {message}"),
            });
        }
    });
    std::thread::Builder::new()
        .name("dashboard events".into())
        .spawn(move || {
            while let Some(event) = events.blocking_recv() {
                if sender.blocking_send(event).is_err() {
                    return;
                }
            }
        })
        .context("cannot start the dashboard's event thread")?;
    Ok((merged, redirect))
}

/// Where the dashboard's events come from.
enum Feed {
    /// A job in this process, as it sends them.
    Events(mpsc::Receiver<Event>),
    /// A run directory's `metrics.jsonl`, followed as it grows (on the dashboard's runtime).
    Log(PathBuf),
}

/// The loop on a terminal of its own, until the user quits or the terminal goes away.
async fn run(
    app: &mut App,
    feed: Feed,
    gallery: Box<dyn Gallery>,
    graphics: GraphicsChoice,
) -> Result<Exit> {
    let events = match feed {
        Feed::Events(events) => events,
        Feed::Log(run_dir) => watch::follow(run_dir),
    };
    let (events, _warnings) = with_warnings(events)?;
    let end = run_on_screen(app, Some(events), graphics, |_, graphics, replies| {
        Workers::start(gallery, graphics, replies)
    })
    .await?;
    Ok(match end {
        LoopEnd::Chosen(exit) => exit,
        LoopEnd::TerminalLost => Exit::LeaveRunning,
    })
}

/// The run's dashboard as the loop drives it.
impl Program for App {
    fn apply(&mut self, event: Event) {
        self.apply(event);
    }

    fn source_closed(&mut self) {
        self.source_closed();
    }

    fn notice(&mut self, message: String) {
        self.say(message);
    }

    fn handle_key(&mut self, key: KeyEvent) -> Option<Exit> {
        self.handle_key(key)
    }

    fn apply_reply(&mut self, reply: Reply) {
        self.apply_reply(reply);
    }

    fn draw(&mut self, frame: &mut Frame, wants: &mut Wants) {
        frame::draw(frame, self, wants);
    }

    fn note_layout(&mut self, wants: &Wants) {
        self.note_layout(wants);
    }

    fn work(&mut self, wants: &Wants, workers: &mut Workers) {
        let request = if workers.gallery_busy() {
            None
        } else {
            self.next_request(wants)
        };
        let encoding = self.next_encoding(wants);
        workers.dispatch(request, encoding);
    }

    /// The training's memory, read once a second: this process's when it trains here, the
    /// training process's (the holder of the run's lock) when `watch` follows a run; none once
    /// no process trains it.
    fn tick(&mut self) -> bool {
        let due = self.memory_read.is_none_or(|t| t.elapsed() >= MEMORY_EVERY);
        if !due {
            return false;
        }
        let bytes = match (self.shared.origin, &self.watched_run) {
            (Origin::Live, _) => memory::resident_bytes(),
            (Origin::Watch, Some(run)) => crate::run::RunDir::open(run)
                .ok()
                .and_then(|run| run.live_training())
                .and_then(|holder| memory::resident_bytes_of(holder.pid)),
            _ => return false,
        };
        self.memory_read = Some(Instant::now());
        let changed = bytes != self.shared.memory_bytes;
        self.shared.memory_bytes = bytes;
        changed
    }
}
