//! The legacy protocols (SPEC section 8): Conductor's defective operations, written as
//! alternative operation machines over the same store contract, plus the blind writes that the
//! contract does not have. None of this is shipped: the runtime has no switch for them.

use wfstate::runtime::{Call, CallKind, LeaseToken, Reply, StoreFailure};
use wfstate::{
    transition, Decision, Input, ReportStatus, Task, TaskId, TaskStatus, Workflow, WorkflowId,
    WorkflowStatus,
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
        let Decision::Act(input) = decider.decide(snapshot) else {
            return SweepPc::Release { running };
        };
        match transition(snapshot, &Input::Engine(input)) {
            Ok(step) if step.is_applied() => {
                let mut known = snapshot.clone();
                if known.apply(&step).is_err() {
                    return SweepPc::Release { running };
                }
                SweepPc::Write {
                    status: known.status(),
                    tasks: known.tasks().to_vec(),
                }
            }
            Ok(_) | Err(_) => SweepPc::Release { running },
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
