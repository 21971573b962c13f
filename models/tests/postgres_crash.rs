//! The crash test across processes (issue 11): four `wfstate engine` OS processes share one
//! PostgreSQL server (started by the test, durability on) and run a random mix on a few hundred
//! to a few thousand workflows: sweeps, polls, reports with duplicate and late deliveries,
//! terminate, pause, resume, retry, and the outbox through an effect handler that fails 30% of
//! the time and records each effect it performs in the database. During the run the test
//! SIGKILLs random engine processes and restarts them, and crashes the server once
//! (`pg_ctl stop -m immediate`, then WAL recovery).
//!
//! Then, with every engine stopped, it checks the stored state as the crashes left it: I1–I5 on
//! every workflow (`wfstate::check`), every RUNNING workflow in the decider queue (I6a), every
//! SCHEDULED attempt of a live workflow in its task queue (no lost task). It drives every
//! workflow to a terminal status and checks again, and that every post-commit effect a committed
//! version owed was performed at least once (I7): a trigger copies each outbox row as it is
//! written (in the commit's own transaction) to `crash_owed`, and each must have a match in
//! `crash_performed`. It prints the counts.
//!
//! Sizes: `WFSTATE_CRASH=short` (the default in `cargo test`), `medium` (`.ci/run`) or `long`
//! (`docs/testing.md`); `WFSTATE_CRASH_WORKFLOWS` and `WFSTATE_CRASH_SECONDS` override.

#![allow(clippy::disallowed_methods)] // The test owns the clock: it times the run and its kills.

#[path = "../../tests/support/postgres.rs"]
mod harness;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use harness::{cluster, Rng};
use wfstate::runtime::{Engine, OutboxEntry, PostgresStore, StoreState, Sweep};
use wfstate::{check, Report, ReportStatus, TaskStatus, WorkflowId, WorkflowStatus};
use wfstate_models::cli::engine::{config, definition, REFERENCES};

const ENGINES: usize = 4;

const AUDIT: &str = "
CREATE TABLE crash_owed (workflow_id text, version bigint, position integer, effect jsonb);
CREATE FUNCTION crash_owe() RETURNS trigger AS $$
BEGIN
    INSERT INTO crash_owed VALUES (NEW.workflow_id, NEW.version, NEW.position, NEW.effect);
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER crash_owe AFTER INSERT ON wf_outbox FOR EACH ROW EXECUTE FUNCTION crash_owe();
CREATE TABLE crash_performed (workflow_id text, version bigint, effect jsonb, performer text);
";

struct Size {
    workflows: usize,
    seconds: u64,
}

fn size() -> Size {
    let (workflows, seconds) = match std::env::var("WFSTATE_CRASH").as_deref() {
        Ok("long") => (2_400, 180),
        Ok("medium") => (800, 45),
        _ => (200, 14),
    };
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    Size {
        workflows: number("WFSTATE_CRASH_WORKFLOWS", workflows as u64) as usize,
        seconds: number("WFSTATE_CRASH_SECONDS", seconds),
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// One engine process and the thread that keeps its last progress line.
struct Process {
    child: Child,
    progress: JoinHandle<String>,
}

fn spawn_engine(url: &str, seed: u64, seconds: u64, workflows: usize) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wfstate"))
        .args([
            "engine",
            "--postgres",
            url,
            "--record-effects",
            "crash_performed",
        ])
        .args([
            "--seconds",
            &seconds.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .args([
            "--workflows",
            &workflows.to_string(),
            "--fail-percent",
            "30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn wfstate engine");
    let stdout = child.stdout.take().expect("stdout");
    let progress = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter(|line| line.starts_with("progress"))
            .last()
            .unwrap_or_default()
    });
    Process { child, progress }
}

#[derive(Default)]
struct Counts {
    ops: u64,
    ambiguous: u64,
    failures: u64,
}

impl Counts {
    fn add(&mut self, line: &str) {
        for field in line.split_whitespace() {
            let Some((name, value)) = field.split_once('=') else {
                continue;
            };
            let value: u64 = value.parse().unwrap_or(0);
            match name {
                "ops" => self.ops += value,
                "ambiguous" => self.ambiguous += value,
                "failures" => self.failures += value,
                _ => {}
            }
        }
    }
}

/// The checks on the state the crashes left, every engine stopped.
fn check_at_rest(state: &StoreState, violations: &mut Vec<String>) {
    for workflow in state.workflows() {
        for violation in check(workflow) {
            violations.push(format!("{}: {violation:?}", workflow.id()));
        }
        let id = workflow.id();
        if workflow.status() == WorkflowStatus::Running && state.decider_due(id).is_none() {
            violations.push(format!("{id}: RUNNING outside the decider queue (I6a)"));
        }
        if !workflow.status().is_terminal() {
            for task in workflow.tasks() {
                if task.status == TaskStatus::Scheduled && !state.task_queued(id, &task.id) {
                    violations.push(format!("{id}: {} SCHEDULED but not queued", task.id));
                }
            }
        }
    }
}

/// Drives every workflow to a terminal status with four in-process engines, recording the
/// effects they perform like the engine processes do.
/// The state reached, and whether everything settled within 60 rounds.
fn drive_to_terminal(url: &str) -> (StoreState, bool) {
    let mut now_ms = wall_ms() + 3_600_000;
    let reader = PostgresStore::open(url).expect("open");
    for _round in 0..60 {
        let state = reader.snapshot().expect("snapshot");
        let paused: BTreeSet<&WorkflowId> = state
            .workflows()
            .filter(|workflow| workflow.status() == WorkflowStatus::Paused)
            .map(|workflow| workflow.id())
            .collect();
        let settled = state.workflows().all(|w| w.status().is_terminal())
            && state.decider_len() == 0
            && state.task_len() == 0
            && state.outbox_len() == 0;
        if settled {
            return (state, true);
        }
        now_ms += 10_000;
        std::thread::scope(|scope| {
            for thread in 0..ENGINES {
                let paused = &paused;
                scope.spawn(move || {
                    let store = PostgresStore::open(url).expect("open");
                    let engine = Engine::with_config(store, definition(), config());
                    for id in paused.iter().skip(thread).step_by(ENGINES) {
                        let _ = engine.resume(id, now_ms);
                    }
                    while matches!(engine.sweep_once(now_ms), Ok(sweep) if sweep != Sweep::Empty) {}
                    for reference in REFERENCES {
                        while let Ok(Some(polled)) = engine.poll_task(reference, now_ms) {
                            let done = Report::new(polled.task, ReportStatus::Completed);
                            let _ = engine.report(&polled.workflow, done, now_ms);
                        }
                    }
                    let mut client =
                        postgres::Client::connect(url, postgres::NoTls).expect("connect");
                    let mut record = |entry: &OutboxEntry| -> Result<(), String> {
                        let effect =
                            serde_json::to_value(&entry.effect).map_err(|e| e.to_string())?;
                        client
                            .execute(
                                "INSERT INTO crash_performed VALUES ($1, $2, $3, 'final')",
                                &[
                                    &entry.workflow.as_str(),
                                    &(entry.version as i64),
                                    &postgres::types::Json(effect),
                                ],
                            )
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    };
                    while engine.run_outbox(&mut record, now_ms, 64).performed > 0 {}
                });
            }
        });
    }
    (reader.snapshot().expect("snapshot"), false)
}

#[test]
fn postgres_crash_test_across_engine_processes() {
    let Some(mut cluster) = cluster("postgres_crash_test_across_engine_processes") else {
        return;
    };
    let size = size();
    let url = cluster.url();
    let setup = PostgresStore::open(&url).expect("open");
    setup.batch_execute(AUDIT).expect("audit tables");
    let ids: Vec<WorkflowId> = (0..size.workflows)
        .map(|n| WorkflowId::new(format!("wf-{n}")))
        .collect();
    std::thread::scope(|scope| {
        for thread in 0..ENGINES {
            let (ids, url) = (&ids, &url);
            scope.spawn(move || {
                let store = PostgresStore::open(url).expect("open");
                let engine = Engine::with_config(store, definition(), config());
                for id in ids.iter().skip(thread).step_by(ENGINES) {
                    engine.start(id.clone(), wall_ms()).expect("start");
                }
            });
        }
    });

    let started = Instant::now();
    let run = Duration::from_secs(size.seconds);
    let mut rng = Rng(7);
    let mut seed = 100;
    let mut processes: Vec<Process> = (0..ENGINES)
        .map(|_| {
            seed += 1;
            spawn_engine(&url, seed, size.seconds, size.workflows)
        })
        .collect();
    let mut counts = Counts::default();
    let (mut kills, mut restarts) = (0, 0);
    let kill_every = Duration::from_millis(1_500);
    let mut next_kill = kill_every;
    let restart_at = run / 2;
    while started.elapsed() + Duration::from_secs(2) < run {
        std::thread::sleep(Duration::from_millis(100));
        if restarts == 0 && started.elapsed() >= restart_at {
            cluster.stop("immediate").expect("crash the server");
            std::thread::sleep(Duration::from_millis(1_500));
            cluster.start_again().expect("restart the server");
            restarts += 1;
        }
        if started.elapsed() >= next_kill {
            next_kill += kill_every;
            let victim = rng.below(ENGINES);
            let process = &mut processes[victim];
            process.child.kill().expect("SIGKILL");
            let _ = process.child.wait();
            kills += 1;
            seed += 1;
            let left = run.saturating_sub(started.elapsed()).as_secs().max(1);
            let old = std::mem::replace(process, spawn_engine(&url, seed, left, size.workflows));
            counts.add(&old.progress.join().unwrap_or_default());
        }
    }
    for mut process in processes {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match process.child.try_wait().expect("wait") {
                Some(status) => {
                    assert!(status.success(), "an engine process failed: {status}");
                    break;
                }
                None if Instant::now() > deadline => {
                    process.child.kill().expect("kill a stuck engine");
                    panic!("an engine process did not stop at its deadline");
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        counts.add(&process.progress.join().unwrap_or_default());
    }
    let run_seconds = started.elapsed().as_secs_f64();

    let mut violations = Vec::new();
    let after_crashes = setup.snapshot().expect("snapshot");
    // The engines start workflows of their own when nothing is due.
    assert!(after_crashes.workflow_count() >= size.workflows);
    let live = after_crashes
        .workflows()
        .filter(|workflow| !workflow.status().is_terminal())
        .count();
    check_at_rest(&after_crashes, &mut violations);

    let (settled, settled_all) = drive_to_terminal(&url);
    if !settled_all {
        violations.push(String::from(
            "the final drive did not settle every workflow",
        ));
    }
    if !violations.is_empty() {
        // What the crashes left is the finding; the final drive only shows its consequences.
        let first: Vec<&String> = violations.iter().take(20).collect();
        eprintln!(
            "{} violations after the crashes, the first: {first:#?}",
            violations.len()
        );
    }
    check_at_rest(&settled, &mut violations);
    for workflow in settled.workflows() {
        if !workflow.status().is_terminal() {
            violations.push(format!("{}: not terminal at the end", workflow.id()));
        }
        for task in workflow.tasks() {
            if !task.status.is_terminal() {
                violations.push(format!(
                    "{}: {} left {:?}",
                    workflow.id(),
                    task.id,
                    task.status
                ));
            }
        }
    }
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let count = |client: &mut postgres::Client, sql: &str| -> i64 {
        client.query_one(sql, &[]).expect("count").get(0)
    };
    let owed = count(&mut client, "SELECT count(*) FROM crash_owed");
    let performed = count(&mut client, "SELECT count(*) FROM crash_performed");
    let unperformed = count(
        &mut client,
        "SELECT count(*) FROM crash_owed o WHERE NOT EXISTS (SELECT 1 FROM crash_performed p \
         WHERE p.workflow_id = o.workflow_id AND p.version = o.version AND p.effect = o.effect)",
    );
    if unperformed > 0 {
        violations.push(format!("{unperformed} owed effects never performed (I7)"));
    }
    let statuses: BTreeSet<String> = settled
        .workflows()
        .map(|workflow| workflow.status().as_str().to_string())
        .collect();
    let total = settled.workflow_count();
    println!(
        "crash test: {total} workflows ({} started by the test), {} engine processes, {run_seconds:.1} s, {} operations \
         (last progress line of each process), {kills} kills, {restarts} server restart, \
         {} store failures seen, {} of them ambiguous, {live} workflows live after the crashes, \
         final statuses {statuses:?}, {owed} effects owed, {performed} performed \
         ({unperformed} never), {} violations",
        size.workflows,
        ENGINES,
        counts.ops,
        counts.failures,
        counts.ambiguous,
        violations.len()
    );
    let first: Vec<&String> = violations.iter().take(20).collect();
    assert!(
        violations.is_empty(),
        "{} violations, the first: {first:#?}",
        violations.len()
    );
    assert!(kills >= 2, "the run was too short to kill engines");
    assert_eq!(restarts, 1);
    assert!(counts.ops > 0 && owed > 0);
}

#[test]
fn postgres_engine_command_refuses_bad_arguments_without_panicking() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wfstate"))
            .arg("engine")
            .args(args)
            .output()
            .expect("run wfstate engine")
    };
    let code = |args: &[&str]| run(args).status.code();
    assert_eq!(code(&[]), Some(2), "no --postgres");
    assert_eq!(code(&["--postgres"]), Some(2), "no value");
    assert_eq!(code(&["--postgres", "x", "--seconds", "soon"]), Some(2));
    assert_eq!(code(&["--postgres", "x", "--workflows", "0"]), Some(2));
    assert_eq!(
        code(&["--postgres", "x", "--record-effects", "t; DROP"]),
        Some(2)
    );
    assert_eq!(code(&["--postgres", "x", "--bogus"]), Some(2));
    let huge = u64::MAX.to_string();
    assert_eq!(code(&["--postgres", "x", "--seconds", &huge]), Some(2));
    // A connection string that does not parse is not retried.
    let bad = run(&[
        "--postgres",
        "not a connection string ===",
        "--seconds",
        "30",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid PostgreSQL connection string"));
    assert_eq!(code(&["--help"]), Some(0));
}
