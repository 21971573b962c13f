//! Replays the fuzz targets' committed inputs (issue 6) in a plain `cargo test` on stable:
//! `fuzz/seeds/<target>/` (minimised corpora) and `fuzz/regressions/<target>/` (crash
//! reproducers). Each file is decoded exactly as libfuzzer-sys decodes it
//! (`Arbitrary::arbitrary_take_rest`) and run through the same check function the fuzz target
//! calls; the check functions live in `fuzz/src/` and are included here by path, so they need
//! no libfuzzer. See `docs/testing.md`.

use std::fs;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};

#[path = "../fuzz/src/conductor_json.rs"]
mod conductor_json;
#[path = "../fuzz/src/pick.rs"]
mod pick;
#[path = "../fuzz/src/runtime_ops.rs"]
mod runtime_ops;
#[path = "../fuzz/src/step_sequence.rs"]
mod step_sequence;

/// The committed inputs of `target`: its seeds, then its regressions (dot files skipped).
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for folder in ["seeds", "regressions"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz")
            .join(folder)
            .join(target);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|entry| entry.expect("a readable directory entry").path())
            .filter(|path| {
                path.is_file()
                    && !path
                        .file_name()
                        .is_some_and(|name| name.to_string_lossy().starts_with('.'))
            })
            .collect();
        paths.sort();
        for path in paths {
            let bytes = fs::read(&path).expect("a readable input");
            files.push((path, bytes));
        }
    }
    files
}

/// Decodes like libfuzzer-sys's `fuzz_target!(|case: T| ...)`; an input that does not decode
/// is skipped there, and here.
fn decode<'a, T: Arbitrary<'a>>(bytes: &'a [u8]) -> Option<T> {
    T::arbitrary_take_rest(Unstructured::new(bytes)).ok()
}

#[test]
fn step_sequence_inputs_replay() {
    let files = inputs("step_sequence");
    assert!(
        files.len() >= 20,
        "the seed corpus is missing: {}",
        files.len()
    );
    let mut total = step_sequence::Stats::default();
    for (path, bytes) in &files {
        if let Some(case) = decode::<step_sequence::Case>(bytes) {
            let stats = std::panic::catch_unwind(|| step_sequence::run(&case))
                .unwrap_or_else(|_| panic!("{} fails", path.display()));
            total.add(stats);
        }
    }
    // The seeds are worth replaying only if they reach every kind of outcome.
    println!("step_sequence: {} inputs, {total:?}", files.len());
    assert!(
        total.applied > 0 && total.duplicates > 0 && total.rejected > 0,
        "{total:?}"
    );
    assert!(
        total.stale > 0 && total.foreign > 0 && total.terminal > 0,
        "{total:?}"
    );
}

#[test]
fn runtime_ops_inputs_replay() {
    let files = inputs("runtime_ops");
    assert!(
        files.len() >= 20,
        "the seed corpus is missing: {}",
        files.len()
    );
    let mut total = runtime_ops::Stats::default();
    for (path, bytes) in &files {
        if let Some(case) = decode::<runtime_ops::Case>(bytes) {
            let stats = std::panic::catch_unwind(|| runtime_ops::run(&case))
                .unwrap_or_else(|_| panic!("{} fails", path.display()));
            total.add(stats);
        }
    }
    println!("runtime_ops: {} inputs, {total:?}", files.len());
    assert!(
        total.committed > 0 && total.errors > 0 && total.decisions > 0,
        "{total:?}"
    );
    assert!(
        total.handler_failures > 0 && total.effects > 0 && total.terminal > 0,
        "{total:?}"
    );
    // Store failures of every kind the target injects: a call refused, a reply lost (a commit
    // among them: it took effect, the operation returned an error), and a lease left by a failed
    // release that locked a later operation out.
    assert!(
        total.store_failures > 0 && total.lost_replies > 0 && total.lost_commits > 0,
        "{total:?}"
    );
    assert!(total.leftover_leases > 0, "{total:?}");
}

/// Every file under `dir`, recursively, in path order.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .expect("a fixture directory")
        .map(|entry| entry.expect("a readable directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            let bytes = fs::read(&path).expect("a readable fixture");
            files.push((path, bytes));
        }
    }
    files
}

#[test]
fn conductor_json_inputs_replay() {
    let mut files = inputs("conductor_json");
    assert!(
        files.len() >= 10,
        "the seed corpus is missing: {}",
        files.len()
    );
    // The conformance fixtures too (real executions, the seed bugs, input logs): the seeds keep
    // only small inputs, and these reach the audit's violations and long replays.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    files.extend(files_under(&fixtures.join("conductor")));
    files.extend(files_under(&fixtures.join("replay")));
    let mut total = conductor_json::Stats::default();
    for (path, bytes) in &files {
        let stats = std::panic::catch_unwind(|| conductor_json::run(bytes))
            .unwrap_or_else(|_| panic!("{} fails", path.display()));
        total.add(stats);
    }
    println!("conductor_json: {} inputs, {total:?}", files.len());
    assert!(
        total.loaded > 0 && total.violations > 0 && total.execution_errors > 0,
        "{total:?}"
    );
    assert!(
        total.events > 0 && total.applied > 0 && total.log_errors > 0,
        "{total:?}"
    );
    assert!(
        total.definitions > 0 && total.definition_errors > 0,
        "{total:?}"
    );
    // The real definitions among the fixtures (and their seeds) are decided and most of their
    // runs complete; some seed's JOIN blocks.
    assert!(
        total.decided >= 50 && total.completed >= 40 && total.stuck >= 1,
        "{total:?}"
    );
}
