//! The invariant checks themselves (`check`, `check_pair`): each rule flags exactly what it
//! should, field by field. The transition function never produces a violating pair, so these
//! pairs are built by hand with `Workflow::from_parts`. Written for the mutants that survived
//! the first cargo-mutants run (issue 6, `docs/testing.md`).

use wfstate::{check_pair, Invariant, Task, TaskStatus, Violation, Workflow, WorkflowStatus};

fn task(status: TaskStatus) -> Task {
    Task {
        id: "t".into(),
        reference_name: "fetch".into(),
        status,
        retry_count: 0,
        iteration: 0,
        optional: false,
    }
}

fn workflow(version: u64, task: Task) -> Workflow {
    Workflow::from_parts("wf", WorkflowStatus::Running, version, vec![task]).expect("one task")
}

/// The invariants `check_pair` reports for `before` → `after` (one version apart).
fn pair(before: Task, after: Task) -> Vec<Invariant> {
    let changed = before != after;
    let old = workflow(1, before);
    let new = workflow(if changed { 2 } else { 1 }, after);
    check_pair(&old, &new, false)
        .iter()
        .map(Violation::invariant)
        .collect()
}

#[test]
fn an_attempt_that_changes_identity_is_a_rewrite() {
    let old = task(TaskStatus::InProgress);
    let mut edits: Vec<(&str, Task)> = Vec::new();
    let mut t = old.clone();
    t.reference_name = "charge".into();
    edits.push(("reference name", t));
    let mut t = old.clone();
    t.retry_count = 1;
    edits.push(("retry count", t));
    let mut t = old.clone();
    t.iteration = 1;
    edits.push(("iteration", t));
    let mut t = old.clone();
    t.optional = true;
    edits.push(("optional", t));
    for (what, new) in edits {
        let old_state = workflow(1, old.clone());
        let new_state = workflow(2, new);
        let violations = check_pair(&old_state, &new_state, false);
        assert!(
            matches!(violations.as_slice(), [Violation::TaskRewritten { task, .. }] if task.as_str() == "t"),
            "{what}: {violations:?}"
        );
    }
    // A status change alone on a live attempt keeps its identity: no violation.
    assert_eq!(
        pair(old.clone(), task(TaskStatus::Completed)),
        Vec::<Invariant>::new()
    );
}

#[test]
fn only_an_optional_failure_may_be_tolerated() {
    let optional = |status| Task {
        optional: true,
        ..task(status)
    };
    // The one terminal-to-terminal edge, from FAILED and from TIMED_OUT.
    for from in [TaskStatus::Failed, TaskStatus::TimedOut] {
        assert_eq!(
            pair(optional(from), optional(TaskStatus::CompletedWithErrors)),
            Vec::<Invariant>::new(),
            "{from}"
        );
    }
    // Not for a required task.
    assert_eq!(
        pair(
            task(TaskStatus::Failed),
            task(TaskStatus::CompletedWithErrors)
        ),
        vec![Invariant::I3]
    );
    // Not from another terminal status.
    assert_eq!(
        pair(
            optional(TaskStatus::Canceled),
            optional(TaskStatus::CompletedWithErrors)
        ),
        vec![Invariant::I3]
    );
    // Not to another status.
    assert_eq!(
        pair(
            optional(TaskStatus::Failed),
            optional(TaskStatus::Completed)
        ),
        vec![Invariant::I3]
    );
}

#[test]
fn invariants_display_as_their_ids() {
    let all = [
        (Invariant::I1, "I1"),
        (Invariant::I2, "I2"),
        (Invariant::I3, "I3"),
        (Invariant::I4, "I4"),
        (Invariant::I5, "I5"),
        (Invariant::I6a, "I6a"),
        (Invariant::I6b, "I6b"),
        (Invariant::I7, "I7"),
    ];
    for (invariant, id) in all {
        assert_eq!(invariant.to_string(), id);
    }
}
