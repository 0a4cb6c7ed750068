//! The pictures in real terminal emulators, judged from screenshots: xterm (sixel), mlterm, kitty
//! and Konsole on a virtual X display (Xvfb), each also with tmux inside, run the dashboard
//! (`watch` of a finished run), the scan view, `samples` and `gradcam`, in every graphics mode.
//! Keys are typed with xdotool and the window photographed with ImageMagick's `import` after
//! each. From the pixels: the program is still running after every key; every picture it says it
//! drew (`CRACKSCOPE_PICTURE_LOG`) is on screen where it said, as the pixels it sent (pictures)
//! or as coloured cells (half blocks); nothing of a picture stays once a view no longer shows it.
//!
//! Run by `scripts/real_terminal_check.sh`, which names the terminals in
//! `CRACKSCOPE_REAL_TERMINALS` (e.g. "xterm mlterm kitty konsole"); without it every test here
//! skips. Screenshots and the table of outcomes go to `CRACKSCOPE_REAL_TERMINALS_OUT`.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::pixels::{self, Integral};
use common::x11::{installed, Emulator, Terminal, Xvfb};
use common::*;
use image::RgbImage;

const BIN: &str = env!("CARGO_BIN_EXE_crackscope");
/// The window: the 160 x 48, where the browser grid holds 45 pictures.
const COLUMNS: u16 = 160;
const ROWS: u16 = 48;
const MODES: [&str; 5] = ["auto", "sixel", "kitty", "iterm2", "halfblocks"];

/// The terminals asked for, or None (skip) when the check was not asked for.
fn asked_for(emulator: Emulator) -> bool {
    let Ok(list) = std::env::var("CRACKSCOPE_REAL_TERMINALS") else {
        eprintln!("skipping: CRACKSCOPE_REAL_TERMINALS is not set (scripts/real_terminal_check.sh sets it)");
        return false;
    };
    if !list.split_whitespace().any(|t| t == emulator.name()) {
        eprintln!(
            "skipping {}: not in CRACKSCOPE_REAL_TERMINALS",
            emulator.name()
        );
        return false;
    }
    for program in ["Xvfb", "xdotool", "import", "tmux", emulator.program()] {
        assert!(
            installed(program),
            "{program} is needed for the real-terminal check of {}",
            emulator.name()
        );
    }
    true
}

fn out_dir() -> PathBuf {
    let dir = std::env::var_os("CRACKSCOPE_REAL_TERMINALS_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("crackscope-real-terminals"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A finished run (48 test images: a full 45-picture browser grid), a scan of three photos, and
/// two images for `gradcam`; made once for all terminals.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    run: PathBuf,
    scan: PathBuf,
    images: Vec<PathBuf>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let run_dir = root.join("run");
        ok(&run(&[
            "demo",
            "--headless",
            "--per-class",
            "120",
            "--epochs",
            "3",
            "--run",
            run_dir.to_str().unwrap(),
        ]));
        let surfaces = synth_photos(&root.join("surfaces"), 3, 600);
        let scan = root.join("scan");
        ok(&run(&[
            "scan",
            "--model",
            run_dir.to_str().unwrap(),
            surfaces.join("photos").to_str().unwrap(),
            "--masks",
            surfaces.join("masks").to_str().unwrap(),
            "--out",
            scan.to_str().unwrap(),
        ]));
        let mut images: Vec<PathBuf> = std::fs::read_dir(run_dir.join("data").join("Positive"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        images.sort();
        images.truncate(2);
        Fixture {
            _dir: dir,
            root,
            run: run_dir,
            scan,
            images,
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    Dashboard,
    ScanView,
    Samples,
    Gradcam,
}

impl Screen {
    const ALL: [Screen; 4] = [
        Screen::Dashboard,
        Screen::ScanView,
        Screen::Samples,
        Screen::Gradcam,
    ];

    fn name(self) -> &'static str {
        match self {
            Screen::Dashboard => "dashboard",
            Screen::ScanView => "scan view",
            Screen::Samples => "samples",
            Screen::Gradcam => "gradcam",
        }
    }

    fn args(self, f: &Fixture) -> Vec<String> {
        let s = |p: &Path| p.to_str().unwrap().to_string();
        match self {
            Screen::Dashboard => vec!["watch".into(), s(&f.run)],
            Screen::ScanView => vec!["watch".into(), s(&f.scan)],
            Screen::Samples => vec![
                "samples".into(),
                s(&f.run.join("data")),
                "--count".into(),
                "16".into(),
            ],
            Screen::Gradcam => {
                let mut args = vec![
                    "gradcam".into(),
                    "--model".into(),
                    s(&f.run),
                    "--out".into(),
                    s(&f.root.join("heatmaps")),
                ];
                args.extend(f.images.iter().map(|p| s(p)));
                args
            }
        }
    }

    /// The keys typed, in xdotool's names, after the first screen.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Screen::Dashboard => &[
                "2", "3", "4", "5", "g", "Right", "question", "Escape", "g", "1",
            ],
            Screen::ScanView => &[
                "n",
                "plus",
                "bracketright",
                "w",
                "question",
                "Escape",
                "minus",
                "p",
                // The errors layer, the threshold sweep, a labelling session (zoomed onto the
                // least sure window, framed; ended without an answer, so the fixture's scan
                // folder stays unlabelled for the next case), and back.
                "t",
                "g",
                "g",
                "l",
                "l",
                "t",
                "0",
            ],
            Screen::Samples | Screen::Gradcam => &[],
        }
    }

    fn interactive(self) -> bool {
        matches!(self, Screen::Dashboard | Screen::ScanView)
    }
}

/// How a picture was made, from `pictures.jsonl`.
#[derive(Debug, Clone)]
struct Made {
    protocol: String,
    pixels: RgbImage,
    cells: (u16, u16),
}

/// A frame as logged: its time, its pictures as (id, column, row), and how many were pending.
type LoggedFrame = (f64, Vec<(u64, u16, u16)>, usize);

/// What the program's picture log says.
#[derive(Debug, Default)]
struct Log {
    protocol: Option<String>,
    passthrough: bool,
    window_cell: Option<(f64, f64)>,
    pictures: HashMap<u64, Made>,
    frames: Vec<LoggedFrame>,
}

fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

impl Log {
    fn read(dir: &Path, pictures: &mut HashMap<u64, Made>) -> Log {
        let mut log = Log::default();
        if let Some(t) = read_lines(&dir.join("terminal.jsonl")).last() {
            log.protocol = t["protocol"].as_str().map(String::from);
            log.passthrough = t["passthrough"].as_bool().unwrap_or(false);
            log.window_cell = t["window_cell"]
                .as_array()
                .map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap()));
        }
        for p in read_lines(&dir.join("pictures.jsonl")) {
            let id = p["id"].as_u64().unwrap();
            if pictures.contains_key(&id) {
                continue;
            }
            let Ok(img) = image::open(dir.join(p["file"].as_str().unwrap())) else {
                continue;
            };
            let cells = p["cells"].as_array().unwrap();
            pictures.insert(
                id,
                Made {
                    protocol: p["protocol"].as_str().unwrap().to_string(),
                    pixels: img.to_rgb8(),
                    cells: (
                        cells[0].as_u64().unwrap() as u16,
                        cells[1].as_u64().unwrap() as u16,
                    ),
                },
            );
        }
        log.pictures = pictures.clone();
        for f in read_lines(&dir.join("frames.jsonl")) {
            let on_screen = f["pictures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["id"].as_u64().unwrap(),
                        p["x"].as_u64().unwrap() as u16,
                        p["y"].as_u64().unwrap() as u16,
                    )
                })
                .collect();
            log.frames.push((
                f["time"].as_f64().unwrap(),
                on_screen,
                f["pending"].as_u64().unwrap_or(0) as usize,
            ));
        }
        log
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One run of a program in a terminal.
struct Case {
    emulator: Emulator,
    /// None: no tmux; Some(true): tmux passing pictures through; Some(false): tmux as installed.
    tmux: Option<bool>,
    mode: &'static str,
    screen: Screen,
}

impl Case {
    fn label(&self) -> String {
        let tmux = match self.tmux {
            None => "",
            Some(true) => " + tmux",
            Some(false) => " + tmux (no passthrough)",
        };
        format!(
            "{}{tmux} · {} · {}",
            self.emulator.name(),
            self.mode,
            self.screen.name()
        )
    }

    fn slug(&self) -> String {
        self.label()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// What a case ended as, for the table.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Picture(String),
    Blocks,
    Refused,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Picture(p) => write!(f, "picture ({p})"),
            Outcome::Blocks => f.write_str("blocks"),
            Outcome::Refused => f.write_str("refused"),
        }
    }
}

/// The result of one case: its outcome, and for the dashboard the seconds from the grid key to
/// the finished 45-picture grid.
struct CaseResult {
    outcome: Outcome,
    grid_seconds: Option<(f64, usize)>,
}

/// Runs one case and checks its screens; panics with what went wrong.
fn run_case(x: &Xvfb, case: &Case, f: &Fixture, known: &mut Option<Origin>) -> CaseResult {
    let out = out_dir().join(case.slug());
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let log_dir = out.join("log");
    let args = case.screen.args(f);
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let inner = out.join("run.sh");
    std::fs::write(
        &inner,
        format!(
            "cd '{root}'\nexport CRACKSCOPE_PICTURE_LOG='{log}' CRACKSCOPE_GRAPHICS={mode}\n\
             clear\n'{BIN}' {args} 2>'{out}/stderr.txt'\necho $? > '{out}/exit.txt'\nsleep 600\n",
            root = f.root.display(),
            log = log_dir.display(),
            mode = case.mode,
            args = quoted.join(" "),
            out = out.display(),
        ),
    )
    .unwrap();
    let server = format!("crackscope-check-{}", std::process::id());
    let _tmux = case.tmux.map(|_| TmuxServer(server.clone()));
    let script = match case.tmux {
        None => inner.clone(),
        Some(passthrough) => {
            let conf = out.join("tmux.conf");
            std::fs::write(
                &conf,
                // Configured for pictures: passthrough on, and 24-bit colour to the terminal
                // outside (tmux assumes 8 colours for one it does not know, such as mlterm).
                if passthrough {
                    "set -g default-terminal tmux-256color\nset -g allow-passthrough on\n\
                     set -as terminal-features ',*:RGB'\n"
                } else {
                    "set -g default-terminal tmux-256color\nset -g allow-passthrough off\n"
                },
            )
            .unwrap();
            let outer = out.join("tmux.sh");
            std::fs::write(
                &outer,
                format!(
                    "exec tmux -L '{server}' -f '{conf}' new-session sh '{inner}'\n",
                    conf = conf.display(),
                    inner = inner.display()
                ),
            )
            .unwrap();
            outer
        }
    };
    let terminal = Terminal::start(case.emulator, x, COLUMNS, ROWS, &script);
    let command_line = format!("{BIN} {}", args.join(" "));
    drive(case, &terminal, &out, &log_dir, &command_line, known)
}

/// The check's own tmux server for one case, killed when the case ends however it ends (a
/// failed case unwinds), so that neither tmux nor the program inside it outlives the case.
struct TmuxServer(String);

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.0, "kill-server"])
            .status();
    }
}

fn alive(command_line: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", "-x", command_line])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Waits until the program has shown its first screen: the log names the protocol (or it ended).
fn wait_started(out: &Path, log_dir: &Path) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if out.join("exit.txt").exists() || log_dir.join("terminal.jsonl").exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the program did not start within 60 s");
}

/// Waits until the frames settle (every wanted picture drawn, nothing new for a moment).
fn wait_settled(log_dir: &Path, since: f64) {
    let started = Instant::now();
    let mut cache = HashMap::new();
    let mut last_len = usize::MAX;
    let mut stable_since = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let log = Log::read(log_dir, &mut cache);
        let len = log.frames.len();
        if len != last_len {
            last_len = len;
            stable_since = Instant::now();
        }
        let complete = log
            .frames
            .last()
            .is_some_and(|(time, _, pending)| *pending == 0 && (*time >= since || len > 0));
        if complete && stable_since.elapsed() > Duration::from_millis(700) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The text area's top-left in the window, found from the first picture that can be found.
type Origin = (f64, f64);

fn drive(
    case: &Case,
    terminal: &Terminal,
    out: &Path,
    log_dir: &Path,
    command_line: &str,
    known: &mut Option<Origin>,
) -> CaseResult {
    wait_started(out, log_dir);
    let mut cache = HashMap::new();
    if !case.screen.interactive() {
        let started = Instant::now();
        while !out.join("exit.txt").exists() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{}: did not end",
                case.label()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(code) = std::fs::read_to_string(out.join("exit.txt")) {
        let stderr = std::fs::read_to_string(out.join("stderr.txt")).unwrap_or_default();
        if code.trim() != "0" {
            assert!(
                stderr.contains("does not draw them"),
                "{}: ended with {} and not a refusal:\n{stderr}",
                case.label(),
                code.trim()
            );
            terminal.screenshot(&out.join("refused.png"));
            return CaseResult {
                outcome: Outcome::Refused,
                grid_seconds: None,
            };
        }
        assert!(
            !case.screen.interactive(),
            "{}: the view ended by itself at the start:\n{stderr}",
            case.label()
        );
    }
    let log = Log::read(log_dir, &mut cache);
    let protocol = log.protocol.clone().expect("the log names the protocol");
    let outcome = if protocol == "halfblocks" {
        Outcome::Blocks
    } else {
        Outcome::Picture(protocol.clone())
    };
    let cell = log
        .window_cell
        .expect("the terminal reports its size in pixels");
    let mut origin: Option<Origin> = None;
    if !case.screen.interactive() {
        let picture = log
            .pictures
            .values()
            .next()
            .expect("the picture was logged");
        check_printed(case, terminal, out, picture, cell, known);
        return CaseResult {
            outcome,
            grid_seconds: None,
        };
    }
    wait_settled(log_dir, 0.0);
    let mut shown = check_screen(
        case,
        terminal,
        out,
        log_dir,
        "start",
        cell,
        &mut origin,
        &[],
        &mut cache,
        known,
    );
    let mut grid_seconds = None;
    for (step, key) in case.screen.keys().iter().enumerate() {
        let pressed = now();
        terminal.key(key);
        std::thread::sleep(Duration::from_millis(200));
        wait_settled(log_dir, pressed);
        assert!(
            alive(command_line),
            "{}: the program ended after key {key} (step {step})",
            case.label()
        );
        let name = format!("{step:02}-{key}");
        let before = shown.clone();
        shown = check_screen(
            case,
            terminal,
            out,
            log_dir,
            &name,
            cell,
            &mut origin,
            &before,
            &mut cache,
            known,
        );
        if case.screen == Screen::Dashboard && *key == "g" && grid_seconds.is_none() {
            let log = Log::read(log_dir, &mut cache);
            grid_seconds = log
                .frames
                .iter()
                .find(|(time, pictures, pending)| {
                    *time >= pressed && *pending == 0 && pictures.len() > 1
                })
                .map(|(time, pictures, _)| (time - pressed, pictures.len()));
        }
    }
    assert!(
        alive(command_line),
        "{}: the program ended by itself",
        case.label()
    );
    terminal.key("q");
    CaseResult {
        outcome,
        grid_seconds,
    }
}

/// A picture on screen as the log says: its pixels, where (cells), and how it was made.
#[derive(Clone)]
struct OnScreen {
    id: u64,
    made: Made,
    column: u16,
    row: u16,
}

/// Where a picture made at `made.pixels` shows, in pixels from its top-left cell: sixel and kitty
/// pictures at their own size, iTerm2 pictures scaled by the terminal to fit their cells.
fn shown_size(made: &Made, cell: (f64, f64)) -> (f64, f64) {
    let (w, h) = (
        f64::from(made.pixels.width()),
        f64::from(made.pixels.height()),
    );
    if made.protocol == "iterm2" {
        let scale =
            (f64::from(made.cells.0) * cell.0 / w).min(f64::from(made.cells.1) * cell.1 / h);
        (w * scale, h * scale)
    } else {
        (w, h)
    }
}

/// The picture's place on screen in pixels from the text area's origin: (x0, y0, x1, y1).
fn place(p: &OnScreen, cell: (f64, f64)) -> (f64, f64, f64, f64) {
    let (x, y) = (f64::from(p.column) * cell.0, f64::from(p.row) * cell.1);
    let (w, h) = if is_blocks(&p.made) {
        (
            f64::from(p.made.cells.0) * cell.0,
            f64::from(p.made.cells.1) * cell.1,
        )
    } else {
        shown_size(&p.made, cell)
    };
    (x, y, x + w, y + h)
}

/// The share of `old`'s place that `new` covers.
fn covered_share(old: &OnScreen, new: &OnScreen, cell: (f64, f64)) -> f64 {
    let (a, b) = (place(old, cell), place(new, cell));
    let w = (a.2.min(b.2) - a.0.max(b.0)).max(0.0);
    let h = (a.3.min(b.3) - a.1.max(b.1)).max(0.0);
    let area = (a.2 - a.0) * (a.3 - a.1);
    if area > 0.0 {
        w * h / area
    } else {
        0.0
    }
}

fn is_blocks(made: &Made) -> bool {
    made.protocol == "halfblocks"
}

/// How far the picture on screen is from what was sent (mean colour difference of blocks).
fn picture_difference(
    screen: &Integral,
    shot: &RgbImage,
    p: &OnScreen,
    origin: Origin,
    cell: (f64, f64),
) -> f64 {
    let x = origin.0 + f64::from(p.column) * cell.0;
    let y = origin.1 + f64::from(p.row) * cell.1;
    if is_blocks(&p.made) {
        let _ = shot;
        pixels::half_block_difference(screen, &p.made.pixels, (x, y), cell)
    } else {
        let (w, h) = shown_size(&p.made, cell);
        let expected = Integral::new(&p.made.pixels);
        pixels::difference(screen, &expected, (x, y, w, h), 16)
    }
}

/// Largest mean difference allowed between a picture and what was sent: sixel's 216 dithered
/// colours and the terminals' scaling stay well under it; another picture or text is far over.
const PICTURE_TOLERANCE: f64 = 14.0;
const BLOCK_TOLERANCE: f64 = 22.0;

/// Finds the text area's origin from a picture on screen: its top-left cell is known, so the
/// origin is where the picture is less that many cells.
fn calibrate(
    screen: &Integral,
    p: &OnScreen,
    cell: (f64, f64),
    around: Option<Origin>,
) -> Option<Origin> {
    let (cx, cy) = (f64::from(p.column) * cell.0, f64::from(p.row) * cell.1);
    let (w, h) = if is_blocks(&p.made) {
        (
            f64::from(p.made.cells.0) * cell.0,
            f64::from(p.made.cells.1) * cell.1,
        )
    } else {
        shown_size(&p.made, cell)
    };
    let expected = if is_blocks(&p.made) {
        // Half blocks: each pixel a half cell.
        Integral::new(&image::imageops::resize(
            &p.made.pixels,
            w as u32,
            (f64::from(p.made.pixels.height()) * cell.1 / 2.0) as u32,
            image::imageops::FilterType::Nearest,
        ))
    } else {
        Integral::new(&p.made.pixels)
    };
    let eh = if is_blocks(&p.made) {
        f64::from(p.made.pixels.height()) * cell.1 / 2.0
    } else {
        h
    };
    // The text area starts near the window's top-left corner; once known for a terminal (from
    // half blocks, which the terminal places itself), within 2 pixels of that.
    let (xs, ys) = match around {
        Some((ox, oy)) => (
            (cx + ox) as i64 - 2..(cx + ox) as i64 + 3,
            (cy + oy) as i64 - 2..(cy + oy) as i64 + 3,
        ),
        // A scrollbar (mlterm's is on the left), a border or padding, a toolbar.
        None => (cx as i64..cx as i64 + 48, cy as i64..cy as i64 + 100),
    };
    let (x, y, d) = pixels::find(screen, &expected, (w, eh), xs, ys);
    (d < 3.0 * PICTURE_TOLERANCE).then_some((x as f64 - cx, y as f64 - cy))
}

/// Screenshot after a step, and the checks: every picture the log says is on screen is there (as
/// sent, at its place), and the pictures of the step before that are gone no longer show.
#[allow(clippy::too_many_arguments)]
fn check_screen(
    case: &Case,
    terminal: &Terminal,
    out: &Path,
    log_dir: &Path,
    name: &str,
    cell: (f64, f64),
    origin: &mut Option<Origin>,
    before: &[OnScreen],
    cache: &mut HashMap<u64, Made>,
    known: &mut Option<Origin>,
) -> Vec<OnScreen> {
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        std::thread::sleep(Duration::from_millis(400));
        let log = Log::read(log_dir, cache);
        let on_screen: Vec<OnScreen> = log
            .frames
            .last()
            .map(|(_, pictures, _)| {
                pictures
                    .iter()
                    .filter_map(|(id, column, row)| {
                        Some(OnScreen {
                            id: *id,
                            made: log.pictures.get(id)?.clone(),
                            column: *column,
                            row: *row,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let path = out.join(format!("{name}.png"));
        let shot = terminal.screenshot(&path);
        let screen = Integral::new(&shot);
        if origin.is_none() {
            *origin = on_screen
                .iter()
                .find_map(|p| calibrate(&screen, p, cell, *known));
            if known.is_none() {
                *known = *origin;
            }
        }
        let mut problems = Vec::new();
        if let Some(origin) = *origin {
            for p in &on_screen {
                let d = picture_difference(&screen, &shot, p, origin, cell);
                let tolerance = if is_blocks(&p.made) {
                    BLOCK_TOLERANCE
                } else {
                    PICTURE_TOLERANCE
                };
                if d > tolerance {
                    problems.push(format!(
                        "picture {} ({}, {}x{} cells at column {} row {}) differs from what was sent by {d:.1}",
                        p.id, p.made.protocol, p.made.cells.0, p.made.cells.1, p.column, p.row
                    ));
                }
            }
            for old in before {
                // A picture now drawn over (most of) the old one's place was checked above: its
                // pixels are there, so the old one's cannot be. (Two pictures of a plain surface,
                // a photo and the same photo zoomed, can differ by less than the tolerance.)
                let replaced = on_screen.iter().any(|p| {
                    (p.column == old.column && p.row == old.row)
                        || covered_share(old, p, cell) >= 0.8
                });
                if on_screen.iter().any(|p| p.id == old.id) || replaced {
                    continue;
                }
                let d = picture_difference(&screen, &shot, old, origin, cell);
                if d < PICTURE_TOLERANCE {
                    problems.push(format!(
                        "picture {} of the step before stayed on screen (difference {d:.1})",
                        old.id
                    ));
                }
            }
        } else if !on_screen.is_empty() {
            problems.push("no picture could be found on screen".into());
        }
        if problems.is_empty() {
            return on_screen;
        }
        assert!(
            Instant::now() < deadline,
            "{} after {name}: {}\n(screenshot {})",
            case.label(),
            problems.join("; "),
            path.display()
        );
    }
}

/// The printed picture of `samples` or `gradcam`: somewhere below the command, at the left edge,
/// whole, as sent.
fn check_printed(
    case: &Case,
    terminal: &Terminal,
    out: &Path,
    made: &Made,
    cell: (f64, f64),
    known: &Option<Origin>,
) {
    let path = out.join("printed.png");
    let deadline = Instant::now() + Duration::from_secs(6);
    let blocks = is_blocks(made);
    let (w, h) = if blocks {
        (
            f64::from(made.cells.0) * cell.0,
            f64::from(made.pixels.height()) * cell.1 / 2.0,
        )
    } else {
        shown_size(made, cell)
    };
    let expected = if blocks {
        Integral::new(&image::imageops::resize(
            &made.pixels,
            w as u32,
            h as u32,
            image::imageops::FilterType::Nearest,
        ))
    } else {
        Integral::new(&made.pixels)
    };
    loop {
        let shot = terminal.screenshot(&path);
        let screen = Integral::new(&shot);
        let bottom = (f64::from(shot.height()) - h).max(1.0) as i64;
        let (x, y, _) = pixels::find(&screen, &expected, (w, h), 0..48, 0..bottom);
        // Judged as any picture is, at the place found (the cell grid's origin is within a cell
        // of the window's corner, the picture at the left edge).
        let p = OnScreen {
            id: 0,
            made: made.clone(),
            column: 0,
            row: 0,
        };
        let d = picture_difference(&screen, &shot, &p, (x as f64, y as f64), cell);
        let tolerance = if blocks {
            BLOCK_TOLERANCE
        } else {
            PICTURE_TOLERANCE
        };
        // On the cell grid, at its left edge.
        let aligned = match *known {
            Some((ox, oy)) => {
                let off_row = (y as f64 - oy).rem_euclid(cell.1);
                (x as f64 - ox).abs() <= 2.0 && (off_row <= 2.0 || off_row >= cell.1 - 2.0)
            }
            None => x < 48,
        };
        if d <= tolerance && aligned {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: the printed picture is not on screen as sent (best at {x},{y}: difference {d:.1})\n(screenshot {})",
            case.label(),
            path.display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What each terminal should do, as measured: which protocol `auto` picks and which forced ones
/// it draws; every other forced one is refused.
fn expected(emulator: Emulator, tmux: Option<bool>, mode: &str) -> Outcome {
    let picture = |p: &str| Outcome::Picture(p.to_string());
    let draws: &[&str] = match (emulator, tmux) {
        (_, Some(false)) => &[],
        (Emulator::Xterm | Emulator::Mlterm, _) => &["sixel"],
        (Emulator::Kitty, None) => &["kitty"],
        // kitty 0.26 places pictures only directly, which tmux would not keep.
        (Emulator::Kitty, Some(true)) => &[],
        (Emulator::Konsole, None) => &["iterm2", "sixel", "kitty"],
        (Emulator::Konsole, Some(true)) => &["iterm2", "sixel"],
    };
    match mode {
        "halfblocks" => Outcome::Blocks,
        "auto" => draws.first().map_or(Outcome::Blocks, |p| picture(p)),
        forced if draws.contains(&forced) => picture(forced),
        _ => Outcome::Refused,
    }
}

/// Runs every case for `emulator` and writes its table; fails on the first problem.
fn check_terminal(emulator: Emulator) {
    if !asked_for(emulator) {
        return;
    }
    let f = fixture();
    let x = Xvfb::start(1920, 1200);
    let mut table = String::new();
    let mut failures = Vec::new();
    let mut cases = Vec::new();
    for tmux in [None, Some(true)] {
        for mode in MODES {
            for screen in Screen::ALL {
                cases.push(Case {
                    emulator,
                    tmux,
                    mode,
                    screen,
                });
            }
        }
    }
    // tmux as installed (no passthrough): pictures cannot pass, half blocks instead.
    for screen in Screen::ALL {
        cases.push(Case {
            emulator,
            tmux: Some(false),
            mode: "auto",
            screen,
        });
    }
    // Half blocks first: text the terminal places itself, from which the text area's origin in
    // the window is learnt; every picture is then checked against that origin.
    cases.sort_by_key(|c| (c.mode != "halfblocks", c.tmux.is_some()));
    let mut known: Option<Origin> = None;
    // CRACKSCOPE_REAL_TERMINALS_ONLY="sixel · dashboard" runs only the cases whose label holds it.
    let only = std::env::var("CRACKSCOPE_REAL_TERMINALS_ONLY").unwrap_or_default();
    cases.retain(|c| c.label().contains(&only));
    for case in &cases {
        let started = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_case(&x, case, f, &mut known)
        }));
        let line = match result {
            Ok(result) => {
                let want = expected(case.emulator, case.tmux, case.mode);
                let cli_kitty = matches!(want, Outcome::Picture(ref p) if p == "kitty");
                let same = result.outcome == want
                    || (cli_kitty && result.outcome == Outcome::Picture("kitty".into()));
                if !same {
                    failures.push(format!(
                        "{}: {} where {} was expected",
                        case.label(),
                        result.outcome,
                        want
                    ));
                }
                let grid = result
                    .grid_seconds
                    .map(|(s, n)| format!(" · {n}-picture grid {s:.2} s after the key"))
                    .unwrap_or_default();
                format!(
                    "{} -> {}{grid} ({:.0} s)",
                    case.label(),
                    result.outcome,
                    started.elapsed().as_secs_f64()
                )
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(message.clone());
                format!("{} -> FAILED: {message}", case.label())
            }
        };
        eprintln!("{line}");
        writeln!(table, "{line}").unwrap();
    }
    std::fs::write(out_dir().join(format!("{}.txt", emulator.name())), &table).unwrap();
    assert!(
        failures.is_empty(),
        "{}:\n{}",
        emulator.name(),
        failures.join("\n")
    );
}

#[test]
fn xterm() {
    check_terminal(Emulator::Xterm);
}

#[test]
fn mlterm() {
    check_terminal(Emulator::Mlterm);
}

#[test]
fn kitty() {
    check_terminal(Emulator::Kitty);
}

#[test]
fn konsole() {
    check_terminal(Emulator::Konsole);
}
