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
use super::sync::{lock, Mutex};
use crate::{Effect, Phase, Rejection, Step, TaskId, Workflow, WorkflowId};

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

/// The embedded store: everything in memory, one mutex per structure (workflows, decider queue,
/// task queues, outbox), each held for one short update.
///
/// Snapshots are `Arc`s, and a commit applies the step in place ([`Workflow::apply`], cost
/// proportional to the step) unless a reader still holds the previous snapshot, in which case it
/// copies first (copy on write). Readers never see a half-applied step. A commit appends its
/// outbox entries while it still holds the workflows, so it is one atomic action; the only nesting
/// is workflows → outbox, so the mutexes cannot deadlock.
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
        let Some(slot) = workflows.get_mut(id) else {
            return Err(StoreError::UnknownWorkflow { id: id.clone() });
        };
        if !step.is_applied() {
            return Ok(Arc::clone(slot));
        }
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
        let committed = Arc::clone(slot);
        let mut owed = step.effects_in(Phase::PostCommit).peekable();
        if owed.peek().is_some() {
            // Still holding the workflows: the commit and what it owes are one atomic action.
            lock(&self.outbox).append(id, committed.version(), owed);
        }
        drop(workflows);
        Ok(committed)
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
