//! What a build read: each input file's length and content hash, recorded as the profiles
//! are loaded, so that a build is published only from inputs that were whole and are still
//! what is on disk.
//!
//! Why: an editor or a network share that saves in place truncates the file and writes it a
//! moment later. A build that reads in between sees an empty `global.toml` (no P1359, so an
//! unencrypted `cfg<mac>.xml` with the SIP password). Three rules close that window:
//! - a build whose inputs changed on disk while it ran is not published ([`changes`]);
//! - a file that became empty (or too short to set anything) or vanished, while the last
//!   published build read content from it, is "being written": the caller may hold the
//!   build until it is written ([`being_written`], [`InputGuard::hold_emptied`]);
//! - [`stamps`] gives size and modification time of every input, for a caller that waits
//!   until the inputs are quiet before building.
//!
//! Invariants: comparing is pure ([`changes`], [`being_written`]); the list of input files
//! is the one profile loading uses, so a file is compared only if a build reads it; what the
//! last published build read is kept in `build/inputs.json` (lengths and hashes, no content),
//! so a server that starts while a file is being saved holds its first build too.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::{Diagnostic, Error, Result};

/// What the last published build read, next to its manifest.
pub const INPUTS_FILE: &str = "inputs.json";

/// A file with fewer meaningful bytes than this cannot set a value: `[params]` alone is 8.
pub const MIN_MEANINGFUL_LEN: usize = "[params]".len();

/// Diagnostic kind of an input that changed on disk while the build read the others.
pub const KIND_CHANGED: &str = "input-changed";
/// Diagnostic kind of an input held as "being written".
pub const KIND_BEING_WRITTEN: &str = "input-being-written";

/// What one input file held when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    pub len: u64,
    /// Length without surrounding whitespace: what decides "empty".
    pub meaningful: u64,
    pub hash: [u8; 32],
}

impl FileStamp {
    pub fn of(bytes: &[u8]) -> FileStamp {
        FileStamp {
            len: bytes.len() as u64,
            meaningful: bytes.trim_ascii().len() as u64,
            hash: Sha256::digest(bytes).into(),
        }
    }

    /// Too short to set anything: empty, blank, or cut before the first table header.
    pub fn is_empty_like(&self) -> bool {
        self.meaningful < MIN_MEANINGFUL_LEN as u64
    }
}

/// Every input file a build read, by path relative to the desk (`profiles/global.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInputs {
    files: BTreeMap<String, FileStamp>,
}

/// How an input differs between two readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputChange {
    Modified(String),
    Added(String),
    Removed(String),
}

impl InputChange {
    pub fn path(&self) -> &str {
        match self {
            InputChange::Modified(p) | InputChange::Added(p) | InputChange::Removed(p) => p,
        }
    }
}

impl std::fmt::Display for InputChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputChange::Modified(p) => write!(f, "{p} changed"),
            InputChange::Added(p) => write!(f, "{p} appeared"),
            InputChange::Removed(p) => write!(f, "{p} disappeared"),
        }
    }
}

/// A file held as being written, with what the last published build read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeingWritten {
    pub path: String,
    /// `None`: the file is gone.
    pub now: Option<u64>,
    pub before: u64,
}

impl std::fmt::Display for BeingWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.now {
            Some(now) => write!(
                f,
                "{} is {now} bytes now but was {} bytes in the last published build",
                self.path, self.before
            ),
            None => write!(
                f,
                "{} is gone but was {} bytes in the last published build",
                self.path, self.before
            ),
        }
    }
}

impl BuildInputs {
    /// Records what was read from `relative` (a path relative to the desk).
    pub fn record(&mut self, relative: &Path, bytes: &[u8]) {
        self.files.insert(slashed(relative), FileStamp::of(bytes));
    }

    pub fn files(&self) -> impl Iterator<Item = (&str, &FileStamp)> {
        self.files
            .iter()
            .map(|(path, stamp)| (path.as_str(), stamp))
    }

    pub fn get(&self, relative: &str) -> Option<&FileStamp> {
        self.files.get(relative)
    }

    /// Reads the same input files as profile loading does, as they are on disk now. A file
    /// that cannot be read as text is left out, as loading leaves it out.
    pub fn read_now(desk_root: &Path) -> BuildInputs {
        let mut inputs = BuildInputs::default();
        for path in input_paths(desk_root) {
            if let Ok(text) = std::fs::read_to_string(&path) {
                let relative = path.strip_prefix(desk_root).unwrap_or(&path);
                inputs.record(relative, text.as_bytes());
            }
        }
        inputs
    }
}

/// What differs from `read` (what a build read) in `now` (the disk afterwards).
pub fn changes(read: &BuildInputs, now: &BuildInputs) -> Vec<InputChange> {
    let mut found = Vec::new();
    for (path, stamp) in &read.files {
        match now.files.get(path) {
            None => found.push(InputChange::Removed(path.clone())),
            Some(other) if other != stamp => found.push(InputChange::Modified(path.clone())),
            Some(_) => {}
        }
    }
    for path in now.files.keys().filter(|p| !read.files.contains_key(*p)) {
        found.push(InputChange::Added(path.clone()));
    }
    found
}

/// The files of `read` that look like a save in progress next to `last_good` (what the last
/// published build read): empty-like now, or gone, while they had content then.
pub fn being_written(read: &BuildInputs, last_good: &BuildInputs) -> Vec<BeingWritten> {
    last_good
        .files
        .iter()
        .filter(|(_, before)| !before.is_empty_like())
        .filter_map(|(path, before)| match read.files.get(path) {
            Some(now) if now.is_empty_like() => Some(BeingWritten {
                path: path.clone(),
                now: Some(now.len),
                before: before.len,
            }),
            Some(_) => None,
            None => Some(BeingWritten {
                path: path.clone(),
                now: None,
                before: before.len,
            }),
        })
        .collect()
}

/// Size and modification time of every input file and of `firmware/`'s files: equal stamps
/// taken a moment apart mean nobody is writing.
pub fn stamps(desk_root: &Path) -> BTreeMap<String, (u64, Option<SystemTime>)> {
    let firmware = std::fs::read_dir(desk_root.join(crate::desk::FIRMWARE_DIR))
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()));
    input_paths(desk_root)
        .into_iter()
        .chain(firmware)
        .filter_map(|path| {
            let metadata = std::fs::metadata(&path).ok()?;
            let relative = path.strip_prefix(desk_root).unwrap_or(&path);
            Some((
                slashed(relative),
                (metadata.len(), metadata.modified().ok()),
            ))
        })
        .collect()
}

/// The profile files a build reads, in the order it reads them.
fn input_paths(desk_root: &Path) -> Vec<std::path::PathBuf> {
    let mut ignored = Vec::new();
    [crate::desk::PROFILES_DIR, crate::desk::MODELS_DIR]
        .iter()
        .flat_map(|dir| crate::profile::toml_files(&desk_root.join(dir), &mut ignored, desk_root))
        .map(|(_, path)| path)
        .collect()
}

fn slashed(relative: &Path) -> String {
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The builder's side: what the last published build read, and whether a build that reads
/// a file "being written" is held. Holding is off by default: `provdesk build` publishes what
/// the technician saved; the servers' publisher turns it on and decides how long to wait.
#[derive(Debug, Clone, Default)]
pub struct InputGuard {
    last_good: Option<BuildInputs>,
    /// Whether `build/inputs.json` was read (once, when `last_good` was still unknown).
    loaded: bool,
    /// What the last build (published or not) read.
    last_read: BuildInputs,
    pub hold_emptied: bool,
}

impl InputGuard {
    /// What the last build read, for a caller that compares it with the disk afterwards.
    pub fn last_read(&self) -> &BuildInputs {
        &self.last_read
    }

    /// What the last published build read (`None` before the first one in this process).
    pub fn last_good(&self) -> Option<&BuildInputs> {
        self.last_good.as_ref()
    }

    /// Called once the profiles are loaded and the build is planned, before anything is
    /// written: adds an error for every input that changed since it was read, and, when
    /// holding, for every input being written.
    pub fn check(&mut self, desk_root: &Path, read: &BuildInputs, out: &mut Vec<Diagnostic>) {
        self.last_read = read.clone();
        if self.last_good.is_none() && !self.loaded {
            self.loaded = true;
            // Unreadable means unknown: nothing to hold against, as on a new desk.
            self.last_good = load(desk_root).ok().flatten();
        }
        for change in changes(read, &BuildInputs::read_now(desk_root)) {
            out.push(
                Diagnostic::error(
                    KIND_CHANGED,
                    format!("{change} while the build read it: nothing was published; the next build reads it again"),
                )
                .in_file(change.path()),
            );
        }
        if !self.hold_emptied {
            return;
        }
        let Some(last_good) = &self.last_good else {
            return;
        };
        for file in being_written(read, last_good) {
            out.push(
                Diagnostic::error(
                    KIND_BEING_WRITTEN,
                    format!("{file}: it may still be being saved, so this build was not published"),
                )
                .in_file(&file.path),
            );
        }
    }

    /// Called after a build was published from `read`: remembers it, in memory and in
    /// `build/inputs.json`.
    pub fn published(&mut self, desk_root: &Path, read: &BuildInputs) -> Result<()> {
        self.last_good = Some(read.clone());
        let stored: BTreeMap<&str, StoredStamp> = read
            .files
            .iter()
            .map(|(path, stamp)| {
                let stored = StoredStamp {
                    len: stamp.len,
                    meaningful: stamp.meaningful,
                    sha256: hex::encode(stamp.hash),
                };
                (path.as_str(), stored)
            })
            .collect();
        let json = serde_json::to_vec(&stored)
            .map_err(|e| Error::Invalid(format!("{INPUTS_FILE}: {e}")))?;
        let build_dir = desk_root.join(crate::desk::BUILD_DIR);
        crate::build::write_atomically(
            &build_dir.join(crate::build::TEMP_DIR),
            &build_dir.join(INPUTS_FILE),
            &json,
        )
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredStamp {
    len: u64,
    meaningful: u64,
    sha256: String,
}

/// `build/inputs.json`, or `None` when there is none.
fn load(desk_root: &Path) -> Result<Option<BuildInputs>> {
    let path = desk_root.join(crate::desk::BUILD_DIR).join(INPUTS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let invalid = |e: &dyn std::fmt::Display| Error::Invalid(format!("{}: {e}", path.display()));
    let stored: BTreeMap<String, StoredStamp> =
        serde_json::from_slice(&bytes).map_err(|e| invalid(&e))?;
    let mut inputs = BuildInputs::default();
    for (file, stamp) in stored {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&stamp.sha256, &mut hash).map_err(|e| invalid(&e))?;
        let stamp = FileStamp {
            len: stamp.len,
            meaningful: stamp.meaningful,
            hash,
        };
        inputs.files.insert(file, stamp);
    }
    Ok(Some(inputs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(files: &[(&str, &str)]) -> BuildInputs {
        let mut inputs = BuildInputs::default();
        for (path, text) in files {
            inputs.record(Path::new(path), text.as_bytes());
        }
        inputs
    }

    const GLOBAL: &str = "[params]\nP1359 = \"xmlpw\"\n";

    #[test]
    fn changes_name_every_modified_added_and_removed_file() {
        let read = inputs(&[("profiles/global.toml", GLOBAL), ("profiles/a.toml", "x")]);
        assert_eq!(changes(&read, &read.clone()), []);
        let now = inputs(&[("profiles/global.toml", ""), ("profiles/b.toml", "x")]);
        assert_eq!(
            changes(&read, &now),
            [
                InputChange::Removed("profiles/a.toml".into()),
                InputChange::Modified("profiles/global.toml".into()),
                InputChange::Added("profiles/b.toml".into()),
            ]
        );
        // The same length with other bytes is a change too.
        let same_len = inputs(&[
            ("profiles/global.toml", "[params]\nP1359 = \"xmlpX\"\n"),
            ("profiles/a.toml", "x"),
        ]);
        assert_eq!(
            changes(&read, &same_len),
            [InputChange::Modified("profiles/global.toml".into())]
        );
    }

    #[test]
    fn an_emptied_or_vanished_file_that_had_content_is_being_written() {
        let good = inputs(&[
            ("profiles/global.toml", GLOBAL),
            ("profiles/office.toml", "[params]\nP30 = \"x\"\n"),
            ("profiles/blank.toml", "\n"),
        ]);
        for (now, expected) in [("", Some(0)), ("  \n", Some(3)), ("[par", Some(4))] {
            let read = inputs(&[
                ("profiles/global.toml", now),
                ("profiles/office.toml", "[params]\nP30 = \"x\"\n"),
                ("profiles/blank.toml", ""),
            ]);
            let found = being_written(&read, &good);
            assert_eq!(found.len(), 1, "{now:?}: {found:?}");
            assert_eq!(found[0].path, "profiles/global.toml");
            assert_eq!(found[0].now, expected);
            assert_eq!(found[0].before, GLOBAL.len() as u64);
            assert!(
                found[0].to_string().contains("was 25 bytes"),
                "{}",
                found[0]
            );
        }
        // Gone is held too; a file that was blank before is not (nothing to lose).
        let read = inputs(&[
            ("profiles/blank.toml", ""),
            ("profiles/global.toml", GLOBAL),
        ]);
        let found = being_written(&read, &good);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].path.as_str(), found[0].now),
            ("profiles/office.toml", None)
        );
        // Shorter but meaningful is an edit, not a save in progress.
        let read = inputs(&[
            ("profiles/global.toml", "[params]\n"),
            ("profiles/office.toml", "[params]\nP30 = \"x\"\n"),
        ]);
        assert_eq!(being_written(&read, &good), []);
    }

    #[test]
    fn the_guard_holds_only_when_asked_and_only_after_a_published_build() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("profiles/models")).unwrap();
        std::fs::write(root.join("profiles/global.toml"), GLOBAL).unwrap();
        let mut guard = InputGuard {
            hold_emptied: true,
            ..InputGuard::default()
        };
        let good = BuildInputs::read_now(root);
        assert_eq!(good, inputs(&[("profiles/global.toml", GLOBAL)]));
        let mut found = Vec::new();
        guard.check(root, &good, &mut found);
        assert_eq!(found, []);
        std::fs::create_dir_all(root.join("build/.tmp")).unwrap();
        guard.published(root, &good).unwrap();

        std::fs::write(root.join("profiles/global.toml"), "").unwrap();
        let emptied = BuildInputs::read_now(root);
        guard.check(root, &emptied, &mut found);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, KIND_BEING_WRITTEN);
        assert_eq!(
            found[0].file.as_deref(),
            Some(Path::new("profiles/global.toml"))
        );
        assert_eq!(guard.last_read(), &emptied);
        // A new process (a server started mid-save) knows the last published build too.
        let mut fresh = InputGuard {
            hold_emptied: true,
            ..InputGuard::default()
        };
        let mut again = Vec::new();
        fresh.check(root, &emptied, &mut again);
        assert_eq!(again, found);
        assert_eq!(fresh.last_good(), Some(&good));

        found.clear();
        guard.hold_emptied = false;
        guard.check(root, &emptied, &mut found);
        assert_eq!(found, [], "accepted once the caller stops holding");

        // Read, then changed on disk before publishing.
        std::fs::write(root.join("profiles/global.toml"), GLOBAL).unwrap();
        guard.check(root, &emptied, &mut found);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, KIND_CHANGED);
        assert!(
            found[0].message.contains("profiles/global.toml changed"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn stamps_cover_profiles_and_firmware_and_skip_editor_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("profiles/models")).unwrap();
        std::fs::create_dir_all(root.join("firmware")).unwrap();
        std::fs::write(root.join("profiles/global.toml"), GLOBAL).unwrap();
        std::fs::write(root.join("profiles/models/gxp2170.toml"), "").unwrap();
        std::fs::write(root.join("profiles/.global.toml.swp"), "x").unwrap();
        std::fs::write(root.join("firmware/gxp2170fw.bin"), [1, 2, 3]).unwrap();
        let found = stamps(root);
        let names: Vec<&str> = found.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "firmware/gxp2170fw.bin",
                "profiles/global.toml",
                "profiles/models/gxp2170.toml"
            ]
        );
        assert_eq!(found["firmware/gxp2170fw.bin"].0, 3);
    }
}
