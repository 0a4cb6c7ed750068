//! Many input files, one outcome each: a command that reads many files (`predict`, `eval`) reports
//! a file it cannot use as a row with the reason and goes on with the rest; at its end
//! [`SomeInputsFailed`] says how many failed, which the binary turns into its own exit code.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::dataset::Skipped;

/// One input file's outcome: its result, or why it has none. In JSON the result's own fields, or
/// `{path, error}`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum FileOutcome<T> {
    Done(T),
    Failed { path: PathBuf, error: String },
}

impl<T> FileOutcome<T> {
    pub fn is_failed(&self) -> bool {
        matches!(self, FileOutcome::Failed { .. })
    }

    /// The same outcome with its result turned into another.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> FileOutcome<U> {
        match self {
            FileOutcome::Done(value) => FileOutcome::Done(f(value)),
            FileOutcome::Failed { path, error } => FileOutcome::Failed { path, error },
        }
    }
}

/// Reads each of `paths` with `read`: what could be read, in order, and for each path either its
/// index among those or why it could not be read.
pub fn read_each<T>(
    paths: &[PathBuf],
    read: impl Fn(&Path) -> anyhow::Result<T>,
) -> (Vec<T>, Vec<Result<usize, String>>) {
    let mut read_ok = Vec::with_capacity(paths.len());
    let mut where_ = Vec::with_capacity(paths.len());
    for path in paths {
        match read(path) {
            Ok(value) => {
                where_.push(Ok(read_ok.len()));
                read_ok.push(value);
            }
            // One line per file, whatever the decoder's message looks like.
            Err(e) => where_.push(Err(format!("{e:#}")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "))),
        }
    }
    (read_ok, where_)
}

/// The error a command ends with when it reported every file it could use but some it could not
/// (each named in its output). The binary exits with [`SomeInputsFailed::EXIT_CODE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SomeInputsFailed {
    pub failed: usize,
    pub total: usize,
    /// What could not be done to them, e.g. "classified".
    pub what: &'static str,
}

impl SomeInputsFailed {
    /// The exit code of a command whose output is complete except for the files it names
    /// (documented in the README).
    pub const EXIT_CODE: u8 = 4;

    /// `Err` when any of `outcomes` failed.
    pub fn check<T>(outcomes: &[FileOutcome<T>], what: &'static str) -> anyhow::Result<()> {
        let failed = outcomes.iter().filter(|o| o.is_failed()).count();
        if failed == 0 {
            return Ok(());
        }
        Err(SomeInputsFailed {
            failed,
            total: outcomes.len(),
            what,
        }
        .into())
    }

    /// `Err` when any of `skipped` could not be read (files left out on purpose, such as labelling
    /// conflicts, do not count) beside the `used` files that were.
    pub fn check_skipped(skipped: &[Skipped], used: usize) -> anyhow::Result<()> {
        let failed = skipped.iter().filter(|s| s.is_unreadable()).count();
        if failed == 0 {
            return Ok(());
        }
        Err(SomeInputsFailed {
            failed,
            total: used + failed,
            what: "read",
        }
        .into())
    }
}

impl std::fmt::Display for SomeInputsFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} files could not be {} (each is named above with the reason); the others \
             are reported",
            self.failed, self.total, self.what
        )
    }
}

impl std::error::Error for SomeInputsFailed {}
