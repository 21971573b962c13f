//! The model: actors running the runtime's own operation machines (or, for the legacy variants,
//! alternative machines) one store call per step over the runtime's own pure store state. Every
//! status change is made by the store's commit (`wfstate::transition` and `Workflow::apply`),
//! except the blind writes that the legacy variants exist to reproduce. The environment adds
//! report duplication and reordering, lease expiry, time passing beyond hiding leases, failing
//! effect handlers and failing store calls (certainly not done, or ambiguous).

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stateright::{Model, Property};
use wfstate::runtime::{
    AdminOp, Call, CallKind, CommitReply, Decider, DeciderPlan, EngineConfig, Next, Operation,
    OutboxOp, PollOp, QueuePlan, Reply, ReportOp, StartOp, StoreFailure, SweepOp,
};
use wfstate::{
    check_pair, AdminInput, Decision, EngineInput, Input, Outcome, Report, ReportStatus, TaskId,
    TaskStatus, Workflow, WorkflowStatus,
};

use super::config::{Config, Variant};
use super::legacy::{
    stepped, DecideMode, LegacyDecide, LegacyNext, LegacyPoll, LegacyReport, LegacyReportDecide,
    LegacySweep, LegacyTerminate, LegacyTimeOut, POSTPONED_MS,
};
use super::properties::{Tally, TallyMode};
use super::state::{
    inner_decide_token, operator_token, report_decide_token, sweeper_token, ActorId, Budgets,
    Ghost, Message, Operator, OperatorOp, PendingPlan, ReportRun, Shared, State, Sweeper,
    SweeperOp, Worker, WorkerPoll, NOW_MS,
};

/// A decider shared by the model's threads.
pub type SharedDecider = Arc<dyn Decider + Send + Sync>;

/// How the environment answers one store call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The store answers.
    #[default]
    None,
    /// The call fails and certainly did not happen.
    NotDone,
    /// The call happens, but its reply is lost (an ambiguous commit).
    Ambiguous,
}

impl Fault {
    fn is_none(&self) -> bool {
        *self == Fault::None
    }
}

fn is_false(flag: &bool) -> bool {
    !*flag
}

/// One step of one actor: most are one store call of the actor's operation. A schedule (a list
/// of actions) names who moves, so the same schedule can be replayed against another variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Sweeper `sweeper` makes its next call (starting a sweep if idle).
    Sweep {
        /// Which sweeper.
        sweeper: u8,
        /// The task-queue push fails (legacy lost push only).
        #[serde(default, skip_serializing_if = "is_false")]
        fail: bool,
        /// How the store answers.
        #[serde(default, skip_serializing_if = "Fault::is_none")]
        fault: Fault,
    },
    /// E9's starter decides on its in-memory copy of the workflow it created, without the lock,
    /// and creates the task rows it decided (legacy unlocked start only).
    Start,
    /// The operator makes its next call (starting its next admin input, or a task time-out, if
    /// idle); `fail` makes D1's inline archive fail.
    Operate {
        /// Start a task time-out rather than the next admin input.
        #[serde(default)]
        time_out: bool,
        /// The inline archive fails (legacy archive only).
        #[serde(default)]
        fail: bool,
        /// How the store answers.
        #[serde(default, skip_serializing_if = "Fault::is_none")]
        fault: Fault,
    },
    /// The worker of definition task `task` makes its poll's next call (starting a poll if idle).
    Poll {
        /// Definition index.
        task: u8,
        /// How the store answers.
        #[serde(default, skip_serializing_if = "Fault::is_none")]
        fault: Fault,
    },
    /// The worker of definition task `task` works the attempt it polled and sends IN_PROGRESS
    /// and `outcome`.
    Work {
        /// Definition index.
        task: u8,
        /// The terminal status it reports.
        outcome: ReportStatus,
    },
    /// The network delivers one copy of a report: a report operation starts with its first call.
    Deliver {
        /// The report.
        message: Message,
        /// How the store answers.
        #[serde(default, skip_serializing_if = "Fault::is_none")]
        fault: Fault,
    },
    /// In-flight report `index` makes its next call.
    Report {
        /// Its position among the in-flight reports.
        index: u8,
        /// How the store answers.
        #[serde(default, skip_serializing_if = "Fault::is_none")]
        fault: Fault,
    },
    /// The network duplicates a report.
    Duplicate {
        /// The report.
        message: Message,
    },
    /// The outbox runner takes its next step (starting a pass if idle); `fail` makes the effect
    /// handler fail.
    Outbox {
        /// The effect handler fails.
        #[serde(default)]
        fail: bool,
        /// How the store answers.
        #[serde(default, skip_serializing_if = "Fault::is_none")]
        fault: Fault,
    },
    /// Call-by-call store path: the store applies a pending commit's queue plan.
    ApplyPlan {
        /// Which pending commit.
        index: u8,
    },
    /// The current lock lease expires while its holder runs.
    Expire,
    /// Time passes beyond every hiding lease (popped, polled and claimed entries reappear).
    Tick,
}

/// The protocol model: a configuration, a variant and a decider.
#[derive(Clone)]
pub struct ProtocolModel {
    /// The bounded world.
    pub config: Config,
    /// Which protocol.
    pub variant: Variant,
    /// The decider the sweepers use: the runtime's [`Decider`] trait, so an engine author's
    /// decider is checked as it runs.
    pub decider: SharedDecider,
    /// The runtime settings the machines run with: every duration 1 ms at a fixed `now` of 0,
    /// so time passing is the environment's `Tick` and `Expire`.
    pub engine: EngineConfig,
    /// How this check records its properties: see
    /// [`remember_reached`](ProtocolModel::remember_reached) and
    /// [`all_at_once`](ProtocolModel::all_at_once).
    pub(crate) tally: Tally,
    /// The attempt ids of the configuration's tasks for retry counts below [`KEPT_ATTEMPTS`],
    /// by definition index then retry count: a delivered report names its attempt by these,
    /// and formatting one took a tenth of a delivery.
    pub(crate) attempt_ids: Vec<Vec<TaskId>>,
}

/// How many retry counts of each task [`ProtocolModel`] keeps the attempt id of (the model's
/// attempts are bounded by `max_attempts` and the retries of its script).
const KEPT_ATTEMPTS: u32 = 8;

/// Sets a ghost flag (when `$cond` holds).
macro_rules! mark {
    ($state:expr, $flag:ident) => {
        if !$state.ghost.$flag {
            $state.ghost.$flag = true;
        }
    };
    ($state:expr, $flag:ident, $cond:expr) => {
        if $cond {
            mark!($state, $flag)
        }
    };
}

/// With [`Config::atomic_operations`], the most store calls one model step runs of an
/// operation. No machine needs as many when nothing interleaves (a sweep makes five, a poll three
/// plus two per stale entry it drops); one that did would go on in later steps, interleaved.
const ATOMIC_CALLS: usize = 16;

impl ProtocolModel {
    /// With [`Config::atomic_operations`], runs an operation on to its end within the step that
    /// began it: `step` makes its next call while `running` says it is in flight. A commit whose
    /// queue plan the call-by-call store applies separately (`pending`) ends the run there.
    fn run_to_end(
        &self,
        state: &mut State,
        running: impl Fn(&State) -> bool,
        mut step: impl FnMut(&mut State),
    ) {
        if !self.config.atomic_operations {
            return;
        }
        for _ in 0..ATOMIC_CALLS {
            if !running(state) || !state.pending.is_empty() {
                return;
            }
            step(state);
        }
    }

    /// Does this model hand the checker one state of each pair that swapping the two sweepers
    /// makes ([`Config::symmetric_sweepers`], the fixed protocol with two sweepers)? Then
    /// `next_state` returns each successor's [`representative`](super::symmetry::representative).
    pub fn symmetric(&self) -> bool {
        self.config.symmetric_sweepers
            && self.config.sweepers == 2
            && self.variant == Variant::Fixed
    }

    /// The model with the reference decider of the configuration's definition.
    pub fn new(config: Config, variant: Variant) -> Self {
        let config = config.for_variant(variant);
        let decider: SharedDecider = Arc::new(config.definition.clone());
        let mut engine = EngineConfig::default();
        engine.lease_ms = 1;
        engine.sweep_delay_ms = 1;
        engine.unack_ms = 1;
        engine.task_visibility_ms = 1;
        engine.outbox_claim_ms = 1;
        engine.max_attempts = 2;
        let attempt_ids = config
            .definition
            .tasks
            .iter()
            .map(|task| {
                (0..KEPT_ATTEMPTS)
                    .map(|retry| TaskId::attempt(State::id(), &task.reference_name, retry))
                    .collect()
            })
            .collect();
        ProtocolModel {
            config,
            variant,
            decider,
            engine,
            tally: Tally::default(),
            attempt_ids,
        }
    }

    /// The same model, evaluating each `sometimes` property only until some state satisfies it:
    /// after that it reads as unsatisfied, so the checker stops recording the same discovery
    /// again (stateright re-inserts it, with a copy of its path, on every satisfying state). The
    /// verdicts are the same: a `sometimes` property is reached if and only if one state
    /// satisfies it. `check` runs the legacy variants this way (the fixed protocol
    /// [`all_at_once`](ProtocolModel::all_at_once)); the explorer shows every state's own values.
    pub fn remember_reached(mut self) -> Self {
        self.tally = Tally::new(TallyMode::Remember, &self);
        self
    }

    /// The same model, with every property evaluated in one stateright property (it also
    /// remembers what was reached). stateright looks each property's name up in its shared
    /// table of discoveries on every state, which cost more than most properties themselves;
    /// here the model records which property broke or was reached in its own flags, read back
    /// by [`super::run::check`] (whose fixed-protocol runs use this). The verdicts are the same:
    /// each `always` property is still evaluated on every state, each `sometimes` property until
    /// a state satisfies it. The configuration and variant must not change afterwards (the
    /// exercised properties are listed here, once). Not for runs that stop at a named
    /// property's first discovery (the legacy variants'): those need stateright to see the names.
    pub fn all_at_once(mut self) -> Self {
        self.tally = Tally::new(TallyMode::Combined, &self);
        self
    }

    /// The same model with another decider (bring your own).
    pub fn with_decider(mut self, decider: impl Decider + Send + Sync + 'static) -> Self {
        self.decider = Arc::new(decider);
        self
    }

    fn reference(&self, task: u8) -> &str {
        &self.config.definition.tasks[task as usize].reference_name
    }

    /// The id of the attempt `message` reports on: borrowed from the table built in `new`,
    /// formatted only past it.
    fn attempt_id(&self, message: &Message) -> Cow<'_, TaskId> {
        let kept = self
            .attempt_ids
            .get(message.task as usize)
            .and_then(|ids| ids.get(message.retry_count as usize));
        let formatted = || {
            TaskId::attempt(
                State::id(),
                self.reference(message.task),
                message.retry_count,
            )
        };
        // The configuration is not changed after `new` (as `all_at_once` also requires).
        debug_assert!(kept.is_none_or(|id| *id == formatted()));
        match kept {
            Some(id) => Cow::Borrowed(id),
            None => Cow::Owned(formatted()),
        }
    }

    /// Would a sweep find something to do? Requeue-with-delay is abstracted: a sweeper comes
    /// back when the stored state needs a decision or a stale entry needs removing, never to
    /// find it unchanged, which keeps the model small.
    fn worth_sweeping(&self, state: &State) -> bool {
        let workflow = state.workflow();
        workflow.status() != WorkflowStatus::Running
            || self.decider.decide(workflow) != Decision::Wait
    }

    /// Would `token`'s acquire be granted now?
    fn lease_free(state: &State, token: wfstate::runtime::LeaseToken) -> bool {
        state
            .store
            .lease(State::id())
            .is_none_or(|lease| !lease.is_valid_at(NOW_MS) || lease.holder == token)
    }

    fn faults(
        &self,
        state: &State,
        kind: Option<CallKind>,
    ) -> std::iter::Take<std::array::IntoIter<Fault, 3>> {
        let all = [Fault::None, Fault::NotDone, Fault::Ambiguous];
        let count = match kind {
            Some(_) if state.budgets.store_failures == 0 => 1,
            Some(CallKind::Load | CallKind::DeciderDue) => 2,
            Some(_) => 3,
            None => 1,
        };
        all.into_iter().take(count)
    }

    fn sweep_actions(&self, state: &State, actions: &mut Vec<Action>) {
        for (index, sweeper) in state.sweepers.iter().enumerate() {
            let kind = match &sweeper.op {
                None => {
                    let ready = state.store.decider_ready(State::id(), NOW_MS)
                        && self.worth_sweeping(state);
                    if !ready {
                        continue;
                    }
                    Some(CallKind::PopDecider)
                }
                Some(op) => sweeper_call(op),
            };
            if kind == Some(CallKind::Acquire)
                && !ProtocolModel::lease_free(state, sweeper_token(index))
                && sweeper.misses_left == 0
            {
                continue;
            }
            if state
                .pending
                .iter()
                .any(|p| p.actor == ActorId::Sweeper(index as u8))
            {
                continue;
            }
            for fault in self.faults(state, kind) {
                actions.push(Action::Sweep {
                    sweeper: index as u8,
                    fail: false,
                    fault,
                });
            }
            let pushing = matches!(&sweeper.op, Some(SweeperOp::Decide(op)) if op.pushing());
            if pushing && state.budgets.effect_failures > 0 {
                actions.push(Action::Sweep {
                    sweeper: index as u8,
                    fail: true,
                    fault: Fault::None,
                });
            }
        }
        if state.budgets.starter > 0 {
            actions.push(Action::Start);
        }
    }

    fn operator_actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.pending.iter().any(|p| p.actor == ActorId::Operator) {
            return;
        }
        let operator = &state.operator;
        let kind = match &operator.op {
            None => {
                if !ProtocolModel::lease_free(state, operator_token()) {
                    return;
                }
                let scripted = (operator.next as usize) < self.config.script.len();
                let live = state.workflow().active_tasks().next().is_some()
                    && state.status() == WorkflowStatus::Running;
                for fault in self.faults(state, Some(CallKind::Acquire)) {
                    if scripted {
                        actions.push(Action::Operate {
                            time_out: false,
                            fail: false,
                            fault,
                        });
                    }
                    if state.budgets.task_timeouts > 0 && live {
                        actions.push(Action::Operate {
                            time_out: true,
                            fail: false,
                            fault,
                        });
                    }
                }
                return;
            }
            Some(OperatorOp::Legacy(op)) if matches!(op.next(), LegacyNext::Archive) => {
                actions.push(Action::Operate {
                    time_out: false,
                    fail: false,
                    fault: Fault::None,
                });
                if state.budgets.effect_failures > 0 {
                    actions.push(Action::Operate {
                        time_out: false,
                        fail: true,
                        fault: Fault::None,
                    });
                }
                return;
            }
            Some(op) => operator_call(op),
        };
        if kind == Some(CallKind::Acquire) && !ProtocolModel::lease_free(state, operator_token()) {
            return;
        }
        for fault in self.faults(state, kind) {
            actions.push(Action::Operate {
                time_out: false,
                fail: false,
                fault,
            });
        }
    }

    fn worker_actions(&self, state: &State, actions: &mut Vec<Action>) {
        for (index, worker) in state.workers.iter().enumerate() {
            let task = index as u8;
            if worker.holding.is_some() {
                for &outcome in &self.config.outcomes {
                    let failing = outcome != ReportStatus::Completed;
                    if failing
                        && self.config.worker_failures.is_some()
                        && state.budgets.worker_failures == 0
                    {
                        continue;
                    }
                    actions.push(Action::Work { task, outcome });
                }
                continue;
            }
            if state
                .pending
                .iter()
                .any(|p| p.actor == ActorId::Worker(task))
            {
                continue;
            }
            let kind = match &worker.poll {
                None if state.store.task_ready(self.reference(task), NOW_MS) => {
                    Some(CallKind::PollTask)
                }
                None => continue,
                Some(WorkerPoll::Fixed(poll)) => call_kind(poll),
                Some(WorkerPoll::Legacy(poll)) => poll.call_kind(),
            };
            for fault in self.faults(state, kind) {
                actions.push(Action::Poll { task, fault });
            }
        }
    }

    /// With [`Config::eager_ended_reports`], a report in the network whose attempt has ended in
    /// the store and whose delivery is the only choice it leaves: no store failure or tick
    /// budget is left, and it cannot be duplicated (no budget for its task, or another copy
    /// stays). Its delivery commutes with every other action (`docs/model.md`, "Ended-report
    /// partial-order reduction").
    fn ended_report(&self, state: &State) -> Option<Message> {
        if !self.config.eager_ended_reports
            || !self.variant.writes_only_by_commit()
            || state.budgets.store_failures > 0
            || state.budgets.ticks > 0
        {
            return None;
        }
        let workflow = state.workflow();
        // The network is sorted: the copies of a report are adjacent.
        let mut rest = &state.network[..];
        while let Some(message) = rest.first() {
            let copies = rest.iter().take_while(|m| *m == message).count();
            let duplicable = state
                .budgets
                .duplicates
                .get(message.task as usize)
                .is_some_and(|left| *left > 0);
            if (copies > 1 || !duplicable) && self.attempt_ended(workflow, message) {
                return Some(message.clone());
            }
            rest = &rest[copies..];
        }
        None
    }

    /// Has the attempt `message` reports on ended in `workflow`? A report of it is then a
    /// duplicate or refused, in `workflow` and every later state of a variant that writes only
    /// by commit: an ended attempt only moves to another ended status (retry adds new attempts).
    fn attempt_ended(&self, workflow: &Workflow, message: &Message) -> bool {
        workflow
            .task(&self.attempt_id(message))
            .is_some_and(|task| task.status.is_terminal())
    }

    fn network_actions(&self, state: &State, actions: &mut Vec<Action>) {
        let mut previous: Option<&Message> = None;
        for message in state.network.iter() {
            if previous == Some(message) {
                continue;
            }
            previous = Some(message);
            for fault in self.faults(state, Some(CallKind::Load)) {
                actions.push(Action::Deliver {
                    message: message.clone(),
                    fault,
                });
            }
            if state.budgets.duplicates[message.task as usize] > 0 {
                actions.push(Action::Duplicate {
                    message: message.clone(),
                });
            }
        }
        for (index, run) in state.reports.iter().enumerate() {
            let kind = match &**run {
                ReportRun::Fixed(op, _) => call_kind(op),
                ReportRun::Decide(op, _) => op.call_kind(),
                ReportRun::Legacy(..) => None,
            };
            for fault in self.faults(state, kind) {
                actions.push(Action::Report {
                    index: index as u8,
                    fault,
                });
            }
        }
    }

    fn outbox_actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.pending.iter().any(|p| p.actor == ActorId::Outbox) {
            return;
        }
        match &*state.outbox {
            None if state.store.outbox_ready(NOW_MS) => {
                for fault in self.faults(state, Some(CallKind::TakeOutbox)) {
                    actions.push(Action::Outbox { fail: false, fault });
                }
            }
            None => {}
            Some(op) => match op.next() {
                Next::Perform(_) => {
                    actions.push(Action::Outbox {
                        fail: false,
                        fault: Fault::None,
                    });
                    if state.budgets.effect_failures > 0 {
                        actions.push(Action::Outbox {
                            fail: true,
                            fault: Fault::None,
                        });
                    }
                }
                Next::Call(call) => {
                    for fault in self.faults(state, Some(call.kind())) {
                        actions.push(Action::Outbox { fail: false, fault });
                    }
                }
                Next::Done => actions.push(Action::Outbox {
                    fail: false,
                    fault: Fault::None,
                }),
            },
        }
    }

    fn environment_actions(&self, state: &State, actions: &mut Vec<Action>) {
        let quiet = actions.is_empty() && state.pending.is_empty();
        for index in 0..state.pending.len() {
            actions.push(Action::ApplyPlan { index: index as u8 });
        }
        if let Some(lease) = state.store.lease(State::id()) {
            // A lease whose holder finished (its release failed) runs out as time passes; one
            // whose holder still runs expires only within the budget.
            let orphan = !holds_live_lease(state, lease.holder);
            if lease.is_valid_at(NOW_MS) && (orphan || state.budgets.lease_expiries > 0) {
                actions.push(Action::Expire);
            }
        }
        if state.store.has_hidden(NOW_MS) && (state.budgets.ticks > 0 || quiet) {
            actions.push(Action::Tick);
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

    /// Performs a store call for `actor` with the environment's `fault`; `None` when the reply
    /// is pending (the call-by-call path's commit, whose plan comes later).
    fn execute(
        &self,
        state: &mut State,
        actor: ActorId,
        call: Call<'_>,
        fault: Fault,
    ) -> Option<Result<Reply, StoreFailure>> {
        let mut pended = false;
        if fault != Fault::None {
            state.budgets.store_failures -= 1;
            mark!(state, store_failed);
        }
        if fault == Fault::NotDone {
            return Some(Err(StoreFailure::not_done("model: the call failed")));
        }
        let before = Arc::clone(state.workflow());
        let reply = match call {
            Call::Commit {
                id,
                step,
                plan,
                now_ms,
            } if self.variant == Variant::CallByCall => {
                let keep = QueuePlan {
                    decider: DeciderPlan::Keep,
                    remove_tasks: Vec::new(),
                    push_tasks: Vec::new(),
                };
                let reply = state.store.execute(Call::Commit {
                    id,
                    step,
                    plan: &keep,
                    now_ms,
                });
                if let Reply::Committed(CommitReply::Done(receipt)) = &reply {
                    let reply = match fault {
                        Fault::Ambiguous => Err(StoreFailure::ambiguous("model: reply lost")),
                        Fault::None | Fault::NotDone => Ok(reply.clone()),
                    };
                    pended = true;
                    state.pending.push(PendingPlan {
                        actor,
                        plan: plan.clone(),
                        status: receipt.status,
                        reply,
                        parked: None,
                    });
                }
                reply
            }
            // A call that changes nothing leaves the store shared with the previous state.
            call => match state.store.query(&call) {
                Some(reply) => reply,
                None => state.store.execute(call),
            },
        };
        if let (Call::Commit { step, .. }, Reply::Committed(committed)) = (&call, &reply) {
            match committed {
                CommitReply::Done(_) => {
                    self.record_write(state, &before, step.through_retry());
                    if let Some(change) = step.changes().tasks.first() {
                        state.ghost.last_edge = Some((change.from, change.to));
                    }
                    let terminated = step
                        .changes()
                        .workflow
                        .is_some_and(|change| change.to == WorkflowStatus::Terminated);
                    // A report of an attempt that had ended is no report in flight: its
                    // delivery changes nothing (and so commutes with the terminate).
                    let in_flight = !state.reports.is_empty()
                        || state
                            .network
                            .iter()
                            .any(|message| !self.attempt_ended(&before, message));
                    if terminated && in_flight {
                        mark!(state, terminated_with_report_in_flight);
                    }
                    mark!(state, ambiguous_commit, fault == Fault::Ambiguous);
                }
                CommitReply::Stale { .. } => mark!(state, stale_write_rejected),
                CommitReply::Unknown => {}
            }
        }
        if pended {
            return None;
        }
        Some(match fault {
            Fault::Ambiguous => Err(StoreFailure::ambiguous("model: reply lost")),
            Fault::None | Fault::NotDone => Ok(reply),
        })
    }

    /// A write happened: count it, and check the pair invariants (I3, I5) across it.
    fn record_write(&self, state: &mut State, before: &Workflow, through_retry: bool) {
        state.ghost.commits += 1;
        let after = Arc::clone(state.workflow());
        for violation in check_pair(before, &after, through_retry) {
            let invariant = violation.invariant();
            state.ghost.broken.insert(invariant);
        }
        mark!(state, paused, after.status() == WorkflowStatus::Paused);
        mark!(state, retried, through_retry);
    }

    /// A legacy machine's next step for `actor`: its store call (atomic: a legacy machine never
    /// runs over the call-by-call store), or its model-only write (`fail`: the step's effect
    /// fails, where it can).
    fn run_legacy(
        &self,
        state: &mut State,
        actor: ActorId,
        next: LegacyNext<'_>,
        fault: Fault,
        fail: bool,
    ) -> Result<Reply, StoreFailure> {
        match next {
            LegacyNext::Call(call) => self
                .execute(state, actor, call, fault)
                .unwrap_or_else(|| Err(StoreFailure::ambiguous("model: a legacy call is atomic"))),
            LegacyNext::Done => Err(StoreFailure::not_done("model: finished")),
            next => Ok(self.legacy(state, next, fail)),
        }
    }

    /// Is sweeper `index`'s next call (`kind`) an acquire that will miss the lock (a miss of its
    /// budget)?
    fn misses(&self, state: &State, index: usize, kind: Option<CallKind>) -> bool {
        kind == Some(CallKind::Acquire) && !ProtocolModel::lease_free(state, sweeper_token(index))
    }

    /// A legacy machine's write.
    fn legacy(&self, state: &mut State, next: LegacyNext<'_>, fail: bool) -> Reply {
        let id = State::id();
        match next {
            LegacyNext::Overwrite { status, tasks } => {
                self.overwrite(state, status, tasks.to_vec());
            }
            LegacyNext::SetTask { task, status } => {
                let mut tasks = state.workflow().tasks().to_vec();
                if let Some(attempt) = tasks.iter_mut().find(|t| t.id == *task) {
                    state.ghost.last_edge = Some((attempt.status, status));
                    attempt.status = status;
                }
                let current = state.status();
                self.overwrite(state, current, tasks);
            }
            LegacyNext::AddTasks { tasks, push } => {
                let mut stored = state.workflow().tasks().to_vec();
                let mut created = Vec::new();
                for task in tasks {
                    let mut row = task.clone();
                    let mut copy = 1;
                    while stored.iter().any(|t| t.id == row.id) {
                        copy += 1;
                        row.id = TaskId::new(format!("{}#{copy}", task.id));
                    }
                    stored.push(row.clone());
                    created.push(row);
                }
                let current = state.status();
                self.overwrite(state, current, stored);
                if push {
                    self.push_tasks(state, &created);
                }
            }
            LegacyNext::WriteDocument { status, tasks } => {
                let mut stored = state.workflow().tasks().to_vec();
                for task in tasks {
                    if let Some(row) = stored.iter_mut().find(|row| row.id == task.id) {
                        *row = task.clone();
                    }
                }
                self.overwrite(state, status, stored);
            }
            LegacyNext::PushTasks { tasks } => {
                if fail {
                    state.budgets.effect_failures -= 1;
                    mark!(state, effect_failed);
                    return Reply::Performed(false);
                }
                // The rows as created (a renamed second row included), not yet queued.
                let key =
                    |t: &wfstate::Task| (t.reference_name.clone(), t.retry_count, t.iteration);
                let keys: Vec<_> = tasks.iter().map(key).collect();
                let workflow = state.workflow();
                let rows: Vec<wfstate::Task> = workflow
                    .tasks()
                    .iter()
                    .filter(|row| {
                        keys.contains(&key(row)) && !state.store.task_queued(workflow.id(), &row.id)
                    })
                    .cloned()
                    .collect();
                self.push_tasks(state, &rows);
                return Reply::Performed(true);
            }
            LegacyNext::Postpone => {
                state.store.execute(Call::Requeue {
                    id,
                    due_ms: POSTPONED_MS,
                });
            }
            LegacyNext::Dequeue => {
                state.store.remove_from_decider(id);
            }
            LegacyNext::Enqueue => state.store.push_to_decider(id, NOW_MS),
            LegacyNext::Archive => {
                mark!(state, archived);
                if fail {
                    state.budgets.effect_failures -= 1;
                    mark!(state, effect_failed);
                }
                return Reply::Performed(!fail);
            }
            LegacyNext::Call(_) | LegacyNext::Done => {}
        }
        Reply::Moved(true)
    }

    /// Puts each SCHEDULED attempt of `tasks` in its task queue (Conductor's `addTaskToQueue`).
    fn push_tasks(&self, state: &mut State, tasks: &[wfstate::Task]) {
        let id = State::id();
        let plan = QueuePlan {
            decider: DeciderPlan::Keep,
            remove_tasks: Vec::new(),
            push_tasks: tasks
                .iter()
                .filter(|task| task.status == TaskStatus::Scheduled)
                .map(|task| wfstate::runtime::QueuedTask {
                    workflow: id.clone(),
                    task: task.id.clone(),
                    reference_name: task.reference_name.clone(),
                })
                .collect(),
        };
        let status = state.status();
        state.store.apply_plan(id, &plan, status, NOW_MS);
    }

    fn overwrite(&self, state: &mut State, status: WorkflowStatus, tasks: Vec<wfstate::Task>) {
        let before = Arc::clone(state.workflow());
        let version = state.ghost.commits + 1;
        let workflow = Workflow::from_parts(State::id().clone(), status, version, tasks)
            .expect("a legacy write keeps task ids unique");
        state.store.overwrite(workflow);
        self.record_write(state, &before, false);
    }

    fn sweep(&self, state: &mut State, index: usize, fail: bool, fault: Fault) {
        let actor = ActorId::Sweeper(index as u8);
        let inner = inner_decide_token(index);
        let decide = |mode| SweeperOp::Decide(LegacyDecide::new(sweeper_token(index), inner, mode));
        let mut op = match state.sweepers[index].op.take() {
            Some(op) => op,
            None => match self.variant {
                Variant::LegacySweeper => SweeperOp::Legacy(LegacySweep::new(sweeper_token(index))),
                Variant::LegacyNoLock => decide(DecideMode::NoLock),
                Variant::LegacyStaleSnapshot => decide(DecideMode::StaleSnapshot),
                Variant::LegacyLeaseExpiry => decide(DecideMode::LockFirst),
                Variant::LegacyLostPush => decide(DecideMode::LostPush),
                Variant::LegacyNonReentrant => decide(DecideMode::NonReentrant),
                Variant::LegacyHumanParked => decide(DecideMode::ParkHuman),
                _ => SweeperOp::Fixed(SweepOp::new(sweeper_token(index), NOW_MS, &self.engine)),
            },
        };
        let decider: &dyn Decider = &*self.decider;
        let mut release_failed = false;
        match &mut op {
            SweeperOp::Fixed(sweep) => {
                let Next::Call(call) = sweep.next() else {
                    return self.settle_sweeper(state, index, op, false);
                };
                release_failed = call.kind() == CallKind::Release && fault == Fault::NotDone;
                let missing = call.kind() == CallKind::Acquire
                    && !ProtocolModel::lease_free(state, sweeper_token(index));
                let Some(reply) = self.execute(state, actor, call, fault) else {
                    state.sweepers[index].op = Some(op);
                    return;
                };
                if missing && matches!(reply, Ok(Reply::Acquired(Err(_)))) {
                    state.sweepers[index].misses_left -= 1;
                }
                sweep.resume(reply, decider);
            }
            SweeperOp::Legacy(sweep) => {
                let missing = self.misses(state, index, sweep.call_kind());
                let reply = self.run_legacy(state, actor, sweep.next(), fault, false);
                state.sweepers[index].misses_left -= u8::from(missing);
                sweep.resume(reply, decider);
            }
            SweeperOp::Decide(sweep) => {
                let missing = self.misses(state, index, sweep.call_kind());
                let reply = self.run_legacy(state, actor, sweep.next(), fault, fail);
                state.sweepers[index].misses_left -= u8::from(missing);
                sweep.resume(reply, decider);
            }
        }
        self.settle_sweeper(state, index, op, release_failed);
    }

    /// Puts the sweeper's operation back, or finishes it.
    fn settle_sweeper(&self, state: &mut State, index: usize, op: SweeperOp, release_failed: bool) {
        match op {
            SweeperOp::Fixed(sweep) if matches!(sweep.next(), Next::Done) => {
                let token = sweep.token();
                let outcome = sweep.finish();
                mark!(state, lost_output, outcome.is_none());
                if matches!(
                    outcome,
                    Some(Err(wfstate::runtime::SweepError::Rejected { .. }))
                ) {
                    mark!(state, decision_rejected);
                }
                self.check_released(state, token, release_failed);
            }
            SweeperOp::Legacy(sweep) if matches!(sweep.next(), LegacyNext::Done) => {}
            SweeperOp::Decide(sweep) if matches!(sweep.next(), LegacyNext::Done) => {}
            op => state.sweepers[index].op = Some(op),
        }
    }

    fn check_released(&self, state: &mut State, token: wfstate::runtime::LeaseToken, failed: bool) {
        let holding = state
            .store
            .lease(State::id())
            .is_some_and(|lease| lease.holder == token);
        if holding && !failed {
            mark!(state, finished_holding_lease);
        }
    }

    fn operate(&self, state: &mut State, time_out: bool, fail: bool, fault: Fault) {
        let mut op = match state.operator.op.take() {
            Some(op) => op,
            None => {
                let input = if time_out {
                    state.budgets.task_timeouts -= 1;
                    let Some(live) = state.workflow().active_tasks().next() else {
                        return;
                    };
                    Input::Engine(EngineInput::TimeOutTask {
                        task: live.id.clone(),
                    })
                } else {
                    let input = self.config.script[state.operator.next as usize];
                    state.operator.next += 1;
                    Input::Admin(input)
                };
                let legacy = self.variant == Variant::LegacyArchive
                    && input == Input::Admin(AdminInput::Terminate);
                match input {
                    Input::Engine(EngineInput::TimeOutTask { task })
                        if self.variant == Variant::LegacyTimeoutOverwrite =>
                    {
                        OperatorOp::TimeOut(LegacyTimeOut::new(operator_token(), task))
                    }
                    _ if legacy => OperatorOp::Legacy(LegacyTerminate::new(operator_token())),
                    input => OperatorOp::Fixed(AdminOp::new(
                        State::id().clone(),
                        input,
                        operator_token(),
                        NOW_MS,
                        &self.engine,
                    )),
                }
            }
        };
        let decider: &dyn Decider = &*self.decider;
        let mut release_failed = false;
        match &mut op {
            OperatorOp::TimeOut(timeout) => {
                let reply = self.run_legacy(state, ActorId::Operator, timeout.next(), fault, fail);
                timeout.resume(reply);
            }
            OperatorOp::Fixed(admin) => {
                let Next::Call(call) = admin.next() else {
                    return self.settle_operator(state, op, false);
                };
                release_failed = call.kind() == CallKind::Release && fault == Fault::NotDone;
                let Some(reply) = self.execute(state, ActorId::Operator, call, fault) else {
                    state.operator.op = Some(op);
                    return;
                };
                admin.resume(reply, decider);
            }
            OperatorOp::Legacy(terminate) => {
                let next = terminate.next();
                let reply = self.run_legacy(state, ActorId::Operator, next, fault, fail);
                terminate.resume(reply);
            }
        }
        self.settle_operator(state, op, release_failed);
    }

    fn settle_operator(&self, state: &mut State, op: OperatorOp, release_failed: bool) {
        match op {
            OperatorOp::Fixed(admin) if matches!(admin.next(), Next::Done) => {
                let token = admin.token();
                let outcome = admin.finish();
                // The operator starts only when the lease is free, so its acquire is granted.
                let locked = matches!(
                    outcome,
                    Some(Err(wfstate::runtime::AdminError::Locked { .. }))
                );
                mark!(state, lost_output, outcome.is_none() || locked);
                self.check_released(state, token, release_failed);
            }
            OperatorOp::Legacy(terminate) if matches!(terminate.next(), LegacyNext::Done) => {}
            OperatorOp::TimeOut(timeout) if matches!(timeout.next(), LegacyNext::Done) => {}
            op => state.operator.op = Some(op),
        }
    }

    fn poll(&self, state: &mut State, task: u8, fault: Fault) {
        self.poll_step(state, task, fault);
        self.run_to_end(
            state,
            |s| s.workers[task as usize].poll.is_some(),
            |s| self.poll_step(s, task, Fault::None),
        );
    }

    fn poll_step(&self, state: &mut State, task: u8, fault: Fault) {
        let index = task as usize;
        let actor = ActorId::Worker(task);
        let poll = state.workers[index].poll.take().unwrap_or_else(|| {
            if self.variant == Variant::LegacyPoll {
                WorkerPoll::Legacy(LegacyPoll::new(self.reference(task)))
            } else {
                WorkerPoll::Fixed(PollOp::new(
                    String::from(self.reference(task)),
                    NOW_MS,
                    &self.engine,
                ))
            }
        });
        let mut poll = match poll {
            WorkerPoll::Fixed(poll) => poll,
            WorkerPoll::Legacy(mut poll) => {
                let reply = self.run_legacy(state, actor, poll.next(), fault, false);
                poll.resume(reply);
                if !matches!(poll.next(), LegacyNext::Done) {
                    state.workers[index].poll = Some(WorkerPoll::Legacy(poll));
                    return;
                }
                if let Some(polled) = poll.polled() {
                    let retry = state.workflow().task(polled).map(|t| t.retry_count);
                    self.hold(state, index, retry);
                }
                return;
            }
        };
        let Next::Call(call) = poll.next() else {
            return;
        };
        let Some(reply) = self.execute(state, actor, call, fault) else {
            state.workers[index].poll = Some(WorkerPoll::Fixed(poll));
            return;
        };
        poll.resume(reply, &*self.decider);
        if !matches!(poll.next(), Next::Done) {
            state.workers[index].poll = Some(WorkerPoll::Fixed(poll));
            return;
        }
        let polled = poll.finish();
        mark!(state, lost_output, polled.is_none());
        if let Some(Ok(Some(polled))) = polled {
            let retry = state
                .workflow()
                .task(&polled.task)
                .map(|attempt| attempt.retry_count);
            self.hold(state, index, retry);
            if self.variant == Variant::LegacyLostWakeup {
                // E1: Conductor's poll postpones the workflow's decider entry to the task's
                // response timeout (`adjustDeciderQueuePostpone`).
                self.legacy(state, LegacyNext::Postpone, false);
            }
        }
    }

    /// The worker polled the attempt with retry count `retry`: it works it, unless it worked
    /// that attempt already (a redelivery).
    fn hold(&self, state: &mut State, index: usize, retry: Option<u32>) {
        let worker = &mut state.workers[index];
        if retry.is_some() && worker.worked != retry {
            worker.holding = retry;
        }
    }

    /// E9's starter: decides on the workflow as it created it (RUNNING, no task), unlocked,
    /// and creates the task rows of that decision.
    fn start(&self, state: &mut State) {
        state.budgets.starter = 0;
        let created = Workflow::new(State::id().clone());
        let Decision::Act(input) = self.decider.decide(&created) else {
            return;
        };
        let Some(known) = stepped(&created, &Input::Engine(input)) else {
            return;
        };
        let tasks = known.tasks().to_vec();
        if !tasks.is_empty() {
            self.legacy(
                state,
                LegacyNext::AddTasks {
                    tasks: &tasks,
                    push: true,
                },
                false,
            );
        }
    }

    fn work(&self, state: &mut State, task: u8, outcome: ReportStatus) {
        let worker = &mut state.workers[task as usize];
        let Some(retry_count) = worker.holding.take() else {
            return;
        };
        worker.worked = Some(retry_count);
        if outcome != ReportStatus::Completed && self.config.worker_failures.is_some() {
            state.budgets.worker_failures = state.budgets.worker_failures.saturating_sub(1);
        }
        let progress = self
            .config
            .progress_reports
            .then_some(ReportStatus::InProgress);
        for status in progress.into_iter().chain([outcome]) {
            let message = Message {
                task,
                retry_count,
                status,
            };
            if self.config.atomic_operations && self.config.duplicates_per_task == 0 {
                insert_sorted(&mut state.network, message.clone());
                self.deliver(state, &message, Fault::None);
            } else {
                insert_sorted(&mut state.network, message);
            }
        }
    }

    fn deliver(&self, state: &mut State, message: &Message, fault: Fault) {
        let Some(position) = state.network.iter().position(|m| m == message) else {
            return;
        };
        state.network.remove(position);
        let task = self.attempt_id(message).into_owned();
        let run = if self.variant == Variant::LegacyBlindReport {
            ReportRun::Legacy(LegacyReport::new(task, message.status), message.clone())
        } else if matches!(
            self.variant,
            Variant::LegacyLostWakeup | Variant::LegacyHumanParked
        ) {
            let token = report_token(state, message);
            let push = self.variant == Variant::LegacyHumanParked;
            let op = LegacyReportDecide::new(task, message.status, token, push);
            ReportRun::Decide(op, message.clone())
        } else {
            let report = Report::new(task, message.status);
            ReportRun::Fixed(
                ReportOp::new(State::id().clone(), report, NOW_MS, &self.engine),
                message.clone(),
            )
        };
        state.reports.push(Shared::new(run));
        let index = state.reports.len() - 1;
        self.report(state, index, fault);
        self.run_to_end(
            state,
            |s| s.reports.len() > index,
            |s| self.report(s, index, Fault::None),
        );
    }

    fn report(&self, state: &mut State, index: usize, fault: Fault) {
        let actor = ActorId::Report(index as u8);
        let mut run = state.reports.remove(index);
        let finished = match &mut *run {
            ReportRun::Fixed(op, message) => {
                let Next::Call(call) = op.next() else {
                    return;
                };
                let Some(reply) = self.execute(state, actor, call, fault) else {
                    if let Some(pending) = state.pending.last_mut() {
                        pending.parked = Some(run);
                    }
                    return;
                };
                op.resume(reply, &*self.decider);
                if matches!(op.next(), Next::Done) {
                    let outcome = op.clone().finish();
                    mark!(state, lost_output, outcome.is_none());
                    match outcome {
                        Some(Ok(applied)) if applied.step.outcome() == Outcome::Progress => {
                            state.ghost.last_edge =
                                Some((TaskStatus::InProgress, TaskStatus::InProgress));
                        }
                        // Not acknowledged: the broker redelivers it.
                        Some(Err(
                            wfstate::runtime::ReportError::Store(_)
                            | wfstate::runtime::ReportError::Contention { .. },
                        )) => insert_sorted(&mut state.network, message.clone()),
                        _ => {}
                    }
                    true
                } else {
                    false
                }
            }
            ReportRun::Legacy(op, _) => {
                let reply = self.run_legacy(state, actor, op.next(), fault, false);
                op.resume(reply);
                matches!(op.next(), LegacyNext::Done)
            }
            ReportRun::Decide(op, _) => {
                let reply = self.run_legacy(state, actor, op.next(), fault, false);
                op.resume(reply, &*self.decider);
                matches!(op.next(), LegacyNext::Done)
            }
        };
        if !finished {
            state.reports.insert(index, run);
        }
    }

    fn run_outbox(&self, state: &mut State, fail: bool, fault: Fault) {
        let mut op = state
            .outbox
            .take()
            .unwrap_or_else(|| OutboxOp::new(NOW_MS, self.engine.outbox_claim_ms, 1));
        // With one entry per pass, the action that ends the pass says what the pass did:
        // (performed, failed, a store call failed).
        let expected;
        let reply = match op.next() {
            Next::Done => return,
            Next::Perform(entry) => {
                expected = (0, usize::from(fail), false);
                if fail {
                    state.budgets.effect_failures -= 1;
                    mark!(state, effect_failed);
                } else {
                    mark!(state, effect_retried, entry.attempts > 1);
                    mark!(state, archived, entry.effect == wfstate::Effect::Archive);
                }
                Ok(Reply::Performed(!fail))
            }
            Next::Call(call) => {
                let acknowledging = call.kind() == CallKind::AckOutbox;
                match self.execute(state, ActorId::Outbox, call, fault) {
                    Some(reply) => {
                        let ok = reply.is_ok();
                        expected = (usize::from(acknowledging && ok), 0, !ok);
                        reply
                    }
                    None => {
                        *state.outbox = Some(op);
                        return;
                    }
                }
            }
        };
        op.resume(reply, &*self.decider);
        if matches!(op.next(), Next::Done) {
            let pass = op.finish();
            let reported = pass
                .as_ref()
                .map(|pass| (pass.performed, pass.failed, pass.store_failure.is_some()));
            mark!(state, lost_output, reported != Some(expected));
        } else {
            *state.outbox = Some(op);
        }
    }

    /// Call-by-call: the pending commit's plan is applied, and its actor gets its reply.
    fn apply_plan(&self, state: &mut State, index: usize) {
        if index >= state.pending.len() {
            return;
        }
        let pending = state.pending.remove(index);
        state
            .store
            .apply_plan(State::id(), &pending.plan, pending.status, NOW_MS);
        let decider: &dyn Decider = &*self.decider;
        match pending.actor {
            ActorId::Sweeper(index) => {
                let index = index as usize;
                if let Some(mut op) = state.sweepers[index].op.take() {
                    if let SweeperOp::Fixed(sweep) = &mut op {
                        sweep.resume(pending.reply, decider);
                    }
                    self.settle_sweeper(state, index, op, false);
                }
            }
            ActorId::Operator => {
                if let Some(mut op) = state.operator.op.take() {
                    if let OperatorOp::Fixed(admin) = &mut op {
                        admin.resume(pending.reply, decider);
                    }
                    self.settle_operator(state, op, false);
                }
            }
            ActorId::Worker(task) => {
                let index = task as usize;
                if let Some(WorkerPoll::Fixed(mut poll)) = state.workers[index].poll.take() {
                    poll.resume(pending.reply, decider);
                    if matches!(poll.next(), Next::Done) {
                        if let Some(Ok(Some(polled))) = poll.finish() {
                            let retry = state.workflow().task(&polled.task).map(|t| t.retry_count);
                            state.workers[index].holding = retry;
                        }
                    } else {
                        state.workers[index].poll = Some(WorkerPoll::Fixed(poll));
                    }
                }
            }
            ActorId::Report(_) => {
                if let Some(mut run) = pending.parked {
                    let mut finished = false;
                    if let ReportRun::Fixed(op, message) = &mut *run {
                        op.resume(pending.reply, decider);
                        if matches!(op.next(), Next::Done) {
                            finished = true;
                            if matches!(
                                op.clone().finish(),
                                Some(Err(wfstate::runtime::ReportError::Store(_)))
                            ) {
                                insert_sorted(&mut state.network, message.clone());
                            }
                        }
                    }
                    if !finished {
                        state.reports.push(run);
                    }
                }
            }
            ActorId::Outbox => {}
        }
    }
}

/// Is `token` the token of an operation still running?
fn holds_live_lease(state: &State, token: wfstate::runtime::LeaseToken) -> bool {
    let sweeping = state
        .sweepers
        .iter()
        .enumerate()
        .any(|(index, sweeper)| sweeper.op.is_some() && sweeper_token(index) == token);
    let deciding = state
        .reports
        .iter()
        .any(|run| run.deciding() == Some(token));
    sweeping || deciding || (state.operator.op.is_some() && operator_token() == token)
}

/// A lease token for a deciding report of `message` (E1, E5) that no in-flight report holds:
/// its attempt, and the lowest copy number free (a duplicated report's copies may decide at
/// once, each with its own token).
fn report_token(state: &State, message: &Message) -> wfstate::runtime::LeaseToken {
    let attempt = u64::from(message.task) << 40 | u64::from(message.retry_count) << 8;
    let taken: Vec<_> = state.reports.iter().filter_map(|run| run.token()).collect();
    (0..=u64::from(u8::MAX))
        .map(|copy| report_decide_token(attempt | copy))
        .find(|token| !taken.contains(token))
        .unwrap_or_else(|| report_decide_token(attempt))
}

fn sweeper_call(op: &SweeperOp) -> Option<CallKind> {
    match op {
        SweeperOp::Fixed(sweep) => call_kind(sweep),
        SweeperOp::Legacy(sweep) => sweep.call_kind(),
        SweeperOp::Decide(sweep) => sweep.call_kind(),
    }
}

fn operator_call(op: &OperatorOp) -> Option<CallKind> {
    match op {
        OperatorOp::Fixed(admin) => call_kind(admin),
        OperatorOp::Legacy(terminate) => match terminate.next() {
            LegacyNext::Call(call) => Some(call.kind()),
            _ => None,
        },
        OperatorOp::TimeOut(timeout) => match timeout.next() {
            LegacyNext::Call(call) => Some(call.kind()),
            _ => None,
        },
    }
}

fn call_kind(op: &impl Operation) -> Option<CallKind> {
    match op.next() {
        Next::Call(call) => Some(call.kind()),
        Next::Perform(_) | Next::Done => None,
    }
}

thread_local! {
    /// The actions the `completion` property listed last on this thread: the model's id, the
    /// state and its actions. stateright evaluates a state's properties and then lists its
    /// actions on the same thread, so the second listing is this one, taken.
    static LISTED: std::cell::RefCell<Option<(u64, State, Vec<Action>)>> =
        const { std::cell::RefCell::new(None) };
}

impl ProtocolModel {
    /// Keeps `actions`, the actions of `state`, for the next [`Model::actions`] of this state
    /// on this thread.
    pub(crate) fn remember_actions(&self, state: &State, actions: Vec<Action>) {
        LISTED.with(|listed| {
            *listed.borrow_mut() = Some((self.tally.model_id, state.clone(), actions));
        });
    }

    /// Appends the remembered actions of `state`, if the last ones remembered on this thread
    /// are this model's for this state (compared by contents; a state cloned from it compares
    /// by pointers). Each is given out once.
    fn recall_actions(&self, state: &State, actions: &mut Vec<Action>) -> bool {
        LISTED.with(|listed| {
            let mut listed = listed.borrow_mut();
            let hit = matches!(&*listed, Some((id, known, _)) if *id == self.tally.model_id && known == state);
            if hit {
                if let Some((_, _, known)) = listed.take() {
                    actions.extend(known);
                }
            }
            hit
        })
    }
}

impl Model for ProtocolModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let tasks = self.config.definition.tasks.len();
        // The workflow is started by the runtime's own start operation.
        let mut store = wfstate::runtime::StoreState::new();
        let mut start = StartOp::new(State::id().clone(), NOW_MS);
        while let Next::Call(call) = start.next() {
            let reply = store.execute(call);
            start.resume(Ok(reply), &*self.decider);
        }
        let started = start.finish();
        // Canonical from the start: a successor that leaves the store shared is not renumbered.
        store.canonicalize();
        let lost_output = started != Some(Ok(()));
        vec![State {
            store: Shared::new(store),
            sweepers: Shared::new(vec![
                Shared::new(Sweeper {
                    op: None,
                    misses_left: self.config.lock_misses,
                });
                self.config.sweepers
            ]),
            operator: Shared::new(Operator { next: 0, op: None }),
            workers: Shared::new(vec![
                Worker {
                    poll: None,
                    holding: None,
                    worked: None,
                };
                tasks
            ]),
            reports: Shared::new(Vec::new()),
            network: Shared::new(Vec::new()),
            outbox: Shared::new(None),
            pending: Shared::new(Vec::new()),
            budgets: Shared::new(Budgets {
                duplicates: vec![self.config.duplicates_per_task; tasks],
                effect_failures: self.config.effect_failures,
                lease_expiries: self.config.lease_expiries,
                task_timeouts: self.config.task_timeouts,
                store_failures: self.config.store_failures,
                ticks: self.config.ticks,
                starter: u8::from(self.variant == Variant::LegacyUnlockedStart),
                worker_failures: self.config.worker_failures.unwrap_or(0),
            }),
            ghost: Ghost {
                lost_output,
                ..Ghost::default()
            },
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if self.recall_actions(state, actions) {
            return;
        }
        if let Some(message) = self.ended_report(state) {
            actions.push(Action::Deliver {
                message,
                fault: Fault::None,
            });
            return;
        }
        self.sweep_actions(state, actions);
        self.operator_actions(state, actions);
        self.worker_actions(state, actions);
        self.network_actions(state, actions);
        if !self.config.quiet_outbox || actions.is_empty() {
            self.outbox_actions(state, actions);
        }
        self.environment_actions(state, actions);
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut state = last.clone();
        match action {
            Action::Sweep {
                sweeper,
                fail,
                fault,
            } => {
                let index = sweeper as usize;
                self.sweep(&mut state, index, fail, fault);
                self.run_to_end(
                    &mut state,
                    |s| s.sweepers[index].op.is_some(),
                    |s| self.sweep(s, index, false, Fault::None),
                );
            }
            Action::Start => self.start(&mut state),
            Action::Operate {
                time_out,
                fail,
                fault,
            } => {
                self.operate(&mut state, time_out, fail, fault);
                self.run_to_end(
                    &mut state,
                    |s| s.operator.op.is_some(),
                    |s| self.operate(s, time_out, false, Fault::None),
                );
            }
            Action::Poll { task, fault } => self.poll(&mut state, task, fault),
            Action::Work { task, outcome } => self.work(&mut state, task, outcome),
            Action::Deliver { message, fault } => self.deliver(&mut state, &message, fault),
            Action::Report { index, fault } => self.report(&mut state, index as usize, fault),
            Action::Duplicate { message } => {
                state.budgets.duplicates[message.task as usize] -= 1;
                insert_sorted(&mut state.network, message);
            }
            Action::Outbox { fail, fault } => self.run_outbox(&mut state, fail, fault),
            Action::ApplyPlan { index } => self.apply_plan(&mut state, index as usize),
            Action::Expire => {
                let orphan = state
                    .store
                    .lease(State::id())
                    .is_some_and(|lease| !holds_live_lease(&state, lease.holder));
                state.store.expire_lease(State::id());
                if !orphan {
                    state.budgets.lease_expiries -= 1;
                    mark!(state, lease_expired);
                }
            }
            Action::Tick => {
                let mut others = Vec::new();
                self.sweep_actions(last, &mut others);
                self.operator_actions(last, &mut others);
                self.worker_actions(last, &mut others);
                self.network_actions(last, &mut others);
                if !self.config.quiet_outbox || others.is_empty() {
                    self.outbox_actions(last, &mut others);
                }
                if !others.is_empty() || !last.pending.is_empty() {
                    state.budgets.ticks = state.budgets.ticks.saturating_sub(1);
                }
                state.store.reveal(NOW_MS);
            }
        }
        // A store still shared with the previous state is canonical already.
        if !Shared::same(&state.store, &last.store) {
            state.store.canonicalize();
        }
        if self.symmetric() {
            state = super::symmetry::canonical(state);
        }
        Some(state)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        super::properties::all(self)
    }
}

fn insert_sorted(network: &mut Vec<Message>, message: Message) {
    let position = network.partition_point(|m| m <= &message);
    network.insert(position, message);
}
