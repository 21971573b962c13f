//! `wfstate engine --postgres URL [--seconds N] [--seed N] [--workflows N] [--fail-percent P]
//! [--record-effects TABLE]`: one engine process over a shared [`PostgresStore`], running a
//! random mix for `N` seconds: sweeps (a sweep that finds nothing due starts a new workflow of
//! the process's own, so the load goes on), polls, reports (with duplicate and late
//! deliveries), terminate, pause, resume and retry on the workflows `wf-0` .. `wf-{N-1}` and its
//! own, and the outbox
//! through an effect handler that fails `P` percent of the time. With `--record-effects`, each
//! effect the handler performs is a row `(workflow_id, version, effect, performer)` in `TABLE`
//! before the handler reports success.
//!
//! The crash test (`models/tests/postgres_crash.rs`) runs several of these, SIGKILLs and restarts
//! them and restarts the server under them. The process reads the wall clock (it is the caller
//! that owns time; `wfstate` never reads one) and prints a progress line every 50 operations:
//! `progress ops=N ambiguous=A failures=F`. A store failure never stops it: it waits a little and
//! goes on, as an engine does when its database restarts. Exit status 0 at the deadline, 1 when
//! the store cannot be opened (a bad connection string, a schema of another version, no server
//! until the deadline), 2 on a usage error.

// This process is the caller: it owns the clock and decides when to wait.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use postgres::NoTls;
use wfstate::runtime::postgres::PostgresError;
use wfstate::runtime::{
    AdminError, CallFailed, Engine, EngineConfig, OutboxEntry, PollError, PostgresStore,
    ReportError, StartError, Sweep, SweepError,
};
use wfstate::{Definition, Report, ReportStatus, TaskDefinition, TaskId, WorkflowId};

/// The task references of the crash test's definition.
pub const REFERENCES: [&str; 3] = ["fetch", "charge", "notify"];

/// The definition every engine process (and the crash test's final driver) runs.
pub fn definition() -> Definition {
    Definition::new([
        TaskDefinition::new("fetch").retries(1),
        TaskDefinition::new("charge").retries(1),
        TaskDefinition::new("notify").optional(),
    ])
}

/// Leases and visibility short enough that a killed process's leases and hidden entries come
/// back within the run.
pub fn config() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.lease_ms = 1_500;
    config.sweep_delay_ms = 20;
    config.unack_ms = 1_000;
    config.task_visibility_ms = 1_000;
    config.outbox_claim_ms = 500;
    config
}

/// Run one engine process over a shared PostgreSQL store (the crash test's load)
///
/// A random mix of sweeps, polls, reports, admin operations and outbox runs until the deadline.
/// Exit 0 at the deadline, 1 when the store cannot be opened.
#[derive(Debug, clap::Args)]
// A repeated option takes its last value, as the hand-written parsers did.
#[command(args_override_self = true)]
pub struct Args {
    /// The PostgreSQL connection string
    #[arg(long = "postgres", value_name = "URL")]
    url: String,
    /// Run this long
    #[arg(long, value_name = "N", default_value_t = 10)]
    seconds: u64,
    /// The seed of the random mix
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// Operate on the shared workflows wf-0 .. wf-{N-1} (and on the process's own)
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    workflows: u64,
    /// The effect handler fails this percent of the time
    #[arg(long = "fail-percent", value_name = "P", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=100))]
    fail_percent: u64,
    /// Record each performed effect as a row (workflow_id, version, effect, performer) in this
    /// table (letters, digits and underscores)
    #[arg(long = "record-effects", value_name = "TABLE", value_parser = plain_table_name)]
    record: Option<String>,
}

/// `--record-effects`' value goes into SQL as an identifier: only a plain name is taken.
fn plain_table_name(table: &str) -> Result<String, String> {
    let plain = !table.is_empty() && table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        Ok(table.to_string())
    } else {
        Err(format!("a plain table name, not {table:?}"))
    }
}

/// Runs the subcommand.
pub fn run(options: Args) -> ExitCode {
    let Some(deadline) = Instant::now().checked_add(Duration::from_secs(options.seconds)) else {
        eprintln!("wfstate engine: --seconds {} is too large", options.seconds);
        return ExitCode::from(2);
    };
    let store = loop {
        match PostgresStore::open(&options.url) {
            Ok(store) => break store,
            // A connection string that does not parse, or a schema of another version, will
            // not change by waiting.
            Err(error @ (PostgresError::Config(_) | PostgresError::Schema { .. })) => {
                eprintln!("wfstate engine: {error}");
                return ExitCode::from(1);
            }
            Err(error) if Instant::now() < deadline => {
                eprintln!("wfstate engine: {error}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(error) => {
                eprintln!("wfstate engine: {error}");
                return ExitCode::from(1);
            }
        }
    };
    let engine = Engine::with_config(store, definition(), config());
    let mut recorder = options
        .record
        .as_ref()
        .map(|table| Recorder::new(&options.url, table, options.seed));
    let mut run = Run {
        rng: options.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        held: Vec::new(),
        started: Vec::new(),
        ops: 0,
        ambiguous: 0,
        failures: 0,
    };
    while Instant::now() < deadline {
        let failed = run.step(&engine, &options, recorder.as_mut());
        run.ops += 1;
        if let Some(failed) = failed {
            run.failures += 1;
            run.ambiguous += u64::from(failed.is_ambiguous());
            // The database may be restarting: give it a moment, as an engine would.
            std::thread::sleep(Duration::from_millis(20));
        }
        if run.ops.is_multiple_of(50) {
            run.progress();
        }
    }
    run.progress();
    ExitCode::SUCCESS
}

/// Records performed effects in a table, through its own connection.
struct Recorder {
    url: String,
    table: String,
    performer: String,
    client: Option<postgres::Client>,
}

impl Recorder {
    fn new(url: &str, table: &str, seed: u64) -> Self {
        Recorder {
            url: url.to_string(),
            table: table.to_string(),
            performer: format!("engine-{seed}-{}", std::process::id()),
            client: None,
        }
    }

    fn record(&mut self, entry: &OutboxEntry) -> Result<(), String> {
        if self.client.as_ref().is_none_or(postgres::Client::is_closed) {
            let client = postgres::Client::connect(&self.url, NoTls).map_err(|e| e.to_string())?;
            self.client = Some(client);
        }
        let Some(client) = self.client.as_mut() else {
            return Err(String::from("no connection"));
        };
        let effect = serde_json::to_value(&entry.effect).map_err(|e| e.to_string())?;
        let version = i64::try_from(entry.version).map_err(|e| e.to_string())?;
        let sql = format!(
            "INSERT INTO {} (workflow_id, version, effect, performer) VALUES ($1, $2, $3, $4)",
            self.table
        );
        let result = client.execute(
            sql.as_str(),
            &[
                &entry.workflow.as_str(),
                &version,
                &postgres::types::Json(effect),
                &self.performer,
            ],
        );
        match result {
            Ok(_) => Ok(()),
            Err(error) => {
                self.client = None;
                Err(error.to_string())
            }
        }
    }
}

struct Run {
    rng: u64,
    held: Vec<(WorkflowId, TaskId)>,
    /// The workflows this process started (beyond `wf-0` .. `wf-{N-1}`).
    started: Vec<WorkflowId>,
    ops: u64,
    ambiguous: u64,
    failures: u64,
}

/// The wall clock in milliseconds: the caller's time, shared by the processes on this machine.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Run {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn progress(&self) {
        println!(
            "progress ops={} ambiguous={} failures={}",
            self.ops, self.ambiguous, self.failures
        );
        let _ = std::io::stdout().flush();
    }

    /// One random operation; the store failure it met, if any.
    fn step(
        &mut self,
        engine: &Engine<PostgresStore>,
        options: &Args,
        recorder: Option<&mut Recorder>,
    ) -> Option<CallFailed> {
        let now = now_ms();
        let id = if !self.started.is_empty() && self.below(2) == 0 {
            let index = self.below(self.started.len() as u64) as usize;
            self.started[index].clone()
        } else {
            WorkflowId::new(format!("wf-{}", self.below(options.workflows)))
        };
        match self.below(100) {
            0..=39 => match engine.sweep_once(now) {
                Err(SweepError::Store(failed)) => Some(failed),
                // Nothing due: the load goes on with a new workflow of this process's own.
                Ok(Sweep::Empty) => {
                    let fresh = WorkflowId::new(format!(
                        "p{}-{}-{}",
                        options.seed,
                        std::process::id(),
                        self.started.len()
                    ));
                    match engine.start(fresh.clone(), now) {
                        Err(StartError::Store(failed)) => Some(failed),
                        _ => {
                            self.started.push(fresh);
                            None
                        }
                    }
                }
                Ok(_) | Err(_) => None,
            },
            40..=64 => {
                let reference = REFERENCES[self.below(3) as usize];
                match engine.poll_task(reference, now) {
                    Ok(Some(polled)) => {
                        self.held.push((polled.workflow, polled.task));
                        None
                    }
                    Err(PollError::Store(failed)) => Some(failed),
                    _ => None,
                }
            }
            65..=84 if !self.held.is_empty() => {
                let index = self.below(self.held.len() as u64) as usize;
                // A fifth of the reports stay held: delivered again later (a duplicate or a
                // late report).
                let (workflow, task) = if self.below(5) == 0 {
                    self.held[index].clone()
                } else {
                    self.held.swap_remove(index)
                };
                let status = match self.below(20) {
                    0..=13 => ReportStatus::Completed,
                    14..=16 => ReportStatus::Failed,
                    17..=18 => ReportStatus::InProgress,
                    _ => ReportStatus::FailedWithTerminalError,
                };
                match engine.report(&workflow, Report::new(task, status), now) {
                    Err(ReportError::Store(failed)) => Some(failed),
                    _ => None,
                }
            }
            85..=89 => {
                let result = match self.below(4) {
                    0 => engine.terminate(&id, now),
                    1 => engine.pause(&id, now),
                    2 => engine.resume(&id, now),
                    _ => engine.retry(&id, now),
                };
                match result {
                    Err(AdminError::Store(failed)) => Some(failed),
                    _ => None,
                }
            }
            90..=91 => match engine.start(id, now) {
                Err(StartError::Store(failed)) => Some(failed),
                _ => None,
            },
            _ => {
                let fail_percent = options.fail_percent;
                let mut seed = self.next();
                let mut recorder = recorder;
                let mut handler = |entry: &OutboxEntry| -> Result<(), String> {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    if (seed >> 33) % 100 < fail_percent {
                        return Err(String::from("the listener is down"));
                    }
                    match recorder.as_deref_mut() {
                        Some(recorder) => recorder.record(entry),
                        None => Ok(()),
                    }
                };
                engine.run_outbox(&mut handler, now, 16).store_failure
            }
        }
    }
}
