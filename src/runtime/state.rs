//! The pure store state (issue 10): workflows, the decider queue, task queues, the outbox and
//! the leases as one `Clone + Eq + Hash` value, and [`StoreState::execute`], the reference
//! semantics of every call of the store contract. [`InMemoryStore`](super::InMemoryStore) wraps
//! it behind a mutex; the stateright model holds it directly, so the model's store is the
//! runtime's own.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::contract::{
    Call, CommitReply, DeciderPlan, Lease, LeaseToken, OutboxEntry, QueuePlan, QueuedTask, Receipt,
    Reply,
};
use super::hash::{KeyHasher, Map};
use crate::{Phase, ReferenceName, Step, TaskId, Workflow, WorkflowId, WorkflowStatus};

/// A task-queue entry's key: the attempt within its workflow. Task ids are the engine's to
/// choose and need not be unique across workflows (two workflows of one definition may well
/// name their attempts alike), so the queues key them by workflow too.
type TaskKey = (WorkflowId, TaskId);

/// One entry of a leased queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Slot {
    due_ms: u64,
    sequence: u64,
    holder: Option<LeaseToken>,
}

/// A set of keys with due times, popped by leasing: a popped key stays, hidden until its lease
/// runs out (Conductor's unack timeout), so a consumer that dies loses nothing. Ordered by (due
/// time, sequence): keys due together come out in the order they were (re)queued.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LeasedQueue<K: Ord + Hash + Eq + Clone> {
    slots: Map<K, Slot>,
    order: BTreeMap<(u64, u64), K>,
    next_sequence: u64,
}

impl<K: Ord + Hash + Eq + Clone> Default for LeasedQueue<K> {
    fn default() -> Self {
        LeasedQueue {
            slots: Map::default(),
            order: BTreeMap::new(),
            next_sequence: 0,
        }
    }
}

impl<K: Ord + Hash + Eq + Clone> LeasedQueue<K> {
    fn place(&mut self, key: &K, due_ms: u64, holder: Option<LeaseToken>) {
        self.next_sequence += 1;
        let slot = Slot {
            due_ms,
            sequence: self.next_sequence,
            holder,
        };
        if let Some(old) = self.slots.insert(key.clone(), slot) {
            self.order.remove(&(old.due_ms, old.sequence));
        }
        self.order.insert((due_ms, slot.sequence), key.clone());
    }

    /// Enters (or moves) `key`, due at `due_ms`, unleased.
    fn push(&mut self, key: &K, due_ms: u64) {
        self.place(key, due_ms, None);
    }

    /// Is `key` queued?
    fn contains(&self, key: &K) -> bool {
        self.slots.contains_key(key)
    }

    /// Did `token` lease `key`, with nothing moving it since?
    fn held_by(&self, key: &K, token: LeaseToken) -> bool {
        self.slots
            .get(key)
            .is_some_and(|slot| slot.holder == Some(token))
    }

    /// The first key due at `now_ms`: the one a pop would lease.
    fn first_due(&self, now_ms: u64) -> Option<&K> {
        let (&(due_ms, _), key) = self.order.first_key_value()?;
        (due_ms <= now_ms).then_some(key)
    }

    /// Leases the first key due at `now_ms`, hidden until `now_ms + hide_ms`.
    fn pop(&mut self, now_ms: u64, hide_ms: u64, holder: Option<LeaseToken>) -> Option<K> {
        let key = self.first_due(now_ms)?.clone();
        self.place(&key, now_ms.saturating_add(hide_ms), holder);
        Some(key)
    }

    fn remove(&mut self, key: &K) -> bool {
        match self.slots.remove(key) {
            Some(old) => {
                self.order.remove(&(old.due_ms, old.sequence));
                true
            }
            None => false,
        }
    }

    fn due(&self, key: &K) -> Option<u64> {
        self.slots.get(key).map(|slot| slot.due_ms)
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    /// Is an entry due later than `now_ms` (hidden)?
    fn has_hidden(&self, now_ms: u64) -> bool {
        self.order
            .range((now_ms.saturating_add(1), 0)..)
            .next()
            .is_some()
    }

    /// Every entry due later than `now_ms` becomes due at `now_ms` (time passes beyond every
    /// hiding lease), in queue order.
    fn reveal(&mut self, now_ms: u64) {
        let hidden: Vec<K> = self
            .order
            .range((now_ms.saturating_add(1), 0)..)
            .map(|(_, key)| key.clone())
            .collect();
        for key in hidden {
            self.place(&key, now_ms, None);
        }
    }

    /// Does a token `pick` picks hold an entry?
    fn holds_any(&self, pick: impl Fn(LeaseToken) -> bool) -> bool {
        self.slots
            .values()
            .any(|slot| slot.holder.is_some_and(&pick))
    }

    /// Every entry's holder renamed by `rename`.
    fn rename_holders(&mut self, rename: impl Fn(LeaseToken) -> LeaseToken) {
        for slot in self.slots.values_mut() {
            slot.holder = slot.holder.map(&rename);
        }
    }

    /// Are the sequence numbers 1, 2, ... in queue order already?
    fn is_canonical(&self) -> bool {
        let mut numbered = (1..).zip(self.order.keys());
        self.next_sequence == self.order.len() as u64
            && numbered.all(|(number, &(_, sequence))| sequence == number)
    }

    /// Sequence numbers renumbered 1, 2, ... in queue order: equal contents, equal values.
    fn canonicalize(&mut self) {
        const INLINE: usize = 8;
        let len = self.order.len();
        if self.is_canonical() {
            return;
        }
        // Renumbering keeps the order, so the entries go back in the order they came out. A
        // few are taken out onto the stack, which keeps the map's node (no allocation).
        let mut few: [Option<((u64, u64), K)>; INLINE] = std::array::from_fn(|_| None);
        let mut many = BTreeMap::new();
        if len <= INLINE {
            few = std::array::from_fn(|_| self.order.pop_first());
        } else {
            many = std::mem::take(&mut self.order);
        }
        let entries = few.into_iter().flatten().chain(many);
        for (number, ((due_ms, _), key)) in (1..).zip(entries) {
            if let Some(slot) = self.slots.get_mut(&key) {
                slot.sequence = number;
            }
            self.order.insert((due_ms, number), key);
        }
        self.next_sequence = len as u64;
    }
}

impl<K: Ord + Hash + Eq + Clone> Hash for LeasedQueue<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // `order` is sorted; each key's slot follows its key, so the map needs no sorting.
        self.order.len().hash(state);
        for (key_order, key) in &self.order {
            key_order.hash(state);
            key.hash(state);
            self.slots.get(key).map(|slot| slot.holder).hash(state);
        }
        self.next_sequence.hash(state);
    }
}

/// One owed effect in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Owed {
    workflow: WorkflowId,
    version: u64,
    effect: crate::Effect,
    attempts: u32,
    visible_at_ms: u64,
}

/// The hash of one part of the store, kept until the part changes: 0 until computed. Not part of
/// the store's value: `Eq` ignores it, copies share it (same contents, same hash). The model
/// hashes the store after every step that writes it, and most steps write one part (a pop, a
/// lease, a poll): the other parts' hashes, the workflows' the costliest, are not computed
/// again. The runtime never hashes a store; its only cost there is resetting it on a write.
#[derive(Debug, Default)]
struct HashMemo(AtomicU64);

impl HashMemo {
    /// The kept hash, or `compute`'s, kept.
    fn get_or(&self, compute: impl FnOnce() -> u64) -> u64 {
        match self.0.load(Ordering::Relaxed) {
            0 => {
                let hash = compute().max(1);
                self.0.store(hash, Ordering::Relaxed);
                hash
            }
            hash => hash,
        }
    }

    /// The part changed (through `&mut`: no atomic instruction).
    fn reset(&mut self) {
        *self.0.get_mut() = 0;
    }
}

impl Clone for HashMemo {
    fn clone(&self) -> Self {
        HashMemo(AtomicU64::new(self.0.load(Ordering::Relaxed)))
    }
}

/// A part of the store that copies of the store share until one of them writes it: cloning the
/// store copies reference counts, and a write copies only the part it changes (the model's
/// successors share their parent's store, and most steps write one part: a lease, a queue).
/// Reading goes through `Deref`; writing through [`edit`](Part::edit), which callers reach
/// only once they know the call changes something, so a call that changes nothing copies
/// nothing. The runtime's store is never shared: `edit` finds it unique and copies nothing.
/// Each part keeps its hash ([`HashMemo`]) with its contents, so copies that share a part share
/// its hash, and `edit` forgets it.
#[derive(Debug, Default)]
struct Part<T>(Arc<(T, HashMemo)>);

impl<T: Clone> Part<T> {
    /// The part, to change: copied first if another store shares it; its kept hash is reset.
    fn edit(&mut self) -> &mut T {
        let (value, memo) = Arc::make_mut(&mut self.0);
        memo.reset();
        value
    }
}

impl<T> Part<T> {
    /// The part's hash with a fixed seed, by `hash`: kept from an earlier call while the part
    /// is unchanged.
    fn hash_kept(&self, hash: impl Fn(&T, &mut KeyHasher)) -> u64 {
        let compute = || {
            let mut hasher = KeyHasher::fixed();
            hash(&self.0 .0, &mut hasher);
            hasher.finish()
        };
        let kept = self.0 .1.get_or(compute);
        // A write that forgot to reset the memo would merge states in the model that differ.
        debug_assert_eq!(kept, compute().max(1), "stale hash of a store part");
        kept
    }
}

impl<T: Clone> Part<T> {
    /// A copy of the contents in a part of its own, with the kept hash.
    fn unshared(&self) -> Self {
        Part(Arc::new((self.0 .0.clone(), self.0 .1.clone())))
    }
}

impl<T> Clone for Part<T> {
    fn clone(&self) -> Self {
        Part(Arc::clone(&self.0))
    }
}

impl<T> std::ops::Deref for Part<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0 .0
    }
}

impl<T: PartialEq> PartialEq for Part<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 .0 == other.0 .0
    }
}

impl<T: Eq> Eq for Part<T> {}

/// The whole store as one value. `Eq` and `Hash` cover the contents;
/// [`canonicalize`](StoreState::canonicalize) renumbers internal counters so that states that
/// behave alike are equal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreState {
    workflows: Part<Map<WorkflowId, Arc<Workflow>>>,
    leases: Part<Map<WorkflowId, Lease>>,
    decider: Part<LeasedQueue<WorkflowId>>,
    task_queues: Part<Map<ReferenceName, LeasedQueue<TaskKey>>>,
    queued_tasks: Part<Map<TaskKey, QueuedTask>>,
    outbox: Part<BTreeMap<u64, Owed>>,
    next_outbox: u64,
}

impl Hash for StoreState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.workflows.hash_kept(hash_sorted));
        state.write_u64(self.leases.hash_kept(hash_sorted));
        state.write_u64(self.decider.hash_kept(LeasedQueue::hash));
        state.write_u64(self.task_queues.hash_kept(hash_sorted));
        state.write_u64(self.outbox.hash_kept(BTreeMap::hash));
        self.next_outbox.hash(state);
        // `queued_tasks` last: it follows from the task queues' keys and the pushes that made them.
        state.write_u64(self.queued_tasks.hash_kept(hash_sorted));
    }
}

/// Hashes a map's entries in key order. Small maps (the model's hold one workflow and a few
/// attempts) are sorted on the stack: hashing a state allocates nothing.
fn hash_sorted<K: Ord + Hash, V: Hash, H: Hasher>(map: &Map<K, V>, state: &mut H) {
    const INLINE: usize = 8;
    map.len().hash(state);
    let Some(first) = map.iter().next() else {
        return;
    };
    let mut inline = [first; INLINE];
    let mut heap = Vec::new();
    let entries: &mut [(&K, &V)] = if map.len() <= INLINE {
        for (slot, entry) in inline.iter_mut().zip(map.iter()) {
            *slot = entry;
        }
        &mut inline[..map.len()]
    } else {
        heap.extend(map.iter());
        &mut heap
    };
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (key, value) in entries {
        key.hash(state);
        value.hash(state);
    }
}

impl StoreState {
    /// An empty store.
    /// A copy that shares none of its parts with this store (a clone shares them all until one
    /// side writes). For a model checker whose threads each keep their own copies, so that two
    /// threads do not count references on the same parts; the runtime never needs it.
    pub fn unshared(&self) -> Self {
        StoreState {
            workflows: self.workflows.unshared(),
            leases: self.leases.unshared(),
            decider: self.decider.unshared(),
            task_queues: self.task_queues.unshared(),
            queued_tasks: self.queued_tasks.unshared(),
            outbox: self.outbox.unshared(),
            next_outbox: self.next_outbox,
        }
    }

    /// An empty store.
    pub fn new() -> Self {
        StoreState::default()
    }

    /// Performs one call of the store contract. Total: every call has a reply, none fails (an
    /// in-memory store has no backend to lose).
    pub fn execute(&mut self, call: Call<'_>) -> Reply {
        match call {
            // The same answers as `query`, without a second dispatch on every call.
            Call::Load { id } => Reply::Loaded(self.workflows.get(id).cloned()),
            Call::DeciderDue { id } => Reply::Due(self.decider.due(id)),
            Call::Insert { workflow, now_ms } => Reply::Inserted(self.insert(workflow, now_ms)),
            Call::Acquire {
                id,
                token,
                lease_ms,
                now_ms,
            } => Reply::Acquired(self.acquire(id, token, lease_ms, now_ms)),
            Call::Release { id, token } => Reply::Released(self.release(id, token)),
            Call::Commit {
                id,
                step,
                plan,
                now_ms,
            } => Reply::Committed(self.commit(id, step, plan, now_ms)),
            Call::PopDecider {
                token,
                now_ms,
                unack_ms,
            } => Reply::Popped(match self.decider.first_due(now_ms) {
                Some(_) => self.decider.edit().pop(now_ms, unack_ms, Some(token)),
                None => None,
            }),
            Call::HandBack { id, token, due_ms } => {
                let held = self.decider.held_by(id, token);
                if held {
                    self.decider.edit().push(id, due_ms);
                }
                Reply::Moved(held)
            }
            Call::Requeue { id, due_ms } => Reply::Moved(self.requeue(id, due_ms)),
            Call::DropIfNotRunning { id } => {
                let running = self
                    .workflows
                    .get(id)
                    .is_some_and(|workflow| workflow.status() == WorkflowStatus::Running);
                Reply::Moved(!running && self.remove_from_decider(id))
            }
            Call::PollTask {
                reference_name,
                now_ms,
                visibility_ms,
            } => Reply::Task(self.poll_task(reference_name, now_ms, visibility_ms)),
            Call::DropTask { workflow, task } => Reply::Moved(self.remove_task(workflow, task)),
            Call::TakeOutbox {
                now_ms,
                claim_ms,
                max,
            } => Reply::Outbox(self.take_outbox(now_ms, claim_ms, max)),
            Call::AckOutbox { sequence } => Reply::Moved(
                self.outbox.contains_key(&sequence)
                    && self.outbox.edit().remove(&sequence).is_some(),
            ),
        }
    }

    /// The reply to a call that changes nothing (`load`, `decider_due`), from a shared
    /// reference, as [`execute`](StoreState::execute) gives it; `None` for every other call. A
    /// holder of a shared store state (the model's successors share theirs) answers these
    /// without copying it.
    pub fn query(&self, call: &Call<'_>) -> Option<Reply> {
        match *call {
            Call::Load { id } => Some(Reply::Loaded(self.workflows.get(id).cloned())),
            Call::DeciderDue { id } => Some(Reply::Due(self.decider.due(id))),
            _ => None,
        }
    }

    fn insert(&mut self, workflow: &Workflow, now_ms: u64) -> bool {
        if self.workflows.contains_key(workflow.id()) {
            return false;
        }
        let id = workflow.id().clone();
        if workflow.status() == WorkflowStatus::Running {
            self.decider.edit().push(&id, now_ms);
        }
        // A loaded workflow may hold SCHEDULED attempts: each waits in its task queue.
        for task in workflow.tasks() {
            if task.status == crate::TaskStatus::Scheduled {
                let queued = QueuedTask {
                    workflow: id.clone(),
                    task: task.id.clone(),
                    reference_name: task.reference_name.clone(),
                };
                self.push_task(&queued, now_ms);
            }
        }
        self.workflows.edit().insert(id, Arc::new(workflow.clone()));
        true
    }

    fn acquire(
        &mut self,
        id: &WorkflowId,
        token: LeaseToken,
        lease_ms: u64,
        now_ms: u64,
    ) -> Result<Lease, Lease> {
        let granted = Lease::granted(token, now_ms, lease_ms);
        match self.leases.get(id) {
            Some(current) if current.holder != token && current.is_valid_at(now_ms) => {
                Err(*current)
            }
            Some(current) if *current == granted => Ok(granted),
            _ => {
                self.leases.edit().insert(id.clone(), granted);
                Ok(granted)
            }
        }
    }

    fn release(&mut self, id: &WorkflowId, token: LeaseToken) -> bool {
        let held = self
            .leases
            .get(id)
            .is_some_and(|lease| lease.holder == token);
        if held {
            self.leases.edit().remove(id);
        }
        held
    }

    fn commit(
        &mut self,
        id: &WorkflowId,
        step: &Step,
        plan: &QueuePlan,
        now_ms: u64,
    ) -> CommitReply {
        let Some(stored) = self.workflows.get(id) else {
            return CommitReply::Unknown;
        };
        // The version first, so a stale step never copies a shared snapshot.
        if stored.version() != step.read_version() || !step.is_applied() {
            return CommitReply::Stale {
                current: stored.version(),
            };
        }
        let Some(slot) = self.workflows.edit().get_mut(id) else {
            return CommitReply::Unknown;
        };
        if Arc::make_mut(slot).apply(step).is_err() {
            // Same version, another state: a step of another workflow (a foreign step).
            return CommitReply::Stale {
                current: slot.version(),
            };
        }
        let receipt = Receipt {
            version: slot.version(),
            status: slot.status(),
        };
        for effect in step.effects_in(Phase::PostCommit) {
            self.next_outbox += 1;
            self.outbox.edit().insert(
                self.next_outbox,
                Owed {
                    workflow: id.clone(),
                    version: receipt.version,
                    effect: effect.clone(),
                    attempts: 0,
                    visible_at_ms: 0,
                },
            );
        }
        self.apply_plan(id, plan, receipt.status, now_ms);
        CommitReply::Done(receipt)
    }

    /// The queue effects of a commit of `id` whose committed status is `status`, in order: the
    /// decider queue, removals, pushes. A commit applies its plan itself; this is for a store
    /// that applies a commit as separate calls (the model's call-by-call path).
    pub fn apply_plan(
        &mut self,
        id: &WorkflowId,
        plan: &QueuePlan,
        status: WorkflowStatus,
        now_ms: u64,
    ) {
        match plan.decider {
            DeciderPlan::Keep => {}
            DeciderPlan::Leave => {
                self.remove_from_decider(id);
            }
            DeciderPlan::Enter => self.push_to_decider(id, now_ms),
            DeciderPlan::Wake if status == WorkflowStatus::Running => {
                self.requeue(id, now_ms);
            }
            DeciderPlan::Wake => {}
        }
        for task in &plan.remove_tasks {
            self.remove_task(id, task);
        }
        for task in &plan.push_tasks {
            self.push_task(task, now_ms);
        }
    }

    fn push_task(&mut self, task: &QueuedTask, now_ms: u64) {
        let key = (task.workflow.clone(), task.task.clone());
        if self.queued_tasks.contains_key(&key) {
            return;
        }
        let queues = self.task_queues.edit();
        match queues.get_mut(&task.reference_name) {
            Some(queue) => queue.push(&key, now_ms),
            None => {
                let mut queue = LeasedQueue::default();
                queue.push(&key, now_ms);
                queues.insert(task.reference_name.clone(), queue);
            }
        }
        self.queued_tasks.edit().insert(key, task.clone());
    }

    fn remove_task(&mut self, workflow: &WorkflowId, task: &TaskId) -> bool {
        let key = (workflow.clone(), task.clone());
        if !self.queued_tasks.contains_key(&key) {
            return false;
        }
        let Some(queued) = self.queued_tasks.edit().remove(&key) else {
            return false;
        };
        if let Some(queue) = self.task_queues.edit().get_mut(&queued.reference_name) {
            // An emptied queue stays (no allocation when its name is pushed again);
            // `canonicalize` drops it.
            queue.remove(&key);
        }
        true
    }

    fn poll_task(
        &mut self,
        reference_name: &str,
        now_ms: u64,
        visibility_ms: u64,
    ) -> Option<QueuedTask> {
        self.task_queues.get(reference_name)?.first_due(now_ms)?;
        let task =
            self.task_queues
                .edit()
                .get_mut(reference_name)?
                .pop(now_ms, visibility_ms, None)?;
        self.queued_tasks.get(&task).cloned()
    }

    fn take_outbox(&mut self, now_ms: u64, claim_ms: u64, max: usize) -> Vec<OutboxEntry> {
        let mut taken = Vec::new();
        if max == 0 || !self.outbox_ready(now_ms) {
            return taken;
        }
        for (&sequence, owed) in self.outbox.edit().iter_mut() {
            if taken.len() >= max {
                break;
            }
            if owed.visible_at_ms > now_ms {
                continue;
            }
            owed.attempts = owed.attempts.saturating_add(1);
            owed.visible_at_ms = now_ms.saturating_add(claim_ms).max(now_ms + 1);
            taken.push(OutboxEntry {
                sequence,
                workflow: owed.workflow.clone(),
                version: owed.version,
                effect: owed.effect.clone(),
                attempts: owed.attempts,
            });
        }
        taken
    }

    /// The stored workflow `id`.
    pub fn workflow(&self, id: &WorkflowId) -> Option<&Arc<Workflow>> {
        self.workflows.get(id)
    }

    /// Every stored workflow, in no particular order.
    pub fn workflows(&self) -> impl Iterator<Item = &Arc<Workflow>> + '_ {
        self.workflows.values()
    }

    /// How many workflows are stored.
    pub fn workflow_count(&self) -> usize {
        self.workflows.len()
    }

    /// When `id` is due in the decider queue (hidden or not), if it is there.
    pub fn decider_due(&self, id: &WorkflowId) -> Option<u64> {
        self.decider.due(id)
    }

    /// Is the entry of `id` leased by a pop that nothing has moved since?
    pub fn decider_holder(&self, id: &WorkflowId) -> Option<LeaseToken> {
        self.decider.slots.get(id).and_then(|slot| slot.holder)
    }

    /// How many workflows the decider queue holds.
    pub fn decider_len(&self) -> usize {
        self.decider.len()
    }

    /// Is the decider-queue entry of `id` visible (due) at `now_ms`?
    pub fn decider_ready(&self, id: &WorkflowId, now_ms: u64) -> bool {
        self.decider.due(id).is_some_and(|due_ms| due_ms <= now_ms)
    }

    /// Does the task queue `reference_name` have an entry visible at `now_ms`?
    pub fn task_ready(&self, reference_name: &str, now_ms: u64) -> bool {
        self.task_queues
            .get(reference_name)
            .and_then(|queue| queue.order.first_key_value())
            .is_some_and(|(&(due_ms, _), _)| due_ms <= now_ms)
    }

    /// Does the outbox have an entry visible at `now_ms`?
    pub fn outbox_ready(&self, now_ms: u64) -> bool {
        self.outbox
            .values()
            .any(|owed| owed.visible_at_ms <= now_ms)
    }

    /// Is attempt `task` of `workflow` waiting in its task queue (hidden or not)?
    pub fn task_queued(&self, workflow: &WorkflowId, task: &TaskId) -> bool {
        self.queued_tasks
            .contains_key(&(workflow.clone(), task.clone()))
    }

    /// How many attempts wait, over all task queues.
    pub fn task_len(&self) -> usize {
        self.queued_tasks.len()
    }

    /// The lease recorded on `id`, valid or expired.
    pub fn lease(&self, id: &WorkflowId) -> Option<Lease> {
        self.leases.get(id).copied()
    }

    /// Every recorded lease.
    pub fn leases(&self) -> impl Iterator<Item = (&WorkflowId, &Lease)> + '_ {
        self.leases.iter()
    }

    /// The effects owed in the outbox, oldest first: (workflow, version, effect).
    pub fn owed(&self) -> impl Iterator<Item = (&WorkflowId, u64, &crate::Effect)> + '_ {
        self.outbox
            .values()
            .map(|owed| (&owed.workflow, owed.version, &owed.effect))
    }

    /// How many effects are owed.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Environment: the lease on `id` expires now (its holder may still run). `false` if there is
    /// none.
    pub fn expire_lease(&mut self, id: &WorkflowId) -> bool {
        if !self.leases.contains_key(id) {
            return false;
        }
        if let Some(lease) = self.leases.edit().get_mut(id) {
            lease.expires_at_ms = 0;
        }
        true
    }

    /// Renames lease holders: every workflow lease and every leased queue entry held by a
    /// token `rename` maps elsewhere is held by the new token instead. For a model checker's
    /// symmetry reduction, which swaps interchangeable actors (two sweepers) and must rename
    /// what the store holds for them alike ([`SweepOp::rename`](super::SweepOp::rename)); a
    /// store no rename changes is left as it is, its parts still shared.
    pub fn rename_holders(&mut self, rename: impl Fn(LeaseToken) -> LeaseToken) {
        let renamed = |holder: LeaseToken| rename(holder) != holder;
        if self.leases.values().any(|lease| renamed(lease.holder)) {
            for lease in self.leases.edit().values_mut() {
                lease.holder = rename(lease.holder);
            }
        }
        if self.decider.holds_any(renamed) {
            self.decider.edit().rename_holders(&rename);
        }
        if self
            .task_queues
            .values()
            .any(|queue| queue.holds_any(renamed))
        {
            for queue in self.task_queues.edit().values_mut() {
                queue.rename_holders(&rename);
            }
        }
    }

    /// Environment: time passes beyond every hiding lease (decider-queue pops, task polls, outbox
    /// claims): everything hidden is visible at `now_ms`.
    pub fn reveal(&mut self, now_ms: u64) {
        if self.decider.has_hidden(now_ms) {
            self.decider.edit().reveal(now_ms);
        }
        if self
            .task_queues
            .values()
            .any(|queue| queue.has_hidden(now_ms))
        {
            for queue in self.task_queues.edit().values_mut() {
                queue.reveal(now_ms);
            }
        }
        if self.outbox.values().any(|owed| owed.visible_at_ms > now_ms) {
            for owed in self.outbox.edit().values_mut() {
                owed.visible_at_ms = owed.visible_at_ms.min(now_ms);
            }
        }
    }

    /// Is anything hidden at `now_ms`: a decider entry, a task entry or an outbox claim?
    pub fn has_hidden(&self, now_ms: u64) -> bool {
        self.decider.has_hidden(now_ms)
            || self
                .task_queues
                .values()
                .any(|queue| queue.has_hidden(now_ms))
            || self.outbox.values().any(|owed| owed.visible_at_ms > now_ms)
    }

    /// Writes `workflow` as it is, with no version check and no effects: for tools that restore
    /// a backup, and for the legacy (defective) protocols the model reproduces. Never used by
    /// the runtime's operations.
    pub fn overwrite(&mut self, workflow: Workflow) {
        self.workflows
            .edit()
            .insert(workflow.id().clone(), Arc::new(workflow));
    }

    /// Environment and legacy protocols: removes the decider-queue entry of `id`.
    pub fn remove_from_decider(&mut self, id: &WorkflowId) -> bool {
        self.decider.contains(id) && self.decider.edit().remove(id)
    }

    /// Environment and legacy protocols: enters `id` in the decider queue, due at `now_ms`.
    pub fn push_to_decider(&mut self, id: &WorkflowId, now_ms: u64) {
        self.decider.edit().push(id, now_ms);
    }

    /// Moves `id` to `due_ms` in the decider queue, unleased, if it is queued there.
    fn requeue(&mut self, id: &WorkflowId, due_ms: u64) -> bool {
        let queued = self.decider.contains(id);
        if queued {
            self.decider.edit().push(id, due_ms);
        }
        queued
    }

    /// A store's contents, rebuilt entry by entry (a [`PostgresStore`](super::PostgresStore)
    /// snapshot): a decider-queue entry of `id`, placed after every entry restored before it.
    #[cfg(feature = "postgres")]
    pub(crate) fn restore_decider(
        &mut self,
        id: &WorkflowId,
        due_ms: u64,
        holder: Option<LeaseToken>,
    ) {
        self.decider.edit().place(id, due_ms, holder);
    }

    /// Restores a lease record.
    #[cfg(feature = "postgres")]
    pub(crate) fn restore_lease(&mut self, id: WorkflowId, lease: Lease) {
        self.leases.edit().insert(id, lease);
    }

    /// Restores a task-queue entry, placed after every entry of its queue restored before it.
    #[cfg(feature = "postgres")]
    pub(crate) fn restore_task(&mut self, queued: QueuedTask, due_ms: u64) {
        self.push_task(&queued, due_ms);
    }

    /// Restores an owed effect under its outbox sequence.
    #[cfg(feature = "postgres")]
    pub(crate) fn restore_owed(&mut self, entry: OutboxEntry, visible_at_ms: u64) {
        self.next_outbox = self.next_outbox.max(entry.sequence);
        self.outbox.edit().insert(
            entry.sequence,
            Owed {
                workflow: entry.workflow,
                version: entry.version,
                effect: entry.effect,
                attempts: entry.attempts,
                visible_at_ms,
            },
        );
    }

    /// Renumbers the internal counters (queue order, the next outbox sequence) so that two
    /// states with the same contents and the same order are equal. Outbox sequences in use are
    /// kept: a runner may hold them.
    pub fn canonicalize(&mut self) {
        if !self.decider.is_canonical() {
            self.decider.edit().canonicalize();
        }
        if self
            .task_queues
            .values()
            .any(|queue| queue.len() == 0 || !queue.is_canonical())
        {
            let queues = self.task_queues.edit();
            queues.retain(|_, queue| queue.len() > 0);
            for queue in queues.values_mut() {
                queue.canonicalize();
            }
        }
        self.next_outbox = self.outbox.keys().next_back().copied().unwrap_or(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn parts(store: &StoreState) -> [usize; 6] {
        [
            Arc::as_ptr(&store.workflows.0) as usize,
            Arc::as_ptr(&store.leases.0) as usize,
            Arc::as_ptr(&store.decider.0) as usize,
            Arc::as_ptr(&store.task_queues.0) as usize,
            Arc::as_ptr(&store.queued_tasks.0) as usize,
            Arc::as_ptr(&store.outbox.0) as usize,
        ]
    }

    #[test]
    fn a_clone_shares_every_part_and_an_unshared_copy_none() {
        let mut store = StoreState::new();
        store.push_to_decider(&WorkflowId::new("wf"), 5);
        let clone = store.clone();
        let copy = store.unshared();
        assert_eq!(parts(&clone), parts(&store));
        let (ours, theirs) = (parts(&store), parts(&copy));
        assert!(ours.iter().zip(&theirs).all(|(a, b)| a != b));
        assert_eq!(copy, store);
        let hasher = std::collections::hash_map::RandomState::new();
        assert_eq!(hasher.hash_one(&copy), hasher.hash_one(&store));
    }

    #[test]
    fn renaming_holders_moves_the_lease_and_the_popped_entry_and_nothing_else() {
        let id = WorkflowId::new("wf");
        let (a, b, other) = (
            LeaseToken::new(1, 0),
            LeaseToken::new(1, 1),
            LeaseToken::new(2, 0),
        );
        let swap = |token| match token {
            t if t == a => b,
            t if t == b => a,
            t => t,
        };
        let mut store = StoreState::new();
        store.push_to_decider(&id, 0);
        let popped = store.execute(Call::PopDecider {
            token: a,
            now_ms: 0,
            unack_ms: 5,
        });
        assert_eq!(popped, Reply::Popped(Some(id.clone())));
        let acquired = store.execute(Call::Acquire {
            id: &id,
            token: a,
            lease_ms: 5,
            now_ms: 0,
        });
        assert!(matches!(acquired, Reply::Acquired(Ok(_))));
        let before = store.clone();

        store.rename_holders(swap);
        assert_eq!(store.lease(&id).map(|lease| lease.holder), Some(b));
        assert_eq!(store.decider_holder(&id), Some(b));
        assert_ne!(store, before);
        assert_eq!(
            parts(&store)[0],
            parts(&before)[0],
            "the workflows stay shared"
        );
        // The new holder holds: it may hand the entry back and release; the old one may not.
        let mut renamed = store.clone();
        let moved = |store: &mut StoreState, token| {
            store.execute(Call::HandBack {
                id: &id,
                token,
                due_ms: 0,
            })
        };
        assert_eq!(moved(&mut renamed, a), Reply::Moved(false));
        assert_eq!(moved(&mut renamed, b), Reply::Moved(true));

        store.rename_holders(swap);
        assert_eq!(store, before, "renaming back gives the store back");
        let unchanged = store.clone();
        store.rename_holders(|token| if token == other { a } else { token });
        assert_eq!(
            parts(&store),
            parts(&unchanged),
            "no holder renamed, nothing copied"
        );
    }
}
