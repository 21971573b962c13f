//! `wfstate`: model-check the protocol and Conductor workflow definitions, audit Conductor
//! executions, replay input logs, print the transition tables, run an engine process over
//! PostgreSQL. `wfstate --help` and `wfstate COMMAND --help` list the options.

use std::process::ExitCode;

use clap::Parser;
use wfstate_models::cli::Cli;

fn main() -> ExitCode {
    Cli::parse().run()
}
