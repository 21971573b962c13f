//! Invariants I1–I5 and I8, each written once (SPEC section 6). [`check`] reports what one state
//! shows;
//! [`check_pair`] what a change from one state to the next shows. The same functions back the
//! debug assertions after every step, the model's `always` properties, proptest and the fuzz
//! targets.

use core::fmt;

use alloc::vec::Vec;
use serde::Serialize;

use super::id::{ReferenceName, TaskId};
use super::status::{TaskStatus, WorkflowStatus};
use super::task::Task;
use super::workflow::Workflow;

/// The invariant ids of SPEC section 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Invariant {
    /// A terminal workflow has no non-terminal task.
    I1,
    /// A COMPLETED workflow has only successful terminal tasks.
    I2,
    /// A task that was terminal never becomes non-terminal; its terminal status changes only by
    /// the optional-tolerance edge.
    I3,
    /// Every accepted change increases the version by one; a rejected input changes nothing.
    I4,
    /// A workflow that was terminal becomes RUNNING again only through retry.
    I5,
    /// No lost wake-up: with no operation in flight, a RUNNING workflow is in the decider queue.
    I6a,
    /// While leases hold, with no operation in flight, queued if and only if RUNNING.
    I6b,
    /// Every effect owed by a committed transition is eventually performed.
    I7,
    /// A workflow holds at most one attempt per reference name, retry count and loop iteration
    /// (no duplicate task).
    I8,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One broken invariant, with the context to find it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, thiserror::Error)]
#[serde(tag = "violation", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Violation {
    /// I1: a terminal workflow holds a live attempt.
    #[error("I1: {workflow} workflow has task {task} ({reference_name}) {status}")]
    LiveTaskInTerminalWorkflow {
        /// The workflow's status.
        workflow: WorkflowStatus,
        /// The attempt.
        task: TaskId,
        /// Its reference name.
        reference_name: ReferenceName,
        /// Its status.
        status: TaskStatus,
    },
    /// I2: a COMPLETED workflow's latest attempt of some task ended unsuccessfully. (A live attempt
    /// in a COMPLETED workflow is reported as I1 only.)
    #[error("I2: COMPLETED workflow has task {task} ({reference_name}) {status}")]
    UnsuccessfulTaskInCompletedWorkflow {
        /// The attempt.
        task: TaskId,
        /// Its reference name.
        reference_name: ReferenceName,
        /// Its status.
        status: TaskStatus,
    },
    /// I3, seen in one state: a retry superseded this attempt, so it was terminal once, yet it is
    /// live now.
    #[error("I3: task {task} ({reference_name}) is {status} but attempt {latest} superseded it")]
    SupersededTaskLive {
        /// The superseded attempt.
        task: TaskId,
        /// Its reference name.
        reference_name: ReferenceName,
        /// Its status.
        status: TaskStatus,
        /// The latest attempt.
        latest: TaskId,
    },
    /// I3: a terminal attempt changed status other than by the optional-tolerance edge.
    #[error("I3: task {task} ({reference_name}) went from terminal {from} to {to}")]
    TerminalTaskChanged {
        /// The attempt.
        task: TaskId,
        /// Its reference name.
        reference_name: ReferenceName,
        /// Its terminal status before.
        from: TaskStatus,
        /// Its status after.
        to: TaskStatus,
    },
    /// I3: an attempt disappeared or had its identity rewritten (history is append-only).
    #[error("I3: task {task} ({reference_name}) disappeared or was rewritten")]
    TaskRewritten {
        /// The attempt.
        task: TaskId,
        /// Its reference name before.
        reference_name: ReferenceName,
    },
    /// I4: the state changed but the version did not rise by exactly one, or the version moved
    /// without a change.
    #[error("I4: version went from {before} to {after} across a {kind} change")]
    VersionSkew {
        /// Version before.
        before: u64,
        /// Version after.
        after: u64,
        /// `"real"` or `"empty"`.
        kind: &'static str,
    },
    /// I8: a second attempt with the same reference name, retry count and loop iteration as an
    /// earlier one (a task scheduled twice).
    #[error(
        "I8: task {task} ({reference_name}) {status} duplicates {first} (retry {retry_count}, iteration {iteration})"
    )]
    DuplicateAttempt {
        /// The later attempt.
        task: TaskId,
        /// Their reference name.
        reference_name: ReferenceName,
        /// The later attempt's status.
        status: TaskStatus,
        /// The first attempt with the same key.
        first: TaskId,
        /// Their retry count.
        retry_count: u32,
        /// Their loop iteration.
        iteration: u32,
    },
    /// I5: a terminal workflow status changed other than by retry to RUNNING.
    #[error("I5: workflow went from terminal {from} to {to} without retry")]
    TerminalWorkflowChanged {
        /// The terminal status before.
        from: WorkflowStatus,
        /// The status after.
        to: WorkflowStatus,
    },
}

impl Violation {
    /// The invariant this violates.
    pub const fn invariant(&self) -> Invariant {
        match self {
            Violation::LiveTaskInTerminalWorkflow { .. } => Invariant::I1,
            Violation::UnsuccessfulTaskInCompletedWorkflow { .. } => Invariant::I2,
            Violation::SupersededTaskLive { .. }
            | Violation::TerminalTaskChanged { .. }
            | Violation::TaskRewritten { .. } => Invariant::I3,
            Violation::VersionSkew { .. } => Invariant::I4,
            Violation::TerminalWorkflowChanged { .. } => Invariant::I5,
            Violation::DuplicateAttempt { .. } => Invariant::I8,
        }
    }
}

/// Every violation of I1, I2, I3 and I8 that one state shows: those of I1–I3 in task order, then
/// each duplicate attempt (I8) in task order. O(tasks log tasks).
pub fn check(workflow: &Workflow) -> Vec<Violation> {
    let mut violations = Vec::new();
    let status = workflow.status();
    for task in workflow.tasks() {
        let latest = workflow
            .latest_attempt(&task.reference_name)
            .filter(|latest| latest.id != task.id);
        if status.is_terminal() && !task.status.is_terminal() {
            violations.push(Violation::LiveTaskInTerminalWorkflow {
                workflow: status,
                task: task.id.clone(),
                reference_name: task.reference_name.clone(),
                status: task.status,
            });
        }
        if status == WorkflowStatus::Completed
            && latest.is_none()
            && task.status.is_terminal()
            && !task.status.is_successful()
        {
            violations.push(Violation::UnsuccessfulTaskInCompletedWorkflow {
                task: task.id.clone(),
                reference_name: task.reference_name.clone(),
                status: task.status,
            });
        }
        if let Some(latest) = latest {
            if !task.status.is_terminal() {
                violations.push(Violation::SupersededTaskLive {
                    task: task.id.clone(),
                    reference_name: task.reference_name.clone(),
                    status: task.status,
                    latest: latest.id.clone(),
                });
            }
        }
    }
    duplicate_attempts(workflow.tasks(), &mut violations);
    violations
}

/// Up to this many tasks, I8 compares each attempt with the earlier ones (no allocation, and
/// faster than a map for the handful of tasks a workflow usually holds); beyond, a sorted index.
const PAIRWISE_LIMIT: usize = 32;

/// I8: every attempt whose (reference name, retry count, iteration) an earlier attempt has.
fn duplicate_attempts(tasks: &[Task], violations: &mut Vec<Violation>) {
    let key = attempt_key;
    let duplicate = |task: &Task, first: &Task| Violation::DuplicateAttempt {
        task: task.id.clone(),
        reference_name: task.reference_name.clone(),
        status: task.status,
        first: first.id.clone(),
        retry_count: task.retry_count,
        iteration: task.iteration,
    };
    if tasks.len() <= PAIRWISE_LIMIT {
        for (position, task) in tasks.iter().enumerate() {
            if let Some(first) = tasks[..position].iter().find(|t| key(t) == key(task)) {
                violations.push(duplicate(task, first));
            }
        }
        return;
    }
    // Positions sorted by key, ties by position: the first of each run is the first attempt.
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_unstable_by(|&a, &b| key(&tasks[a]).cmp(&key(&tasks[b])).then(a.cmp(&b)));
    let mut found = Vec::new();
    let mut first = None;
    for (index, &position) in order.iter().enumerate() {
        let starts_run = index == 0 || key(&tasks[order[index - 1]]) != key(&tasks[position]);
        match first {
            Some(first) if !starts_run => found.push((position, first)),
            _ => first = Some(position),
        }
    }
    found.sort_unstable();
    for (task, first) in found {
        violations.push(duplicate(&tasks[task], &tasks[first]));
    }
}

fn attempt_key(task: &Task) -> (&str, u32, u32) {
    (
        task.reference_name.as_str(),
        task.retry_count,
        task.iteration,
    )
}

/// Every violation of I3, I4 and I5 that the change from `before` to `after` shows.
/// `through_retry` says whether the change was an admin retry. O(tasks).
pub fn check_pair(before: &Workflow, after: &Workflow, through_retry: bool) -> Vec<Violation> {
    let mut violations = Vec::new();
    for old in before.tasks() {
        match after.task(&old.id) {
            Some(new) if same_identity(old, new) => {
                if old.status.is_terminal() && old.status != new.status && !tolerated(old, new) {
                    violations.push(Violation::TerminalTaskChanged {
                        task: old.id.clone(),
                        reference_name: old.reference_name.clone(),
                        from: old.status,
                        to: new.status,
                    });
                }
            }
            Some(_) | None => violations.push(Violation::TaskRewritten {
                task: old.id.clone(),
                reference_name: old.reference_name.clone(),
            }),
        }
    }
    let changed = before.status() != after.status() || before.tasks() != after.tasks();
    let expected = if changed {
        before.version().checked_add(1)
    } else {
        Some(before.version())
    };
    if expected != Some(after.version()) {
        violations.push(Violation::VersionSkew {
            before: before.version(),
            after: after.version(),
            kind: if changed { "real" } else { "empty" },
        });
    }
    let (from, to) = (before.status(), after.status());
    if from.is_terminal() && from != to && !(through_retry && to == WorkflowStatus::Running) {
        violations.push(Violation::TerminalWorkflowChanged { from, to });
    }
    violations
}

fn same_identity(old: &Task, new: &Task) -> bool {
    old.reference_name == new.reference_name
        && old.retry_count == new.retry_count
        && old.iteration == new.iteration
        && old.optional == new.optional
}

/// The one terminal-to-terminal edge: an optional task's failure tolerated.
fn tolerated(old: &Task, new: &Task) -> bool {
    old.optional
        && matches!(old.status, TaskStatus::Failed | TaskStatus::TimedOut)
        && new.status == TaskStatus::CompletedWithErrors
}

/// Debug builds check every applied step: the pair always, the new state whenever the old one
/// was consistent (a loaded state may already be broken; a step must not break a sound one).
#[cfg(debug_assertions)]
pub(crate) fn debug_check_step(before: &Workflow, after: &Workflow, through_retry: bool) {
    let pair = check_pair(before, after, through_retry);
    assert!(pair.is_empty(), "step broke an invariant: {pair:?}");
    if check(before).is_empty() {
        let single = check(after);
        assert!(single.is_empty(), "step broke an invariant: {single:?}");
    }
}
