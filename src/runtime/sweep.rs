//! The sweeper: pop a workflow id from the decider queue, lock, read, decide, compare-and-swap,
//! then dequeue it if it is no longer RUNNING or requeue it, both before unlocking (SPEC
//! section 7; D3 was the reverse order).

use super::engine::{Decider, Engine};
use super::error::EngineError;
use super::store::{leave_decider_queue, queue_effects, CallByCall, Requeue, Store, StoreError};
use crate::{transition, Decision, Input, Step, WorkflowId, WorkflowStatus};

/// What one [`Engine::sweep_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sweep {
    /// No workflow is due.
    Empty,
    /// The popped workflow was locked by another operation; it was made due again at once (the
    /// wake-up is not lost, I6a).
    Busy {
        /// The workflow.
        id: WorkflowId,
    },
    /// The decider had nothing to do (a task is live, or its decision was already taken); the
    /// workflow is due again after `sweep_delay_ms`.
    Waiting {
        /// The workflow.
        id: WorkflowId,
        /// Compare-and-swap conflicts redone from a fresh read.
        conflicts: u32,
    },
    /// A decision was committed. A workflow still RUNNING is due again at once (the decider may
    /// have more to do); one that left RUNNING left the decider queue.
    Applied {
        /// The workflow.
        id: WorkflowId,
        /// The committed step.
        step: Step,
        /// Compare-and-swap conflicts redone from a fresh read.
        conflicts: u32,
    },
    /// The workflow is not RUNNING (terminal or paused): removed from the decider queue, no status
    /// changed. Normally its own transition removed it; this is a stale entry after a lease
    /// expiry (SPEC section 7).
    Dequeued {
        /// The workflow.
        id: WorkflowId,
        /// Its status.
        status: WorkflowStatus,
        /// Compare-and-swap conflicts redone from a fresh read.
        conflicts: u32,
    },
    /// The queue named a workflow the store does not have: the entry was removed.
    Unknown {
        /// The id.
        id: WorkflowId,
    },
}

/// A sweep under the lock, and whether it still owes the (deferred) queue removal.
struct Swept {
    sweep: Sweep,
    deferred_leave: bool,
}

/// What the decider's answer asks the sweep to do.
enum Next {
    Commit(Step),
    Done(Swept),
}

impl<S: Store, D: Decider> Engine<S, D> {
    /// One sweep of the first due workflow: pop → lock → read → decide → compare-and-swap →
    /// dequeue or requeue → unlock. A decision the core rejects (a decider bug) is returned as
    /// [`EngineError::Rejected`] after the workflow was requeued with the sweep delay.
    pub fn sweep_once(&self, now_ms: u64) -> Result<Sweep, EngineError> {
        let Some(id) = self.store.queue_pop(now_ms, self.config.unack_ms) else {
            return Ok(Sweep::Empty);
        };
        let Ok(token) = self.acquire(&id, now_ms) else {
            // The pop left the id in the queue, hidden: make it due again rather than leave it
            // hidden behind the unack timeout (a requeue never re-adds an id removed meanwhile).
            self.store.queue_requeue(&id, now_ms);
            return Ok(Sweep::Busy { id });
        };
        let defer_leave = self.config.dequeues_after_unlock();
        let result = self.sweep_locked(&id, now_ms, defer_leave);
        self.release(&id, token);
        let swept = result?;
        if swept.deferred_leave {
            // The negative control (loom only): Conductor's order, dequeue after unlock.
            self.store.queue_remove(&id);
        }
        Ok(swept.sweep)
    }

    /// read → decide → step → compare-and-swap, from a fresh read again on a conflict with a
    /// lock-free report (or, after a lease expiry, with whoever took the lease over).
    fn sweep_locked(
        &self,
        id: &WorkflowId,
        now_ms: u64,
        defer_leave: bool,
    ) -> Result<Swept, EngineError> {
        let attempts = self.config.attempts();
        for conflicts in 0..attempts {
            let step = match self.decide_step(id, now_ms, conflicts, defer_leave)? {
                Next::Commit(step) => step,
                Next::Done(swept) => return Ok(swept),
            };
            let swapped = if defer_leave {
                // The negative control (loom only): queue effects one by one, the removal deferred.
                self.store.compare_and_swap(id, &step).map(|committed| {
                    let mut calls = CallByCall(&self.store);
                    let requeue = Requeue::IfRunning;
                    queue_effects(&mut calls, id, &step, &committed, now_ms, requeue, true)
                })
            } else {
                // Queue effects, then a requeue if still RUNNING, in the commit's store call.
                self.store
                    .commit_and_queue(id, &step, now_ms, Requeue::IfRunning)
                    .map(|()| false)
            };
            match swapped {
                Ok(deferred_leave) => {
                    let sweep = Sweep::Applied {
                        id: id.clone(),
                        step,
                        conflicts,
                    };
                    return Ok(Swept {
                        sweep,
                        deferred_leave,
                    });
                }
                Err(error) if error.is_stale() => {}
                Err(error) => {
                    self.requeue_later(id, now_ms);
                    return Err(error.into());
                }
            }
        }
        self.store.queue_requeue(id, now_ms);
        Err(EngineError::Contention {
            id: id.clone(),
            attempts,
        })
    }

    /// Reads under the lock and asks the decider. Everything but an applied step ends the sweep
    /// here, with the queue already settled.
    fn decide_step(
        &self,
        id: &WorkflowId,
        now_ms: u64,
        conflicts: u32,
        defer_leave: bool,
    ) -> Result<Next, EngineError> {
        let snapshot = match self.store.load(id) {
            Ok(snapshot) => snapshot,
            Err(StoreError::UnknownWorkflow { .. }) => {
                self.store.queue_remove(id);
                let sweep = Sweep::Unknown { id: id.clone() };
                return Ok(done(sweep, false));
            }
            Err(error @ (StoreError::WorkflowExists { .. } | StoreError::Rejected { .. })) => {
                return Err(error.into())
            }
        };
        let status = snapshot.status();
        let input = match self.decider.decide(&snapshot) {
            Decision::Act(input) => Input::Engine(input),
            Decision::Idle if status != WorkflowStatus::Running => {
                drop(snapshot);
                if !defer_leave {
                    leave_decider_queue(&self.store, id, now_ms);
                }
                let sweep = Sweep::Dequeued {
                    id: id.clone(),
                    status,
                    conflicts,
                };
                return Ok(done(sweep, defer_leave));
            }
            // `Idle` on a RUNNING workflow (a custom decider's choice) waits: it stays queued.
            Decision::Wait | Decision::Idle => return Ok(self.wait(id, now_ms, conflicts)),
        };
        let step = transition(&snapshot, &input);
        drop(snapshot);
        match step {
            Ok(step) if step.is_applied() => Ok(Next::Commit(step)),
            // The decision is already true (a duplicate): nothing to do until something changes.
            Ok(_) => Ok(self.wait(id, now_ms, conflicts)),
            Err(rejection) => {
                self.requeue_later(id, now_ms);
                Err(EngineError::Rejected {
                    id: id.clone(),
                    rejection,
                })
            }
        }
    }

    fn wait(&self, id: &WorkflowId, now_ms: u64, conflicts: u32) -> Next {
        self.requeue_later(id, now_ms);
        let sweep = Sweep::Waiting {
            id: id.clone(),
            conflicts,
        };
        done(sweep, false)
    }

    fn requeue_later(&self, id: &WorkflowId, now_ms: u64) {
        self.store
            .queue_requeue(id, now_ms.saturating_add(self.config.sweep_delay_ms));
    }
}

fn done(sweep: Sweep, deferred_leave: bool) -> Next {
    Next::Done(Swept {
        sweep,
        deferred_leave,
    })
}
