//! Running a job (a training, a fit) on a worker thread while the calling thread shows it. The
//! job only emits events; each goes first to the run's metrics log (on the worker, never dropped),
//! then through a bounded channel to the [`Observer`] the command chose: the headless printer or
//! the dashboard. The job never waits for its observer: events the observer has not taken when
//! the channel is full are dropped (it can re-read `metrics.jsonl`), so a stalled terminal never
//! stalls a training.

use std::thread::JoinHandle;

use anyhow::{Context, Result};
use tokio::sync::mpsc;

use crate::core::warn::warn;
use crate::run::event::Event;
use crate::run::log::RunLog;
use crate::run::tensorboard::EventWriter;

/// Events in flight between the worker and its observer.
const CHANNEL: usize = 4096;

/// How following a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The job's events ended, or the user quit with no job running.
    Quit,
    /// The user left (or the terminal went away) while the job runs on: it goes on in this
    /// process until it is done.
    LeaveRunning,
    /// The user chose to stop the training; the stop was already requested, and the worker ends
    /// after a final checkpoint.
    StopTraining,
}

/// Whoever follows a job's events: the metrics log, the headless printer, the dashboard.
/// [`Observer::event`] takes them one at a time, in order, which is also how a recorded list of
/// events is replayed into any of them.
pub trait Observer {
    /// One event.
    fn event(&mut self, event: &Event);

    /// Follows a running job's `events` on the calling thread until they end (or, for a
    /// full-screen observer with a loop of its own, until the user leaves) and says how it
    /// ended.
    fn follow(&mut self, mut events: mpsc::Receiver<Event>) -> Result<Exit> {
        while let Some(event) = events.blocking_recv() {
            self.event(&event);
        }
        Ok(Exit::Quit)
    }

    /// Whether this observer keeps the job going when the terminal hangs up (the dashboard:
    /// the training goes on without it); otherwise a hang-up stops the job like Ctrl-C.
    fn survives_hangup(&self) -> bool {
        false
    }
}

/// The metrics log as an observer: each event one line of `metrics.jsonl`. A line that cannot
/// be written is a warning, not the end of the job.
impl Observer for RunLog {
    fn event(&mut self, event: &Event) {
        if let Err(e) = self.write(event) {
            warn(format!("{e:#}"));
        }
    }
}

/// The TensorBoard event file as an observer: scalars of the events that carry them. A record
/// that cannot be written is a warning, not the end of the job.
impl Observer for EventWriter {
    fn event(&mut self, event: &Event) {
        if let Err(e) = self.write(event) {
            warn(format!("{e:#}"));
        }
    }
}

/// The logs a job writes on its worker thread, in order, before its observer hears an event.
pub type Logs = Vec<Box<dyn Observer + Send>>;

/// A job on its worker thread.
pub struct Running<T> {
    events: Option<mpsc::Receiver<Event>>,
    worker: JoinHandle<Result<T>>,
    name: String,
}

/// Starts `job` on a worker thread named `name`. Its events go to each of `logs`, then to
/// whoever [`Running::follow`]s it; a failure ends them with [`Event::Failed`].
pub fn start<T: Send + 'static>(
    name: &str,
    mut logs: Logs,
    job: impl FnOnce(&mut (dyn FnMut(Event) + Send)) -> Result<T> + Send + 'static,
) -> Result<Running<T>> {
    let (sender, events) = mpsc::channel::<Event>(CHANNEL);
    let worker = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut said_failed = false;
            let mut emit = |event: Event| {
                said_failed |= matches!(event, Event::Failed { .. });
                for log in logs.iter_mut() {
                    log.event(&event);
                }
                // Never wait for the observer (see the module's notes).
                let _ = sender.try_send(event);
            };
            let result = job(&mut emit);
            // A job that failed without saying so: the observer hears it (the dashboard shows
            // it); the log does not, and the caller gets the error itself.
            if let (Err(e), false) = (&result, said_failed) {
                let _ = sender.try_send(Event::Failed {
                    message: format!("{e:#}"),
                });
            }
            result
        })
        .with_context(|| format!("cannot start the {name} thread"))?;
    Ok(Running {
        events: Some(events),
        worker,
        name: name.into(),
    })
}

impl<T> Running<T> {
    /// Hands the job's events to `observer` until they end or the user leaves.
    pub fn follow(&mut self, observer: &mut dyn Observer) -> Result<Exit> {
        match self.events.take() {
            Some(events) => observer.follow(events),
            None => Ok(Exit::Quit),
        }
    }

    /// Waits for the job to end and gives its result.
    pub fn wait(self) -> Result<T> {
        self.worker
            .join()
            .map_err(|_| anyhow::anyhow!("the {} thread panicked", self.name))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it is given.
    #[derive(Default)]
    struct Recorder(Vec<Event>);

    impl Observer for Recorder {
        fn event(&mut self, event: &Event) {
            self.0.push(event.clone());
        }
    }

    #[test]
    fn the_observer_gets_every_event_in_order_and_a_failure_last() {
        let mut running = start::<()>("test job", Vec::new(), |emit| {
            for i in 0..3 {
                emit(Event::Notice {
                    message: format!("step {i}"),
                });
            }
            anyhow::bail!("no more steps")
        })
        .unwrap();
        let mut recorder = Recorder::default();
        assert_eq!(running.follow(&mut recorder).unwrap(), Exit::Quit);
        let error = running.wait().err().unwrap();
        assert_eq!(error.to_string(), "no more steps");
        let messages: Vec<String> = recorder
            .0
            .iter()
            .map(|e| match e {
                Event::Notice { message } | Event::Failed { message } => message.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(messages, ["step 0", "step 1", "step 2", "no more steps"]);
    }
}
