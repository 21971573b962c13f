//! Inputs that name their task by picking from the workflow they are sent to, so that a fuzzer's
//! bytes mostly hit real attempts (and sometimes, on purpose, ids the workflow does not hold).

use arbitrary::Arbitrary;
use wfstate::{EngineInput, NewTask, Report, ReportStatus, TaskId, Workflow};

/// The reference names every target uses.
pub const REFERENCES: [&str; 3] = ["fetch", "charge", "ship"];

/// Which task id an input names.
#[derive(Debug, Clone, Arbitrary)]
pub enum TaskPick {
    /// An attempt the workflow holds (index modulo its attempts; an unknown id when it has none).
    Held(u16),
    /// The latest attempt of one of [`REFERENCES`].
    Latest(u8),
    /// An id the workflow does not hold yet (named after its attempt count).
    Fresh,
    /// Any id at all: mostly unknown ones, of any length.
    Named(String),
}

impl TaskPick {
    /// The id this pick names in `workflow`.
    pub fn resolve(&self, workflow: &Workflow) -> TaskId {
        let tasks = workflow.tasks();
        match self {
            TaskPick::Held(index) if !tasks.is_empty() => {
                tasks[usize::from(*index) % tasks.len()].id.clone()
            }
            TaskPick::Held(_) => TaskId::new("no-such-task"),
            TaskPick::Latest(reference) => {
                match workflow.latest_attempt(reference_name(*reference)) {
                    Some(task) => task.id.clone(),
                    None => TaskId::new(format!("never-scheduled-{}", reference_name(*reference))),
                }
            }
            TaskPick::Fresh => TaskId::new(format!("{}:attempt-{}", workflow.id(), tasks.len())),
            TaskPick::Named(name) => TaskId::new(name.as_str()),
        }
    }
}

/// One of [`REFERENCES`].
pub fn reference_name(index: u8) -> &'static str {
    REFERENCES[usize::from(index) % REFERENCES.len()]
}

/// An engine input (decider, sweeper, or an engine's own), its tasks picked from the workflow.
#[derive(Debug, Clone, Arbitrary)]
pub enum EnginePick {
    /// Schedule (or skip) a first attempt of a reference name.
    Schedule {
        /// Its id.
        task: TaskPick,
        /// Index into [`REFERENCES`].
        reference: u8,
        /// Optional task?
        optional: bool,
        /// Skip instead of schedule?
        skip: bool,
        /// Loop iteration.
        iteration: u8,
    },
    /// Retry a failed latest attempt as a new attempt.
    Reschedule {
        /// The failed attempt.
        failed: TaskPick,
        /// The new attempt's id.
        task: TaskPick,
    },
    /// SCHEDULED → IN_PROGRESS.
    Start(TaskPick),
    /// A task times out.
    TimeOutTask(TaskPick),
    /// A task is cancelled.
    CancelTask(TaskPick),
    /// An optional task's failure is tolerated.
    TolerateFailure(TaskPick),
    /// The workflow completes.
    Complete,
    /// The workflow fails.
    Fail,
    /// The workflow times out.
    TimeOut,
}

impl EnginePick {
    /// The input this pick names in `workflow`.
    pub fn resolve(&self, workflow: &Workflow) -> EngineInput {
        match self {
            EnginePick::Schedule {
                task,
                reference,
                optional,
                skip,
                iteration,
            } => {
                let mut new = NewTask::new(task.resolve(workflow), reference_name(*reference));
                new.optional = *optional;
                new.iteration = u32::from(*iteration % 4);
                if *skip {
                    EngineInput::Skip(new)
                } else {
                    EngineInput::Schedule(new)
                }
            }
            EnginePick::Reschedule { failed, task } => EngineInput::Reschedule {
                failed: failed.resolve(workflow),
                task: task.resolve(workflow),
            },
            EnginePick::Start(task) => EngineInput::Start {
                task: task.resolve(workflow),
            },
            EnginePick::TimeOutTask(task) => EngineInput::TimeOutTask {
                task: task.resolve(workflow),
            },
            EnginePick::CancelTask(task) => EngineInput::CancelTask {
                task: task.resolve(workflow),
            },
            EnginePick::TolerateFailure(task) => EngineInput::TolerateFailure {
                task: task.resolve(workflow),
            },
            EnginePick::Complete => EngineInput::Complete,
            EnginePick::Fail => EngineInput::Fail,
            EnginePick::TimeOut => EngineInput::TimeOut,
        }
    }
}

/// A worker's report, its task picked from the workflow.
pub fn report(task: &TaskPick, status: ReportStatus, workflow: &Workflow) -> Report {
    Report::new(task.resolve(workflow), status)
}
