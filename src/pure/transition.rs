//! The transition function: current state + one input → a [`Rejection`] or a [`Step`].
//!
//! One exhaustive dispatch ([`transition`]) picks a leaf per input; leaves check and compute, and
//! a `StepBuilder` assembles the changes and the effects in their contractual order (`task_step`
//! builds the common step that changes one attempt directly). Nothing here mutates the workflow:
//! [`Workflow::apply`] does, so a rejection cannot change anything.

use super::effect::{Effect, Phase};
use super::id::TaskId;
use super::input::{AdminInput, EngineInput, Input, Report};
use super::list::SmallList;
use super::rejection::Rejection;
use super::status::{TaskStatus, WorkflowStatus};
use super::step::{Changes, Outcome, Step, TaskChange, WorkflowChange};
use super::task::{NewTask, Task};
use super::workflow::Workflow;

/// Computes the step `input` makes from `workflow`, or why it is refused. Pure: no IO, no clock,
/// no change to `workflow`. Cost: proportional to what the step changes (plus a hash lookup).
pub fn transition(workflow: &Workflow, input: &Input) -> Result<Step, Rejection> {
    match input {
        Input::Report(report) => apply_report(workflow, report),
        Input::Engine(engine) => match engine {
            EngineInput::Schedule(new) => schedule(workflow, new, TaskStatus::Scheduled),
            EngineInput::Skip(new) => schedule(workflow, new, TaskStatus::Skipped),
            EngineInput::Reschedule { failed, task } => reschedule(workflow, failed, task),
            EngineInput::Start { task } => move_task(workflow, task, TaskStatus::InProgress),
            EngineInput::TimeOutTask { task } => move_task(workflow, task, TaskStatus::TimedOut),
            EngineInput::CancelTask { task } => move_task(workflow, task, TaskStatus::Canceled),
            EngineInput::TolerateFailure { task } => tolerate_failure(workflow, task),
            EngineInput::Complete => complete(workflow),
            EngineInput::Fail => end(workflow, WorkflowStatus::Failed),
            EngineInput::TimeOut => end(workflow, WorkflowStatus::TimedOut),
        },
        Input::Admin(admin) => match admin {
            AdminInput::Terminate => end(workflow, WorkflowStatus::Terminated),
            AdminInput::Pause => pause(workflow),
            AdminInput::Resume => resume(workflow),
            AdminInput::Retry => retry(workflow),
        },
    }
}

impl Workflow {
    /// [`transition`] then [`Workflow::apply`]: the step is returned so its effects can be
    /// performed. On rejection nothing changes.
    pub fn advance(&mut self, input: &Input) -> Result<Step, Rejection> {
        let step = transition(self, input)?;
        self.apply(&step)?;
        Ok(step)
    }
}

/// The workflow transition table (SPEC section 4). Leaving a terminal status is further limited
/// to admin retry by the inputs themselves (I5).
pub const fn workflow_edge(from: WorkflowStatus, to: WorkflowStatus) -> bool {
    use WorkflowStatus::{Completed, Failed, Paused, Running, Terminated, TimedOut};
    match from {
        Running => matches!(to, Paused | Completed | Failed | TimedOut | Terminated),
        Paused => matches!(to, Running | Terminated | TimedOut),
        Completed => false,
        Failed | TimedOut | Terminated => matches!(to, Running),
    }
}

fn apply_report(workflow: &Workflow, report: &Report) -> Result<Step, Rejection> {
    let to = report.status.task_status();
    let position = match gate_live_task(workflow, &report.task, to)? {
        Gate::Live(position) => position,
        Gate::Duplicate(step) => return Ok(step),
    };
    let from = workflow.task_at(position).status;
    if from == to {
        // IN_PROGRESS on IN_PROGRESS: progress, nothing to change.
        return Ok(Step::unchanged(workflow, Outcome::Progress));
    }
    // A worker reporting its own end needs no stop signal; a SCHEDULED attempt it ended without
    // polling must still leave its task queue.
    let dequeue =
        (from == TaskStatus::Scheduled && to.is_terminal()).then(|| Effect::RemoveFromTaskQueue {
            task: report.task.clone(),
        });
    task_step(workflow, position, to, dequeue)
}

/// Where an input that moves one attempt stands after [`gate_live_task`].
enum Gate {
    /// The attempt is live at this position; go on.
    Live(usize),
    /// The attempt already has the terminal status asked for.
    Duplicate(Step),
}

/// Common gate for inputs that move one attempt to `to`: the attempt exists; a terminal one makes
/// the input a duplicate or a late arrival; a live one in a terminal workflow is refused (it can
/// only exist in a loaded state that breaks I1).
fn gate_live_task(workflow: &Workflow, id: &TaskId, to: TaskStatus) -> Result<Gate, Rejection> {
    let position = find(workflow, id)?;
    let current = workflow.task_at(position).status;
    if current.is_terminal() {
        return if current == to {
            Ok(Gate::Duplicate(duplicate(workflow)))
        } else {
            Err(Rejection::TaskAlreadyTerminal {
                task: id.clone(),
                current,
                requested: to,
            })
        };
    }
    if workflow.status().is_terminal() {
        return Err(Rejection::WorkflowTerminal {
            status: workflow.status(),
        });
    }
    Ok(Gate::Live(position))
}

/// Engine edges on one live attempt: start, time out, cancel (allowed while PAUSED: they settle
/// work already handed out, they decide nothing new).
fn move_task(workflow: &Workflow, id: &TaskId, to: TaskStatus) -> Result<Step, Rejection> {
    let position = match gate_live_task(workflow, id, to)? {
        Gate::Live(position) => position,
        Gate::Duplicate(step) => return Ok(step),
    };
    let from = workflow.task_at(position).status;
    if from == to {
        // Start on an attempt already IN_PROGRESS: the poll was delivered twice.
        return Ok(duplicate(workflow));
    }
    let stop = if to.is_terminal() {
        stop_or_dequeue(id, from)
    } else {
        None
    };
    task_step(workflow, position, to, stop)
}

fn schedule(workflow: &Workflow, new: &NewTask, status: TaskStatus) -> Result<Step, Rejection> {
    if let Some(position) = workflow.position(&new.id) {
        return if workflow.task_at(position).matches(new, status) {
            Ok(duplicate(workflow))
        } else {
            Err(Rejection::TaskIdInUse {
                task: new.id.clone(),
            })
        };
    }
    require_running(workflow)?;
    if let Some(latest) = workflow.latest_attempt(&new.reference_name) {
        return Err(Rejection::ReferenceNameInUse {
            reference_name: new.reference_name.clone(),
            task: latest.id.clone(),
        });
    }
    let mut step = StepBuilder::new(workflow);
    step.add_task(new.first_attempt(status));
    step.finish()
}

fn reschedule(workflow: &Workflow, failed: &TaskId, id: &TaskId) -> Result<Step, Rejection> {
    let failed_task = workflow.task_at(find(workflow, failed)?);
    let attempt = next_attempt(failed_task, id.clone())?;
    if let Some(existing) = workflow.task(id) {
        return if existing.reference_name == attempt.reference_name
            && existing.retry_count == attempt.retry_count
        {
            Ok(duplicate(workflow))
        } else {
            Err(Rejection::TaskIdInUse { task: id.clone() })
        };
    }
    require_running(workflow)?;
    require_latest(workflow, failed_task)?;
    match failed_task.status {
        TaskStatus::Failed | TaskStatus::TimedOut => {}
        status @ (TaskStatus::Scheduled
        | TaskStatus::InProgress
        | TaskStatus::Completed
        | TaskStatus::CompletedWithErrors
        | TaskStatus::FailedWithTerminalError
        | TaskStatus::Canceled
        | TaskStatus::Skipped) => {
            return Err(Rejection::NotRetriable {
                task: failed.clone(),
                status,
            })
        }
    }
    let mut step = StepBuilder::new(workflow);
    step.add_task(attempt);
    step.finish()
}

fn tolerate_failure(workflow: &Workflow, id: &TaskId) -> Result<Step, Rejection> {
    let position = find(workflow, id)?;
    let task = workflow.task_at(position);
    let to = TaskStatus::CompletedWithErrors;
    match task.status {
        TaskStatus::CompletedWithErrors => return Ok(duplicate(workflow)),
        TaskStatus::Failed | TaskStatus::TimedOut => {}
        from @ (TaskStatus::Scheduled
        | TaskStatus::InProgress
        | TaskStatus::Completed
        | TaskStatus::FailedWithTerminalError
        | TaskStatus::Canceled
        | TaskStatus::Skipped) => {
            return Err(Rejection::IllegalTaskTransition {
                task: id.clone(),
                from,
                to,
            })
        }
    }
    if !task.optional {
        return Err(Rejection::NotOptional { task: id.clone() });
    }
    require_latest(workflow, task)?;
    require_running(workflow)?;
    task_step(workflow, position, to, None)
}

fn complete(workflow: &Workflow) -> Result<Step, Rejection> {
    let to = WorkflowStatus::Completed;
    let Some(from) = workflow_gate(workflow, to)? else {
        return Ok(duplicate(workflow));
    };
    let unsettled = workflow
        .active_tasks()
        .chain(workflow.unsuccessful_latest_tasks())
        .next();
    if let Some(task) = unsettled {
        return Err(Rejection::UnsettledTask {
            task: task.id.clone(),
            status: task.status,
        });
    }
    let mut step = StepBuilder::new(workflow);
    step.change_workflow(from, to);
    step.finish()
}

/// Fail, time out, terminate: the workflow ends and every live attempt is cancelled in the same
/// step (I1; D1 was a terminate that persisted TERMINATED and never got to the cancelling).
fn end(workflow: &Workflow, to: WorkflowStatus) -> Result<Step, Rejection> {
    let Some(from) = workflow_gate(workflow, to)? else {
        return Ok(duplicate(workflow));
    };
    let mut step = StepBuilder::new(workflow);
    for position in workflow.active_positions() {
        let task = workflow.task_at(position);
        step.change_task(workflow, position, TaskStatus::Canceled);
        if let Some(effect) = stop_or_dequeue(&task.id, task.status) {
            step.effect(effect);
        }
    }
    step.change_workflow(from, to);
    step.finish()
}

fn pause(workflow: &Workflow) -> Result<Step, Rejection> {
    let to = WorkflowStatus::Paused;
    let Some(from) = workflow_gate(workflow, to)? else {
        return Ok(duplicate(workflow));
    };
    let mut step = StepBuilder::new(workflow);
    step.change_workflow(from, to);
    step.finish()
}

fn resume(workflow: &Workflow) -> Result<Step, Rejection> {
    let to = WorkflowStatus::Running;
    if workflow.status().is_terminal() {
        // Only retry leaves a terminal status (I5).
        return Err(Rejection::IllegalWorkflowTransition {
            from: workflow.status(),
            to,
        });
    }
    let Some(from) = workflow_gate(workflow, to)? else {
        return Ok(duplicate(workflow));
    };
    let mut step = StepBuilder::new(workflow);
    step.change_workflow(from, to);
    step.finish()
}

/// Restart a FAILED, TIMED_OUT or TERMINATED workflow: a new attempt for every reference name
/// whose latest attempt ended unsuccessfully; old attempts are never modified.
fn retry(workflow: &Workflow) -> Result<Step, Rejection> {
    let from = workflow.status();
    let to = WorkflowStatus::Running;
    if !(from.is_terminal() && workflow_edge(from, to)) {
        return Err(Rejection::NotRetriableWorkflow { status: from });
    }
    let mut step = StepBuilder::new(workflow);
    for position in workflow.unsuccessful_latest_positions() {
        let failed = workflow.task_at(position);
        let id = TaskId::attempt(
            workflow.id(),
            &failed.reference_name,
            next_retry_count(failed)?,
        );
        if workflow.position(&id).is_some() {
            return Err(Rejection::TaskIdInUse { task: id });
        }
        step.add_task(next_attempt(failed, id)?);
    }
    step.change_workflow(from, to);
    step.through_retry = true;
    step.finish()
}

fn next_attempt(failed: &Task, id: TaskId) -> Result<Task, Rejection> {
    Ok(Task {
        id,
        reference_name: failed.reference_name.clone(),
        status: TaskStatus::Scheduled,
        retry_count: next_retry_count(failed)?,
        iteration: failed.iteration,
        optional: failed.optional,
    })
}

fn next_retry_count(failed: &Task) -> Result<u32, Rejection> {
    failed
        .retry_count
        .checked_add(1)
        .ok_or_else(|| Rejection::RetryCountExhausted {
            task: failed.id.clone(),
        })
}

/// `Ok(None)`: the workflow already has status `to` (a duplicate). `Ok(Some(from))`: the edge
/// exists. Otherwise the edge is not in the table.
fn workflow_gate(
    workflow: &Workflow,
    to: WorkflowStatus,
) -> Result<Option<WorkflowStatus>, Rejection> {
    let from = workflow.status();
    if from == to {
        Ok(None)
    } else if workflow_edge(from, to) {
        Ok(Some(from))
    } else {
        Err(Rejection::IllegalWorkflowTransition { from, to })
    }
}

fn find(workflow: &Workflow, id: &TaskId) -> Result<usize, Rejection> {
    workflow
        .position(id)
        .ok_or_else(|| Rejection::UnknownTask { task: id.clone() })
}

fn require_running(workflow: &Workflow) -> Result<(), Rejection> {
    match workflow.status() {
        WorkflowStatus::Running => Ok(()),
        status @ (WorkflowStatus::Paused
        | WorkflowStatus::Completed
        | WorkflowStatus::Failed
        | WorkflowStatus::TimedOut
        | WorkflowStatus::Terminated) => Err(Rejection::WorkflowNotRunning { status }),
    }
}

fn require_latest(workflow: &Workflow, task: &Task) -> Result<(), Rejection> {
    match workflow.latest_attempt(&task.reference_name) {
        Some(latest) if latest.id != task.id => Err(Rejection::NotLatestAttempt {
            task: task.id.clone(),
            latest: latest.id.clone(),
        }),
        Some(_) | None => Ok(()),
    }
}

/// The version after a step from `read_version`; refused if it cannot rise (I4: a wrapped
/// version would make old steps look fresh again).
fn next_version(read_version: u64) -> Result<u64, Rejection> {
    read_version
        .checked_add(1)
        .ok_or(Rejection::VersionExhausted {
            version: read_version,
        })
}

/// The most common step, built without [`StepBuilder`]: one attempt changes status, nothing else
/// changes, and at most one effect follows the persist (with no workflow change there is nothing
/// to order it against).
fn task_step(
    workflow: &Workflow,
    position: usize,
    to: TaskStatus,
    effect: Option<Effect>,
) -> Result<Step, Rejection> {
    let read_version = workflow.version();
    let new_version = next_version(read_version)?;
    let task = workflow.task_at(position);
    let mut changes = Changes::default();
    changes.tasks.push(TaskChange {
        task: task.id.clone(),
        from: task.status,
        to,
        position,
    });
    let mut effects = SmallList::One([Effect::Persist {
        read_version,
        new_version,
    }]);
    if let Some(effect) = effect {
        effects.push(effect);
    }
    Ok(Step::applied(
        workflow.identity(),
        read_version,
        changes,
        effects,
        false,
    ))
}

/// Cancelling or timing out an attempt: a SCHEDULED one leaves its task queue, an IN_PROGRESS
/// one's runner is told to stop (post-commit).
fn stop_or_dequeue(id: &TaskId, from: TaskStatus) -> Option<Effect> {
    match from {
        TaskStatus::Scheduled => Some(Effect::RemoveFromTaskQueue { task: id.clone() }),
        TaskStatus::InProgress => Some(Effect::StopRunningTask { task: id.clone() }),
        TaskStatus::Completed
        | TaskStatus::CompletedWithErrors
        | TaskStatus::Failed
        | TaskStatus::FailedWithTerminalError
        | TaskStatus::Canceled
        | TaskStatus::TimedOut
        | TaskStatus::Skipped => None,
    }
}

fn duplicate(workflow: &Workflow) -> Step {
    Step::unchanged(workflow, Outcome::Duplicate)
}

/// Collects changes and effects; [`StepBuilder::finish`] lays the effects out in the contractual
/// order: persist, then decider queue, then task queues, then post-commit.
struct StepBuilder {
    workflow: u64,
    read_version: u64,
    changes: Changes,
    task_queue: SmallList<Effect>,
    post_commit: SmallList<Effect>,
    through_retry: bool,
}

impl StepBuilder {
    fn new(workflow: &Workflow) -> Self {
        StepBuilder {
            workflow: workflow.identity(),
            read_version: workflow.version(),
            changes: Changes::default(),
            task_queue: SmallList::Empty,
            post_commit: SmallList::Empty,
            through_retry: false,
        }
    }

    fn change_task(&mut self, workflow: &Workflow, position: usize, to: TaskStatus) {
        let task = workflow.task_at(position);
        self.changes.tasks.push(TaskChange {
            task: task.id.clone(),
            from: task.status,
            to,
            position,
        });
    }

    fn add_task(&mut self, task: Task) {
        if task.status == TaskStatus::Scheduled {
            self.task_queue.push(Effect::PushToTaskQueue {
                task: task.id.clone(),
            });
        }
        self.changes.added.push(task);
    }

    fn change_workflow(&mut self, from: WorkflowStatus, to: WorkflowStatus) {
        self.changes.workflow = Some(WorkflowChange { from, to });
    }

    /// A task-queue or post-commit effect, in order within its phase.
    fn effect(&mut self, effect: Effect) {
        debug_assert!(
            effect.phase() != Phase::Persist,
            "finish lays out the persist"
        );
        match effect.phase() {
            Phase::Queue => self.task_queue.push(effect),
            Phase::Persist | Phase::PostCommit => self.post_commit.push(effect),
        }
    }

    /// Lays out the effects; refuses the step if the version cannot rise (I4: a wrapped version
    /// would make old steps look fresh again).
    fn finish(self) -> Result<Step, Rejection> {
        let new_version = next_version(self.read_version)?;
        let queue_and_listeners = if self.changes.workflow.is_some() {
            3
        } else {
            0
        };
        let mut effects = SmallList::with_capacity(
            1 + queue_and_listeners + self.task_queue.len() + self.post_commit.len(),
        );
        effects.push(Effect::Persist {
            read_version: self.read_version,
            new_version,
        });
        let mut listeners = None;
        if let Some(WorkflowChange { from, to }) = self.changes.workflow {
            if from == WorkflowStatus::Running {
                effects.push(Effect::LeaveDeciderQueue);
            } else if to == WorkflowStatus::Running {
                effects.push(Effect::EnterDeciderQueue);
            }
            listeners = Some(to);
        }
        effects.append(self.task_queue);
        if let Some(status) = listeners {
            effects.push(Effect::NotifyListeners { status });
            if status.is_terminal() {
                effects.push(Effect::Archive);
            }
        }
        effects.append(self.post_commit);
        Ok(Step::applied(
            self.workflow,
            self.read_version,
            self.changes,
            effects,
            self.through_retry,
        ))
    }
}
