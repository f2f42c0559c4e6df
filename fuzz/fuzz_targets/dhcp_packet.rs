//! libFuzzer target; the harness and its checks are `provdesk_dhcp::fuzzing::dhcp_packet`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| provdesk_dhcp::fuzzing::dhcp_packet(data));
