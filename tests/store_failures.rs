//! Store failures (SPEC section 7.2): "on any failure an operation loses nothing: no lost
//! wake-up, no lost owed effect, no half-started workflow; the caller gets a typed error and a
//! later operation recovers."
//!
//! [`FailingStore`] wraps `InMemoryStore` and fails the N-th `Store::call` of an operation with a
//! chosen kind: `NotDone` (the call is not forwarded: it certainly did not happen) or `Ambiguous`
//! (the call is forwarded and takes effect, then its reply is replaced by the failure: an answer
//! lost on the way back). For every operation, in each of its paths (sweeps that schedule,
//! complete, wait, find the lease held, or remove a stale entry; report; poll; the admin inputs
//! and `act`; the outbox run; inspect), for every call index of its unfailed run (pinned below)
//! and for both kinds, the test:
//!
//! 1. runs the operation with that call failing and requires its own typed
//!    `Store(CallFailed { call, failure })` error naming the failed call and the injected failure,
//!    with at most one further call, the release of the lease it may hold. A release that fails
//!    after a successful commit is reported the same way (`Store(CallFailed { call: Release })`)
//!    and what the operation committed stands;
//! 2. checks that nothing is lost: no lease of the operation outlives `lease_ms` (and one is left
//!    only by a release that certainly did not happen); every RUNNING workflow is still in the
//!    decider queue, due within the unack timeout or the sweep delay (I6a); no workflow that is
//!    not RUNNING entered the queue (I6b); every effect owed by a commit that took effect (a
//!    ghost log kept by the store wrapper, which sees the inner store's reply) is still in the
//!    outbox or was performed (I7); every live attempt, SCHEDULED or IN_PROGRESS, is still in its
//!    task queue; a workflow changed only if a commit took effect; a first call that certainly
//!    did not happen changed nothing at all;
//! 3. recovers: the clock passes every lease, unack, visibility and claim timeout; the caller
//!    does what the error's documentation says (starts again, redelivers the report, sends the
//!    admin input again: it is applied once in all, the repeat being a duplicate or a rejection
//!    that says so), and the engine sweeps, polls, reports and runs the outbox, with no more
//!    failures, until the workflow is terminal. I1–I5, I8 (`check`, `check_pair`) hold across every
//!    operation; at the end the decider and task queues are empty, no lease is valid, the outbox
//!    is drained, and the effects performed are exactly the effects owed (I7).

use std::cell::RefCell;
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use wfstate::runtime::{
    AdminError, Applied, Call, CallFailed, CallKind, CommitReply, DeciderPlan, Engine,
    EngineConfig, InMemoryStore, InspectError, OutboxEntry, OutboxRun, PollError, QueuePlan, Reply,
    ReportError, StartError, Store, StoreFailure, StoreState, Sweep, SweepError,
};
use wfstate::{
    check, check_pair, transition, AdminInput, Definition, Effect, EngineInput, Input, Phase,
    Report, ReportStatus, TaskDefinition, TaskId, Workflow, WorkflowId, WorkflowStatus,
};

use wfstate::runtime::CallKind::{
    AckOutbox, Acquire, Commit, DeciderDue, DropIfNotRunning, DropTask, HandBack, Insert, Load,
    PollTask, PopDecider, Release, TakeOutbox,
};

/// One owed post-commit effect: the workflow, the version its commit wrote, the effect.
type Owed = (WorkflowId, u64, Effect);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Not forwarded: the call certainly did not happen.
    NotDone,
    /// Forwarded, then the reply is lost: the call happened, the caller cannot know.
    Ambiguous,
}

const KINDS: [Kind; 2] = [Kind::NotDone, Kind::Ambiguous];

impl Kind {
    fn failure(self) -> StoreFailure {
        match self {
            Kind::NotDone => StoreFailure::not_done("injected"),
            Kind::Ambiguous => StoreFailure::ambiguous("injected"),
        }
    }
}

/// What the wrapper saw since it was last armed.
#[derive(Debug, Default)]
struct Window {
    /// The call index that fails, and how.
    fail_at: Option<(usize, Kind)>,
    /// Every call's kind, in order.
    trace: Vec<CallKind>,
    /// A commit took effect in the inner store (whatever the caller was told).
    committed: bool,
    /// An insert took effect in the inner store.
    inserted: bool,
}

/// `InMemoryStore` that fails one chosen call. It also keeps the ghost log of every effect owed
/// by a commit that took effect in the inner store, whether or not its reply reached the caller.
#[derive(Debug)]
struct FailingStore {
    inner: InMemoryStore,
    window: Mutex<Window>,
    owed: Mutex<Vec<Owed>>,
}

impl FailingStore {
    /// A store holding `state`; the effects already in its outbox are owed.
    fn new(state: StoreState) -> Self {
        let owed = state
            .owed()
            .map(|(workflow, version, effect)| (workflow.clone(), version, effect.clone()))
            .collect();
        FailingStore {
            inner: InMemoryStore::from_state(state),
            window: Mutex::new(Window::default()),
            owed: Mutex::new(owed),
        }
    }

    /// Starts a new window, counting calls from 0: `fail_at` names the call that fails and how
    /// (`None`: none fails).
    fn arm(&self, fail_at: Option<(usize, Kind)>) {
        *self.window.lock().unwrap() = Window {
            fail_at,
            ..Window::default()
        };
    }

    /// Ends the window and returns what it saw.
    fn disarm(&self) -> Window {
        std::mem::take(&mut *self.window.lock().unwrap())
    }

    fn owed(&self) -> HashSet<Owed> {
        self.owed.lock().unwrap().iter().cloned().collect()
    }

    fn state(&self) -> StoreState {
        self.inner.snapshot()
    }
}

impl Store for FailingStore {
    fn call(&self, call: Call<'_>) -> Result<Reply, StoreFailure> {
        let fails = {
            let mut window = self.window.lock().unwrap();
            let index = window.trace.len();
            window.trace.push(call.kind());
            window
                .fail_at
                .and_then(|(at, kind)| (at == index).then_some(kind))
        };
        if fails == Some(Kind::NotDone) {
            return Err(Kind::NotDone.failure());
        }
        let reply = self.inner.call(call)?;
        match (&call, &reply) {
            (Call::Commit { id, step, .. }, Reply::Committed(CommitReply::Done(receipt))) => {
                self.window.lock().unwrap().committed = true;
                let mut owed = self.owed.lock().unwrap();
                for effect in step.effects_in(Phase::PostCommit) {
                    owed.push(((*id).clone(), receipt.version, effect.clone()));
                }
            }
            (Call::Insert { .. }, Reply::Inserted(true)) => {
                self.window.lock().unwrap().inserted = true;
            }
            _ => {}
        }
        match fails {
            Some(kind) => Err(kind.failure()),
            None => Ok(reply),
        }
    }
}

const REFERENCES: [&str; 2] = ["fetch", "ship"];
/// When the operation under test runs; every setup runs at 0.
const AT: u64 = 10;

fn definition() -> Definition {
    Definition::new([
        TaskDefinition::new(REFERENCES[0]).retries(1),
        TaskDefinition::new(REFERENCES[1]),
    ])
}

fn config() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.lease_ms = 1_000;
    config.sweep_delay_ms = 100;
    config.unack_ms = 500;
    config.task_visibility_ms = 700;
    config.outbox_claim_ms = 300;
    config
}

/// Past every lease, unack, visibility and claim timeout the operation started.
fn timeouts() -> u64 {
    let config = config();
    config
        .lease_ms
        .max(config.unack_ms)
        .max(config.task_visibility_ms)
        .max(config.outbox_claim_ms)
        .max(config.sweep_delay_ms)
        + 1
}

fn wf() -> WorkflowId {
    WorkflowId::new("wf")
}

fn fetch() -> TaskId {
    TaskId::attempt(&wf(), REFERENCES[0], 0)
}

// ---------------------------------------------------------------------------------------------
// Setups: states before the operation, made by an ordinary engine at time 0.
// ---------------------------------------------------------------------------------------------

type Setup = Engine;

fn setup_engine() -> Setup {
    Engine::with_config(InMemoryStore::new(), definition(), config())
}

fn started(engine: &Setup) {
    engine.start(wf(), 0).unwrap();
}

/// `fetch` SCHEDULED, the workflow due at once.
fn scheduled(engine: &Setup) {
    started(engine);
    assert!(matches!(engine.sweep_once(0), Ok(Sweep::Applied { .. })));
}

/// `fetch` IN_PROGRESS.
fn in_progress(engine: &Setup) {
    scheduled(engine);
    let polled = engine.poll_task(REFERENCES[0], 0).unwrap().unwrap();
    assert_eq!(polled.task, fetch());
}

fn complete(engine: &Setup, reference: &str) {
    let polled = engine.poll_task(reference, 0).unwrap().unwrap();
    let done = Report::new(polled.task, ReportStatus::Completed);
    assert!(engine.report(&wf(), done, 0).unwrap().step.is_applied());
}

fn setup_empty(_: &Setup) {}

fn setup_started(engine: &Setup) {
    started(engine);
}

fn setup_scheduled(engine: &Setup) {
    scheduled(engine);
}

fn setup_in_progress(engine: &Setup) {
    in_progress(engine);
}

/// Both tasks COMPLETED: the next sweep completes the workflow.
fn setup_all_done(engine: &Setup) {
    scheduled(engine);
    complete(engine, REFERENCES[0]);
    assert!(matches!(engine.sweep_once(0), Ok(Sweep::Applied { .. })));
    complete(engine, REFERENCES[1]);
}

/// Another operation holds the workflow's lease until `lease_ms`.
fn setup_leased(engine: &Setup) {
    started(engine);
    let acquired = engine.store().call(Call::Acquire {
        id: &wf(),
        token: engine.token(),
        lease_ms: config().lease_ms,
        now_ms: 0,
    });
    assert!(matches!(acquired, Ok(Reply::Acquired(Ok(_)))));
}

fn setup_paused(engine: &Setup) {
    in_progress(engine);
    assert!(engine.pause(&wf(), 0).unwrap().step.is_applied());
}

fn setup_terminated(engine: &Setup) {
    in_progress(engine);
    assert!(engine.terminate(&wf(), 0).unwrap().step.is_applied());
}

/// `fetch` CANCELED by a commit whose queue effects were left out: its entry outlived it.
fn setup_stale_task_entry(engine: &Setup) {
    scheduled(engine);
    let read = engine.store().workflow(&wf()).unwrap();
    let cancel = transition(
        &read,
        &Input::from(EngineInput::CancelTask { task: fetch() }),
    );
    let plan = QueuePlan {
        decider: DeciderPlan::Keep,
        remove_tasks: Vec::new(),
        push_tasks: Vec::new(),
    };
    let committed = engine.store().call(Call::Commit {
        id: &wf(),
        step: &cancel.unwrap(),
        plan: &plan,
        now_ms: 0,
    });
    assert!(matches!(
        committed,
        Ok(Reply::Committed(CommitReply::Done(_)))
    ));
}

/// TERMINATED, and still in the decider queue: a stale entry, as a late operation after a lease
/// expiry can leave one (SPEC section 7).
fn tamper_stale_decider_entry(state: &mut StoreState) {
    state.push_to_decider(&wf(), 0);
}

fn no_tamper(_: &mut StoreState) {}

// ---------------------------------------------------------------------------------------------
// The harness: an engine over the failing store, the effects performed, checked operations.
// ---------------------------------------------------------------------------------------------

struct Harness {
    engine: Engine<FailingStore>,
    performed: RefCell<HashSet<Owed>>,
}

impl Harness {
    fn new(scenario: &Scenario) -> Self {
        let setup = setup_engine();
        (scenario.setup)(&setup);
        let mut state = setup.store().snapshot();
        (scenario.tamper)(&mut state);
        let store = FailingStore::new(state);
        Harness {
            engine: Engine::with_config(store, definition(), config()),
            performed: RefCell::new(HashSet::new()),
        }
    }

    fn store(&self) -> &FailingStore {
        self.engine.store()
    }

    /// Runs one operation and checks I1–I5, I8 across it on every workflow: each state consistent
    /// (`check`), each change a legal pair (`check_pair`: I3, I4, and I5 unless `through_retry`),
    /// no workflow lost.
    fn checked<T>(&self, through_retry: bool, what: &str, operation: impl FnOnce() -> T) -> T {
        let before = self.store().state();
        let output = operation();
        let after = self.store().state();
        for old in before.workflows() {
            let new = after
                .workflow(old.id())
                .unwrap_or_else(|| panic!("{what}: workflow {} lost", old.id()));
            let pair = check_pair(old, new, through_retry);
            assert!(pair.is_empty(), "{what}: {pair:?}");
        }
        for workflow in after.workflows() {
            let single = check(workflow);
            assert!(single.is_empty(), "{what}: {single:?}");
        }
        output
    }

    /// One outbox pass through a handler that always succeeds and records what it performed.
    fn run_outbox(&self, now_ms: u64) -> OutboxRun<Infallible> {
        let mut handler = |entry: &OutboxEntry| -> Result<(), Infallible> {
            let owed = (entry.workflow.clone(), entry.version, entry.effect.clone());
            self.performed.borrow_mut().insert(owed);
            Ok(())
        };
        self.engine.run_outbox(&mut handler, now_ms, 16)
    }
}

/// What an operation returned, across the operations' own result types.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ran {
    /// It succeeded the way this scenario expects.
    Done(&'static str),
    /// Its typed store-failure error.
    Store(CallFailed),
    /// Anything else.
    Other(String),
}

fn swept(result: Result<Sweep, SweepError>) -> Ran {
    match result {
        Ok(Sweep::Applied { .. }) => Ran::Done("applied"),
        Ok(Sweep::Waiting { .. }) => Ran::Done("waiting"),
        Ok(Sweep::Busy { .. }) => Ran::Done("busy"),
        Ok(Sweep::Dequeued { .. }) => Ran::Done("dequeued"),
        Err(SweepError::Store(failed)) => Ran::Store(failed),
        other => Ran::Other(format!("{other:?}")),
    }
}

fn administered(result: Result<Applied, AdminError>) -> Ran {
    match result {
        Ok(applied) if applied.step.is_applied() => Ran::Done("applied"),
        Err(AdminError::Store(failed)) => Ran::Store(failed),
        other => Ran::Other(format!("{other:?}")),
    }
}

fn op_start(harness: &Harness) -> Ran {
    match harness.engine.start(wf(), AT) {
        Ok(()) => Ran::Done("started"),
        Err(StartError::Store(failed)) => Ran::Store(failed),
        other => Ran::Other(format!("{other:?}")),
    }
}

fn op_sweep(harness: &Harness) -> Ran {
    swept(harness.engine.sweep_once(AT))
}

fn op_report(harness: &Harness) -> Ran {
    let done = Report::new(fetch(), ReportStatus::Completed);
    match harness.engine.report(&wf(), done, AT) {
        Ok(applied) if applied.step.is_applied() => Ran::Done("applied"),
        Err(ReportError::Store(failed)) => Ran::Store(failed),
        other => Ran::Other(format!("{other:?}")),
    }
}

fn op_poll(harness: &Harness) -> Ran {
    match harness.engine.poll_task(REFERENCES[0], AT) {
        Ok(Some(polled)) if polled.task == fetch() && !polled.redelivered => Ran::Done("polled"),
        Ok(None) => Ran::Done("nothing"),
        Err(PollError::Store(failed)) => Ran::Store(failed),
        other => Ran::Other(format!("{other:?}")),
    }
}

fn op_terminate(harness: &Harness) -> Ran {
    administered(harness.engine.terminate(&wf(), AT))
}

fn op_pause(harness: &Harness) -> Ran {
    administered(harness.engine.pause(&wf(), AT))
}

fn op_resume(harness: &Harness) -> Ran {
    administered(harness.engine.resume(&wf(), AT))
}

fn op_retry(harness: &Harness) -> Ran {
    administered(harness.engine.retry(&wf(), AT))
}

fn time_out_fetch() -> EngineInput {
    EngineInput::TimeOutTask { task: fetch() }
}

fn op_act(harness: &Harness) -> Ran {
    administered(harness.engine.act(&wf(), time_out_fetch(), AT))
}

fn op_outbox(harness: &Harness) -> Ran {
    let run = harness.run_outbox(AT);
    assert!(run.failures.is_empty(), "the handler never fails here");
    match run.store_failure {
        None if run.performed == 3 => Ran::Done("performed 3"),
        None => Ran::Other(format!("performed {}", run.performed)),
        Some(failed) => Ran::Store(failed),
    }
}

fn op_inspect(harness: &Harness) -> Ran {
    match harness.engine.inspect(&wf(), AT) {
        Ok(view) if view.queue_violation().is_none() => Ran::Done("inspected"),
        Err(InspectError::Store(failed)) => Ran::Store(failed),
        other => Ran::Other(format!("{other:?}")),
    }
}

// What the caller does after the error, before the engine recovers: as each error type's
// documentation says. `window` tells what the failed operation's calls did in the store.

fn after_nothing(_: &Harness, _: u64, _: &Window) {}

/// "If ambiguous, the workflow may exist now (start again to know)."
fn after_start(harness: &Harness, now_ms: u64, window: &Window) {
    let again = harness.checked(false, "start again", || harness.engine.start(wf(), now_ms));
    if window.inserted {
        assert_eq!(again, Err(StartError::WorkflowExists { id: wf() }));
    } else {
        assert_eq!(again, Ok(()));
    }
}

/// "The report is not acknowledged: redeliver it (a report that did take effect comes back as a
/// duplicate)."
fn after_report(harness: &Harness, now_ms: u64, window: &Window) {
    let done = Report::new(fetch(), ReportStatus::Completed);
    let again = harness.checked(false, "redeliver", || {
        harness.engine.report(&wf(), done, now_ms)
    });
    let step = again.expect("a redelivery is accepted").step;
    if window.committed {
        assert!(step.is_duplicate(), "applied once in all");
    } else {
        assert!(step.is_applied());
    }
}

/// "If the commit was ambiguous, send the input again: one that took effect comes back as a
/// duplicate or a rejection that says so."
fn resend(harness: &Harness, input: Input, now_ms: u64, window: &Window) {
    let through_retry = input == Input::Admin(AdminInput::Retry);
    let again = harness.checked(through_retry, "send again", || match input {
        Input::Admin(admin) => harness.engine.admin(&wf(), admin, now_ms),
        Input::Engine(engine) => harness.engine.act(&wf(), engine, now_ms),
        Input::Report(_) => unreachable!("reports are redelivered"),
    });
    match again {
        Ok(applied) if !window.committed => assert!(applied.step.is_applied()),
        Ok(applied) => assert!(applied.step.is_duplicate(), "applied once in all"),
        Err(AdminError::Rejected { .. }) if window.committed => {}
        other => panic!(
            "sent again: {other:?} (first one committed: {})",
            window.committed
        ),
    }
}

fn after_terminate(harness: &Harness, now_ms: u64, window: &Window) {
    resend(harness, AdminInput::Terminate.into(), now_ms, window);
}

/// Pause again, then resume so that the workflow can finish.
fn after_pause(harness: &Harness, now_ms: u64, window: &Window) {
    resend(harness, AdminInput::Pause.into(), now_ms, window);
    let resumed = harness.checked(false, "resume", || harness.engine.resume(&wf(), now_ms));
    assert!(resumed.unwrap().step.is_applied());
}

fn after_resume(harness: &Harness, now_ms: u64, window: &Window) {
    resend(harness, AdminInput::Resume.into(), now_ms, window);
}

fn after_retry(harness: &Harness, now_ms: u64, window: &Window) {
    resend(harness, AdminInput::Retry.into(), now_ms, window);
}

fn after_act(harness: &Harness, now_ms: u64, window: &Window) {
    resend(harness, time_out_fetch().into(), now_ms, window);
}

// ---------------------------------------------------------------------------------------------
// The scenarios and the checks.
// ---------------------------------------------------------------------------------------------

struct Scenario {
    name: &'static str,
    setup: fn(&Setup),
    tamper: fn(&mut StoreState),
    operation: fn(&Harness) -> Ran,
    /// What the unfailed operation returns.
    expected: &'static str,
    /// The calls of the unfailed operation, in order.
    calls: &'static [CallKind],
    /// The workflow's status after the unfailed operation.
    status: WorkflowStatus,
    after: fn(&Harness, u64, &Window),
    through_retry: bool,
}

const SWEEP_COMMIT: &[CallKind] = &[PopDecider, Acquire, Load, Commit, Release];
const LOCKED_COMMIT: &[CallKind] = &[Acquire, Load, Commit, Release];

fn scenario(
    name: &'static str,
    setup: fn(&Setup),
    operation: fn(&Harness) -> Ran,
    expected: &'static str,
    calls: &'static [CallKind],
    status: WorkflowStatus,
) -> Scenario {
    Scenario {
        name,
        setup,
        tamper: no_tamper,
        operation,
        expected,
        calls,
        status,
        after: after_nothing,
        through_retry: false,
    }
}

/// The stored `wf()`, to tell whether an operation changed it.
fn workflow_of(state: &StoreState) -> Option<Arc<Workflow>> {
    state.workflow(&wf()).cloned()
}

/// Runs `scenario` with no failure: pins its calls and outcome, and returns the workflow after.
fn unfailed(scenario: &Scenario) -> Option<Arc<Workflow>> {
    let harness = Harness::new(scenario);
    harness.store().arm(None);
    let ran = harness.checked(scenario.through_retry, scenario.name, || {
        (scenario.operation)(&harness)
    });
    let window = harness.store().disarm();
    assert_eq!(ran, Ran::Done(scenario.expected), "{}", scenario.name);
    assert_eq!(window.trace, scenario.calls, "{}: the calls", scenario.name);
    let after = workflow_of(&harness.store().state());
    assert_eq!(
        after.as_ref().map(|workflow| workflow.status()),
        Some(scenario.status),
        "{}",
        scenario.name
    );
    after
}

/// Step 2 of the module docs: right after the failed operation, nothing is lost.
fn nothing_lost(
    harness: &Harness,
    case: &str,
    before: &StoreState,
    failed_call: CallKind,
    kind: Kind,
    window: &Window,
) {
    let config = config();
    let state = harness.store().state();
    let own = harness.engine.token().owner();

    // Leases: none valid beyond `lease_ms`; the operation left one only if its release
    // certainly did not happen.
    for (id, lease) in state.leases() {
        assert!(
            !lease.is_valid_at(AT + config.lease_ms),
            "{case}: the lease on {id} outlives lease_ms"
        );
    }
    let left = state
        .leases()
        .filter(|(_, lease)| lease.holder.owner() == own)
        .count();
    let expected_left = usize::from(failed_call == Release && kind == Kind::NotDone);
    assert_eq!(left, expected_left, "{case}: leases left by the operation");

    // I6a: every RUNNING workflow is queued, due soon; I6b: no other workflow entered the queue.
    let soon = AT + config.unack_ms.max(config.sweep_delay_ms);
    for workflow in state.workflows() {
        let id = workflow.id();
        let due = state.decider_due(id);
        if workflow.status() == WorkflowStatus::Running {
            let due = due.unwrap_or_else(|| panic!("{case}: I6a: RUNNING {id} not queued"));
            assert!(due <= soon, "{case}: {id} due only at {due}");
        } else if due.is_some() {
            assert!(
                before.decider_due(id).is_some(),
                "{case}: I6b: {} {id} entered the queue",
                workflow.status()
            );
        }
        // Every live attempt waits in its task queue (hidden or not).
        for task in workflow.active_tasks() {
            assert!(
                state.task_queued(id, &task.id),
                "{case}: {} attempt {} left its task queue",
                task.status,
                task.id
            );
        }
    }

    // I7: every effect owed by a commit that took effect is in the outbox or performed.
    let in_outbox: HashSet<Owed> = state
        .owed()
        .map(|(workflow, version, effect)| (workflow.clone(), version, effect.clone()))
        .collect();
    let performed = harness.performed.borrow();
    for owed in harness.store().owed() {
        assert!(
            in_outbox.contains(&owed) || performed.contains(&owed),
            "{case}: I7: owed effect {owed:?} lost"
        );
    }

    // No phantom write; a first call that did not happen changed nothing at all.
    let (old, new) = (workflow_of(before), workflow_of(&state));
    match (old, new) {
        (Some(old), Some(new)) if !window.committed => {
            assert_eq!(old, new, "{case}: changed without a commit")
        }
        (Some(old), Some(new)) => assert_eq!(new.version(), old.version() + 1, "{case}"),
        (None, new) => assert_eq!(new.is_some(), window.inserted, "{case}: half-started"),
        (Some(_), None) => panic!("{case}: workflow lost"),
    }
    if window.trace.len() == 1 && kind == Kind::NotDone {
        assert_eq!(
            &state, before,
            "{case}: a call that did not happen changed the store"
        );
    }
}

/// Step 3 of the module docs: with no more failures, drive everything to a terminal state.
fn recover(harness: &Harness, case: &str, mut now_ms: u64) {
    for _ in 0..20 {
        for _ in 0..20 {
            let swept = harness.checked(false, case, || harness.engine.sweep_once(now_ms));
            match swept {
                Ok(Sweep::Empty) => break,
                Ok(_) => {}
                Err(error) => panic!("{case}: recovery sweep: {error}"),
            }
        }
        for reference in REFERENCES {
            loop {
                let polled =
                    harness.checked(false, case, || harness.engine.poll_task(reference, now_ms));
                let Some(polled) = polled.unwrap_or_else(|e| panic!("{case}: poll: {e}")) else {
                    break;
                };
                let done = Report::new(polled.task, ReportStatus::Completed);
                let reported = harness.checked(false, case, || {
                    harness.engine.report(&polled.workflow, done, now_ms)
                });
                reported.unwrap_or_else(|e| panic!("{case}: report: {e}"));
            }
        }
        let run = harness.run_outbox(now_ms);
        assert!(
            run.store_failure.is_none() && run.failures.is_empty(),
            "{case}"
        );
        let state = harness.store().state();
        let settled = state.workflows().all(|w| w.status().is_terminal())
            && state.decider_len() == 0
            && state.task_len() == 0
            && state.outbox_len() == 0;
        if settled {
            assert!(
                state.leases().all(|(_, lease)| !lease.is_valid_at(now_ms)),
                "{case}: a lease is still valid"
            );
            let owed = harness.store().owed();
            assert_eq!(
                *harness.performed.borrow(),
                owed,
                "{case}: I7: performed effects are the owed ones"
            );
            return;
        }
        now_ms += timeouts();
    }
    let state = harness.store().state();
    panic!(
        "{case}: never settled: {:?}, {} queued, {} tasks, {} owed",
        workflow_of(&state).map(|workflow| workflow.status()),
        state.decider_len(),
        state.task_len(),
        state.outbox_len()
    );
}

/// Every call of `scenario`'s operation fails once, with each kind: the typed error, nothing
/// lost, recovery to a terminal state.
fn every_failure_of(scenario: &Scenario) {
    let unfailed_after = unfailed(scenario);
    for (index, &call) in scenario.calls.iter().enumerate() {
        for kind in KINDS {
            let case = format!("{}: call {index} ({call}) {kind:?}", scenario.name);
            let harness = Harness::new(scenario);
            let before = harness.store().state();
            harness.store().arm(Some((index, kind)));
            let ran = harness.checked(scenario.through_retry, &case, || {
                (scenario.operation)(&harness)
            });
            let window = harness.store().disarm();

            let expected = CallFailed {
                call,
                failure: kind.failure(),
            };
            assert_eq!(ran, Ran::Store(expected), "{case}");
            assert_eq!(window.trace[..=index], scenario.calls[..=index], "{case}");
            assert!(
                matches!(window.trace[index + 1..], [] | [Release]),
                "{case}: after the failure only the release may follow: {:?}",
                window.trace
            );
            if call == Release {
                assert_eq!(
                    workflow_of(&harness.store().state()),
                    unfailed_after,
                    "{case}: what the operation did before its release stands"
                );
            }
            nothing_lost(&harness, &case, &before, call, kind, &window);
            let now_ms = AT + timeouts();
            (scenario.after)(&harness, now_ms, &window);
            recover(&harness, &case, now_ms);
        }
    }
}

#[test]
fn the_failing_store_counts_every_call_and_forwards_only_ambiguous_failures() {
    let store = FailingStore::new(StoreState::new());
    let workflow = Workflow::new("wf");
    let insert = Call::Insert {
        workflow: &workflow,
        now_ms: 0,
    };
    let load = Call::Load { id: &wf() };
    store.arm(Some((1, Kind::NotDone)));
    assert_eq!(store.call(load), Ok(Reply::Loaded(None)));
    assert_eq!(store.call(insert), Err(Kind::NotDone.failure()));
    let window = store.disarm();
    assert_eq!(window.trace, [Load, Insert]);
    assert!(!window.inserted);
    assert!(store.inner.is_empty(), "not forwarded");

    store.arm(Some((0, Kind::Ambiguous)));
    assert_eq!(store.call(insert), Err(Kind::Ambiguous.failure()));
    assert!(store.disarm().inserted);
    assert_eq!(store.inner.len(), 1, "forwarded, then the answer lost");
    assert_eq!(store.call(insert), Ok(Reply::Inserted(false)), "disarmed");
}

#[test]
fn store_failure_at_every_call_of_start_leaves_no_half_started_workflow() {
    every_failure_of(&Scenario {
        after: after_start,
        ..scenario(
            "start",
            setup_empty,
            op_start,
            "started",
            &[Insert],
            WorkflowStatus::Running,
        )
    });
}

#[test]
fn store_failure_at_every_call_of_a_scheduling_sweep_loses_nothing_i6a() {
    every_failure_of(&scenario(
        "sweep scheduling a task",
        setup_started,
        op_sweep,
        "applied",
        SWEEP_COMMIT,
        WorkflowStatus::Running,
    ));
}

#[test]
fn store_failure_at_every_call_of_a_completing_sweep_loses_nothing_i6a_i7() {
    every_failure_of(&scenario(
        "sweep completing the workflow",
        setup_all_done,
        op_sweep,
        "applied",
        SWEEP_COMMIT,
        WorkflowStatus::Completed,
    ));
}

#[test]
fn store_failure_at_every_call_of_a_waiting_sweep_loses_nothing_i6a() {
    every_failure_of(&scenario(
        "waiting sweep",
        setup_in_progress,
        op_sweep,
        "waiting",
        &[PopDecider, Acquire, Load, HandBack, Release],
        WorkflowStatus::Running,
    ));
}

#[test]
fn store_failure_at_every_call_of_a_busy_sweep_loses_no_wake_up_i6a() {
    every_failure_of(&scenario(
        "busy sweep (another holder has the lease)",
        setup_leased,
        op_sweep,
        "busy",
        &[PopDecider, Acquire, HandBack],
        WorkflowStatus::Running,
    ));
}

#[test]
fn store_failure_at_every_call_of_a_stale_entry_sweep_changes_no_status_i6b() {
    every_failure_of(&Scenario {
        tamper: tamper_stale_decider_entry,
        ..scenario(
            "sweep removing a stale entry",
            setup_terminated,
            op_sweep,
            "dequeued",
            &[PopDecider, Acquire, Load, DropIfNotRunning, Release],
            WorkflowStatus::Terminated,
        )
    });
}

#[test]
fn store_failure_at_every_call_of_a_report_loses_nothing_d2_i6a() {
    every_failure_of(&Scenario {
        after: after_report,
        ..scenario(
            "report",
            setup_in_progress,
            op_report,
            "applied",
            &[Load, Commit],
            WorkflowStatus::Running,
        )
    });
}

#[test]
fn store_failure_at_every_call_of_a_poll_loses_no_task() {
    every_failure_of(&scenario(
        "poll",
        setup_scheduled,
        op_poll,
        "polled",
        &[PollTask, Load, Commit],
        WorkflowStatus::Running,
    ));
}

#[test]
fn store_failure_at_every_call_of_a_poll_dropping_a_stale_entry_loses_no_task() {
    every_failure_of(&scenario(
        "poll dropping a stale entry",
        setup_stale_task_entry,
        op_poll,
        "nothing",
        &[PollTask, Load, DropTask, PollTask],
        WorkflowStatus::Running,
    ));
}

#[test]
fn store_failure_at_every_call_of_terminate_loses_nothing_d1_i7() {
    every_failure_of(&Scenario {
        after: after_terminate,
        ..scenario(
            "terminate",
            setup_in_progress,
            op_terminate,
            "applied",
            LOCKED_COMMIT,
            WorkflowStatus::Terminated,
        )
    });
}

#[test]
fn store_failure_at_every_call_of_pause_loses_nothing_i6b() {
    every_failure_of(&Scenario {
        after: after_pause,
        ..scenario(
            "pause",
            setup_in_progress,
            op_pause,
            "applied",
            LOCKED_COMMIT,
            WorkflowStatus::Paused,
        )
    });
}

#[test]
fn store_failure_at_every_call_of_resume_loses_no_wake_up_i6a() {
    every_failure_of(&Scenario {
        after: after_resume,
        ..scenario(
            "resume",
            setup_paused,
            op_resume,
            "applied",
            LOCKED_COMMIT,
            WorkflowStatus::Running,
        )
    });
}

#[test]
fn store_failure_at_every_call_of_retry_loses_no_wake_up_i5_i6a() {
    every_failure_of(&Scenario {
        after: after_retry,
        through_retry: true,
        ..scenario(
            "retry",
            setup_terminated,
            op_retry,
            "applied",
            LOCKED_COMMIT,
            WorkflowStatus::Running,
        )
    });
}

#[test]
fn store_failure_at_every_call_of_an_engine_input_loses_nothing_i7() {
    every_failure_of(&Scenario {
        after: after_act,
        ..scenario(
            "act (time a task out)",
            setup_in_progress,
            op_act,
            "applied",
            LOCKED_COMMIT,
            WorkflowStatus::Running,
        )
    });
}

#[test]
fn store_failure_at_every_call_of_an_outbox_run_loses_no_effect_i7() {
    every_failure_of(&scenario(
        "outbox run",
        setup_terminated,
        op_outbox,
        "performed 3",
        &[TakeOutbox, AckOutbox, AckOutbox, AckOutbox],
        WorkflowStatus::Terminated,
    ));
}

#[test]
fn store_failure_at_every_call_of_inspect_loses_nothing() {
    every_failure_of(&scenario(
        "inspect",
        setup_scheduled,
        op_inspect,
        "inspected",
        &[Acquire, Load, DeciderDue, Release],
        WorkflowStatus::Running,
    ));
}
