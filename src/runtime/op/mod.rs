//! The runtime's operations as values (SPEC section 7.1): each is a state machine that yields
//! the next store call ([`Next::Call`]) and is resumed with the store's reply. None touches a
//! store, a mutex or a clock. The [`Engine`](super::Engine) drives them over any
//! [`Store`](super::Store); the stateright model drives the very same machines over a
//! [`StoreState`](super::StoreState), one call per model step.
//!
//! What an operation does after each kind of failure is decided here, once: nothing is lost (a
//! popped decider entry or a polled task stays in its queue, hidden until its lease runs out; a
//! commit is atomic with its outbox entries and queue plan), the lease it took is released, and
//! the caller gets a typed error.

mod admin;
mod outbox;
mod sweep;
mod write;

pub use admin::{AdminOp, InspectOp, Inspection, StartOp};
pub use outbox::{OutboxOp, OutboxPass};
pub use sweep::{Sweep, SweepOp};
pub use write::{Applied, PollOp, Polled, ReportOp};

use super::contract::{Call, CallKind, OutboxEntry, QueuePlan, Reply, StoreFailure};
use crate::{decide, Decision, Definition, Step, Workflow};

/// An applied step and its queue plan, waiting to be committed. It is most of a machine's size,
/// so it stays out of the program counter, which is moved on each call: the sweep and the report
/// keep it in a field set exactly in their Commit state; the poll (moved whole on every, mostly
/// empty, poll) and the admin operation keep it boxed in theirs (docs/performance.md). Either
/// way equality and hashing see the same states as before, so the model's counts are the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Pending {
    pub(crate) step: Step,
    pub(crate) plan: QueuePlan,
}

impl Pending {
    pub(crate) fn boxed(step: Step, plan: QueuePlan) -> Box<Pending> {
        Box::new(Pending { step, plan })
    }
}

/// What an operation needs next.
#[derive(Debug)]
pub enum Next<'a> {
    /// Perform this store call and resume with its reply.
    Call(Call<'a>),
    /// Perform this post-commit effect (the driver's effect handler, not the store) and resume
    /// with [`Reply::Performed`].
    Perform(&'a OutboxEntry),
    /// Finished: take the output with [`Operation::finish`].
    Done,
}

/// A runtime operation as a state machine.
pub trait Operation {
    /// What it returns.
    type Output;

    /// The next call, effect or the end. Pure: asking twice gives the same answer.
    fn next(&self) -> Next<'_>;

    /// Resumes with the reply to the last [`Next::Call`] (or [`Next::Perform`]). `decider` is
    /// asked by the operations that decide (the sweep).
    fn resume(&mut self, reply: Result<Reply, StoreFailure>, decider: &dyn Decider);

    /// May the next [`resume`](Operation::resume) ask the decider (user code)? A driver then
    /// resumes outside any store session ([`Store::session`](super::Store::session)). The
    /// default, `true`, is always safe: each call then goes to the store on its own. The
    /// runtime's machines answer `true` only where they decide (the sweep's Load). Pure, like
    /// `next`: the engine asks it before making the call.
    fn decides(&self) -> bool {
        true
    }

    /// The output, once [`next`](Operation::next) says [`Next::Done`]; `None` before.
    fn finish(self) -> Option<Self::Output>;

    /// The name of the machine's current state, as the tables in `docs/design.md` name it.
    fn state_name(&self) -> &'static str;
}

/// What the sweeper asks for the next engine input of a workflow: one trait for the runtime and
/// the model, so an engine author's decider is model-checked as it runs.
///
/// [`Definition`] (the reference linear decider, [`decide`]) and any
/// `Fn(&Workflow) -> Decision` are deciders. Return [`Decision::Idle`] only for a workflow that
/// is not RUNNING: the sweeper then removes it from the decider queue (an `Idle` RUNNING
/// workflow is kept queued, I6a).
pub trait Decider {
    /// The next input for `workflow`, `Wait` while a task is live, `Idle` when not RUNNING.
    fn decide(&self, workflow: &Workflow) -> Decision;
}

impl Decider for Definition {
    fn decide(&self, workflow: &Workflow) -> Decision {
        decide(workflow, self)
    }
}

impl<F> Decider for F
where
    F: Fn(&Workflow) -> Decision,
{
    fn decide(&self, workflow: &Workflow) -> Decision {
        self(workflow)
    }
}

/// A store call that failed, with the call's kind: the error every operation returns for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("store call {call} failed: {failure}")]
pub struct CallFailed {
    /// Which call.
    pub call: CallKind,
    /// How.
    pub failure: StoreFailure,
}

impl CallFailed {
    // Failure paths are cold and out of line here and in each machine's failure helpers: the
    // machines' hot arms stay small in the instruction cache (docs/performance.md).
    #[cold]
    #[inline(never)]
    pub(crate) fn new(call: CallKind, failure: StoreFailure) -> Self {
        CallFailed { call, failure }
    }

    /// A reply that does not answer its call: a store bug, treated as an ambiguous failure.
    #[cold]
    #[inline(never)]
    pub(crate) fn mismatch(call: CallKind) -> Self {
        CallFailed {
            call,
            failure: StoreFailure::ambiguous("the reply does not answer the call"),
        }
    }

    /// May the call have taken effect?
    pub fn is_ambiguous(&self) -> bool {
        !self.failure.certainly_not_done()
    }
}

/// The reply to `call`, or the failure with its kind.
pub(crate) fn replied(
    call: CallKind,
    reply: Result<Reply, StoreFailure>,
) -> Result<Reply, CallFailed> {
    reply.map_err(|failure| CallFailed::new(call, failure))
}
