//! # wfstate
//!
//! A verified state core for Conductor-style workflow engines: a pure, versioned transition
//! function over workflow and task status that rejects illegal input with typed errors, treats
//! duplicates as no-ops, and returns effects as data.
//!
//! The core is deterministic and sans-IO: no networking, no clock, no randomness. It takes the
//! current [`Workflow`] and one [`Input`] and returns a [`Rejection`] or a [`Step`]; the caller
//! persists the step with compare-and-swap on [`Step::read_version`], then performs its
//! [`Effect`]s in order.
//!
//! ## The driving loop
//!
//! ```
//! use wfstate::{
//!     decide, transition, AdminInput, Decision, Definition, Effect, Input, Report,
//!     ReportStatus, TaskDefinition, TaskStatus, Workflow, WorkflowStatus,
//! };
//!
//! let definition = Definition::new([TaskDefinition::new("fetch"), TaskDefinition::new("store")]);
//! let mut stored = Workflow::new("order-42");
//!
//! // The sweeper: decide, step, persist (compare-and-swap), then perform the effects in order.
//! let Decision::Act(input) = decide(&stored, &definition) else { unreachable!() };
//! let step = transition(&stored, &input.into()).expect("scheduling the first task is legal");
//! assert_eq!(step.read_version(), 0);
//! stored.apply(&step).expect("nobody wrote since we read");
//! assert!(matches!(step.effects()[1], Effect::PushToTaskQueue { .. }));
//!
//! // A worker reports; a redelivery of the same report is a recognisable duplicate.
//! let fetch = stored.tasks()[0].id.clone();
//! let done = Input::from(Report::new(fetch.clone(), ReportStatus::Completed));
//! assert!(stored.advance(&done).unwrap().is_applied());
//! assert!(stored.advance(&done).unwrap().is_duplicate());
//!
//! // A late IN_PROGRESS after COMPLETED is rejected, and changes nothing (D2).
//! let late = Input::from(Report::new(fetch.clone(), ReportStatus::InProgress));
//! let version = stored.version();
//! assert!(stored.advance(&late).is_err());
//! assert_eq!(stored.version(), version);
//!
//! // Terminate cancels every live task in the same step; archiving is only an effect (D1).
//! let Decision::Act(next) = decide(&stored, &definition) else { unreachable!() };
//! stored.advance(&next.into()).unwrap();
//! let step = stored.advance(&AdminInput::Terminate.into()).unwrap();
//! assert_eq!(stored.status(), WorkflowStatus::Terminated);
//! assert_eq!(stored.tasks()[1].status, TaskStatus::Canceled);
//! assert!(step.effects().contains(&Effect::Archive));
//! assert!(wfstate::check(&stored).is_empty());
//! ```
//!
//! See `docs/design.md` for the effect-order contract and the writer classes, and
//! `docs/invariants.md` for I1–I7.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod pure;

#[cfg(feature = "std")]
pub mod runtime;

#[cfg(feature = "conductor")]
pub mod conductor;

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[doc = include_str!("../docs/design.md")]
pub mod design {}

#[doc = include_str!("../docs/invariants.md")]
pub mod invariants {}

#[doc = include_str!("../docs/transitions.md")]
pub mod transitions {}

#[doc = include_str!("../docs/testing.md")]
pub mod testing {}

pub use crate::pure::decider::{decide, Decision, Definition, TaskDefinition};
pub use crate::pure::effect::{Effect, Phase};
pub use crate::pure::id::{ReferenceName, TaskId, WorkflowId};
pub use crate::pure::input::{AdminInput, EngineInput, Input, Report, Writer};
pub use crate::pure::invariant::{check, check_pair, Invariant, Violation};
pub use crate::pure::rejection::Rejection;
pub use crate::pure::status::{ReportStatus, TaskStatus, UnknownStatus, WorkflowStatus};
pub use crate::pure::step::{Changes, Outcome, Step, TaskChange, TaskChanges, WorkflowChange};
pub use crate::pure::table::{transitions_document, TransitionTable};
pub use crate::pure::task::{NewTask, Task};
pub use crate::pure::transition::{transition, workflow_edge};
pub use crate::pure::workflow::{LoadError, Workflow};
