//! The embedded store: a [`StoreState`] behind one mutex, each call (or each session of an
//! operation's consecutive calls, [`Store::session`]) one short critical section that runs no
//! user code. Snapshots are `Arc`s; a commit applies its step in place
//! ([`Workflow::apply`], cost proportional to the step) unless a reader still holds the previous
//! snapshot, in which case it copies first (copy on write). Readers never see a half-applied step.

use std::sync::Arc;

use super::contract::{Call, Reply, SessionCall, Store, StoreFailure};
use super::state::StoreState;
use super::sync::{lock, Mutex};
use crate::{Workflow, WorkflowId};

/// The embedded default store: one process, everything in memory. Its calls never fail.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    state: Mutex<StoreState>,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        InMemoryStore::default()
    }

    /// A store holding `state`.
    pub fn from_state(state: StoreState) -> Self {
        InMemoryStore {
            state: Mutex::new(state),
        }
    }

    /// Reads the whole state at one instant.
    pub fn read<T>(&self, read: impl FnOnce(&StoreState) -> T) -> T {
        read(&lock(&self.state))
    }

    /// A copy of the whole state at one instant.
    pub fn snapshot(&self) -> StoreState {
        self.read(StoreState::clone)
    }

    /// The stored workflow `id`.
    pub fn workflow(&self, id: &WorkflowId) -> Option<Arc<Workflow>> {
        self.read(|state| state.workflow(id).cloned())
    }

    /// How many workflows it holds.
    pub fn len(&self) -> usize {
        self.read(StoreState::workflow_count)
    }

    /// Does it hold no workflow?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many effects the outbox owes.
    pub fn outbox_len(&self) -> usize {
        self.read(StoreState::outbox_len)
    }

    /// How many workflows the decider queue holds.
    pub fn decider_len(&self) -> usize {
        self.read(StoreState::decider_len)
    }

    /// How many attempts wait in task queues.
    pub fn task_len(&self) -> usize {
        self.read(StoreState::task_len)
    }
}

impl Store for InMemoryStore {
    fn call(&self, call: Call<'_>) -> Result<Reply, StoreFailure> {
        Ok(lock(&self.state).execute(call))
    }

    /// The session's calls under one lock: each is still atomic on its own, and nothing else
    /// runs between them (the engine runs no user code inside a session).
    fn session(&self, calls: &mut dyn FnMut(&mut SessionCall<'_>)) {
        let mut state = lock(&self.state);
        calls(&mut |call| Ok(state.execute(call)));
    }
}
