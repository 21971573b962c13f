//! Runtime throughput (issue 4): operations per second of a report/sweep mix on 1 and 2 threads,
//! the validated runtime against unchecked baselines, in the same run.
//!
//! Every thread runs the same driver loop on every implementation: sweep once (if nothing is
//! due, start a new workflow instead), then poll every task queue and report each polled task
//! COMPLETED. Workflows have three tasks, so one workflow's life is 11 operations: a start,
//! four sweeps (three schedules and the completion), three polls and three reports; under
//! contention there are also sweeps that find the workflow busy or waiting. A sweep counts one (an
//! empty sweep and the start that follows count one together), a poll that hands out a task and
//! its report two; an empty poll counts nothing, though its time does.
//!
//! - `validated`: `wfstate::runtime::Engine` over `InMemoryStore` with the reference decider:
//!   lease lock per sweep, versioned compare-and-swap for every write, effects as data, queue
//!   effects before unlock, post-commit effects through the outbox (drained every 64 loop turns
//!   with a no-op handler, and counted in the time).
//! - `baseline`: Conductor's model without wfstate's validation: a `Mutex<HashMap>` of workflows
//!   whose statuses are written blind (no transition check, no version, no effects, no outbox),
//!   with the same infrastructure as `validated`, reached through the same store calls: a
//!   `StoreState` (the state `InMemoryStore` wraps) behind one mutex, each call one critical
//!   section as in `InMemoryStore`. The sweeper pops with `Call::PopDecider` and holds the lease
//!   (`Call::Acquire` / `Call::Release`) while it decides, as Conductor's sweeper does; workers
//!   poll with `Call::PollTask`. Its queue writes (enter the decider queue at start, push a
//!   scheduled task, leave or wake the decider queue, drop an ended attempt) are
//!   `StoreState::push_to_decider` and `StoreState::apply_plan` with a plan it writes itself:
//!   the contract has no call that writes a queue without a validated commit, which is the point
//!   of the contract. The difference between the two is what validation costs. The target
//!   (validated ≥ half the baseline) is measured against it.
//! - `bare`: for reference only, the least a blind engine can do: the same map, a `VecDeque`
//!   decider queue without due times or deduplication, `VecDeque` task queues, no lock.
//!
//! Run: `cargo bench --bench runtime` (see `docs/performance.md`). `WFSTATE_BENCH_OPS` sets the
//! operations per thread and run (default 200,000). The three implementations run in turn within
//! each of 7 rounds, so a change in machine load affects them alike; each figure is the median.
//! `WFSTATE_BENCH_ONLY=validated` (or `baseline`, `bare`) runs one side alone, and
//! `WFSTATE_BENCH_THREADS=1` (or `2`) one thread count, for a profiler.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wfstate::runtime::{
    Call, DeciderPlan, Engine, EngineConfig, InMemoryStore, OutboxEntry, QueuePlan, QueuedTask,
    Reply, StoreState, Sweep,
};
use wfstate::{
    Definition, Report, ReportStatus, Task, TaskDefinition, TaskId, TaskStatus, WorkflowId,
    WorkflowStatus,
};

const REFERENCES: [&str; 3] = ["fetch", "charge", "ship"];
const RUNS: usize = 7;

/// What the driver loop needs from an implementation.
trait Runtime: Sync {
    fn start(&self, id: WorkflowId);
    /// One sweep; `false` when nothing was due.
    fn sweep(&self) -> bool;
    fn poll(&self, reference: &str) -> Option<(WorkflowId, TaskId)>;
    fn complete(&self, workflow: &WorkflowId, task: TaskId);
    /// Perform owed post-commit effects (the baseline owes none).
    fn run_effects(&self);
}

struct Validated(Engine);

impl Validated {
    fn new() -> Self {
        let definition = Definition::new(REFERENCES.map(TaskDefinition::new));
        let mut config = EngineConfig::default();
        config.sweep_delay_ms = 0;
        Validated(Engine::with_config(
            InMemoryStore::new(),
            definition,
            config,
        ))
    }
}

/// The clock is not part of what is measured: every operation runs at logical time 0.
const NOW_MS: u64 = 0;

impl Runtime for Validated {
    fn start(&self, id: WorkflowId) {
        self.0.start(id, NOW_MS).expect("fresh id");
    }

    fn sweep(&self) -> bool {
        !matches!(self.0.sweep_once(NOW_MS), Ok(Sweep::Empty))
    }

    fn poll(&self, reference: &str) -> Option<(WorkflowId, TaskId)> {
        let polled = self.0.poll_task(reference, NOW_MS).ok()??;
        Some((polled.workflow, polled.task))
    }

    fn complete(&self, workflow: &WorkflowId, task: TaskId) {
        let report = Report::new(task, ReportStatus::Completed);
        black_box(
            self.0
                .report(workflow, report, NOW_MS)
                .expect("legal report"),
        );
    }

    fn run_effects(&self) {
        let mut handler = |entry: &OutboxEntry| -> Result<(), Infallible> {
            black_box(entry);
            Ok(())
        };
        while self.0.run_outbox(&mut handler, NOW_MS, 64).performed > 0 {}
    }
}

/// Blind workflow records: statuses written without any check.
#[derive(Default)]
struct BlindWorkflows(Mutex<HashMap<WorkflowId, BlindWorkflow>>);

struct BlindWorkflow {
    status: WorkflowStatus,
    tasks: Vec<Task>,
}

/// The baseline's decision, the same linear rule as `wfstate::decide` for this mix.
enum Blind {
    Schedule(&'static str),
    Wait,
    Complete,
}

impl BlindWorkflows {
    fn insert(&self, id: WorkflowId) {
        let workflow = BlindWorkflow {
            status: WorkflowStatus::Running,
            tasks: Vec::new(),
        };
        self.0.lock().unwrap().insert(id, workflow);
    }

    /// Decides and writes blind; returns the task to queue, and whether the workflow still runs.
    fn decide_and_write(&self, id: &WorkflowId) -> (Option<(&'static str, TaskId)>, bool) {
        let mut workflows = self.0.lock().unwrap();
        let workflow = workflows.get_mut(id).expect("known workflow");
        match blind_decide(workflow) {
            Blind::Schedule(reference) => {
                let task = TaskId::attempt(id, reference, 0);
                workflow.tasks.push(Task {
                    id: task.clone(),
                    reference_name: reference.into(),
                    status: TaskStatus::Scheduled,
                    retry_count: 0,
                    iteration: 0,
                    optional: false,
                });
                (Some((reference, task)), true)
            }
            Blind::Wait => (None, true),
            Blind::Complete => {
                workflow.status = WorkflowStatus::Completed;
                (None, false)
            }
        }
    }

    fn write(&self, id: &WorkflowId, task: &TaskId, status: TaskStatus) -> bool {
        let mut workflows = self.0.lock().unwrap();
        let found = workflows
            .get_mut(id)
            .and_then(|workflow| workflow.tasks.iter_mut().find(|t| t.id == *task));
        found.map(|blind| blind.status = status).is_some()
    }
}

fn blind_decide(workflow: &BlindWorkflow) -> Blind {
    for reference in REFERENCES {
        let latest = workflow
            .tasks
            .iter()
            .rev()
            .find(|task| task.reference_name == reference);
        match latest.map(|task| task.status) {
            None => return Blind::Schedule(reference),
            Some(TaskStatus::Completed) => continue,
            Some(_) => return Blind::Wait,
        }
    }
    Blind::Complete
}

/// Blind writes over the runtime's own store state: its decider queue, leases and task queues.
struct Baseline {
    workflows: BlindWorkflows,
    store: Mutex<StoreState>,
    /// Only a source of lease tokens (`LeaseToken` has no public constructor): its `token()` is
    /// the one atomic increment the validated engine pays per locked operation.
    tokens: Engine,
}

impl Baseline {
    fn new() -> Self {
        let definition = Definition::new(REFERENCES.map(TaskDefinition::new));
        Baseline {
            workflows: BlindWorkflows::default(),
            store: Mutex::new(StoreState::new()),
            tokens: Engine::new(InMemoryStore::new(), definition),
        }
    }

    /// One store call, one critical section (as `InMemoryStore::call`).
    fn call(&self, call: Call<'_>) -> Reply {
        self.store.lock().unwrap().execute(call)
    }

    /// Queue writes no store call makes without a validated commit.
    fn apply(&self, id: &WorkflowId, plan: &QueuePlan, status: WorkflowStatus) {
        let mut store = self.store.lock().unwrap();
        store.apply_plan(id, plan, status, NOW_MS);
    }
}

const LEASE_MS: u64 = 60_000;
const UNACK_MS: u64 = 60_000;
const VISIBILITY_MS: u64 = 60_000;

impl Runtime for Baseline {
    fn start(&self, id: WorkflowId) {
        self.workflows.insert(id.clone());
        self.store.lock().unwrap().push_to_decider(&id, NOW_MS);
    }

    fn sweep(&self) -> bool {
        let token = self.tokens.token();
        let popped = self.call(Call::PopDecider {
            token,
            now_ms: NOW_MS,
            unack_ms: UNACK_MS,
        });
        let Reply::Popped(Some(id)) = popped else {
            return false;
        };
        let acquire = Call::Acquire {
            id: &id,
            token,
            lease_ms: LEASE_MS,
            now_ms: NOW_MS,
        };
        if !matches!(self.call(acquire), Reply::Acquired(Ok(_))) {
            let due_ms = NOW_MS;
            self.call(Call::HandBack {
                id: &id,
                token,
                due_ms,
            });
            return true;
        }
        let (task, running) = self.workflows.decide_and_write(&id);
        let plan = QueuePlan {
            decider: if running {
                DeciderPlan::Wake
            } else {
                DeciderPlan::Leave
            },
            remove_tasks: Vec::new(),
            push_tasks: task
                .map(|(reference, task)| QueuedTask {
                    workflow: id.clone(),
                    task,
                    reference_name: reference.into(),
                })
                .into_iter()
                .collect(),
        };
        let status = if running {
            WorkflowStatus::Running
        } else {
            WorkflowStatus::Completed
        };
        self.apply(&id, &plan, status);
        self.call(Call::Release { id: &id, token });
        true
    }

    fn poll(&self, reference: &str) -> Option<(WorkflowId, TaskId)> {
        let polled = self.call(Call::PollTask {
            reference_name: reference,
            now_ms: NOW_MS,
            visibility_ms: VISIBILITY_MS,
        });
        let Reply::Task(Some(queued)) = polled else {
            return None;
        };
        self.workflows
            .write(&queued.workflow, &queued.task, TaskStatus::InProgress);
        Some((queued.workflow, queued.task))
    }

    fn complete(&self, workflow: &WorkflowId, task: TaskId) {
        black_box(self.workflows.write(workflow, &task, TaskStatus::Completed));
        // The attempt ended: its entry leaves the task queue and the workflow is due again, as
        // a validated report's commit does (Conductor's task update pushes it to the decider).
        let plan = QueuePlan {
            decider: DeciderPlan::Wake,
            remove_tasks: vec![task],
            push_tasks: Vec::new(),
        };
        self.apply(workflow, &plan, WorkflowStatus::Running);
    }

    fn run_effects(&self) {}
}

/// The least a blind engine can do: no lock, `VecDeque` queues.
#[derive(Default)]
struct Bare {
    workflows: BlindWorkflows,
    decider: Mutex<VecDeque<WorkflowId>>,
    tasks: Mutex<HashMap<&'static str, VecDeque<(WorkflowId, TaskId)>>>,
}

impl Runtime for Bare {
    fn start(&self, id: WorkflowId) {
        self.workflows.insert(id.clone());
        self.decider.lock().unwrap().push_back(id);
    }

    fn sweep(&self) -> bool {
        let Some(id) = self.decider.lock().unwrap().pop_front() else {
            return false;
        };
        let (task, running) = self.workflows.decide_and_write(&id);
        if let Some((reference, task)) = task {
            let mut queues = self.tasks.lock().unwrap();
            queues
                .entry(reference)
                .or_default()
                .push_back((id.clone(), task));
        }
        if running {
            self.decider.lock().unwrap().push_back(id);
        }
        true
    }

    fn poll(&self, reference: &str) -> Option<(WorkflowId, TaskId)> {
        let (workflow, task) = self.tasks.lock().unwrap().get_mut(reference)?.pop_front()?;
        self.workflows
            .write(&workflow, &task, TaskStatus::InProgress);
        Some((workflow, task))
    }

    fn complete(&self, workflow: &WorkflowId, task: TaskId) {
        black_box(self.workflows.write(workflow, &task, TaskStatus::Completed));
    }

    fn run_effects(&self) {}
}

/// One thread's share: `operations` operations of the mix. Returns how many it performed.
fn drive(runtime: &impl Runtime, thread: usize, operations: u64) -> u64 {
    let mut performed = 0;
    let mut started = 0u64;
    let mut turns = 0u64;
    while performed < operations {
        if !runtime.sweep() {
            runtime.start(WorkflowId::new(format!("wf-{thread}-{started}")));
            started += 1;
        }
        performed += 1;
        for reference in REFERENCES {
            while let Some((workflow, task)) = runtime.poll(reference) {
                runtime.complete(&workflow, task);
                performed += 2;
            }
        }
        turns += 1;
        if turns % 64 == 0 {
            runtime.run_effects();
        }
    }
    runtime.run_effects();
    performed
}

/// Wall time of one run; the clock is read only here (the runtime itself never reads one).
#[allow(clippy::disallowed_methods)]
fn timed(f: impl FnOnce() -> u64) -> (u64, Duration) {
    let started = Instant::now();
    let operations = f();
    (operations, started.elapsed())
}

/// One run: `threads` threads each drive `operations` operations; operations per second.
fn run_once<R: Runtime>(make: impl Fn() -> R, threads: usize, operations: u64) -> f64 {
    let runtime = make();
    let runtime = &runtime;
    let (performed, elapsed) = timed(|| {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|thread| scope.spawn(move || drive(runtime, thread, operations)))
                .collect();
            workers.into_iter().map(|w| w.join().expect("driver")).sum()
        })
    });
    performed as f64 / elapsed.as_secs_f64()
}

fn median(mut rates: Vec<f64>) -> f64 {
    if rates.is_empty() {
        return f64::NAN;
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn main() {
    let operations = std::env::var("WFSTATE_BENCH_OPS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(200_000);
    println!(
        "report/sweep mix, {operations} operations per thread per run, median of {RUNS} rounds"
    );
    println!("| threads | bare (ops/s) | baseline (ops/s) | validated (ops/s) | validated / baseline | validated / bare |");
    println!("|---|---|---|---|---|---|");
    let only = std::env::var("WFSTATE_BENCH_ONLY").unwrap_or_default();
    let runs = |name: &str| only.is_empty() || only == name;
    let counts: Vec<usize> = match std::env::var("WFSTATE_BENCH_THREADS") {
        Ok(threads) => threads.parse().into_iter().collect(),
        Err(_) => vec![1, 2],
    };
    for threads in counts {
        let (mut bare, mut baseline, mut validated) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..RUNS {
            if runs("bare") {
                bare.push(run_once(Bare::default, threads, operations));
            }
            if runs("baseline") {
                baseline.push(run_once(Baseline::new, threads, operations));
            }
            if runs("validated") {
                validated.push(run_once(Validated::new, threads, operations));
            }
        }
        let (bare, baseline, validated) = (median(bare), median(baseline), median(validated));
        println!(
            "| {threads} | {bare:.0} | {baseline:.0} | {validated:.0} | {:.2} | {:.2} |",
            validated / baseline,
            validated / bare
        );
    }
}
