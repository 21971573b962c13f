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
use super::{replied, CallFailed, Decider, Next, Operation};
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

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Pc {
    Pop,
    Acquire {
        id: WorkflowId,
    },
    HandBack {
        id: WorkflowId,
    },
    Load {
        id: WorkflowId,
        conflicts: u32,
    },
    Commit {
        id: WorkflowId,
        step: Step,
        plan: QueuePlan,
        conflicts: u32,
    },
    Requeue {
        id: WorkflowId,
        due_ms: u64,
        outcome: Outcome,
    },
    Drop {
        id: WorkflowId,
        outcome: Outcome,
    },
    Release {
        id: WorkflowId,
        outcome: Outcome,
    },
    Done(Outcome),
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
        }
    }

    /// Its lease token.
    pub fn token(&self) -> LeaseToken {
        self.token
    }

    fn later(&self) -> u64 {
        self.now_ms.saturating_add(self.sweep_delay_ms)
    }

    /// The workflow is gone: its entry goes too.
    #[cold]
    #[inline(never)]
    fn unknown(id: WorkflowId) -> Pc {
        let outcome = Ok(Sweep::Unknown { id: id.clone() });
        Pc::Drop { id, outcome }
    }

    #[cold]
    #[inline(never)]
    fn failed(&self, id: Option<WorkflowId>, failure: CallFailed) -> Pc {
        let outcome = Err(SweepError::Store(failure));
        match id {
            Some(id) => Pc::Release { id, outcome },
            None => Pc::Done(outcome),
        }
    }

    /// The decider's answer on a workflow read under the lock.
    fn decide(
        &self,
        id: WorkflowId,
        conflicts: u32,
        workflow: &crate::Workflow,
        decider: &dyn Decider,
    ) -> Pc {
        let status = workflow.status();
        let waiting = |op: &SweepOp, id: WorkflowId| Pc::Requeue {
            due_ms: op.later(),
            outcome: Ok(Sweep::Waiting {
                id: id.clone(),
                conflicts,
            }),
            id,
        };
        let input = match decider.decide(workflow) {
            Decision::Act(input) => Input::Engine(input),
            Decision::Idle if status != WorkflowStatus::Running => {
                let outcome = Ok(Sweep::Dequeued {
                    id: id.clone(),
                    status,
                    conflicts,
                });
                return Pc::Drop { id, outcome };
            }
            // `Idle` on a RUNNING workflow (a custom decider's choice) waits: it stays queued.
            Decision::Wait | Decision::Idle => return waiting(self, id),
        };
        match transition(workflow, &input) {
            Ok(step) if step.is_applied() => {
                let plan = QueuePlan::of(&id, &step, Committer::Sweeper);
                Pc::Commit {
                    id,
                    step,
                    plan,
                    conflicts,
                }
            }
            // The decision is already true (a duplicate): nothing to do until something changes.
            Ok(_) => waiting(self, id),
            Err(rejection) => Pc::Requeue {
                due_ms: self.later(),
                outcome: Err(SweepError::Rejected {
                    id: id.clone(),
                    rejection,
                }),
                id,
            },
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
            Pc::Commit { id, step, plan, .. } => Call::Commit {
                id,
                step,
                plan,
                now_ms: self.now_ms,
            },
            // Conditional on our pop: a report that ended a task since our read moved the entry
            // (due at once), and a decision taken on the older state must not delay it.
            Pc::Requeue { id, due_ms, .. } => Call::HandBack {
                id,
                token: self.token,
                due_ms: *due_ms,
            },
            Pc::Drop { id, .. } => Call::DropIfNotRunning { id },
            Pc::Release { id, .. } => Call::Release {
                id,
                token: self.token,
            },
            Pc::Done(_) => return Next::Done,
        };
        Next::Call(call)
    }

    fn resume(&mut self, reply: Result<Reply, StoreFailure>, decider: &dyn Decider) {
        let pc = std::mem::replace(&mut self.pc, Pc::Pop);
        self.pc = match pc {
            Pc::Pop => match replied(CallKind::PopDecider, reply) {
                Ok(Reply::Popped(None)) => Pc::Done(Ok(Sweep::Empty)),
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
                Ok(Reply::Moved(_)) => Pc::Done(Ok(Sweep::Busy { id })),
                Ok(_) => self.failed(None, CallFailed::mismatch(CallKind::HandBack)),
                Err(failure) => self.failed(None, failure),
            },
            Pc::Load { id, conflicts } => match replied(CallKind::Load, reply) {
                Ok(Reply::Loaded(Some(workflow))) => self.decide(id, conflicts, &workflow, decider),
                Ok(Reply::Loaded(None)) => SweepOp::unknown(id),
                Ok(_) => self.failed(Some(id), CallFailed::mismatch(CallKind::Load)),
                Err(failure) => self.failed(Some(id), failure),
            },
            Pc::Commit {
                id,
                step,
                conflicts,
                ..
            } => match replied(CallKind::Commit, reply) {
                Ok(Reply::Committed(CommitReply::Done(_))) => {
                    let outcome = Ok(Sweep::Applied {
                        id: id.clone(),
                        step,
                        conflicts,
                    });
                    Pc::Release { id, outcome }
                }
                Ok(Reply::Committed(CommitReply::Stale { .. }))
                    if conflicts + 1 < self.max_attempts =>
                {
                    Pc::Load {
                        id,
                        conflicts: conflicts + 1,
                    }
                }
                Ok(Reply::Committed(CommitReply::Stale { .. })) => Pc::Requeue {
                    due_ms: self.now_ms,
                    outcome: Err(SweepError::Contention {
                        id: id.clone(),
                        attempts: self.max_attempts,
                    }),
                    id,
                },
                Ok(Reply::Committed(CommitReply::Unknown)) => SweepOp::unknown(id),
                Ok(_) => self.failed(Some(id), CallFailed::mismatch(CallKind::Commit)),
                // Committed or not, the entry is safe: the commit's plan settled it, or it is
                // still hidden by our pop and reappears after unack.
                Err(failure) => self.failed(Some(id), failure),
            },
            Pc::Requeue { id, outcome, .. } => match replied(CallKind::HandBack, reply) {
                Ok(Reply::Moved(_)) => Pc::Release { id, outcome },
                Ok(_) => self.failed(Some(id), CallFailed::mismatch(CallKind::HandBack)),
                Err(failure) => self.failed(Some(id), failure),
            },
            Pc::Drop { id, outcome } => match replied(CallKind::DropIfNotRunning, reply) {
                Ok(Reply::Moved(_)) => Pc::Release { id, outcome },
                Ok(_) => self.failed(Some(id), CallFailed::mismatch(CallKind::DropIfNotRunning)),
                Err(failure) => self.failed(Some(id), failure),
            },
            Pc::Release { outcome, .. } => match replied(CallKind::Release, reply) {
                // `false`: our lease expired and was taken over; the version fenced every write
                // made after that (I4), nothing to undo.
                Ok(Reply::Released(_)) => Pc::Done(outcome),
                Ok(_) => Pc::Done(outcome.and(Err(SweepError::Store(CallFailed::mismatch(
                    CallKind::Release,
                ))))),
                // The lease runs out by itself; what the sweep did stands.
                Err(failure) => Pc::Done(outcome.and(Err(SweepError::Store(failure)))),
            },
            done @ Pc::Done(_) => done,
        };
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
            Pc::Done(_) => "Done",
        }
    }

    fn finish(self) -> Option<Outcome> {
        match self.pc {
            Pc::Done(outcome) => Some(outcome),
            _ => None,
        }
    }
}
