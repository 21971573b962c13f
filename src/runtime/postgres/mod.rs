//! The PostgreSQL store (feature `postgres`, issue 11): every call of the store contract in SQL,
//! so several engine processes on several machines share one database with the same verified
//! protocol. `docs/postgres.md` gives the schema, the SQL of each call, the isolation it needs
//! and why, which clock it uses, and how each failure maps to a [`StoreFailure`].
//!
//! - A commit is one transaction: the compare-and-swap (`UPDATE ... WHERE id = $1 AND
//!   version = $2`), its queue plan and its outbox rows; a crash leaves all or nothing.
//! - Decider-queue pops and task polls lease the first due row (`FOR UPDATE SKIP LOCKED`) and
//!   hide it in the same statement; nothing is removed by taking it.
//! - Leases are rows with their owner token, released only by it.
//! - Times are the caller's `now_ms`, as in every store: correctness never depends on them,
//!   because the version fences every write.
//!
//! Every call runs at READ COMMITTED: each is a single statement, or a transaction whose rows
//! are locked by the statements that read them (`FOR UPDATE`), so no call reads a row it then
//! writes without holding its lock.

mod cluster;
mod schema;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::Json;
use postgres::{Client, NoTls, Row, Statement, Transaction};

use super::hash::Map;

use super::contract::{
    Call, CommitReply, DeciderPlan, Lease, LeaseToken, OutboxEntry, QueuePlan, QueuedTask, Receipt,
    Reply, Store, StoreFailure,
};
use super::state::StoreState;
use crate::{
    Effect, Phase, ReferenceName, Step, TaskId, TaskStatus, Workflow, WorkflowId, WorkflowStatus,
};

pub use cluster::{Cluster, ClusterError};
pub use schema::CURRENT as SCHEMA_VERSION;

/// Why a [`PostgresStore`] could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The connection string does not parse.
    #[error("invalid PostgreSQL connection string: {0}")]
    Config(#[source] postgres::Error),
    /// The server could not be reached, or refused the connection.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] postgres::Error),
    /// The database holds a wfstate schema of another version: it is left as it is.
    #[error(
        "the database holds wfstate schema version {found}; this build uses version {expected}"
    )]
    Schema {
        /// The version found.
        found: i32,
        /// The version this build uses ([`SCHEMA_VERSION`]).
        expected: i32,
    },
    /// A statement failed while opening (creating or checking the schema).
    #[error("PostgreSQL error while opening the store: {0}")]
    Sql(#[source] postgres::Error),
}

/// A store in a PostgreSQL database, shared by every engine process that opens the same
/// database. Its connections are pooled: a call takes an idle one or opens one, and a broken
/// one is dropped (the next call reconnects).
pub struct PostgresStore {
    config: postgres::Config,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
    /// The workflows this store loaded last, by id: a commit applies its step to the copy at
    /// the step's read version instead of reading it again (the compare-and-swap still checks
    /// the stored version).
    loaded: Mutex<Map<WorkflowId, Arc<Workflow>>>,
    cache: bool,
}

/// At most this many cached workflows (then the cache starts over).
const CACHE: usize = 4096;

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("max_idle", &self.max_idle)
            .finish_non_exhaustive()
    }
}

/// How long a connection attempt may take before the call fails as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl PostgresStore {
    /// Opens the store in the database at `url` (a `postgresql://` URL or `key=value`
    /// connection string), creating the schema if the database has none. A schema of another
    /// version is [`PostgresError::Schema`] and is never altered.
    pub fn open(url: &str) -> Result<PostgresStore, PostgresError> {
        let mut config: postgres::Config = url.parse().map_err(PostgresError::Config)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let mut client = config.connect(NoTls).map_err(PostgresError::Connect)?;
        ensure_schema(&mut client)?;
        let first = Connection::prepare(client).map_err(PostgresError::Sql)?;
        Ok(PostgresStore {
            config,
            idle: Mutex::new(vec![first]),
            max_idle: 16,
            loaded: Mutex::new(Map::default()),
            cache: true,
        })
    }

    /// Whether a commit may apply its step to this store's own copy of the workflow as it loaded
    /// it at the step's read version (default `true`), or always reads the stored workflow
    /// under a row lock first. Either way the compare-and-swap checks the stored version.
    pub fn with_load_cache(mut self, cache: bool) -> Self {
        self.cache = cache;
        self
    }

    /// Keeps at most `max_idle` idle connections (default 16).
    pub fn with_max_idle(mut self, max_idle: usize) -> Self {
        self.max_idle = max_idle.max(1);
        self
    }

    /// The whole store read in one transaction (REPEATABLE READ, so every table is read at one
    /// instant), as the pure [`StoreState`] it must equal: for checks, tests and tools.
    pub fn snapshot(&self) -> Result<StoreState, StoreFailure> {
        self.with_connection(|connection| {
            let mut tx = connection
                .client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(not_done)?;
            let state = read_state(&mut tx)?;
            tx.commit().map_err(not_done)?;
            Ok(state)
        })
    }

    /// Runs `sql` (statements separated by `;`, no parameters) on a pooled connection: for tools
    /// and tests that inspect or prepare the database.
    pub fn batch_execute(&self, sql: &str) -> Result<(), StoreFailure> {
        self.with_connection(|connection| connection.client.batch_execute(sql).map_err(ambiguous))
    }

    /// Drops every idle connection (the next call opens a new one).
    pub fn disconnect(&self) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn connect(&self) -> Result<Connection, StoreFailure> {
        let client = self.config.connect(NoTls).map_err(|error| {
            StoreFailure::unavailable(format!("cannot connect to PostgreSQL: {error}"))
        })?;
        Connection::prepare(client).map_err(|error| {
            StoreFailure::unavailable(format!("cannot prepare the store's statements: {error}"))
        })
    }

    fn with_connection<T>(
        &self,
        mut work: impl FnMut(&mut Connection) -> Result<T, StoreFailure>,
    ) -> Result<T, StoreFailure> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let (mut connection, pooled) = match idle {
            Some(connection) if !connection.client.is_closed() => (connection, true),
            _ => (self.connect()?, false),
        };
        let mut result = work(&mut connection);
        // An idle connection the server dropped meanwhile (a restart, an idle timeout): a call
        // that certainly did not happen on it is tried once more on a fresh connection.
        if pooled
            && connection.client.is_closed()
            && matches!(result, Err(StoreFailure::NotDone { .. }))
        {
            connection = self.connect()?;
            result = work(&mut connection);
        }
        // A connection whose transaction was cut off is closed or aborted: drop it.
        if !connection.client.is_closed() && !connection.poisoned {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < self.max_idle {
                idle.push(connection);
            }
        }
        result
    }
}

impl PostgresStore {
    fn remember(&self, workflow: Arc<Workflow>) {
        if !self.cache {
            return;
        }
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if loaded.len() >= CACHE {
            loaded.clear();
        }
        loaded.insert(workflow.id().clone(), workflow);
    }

    fn take(&self, id: &WorkflowId) -> Option<Arc<Workflow>> {
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
    }
}

impl Store for PostgresStore {
    fn call(&self, call: Call<'_>) -> Result<Reply, StoreFailure> {
        match call {
            Call::Commit {
                id,
                step,
                plan,
                now_ms,
            } => {
                let mut cached = self.take(id);
                let (reply, written) = self.with_connection(|connection| {
                    let st = &connection.statements;
                    let result = commit(
                        &mut connection.client,
                        st,
                        cached.take(),
                        id,
                        step,
                        plan,
                        now_ms,
                    );
                    connection.note(result)
                })?;
                if let Some(workflow) = written {
                    self.remember(Arc::new(workflow));
                }
                Ok(reply)
            }
            Call::Load { id } => {
                let reply = self.with_connection(|connection| connection.call(call))?;
                match &reply {
                    Reply::Loaded(Some(workflow)) => self.remember(Arc::clone(workflow)),
                    _ => drop(self.take(id)),
                }
                Ok(reply)
            }
            _ => self.with_connection(|connection| connection.call(call)),
        }
    }
}

/// Creates the schema if absent, under an advisory lock; checks its version otherwise.
fn ensure_schema(client: &mut Client) -> Result<(), PostgresError> {
    let mut tx = client.transaction().map_err(PostgresError::Sql)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&schema::LOCK_KEY])
        .map_err(PostgresError::Sql)?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('wf_schema') IS NOT NULL", &[])
        .map_err(PostgresError::Sql)?
        .get(0);
    let found = if exists {
        let found: Option<i32> = tx
            .query_one("SELECT max(version) FROM wf_schema", &[])
            .map_err(PostgresError::Sql)?
            .get(0);
        found.unwrap_or(0)
    } else {
        0
    };
    // An older schema (or none) is brought up to date in this transaction; a newer one, or a
    // version no migration made, is left as it is.
    let Some(missing) = usize::try_from(found)
        .ok()
        .filter(|&done| (!exists || done > 0) && done <= schema::MIGRATIONS.len())
        .map(|done| &schema::MIGRATIONS[done..])
    else {
        return Err(PostgresError::Schema {
            found,
            expected: schema::CURRENT,
        });
    };
    for migration in missing {
        tx.batch_execute(migration).map_err(PostgresError::Sql)?;
    }
    tx.commit().map_err(PostgresError::Sql)
}

/// One connection and its prepared statements.
struct Connection {
    client: Client,
    statements: Statements,
    /// A failure left the session in an unknown state: do not reuse it.
    poisoned: bool,
}

struct Statements {
    insert_workflow: Statement,
    load: Statement,
    load_for_update: Statement,
    version_of: Statement,
    write_workflow: Statement,
    acquire: Statement,
    lease_of: Statement,
    release: Statement,
    decider_push: Statement,
    decider_leave: Statement,
    decider_requeue: Statement,
    decider_pop: Statement,
    decider_hand_back: Statement,
    decider_drop_if_not_running: Statement,
    decider_due: Statement,
    task_push: Statement,
    task_remove: Statement,
    task_poll: Statement,
    outbox_append: Statement,
    outbox_take: Statement,
    outbox_ack: Statement,
}

impl Connection {
    fn prepare(mut client: Client) -> Result<Connection, postgres::Error> {
        // Only inserts and commits must survive a server crash (they run in `durable`
        // transactions); leases, pops, polls and acks are bookkeeping the protocol rebuilds
        // (`docs/postgres.md`, "Durability"), so they do not wait for the WAL flush.
        client.batch_execute("SET synchronous_commit = off")?;
        let mut prepare = |sql: &str| client.prepare(sql);
        let statements = Statements {
            insert_workflow: prepare(
                "INSERT INTO wf_workflows (id, version, status, data) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO NOTHING",
            )?,
            load: prepare("SELECT data FROM wf_workflows WHERE id = $1")?,
            load_for_update: prepare(
                "SELECT version, data FROM wf_workflows WHERE id = $1 FOR UPDATE",
            )?,
            version_of: prepare("SELECT version FROM wf_workflows WHERE id = $1")?,
            write_workflow: prepare(
                "UPDATE wf_workflows SET version = $3, status = $4, data = $5 \
                 WHERE id = $1 AND version = $2",
            )?,
            acquire: prepare(
                "INSERT INTO wf_leases AS l (workflow_id, owner, serial, expires_at_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (workflow_id) DO UPDATE \
                 SET owner = EXCLUDED.owner, serial = EXCLUDED.serial, \
                     expires_at_ms = EXCLUDED.expires_at_ms \
                 WHERE (l.owner = EXCLUDED.owner AND l.serial = EXCLUDED.serial) \
                    OR l.expires_at_ms <= $5 \
                 RETURNING owner",
            )?,
            lease_of: prepare(
                "SELECT owner, serial, expires_at_ms FROM wf_leases WHERE workflow_id = $1",
            )?,
            release: prepare(
                "DELETE FROM wf_leases WHERE workflow_id = $1 AND owner = $2 AND serial = $3",
            )?,
            decider_push: prepare(
                "INSERT INTO wf_decider (workflow_id, due_ms, placed) \
                 VALUES ($1, $2, nextval('wf_placement')) ON CONFLICT (workflow_id) DO UPDATE \
                 SET due_ms = EXCLUDED.due_ms, placed = EXCLUDED.placed, \
                     holder_owner = NULL, holder_serial = NULL",
            )?,
            decider_leave: prepare("DELETE FROM wf_decider WHERE workflow_id = $1")?,
            decider_requeue: prepare(
                "UPDATE wf_decider SET due_ms = $2, placed = nextval('wf_placement'), \
                 holder_owner = NULL, holder_serial = NULL WHERE workflow_id = $1",
            )?,
            decider_pop: prepare(
                "WITH first AS ( \
                     SELECT workflow_id FROM wf_decider WHERE due_ms <= $1 \
                     ORDER BY due_ms, placed LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 UPDATE wf_decider d SET due_ms = $2, placed = nextval('wf_placement'), \
                     holder_owner = $3, holder_serial = $4 \
                 FROM first WHERE d.workflow_id = first.workflow_id \
                 RETURNING d.workflow_id",
            )?,
            decider_hand_back: prepare(
                "UPDATE wf_decider SET due_ms = $4, placed = nextval('wf_placement'), \
                 holder_owner = NULL, holder_serial = NULL \
                 WHERE workflow_id = $1 AND holder_owner = $2 AND holder_serial = $3",
            )?,
            decider_drop_if_not_running: prepare(
                "DELETE FROM wf_decider d WHERE d.workflow_id = $1 AND NOT EXISTS ( \
                     SELECT 1 FROM wf_workflows w \
                     WHERE w.id = d.workflow_id AND w.status = 'RUNNING')",
            )?,
            decider_due: prepare("SELECT due_ms FROM wf_decider WHERE workflow_id = $1")?,
            task_push: prepare(
                "INSERT INTO wf_tasks (task_id, workflow_id, reference_name, due_ms, placed) \
                 VALUES ($1, $2, $3, $4, nextval('wf_placement')) \
                 ON CONFLICT (workflow_id, task_id) DO NOTHING",
            )?,
            task_remove: prepare("DELETE FROM wf_tasks WHERE workflow_id = $1 AND task_id = $2")?,
            task_poll: prepare(
                "WITH first AS ( \
                     SELECT workflow_id, task_id FROM wf_tasks \
                     WHERE reference_name = $1 AND due_ms <= $2 \
                     ORDER BY due_ms, placed LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 UPDATE wf_tasks t SET due_ms = $3, placed = nextval('wf_placement') \
                 FROM first WHERE t.workflow_id = first.workflow_id AND t.task_id = first.task_id \
                 RETURNING t.task_id, t.workflow_id, t.reference_name",
            )?,
            outbox_append: prepare(
                "INSERT INTO wf_outbox (workflow_id, version, position, effect) \
                 VALUES ($1, $2, $3, $4)",
            )?,
            outbox_take: prepare(
                "WITH taken AS ( \
                     SELECT sequence FROM wf_outbox WHERE visible_at_ms <= $1 \
                     ORDER BY sequence LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 UPDATE wf_outbox o SET attempts = o.attempts + 1, visible_at_ms = $3 \
                 FROM taken WHERE o.sequence = taken.sequence \
                 RETURNING o.sequence, o.workflow_id, o.version, o.effect, o.attempts",
            )?,
            outbox_ack: prepare("DELETE FROM wf_outbox WHERE sequence = $1")?,
        };
        Ok(Connection {
            client,
            statements,
            poisoned: false,
        })
    }

    fn call(&mut self, call: Call<'_>) -> Result<Reply, StoreFailure> {
        let result = self.execute(call);
        self.note(result)
    }

    /// An ambiguous failure leaves the session in an unknown state: it is not reused.
    fn note<T>(&mut self, result: Result<T, StoreFailure>) -> Result<T, StoreFailure> {
        if matches!(result, Err(StoreFailure::Ambiguous { .. })) {
            self.poisoned = true;
        }
        result
    }

    fn execute(&mut self, call: Call<'_>) -> Result<Reply, StoreFailure> {
        let st = &self.statements;
        let client = &mut self.client;
        match call {
            Call::Insert { workflow, now_ms } => insert(client, st, workflow, now_ms),
            Call::Load { id } => {
                let row = client
                    .query_opt(&st.load, &[&id.as_str()])
                    .map_err(not_done)?;
                Ok(Reply::Loaded(match row {
                    Some(row) => Some(Arc::new(workflow_of(&row, 0)?)),
                    None => None,
                }))
            }
            Call::Acquire {
                id,
                token,
                lease_ms,
                now_ms,
            } => acquire(client, st, id, token, lease_ms, now_ms),
            Call::Release { id, token } => {
                let released = client
                    .execute(&st.release, &[&id.as_str(), &owner(token), &serial(token)])
                    .map_err(ambiguous)?;
                Ok(Reply::Released(released > 0))
            }
            Call::Commit {
                id,
                step,
                plan,
                now_ms,
            } => commit(client, st, None, id, step, plan, now_ms).map(|(reply, _)| reply),
            Call::PopDecider {
                token,
                now_ms,
                unack_ms,
            } => {
                let row = client
                    .query_opt(
                        &st.decider_pop,
                        &[
                            &to_bigint(now_ms),
                            &to_bigint(now_ms.saturating_add(unack_ms)),
                            &owner(token),
                            &serial(token),
                        ],
                    )
                    .map_err(ambiguous)?;
                Ok(Reply::Popped(
                    row.map(|row| WorkflowId::new(row.get::<_, String>(0))),
                ))
            }
            Call::HandBack { id, token, due_ms } => {
                let moved = client
                    .execute(
                        &st.decider_hand_back,
                        &[
                            &id.as_str(),
                            &owner(token),
                            &serial(token),
                            &to_bigint(due_ms),
                        ],
                    )
                    .map_err(ambiguous)?;
                Ok(Reply::Moved(moved > 0))
            }
            Call::Requeue { id, due_ms } => {
                let moved = client
                    .execute(&st.decider_requeue, &[&id.as_str(), &to_bigint(due_ms)])
                    .map_err(ambiguous)?;
                Ok(Reply::Moved(moved > 0))
            }
            Call::DropIfNotRunning { id } => {
                let moved = client
                    .execute(&st.decider_drop_if_not_running, &[&id.as_str()])
                    .map_err(ambiguous)?;
                Ok(Reply::Moved(moved > 0))
            }
            Call::DeciderDue { id } => {
                let row = client
                    .query_opt(&st.decider_due, &[&id.as_str()])
                    .map_err(not_done)?;
                Ok(Reply::Due(row.map(|row| from_bigint(row.get(0)))))
            }
            Call::PollTask {
                reference_name,
                now_ms,
                visibility_ms,
            } => {
                let row = client
                    .query_opt(
                        &st.task_poll,
                        &[
                            &reference_name,
                            &to_bigint(now_ms),
                            &to_bigint(now_ms.saturating_add(visibility_ms)),
                        ],
                    )
                    .map_err(ambiguous)?;
                Ok(Reply::Task(row.map(|row| QueuedTask {
                    task: TaskId::new(row.get::<_, String>(0)),
                    workflow: WorkflowId::new(row.get::<_, String>(1)),
                    reference_name: ReferenceName::from(row.get::<_, &str>(2)),
                })))
            }
            Call::DropTask { workflow, task } => {
                let moved = client
                    .execute(&st.task_remove, &[&workflow.as_str(), &task.as_str()])
                    .map_err(ambiguous)?;
                Ok(Reply::Moved(moved > 0))
            }
            Call::TakeOutbox {
                now_ms,
                claim_ms,
                max,
            } => {
                let visible_at = now_ms
                    .saturating_add(claim_ms)
                    .max(now_ms.saturating_add(1));
                let limit = i64::try_from(max).unwrap_or(i64::MAX);
                let rows = client
                    .query(
                        &st.outbox_take,
                        &[&to_bigint(now_ms), &limit, &to_bigint(visible_at)],
                    )
                    .map_err(ambiguous)?;
                let mut entries = rows
                    .iter()
                    .map(outbox_entry_of)
                    .collect::<Result<Vec<_>, _>>()?;
                // The claim is one statement; its rows come back in no particular order.
                entries.sort_by_key(|entry| entry.sequence);
                Ok(Reply::Outbox(entries))
            }
            Call::AckOutbox { sequence } => {
                let sequence = to_bigint(sequence);
                let moved = client
                    .execute(&st.outbox_ack, &[&sequence])
                    .map_err(ambiguous)?;
                Ok(Reply::Moved(moved > 0))
            }
        }
    }
}

/// What a transaction's body decided.
enum Outcome<T> {
    /// Commit, then reply `T`.
    Commit(T),
    /// Roll back (nothing changed), then reply `T`.
    Rollback(T),
}

/// Runs `body` in a durable transaction: `BEGIN` and `SET LOCAL synchronous_commit = on` in one
/// round trip, so its COMMIT returns only once its WAL is flushed (the session's other calls
/// commit asynchronously, `docs/postgres.md`). Any failure before COMMIT rolls back: certainly
/// not done. A COMMIT the server refuses did not happen; one whose answer was lost may have.
fn durable<T>(
    client: &mut Client,
    body: impl FnOnce(&mut Client) -> Result<Outcome<T>, StoreFailure>,
) -> Result<T, StoreFailure> {
    client
        .batch_execute("BEGIN; SET LOCAL synchronous_commit = on")
        .map_err(not_done)?;
    match body(client) {
        Ok(Outcome::Commit(reply)) => {
            client.batch_execute("COMMIT").map_err(|error| {
                if error.as_db_error().is_some() {
                    not_done(error)
                } else {
                    ambiguous(error)
                }
            })?;
            Ok(reply)
        }
        Ok(Outcome::Rollback(reply)) => {
            client.batch_execute("ROLLBACK").map_err(not_done)?;
            Ok(reply)
        }
        Err(failure) => {
            // The server rolls back an aborted transaction when the session ends, too.
            let _ = client.batch_execute("ROLLBACK");
            Err(failure)
        }
    }
}

/// The insert: the workflow, its decider entry and its SCHEDULED attempts, in one transaction.
fn insert(
    client: &mut Client,
    st: &Statements,
    workflow: &Workflow,
    now_ms: u64,
) -> Result<Reply, StoreFailure> {
    durable(client, |tx| {
        let id = workflow.id().as_str();
        let inserted = tx
            .execute(
                &st.insert_workflow,
                &[
                    &id,
                    &to_bigint(workflow.version()),
                    &workflow.status().as_str(),
                    &Json(workflow),
                ],
            )
            .map_err(not_done)?;
        if inserted == 0 {
            return Ok(Outcome::Rollback(Reply::Inserted(false)));
        }
        if workflow.status() == WorkflowStatus::Running {
            tx.execute(&st.decider_push, &[&id, &to_bigint(now_ms)])
                .map_err(not_done)?;
        }
        for task in workflow.tasks() {
            if task.status == TaskStatus::Scheduled {
                tx.execute(
                    &st.task_push,
                    &[
                        &task.id.as_str(),
                        &id,
                        &&*task.reference_name,
                        &to_bigint(now_ms),
                    ],
                )
                .map_err(not_done)?;
            }
        }
        Ok(Outcome::Commit(Reply::Inserted(true)))
    })
}

/// The lease: granted in one statement unless another token holds a valid one.
fn acquire(
    client: &mut Client,
    st: &Statements,
    id: &WorkflowId,
    token: LeaseToken,
    lease_ms: u64,
    now_ms: u64,
) -> Result<Reply, StoreFailure> {
    let granted = Lease::granted(token, now_ms, lease_ms);
    // The holder may release between the refused grant and the read of its lease: try again
    // (a few times; each round means another operation made progress).
    for _ in 0..8 {
        let row = client
            .query_opt(
                &st.acquire,
                &[
                    &id.as_str(),
                    &owner(token),
                    &serial(token),
                    &to_bigint(granted.expires_at_ms),
                    &to_bigint(now_ms),
                ],
            )
            .map_err(ambiguous)?;
        if row.is_some() {
            return Ok(Reply::Acquired(Ok(granted)));
        }
        let current = client
            .query_opt(&st.lease_of, &[&id.as_str()])
            .map_err(not_done)?;
        if let Some(row) = current {
            let holder = token_of(row.get(0), row.get(1));
            return Ok(Reply::Acquired(Err(Lease {
                holder,
                expires_at_ms: from_bigint(row.get(2)),
            })));
        }
    }
    Err(StoreFailure::not_done(
        "the lease changed hands during every attempt to acquire it",
    ))
}

/// The commit, one durable transaction: the compare-and-swap `UPDATE ... WHERE id = $1 AND
/// version = $2` of the step applied to the workflow as loaded at the step's read version (from
/// this store's cache of its own loads, or read under a row lock), the outbox rows, the queue
/// plan.
fn commit(
    client: &mut Client,
    st: &Statements,
    loaded: Option<Arc<Workflow>>,
    id: &WorkflowId,
    step: &Step,
    plan: &QueuePlan,
    now_ms: u64,
) -> Result<(Reply, Option<Workflow>), StoreFailure> {
    durable(client, |tx| {
        let read = step.read_version();
        let base = match loaded {
            // The version fences the cache: (id, version) names one content, since workflows
            // are never deleted and an insert never replaces one.
            Some(workflow) if workflow.version() == read => Arc::unwrap_or_clone(workflow),
            _ => match tx
                .query_opt(&st.load_for_update, &[&id.as_str()])
                .map_err(not_done)?
            {
                None => {
                    return Ok(Outcome::Rollback((
                        Reply::Committed(CommitReply::Unknown),
                        None,
                    )))
                }
                Some(row) => {
                    let stored = from_bigint(row.get(0));
                    if stored != read {
                        let stale = CommitReply::Stale { current: stored };
                        return Ok(Outcome::Rollback((Reply::Committed(stale), None)));
                    }
                    workflow_of(&row, 1)?
                }
            },
        };
        let mut workflow = base;
        if !step.is_applied() || workflow.apply(step).is_err() {
            // Not a step of this workflow at this version (a foreign step): stale, as the
            // in-memory store says.
            return refused(tx, st, id);
        }
        let receipt = Receipt {
            version: workflow.version(),
            status: workflow.status(),
        };
        let written = tx
            .execute(
                &st.write_workflow,
                &[
                    &id.as_str(),
                    &to_bigint(read),
                    &to_bigint(receipt.version),
                    &receipt.status.as_str(),
                    &Json(&workflow),
                ],
            )
            .map_err(not_done)?;
        if written == 0 {
            return refused(tx, st, id);
        }
        for (position, effect) in step.effects_in(Phase::PostCommit).enumerate() {
            let position = i32::try_from(position).unwrap_or(i32::MAX);
            tx.execute(
                &st.outbox_append,
                &[
                    &id.as_str(),
                    &to_bigint(receipt.version),
                    &position,
                    &Json(effect),
                ],
            )
            .map_err(not_done)?;
        }
        apply_plan(tx, st, id, plan, receipt.status, now_ms)?;
        Ok(Outcome::Commit((
            Reply::Committed(CommitReply::Done(receipt)),
            Some(workflow),
        )))
    })
}

/// A commit that writes nothing: stale at the stored version, or an unknown id.
fn refused(
    tx: &mut Client,
    st: &Statements,
    id: &WorkflowId,
) -> Result<Outcome<(Reply, Option<Workflow>)>, StoreFailure> {
    let row = tx
        .query_opt(&st.version_of, &[&id.as_str()])
        .map_err(not_done)?;
    let reply = match row {
        Some(row) => CommitReply::Stale {
            current: from_bigint(row.get(0)),
        },
        None => CommitReply::Unknown,
    };
    Ok(Outcome::Rollback((Reply::Committed(reply), None)))
}

/// A commit's queue plan, inside its transaction (the rules of `StoreState::apply_plan`).
fn apply_plan(
    tx: &mut Client,
    st: &Statements,
    id: &WorkflowId,
    plan: &QueuePlan,
    status: WorkflowStatus,
    now_ms: u64,
) -> Result<(), StoreFailure> {
    let key = id.as_str();
    match plan.decider {
        DeciderPlan::Keep => {}
        DeciderPlan::Leave => {
            tx.execute(&st.decider_leave, &[&key]).map_err(not_done)?;
        }
        DeciderPlan::Enter => {
            tx.execute(&st.decider_push, &[&key, &to_bigint(now_ms)])
                .map_err(not_done)?;
        }
        DeciderPlan::Wake if status == WorkflowStatus::Running => {
            tx.execute(&st.decider_requeue, &[&key, &to_bigint(now_ms)])
                .map_err(not_done)?;
        }
        DeciderPlan::Wake => {}
    }
    for task in &plan.remove_tasks {
        tx.execute(&st.task_remove, &[&key, &task.as_str()])
            .map_err(not_done)?;
    }
    for task in &plan.push_tasks {
        tx.execute(
            &st.task_push,
            &[
                &task.task.as_str(),
                &task.workflow.as_str(),
                &&*task.reference_name,
                &to_bigint(now_ms),
            ],
        )
        .map_err(not_done)?;
    }
    Ok(())
}

/// Reads every table into a [`StoreState`], entries in their queue order.
fn read_state(tx: &mut Transaction<'_>) -> Result<StoreState, StoreFailure> {
    let mut state = StoreState::new();
    for row in tx
        .query("SELECT data FROM wf_workflows ORDER BY id", &[])
        .map_err(not_done)?
    {
        state.overwrite(workflow_of(&row, 0)?);
    }
    for row in tx
        .query(
            "SELECT workflow_id, owner, serial, expires_at_ms FROM wf_leases",
            &[],
        )
        .map_err(not_done)?
    {
        let holder = token_of(row.get(1), row.get(2));
        let lease = Lease {
            holder,
            expires_at_ms: from_bigint(row.get(3)),
        };
        state.restore_lease(WorkflowId::new(row.get::<_, String>(0)), lease);
    }
    for row in tx
        .query(
            "SELECT workflow_id, due_ms, holder_owner, holder_serial FROM wf_decider \
             ORDER BY due_ms, placed",
            &[],
        )
        .map_err(not_done)?
    {
        let holder = match (row.get::<_, Option<i64>>(2), row.get::<_, Option<i64>>(3)) {
            (Some(owner), Some(serial)) => Some(token_of(owner, serial)),
            _ => None,
        };
        let id = WorkflowId::new(row.get::<_, String>(0));
        state.restore_decider(&id, from_bigint(row.get(1)), holder);
    }
    for row in tx
        .query(
            "SELECT task_id, workflow_id, reference_name, due_ms FROM wf_tasks \
             ORDER BY due_ms, placed",
            &[],
        )
        .map_err(not_done)?
    {
        let queued = QueuedTask {
            task: TaskId::new(row.get::<_, String>(0)),
            workflow: WorkflowId::new(row.get::<_, String>(1)),
            reference_name: ReferenceName::from(row.get::<_, &str>(2)),
        };
        state.restore_task(queued, from_bigint(row.get(3)));
    }
    for row in tx
        .query(
            "SELECT sequence, workflow_id, version, effect, attempts, visible_at_ms \
             FROM wf_outbox ORDER BY sequence",
            &[],
        )
        .map_err(not_done)?
    {
        let entry = outbox_entry_of(&row)?;
        state.restore_owed(entry, from_bigint(row.get(5)));
    }
    Ok(state)
}

fn workflow_of(row: &Row, column: usize) -> Result<Workflow, StoreFailure> {
    let Json(workflow) = row.try_get::<_, Json<Workflow>>(column).map_err(|error| {
        StoreFailure::not_done(format!("a stored workflow is unreadable: {error}"))
    })?;
    Ok(workflow)
}

/// An outbox entry from the columns `sequence, workflow_id, version, effect, attempts`, in that
/// order.
fn outbox_entry_of(row: &Row) -> Result<OutboxEntry, StoreFailure> {
    let Json(effect) = row.try_get::<_, Json<Effect>>(3).map_err(|error| {
        StoreFailure::not_done(format!("an outbox effect is unreadable: {error}"))
    })?;
    Ok(OutboxEntry {
        sequence: from_bigint(row.get(0)),
        workflow: WorkflowId::new(row.get::<_, String>(1)),
        version: from_bigint(row.get(2)),
        effect,
        attempts: u32::try_from(row.get::<_, i32>(4)).unwrap_or(0),
    })
}

/// Times, versions and sequences are `bigint`: values beyond `i64::MAX` (absurd ones) are stored
/// as `i64::MAX`, and a negative one (never written by a store) reads as 0.
fn to_bigint(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_bigint(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Tokens are stored bit for bit as two `bigint`s.
fn owner(token: LeaseToken) -> i64 {
    token.owner() as i64
}

fn serial(token: LeaseToken) -> i64 {
    token.serial() as i64
}

fn token_of(owner: i64, serial: i64) -> LeaseToken {
    LeaseToken::new(owner as u64, serial as u64)
}

/// A failure of a call that changed nothing: a read, or a statement inside a transaction that
/// was not committed (the server rolls it back when the session ends).
fn not_done(error: postgres::Error) -> StoreFailure {
    if error.is_closed() || error.as_db_error().is_none() {
        return StoreFailure::not_done(format!("the connection failed: {error}"));
    }
    StoreFailure::not_done(describe(&error))
}

/// A failure of a single-statement write: refused by the server, it did not happen; cut off, it
/// may have.
fn ambiguous(error: postgres::Error) -> StoreFailure {
    if error.as_db_error().is_some() {
        return StoreFailure::not_done(describe(&error));
    }
    StoreFailure::ambiguous(format!("the connection failed mid-call: {error}"))
}

fn describe(error: &postgres::Error) -> String {
    match error.code() {
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE => {
            format!("serialization failure, retry: {error}")
        }
        Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED => {
            format!("deadlock detected, retry: {error}")
        }
        Some(code) if *code == SqlState::ADMIN_SHUTDOWN => {
            format!("the server ended the session: {error}")
        }
        _ => format!("the server refused the call: {error}"),
    }
}
