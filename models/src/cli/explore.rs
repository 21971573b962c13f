//! `wfstate explore`: not built yet.

use std::process::ExitCode;

/// Runs the subcommand.
pub fn run(_args: &[String]) -> ExitCode {
    eprintln!("wfstate explore: not implemented yet");
    ExitCode::from(2)
}
