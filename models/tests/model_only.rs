//! The model checks alone, for the model-only mutation score (docs/testing.md): cargo-mutants
//! mutates the runtime's operation machines and store state and runs only this file, so a mutant
//! counts as caught only if the model check of the runtime's own code catches it. Each
//! configuration's verdicts must be the expected ones and its state count the pinned one.

use wfstate_models::model::{check, Config, Options, ProtocolModel, Variant};

/// Every configuration `wfstate check` runs by default, with every variant it runs there, and
/// the pinned state count of each fixed run (DFS, exhaustive) and each counterexample run (BFS,
/// one thread, until the first counterexample).
const PINNED: [(&str, Variant, usize); 13] = [
    ("small", Variant::Fixed, 143_507),
    ("small", Variant::LegacyArchive, 2_848),
    ("small", Variant::LegacyBlindReport, 3_084),
    ("small", Variant::LegacySweeper, 1_574),
    ("small", Variant::LegacyNonReentrant, 2_593),
    ("small", Variant::LegacyPoll, 2_687),
    ("small", Variant::LegacyTimeoutOverwrite, 7_521),
    ("small", Variant::LegacyUnlockedStart, 3_096),
    ("small", Variant::LegacyLostPush, 2_688),
    ("faults", Variant::Fixed, 98_620),
    ("admin", Variant::Fixed, 300_153),
    ("retry", Variant::Fixed, 382),
    ("retry", Variant::CallByCall, 1_795),
];

/// The model check of the runtime's machines: I1-I7, leases released, failures recovered
/// (fixed), each legacy defect and the call-by-call hazard reproduced, with pinned counts.
#[test]
fn model_check_of_the_runtime_machines_gives_the_expected_verdicts() {
    for (name, variant, pinned) in PINNED {
        let config = Config::named(name).expect("known config");
        let report = check(ProtocolModel::new(config, variant), Options::default());
        assert!(report.as_expected(), "{name}/{variant}: a verdict differs");
        assert_eq!(report.states, pinned, "{name}/{variant}: state count moved");
    }
}
