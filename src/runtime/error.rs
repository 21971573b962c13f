//! Why an engine operation did not (or may not have) happened: one error type per operation,
//! with only the variants that operation can return. A store failure is [`CallFailed`]: the
//! call, and whether it certainly did not take effect or may have (an ambiguous commit).
//! Whatever the error, nothing is lost: a later operation or sweep recovers.

use super::contract::LeaseToken;
use super::op::CallFailed;
use crate::{Rejection, WorkflowId};

/// [`Engine::start`](super::Engine::start) refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The id is in use; nothing changed. (After an ambiguous start this is how a retry learns
    /// that the first one took effect.)
    #[error("workflow {id} already exists")]
    WorkflowExists {
        /// The id.
        id: WorkflowId,
    },
    /// A store call failed: if ambiguous, the workflow may exist now (start again to know).
    #[error(transparent)]
    Store(CallFailed),
}

/// [`Engine::report`](super::Engine::report) refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// No workflow has this id.
    #[error("unknown workflow {id}")]
    UnknownWorkflow {
        /// The id asked for.
        id: WorkflowId,
    },
    /// The transition function refused the report (a late report, an unknown task...).
    #[error("workflow {id}: {rejection}")]
    Rejected {
        /// The workflow.
        id: WorkflowId,
        /// Why, as the core says it.
        rejection: Rejection,
    },
    /// Every compare-and-swap attempt found the workflow moved; try again.
    #[error("workflow {id}: {attempts} compare-and-swap attempts all conflicted")]
    Contention {
        /// The workflow.
        id: WorkflowId,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A store call failed. The report is not acknowledged: redeliver it (a report that did take
    /// effect comes back as a duplicate).
    #[error(transparent)]
    Store(CallFailed),
}

/// [`Engine::poll_task`](super::Engine::poll_task) failed. The polled entry stays in its queue,
/// hidden until its visibility lease runs out: no task is lost.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum PollError {
    /// Every compare-and-swap attempt of the start found the workflow moved.
    #[error("workflow {id}: {attempts} compare-and-swap attempts all conflicted")]
    Contention {
        /// The workflow.
        id: WorkflowId,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A store call failed.
    #[error(transparent)]
    Store(CallFailed),
}

/// An admin or caller's engine input refused ([`Engine::terminate`](super::Engine::terminate),
/// pause, resume, retry, [`act`](super::Engine::act)).
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// No workflow has this id.
    #[error("unknown workflow {id}")]
    UnknownWorkflow {
        /// The id asked for.
        id: WorkflowId,
    },
    /// Another operation holds a valid lease on the workflow: try again later.
    #[error("workflow {id} is locked by holder {holder} until {expires_at_ms} ms")]
    Locked {
        /// The workflow.
        id: WorkflowId,
        /// The current holder.
        holder: LeaseToken,
        /// When its lease expires.
        expires_at_ms: u64,
    },
    /// The transition function refused the input.
    #[error("workflow {id}: {rejection}")]
    Rejected {
        /// The workflow.
        id: WorkflowId,
        /// Why, as the core says it.
        rejection: Rejection,
    },
    /// Every compare-and-swap attempt conflicted with a lock-free writer.
    #[error("workflow {id}: {attempts} compare-and-swap attempts all conflicted")]
    Contention {
        /// The workflow.
        id: WorkflowId,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A store call failed. If the commit was ambiguous, send the input again: one that took
    /// effect comes back as a duplicate or a rejection that says so.
    #[error(transparent)]
    Store(CallFailed),
}

/// [`Engine::sweep_once`](super::Engine::sweep_once) failed. The workflow's decider-queue entry
/// is never lost: it was requeued, or it is still hidden by the pop and reappears after
/// `unack_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// The decider proposed an input the core refused (a decider bug); the workflow is due
    /// again after the sweep delay.
    #[error("workflow {id}: {rejection}")]
    Rejected {
        /// The workflow.
        id: WorkflowId,
        /// Why.
        rejection: Rejection,
    },
    /// Every compare-and-swap attempt conflicted; the workflow is due again at once.
    #[error("workflow {id}: {attempts} compare-and-swap attempts all conflicted")]
    Contention {
        /// The workflow.
        id: WorkflowId,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A store call failed.
    #[error(transparent)]
    Store(CallFailed),
}

/// [`Engine::inspect`](super::Engine::inspect) failed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// No workflow has this id.
    #[error("unknown workflow {id}")]
    UnknownWorkflow {
        /// The id asked for.
        id: WorkflowId,
    },
    /// Another operation holds a valid lease on the workflow.
    #[error("workflow {id} is locked by holder {holder} until {expires_at_ms} ms")]
    Locked {
        /// The workflow.
        id: WorkflowId,
        /// The current holder.
        holder: LeaseToken,
        /// When its lease expires.
        expires_at_ms: u64,
    },
    /// A store call failed.
    #[error(transparent)]
    Store(CallFailed),
}

macro_rules! rejection_of {
    ($($error:ident),*) => {$(
        impl $error {
            /// The core's rejection, if that is why the operation was refused.
            pub fn rejection(&self) -> Option<&Rejection> {
                match self {
                    $error::Rejected { rejection, .. } => Some(rejection),
                    _ => None,
                }
            }

            /// The failed store call, if that is why.
            pub fn store_failure(&self) -> Option<&CallFailed> {
                match self {
                    $error::Store(failed) => Some(failed),
                    _ => None,
                }
            }
        }
    )*};
}

rejection_of!(ReportError, AdminError, SweepError);
