//! Conductor workflow definitions run through the runtime (issue 13): the `Engine` drives a
//! definition with FORK_JOIN, SWITCH and DO_WHILE to completion with the definition decider,
//! and a terminate in the middle of a fork cancels every live branch. The decider's rules one
//! at a time (`src/conductor/decide.rs`) are checked against hand-built workflows.

use wfstate::conductor::{Blocked, Choices, ConductorDecider, DefinitionError, WorkflowDefinition};
use wfstate::runtime::{Decider, Engine, InMemoryStore, Sweep};
use wfstate::{
    check, Decision, EngineInput, NewTask, Report, ReportStatus, Task, TaskId, TaskStatus,
    Workflow, WorkflowId, WorkflowStatus,
};

/// A fetch, a fork of a SWITCH branch and a DO_WHILE branch, their JOIN, then a final task.
const ORDER: &str = r#"{"name": "order", "version": 2, "tasks": [
    {"name": "fetch", "taskReferenceName": "fetch", "type": "SIMPLE"},
    {"name": "fork", "taskReferenceName": "fork", "type": "FORK_JOIN", "forkTasks": [
        [{"name": "route", "taskReferenceName": "route", "type": "SWITCH",
          "evaluatorType": "value-param", "expression": "kind",
          "decisionCases": {
              "air": [{"name": "fly", "taskReferenceName": "fly", "type": "SIMPLE"}],
              "sea": [{"name": "sail", "taskReferenceName": "sail", "type": "SIMPLE"}]},
          "defaultCase": [{"name": "drive", "taskReferenceName": "drive", "type": "SIMPLE"}]},
         {"name": "label", "taskReferenceName": "label", "type": "INLINE"}],
        [{"name": "loop", "taskReferenceName": "pack_loop", "type": "DO_WHILE",
          "loopCondition": "$.pack_loop['iteration'] < 3",
          "loopOver": [{"name": "pack", "taskReferenceName": "pack", "type": "SIMPLE"}]}]]},
    {"name": "join", "taskReferenceName": "join", "type": "JOIN", "joinOn": ["label", "pack_loop"]},
    {"name": "notify", "taskReferenceName": "notify", "type": "SIMPLE"}]}"#;

fn order() -> WorkflowDefinition {
    WorkflowDefinition::from_json(ORDER).expect("the test definition reads")
}

fn engine(choices: Choices) -> Engine<InMemoryStore, ConductorDecider> {
    let decider = ConductorDecider::new(order(), choices).expect("the decider takes it");
    Engine::new(InMemoryStore::new(), decider)
}

/// Sweeps until the decider waits: every decision it has is committed.
fn sweep_all(engine: &Engine<InMemoryStore, ConductorDecider>, now: u64) -> usize {
    let mut applied = 0;
    for _ in 0..100 {
        match engine
            .sweep_once(now)
            .expect("the in-memory store does not fail")
        {
            Sweep::Applied { .. } => applied += 1,
            Sweep::Empty | Sweep::Waiting { .. } | Sweep::Dequeued { .. } => return applied,
            other => panic!("unexpected sweep {other:?}"),
        }
    }
    panic!("the decider kept acting for 100 sweeps")
}

fn workflow(engine: &Engine<InMemoryStore, ConductorDecider>, id: &WorkflowId) -> Workflow {
    let inspection = engine.inspect(id, 0).expect("nothing holds the lock");
    (*inspection.workflow).clone()
}

fn live(workflow: &Workflow) -> Vec<String> {
    workflow
        .active_tasks()
        .map(|task| task.reference_name.to_string())
        .collect()
}

/// Every queue with a task waiting: poll it and report COMPLETED. Returns the names worked.
fn work_all(engine: &Engine<InMemoryStore, ConductorDecider>, id: &WorkflowId) -> Vec<String> {
    let mut worked = live(&workflow(engine, id));
    worked.sort();
    for name in &worked {
        let polled = engine
            .poll_task(name, 0)
            .expect("the in-memory store does not fail")
            .expect("a live task waits in its queue");
        engine
            .report(id, Report::new(polled.task, ReportStatus::Completed), 0)
            .expect("the report applies");
    }
    worked
}

#[test]
fn the_engine_runs_a_fork_a_switch_and_a_loop_to_completion() {
    let choices = Choices::new()
        .with_case("route", 0, Some("sea"))
        .with_iterations("pack_loop", 3);
    let engine = engine(choices);
    let id = WorkflowId::new("order-1");
    engine.start(id.clone(), 0).expect("a new id starts");
    let mut rounds = Vec::new();
    loop {
        sweep_all(&engine, 0);
        let worked = work_all(&engine, &id);
        if worked.is_empty() {
            break;
        }
        rounds.push(worked);
        assert!(
            rounds.len() < 20,
            "the workflow does not finish: {rounds:?}"
        );
    }
    let done = workflow(&engine, &id);
    assert_eq!(
        done.status(),
        WorkflowStatus::Completed,
        "{rounds:?} {:?}",
        done.tasks()
    );
    assert!(check(&done).is_empty(), "{:?}", check(&done));
    // Each round works what the decider scheduled: the fork's branches run side by side, the
    // SWITCH took "sea", the loop ran three times, and notify waited for the JOIN.
    assert_eq!(
        rounds,
        vec![
            vec!["fetch".to_string()],
            vec!["pack__1".into(), "sail".into()],
            vec!["label".into(), "pack__2".into()],
            vec!["pack__3".into()],
            vec!["notify".into()],
        ]
    );
    let pack = done
        .latest_attempt("pack__3")
        .expect("the third iteration ran");
    assert_eq!((pack.iteration, pack.status), (3, TaskStatus::Completed));
    assert!(done.latest_attempt("fly").is_none() && done.latest_attempt("drive").is_none());
}

#[test]
fn a_terminate_in_the_middle_of_a_fork_cancels_every_live_branch() {
    let engine = engine(Choices::new().with_iterations("pack_loop", 2));
    let id = WorkflowId::new("order-2");
    engine.start(id.clone(), 0).expect("a new id starts");
    sweep_all(&engine, 0);
    work_all(&engine, &id); // fetch
    sweep_all(&engine, 0);
    // Both branches are live: the default case's drive and the loop's first pack.
    let running = workflow(&engine, &id);
    let mut names = live(&running);
    names.sort();
    assert_eq!(names, ["drive", "pack__1"]);
    // A worker holds one of them.
    let polled = engine.poll_task("drive", 0).unwrap().expect("drive waits");
    engine.terminate(&id, 0).expect("terminate applies");
    let terminated = workflow(&engine, &id);
    assert_eq!(terminated.status(), WorkflowStatus::Terminated);
    assert!(live(&terminated).is_empty());
    for name in ["drive", "pack__1"] {
        let task = terminated.latest_attempt(name).unwrap();
        assert_eq!(task.status, TaskStatus::Canceled, "{name}");
    }
    assert!(check(&terminated).is_empty());
    // The worker's late report is refused, nothing else is scheduled, and the queues are empty.
    let late = engine.report(&id, Report::new(polled.task, ReportStatus::Completed), 0);
    assert!(late.is_err());
    assert_eq!(sweep_all(&engine, 0), 0);
    assert!(engine.poll_task("pack__1", 0).unwrap().is_none());
    assert!(engine.poll_task("drive", 0).unwrap().is_none());
    assert_eq!(workflow(&engine, &id).tasks().len(), 3);
}

fn attempt(workflow: &str, name: &str, retry: u32, status: TaskStatus) -> Task {
    Task {
        id: TaskId::attempt(&WorkflowId::new(workflow), name, retry),
        reference_name: name.into(),
        status,
        retry_count: retry,
        iteration: name
            .rsplit_once("__")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(0),
        optional: false,
    }
}

fn with_tasks(tasks: Vec<Task>) -> Workflow {
    Workflow::from_parts("wf", WorkflowStatus::Running, 1, tasks).expect("distinct ids")
}

fn decider(json: &str, choices: Choices) -> ConductorDecider {
    ConductorDecider::new(WorkflowDefinition::from_json(json).unwrap(), choices).unwrap()
}

fn scheduled(decision: Decision) -> String {
    match decision {
        Decision::Act(EngineInput::Schedule(NewTask { reference_name, .. })) => {
            reference_name.to_string()
        }
        other => panic!("expected a schedule, got {other:?}"),
    }
}

/// A JOIN on a task of a SWITCH case that was not taken waits with nothing live: the decider
/// says why.
const UNTAKEN_JOIN: &str = r#"{"name": "untaken", "tasks": [
    {"name": "fork", "taskReferenceName": "fork", "type": "FORK_JOIN", "forkTasks": [
        [{"name": "s", "taskReferenceName": "s", "type": "SWITCH", "decisionCases": {
            "yes": [{"name": "y", "taskReferenceName": "y", "type": "SIMPLE"}]},
          "defaultCase": [{"name": "n", "taskReferenceName": "n", "type": "SIMPLE"}]}],
        [{"name": "b", "taskReferenceName": "b", "type": "SIMPLE"}]]},
    {"name": "join", "taskReferenceName": "join", "type": "JOIN", "joinOn": ["y", "b"]}]}"#;

#[test]
fn a_join_on_an_untaken_case_waits_and_says_why() {
    let decider = decider(UNTAKEN_JOIN, Choices::new());
    let workflow = with_tasks(vec![
        attempt("wf", "n", 0, TaskStatus::Completed),
        attempt("wf", "b", 0, TaskStatus::Completed),
    ]);
    assert_eq!(decider.decide(&workflow), Decision::Wait);
    assert_eq!(
        decider.blocked(&workflow),
        Some(Blocked {
            join: "join".into(),
            waits_on: "y".into()
        })
    );
    // With the case taken, the JOIN completes and so does the workflow.
    let taken = self::decider(UNTAKEN_JOIN, Choices::new().with_case("s", 0, Some("yes")));
    let workflow = with_tasks(vec![
        attempt("wf", "y", 0, TaskStatus::Completed),
        attempt("wf", "b", 0, TaskStatus::Completed),
    ]);
    assert_eq!(
        taken.decide(&workflow),
        Decision::Act(EngineInput::Complete)
    );
    assert_eq!(taken.blocked(&workflow), None);
}

#[test]
fn a_case_with_a_task_stays_taken_whatever_the_evaluator_says_later() {
    let decider = decider(UNTAKEN_JOIN, Choices::new().with_case("s", 0, Some("yes")));
    // The default case's task exists (an earlier answer): the decider follows it, not "yes".
    let workflow = with_tasks(vec![attempt("wf", "n", 0, TaskStatus::Scheduled)]);
    assert_eq!(scheduled(decider.decide(&workflow)), "b");
}

const RETRY: &str = r#"{"name": "retry", "tasks": [
    {"name": "a", "taskReferenceName": "a", "type": "SIMPLE", "taskDefinition": {"retryCount": 1}},
    {"name": "o", "taskReferenceName": "o", "type": "SIMPLE", "optional": true},
    {"name": "fork", "taskReferenceName": "fork", "type": "FORK_JOIN", "forkTasks": [
        [{"name": "p", "taskReferenceName": "p", "type": "SIMPLE", "permissive": true}],
        [{"name": "q", "taskReferenceName": "q", "type": "SIMPLE"}]]},
    {"name": "join", "taskReferenceName": "join", "type": "JOIN", "joinOn": ["p", "q"]}]}"#;

#[test]
fn failures_are_retried_tolerated_or_fail_the_workflow() {
    let decider = decider(RETRY, Choices::new());
    let a0 = attempt("wf", "a", 0, TaskStatus::Failed);
    let workflow = with_tasks(vec![a0.clone()]);
    assert_eq!(
        decider.decide(&workflow),
        Decision::Act(EngineInput::Reschedule {
            failed: a0.id.clone(),
            task: TaskId::attempt(workflow.id(), "a", 1),
        })
    );
    // Retries spent on a required task: the workflow fails.
    let spent = with_tasks(vec![
        a0.clone(),
        attempt("wf", "a", 1, TaskStatus::TimedOut),
    ]);
    assert_eq!(decider.decide(&spent), Decision::Act(EngineInput::Fail));
    // An optional task's failure is tolerated.
    let mut o = attempt("wf", "o", 0, TaskStatus::Failed);
    o.optional = true;
    let a = attempt("wf", "a", 0, TaskStatus::Completed);
    let workflow = with_tasks(vec![a.clone(), o.clone()]);
    assert_eq!(
        decider.decide(&workflow),
        Decision::Act(EngineInput::TolerateFailure { task: o.id.clone() })
    );
    // A permissive branch's failure lets the other branch run; the JOIN then fails.
    let mut tolerated = o.clone();
    tolerated.status = TaskStatus::CompletedWithErrors;
    let failed_p = attempt("wf", "p", 0, TaskStatus::Failed);
    let workflow = with_tasks(vec![a.clone(), tolerated.clone(), failed_p.clone()]);
    assert_eq!(scheduled(decider.decide(&workflow)), "q");
    let workflow = with_tasks(vec![
        a.clone(),
        tolerated.clone(),
        failed_p.clone(),
        attempt("wf", "q", 0, TaskStatus::InProgress),
    ]);
    assert_eq!(decider.decide(&workflow), Decision::Wait);
    let workflow = with_tasks(vec![
        a,
        tolerated,
        failed_p,
        attempt("wf", "q", 0, TaskStatus::Completed),
    ]);
    assert_eq!(decider.decide(&workflow), Decision::Act(EngineInput::Fail));
}

#[test]
fn terminate_tasks_end_the_workflow_and_a_terminated_one_is_refused() {
    let completed = r#"{"name": "t", "tasks": [
        {"name": "a", "taskReferenceName": "a", "type": "SIMPLE"},
        {"name": "end", "taskReferenceName": "end", "type": "TERMINATE",
         "inputParameters": {"terminationStatus": "COMPLETED"}},
        {"name": "never", "taskReferenceName": "never", "type": "SIMPLE"}]}"#;
    let decider = decider(completed, Choices::new());
    let workflow = with_tasks(vec![attempt("wf", "a", 0, TaskStatus::Completed)]);
    assert_eq!(
        decider.decide(&workflow),
        Decision::Act(EngineInput::Complete)
    );
    let failed = completed.replace("\"COMPLETED\"}", "\"FAILED\"}");
    let decider = self::decider(&failed, Choices::new());
    assert_eq!(decider.decide(&workflow), Decision::Act(EngineInput::Fail));
    let terminated = completed.replace("\"COMPLETED\"}", "\"TERMINATED\"}");
    let definition = WorkflowDefinition::from_json(&terminated).unwrap();
    assert!(matches!(
        ConductorDecider::new(definition, Choices::new()),
        Err(DefinitionError::TerminatedByTask { ref reference_name }) if reference_name == "end"
    ));
}

#[test]
fn nested_loops_are_refused_naming_both() {
    let nested = r#"{"name": "n", "tasks": [
        {"name": "o", "taskReferenceName": "outer", "type": "DO_WHILE", "loopOver": [
            {"name": "i", "taskReferenceName": "inner", "type": "DO_WHILE", "loopOver": [
                {"name": "a", "taskReferenceName": "a", "type": "SIMPLE"}]}]}]}"#;
    let definition = WorkflowDefinition::from_json(nested).unwrap();
    assert!(matches!(
        ConductorDecider::new(definition, Choices::new()),
        Err(DefinitionError::NestedLoop { ref outer, ref inner }) if outer == "outer" && inner == "inner"
    ));
}

#[test]
fn choices_enumerate_every_case_and_loop_count_that_can_be_met() {
    let all = Choices::enumerate(&order(), 3, 1000).unwrap();
    // Three cases (air, sea, default) × loop counts 1..=3.
    assert_eq!(all.len(), 9);
    let unique: std::collections::BTreeSet<_> = all.iter().collect();
    assert_eq!(unique.len(), 9);
    assert!(Choices::enumerate(&order(), 3, 8).is_err());
    // The tasks the model's workers need: every case's, and each iteration's.
    let names: Vec<String> = order()
        .schedulable(3)
        .unwrap()
        .into_iter()
        .map(|task| task.reference_name.to_string())
        .collect();
    assert_eq!(
        names,
        ["fetch", "fly", "sail", "drive", "label", "pack__1", "pack__2", "pack__3", "notify"]
    );
}

#[test]
fn a_workflow_that_is_not_running_is_idle() {
    let decider = decider(ORDER, Choices::new());
    let workflow = Workflow::from_parts("wf", WorkflowStatus::Paused, 1, vec![]).unwrap();
    assert_eq!(decider.decide(&workflow), Decision::Idle);
}
