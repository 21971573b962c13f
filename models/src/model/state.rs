//! The model's state: the runtime's own pure store state, every actor's operation machine (the
//! runtime's, or a legacy alternative), the network, budgets and ghost history. Small
//! `Clone + Hash + Eq` values only, as stateright wants.

use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wfstate::runtime::{AdminOp, LeaseToken, OutboxOp, PollOp, ReportOp, StoreState, SweepOp};
use wfstate::{Invariant, ReportStatus, TaskStatus, Workflow, WorkflowId, WorkflowStatus};

use super::legacy::{
    LegacyDecide, LegacyPoll, LegacyReport, LegacyReportDecide, LegacySweep, LegacyTerminate,
    LegacyTimeOut,
};

/// The one workflow every configuration runs.
pub const WORKFLOW: &str = "wf";

/// The model's logical time: every operation runs at it; time passing beyond a lease or a hiding
/// timeout is the environment's `Tick` and `Expire` actions.
pub const NOW_MS: u64 = 0;

/// A sweeper's current operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SweeperOp {
    /// The runtime's sweep.
    Fixed(SweepOp),
    /// D3's sweep.
    Legacy(LegacySweep),
    /// Conductor's sweep-and-decide with task rows (E2, E3, E4, E10).
    Decide(LegacyDecide),
}

/// One sweeper: it loops sweep operations.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sweeper {
    /// The operation in progress.
    pub op: Option<SweeperOp>,
    /// Lock misses left (a miss hands the id back).
    pub misses_left: u8,
}

/// The operator's current operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(clippy::large_enum_variant)] // One per state; boxing would cost an allocation a step.
pub enum OperatorOp {
    /// The runtime's admin operation (terminate, pause, resume, retry, or a task time-out).
    Fixed(AdminOp),
    /// D1's terminate.
    Legacy(LegacyTerminate),
    /// E8's blind task time-out.
    TimeOut(LegacyTimeOut),
}

/// The operator: runs the configuration's admin script in order, and task time-outs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Operator {
    /// Script position: the next admin input to send.
    pub next: u8,
    /// The operation in progress.
    pub op: Option<OperatorOp>,
}

/// A worker: polls its task's queue through the runtime's poll, then works what it got.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Worker {
    /// The poll in progress.
    pub poll: Option<WorkerPoll>,
    /// The retry count of the attempt it polled and has not worked yet.
    pub holding: Option<u32>,
    /// The retry count of the last attempt it worked.
    pub worked: Option<u32>,
}

/// A worker's poll in progress.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(clippy::large_enum_variant)] // One per worker; boxing would cost an allocation a step.
pub enum WorkerPoll {
    /// The runtime's poll.
    Fixed(PollOp<'static>),
    /// E7's blind poll.
    Legacy(LegacyPoll),
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
}

/// A report being handled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(clippy::large_enum_variant)] // Few per state; boxing would cost an allocation a step.
pub enum ReportRun {
    /// The runtime's report, with the message it handles (redelivered if it fails).
    Fixed(ReportOp, Message),
    /// D2's blind report.
    Legacy(LegacyReport, Message),
    /// E1's report that decides afterwards, and can miss the lock.
    Decide(LegacyReportDecide, Message),
}

impl ReportRun {
    /// The message handled.
    pub fn message(&self) -> &Message {
        match self {
            ReportRun::Fixed(_, message)
            | ReportRun::Legacy(_, message)
            | ReportRun::Decide(_, message) => message,
        }
    }

    /// The lease token of a report that decides (E1, E5), whatever its state.
    pub fn token(&self) -> Option<LeaseToken> {
        match self {
            ReportRun::Decide(op, _) => Some(op.token()),
            ReportRun::Fixed(..) | ReportRun::Legacy(..) => None,
        }
    }

    /// The lease token of a report that decides, once it committed: its decide is in flight.
    pub fn deciding(&self) -> Option<LeaseToken> {
        match self {
            ReportRun::Decide(op, _) if op.deciding() => Some(op.token()),
            ReportRun::Fixed(..) | ReportRun::Legacy(..) | ReportRun::Decide(..) => None,
        }
    }
}

/// A commit of the call-by-call store path, half done: the compare-and-swap and the outbox are
/// written, the queue plan is not yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PendingPlan {
    /// The actor that committed (its operation waits for the reply).
    pub actor: ActorId,
    /// The plan still to apply.
    pub plan: wfstate::runtime::QueuePlan,
    /// The committed status.
    pub status: WorkflowStatus,
    /// The reply the store will give when the plan is applied.
    pub reply: Result<wfstate::runtime::Reply, wfstate::runtime::StoreFailure>,
    /// A report whose commit this is, parked until then.
    pub parked: Option<Shared<ReportRun>>,
}

/// Who is acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorId {
    /// Sweeper `i`.
    Sweeper(u8),
    /// The operator.
    Operator,
    /// The worker of definition task `i`.
    Worker(u8),
    /// In-flight report number `i`.
    Report(u8),
    /// The outbox runner.
    Outbox,
}

/// A part of the state that successors share until one changes it: cloning it is a reference
/// count, and its hash is computed once (on first use) and kept, so a successor hashes only the
/// parts its action changed. Reading goes through `Deref`; `DerefMut` copies a shared part first
/// and forgets its hash. Equal contents, equal hashes, as `Hash` and `Eq` require.
///
/// A part is shared only among states of the checker thread that made it: cloned on another
/// thread (stateright hands pending states to an idle thread), it is copied, with everything in
/// it that is reference-counted ([`Detach`]), so the two threads' states never count references
/// on the same part. Shared between threads, a part that few steps change (the budgets, the
/// store's outbox) was counted up and down by both on nearly every step, its cache line passed
/// between the cores: `admin` on 2 threads took 1.48 s (2.48 s of CPU), 1.34 s (2.24 s) with
/// this (docs/performance.md).
pub struct Shared<T>(Arc<Inner<T>>);

struct Inner<T> {
    value: T,
    /// Its hash, once computed.
    hash: HashCell,
    /// The [`thread_number`] of the thread that made it.
    thread: u32,
}

/// This thread's number, from 1, fixed for the thread's life: the owner of the [`Shared`] parts
/// it makes.
fn thread_number() -> u32 {
    use std::cell::Cell;
    use std::sync::atomic::AtomicU32;
    static NEXT: AtomicU32 = AtomicU32::new(1);
    thread_local! {
        static NUMBER: Cell<u32> = const { Cell::new(0) };
    }
    NUMBER.with(|number| match number.get() {
        0 => {
            let fresh = NEXT.fetch_add(1, Ordering::Relaxed);
            number.set(fresh);
            fresh
        }
        known => known,
    })
}

/// A value that can be copied sharing no reference-counted part with the original (see
/// [`Shared`]). Most parts hold only plain values and ids (inline in the model), so their copy
/// is their clone.
pub trait Detach: Clone {
    /// The copy.
    fn detached(&self) -> Self {
        self.clone()
    }
}

/// Shows the value only (whether its hash is cached yet, and which thread made it, are not part
/// of the state).
impl<T: std::fmt::Debug> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.value.fmt(f)
    }
}

impl<T: Detach> Clone for Shared<T> {
    fn clone(&self) -> Self {
        self.clone_on(thread_number())
    }
}

impl<T: Detach> Shared<T> {
    /// The clone on thread `thread` (this thread's [`thread_number`], read once by a caller that
    /// clones several parts).
    fn clone_on(&self, thread: u32) -> Self {
        if self.0.thread == thread {
            Shared(Arc::clone(&self.0))
        } else {
            Shared(Arc::new(Inner {
                value: self.0.value.detached(),
                hash: self.0.hash.clone(),
                thread,
            }))
        }
    }
}

impl<T: Clone> Clone for Inner<T> {
    fn clone(&self) -> Self {
        Inner {
            value: self.value.clone(),
            hash: HashCell::default(),
            thread: thread_number(),
        }
    }
}

/// A part's hash once computed; 0 until then (a computed 0 is stored as 1). Threads that race
/// to compute it compute the same value.
#[derive(Debug, Default)]
struct HashCell(AtomicU64);

impl Clone for HashCell {
    fn clone(&self) -> Self {
        HashCell(AtomicU64::new(self.0.load(Ordering::Relaxed)))
    }
}

impl<T> Shared<T> {
    /// A part holding `value`.
    pub fn new(value: T) -> Self {
        Shared(Arc::new(Inner {
            value,
            hash: HashCell::default(),
            thread: thread_number(),
        }))
    }

    /// Do `a` and `b` share one value (neither was changed since one was cloned from the other)?
    pub fn same(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T: Clone> DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        let inner = Arc::make_mut(&mut self.0);
        inner.hash = HashCell::default();
        &mut inner.value
    }
}

/// The store's own parts are shared between copies too: copied as well.
impl Detach for StoreState {
    fn detached(&self) -> Self {
        self.unshared()
    }
}

// The clone of a `Shared` copies it when it crosses threads.
impl<T: Detach> Detach for Shared<T> {}
impl<T: Clone> Detach for Vec<T> {}
impl<T: Clone> Detach for Option<T> {}
impl Detach for Sweeper {}
impl Detach for Operator {}
impl Detach for Worker {}
impl Detach for ReportRun {}
impl Detach for Message {}
impl Detach for PendingPlan {}
impl Detach for Budgets {}

impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.value == other.0.value
    }
}

impl<T: Eq> Eq for Shared<T> {}

impl<T: Hash> Hash for Shared<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let cell = &self.0.hash.0;
        let mut summary = cell.load(Ordering::Relaxed);
        if summary == 0 {
            let mut hasher = PartHasher::default();
            self.0.value.hash(&mut hasher);
            summary = hasher.finish().max(1);
            cell.store(summary, Ordering::Relaxed);
        }
        state.write_u64(summary);
    }
}

/// The summary hash of a [`Shared`] part: each written word is folded in with a 64×64→128-bit
/// multiply (the mixing step of wyhash and aHash's fallback), so every input bit reaches every
/// output bit. Fixed keys: the same contents give the same summary in every thread and run.
#[derive(Debug)]
struct PartHasher {
    hash: u64,
}

impl Default for PartHasher {
    fn default() -> Self {
        PartHasher {
            hash: 0x243f_6a88_85a3_08d3,
        }
    }
}

impl PartHasher {
    const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

    fn fold(&mut self, word: u64) {
        let product = u128::from(self.hash ^ word) * u128::from(Self::MULTIPLIER);
        self.hash = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for PartHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.fold(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        let mut word = [0; 8];
        word[..rest.len()].copy_from_slice(rest);
        // The length tells "ab" from "ab\0".
        self.fold(u64::from_le_bytes(word) ^ ((bytes.len() as u64) << 56));
    }

    fn write_u8(&mut self, value: u8) {
        self.fold(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.fold(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.fold(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.fold(value as u64);
    }

    fn finish(&self) -> u64 {
        let product = u128::from(self.hash) * u128::from(0x082e_fa98_ec4e_6c89_u64);
        (product as u64) ^ ((product >> 64) as u64)
    }
}

/// The whole model state. Every part but the ghost is [`Shared`] between a state and its
/// successors until a step changes it (most steps change one actor and the ghost; about two
/// steps in three leave the store as it was).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The store: the runtime's own pure state.
    pub store: Shared<StoreState>,
    /// Sweepers, each shared on its own: a step of one copies only that one's operation.
    pub sweepers: Shared<Vec<Shared<Sweeper>>>,
    /// The operator.
    pub operator: Shared<Operator>,
    /// Workers, one per definition task.
    pub workers: Shared<Vec<Worker>>,
    /// Reports being handled, in delivery order, each shared on its own.
    pub reports: Shared<Vec<Shared<ReportRun>>>,
    /// Reports not yet delivered, sorted (a multiset).
    pub network: Shared<Vec<Message>>,
    /// The outbox runner's pass in progress.
    pub outbox: Shared<Option<OutboxOp>>,
    /// Call-by-call store path: commits whose queue plans are still to apply.
    pub pending: Shared<Vec<PendingPlan>>,
    /// Budgets left.
    pub budgets: Shared<Budgets>,
    /// History the properties need.
    pub ghost: Ghost,
}

/// Every part cloned as [`Shared`] clones, with this thread's number read once.
impl Clone for State {
    fn clone(&self) -> Self {
        let thread = thread_number();
        State {
            store: self.store.clone_on(thread),
            sweepers: self.sweepers.clone_on(thread),
            operator: self.operator.clone_on(thread),
            workers: self.workers.clone_on(thread),
            reports: self.reports.clone_on(thread),
            network: self.network.clone_on(thread),
            outbox: self.outbox.clone_on(thread),
            pending: self.pending.clone_on(thread),
            budgets: self.budgets.clone_on(thread),
            ghost: self.ghost,
        }
    }
}

/// What the bounded environment may still do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Budgets {
    /// Report duplications left, per task.
    pub duplicates: Vec<u8>,
    /// Effect-handler failures left.
    pub effect_failures: u8,
    /// Lease expiries left.
    pub lease_expiries: u8,
    /// Task time-outs the operator may still send.
    pub task_timeouts: u8,
    /// Store-call failures left.
    pub store_failures: u8,
    /// Ticks (time passing beyond hiding leases) left while other actions are enabled; when
    /// nothing else is enabled, time may always pass.
    pub ticks: u8,
    /// E9: the starter's unlocked decide, still to run (0 or 1; always 0 but in that variant).
    pub starter: u8,
    /// Unsuccessful outcomes the workers may still report (when the configuration limits them).
    pub worker_failures: u8,
}

/// A set of invariant ids, one bit each: copied, not allocated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct InvariantSet(u16);

impl InvariantSet {
    fn bit(invariant: Invariant) -> u16 {
        1 << invariant as u16
    }

    /// Is `invariant` in the set?
    pub fn contains(&self, invariant: Invariant) -> bool {
        self.0 & Self::bit(invariant) != 0
    }

    /// Adds `invariant`.
    pub fn insert(&mut self, invariant: Invariant) {
        self.0 |= Self::bit(invariant);
    }
}

/// Ghost history: not part of the system, only of what the properties need to see. A few words,
/// held in the state itself (not shared): most commits change it, and copying it costs less
/// than a shared part's reference count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// Every write to the stored workflow (the version must equal it: I4).
    pub commits: u64,
    /// Pair invariants (I3, I5) some write broke.
    pub broken: InvariantSet,
    /// Some lease expired (I6b is only promised before that).
    pub lease_expired: bool,
    /// The last task edge a committed step took (edge coverage).
    pub last_edge: Option<(TaskStatus, TaskStatus)>,
    /// Terminate committed while a report was in flight, or one of an attempt still live was in
    /// the network.
    pub terminated_with_report_in_flight: bool,
    /// An effect handler failed at least once.
    pub effect_failed: bool,
    /// An effect was performed after a failure.
    pub effect_retried: bool,
    /// A compare-and-swap was refused because the version had moved.
    pub stale_write_rejected: bool,
    /// A decider proposed an input the transition function rejected.
    pub decision_rejected: bool,
    /// A store call failed.
    pub store_failed: bool,
    /// A commit took effect but its reply was lost.
    pub ambiguous_commit: bool,
    /// An operation finished while still holding a lease it took, though its release did not
    /// fail.
    pub finished_holding_lease: bool,
    /// Archiving was performed (or, legacy, attempted inline).
    pub archived: bool,
    /// An operation said it was done but gave no output, or an outcome it cannot have.
    pub lost_output: bool,
    /// The workflow was paused at some point.
    pub paused: bool,
    /// A retry brought the workflow back to RUNNING.
    pub retried: bool,
}

/// The one workflow's id, built once (the properties read the workflow in every state).
static WORKFLOW_ID: std::sync::LazyLock<WorkflowId> =
    std::sync::LazyLock::new(|| WorkflowId::new(WORKFLOW));

impl State {
    /// The workflow's id.
    pub fn id() -> &'static WorkflowId {
        &WORKFLOW_ID
    }

    /// The stored workflow. The model starts exactly one, in the initial state: a store that
    /// loses it is a bug of the store, and the check stops on it. (That the store's counting and
    /// listing accessors agree with its contents is the property "store views agree", which
    /// also holds the lookup by id to this one.) Listed rather than looked up: the properties read
    /// it many times a state, and a one-entry map lists it without hashing the id.
    pub fn workflow(&self) -> &Arc<Workflow> {
        self.store
            .workflows()
            .next()
            .expect("the model starts its one workflow in the initial state")
    }

    /// Do the store's counting and listing accessors (what tests and operators read) agree with
    /// its contents? One workflow, a decider queue of at most its one entry, a lease list holding
    /// exactly its lease record, an outbox length that counts the owed effects.
    pub fn store_views_agree(&self) -> bool {
        let store = &self.store;
        let listed = store.workflows().next().map(|workflow| workflow.id());
        let queued = store.decider_due(&WORKFLOW_ID).is_some();
        let lease = store.lease(&WORKFLOW_ID);
        let mut leases = store.leases();
        let lease_listed = leases.next() == lease.as_ref().map(|lease| (&*WORKFLOW_ID, lease));
        let found = store.workflow(&WORKFLOW_ID);
        store.workflow_count() == 1
            && store.workflows().count() == 1
            && listed == Some(&*WORKFLOW_ID)
            && found.is_some_and(|found| Arc::ptr_eq(found, self.workflow()))
            && store.decider_len() == usize::from(queued)
            && lease_listed
            && leases.next().is_none()
            && store.owed().count() == store.outbox_len()
    }

    /// Its status.
    pub fn status(&self) -> WorkflowStatus {
        self.workflow().status()
    }

    /// Is the workflow in the decider queue (hidden or not)?
    pub fn queued(&self) -> bool {
        self.store.decider_due(State::id()).is_some()
    }

    /// Is any operation on the workflow in flight? A sweep from taking the id until it released
    /// the lock; an operator's operation from taking the lock until it released it (SPEC I6a).
    /// The legacy sweeper's queue operation after unlocking is outside its operation: that is the
    /// D3 defect. A call-by-call commit whose plan is pending is in flight too.
    pub fn in_flight(&self) -> bool {
        let sweeping = self.sweepers.iter().any(|sweeper| match &sweeper.op {
            None => false,
            Some(SweeperOp::Fixed(_)) => true,
            Some(SweeperOp::Legacy(op)) => op.in_flight(),
            Some(SweeperOp::Decide(_)) => true,
        });
        sweeping
            || self.operator.op.is_some()
            || !self.pending.is_empty()
            || self.budgets.starter > 0
            || self.reports.iter().any(|run| run.deciding().is_some())
    }
}

/// The lease token of sweeper `index`.
pub fn sweeper_token(index: usize) -> LeaseToken {
    LeaseToken::new(1, index as u64)
}

/// The lease token of the operator.
pub fn operator_token() -> LeaseToken {
    LeaseToken::new(2, 0)
}

/// The lease token of the runtime inspect the property "inspect agrees" runs (no actor's).
pub fn inspect_token() -> LeaseToken {
    LeaseToken::new(3, 0)
}

/// The lease token of a deciding report (E1, E5); `serial` names its attempt and copy.
pub fn report_decide_token(serial: u64) -> LeaseToken {
    LeaseToken::new(4, serial)
}

/// The lease token of sweeper `index`'s inner decide (E6): another holder, to a lock that is not
/// reentrant.
pub fn inner_decide_token(index: usize) -> LeaseToken {
    LeaseToken::new(5, index as u64)
}
