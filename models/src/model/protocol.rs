//! The model: actors stepping through the protocol, every status change made by
//! `wfstate::transition` and `Workflow::apply`, except the blind writes that the legacy variants
//! exist to reproduce.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stateright::{Model, Property};
use wfstate::{
    decide, transition, AdminInput, Decision, Definition, Effect, EngineInput, Input, Outcome,
    Phase, Report, ReportStatus, Step, Task, TaskStatus, Workflow, WorkflowStatus,
};

use super::config::{Config, Variant};
use super::state::{
    Budgets, Ghost, Holder, Lock, Message, QueueEntry, QueueOp, State, SweepPc, Sweeper,
    TerminatePc, Terminator,
};

/// A decide function: the reference decider or an engine author's own.
pub type DecideFn = fn(&Workflow, &Definition) -> Decision;

/// One step of one actor. A schedule (a list of actions) names who moves, so the same schedule
/// can be replayed against another variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Sweeper `sweeper` takes its next step; when deciding, `time_out` times a live task out
    /// instead of following the decider.
    Sweep {
        /// Which sweeper.
        sweeper: u8,
        /// Take the time-out alternative.
        #[serde(default)]
        time_out: bool,
    },
    /// The terminator takes its next step; in the legacy archive variant, `archive_fails` picks
    /// the failing archive.
    Terminate {
        /// The inline archive fails (legacy archive only).
        #[serde(default)]
        archive_fails: bool,
    },
    /// The worker of definition task `task` works the latest attempt and sends IN_PROGRESS and
    /// `outcome`.
    Work {
        /// Definition index.
        task: u8,
        /// The terminal status it reports.
        outcome: ReportStatus,
    },
    /// The network delivers one copy of a report.
    Deliver {
        /// The report.
        message: Message,
    },
    /// The network duplicates a report.
    Duplicate {
        /// The report.
        message: Message,
    },
    /// The outbox runner performs its oldest effect, which may fail (archive only).
    Outbox {
        /// The effect fails.
        #[serde(default)]
        fail: bool,
    },
    /// The current lock lease expires while its holder runs.
    Expire,
}

/// The protocol model: a configuration, a variant and a decide function.
#[derive(Clone)]
pub struct ProtocolModel {
    /// The bounded world.
    pub config: Config,
    /// Which protocol.
    pub variant: Variant,
    /// The decider the sweepers use.
    pub decide: DecideFn,
}

impl ProtocolModel {
    /// The model with the reference decider.
    pub fn new(config: Config, variant: Variant) -> Self {
        ProtocolModel {
            config,
            variant,
            decide,
        }
    }

    /// The same model with another decider (bring your own).
    pub fn with_decider(mut self, decide: DecideFn) -> Self {
        self.decide = decide;
        self
    }

    /// Would a sweep find something to do? Requeue-with-delay is abstracted: a sweeper comes
    /// back when the stored state needs a decision (or a live task may time out), never to find
    /// it unchanged, which keeps the model acyclic.
    fn worth_sweeping(&self, state: &State) -> bool {
        let workflow = &state.workflow;
        (self.decide)(workflow, &self.config.definition) != Decision::Wait
            || (state.budgets.task_timeouts > 0 && workflow.active_tasks().next().is_some())
    }

    /// The attempt a message reports on, in `workflow`.
    fn attempt<'w>(&self, workflow: &'w Workflow, message: &Message) -> Option<&'w Task> {
        let reference = &self
            .config
            .definition
            .tasks
            .get(message.task as usize)?
            .reference_name;
        workflow.tasks().iter().find(|task| {
            &task.reference_name == reference && task.retry_count == message.retry_count
        })
    }

    fn sweep_actions(&self, state: &State, actions: &mut Vec<Action>) {
        for (index, sweeper) in state.sweepers.iter().enumerate() {
            let sweep = Action::Sweep {
                sweeper: index as u8,
                time_out: false,
            };
            let enabled = match sweeper.pc {
                SweepPc::Idle => state.queue == QueueEntry::Ready && self.worth_sweeping(state),
                SweepPc::Popped if self.variant == Variant::LegacySweeper => true,
                SweepPc::Popped | SweepPc::Snapshot => lock_free(state) || sweeper.misses_left > 0,
                SweepPc::Locked
                | SweepPc::Read
                | SweepPc::Queue(_)
                | SweepPc::Unlock(_)
                | SweepPc::AfterUnlock(_) => true,
            };
            if enabled {
                actions.push(sweep);
            }
            let can_time_out = sweeper.pc == SweepPc::Read
                && state.budgets.task_timeouts > 0
                && sweeper.snapshot.as_ref().is_some_and(|snapshot| {
                    snapshot.status() == WorkflowStatus::Running
                        && snapshot.active_tasks().next().is_some()
                });
            if can_time_out {
                actions.push(Action::Sweep {
                    sweeper: index as u8,
                    time_out: true,
                });
            }
        }
    }

    fn terminate_actions(&self, state: &State, actions: &mut Vec<Action>) {
        let step = Action::Terminate {
            archive_fails: false,
        };
        match state.terminator.pc {
            TerminatePc::Idle if lock_free(state) => actions.push(step),
            TerminatePc::Idle | TerminatePc::Done => {}
            TerminatePc::WroteStatus => {
                actions.push(step);
                if state.budgets.archive_failures > 0 {
                    actions.push(Action::Terminate {
                        archive_fails: true,
                    });
                }
            }
            TerminatePc::Locked
            | TerminatePc::Read
            | TerminatePc::Archived
            | TerminatePc::Queue
            | TerminatePc::Unlock => actions.push(step),
        }
    }

    fn environment_actions(&self, state: &State, actions: &mut Vec<Action>) {
        for (index, definition) in self.config.definition.tasks.iter().enumerate() {
            let Some(latest) = state.workflow.latest_attempt(&definition.reference_name) else {
                continue;
            };
            if latest.status == TaskStatus::Scheduled
                && state.worked[index] != Some(latest.retry_count)
            {
                for &outcome in &self.config.outcomes {
                    actions.push(Action::Work {
                        task: index as u8,
                        outcome,
                    });
                }
            }
        }
        let mut previous: Option<&Message> = None;
        for message in &state.network {
            if previous == Some(message) {
                continue;
            }
            previous = Some(message);
            actions.push(Action::Deliver {
                message: message.clone(),
            });
            let budget = state.budgets.duplicates[message.task as usize];
            if budget > 0 && !message.read {
                actions.push(Action::Duplicate {
                    message: message.clone(),
                });
            }
        }
        if let Some(effect) = state.outbox.first() {
            actions.push(Action::Outbox { fail: false });
            if *effect == Effect::Archive && state.budgets.archive_failures > 0 {
                actions.push(Action::Outbox { fail: true });
            }
        }
        if state.lock.is_some_and(|lock| !lock.expired) && state.budgets.lease_expiries > 0 {
            actions.push(Action::Expire);
        }
    }

    /// Performs an action; `None` when it is not enabled in `state`.
    pub fn step(&self, state: &State, action: &Action) -> Option<State> {
        let mut enabled = Vec::new();
        self.actions(state, &mut enabled);
        if !enabled.contains(action) {
            return None;
        }
        self.next_state(state, action.clone())
    }

    fn sweep(&self, state: &mut State, index: usize, time_out: bool) {
        let holder = Holder::Sweeper(index as u8);
        let legacy = self.variant == Variant::LegacySweeper;
        let pc = state.sweepers[index].pc;
        match pc {
            SweepPc::Idle => {
                state.queue = QueueEntry::Taken(index as u8);
                state.sweepers[index].pc = SweepPc::Popped;
            }
            SweepPc::Popped if legacy => {
                // D3: read before locking.
                state.sweepers[index].snapshot = Some(state.workflow.clone());
                state.sweepers[index].pc = SweepPc::Snapshot;
            }
            SweepPc::Popped | SweepPc::Snapshot => {
                if lock_free(state) {
                    state.lock = Some(Lock {
                        holder,
                        expired: false,
                    });
                    state.sweepers[index].pc = if pc == SweepPc::Snapshot {
                        SweepPc::Read
                    } else {
                        SweepPc::Locked
                    };
                } else {
                    // Missed the lock: hand the entry back so no wake-up is lost (I6a), unless
                    // the lock holder removed it meanwhile.
                    if state.queue == QueueEntry::Taken(index as u8) {
                        state.queue = QueueEntry::Ready;
                    }
                    let sweeper = &mut state.sweepers[index];
                    sweeper.misses_left -= 1;
                    sweeper.snapshot = None;
                    sweeper.pc = SweepPc::Idle;
                }
            }
            SweepPc::Locked => {
                state.sweepers[index].snapshot = Some(state.workflow.clone());
                state.sweepers[index].pc = SweepPc::Read;
            }
            SweepPc::Read => self.decide_and_write(state, index, time_out),
            SweepPc::Queue(op) => {
                state.queue = op.entry();
                state.sweepers[index].pc = SweepPc::Unlock(None);
            }
            SweepPc::Unlock(next) => {
                release(state, holder);
                let sweeper = &mut state.sweepers[index];
                match next {
                    Some(op) => sweeper.pc = SweepPc::AfterUnlock(op),
                    None => {
                        sweeper.pc = SweepPc::Idle;
                        sweeper.snapshot = None;
                    }
                }
            }
            SweepPc::AfterUnlock(op) => {
                state.queue = op.entry();
                let sweeper = &mut state.sweepers[index];
                sweeper.pc = SweepPc::Idle;
                sweeper.snapshot = None;
            }
        }
    }

    /// Under the lock, with a snapshot: decide, step, and write (CAS, or blind in legacy).
    fn decide_and_write(&self, state: &mut State, index: usize, time_out: bool) {
        let legacy = self.variant == Variant::LegacySweeper;
        let snapshot = state.sweepers[index]
            .snapshot
            .clone()
            .expect("a sweeper in Read has a snapshot");
        let input = if time_out {
            state.budgets.task_timeouts -= 1;
            let live = snapshot
                .active_tasks()
                .next()
                .expect("guarded: a live task");
            Some(EngineInput::TimeOutTask {
                task: live.id.clone(),
            })
        } else {
            match (self.decide)(&snapshot, &self.config.definition) {
                Decision::Act(input) => Some(input),
                Decision::Wait | Decision::Idle => None,
            }
        };
        let mut known = Arc::clone(&snapshot);
        if let Some(input) = input {
            match transition(&snapshot, &Input::Engine(input)) {
                Ok(step) if step.is_applied() => {
                    if legacy {
                        Arc::make_mut(&mut known)
                            .apply(&step)
                            .expect("step of its own snapshot");
                        blind_write(
                            state,
                            known.status(),
                            known.tasks().to_vec(),
                            edge_of(&step),
                        );
                    } else if !compare_and_swap(state, &step) {
                        // Someone committed since the read: read again under the lock.
                        state.sweepers[index].pc = SweepPc::Locked;
                        return;
                    } else {
                        known = Arc::clone(&state.workflow);
                    }
                }
                Ok(_) => {}
                Err(_) => state.ghost.decision_rejected = true,
            }
        }
        let op = if known.status() == WorkflowStatus::Running {
            QueueOp::Requeue
        } else {
            QueueOp::Remove
        };
        let sweeper = &mut state.sweepers[index];
        sweeper.snapshot = Some(known);
        sweeper.pc = if legacy {
            // D3: unlock first, queue operation after.
            SweepPc::Unlock(Some(op))
        } else {
            SweepPc::Queue(op)
        };
    }

    fn terminate(&self, state: &mut State, archive_fails: bool) {
        let legacy = self.variant == Variant::LegacyArchive;
        match state.terminator.pc {
            TerminatePc::Idle => {
                state.lock = Some(Lock {
                    holder: Holder::Terminator,
                    expired: false,
                });
                state.terminator.pc = TerminatePc::Locked;
            }
            TerminatePc::Locked => {
                state.terminator.snapshot = Some(state.workflow.clone());
                state.terminator.pc = TerminatePc::Read;
            }
            TerminatePc::Read if legacy => self.legacy_write_terminated(state),
            TerminatePc::Read => {
                let snapshot = state.terminator.snapshot.clone().expect("read");
                let in_flight = !state.network.is_empty();
                state.terminator.pc = match transition(&snapshot, &AdminInput::Terminate.into()) {
                    Ok(step) if step.is_applied() => {
                        if compare_and_swap(state, &step) {
                            state.ghost.terminated_with_report_in_flight |= in_flight;
                            TerminatePc::Queue
                        } else {
                            TerminatePc::Locked
                        }
                    }
                    Ok(_) | Err(_) => TerminatePc::Unlock,
                };
            }
            TerminatePc::WroteStatus => {
                if archive_fails {
                    // D1: the listener throws; the operation aborts before cancelling tasks.
                    state.budgets.archive_failures -= 1;
                    state.ghost.archive_failed = true;
                    state.terminator.pc = TerminatePc::Unlock;
                } else {
                    state.ghost.archived = true;
                    state.terminator.pc = TerminatePc::Archived;
                }
            }
            TerminatePc::Archived => {
                let mut tasks = state.workflow.tasks().to_vec();
                let mut edge = None;
                for task in tasks.iter_mut().filter(|t| !t.status.is_terminal()) {
                    edge.get_or_insert((task.status, TaskStatus::Canceled));
                    task.status = TaskStatus::Canceled;
                }
                let status = state.workflow.status();
                blind_write(state, status, tasks, edge);
                state.terminator.pc = TerminatePc::Queue;
            }
            TerminatePc::Queue => {
                state.queue = QueueEntry::Absent;
                state.terminator.pc = TerminatePc::Unlock;
            }
            TerminatePc::Unlock => {
                release(state, Holder::Terminator);
                state.terminator.pc = TerminatePc::Done;
                state.terminator.snapshot = None;
            }
            TerminatePc::Done => {}
        }
    }

    /// D1, first half: persist TERMINATED without touching the tasks.
    fn legacy_write_terminated(&self, state: &mut State) {
        let snapshot = state.terminator.snapshot.clone().expect("read");
        if snapshot.status().is_terminal() {
            state.terminator.pc = TerminatePc::Unlock;
            return;
        }
        state.ghost.terminated_with_report_in_flight |= !state.network.is_empty();
        blind_write(
            state,
            WorkflowStatus::Terminated,
            snapshot.tasks().to_vec(),
            None,
        );
        state.terminator.pc = TerminatePc::WroteStatus;
    }

    fn deliver(&self, state: &mut State, message: &Message) {
        let position = state
            .network
            .iter()
            .position(|m| m == message)
            .expect("enabled");
        state.network.remove(position);
        if self.variant == Variant::LegacyBlindReport {
            return self.deliver_blind(state, message);
        }
        // Lockless: read, step, compare-and-swap. The swap cannot fail inside one atomic model
        // step; a real retry loop linearises at its successful swap.
        let Some(attempt) = self.attempt(&state.workflow, message) else {
            return;
        };
        let input = Input::Report(Report::new(attempt.id.clone(), message.status));
        if let Ok(step) = transition(&state.workflow, &input) {
            match step.outcome() {
                Outcome::Applied => {
                    let swapped = compare_and_swap(state, &step);
                    debug_assert!(swapped, "fresh read");
                }
                Outcome::Progress => {
                    state.ghost.last_edge = Some((TaskStatus::InProgress, TaskStatus::InProgress));
                }
                Outcome::Duplicate => {}
            }
        }
    }

    /// D2: first delivery reads the task (and drops the report if it is terminal); the second
    /// writes the reported status blindly, however the task changed meanwhile.
    fn deliver_blind(&self, state: &mut State, message: &Message) {
        let Some(attempt) = self.attempt(&state.workflow, message) else {
            return;
        };
        let position = state
            .workflow
            .tasks()
            .iter()
            .position(|t| t.id == attempt.id)
            .expect("found above");
        let current = state.workflow.tasks()[position].status;
        if !message.read {
            if !current.is_terminal() {
                insert_sorted(
                    &mut state.network,
                    Message {
                        read: true,
                        ..message.clone()
                    },
                );
            }
            return;
        }
        let mut tasks = state.workflow.tasks().to_vec();
        tasks[position].status = message.status.task_status();
        let status = state.workflow.status();
        blind_write(
            state,
            status,
            tasks,
            Some((current, message.status.task_status())),
        );
    }

    fn work(&self, state: &mut State, index: usize, outcome: ReportStatus) {
        let reference = &self.config.definition.tasks[index].reference_name;
        let attempt = state
            .workflow
            .latest_attempt(reference)
            .expect("enabled")
            .retry_count;
        state.worked[index] = Some(attempt);
        for status in [ReportStatus::InProgress, outcome] {
            insert_sorted(
                &mut state.network,
                Message {
                    task: index as u8,
                    retry_count: attempt,
                    status,
                    read: false,
                },
            );
        }
    }

    fn run_outbox(&self, state: &mut State, fail: bool) {
        if fail {
            state.budgets.archive_failures -= 1;
            state.ghost.archive_failed = true;
            return;
        }
        let effect = state.outbox.remove(0);
        if effect == Effect::Archive {
            state.ghost.archived = true;
        }
    }
}

impl Model for ProtocolModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let tasks = self.config.definition.tasks.len();
        vec![State {
            workflow: Arc::new(Workflow::new("wf")),
            queue: QueueEntry::Ready,
            lock: None,
            sweepers: vec![
                Sweeper {
                    pc: SweepPc::Idle,
                    snapshot: None,
                    misses_left: self.config.lock_misses,
                };
                self.config.sweepers
            ],
            terminator: Terminator {
                pc: if self.config.terminator {
                    TerminatePc::Idle
                } else {
                    TerminatePc::Done
                },
                snapshot: None,
            },
            worked: vec![None; tasks],
            network: Vec::new(),
            outbox: Vec::new(),
            budgets: Budgets {
                duplicates: vec![self.config.duplicates_per_task; tasks],
                archive_failures: self.config.archive_failures,
                lease_expiries: self.config.lease_expiries,
                task_timeouts: self.config.task_timeouts,
            },
            ghost: Ghost::default(),
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        self.sweep_actions(state, actions);
        self.terminate_actions(state, actions);
        self.environment_actions(state, actions);
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut state = last.clone();
        match action {
            Action::Sweep { sweeper, time_out } => {
                self.sweep(&mut state, sweeper as usize, time_out)
            }
            Action::Terminate { archive_fails } => self.terminate(&mut state, archive_fails),
            Action::Work { task, outcome } => self.work(&mut state, task as usize, outcome),
            Action::Deliver { message } => self.deliver(&mut state, &message),
            Action::Duplicate { message } => {
                state.budgets.duplicates[message.task as usize] -= 1;
                insert_sorted(&mut state.network, message);
            }
            Action::Outbox { fail } => self.run_outbox(&mut state, fail),
            Action::Expire => {
                let lock = state.lock.as_mut()?;
                lock.expired = true;
                state.budgets.lease_expiries -= 1;
                state.ghost.lease_expired = true;
            }
        }
        Some(state)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        super::properties::all(self)
    }
}

fn lock_free(state: &State) -> bool {
    state.lock.is_none_or(|lock| lock.expired)
}

/// Release by token: only the current holder's release frees the lock.
fn release(state: &mut State, holder: Holder) {
    if state.lock.is_some_and(|lock| lock.holder == holder) {
        state.lock = None;
    }
}

/// The store's compare-and-swap: write `step` if the stored version is still the one it read.
/// Post-commit effects go to the outbox in the same write (a transactional outbox).
fn compare_and_swap(state: &mut State, step: &Step) -> bool {
    if state.workflow.version() != step.read_version() {
        state.ghost.stale_write_rejected = true;
        return false;
    }
    if Arc::make_mut(&mut state.workflow).apply(step).is_err() {
        state.ghost.stale_write_rejected = true;
        return false;
    }
    state
        .outbox
        .extend(step.effects_in(Phase::PostCommit).cloned());
    record_write(state, edge_of(step));
    true
}

/// A legacy write: the whole workflow (this status, these tasks), no check, no compare-and-swap
/// (the version still counts writes, so I4 stays about the fixed mechanism).
fn blind_write(
    state: &mut State,
    status: WorkflowStatus,
    tasks: Vec<Task>,
    edge: Option<(TaskStatus, TaskStatus)>,
) {
    let id = state.workflow.id().clone();
    let version = state.ghost.commits + 1;
    state.workflow =
        Arc::new(Workflow::from_parts(id, status, version, tasks).expect("ids stay unique"));
    record_write(state, edge);
}

fn record_write(state: &mut State, edge: Option<(TaskStatus, TaskStatus)>) {
    state.ghost.commits += 1;
    state.ghost.was_terminal |= state.workflow.status().is_terminal();
    let first = &mut state.ghost.first_terminal;
    first.resize(state.workflow.tasks().len(), None);
    for (slot, task) in first.iter_mut().zip(state.workflow.tasks()) {
        if slot.is_none() && task.status.is_terminal() {
            *slot = Some(task.status);
        }
    }
    if edge.is_some() {
        state.ghost.last_edge = edge;
    }
}

fn edge_of(step: &Step) -> Option<(TaskStatus, TaskStatus)> {
    step.changes()
        .tasks
        .first()
        .map(|change| (change.from, change.to))
}

fn insert_sorted(network: &mut Vec<Message>, message: Message) {
    let position = network.partition_point(|m| m <= &message);
    network.insert(position, message);
}
