//! `wfstate check`: not built yet.

use std::process::ExitCode;

/// Runs the subcommand.
pub fn run(_args: &[String]) -> ExitCode {
    eprintln!("wfstate check: not implemented yet");
    ExitCode::from(2)
}
