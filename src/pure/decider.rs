//! A reference decider for linear workflows: given the state and the definition, the one engine
//! input the sweeper applies next. Engines with their own decider use [`EngineInput`] directly.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::id::{ReferenceName, TaskId};
use super::input::EngineInput;
use super::status::{TaskStatus, WorkflowStatus};
use super::task::NewTask;
use super::workflow::Workflow;

/// One task of a linear workflow definition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    /// Unique within the definition.
    pub reference_name: ReferenceName,
    /// Its failure may be tolerated once retries are spent.
    #[serde(default)]
    pub optional: bool,
    /// How many retries (new attempts after the first) a FAILED or TIMED_OUT task gets.
    #[serde(default)]
    pub retry_budget: u32,
}

impl TaskDefinition {
    /// A required task with no retries.
    pub fn new(reference_name: impl Into<ReferenceName>) -> Self {
        TaskDefinition {
            reference_name: reference_name.into(),
            optional: false,
            retry_budget: 0,
        }
    }

    /// The same task, optional.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// The same task with `retries` retries.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retry_budget = retries;
        self
    }
}

/// A linear workflow definition: tasks run one after another, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Definition {
    /// The tasks, in order.
    pub tasks: Vec<TaskDefinition>,
}

impl Definition {
    /// A definition of these tasks, in order.
    pub fn new(tasks: impl IntoIterator<Item = TaskDefinition>) -> Self {
        Definition {
            tasks: tasks.into_iter().collect(),
        }
    }
}

/// What the decider wants next.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "decision", content = "input", rename_all = "snake_case")]
pub enum Decision {
    /// Apply this input.
    Act(EngineInput),
    /// A task is still live: nothing to do until it reports (requeue the workflow with a delay).
    Wait,
    /// The workflow is not RUNNING: nothing to decide (a sweeper removes it from the queue).
    Idle,
}

/// The next engine input for a linear workflow. For each task of the definition in order, its
/// latest attempt decides: none yet → schedule it; live → wait; settled → look at the next;
/// FAILED or TIMED_OUT within budget → reschedule; spent and optional → tolerate; otherwise →
/// fail the workflow. When every task is settled → complete. Ids of new attempts come from
/// [`TaskId::attempt`], so two sweepers that decide the same thing propose the same input.
/// Cost: O(definition length × log tasks).
pub fn decide(workflow: &Workflow, definition: &Definition) -> Decision {
    match workflow.status() {
        WorkflowStatus::Running => {}
        WorkflowStatus::Paused
        | WorkflowStatus::Completed
        | WorkflowStatus::Failed
        | WorkflowStatus::TimedOut
        | WorkflowStatus::Terminated => return Decision::Idle,
    }
    for definition in &definition.tasks {
        let Some(task) = workflow.latest_attempt(&definition.reference_name) else {
            let id = TaskId::attempt(workflow.id(), &definition.reference_name, 0);
            return Decision::Act(EngineInput::Schedule(NewTask {
                id,
                reference_name: definition.reference_name.clone(),
                optional: definition.optional,
                iteration: 0,
            }));
        };
        let input = match task.status {
            TaskStatus::Scheduled | TaskStatus::InProgress => return Decision::Wait,
            TaskStatus::Completed | TaskStatus::CompletedWithErrors | TaskStatus::Skipped => {
                continue
            }
            TaskStatus::Failed | TaskStatus::TimedOut
                if task.retry_count < definition.retry_budget =>
            {
                EngineInput::Reschedule {
                    failed: task.id.clone(),
                    task: TaskId::attempt(
                        workflow.id(),
                        &task.reference_name,
                        task.retry_count + 1,
                    ),
                }
            }
            TaskStatus::Failed | TaskStatus::TimedOut if task.optional => {
                EngineInput::TolerateFailure {
                    task: task.id.clone(),
                }
            }
            TaskStatus::Failed
            | TaskStatus::TimedOut
            | TaskStatus::FailedWithTerminalError
            | TaskStatus::Canceled => EngineInput::Fail,
        };
        return Decision::Act(input);
    }
    Decision::Act(EngineInput::Complete)
}
