//! libFuzzer target; the harness and its checks are `provdesk_core::fuzzing::syslog_line`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| provdesk_core::fuzzing::syslog_line(data));
