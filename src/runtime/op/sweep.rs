//! The sweep: pop a workflow id from the decider queue (leased), lock, read, decide, commit with
//! the queue plan (which dequeues a workflow that left RUNNING, or makes it due again), unlock.
//! Dequeuing is part of the commit, so it always comes before the unlock (D3 was the reverse).
//!
//! | state | call | reply → next |
//! |---|---|---|
//! | Pop | pop_decider | none → Done(Empty); id → Acquire; failed → Done(error) |
//! | Acquire | acquire | granted → Load; held → HandBack; ambiguous → Release(error); failed → Done(error) |
//! | HandBack | hand_back | any → Done(Busy); failed → Done(error) |
//! | Load | load | missing → Drop(Unknown); RUNNING and a decision → Commit; `Wait` → Requeue(Waiting); not RUNNING and `Idle` → Drop(Dequeued); decision rejected → Requeue(error); failed → Release(error) |
//! | Commit | commit | done → Release(Applied); stale → Load, or after `max_attempts` Requeue(Contention); missing → Drop(Unknown); failed → Release(error) |
//! | Requeue | hand_back | any → Release; failed → Release(error) |
//! | Drop | drop_if_not_running | any → Release; failed → Release(error) |
//! | Release | release | any → Done; failed → Done(error) |

use super::super::contract::{
    Call, CallKind, CommitReply, Committer, LeaseToken, QueuePlan, Reply, StoreFailure,
};
use super::{replied, CallFailed, Decider, Next, Operation, Pending};
use crate::runtime::error::SweepError;
use crate::runtime::EngineConfig;
use crate::{transition, Decision, Input, Step, WorkflowId, WorkflowStatus};

/// What one sweep did.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
    /// workflow is due again after `sweep_delay_ms`, unless something moved its entry since the
    /// pop (a report that ended a task made it due at once: that stands).
    Waiting {
        /// The workflow.
        id: WorkflowId,
        /// Compare-and-swap conflicts redone from a fresh read.
        conflicts: u32,
    },
    /// A decision was committed. A workflow still RUNNING is due again at once (the decider may
    /// have more to do); one that left RUNNING left the decider queue in the same commit.
    Applied {
        /// The workflow.
        id: WorkflowId,
        /// The committed step.
        step: Step,
        /// Compare-and-swap conflicts redone from a fresh read.
        conflicts: u32,
    },
    /// The workflow is not RUNNING (terminal or paused): removed from the decider queue, no status
    /// changed. Normally its own commit removed it; this is a stale entry after a lease expiry
    /// (SPEC section 7).
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

type Outcome = Result<Sweep, SweepError>;

/// The machine's state. The sweep's outcome, once known, waits in [`SweepOp::outcome`] rather
/// than in here: a small state is cheap to move on each call (docs/performance.md).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Pc {
    Pop,
    Acquire { id: WorkflowId },
    HandBack { id: WorkflowId },
    Load { id: WorkflowId, conflicts: u32 },
    Commit { id: WorkflowId, conflicts: u32 },
    Requeue { id: WorkflowId, due_ms: u64 },
    Drop { id: WorkflowId },
    Release { id: WorkflowId },
    Done,
}

/// One sweep of the first due workflow, as a state machine (the table in this module's source
/// and in `docs/design.md`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SweepOp {
    token: LeaseToken,
    now_ms: u64,
    lease_ms: u64,
    unack_ms: u64,
    sweep_delay_ms: u64,
    max_attempts: u32,
    pc: Pc,
    /// Set on entering Requeue, Drop, Release or Done (the outcome they carry in the table);
    /// `None` before.
    outcome: Option<Outcome>,
    /// The step and plan to commit: set exactly in Commit.
    pending: Option<Pending>,
}

impl SweepOp {
    /// A sweep at `now_ms` holding `token`, with `config`'s durations and bound.
    pub fn new(token: LeaseToken, now_ms: u64, config: &EngineConfig) -> Self {
        SweepOp {
            token,
            now_ms,
            lease_ms: config.lease_ms,
            unack_ms: config.unack_ms,
            sweep_delay_ms: config.sweep_delay_ms,
            max_attempts: config.attempts(),
            pc: Pc::Pop,
            outcome: None,
            pending: None,
        }
    }

    /// Its lease token.
    pub fn token(&self) -> LeaseToken {
        self.token
    }

    /// The same sweep, holding `token` instead: for a model checker's symmetry reduction, which
    /// swaps interchangeable sweepers and renames the store's holders alike
    /// ([`StoreState::rename_holders`](crate::runtime::StoreState::rename_holders)). An engine
    /// has no use for it: a sweep's token is its identity towards the store.
    pub fn rename(&mut self, token: LeaseToken) {
        self.token = token;
    }

    fn later(&self) -> u64 {
        self.now_ms.saturating_add(self.sweep_delay_ms)
    }

    /// Enters `pc` with `outcome`.
    fn with(&mut self, pc: Pc, outcome: Outcome) -> Pc {
        self.outcome = Some(outcome);
        pc
    }

    /// The workflow is gone: its entry goes too.
    #[cold]
    #[inline(never)]
    fn unknown(&mut self, id: WorkflowId) -> Pc {
        self.outcome = Some(Ok(Sweep::Unknown { id: id.clone() }));
        Pc::Drop { id }
    }

    #[cold]
    #[inline(never)]
    fn failed(&mut self, id: Option<WorkflowId>, failure: CallFailed) -> Pc {
        self.outcome = Some(Err(SweepError::Store(failure)));
        match id {
            Some(id) => Pc::Release { id },
            None => Pc::Done,
        }
    }

    /// A release that failed: an outcome that was a success becomes the failure (what was
    /// done stands; the caller learns the lease was not released, it runs out by itself).
    #[cold]
    #[inline(never)]
    fn release_failed(&mut self, failure: CallFailed) {
        self.outcome = self
            .outcome
            .take()
            .map(|outcome| outcome.and(Err(SweepError::Store(failure))));
    }

    /// A commit that did not report done (stale, unknown, failed), or a done reply without the
    /// pending step (impossible: Commit is entered with it; the `Ok(_)` arm treats it as a
    /// mismatched reply).
    fn commit_not_done(
        &mut self,
        id: WorkflowId,
        conflicts: u32,
        reply: Result<Reply, CallFailed>,
    ) -> Pc {
        match reply {
            Ok(Reply::Committed(CommitReply::Stale { .. }))
                if conflicts + 1 < self.max_attempts =>
            {
                Pc::Load {
                    id,
                    conflicts: conflicts + 1,
                }
            }
            Ok(Reply::Committed(CommitReply::Stale { .. })) => {
                let outcome = Err(SweepError::Contention {
                    id: id.clone(),
                    attempts: self.max_attempts,
                });
                let due_ms = self.now_ms;
                self.with(Pc::Requeue { id, due_ms }, outcome)
            }
            Ok(Reply::Committed(CommitReply::Unknown)) => self.unknown(id),
            Ok(_) => self.failed(Some(id), CallFailed::mismatch(CallKind::Commit)),
            // Committed or not, the entry is safe: the commit's plan settled it, or it is
            // still hidden by our pop and reappears after unack.
            Err(failure) => self.failed(Some(id), failure),
        }
    }

    /// The decider's answer on a workflow read under the lock.
    fn decide(
        &mut self,
        id: WorkflowId,
        conflicts: u32,
        workflow: &crate::Workflow,
        decider: &dyn Decider,
    ) -> Pc {
        let status = workflow.status();
        let waiting = |op: &mut SweepOp, id: WorkflowId| {
            let outcome = Ok(Sweep::Waiting {
                id: id.clone(),
                conflicts,
            });
            let due_ms = op.later();
            op.with(Pc::Requeue { id, due_ms }, outcome)
        };
        let input = match decider.decide(workflow) {
            Decision::Act(input) => Input::Engine(input),
            Decision::Idle if status != WorkflowStatus::Running => {
                let outcome = Ok(Sweep::Dequeued {
                    id: id.clone(),
                    status,
                    conflicts,
                });
                return self.with(Pc::Drop { id }, outcome);
            }
            // `Idle` on a RUNNING workflow (a custom decider's choice) waits: it stays queued.
            Decision::Wait | Decision::Idle => return waiting(self, id),
        };
        match transition(workflow, &input) {
            Ok(step) if step.is_applied() => {
                let plan = QueuePlan::of(&id, &step, Committer::Sweeper);
                self.pending = Some(Pending { step, plan });
                Pc::Commit { id, conflicts }
            }
            // The decision is already true (a duplicate): nothing to do until something changes.
            Ok(_) => waiting(self, id),
            Err(rejection) => {
                let outcome = Err(SweepError::Rejected {
                    id: id.clone(),
                    rejection,
                });
                let due_ms = self.later();
                self.with(Pc::Requeue { id, due_ms }, outcome)
            }
        }
    }
}

impl Operation for SweepOp {
    type Output = Outcome;

    fn next(&self) -> Next<'_> {
        let call = match &self.pc {
            Pc::Pop => Call::PopDecider {
                token: self.token,
                now_ms: self.now_ms,
                unack_ms: self.unack_ms,
            },
            Pc::Acquire { id } => Call::Acquire {
                id,
                token: self.token,
                lease_ms: self.lease_ms,
                now_ms: self.now_ms,
            },
            Pc::HandBack { id } => Call::HandBack {
                id,
                token: self.token,
                due_ms: self.now_ms,
            },
            Pc::Load { id, .. } => Call::Load { id },
            Pc::Commit { id, .. } => match &self.pending {
                Some(pending) => Call::Commit {
                    id,
                    step: &pending.step,
                    plan: &pending.plan,
                    now_ms: self.now_ms,
                },
                // Never: Commit is entered with its pending step.
                None => return Next::Done,
            },
            // Conditional on our pop: a report that ended a task since our read moved the entry
            // (due at once), and a decision taken on the older state must not delay it.
            Pc::Requeue { id, due_ms } => Call::HandBack {
                id,
                token: self.token,
                due_ms: *due_ms,
            },
            Pc::Drop { id } => Call::DropIfNotRunning { id },
            Pc::Release { id } => Call::Release {
                id,
                token: self.token,
            },
            Pc::Done => return Next::Done,
        };
        Next::Call(call)
    }

    fn resume(&mut self, reply: Result<Reply, StoreFailure>, decider: &dyn Decider) {
        let pc = std::mem::replace(&mut self.pc, Pc::Pop);
        self.pc = match pc {
            Pc::Pop => match replied(CallKind::PopDecider, reply) {
                Ok(Reply::Popped(None)) => self.with(Pc::Done, Ok(Sweep::Empty)),
                Ok(Reply::Popped(Some(id))) => Pc::Acquire { id },
                Ok(_) => self.failed(None, CallFailed::mismatch(CallKind::PopDecider)),
                // A pop that may have happened left its entry hidden: it reappears after unack.
                Err(failure) => self.failed(None, failure),
            },
            Pc::Acquire { id } => match replied(CallKind::Acquire, reply) {
                Ok(Reply::Acquired(Ok(_))) => Pc::Load { id, conflicts: 0 },
                Ok(Reply::Acquired(Err(_))) => Pc::HandBack { id },
                Ok(_) => self.failed(Some(id), CallFailed::mismatch(CallKind::Acquire)),
                // Maybe granted: release by our token, which is harmless if it was not.
                Err(failure) if failure.is_ambiguous() => self.failed(Some(id), failure),
                Err(failure) => self.failed(None, failure),
            },
            Pc::HandBack { id } => match replied(CallKind::HandBack, reply) {
                Ok(Reply::Moved(_)) => self.with(Pc::Done, Ok(Sweep::Busy { id })),
                Ok(_) => self.failed(None, CallFailed::mismatch(CallKind::HandBack)),
                Err(failure) => self.failed(None, failure),
            },
            Pc::Load { id, conflicts } => match replied(CallKind::Load, reply) {
                Ok(Reply::Loaded(Some(workflow))) => self.decide(id, conflicts, &workflow, decider),
                Ok(Reply::Loaded(None)) => self.unknown(id),
                Ok(_) => self.failed(Some(id), CallFailed::mismatch(CallKind::Load)),
                Err(failure) => self.failed(Some(id), failure),
            },
            Pc::Commit { id, conflicts } => {
                match (replied(CallKind::Commit, reply), self.pending.take()) {
                    (Ok(Reply::Committed(CommitReply::Done(_))), Some(pending)) => {
                        let outcome = Ok(Sweep::Applied {
                            id: id.clone(),
                            step: pending.step,
                            conflicts,
                        });
                        self.with(Pc::Release { id }, outcome)
                    }
                    (reply, _) => self.commit_not_done(id, conflicts, reply),
                }
            }
            // Requeue, Drop and Release keep the outcome they were entered with, unless their
            // call fails: then the failure is the outcome (the table's "failed → …(error)").
            Pc::Requeue { id, .. } => match replied(CallKind::HandBack, reply) {
                Ok(Reply::Moved(_)) => Pc::Release { id },
                Ok(_) => self.failed(Some(id), CallFailed::mismatch(CallKind::HandBack)),
                Err(failure) => self.failed(Some(id), failure),
            },
            Pc::Drop { id } => match replied(CallKind::DropIfNotRunning, reply) {
                Ok(Reply::Moved(_)) => Pc::Release { id },
                Ok(_) => self.failed(Some(id), CallFailed::mismatch(CallKind::DropIfNotRunning)),
                Err(failure) => self.failed(Some(id), failure),
            },
            Pc::Release { .. } => {
                let failure = match replied(CallKind::Release, reply) {
                    // `false`: our lease expired and was taken over; the version fenced every
                    // write made after that (I4), nothing to undo.
                    Ok(Reply::Released(_)) => None,
                    Ok(_) => Some(CallFailed::mismatch(CallKind::Release)),
                    // The lease runs out by itself; what the sweep did stands.
                    Err(failure) => Some(failure),
                };
                if let Some(failure) = failure {
                    self.release_failed(failure);
                }
                Pc::Done
            }
            Pc::Done => Pc::Done,
        };
    }

    fn decides(&self) -> bool {
        matches!(self.pc, Pc::Load { .. })
    }

    fn state_name(&self) -> &'static str {
        match self.pc {
            Pc::Pop => "Pop",
            Pc::Acquire { .. } => "Acquire",
            Pc::HandBack { .. } => "HandBack",
            Pc::Load { .. } => "Load",
            Pc::Commit { .. } => "Commit",
            Pc::Requeue { .. } => "Requeue",
            Pc::Drop { .. } => "Drop",
            Pc::Release { .. } => "Release",
            Pc::Done => "Done",
        }
    }

    fn finish(self) -> Option<Outcome> {
        match self.pc {
            Pc::Done => self.outcome,
            _ => None,
        }
    }
}
