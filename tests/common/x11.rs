//! Real terminal emulators on a virtual X display: Xvfb, a terminal started on it with a command,
//! keys typed with xdotool and screenshots taken with ImageMagick's `import`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use image::RgbImage;

/// Whether `program` can be run (found on PATH).
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// A virtual X display; stopped when dropped.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    /// Starts Xvfb on the first free display from :140 up, `width` x `height` pixels.
    pub fn start(width: u32, height: u32) -> Xvfb {
        for number in 140..240 {
            let lock = PathBuf::from(format!("/tmp/.X{number}-lock"));
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
            if lock.exists() || socket.exists() {
                continue;
            }
            let display = format!(":{number}");
            let mut child = Command::new("Xvfb")
                .args([
                    display.as_str(),
                    "-screen",
                    "0",
                    &format!("{width}x{height}x24"),
                    "-nolisten",
                    "tcp",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb starts");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if socket.exists() {
                    return Xvfb { child, display };
                }
                if child.try_wait().ok().flatten().is_some() {
                    break; // taken meanwhile: try the next number
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("no free X display for Xvfb");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The terminal emulators the check knows how to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulator {
    /// xterm with `-ti vt340`: sixel graphics.
    Xterm,
    Mlterm,
    Kitty,
    Konsole,
}

impl Emulator {
    pub fn name(self) -> &'static str {
        match self {
            Emulator::Xterm => "xterm",
            Emulator::Mlterm => "mlterm",
            Emulator::Kitty => "kitty",
            Emulator::Konsole => "konsole",
        }
    }

    pub fn from_name(name: &str) -> Option<Emulator> {
        [
            Emulator::Xterm,
            Emulator::Mlterm,
            Emulator::Kitty,
            Emulator::Konsole,
        ]
        .into_iter()
        .find(|e| e.name() == name)
    }

    /// The command line that runs `script` (with sh) in a window of `cols` x `rows` cells.
    fn command(self, cols: u16, rows: u16, script: &Path) -> Command {
        let script = script.to_str().expect("a UTF-8 path").to_string();
        match self {
            Emulator::Xterm => {
                let mut c = Command::new("xterm");
                c.args([
                    "-ti",
                    "vt340",
                    "-xrm",
                    "XTerm*numColorRegisters: 256",
                    "-geometry",
                    &format!("{cols}x{rows}+0+0"),
                    "-fa",
                    "DejaVu Sans Mono",
                    "-fs",
                    "10",
                    "-e",
                    "sh",
                    &script,
                ]);
                c
            }
            Emulator::Mlterm => {
                let mut c = Command::new("mlterm");
                c.args(["-g", &format!("{cols}x{rows}+0+0"), "-e", "sh", &script]);
                c
            }
            Emulator::Kitty => {
                let mut c = Command::new("kitty");
                c.args([
                    "--config",
                    "NONE",
                    "-o",
                    &format!("initial_window_width={cols}c"),
                    "-o",
                    &format!("initial_window_height={rows}c"),
                    "-o",
                    "remember_window_size=no",
                    "-o",
                    "font_size=10",
                    "sh",
                    &script,
                ]);
                c
            }
            Emulator::Konsole => {
                let mut c = Command::new("konsole");
                c.args([
                    "--nofork",
                    "--hide-menubar",
                    "--hide-tabbar",
                    "-p",
                    &format!("TerminalColumns={cols}"),
                    "-p",
                    &format!("TerminalRows={rows}"),
                    "-e",
                    "sh",
                    &script,
                ]);
                c
            }
        }
    }

    /// The program that must be installed.
    pub fn program(self) -> &'static str {
        self.name()
    }
}

/// A terminal emulator window running a script; closed when dropped.
pub struct Terminal {
    child: Child,
    pub window: String,
    display: String,
}

impl Terminal {
    /// Starts `emulator` on `x` running `sh script`, and waits for its window (starting it once
    /// more if none shows: a terminal that fails to start is not what is checked here).
    pub fn start(emulator: Emulator, x: &Xvfb, cols: u16, rows: u16, script: &Path) -> Terminal {
        for _ in 0..2 {
            if let Some(terminal) = Terminal::try_start(emulator, x, cols, rows, script) {
                return terminal;
            }
        }
        panic!("no window of {} appeared", emulator.name());
    }

    fn try_start(
        emulator: Emulator,
        x: &Xvfb,
        cols: u16,
        rows: u16,
        script: &Path,
    ) -> Option<Terminal> {
        let runtime = std::env::temp_dir().join(format!("crackscope-xdg-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&runtime);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700));
        }
        let errors = std::fs::File::create(script.with_extension("terminal.log")).ok();
        let mut child = emulator
            .command(cols, rows, script)
            .env("DISPLAY", &x.display)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .env_remove("KITTY_WINDOW_ID")
            .env_remove("KONSOLE_VERSION")
            .env_remove("TERM_PROGRAM")
            .env_remove("WT_SESSION")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(errors.map_or(Stdio::null(), Stdio::from))
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", emulator.name()));
        let pid = child.id().to_string();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            let found = xdotool(&x.display, &["search", "--onlyvisible", "--pid", &pid]);
            if let Some(window) = found.lines().find(|l| !l.trim().is_empty()) {
                let terminal = Terminal {
                    child,
                    window: window.trim().to_string(),
                    display: x.display.clone(),
                };
                // Give the terminal a moment to lay out its first screen.
                std::thread::sleep(Duration::from_millis(500));
                return Some(terminal);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Types `key` (an xdotool key name: "2", "question", "Escape", "plus", "bracketright").
    pub fn key(&self, key: &str) {
        xdotool(&self.display, &["windowfocus", "--sync", &self.window]);
        xdotool(&self.display, &["key", "--clearmodifiers", key]);
    }

    /// A screenshot of the window.
    pub fn screenshot(&self, save_as: &Path) -> RgbImage {
        let status = Command::new("import")
            .args(["-window", &self.window, save_as.to_str().unwrap()])
            .env("DISPLAY", &self.display)
            .stderr(Stdio::null())
            .status()
            .expect("import runs");
        assert!(status.success(), "import failed");
        image::open(save_as)
            .expect("the screenshot reads back")
            .to_rgb8()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn xdotool(display: &str, args: &[&str]) -> String {
    let out = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .stderr(Stdio::null())
        .output()
        .expect("xdotool runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
