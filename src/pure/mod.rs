//! The pure core: statuses, state, inputs, the transition function, effects, the reference
//! decider, invariant checks and the generated transition tables. `no_std` + `alloc`; no IO, no
//! clock, no randomness.

pub mod decider;
pub mod effect;
pub mod id;
pub(crate) mod index;
pub mod input;
pub mod invariant;
mod list;
pub mod rejection;
pub mod status;
pub mod step;
pub mod table;
pub mod task;
pub mod transition;
pub mod workflow;

pub use step::Outcome;
