//! Model parameters: the configurations (`small`, `default`, `large`) and the protocol variants.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use wfstate::{Definition, ReportStatus, TaskDefinition};

/// Which protocol the actors follow (SPEC section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// SPEC section 7: lock → read → transition → CAS → queue effects → unlock → outbox.
    Fixed,
    /// D1: terminate persists TERMINATED, then archives inside the operation; an archive failure
    /// aborts before the tasks are cancelled.
    LegacyArchive,
    /// D2: a report reads the task, then later writes the reported status with no transition
    /// check and no compare-and-swap.
    LegacyBlindReport,
    /// D3: the sweeper reads before locking, writes without compare-and-swap, and dequeues after
    /// unlocking.
    LegacySweeper,
}

impl Variant {
    /// Every variant, fixed first.
    pub const ALL: [Variant; 4] = [
        Variant::Fixed,
        Variant::LegacyArchive,
        Variant::LegacyBlindReport,
        Variant::LegacySweeper,
    ];

    /// The name used on the command line and in tables.
    pub const fn name(self) -> &'static str {
        match self {
            Variant::Fixed => "fixed",
            Variant::LegacyArchive => "legacy-archive",
            Variant::LegacyBlindReport => "legacy-blind-report",
            Variant::LegacySweeper => "legacy-sweeper",
        }
    }

    /// The properties a legacy variant must break (at least one of them); empty for `fixed`.
    pub const fn expected_failures(self) -> &'static [&'static str] {
        match self {
            Variant::Fixed => &[],
            Variant::LegacyArchive => &["I1 at rest"],
            Variant::LegacyBlindReport => &["I3"],
            Variant::LegacySweeper => &["I5", "I6a", "I6b"],
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Variant::ALL
            .into_iter()
            .find(|variant| variant.name() == name)
            .ok_or_else(|| format!("unknown variant {name:?} (fixed, legacy-archive, legacy-blind-report, legacy-sweeper)"))
    }
}

/// The bounded world one model check explores. Every budget is finite, so the model is acyclic
/// apart from nothing: every action consumes a budget or moves an actor forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `small`, `default`, `large` or a caller's name.
    pub name: String,
    /// The linear workflow definition the decider follows (one worker per task).
    pub definition: Definition,
    /// Concurrent sweepers (interchangeable: symmetry reduction applies to them).
    pub sweepers: usize,
    /// Whether an operator terminates the workflow (once) at some point.
    pub terminator: bool,
    /// The terminal statuses a worker may report for an attempt (it also reports IN_PROGRESS).
    pub outcomes: Vec<ReportStatus>,
    /// How many times the network may duplicate a report, per task.
    pub duplicates_per_task: u8,
    /// How many times archiving may fail.
    pub archive_failures: u8,
    /// How many times a lock lease may expire while its holder runs.
    pub lease_expiries: u8,
    /// How many times a sweeper may time a live task out instead of following the decider.
    pub task_timeouts: u8,
    /// How many times each sweeper may miss the lock after taking the id (it puts the id back).
    pub lock_misses: u8,
}

impl Config {
    /// A few hundred thousand states, and every edge of the task table: runs in `cargo test`.
    pub fn small() -> Self {
        Config {
            name: "small".into(),
            definition: Definition::new([TaskDefinition::new("a").optional()]),
            sweepers: 1,
            terminator: true,
            outcomes: vec![
                ReportStatus::Completed,
                ReportStatus::Failed,
                ReportStatus::FailedWithTerminalError,
                ReportStatus::Canceled,
            ],
            duplicates_per_task: 1,
            archive_failures: 1,
            lease_expiries: 1,
            task_timeouts: 1,
            lock_misses: 1,
        }
    }

    /// 3 tasks, 2 sweepers, a terminator, one duplicated and reordered report per task, one
    /// archive failure, lease expiry on.
    pub fn default_config() -> Self {
        Config {
            name: "default".into(),
            definition: Definition::new([
                TaskDefinition::new("a"),
                TaskDefinition::new("b"),
                TaskDefinition::new("c"),
            ]),
            sweepers: 2,
            terminator: true,
            outcomes: vec![ReportStatus::Completed],
            duplicates_per_task: 1,
            archive_failures: 1,
            lease_expiries: 1,
            task_timeouts: 0,
            lock_misses: 0,
        }
    }

    /// The biggest configuration that finishes within 10 minutes on 2 cores: `default` with an
    /// optional middle task, workers that may also fail, and sweepers that may miss the lock.
    /// (Adding one task time-out as well runs past 10 minutes: over 94 million states.)
    pub fn large() -> Self {
        Config {
            name: "large".into(),
            definition: Definition::new([
                TaskDefinition::new("a"),
                TaskDefinition::new("b").optional(),
                TaskDefinition::new("c"),
            ]),
            outcomes: vec![ReportStatus::Completed, ReportStatus::Failed],
            lock_misses: 1,
            ..Config::default_config()
        }
    }

    /// A named configuration.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "small" => Some(Config::small()),
            "default" => Some(Config::default_config()),
            "large" => Some(Config::large()),
            _ => None,
        }
    }
}
