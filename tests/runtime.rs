//! The runtime's behaviour one operation at a time (issue 4, SPEC section 7): bad input gets a
//! typed error and changes nothing; the lock, the decider queue and the outbox do what the
//! protocol needs. Each test names the rule or invariant it checks. Concurrency is checked by
//! `tests/loom.rs` and `tests/stress.rs`.

use std::convert::Infallible;
use std::sync::Arc;

use wfstate::runtime::{
    Engine, EngineConfig, EngineError, InMemoryStore, LeaseHeld, LeaseToken, LockTable, NotHolder,
    OutboxEntry, QueuedTask, Store, StoreError, Sweep,
};
use wfstate::{
    transition, AdminInput, Decision, Definition, Effect, EngineInput, NewTask, Rejection, Report,
    ReportStatus, TaskDefinition, TaskId, TaskStatus, Workflow, WorkflowId, WorkflowStatus,
};

fn id(name: &str) -> WorkflowId {
    WorkflowId::new(name)
}

fn engine() -> Engine {
    let definition = Definition::new([TaskDefinition::new("fetch"), TaskDefinition::new("store")]);
    Engine::new(InMemoryStore::new(), definition)
}

/// Started, first task scheduled and polled: RUNNING at version 2 with `fetch` IN_PROGRESS.
fn running(engine: &Engine, name: &str) -> TaskId {
    engine.start(id(name), 0).unwrap();
    assert!(matches!(
        engine.sweep_once(0).unwrap(),
        Sweep::Applied { .. }
    ));
    engine.poll_task("fetch").unwrap().expect("scheduled").task
}

/// Everything an operation could change, to compare before and after a refusal.
fn footprint(
    engine: &Engine,
    workflow: &WorkflowId,
) -> (Option<Arc<Workflow>>, Option<u64>, usize, usize) {
    let store = engine.store();
    (
        store.load(workflow).ok(),
        store.queue_due(workflow),
        store.task_len(),
        store.outbox_len(),
    )
}

// ---------------------------------------------------------------------------------------------
// Bad input: typed errors, nothing changed, no lock left behind.
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_input_duplicate_start_is_refused_and_changes_nothing() {
    let engine = engine();
    let task = running(&engine, "wf");
    let before = footprint(&engine, &id("wf"));
    assert_eq!(
        engine.start(id("wf"), 5),
        Err(EngineError::WorkflowExists { id: id("wf") })
    );
    assert_eq!(footprint(&engine, &id("wf")), before);
    assert_eq!(
        engine.locks().lease(&id("wf")),
        None,
        "the lock was released"
    );
    assert!(engine
        .store()
        .load(&id("wf"))
        .unwrap()
        .task(&task)
        .is_some());
}

#[test]
fn bad_input_unknown_workflow_is_typed_for_every_operation() {
    let engine = engine();
    let ghost = id("ghost");
    let unknown = Err(EngineError::UnknownWorkflow { id: ghost.clone() });
    let report = Report::new("t", ReportStatus::Completed);
    assert_eq!(engine.report(&ghost, report, 0), unknown);
    assert_eq!(engine.terminate(&ghost, 0), unknown);
    assert_eq!(engine.pause(&ghost, 0), unknown);
    assert_eq!(engine.resume(&ghost, 0), unknown);
    assert_eq!(engine.retry(&ghost, 0), unknown);
    assert_eq!(engine.act(&ghost, EngineInput::Complete, 0), unknown);
    assert_eq!(
        engine.inspect(&ghost, 0).map(|_| ()),
        Err(EngineError::UnknownWorkflow { id: ghost.clone() })
    );
    assert!(engine.store().is_empty());
    assert_eq!(engine.store().queue_len(), 0);
    assert_eq!(engine.locks().lease(&ghost), None, "no lock is left behind");
}

#[test]
fn bad_input_unknown_task_is_rejected_and_changes_nothing() {
    let engine = engine();
    running(&engine, "wf");
    let before = footprint(&engine, &id("wf"));
    let result = engine.report(&id("wf"), Report::new("nope", ReportStatus::Completed), 1);
    assert_eq!(
        result.unwrap_err().rejection(),
        Some(&Rejection::UnknownTask {
            task: "nope".into()
        })
    );
    assert_eq!(
        footprint(&engine, &id("wf")),
        before,
        "I4: a rejection changes nothing"
    );
}

/// I4: a step computed from a version that has moved is refused by the store.
#[test]
fn bad_input_stale_version_is_refused_by_the_store() {
    let engine = engine();
    let task = running(&engine, "wf");
    let store = engine.store();
    let read = store.load(&id("wf")).unwrap();
    let stale = transition(&read, &AdminInput::Pause.into()).unwrap();
    engine
        .report(&id("wf"), Report::new(task, ReportStatus::Completed), 1)
        .unwrap();
    let before = footprint(&engine, &id("wf"));

    let refused = store.compare_and_swap(&id("wf"), &stale).unwrap_err();
    assert!(refused.is_stale());
    assert_eq!(
        refused,
        StoreError::Rejected {
            id: id("wf"),
            rejection: Rejection::StaleVersion {
                read: 2,
                current: 3
            },
        }
    );
    assert_eq!(
        footprint(&engine, &id("wf")),
        before,
        "nothing written, nothing owed"
    );
}

#[test]
fn bad_input_foreign_step_is_refused_by_the_store() {
    let engine = engine();
    running(&engine, "wf");
    // Same version, different tasks: a step computed from another workflow.
    let other = Workflow::from_parts("other", WorkflowStatus::Running, 2, Vec::new()).unwrap();
    let mut other = other;
    let foreign = other
        .advance(&EngineInput::Schedule(wfstate::NewTask::new("x", "fetch")).into())
        .unwrap();
    let before = footprint(&engine, &id("wf"));
    assert_eq!(
        engine.store().compare_and_swap(&id("wf"), &foreign),
        Err(StoreError::Rejected {
            id: id("wf"),
            rejection: Rejection::ForeignStep
        })
    );
    assert_eq!(footprint(&engine, &id("wf")), before);
}

#[test]
fn bad_input_store_refuses_unknown_and_duplicate_workflows() {
    let store = InMemoryStore::new();
    let workflow = Workflow::new("wf");
    let step = transition(&workflow, &AdminInput::Pause.into()).unwrap();
    assert_eq!(
        store.compare_and_swap(&id("wf"), &step),
        Err(StoreError::UnknownWorkflow { id: id("wf") })
    );
    store.insert(workflow.clone()).unwrap();
    assert_eq!(
        store.insert(workflow),
        Err(StoreError::WorkflowExists { id: id("wf") })
    );
    assert_eq!(store.len(), 1);
}

#[test]
fn lock_release_with_a_wrong_token_is_refused() {
    let locks = LockTable::new();
    let (a, b) = (LeaseToken::new(1), LeaseToken::new(2));
    locks.acquire(&id("wf"), a, 10, 0).unwrap();
    assert_eq!(
        locks.release(&id("wf"), b),
        Err(NotHolder {
            id: id("wf"),
            holder: b,
            current: Some(a)
        })
    );
    assert_eq!(
        locks.lease(&id("wf")).map(|lease| lease.holder),
        Some(a),
        "nothing changed"
    );
    locks.release(&id("wf"), a).unwrap();
    assert_eq!(
        locks.release(&id("wf"), a),
        Err(NotHolder {
            id: id("wf"),
            holder: a,
            current: None
        })
    );
}

#[test]
fn lock_is_refused_while_valid_then_taken_over_after_expiry() {
    let locks = LockTable::new();
    let (a, b) = (LeaseToken::new(1), LeaseToken::new(2));
    let lease = locks.acquire(&id("wf"), a, 10, 0).unwrap();
    assert!(lease.is_valid_at(9) && !lease.is_valid_at(10));
    assert_eq!(
        locks.acquire(&id("wf"), b, 10, 9),
        Err(LeaseHeld {
            id: id("wf"),
            holder: a,
            expires_at_ms: 10
        })
    );
    // The holder renews its own lease.
    assert_eq!(
        locks.acquire(&id("wf"), a, 10, 5).unwrap().expires_at_ms,
        15
    );
    // Expired: anyone takes it over, and the old holder can no longer release it.
    assert_eq!(locks.acquire(&id("wf"), b, 10, 15).unwrap().holder, b);
    assert!(locks.release(&id("wf"), a).is_err());
    assert_eq!(locks.lease(&id("wf")).unwrap().holder, b);
}

/// SPEC section 7, I4: a holder whose lease expired cannot commit once the new holder has.
#[test]
fn an_expired_holder_cannot_commit() {
    let engine = engine();
    running(&engine, "wf");
    let late = LeaseToken::new(u64::MAX);
    let lease_ms = engine.config().lease_ms;
    engine
        .locks()
        .acquire(&id("wf"), late, lease_ms, 0)
        .unwrap();
    let read = engine.store().load(&id("wf")).unwrap();
    let pause = transition(&read, &AdminInput::Pause.into()).unwrap();
    drop(read);

    // The lease runs out; an operator takes the lock over and terminates.
    let terminated = engine.terminate(&id("wf"), lease_ms).unwrap();
    assert!(terminated.step.is_applied());
    let refused = engine
        .store()
        .compare_and_swap(&id("wf"), &pause)
        .unwrap_err();
    assert!(refused.is_stale(), "the version fenced the late write");
    assert!(engine.locks().release(&id("wf"), late).is_err());
    assert_eq!(
        engine.store().load(&id("wf")).unwrap().status(),
        WorkflowStatus::Terminated
    );
}

// ---------------------------------------------------------------------------------------------
// The protocol, one operation at a time.
// ---------------------------------------------------------------------------------------------

/// D1, I1, I7: terminate commits TERMINATED and the cancellations together; an archive that keeps
/// failing changes no status and is retried from the outbox after the claim runs out.
#[test]
fn d1_terminate_is_atomic_and_failing_effects_are_retried() {
    let engine = engine();
    let task = running(&engine, "wf");
    let terminated = engine.terminate(&id("wf"), 10).unwrap();
    let committed = engine.store().load(&id("wf")).unwrap();
    assert_eq!(committed.status(), WorkflowStatus::Terminated);
    assert_eq!(committed.task(&task).unwrap().status, TaskStatus::Canceled);
    assert_eq!(
        engine.store().queue_due(&id("wf")),
        None,
        "left the decider queue"
    );
    assert_eq!(
        engine.store().outbox_len(),
        3,
        "listeners, archive, stop the worker"
    );

    let mut failing = |_: &OutboxEntry| Err("index down");
    let run = engine.run_outbox(&mut failing, 10, 10);
    assert_eq!((run.performed, run.failures.len()), (0, 3));
    assert_eq!(
        *engine.store().load(&id("wf")).unwrap(),
        *committed,
        "no status changed"
    );
    // Claimed until 10 + claim: not taken again before.
    let claim_ms = engine.config().outbox_claim_ms;
    assert_eq!(
        engine
            .run_outbox(&mut failing, 10 + claim_ms - 1, 10)
            .failures
            .len(),
        0
    );

    let mut performed = Vec::new();
    let mut working = |entry: &OutboxEntry| -> Result<(), Infallible> {
        performed.push((entry.effect.clone(), entry.version, entry.attempts));
        Ok(())
    };
    let run = engine.run_outbox(&mut working, 10 + claim_ms, 10);
    assert_eq!(run.performed, 3);
    assert_eq!(engine.store().outbox_len(), 0);
    let version = terminated.step.new_version();
    assert_eq!(
        performed,
        [
            (
                Effect::NotifyListeners {
                    status: WorkflowStatus::Terminated
                },
                version,
                2
            ),
            (Effect::Archive, version, 2),
            (Effect::StopRunningTask { task }, version, 2),
        ]
    );
}

/// D2, I3: through the engine, a redelivered report is a duplicate, a late one a typed rejection.
#[test]
fn d2_duplicate_and_late_reports() {
    let engine = engine();
    let task = running(&engine, "wf");
    let done = Report::new(task.clone(), ReportStatus::Completed);
    assert!(engine
        .report(&id("wf"), done.clone(), 1)
        .unwrap()
        .step
        .is_applied());
    let version = engine.store().load(&id("wf")).unwrap().version();
    assert!(engine
        .report(&id("wf"), done, 2)
        .unwrap()
        .step
        .is_duplicate());
    let late = engine.report(
        &id("wf"),
        Report::new(task.clone(), ReportStatus::InProgress),
        3,
    );
    assert_eq!(
        late.unwrap_err().rejection(),
        Some(&Rejection::TaskAlreadyTerminal {
            task,
            current: TaskStatus::Completed,
            requested: TaskStatus::InProgress
        })
    );
    assert_eq!(engine.store().load(&id("wf")).unwrap().version(), version);
}

/// I6a: a sweep that pops the id but misses the lock puts it back, due at once.
#[test]
fn i6a_a_sweep_that_misses_the_lock_puts_the_id_back() {
    let engine = engine();
    engine.start(id("wf"), 0).unwrap();
    let holder = LeaseToken::new(u64::MAX);
    engine.locks().acquire(&id("wf"), holder, 1_000, 0).unwrap();
    assert_eq!(engine.sweep_once(7).unwrap(), Sweep::Busy { id: id("wf") });
    assert_eq!(engine.store().queue_due(&id("wf")), Some(7));
    engine.locks().release(&id("wf"), holder).unwrap();
    assert!(matches!(
        engine.sweep_once(7).unwrap(),
        Sweep::Applied { .. }
    ));
}

/// I6b: queued iff RUNNING, through pause, resume, terminate and retry.
#[test]
fn i6b_queue_membership_follows_running() {
    let engine = engine();
    running(&engine, "wf");
    let queued = |engine: &Engine| engine.store().queue_due(&id("wf")).is_some();
    assert!(queued(&engine));
    engine.pause(&id("wf"), 1).unwrap();
    assert!(!queued(&engine));
    assert!(engine.pause(&id("wf"), 1).unwrap().step.is_duplicate());
    engine.resume(&id("wf"), 2).unwrap();
    assert_eq!(engine.store().queue_due(&id("wf")), Some(2), "due at once");
    engine.terminate(&id("wf"), 3).unwrap();
    assert!(!queued(&engine));
    engine.retry(&id("wf"), 4).unwrap();
    assert_eq!(engine.store().queue_due(&id("wf")), Some(4));
    assert_eq!(engine.store().queue_len(), 1, "never twice");
}

/// Popping hides an id until the unack timeout; a requeue never re-adds a removed id; the queue
/// never holds an id twice.
#[test]
fn decider_queue_pop_hides_and_requeue_never_readds() {
    let store = InMemoryStore::new();
    store.queue_push(&id("a"), 5);
    store.queue_push(&id("a"), 0);
    store.queue_push(&id("b"), 0);
    assert_eq!(store.queue_len(), 2);
    assert_eq!(store.queue_pop(0, 100), Some(id("a")));
    assert_eq!(store.queue_pop(0, 100), Some(id("b")));
    assert_eq!(
        store.queue_pop(99, 100),
        None,
        "both hidden until their unack timeout"
    );
    assert_eq!(
        store.queue_due(&id("a")),
        Some(100),
        "a popped id stays in the queue"
    );
    assert_eq!(store.queue_pop(100, 100), Some(id("a")));
    assert!(store.queue_remove(&id("a")));
    assert!(!store.queue_requeue(&id("a"), 0));
    assert_eq!(store.queue_len(), 1);
    assert_eq!(store.queue_due(&id("a")), None);
}

/// After `Wait` the workflow is due after the sweep delay; a report that ends a task wakes it.
#[test]
fn a_report_that_ends_a_task_wakes_the_workflow() {
    let engine = engine();
    let task = running(&engine, "wf");
    let delay = engine.config().sweep_delay_ms;
    assert!(matches!(
        engine.sweep_once(1).unwrap(),
        Sweep::Waiting { .. }
    ));
    assert_eq!(engine.store().queue_due(&id("wf")), Some(1 + delay));
    engine
        .report(&id("wf"), Report::new(task, ReportStatus::Completed), 2)
        .unwrap();
    assert_eq!(engine.store().queue_due(&id("wf")), Some(2));
}

/// SPEC section 7: a stale entry (a terminal workflow left queued) is removed by the next sweep
/// without changing any status; an entry for an unknown workflow is removed too.
#[test]
fn sweep_removes_stale_and_unknown_entries_without_changing_status() {
    let engine = engine();
    let done = Workflow::from_parts("done", WorkflowStatus::Completed, 9, Vec::new()).unwrap();
    engine.store().insert(done.clone()).unwrap();
    engine.store().queue_push(&id("done"), 0);
    engine.store().queue_push(&id("ghost"), 0);
    assert_eq!(
        engine.sweep_once(0).unwrap(),
        Sweep::Dequeued {
            id: id("done"),
            status: WorkflowStatus::Completed,
            conflicts: 0
        }
    );
    assert_eq!(
        engine.sweep_once(0).unwrap(),
        Sweep::Unknown { id: id("ghost") }
    );
    assert_eq!(engine.sweep_once(0).unwrap(), Sweep::Empty);
    // Removed, not merely hidden by the pop.
    assert_eq!(engine.store().queue_due(&id("done")), None);
    assert_eq!(engine.store().queue_len(), 0);
    assert_eq!(*engine.store().load(&id("done")).unwrap(), done);
    assert_eq!(engine.store().outbox_len(), 0);
}

/// A decider that proposes an illegal input gets the core's typed rejection; the workflow stays
/// queued (I6a) and unchanged.
#[test]
fn a_rejected_decision_is_typed_and_keeps_the_workflow_queued() {
    let premature = |_: &Workflow| Decision::Act(EngineInput::Complete);
    let engine = Engine::new(InMemoryStore::new(), premature);
    engine.start(id("wf"), 0).unwrap();
    let schedule = EngineInput::Schedule(wfstate::NewTask::new("t", "fetch"));
    engine.act(&id("wf"), schedule, 0).unwrap();
    let result = engine.sweep_once(0);
    assert!(matches!(
        result.unwrap_err().rejection(),
        Some(Rejection::UnsettledTask { .. })
    ));
    let delay = engine.config().sweep_delay_ms;
    assert_eq!(engine.store().queue_due(&id("wf")), Some(delay));
    assert_eq!(engine.store().load(&id("wf")).unwrap().version(), 1);
}

/// Poll hands out SCHEDULED attempts as IN_PROGRESS and drops entries whose attempt ended.
#[test]
fn poll_starts_tasks_and_drops_stale_entries() {
    let engine = engine();
    engine.start(id("wf"), 0).unwrap();
    engine.sweep_once(0).unwrap();
    let task = TaskId::attempt(&id("wf"), "fetch", 0);
    engine
        .act(&id("wf"), EngineInput::CancelTask { task: task.clone() }, 1)
        .unwrap();
    assert_eq!(
        engine.store().task_len(),
        0,
        "cancelling a SCHEDULED attempt dequeues it"
    );
    // An entry that outlived its attempt (pushed again by hand) is dropped by the poll.
    engine.store().task_push(QueuedTask {
        workflow: id("wf"),
        task,
        reference_name: "fetch".into(),
    });
    assert_eq!(engine.poll_task("fetch"), Ok(None));
    assert_eq!(engine.poll_task("unknown-queue"), Ok(None));
}

#[test]
fn inspect_is_refused_while_another_operation_holds_the_lock() {
    let engine = engine();
    engine.start(id("wf"), 0).unwrap();
    let holder = LeaseToken::new(u64::MAX);
    engine.locks().acquire(&id("wf"), holder, 10, 0).unwrap();
    assert!(matches!(
        engine.inspect(&id("wf"), 5),
        Err(EngineError::Locked {
            expires_at_ms: 10,
            ..
        })
    ));
    assert!(matches!(
        engine.terminate(&id("wf"), 5),
        Err(EngineError::Locked { .. })
    ));
    let view = engine.inspect(&id("wf"), 10).unwrap();
    assert_eq!(view.queue_violation(), None);
}

#[test]
fn error_messages_carry_their_context() {
    let cases = [
        (
            EngineError::Locked {
                id: id("wf"),
                holder: LeaseToken::new(3),
                expires_at_ms: 40,
            }
            .to_string(),
            "workflow wf is locked by holder #3 until 40 ms",
        ),
        (
            EngineError::Contention {
                id: id("wf"),
                attempts: 16,
            }
            .to_string(),
            "workflow wf: 16 compare-and-swap attempts all conflicted",
        ),
        (
            StoreError::Rejected {
                id: id("wf"),
                rejection: Rejection::StaleVersion {
                    read: 2,
                    current: 3,
                },
            }
            .to_string(),
            "workflow wf: stale version: step read 2, workflow is at 3",
        ),
        (
            NotHolder {
                id: id("wf"),
                holder: LeaseToken::new(1),
                current: None,
            }
            .to_string(),
            "holder #1 does not hold the lock on workflow wf",
        ),
    ];
    for (message, expected) in cases {
        assert_eq!(message, expected);
    }
}

/// The engine is shared between threads by reference: it must stay `Send + Sync`.
#[test]
fn the_engine_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Engine>();
    shareable::<Engine<InMemoryStore, fn(&Workflow) -> Decision>>();
    shareable::<LockTable>();
}

/// A status-only step (pause) computed from one workflow must not apply to another workflow that
/// happens to have the same status and version (the store is told the id separately).
#[test]
fn a_step_from_another_workflow_with_the_same_version_is_refused() {
    let engine = engine();
    engine.start(id("a"), 0).unwrap();
    engine.start(id("b"), 0).unwrap();
    let a = engine.store().load(&id("a")).unwrap();
    let pause_a = transition(&a, &AdminInput::Pause.into()).unwrap();
    drop(a);
    let refused = engine.store().compare_and_swap(&id("b"), &pause_a);
    assert!(
        refused.is_err(),
        "a step of workflow a was applied to workflow b"
    );
    assert_eq!(
        engine.store().load(&id("b")).unwrap().status(),
        WorkflowStatus::Running
    );
}

/// I6 as an inspection reports it, on views built by hand (the engine never produces the bad
/// ones with nothing in flight).
#[test]
fn inspection_reports_each_queue_violation() {
    let view = |status, due_ms| wfstate::runtime::Inspection {
        workflow: Arc::new(Workflow::from_parts("wf", status, 1, vec![]).unwrap()),
        due_ms,
    };
    let cases = [
        (WorkflowStatus::Running, Some(0), None),
        (WorkflowStatus::Running, None, Some(wfstate::Invariant::I6a)),
        (WorkflowStatus::Completed, None, None),
        (
            WorkflowStatus::Completed,
            Some(5),
            Some(wfstate::Invariant::I6b),
        ),
        (
            WorkflowStatus::Paused,
            Some(5),
            Some(wfstate::Invariant::I6b),
        ),
    ];
    for (status, due, expected) in cases {
        let inspection = view(status, due);
        assert_eq!(inspection.is_queued(), due.is_some());
        assert_eq!(
            inspection.queue_violation(),
            expected,
            "{status} due {due:?}"
        );
    }
}

#[test]
fn the_engine_keeps_its_settings() {
    let mut config = EngineConfig::default();
    config.lease_ms = 7;
    config.sweep_delay_ms = 11;
    let engine = Engine::with_config(InMemoryStore::new(), Definition::new([]), config.clone());
    assert_eq!(engine.config(), &config);
    assert_ne!(engine.config(), &EngineConfig::default());
}

#[test]
fn lease_tokens_carry_their_value() {
    for value in [0, 2, u64::MAX] {
        assert_eq!(LeaseToken::new(value).get(), value);
        assert_eq!(LeaseToken::new(value).to_string(), format!("#{value}"));
    }
}

/// A requeue takes a fresh place in the queue: two workflows due at the same time are both
/// popped, in the order they became due there.
#[test]
fn requeued_entries_never_overwrite_another() {
    let store = InMemoryStore::new();
    store.queue_push(&id("a"), 0);
    store.queue_push(&id("b"), 7);
    assert!(store.queue_requeue(&id("a"), 7));
    assert_eq!(store.queue_len(), 2);
    assert_eq!(store.queue_pop(7, 100), Some(id("b")));
    assert_eq!(store.queue_pop(7, 100), Some(id("a")));
    assert_eq!(store.queue_pop(7, 100), None);
}

/// A retry that re-attempts several failed tasks queues each new attempt under its own reference
/// name.
#[test]
fn retried_attempts_wait_in_their_own_task_queues() {
    let engine = engine();
    engine.start(id("wf"), 0).unwrap();
    for reference in ["fetch", "store"] {
        let task = NewTask::new(format!("{reference}-0"), reference);
        engine
            .act(&id("wf"), EngineInput::Schedule(task), 0)
            .unwrap();
    }
    assert_eq!(engine.store().task_len(), 2);
    for reference in ["fetch", "store"] {
        let polled = engine.poll_task(reference).unwrap().expect("scheduled");
        engine
            .report(&id("wf"), Report::new(polled.task, ReportStatus::Failed), 0)
            .unwrap();
    }
    assert_eq!(engine.store().task_len(), 0);
    engine.act(&id("wf"), EngineInput::Fail, 0).unwrap();
    engine.retry(&id("wf"), 0).unwrap();
    assert_eq!(engine.store().task_len(), 2);
    for reference in ["fetch", "store"] {
        let polled = engine.poll_task(reference).unwrap().expect("retried");
        assert_eq!(polled.reference_name, reference);
        let workflow = engine.store().load(&id("wf")).unwrap();
        let attempt = workflow.task(&polled.task).expect("its attempt");
        assert_eq!(
            (attempt.reference_name.as_str(), attempt.retry_count),
            (reference, 1)
        );
    }
}

#[test]
fn the_store_counts_its_workflows() {
    let store = InMemoryStore::new();
    assert!(store.is_empty());
    store.insert(Workflow::new("wf")).unwrap();
    assert_eq!(store.len(), 1);
    assert!(!store.is_empty());
}

/// A custom decider's `Idle` on a RUNNING workflow, or a decision that is already true (a
/// duplicate), is a wait: nothing is committed and the workflow stays queued (I6a), due after
/// the sweep delay.
#[test]
fn idle_or_duplicate_decisions_on_a_running_workflow_wait() {
    let idle = Engine::new(InMemoryStore::new(), |_: &Workflow| Decision::Idle);
    idle.start(id("wf"), 0).unwrap();
    assert_eq!(
        idle.sweep_once(0).unwrap(),
        Sweep::Waiting {
            id: id("wf"),
            conflicts: 0
        }
    );
    let delay = idle.config().sweep_delay_ms;
    assert_eq!(idle.store().queue_due(&id("wf")), Some(delay));

    // Always the same schedule: the first sweep commits it, the second finds it a duplicate.
    let same = Engine::new(InMemoryStore::new(), |_: &Workflow| {
        Decision::Act(EngineInput::Schedule(NewTask::new("x", "fetch")))
    });
    same.start(id("wf"), 0).unwrap();
    assert!(matches!(same.sweep_once(0).unwrap(), Sweep::Applied { .. }));
    assert_eq!(
        same.sweep_once(0).unwrap(),
        Sweep::Waiting {
            id: id("wf"),
            conflicts: 0
        }
    );
    assert_eq!(same.store().load(&id("wf")).unwrap().version(), 1);
    assert_eq!(same.store().queue_due(&id("wf")), Some(delay));
}

#[test]
fn task_queue_and_outbox_calls_report_what_they_did() {
    let store = InMemoryStore::new();
    let queued = QueuedTask {
        workflow: id("wf"),
        task: TaskId::new("x"),
        reference_name: "fetch".into(),
    };
    store.task_push(queued.clone());
    assert_eq!(store.task_len(), 1);
    assert!(store.task_remove(&queued.task));
    assert!(!store.task_remove(&queued.task));
    assert_eq!(store.task_len(), 0);
    assert_eq!(store.task_poll("fetch"), None);

    store.outbox_append(&id("wf"), 4, &[Effect::Archive, Effect::Archive]);
    assert_eq!(store.outbox_len(), 2);
    let taken = store.outbox_take(0, 10, 8);
    assert_eq!(
        taken
            .iter()
            .map(|entry| (entry.version, &entry.effect))
            .collect::<Vec<_>>(),
        [(4, &Effect::Archive), (4, &Effect::Archive)]
    );
}
