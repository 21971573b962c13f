//! The in-memory decider queue and task queues behind [`InMemoryStore`](super::InMemoryStore).
//!
//! The decider queue is a set of workflow ids, each with a due time, with Conductor's pop
//! semantics: popping an id does not remove it, it hides it until `now + unack_ms` (Conductor's
//! "unack timeout"). A sweeper that dies after popping therefore loses nothing: the id reappears.
//! Membership changes only by [`push`](DeciderQueue::push) (enter) and
//! [`remove`](DeciderQueue::remove) (leave); [`requeue`](DeciderQueue::requeue) only moves the due
//! time of an id that is still there. Being a set, the queue can never hold a workflow twice.

use super::hash::{Map, Set};
use std::collections::{BTreeMap, VecDeque};

use crate::{TaskId, WorkflowId};

/// Ids with due times, ordered by (due time, sequence) so that ids due at the same time come out
/// in the order they were (re)queued.
#[derive(Debug, Default)]
pub(crate) struct DeciderQueue {
    position: Map<WorkflowId, (u64, u64)>,
    order: BTreeMap<(u64, u64), WorkflowId>,
    next_sequence: u64,
}

impl DeciderQueue {
    /// Enter (or, if present, move) `id`, due at `due_ms`.
    pub(crate) fn push(&mut self, id: &WorkflowId, due_ms: u64) {
        if !self.requeue(id, due_ms) {
            let key = self.key(due_ms);
            self.position.insert(id.clone(), key);
            self.order.insert(key, id.clone());
        }
    }

    /// Move `id` to `due_ms` if it is in the queue; `false` (and nothing changes) otherwise. An
    /// entry already due at `due_ms` keeps its place.
    pub(crate) fn requeue(&mut self, id: &WorkflowId, due_ms: u64) -> bool {
        self.next_sequence += 1;
        let key = (due_ms, self.next_sequence);
        let Some(slot) = self.position.get_mut(id) else {
            return false;
        };
        if slot.0 == due_ms {
            return true;
        }
        let old = std::mem::replace(slot, key);
        if let Some(id) = self.order.remove(&old) {
            self.order.insert(key, id);
        }
        true
    }

    /// The first id due at `now_ms`, hidden until `now_ms + unack_ms`; it stays in the queue.
    pub(crate) fn pop(&mut self, now_ms: u64, unack_ms: u64) -> Option<WorkflowId> {
        let (&(due_ms, _), _) = self.order.first_key_value()?;
        if due_ms > now_ms {
            return None;
        }
        let (_, id) = self.order.pop_first()?;
        let key = self.key(now_ms.saturating_add(unack_ms));
        if let Some(slot) = self.position.get_mut(&id) {
            *slot = key;
        }
        self.order.insert(key, id.clone());
        Some(id)
    }

    /// Leave the queue; `false` if `id` was not in it.
    pub(crate) fn remove(&mut self, id: &WorkflowId) -> bool {
        match self.position.remove(id) {
            Some(key) => {
                self.order.remove(&key);
                true
            }
            None => false,
        }
    }

    pub(crate) fn due(&self, id: &WorkflowId) -> Option<u64> {
        self.position.get(id).map(|&(due_ms, _)| due_ms)
    }

    pub(crate) fn len(&self) -> usize {
        self.position.len()
    }

    fn key(&mut self, due_ms: u64) -> (u64, u64) {
        self.next_sequence += 1;
        (due_ms, self.next_sequence)
    }
}

/// A task attempt waiting in its task queue for a worker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueuedTask {
    /// The workflow the attempt belongs to.
    pub workflow: WorkflowId,
    /// The attempt.
    pub task: TaskId,
    /// The queue it waits in: its reference name (the runtime's stand-in for Conductor's task
    /// type, which the core does not model).
    pub reference_name: String,
}

/// One FIFO per reference name. Removal is lazy: a removed attempt leaves the membership set at
/// once and its queue slot is skipped when a poll reaches it.
#[derive(Debug, Default)]
pub(crate) struct TaskQueues {
    queues: Map<String, VecDeque<QueuedTask>>,
    queued: Set<TaskId>,
}

impl TaskQueues {
    /// Adds the attempt unless it is already queued.
    pub(crate) fn push(&mut self, task: QueuedTask) {
        if self.queued.insert(task.task.clone()) {
            match self.queues.get_mut(&task.reference_name) {
                Some(queue) => queue.push_back(task),
                None => {
                    let name = task.reference_name.clone();
                    self.queues.insert(name, VecDeque::from([task]));
                }
            }
        }
    }

    pub(crate) fn remove(&mut self, task: &TaskId) -> bool {
        self.queued.remove(task)
    }

    pub(crate) fn poll(&mut self, reference_name: &str) -> Option<QueuedTask> {
        let queue = self.queues.get_mut(reference_name)?;
        while let Some(task) = queue.pop_front() {
            if self.queued.remove(&task.task) {
                return Some(task);
            }
        }
        None
    }

    pub(crate) fn len(&self) -> usize {
        self.queued.len()
    }
}
