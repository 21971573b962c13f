//! The engine: every operation an engine author needs, each driving the transition function
//! through the protocol of SPEC section 7:
//!
//! ```text
//! lock(workflow) → read (fresh, under the lock) → transition → compare-and-swap persist
//!   → queue effects → unlock → run post-commit effects from the outbox
//! ```
//!
//! Reports and polls skip the lock (as in Conductor): read, step, compare-and-swap, and on a stale
//! version read again, at most [`EngineConfig::max_attempts`] times. The version fences them; a
//! report on a task that became terminal meanwhile is a duplicate or a late rejection.

use std::sync::Arc;

use super::error::EngineError;
use super::lock::{LeaseHeld, LeaseToken, LockTable};
use super::outbox::{EffectHandler, OutboxFailure, OutboxRun};
use super::store::{InMemoryStore, Requeue, Store};
use super::sync::{AtomicU64, Ordering};
use crate::{
    decide, AdminInput, Decision, Definition, EngineInput, Input, Invariant, Report, Step, TaskId,
    Workflow, WorkflowId, WorkflowStatus,
};

/// What the sweeper asks for the next engine input of a workflow.
///
/// [`Definition`] (the reference linear decider, [`decide`]) and any `Fn(&Workflow) -> Decision`
/// are deciders. Return [`Decision::Idle`] only for a workflow that is not RUNNING: the sweeper
/// then removes it from the decider queue (an `Idle` RUNNING workflow is kept queued, I6a).
pub trait Decider {
    /// The next input for `workflow`, `Wait` while a task is live, `Idle` when not RUNNING.
    fn decide(&self, workflow: &Workflow) -> Decision;
}

impl Decider for Definition {
    fn decide(&self, workflow: &Workflow) -> Decision {
        decide(workflow, self)
    }
}

impl<F> Decider for F
where
    F: Fn(&Workflow) -> Decision,
{
    fn decide(&self, workflow: &Workflow) -> Decision {
        self(workflow)
    }
}

/// Protocol settings. All durations are in the caller's logical milliseconds (`now_ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineConfig {
    /// How long a workflow lock lasts (default 60,000). An operation that outlives its lease
    /// stays correct (its compare-and-swap fails if anyone committed since its read) but may
    /// leave a stale decider-queue entry (I6b).
    pub lease_ms: u64,
    /// When a sweep finds nothing to do (`Decision::Wait`), the workflow is due again this much
    /// later (default 30,000, Conductor's sweep offset), or earlier when a report ends a task.
    pub sweep_delay_ms: u64,
    /// A popped decider-queue entry stays hidden this long unless the sweep requeues or removes
    /// it first (default 60,000): a sweeper that dies after popping loses nothing.
    pub unack_ms: u64,
    /// A taken outbox entry stays claimed this long (default 10,000): an entry whose handler
    /// failed is retried after it.
    pub outbox_claim_ms: u64,
    /// Compare-and-swap attempts before an operation gives up with
    /// [`EngineError::Contention`] (default 16; at least 1).
    pub max_attempts: u32,
    /// Negative control for `tests/loom.rs` only (exists only under `--cfg wfstate_loom`): the
    /// sweeper leaves the decider queue after unlocking instead of before, Conductor's D3 order.
    #[cfg(wfstate_loom)]
    #[doc(hidden)]
    pub legacy_dequeue_after_unlock: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lease_ms: 60_000,
            sweep_delay_ms: 30_000,
            unack_ms: 60_000,
            outbox_claim_ms: 10_000,
            max_attempts: 16,
            #[cfg(wfstate_loom)]
            legacy_dequeue_after_unlock: false,
        }
    }
}

impl EngineConfig {
    /// Does the sweeper (wrongly) leave the decider queue after unlocking? Never, outside loom.
    pub(crate) fn dequeues_after_unlock(&self) -> bool {
        #[cfg(wfstate_loom)]
        {
            self.legacy_dequeue_after_unlock
        }
        #[cfg(not(wfstate_loom))]
        {
            false
        }
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }
}

/// An input the engine accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// The step: applied (committed, effects performed or owed), duplicate or progress (nothing
    /// changed; acknowledge the message).
    pub step: Step,
    /// Compare-and-swap attempts that found the workflow moved and were redone from a fresh read.
    pub conflicts: u32,
}

/// A task attempt handed to a worker by [`Engine::poll_task`]; it is IN_PROGRESS now.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Polled {
    /// The workflow.
    pub workflow: WorkflowId,
    /// The attempt: report on it with [`Engine::report`].
    pub task: TaskId,
    /// Its reference name (the queue it came from).
    pub reference_name: String,
}

/// A consistent view of one workflow and its decider-queue membership, read under its lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The workflow.
    pub workflow: Arc<Workflow>,
    /// When it is due in the decider queue, if it is in it (hidden entries included).
    pub due_ms: Option<u64>,
}

impl Inspection {
    /// Is the workflow in the decider queue?
    pub fn is_queued(&self) -> bool {
        self.due_ms.is_some()
    }

    /// I6 as this view shows it. Taken under the lock, the view has no other lock holder in
    /// flight, so I6a must hold: a RUNNING workflow is queued. While no lease has expired I6b must
    /// hold too: a workflow that is not RUNNING is not queued. `None` when both hold.
    pub fn queue_violation(&self) -> Option<Invariant> {
        let running = self.workflow.status() == WorkflowStatus::Running;
        match (running, self.is_queued()) {
            (true, false) => Some(Invariant::I6a),
            (false, true) => Some(Invariant::I6b),
            (true, true) | (false, false) => None,
        }
    }
}

/// The result of one read-step-swap loop.
pub(crate) struct Commit {
    pub(crate) step: Step,
    pub(crate) conflicts: u32,
}

/// The runtime: a store, a lock table, a decider and the protocol settings. Share it between
/// threads by reference or in an `Arc`: it is `Sync` when its decider is (every store is). Time
/// is an input: every operation that needs it takes the caller's `now_ms`.
#[derive(Debug)]
pub struct Engine<S = InMemoryStore, D = Definition> {
    pub(crate) store: S,
    pub(crate) decider: D,
    pub(crate) locks: LockTable,
    pub(crate) config: EngineConfig,
    tokens: AtomicU64,
}

impl<S: Store, D: Decider> Engine<S, D> {
    /// An engine with the default settings.
    pub fn new(store: S, decider: D) -> Self {
        Engine::with_config(store, decider, EngineConfig::default())
    }

    /// An engine with these settings.
    pub fn with_config(store: S, decider: D, config: EngineConfig) -> Self {
        Engine {
            store,
            decider,
            locks: LockTable::new(),
            config,
            tokens: AtomicU64::new(1),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The lock table.
    pub fn locks(&self) -> &LockTable {
        &self.locks
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Creates a RUNNING workflow with no tasks and puts it in the decider queue, due at once.
    /// An id in use is [`EngineError::WorkflowExists`], and nothing changes.
    pub fn start(&self, id: impl Into<WorkflowId>, now_ms: u64) -> Result<(), EngineError> {
        let id = id.into();
        self.locked(&id, now_ms, || {
            self.store.insert(Workflow::new(id.clone()))?;
            self.store.queue_push(&id, now_ms);
            Ok(())
        })
    }

    /// A worker's report, without the lock: read, step, compare-and-swap, again on conflict. A
    /// report that ends a task wakes the workflow in the decider queue (due at `now_ms`). A
    /// redelivery is `Ok` with a duplicate step; a late report is
    /// [`Rejection::TaskAlreadyTerminal`](crate::Rejection::TaskAlreadyTerminal).
    pub fn report(
        &self,
        id: &WorkflowId,
        report: Report,
        now_ms: u64,
    ) -> Result<Applied, EngineError> {
        // The wake-up only moves an entry that is there: a report never changes queue membership.
        let requeue = if report.status.task_status().is_terminal() {
            Requeue::Always
        } else {
            Requeue::Never
        };
        let commit = self.commit(id, &Input::Report(report), Some((now_ms, requeue)))?;
        Ok(commit.applied())
    }

    /// A worker takes the oldest attempt waiting in the queue of `reference_name`: it becomes
    /// IN_PROGRESS (engine input start, without the lock, like a report). Entries whose attempt
    /// ended or whose workflow is gone are dropped on the way. `Ok(None)`: nothing waits.
    pub fn poll_task(&self, reference_name: &str) -> Result<Option<Polled>, EngineError> {
        while let Some(queued) = self.store.task_poll(reference_name) {
            let start = Input::Engine(EngineInput::Start {
                task: queued.task.clone(),
            });
            match self.commit(&queued.workflow, &start, None) {
                Ok(commit) if commit.step.is_applied() => {
                    return Ok(Some(Polled {
                        workflow: queued.workflow,
                        task: queued.task,
                        reference_name: queued.reference_name,
                    }))
                }
                Ok(_) | Err(EngineError::Rejected { .. } | EngineError::UnknownWorkflow { .. }) => {
                    // Started already, cancelled, or its workflow is gone: a stale entry, dropped.
                }
                Err(
                    error @ (EngineError::Contention { .. }
                    | EngineError::Locked { .. }
                    | EngineError::WorkflowExists { .. }),
                ) => {
                    self.store.task_push(queued);
                    return Err(error);
                }
            }
        }
        Ok(None)
    }

    /// Terminate (admin): RUNNING or PAUSED → TERMINATED, cancelling every live task in the same
    /// step; leaves the decider queue before unlocking; listeners, archive and stop signals go
    /// to the outbox. On TERMINATED: a duplicate. On another terminal status: rejected.
    pub fn terminate(&self, id: &WorkflowId, now_ms: u64) -> Result<Applied, EngineError> {
        self.admin(id, AdminInput::Terminate, now_ms)
    }

    /// Pause (admin): RUNNING → PAUSED; leaves the decider queue.
    pub fn pause(&self, id: &WorkflowId, now_ms: u64) -> Result<Applied, EngineError> {
        self.admin(id, AdminInput::Pause, now_ms)
    }

    /// Resume (admin): PAUSED → RUNNING; enters the decider queue, due at once.
    pub fn resume(&self, id: &WorkflowId, now_ms: u64) -> Result<Applied, EngineError> {
        self.admin(id, AdminInput::Resume, now_ms)
    }

    /// Retry (admin): FAILED, TIMED_OUT or TERMINATED → RUNNING with new attempts for what ended
    /// unsuccessfully; enters the decider queue, due at once.
    pub fn retry(&self, id: &WorkflowId, now_ms: u64) -> Result<Applied, EngineError> {
        self.admin(id, AdminInput::Retry, now_ms)
    }

    /// Any admin input, under the lock.
    pub fn admin(
        &self,
        id: &WorkflowId,
        input: AdminInput,
        now_ms: u64,
    ) -> Result<Applied, EngineError> {
        self.apply_locked(id, &Input::Admin(input), now_ms)
    }

    /// An engine input of the caller's own (time a task out, cancel one, fail the workflow...),
    /// under the lock, for engines that decide more than the sweeper's decider does.
    pub fn act(
        &self,
        id: &WorkflowId,
        input: EngineInput,
        now_ms: u64,
    ) -> Result<Applied, EngineError> {
        self.apply_locked(id, &Input::Engine(input), now_ms)
    }

    /// Performs up to `max` post-commit effects owed in the outbox through `handler`,
    /// acknowledging each one that succeeds. A failure leaves its entry claimed until
    /// `now_ms + outbox_claim_ms`, then it is taken again (I7); it never changes any status.
    pub fn run_outbox<H>(&self, handler: &mut H, now_ms: u64, max: usize) -> OutboxRun<H::Error>
    where
        H: EffectHandler + ?Sized,
    {
        let mut run = OutboxRun {
            performed: 0,
            failures: Vec::new(),
        };
        let entries = self
            .store
            .outbox_take(now_ms, self.config.outbox_claim_ms, max);
        for entry in entries {
            match handler.perform(&entry) {
                Ok(()) => {
                    self.store.outbox_acknowledge(entry.sequence);
                    run.performed += 1;
                }
                Err(error) => run.failures.push(OutboxFailure { entry, error }),
            }
        }
        run
    }

    /// Reads a workflow and its decider-queue membership under its lock: a consistent view on
    /// which I1–I5 ([`check`](crate::check)) and I6 ([`Inspection::queue_violation`]) can be
    /// checked. [`EngineError::Locked`] while another operation holds the lock.
    pub fn inspect(&self, id: &WorkflowId, now_ms: u64) -> Result<Inspection, EngineError> {
        self.locked(id, now_ms, || {
            let workflow = self.store.load(id)?;
            let due_ms = self.store.queue_due(id);
            Ok(Inspection { workflow, due_ms })
        })
    }

    /// lock → `op` → unlock.
    fn locked<T>(
        &self,
        id: &WorkflowId,
        now_ms: u64,
        op: impl FnOnce() -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let token = self.acquire(id, now_ms).map_err(locked_error)?;
        let result = op();
        self.release(id, token);
        result
    }

    /// The protocol for admin and engine inputs: lock → read → step → compare-and-swap (again on a
    /// conflict with a lock-free report) → queue effects → unlock.
    fn apply_locked(
        &self,
        id: &WorkflowId,
        input: &Input,
        now_ms: u64,
    ) -> Result<Applied, EngineError> {
        self.locked(id, now_ms, || {
            let commit = self.commit(id, input, Some((now_ms, Requeue::Never)))?;
            Ok(commit.applied())
        })
    }

    /// A fresh lease token and the lease on `id`.
    pub(crate) fn acquire(&self, id: &WorkflowId, now_ms: u64) -> Result<LeaseToken, LeaseHeld> {
        let token = LeaseToken::new(self.tokens.fetch_add(1, Ordering::Relaxed));
        self.locks
            .acquire(id, token, self.config.lease_ms, now_ms)
            .map(|_| token)
    }

    /// Releases by token. `NotHolder` means the lease expired and another operation took it:
    /// nothing to undo, the version already fenced every write made after that (I4).
    pub(crate) fn release(&self, id: &WorkflowId, token: LeaseToken) {
        let _taken_over = self.locks.release(id, token).is_err();
    }

    /// read → step → compare-and-swap ([`Store::transition_and_commit`]), from a fresh read again
    /// whenever the version moved, at most `max_attempts` times. A step that changes nothing is not
    /// written. With `queue` (`now_ms` and the requeue), the commit performs the step's queue
    /// effects in the same store call ([`Store::commit_and_queue`]); without, it is a bare
    /// compare-and-swap.
    pub(crate) fn commit(
        &self,
        id: &WorkflowId,
        input: &Input,
        queue: Option<(u64, Requeue)>,
    ) -> Result<Commit, EngineError> {
        let attempts = self.config.attempts();
        for conflicts in 0..attempts {
            match self.store.transition_and_commit(id, input, queue) {
                Ok(step) => return Ok(Commit { step, conflicts }),
                Err(error) if error.is_stale() => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(EngineError::Contention {
            id: id.clone(),
            attempts,
        })
    }
}

impl Commit {
    fn applied(self) -> Applied {
        Applied {
            step: self.step,
            conflicts: self.conflicts,
        }
    }
}

fn locked_error(held: LeaseHeld) -> EngineError {
    EngineError::Locked {
        id: held.id,
        holder: held.holder,
        expires_at_ms: held.expires_at_ms,
    }
}
