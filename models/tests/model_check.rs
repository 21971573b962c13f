//! The model checks that run in `cargo test`: the `small` configuration of every variant with its
//! pinned state count, the saved legacy counterexamples replayed against their variant and
//! against the fixed protocol, and an engine author's own decider checked under the same
//! interleavings. (The `default` configuration runs in `.ci/run` through `wfstate check`.)

use stateright::Model;
use wfstate::{Decision, Definition, EngineInput, Workflow, WorkflowStatus};
use wfstate_models::model::run::{shortest_counterexample, Outcome};
use wfstate_models::model::{check, replay, Config, Options, ProtocolModel, Schedule, Variant};

/// Unique states per variant of `small`: the whole state space for the fixed protocol (DFS,
/// exhaustive), and the states a legacy run explores until its first counterexample (BFS, one
/// thread: deterministic). A change in the model or in the core's transition function moves
/// these: review it, then update them.
const PINNED: [(Variant, usize); 4] = [
    (Variant::Fixed, 608_413),
    (Variant::LegacyArchive, 6_015),
    (Variant::LegacyBlindReport, 3_020),
    (Variant::LegacySweeper, 3_061),
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

/// Each legacy variant of `small` breaks its invariant (D1: I1, D2: I3, D3: I5 or I6) after its
/// pinned number of states.
#[test]
fn small_legacy_variants_reproduce_d1_d2_d3_with_pinned_counts() {
    for (variant, pinned) in &PINNED[1..] {
        let report = check(
            ProtocolModel::new(Config::small(), *variant),
            Options::default(),
        );
        let counterexample = report.counterexample.as_ref().expect("a counterexample");
        assert!(variant
            .expected_failures()
            .contains(&counterexample.property));
        assert!(report.as_expected());
        assert_eq!(report.states, *pinned, "small/{variant} state count moved");
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

/// The saved counterexamples (regression fixtures for D1, D2, D3): replayed against their legacy
/// variant they break its invariant at their last step; replayed against the fixed protocol the
/// same schedule keeps every always-property (I1–I6, completion).
#[test]
fn saved_counterexamples_break_legacy_and_not_fixed() {
    let schedules = schedules();
    assert_eq!(schedules.len(), 3, "one per legacy variant");
    for (path, schedule) in schedules {
        let config = Config::named(&schedule.config).expect("known config");
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
/// `cargo run --release -p wfstate-models -- check --config small --save-counterexamples models/tests/counterexamples`.
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
    let model =
        ProtocolModel::new(Config::small(), Variant::Fixed).with_decider(completes_too_early);
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
