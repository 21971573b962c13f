//! The engine: a thin synchronous driver of the operation machines ([`super::op`]) over a
//! [`Store`]. For each call an operation yields, it asks the store and hands the reply back;
//! everything the protocol decides, including what to do after a failure, is in the machines.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use super::contract::{LeaseToken, Reply, Store};
use super::error::{AdminError, InspectError, PollError, ReportError, StartError, SweepError};
use super::memory::InMemoryStore;
use super::op::{
    AdminOp, Applied, Decider, InspectOp, Inspection, Next, Operation, OutboxOp, PollOp, Polled,
    ReportOp, StartOp, Sweep, SweepOp,
};
use super::outbox::{EffectHandler, OutboxFailure, OutboxRun};
use super::sync::{AtomicU64, Ordering};
use crate::{AdminInput, Definition, EngineInput, Input, Report, WorkflowId};

/// Protocol settings. All durations are in the caller's logical milliseconds (`now_ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineConfig {
    /// How long a workflow lock lasts (default 60,000). An operation that outlives its lease
    /// stays correct: its commit fails if anyone committed since its read (I4), and since every
    /// decider-queue change is part of a commit or conditional, it leaves no stale entry either
    /// (the model checks I6b after expiries too).
    pub lease_ms: u64,
    /// When a sweep finds nothing to do (`Decision::Wait`), the workflow is due again this much
    /// later (default 30,000, Conductor's sweep offset), or earlier when a report ends a task.
    pub sweep_delay_ms: u64,
    /// A popped decider-queue entry stays hidden this long unless the sweep requeues or removes
    /// it first (default 60,000): a sweeper that dies or fails after popping loses nothing.
    pub unack_ms: u64,
    /// A polled task-queue entry stays hidden this long (default 60,000); it leaves the queue
    /// when its attempt ends. An attempt still IN_PROGRESS when it reappears is handed out again
    /// (its worker may have died): task delivery is at least once.
    pub task_visibility_ms: u64,
    /// A taken outbox entry stays claimed this long (default 10,000): an entry whose handler
    /// failed is retried after it.
    pub outbox_claim_ms: u64,
    /// Compare-and-swap attempts before an operation gives up with a contention error
    /// (default 16; at least 1).
    pub max_attempts: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lease_ms: 60_000,
            sweep_delay_ms: 30_000,
            unack_ms: 60_000,
            task_visibility_ms: 60_000,
            outbox_claim_ms: 10_000,
            max_attempts: 16,
        }
    }
}

impl EngineConfig {
    /// `max_attempts`, at least 1.
    pub fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }
}

/// The runtime: a store, a decider and the protocol settings. Share it between threads by
/// reference or in an `Arc`: it is `Sync` when its decider is (every store is). Time is an
/// input: every operation takes the caller's `now_ms`.
#[derive(Debug)]
pub struct Engine<S = InMemoryStore, D = Definition> {
    store: S,
    decider: D,
    config: EngineConfig,
    owner: u64,
    serials: AtomicU64,
}

/// An instance id for lease tokens: random per engine (std's per-process random keys, mixed
/// with the process id), so tokens of engines in different processes never collide.
fn instance_id() -> u64 {
    RandomState::new().hash_one(std::process::id())
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
            config,
            owner: instance_id(),
            serials: AtomicU64::new(1),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// A fresh lease token: this engine's instance id and its next serial number.
    pub fn token(&self) -> LeaseToken {
        LeaseToken::new(self.owner, self.serials.fetch_add(1, Ordering::Relaxed))
    }

    /// Drives `op` to its end: each call it yields goes to the store, each reply back to it.
    /// Post-commit effects it yields go to `perform`.
    pub fn drive_with<O: Operation>(
        &self,
        mut op: O,
        perform: &mut dyn FnMut(&super::OutboxEntry) -> bool,
    ) -> Option<O::Output> {
        loop {
            let reply = match op.next() {
                // Consecutive calls go through one store session, up to a reply that the
                // decider must see: that resume, like an effect, runs outside the session.
                Next::Call(_) => {
                    let mut deciding = None;
                    self.store.session(&mut |call_store| {
                        while let Next::Call(call) = op.next() {
                            // Asked before the call (the answer is the state's, which the call
                            // does not change), so the reply goes straight to its reader.
                            if op.decides() {
                                deciding = Some(call_store(call));
                                return;
                            }
                            op.resume(call_store(call), &self.decider);
                        }
                    });
                    match deciding {
                        Some(reply) => reply,
                        None => continue,
                    }
                }
                Next::Perform(entry) => Ok(Reply::Performed(perform(entry))),
                Next::Done => return op.finish(),
            };
            op.resume(reply, &self.decider);
        }
    }

    fn drive<O: Operation>(&self, op: O) -> O::Output {
        match self.drive_with(op, &mut |_| false) {
            Some(output) => output,
            None => unreachable!("an operation said Done without an output"),
        }
    }

    /// Creates a RUNNING workflow with no tasks and enters it in the decider queue, due at once,
    /// in one atomic store call. An id in use is [`StartError::WorkflowExists`].
    pub fn start(&self, id: impl Into<WorkflowId>, now_ms: u64) -> Result<(), StartError> {
        self.drive(StartOp::new(id.into(), now_ms))
    }

    /// A worker's report, without the lock: read, step, commit, again on conflict. A report that
    /// ends a task wakes the workflow in the decider queue (due at `now_ms`). A redelivery is
    /// `Ok` with a duplicate step; a late report is
    /// [`Rejection::TaskAlreadyTerminal`](crate::Rejection::TaskAlreadyTerminal).
    pub fn report(
        &self,
        id: &WorkflowId,
        report: Report,
        now_ms: u64,
    ) -> Result<Applied, ReportError> {
        self.drive(ReportOp::new(id.clone(), report, now_ms, &self.config))
    }

    /// A worker takes the oldest visible attempt of the task queue `reference_name`: it becomes
    /// IN_PROGRESS (engine input start, without the lock). Stale entries are dropped on the way.
    /// `Ok(None)`: nothing waits.
    pub fn poll_task(
        &self,
        reference_name: &str,
        now_ms: u64,
    ) -> Result<Option<Polled>, PollError> {
        self.drive(PollOp::new(reference_name, now_ms, &self.config))
    }

    /// Terminate (admin): RUNNING or PAUSED → TERMINATED, cancelling every live task in the same
    /// step; leaves the decider queue in the same commit, before unlocking; listeners, archive and
    /// stop signals go to the outbox. On TERMINATED: a duplicate. On another terminal status:
    /// rejected.
    pub fn terminate(&self, id: &WorkflowId, now_ms: u64) -> Result<Applied, AdminError> {
        self.admin(id, AdminInput::Terminate, now_ms)
    }

    /// Pause (admin): RUNNING → PAUSED; leaves the decider queue.
    pub fn pause(&self, id: &WorkflowId, now_ms: u64) -> Result<Applied, AdminError> {
        self.admin(id, AdminInput::Pause, now_ms)
    }

    /// Resume (admin): PAUSED → RUNNING; enters the decider queue, due at once.
    pub fn resume(&self, id: &WorkflowId, now_ms: u64) -> Result<Applied, AdminError> {
        self.admin(id, AdminInput::Resume, now_ms)
    }

    /// Retry (admin): FAILED, TIMED_OUT or TERMINATED → RUNNING with new attempts for what ended
    /// unsuccessfully; enters the decider queue, due at once.
    pub fn retry(&self, id: &WorkflowId, now_ms: u64) -> Result<Applied, AdminError> {
        self.admin(id, AdminInput::Retry, now_ms)
    }

    /// Any admin input, under the lock.
    pub fn admin(
        &self,
        id: &WorkflowId,
        input: AdminInput,
        now_ms: u64,
    ) -> Result<Applied, AdminError> {
        self.locked(id, Input::Admin(input), now_ms)
    }

    /// An engine input of the caller's own (time a task out, cancel one, fail the workflow...),
    /// under the lock, for engines that decide more than the sweeper's decider does.
    pub fn act(
        &self,
        id: &WorkflowId,
        input: EngineInput,
        now_ms: u64,
    ) -> Result<Applied, AdminError> {
        self.locked(id, Input::Engine(input), now_ms)
    }

    fn locked(&self, id: &WorkflowId, input: Input, now_ms: u64) -> Result<Applied, AdminError> {
        let op = AdminOp::new(id.clone(), input, self.token(), now_ms, &self.config);
        self.drive(op)
    }

    /// One sweep of the first due workflow: pop (leased) → lock → read → decide → commit with
    /// the queue plan (dequeue or requeue) → unlock.
    pub fn sweep_once(&self, now_ms: u64) -> Result<Sweep, SweepError> {
        self.drive(SweepOp::new(self.token(), now_ms, &self.config))
    }

    /// Performs up to `max` post-commit effects owed in the outbox through `handler`,
    /// acknowledging each one that succeeds. A failure leaves its entry claimed until
    /// `now_ms + outbox_claim_ms`, then it is taken again (I7); it never changes any status.
    pub fn run_outbox<H>(&self, handler: &mut H, now_ms: u64, max: usize) -> OutboxRun<H::Error>
    where
        H: EffectHandler + ?Sized,
    {
        let mut failures = Vec::new();
        let op = OutboxOp::new(now_ms, self.config.outbox_claim_ms, max);
        let mut perform = |entry: &super::OutboxEntry| match handler.perform(entry) {
            Ok(()) => true,
            Err(error) => {
                failures.push(OutboxFailure {
                    entry: entry.clone(),
                    error,
                });
                false
            }
        };
        let pass = self.drive_with(op, &mut perform).unwrap_or_default();
        OutboxRun {
            performed: pass.performed,
            failures,
            store_failure: pass.store_failure,
        }
    }

    /// Reads a workflow and its decider-queue membership under its lock: a consistent view on
    /// which I1–I5, I8 ([`check`](crate::check)) and I6 ([`Inspection::queue_violation`]) can be
    /// checked. [`InspectError::Locked`] while another operation holds the lock.
    pub fn inspect(&self, id: &WorkflowId, now_ms: u64) -> Result<Inspection, InspectError> {
        self.drive(InspectOp::new(
            id.clone(),
            self.token(),
            now_ms,
            &self.config,
        ))
    }
}
