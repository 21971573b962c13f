//! The properties checked on every reachable state: I1–I6 and completion as `always`,
//! non-vacuity and edge coverage as `sometimes` (SPEC section 8).

use stateright::{Model, Property};
use wfstate::{check, Invariant, TaskStatus, WorkflowStatus};

use super::protocol::ProtocolModel;
use super::state::State;

type Condition = fn(&ProtocolModel, &State) -> bool;

/// The `always` properties, by name. I-ids are the SPEC's invariants.
pub const ALWAYS: &[(&str, Condition)] = &[
    ("I1", |_, s| holds(s, Invariant::I1)),
    // I1 once the terminator is finished: D1 left the workflow inconsistent for good, not just
    // between two writes of one operation.
    ("I1 at rest", |_, s| {
        s.in_flight() || holds(s, Invariant::I1)
    }),
    ("I2", |_, s| holds(s, Invariant::I2)),
    ("I3", i3),
    ("I4", |_, s| s.workflow.version() == s.ghost.commits),
    // Nothing in the model retries, so once terminal the workflow must stay terminal.
    ("I5", |_, s| {
        !s.ghost.was_terminal || s.status().is_terminal()
    }),
    ("I6a", |_, s| {
        s.in_flight() || s.status() != WorkflowStatus::Running || s.queue.is_present()
    }),
    ("I6b", |_, s| {
        s.ghost.lease_expired
            || s.in_flight()
            || s.queue.is_present() == (s.status() == WorkflowStatus::Running)
    }),
    ("decisions accepted", |_, s| !s.ghost.decision_rejected),
    ("completion", completion),
];

/// The `sometimes` properties: the interesting states are reachable.
pub const SOMETIMES: &[(&str, Condition)] = &[
    ("completed", |_, s| s.status() == WorkflowStatus::Completed),
    ("terminated with report in flight", |_, s| {
        s.ghost.terminated_with_report_in_flight
    }),
    ("archive failed then succeeded", |_, s| {
        s.ghost.archive_failed && s.ghost.archived
    }),
    ("stale write rejected", |_, s| s.ghost.stale_write_rejected),
    ("lease expired while held", |_, s| s.ghost.lease_expired),
];

macro_rules! edges {
    ($(($from:ident, $to:ident, $name:literal)),* $(,)?) => {
        /// One `sometimes` property per edge of the task transition table.
        pub const EDGES: &[(&str, Condition)] = &[
            $(($name, |_, s| s.ghost.last_edge == Some((TaskStatus::$from, TaskStatus::$to)))),*
        ];
    };
}

edges![
    (Scheduled, InProgress, "edge SCHEDULED->IN_PROGRESS"),
    (Scheduled, Completed, "edge SCHEDULED->COMPLETED"),
    (Scheduled, Failed, "edge SCHEDULED->FAILED"),
    (
        Scheduled,
        FailedWithTerminalError,
        "edge SCHEDULED->FAILED_WITH_TERMINAL_ERROR"
    ),
    (Scheduled, Canceled, "edge SCHEDULED->CANCELED"),
    (Scheduled, TimedOut, "edge SCHEDULED->TIMED_OUT"),
    (InProgress, InProgress, "edge IN_PROGRESS->IN_PROGRESS"),
    (InProgress, Completed, "edge IN_PROGRESS->COMPLETED"),
    (InProgress, Failed, "edge IN_PROGRESS->FAILED"),
    (
        InProgress,
        FailedWithTerminalError,
        "edge IN_PROGRESS->FAILED_WITH_TERMINAL_ERROR"
    ),
    (InProgress, Canceled, "edge IN_PROGRESS->CANCELED"),
    (InProgress, TimedOut, "edge IN_PROGRESS->TIMED_OUT"),
    (
        Failed,
        CompletedWithErrors,
        "edge FAILED->COMPLETED_WITH_ERRORS"
    ),
    (
        TimedOut,
        CompletedWithErrors,
        "edge TIMED_OUT->COMPLETED_WITH_ERRORS"
    ),
];

/// Every property the model's configuration can exercise, `always` first: the non-vacuity
/// properties whose ingredient is configured (a failure budget, a terminator...) and the task
/// edges its workers, budgets and definition can produce.
pub fn all(model: &ProtocolModel) -> Vec<Property<ProtocolModel>> {
    let always = ALWAYS
        .iter()
        .map(|&(name, condition)| Property::always(name, condition));
    let sometimes = SOMETIMES
        .iter()
        .chain(EDGES)
        .filter(|(name, _)| exercised(model, name))
        .map(|&(name, condition)| Property::sometimes(name, condition));
    always.chain(sometimes).collect()
}

fn exercised(model: &ProtocolModel, name: &str) -> bool {
    let config = &model.config;
    let reported = |status: &str| config.outcomes.iter().any(|o| o.as_str() == status);
    let optional = config.definition.tasks.iter().any(|task| task.optional);
    match name {
        "completed" | "stale write rejected" => true,
        "terminated with report in flight" => config.terminator,
        "archive failed then succeeded" => config.archive_failures > 0,
        "lease expired while held" => config.lease_expiries > 0,
        _ => {
            let Some((from, to)) = name
                .strip_prefix("edge ")
                .and_then(|edge| edge.split_once("->"))
            else {
                return true;
            };
            match (from, to) {
                ("SCHEDULED", "IN_PROGRESS") => true,
                ("IN_PROGRESS", "IN_PROGRESS") => config.duplicates_per_task > 0,
                (_, "TIMED_OUT") => config.task_timeouts > 0,
                ("FAILED", "COMPLETED_WITH_ERRORS") => optional && reported("FAILED"),
                ("TIMED_OUT", "COMPLETED_WITH_ERRORS") => optional && config.task_timeouts > 0,
                (_, "CANCELED") => config.terminator || reported("CANCELED"),
                (_, status) => reported(status),
            }
        }
    }
}

fn holds(state: &State, invariant: Invariant) -> bool {
    check(&state.workflow)
        .iter()
        .all(|violation| violation.invariant() != invariant)
}

/// I3 with ghost history: a task that was terminal is terminal now, with its first terminal
/// status or by the optional-tolerance edge.
fn i3(_: &ProtocolModel, state: &State) -> bool {
    state
        .ghost
        .first_terminal
        .iter()
        .zip(state.workflow.tasks())
        .all(|(first, task)| match first {
            None => true,
            Some(first) => {
                task.status == *first
                    || (matches!(first, TaskStatus::Failed | TaskStatus::TimedOut)
                        && task.status == TaskStatus::CompletedWithErrors)
            }
        })
        && holds(state, Invariant::I3)
}

/// No action enabled ⇒ the workflow is terminal, out of the decider queue, and every owed effect
/// was performed (I7 at the end of every run).
fn completion(model: &ProtocolModel, state: &State) -> bool {
    let mut actions = Vec::new();
    model.actions(state, &mut actions);
    !actions.is_empty()
        || (state.status().is_terminal() && !state.queue.is_present() && state.outbox.is_empty())
}
