//! Stopping on signals: job schedulers (Slurm, Kubernetes, systemd) end jobs with SIGTERM, a closed
//! SSH session sends SIGHUP, and Ctrl-C sends SIGINT. The first asks the worker to stop after a
//! checkpoint; a second exits at once.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use crate::run::steer::Control;
use crate::run::RunDir;

/// Stops listening when dropped.
pub struct Listening(Handle);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Listens for SIGINT and SIGTERM, and SIGHUP when `hangup` (headless: the dashboard keeps
/// training after a hang-up, and handles it itself).
pub fn stop_on_signals(control: Arc<Control>, run: RunDir, hangup: bool) -> Result<Listening> {
    listen(hangup, move |signal, name| {
        if control.stop_requested() {
            // Whatever atomic write was under way leaves only its temporary file.
            for leftover in crate::run::lock::leftover_temporaries(&run.path) {
                let _ = std::fs::remove_file(leftover);
            }
            let _ = writeln!(
                std::io::stderr(),
                "\n{name} again: quitting at once; `{}` continues from the last checkpoint",
                run.resume_command()
            );
            std::process::exit(128 + signal);
        }
        let _ = writeln!(
            std::io::stderr(),
            "\n{name}: stopping after this iteration with a checkpoint (send it again to \
             quit at once); `{}` continues the run",
            run.resume_command()
        );
        control.request_stop();
        control.set_paused(false);
    })
}

/// Calls `on_signal` with each SIGINT and SIGTERM (and SIGHUP when `hangup`) and its name in
/// words, on a thread of its own, until the returned value is dropped.
pub fn listen(
    hangup: bool,
    mut on_signal: impl FnMut(i32, &'static str) + Send + 'static,
) -> Result<Listening> {
    let mut wanted = vec![SIGINT, SIGTERM];
    if hangup {
        wanted.push(SIGHUP);
    }
    let mut signals = Signals::new(&wanted).context("cannot listen for signals")?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let name = match signal {
                    SIGINT => "interrupt (SIGINT)",
                    SIGTERM => "SIGTERM",
                    _ => "hang-up (SIGHUP)",
                };
                on_signal(signal, name);
            }
        })
        .context("cannot start the signal listener")?;
    Ok(Listening(handle))
}
