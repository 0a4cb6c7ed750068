//! `metrics.jsonl`: every event of a run, one JSON object a line, appended as it happens, so a run can
//! be read back (by `watch`, by scripts) while it is still going or after it ended.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::events::Event;

pub const FILE_NAME: &str = "metrics.jsonl";

/// Appends events to a run's `metrics.jsonl`. Each event is written with one `write` call of a whole
/// line and flushed, so a reader never sees half an event from a live writer, and a crash loses at most
/// the event being written.
pub struct RunLog {
    file: File,
    path: PathBuf,
}

impl RunLog {
    pub fn append_to(run_dir: &Path) -> Result<RunLog> {
        let path = run_dir.join(FILE_NAME);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {} for writing", path.display()))?;
        Ok(RunLog { file, path })
    }

    pub fn write(&mut self, event: &Event) -> Result<()> {
        let mut line = serde_json::to_string(event).expect("events always serialise");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .with_context(|| format!("cannot append to {}", self.path.display()))
    }
}

/// Reads the complete lines of a run's log; a trailing partial line (a writer mid-line) is left for the
/// next read. Returns the events and the byte offset up to which the file was consumed.
pub fn read_from(path: &Path, offset: u64) -> Result<(Vec<Event>, u64)> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(file);
    let mut events = Vec::new();
    let mut consumed = offset;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        consumed += n as u64;
        let event = serde_json::from_str(line.trim_end()).with_context(|| {
            format!(
                "{}: line at byte {} is not a crackscope event",
                path.display(),
                consumed - n as u64
            )
        })?;
        events.push(event);
    }
    Ok((events, consumed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_partial_lines_wait() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RunLog::append_to(dir.path()).unwrap();
        let a = Event::Validation {
            epoch: 1,
            iteration: 30,
            loss: 0.5,
            accuracy: 0.9,
            elapsed_s: 1.5,
        };
        let b = Event::Notice {
            message: "hello".into(),
        };
        log.write(&a).unwrap();
        log.write(&b).unwrap();
        let path = dir.path().join(FILE_NAME);
        let (events, offset) = read_from(&path, 0).unwrap();
        assert_eq!(events, vec![a, b]);
        // A writer caught mid-line: nothing new yet, and the offset does not move past the fragment.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"event\":\"no")
            .unwrap();
        let (more, offset2) = read_from(&path, offset).unwrap();
        assert!(more.is_empty());
        assert_eq!(offset2, offset);
    }
}
