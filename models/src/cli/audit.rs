//! `wfstate audit [--json] FILE...`: read Conductor workflow executions and report every
//! violation of I1–I5 and I8 that one state shows (`wfstate::check`), by invariant id, task and statuses.
//!
//! Exit status: 0 when every file is clean, 1 when any file has a violation, 2 when any file
//! cannot be read or parsed (2 wins over 1: the audit is incomplete). A JSON Schema document is
//! skipped, not an error. Formats: `docs/conformance.md`.

use std::process::ExitCode;

use serde_json::{json, Map, Value};
use wfstate::conductor::{Execution, ExecutionError};
use wfstate::{check, Violation, Workflow};

/// Audit stored Conductor workflow executions against I1-I5 and I8
///
/// Exit 0 when every file is clean, 1 when any has a violation, 2 when any cannot be read or
/// parsed (2 wins over 1: the audit is incomplete). A JSON Schema document is skipped.
#[derive(Debug, clap::Args)]
// A repeated option takes its last value, as the hand-written parsers did.
#[command(args_override_self = true)]
pub struct Args {
    /// Print one JSON report per file
    #[arg(long)]
    json: bool,
    /// Workflow execution JSON files, as Conductor's API returns them
    #[arg(value_name = "FILE", required = true)]
    files: Vec<String>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    let json_output = args.json;
    let files = &args.files;
    let mut verdict = Verdict::default();
    let mut reports = Vec::new();
    for file in files {
        let audit = audit_file(file);
        verdict.count(&audit);
        if json_output {
            reports.push(audit.json(file));
        } else {
            audit.print(file);
        }
    }
    if json_output {
        println!("{}", pretty(&Value::Array(reports)));
    } else if verdict.files > 1 {
        println!("{}", verdict.summary());
    }
    verdict.exit_code()
}

/// What auditing one file found.
enum FileAudit {
    /// Read and checked.
    Checked {
        workflow: Workflow,
        violations: Vec<Violation>,
    },
    /// Not an execution, and recognisably so (a JSON Schema).
    Skipped(ExecutionError),
    /// Unreadable or not a valid execution.
    Failed(String),
}

fn audit_file(file: &str) -> FileAudit {
    // Streamed: skipped payloads (inputs, outputs, definitions) are never held in memory.
    let reader = match std::fs::File::open(file) {
        Ok(file) => std::io::BufReader::with_capacity(1 << 16, file),
        Err(error) => return FileAudit::Failed(format!("cannot read: {error}")),
    };
    match Execution::from_reader(reader).and_then(|execution| execution.to_workflow()) {
        Ok(workflow) => FileAudit::Checked {
            violations: check(&workflow),
            workflow,
        },
        Err(skipped @ ExecutionError::JsonSchema) => FileAudit::Skipped(skipped),
        Err(error) => FileAudit::Failed(error.to_string()),
    }
}

impl FileAudit {
    fn print(&self, file: &str) {
        match self {
            FileAudit::Checked {
                workflow,
                violations,
            } => {
                let verdict = match violations.len() {
                    0 => String::from("clean"),
                    1 => String::from("1 violation"),
                    n => format!("{n} violations"),
                };
                println!("{file}: {}, {verdict}", describe_workflow(workflow));
                for violation in violations {
                    println!("  {violation}");
                }
            }
            FileAudit::Skipped(reason) => println!("{file}: skipped: {reason}"),
            FileAudit::Failed(reason) => eprintln!("{file}: error: {reason}"),
        }
    }

    fn json(&self, file: &str) -> Value {
        match self {
            FileAudit::Checked {
                workflow,
                violations,
            } => json!({
                "file": file,
                "workflow_id": workflow.id(),
                "status": workflow.status(),
                "tasks": workflow.tasks().len(),
                "violations": violations_json(violations),
            }),
            FileAudit::Skipped(reason) => json!({"file": file, "skipped": reason.to_string()}),
            FileAudit::Failed(reason) => json!({"file": file, "error": reason}),
        }
    }
}

/// `workflow ID STATUS, N tasks` (shared with `wfstate replay`).
pub fn describe_workflow(workflow: &Workflow) -> String {
    let tasks = match workflow.tasks().len() {
        1 => String::from("1 task"),
        n => format!("{n} tasks"),
    };
    format!("workflow {} {}, {tasks}", workflow.id(), workflow.status())
}

/// Violations as JSON objects: the core's serde form of [`Violation`] (`"violation"` names the
/// kind, then its context fields) plus `"invariant"` (the id) and `"message"` (shared with
/// `wfstate replay`).
pub fn violations_json(violations: &[Violation]) -> Value {
    Value::Array(violations.iter().map(violation_json).collect())
}

fn violation_json(violation: &Violation) -> Value {
    let mut object = match serde_json::to_value(violation) {
        Ok(Value::Object(object)) => object,
        // The core serializes every violation as an object; keep the message if that changes.
        Ok(_) | Err(_) => Map::new(),
    };
    object.insert(
        "invariant".into(),
        Value::String(violation.invariant().to_string()),
    );
    object.insert("message".into(), Value::String(violation.to_string()));
    Value::Object(object)
}

/// Pretty JSON (shared with `wfstate replay`).
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("a JSON value with string keys always serializes")
}

#[derive(Default)]
struct Verdict {
    files: usize,
    clean: usize,
    violating: usize,
    skipped: usize,
    failed: usize,
}

impl Verdict {
    fn count(&mut self, audit: &FileAudit) {
        self.files += 1;
        match audit {
            FileAudit::Checked { violations, .. } if violations.is_empty() => self.clean += 1,
            FileAudit::Checked { .. } => self.violating += 1,
            FileAudit::Skipped(_) => self.skipped += 1,
            FileAudit::Failed(_) => self.failed += 1,
        }
    }

    fn summary(&self) -> String {
        format!(
            "{} files: {} clean, {} with violations, {} unreadable, {} skipped",
            self.files, self.clean, self.violating, self.failed, self.skipped
        )
    }

    fn exit_code(&self) -> ExitCode {
        if self.failed > 0 {
            ExitCode::from(2)
        } else if self.violating > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}
