#![no_main]
//! `cargo fuzz run --sanitizer none step_sequence`: see `src/step_sequence.rs` for what is checked.

libfuzzer_sys::fuzz_target!(|case: wfstate_fuzz::step_sequence::Case| {
    wfstate_fuzz::step_sequence::run(&case);
});
