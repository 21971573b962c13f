//! Symmetry over the two sweepers (issue 14): the sweepers of a configuration run the same
//! machine with the same budgets, so a state and the state with the two sweepers swapped (their
//! operations, their lock-miss budgets, and the lease tokens the store holds for them renamed)
//! behave alike: every property has the same value in both, and the successors of one are the
//! swapped successors of the other. The checker explores one state of each such pair, the
//! [`representative`]. `models/tests/model_check.rs` checks that the swap is an automorphism of
//! the explored graph, that the checker keeps exactly one state of each pair, and that every
//! verdict is the same with and without it (`docs/model.md`, "Symmetry over the sweepers").

use std::hash::{DefaultHasher, Hash, Hasher};

use wfstate::runtime::LeaseToken;

use super::state::{sweeper_token, ActorId, State, SweeperOp};

/// Where a state stands against its swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// The state is its own representative (or symmetry does not apply to it).
    Kept,
    /// Its swap is the representative.
    Swapped,
    /// The cheap comparison cannot tell: the representative is the one with the smaller hash.
    Tied,
}

/// Does the reduction apply to `state`: two sweepers, each idle or running the runtime's sweep?
/// (The legacy sweeps hold tokens the swap does not rename; the legacy variants run without it.)
pub fn applies(state: &State) -> bool {
    state.sweepers.len() == 2
        && state
            .sweepers
            .iter()
            .all(|sweeper| matches!(sweeper.op, None | Some(SweeperOp::Fixed(_))))
}

/// The representative of `state` and its swap: the same for both. A state whose sweepers differ
/// in something the swap does not change (one is sweeping and the other idle, they hold
/// different lock-miss budgets, one holds the lease) is ordered by that; otherwise both are
/// built and the one with the smaller hash is taken.
pub fn representative(state: &State) -> State {
    canonical(state.clone())
}

/// [`representative`] of an owned state, which it swaps in place where the swap is the
/// representative and returns as it is where it is its own: no copy. The fixed protocol's
/// `next_state` hands the checker each successor this way (`Config::symmetric_sweepers`).
pub fn canonical(mut state: State) -> State {
    let holders = Holders::of(&state);
    match order(&state, holders) {
        Order::Kept => state,
        Order::Swapped => {
            swap(&mut state, holders);
            state
        }
        Order::Tied => {
            let other = swapped(&state);
            if hash_of(&other) < hash_of(&state) {
                other
            } else {
                state
            }
        }
    }
}

/// `state` with its two sweepers swapped: sweeper 0 has what sweeper 1 had, holding sweeper 0's
/// token, and the other way round; the store's lease and queue entries held by either token
/// are held by the other, and so are the call-by-call path's pending commits. Only for a state
/// the reduction [`applies`] to; any other comes back unchanged.
pub fn swapped(state: &State) -> State {
    let mut next = state.clone();
    swap(&mut next, Holders::of(state));
    next
}

/// Swaps the two sweepers of `state` in place, as [`swapped`] describes; `holders` are its own.
fn swap(state: &mut State, holders: Holders) {
    if !applies(state) {
        return;
    }
    let sweepers = &mut *state.sweepers;
    sweepers.swap(0, 1);
    for (index, sweeper) in sweepers.iter_mut().enumerate() {
        if sweeper.op.is_some() {
            if let Some(SweeperOp::Fixed(op)) = &mut sweeper.op {
                op.rename(sweeper_token(index));
            }
        }
    }
    if holders.any_sweeper() {
        state.store.rename_holders(rename);
    }
    if state
        .pending
        .iter()
        .any(|pending| matches!(pending.actor, ActorId::Sweeper(_)))
    {
        for pending in state.pending.iter_mut() {
            if let ActorId::Sweeper(index) = pending.actor {
                pending.actor = ActorId::Sweeper(1 - index.min(1));
            }
        }
    }
}

/// Sweeper 0's token for sweeper 1's and the other way round; any other token as it is.
fn rename(token: LeaseToken) -> LeaseToken {
    if token == sweeper_token(0) {
        sweeper_token(1)
    } else if token == sweeper_token(1) {
        sweeper_token(0)
    } else {
        token
    }
}

/// Who holds the workflow's lease and its decider entry: the model's only holdings by
/// sweepers, read once per state for both the order and the swap.
#[derive(Debug, Clone, Copy)]
struct Holders {
    lease: Option<LeaseToken>,
    decider: Option<LeaseToken>,
}

impl Holders {
    fn of(state: &State) -> Self {
        let id = State::id();
        Holders {
            lease: state.store.lease(id).map(|lease| lease.holder),
            decider: state.store.decider_holder(id),
        }
    }

    /// Does a sweeper hold either (a rename of anything else would find nothing to change)?
    fn any_sweeper(self) -> bool {
        let is_sweeper = |token: LeaseToken| rename(token) != token;
        self.lease.is_some_and(is_sweeper) || self.decider.is_some_and(is_sweeper)
    }
}

/// What tells the two sweepers apart without naming either: whether it is sweeping, its
/// lock-miss budget, whether it holds the lease and the decider entry, whether a commit of its
/// waits for its plan. The swap exchanges the two keys.
fn key(state: &State, index: usize, holders: Holders) -> (bool, u8, bool, bool, bool) {
    let sweeper = &state.sweepers[index];
    let token = Some(sweeper_token(index));
    (
        sweeper.op.is_some(),
        sweeper.misses_left,
        holders.lease == token,
        holders.decider == token,
        state
            .pending
            .iter()
            .any(|pending| pending.actor == ActorId::Sweeper(index as u8)),
    )
}

fn order(state: &State, holders: Holders) -> Order {
    if !applies(state) {
        return Order::Kept;
    }
    let (first, second) = (key(state, 0, holders), key(state, 1, holders));
    match first.cmp(&second) {
        std::cmp::Ordering::Less => Order::Kept,
        std::cmp::Ordering::Greater => Order::Swapped,
        // Both idle, holding nothing, no commit waiting: the swap is the state itself.
        std::cmp::Ordering::Equal if !first.0 && !first.2 && !first.3 && !first.4 => Order::Kept,
        std::cmp::Ordering::Equal => Order::Tied,
    }
}

/// A hash with fixed keys: the same state gives the same value on every thread and run.
fn hash_of(state: &State) -> u64 {
    let mut hasher = DefaultHasher::new();
    state.hash(&mut hasher);
    hasher.finish()
}
