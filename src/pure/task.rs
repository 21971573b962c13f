//! One task attempt, as the workflow holds it.

use serde::{Deserialize, Serialize};

use super::id::{ReferenceName, TaskId};
use super::status::TaskStatus;

/// One attempt of a task. Fields are public for reading and for loading stored executions; inside a
/// [`Workflow`](super::workflow::Workflow) a task changes only through the transition function.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Unique per attempt.
    pub id: TaskId,
    /// The task's name in the workflow definition (Conductor's `referenceTaskName`); shared by all
    /// attempts of the task.
    pub reference_name: ReferenceName,
    /// Current status.
    pub status: TaskStatus,
    /// 0 for the first attempt, +1 for each retry.
    pub retry_count: u32,
    /// DO_WHILE loop iteration (0 outside loops).
    pub iteration: u32,
    /// An optional task's failure may be tolerated (FAILED or TIMED_OUT → COMPLETED_WITH_ERRORS).
    pub optional: bool,
}

/// What the engine supplies to put a task into a workflow (the core allocates nothing).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct NewTask {
    /// The id of the first attempt.
    pub id: TaskId,
    /// The reference name; no other attempt chain in the workflow may use it.
    pub reference_name: ReferenceName,
    /// Whether the task is optional.
    #[serde(default)]
    pub optional: bool,
    /// DO_WHILE loop iteration (0 outside loops).
    #[serde(default)]
    pub iteration: u32,
}

impl NewTask {
    /// A required task outside any loop.
    pub fn new(id: impl Into<TaskId>, reference_name: impl Into<ReferenceName>) -> Self {
        NewTask {
            id: id.into(),
            reference_name: reference_name.into(),
            optional: false,
            iteration: 0,
        }
    }

    /// The same task, marked optional.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// The first attempt of this task, entering the workflow with `status`.
    pub(crate) fn first_attempt(&self, status: TaskStatus) -> Task {
        Task {
            id: self.id.clone(),
            reference_name: self.reference_name.clone(),
            status,
            retry_count: 0,
            iteration: self.iteration,
            optional: self.optional,
        }
    }
}

impl Task {
    /// Is `self` exactly the attempt `new` would create with `status`? (A repeated schedule.)
    pub(crate) fn matches(&self, new: &NewTask, status: TaskStatus) -> bool {
        self.id == new.id
            && self.reference_name == new.reference_name
            && self.optional == new.optional
            && self.iteration == new.iteration
            && self.retry_count == 0
            // A scheduled attempt may have moved on since; a skipped one never does.
            && ((self.status == TaskStatus::Skipped) == (status == TaskStatus::Skipped))
    }
}
