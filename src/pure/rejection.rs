//! Why an input was refused. A rejection changes nothing, version included (I4).

use super::id::{ReferenceName, TaskId};
use super::status::{TaskStatus, WorkflowStatus};

/// An input the transition function refused, with the context to act on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// No attempt in this workflow has the id.
    #[error("unknown task {task}")]
    UnknownTask {
        /// The id asked for.
        task: TaskId,
    },
    /// The attempt is terminal already and the input asks for another status: a late report
    /// (drop and acknowledge it). An exact repeat is a duplicate, not this error.
    #[error("task {task} is already terminal ({current}); {requested} arrived late")]
    TaskAlreadyTerminal {
        /// The attempt.
        task: TaskId,
        /// Its terminal status.
        current: TaskStatus,
        /// What the input asked for.
        requested: TaskStatus,
    },
    /// The task transition table has no such edge for this writer.
    #[error("task {task} cannot go from {from} to {to}")]
    IllegalTaskTransition {
        /// The attempt.
        task: TaskId,
        /// Its status.
        from: TaskStatus,
        /// What the input asked for.
        to: TaskStatus,
    },
    /// The workflow transition table has no such edge.
    #[error("workflow cannot go from {from} to {to}")]
    IllegalWorkflowTransition {
        /// The workflow's status.
        from: WorkflowStatus,
        /// What the input asked for.
        to: WorkflowStatus,
    },
    /// Decisions (schedule, skip, reschedule, tolerate) need a RUNNING workflow.
    #[error("workflow is {status}, not RUNNING")]
    WorkflowNotRunning {
        /// The workflow's status.
        status: WorkflowStatus,
    },
    /// A live attempt of a terminal workflow cannot change: it exists only in a loaded state that
    /// already breaks I1, and the transition function will not build on it.
    #[error("workflow is already terminal ({status})")]
    WorkflowTerminal {
        /// The workflow's terminal status.
        status: WorkflowStatus,
    },
    /// Retry needs a FAILED, TIMED_OUT or TERMINATED workflow.
    #[error(
        "workflow is {status}: only a FAILED, TIMED_OUT or TERMINATED workflow can be retried"
    )]
    NotRetriableWorkflow {
        /// The workflow's status.
        status: WorkflowStatus,
    },
    /// Another attempt already has this id.
    #[error("task id {task} is already in use")]
    TaskIdInUse {
        /// The id.
        task: TaskId,
    },
    /// A first attempt was scheduled for a reference name that already has attempts (use
    /// reschedule to add one).
    #[error("reference name {reference_name} already has an attempt ({task})")]
    ReferenceNameInUse {
        /// The reference name.
        reference_name: ReferenceName,
        /// Its latest attempt.
        task: TaskId,
    },
    /// Only an optional task's failure can be tolerated.
    #[error("task {task} is not optional")]
    NotOptional {
        /// The attempt.
        task: TaskId,
    },
    /// The input needs the latest attempt of its reference name; a retry superseded this one.
    #[error("task {task} is superseded by attempt {latest}")]
    NotLatestAttempt {
        /// The attempt named.
        task: TaskId,
        /// The latest attempt.
        latest: TaskId,
    },
    /// Only a FAILED or TIMED_OUT attempt can be rescheduled.
    #[error("task {task} is {status}, which is not retriable")]
    NotRetriable {
        /// The attempt.
        task: TaskId,
        /// Its status.
        status: TaskStatus,
    },
    /// Completion needs every latest attempt terminal and successful.
    #[error("workflow cannot complete: task {task} is {status}")]
    UnsettledTask {
        /// The first attempt in the way.
        task: TaskId,
        /// Its status.
        status: TaskStatus,
    },
    /// A step computed from `read` cannot be applied to version `current` (I4): re-read, step again.
    #[error("stale version: step read {read}, workflow is at {current}")]
    StaleVersion {
        /// The version the step was computed from.
        read: u64,
        /// The version it was applied to.
        current: u64,
    },
    /// The version is at `u64::MAX`: no change can be versioned any more (a wrapped version
    /// would let old steps pass the compare-and-swap again).
    #[error("version {version} cannot be raised")]
    VersionExhausted {
        /// The workflow's version.
        version: u64,
    },
    /// The attempt's retry count is at `u32::MAX`: no further attempt can be numbered.
    #[error("task {task} has exhausted its retry count")]
    RetryCountExhausted {
        /// The attempt that would be retried.
        task: TaskId,
    },
    /// The step was computed from another workflow (same version, different tasks or statuses).
    #[error("step does not belong to this workflow")]
    ForeignStep,
}
