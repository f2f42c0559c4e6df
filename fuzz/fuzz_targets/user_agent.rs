//! libFuzzer target; the harness and its checks are `provdesk_serve::fuzzing::user_agent`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| provdesk_serve::fuzzing::user_agent(data));
