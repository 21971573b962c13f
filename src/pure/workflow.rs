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

/// Up to this many attempts, the id and reference-name lookups scan `tasks` and the hash tables
/// stay empty: for small workflows (the bench's, the model's) a scan of at most this many keys is
/// a constant bound (SPEC section 5) that costs less than hashing, and saves the tables'
/// allocations on every clone. The attempt that takes a workflow past it builds both tables from all its attempts.
const SCANNED: usize = 8;

/// Derived from `tasks`; rebuilt on load, maintained by `apply`. Positions index `tasks`, which
/// only ever grows, so a position never changes meaning. Every operation a step makes on it takes
/// constant time; the keys are read from `tasks`, never copied.
#[derive(Debug, Clone, Default)]
struct Index {
    /// Task id → position; empty while the workflow has at most [`SCANNED`] attempts.
    by_id: PositionTable,
    /// Reference name → position of its latest attempt (highest retry count, then latest added);
    /// empty while the workflow has at most [`SCANNED`] attempts.
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
            index: Index::default(),
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

    /// Are the lookups answered by the hash tables (more than [`SCANNED`] attempts)?
    fn hashed(&self) -> bool {
        self.tasks.len() > SCANNED
    }

    pub(crate) fn position(&self, id: &TaskId) -> Option<usize> {
        if !self.hashed() {
            return self.tasks.iter().position(|task| task.id == *id);
        }
        self.index.by_id.get(hash_key(id.as_bytes()), |position| {
            self.tasks[position].id == *id
        })
    }

    fn latest_position(&self, reference_name: &str) -> Option<usize> {
        if !self.hashed() {
            return scanned_latest(&self.tasks, reference_name);
        }
        self.latest_position_hashed(reference_name)
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
        let previous = self.latest_position(&task.reference_name);
        let is_latest = match previous {
            Some(previous) => supersedes(&task, &self.tasks[previous]),
            None => true,
        };
        if let (Some(previous), true) = (previous, is_latest) {
            self.index.unsuccessful_latest.remove(previous);
        }
        self.tasks.push(task);
        if position == SCANNED {
            self.hash_all();
        } else if position > SCANNED {
            self.hash_one(position, is_latest);
        }
        self.index_status(position, is_latest);
    }

    /// Enters the attempt at `position` into the hash tables; `is_latest` says whether it is now
    /// its reference name's latest attempt.
    fn hash_one(&mut self, position: usize, is_latest: bool) {
        let tasks = &self.tasks;
        let task = &tasks[position];
        // The new id is free (checked by the caller), so no stored position matches it.
        self.index
            .by_id
            .insert(hash_key(task.id.as_bytes()), |_| false, position);
        if is_latest {
            let name = &task.reference_name;
            self.index.latest.insert(
                hash_key(name.as_bytes()),
                |stored| tasks[stored].reference_name == *name,
                position,
            );
        }
    }

    /// Builds the hash tables from every attempt, as the scan answered for them: the workflow has
    /// just passed [`SCANNED`] attempts.
    fn hash_all(&mut self) {
        // Sized for the attempts `tasks` has room for (all of them, on load).
        self.index.by_id = PositionTable::with_capacity(self.tasks.capacity());
        self.index.latest = PositionTable::with_capacity(self.tasks.capacity());
        for position in 0..self.tasks.len() {
            let task = &self.tasks[position];
            let is_latest = match self.latest_position_hashed(&task.reference_name) {
                Some(previous) => supersedes(task, &self.tasks[previous]),
                None => true,
            };
            self.hash_one(position, is_latest);
        }
    }

    /// The latest attempt's position as the name table has it (also during [`Self::hash_all`],
    /// while the table is being built).
    fn latest_position_hashed(&self, reference_name: &str) -> Option<usize> {
        self.index
            .latest
            .get(hash_key(reference_name.as_bytes()), |position| {
                self.tasks[position].reference_name == reference_name
            })
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

/// Does a newly added attempt become its reference name's latest, over the current latest? A
/// higher retry count wins, and of equal ones the later added.
fn supersedes(added: &Task, latest: &Task) -> bool {
    added.retry_count >= latest.retry_count
}

/// The latest attempt of a reference name by scanning the attempts in the order they were added,
/// applying the rule [`Workflow::push_task`] applies to each addition.
fn scanned_latest(tasks: &[Task], reference_name: &str) -> Option<usize> {
    let mut latest: Option<usize> = None;
    for (position, task) in tasks.iter().enumerate() {
        if task.reference_name == reference_name
            && latest.is_none_or(|best| supersedes(task, &tasks[best]))
        {
            latest = Some(position);
        }
    }
    latest
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    /// What the lookups must answer, computed from the attempts alone: the latest attempt of a
    /// name has the highest retry count, and of equal ones is the last added.
    fn expected_latest(tasks: &[Task], name: &str) -> Option<usize> {
        tasks
            .iter()
            .enumerate()
            .filter(|(_, task)| task.reference_name == *name)
            .max_by_key(|(position, task)| (task.retry_count, *position))
            .map(|(position, _)| position)
    }

    /// Id and latest-attempt lookups, and the unsuccessful-latest set, agree with their
    /// definitions after every added attempt: below, at and past the scanned size (where the
    /// tables are built from the scanned attempts), with retry counts added out of order, and for
    /// a workflow loaded whole.
    #[test]
    fn lookups_agree_with_their_definitions_across_the_scanned_size() {
        let names = ["a", "b", "c"];
        let statuses = [
            TaskStatus::Scheduled,
            TaskStatus::Failed,
            TaskStatus::Completed,
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..50 {
            let mut workflow = Workflow::new("wf");
            for added in 0..3 * SCANNED {
                let number = next();
                workflow.push_task(Task {
                    id: format!("t{added}").as_str().into(),
                    reference_name: names[number as usize % 3].into(),
                    status: statuses[(number >> 8) as usize % 3],
                    retry_count: (number >> 16) as u32 % 4,
                    iteration: 0,
                    optional: false,
                });
                let loaded = Workflow::from_parts(
                    "wf",
                    WorkflowStatus::Running,
                    0,
                    workflow.tasks().to_vec(),
                )
                .unwrap();
                for candidate in [&workflow, &loaded] {
                    let tasks = candidate.tasks();
                    for (position, task) in tasks.iter().enumerate() {
                        assert_eq!(candidate.position(&task.id), Some(position));
                    }
                    assert_eq!(candidate.position(&"absent".into()), None);
                    for name in names.iter().chain(&["absent"]) {
                        assert_eq!(
                            candidate.latest_position(name),
                            expected_latest(tasks, name),
                            "{name} after {} attempts",
                            tasks.len()
                        );
                    }
                    let unsuccessful: Vec<usize> = (0..tasks.len())
                        .filter(|&position| {
                            let task = &tasks[position];
                            task.status.is_terminal()
                                && !task.status.is_successful()
                                && expected_latest(tasks, &task.reference_name) == Some(position)
                        })
                        .collect();
                    assert!(candidate.unsuccessful_latest_positions().eq(unsuccessful));
                }
            }
        }
    }
}
