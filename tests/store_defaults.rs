//! The `Store` trait's default combined calls (`commit_and_queue`, `transition_and_commit`: one
//! call per queue effect, the re-read after leaving the decider queue) against `InMemoryStore`'s
//! own single-action versions: the same operations on two engines, one over `InMemoryStore` and
//! one over a store that only forwards the required methods (the path a store of an engine
//! author's own takes), must give the same results and the same workflows, decider queue, task
//! queues and outbox after every operation. Single-threaded: the two paths differ only in
//! atomicity, which `tests/loom.rs` checks on both.
//!
//! The same forwarding store, told to fail its writes or to find every version moved, shows how
//! the engine meets a store of one's own that misbehaves: a failed write is reported at once,
//! endless conflicts end in `Contention`, and nothing changes either way.

use std::sync::atomic::{AtomicU8, Ordering};

use wfstate::runtime::{
    Engine, EngineConfig, EngineError, InMemoryStore, OutboxEntry, QueuedTask, Store, StoreError,
    Sweep,
};
use wfstate::{
    AdminInput, Decision, Definition, Effect, EngineInput, NewTask, Rejection, Report,
    ReportStatus, Step, TaskDefinition, TaskId, Workflow, WorkflowId, WorkflowStatus,
};

/// Forwards every required method to `InMemoryStore`; keeps the trait's default combined calls.
/// Its compare-and-swap passes ([`PASS`]), fails as a store outage would ([`FAIL`]), or always
/// finds the version moved ([`CONFLICT`]).
#[derive(Default)]
struct Plain(InMemoryStore, AtomicU8);

const PASS: u8 = 0;
const FAIL: u8 = 1;
const CONFLICT: u8 = 2;

impl Store for Plain {
    fn insert(&self, workflow: Workflow) -> Result<(), StoreError> {
        self.0.insert(workflow)
    }
    fn load(&self, id: &WorkflowId) -> Result<std::sync::Arc<Workflow>, StoreError> {
        self.0.load(id)
    }
    fn compare_and_swap(
        &self,
        id: &WorkflowId,
        step: &Step,
    ) -> Result<std::sync::Arc<Workflow>, StoreError> {
        match self.1.load(Ordering::Relaxed) {
            FAIL => Err(StoreError::UnknownWorkflow { id: id.clone() }),
            CONFLICT => Err(StoreError::Rejected {
                id: id.clone(),
                rejection: Rejection::StaleVersion {
                    read: step.read_version(),
                    current: step.read_version() + 1,
                },
            }),
            _ => self.0.compare_and_swap(id, step),
        }
    }
    fn queue_push(&self, id: &WorkflowId, due_ms: u64) {
        self.0.queue_push(id, due_ms);
    }
    fn queue_pop(&self, now_ms: u64, unack_ms: u64) -> Option<WorkflowId> {
        self.0.queue_pop(now_ms, unack_ms)
    }
    fn queue_requeue(&self, id: &WorkflowId, due_ms: u64) -> bool {
        self.0.queue_requeue(id, due_ms)
    }
    fn queue_remove(&self, id: &WorkflowId) -> bool {
        self.0.queue_remove(id)
    }
    fn queue_due(&self, id: &WorkflowId) -> Option<u64> {
        self.0.queue_due(id)
    }
    fn queue_len(&self) -> usize {
        self.0.queue_len()
    }
    fn task_push(&self, task: QueuedTask) {
        self.0.task_push(task);
    }
    fn task_remove(&self, task: &TaskId) -> bool {
        self.0.task_remove(task)
    }
    fn task_poll(&self, reference_name: &str) -> Option<QueuedTask> {
        self.0.task_poll(reference_name)
    }
    fn task_len(&self) -> usize {
        self.0.task_len()
    }
    fn outbox_append(&self, workflow: &WorkflowId, version: u64, effects: &[Effect]) {
        self.0.outbox_append(workflow, version, effects);
    }
    fn outbox_take(&self, now_ms: u64, claim_ms: u64, max: usize) -> Vec<OutboxEntry> {
        self.0.outbox_take(now_ms, claim_ms, max)
    }
    fn outbox_acknowledge(&self, sequence: u64) -> bool {
        self.0.outbox_acknowledge(sequence)
    }
    fn outbox_len(&self) -> usize {
        self.0.outbox_len()
    }
}

const REFERENCES: [&str; 3] = ["fetch", "charge", "ship"];
const WORKFLOWS: [&str; 3] = ["w0", "w1", "w2"];

fn definition() -> Definition {
    Definition::new([
        TaskDefinition::new(REFERENCES[0]).retries(1),
        TaskDefinition::new(REFERENCES[1]).optional(),
        TaskDefinition::new(REFERENCES[2]),
    ])
}

/// splitmix64: the test needs no `rand`.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// One random operation, described by what it returned (the same text on both engines).
fn operate<S: Store>(
    engine: &Engine<S, Definition>,
    choice: u64,
    pick: u64,
    now: u64,
    sent: &mut Vec<(WorkflowId, Report)>,
) -> String {
    let id = WorkflowId::new(WORKFLOWS[(pick % 3) as usize]);
    let statuses = [
        ReportStatus::Completed,
        ReportStatus::Completed,
        ReportStatus::Failed,
        ReportStatus::InProgress,
        ReportStatus::FailedWithTerminalError,
    ];
    match choice {
        0 => format!("{:?}", engine.start(id, now)),
        1..=3 => format!("{:?}", engine.sweep_once(now)),
        4 | 5 => {
            let polled = engine.poll_task(REFERENCES[(pick % 3) as usize]);
            if let Ok(Some(polled)) = &polled {
                let status = statuses[(pick / 3 % 5) as usize];
                let report = Report::new(polled.task.clone(), status);
                sent.push((polled.workflow.clone(), report));
            }
            format!("{polled:?}")
        }
        6 | 7 => match sent.get((pick as usize) % sent.len().max(1)).cloned() {
            Some((workflow, report)) => format!("{:?}", engine.report(&workflow, report, now)),
            None => String::new(),
        },
        8 => format!("{:?}", engine.admin(&id, AdminInput::Terminate, now)),
        9 => format!("{:?}", engine.admin(&id, AdminInput::Pause, now)),
        10 => format!("{:?}", engine.admin(&id, AdminInput::Resume, now)),
        11 => format!("{:?}", engine.admin(&id, AdminInput::Retry, now)),
        12 => format!("{:?}", engine.act(&id, EngineInput::Fail, now)),
        _ => {
            let mut handler = |entry: &OutboxEntry| {
                if entry.sequence % 3 == pick % 3 {
                    Err("fails")
                } else {
                    Ok(())
                }
            };
            format!("{:?}", engine.run_outbox(&mut handler, now, 4))
        }
    }
}

/// Everything observable: each workflow, its decider-queue due time, the queue sizes.
fn observe<S: Store>(engine: &Engine<S, Definition>, now: u64) -> String {
    let mut seen = String::new();
    for name in WORKFLOWS {
        let id = WorkflowId::new(name);
        match engine.inspect(&id, now) {
            Ok(inspection) => seen.push_str(&format!("{inspection:?}\n")),
            Err(EngineError::UnknownWorkflow { .. }) => {}
            Err(error) => panic!("inspect {name}: {error}"),
        }
    }
    let store = engine.store();
    seen.push_str(&format!(
        "queue {} tasks {} outbox {}",
        store.queue_len(),
        store.task_len(),
        store.outbox_len()
    ));
    seen
}

#[test]
fn default_combined_calls_match_in_memory_store() {
    let mut operations = 0;
    let mut commits = 0;
    // Which kinds of operation committed a step at least once (sweep, poll, report, terminate,
    // pause, resume, retry, fail).
    let mut committed_kinds = std::collections::BTreeSet::new();
    for seed in 0..24 {
        let combined = Engine::new(InMemoryStore::new(), definition());
        let plain = Engine::new(Plain::default(), definition());
        let (mut sent_combined, mut sent_plain) = (Vec::new(), Vec::new());
        let mut rng = Rng(seed);
        let mut now = 0;
        for _ in 0..400 {
            let (choice, pick) = (rng.below(16), rng.below(1 << 20));
            now += rng.below(3) * 10_000;
            let left = operate(&combined, choice, pick, now, &mut sent_combined);
            let right = operate(&plain, choice, pick, now, &mut sent_plain);
            assert_eq!(
                left, right,
                "seed {seed}: operation {choice} returned differently"
            );
            assert_eq!(
                observe(&combined, now),
                observe(&plain, now),
                "seed {seed}: operation {choice} left different state"
            );
            operations += 1;
            if left.contains("outcome: Applied") || left.starts_with("Ok(Some(Polled") {
                commits += 1;
                committed_kinds.insert(match choice {
                    1..=3 => 1,
                    4 | 5 => 4,
                    6 | 7 => 6,
                    other => other,
                });
            }
        }
    }
    // Non-vacuity: a good share of operations committed, of every kind.
    assert!(commits > operations / 8, "{commits} of {operations}");
    assert_eq!(
        committed_kinds.into_iter().collect::<Vec<_>>(),
        [1, 4, 6, 8, 9, 10, 11, 12],
        "kinds of operation that committed"
    );
}

/// A write the store fails (not a version conflict) ends the sweep with the store's error at
/// once, not after the conflict retries, and the workflow stays queued for a later sweep.
#[test]
fn a_failed_write_is_reported_not_retried() {
    let engine = Engine::new(Plain::default(), definition());
    let id = WorkflowId::new("w0");
    engine.start(id.clone(), 0).unwrap();
    engine.store().1.store(FAIL, Ordering::Relaxed);
    let error = engine.sweep_once(0).unwrap_err();
    assert!(
        matches!(&error, EngineError::UnknownWorkflow { id: failed } if *failed == id),
        "{error}"
    );
    let delay = engine.config().sweep_delay_ms;
    assert_eq!(engine.store().queue_due(&id), Some(delay));
    assert_eq!(engine.store().load(&id).unwrap().version(), 0);
    engine.store().1.store(PASS, Ordering::Relaxed);
    assert!(matches!(
        engine.sweep_once(delay).unwrap(),
        Sweep::Applied { .. }
    ));
}

/// Bounded retry: a store whose every swap conflicts makes the operation give up, typed.
#[test]
fn bad_input_endless_conflicts_end_in_contention() {
    let mut config = EngineConfig::default();
    config.max_attempts = 3;
    let engine = Engine::with_config(Plain::default(), Definition::default(), config);
    engine.store().1.store(CONFLICT, Ordering::Relaxed);
    engine.start(WorkflowId::new("wf"), 0).unwrap();
    assert_eq!(
        engine.terminate(&WorkflowId::new("wf"), 0),
        Err(EngineError::Contention {
            id: WorkflowId::new("wf"),
            attempts: 3
        })
    );
    assert_eq!(
        engine
            .store()
            .0
            .load(&WorkflowId::new("wf"))
            .unwrap()
            .version(),
        0
    );
    assert_eq!(engine.locks().lease(&WorkflowId::new("wf")), None);
    // A sweep gives up the same way and keeps the workflow queued (I6a).
    assert!(matches!(
        engine.sweep_once(0),
        Err(EngineError::Contention { attempts: 3, .. })
    ));
    assert_eq!(engine.store().queue_due(&WorkflowId::new("wf")), Some(0));
}

/// A decision that leaves the workflow other than RUNNING does not make it due again: a custom
/// decider that acts on a PAUSED workflow (found through a stale entry) is not swept again at
/// once; the entry stays hidden until its pop times out, and then a sweep that finds nothing to
/// do removes it. On both store paths.
fn paused_decision<S: Store>(store: S) {
    let decider = |workflow: &Workflow| match workflow.status() {
        WorkflowStatus::Paused => match workflow.active_tasks().next() {
            Some(task) => Decision::Act(EngineInput::CancelTask {
                task: task.id.clone(),
            }),
            None => Decision::Idle,
        },
        WorkflowStatus::Running => Decision::Wait,
        _ => Decision::Idle,
    };
    let engine = Engine::new(store, decider);
    engine.start(WorkflowId::new("wf"), 0).unwrap();
    let task = NewTask::new("x", "fetch");
    engine
        .act(&WorkflowId::new("wf"), EngineInput::Schedule(task), 0)
        .unwrap();
    engine.pause(&WorkflowId::new("wf"), 0).unwrap();
    assert_eq!(engine.store().queue_due(&WorkflowId::new("wf")), None);
    // A stale entry, as a sweeper whose lease expired may leave.
    engine.store().queue_push(&WorkflowId::new("wf"), 0);
    let Sweep::Applied { step, .. } = engine.sweep_once(0).unwrap() else {
        panic!("the custom decision commits");
    };
    assert!(step.is_applied());
    assert_eq!(engine.sweep_once(0).unwrap(), Sweep::Empty);
    let unack = engine.config().unack_ms;
    assert_eq!(
        engine.store().queue_due(&WorkflowId::new("wf")),
        Some(unack)
    );
    assert!(matches!(
        engine.sweep_once(unack).unwrap(),
        Sweep::Dequeued {
            status: WorkflowStatus::Paused,
            ..
        }
    ));
    assert_eq!(engine.store().queue_due(&WorkflowId::new("wf")), None);
}

#[test]
fn a_decision_on_a_paused_workflow_does_not_wake_it() {
    paused_decision(InMemoryStore::new());
    paused_decision(Plain::default());
}
