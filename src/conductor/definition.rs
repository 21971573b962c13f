//! Conductor workflow definitions (`WorkflowDef` JSON, as `POST /api/metadata/workflow` takes
//! them), read into a typed tree of the constructs this crate supports (issue 13, step 1). A
//! construct it does not support is [`DefinitionError::Unsupported`], naming the task; an invalid
//! definition (two tasks with one reference name, a JOIN waiting on a name no task has) is a typed
//! error naming what is wrong. Nothing here panics on any input: the JSON nesting depth is bounded
//! by serde_json's recursion limit, and so is the tree's.
//!
//! ```
//! use wfstate::conductor::{DefinitionError, TaskKind, WorkflowDefinition};
//!
//! let json = r#"{"name": "order", "version": 1, "tasks": [
//!     {"name": "fetch", "taskReferenceName": "fetch", "type": "SIMPLE"},
//!     {"name": "fork", "taskReferenceName": "fork", "type": "FORK_JOIN", "forkTasks": [
//!         [{"name": "charge", "taskReferenceName": "charge", "type": "SIMPLE"}],
//!         [{"name": "ship", "taskReferenceName": "ship", "type": "SIMPLE", "optional": true}]]},
//!     {"name": "join", "taskReferenceName": "join", "type": "JOIN", "joinOn": ["charge", "ship"]}]}"#;
//! let definition = WorkflowDefinition::from_json(json)?;
//! assert_eq!(definition.tasks.len(), 3);
//! assert!(matches!(&definition.tasks[1].kind, TaskKind::ForkJoin { branches } if branches.len() == 2));
//!
//! let dynamic = r#"{"name": "d", "tasks": [
//!     {"name": "f", "taskReferenceName": "f", "type": "FORK_JOIN_DYNAMIC"}]}"#;
//! assert!(matches!(
//!     WorkflowDefinition::from_json(dynamic),
//!     Err(DefinitionError::Unsupported { ref reference_name, .. }) if reference_name == "f"
//! ));
//! # Ok::<(), DefinitionError>(())
//! ```

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::WorkflowStatus;

/// A Conductor workflow definition: its name, version and top-level tasks, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowDefinition {
    /// `name`.
    pub name: String,
    /// `version` (1 when absent).
    pub version: u32,
    /// `tasks`, in order.
    pub tasks: Vec<TaskNode>,
}

/// One task of a definition (a Conductor `WorkflowTask`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskNode {
    /// `taskReferenceName`: unique in the definition.
    pub reference_name: String,
    /// `name` (the task definition's name).
    pub name: String,
    /// What kind of task, with its nested tasks.
    pub kind: TaskKind,
    /// `optional`: its failure does not fail the workflow (COMPLETED_WITH_ERRORS).
    pub optional: bool,
    /// `permissive`: in a FORK_JOIN branch, its failure fails the JOIN only once every branch
    /// ended.
    pub permissive: bool,
    /// Retries after a failure: `taskDefinition.retryCount` when the task definition is inlined,
    /// else the task's own `retryCount`, else 0 (a definition read alone has no registered task
    /// definitions, whose default Conductor sets to 3).
    pub retry_count: u32,
}

/// The constructs supported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskKind {
    /// SIMPLE: a worker polls it and reports.
    Simple,
    /// A system task the engine completes itself (INLINE, LAMBDA, JSON_JQ_TRANSFORM,
    /// SET_VARIABLE, HTTP).
    System(SystemTask),
    /// A task completed from outside (WAIT, HUMAN, USER_TASK, EVENT, BLOCKING_SYSTEM_TASK).
    External(ExternalTask),
    /// FORK_JOIN: the first task of every branch is scheduled at once.
    ForkJoin {
        /// `forkTasks`: the branches, each a sequence.
        branches: Vec<Vec<TaskNode>>,
    },
    /// JOIN: waits until every task named in `join_on` is terminal.
    Join {
        /// `joinOn`.
        join_on: Vec<String>,
    },
    /// SWITCH, or its older name DECISION: one case runs (which one is data), else the default.
    Switch {
        /// `decisionCases`, by case value (sorted by value).
        cases: Vec<(String, Vec<TaskNode>)>,
        /// `defaultCase` (possibly empty).
        default: Vec<TaskNode>,
    },
    /// DO_WHILE: the body runs once, then again while its condition holds (data); body tasks
    /// are scheduled as `reference__N` in iteration N.
    DoWhile {
        /// `loopOver`.
        body: Vec<TaskNode>,
    },
    /// TERMINATE: ends the workflow at once with this status.
    Terminate {
        /// `inputParameters.terminationStatus` (COMPLETED when absent).
        status: WorkflowStatus,
    },
    /// SUB_WORKFLOW: starts a child workflow and completes with it.
    SubWorkflow {
        /// `subWorkflowParam.name`, or the inlined definition's name.
        workflow: String,
    },
}

impl TaskKind {
    /// The nested sequences: a fork's branches, a switch's cases then its default, a loop's
    /// body; none for the other kinds. The one place the tree's shape is spelled out.
    pub fn nested(&self) -> Vec<&[TaskNode]> {
        match self {
            TaskKind::ForkJoin { branches } => branches.iter().map(Vec::as_slice).collect(),
            TaskKind::Switch { cases, default } => cases
                .iter()
                .map(|(_, case)| case.as_slice())
                .chain([default.as_slice()])
                .collect(),
            TaskKind::DoWhile { body } => vec![body.as_slice()],
            TaskKind::Simple
            | TaskKind::System(_)
            | TaskKind::External(_)
            | TaskKind::Join { .. }
            | TaskKind::Terminate { .. }
            | TaskKind::SubWorkflow { .. } => Vec::new(),
        }
    }

    /// Does a task of this kind have attempts of its own (SIMPLE, system, external,
    /// SUB_WORKFLOW), rather than being a control-flow node?
    pub fn has_attempts(&self) -> bool {
        matches!(
            self,
            TaskKind::Simple
                | TaskKind::System(_)
                | TaskKind::External(_)
                | TaskKind::SubWorkflow { .. }
        )
    }
}

/// The system tasks the engine completes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // Conductor's task types, named as Conductor names them.
pub enum SystemTask {
    Inline,
    Lambda,
    JsonJqTransform,
    SetVariable,
    Http,
}

/// The tasks completed from outside the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // Conductor's task types, named as Conductor names them.
pub enum ExternalTask {
    Wait,
    Human,
    UserTask,
    Event,
    BlockingSystemTask,
}

/// Why a document is not a definition this crate can decide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// Not JSON (or nested deeper than serde_json's recursion limit).
    #[error("invalid definition JSON: {message}")]
    Json {
        /// serde_json's description, with the position.
        message: String,
    },
    /// A value of the wrong JSON type, or a required key absent.
    #[error("{at}: {problem}")]
    Shape {
        /// Where: `definition`, or the task's path (`tasks[2].forkTasks[0][1]`) and reference name.
        at: String,
        /// What is wrong (`"no taskReferenceName"`, `"forkTasks is not an array of arrays"`).
        problem: String,
    },
    /// A task type this crate does not decide (FORK_JOIN_DYNAMIC, EXCLUSIVE_JOIN,
    /// START_WORKFLOW, DYNAMIC, KAFKA_PUBLISH, ...).
    #[error("task {reference_name}: type {task_type} is not supported")]
    Unsupported {
        /// The task's reference name.
        reference_name: String,
        /// Its `type`.
        task_type: String,
    },
    /// Two tasks share one reference name.
    #[error("reference name {reference_name} is used by two tasks")]
    DuplicateReferenceName {
        /// The name.
        reference_name: String,
    },
    /// A JOIN waits on a reference name that no task of the definition has: it would wait
    /// forever.
    #[error("JOIN {join} waits on {name}, which no task has")]
    UnknownJoinOn {
        /// The JOIN's reference name.
        join: String,
        /// The name in its `joinOn`.
        name: String,
    },
    /// A DO_WHILE inside another: the decider does not nest loops (nor does Conductor
    /// support it).
    #[error("DO_WHILE {inner} is inside DO_WHILE {outer}: nested loops are not supported")]
    NestedLoop {
        /// The outer loop's reference name.
        outer: String,
        /// The inner loop's reference name.
        inner: String,
    },
    /// A TERMINATE ending the workflow TERMINATED: an engine input ends a workflow COMPLETED,
    /// FAILED or TIMED_OUT; TERMINATED is the operator's (SPEC section 4).
    #[error("TERMINATE {reference_name}: a decider cannot end a workflow TERMINATED (an operator's input)")]
    TerminatedByTask {
        /// The task's reference name.
        reference_name: String,
    },
    /// A TERMINATE task's `terminationStatus` is not COMPLETED, FAILED or TERMINATED.
    #[error("TERMINATE {reference_name}: termination status {value:?} is not COMPLETED, FAILED or TERMINATED")]
    TerminationStatus {
        /// The task's reference name.
        reference_name: String,
        /// The value found.
        value: String,
    },
}

impl WorkflowDefinition {
    /// Reads a definition from JSON text.
    pub fn from_json(json: &str) -> Result<Self, DefinitionError> {
        WorkflowDefinition::from_slice(json.as_bytes())
    }

    /// Reads a definition from JSON bytes.
    pub fn from_slice(json: &[u8]) -> Result<Self, DefinitionError> {
        let value: Value = serde_json::from_slice(json).map_err(|error| DefinitionError::Json {
            message: error.to_string(),
        })?;
        let Value::Object(object) = value else {
            return Err(shape("definition", "not a JSON object"));
        };
        let name = match object.get("name") {
            Some(Value::String(name)) => name.clone(),
            Some(_) => return Err(shape("definition", "name is not a string")),
            None => return Err(shape("definition", "no name")),
        };
        let version = count(object.get("version"), "version", "definition")?.unwrap_or(1);
        let tasks = match object.get("tasks") {
            Some(Value::Array(tasks)) => sequence(tasks, "tasks")?,
            Some(_) => return Err(shape("definition", "tasks is not an array")),
            None => return Err(shape("definition", "no tasks")),
        };
        let definition = WorkflowDefinition {
            name,
            version,
            tasks,
        };
        definition.validate()?;
        Ok(definition)
    }

    /// Every task of the definition, nested ones included, depth first in definition order.
    pub fn all_tasks(&self) -> Vec<&TaskNode> {
        let mut all = Vec::new();
        collect(&self.tasks, &mut all);
        all
    }

    fn validate(&self) -> Result<(), DefinitionError> {
        let all = self.all_tasks();
        let mut names = BTreeSet::new();
        for task in &all {
            if !names.insert(task.reference_name.as_str()) {
                return Err(DefinitionError::DuplicateReferenceName {
                    reference_name: task.reference_name.clone(),
                });
            }
        }
        for task in &all {
            if let TaskKind::Join { join_on } = &task.kind {
                if let Some(name) = join_on.iter().find(|name| !names.contains(name.as_str())) {
                    return Err(DefinitionError::UnknownJoinOn {
                        join: task.reference_name.clone(),
                        name: name.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

fn collect<'a>(tasks: &'a [TaskNode], all: &mut Vec<&'a TaskNode>) {
    for task in tasks {
        all.push(task);
        for nested in task.kind.nested() {
            collect(nested, all);
        }
    }
}

fn shape(at: impl Into<String>, problem: impl Into<String>) -> DefinitionError {
    DefinitionError::Shape {
        at: at.into(),
        problem: problem.into(),
    }
}

fn sequence(tasks: &[Value], path: &str) -> Result<Vec<TaskNode>, DefinitionError> {
    tasks
        .iter()
        .enumerate()
        .map(|(index, task)| node(task, &format!("{path}[{index}]")))
        .collect()
}

/// A nested sequence under `key`; absent or null is empty.
fn nested(
    object: &Map<String, Value>,
    key: &str,
    at: &str,
    path: &str,
) -> Result<Vec<TaskNode>, DefinitionError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(tasks)) => sequence(tasks, &format!("{path}.{key}")),
        Some(_) => Err(shape(at, format!("{key} is not an array"))),
    }
}

fn flag(object: &Map<String, Value>, key: &str, at: &str) -> Result<bool, DefinitionError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(shape(at, format!("{key} is not a boolean"))),
    }
}

fn count(value: Option<&Value>, key: &str, at: &str) -> Result<Option<u32>, DefinitionError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|count| u32::try_from(count).ok())
            .map(Some)
            .ok_or_else(|| shape(at, format!("{key} is not a small non-negative integer"))),
    }
}

fn node(value: &Value, path: &str) -> Result<TaskNode, DefinitionError> {
    let Value::Object(object) = value else {
        return Err(shape(path, "not a JSON object"));
    };
    let reference_name = match object.get("taskReferenceName") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        Some(Value::String(_)) => return Err(shape(path, "taskReferenceName is empty")),
        Some(_) => return Err(shape(path, "taskReferenceName is not a string")),
        None => return Err(shape(path, "no taskReferenceName")),
    };
    let at = format!("{path} ({reference_name})");
    let name = match object.get("name") {
        Some(Value::String(name)) => name.clone(),
        None | Some(Value::Null) => reference_name.clone(),
        Some(_) => return Err(shape(&at, "name is not a string")),
    };
    let task_type = match object.get("type") {
        Some(Value::String(task_type)) => task_type.clone(),
        // Conductor's default task type.
        None | Some(Value::Null) => String::from("SIMPLE"),
        Some(_) => return Err(shape(&at, "type is not a string")),
    };
    let inlined = match object.get("taskDefinition") {
        None | Some(Value::Null) => None,
        Some(Value::Object(definition)) => count(
            definition.get("retryCount"),
            "taskDefinition.retryCount",
            &at,
        )?,
        Some(_) => return Err(shape(&at, "taskDefinition is not an object")),
    };
    let own = count(object.get("retryCount"), "retryCount", &at)?;
    let retry_count = inlined.or(own).unwrap_or(0);
    let kind = match task_type.as_str() {
        "SIMPLE" => TaskKind::Simple,
        "INLINE" => TaskKind::System(SystemTask::Inline),
        "LAMBDA" => TaskKind::System(SystemTask::Lambda),
        "JSON_JQ_TRANSFORM" => TaskKind::System(SystemTask::JsonJqTransform),
        "SET_VARIABLE" => TaskKind::System(SystemTask::SetVariable),
        "HTTP" => TaskKind::System(SystemTask::Http),
        "WAIT" => TaskKind::External(ExternalTask::Wait),
        "HUMAN" => TaskKind::External(ExternalTask::Human),
        "USER_TASK" => TaskKind::External(ExternalTask::UserTask),
        "EVENT" => TaskKind::External(ExternalTask::Event),
        "BLOCKING_SYSTEM_TASK" => TaskKind::External(ExternalTask::BlockingSystemTask),
        "FORK_JOIN" => {
            let branches = match object.get("forkTasks") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(branches)) => {
                    let mut read = Vec::with_capacity(branches.len());
                    for (index, branch) in branches.iter().enumerate() {
                        let Value::Array(tasks) = branch else {
                            return Err(shape(&at, "forkTasks is not an array of arrays"));
                        };
                        read.push(sequence(tasks, &format!("{path}.forkTasks[{index}]"))?);
                    }
                    read
                }
                Some(_) => return Err(shape(&at, "forkTasks is not an array")),
            };
            TaskKind::ForkJoin { branches }
        }
        "JOIN" => {
            let join_on = match object.get("joinOn") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(names)) => {
                    let mut read = Vec::with_capacity(names.len());
                    for name in names {
                        let Value::String(name) = name else {
                            return Err(shape(&at, "joinOn is not an array of strings"));
                        };
                        read.push(name.clone());
                    }
                    read
                }
                Some(_) => return Err(shape(&at, "joinOn is not an array")),
            };
            TaskKind::Join { join_on }
        }
        "SWITCH" | "DECISION" => {
            let cases = match object.get("decisionCases") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Object(cases)) => {
                    let mut read = Vec::with_capacity(cases.len());
                    for (value, tasks) in cases {
                        let Value::Array(tasks) = tasks else {
                            return Err(shape(&at, "decisionCases is not an object of arrays"));
                        };
                        let case_path = format!("{path}.decisionCases[{value:?}]");
                        read.push((value.clone(), sequence(tasks, &case_path)?));
                    }
                    read
                }
                Some(_) => return Err(shape(&at, "decisionCases is not an object")),
            };
            let default = nested(object, "defaultCase", &at, path)?;
            TaskKind::Switch { cases, default }
        }
        "DO_WHILE" => TaskKind::DoWhile {
            body: nested(object, "loopOver", &at, path)?,
        },
        "TERMINATE" => {
            let status = object
                .get("inputParameters")
                .and_then(|parameters| parameters.get("terminationStatus"));
            let status = match status {
                None | Some(Value::Null) => WorkflowStatus::Completed,
                Some(Value::String(value)) => match value.as_str() {
                    "COMPLETED" => WorkflowStatus::Completed,
                    "FAILED" => WorkflowStatus::Failed,
                    "TERMINATED" => WorkflowStatus::Terminated,
                    _ => {
                        return Err(DefinitionError::TerminationStatus {
                            reference_name,
                            value: value.clone(),
                        })
                    }
                },
                Some(other) => {
                    return Err(DefinitionError::TerminationStatus {
                        reference_name,
                        value: other.to_string(),
                    })
                }
            };
            TaskKind::Terminate { status }
        }
        "SUB_WORKFLOW" => {
            let parameter = match object.get("subWorkflowParam") {
                Some(Value::Object(parameter)) => parameter,
                Some(_) => return Err(shape(&at, "subWorkflowParam is not an object")),
                None => return Err(shape(&at, "no subWorkflowParam")),
            };
            let inline_name = parameter
                .get("workflowDefinition")
                .and_then(|definition| definition.get("name"));
            let workflow = match (parameter.get("name"), inline_name) {
                (Some(Value::String(name)), _) | (_, Some(Value::String(name))) => name.clone(),
                _ => return Err(shape(&at, "subWorkflowParam names no workflow")),
            };
            TaskKind::SubWorkflow { workflow }
        }
        _ => {
            return Err(DefinitionError::Unsupported {
                reference_name,
                task_type,
            })
        }
    };
    Ok(TaskNode {
        reference_name,
        name,
        kind,
        optional: flag(object, "optional", &at)?,
        permissive: flag(object, "permissive", &at)?,
        retry_count,
    })
}
