//! The stateright model of the wfstate protocol (SPEC sections 7–8).

pub mod config;
pub mod definition;
pub mod legacy;
pub mod properties;
pub mod protocol;
pub mod run;
pub mod state;
pub mod symmetry;
pub mod trace;

pub use config::{Config, Variant};
pub use definition::{check_definition, Bounds, DefinitionReport, Finding, Unchecked};
pub use protocol::{Action, Fault, ProtocolModel, SharedDecider};
pub use run::{check, replay, Options, Replay, Report, Schedule};
pub use state::State;
