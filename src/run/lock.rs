//! Who owns a run directory (and, the same way, a scan's folder): a training holds an exclusive `flock` on `RUN/train.lock` for as long
//! as it runs. The kernel drops the lock when the process ends, however it ends (even `kill -9`), so
//! a killed training never leaves the directory stuck, and any reader can tell a live run from one
//! whose process is gone by trying the lock.
//!
//! The lock file is never deleted: deleting it while another process has it open would let two
//! trainings lock two different files of the same name.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// What a training writes into its lock file: enough for a refusal message and for `watch` to
/// address its requests to this training and no other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    /// Fresh for every start (a resume included): control requests carry it, so one meant for an
    /// earlier training of the same directory is never obeyed by a later one.
    pub session: u64,
}

/// An exclusive hold on a run directory; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    pub holder: Holder,
}

/// Takes the lock at `path` for this process, or says who holds it.
pub fn acquire(path: &Path, run: &Path) -> Result<RunLock> {
    acquire_or(path, |who| {
        format!(
            "{} is in use by another training{who}; wait for it to end, or stop it with \
             `crackscope watch {}`",
            run.display(),
            run.display()
        )
    })
}

/// Takes the lock at `path` for this process; when another holds it, fails with `refusal` of who
/// that is (" (process N)", or nothing when it cannot be read).
pub fn acquire_or(path: &Path, refusal: impl FnOnce(&str) -> String) -> Result<RunLock> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    if !try_flock(&file, libc::LOCK_EX)? {
        let who = read_holder(&mut file)
            .map(|h| format!(" (process {})", h.pid))
            .unwrap_or_default();
        bail!(refusal(&who));
    }
    let holder = Holder {
        pid: std::process::id(),
        session: new_session(),
    };
    let json = serde_json::to_vec(&holder).expect("lock holder serialises");
    (|| -> std::io::Result<()> {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&json)?;
        file.flush()
    })()
    .with_context(|| format!("cannot write the lock file {}", path.display()))?;
    Ok(RunLock {
        _file: file,
        holder,
    })
}

/// The training holding the lock at `path`, if one is alive. `None` when no process holds it (the
/// file is missing, or its training ended or was killed).
pub fn live_holder(path: &Path) -> Option<Holder> {
    let mut file = File::open(path).ok()?;
    match try_flock(&file, libc::LOCK_SH) {
        Ok(true) => {
            // Nobody trains; let go at once so a training may start.
            // SAFETY: flock on a file descriptor this function owns.
            unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_UN) };
            None
        }
        // Held: the holder writes its line right after locking, so retry a few times on a partial one.
        Ok(false) => (0..20).find_map(|_| {
            let holder = read_holder(&mut file);
            if holder.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            holder
        }),
        Err(_) => None,
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// `flock` without waiting: true when taken, false when someone else holds it.
fn try_flock(file: &File, kind: libc::c_int) -> Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a valid open file descriptor; no memory is shared with the kernel.
    let rc = unsafe { libc::flock(file.as_raw_fd(), kind | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error).context("cannot lock the run directory")
    }
}

/// A number no other start of a training is likely to draw: the clock, the process id and the
/// standard library's per-process random hash keys, mixed.
fn new_session() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.finish().max(1)
}

/// Temporary files of atomic writes (`.NAME.tmpPID`) that a killed process left in `dir`.
pub fn leftover_temporaries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with('.') && name.contains(".tmp") && e.path().is_file()
        })
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.lock");
        assert_eq!(live_holder(&path), None, "no lock file: nobody trains");
        let first = acquire(&path, dir.path()).unwrap();
        assert_eq!(live_holder(&path), Some(first.holder.clone()));
        let err = acquire(&path, dir.path()).expect_err("second training refused");
        let text = format!("{err:#}");
        assert!(
            text.contains("in use") && text.contains(&std::process::id().to_string()),
            "{text}"
        );
        drop(first);
        assert_eq!(
            live_holder(&path),
            None,
            "a released lock is not a live run"
        );
        let again = acquire(&path, dir.path()).unwrap();
        assert_ne!(again.holder.session, 0);
    }
}
