//! Readable traces: one line per step with the actor, the store call (or write) it made, and the
//! resulting workflow and task statuses, version, decider queue and lease.

use std::fmt;

use serde::Serialize;
use wfstate::runtime::{Next, Operation};

use super::config::Variant;
use super::legacy::LegacyNext;
use super::protocol::{Action, Fault, ProtocolModel};
use super::state::{OperatorOp, ReportRun, State, SweeperOp, WorkerPoll, NOW_MS};

/// One step of a trace.
#[derive(Debug, Clone, Serialize)]
pub struct TraceLine {
    /// 1-based step number.
    pub step: usize,
    /// Who moved.
    pub actor: String,
    /// What it did.
    pub action: String,
    /// The persisted workflow status after the step.
    pub workflow: String,
    /// Each attempt as `reference#retry=STATUS`.
    pub tasks: String,
    /// The persisted version after the step.
    pub version: u64,
    /// Decider-queue entry after the step.
    pub queue: String,
    /// Lease after the step.
    pub lock: String,
}

impl fmt::Display for TraceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>3}. {:<11} {:<40} | {:<10} v{:<2} queue={:<7} lease={:<12} | {}",
            self.step,
            self.actor,
            self.action,
            self.workflow,
            self.version,
            self.queue,
            self.lock,
            self.tasks
        )
    }
}

/// The trace as text, one indented line per step.
pub fn indented(trace: &[TraceLine]) -> String {
    trace.iter().map(|line| format!("  {line}\n")).collect()
}

/// Replays `actions` from the initial state and describes each step. Stops at the first action
/// that is not enabled (which a discovered path never has).
pub fn trace(model: &ProtocolModel, actions: &[Action]) -> Vec<TraceLine> {
    let mut state = stateright::Model::init_states(model).remove(0);
    let mut lines = Vec::new();
    for (index, action) in actions.iter().enumerate() {
        let (actor, what) = describe(model, &state, action);
        let Some(next) = model.step(&state, action) else {
            break;
        };
        let (actor, what) = if model.config.atomic_operations {
            atomic(model, &state, action, &next).unwrap_or((actor, what))
        } else {
            (actor, what)
        };
        state = next;
        lines.push(line(index + 1, actor, what, &state));
    }
    lines
}

/// With operations atomic (the definition checks), a step is a whole operation: it is named by
/// what it did to the workflow (tasks added, statuses changed), and a worker by its task's
/// reference name, instead of by the first store call of the operation.
fn atomic(
    model: &ProtocolModel,
    before: &State,
    action: &Action,
    after: &State,
) -> Option<(String, String)> {
    let (was, now) = (before.workflow(), after.workflow());
    let mut changes = Vec::new();
    for task in now.tasks() {
        let previous = was.tasks().iter().find(|old| {
            old.reference_name == task.reference_name && old.retry_count == task.retry_count
        });
        match previous {
            None => changes.push(format!(
                "schedules {}#{}",
                task.reference_name, task.retry_count
            )),
            Some(old) if old.status != task.status => changes.push(format!(
                "{}#{} {}",
                task.reference_name, task.retry_count, task.status
            )),
            Some(_) => {}
        }
    }
    if was.status() != now.status() {
        changes.push(format!("workflow {}", now.status()));
    }
    let summary = if changes.is_empty() {
        String::from("no change")
    } else {
        changes.join(", ")
    };
    let worker = |task: &u8| match model.config.definition.tasks.get(*task as usize) {
        Some(definition) => format!("worker {}", definition.reference_name),
        None => format!("worker {task}"),
    };
    match action {
        Action::Sweep { sweeper, .. } => {
            Some((format!("sweeper {sweeper}"), format!("sweep: {summary}")))
        }
        Action::Operate { time_out: true, .. } => {
            Some(("operator".into(), format!("time out a task: {summary}")))
        }
        Action::Operate { .. } => {
            let input = model.config.script.get(before.operator.next as usize)?;
            Some((
                "operator".into(),
                format!("{}: {summary}", format!("{input:?}").to_lowercase()),
            ))
        }
        Action::Poll { task, .. } => Some((worker(task), format!("poll: {summary}"))),
        // The report's own status change says nothing the action does not.
        Action::Work { task, outcome }
            if changes.len() == 1 && changes[0].ends_with(&format!(" {outcome}")) =>
        {
            Some((worker(task), format!("work, report {outcome}")))
        }
        Action::Work { task, outcome } => {
            Some((worker(task), format!("work, report {outcome}: {summary}")))
        }
        _ => None,
    }
}

fn line(step: usize, actor: String, action: String, state: &State) -> TraceLine {
    let workflow = state.workflow();
    let tasks: Vec<String> = workflow
        .tasks()
        .iter()
        .map(|task| {
            format!(
                "{}#{}={}",
                task.reference_name, task.retry_count, task.status
            )
        })
        .collect();
    let id = State::id();
    TraceLine {
        step,
        actor,
        action,
        workflow: workflow.status().to_string(),
        tasks: if tasks.is_empty() {
            "-".into()
        } else {
            tasks.join(" ")
        },
        version: workflow.version(),
        queue: match state.store.decider_due(id) {
            None => "absent".into(),
            Some(_) if state.store.decider_ready(id, NOW_MS) => "ready".into(),
            Some(_) => "hidden".into(),
        },
        lock: match state.store.lease(id) {
            None => "free".into(),
            Some(lease) => {
                let holder = format!("{}", lease.holder);
                if lease.is_valid_at(NOW_MS) {
                    holder
                } else {
                    format!("{holder} (expired)")
                }
            }
        },
    }
}

fn fault(fault: Fault) -> &'static str {
    match fault {
        Fault::None => "",
        Fault::NotDone => " FAILS (not done)",
        Fault::Ambiguous => " FAILS (ambiguous)",
    }
}

fn legacy_what(next: LegacyNext<'_>) -> String {
    match next {
        LegacyNext::Call(call) => call.kind().name().to_string(),
        LegacyNext::Overwrite { status, .. } => format!("blind write {status}"),
        LegacyNext::WriteDocument { status, tasks: [] } => {
            format!("blind write {status} (document)")
        }
        LegacyNext::WriteDocument { status, .. } => format!("blind write {status} and its tasks"),
        LegacyNext::SetTask { status, .. } => format!("blind write task {status}"),
        LegacyNext::AddTasks { tasks, push } => {
            let names: Vec<String> = tasks
                .iter()
                .map(|task| format!("{}#{}", task.reference_name, task.retry_count))
                .collect();
            let push = if push { " and push to its queue" } else { "" };
            format!("create task {} (blind){push}", names.join(" "))
        }
        LegacyNext::PushTasks { tasks } => {
            let names: Vec<String> = tasks
                .iter()
                .map(|task| format!("{}#{}", task.reference_name, task.retry_count))
                .collect();
            format!("push {} to its task queue", names.join(" "))
        }
        LegacyNext::Postpone => "push the decider entry back (backoff)".into(),
        LegacyNext::Dequeue => "remove from decider queue".into(),
        LegacyNext::Enqueue => "put in decider queue".into(),
        LegacyNext::Archive => "archive inline".into(),
        LegacyNext::Done => "done".into(),
    }
}

fn call_of(op: &impl Operation) -> String {
    match op.next() {
        Next::Call(call) => call.kind().name().to_string(),
        Next::Perform(entry) => format!("perform {:?}", entry.effect),
        Next::Done => "done".into(),
    }
}

/// The actor and a short description of what `action` does in `state`.
pub fn describe(model: &ProtocolModel, state: &State, action: &Action) -> (String, String) {
    match action {
        Action::Sweep {
            sweeper,
            fail,
            fault: f,
        } => {
            let what = match state
                .sweepers
                .get(*sweeper as usize)
                .and_then(|s| s.op.as_ref())
            {
                None => "pop_decider".to_string(),
                Some(SweeperOp::Fixed(op)) => call_of(op),
                Some(SweeperOp::Legacy(op)) => legacy_what(op.next()),
                Some(SweeperOp::Decide(op)) => legacy_what(op.next()),
            };
            let what = if *fail {
                format!("{what} FAILS (swallowed)")
            } else {
                what
            };
            (format!("sweeper {sweeper}"), format!("{what}{}", fault(*f)))
        }
        Action::Start => (
            "starter".into(),
            "decide on its own copy, unlocked: create the first task (blind)".into(),
        ),
        Action::Operate {
            time_out,
            fail,
            fault: f,
        } => {
            let what = match &state.operator.op {
                None if *time_out => "time out a task: acquire".to_string(),
                None => format!(
                    "{:?}: acquire",
                    model.config.script[state.operator.next as usize]
                )
                .to_lowercase(),
                Some(OperatorOp::Fixed(op)) => call_of(op),
                Some(OperatorOp::TimeOut(op)) => legacy_what(op.next()),
                Some(OperatorOp::Legacy(op)) => {
                    let what = legacy_what(op.next());
                    if *fail {
                        format!("{what} FAILS: abort")
                    } else {
                        what
                    }
                }
            };
            ("operator".into(), format!("{what}{}", fault(*f)))
        }
        Action::Poll { task, fault: f } => {
            let what = match state
                .workers
                .get(*task as usize)
                .and_then(|w| w.poll.as_ref())
            {
                None => "poll_task".to_string(),
                Some(WorkerPoll::Fixed(op)) => call_of(op),
                Some(WorkerPoll::Legacy(op)) => legacy_what(op.next()),
            };
            let what = if model.variant == Variant::LegacyLostWakeup && what == "commit" {
                format!("{what}, then postpone the decider entry")
            } else {
                what
            };
            (format!("worker {task}"), format!("{what}{}", fault(*f)))
        }
        Action::Work { task, outcome } => (
            format!("worker {task}"),
            format!("work: send IN_PROGRESS, {outcome}"),
        ),
        Action::Deliver { message, fault: f } => (
            "network".into(),
            format!(
                "deliver {} of task {}#{}: load{}",
                message.status,
                message.task,
                message.retry_count,
                fault(*f)
            ),
        ),
        Action::Report { index, fault: f } => {
            let what = match state.reports.get(*index as usize).map(|run| &**run) {
                Some(ReportRun::Fixed(op, message)) => {
                    format!("{} {}", message.status, call_of(op))
                }
                Some(ReportRun::Legacy(op, message)) => {
                    format!("{} {}", message.status, legacy_what(op.next()))
                }
                Some(ReportRun::Decide(op, message)) => {
                    let what = legacy_what(op.next());
                    let what = match op.state_name() {
                        "Commit (no wake-up)" => format!("{what} (no wake-up)"),
                        "Acquire (decide)" => format!("decide: {what}"),
                        _ => what,
                    };
                    format!("{} {what}", message.status)
                }
                None => "?".into(),
            };
            (format!("report {index}"), format!("{what}{}", fault(*f)))
        }
        Action::Duplicate { message } => (
            "network".into(),
            format!(
                "duplicate {} of task {}#{}",
                message.status, message.task, message.retry_count
            ),
        ),
        Action::Outbox { fail, fault: f } => {
            let what = match &*state.outbox {
                None => "take_outbox".to_string(),
                Some(op) => call_of(op),
            };
            let what = if *fail { format!("{what} FAILS") } else { what };
            ("outbox".into(), format!("{what}{}", fault(*f)))
        }
        Action::ApplyPlan { index } => {
            let actor = state
                .pending
                .get(*index as usize)
                .map(|p| format!("{:?}", p.actor).to_lowercase())
                .unwrap_or_default();
            (
                "store".into(),
                format!("apply the queue plan of {actor}'s commit"),
            )
        }
        Action::Expire => ("lease".into(), "lock lease expires".into()),
        Action::Tick => ("clock".into(), "hiding leases run out".into()),
    }
}
