//! Conductor conformance: read real workflow executions and input logs, so they can be audited
//! against the invariants and replayed through the transition function (feature `conductor`).
//!
//! - [`Execution`] reads a workflow execution as Conductor's REST API returns it
//!   (`GET /api/workflow/{id}?includeTasks=true`) or as Conductor persists it, and
//!   [`Execution::to_workflow`] turns it into the core's [`Workflow`](crate::Workflow) (version 0:
//!   Conductor keeps no compare-and-swap version).
//! - [`WorkflowDefinition`] reads a workflow definition (`WorkflowDef`, as
//!   `POST /api/metadata/workflow` takes it) into the constructs this crate supports, or a typed
//!   [`DefinitionError`] naming the unsupported or invalid task.
//! - [`Event`] is one entry of an input log: the core's [`Input`](crate::Input), whose task may be
//!   named by reference name; [`read_log`] reads a JSON-lines log of them.
//!
//! ```
//! use wfstate::conductor::{read_log, Execution};
//! use wfstate::{check, Invariant};
//!
//! // D1 as a store left it: TERMINATED, one task still IN_PROGRESS.
//! let json = r#"{
//!     "workflowId": "wf-1", "status": "TERMINATED", "schemaVersion": 2,
//!     "tasks": [{"taskId": "t-1", "referenceTaskName": "upload", "status": "IN_PROGRESS",
//!                "taskStatus": "IN_PROGRESS", "workflowInstanceId": "wf-1", "logs": []}]
//! }"#;
//! let execution = Execution::from_json(json)?;
//! let workflow = execution.to_workflow()?;
//! let violations = check(&workflow);
//! assert_eq!(violations[0].invariant(), Invariant::I1);
//!
//! // A late IN_PROGRESS after COMPLETED (D2), named by reference name, is rejected.
//! let mut workflow = Execution::from_json(
//!     r#"{"workflowId": "wf-2", "status": "RUNNING",
//!         "tasks": [{"taskId": "t-9", "referenceTaskName": "upload__135", "status": "COMPLETED"}]}"#,
//! )?
//! .to_workflow()?;
//! let log = r#"{"writer": "report", "input": {"task": {"ref": "upload__135"}, "status": "IN_PROGRESS"}}"#;
//! for entry in read_log(log.as_bytes()) {
//!     let input = entry?.event.resolve(&workflow)?;
//!     assert!(workflow.advance(&input).is_err());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The file formats and the `wfstate audit` and `wfstate replay` commands built on this module
//! are described in `docs/conformance.md`, included below as [`manual`].

mod decide;
mod definition;
mod error;
mod event;
mod execution;
mod log;
mod object;

pub use decide::{Blocked, Choices, ConductorDecider, Evaluate, TooManyChoices};
pub use definition::{
    DefinitionError, ExternalTask, SystemTask, TaskKind, TaskNode, WorkflowDefinition,
};
pub use error::ExecutionError;
pub use event::{EngineEvent, Event, ReportEvent, ResolveError, TaskRef};
pub use execution::{Execution, ExecutionTask};
pub use log::{parse_line, read_log, LogEntry, LogError, LogReader, MAX_LINE_BYTES};

#[doc = include_str!("../../docs/conformance.md")]
pub mod manual {}
