//! Cost of one report step (issue 2, SPEC section 5): a worker reports COMPLETED on an
//! IN_PROGRESS task of a workflow of 10, 100, 1,000 and 10,000 tasks, against a blind baseline.
//!
//! Series, each over the same sizes:
//! - `validated_step`: [`transition`] + [`Workflow::apply`] + dropping the step (its allocations
//!   are part of the cost);
//! - `transition_only`: [`transition`] alone; pure, so one workflow serves every iteration (no
//!   clone), with the reports rotating over the same tasks as `warm::validated_step`;
//! - `blind_btree`: the baseline, what Conductor's DAO does without wfstate: find the task by id in
//!   a `BTreeMap<TaskId, usize>` index over a `Vec<Task>` and overwrite its status; no transition
//!   check, no version, no effects. Same `Task` type, same keys, same protocol; the index is the
//!   ordered map a `no_std` + `alloc` engine has at hand (the `Workflow` itself uses its own hash
//!   table since issue 2);
//! - `blind_hash`: the same baseline with std's `HashMap` index, for reference.
//!
//! Every task starts IN_PROGRESS (every index of the workflow holds every task). A step mutates,
//! so the mutating series run under two protocols, as modules:
//! - `warm`: one workflow stays in memory and receives a stream of reports, each on the next
//!   IN_PROGRESS task of a window around the middle (positions 1..9 of 10, 2..98 of 100, all
//!   1,000, the middle 1,024 of 10,000); when the window is used up the workflow is replaced by a
//!   fresh clone, outside the timed region. This is the cost of a step on a workflow the engine
//!   is working on (in cache).
//! - `cold`: a fresh clone per step (cloned outside the timed region; divan's `with_inputs`),
//!   reported on the middle task, after evicting the caches by writing a buffer larger than the
//!   last-level cache. This is the cost of a step on one of many workflows held in memory. (Plain
//!   `with_inputs` batching without eviction is not used: one clone of the 10,000-task workflow
//!   is about 3.7 MB, so the cache state would depend on the batch size and on the workflow size.)
//!
//! Run: `cargo bench --bench step` (see `docs/performance.md`).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use divan::{black_box, AllocProfiler, Bencher};
use wfstate::{
    transition, Input, Report, ReportStatus, Task, TaskId, TaskStatus, Workflow, WorkflowStatus,
};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

/// Workflow sizes (number of tasks).
const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

/// Iterations per sample of every mutating benchmark (its `sample_size`).
const BATCH: u32 = 8;

/// Most tasks reported on between two refreshes of the `warm` workflow: a multiple of [`BATCH`],
/// so a refresh always falls between two samples, and more than the 800 iterations of a default
/// run (100 samples of [`BATCH`]), so from 1,000 tasks up no refresh happens while measuring.
const WINDOW: usize = 1024;

/// Larger than the last-level cache (32 MiB on the measuring machine).
const EVICT_BYTES: usize = 96 << 20;

fn main() {
    divan::main();
}

/// A Conductor-shaped task id: a UUID-like string, 36 characters, distinct prefixes.
fn task_id(i: usize) -> TaskId {
    // A fixed odd multiplier spreads the prefixes so map order is not insertion order.
    let mixed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    TaskId::new(format!(
        "{:08x}-{:04x}-4000-8000-{:012x}",
        mixed >> 32,
        (mixed >> 16) & 0xffff,
        i
    ))
}

fn tasks(n: usize) -> Vec<Task> {
    (0..n)
        .map(|i| Task {
            id: task_id(i),
            reference_name: format!("task_{i}").into(),
            status: TaskStatus::InProgress,
            retry_count: 0,
            iteration: 0,
            optional: false,
        })
        .collect()
}

fn workflow(n: usize) -> Workflow {
    Workflow::from_parts(
        "bench-workflow",
        WorkflowStatus::Running,
        2 * n as u64,
        tasks(n),
    )
    .expect("task ids are distinct")
}

/// The report a worker sends: COMPLETED on task `i`.
fn report(i: usize) -> Input {
    Report::new(task_id(i), ReportStatus::Completed).into()
}

/// Positions of the `warm` window: centred on the middle, a multiple of [`BATCH`] long.
fn window(n: usize) -> Vec<usize> {
    let len = WINDOW.min(n - n % BATCH as usize);
    let start = n / 2 - len / 2;
    (start..start + len).collect()
}

/// The structure an engine keeps without wfstate: the tasks and an id index.
#[derive(Clone)]
struct BlindStore<M> {
    tasks: Vec<Task>,
    by_id: M,
}

impl<M: FromIterator<(TaskId, usize)>> BlindStore<M> {
    fn new(n: usize) -> Self {
        let tasks = tasks(n);
        let by_id = tasks
            .iter()
            .enumerate()
            .map(|(position, task)| (task.id.clone(), position))
            .collect();
        BlindStore { tasks, by_id }
    }
}

/// An id index the blind baseline can use.
trait Index: Clone + FromIterator<(TaskId, usize)> {
    fn find(&self, id: &TaskId) -> Option<usize>;
}

impl Index for BTreeMap<TaskId, usize> {
    fn find(&self, id: &TaskId) -> Option<usize> {
        self.get(id).copied()
    }
}

impl Index for HashMap<TaskId, usize> {
    fn find(&self, id: &TaskId) -> Option<usize> {
        self.get(id).copied()
    }
}

/// The validated step: transition, apply, drop the step.
fn validated_step(wf: &mut Workflow, input: &Input) {
    let step = transition(wf, input).expect("legal report");
    assert!(
        step.is_applied(),
        "each report completes an IN_PROGRESS task"
    );
    wf.apply(&step).expect("computed from this state");
    drop(black_box(step));
}

/// The blind step: find by id, overwrite the status.
fn blind_step<M: Index>(store: &mut BlindStore<M>, id: &TaskId) {
    let position = store.by_id.find(id).expect("known task");
    store.tasks[position].status = TaskStatus::Completed;
}

/// Times `step(state, k)` for `k` running over the window: one state stays in memory and is
/// replaced by a fresh clone of `stored` (untimed) once every position of the window was used.
fn bench_warm<S: Clone>(
    bencher: Bencher,
    stored: &S,
    window_len: usize,
    mut step: impl FnMut(&mut S, usize),
) {
    let live = RefCell::new(stored.clone());
    let mut next = 0;
    bencher
        .with_inputs(|| {
            if next == window_len {
                *live.borrow_mut() = stored.clone();
                next = 0;
            }
            next += 1;
            next - 1
        })
        .bench_local_refs(|k| step(&mut live.borrow_mut(), black_box(*k)));
}

/// Times `step` once per fresh clone of `stored`. Divan generates a sample's [`BATCH`] inputs,
/// then times them; after the last clone of a sample, `prime` runs on it (to leave the allocator
/// as a running engine would: with recently freed step-sized blocks) and the caches are evicted.
fn bench_cold<S: Clone>(
    bencher: Bencher,
    stored: &S,
    prime: impl Fn(&S),
    step: impl FnMut(&mut S),
) {
    let mut generated = 0;
    let mut evict = vec![1u8; EVICT_BYTES];
    bencher
        .with_inputs(|| {
            let input = stored.clone();
            generated += 1;
            if generated % BATCH == 0 {
                prime(&input);
                for line in evict.chunks_mut(64) {
                    line[0] = line[0].wrapping_add(1);
                }
                black_box(&mut evict);
            }
            input
        })
        .bench_local_refs(step);
}

/// A workflow that stays in cache.
mod warm {
    use super::*;

    #[divan::bench(args = SIZES, sample_size = BATCH)]
    fn validated_step(bencher: Bencher, n: usize) {
        let inputs: Vec<Input> = window(n).into_iter().map(report).collect();
        bench_warm(bencher, &workflow(n), inputs.len(), |wf, k| {
            super::validated_step(wf, &inputs[k]);
        });
    }

    /// Pure, so one workflow serves every iteration; the reports rotate over the same window.
    #[divan::bench(args = SIZES, sample_size = 64)]
    fn transition_only(bencher: Bencher, n: usize) {
        let stored = workflow(n);
        let inputs: Vec<Input> = window(n).into_iter().map(report).collect();
        let mut k = 0;
        bencher.bench_local(|| {
            k = (k + 1) % inputs.len();
            let step = transition(&stored, black_box(&inputs[k])).expect("legal report");
            drop(black_box(step));
        });
    }

    fn blind<M: Index>(bencher: Bencher, n: usize) {
        let ids: Vec<TaskId> = window(n).into_iter().map(task_id).collect();
        bench_warm(bencher, &BlindStore::<M>::new(n), ids.len(), |store, k| {
            blind_step(store, &ids[k]);
        });
    }

    #[divan::bench(args = SIZES, sample_size = BATCH)]
    fn blind_btree(bencher: Bencher, n: usize) {
        blind::<BTreeMap<TaskId, usize>>(bencher, n);
    }

    #[divan::bench(args = SIZES, sample_size = BATCH)]
    fn blind_hash(bencher: Bencher, n: usize) {
        blind::<HashMap<TaskId, usize>>(bencher, n);
    }
}

/// A workflow evicted from every cache.
mod cold {
    use super::*;

    #[divan::bench(args = SIZES, sample_size = BATCH)]
    fn validated_step(bencher: Bencher, n: usize) {
        let input = report(n / 2);
        bench_cold(
            bencher,
            &workflow(n),
            |wf| drop(black_box(transition(wf, &input))),
            |wf| super::validated_step(wf, black_box(&input)),
        );
    }

    fn blind<M: Index>(bencher: Bencher, n: usize) {
        let id = task_id(n / 2);
        bench_cold(
            bencher,
            &BlindStore::<M>::new(n),
            |_| {},
            |store| blind_step(store, black_box(&id)),
        );
    }

    #[divan::bench(args = SIZES, sample_size = BATCH)]
    fn blind_btree(bencher: Bencher, n: usize) {
        blind::<BTreeMap<TaskId, usize>>(bencher, n);
    }

    #[divan::bench(args = SIZES, sample_size = BATCH)]
    fn blind_hash(bencher: Bencher, n: usize) {
        blind::<HashMap<TaskId, usize>>(bencher, n);
    }
}
