//! Why an engine operation was refused. Every variant leaves the workflow, its queues and its
//! outbox as they were.

use super::lock::LeaseToken;
use super::store::StoreError;
use crate::{Rejection, WorkflowId};

/// An engine operation that did not happen, with the context to act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No workflow has this id.
    #[error("unknown workflow {id}")]
    UnknownWorkflow {
        /// The id asked for.
        id: WorkflowId,
    },
    /// `start` with an id that is already in use.
    #[error("workflow {id} already exists")]
    WorkflowExists {
        /// The id.
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
    /// The transition function refused the input (a late report, an illegal edge, an unknown
    /// task...), or the store refused a step it did not compute.
    #[error("workflow {id}: {rejection}")]
    Rejected {
        /// The workflow.
        id: WorkflowId,
        /// Why, as the core says it.
        rejection: Rejection,
    },
    /// Every compare-and-swap attempt found the workflow moved by a concurrent writer; the
    /// bounded retry gave up (`EngineConfig::max_attempts`). Try again.
    #[error("workflow {id}: {attempts} compare-and-swap attempts all conflicted")]
    Contention {
        /// The workflow.
        id: WorkflowId,
        /// How many attempts were made.
        attempts: u32,
    },
}

impl EngineError {
    /// The core's rejection, if that is why the operation was refused.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            EngineError::Rejected { rejection, .. } => Some(rejection),
            EngineError::UnknownWorkflow { .. }
            | EngineError::WorkflowExists { .. }
            | EngineError::Locked { .. }
            | EngineError::Contention { .. } => None,
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::UnknownWorkflow { id } => EngineError::UnknownWorkflow { id },
            StoreError::WorkflowExists { id } => EngineError::WorkflowExists { id },
            StoreError::Rejected { id, rejection } => EngineError::Rejected { id, rejection },
        }
    }
}
