//! libFuzzer target; the harness and its checks are `provdesk_core::fuzzing::binary_config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| provdesk_core::fuzzing::binary_config(data));
