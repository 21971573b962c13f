//! The operations under the lock (admin inputs and the caller's engine inputs, inspect) and
//! start.
//!
//! Admin (terminate, pause, resume, retry) and act:
//!
//! | state | call | reply → next |
//! |---|---|---|
//! | Acquire | acquire | granted → Load; held → Done(Locked); ambiguous → Release(error); failed → Done(error) |
//! | Load | load | missing → Release(UnknownWorkflow); step applied → Commit; duplicate → Release; rejected → Release(Rejected); failed → Release(error) |
//! | Commit | commit | done → Release(Applied); stale → Load, or after `max_attempts` Release(Contention); missing → Release(UnknownWorkflow); failed → Release(error) |
//! | Release | release | any → Done; failed → Done(error) |
//!
//! Start:
//!
//! | state | call | reply → next |
//! |---|---|---|
//! | Insert | insert | inserted → Done; taken → Done(WorkflowExists); failed → Done(error) |
//!
//! Inspect:
//!
//! | state | call | reply → next |
//! |---|---|---|
//! | Acquire | acquire | granted → Load; held → Done(Locked); ambiguous → Release(error); failed → Done(error) |
//! | Load | load | found → Due; missing → Release(UnknownWorkflow); failed → Release(error) |
//! | Due | decider_due | any → Release(Inspection); failed → Release(error) |
//! | Release | release | any → Done; failed → Done(error) |

use std::sync::Arc;

use super::super::contract::{
    Call, CallKind, CommitReply, Committer, LeaseToken, QueuePlan, Reply, StoreFailure,
};
use super::write::Applied;
use super::{replied, CallFailed, Decider, Next, Operation, Pending};
use crate::runtime::error::{AdminError, InspectError, StartError};
use crate::runtime::EngineConfig;
use crate::{transition, Input, Invariant, Workflow, WorkflowId, WorkflowStatus};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AdminPc {
    Acquire,
    Load {
        conflicts: u32,
    },
    Commit {
        pending: Box<Pending>,
        conflicts: u32,
    },
    Release(Result<Applied, AdminError>),
    Done(Result<Applied, AdminError>),
}

/// An admin input or an engine input of the caller's, under the lock, as a state machine (the
/// table in this module's source and in `docs/design.md`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AdminOp {
    id: WorkflowId,
    input: Input,
    token: LeaseToken,
    now_ms: u64,
    lease_ms: u64,
    max_attempts: u32,
    pc: AdminPc,
}

impl AdminOp {
    /// `input` (admin or engine) on workflow `id` at `now_ms`, holding `token`.
    pub fn new(
        id: WorkflowId,
        input: Input,
        token: LeaseToken,
        now_ms: u64,
        config: &EngineConfig,
    ) -> Self {
        AdminOp {
            id,
            input,
            token,
            now_ms,
            lease_ms: config.lease_ms,
            max_attempts: config.attempts(),
            pc: AdminPc::Acquire,
        }
    }

    /// Its lease token.
    pub fn token(&self) -> LeaseToken {
        self.token
    }

    fn release(error: CallFailed) -> AdminPc {
        AdminPc::Release(Err(AdminError::Store(error)))
    }

    fn unknown(&self) -> AdminPc {
        AdminPc::Release(Err(AdminError::UnknownWorkflow {
            id: self.id.clone(),
        }))
    }

    fn read(&self, workflow: &Workflow, conflicts: u32) -> AdminPc {
        match transition(workflow, &self.input) {
            Ok(step) if step.is_applied() => {
                let plan = QueuePlan::of(&self.id, &step, Committer::Caller);
                AdminPc::Commit {
                    pending: Pending::boxed(step, plan),
                    conflicts,
                }
            }
            Ok(step) => AdminPc::Release(Ok(Applied { step, conflicts })),
            Err(rejection) => AdminPc::Release(Err(AdminError::Rejected {
                id: self.id.clone(),
                rejection,
            })),
        }
    }
}

impl Operation for AdminOp {
    type Output = Result<Applied, AdminError>;

    fn next(&self) -> Next<'_> {
        let id = &self.id;
        let call = match &self.pc {
            AdminPc::Acquire => Call::Acquire {
                id,
                token: self.token,
                lease_ms: self.lease_ms,
                now_ms: self.now_ms,
            },
            AdminPc::Load { .. } => Call::Load { id },
            AdminPc::Commit { pending, .. } => Call::Commit {
                id,
                step: &pending.step,
                plan: &pending.plan,
                now_ms: self.now_ms,
            },
            AdminPc::Release(_) => Call::Release {
                id,
                token: self.token,
            },
            AdminPc::Done(_) => return Next::Done,
        };
        Next::Call(call)
    }

    fn resume(&mut self, reply: Result<Reply, StoreFailure>, _decider: &dyn Decider) {
        let pc = std::mem::replace(&mut self.pc, AdminPc::Acquire);
        self.pc = match pc {
            AdminPc::Acquire => match replied(CallKind::Acquire, reply) {
                Ok(Reply::Acquired(Ok(_))) => AdminPc::Load { conflicts: 0 },
                Ok(Reply::Acquired(Err(lease))) => AdminPc::Done(Err(AdminError::Locked {
                    id: self.id.clone(),
                    holder: lease.holder,
                    expires_at_ms: lease.expires_at_ms,
                })),
                Ok(_) => AdminOp::release(CallFailed::mismatch(CallKind::Acquire)),
                Err(failure) if failure.is_ambiguous() => AdminOp::release(failure),
                Err(failure) => AdminPc::Done(Err(AdminError::Store(failure))),
            },
            AdminPc::Load { conflicts } => match replied(CallKind::Load, reply) {
                Ok(Reply::Loaded(Some(workflow))) => self.read(&workflow, conflicts),
                Ok(Reply::Loaded(None)) => self.unknown(),
                Ok(_) => AdminOp::release(CallFailed::mismatch(CallKind::Load)),
                Err(failure) => AdminOp::release(failure),
            },
            AdminPc::Commit { pending, conflicts } => match replied(CallKind::Commit, reply) {
                Ok(Reply::Committed(CommitReply::Done(_))) => AdminPc::Release(Ok(Applied {
                    step: pending.step,
                    conflicts,
                })),
                Ok(Reply::Committed(CommitReply::Stale { .. }))
                    if conflicts + 1 < self.max_attempts =>
                {
                    AdminPc::Load {
                        conflicts: conflicts + 1,
                    }
                }
                Ok(Reply::Committed(CommitReply::Stale { .. })) => {
                    AdminPc::Release(Err(AdminError::Contention {
                        id: self.id.clone(),
                        attempts: self.max_attempts,
                    }))
                }
                Ok(Reply::Committed(CommitReply::Unknown)) => self.unknown(),
                Ok(_) => AdminOp::release(CallFailed::mismatch(CallKind::Commit)),
                Err(failure) => AdminOp::release(failure),
            },
            AdminPc::Release(outcome) => match replied(CallKind::Release, reply) {
                Ok(Reply::Released(_)) => AdminPc::Done(outcome),
                Ok(_) => AdminPc::Done(outcome.and(Err(AdminError::Store(CallFailed::mismatch(
                    CallKind::Release,
                ))))),
                Err(failure) => AdminPc::Done(outcome.and(Err(AdminError::Store(failure)))),
            },
            done @ AdminPc::Done(_) => done,
        };
    }

    fn decides(&self) -> bool {
        false
    }

    fn state_name(&self) -> &'static str {
        match self.pc {
            AdminPc::Acquire => "Acquire",
            AdminPc::Load { .. } => "Load",
            AdminPc::Commit { .. } => "Commit",
            AdminPc::Release(_) => "Release",
            AdminPc::Done(_) => "Done",
        }
    }

    fn finish(self) -> Option<Self::Output> {
        match self.pc {
            AdminPc::Done(output) => Some(output),
            AdminPc::Acquire
            | AdminPc::Load { .. }
            | AdminPc::Commit { .. }
            | AdminPc::Release(_) => None,
        }
    }
}

/// Start: one atomic insert that also enters the decider queue, so no workflow is ever
/// half-started (stored but not queued).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StartOp {
    workflow: Workflow,
    now_ms: u64,
    outcome: Option<Result<(), StartError>>,
}

impl StartOp {
    /// Start a RUNNING workflow with no tasks, due at `now_ms`.
    pub fn new(id: WorkflowId, now_ms: u64) -> Self {
        StartOp {
            workflow: Workflow::new(id),
            now_ms,
            outcome: None,
        }
    }
}

impl Operation for StartOp {
    type Output = Result<(), StartError>;

    fn next(&self) -> Next<'_> {
        match self.outcome {
            None => Next::Call(Call::Insert {
                workflow: &self.workflow,
                now_ms: self.now_ms,
            }),
            Some(_) => Next::Done,
        }
    }

    fn resume(&mut self, reply: Result<Reply, StoreFailure>, _decider: &dyn Decider) {
        if self.outcome.is_some() {
            return;
        }
        self.outcome = Some(match replied(CallKind::Insert, reply) {
            Ok(Reply::Inserted(true)) => Ok(()),
            Ok(Reply::Inserted(false)) => Err(StartError::WorkflowExists {
                id: self.workflow.id().clone(),
            }),
            Ok(_) => Err(StartError::Store(CallFailed::mismatch(CallKind::Insert))),
            Err(failure) => Err(StartError::Store(failure)),
        });
    }

    fn decides(&self) -> bool {
        false
    }

    fn state_name(&self) -> &'static str {
        match self.outcome {
            None => "Insert",
            Some(_) => "Done",
        }
    }

    fn finish(self) -> Option<Self::Output> {
        self.outcome
    }
}

/// A consistent view of one workflow and its decider-queue membership, read under its lock.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Inspection {
    /// The workflow.
    pub workflow: Arc<Workflow>,
    /// When it is due in the decider queue, if it is in it (hidden entries included).
    pub due_ms: Option<u64>,
}

impl Inspection {
    /// Is the workflow in the decider queue?
    pub fn is_queued(&self) -> bool {
        self.due_ms.is_some()
    }

    /// I6 as this view shows it. Taken under the lock, the view has no other lock holder in
    /// flight, so I6a must hold: a RUNNING workflow is queued. While no lease has expired I6b must
    /// hold too: a workflow that is not RUNNING is not queued. `None` when both hold.
    pub fn queue_violation(&self) -> Option<Invariant> {
        let running = self.workflow.status() == WorkflowStatus::Running;
        match (running, self.is_queued()) {
            (true, false) => Some(Invariant::I6a),
            (false, true) => Some(Invariant::I6b),
            (true, true) | (false, false) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum InspectPc {
    Acquire,
    Load,
    Due(Arc<Workflow>),
    Release(Result<Inspection, InspectError>),
    Done(Result<Inspection, InspectError>),
}

/// Inspect under the lock, as a state machine (the table in this module's source and in
/// `docs/design.md`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InspectOp {
    id: WorkflowId,
    token: LeaseToken,
    now_ms: u64,
    lease_ms: u64,
    pc: InspectPc,
}

impl InspectOp {
    /// Inspect workflow `id` at `now_ms`, holding `token`.
    pub fn new(id: WorkflowId, token: LeaseToken, now_ms: u64, config: &EngineConfig) -> Self {
        InspectOp {
            id,
            token,
            now_ms,
            lease_ms: config.lease_ms,
            pc: InspectPc::Acquire,
        }
    }

    fn release(error: CallFailed) -> InspectPc {
        InspectPc::Release(Err(InspectError::Store(error)))
    }
}

impl Operation for InspectOp {
    type Output = Result<Inspection, InspectError>;

    fn next(&self) -> Next<'_> {
        let id = &self.id;
        let call = match &self.pc {
            InspectPc::Acquire => Call::Acquire {
                id,
                token: self.token,
                lease_ms: self.lease_ms,
                now_ms: self.now_ms,
            },
            InspectPc::Load => Call::Load { id },
            InspectPc::Due(_) => Call::DeciderDue { id },
            InspectPc::Release(_) => Call::Release {
                id,
                token: self.token,
            },
            InspectPc::Done(_) => return Next::Done,
        };
        Next::Call(call)
    }

    fn resume(&mut self, reply: Result<Reply, StoreFailure>, _decider: &dyn Decider) {
        let pc = std::mem::replace(&mut self.pc, InspectPc::Acquire);
        self.pc = match pc {
            InspectPc::Acquire => match replied(CallKind::Acquire, reply) {
                Ok(Reply::Acquired(Ok(_))) => InspectPc::Load,
                Ok(Reply::Acquired(Err(lease))) => InspectPc::Done(Err(InspectError::Locked {
                    id: self.id.clone(),
                    holder: lease.holder,
                    expires_at_ms: lease.expires_at_ms,
                })),
                Ok(_) => InspectOp::release(CallFailed::mismatch(CallKind::Acquire)),
                Err(failure) if failure.is_ambiguous() => InspectOp::release(failure),
                Err(failure) => InspectPc::Done(Err(InspectError::Store(failure))),
            },
            InspectPc::Load => match replied(CallKind::Load, reply) {
                Ok(Reply::Loaded(Some(workflow))) => InspectPc::Due(workflow),
                Ok(Reply::Loaded(None)) => InspectPc::Release(Err(InspectError::UnknownWorkflow {
                    id: self.id.clone(),
                })),
                Ok(_) => InspectOp::release(CallFailed::mismatch(CallKind::Load)),
                Err(failure) => InspectOp::release(failure),
            },
            InspectPc::Due(workflow) => match replied(CallKind::DeciderDue, reply) {
                Ok(Reply::Due(due_ms)) => InspectPc::Release(Ok(Inspection { workflow, due_ms })),
                Ok(_) => InspectOp::release(CallFailed::mismatch(CallKind::DeciderDue)),
                Err(failure) => InspectOp::release(failure),
            },
            InspectPc::Release(outcome) => match replied(CallKind::Release, reply) {
                Ok(Reply::Released(_)) => InspectPc::Done(outcome),
                Ok(_) => InspectPc::Done(outcome.and(Err(InspectError::Store(
                    CallFailed::mismatch(CallKind::Release),
                )))),
                Err(failure) => InspectPc::Done(outcome.and(Err(InspectError::Store(failure)))),
            },
            done @ InspectPc::Done(_) => done,
        };
    }

    fn decides(&self) -> bool {
        false
    }

    fn state_name(&self) -> &'static str {
        match self.pc {
            InspectPc::Acquire => "Acquire",
            InspectPc::Load => "Load",
            InspectPc::Due(_) => "Due",
            InspectPc::Release(_) => "Release",
            InspectPc::Done(_) => "Done",
        }
    }

    fn finish(self) -> Option<Self::Output> {
        match self.pc {
            InspectPc::Done(output) => Some(output),
            InspectPc::Acquire | InspectPc::Load | InspectPc::Due(_) | InspectPc::Release(_) => {
                None
            }
        }
    }
}
