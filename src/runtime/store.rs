//! The store: workflows under compare-and-swap, the decider queue, task queues and the outbox,
//! behind one trait, with [`InMemoryStore`] as the embedded default.
//!
//! The trait is shaped for a remote store as well (Redis, Postgres): every method is one
//! round-trip, writes are fenced by the workflow version, and a commit appends its outbox entries
//! atomically with the swap. It takes the [`Step`] rather than a whole new state, so a store can
//! persist only what changed (the cost of a step is what it changes, SPEC section 5).

use super::hash::Map;
use std::sync::Arc;

use super::outbox::{Outbox, OutboxEntry};
use super::queue::{DeciderQueue, QueuedTask, TaskQueues};
use super::sync::MutexGuard;
use super::sync::{lock, Mutex};
use crate::{
    transition, Effect, Input, Phase, Rejection, Step, TaskId, Workflow, WorkflowId, WorkflowStatus,
};

/// Why a store operation was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No workflow has this id.
    #[error("unknown workflow {id}")]
    UnknownWorkflow {
        /// The id asked for.
        id: WorkflowId,
    },
    /// A workflow with this id already exists.
    #[error("workflow {id} already exists")]
    WorkflowExists {
        /// The id.
        id: WorkflowId,
    },
    /// The compare-and-swap refused the step: [`Rejection::StaleVersion`] when the workflow moved
    /// since the step's read (I4; re-read and step again), [`Rejection::ForeignStep`] when the step
    /// was computed from another state.
    #[error("workflow {id}: {rejection}")]
    Rejected {
        /// The workflow.
        id: WorkflowId,
        /// Why.
        rejection: Rejection,
    },
}

impl StoreError {
    /// Is this a stale-version conflict (someone committed since the step's read)?
    pub fn is_stale(&self) -> bool {
        matches!(
            self,
            StoreError::Rejected {
                rejection: Rejection::StaleVersion { .. },
                ..
            }
        )
    }
}

/// What [`Store::commit_and_queue`] does with the decider queue after the step's queue effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Requeue {
    /// Nothing more.
    Never,
    /// Move the workflow to `now_ms` if it is in the queue (a report that ended a task wakes it;
    /// it never changes queue membership).
    Always,
    /// Move the workflow to `now_ms` if it is in the queue and the committed state is RUNNING
    /// (the sweeper after a decision: the decider may have more to do).
    IfRunning,
}

/// Where the runtime keeps its state. Implementations must make each method atomic.
pub trait Store: Send + Sync {
    /// Adds a new workflow; [`StoreError::WorkflowExists`] if the id is taken.
    fn insert(&self, workflow: Workflow) -> Result<(), StoreError>;

    /// The current state of a workflow: an immutable snapshot.
    fn load(&self, id: &WorkflowId) -> Result<Arc<Workflow>, StoreError>;

    /// Commits `step` if the stored version is still `step.read_version()`, and in the same atomic
    /// action appends the step's post-commit effects to the outbox (stamped with the new version).
    /// Returns the committed state. A step that is not applied (a duplicate, progress) writes
    /// nothing and returns the current state. Refused: [`StoreError::Rejected`], nothing changed.
    fn compare_and_swap(&self, id: &WorkflowId, step: &Step) -> Result<Arc<Workflow>, StoreError>;

    /// [`compare_and_swap`](Store::compare_and_swap), then, if the step was applied, its queue
    /// effects (SPEC section 5, phase 2) in order, due at `now_ms`, then `requeue`. The engine
    /// commits through this method, before it unlocks. Refused: [`StoreError::Rejected`], and
    /// nothing changed (no queue either).
    ///
    /// The default makes those calls one after the other, and after leaving the decider queue it
    /// reads the workflow again, putting it back if it is RUNNING after all: an operation that took
    /// an expired lease over may have made it RUNNING and pushed it just before a late removal
    /// (I6a, SPEC section 7). A store that can make the commit and its queue effects one atomic
    /// action should ([`InMemoryStore`] does): no commit can then come between them, and the
    /// re-read is not needed.
    fn commit_and_queue(
        &self,
        id: &WorkflowId,
        step: &Step,
        now_ms: u64,
        requeue: Requeue,
    ) -> Result<(), StoreError> {
        let committed = self.compare_and_swap(id, step)?;
        if step.is_applied() {
            let mut calls = CallByCall(self);
            queue_effects(&mut calls, id, step, &committed, now_ms, requeue, false);
        }
        Ok(())
    }

    /// One attempt of a lock-free writer (a report, a poll's start): reads the workflow, computes
    /// the step `input` makes from it ([`transition`]) and, if it is applied, commits it as
    /// [`compare_and_swap`](Store::compare_and_swap) does (with `queue`, as
    /// [`commit_and_queue`](Store::commit_and_queue) does). Returns the step: applied and
    /// committed, or not applied (nothing written). A transition rejection is
    /// [`StoreError::Rejected`]; a stale version too ([`StoreError::is_stale`]): read again.
    ///
    /// The default makes a [`load`](Store::load) and a commit. A store that can run the pure
    /// transition inside its own atomic action should ([`InMemoryStore`] does): the read is then
    /// as fresh as a read can be, and the version check cannot fail.
    fn transition_and_commit(
        &self,
        id: &WorkflowId,
        input: &Input,
        queue: Option<(u64, Requeue)>,
    ) -> Result<Step, StoreError> {
        // The snapshot is dropped before the commit, so an uncontended commit applies in place.
        let step = {
            let snapshot = self.load(id)?;
            transition(&snapshot, input).map_err(|rejection| StoreError::Rejected {
                id: id.clone(),
                rejection,
            })?
        };
        if step.is_applied() {
            match queue {
                Some((now_ms, requeue)) => self.commit_and_queue(id, &step, now_ms, requeue)?,
                None => drop(self.compare_and_swap(id, &step)?),
            }
        }
        Ok(step)
    }

    /// Decider queue: `id` enters the queue, due at `due_ms` (if it is there already, it is moved
    /// to `due_ms`). Never a second entry.
    fn queue_push(&self, id: &WorkflowId, due_ms: u64);

    /// Decider queue: the first id due at `now_ms`. It stays in the queue, hidden until
    /// `now_ms + unack_ms`, so an id whose sweeper dies is not lost.
    fn queue_pop(&self, now_ms: u64, unack_ms: u64) -> Option<WorkflowId>;

    /// Decider queue: moves `id` to `due_ms` if it is still in the queue (`true`); otherwise
    /// changes nothing (`false`): a requeue never brings back an id that was removed.
    fn queue_requeue(&self, id: &WorkflowId, due_ms: u64) -> bool;

    /// Decider queue: `id` leaves the queue; `false` if it was not there.
    fn queue_remove(&self, id: &WorkflowId) -> bool;

    /// Decider queue: when `id` is due, if it is in the queue (hidden or not).
    fn queue_due(&self, id: &WorkflowId) -> Option<u64>;

    /// Decider queue: how many workflows it holds.
    fn queue_len(&self) -> usize;

    /// Task queues: adds an attempt to the queue of its reference name (once).
    fn task_push(&self, task: QueuedTask);

    /// Task queues: removes an attempt; `false` if it was not queued.
    fn task_remove(&self, task: &TaskId) -> bool;

    /// Task queues: takes the oldest attempt waiting in the queue of `reference_name`.
    fn task_poll(&self, reference_name: &str) -> Option<QueuedTask>;

    /// Task queues: how many attempts wait, over all queues.
    fn task_len(&self) -> usize;

    /// Outbox: appends `effects` as owed by the commit of `version` of `workflow`. The engine
    /// does not call this (commits append their own effects atomically); it is for effects an
    /// engine adds itself.
    fn outbox_append(&self, workflow: &WorkflowId, version: u64, effects: &[Effect]);

    /// Outbox: up to `max` entries visible at `now_ms`, oldest first, each claimed (hidden) until
    /// `now_ms + claim_ms`. They stay in the outbox until acknowledged.
    fn outbox_take(&self, now_ms: u64, claim_ms: u64, max: usize) -> Vec<OutboxEntry>;

    /// Outbox: removes a performed entry; `false` if it was not there.
    fn outbox_acknowledge(&self, sequence: u64) -> bool;

    /// Outbox: how many entries are owed.
    fn outbox_len(&self) -> usize;
}

/// Where a committed step's queue effects go: the store, one call per effect ([`CallByCall`],
/// the trait's default path), or the queues [`InMemoryStore`] holds locked inside its commit.
pub(crate) trait QueueSink {
    /// `LeaveDeciderQueue`.
    fn leave_decider(&mut self, id: &WorkflowId, now_ms: u64);
    /// `EnterDeciderQueue`: enter (or move) the decider queue, due at `due_ms`.
    fn enter_decider(&mut self, id: &WorkflowId, due_ms: u64);
    /// Move an entry that is in the decider queue to `due_ms` (never adds one).
    fn requeue_decider(&mut self, id: &WorkflowId, due_ms: u64);
    /// `RemoveFromTaskQueue`.
    fn remove_task(&mut self, task: &TaskId);
    /// `PushToTaskQueue`.
    fn push_task(&mut self, task: QueuedTask);
}

/// Phase 2 of a committed step (SPEC section 5), in order, then `requeue`: the one place queue
/// effects are interpreted, whichever sink performs them. With `defer_leave` (the loom negative
/// control only) `LeaveDeciderQueue` is skipped and `true` returned, for the caller to perform
/// after unlocking.
pub(crate) fn queue_effects(
    sink: &mut impl QueueSink,
    id: &WorkflowId,
    step: &Step,
    committed: &Workflow,
    now_ms: u64,
    requeue: Requeue,
    defer_leave: bool,
) -> bool {
    let mut deferred = false;
    for effect in step.effects_in(Phase::Queue) {
        match effect {
            Effect::LeaveDeciderQueue if defer_leave => deferred = true,
            Effect::LeaveDeciderQueue => sink.leave_decider(id, now_ms),
            Effect::EnterDeciderQueue => sink.enter_decider(id, now_ms),
            Effect::RemoveFromTaskQueue { task } => sink.remove_task(task),
            Effect::PushToTaskQueue { task } => {
                if let Some(queued) = queued_task(id, task, step, committed) {
                    sink.push_task(queued);
                }
            }
            Effect::Persist { .. }
            | Effect::NotifyListeners { .. }
            | Effect::Archive
            | Effect::StopRunningTask { .. } => {}
        }
    }
    let wakes = match requeue {
        Requeue::Always => true,
        Requeue::IfRunning => committed.status() == WorkflowStatus::Running,
        Requeue::Never => false,
    };
    if wakes {
        sink.requeue_decider(id, now_ms);
    }
    deferred
}

/// A store as a [`QueueSink`]: one call per effect; leaving the decider queue re-reads
/// ([`leave_decider_queue`]).
pub(crate) struct CallByCall<'a, S: ?Sized>(pub(crate) &'a S);

impl<S: Store + ?Sized> QueueSink for CallByCall<'_, S> {
    fn leave_decider(&mut self, id: &WorkflowId, now_ms: u64) {
        leave_decider_queue(self.0, id, now_ms);
    }

    fn enter_decider(&mut self, id: &WorkflowId, due_ms: u64) {
        self.0.queue_push(id, due_ms);
    }

    fn requeue_decider(&mut self, id: &WorkflowId, due_ms: u64) {
        self.0.queue_requeue(id, due_ms);
    }

    fn remove_task(&mut self, task: &TaskId) {
        self.0.task_remove(task);
    }

    fn push_task(&mut self, task: QueuedTask) {
        self.0.task_push(task);
    }
}

/// The workflow is not RUNNING: it leaves the decider queue. Then it is read again, and put back
/// if it is RUNNING after all. Under a valid lease that never happens (only lock holders change a
/// workflow's status); after an expiry, an operation that took our lease over may have made it
/// RUNNING and pushed it just before our late removal, and without this re-read the wake-up would
/// be lost (I6a).
pub(crate) fn leave_decider_queue<S: Store + ?Sized>(store: &S, id: &WorkflowId, now_ms: u64) {
    store.queue_remove(id);
    if let Ok(current) = store.load(id) {
        if current.status() == WorkflowStatus::Running {
            store.queue_push(id, now_ms);
        }
    }
}

/// The task-queue entry of a newly scheduled attempt, named after its reference name: the step
/// added the attempt (its list is short, usually one), else the committed workflow has it.
fn queued_task(
    id: &WorkflowId,
    task: &TaskId,
    step: &Step,
    committed: &Workflow,
) -> Option<QueuedTask> {
    let added = step.changes().added.iter().find(|added| added.id == *task);
    added
        .or_else(|| committed.task(task))
        .map(|attempt| QueuedTask {
            workflow: id.clone(),
            task: task.clone(),
            reference_name: attempt.reference_name.clone(),
        })
}

/// The embedded store: everything in memory, one mutex per structure (workflows, decider queue,
/// task queues, outbox), each held for one short update.
///
/// Snapshots are `Arc`s, and a commit applies the step in place ([`Workflow::apply`], cost
/// proportional to the step) unless a reader still holds the previous snapshot, in which case it
/// copies first (copy on write). Readers never see a half-applied step. A commit appends its
/// outbox entries, and [`commit_and_queue`](Store::commit_and_queue) performs its queue effects,
/// while it still holds the workflows, so each is one atomic action; the only nesting is
/// workflows → (outbox, decider queue, task queues), so the mutexes cannot deadlock.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    workflows: Mutex<Map<WorkflowId, Arc<Workflow>>>,
    decider: Mutex<DeciderQueue>,
    tasks: Mutex<TaskQueues>,
    outbox: Mutex<Outbox>,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        InMemoryStore::default()
    }

    /// How many workflows it holds.
    pub fn len(&self) -> usize {
        lock(&self.workflows).len()
    }

    /// Does it hold no workflow?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The compare-and-swap of an applied step, with the workflows locked: checks the version,
    /// applies the step in place (copy on write if a reader holds the snapshot), and appends what
    /// the step owes to the outbox while the workflows are still locked, so the commit and its
    /// outbox entries are one atomic action.
    fn commit_locked(
        &self,
        slot: &mut Arc<Workflow>,
        id: &WorkflowId,
        step: &Step,
    ) -> Result<(), StoreError> {
        // Check the version before copy-on-write, so a stale step never copies.
        if slot.version() != step.read_version() {
            return Err(StoreError::Rejected {
                id: id.clone(),
                rejection: Rejection::StaleVersion {
                    read: step.read_version(),
                    current: slot.version(),
                },
            });
        }
        Arc::make_mut(slot)
            .apply(step)
            .map_err(|rejection| StoreError::Rejected {
                id: id.clone(),
                rejection,
            })?;
        let mut owed = step.effects_in(Phase::PostCommit).peekable();
        if owed.peek().is_some() {
            lock(&self.outbox).append(id, slot.version(), owed);
        }
        Ok(())
    }
}

/// The stored workflow `id`, in the locked map.
fn slot<'a>(
    workflows: &'a mut Map<WorkflowId, Arc<Workflow>>,
    id: &WorkflowId,
) -> Result<&'a mut Arc<Workflow>, StoreError> {
    workflows
        .get_mut(id)
        .ok_or_else(|| StoreError::UnknownWorkflow { id: id.clone() })
}

/// The queues one commit touches, each locked at its first use and held until the commit ends:
/// the [`QueueSink`] of [`InMemoryStore`]'s commits, made while it holds its workflows mutex. No
/// commit can come between a step and its queue effects, so leaving the decider queue needs no
/// re-read (whoever makes the workflow RUNNING again commits after us, and pushes after that
/// commit). Only a holder of the workflows mutex nests these locks, so their order cannot
/// deadlock.
struct Queues<'a> {
    store: &'a InMemoryStore,
    decider: Option<MutexGuard<'a, DeciderQueue>>,
    tasks: Option<MutexGuard<'a, TaskQueues>>,
}

impl<'a> Queues<'a> {
    fn new(store: &'a InMemoryStore) -> Self {
        Queues {
            store,
            decider: None,
            tasks: None,
        }
    }

    fn decider(&mut self) -> &mut DeciderQueue {
        self.decider
            .get_or_insert_with(|| lock(&self.store.decider))
    }

    fn tasks(&mut self) -> &mut TaskQueues {
        self.tasks.get_or_insert_with(|| lock(&self.store.tasks))
    }
}

impl QueueSink for Queues<'_> {
    fn leave_decider(&mut self, id: &WorkflowId, _now_ms: u64) {
        self.decider().remove(id);
    }

    fn enter_decider(&mut self, id: &WorkflowId, due_ms: u64) {
        self.decider().push(id, due_ms);
    }

    fn requeue_decider(&mut self, id: &WorkflowId, due_ms: u64) {
        self.decider().requeue(id, due_ms);
    }

    fn remove_task(&mut self, task: &TaskId) {
        self.tasks().remove(task);
    }

    fn push_task(&mut self, task: QueuedTask) {
        self.tasks().push(task);
    }
}

impl Store for InMemoryStore {
    fn insert(&self, workflow: Workflow) -> Result<(), StoreError> {
        match lock(&self.workflows).entry(workflow.id().clone()) {
            std::collections::hash_map::Entry::Occupied(entry) => Err(StoreError::WorkflowExists {
                id: entry.key().clone(),
            }),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(Arc::new(workflow));
                Ok(())
            }
        }
    }

    fn load(&self, id: &WorkflowId) -> Result<Arc<Workflow>, StoreError> {
        lock(&self.workflows)
            .get(id)
            .cloned()
            .ok_or_else(|| StoreError::UnknownWorkflow { id: id.clone() })
    }

    fn compare_and_swap(&self, id: &WorkflowId, step: &Step) -> Result<Arc<Workflow>, StoreError> {
        let mut workflows = lock(&self.workflows);
        let slot = slot(&mut workflows, id)?;
        if step.is_applied() {
            self.commit_locked(slot, id, step)?;
        }
        Ok(Arc::clone(slot))
    }

    fn commit_and_queue(
        &self,
        id: &WorkflowId,
        step: &Step,
        now_ms: u64,
        requeue: Requeue,
    ) -> Result<(), StoreError> {
        let mut workflows = lock(&self.workflows);
        let slot = slot(&mut workflows, id)?;
        if step.is_applied() {
            self.commit_locked(slot, id, step)?;
            let mut queues = Queues::new(self);
            queue_effects(&mut queues, id, step, slot, now_ms, requeue, false);
        }
        Ok(())
    }

    fn transition_and_commit(
        &self,
        id: &WorkflowId,
        input: &Input,
        queue: Option<(u64, Requeue)>,
    ) -> Result<Step, StoreError> {
        let mut workflows = lock(&self.workflows);
        let slot = slot(&mut workflows, id)?;
        // The pure transition under the workflows mutex: no user code runs here, and the step is
        // computed from the state it commits over, so its version check cannot fail.
        let step = transition(slot, input).map_err(|rejection| StoreError::Rejected {
            id: id.clone(),
            rejection,
        })?;
        if step.is_applied() {
            self.commit_locked(slot, id, &step)?;
            if let Some((now_ms, requeue)) = queue {
                let mut queues = Queues::new(self);
                queue_effects(&mut queues, id, &step, slot, now_ms, requeue, false);
            }
        }
        Ok(step)
    }

    fn queue_push(&self, id: &WorkflowId, due_ms: u64) {
        lock(&self.decider).push(id, due_ms);
    }

    fn queue_pop(&self, now_ms: u64, unack_ms: u64) -> Option<WorkflowId> {
        lock(&self.decider).pop(now_ms, unack_ms)
    }

    fn queue_requeue(&self, id: &WorkflowId, due_ms: u64) -> bool {
        lock(&self.decider).requeue(id, due_ms)
    }

    fn queue_remove(&self, id: &WorkflowId) -> bool {
        lock(&self.decider).remove(id)
    }

    fn queue_due(&self, id: &WorkflowId) -> Option<u64> {
        lock(&self.decider).due(id)
    }

    fn queue_len(&self) -> usize {
        lock(&self.decider).len()
    }

    fn task_push(&self, task: QueuedTask) {
        lock(&self.tasks).push(task);
    }

    fn task_remove(&self, task: &TaskId) -> bool {
        lock(&self.tasks).remove(task)
    }

    fn task_poll(&self, reference_name: &str) -> Option<QueuedTask> {
        lock(&self.tasks).poll(reference_name)
    }

    fn task_len(&self) -> usize {
        lock(&self.tasks).len()
    }

    fn outbox_append(&self, workflow: &WorkflowId, version: u64, effects: &[Effect]) {
        lock(&self.outbox).append(workflow, version, effects);
    }

    fn outbox_take(&self, now_ms: u64, claim_ms: u64, max: usize) -> Vec<OutboxEntry> {
        lock(&self.outbox).take(now_ms, claim_ms, max)
    }

    fn outbox_acknowledge(&self, sequence: u64) -> bool {
        lock(&self.outbox).acknowledge(sequence)
    }

    fn outbox_len(&self) -> usize {
        lock(&self.outbox).len()
    }
}
