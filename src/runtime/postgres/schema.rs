//! The schema, as versioned migrations embedded in the crate (`docs/postgres.md`).
//!
//! A store opens a database whose schema is absent (it creates it, under an advisory lock so
//! that engines starting together create it once), older than [`CURRENT`] (it applies the
//! missing migrations, in one transaction under the same lock) or at [`CURRENT`]; a newer
//! version is [`PostgresError::Schema`](super::PostgresError::Schema), and nothing is altered.

/// The schema version this build reads and writes.
pub const CURRENT: i32 = 2;

/// The key of the transaction-scoped advisory lock that serialises schema creation.
pub(super) const LOCK_KEY: i64 = 0x7766_7374_6174_6501; // "wfstate" + 1

/// Migration `n` (1-based) takes a schema from version `n - 1` to `n`.
pub(super) const MIGRATIONS: [&str; CURRENT as usize] = [V1, V2];

/// Version 1: one row per workflow (the compare-and-swap on `version` is the fence), leases with
/// their owner token, the leased decider and task queues ordered by (due time, placement order),
/// and the outbox keyed by (workflow, version, position) so a commit's effects are written once.
const V1: &str = "
CREATE TABLE wf_schema (
    version integer NOT NULL
);
CREATE TABLE wf_workflows (
    id text PRIMARY KEY,
    version bigint NOT NULL,
    status text NOT NULL,
    data jsonb NOT NULL
);
CREATE TABLE wf_leases (
    workflow_id text PRIMARY KEY,
    owner bigint NOT NULL,
    serial bigint NOT NULL,
    expires_at_ms bigint NOT NULL
);
CREATE SEQUENCE wf_placement;
CREATE TABLE wf_decider (
    workflow_id text PRIMARY KEY,
    due_ms bigint NOT NULL,
    placed bigint NOT NULL,
    holder_owner bigint,
    holder_serial bigint
);
CREATE INDEX wf_decider_order ON wf_decider (due_ms, placed);
CREATE TABLE wf_tasks (
    task_id text PRIMARY KEY,
    workflow_id text NOT NULL,
    reference_name text NOT NULL,
    due_ms bigint NOT NULL,
    placed bigint NOT NULL
);
CREATE INDEX wf_tasks_order ON wf_tasks (reference_name, due_ms, placed);
CREATE TABLE wf_outbox (
    sequence bigserial PRIMARY KEY,
    workflow_id text NOT NULL,
    version bigint NOT NULL,
    position integer NOT NULL,
    effect jsonb NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    visible_at_ms bigint NOT NULL DEFAULT 0,
    UNIQUE (workflow_id, version, position)
);
INSERT INTO wf_schema (version) VALUES (1);
";

/// Version 2: task-queue entries are keyed by (workflow, task id), not by task id alone. Task ids
/// are the engine's to choose and need not be unique across workflows; keyed by id alone, a
/// second workflow's attempt of the same id was never queued (the insert did nothing) and a
/// report ending one removed the other's entry: a live attempt in no task queue (I6b).
const V2: &str = "
ALTER TABLE wf_tasks DROP CONSTRAINT wf_tasks_pkey;
ALTER TABLE wf_tasks ADD PRIMARY KEY (workflow_id, task_id);
UPDATE wf_schema SET version = 2;
";
