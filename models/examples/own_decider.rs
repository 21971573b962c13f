//! Bring your own decider: check an engine's decide function under every interleaving of the
//! wfstate protocol (concurrent sweepers, terminate, late and duplicated reports, lease expiry,
//! failing archive), exactly as `wfstate check` checks the reference decider.
//!
//! `cargo run --release -p wfstate-models --example own_decider`

use std::process::ExitCode;

use wfstate::{decide, Decision, Definition, Workflow, WorkflowStatus};
use wfstate_models::cli::check::render;
use wfstate_models::model::{check, Config, Options, ProtocolModel, Variant};

/// An engine's decider: here the reference decider, refusing to decide for a workflow without a
/// definition. Replace the body with your own.
fn my_decider(workflow: &Workflow, definition: &Definition) -> Decision {
    if definition.tasks.is_empty() && workflow.status() == WorkflowStatus::Running {
        return Decision::Wait;
    }
    decide(workflow, definition)
}

fn main() -> ExitCode {
    let mut reports = Vec::new();
    for config in [Config::small(), Config::default_config()] {
        let definition = config.definition.clone();
        let decider = move |workflow: &Workflow| my_decider(workflow, &definition);
        let model = ProtocolModel::new(config, Variant::Fixed).with_decider(decider);
        reports.push(check(model, Options::default()));
    }
    print!("{}", render(&reports));
    if reports.iter().all(|report| report.as_expected()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
