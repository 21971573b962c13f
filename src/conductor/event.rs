//! One entry of an input log: an [`Input`] whose task may be named by its reference name instead
//! of its attempt id.
//!
//! The JSON is the core's own serde representation of [`Input`] (`{"writer": "report", "input":
//! {...}}`), so every serialized `Input` is an event. The one addition: wherever an input names
//! an existing attempt (`task`, and `failed` in a reschedule), the value may be `{"ref": NAME}`,
//! meaning the latest attempt of reference name `NAME` at the moment the event is replayed.
//! [`Event::resolve`] turns an event into the [`Input`] it stands for.

use serde::{Deserialize, Serialize};

use crate::pure::id::{TaskId, WorkflowId};
use crate::pure::input::{AdminInput, EngineInput, Input, Report};
use crate::pure::status::ReportStatus;
use crate::pure::task::NewTask;
use crate::pure::workflow::Workflow;

/// How an event names an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a task id (a string) or {\"ref\": REFERENCE_NAME}"
)]
pub enum TaskRef {
    /// The attempt with this id: `"3f1c0a2e-..."`.
    Id(TaskId),
    /// The latest attempt of this reference name when the event is replayed:
    /// `{"ref": "Upload_item_start__135"}`.
    Reference {
        /// The reference name (Conductor's `referenceTaskName`).
        #[serde(rename = "ref")]
        reference_name: String,
    },
}

impl TaskRef {
    /// The attempt id this names in `workflow`. An id is passed through unchecked (the transition
    /// function rejects an unknown one); a reference name must have an attempt.
    pub fn resolve(&self, workflow: &Workflow) -> Result<TaskId, ResolveError> {
        match self {
            TaskRef::Id(id) => Ok(id.clone()),
            TaskRef::Reference { reference_name } => workflow
                .latest_attempt(reference_name)
                .map(|task| task.id.clone())
                .ok_or_else(|| ResolveError::UnknownReference {
                    reference_name: reference_name.clone(),
                }),
        }
    }
}

impl From<TaskId> for TaskRef {
    fn from(id: TaskId) -> Self {
        TaskRef::Id(id)
    }
}

/// Why an event does not name an input in the workflow it is replayed on. Like a
/// [`Rejection`](crate::Rejection), it changes nothing: a replay reports it as a rejected input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No attempt has this reference name.
    #[error("no task has reference name {reference_name}")]
    UnknownReference {
        /// The reference name asked for.
        reference_name: String,
    },
    /// The event is addressed to another workflow (Conductor's `workflowInstanceId`).
    #[error("input is for workflow {addressed}, not {workflow}")]
    OtherWorkflow {
        /// The workflow the event names.
        addressed: WorkflowId,
        /// The workflow being replayed.
        workflow: WorkflowId,
    },
}

/// A worker's report, naming its attempt by id or reference name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReportEvent {
    /// The attempt reported on.
    pub task: TaskRef,
    /// The status the worker reports.
    pub status: ReportStatus,
    /// The workflow the report is addressed to, when the log says (Conductor's
    /// `workflowInstanceId`); a report for another workflow is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowId>,
}

/// [`EngineInput`], naming existing attempts by id or reference name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum EngineEvent {
    /// [`EngineInput::Schedule`].
    Schedule(NewTask),
    /// [`EngineInput::Skip`].
    Skip(NewTask),
    /// [`EngineInput::Reschedule`].
    Reschedule {
        /// The failed latest attempt.
        failed: TaskRef,
        /// The id of the new attempt.
        task: TaskId,
    },
    /// [`EngineInput::Start`].
    Start {
        /// The attempt.
        task: TaskRef,
    },
    /// [`EngineInput::TimeOutTask`].
    TimeOutTask {
        /// The attempt.
        task: TaskRef,
    },
    /// [`EngineInput::CancelTask`].
    CancelTask {
        /// The attempt.
        task: TaskRef,
    },
    /// [`EngineInput::TolerateFailure`].
    TolerateFailure {
        /// The attempt.
        task: TaskRef,
    },
    /// [`EngineInput::Complete`].
    Complete,
    /// [`EngineInput::Fail`].
    Fail,
    /// [`EngineInput::TimeOut`].
    TimeOut,
}

/// One entry of an input log, by writer class, as the core's [`Input`] serializes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "writer", content = "input", rename_all = "snake_case")]
pub enum Event {
    /// From a worker.
    Report(ReportEvent),
    /// From the decider or sweeper.
    Engine(EngineEvent),
    /// From an operator.
    Admin(AdminInput),
}

impl Event {
    /// The input this event stands for in `workflow` (reference names resolve to the latest
    /// attempt now). Reads `workflow`, never changes it.
    pub fn resolve(&self, workflow: &Workflow) -> Result<Input, ResolveError> {
        Ok(match self {
            Event::Report(report) => {
                if let Some(addressed) = &report.workflow {
                    if addressed != workflow.id() {
                        return Err(ResolveError::OtherWorkflow {
                            addressed: addressed.clone(),
                            workflow: workflow.id().clone(),
                        });
                    }
                }
                Input::Report(Report::new(report.task.resolve(workflow)?, report.status))
            }
            Event::Engine(engine) => Input::Engine(resolve_engine(engine, workflow)?),
            Event::Admin(admin) => Input::Admin(*admin),
        })
    }
}

fn resolve_engine(event: &EngineEvent, workflow: &Workflow) -> Result<EngineInput, ResolveError> {
    let task = |task: &TaskRef| task.resolve(workflow);
    Ok(match event {
        EngineEvent::Schedule(new) => EngineInput::Schedule(new.clone()),
        EngineEvent::Skip(new) => EngineInput::Skip(new.clone()),
        EngineEvent::Reschedule { failed, task: id } => EngineInput::Reschedule {
            failed: task(failed)?,
            task: id.clone(),
        },
        EngineEvent::Start { task: named } => EngineInput::Start { task: task(named)? },
        EngineEvent::TimeOutTask { task: named } => EngineInput::TimeOutTask { task: task(named)? },
        EngineEvent::CancelTask { task: named } => EngineInput::CancelTask { task: task(named)? },
        EngineEvent::TolerateFailure { task: named } => {
            EngineInput::TolerateFailure { task: task(named)? }
        }
        EngineEvent::Complete => EngineInput::Complete,
        EngineEvent::Fail => EngineInput::Fail,
        EngineEvent::TimeOut => EngineInput::TimeOut,
    })
}

/// Every input is an event naming its attempts by id. Exhaustive over [`Input`], so a new input
/// in the core fails to compile here until the log format can carry it.
impl From<Input> for Event {
    fn from(input: Input) -> Self {
        match input {
            Input::Report(Report { task, status }) => Event::Report(ReportEvent {
                task: task.into(),
                status,
                workflow: None,
            }),
            Input::Engine(engine) => Event::Engine(match engine {
                EngineInput::Schedule(new) => EngineEvent::Schedule(new),
                EngineInput::Skip(new) => EngineEvent::Skip(new),
                EngineInput::Reschedule { failed, task } => EngineEvent::Reschedule {
                    failed: failed.into(),
                    task,
                },
                EngineInput::Start { task } => EngineEvent::Start { task: task.into() },
                EngineInput::TimeOutTask { task } => EngineEvent::TimeOutTask { task: task.into() },
                EngineInput::CancelTask { task } => EngineEvent::CancelTask { task: task.into() },
                EngineInput::TolerateFailure { task } => {
                    EngineEvent::TolerateFailure { task: task.into() }
                }
                EngineInput::Complete => EngineEvent::Complete,
                EngineInput::Fail => EngineEvent::Fail,
                EngineInput::TimeOut => EngineEvent::TimeOut,
            }),
            Input::Admin(admin) => Event::Admin(admin),
        }
    }
}
