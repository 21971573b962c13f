//! Target `runtime_ops`: single-threaded operation sequences against the runtime
//! ([`Engine`] over [`InMemoryStore`], the reference decider) on a few workflow ids, some never
//! started, with an effect handler that fails on demand and a logical clock the case moves.
//!
//! Checked after every operation, on every workflow (read under its lock with
//! [`Engine::inspect`]):
//! - nothing panics; an operation that returns an error changed nothing: no workflow, no
//!   decider-queue entry (`UnknownWorkflow`, `WorkflowExists`, rejections);
//! - each workflow's version rose by exactly the number of steps the operation reports it
//!   committed (the returned [`Applied`] or [`Sweep::Applied`] step, or the start a poll made),
//!   and a workflow with none is unchanged;
//! - I1–I3 hold on every state ([`check`]), I3–I5 on every committed pair ([`check_pair`]), and
//!   I6a / I6b on every inspection ([`Inspection::queue_violation`]): one thread, so nothing is
//!   ever in flight when the case looks;
//! - the outbox performs only effects some committed step owed (I7), and a failing handler
//!   changes no status.
//!
//! At the end the failures stop, the clock passes every claim, and the outbox is run until it is
//! empty: every post-commit effect owed by a committed step must have been performed (I7).

use std::collections::{BTreeMap, HashSet};

use arbitrary::Arbitrary;
use wfstate::runtime::{
    Applied, Engine, EngineConfig, EngineError, InMemoryStore, Inspection, OutboxEntry, Store,
    Sweep,
};
use wfstate::{
    check, check_pair, transition, AdminInput, Definition, Effect, EngineInput, Input, Phase,
    Report, ReportStatus, Step, WorkflowId,
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
}

/// What a case did: the replay test checks that the committed seeds reach every kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Steps committed.
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
    }
}

/// An owed effect: the workflow, the version whose commit owed it, the effect.
type Owed = (WorkflowId, u64, Effect);

struct Replay {
    engine: Engine<InMemoryStore, Definition>,
    ids: Vec<WorkflowId>,
    now_ms: u64,
    /// Reports sent, for redelivery.
    sent: Vec<(WorkflowId, Report)>,
    owed: HashSet<Owed>,
    performed: HashSet<Owed>,
    /// Workflows an `Op::Act` changed.
    acted: HashSet<WorkflowId>,
    stats: Stats,
}

/// What an operation says it did.
struct Outcome {
    /// Did it return an error?
    failed: bool,
    /// The steps it committed, by workflow.
    committed: Vec<(WorkflowId, Step)>,
    /// The workflow it created.
    started: Option<WorkflowId>,
}

/// Replays `case`, panicking on any broken rule (see the module documentation).
pub fn run(case: &Case) -> Stats {
    let mut replay = Replay {
        engine: Engine::with_config(InMemoryStore::new(), definition(), EngineConfig::default()),
        ids: (0..WORKFLOWS)
            .map(|index| WorkflowId::new(format!("w{index}")))
            .collect(),
        now_ms: 0,
        sent: Vec::new(),
        owed: HashSet::new(),
        performed: HashSet::new(),
        acted: HashSet::new(),
        stats: Stats::default(),
    };
    for op in case.ops.iter().take(MAX_OPS) {
        let before = replay.inspect_all();
        let outcome = replay.op(op, &before);
        let after = replay.inspect_all();
        replay.judge(op, &outcome, &before, &after);
    }
    replay.drain();
    replay.stats
}

impl Replay {
    fn id(&self, index: u8) -> WorkflowId {
        self.ids[usize::from(index) % self.ids.len()].clone()
    }

    /// Every workflow that exists, read under its lock.
    fn inspect_all(&self) -> BTreeMap<WorkflowId, Inspection> {
        let mut all = BTreeMap::new();
        for id in &self.ids {
            match self.engine.inspect(id, self.now_ms) {
                Ok(inspection) => {
                    all.insert(id.clone(), inspection);
                }
                Err(EngineError::UnknownWorkflow { .. }) => {}
                Err(error) => panic!("inspect {id} with one thread: {error}"),
            }
        }
        all
    }

    /// Performs `op`; `before` is every workflow as it is now, read under its lock.
    fn op(&mut self, op: &Op, before: &BTreeMap<WorkflowId, Inspection>) -> Outcome {
        let mut outcome = Outcome {
            failed: false,
            committed: Vec::new(),
            started: None,
        };
        let now = self.now_ms;
        match op {
            Op::Start(index) => {
                let id = self.id(*index);
                match self.engine.start(id.clone(), now) {
                    Ok(()) => outcome.started = Some(id),
                    Err(error) => {
                        assert!(
                            matches!(error, EngineError::WorkflowExists { .. }),
                            "{error}"
                        );
                        outcome.failed = true;
                    }
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
                self.sent.push((id.clone(), report.clone()));
                let result = self.engine.report(&id, report, now);
                self.applied(&mut outcome, &id, result);
            }
            Op::Redeliver(index) => {
                if self.sent.is_empty() {
                    return outcome;
                }
                let (id, report) = self.sent[usize::from(*index) % self.sent.len()].clone();
                let result = self.engine.report(&id, report, now);
                self.applied(&mut outcome, &id, result);
            }
            Op::Poll(reference) => {
                let name = REFERENCES
                    .get(usize::from(*reference) % (REFERENCES.len() + 1))
                    .copied()
                    .unwrap_or("no-such-queue");
                // The start a poll commits is not returned: recompute it from the state before.
                match self.engine.poll_task(name) {
                    Ok(Some(polled)) => {
                        assert_eq!(polled.reference_name, name);
                        let state = &before
                            .get(&polled.workflow)
                            .expect("a polled task's workflow exists")
                            .workflow;
                        let start = Input::Engine(EngineInput::Start {
                            task: polled.task.clone(),
                        });
                        let step = transition(state, &start).expect("the poll's start is legal");
                        assert!(step.is_applied(), "a poll hands out a SCHEDULED attempt");
                        outcome.committed.push((polled.workflow, step));
                    }
                    Ok(None) => {}
                    Err(error) => panic!("poll {name} with one thread: {error}"),
                }
            }
            Op::Admin { workflow, input } => {
                let id = self.id(*workflow);
                let result = self.engine.admin(&id, *input, now);
                self.applied(&mut outcome, &id, result);
            }
            Op::Act { workflow, input } => {
                let id = self.id(*workflow);
                let input = match before.get(&id) {
                    Some(inspection) => input.resolve(&inspection.workflow),
                    None => EngineInput::Complete,
                };
                let result = self.engine.act(&id, input, now);
                if matches!(&result, Ok(applied) if applied.step.is_applied()) {
                    self.acted.insert(id.clone());
                }
                self.applied(&mut outcome, &id, result);
            }
            Op::Sweep => match self.engine.sweep_once(now) {
                Ok(Sweep::Applied { id, step, .. }) => {
                    self.stats.decisions += 1;
                    outcome.committed.push((id, step));
                }
                Ok(Sweep::Empty | Sweep::Waiting { .. } | Sweep::Dequeued { .. }) => {}
                Ok(other) => panic!("a sweep with one thread and known ids: {other:?}"),
                // The reference decider only knows states of its own making: after an engine
                // input of the case's own (`Op::Act`) it may propose one the core refuses. The
                // refusal changes no workflow (checked in `judge`); anywhere else it is a bug.
                Err(EngineError::Rejected { id, rejection }) => {
                    assert!(
                        self.acted.contains(&id),
                        "the reference decider was refused on {id}: {rejection}"
                    );
                    self.stats.refusals += 1;
                }
                Err(error) => panic!("a sweep with one thread: {error}"),
            },
            Op::Outbox { failures, max } => self.outbox(*failures, usize::from(*max)),
            Op::Tick(delta) => self.now_ms += u64::from(*delta),
        }
        outcome
    }

    /// Records what a report, admin or act call returned.
    fn applied(
        &mut self,
        outcome: &mut Outcome,
        id: &WorkflowId,
        result: Result<Applied, EngineError>,
    ) {
        match result {
            Ok(applied) => {
                assert_eq!(applied.conflicts, 0, "a conflict with one thread");
                if applied.step.is_applied() {
                    outcome.committed.push((id.clone(), applied.step));
                }
            }
            Err(error) => {
                assert!(
                    matches!(
                        error,
                        EngineError::UnknownWorkflow { .. } | EngineError::Rejected { .. }
                    ),
                    "with one thread only bad input fails: {error}"
                );
                assert!(!error.to_string().is_empty());
                outcome.failed = true;
            }
        }
    }

    fn outbox(&mut self, failures: u8, max: usize) {
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
    }

    fn judge(
        &mut self,
        op: &Op,
        outcome: &Outcome,
        before: &BTreeMap<WorkflowId, Inspection>,
        after: &BTreeMap<WorkflowId, Inspection>,
    ) {
        if outcome.failed {
            self.stats.errors += 1;
            assert_eq!(before, after, "{op:?} failed but changed the store");
        }
        for (id, now) in after {
            let violations = check(&now.workflow);
            assert!(violations.is_empty(), "{op:?}: {id} breaks {violations:?}");
            if let Some(invariant) = now.queue_violation() {
                panic!("{op:?}: {id} breaks {invariant:?} with nothing in flight: {now:?}");
            }
            let steps: Vec<&Step> = outcome
                .committed
                .iter()
                .filter(|(committed, _)| committed == id)
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
                    let pair = check_pair(old, new, step.through_retry());
                    assert!(pair.is_empty(), "{op:?}: {id} broke {pair:?}");
                }
                _ => panic!("{op:?} committed {} steps on {id}", steps.len()),
            }
        }
        assert!(after.len() >= before.len(), "a workflow disappeared");
        for (id, step) in &outcome.committed {
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

    /// The failures stop: every owed effect must be performed.
    fn drain(&mut self) {
        let claim = self.engine.config().outbox_claim_ms;
        for _ in 0..64 {
            if self.engine.store().outbox_len() == 0 {
                break;
            }
            self.now_ms += claim + 1;
            self.outbox(0, 1024);
        }
        assert_eq!(
            self.engine.store().outbox_len(),
            0,
            "the outbox never drained"
        );
        let missing: Vec<_> = self.owed.difference(&self.performed).collect();
        assert!(
            missing.is_empty(),
            "owed but never performed (I7): {missing:?}"
        );
        for id in &self.ids {
            if let Ok(inspection) = self.engine.inspect(id, self.now_ms) {
                if inspection.workflow.status().is_terminal() {
                    self.stats.terminal += 1;
                }
            }
        }
    }
}
