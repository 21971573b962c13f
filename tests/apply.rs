//! `Workflow::apply`, the in-memory compare-and-swap (I4): a step applies only to the exact state
//! it was computed from. Identity and version are the first fence; these tests reach the second,
//! the step's recorded "from" side, with two loaded states that share id and version but not
//! content (two copies loaded from different sources, say). Also the step's own accessors.
//! Written for the mutants that survived the first cargo-mutants run (issue 6,
//! `docs/testing.md`).

use wfstate::{
    transition, AdminInput, EngineInput, Input, NewTask, Outcome, Rejection, Report, ReportStatus,
    Task, TaskChange, TaskChanges, TaskStatus, Workflow, WorkflowStatus,
};

fn task(id: &str, status: TaskStatus) -> Task {
    Task {
        id: id.into(),
        reference_name: id.into(),
        status,
        retry_count: 0,
        iteration: 0,
        optional: false,
    }
}

/// A workflow `wf` at version 5.
fn load(status: WorkflowStatus, tasks: Vec<Task>) -> Workflow {
    Workflow::from_parts("wf", status, 5, tasks).expect("distinct ids")
}

/// The step `input` makes on `from`, applied to `to`: must be refused as foreign, changing nothing.
fn refused(from: &Workflow, mut to: Workflow, input: Input) {
    let step = transition(from, &input).expect("legal on its own state");
    assert!(step.is_applied());
    let before = to.clone();
    assert_eq!(to.apply(&step), Err(Rejection::ForeignStep), "{input:?}");
    assert_eq!(to, before, "a refused step changed nothing");
}

fn complete(id: &str) -> Input {
    Report::new(id, ReportStatus::Completed).into()
}

#[test]
fn a_task_change_needs_the_same_attempt_in_the_same_status() {
    let running = |status| load(WorkflowStatus::Running, vec![task("x", status)]);
    // Same position, same id, other status.
    refused(
        &running(TaskStatus::InProgress),
        running(TaskStatus::Scheduled),
        complete("x"),
    );
    // Same position, same status, other id.
    refused(
        &running(TaskStatus::InProgress),
        load(
            WorkflowStatus::Running,
            vec![task("y", TaskStatus::InProgress)],
        ),
        complete("x"),
    );
    // A position the other state does not have.
    let two = load(
        WorkflowStatus::Running,
        vec![
            task("x", TaskStatus::Completed),
            task("y", TaskStatus::InProgress),
        ],
    );
    refused(&two, running(TaskStatus::Completed), complete("y"));
    // The state it was computed on takes it.
    let mut own = running(TaskStatus::InProgress);
    let step = transition(&own, &complete("x")).unwrap();
    own.apply(&step).expect("its own state");
    assert_eq!(own.version(), 6);
}

#[test]
fn a_workflow_change_needs_the_same_status_and_every_live_attempt() {
    let one = vec![task("x", TaskStatus::InProgress)];
    // Terminate computed on a PAUSED state, applied to a RUNNING one.
    refused(
        &load(WorkflowStatus::Paused, one.clone()),
        load(WorkflowStatus::Running, one.clone()),
        AdminInput::Terminate.into(),
    );
    // Terminate cancels one live attempt; the other state has two (I1 would break).
    refused(
        &load(WorkflowStatus::Running, one.clone()),
        load(
            WorkflowStatus::Running,
            vec![
                task("x", TaskStatus::InProgress),
                task("y", TaskStatus::Scheduled),
            ],
        ),
        AdminInput::Terminate.into(),
    );
}

#[test]
fn an_added_attempt_must_be_new() {
    let schedule: Input = EngineInput::Schedule(NewTask::new("x", "x")).into();
    refused(
        &load(WorkflowStatus::Running, vec![]),
        load(
            WorkflowStatus::Running,
            vec![task("x", TaskStatus::Completed)],
        ),
        schedule,
    );
}

#[test]
fn step_accessors_tell_the_outcome() {
    let workflow = load(
        WorkflowStatus::Running,
        vec![task("x", TaskStatus::InProgress)],
    );
    let applied = transition(&workflow, &complete("x")).unwrap();
    assert_eq!(applied.outcome(), Outcome::Applied);
    assert!(applied.is_applied() && !applied.is_duplicate());
    let progress = transition(
        &workflow,
        &Report::new("x", ReportStatus::InProgress).into(),
    )
    .unwrap();
    assert_eq!(progress.outcome(), Outcome::Progress);
    assert!(!progress.is_applied() && !progress.is_duplicate());
    let mut done = workflow.clone();
    done.apply(&applied).unwrap();
    let duplicate = transition(&done, &complete("x")).unwrap();
    assert!(duplicate.is_duplicate() && !duplicate.is_applied());
}

#[test]
fn task_changes_behave_as_a_list() {
    let workflow = load(
        WorkflowStatus::Running,
        vec![
            task("a", TaskStatus::Scheduled),
            task("b", TaskStatus::InProgress),
            task("c", TaskStatus::Scheduled),
        ],
    );
    let terminate = transition(&workflow, &AdminInput::Terminate.into()).unwrap();
    let changes = &terminate.changes().tasks;
    let expected: Vec<TaskChange> = changes.iter().cloned().collect();
    assert_eq!(
        expected.iter().map(|c| c.task.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(changes.as_slice(), expected.as_slice());
    let collected: TaskChanges = expected.iter().cloned().collect();
    assert_eq!(&collected, changes);
    assert_eq!(format!("{changes:?}"), format!("{expected:?}"));
    let mut pushed = TaskChanges::default();
    pushed.push(expected[1].clone());
    assert_eq!(pushed.as_slice(), &expected[1..2]);
}

#[test]
fn a_step_of_another_workflow_with_the_same_content_is_refused() {
    // Same version, same attempts, other id: only the identity fingerprint tells them apart.
    // The ids are chosen so that weaker mixings (`|` or `&` instead of FNV's `^`) collide.
    let tasks = vec![task("x", TaskStatus::InProgress)];
    let from = Workflow::from_parts("a", WorkflowStatus::Running, 5, tasks.clone()).unwrap();
    for other in ["c", "d", "b"] {
        let to = Workflow::from_parts(other, WorkflowStatus::Running, 5, tasks.clone()).unwrap();
        refused(&from, to, complete("x"));
    }
}

#[test]
fn workflows_compare_and_hash_by_every_stored_field() {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    let hash = |workflow: &Workflow| {
        let mut hasher = DefaultHasher::new();
        workflow.hash(&mut hasher);
        hasher.finish()
    };
    let base = load(
        WorkflowStatus::Running,
        vec![task("x", TaskStatus::InProgress)],
    );
    let others = [
        Workflow::from_parts(
            "other",
            WorkflowStatus::Running,
            5,
            vec![task("x", TaskStatus::InProgress)],
        )
        .unwrap(),
        load(
            WorkflowStatus::Paused,
            vec![task("x", TaskStatus::InProgress)],
        ),
        Workflow::from_parts(
            "wf",
            WorkflowStatus::Running,
            6,
            vec![task("x", TaskStatus::InProgress)],
        )
        .unwrap(),
        load(
            WorkflowStatus::Running,
            vec![task("x", TaskStatus::Completed)],
        ),
    ];
    for other in &others {
        assert_ne!(&base, other);
        assert_ne!(hash(&base), hash(other), "{other:?}");
    }
    let copy = load(
        WorkflowStatus::Running,
        vec![task("x", TaskStatus::InProgress)],
    );
    assert_eq!(base, copy);
    assert_eq!(hash(&base), hash(&copy));
}

#[test]
fn only_the_newest_attempt_of_a_reference_is_latest() {
    let mut retried = task("x-1", TaskStatus::Scheduled);
    retried.reference_name = "x".into();
    retried.retry_count = 1;
    let mut first = task("x-0", TaskStatus::Failed);
    first.reference_name = "x".into();
    let workflow = load(
        WorkflowStatus::Running,
        vec![
            first.clone(),
            retried.clone(),
            task("y", TaskStatus::Completed),
        ],
    );
    assert!(!workflow.is_latest(&first));
    assert!(workflow.is_latest(&retried));
    assert!(workflow.is_latest(&task("y", TaskStatus::Completed)));
    assert_eq!(workflow.latest_attempt("x"), Some(&retried));
}
