//! A decider for Conductor workflow definitions (issue 13): FORK_JOIN and JOIN, SWITCH,
//! DO_WHILE, TERMINATE, optional and permissive tasks and retry counts, over the core's
//! vocabulary. One implementation, [`ConductorDecider`], is what the runtime's
//! [`Engine`](crate::runtime::Engine) runs and what the model checks.
//!
//! What a definition leaves to data (which SWITCH case runs, whether a DO_WHILE loops again) the
//! decider asks an [`Evaluate`]: the caller's in the runtime, a fixed [`Choices`] in the model,
//! which checks every combination up to a bound ([`Choices::enumerate`]). Once a case has a task
//! in the workflow, or a loop has a task in its next iteration, that is the answer and the
//! evaluator is not asked again: a decision taken stays taken.
//!
//! The rules (`docs/definitions.md` has them with their reasons):
//! - A task (SIMPLE, system, external, SUB_WORKFLOW) with no attempt is scheduled; a live one
//!   makes its sequence wait; a successful one lets its sequence go on. FAILED or TIMED_OUT
//!   within `retryCount` is rescheduled; spent and optional, tolerated; spent and permissive,
//!   its sequence goes on and the JOIN waiting on it (or the workflow's end) fails; otherwise
//!   the workflow fails.
//! - FORK_JOIN walks every branch: any branch's failure or TERMINATE wins, then the first
//!   branch with an input; branches that wait do not stop the sequence (the JOIN after them
//!   does).
//! - JOIN waits until every task in `joinOn` has a terminal latest attempt; it fails if one
//!   ended unsuccessfully. A `joinOn` task that is never scheduled keeps it waiting forever,
//!   as in Conductor: the model reports that as a stuck workflow.
//! - SWITCH runs the case its evaluator names (a value no case has, or none, runs the default).
//! - DO_WHILE runs its body as iteration 1, 2, ... (tasks `ref__N`, iteration N) while its
//!   evaluator says again; an iteration that scheduled nothing is the last.
//! - TERMINATE COMPLETED completes once no task is live (and fails if a latest attempt ended
//!   unsuccessfully); TERMINATE FAILED fails at once, cancelling live tasks.
//! - At the end of the top-level sequence: wait while a task is live, fail if a latest attempt
//!   ended unsuccessfully (a permissive failure), else complete.

use std::collections::BTreeMap;

use super::definition::{DefinitionError, TaskKind, TaskNode, WorkflowDefinition};
use crate::runtime::Decider;
use crate::{Decision, EngineInput, NewTask, Task, TaskDefinition, TaskId, TaskStatus};
use crate::{Workflow, WorkflowStatus};

/// The answers a definition leaves to data.
pub trait Evaluate {
    /// Which case of the SWITCH `switch` runs in loop iteration `iteration` (0 outside loops):
    /// a key of its `decisionCases`, or `None` (or a value no case has) for the default.
    fn case(&self, workflow: &Workflow, switch: &str, iteration: u32) -> Option<String>;

    /// Does the DO_WHILE `do_while` run again after iteration `iteration` (1 for the first)?
    fn again(&self, workflow: &Workflow, do_while: &str, iteration: u32) -> bool;
}

/// Fixed answers: a case per SWITCH and iteration, a number of iterations per DO_WHILE. A
/// SWITCH not named runs its default; a DO_WHILE not named runs once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Choices {
    cases: BTreeMap<(String, u32), String>,
    iterations: BTreeMap<String, u32>,
}

impl Choices {
    /// No choices: every SWITCH runs its default, every DO_WHILE runs once.
    pub fn new() -> Self {
        Choices::default()
    }

    /// The same choices, with SWITCH `switch` running `case` in iteration `iteration` (0
    /// outside loops; `None` is the default).
    pub fn with_case(mut self, switch: &str, iteration: u32, case: Option<&str>) -> Self {
        let key = (switch.to_string(), iteration);
        match case {
            Some(case) => {
                self.cases.insert(key, case.to_string());
            }
            None => {
                self.cases.remove(&key);
            }
        }
        self
    }

    /// The same choices, with DO_WHILE `do_while` running `iterations` times (at least once).
    pub fn with_iterations(mut self, do_while: &str, iterations: u32) -> Self {
        self.iterations
            .insert(do_while.to_string(), iterations.max(1));
        self
    }

    /// Every combination of choices `definition` can meet with each DO_WHILE running 1 to
    /// `max_iterations` times: one per SWITCH case taken (default included) at every point the
    /// workflow can reach, and per loop count. Errors past `limit` combinations.
    pub fn enumerate(
        definition: &WorkflowDefinition,
        max_iterations: u32,
        limit: usize,
    ) -> Result<Vec<Choices>, TooManyChoices> {
        let max_iterations = max_iterations.max(1);
        let walk = Enumerate {
            max_iterations,
            limit,
        };
        walk.sequence(&definition.tasks, 0, vec![Choices::new()])
    }

    /// A one-line description: `switch=case, loop×2`, or `no choices`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .cases
            .iter()
            .map(|((switch, iteration), case)| match iteration {
                0 => format!("{switch}={case}"),
                n => format!("{switch}__{n}={case}"),
            })
            .collect();
        parts.extend(
            self.iterations
                .iter()
                .map(|(name, count)| format!("{name}×{count}")),
        );
        if parts.is_empty() {
            "defaults".to_string()
        } else {
            parts.join(", ")
        }
    }
}

impl Evaluate for Choices {
    fn case(&self, _: &Workflow, switch: &str, iteration: u32) -> Option<String> {
        self.cases.get(&(switch.to_string(), iteration)).cloned()
    }

    fn again(&self, _: &Workflow, do_while: &str, iteration: u32) -> bool {
        iteration < self.iterations.get(do_while).copied().unwrap_or(1)
    }
}

/// [`Choices::enumerate`] would produce more combinations than its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the definition's SWITCH cases and loop counts make more than {limit} combinations")]
pub struct TooManyChoices {
    /// The limit.
    pub limit: usize,
}

struct Enumerate {
    max_iterations: u32,
    limit: usize,
}

impl Enumerate {
    fn sequence(
        &self,
        tasks: &[TaskNode],
        iteration: u32,
        mut choices: Vec<Choices>,
    ) -> Result<Vec<Choices>, TooManyChoices> {
        for task in tasks {
            choices = self.node(task, iteration, choices)?;
        }
        Ok(choices)
    }

    fn node(
        &self,
        task: &TaskNode,
        iteration: u32,
        choices: Vec<Choices>,
    ) -> Result<Vec<Choices>, TooManyChoices> {
        match &task.kind {
            TaskKind::ForkJoin { branches } => {
                branches.iter().try_fold(choices, |choices, branch| {
                    self.sequence(branch, iteration, choices)
                })
            }
            TaskKind::Switch { cases, default } => {
                let mut out = Vec::new();
                for choice in choices {
                    let taken = cases
                        .iter()
                        .map(|(key, body)| (Some(key.as_str()), body))
                        .chain([(None, default)]);
                    for (key, body) in taken {
                        let chosen = choice
                            .clone()
                            .with_case(&task.reference_name, iteration, key);
                        out.extend(self.sequence(body, iteration, vec![chosen])?);
                        self.bounded(out.len())?;
                    }
                }
                Ok(out)
            }
            TaskKind::DoWhile { body } => {
                let mut out = Vec::new();
                for choice in choices {
                    for count in 1..=self.max_iterations {
                        let mut run =
                            vec![choice.clone().with_iterations(&task.reference_name, count)];
                        for n in 1..=count {
                            run = self.sequence(body, n, run)?;
                        }
                        out.extend(run);
                        self.bounded(out.len())?;
                    }
                }
                Ok(out)
            }
            TaskKind::Simple
            | TaskKind::System(_)
            | TaskKind::External(_)
            | TaskKind::Join { .. }
            | TaskKind::Terminate { .. }
            | TaskKind::SubWorkflow { .. } => Ok(choices),
        }
    }

    fn bounded(&self, count: usize) -> Result<(), TooManyChoices> {
        if count > self.limit {
            Err(TooManyChoices { limit: self.limit })
        } else {
            Ok(())
        }
    }
}

/// The decider of a Conductor workflow definition, asking `E` what the definition leaves to
/// data. It implements the runtime's [`Decider`], so the same value drives an
/// [`Engine`](crate::runtime::Engine) and the model. Cost: one walk of the definition per
/// decision, O(tasks × log attempts).
///
/// ```
/// use wfstate::conductor::{Choices, ConductorDecider, WorkflowDefinition};
/// use wfstate::runtime::Decider;
/// use wfstate::{Decision, EngineInput, Workflow};
///
/// let json = r#"{"name": "route", "tasks": [
///     {"name": "s", "taskReferenceName": "route", "type": "SWITCH", "decisionCases": {
///         "air": [{"name": "fly", "taskReferenceName": "fly", "type": "SIMPLE"}]},
///      "defaultCase": [{"name": "drive", "taskReferenceName": "drive", "type": "SIMPLE"}]}]}"#;
/// let definition = WorkflowDefinition::from_json(json)?;
/// let decider = ConductorDecider::new(definition, Choices::new().with_case("route", 0, Some("air")))?;
/// let Decision::Act(EngineInput::Schedule(task)) = decider.decide(&Workflow::new("wf")) else {
///     panic!("the first decision schedules the chosen case's task");
/// };
/// assert_eq!(task.reference_name, "fly");
/// # Ok::<(), wfstate::conductor::DefinitionError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConductorDecider<E = Choices> {
    definition: WorkflowDefinition,
    evaluator: E,
    /// The control-flow nodes some JOIN waits on (derived from `definition`).
    targets: BTreeMap<String, TaskNode>,
}

impl<E: Evaluate> ConductorDecider<E> {
    /// The decider of `definition`, or why it cannot decide it: a DO_WHILE inside a DO_WHILE
    /// (Conductor does not support nesting either), or a TERMINATE ending the workflow
    /// TERMINATED (an engine input ends a workflow COMPLETED, FAILED or TIMED_OUT; TERMINATED
    /// is the operator's).
    pub fn new(definition: WorkflowDefinition, evaluator: E) -> Result<Self, DefinitionError> {
        refuse(&definition.tasks, None)?;
        Ok(ConductorDecider {
            targets: join_targets(&definition),
            definition,
            evaluator,
        })
    }

    /// The definition decided.
    pub fn definition(&self) -> &WorkflowDefinition {
        &self.definition
    }

    /// Why a RUNNING workflow with no live task gets [`Decision::Wait`]: the JOIN and the
    /// `joinOn` task it waits for, which has no attempt. `None` when the decider would act, or
    /// waits on a live task.
    pub fn blocked(&self, workflow: &Workflow) -> Option<Blocked> {
        match self.walk(workflow) {
            Flow::Wait(blocked) => blocked,
            Flow::Done | Flow::Act(_) | Flow::Fail | Flow::End(_) => None,
        }
    }

    fn walk(&self, workflow: &Workflow) -> Flow {
        Walk {
            workflow,
            evaluator: &self.evaluator,
            targets: &self.targets,
        }
        .sequence(&self.definition.tasks, 0)
    }
}

impl<E: Evaluate> Decider for ConductorDecider<E> {
    fn decide(&self, workflow: &Workflow) -> Decision {
        if workflow.status() != WorkflowStatus::Running {
            return Decision::Idle;
        }
        match self.walk(workflow) {
            Flow::Act(input) => Decision::Act(input),
            Flow::Wait(_) => Decision::Wait,
            Flow::Fail => Decision::Act(EngineInput::Fail),
            Flow::Done | Flow::End(WorkflowStatus::Completed) => end(workflow),
            Flow::End(_) => Decision::Act(EngineInput::Fail),
        }
    }
}

/// The end of the workflow: wait for live tasks, fail on an unsuccessful latest attempt, else
/// complete.
fn end(workflow: &Workflow) -> Decision {
    if workflow.active_tasks().next().is_some() {
        Decision::Wait
    } else if workflow.unsuccessful_latest_tasks().next().is_some() {
        Decision::Act(EngineInput::Fail)
    } else {
        Decision::Act(EngineInput::Complete)
    }
}

/// Why a JOIN waits with nothing live to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The JOIN's reference name (with its `__N` suffix in a loop).
    pub join: String,
    /// The `joinOn` task that has no attempt.
    pub waits_on: String,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "JOIN {} waits on {}, which was never scheduled",
            self.join, self.waits_on
        )
    }
}

fn refuse(tasks: &[TaskNode], outer: Option<&str>) -> Result<(), DefinitionError> {
    for task in tasks {
        match &task.kind {
            TaskKind::DoWhile { .. } if outer.is_some() => {
                return Err(DefinitionError::NestedLoop {
                    outer: outer.unwrap_or_default().to_string(),
                    inner: task.reference_name.clone(),
                });
            }
            TaskKind::Terminate {
                status: WorkflowStatus::Terminated,
            } => {
                return Err(DefinitionError::TerminatedByTask {
                    reference_name: task.reference_name.clone(),
                })
            }
            _ => {}
        }
        let inner = match task.kind {
            TaskKind::DoWhile { .. } => Some(task.reference_name.as_str()),
            _ => outer,
        };
        for nested in task.kind.nested() {
            refuse(nested, inner)?;
        }
    }
    Ok(())
}

/// A task's reference name in loop iteration `iteration` (0: outside loops).
fn named(reference_name: &str, iteration: u32) -> String {
    match iteration {
        0 => reference_name.to_string(),
        n => format!("{reference_name}__{n}"),
    }
}

/// What a walk of a sequence found.
enum Flow {
    /// Every node is done (or waits without holding the sequence up: fork branches).
    Done,
    /// Something is live; the sequence waits (with the JOIN's reason when nothing is live).
    Wait(Option<Blocked>),
    /// Apply this input.
    Act(EngineInput),
    /// A required task failed for good: fail the workflow.
    Fail,
    /// A TERMINATE was reached.
    End(WorkflowStatus),
}

struct Walk<'a, E> {
    workflow: &'a Workflow,
    evaluator: &'a E,
    /// The control-flow nodes a JOIN waits on, by name.
    targets: &'a BTreeMap<String, TaskNode>,
}

impl<E: Evaluate> Walk<'_, E> {
    fn sequence(&self, tasks: &[TaskNode], iteration: u32) -> Flow {
        for task in tasks {
            match self.node(task, iteration) {
                Flow::Done => {}
                flow => return flow,
            }
        }
        Flow::Done
    }

    fn node(&self, task: &TaskNode, iteration: u32) -> Flow {
        match &task.kind {
            TaskKind::Simple
            | TaskKind::System(_)
            | TaskKind::External(_)
            | TaskKind::SubWorkflow { .. } => self.task(task, iteration),
            TaskKind::ForkJoin { branches } => self.fork(branches, iteration),
            TaskKind::Join { join_on } => self.join(task, join_on, iteration),
            TaskKind::Switch { cases, default } => {
                let body = self.case(task, cases, default, iteration);
                self.sequence(body, iteration)
            }
            TaskKind::DoWhile { body } => self.repeat(task, body),
            TaskKind::Terminate { status } => Flow::End(*status),
        }
    }

    fn task(&self, task: &TaskNode, iteration: u32) -> Flow {
        let name = named(&task.reference_name, iteration);
        let id = self.workflow.id();
        let Some(attempt) = self.workflow.latest_attempt(&name) else {
            return Flow::Act(EngineInput::Schedule(NewTask {
                id: TaskId::attempt(id, &name, 0),
                reference_name: name.into(),
                optional: task.optional,
                iteration,
            }));
        };
        match attempt.status {
            TaskStatus::Scheduled | TaskStatus::InProgress => Flow::Wait(None),
            TaskStatus::Completed | TaskStatus::CompletedWithErrors | TaskStatus::Skipped => {
                Flow::Done
            }
            TaskStatus::Failed | TaskStatus::TimedOut if attempt.retry_count < task.retry_count => {
                Flow::Act(EngineInput::Reschedule {
                    failed: attempt.id.clone(),
                    task: TaskId::attempt(id, &name, attempt.retry_count + 1),
                })
            }
            TaskStatus::Failed | TaskStatus::TimedOut if attempt.optional => {
                Flow::Act(EngineInput::TolerateFailure {
                    task: attempt.id.clone(),
                })
            }
            TaskStatus::Failed
            | TaskStatus::TimedOut
            | TaskStatus::FailedWithTerminalError
            | TaskStatus::Canceled => {
                if task.permissive {
                    Flow::Done
                } else {
                    Flow::Fail
                }
            }
        }
    }

    fn fork(&self, branches: &[Vec<TaskNode>], iteration: u32) -> Flow {
        let mut first = None;
        for branch in branches {
            match self.sequence(branch, iteration) {
                Flow::Fail => return Flow::Fail,
                Flow::End(status) => return Flow::End(status),
                Flow::Act(input) => {
                    first.get_or_insert(input);
                }
                Flow::Done | Flow::Wait(_) => {}
            }
        }
        first.map_or(Flow::Done, Flow::Act)
    }

    fn join(&self, join: &TaskNode, join_on: &[String], iteration: u32) -> Flow {
        let mut failed = false;
        for name in join_on {
            let blocked = || {
                Flow::Wait(Some(Blocked {
                    join: named(&join.reference_name, iteration),
                    waits_on: named(name, iteration),
                }))
            };
            match self.targets.get(name) {
                // A JOIN waits on a JOIN: done when that one is; it never schedules anything.
                Some(
                    inner @ TaskNode {
                        kind: TaskKind::Join { join_on },
                        ..
                    },
                ) => match self.join(inner, join_on, iteration) {
                    Flow::Done => {}
                    Flow::Fail => failed = true,
                    flow => return flow,
                },
                // A control node (DO_WHILE, SWITCH, FORK_JOIN): ended once its walk is done. It
                // is walked only once started, so the JOIN never schedules an untaken branch.
                Some(node) => {
                    if !self.started(std::slice::from_ref(node), iteration) {
                        return blocked();
                    }
                    match self.node(node, iteration) {
                        Flow::Done => {}
                        Flow::Fail | Flow::End(_) => failed = true,
                        Flow::Act(_) | Flow::Wait(_) => return Flow::Wait(None),
                    }
                }
                _ => match self.workflow.latest_attempt(&named(name, iteration)) {
                    None => return blocked(),
                    Some(attempt) if !attempt.status.is_terminal() => return Flow::Wait(None),
                    Some(attempt) => failed |= !successful(attempt),
                },
            }
        }
        if failed {
            Flow::Fail
        } else {
            Flow::Done
        }
    }

    /// The body of the SWITCH case that runs: the one with a task in the workflow, else the
    /// evaluator's.
    fn case<'t>(
        &self,
        switch: &TaskNode,
        cases: &'t [(String, Vec<TaskNode>)],
        default: &'t [TaskNode],
        iteration: u32,
    ) -> &'t [TaskNode] {
        let bodies = cases
            .iter()
            .map(|(_, body)| body.as_slice())
            .chain([default]);
        for body in bodies {
            if self.started(body, iteration) {
                return body;
            }
        }
        let chosen = self
            .evaluator
            .case(self.workflow, &switch.reference_name, iteration);
        chosen
            .and_then(|chosen| cases.iter().find(|(key, _)| *key == chosen))
            .map_or(default, |(_, body)| body.as_slice())
    }

    fn repeat(&self, do_while: &TaskNode, body: &[TaskNode]) -> Flow {
        let mut iteration = 1;
        loop {
            match self.sequence(body, iteration) {
                Flow::Done => {}
                flow => return flow,
            }
            let next = iteration.saturating_add(1);
            let again = self.started(body, next)
                || (self.started(body, iteration)
                    && self
                        .evaluator
                        .again(self.workflow, &do_while.reference_name, iteration));
            if !again || next == iteration {
                return Flow::Done;
            }
            iteration = next;
        }
    }

    /// Has any task of `tasks` (nested ones included) an attempt in iteration `iteration`?
    fn started(&self, tasks: &[TaskNode], iteration: u32) -> bool {
        tasks.iter().any(|task| match &task.kind {
            TaskKind::Simple
            | TaskKind::System(_)
            | TaskKind::External(_)
            | TaskKind::SubWorkflow { .. } => self
                .workflow
                .latest_attempt(&named(&task.reference_name, iteration))
                .is_some(),
            TaskKind::ForkJoin { branches } => branches
                .iter()
                .any(|branch| self.started(branch, iteration)),
            TaskKind::Switch { cases, default } => {
                cases.iter().any(|(_, body)| self.started(body, iteration))
                    || self.started(default, iteration)
            }
            TaskKind::DoWhile { body } => self.started(body, 1),
            TaskKind::Join { .. } | TaskKind::Terminate { .. } => false,
        })
    }
}

/// The control-flow nodes (DO_WHILE, SWITCH, FORK_JOIN, JOIN) some JOIN waits on, by name:
/// found once, when the decider is built, not on every decision.
fn join_targets(definition: &WorkflowDefinition) -> BTreeMap<String, TaskNode> {
    let all = definition.all_tasks();
    let waited: std::collections::BTreeSet<&str> = all
        .iter()
        .filter_map(|task| match &task.kind {
            TaskKind::Join { join_on } => Some(join_on.iter().map(String::as_str)),
            _ => None,
        })
        .flatten()
        .collect();
    all.into_iter()
        .filter(|task| !task.kind.has_attempts() && waited.contains(task.reference_name.as_str()))
        .map(|task| (task.reference_name.clone(), task.clone()))
        .collect()
}

fn successful(task: &Task) -> bool {
    matches!(
        task.status,
        TaskStatus::Completed | TaskStatus::CompletedWithErrors | TaskStatus::Skipped
    )
}

impl WorkflowDefinition {
    /// Every task the decider can schedule when each DO_WHILE runs at most `max_iterations`
    /// times, as the linear [`TaskDefinition`]s the model's workers are built from: reference
    /// name (`ref__N` in loop iteration N), optional, retries. Control-flow nodes (FORK_JOIN,
    /// JOIN, SWITCH, DO_WHILE, TERMINATE) have no attempts. A loop-suffixed name that another
    /// task already has is [`DefinitionError::DuplicateReferenceName`].
    pub fn schedulable(&self, max_iterations: u32) -> Result<Vec<TaskDefinition>, DefinitionError> {
        let mut out = Vec::new();
        schedulable(&self.tasks, 0, max_iterations.max(1), &mut out);
        let mut seen = std::collections::BTreeSet::new();
        for task in &out {
            if !seen.insert(task.reference_name.as_str()) {
                return Err(DefinitionError::DuplicateReferenceName {
                    reference_name: task.reference_name.to_string(),
                });
            }
        }
        Ok(out)
    }
}

fn schedulable(tasks: &[TaskNode], iteration: u32, max: u32, out: &mut Vec<TaskDefinition>) {
    for task in tasks {
        if task.kind.has_attempts() {
            let mut definition = TaskDefinition::new(named(&task.reference_name, iteration))
                .retries(task.retry_count);
            definition.optional = task.optional;
            out.push(definition);
        }
        let iterations = match task.kind {
            TaskKind::DoWhile { .. } => 1..=max,
            _ => iteration..=iteration,
        };
        for nested in task.kind.nested() {
            for n in iterations.clone() {
                schedulable(nested, n, max, out);
            }
        }
    }
}
