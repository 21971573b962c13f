//! What the operation machines and the engine's driver cost on their own (issue 10): the same
//! store work done through [`Engine`] (machine + driver) and as bare store calls, side by side.
//!
//! - `empty_poll`: a poll of a task queue that has nothing visible. Through the engine it is a
//!   [`PollOp`](wfstate::runtime::PollOp) driven over one `poll_task` call; bare, the one call.
//! - `duplicate_report`: a report the workflow has already seen (a duplicate COMPLETED). Through
//!   the engine: a [`ReportOp`](wfstate::runtime::ReportOp) that loads the workflow, runs the
//!   transition and finishes without a commit; bare: the `load` call plus the same transition,
//!   called directly.
//! - `load`: the `load` call alone, for scale.
//!
//! The difference between the two sides of a pair is the machine and the driver: constructing
//! the operation, yielding the call, resuming with the reply, finishing with the output.
//!
//! Run: `cargo bench --bench driver` (see `docs/performance.md`).

use divan::{black_box, Bencher};
use wfstate::runtime::{Call, Engine, EngineConfig, InMemoryStore, Reply, Store};
use wfstate::{
    transition, Definition, Input, Report, ReportStatus, TaskDefinition, TaskId, WorkflowId,
};

fn main() {
    divan::main();
}

/// An engine whose one workflow has completed its only task: polls find nothing, a COMPLETED
/// report on that task is a duplicate.
fn engine() -> (Engine, WorkflowId, TaskId) {
    let definition = Definition::new(["fetch"].map(TaskDefinition::new));
    let mut config = EngineConfig::default();
    config.sweep_delay_ms = 0;
    let engine = Engine::with_config(InMemoryStore::new(), definition, config);
    let id = WorkflowId::new("wf");
    engine.start(id.clone(), 0).expect("fresh id");
    engine.sweep_once(0).expect("schedules fetch");
    let polled = engine
        .poll_task("fetch", 0)
        .expect("in memory")
        .expect("fetch is queued");
    let report = Report::new(polled.task.clone(), ReportStatus::Completed);
    engine.report(&id, report, 0).expect("legal report");
    (engine, id, polled.task)
}

mod empty_poll {
    use super::*;

    #[divan::bench]
    fn engine(bencher: Bencher) {
        let (engine, _, _) = super::engine();
        bencher.bench_local(|| black_box(engine.poll_task(black_box("fetch"), 0)));
    }

    #[divan::bench]
    fn store_call(bencher: Bencher) {
        let (engine, _, _) = super::engine();
        let store = engine.store();
        bencher.bench_local(|| {
            black_box(store.call(Call::PollTask {
                reference_name: black_box("fetch"),
                now_ms: 0,
                visibility_ms: 60_000,
            }))
        });
    }
}

mod duplicate_report {
    use super::*;

    #[divan::bench]
    fn engine(bencher: Bencher) {
        let (engine, id, task) = super::engine();
        bencher.bench_local(|| {
            let report = Report::new(task.clone(), ReportStatus::Completed);
            black_box(engine.report(black_box(&id), report, 0))
        });
    }

    #[divan::bench]
    fn store_call(bencher: Bencher) {
        let (engine, id, task) = super::engine();
        let store = engine.store();
        bencher.bench_local(|| {
            let input = Input::Report(Report::new(task.clone(), ReportStatus::Completed));
            match store.call(Call::Load { id: black_box(&id) }) {
                Ok(Reply::Loaded(Some(workflow))) => {
                    black_box(transition(&workflow, &input)).is_ok()
                }
                _ => false,
            }
        });
    }
}

#[divan::bench]
fn load(bencher: Bencher) {
    let (engine, id, _) = engine();
    let store = engine.store();
    bencher.bench_local(|| black_box(store.call(Call::Load { id: black_box(&id) })));
}
