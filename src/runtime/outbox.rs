//! Effect handlers: what performs the outbox's post-commit effects (SPEC section 5, phase 3) for
//! [`Engine::run_outbox`](super::Engine::run_outbox), at least once each (I7).
//!
//! A commit appends its post-commit effects in the same atomic action as its compare-and-swap (a
//! transactional outbox), so an effect is owed exactly when its step is committed. Taking entries
//! claims them until `now + claim_ms` instead of removing them: an entry leaves the outbox only
//! when it is acknowledged after its handler succeeded. A handler that fails, or a runner that
//! dies halfway, leaves the entry to reappear when the claim runs out. A failure is never written
//! back into any workflow: the state committed before is already complete (D1).
//!
//! Entries of one workflow are taken in commit order, but a failed entry is retried later, so a
//! handler can see a later entry of the same workflow first. Each entry carries the version whose
//! commit owed it: a listener can drop a notification older than one it has already seen.

use super::contract::OutboxEntry;
use super::op::CallFailed;

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
    /// A store call that failed and ended the pass early; the entries it left are retried after
    /// their claim runs out.
    pub store_failure: Option<CallFailed>,
}
