//! Replays every fuzz corpus file and every kept crasher of this crate's fuzz target
//! (`fuzz/corpus/dhcp_packet/`, `fuzz/regressions/dhcp_packet/`) through the same entry point
//! the fuzzer calls, so CI (stable Rust, no libFuzzer) keeps what fuzzing found. An empty
//! corpus fails: a replay of nothing is not a pass.

use std::path::Path;

#[test]
fn every_corpus_file_and_crasher_replays_without_a_panic() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    provdesk_tftp::fuzzing::replay_corpus(&fuzz, provdesk_dhcp::fuzzing::TARGETS);
}
