//! Conductor conformance (issue 5): the JSON mapping, the input-log format, and the `wfstate audit`,
//! `replay` and `table` commands, on the fixtures in `tests/fixtures/` and on bad input built here.
//! Each test names the invariant (I1–I5) or the rule it checks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use wfstate::conductor::{
    parse_line, read_log, Event, Execution, ExecutionError, LogError, ResolveError, TaskRef,
};
use wfstate::{
    check, AdminInput, EngineInput, Input, Invariant, NewTask, Report, ReportStatus, TaskStatus,
    TransitionTable, Violation, Workflow, WorkflowStatus,
};

// ---------------------------------------------------------------------------------------------
// Helpers

/// The repository root: the commands in the docs run from there.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("models/ is inside the repository")
        .to_path_buf()
}

fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// Every `.json` file under `dir`, recursively, sorted.
/// The JSON files under `dir`, executions and schemas: `definitions/` holds workflow
/// definitions, not executions (`models/tests/definitions.rs` reads them).
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("fixture directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                if !path.ends_with("definitions") {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn load(path: &Path) -> Result<Execution, ExecutionError> {
    Execution::from_slice(&std::fs::read(path).expect("fixture is readable"))
}

fn is_seed_bug(path: &Path) -> bool {
    path.parent()
        .is_some_and(|dir| dir.file_name().is_some_and(|name| name == "seed-bugs"))
}

/// Runs `wfstate ARGS` from the repository root.
fn wfstate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wfstate"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the wfstate binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 output")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

/// A scratch file under Cargo's per-target temporary directory.
fn scratch(name: &str, contents: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("conformance-{name}"));
    std::fs::write(&path, contents).expect("scratch file is writable");
    path
}

fn execution_json(status: &str, tasks: &[Value]) -> String {
    json!({"workflowId": "wf-1", "status": status, "tasks": tasks}).to_string()
}

fn task_json(id: &str, reference: &str, status: &str) -> Value {
    json!({"taskId": id, "referenceTaskName": reference, "status": status,
           "workflowInstanceId": "wf-1"})
}

// ---------------------------------------------------------------------------------------------
// The Conductor JSON mapping

/// I1, I2, I3: every real Conductor execution in the fixtures is consistent.
#[test]
fn i1_i2_i3_every_real_fixture_is_clean() {
    let mut audited = 0;
    for path in json_files(&fixtures().join("conductor")) {
        if is_seed_bug(&path) {
            continue;
        }
        match load(&path) {
            Ok(execution) => {
                let workflow = execution.to_workflow().expect("fixture ids are unique");
                assert_eq!(check(&workflow), Vec::new(), "{}", path.display());
                assert_eq!(workflow.tasks().len(), execution.tasks.len());
                audited += 1;
            }
            Err(ExecutionError::JsonSchema) => {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                assert!(name.starts_with("schema-"), "{name} is not a schema");
            }
            Err(error) => panic!("{}: {error}", path.display()),
        }
    }
    assert_eq!(audited, 9, "the nine executions of the fixture README");
}

/// The invariant each seed bug's name describes, with the task and status it names.
const SEED_BUGS: [(&str, Invariant, &str, TaskStatus); 5] = [
    (
        "terminated-with-in-progress-task.json",
        Invariant::I1,
        "perf_task_4",
        TaskStatus::InProgress,
    ),
    (
        "completed-with-in-progress-task.json",
        Invariant::I1,
        "perf_task_3",
        TaskStatus::InProgress,
    ),
    (
        "completed-with-failed-task.json",
        Invariant::I2,
        "perf_task_3",
        TaskStatus::Failed,
    ),
    (
        "retried-task-still-in-progress.json",
        Invariant::I3,
        "perf_task_4",
        TaskStatus::InProgress,
    ),
    (
        "duplicate-task.json",
        Invariant::I8,
        "perf_task_4",
        TaskStatus::Scheduled,
    ),
];

/// I1, I2, I3, I8: each seed bug reports exactly the violation its name describes.
#[test]
fn i1_i2_i3_i8_each_seed_bug_reports_its_violation() {
    let dir = fixtures().join("conductor/seed-bugs");
    assert_eq!(
        json_files(&dir).len(),
        SEED_BUGS.len(),
        "a table row per seed bug"
    );
    for (file, invariant, reference, status) in SEED_BUGS {
        let workflow = load(&dir.join(file)).unwrap().to_workflow().unwrap();
        let violations = check(&workflow);
        assert_eq!(violations.len(), 1, "{file}: {violations:?}");
        assert_eq!(violations[0].invariant(), invariant, "{file}");
        let (named_reference, named_status) = match &violations[0] {
            Violation::LiveTaskInTerminalWorkflow {
                reference_name,
                status,
                ..
            }
            | Violation::UnsuccessfulTaskInCompletedWorkflow {
                reference_name,
                status,
                ..
            }
            | Violation::SupersededTaskLive {
                reference_name,
                status,
                ..
            }
            | Violation::DuplicateAttempt {
                reference_name,
                status,
                ..
            } => (reference_name.as_str(), *status),
            other => panic!("{file}: unexpected {other:?}"),
        };
        assert_eq!(
            (named_reference, named_status),
            (reference, status),
            "{file}"
        );
    }
}

/// SPEC section 2: the status vocabularies are Conductor's, as its JSON Schemas spell them.
#[test]
fn statuses_match_conductors_json_schemas() {
    let enum_of = |file: &str| -> Vec<String> {
        let schema: Value = serde_json::from_slice(
            &std::fs::read(fixtures().join("conductor").join(file)).unwrap(),
        )
        .unwrap();
        let mut values: Vec<String> = schema["properties"]["status"]["enum"]
            .as_array()
            .expect("a status enum")
            .iter()
            .map(|value| value.as_str().unwrap().to_string())
            .collect();
        values.sort();
        values
    };
    let mut workflow: Vec<String> = WorkflowStatus::ALL.iter().map(|s| s.to_string()).collect();
    let mut task: Vec<String> = TaskStatus::ALL.iter().map(|s| s.to_string()).collect();
    workflow.sort();
    task.sort();
    assert_eq!(enum_of("schema-Workflow.json"), workflow);
    assert_eq!(enum_of("schema-Task.json"), task);
}

/// Round trip: parse → serialize → parse keeps every status and core field, for every fixture.
#[test]
fn round_trip_keeps_every_status_and_core_field() {
    for path in json_files(&fixtures()) {
        let Ok(execution) = load(&path) else { continue };
        let written = serde_json::to_string(&execution).unwrap();
        let again = Execution::from_json(&written).unwrap();
        assert_eq!(again, execution, "{}", path.display());
        // Through serde's own entry point too.
        let via_serde: Execution = serde_json::from_str(&written).unwrap();
        assert_eq!(via_serde, execution);
        // And the core state it stands for is the same.
        let workflow = execution.to_workflow().unwrap();
        assert_eq!(again.to_workflow().unwrap(), workflow);
        // A core workflow exported and read back is the same workflow.
        let exported = serde_json::to_string(&Execution::from(&workflow)).unwrap();
        let reloaded = Execution::from_json(&exported)
            .unwrap()
            .to_workflow()
            .unwrap();
        assert_eq!(reloaded, workflow, "{}", path.display());
    }
}

/// Round trip of every status and of the fields that have defaults.
#[test]
fn round_trip_covers_every_status() {
    let tasks: Vec<Value> = TaskStatus::ALL
        .iter()
        .enumerate()
        .map(|(index, status)| {
            json!({"taskId": format!("t{index}"), "referenceTaskName": format!("r{index}"),
                   "status": status.as_str(), "retryCount": index, "iteration": index * 2,
                   "workflowTask": {"optional": index % 2 == 0}})
        })
        .collect();
    for status in WorkflowStatus::ALL {
        let json = json!({"workflowId": "wf", "status": status.as_str(),
                          "previousStatus": "PAUSED", "updatedTime": 5, "tasks": tasks});
        let execution = Execution::from_json(&json.to_string()).unwrap();
        assert_eq!(execution.status, status);
        let written = serde_json::to_value(&execution).unwrap();
        assert_eq!(written["updateTime"], json!(5));
        let again = Execution::from_json(&written.to_string()).unwrap();
        assert_eq!(again, execution);
        for (index, task) in again.tasks.iter().enumerate() {
            assert_eq!(task.status, TaskStatus::ALL[index]);
            assert_eq!(task.retry_count as usize, index);
            assert_eq!(task.iteration as usize, index * 2);
            assert_eq!(task.optional, index % 2 == 0);
        }
    }
}

/// Conductor's persisted form: `updatedTime`, `previousStatus`, tasks stored apart.
#[test]
fn reads_the_persisted_form() {
    let execution = Execution::from_json(
        r#"{"workflowId": "wf-1", "status": "TERMINATED", "previousStatus": "RUNNING",
            "updatedTime": 1700000000000, "createdBy": "ops", "failedTaskId": null}"#,
    )
    .unwrap();
    assert_eq!(execution.previous_status, Some(WorkflowStatus::Running));
    assert_eq!(execution.update_time, Some(1_700_000_000_000));
    assert!(execution.tasks.is_empty());
    let workflow = execution.to_workflow().unwrap();
    assert_eq!(workflow.status(), WorkflowStatus::Terminated);
    assert_eq!(
        workflow.version(),
        0,
        "Conductor has no compare-and-swap version"
    );
}

/// Lenient about keys: legacy `taskStatus`, `schemaVersion`, `logs`, and the deprecated `version`.
#[test]
fn legacy_keys_are_ignored_and_status_wins() {
    let json = json!({"workflowId": "wf-1", "status": "RUNNING", "version": 7, "schemaVersion": 1,
        "tasks": [{"taskId": "t", "referenceTaskName": "r", "status": "SCHEDULED",
                   "taskStatus": "COMPLETED", "logs": ["a"], "seq": 1, "taskDefinition": null,
                   "workflowTask": null}]});
    let execution = Execution::from_json(&json.to_string()).unwrap();
    assert_eq!(execution.tasks[0].status, TaskStatus::Scheduled);
    assert_eq!(execution.to_workflow().unwrap().version(), 0);
}

/// `optional` comes from `workflowTask.optional`, or a top-level `optional`.
#[test]
fn optional_is_read_from_the_workflow_task() {
    let json = json!({"workflowId": "wf-1", "status": "RUNNING", "tasks": [
        {"taskId": "a", "referenceTaskName": "a", "status": "FAILED", "workflowTask": {"optional": true}},
        {"taskId": "b", "referenceTaskName": "b", "status": "FAILED", "optional": true},
        {"taskId": "c", "referenceTaskName": "c", "status": "FAILED", "workflowTask": {"name": "c"}}]});
    let execution = Execution::from_json(&json.to_string()).unwrap();
    let optional: Vec<bool> = execution.tasks.iter().map(|task| task.optional).collect();
    assert_eq!(optional, [true, true, false]);
}

/// SPEC section 2: an unknown status is a typed error naming the value and where it was.
#[test]
fn unknown_statuses_are_typed_errors() {
    let tasks = [
        task_json("a", "fetch", "COMPLETED"),
        task_json("b", "store", "DONE"),
    ];
    assert_eq!(
        Execution::from_json(&execution_json("RUNNING", &tasks)),
        Err(ExecutionError::UnknownTaskStatus {
            index: 1,
            reference_name: "store".into(),
            value: "DONE".into(),
        })
    );
    assert_eq!(
        Execution::from_json(&execution_json("CANCELLED", &[])),
        Err(ExecutionError::UnknownWorkflowStatus {
            field: "status",
            value: "CANCELLED".into(),
        })
    );
    let previous = r#"{"workflowId": "w", "status": "RUNNING", "previousStatus": "running"}"#;
    assert_eq!(
        Execution::from_json(previous),
        Err(ExecutionError::UnknownWorkflowStatus {
            field: "previousStatus",
            value: "running".into(),
        })
    );
    // Case matters: Conductor spells statuses in upper snake case.
    let lower = [task_json("a", "fetch", "in_progress")];
    assert!(matches!(
        Execution::from_json(&execution_json("RUNNING", &lower)),
        Err(ExecutionError::UnknownTaskStatus { index: 0, .. })
    ));
}

/// Bad input: missing `status`, ids or reference names are typed errors.
#[test]
fn missing_fields_are_typed_errors() {
    assert_eq!(
        Execution::from_json(r#"{"workflowId": "w", "tasks": []}"#),
        Err(ExecutionError::MissingWorkflowField { field: "status" })
    );
    assert_eq!(
        Execution::from_json(r#"{"workflowId": "w", "status": null}"#),
        Err(ExecutionError::MissingWorkflowField { field: "status" })
    );
    assert_eq!(
        Execution::from_json(r#"{"status": "RUNNING"}"#),
        Err(ExecutionError::MissingWorkflowField {
            field: "workflowId"
        })
    );
    let cases = [
        (json!({"taskId": "a", "referenceTaskName": "r"}), "status"),
        (
            json!({"taskId": "a", "status": "SCHEDULED"}),
            "referenceTaskName",
        ),
        (
            json!({"referenceTaskName": "r", "status": "SCHEDULED"}),
            "taskId",
        ),
    ];
    for (task, field) in cases {
        let json = execution_json("RUNNING", &[task_json("ok", "ok", "COMPLETED"), task]);
        assert_eq!(
            Execution::from_json(&json),
            Err(ExecutionError::MissingTaskField { index: 1, field })
        );
    }
}

/// Bad input: malformed JSON and arrays (or scalars) where objects belong are clear errors.
#[test]
fn malformed_json_and_wrong_shapes_are_clear_errors() {
    let cases = [
        ("", "EOF while parsing"),
        (
            "{\"workflowId\": \"w\", \"status\": \"RUNNING\",}",
            "trailing comma",
        ),
        ("{\"workflowId\": \"w\"", "EOF while parsing"),
        ("{} {}", "trailing characters"),
        (
            "[]",
            "invalid type: sequence, expected a Conductor workflow execution",
        ),
        (
            r#"["w", "RUNNING", null, null, null, []]"#,
            "invalid type: sequence, expected a Conductor workflow execution",
        ),
        ("\"RUNNING\"", "invalid type: string"),
        (
            r#"{"workflowId": "w", "status": "RUNNING", "tasks": {}}"#,
            "expected an array of Conductor tasks",
        ),
        (
            r#"{"workflowId": "w", "status": "RUNNING", "tasks": [["t", "r", "SCHEDULED"]]}"#,
            "invalid type: sequence, expected a Conductor task (a JSON object)",
        ),
        (
            r#"{"workflowId": "w", "status": "RUNNING", "tasks": [{"taskId": "t", "workflowTask": [true]}]}"#,
            "expected a Conductor workflow task definition",
        ),
        (
            r#"{"workflowId": "w", "status": "RUNNING", "tasks": [{"taskId": "t", "retryCount": -1}]}"#,
            "invalid value: integer `-1`",
        ),
        (
            r#"{"workflowId": 7, "status": "RUNNING"}"#,
            "invalid type: integer `7`",
        ),
        (
            r#"{"workflowId": "w", "status": "RUNNING", "status": "FAILED"}"#,
            "duplicate field `status`",
        ),
    ];
    for (json, expected) in cases {
        match Execution::from_json(json) {
            Err(error @ ExecutionError::Json { .. }) => {
                let message = error.to_string();
                assert!(message.contains(expected), "{json}: {message}");
            }
            other => panic!("{json}: {other:?}"),
        }
    }
    let Err(ExecutionError::Json { line, column, .. }) =
        Execution::from_json("{\n  \"workflowId\": \"w\",\n  \"status\": RUNNING\n}")
    else {
        panic!("bare word is not JSON");
    };
    assert_eq!((line, column), (3, 13));
}

/// Structural errors: a task of another workflow, two attempts with one id.
#[test]
fn foreign_tasks_and_duplicate_ids_are_typed_errors() {
    let mut foreign = task_json("b", "store", "COMPLETED");
    foreign["workflowInstanceId"] = json!("wf-2");
    assert_eq!(
        Execution::from_json(&execution_json(
            "RUNNING",
            &[task_json("a", "fetch", "COMPLETED"), foreign]
        )),
        Err(ExecutionError::TaskOfAnotherWorkflow {
            index: 1,
            reference_name: "store".into(),
            task_workflow: "wf-2".into(),
            workflow: "wf-1".into(),
        })
    );
    let tasks = [
        task_json("a", "fetch", "COMPLETED"),
        task_json("b", "store", "COMPLETED"),
        task_json("a", "index", "SCHEDULED"),
    ];
    let execution = Execution::from_json(&execution_json("RUNNING", &tasks)).unwrap();
    assert_eq!(
        execution.to_workflow(),
        Err(ExecutionError::DuplicateTaskId {
            task: "a".into(),
            first: 0,
            index: 2,
        })
    );
}

/// Bad input: a 100,000-task execution reads, converts and checks correctly (and fast: every
/// step is O(n log n)).
#[test]
fn reads_a_100_000_task_execution() {
    let count = 100_000;
    let tasks: Vec<Value> = (0..count)
        .map(|index| {
            json!({"taskId": format!("t{index}"), "referenceTaskName": format!("loop_body__{index}"),
                   "status": if index + 1 == count { "IN_PROGRESS" } else { "COMPLETED" },
                   "iteration": index, "inputData": {"n": index}, "workflowInstanceId": "wf-1"})
        })
        .collect();
    let json = execution_json("TERMINATED", &tasks);
    let execution = Execution::from_json(&json).unwrap();
    assert_eq!(execution.tasks.len(), count);
    let workflow = execution.to_workflow().unwrap();
    // I1: exactly the one live task of the terminated workflow.
    let violations = check(&workflow);
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].invariant(), Invariant::I1);
    // The streaming reader gives the same answer.
    assert_eq!(
        Execution::from_reader(std::io::BufReader::new(json.as_bytes())).unwrap(),
        execution
    );
}

/// Bad input: a 10 MB string, skipped (`output`) or kept (`referenceTaskName`), reads correctly.
#[test]
fn reads_a_10_mb_string_field() {
    let big = "x".repeat(10 * 1024 * 1024);
    let json = json!({"workflowId": "wf-1", "status": "COMPLETED", "output": {"blob": big},
        "tasks": [{"taskId": "t", "referenceTaskName": big, "status": "COMPLETED",
                   "outputData": {"blob": big}}]});
    let execution = Execution::from_json(&json.to_string()).unwrap();
    assert_eq!(execution.tasks[0].reference_task_name.len(), big.len());
    assert!(check(&execution.to_workflow().unwrap()).is_empty());
}

/// Bad input: deeply nested payloads never overflow the stack. Skipped values are skipped
/// iteratively; kept values hit serde_json's recursion limit, an error.
#[test]
fn deep_nesting_is_no_panic() {
    let depth = 200_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let skipped = format!(r#"{{"workflowId": "w", "status": "RUNNING", "input": {nested}}}"#);
    assert!(Execution::from_json(&skipped).is_ok());
    let kept = format!(r#"{{"workflowId": "w", "status": "RUNNING", "tasks": {nested}}}"#);
    assert!(matches!(
        Execution::from_json(&kept),
        Err(ExecutionError::Json { .. })
    ));
    // Log lines: the tagged enums buffer what precedes their tag; serde_json's depth limit holds.
    for line in [
        format!(r#"{{"writer": "admin", "input": {nested}}}"#),
        format!(r#"{{"input": {nested}, "writer": "admin"}}"#),
        format!(r#"{{"writer": "engine", "input": {{"x": {nested}, "op": "start"}}}}"#),
    ] {
        assert!(parse_line(&line).is_err());
    }
    let skipped = format!(r#"{{"taskId": "t", "status": "COMPLETED", "outputData": {nested}}}"#);
    assert!(parse_line(&skipped).is_ok());
}

// ---------------------------------------------------------------------------------------------
// The input-log format

fn every_input() -> Vec<Input> {
    vec![
        Report::new("t1", ReportStatus::InProgress).into(),
        Report::new("t1", ReportStatus::FailedWithTerminalError).into(),
        EngineInput::Schedule(NewTask::new("t1", "fetch")).into(),
        EngineInput::Skip(NewTask::new("t2", "skip").optional()).into(),
        EngineInput::Reschedule {
            failed: "t1".into(),
            task: "t3".into(),
        }
        .into(),
        EngineInput::Start { task: "t1".into() }.into(),
        EngineInput::TimeOutTask { task: "t1".into() }.into(),
        EngineInput::CancelTask { task: "t1".into() }.into(),
        EngineInput::TolerateFailure { task: "t1".into() }.into(),
        EngineInput::Complete.into(),
        EngineInput::Fail.into(),
        EngineInput::TimeOut.into(),
        AdminInput::Terminate.into(),
        AdminInput::Pause.into(),
        AdminInput::Resume.into(),
        AdminInput::Retry.into(),
    ]
}

/// Every input the core serializes is a log line that resolves back to the same input.
#[test]
fn every_serialized_input_is_a_log_line() {
    let workflow = Workflow::new("wf");
    for input in every_input() {
        let line = serde_json::to_string(&input).unwrap();
        let event = parse_line(&line).unwrap().expect("not a comment");
        assert_eq!(event, Event::from(input.clone()), "{line}");
        assert_eq!(event.resolve(&workflow).unwrap(), input, "{line}");
        // And the event's own serialization is the input's.
        assert_eq!(serde_json::to_string(&event).unwrap(), line);
    }
}

/// A reference name resolves to the latest attempt at the time the line is replayed.
#[test]
fn reference_names_resolve_to_the_latest_attempt() {
    let mut workflow = Workflow::new("wf");
    workflow
        .advance(&EngineInput::Schedule(NewTask::new("a0", "fetch")).into())
        .unwrap();
    let line = r#"{"writer": "report", "input": {"task": {"ref": "fetch"}, "status": "FAILED"}}"#;
    let event = parse_line(line).unwrap().unwrap();
    assert_eq!(
        event.resolve(&workflow),
        Ok(Report::new("a0", ReportStatus::Failed).into())
    );
    workflow
        .advance(&event.resolve(&workflow).unwrap())
        .unwrap();
    workflow
        .advance(
            &EngineInput::Reschedule {
                failed: "a0".into(),
                task: "a1".into(),
            }
            .into(),
        )
        .unwrap();
    assert_eq!(
        event.resolve(&workflow),
        Ok(Report::new("a1", ReportStatus::Failed).into())
    );
    let unknown = r#"{"writer": "engine", "input": {"op": "start", "task": {"ref": "nope"}}}"#;
    assert_eq!(
        parse_line(unknown).unwrap().unwrap().resolve(&workflow),
        Err(ResolveError::UnknownReference {
            reference_name: "nope".into()
        })
    );
}

/// Conductor task results (`POST /api/tasks` bodies) are worker reports.
#[test]
fn conductor_task_results_are_reports() {
    let line = r#"{"workflowInstanceId": "wf", "taskId": "t1", "status": "COMPLETED",
                   "outputData": {"a": [1, 2]}, "logs": [], "workerId": "w-1"}"#
        .replace('\n', " ");
    let event = parse_line(&line).unwrap().unwrap();
    let workflow = Workflow::new("wf");
    assert_eq!(
        event.resolve(&workflow),
        Ok(Report::new("t1", ReportStatus::Completed).into())
    );
    // Addressed to another workflow: refused, not applied to this one.
    assert_eq!(
        event.resolve(&Workflow::new("other")),
        Err(ResolveError::OtherWorkflow {
            addressed: "wf".into(),
            workflow: "other".into(),
        })
    );
    let by_reference = r#"{"referenceTaskName": "fetch", "status": "IN_PROGRESS"}"#;
    let Event::Report(report) = parse_line(by_reference).unwrap().unwrap() else {
        panic!("a task result is a report");
    };
    assert_eq!(
        report.task,
        TaskRef::Reference {
            reference_name: "fetch".into()
        }
    );
    // Strict about statuses: a worker cannot report SCHEDULED, and spelling matters.
    for status in ["SCHEDULED", "TIMED_OUT", "Completed", "DONE"] {
        let line = format!(r#"{{"taskId": "t1", "status": "{status}"}}"#);
        let error = parse_line(&line).unwrap_err();
        assert!(error.contains(status), "{error}");
    }
}

/// Bad log lines: errors name the line (and the column); blank lines and comments are skipped.
#[test]
fn bad_log_lines_are_clear_errors() {
    let log = "# a comment\n\n{\"writer\": \"admin\", \"input\": \"pause\"}\n   \n{\"writer\": \"admin\", \"input\": \"pause\",}\n{\"writer\": \"admin\", \"input\": \"resume\"}\n";
    let entries: Vec<_> = read_log(log.as_bytes()).collect();
    assert_eq!(entries.len(), 2, "stops after the first error");
    assert_eq!(entries[0].as_ref().unwrap().line, 3);
    let error = entries[1].as_ref().unwrap_err();
    assert!(matches!(error, LogError::Parse { line: 5, .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("line 5: trailing comma (column"),
        "{error}"
    );
    let cases = [
        (
            "[1, 2]",
            "invalid type: sequence, expected an input log entry",
        ),
        (
            r#"["report", {"task": "t", "status": "COMPLETED"}]"#,
            "invalid type: sequence",
        ),
        ("42", "invalid type: integer"),
        ("{}", "neither an input"),
        (
            r#"{"writer": "worker", "input": {}}"#,
            "unknown variant `worker`",
        ),
        (
            r#"{"writer": "report", "input": {"task": "t"}}"#,
            "missing field `status`",
        ),
        (
            r#"{"writer": "engine", "input": {"op": "launch"}}"#,
            "unknown variant `launch`",
        ),
        (
            r#"{"writer": "report", "input": {"task": 7, "status": "COMPLETED"}}"#,
            "a task id",
        ),
        (
            r#"{"writer": "admin", "input": "pause"} x"#,
            "trailing characters",
        ),
    ];
    for (line, expected) in cases {
        let error = parse_line(line).unwrap_err();
        assert!(error.contains(expected), "{line}: {error}");
    }
    let not_utf8: &[u8] = b"{\"writer\": \"admin\", \"input\": \"pause\"}\n\xff\xfe\n";
    let entries: Vec<_> = read_log(not_utf8).collect();
    assert!(matches!(entries[1], Err(LogError::Read { line: 2, .. })));
}

// ---------------------------------------------------------------------------------------------
// `wfstate audit`

/// I1, I2, I3: the audit of every fixture outside seed-bugs/ exits 0.
#[test]
fn audit_of_the_real_fixtures_exits_0() {
    let files: Vec<String> = json_files(&fixtures().join("conductor"))
        .into_iter()
        .filter(|path| !is_seed_bug(path))
        .map(|path| path.to_string_lossy().into_owned())
        .collect();
    let args: Vec<&str> = std::iter::once("audit")
        .chain(files.iter().map(String::as_str))
        .collect();
    let output = wfstate(&args);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.matches(", clean\n").count(), 9, "{text}");
    assert_eq!(
        text.matches(": skipped: a JSON Schema").count(),
        2,
        "{text}"
    );
    assert!(text.ends_with("11 files: 9 clean, 0 with violations, 0 unreadable, 2 skipped\n"));
}

/// I1, I2, I3, I8: each seed bug is reported with its invariant id and task, and exits 1.
#[test]
fn audit_reports_each_seed_bug_and_exits_1() {
    for (file, invariant, reference, status) in SEED_BUGS {
        let path = format!("tests/fixtures/conductor/seed-bugs/{file}");
        let output = wfstate(&["audit", &path]);
        assert_eq!(code(&output), 1, "{file}");
        let text = stdout(&output);
        let line = text.lines().nth(1).expect("a violation line");
        assert!(line.starts_with(&format!("  {invariant}: ")), "{line}");
        assert!(line.contains(&format!("({reference})")), "{line}");
        assert!(line.contains(status.as_str()), "{line}");

        let output = wfstate(&["audit", "--json", &path]);
        assert_eq!(code(&output), 1);
        let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
        let violation = &report[0]["violations"][0];
        assert_eq!(violation["invariant"], json!(invariant.to_string()));
        assert_eq!(violation["reference_name"], json!(reference));
        assert_eq!(violation["status"], json!(status.as_str()));
        assert_eq!(
            report[0]["workflow_id"],
            json!("46e2d0d7-0809-40f2-9f22-bed9d41f6613")
        );
    }
}

/// Exit 2 when a file cannot be read or parsed, with the reason; 2 wins over 1.
#[test]
fn audit_of_unreadable_files_exits_2_with_the_reason() {
    let unknown = scratch(
        "unknown-status.json",
        execution_json("RUNNING", &[task_json("a", "fetch", "DONE")]).as_bytes(),
    );
    let array = scratch("array.json", b"[]");
    let output = wfstate(&[
        "audit",
        "tests/fixtures/conductor/seed-bugs/terminated-with-in-progress-task.json",
        unknown.to_str().unwrap(),
        array.to_str().unwrap(),
        "tests/fixtures/does-not-exist.json",
        "tests/fixtures",
    ]);
    assert_eq!(code(&output), 2);
    let errors = stderr(&output);
    assert!(
        errors.contains(r#"error: unknown task status "DONE" at tasks[0] (fetch)"#),
        "{errors}"
    );
    assert!(
        errors.contains("expected a Conductor workflow execution (a JSON object)"),
        "{errors}"
    );
    assert!(
        errors.contains("does-not-exist.json: error: cannot read:"),
        "{errors}"
    );
    assert!(
        errors.contains("tests/fixtures: error: cannot read:"),
        "{errors}"
    );
    assert!(stdout(&output).contains("1 violation"));

    let output = wfstate(&["audit", "--json", unknown.to_str().unwrap()]);
    assert_eq!(code(&output), 2);
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        report[0]["error"],
        json!(r#"unknown task status "DONE" at tasks[0] (fetch)"#)
    );
}

#[test]
fn audit_usage_errors_exit_2() {
    assert_eq!(code(&wfstate(&["audit"])), 2);
    assert_eq!(code(&wfstate(&["audit", "--yaml", "x.json"])), 2);
}

/// Bad input through the command: a 100,000-task file and a 10 MB string audit correctly.
#[test]
fn audit_of_big_files() {
    let tasks: Vec<Value> = (0..100_000)
        .map(|index| task_json(&format!("t{index}"), &format!("r{index}"), "COMPLETED"))
        .collect();
    let big = scratch(
        "100000-tasks.json",
        execution_json("COMPLETED", &tasks).as_bytes(),
    );
    let output = wfstate(&["audit", big.to_str().unwrap()]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).ends_with("COMPLETED, 100000 tasks, clean\n"));

    let blob = "y".repeat(10 * 1024 * 1024);
    let json = json!({"workflowId": "wf-1", "status": "TERMINATED", "output": {"blob": blob},
        "tasks": [task_json("t", "upload", "SCHEDULED")]});
    let file = scratch("10mb.json", json.to_string().as_bytes());
    let output = wfstate(&["audit", file.to_str().unwrap()]);
    assert_eq!(code(&output), 1);
    assert!(stdout(&output).contains("I1: TERMINATED workflow has task t (upload) SCHEDULED"));
}

// ---------------------------------------------------------------------------------------------
// `wfstate replay`

/// D2, I3: the DO_WHILE log's stale IN_PROGRESS after COMPLETED is rejected, and replay exits 1.
#[test]
fn replay_of_the_d2_log_rejects_the_stale_in_progress() {
    let output = wfstate(&["replay", "tests/fixtures/replay/d2-do-while.jsonl"]);
    assert_eq!(code(&output), 1);
    let text = stdout(&output);
    assert!(text.contains(
        "line 14: report IN_PROGRESS on start-135 (Upload_item_start__135): rejected: task \
         start-135 is already terminal (COMPLETED); IN_PROGRESS arrived late"
    ));
    assert!(
        text.contains("line 12: report COMPLETED on start-135 (Upload_item_start__135): duplicate")
    );
    assert!(text.ends_with("9 inputs: 7 accepted, 1 duplicate, 1 rejected (first at line 14)\n"));

    let output = wfstate(&[
        "replay",
        "--from",
        "tests/fixtures/replay/d2-do-while-execution.json",
        "--json",
        "tests/fixtures/replay/d2-do-while-task-results.jsonl",
    ]);
    assert_eq!(code(&output), 1);
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["first_rejected_line"], json!(10));
    assert_eq!(report["rejected"], json!(1));
    assert_eq!(report["duplicates"], json!(1));
    let rejected = &report["inputs"][3];
    assert_eq!(rejected["outcome"], json!("rejected"));
    assert_eq!(rejected["accepted"], json!(false));
    assert_eq!(
        rejected["version"],
        json!(1),
        "a rejection changes nothing (I4)"
    );
    assert!(rejected["reason"]
        .as_str()
        .unwrap()
        .ends_with("is already terminal (COMPLETED); IN_PROGRESS arrived late"));
    assert_eq!(report["final"]["violations"], json!([]));
}

/// D1, I1: terminate cancels the live task in the same step; duplicates are accepted; exit 0.
#[test]
fn replay_of_the_d1_log_is_accepted() {
    let output = wfstate(&[
        "replay",
        "--from=tests/fixtures/conductor/running.json",
        "tests/fixtures/replay/d1-terminate.jsonl",
    ]);
    assert_eq!(code(&output), 0, "{}", stdout(&output));
    let text = stdout(&output);
    assert!(text.contains(
        "admin terminate: accepted, version 3: workflow RUNNING -> TERMINATED; perf_task_10-0 \
         IN_PROGRESS -> CANCELED"
    ));
    assert!(text.contains("final: workflow 46e2d0d7-0809-40f2-9f22-bed9d41f6613 TERMINATED, 7 tasks, version 3, clean"));
}

/// I1: a replay from an inconsistent execution reports the violation and exits 1, even with no
/// rejected input; the core refuses to move a live task of a terminal workflow.
#[test]
fn replay_from_a_seed_bug_reports_it() {
    let log = scratch(
        "seed-bug.jsonl",
        br#"{"writer": "report", "input": {"task": {"ref": "perf_task_4"}, "status": "COMPLETED"}}"#,
    );
    let output = wfstate(&[
        "replay",
        "--from",
        "tests/fixtures/conductor/seed-bugs/terminated-with-in-progress-task.json",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code(&output), 1);
    let text = stdout(&output);
    assert!(text.contains("start: workflow 46e2d0d7-0809-40f2-9f22-bed9d41f6613 TERMINATED, 6 tasks, version 0, 1 violation"));
    assert!(
        text.contains("rejected: workflow is already terminal (TERMINATED)"),
        "{text}"
    );
    assert!(text.contains("final: workflow 46e2d0d7-0809-40f2-9f22-bed9d41f6613 TERMINATED, 6 tasks, version 0, 1 violation"));
}

/// Exit 2 for an unreadable log or execution; nothing is replayed.
#[test]
fn replay_of_unreadable_input_exits_2() {
    let bad = scratch(
        "bad.jsonl",
        b"{\"writer\": \"admin\", \"input\": \"pause\"}\n{\"writer\": \"admin\", \"input\": \"paws\"}\n",
    );
    let output = wfstate(&["replay", bad.to_str().unwrap()]);
    assert_eq!(code(&output), 2);
    assert!(stdout(&output).is_empty(), "nothing is replayed");
    assert!(
        stderr(&output).contains("line 2: unknown variant `paws`"),
        "{}",
        stderr(&output)
    );

    let output = wfstate(&[
        "replay",
        "--from",
        "tests/fixtures/conductor/schema-Task.json",
        "tests/fixtures/replay/d1-terminate.jsonl",
    ]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("a JSON Schema, not a workflow execution"));

    assert_eq!(
        code(&wfstate(&["replay", "tests/fixtures/replay/missing.jsonl"])),
        2
    );
    assert_eq!(code(&wfstate(&["replay"])), 2);
    assert_eq!(code(&wfstate(&["replay", "--from"])), 2);
    assert_eq!(code(&wfstate(&["replay", "a.jsonl", "b.jsonl"])), 2);
}

/// A log line that never ends is refused once it passes `MAX_LINE_BYTES`, not read into memory
/// for ever; a line of exactly that length (its newline aside) still reads.
#[test]
fn read_log_refuses_an_endless_line() {
    use std::io::{BufReader, Read};
    use wfstate::conductor::{read_log, LogError, MAX_LINE_BYTES};

    let endless = BufReader::new(std::io::repeat(b' '));
    let mut entries = read_log(endless);
    match entries.next() {
        Some(Err(LogError::Read { line: 1, message })) => {
            assert!(message.contains("longer than"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(entries.next().is_none(), "reading stops at the error");

    // Blanks up to the limit, then the newline: a blank line, skipped, then the event.
    let at_limit = std::io::repeat(b' ')
        .take(MAX_LINE_BYTES as u64)
        .chain(&b"\n{\"writer\": \"admin\", \"input\": \"pause\"}\n"[..]);
    let entries: Vec<_> = read_log(BufReader::new(at_limit)).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].as_ref().map(|entry| entry.line).ok(), Some(2));
}

/// `wfstate replay /dev/zero` and `wfstate check --definition /dev/zero`: exit 2 with the size
/// named, at once.
#[test]
fn endless_files_are_refused() {
    let output = wfstate(&["replay", "/dev/zero"]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("longer than"),
        "{}",
        stderr(&output)
    );
    let output = wfstate(&["check", "--definition", "/dev/zero"]);
    assert_eq!(code(&output), 2);
    assert!(
        stdout(&output).contains("larger than"),
        "{}",
        stdout(&output)
    );
}

/// Bad input through replay: a 100,000-task execution and a terminate that cancels all of it.
#[test]
fn replay_of_a_big_terminate() {
    let tasks: Vec<Value> = (0..100_000)
        .map(|index| task_json(&format!("t{index}"), &format!("r{index}"), "IN_PROGRESS"))
        .collect();
    let execution = scratch(
        "100000-live.json",
        execution_json("RUNNING", &tasks).as_bytes(),
    );
    let log = scratch(
        "terminate.jsonl",
        br#"{"writer": "admin", "input": "terminate"}"#,
    );
    let output = wfstate(&[
        "replay",
        "--from",
        execution.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains(
        "accepted, version 1: workflow RUNNING -> TERMINATED; t0 IN_PROGRESS -> CANCELED;"
    ));
    assert!(text.contains("; 99996 more\n"), "{text}");
    assert!(text.contains("final: workflow wf-1 TERMINATED, 100000 tasks, version 1, clean"));
}

// ---------------------------------------------------------------------------------------------
// `wfstate table`

/// The tables printed are the ones generated from the transition function.
#[test]
fn table_prints_the_generated_tables() {
    let table = TransitionTable::generate();
    for (format, expected) in [
        ("markdown", table.markdown()),
        ("mermaid", table.mermaid()),
        ("json", table.json()),
    ] {
        let output = wfstate(&["table", "--format", format]);
        assert_eq!(code(&output), 0);
        assert_eq!(stdout(&output), expected, "{format}");
    }
    assert_eq!(stdout(&wfstate(&["table"])), table.markdown());
    let json: Value = serde_json::from_str(&stdout(&wfstate(&["table", "--format=json"]))).unwrap();
    assert!(json["task"]
        .as_array()
        .is_some_and(|edges| !edges.is_empty()));
    assert_eq!(code(&wfstate(&["table", "--format", "dot"])), 2);
}

// ---------------------------------------------------------------------------------------------
// docs/conformance.md

/// The console examples in docs/conformance.md are real: each `$ wfstate ...` (or `$ cat ...`)
/// prints exactly what follows it, and `$ echo $?` shows its exit status.
#[test]
fn docs_examples_are_the_real_output() {
    let doc = std::fs::read_to_string(root().join("docs/conformance.md")).unwrap();
    let mut commands = 0;
    let mut in_console = false;
    let mut block = Vec::new();
    for line in doc.lines() {
        if line == "```console" {
            in_console = true;
        } else if in_console && line == "```" {
            commands += check_console_block(&block);
            block.clear();
            in_console = false;
        } else if in_console {
            block.push(line);
        }
    }
    assert!(
        commands >= 4,
        "the doc shows audit, audit --json and replay"
    );
}

/// Checks one console block; returns how many commands it ran.
fn check_console_block(lines: &[&str]) -> usize {
    let mut commands = 0;
    let mut last: Option<(String, Output)> = None;
    let mut index = 0;
    while index < lines.len() {
        let command = lines[index]
            .strip_prefix("$ ")
            .unwrap_or_else(|| panic!("expected a command: {}", lines[index]));
        index += 1;
        let start = index;
        while index < lines.len() && !lines[index].starts_with("$ ") {
            index += 1;
        }
        let expected: String = lines[start..index]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        if command == "echo $?" {
            let (previous, output) = last.as_ref().expect("echo $? follows a command");
            assert_eq!(
                format!("{}\n", code(output)),
                expected,
                "exit status of {previous}"
            );
            continue;
        }
        let words: Vec<&str> = command.split_whitespace().collect();
        let actual = match words[0] {
            "wfstate" => {
                let output = wfstate(&words[1..]);
                let text = stdout(&output);
                last = Some((command.to_string(), output));
                text
            }
            "cat" => std::fs::read_to_string(root().join(words[1])).unwrap(),
            other => panic!("the doc runs only wfstate and cat, not {other}"),
        };
        assert_eq!(
            actual, expected,
            "output of `{command}` in docs/conformance.md"
        );
        commands += 1;
    }
    commands
}
