//! The result of an accepted input: the changes to apply and the effects to perform, and
//! [`Workflow::apply`], the only way a workflow changes.

use core::fmt;
use core::ops::Deref;

use alloc::vec::Vec;
use serde::Serialize;

use super::effect::{Effect, Phase};
use super::id::TaskId;
use super::list::SmallList;
use super::rejection::Rejection;
use super::status::{TaskStatus, WorkflowStatus};
use super::task::Task;
use super::workflow::Workflow;

/// What kind of acceptance a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The state changes and the version rises by one.
    Applied,
    /// The exact repeat of something already true (a redelivered report, a second terminate):
    /// nothing changes; acknowledge the message.
    Duplicate,
    /// IN_PROGRESS reported on an IN_PROGRESS attempt: accepted, nothing changes.
    Progress,
}

/// A workflow status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct WorkflowChange {
    /// Before.
    pub from: WorkflowStatus,
    /// After.
    pub to: WorkflowStatus,
}

/// A task attempt's status change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TaskChange {
    /// The attempt.
    pub task: TaskId,
    /// Before.
    pub from: TaskStatus,
    /// After.
    pub to: TaskStatus,
    #[serde(skip)]
    pub(crate) position: usize,
}

/// Everything a step changes; its size is the cost of the step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Changes {
    /// The workflow status change, if any.
    pub workflow: Option<WorkflowChange>,
    /// Attempt status changes, in order.
    pub tasks: TaskChanges,
    /// New attempts appended to the workflow, in order.
    pub added: Vec<Task>,
}

/// Attempt status changes, in order: a list that derefs to `[TaskChange]` (so `len`, `iter`,
/// `first`, indexing and `for change in &changes.tasks` work as on a `Vec`). One change is held
/// inline, so the common step (one task changes) makes no heap allocation for it.
/// Compares, hashes, prints and serializes as the sequence of changes, as a `Vec` would.
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TaskChanges(SmallList<TaskChange>);

impl TaskChanges {
    /// Appends a change.
    #[inline]
    pub fn push(&mut self, change: TaskChange) {
        self.0.push(change);
    }

    /// The changes as a slice.
    pub fn as_slice(&self) -> &[TaskChange] {
        &self.0
    }
}

impl Deref for TaskChanges {
    type Target = [TaskChange];

    fn deref(&self) -> &[TaskChange] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a TaskChanges {
    type Item = &'a TaskChange;
    type IntoIter = core::slice::Iter<'a, TaskChange>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<TaskChange> for TaskChanges {
    fn from_iter<I: IntoIterator<Item = TaskChange>>(changes: I) -> Self {
        let mut list = TaskChanges::default();
        list.0.extend(changes);
        list
    }
}

impl fmt::Debug for TaskChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Changes {
    /// Nothing changes.
    pub fn is_empty(&self) -> bool {
        self.workflow.is_none() && self.tasks.is_empty() && self.added.is_empty()
    }
}

/// An accepted input. Only the transition function makes steps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Step {
    /// The fingerprint of the workflow it was computed from.
    #[serde(skip)]
    workflow: u64,
    read_version: u64,
    outcome: Outcome,
    changes: Changes,
    /// One inline: a report step owes one effect, the persist.
    effects: SmallList<Effect>,
    /// Set only by admin retry: the one way out of a terminal workflow status (I5).
    #[serde(skip)]
    through_retry: bool,
}

impl Step {
    pub(crate) fn unchanged(workflow: &Workflow, outcome: Outcome) -> Self {
        debug_assert!(outcome != Outcome::Applied);
        Step {
            workflow: workflow.identity(),
            read_version: workflow.version(),
            outcome,
            changes: Changes::default(),
            effects: SmallList::Empty,
            through_retry: false,
        }
    }

    #[inline]
    pub(crate) fn applied(
        workflow: u64,
        read_version: u64,
        changes: Changes,
        effects: SmallList<Effect>,
        through_retry: bool,
    ) -> Self {
        debug_assert!(!changes.is_empty(), "I4: an applied step changes something");
        debug_assert!(
            effects.first()
                == Some(&Effect::Persist {
                    read_version,
                    new_version: read_version.wrapping_add(1)
                }),
            "effects start with the persist"
        );
        debug_assert!(
            effects.windows(2).all(|w| w[0].phase() <= w[1].phase()),
            "effects are ordered by phase"
        );
        Step {
            workflow,
            read_version,
            outcome: Outcome::Applied,
            changes,
            effects,
            through_retry,
        }
    }

    /// The version of the state this step was computed from: the compare-and-swap token.
    pub fn read_version(&self) -> u64 {
        self.read_version
    }

    /// The version after the step (`read_version + 1` when applied, unchanged otherwise).
    pub fn new_version(&self) -> u64 {
        match self.outcome {
            Outcome::Applied => self.read_version.saturating_add(1),
            Outcome::Duplicate | Outcome::Progress => self.read_version,
        }
    }

    /// Applied, duplicate or progress.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// A duplicate: acknowledge, nothing changed.
    pub fn is_duplicate(&self) -> bool {
        self.outcome == Outcome::Duplicate
    }

    /// Does the step change the state?
    pub fn is_applied(&self) -> bool {
        self.outcome == Outcome::Applied
    }

    /// What changes.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// The effects, in the order they must be performed (see [`Phase`]). Empty unless applied.
    pub fn effects(&self) -> &[Effect] {
        &self.effects
    }

    /// The effects of one phase, in order.
    pub fn effects_in(&self, phase: Phase) -> impl Iterator<Item = &Effect> + '_ {
        self.effects
            .iter()
            .filter(move |effect| effect.phase() == phase)
    }

    /// Was this step an admin retry?
    pub fn through_retry(&self) -> bool {
        self.through_retry
    }
}

impl Workflow {
    /// Applies a step computed from this workflow: the in-memory compare-and-swap.
    ///
    /// A duplicate or progress step changes nothing and always succeeds. An applied step succeeds
    /// only on the exact state it was computed from: a different version is
    /// [`Rejection::StaleVersion`] (I4), a step of another workflow is [`Rejection::ForeignStep`].
    /// On error nothing changes. Cost: proportional to the step's changes.
    pub fn apply(&mut self, step: &Step) -> Result<(), Rejection> {
        if !step.is_applied() {
            return Ok(());
        }
        if step.workflow != self.identity() {
            return Err(Rejection::ForeignStep);
        }
        if step.read_version != self.version() {
            return Err(Rejection::StaleVersion {
                read: step.read_version,
                current: self.version(),
            });
        }
        self.validate(&step.changes)?;
        #[cfg(debug_assertions)]
        let before = self.clone();

        let changes = &step.changes;
        for change in &changes.tasks {
            self.set_task_status(change.position, change.to);
        }
        for task in &changes.added {
            self.push_task(task.clone());
        }
        if let Some(change) = changes.workflow {
            self.set_status(change.to);
        }
        self.bump_version();

        #[cfg(debug_assertions)]
        crate::pure::invariant::debug_check_step(&before, self, step.through_retry);
        Ok(())
    }

    /// The step's recorded "from" side must be this state (a pair assertion before the write).
    fn validate(&self, changes: &Changes) -> Result<(), Rejection> {
        if let Some(change) = changes.workflow {
            if change.from != self.status() {
                return Err(Rejection::ForeignStep);
            }
            // Ending a workflow cancels every live attempt: the step must list all of this
            // state's live attempts, or it was computed from a different state (I1).
            let cancelled = changes
                .tasks
                .iter()
                .filter(|c| !c.from.is_terminal())
                .count();
            if change.to.is_terminal() && cancelled != self.active_count() {
                return Err(Rejection::ForeignStep);
            }
        }
        for change in &changes.tasks {
            let same = change.position < self.tasks().len() && {
                let task = self.task_at(change.position);
                task.id == change.task && task.status == change.from
            };
            if !same {
                return Err(Rejection::ForeignStep);
            }
        }
        if changes
            .added
            .iter()
            .any(|task| self.position(&task.id).is_some())
        {
            return Err(Rejection::ForeignStep);
        }
        Ok(())
    }
}
