//! Loom checks of the runtime's lock protocol (SPEC section 7, issue 4).
//!
//! Run: `RUSTFLAGS="--cfg wfstate_loom" cargo test --release --test loom`. Without the cfg this
//! file compiles to nothing.
//!
//! Each scenario runs two or three operations concurrently on one workflow and asserts:
//! - I1–I3 on every snapshot any thread reads (the store wrapper checks each one as it hands it
//!   out) and on every committed state;
//! - I3–I5 on every pair of consecutive committed states (`check_pair`), and that no version is
//!   committed twice (I4) and every snapshot read is exactly the state committed at its version;
//! - I6 on every consistent view the main thread takes under the workflow lock while the others
//!   run, and on the final state (I6a always; I6b where no lease expires);
//! - I7: after the run, every post-commit effect owed by a committed step is performed.
//!
//! Non-vacuity: counters outside the model record that the interesting interleavings happen
//! (a report that lost a race to terminate, a stale commit rejected after a lease expiry, an
//! archive that failed and was retried), and each test asserts they did.
//!
//! The negative control runs scenario 2 with the sweeper's dequeue moved after its unlock
//! (Conductor's D3 order, a switch that exists only under `--cfg wfstate_loom`) and must fail
//! the I6b assertion.
#![cfg(wfstate_loom)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;

use loom::sync::Arc;
use loom::thread;
use wfstate::runtime::{
    Engine, EngineConfig, EngineError, InMemoryStore, OutboxEntry, QueuedTask, Requeue, Store,
    StoreError, Sweep,
};
use wfstate::{
    check, check_pair, Definition, Effect, Input, Phase, Rejection, Report, ReportStatus, Step,
    Task, TaskDefinition, TaskId, TaskStatus, Workflow, WorkflowId, WorkflowStatus,
};

/// The preemption bound of scenarios 1, 2 and 5 and the negative control: the smallest that
/// catches the negative control (bound 1 misses it). Exhaustive runs of these take longer than a
/// minute each; scenarios 3 and 4 run exhaustively. `WFSTATE_LOOM_EXHAUSTIVE=1` removes every bound,
/// `LOOM_MAX_PREEMPTIONS=n` sets one for all. `docs/testing.md` records the figures.
const PREEMPTION_BOUND: Option<usize> = Some(2);

/// Scenarios 3 and 4 are small enough to explore every interleaving.
const EXHAUSTIVE: Option<usize> = None;

type Snapshot = std::sync::Arc<Workflow>;

// ---------------------------------------------------------------------------------------------
// The recording store: checks every snapshot it hands out, keeps the chain of committed states.
// Its log uses a std mutex on purpose: it is instrumentation, invisible to loom, and never held
// across a loom operation.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Log {
    loads: Vec<Snapshot>,
    /// Version → committed state and the step that committed it (none for the initial state).
    commits: BTreeMap<u64, (Snapshot, Option<Step>)>,
    /// Post-commit effects performed by any handler: (version, effect).
    performed: Vec<(u64, Effect)>,
    /// Compare-and-swaps refused because the version had moved.
    stale: usize,
}

struct Recording {
    inner: InMemoryStore,
    log: StdMutex<Log>,
    /// `true`: the combined calls (`commit_and_queue`, `transition_and_commit`) go to
    /// `InMemoryStore`'s own single atomic actions, the path the shipped store takes. `false`:
    /// the `Store` trait's default composition of single calls, the path a store of an engine
    /// author's own takes. [`model`] runs every scenario both ways.
    combined: bool,
}

thread_local! {
    /// The path the next [`Recording`] takes; set by [`model`] in the thread that runs the
    /// scenario body (loom runs its threads as coroutines of the calling thread).
    static COMBINED: Cell<bool> = const { Cell::new(true) };
    /// Commits recorded through the combined calls (non-vacuity of the combined path).
    static COMBINED_COMMITS: Cell<usize> = const { Cell::new(0) };
}

impl Default for Recording {
    fn default() -> Self {
        Recording {
            inner: InMemoryStore::default(),
            log: StdMutex::default(),
            combined: COMBINED.with(Cell::get),
        }
    }
}

impl Recording {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().expect("instrumentation mutex")
    }

    /// Records a step the inner store committed inside one of its combined calls: the state
    /// it committed is the recorded state at the step's read version with the step applied
    /// (every commit is recorded, so the chain holds that version).
    fn record_combined(&self, step: &Step) {
        let mut log = self.log();
        let mut committed = Workflow::clone(&log.commits[&step.read_version()].0);
        committed
            .apply(step)
            .expect("a step the store committed applies to the state it was read from");
        assert_sound(&committed, "a committed state");
        let version = committed.version();
        let twice = log
            .commits
            .insert(version, (Snapshot::new(committed), Some(step.clone())));
        assert!(twice.is_none(), "I4: version {version} committed twice");
        COMBINED_COMMITS.with(|count| count.set(count.get() + 1));
    }

    fn count_stale(&self, error: &StoreError) {
        if error.is_stale() {
            self.log().stale += 1;
        }
    }
}

/// I1–I3 on one state.
fn assert_sound(workflow: &Workflow, what: &str) {
    let violations = check(workflow);
    assert!(
        violations.is_empty(),
        "{what} breaks an invariant: {violations:?}"
    );
}

/// The `Store` methods both wrappers pass straight to `self.$field`.
macro_rules! forward_store {
    ($field:tt) => {
        fn insert(&self, workflow: Workflow) -> Result<(), StoreError> {
            self.$field.insert(workflow)
        }

        fn queue_push(&self, id: &WorkflowId, due_ms: u64) {
            self.$field.queue_push(id, due_ms);
        }

        fn queue_pop(&self, now_ms: u64, unack_ms: u64) -> Option<WorkflowId> {
            self.$field.queue_pop(now_ms, unack_ms)
        }

        fn queue_requeue(&self, id: &WorkflowId, due_ms: u64) -> bool {
            self.$field.queue_requeue(id, due_ms)
        }

        fn queue_remove(&self, id: &WorkflowId) -> bool {
            self.$field.queue_remove(id)
        }

        fn queue_due(&self, id: &WorkflowId) -> Option<u64> {
            self.$field.queue_due(id)
        }

        fn queue_len(&self) -> usize {
            self.$field.queue_len()
        }

        fn task_push(&self, task: QueuedTask) {
            self.$field.task_push(task);
        }

        fn task_remove(&self, task: &TaskId) -> bool {
            self.$field.task_remove(task)
        }

        fn task_poll(&self, reference_name: &str) -> Option<QueuedTask> {
            self.$field.task_poll(reference_name)
        }

        fn task_len(&self) -> usize {
            self.$field.task_len()
        }

        fn outbox_append(&self, workflow: &WorkflowId, version: u64, effects: &[Effect]) {
            self.$field.outbox_append(workflow, version, effects);
        }

        fn outbox_take(&self, now_ms: u64, claim_ms: u64, max: usize) -> Vec<OutboxEntry> {
            self.$field.outbox_take(now_ms, claim_ms, max)
        }

        fn outbox_acknowledge(&self, sequence: u64) -> bool {
            self.$field.outbox_acknowledge(sequence)
        }

        fn outbox_len(&self) -> usize {
            self.$field.outbox_len()
        }
    };
}

impl Store for Recording {
    fn load(&self, id: &WorkflowId) -> Result<Snapshot, StoreError> {
        let snapshot = self.inner.load(id)?;
        assert_sound(&snapshot, "a snapshot read");
        self.log().loads.push(snapshot.clone());
        Ok(snapshot)
    }

    fn compare_and_swap(&self, id: &WorkflowId, step: &Step) -> Result<Snapshot, StoreError> {
        let committed = self
            .inner
            .compare_and_swap(id, step)
            .inspect_err(|error| self.count_stale(error))?;
        if step.is_applied() {
            assert_sound(&committed, "a committed state");
            let version = committed.version();
            let twice = self
                .log()
                .commits
                .insert(version, (committed.clone(), Some(step.clone())));
            assert!(twice.is_none(), "I4: version {version} committed twice");
        }
        Ok(committed)
    }

    fn commit_and_queue(
        &self,
        id: &WorkflowId,
        step: &Step,
        now_ms: u64,
        requeue: Requeue,
    ) -> Result<(), StoreError> {
        if !self.combined {
            return ViaDefaults(self).commit_and_queue(id, step, now_ms, requeue);
        }
        self.inner
            .commit_and_queue(id, step, now_ms, requeue)
            .inspect_err(|error| self.count_stale(error))?;
        if step.is_applied() {
            self.record_combined(step);
        }
        Ok(())
    }

    fn transition_and_commit(
        &self,
        id: &WorkflowId,
        input: &Input,
        queue: Option<(u64, Requeue)>,
    ) -> Result<Step, StoreError> {
        if !self.combined {
            return ViaDefaults(self).transition_and_commit(id, input, queue);
        }
        let step = self
            .inner
            .transition_and_commit(id, input, queue)
            .inspect_err(|error| self.count_stale(error))?;
        if step.is_applied() {
            self.record_combined(&step);
        }
        Ok(step)
    }

    forward_store!(inner);
}

/// `Recording` as a store that keeps the `Store` trait's default combined calls: what
/// `Recording` runs when it is not `combined`.
struct ViaDefaults<'a>(&'a Recording);

impl Store for ViaDefaults<'_> {
    fn load(&self, id: &WorkflowId) -> Result<Snapshot, StoreError> {
        self.0.load(id)
    }

    fn compare_and_swap(&self, id: &WorkflowId, step: &Step) -> Result<Snapshot, StoreError> {
        self.0.compare_and_swap(id, step)
    }

    forward_store!(0);
}

// ---------------------------------------------------------------------------------------------
// Setup and checks shared by the scenarios.
// ---------------------------------------------------------------------------------------------

type TestEngine = Engine<Recording, Definition>;

const INITIAL_VERSION: u64 = 3;

fn workflow_id() -> WorkflowId {
    WorkflowId::new("wf")
}

/// The one task of the definition, attempt 0, as the reference decider names it.
fn task_a() -> TaskId {
    TaskId::attempt(&workflow_id(), "a", 0)
}

/// A RUNNING workflow of one task `a` in `status`, in the decider queue, due at 0.
fn setup(status: TaskStatus, config: EngineConfig) -> Arc<TestEngine> {
    let task = Task {
        id: task_a(),
        reference_name: "a".into(),
        status,
        retry_count: 0,
        iteration: 0,
        optional: false,
    };
    let workflow = Workflow::from_parts(
        workflow_id(),
        WorkflowStatus::Running,
        INITIAL_VERSION,
        vec![task],
    )
    .expect("one task");
    let store = Recording::default();
    store
        .log()
        .commits
        .insert(INITIAL_VERSION, (Snapshot::new(workflow.clone()), None));
    store.insert(workflow).expect("fresh store");
    store.queue_push(&workflow_id(), 0);
    let definition = Definition::new([TaskDefinition::new("a")]);
    Arc::new(Engine::with_config(store, definition, config))
}

fn config() -> EngineConfig {
    let mut config = EngineConfig::default();
    // Due again at once after a wait, so a second sweeper can find the workflow.
    config.sweep_delay_ms = 0;
    config
}

/// An admin operation, retried while another operation holds the lock.
fn until_unlocked<T>(mut op: impl FnMut() -> Result<T, EngineError>) -> Result<T, EngineError> {
    loop {
        match op() {
            Err(EngineError::Locked { .. }) => thread::yield_now(),
            other => return other,
        }
    }
}

/// The main thread's probe while the others run: one consistent view under the lock, if the
/// lock is free. With no lease expiring, I6a and I6b must both hold in it.
fn observe(engine: &TestEngine, now_ms: u64) {
    match engine.inspect(&workflow_id(), now_ms) {
        Ok(view) => {
            assert_sound(&view.workflow, "an inspected state");
            if let Some(invariant) = view.queue_violation() {
                panic!(
                    "{invariant}: {} workflow, queued: {}, with no operation in flight",
                    view.workflow.status(),
                    view.is_queued()
                );
            }
        }
        Err(EngineError::Locked { .. }) => {}
        Err(other) => panic!("inspect failed: {other}"),
    }
}

/// After every thread joined: the history and the final state.
fn check_history(engine: &TestEngine) {
    let log = engine.store().log();
    let versions: Vec<u64> = log.commits.keys().copied().collect();
    let expected: Vec<u64> = (INITIAL_VERSION..INITIAL_VERSION + versions.len() as u64).collect();
    assert_eq!(versions, expected, "I4: committed versions have a gap");
    let states: Vec<&(Snapshot, Option<Step>)> = log.commits.values().collect();
    for pair in states.windows(2) {
        let (before, after) = (&pair[0].0, &pair[1].0);
        let retry = pair[1].1.as_ref().is_some_and(Step::through_retry);
        let violations = check_pair(before, after, retry);
        assert!(
            violations.is_empty(),
            "a commit broke I3–I5: {violations:?}"
        );
    }
    for snapshot in &log.loads {
        let committed = &log.commits[&snapshot.version()].0;
        assert_eq!(
            **snapshot, **committed,
            "I4: a snapshot read no commit wrote"
        );
    }
}

/// The final state, after every thread joined: I1–I3, and I6 (I6b only where `exact_queue`).
fn check_final(engine: &TestEngine, exact_queue: bool) -> Snapshot {
    check_history(engine);
    let view = engine
        .inspect(&workflow_id(), 1_000_000)
        .expect("nothing holds the lock any more");
    assert_sound(&view.workflow, "the final state");
    match view.queue_violation() {
        None => {}
        Some(wfstate::Invariant::I6b) if !exact_queue => {}
        Some(invariant) => panic!(
            "{invariant} in the final state: {} workflow, queued: {}",
            view.workflow.status(),
            view.is_queued()
        ),
    }
    assert!(
        engine.store().queue_len() <= 1,
        "the queue holds a duplicate"
    );
    view.workflow
}

/// I7: drains the outbox (every handler succeeds now) and checks every effect owed by a commit
/// was performed at least once, and nothing else was.
fn check_effects(engine: &TestEngine, now_ms: u64) {
    let mut now_ms = now_ms;
    while engine.store().outbox_len() > 0 {
        now_ms += engine.config().outbox_claim_ms;
        let mut handler = |entry: &OutboxEntry| -> Result<(), Infallible> {
            let performed = (entry.version, entry.effect.clone());
            engine.store().log().performed.push(performed);
            Ok(())
        };
        let run = engine.run_outbox(&mut handler, now_ms, 16);
        assert!(run.failures.is_empty());
    }
    let log = engine.store().log();
    let mut owed: Vec<(u64, Effect)> = Vec::new();
    for (version, (_, step)) in &log.commits {
        let effects = step
            .iter()
            .flat_map(|step| step.effects_in(Phase::PostCommit));
        owed.extend(effects.map(|effect| (*version, effect.clone())));
    }
    let mut performed = log.performed.clone();
    performed.sort_by_key(|(version, effect)| (*version, format!("{effect:?}")));
    performed.dedup();
    owed.sort_by_key(|(version, effect)| (*version, format!("{effect:?}")));
    assert_eq!(performed, owed, "I7: owed and performed effects differ");
}

/// Runs `f` under loom with preemption bound `bound` (`None`: exhaustive; see
/// [`PREEMPTION_BOUND`] for the overrides), once over each store path (see
/// [`Recording::combined`]), and prints how many interleavings each explored (`--nocapture`
/// shows it).
fn model(name: &str, bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    let f = std::sync::Arc::new(f);
    for combined in [true, false] {
        let mut builder = loom::model::Builder::new();
        if std::env::var_os("WFSTATE_LOOM_EXHAUSTIVE").is_some() {
            builder.preemption_bound = None;
        } else if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
            builder.preemption_bound = bound;
        }
        let iterations = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = iterations.clone();
        let body = f.clone();
        COMBINED_COMMITS.with(|count| count.set(0));
        builder.check(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            COMBINED.with(|path| path.set(combined));
            body();
        });
        let through_combined = COMBINED_COMMITS.with(Cell::get);
        assert_eq!(
            through_combined > 0,
            combined,
            "{name}: {through_combined} commits went through the combined calls"
        );
        let path = if combined {
            "InMemoryStore's combined calls"
        } else {
            "the Store trait's default calls"
        };
        println!(
            "{name} ({path}): {} interleavings, preemption bound {:?}",
            iterations.load(Ordering::Relaxed),
            builder.preemption_bound
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario 1: terminate ∥ sweep ∥ a COMPLETED report.
// ---------------------------------------------------------------------------------------------

static S1_LATE_REPORT: AtomicUsize = AtomicUsize::new(0);
static S1_COMPLETED_FIRST: AtomicUsize = AtomicUsize::new(0);
static S1_REPORT_LOST_RACE: AtomicUsize = AtomicUsize::new(0);
static S1_TERMINATE_RETRIED: AtomicUsize = AtomicUsize::new(0);

fn terminate_sweep_report(config: EngineConfig) {
    let engine = setup(TaskStatus::InProgress, config);
    let terminator = {
        let engine = engine.clone();
        thread::spawn(move || until_unlocked(|| engine.terminate(&workflow_id(), 0)))
    };
    let sweeper = {
        let engine = engine.clone();
        thread::spawn(move || engine.sweep_once(0))
    };
    let reporter = {
        let engine = engine.clone();
        thread::spawn(move || {
            let report = Report::new(task_a(), ReportStatus::Completed);
            engine.report(&workflow_id(), report, 0)
        })
    };
    observe(&engine, 0);
    let terminated = terminator.join().expect("terminator");
    let swept = sweeper.join().expect("sweeper");
    let reported = reporter.join().expect("reporter");

    let last = check_final(&engine, true);
    check_effects(&engine, 0);
    swept.expect("a sweep never fails here");
    let stale = engine.store().log().stale;
    match (&terminated, last.status()) {
        (Ok(applied), WorkflowStatus::Terminated) => {
            assert!(applied.step.is_applied());
            if applied.conflicts > 0 {
                // The report committed between terminate's read and its swap.
                S1_TERMINATE_RETRIED.fetch_add(1, Ordering::Relaxed);
            }
        }
        (Err(error), WorkflowStatus::Completed) => {
            // Terminal statuses are absorbing: terminate on COMPLETED is refused.
            assert!(matches!(
                error.rejection(),
                Some(Rejection::IllegalWorkflowTransition {
                    from: WorkflowStatus::Completed,
                    to: WorkflowStatus::Terminated
                })
            ));
            S1_COMPLETED_FIRST.fetch_add(1, Ordering::Relaxed);
        }
        (outcome, status) => panic!("terminate returned {outcome:?} but the workflow is {status}"),
    }
    match reported {
        Ok(applied) => assert!(applied.step.is_applied()),
        // The report lost the race: terminate cancelled the task first (D2: a late report).
        Err(error) => {
            assert_eq!(
                error.rejection(),
                Some(&Rejection::TaskAlreadyTerminal {
                    task: task_a(),
                    current: TaskStatus::Canceled,
                    requested: TaskStatus::Completed,
                })
            );
            S1_LATE_REPORT.fetch_add(1, Ordering::Relaxed);
            if stale > 0 {
                // It had read IN_PROGRESS: terminated while the report was in flight.
                S1_REPORT_LOST_RACE.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[test]
fn scenario_1_terminate_sweep_report() {
    model("scenario 1", PREEMPTION_BOUND, || {
        terminate_sweep_report(config())
    });
    assert!(
        S1_LATE_REPORT.load(Ordering::Relaxed) > 0,
        "never terminated before the report"
    );
    assert!(
        S1_COMPLETED_FIRST.load(Ordering::Relaxed) > 0,
        "never completed before terminate"
    );
    assert!(
        S1_REPORT_LOST_RACE.load(Ordering::Relaxed) > 0,
        "never terminated while a report was in flight"
    );
    assert!(
        S1_TERMINATE_RETRIED.load(Ordering::Relaxed) > 0,
        "terminate never had to retry after a report"
    );
}

// ---------------------------------------------------------------------------------------------
// Scenario 2: two sweepers ∥ a report. The queue never loses or duplicates the workflow, and
// nothing goes from COMPLETED back to RUNNING.
// ---------------------------------------------------------------------------------------------

static S2_COMPLETED: AtomicUsize = AtomicUsize::new(0);
static S2_BUSY: AtomicUsize = AtomicUsize::new(0);

fn two_sweepers_and_report(config: EngineConfig) {
    let engine = setup(TaskStatus::InProgress, config);
    let sweepers: Vec<_> = (0..2)
        .map(|_| {
            let engine = engine.clone();
            thread::spawn(move || engine.sweep_once(0))
        })
        .collect();
    let reporter = {
        let engine = engine.clone();
        thread::spawn(move || {
            let report = Report::new(task_a(), ReportStatus::Completed);
            engine.report(&workflow_id(), report, 0)
        })
    };
    observe(&engine, 0);
    let swept: Vec<Sweep> = sweepers
        .into_iter()
        .map(|sweeper| sweeper.join().expect("sweeper").expect("sweep"))
        .collect();
    let reported = reporter.join().expect("reporter");

    let last = check_final(&engine, true);
    check_effects(&engine, 0);
    assert!(reported
        .expect("nothing else ends the task")
        .step
        .is_applied());
    match last.status() {
        WorkflowStatus::Completed => {
            S2_COMPLETED.fetch_add(1, Ordering::Relaxed);
        }
        WorkflowStatus::Running => {}
        status => panic!("the workflow is {status}"),
    }
    if swept
        .iter()
        .any(|sweep| matches!(sweep, Sweep::Busy { .. }))
    {
        S2_BUSY.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn scenario_2_two_sweepers_and_report() {
    model("scenario 2", PREEMPTION_BOUND, || {
        two_sweepers_and_report(config())
    });
    assert!(S2_COMPLETED.load(Ordering::Relaxed) > 0, "never completed");
    assert!(
        S2_BUSY.load(Ordering::Relaxed) > 0,
        "a sweeper never missed the lock"
    );
}

/// The negative control: the same scenario with the sweeper dequeuing after its unlock
/// (Conductor's D3 order) must be caught, by the I6b check of the main thread's view.
#[test]
#[should_panic(expected = "I6b")]
fn negative_control_dequeue_after_unlock_is_caught() {
    model("negative control", PREEMPTION_BOUND, || {
        let mut config = config();
        config.legacy_dequeue_after_unlock = true;
        two_sweepers_and_report(config);
    });
}

// ---------------------------------------------------------------------------------------------
// Scenario 3: lease expiry. A sweeper holds the lock and decides to complete; its lease expires;
// an operator takes the lock over and terminates. The sweeper's late commit is rejected.
// ---------------------------------------------------------------------------------------------

static S3_LATE_COMMIT_REJECTED: AtomicUsize = AtomicUsize::new(0);
static S3_SWEEPER_FIRST: AtomicUsize = AtomicUsize::new(0);

fn lease_expiry() {
    let mut config = config();
    config.lease_ms = 10;
    let engine = setup(TaskStatus::Completed, config);
    let sweeper = {
        let engine = engine.clone();
        thread::spawn(move || engine.sweep_once(0))
    };
    let terminator = {
        let engine = engine.clone();
        // At time 100 the sweeper's lease (0..10) has expired: the lock is always granted.
        thread::spawn(move || engine.terminate(&workflow_id(), 100))
    };
    let swept = sweeper.join().expect("sweeper").expect("sweep");
    let terminated = terminator.join().expect("terminator");

    // A stale entry may be left after an expiry (I6b is relaxed); I6a must hold.
    let last = check_final(&engine, false);
    check_effects(&engine, 200);
    assert_eq!(
        last.version(),
        INITIAL_VERSION + 1,
        "exactly one of complete and terminate commits"
    );
    match (&swept, &terminated) {
        // The sweeper read, the operator committed, the sweeper's swap failed: re-read, found
        // TERMINATED, and only removed the queue entry.
        (
            Sweep::Dequeued {
                conflicts, status, ..
            },
            Ok(_),
        ) if *conflicts > 0 => {
            assert_eq!(*status, WorkflowStatus::Terminated);
            S3_LATE_COMMIT_REJECTED.fetch_add(1, Ordering::Relaxed);
        }
        (Sweep::Applied { .. }, Err(_)) => {
            assert_eq!(last.status(), WorkflowStatus::Completed);
            S3_SWEEPER_FIRST.fetch_add(1, Ordering::Relaxed);
        }
        (_, Ok(applied)) => {
            assert!(applied.step.is_applied());
            assert_eq!(last.status(), WorkflowStatus::Terminated);
        }
        (sweep, terminate) => panic!("sweep {sweep:?} and terminate {terminate:?}"),
    }
    // The next sweep removes any stale entry without changing any status.
    while let Sweep::Dequeued { status, .. } = engine.sweep_once(2_000_000).expect("sweep") {
        assert_eq!(status, last.status());
    }
    assert_eq!(engine.store().queue_len(), 0);
    assert_eq!(*engine.store().load(&workflow_id()).expect("load"), *last);
}

#[test]
fn scenario_3_lease_expiry() {
    model("scenario 3", EXHAUSTIVE, lease_expiry);
    assert!(
        S3_LATE_COMMIT_REJECTED.load(Ordering::Relaxed) > 0,
        "the expired holder's commit was never rejected"
    );
    assert!(
        S3_SWEEPER_FIRST.load(Ordering::Relaxed) > 0,
        "the sweeper never won"
    );
}

// ---------------------------------------------------------------------------------------------
// Scenario 4: terminate ∥ an outbox runner whose archive fails first (D1).
// ---------------------------------------------------------------------------------------------

static S4_ARCHIVE_RETRIED: AtomicUsize = AtomicUsize::new(0);

fn terminate_and_failing_archive() {
    let engine = setup(TaskStatus::InProgress, config());
    let claim_ms = engine.config().outbox_claim_ms;
    let terminator = {
        let engine = engine.clone();
        thread::spawn(move || until_unlocked(|| engine.terminate(&workflow_id(), 0)))
    };
    let runner = {
        let engine = engine.clone();
        thread::spawn(move || {
            let mut archive_failed = false;
            let mut handler = |entry: &OutboxEntry| {
                if entry.effect == Effect::Archive && !archive_failed {
                    archive_failed = true;
                    return Err("the index is down");
                }
                let performed = (entry.version, entry.effect.clone());
                engine.store().log().performed.push(performed);
                Ok(())
            };
            let first = engine.run_outbox(&mut handler, 0, 8);
            // A failed entry is claimed until `claim_ms`; the second pass retries it.
            let second = engine.run_outbox(&mut handler, claim_ms, 8);
            let failed = first.failures.len() + second.failures.len();
            let retried = !first.failures.is_empty() && second.performed > 0;
            (failed, retried, archive_failed)
        })
    };
    observe(&engine, 0);
    let terminated = terminator.join().expect("terminator").expect("terminate");
    let (failed, retried, archive_failed) = runner.join().expect("runner");

    // The failure changed no status: one commit, TERMINATED, every task cancelled (I1).
    let last = check_final(&engine, true);
    assert!(terminated.step.is_applied());
    assert_eq!(last.status(), WorkflowStatus::Terminated);
    assert_eq!(last.version(), INITIAL_VERSION + 1);
    assert_eq!(last.tasks()[0].status, TaskStatus::Canceled);
    check_effects(&engine, 2 * claim_ms);
    assert_eq!(
        failed,
        usize::from(archive_failed),
        "only the first archive fails"
    );
    if retried {
        // Failed in the first pass, performed by the runner's own retry.
        S4_ARCHIVE_RETRIED.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn scenario_4_terminate_and_failing_archive() {
    model("scenario 4", EXHAUSTIVE, terminate_and_failing_archive);
    assert!(
        S4_ARCHIVE_RETRIED.load(Ordering::Relaxed) > 0,
        "the archive never failed and was retried"
    );
}

// ---------------------------------------------------------------------------------------------
// Scenario 5 (beyond the four): lease expiry ∥ retry. A terminate commits, its lease
// expires before it leaves the decider queue, an operator retries the workflow (RUNNING again,
// pushed), then the late terminate dequeues. Queue operations carry no version, so only the
// re-read after the removal keeps this wake-up (I6a).
// ---------------------------------------------------------------------------------------------

static S5_LATE_DEQUEUE_REPAIRED: AtomicUsize = AtomicUsize::new(0);

fn expiry_then_retry() {
    let mut config = config();
    config.lease_ms = 10;
    let engine = setup(TaskStatus::InProgress, config);
    let terminator = {
        let engine = engine.clone();
        thread::spawn(move || until_unlocked(|| engine.terminate(&workflow_id(), 0)))
    };
    let operator = {
        let engine = engine.clone();
        // At time 100 the terminator's lease has expired. Retry until terminate has committed.
        thread::spawn(move || loop {
            match until_unlocked(|| engine.retry(&workflow_id(), 100)) {
                Err(EngineError::Rejected {
                    rejection: Rejection::NotRetriableWorkflow { .. },
                    ..
                }) => thread::yield_now(),
                other => return other,
            }
        })
    };
    terminator.join().expect("terminator").expect("terminate");
    operator.join().expect("operator").expect("retry");

    let last = check_final(&engine, false);
    check_effects(&engine, 200);
    assert_eq!(last.status(), WorkflowStatus::Running);
    assert_eq!(last.version(), INITIAL_VERSION + 2);
    let log = engine.store().log();
    let retry_version = INITIAL_VERSION + 2;
    // The retry's push happened before the terminate's removal iff the terminate loaded the
    // retried state after its removal (its re-read) and pushed it back.
    if log
        .loads
        .iter()
        .filter(|s| s.version() == retry_version)
        .count()
        > 1
    {
        S5_LATE_DEQUEUE_REPAIRED.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn scenario_5_late_dequeue_after_expiry_keeps_the_wake_up() {
    model("scenario 5", PREEMPTION_BOUND, expiry_then_retry);
    assert!(
        S5_LATE_DEQUEUE_REPAIRED.load(Ordering::Relaxed) > 0,
        "the late dequeue never met a retried workflow"
    );
}
