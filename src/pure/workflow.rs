//! A workflow instance: id, status, version and task attempts, plus the indexes that keep every
//! step proportional to what it changes.

use core::hash::{Hash, Hasher};

use alloc::vec::Vec;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::id::{TaskId, WorkflowId};
use super::index::{hash_key, PositionSet, PositionTable};
use super::status::{TaskStatus, WorkflowStatus};
use super::task::Task;

/// A structural problem in a stored workflow that makes it impossible to load. Invariant
/// violations are not load errors: a loaded state may break I1–I5, I8, and
/// [`check`](crate::check) reports how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Two attempts share one task id.
    #[error("task id {task} occurs more than once")]
    DuplicateTaskId {
        /// The repeated id.
        task: TaskId,
    },
}

/// A workflow instance. It changes only through [`Workflow::apply`] of a step that
/// [`transition`](crate::transition) computed from it.
#[derive(Debug, Clone)]
pub struct Workflow {
    id: WorkflowId,
    /// A fingerprint of `id`, so a step can name its workflow without cloning the id.
    identity: u64,
    status: WorkflowStatus,
    version: u64,
    tasks: Vec<Task>,
    index: Index,
}

/// Derived from `tasks`; rebuilt on load, maintained by `apply`. Positions index `tasks`, which
/// only ever grows, so a position never changes meaning. Every operation a step makes on it takes
/// constant time; the keys are read from `tasks`, never copied.
#[derive(Debug, Clone, Default)]
struct Index {
    /// Task id → position.
    by_id: PositionTable,
    /// Reference name → position of its latest attempt (highest retry count, then latest added).
    latest: PositionTable,
    /// Positions of non-terminal attempts (what terminate and fail must cancel).
    active: PositionSet,
    /// Positions of latest attempts that ended unsuccessfully (what retry restarts, and what
    /// stops completion).
    unsuccessful_latest: PositionSet,
}

impl Workflow {
    /// A new RUNNING workflow at version 0 with no tasks.
    pub fn new(id: impl Into<WorkflowId>) -> Self {
        let id = id.into();
        Workflow {
            identity: fingerprint(&id),
            id,
            status: WorkflowStatus::Running,
            version: 0,
            tasks: Vec::new(),
            index: Index::default(),
        }
    }

    /// Loads a stored workflow as it is, consistent or not; only duplicate task ids are refused.
    pub fn from_parts(
        id: impl Into<WorkflowId>,
        status: WorkflowStatus,
        version: u64,
        tasks: Vec<Task>,
    ) -> Result<Self, LoadError> {
        let id = id.into();
        let mut workflow = Workflow {
            identity: fingerprint(&id),
            id,
            status,
            version,
            index: Index {
                by_id: PositionTable::with_capacity(tasks.len()),
                latest: PositionTable::with_capacity(tasks.len()),
                ..Index::default()
            },
            tasks: Vec::with_capacity(tasks.len()),
        };
        for task in tasks {
            if workflow.position(&task.id).is_some() {
                return Err(LoadError::DuplicateTaskId { task: task.id });
            }
            workflow.push_task(task);
        }
        Ok(workflow)
    }

    /// The workflow id.
    pub fn id(&self) -> &WorkflowId {
        &self.id
    }

    /// The current status.
    pub fn status(&self) -> WorkflowStatus {
        self.status
    }

    /// The compare-and-swap token: +1 with every accepted change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Every attempt, in the order they entered the workflow.
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// The attempt with this id.
    pub fn task(&self, id: &TaskId) -> Option<&Task> {
        self.position(id).map(|position| &self.tasks[position])
    }

    /// The latest attempt of a reference name.
    pub fn latest_attempt(&self, reference_name: &str) -> Option<&Task> {
        self.latest_position(reference_name)
            .map(|position| &self.tasks[position])
    }

    /// Is this attempt the latest of its reference name (not superseded by a retry)?
    pub fn is_latest(&self, task: &Task) -> bool {
        self.latest_position(&task.reference_name) == self.position(&task.id)
    }

    /// The non-terminal attempts, in order.
    pub fn active_tasks(&self) -> impl Iterator<Item = &Task> + '_ {
        self.index
            .active
            .iter()
            .map(|position| &self.tasks[position])
    }

    /// The latest attempts that ended unsuccessfully, in order (what retry restarts).
    pub fn unsuccessful_latest_tasks(&self) -> impl Iterator<Item = &Task> + '_ {
        self.index
            .unsuccessful_latest
            .iter()
            .map(|position| &self.tasks[position])
    }

    pub(crate) fn identity(&self) -> u64 {
        self.identity
    }

    pub(crate) fn position(&self, id: &TaskId) -> Option<usize> {
        self.index.by_id.get(hash_key(id.as_bytes()), |position| {
            self.tasks[position].id == *id
        })
    }

    fn latest_position(&self, reference_name: &str) -> Option<usize> {
        self.index
            .latest
            .get(hash_key(reference_name.as_bytes()), |position| {
                self.tasks[position].reference_name == reference_name
            })
    }

    /// How many attempts are not terminal.
    pub(crate) fn active_count(&self) -> usize {
        self.index.active.len()
    }

    pub(crate) fn task_at(&self, position: usize) -> &Task {
        &self.tasks[position]
    }

    pub(crate) fn active_positions(&self) -> impl Iterator<Item = usize> + '_ {
        self.index.active.iter()
    }

    pub(crate) fn unsuccessful_latest_positions(&self) -> impl Iterator<Item = usize> + '_ {
        self.index.unsuccessful_latest.iter()
    }

    pub(crate) fn set_status(&mut self, status: WorkflowStatus) {
        self.status = status;
    }

    pub(crate) fn bump_version(&mut self) {
        self.version += 1;
    }

    /// Appends an attempt and indexes it (the caller checked the id is free).
    pub(crate) fn push_task(&mut self, task: Task) {
        let position = self.tasks.len();
        let name_hash = hash_key(task.reference_name.as_bytes());
        let previous = self.latest_position(&task.reference_name);
        let is_latest = match previous {
            Some(previous) => task.retry_count >= self.tasks[previous].retry_count,
            None => true,
        };
        if let (Some(previous), true) = (previous, is_latest) {
            self.index.unsuccessful_latest.remove(previous);
        }
        let id_hash = hash_key(task.id.as_bytes());
        self.tasks.push(task);
        let tasks = &self.tasks;
        // The new id is free (checked by the caller), so no stored position matches it.
        self.index.by_id.insert(id_hash, |_| false, position);
        if is_latest {
            let name = &tasks[position].reference_name;
            self.index.latest.insert(
                name_hash,
                |stored| tasks[stored].reference_name == *name,
                position,
            );
        }
        self.index_status(position, is_latest);
    }

    /// Sets an attempt's status and keeps the indexes in step.
    /// Only the index entries the old and new status can be in are touched: a report step does
    /// two integer-set operations and no string lookup here.
    pub(crate) fn set_task_status(&mut self, position: usize, status: TaskStatus) {
        let old = self.tasks[position].status;
        if !old.is_terminal() {
            self.index.active.remove(position);
        } else if !old.is_successful() {
            self.index.unsuccessful_latest.remove(position);
        }
        self.tasks[position].status = status;
        if !status.is_terminal() {
            self.index.active.insert(position);
        } else if !status.is_successful()
            && self.latest_position(&self.tasks[position].reference_name) == Some(position)
        {
            self.index.unsuccessful_latest.insert(position);
        }
    }

    fn index_status(&mut self, position: usize, is_latest: bool) {
        let status = self.tasks[position].status;
        if !status.is_terminal() {
            self.index.active.insert(position);
        } else if is_latest && !status.is_successful() {
            self.index.unsuccessful_latest.insert(position);
        }
    }
}

/// FNV-1a of the id: cheap, deterministic, no allocation. A collision only weakens the
/// foreign-step check, which also compares the version and every recorded "from" status.
fn fingerprint(id: &WorkflowId) -> u64 {
    id.as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Equality and hashing cover the stored fields; the index is derived from them.
impl PartialEq for Workflow {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.status == other.status
            && self.version == other.version
            && self.tasks == other.tasks
    }
}

impl Eq for Workflow {}

impl Hash for Workflow {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        self.status.hash(state);
        self.version.hash(state);
        self.tasks.hash(state);
    }
}

#[derive(Serialize)]
struct WorkflowView<'a> {
    id: &'a WorkflowId,
    status: WorkflowStatus,
    version: u64,
    tasks: &'a [Task],
}

#[derive(Deserialize)]
struct WorkflowRecord {
    id: WorkflowId,
    status: WorkflowStatus,
    version: u64,
    tasks: Vec<Task>,
}

impl Serialize for Workflow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WorkflowView {
            id: &self.id,
            status: self.status,
            version: self.version,
            tasks: &self.tasks,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Workflow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let record = WorkflowRecord::deserialize(deserializer)?;
        Workflow::from_parts(record.id, record.status, record.version, record.tasks)
            .map_err(serde::de::Error::custom)
    }
}
