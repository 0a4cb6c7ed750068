//! `RUN/control.json`: requests from another process (`crackscope watch RUN`) to the training
//! running in RUN. Each request names the training it is meant for (the session of the lock
//! holder, see [`super::lock`]), so a request left over from an earlier training of the directory
//! is never obeyed by a resumed one.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlFile {
    /// The session of the training these requests are for; 0 (files of older versions) matches none.
    #[serde(default)]
    pub session: u64,
    pub paused: bool,
    pub stop: bool,
    /// Incremented for each "save a checkpoint now" request.
    pub save_now_seq: u64,
}

impl ControlFile {
    /// The file's requests; `Ok(None)` when there is none, an error naming the file when it is not
    /// a control file.
    pub fn read(path: &Path) -> Result<Option<ControlFile>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("{} is not a crackscope control file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Rewrites the whole file atomically: the training never reads half a request.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::core::fsutil::write_atomic(path, &serde_json::to_vec(self).expect("serialises"))
    }

    /// Removes the file (requests consumed, or stale); a missing file is fine.
    pub fn remove(path: &Path) -> Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}
