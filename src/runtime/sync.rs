//! The one place the runtime takes its concurrency primitives from (STYLE.md, "Loom reaches only
//! the concurrent code, through one shim").
//!
//! Built with `RUSTFLAGS="--cfg wfstate_loom"`, every mutex and atomic here is loom's, so
//! `tests/loom.rs` explores the interleavings of the lock protocol; otherwise they are std's. The
//! switch is a crate-specific cfg, not `cfg(test)`, because integration tests link the library
//! built without `cfg(test)`.
//!
//! Workflow snapshots are shared through `std::sync::Arc` in both builds: they are immutable
//! values, not part of the protocol, and std's reference counting needs no model checking.

#[cfg(wfstate_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(wfstate_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(wfstate_loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(wfstate_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning.
///
/// Every critical section in the runtime is an in-memory update, or a store session of an
/// operation's consecutive calls with the crate's own pure steps between them, and runs no user
/// code (deciders and effect handlers run outside them), so a panic inside one can only be a bug
/// in this crate, and it already surfaces as that panic. The data behind the mutex stays usable:
/// each update validates before it writes.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
