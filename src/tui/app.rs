//! The dashboard around its screens: the tabs and which is shown, the overlay (help, questions),
//! the status line, steering, and the run and gallery deliveries every screen reads
//! ([`Shared`]). Events, gallery replies and keys come in here; keys of a screen's own go to that
//! screen, and what it asks back ([`Effect`]) is done here. Nothing here touches the terminal,
//! so every behaviour can be driven by tests.

use std::collections::VecDeque;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use std::time::Instant;

use super::images::{ImageKey, ImageStore};
use super::jobs::{EncodeJob, Reply, Request};
use super::keymap::{self, Action, View};
use super::theme::Theme;
use super::views::{Effect, Loaded, Origin, Shared, Tabs, Wants};
use crate::app::gallery::PictureSpec;
use crate::run::event::Event;
pub use crate::run::state::Phase;
use crate::run::state::RunState;
use crate::run::steer::Steer;

pub use crate::app::job::Exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    /// "Stop the training or leave it running?"
    ConfirmQuit,
    ConfirmStop,
}

#[derive(Debug, Clone)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

/// The dashboard: its tabs, the frame around them, and what the screens share.
pub struct App {
    /// The run, the gallery's deliveries and the picture settings.
    pub shared: Shared,
    pub tabs: Tabs,
    /// The tab shown.
    pub view: View,
    pub overlay: Option<Overlay>,
    pub status: Option<Status>,
    /// Steering: whom to ask.
    steer: Option<Arc<dyn Steer>>,
    /// Switch to the browser when test results arrive (the demo ends there).
    land_in_browser: bool,
    pending: VecDeque<Request>,
    /// When the training's memory was last read (live runs show it).
    pub memory_read: Option<Instant>,
    /// The run directory `watch` follows: its training process's memory is shown.
    pub watched_run: Option<std::path::PathBuf>,
}

pub struct AppSetup {
    pub origin: Origin,
    pub steer: Option<Arc<dyn Steer>>,
    pub theme: Theme,
    pub start_view: View,
    pub land_in_browser: bool,
    pub classes: Vec<String>,
    pub methods: Vec<String>,
    pub layers: Vec<String>,
    /// How the browser draws its first picture.
    pub spec: PictureSpec,
}

impl App {
    pub fn new(setup: AppSetup) -> App {
        let paused = setup.steer.as_ref().is_some_and(|s| s.paused());
        App {
            shared: Shared {
                run: RunState::default(),
                origin: setup.origin,
                source_open: true,
                theme: setup.theme,
                classes: setup.classes,
                methods: setup.methods,
                layers: setup.layers,
                samples: Loaded::Loading,
                summary: Loaded::Loading,
                items: Loaded::Loading,
                images: ImageStore::default(),
                spec: setup.spec,
                steerable: setup.steer.is_some(),
                paused,
                save_requested: None,
                memory_bytes: None,
            },
            tabs: Tabs::training(),
            view: setup.start_view,
            overlay: None,
            status: None,
            steer: setup.steer,
            land_in_browser: setup.land_in_browser,
            pending: VecDeque::from([Request::Samples, Request::Summary, Request::TestItems]),
            memory_read: None,
            watched_run: None,
        }
    }

    /// The screen shown.
    pub fn screen(&self) -> &dyn super::views::Component {
        self.tabs.screen(self.view)
    }

    pub fn apply(&mut self, event: Event) {
        let was_fit = self.shared.run.one_class.is_some();
        self.shared.run.apply(&event);
        if !was_fit && self.shared.run.one_class.is_some() {
            // A one-class fit: its own Training and Results screens, and the browser's facts.
            self.tabs = Tabs::fit();
        }
        for screen in self.tabs.each_mut() {
            screen.event(&event);
        }
        // What the app does besides recording the run.
        match event {
            Event::Checkpoint { .. } => self.shared.save_requested = None,
            Event::Finished { .. } => {
                self.shared.paused = false;
                self.shared.save_requested = None;
            }
            Event::Tested { .. } => {
                // A new test (e.g. with a newer checkpoint) makes earlier pictures stale.
                self.shared
                    .images
                    .retain(|key| !matches!(key, ImageKey::Picture { .. }));
                self.request(Request::TestItems);
                if self.land_in_browser {
                    self.view = View::Browser;
                }
            }
            Event::Failed { .. } => self.shared.paused = false,
            Event::Started(_)
            | Event::Iteration { .. }
            | Event::Validation { .. }
            | Event::Epoch { .. }
            | Event::Notice { .. }
            | Event::FitStarted(_)
            | Event::Fitting { .. }
            | Event::Fitted { .. }
            | Event::AnomalyScored(_) => {}
        }
    }

    /// The event stream ended (the training's sender is gone).
    pub fn source_closed(&mut self) {
        self.shared.source_open = false;
        if self.shared.origin == Origin::Live {
            self.shared.run.stream_ended();
        }
    }

    fn request(&mut self, request: Request) {
        if !self.pending.contains(&request) {
            self.pending.push_back(request);
        }
    }

    /// Says `text` on the status line until the next key: above the run's notices, which a
    /// run's log replays at once.
    pub fn say(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
        });
    }

    fn complain(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
        });
    }

    /// The next thing to ask of the gallery, by priority: explicit requests, what the screen
    /// shown wants (the validation Grad-CAMs), pictures on screen, then prefetches.
    pub fn next_request(&mut self, wants: &Wants) -> Option<Request> {
        if let Some(request) = self.pending.pop_front() {
            return Some(request);
        }
        if let Some(request) = self.tabs.screen_mut(self.view).request() {
            return Some(request);
        }
        let mut wanted = wants
            .images
            .iter()
            .map(|(key, _)| key)
            .chain(&wants.prefetch);
        let images = &mut self.shared.images;
        let (item, spec) = wanted.find_map(|key| match *key {
            ImageKey::Picture { item, spec } if !images.contains(key) => Some((item, spec)),
            _ => None,
        })?;
        images.mark_requested(ImageKey::Picture { item, spec });
        Some(Request::Picture { item, spec })
    }

    pub fn next_encoding(&mut self, wants: &Wants) -> Option<EncodeJob> {
        if self.shared.images.encoding_busy() {
            return None;
        }
        self.shared.images.next_encoding(&wants.images)
    }

    /// Takes in what the last frame reported about its layout.
    pub fn note_layout(&mut self, wants: &Wants) {
        for screen in self.tabs.each_mut() {
            screen.note_layout(wants);
        }
    }

    pub fn apply_reply(&mut self, reply: Reply) {
        // An encoding only goes into the image store (pictures are made once, not copied).
        let reply = match reply {
            Reply::Encoded { key, size, result } => {
                self.shared.images.put_encoding(key, size, result);
                return;
            }
            reply => reply,
        };
        let shared = &mut self.shared;
        match &reply {
            Reply::Samples(result) => {
                shared.samples = match result {
                    Ok(Some(image)) => {
                        shared.images.put(ImageKey::Samples, Ok(image.clone()));
                        Loaded::Ready(true)
                    }
                    Ok(None) => Loaded::Ready(false),
                    Err(message) => Loaded::Failed(message.clone()),
                }
            }
            Reply::Summary(result) => shared.summary = Loaded::of(result.clone()),
            Reply::TestItems(result) => shared.items = Loaded::of(result.clone()),
            Reply::Picture { item, spec, result } => shared.images.put(
                ImageKey::Picture {
                    item: *item,
                    spec: *spec,
                },
                result.clone(),
            ),
            Reply::Saved(result) => match result {
                Ok(path) => self.say(format!("saved {}", path.display())),
                Err(message) => self.complain(format!("cannot save the picture: {message}")),
            },
            Reply::ValidationCams { .. } | Reply::Painted(_) | Reply::Encoded { .. } => {}
        }
        for screen in self.tabs.each_mut() {
            screen.reply(&reply, &mut self.shared);
        }
    }

    /// Reacts to a key; `Some` ends the dashboard.
    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Exit> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        if let Some(overlay) = self.overlay {
            let ctrl_c =
                key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
            return self.overlay_key(overlay, key.code, ctrl_c);
        }
        let action = keymap::action_for(self.view, key);
        if action == Some(Action::Quit) {
            return self.quit();
        }
        // Any other key, bound or not, dismisses the last message.
        self.status = None;
        let action = action?;
        let views = View::ALL.len();
        match action {
            Action::Help => self.overlay = Some(Overlay::Help),
            Action::NextView => self.view = View::ALL[(self.view.index() + 1) % views],
            Action::PreviousView => self.view = View::ALL[(self.view.index() + views - 1) % views],
            Action::ShowView(view) => self.view = view,
            action => {
                let effects = self
                    .tabs
                    .screen_mut(self.view)
                    .handle(action, &mut self.shared);
                for effect in effects {
                    self.effect(effect);
                }
            }
        }
        None
    }

    /// Does what a screen asked.
    fn effect(&mut self, effect: Effect) {
        match effect {
            Effect::Say(text) => self.say(text),
            Effect::Complain(text) => self.complain(text),
            Effect::Ask(request) => self.request(request),
            Effect::TogglePause | Effect::ConfirmStop | Effect::SaveCheckpoint => {
                self.steer(effect)
            }
        }
    }

    fn quit(&mut self) -> Option<Exit> {
        if self.shared.can_steer() {
            self.overlay = Some(Overlay::ConfirmQuit);
            None
        } else if self.shared.training_running() {
            Some(Exit::LeaveRunning)
        } else {
            Some(Exit::Quit)
        }
    }

    fn overlay_key(&mut self, overlay: Overlay, code: KeyCode, ctrl_c: bool) -> Option<Exit> {
        match overlay {
            Overlay::Help => self.overlay = None,
            Overlay::ConfirmQuit => match code {
                KeyCode::Char('s') => {
                    return match self.stop_training() {
                        true => Some(Exit::StopTraining),
                        false => {
                            self.overlay = None;
                            None
                        }
                    };
                }
                KeyCode::Char('l') | KeyCode::Char('q') => return Some(Exit::LeaveRunning),
                _ if ctrl_c => return Some(Exit::LeaveRunning),
                _ => self.overlay = None,
            },
            Overlay::ConfirmStop => {
                self.overlay = None;
                if code == KeyCode::Char('y') && self.stop_training() {
                    self.say("stop requested: the training ends after a final checkpoint");
                }
            }
        }
        None
    }

    fn stop_training(&mut self) -> bool {
        let Some(steer) = self.steer.clone() else {
            return false;
        };
        match steer.stop() {
            Ok(()) => {
                self.shared.paused = false;
                true
            }
            Err(e) => {
                self.complain(format!("{e:#}"));
                false
            }
        }
    }

    /// Pause, stop or a checkpoint, asked by the Training tab.
    fn steer(&mut self, effect: Effect) {
        let Some(steer) = self
            .steer
            .clone()
            .filter(|_| self.shared.training_running())
        else {
            self.complain(self.no_steering_reason());
            return;
        };
        match effect {
            Effect::TogglePause => {
                let paused = !self.shared.paused;
                match steer.set_paused(paused) {
                    Ok(()) => {
                        self.shared.paused = paused;
                        self.say(if paused {
                            "pause requested: the training waits after the current iteration"
                        } else {
                            "resumed"
                        });
                    }
                    Err(e) => self.complain(format!("{e:#}")),
                }
            }
            Effect::ConfirmStop => self.overlay = Some(Overlay::ConfirmStop),
            Effect::SaveCheckpoint => match steer.save_now() {
                Ok(()) => {
                    self.shared.save_requested = Some(self.shared.run.progress.iteration);
                    self.say("a checkpoint will be written after the current iteration");
                }
                Err(e) => self.complain(format!("{e:#}")),
            },
            _ => {}
        }
    }

    /// Why p/s/c do nothing here, in the user's terms.
    pub fn no_steering_reason(&self) -> &'static str {
        if self.steer.is_none() {
            "this dashboard cannot steer the training (read-only)"
        } else if matches!(self.shared.run.phase, Phase::Waiting) {
            "no training has started yet"
        } else {
            "the training is over: nothing to steer"
        }
    }
}
