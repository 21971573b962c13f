//! Stress test of the runtime (issue 4) with std threads: several threads run random operations
//! on many workflows: sweeps, polls, reports with duplicates and late deliveries, terminate,
//! pause, resume, retry, starts (some duplicate), inspections and outbox runs through a handler
//! that fails 30% of the time.
//!
//! Polls are leased: a polled attempt's entry stays queued, hidden for a short
//! `task_visibility_ms`, so attempts a worker holds long are handed out again (`redelivered`) and
//! two workers may report the same attempt.
//!
//! Checked continuously: I1–I3 on every inspected state, I6a and I6b on every inspection (taken
//! under the lease; no lease expires here), versions never go back, a terminal task never
//! changes (I3). Every commit is also pair-checked (I3–I5) by the core's debug assertions in
//! `Workflow::apply`, which panic (and fail this test) on a violation. At the end every workflow is
//! driven to a terminal status (no lost wake-up, I6a), no task entry, decider entry or lease is
//! left, the outbox is drained through the same failing handler, and every post-commit effect
//! owed by a commit must have been performed (I7).
//!
//! Bounded to well under a few seconds in `cargo test`. A longer run (operations per thread):
//! `WFSTATE_STRESS_OPS=5000000 cargo test --test stress -- --nocapture`, without `--release`, so
//! the core's debug assertions stay on (the test profile builds this crate at opt-level 3);
//! `WFSTATE_STRESS_SEED` changes the seed. `docs/testing.md` records a long run.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use wfstate::runtime::{
    AdminError, Applied, Engine, EngineConfig, InMemoryStore, InspectError, OutboxEntry, PollError,
    Polled, ReportError, StartError, Sweep, SweepError,
};
use wfstate::{
    check, Definition, Effect, Phase, Rejection, Report, ReportStatus, TaskDefinition, TaskStatus,
    Workflow, WorkflowId, WorkflowStatus,
};

const THREADS: u64 = 4;
const WORKFLOWS: usize = 48;
/// Operations per thread in a plain `cargo test` (this crate is built with opt-level 3 and debug
/// assertions in the test profile).
const DEFAULT_OPERATIONS: u64 = 150_000;
const REFERENCES: [&str; 3] = ["fetch", "charge", "notify"];

/// A small deterministic generator (splitmix64): the test needs no `rand`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

type Owed = (WorkflowId, u64, Effect);

/// Why a report or an admin input was refused, as far as this test tells them apart: each
/// operation has its own error type, and only these refusals are expected here (no store call
/// ever fails in memory).
#[derive(Debug)]
enum Refusal {
    Rejected,
    Locked,
    Contention,
    Unexpected(String),
}

impl From<ReportError> for Refusal {
    fn from(error: ReportError) -> Self {
        match error {
            ReportError::Rejected { .. } => Refusal::Rejected,
            ReportError::Contention { .. } => Refusal::Contention,
            other => Refusal::Unexpected(other.to_string()),
        }
    }
}

impl From<AdminError> for Refusal {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Rejected { .. } => Refusal::Rejected,
            AdminError::Locked { .. } => Refusal::Locked,
            AdminError::Contention { .. } => Refusal::Contention,
            other => Refusal::Unexpected(other.to_string()),
        }
    }
}

/// Everything the threads share.
struct World {
    engine: Engine,
    clock: AtomicU64,
    ids: Mutex<Vec<WorkflowId>>,
    /// Reports already sent once, for redelivery (duplicates and late deliveries).
    sent: Mutex<Vec<(WorkflowId, Report)>>,
    owed: Mutex<Vec<Owed>>,
    performed: Mutex<HashSet<Owed>>,
    violations: Mutex<Vec<String>>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl World {
    fn new() -> Self {
        let definition = Definition::new([
            TaskDefinition::new(REFERENCES[0]).retries(1),
            TaskDefinition::new(REFERENCES[1]),
            TaskDefinition::new(REFERENCES[2]).optional(),
        ]);
        let mut config = EngineConfig::default();
        // No lease ever expires here: I6b must hold exactly at every inspection.
        config.lease_ms = u64::MAX / 4;
        config.sweep_delay_ms = 20;
        config.unack_ms = 500;
        // Short, so polled attempts held long by a worker are handed out again (redelivered).
        config.task_visibility_ms = 300;
        config.outbox_claim_ms = 50;
        let world = World {
            engine: Engine::with_config(InMemoryStore::new(), definition, config),
            clock: AtomicU64::new(0),
            ids: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
            owed: Mutex::new(Vec::new()),
            performed: Mutex::new(HashSet::new()),
            violations: Mutex::new(Vec::new()),
            counts: Mutex::new(BTreeMap::new()),
        };
        for n in 0..WORKFLOWS {
            world.start(format!("wf-{n}").into());
        }
        world
    }

    fn now(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    fn count(&self, what: &'static str) {
        *self.counts.lock().unwrap().entry(what).or_default() += 1;
    }

    fn violation(&self, what: String) {
        self.violations.lock().unwrap().push(what);
    }

    fn start(&self, id: WorkflowId) {
        match self.engine.start(id.clone(), self.now()) {
            Ok(()) => self.ids.lock().unwrap().push(id),
            // One atomic insert, no lock: a duplicate is refused as such even while a sweep
            // holds the existing workflow's lease.
            Err(StartError::WorkflowExists { .. }) => self.count("start: duplicate refused"),
            Err(other) => self.violation(format!("start {id}: {other}")),
        }
    }

    /// Mostly (80%) one of the 64 most recently started workflows, which are still live, so that
    /// admin operations and inspections keep meeting RUNNING and PAUSED workflows in long runs.
    fn random_id(&self, rng: &mut Rng) -> WorkflowId {
        let ids = self.ids.lock().unwrap();
        let index = if rng.chance(80) {
            ids.len() - 1 - rng.below(ids.len().min(64))
        } else {
            rng.below(ids.len())
        };
        ids[index].clone()
    }

    /// Records what a committed step owes the outbox.
    fn owe(&self, id: &WorkflowId, applied: &Applied) {
        self.owe_step(id, &applied.step);
    }

    fn owe_step(&self, id: &WorkflowId, step: &wfstate::Step) {
        let version = step.new_version();
        let mut owed = self.owed.lock().unwrap();
        for effect in step.effects_in(Phase::PostCommit) {
            owed.push((id.clone(), version, effect.clone()));
        }
    }

    /// The outcome of an operation: commits owe effects; refusals must be typed and expected.
    fn settle<E: Into<Refusal>>(
        &self,
        what: &'static str,
        id: &WorkflowId,
        result: Result<Applied, E>,
    ) {
        match result.map_err(Into::into) {
            Ok(applied) if applied.step.is_applied() => {
                self.owe(id, &applied);
                self.count(what);
            }
            Ok(_) => self.count("duplicate or progress"),
            Err(Refusal::Rejected) => self.count("rejected (typed)"),
            Err(Refusal::Locked) => self.count("locked"),
            Err(Refusal::Contention) => self.count("contention"),
            Err(Refusal::Unexpected(other)) => {
                self.violation(format!("{what} on {id}: unexpected {other}"))
            }
        }
    }
}

/// One thread's state: its generator, the attempts it polled and has not reported yet, and the
/// last state it saw of each workflow (for the monotonicity checks).
struct Worker<'w> {
    world: &'w World,
    rng: Rng,
    in_hand: Vec<Polled>,
    seen: BTreeMap<WorkflowId, std::sync::Arc<Workflow>>,
}

impl Worker<'_> {
    fn step(&mut self) {
        let world = self.world;
        match self.rng.below(100) {
            0..=24 => self.sweep(),
            25..=39 => self.poll(),
            40..=59 => self.report(),
            60..=69 => self.redeliver(),
            70..=72 => self.admin("terminate", Engine::terminate),
            73..=75 => self.admin("pause", Engine::pause),
            76..=79 => self.admin("resume", Engine::resume),
            80..=82 => self.admin("retry", Engine::retry),
            83..=89 => {
                run_outbox(world, &mut self.rng, world.now());
            }
            90..=97 => self.inspect(),
            _ => {
                // A new workflow, or (one time in four) a duplicate start.
                let id = if self.rng.chance(25) {
                    world.random_id(&mut self.rng)
                } else {
                    format!("wf-new-{}", self.rng.next()).into()
                };
                world.start(id);
            }
        }
    }

    fn sweep(&mut self) {
        match self.world.engine.sweep_once(self.world.now()) {
            Ok(Sweep::Applied { id, step, .. }) => {
                self.world.owe_step(&id, &step);
                self.world.count("sweep: decision committed");
            }
            Ok(Sweep::Busy { .. }) => self.world.count("sweep: busy, put back"),
            Ok(_) => self.world.count("sweep: other"),
            Err(SweepError::Contention { .. }) => self.world.count("contention"),
            Err(other) => self.world.violation(format!("sweep: unexpected {other}")),
        }
    }

    fn poll(&mut self) {
        let reference = REFERENCES[self.rng.below(REFERENCES.len())];
        match self.world.engine.poll_task(reference, self.world.now()) {
            Ok(Some(polled)) => {
                // A redelivery: an earlier poller still holds the attempt (or died with it);
                // both may report, one wins and the other is a duplicate or a typed rejection.
                self.world.count(if polled.redelivered {
                    "poll: IN_PROGRESS attempt redelivered"
                } else {
                    "poll: task started"
                });
                self.in_hand.push(polled);
            }
            Ok(None) => {}
            Err(PollError::Contention { .. }) => self.world.count("contention"),
            Err(other) => self.world.violation(format!("poll: unexpected {other}")),
        }
    }

    fn report(&mut self) {
        if self.in_hand.is_empty() {
            return;
        }
        let index = self.rng.below(self.in_hand.len());
        let status = match self.rng.below(100) {
            0..=59 => ReportStatus::Completed,
            60..=74 => ReportStatus::Failed,
            75..=79 => ReportStatus::FailedWithTerminalError,
            80..=84 => ReportStatus::Canceled,
            _ => ReportStatus::InProgress,
        };
        let polled = if status == ReportStatus::InProgress {
            self.in_hand[index].clone()
        } else {
            self.in_hand.swap_remove(index)
        };
        let report = Report::new(polled.task, status);
        self.send(&polled.workflow, report.clone(), "report: applied");
        self.world
            .sent
            .lock()
            .unwrap()
            .push((polled.workflow, report));
    }

    /// A duplicate (same status) or a late delivery (another status) of a report sent before.
    fn redeliver(&mut self) {
        let picked = {
            let sent = self.world.sent.lock().unwrap();
            if sent.is_empty() {
                return;
            }
            sent[self.rng.below(sent.len())].clone()
        };
        let (id, mut report) = picked;
        if self.rng.chance(30) {
            report.status = ReportStatus::InProgress;
        }
        self.send(&id, report, "report: redelivery applied");
    }

    fn send(&mut self, id: &WorkflowId, report: Report, what: &'static str) {
        let repeat = report.status;
        let result = self.world.engine.report(id, report, self.world.now());
        if let Err(ReportError::Rejected {
            rejection: Rejection::TaskAlreadyTerminal { current, .. },
            ..
        }) = &result
        {
            if current.is_terminal() && repeat.task_status() == *current {
                self.world.violation(format!(
                    "{id}: an exact repeat was refused, not a duplicate"
                ));
            }
        }
        self.world.settle(what, id, result);
    }

    fn admin(
        &mut self,
        what: &'static str,
        op: fn(&Engine, &WorkflowId, u64) -> Result<Applied, AdminError>,
    ) {
        let id = self.world.random_id(&mut self.rng);
        let result = op(&self.world.engine, &id, self.world.now());
        self.world.settle(what, &id, result);
    }

    /// A consistent view under the lock: I1–I3, I6a, I6b, and monotonic against the last view.
    fn inspect(&mut self) {
        let id = self.world.random_id(&mut self.rng);
        match self.world.engine.inspect(&id, self.world.now()) {
            Ok(view) => {
                self.world.count("inspection");
                for violation in check(&view.workflow) {
                    self.world.violation(format!("{id}: {violation}"));
                }
                if let Some(invariant) = view.queue_violation() {
                    let status = view.workflow.status();
                    self.world.violation(format!(
                        "{id}: {invariant}: {status}, queued {:?}",
                        view.due_ms
                    ));
                }
                if let Some(before) = self.seen.insert(id.clone(), view.workflow.clone()) {
                    monotonic(self.world, &before, &view.workflow);
                }
            }
            Err(InspectError::Locked { .. }) => self.world.count("locked"),
            Err(other) => self
                .world
                .violation(format!("inspect {id}: unexpected {other}")),
        }
    }
}

/// Across two views of one workflow: the version never goes back, the same version is the same
/// state, and a terminal attempt keeps its status (or takes the tolerance edge) (I3, I4).
fn monotonic(world: &World, before: &Workflow, after: &Workflow) {
    let id = after.id();
    if after.version() < before.version() {
        world.violation(format!("{id}: I4: version went back"));
    }
    if after.version() == before.version() && after != before {
        world.violation(format!("{id}: I4: two states at one version"));
    }
    for old in before.tasks() {
        let Some(new) = after.task(&old.id) else {
            world.violation(format!("{id}: I3: task {} disappeared", old.id));
            continue;
        };
        let tolerated = matches!(old.status, TaskStatus::Failed | TaskStatus::TimedOut)
            && new.status == TaskStatus::CompletedWithErrors;
        if old.status.is_terminal() && new.status != old.status && !tolerated {
            let (from, to) = (old.status, new.status);
            world.violation(format!("{id}: I3: task {} went {from} → {to}", old.id));
        }
    }
}

/// One outbox pass through a handler that fails 30% of the time.
fn run_outbox(world: &World, rng: &mut Rng, now_ms: u64) {
    let mut handler = |entry: &OutboxEntry| {
        if rng.chance(30) {
            return Err("listener unavailable");
        }
        let key = (entry.workflow.clone(), entry.version, entry.effect.clone());
        world.performed.lock().unwrap().insert(key);
        Ok(())
    };
    let run = world.engine.run_outbox(&mut handler, now_ms, 8);
    for _ in &run.failures {
        world.count("outbox: effect failed, left for retry");
    }
}

/// After the threads: every workflow is driven to a terminal status, then the outbox is drained.
fn finish(world: &World, in_hand: Vec<Polled>) {
    let engine = &world.engine;
    let mut rng = Rng(7);
    for polled in in_hand {
        let report = Report::new(polled.task, ReportStatus::Completed);
        let result = engine.report(&polled.workflow, report, world.now());
        world.settle("report: applied", &polled.workflow, result);
    }
    let ids = world.ids.lock().unwrap().clone();
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(
            rounds < 200,
            "workflows never settled: a lost wake-up (I6a)?"
        );
        let mut live = 0;
        for id in &ids {
            let workflow = engine.store().workflow(id).expect("known workflow");
            if workflow.status() == WorkflowStatus::Paused {
                let result = engine.resume(id, world.now());
                world.settle("resume", id, result);
            }
            if !workflow.status().is_terminal() {
                live += 1;
                for task in workflow.active_tasks() {
                    let report = Report::new(task.id.clone(), ReportStatus::Completed);
                    let result = engine.report(id, report, world.now());
                    world.settle("report: applied", id, result);
                }
            }
        }
        if live == 0 {
            break;
        }
        // Let every delay, unack and visibility timeout run out, then sweep until nothing is due.
        world.clock.fetch_add(1_000, Ordering::Relaxed);
        let mut worker = Worker {
            world,
            rng: Rng(rounds),
            in_hand: Vec::new(),
            seen: BTreeMap::new(),
        };
        loop {
            match engine.sweep_once(world.now()) {
                Ok(Sweep::Empty) => break,
                Ok(Sweep::Applied { id, step, .. }) => world.owe_step(&id, &step),
                Ok(_) => {}
                Err(other) => world.violation(format!("final sweep: {other}")),
            }
            for reference in REFERENCES {
                worker.poll_named(reference);
            }
            for polled in std::mem::take(&mut worker.in_hand) {
                let report = Report::new(polled.task, ReportStatus::Completed);
                let result = engine.report(&polled.workflow, report, world.now());
                world.settle("report: applied", &polled.workflow, result);
            }
        }
    }
    for id in &ids {
        let view = engine
            .inspect(id, world.now())
            .expect("nothing holds a lock");
        world.count(match view.workflow.status() {
            WorkflowStatus::Completed => "final: COMPLETED",
            WorkflowStatus::Failed => "final: FAILED",
            WorkflowStatus::Terminated => "final: TERMINATED",
            WorkflowStatus::TimedOut | WorkflowStatus::Running | WorkflowStatus::Paused => {
                "final: other"
            }
        });
        for violation in check(&view.workflow) {
            world.violation(format!("{id} at the end: {violation}"));
        }
        if view.is_queued() || !view.workflow.status().is_terminal() {
            world.violation(format!("{id} at the end: not settled"));
        }
    }
    // Every attempt ended, so its task-queue entry left with it (polls lease entries, never
    // remove them); no operation is in flight, so no lease is held.
    let (tasks, queued, leases) = engine.store().read(|state| {
        (
            state.task_len(),
            state.decider_len(),
            state.leases().count(),
        )
    });
    if (tasks, queued, leases) != (0, 0, 0) {
        world.violation(format!(
            "at the end: {tasks} task entries, {queued} decider entries, {leases} leases left"
        ));
    }
    drain_outbox(world, &mut rng);
}

impl Worker<'_> {
    fn poll_named(&mut self, reference: &str) {
        // Each poll hides what it hands out, so this ends.
        while let Ok(Some(polled)) = self.world.engine.poll_task(reference, self.world.now()) {
            self.in_hand.push(polled);
        }
    }
}

/// Drains the outbox through the failing handler, then checks I7: owed == performed.
fn drain_outbox(world: &World, rng: &mut Rng) {
    let mut passes = 0;
    while world.engine.store().outbox_len() > 0 {
        passes += 1;
        assert!(passes < 10_000, "the outbox never drained (I7)");
        let now_ms = world
            .clock
            .fetch_add(world.engine.config().outbox_claim_ms, Ordering::Relaxed);
        run_outbox(world, rng, now_ms);
    }
    let owed: HashSet<Owed> = world.owed.lock().unwrap().iter().cloned().collect();
    let performed = world.performed.lock().unwrap();
    let missing = owed.difference(&performed).count();
    let phantom = performed.difference(&owed).count();
    if missing > 0 || phantom > 0 {
        world.violation(format!(
            "I7: {missing} owed effects never performed, {phantom} performed but not owed"
        ));
    }
    world
        .counts
        .lock()
        .unwrap()
        .insert("effects owed", owed.len() as u64);
}

/// Wall time is only reported, never relied on.
#[allow(clippy::disallowed_methods)]
fn stopwatch() -> std::time::Instant {
    std::time::Instant::now()
}

#[test]
fn stress_random_operations_keep_every_invariant() {
    let operations = env_u64("WFSTATE_STRESS_OPS", DEFAULT_OPERATIONS);
    let seed = env_u64("WFSTATE_STRESS_SEED", 0x5EED);
    let world = World::new();
    let started = stopwatch();
    let in_hand: Vec<Polled> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|n| {
                let world = &world;
                scope.spawn(move || {
                    let mut worker = Worker {
                        world,
                        rng: Rng(seed ^ (n + 1).wrapping_mul(0xA24B_AED4_963E_E407)),
                        in_hand: Vec::new(),
                        seen: BTreeMap::new(),
                    };
                    for _ in 0..operations {
                        worker.step();
                    }
                    worker.in_hand
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a worker panicked"))
            .collect()
    });
    let random_phase = started.elapsed();
    finish(&world, in_hand);

    let counts = world.counts.lock().unwrap();
    let violations = world.violations.lock().unwrap();
    let total = operations * THREADS;
    println!(
        "stress: {THREADS} threads, {total} random operations in {:.2} s ({:.0} ops/s), {} workflows, seed {seed:#x}",
        random_phase.as_secs_f64(),
        total as f64 / random_phase.as_secs_f64(),
        world.ids.lock().unwrap().len(),
    );
    for (what, count) in counts.iter() {
        println!("  {what}: {count}");
    }
    println!("  violations: {}", violations.len());
    assert!(
        violations.is_empty(),
        "violations: {:#?}",
        &violations[..violations.len().min(20)]
    );
    // Non-vacuity: the interesting paths ran.
    for path in [
        "sweep: decision committed",
        "poll: task started",
        "poll: IN_PROGRESS attempt redelivered",
        "report: applied",
        "rejected (typed)",
        "duplicate or progress",
        "terminate",
        "pause",
        "resume",
        "retry",
        "outbox: effect failed, left for retry",
        "inspection",
        "start: duplicate refused",
    ] {
        assert!(
            counts.get(path).copied().unwrap_or(0) > 0,
            "never reached: {path}"
        );
    }
}
