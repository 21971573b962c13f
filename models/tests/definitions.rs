//! Conductor workflow definitions (issue 13, step 1): every real definition of
//! `tests/fixtures/conductor/definitions/` reads, or is refused with the unsupported construct
//! named; invalid and malformed definitions are typed errors, never panics.

use std::path::{Path, PathBuf};

use wfstate::conductor::{
    DefinitionError, ExternalTask, SystemTask, TaskKind, TaskNode, WorkflowDefinition,
};
use wfstate::WorkflowStatus;

fn definitions() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/conductor/definitions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the definitions folder")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// The two real definitions with a construct this crate does not decide, and the task named.
const UNSUPPORTED: [(&str, &str, &str); 2] = [
    (
        "do_while_timeline_ui_demo.json",
        "dynamic_fork_ref",
        "FORK_JOIN_DYNAMIC",
    ),
    (
        "workflow_that_starts_another_workflow.json",
        "st",
        "START_WORKFLOW",
    ),
];

#[test]
fn every_real_definition_reads_or_names_its_unsupported_task() {
    let files = definitions();
    assert_eq!(files.len(), 62, "the 62 definitions of the fixture README");
    let mut read = 0;
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).expect("readable");
        match WorkflowDefinition::from_slice(&bytes) {
            Ok(definition) => {
                read += 1;
                assert!(!definition.tasks.is_empty(), "{file}");
                assert!(
                    !UNSUPPORTED.iter().any(|(name, ..)| *name == file),
                    "{file} should be refused"
                );
            }
            Err(DefinitionError::Unsupported {
                reference_name,
                task_type,
            }) => {
                let expected = UNSUPPORTED.iter().find(|(name, ..)| *name == file);
                assert_eq!(
                    expected.map(|(_, reference, kind)| (*reference, *kind)),
                    Some((reference_name.as_str(), task_type.as_str())),
                    "{file}"
                );
            }
            Err(other) => panic!("{file}: {other}"),
        }
    }
    assert_eq!(read, 60);
}

fn read(json: &str) -> Result<WorkflowDefinition, DefinitionError> {
    WorkflowDefinition::from_json(json)
}

fn task(reference: &str, kind: &str) -> String {
    format!(r#"{{"name": "{reference}", "taskReferenceName": "{reference}", "type": "{kind}"}}"#)
}

fn workflow(tasks: &[String]) -> String {
    format!(
        r#"{{"name": "w", "version": 2, "tasks": [{}]}}"#,
        tasks.join(",")
    )
}

#[test]
fn each_construct_reads_into_its_kind() {
    let fork = r#"{"name": "f", "taskReferenceName": "fork", "type": "FORK_JOIN",
        "forkTasks": [[{"name": "a", "taskReferenceName": "a", "type": "SIMPLE", "optional": true}],
                      [{"name": "b", "taskReferenceName": "b", "permissive": true,
                        "taskDefinition": {"name": "b", "retryCount": 2}}]]}"#;
    let join =
        r#"{"name": "j", "taskReferenceName": "join", "type": "JOIN", "joinOn": ["a", "b"]}"#;
    let decision = r#"{"name": "d", "taskReferenceName": "decide", "type": "DECISION",
        "caseValueParam": "x", "decisionCases": {"yes": [{"name": "y", "taskReferenceName": "y", "type": "HTTP"}]},
        "defaultCase": [{"name": "t", "taskReferenceName": "stop", "type": "TERMINATE",
                         "inputParameters": {"terminationStatus": "FAILED"}}]}"#;
    let loop_ = r#"{"name": "l", "taskReferenceName": "loop", "type": "DO_WHILE",
        "loopCondition": "false", "loopOver": [{"name": "i", "taskReferenceName": "inline", "type": "INLINE"}]}"#;
    let sub = r#"{"name": "s", "taskReferenceName": "child", "type": "SUB_WORKFLOW",
        "subWorkflowParam": {"name": "other", "version": 1}, "retryCount": 1}"#;
    let json = workflow(&[
        fork.into(),
        join.into(),
        decision.into(),
        loop_.into(),
        sub.into(),
        task("wait", "WAIT"),
        task("human", "HUMAN"),
    ]);
    let definition = read(&json).expect("a valid definition");
    assert_eq!((definition.name.as_str(), definition.version), ("w", 2));
    let kinds: Vec<&TaskKind> = definition.tasks.iter().map(|t| &t.kind).collect();
    let TaskKind::ForkJoin { branches } = kinds[0] else {
        panic!("{:?}", kinds[0])
    };
    let (a, b): (&TaskNode, &TaskNode) = (&branches[0][0], &branches[1][0]);
    assert_eq!(
        (a.kind.clone(), a.optional, a.permissive),
        (TaskKind::Simple, true, false)
    );
    // No type is SIMPLE, Conductor's default; the inlined task definition gives the retries.
    assert_eq!(
        (b.kind.clone(), b.permissive, b.retry_count),
        (TaskKind::Simple, true, 2)
    );
    assert_eq!(
        kinds[1],
        &TaskKind::Join {
            join_on: vec!["a".into(), "b".into()]
        }
    );
    let TaskKind::Switch { cases, default } = kinds[2] else {
        panic!("{:?}", kinds[2])
    };
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].0, "yes");
    assert_eq!(cases[0].1[0].kind, TaskKind::System(SystemTask::Http));
    assert_eq!(
        default[0].kind,
        TaskKind::Terminate {
            status: WorkflowStatus::Failed
        }
    );
    let TaskKind::DoWhile { body } = kinds[3] else {
        panic!("{:?}", kinds[3])
    };
    assert_eq!(body[0].kind, TaskKind::System(SystemTask::Inline));
    assert_eq!(
        kinds[4],
        &TaskKind::SubWorkflow {
            workflow: "other".into()
        }
    );
    assert_eq!(definition.tasks[4].retry_count, 1);
    assert_eq!(kinds[5], &TaskKind::External(ExternalTask::Wait));
    assert_eq!(kinds[6], &TaskKind::External(ExternalTask::Human));
    let names: Vec<&str> = definition
        .all_tasks()
        .iter()
        .map(|t| t.reference_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "fork", "a", "b", "join", "decide", "y", "stop", "loop", "inline", "child", "wait",
            "human"
        ]
    );
}

#[test]
fn invalid_definitions_name_what_is_wrong() {
    // Two tasks with one reference name, one of them nested in a fork branch.
    let fork = r#"{"name": "f", "taskReferenceName": "fork", "type": "FORK_JOIN",
        "forkTasks": [[{"name": "a", "taskReferenceName": "a"}]]}"#;
    assert_eq!(
        read(&workflow(&[task("a", "SIMPLE"), fork.into()])),
        Err(DefinitionError::DuplicateReferenceName {
            reference_name: "a".into()
        })
    );
    let join =
        r#"{"name": "j", "taskReferenceName": "join", "type": "JOIN", "joinOn": ["a", "ghost"]}"#;
    let error = read(&workflow(&[task("a", "SIMPLE"), join.into()])).unwrap_err();
    assert_eq!(
        error,
        DefinitionError::UnknownJoinOn {
            join: "join".into(),
            name: "ghost".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "JOIN join waits on ghost, which no task has"
    );
    let terminate = r#"{"name": "t", "taskReferenceName": "t", "type": "TERMINATE",
        "inputParameters": {"terminationStatus": "RUNNING"}}"#;
    assert!(matches!(
        read(&workflow(&[terminate.into()])),
        Err(DefinitionError::TerminationStatus { ref value, .. }) if value == "RUNNING"
    ));
    for unsupported in [
        "FORK_JOIN_DYNAMIC",
        "EXCLUSIVE_JOIN",
        "DYNAMIC",
        "KAFKA_PUBLISH",
        "x",
    ] {
        assert_eq!(
            read(&workflow(&[task("a", unsupported)])),
            Err(DefinitionError::Unsupported {
                reference_name: "a".into(),
                task_type: unsupported.into()
            })
        );
    }
}

#[test]
fn malformed_documents_are_typed_errors() {
    let shape = |json: &str| match read(json) {
        Err(DefinitionError::Shape { at, problem }) => format!("{at}: {problem}"),
        other => panic!("{json}: {other:?}"),
    };
    assert!(matches!(read("{"), Err(DefinitionError::Json { .. })));
    assert!(matches!(read(""), Err(DefinitionError::Json { .. })));
    assert_eq!(shape("[]"), "definition: not a JSON object");
    assert_eq!(shape(r#"{"tasks": []}"#), "definition: no name");
    assert_eq!(
        shape(r#"{"name": 1, "tasks": []}"#),
        "definition: name is not a string"
    );
    assert_eq!(shape(r#"{"name": "w"}"#), "definition: no tasks");
    assert_eq!(
        shape(r#"{"name": "w", "tasks": {}}"#),
        "definition: tasks is not an array"
    );
    assert_eq!(
        shape(r#"{"name": "w", "version": -1, "tasks": []}"#),
        "definition: version is not a small non-negative integer"
    );
    assert_eq!(
        shape(r#"{"name": "w", "tasks": [1]}"#),
        "tasks[0]: not a JSON object"
    );
    assert_eq!(
        shape(r#"{"name": "w", "tasks": [{"name": "a"}]}"#),
        "tasks[0]: no taskReferenceName"
    );
    assert_eq!(
        shape(r#"{"name": "w", "tasks": [{"taskReferenceName": "a", "optional": "yes"}]}"#),
        "tasks[0] (a): optional is not a boolean"
    );
    assert_eq!(
        shape(
            r#"{"name": "w", "tasks": [{"taskReferenceName": "f", "type": "FORK_JOIN", "forkTasks": [{}]}]}"#
        ),
        "tasks[0] (f): forkTasks is not an array of arrays"
    );
    assert_eq!(
        shape(r#"{"name": "w", "tasks": [{"taskReferenceName": "s", "type": "SUB_WORKFLOW"}]}"#),
        "tasks[0] (s): no subWorkflowParam"
    );
    assert_eq!(
        shape(
            r#"{"name": "w", "tasks": [{"taskReferenceName": "l", "type": "DO_WHILE",
            "loopOver": [{"taskReferenceName": "x", "retryCount": 4294967296}]}]}"#
        ),
        "tasks[0].loopOver[0] (x): retryCount is not a small non-negative integer"
    );
}

#[test]
fn absurd_sizes_and_depths_do_not_panic() {
    // Forks nested far deeper than any definition: serde_json's recursion limit refuses it.
    let mut json = String::from(r#"{"taskReferenceName": "leaf"}"#);
    for depth in 0..5_000 {
        json = format!(
            r#"{{"taskReferenceName": "f{depth}", "type": "FORK_JOIN", "forkTasks": [[{json}]]}}"#
        );
    }
    let json = format!(r#"{{"name": "deep", "tasks": [{json}]}}"#);
    assert!(matches!(read(&json), Err(DefinitionError::Json { .. })));
    // 100,000 tasks read, and a duplicate among them is found.
    let tasks: Vec<String> = (0..100_000)
        .map(|n| task(&format!("t{n}"), "SIMPLE"))
        .collect();
    let definition = read(&workflow(&tasks)).expect("a long definition");
    assert_eq!(definition.all_tasks().len(), 100_000);
    let mut tasks = tasks;
    tasks.push(task("t77", "WAIT"));
    assert!(matches!(
        read(&workflow(&tasks)),
        Err(DefinitionError::DuplicateReferenceName { ref reference_name }) if reference_name == "t77"
    ));
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/conductor/definitions")
        .join(name)
}

fn wfstate_check(file: &Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_wfstate"))
        .args(["check", "--definition"])
        .arg(file)
        .args(extra)
        .output()
        .expect("the binary runs")
}

/// The issue's example: a JOIN on a task of a SWITCH case that was not taken is reported with
/// exit 1, the reason and its trace; the same check with the case always taken is clean.
#[test]
fn check_definition_reports_a_join_on_an_untaken_case() {
    let file = fixture("findings/join_on_untaken_switch_case.json");
    let output = wfstate_check(&file, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FINDING: stuck: RUNNING, nothing live, the decider waits: JOIN join waits on fly, which was never scheduled"),
        "{stdout}"
    );
    assert!(
        stdout.contains("choices: route=default") || stdout.contains("choices: defaults"),
        "{stdout}"
    );
    assert!(stdout.contains("breaks \"no stuck workflow\""), "{stdout}");
    // The trace: numbered steps, the last one leaving drive and pack COMPLETED and fly absent.
    let steps: Vec<&str> = stdout
        .lines()
        .filter(|line| {
            line.trim_start()
                .split('.')
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .collect();
    let last = steps.last().expect("a trace");
    assert!(
        last.contains("drive#0=COMPLETED") && last.contains("pack#0=COMPLETED"),
        "{last}"
    );
    assert!(!last.contains("fly#"), "{last}");
    // Each step is a whole operation, named by what it did; a worker by its task.
    assert_eq!(steps.len(), 6, "{stdout}");
    assert!(
        steps[0].contains("sweeper 0   sweep: schedules drive#0"),
        "{stdout}"
    );
    assert!(
        steps[2].contains("worker drive poll: drive#0 IN_PROGRESS"),
        "{stdout}"
    );
    assert!(
        steps[3].contains("worker drive work, report COMPLETED"),
        "{stdout}"
    );

    let json = wfstate_check(&file, &["--json"]);
    assert_eq!(json.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON output");
    assert_eq!(value["verdict"], "finding");
    assert_eq!(value["report"]["finding"]["property"], "no stuck workflow");
}

#[test]
fn check_definition_exits_0_clean_and_2_unsupported() {
    let clean = wfstate_check(&fixture("simple_switch_task_integration_test.json"), &[]);
    let stdout = String::from_utf8_lossy(&clean.stdout);
    assert_eq!(clean.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(": clean: "), "{stdout}");
    let unsupported = wfstate_check(&fixture("workflow_that_starts_another_workflow.json"), &[]);
    assert_eq!(unsupported.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unsupported.stdout)
        .contains("not checked: task st: type START_WORKFLOW is not supported"));
    let missing = wfstate_check(&fixture("no-such-file.json"), &[]);
    assert_eq!(missing.status.code(), Some(2));
    let usage = wfstate_check(
        &fixture("simple_switch_task_integration_test.json"),
        &["--iterations", "x"],
    );
    assert_eq!(usage.status.code(), Some(2));
    // No cap is not a cap of 0: refused. A repeated option takes its last value.
    let clean = fixture("simple_switch_task_integration_test.json");
    assert_eq!(
        wfstate_check(&clean, &["--max-states", "0"]).status.code(),
        Some(2)
    );
    let repeated = wfstate_check(&clean, &["--iterations", "3", "--iterations", "1"]);
    let stdout = String::from_utf8_lossy(&repeated.stdout);
    assert_eq!(repeated.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("(iterations 1,"), "{stdout}");
}

/// A run the state cap stopped explored only part of the space: it is no verdict, never clean.
/// (stateright's cap counts generated states; an earlier version compared unique ones and
/// called a truncated run clean.)
#[test]
fn a_check_stopped_by_the_state_cap_has_no_verdict() {
    use wfstate_models::model::{check_definition, Bounds, Unchecked};
    let text = std::fs::read(fixture("fork_join_integration_test.json")).unwrap();
    let definition = WorkflowDefinition::from_slice(&text).unwrap();
    let capped = Bounds {
        max_states: 50,
        ..Bounds::default()
    };
    assert!(matches!(
        check_definition(&definition, &capped, 1),
        Err(Unchecked::TooManyStates { max_states: 50, .. })
    ));
    let report = check_definition(&definition, &Bounds::default(), 1).expect("checked");
    assert!(report.finding.is_none());
    assert_eq!((report.combinations, report.of), (1, 1));
    assert!(report.states > 50);
}

/// The table of `docs/definitions.md`: one row per real definition with its verdict, the
/// combinations of choices and the unique states checked. The checks run here with the default
/// bounds on one checker thread, so a finding's count (the search stops at it) is the same on
/// every run; the seconds column is not compared. On a difference the message holds the table
/// as this run measured it.
#[test]
fn every_real_definition_has_the_verdict_docs_definitions_md_lists() {
    use wfstate_models::cli::definition::{verdict, Verdict};
    use wfstate_models::model::Bounds;

    let mut measured = Vec::new();
    let mut table = String::from(
        "| file | verdict | combinations | states | seconds |\n|---|---|---:|---:|---:|\n",
    );
    for path in definitions() {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let (verdict, report) = verdict(&path, &Bounds::default(), 1);
        let text = match &verdict {
            Verdict::Clean => String::from("clean"),
            Verdict::Finding(reason) => format!("finding: {reason}"),
            Verdict::Unchecked(reason) => format!("not checked: {reason}"),
        }
        .replace('|', "\\|");
        let (combinations, states, seconds) = match &report {
            Some(report) => (
                format!("{} of {}", report.combinations, report.of),
                report.states.to_string(),
                format!("{:.2}", report.seconds),
            ),
            None => (String::from("-"), String::from("-"), String::from("-")),
        };
        table.push_str(&format!(
            "| `{file}` | {text} | {combinations} | {states} | {seconds} |\n"
        ));
        measured.push([format!("`{file}`"), text, combinations, states]);
    }
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/definitions.md"),
    )
    .expect("docs/definitions.md");
    let documented: Vec<[String; 4]> = docs
        .lines()
        .filter(|line| line.starts_with("| `") && line.contains(".json` |"))
        .map(|line| {
            // Split on the cells' `|`, not on an escaped `\|` inside a reason.
            let cells: Vec<String> = line
                .replace("\\|", "\u{0}")
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().replace('\u{0}', "\\|"))
                .collect();
            [0, 1, 2, 3].map(|index| cells.get(index).cloned().unwrap_or_default())
        })
        .collect();
    assert!(
        documented == measured,
        "docs/definitions.md's table differs from the checks; as measured now:\n{table}"
    );
    let count = |prefix: &str| {
        measured
            .iter()
            .filter(|row| row[1].starts_with(prefix))
            .count()
    };
    assert_eq!(measured.len(), 62);
    assert!(count("clean") >= 30, "the issue's floor");
    assert_eq!(
        (count("clean"), count("finding"), count("not checked")),
        (58, 1, 3)
    );
}

/// The console example of `docs/definitions.md` ("Reading a finding") is what the command
/// prints, apart from the seconds.
#[test]
fn the_documented_finding_is_what_the_command_prints() {
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/definitions.md"),
    )
    .expect("docs/definitions.md");
    let command = "$ wfstate check --definition ";
    let block = docs
        .split("```console\n")
        .find_map(|rest| rest.strip_prefix(command))
        .and_then(|rest| rest.split("```").next())
        .expect("the console example");
    let (file, documented) = block.split_once('\n').expect("a command line");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wfstate"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(["check", "--definition", file])
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(1));
    // The seconds ("736 states, 0.0 s") vary from run to run.
    let seconds = |text: &str| -> String {
        text.lines()
            .map(|line| match line.find(" states, ") {
                Some(at) => {
                    let rest = &line[at + " states, ".len()..];
                    let unit = rest.find(" s ").map_or(0, |end| end);
                    format!("{} states, _{}", &line[..at], &rest[unit..])
                }
                None => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(seconds(printed.trim_end()), seconds(documented.trim_end()));
}
