//! The dashboard on one-class runs: a recorded fit's events and the fake one-class gallery drive
//! the real state, workers and views (fit progress, results with the score histogram, the
//! browser with anomaly maps), and logs written before these events existed still show.

use crossterm::event::KeyCode;

use super::app::Phase;
use super::fake::ONE_CLASS_THRESHOLD;
use super::snapshots::assert_snapshot;
use super::tests::{Harness, Setup};
use super::views::Origin;
use crate::run::event::{AnomalyScores, Event, FitStage, FitStart, ScoreHistogram};
use crate::run::log;

/// The test images' scores of the recorded fit: 100 normal images mostly below the threshold,
/// 100 anomalous ones mostly above it.
fn test_scores() -> (Vec<f32>, Vec<bool>) {
    let mut scores = Vec::new();
    let mut anomalous = Vec::new();
    for i in 0..100 {
        let spread = ((i * 37) % 100) as f32 / 100.0;
        scores.push(if i % 25 == 0 { 0.6 } else { 0.2 + 0.3 * spread });
        anomalous.push(false);
        scores.push(0.45 + 0.6 * ((i * 53) % 100) as f32 / 100.0);
        anomalous.push(true);
    }
    (scores, anomalous)
}

/// A one-class fit as `oneclass::run::fit_run` reports it: the start, progress through the
/// three stages, and (when `finished`) the fitted bank, the end, and the test results. Unfinished,
/// it stops halfway through the coreset.
pub fn recorded_fit(finished: bool) -> Vec<Event> {
    let mut events = vec![Event::FitStarted(FitStart {
        run: "runs/oneclass".into(),
        device: "cpu".into(),
        classes: vec!["Negative".into(), "Positive".into()],
        normal_class: "Negative".into(),
        train_images: 320,
        val_per_class: vec![40, 40],
        test_per_class: vec![100, 100],
        layers: vec!["fire3-concat".into(), "fire5-concat".into()],
        max_bank: 1024,
    })];
    let mut t = 0.0;
    let mut stage = |stage: FitStage, step: usize, total: usize, last: usize| {
        let mut out = Vec::new();
        let mut done = 0;
        while done < last {
            done = (done + step).min(last);
            t += 0.5;
            out.push(Event::Fitting {
                stage,
                done,
                total,
                elapsed_s: t,
            });
        }
        out
    };
    events.extend(stage(FitStage::Features, 16, 320, 320));
    if !finished {
        events.extend(stage(FitStage::Coreset, 128, 1024, 512));
        return events;
    }
    events.extend(stage(FitStage::Coreset, 128, 1024, 1024));
    events.extend(stage(FitStage::Validation, 16, 80, 80));
    events.push(Event::Fitted {
        bank_entries: 1024,
        threshold: ONE_CLASS_THRESHOLD,
        threshold_rule: "best validation F1 0.950".into(),
        scan_threshold: Some(ONE_CLASS_THRESHOLD * 0.9),
        val_auroc: Some(0.985),
        elapsed_s: 26.0,
    });
    events.push(Event::Finished {
        iteration: 0,
        best_val_accuracy: None,
        stopped_early: false,
        elapsed_s: 26.0,
    });
    let (scores, anomalous) = test_scores();
    let mut confusion = vec![vec![0; 2]; 2];
    for (&s, &a) in scores.iter().zip(&anomalous) {
        confusion[usize::from(a)][usize::from(s > ONE_CLASS_THRESHOLD)] += 1;
    }
    let correct = confusion[0][0] + confusion[1][1];
    events.push(Event::AnomalyScored(AnomalyScores {
        normal_class: "Negative".into(),
        auroc: crate::detector::oneclass::ranking::auroc(&scores, &anomalous),
        average_precision: crate::detector::oneclass::ranking::average_precision(
            &scores, &anomalous,
        ),
        threshold: ONE_CLASS_THRESHOLD,
        histogram: ScoreHistogram::of(&scores, &anomalous, 120, ONE_CLASS_THRESHOLD),
    }));
    events.push(Event::Tested {
        accuracy: correct as f32 / scores.len() as f32,
        confusion,
        classes: vec!["normal".into(), "anomaly".into()],
        sources: Vec::new(),
    });
    events
}

fn one_class() -> Setup {
    Setup {
        one_class: true,
        steerable: false,
        ..Setup::default()
    }
}

#[test]
fn the_training_view_of_a_fit_shows_each_stage_then_the_bank() {
    let mut ui = Harness::with(80, 24, Origin::Live, recorded_fit(false), one_class());
    let screen = ui.settle();
    for text in [
        "Fit on 320 normal images of 'Negative'",
        "fire3-concat + fire5-concat",
        "bank ≤ 1024",
        "320/320 images",
        "512/1024 bank entries",
        "waiting",
    ] {
        assert!(screen.contains(text), "{text:?} missing\n{screen}");
    }
    // No loss curves or epochs for a fit.
    assert!(
        !screen.contains("Epoch") && !screen.contains("Loss"),
        "{screen}"
    );
    assert_snapshot("oneclass-fitting", &screen);

    let mut ui = Harness::with(80, 24, Origin::Live, recorded_fit(true), one_class());
    let screen = ui.settle();
    for text in [
        "80/80 images",
        "1024/1024 bank entries",
        "bank 1024 entries",
        "validation AUROC 0.9850",
        "threshold 0.5200",
        "best validation F1 0.950",
        "Anomaly scores",
        "finished",
    ] {
        assert!(screen.contains(text), "{text:?} missing\n{screen}");
    }
    assert!(!screen.contains("waiting"), "{screen}");
}

#[test]
fn the_results_view_shows_auroc_confusion_at_the_threshold_and_the_histogram() {
    let events = recorded_fit(true);
    let Some(Event::AnomalyScored(scores)) =
        events.iter().find(|e| matches!(e, Event::AnomalyScored(_)))
    else {
        panic!("the recorded fit has scores")
    };
    let auroc = format!("{:.4}", scores.auroc.unwrap());
    let mut ui = Harness::with(80, 24, Origin::Watch, events.clone(), one_class());
    ui.press(KeyCode::Char('4'));
    let screen = ui.settle();
    for text in [
        "AUROC",
        auroc.as_str(),
        "average precision",
        "threshold",
        "0.5200",
        "At the threshold",
        "92.0% (184/200)",
        "true \\ verdict",
        "normal 100 ▲",
        "anomalous 100",
        "0.520",
    ] {
        assert!(screen.contains(text), "{text:?} missing\n{screen}");
    }
    // Confusion at 0.52: normal images above it are the 4 at 0.6 and none of the spread
    // (0.2..0.5); anomalies at or below it are those with 0.45 + 0.6 k / 100 <= 0.52.
    let Event::Tested { confusion, .. } = events.last().unwrap() else {
        panic!("ends with the test results")
    };
    assert_eq!(confusion[0], [96, 4]);
    assert!(screen.contains("96 (96.0%)"), "{screen}");
    // The histogram: the threshold's line crosses the axis, normal bars rise left of it, and
    // anomalous bars hang right of it, each in its own colour.
    let lines: Vec<&str> = screen.lines().collect();
    let axis = lines
        .iter()
        .position(|l| l.contains('┼'))
        .expect("an axis with the threshold");
    let column = lines[axis].chars().position(|c| c == '┼').unwrap();
    let blocks = |row: &str, left: bool| {
        row.chars()
            .enumerate()
            .filter(|&(x, c)| (x < column) == left && x != column && "▁▂▃▄▅▆▇█▀".contains(c))
            .count()
    };
    let above: usize = lines[..axis].iter().map(|l| blocks(l, true)).sum();
    let above_right: usize = lines[..axis].iter().map(|l| blocks(l, false)).sum();
    let below_right: usize = lines[axis + 1..].iter().map(|l| blocks(l, false)).sum();
    assert!(above > 3 * above_right, "normal bars sit left\n{screen}");
    assert!(below_right > 0, "anomalous bars hang right\n{screen}");
    assert!(ui.buffer_has_colours());
    assert_snapshot("oneclass-results", &screen);
}

#[test]
fn the_browser_of_a_one_class_run_shows_scores_against_the_threshold() {
    let mut ui = Harness::with(100, 30, Origin::Watch, recorded_fit(true), one_class());
    ui.press(KeyCode::Char('5'));
    let screen = ui.settle();
    // Item 0 of the fake: a normal image scored 0.1.
    for text in [
        "img000.jpg",
        "Verdict",
        "normal ✓ correct",
        "Score     0.1000",
        "Threshold 0.5200",
        "Margin    -0.4200",
        "Map       on, alpha 50%",
        "fire3-concat + fire5-concat",
    ] {
        assert!(screen.contains(text), "{text:?} missing\n{screen}");
    }
    assert!(ui.shows_picture(), "{screen}");
    // The worst mistake first: the normal image scored 0.7 (item 8's 0.7 - 0.52 beats item
    // 3's 0.52 - 0.4).
    ui.press(KeyCode::Char('o'));
    ui.press(KeyCode::Char('o'));
    ui.press(KeyCode::Home);
    let screen = ui.settle();
    assert!(
        screen.contains("img008.jpg") && screen.contains("Score     0.7000"),
        "{screen}"
    );
    assert!(screen.contains("✗ wrong"), "{screen}");
    assert_snapshot("oneclass-browser", &screen);
    let calls = ui.gallery_calls.lock().unwrap().clone();
    assert!(calls.iter().any(|c| c == "picture 8"), "{calls:?}");
}

/// The grid shows the same number as the single view (the anomaly score, named in its title
/// beside the threshold), and the footer offers only keys that do something for a one-class run.
#[test]
fn the_one_class_grid_labels_its_scores_and_the_footer_lists_working_keys() {
    // Wide enough for every key of the view.
    let mut ui = Harness::with(160, 30, Origin::Watch, recorded_fit(true), one_class());
    ui.press(KeyCode::Char('5'));
    let screen = ui.settle();
    let footer = screen.lines().last().unwrap().to_string();
    for key in [
        "prev/next",
        "next wrong",
        "filter",
        "order",
        "alpha",
        "grid",
        "save",
    ] {
        assert!(footer.contains(key), "{key:?} missing from {footer:?}");
    }
    for key in ["method", "layer", "class"] {
        assert!(!footer.contains(key), "{key:?} in {footer:?}");
    }
    // The keys left out say why rather than change nothing in silence.
    ui.press(KeyCode::Char('m'));
    let screen = ui.settle();
    assert!(screen.contains("one map, the anomaly map"), "{screen}");

    let mut ui = Harness::with(100, 30, Origin::Watch, recorded_fit(true), one_class());
    ui.press(KeyCode::Char('5'));
    ui.press(KeyCode::Char('g'));
    let screen = ui.settle();
    assert!(
        screen.contains("anomaly score, threshold 0.5200"),
        "{screen}"
    );
    // Items 0 and 8 of the fake: normal images scored 0.1 and 0.7 (the single view's numbers).
    for caption in ["✓ score 0.1000", "✗ score 0.7000"] {
        assert!(screen.contains(caption), "{caption:?} missing\n{screen}");
    }
    assert_snapshot("oneclass-browser-grid", &screen);
}

/// The help screen lists the browser's keys as the footer does: a one-class run's leaves out the
/// explanation's method, layer and class, which a classifier's lists.
#[test]
fn the_help_of_a_one_class_run_lists_only_the_browser_keys_that_work() {
    let help_of = |one_class_run: bool| {
        let setup = if one_class_run {
            one_class()
        } else {
            Setup::default()
        };
        let events = if one_class_run {
            recorded_fit(true)
        } else {
            crate::tui::tests::recorded_run(2, true)
        };
        let mut ui = Harness::with(120, 60, Origin::Watch, events, setup);
        ui.press(KeyCode::Char('?'));
        ui.settle()
    };
    let help = help_of(true);
    assert!(help.contains("next misclassified"), "{help}");
    assert!(!help.contains("explanation method"), "{help}");
    let help = help_of(false);
    assert!(help.contains("explanation method, layer, class"), "{help}");
}

/// Logs written before the one-class events existed: a supervised run with every kind of event,
/// and a one-class run that reported its fit in notices. Both still read whole and show.
#[test]
fn logs_from_before_the_one_class_events_still_read_and_show() {
    let supervised = [
        r#"{"event":"started","run":"runs/x","device":"cpu","classes":["Negative","Positive"],"train_per_class":[8,8],"val_per_class":[2,2],"test_per_class":[2,2],"batch_size":4,"epochs":1,"iterations_per_epoch":4,"start_iteration":0,"learning_rate":0.0001}"#,
        r#"{"event":"iteration","epoch":1,"iteration":1,"loss":0.7,"accuracy":0.5,"learning_rate":0.0001,"images_per_s":12.5,"elapsed_s":0.4}"#,
        r#"{"event":"validation","epoch":1,"iteration":4,"loss":0.5,"accuracy":0.75,"elapsed_s":1.7}"#,
        r#"{"event":"checkpoint","iteration":4,"path":"runs/x/best.safetensors","best":true,"val_accuracy":0.75}"#,
        r#"{"event":"epoch","epoch":1,"iteration":4,"elapsed_s":1.8}"#,
        r#"{"event":"notice","message":"hello"}"#,
        r#"{"event":"failed","message":"out of memory"}"#,
        r#"{"event":"finished","iteration":4,"best_val_accuracy":0.75,"stopped_early":false,"elapsed_s":1.9}"#,
        r#"{"event":"tested","accuracy":0.75,"confusion":[[2,0],[1,1]],"classes":["Negative","Positive"]}"#,
    ];
    let old_one_class = [
        r#"{"event":"notice","message":"one-class fit on 40 training images of 'Negative' (20 validation images of all classes)"}"#,
        r#"{"event":"notice","message":"features: 40/40 images"}"#,
        r#"{"event":"notice","message":"coreset: choosing 23 bank entries from 2304 patches"}"#,
        r#"{"event":"notice","message":"bank of 23 entries, threshold 0.5123 (best validation F1 0.900), fitted in 3.2 s; model in runs/y/best.safetensors"}"#,
        r#"{"event":"finished","iteration":0,"best_val_accuracy":null,"stopped_early":false,"elapsed_s":3.2}"#,
        r#"{"event":"tested","accuracy":0.9,"confusion":[[9,1],[1,9]],"classes":["normal","anomaly"]}"#,
    ];
    let dir = tempfile::tempdir().unwrap();
    let read = |lines: &[&str]| {
        let path = dir.path().join(log::FILE_NAME);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let read = log::read_from(&path, 0).unwrap();
        assert_eq!(read.skipped_lines, 0, "{lines:#?}");
        assert_eq!(read.events.len(), lines.len());
        read.events
    };
    let ui = Harness::new(80, 24, Origin::Watch, read(&supervised));
    assert!(ui.app.shared.run.one_class.is_none());
    assert_eq!(ui.app.shared.run.progress.iteration, 4);

    let mut ui = Harness::with(80, 24, Origin::Watch, read(&old_one_class), one_class());
    assert!(matches!(ui.app.shared.run.phase, Phase::Finished { .. }));
    let screen = ui.settle();
    assert!(screen.contains("finished"), "{screen}");
    // Without the score events the Results view still has the confusion at the threshold.
    ui.press(KeyCode::Char('4'));
    let screen = ui.settle();
    assert!(
        screen.contains("accuracy 90.0% (18/20)") && screen.contains("anomaly"),
        "{screen}"
    );
}

#[test]
fn the_results_view_of_several_sources_gives_each_its_auroc() {
    let mut events = recorded_fit(true);
    let source = |name: &str, confusion: [[usize; 2]; 2], auroc: f64| {
        let images = confusion.iter().flatten().sum::<usize>();
        crate::run::report::SourceResult {
            name: name.into(),
            images,
            accuracy: (confusion[0][0] + confusion[1][1]) as f64 / images as f64,
            confusion: confusion.iter().map(|row| row.to_vec()).collect(),
            recall: confusion
                .iter()
                .enumerate()
                .map(|(c, row)| Some(row[c] as f64 / row.iter().sum::<usize>() as f64))
                .collect(),
            auroc: Some(auroc),
        }
    };
    let Some(Event::Tested { sources, .. }) = events.last_mut() else {
        panic!("ends with the test results")
    };
    *sources = vec![
        source("concrete", [[50, 0], [2, 48]], 0.9987),
        source("drone", [[46, 4], [10, 40]], 0.9012),
    ];
    let mut ui = Harness::with(100, 30, Origin::Watch, events, one_class());
    ui.press(KeyCode::Char('4'));
    let screen = ui.settle();
    for text in [
        "Per data source",
        "AUROC",
        "concrete",
        "98.0% (98/100)",
        "0.9987",
        "drone",
        "86.0% (86/100)",
        "0.9012",
    ] {
        assert!(screen.contains(text), "{text:?} missing\n{screen}");
    }
}
