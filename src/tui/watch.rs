//! The event source of `crackscope watch RUN`: follows `RUN/metrics.jsonl` as it grows and feeds
//! its events into the same kind of channel a live training uses. A run that ended shows whole;
//! a running one stays live.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::events::Event;
use crate::runlog;

/// How often the log is read again for new lines.
pub const POLL: Duration = Duration::from_millis(250);

/// Starts following `run_dir`'s log on the current tokio runtime. Problems (no log yet, a broken
/// line) come through as `Notice` events; after a broken line the log is not read further.
pub fn follow(run_dir: PathBuf) -> mpsc::Receiver<Event> {
    let (sender, receiver) = mpsc::channel(1024);
    tokio::spawn(tail(run_dir.join(runlog::FILE_NAME), sender));
    receiver
}

async fn tail(path: PathBuf, sender: mpsc::Sender<Event>) {
    let mut offset = 0;
    let mut said_waiting = false;
    loop {
        let read_path = path.clone();
        let read = tokio::task::spawn_blocking(move || runlog::read_from(&read_path, offset)).await;
        match read {
            Ok(Ok((events, next))) => {
                offset = next;
                for event in events {
                    if sender.send(event).await.is_err() {
                        return;
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
    use crate::runlog::RunLog;

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
}
