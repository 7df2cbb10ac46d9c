//! `strongroom`: store, read, version and rotate secrets from a shell.
//!
//! The commands, options, environment variables and exit codes are described in
//! docs/cli.md. Errors are printed as one line on stderr and never contain a secret.

mod args;
mod commands;
mod exec;
mod exit;
mod keys;
mod migrate;
mod output;
mod render;
mod rotation;
mod serve;
mod slots;
mod store;
mod watch;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    // The agent serves many callers at once: it gets a worker per core.
    let mut runtime = match cli.command {
        args::Command::Serve(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            report(&strongroom_core::Error::backend(
                "cli",
                "cannot start the runtime",
                err,
            ));
            return ExitCode::from(exit::OTHER);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            exit::code(&err)
        }
    }
}

/// Prints `err` and its causes on one line.
#[allow(clippy::print_stderr, reason = "the CLI reports errors on stderr")]
fn report(err: &strongroom_core::Error) {
    let mut line = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    eprintln!("strongroom: error: {line}");
}
