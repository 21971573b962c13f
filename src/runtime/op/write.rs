//! The lock-free writers (as in Conductor): a worker's report and a worker's poll. The version
//! fences them: read, step, commit; on a stale version read again, at most `max_attempts` times.
//!
//! Report:
//!
//! | state | call | reply → next |
//! |---|---|---|
//! | Load | load | missing → Done(UnknownWorkflow); step applied → Commit; duplicate or progress → Done; rejected → Done(Rejected); failed → Done(error) |
//! | Commit | commit | done → Done(Applied); stale → Load, or after `max_attempts` Done(Contention); missing → Done(UnknownWorkflow); failed → Done(error) |
//!
//! Poll:
//!
//! | state | call | reply → next |
//! |---|---|---|
//! | Poll | poll_task | none → Done(None); entry → Load; failed → Done(error) |
//! | Load | load | attempt SCHEDULED → Commit (start); IN_PROGRESS → Done(redelivered); ended, unknown or gone → Drop; start refused → Poll (the entry stays hidden); failed → Done(error) |
//! | Commit | commit | done → Done(Polled); stale → Load, or after `max_attempts` Done(Contention); missing → Drop; failed → Done(error) |
//! | Drop | drop_task | any → Poll; failed → Done(error) |

use std::borrow::Cow;

use super::super::contract::{
    Call, CallKind, CommitReply, Committer, QueuePlan, QueuedTask, Reply, StoreFailure,
};
use super::{replied, CallFailed, Decider, Next, Operation, Pending};
use crate::runtime::error::{PollError, ReportError};
use crate::runtime::EngineConfig;
use crate::{
    transition, EngineInput, Input, ReferenceName, Report, Step, TaskId, TaskStatus, WorkflowId,
};

/// An input the engine accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Applied {
    /// The step: applied (committed, effects performed or owed), duplicate or progress (nothing
    /// changed; acknowledge the message).
    pub step: Step,
    /// Compare-and-swap attempts that found the workflow moved and were redone from a fresh read.
    pub conflicts: u32,
}

/// The machine's state; the output, once known, waits in [`ReportOp::output`] (a small state
/// is cheap to move on each call, docs/performance.md).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ReportPc {
    Load { conflicts: u32 },
    Commit { conflicts: u32 },
    Done,
}

type ReportOutput = Result<Applied, ReportError>;

/// A worker's report, as a state machine (the table in this module's source and in
/// `docs/design.md`). A report that ends a task wakes its workflow in the decider queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportOp {
    id: WorkflowId,
    input: Input,
    now_ms: u64,
    max_attempts: u32,
    pc: ReportPc,
    /// Set on entering Done.
    output: Option<ReportOutput>,
    /// The step and plan to commit: set exactly in Commit.
    pending: Option<Pending>,
}

impl ReportOp {
    /// `report` on workflow `id` at `now_ms`.
    pub fn new(id: WorkflowId, report: Report, now_ms: u64, config: &EngineConfig) -> Self {
        ReportOp {
            id,
            input: Input::Report(report),
            now_ms,
            max_attempts: config.attempts(),
            pc: ReportPc::Load { conflicts: 0 },
            output: None,
            pending: None,
        }
    }

    fn done(&mut self, output: ReportOutput) -> ReportPc {
        self.output = Some(output);
        ReportPc::Done
    }

    #[cold]
    #[inline(never)]
    fn failed(&mut self, failure: CallFailed) -> ReportPc {
        self.done(Err(ReportError::Store(failure)))
    }

    #[cold]
    #[inline(never)]
    fn unknown(&mut self) -> ReportPc {
        let id = self.id.clone();
        self.done(Err(ReportError::UnknownWorkflow { id }))
    }

    /// A commit that did not report done (stale, unknown, failed), or a done reply without the
    /// pending step (impossible: Commit is entered with it; the `Ok(_)` arm treats it as a
    /// mismatched reply).
    fn commit_not_done(&mut self, conflicts: u32, reply: Result<Reply, CallFailed>) -> ReportPc {
        match reply {
            Ok(Reply::Committed(CommitReply::Stale { .. }))
                if conflicts + 1 < self.max_attempts =>
            {
                ReportPc::Load {
                    conflicts: conflicts + 1,
                }
            }
            Ok(Reply::Committed(CommitReply::Stale { .. })) => {
                let (id, attempts) = (self.id.clone(), self.max_attempts);
                self.done(Err(ReportError::Contention { id, attempts }))
            }
            Ok(Reply::Committed(CommitReply::Unknown)) => self.unknown(),
            Ok(_) => self.failed(CallFailed::mismatch(CallKind::Commit)),
            Err(failure) => self.failed(failure),
        }
    }
}

impl Operation for ReportOp {
    type Output = Result<Applied, ReportError>;

    fn next(&self) -> Next<'_> {
        match &self.pc {
            ReportPc::Load { .. } => Next::Call(Call::Load { id: &self.id }),
            ReportPc::Commit { .. } => match &self.pending {
                Some(pending) => Next::Call(Call::Commit {
                    id: &self.id,
                    step: &pending.step,
                    plan: &pending.plan,
                    now_ms: self.now_ms,
                }),
                // Never: Commit is entered with its pending step.
                None => Next::Done,
            },
            ReportPc::Done => Next::Done,
        }
    }

    fn resume(&mut self, reply: Result<Reply, StoreFailure>, _decider: &dyn Decider) {
        let pc = std::mem::replace(&mut self.pc, ReportPc::Load { conflicts: 0 });
        self.pc = match pc {
            ReportPc::Load { conflicts } => match replied(CallKind::Load, reply) {
                Ok(Reply::Loaded(Some(workflow))) => match transition(&workflow, &self.input) {
                    Ok(step) if step.is_applied() => {
                        let plan = QueuePlan::of(&self.id, &step, Committer::Report);
                        self.pending = Some(Pending { step, plan });
                        ReportPc::Commit { conflicts }
                    }
                    Ok(step) => self.done(Ok(Applied { step, conflicts })),
                    Err(rejection) => {
                        let id = self.id.clone();
                        self.done(Err(ReportError::Rejected { id, rejection }))
                    }
                },
                Ok(Reply::Loaded(None)) => self.unknown(),
                Ok(_) => self.failed(CallFailed::mismatch(CallKind::Load)),
                Err(failure) => self.failed(failure),
            },
            ReportPc::Commit { conflicts } => {
                match (replied(CallKind::Commit, reply), self.pending.take()) {
                    (Ok(Reply::Committed(CommitReply::Done(_))), Some(pending)) => {
                        self.done(Ok(Applied {
                            step: pending.step,
                            conflicts,
                        }))
                    }
                    (reply, _) => self.commit_not_done(conflicts, reply),
                }
            }
            ReportPc::Done => ReportPc::Done,
        };
    }

    fn decides(&self) -> bool {
        false
    }

    fn state_name(&self) -> &'static str {
        match self.pc {
            ReportPc::Load { .. } => "Load",
            ReportPc::Commit { .. } => "Commit",
            ReportPc::Done => "Done",
        }
    }

    fn finish(self) -> Option<Self::Output> {
        match self.pc {
            ReportPc::Done => self.output,
            ReportPc::Load { .. } | ReportPc::Commit { .. } => None,
        }
    }
}

/// A task attempt handed to a worker by [`Engine::poll_task`](super::super::Engine::poll_task);
/// it is IN_PROGRESS now.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Polled {
    /// The workflow.
    pub workflow: WorkflowId,
    /// The attempt: report on it with [`Engine::report`](super::super::Engine::report).
    pub task: TaskId,
    /// Its reference name (the queue it came from).
    pub reference_name: ReferenceName,
    /// The attempt was IN_PROGRESS already: an earlier poller took it and did not report before
    /// its visibility lease ran out (it may have died). Task delivery is at least once.
    pub redelivered: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PollPc {
    Poll,
    Load {
        queued: QueuedTask,
        conflicts: u32,
    },
    Commit {
        queued: QueuedTask,
        pending: Box<Pending>,
        conflicts: u32,
    },
    Drop {
        queued: QueuedTask,
    },
    Done(Result<Option<Polled>, PollError>),
}

/// A worker's poll of one task queue, as a state machine (the table in this module's source and
/// in `docs/design.md`). The entry stays in its queue, hidden, until the attempt's terminal
/// report removes it: a worker that dies after polling loses nothing, the attempt is handed out
/// again when the visibility lease runs out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PollOp<'a> {
    reference_name: Cow<'a, str>,
    now_ms: u64,
    visibility_ms: u64,
    max_attempts: u32,
    pc: PollPc,
}

impl<'a> PollOp<'a> {
    /// A poll of the queue `reference_name` at `now_ms`. It borrows the name (the engine's
    /// poll allocates nothing for it) or owns it (`PollOp<'static>`, as the model keeps it).
    pub fn new(
        reference_name: impl Into<Cow<'a, str>>,
        now_ms: u64,
        config: &EngineConfig,
    ) -> Self {
        PollOp {
            reference_name: reference_name.into(),
            now_ms,
            visibility_ms: config.task_visibility_ms,
            max_attempts: config.attempts(),
            pc: PollPc::Poll,
        }
    }

    #[cold]
    #[inline(never)]
    fn failed(failure: CallFailed) -> PollPc {
        PollPc::Done(Err(PollError::Store(failure)))
    }

    fn polled(queued: QueuedTask, redelivered: bool) -> PollPc {
        PollPc::Done(Ok(Some(Polled {
            workflow: queued.workflow,
            task: queued.task,
            reference_name: queued.reference_name,
            redelivered,
        })))
    }

    /// Every state's reply but the Poll state's.
    #[inline(never)]
    fn resume_later(&mut self, reply: Result<Reply, StoreFailure>) {
        let pc = std::mem::replace(&mut self.pc, PollPc::Poll);
        self.pc = match pc {
            // Handled above.
            PollPc::Poll => PollPc::Poll,
            PollPc::Load { queued, conflicts } => match replied(CallKind::Load, reply) {
                Ok(Reply::Loaded(Some(workflow))) => self.read(queued, conflicts, &workflow),
                Ok(Reply::Loaded(None)) => PollPc::Drop { queued },
                Ok(_) => PollOp::failed(CallFailed::mismatch(CallKind::Load)),
                Err(failure) => PollOp::failed(failure),
            },
            PollPc::Commit {
                queued, conflicts, ..
            } => match replied(CallKind::Commit, reply) {
                Ok(Reply::Committed(CommitReply::Done(_))) => PollOp::polled(queued, false),
                Ok(Reply::Committed(CommitReply::Stale { .. }))
                    if conflicts + 1 < self.max_attempts =>
                {
                    PollPc::Load {
                        queued,
                        conflicts: conflicts + 1,
                    }
                }
                Ok(Reply::Committed(CommitReply::Stale { .. })) => {
                    PollPc::Done(Err(PollError::Contention {
                        id: queued.workflow,
                        attempts: self.max_attempts,
                    }))
                }
                Ok(Reply::Committed(CommitReply::Unknown)) => PollPc::Drop { queued },
                Ok(_) => PollOp::failed(CallFailed::mismatch(CallKind::Commit)),
                // Started or not, the entry is still queued (hidden): it is handed out again.
                Err(failure) => PollOp::failed(failure),
            },
            PollPc::Drop { .. } => match replied(CallKind::DropTask, reply) {
                Ok(Reply::Moved(_)) => PollPc::Poll,
                Ok(_) => PollOp::failed(CallFailed::mismatch(CallKind::DropTask)),
                Err(failure) => PollOp::failed(failure),
            },
            done @ PollPc::Done(_) => done,
        };
    }

    /// The Poll state's reply, other than an empty queue.
    #[inline(never)]
    fn polled_from(reply: Result<Reply, StoreFailure>) -> PollPc {
        match replied(CallKind::PollTask, reply) {
            Ok(Reply::Task(Some(queued))) => PollPc::Load {
                queued,
                conflicts: 0,
            },
            Ok(Reply::Task(None)) => PollPc::Done(Ok(None)),
            Ok(_) => PollOp::failed(CallFailed::mismatch(CallKind::PollTask)),
            Err(failure) => PollOp::failed(failure),
        }
    }

    fn read(&self, queued: QueuedTask, conflicts: u32, workflow: &crate::Workflow) -> PollPc {
        let status = workflow.task(&queued.task).map(|task| task.status);
        match status {
            Some(TaskStatus::Scheduled) => {}
            Some(TaskStatus::InProgress) => return PollOp::polled(queued, true),
            // Ended, or not this workflow's: a stale entry.
            Some(_) | None => return PollPc::Drop { queued },
        }
        let start = Input::Engine(EngineInput::Start {
            task: queued.task.clone(),
        });
        match transition(workflow, &start) {
            Ok(step) if step.is_applied() => {
                let plan = QueuePlan::of(&queued.workflow, &step, Committer::Caller);
                PollPc::Commit {
                    queued,
                    pending: Pending::boxed(step, plan),
                    conflicts,
                }
            }
            // Not startable now: the entry stays hidden until its lease runs out; look further.
            Ok(_) | Err(_) => PollPc::Poll,
        }
    }
}

impl Operation for PollOp<'_> {
    type Output = Result<Option<Polled>, PollError>;

    fn next(&self) -> Next<'_> {
        let call = match &self.pc {
            PollPc::Poll => Call::PollTask {
                reference_name: &self.reference_name,
                now_ms: self.now_ms,
                visibility_ms: self.visibility_ms,
            },
            PollPc::Load { queued, .. } => Call::Load {
                id: &queued.workflow,
            },
            PollPc::Commit {
                queued, pending, ..
            } => Call::Commit {
                id: &queued.workflow,
                step: &pending.step,
                plan: &pending.plan,
                now_ms: self.now_ms,
            },
            PollPc::Drop { queued } => Call::DropTask {
                workflow: &queued.workflow,
                task: &queued.task,
            },
            PollPc::Done(_) => return Next::Done,
        };
        Next::Call(call)
    }

    // Inlined into the driver: the most frequent state (most polls find their queue empty)
    // moves in place, and the reply is not copied into a call.
    #[inline]
    fn resume(&mut self, reply: Result<Reply, StoreFailure>, _decider: &dyn Decider) {
        if let PollPc::Poll = self.pc {
            match reply {
                Ok(Reply::Task(None)) => self.pc = PollPc::Done(Ok(None)),
                reply => self.pc = PollOp::polled_from(reply),
            }
            return;
        }
        self.resume_later(reply);
    }

    fn decides(&self) -> bool {
        false
    }

    fn state_name(&self) -> &'static str {
        match self.pc {
            PollPc::Poll => "Poll",
            PollPc::Load { .. } => "Load",
            PollPc::Commit { .. } => "Commit",
            PollPc::Drop { .. } => "Drop",
            PollPc::Done(_) => "Done",
        }
    }

    fn finish(self) -> Option<Self::Output> {
        match self.pc {
            PollPc::Done(output) => Some(output),
            PollPc::Poll | PollPc::Load { .. } | PollPc::Commit { .. } | PollPc::Drop { .. } => {
                None
            }
        }
    }
}
