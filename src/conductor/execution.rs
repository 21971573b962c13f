//! A workflow execution as Conductor returns it (`GET /api/workflow/{id}?includeTasks=true`) or
//! persists it (`WorkflowModel`, `TaskModel`), reduced to what wfstate models.
//!
//! Reading is lenient about keys and strict about statuses. Every key wfstate does not model
//! (`input`, `output`, `workflowDefinition`, the legacy `taskStatus`, `schemaVersion`, `logs`, ...)
//! is skipped while parsing, without being stored, so memory stays proportional to what is kept.
//! Statuses are read as strings first and converted afterwards, so an unknown status is an
//! [`ExecutionError`] that names the value and where it was (task index and reference name).

use std::io::Read;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::ExecutionError;
use super::object::{Described, Object};
use crate::pure::id::{TaskId, WorkflowId};
use crate::pure::status::{TaskStatus, WorkflowStatus};
use crate::pure::task::Task;
use crate::pure::workflow::{LoadError, Workflow};

/// A Conductor workflow execution: the workflow's identity and status and its task attempts, in
/// the order of the execution's `tasks` array.
///
/// Serializes in Conductor's shape (camelCase keys, statuses spelled as Conductor spells them),
/// with only the fields below: reading what it writes gives back an equal value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// `workflowId`.
    pub workflow_id: WorkflowId,
    /// `status`.
    pub status: WorkflowStatus,
    /// `previousStatus`, which Conductor's persisted `WorkflowModel` carries; informational only
    /// (the audit reports one state and derives nothing from it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<WorkflowStatus>,
    /// Epoch milliseconds of the last update: `updateTime` in the REST API, `updatedTime` when
    /// persisted. Informational only: it is not the wfstate version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_time: Option<i64>,
    /// The task attempts. Absent in a persisted workflow whose tasks are stored apart: empty.
    pub tasks: Vec<ExecutionTask>,
}

/// One task attempt of a Conductor execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionTask {
    /// `taskId`: unique per attempt.
    pub task_id: TaskId,
    /// `referenceTaskName`: shared by the attempts of one task; DO_WHILE body tasks carry a
    /// `__<iteration>` suffix.
    pub reference_task_name: String,
    /// `status`.
    pub status: TaskStatus,
    /// `retryCount` (0 when absent).
    pub retry_count: u32,
    /// `iteration`, the DO_WHILE loop iteration (0 when absent).
    pub iteration: u32,
    /// `workflowInstanceId`: the workflow the task belongs to, when the document says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_instance_id: Option<WorkflowId>,
    /// `workflowTask.optional` (or a top-level `optional`): whether the engine may tolerate the
    /// task's failure. Written back as `workflowTask.optional`.
    #[serde(rename = "workflowTask", serialize_with = "serialize_optional")]
    pub optional: bool,
}

fn serialize_optional<S: Serializer>(optional: &bool, serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct WorkflowTask {
        optional: bool,
    }
    WorkflowTask {
        optional: *optional,
    }
    .serialize(serializer)
}

impl Execution {
    /// Reads an execution from JSON bytes (the whole document in memory, the fastest way).
    pub fn from_slice(json: &[u8]) -> Result<Self, ExecutionError> {
        let Object(raw) = serde_json::from_slice::<Object<RawExecution>>(json)?;
        Execution::try_from(raw)
    }

    /// Reads an execution from a JSON string.
    pub fn from_json(json: &str) -> Result<Self, ExecutionError> {
        Execution::from_slice(json.as_bytes())
    }

    /// Reads an execution from a reader, without holding the whole document in memory. Buffer the
    /// reader (`std::io::BufReader`): serde_json reads it byte by byte.
    pub fn from_reader(reader: impl Read) -> Result<Self, ExecutionError> {
        let Object(raw) = serde_json::from_reader::<_, Object<RawExecution>>(reader)?;
        Execution::try_from(raw)
    }

    /// The core state: same id, status and attempts, at version 0 (Conductor has no
    /// compare-and-swap version; its `version` key is the deprecated workflow definition version
    /// and is ignored). Inconsistent states load, so [`check`](crate::check) can report them;
    /// only two attempts with one task id are refused.
    pub fn to_workflow(&self) -> Result<Workflow, ExecutionError> {
        let tasks = self.tasks.iter().map(ExecutionTask::to_task).collect();
        Workflow::from_parts(self.workflow_id.clone(), self.status, 0, tasks).map_err(|error| {
            match error {
                LoadError::DuplicateTaskId { task } => self.duplicate_task_id(task),
            }
        })
    }

    /// Where the first repeated id occurs (only called on failure, so the scan costs nothing on
    /// the happy path).
    fn duplicate_task_id(&self, task: TaskId) -> ExecutionError {
        let mut positions = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, candidate)| candidate.task_id == task)
            .map(|(index, _)| index);
        let first = positions.next().unwrap_or(0);
        let index = positions.next().unwrap_or(first);
        ExecutionError::DuplicateTaskId { task, first, index }
    }
}

/// For serde users: the same reading as [`Execution::from_slice`], with the [`ExecutionError`]
/// turned into the deserializer's error message.
impl<'de> Deserialize<'de> for Execution {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Object(raw) = Object::<RawExecution>::deserialize(deserializer)?;
        Execution::try_from(raw).map_err(serde::de::Error::custom)
    }
}

impl ExecutionTask {
    /// The core's view of this attempt.
    pub fn to_task(&self) -> Task {
        Task {
            id: self.task_id.clone(),
            reference_name: self.reference_task_name.as_str().into(),
            status: self.status,
            retry_count: self.retry_count,
            iteration: self.iteration,
            optional: self.optional,
        }
    }
}

/// A workflow written back in Conductor's shape (every task's `workflowInstanceId` is the
/// workflow's id). The wfstate version has no Conductor key and is not written.
impl From<&Workflow> for Execution {
    fn from(workflow: &Workflow) -> Self {
        Execution {
            workflow_id: workflow.id().clone(),
            status: workflow.status(),
            previous_status: None,
            update_time: None,
            tasks: workflow
                .tasks()
                .iter()
                .map(|task| ExecutionTask {
                    task_id: task.id.clone(),
                    reference_task_name: task.reference_name.to_string(),
                    status: task.status,
                    retry_count: task.retry_count,
                    iteration: task.iteration,
                    workflow_instance_id: Some(workflow.id().clone()),
                    optional: task.optional,
                })
                .collect(),
        }
    }
}

/// What serde reads: only the modelled keys, every value optional, statuses as strings. Unknown
/// keys are skipped (no `deny_unknown_fields`), which is what keeps the legacy keys harmless.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawExecution {
    #[serde(rename = "$schema")]
    schema: Option<serde::de::IgnoredAny>,
    workflow_id: Option<String>,
    status: Option<String>,
    previous_status: Option<String>,
    update_time: Option<i64>,
    updated_time: Option<i64>,
    tasks: Option<RawTasks>,
}

/// The `tasks` array, with an error that says so when it is something else.
struct RawTasks(Vec<RawTask>);

impl<'de> Deserialize<'de> for RawTasks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TasksVisitor;

        impl<'de> serde::de::Visitor<'de> for TasksVisitor {
            type Value = RawTasks;

            fn expecting(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                formatter.write_str("an array of Conductor tasks")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut tasks = Vec::new();
                while let Some(Object(task)) = seq.next_element::<Object<RawTask>>()? {
                    tasks.push(task);
                }
                Ok(RawTasks(tasks))
            }
        }

        deserializer.deserialize_seq(TasksVisitor)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTask {
    task_id: Option<String>,
    reference_task_name: Option<String>,
    status: Option<String>,
    retry_count: Option<u32>,
    iteration: Option<u32>,
    workflow_instance_id: Option<String>,
    optional: Option<bool>,
    workflow_task: Option<Object<RawWorkflowTask>>,
}

#[derive(Deserialize)]
struct RawWorkflowTask {
    optional: Option<bool>,
}

impl Described for RawExecution {
    const EXPECTING: &'static str = "a Conductor workflow execution (a JSON object)";
}

impl Described for RawTask {
    const EXPECTING: &'static str = "a Conductor task (a JSON object)";
}

impl Described for RawWorkflowTask {
    const EXPECTING: &'static str = "a Conductor workflow task definition (a JSON object)";
}

impl TryFrom<RawExecution> for Execution {
    type Error = ExecutionError;

    fn try_from(raw: RawExecution) -> Result<Self, Self::Error> {
        if raw.schema.is_some() && raw.workflow_id.is_none() {
            return Err(ExecutionError::JsonSchema);
        }
        let workflow_id = WorkflowId::from(raw.workflow_id.ok_or(
            ExecutionError::MissingWorkflowField {
                field: "workflowId",
            },
        )?);
        let status = raw
            .status
            .ok_or(ExecutionError::MissingWorkflowField { field: "status" })?;
        let status = workflow_status(status, "status")?;
        let previous_status = raw
            .previous_status
            .map(|status| workflow_status(status, "previousStatus"))
            .transpose()?;
        let tasks = raw
            .tasks
            .map(|RawTasks(tasks)| tasks)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, task)| task.into_task(index, &workflow_id))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Execution {
            workflow_id,
            status,
            previous_status,
            update_time: raw.update_time.or(raw.updated_time),
            tasks,
        })
    }
}

fn workflow_status(value: String, field: &'static str) -> Result<WorkflowStatus, ExecutionError> {
    value
        .parse()
        .map_err(|_| ExecutionError::UnknownWorkflowStatus { field, value })
}

impl RawTask {
    fn into_task(
        self,
        index: usize,
        workflow: &WorkflowId,
    ) -> Result<ExecutionTask, ExecutionError> {
        let missing = |field| ExecutionError::MissingTaskField { index, field };
        let task_id = TaskId::from(self.task_id.ok_or(missing("taskId"))?);
        let reference_name = self
            .reference_task_name
            .ok_or(missing("referenceTaskName"))?;
        let status = self.status.ok_or(missing("status"))?;
        let Ok(status) = status.parse::<TaskStatus>() else {
            return Err(ExecutionError::UnknownTaskStatus {
                index,
                reference_name,
                value: status,
            });
        };
        let workflow_instance_id = self.workflow_instance_id.map(WorkflowId::from);
        if let Some(task_workflow) = &workflow_instance_id {
            if task_workflow != workflow {
                return Err(ExecutionError::TaskOfAnotherWorkflow {
                    index,
                    reference_name,
                    task_workflow: task_workflow.clone(),
                    workflow: workflow.clone(),
                });
            }
        }
        let optional = self
            .optional
            .or(self
                .workflow_task
                .and_then(|Object(definition)| definition.optional))
            .unwrap_or(false);
        Ok(ExecutionTask {
            task_id,
            reference_task_name: reference_name,
            status,
            retry_count: self.retry_count.unwrap_or(0),
            iteration: self.iteration.unwrap_or(0),
            workflow_instance_id,
            optional,
        })
    }
}
