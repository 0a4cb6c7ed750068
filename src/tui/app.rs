//! The dashboard's state: updated from training events, gallery replies and key presses; the views
//! only read it. Nothing here touches the terminal, so every behaviour can be driven by tests.

use std::collections::VecDeque;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::Size;

use super::browser::BrowserState;
use super::gallery::{LayerRow, TestItem};
use super::images::{ImageKey, ImageStore};
use super::jobs::{EncodeJob, Reply, Request};
use super::keymap::{self, Action};
use super::steer::Steer;
use super::theme::Theme;
use super::views::{CamSet, ModelState, TrainingState};
use crate::events::Event;
pub use crate::runstate::{Phase, RunState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Training,
    Samples,
    Model,
    Results,
    Browser,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Training,
        View::Samples,
        View::Model,
        View::Results,
        View::Browser,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Training => "Training",
            View::Samples => "Samples",
            View::Model => "Model",
            View::Results => "Results",
            View::Browser => "Browser",
        }
    }

    pub fn index(self) -> usize {
        View::ALL
            .iter()
            .position(|&v| v == self)
            .expect("every view is listed")
    }
}

/// How the dashboard ended, for the caller to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The user quit; no training was running.
    Quit,
    /// The user quit (or the terminal went away) while the training runs on: keep it running.
    LeaveRunning,
    /// The user chose to stop the training; the stop was already requested through the steering,
    /// and the worker ends after a final checkpoint.
    StopTraining,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    /// "Stop the training or leave it running?"
    ConfirmQuit,
    ConfirmStop,
}

/// Something asked of the gallery and its fate.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded<T> {
    Loading,
    Ready(T),
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

/// What the last frame needed, reported by the views while drawing.
#[derive(Debug, Default)]
pub struct Wants {
    /// Pictures drawn, with the cell size they were drawn at.
    pub images: Vec<(ImageKey, Size)>,
    /// Pictures likely needed next (fetched, not encoded).
    pub prefetch: Vec<ImageKey>,
    /// Columns and rows of the browser grid, for paging.
    pub grid: Option<(usize, usize)>,
    /// Rows visible in the model table, for paging.
    pub model_rows: Option<usize>,
    /// Pictures drawn, with their places (see `lingering`).
    pub drawn: Vec<super::lingering::Drawn>,
    /// Pictures wanted that were not ready to draw.
    pub pending: usize,
}

/// Where the events come from: the caller's own training or another process's run directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Live,
    Watch,
}

/// The dashboard: the run as the events describe it (`run`, the reducer shared with the headless
/// printer), what the gallery has delivered, each view's own state, and the frame around them.
pub struct App {
    /// The run, from the training's events.
    pub run: RunState,
    pub view: View,
    pub overlay: Option<Overlay>,
    pub theme: Theme,
    pub status: Option<Status>,
    pub origin: Origin,
    pub source_open: bool,
    /// Steering: whom to ask, and what was asked and not yet seen done.
    steer: Option<Arc<dyn Steer>>,
    pub paused: bool,
    /// Iteration at which the user asked for a checkpoint, until one arrives.
    pub save_requested: Option<usize>,
    pub memory_bytes: Option<u64>,
    /// Switch to the browser when test results arrive (the demo ends there).
    land_in_browser: bool,

    /// From the gallery: class, method and layer names, and what was asked of it.
    pub classes: Vec<String>,
    pub methods: Vec<String>,
    pub layers: Vec<String>,
    /// `Ready(true)`: the tiles are in the image store; `Ready(false)`: the gallery has none.
    pub samples: Loaded<bool>,
    pub summary: Loaded<Vec<LayerRow>>,
    pub items: Loaded<Vec<TestItem>>,
    pub images: ImageStore,
    pending: VecDeque<Request>,

    /// Each view's own state.
    pub training: TrainingState,
    pub model: ModelState,
    pub browser: BrowserState,
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
}

impl App {
    pub fn new(setup: AppSetup) -> App {
        let paused = setup.steer.as_ref().is_some_and(|s| s.paused());
        App {
            run: RunState::default(),
            view: setup.start_view,
            overlay: None,
            theme: setup.theme,
            status: None,
            origin: setup.origin,
            source_open: true,
            steer: setup.steer,
            paused,
            save_requested: None,
            memory_bytes: None,
            land_in_browser: setup.land_in_browser,
            classes: setup.classes,
            methods: setup.methods,
            layers: setup.layers,
            samples: Loaded::Loading,
            summary: Loaded::Loading,
            items: Loaded::Loading,
            images: ImageStore::default(),
            pending: VecDeque::from([Request::Samples, Request::Summary, Request::TestItems]),
            training: TrainingState::default(),
            model: ModelState::default(),
            browser: BrowserState::default(),
        }
    }

    /// Class names: the gallery's, else those of the run.
    pub fn class_names(&self) -> &[String] {
        if self.classes.is_empty() {
            &self.run.start.classes
        } else {
            &self.classes
        }
    }

    pub fn class_name(&self, index: usize) -> String {
        self.class_names()
            .get(index)
            .cloned()
            .unwrap_or_else(|| format!("class {index}"))
    }

    pub fn test_items(&self) -> &[TestItem] {
        match &self.items {
            Loaded::Ready(items) => items,
            _ => &[],
        }
    }

    /// True while a training is going on that quitting would leave behind.
    pub fn training_running(&self) -> bool {
        match self.run.phase {
            Phase::Running => self.source_open || self.origin == Origin::Watch,
            Phase::Waiting => self.origin == Origin::Live && self.source_open,
            _ => false,
        }
    }

    /// Steering is possible: someone to ask, and something running to ask it of.
    pub fn can_steer(&self) -> bool {
        self.steer.is_some() && self.training_running()
    }

    pub fn apply(&mut self, event: Event) {
        self.run.apply(&event);
        // What the dashboard does besides recording the run.
        match event {
            Event::Iteration {
                iteration,
                loss,
                accuracy,
                ..
            } => self
                .training
                .history
                .record_iteration(iteration, loss, accuracy),
            Event::Validation {
                iteration,
                loss,
                accuracy,
                ..
            } => {
                self.training
                    .history
                    .record_validation(iteration, loss, accuracy);
                self.training.cams_due = Some(iteration);
            }
            Event::Checkpoint { .. } => self.save_requested = None,
            Event::Finished { .. } => {
                self.paused = false;
                self.save_requested = None;
            }
            Event::Tested { .. } => {
                // A new test (e.g. with a newer checkpoint) makes earlier pictures stale.
                self.images
                    .retain(|key| !matches!(key, ImageKey::Picture { .. }));
                self.request(Request::TestItems);
                if self.land_in_browser {
                    self.view = View::Browser;
                }
            }
            Event::Failed { .. } => self.paused = false,
            Event::Started(_)
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
        self.source_open = false;
        if self.origin == Origin::Live {
            self.run.stream_ended();
        }
    }

    fn request(&mut self, request: Request) {
        if !self.pending.contains(&request) {
            self.pending.push_back(request);
        }
    }

    fn say(&mut self, text: impl Into<String>) {
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

    /// The next thing to ask of the gallery, by priority: explicit requests, the validation
    /// Grad-CAMs (only while the Training view shows them), pictures on screen, then prefetches.
    pub fn next_request(&mut self, wants: &Wants) -> Option<Request> {
        if let Some(request) = self.pending.pop_front() {
            return Some(request);
        }
        if self.view == View::Training {
            if let Some(iteration) = self.training.cams_due.take() {
                return Some(Request::ValidationCams { iteration });
            }
        }
        let mut wanted = wants
            .images
            .iter()
            .map(|(key, _)| key)
            .chain(&wants.prefetch);
        let (item, spec) = wanted.find_map(|key| match *key {
            ImageKey::Picture { item, spec } if !self.images.contains(key) => Some((item, spec)),
            _ => None,
        })?;
        self.images.mark_requested(ImageKey::Picture { item, spec });
        Some(Request::Picture { item, spec })
    }

    pub fn next_encoding(&mut self, wants: &Wants) -> Option<EncodeJob> {
        if self.images.encoding_busy() {
            return None;
        }
        self.images.next_encoding(&wants.images)
    }

    /// Takes in what the last frame reported about its layout.
    pub fn note_layout(&mut self, wants: &Wants) {
        if let Some((columns, rows)) = wants.grid {
            self.browser.cells = (columns.max(1), rows.max(1));
        }
        if let Some(rows) = wants.model_rows {
            self.model.rows = rows.max(1);
        }
    }

    pub fn apply_reply(&mut self, reply: Reply) {
        match reply {
            Reply::Samples(result) => {
                self.samples = match result {
                    Ok(Some(image)) => {
                        self.images.put(ImageKey::Samples, Ok(image));
                        Loaded::Ready(true)
                    }
                    Ok(None) => Loaded::Ready(false),
                    Err(message) => Loaded::Failed(message),
                }
            }
            Reply::Summary(result) => self.summary = loaded(result),
            Reply::TestItems(result) => {
                self.items = loaded(result);
                if let Loaded::Ready(items) = &self.items {
                    self.browser.rebuild(items);
                }
            }
            Reply::Picture { item, spec, result } => {
                self.images.put(ImageKey::Picture { item, spec }, result)
            }
            Reply::Saved(result) => match result {
                Ok(path) => self.say(format!("saved {}", path.display())),
                Err(message) => self.complain(format!("cannot save the picture: {message}")),
            },
            Reply::ValidationCams { iteration, result } => match result {
                Ok(cams) => {
                    let mut captions = Vec::with_capacity(cams.len());
                    for (index, (image, caption)) in cams.into_iter().enumerate() {
                        self.images
                            .put(ImageKey::ValidationCam { iteration, index }, Ok(image));
                        captions.push(caption);
                    }
                    self.images.retain(|key| match key {
                        ImageKey::ValidationCam { iteration: i, .. } => *i == iteration,
                        _ => true,
                    });
                    self.training.cams = Some(CamSet {
                        iteration,
                        captions,
                    });
                    self.training.cams_error = None;
                }
                Err(message) => self.training.cams_error = Some(message),
            },
            Reply::Encoded { key, size, result } => self.images.put_encoding(key, size, result),
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
            action => match self.view {
                View::Training => self.training_action(action),
                View::Model => self.model_action(action),
                View::Browser => self.browser_action(action),
                View::Samples | View::Results => {}
            },
        }
        None
    }

    fn quit(&mut self) -> Option<Exit> {
        if self.can_steer() {
            self.overlay = Some(Overlay::ConfirmQuit);
            None
        } else if self.training_running() {
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
                self.paused = false;
                true
            }
            Err(e) => {
                self.complain(format!("{e:#}"));
                false
            }
        }
    }

    fn training_action(&mut self, action: Action) {
        let Some(steer) = self.steer.clone().filter(|_| self.training_running()) else {
            self.complain(self.no_steering_reason());
            return;
        };
        match action {
            Action::Pause => {
                let paused = !self.paused;
                match steer.set_paused(paused) {
                    Ok(()) => {
                        self.paused = paused;
                        self.say(if paused {
                            "pause requested: the training waits after the current iteration"
                        } else {
                            "resumed"
                        });
                    }
                    Err(e) => self.complain(format!("{e:#}")),
                }
            }
            Action::Stop => self.overlay = Some(Overlay::ConfirmStop),
            Action::SaveCheckpoint => match steer.save_now() {
                Ok(()) => {
                    self.save_requested = Some(self.run.progress.iteration);
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
        } else if matches!(self.run.phase, Phase::Waiting) {
            "no training has started yet"
        } else {
            "the training is over: nothing to steer"
        }
    }

    fn model_action(&mut self, action: Action) {
        let rows = match &self.summary {
            Loaded::Ready(rows) => rows.len(),
            _ => 0,
        };
        let model = &mut self.model;
        let last = rows.saturating_sub(model.rows);
        model.scroll = match action {
            Action::Down => model.scroll + 1,
            Action::Up => model.scroll.saturating_sub(1),
            Action::PageDown => model.scroll + model.rows,
            Action::PageUp => model.scroll.saturating_sub(model.rows),
            Action::First => 0,
            Action::Last => last,
            _ => model.scroll,
        }
        .min(last);
    }

    fn browser_action(&mut self, action: Action) {
        // Picture settings work before the test items arrive; moving over none does nothing.
        let items = self.test_items().to_vec();
        let classes = self.class_names().len();
        let (columns, rows) = self.browser.cells;
        let page = if self.browser.grid {
            (columns * rows) as isize
        } else {
            10
        };
        let browser = &mut self.browser;
        match action {
            Action::Next => browser.step(1),
            Action::Previous => browser.step(-1),
            Action::Down if browser.grid => browser.step(columns as isize),
            Action::Up if browser.grid => browser.step(-(columns as isize)),
            Action::PageDown => browser.step(page),
            Action::PageUp => browser.step(-page),
            Action::First => browser.first(),
            Action::Last => browser.last(),
            Action::ToggleGrid => browser.grid = !browser.grid,
            Action::NextMisclassified => {
                let found = browser.next_misclassified(&items);
                if !found {
                    self.say("no misclassified image among those shown");
                }
            }
            Action::FilterTruth => browser.cycle_truth_filter(classes, &items),
            Action::FilterPredicted => browser.cycle_predicted_filter(classes, &items),
            Action::CycleOrder => browser.cycle_order(&items),
            Action::ToggleOverlay => browser.spec.overlay = !browser.spec.overlay,
            Action::MoreOpaque => browser.change_alpha(true),
            Action::LessOpaque => browser.change_alpha(false),
            Action::CycleMethod => browser.cycle_method(self.methods.len()),
            Action::CycleLayer => browser.cycle_layer(self.layers.len()),
            Action::CycleExplainedClass => browser.cycle_explained_class(classes),
            Action::SavePicture => match browser.selected() {
                Some(item) => {
                    let spec = browser.spec;
                    self.request(Request::Save { item, spec });
                    self.say("saving the picture…");
                }
                None => self.complain("no picture selected"),
            },
            _ => {}
        }
    }
}

fn loaded<T>(result: Result<T, String>) -> Loaded<T> {
    match result {
        Ok(value) => Loaded::Ready(value),
        Err(message) => Loaded::Failed(message),
    }
}
