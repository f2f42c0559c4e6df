//! libFuzzer target; the harness and its checks are `provdesk_serve::fuzzing::sip_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| provdesk_serve::fuzzing::sip_message(data));
