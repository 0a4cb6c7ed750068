//! The event source of `crackscope watch RUN`: follows `RUN/metrics.jsonl` as it grows and feeds
//! its events into the same kind of channel a live training uses. A run that ended shows whole;
//! a running one stays live; one whose process is gone (killed, crashed) shows as stopped, with
//! the command that continues it.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::run::event::{Event, RunStart};
use crate::run::log;
use crate::run::RunDir;

/// How often the log is read again for new lines.
pub const POLL: Duration = Duration::from_millis(250);

/// Starts following `run_dir`'s log on the current tokio runtime. Problems (no log yet, garbled
/// lines) come through as `Notice` events.
pub fn follow(run_dir: PathBuf) -> mpsc::Receiver<Event> {
    let (sender, receiver) = mpsc::channel(1024);
    tokio::spawn(tail(RunDir { path: run_dir }, sender));
    receiver
}

/// What the log says of its latest training segment, to tell a cut-off one from a live one.
#[derive(Debug, Default)]
struct Segment {
    /// A `Started` with no end after it.
    open: bool,
    iteration: usize,
    elapsed_s: f64,
    best_val_accuracy: Option<f32>,
    /// The segment is a one-class fit (which cannot be resumed).
    one_class: bool,
}

impl Segment {
    fn see(&mut self, event: &Event) {
        match event {
            Event::Started(RunStart {
                start_iteration, ..
            }) => {
                *self = Segment {
                    open: true,
                    iteration: *start_iteration,
                    ..Segment::default()
                }
            }
            Event::Iteration {
                iteration,
                elapsed_s,
                ..
            } => {
                self.iteration = *iteration;
                self.elapsed_s = *elapsed_s;
            }
            Event::FitStarted(_) => {
                *self = Segment {
                    open: true,
                    one_class: true,
                    ..Segment::default()
                }
            }
            // Each checkpoint carries its own accuracy: the best is the largest.
            Event::Checkpoint {
                val_accuracy: Some(accuracy),
                ..
            } => {
                self.best_val_accuracy = Some(
                    self.best_val_accuracy
                        .map_or(*accuracy, |best| best.max(*accuracy)),
                )
            }
            Event::Finished { .. } | Event::Failed { .. } => self.open = false,
            _ => {}
        }
    }

    /// The end a training whose process is gone did not write.
    fn cut_off(&mut self, run: &RunDir) -> Vec<Event> {
        self.open = false;
        if self.one_class {
            return vec![Event::Failed {
                message: format!(
                    "the one-class fit is not running (its process ended before the fit was \
                     done); fits do not resume: start a new run instead of {}",
                    run.path.display()
                ),
            }];
        }
        vec![
            Event::Notice {
                message: format!(
                    "the training is not running (its process ended at iteration {} without \
                     finishing); continue it with `{}`",
                    self.iteration,
                    run.resume_command()
                ),
            },
            Event::Finished {
                iteration: self.iteration,
                best_val_accuracy: self.best_val_accuracy,
                stopped_early: true,
                elapsed_s: self.elapsed_s,
            },
        ]
    }
}

async fn tail(run: RunDir, sender: mpsc::Sender<Event>) {
    let path = run.metrics();
    let mut offset = 0;
    let mut said_waiting = false;
    let mut segment = Segment::default();
    let mut skipped = 0;
    loop {
        let read_path = path.clone();
        let read = tokio::task::spawn_blocking(move || {
            let read = log::read_from(&read_path, offset)?;
            // Read again after finding no training alive: it may have written its end and exited
            // between the read and the look at the lock.
            let alive = RunDir {
                path: read_path.parent().unwrap_or(&read_path).to_path_buf(),
            }
            .live_training()
            .is_some();
            let more = if alive {
                log::ReadBack {
                    offset: read.offset,
                    ..Default::default()
                }
            } else {
                log::read_from(&read_path, read.offset)?
            };
            anyhow::Ok((read, more, alive))
        })
        .await;
        match read {
            Ok(Ok((read, more, alive))) => {
                offset = more.offset;
                let new_skipped = read.skipped_lines + more.skipped_lines;
                if new_skipped > 0 {
                    skipped += new_skipped;
                    let message = format!(
                        "skipped {skipped} garbled line{} of {}",
                        if skipped == 1 { "" } else { "s" },
                        path.display()
                    );
                    if sender.send(Event::Notice { message }).await.is_err() {
                        return;
                    }
                }
                for event in read.events.into_iter().chain(more.events) {
                    segment.see(&event);
                    if sender.send(event).await.is_err() {
                        return;
                    }
                }
                if segment.open && !alive {
                    for event in segment.cut_off(&run) {
                        if sender.send(event).await.is_err() {
                            return;
                        }
                    }
                }
            }
            Ok(Err(_)) if !path.exists() => {
                if !said_waiting {
                    said_waiting = true;
                    let message = format!("waiting for {} to appear", path.display());
                    if sender.send(Event::Notice { message }).await.is_err() {
                        return;
                    }
                }
            }
            Ok(Err(e)) => {
                let _ = sender
                    .send(Event::Notice {
                        message: format!("stopped reading the run log: {e:#}"),
                    })
                    .await;
                return;
            }
            Err(_) => return,
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::log::RunLog;
    use std::io::Write;

    #[tokio::test]
    async fn follows_a_growing_log_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut events = follow(dir.path().to_path_buf());
        let first = events.recv().await.unwrap();
        assert!(
            matches!(&first, Event::Notice { message } if message.contains("metrics.jsonl")),
            "{first:?}"
        );

        let mut log = RunLog::append_to(dir.path()).unwrap();
        let a = Event::Epoch {
            epoch: 1,
            iteration: 10,
            elapsed_s: 2.0,
        };
        log.write(&a).unwrap();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await
                .unwrap(),
            Some(a)
        );
        let b = Event::Notice {
            message: "later".into(),
        };
        log.write(&b).unwrap();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await
                .unwrap(),
            Some(b)
        );
    }

    fn started() -> Event {
        Event::Started(RunStart {
            run: "r".into(),
            device: "cpu".into(),
            classes: vec!["a".into(), "b".into()],
            train_per_class: vec![1, 1],
            val_per_class: vec![1, 1],
            test_per_class: vec![1, 1],
            batch_size: 1,
            epochs: 5,
            iterations_per_epoch: 10,
            start_iteration: 0,
            learning_rate: 1e-3,
            ..RunStart::default()
        })
    }

    async fn next(events: &mut mpsc::Receiver<Event>) -> Event {
        tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event within 5 s")
            .expect("the source stays open")
    }

    #[tokio::test]
    async fn a_run_whose_process_is_gone_shows_stopped_with_the_resume_command() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RunLog::append_to(dir.path()).unwrap();
        log.write(&started()).unwrap();
        let iteration = Event::Iteration {
            epoch: 1,
            iteration: 7,
            loss: 0.5,
            accuracy: 0.5,
            learning_rate: 1e-3,
            images_per_s: 10.0,
            elapsed_s: 3.0,
        };
        log.write(&iteration).unwrap();
        // No process holds the run's lock: the training is gone.
        let mut events = follow(dir.path().to_path_buf());
        assert_eq!(next(&mut events).await, started());
        assert_eq!(next(&mut events).await, iteration);
        let notice = next(&mut events).await;
        assert!(
            matches!(&notice, Event::Notice { message } if message.contains("not running")
                && message.contains("crackscope train --resume")),
            "{notice:?}"
        );
        assert!(matches!(
            next(&mut events).await,
            Event::Finished {
                iteration: 7,
                stopped_early: true,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_one_class_fit_whose_process_is_gone_fails_without_a_resume_command() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RunLog::append_to(dir.path()).unwrap();
        let start = Event::FitStarted(crate::run::event::FitStart {
            train_images: 10,
            ..Default::default()
        });
        let fitting = Event::Fitting {
            stage: crate::run::event::FitStage::Features,
            done: 4,
            total: 10,
            elapsed_s: 1.0,
        };
        log.write(&start).unwrap();
        log.write(&fitting).unwrap();
        let mut events = follow(dir.path().to_path_buf());
        assert_eq!(next(&mut events).await, start);
        assert_eq!(next(&mut events).await, fitting);
        let end = next(&mut events).await;
        assert!(
            matches!(&end, Event::Failed { message } if message.contains("do not resume")
                && !message.contains("--resume")),
            "{end:?}"
        );
    }

    #[tokio::test]
    async fn a_live_run_stays_live_and_garbled_lines_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir {
            path: dir.path().to_path_buf(),
        };
        let _lock = run.lock().unwrap();
        let mut log = RunLog::append_to(dir.path()).unwrap();
        log.write(&started()).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(run.metrics())
            .unwrap()
            .write_all(b"{\"event\":\"itera\n")
            .unwrap();
        let end = Event::Epoch {
            epoch: 1,
            iteration: 10,
            elapsed_s: 2.0,
        };
        log.write(&end).unwrap();
        let mut events = follow(dir.path().to_path_buf());
        let notice = next(&mut events).await;
        assert!(
            matches!(&notice, Event::Notice { message } if message.contains("skipped 1 garbled line")),
            "{notice:?}"
        );
        assert_eq!(next(&mut events).await, started());
        assert_eq!(next(&mut events).await, end);
        // Alive (the lock is held): nothing made up.
        assert!(
            tokio::time::timeout(Duration::from_millis(800), events.recv())
                .await
                .is_err(),
            "a live training was declared over"
        );
    }
}
