//! Whole-dashboard tests: a recorded run's events and the fake gallery drive the real state, the
//! real worker threads and the real views, drawn on ratatui's TestBackend with half-block pictures.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::app::{App, AppSetup, Exit};
use super::fake::FakeGallery;
use super::images::ImageKey;
use super::input::Input;
use super::jobs::{Reply, Workers};
use super::keymap::View;
use super::theme::Theme;
use super::views::{Origin, Wants};
use crate::app::gallery::Gallery;
use crate::run::event::{Event, RunStart};
use crate::run::recipe::OutputNetwork;
use crate::run::steer::Steer;
use crate::termio::Graphics;

/// A realistic run as a training worker reports it: 2 classes, `epochs` x 20 iterations of batch
/// 32, validation every 10 iterations with a checkpoint when it improves, a notice, and (when
/// `finished`) the end and the test results.
pub fn recorded_run(epochs: usize, finished: bool) -> Vec<Event> {
    let per_epoch = 20;
    let classes = vec!["Negative".to_string(), "Positive".to_string()];
    let mut events = vec![Event::Started(RunStart {
        run: "runs/demo".into(),
        device: "cpu".into(),
        classes: classes.clone(),
        train_per_class: vec![320, 320],
        val_per_class: vec![40, 40],
        test_per_class: vec![100, 100],
        batch_size: 32,
        epochs,
        iterations_per_epoch: per_epoch,
        start_iteration: 0,
        learning_rate: 2e-4,
        ..RunStart::default()
    })];
    events.push(Event::Notice {
        message: "3 unreadable files skipped".into(),
    });
    let mut best = 0.0f32;
    for iteration in 1..=epochs * per_epoch {
        let t = iteration as f32;
        let epoch = (iteration - 1) / per_epoch + 1;
        let wobble = if iteration % 3 == 0 { 0.05 } else { -0.03 };
        events.push(Event::Iteration {
            epoch,
            iteration,
            loss: 0.7 * (-t / 15.0).exp() + 0.05 + wobble,
            accuracy: (1.0 - 0.5 * (-t / 10.0).exp() + wobble).min(1.0),
            learning_rate: 2e-4,
            images_per_s: 48.5,
            elapsed_s: 0.66 * t as f64,
        });
        if iteration % 10 == 0 {
            let accuracy = 1.0 - 0.45 * (-t / 12.0).exp();
            events.push(Event::Validation {
                epoch,
                iteration,
                loss: 0.6 * (-t / 14.0).exp() + 0.06,
                accuracy,
                elapsed_s: 0.66 * t as f64 + 0.2,
            });
            if accuracy > best {
                best = accuracy;
                events.push(Event::Checkpoint {
                    iteration,
                    path: format!("runs/demo/checkpoints/iter-{iteration:05}.safetensors").into(),
                    best: true,
                    val_accuracy: Some(accuracy),
                });
            }
        }
        if iteration % per_epoch == 0 {
            events.push(Event::Epoch {
                epoch,
                iteration,
                elapsed_s: 0.66 * t as f64 + 0.3,
            });
        }
    }
    if finished {
        events.push(Event::Finished {
            iteration: epochs * per_epoch,
            best_val_accuracy: Some(best),
            stopped_early: false,
            elapsed_s: 0.66 * (epochs * per_epoch) as f64 + 1.0,
        });
        events.push(Event::Tested {
            accuracy: 0.975,
            confusion: vec![vec![97, 3], vec![2, 98]],
            classes,
            sources: Vec::new(),
        });
    }
    events
}

/// Records the requests it receives.
#[derive(Default)]
pub struct RecordingSteer {
    pub calls: Mutex<Vec<&'static str>>,
    paused: AtomicBool,
}

impl Steer for RecordingSteer {
    fn set_paused(&self, paused: bool) -> Result<()> {
        self.paused.store(paused, Ordering::SeqCst);
        self.calls
            .lock()
            .unwrap()
            .push(if paused { "pause" } else { "resume" });
        Ok(())
    }
    fn stop(&self) -> Result<()> {
        self.calls.lock().unwrap().push("stop");
        Ok(())
    }
    fn save_now(&self) -> Result<()> {
        self.calls.lock().unwrap().push("save");
        Ok(())
    }
    fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }
}

/// The dashboard without a real terminal: same state, worker threads and views as `run`.
pub struct Harness {
    pub app: App,
    workers: Workers,
    replies: tokio::sync::mpsc::UnboundedReceiver<Reply>,
    terminal: Terminal<TestBackend>,
    wants: Wants,
    pub steer: Arc<RecordingSteer>,
    pub gallery_calls: Arc<Mutex<Vec<String>>>,
}

/// Variations of the harness.
pub struct Setup {
    pub steerable: bool,
    pub colors: bool,
    /// Test items of the fake gallery (0: an untested run).
    pub items: usize,
    pub failing_gallery: bool,
    /// The fake gallery of a one-class run.
    pub one_class: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            steerable: true,
            colors: true,
            items: 24,
            failing_gallery: false,
            one_class: false,
        }
    }
}

impl Harness {
    pub fn new(width: u16, height: u16, origin: Origin, events: Vec<Event>) -> Harness {
        Harness::with(width, height, origin, events, Setup::default())
    }

    pub fn with(
        width: u16,
        height: u16,
        origin: Origin,
        events: Vec<Event>,
        setup: Setup,
    ) -> Harness {
        let Setup {
            steerable,
            colors,
            items,
            failing_gallery,
            one_class,
        } = setup;
        let mut gallery = if one_class {
            FakeGallery::one_class(items)
        } else {
            FakeGallery::new(items)
        };
        gallery.failing = failing_gallery;
        let gallery_calls = Arc::clone(&gallery.calls);
        let steer = Arc::new(RecordingSteer::default());
        let mut app = App::new(AppSetup {
            origin,
            steer: steerable.then(|| Arc::clone(&steer) as Arc<dyn Steer>),
            theme: Theme::new(colors),
            start_view: View::Training,
            land_in_browser: false,
            classes: gallery.classes(),
            methods: gallery.methods(),
            layers: gallery.layers(),
            spec: Default::default(),
        });
        for event in events {
            app.apply(event);
        }
        let (sender, replies) = tokio::sync::mpsc::unbounded_channel();
        let workers = Workers::start(Box::new(gallery), Graphics::halfblocks(), sender).unwrap();
        let terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        Harness {
            app,
            workers,
            replies,
            terminal,
            wants: Wants::default(),
            steer,
            gallery_calls,
        }
    }

    fn draw(&mut self) {
        self.wants = Wants::default();
        let (app, wants) = (&self.app, &mut self.wants);
        self.terminal
            .draw(|f| super::frame::draw(f, app, wants))
            .unwrap();
        self.app.note_layout(&self.wants);
    }

    /// Draws, then lets the workers answer everything the frame asked for, and draws again, until
    /// nothing is left to do; returns the screen.
    pub fn settle(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.draw();
            let request = if self.workers.gallery_busy() {
                None
            } else {
                self.app.next_request(&self.wants)
            };
            let encoding = self.app.next_encoding(&self.wants);
            let idle = request.is_none() && encoding.is_none();
            self.workers.dispatch(request, encoding);
            if idle && !self.workers.gallery_busy() && !self.app.shared.images.encoding_busy() {
                return self.screen();
            }
            loop {
                assert!(
                    Instant::now() < deadline,
                    "the dashboard did not settle:\n{}",
                    self.screen()
                );
                match self.replies.try_recv() {
                    Ok(reply) => {
                        self.workers.received(&reply);
                        self.app.apply_reply(reply);
                        break;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        }
    }

    pub fn press(&mut self, code: KeyCode) -> Option<Exit> {
        let modifiers = match code {
            KeyCode::Char(c) if c.is_uppercase() => KeyModifiers::SHIFT,
            _ => KeyModifiers::NONE,
        };
        self.app.handle_key(KeyEvent::new(code, modifiers))
    }

    pub fn screen(&self) -> String {
        let buffer = self.terminal.backend().buffer();
        let width = buffer.area.width as usize;
        buffer
            .content
            .chunks(width)
            .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether any cell shows a half-block picture (the only cells with RGB colours: the
    /// dashboard's own styles use named colours).
    pub fn shows_picture(&self) -> bool {
        self.terminal
            .backend()
            .buffer()
            .content
            .iter()
            .any(is_picture)
    }

    /// Whether the dashboard itself (pictures aside) coloured any cell.
    pub fn buffer_has_colours(&self) -> bool {
        use ratatui::style::Color;
        self.terminal
            .backend()
            .buffer()
            .content
            .iter()
            .filter(|c| !is_picture(c))
            .any(|c| c.fg != Color::Reset || c.bg != Color::Reset)
    }
}

fn is_picture(cell: &ratatui::buffer::Cell) -> bool {
    use ratatui::style::Color;
    matches!(cell.fg, Color::Rgb(..)) || matches!(cell.bg, Color::Rgb(..))
}

const SIZES: [(u16, u16); 2] = [(80, 24), (140, 45)];

fn finished() -> Vec<Event> {
    recorded_run(3, true)
}

#[test]
fn training_view_shows_progress_charts_checkpoint_and_grad_cams() {
    for (w, h) in SIZES {
        let mut ui = Harness::new(w, h, Origin::Live, recorded_run(3, false));
        let screen = ui.settle();
        for text in [
            "1 Training",
            "5 Browser",
            "Epoch 3/3",
            "Iteration 60/60",
            "ETA 0s",
            "run runs/demo",
            "48.5 img/s",
            "lr 2.0e-4",
            "device cpu",
            "memory",
            "checkpoint iteration 60 (best)",
            "Accuracy % · smoothed 98.1 · validation 99.7",
            "Loss · smoothed 0.070 · validation 0.068",
            "Loss",
            "validation",
            "trend  loss",
            "Grad-CAM @ 60",
            "note: 3 unreadable files skipped",
            "p pause",
            "s stop",
            "c checkpoint",
            "q quit",
            "running",
        ] {
            assert!(
                screen.contains(text),
                "{w}x{h}: {text:?} missing in\n{screen}"
            );
        }
        assert!(
            ui.shows_picture(),
            "{w}x{h}: no validation Grad-CAM drawn\n{screen}"
        );
        assert!(ui
            .gallery_calls
            .lock()
            .unwrap()
            .contains(&"validation_cams 60".to_string()));
        // Braille chart points are drawn.
        assert!(
            screen
                .chars()
                .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)),
            "{screen}"
        );
    }
}

#[test]
fn training_grad_cam_captions_shorten_instead_of_being_cut() {
    // At 120 columns two pictures share the panel's width and their full captions do not fit:
    // each used to lose both ends and run into its neighbour ("ative -> Negative 0itive").
    for (w, h) in [(120, 40), (140, 45)] {
        let mut ui = Harness::new(w, h, Origin::Live, recorded_run(3, false));
        let screen = ui.settle();
        for (whole, short) in [
            ("Negative→Positive 0.60", "Neg→Pos 0.60"),
            ("Positive→Negative 0.60", "Pos→Neg 0.60"),
        ] {
            assert!(
                screen.contains(whole) || screen.contains(short),
                "{w}x{h}: {whole:?} cut in\n{screen}"
            );
        }
    }
}

#[test]
fn training_view_mid_run_shows_eta_and_a_finished_run_is_read_only() {
    let mut events = recorded_run(3, false);
    let cut = events
        .iter()
        .position(|e| matches!(e, Event::Iteration { iteration: 30, .. }))
        .unwrap();
    events.truncate(cut + 1);
    let mut ui = Harness::new(80, 24, Origin::Live, events);
    let screen = ui.settle();
    // 30 iterations left at 0.66 s each.
    assert!(
        screen.contains("Iteration 30/60") && screen.contains("ETA 20s"),
        "{screen}"
    );
    assert!(screen.contains("50.0%"), "progress gauge\n{screen}");

    let mut ui = Harness::new(80, 24, Origin::Watch, finished());
    let screen = ui.settle();
    assert!(
        screen.contains("finished") && screen.contains("best validation"),
        "{screen}"
    );
    // A run that keeps its last model does not show the best validation as its figure.
    let mut keeps_last = finished();
    if let Event::Started(start) = &mut keeps_last[0] {
        start.output_network = OutputNetwork::LastIteration;
    }
    let screen = Harness::new(80, 24, Origin::Watch, keeps_last).settle();
    assert!(
        screen.contains("model kept the last iteration's") && !screen.contains("best validation"),
        "{screen}"
    );
    assert!(
        !screen.contains("p pause"),
        "no steering keys on a finished run\n{screen}"
    );
    assert_eq!(ui.press(KeyCode::Char('p')), None);
    let screen = ui.settle();
    assert!(
        screen.contains("the training is over: nothing to steer"),
        "{screen}"
    );
    assert!(ui.steer.calls.lock().unwrap().is_empty());
}

#[test]
fn waiting_view_before_any_event() {
    let mut ui = Harness::new(80, 24, Origin::Watch, vec![]);
    let screen = ui.settle();
    assert!(
        screen.contains("Waiting for events in the run's metrics.jsonl"),
        "{screen}"
    );
    assert!(screen.contains("waiting"), "{screen}");
}

#[test]
fn samples_view_draws_the_tiles() {
    for (w, h) in SIZES {
        let mut ui = Harness::new(w, h, Origin::Live, recorded_run(1, false));
        ui.press(KeyCode::Char('2'));
        let screen = ui.settle();
        assert!(screen.contains("Samples of the dataset"), "{screen}");
        assert!(
            screen.contains("train 640 · val 80 · test 200 (per class 320/320 · 40/40 · 100/100)"),
            "{screen}"
        );
        assert!(ui.shows_picture(), "{w}x{h}\n{screen}");
        assert!(!screen.contains("rendering…"), "{screen}");
    }
}

#[test]
fn model_view_lists_layers() {
    for (w, h) in SIZES {
        let mut ui = Harness::new(w, h, Origin::Live, recorded_run(1, false));
        ui.press(KeyCode::Char('3'));
        let screen = ui.settle();
        for text in [
            "Model · 10 layers · 362,818 parameters",
            "Layer",
            "Parameters",
            "features.0",
            "Conv2d 3x3/2",
            "64x113x113",
            "1,792",
            "classifier.1",
        ] {
            assert!(screen.contains(text), "{w}x{h}: {text:?} missing\n{screen}");
        }
        assert!(screen.contains("↑↓ scroll"), "{screen}");
    }
}

#[test]
fn model_view_scrolls_only_when_rows_do_not_fit() {
    let mut ui = Harness::new(80, 24, Origin::Live, vec![]);
    ui.press(KeyCode::Char('3'));
    ui.settle();
    // 24 rows leave 18 table rows (tabs, status, footer, borders, header): all 10 layers fit.
    assert_eq!(ui.app.tabs.model.rows, 18);
    ui.press(KeyCode::Down);
    assert_eq!(ui.app.tabs.model.scroll, 0);

    let mut short = Harness::new(80, 24, Origin::Live, vec![]);
    short.app.apply_reply(Reply::Summary(
        FakeGallery::new(0).summary().map_err(|e| e.to_string()),
    ));
    short.press(KeyCode::Char('3'));
    short.app.tabs.model.rows = 4;
    short.press(KeyCode::Down);
    short.press(KeyCode::Char('j'));
    assert_eq!(short.app.tabs.model.scroll, 2);
    short.press(KeyCode::End);
    assert_eq!(short.app.tabs.model.scroll, 6, "10 rows, 4 visible");
    short.press(KeyCode::PageUp);
    assert_eq!(short.app.tabs.model.scroll, 2);
    short.press(KeyCode::Home);
    assert_eq!(short.app.tabs.model.scroll, 0);
}

#[test]
fn results_view_shows_confusion_scores_and_hardest_images() {
    for (w, h) in SIZES {
        let mut ui = Harness::new(w, h, Origin::Watch, finished());
        ui.press(KeyCode::Char('4'));
        let screen = ui.settle();
        for text in [
            "Confusion matrix · accuracy 97.5% (195/200)",
            "true \\ predicted",
            "97 (97.0%)",
            "3 (3.0%)",
            "2 (2.0%)",
            "98 (98.0%)",
            "Precision",
            "Recall",
            "F1",
            "0.980", // precision of Negative: 97 / 99 = 0.9798
            "0.970", // recall of Negative
            "Hardest test images",
        ] {
            assert!(screen.contains(text), "{w}x{h}: {text:?} missing\n{screen}");
        }
        // The worst mistake of the fake gallery (item 8, truth Negative) with its score.
        assert!(
            screen.contains("→") && screen.contains("0.81"),
            "{w}x{h}\n{screen}"
        );
        assert!(ui.shows_picture(), "{w}x{h}\n{screen}");
    }
}

#[test]
fn results_view_before_testing_says_so() {
    let untested = Setup {
        items: 0,
        ..Setup::default()
    };
    let mut ui = Harness::with(80, 24, Origin::Live, recorded_run(1, false), untested);
    ui.press(KeyCode::Char('4'));
    let screen = ui.settle();
    assert!(screen.contains("Not tested yet"), "{screen}");
    ui.press(KeyCode::Char('5'));
    let screen = ui.settle();
    assert!(screen.contains("No test results yet"), "{screen}");
}

#[test]
fn browser_single_and_grid_views() {
    for (w, h) in SIZES {
        let mut ui = Harness::new(w, h, Origin::Watch, finished());
        ui.press(KeyCode::Char('5'));
        let screen = ui.settle();
        for text in [
            "img000.jpg",
            "Image",
            "1 of 24",
            "Negative",
            "✓ correct",
            "Score",
            "0.550",
            "Grad-CAM",
            "relu_conv10",
            "predicted class",
            "x next wrong",
        ] {
            assert!(screen.contains(text), "{w}x{h}: {text:?} missing\n{screen}");
        }
        assert!(ui.shows_picture(), "{w}x{h}\n{screen}");
        ui.press(KeyCode::Char('g'));
        let screen = ui.settle();
        assert!(screen.contains("Browser · 1-"), "{w}x{h}\n{screen}");
        assert!(screen.contains("✓ Negative 0.55"), "{w}x{h}\n{screen}");
        let (columns, rows) = ui.app.tabs.browser.state.cells;
        assert!(columns * rows >= 4, "{w}x{h}: grid {columns}x{rows}");
        assert!(!screen.contains("rendering…"), "{w}x{h}\n{screen}");
    }
}

#[test]
fn browser_keys_page_filter_sort_and_jump_to_mistakes() {
    let mut ui = Harness::new(80, 24, Origin::Watch, finished());
    ui.press(KeyCode::Char('5'));
    ui.settle();
    let selected = |ui: &Harness| ui.app.tabs.browser.state.selected();
    ui.press(KeyCode::Right);
    ui.press(KeyCode::Char('l'));
    assert_eq!(selected(&ui), Some(2));
    ui.press(KeyCode::Left);
    assert_eq!(selected(&ui), Some(1));
    ui.press(KeyCode::Char('x'));
    assert_eq!(selected(&ui), Some(3), "first misclassified");
    let screen = ui.settle();
    assert!(
        screen.contains("img003.jpg") && screen.contains("✗ wrong"),
        "{screen}"
    );
    ui.press(KeyCode::Char('x'));
    assert_eq!(selected(&ui), Some(8));
    ui.press(KeyCode::End);
    assert_eq!(selected(&ui), Some(23));
    ui.press(KeyCode::PageUp);
    assert_eq!(selected(&ui), Some(13));

    // Loss order starts at the worst mistake.
    ui.press(KeyCode::Char('o'));
    ui.press(KeyCode::Char('o'));
    ui.press(KeyCode::Home);
    assert_eq!(selected(&ui), Some(8));
    let screen = ui.settle();
    assert!(screen.contains("highest loss first"), "{screen}");

    // Only true Positives: every visible item is odd.
    ui.press(KeyCode::Char('f'));
    ui.press(KeyCode::Char('f'));
    assert!(ui
        .app
        .tabs
        .browser
        .state
        .visible()
        .iter()
        .all(|i| i % 2 == 1));
    // ... predicted Negative: the one false negative, item 3.
    ui.press(KeyCode::Char('F'));
    assert_eq!(ui.app.tabs.browser.state.visible(), &[3]);
    let screen = ui.settle();
    assert!(screen.contains("1 of 1"), "{screen}");

    // Grid paging moves by a page.
    let mut ui = Harness::new(80, 24, Origin::Watch, finished());
    ui.press(KeyCode::Char('5'));
    ui.press(KeyCode::Char('g'));
    ui.settle();
    let (columns, rows) = ui.app.tabs.browser.state.cells;
    ui.press(KeyCode::PageDown);
    assert_eq!(selected(&ui), Some(columns * rows));
    ui.press(KeyCode::Up);
    assert_eq!(selected(&ui), Some(columns * rows - columns));
}

#[test]
fn browser_picture_settings_reach_the_gallery_and_save_writes_the_current_one() {
    let mut ui = Harness::new(80, 24, Origin::Watch, finished());
    ui.press(KeyCode::Char('5'));
    ui.settle();
    ui.press(KeyCode::Char('+'));
    ui.press(KeyCode::Char('m'));
    ui.press(KeyCode::Char('y'));
    ui.press(KeyCode::Char('e'));
    let screen = ui.settle();
    for text in ["on, alpha 60%", "Grad-CAM++", "fire9", "Explains  Negative"] {
        assert!(screen.contains(text), "{text:?} missing\n{screen}");
    }
    let spec = ui.app.shared.spec;
    assert_eq!(
        (spec.alpha_percent, spec.method, spec.layer, spec.class),
        (60, 1, 1, Some(0))
    );
    ui.press(KeyCode::Char('v'));
    ui.press(KeyCode::Char('w'));
    let screen = ui.settle();
    assert!(screen.contains("saved run/pictures/img000.png"), "{screen}");
    assert!(ui
        .gallery_calls
        .lock()
        .unwrap()
        .contains(&"save 0 overlay=false alpha=60".to_string()));
}

#[test]
fn browser_prefetches_the_next_picture_only() {
    let mut ui = Harness::new(80, 24, Origin::Watch, finished());
    ui.press(KeyCode::Char('5'));
    ui.settle();
    let calls = ui.gallery_calls.lock().unwrap().clone();
    let pictures: Vec<&String> = calls.iter().filter(|c| c.starts_with("picture")).collect();
    assert_eq!(
        pictures,
        ["picture 0", "picture 1"],
        "the shown picture, then the next one"
    );
    // Paging to the prefetched one asks only for its successor.
    ui.press(KeyCode::Right);
    ui.settle();
    let calls = ui.gallery_calls.lock().unwrap().clone();
    assert_eq!(calls.iter().filter(|c| c.starts_with("picture")).count(), 3);
    assert!(calls.contains(&"picture 2".to_string()));
}

#[test]
fn tabs_and_numbers_switch_views_and_help_opens() {
    let mut ui = Harness::new(80, 24, Origin::Live, recorded_run(1, false));
    assert_eq!(ui.app.view, View::Training);
    ui.press(KeyCode::Tab);
    assert_eq!(ui.app.view, View::Samples);
    ui.press(KeyCode::BackTab);
    ui.press(KeyCode::BackTab);
    assert_eq!(ui.app.view, View::Browser);
    ui.press(KeyCode::Char('4'));
    assert_eq!(ui.app.view, View::Results);
    ui.press(KeyCode::Char('?'));
    let screen = ui.settle();
    assert!(
        screen.contains("Keys") && screen.contains("next misclassified"),
        "{screen}"
    );
    assert_eq!(
        ui.press(KeyCode::Char('q')),
        None,
        "q closes the help, it does not quit"
    );
    assert_eq!(ui.app.overlay, None);
    assert_eq!(ui.app.view, View::Results);
}

#[test]
fn training_keys_steer_the_training() {
    let mut ui = Harness::new(80, 24, Origin::Live, recorded_run(2, false));
    ui.press(KeyCode::Char('p'));
    let screen = ui.settle();
    assert!(
        screen.contains("pause requested")
            && screen.contains("paused")
            && screen.contains("p resume"),
        "{screen}"
    );
    ui.press(KeyCode::Char('p'));
    ui.press(KeyCode::Char('c'));
    let screen = ui.settle();
    assert!(screen.contains("saving…"), "{screen}");
    ui.app.apply(Event::Checkpoint {
        iteration: 40,
        path: "runs/demo/c.safetensors".into(),
        best: false,
        val_accuracy: None,
    });
    assert!(!ui.settle().contains("saving…"));
    // Stop asks first; anything but y cancels.
    ui.press(KeyCode::Char('s'));
    assert!(ui
        .settle()
        .contains("Stop the training after a final checkpoint?"));
    ui.press(KeyCode::Char('n'));
    ui.press(KeyCode::Char('s'));
    ui.press(KeyCode::Char('y'));
    let screen = ui.settle();
    assert!(screen.contains("stop requested"), "{screen}");
    assert_eq!(
        *ui.steer.calls.lock().unwrap(),
        ["pause", "resume", "save", "stop"]
    );
}

#[test]
fn quitting_asks_while_training_runs_and_returns_the_answer() {
    let mut ui = Harness::new(80, 24, Origin::Live, recorded_run(1, false));
    assert_eq!(ui.press(KeyCode::Char('q')), None);
    let screen = ui.settle();
    assert!(
        screen.contains("The training is still running.") && screen.contains("leave it running"),
        "{screen}"
    );
    assert_eq!(ui.press(KeyCode::Esc), None, "Esc goes back");
    assert_eq!(ui.press(KeyCode::Char('q')), None);
    assert_eq!(ui.press(KeyCode::Char('l')), Some(Exit::LeaveRunning));

    let mut ui = Harness::new(80, 24, Origin::Live, recorded_run(1, false));
    ui.press(KeyCode::Char('q'));
    assert_eq!(ui.press(KeyCode::Char('s')), Some(Exit::StopTraining));
    assert_eq!(*ui.steer.calls.lock().unwrap(), ["stop"]);

    // Ctrl-C quits like q.
    let mut ui = Harness::new(80, 24, Origin::Live, finished());
    assert_eq!(
        ui.app
            .handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Exit::Quit)
    );

    // Nothing to steer: a running run without steering is left running, a finished one just quits.
    let read_only = Setup {
        steerable: false,
        ..Setup::default()
    };
    let mut ui = Harness::with(80, 24, Origin::Watch, recorded_run(1, false), read_only);
    assert_eq!(ui.press(KeyCode::Char('q')), Some(Exit::LeaveRunning));
    let mut ui = Harness::new(80, 24, Origin::Watch, finished());
    assert_eq!(ui.press(KeyCode::Char('q')), Some(Exit::Quit));

    // A live training whose channel closed without finishing is over.
    let mut ui = Harness::new(80, 24, Origin::Live, recorded_run(1, false));
    ui.app.source_closed();
    assert!(ui.settle().contains("ended"));
    assert_eq!(ui.press(KeyCode::Char('q')), Some(Exit::Quit));
}

#[test]
fn too_small_terminal_says_so_plainly() {
    for (w, h) in [(79, 24), (80, 23), (40, 10)] {
        let mut ui = Harness::new(w, h, Origin::Live, recorded_run(1, false));
        let screen = ui.settle();
        assert!(
            screen.contains("terminal too small (need 80x24"),
            "{w}x{h}\n{screen}"
        );
    }
}

#[test]
fn no_color_draws_without_colours() {
    let mut ui = Harness::with(
        80,
        24,
        Origin::Watch,
        finished(),
        Setup {
            colors: false,
            ..Setup::default()
        },
    );
    for view in ['1', '4', '5'] {
        ui.press(KeyCode::Char(view));
        ui.settle();
        assert!(
            !ui.buffer_has_colours(),
            "view {view} uses colours:\n{}",
            ui.screen()
        );
    }
    let mut coloured = Harness::new(80, 24, Origin::Watch, finished());
    coloured.settle();
    assert!(coloured.buffer_has_colours());
}

#[test]
fn landing_in_the_browser_when_tested_and_failures_shown() {
    let gallery = FakeGallery::new(4);
    let mut app = App::new(AppSetup {
        origin: Origin::Live,
        steer: None,
        theme: Theme::new(true),
        start_view: View::Training,
        land_in_browser: true,
        classes: gallery.classes(),
        methods: gallery.methods(),
        layers: gallery.layers(),
        spec: Default::default(),
    });
    for event in recorded_run(1, true) {
        app.apply(event);
    }
    assert_eq!(app.view, View::Browser);

    let mut ui = Harness::new(80, 24, Origin::Live, recorded_run(1, false));
    ui.app.apply(Event::Failed {
        message: "out of memory at iteration 12".into(),
    });
    let screen = ui.settle();
    assert!(
        screen.contains("training failed: out of memory at iteration 12")
            && screen.contains("failed"),
        "{screen}"
    );
}

#[test]
fn gallery_errors_are_shown_where_the_picture_would_be() {
    let failing = Setup {
        failing_gallery: true,
        ..Setup::default()
    };
    let mut ui = Harness::with(80, 24, Origin::Watch, finished(), failing);
    ui.press(KeyCode::Char('2'));
    let screen = ui.settle();
    assert!(
        screen.contains("cannot show samples: cannot read data/train"),
        "{screen}"
    );
    ui.press(KeyCode::Char('5'));
    let screen = ui.settle();
    assert!(
        screen.contains("cannot read test item 0: no such file"),
        "{screen}"
    );
    assert!(!ui.shows_picture());
}

#[test]
fn a_new_test_result_drops_pictures_made_before_it() {
    let mut ui = Harness::new(80, 24, Origin::Watch, finished());
    ui.press(KeyCode::Char('5'));
    ui.settle();
    let key = ImageKey::Picture {
        item: 0,
        spec: ui.app.shared.spec,
    };
    assert!(ui.app.shared.images.contains(&key));
    ui.app.apply(Event::Tested {
        accuracy: 0.99,
        confusion: vec![vec![99, 1], vec![1, 99]],
        classes: vec![],
        sources: Vec::new(),
    });
    assert!(!ui.app.shared.images.contains(&key));
    let screen = ui.settle();
    assert!(ui.shows_picture(), "redrawn from the gallery\n{screen}");
    let pictures_of_0 = ui
        .gallery_calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| *c == "picture 0")
        .count();
    assert_eq!(pictures_of_0, 2);
}

/// The real loop on a test terminal: events and keys through their channels, as `run` wires them.
async fn run_loop(events: Vec<Event>, keys: Vec<Input>) -> (super::event_loop::LoopEnd, Harness) {
    let mut ui = Harness::new(80, 24, Origin::Live, vec![]);
    let (event_sender, event_receiver) = tokio::sync::mpsc::channel(16);
    let (key_sender, key_receiver) = tokio::sync::mpsc::unbounded_channel();
    let (reply_sender, replies) = tokio::sync::mpsc::unbounded_channel();
    let gallery = FakeGallery::new(6);
    let workers = Workers::start(Box::new(gallery), Graphics::halfblocks(), reply_sender).unwrap();
    let channels = super::event_loop::Channels {
        events: event_receiver,
        keys: key_receiver,
        replies,
        events_open: true,
        replies_open: true,
    };
    let mut signals = super::screen::Signals::new().unwrap();
    let feeder = tokio::spawn(async move {
        for event in events {
            event_sender.send(event).await.unwrap();
        }
        // Let a few frames pass before the keys arrive.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for key in keys {
            key_sender.send(key).unwrap();
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        // Keep the key channel open until the loop ends.
        std::future::pending::<()>().await;
    });
    let end = tokio::time::timeout(
        Duration::from_secs(10),
        super::event_loop::event_loop(
            &mut ui.terminal,
            &mut ui.app,
            channels,
            workers,
            &mut signals,
            &Graphics::halfblocks(),
        ),
    )
    .await
    .expect("the loop ends");
    feeder.abort();
    (end, ui)
}

fn key_input(c: char) -> Input {
    Input::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_draws_what_arrives_and_returns_the_choice() {
    let (end, ui) = run_loop(recorded_run(1, false), vec![key_input('q'), key_input('l')]).await;
    assert!(matches!(
        end,
        super::event_loop::LoopEnd::Chosen(Exit::LeaveRunning)
    ));
    let screen = ui.screen();
    assert!(screen.contains("Iteration 20/20"), "{screen}");
    assert!(
        screen.contains("The training is still running."),
        "the question was drawn\n{screen}"
    );
    assert!(
        ui.app.shared.memory_bytes.is_some(),
        "live runs show memory"
    );

    let (end, ui) = run_loop(recorded_run(1, true), vec![key_input('5'), key_input('q')]).await;
    assert!(matches!(
        end,
        super::event_loop::LoopEnd::Chosen(Exit::Quit)
    ));
    assert!(ui.screen().contains("img000.jpg"), "{}", ui.screen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_ends_quietly_when_the_terminal_is_lost() {
    let (end, _) = run_loop(recorded_run(1, false), vec![Input::Lost]).await;
    assert!(matches!(end, super::event_loop::LoopEnd::TerminalLost));
}

/// `watch` on a run being trained by another process shows that process's memory (the holder
/// of the run's lock; here this test process holds it), and nothing once no process trains it.
#[test]
fn watch_shows_the_training_process_memory() {
    use super::event_loop::Program;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "").unwrap();
    let run = crate::run::RunDir::open(dir.path()).unwrap();
    let mut ui = Harness::new(80, 24, Origin::Watch, recorded_run(1, false));
    ui.app.watched_run = Some(dir.path().to_path_buf());
    let lock = run.lock().unwrap();
    ui.app.tick();
    assert!(ui.app.shared.memory_bytes.is_some_and(|b| b > 1024 * 1024));
    drop(lock);
    ui.app.memory_read = None;
    ui.app.tick();
    assert_eq!(ui.app.shared.memory_bytes, None);
}
