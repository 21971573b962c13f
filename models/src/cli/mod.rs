//! The subcommands of the `wfstate` binary, parsed by clap: [`Cli::run`] runs the one given and
//! returns the process exit code. A usage error (an unknown option, a missing or malformed value)
//! is clap's: a message naming the argument, the command's usage line, exit 2; `--help` on any
//! command prints its options, exit 0.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod audit;
pub mod check;
pub mod definition;
pub mod engine;
pub mod explore;
pub mod replay;
pub mod table;

/// Model-check the wfstate protocol and Conductor workflow definitions, audit Conductor
/// executions, replay input logs, print the transition tables.
#[derive(Debug, Parser)]
#[command(name = "wfstate", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Check(check::Args),
    Explore(explore::Args),
    Audit(audit::Args),
    Replay(replay::Args),
    Table(table::Args),
    Engine(engine::Args),
}

impl Cli {
    /// Runs the subcommand.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Check(args) => check::run(args),
            Command::Explore(args) => explore::run(args),
            Command::Audit(args) => audit::run(args),
            Command::Replay(args) => replay::run(args),
            Command::Table(args) => table::run(args),
            Command::Engine(args) => engine::run(args),
        }
    }
}

/// Prints `value` as pretty JSON on stdout; the exit code 2 if it cannot be serialized (said on
/// stderr as `wfstate COMMAND: ...`).
pub(crate) fn print_json(command: &str, value: &impl serde::Serialize) -> Result<(), ExitCode> {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            Ok(())
        }
        Err(error) => {
            eprintln!("wfstate {command}: {error}");
            Err(ExitCode::from(2))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// clap's own consistency checks (no two arguments with one name, every `requires` and
    /// `conflicts_with` names an argument, ...), which it otherwise runs only when parsing.
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
