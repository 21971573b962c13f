//! The runtime (SPEC section 7): a store, the decider queue, task queues and an outbox, driving
//! the pure transition function through one protocol:
//!
//! ```text
//! lease(workflow) → read (fresh, under the lease) → transition → commit (compare-and-swap, queue
//!   plan and outbox entries in one atomic call) → release → post-commit effects from the outbox
//! ```
//!
//! - Every operation is a value (SPEC section 7.1): a sans-IO state machine ([`Operation`]) that
//!   yields the next [`Call`] of the store contract ([`Next::Call`]) and is resumed with its
//!   [`Reply`]. [`StartOp`], [`SweepOp`], [`ReportOp`], [`PollOp`], [`AdminOp`] (admin and the
//!   caller's engine inputs), [`OutboxOp`] and [`InspectOp`] never touch a store, a mutex or a
//!   clock; what each does after each kind of failure is decided in the machine, once. The
//!   [`Engine`], loom (through the engine) and the stateright model run the same machines.
//! - [`Store`] is the store contract (SPEC section 7.2): one method, [`Store::call`]; each call is
//!   atomic and each can fail with a typed [`StoreFailure`] that says whether it certainly did
//!   not happen or may have (an answer lost). A commit is one call: the compare-and-swap on the
//!   read version, the step's [`QueuePlan`] and its outbox entries. Leases are calls too
//!   (acquired with a [`LeaseToken`] unique across processes, released only by it), and so are
//!   the leased decider-queue pops and task polls: an entry is hidden until a timeout, never
//!   removed by taking it. Expiry follows the `now_ms` the caller passes in: the runtime never
//!   reads a clock. Correctness never depends on the lease: a holder whose lease was taken over
//!   fails its compare-and-swap, because the version moved (I4).
//! - [`StoreState`] is the pure store (`Clone + Eq + Hash`) and the reference semantics of every
//!   call; [`InMemoryStore`] is the embedded default, a `StoreState` behind one mutex.
//! - [`Engine`] is a thin driver with the operations: [`start`](Engine::start) (one atomic insert
//!   that also enters the decider queue), [`report`](Engine::report) and
//!   [`poll_task`](Engine::poll_task) (lease-free, compare-and-swap with bounded retry; a polled
//!   attempt's entry stays queued until the attempt ends, and is handed out again, marked
//!   [`redelivered`](Polled::redelivered), if it reappears while IN_PROGRESS),
//!   [`terminate`](Engine::terminate), [`pause`](Engine::pause), [`resume`](Engine::resume),
//!   [`retry`](Engine::retry) and [`act`](Engine::act) (under the lease),
//!   [`sweep_once`](Engine::sweep_once) (the sweeper), [`run_outbox`](Engine::run_outbox)
//!   (post-commit effects through an [`EffectHandler`]) and [`inspect`](Engine::inspect) (a
//!   consistent view for checking I1–I6). Each has its own error type ([`StartError`],
//!   [`SweepError`], [`ReportError`], [`PollError`], [`AdminError`], [`InspectError`]) with a
//!   `Store(`[`CallFailed`]`)` variant; whatever failed, nothing is lost and a later operation
//!   recovers (`tests/store_failures.rs` fails every call of every operation).
//!
//! Every concurrency primitive comes from one shim (`sync.rs`), switched to loom by
//! `--cfg wfstate_loom`; `tests/loom.rs` checks the operations' interleavings with it.
//! `docs/testing.md` describes the loom scenarios, the stress test and the decisions taken where
//! the specification is silent.
//!
//! ## Driving a workflow to completion
//!
//! ```
//! use std::convert::Infallible;
//!
//! use wfstate::runtime::{Engine, InMemoryStore, OutboxEntry, Sweep};
//! use wfstate::{Definition, Effect, Report, ReportStatus, TaskDefinition, WorkflowId, WorkflowStatus};
//!
//! let definition = Definition::new([TaskDefinition::new("charge"), TaskDefinition::new("ship")]);
//! let engine = Engine::new(InMemoryStore::new(), definition);
//! let order = WorkflowId::new("order-7");
//! let mut now_ms = 0; // the caller's clock: the runtime never reads one
//!
//! // One atomic insert that also enters the decider queue: never half-started.
//! engine.start(order.clone(), now_ms)?;
//! for task in ["charge", "ship"] {
//!     // The sweeper: pop (leased) → lease → read → decide (schedule the task) → commit with the
//!     // queue plan (push the task, stay due) → release.
//!     assert!(matches!(engine.sweep_once(now_ms)?, Sweep::Applied { .. }));
//!     // A worker polls the task (now IN_PROGRESS; its entry stays queued, hidden, until the
//!     // attempt ends) and reports it done, without the lease.
//!     let polled = engine.poll_task(task, now_ms)?.expect("the sweeper scheduled it");
//!     let done = Report::new(polled.task, ReportStatus::Completed);
//!     assert!(engine.report(&order, done.clone(), now_ms)?.step.is_applied());
//!     // The broker redelivers it: a recognisable duplicate, nothing changes (D2).
//!     assert!(engine.report(&order, done, now_ms)?.step.is_duplicate());
//!     now_ms += 10;
//! }
//!
//! // The last decision completes the workflow and leaves the decider queue in one commit (D3).
//! assert!(matches!(engine.sweep_once(now_ms)?, Sweep::Applied { .. }));
//! let completed = engine.store().workflow(&order).expect("stored");
//! assert_eq!(completed.status(), WorkflowStatus::Completed);
//! assert_eq!(engine.sweep_once(now_ms)?, Sweep::Empty);
//! assert_eq!(engine.store().task_len(), 0);
//!
//! // Post-commit effects (listeners, archiving) run from the outbox, at least once (I7).
//! let mut archived = Vec::new();
//! let mut handler = |entry: &OutboxEntry| -> Result<(), Infallible> {
//!     if entry.effect == Effect::Archive {
//!         archived.push(entry.workflow.clone());
//!     }
//!     Ok(())
//! };
//! let run = engine.run_outbox(&mut handler, now_ms, 100);
//! assert!(run.failures.is_empty() && run.store_failure.is_none());
//! assert_eq!(archived, [order]);
//! assert_eq!(engine.store().outbox_len(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod contract;
mod engine;
mod error;
mod hash;
mod memory;
mod op;
mod outbox;
#[cfg(feature = "postgres")]
pub mod postgres;
mod state;
mod sync;

pub use contract::{
    Call, CallKind, CommitReply, Committer, DeciderPlan, Lease, LeaseToken, OutboxEntry, QueuePlan,
    QueuedTask, Receipt, Reply, SessionCall, Store, StoreFailure,
};
pub use engine::{Engine, EngineConfig};
pub use error::{AdminError, InspectError, PollError, ReportError, StartError, SweepError};
pub use memory::InMemoryStore;
pub use op::{
    AdminOp, Applied, CallFailed, Decider, InspectOp, Inspection, Next, Operation, OutboxOp,
    OutboxPass, PollOp, Polled, ReportOp, StartOp, Sweep, SweepOp,
};
pub use outbox::{EffectHandler, OutboxFailure, OutboxRun};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use state::StoreState;
