//! The pure core: statuses, state, inputs, the transition function, effects, the reference
//! decider, invariant checks and the generated transition tables. `no_std` + `alloc`; no IO, no
//! clock, no randomness.

pub(crate) mod decider;
pub(crate) mod effect;
pub(crate) mod id;
pub(crate) mod index;
pub(crate) mod input;
pub(crate) mod invariant;
mod list;
pub(crate) mod rejection;
pub(crate) mod status;
pub(crate) mod step;
pub(crate) mod table;
pub(crate) mod task;
pub(crate) mod transition;
pub(crate) mod workflow;
