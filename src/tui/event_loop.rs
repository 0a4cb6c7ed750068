//! The one loop every full-screen view runs: the run's dashboard and the scan view alike. It
//! owns the terminal and draws at most once a [`FRAME`](super::FRAME) from the [`Program`] it
//! drives; around it, threads and tasks joined by channels: the event source (a live job's
//! events, or a run's log followed), the keyboard reader (`input`), and the slow picture work
//! (`jobs`: the gallery, the encoder, the scan view's painter). Nothing in it knows which view it
//! drives.

use std::time::Duration;

use anyhow::Result;
use crossterm::event::KeyEvent;
use ratatui::backend::Backend;
use ratatui::{Frame, Terminal};
use tokio::sync::mpsc;

use super::images::GraphicsChoice;
use super::input::Input;
use super::jobs::{Reply, Workers};
use super::lingering::{self, FramePictures, Lingering};
use super::screen::{Screen, Signals};
use super::terminal::TerminalSession;
use super::views::Wants;
use super::FRAME;
use crate::app::job::Exit;
use crate::run::event::Event;
use crate::termio::{tmux, Graphics, Protocol};

/// What the loop drives: a view that takes events, keys and picture work's replies, draws itself,
/// and hands the workers what it wants next.
pub trait Program {
    /// An event of the run.
    fn apply(&mut self, _event: Event) {}

    /// The event source ended.
    fn source_closed(&mut self) {}

    /// Something the user should know about how the terminal shows pictures (too few colours),
    /// for the view's status line.
    fn notice(&mut self, _message: String) {}

    /// A key; `Some` ends the view.
    fn handle_key(&mut self, key: KeyEvent) -> Option<Exit>;

    /// An answer from the workers.
    fn apply_reply(&mut self, reply: Reply);

    /// Draws a frame, reporting in `wants` what it drew (pictures with their places, so that
    /// those a later frame no longer shows are taken away) and would like next.
    fn draw(&mut self, frame: &mut Frame, wants: &mut Wants);

    /// Takes in what the frame just drawn reported.
    fn note_layout(&mut self, wants: &Wants);

    /// Hands the workers the next work the last frame asked for, where they are idle.
    fn work(&mut self, wants: &Wants, workers: &mut Workers);

    /// Called every frame; true when something changed that needs a redraw (a memory reading).
    fn tick(&mut self) -> bool {
        false
    }
}

pub struct Channels {
    pub events: mpsc::Receiver<Event>,
    pub keys: mpsc::UnboundedReceiver<Input>,
    pub replies: mpsc::UnboundedReceiver<Reply>,
    pub events_open: bool,
    pub replies_open: bool,
}

pub enum LoopEnd {
    Chosen(Exit),
    /// Hang-up, unwritable or unreadable terminal, or a panic elsewhere that restored it.
    TerminalLost,
}

/// Events applied per wake-up before drawing again, so a long log read back by `watch` still lets
/// keys through.
pub const EVENT_BATCH: usize = 4096;

/// Takes the terminal, starts `program`'s workers with how the terminal draws pictures (`start`),
/// runs the loop on the `events` (none: the view has no run) until the program ends or the
/// terminal is gone, and hands the terminal back.
pub async fn run_on_screen<P: Program>(
    program: &mut P,
    events: Option<mpsc::Receiver<Event>>,
    graphics: GraphicsChoice,
    start: impl FnOnce(&mut P, Graphics, mpsc::UnboundedSender<Reply>) -> Result<Workers>,
) -> Result<LoopEnd> {
    let (mut screen, keys, graphics) = Screen::open(graphics)?;
    if let Some(note) = &graphics.note {
        program.notice(format!("note: {note}"));
    }
    let (reply_sender, replies) = mpsc::unbounded_channel();
    let workers = start(program, graphics.clone(), reply_sender)?;
    let events_open = events.is_some();
    // Without a run, a source already closed: its branch of the loop never wakes.
    let events = events.unwrap_or_else(|| mpsc::channel(1).1);
    let channels = Channels {
        events,
        keys,
        replies,
        events_open,
        replies_open: true,
    };
    let end = event_loop(
        &mut screen.session.terminal,
        program,
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
    Ok(end)
}

/// Runs `program` until it ends or the terminal is gone.
pub async fn event_loop<B: Backend, P: Program>(
    terminal: &mut Terminal<B>,
    program: &mut P,
    mut channels: Channels,
    mut workers: Workers,
    signals: &mut Signals,
    graphics: &Graphics,
) -> LoopEnd {
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut wants = Wants::default();
    let mut dirty = true;
    let mut lingering = Lingering::default();
    loop {
        if TerminalSession::panicked() {
            return LoopEnd::TerminalLost;
        }
        tokio::select! {
            event = channels.events.recv(), if channels.events_open => {
                match event {
                    Some(event) => {
                        program.apply(event);
                        for _ in 0..EVENT_BATCH {
                            match channels.events.try_recv() {
                                Ok(event) => program.apply(event),
                                Err(_) => break,
                            }
                        }
                    }
                    None => {
                        channels.events_open = false;
                        program.source_closed();
                    }
                }
                dirty = true;
            }
            input = channels.keys.recv() => match input {
                Some(Input::Key(key)) => {
                    if let Some(exit) = program.handle_key(key) {
                        return LoopEnd::Chosen(exit);
                    }
                    dirty = true;
                }
                Some(Input::Lost) | None => return LoopEnd::TerminalLost,
            },
            reply = channels.replies.recv(), if channels.replies_open => match reply {
                Some(reply) => {
                    workers.received(&reply);
                    program.apply_reply(reply);
                    dirty = true;
                }
                // The workers are gone; their last words came as replies.
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
                dirty |= program.tick();
                if dirty {
                    // A terminal that cannot be written to is gone (SSH hang-up): end quietly.
                    let drawn = lingering::draw_frame(terminal, &mut lingering, |f| {
                        wants = Wants::default();
                        program.draw(f, &mut wants);
                        FramePictures {
                            drawn: std::mem::take(&mut wants.drawn),
                            pending: wants.pending,
                        }
                    });
                    if drawn.is_err() {
                        return LoopEnd::TerminalLost;
                    }
                    program.note_layout(&wants);
                    dirty = false;
                }
                program.work(&wants, &mut workers);
            }
        }
    }
}

/// How often a live dashboard reads the process's memory.
pub const MEMORY_EVERY: Duration = Duration::from_secs(1);
