//! The invariant checks themselves (`check`, `check_pair`): each rule flags exactly what it
//! should, field by field. The transition function never produces a violating pair, so these
//! pairs are built by hand with `Workflow::from_parts`. Written for the mutants that survived
//! the first cargo-mutants run (issue 6, `docs/testing.md`).

use wfstate::{
    check, check_pair, Invariant, Task, TaskStatus, Violation, Workflow, WorkflowStatus,
};

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
        (Invariant::I8, "I8"),
    ];
    for (invariant, id) in all {
        assert_eq!(invariant.to_string(), id);
    }
}

/// An attempt of `reference` with this id, retry count and iteration, COMPLETED.
fn attempt(id: &str, reference: &str, retry_count: u32, iteration: u32) -> Task {
    Task {
        id: id.into(),
        reference_name: reference.into(),
        status: TaskStatus::Completed,
        retry_count,
        iteration,
        optional: false,
    }
}

/// The I8 violations `check` reports, as (later attempt, first attempt) ids.
fn duplicates(tasks: Vec<Task>) -> Vec<(String, String)> {
    let workflow =
        Workflow::from_parts("wf", WorkflowStatus::Running, 1, tasks).expect("unique ids");
    check(&workflow)
        .into_iter()
        .map(|violation| match violation {
            Violation::DuplicateAttempt { task, first, .. } => {
                (task.as_str().to_owned(), first.as_str().to_owned())
            }
            other => panic!("only I8 expected: {other}"),
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(task, first)| (task.to_string(), first.to_string()))
        .collect()
}

#[test]
fn i8_flags_each_later_attempt_with_the_key_of_an_earlier_one() {
    // Reference name, retry count and iteration together are the key: a retry (retry count 1)
    // and a loop's next iteration are new attempts, not duplicates.
    let distinct = vec![
        attempt("a0", "fetch", 0, 0),
        attempt("a1", "fetch", 1, 0),
        attempt("a0i1", "fetch", 0, 1),
        attempt("b0", "charge", 0, 0),
    ];
    assert_eq!(duplicates(distinct), Vec::new());
    // Conductor's ids are UUIDs: a task scheduled twice is two ids with one key.
    let twice = vec![
        attempt("a0", "fetch", 0, 0),
        attempt("b0", "charge", 0, 0),
        attempt("a0-again", "fetch", 0, 0),
        attempt("a0-third", "fetch", 0, 0),
    ];
    assert_eq!(
        duplicates(twice),
        pairs(&[("a0-again", "a0"), ("a0-third", "a0")])
    );
    let violation = Violation::DuplicateAttempt {
        task: "a0-again".into(),
        reference_name: "fetch".into(),
        status: TaskStatus::Completed,
        first: "a0".into(),
        retry_count: 0,
        iteration: 0,
    };
    assert_eq!(violation.invariant(), Invariant::I8);
    assert_eq!(
        violation.to_string(),
        "I8: task a0-again (fetch) COMPLETED duplicates a0 (retry 0, iteration 0)"
    );
}

#[test]
fn i8_reports_the_same_for_many_tasks_as_for_few() {
    // Beyond 32 tasks `check` sorts instead of comparing pairs: same violations, same order.
    let mut tasks: Vec<Task> = (0..40)
        .map(|n| attempt(&format!("t{n}"), &format!("ref{}", n % 37), 0, 0))
        .collect();
    tasks.push(attempt("late", "ref5", 0, 0));
    let expected = pairs(&[("t37", "t0"), ("t38", "t1"), ("t39", "t2"), ("late", "t5")]);
    assert_eq!(duplicates(tasks.clone()), expected);
    // The first 30 tasks (pairwise path) with the same duplicates appended.
    let mut few: Vec<Task> = tasks[..30].to_vec();
    few.extend([attempt("t37", "ref0", 0, 0), attempt("t38", "ref1", 0, 0)]);
    assert_eq!(duplicates(few), pairs(&[("t37", "t0"), ("t38", "t1")]));
    // Many copies of one key: each later copy names the first.
    let copies: Vec<Task> = (0..50)
        .map(|n| attempt(&format!("c{n}"), "fetch", 0, 0))
        .collect();
    let found = duplicates(copies);
    assert_eq!(found.len(), 49);
    assert!(found.iter().all(|(_, first)| first == "c0"));
    assert_eq!(found.first().map(|(task, _)| task.as_str()), Some("c1"));
}

proptest::proptest! {
    /// I8 on any task list, at any size (both of `check`'s paths): one violation per attempt
    /// whose key an earlier attempt has, in task order, each naming the first attempt with it.
    #[test]
    fn i8_reports_every_later_attempt_of_a_key(
        keys in proptest::collection::vec((0u8..4, 0u32..3, 0u32..2), 0..80)
    ) {
        let tasks: Vec<Task> = keys
            .iter()
            .enumerate()
            .map(|(n, (reference, retry, iteration))| {
                attempt(&format!("t{n}"), &format!("ref{reference}"), *retry, *iteration)
            })
            .collect();
        let mut expected = Vec::new();
        for (n, key) in keys.iter().enumerate() {
            if let Some(first) = keys[..n].iter().position(|k| k == key) {
                expected.push((format!("t{n}"), format!("t{first}")));
            }
        }
        proptest::prop_assert_eq!(duplicates(tasks), expected);
    }
}
