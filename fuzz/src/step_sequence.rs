//! Target `step_sequence`: one workflow, built through the public API from a new RUNNING workflow
//! (so it starts consistent), and a sequence of inputs of every writer class, with unknown ids,
//! duplicates, late reports, stale steps and steps of another workflow.
//!
//! Checked after every input:
//! - nothing panics;
//! - a rejected input, a duplicate and a progress report change nothing: the state after
//!   [`Workflow::apply`] equals the state before, version included;
//! - an applied step raises the version by exactly one (its `read_version` is the version it was
//!   computed on, its `new_version` the one after), its effects come in phase order, and the new
//!   state holds I1–I3 ([`check`]) and the pair holds I3–I5 ([`check_pair`]);
//! - the same step applied a second time is [`Rejection::StaleVersion`] and changes nothing;
//! - a step computed on an earlier state is `StaleVersion`, one computed on another workflow is
//!   `ForeignStep` (or stale), and neither changes anything (I4).

use arbitrary::Arbitrary;
use wfstate::{
    check, check_pair, decide, transition, AdminInput, Definition, Input, Outcome, Rejection,
    ReportStatus, TaskDefinition, Workflow, WorkflowStatus,
};

use crate::pick::{report, EnginePick, TaskPick, REFERENCES};

/// Inputs replayed per case at most: longer sequences add time, not depth.
pub const MAX_OPS: usize = 256;

/// One fuzz case.
#[derive(Debug, Arbitrary)]
pub struct Case {
    /// The workflow's id.
    pub workflow: String,
    /// What happens to it, in order.
    pub ops: Vec<Op>,
}

/// One operation on the workflow.
#[derive(Debug, Arbitrary)]
pub enum Op {
    /// A worker's report.
    Report {
        /// The attempt.
        task: TaskPick,
        /// What it reports.
        status: ReportStatus,
    },
    /// An engine input.
    Engine(EnginePick),
    /// An operator's input.
    Admin(AdminInput),
    /// Whatever the reference decider (three tasks, retries, one optional) asks for next: it takes
    /// the workflow deep, where random inputs rarely go.
    Decide,
    /// Any input at all, ids included (almost always unknown ones).
    Raw(Input),
    /// An input accepted earlier, sent again: a duplicate or a late delivery.
    Redeliver(u16),
    /// An input accepted earlier, stepped on an earlier state and applied to the current one.
    Stale {
        /// How many states back.
        back: u16,
        /// Which earlier input.
        input: u16,
    },
    /// A terminate stepped on another workflow (same version, other id) and applied to this one.
    Foreign,
}

/// What a case did: the replay test checks that the committed seeds reach every kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Steps applied.
    pub applied: u64,
    /// Duplicates and progress reports.
    pub duplicates: u64,
    /// Inputs rejected.
    pub rejected: u64,
    /// Stale steps refused.
    pub stale: u64,
    /// Foreign steps refused.
    pub foreign: u64,
    /// Cases that ended with the workflow in a terminal status.
    pub terminal: u64,
}

impl Stats {
    /// Adds another case's counts.
    pub fn add(&mut self, other: Stats) {
        self.applied += other.applied;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
        self.stale += other.stale;
        self.foreign += other.foreign;
        self.terminal += other.terminal;
    }
}

/// The reference decider's definition for [`Op::Decide`].
pub fn definition() -> Definition {
    Definition::new([
        TaskDefinition::new(REFERENCES[0]).retries(1),
        TaskDefinition::new(REFERENCES[1]).optional(),
        TaskDefinition::new(REFERENCES[2]),
    ])
}

/// Everything one case keeps.
struct Replay {
    workflow: Workflow,
    /// Every state the workflow has been in, oldest first.
    history: Vec<Workflow>,
    /// Every input that was not rejected, oldest first.
    accepted: Vec<Input>,
    definition: Definition,
    stats: Stats,
}

/// Replays `case`, panicking on any broken rule (see the module documentation).
pub fn run(case: &Case) -> Stats {
    let workflow = Workflow::new(case.workflow.as_str());
    assert!(check(&workflow).is_empty(), "a new workflow is consistent");
    let mut replay = Replay {
        history: vec![workflow.clone()],
        workflow,
        accepted: Vec::new(),
        definition: definition(),
        stats: Stats::default(),
    };
    for op in case.ops.iter().take(MAX_OPS) {
        replay.op(op);
    }
    if replay.workflow.status().is_terminal() {
        replay.stats.terminal += 1;
    }
    replay.stats
}

impl Replay {
    fn op(&mut self, op: &Op) {
        let workflow = &self.workflow;
        let input = match op {
            Op::Report { task, status } => Input::Report(report(task, *status, workflow)),
            Op::Engine(pick) => Input::Engine(pick.resolve(workflow)),
            Op::Admin(input) => Input::Admin(*input),
            Op::Decide => match decide(workflow, &self.definition) {
                wfstate::Decision::Act(input) => Input::Engine(input),
                wfstate::Decision::Wait | wfstate::Decision::Idle => return,
            },
            Op::Raw(input) => input.clone(),
            Op::Redeliver(index) => match pick(&self.accepted, *index) {
                Some(input) => input.clone(),
                None => return,
            },
            Op::Stale { back, input } => return self.stale(*back, *input),
            Op::Foreign => return self.foreign(),
        };
        self.feed(input);
    }

    /// One input through `transition` and `apply`, checked.
    fn feed(&mut self, input: Input) {
        let before = self.workflow.clone();
        let step = match transition(&self.workflow, &input) {
            Ok(step) => step,
            Err(rejection) => {
                // A rejection is a value with a reason; the state is untouched by construction.
                assert!(!rejection.to_string().is_empty());
                self.stats.rejected += 1;
                return;
            }
        };
        assert_eq!(step.read_version(), before.version(), "{input:?}");
        let phases: Vec<_> = step.effects().iter().map(|effect| effect.phase()).collect();
        assert!(
            phases.windows(2).all(|pair| pair[0] <= pair[1]),
            "effects out of phase order for {input:?}: {:?}",
            step.effects()
        );
        self.workflow
            .apply(&step)
            .unwrap_or_else(|rejection| panic!("a fresh step of {input:?} refused: {rejection}"));
        match step.outcome() {
            Outcome::Duplicate | Outcome::Progress => {
                assert!(step.changes().is_empty(), "{input:?}: {:?}", step.changes());
                assert_same(&before, &self.workflow, "a duplicate changed the workflow");
                self.stats.duplicates += 1;
            }
            Outcome::Applied => {
                assert_eq!(self.workflow.version(), before.version() + 1, "{input:?}");
                assert_eq!(step.new_version(), self.workflow.version(), "{input:?}");
                let violations = check(&self.workflow);
                assert!(violations.is_empty(), "{input:?} broke {violations:?}");
                let pair = check_pair(&before, &self.workflow, step.through_retry());
                assert!(pair.is_empty(), "{input:?} broke {pair:?}");
                let after = self.workflow.clone();
                match self.workflow.apply(&step) {
                    Err(Rejection::StaleVersion { read, current }) => {
                        assert_eq!((read, current), (before.version(), after.version()));
                    }
                    other => panic!("the same step applied twice: {other:?}"),
                }
                assert_same(
                    &after,
                    &self.workflow,
                    "a refused step changed the workflow",
                );
                self.history.push(after);
                self.stats.applied += 1;
            }
        }
        self.accepted.push(input);
    }

    fn stale(&mut self, back: u16, input: u16) {
        let (Some(input), Some(old)) = (
            pick(&self.accepted, input),
            self.history
                .iter()
                .rev()
                .nth(usize::from(back) % self.history.len()),
        ) else {
            return;
        };
        if old.version() == self.workflow.version() {
            return;
        }
        let Ok(step) = transition(old, input) else {
            return;
        };
        if !step.is_applied() {
            return;
        }
        let before = self.workflow.clone();
        match self.workflow.apply(&step) {
            Err(Rejection::StaleVersion { read, current }) => {
                assert_eq!((read, current), (old.version(), before.version()));
            }
            other => panic!("a step of version {} applied: {other:?}", old.version()),
        }
        assert_same(&before, &self.workflow, "a stale step changed the workflow");
        self.stats.stale += 1;
    }

    fn foreign(&mut self) {
        let mut other = Workflow::new(format!("{}-other", self.workflow.id()));
        // Bring the other workflow to this one's version (up to a bound), so that only the
        // identity tells the two apart.
        let target = self.workflow.version().min(64);
        while other.version() < target {
            let input = match other.status() {
                WorkflowStatus::Paused => AdminInput::Resume,
                _ => AdminInput::Pause,
            };
            let step = transition(&other, &Input::Admin(input)).expect("pause or resume");
            other.apply(&step).expect("its own step applies");
        }
        let step = transition(&other, &Input::Admin(AdminInput::Terminate)).expect("terminate");
        let before = self.workflow.clone();
        match self.workflow.apply(&step) {
            Err(Rejection::ForeignStep) => {}
            Err(Rejection::StaleVersion { .. }) if other.version() != before.version() => {}
            result => panic!("another workflow's step applied: {result:?}"),
        }
        assert_same(
            &before,
            &self.workflow,
            "a foreign step changed the workflow",
        );
        self.stats.foreign += 1;
    }
}

fn pick<T>(items: &[T], index: u16) -> Option<&T> {
    if items.is_empty() {
        None
    } else {
        items.get(usize::from(index) % items.len())
    }
}

/// The same state: id, status, version and every attempt.
fn assert_same(expected: &Workflow, actual: &Workflow, what: &str) {
    assert!(
        expected.id() == actual.id()
            && expected.status() == actual.status()
            && expected.version() == actual.version()
            && expected.tasks() == actual.tasks(),
        "{what}: {expected:?} became {actual:?}"
    );
}
