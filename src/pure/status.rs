//! Workflow and task statuses, spelled and classified exactly as Conductor does (SPEC section 2).

use core::fmt;
use core::str::FromStr;

use alloc::string::{String, ToString};
use serde::{Deserialize, Serialize};

/// An unknown status string: the value is named, nothing is defaulted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} status {value:?}")]
pub struct UnknownStatus {
    /// `"workflow"`, `"task"` or `"report"`: which vocabulary was expected.
    pub kind: &'static str,
    /// The string that was not recognised.
    pub value: String,
}

/// The status of a workflow instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum WorkflowStatus {
    /// The decider is driving it.
    Running,
    /// Held by an operator; reports are still accepted, nothing new is scheduled.
    Paused,
    /// Every task ended successfully.
    Completed,
    /// A required task failed beyond its retries.
    Failed,
    /// The workflow ran out of time.
    TimedOut,
    /// An operator stopped it.
    Terminated,
}

impl WorkflowStatus {
    /// Every workflow status, in declaration order.
    pub const ALL: [WorkflowStatus; 6] = [
        WorkflowStatus::Running,
        WorkflowStatus::Paused,
        WorkflowStatus::Completed,
        WorkflowStatus::Failed,
        WorkflowStatus::TimedOut,
        WorkflowStatus::Terminated,
    ];

    /// Conductor's `isTerminal`: no decider runs on it; only retry leaves it.
    pub const fn is_terminal(self) -> bool {
        match self {
            WorkflowStatus::Running | WorkflowStatus::Paused => false,
            WorkflowStatus::Completed
            | WorkflowStatus::Failed
            | WorkflowStatus::TimedOut
            | WorkflowStatus::Terminated => true,
        }
    }

    /// Conductor's `isSuccessful`, including its quirk that PAUSED counts as successful.
    pub const fn is_successful(self) -> bool {
        match self {
            WorkflowStatus::Paused | WorkflowStatus::Completed => true,
            WorkflowStatus::Running
            | WorkflowStatus::Failed
            | WorkflowStatus::TimedOut
            | WorkflowStatus::Terminated => false,
        }
    }

    /// The wire spelling (`"TIMED_OUT"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Running => "RUNNING",
            WorkflowStatus::Paused => "PAUSED",
            WorkflowStatus::Completed => "COMPLETED",
            WorkflowStatus::Failed => "FAILED",
            WorkflowStatus::TimedOut => "TIMED_OUT",
            WorkflowStatus::Terminated => "TERMINATED",
        }
    }
}

/// The status of one task attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum TaskStatus {
    /// In a task queue, waiting for a worker.
    Scheduled,
    /// A worker holds it.
    InProgress,
    /// Ended successfully.
    Completed,
    /// An optional task whose failure the engine tolerated.
    CompletedWithErrors,
    /// Failed; may be retried as a new attempt.
    Failed,
    /// Failed and must not be retried.
    FailedWithTerminalError,
    /// Cancelled by a worker, the engine or an operator (one L, as Conductor spells it).
    Canceled,
    /// Ran out of time; may be retried as a new attempt.
    TimedOut,
    /// Scheduled as skipped; never runs.
    Skipped,
}

impl TaskStatus {
    /// Every task status, in declaration order.
    pub const ALL: [TaskStatus; 9] = [
        TaskStatus::Scheduled,
        TaskStatus::InProgress,
        TaskStatus::Completed,
        TaskStatus::CompletedWithErrors,
        TaskStatus::Failed,
        TaskStatus::FailedWithTerminalError,
        TaskStatus::Canceled,
        TaskStatus::TimedOut,
        TaskStatus::Skipped,
    ];

    /// Conductor's `isTerminal`.
    pub const fn is_terminal(self) -> bool {
        match self {
            TaskStatus::Scheduled | TaskStatus::InProgress => false,
            TaskStatus::Completed
            | TaskStatus::CompletedWithErrors
            | TaskStatus::Failed
            | TaskStatus::FailedWithTerminalError
            | TaskStatus::Canceled
            | TaskStatus::TimedOut
            | TaskStatus::Skipped => true,
        }
    }

    /// Conductor's `isSuccessful` (true for the non-terminal statuses too, as in Conductor).
    pub const fn is_successful(self) -> bool {
        match self {
            TaskStatus::Scheduled
            | TaskStatus::InProgress
            | TaskStatus::Completed
            | TaskStatus::CompletedWithErrors
            | TaskStatus::Skipped => true,
            TaskStatus::Failed
            | TaskStatus::FailedWithTerminalError
            | TaskStatus::Canceled
            | TaskStatus::TimedOut => false,
        }
    }

    /// Conductor's `isRetriable`.
    pub const fn is_retriable(self) -> bool {
        match self {
            TaskStatus::Scheduled
            | TaskStatus::InProgress
            | TaskStatus::Completed
            | TaskStatus::CompletedWithErrors
            | TaskStatus::Failed
            | TaskStatus::TimedOut => true,
            TaskStatus::FailedWithTerminalError | TaskStatus::Canceled | TaskStatus::Skipped => {
                false
            }
        }
    }

    /// Terminal and successful: the task needs nothing more for the workflow to complete.
    pub const fn is_settled(self) -> bool {
        self.is_terminal() && self.is_successful()
    }

    /// The wire spelling (`"IN_PROGRESS"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Scheduled => "SCHEDULED",
            TaskStatus::InProgress => "IN_PROGRESS",
            TaskStatus::Completed => "COMPLETED",
            TaskStatus::CompletedWithErrors => "COMPLETED_WITH_ERRORS",
            TaskStatus::Failed => "FAILED",
            TaskStatus::FailedWithTerminalError => "FAILED_WITH_TERMINAL_ERROR",
            TaskStatus::Canceled => "CANCELED",
            TaskStatus::TimedOut => "TIMED_OUT",
            TaskStatus::Skipped => "SKIPPED",
        }
    }
}

/// The statuses a worker may report: the type makes engine-only statuses unreportable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ReportStatus {
    /// Still working (progress).
    InProgress,
    /// Done.
    Completed,
    /// Failed, retriable.
    Failed,
    /// Failed, not retriable.
    FailedWithTerminalError,
    /// The worker gave up on it.
    Canceled,
}

impl ReportStatus {
    /// Every reportable status, in declaration order.
    pub const ALL: [ReportStatus; 5] = [
        ReportStatus::InProgress,
        ReportStatus::Completed,
        ReportStatus::Failed,
        ReportStatus::FailedWithTerminalError,
        ReportStatus::Canceled,
    ];

    /// The task status this report asks for.
    pub const fn task_status(self) -> TaskStatus {
        match self {
            ReportStatus::InProgress => TaskStatus::InProgress,
            ReportStatus::Completed => TaskStatus::Completed,
            ReportStatus::Failed => TaskStatus::Failed,
            ReportStatus::FailedWithTerminalError => TaskStatus::FailedWithTerminalError,
            ReportStatus::Canceled => TaskStatus::Canceled,
        }
    }

    /// The wire spelling, the same as the task status it asks for.
    pub const fn as_str(self) -> &'static str {
        self.task_status().as_str()
    }
}

macro_rules! wire_text {
    ($type:ident, $kind:literal) => {
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $type {
            type Err = UnknownStatus;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                $type::ALL
                    .into_iter()
                    .find(|status| status.as_str() == value)
                    .ok_or_else(|| UnknownStatus {
                        kind: $kind,
                        value: value.to_string(),
                    })
            }
        }
    };
}

wire_text!(WorkflowStatus, "workflow");
wire_text!(TaskStatus, "task");
wire_text!(ReportStatus, "report");
