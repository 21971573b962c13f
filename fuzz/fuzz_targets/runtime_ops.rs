#![no_main]
//! `cargo fuzz run --sanitizer none runtime_ops`: see `src/runtime_ops.rs` for what is checked.

libfuzzer_sys::fuzz_target!(|case: wfstate_fuzz::runtime_ops::Case| {
    wfstate_fuzz::runtime_ops::run(&case);
});
