//! The runtime (SPEC section 7): a store, per-workflow lease locks, the decider queue, task queues
//! and an outbox, driving the pure transition function through one protocol:
//!
//! ```text
//! lock(workflow) → read (fresh, under the lock) → transition → compare-and-swap persist
//!   → queue effects → unlock → run post-commit effects from the outbox
//! ```
//!
//! - [`Store`] is the storage trait; [`InMemoryStore`] is the embedded default (a mutex per
//!   structure, copy-on-write snapshots, a commit applies its step in place and performs its
//!   queue effects in the same atomic action).
//! - [`LockTable`] holds the leases. Expiry follows the `now_ms` the caller passes in: the runtime
//!   never reads a clock. Correctness never depends on the lock: a holder whose lease was taken
//!   over fails its compare-and-swap, because the version moved (I4).
//! - [`Engine`] has the operations: [`start`](Engine::start), [`report`](Engine::report) and
//!   [`poll_task`](Engine::poll_task) (lock-free, compare-and-swap with bounded retry),
//!   [`terminate`](Engine::terminate), [`pause`](Engine::pause), [`resume`](Engine::resume),
//!   [`retry`](Engine::retry) and [`act`](Engine::act) (under the lock),
//!   [`sweep_once`](Engine::sweep_once) (the sweeper), [`run_outbox`](Engine::run_outbox)
//!   (post-commit effects through an [`EffectHandler`]) and [`inspect`](Engine::inspect) (a
//!   consistent view for checking I1–I6).
//!
//! Every concurrency primitive comes from one shim (`sync.rs`), switched to loom by
//! `--cfg wfstate_loom`; `tests/loom.rs` checks the lock protocol with it. `docs/testing.md`
//! describes the loom scenarios, the stress test and the decisions taken where the specification
//! is silent.
//!
//! ## Driving a workflow to completion
//!
//! ```
//! use std::convert::Infallible;
//!
//! use wfstate::runtime::{Engine, InMemoryStore, OutboxEntry, Store, Sweep};
//! use wfstate::{Definition, Effect, Report, ReportStatus, TaskDefinition, WorkflowId, WorkflowStatus};
//!
//! let definition = Definition::new([TaskDefinition::new("charge"), TaskDefinition::new("ship")]);
//! let engine = Engine::new(InMemoryStore::new(), definition);
//! let order = WorkflowId::new("order-7");
//! let mut now_ms = 0; // the caller's clock: the runtime never reads one
//!
//! engine.start(order.clone(), now_ms)?;
//! for task in ["charge", "ship"] {
//!     // The sweeper: lock → read → decide (schedule the task) → compare-and-swap → requeue → unlock.
//!     assert!(matches!(engine.sweep_once(now_ms)?, Sweep::Applied { .. }));
//!     // A worker polls the task (now IN_PROGRESS) and reports it done, without the lock.
//!     let polled = engine.poll_task(task)?.expect("the sweeper scheduled it");
//!     let done = Report::new(polled.task, ReportStatus::Completed);
//!     assert!(engine.report(&order, done.clone(), now_ms)?.step.is_applied());
//!     // The broker redelivers it: a recognisable duplicate, nothing changes (D2).
//!     assert!(engine.report(&order, done, now_ms)?.step.is_duplicate());
//!     now_ms += 10;
//! }
//!
//! // The last decision completes the workflow; it leaves the decider queue before the unlock (D3).
//! assert!(matches!(engine.sweep_once(now_ms)?, Sweep::Applied { .. }));
//! assert_eq!(engine.store().load(&order)?.status(), WorkflowStatus::Completed);
//! assert_eq!(engine.sweep_once(now_ms)?, Sweep::Empty);
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
//! assert!(run.failures.is_empty());
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
mod state;
mod sync;

pub use contract::{
    Call, CallKind, CommitReply, Committer, DeciderPlan, Lease, LeaseToken, OutboxEntry,
    QueuePlan, QueuedTask, Receipt, Reply, Store, StoreFailure,
};
pub use engine::{Engine, EngineConfig};
pub use error::{AdminError, InspectError, PollError, ReportError, StartError, SweepError};
pub use memory::InMemoryStore;
pub use op::{
    AdminOp, Applied, CallFailed, Decider, InspectOp, Inspection, Next, Operation, OutboxOp,
    OutboxPass, PollOp, Polled, ReportOp, StartOp, Sweep, SweepOp,
};
pub use outbox::{EffectHandler, OutboxFailure, OutboxRun};
pub use state::StoreState;
