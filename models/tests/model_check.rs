//! The model checks that run in `cargo test`: the `small`, `faults` and `retry` configurations of
//! every variant they run, with pinned state counts, the saved legacy counterexamples replayed
//! against their variant and against the fixed protocol, the partial-order reduction compared
//! with the full interleaving, and an engine author's own decider checked under the same
//! interleavings. (`default` and `admin` run in `.ci/run` through `wfstate check`.)

use stateright::Model;
use wfstate::{Decision, Definition, EngineInput, Workflow, WorkflowStatus};
use wfstate_models::model::run::{shortest_counterexample, Outcome};
use wfstate_models::model::{
    check, replay, Config, Options, ProtocolModel, Report, Schedule, Variant,
};

/// Unique states per variant of `small`: the whole state space for the fixed protocol (DFS,
/// exhaustive), and the states a legacy run explores until its first counterexample (BFS, one
/// thread: deterministic). A change in the model, in the runtime's operation machines or store
/// state, or in the core's transition function moves these: review it, then update them.
const PINNED: [(Variant, usize); 9] = [
    (Variant::Fixed, 143_507),
    (Variant::LegacyArchive, 2_848),
    (Variant::LegacyBlindReport, 3_084),
    (Variant::LegacySweeper, 1_574),
    (Variant::LegacyNonReentrant, 2_593),
    (Variant::LegacyPoll, 2_687),
    (Variant::LegacyTimeoutOverwrite, 7_521),
    (Variant::LegacyUnlockedStart, 3_096),
    (Variant::LegacyLostPush, 2_688),
];

/// Every legacy variant on `default` (BFS, one thread, until its first counterexample): the
/// states explored and the property its counterexample breaks, with the trace length. (The
/// fixed protocol on `default` runs in `.ci/run` through `wfstate check`.)
const PINNED_DEFAULT: [(Variant, usize, &str, usize); 13] = [
    (Variant::LegacyArchive, 2_321, "I1 at rest", 10),
    (Variant::LegacyBlindReport, 1_970, "I3", 14),
    (Variant::LegacySweeper, 424, "I5", 8),
    (Variant::LegacyLostWakeup, 2_041, "no stall", 12),
    (Variant::LegacyHumanParked, 2_200, "no stall", 14),
    (Variant::LegacyNoLock, 127_118, "I5", 35),
    (Variant::LegacyLeaseExpiry, 2_285, "I8", 10),
    (Variant::LegacyStaleSnapshot, 2_039, "I8", 11),
    (Variant::LegacyNonReentrant, 2_015, "no stall", 5),
    (Variant::LegacyPoll, 2_143, "I3", 11),
    (Variant::LegacyTimeoutOverwrite, 2_171, "I3", 14),
    (Variant::LegacyUnlockedStart, 2_362, "I8", 5),
    (Variant::LegacyLostPush, 2_054, "no lost task", 7),
];

/// The runs a change of how the checker explores is compared on: the fixed protocol of `faults`
/// and `retry`, the call-by-call path of `retry`, and every legacy variant of `small`.
const SOUNDNESS_RUNS: [(&str, Variant); 11] = [
    ("faults", Variant::Fixed),
    ("retry", Variant::Fixed),
    ("retry", Variant::CallByCall),
    ("small", Variant::LegacyArchive),
    ("small", Variant::LegacyBlindReport),
    ("small", Variant::LegacySweeper),
    ("small", Variant::LegacyNonReentrant),
    ("small", Variant::LegacyPoll),
    ("small", Variant::LegacyTimeoutOverwrite),
    ("small", Variant::LegacyUnlockedStart),
    ("small", Variant::LegacyLostPush),
];

/// Evaluating every property in one stateright property, and `sometimes` properties only until
/// first reached (`ProtocolModel::all_at_once`, `remember_reached`: what `check` does), gives
/// the verdicts and the state counts stateright gives when it evaluates and records each property
/// itself: on the fixed protocol of `faults` and `retry`, on `small` with a decider that breaks
/// a property, on the call-by-call path, and on every legacy variant of `small`.
#[test]
fn properties_all_at_once_give_the_verdicts_of_each_property() {
    let models = SOUNDNESS_RUNS
        .into_iter()
        .map(|(name, variant)| {
            let config = Config::named(name).expect("known config");
            (
                format!("{name}/{variant}"),
                ProtocolModel::new(config, variant),
            )
        })
        .chain(std::iter::once((
            "small/fixed, decider completing too early".to_string(),
            ProtocolModel::new(Config::small(), Variant::Fixed).with_decider(
                |workflow: &Workflow| completes_too_early(workflow, &Config::small().definition),
            ),
        )));
    for (name, model) in models {
        let each = Options {
            each_property: true,
            threads: 1,
            ..Options::default()
        };
        let together = Options {
            threads: 1,
            ..Options::default()
        };
        let by_each = check(model.clone(), each);
        let at_once = check(model, together);
        let verdicts = |report: &wfstate_models::model::Report| {
            report
                .verdicts
                .iter()
                .map(|v| (v.property, v.outcome))
                .collect::<Vec<_>>()
        };
        assert_eq!(verdicts(&by_each), verdicts(&at_once), "{name}");
        assert_eq!(by_each.states, at_once.states, "{name}");
        assert_eq!(
            by_each.counterexample.as_ref().map(|c| &c.actions),
            at_once.counterexample.as_ref().map(|c| &c.actions),
            "{name}"
        );
        if name.contains("too early") {
            assert!(
                verdicts(&at_once).contains(&("decisions accepted", Outcome::Violated)),
                "a broken property is reported when all are evaluated at once"
            );
        }
    }
}

/// Each Conductor defect on `default`: its counterexample, with pinned counts and lengths.
#[test]
fn every_legacy_variant_on_default_breaks_its_property() {
    let config = Config::default_config();
    let variants: Vec<Variant> = config
        .variants()
        .into_iter()
        .filter(|variant| *variant != Variant::Fixed)
        .collect();
    let pinned: Vec<Variant> = PINNED_DEFAULT.iter().map(|row| row.0).collect();
    assert_eq!(
        variants, pinned,
        "a pinned row per legacy variant of default"
    );
    for (variant, states, property, steps) in PINNED_DEFAULT {
        let report = check(
            ProtocolModel::new(config.clone(), variant),
            Options::default(),
        );
        assert!(report.as_expected(), "default/{variant}");
        let counterexample = report.counterexample.expect("a counterexample");
        assert_eq!(
            (counterexample.property, counterexample.actions.len()),
            (property, steps),
            "default/{variant}"
        );
        assert_eq!(
            report.states, states,
            "default/{variant}: state count moved"
        );
    }
}

/// The other configurations `cargo test` checks, with their pinned counts: store failures
/// (fixed, exhaustive) and the retry world (fixed exhaustive; call-by-call until its
/// counterexample).
const PINNED_OTHERS: [(&str, Variant, usize); 4] = [
    ("faults", Variant::Fixed, 98_620),
    ("admin", Variant::Fixed, 300_153),
    ("retry", Variant::Fixed, 382),
    ("retry", Variant::CallByCall, 1_795),
];

/// I1–I6, completion and every sometimes-property of `small` under the fixed protocol (SPEC
/// section 8: every always-property holds, every sometimes-property is reached), with the pinned
/// state count.
#[test]
fn small_fixed_protocol_holds_i1_to_i6_exhaustively() {
    let report = check(
        ProtocolModel::new(Config::small(), Variant::Fixed),
        Options::default(),
    );
    for verdict in &report.verdicts {
        assert!(
            matches!(verdict.outcome, Outcome::Holds | Outcome::Reached),
            "{}: {:?}",
            verdict.property,
            verdict.outcome
        );
    }
    assert!(report
        .verdicts
        .iter()
        .any(|v| v.property.starts_with("edge ")));
    assert!(report.as_expected());
    assert_eq!(report.states, PINNED[0].1, "small/fixed state count moved");
}

/// Store failures (`faults`): every always-property holds exhaustively when any one store call
/// fails, certainly not done or ambiguous, and the failure and ambiguous-commit properties are
/// reached (no lost wake-up, no lost effect, no lease left behind: I6a, I7). The admin inputs
/// (`admin`: pause, resume, terminate, retry) keep every property too. The call-by-call
/// store path (`retry`) loses a wake-up (I6a), which is why the contract makes a commit one
/// atomic call with its queue plan.
#[test]
fn faults_admin_and_retry_configurations_with_pinned_counts() {
    for (name, variant, pinned) in PINNED_OTHERS {
        let config = Config::named(name).expect("known config");
        let report = check(ProtocolModel::new(config, variant), Options::default());
        assert!(report.as_expected(), "{name}/{variant} not as expected");
        if variant == Variant::Fixed {
            for verdict in &report.verdicts {
                assert!(
                    matches!(verdict.outcome, Outcome::Holds | Outcome::Reached),
                    "{name}: {}: {:?}",
                    verdict.property,
                    verdict.outcome
                );
            }
        }
        if name == "faults" {
            for property in [
                "a store call failed and the operation recovered",
                "a commit was ambiguous",
            ] {
                let verdict = report.verdicts.iter().find(|v| v.property == property);
                assert_eq!(
                    verdict.map(|v| v.outcome),
                    Some(Outcome::Reached),
                    "{property}"
                );
            }
        }
        assert_eq!(report.states, pinned, "{name}/{variant} state count moved");
    }
}

/// `config` checked as `variant` with its reduction (`reduced`) and without it (`full`).
fn with_and_without(
    reduced: Config,
    variant: Variant,
    full: impl FnOnce(Config) -> Config,
) -> (Report, Report) {
    let without = full(reduced.clone());
    (
        check(ProtocolModel::new(reduced, variant), Options::default()),
        check(ProtocolModel::new(without, variant), Options::default()),
    )
}

/// Every verdict of `report`: the property and its outcome.
fn verdicts(report: &Report) -> Vec<(&'static str, Outcome)> {
    report
        .verdicts
        .iter()
        .map(|v| (v.property, v.outcome))
        .collect()
}

/// The property `report`'s counterexample breaks, if any.
fn broken(report: &Report) -> Option<&'static str> {
    report.counterexample.as_ref().map(|c| c.property)
}

/// The outbox partial-order reduction (`Config::quiet_outbox`: the outbox runner moves only
/// when no other actor can) is sound: with and without it, the fixed protocol on `faults` and
/// `retry` gives the same verdict on every property, and every legacy variant of `small` and
/// the call-by-call path of `retry` breaks the same property; the full interleaving has more
/// states.
#[test]
fn quiet_outbox_reduction_keeps_every_verdict() {
    for (name, variant) in SOUNDNESS_RUNS {
        let reduced = Config::named(name)
            .expect("known config")
            .for_variant(variant);
        let (with, without) = with_and_without(reduced, variant, |config| Config {
            quiet_outbox: false,
            ..config
        });
        if variant == Variant::Fixed {
            assert_eq!(verdicts(&with), verdicts(&without), "{name}/{variant}");
            assert!(
                without.states > with.states,
                "{name}: the reduction reduces"
            );
        } else {
            assert_eq!(broken(&with), broken(&without), "{name}/{variant}");
            assert!(broken(&with).is_some(), "{name}/{variant}");
        }
    }
}

/// The ended-report partial-order reduction (`Config::eager_ended_reports`: a report of an
/// attempt that has already ended is delivered before anything else moves) is sound: with and
/// without it, the fixed protocol on `small`, `default`, `faults`, `admin` and `retry` and the
/// call-by-call path of `retry` give the same verdict on every property (always and sometimes)
/// and no more states with it, and fewer where reports are duplicated or outlive their attempt.
/// The legacy variants write blind, so an ended attempt can come back: the reduction is off for
/// them, and every legacy variant of `small` explores exactly the same states with the flag on.
#[test]
fn ended_report_reduction_keeps_every_verdict() {
    let fixed = [
        ("small", Variant::Fixed, true),
        ("default", Variant::Fixed, true),
        ("faults", Variant::Fixed, true),
        ("admin", Variant::Fixed, true),
        ("retry", Variant::Fixed, false),
        ("retry", Variant::CallByCall, false),
    ];
    let off = |config| Config {
        eager_ended_reports: false,
        ..config
    };
    for (name, variant, reduces) in fixed {
        let reduced = Config::named(name)
            .expect("known config")
            .for_variant(variant);
        let (with, without) = with_and_without(reduced, variant, off);
        assert_eq!(verdicts(&with), verdicts(&without), "{name}/{variant}");
        assert!(!verdicts(&with).is_empty(), "{name}/{variant}: verdicts");
        if reduces {
            assert!(
                with.states < without.states,
                "{name}/{variant}: the reduction reduces ({} against {})",
                with.states,
                without.states
            );
        } else {
            assert!(with.states <= without.states, "{name}/{variant}");
        }
    }
    for variant in Config::small().variants() {
        if variant.writes_only_by_commit() {
            continue;
        }
        let on = Config::small().for_variant(variant);
        assert!(on.eager_ended_reports, "on by default");
        // A legacy variant runs BFS on one thread: its count is deterministic.
        let (with, without) = with_and_without(on, variant, off);
        assert_eq!(with.states, without.states, "small/{variant}: off for it");
        assert_eq!(broken(&with), broken(&without), "small/{variant}");
        assert!(broken(&with).is_some(), "small/{variant}");
    }
}

fn schedules() -> Vec<(String, Schedule)> {
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/counterexamples");
    let mut schedules: Vec<_> = std::fs::read_dir(folder)
        .expect("counterexample folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable");
            let schedule = serde_json::from_str(&text).expect("a schedule");
            (path.display().to_string(), schedule)
        })
        .collect();
    schedules.sort_by(|a, b| a.0.cmp(&b.0));
    schedules
}

/// The saved counterexamples (regression fixtures for D1–D3, E2–E4 and E7–E10): replayed against
/// their legacy variant they break its invariant at their last step; replayed against the fixed
/// protocol, in the same world (the variant's ingredients added), the same schedule keeps every
/// always-property (I1–I8, completion...). Steps the fixed protocol has no actor for (E9's
/// starter, E10's failing push) are skipped there.
#[test]
fn saved_counterexamples_break_legacy_and_not_fixed() {
    let schedules = schedules();
    let mut expected: Vec<String> = Vec::new();
    for config in ["small", "default"] {
        for variant in Config::named(config).expect("known").variants() {
            if variant != Variant::Fixed {
                expected.push(format!("{config}-{variant}.json"));
            }
        }
    }
    expected.push("retry-call-by-call.json".into());
    expected.sort();
    let mut saved: Vec<String> = schedules
        .iter()
        .map(|(path, _)| path.rsplit('/').next().unwrap_or(path).to_owned())
        .collect();
    saved.sort();
    assert_eq!(
        saved, expected,
        "one per legacy variant and configuration it runs on, and the call-by-call store path"
    );
    for (path, schedule) in schedules {
        let config = Config::named(&schedule.config)
            .expect("known config")
            .for_variant(schedule.variant);
        let legacy = ProtocolModel::new(config.clone(), schedule.variant);
        let result = replay(&legacy, &schedule.actions);
        assert_eq!(
            result.skipped, 0,
            "{path}: every step is enabled in its own variant"
        );
        let broken = result
            .violations
            .iter()
            .find(|(name, _)| *name == schedule.property);
        assert_eq!(
            broken,
            Some(&(schedule.property.clone(), schedule.actions.len())),
            "{path}: its property breaks at its last step"
        );

        let fixed = ProtocolModel::new(config, Variant::Fixed);
        let result = replay(&fixed, &schedule.actions);
        assert_eq!(
            result.violations,
            [],
            "{path}: the fixed protocol survives it"
        );
        assert!(
            result.taken > 0,
            "{path}: the schedule exercises the fixed protocol"
        );
    }
}

/// The saved counterexamples are still the shortest the model has (so a model change that
/// shortens or breaks them is noticed). Regenerate with
/// `cargo run --release -p wfstate-models -- check --config small --config default --config retry --save-counterexamples models/tests/counterexamples`.
#[test]
fn saved_counterexamples_are_the_shortest() {
    for (path, schedule) in schedules() {
        let config = Config::named(&schedule.config).expect("known config");
        let model = ProtocolModel::new(config, schedule.variant);
        let shortest = shortest_counterexample(&model, &schedule.property).expect("still broken");
        assert_eq!(shortest.len(), schedule.actions.len(), "{path}");
    }
}

/// An engine's own decider that completes a workflow before its tasks are done: the model
/// reports the rejected decision instead of a silent bug (bring your own decider).
fn completes_too_early(workflow: &Workflow, definition: &Definition) -> Decision {
    if workflow.status() != WorkflowStatus::Running {
        return Decision::Idle;
    }
    if workflow.tasks().is_empty() {
        return wfstate::decide(workflow, definition);
    }
    Decision::Act(EngineInput::Complete)
}

/// Bring your own decider: the same interleavings check it, and a wrong one is caught.
#[test]
fn own_decider_is_checked_under_the_same_interleavings() {
    let definition = Config::small().definition;
    let decider = move |workflow: &Workflow| completes_too_early(workflow, &definition);
    let model = ProtocolModel::new(Config::small(), Variant::Fixed).with_decider(decider);
    let report = check(model, Options::default());
    let verdict = report
        .verdicts
        .iter()
        .find(|v| v.property == "decisions accepted")
        .expect("property exists");
    assert_eq!(verdict.outcome, Outcome::Violated);
    assert!(!report.as_expected());

    let reference = ProtocolModel::new(Config::small(), Variant::Fixed);
    assert!(reference
        .properties()
        .iter()
        .any(|p| p.name == "completion"));
}

/// docs/model.md shows the `small` state counts; they are the pinned ones (no drift).
#[test]
fn documented_small_counts_are_the_pinned_ones() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/model.md"))
        .expect("docs/model.md");
    for (variant, pinned) in PINNED {
        let prefix = format!("| small | {variant} | ");
        let row = doc
            .lines()
            .find(|line| line.starts_with(&prefix))
            .unwrap_or_else(|| panic!("docs/model.md has no row for small/{variant}"));
        let states: usize = row[prefix.len()..]
            .split(" |")
            .next()
            .and_then(|cell| cell.trim().parse().ok())
            .expect("a state count");
        assert_eq!(states, pinned, "docs/model.md small/{variant}");
    }
}

/// `wfstate explore` on a port already taken is a clear error (exit 2), not a panic.
#[test]
fn explore_reports_a_taken_port() {
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a free port");
    let port = taken.local_addr().expect("bound").port().to_string();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wfstate"))
        .args(["explore", "small", "fixed", "--port", &port])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot listen"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `wfstate check` with an unknown configuration or variant is a usage error (exit 2).
#[test]
fn check_refuses_unknown_names() {
    for args in [["--config", "huge"], ["--variant", "legacy-nothing"]] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_wfstate"))
            .arg("check")
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}

/// docs/defects.md has a row per legacy variant of `default`, with the property its
/// counterexample breaks and its length there (no drift).
#[test]
fn defects_doc_rows_match_the_pinned_counterexamples() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/defects.md"))
        .expect("docs/defects.md");
    for (variant, _, property, steps) in PINNED_DEFAULT {
        let cell = format!("| {variant} |");
        let row = doc
            .lines()
            .find(|line| line.contains(&cell))
            .unwrap_or_else(|| panic!("docs/defects.md has no row for {variant}"));
        let defect = variant.defect().expect("a legacy variant names its defect");
        assert!(row.starts_with(&format!("| {defect} |")), "{row}");
        assert!(row.contains(&format!("| {property} | {steps} / ")), "{row}");
    }
    let rows = doc
        .lines()
        .filter(|line| line.starts_with("| D") || line.starts_with("| E"))
        .count();
    assert!(rows >= 13, "at least 13 defect rows, found {rows}");
}

/// A state cloned on another thread than the one that made it (stateright hands pending states
/// to an idle thread) is an equal value with an equal hash that shares no part with the
/// original; clones on one thread share their parts.
#[test]
fn a_state_cloned_on_another_thread_is_equal_and_shares_no_part() {
    use std::hash::{BuildHasher, RandomState};
    use wfstate_models::model::state::Shared;

    let model = ProtocolModel::new(Config::default_config(), Variant::Fixed);
    let init = model.init_states().remove(0);
    let mut actions = Vec::new();
    model.actions(&init, &mut actions);
    let successors: Vec<_> = actions
        .into_iter()
        .filter_map(|action| model.next_state(&init, action))
        .collect();
    assert!(!successors.is_empty());
    let hasher = RandomState::new();
    for state in std::iter::once(&init).chain(&successors) {
        let (copy, again) = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let copy = state.clone();
                    let again = copy.clone();
                    assert!(Shared::same(&copy.store, &again.store));
                    assert!(Shared::same(&copy.sweepers, &again.sweepers));
                    (copy, again)
                })
                .join()
                .expect("the clone does not panic")
        });
        assert_eq!(&copy, state);
        assert_eq!(hasher.hash_one(&copy), hasher.hash_one(state));
        assert!(!Shared::same(&copy.store, &state.store));
        assert!(!Shared::same(&copy.sweepers, &state.sweepers));
        assert!(!Shared::same(&copy.sweepers[0], &state.sweepers[0]));
        assert!(!Shared::same(&copy.budgets, &state.budgets));
        drop(again);
    }
}

/// Every state reachable in `model` (the reductions of its configuration on: the graph the
/// checker explores), by a breadth-first search of its own.
#[allow(clippy::mutable_key_type)] // A part's kept hash memoises its contents' hash: Eq and Hash never change.
fn reachable(model: &ProtocolModel) -> std::collections::HashSet<wfstate_models::model::State> {
    let mut seen: std::collections::HashSet<_> = model.init_states().into_iter().collect();
    let mut frontier: Vec<_> = seen.iter().cloned().collect();
    let mut actions = Vec::new();
    while let Some(state) = frontier.pop() {
        model.actions(&state, &mut actions);
        for action in actions.drain(..) {
            if let Some(next) = model.next_state(&state, action) {
                if !seen.contains(&next) {
                    seen.insert(next.clone());
                    frontier.push(next);
                }
            }
        }
    }
    seen
}

/// The successors of `state` in `model`, as a set.
#[allow(clippy::mutable_key_type)] // A part's kept hash memoises its contents' hash: Eq and Hash never change.
fn successors(
    model: &ProtocolModel,
    state: &wfstate_models::model::State,
) -> std::collections::HashSet<wfstate_models::model::State> {
    let mut actions = Vec::new();
    model.actions(state, &mut actions);
    actions
        .into_iter()
        .filter_map(|action| model.next_state(state, action))
        .collect()
}

/// The configurations with two sweepers the symmetry tests run: `default`, `admin`, and
/// `small` with a second sweeper.
fn two_sweepers() -> Vec<Config> {
    vec![
        Config::default_config(),
        Config::admin(),
        Config {
            name: "small, two sweepers".into(),
            sweepers: 2,
            ..Config::small()
        },
    ]
}

/// Swapping the two sweepers (`wfstate_models::model::symmetry::swapped`) is an automorphism of
/// the graph the checker explores, which is what makes the symmetry reduction sound: over every
/// reachable state of the fixed protocol of each two-sweeper configuration, the swap of a
/// reachable state is reachable, the swap of a state's successors are the successors of its
/// swap, every property has the same value in both, and swapping twice gives the state back.
/// The swap changes something in most states (it is no identity in disguise).
#[test]
#[allow(clippy::mutable_key_type)] // A part's kept hash memoises its contents' hash: Eq and Hash never change.
fn swapping_the_sweepers_is_an_automorphism_of_the_fixed_protocol() {
    use wfstate_models::model::symmetry::{applies, swapped};

    for config in two_sweepers() {
        let name = config.name.clone();
        // The whole graph: with the reduction on, `next_state` returns representatives.
        let full = Config {
            symmetric_sweepers: false,
            ..config
        };
        let model = ProtocolModel::new(full, Variant::Fixed);
        let properties = model.properties();
        let states = reachable(&model);
        let mut moved = 0;
        for state in &states {
            assert!(applies(state), "{name}: the fixed protocol's sweeps only");
            let swap = swapped(state);
            assert_eq!(&swapped(&swap), state, "{name}: an involution");
            moved += usize::from(&swap != state);
            assert!(states.contains(&swap), "{name}: a swap is reachable");
            let swapped_successors: std::collections::HashSet<_> =
                successors(&model, state).iter().map(swapped).collect();
            assert_eq!(
                successors(&model, &swap),
                swapped_successors,
                "{name}: the swap commutes with every step"
            );
            for property in &properties {
                assert_eq!(
                    (property.condition)(&model, state),
                    (property.condition)(&model, &swap),
                    "{name}: {} is symmetric",
                    property.name
                );
            }
        }
        assert!(
            moved > states.len() / 2,
            "{name}: {moved} of {}",
            states.len()
        );
    }
}

/// The symmetry reduction (`Config::symmetric_sweepers`) keeps exactly one state of each pair
/// a swap of the sweepers makes: the model with it reaches only representatives, as many as
/// there are such pairs among the reachable states of the model without it (a state its own swap
/// counting once), the checker's count with it is that number, and its count without it is the
/// number of reachable states; every verdict (always and sometimes) is the same with and
/// without it. The legacy variants run breadth-first to their first counterexample without the
/// reduction: with the flag on, every legacy variant of `default` explores exactly the states
/// and breaks the property it does with the flag off.
#[test]
#[allow(clippy::mutable_key_type)] // A part's kept hash memoises its contents' hash: Eq and Hash never change.
fn symmetry_reduction_keeps_one_state_of_each_pair_and_every_verdict() {
    use wfstate_models::model::symmetry::{representative, swapped};

    let off = |config| Config {
        symmetric_sweepers: false,
        ..config
    };
    for config in two_sweepers() {
        let name = config.name.clone();
        assert!(config.symmetric_sweepers, "{name}: on by default");
        let states = reachable(&ProtocolModel::new(off(config.clone()), Variant::Fixed));
        let own_swap = states.iter().filter(|s| &swapped(s) == *s).count();
        let pairs = (states.len() + own_swap) / 2;
        // What the reduced model hands the checker: representatives only, one per pair.
        let kept = reachable(&ProtocolModel::new(config.clone(), Variant::Fixed));
        assert!(
            kept.iter().all(|s| &representative(s) == s),
            "{name}: every successor is its own representative"
        );
        assert_eq!(kept.len(), pairs, "{name}: the model's own graph");
        let (with, without) = with_and_without(config, Variant::Fixed, off);
        assert_eq!(
            without.states,
            states.len(),
            "{name}: every reachable state"
        );
        assert_eq!(with.states, pairs, "{name}: one state of each pair");
        assert!(
            with.states < without.states,
            "{name}: the reduction reduces"
        );
        assert_eq!(verdicts(&with), verdicts(&without), "{name}");
        assert!(!verdicts(&with).is_empty(), "{name}: verdicts");
    }
    for variant in Config::default_config().variants() {
        if variant == Variant::Fixed {
            continue;
        }
        let on = Config::default_config().for_variant(variant);
        let (with, without) = with_and_without(on, variant, off);
        assert_eq!(with.states, without.states, "default/{variant}: off for it");
        assert_eq!(broken(&with), broken(&without), "default/{variant}");
        assert!(broken(&with).is_some(), "default/{variant}");
    }
}
