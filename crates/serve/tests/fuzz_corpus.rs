//! Replays every fuzz corpus file and every kept crasher of this crate's fuzz targets
//! (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) through the same entry point the
//! fuzzer calls, so CI (stable Rust, no libFuzzer) keeps what fuzzing found. A target whose
//! corpus is missing or empty fails: a replay of nothing is not a pass.

use std::path::{Path, PathBuf};

#[test]
fn every_corpus_file_and_crasher_replays_without_a_panic() {
    replay(provdesk_serve::fuzzing::TARGETS);
}

fn replay(targets: &[provdesk_serve::fuzzing::Target]) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
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
