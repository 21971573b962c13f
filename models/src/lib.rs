//! Stateright models of the wfstate protocol (SPEC sections 7–8), and the code behind the
//! `wfstate` command (model check, explore, audit, replay, table).

pub mod cli;
pub mod model;

#[doc = include_str!("../../docs/model.md")]
pub mod manual {}
