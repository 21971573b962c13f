//! Per-workflow leases: the lock of the runtime protocol (SPEC section 7).
//!
//! A lease is held by a [`LeaseToken`] until a logical time (`expires_at_ms`) computed from the
//! `now_ms` the caller passes in: the table never reads a clock. A lease that has expired can be
//! taken over by anyone, while its old holder may still be running (Conductor's Redis lock behaves
//! the same way). That is why the lock only reduces conflicts and never carries correctness: every
//! write is a compare-and-swap on the workflow version, so a holder whose lease was taken over
//! fails to commit as soon as the new holder has committed (I4, SPEC section 7).

use super::hash::Map;
use std::fmt;

use super::sync::{lock, Mutex};
use crate::WorkflowId;

/// Identifies the holder of a lease. The caller picks it (the engine draws a fresh one per
/// operation); releasing needs the same token, so a holder can only release its own lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseToken(u64);

impl LeaseToken {
    /// A token with this value.
    pub const fn new(value: u64) -> Self {
        LeaseToken(value)
    }

    /// The token's value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A granted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    /// Who holds it.
    pub holder: LeaseToken,
    /// The logical time at which it expires: valid while `now_ms < expires_at_ms`.
    pub expires_at_ms: u64,
}

impl Lease {
    /// Is the lease still valid at `now_ms`?
    pub const fn is_valid_at(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }
}

/// [`LockTable::acquire`] refused: another holder's lease is still valid. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workflow {id} is locked by holder {holder} until {expires_at_ms} ms")]
pub struct LeaseHeld {
    /// The workflow.
    pub id: WorkflowId,
    /// The current holder.
    pub holder: LeaseToken,
    /// When its lease expires.
    pub expires_at_ms: u64,
}

/// [`LockTable::release`] refused: the token does not hold the lease (a wrong token, or a holder
/// whose expired lease was taken over). Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("holder {holder} does not hold the lock on workflow {id}")]
pub struct NotHolder {
    /// The workflow.
    pub id: WorkflowId,
    /// The token that tried to release.
    pub holder: LeaseToken,
    /// The actual holder, if any.
    pub current: Option<LeaseToken>,
}

/// The lock table: at most one valid lease per workflow. Thread-safe; one short critical section
/// per call.
#[derive(Debug, Default)]
pub struct LockTable {
    leases: Mutex<Map<WorkflowId, Lease>>,
}

impl LockTable {
    /// An empty table.
    pub fn new() -> Self {
        LockTable::default()
    }

    /// Grants `holder` the lease on `id` for `lease_ms` from `now_ms` if nobody else holds a valid
    /// one. An expired lease is taken over; the holder's own lease is renewed. Otherwise
    /// [`LeaseHeld`], and nothing changes.
    pub fn acquire(
        &self,
        id: &WorkflowId,
        holder: LeaseToken,
        lease_ms: u64,
        now_ms: u64,
    ) -> Result<Lease, LeaseHeld> {
        let granted = Lease {
            holder,
            expires_at_ms: now_ms.saturating_add(lease_ms),
        };
        let mut leases = lock(&self.leases);
        match leases.get_mut(id) {
            Some(current) if current.holder != holder && current.is_valid_at(now_ms) => {
                Err(LeaseHeld {
                    id: id.clone(),
                    holder: current.holder,
                    expires_at_ms: current.expires_at_ms,
                })
            }
            Some(current) => {
                *current = granted;
                Ok(granted)
            }
            None => {
                leases.insert(id.clone(), granted);
                Ok(granted)
            }
        }
    }

    /// Releases the lease on `id` if `holder` holds it (valid or expired). A release by any other
    /// token is [`NotHolder`] and changes nothing: a late holder whose lease was taken
    /// over cannot release the new holder's lock.
    pub fn release(&self, id: &WorkflowId, holder: LeaseToken) -> Result<(), NotHolder> {
        let mut leases = lock(&self.leases);
        // One lookup on the common path (our own lease); a refusal puts the entry back.
        match leases.remove(id) {
            Some(current) if current.holder == holder => Ok(()),
            Some(current) => {
                leases.insert(id.clone(), current);
                Err(NotHolder {
                    id: id.clone(),
                    holder,
                    current: Some(current.holder),
                })
            }
            None => Err(NotHolder {
                id: id.clone(),
                holder,
                current: None,
            }),
        }
    }

    /// The lease recorded for `id`, valid or expired (`None` when released).
    pub fn lease(&self, id: &WorkflowId) -> Option<Lease> {
        lock(&self.leases).get(id).copied()
    }
}
