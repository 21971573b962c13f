//! Why a Conductor execution could not be read. Invariant violations are not errors here: an
//! execution that breaks I1–I5, I8 reads fine, and [`check`](crate::check) reports how.

use crate::pure::id::{TaskId, WorkflowId};

/// A document that is not a readable Conductor workflow execution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutionError {
    /// The document could not be read (an IO error from the reader).
    #[error("cannot read: {message}")]
    Read {
        /// The IO error's description.
        message: String,
    },
    /// Not JSON, or JSON of the wrong shape (an array where an object belongs, a string where a
    /// number belongs, trailing characters).
    #[error("invalid execution JSON: {message}")]
    Json {
        /// serde_json's description, with the position.
        message: String,
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// 1-based column of the error (0 when unknown).
        column: usize,
    },
    /// The document is a JSON Schema (it has a `$schema` key), not an execution: Conductor
    /// publishes schemas of its API types next to executions, and a directory of one often holds
    /// the other.
    #[error("a JSON Schema, not a workflow execution")]
    JsonSchema,
    /// A workflow field the audit cannot do without is absent or null.
    #[error("workflow has no {field}")]
    MissingWorkflowField {
        /// The Conductor key (`"workflowId"`, `"status"`).
        field: &'static str,
    },
    /// A workflow status string Conductor does not have.
    #[error("unknown workflow status {value:?} in {field}")]
    UnknownWorkflowStatus {
        /// The Conductor key that held it (`"status"` or `"previousStatus"`).
        field: &'static str,
        /// The string that was not recognised.
        value: String,
    },
    /// A task field the audit cannot do without is absent or null.
    #[error("tasks[{index}] has no {field}")]
    MissingTaskField {
        /// The task's position in the execution's `tasks` array.
        index: usize,
        /// The Conductor key (`"taskId"`, `"referenceTaskName"`, `"status"`).
        field: &'static str,
    },
    /// A task status string Conductor does not have.
    #[error("unknown task status {value:?} at tasks[{index}] ({reference_name})")]
    UnknownTaskStatus {
        /// The task's position in the execution's `tasks` array.
        index: usize,
        /// The task's `referenceTaskName`.
        reference_name: String,
        /// The string that was not recognised.
        value: String,
    },
    /// A task whose `workflowInstanceId` names another workflow.
    #[error(
        "tasks[{index}] ({reference_name}) belongs to workflow {task_workflow}, not {workflow}"
    )]
    TaskOfAnotherWorkflow {
        /// The task's position in the execution's `tasks` array.
        index: usize,
        /// The task's `referenceTaskName`.
        reference_name: String,
        /// The task's `workflowInstanceId`.
        task_workflow: WorkflowId,
        /// The execution's `workflowId`.
        workflow: WorkflowId,
    },
    /// Two tasks share one `taskId` (every attempt has its own id).
    #[error("task id {task} occurs more than once (tasks[{first}] and tasks[{index}])")]
    DuplicateTaskId {
        /// The repeated id.
        task: TaskId,
        /// The first task with it.
        first: usize,
        /// The next task with it.
        index: usize,
    },
}

impl From<serde_json::Error> for ExecutionError {
    fn from(error: serde_json::Error) -> Self {
        if error.is_io() {
            return ExecutionError::Read {
                message: error.to_string(),
            };
        }
        ExecutionError::Json {
            message: error.to_string(),
            line: error.line(),
            column: error.column(),
        }
    }
}
