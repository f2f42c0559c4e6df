//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz) and for their corpus replay in
//! `tests/fuzz_corpus.rs`: the same function runs under libFuzzer and in CI, so a crasher kept
//! in `fuzz/regressions/` stays a test.
//!
//! Each function takes arbitrary bytes, runs one parser and panics only when a property the
//! rest of the server relies on breaks. Not a stable API for anything but the fuzzer.

use std::path::{Path, PathBuf};

use crate::codec::{self, Mode, Packet, TftpOption};
use crate::options::{MAX_WINDOWSIZE, Negotiation, negotiate};
use crate::{Config, netascii};

/// A target: the name of its folder under `fuzz/corpus/` and its harness.
pub type Target = (&'static str, fn(&[u8]));

/// Every target of this crate.
pub const TARGETS: &[Target] = &[("tftp_packet", tftp_packet)];

/// Replays every file of `<fuzz>/corpus/<target>/` and `<fuzz>/regressions/<target>/` through
/// its target's harness, for each target, and fails listing every input that panics. Lives
/// here, in the crate that depends on no other of ours, so that the `tests/fuzz_corpus.rs` of
/// core, serve and tftp share one replay loop. A target whose corpus is missing or empty
/// fails: a replay of nothing is not a pass.
pub fn replay_corpus(fuzz: &Path, targets: &[Target]) {
    let mut failures = Vec::new();
    for &(target, run) in targets {
        let corpus = files(&fuzz.join("corpus").join(target));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{target}/ is missing or empty; seed it (see fuzz/README.md)"
        );
        let crashers = files(&fuzz.join("regressions").join(target));
        for file in corpus.iter().chain(&crashers) {
            let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "these inputs panic: {failures:#?}");
}

/// The files of a folder (none if it does not exist), sorted so failures list stably.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// A datagram as the server receives it: parsing never panics, a parsed packet encodes back
/// to bytes that parse to the same packet, and the options of a request negotiate to values
/// inside the limits the transfer state machine assumes.
pub fn tftp_packet(data: &[u8]) {
    let Ok(packet) = codec::parse(data) else {
        return;
    };
    let mut wire = Vec::new();
    packet.encode(&mut wire);
    assert_eq!(
        codec::parse(&wire).as_ref(),
        Ok(&packet),
        "decode → encode → decode changed the packet"
    );
    match &packet {
        Packet::Rrq { options, mode, .. } | Packet::Wrq { options, mode, .. } => {
            // A size from the input, so the fuzzer reaches both the empty-file and tsize paths.
            let size = data.len() as u64 % 3 * 1_000_000;
            check_negotiation(options, *mode, size);
        }
        Packet::Data { data, .. } => {
            // What a netascii transfer does to a block must be undone by the client's decode.
            assert_eq!(netascii::decode(&netascii::encode(data)), data.as_ref());
        }
        _ => {}
    }
}

fn check_negotiation(requested: &[TftpOption], mode: Mode, size: u64) {
    let config = Config::default();
    let Negotiation { options, oack } = negotiate(requested, mode, size, &config);
    assert!(
        (8..=config.max_blksize).contains(&options.blksize),
        "block size {} outside 8..={}",
        options.blksize,
        config.max_blksize
    );
    assert!(
        (1..=config.max_windowsize.min(MAX_WINDOWSIZE)).contains(&options.windowsize),
        "window size {} outside the configured range",
        options.windowsize
    );
    assert!(!options.timeout.is_zero(), "a zero timeout would spin");
    for (i, option) in oack.iter().enumerate() {
        assert!(
            !oack[..i].iter().any(|earlier| earlier.is(&option.name)),
            "the OACK names {} twice",
            option.name
        );
        assert!(
            requested.iter().any(|asked| asked.is(&option.name)),
            "the OACK answers {}, which was not asked for",
            option.name
        );
    }
    // The OACK is sent as it is: it must survive the wire.
    let oack = Packet::Oack { options: oack };
    let mut wire = Vec::new();
    oack.encode(&mut wire);
    assert_eq!(
        codec::parse(&wire),
        Ok(oack),
        "the OACK does not round-trip"
    );
}
