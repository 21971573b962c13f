//! Model parameters: the configurations (`small`, `default`, `large`) and the protocol variants.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use wfstate::{AdminInput, Definition, ReportStatus, TaskDefinition};

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
    /// E1 (conductor-oss #1132, #1273): a poll postpones the decider-queue entry; a report
    /// commits with no wake-up and then decides under the lock, doing nothing if the lock is
    /// busy.
    LegacyLostWakeup,
    /// E5 (conductor-oss PR #1171, open PR #1254): a decide that leaves a live HUMAN task removes
    /// the workflow from the decider queue; the task's completion pushes it back, then decides,
    /// and a decide holding the lock on the older snapshot removes the entry again.
    LegacyHumanParked,
    /// E6 (conductor-oss #1058, #588): the sweep's decide takes the sweep's own lock again, which
    /// is not reentrant: it fails and the entry is re-pushed with a backoff, every time.
    LegacyNonReentrant,
    /// E2 (conductor-oss #323, Netflix #3491): sweeps decide with no lock and write the whole
    /// workflow document blind after creating the new task rows.
    LegacyNoLock,
    /// E3 (conductor-oss #799, #613): the sweep locks first and reads under the lock, but its
    /// lease is no fence: a decide that outlived its lease still creates its task.
    LegacyLeaseExpiry,
    /// E4 (conductor-oss #208): the sweep reads before locking and decides on that snapshot, so
    /// its new task is deduplicated only against the stale snapshot.
    LegacyStaleSnapshot,
    /// E7 (Netflix #210, #362): a poll reads the attempt, checks it is not terminal, and writes
    /// IN_PROGRESS blind.
    LegacyPoll,
    /// E8 (Netflix #1249): the task time-out under the lock is written blind from the snapshot
    /// it read, over a completion reported in between.
    LegacyTimeoutOverwrite,
    /// E9 (Netflix PR #3216, v3.11.0): the starter decides on its in-memory copy of the workflow
    /// it created, outside the lock, while a sweeper decides too.
    LegacyUnlockedStart,
    /// E10 (Netflix PR #1830, Orkes PR #152): a task row is persisted and its queue push is a
    /// separate call whose failure is swallowed.
    LegacyLostPush,
    /// The fixed operations over a store that applies a commit as separate calls (the
    /// compare-and-swap with its outbox entries, then the queue plan), as a simple store an
    /// engine author writes might.
    CallByCall,
}

impl Variant {
    /// Every variant, fixed first.
    pub const ALL: [Variant; 15] = [
        Variant::Fixed,
        Variant::LegacyArchive,
        Variant::LegacyBlindReport,
        Variant::LegacySweeper,
        Variant::LegacyLostWakeup,
        Variant::LegacyHumanParked,
        Variant::LegacyNonReentrant,
        Variant::LegacyNoLock,
        Variant::LegacyLeaseExpiry,
        Variant::LegacyStaleSnapshot,
        Variant::LegacyPoll,
        Variant::LegacyTimeoutOverwrite,
        Variant::LegacyUnlockedStart,
        Variant::LegacyLostPush,
        Variant::CallByCall,
    ];

    /// The name used on the command line and in tables.
    pub const fn name(self) -> &'static str {
        match self {
            Variant::Fixed => "fixed",
            Variant::LegacyArchive => "legacy-archive",
            Variant::LegacyBlindReport => "legacy-blind-report",
            Variant::LegacySweeper => "legacy-sweeper",
            Variant::LegacyLostWakeup => "legacy-lost-wakeup",
            Variant::LegacyHumanParked => "legacy-human-parked",
            Variant::LegacyNonReentrant => "legacy-non-reentrant",
            Variant::LegacyNoLock => "legacy-no-lock",
            Variant::LegacyLeaseExpiry => "legacy-lease-expiry",
            Variant::LegacyStaleSnapshot => "legacy-stale-snapshot",
            Variant::LegacyPoll => "legacy-poll",
            Variant::LegacyTimeoutOverwrite => "legacy-timeout-overwrite",
            Variant::LegacyUnlockedStart => "legacy-unlocked-start",
            Variant::LegacyLostPush => "legacy-lost-push",
            Variant::CallByCall => "call-by-call",
        }
    }

    /// The Conductor defect it reproduces (`docs/defects.md`), `None` for `fixed` and the
    /// call-by-call store path.
    pub const fn defect(self) -> Option<&'static str> {
        match self {
            Variant::Fixed | Variant::CallByCall => None,
            Variant::LegacyArchive => Some("D1"),
            Variant::LegacyBlindReport => Some("D2"),
            Variant::LegacySweeper => Some("D3"),
            Variant::LegacyLostWakeup => Some("E1"),
            Variant::LegacyHumanParked => Some("E5"),
            Variant::LegacyNonReentrant => Some("E6"),
            Variant::LegacyNoLock => Some("E2"),
            Variant::LegacyLeaseExpiry => Some("E3"),
            Variant::LegacyStaleSnapshot => Some("E4"),
            Variant::LegacyPoll => Some("E7"),
            Variant::LegacyTimeoutOverwrite => Some("E8"),
            Variant::LegacyUnlockedStart => Some("E9"),
            Variant::LegacyLostPush => Some("E10"),
        }
    }

    /// Is it an alternative to the fixed protocol (a legacy variant or the call-by-call store
    /// path), checked only until its expected counterexample?
    pub const fn is_alternative(self) -> bool {
        !matches!(self, Variant::Fixed)
    }

    /// Does it change workflows only through the store's commit (a compare-and-swap of a
    /// [`wfstate::transition`] step)? Then an attempt that has ended stays ended in every later
    /// state, which [`Config::eager_ended_reports`] relies on. The legacy variants write blind
    /// (D2, D3, E2, E7, E8...) and can bring an ended attempt back.
    pub const fn writes_only_by_commit(self) -> bool {
        matches!(self, Variant::Fixed | Variant::CallByCall)
    }

    /// The properties a legacy variant must break (at least one of them); empty for `fixed`.
    pub const fn expected_failures(self) -> &'static [&'static str] {
        match self {
            Variant::Fixed => &[],
            Variant::LegacyArchive => &["I1 at rest"],
            Variant::LegacyBlindReport => &["I3"],
            Variant::LegacySweeper => &["I5", "I6a", "I6b"],
            Variant::LegacyLostWakeup
            | Variant::LegacyHumanParked
            | Variant::LegacyNonReentrant => &["no stall"],
            Variant::LegacyNoLock => &["I5"],
            Variant::LegacyLeaseExpiry | Variant::LegacyStaleSnapshot => &["I8"],
            Variant::LegacyPoll | Variant::LegacyTimeoutOverwrite => &["I3"],
            Variant::LegacyUnlockedStart => &["I8"],
            Variant::LegacyLostPush => &["no lost task"],
            Variant::CallByCall => &["I6a"],
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
            .ok_or_else(|| {
                let names: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
                format!("unknown variant {name:?} ({})", names.join(", "))
            })
    }
}

/// The bounded world one model check explores. Every budget is finite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `small`, `default`, `faults`, `admin`, `large` or a caller's name.
    pub name: String,
    /// The linear workflow definition the decider follows (one worker per task).
    pub definition: Definition,
    /// Concurrent sweepers.
    pub sweepers: usize,
    /// The admin inputs the operator sends, in order, each at a moment of the environment's
    /// choosing (terminate, pause, resume, retry).
    pub script: Vec<AdminInput>,
    /// The terminal statuses a worker may report for an attempt (it also reports IN_PROGRESS).
    pub outcomes: Vec<ReportStatus>,
    /// How many times the network may duplicate a report, per task.
    pub duplicates_per_task: u8,
    /// How many times an effect handler may fail (the outbox runner's, or D1's inline archive).
    pub effect_failures: u8,
    /// How many times a lock lease may expire while its holder runs.
    pub lease_expiries: u8,
    /// How many times the operator may time a live task out (an engine input under the lock).
    pub task_timeouts: u8,
    /// How many times each sweeper may miss the lock after taking the id (it hands the id back).
    pub lock_misses: u8,
    /// How many store calls may fail (certainly not done, or ambiguous: done, reply lost).
    pub store_failures: u8,
    /// How many times time may pass beyond the hiding leases while other actions are enabled
    /// (when nothing else is enabled, it always may).
    pub ticks: u8,
    /// Workers also report IN_PROGRESS (progress) before their outcome.
    pub progress_reports: bool,
    /// Partial-order reduction: the outbox runner moves only when no other actor can. Its
    /// actions touch only the outbox, which no other actor reads, so they commute with every
    /// other action; `tests/model_check.rs` compares verdicts with and without it.
    pub quiet_outbox: bool,
    /// Partial-order reduction: while the network holds a report of an attempt that has already
    /// ended in the store, that report is delivered before any other action is taken. Its
    /// delivery only reads the store and takes the copy off the network (the report is a
    /// duplicate or refused, and stays so: an ended attempt never changes back), so it commutes
    /// with every other action; on for the variants that write workflows only through the
    /// store's commit, and only once no store failure, tick or duplication of that report is
    /// left to choose. `tests/model_check.rs` compares verdicts with and without it; the
    /// argument is in `docs/model.md`.
    pub eager_ended_reports: bool,
    /// Symmetry reduction: with two sweepers, a state and the state with the sweepers swapped
    /// (operations, budgets and the store's lease tokens) are one state to the checker
    /// ([`super::symmetry`]). Only for the fixed protocol, which the checker explores
    /// exhaustively (DFS); `tests/model_check.rs` checks the swap is an automorphism and
    /// compares verdicts and counts with and without it (`docs/model.md`).
    pub symmetric_sweepers: bool,
    /// How many unsuccessful outcomes (any of `outcomes` but COMPLETED) the workers may report
    /// in all; `None`: no limit.
    pub worker_failures: Option<u8>,
    /// Every operation runs all its store calls in one model step (a sweep, an admin operation,
    /// a worker's poll), and a worker's report is delivered and handled in the step that works
    /// the task: the definition checks' abstraction. How the calls of concurrent operations
    /// interleave is what the protocol configurations check, over the same machines.
    pub atomic_operations: bool,
}

impl Config {
    /// Every edge of the task table the model's workers can take, a few hundred thousand
    /// states: runs in `cargo test`.
    pub fn small() -> Self {
        Config {
            name: "small".into(),
            definition: Definition::new([TaskDefinition::new("a").optional()]),
            sweepers: 1,
            script: vec![AdminInput::Terminate],
            outcomes: vec![
                ReportStatus::Completed,
                ReportStatus::Failed,
                ReportStatus::FailedWithTerminalError,
                ReportStatus::Canceled,
            ],
            duplicates_per_task: 1,
            effect_failures: 1,
            lease_expiries: 1,
            task_timeouts: 1,
            lock_misses: 1,
            store_failures: 0,
            ticks: 0,
            progress_reports: true,
            quiet_outbox: true,
            eager_ended_reports: true,
            symmetric_sweepers: true,
            worker_failures: None,
            atomic_operations: false,
        }
    }

    /// 3 tasks, 2 sweepers, a terminator, one duplicated and reordered report per task, one
    /// effect failure, lease expiry on.
    pub fn default_config() -> Self {
        Config {
            name: "default".into(),
            definition: Definition::new([
                TaskDefinition::new("a"),
                TaskDefinition::new("b"),
                TaskDefinition::new("c"),
            ]),
            sweepers: 2,
            script: vec![AdminInput::Terminate],
            outcomes: vec![ReportStatus::Completed],
            duplicates_per_task: 1,
            effect_failures: 1,
            lease_expiries: 1,
            task_timeouts: 0,
            lock_misses: 0,
            store_failures: 0,
            ticks: 0,
            progress_reports: false,
            quiet_outbox: true,
            eager_ended_reports: true,
            symmetric_sweepers: true,
            worker_failures: None,
            atomic_operations: false,
        }
    }

    /// Store failures: one store call of any operation fails, certainly not done or ambiguous
    /// (it took effect, its reply was lost), with a terminator and a lease expiry.
    pub fn faults() -> Self {
        Config {
            name: "faults".into(),
            definition: Definition::new([TaskDefinition::new("a").retries(1)]),
            sweepers: 1,
            script: vec![AdminInput::Terminate],
            outcomes: vec![ReportStatus::Completed, ReportStatus::Failed],
            duplicates_per_task: 0,
            effect_failures: 1,
            lease_expiries: 1,
            task_timeouts: 0,
            lock_misses: 0,
            store_failures: 1,
            ticks: 1,
            progress_reports: false,
            quiet_outbox: true,
            eager_ended_reports: true,
            symmetric_sweepers: true,
            worker_failures: None,
            atomic_operations: false,
        }
    }

    /// The admin operations: pause, resume, terminate and retry, with two sweepers, lease expiry
    /// and lock misses.
    pub fn admin() -> Self {
        Config {
            name: "admin".into(),
            definition: Definition::new([TaskDefinition::new("a")]),
            sweepers: 2,
            script: vec![
                AdminInput::Pause,
                AdminInput::Resume,
                AdminInput::Terminate,
                AdminInput::Retry,
            ],
            outcomes: vec![ReportStatus::Completed, ReportStatus::Failed],
            duplicates_per_task: 0,
            effect_failures: 0,
            lease_expiries: 1,
            task_timeouts: 0,
            lock_misses: 1,
            store_failures: 0,
            ticks: 0,
            progress_reports: false,
            quiet_outbox: true,
            eager_ended_reports: true,
            symmetric_sweepers: true,
            worker_failures: None,
            atomic_operations: false,
        }
    }

    /// A failing task, a retry and a lease expiry: the smallest world in which a status change
    /// back to RUNNING can race a late queue update (the call-by-call store path's hazard).
    pub fn retry() -> Self {
        Config {
            name: "retry".into(),
            definition: Definition::new([TaskDefinition::new("a")]),
            sweepers: 1,
            script: vec![AdminInput::Retry],
            outcomes: vec![ReportStatus::Failed],
            duplicates_per_task: 0,
            effect_failures: 0,
            lease_expiries: 1,
            task_timeouts: 0,
            lock_misses: 0,
            store_failures: 0,
            ticks: 0,
            progress_reports: false,
            quiet_outbox: true,
            eager_ended_reports: true,
            symmetric_sweepers: true,
            worker_failures: None,
            atomic_operations: false,
        }
    }

    /// `default` with an optional middle task, workers that may also fail, and sweepers that may
    /// miss the lock.
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

    /// This configuration with the ingredients `variant`'s defect needs and the configuration
    /// lacks: a task time-out (E8), time passing beyond a hiding lease once (E3, E4: the
    /// popped entry of a slow sweep reappears, as Conductor's unack timeout redelivers it); E4
    /// runs without lease expiry. The fixed protocol replays a legacy counterexample in the
    /// same world (`models/tests/model_check.rs`).
    pub fn for_variant(mut self, variant: Variant) -> Self {
        match variant {
            Variant::LegacyTimeoutOverwrite => {
                self.task_timeouts = self.task_timeouts.max(1);
            }
            // The defects' own interleavings: two decides (E2), a time-out (E7), not the
            // terminator as the other writer.
            Variant::LegacyNoLock => self.script.clear(),
            Variant::LegacyPoll => {
                self.script.clear();
                self.task_timeouts = self.task_timeouts.max(1);
            }
            Variant::LegacyLeaseExpiry => {
                self.ticks = self.ticks.max(1);
            }
            // Without a lease expiry, so that the counterexample is the stale read alone (with
            // one, the shortest is E3's).
            Variant::LegacyStaleSnapshot => {
                self.ticks = self.ticks.max(1);
                self.lease_expiries = 0;
            }
            Variant::Fixed
            | Variant::LegacyArchive
            | Variant::LegacyBlindReport
            | Variant::LegacySweeper
            | Variant::LegacyLostWakeup
            | Variant::LegacyHumanParked
            | Variant::LegacyNonReentrant
            | Variant::LegacyUnlockedStart
            | Variant::LegacyLostPush
            | Variant::CallByCall => {}
        }
        self
    }

    /// The variants `check` runs on this configuration by default: every legacy variant where
    /// its defect's ingredients are configured, and the call-by-call store path. Those that need
    /// two deciders (E2, E3, E4) run on `default` only, and so do E1 and E5, whose shortest
    /// counterexamples on `small` are a time-out's rather than the report's lock miss.
    pub fn variants(&self) -> Vec<Variant> {
        let mut variants = vec![Variant::Fixed];
        if self.name == "small" || self.name == "default" {
            variants.extend([
                Variant::LegacyArchive,
                Variant::LegacyBlindReport,
                Variant::LegacySweeper,
            ]);
        }
        if self.name == "default" {
            variants.extend([
                Variant::LegacyLostWakeup,
                Variant::LegacyHumanParked,
                Variant::LegacyNoLock,
                Variant::LegacyLeaseExpiry,
                Variant::LegacyStaleSnapshot,
            ]);
        }
        if self.name == "small" || self.name == "default" {
            variants.extend([
                Variant::LegacyNonReentrant,
                Variant::LegacyPoll,
                Variant::LegacyTimeoutOverwrite,
                Variant::LegacyUnlockedStart,
                Variant::LegacyLostPush,
            ]);
        }
        if self.name == "retry" {
            variants.push(Variant::CallByCall);
        }
        variants
    }

    /// The configurations `check` runs by default.
    pub const CHECKED: [&'static str; 5] = ["small", "default", "faults", "admin", "retry"];

    /// A named configuration.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "small" => Some(Config::small()),
            "default" => Some(Config::default_config()),
            "faults" => Some(Config::faults()),
            "admin" => Some(Config::admin()),
            "retry" => Some(Config::retry()),
            "large" => Some(Config::large()),
            _ => None,
        }
    }
}
