//! libFuzzer target; the harness and its checks are `provdesk_tftp::fuzzing::tftp_packet`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| provdesk_tftp::fuzzing::tftp_packet(data));
