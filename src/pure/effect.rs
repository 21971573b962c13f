//! Effects: what the caller does after a step, as data (SPEC section 5).
//!
//! The order of [`Step::effects`](crate::Step::effects) is the contract, and [`Phase`] names it:
//!
//! 1. [`Effect::Persist`]: write the new state with compare-and-swap on `read_version`. If the
//!    swap fails, stop: nothing else may be performed, re-read and step again.
//! 2. Queue effects ([`Phase::Queue`]): decider-queue membership and task queues, performed after a
//!    successful persist and, in the runtime protocol, before the workflow lock is released.
//! 3. Post-commit effects ([`Phase::PostCommit`]): listeners, archiving, telling a running task
//!    to stop. Put them in an outbox and perform them at least once; they must be idempotent. Their
//!    failure is retried and never changes any status: the state persisted in step 1 is already
//!    complete and consistent (I1, I7).

use serde::{Deserialize, Serialize};

use super::id::TaskId;
use super::status::WorkflowStatus;

/// Which of the three ordered phases an effect belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Compare-and-swap the new state.
    Persist,
    /// Decider queue and task queues.
    Queue,
    /// Outbox: at least once, idempotent, failure never changes status.
    PostCommit,
}

/// One effect owed by a committed step. Closed: adding a variant breaks every exhaustive match
/// that must handle it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Store the workflow if and only if its stored version is still `read_version`; the stored
    /// version becomes `new_version` (`read_version + 1`).
    Persist {
        /// The version the step was computed from.
        read_version: u64,
        /// The version after the step.
        new_version: u64,
    },
    /// The workflow left RUNNING: remove it from the decider queue.
    LeaveDeciderQueue,
    /// The workflow became RUNNING: put it in the decider queue.
    EnterDeciderQueue,
    /// A cancelled or timed-out attempt: remove it from its task queue.
    RemoveFromTaskQueue {
        /// The attempt.
        task: TaskId,
    },
    /// A newly scheduled attempt: push it to its task queue.
    PushToTaskQueue {
        /// The attempt.
        task: TaskId,
    },
    /// Tell workflow status listeners about the new status.
    NotifyListeners {
        /// The status the workflow now has.
        status: WorkflowStatus,
    },
    /// The workflow became terminal: archive (index) it.
    Archive,
    /// An attempt that was IN_PROGRESS was cancelled or timed out: tell whoever runs it (a worker
    /// or a system task) to stop.
    StopRunningTask {
        /// The attempt.
        task: TaskId,
    },
}

impl Effect {
    /// The phase this effect belongs to; effects in a step never go back to an earlier phase.
    pub const fn phase(&self) -> Phase {
        match self {
            Effect::Persist { .. } => Phase::Persist,
            Effect::LeaveDeciderQueue
            | Effect::EnterDeciderQueue
            | Effect::RemoveFromTaskQueue { .. }
            | Effect::PushToTaskQueue { .. } => Phase::Queue,
            Effect::NotifyListeners { .. } | Effect::Archive | Effect::StopRunningTask { .. } => {
                Phase::PostCommit
            }
        }
    }
}
