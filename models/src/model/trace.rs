//! Readable traces: one line per step with the actor, what it did, and the resulting workflow and
//! task statuses, version, decider queue and lock.

use std::fmt;

use serde::Serialize;

use super::protocol::{Action, ProtocolModel};
use super::state::{Holder, QueueEntry, State, SweepPc, TerminatePc};

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
    /// Lock after the step.
    pub lock: String,
}

impl fmt::Display for TraceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>3}. {:<11} {:<36} | {:<10} v{:<2} queue={:<8} lock={:<13} | {}",
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
        state = next;
        lines.push(line(index + 1, actor, what, &state));
    }
    lines
}

fn line(step: usize, actor: String, action: String, state: &State) -> TraceLine {
    let tasks: Vec<String> = state
        .workflow
        .tasks()
        .iter()
        .map(|task| {
            format!(
                "{}#{}={}",
                task.reference_name, task.retry_count, task.status
            )
        })
        .collect();
    TraceLine {
        step,
        actor,
        action,
        workflow: state.workflow.status().to_string(),
        tasks: if tasks.is_empty() {
            "-".into()
        } else {
            tasks.join(" ")
        },
        version: state.workflow.version(),
        queue: match state.queue {
            QueueEntry::Absent => "absent".into(),
            QueueEntry::Ready => "ready".into(),
            QueueEntry::Taken(index) => format!("taken:s{index}"),
        },
        lock: match state.lock {
            None => "free".into(),
            Some(lock) => {
                let holder = match lock.holder {
                    Holder::Sweeper(index) => format!("sweeper {index}"),
                    Holder::Terminator => "terminator".into(),
                };
                if lock.expired {
                    format!("{holder} (expired)")
                } else {
                    holder
                }
            }
        },
    }
}

/// The actor and a short description of what `action` does in `state`.
pub fn describe(model: &ProtocolModel, state: &State, action: &Action) -> (String, String) {
    match action {
        Action::Sweep { sweeper, time_out } => {
            let pc = state.sweepers.get(*sweeper as usize).map(|s| s.pc);
            let what = match pc {
                Some(SweepPc::Idle) => "take id from decider queue".into(),
                Some(SweepPc::Popped) if model.variant == super::Variant::LegacySweeper => {
                    "read workflow (before locking)".into()
                }
                Some(SweepPc::Popped | SweepPc::Snapshot) => "lock (or hand id back)".into(),
                Some(SweepPc::Locked) => "read workflow".into(),
                Some(SweepPc::Read) if *time_out => "time out live task, write".into(),
                Some(SweepPc::Read) => "decide, write".into(),
                Some(SweepPc::Queue(op)) => format!("{op:?} in decider queue").to_lowercase(),
                Some(SweepPc::Unlock(_)) => "unlock".into(),
                Some(SweepPc::AfterUnlock(op)) => {
                    format!("{op:?} in decider queue (after unlock)").to_lowercase()
                }
                None => "?".into(),
            };
            (format!("sweeper {sweeper}"), what)
        }
        Action::Terminate { archive_fails } => {
            let what = match state.terminator.pc {
                TerminatePc::Idle => "lock",
                TerminatePc::Locked => "read workflow",
                TerminatePc::Read => "terminate, write",
                TerminatePc::WroteStatus if *archive_fails => "archive FAILS: abort",
                TerminatePc::WroteStatus => "archive",
                TerminatePc::Archived => "cancel tasks, write",
                TerminatePc::Queue => "remove from decider queue",
                TerminatePc::Unlock => "unlock",
                TerminatePc::Done => "?",
            };
            ("terminator".into(), what.into())
        }
        Action::Work { task, outcome } => (
            format!("worker {task}"),
            format!("work: send IN_PROGRESS, {outcome}"),
        ),
        Action::Deliver { message } => {
            let verb = if model.variant == super::Variant::LegacyBlindReport {
                if message.read {
                    "blind write"
                } else {
                    "read task for"
                }
            } else {
                "deliver"
            };
            (
                "network".into(),
                format!(
                    "{verb} {} of task {}#{}",
                    message.status, message.task, message.retry_count
                ),
            )
        }
        Action::Duplicate { message } => (
            "network".into(),
            format!(
                "duplicate {} of task {}#{}",
                message.status, message.task, message.retry_count
            ),
        ),
        Action::Outbox { fail } => {
            let effect = state
                .outbox
                .first()
                .map(|e| format!("{e:?}"))
                .unwrap_or_default();
            let verb = if *fail { "FAIL" } else { "perform" };
            ("outbox".into(), format!("{verb} {effect}"))
        }
        Action::Expire => ("lease".into(), "lock lease expires".into()),
    }
}
