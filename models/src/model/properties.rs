//! The properties checked on every reachable state: I1–I6, completion and the failure-handling
//! properties as `always`, non-vacuity and edge coverage as `sometimes` (SPEC section 8).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use stateright::{Model, Property};
use wfstate::runtime::{
    EngineConfig, InspectError, InspectOp, Inspection, Next, Operation, StoreFailure, StoreState,
};
use wfstate::{check, Invariant, TaskStatus, Workflow, WorkflowStatus};

use super::protocol::{ProtocolModel, SharedDecider};
use super::state::{InvariantSet, Shared, State, NOW_MS};

type Condition = fn(&ProtocolModel, &State) -> bool;

/// The `always` properties, by name. I-ids are the SPEC's invariants.
pub const ALWAYS: &[(&str, Condition)] = &[
    ("I1", |_, s| holds(s, Invariant::I1)),
    // I1 once no operation is in flight: D1 left the workflow inconsistent for good, not just
    // between two writes of one operation.
    ("I1 at rest", |_, s| {
        s.in_flight() || holds(s, Invariant::I1)
    }),
    ("I2", |_, s| holds(s, Invariant::I2)),
    ("I3", |_, s| {
        holds(s, Invariant::I3) && !s.ghost.broken.contains(Invariant::I3)
    }),
    ("I4", |_, s| s.workflow().version() == s.ghost.commits),
    // Across every write: terminal becomes RUNNING only through retry.
    ("I5", |_, s| !s.ghost.broken.contains(Invariant::I5)),
    ("I6a", i6a),
    // At most one attempt per reference name, retry count and loop iteration.
    ("I8", |_, s| holds(s, Invariant::I8)),
    // At rest, every SCHEDULED attempt waits in its task queue: no task is lost to a failed
    // queue push (E10). The fixed protocol's "task queues exact" is stronger (every state).
    ("no lost task", |_, s| s.in_flight() || no_lost_task(s)),
    // At rest, a RUNNING workflow the decider would act on is due now in the decider queue (or
    // leased by a pop whose lease runs out): no wake-up is postponed (E1).
    ("no stall", no_stall),
    // At rest, a RUNNING workflow has a live task or a decision to take: nothing leaves it
    // waiting forever (a JOIN on a task of a SWITCH case not taken). An operator could still
    // terminate it, so "completion" alone would not say so.
    ("no stuck workflow", no_stuck),
    ("I6b", |_, s| {
        s.ghost.lease_expired
            || s.in_flight()
            || s.queued() == (s.status() == WorkflowStatus::Running)
    }),
    // With the queue plan inside the commit, no lease expiry leaves a stale entry either: the
    // decider queue is exact at rest even after one (stronger than SPEC I6b asks).
    ("I6b after an expiry", |_, s| {
        s.in_flight() || queue_violation(s).is_none()
    }),
    // The runtime's own inspect, run at rest on a copy of the store, sees what the model sees.
    ("inspect agrees", inspect_agrees),
    ("operations report what happened", |_, s| {
        !s.ghost.lost_output
    }),
    ("decisions accepted", |_, s| !s.ghost.decision_rejected),
    ("completion", completion),
    // Every operation releases the lease it took (unless its release call itself failed: the
    // lease then runs out).
    ("no operation finishes holding its lease", |_, s| {
        !s.ghost.finished_holding_lease
    }),
    // After any store-call failure: no lost wake-up, and every owed effect performed at the end.
    ("I6a after a store failure", |m, s| {
        !s.ghost.store_failed || i6a(m, s)
    }),
    ("I7 after a store failure", |m, s| {
        !s.ghost.store_failed || completion(m, s)
    }),
    // The store's counting and listing accessors agree with its contents.
    ("store views agree", |_, s| s.store_views_agree()),
];

/// `always` properties of the fixed protocol only: the legacy variants write workflows blind and
/// leave queue entries behind (their defects, reported by the properties above), and the
/// call-by-call store applies a commit's queue plan after its compare-and-swap.
pub const FIXED_ALWAYS: &[(&str, Condition)] = &[
    // The queue plan is part of the commit, so the task queues match the attempts in every
    // state: each live attempt waits in its queue (hidden once polled), no ended one does.
    ("task queues exact", task_queues_exact),
];

/// The `sometimes` properties: the interesting states are reachable.
pub const SOMETIMES: &[(&str, Condition)] = &[
    ("completed", |_, s| s.status() == WorkflowStatus::Completed),
    ("terminated with report in flight", |_, s| {
        s.ghost.terminated_with_report_in_flight
    }),
    ("effect failed then retried", |_, s| {
        s.ghost.effect_failed && s.ghost.effect_retried
    }),
    ("stale write rejected", |_, s| s.ghost.stale_write_rejected),
    ("lease expired while held", |_, s| s.ghost.lease_expired),
    ("a store call failed and the operation recovered", |_, s| {
        s.ghost.store_failed
            && s.status().is_terminal()
            && !s.in_flight()
            && s.store.outbox_len() == 0
    }),
    ("a commit was ambiguous", |_, s| s.ghost.ambiguous_commit),
    ("paused", |_, s| s.ghost.paused),
    ("retried", |_, s| s.ghost.retried),
];

macro_rules! edges {
    ($(($from:ident, $to:ident, $name:literal)),* $(,)?) => {
        /// One `sometimes` property per edge of the task transition table.
        pub const EDGES: &[(&str, Condition)] = &[
            $(($name, |_, s| s.ghost.last_edge == Some((TaskStatus::$from, TaskStatus::$to)))),*
        ];
    };
}

edges![
    (Scheduled, InProgress, "edge SCHEDULED->IN_PROGRESS"),
    (Scheduled, Canceled, "edge SCHEDULED->CANCELED"),
    (Scheduled, TimedOut, "edge SCHEDULED->TIMED_OUT"),
    (InProgress, InProgress, "edge IN_PROGRESS->IN_PROGRESS"),
    (InProgress, Completed, "edge IN_PROGRESS->COMPLETED"),
    (InProgress, Failed, "edge IN_PROGRESS->FAILED"),
    (
        InProgress,
        FailedWithTerminalError,
        "edge IN_PROGRESS->FAILED_WITH_TERMINAL_ERROR"
    ),
    (InProgress, Canceled, "edge IN_PROGRESS->CANCELED"),
    (InProgress, TimedOut, "edge IN_PROGRESS->TIMED_OUT"),
    (
        Failed,
        CompletedWithErrors,
        "edge FAILED->COMPLETED_WITH_ERRORS"
    ),
    (
        TimedOut,
        CompletedWithErrors,
        "edge TIMED_OUT->COMPLETED_WITH_ERRORS"
    ),
];

/// The properties stateright checks: [`each`] property, or, when the model evaluates them all
/// at once ([`ProtocolModel::all_at_once`]), one property that does.
pub fn all(model: &ProtocolModel) -> Vec<Property<ProtocolModel>> {
    if model.tally.mode == TallyMode::Combined {
        return vec![Property::always(EVERY_PROPERTY, every_property)];
    }
    each(model)
}

/// The name of the one property of a model that evaluates them all at once.
pub const EVERY_PROPERTY: &str = "every property";

/// Every property the model's configuration can exercise, `always` first: the non-vacuity
/// properties whose ingredient is configured (a failure budget, a terminator...) and the task
/// edges its workers, budgets and definition can produce. Workers report only on attempts they
/// polled, which the poll started, so the report edges out of SCHEDULED are not in the model
/// (the golden tables and property tests cover them).
pub fn each(model: &ProtocolModel) -> Vec<Property<ProtocolModel>> {
    let always = always_list(model).map(|(name, condition)| Property::always(name, condition));
    let sometimes =
        sometimes_list(model).map(|(index, name)| Property::sometimes(name, ONCE[index]));
    always.chain(sometimes).collect()
}

/// The `always` properties of the model's variant.
fn always_list(model: &ProtocolModel) -> impl Iterator<Item = (&'static str, Condition)> {
    let fixed: &[(&str, Condition)] = if model.variant.is_alternative() {
        &[]
    } else {
        FIXED_ALWAYS
    };
    ALWAYS.iter().chain(fixed).copied()
}

/// The `sometimes` properties the configuration exercises, with their index in `SOMETIMES`
/// then `EDGES`.
fn sometimes_list(model: &ProtocolModel) -> impl Iterator<Item = (usize, &'static str)> + '_ {
    SOMETIMES
        .iter()
        .chain(EDGES)
        .enumerate()
        .filter(|(_, (name, _))| exercised(model, name))
        .map(|(index, &(name, _))| (index, name))
}

/// How many `always` properties there can be (`ALWAYS` and `FIXED_ALWAYS`).
const MAX_ALWAYS: usize = 32;

const _: () = assert!(ALWAYS.len() + FIXED_ALWAYS.len() <= MAX_ALWAYS);

/// How many `sometimes` properties there can be (`SOMETIMES` and `EDGES`).
pub const MAX_SOMETIMES: usize = 24;

// At most 32: `Tally::exercised` is a bit set.
const _: () = assert!(SOMETIMES.len() + EDGES.len() <= MAX_SOMETIMES && MAX_SOMETIMES <= 32);

/// How a check records its properties.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum TallyMode {
    /// stateright sees and records every property (the explorer, replays, definitions).
    #[default]
    Each,
    /// As `Each`, but a `sometimes` property reads as unsatisfied once one state satisfied it.
    Remember,
    /// One stateright property evaluates them all; the tally's flags record the verdicts.
    Combined,
}

/// Flags a check sets: `sometimes` properties reached (by index in `SOMETIMES` then `EDGES`),
/// and, when all are evaluated at once, `always` properties broken (by index in the variant's
/// list). A clone starts afresh, so a model copied for another check finds everything again.
#[derive(Debug)]
pub(crate) struct Tally {
    pub(crate) mode: TallyMode,
    reached: [AtomicBool; MAX_SOMETIMES],
    broken: [AtomicBool; MAX_ALWAYS],
    /// The exercised `sometimes` properties (bit = index), listed once; read in `Combined`.
    exercised: u32,
    /// Unique per tally (and so per model: a copy gets a new one), the key of the actions
    /// [`completion`] lists for the checker to reuse.
    pub(crate) model_id: u64,
}

impl Default for Tally {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Tally {
            mode: TallyMode::default(),
            reached: Default::default(),
            broken: Default::default(),
            exercised: 0,
            model_id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl Clone for Tally {
    fn clone(&self) -> Self {
        Tally {
            mode: self.mode,
            exercised: self.exercised,
            ..Tally::default()
        }
    }
}

impl Tally {
    /// A tally for `model`'s properties.
    pub(crate) fn new(mode: TallyMode, model: &ProtocolModel) -> Self {
        let exercised = sometimes_list(model).fold(0, |bits, (index, _)| bits | 1 << index);
        Tally {
            mode,
            exercised,
            ..Tally::default()
        }
    }

    /// `condition`, evaluated until it first holds, unless stateright records every state's.
    fn once(&self, index: usize, condition: impl FnOnce() -> bool) -> bool {
        if self.mode == TallyMode::Each {
            return condition();
        }
        let flag = &self.reached[index];
        if flag.load(Ordering::Relaxed) {
            return false;
        }
        let holds = condition();
        if holds {
            flag.store(true, Ordering::Relaxed);
        }
        holds
    }

    /// With every property evaluated at once: did some state break (`always`) or satisfy
    /// (`sometimes`) the property `name`? `None` when stateright recorded them itself.
    pub(crate) fn found(&self, model: &ProtocolModel, name: &str) -> Option<bool> {
        if self.mode != TallyMode::Combined {
            return None;
        }
        if let Some(index) = always_list(model).position(|(always, _)| always == name) {
            return Some(self.broken[index].load(Ordering::Relaxed));
        }
        let (index, _) = sometimes_list(model).find(|&(_, sometimes)| sometimes == name)?;
        Some(self.reached[index].load(Ordering::Relaxed))
    }
}

/// Evaluates every property of [`each`] on `state`, recording what broke or was reached in the
/// model's [`Tally`]; stateright sees one property that always holds.
fn every_property(model: &ProtocolModel, state: &State) -> bool {
    let tally = &model.tally;
    for (index, (_, condition)) in always_list(model).enumerate() {
        if !condition(model, state) {
            tally.broken[index].store(true, Ordering::Relaxed);
        }
    }
    let mut exercised = tally.exercised;
    while exercised != 0 {
        let index = exercised.trailing_zeros() as usize;
        exercised &= exercised - 1;
        ONCE[index](model, state);
    }
    true
}

/// `sometimes` property `I` (of `SOMETIMES` then `EDGES`) through the model's [`Tally`].
fn once<const I: usize>(model: &ProtocolModel, state: &State) -> bool {
    let (_, condition) = if I < SOMETIMES.len() {
        SOMETIMES[I]
    } else {
        EDGES[I - SOMETIMES.len()]
    };
    model.tally.once(I, || condition(model, state))
}

macro_rules! once_table {
    ($($index:literal)*) => {
        /// `once::<I>` for every index, as the plain function pointers stateright takes.
        const ONCE: [Condition; MAX_SOMETIMES] = [$(once::<$index>),*];
    };
}

once_table!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23);

fn exercised(model: &ProtocolModel, name: &str) -> bool {
    let config = &model.config;
    let reported = |status: &str| config.outcomes.iter().any(|o| o.as_str() == status);
    let optional = config.definition.tasks.iter().any(|task| task.optional);
    let scripted = |input: wfstate::AdminInput| config.script.contains(&input);
    let terminator = scripted(wfstate::AdminInput::Terminate);
    match name {
        "completed" => reported("COMPLETED"),
        "stale write rejected" => config.sweepers > 1 || terminator,
        "terminated with report in flight" => terminator,
        "effect failed then retried" => config.effect_failures > 0,
        "lease expired while held" => config.lease_expiries > 0,
        "a store call failed and the operation recovered" | "a commit was ambiguous" => {
            config.store_failures > 0
        }
        "paused" => scripted(wfstate::AdminInput::Pause),
        "retried" => scripted(wfstate::AdminInput::Retry),
        _ => {
            let Some((from, to)) = name
                .strip_prefix("edge ")
                .and_then(|edge| edge.split_once("->"))
            else {
                return true;
            };
            match (from, to) {
                ("SCHEDULED", "IN_PROGRESS") => true,
                ("IN_PROGRESS", "IN_PROGRESS") => config.progress_reports,
                (_, "TIMED_OUT") => config.task_timeouts > 0,
                ("FAILED", "COMPLETED_WITH_ERRORS") => optional && reported("FAILED"),
                ("TIMED_OUT", "COMPLETED_WITH_ERRORS") => optional && config.task_timeouts > 0,
                ("SCHEDULED", "CANCELED") => terminator,
                (_, "CANCELED") => terminator || reported("CANCELED"),
                (_, status) => reported(status),
            }
        }
    }
}

fn holds(state: &State, invariant: Invariant) -> bool {
    !violated(state.workflow()).contains(invariant)
}

thread_local! {
    /// The invariants `wfstate::check` found broken in the workflow last checked on this thread. Successor states share their workflow until a commit changes it,
    /// and five properties ask about the same one. The entry holds the workflow, so its address
    /// cannot be reused by another while it is cached, and a shared workflow is never changed
    /// in place.
    static LAST_CHECKED: std::cell::RefCell<Option<(Arc<Workflow>, InvariantSet)>> =
        const { std::cell::RefCell::new(None) };
}

/// The invariants `wfstate::check` reports broken in `workflow`.
fn violated(workflow: &Arc<Workflow>) -> InvariantSet {
    LAST_CHECKED.with_borrow_mut(|last| {
        if let Some((checked, violated)) = last {
            if Arc::ptr_eq(checked, workflow) {
                return *violated;
            }
        }
        let mut violated = InvariantSet::default();
        for violation in check(workflow) {
            violated.insert(violation.invariant());
        }
        *last = Some((Arc::clone(workflow), violated));
        violated
    })
}

/// At rest, a RUNNING workflow that needs a decision is due now, or its entry is leased by a pop
/// (it reappears when that lease runs out: a sweeper that died after popping).
fn no_stall(model: &ProtocolModel, state: &State) -> bool {
    let id = State::id();
    // The decider last: it is the one costly test, and most states pass before it.
    state.in_flight()
        || state.status() != WorkflowStatus::Running
        || state.store.decider_ready(id, NOW_MS)
        || state.store.decider_holder(id).is_some()
        || model.decider.decide(state.workflow()) == wfstate::Decision::Wait
}

/// At rest, a RUNNING workflow with no live attempt gets a decision.
fn no_stuck(model: &ProtocolModel, state: &State) -> bool {
    state.in_flight()
        || state.status() != WorkflowStatus::Running
        || state.workflow().active_tasks().next().is_some()
        || model.decider.decide(state.workflow()) != wfstate::Decision::Wait
}

/// Every SCHEDULED attempt is in its task queue (visible or hidden).
fn no_lost_task(state: &State) -> bool {
    state
        .workflow()
        .tasks()
        .iter()
        .filter(|task| task.status == TaskStatus::Scheduled)
        .all(|task| state.store.task_queued(state.workflow().id(), &task.id))
}

/// No lost task and no stale task entry: an attempt is in its task queue exactly while it is
/// live (SCHEDULED or IN_PROGRESS), and the queues hold nothing else.
fn task_queues_exact(_: &ProtocolModel, state: &State) -> bool {
    let mut queued = 0;
    let workflow = state.workflow();
    for task in workflow.tasks() {
        let live = matches!(task.status, TaskStatus::Scheduled | TaskStatus::InProgress);
        let waiting = state.store.task_queued(workflow.id(), &task.id);
        if waiting != live {
            return false;
        }
        queued += usize::from(waiting);
    }
    state.store.task_len() == queued
}

/// I6 as the runtime's `Inspection::queue_violation` judges the stored state.
fn queue_violation(state: &State) -> Option<Invariant> {
    let inspection = Inspection {
        workflow: Arc::clone(state.workflow()),
        due_ms: state.store.decider_due(State::id()),
    };
    inspection.queue_violation()
}

/// I6a: at rest, a RUNNING workflow is in the decider queue.
fn i6a(_: &ProtocolModel, state: &State) -> bool {
    state.in_flight() || queue_violation(state) != Some(Invariant::I6a)
}

/// With no operation in flight and the lease free, the runtime's inspect operation, driven over
/// a copy of the store, returns the stored workflow and its queue membership.
fn inspect_agrees(model: &ProtocolModel, state: &State) -> bool {
    let free = state
        .store
        .lease(State::id())
        .is_none_or(|lease| !lease.is_valid_at(NOW_MS));
    if state.in_flight() || !free {
        return true;
    }
    // What follows reads only the store, the decider and the settings; successor states share
    // their store until a step changes it, so the last answer on this thread often stands. The
    // entry holds the store and the decider, so neither address can be reused while cached.
    LAST_INSPECTED.with_borrow_mut(|last| {
        if let Some((store, decider, engine, agrees)) = last {
            if Shared::same(store, &state.store)
                && Arc::ptr_eq(decider, &model.decider)
                && *engine == model.engine
            {
                return *agrees;
            }
        }
        let agrees = inspect_agrees_now(model, state);
        *last = Some((
            state.store.clone(),
            Arc::clone(&model.decider),
            model.engine.clone(),
            agrees,
        ));
        agrees
    })
}

thread_local! {
    /// The store last inspected on this thread, with the decider and settings, and the answer.
    #[allow(clippy::type_complexity)]
    static LAST_INSPECTED: std::cell::RefCell<
        Option<(Shared<StoreState>, SharedDecider, EngineConfig, bool)>,
    > = const { std::cell::RefCell::new(None) };
}

fn inspect_agrees_now(model: &ProtocolModel, state: &State) -> bool {
    let mut store = state.store.clone();
    let token = super::state::inspect_token();
    let mut op = InspectOp::new(State::id().clone(), token, NOW_MS, &model.engine);
    for _ in 0..8 {
        let Next::Call(call) = op.next() else { break };
        let reply = store.execute(call);
        op.resume(Ok(reply), &*model.decider);
    }
    let expected = Inspection {
        workflow: Arc::clone(state.workflow()),
        due_ms: state.store.decider_due(State::id()),
    };
    let agrees = matches!(op.finish(), Some(Ok(inspection)) if inspection == expected)
        && store
            .lease(State::id())
            .is_none_or(|lease| lease.holder != token);
    // The same inspect with its acquire ambiguous (granted, reply lost): it fails with the
    // store error and releases the lease it may hold.
    let mut store = state.store.clone();
    let mut op = InspectOp::new(State::id().clone(), token, NOW_MS, &model.engine);
    let mut first = true;
    for _ in 0..8 {
        let Next::Call(call) = op.next() else { break };
        let reply = store.execute(call);
        let reply = if first {
            Err(StoreFailure::ambiguous("model: reply lost"))
        } else {
            Ok(reply)
        };
        first = false;
        op.resume(reply, &*model.decider);
    }
    let recovered = matches!(op.finish(), Some(Err(InspectError::Store(_))))
        && store
            .lease(State::id())
            .is_none_or(|lease| lease.holder != token);
    agrees && recovered
}

/// No action enabled ⇒ the workflow is terminal, out of the decider queue, and every owed effect
/// was performed (I7 at the end of every run).
fn completion(model: &ProtocolModel, state: &State) -> bool {
    // The end state first: it is cheap to read, and where it holds the actions need no listing.
    let finished = state.status().is_terminal() && !state.queued() && state.store.outbox_len() == 0;
    finished || {
        let mut actions = Vec::new();
        model.actions(state, &mut actions);
        let enabled = !actions.is_empty();
        // stateright lists the actions of the same state next, on this thread: it gets these.
        model.remember_actions(state, actions);
        enabled
    }
}
