//! libFuzzer target; the harness and its checks are `provdesk_core::fuzzing::csv_devices`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| provdesk_core::fuzzing::csv_devices(data));
