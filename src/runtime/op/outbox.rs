//! The outbox run: claim owed post-commit effects, perform each through the driver's effect
//! handler, acknowledge each that succeeded. A failed effect, or a failed acknowledgement, leaves
//! its entry claimed until the claim runs out; then it is taken again (I7, at least once).
//!
//! | state | call | reply → next |
//! |---|---|---|
//! | Take | take_outbox | entries → Perform (first); none → Done; failed → Done(error) |
//! | Perform | (effect handler) | success → Ack; failure → Perform (next) or Done |
//! | Ack | ack_outbox | any → Perform (next) or Done; failed → Done(error) |

use std::collections::VecDeque;

use super::super::contract::{Call, CallKind, OutboxEntry, Reply, StoreFailure};
use super::{replied, CallFailed, Decider, Next, Operation};

/// What one outbox pass did, as the machine sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct OutboxPass {
    /// Entries performed and acknowledged.
    pub performed: usize,
    /// Entries whose effect failed, left for a retry after the claim runs out.
    pub failed: usize,
    /// A store call that failed and ended the pass; its entries are retried after their claim.
    pub store_failure: Option<CallFailed>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum OutboxPc {
    Take,
    Perform,
    Ack,
    Done,
}

/// One outbox pass of at most `max` entries, as a state machine (the table in this module's
/// source and in `docs/design.md`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutboxOp {
    now_ms: u64,
    claim_ms: u64,
    max: usize,
    entries: VecDeque<OutboxEntry>,
    pass: OutboxPass,
    pc: OutboxPc,
}

impl OutboxOp {
    /// A pass at `now_ms` over at most `max` entries, each claimed for `claim_ms`.
    pub fn new(now_ms: u64, claim_ms: u64, max: usize) -> Self {
        OutboxOp {
            now_ms,
            claim_ms,
            max,
            entries: VecDeque::new(),
            pass: OutboxPass::default(),
            pc: OutboxPc::Take,
        }
    }

    /// The next entry, or the end.
    fn advance(&mut self) -> OutboxPc {
        self.entries.pop_front();
        if self.entries.is_empty() {
            OutboxPc::Done
        } else {
            OutboxPc::Perform
        }
    }

    fn failed(&mut self, failure: CallFailed) -> OutboxPc {
        self.pass.store_failure = Some(failure);
        self.entries.clear();
        OutboxPc::Done
    }
}

impl Operation for OutboxOp {
    type Output = OutboxPass;

    fn next(&self) -> Next<'_> {
        match (&self.pc, self.entries.front()) {
            (OutboxPc::Take, _) => Next::Call(Call::TakeOutbox {
                now_ms: self.now_ms,
                claim_ms: self.claim_ms,
                max: self.max,
            }),
            (OutboxPc::Perform, Some(entry)) => Next::Perform(entry),
            (OutboxPc::Ack, Some(entry)) => Next::Call(Call::AckOutbox {
                sequence: entry.sequence,
            }),
            (OutboxPc::Perform | OutboxPc::Ack, None) | (OutboxPc::Done, _) => Next::Done,
        }
    }

    fn resume(&mut self, reply: Result<Reply, StoreFailure>, _decider: &dyn Decider) {
        self.pc = match self.pc {
            OutboxPc::Take => match replied(CallKind::TakeOutbox, reply) {
                Ok(Reply::Outbox(entries)) => {
                    self.entries = entries.into();
                    if self.entries.is_empty() {
                        OutboxPc::Done
                    } else {
                        OutboxPc::Perform
                    }
                }
                Ok(_) => self.failed(CallFailed::mismatch(CallKind::TakeOutbox)),
                Err(failure) => self.failed(failure),
            },
            OutboxPc::Perform => match reply {
                Ok(Reply::Performed(true)) => OutboxPc::Ack,
                Ok(_) | Err(_) => {
                    self.pass.failed += 1;
                    self.advance()
                }
            },
            OutboxPc::Ack => match replied(CallKind::AckOutbox, reply) {
                Ok(Reply::Moved(_)) => {
                    self.pass.performed += 1;
                    self.advance()
                }
                Ok(_) => self.failed(CallFailed::mismatch(CallKind::AckOutbox)),
                Err(failure) => self.failed(failure),
            },
            OutboxPc::Done => OutboxPc::Done,
        };
    }

    fn decides(&self) -> bool {
        false
    }

    fn state_name(&self) -> &'static str {
        match self.pc {
            OutboxPc::Take => "Take",
            OutboxPc::Perform => "Perform",
            OutboxPc::Ack => "Ack",
            OutboxPc::Done => "Done",
        }
    }

    fn finish(self) -> Option<OutboxPass> {
        match self.pc {
            OutboxPc::Done => Some(self.pass),
            OutboxPc::Take | OutboxPc::Perform | OutboxPc::Ack => None,
        }
    }
}
