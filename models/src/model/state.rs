//! The model's state: the persisted workflow, the decider queue, the lock, every actor's program
//! counter and snapshot, the network, the outbox, budgets and ghost history. Small `Clone + Hash +
//! Eq` values only (`Vec`, no `HashMap`), as stateright wants.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stateright::Representative;
use wfstate::{Effect, ReportStatus, TaskStatus, Workflow, WorkflowStatus};

/// Who holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// Sweeper `i`.
    Sweeper(u8),
    /// The operator terminating the workflow.
    Terminator,
}

/// The per-workflow lease lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lock {
    /// The token of the holder.
    pub holder: Holder,
    /// The lease ran out while the holder still runs: anyone may take the lock now.
    pub expired: bool,
}

/// The workflow's entry in the decider queue. Taking an entry leases it rather than removing
/// it, so a sweeper that misses the lock can hand it back only if it still holds it: a plain
/// remove-then-push-back would resurrect an entry that the lock holder removed meanwhile (the
/// model found that race: a stale entry without any lease expiry, against I6b).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QueueEntry {
    /// Not in the queue.
    Absent,
    /// In the queue, ready to be taken.
    Ready,
    /// In the queue, taken by sweeper `i` (invisible to other sweepers).
    Taken(u8),
}

impl QueueEntry {
    /// Is the workflow in the decider queue (ready or taken)?
    pub fn is_present(self) -> bool {
        !matches!(self, QueueEntry::Absent)
    }
}

/// Where a queue operation leaves the workflow id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QueueOp {
    /// Requeue with a delay (the workflow is RUNNING as far as the actor knows).
    Requeue,
    /// Remove from the decider queue (terminal or paused).
    Remove,
}

impl QueueOp {
    /// The queue entry after the operation.
    pub fn entry(self) -> QueueEntry {
        match self {
            QueueOp::Requeue => QueueEntry::Ready,
            QueueOp::Remove => QueueEntry::Absent,
        }
    }
}

/// A sweeper's program counter. Fixed protocol: Idle → Popped → Locked → Read → (decide + CAS)
/// → Queue → Unlock → Idle. Legacy sweeper: Idle → Popped → Snapshot (read without the lock) →
/// Read (locked) → (decide + blind write) → Unlock → AfterUnlock (queue operation) → Idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SweepPc {
    /// Not sweeping.
    Idle,
    /// Took the id from the decider queue.
    Popped,
    /// Legacy: read the workflow before taking the lock.
    Snapshot,
    /// Holds the lock, has not read yet.
    Locked,
    /// Holds the lock and has a snapshot: may decide.
    Read,
    /// Must perform this queue operation next, before unlocking.
    Queue(QueueOp),
    /// Must release the lock next; the legacy sweeper then still owes a queue operation.
    Unlock(Option<QueueOp>),
    /// Legacy: unlocked, the queue operation comes now, outside the operation.
    AfterUnlock(QueueOp),
}

/// One sweeper.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sweeper {
    /// Program counter.
    pub pc: SweepPc,
    /// The workflow as this sweeper last read it.
    pub snapshot: Option<Arc<Workflow>>,
    /// Lock misses left (a miss puts the id back).
    pub misses_left: u8,
}

/// The terminator's program counter. Fixed: Idle → Locked → Read → (terminate + CAS) → Queue →
/// Unlock → Done. Legacy archive: ... → Read → WroteStatus (TERMINATED persisted, tasks untouched)
/// → Archived → Queue → Unlock → Done, or an archive failure → Unlock (abort) → Done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TerminatePc {
    /// Has not started.
    Idle,
    /// Holds the lock.
    Locked,
    /// Has a snapshot.
    Read,
    /// Legacy: TERMINATED persisted, archive next.
    WroteStatus,
    /// Legacy: archived, cancelling the tasks next.
    Archived,
    /// Must remove the workflow from the decider queue next.
    Queue,
    /// Must release the lock next.
    Unlock,
    /// Finished (or never runs).
    Done,
}

/// The terminator.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Terminator {
    /// Program counter.
    pub pc: TerminatePc,
    /// The workflow as it read it.
    pub snapshot: Option<Arc<Workflow>>,
}

/// A report in the network (a multiset: same content, several copies). The attempt is named by
/// its definition index and retry count, which keeps the state small.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Message {
    /// The definition index of the task reported on.
    pub task: u8,
    /// The attempt's retry count.
    pub retry_count: u32,
    /// The reported status.
    pub status: ReportStatus,
    /// Legacy blind report: the handler has read the task and will write blindly next.
    #[serde(default)]
    pub read: bool,
}

/// The whole model state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct State {
    /// The persisted workflow (the store). Shared with the snapshots that read it: copy on write.
    pub workflow: Arc<Workflow>,
    /// Decider-queue membership.
    pub queue: QueueEntry,
    /// The lease lock.
    pub lock: Option<Lock>,
    /// Sweepers.
    pub sweepers: Vec<Sweeper>,
    /// The operator.
    pub terminator: Terminator,
    /// Per task of the definition: the retry count of the last attempt its worker worked on.
    pub worked: Vec<Option<u32>>,
    /// In-flight reports, sorted (a multiset).
    pub network: Vec<Message>,
    /// Post-commit effects owed, in commit order.
    pub outbox: Vec<Effect>,
    /// Budgets left.
    pub budgets: Budgets,
    /// History the properties need.
    pub ghost: Ghost,
}

/// What the bounded environment may still do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Budgets {
    /// Report duplications left, per task.
    pub duplicates: Vec<u8>,
    /// Archive failures left.
    pub archive_failures: u8,
    /// Lease expiries left.
    pub lease_expiries: u8,
    /// Task time-outs left.
    pub task_timeouts: u8,
}

/// Ghost history: not part of the system, only of what the properties need to see.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// Every write to the store (the version must equal it: I4).
    pub commits: u64,
    /// The workflow was terminal at some point (I5: nothing in the model retries).
    pub was_terminal: bool,
    /// Per task position: the first terminal status it had (I3).
    pub first_terminal: Vec<Option<TaskStatus>>,
    /// Some lease expired (I6b is only promised before that).
    pub lease_expired: bool,
    /// The last task edge a committed step took (edge coverage).
    pub last_edge: Option<(TaskStatus, TaskStatus)>,
    /// Terminate committed while a report was in the network.
    pub terminated_with_report_in_flight: bool,
    /// Archiving failed at least once.
    pub archive_failed: bool,
    /// Archiving succeeded at least once.
    pub archived: bool,
    /// A compare-and-swap was refused because the version had moved.
    pub stale_write_rejected: bool,
    /// A decider proposed an input the transition function rejected.
    pub decision_rejected: bool,
}

impl State {
    /// Is any operation in flight? A sweep from taking the id until it released the lock; the
    /// terminator from taking the lock until it released it (SPEC I6a). The legacy sweeper's
    /// queue operation after unlocking is outside its operation: that is the D3 defect.
    pub fn in_flight(&self) -> bool {
        let sweeping = self.sweepers.iter().any(|sweeper| match sweeper.pc {
            SweepPc::Idle | SweepPc::AfterUnlock(_) => false,
            SweepPc::Popped
            | SweepPc::Snapshot
            | SweepPc::Locked
            | SweepPc::Read
            | SweepPc::Queue(_)
            | SweepPc::Unlock(_) => true,
        });
        let terminating = !matches!(self.terminator.pc, TerminatePc::Idle | TerminatePc::Done);
        sweeping || terminating
    }

    /// The status of the persisted workflow.
    pub fn status(&self) -> WorkflowStatus {
        self.workflow.status()
    }
}

/// Sweepers are interchangeable: order them canonically and rename the lock holder to match.
impl Representative for State {
    fn representative(&self) -> Self {
        let mut order: Vec<usize> = (0..self.sweepers.len()).collect();
        order.sort_by(|&a, &b| sweeper_key(&self.sweepers[a]).cmp(&sweeper_key(&self.sweepers[b])));
        let mut state = self.clone();
        state.sweepers = order.iter().map(|&i| self.sweepers[i].clone()).collect();
        let rename = |old: u8| {
            order
                .iter()
                .position(|&i| i == old as usize)
                .expect("sweeper exists") as u8
        };
        if let Some(lock) = &mut state.lock {
            if let Holder::Sweeper(old) = lock.holder {
                lock.holder = Holder::Sweeper(rename(old));
            }
        }
        if let QueueEntry::Taken(old) = state.queue {
            state.queue = QueueEntry::Taken(rename(old));
        }
        state
    }
}

/// A total order on what distinguishes sweepers; ties between different sweepers only cost
/// reduction, never soundness (any permutation is an equivalent state).
fn sweeper_key(sweeper: &Sweeper) -> (SweepPc, Option<(u64, WorkflowStatus, usize)>, u8) {
    let snapshot = sweeper
        .snapshot
        .as_ref()
        .map(|w| (w.version(), w.status(), w.tasks().len()));
    (sweeper.pc, snapshot, sweeper.misses_left)
}
