//! `wfstate replay [--from EXECUTION.json] [--json] EVENTS.jsonl`: replay a log of inputs through
//! the transition function, from a Conductor execution or from an empty RUNNING workflow named
//! `replay`, and print each input's outcome and the final invariant check.
//!
//! Every input is replayed, also after a rejection (a rejection changes nothing, so what follows
//! is judged on the same state a correct engine would have). Exit status: 0 when every input was
//! accepted or a duplicate and the final state is clean, 1 when any input was rejected or the final
//! state violates an invariant, 2 when the execution or the log cannot be read (nothing is
//! replayed then). Formats: `docs/conformance.md`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::process::ExitCode;

use serde_json::{json, Value};
use wfstate::conductor::{read_log, EngineEvent, Event, Execution, LogEntry, TaskRef};
use wfstate::{check, AdminInput, Changes, Input, Outcome, Violation, Workflow};

use super::audit::{describe_workflow, pretty, violations_json};

/// The id of the workflow a replay without `--from` starts from.
pub const EMPTY_WORKFLOW_ID: &str = "replay";

/// Runs the subcommand.
pub fn run(options: Args) -> ExitCode {
    let start = match &options.from {
        Some(file) => match load_execution(file) {
            Ok(workflow) => workflow,
            Err(message) => {
                eprintln!("wfstate replay: {file}: {message}");
                return ExitCode::from(2);
            }
        },
        None => Workflow::new(EMPTY_WORKFLOW_ID),
    };
    let entries = match read_entries(&options.log) {
        Ok(entries) => entries,
        Err(message) => {
            eprintln!("wfstate replay: {}: {message}", options.log);
            return ExitCode::from(2);
        }
    };
    let replay = Replay::run(start, entries);
    if options.json {
        println!("{}", pretty(&replay.json(&options)));
    } else {
        replay.print(&options);
    }
    if replay.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Replay a log of inputs through the transition function
///
/// Prints each input's outcome and the final invariant check. Exit 0 when every input was
/// accepted or a duplicate and the final state is clean, 1 on a rejection or a violation, 2 when
/// the execution or the log cannot be read.
#[derive(Debug, clap::Args)]
// A repeated option takes its last value, as the hand-written parsers did.
#[command(args_override_self = true)]
pub struct Args {
    /// Start from this Conductor execution instead of an empty RUNNING workflow named `replay`
    #[arg(long, value_name = "EXECUTION.json")]
    from: Option<String>,
    /// Print the replay as JSON
    #[arg(long)]
    json: bool,
    /// The input log, one JSON event per line (`-`: standard input)
    #[arg(value_name = "EVENTS.jsonl")]
    log: String,
}

fn load_execution(file: &str) -> Result<Workflow, String> {
    let reader = File::open(file).map_err(|error| format!("cannot read: {error}"))?;
    Execution::from_reader(BufReader::with_capacity(1 << 16, reader))
        .and_then(|execution| execution.to_workflow())
        .map_err(|error| error.to_string())
}

fn read_entries(log: &str) -> Result<Vec<LogEntry>, String> {
    let reader: Box<dyn BufRead> = if log == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = File::open(log).map_err(|error| format!("cannot read: {error}"))?;
        Box::new(BufReader::new(file))
    };
    read_log(reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())
}

/// What one input did.
struct Record {
    line: usize,
    event: Event,
    /// What the event stood for when it was replayed (`None`: it named no task of the workflow).
    input: Option<Input>,
    /// A human reading: the input, with task ids and reference names.
    description: String,
    /// The accepted outcome and what it changed, or why the input was refused.
    result: Result<(Outcome, Changes), String>,
    /// The version after the input.
    version: u64,
}

struct Replay {
    start: Snapshot,
    records: Vec<Record>,
    end: Snapshot,
}

/// What the report says about a state: who and where it is, and what `check` finds.
struct Snapshot {
    /// `workflow ID STATUS, N tasks`.
    description: String,
    version: u64,
    json: Value,
    violations: Vec<Violation>,
}

impl Snapshot {
    fn of(workflow: &Workflow) -> Snapshot {
        let violations = check(workflow);
        Snapshot {
            description: describe_workflow(workflow),
            version: workflow.version(),
            json: json!({
                "workflow_id": workflow.id(),
                "status": workflow.status(),
                "version": workflow.version(),
                "tasks": workflow.tasks().len(),
                "violations": violations_json(&violations),
            }),
            violations,
        }
    }

    fn print(&self, label: &str) {
        let verdict = match self.violations.len() {
            0 => String::from("clean"),
            1 => String::from("1 violation"),
            n => format!("{n} violations"),
        };
        println!(
            "{label}: {}, version {}, {verdict}",
            self.description, self.version
        );
        for violation in &self.violations {
            println!("  {violation}");
        }
    }
}

impl Replay {
    fn run(mut workflow: Workflow, entries: Vec<LogEntry>) -> Replay {
        let start = Snapshot::of(&workflow);
        let mut records = Vec::with_capacity(entries.len());
        for LogEntry { line, event } in entries {
            let description = describe(&event, &workflow);
            let (input, result) = match event.resolve(&workflow) {
                Ok(input) => {
                    let result = workflow
                        .advance(&input)
                        .map(|step| (step.outcome(), step.changes().clone()))
                        .map_err(|rejection| rejection.to_string());
                    (Some(input), result)
                }
                Err(unresolved) => (None, Err(unresolved.to_string())),
            };
            records.push(Record {
                line,
                event,
                input,
                description,
                result,
                version: workflow.version(),
            });
        }
        Replay {
            start,
            records,
            end: Snapshot::of(&workflow),
        }
    }

    fn rejected(&self) -> impl Iterator<Item = &Record> + '_ {
        self.records.iter().filter(|record| record.result.is_err())
    }

    fn count(&self, outcome: Outcome) -> usize {
        let matches = |record: &&Record| {
            record
                .result
                .as_ref()
                .is_ok_and(|(accepted, _)| *accepted == outcome)
        };
        self.records.iter().filter(matches).count()
    }

    fn is_clean(&self) -> bool {
        self.rejected().next().is_none() && self.end.violations.is_empty()
    }

    fn print(&self, options: &Args) {
        let origin = match &options.from {
            Some(file) => format!("from {file}"),
            None => String::from("from an empty workflow"),
        };
        println!("replay of {} {origin}", options.log);
        self.start.print("start");
        for record in &self.records {
            let version = record.version;
            let result = match &record.result {
                Ok((Outcome::Applied, changes)) => {
                    format!("accepted, version {version}: {}", describe_changes(changes))
                }
                Ok((Outcome::Progress, _)) => format!("accepted (progress), version {version}"),
                Ok((Outcome::Duplicate, _)) => format!("duplicate, version {version}"),
                Err(reason) => format!("rejected: {reason}"),
            };
            println!("line {}: {}: {result}", record.line, record.description);
        }
        self.end.print("final");
        let rejected = self.rejected().count();
        let first = match self.rejected().next() {
            Some(record) => format!(" (first at line {})", record.line),
            None => String::new(),
        };
        println!(
            "{} inputs: {} accepted, {} duplicate, {rejected} rejected{first}",
            self.records.len(),
            self.count(Outcome::Applied) + self.count(Outcome::Progress),
            self.count(Outcome::Duplicate),
        );
    }

    fn json(&self, options: &Args) -> Value {
        let inputs: Vec<Value> = self.records.iter().map(Record::json).collect();
        json!({
            "log": options.log,
            "from": options.from,
            "start": self.start.json,
            "inputs": inputs,
            "final": self.end.json,
            "accepted": self.count(Outcome::Applied) + self.count(Outcome::Progress),
            "duplicates": self.count(Outcome::Duplicate),
            "rejected": self.rejected().count(),
            "first_rejected_line": self.rejected().next().map(|record| record.line),
        })
    }
}

impl Record {
    fn json(&self) -> Value {
        let mut object = json!({
            "line": self.line,
            "event": self.event,
            "input": self.input,
            "description": self.description,
            "version": self.version,
        });
        let (outcome, accepted) = match &self.result {
            Ok((outcome, changes)) => {
                object["changes"] = json!(changes);
                (json!(outcome), true)
            }
            Err(reason) => {
                object["reason"] = json!(reason);
                (json!("rejected"), false)
            }
        };
        object["outcome"] = outcome;
        object["accepted"] = json!(accepted);
        object
    }
}

/// At most this many changes are spelled out on one line (a terminate may cancel thousands).
const CHANGES_SHOWN: usize = 5;

/// `workflow RUNNING -> TERMINATED; t1 IN_PROGRESS -> CANCELED; new t2 (fetch) SCHEDULED`.
fn describe_changes(changes: &Changes) -> String {
    let workflow = changes
        .workflow
        .iter()
        .map(|change| format!("workflow {} -> {}", change.from, change.to));
    let tasks = changes
        .tasks
        .iter()
        .map(|change| format!("{} {} -> {}", change.task, change.from, change.to));
    let added = changes
        .added
        .iter()
        .map(|task| format!("new {} ({}) {}", task.id, task.reference_name, task.status));
    let total = usize::from(changes.workflow.is_some()) + changes.tasks.len() + changes.added.len();
    let mut shown: Vec<String> = workflow
        .chain(tasks)
        .chain(added)
        .take(CHANGES_SHOWN)
        .collect();
    if total > CHANGES_SHOWN {
        shown.push(format!("{} more", total - CHANGES_SHOWN));
    }
    shown.join("; ")
}

/// The event in words, naming each attempt by id and reference name as it stands in `workflow`
/// before the event.
fn describe(event: &Event, workflow: &Workflow) -> String {
    match event {
        Event::Report(report) => {
            format!(
                "report {} on {}",
                report.status,
                named(&report.task, workflow)
            )
        }
        Event::Engine(engine) => format!("engine {}", describe_engine(engine, workflow)),
        Event::Admin(admin) => String::from(match admin {
            AdminInput::Terminate => "admin terminate",
            AdminInput::Pause => "admin pause",
            AdminInput::Resume => "admin resume",
            AdminInput::Retry => "admin retry",
        }),
    }
}

fn describe_engine(event: &EngineEvent, workflow: &Workflow) -> String {
    match event {
        EngineEvent::Schedule(new) => format!("schedule {} ({})", new.id, new.reference_name),
        EngineEvent::Skip(new) => format!("skip {} ({})", new.id, new.reference_name),
        EngineEvent::Reschedule { failed, task } => {
            format!("reschedule {} as {task}", named(failed, workflow))
        }
        EngineEvent::Start { task } => format!("start {}", named(task, workflow)),
        EngineEvent::TimeOutTask { task } => format!("time out task {}", named(task, workflow)),
        EngineEvent::CancelTask { task } => format!("cancel task {}", named(task, workflow)),
        EngineEvent::TolerateFailure { task } => {
            format!("tolerate failure of {}", named(task, workflow))
        }
        EngineEvent::Complete => String::from("complete"),
        EngineEvent::Fail => String::from("fail"),
        EngineEvent::TimeOut => String::from("time out"),
    }
}

/// `ID (REFERENCE)` when the attempt exists, else what the event said.
fn named(task: &TaskRef, workflow: &Workflow) -> String {
    let found = match task {
        TaskRef::Id(id) => workflow.task(id),
        TaskRef::Reference { reference_name } => workflow.latest_attempt(reference_name),
    };
    match (found, task) {
        (Some(found), _) => format!("{} ({})", found.id, found.reference_name),
        (None, TaskRef::Id(id)) => id.to_string(),
        (None, TaskRef::Reference { reference_name }) => format!("reference {reference_name}"),
    }
}
