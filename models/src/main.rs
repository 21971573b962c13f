//! `wfstate`: model-check the protocol, audit Conductor executions, replay input logs, print the
//! transition tables.
//!
//! ```text
//! wfstate check [--config small|default|large|all] [--variant NAME] [--json] [--threads N]
//! [--save-counterexamples DIR]
//! wfstate explore CONFIG VARIANT [--port N]
//! wfstate audit [--json] FILE...
//! wfstate replay [--from EXECUTION.json] [--json] EVENTS.jsonl
//! wfstate table [--format markdown|mermaid|json]
//! wfstate engine --postgres URL [--seconds N] [--seed N] [--workflows N] [--fail-percent P]
//! [--record-effects TABLE]
//! ```

use std::process::ExitCode;

use wfstate_models::cli;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(command) = args.next() else {
        eprintln!("{}", cli::USAGE);
        return ExitCode::from(2);
    };
    let rest: Vec<String> = args.collect();
    match command.as_str() {
        "check" => cli::check::run(&rest),
        "explore" => cli::explore::run(&rest),
        "audit" => cli::audit::run(&rest),
        "replay" => cli::replay::run(&rest),
        "table" => cli::table::run(&rest),
        "engine" => cli::engine::run(&rest),
        "help" | "--help" | "-h" => {
            println!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("unknown command {other:?}\n{}", cli::USAGE);
            ExitCode::from(2)
        }
    }
}
