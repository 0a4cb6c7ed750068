//! `metrics.jsonl`: every event of a run, one JSON object a line, appended as it happens, so a run can
//! be read back (by `watch`, by scripts) while it is still going or after it ended.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::run::event::Event;

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

/// What one read of a run's log gave.
#[derive(Debug, Default, PartialEq)]
pub struct ReadBack {
    pub events: Vec<Event>,
    /// The byte offset up to which the file was consumed (where the next read starts).
    pub offset: u64,
    /// Complete lines that were not events (garbled by a crash or a full disk, or edited by
    /// hand): skipped, so the rest of the history still shows.
    pub skipped_lines: usize,
}

/// Reads the complete lines of a run's log from `offset`; a trailing partial line (a writer
/// mid-line) is left for the next read, and a complete line that is not an event is skipped and
/// counted.
pub fn read_from(path: &Path, offset: u64) -> Result<ReadBack> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(file);
    let mut read = ReadBack {
        offset,
        ..ReadBack::default()
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        read.offset += n as u64;
        match serde_json::from_slice(&line) {
            Ok(event) => read.events.push(event),
            Err(_) => read.skipped_lines += 1,
        }
    }
    Ok(read)
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
        let read = read_from(&path, 0).unwrap();
        assert_eq!(read.events, vec![a, b]);
        let offset = read.offset;
        // A writer caught mid-line: nothing new yet, and the offset does not move past the fragment.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"event\":\"no")
            .unwrap();
        let more = read_from(&path, offset).unwrap();
        assert!(more.events.is_empty());
        assert_eq!(more.offset, offset);
    }

    fn epoch(n: usize) -> Event {
        Event::Epoch {
            epoch: n,
            iteration: 10 * n,
            elapsed_s: n as f64,
        }
    }

    #[test]
    fn a_garbled_line_is_skipped_and_counted_not_the_end_of_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut text = String::new();
        for (i, e) in [epoch(1), epoch(2), epoch(3)].iter().enumerate() {
            text += &serde_json::to_string(e).unwrap();
            text.push('\n');
            if i == 0 {
                // A line cut short by a crash, then garbage from a full disk.
                text += "{\"event\":\"iteration\",\"epo\n\u{0}\u{0}\u{1}not json\n";
            }
        }
        std::fs::write(&path, text).unwrap();
        let read = read_from(&path, 0).unwrap();
        assert_eq!(read.events, vec![epoch(1), epoch(2), epoch(3)]);
        assert_eq!(read.skipped_lines, 2);
    }
}
