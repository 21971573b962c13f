//! Model-checking a Conductor workflow definition (issue 13): the fixed protocol, with the
//! definition's own decider ([`ConductorDecider`]), over every combination of SWITCH cases and
//! loop counts up to a bound ([`Choices::enumerate`]). A finding is a schedule that leaves the
//! workflow stuck (RUNNING with nothing enabled: the property "completion") or breaks any other
//! `always` property, with its shortest trace. This is `wfstate check --definition`.

use std::time::Instant;

use serde::Serialize;
use stateright::{Checker, HasDiscoveries, Model};
use wfstate::conductor::{Choices, ConductorDecider, DefinitionError, WorkflowDefinition};
use wfstate::{AdminInput, Definition, ReportStatus};

use super::config::{Config, Variant};
use super::protocol::{Action, ProtocolModel};
use super::trace::{trace, TraceLine};

/// The bounds of a definition check: what the environment may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bounds {
    /// Each DO_WHILE runs 1 to this many times.
    pub iterations: u32,
    /// Report duplications the network may make, per task.
    pub duplicates: u8,
    /// Unsuccessful outcomes (FAILED) the workers may report, in all.
    pub failures: u8,
    /// Concurrent sweepers.
    pub sweepers: usize,
    /// An operator may terminate the workflow at any moment.
    pub terminate: bool,
    /// At most this many combinations of choices (each a model check).
    pub max_combinations: usize,
    /// At most this many generated states (stateright's `state_count`, revisits included) per
    /// combination: past it the check stops with no verdict ([`Unchecked::TooManyStates`]).
    /// stateright's `target_state_count` counts generated states, not unique ones, so this is
    /// the count compared.
    pub max_states: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            iterations: 2,
            duplicates: 0,
            failures: 1,
            sweepers: 1,
            terminate: true,
            max_combinations: 256,
            max_states: 20_000_000,
        }
    }
}

/// Why a definition could not be checked (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unchecked {
    /// Unreadable, invalid or unsupported.
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    /// Too many SWITCH and loop combinations for the bound.
    #[error(transparent)]
    Choices(#[from] wfstate::conductor::TooManyChoices),
    /// A combination's states exceed the bound: no verdict (lower the bounds).
    #[error("more than {max_states} generated states for choices {choices}: no verdict within the bounds")]
    TooManyStates {
        /// The bound.
        max_states: usize,
        /// The combination.
        choices: String,
    },
    /// More tasks than the model names (255).
    #[error("{tasks} schedulable tasks with these bounds: the model names at most 255")]
    TooManyTasks {
        /// How many.
        tasks: usize,
    },
}

/// A schedule that breaks a property.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The choices the environment made (SWITCH cases, loop counts).
    pub choices: String,
    /// The property broken.
    pub property: &'static str,
    /// One line: what went wrong.
    pub reason: String,
    /// The schedule.
    pub actions: Vec<Action>,
    /// One readable line per step.
    pub trace: Vec<TraceLine>,
}

/// The result of checking one definition.
#[derive(Debug, Clone, Serialize)]
pub struct DefinitionReport {
    /// The definition's name.
    pub name: String,
    /// Its version.
    pub version: u32,
    /// The bounds used.
    pub bounds: Bounds,
    /// Combinations of choices checked (stops at the first finding).
    pub combinations: usize,
    /// Of how many.
    pub of: usize,
    /// Unique states explored, summed over the combinations.
    pub states: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The first finding, if any.
    pub finding: Option<Finding>,
}

/// The model configuration of a definition under `bounds`: one worker per schedulable task.
pub fn config(definition: &WorkflowDefinition, bounds: &Bounds) -> Result<Config, Unchecked> {
    let tasks = definition.schedulable(bounds.iterations)?;
    if tasks.len() > 255 {
        return Err(Unchecked::TooManyTasks { tasks: tasks.len() });
    }
    let mut outcomes = vec![ReportStatus::Completed];
    if bounds.failures > 0 {
        outcomes.push(ReportStatus::Failed);
    }
    Ok(Config {
        name: format!("definition {}", definition.name),
        definition: Definition::new(tasks),
        sweepers: bounds.sweepers.max(1),
        script: if bounds.terminate {
            vec![AdminInput::Terminate]
        } else {
            Vec::new()
        },
        outcomes,
        duplicates_per_task: bounds.duplicates,
        effect_failures: 0,
        lease_expiries: 0,
        worker_failures: Some(bounds.failures),
        atomic_operations: true,
        // No time-outs, lock misses, store failures, ticks or progress reports, as `default`.
        ..Config::default_config()
    })
}

/// Checks `definition` under `bounds` with `threads` checker threads: every combination of
/// choices, exhaustively, until the first finding.
#[allow(clippy::disallowed_methods)] // Timing a model check is the command's job, not the core's.
pub fn check_definition(
    definition: &WorkflowDefinition,
    bounds: &Bounds,
    threads: usize,
) -> Result<DefinitionReport, Unchecked> {
    let started = Instant::now();
    let config = config(definition, bounds)?;
    let all = Choices::enumerate(definition, bounds.iterations, bounds.max_combinations)?;
    // Refuse what the decider cannot decide before checking anything.
    ConductorDecider::new(definition.clone(), Choices::new())?;
    let mut report = DefinitionReport {
        name: definition.name.clone(),
        version: definition.version,
        bounds: bounds.clone(),
        combinations: 0,
        of: all.len(),
        states: 0,
        seconds: 0.0,
        finding: None,
    };
    for choices in all {
        let decider = ConductorDecider::new(definition.clone(), choices.clone())?;
        let model =
            ProtocolModel::new(config.clone(), Variant::Fixed).with_decider(decider.clone());
        let checker = model
            .checker()
            .threads(threads.max(1))
            .finish_when(HasDiscoveries::AnyFailures)
            .target_state_count(bounds.max_states)
            .spawn_dfs()
            .join();
        report.combinations += 1;
        report.states += checker.unique_state_count();
        let model = checker.model();
        let broken = model
            .properties()
            .into_iter()
            .filter(|property| matches!(property.expectation, stateright::Expectation::Always))
            .map(|property| property.name)
            .find(|name| checker.discoveries().contains_key(name));
        if let Some(property) = broken {
            let actions = shortest(model, property);
            report.finding = Some(Finding {
                choices: choices.describe(),
                property,
                reason: reason(model, &decider, property, &actions),
                trace: trace(model, &actions),
                actions,
            });
            break;
        }
        // A run stopped by the cap explored only part of the space: no verdict, never "clean".
        if checker.state_count() >= bounds.max_states {
            return Err(Unchecked::TooManyStates {
                max_states: bounds.max_states,
                choices: choices.describe(),
            });
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A shortest schedule to a state breaking `property`: stateright's breadth-first search on one
/// thread, stopped at the first violation, which keeps only fingerprints and parent links (a
/// search holding whole states runs out of memory on the larger definitions).
fn shortest(model: &ProtocolModel, property: &'static str) -> Vec<Action> {
    let checker = model
        .clone()
        .checker()
        .threads(1)
        .finish_when(HasDiscoveries::AnyOf([property].into_iter().collect()))
        .spawn_bfs()
        .join();
    checker
        .discovery(property)
        .map(|path| path.into_actions())
        .unwrap_or_default()
}

/// One line on what the schedule's last state shows.
fn reason(
    model: &ProtocolModel,
    decider: &ConductorDecider,
    property: &str,
    actions: &[Action],
) -> String {
    let mut state = model.init_states().remove(0);
    for action in actions {
        match model.step(&state, action) {
            Some(next) => state = next,
            None => break,
        }
    }
    let workflow = state.workflow();
    if property == "no stuck workflow" {
        return match decider.blocked(workflow) {
            Some(blocked) => format!("stuck: RUNNING, nothing live, the decider waits: {blocked}"),
            None => "stuck: RUNNING, nothing live, the decider waits".to_string(),
        };
    }
    let violations = wfstate::check(workflow);
    match violations.first() {
        Some(violation) => format!("breaks {property}: {violation}"),
        None => format!("breaks {property} (workflow {})", workflow.status()),
    }
}
