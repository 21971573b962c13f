//! Property tests over long, state-dependent random input sequences (SPEC sections 4–6).
//!
//! A case is a start state plus up to [`STEPS`] operation seeds. A seed names an operation with
//! small indices and is resolved against the workflow as it is when the seed is applied: "report
//! COMPLETED on live task 7" means the live task at index 7 modulo the current number of live
//! tasks, so most inputs hit existing tasks and the sequence goes somewhere. Seeds also produce unknown task ids,
//! duplicates (the previous input again), late reports on terminal tasks, stale steps (a step
//! computed, another accepted input applied, then the old step applied), inputs of all three
//! writer classes, and decisions of the reference decider so that workflows also complete.
//!
//! After every input [`Run::input`] checks, whatever the test is about:
//! - `check(after)` is empty (I1, I2, I3) when the state before was sound;
//! - `check_pair(before, after, through_retry)` is empty (I3, I4, I5);
//! - a rejection, a duplicate and a progress step leave the workflow equal, version included, and
//!   an applied step raises the version by exactly one (I4);
//! - `read_version` is the version before; effects start with the persist and never go back a
//!   phase (SPEC section 5);
//! - the step's changes are exactly the difference between the two states, every changed edge is
//!   in the SPEC section 4 tables for the input's writer, and whether the input is accepted, and
//!   as applied, duplicate or progress, is what SPEC section 4 prescribes (an executable oracle
//!   written from the SPEC, not from the code; the rejection reason is pinned for late reports);
//! - `advance`, `transition` + `apply`, and `transition` on a freshly loaded copy all agree.
//!
//! The sequence-level ghost properties (I3 across the whole history of terminal task ids, I5 with a
//! "was terminal" flag) walk the recorded history afterwards. A fixed-seed run asserts that the
//! interesting cases actually occur (non-vacuity). Failures are persisted in
//! `proptest-regressions/properties.txt`; commit that file.

use std::cell::RefCell;
use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestRng, TestRunner,
};
use wfstate::{
    check, check_pair, decide, transition, AdminInput, Decision, Definition, Effect, EngineInput,
    Input, NewTask, Outcome, Phase, ReferenceName, Rejection, Report, ReportStatus, Step, Task,
    TaskDefinition, TaskId, TaskStatus, Workflow, WorkflowStatus, Writer,
};

/// Longest operation sequence of a case.
const STEPS: usize = 60;
/// Cases per property (each case is up to [`STEPS`] operations).
const CASES: u32 = 320;
/// Reference names the random schedules use; the first three are the definition's, `x` is not.
const NAMES: [&str; 4] = ["a", "b", "c", "x"];
/// The workflow id of every case; the decider's attempt ids are derived from it.
const WORKFLOW: &str = "wf";

/// A small linear definition: a required task, an optional one with one retry, a required one with
/// two retries. The reference decider drives it to COMPLETED, FAILED or tolerated failures.
fn definition() -> Definition {
    Definition::new([
        TaskDefinition::new("a"),
        TaskDefinition::new("b").optional().retries(1),
        TaskDefinition::new("c").retries(2),
    ])
}

// ---------------------------------------------------------------------------------------------
// Operation seeds
// ---------------------------------------------------------------------------------------------

/// Which task an input names.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The live task at this index modulo the current live-task count (else as `Existing`).
    Live(usize),
    /// The task at this index modulo the current task count (unknown if there are none).
    Existing(usize),
    /// An id no task has.
    Unknown(u8),
}

/// The id of a new attempt.
#[derive(Debug, Clone, Copy)]
enum NewId {
    /// [`TaskId::attempt`], the id the decider and admin retry use (so they can collide).
    Convention,
    /// `t0` … `t5`: ids shared between reference names (so they can clash).
    Pool(u8),
}

/// One operation seed, resolved against the workflow when it is applied.
#[derive(Debug, Clone)]
enum Op {
    /// A worker report.
    Report(Target, ReportStatus),
    /// A report on a terminal task with a status other than its own (a late report).
    LateReport(usize, ReportStatus),
    /// Engine: schedule (or skip) a first attempt.
    Schedule {
        id: NewId,
        name: usize,
        optional: bool,
        iteration: u32,
        skip: bool,
    },
    /// Engine: a new attempt of a failed task.
    Reschedule { failed: Target, id: NewId },
    /// Engine: SCHEDULED → IN_PROGRESS.
    Start(Target),
    /// Engine: time a task out.
    TimeOutTask(Target),
    /// Engine: cancel a task.
    CancelTask(Target),
    /// Engine: FAILED or TIMED_OUT → COMPLETED_WITH_ERRORS.
    TolerateFailure(Target),
    /// Engine: complete the workflow.
    Complete,
    /// Engine: fail the workflow.
    Fail,
    /// Engine: time the workflow out.
    TimeOut,
    /// An operator.
    Admin(AdminInput),
    /// Whatever the reference decider proposes.
    Decide,
    /// Push towards completion: the decider's proposal, else complete a live task, else resume.
    Drive,
    /// Store and load the workflow (JSON round trip), rebuilding its indexes from scratch.
    Reload,
    /// The previous input again.
    Duplicate,
    /// Compute the step of the first seed, apply an accepted input (the second seed, or a fallback),
    /// then apply the old step: stale.
    Stale(Box<Op>, Box<Op>),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        6 => (0usize..64).prop_map(Target::Live),
        4 => (0usize..64).prop_map(Target::Existing),
        1 => (0u8..3).prop_map(Target::Unknown),
    ]
}

fn new_id() -> impl Strategy<Value = NewId> {
    prop_oneof![
        3 => Just(NewId::Convention),
        1 => (0u8..6).prop_map(NewId::Pool),
    ]
}

fn report_status() -> impl Strategy<Value = ReportStatus> {
    prop::sample::select(ReportStatus::ALL.to_vec())
}

fn admin() -> impl Strategy<Value = AdminInput> {
    prop_oneof![
        2 => Just(AdminInput::Terminate),
        2 => Just(AdminInput::Pause),
        2 => Just(AdminInput::Resume),
        3 => Just(AdminInput::Retry),
    ]
}

/// Every operation that resolves to one input (the operands of [`Op::Stale`]).
fn leaf_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (target(), report_status()).prop_map(|(t, s)| Op::Report(t, s)),
        3 => (0usize..64, report_status()).prop_map(|(i, s)| Op::LateReport(i, s)),
        3 => (new_id(), 0..NAMES.len(), any::<bool>(), 0u32..2, prop::bool::weighted(0.2))
            .prop_map(|(id, name, optional, iteration, skip)| Op::Schedule {
                id,
                name,
                optional,
                iteration,
                skip,
            }),
        2 => (target(), new_id()).prop_map(|(failed, id)| Op::Reschedule { failed, id }),
        3 => target().prop_map(Op::Start),
        1 => target().prop_map(Op::TimeOutTask),
        1 => target().prop_map(Op::CancelTask),
        2 => target().prop_map(Op::TolerateFailure),
        1 => Just(Op::Complete),
        1 => Just(Op::Fail),
        1 => Just(Op::TimeOut),
        4 => admin().prop_map(Op::Admin),
        8 => Just(Op::Decide),
    ]
}

/// The full mix.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => leaf_op(),
        6 => Just(Op::Drive),
        1 => Just(Op::Reload),
        3 => Just(Op::Duplicate),
        3 => (leaf_op(), leaf_op()).prop_map(|(a, b)| Op::Stale(Box::new(a), Box::new(b))),
    ]
}

/// A mix for I5: many workflow-level inputs, so terminal statuses are entered, probed and left.
fn workflow_heavy_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => leaf_op(),
        6 => Just(Op::Drive),
        4 => admin().prop_map(Op::Admin),
        1 => Just(Op::Complete),
        1 => Just(Op::Fail),
        1 => Just(Op::TimeOut),
        2 => Just(Op::Duplicate),
        2 => (leaf_op(), leaf_op()).prop_map(|(a, b)| Op::Stale(Box::new(a), Box::new(b))),
    ]
}

/// A mix for I3: many reports, late reports, tolerance and retries on a few tasks.
fn task_heavy_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => leaf_op(),
        6 => Just(Op::Drive),
        6 => (target(), report_status()).prop_map(|(t, s)| Op::Report(t, s)),
        4 => (0usize..64, report_status()).prop_map(|(i, s)| Op::LateReport(i, s)),
        2 => target().prop_map(Op::TolerateFailure),
        2 => Just(Op::Admin(AdminInput::Retry)),
        3 => Just(Op::Duplicate),
        2 => (leaf_op(), leaf_op()).prop_map(|(a, b)| Op::Stale(Box::new(a), Box::new(b))),
    ]
}

/// The writer classes the decider world allows: the decider is the only engine writer that
/// schedules, so every task belongs to the definition.
fn decider_world_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => Just(Op::Decide),
        8 => (target(), report_status()).prop_map(|(t, s)| Op::Report(t, s)),
        2 => (0usize..64, report_status()).prop_map(|(i, s)| Op::LateReport(i, s)),
        3 => target().prop_map(Op::Start),
        1 => target().prop_map(Op::TimeOutTask),
        1 => target().prop_map(Op::CancelTask),
        1 => Just(Op::TimeOut),
        3 => admin().prop_map(Op::Admin),
        2 => Just(Op::Duplicate),
        1 => Just(Op::Reload),
    ]
}

fn ops(op: impl Strategy<Value = Op>) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op, 0..=STEPS)
}

// ---------------------------------------------------------------------------------------------
// Start states
// ---------------------------------------------------------------------------------------------

fn workflow_status() -> impl Strategy<Value = WorkflowStatus> {
    prop::sample::select(WorkflowStatus::ALL.to_vec())
}

fn task_status() -> impl Strategy<Value = TaskStatus> {
    prop::sample::select(TaskStatus::ALL.to_vec())
}

/// Attempts of one reference name: how many, their statuses (oldest first), optional, iteration,
/// whether their ids follow [`TaskId::attempt`], and (unrepaired states only) whether the second
/// attempt repeats the first one's retry count, as a hand-edited store might.
type Chain = (usize, Vec<TaskStatus>, bool, u32, bool, bool);

fn chain() -> impl Strategy<Value = Chain> {
    (
        0usize..=3,
        prop::collection::vec(task_status(), 3),
        any::<bool>(),
        0u32..2,
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
}

/// A workflow loaded through [`Workflow::from_parts`], in any task order, at any version. With
/// `repair`, statuses are adjusted so the state is sound (`check` empty): superseded attempts
/// terminal, no live task in a terminal workflow, no unsuccessful latest attempt in a COMPLETED
/// one. Without it the state may break I1–I3, as a loaded Conductor execution may.
fn loaded_workflow(repair: bool) -> impl Strategy<Value = Workflow> {
    (
        workflow_status(),
        prop::collection::vec(chain(), NAMES.len()),
        0u64..1_000,
    )
        .prop_flat_map(move |(status, chains, version)| {
            let tasks = loaded_tasks(status, &chains, repair);
            (Just(status), Just(version), Just(tasks).prop_shuffle())
        })
        .prop_map(|(status, version, tasks)| {
            Workflow::from_parts(WORKFLOW, status, version, tasks).expect("ids are unique")
        })
}

fn loaded_tasks(status: WorkflowStatus, chains: &[Chain], repair: bool) -> Vec<Task> {
    let mut tasks = Vec::new();
    for (name, (length, statuses, optional, iteration, convention, tie)) in NAMES.iter().zip(chains)
    {
        for (retry, &generated) in statuses.iter().enumerate().take(*length) {
            let latest = retry + 1 == *length;
            let mut task_status = generated;
            if repair && !latest && !task_status.is_terminal() {
                task_status = TaskStatus::Failed;
            }
            if repair && latest && status.is_terminal() && !task_status.is_terminal() {
                task_status = TaskStatus::Canceled;
            }
            if repair
                && latest
                && status == WorkflowStatus::Completed
                && !task_status.is_successful()
            {
                task_status = TaskStatus::Completed;
            }
            let tied = !repair && *tie && retry == 1;
            let retry_count = u32::try_from(retry).expect("small") - u32::from(tied);
            let id = if *convention && !tied {
                TaskId::attempt(&WORKFLOW.into(), name, retry_count)
            } else {
                TaskId::new(format!("{name}-{retry}"))
            };
            tasks.push(Task {
                id,
                reference_name: (*name).into(),
                status: task_status,
                retry_count,
                iteration: *iteration,
                optional: *optional,
            });
        }
    }
    tasks
}

/// Where a case starts: new, or loaded (sound) through the public API.
fn start() -> impl Strategy<Value = Workflow> {
    prop_oneof![
        1 => Just(Workflow::new(WORKFLOW)),
        1 => loaded_workflow(true),
    ]
}

// ---------------------------------------------------------------------------------------------
// Non-vacuity counters
// ---------------------------------------------------------------------------------------------

/// What the generated cases actually exercised; the deterministic test asserts each is non-zero.
#[derive(Debug, Default, Clone)]
struct Stats {
    cases: u64,
    inputs: u64,
    applied: u64,
    rejected: u64,
    cases_completed: u64,
    cases_terminated: u64,
    duplicates: u64,
    progress: u64,
    stale_rejections: u64,
    late_report_rejections: u64,
    unknown_task_rejections: u64,
    retries_out_of_terminal: u64,
    tolerated: u64,
    decider_acts: u64,
    reloads: u64,
    /// Rejections by variant name, and by the workflow status they were refused in.
    rejections_by_kind: BTreeMap<String, u64>,
}

// ---------------------------------------------------------------------------------------------
// The run: apply seeds, check every input
// ---------------------------------------------------------------------------------------------

/// One state of the history, and the input that produced it (`None` for the start state).
struct Entry {
    input: Option<Input>,
    through_retry: bool,
    state: Workflow,
}

struct Run<'s> {
    workflow: Workflow,
    definition: Definition,
    /// The last input given to [`Run::input`] and what came of it.
    previous: Option<(Input, Result<Outcome, Rejection>)>,
    history: Vec<Entry>,
    stats: &'s mut Stats,
    /// Set by the decider-world property: every proposal of the decider must be accepted.
    decider_must_be_accepted: bool,
    reached_completed: bool,
    reached_terminated: bool,
}

/// Fails the case with a message.
fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

impl<'s> Run<'s> {
    fn new(workflow: Workflow, stats: &'s mut Stats) -> Self {
        let history = vec![Entry {
            input: None,
            through_retry: false,
            state: workflow.clone(),
        }];
        Run {
            workflow,
            definition: definition(),
            previous: None,
            history,
            stats,
            decider_must_be_accepted: false,
            reached_completed: false,
            reached_terminated: false,
        }
    }

    /// Applies every seed, then walks the history for the ghost properties.
    fn all(mut self, ops: &[Op]) -> Result<(), TestCaseError> {
        self.stats.cases += 1;
        self.observe_status();
        for op in ops {
            self.op(op)?;
        }
        i3_terminal_tasks_never_regress_in(&self.history)?;
        i5_only_retry_leaves_terminal_in(&self.history)?;
        self.stats.cases_completed += u64::from(self.reached_completed);
        self.stats.cases_terminated += u64::from(self.reached_terminated);
        Ok(())
    }

    fn observe_status(&mut self) {
        match self.workflow.status() {
            WorkflowStatus::Completed => self.reached_completed = true,
            WorkflowStatus::Terminated => self.reached_terminated = true,
            WorkflowStatus::Running
            | WorkflowStatus::Paused
            | WorkflowStatus::Failed
            | WorkflowStatus::TimedOut => {}
        }
    }

    fn op(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Drive => self.drive(),
            Op::Reload => self.reload(),
            Op::Duplicate => self.duplicate(),
            Op::Stale(first, second) => self.stale(first, second),
            Op::Decide => {
                let Some(input) = self.decide()? else {
                    return Ok(());
                };
                let result = self.input(&input)?;
                if self.decider_must_be_accepted {
                    prop_assert!(
                        result.is_ok(),
                        "the decider proposed {:?}, which was refused: {:?}",
                        input,
                        result
                    );
                }
                Ok(())
            }
            Op::Report(..)
            | Op::LateReport(..)
            | Op::Schedule { .. }
            | Op::Reschedule { .. }
            | Op::Start(_)
            | Op::TimeOutTask(_)
            | Op::CancelTask(_)
            | Op::TolerateFailure(_)
            | Op::Complete
            | Op::Fail
            | Op::TimeOut
            | Op::Admin(_) => {
                let input = self.resolve(op)?;
                self.input(&input).map(drop)
            }
        }
    }

    /// The task a target names in the current workflow.
    fn task_id(&self, target: Target) -> TaskId {
        let tasks = self.workflow.tasks();
        let live: Vec<&Task> = self.workflow.active_tasks().collect();
        match target {
            Target::Live(index) if !live.is_empty() => live[index % live.len()].id.clone(),
            Target::Live(index) | Target::Existing(index) if !tasks.is_empty() => {
                tasks[index % tasks.len()].id.clone()
            }
            Target::Live(_) | Target::Existing(_) => TaskId::new("unknown-empty"),
            Target::Unknown(n) => TaskId::new(format!("unknown-{n}")),
        }
    }

    /// Resolves a seed to one input against the current workflow. `Decide` resolves to the
    /// decider's proposal, or to a resume when it proposes nothing.
    fn resolve(&mut self, op: &Op) -> Result<Input, TestCaseError> {
        let input = match op {
            Op::Report(target, status) => Report::new(self.task_id(*target), *status).into(),
            Op::LateReport(index, status) => self.late_report(*index, *status),
            Op::Schedule {
                id,
                name,
                optional,
                iteration,
                skip,
            } => {
                let reference_name = NAMES[*name % NAMES.len()];
                let id = match id {
                    NewId::Convention => TaskId::attempt(self.workflow.id(), reference_name, 0),
                    NewId::Pool(n) => TaskId::new(format!("t{n}")),
                };
                let new = NewTask {
                    id,
                    reference_name: reference_name.into(),
                    optional: *optional,
                    iteration: *iteration,
                };
                if *skip {
                    EngineInput::Skip(new).into()
                } else {
                    EngineInput::Schedule(new).into()
                }
            }
            Op::Reschedule { failed, id } => {
                let failed = self.task_id(*failed);
                let id = match (id, self.workflow.task(&failed)) {
                    (NewId::Convention, Some(task)) => TaskId::attempt(
                        self.workflow.id(),
                        &task.reference_name,
                        task.retry_count + 1,
                    ),
                    (NewId::Convention, None) => TaskId::new("t0"),
                    (NewId::Pool(n), _) => TaskId::new(format!("t{n}")),
                };
                EngineInput::Reschedule { failed, task: id }.into()
            }
            Op::Start(target) => EngineInput::Start {
                task: self.task_id(*target),
            }
            .into(),
            Op::TimeOutTask(target) => EngineInput::TimeOutTask {
                task: self.task_id(*target),
            }
            .into(),
            Op::CancelTask(target) => EngineInput::CancelTask {
                task: self.task_id(*target),
            }
            .into(),
            Op::TolerateFailure(target) => EngineInput::TolerateFailure {
                task: self.task_id(*target),
            }
            .into(),
            Op::Complete => EngineInput::Complete.into(),
            Op::Fail => EngineInput::Fail.into(),
            Op::TimeOut => EngineInput::TimeOut.into(),
            Op::Admin(admin) => (*admin).into(),
            Op::Decide | Op::Drive | Op::Reload | Op::Duplicate | Op::Stale(..) => {
                self.decide()?.unwrap_or_else(|| AdminInput::Resume.into())
            }
        };
        Ok(input)
    }

    /// A report on a terminal task with a status other than its own; an ordinary report if no task
    /// is terminal yet.
    fn late_report(&self, index: usize, status: ReportStatus) -> Input {
        let terminal: Vec<&Task> = self
            .workflow
            .tasks()
            .iter()
            .filter(|task| task.status.is_terminal())
            .collect();
        if terminal.is_empty() {
            return Report::new(self.task_id(Target::Existing(index)), status).into();
        }
        let task = terminal[index % terminal.len()];
        let at = ReportStatus::ALL
            .iter()
            .position(|s| *s == status)
            .expect("listed");
        let status = if status.task_status() == task.status {
            ReportStatus::ALL[(at + 1) % ReportStatus::ALL.len()]
        } else {
            status
        };
        Report::new(task.id.clone(), status).into()
    }

    /// The decider's proposal as an input; checks that it decides exactly when RUNNING.
    fn decide(&mut self) -> Result<Option<Input>, TestCaseError> {
        let decision = decide(&self.workflow, &self.definition);
        let running = self.workflow.status() == WorkflowStatus::Running;
        prop_assert_eq!(
            matches!(decision, Decision::Idle),
            !running,
            "the decider is idle exactly when the workflow is not RUNNING: {:?}",
            decision
        );
        Ok(match decision {
            Decision::Act(input) => {
                self.stats.decider_acts += 1;
                Some(input.into())
            }
            Decision::Wait | Decision::Idle => None,
        })
    }

    /// Pushes the workflow towards COMPLETED, as a sweeper plus cooperative workers would.
    fn drive(&mut self) -> Result<(), TestCaseError> {
        if let Some(input) = self.decide()? {
            if let Ok(step) = self.input(&input)? {
                if step.is_applied() {
                    return Ok(());
                }
            }
        }
        if self.workflow.status() == WorkflowStatus::Paused {
            return self.input(&AdminInput::Resume.into()).map(drop);
        }
        let live = self
            .workflow
            .active_tasks()
            .next()
            .map(|task| task.id.clone());
        if let Some(task) = live {
            self.input(&Report::new(task, ReportStatus::Completed).into())?
                .map(drop)
                .ok();
        }
        Ok(())
    }

    /// A JSON round trip through the store: equal, same violations, fresh indexes from now on.
    fn reload(&mut self) -> Result<(), TestCaseError> {
        let json = serde_json::to_string(&self.workflow).map_err(|e| fail(e.to_string()))?;
        let loaded: Workflow = serde_json::from_str(&json).map_err(|e| fail(e.to_string()))?;
        prop_assert_eq!(&loaded, &self.workflow, "a JSON round trip is lossless");
        prop_assert_eq!(
            check(&loaded),
            check(&self.workflow),
            "same violations after a load"
        );
        self.workflow = loaded;
        self.stats.reloads += 1;
        Ok(())
    }

    /// The previous input again (SPEC section 4: redelivery). The state has not changed since,
    /// unless that input was applied: then the repeat must not apply again.
    fn duplicate(&mut self) -> Result<(), TestCaseError> {
        let Some((input, last)) = self.previous.clone() else {
            return Ok(());
        };
        let refused = last.clone().err();
        // A repeated retry finds the workflow RUNNING: refused, for a reason the SPEC leaves open.
        let expected = match last {
            Ok(Outcome::Applied) => match &input {
                Input::Admin(AdminInput::Retry) => Err(()),
                Input::Report(Report {
                    status: ReportStatus::InProgress,
                    ..
                }) => Ok(Outcome::Progress),
                Input::Report(_) | Input::Engine(_) | Input::Admin(_) => Ok(Outcome::Duplicate),
            },
            Ok(outcome @ (Outcome::Duplicate | Outcome::Progress)) => Ok(outcome),
            Err(_) => Err(()),
        };
        let result = self.input(&input)?;
        let actual = result.as_ref().map(Step::outcome).map_err(drop);
        prop_assert_eq!(actual, expected, "repeat of {:?}: {:?}", input, result);
        if let (Some(before), Err(now)) = (&refused, &result) {
            prop_assert_eq!(
                before,
                now,
                "a refused input is refused again for the same reason"
            );
        }
        Ok(())
    }

    /// I4: a step computed before another accepted input is stale: its apply is
    /// `StaleVersion` and changes nothing. Then the writer re-reads and steps again.
    fn stale(&mut self, first: &Op, second: &Op) -> Result<(), TestCaseError> {
        let old_input = self.resolve(first)?;
        let read = self.workflow.version();
        let old_step = transition(&self.workflow, &old_input);
        self.accepted_input(second)?;
        let before = self.workflow.clone();
        if let Ok(old_step) = &old_step {
            let mut target = before.clone();
            let result = target.apply(old_step);
            if !old_step.is_applied() {
                prop_assert_eq!(&result, &Ok(()), "a no-op step always applies");
            } else if before.version() != read {
                prop_assert_eq!(
                    &result,
                    &Err(Rejection::StaleVersion {
                        read,
                        current: before.version()
                    }),
                    "I4: a step read at {} applied at {} is stale: {:?}",
                    read,
                    before.version(),
                    old_input
                );
                self.stats.stale_rejections += 1;
            } else {
                // Nothing was accepted in between, so the state is the one the step was computed
                // from: stepping again gives the same step, and it applies.
                prop_assert!(result.is_ok(), "a fresh step applies: {:?}", result);
                let again = self.input(&old_input)?;
                prop_assert_eq!(again.as_ref(), Ok(old_step), "transition is deterministic");
                return Ok(());
            }
            prop_assert_eq!(&target, &before, "a refused apply changes nothing (I4)");
            prop_assert_eq!(target.version(), before.version(), "I4: same version");
        }
        // The writer re-reads and steps again.
        self.input(&old_input).map(drop)
    }

    /// Applies the second seed of a stale op, or the first of a few fallbacks that is accepted.
    fn accepted_input(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let first = self.resolve(op)?;
        if self.input(&first)?.is_ok_and(|step| step.is_applied()) {
            return Ok(());
        }
        for fallback in [
            Op::Decide,
            Op::Admin(AdminInput::Resume),
            Op::Admin(AdminInput::Retry),
            Op::Admin(AdminInput::Pause),
        ] {
            let input = self.resolve(&fallback)?;
            if self.input(&input)?.is_ok_and(|step| step.is_applied()) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// One input through `transition` + `apply`, with every per-step check.
    fn input(&mut self, input: &Input) -> Result<Result<Step, Rejection>, TestCaseError> {
        let before = self.workflow.clone();
        let result = transition(&before, input);
        self.stats.inputs += 1;

        // The same answer from a freshly loaded copy: the incremental indexes agree with a load.
        prop_assert_eq!(&transition(&fresh(&before), input), &result, "fresh load");
        // `advance` is `transition` then `apply`.
        let mut advanced = before.clone();
        prop_assert_eq!(&advanced.advance(input), &result, "advance");

        self.previous = Some((
            input.clone(),
            result.as_ref().map(Step::outcome).map_err(Clone::clone),
        ));
        match &result {
            Err(rejection) => {
                self.stats.rejected += 1;
                let kind = format!("{rejection:?}");
                let kind = kind.split([' ', '{']).next().unwrap_or_default();
                *self
                    .stats
                    .rejections_by_kind
                    .entry(format!("{kind} in {}", before.status()))
                    .or_default() += 1;
                match rejection {
                    Rejection::TaskAlreadyTerminal { .. } => {
                        self.stats.late_report_rejections +=
                            u64::from(input.writer() == Writer::Report)
                    }
                    Rejection::UnknownTask { .. } => self.stats.unknown_task_rejections += 1,
                    _ => {}
                }
                prop_assert!(
                    !matches!(
                        rejection,
                        Rejection::StaleVersion { .. } | Rejection::ForeignStep
                    ),
                    "transition itself never answers with apply's rejections: {:?}",
                    rejection
                );
                prop_assert_eq!(&advanced, &before, "a rejection changes nothing (I4)");
                prop_assert_eq!(advanced.version(), before.version(), "I4: same version");
            }
            Ok(step) => {
                self.record(&before, input, step)?;
                prop_assert_eq!(&advanced, &self.workflow, "advance");
            }
        }
        // After the invariant checks, so that a broken invariant is reported by its id.
        expected(&before, input).matches(&result, input)?;
        Ok(result)
    }

    /// Applies an accepted step and checks it; records the new state.
    fn record(
        &mut self,
        before: &Workflow,
        input: &Input,
        step: &Step,
    ) -> Result<(), TestCaseError> {
        prop_assert_eq!(step.read_version(), before.version(), "read version");
        self.workflow
            .apply(step)
            .map_err(|rejection| fail(format!("a fresh step must apply: {rejection:?}")))?;
        check_step(before, &self.workflow, input, step)?;
        match step.outcome() {
            Outcome::Applied => {
                self.stats.applied += 1;
                if before.status().is_terminal() && step.through_retry() {
                    self.stats.retries_out_of_terminal += 1;
                }
                if matches!(input, Input::Engine(EngineInput::TolerateFailure { .. })) {
                    self.stats.tolerated += 1;
                }
            }
            Outcome::Duplicate => self.stats.duplicates += 1,
            Outcome::Progress => self.stats.progress += 1,
        }
        self.observe_status();
        self.history.push(Entry {
            input: Some(input.clone()),
            through_retry: step.through_retry(),
            state: self.workflow.clone(),
        });
        Ok(())
    }
}

/// The same stored fields, loaded afresh (indexes rebuilt from the tasks).
fn fresh(workflow: &Workflow) -> Workflow {
    Workflow::from_parts(
        workflow.id().clone(),
        workflow.status(),
        workflow.version(),
        workflow.tasks().to_vec(),
    )
    .expect("a workflow's task ids are unique")
}

// ---------------------------------------------------------------------------------------------
// Per-step checks
// ---------------------------------------------------------------------------------------------

/// Every check of one accepted step from `before` to `after`.
fn check_step(
    before: &Workflow,
    after: &Workflow,
    input: &Input,
    step: &Step,
) -> Result<(), TestCaseError> {
    if check(before).is_empty() {
        let violations = check(after);
        prop_assert!(
            violations.is_empty(),
            "I1/I2/I3 after {:?}: {:?}",
            input,
            violations
        );
    }
    let pair = check_pair(before, after, step.through_retry());
    prop_assert!(pair.is_empty(), "I3/I4/I5 after {:?}: {:?}", input, pair);
    prop_assert_eq!(
        step.through_retry(),
        step.is_applied() && *input == Input::Admin(AdminInput::Retry),
        "only an applied admin retry is through retry"
    );
    prop_assert_eq!(
        step.new_version(),
        after.version(),
        "the step's new version"
    );
    match step.outcome() {
        Outcome::Applied => {
            prop_assert_eq!(after.version(), before.version() + 1, "I4: +1 per change");
            check_effects(before, after, step)?;
            check_changes(before, after, input, step)?;
        }
        Outcome::Duplicate | Outcome::Progress => {
            prop_assert_eq!(after, before, "a duplicate changes nothing (I4)");
            prop_assert_eq!(after.version(), before.version(), "I4: same version");
            prop_assert!(step.effects().is_empty(), "no effects without a change");
            prop_assert!(step.changes().is_empty(), "no changes in a no-op");
        }
    }
    let loaded = fresh(after);
    for name in NAMES {
        prop_assert_eq!(
            after.latest_attempt(name),
            loaded.latest_attempt(name),
            "latest-attempt index of {}",
            name
        );
    }
    prop_assert!(
        after.active_tasks().eq(loaded.active_tasks()),
        "active index"
    );
    prop_assert!(
        after
            .unsuccessful_latest_tasks()
            .eq(loaded.unsuccessful_latest_tasks()),
        "unsuccessful-latest index"
    );
    Ok(())
}

/// SPEC section 5: persist first, phases never go back, queue effects match the status change.
fn check_effects(before: &Workflow, after: &Workflow, step: &Step) -> Result<(), TestCaseError> {
    let effects = step.effects();
    prop_assert_eq!(
        effects.first(),
        Some(&Effect::Persist {
            read_version: before.version(),
            new_version: before.version() + 1,
        }),
        "effects start with the persist: {:?}",
        effects
    );
    prop_assert!(
        effects.windows(2).all(|w| w[0].phase() <= w[1].phase()),
        "effects ordered by phase: {:?}",
        effects
    );
    prop_assert_eq!(
        effects
            .iter()
            .filter(|e| e.phase() == Phase::Persist)
            .count(),
        1,
        "one persist: {:?}",
        effects
    );
    let (from, to) = (before.status(), after.status());
    let running = WorkflowStatus::Running;
    prop_assert_eq!(
        effects.contains(&Effect::LeaveDeciderQueue),
        from == running && to != running,
        "leave the decider queue exactly when leaving RUNNING ({} → {}): {:?}",
        from,
        to,
        effects
    );
    prop_assert_eq!(
        effects.contains(&Effect::EnterDeciderQueue),
        from != running && to == running,
        "enter the decider queue exactly when becoming RUNNING ({} → {}): {:?}",
        from,
        to,
        effects
    );
    prop_assert_eq!(
        effects.contains(&Effect::NotifyListeners { status: to }),
        from != to,
        "notify listeners exactly on a status change ({} → {}): {:?}",
        from,
        to,
        effects
    );
    prop_assert_eq!(
        effects.contains(&Effect::Archive),
        to.is_terminal() && !from.is_terminal(),
        "archive exactly when becoming terminal ({} → {}): {:?}",
        from,
        to,
        effects
    );
    let pushed: Vec<&TaskId> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::PushToTaskQueue { task } => Some(task),
            _ => None,
        })
        .collect();
    let scheduled: Vec<&TaskId> = step
        .changes()
        .added
        .iter()
        .filter(|t| t.status == TaskStatus::Scheduled)
        .map(|t| &t.id)
        .collect();
    prop_assert_eq!(pushed, scheduled, "push exactly the new SCHEDULED attempts");
    for change in &step.changes().tasks {
        if change.from == TaskStatus::Scheduled && change.to == TaskStatus::Canceled {
            prop_assert!(
                effects.contains(&Effect::RemoveFromTaskQueue {
                    task: change.task.clone()
                }),
                "a cancelled SCHEDULED attempt leaves its task queue"
            );
        }
    }
    Ok(())
}

/// The step's changes are exactly the difference between the states, and every edge is one the
/// SPEC section 4 tables give the input's writer.
fn check_changes(
    before: &Workflow,
    after: &Workflow,
    input: &Input,
    step: &Step,
) -> Result<(), TestCaseError> {
    let changes = step.changes();
    prop_assert!(!changes.is_empty(), "an applied step changes something");
    let mut tasks: Vec<Task> = before.tasks().to_vec();
    for change in &changes.tasks {
        let task = tasks
            .iter_mut()
            .find(|task| task.id == change.task)
            .ok_or_else(|| fail(format!("change of an unknown task {change:?}")))?;
        prop_assert_eq!(task.status, change.from, "change records the status before");
        prop_assert_ne!(change.from, change.to, "a change changes");
        prop_assert!(
            task_edge(input, task, change.to),
            "{:?} → {:?} of {} is not an edge for {:?}",
            change.from,
            change.to,
            change.task,
            input
        );
        task.status = change.to;
    }
    for added in &changes.added {
        prop_assert!(
            before.status() == WorkflowStatus::Running || *input == Input::Admin(AdminInput::Retry),
            "nothing is scheduled on a {} workflow: {:?}",
            before.status(),
            input
        );
        let skip = matches!(input, Input::Engine(EngineInput::Skip(_)));
        let entry = if skip {
            TaskStatus::Skipped
        } else {
            TaskStatus::Scheduled
        };
        prop_assert_eq!(added.status, entry, "a task enters SCHEDULED or SKIPPED");
    }
    tasks.extend(changes.added.iter().cloned());
    prop_assert_eq!(
        after.tasks(),
        &tasks[..],
        "tasks after = tasks before + changes"
    );
    match changes.workflow {
        Some(change) => {
            prop_assert_eq!(change.from, before.status(), "workflow change from");
            prop_assert_eq!(change.to, after.status(), "workflow change to");
            prop_assert!(
                workflow_edge(input, change.from, change.to),
                "workflow {} → {} is not an edge for {:?}",
                change.from,
                change.to,
                input
            );
        }
        None => prop_assert_eq!(after.status(), before.status(), "no workflow change"),
    }
    if *input == Input::Admin(AdminInput::Retry) {
        check_retry(before, changes.added.as_slice())?;
    }
    Ok(())
}

/// SPEC section 4, admin retry: one new SCHEDULED attempt (retry count + 1) for each reference
/// name whose latest attempt ended unsuccessfully; nothing else is added.
fn check_retry(before: &Workflow, added: &[Task]) -> Result<(), TestCaseError> {
    let mut expected: Vec<(ReferenceName, u32)> = latest_attempts(before.tasks())
        .into_values()
        .filter(|task| task.status.is_terminal() && !task.status.is_successful())
        .map(|task| (task.reference_name.clone(), task.retry_count + 1))
        .collect();
    let mut actual: Vec<(ReferenceName, u32)> = added
        .iter()
        .map(|task| (task.reference_name.clone(), task.retry_count))
        .collect();
    expected.sort();
    actual.sort();
    prop_assert_eq!(
        actual,
        expected,
        "retry restarts exactly the unsuccessful latest attempts"
    );
    Ok(())
}

/// The task table of SPEC section 4, by writer.
fn task_edge(input: &Input, task: &Task, to: TaskStatus) -> bool {
    use TaskStatus::{
        Canceled, Completed, CompletedWithErrors, Failed, FailedWithTerminalError, InProgress,
        Scheduled, TimedOut,
    };
    let from = task.status;
    let live = matches!(from, Scheduled | InProgress);
    match input.writer() {
        Writer::Report => {
            live && matches!(
                to,
                InProgress | Completed | Failed | FailedWithTerminalError | Canceled
            )
        }
        Writer::Engine => {
            (from == Scheduled && to == InProgress)
                || (live && matches!(to, Canceled | TimedOut))
                || (task.optional && matches!(from, Failed | TimedOut) && to == CompletedWithErrors)
        }
        Writer::Admin => live && to == Canceled,
    }
}

/// The workflow table of SPEC section 4; leaving a terminal status is admin retry only.
fn workflow_edge(input: &Input, from: WorkflowStatus, to: WorkflowStatus) -> bool {
    use WorkflowStatus::{Completed, Failed, Paused, Running, Terminated, TimedOut};
    match from {
        Running => matches!(to, Paused | Completed | Failed | TimedOut | Terminated),
        Paused => matches!(to, Running | Terminated | TimedOut),
        Completed => false,
        Failed | TimedOut | Terminated => {
            to == Running && *input == Input::Admin(AdminInput::Retry)
        }
    }
}

/// Latest attempt per reference name: highest retry count, then latest added. Written here from
/// the SPEC, independently of the crate's index.
fn latest_attempts(tasks: &[Task]) -> BTreeMap<&str, &Task> {
    let mut latest: BTreeMap<&str, &Task> = BTreeMap::new();
    for task in tasks {
        match latest.get(task.reference_name.as_str()) {
            Some(previous) if previous.retry_count > task.retry_count => {}
            Some(_) | None => {
                latest.insert(task.reference_name.as_str(), task);
            }
        }
    }
    latest
}

// ---------------------------------------------------------------------------------------------
// The oracle: what SPEC section 4 says an input does
// ---------------------------------------------------------------------------------------------

/// What an input must do. The SPEC pins whether an input is accepted and how, but names the
/// rejection only for late reports ("already terminal, with both statuses"); for other refusals
/// the reasons that apply are listed, as text, for the failure message, and any rejection passes.
/// (Text, not `Rejection` values, so that renaming a variant does not break this file.)
#[derive(Debug)]
enum Expected {
    Accept(Outcome),
    /// A late report: exactly this rejection.
    Late(Rejection),
    Reject(Vec<String>),
}

impl Expected {
    /// `Accept(applied)` unless some reason refuses the input.
    fn unless(reasons: Vec<String>, applied: Outcome) -> Self {
        if reasons.is_empty() {
            Expected::Accept(applied)
        } else {
            Expected::Reject(reasons)
        }
    }

    fn reject(reason: String) -> Self {
        Expected::Reject(vec![reason])
    }

    fn matches(
        &self,
        result: &Result<Step, Rejection>,
        input: &Input,
    ) -> Result<(), TestCaseError> {
        let ok = match (self, result) {
            (Expected::Accept(outcome), Ok(step)) => step.outcome() == *outcome,
            (Expected::Late(late), Err(rejection)) => late == rejection,
            (Expected::Reject(reasons), Err(_)) => !reasons.is_empty(),
            (Expected::Accept(_), Err(_)) | (Expected::Late(_) | Expected::Reject(_), Ok(_)) => {
                false
            }
        };
        prop_assert!(
            ok,
            "SPEC section 4 says {:?} for {:?}, got {:?}",
            self,
            input,
            result.as_ref().map(Step::outcome)
        );
        Ok(())
    }
}

fn expected(workflow: &Workflow, input: &Input) -> Expected {
    match input {
        Input::Report(report) => {
            let to = report.status.task_status();
            expect_move(workflow, &report.task, to, Outcome::Progress)
        }
        Input::Engine(engine) => match engine {
            EngineInput::Schedule(new) => expect_schedule(workflow, new, TaskStatus::Scheduled),
            EngineInput::Skip(new) => expect_schedule(workflow, new, TaskStatus::Skipped),
            EngineInput::Reschedule { failed, task } => expect_reschedule(workflow, failed, task),
            EngineInput::Start { task } => {
                expect_move(workflow, task, TaskStatus::InProgress, Outcome::Duplicate)
            }
            EngineInput::TimeOutTask { task } => {
                expect_move(workflow, task, TaskStatus::TimedOut, Outcome::Duplicate)
            }
            EngineInput::CancelTask { task } => {
                expect_move(workflow, task, TaskStatus::Canceled, Outcome::Duplicate)
            }
            EngineInput::TolerateFailure { task } => expect_tolerate(workflow, task),
            EngineInput::Complete => expect_complete(workflow),
            EngineInput::Fail => expect_workflow_move(workflow, WorkflowStatus::Failed),
            EngineInput::TimeOut => expect_workflow_move(workflow, WorkflowStatus::TimedOut),
        },
        Input::Admin(admin) => match admin {
            AdminInput::Terminate => expect_workflow_move(workflow, WorkflowStatus::Terminated),
            AdminInput::Pause => expect_workflow_move(workflow, WorkflowStatus::Paused),
            AdminInput::Resume => expect_workflow_move(workflow, WorkflowStatus::Running),
            AdminInput::Retry => expect_retry(workflow),
        },
    }
}

fn not_running(workflow: &Workflow) -> Option<String> {
    (workflow.status() != WorkflowStatus::Running)
        .then(|| format!("workflow is {}, not RUNNING", workflow.status()))
}

fn find<'w>(workflow: &'w Workflow, id: &TaskId) -> Option<&'w Task> {
    workflow.tasks().iter().find(|task| task.id == *id)
}

/// One attempt to `to` (reports; engine start, time out, cancel). `same` is the outcome when the
/// attempt is live and already has status `to`.
fn expect_move(workflow: &Workflow, id: &TaskId, to: TaskStatus, same: Outcome) -> Expected {
    let Some(task) = find(workflow, id) else {
        return Expected::reject(format!("unknown task {id}"));
    };
    let current = task.status;
    if current.is_terminal() {
        return if current == to {
            Expected::Accept(Outcome::Duplicate)
        } else {
            Expected::Late(Rejection::TaskAlreadyTerminal {
                task: id.clone(),
                current,
                requested: to,
            })
        };
    }
    if workflow.status().is_terminal() {
        // Only in a loaded state that breaks I1.
        return Expected::reject(format!("live task in a {} workflow", workflow.status()));
    }
    Expected::Accept(if current == to {
        same
    } else {
        Outcome::Applied
    })
}

fn expect_schedule(workflow: &Workflow, new: &NewTask, status: TaskStatus) -> Expected {
    let mut reasons = Vec::new();
    if let Some(existing) = find(workflow, &new.id) {
        let same = existing.reference_name == new.reference_name
            && existing.optional == new.optional
            && existing.iteration == new.iteration
            && existing.retry_count == 0
            && ((existing.status == TaskStatus::Skipped) == (status == TaskStatus::Skipped));
        if same {
            return Expected::Accept(Outcome::Duplicate);
        }
        reasons.push(format!("task id {} in use", new.id));
    }
    reasons.extend(not_running(workflow));
    if let Some(latest) = latest_attempts(workflow.tasks()).get(new.reference_name.as_str()) {
        reasons.push(format!(
            "reference name {} in use by {}",
            new.reference_name, latest.id
        ));
    }
    Expected::unless(reasons, Outcome::Applied)
}

fn expect_reschedule(workflow: &Workflow, failed: &TaskId, id: &TaskId) -> Expected {
    let Some(task) = find(workflow, failed) else {
        return Expected::reject(format!("unknown task {failed}"));
    };
    let mut reasons = Vec::new();
    if let Some(existing) = find(workflow, id) {
        if existing.reference_name == task.reference_name
            && existing.retry_count == task.retry_count + 1
        {
            return Expected::Accept(Outcome::Duplicate);
        }
        reasons.push(format!("task id {id} in use"));
    }
    reasons.extend(not_running(workflow));
    reasons.extend(not_latest(workflow, task));
    if !matches!(task.status, TaskStatus::Failed | TaskStatus::TimedOut) {
        reasons.push(format!("{failed} is {}, not retriable", task.status));
    }
    Expected::unless(reasons, Outcome::Applied)
}

fn not_latest(workflow: &Workflow, task: &Task) -> Option<String> {
    let latest = latest_attempts(workflow.tasks())[task.reference_name.as_str()];
    (latest.id != task.id).then(|| format!("{} superseded by {}", task.id, latest.id))
}

fn expect_tolerate(workflow: &Workflow, id: &TaskId) -> Expected {
    let Some(task) = find(workflow, id) else {
        return Expected::reject(format!("unknown task {id}"));
    };
    if task.status == TaskStatus::CompletedWithErrors {
        return Expected::Accept(Outcome::Duplicate);
    }
    let mut reasons = Vec::new();
    if !matches!(task.status, TaskStatus::Failed | TaskStatus::TimedOut) {
        reasons.push(format!("no edge {} → COMPLETED_WITH_ERRORS", task.status));
    }
    if !task.optional {
        reasons.push(format!("{id} is not optional"));
    }
    reasons.extend(not_latest(workflow, task));
    reasons.extend(not_running(workflow));
    Expected::unless(reasons, Outcome::Applied)
}

/// A workflow status change by anything but retry: complete (its gate), fail, time out,
/// terminate, pause, resume. The task side of fail, time out and terminate is checked by I1.
fn expect_workflow_move(workflow: &Workflow, to: WorkflowStatus) -> Expected {
    use WorkflowStatus::{Paused, Running, Terminated, TimedOut};
    let from = workflow.status();
    if from == to {
        return Expected::Accept(Outcome::Duplicate);
    }
    let edge = match from {
        Running => true,
        Paused => matches!(to, Running | Terminated | TimedOut),
        // Out of a terminal status only by retry, which is not this.
        WorkflowStatus::Completed
        | WorkflowStatus::Failed
        | WorkflowStatus::TimedOut
        | WorkflowStatus::Terminated => false,
    };
    if edge {
        Expected::Accept(Outcome::Applied)
    } else {
        Expected::reject(format!("no workflow edge {from} → {to}"))
    }
}

fn expect_complete(workflow: &Workflow) -> Expected {
    let gate = expect_workflow_move(workflow, WorkflowStatus::Completed);
    if !matches!(gate, Expected::Accept(Outcome::Applied)) {
        return gate;
    }
    let live = workflow.tasks().iter().filter(|t| !t.status.is_terminal());
    let unsuccessful = latest_attempts(workflow.tasks())
        .into_values()
        .filter(|t| t.status.is_terminal() && !t.status.is_successful());
    let reasons = live
        .chain(unsuccessful)
        .map(|task| format!("task {} is {}", task.id, task.status))
        .collect();
    Expected::unless(reasons, Outcome::Applied)
}

fn expect_retry(workflow: &Workflow) -> Expected {
    let from = workflow.status();
    if !matches!(
        from,
        WorkflowStatus::Failed | WorkflowStatus::TimedOut | WorkflowStatus::Terminated
    ) {
        return Expected::reject(format!("retry from {from}"));
    }
    // The ids admin retry gives new attempts may already be taken.
    let reasons = latest_attempts(workflow.tasks())
        .into_values()
        .filter(|t| t.status.is_terminal() && !t.status.is_successful())
        .map(|t| TaskId::attempt(workflow.id(), &t.reference_name, t.retry_count + 1))
        .filter(|id| workflow.task(id).is_some())
        .map(|id| format!("retry id {id} in use"))
        .collect();
    Expected::unless(reasons, Outcome::Applied)
}

// ---------------------------------------------------------------------------------------------
// Ghost properties over the whole history
// ---------------------------------------------------------------------------------------------

/// I3 across the sequence: every task id ever seen terminal stays in the workflow, stays terminal,
/// and keeps its status except by the optional-tolerance edge, taken by a tolerate input naming it.
fn i3_terminal_tasks_never_regress_in(history: &[Entry]) -> Result<(), TestCaseError> {
    let mut terminal: BTreeMap<TaskId, TaskStatus> = BTreeMap::new();
    for (at, entry) in history.iter().enumerate() {
        for (id, was) in &terminal {
            let task = entry
                .state
                .task(id)
                .ok_or_else(|| fail(format!("I3: terminal task {id} vanished at step {at}")))?;
            if task.status == *was {
                continue;
            }
            let tolerated = task.optional
                && matches!(was, TaskStatus::Failed | TaskStatus::TimedOut)
                && task.status == TaskStatus::CompletedWithErrors
                && entry.input == Some(EngineInput::TolerateFailure { task: id.clone() }.into());
            prop_assert!(
                tolerated,
                "I3: task {} went from terminal {} to {} at step {} by {:?}",
                id,
                was,
                task.status,
                at,
                entry.input
            );
        }
        for task in entry.state.tasks() {
            if task.status.is_terminal() {
                terminal.insert(task.id.clone(), task.status);
            }
        }
    }
    Ok(())
}

/// I5 across the sequence: a ghost flag remembers that the workflow was terminal (and in which
/// status); while it is set the status stays put, and it is cleared only by an admin retry that
/// makes the workflow RUNNING. The number of re-openings equals the number of such retries.
fn i5_only_retry_leaves_terminal_in(history: &[Entry]) -> Result<(), TestCaseError> {
    let mut was_terminal: Option<WorkflowStatus> = None;
    let (mut reopened, mut retried) = (0, 0);
    for (at, entry) in history.iter().enumerate() {
        let status = entry.state.status();
        let retry = entry.through_retry && entry.input == Some(AdminInput::Retry.into());
        if let Some(terminal) = was_terminal {
            if status != terminal {
                prop_assert!(
                    retry && status == WorkflowStatus::Running,
                    "I5: terminal {} became {} at step {} by {:?}",
                    terminal,
                    status,
                    at,
                    entry.input
                );
                reopened += 1;
            }
        }
        if retry {
            retried += 1;
        }
        was_terminal = if status.is_terminal() {
            Some(status)
        } else {
            None
        };
    }
    prop_assert_eq!(
        reopened,
        retried,
        "I5: every retry re-opens a terminal workflow"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn run(start: Workflow, ops: &[Op], stats: &mut Stats) -> Result<(), TestCaseError> {
    Run::new(start, stats).all(ops)
}

/// The configuration of every property: [`CASES`] cases, failures persisted under
/// `proptest-regressions/`, and the XorShift generator (ChaCha, the default, dominates the runtime
/// of a debug build; the cases do not need a cryptographic generator).
fn config() -> Config {
    Config {
        cases: CASES,
        rng_algorithm: RngAlgorithm::XorShift,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/properties.txt",
        ))),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// I1, I2, I3, I4, I5 after every input of a long random sequence from `Workflow::new`, plus
    /// SPEC sections 4 and 5 (outcomes, edges, effect order) and the ghost walks.
    #[test]
    fn i1_to_i5_hold_over_random_input_sequences_from_a_new_workflow(ops in ops(op())) {
        run(Workflow::new(WORKFLOW), &ops, &mut Stats::default())?;
    }

    /// I1, I2, I3, I4, I5 after every input, starting from sound workflows loaded through
    /// `Workflow::from_parts` in any task order and at any version.
    #[test]
    fn i1_to_i5_hold_over_random_input_sequences_from_loaded_workflows(
        start in loaded_workflow(true),
        ops in ops(op()),
    ) {
        prop_assert!(check(&start).is_empty(), "the repaired start is sound: {:?}", check(&start));
        run(start, &ops, &mut Stats::default())?;
    }

    /// I3, I4, I5 (pair invariants) hold for every step even from a loaded state that already
    /// breaks I1–I3, and a step never adds an I1–I3 violation to a sound state.
    #[test]
    fn i3_i4_i5_hold_from_any_loaded_workflow(
        start in loaded_workflow(false),
        ops in ops(op()),
    ) {
        run(start, &ops, &mut Stats::default())?;
    }

    /// I5: a workflow that was terminal becomes RUNNING again only through admin retry; a ghost
    /// flag tracks "was terminal" across the whole sequence (mix heavy on workflow-level inputs).
    #[test]
    fn i5_terminal_workflow_reopens_only_through_retry(
        start in start(),
        ops in ops(workflow_heavy_op()),
    ) {
        let mut stats = Stats::default();
        let mut run = Run::new(start, &mut stats);
        for op in &ops {
            run.op(op)?;
        }
        i5_only_retry_leaves_terminal_in(&run.history)?;
    }

    /// I3: a task that was terminal never becomes non-terminal and keeps its terminal status
    /// except by the optional-tolerance edge, tracked over the history of every terminal task id
    /// (mix heavy on reports, late reports, tolerance and retry).
    #[test]
    fn i3_terminal_task_never_regresses_across_the_sequence(
        start in start(),
        ops in ops(task_heavy_op()),
    ) {
        let mut stats = Stats::default();
        let mut run = Run::new(start, &mut stats);
        for op in &ops {
            run.op(op)?;
        }
        i3_terminal_tasks_never_regress_in(&run.history)?;
    }

    /// I4: a step computed before another accepted input is rejected with `StaleVersion` and
    /// changes nothing; re-reading and stepping again then works (every op is a stale pair here).
    #[test]
    fn i4_stale_steps_are_rejected_and_change_nothing(
        start in start(),
        pairs in prop::collection::vec((leaf_op(), leaf_op()), 0..=STEPS / 2),
    ) {
        let ops: Vec<Op> = pairs
            .into_iter()
            .map(|(a, b)| Op::Stale(Box::new(a), Box::new(b)))
            .collect();
        run(start, &ops, &mut Stats::default())?;
    }

    /// SPEC section 7 (the sweeper is never stuck, so I6a's wake-ups lead somewhere): when the
    /// decider is the only engine writer that schedules, every proposal it makes on a RUNNING
    /// workflow is accepted; I1–I5, I8 are checked along the way.
    #[test]
    fn i1_to_i5_hold_and_decider_proposals_are_always_accepted(ops in ops(decider_world_op())) {
        let mut stats = Stats::default();
        let mut run = Run::new(Workflow::new(WORKFLOW), &mut stats);
        run.decider_must_be_accepted = true;
        run.all(&ops)?;
    }
}

/// Non-vacuity for the properties above: a fixed-seed run of the main strategy reaches
/// COMPLETED and TERMINATED, and produces duplicates, stale rejections (I4), late-report
/// rejections (I3), retries out of a terminal status (I5) and tolerated failures.
#[test]
fn i1_to_i5_properties_are_not_vacuous() {
    let config = Config {
        cases: 256,
        failure_persistence: None,
        ..config()
    };
    let rng = TestRng::deterministic_rng(RngAlgorithm::XorShift);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let stats = RefCell::new(Stats::default());
    runner
        .run(&(start(), ops(op())), |(start, ops)| {
            run(start, &ops, &mut stats.borrow_mut())
        })
        .unwrap();
    let stats = stats.into_inner();
    eprintln!("{stats:#?}");
    let counts = [
        ("cases that reached COMPLETED", stats.cases_completed),
        ("cases that reached TERMINATED", stats.cases_terminated),
        ("duplicate outcomes", stats.duplicates),
        ("progress outcomes", stats.progress),
        ("stale rejections", stats.stale_rejections),
        ("late-report rejections", stats.late_report_rejections),
        ("unknown-task rejections", stats.unknown_task_rejections),
        (
            "retries out of a terminal status",
            stats.retries_out_of_terminal,
        ),
        ("tolerated failures", stats.tolerated),
        ("decider proposals", stats.decider_acts),
        ("reloads", stats.reloads),
    ];
    for (what, count) in counts {
        assert!(count > 0, "never saw any {what}: {stats:#?}");
    }
}

/// The ghost walks are not vacuous either: they reject a hand-made history in which a COMPLETED
/// task goes back to IN_PROGRESS (I3, D2) or a FAILED workflow is resumed (I5, D3), and accept
/// the same workflow re-opened by admin retry.
#[test]
fn i3_i5_ghost_walks_catch_hand_made_violations() {
    let state = |workflow: WorkflowStatus, task: TaskStatus, version| {
        let task = Task {
            id: "t".into(),
            reference_name: "t".into(),
            status: task,
            retry_count: 0,
            iteration: 0,
            optional: false,
        };
        Workflow::from_parts(WORKFLOW, workflow, version, vec![task]).expect("one task")
    };
    let entry = |input: Option<Input>, through_retry, state| Entry {
        input,
        through_retry,
        state,
    };
    let late = Report::new("t", ReportStatus::InProgress).into();
    let regressed = [
        entry(
            None,
            false,
            state(WorkflowStatus::Running, TaskStatus::Completed, 1),
        ),
        entry(
            Some(late),
            false,
            state(WorkflowStatus::Running, TaskStatus::InProgress, 2),
        ),
    ];
    assert!(i3_terminal_tasks_never_regress_in(&regressed).is_err());

    let failed = state(WorkflowStatus::Failed, TaskStatus::Failed, 1);
    let resumed = [
        entry(None, false, failed.clone()),
        entry(
            Some(AdminInput::Resume.into()),
            false,
            state(WorkflowStatus::Running, TaskStatus::Failed, 2),
        ),
    ];
    assert!(i5_only_retry_leaves_terminal_in(&resumed).is_err());
    let retried = [
        entry(None, false, failed),
        entry(
            Some(AdminInput::Retry.into()),
            true,
            state(WorkflowStatus::Running, TaskStatus::Failed, 2),
        ),
    ];
    assert!(i5_only_retry_leaves_terminal_in(&retried).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Defects found while writing these properties, kept as reproducers. Ignored until src/ is fixed;
// run them with `cargo test --test properties -- --ignored`.
// ---------------------------------------------------------------------------------------------

/// Runs `f`, turning a panic into `None` (debug builds panic on integer overflow).
fn without_panic<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Option<T> {
    std::panic::catch_unwind(f).ok()
}

/// I4 at the top of the version range: a workflow at version `u64::MAX` cannot take a change
/// that raises the version by one, so the input must be refused and change nothing. Today the
/// version must not wrap (a wrapped version would re-validate every stale compare-and-swap token
/// read at version 0): the input is refused with `VersionExhausted`. (Found by this suite: it
/// used to overflow in `StepBuilder::finish`.)
#[test]
fn i4_version_never_wraps() {
    let workflow = Workflow::from_parts(WORKFLOW, WorkflowStatus::Running, u64::MAX, Vec::new())
        .expect("no tasks");
    let result = without_panic(|| {
        let mut workflow = workflow.clone();
        let result = workflow.advance(&AdminInput::Pause.into()).map(drop);
        (result, workflow)
    });
    let Some((result, after)) = result else {
        panic!("I4: pause at version u64::MAX panicked");
    };
    assert!(result.is_err(), "I4: the version cannot rise past u64::MAX");
    assert_eq!(after, workflow, "I4: a refused input changes nothing");
}

/// SPEC section 4 ("retry count + 1"): a new attempt of an attempt whose retry count is
/// `u32::MAX` cannot be made, so admin retry and engine reschedule must refuse it
/// (`RetryCountExhausted`). (Found by this suite: retry used to overflow and reschedule to
/// saturate.)
#[test]
fn retry_adds_retry_count_plus_one_or_refuses() {
    let failed = |status| {
        let task = Task {
            id: "a".into(),
            reference_name: "a".into(),
            status: TaskStatus::Failed,
            retry_count: u32::MAX,
            iteration: 0,
            optional: false,
        };
        Workflow::from_parts(WORKFLOW, status, 1, vec![task]).expect("one task")
    };
    let retry = failed(WorkflowStatus::Failed);
    let retried = without_panic(|| transition(&retry, &AdminInput::Retry.into()).map(drop));
    assert!(
        matches!(retried, Some(Err(_))),
        "admin retry at retry count u32::MAX must be refused, got {retried:?}"
    );
    let running = failed(WorkflowStatus::Running);
    let reschedule = EngineInput::Reschedule {
        failed: "a".into(),
        task: "b".into(),
    };
    let rescheduled = without_panic(|| transition(&running, &reschedule.into()).map(drop));
    assert!(
        matches!(rescheduled, Some(Err(_))),
        "reschedule at retry count u32::MAX must be refused, got {rescheduled:?}"
    );
}

/// I1 through `Workflow::apply`, whose doc promises that "an applied step succeeds only on the
/// exact state it was computed from" and that a step of another workflow is `ForeignStep`: a
/// terminate computed from a workflow without live tasks must not apply to another workflow at
/// the same version that has one. (Found by this suite: `Step` did not carry the workflow id.)
#[test]
fn i1_a_step_of_another_workflow_is_refused() {
    let computed_on =
        Workflow::from_parts("x", WorkflowStatus::Running, 5, Vec::new()).expect("no tasks");
    let live = Task {
        id: "live".into(),
        reference_name: "live".into(),
        status: TaskStatus::InProgress,
        retry_count: 0,
        iteration: 0,
        optional: false,
    };
    let other =
        Workflow::from_parts("y", WorkflowStatus::Running, 5, vec![live]).expect("one task");
    let step = transition(&computed_on, &AdminInput::Terminate.into()).expect("terminate");
    let applied = without_panic(|| {
        let mut other = other.clone();
        (other.apply(&step), other)
    });
    let Some((result, after)) = applied else {
        panic!("I1: applying another workflow's step panicked (debug_check_step)");
    };
    assert_eq!(result, Err(Rejection::ForeignStep));
    assert_eq!(after, other, "a refused apply changes nothing");
}
