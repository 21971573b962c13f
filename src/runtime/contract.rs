//! The store contract (SPEC section 7.2): the calls the operation machines make, the replies a
//! store gives, the typed failures it may report, and the queue plan every store applies with a
//! commit. `docs/design.md` says, call by call, what a backend must guarantee.

use std::fmt;
use std::sync::Arc;

use crate::{Effect, Phase, ReferenceName, Step, TaskId, Workflow, WorkflowId, WorkflowStatus};

/// Identifies the holder of a lease: the engine instance (`owner`, drawn at random when the
/// engine is made, so two processes never share one) and a serial number within it. Releasing
/// needs the same token, so a holder can only release its own lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseToken {
    owner: u64,
    serial: u64,
}

impl LeaseToken {
    /// A token. Tokens must be unique among live holders across every process sharing a store:
    /// [`Engine::token`](super::Engine::token) draws them that way.
    pub const fn new(owner: u64, serial: u64) -> Self {
        LeaseToken { owner, serial }
    }

    /// The engine instance that drew the token.
    pub const fn owner(self) -> u64 {
        self.owner
    }

    /// The token's number within its engine instance.
    pub const fn serial(self) -> u64 {
        self.serial
    }
}

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}#{}", self.owner, self.serial)
    }
}

/// A granted lease on a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    /// Who holds it.
    pub holder: LeaseToken,
    /// The logical time at which it expires: valid while `now_ms < expires_at_ms`.
    pub expires_at_ms: u64,
}

impl Lease {
    /// The lease [`Call::Acquire`] grants `holder` at `now_ms` for `lease_ms`: valid until
    /// `now_ms + lease_ms` (saturating). Every store grants this one.
    pub const fn granted(holder: LeaseToken, now_ms: u64, lease_ms: u64) -> Self {
        Lease {
            holder,
            expires_at_ms: now_ms.saturating_add(lease_ms),
        }
    }

    /// Is the lease still valid at `now_ms`?
    pub const fn is_valid_at(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }
}

/// A task attempt waiting in its task queue for a worker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueuedTask {
    /// The workflow the attempt belongs to.
    pub workflow: WorkflowId,
    /// The attempt.
    pub task: TaskId,
    /// The queue it waits in: its reference name (the runtime's stand-in for Conductor's task
    /// type, which the core does not model). Shared text: entries of one queue share it, and
    /// handing an entry out does not allocate.
    pub reference_name: ReferenceName,
}

/// One post-commit effect owed by a committed step.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutboxEntry {
    /// The entry's id in the outbox (increasing in append order); acknowledge with it.
    pub sequence: u64,
    /// The workflow whose step owed the effect.
    pub workflow: WorkflowId,
    /// The workflow version that step committed.
    pub version: u64,
    /// The effect: [`Effect::NotifyListeners`], [`Effect::Archive`] or
    /// [`Effect::StopRunningTask`].
    pub effect: Effect,
    /// How many times the entry has been taken, this time included (1 on the first try).
    pub attempts: u32,
}

/// What a commit does to the decider queue, after the compare-and-swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeciderPlan {
    /// Nothing.
    Keep,
    /// The workflow left RUNNING: it leaves the decider queue.
    Leave,
    /// The workflow became RUNNING: it enters the decider queue (or moves), due at the commit's
    /// `now_ms`.
    Enter,
    /// If the workflow is in the decider queue and the committed status is RUNNING, it is due
    /// again at the commit's `now_ms` (a report that ended a task, or a sweep whose decider may
    /// have more to do). Never adds an entry.
    Wake,
}

/// The queue effects of a committed step (SPEC section 5, phase 2), as every store applies them
/// in the same atomic action as the compare-and-swap. [`QueuePlan::of`] is the one place they
/// are derived from a step.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueuePlan {
    /// The decider queue.
    pub decider: DeciderPlan,
    /// Task-queue entries to remove: attempts of the committed workflow that ended (cancelled,
    /// timed out, reported terminal). A started attempt keeps its (leased) entry until it ends.
    pub remove_tasks: Vec<TaskId>,
    /// New attempts to push to their task queues, in order.
    pub push_tasks: Vec<QueuedTask>,
}

/// Who commits, which decides whether the decider queue is woken after the step's own effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Committer {
    /// The sweeper: still RUNNING after its decision, the workflow is due again at once.
    Sweeper,
    /// A worker's report: one that ended a task wakes the workflow.
    Report,
    /// An admin or engine input of the caller's, or a poll's start: only the step's own effects.
    Caller,
}

impl QueuePlan {
    /// The plan of an applied `step` of workflow `id`, committed by `committer`. Pure: every
    /// store applies the same rules.
    pub fn of(id: &WorkflowId, step: &Step, committer: Committer) -> QueuePlan {
        let mut plan = QueuePlan {
            decider: DeciderPlan::Keep,
            remove_tasks: Vec::new(),
            push_tasks: Vec::new(),
        };
        for effect in step.effects_in(Phase::Queue) {
            match effect {
                Effect::LeaveDeciderQueue => plan.decider = DeciderPlan::Leave,
                Effect::EnterDeciderQueue => plan.decider = DeciderPlan::Enter,
                Effect::RemoveFromTaskQueue { task } => plan.remove_tasks.push(task.clone()),
                Effect::PushToTaskQueue { task } => {
                    let added = step.changes().added.iter().find(|added| added.id == *task);
                    if let Some(attempt) = added {
                        plan.push_tasks.push(QueuedTask {
                            workflow: id.clone(),
                            task: task.clone(),
                            reference_name: attempt.reference_name.clone(),
                        });
                    }
                }
                Effect::Persist { .. }
                | Effect::NotifyListeners { .. }
                | Effect::Archive
                | Effect::StopRunningTask { .. } => {}
            }
        }
        let ended = step
            .changes()
            .tasks
            .iter()
            .filter(|change| change.to.is_terminal() && !change.from.is_terminal());
        let mut wakes = false;
        for change in ended {
            wakes = true;
            if !plan.remove_tasks.contains(&change.task) {
                plan.remove_tasks.push(change.task.clone());
            }
        }
        let wake = match committer {
            Committer::Sweeper => true,
            Committer::Report => wakes,
            Committer::Caller => false,
        };
        if wake && plan.decider == DeciderPlan::Keep {
            plan.decider = DeciderPlan::Wake;
        }
        plan
    }
}

/// A commit that took effect: what the caller needs, not the whole workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Receipt {
    /// The version the commit wrote.
    pub version: u64,
    /// The workflow's status after it.
    pub status: WorkflowStatus,
}

/// The kind of a store call, for errors and traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallKind {
    /// [`Call::Insert`].
    Insert,
    /// [`Call::Load`].
    Load,
    /// [`Call::Acquire`].
    Acquire,
    /// [`Call::Release`].
    Release,
    /// [`Call::Commit`].
    Commit,
    /// [`Call::PopDecider`].
    PopDecider,
    /// [`Call::HandBack`].
    HandBack,
    /// [`Call::Requeue`].
    Requeue,
    /// [`Call::DropIfNotRunning`].
    DropIfNotRunning,
    /// [`Call::DeciderDue`].
    DeciderDue,
    /// [`Call::PollTask`].
    PollTask,
    /// [`Call::DropTask`].
    DropTask,
    /// [`Call::TakeOutbox`].
    TakeOutbox,
    /// [`Call::AckOutbox`].
    AckOutbox,
}

impl CallKind {
    /// Every kind, in contract order.
    pub const ALL: [CallKind; 14] = [
        CallKind::Insert,
        CallKind::Load,
        CallKind::Acquire,
        CallKind::Release,
        CallKind::Commit,
        CallKind::PopDecider,
        CallKind::HandBack,
        CallKind::Requeue,
        CallKind::DropIfNotRunning,
        CallKind::DeciderDue,
        CallKind::PollTask,
        CallKind::DropTask,
        CallKind::TakeOutbox,
        CallKind::AckOutbox,
    ];

    /// The call's name in docs and traces.
    pub const fn name(self) -> &'static str {
        match self {
            CallKind::Insert => "insert",
            CallKind::Load => "load",
            CallKind::Acquire => "acquire",
            CallKind::Release => "release",
            CallKind::Commit => "commit",
            CallKind::PopDecider => "pop_decider",
            CallKind::HandBack => "hand_back",
            CallKind::Requeue => "requeue",
            CallKind::DropIfNotRunning => "drop_if_not_running",
            CallKind::DeciderDue => "decider_due",
            CallKind::PollTask => "poll_task",
            CallKind::DropTask => "drop_task",
            CallKind::TakeOutbox => "take_outbox",
            CallKind::AckOutbox => "ack_outbox",
        }
    }
}

impl fmt::Display for CallKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One store call. Every call is atomic; `docs/design.md` states what each must guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    /// Adds a new workflow and, in the same atomic action, enters it in the decider queue due at
    /// `now_ms` if it is RUNNING, and each of its SCHEDULED attempts in its task queue. Reply:
    /// [`Reply::Inserted`] (`false`: the id is taken, nothing changed).
    Insert {
        /// The workflow.
        workflow: &'a Workflow,
        /// When it is due.
        now_ms: u64,
    },
    /// The current state of a workflow. Reply: [`Reply::Loaded`].
    Load {
        /// The workflow.
        id: &'a WorkflowId,
    },
    /// Grants `token` the lease on `id` until `now_ms + lease_ms` unless another token holds a
    /// valid one (an expired lease is taken over). Reply: [`Reply::Acquired`].
    Acquire {
        /// The workflow.
        id: &'a WorkflowId,
        /// Who asks.
        token: LeaseToken,
        /// For how long.
        lease_ms: u64,
        /// The caller's time.
        now_ms: u64,
    },
    /// Releases the lease on `id` if `token` holds it, valid or expired. Reply:
    /// [`Reply::Released`] (`false`: someone else holds it, nothing changed).
    Release {
        /// The workflow.
        id: &'a WorkflowId,
        /// The holder.
        token: LeaseToken,
    },
    /// If the stored version is `step.read_version()`, applies the step, appends its
    /// post-commit effects to the outbox stamped with the new version, and applies `plan`, all in
    /// one atomic action. Reply: [`Reply::Committed`].
    Commit {
        /// The workflow.
        id: &'a WorkflowId,
        /// An applied step.
        step: &'a Step,
        /// Its queue effects ([`QueuePlan::of`]).
        plan: &'a QueuePlan,
        /// Due time of decider-queue entries the plan enters or wakes.
        now_ms: u64,
    },
    /// Leases the first decider-queue entry due at `now_ms` to `token`: it stays in the queue,
    /// hidden until `now_ms + unack_ms`. Reply: [`Reply::Popped`].
    PopDecider {
        /// The sweep's token.
        token: LeaseToken,
        /// The caller's time.
        now_ms: u64,
        /// How long the entry stays hidden.
        unack_ms: u64,
    },
    /// If `token` still holds the entry of `id` (it popped it and nothing moved it since), it is
    /// due at `due_ms`. Reply: [`Reply::Moved`].
    HandBack {
        /// The workflow.
        id: &'a WorkflowId,
        /// The token that popped it.
        token: LeaseToken,
        /// When it is due.
        due_ms: u64,
    },
    /// If `id` is in the decider queue, it is due at `due_ms` (never adds an entry). Reply:
    /// [`Reply::Moved`].
    Requeue {
        /// The workflow.
        id: &'a WorkflowId,
        /// When it is due.
        due_ms: u64,
    },
    /// Removes the decider-queue entry of `id` if the stored workflow is not RUNNING (or does not
    /// exist): a stale entry. Reply: [`Reply::Moved`] (`true`: removed).
    DropIfNotRunning {
        /// The workflow.
        id: &'a WorkflowId,
    },
    /// When `id` is due in the decider queue, hidden or not. Reply: [`Reply::Due`].
    DeciderDue {
        /// The workflow.
        id: &'a WorkflowId,
    },
    /// Leases the oldest visible entry of the task queue `reference_name`: it stays queued,
    /// hidden until `now_ms + visibility_ms`. Reply: [`Reply::Task`].
    PollTask {
        /// The queue.
        reference_name: &'a str,
        /// The caller's time.
        now_ms: u64,
        /// How long the entry stays hidden.
        visibility_ms: u64,
    },
    /// Removes a task-queue entry (a stale one: its attempt started or ended). Reply:
    /// [`Reply::Moved`].
    DropTask {
        /// The workflow the attempt belongs to.
        workflow: &'a WorkflowId,
        /// The attempt.
        task: &'a TaskId,
    },
    /// Claims up to `max` outbox entries visible at `now_ms`, oldest first, hidden until
    /// `now_ms + claim_ms`. Reply: [`Reply::Outbox`].
    TakeOutbox {
        /// The caller's time.
        now_ms: u64,
        /// How long a claim lasts.
        claim_ms: u64,
        /// At most this many.
        max: usize,
    },
    /// Removes a performed outbox entry. Reply: [`Reply::Moved`].
    AckOutbox {
        /// The entry.
        sequence: u64,
    },
}

impl Call<'_> {
    /// The call's kind.
    pub fn kind(&self) -> CallKind {
        match self {
            Call::Insert { .. } => CallKind::Insert,
            Call::Load { .. } => CallKind::Load,
            Call::Acquire { .. } => CallKind::Acquire,
            Call::Release { .. } => CallKind::Release,
            Call::Commit { .. } => CallKind::Commit,
            Call::PopDecider { .. } => CallKind::PopDecider,
            Call::HandBack { .. } => CallKind::HandBack,
            Call::Requeue { .. } => CallKind::Requeue,
            Call::DropIfNotRunning { .. } => CallKind::DropIfNotRunning,
            Call::DeciderDue { .. } => CallKind::DeciderDue,
            Call::PollTask { .. } => CallKind::PollTask,
            Call::DropTask { .. } => CallKind::DropTask,
            Call::TakeOutbox { .. } => CallKind::TakeOutbox,
            Call::AckOutbox { .. } => CallKind::AckOutbox,
        }
    }
}

/// What a commit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitReply {
    /// It took effect.
    Done(Receipt),
    /// The stored version is not the step's read version: nothing changed (I4). Read again.
    Stale {
        /// The stored version.
        current: u64,
    },
    /// No workflow has this id: nothing changed.
    Unknown,
}

/// A store's answer to a [`Call`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reply {
    /// [`Call::Insert`]: `true` if inserted.
    Inserted(bool),
    /// [`Call::Load`]: the workflow, if it exists.
    Loaded(Option<Arc<Workflow>>),
    /// [`Call::Acquire`]: granted, or the lease that holds it.
    Acquired(Result<Lease, Lease>),
    /// [`Call::Release`]: `true` if the token held the lease.
    Released(bool),
    /// [`Call::Commit`].
    Committed(CommitReply),
    /// [`Call::PopDecider`]: the leased workflow id, if any was due.
    Popped(Option<WorkflowId>),
    /// [`Call::HandBack`], [`Call::Requeue`], [`Call::DropIfNotRunning`], [`Call::DropTask`],
    /// [`Call::AckOutbox`]: whether the call changed anything.
    Moved(bool),
    /// [`Call::DeciderDue`].
    Due(Option<u64>),
    /// [`Call::PollTask`]: the leased entry, if any was visible.
    Task(Option<QueuedTask>),
    /// [`Call::TakeOutbox`]: the claimed entries.
    Outbox(Vec<OutboxEntry>),
    /// Not a store's reply: the driver's answer to
    /// [`Next::Perform`](super::op::Next::Perform), whether the effect handler succeeded.
    Performed(bool),
}

/// Why a store call failed. Every variant says whether the call may have taken effect.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum StoreFailure {
    /// The call certainly did not take effect (the request never reached the backend, or the
    /// backend refused it before changing anything): retrying is safe.
    #[error("the call did not happen: {detail}")]
    NotDone {
        /// What the backend said.
        detail: Arc<str>,
    },
    /// The store is unreachable (refused connection): the call did not take effect.
    #[error("the store is unavailable: {detail}")]
    Unavailable {
        /// What the backend said.
        detail: Arc<str>,
    },
    /// The call may or may not have taken effect (the answer to a commit was lost).
    #[error("the call may have happened, its answer was lost: {detail}")]
    Ambiguous {
        /// What the backend said.
        detail: Arc<str>,
    },
}

impl StoreFailure {
    /// A [`StoreFailure::NotDone`] with this detail.
    pub fn not_done(detail: impl Into<Arc<str>>) -> Self {
        StoreFailure::NotDone {
            detail: detail.into(),
        }
    }

    /// A [`StoreFailure::Ambiguous`] with this detail.
    pub fn ambiguous(detail: impl Into<Arc<str>>) -> Self {
        StoreFailure::Ambiguous {
            detail: detail.into(),
        }
    }

    /// A [`StoreFailure::Unavailable`] with this detail.
    pub fn unavailable(detail: impl Into<Arc<str>>) -> Self {
        StoreFailure::Unavailable {
            detail: detail.into(),
        }
    }

    /// Did the call certainly not take effect?
    pub fn certainly_not_done(&self) -> bool {
        match self {
            StoreFailure::NotDone { .. } | StoreFailure::Unavailable { .. } => true,
            StoreFailure::Ambiguous { .. } => false,
        }
    }
}

/// The caller of [`Store::call`] a [`Store::session`] hands its closure.
pub type SessionCall<'a> = dyn FnMut(Call<'_>) -> Result<Reply, StoreFailure> + 'a;

/// Where the runtime keeps its state: a backend that answers the calls of the contract. Each call
/// is atomic. [`InMemoryStore`](super::InMemoryStore) is the embedded default; a reply of the
/// wrong kind for its call is treated by the operations as an ambiguous failure.
pub trait Store: Send + Sync {
    /// Performs one call.
    fn call(&self, call: Call<'_>) -> Result<Reply, StoreFailure>;

    /// Runs `calls`, handing it a caller of [`call`](Store::call). A store may run the calls made
    /// through it as one atomic section (the in-memory store takes its mutex once); the default
    /// runs each on its own. The engine makes through one session only consecutive calls of one
    /// operation with no user code between them (no decider, no effect handler), so a session
    /// is one of the interleavings the model checks, in which nothing else ran between those
    /// calls: it changes the speed, never the outcome.
    fn session(&self, calls: &mut dyn FnMut(&mut SessionCall<'_>)) {
        calls(&mut |call| self.call(call));
    }
}

impl<S: Store + ?Sized> Store for &S {
    fn call(&self, call: Call<'_>) -> Result<Reply, StoreFailure> {
        (**self).call(call)
    }

    fn session(&self, calls: &mut dyn FnMut(&mut SessionCall<'_>)) {
        (**self).session(calls);
    }
}

impl<S: Store + ?Sized> Store for Arc<S> {
    fn call(&self, call: Call<'_>) -> Result<Reply, StoreFailure> {
        (**self).call(call)
    }

    fn session(&self, calls: &mut dyn FnMut(&mut SessionCall<'_>)) {
        (**self).session(calls);
    }
}
