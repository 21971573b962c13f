//! Target `runtime_ops`: single-threaded operation sequences against the runtime ([`Engine`]
//! driving the operation machines over [`InMemoryStore`], the reference decider) on a few
//! workflow ids, some never started, with an effect handler that fails on demand, a store that
//! fails calls on demand, and a logical clock the case moves.
//!
//! The store is wrapped ([`FaultyStore`]): an [`Op::Fail`] arms one failure for a later call of
//! the operations that follow: [`Fault::NotDone`] (the call does not happen), [`Fault::LostReply`]
//! (it happens, its reply is lost: an ambiguous failure) or [`Fault::Unanswered`] (it does not
//! happen, and the caller is told it may have). The wrapper records every commit that took
//! effect, whether or not its reply arrived: the ground truth the checks compare with.
//!
//! Checked after every operation, on every workflow (read under its lock with
//! [`Engine::inspect`]; from the store directly while a lease left by a failed release holds the
//! lock, which is the same view with one thread):
//! - nothing panics; an operation that returns an error other than a store failure changed
//!   nothing: no workflow, no queue entry, no outbox entry (`UnknownWorkflow`, `WorkflowExists`,
//!   rejections, `Locked`); a store failure is returned only when a fault fired in the operation;
//!   `Locked` and `Sweep::Busy` only while a lease left by a failed release is still valid;
//! - each workflow's version rose by exactly the number of commits that took effect in the
//!   operation (at most one), that commit is the transition of the operation's own input on the
//!   state before (the decider's for a sweep, a start for a poll), and it is what the operation
//!   returned when it succeeded; a workflow with none is unchanged;
//! - I1–I3 hold on every state ([`check`]), I3–I5 on every committed pair ([`check_pair`]), and
//!   I6a / I6b on every inspection ([`Inspection::queue_violation`]): one thread, so nothing is
//!   in flight when the case looks, failures or not (nothing is lost at rest); every live attempt
//!   waits in its task queue;
//! - the outbox performs only effects some committed step owed (I7), and a failing handler
//!   changes no status.
//!
//! At the end the failures stop and the clock passes every lease, hidden entry and claim: sweeps
//! run until the decider queue has nothing due, and every workflow RUNNING at that point must be
//! swept at least once (no lost wake-up); then the outbox runs until it is empty, and every
//! post-commit effect owed by a commit that took effect must have been performed (I7).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arbitrary::Arbitrary;
use wfstate::runtime::{
    AdminError, Applied, Call, CallFailed, CommitReply, Engine, EngineConfig, InMemoryStore,
    InspectError, Inspection, OutboxEntry, Reply, ReportError, StartError, Store, StoreFailure,
    StoreState, Sweep, SweepError,
};
use wfstate::{
    check, check_pair, decide, transition, AdminInput, Definition, Effect, EngineInput, Input,
    Phase, Report, ReportStatus, Step, TaskStatus, Workflow, WorkflowId,
};

use crate::pick::{report, EnginePick, TaskPick, REFERENCES};
use crate::step_sequence::definition;

/// Operations replayed per case at most.
pub const MAX_OPS: usize = 256;
/// Workflow ids a case can name; the last one is never started by the seeds, but may be.
pub const WORKFLOWS: usize = 4;

/// One fuzz case.
#[derive(Debug, Arbitrary)]
pub struct Case {
    /// The operations, in order.
    pub ops: Vec<Op>,
}

/// One runtime operation. Workflows are named by index modulo [`WORKFLOWS`].
#[derive(Debug, Arbitrary)]
pub enum Op {
    /// [`Engine::start`] (again on an id in use: `WorkflowExists`).
    Start(u8),
    /// [`Engine::report`] on an attempt of the workflow.
    Report {
        /// The workflow.
        workflow: u8,
        /// The attempt.
        task: TaskPick,
        /// What the worker says.
        status: ReportStatus,
    },
    /// A report sent before, again: a duplicate or a late delivery.
    Redeliver(u16),
    /// [`Engine::poll_task`] on one of the task queues (or one that does not exist).
    Poll(u8),
    /// [`Engine::admin`]: terminate, pause, resume, retry.
    Admin {
        /// The workflow.
        workflow: u8,
        /// The input.
        input: AdminInput,
    },
    /// [`Engine::act`]: an engine input of the caller's own.
    Act {
        /// The workflow.
        workflow: u8,
        /// The input.
        input: EnginePick,
    },
    /// [`Engine::sweep_once`].
    Sweep,
    /// [`Engine::run_outbox`], failing the entries whose bit is set in `failures`.
    Outbox {
        /// Bit `i` set: the `i`-th entry of this run fails (entries past the eighth succeed).
        failures: u8,
        /// Entries taken at most.
        max: u8,
    },
    /// The clock moves on by this many milliseconds.
    Tick(u16),
    /// Arms a store failure: the store lets `after % 8` calls of the following operations
    /// through, then fails the next one with `fault`. Replaces a failure armed before that has
    /// not fired.
    Fail {
        /// Calls let through first.
        after: u8,
        /// How the call fails.
        fault: Fault,
    },
}

/// How [`FaultyStore`] fails a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Fault {
    /// [`StoreFailure::NotDone`]: the call did not happen.
    NotDone,
    /// [`StoreFailure::Ambiguous`] after forwarding the call: it happened, its reply is lost.
    LostReply,
    /// [`StoreFailure::Ambiguous`] without forwarding: it did not happen, but the caller cannot
    /// know.
    Unanswered,
}

/// What a case did: the replay test checks that the committed seeds reach every kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Commits that took effect.
    pub committed: u64,
    /// Operations that returned an error.
    pub errors: u64,
    /// Sweeps that committed a decision.
    pub decisions: u64,
    /// Effects the handler failed.
    pub handler_failures: u64,
    /// Post-commit effects owed (and, at the end, performed).
    pub effects: u64,
    /// Sweeps whose decision the core refused, after an `Op::Act` of the case's own.
    pub refusals: u64,
    /// Workflows that ended terminal.
    pub terminal: u64,
    /// Store calls failed on purpose (any [`Fault`]).
    pub store_failures: u64,
    /// Calls that took effect but whose reply was lost ([`Fault::LostReply`]).
    pub lost_replies: u64,
    /// Commits that took effect with their reply lost: the operation returned an error.
    pub lost_commits: u64,
    /// Operations refused (`Locked`, `Busy`) by a lease a failed release left behind.
    pub leftover_leases: u64,
}

impl Stats {
    /// Adds another case's counts.
    pub fn add(&mut self, other: Stats) {
        self.committed += other.committed;
        self.errors += other.errors;
        self.decisions += other.decisions;
        self.handler_failures += other.handler_failures;
        self.effects += other.effects;
        self.refusals += other.refusals;
        self.terminal += other.terminal;
        self.store_failures += other.store_failures;
        self.lost_replies += other.lost_replies;
        self.lost_commits += other.lost_commits;
        self.leftover_leases += other.leftover_leases;
    }
}

// ---------------------------------------------------------------------------------------------
// The store that fails on demand.
// ---------------------------------------------------------------------------------------------

/// What [`FaultyStore`] saw.
#[derive(Debug, Default)]
struct Ledger {
    /// The armed failure: calls still let through, then the fault.
    armed: Option<(u8, Fault)>,
    /// Commits that took effect, whether or not their reply arrived, oldest first.
    commits: Vec<(WorkflowId, Step)>,
    /// Faults that fired.
    fired: u64,
    /// Lost replies (the call took effect).
    lost: u64,
    /// Commits among them.
    lost_commits: u64,
}

/// [`InMemoryStore`] with failures on demand. The failures are armed by the case and fire only
/// while `live` is set (during the case's operations, never during the checks' inspections).
#[derive(Debug, Default)]
pub struct FaultyStore {
    inner: InMemoryStore,
    live: AtomicBool,
    ledger: Mutex<Ledger>,
}

impl FaultyStore {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The fault for this call, if one is due.
    fn fault(&self) -> Option<Fault> {
        if !self.live.load(Ordering::Relaxed) {
            return None;
        }
        let mut ledger = self.ledger();
        let (after, fault) = ledger.armed?;
        if after > 0 {
            ledger.armed = Some((after - 1, fault));
            return None;
        }
        ledger.armed = None;
        ledger.fired += 1;
        Some(fault)
    }

    fn record(&self, call: &Call<'_>, reply: &Reply) {
        if let (Call::Commit { id, step, .. }, Reply::Committed(CommitReply::Done(receipt))) =
            (call, reply)
        {
            assert_eq!(receipt.version, step.new_version(), "a receipt's version");
            self.ledger().commits.push(((*id).clone(), (*step).clone()));
        }
    }
}

impl Store for FaultyStore {
    fn call(&self, call: Call<'_>) -> Result<Reply, StoreFailure> {
        let fault = self.fault();
        if matches!(fault, Some(Fault::NotDone)) {
            return Err(StoreFailure::not_done("the case fails this call"));
        }
        if matches!(fault, Some(Fault::Unanswered)) {
            return Err(StoreFailure::ambiguous("the case drops this call"));
        }
        let reply = self.inner.call(call)?;
        self.record(&call, &reply);
        if matches!(fault, Some(Fault::LostReply)) {
            let mut ledger = self.ledger();
            ledger.lost += 1;
            if matches!(reply, Reply::Committed(CommitReply::Done(_))) {
                ledger.lost_commits += 1;
            }
            return Err(StoreFailure::ambiguous("the case loses this reply"));
        }
        Ok(reply)
    }
}

// ---------------------------------------------------------------------------------------------
// The replay.
// ---------------------------------------------------------------------------------------------

/// An owed effect: the workflow, the version whose commit owed it, the effect.
type Owed = (WorkflowId, u64, Effect);

/// Everything the checks compare before and after an operation, leases aside (an inspection
/// takes an expired lease over and releases it, so the leases are not the operation's own).
#[derive(Debug, PartialEq, Eq)]
struct View {
    workflows: BTreeMap<WorkflowId, (Arc<Workflow>, Option<u64>)>,
    tasks: usize,
    owed: Vec<Owed>,
}

impl View {
    fn of(state: &StoreState) -> View {
        let workflows = state
            .workflows()
            .map(|workflow| {
                let id = workflow.id().clone();
                let due = state.decider_due(&id);
                (id, (workflow.clone(), due))
            })
            .collect();
        let owed = state
            .owed()
            .map(|(id, version, effect)| (id.clone(), version, effect.clone()))
            .collect();
        View {
            workflows,
            tasks: state.task_len(),
            owed,
        }
    }
}

struct Replay {
    engine: Engine<FaultyStore, Definition>,
    decider: Definition,
    ids: Vec<WorkflowId>,
    now_ms: u64,
    /// Reports sent, for redelivery.
    sent: Vec<(WorkflowId, Report)>,
    owed: HashSet<Owed>,
    performed: HashSet<Owed>,
    /// Workflows an `Op::Act` changed.
    acted: HashSet<WorkflowId>,
    /// Workflows the last sweep worked on (for the final wake-up check).
    swept: BTreeSet<WorkflowId>,
    /// The inspections and the store after the last operation: the next one's "before" (only
    /// the leases differ, which the inspections take and release).
    rest: Option<(BTreeMap<WorkflowId, Inspection>, StoreState)>,
    stats: Stats,
}

/// What an operation says it did.
#[derive(Debug, Default)]
struct Outcome {
    /// Did it return an error?
    failed: bool,
    /// Was that error a store failure?
    store_failed: bool,
    /// The step it says it committed, by workflow.
    returned: Option<(WorkflowId, Step)>,
    /// What it says it applied.
    input: Option<(WorkflowId, Input)>,
    /// The workflow it created.
    started: Option<WorkflowId>,
    /// Refused by a leftover lease.
    locked_out: bool,
}

/// Replays `case`, panicking on any broken rule (see the module documentation).
pub fn run(case: &Case) -> Stats {
    let decider = definition();
    let mut replay = Replay {
        engine: Engine::with_config(
            FaultyStore::default(),
            decider.clone(),
            EngineConfig::default(),
        ),
        decider,
        ids: (0..WORKFLOWS)
            .map(|index| WorkflowId::new(format!("w{index}")))
            .collect(),
        now_ms: 0,
        sent: Vec::new(),
        owed: HashSet::new(),
        performed: HashSet::new(),
        acted: HashSet::new(),
        swept: BTreeSet::new(),
        rest: None,
        stats: Stats::default(),
    };
    for op in case.ops.iter().take(MAX_OPS) {
        replay.step(op);
    }
    replay.drain();
    replay.stats
}

impl Replay {
    fn id(&self, index: u8) -> WorkflowId {
        self.ids[usize::from(index) % self.ids.len()].clone()
    }

    fn store(&self) -> &FaultyStore {
        self.engine.store()
    }

    /// One operation with every check around it.
    fn step(&mut self, op: &Op) {
        match op {
            // Neither touches the store.
            Op::Tick(delta) => {
                self.now_ms += u64::from(*delta);
                return;
            }
            Op::Fail { after, fault } => {
                self.store().ledger().armed = Some((after % 8, *fault));
                return;
            }
            _ => {}
        }
        let (before, state_before) = match self.rest.take() {
            Some(rest) => rest,
            None => (self.inspect_all(), self.store().inner.snapshot()),
        };
        let (fired, lost, lost_commits) = {
            let ledger = self.store().ledger();
            (ledger.fired, ledger.lost, ledger.lost_commits)
        };
        let first_commit = self.store().ledger().commits.len();
        self.store().live.store(true, Ordering::Relaxed);
        let outcome = self.op(op, &before, &state_before);
        self.store().live.store(false, Ordering::Relaxed);
        let state_after = self.store().inner.snapshot();
        let after = self.inspect_all();
        let (committed, fault_fired) = {
            let ledger = self.engine.store().ledger();
            let stats = &mut self.stats;
            stats.store_failures += ledger.fired - fired;
            stats.lost_replies += ledger.lost - lost;
            stats.lost_commits += ledger.lost_commits - lost_commits;
            (
                ledger.commits[first_commit..].to_vec(),
                ledger.fired > fired,
            )
        };
        // A failed call is never swallowed: the caller gets an error (SPEC 7.2), a store failure
        // only then. (An operation already refused for another reason reports that reason, even
        // if its release fails afterwards: the machines keep the first error.)
        assert!(
            !outcome.store_failed || fault_fired,
            "{op:?}: a store failure no fault caused"
        );
        assert!(
            outcome.failed || !fault_fired,
            "{op:?}: a failed store call, and the operation succeeded"
        );
        if outcome.locked_out {
            self.stats.leftover_leases += 1;
        }
        if outcome.failed && !outcome.store_failed && !matches!(op, Op::Sweep) {
            assert_eq!(
                View::of(&state_before),
                View::of(&state_after),
                "{op:?} failed but changed the store"
            );
        }
        self.judge(op, &outcome, &committed, &before, &after);
        self.at_rest(op, &state_after);
        self.rest = Some((after, state_after));
    }

    /// Every workflow that exists, read under its lock (or, while a lease left by a failed
    /// release holds it, from the store: one thread, so it is the same view).
    fn inspect_all(&self) -> BTreeMap<WorkflowId, Inspection> {
        let mut all = BTreeMap::new();
        for id in &self.ids {
            match self.engine.inspect(id, self.now_ms) {
                Ok(inspection) => {
                    all.insert(id.clone(), inspection);
                }
                Err(InspectError::UnknownWorkflow { .. }) => {}
                Err(InspectError::Locked { .. }) => {
                    let inspection = self.store().inner.read(|state| {
                        let lease = state.lease(id).expect("a lease holds the lock");
                        assert!(lease.is_valid_at(self.now_ms));
                        // A lease on an id that was never started: a failed admin's release.
                        let workflow = state.workflow(id)?;
                        Some(Inspection {
                            workflow: workflow.clone(),
                            due_ms: state.decider_due(id),
                        })
                    });
                    if let Some(inspection) = inspection {
                        all.insert(id.clone(), inspection);
                    }
                }
                Err(error) => panic!("inspect {id} with one thread: {error}"),
            }
        }
        all
    }

    /// Is a lease left by a failed release still valid on `id`?
    fn leftover(state: &StoreState, id: &WorkflowId, now_ms: u64) -> bool {
        state
            .lease(id)
            .is_some_and(|lease| lease.is_valid_at(now_ms))
    }

    /// Performs `op`; `before` is every workflow as it is now, read under its lock.
    fn op(
        &mut self,
        op: &Op,
        before: &BTreeMap<WorkflowId, Inspection>,
        state: &StoreState,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let now = self.now_ms;
        match op {
            Op::Start(index) => {
                let id = self.id(*index);
                match self.engine.start(id.clone(), now) {
                    Ok(()) => outcome.started = Some(id),
                    Err(StartError::WorkflowExists { .. }) => {
                        assert!(before.contains_key(&id), "{id} exists only now");
                        outcome.failed = true;
                    }
                    Err(StartError::Store(failed)) => {
                        self.store_failed(&mut outcome, &failed);
                        outcome.started = Some(id);
                    }
                    Err(error) => panic!("start: {error}"),
                }
            }
            Op::Report {
                workflow,
                task,
                status,
            } => {
                let id = self.id(*workflow);
                let report = match before.get(&id) {
                    Some(inspection) => report(task, *status, &inspection.workflow),
                    None => Report::new(format!("{id}:unknown"), *status),
                };
                self.send(&mut outcome, id, report);
            }
            Op::Redeliver(index) => {
                if self.sent.is_empty() {
                    return outcome;
                }
                let (id, report) = self.sent[usize::from(*index) % self.sent.len()].clone();
                self.send(&mut outcome, id, report);
            }
            Op::Poll(reference) => self.poll(&mut outcome, *reference, before),
            Op::Admin { workflow, input } => {
                let id = self.id(*workflow);
                let result = self.engine.admin(&id, *input, now);
                outcome.input = Some((id.clone(), Input::Admin(*input)));
                self.applied(&mut outcome, &id, result, state);
            }
            Op::Act { workflow, input } => {
                let id = self.id(*workflow);
                let input = match before.get(&id) {
                    Some(inspection) => input.resolve(&inspection.workflow),
                    None => EngineInput::Complete,
                };
                outcome.input = Some((id.clone(), Input::Engine(input.clone())));
                let result = self.engine.act(&id, input, now);
                if matches!(&result, Ok(applied) if applied.step.is_applied()) {
                    self.acted.insert(id.clone());
                }
                self.applied(&mut outcome, &id, result, state);
            }
            Op::Sweep => self.sweep(&mut outcome, state),
            Op::Outbox { failures, max } => self.outbox(&mut outcome, *failures, usize::from(*max)),
            Op::Tick(_) | Op::Fail { .. } => unreachable!("handled in `step`"),
        }
        outcome
    }

    fn store_failed(&self, outcome: &mut Outcome, failed: &CallFailed) {
        assert!(!failed.to_string().is_empty());
        outcome.failed = true;
        outcome.store_failed = true;
    }

    /// A report, recorded for redelivery.
    fn send(&mut self, outcome: &mut Outcome, id: WorkflowId, report: Report) {
        self.sent.push((id.clone(), report.clone()));
        outcome.input = Some((id.clone(), Input::Report(report.clone())));
        match self.engine.report(&id, report, self.now_ms) {
            Ok(applied) => self.accepted(outcome, &id, applied),
            Err(ReportError::Store(failed)) => self.store_failed(outcome, &failed),
            Err(error @ (ReportError::UnknownWorkflow { .. } | ReportError::Rejected { .. })) => {
                assert!(!error.to_string().is_empty());
                outcome.failed = true;
            }
            Err(error) => panic!("with one thread only bad input fails a report: {error}"),
        }
    }

    fn accepted(&mut self, outcome: &mut Outcome, id: &WorkflowId, applied: Applied) {
        assert_eq!(applied.conflicts, 0, "a conflict with one thread");
        if applied.step.is_applied() {
            outcome.returned = Some((id.clone(), applied.step));
        }
    }

    /// Records what an admin or act call returned.
    fn applied(
        &mut self,
        outcome: &mut Outcome,
        id: &WorkflowId,
        result: Result<Applied, AdminError>,
        state: &StoreState,
    ) {
        match result {
            Ok(applied) => self.accepted(outcome, id, applied),
            Err(AdminError::Store(failed)) => self.store_failed(outcome, &failed),
            Err(AdminError::Locked { .. }) => {
                assert!(
                    Replay::leftover(state, id, self.now_ms),
                    "{id} locked with one thread and no leftover lease"
                );
                outcome.failed = true;
                outcome.locked_out = true;
            }
            Err(error @ (AdminError::UnknownWorkflow { .. } | AdminError::Rejected { .. })) => {
                assert!(!error.to_string().is_empty());
                outcome.failed = true;
            }
            Err(error) => panic!("with one thread only bad input fails: {error}"),
        }
    }

    fn poll(
        &mut self,
        outcome: &mut Outcome,
        reference: u8,
        before: &BTreeMap<WorkflowId, Inspection>,
    ) {
        let name = REFERENCES
            .get(usize::from(reference) % (REFERENCES.len() + 1))
            .copied()
            .unwrap_or("no-such-queue");
        match self.engine.poll_task(name, self.now_ms) {
            Ok(Some(polled)) => {
                assert_eq!(&*polled.reference_name, name);
                let state = &before
                    .get(&polled.workflow)
                    .expect("a polled task's workflow exists")
                    .workflow;
                let status = state.task(&polled.task).map(|task| task.status);
                if polled.redelivered {
                    // Its visibility lease ran out while it was IN_PROGRESS: nothing committed.
                    assert_eq!(status, Some(TaskStatus::InProgress));
                } else {
                    assert_eq!(
                        status,
                        Some(TaskStatus::Scheduled),
                        "a poll starts a SCHEDULED one"
                    );
                    let start = Input::Engine(EngineInput::Start { task: polled.task });
                    outcome.input = Some((polled.workflow.clone(), start));
                }
            }
            Ok(None) => {}
            Err(wfstate::runtime::PollError::Store(failed)) => self.store_failed(outcome, &failed),
            Err(error) => panic!("poll {name} with one thread: {error}"),
        }
    }

    fn sweep(&mut self, outcome: &mut Outcome, state: &StoreState) {
        match self.engine.sweep_once(self.now_ms) {
            Ok(Sweep::Applied { id, step, .. }) => {
                self.stats.decisions += 1;
                self.swept.insert(id.clone());
                outcome.returned = Some((id, step));
            }
            Ok(Sweep::Empty) => {}
            Ok(Sweep::Waiting { id, .. } | Sweep::Dequeued { id, .. }) => {
                self.swept.insert(id);
            }
            Ok(Sweep::Busy { id }) => {
                assert!(
                    Replay::leftover(state, &id, self.now_ms),
                    "{id} busy with one thread and no leftover lease"
                );
                outcome.locked_out = true;
            }
            Ok(other) => panic!("a sweep with one thread and known ids: {other:?}"),
            // The reference decider only knows states of its own making: after an engine
            // input of the case's own (`Op::Act`) it may propose one the core refuses. The
            // refusal changes no workflow (checked in `judge`); anywhere else it is a bug.
            Err(SweepError::Rejected { id, rejection }) => {
                assert!(
                    self.acted.contains(&id),
                    "the reference decider was refused on {id}: {rejection}"
                );
                self.swept.insert(id);
                self.stats.refusals += 1;
                outcome.failed = true;
            }
            Err(SweepError::Store(failed)) => self.store_failed(outcome, &failed),
            Err(error) => panic!("a sweep with one thread: {error}"),
        }
    }

    fn outbox(&mut self, outcome: &mut Outcome, failures: u8, max: usize) {
        let owed = &self.owed;
        let performed = &mut self.performed;
        let mut index = 0u32;
        let mut handler = |entry: &OutboxEntry| -> Result<(), &'static str> {
            let fail = index < 8 && failures & (1 << index) != 0;
            index += 1;
            if fail {
                return Err("the handler fails on demand");
            }
            let key = (entry.workflow.clone(), entry.version, entry.effect.clone());
            assert!(
                owed.contains(&key),
                "performed an effect no commit owed: {entry:?}"
            );
            performed.insert(key);
            Ok(())
        };
        let run = self.engine.run_outbox(&mut handler, self.now_ms, max);
        assert!(run.performed + run.failures.len() <= max);
        self.stats.handler_failures += run.failures.len() as u64;
        if let Some(failed) = &run.store_failure {
            self.store_failed(outcome, failed);
        }
    }

    /// The steps the operation may have committed on `old` with no other writer: its own
    /// input's, the decider's for a sweep, the start of a SCHEDULED attempt of the polled queue
    /// for a poll whose reply was lost.
    fn candidates(&self, op: &Op, outcome: &Outcome, id: &WorkflowId, old: &Workflow) -> Vec<Step> {
        let inputs: Vec<Input> = match (&outcome.input, op) {
            (Some((on, input)), _) if on == id => vec![input.clone()],
            (_, Op::Sweep) => match decide(old, &self.decider) {
                wfstate::Decision::Act(input) => vec![Input::Engine(input)],
                decision => panic!("{op:?} committed on {id} but the decider says {decision:?}"),
            },
            (_, Op::Poll(_)) => old
                .tasks()
                .iter()
                .filter(|task| task.status == TaskStatus::Scheduled)
                .map(|task| {
                    Input::Engine(EngineInput::Start {
                        task: task.id.clone(),
                    })
                })
                .collect(),
            _ => panic!("{op:?} committed on {id}, which it does not write"),
        };
        inputs
            .iter()
            .filter_map(|input| transition(old, input).ok())
            .collect()
    }

    fn judge(
        &mut self,
        op: &Op,
        outcome: &Outcome,
        committed: &[(WorkflowId, Step)],
        before: &BTreeMap<WorkflowId, Inspection>,
        after: &BTreeMap<WorkflowId, Inspection>,
    ) {
        if outcome.failed {
            self.stats.errors += 1;
        }
        assert!(
            committed.len() <= 1,
            "{op:?} committed {} steps",
            committed.len()
        );
        if outcome.store_failed {
            // A commit may have taken effect, its reply (or a later call's) lost.
            assert!(outcome.returned.is_none());
        } else if let Op::Poll(_) = op {
            // A poll that handed out a SCHEDULED attempt committed its start; nothing else does.
            let started = usize::from(outcome.input.is_some());
            assert_eq!(committed.len(), started, "{op:?}: {committed:?}");
        } else {
            let returned: Vec<&(WorkflowId, Step)> = outcome.returned.iter().collect();
            let took: Vec<&(WorkflowId, Step)> = committed.iter().collect();
            assert_eq!(
                returned, took,
                "{op:?}: returned and committed steps differ"
            );
        }
        for (id, now) in after {
            let violations = check(&now.workflow);
            assert!(violations.is_empty(), "{op:?}: {id} breaks {violations:?}");
            if let Some(invariant) = now.queue_violation() {
                panic!("{op:?}: {id} breaks {invariant:?} with nothing in flight: {now:?}");
            }
            let steps: Vec<&Step> = committed
                .iter()
                .filter(|(on, _)| on == id)
                .map(|(_, step)| step)
                .collect();
            let Some(was) = before.get(id) else {
                assert_eq!(outcome.started.as_ref(), Some(id), "{op:?} created {id}");
                assert_eq!(now.workflow.version(), 0);
                assert!(now.is_queued(), "a started workflow is due");
                continue;
            };
            let (old, new) = (&was.workflow, &now.workflow);
            assert_eq!(
                new.version(),
                old.version() + steps.len() as u64,
                "{op:?}: {id} moved by other than its committed steps"
            );
            match steps.as_slice() {
                [] => assert!(
                    old.status() == new.status() && old.tasks() == new.tasks(),
                    "{op:?}: {id} changed without a commit"
                ),
                [step] => {
                    assert_eq!(step.new_version(), new.version());
                    assert!(
                        self.candidates(op, outcome, id, old).contains(step),
                        "{op:?}: {id} committed another step than its input's: {step:?}"
                    );
                    let mut rebuilt = Workflow::clone(old);
                    rebuilt.apply(step).expect("the committed step applies");
                    assert_eq!(&rebuilt, &**new, "{op:?}: {id} is not its step applied");
                    let pair = check_pair(old, new, step.through_retry());
                    assert!(pair.is_empty(), "{op:?}: {id} broke {pair:?}");
                }
                _ => unreachable!("at most one commit"),
            }
        }
        assert!(after.len() >= before.len(), "a workflow disappeared");
        for (id, step) in committed {
            self.stats.committed += 1;
            for effect in step.effects_in(Phase::PostCommit) {
                if self
                    .owed
                    .insert((id.clone(), step.new_version(), effect.clone()))
                {
                    self.stats.effects += 1;
                }
            }
        }
    }

    /// Nothing lost at rest: every live attempt waits in its task queue (I6 is checked on every
    /// inspection in `judge`).
    fn at_rest(&self, op: &Op, state: &StoreState) {
        for workflow in state.workflows() {
            for task in workflow.active_tasks() {
                assert!(
                    state.task_queued(workflow.id(), &task.id),
                    "{op:?}: {} attempt {} of {} is in no task queue",
                    task.status,
                    task.id,
                    workflow.id()
                );
            }
        }
    }

    /// The failures stop and time passes every lease and hidden entry: every RUNNING workflow
    /// is swept again (no lost wake-up), and every owed effect is performed (I7).
    fn drain(&mut self) {
        self.store().ledger().armed = None;
        let config = self.engine.config().clone();
        let horizon = [
            config.lease_ms,
            config.unack_ms,
            config.task_visibility_ms,
            config.outbox_claim_ms,
        ];
        self.now_ms += horizon.into_iter().max().unwrap_or(0) + 1;
        let running: BTreeSet<WorkflowId> = self.store().inner.read(|state| {
            state
                .workflows()
                .filter(|workflow| workflow.status() == wfstate::WorkflowStatus::Running)
                .map(|workflow| workflow.id().clone())
                .collect()
        });
        self.swept.clear();
        for _ in 0..8 * WORKFLOWS {
            let due = self.store().inner.read(|state| {
                state
                    .workflows()
                    .any(|workflow| state.decider_due(workflow.id()) <= Some(self.now_ms))
            });
            if !due {
                break;
            }
            self.step(&Op::Sweep);
        }
        let lost: Vec<&WorkflowId> = running.difference(&self.swept).collect();
        assert!(
            lost.is_empty(),
            "RUNNING but never swept again (I6a): {lost:?}"
        );

        let claim = config.outbox_claim_ms;
        for _ in 0..64 {
            if self.store().inner.outbox_len() == 0 {
                break;
            }
            self.now_ms += claim + 1;
            self.step(&Op::Outbox {
                failures: 0,
                max: u8::MAX,
            });
        }
        assert_eq!(
            self.store().inner.outbox_len(),
            0,
            "the outbox never drained"
        );
        let missing: Vec<_> = self.owed.difference(&self.performed).collect();
        assert!(
            missing.is_empty(),
            "owed but never performed (I7): {missing:?}"
        );
        for id in &self.ids {
            if let Some(workflow) = self.store().inner.workflow(id) {
                if workflow.status().is_terminal() {
                    self.stats.terminal += 1;
                }
            }
        }
    }
}
