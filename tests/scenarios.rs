//! Scenario tests named after the defects wfstate exists to prevent (SPEC section 1), plus the
//! vocabulary (section 2), loading, and the reference decider. Each test names the rule or
//! invariant it checks.

use wfstate::{
    check, decide, transition, AdminInput, Decision, Definition, Effect, EngineInput, Input,
    Invariant, LoadError, NewTask, Outcome, Phase, Rejection, Report, ReportStatus, Task,
    TaskDefinition, TaskId, TaskStatus, Workflow, WorkflowStatus,
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

fn report(id: &str, status: ReportStatus) -> Input {
    Report::new(id, status).into()
}

/// D1 / I1: terminate with live tasks cancels every one of them in the same step; archiving is a
/// post-commit effect after the persist, so its failure cannot split the transition.
#[test]
fn d1_terminate_cancels_live_tasks_in_one_step() {
    let tasks = vec![
        task("done", TaskStatus::Completed),
        task("running", TaskStatus::InProgress),
        task("queued", TaskStatus::Scheduled),
    ];
    let mut workflow = Workflow::from_parts("wf", WorkflowStatus::Running, 7, tasks).unwrap();
    let step = transition(&workflow, &AdminInput::Terminate.into()).unwrap();

    assert_eq!(step.read_version(), 7);
    assert_eq!(step.changes().tasks.len(), 2, "only the live tasks change");
    workflow.apply(&step).unwrap();
    assert_eq!(workflow.status(), WorkflowStatus::Terminated);
    assert_eq!(workflow.version(), 8, "one step, one version (I4)");
    let statuses: Vec<TaskStatus> = workflow.tasks().iter().map(|t| t.status).collect();
    assert_eq!(
        statuses,
        [
            TaskStatus::Completed,
            TaskStatus::Canceled,
            TaskStatus::Canceled
        ]
    );
    assert!(
        check(&workflow).is_empty(),
        "the persisted state is already consistent"
    );

    // The persist comes first; archive is post-commit, after every queue effect.
    let effects = step.effects();
    assert_eq!(effects[0].phase(), Phase::Persist);
    let archive = effects.iter().position(|e| *e == Effect::Archive).unwrap();
    assert_eq!(effects[archive].phase(), Phase::PostCommit);
    assert!(effects[..archive]
        .iter()
        .all(|e| e.phase() <= Phase::PostCommit));
    assert!(effects.contains(&Effect::StopRunningTask {
        task: "running".into()
    }));
    assert!(effects.contains(&Effect::RemoveFromTaskQueue {
        task: "queued".into()
    }));

    // "The archive failed, try again": the state needs no repair, and a second terminate is a
    // recognisable duplicate, not an error that leaves anything half done.
    let again = workflow.advance(&AdminInput::Terminate.into()).unwrap();
    assert!(again.is_duplicate());
    assert!(again.effects().is_empty());
    assert_eq!(workflow.version(), 8);
}

/// D2 / I3, I4: inside a DO_WHILE loop, a late IN_PROGRESS after COMPLETED is rejected as late with
/// both statuses, and COMPLETED twice is a duplicate; neither changes the version.
#[test]
fn d2_late_in_progress_after_completed_is_rejected() {
    let mut workflow = Workflow::new("do-while");
    let mut upload = NewTask::new("t-135", "Upload_item_start__135");
    upload.iteration = 135;
    workflow
        .advance(&EngineInput::Schedule(upload).into())
        .unwrap();
    workflow
        .advance(&report("t-135", ReportStatus::InProgress))
        .unwrap();
    workflow
        .advance(&report("t-135", ReportStatus::Completed))
        .unwrap();
    let version = workflow.version();
    let snapshot = workflow.clone();

    let late = workflow.advance(&report("t-135", ReportStatus::InProgress));
    assert_eq!(
        late.unwrap_err(),
        Rejection::TaskAlreadyTerminal {
            task: "t-135".into(),
            current: TaskStatus::Completed,
            requested: TaskStatus::InProgress,
        }
    );
    let repeat = workflow
        .advance(&report("t-135", ReportStatus::Completed))
        .unwrap();
    assert_eq!(repeat.outcome(), Outcome::Duplicate);
    assert_eq!(workflow, snapshot, "rejection and duplicate change nothing");
    assert_eq!(workflow.version(), version);
    assert_eq!(workflow.tasks()[0].iteration, 135);
}

/// D3 / I4: a decision computed on a stale read cannot be persisted: the step records the version
/// it read and applying it to a newer state is refused, changing nothing.
#[test]
fn d3_decide_on_stale_version_cannot_be_persisted() {
    let definition = Definition::new([TaskDefinition::new("only")]);
    let mut stored = Workflow::new("wf");
    let Decision::Act(schedule) = decide(&stored, &definition) else {
        panic!("expected a schedule")
    };
    stored.advance(&schedule.into()).unwrap();
    let id = stored.tasks()[0].id.clone();
    stored
        .advance(&Report::new(id.clone(), ReportStatus::Completed).into())
        .unwrap();

    // The sweeper reads version 2 and decides to complete...
    let sweeper_read = stored.clone();
    let Decision::Act(complete) = decide(&sweeper_read, &definition) else {
        panic!("expected complete")
    };
    assert_eq!(complete, EngineInput::Complete);
    let step = transition(&sweeper_read, &complete.into()).unwrap();
    assert_eq!(step.read_version(), 2);

    // ...but an operator terminated it in between. The stale completion cannot be written.
    // (Terminate on a workflow whose only task is done: nothing to cancel.)
    stored.advance(&AdminInput::Terminate.into()).unwrap();
    let before = stored.clone();
    assert_eq!(
        stored.apply(&step).unwrap_err(),
        Rejection::StaleVersion {
            read: 2,
            current: 3
        }
    );
    assert_eq!(stored, before);
    assert_eq!(stored.status(), WorkflowStatus::Terminated);

    // A stale RUNNING snapshot cannot be written back over a COMPLETED workflow either: the only
    // way to write is a step, and every step carries its read version.
    let mut completed = sweeper_read.clone();
    completed.advance(&EngineInput::Complete.into()).unwrap();
    let stale_progress = transition(&sweeper_read, &AdminInput::Pause.into()).unwrap();
    assert!(matches!(
        completed.apply(&stale_progress),
        Err(Rejection::StaleVersion { .. })
    ));
    assert_eq!(completed.status(), WorkflowStatus::Completed);
}

/// I4: a step applied to a different workflow with the same version is refused.
#[test]
fn foreign_step_is_refused() {
    let a = Workflow::from_parts(
        "a",
        WorkflowStatus::Running,
        1,
        vec![task("x", TaskStatus::Scheduled)],
    )
    .unwrap();
    let mut b = Workflow::from_parts(
        "b",
        WorkflowStatus::Running,
        1,
        vec![task("x", TaskStatus::Completed)],
    )
    .unwrap();
    let step = transition(&a, &report("x", ReportStatus::Completed)).unwrap();
    let before = b.clone();
    assert_eq!(b.apply(&step), Err(Rejection::ForeignStep));
    assert_eq!(b, before);
}

/// SPEC section 2: wire spelling, predicates, and typed errors for unknown strings.
#[test]
fn statuses_use_conductor_spelling_and_predicates() {
    let workflow: Vec<(WorkflowStatus, &str, bool, bool)> = vec![
        (WorkflowStatus::Running, "RUNNING", false, false),
        (WorkflowStatus::Paused, "PAUSED", false, true),
        (WorkflowStatus::Completed, "COMPLETED", true, true),
        (WorkflowStatus::Failed, "FAILED", true, false),
        (WorkflowStatus::TimedOut, "TIMED_OUT", true, false),
        (WorkflowStatus::Terminated, "TERMINATED", true, false),
    ];
    for (status, text, terminal, successful) in workflow {
        assert_eq!(status.to_string(), text);
        assert_eq!(text.parse::<WorkflowStatus>(), Ok(status));
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            format!("\"{text}\"")
        );
        assert_eq!(
            serde_json::from_str::<WorkflowStatus>(&format!("\"{text}\"")).unwrap(),
            status
        );
        assert_eq!(
            (status.is_terminal(), status.is_successful()),
            (terminal, successful),
            "{text}"
        );
    }
    let task: Vec<(TaskStatus, &str, bool, bool, bool)> = vec![
        (TaskStatus::Scheduled, "SCHEDULED", false, true, true),
        (TaskStatus::InProgress, "IN_PROGRESS", false, true, true),
        (TaskStatus::Completed, "COMPLETED", true, true, true),
        (
            TaskStatus::CompletedWithErrors,
            "COMPLETED_WITH_ERRORS",
            true,
            true,
            true,
        ),
        (TaskStatus::Failed, "FAILED", true, false, true),
        (
            TaskStatus::FailedWithTerminalError,
            "FAILED_WITH_TERMINAL_ERROR",
            true,
            false,
            false,
        ),
        (TaskStatus::Canceled, "CANCELED", true, false, false),
        (TaskStatus::TimedOut, "TIMED_OUT", true, false, true),
        (TaskStatus::Skipped, "SKIPPED", true, true, false),
    ];
    for (status, text, terminal, successful, retriable) in task {
        assert_eq!(status.to_string(), text);
        assert_eq!(text.parse::<TaskStatus>(), Ok(status));
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            format!("\"{text}\"")
        );
        assert_eq!(
            (
                status.is_terminal(),
                status.is_successful(),
                status.is_retriable()
            ),
            (terminal, successful, retriable),
            "{text}"
        );
        let settled = matches!(text, "COMPLETED" | "COMPLETED_WITH_ERRORS" | "SKIPPED");
        assert_eq!(status.is_settled(), settled, "{text}: settled");
    }
    let unknown = "CANCELLED".parse::<TaskStatus>().unwrap_err();
    assert_eq!(unknown.value, "CANCELLED");
    assert_eq!(unknown.to_string(), "unknown task status \"CANCELLED\"");
    assert!(
        "running".parse::<WorkflowStatus>().is_err(),
        "spelling is exact"
    );
    assert!(serde_json::from_str::<TaskStatus>("\"DONE\"").is_err());
    assert!(
        "TIMED_OUT".parse::<ReportStatus>().is_err(),
        "engine-only statuses are unreportable"
    );
}

/// Loading: duplicate ids are refused; inconsistent states load so `check` can report them.
#[test]
fn loading_keeps_broken_states_for_check() {
    let duplicate = Workflow::from_parts(
        "wf",
        WorkflowStatus::Running,
        0,
        vec![
            task("x", TaskStatus::Scheduled),
            task("x", TaskStatus::Completed),
        ],
    );
    assert_eq!(
        duplicate.unwrap_err(),
        LoadError::DuplicateTaskId { task: "x".into() }
    );

    let broken = Workflow::from_parts(
        "wf",
        WorkflowStatus::Terminated,
        3,
        vec![task("x", TaskStatus::InProgress)],
    )
    .unwrap();
    let violations = check(&broken);
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].invariant(), Invariant::I1);

    let json = serde_json::to_string(&broken).unwrap();
    let back: Workflow = serde_json::from_str(&json).unwrap();
    assert_eq!(back, broken);
    let bad_status = json.replace("IN_PROGRESS", "RUNNING_NOW");
    assert!(serde_json::from_str::<Workflow>(&bad_status).is_err());
    assert!(serde_json::from_str::<Workflow>("[1, 2]").is_err());
}

/// The reference decider drives a linear workflow through retries, tolerance and completion,
/// and fails it when a required task has no retries left.
#[test]
fn reference_decider_drives_linear_workflows() {
    let definition = Definition::new([
        TaskDefinition::new("fetch").retries(1),
        TaskDefinition::new("enrich").optional(),
        TaskDefinition::new("store"),
    ]);
    let mut workflow = Workflow::new("wf");
    let mut reports = vec![
        ReportStatus::Failed,    // fetch, attempt 0: retried
        ReportStatus::Completed, // fetch, attempt 1
        ReportStatus::Failed,    // enrich: optional, tolerated
        ReportStatus::Completed, // store
    ]
    .into_iter();
    let mut decisions = Vec::new();
    loop {
        match decide(&workflow, &definition) {
            Decision::Act(input) => {
                decisions.push(input.clone());
                workflow.advance(&input.into()).unwrap();
            }
            Decision::Wait => {
                let live = workflow.active_tasks().next().unwrap().id.clone();
                let status = reports.next().unwrap();
                workflow.advance(&Report::new(live, status).into()).unwrap();
            }
            Decision::Idle => break,
        }
        assert!(check(&workflow).is_empty());
    }
    assert_eq!(workflow.status(), WorkflowStatus::Completed);
    assert!(decisions.contains(&EngineInput::Reschedule {
        failed: TaskId::attempt(workflow.id(), "fetch", 0),
        task: TaskId::attempt(workflow.id(), "fetch", 1),
    }));
    assert!(decisions.contains(&EngineInput::TolerateFailure {
        task: TaskId::attempt(workflow.id(), "enrich", 0)
    }));
    assert_eq!(
        workflow.latest_attempt("enrich").unwrap().status,
        TaskStatus::CompletedWithErrors
    );

    let mut failing = Workflow::new("wf2");
    let Decision::Act(first) = decide(&failing, &definition) else {
        panic!()
    };
    failing.advance(&first.into()).unwrap();
    let id = failing.tasks()[0].id.clone();
    failing
        .advance(&Report::new(id, ReportStatus::FailedWithTerminalError).into())
        .unwrap();
    assert_eq!(
        decide(&failing, &definition),
        Decision::Act(EngineInput::Fail)
    );
    failing.advance(&EngineInput::Fail.into()).unwrap();
    assert_eq!(decide(&failing, &definition), Decision::Idle);
}

/// Two sweepers that make the same decision propose the same input: the second is a duplicate,
/// not a twin attempt.
#[test]
fn identical_decisions_are_duplicates() {
    let definition = Definition::new([TaskDefinition::new("only")]);
    let mut workflow = Workflow::new("wf");
    let Decision::Act(first) = decide(&workflow, &definition) else {
        panic!()
    };
    let second = first.clone();
    workflow.advance(&first.into()).unwrap();
    assert!(workflow.advance(&second.into()).unwrap().is_duplicate());
    assert_eq!(workflow.tasks().len(), 1);
}

/// Retry is the only way out of a terminal status (I5), and it never modifies old attempts (I3).
#[test]
fn retry_appends_new_attempts_only() {
    let mut workflow = Workflow::new("wf");
    workflow
        .advance(&EngineInput::Schedule(NewTask::new("a", "a")).into())
        .unwrap();
    workflow.advance(&AdminInput::Terminate.into()).unwrap();
    let before = workflow.clone();
    let step = workflow.advance(&AdminInput::Retry.into()).unwrap();
    assert!(step.through_retry());
    assert!(wfstate::check_pair(&before, &workflow, true).is_empty());
    assert_eq!(
        wfstate::check_pair(&before, &workflow, false)[0].invariant(),
        Invariant::I5,
        "the same change without retry would break I5"
    );
    assert_eq!(workflow.tasks()[0], before.tasks()[0]);
    assert_eq!(workflow.tasks()[1].retry_count, 1);
    assert_eq!(
        workflow.latest_attempt("a").unwrap().status,
        TaskStatus::Scheduled
    );
}
