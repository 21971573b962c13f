//! The outbox: post-commit effects (SPEC section 5, phase 3) owed by committed steps, performed
//! at least once by [`Engine::run_outbox`](super::Engine::run_outbox) through an
//! [`EffectHandler`] (I7).
//!
//! A store appends a step's post-commit effects in the same atomic action as the step's
//! compare-and-swap (a transactional outbox), so an effect is owed exactly when its step is
//! committed. Taking entries claims them until `now + claim_ms` instead of removing them: an entry
//! leaves the outbox only when it is acknowledged after its handler succeeded. A handler that fails,
//! or a runner that dies halfway, leaves the entry to reappear when the claim runs out. A failure is
//! never written back into any workflow: the state committed before is already complete (D1).
//!
//! Entries of one workflow are taken in commit order, but a failed entry is retried later, so a
//! handler can see a later entry of the same workflow first. Each entry carries the version whose
//! commit owed it: a listener can drop a notification older than one it has already seen.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Effect, WorkflowId};

/// One effect owed by a committed step.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutboxEntry {
    /// The entry's id in the outbox (increasing in append order); acknowledge with it.
    pub sequence: u64,
    /// The workflow whose step owed the effect.
    pub workflow: WorkflowId,
    /// The workflow version that step committed.
    pub version: u64,
    /// The effect: [`Effect::NotifyListeners`], [`Effect::Archive`] or
    /// [`Effect::StopRunningTask`].
    pub effect: Effect,
    /// How many times the entry has been taken, this time included (1 on the first try).
    pub attempts: u32,
}

/// Performs post-commit effects for [`Engine::run_outbox`](super::Engine::run_outbox). It must be
/// idempotent: an effect is performed at least once, and again after any failure.
///
/// Closures `FnMut(&OutboxEntry) -> Result<(), E>` are handlers.
pub trait EffectHandler {
    /// Why performing an effect failed.
    type Error;

    /// Performs one entry's effect. `Err` leaves the entry in the outbox for a later try.
    fn perform(&mut self, entry: &OutboxEntry) -> Result<(), Self::Error>;
}

impl<F, E> EffectHandler for F
where
    F: FnMut(&OutboxEntry) -> Result<(), E>,
{
    type Error = E;

    fn perform(&mut self, entry: &OutboxEntry) -> Result<(), E> {
        self(entry)
    }
}

/// One entry whose handler failed; it stays in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxFailure<E> {
    /// The entry, as it was taken.
    pub entry: OutboxEntry,
    /// What the handler returned.
    pub error: E,
}

/// What one [`Engine::run_outbox`](super::Engine::run_outbox) pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "failed effects are retried later, but their errors are only reported here"]
pub struct OutboxRun<E> {
    /// Entries performed and acknowledged.
    pub performed: usize,
    /// Entries whose handler failed, left for a retry after the claim runs out.
    pub failures: Vec<OutboxFailure<E>>,
}

/// The in-memory outbox behind [`InMemoryStore`](super::InMemoryStore).
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Sequence → (visible from, entry).
    entries: BTreeMap<u64, (u64, OutboxEntry)>,
    /// (visible from, sequence), for taking in order of visibility, then of appending.
    visible: BTreeSet<(u64, u64)>,
    next_sequence: u64,
}

impl Outbox {
    /// Appends entries visible at once (visible from time 0).
    pub(crate) fn append<'a>(
        &mut self,
        workflow: &WorkflowId,
        version: u64,
        effects: impl IntoIterator<Item = &'a Effect>,
    ) {
        for effect in effects {
            self.next_sequence += 1;
            let sequence = self.next_sequence;
            let entry = OutboxEntry {
                sequence,
                workflow: workflow.clone(),
                version,
                effect: effect.clone(),
                attempts: 0,
            };
            self.entries.insert(sequence, (0, entry));
            self.visible.insert((0, sequence));
        }
    }

    /// Up to `max` entries visible at `now_ms`, claimed until `now_ms + claim_ms`.
    pub(crate) fn take(&mut self, now_ms: u64, claim_ms: u64, max: usize) -> Vec<OutboxEntry> {
        let due: Vec<(u64, u64)> = self
            .visible
            .range(..=(now_ms, u64::MAX))
            .take(max)
            .copied()
            .collect();
        let claimed_until = now_ms.saturating_add(claim_ms);
        let mut taken = Vec::with_capacity(due.len());
        for key in due {
            self.visible.remove(&key);
            let sequence = key.1;
            if let Some((visible_from, entry)) = self.entries.get_mut(&sequence) {
                *visible_from = claimed_until;
                entry.attempts = entry.attempts.saturating_add(1);
                self.visible.insert((claimed_until, sequence));
                taken.push(entry.clone());
            }
        }
        taken
    }

    /// Removes an entry for good; `false` if it was not there (already acknowledged).
    pub(crate) fn acknowledge(&mut self, sequence: u64) -> bool {
        match self.entries.remove(&sequence) {
            Some((visible_from, _)) => {
                self.visible.remove(&(visible_from, sequence));
                true
            }
            None => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
