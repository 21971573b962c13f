//! `docs/transitions.md` is generated from the transition function; this test fails when it
//! drifts. Regenerate with `cargo run --example transitions -- doc > docs/transitions.md`.

/// The documented transition tables are exactly what the code does (SPEC section 4).
#[test]
fn transitions_doc_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/transitions.md");
    let documented = std::fs::read_to_string(path).expect("docs/transitions.md");
    let generated = wfstate::transitions_document();
    assert!(
        documented == generated,
        "docs/transitions.md is stale: run `cargo run --example transitions -- doc > docs/transitions.md`"
    );
}

/// The generated task table has exactly the edges of SPEC section 4, with their writer classes.
#[test]
fn generated_task_table_matches_the_spec() {
    use wfstate::{TaskStatus::*, TransitionTable, Writer::*};
    let table = TransitionTable::generate();
    let edges: Vec<_> = table
        .task
        .iter()
        .map(|e| (e.from, e.to, e.writers.clone(), e.progress_only))
        .collect();
    let live = [Scheduled, InProgress];
    let mut expected = Vec::new();
    for from in live {
        if from == Scheduled {
            expected.push((from, InProgress, vec![Report, Engine], false));
        } else {
            expected.push((from, InProgress, vec![Report], true));
        }
        expected.push((from, Completed, vec![Report], false));
        expected.push((from, Failed, vec![Report], false));
        expected.push((from, FailedWithTerminalError, vec![Report], false));
        expected.push((from, Canceled, vec![Report, Engine, Admin], false));
        expected.push((from, TimedOut, vec![Engine], false));
    }
    expected.push((Failed, CompletedWithErrors, vec![Engine], false));
    expected.push((TimedOut, CompletedWithErrors, vec![Engine], false));
    assert_eq!(edges, expected);
}

/// The generated workflow table has exactly the edges of SPEC section 4.
#[test]
fn generated_workflow_table_matches_the_spec() {
    use wfstate::{TransitionTable, WorkflowStatus::*, Writer::*};
    let table = TransitionTable::generate();
    let edges: Vec<_> = table
        .workflow
        .iter()
        .map(|e| (e.from, e.to, e.writers.clone()))
        .collect();
    let expected = vec![
        (Running, Paused, vec![Admin]),
        (Running, Completed, vec![Engine]),
        (Running, Failed, vec![Engine]),
        (Running, TimedOut, vec![Engine]),
        (Running, Terminated, vec![Admin]),
        (Paused, Running, vec![Admin]),
        (Paused, TimedOut, vec![Engine]),
        (Paused, Terminated, vec![Admin]),
        (Failed, Running, vec![Admin]),
        (TimedOut, Running, vec![Admin]),
        (Terminated, Running, vec![Admin]),
    ];
    assert_eq!(edges, expected);
    for edge in &table.workflow {
        assert!(wfstate::workflow_edge(edge.from, edge.to));
    }
}
