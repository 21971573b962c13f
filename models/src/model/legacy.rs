//! The legacy protocols (SPEC section 8): Conductor's defective operations, written as
//! alternative operation machines over the same store contract, plus the blind writes that the
//! contract does not have. None of this is shipped: the runtime has no switch for them.

use wfstate::runtime::{
    Call, CallKind, CommitReply, Committer, DeciderPlan, LeaseToken, QueuePlan, Reply, StoreFailure,
};
use wfstate::{
    transition, Decision, Input, ReportStatus, Step, Task, TaskId, TaskStatus, Workflow,
    WorkflowId, WorkflowStatus,
};

use wfstate::runtime::Decider;

/// What a legacy machine needs next: a store call, or one of the writes Conductor made that the
/// store contract refuses to offer.
#[derive(Debug)]
pub enum LegacyNext<'a> {
    /// A call of the store contract.
    Call(Call<'a>),
    /// Write the workflow's status and tasks as given, no version check (the version still
    /// counts writes).
    Overwrite {
        /// The status written.
        status: WorkflowStatus,
        /// The tasks written.
        tasks: &'a [Task],
    },
    /// Write one task's status into whatever is stored now, no check.
    SetTask {
        /// The attempt.
        task: &'a TaskId,
        /// The status written.
        status: TaskStatus,
    },
    /// Create task rows: each attempt is added to the stored workflow as a row of its own (an
    /// id already in use becomes a second row with a fresh id, as Conductor's UUIDs are), and,
    /// if `push`, put in its task queue.
    AddTasks {
        /// The attempts created.
        tasks: &'a [Task],
        /// Push each to its task queue in the same step.
        push: bool,
    },
    /// Write the workflow document's status and these task rows (replacing the stored rows with
    /// their ids), blind: the other stored rows stay as they are.
    WriteDocument {
        /// The status written.
        status: WorkflowStatus,
        /// The task rows written.
        tasks: &'a [Task],
    },
    /// Push the stored, still unqueued SCHEDULED rows with these attempts' keys (reference name,
    /// retry count, iteration) to their task queues: a separate call that may fail.
    PushTasks {
        /// The attempts.
        tasks: &'a [Task],
    },
    /// Push the workflow's decider-queue entry back by a long delay (Conductor's backoff or
    /// postpone), if it is queued.
    Postpone,
    /// Remove the workflow from the decider queue, unconditionally.
    Dequeue,
    /// Make the workflow due in the decider queue, adding it if absent.
    Enqueue,
    /// Archive inline (may fail): resumed with [`Reply::Performed`].
    Archive,
    /// Finished.
    Done,
}

fn id() -> WorkflowId {
    WorkflowId::new(super::state::WORKFLOW)
}

/// `workflow` as an applied step of `input` leaves it, on a copy (the in-memory model a legacy
/// operation then writes blind); `None` when the input is rejected or changes nothing.
pub fn stepped(workflow: &Workflow, input: &Input) -> Option<Workflow> {
    let step = transition(workflow, input).ok()?;
    let mut known = workflow.clone();
    (step.is_applied() && known.apply(&step).is_ok()).then_some(known)
}

/// The decider's engine input for `workflow`, if it acts.
fn decision(workflow: &Workflow, decider: &dyn Decider) -> Option<Input> {
    match decider.decide(workflow) {
        Decision::Act(input) => Some(Input::Engine(input)),
        Decision::Wait | Decision::Idle => None,
    }
}

/// D3: the sweeper reads before locking, writes without compare-and-swap, and dequeues after
/// unlocking.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LegacySweep {
    token: LeaseToken,
    id: WorkflowId,
    pc: SweepPc,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SweepPc {
    Pop,
    Read,
    Acquire {
        snapshot: Workflow,
    },
    HandBack,
    Write {
        status: WorkflowStatus,
        tasks: Vec<Task>,
    },
    Release {
        running: bool,
    },
    AfterUnlock {
        running: bool,
    },
    Done,
}

impl LegacySweep {
    /// A legacy sweep holding `token`.
    pub fn new(token: LeaseToken) -> Self {
        LegacySweep {
            token,
            id: id(),
            pc: SweepPc::Pop,
        }
    }

    /// From its pop until its unlock: the queue operation after unlocking is outside it.
    pub fn in_flight(&self) -> bool {
        !matches!(self.pc, SweepPc::AfterUnlock { .. } | SweepPc::Done)
    }

    /// The state's name.
    pub fn state_name(&self) -> &'static str {
        match self.pc {
            SweepPc::Pop => "Pop",
            SweepPc::Read => "Read (before locking)",
            SweepPc::Acquire { .. } => "Acquire",
            SweepPc::HandBack => "HandBack",
            SweepPc::Write { .. } => "Write (blind)",
            SweepPc::Release { .. } => "Release",
            SweepPc::AfterUnlock { .. } => "Queue (after unlock)",
            SweepPc::Done => "Done",
        }
    }

    /// The next call or write.
    pub fn next(&self) -> LegacyNext<'_> {
        let id = &self.id;
        match &self.pc {
            SweepPc::Pop => LegacyNext::Call(Call::PopDecider {
                token: self.token,
                now_ms: super::state::NOW_MS,
                unack_ms: 1,
            }),
            SweepPc::Read => LegacyNext::Call(Call::Load { id }),
            SweepPc::Acquire { .. } => LegacyNext::Call(Call::Acquire {
                id,
                token: self.token,
                lease_ms: 1,
                now_ms: super::state::NOW_MS,
            }),
            SweepPc::HandBack => LegacyNext::Call(Call::HandBack {
                id,
                token: self.token,
                due_ms: super::state::NOW_MS,
            }),
            SweepPc::Write { status, tasks } => LegacyNext::Overwrite {
                status: *status,
                tasks,
            },
            SweepPc::Release { .. } => LegacyNext::Call(Call::Release {
                id,
                token: self.token,
            }),
            SweepPc::AfterUnlock { running: true } => LegacyNext::Enqueue,
            SweepPc::AfterUnlock { running: false } => LegacyNext::Dequeue,
            SweepPc::Done => LegacyNext::Done,
        }
    }

    /// Resumes with the reply.
    pub fn resume(&mut self, reply: Result<Reply, StoreFailure>, decider: &dyn Decider) {
        let pc = std::mem::replace(&mut self.pc, SweepPc::Done);
        self.pc = match (pc, reply) {
            (_, Err(_)) => SweepPc::Done,
            (SweepPc::Pop, Ok(Reply::Popped(Some(_)))) => SweepPc::Read,
            (SweepPc::Read, Ok(Reply::Loaded(Some(workflow)))) => SweepPc::Acquire {
                snapshot: (*workflow).clone(),
            },
            (SweepPc::Acquire { snapshot }, Ok(Reply::Acquired(Ok(_)))) => {
                LegacySweep::decide(&snapshot, decider)
            }
            (SweepPc::Acquire { .. }, Ok(Reply::Acquired(Err(_)))) => SweepPc::HandBack,
            (SweepPc::Write { status, .. }, Ok(_)) => SweepPc::Release {
                running: status == WorkflowStatus::Running,
            },
            (SweepPc::Release { running }, Ok(_)) => SweepPc::AfterUnlock { running },
            (_, Ok(_)) => SweepPc::Done,
        };
    }

    /// Decide on the snapshot read before locking, and write the result blindly.
    fn decide(snapshot: &Workflow, decider: &dyn Decider) -> SweepPc {
        let running = snapshot.status() == WorkflowStatus::Running;
        match decision(snapshot, decider).and_then(|input| stepped(snapshot, &input)) {
            Some(known) => SweepPc::Write {
                status: known.status(),
                tasks: known.tasks().to_vec(),
            },
            None => SweepPc::Release { running },
        }
    }

    /// The kind of its next store call, if it is one.
    pub fn call_kind(&self) -> Option<CallKind> {
        match self.next() {
            LegacyNext::Call(call) => Some(call.kind()),
            _ => None,
        }
    }
}

/// D1: terminate persists TERMINATED, then archives inside the operation; an archive failure
/// aborts before the tasks are cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LegacyTerminate {
    token: LeaseToken,
    id: WorkflowId,
    pc: TerminatePc,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TerminatePc {
    Acquire,
    Load,
    WriteStatus { tasks: Vec<Task> },
    Archive { tasks: Vec<Task> },
    WriteTasks { tasks: Vec<Task> },
    Dequeue,
    Release,
    Done,
}

impl LegacyTerminate {
    /// A legacy terminate holding `token`.
    pub fn new(token: LeaseToken) -> Self {
        LegacyTerminate {
            token,
            id: id(),
            pc: TerminatePc::Acquire,
        }
    }

    /// The state's name.
    pub fn state_name(&self) -> &'static str {
        match self.pc {
            TerminatePc::Acquire => "Acquire",
            TerminatePc::Load => "Load",
            TerminatePc::WriteStatus { .. } => "Write TERMINATED (blind)",
            TerminatePc::Archive { .. } => "Archive (inline)",
            TerminatePc::WriteTasks { .. } => "Cancel tasks (blind)",
            TerminatePc::Dequeue => "Dequeue",
            TerminatePc::Release => "Release",
            TerminatePc::Done => "Done",
        }
    }

    /// The next call or write.
    pub fn next(&self) -> LegacyNext<'_> {
        let id = &self.id;
        match &self.pc {
            TerminatePc::Acquire => LegacyNext::Call(Call::Acquire {
                id,
                token: self.token,
                lease_ms: 1,
                now_ms: super::state::NOW_MS,
            }),
            TerminatePc::Load => LegacyNext::Call(Call::Load { id }),
            TerminatePc::WriteStatus { tasks } => LegacyNext::Overwrite {
                status: WorkflowStatus::Terminated,
                tasks,
            },
            TerminatePc::Archive { .. } => LegacyNext::Archive,
            TerminatePc::WriteTasks { tasks } => LegacyNext::Overwrite {
                status: WorkflowStatus::Terminated,
                tasks,
            },
            TerminatePc::Dequeue => LegacyNext::Dequeue,
            TerminatePc::Release => LegacyNext::Call(Call::Release {
                id,
                token: self.token,
            }),
            TerminatePc::Done => LegacyNext::Done,
        }
    }

    /// Resumes with the reply.
    pub fn resume(&mut self, reply: Result<Reply, StoreFailure>) {
        let pc = std::mem::replace(&mut self.pc, TerminatePc::Done);
        self.pc = match (pc, reply) {
            (TerminatePc::Acquire, Ok(Reply::Acquired(Ok(_)))) => TerminatePc::Load,
            (TerminatePc::Load, Ok(Reply::Loaded(Some(workflow)))) => {
                if workflow.status().is_terminal() {
                    TerminatePc::Release
                } else {
                    TerminatePc::WriteStatus {
                        tasks: workflow.tasks().to_vec(),
                    }
                }
            }
            (TerminatePc::WriteStatus { tasks }, Ok(_)) => TerminatePc::Archive { tasks },
            // D1: the listener throws; the operation aborts before cancelling tasks.
            (TerminatePc::Archive { .. }, Ok(Reply::Performed(false))) => TerminatePc::Release,
            (TerminatePc::Archive { mut tasks }, Ok(_)) => {
                for task in tasks.iter_mut().filter(|task| !task.status.is_terminal()) {
                    task.status = TaskStatus::Canceled;
                }
                TerminatePc::WriteTasks { tasks }
            }
            (TerminatePc::WriteTasks { .. }, Ok(_)) => TerminatePc::Dequeue,
            (TerminatePc::Dequeue, Ok(_)) => TerminatePc::Release,
            (TerminatePc::Release, _) => TerminatePc::Done,
            (_, Err(_)) | (_, Ok(_)) => TerminatePc::Done,
        };
    }
}

/// D2: a report reads the task, then later writes the reported status with no transition check
/// and no compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LegacyReport {
    id: WorkflowId,
    task: TaskId,
    status: ReportStatus,
    read: bool,
    done: bool,
}

impl LegacyReport {
    /// A blind report of `status` on `task`.
    pub fn new(task: TaskId, status: ReportStatus) -> Self {
        LegacyReport {
            id: id(),
            task,
            status,
            read: false,
            done: false,
        }
    }

    /// The state's name.
    pub fn state_name(&self) -> &'static str {
        match (self.read, self.done) {
            (_, true) => "Done",
            (false, false) => "Read task",
            (true, false) => "Write (blind)",
        }
    }

    /// The next call or write.
    pub fn next(&self) -> LegacyNext<'_> {
        match (self.read, self.done) {
            (_, true) => LegacyNext::Done,
            (false, false) => LegacyNext::Call(Call::Load { id: &self.id }),
            (true, false) => LegacyNext::SetTask {
                task: &self.task,
                status: self.status.task_status(),
            },
        }
    }

    /// Resumes with the reply: a terminal (or unknown) task drops the report.
    pub fn resume(&mut self, reply: Result<Reply, StoreFailure>) {
        if self.read {
            self.done = true;
            return;
        }
        let live = match reply {
            Ok(Reply::Loaded(Some(workflow))) => workflow
                .task(&self.task)
                .is_some_and(|task| !task.status.is_terminal()),
            _ => false,
        };
        self.read = true;
        self.done = !live;
    }
}

/// How a [`LegacyDecide`] takes (or skips) the lock and when it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecideMode {
    /// E2: no lock at all (`workflowExecutionLockEnabled=false`, Conductor's default up to
    /// v3.21): read, decide, create the new tasks, then write the whole workflow document.
    NoLock,
    /// E4: read before locking, then decide on that snapshot under the lock (conductor-oss
    /// #208): the new tasks are deduplicated only against the snapshot.
    StaleSnapshot,
    /// E3: lock first and read under the lock, but the lease is not a fence: a decide that
    /// outlives its lease still writes (conductor-oss #799, #613).
    LockFirst,
    /// E10: lock first; the task rows are persisted, then each task's queue push is a separate
    /// call whose failure is swallowed (Netflix PR #1830, Orkes PR #152).
    LostPush,
    /// E6: the sweep locks, then its decide locks again; the lock is not reentrant, so the
    /// inner acquire fails and the sweep re-pushes the entry with a backoff (conductor-oss
    /// #1058, #588).
    NonReentrant,
    /// E5: lock first; every task is a HUMAN task, and a decide that leaves a live one in the
    /// workflow removes the workflow from the decider queue, to be pushed again by the task's
    /// completion (conductor-oss PR #1171's `humanTaskPreventsDeciderQueue`).
    ParkHuman,
}

/// Conductor's sweep-and-decide as its DAO writes it: tasks are rows, created by a write of
/// their own (`createTasks`) and pushed to their task queue; the workflow document is written
/// blind after them. No compare-and-swap anywhere; `mode` says how the lock is (not) used.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LegacyDecide {
    token: LeaseToken,
    /// The token of the decide's own (inner) acquire, for `NonReentrant`.
    inner: LeaseToken,
    id: WorkflowId,
    mode: DecideMode,
    pc: DecidePc,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum DecidePc {
    Pop,
    Read,
    Acquire {
        snapshot: Option<Workflow>,
    },
    Reacquire,
    ReleaseInner,
    Postpone,
    HandBack,
    Create {
        tasks: Vec<Task>,
        status: WorkflowStatus,
        changed: Vec<Task>,
    },
    Push {
        tasks: Vec<Task>,
        status: WorkflowStatus,
    },
    Write {
        status: WorkflowStatus,
        tasks: Vec<Task>,
    },
    Queue {
        running: bool,
    },
    Release,
    Done,
}

impl LegacyDecide {
    /// A legacy sweep-and-decide holding `token`; `inner` is its decide's own lock token (used
    /// by `NonReentrant` only).
    pub fn new(token: LeaseToken, inner: LeaseToken, mode: DecideMode) -> Self {
        LegacyDecide {
            token,
            inner,
            id: id(),
            mode,
            pc: DecidePc::Pop,
        }
    }

    fn locks(&self) -> bool {
        self.mode != DecideMode::NoLock
    }

    /// The state's name.
    pub fn state_name(&self) -> &'static str {
        match self.pc {
            DecidePc::Pop => "Pop",
            DecidePc::Read if self.mode == DecideMode::StaleSnapshot => "Read (before locking)",
            DecidePc::Read if self.mode == DecideMode::NoLock => "Read (no lock)",
            DecidePc::Read => "Read",
            DecidePc::Acquire { .. } => "Acquire",
            DecidePc::Reacquire => "Acquire again (decide)",
            DecidePc::ReleaseInner => "Release (decide)",
            DecidePc::Postpone => "Re-push with backoff",
            DecidePc::HandBack => "HandBack",
            DecidePc::Create { .. } => "Create tasks (blind)",
            DecidePc::Push { .. } => "Push to task queue",
            DecidePc::Write { .. } => "Write workflow (blind)",
            DecidePc::Queue { .. } => "Decider queue",
            DecidePc::Release => "Release",
            DecidePc::Done => "Done",
        }
    }

    /// Is its next step the task-queue push, which may fail?
    pub fn pushing(&self) -> bool {
        matches!(self.pc, DecidePc::Push { .. })
    }

    /// The next call or write.
    pub fn next(&self) -> LegacyNext<'_> {
        let id = &self.id;
        match &self.pc {
            DecidePc::Pop => LegacyNext::Call(Call::PopDecider {
                token: self.token,
                now_ms: super::state::NOW_MS,
                unack_ms: 1,
            }),
            DecidePc::Read => LegacyNext::Call(Call::Load { id }),
            DecidePc::Acquire { .. } => LegacyNext::Call(Call::Acquire {
                id,
                token: self.token,
                lease_ms: 1,
                now_ms: super::state::NOW_MS,
            }),
            DecidePc::Reacquire => LegacyNext::Call(Call::Acquire {
                id,
                token: self.inner,
                lease_ms: 1,
                now_ms: super::state::NOW_MS,
            }),
            DecidePc::ReleaseInner => LegacyNext::Call(Call::Release {
                id,
                token: self.inner,
            }),
            DecidePc::Postpone => LegacyNext::Postpone,
            DecidePc::HandBack => LegacyNext::Call(Call::HandBack {
                id,
                token: self.token,
                due_ms: super::state::NOW_MS,
            }),
            DecidePc::Create { tasks, .. } => LegacyNext::AddTasks {
                tasks,
                push: self.mode != DecideMode::LostPush,
            },
            DecidePc::Push { tasks, .. } => LegacyNext::PushTasks { tasks },
            DecidePc::Write { status, tasks } => LegacyNext::WriteDocument {
                status: *status,
                tasks,
            },
            DecidePc::Queue { running: true } => LegacyNext::Enqueue,
            DecidePc::Queue { running: false } => LegacyNext::Dequeue,
            DecidePc::Release => LegacyNext::Call(Call::Release {
                id,
                token: self.token,
            }),
            DecidePc::Done => LegacyNext::Done,
        }
    }

    /// Resumes with the reply (for a write or the push: whether it happened).
    pub fn resume(&mut self, reply: Result<Reply, StoreFailure>, decider: &dyn Decider) {
        let pc = std::mem::replace(&mut self.pc, DecidePc::Done);
        let mode = self.mode;
        self.pc = match (pc, reply) {
            (_, Err(_)) => DecidePc::Done,
            (DecidePc::Pop, Ok(Reply::Popped(Some(_)))) => match mode {
                DecideMode::NoLock | DecideMode::StaleSnapshot => DecidePc::Read,
                DecideMode::LockFirst
                | DecideMode::LostPush
                | DecideMode::NonReentrant
                | DecideMode::ParkHuman => DecidePc::Acquire { snapshot: None },
            },
            (DecidePc::Read, Ok(Reply::Loaded(Some(workflow)))) => match mode {
                DecideMode::StaleSnapshot => DecidePc::Acquire {
                    snapshot: Some((*workflow).clone()),
                },
                DecideMode::NoLock
                | DecideMode::LockFirst
                | DecideMode::LostPush
                | DecideMode::NonReentrant
                | DecideMode::ParkHuman => LegacyDecide::decide(&workflow, decider, mode),
            },
            (DecidePc::Acquire { snapshot }, Ok(Reply::Acquired(Ok(_)))) => match snapshot {
                Some(snapshot) => LegacyDecide::decide(&snapshot, decider, mode),
                None if mode == DecideMode::NonReentrant => DecidePc::Reacquire,
                None => DecidePc::Read,
            },
            // The outer lease had run out, so the inner acquire was granted: let it go again.
            (DecidePc::Reacquire, Ok(Reply::Acquired(Ok(_)))) => DecidePc::ReleaseInner,
            (DecidePc::ReleaseInner, Ok(_)) => DecidePc::Read,
            // E6: the sweep's own lock refuses its decide; it re-pushes with a backoff.
            (DecidePc::Reacquire, Ok(_)) => DecidePc::Postpone,
            (DecidePc::Postpone, Ok(_)) => DecidePc::Release,
            (DecidePc::Acquire { .. }, Ok(Reply::Acquired(Err(_)))) => DecidePc::HandBack,
            (
                DecidePc::Create {
                    tasks,
                    status,
                    changed,
                },
                Ok(_),
            ) => match mode {
                DecideMode::NoLock => DecidePc::Write {
                    status,
                    tasks: changed,
                },
                DecideMode::LostPush => DecidePc::Push { tasks, status },
                // E5: a live HUMAN task parks the workflow: out of the decider queue.
                DecideMode::ParkHuman => DecidePc::Queue {
                    running: status == WorkflowStatus::Running
                        && tasks.iter().all(|task| task.status.is_terminal()),
                },
                DecideMode::StaleSnapshot | DecideMode::LockFirst | DecideMode::NonReentrant => {
                    DecidePc::Queue {
                        running: status == WorkflowStatus::Running,
                    }
                }
            },
            (DecidePc::Push { status, .. }, Ok(_)) => DecidePc::Queue {
                running: status == WorkflowStatus::Running,
            },
            (DecidePc::Write { status, .. }, Ok(_)) => DecidePc::Queue {
                running: status == WorkflowStatus::Running,
            },
            (DecidePc::Queue { .. }, Ok(_)) if self.locks() => DecidePc::Release,
            (_, Ok(_)) => DecidePc::Done,
        };
    }

    /// Decide on `snapshot`: new tasks are created as rows of their own; a status change is a
    /// blind write of the document's status and of the task rows the step changed, as the
    /// snapshot plus the step has them (Conductor's `updateWorkflow` and `updateTasks`).
    fn decide(snapshot: &Workflow, decider: &dyn Decider, mode: DecideMode) -> DecidePc {
        let running = snapshot.status() == WorkflowStatus::Running;
        let Some(input) = decision(snapshot, decider) else {
            // E5: nothing to do while a HUMAN task is live parks the workflow.
            let parked = mode == DecideMode::ParkHuman && snapshot.active_tasks().next().is_some();
            return DecidePc::Queue {
                running: running && !parked,
            };
        };
        let Some(known) = stepped(snapshot, &input) else {
            return DecidePc::Queue { running };
        };
        let created: Vec<Task> = known
            .tasks()
            .iter()
            .filter(|task| snapshot.task(&task.id).is_none())
            .cloned()
            .collect();
        let changed: Vec<Task> = known
            .tasks()
            .iter()
            .filter(|task| snapshot.task(&task.id).is_some_and(|old| old != *task))
            .cloned()
            .collect();
        if created.is_empty() {
            DecidePc::Write {
                status: known.status(),
                tasks: changed,
            }
        } else {
            DecidePc::Create {
                tasks: created,
                status: known.status(),
                changed,
            }
        }
    }

    /// The kind of its next store call, if it is one.
    pub fn call_kind(&self) -> Option<CallKind> {
        match self.next() {
            LegacyNext::Call(call) => Some(call.kind()),
            _ => None,
        }
    }
}

/// E7: a poll that reads the attempt, checks it is not terminal, then writes IN_PROGRESS blind
/// (Conductor's `ExecutionService.poll`: check-then-act, no compare-and-swap; Netflix #210, #362).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LegacyPoll {
    id: WorkflowId,
    reference_name: String,
    pc: PollPc,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PollPc {
    Poll,
    Load { task: TaskId },
    Write { task: TaskId },
    Done(Option<TaskId>),
}

impl LegacyPoll {
    /// A blind poll of the queue `reference_name`.
    pub fn new(reference_name: &str) -> Self {
        LegacyPoll {
            id: id(),
            reference_name: reference_name.to_owned(),
            pc: PollPc::Poll,
        }
    }

    /// The state's name.
    pub fn state_name(&self) -> &'static str {
        match self.pc {
            PollPc::Poll => "Poll",
            PollPc::Load { .. } => "Load",
            PollPc::Write { .. } => "Write IN_PROGRESS (blind)",
            PollPc::Done(_) => "Done",
        }
    }

    /// The next call or write.
    pub fn next(&self) -> LegacyNext<'_> {
        match &self.pc {
            PollPc::Poll => LegacyNext::Call(Call::PollTask {
                reference_name: &self.reference_name,
                now_ms: super::state::NOW_MS,
                visibility_ms: 1,
            }),
            PollPc::Load { .. } => LegacyNext::Call(Call::Load { id: &self.id }),
            PollPc::Write { task } => LegacyNext::SetTask {
                task,
                status: TaskStatus::InProgress,
            },
            PollPc::Done(_) => LegacyNext::Done,
        }
    }

    /// Resumes with the reply: a terminal attempt is skipped (the check of commit aa60db87e).
    pub fn resume(&mut self, reply: Result<Reply, StoreFailure>) {
        let pc = std::mem::replace(&mut self.pc, PollPc::Done(None));
        self.pc = match (pc, reply) {
            (PollPc::Poll, Ok(Reply::Task(Some(queued)))) => PollPc::Load { task: queued.task },
            (PollPc::Load { task }, Ok(Reply::Loaded(Some(workflow)))) => {
                let live = workflow
                    .task(&task)
                    .is_some_and(|attempt| !attempt.status.is_terminal());
                if live {
                    PollPc::Write { task }
                } else {
                    PollPc::Done(None)
                }
            }
            (PollPc::Write { task }, Ok(_)) => PollPc::Done(Some(task)),
            (_, Err(_)) | (_, Ok(_)) => PollPc::Done(None),
        };
    }

    /// The attempt handed out, once done.
    pub fn polled(&self) -> Option<&TaskId> {
        match &self.pc {
            PollPc::Done(task) => task.as_ref(),
            _ => None,
        }
    }

    /// The kind of its next store call, if it is one.
    pub fn call_kind(&self) -> Option<CallKind> {
        match self.next() {
            LegacyNext::Call(call) => Some(call.kind()),
            _ => None,
        }
    }
}

/// E8: the decider's task time-out under the lock, written blind from the snapshot it read:
/// a completion reported (lock-free) in between is overwritten (Netflix #1249).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LegacyTimeOut {
    token: LeaseToken,
    id: WorkflowId,
    task: TaskId,
    pc: TimeOutPc,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TimeOutPc {
    Acquire,
    Load,
    Write {
        status: WorkflowStatus,
        tasks: Vec<Task>,
    },
    Dequeue,
    Release,
    Done,
}

impl LegacyTimeOut {
    /// A legacy time-out of `task`, holding `token`.
    pub fn new(token: LeaseToken, task: TaskId) -> Self {
        LegacyTimeOut {
            token,
            id: id(),
            task,
            pc: TimeOutPc::Acquire,
        }
    }

    /// The state's name.
    pub fn state_name(&self) -> &'static str {
        match self.pc {
            TimeOutPc::Acquire => "Acquire",
            TimeOutPc::Load => "Load",
            TimeOutPc::Write { .. } => "Write time-out (blind)",
            TimeOutPc::Dequeue => "Dequeue",
            TimeOutPc::Release => "Release",
            TimeOutPc::Done => "Done",
        }
    }

    /// The next call or write.
    pub fn next(&self) -> LegacyNext<'_> {
        let id = &self.id;
        match &self.pc {
            TimeOutPc::Acquire => LegacyNext::Call(Call::Acquire {
                id,
                token: self.token,
                lease_ms: 1,
                now_ms: super::state::NOW_MS,
            }),
            TimeOutPc::Load => LegacyNext::Call(Call::Load { id }),
            TimeOutPc::Write { status, tasks } => LegacyNext::Overwrite {
                status: *status,
                tasks,
            },
            TimeOutPc::Dequeue => LegacyNext::Dequeue,
            TimeOutPc::Release => LegacyNext::Call(Call::Release {
                id,
                token: self.token,
            }),
            TimeOutPc::Done => LegacyNext::Done,
        }
    }

    /// Resumes with the reply.
    pub fn resume(&mut self, reply: Result<Reply, StoreFailure>) {
        let pc = std::mem::replace(&mut self.pc, TimeOutPc::Done);
        self.pc = match (pc, reply) {
            (TimeOutPc::Acquire, Ok(Reply::Acquired(Ok(_)))) => TimeOutPc::Load,
            (TimeOutPc::Load, Ok(Reply::Loaded(Some(workflow)))) => {
                let input = Input::Engine(wfstate::EngineInput::TimeOutTask {
                    task: self.task.clone(),
                });
                match stepped(&workflow, &input) {
                    Some(known) => TimeOutPc::Write {
                        status: known.status(),
                        tasks: known.tasks().to_vec(),
                    },
                    None => TimeOutPc::Release,
                }
            }
            (TimeOutPc::Write { status, .. }, Ok(_)) if status != WorkflowStatus::Running => {
                TimeOutPc::Dequeue
            }
            (TimeOutPc::Write { .. } | TimeOutPc::Dequeue, Ok(_)) => TimeOutPc::Release,
            (TimeOutPc::Release, _) => TimeOutPc::Done,
            (TimeOutPc::Acquire, _) => TimeOutPc::Done,
            (_, Err(_)) | (_, Ok(_)) => TimeOutPc::Release,
        };
    }
}

/// How long Conductor postpones a decider-queue entry when a worker polls one of its tasks
/// (`adjustDeciderQueuePostpone`: the task's `responseTimeoutSeconds`). In the model it is only
/// "later than any lease": the entry is hidden until time passes (`Tick`).
pub const POSTPONED_MS: u64 = 600_000;

/// E1: a worker's report commits the task (with no decider-queue wake-up: in Conductor the
/// report's own `decide` is the wake-up), then decides under the lock; if the lock is busy it
/// returns with nothing done (`decideWithLock` returns null and `updateTask` ignores it;
/// conductor-oss #1132, #1273).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LegacyReportDecide {
    id: WorkflowId,
    input: Input,
    token: LeaseToken,
    /// E5: push the workflow to the decider queue between the commit and the decide.
    push: bool,
    pc: ReportDecidePc,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ReportDecidePc {
    Load,
    Commit { step: Step, plan: QueuePlan },
    Push,
    Acquire,
    Read,
    Decide { step: Step, plan: QueuePlan },
    Release,
    Done,
}

impl LegacyReportDecide {
    /// The report `status` on `task`, deciding with `token` afterwards; `push` puts the
    /// workflow in the decider queue before the decide (E5's HUMAN completion).
    pub fn new(task: TaskId, status: ReportStatus, token: LeaseToken, push: bool) -> Self {
        LegacyReportDecide {
            id: id(),
            input: Input::Report(wfstate::Report::new(task, status)),
            token,
            push,
            pc: ReportDecidePc::Load,
        }
    }

    /// Its lease token.
    pub fn token(&self) -> LeaseToken {
        self.token
    }

    /// Committed and still to decide (or deciding): the wake-up is this operation's.
    pub fn deciding(&self) -> bool {
        matches!(
            self.pc,
            ReportDecidePc::Push
                | ReportDecidePc::Acquire
                | ReportDecidePc::Read
                | ReportDecidePc::Decide { .. }
                | ReportDecidePc::Release
        )
    }

    /// The state's name.
    pub fn state_name(&self) -> &'static str {
        match self.pc {
            ReportDecidePc::Load => "Load",
            ReportDecidePc::Commit { .. } => "Commit (no wake-up)",
            ReportDecidePc::Push => "Push to decider queue",
            ReportDecidePc::Acquire => "Acquire (decide)",
            ReportDecidePc::Read => "Read",
            ReportDecidePc::Decide { .. } => "Commit decision",
            ReportDecidePc::Release => "Release",
            ReportDecidePc::Done => "Done",
        }
    }

    /// The next call.
    pub fn next(&self) -> LegacyNext<'_> {
        let id = &self.id;
        match &self.pc {
            ReportDecidePc::Load | ReportDecidePc::Read => LegacyNext::Call(Call::Load { id }),
            ReportDecidePc::Commit { step, plan } | ReportDecidePc::Decide { step, plan } => {
                LegacyNext::Call(Call::Commit {
                    id,
                    step,
                    plan,
                    now_ms: super::state::NOW_MS,
                })
            }
            ReportDecidePc::Push => LegacyNext::Enqueue,
            ReportDecidePc::Acquire => LegacyNext::Call(Call::Acquire {
                id,
                token: self.token,
                lease_ms: 1,
                now_ms: super::state::NOW_MS,
            }),
            ReportDecidePc::Release => LegacyNext::Call(Call::Release {
                id,
                token: self.token,
            }),
            ReportDecidePc::Done => LegacyNext::Done,
        }
    }

    /// Resumes with the reply.
    pub fn resume(&mut self, reply: Result<Reply, StoreFailure>, decider: &dyn Decider) {
        let pc = std::mem::replace(&mut self.pc, ReportDecidePc::Done);
        self.pc = match (pc, reply) {
            (ReportDecidePc::Load, Ok(Reply::Loaded(Some(workflow)))) => {
                match transition(&workflow, &self.input) {
                    Ok(step) if step.is_applied() => {
                        let mut plan = QueuePlan::of(&self.id, &step, Committer::Report);
                        plan.decider = DeciderPlan::Keep;
                        ReportDecidePc::Commit { step, plan }
                    }
                    Ok(_) | Err(_) => ReportDecidePc::Done,
                }
            }
            (ReportDecidePc::Commit { .. }, Ok(Reply::Committed(CommitReply::Done(_)))) => {
                if self.push {
                    ReportDecidePc::Push
                } else {
                    ReportDecidePc::Acquire
                }
            }
            (ReportDecidePc::Push, Ok(_)) => ReportDecidePc::Acquire,
            (ReportDecidePc::Commit { .. }, Ok(Reply::Committed(CommitReply::Stale { .. }))) => {
                ReportDecidePc::Load
            }
            (ReportDecidePc::Acquire, Ok(Reply::Acquired(Ok(_)))) => ReportDecidePc::Read,
            // E1: the lock is busy; the decide returns null and nobody requeues.
            (ReportDecidePc::Acquire, Ok(_)) => ReportDecidePc::Done,
            (ReportDecidePc::Read, Ok(Reply::Loaded(Some(workflow)))) => {
                self.decide(&workflow, decider)
            }
            (ReportDecidePc::Read | ReportDecidePc::Decide { .. }, _) => ReportDecidePc::Release,
            (_, Ok(_)) | (_, Err(_)) => ReportDecidePc::Done,
        };
    }

    /// The decision on the workflow read under the lock, committed as the sweep would.
    fn decide(&self, workflow: &Workflow, decider: &dyn Decider) -> ReportDecidePc {
        let Decision::Act(input) = decider.decide(workflow) else {
            return ReportDecidePc::Release;
        };
        match transition(workflow, &Input::Engine(input)) {
            Ok(step) if step.is_applied() => {
                let plan = QueuePlan::of(&self.id, &step, Committer::Sweeper);
                ReportDecidePc::Decide { step, plan }
            }
            Ok(_) | Err(_) => ReportDecidePc::Release,
        }
    }

    /// The kind of its next store call.
    pub fn call_kind(&self) -> Option<CallKind> {
        match self.next() {
            LegacyNext::Call(call) => Some(call.kind()),
            _ => None,
        }
    }
}
