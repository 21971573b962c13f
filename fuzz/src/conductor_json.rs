//! Target `conductor_json`: arbitrary bytes into the Conductor readers.
//!
//! The bytes are read as an execution ([`Execution::from_slice`], then
//! [`Execution::to_workflow`] and the audit, [`check`]) and as an input log ([`read_log`], each
//! event resolved and stepped through [`transition`], from the execution's state when it loaded,
//! else from a new workflow), as `wfstate audit` and `wfstate replay` do. Checked: nothing
//! panics, every error is a typed value that renders, every applied step raises the version by one
//! and keeps I3–I5 across the pair ([`check_pair`], whatever the state it starts from), and a step
//! from a consistent state leaves it consistent ([`check`]). The bytes are also read as a workflow
//! definition ([`WorkflowDefinition::from_slice`]): a definition that reads has unique reference
//! names and every JOIN waits on names it has; any other input is a typed error that renders.
//! A definition that reads is then decided ([`ConductorDecider`], one of its SWITCH-case and
//! loop-count combinations picked by a hash of the input): a workflow runs from RUNNING, each
//! decision stepped and every live task reported COMPLETED or, one in eight by the same hash,
//! FAILED, up to [`MAX_DECISIONS`] steps. Checked: the decider never panics, `transition` accepts
//! every input it decides, every state on the way holds I1–I5 and I8, and a decider that waits
//! with nothing live names the JOIN that blocks ([`ConductorDecider::blocked`]).

use std::collections::BTreeSet;

use wfstate::conductor::{
    read_log, Choices, ConductorDecider, Execution, TaskKind, WorkflowDefinition,
};
use wfstate::runtime::Decider;
use wfstate::{
    check, check_pair, transition, Decision, Input, Report, ReportStatus, Workflow, WorkflowStatus,
};

/// Log events replayed per case at most.
pub const MAX_EVENTS: usize = 512;

/// Steps (decisions and reports) of a decided definition's run at most.
pub const MAX_DECISIONS: usize = 256;

/// What a case did: the replay test checks that the committed seeds reach every kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Inputs that parsed as an execution.
    pub executions: u64,
    /// Executions that loaded as a workflow.
    pub loaded: u64,
    /// Loaded workflows the audit found a violation in.
    pub violations: u64,
    /// Inputs rejected as an execution (a typed error).
    pub execution_errors: u64,
    /// Log events read.
    pub events: u64,
    /// Log events whose step applied.
    pub applied: u64,
    /// Log lines that did not read (a typed error; reading stops there).
    pub log_errors: u64,
    /// Inputs that read as a workflow definition.
    pub definitions: u64,
    /// Inputs refused as a definition (a typed error).
    pub definition_errors: u64,
    /// Definitions the decider took (the others are a typed refusal).
    pub decided: u64,
    /// Decided runs that ended (the workflow left RUNNING) within the step bound.
    pub ended: u64,
    /// Of those, the runs that ended COMPLETED.
    pub completed: u64,
    /// Decided runs left RUNNING with nothing live, on a JOIN that can never complete.
    pub stuck: u64,
}

impl Stats {
    /// Adds another case's counts.
    pub fn add(&mut self, other: Stats) {
        self.executions += other.executions;
        self.loaded += other.loaded;
        self.violations += other.violations;
        self.execution_errors += other.execution_errors;
        self.events += other.events;
        self.applied += other.applied;
        self.log_errors += other.log_errors;
        self.definitions += other.definitions;
        self.definition_errors += other.definition_errors;
        self.decided += other.decided;
        self.ended += other.ended;
        self.completed += other.completed;
        self.stuck += other.stuck;
    }
}

/// Reads `data` both ways, panicking on any broken rule (see the module documentation).
pub fn run(data: &[u8]) -> Stats {
    let mut stats = Stats::default();
    match WorkflowDefinition::from_slice(data) {
        Ok(definition) => {
            stats.definitions += 1;
            let all = definition.all_tasks();
            let names: BTreeSet<&str> = all.iter().map(|t| t.reference_name.as_str()).collect();
            assert_eq!(names.len(), all.len(), "reference names are unique");
            for task in &all {
                if let TaskKind::Join { join_on } = &task.kind {
                    assert!(join_on.iter().all(|name| names.contains(name.as_str())));
                }
            }
            decide(&definition, data, &mut stats);
        }
        Err(error) => {
            stats.definition_errors += 1;
            assert!(!error.to_string().is_empty());
        }
    }
    let loaded = match Execution::from_slice(data) {
        Ok(execution) => {
            stats.executions += 1;
            match execution.to_workflow() {
                Ok(workflow) => {
                    stats.loaded += 1;
                    let violations = check(&workflow);
                    if !violations.is_empty() {
                        stats.violations += 1;
                    }
                    for violation in &violations {
                        assert!(!violation.to_string().is_empty());
                    }
                    Some(workflow)
                }
                Err(error) => {
                    stats.execution_errors += 1;
                    assert!(!error.to_string().is_empty());
                    None
                }
            }
        }
        Err(error) => {
            stats.execution_errors += 1;
            assert!(!error.to_string().is_empty());
            None
        }
    };
    let mut workflow = loaded.unwrap_or_else(|| Workflow::new("fuzz"));
    for entry in read_log(data).take(MAX_EVENTS) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                stats.log_errors += 1;
                assert!(!error.to_string().is_empty());
                continue;
            }
        };
        stats.events += 1;
        let Ok(input) = entry.event.resolve(&workflow) else {
            continue;
        };
        let Ok(step) = transition(&workflow, &input) else {
            continue;
        };
        let before = workflow.clone();
        workflow
            .apply(&step)
            .unwrap_or_else(|rejection| panic!("a fresh step of {input:?} refused: {rejection}"));
        if !step.is_applied() {
            assert!(
                before == workflow,
                "a duplicate of {input:?} changed the workflow"
            );
            continue;
        }
        stats.applied += 1;
        assert_eq!(workflow.version(), before.version() + 1);
        let pair = check_pair(&before, &workflow, step.through_retry());
        assert!(pair.is_empty(), "{input:?} broke {pair:?}");
        if check(&before).is_empty() {
            let violations = check(&workflow);
            assert!(violations.is_empty(), "{input:?} broke {violations:?}");
        }
    }
    stats
}

/// Runs one workflow of `definition` through its decider (see the module documentation).
fn decide(definition: &WorkflowDefinition, data: &[u8], stats: &mut Stats) {
    let Ok(all) = Choices::enumerate(definition, 2, 16) else {
        return;
    };
    // Choices and outcomes from a hash of the whole input (every JSON document starts with `{`).
    let mut random = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    }) | 1;
    let mut next = move || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random
    };
    let pick = usize::try_from(next() % all.len().max(1) as u64).unwrap_or(0);
    let choices = all.get(pick).cloned().unwrap_or_default();
    let decider = match ConductorDecider::new(definition.clone(), choices) {
        Ok(decider) => decider,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    stats.decided += 1;
    let mut workflow = Workflow::new("fuzz-definition");
    for _ in 0..MAX_DECISIONS {
        let input: Input = match decider.decide(&workflow) {
            Decision::Act(input) => input.into(),
            Decision::Idle => {
                stats.ended += 1;
                if workflow.status() == WorkflowStatus::Completed {
                    stats.completed += 1;
                }
                return;
            }
            Decision::Wait => {
                let Some(task) = workflow.active_tasks().next() else {
                    // Waiting with nothing live is the decider's documented answer for a JOIN
                    // that can never complete (the model check's "no stuck workflow" finding):
                    // it must then say which JOIN blocks.
                    assert!(
                        decider.blocked(&workflow).is_some(),
                        "the decider waits with nothing live and no blocked JOIN: {workflow:?}"
                    );
                    stats.stuck += 1;
                    return;
                };
                // One report in eight fails, so runs also get past their first tasks.
                let status = if next() % 8 == 0 {
                    ReportStatus::Failed
                } else {
                    ReportStatus::Completed
                };
                Report::new(task.id.clone(), status).into()
            }
        };
        let step = transition(&workflow, &input)
            .unwrap_or_else(|rejection| panic!("{input:?} refused: {rejection}"));
        workflow
            .apply(&step)
            .unwrap_or_else(|rejection| panic!("a fresh step of {input:?} refused: {rejection}"));
        let violations = check(&workflow);
        assert!(violations.is_empty(), "{input:?} broke {violations:?}");
    }
}
