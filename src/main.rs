//! The `crackscope` binary: parse the command line, run one subcommand, map failure to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use crackscope::app::scan::ScanEnd;
use crackscope::app::session::RunEnd;
use crackscope::cli::{Cli, Command};
use crackscope::cmd;
use crackscope::data::inputs::SomeInputsFailed;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Library warnings go to stderr unless a full-screen view takes them over while it runs.
    crackscope::core::warn::redirect(|message| {
        // Not eprintln!: after an SSH hang-up stderr is gone, and that must not become a panic.
        let _ = writeln!(std::io::stderr(), "warning: {message}");
    })
    .forever();
    // Trainings must outlive a closed pipe (their output is optional); one-shot commands need not.
    if !matches!(
        cli.command,
        Command::Train(_) | Command::Demo(_) | Command::Watch(_)
    ) {
        restore_default_sigpipe();
    }
    let result = match &cli.command {
        Command::Demo(args) => cmd::demo::demo(args).map(training_exit),
        Command::Train(args) => cmd::train::train(args).map(training_exit),
        Command::Synth(args) => cmd::synth::synth(args).map(done),
        Command::Samples(args) => cmd::samples::samples(args).map(done),
        Command::Eval(args) => cmd::eval::eval(args).map(done),
        Command::Predict(args) => cmd::predict::predict(args).map(done),
        Command::Model(args) => cmd::model::model(args).map(done),
        Command::Watch(args) => cmd::watch::watch(args).map(done),
        Command::Gradcam(args) => cmd::gradcam::gradcam(args).map(done),
        Command::Bench(args) => cmd::bench::bench(args).map(done),
        Command::Weights(command) => cmd::weights::weights(command).map(done),
        Command::Scan(args) => cmd::scan::scan(args).map(scan_exit),
        Command::ScanMerge(args) => cmd::scan::merge(args).map(done),
        Command::Patches(args) => cmd::patches::patches(args).map(done),
        Command::Export(args) => cmd::export::export(args).map(done),
        Command::Figures(args) => cmd::figures::figures(args).map(done),
        Command::Compare(args) => cmd::compare::compare(args).map(done),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // Not eprintln!: after an SSH hang-up stderr is gone, and that must not become a panic.
            let _ = writeln!(std::io::stderr(), "error: {error:#}");
            // Every usable input was reported; only the named ones failed.
            if error.downcast_ref::<SomeInputsFailed>().is_some() {
                return ExitCode::from(SomeInputsFailed::EXIT_CODE);
            }
            ExitCode::FAILURE
        }
    }
}

/// A one-shot command that did its work.
fn done(_: ()) -> ExitCode {
    ExitCode::SUCCESS
}

/// 0 when the training ran to its end, [`RunEnd::EXIT_STOPPED`] when it was stopped (by a request
/// or a signal) with a checkpoint to resume from; errors are 1.
fn training_exit(end: RunEnd) -> ExitCode {
    match end {
        RunEnd::Finished => ExitCode::SUCCESS,
        RunEnd::Stopped => ExitCode::from(RunEnd::EXIT_STOPPED),
    }
}

/// 0 when every photo was scanned, [`RunEnd::EXIT_STOPPED`] when a signal stopped the scan with
/// photos left (the same command continues it); photos that failed end with [`SomeInputsFailed`].
fn scan_exit(end: ScanEnd) -> ExitCode {
    match end {
        ScanEnd::Finished => ExitCode::SUCCESS,
        ScanEnd::Stopped => ExitCode::from(RunEnd::EXIT_STOPPED),
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
