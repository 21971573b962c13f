//! Inputs, grouped by the class of writer that may send them (SPEC section 4). The class is in
//! the type: a worker's [`Report`] can only carry a [`ReportStatus`], so it can never perform an
//! engine-only edge such as TIMED_OUT or COMPLETED_WITH_ERRORS.

use core::fmt;

use serde::{Deserialize, Serialize};

use super::id::TaskId;
use super::status::ReportStatus;
use super::task::NewTask;

/// A worker's report on one task attempt (delivered at least once, possibly late, duplicated or
/// reordered).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Report {
    /// The attempt reported on.
    pub task: TaskId,
    /// The status the worker reports.
    pub status: ReportStatus,
}

impl Report {
    /// A report of `status` on `task`.
    pub fn new(task: impl Into<TaskId>, status: ReportStatus) -> Self {
        Report {
            task: task.into(),
            status,
        }
    }
}

/// What the decider and the sweeper may do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum EngineInput {
    /// Put a task's first attempt into the workflow as SCHEDULED (RUNNING workflows only).
    Schedule(NewTask),
    /// Put a task's first attempt into the workflow as SKIPPED (RUNNING workflows only).
    Skip(NewTask),
    /// Retry the latest attempt of a task that ended FAILED or TIMED_OUT as a new SCHEDULED
    /// attempt `task` with retry count + 1 (RUNNING workflows only).
    Reschedule {
        /// The failed latest attempt.
        failed: TaskId,
        /// The id of the new attempt.
        task: TaskId,
    },
    /// SCHEDULED → IN_PROGRESS (a worker polled it).
    Start {
        /// The attempt.
        task: TaskId,
    },
    /// SCHEDULED or IN_PROGRESS → TIMED_OUT.
    TimeOutTask {
        /// The attempt.
        task: TaskId,
    },
    /// SCHEDULED or IN_PROGRESS → CANCELED.
    CancelTask {
        /// The attempt.
        task: TaskId,
    },
    /// An optional task's latest attempt: FAILED or TIMED_OUT → COMPLETED_WITH_ERRORS (RUNNING
    /// workflows only). The only terminal-to-terminal task edge.
    TolerateFailure {
        /// The attempt.
        task: TaskId,
    },
    /// RUNNING → COMPLETED; every latest attempt must be terminal and successful.
    Complete,
    /// RUNNING → FAILED, cancelling every non-terminal attempt in the same step.
    Fail,
    /// RUNNING or PAUSED → TIMED_OUT, cancelling every non-terminal attempt in the same step.
    TimeOut,
}

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum AdminInput {
    /// RUNNING or PAUSED → TERMINATED, cancelling every non-terminal attempt in the same step.
    Terminate,
    /// RUNNING → PAUSED.
    Pause,
    /// PAUSED → RUNNING.
    Resume,
    /// FAILED, TIMED_OUT or TERMINATED → RUNNING, appending a new SCHEDULED attempt (id from
    /// [`TaskId::attempt`]) for every reference name whose latest attempt ended unsuccessfully.
    Retry,
}

/// Which class of writer an input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Writer {
    /// Workers (REST, Kafka, ...).
    Report,
    /// The decider and sweeper.
    Engine,
    /// Operators.
    Admin,
}

impl Writer {
    /// The lowercase name used in tables.
    pub const fn as_str(self) -> &'static str {
        match self {
            Writer::Report => "report",
            Writer::Engine => "engine",
            Writer::Admin => "admin",
        }
    }
}

impl fmt::Display for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One input to the transition function.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "writer", content = "input", rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Input {
    /// From a worker.
    Report(Report),
    /// From the decider or sweeper.
    Engine(EngineInput),
    /// From an operator.
    Admin(AdminInput),
}

impl Input {
    /// The class of writer this input comes from.
    pub const fn writer(&self) -> Writer {
        match self {
            Input::Report(_) => Writer::Report,
            Input::Engine(_) => Writer::Engine,
            Input::Admin(_) => Writer::Admin,
        }
    }
}

impl From<Report> for Input {
    fn from(report: Report) -> Self {
        Input::Report(report)
    }
}

impl From<EngineInput> for Input {
    fn from(input: EngineInput) -> Self {
        Input::Engine(input)
    }
}

impl From<AdminInput> for Input {
    fn from(input: AdminInput) -> Self {
        Input::Admin(input)
    }
}
