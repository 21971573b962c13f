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

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::hash::Map;
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
///
/// Entries are taken in order of (visible from, sequence). An entry never taken is visible from
/// time 0, and appends come in sequence order, so the entries never taken are exactly those at or
/// after a cursor (`fresh`), in order, with no index to keep; only a taken entry gets a key in
/// `claimed`, a min-heap of (visible from, sequence). Acknowledging removes the entry only: its
/// heap key goes stale and is dropped when it reaches the top (or when stale keys outnumber live
/// ones). An entry thus costs a map insert and remove and a heap push and pop over its life,
/// where two ordered sets cost four tree updates and an ordered scan.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Sequence → (visible from, entry), for every entry owed.
    entries: Map<u64, (u64, OutboxEntry)>,
    /// The first sequence that may not have been taken yet: every entry at or after it is
    /// visible from time 0.
    fresh: u64,
    /// (visible from, sequence) of every taken entry still owed, plus stale keys of entries
    /// acknowledged since (their sequence is no longer in `entries`).
    claimed: BinaryHeap<Reverse<(u64, u64)>>,
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
        }
    }

    /// Up to `max` entries visible at `now_ms`, claimed until `now_ms + claim_ms`.
    pub(crate) fn take(&mut self, now_ms: u64, claim_ms: u64, max: usize) -> Vec<OutboxEntry> {
        if self.claimed.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.claimed
                .retain(|Reverse((_, sequence))| entries.contains_key(sequence));
        }
        // Choose first, then claim: an entry claimed in this pass is not taken twice by it.
        let mut due = Vec::new();
        while due.len() < max {
            let fresh = self.next_fresh();
            let claimed = self.next_claimed();
            let sequence = match (fresh, claimed) {
                (Some(fresh), Some((visible_from, claimed)))
                    if visible_from <= now_ms && (visible_from, claimed) < (0, fresh) =>
                {
                    self.claimed.pop();
                    claimed
                }
                (Some(fresh), _) => {
                    self.fresh = fresh + 1;
                    fresh
                }
                (None, Some((visible_from, claimed))) if visible_from <= now_ms => {
                    self.claimed.pop();
                    claimed
                }
                (None, _) => break,
            };
            due.push(sequence);
        }
        let claimed_until = now_ms.saturating_add(claim_ms);
        let mut taken = Vec::with_capacity(due.len());
        for sequence in due {
            if let Some((visible_from, entry)) = self.entries.get_mut(&sequence) {
                *visible_from = claimed_until;
                entry.attempts = entry.attempts.saturating_add(1);
                self.claimed.push(Reverse((claimed_until, sequence)));
                taken.push(entry.clone());
            }
        }
        taken
    }

    /// The oldest entry never taken, if any (skipping entries acknowledged before being taken).
    fn next_fresh(&mut self) -> Option<u64> {
        while self.fresh <= self.next_sequence {
            if self.entries.contains_key(&self.fresh) {
                return Some(self.fresh);
            }
            self.fresh += 1;
        }
        None
    }

    /// The smallest live claim key, dropping stale keys on the way.
    fn next_claimed(&mut self) -> Option<(u64, u64)> {
        while let Some(&Reverse((visible_from, sequence))) = self.claimed.peek() {
            match self.entries.get(&sequence) {
                Some(&(current, _)) if current == visible_from => {
                    return Some((visible_from, sequence))
                }
                Some(_) | None => {
                    self.claimed.pop();
                }
            }
        }
        None
    }

    /// Removes an entry for good; `false` if it was not there (already acknowledged).
    pub(crate) fn acknowledge(&mut self, sequence: u64) -> bool {
        self.entries.remove(&sequence).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::{Outbox, OutboxEntry};
    use crate::{Effect, WorkflowId, WorkflowStatus};

    /// The outbox as it was first written, two ordered sets: the reference the heap-and-cursor
    /// outbox must match, take for take (I7: at least once, in (visible from, sequence) order).
    #[derive(Default)]
    struct Reference {
        entries: BTreeMap<u64, (u64, OutboxEntry)>,
        visible: BTreeSet<(u64, u64)>,
        next_sequence: u64,
    }

    impl Reference {
        fn append(&mut self, workflow: &WorkflowId, version: u64, effects: &[Effect]) {
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

        fn take(&mut self, now_ms: u64, claim_ms: u64, max: usize) -> Vec<OutboxEntry> {
            let due: Vec<(u64, u64)> = self
                .visible
                .range(..=(now_ms, u64::MAX))
                .take(max)
                .copied()
                .collect();
            let claimed_until = now_ms.saturating_add(claim_ms);
            let mut taken = Vec::new();
            for key in due {
                self.visible.remove(&key);
                if let Some((visible_from, entry)) = self.entries.get_mut(&key.1) {
                    *visible_from = claimed_until;
                    entry.attempts += 1;
                    self.visible.insert((claimed_until, key.1));
                    taken.push(entry.clone());
                }
            }
            taken
        }

        fn acknowledge(&mut self, sequence: u64) -> bool {
            match self.entries.remove(&sequence) {
                Some((visible_from, _)) => {
                    self.visible.remove(&(visible_from, sequence));
                    true
                }
                None => false,
            }
        }
    }

    /// A small deterministic generator (xorshift), so the test needs no dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// I7: the outbox takes, claims and acknowledges exactly as the two-set reference does, over
    /// random appends, takes (claims of 0 ms included, so claimed entries reappear at once),
    /// acknowledgements (of taken, untaken and unknown entries) and clock moves.
    #[test]
    fn the_outbox_matches_the_reference_on_random_operations() {
        let effects = [
            Effect::NotifyListeners {
                status: WorkflowStatus::Completed,
            },
            Effect::Archive,
        ];
        for seed in 1..200u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let (mut outbox, mut reference) = (Outbox::default(), Reference::default());
            let mut now_ms = 0;
            for step in 0..300u64 {
                let workflow = WorkflowId::new(format!("wf-{}", step % 7));
                match rng.below(6) {
                    0 | 1 => {
                        let owed = &effects[..rng.below(3) as usize];
                        outbox.append(&workflow, step, owed);
                        reference.append(&workflow, step, owed);
                    }
                    2 | 3 => {
                        let claim_ms = rng.below(3) * 5;
                        let max = rng.below(5) as usize;
                        let taken = outbox.take(now_ms, claim_ms, max);
                        assert_eq!(taken, reference.take(now_ms, claim_ms, max), "seed {seed}");
                        for entry in taken {
                            if rng.below(3) != 0 {
                                assert!(outbox.acknowledge(entry.sequence));
                                assert!(reference.acknowledge(entry.sequence));
                            }
                        }
                    }
                    4 => {
                        let sequence = rng.below(reference.next_sequence + 2);
                        assert_eq!(
                            outbox.acknowledge(sequence),
                            reference.acknowledge(sequence),
                            "seed {seed}"
                        );
                    }
                    _ => now_ms += rng.below(8),
                }
                assert_eq!(outbox.len(), reference.entries.len(), "seed {seed}");
            }
        }
    }
}
