//! Prints the transition tables generated from the code.
//!
//! `cargo run --example transitions -- markdown|mermaid|json|doc` (`doc` is `docs/transitions.md`).

use std::process::ExitCode;

use wfstate::{transitions_document, TransitionTable};

fn main() -> ExitCode {
    let format = std::env::args().nth(1).unwrap_or_else(|| "markdown".into());
    let table = TransitionTable::generate();
    let text = match format.as_str() {
        "markdown" => table.markdown(),
        "mermaid" => table.mermaid(),
        "json" => table.json(),
        "doc" => transitions_document(),
        other => {
            eprintln!("unknown format {other:?}: use markdown, mermaid, json or doc");
            return ExitCode::from(2);
        }
    };
    print!("{text}");
    ExitCode::SUCCESS
}
