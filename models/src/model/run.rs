//! Running a model check and judging its verdicts: shared by the `wfstate check` command, the
//! pinned-count tests, and engine authors checking their own decider.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;
use stateright::{Checker, Expectation, HasDiscoveries, Model};

use super::config::Variant;
use super::protocol::{Action, ProtocolModel};
use super::state::State;
use super::trace::{trace, TraceLine};

/// How one property came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An `always` property with no counterexample.
    Holds,
    /// An `always` property with a counterexample.
    Violated,
    /// A `sometimes` property with an example.
    Reached,
    /// A `sometimes` property never satisfied.
    Unreached,
    /// The run stopped at the first expected counterexample before settling this property.
    Unsettled,
}

/// One property's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Property name.
    pub property: &'static str,
    /// `always` or `sometimes`.
    pub kind: &'static str,
    /// What happened.
    pub outcome: Outcome,
    /// Whether that is what the variant promises.
    pub as_expected: bool,
}

/// The result of checking one configuration and variant.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Configuration name.
    pub config: String,
    /// Protocol variant.
    pub variant: Variant,
    /// Unique states explored.
    pub states: usize,
    /// Maximum depth explored.
    pub depth: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Every property's verdict.
    pub verdicts: Vec<Verdict>,
    /// For a legacy variant: the minimal counterexample to its invariant.
    pub counterexample: Option<Counterexample>,
}

/// A minimal schedule that breaks a property.
#[derive(Debug, Clone, Serialize)]
pub struct Counterexample {
    /// The broken property.
    pub property: &'static str,
    /// The schedule, replayable with [`ProtocolModel::step`].
    pub actions: Vec<Action>,
    /// One readable line per step.
    pub trace: Vec<TraceLine>,
}

impl Report {
    /// Every verdict is what the variant promises.
    pub fn as_expected(&self) -> bool {
        self.verdicts.iter().all(|verdict| verdict.as_expected)
            && (self.variant == Variant::Fixed || self.counterexample.is_some())
    }

    /// Unique states per second.
    pub fn states_per_second(&self) -> f64 {
        self.states as f64 / self.seconds.max(1e-9)
    }
}

/// How to run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Checker threads.
    pub threads: usize,
    /// Called about once a second with (unique states, depth, seconds) during long runs.
    pub progress: Option<fn(usize, usize, f64)>,
    /// Let stateright evaluate and record each property itself, as it does by default, instead
    /// of one property that evaluates them all ([`ProtocolModel::all_at_once`]) and `sometimes`
    /// properties evaluated until first reached ([`ProtocolModel::remember_reached`]). Slower,
    /// with the same verdicts; for the test that compares the two (`docs/performance.md`).
    pub each_property: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: 2,
            progress: None,
            each_property: false,
        }
    }
}

/// Checks a model. The fixed protocol is explored exhaustively (DFS);
/// a legacy variant runs BFS on one thread and stops at the first counterexample to its
/// invariant, which is then minimal (stateright's BFS keeps the shortest path only if the run
/// stops there).
#[allow(clippy::disallowed_methods)] // Timing a model check is the command's job, not the core's.
pub fn check(model: ProtocolModel, options: Options) -> Report {
    let started = Instant::now();
    let variant = model.variant;
    match variant {
        Variant::Fixed => {
            let model = if options.each_property {
                model
            } else {
                model.all_at_once()
            };
            // With symmetry over the sweepers the model's `next_state` returns representatives
            // itself (`ProtocolModel::symmetric`): stateright's `symmetry_fn` would copy each
            // successor to build its representative and hash it twice.
            let builder = model.checker().threads(options.threads);
            collect(builder.spawn_dfs(), started, options)
        }
        _ => {
            let model = if options.each_property {
                model
            } else {
                model.remember_reached()
            };
            let builder = model.checker();
            let targets: BTreeSet<&'static str> =
                variant.expected_failures().iter().copied().collect();
            let checker = builder
                .threads(1)
                .finish_when(HasDiscoveries::AnyOf(targets))
                .spawn_bfs();
            collect(checker, started, options)
        }
    }
}

#[allow(clippy::disallowed_methods)] // Timing a model check is the command's job, not the core's.
fn collect<C: Checker<ProtocolModel>>(checker: C, started: Instant, options: Options) -> Report {
    wait(&checker, started, options.progress);
    let checker = checker.join();
    let seconds = started.elapsed().as_secs_f64();
    let model = checker.model();
    let variant = model.variant;
    let discoveries = checker.discoveries();
    let settled = variant == Variant::Fixed;
    let verdicts = super::properties::each(model)
        .iter()
        .map(|property| {
            let found = model
                .tally
                .found(model, property.name)
                .unwrap_or_else(|| discoveries.contains_key(property.name));
            judge(
                variant,
                property.name,
                &property.expectation,
                found,
                settled,
            )
        })
        .collect();
    let counterexample = variant
        .expected_failures()
        .iter()
        .filter(|name| discoveries.contains_key(*name))
        .filter_map(|&name| {
            let actions = shortest_counterexample(model, name)?;
            Some(Counterexample {
                property: name,
                trace: trace(model, &actions),
                actions,
            })
        })
        .min_by_key(|counterexample| counterexample.actions.len());
    Report {
        config: model.config.name.clone(),
        variant,
        states: checker.unique_state_count(),
        depth: checker.max_depth(),
        seconds,
        verdicts,
        counterexample,
    }
}

fn judge(
    variant: Variant,
    name: &'static str,
    expectation: &Expectation,
    found: bool,
    settled: bool,
) -> Verdict {
    let always = matches!(expectation, Expectation::Always | Expectation::Eventually);
    let outcome = match (always, found, settled) {
        (true, true, _) => Outcome::Violated,
        (false, true, _) => Outcome::Reached,
        (true, false, true) => Outcome::Holds,
        (false, false, true) => Outcome::Unreached,
        (_, false, false) => Outcome::Unsettled,
    };
    let as_expected = match variant {
        Variant::Fixed => matches!(outcome, Outcome::Holds | Outcome::Reached),
        // A legacy run promises only its counterexample; what else it meets is information.
        _ => true,
    };
    Verdict {
        property: name,
        kind: if always { "always" } else { "sometimes" },
        outcome,
        as_expected,
    }
}

#[allow(clippy::disallowed_methods)] // Progress polling belongs to the command, not the core.
fn wait<M: Model, C: Checker<M>>(
    checker: &C,
    started: Instant,
    progress: Option<fn(usize, usize, f64)>,
) {
    let Some(report) = progress else { return };
    let mut next = Duration::from_secs(1);
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(5));
        if started.elapsed() >= next {
            report(
                checker.unique_state_count(),
                checker.max_depth(),
                started.elapsed().as_secs_f64(),
            );
            next += Duration::from_secs(1);
        }
    }
}

/// The shortest schedule from the initial state to a state breaking the `always` property
/// `name`: a plain breadth-first search with parent links, stopped at the first violation. (The
/// checker's own BFS path is not always the shortest when several threads or batches race.)
pub fn shortest_counterexample(model: &ProtocolModel, name: &str) -> Option<Vec<Action>> {
    // A model of its own, whose properties answer on every state (not only until reached).
    let model = &ProtocolModel {
        tally: Default::default(),
        ..model.clone()
    };
    let property = super::properties::each(model)
        .into_iter()
        .find(|p| p.name == name)?;
    let init = model.init_states().remove(0);
    // `State`'s shared parts cache their hash; it is a function of their (immutable) contents.
    #[allow(clippy::mutable_key_type)]
    let mut parents: HashMap<State, Option<(State, Action)>> = HashMap::new();
    let mut frontier = VecDeque::from([init.clone()]);
    parents.insert(init, None);
    while let Some(state) = frontier.pop_front() {
        if !(property.condition)(model, &state) {
            let mut actions = Vec::new();
            let mut cursor = state;
            while let Some(Some((parent, action))) = parents.get(&cursor).cloned() {
                actions.push(action);
                cursor = parent;
            }
            actions.reverse();
            return Some(actions);
        }
        let mut actions = Vec::new();
        model.actions(&state, &mut actions);
        for action in actions {
            if let Some(next) = model.next_state(&state, action.clone()) {
                if !parents.contains_key(&next) {
                    parents.insert(next.clone(), Some((state.clone(), action)));
                    frontier.push_back(next);
                }
            }
        }
    }
    None
}

/// A saved schedule: a legacy counterexample, replayable against any variant.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Schedule {
    /// Configuration name.
    pub config: String,
    /// The variant that produced it.
    pub variant: Variant,
    /// The property it breaks there.
    pub property: String,
    /// Who moved, in order.
    pub actions: Vec<Action>,
}

/// What replaying a schedule against a model showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Steps taken (actions not enabled in this variant are skipped).
    pub taken: usize,
    /// Steps skipped.
    pub skipped: usize,
    /// Every `always` property broken, with the first step after which it was broken, in the
    /// order they broke.
    pub violations: Vec<(String, usize)>,
}

/// Replays `actions` against `model` from its initial state, skipping actions it does not enable,
/// and checks every `always` property after every step.
pub fn replay(model: &ProtocolModel, actions: &[Action]) -> Replay {
    let properties: Vec<_> = super::properties::each(model)
        .into_iter()
        .filter(|p| matches!(p.expectation, Expectation::Always))
        .collect();
    let mut state = model.init_states().remove(0);
    let mut result = Replay {
        taken: 0,
        skipped: 0,
        violations: Vec::new(),
    };
    for action in actions {
        let Some(next) = model.step(&state, action) else {
            result.skipped += 1;
            continue;
        };
        state = next;
        result.taken += 1;
        for property in &properties {
            let known = result
                .violations
                .iter()
                .any(|(name, _)| name == property.name);
            if !known && !(property.condition)(model, &state) {
                result
                    .violations
                    .push((property.name.to_string(), result.taken));
            }
        }
    }
    result
}
