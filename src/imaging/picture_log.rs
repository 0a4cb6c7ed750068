//! `CRACKSCOPE_PICTURE_LOG=DIR`: a record of the pictures sent to the terminal, so that a check
//! of real terminal emulators (`scripts/real_terminal_check.sh`) can compare screenshots with
//! what should be on screen. Each picture made is saved as the PNG of the pixels sent (for half
//! blocks, one pixel a half cell) with a line in `DIR/pictures.jsonl`; each time the set of
//! pictures on screen changes, `DIR/frames.jsonl` gets a line with their places (cells) and the
//! time. Off unless the variable is set; failures to write are ignored (it is a diagnostic).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use image::RgbImage;

/// The environment variable naming the log's folder.
pub const PICTURE_LOG_ENV: &str = "CRACKSCOPE_PICTURE_LOG";

fn dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(std::env::var_os(PICTURE_LOG_ENV)?);
        std::fs::create_dir_all(&dir).ok()?;
        Some(dir)
    })
    .as_deref()
}

/// Whether pictures are being logged.
pub fn enabled() -> bool {
    dir().is_some()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn append(name: &str, line: &serde_json::Value) {
    static LOCK: Mutex<()> = Mutex::new(());
    let Some(dir) = dir() else { return };
    let _guard = LOCK.lock();
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
    {
        let _ = writeln!(file, "{line}");
    }
}

/// A picture made: `pixels` are what is sent (at their size on screen), `cells` what it covers,
/// `cell` the terminal's cell size in pixels it was made for.
pub fn picture(id: u32, protocol: &str, pixels: &RgbImage, cells: (u16, u16), cell: (u16, u16)) {
    let Some(dir) = dir() else { return };
    let file = format!("picture-{id}.png");
    if pixels.save(dir.join(&file)).is_err() {
        return;
    }
    append(
        "pictures.jsonl",
        &serde_json::json!({
            "id": id,
            "protocol": protocol,
            "file": file,
            "px": [pixels.width(), pixels.height()],
            "cells": [cells.0, cells.1],
            "cell": [cell.0, cell.1],
            "time": now(),
        }),
    );
}

/// The pictures on screen after a frame, as (id, column, row) of their top-left cells, and how
/// many more the frame wanted that were not ready: logged when that differs from the last
/// frame's.
pub fn frame(on_screen: &[(u32, u16, u16)], pending: usize) {
    type Frame = (Vec<(u32, u16, u16)>, usize);
    static LAST: Mutex<Option<Frame>> = Mutex::new(None);
    if dir().is_none() {
        return;
    }
    let Ok(mut last) = LAST.lock() else { return };
    let this = (on_screen.to_vec(), pending);
    if last.as_ref() == Some(&this) {
        return;
    }
    *last = Some(this);
    let pictures: Vec<serde_json::Value> = on_screen
        .iter()
        .map(|(id, x, y)| serde_json::json!({ "id": id, "x": x, "y": y }))
        .collect();
    append(
        "frames.jsonl",
        &serde_json::json!({ "time": now(), "pictures": pictures, "pending": pending }),
    );
}

/// How pictures are drawn in this terminal, and its cell size from the window's size in pixels:
/// logged once, as the view starts or the command prints.
pub fn terminal(protocol: &str, passthrough: bool, drawer: &str, window_cell: Option<(u16, u16)>) {
    append(
        "terminal.jsonl",
        &serde_json::json!({
            "protocol": protocol,
            "passthrough": passthrough,
            "drawer": drawer,
            "window_cell": window_cell.map(|(w, h)| [w, h]),
            "time": now(),
        }),
    );
}
