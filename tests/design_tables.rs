//! The operation machines' tables (SPEC section 7.1; `docs/design.md`, "Operations as state
//! machines") cannot drift from the code.
//!
//! Each machine's `| state | call | reply → next |` table lives in the `//!` docs of its module in
//! `src/runtime/op/` and is copied into `docs/design.md`. This file checks that:
//!
//! 1. every table in `docs/design.md` equals, row by row, the table in the module docs (and no
//!    table is missing on either side);
//! 2. driving every machine through the public API alone, over `InMemoryStore` wrapped in a store
//!    that can fail a chosen call (`NotDone`: not forwarded; `Ambiguous`: forwarded, its reply
//!    lost) or let the world change just before it (another holder's lease, a stale decider
//!    entry, a concurrent commit, a workflow gone), each (state before the call, call) pair a
//!    machine shows is a row of its table, and every row is shown at least once;
//! 3. the state a machine moves to after each reply is one the row names in its third column, and
//!    every state the third column names is reached from that row at least once.
//!
//! The scenarios reach every row on purpose: Busy hand-back, unknown workflow, stale decider
//! entry, commit conflicts up to `Contention` (`EngineConfig::max_attempts` is 2 here), poll
//! redelivery, a stale task entry dropped, a start the core refuses, handler failures in the
//! outbox. Each scenario's own outcome is checked too, and every store call of its unfailed run
//! is then failed in turn, with both failure kinds.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::{Mutex, OnceLock};

use wfstate::runtime::{
    AdminOp, Call, CallKind, Decider, EngineConfig, InMemoryStore, InspectOp, LeaseToken, Next,
    Operation, OutboxEntry, OutboxOp, PollOp, Reply, ReportOp, StartOp, Store, StoreFailure,
    StoreState, SweepOp,
};
use wfstate::{
    AdminInput, Decision, Definition, EngineInput, Input, Report, ReportStatus, Task,
    TaskDefinition, TaskId, TaskStatus, Workflow, WorkflowId, WorkflowStatus,
};

/// The header every machine table has.
const HEADER: &str = "| state | call | reply → next |";
/// The call column of the outbox's `Perform` row: the driver's effect handler, not a store call.
const PERFORM: &str = "(effect handler)";
/// The state every machine ends in; it makes no call, so it has no row.
const DONE: &str = "Done";

/// One machine, where its table is in the module docs, and how `docs/design.md` heads it.
#[derive(Debug, Clone, Copy)]
struct Machine {
    /// The name observations are recorded under.
    name: &'static str,
    /// The op module holding its table.
    file: &'static str,
    /// Which of that module's tables it is.
    index: usize,
    /// The type, named in backticks in the `docs/design.md` heading over its table.
    op_type: &'static str,
}

const MACHINES: [Machine; 7] = [
    Machine {
        name: "Sweep",
        file: "sweep.rs",
        index: 0,
        op_type: "SweepOp",
    },
    Machine {
        name: "Report",
        file: "write.rs",
        index: 0,
        op_type: "ReportOp",
    },
    Machine {
        name: "Poll",
        file: "write.rs",
        index: 1,
        op_type: "PollOp",
    },
    Machine {
        name: "Admin",
        file: "admin.rs",
        index: 0,
        op_type: "AdminOp",
    },
    Machine {
        name: "Start",
        file: "admin.rs",
        index: 1,
        op_type: "StartOp",
    },
    Machine {
        name: "Inspect",
        file: "admin.rs",
        index: 2,
        op_type: "InspectOp",
    },
    Machine {
        name: "Outbox",
        file: "outbox.rs",
        index: 0,
        op_type: "OutboxOp",
    },
];

/// Transitions the code makes that its table does not name: (machine, state, next state). Each is
/// a documentation bug reported to the module's owner; the test fails once the table names it,
/// so the entry is removed then.
const UNDOCUMENTED: [(&str, &str, &str); 0] = [];

// ---------------------------------------------------------------------------------------------
// The tables.

#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    state: String,
    call: String,
    next: String,
}

impl Row {
    fn parse(line: &str) -> Row {
        let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
        let cells: Vec<&str> = inner.split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 3, "a table row has three cells: {line}");
        Row {
            state: cells[0].to_owned(),
            call: cells[1].to_owned(),
            next: cells[2].to_owned(),
        }
    }

    /// The states the third column names after its arrows (`missing → Drop(Unknown); ...`),
    /// among `states`.
    fn targets(&self, states: &BTreeSet<String>) -> BTreeSet<String> {
        let mut targets = BTreeSet::new();
        for clause in self.next.split(';') {
            let (_, after) = clause
                .split_once('→')
                .unwrap_or_else(|| panic!("clause {clause:?} of row {self:?} has no arrow"));
            let words = after.split(|c: char| !(c.is_alphanumeric() || c == '_'));
            targets.extend(
                words
                    .filter(|word| states.contains(*word))
                    .map(str::to_owned),
            );
        }
        targets
    }
}

/// A machine table and the text just above it.
#[derive(Debug)]
struct Table {
    label: String,
    rows: Vec<Row>,
}

/// Every `state | call | reply → next` table of a markdown text. `label` names a table by the
/// lines above it.
fn tables(markdown: &[String], label: impl Fn(&[String], usize) -> String) -> Vec<Table> {
    let mut found = Vec::new();
    let mut line = 0;
    while line < markdown.len() {
        if markdown[line].trim() != HEADER {
            line += 1;
            continue;
        }
        let separator = markdown.get(line + 1).map(|s| s.trim());
        assert_eq!(
            separator,
            Some("|---|---|---|"),
            "separator after line {line}"
        );
        let mut rows = Vec::new();
        let mut next = line + 2;
        while next < markdown.len() && markdown[next].trim_start().starts_with('|') {
            rows.push(Row::parse(&markdown[next]));
            next += 1;
        }
        found.push(Table {
            label: label(markdown, line),
            rows,
        });
        line = next;
    }
    found
}

/// The paragraph just above line `at`, blank lines skipped (module docs name their tables
/// "Report:", "Poll:", ...).
fn paragraph_above(lines: &[String], at: usize) -> String {
    let text = |line: &String| !line.trim().is_empty() && !line.trim_start().starts_with('|');
    let mut end = at;
    while end > 0 && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    let mut begin = end;
    while begin > 0 && text(&lines[begin - 1]) {
        begin -= 1;
    }
    lines[begin..end].join(" ")
}

/// The nearest markdown heading above line `at`, outside fenced code blocks (where `#` starts a
/// hidden doctest line).
fn heading_above(lines: &[String], at: usize) -> String {
    let mut heading = String::new();
    let mut in_code = false;
    for line in &lines[..at] {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            heading = line.clone();
        }
    }
    heading
}

fn read(relative: &str) -> String {
    let path = format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// The `//!` docs of an op module, as markdown lines.
fn module_docs(file: &str) -> Vec<String> {
    read(&format!("src/runtime/op/{file}"))
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("//!"))
        .map(|line| line.strip_prefix(' ').unwrap_or(line).to_owned())
        .collect()
}

/// Each machine's table as its module docs have it, checked to be the one meant: every table of
/// `src/runtime/op/*.rs` belongs to exactly one machine, labelled with its name.
fn module_tables() -> BTreeMap<&'static str, Vec<Row>> {
    let directory = format!("{}/src/runtime/op", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("{directory}: {error}"))
        .map(|entry| entry.expect("a directory entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".rs"))
        .collect();
    files.sort();
    let mut by_machine = BTreeMap::new();
    for file in &files {
        let found = tables(&module_docs(file), paragraph_above);
        let machines: Vec<&Machine> = MACHINES.iter().filter(|m| m.file == file).collect();
        assert_eq!(
            found.len(),
            machines.len(),
            "src/runtime/op/{file} has {} machine tables, this test knows {}: add the new machine \
             to MACHINES and its table to docs/design.md",
            found.len(),
            machines.len()
        );
        for machine in machines {
            let table = &found[machine.index];
            assert!(
                table
                    .label
                    .to_lowercase()
                    .contains(&machine.name.to_lowercase()),
                "table {} of src/runtime/op/{file} should be the {} machine's, its label is {:?}",
                machine.index,
                machine.name,
                table.label
            );
            by_machine.insert(machine.name, table.rows.clone());
        }
    }
    by_machine
}

/// Each machine's table as `docs/design.md` has it, found by the op type its heading names.
fn design_tables() -> BTreeMap<&'static str, Vec<Row>> {
    let lines: Vec<String> = read("docs/design.md").lines().map(str::to_owned).collect();
    let found = tables(&lines, heading_above);
    let mut by_machine = BTreeMap::new();
    for table in &found {
        let owners: Vec<&Machine> = MACHINES
            .iter()
            .filter(|m| table.label.contains(&format!("`{}`", m.op_type)))
            .collect();
        assert_eq!(
            owners.len(),
            1,
            "the heading over a machine table in docs/design.md names exactly one of the op \
             types in backticks: {:?}",
            table.label
        );
        let previous = by_machine.insert(owners[0].name, table.rows.clone());
        assert!(
            previous.is_none(),
            "two {} tables in docs/design.md",
            owners[0].name
        );
    }
    by_machine
}

/// The states of a machine: the first column, and `Done`.
fn states(rows: &[Row]) -> BTreeSet<String> {
    let mut states: BTreeSet<String> = rows.iter().map(|row| row.state.clone()).collect();
    states.insert(DONE.to_owned());
    states
}

/// The `docs/design.md` tables are the module docs' tables, verbatim (STYLE: anything the docs
/// show that the code holds is checked by a test).
#[test]
fn design_doc_tables_equal_the_op_module_tables() {
    let modules = module_tables();
    let design = design_tables();
    for machine in MACHINES {
        let source = format!("src/runtime/op/{}", machine.file);
        let expected = &modules[machine.name];
        let Some(documented) = design.get(machine.name) else {
            panic!(
                "docs/design.md has no table for {} (a heading naming `{}` over a copy of the \
                 table in {source})",
                machine.name, machine.op_type
            );
        };
        for (number, (code, doc)) in expected.iter().zip(documented).enumerate() {
            assert!(
                code == doc,
                "{} table, row {}: docs/design.md has\n  {doc:?}\nbut {source} has\n  {code:?}",
                machine.name,
                number + 1
            );
        }
        assert_eq!(
            documented.len(),
            expected.len(),
            "{} table: docs/design.md has {} rows, {source} has {}",
            machine.name,
            documented.len(),
            expected.len()
        );
    }
    assert_eq!(
        design.len(),
        MACHINES.len(),
        "docs/design.md has a table of no known machine"
    );
}

// ---------------------------------------------------------------------------------------------
// The store.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Not forwarded: the call certainly did not happen.
    NotDone,
    /// Forwarded, then its reply is lost: the call happened, the caller cannot know.
    Ambiguous,
}

impl Fault {
    fn failure(self) -> StoreFailure {
        match self {
            Fault::NotDone => StoreFailure::not_done("injected"),
            Fault::Ambiguous => StoreFailure::ambiguous("injected"),
        }
    }
}

/// Something else happens to the store just before a call reaches it.
type Interference = fn(&mut StoreState);

/// What happens at the `nth` call (from 0) of `kind` in one operation.
#[derive(Debug, Clone, Copy)]
enum Action {
    Fail(Fault),
    Interfere(Interference),
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    kind: CallKind,
    nth: usize,
    action: Action,
}

fn fail(kind: CallKind, nth: usize, fault: Fault) -> Rule {
    Rule {
        kind,
        nth,
        action: Action::Fail(fault),
    }
}

fn before(kind: CallKind, nth: usize, interference: Interference) -> Rule {
    Rule {
        kind,
        nth,
        action: Action::Interfere(interference),
    }
}

#[derive(Debug, Default)]
struct Armed {
    rules: Vec<Rule>,
    /// The calls seen since armed, in order.
    trace: Vec<CallKind>,
    /// Rules that fired (by index).
    fired: BTreeSet<usize>,
}

/// `InMemoryStore` that fails a chosen call or lets the world change just before it.
#[derive(Debug)]
struct TestStore {
    inner: Mutex<InMemoryStore>,
    armed: Mutex<Armed>,
}

impl TestStore {
    fn new() -> Self {
        TestStore {
            inner: Mutex::new(InMemoryStore::new()),
            armed: Mutex::new(Armed::default()),
        }
    }

    /// Changes the state outside any operation (another process, time, a backup restored).
    fn change(&self, change: impl FnOnce(&mut StoreState)) {
        let mut inner = self.inner.lock().expect("store");
        let mut state = inner.snapshot();
        change(&mut state);
        *inner = InMemoryStore::from_state(state);
    }

    fn arm(&self, rules: Vec<Rule>) {
        *self.armed.lock().expect("armed") = Armed {
            rules,
            ..Armed::default()
        };
    }

    /// Ends the window: the calls seen and whether every rule fired.
    fn disarm(&self) -> (Vec<CallKind>, bool) {
        let armed = std::mem::take(&mut *self.armed.lock().expect("armed"));
        let all_fired = armed.fired.len() == armed.rules.len();
        (armed.trace, all_fired)
    }
}

impl Store for TestStore {
    fn call(&self, call: Call<'_>) -> Result<Reply, StoreFailure> {
        let kind = call.kind();
        let actions: Vec<Action> = {
            let mut armed = self.armed.lock().expect("armed");
            let nth = armed.trace.iter().filter(|seen| **seen == kind).count();
            armed.trace.push(kind);
            let matching: Vec<usize> = (0..armed.rules.len())
                .filter(|&i| armed.rules[i].kind == kind && armed.rules[i].nth == nth)
                .collect();
            armed.fired.extend(matching.iter().copied());
            matching.iter().map(|&i| armed.rules[i].action).collect()
        };
        let mut fault = None;
        for action in actions {
            match action {
                Action::Interfere(interference) => self.change(interference),
                Action::Fail(injected) => fault = Some(injected),
            }
        }
        if fault == Some(Fault::NotDone) {
            return Err(Fault::NotDone.failure());
        }
        let reply = self.inner.lock().expect("store").call(call)?;
        match fault {
            Some(injected) => Err(injected.failure()),
            None => Ok(reply),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The driver and the world it drives.

/// One observed step of a machine: the state before the call, the call, the state after.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    machine: &'static str,
    from: &'static str,
    call: &'static str,
    to: &'static str,
}

/// The name a machine's observations are recorded under.
trait Named {
    const NAME: &'static str;
}

impl Named for SweepOp {
    const NAME: &'static str = "Sweep";
}
impl Named for ReportOp {
    const NAME: &'static str = "Report";
}
impl Named for PollOp<'_> {
    const NAME: &'static str = "Poll";
}
impl Named for AdminOp {
    const NAME: &'static str = "Admin";
}
impl Named for StartOp {
    const NAME: &'static str = "Start";
}
impl Named for InspectOp {
    const NAME: &'static str = "Inspect";
}
impl Named for OutboxOp {
    const NAME: &'static str = "Outbox";
}

const AT: u64 = 10;
const OWNER: u64 = 0x7e57;
const WORKFLOW: &str = "order";
const FETCH: &str = "fetch";

fn config() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.lease_ms = 1_000;
    config.sweep_delay_ms = 100;
    config.unack_ms = 500;
    config.task_visibility_ms = 700;
    config.outbox_claim_ms = 300;
    config.max_attempts = 2;
    config
}

fn definition() -> Definition {
    Definition::new([TaskDefinition::new(FETCH), TaskDefinition::new("ship")])
}

fn order() -> WorkflowId {
    WorkflowId::new(WORKFLOW)
}

fn fetch() -> TaskId {
    TaskId::attempt(&order(), FETCH, 0)
}

/// A store and everything its machines were seen doing.
struct World {
    store: TestStore,
    config: EngineConfig,
    definition: Definition,
    serial: RefCell<u64>,
    seen: RefCell<BTreeSet<Seen>>,
}

impl World {
    fn new() -> Self {
        World {
            store: TestStore::new(),
            config: config(),
            definition: definition(),
            serial: RefCell::new(0),
            seen: RefCell::new(BTreeSet::new()),
        }
    }

    fn token(&self) -> LeaseToken {
        let mut serial = self.serial.borrow_mut();
        *serial += 1;
        LeaseToken::new(OWNER, *serial)
    }

    /// The driver loop: each call the machine yields goes to the store, each reply back to it;
    /// an effect goes to `perform`. Records every step.
    fn drive<O: Operation + Named>(
        &self,
        mut op: O,
        decider: &dyn Decider,
        perform: &mut dyn FnMut(&OutboxEntry) -> bool,
    ) -> O::Output {
        for _ in 0..64 {
            let from = op.state_name();
            let (call, reply) = match op.next() {
                Next::Call(call) => (call.kind().name(), self.store.call(call)),
                Next::Perform(entry) => (PERFORM, Ok(Reply::Performed(perform(entry)))),
                Next::Done => {
                    return op
                        .finish()
                        .expect("an operation that is Done has an output")
                }
            };
            op.resume(reply, decider);
            self.seen.borrow_mut().insert(Seen {
                machine: O::NAME,
                from,
                call,
                to: op.state_name(),
            });
        }
        panic!("{} made more than 64 calls", O::NAME);
    }

    fn run<O: Operation + Named>(&self, op: O) -> O::Output {
        self.drive(op, &self.definition, &mut |_| true)
    }

    fn start(&self, now_ms: u64) -> Outcome {
        outcome(&self.run(StartOp::new(order(), now_ms)))
    }

    fn sweep(&self, now_ms: u64) -> Outcome {
        outcome(&self.run(SweepOp::new(self.token(), now_ms, &self.config)))
    }

    fn sweep_with(&self, decider: &dyn Decider, now_ms: u64) -> Outcome {
        let op = SweepOp::new(self.token(), now_ms, &self.config);
        outcome(&self.drive(op, decider, &mut |_| true))
    }

    fn report(&self, id: WorkflowId, task: TaskId, status: ReportStatus) -> Outcome {
        let op = ReportOp::new(id, Report::new(task, status), AT, &self.config);
        outcome(&self.run(op))
    }

    fn poll(&self, reference_name: &str, now_ms: u64) -> Outcome {
        outcome(&self.run(PollOp::new(reference_name, now_ms, &self.config)))
    }

    fn admin(&self, id: WorkflowId, input: Input) -> Outcome {
        outcome(&self.run(AdminOp::new(id, input, self.token(), AT, &self.config)))
    }

    fn inspect(&self, id: WorkflowId) -> Outcome {
        outcome(&self.run(InspectOp::new(id, self.token(), AT, &self.config)))
    }

    /// An outbox pass whose handler succeeds on the entries `succeeds` accepts.
    fn outbox(&self, succeeds: fn(usize) -> bool) -> Outcome {
        let op = OutboxOp::new(AT, self.config.outbox_claim_ms, 16);
        let mut performed = 0;
        let mut perform = |_: &OutboxEntry| {
            performed += 1;
            succeeds(performed - 1)
        };
        let pass = self.drive(op, &self.definition, &mut perform);
        Outcome {
            error: pass.store_failure.is_some(),
            debug: format!("{pass:?}"),
        }
    }
}

/// What an operation returned, for the scenarios' checks.
#[derive(Debug)]
struct Outcome {
    error: bool,
    debug: String,
}

fn outcome<T: Debug, E: Debug>(result: &Result<T, E>) -> Outcome {
    Outcome {
        error: result.is_err(),
        debug: format!("{result:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Changes to the store made by someone else.

/// Another engine instance's token.
fn stranger() -> LeaseToken {
    LeaseToken::new(0xbad, 1)
}

/// Another holder takes the lease on the workflow.
fn held_by_another(state: &mut StoreState) {
    let id = order();
    let call = Call::Acquire {
        id: &id,
        token: stranger(),
        lease_ms: 1_000,
        now_ms: 0,
    };
    assert!(matches!(state.execute(call), Reply::Acquired(Ok(_))));
}

/// The workflow as stored, rebuilt with `change` applied to its tasks, `status` and one version
/// more (a concurrent commit, or a state restored from elsewhere).
fn rewrite(state: &mut StoreState, status: Option<WorkflowStatus>, change: fn(&mut Vec<Task>)) {
    let stored = state.workflow(&order()).expect("the workflow is stored");
    let mut tasks = stored.tasks().to_vec();
    change(&mut tasks);
    let status = status.unwrap_or(stored.status());
    let workflow = Workflow::from_parts(order(), status, stored.version() + 1, tasks)
        .expect("no duplicate task ids");
    state.overwrite(workflow);
}

/// Someone committed since the operation read: same contents, the version moved (I4).
fn concurrent_commit(state: &mut StoreState) {
    rewrite(state, None, |_| {});
}

/// The workflow is gone (deleted or archived elsewhere) and so is everything else.
fn gone(state: &mut StoreState) {
    *state = StoreState::new();
}

/// `fetch` ended elsewhere, but its task-queue entry stayed: a stale entry.
fn fetch_ended_elsewhere(state: &mut StoreState) {
    rewrite(state, None, |tasks| tasks[0].status = TaskStatus::Completed);
}

/// A broken state loaded from elsewhere: TERMINATED with `fetch` still SCHEDULED (I1), which the
/// core refuses to start.
fn terminated_with_fetch_scheduled(state: &mut StoreState) {
    rewrite(state, Some(WorkflowStatus::Terminated), |_| {});
}

/// A decider-queue entry for a workflow the store does not have.
fn entry_without_workflow(state: &mut StoreState) {
    state.push_to_decider(&WorkflowId::new("ghost"), 0);
}

/// The workflow's decider-queue entry back, though it is not RUNNING (a late queue update after a
/// lease expiry).
fn stale_decider_entry(state: &mut StoreState) {
    state.push_to_decider(&order(), 0);
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

struct Scenario {
    name: &'static str,
    /// The state to start from, made by earlier operations (their steps are recorded too) and
    /// changes from outside.
    setup: fn(&World),
    /// Store rules for the run.
    rules: fn() -> Vec<Rule>,
    /// The operation.
    run: fn(&World) -> Outcome,
    /// A piece of the unfailed run's `Debug` output.
    expect: &'static str,
}

fn none() -> Vec<Rule> {
    Vec::new()
}

fn started(world: &World) {
    assert!(!world.start(0).error);
}

/// Started, and `fetch` scheduled by a sweep.
fn scheduled(world: &World) {
    started(world);
    assert!(world.sweep(0).debug.contains("Applied"));
}

/// `fetch` polled (IN_PROGRESS), then the workflow terminated: the outbox owes listener
/// notifications, the archive and the stop signal.
fn owing(world: &World) {
    scheduled(world);
    assert!(world.poll(FETCH, 0).debug.contains("Some"));
    assert!(world
        .admin(order(), AdminInput::Terminate.into())
        .debug
        .contains("Ok"));
}

fn twice(interference: Interference) -> Vec<Rule> {
    vec![
        before(CallKind::Commit, 0, interference),
        before(CallKind::Commit, 1, interference),
    ]
}

fn scenarios() -> Vec<Scenario> {
    use CallKind::{Commit, Load};
    vec![
        // Start.
        Scenario {
            name: "start",
            setup: |_| {},
            rules: none,
            run: |w| w.start(AT),
            expect: "Ok(())",
        },
        Scenario {
            name: "start an id in use",
            setup: started,
            rules: none,
            run: |w| w.start(AT),
            expect: "WorkflowExists",
        },
        // Sweep.
        Scenario {
            name: "sweep an empty queue",
            setup: |_| {},
            rules: none,
            run: |w| w.sweep(AT),
            expect: "Ok(Empty)",
        },
        Scenario {
            name: "sweep schedules",
            setup: started,
            rules: none,
            run: |w| w.sweep(AT),
            expect: "Applied",
        },
        Scenario {
            name: "sweep waits on a live task",
            setup: scheduled,
            rules: none,
            run: |w| w.sweep(AT),
            expect: "Waiting",
        },
        Scenario {
            name: "sweep finds the lease held and hands the entry back",
            setup: |w| {
                started(w);
                w.store.change(held_by_another);
            },
            rules: none,
            run: |w| w.sweep(AT),
            expect: "Busy",
        },
        Scenario {
            name: "sweep an entry of an unknown workflow",
            setup: |w| w.store.change(entry_without_workflow),
            rules: none,
            run: |w| w.sweep(AT),
            expect: "Unknown",
        },
        Scenario {
            name: "sweep a stale entry of a paused workflow",
            setup: |w| {
                started(w);
                assert!(!w.admin(order(), AdminInput::Pause.into()).error);
                w.store.change(stale_decider_entry);
            },
            rules: none,
            run: |w| w.sweep(AT),
            expect: "Dequeued",
        },
        Scenario {
            name: "sweep with a decision the core rejects",
            setup: started,
            rules: none,
            run: |w| {
                let unknown = |_: &Workflow| {
                    Decision::Act(EngineInput::Start {
                        task: TaskId::new("nope"),
                    })
                };
                w.sweep_with(&unknown, AT)
            },
            expect: "Rejected",
        },
        Scenario {
            name: "sweep whose commits all conflict",
            setup: started,
            rules: || twice(concurrent_commit),
            run: |w| w.sweep(AT),
            expect: "Contention",
        },
        Scenario {
            name: "sweep whose workflow is gone at the commit",
            setup: started,
            rules: || vec![before(Commit, 0, gone)],
            run: |w| w.sweep(AT),
            expect: "Unknown",
        },
        // Report.
        Scenario {
            name: "report ends a task",
            setup: scheduled,
            rules: none,
            run: |w| w.report(order(), fetch(), ReportStatus::Completed),
            expect: "Applied",
        },
        Scenario {
            name: "report redelivered",
            setup: |w| {
                scheduled(w);
                let first = w.report(order(), fetch(), ReportStatus::Completed);
                assert!(!first.error);
            },
            rules: none,
            run: |w| w.report(order(), fetch(), ReportStatus::Completed),
            expect: "Duplicate",
        },
        Scenario {
            name: "report on an unknown workflow",
            setup: |_| {},
            rules: none,
            run: |w| w.report(order(), fetch(), ReportStatus::Completed),
            expect: "UnknownWorkflow",
        },
        Scenario {
            name: "report the core rejects",
            setup: started,
            rules: none,
            run: |w| w.report(order(), TaskId::new("nope"), ReportStatus::Completed),
            expect: "Rejected",
        },
        Scenario {
            name: "report whose commits all conflict",
            setup: scheduled,
            rules: || twice(concurrent_commit),
            run: |w| w.report(order(), fetch(), ReportStatus::Completed),
            expect: "Contention",
        },
        Scenario {
            name: "report whose workflow is gone at the commit",
            setup: scheduled,
            rules: || vec![before(Commit, 0, gone)],
            run: |w| w.report(order(), fetch(), ReportStatus::Completed),
            expect: "UnknownWorkflow",
        },
        // Poll.
        Scenario {
            name: "poll a queue with nothing visible",
            setup: scheduled,
            rules: none,
            run: |w| w.poll("ship", AT),
            expect: "Ok(None)",
        },
        Scenario {
            name: "poll starts the attempt",
            setup: scheduled,
            rules: none,
            run: |w| w.poll(FETCH, AT),
            expect: "redelivered: false",
        },
        Scenario {
            name: "poll redelivers an attempt whose worker went quiet",
            setup: |w| {
                scheduled(w);
                assert!(w.poll(FETCH, 0).debug.contains("Some"));
            },
            rules: none,
            run: |w| w.poll(FETCH, config().task_visibility_ms + 1),
            expect: "redelivered: true",
        },
        Scenario {
            name: "poll drops a stale entry",
            setup: |w| {
                scheduled(w);
                w.store.change(fetch_ended_elsewhere);
            },
            rules: none,
            run: |w| w.poll(FETCH, AT),
            expect: "Ok(None)",
        },
        Scenario {
            name: "poll of an attempt the core refuses to start",
            setup: |w| {
                scheduled(w);
                w.store.change(terminated_with_fetch_scheduled);
            },
            rules: none,
            run: |w| w.poll(FETCH, AT),
            expect: "Ok(None)",
        },
        Scenario {
            name: "poll whose workflow is gone at the load",
            setup: scheduled,
            rules: || vec![before(Load, 0, gone)],
            run: |w| w.poll(FETCH, AT),
            expect: "Ok(None)",
        },
        Scenario {
            name: "poll whose commits all conflict",
            setup: scheduled,
            rules: || twice(concurrent_commit),
            run: |w| w.poll(FETCH, AT),
            expect: "Contention",
        },
        Scenario {
            name: "poll whose workflow is gone at the commit",
            setup: scheduled,
            rules: || vec![before(Commit, 0, gone)],
            run: |w| w.poll(FETCH, AT),
            expect: "Ok(None)",
        },
        // Admin and act.
        Scenario {
            name: "terminate",
            setup: scheduled,
            rules: none,
            run: |w| w.admin(order(), AdminInput::Terminate.into()),
            expect: "Ok(Applied",
        },
        Scenario {
            name: "act: the caller's engine input",
            setup: scheduled,
            rules: none,
            run: |w| w.admin(order(), EngineInput::CancelTask { task: fetch() }.into()),
            expect: "Ok(Applied",
        },
        Scenario {
            name: "admin finds the lease held",
            setup: |w| {
                started(w);
                w.store.change(held_by_another);
            },
            rules: none,
            run: |w| w.admin(order(), AdminInput::Pause.into()),
            expect: "Locked",
        },
        Scenario {
            name: "admin on an unknown workflow",
            setup: |_| {},
            rules: none,
            run: |w| w.admin(order(), AdminInput::Terminate.into()),
            expect: "UnknownWorkflow",
        },
        Scenario {
            name: "resume of a running workflow is a duplicate",
            setup: started,
            rules: none,
            run: |w| w.admin(order(), AdminInput::Resume.into()),
            expect: "Duplicate",
        },
        Scenario {
            name: "retry of a running workflow is rejected",
            setup: started,
            rules: none,
            run: |w| w.admin(order(), AdminInput::Retry.into()),
            expect: "Rejected",
        },
        Scenario {
            name: "admin whose commits all conflict",
            setup: started,
            rules: || twice(concurrent_commit),
            run: |w| w.admin(order(), AdminInput::Pause.into()),
            expect: "Contention",
        },
        Scenario {
            name: "admin whose workflow is gone at the commit",
            setup: started,
            rules: || vec![before(Commit, 0, gone)],
            run: |w| w.admin(order(), AdminInput::Pause.into()),
            expect: "UnknownWorkflow",
        },
        // Inspect.
        Scenario {
            name: "inspect",
            setup: started,
            rules: none,
            run: |w| w.inspect(order()),
            expect: "due_ms: Some",
        },
        Scenario {
            name: "inspect finds the lease held",
            setup: |w| {
                started(w);
                w.store.change(held_by_another);
            },
            rules: none,
            run: |w| w.inspect(order()),
            expect: "Locked",
        },
        Scenario {
            name: "inspect an unknown workflow",
            setup: |_| {},
            rules: none,
            run: |w| w.inspect(order()),
            expect: "UnknownWorkflow",
        },
        // Outbox.
        Scenario {
            name: "outbox with nothing owed",
            setup: |_| {},
            rules: none,
            run: |w| w.outbox(|_| true),
            expect: "performed: 0, failed: 0",
        },
        Scenario {
            name: "outbox performs every owed effect",
            setup: owing,
            rules: none,
            run: |w| w.outbox(|_| true),
            expect: "failed: 0, store_failure: None",
        },
        Scenario {
            name: "outbox whose first effect fails",
            setup: owing,
            rules: none,
            run: |w| w.outbox(|index| index > 0),
            expect: "failed: 1, store_failure: None",
        },
        Scenario {
            name: "outbox whose effects all fail",
            setup: owing,
            rules: none,
            run: |w| w.outbox(|_| false),
            expect: "performed: 0",
        },
    ]
}

/// Every scenario, unfailed and then with each of its calls failed in turn with both kinds:
/// the steps seen.
fn observed() -> &'static BTreeSet<Seen> {
    static OBSERVED: OnceLock<BTreeSet<Seen>> = OnceLock::new();
    OBSERVED.get_or_init(|| {
        let mut steps = BTreeSet::new();
        for scenario in scenarios() {
            let world = World::new();
            (scenario.setup)(&world);
            world.store.arm((scenario.rules)());
            let result = (scenario.run)(&world);
            let (trace, all_fired) = world.store.disarm();
            assert!(
                result.debug.contains(scenario.expect),
                "scenario {:?}: expected {:?} in {}",
                scenario.name,
                scenario.expect,
                result.debug
            );
            assert!(
                all_fired,
                "scenario {:?}: a store rule never fired",
                scenario.name
            );
            steps.append(&mut world.seen.into_inner());
            for (index, kind) in trace.iter().enumerate() {
                let nth = trace[..index].iter().filter(|seen| *seen == kind).count();
                for fault in [Fault::NotDone, Fault::Ambiguous] {
                    let world = World::new();
                    (scenario.setup)(&world);
                    let mut rules = (scenario.rules)();
                    rules.push(fail(*kind, nth, fault));
                    world.store.arm(rules);
                    let result = (scenario.run)(&world);
                    world.store.disarm();
                    assert!(
                        result.error,
                        "scenario {:?} with call {index} ({kind}) {fault:?}: no error: {}",
                        scenario.name, result.debug
                    );
                    steps.append(&mut world.seen.into_inner());
                }
            }
        }
        steps
    })
}

fn known_undocumented(step: &Seen) -> bool {
    UNDOCUMENTED
        .iter()
        .any(|&(machine, from, to)| (machine, from, to) == (step.machine, step.from, step.to))
}

/// Every (state, call) pair a machine shows is a row of its table, and every row is shown.
#[test]
fn every_machine_makes_exactly_the_calls_its_table_lists() {
    let tables = module_tables();
    let observed = observed();
    for machine in MACHINES {
        let rows = &tables[machine.name];
        let documented: BTreeSet<(&str, &str)> = rows
            .iter()
            .map(|row| (row.state.as_str(), row.call.as_str()))
            .collect();
        let seen: BTreeSet<(&str, &str)> = observed
            .iter()
            .filter(|step| step.machine == machine.name)
            .map(|step| (step.from, step.call))
            .collect();
        for pair in &seen {
            assert!(
                documented.contains(pair),
                "{}: state {} made the call {}, which its table (src/runtime/op/{}) has no row for",
                machine.name,
                pair.0,
                pair.1,
                machine.file
            );
        }
        for pair in &documented {
            assert!(
                seen.contains(pair),
                "{}: no scenario reached the row {} | {}",
                machine.name,
                pair.0,
                pair.1
            );
        }
    }
}

/// After each reply a machine moves to a state its row names, and every state a row names is
/// reached from it.
#[test]
fn every_machine_moves_only_where_its_table_says() {
    let tables = module_tables();
    let observed = observed();
    for machine in MACHINES {
        let rows = &tables[machine.name];
        let states = states(rows);
        let mut documented = BTreeSet::new();
        for row in rows {
            for target in row.targets(&states) {
                documented.insert((row.state.clone(), target));
            }
        }
        let seen: BTreeSet<(String, String)> = observed
            .iter()
            .filter(|step| step.machine == machine.name)
            .map(|step| (step.from.to_owned(), step.to.to_owned()))
            .collect();
        for step in observed.iter().filter(|step| step.machine == machine.name) {
            let edge = (step.from.to_owned(), step.to.to_owned());
            if known_undocumented(step) {
                assert!(
                    !documented.contains(&edge),
                    "{}: {} → {} is documented now: remove it from UNDOCUMENTED",
                    machine.name,
                    step.from,
                    step.to
                );
                continue;
            }
            assert!(
                documented.contains(&edge),
                "{}: after {} in state {} the machine moved to {}, which the row does not name",
                machine.name,
                step.call,
                step.from,
                step.to
            );
        }
        for (from, to) in &documented {
            assert!(
                seen.contains(&(from.clone(), to.clone())),
                "{}: no scenario moved from {from} to {to}, which its row names",
                machine.name
            );
        }
    }
    for &(machine, from, to) in &UNDOCUMENTED {
        let seen = observed
            .iter()
            .any(|step| (step.machine, step.from, step.to) == (machine, from, to));
        assert!(
            seen,
            "{machine}: {from} → {to} is no longer made: remove it from UNDOCUMENTED"
        );
    }
}
