#![no_main]
//! `cargo fuzz run --sanitizer none conductor_json`: see `src/conductor_json.rs` for what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    wfstate_fuzz::conductor_json::run(data);
});
