//! The `crackscope` binary: parse the command line, run one subcommand, map failure to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use crackscope::cli::{Cli, Command};
use crackscope::cmd;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Trainings must outlive a closed pipe (their output is optional); one-shot commands need not.
    if !matches!(
        cli.command,
        Command::Train(_) | Command::Demo(_) | Command::Watch(_)
    ) {
        restore_default_sigpipe();
    }
    let result = match &cli.command {
        Command::Demo(args) => cmd::demo::demo(args),
        Command::Synth(args) => cmd::synth::synth(args),
        Command::Samples(args) => cmd::samples::samples(args),
        Command::Train(args) => cmd::train::train(args),
        Command::Eval(args) => cmd::eval::eval(args),
        Command::Predict(args) => cmd::predict::predict(args),
        Command::Model(args) => cmd::model::model(args),
        Command::Watch(args) => cmd::watch::watch(args),
        Command::Gradcam(args) => cmd::gradcam::gradcam(args),
        Command::Bench(args) => cmd::bench::bench(args),
        Command::Scan(args) => cmd::scan::scan(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Not eprintln!: after an SSH hang-up stderr is gone, and that must not become a panic.
            let _ = writeln!(std::io::stderr(), "error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so `crackscope predict ... | head` would panic on its next print once `head`
/// exits. Restoring the default makes the process end quietly instead, as command-line tools do.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once at start-up, before any thread exists; sets a signal disposition only.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
