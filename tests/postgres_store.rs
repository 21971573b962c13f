//! The PostgreSQL store against a real server (issue 11), started by each test in a temporary
//! directory (`tests/support/postgres.rs`):
//!
//! - differential: random operation sequences run through one engine whose store sends every
//!   call to both `InMemoryStore` and `PostgresStore`; every reply must be equal, and so must the
//!   two stores' states (canonicalized) along the way and at the end;
//! - failures: a stopped server, killed sessions, a COMMIT whose answer is lost (a proxy cuts
//!   the connection after forwarding it) and one cut before it: each is the contract's typed
//!   failure, nothing is lost, and the engine recovers once the server is back;
//! - the schema: a database at a newer schema version is refused and left as it is, one at an
//!   older version is upgraded;
//! - attempts of one task id in two workflows keep an entry each, in both stores;
//! - several engines (each its own store and connections) share one database concurrently.

#[path = "support/postgres.rs"]
mod harness;

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use harness::{cluster, Rng};
use wfstate::runtime::postgres::{Cluster, PostgresError, SCHEMA_VERSION};
use wfstate::runtime::{
    Call, CallKind, Engine, EngineConfig, InMemoryStore, OutboxEntry, PostgresStore, Reply,
    ReportError, Store, StoreFailure, Sweep,
};
use wfstate::{
    check, Decision, Definition, EngineInput, NewTask, Report, ReportStatus, TaskDefinition,
    TaskId, TaskStatus, Workflow, WorkflowId, WorkflowStatus,
};

const REFERENCES: [&str; 3] = ["fetch", "charge", "notify"];

fn definition() -> Definition {
    Definition::new([
        TaskDefinition::new("fetch").retries(1),
        TaskDefinition::new("charge"),
        TaskDefinition::new("notify").optional(),
    ])
}

/// Short leases and visibility, so that time passing hides and reveals entries and leases.
fn config() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.lease_ms = 2_000;
    config.sweep_delay_ms = 100;
    config.unack_ms = 1_000;
    config.task_visibility_ms = 700;
    config.outbox_claim_ms = 300;
    config
}

/// Sends every call to both stores and requires the same reply.
struct Tee {
    memory: InMemoryStore,
    postgres: PostgresStore,
    calls: AtomicU64,
}

impl Store for Tee {
    fn call(&self, call: Call<'_>) -> Result<Reply, StoreFailure> {
        let number = self.calls.fetch_add(1, Ordering::Relaxed);
        let expected = self.memory.call(call);
        let actual = self.postgres.call(call);
        assert_eq!(
            actual, expected,
            "call {number}, {call:?}: PostgresStore and InMemoryStore disagree"
        );
        expected
    }
}

impl Tee {
    fn assert_same_state(&self, when: &str) {
        let mut memory = self.memory.snapshot();
        memory.canonicalize();
        let mut postgres = self.postgres.snapshot().expect("snapshot");
        postgres.canonicalize();
        assert!(
            memory == postgres,
            "{when}: the stores' states differ\nmemory: {memory:?}\npostgres: {postgres:?}"
        );
    }
}

/// One random operation of the mix, on `engine` at `now_ms`.
fn random_operation<S: Store>(
    engine: &Engine<S>,
    rng: &mut Rng,
    ids: &[WorkflowId],
    held: &mut Vec<(WorkflowId, wfstate::TaskId)>,
    now_ms: u64,
) {
    let id = &ids[rng.below(ids.len())];
    match rng.below(20) {
        0..=2 => {
            let _ = engine.start(id.clone(), now_ms);
        }
        3..=7 => {
            let _ = engine.sweep_once(now_ms);
        }
        8..=10 => {
            if let Ok(Some(polled)) = engine.poll_task(REFERENCES[rng.below(3)], now_ms) {
                held.push((polled.workflow, polled.task));
            }
        }
        11..=14 if !held.is_empty() => {
            let index = rng.below(held.len());
            // Sometimes the same report again later (a redelivery), or another one (late).
            let (workflow, task) = if rng.chance(30) {
                held[index].clone()
            } else {
                held.swap_remove(index)
            };
            let status = match rng.below(10) {
                0..=5 => ReportStatus::Completed,
                6..=7 => ReportStatus::Failed,
                8 => ReportStatus::InProgress,
                _ => ReportStatus::FailedWithTerminalError,
            };
            let _ = engine.report(&workflow, Report::new(task, status), now_ms);
        }
        15 => {
            let _ = engine.terminate(id, now_ms);
        }
        16 => {
            let _ = engine.pause(id, now_ms);
        }
        17 => {
            let _ = engine.resume(id, now_ms);
        }
        18 => {
            let _ = engine.retry(id, now_ms);
        }
        _ => {
            let mut failing = |_: &OutboxEntry| -> Result<(), &'static str> {
                if rng.chance(30) {
                    Err("the listener is down")
                } else {
                    Ok(())
                }
            };
            let _ = engine.run_outbox(&mut failing, now_ms, 8);
            let _ = engine.inspect(id, now_ms);
        }
    }
}

/// Drives every workflow to a terminal status and drains the outbox.
fn drive_to_rest<S: Store>(engine: &Engine<S>, ids: &[WorkflowId], mut now_ms: u64) -> u64 {
    for _ in 0..200 {
        now_ms += 10_000;
        for id in ids {
            if let Ok(inspection) = engine.inspect(id, now_ms) {
                if inspection.workflow.status() == WorkflowStatus::Paused {
                    let _ = engine.resume(id, now_ms);
                }
            }
        }
        while !matches!(engine.sweep_once(now_ms), Ok(Sweep::Empty) | Err(_)) {}
        for reference in REFERENCES {
            while let Ok(Some(polled)) = engine.poll_task(reference, now_ms) {
                let done = Report::new(polled.task, ReportStatus::Completed);
                let _ = engine.report(&polled.workflow, done, now_ms);
            }
        }
        let mut ok = |_: &OutboxEntry| -> Result<(), Infallible> { Ok(()) };
        while engine.run_outbox(&mut ok, now_ms, 64).performed > 0 {}
        let settled = ids.iter().all(|id| match engine.inspect(id, now_ms) {
            Ok(inspection) => inspection.workflow.status().is_terminal() && !inspection.is_queued(),
            Err(_) => true,
        });
        if settled && matches!(engine.sweep_once(now_ms), Ok(Sweep::Empty)) {
            let mut ok = |_: &OutboxEntry| -> Result<(), Infallible> { Ok(()) };
            if engine.run_outbox(&mut ok, now_ms, 64).performed == 0 {
                return now_ms;
            }
        }
    }
    panic!("the workflows did not come to rest");
}

#[test]
fn postgres_store_replies_as_the_in_memory_store_on_random_operations() {
    let Some(cluster) = cluster("postgres_store_replies_as_the_in_memory_store") else {
        return;
    };
    for seed in 1..=4u64 {
        let schema = format!("differential_{seed}");
        let admin = PostgresStore::open(&cluster.url()).expect("open");
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("schema");
        let url = format!("{} options='-c search_path={schema}'", cluster.url());
        let tee = Tee {
            memory: InMemoryStore::new(),
            // Odd seeds commit from the store's copy of what it loaded, even seeds read the
            // stored workflow under a row lock in every commit.
            postgres: PostgresStore::open(&url)
                .expect("open")
                .with_load_cache(seed % 2 == 1),
            calls: AtomicU64::new(0),
        };
        let engine = Engine::with_config(tee, definition(), config());
        let ids: Vec<WorkflowId> = (0..8)
            .map(|n| WorkflowId::new(format!("wf-{seed}-{n}")))
            .collect();
        let mut rng = Rng(seed);
        let mut held = Vec::new();
        let mut now_ms = 0;
        for operation in 0..600 {
            random_operation(&engine, &mut rng, &ids, &mut held, now_ms);
            now_ms += rng.below(400) as u64;
            if operation % 100 == 99 {
                // With a lease held, so that the snapshots compare lease records too.
                let token = engine.token();
                let id = &ids[operation % ids.len()];
                let lease_ms = 1_000_000;
                let acquire = Call::Acquire {
                    id,
                    token,
                    lease_ms,
                    now_ms,
                };
                let granted = engine.store().call(acquire).expect("in memory");
                assert!(matches!(granted, Reply::Acquired(Ok(_))), "{granted:?}");
                engine
                    .store()
                    .assert_same_state(&format!("seed {seed}, op {operation}"));
                let release = Call::Release { id, token };
                let released = engine.store().call(release).expect("in memory");
                assert_eq!(released, Reply::Released(true));
            }
        }
        drive_to_rest(&engine, &ids, now_ms);
        let tee = engine.store();
        tee.assert_same_state(&format!("seed {seed}, at rest"));
        let calls = tee.calls.load(Ordering::Relaxed);
        assert!(calls > 2_000, "seed {seed}: only {calls} calls");
        let state = tee.memory.snapshot();
        let mut terminal = 0;
        for workflow in state.workflows() {
            assert!(check(workflow).is_empty(), "{:?}", check(workflow));
            terminal += usize::from(workflow.status().is_terminal());
        }
        assert_eq!(terminal, state.workflow_count());
        assert!(
            state.workflow_count() >= 4,
            "seed {seed}: too few workflows started"
        );
        eprintln!(
            "seed {seed}: {calls} calls, {} workflows, same replies and states",
            state.workflow_count()
        );
    }
}

/// A failure, certainly not done or ambiguous, as the contract types it.
fn is_typed(failure: &StoreFailure) -> bool {
    matches!(
        failure,
        StoreFailure::NotDone { .. }
            | StoreFailure::Unavailable { .. }
            | StoreFailure::Ambiguous { .. }
    )
}

#[test]
fn postgres_store_survives_a_stopped_server_and_killed_sessions() {
    let Some(mut cluster) = cluster("postgres_store_survives_a_stopped_server") else {
        return;
    };
    let store = PostgresStore::open(&cluster.url()).expect("open");
    let engine = Engine::with_config(store, definition(), config());
    let ids: Vec<WorkflowId> = (0..6).map(|n| WorkflowId::new(format!("wf-{n}"))).collect();
    for id in &ids {
        engine.start(id.clone(), 0).expect("start");
    }
    for _ in 0..6 {
        engine.sweep_once(0).expect("sweep");
    }

    // The server goes away: every call fails typed, and soon as unavailable.
    cluster.stop("fast").expect("stop");
    let mut unavailable = 0;
    for attempt in 0..4 {
        match engine.sweep_once(1) {
            Err(wfstate::runtime::SweepError::Store(failed)) => {
                assert!(is_typed(&failed.failure));
                unavailable +=
                    usize::from(matches!(failed.failure, StoreFailure::Unavailable { .. }));
            }
            other => panic!("attempt {attempt}: a sweep without a server gave {other:?}"),
        }
    }
    assert!(
        unavailable >= 2,
        "a stopped server is reported as unavailable"
    );
    let report = Report::new(
        wfstate::TaskId::attempt(&ids[0], "fetch", 0),
        ReportStatus::Completed,
    );
    match engine.report(&ids[0], report, 1) {
        Err(ReportError::Store(failed)) => {
            assert_eq!(failed.call, CallKind::Load);
            assert!(failed.failure.certainly_not_done());
        }
        other => panic!("a report without a server gave {other:?}"),
    }

    // Back again: nothing was lost.
    cluster.start_again().expect("restart");
    let now_ms = drive_to_rest(&engine, &ids, 10);

    // Killed sessions: the next calls fail typed or reconnect; again nothing is lost.
    let more: Vec<WorkflowId> = (0..4)
        .map(|n| WorkflowId::new(format!("more-{n}")))
        .collect();
    for id in &more {
        engine.start(id.clone(), now_ms).expect("start");
    }
    let killer = PostgresStore::open(&cluster.url()).expect("open");
    for round in 0..6 {
        killer
            .batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
            )
            .expect("terminate sessions");
        for _ in 0..3 {
            if let Err(error) = engine.sweep_once(now_ms + round) {
                let wfstate::runtime::SweepError::Store(failed) = error else {
                    panic!("unexpected {error:?}");
                };
                assert!(is_typed(&failed.failure));
            }
        }
    }
    let all: Vec<WorkflowId> = ids.iter().chain(&more).cloned().collect();
    drive_to_rest(&engine, &all, now_ms + 100);
    let state = engine.store().snapshot().expect("snapshot");
    assert_eq!(state.workflow_count(), 10);
    for workflow in state.workflows() {
        assert!(check(workflow).is_empty());
        assert_eq!(workflow.status(), WorkflowStatus::Completed, "{workflow:?}");
    }
    assert_eq!(state.decider_len(), 0);
    assert_eq!(state.task_len(), 0);
    assert_eq!(state.outbox_len(), 0);
}

#[test]
fn postgres_store_refuses_a_schema_of_another_version() {
    let Some(cluster) = cluster("postgres_store_refuses_a_schema_of_another_version") else {
        return;
    };
    let store = PostgresStore::open(&cluster.url()).expect("creates the schema");
    let id = WorkflowId::new("kept");
    Engine::new(store, definition())
        .start(id, 0)
        .expect("start");
    let admin = PostgresStore::open(&cluster.url()).expect("opens the current schema");
    admin
        .batch_execute("UPDATE wf_schema SET version = 99")
        .expect("update");
    match PostgresStore::open(&cluster.url()) {
        Err(PostgresError::Schema { found, expected }) => {
            assert_eq!((found, expected), (99, SCHEMA_VERSION));
        }
        other => panic!("a schema of version 99 opened: {other:?}"),
    }
    admin
        .batch_execute(&format!("UPDATE wf_schema SET version = {SCHEMA_VERSION}"))
        .expect("update");
    let again = PostgresStore::open(&cluster.url()).expect("opens again");
    let state = again.snapshot().expect("snapshot");
    assert_eq!(state.workflow_count(), 1, "nothing was altered");
    assert!(matches!(
        PostgresStore::open("host=/nonexistent port=1 user=postgres connect_timeout=2"),
        Err(PostgresError::Connect(_))
    ));
    assert!(matches!(
        PostgresStore::open("not a connection string ==="),
        Err(PostgresError::Config(_))
    ));
}

/// What the proxy does with the next message that holds a COMMIT.
const PASS: u8 = 0;
/// Forward the COMMIT, let the server answer, and cut both connections before the answer
/// reaches the client: the commit happened, the client cannot know.
const CUT_AFTER_COMMIT: u8 = 1;
/// Cut both connections instead of forwarding the COMMIT: it did not happen.
const CUT_BEFORE_COMMIT: u8 = 2;

/// A TCP proxy to the cluster's socket that can lose a COMMIT or its answer. It waits for the
/// server to commit before cutting: a test harness, not the runtime, so it may block.
#[allow(clippy::disallowed_methods)]
fn start_proxy(cluster: &Cluster, mode: Arc<AtomicU8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (dir, server_port) = cluster.socket();
    let socket = dir.join(format!(".s.PGSQL.{server_port}"));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = UnixStream::connect(&socket) else {
                continue;
            };
            let mode = Arc::clone(&mode);
            let (mut client_reader, mut server_writer) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            let (mut server_reader, mut client_writer) = (server, client);
            let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let cut_reply = Arc::clone(&cut);
            std::thread::spawn(move || {
                let mut buffer = [0u8; 65536];
                while let Ok(read) = server_reader.read(&mut buffer) {
                    if read == 0 || cut_reply.load(Ordering::SeqCst) {
                        break;
                    }
                    if client_writer.write_all(&buffer[..read]).is_err() {
                        break;
                    }
                }
                let _ = client_writer.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let mut buffer = [0u8; 65536];
                while let Ok(read) = client_reader.read(&mut buffer) {
                    if read == 0 {
                        break;
                    }
                    let chunk = &buffer[..read];
                    let commit = chunk.windows(6).any(|window| window == b"COMMIT");
                    let action = if commit {
                        mode.swap(PASS, Ordering::SeqCst)
                    } else {
                        PASS
                    };
                    if action == CUT_BEFORE_COMMIT {
                        cut.store(true, Ordering::SeqCst);
                        break;
                    }
                    if action == CUT_AFTER_COMMIT {
                        cut.store(true, Ordering::SeqCst);
                        let _ = server_writer.write_all(chunk);
                        // Let the server commit before the connection goes.
                        std::thread::sleep(std::time::Duration::from_millis(300));
                        break;
                    }
                    if server_writer.write_all(chunk).is_err() {
                        break;
                    }
                }
                let _ = server_writer.shutdown(std::net::Shutdown::Both);
                let _ = client_reader.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

#[test]
#[allow(clippy::disallowed_methods)] // It waits for the server, as a client would.
fn postgres_store_reports_a_lost_commit_answer_as_ambiguous() {
    let Some(cluster) = cluster("postgres_store_reports_a_lost_commit_answer_as_ambiguous") else {
        return;
    };
    let direct = PostgresStore::open(&cluster.url()).expect("open");
    let mode = Arc::new(AtomicU8::new(PASS));
    let port = start_proxy(&cluster, Arc::clone(&mode));
    let proxied = PostgresStore::open(&format!(
        "host=127.0.0.1 port={port} user=postgres dbname=postgres"
    ))
    .expect("open through the proxy");
    let engine = Engine::with_config(proxied, definition(), config());
    let id = WorkflowId::new("order");
    engine.start(id.clone(), 0).expect("start");
    engine.sweep_once(0).expect("schedule fetch");
    let polled = engine.poll_task("fetch", 0).expect("poll").expect("fetch");
    let load = |direct: &PostgresStore| match direct.call(Call::Load { id: &id }) {
        Ok(Reply::Loaded(Some(workflow))) => workflow,
        other => panic!("load gave {other:?}"),
    };
    let before = load(&direct).version();

    // The COMMIT's answer is lost: ambiguous, and the commit did happen.
    mode.store(CUT_AFTER_COMMIT, Ordering::SeqCst);
    let done = Report::new(polled.task.clone(), ReportStatus::Completed);
    match engine.report(&id, done.clone(), 1) {
        Err(ReportError::Store(failed)) => {
            assert_eq!(failed.call, CallKind::Commit);
            assert!(failed.is_ambiguous(), "{failed:?}");
        }
        other => panic!("a lost COMMIT answer gave {other:?}"),
    }
    // The server got the COMMIT before the connection was cut; on a loaded machine it may
    // still be flushing it when the client already has its error.
    let mut after = load(&direct);
    for _ in 0..100 {
        if after.version() != before {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        after = load(&direct);
    }
    assert_eq!(
        after.version(),
        before + 1,
        "the ambiguous commit took effect"
    );
    assert_eq!(
        after.version(),
        before + 1,
        "the ambiguous commit took effect"
    );
    assert_eq!(
        after.task(&polled.task).map(|task| task.status),
        Some(TaskStatus::Completed)
    );
    // The worker retries the report: a duplicate, nothing changes twice.
    let again = engine.report(&id, done, 2).expect("retry");
    assert!(again.step.is_duplicate());
    assert_eq!(load(&direct).version(), before + 1);

    // A COMMIT that never reaches the server: ambiguous to the client, and it did not happen.
    engine.sweep_once(3).expect("schedule charge");
    let charge = engine
        .poll_task("charge", 3)
        .expect("poll")
        .expect("charge");
    let version = load(&direct).version();
    mode.store(CUT_BEFORE_COMMIT, Ordering::SeqCst);
    let charged = Report::new(charge.task.clone(), ReportStatus::Completed);
    match engine.report(&id, charged.clone(), 4) {
        Err(ReportError::Store(failed)) => {
            assert_eq!(failed.call, CallKind::Commit);
            assert!(failed.is_ambiguous());
        }
        other => panic!("a lost COMMIT gave {other:?}"),
    }
    assert_eq!(
        load(&direct).version(),
        version,
        "the lost commit did not happen"
    );
    let retried = engine.report(&id, charged, 5).expect("retry");
    assert!(retried.step.is_applied(), "the retry applies it");

    drive_to_rest(&engine, std::slice::from_ref(&id), 10);
    assert_eq!(load(&direct).status(), WorkflowStatus::Completed);
}

#[test]
fn postgres_engines_share_one_database() {
    let Some(cluster) = cluster("postgres_engines_share_one_database") else {
        return;
    };
    const ENGINES: usize = 3;
    const PER_ENGINE: usize = 12;
    let url = cluster.url();
    std::thread::scope(|scope| {
        for engine_number in 0..ENGINES {
            let url = url.clone();
            scope.spawn(move || {
                let store = PostgresStore::open(&url).expect("open");
                let engine = Engine::with_config(store, definition(), config());
                let mut rng = Rng(engine_number as u64 + 11);
                for n in 0..PER_ENGINE {
                    let id = WorkflowId::new(format!("e{engine_number}-{n}"));
                    engine.start(id, 0).expect("start");
                }
                let mut now_ms = 0;
                for _ in 0..400 {
                    now_ms += 5;
                    let _ = engine.sweep_once(now_ms);
                    let reference = REFERENCES[rng.below(3)];
                    if let Ok(Some(polled)) = engine.poll_task(reference, now_ms) {
                        let status = if rng.chance(20) {
                            ReportStatus::Failed
                        } else {
                            ReportStatus::Completed
                        };
                        let _ = engine.report(
                            &polled.workflow,
                            Report::new(polled.task, status),
                            now_ms,
                        );
                    }
                }
            });
        }
    });
    let store = PostgresStore::open(&url).expect("open");
    let engine = Engine::with_config(store, definition(), config());
    let ids: Vec<WorkflowId> = (0..ENGINES)
        .flat_map(|e| (0..PER_ENGINE).map(move |n| WorkflowId::new(format!("e{e}-{n}"))))
        .collect();
    drive_to_rest(&engine, &ids, 10_000);
    let state = engine.store().snapshot().expect("snapshot");
    assert_eq!(state.workflow_count(), ENGINES * PER_ENGINE);
    for workflow in state.workflows() {
        assert!(check(workflow).is_empty(), "{:?}", check(workflow));
        assert!(workflow.status().is_terminal());
    }
    assert_eq!(state.decider_len(), 0);
    assert_eq!(state.task_len(), 0);
    assert_eq!(state.outbox_len(), 0);
}

/// Two workflows whose attempts share a task id (the engine names attempts, and two workflows
/// of one definition may well name theirs alike): each attempt has its own task-queue entry,
/// is handed out, and ending one leaves the other queued. (Keyed by task id alone, the second
/// entry was never written and the first report removed the other's: a fuzz finding.)
fn idle(_: &Workflow) -> Decision {
    Decision::Idle
}

fn attempts_sharing_an_id<S: Store>(engine: &Engine<S, fn(&Workflow) -> Decision>) {
    let (first, second) = (WorkflowId::new("first"), WorkflowId::new("second"));
    let task = TaskId::new("t");
    for id in [&first, &second] {
        engine.start(id.clone(), 0).expect("start");
        let schedule = EngineInput::Schedule(NewTask::new(task.clone(), "fetch"));
        engine.act(id, schedule, 0).expect("schedule");
    }
    let polled: Vec<WorkflowId> = (0..2)
        .map(|_| {
            let polled = engine
                .poll_task("fetch", 1)
                .expect("poll")
                .expect("an entry");
            assert_eq!(polled.task, task);
            polled.workflow
        })
        .collect();
    assert_eq!(polled, [first.clone(), second.clone()], "one entry each");
    let done = Report::new(task.clone(), ReportStatus::Completed);
    let applied = engine.report(&second, done.clone(), 2).expect("report");
    assert!(applied.step.is_applied());
    // The first workflow's attempt still runs: its entry reappears once its visibility ends.
    let later = 2 + config().task_visibility_ms;
    let again = engine
        .poll_task("fetch", later)
        .expect("poll")
        .expect("kept");
    assert_eq!(
        (again.workflow, again.task, again.redelivered),
        (first.clone(), task.clone(), true)
    );
    let applied = engine.report(&first, done, later).expect("report");
    assert!(applied.step.is_applied());
    assert_eq!(engine.poll_task("fetch", 10 * later), Ok(None));
}

#[test]
fn attempts_sharing_a_task_id_keep_an_entry_each_in_both_stores() {
    let idle: fn(&Workflow) -> Decision = idle;
    let memory = Engine::with_config(InMemoryStore::new(), idle, config());
    attempts_sharing_an_id(&memory);
    assert_eq!(memory.store().task_len(), 0);
    let Some(cluster) = cluster("attempts_sharing_a_task_id_keep_an_entry_each_in_both_stores")
    else {
        return;
    };
    // A database created at schema version 1 (task entries keyed by task id alone) is upgraded
    // when a store opens it; the scenario then runs on the upgraded tables.
    let store = PostgresStore::open(&cluster.url()).expect("creates the schema");
    store
        .batch_execute(
            "ALTER TABLE wf_tasks DROP CONSTRAINT wf_tasks_pkey; \
             ALTER TABLE wf_tasks ADD PRIMARY KEY (task_id); \
             UPDATE wf_schema SET version = 1",
        )
        .expect("back to version 1");
    drop(store);
    let tee = Tee {
        memory: InMemoryStore::new(),
        postgres: PostgresStore::open(&cluster.url()).expect("upgrades version 1"),
        calls: AtomicU64::new(0),
    };
    tee.postgres
        .batch_execute(&format!(
            "DO $$ BEGIN IF (SELECT max(version) FROM wf_schema) <> {SCHEMA_VERSION} \
             THEN RAISE EXCEPTION 'not upgraded'; END IF; END $$"
        ))
        .expect("the schema is at the current version");
    let engine = Engine::with_config(tee, idle, config());
    attempts_sharing_an_id(&engine);
    engine.store().assert_same_state("after the scenario");
}
