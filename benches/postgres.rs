//! PostgreSQL throughput (issue 11): operations per second of the report/sweep mix of
//! `benches/runtime.rs` on a real server (a throwaway cluster, durability on: every commit waits
//! for its WAL flush), with 1 and 4 client threads:
//!
//! - `validated`: `Engine` over `PostgresStore`: leased pops and polls, the lease, every write a
//!   compare-and-swap transaction with its queue plan and outbox rows, the outbox drained every
//!   64 loop turns;
//! - `blind`: Conductor's DAO on the same tables and the same queue SQL: each write a separate
//!   autocommit statement, workflows written with `UPDATE wf_workflows SET data = $2 WHERE
//!   id = $1` (no version, no transaction, no outbox), the sweeper under the same lease rows;
//! - `pgbench -N` (simple update, 4 clients) on the same server, the physical reference.
//!
//! Each configuration runs `WFSTATE_PG_BENCH_SECONDS` (default 5) in a fresh schema, three rounds
//! in turn; the figures are medians. Workflows/s counts workflows that reached COMPLETED.
//! Run: `cargo bench --bench postgres` (see `docs/performance.md`).

#![allow(clippy::disallowed_methods)] // A benchmark owns the clock.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use postgres::types::Json;
use postgres::{Client, NoTls};
use wfstate::runtime::postgres::Cluster;
use wfstate::runtime::{Engine, EngineConfig, OutboxEntry, PostgresStore, Sweep};
use wfstate::{
    Definition, Report, ReportStatus, Task, TaskDefinition, TaskId, TaskStatus, Workflow,
    WorkflowId, WorkflowStatus,
};

const REFERENCES: [&str; 3] = ["fetch", "charge", "ship"];
const ROUNDS: usize = 3;
const NOW_MS: u64 = 0;

trait Runtime: Sync {
    /// One thread's private state (the blind DAO's connection).
    type Local;
    fn local(&self) -> Self::Local;
    fn start(&self, local: &mut Self::Local, id: WorkflowId);
    fn sweep(&self, local: &mut Self::Local) -> bool;
    fn poll(&self, local: &mut Self::Local, reference: &str) -> Option<(WorkflowId, TaskId)>;
    fn complete(&self, local: &mut Self::Local, workflow: &WorkflowId, task: TaskId);
    fn run_effects(&self, local: &mut Self::Local);
}

struct Validated(Engine<PostgresStore>);

impl Runtime for Validated {
    type Local = ();
    fn local(&self) {}

    fn start(&self, (): &mut (), id: WorkflowId) {
        self.0.start(id, NOW_MS).expect("fresh id");
    }

    fn sweep(&self, (): &mut ()) -> bool {
        !matches!(self.0.sweep_once(NOW_MS), Ok(Sweep::Empty))
    }

    fn poll(&self, (): &mut (), reference: &str) -> Option<(WorkflowId, TaskId)> {
        let polled = self.0.poll_task(reference, NOW_MS).ok()??;
        Some((polled.workflow, polled.task))
    }

    fn complete(&self, (): &mut (), workflow: &WorkflowId, task: TaskId) {
        let report = Report::new(task, ReportStatus::Completed);
        black_box(self.0.report(workflow, report, NOW_MS).expect("legal"));
    }

    fn run_effects(&self, (): &mut ()) {
        let mut handler = |entry: &OutboxEntry| -> Result<(), Infallible> {
            black_box(entry);
            Ok(())
        };
        while self.0.run_outbox(&mut handler, NOW_MS, 64).performed > 0 {}
    }
}

/// Conductor's DAO: blind writes, one autocommit statement each, the same queue SQL. With
/// `async_bookkeeping`, its lease and queue statements commit asynchronously as
/// `PostgresStore`'s do (its workflow writes stay synchronous): the same durability policy, so
/// the difference to `validated` is what validation costs.
struct Blind {
    url: String,
    tokens: AtomicU64,
    async_bookkeeping: bool,
}

const POP: &str = "WITH first AS (SELECT workflow_id FROM wf_decider WHERE due_ms <= $1 \
    ORDER BY due_ms, placed LIMIT 1 FOR UPDATE SKIP LOCKED) \
    UPDATE wf_decider d SET due_ms = $2, placed = nextval('wf_placement'), holder_owner = $3, \
    holder_serial = $4 FROM first WHERE d.workflow_id = first.workflow_id RETURNING d.workflow_id";
const ACQUIRE: &str = "INSERT INTO wf_leases AS l (workflow_id, owner, serial, expires_at_ms) \
    VALUES ($1, $2, $3, $4) ON CONFLICT (workflow_id) DO UPDATE SET owner = EXCLUDED.owner, \
    serial = EXCLUDED.serial, expires_at_ms = EXCLUDED.expires_at_ms \
    WHERE (l.owner = EXCLUDED.owner AND l.serial = EXCLUDED.serial) OR l.expires_at_ms <= $5 \
    RETURNING owner";
const RELEASE: &str = "DELETE FROM wf_leases WHERE workflow_id = $1 AND owner = $2 AND serial = $3";
const HAND_BACK: &str = "UPDATE wf_decider SET due_ms = $2, placed = nextval('wf_placement'), \
    holder_owner = NULL, holder_serial = NULL WHERE workflow_id = $1";
const PUSH_DECIDER: &str = "INSERT INTO wf_decider (workflow_id, due_ms, placed) \
    VALUES ($1, $2, nextval('wf_placement'))";
const LEAVE: &str = "DELETE FROM wf_decider WHERE workflow_id = $1";
const PUSH_TASK: &str = "INSERT INTO wf_tasks (task_id, workflow_id, reference_name, due_ms, \
    placed) VALUES ($1, $2, $3, $4, nextval('wf_placement')) ON CONFLICT (task_id) DO NOTHING";
const POLL: &str = "WITH first AS (SELECT task_id FROM wf_tasks WHERE reference_name = $1 \
    AND due_ms <= $2 ORDER BY due_ms, placed LIMIT 1 FOR UPDATE SKIP LOCKED) \
    UPDATE wf_tasks t SET due_ms = $3, placed = nextval('wf_placement') FROM first \
    WHERE t.task_id = first.task_id RETURNING t.task_id, t.workflow_id";
const REMOVE_TASK: &str = "DELETE FROM wf_tasks WHERE task_id = $1";
const LOAD: &str = "SELECT data FROM wf_workflows WHERE id = $1";
const WRITE: &str = "UPDATE wf_workflows SET data = $2, status = $3 WHERE id = $1";
const INSERT: &str = "INSERT INTO wf_workflows (id, version, status, data) VALUES ($1, 0, $2, $3)";

impl Blind {
    fn load(client: &mut Client, id: &WorkflowId) -> (WorkflowStatus, Vec<Task>) {
        let row = client.query_one(LOAD, &[&id.as_str()]).expect("load");
        let Json(workflow): Json<Workflow> = row.get(0);
        (workflow.status(), workflow.tasks().to_vec())
    }

    fn write(client: &mut Client, id: &WorkflowId, status: WorkflowStatus, tasks: Vec<Task>) {
        let workflow = Workflow::from_parts(id.clone(), status, 0, tasks).expect("well formed");
        // Synchronous whatever the session says: `SET LOCAL` needs a transaction, so the write
        // is one (still a single blind statement, as the DAO's).
        let mut tx = client.transaction().expect("begin");
        tx.batch_execute("SET LOCAL synchronous_commit = on")
            .expect("set");
        tx.execute(WRITE, &[&id.as_str(), &Json(&workflow), &status.as_str()])
            .expect("blind write");
        tx.commit().expect("commit");
    }

    fn set_status(client: &mut Client, id: &WorkflowId, task: &TaskId, status: TaskStatus) {
        let (workflow_status, mut tasks) = Blind::load(client, id);
        if let Some(found) = tasks.iter_mut().find(|t| t.id == *task) {
            found.status = status;
        }
        Blind::write(client, id, workflow_status, tasks);
    }
}

impl Runtime for Blind {
    type Local = Client;

    fn local(&self) -> Client {
        let mut client = Client::connect(&self.url, NoTls).expect("connect");
        if self.async_bookkeeping {
            client
                .batch_execute("SET synchronous_commit = off")
                .expect("set");
        }
        client
    }

    fn start(&self, client: &mut Client, id: WorkflowId) {
        let workflow = Workflow::new(id.clone());
        let mut tx = client.transaction().expect("begin");
        tx.batch_execute("SET LOCAL synchronous_commit = on")
            .expect("set");
        tx.execute(INSERT, &[&id.as_str(), &"RUNNING", &Json(&workflow)])
            .expect("insert");
        tx.commit().expect("commit");
        client
            .execute(PUSH_DECIDER, &[&id.as_str(), &0i64])
            .expect("enqueue");
    }

    fn sweep(&self, client: &mut Client) -> bool {
        let serial = self.tokens.fetch_add(1, Ordering::Relaxed) as i64;
        let owner = 7i64;
        let Some(row) = client
            .query_opt(POP, &[&0i64, &60_000i64, &owner, &serial])
            .expect("pop")
        else {
            return false;
        };
        let id = WorkflowId::new(row.get::<_, String>(0));
        let key = id.as_str();
        let acquired = client
            .query_opt(ACQUIRE, &[&key, &owner, &serial, &60_000i64, &0i64])
            .expect("acquire");
        if acquired.is_none() {
            client
                .execute(HAND_BACK, &[&key, &0i64])
                .expect("hand back");
            return true;
        }
        let (_, mut tasks) = Blind::load(client, &id);
        let mut next = None;
        let mut done = true;
        for reference in REFERENCES {
            let latest = tasks.iter().rev().find(|t| t.reference_name == reference);
            match latest.map(|t| t.status) {
                None => {
                    next = Some(reference);
                    done = false;
                    break;
                }
                Some(TaskStatus::Completed) => continue,
                Some(_) => {
                    done = false;
                    break;
                }
            }
        }
        if let Some(reference) = next {
            let task = TaskId::attempt(&id, reference, 0);
            tasks.push(Task {
                id: task.clone(),
                reference_name: reference.into(),
                status: TaskStatus::Scheduled,
                retry_count: 0,
                iteration: 0,
                optional: false,
            });
            Blind::write(client, &id, WorkflowStatus::Running, tasks);
            client
                .execute(PUSH_TASK, &[&task.as_str(), &key, &reference, &0i64])
                .expect("push task");
            client.execute(HAND_BACK, &[&key, &0i64]).expect("wake");
        } else if done {
            Blind::write(client, &id, WorkflowStatus::Completed, tasks);
            client.execute(LEAVE, &[&key]).expect("leave");
        } else {
            client.execute(HAND_BACK, &[&key, &0i64]).expect("wake");
        }
        client
            .execute(RELEASE, &[&key, &owner, &serial])
            .expect("release");
        true
    }

    fn poll(&self, client: &mut Client, reference: &str) -> Option<(WorkflowId, TaskId)> {
        let row = client
            .query_opt(POLL, &[&reference, &0i64, &60_000i64])
            .expect("poll")?;
        let task = TaskId::new(row.get::<_, String>(0));
        let workflow = WorkflowId::new(row.get::<_, String>(1));
        Blind::set_status(client, &workflow, &task, TaskStatus::InProgress);
        Some((workflow, task))
    }

    fn complete(&self, client: &mut Client, workflow: &WorkflowId, task: TaskId) {
        Blind::set_status(client, workflow, &task, TaskStatus::Completed);
        client
            .execute(REMOVE_TASK, &[&task.as_str()])
            .expect("remove task");
        client
            .execute(HAND_BACK, &[&workflow.as_str(), &0i64])
            .expect("wake");
    }

    fn run_effects(&self, _: &mut Client) {}
}

/// One thread's loop for `run` (the mix of `benches/runtime.rs`); operations performed.
fn drive<R: Runtime>(runtime: &R, thread: usize, run: Duration) -> u64 {
    let mut local = runtime.local();
    let started = Instant::now();
    let (mut performed, mut begun, mut turns) = (0u64, 0u64, 0u64);
    while started.elapsed() < run {
        if !runtime.sweep(&mut local) {
            let id = WorkflowId::new(format!("wf-{thread}-{begun}"));
            runtime.start(&mut local, id);
            begun += 1;
        }
        performed += 1;
        for reference in REFERENCES {
            while let Some((workflow, task)) = runtime.poll(&mut local, reference) {
                runtime.complete(&mut local, &workflow, task);
                performed += 2;
            }
        }
        turns += 1;
        if turns % 64 == 0 {
            runtime.run_effects(&mut local);
        }
    }
    runtime.run_effects(&mut local);
    performed
}

/// Operations/s and completed workflows/s of one run.
fn measure<R: Runtime>(runtime: &R, threads: usize, run: Duration, url: &str) -> (f64, f64) {
    let started = Instant::now();
    let performed: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|thread| scope.spawn(move || drive(runtime, thread, run)))
            .collect();
        workers.into_iter().map(|w| w.join().expect("driver")).sum()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut client = Client::connect(url, NoTls).expect("connect");
    let completed: i64 = client
        .query_one(
            "SELECT count(*) FROM wf_workflows WHERE status = 'COMPLETED'",
            &[],
        )
        .expect("count")
        .get(0);
    (performed as f64 / elapsed, completed as f64 / elapsed)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn pgbench(cluster: &Cluster, clients: usize, seconds: u64) -> f64 {
    let (dir, port) = cluster.socket();
    let (dir, port) = (dir.display().to_string(), port.to_string());
    let base = ["-h", &dir, "-p", &port, "-U", "postgres"];
    let init = cluster
        .command_in_path("pgbench")
        .args(base)
        .args(["-i", "-q", "-s", "4", "postgres"])
        .output()
        .expect("pgbench -i");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let clients = clients.to_string();
    let run = cluster
        .command_in_path("pgbench")
        .args(base)
        .args([
            "-N",
            "-c",
            &clients,
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "postgres",
        ])
        .output()
        .expect("pgbench -N");
    let text = String::from_utf8_lossy(&run.stdout);
    text.lines()
        .find(|line| line.starts_with("tps = "))
        .and_then(|line| line["tps = ".len()..].split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .unwrap_or(f64::NAN)
}

fn main() {
    let seconds = std::env::var("WFSTATE_PG_BENCH_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(5);
    let run = Duration::from_secs(seconds);
    let cluster = match Cluster::start() {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!("postgres bench: no server: {error}");
            return;
        }
    };
    let admin = PostgresStore::open(&cluster.url()).expect("open");
    let mut schemas = 0;
    let mut fresh = || {
        schemas += 1;
        let schema = format!("bench_{schemas}");
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("schema");
        let url = format!("{} options='-c search_path={schema}'", cluster.url());
        // Creates the tables in the new schema.
        let store = PostgresStore::open(&url).expect("open");
        (url, store)
    };
    let definition = Definition::new(REFERENCES.map(TaskDefinition::new));
    let mut config = EngineConfig::default();
    config.sweep_delay_ms = 0;
    println!(
        "report/sweep mix on PostgreSQL 15 (fsync on), {seconds} s per run, median of {ROUNDS} rounds"
    );
    println!("| threads | blind (ops/s) | blind, async bookkeeping (ops/s) | validated (ops/s) | validated / blind | validated / blind async | validated workflows/s | blind workflows/s |");
    println!("|---|---|---|---|---|---|---|---|");
    for threads in [1, 4] {
        let (mut blind, mut blind_async, mut validated, mut blind_wf, mut validated_wf) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let (url, _store) = fresh();
            let runtime = Blind {
                url: url.clone(),
                tokens: AtomicU64::new(0),
                async_bookkeeping: false,
            };
            let (ops, workflows) = measure(&runtime, threads, run, &url);
            blind.push(ops);
            blind_wf.push(workflows);
            let (url, _store) = fresh();
            let runtime = Blind {
                url: url.clone(),
                tokens: AtomicU64::new(0),
                async_bookkeeping: true,
            };
            blind_async.push(measure(&runtime, threads, run, &url).0);
            let (url, store) = fresh();
            let runtime = Validated(Engine::with_config(
                store,
                definition.clone(),
                config.clone(),
            ));
            let (ops, workflows) = measure(&runtime, threads, run, &url);
            validated.push(ops);
            validated_wf.push(workflows);
        }
        let (blind, blind_async, validated) =
            (median(blind), median(blind_async), median(validated));
        println!(
            "| {threads} | {blind:.0} | {blind_async:.0} | {validated:.0} | {:.2} | {:.2} | {:.0} | {:.0} |",
            validated / blind,
            validated / blind_async,
            median(validated_wf),
            median(blind_wf)
        );
    }
    let tps: Vec<f64> = (0..ROUNDS).map(|_| pgbench(&cluster, 4, seconds)).collect();
    println!(
        "pgbench -N, 4 clients, {seconds} s: median {:.0} tps",
        median(tps)
    );
}
