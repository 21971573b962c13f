//! The subcommands of the `wfstate` binary. Each `run` takes the arguments after the subcommand
//! and returns the process exit code.

pub mod audit;
pub mod check;
pub mod definition;
pub mod engine;
pub mod explore;
pub mod replay;
pub mod table;

/// Printed on `--help` and on a usage error.
pub const USAGE: &str = "\
usage:
  wfstate check [--config small|default|large|all] [--variant NAME] [--json] [--threads N]
 [--save-counterexamples DIR]
  wfstate check --definition FILE.json [--iterations N] [--failures N] [--duplicates N]
 [--sweepers N] [--no-terminate] [--json] [--threads N]
  wfstate explore CONFIG VARIANT [--port N]
  wfstate audit [--json] FILE...
  wfstate replay [--from EXECUTION.json] [--json] EVENTS.jsonl
  wfstate table [--format markdown|mermaid|json]
  wfstate engine --postgres URL [--seconds N] [--seed N] [--workflows N] [--fail-percent P]
 [--record-effects TABLE]";

/// What a subcommand's hand-written argument parser returned, as the subcommand acts on it:
/// the options, or the exit code after printing the usage (`Ok(None)`: help was asked for,
/// exit 0) or the usage error (exit 2).
pub(crate) fn options_or_exit<T>(
    command: &str,
    usage: &str,
    parsed: Result<Option<T>, String>,
) -> Result<T, std::process::ExitCode> {
    match parsed {
        Ok(Some(options)) => Ok(options),
        Ok(None) => {
            println!("{usage}");
            Err(std::process::ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("wfstate {command}: {message}\n{usage}");
            Err(std::process::ExitCode::from(2))
        }
    }
}
