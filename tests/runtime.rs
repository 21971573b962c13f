//! The runtime's behaviour one operation at a time (issue 4, SPEC section 7): bad input gets a
//! typed error and changes nothing; leases, the decider queue, task queues and the outbox do what
//! the protocol needs. Leases and queues are store calls (SPEC section 7.2), so what the old lock
//! table showed is checked here through the store contract (`Store::call`, `StoreState`). Each
//! test names the rule or invariant it checks. Concurrency is checked by `tests/loom.rs` and
//! `tests/stress.rs`; store failures by `tests/store_failures.rs`.

use std::convert::Infallible;
use std::sync::Arc;

use wfstate::runtime::{
    AdminError, Call, CallFailed, CallKind, CommitReply, Committer, DeciderPlan, Engine,
    EngineConfig, InMemoryStore, InspectError, Lease, LeaseToken, OutboxEntry, QueuePlan,
    QueuedTask, Receipt, Reply, ReportError, SessionCall, StartError, Store, StoreFailure,
    StoreState, Sweep, SweepError,
};
use wfstate::{
    transition, AdminInput, Decision, Definition, Effect, EngineInput, Input, NewTask, Rejection,
    Report, ReportStatus, Step, TaskDefinition, TaskId, TaskStatus, Workflow, WorkflowId,
    WorkflowStatus,
};

fn id(name: &str) -> WorkflowId {
    WorkflowId::new(name)
}

fn definition() -> Definition {
    Definition::new([TaskDefinition::new("fetch"), TaskDefinition::new("store")])
}

fn engine() -> Engine {
    Engine::new(InMemoryStore::new(), definition())
}

/// A lease token of an engine other than any the test drives: another process's operation.
fn foreign_token() -> LeaseToken {
    engine().token()
}

/// Started, first task scheduled and polled: RUNNING at version 2 with `fetch` IN_PROGRESS.
fn running(engine: &Engine, name: &str) -> TaskId {
    engine.start(id(name), 0).unwrap();
    assert!(matches!(
        engine.sweep_once(0).unwrap(),
        Sweep::Applied { .. }
    ));
    engine
        .poll_task("fetch", 0)
        .unwrap()
        .expect("scheduled")
        .task
}

fn load(engine: &Engine, workflow: &WorkflowId) -> Arc<Workflow> {
    engine.store().workflow(workflow).expect("stored")
}

fn due(engine: &Engine, workflow: &WorkflowId) -> Option<u64> {
    engine.store().read(|state| state.decider_due(workflow))
}

fn lease(engine: &Engine, workflow: &WorkflowId) -> Option<Lease> {
    engine.store().read(|state| state.lease(workflow))
}

/// Everything an operation could change, to compare before and after a refusal.
type Footprint = (
    Option<Arc<Workflow>>,
    Option<u64>,
    usize,
    usize,
    Option<Lease>,
);

fn footprint(engine: &Engine, workflow: &WorkflowId) -> Footprint {
    engine.store().read(|state| {
        (
            state.workflow(workflow).cloned(),
            state.decider_due(workflow),
            state.task_len(),
            state.outbox_len(),
            state.lease(workflow),
        )
    })
}

/// Commits `step` by hand, with the queue plan an operation of `committer` would use.
fn commit(store: &impl Store, workflow: &WorkflowId, step: &Step, committer: Committer) -> Reply {
    let plan = QueuePlan::of(workflow, step, committer);
    let call = Call::Commit {
        id: workflow,
        step,
        plan: &plan,
        now_ms: 0,
    };
    store.call(call).expect("in memory")
}

fn acquire(
    store: &impl Store,
    workflow: &WorkflowId,
    token: LeaseToken,
    lease_ms: u64,
    now_ms: u64,
) -> Reply {
    let call = Call::Acquire {
        id: workflow,
        token,
        lease_ms,
        now_ms,
    };
    store.call(call).expect("in memory")
}

fn release(store: &impl Store, workflow: &WorkflowId, token: LeaseToken) -> Reply {
    let call = Call::Release {
        id: workflow,
        token,
    };
    store.call(call).expect("in memory")
}

fn pop(state: &mut StoreState, token: LeaseToken, now_ms: u64, unack_ms: u64) -> Reply {
    state.execute(Call::PopDecider {
        token,
        now_ms,
        unack_ms,
    })
}

// ---------------------------------------------------------------------------------------------
// Bad input: typed errors, nothing changed, no lease left behind.
// ---------------------------------------------------------------------------------------------

/// Start is one atomic insert that also enters the decider queue: no lock is taken, and an id in
/// use is refused with nothing changed.
#[test]
fn bad_input_duplicate_start_is_refused_and_changes_nothing() {
    let engine = engine();
    let task = running(&engine, "wf");
    let before = footprint(&engine, &id("wf"));
    assert_eq!(
        engine.start(id("wf"), 5),
        Err(StartError::WorkflowExists { id: id("wf") })
    );
    assert_eq!(footprint(&engine, &id("wf")), before);
    assert_eq!(
        engine.store().read(|state| state.leases().count()),
        0,
        "start takes no lease, and the sweep released its own"
    );
    assert!(load(&engine, &id("wf")).task(&task).is_some());
}

/// A duplicate start is refused as a duplicate even while another operation holds the
/// workflow's lease: start never waits for the lock (it used to report `Locked`).
#[test]
fn bad_input_duplicate_start_while_locked_is_still_a_duplicate() {
    let engine = engine();
    engine.start(id("wf"), 0).unwrap();
    let holder = foreign_token();
    assert!(matches!(
        acquire(engine.store(), &id("wf"), holder, 1_000, 0),
        Reply::Acquired(Ok(_))
    ));
    assert_eq!(
        engine.start(id("wf"), 1),
        Err(StartError::WorkflowExists { id: id("wf") })
    );
    assert_eq!(lease(&engine, &id("wf")).map(|l| l.holder), Some(holder));
}

#[test]
fn bad_input_unknown_workflow_is_typed_for_every_operation() {
    let engine = engine();
    let ghost = id("ghost");
    let admin_unknown = Err(AdminError::UnknownWorkflow { id: ghost.clone() });
    let report = Report::new("t", ReportStatus::Completed);
    assert_eq!(
        engine.report(&ghost, report, 0),
        Err(ReportError::UnknownWorkflow { id: ghost.clone() })
    );
    assert_eq!(engine.terminate(&ghost, 0), admin_unknown);
    assert_eq!(engine.pause(&ghost, 0), admin_unknown);
    assert_eq!(engine.resume(&ghost, 0), admin_unknown);
    assert_eq!(engine.retry(&ghost, 0), admin_unknown);
    assert_eq!(engine.act(&ghost, EngineInput::Complete, 0), admin_unknown);
    assert_eq!(
        engine.inspect(&ghost, 0).map(|_| ()),
        Err(InspectError::UnknownWorkflow { id: ghost.clone() })
    );
    assert!(engine.store().is_empty());
    assert_eq!(engine.store().decider_len(), 0);
    assert_eq!(lease(&engine, &ghost), None, "no lease is left behind");
}

/// I4: a rejected report changes nothing.
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

/// I4: a step computed from a version that has moved is refused by the store's commit.
#[test]
fn bad_input_stale_version_is_refused_by_the_store() {
    let engine = engine();
    let task = running(&engine, "wf");
    let read = load(&engine, &id("wf"));
    let stale = transition(&read, &AdminInput::Pause.into()).unwrap();
    engine
        .report(&id("wf"), Report::new(task, ReportStatus::Completed), 1)
        .unwrap();
    let before = footprint(&engine, &id("wf"));

    assert_eq!(
        commit(engine.store(), &id("wf"), &stale, Committer::Caller),
        Reply::Committed(CommitReply::Stale { current: 3 })
    );
    assert_eq!(
        footprint(&engine, &id("wf")),
        before,
        "nothing written, nothing owed, no queue moved"
    );
}

/// I4: a step computed from another workflow at the same version (different tasks) is refused.
#[test]
fn bad_input_foreign_step_is_refused_by_the_store() {
    let engine = engine();
    running(&engine, "wf");
    // Same version, different tasks: a step computed from another workflow.
    let mut other = Workflow::from_parts("other", WorkflowStatus::Running, 2, Vec::new()).unwrap();
    let foreign = other
        .advance(&EngineInput::Schedule(NewTask::new("x", "fetch")).into())
        .unwrap();
    let before = footprint(&engine, &id("wf"));
    assert_eq!(
        commit(engine.store(), &id("wf"), &foreign, Committer::Caller),
        Reply::Committed(CommitReply::Stale { current: 2 }),
        "refused although the version matches"
    );
    assert_eq!(footprint(&engine, &id("wf")), before);
}

#[test]
fn bad_input_store_refuses_unknown_and_duplicate_workflows() {
    let store = InMemoryStore::new();
    let workflow = Workflow::new("wf");
    let step = transition(&workflow, &AdminInput::Pause.into()).unwrap();
    assert_eq!(
        commit(&store, &id("wf"), &step, Committer::Caller),
        Reply::Committed(CommitReply::Unknown)
    );
    let insert = Call::Insert {
        workflow: &workflow,
        now_ms: 0,
    };
    assert_eq!(store.call(insert), Ok(Reply::Inserted(true)));
    assert_eq!(store.call(insert), Ok(Reply::Inserted(false)));
    assert_eq!(store.len(), 1);
    assert_eq!(store.decider_len(), 1, "inserted and queued, once");
    assert_eq!(
        commit(&store, &id("wf"), &step, Committer::Caller),
        Reply::Committed(CommitReply::Done(Receipt {
            version: 1,
            status: WorkflowStatus::Paused
        }))
    );
}

/// SPEC 7.2: a lease is released only by the token that holds it.
#[test]
fn lease_release_with_a_wrong_token_is_refused() {
    let store = InMemoryStore::new();
    let (a, b) = (foreign_token(), foreign_token());
    assert_ne!(a, b);
    assert!(matches!(
        acquire(&store, &id("wf"), a, 10, 0),
        Reply::Acquired(Ok(_))
    ));
    assert_eq!(release(&store, &id("wf"), b), Reply::Released(false));
    assert_eq!(
        store.read(|state| state.lease(&id("wf"))).map(|l| l.holder),
        Some(a),
        "nothing changed"
    );
    assert_eq!(release(&store, &id("wf"), a), Reply::Released(true));
    assert_eq!(store.read(|state| state.lease(&id("wf"))), None);
    assert_eq!(release(&store, &id("wf"), a), Reply::Released(false));
}

/// SPEC 7.2: a valid lease refuses other tokens, its holder renews it, and once expired anyone
/// takes it over; the old holder can then no longer release it.
#[test]
fn lease_is_refused_while_valid_then_taken_over_after_expiry() {
    let store = InMemoryStore::new();
    let (a, b) = (foreign_token(), foreign_token());
    let Reply::Acquired(Ok(granted)) = acquire(&store, &id("wf"), a, 10, 0) else {
        panic!("a free lease is granted");
    };
    assert_eq!(
        granted,
        Lease {
            holder: a,
            expires_at_ms: 10
        }
    );
    assert!(granted.is_valid_at(9) && !granted.is_valid_at(10));
    assert_eq!(
        acquire(&store, &id("wf"), b, 10, 9),
        Reply::Acquired(Err(granted))
    );
    // The holder renews its own lease.
    let Reply::Acquired(Ok(renewed)) = acquire(&store, &id("wf"), a, 10, 5) else {
        panic!("the holder renews");
    };
    assert_eq!(renewed.expires_at_ms, 15);
    // Expired: anyone takes it over, and the old holder can no longer release it.
    assert!(matches!(
        acquire(&store, &id("wf"), b, 10, 15),
        Reply::Acquired(Ok(Lease { holder, .. })) if holder == b
    ));
    assert_eq!(release(&store, &id("wf"), a), Reply::Released(false));
    assert_eq!(
        store.read(|state| state.lease(&id("wf"))).map(|l| l.holder),
        Some(b)
    );
}

/// SPEC section 7, I4: a holder whose lease expired cannot commit once the new holder has.
#[test]
fn an_expired_holder_cannot_commit() {
    let engine = engine();
    running(&engine, "wf");
    let late = foreign_token();
    let lease_ms = engine.config().lease_ms;
    assert!(matches!(
        acquire(engine.store(), &id("wf"), late, lease_ms, 0),
        Reply::Acquired(Ok(_))
    ));
    let read = load(&engine, &id("wf"));
    let pause = transition(&read, &AdminInput::Pause.into()).unwrap();
    drop(read);

    // The lease runs out; an operator takes the lease over and terminates.
    let terminated = engine.terminate(&id("wf"), lease_ms).unwrap();
    assert!(terminated.step.is_applied());
    assert_eq!(
        commit(engine.store(), &id("wf"), &pause, Committer::Caller),
        Reply::Committed(CommitReply::Stale { current: 3 }),
        "the version fenced the late write"
    );
    assert_eq!(
        release(engine.store(), &id("wf"), late),
        Reply::Released(false)
    );
    assert_eq!(
        load(&engine, &id("wf")).status(),
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
    let committed = load(&engine, &id("wf"));
    assert_eq!(committed.status(), WorkflowStatus::Terminated);
    assert_eq!(committed.task(&task).unwrap().status, TaskStatus::Canceled);
    assert_eq!(due(&engine, &id("wf")), None, "left the decider queue");
    assert!(
        !engine
            .store()
            .read(|state| state.task_queued(&id("wf"), &task)),
        "the cancelled attempt left its task queue in the same commit"
    );
    assert_eq!(
        engine.store().outbox_len(),
        3,
        "listeners, archive, stop the worker"
    );

    let mut failing = |_: &OutboxEntry| Err("index down");
    let run = engine.run_outbox(&mut failing, 10, 10);
    assert_eq!((run.performed, run.failures.len()), (0, 3));
    assert_eq!(run.store_failure, None);
    assert_eq!(*load(&engine, &id("wf")), *committed, "no status changed");
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
    let version = load(&engine, &id("wf")).version();
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
    assert_eq!(load(&engine, &id("wf")).version(), version);
}

/// I6a: a sweep that pops the id but misses the lease hands it back, due at once.
#[test]
fn i6a_a_sweep_that_misses_the_lease_hands_the_id_back() {
    let engine = engine();
    engine.start(id("wf"), 0).unwrap();
    let holder = foreign_token();
    assert!(matches!(
        acquire(engine.store(), &id("wf"), holder, 1_000, 0),
        Reply::Acquired(Ok(_))
    ));
    assert_eq!(engine.sweep_once(7).unwrap(), Sweep::Busy { id: id("wf") });
    assert_eq!(due(&engine, &id("wf")), Some(7));
    assert_eq!(
        engine.store().read(|state| state.decider_holder(&id("wf"))),
        None,
        "handed back: no longer leased by the sweep's pop"
    );
    assert_eq!(
        lease(&engine, &id("wf")).map(|l| l.holder),
        Some(holder),
        "the holder's lease is untouched"
    );
    assert_eq!(
        release(engine.store(), &id("wf"), holder),
        Reply::Released(true)
    );
    assert!(matches!(
        engine.sweep_once(7).unwrap(),
        Sweep::Applied { .. }
    ));
}

/// I6a: a popped entry that nobody hands back (its sweeper died after the pop) stays in the
/// queue, hidden until the unack timeout, then is swept again.
#[test]
fn i6a_a_popped_entry_reappears_after_the_unack_timeout() {
    let engine = engine();
    engine.start(id("wf"), 0).unwrap();
    let unack_ms = engine.config().unack_ms;
    let sweeper = foreign_token();
    let popped = engine
        .store()
        .call(Call::PopDecider {
            token: sweeper,
            now_ms: 0,
            unack_ms,
        })
        .unwrap();
    assert_eq!(popped, Reply::Popped(Some(id("wf"))));
    // The sweeper dies here.
    assert_eq!(
        due(&engine, &id("wf")),
        Some(unack_ms),
        "still queued, hidden"
    );
    assert_eq!(
        engine.store().read(|state| state.decider_holder(&id("wf"))),
        Some(sweeper)
    );
    assert_eq!(engine.sweep_once(unack_ms - 1).unwrap(), Sweep::Empty);
    assert!(matches!(
        engine.sweep_once(unack_ms).unwrap(),
        Sweep::Applied { .. }
    ));
}

/// I6b: queued iff RUNNING, through pause, resume, terminate and retry.
#[test]
fn i6b_queue_membership_follows_running() {
    let engine = engine();
    running(&engine, "wf");
    let queued = |engine: &Engine| due(engine, &id("wf")).is_some();
    assert!(queued(&engine));
    engine.pause(&id("wf"), 1).unwrap();
    assert!(!queued(&engine));
    assert!(engine.pause(&id("wf"), 1).unwrap().step.is_duplicate());
    engine.resume(&id("wf"), 2).unwrap();
    assert_eq!(due(&engine, &id("wf")), Some(2), "due at once");
    engine.terminate(&id("wf"), 3).unwrap();
    assert!(!queued(&engine));
    engine.retry(&id("wf"), 4).unwrap();
    assert_eq!(due(&engine, &id("wf")), Some(4));
    assert_eq!(engine.store().decider_len(), 1, "never twice");
}

/// Popping hides an id until the unack timeout; a requeue never re-adds a removed id; the queue
/// never holds an id twice.
#[test]
fn decider_queue_pop_hides_and_requeue_never_readds() {
    let mut state = StoreState::new();
    let token = foreign_token();
    state.push_to_decider(&id("a"), 5);
    state.push_to_decider(&id("a"), 0);
    state.push_to_decider(&id("b"), 0);
    assert_eq!(state.decider_len(), 2);
    assert_eq!(pop(&mut state, token, 0, 100), Reply::Popped(Some(id("a"))));
    assert_eq!(pop(&mut state, token, 0, 100), Reply::Popped(Some(id("b"))));
    assert_eq!(
        pop(&mut state, token, 99, 100),
        Reply::Popped(None),
        "both hidden until their unack timeout"
    );
    assert_eq!(
        state.decider_due(&id("a")),
        Some(100),
        "a popped id stays in the queue"
    );
    assert_eq!(
        pop(&mut state, token, 100, 100),
        Reply::Popped(Some(id("a")))
    );
    // No workflow `a` is stored, so its entry is stale and goes.
    assert_eq!(
        state.execute(Call::DropIfNotRunning { id: &id("a") }),
        Reply::Moved(true)
    );
    assert_eq!(
        state.execute(Call::Requeue {
            id: &id("a"),
            due_ms: 0
        }),
        Reply::Moved(false)
    );
    assert_eq!(state.decider_len(), 1);
    assert_eq!(state.decider_due(&id("a")), None);
}

/// A hand-back moves an entry only for the token whose pop leased it, and only until something
/// else moved it (SPEC 7.2: pops are leased).
#[test]
fn decider_hand_back_needs_the_popping_token() {
    let mut state = StoreState::new();
    let (popper, other) = (foreign_token(), foreign_token());
    state.push_to_decider(&id("a"), 0);
    assert_eq!(
        pop(&mut state, popper, 0, 100),
        Reply::Popped(Some(id("a")))
    );
    let a = id("a");
    let hand_back = |token| Call::HandBack {
        id: &a,
        token,
        due_ms: 3,
    };
    assert_eq!(state.execute(hand_back(other)), Reply::Moved(false));
    assert_eq!(state.decider_due(&id("a")), Some(100));
    assert_eq!(state.execute(hand_back(popper)), Reply::Moved(true));
    assert_eq!(state.decider_due(&id("a")), Some(3));
    assert_eq!(
        state.execute(hand_back(popper)),
        Reply::Moved(false),
        "handed back once: the pop's lease is over"
    );
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
    assert_eq!(due(&engine, &id("wf")), Some(1 + delay));
    engine
        .report(&id("wf"), Report::new(task, ReportStatus::Completed), 2)
        .unwrap();
    assert_eq!(due(&engine, &id("wf")), Some(2));
}

/// SPEC section 7: a stale entry (a terminal workflow left queued) is removed by the next sweep
/// without changing any status; an entry for an unknown workflow is removed too.
#[test]
fn sweep_removes_stale_and_unknown_entries_without_changing_status() {
    let done = Workflow::from_parts("done", WorkflowStatus::Completed, 9, Vec::new()).unwrap();
    let mut state = StoreState::new();
    assert_eq!(
        state.execute(Call::Insert {
            workflow: &done,
            now_ms: 0
        }),
        Reply::Inserted(true)
    );
    assert_eq!(state.decider_len(), 0, "a COMPLETED insert is not queued");
    state.push_to_decider(&id("done"), 0);
    state.push_to_decider(&id("ghost"), 0);
    let engine = Engine::new(InMemoryStore::from_state(state), definition());
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
    assert_eq!(due(&engine, &id("done")), None);
    assert_eq!(engine.store().decider_len(), 0);
    assert_eq!(*load(&engine, &id("done")), done);
    assert_eq!(engine.store().outbox_len(), 0);
    assert_eq!(engine.store().read(|state| state.leases().count()), 0);
}

/// A decider that proposes an illegal input gets the core's typed rejection; the workflow stays
/// queued (I6a) and unchanged.
#[test]
fn a_rejected_decision_is_typed_and_keeps_the_workflow_queued() {
    let premature = |_: &Workflow| Decision::Act(EngineInput::Complete);
    let engine = Engine::new(InMemoryStore::new(), premature);
    engine.start(id("wf"), 0).unwrap();
    let schedule = EngineInput::Schedule(NewTask::new("t", "fetch"));
    engine.act(&id("wf"), schedule, 0).unwrap();
    let result = engine.sweep_once(0);
    assert!(matches!(
        result,
        Err(SweepError::Rejected {
            rejection: Rejection::UnsettledTask { .. },
            ..
        })
    ));
    let delay = engine.config().sweep_delay_ms;
    assert_eq!(
        engine.store().read(|s| s.decider_due(&id("wf"))),
        Some(delay)
    );
    assert_eq!(engine.store().workflow(&id("wf")).unwrap().version(), 1);
    assert_eq!(engine.store().read(|state| state.leases().count()), 0);
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

    // An entry that outlived its attempt: a cancel committed by hand without its queue effects.
    let engine = self::engine();
    engine.start(id("other"), 2).unwrap();
    assert!(matches!(
        engine.sweep_once(2).unwrap(),
        Sweep::Applied { .. }
    ));
    let stale = TaskId::attempt(&id("other"), "fetch", 0);
    let read = load(&engine, &id("other"));
    let cancel = transition(
        &read,
        &Input::from(EngineInput::CancelTask {
            task: stale.clone(),
        }),
    )
    .unwrap();
    let plan = QueuePlan {
        decider: DeciderPlan::Keep,
        remove_tasks: Vec::new(),
        push_tasks: Vec::new(),
    };
    let committed = engine.store().call(Call::Commit {
        id: &id("other"),
        step: &cancel,
        plan: &plan,
        now_ms: 3,
    });
    assert!(matches!(
        committed,
        Ok(Reply::Committed(CommitReply::Done(_)))
    ));
    assert!(engine
        .store()
        .read(|state| state.task_queued(&id("other"), &stale)));
    let version = load(&engine, &id("other")).version();

    assert_eq!(engine.poll_task("fetch", 3), Ok(None));
    assert!(
        !engine
            .store()
            .read(|state| state.task_queued(&id("other"), &stale)),
        "the stale entry was dropped, not merely hidden"
    );
    assert_eq!(
        load(&engine, &id("other")).version(),
        version,
        "dropping changes no workflow"
    );
    assert_eq!(engine.poll_task("unknown-queue", 3), Ok(None));
}

/// SPEC 7.2, leased polls: a polled attempt's entry stays in its queue, hidden for
/// `task_visibility_ms`, until the attempt ends; an IN_PROGRESS attempt whose entry reappears is
/// handed out again, marked `redelivered` (its first worker may have died). The workflow is not
/// changed by the redelivery.
#[test]
fn a_polled_attempt_stays_queued_and_is_redelivered_after_the_visibility_timeout() {
    let engine = engine();
    engine.start(id("wf"), 0).unwrap();
    engine.sweep_once(0).unwrap();
    let visibility_ms = engine.config().task_visibility_ms;
    let polled = engine.poll_task("fetch", 0).unwrap().expect("scheduled");
    assert!(!polled.redelivered);
    assert_eq!(&*polled.reference_name, "fetch");
    let started = load(&engine, &id("wf"));
    assert_eq!(
        started.task(&polled.task).unwrap().status,
        TaskStatus::InProgress
    );
    assert!(
        engine
            .store()
            .read(|state| state.task_queued(&polled.workflow, &polled.task)),
        "the entry stays queued while the attempt runs"
    );
    assert_eq!(
        engine.poll_task("fetch", visibility_ms - 1),
        Ok(None),
        "hidden"
    );

    let again = engine
        .poll_task("fetch", visibility_ms)
        .unwrap()
        .expect("reappears after the visibility timeout");
    assert_eq!(again.task, polled.task);
    assert!(again.redelivered);
    assert_eq!(
        *load(&engine, &id("wf")),
        *started,
        "a redelivery changes nothing"
    );
    assert_eq!(
        engine.poll_task("fetch", visibility_ms),
        Ok(None),
        "hidden again"
    );

    // Either worker's report ends the attempt; its entry leaves the queue in the same commit.
    let done = Report::new(polled.task.clone(), ReportStatus::Completed);
    assert!(engine
        .report(&id("wf"), done, visibility_ms)
        .unwrap()
        .step
        .is_applied());
    assert!(!engine
        .store()
        .read(|state| state.task_queued(&polled.workflow, &polled.task)));
    assert_eq!(engine.poll_task("fetch", 3 * visibility_ms), Ok(None));
}

#[test]
fn inspect_and_admin_are_refused_while_another_operation_holds_the_lease() {
    let engine = engine();
    engine.start(id("wf"), 0).unwrap();
    let holder = foreign_token();
    assert!(matches!(
        acquire(engine.store(), &id("wf"), holder, 10, 0),
        Reply::Acquired(Ok(_))
    ));
    assert_eq!(
        engine.inspect(&id("wf"), 5),
        Err(InspectError::Locked {
            id: id("wf"),
            holder,
            expires_at_ms: 10,
        })
    );
    assert_eq!(
        engine.terminate(&id("wf"), 5),
        Err(AdminError::Locked {
            id: id("wf"),
            holder,
            expires_at_ms: 10,
        })
    );
    assert_eq!(
        lease(&engine, &id("wf")).map(|l| l.holder),
        Some(holder),
        "a refused operation does not release another's lease"
    );
    let view = engine.inspect(&id("wf"), 10).unwrap();
    assert_eq!(view.queue_violation(), None);
    assert_eq!(view.workflow.status(), WorkflowStatus::Running);
}

#[test]
fn error_messages_carry_their_context() {
    let holder = foreign_token();
    let failed = CallFailed {
        call: CallKind::Commit,
        failure: StoreFailure::ambiguous("timeout"),
    };
    let cases = [
        (
            AdminError::Locked {
                id: id("wf"),
                holder,
                expires_at_ms: 40,
            }
            .to_string(),
            format!(
                "workflow wf is locked by holder {:x}#{} until 40 ms",
                holder.owner(),
                holder.serial()
            ),
        ),
        (
            ReportError::Contention {
                id: id("wf"),
                attempts: 16,
            }
            .to_string(),
            "workflow wf: 16 compare-and-swap attempts all conflicted".into(),
        ),
        (
            ReportError::Rejected {
                id: id("wf"),
                rejection: Rejection::StaleVersion {
                    read: 2,
                    current: 3,
                },
            }
            .to_string(),
            "workflow wf: stale version: step read 2, workflow is at 3".into(),
        ),
        (
            StartError::WorkflowExists { id: id("wf") }.to_string(),
            "workflow wf already exists".into(),
        ),
        (
            SweepError::Store(failed.clone()).to_string(),
            "store call commit failed: the call may have happened, its answer was lost: timeout"
                .into(),
        ),
        (
            StoreFailure::not_done("refused").to_string(),
            "the call did not happen: refused".into(),
        ),
        (
            StoreFailure::unavailable("connection refused").to_string(),
            "the store is unavailable: connection refused".into(),
        ),
    ];
    for (message, expected) in cases {
        assert_eq!(message, expected);
    }
    assert!(failed.is_ambiguous());
    assert!(!CallFailed {
        call: CallKind::Load,
        failure: StoreFailure::unavailable("down"),
    }
    .is_ambiguous());
    assert_eq!(
        SweepError::Store(failed.clone()).store_failure(),
        Some(&failed)
    );
}

/// The engine is shared between threads by reference: it must stay `Send + Sync`.
#[test]
fn the_engine_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Engine>();
    shareable::<Engine<InMemoryStore, fn(&Workflow) -> Decision>>();
    shareable::<Engine<Arc<InMemoryStore>>>();
    shareable::<InMemoryStore>();
    shareable::<StoreState>();
}

/// A status-only step (pause) computed from one workflow must not apply to another workflow that
/// happens to have the same status and version (the store is told the id separately).
#[test]
fn a_step_from_another_workflow_with_the_same_version_is_refused() {
    let engine = engine();
    engine.start(id("a"), 0).unwrap();
    engine.start(id("b"), 0).unwrap();
    let a = load(&engine, &id("a"));
    let pause_a = transition(&a, &AdminInput::Pause.into()).unwrap();
    drop(a);
    let refused = commit(engine.store(), &id("b"), &pause_a, Committer::Caller);
    assert!(
        !matches!(refused, Reply::Committed(CommitReply::Done(_))),
        "a step of workflow a was applied to workflow b"
    );
    assert_eq!(load(&engine, &id("b")).status(), WorkflowStatus::Running);
    assert_eq!(due(&engine, &id("b")), Some(0), "b's queue entry untouched");
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
    config.task_visibility_ms = 13;
    let engine = Engine::with_config(InMemoryStore::new(), Definition::new([]), config.clone());
    assert_eq!(engine.config(), &config);
    assert_ne!(engine.config(), &EngineConfig::default());
    config.max_attempts = 0;
    assert_eq!(config.attempts(), 1, "at least one attempt");
}

/// SPEC 7.2: lease tokens are unique across processes: one engine draws increasing serials under
/// one instance id; another engine draws another instance id.
#[test]
fn lease_tokens_are_unique_per_engine_and_across_engines() {
    let (one, two) = (engine(), engine());
    let (a, b) = (one.token(), one.token());
    assert_eq!(a.owner(), b.owner());
    assert!(b.serial() > a.serial());
    assert_ne!(a, b);
    let c = two.token();
    assert_ne!(c.owner(), a.owner(), "two engines, two instance ids");
    assert_eq!(a.to_string(), format!("{:x}#{}", a.owner(), a.serial()));
}

/// A requeue takes a fresh place in the queue: two workflows due at the same time are both
/// popped, in the order they became due there.
#[test]
fn requeued_entries_never_overwrite_another() {
    let mut state = StoreState::new();
    let token = foreign_token();
    state.push_to_decider(&id("a"), 0);
    state.push_to_decider(&id("b"), 7);
    assert_eq!(
        state.execute(Call::Requeue {
            id: &id("a"),
            due_ms: 7
        }),
        Reply::Moved(true)
    );
    assert_eq!(state.decider_len(), 2);
    assert_eq!(pop(&mut state, token, 7, 100), Reply::Popped(Some(id("b"))));
    assert_eq!(pop(&mut state, token, 7, 100), Reply::Popped(Some(id("a"))));
    assert_eq!(pop(&mut state, token, 7, 100), Reply::Popped(None));
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
        let polled = engine.poll_task(reference, 0).unwrap().expect("scheduled");
        engine
            .report(&id("wf"), Report::new(polled.task, ReportStatus::Failed), 0)
            .unwrap();
    }
    assert_eq!(
        engine.store().task_len(),
        0,
        "an attempt's entry leaves with its terminal report"
    );
    engine.act(&id("wf"), EngineInput::Fail, 0).unwrap();
    engine.retry(&id("wf"), 0).unwrap();
    assert_eq!(engine.store().task_len(), 2);
    for reference in ["fetch", "store"] {
        let polled = engine.poll_task(reference, 0).unwrap().expect("retried");
        assert_eq!(&*polled.reference_name, reference);
        let workflow = load(&engine, &id("wf"));
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
    let workflow = Workflow::new("wf");
    let inserted = store.call(Call::Insert {
        workflow: &workflow,
        now_ms: 0,
    });
    assert_eq!(inserted, Ok(Reply::Inserted(true)));
    assert_eq!(store.len(), 1);
    assert!(!store.is_empty());
    assert_eq!(store.snapshot().workflow_count(), 1);
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
    assert_eq!(idle.store().read(|s| s.decider_due(&id("wf"))), Some(delay));

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
    assert_eq!(same.store().workflow(&id("wf")).unwrap().version(), 1);
    assert_eq!(same.store().read(|s| s.decider_due(&id("wf"))), Some(delay));
}

/// The task-queue and outbox calls of the contract report what they did: a poll leases an
/// entry (hidden, then visible again), a drop removes it once; outbox entries carry the version
/// that owed them, are claimed while taken, and leave only when acknowledged.
#[test]
fn task_queue_and_outbox_calls_report_what_they_did() {
    let mut state = StoreState::new();
    let workflow = Workflow::new("wf");
    state.execute(Call::Insert {
        workflow: &workflow,
        now_ms: 0,
    });
    let schedule = transition(
        &workflow,
        &Input::from(EngineInput::Schedule(NewTask::new("x", "fetch"))),
    )
    .unwrap();
    let plan = QueuePlan::of(&id("wf"), &schedule, Committer::Caller);
    let queued = QueuedTask {
        workflow: id("wf"),
        task: TaskId::new("x"),
        reference_name: "fetch".into(),
    };
    assert_eq!(plan.push_tasks, std::slice::from_ref(&queued));
    assert!(matches!(
        state.execute(Call::Commit {
            id: &id("wf"),
            step: &schedule,
            plan: &plan,
            now_ms: 0
        }),
        Reply::Committed(CommitReply::Done(_))
    ));
    assert_eq!(state.task_len(), 1);
    let poll = |now_ms| Call::PollTask {
        reference_name: "fetch",
        now_ms,
        visibility_ms: 10,
    };
    assert_eq!(state.execute(poll(0)), Reply::Task(Some(queued.clone())));
    assert_eq!(state.execute(poll(9)), Reply::Task(None), "hidden");
    assert_eq!(state.execute(poll(10)), Reply::Task(Some(queued.clone())));
    assert!(state.task_queued(&queued.workflow, &queued.task));
    let drop_task = Call::DropTask {
        workflow: &queued.workflow,
        task: &queued.task,
    };
    assert_eq!(state.execute(drop_task), Reply::Moved(true));
    assert_eq!(state.execute(drop_task), Reply::Moved(false));
    assert_eq!(state.task_len(), 0);
    assert_eq!(state.execute(poll(100)), Reply::Task(None));

    let stored = state.workflow(&id("wf")).unwrap().clone();
    let terminate = transition(&stored, &AdminInput::Terminate.into()).unwrap();
    let plan = QueuePlan::of(&id("wf"), &terminate, Committer::Caller);
    state.execute(Call::Commit {
        id: &id("wf"),
        step: &terminate,
        plan: &plan,
        now_ms: 0,
    });
    let owed: Vec<(u64, Effect)> = state
        .owed()
        .map(|(workflow, version, effect)| {
            assert_eq!(workflow, &id("wf"));
            (version, effect.clone())
        })
        .collect();
    assert_eq!(
        owed,
        [
            (
                2,
                Effect::NotifyListeners {
                    status: WorkflowStatus::Terminated
                }
            ),
            (2, Effect::Archive)
        ],
        "a SCHEDULED attempt has no running worker to stop"
    );
    let take = |now_ms| Call::TakeOutbox {
        now_ms,
        claim_ms: 10,
        max: 8,
    };
    let Reply::Outbox(taken) = state.execute(take(0)) else {
        panic!("an outbox reply");
    };
    assert_eq!(
        taken
            .iter()
            .map(|entry| (entry.version, entry.effect.clone(), entry.attempts))
            .collect::<Vec<_>>(),
        owed.iter()
            .map(|(version, effect)| (*version, effect.clone(), 1))
            .collect::<Vec<_>>()
    );
    assert_eq!(state.execute(take(9)), Reply::Outbox(Vec::new()), "claimed");
    let ack = Call::AckOutbox {
        sequence: taken[0].sequence,
    };
    assert_eq!(state.execute(ack), Reply::Moved(true));
    assert_eq!(state.execute(ack), Reply::Moved(false));
    assert_eq!(state.outbox_len(), 1, "the unacknowledged entry stays");
    let Reply::Outbox(again) = state.execute(take(10)) else {
        panic!("an outbox reply");
    };
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].sequence, again[0].attempts),
        (taken[1].sequence, 2)
    );
}

/// A store that forwards to an `InMemoryStore` through its sessions and records, per session,
/// the calls made in it; `inside` is set while a session runs.
#[derive(Default)]
struct Sessions {
    inner: InMemoryStore,
    log: std::sync::Mutex<Vec<Vec<CallKind>>>,
    inside: std::sync::atomic::AtomicBool,
}

impl Store for Sessions {
    fn call(&self, call: Call<'_>) -> Result<Reply, StoreFailure> {
        self.log.lock().expect("log").push(vec![call.kind()]);
        self.inner.call(call)
    }

    fn session(&self, calls: &mut dyn FnMut(&mut SessionCall<'_>)) {
        use std::sync::atomic::Ordering::SeqCst;
        let mut kinds = Vec::new();
        self.inner.session(&mut |inner| {
            self.inside.store(true, SeqCst);
            calls(&mut |call| {
                kinds.push(call.kind());
                inner(call)
            });
            self.inside.store(false, SeqCst);
        });
        self.log.lock().expect("log").push(kinds);
    }
}

/// The engine's store sessions (`Store::session`): consecutive calls of one operation go to the
/// store together, up to the reply the decider reads, and the decider (user code) never runs
/// inside a session. The in-memory store runs a session under one lock.
#[test]
fn runtime_sessions_group_calls_and_never_hold_the_decider() {
    use std::sync::atomic::Ordering::SeqCst;
    let store = Arc::new(Sessions::default());
    let watched = Arc::clone(&store);
    let linear = definition();
    let decider = move |workflow: &Workflow| {
        assert!(
            !watched.inside.load(SeqCst),
            "the decider ran inside a store session"
        );
        wfstate::decide(workflow, &linear)
    };
    let engine = Engine::new(Arc::clone(&store), decider);
    let take = |store: &Sessions| std::mem::take(&mut *store.log.lock().expect("log"));
    let workflow = id("sessions");

    engine.start(workflow.clone(), 0).expect("fresh id");
    assert_eq!(take(&store), [vec![CallKind::Insert]]);

    assert!(matches!(engine.sweep_once(0), Ok(Sweep::Applied { .. })));
    assert_eq!(
        take(&store),
        [
            vec![CallKind::PopDecider, CallKind::Acquire, CallKind::Load],
            vec![CallKind::Commit, CallKind::Release],
        ],
        "a sweep: up to the load the decider reads, then the commit and the release"
    );

    let polled = engine.poll_task("fetch", 0).expect("poll").expect("a task");
    assert_eq!(
        take(&store),
        [vec![CallKind::PollTask, CallKind::Load, CallKind::Commit]]
    );
    let report = Report::new(polled.task, ReportStatus::Completed);
    engine.report(&workflow, report, 0).expect("legal report");
    assert_eq!(take(&store), [vec![CallKind::Load, CallKind::Commit]]);

    assert!(matches!(engine.sweep_once(0), Ok(Sweep::Applied { .. })));
    take(&store);
    assert!(matches!(engine.sweep_once(0), Ok(Sweep::Waiting { .. })));
    assert_eq!(
        take(&store),
        [
            vec![CallKind::PopDecider, CallKind::Acquire, CallKind::Load],
            vec![CallKind::HandBack, CallKind::Release],
        ],
        "`store` is live: the sweep hands the entry back, due after the sweep delay"
    );
    assert!(matches!(engine.sweep_once(0), Ok(Sweep::Empty)));
    assert_eq!(take(&store), [vec![CallKind::PopDecider]]);
}
