//! The checks behind wfstate's fuzz targets (issue 6, `docs/testing.md`).
//!
//! Each module decodes one target's input (`Arbitrary`, exactly as libfuzzer-sys does:
//! `arbitrary_take_rest`) and replays it, panicking on any broken invariant. The modules use only
//! `wfstate` and `arbitrary`, never libfuzzer-sys, so the workspace's `tests/fuzz_replay.rs`
//! includes the same files (`#[path]`) and replays the committed seeds and regressions in a plain
//! `cargo test` on stable.

pub mod conductor_json;
pub mod pick;
pub mod runtime_ops;
pub mod step_sequence;
