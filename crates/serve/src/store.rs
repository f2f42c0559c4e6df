//! The artifact store: the published build held in memory (one immutable snapshot, swapped
//! whole after each build) and the resolver from a requested name to its bytes.
//!
//! Invariants: a request sees one snapshot from start to end, so it never mixes two builds;
//! a name with a path separator, `..`, NUL or control characters, or over 255 bytes, is
//! rejected before any lookup; only names in the manifest are ever served, so nothing outside
//! `build/` and `firmware/` can be reached; a snapshot loaded with
//! [`Snapshot::load_verified`] serves a file only if its bytes have the manifest's hash, so a
//! file written by a build that was stopped before its manifest, or edited by hand, is left
//! out (and listed by [`Snapshot::left_out`]) instead of served.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::HeaderValue;
use provdesk_core::Mac;
use provdesk_core::build::{ArtifactKind, CredentialTable, Manifest, ManifestEntry};
use sha2::{Digest, Sha256};

/// The longest name any Grandstream request uses is far below this; longer is an attack.
pub const MAX_NAME_LEN: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot read a published artifact: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One published build.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub manifest: Manifest,
    pub credentials: CredentialTable,
    /// File (relative to the desk) → content; names that share a file share the bytes.
    bodies: HashMap<String, Bytes>,
    /// Files whose bytes on disk no longer match the manifest (a firmware image still being
    /// copied in, a file a stopped build wrote) or that cannot be read, with the reason; they
    /// are not served until the next build takes them.
    unloaded: HashMap<String, String>,
    /// Request name → what answers it, for every name whose file is loaded: one hash lookup
    /// per request, and the ETag made once per build rather than once per request.
    served: HashMap<String, Served>,
}

#[derive(Debug)]
struct Served {
    entry: ManifestEntry,
    body: Bytes,
    etag: Option<HeaderValue>,
}

/// What a requested name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution<'a> {
    Found(Found<'a>),
    NotFound { name: String, reason: String },
    Rejected { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'a> {
    /// The normalized (lowercase) request name.
    pub name: String,
    /// Borrowed from the snapshot: a request looks at a handful of its fields, and cloning
    /// the entry's strings cost a boot storm an allocation each.
    pub entry: &'a ManifestEntry,
    pub body: Bytes,
    /// The strong ETag of the body: its hash, quoted (none if the manifest's hash could not
    /// be a header value, which a hash the builder wrote always can).
    pub etag: Option<&'a HeaderValue>,
}

/// Which files [`Snapshot`] loading checks against the manifest's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Firmware only (generated files are trusted as the builder renamed them into place),
    /// and an unreadable file fails the load.
    Firmware,
    /// Every file; one that cannot be read or does not match is left out.
    Every,
}

impl Snapshot {
    /// Reads every file the manifest names. Bodies whose hash did not change are taken from
    /// `previous` instead of the disk, so a rebuild costs only what changed. Generated files
    /// are taken as they are; see [`Snapshot::load_verified`].
    pub fn load(
        desk_root: &Path,
        manifest: Manifest,
        credentials: CredentialTable,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, StoreError> {
        Snapshot::load_checked(desk_root, manifest, credentials, previous, Check::Firmware)
    }

    /// Like [`Snapshot::load`], but every file read from disk must have its manifest's size
    /// and hash, and one that does not, or cannot be read, is left out (see
    /// [`Snapshot::left_out`]) while the others are served. What the servers load.
    pub fn load_verified(
        desk_root: &Path,
        manifest: Manifest,
        credentials: CredentialTable,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        match Snapshot::load_checked(desk_root, manifest, credentials, previous, Check::Every) {
            Ok(snapshot) => snapshot,
            // `Check::Every` turns every read error into a left-out file.
            Err(e) => unreachable!("a verified load does not fail: {e}"),
        }
    }

    /// Files the manifest names that are not served, with the reason, sorted by file.
    pub fn left_out(&self) -> Vec<(&str, &str)> {
        let mut found: Vec<(&str, &str)> = self
            .unloaded
            .iter()
            .map(|(file, reason)| (file.as_str(), reason.as_str()))
            .collect();
        found.sort();
        found
    }

    fn load_checked(
        desk_root: &Path,
        manifest: Manifest,
        credentials: CredentialTable,
        previous: Option<&Snapshot>,
        check: Check,
    ) -> Result<Snapshot, StoreError> {
        let mut bodies = HashMap::new();
        let mut unloaded = HashMap::new();
        // The previous build's bodies by (file, hash): one is reused when both match. A map,
        // not a search of the old manifest per entry, which was quadratic in the number of
        // devices on every rebuild.
        let previously: HashMap<(&str, &str), &Bytes> = previous
            .map(|p| {
                p.manifest
                    .entries
                    .values()
                    .filter_map(|e| {
                        Some(((e.file.as_str(), e.hash.as_str()), p.bodies.get(&e.file)?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for entry in manifest.entries.values() {
            if bodies.contains_key(&entry.file) || unloaded.contains_key(&entry.file) {
                continue;
            }
            let reused = previously
                .get(&(entry.file.as_str(), entry.hash.as_str()))
                .map(|body| Bytes::clone(body));
            let body = match reused {
                Some(body) => body,
                None => {
                    let path = desk_root.join(&entry.file);
                    let bytes = match std::fs::read(&path) {
                        Ok(bytes) => bytes,
                        Err(source) if check == Check::Every => {
                            let reason = format!("{}: cannot be read: {source}", entry.file);
                            unloaded.insert(entry.file.clone(), reason);
                            continue;
                        }
                        Err(source) => {
                            return Err(StoreError::Read {
                                path: path.display().to_string(),
                                source,
                            });
                        }
                    };
                    // Generated files are renamed into place whole, but a build stopped
                    // before its manifest leaves files the manifest does not describe; a
                    // firmware image is the technician's copy and may still be growing.
                    let checked = check == Check::Every || is_firmware(entry);
                    if let Some(reason) = checked.then(|| content_mismatch(entry, &bytes)).flatten()
                    {
                        unloaded.insert(entry.file.clone(), reason);
                        continue;
                    }
                    Bytes::from(bytes)
                }
            };
            bodies.insert(entry.file.clone(), body);
        }
        let mut snapshot = Snapshot::from_bodies(manifest, credentials, bodies);
        snapshot.unloaded = unloaded;
        Ok(snapshot)
    }

    /// A snapshot whose file contents are given rather than read: `bodies` maps each
    /// manifest entry's `file` to its bytes, and an entry without one is not served. For
    /// tests and the fuzz targets, which need a build without a desk on disk.
    pub fn from_bodies(
        manifest: Manifest,
        credentials: CredentialTable,
        bodies: HashMap<String, Bytes>,
    ) -> Snapshot {
        let served = manifest
            .entries
            .iter()
            .filter_map(|(name, entry)| {
                let body = bodies.get(&entry.file)?.clone();
                let etag = HeaderValue::try_from(format!("\"{}\"", entry.hash)).ok();
                let served = Served {
                    entry: entry.clone(),
                    body,
                    etag,
                };
                Some((name.clone(), served))
            })
            .collect();
        Snapshot {
            manifest,
            credentials,
            bodies,
            unloaded: HashMap::new(),
            served,
        }
    }

    /// Resolves a requested file name (already stripped of the HTTP base path and
    /// percent-decoded, or a TFTP file name).
    pub fn resolve(&self, raw_name: &str) -> Resolution<'_> {
        let name = match normalize_name(raw_name) {
            Ok(name) => name,
            Err(reason) => return Resolution::Rejected { reason },
        };
        if let Some(served) = self.served.get(&name) {
            return Resolution::Found(Found {
                name,
                entry: &served.entry,
                body: served.body.clone(),
                etag: served.etag.as_ref(),
            });
        }
        match self.manifest.entries.get(&name) {
            Some(entry) => Resolution::NotFound {
                reason: self.unloaded.get(&entry.file).cloned().unwrap_or_else(|| {
                    format!("{} is in the manifest but was not loaded", entry.file)
                }),
                name,
            },
            None => Resolution::NotFound {
                reason: miss_reason(&name),
                name,
            },
        }
    }
}

/// Why bytes read from disk are not the artifact the build described, if they are not.
fn content_mismatch(entry: &ManifestEntry, bytes: &[u8]) -> Option<String> {
    let changed =
        bytes.len() as u64 != entry.size || hex::encode(Sha256::digest(bytes)) != entry.hash;
    changed.then(|| {
        if is_firmware(entry) {
            format!(
                "{} changed on disk since the build ({} bytes now, {} built): is it still being copied? It is served after the next rebuild",
                entry.file,
                bytes.len(),
                entry.size
            )
        } else {
            format!(
                "{} is not the file the last published build wrote ({} bytes, {} in the manifest, other content): a build stopped before its manifest, or an edit by hand; it is not served until a build writes it again",
                entry.file,
                bytes.len(),
                entry.size
            )
        }
    })
}

/// Explains a miss the way a technician needs it: which fallback the phone takes next.
/// Why `name` is not served when nothing by that name was published: also the answer a peer
/// gets for a phone's file bound to another owner, so the two cannot be told apart.
pub(crate) fn miss_reason(name: &str) -> String {
    match mac_in_name(name) {
        Some(mac) => format!(
            "no files for device {mac}: not in the inventory (the phone falls back to cfg<model>.xml, then cfg.xml)"
        ),
        None => "no such file in the build or firmware folder".to_string(),
    }
}

/// The MAC in a per-device request name (`cfg000b82123456`, `cfg000b82123456.xml`, also
/// with a prefix/postfix around it).
pub fn mac_in_name(name: &str) -> Option<Mac> {
    let lower = name.to_ascii_lowercase();
    lower.match_indices("cfg").find_map(|(at, _)| {
        let hex = lower.get(at + 3..at + 15)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        // `cfg<12 hex>` must not continue with more hex digits (that is not a MAC).
        let next = lower.as_bytes().get(at + 15);
        if next.is_some_and(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        hex.parse().ok()
    })
}

/// Lowercases a flat file name and rejects anything that could address another file.
pub fn normalize_name(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("empty file name".into());
    }
    if raw.len() > MAX_NAME_LEN {
        return Err(format!("file name longer than {MAX_NAME_LEN} bytes"));
    }
    if raw.chars().any(char::is_control) {
        return Err("control character in file name".into());
    }
    if raw.contains("..") {
        return Err("path traversal (`..`) refused".into());
    }
    if raw.contains(['/', '\\']) || raw.contains(':') {
        return Err(
            "path separators are not allowed: files are served from one flat folder".into(),
        );
    }
    if raw.starts_with('.') {
        return Err("hidden file names are not served".into());
    }
    Ok(raw.to_ascii_lowercase())
}

/// Holds the current snapshot; servers take an `Arc` per request.
#[derive(Debug, Default)]
pub struct ArtifactStore {
    current: RwLock<Arc<Snapshot>>,
}

impl ArtifactStore {
    pub fn new(snapshot: Snapshot) -> ArtifactStore {
        ArtifactStore {
            current: RwLock::new(Arc::new(snapshot)),
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            // A panic while swapping cannot leave a half-written Arc; the value is whole.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn publish(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        match self.current.write() {
            Ok(mut guard) => *guard = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
    }
}

/// Whether an artifact is a firmware image (streamed with Range support over HTTP).
pub fn is_firmware(entry: &ManifestEntry) -> bool {
    entry.kind == ArtifactKind::Firmware
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Result<&str, &str>) {
        match (normalize_name(raw), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(got), Err(want)) => assert!(got.contains(want), "{raw:?}: {got}"),
            (got, want) => panic!("{raw:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn names_are_lowercased_and_dangerous_ones_rejected() {
        check("CFG000B82123456.XML", Ok("cfg000b82123456.xml"));
        check("gs_cfg000b82000001_cfg001", Ok("gs_cfg000b82000001_cfg001"));
        check("../etc/passwd", Err("traversal"));
        check("..", Err("traversal"));
        check("a/b", Err("separators"));
        check("a\\b", Err("separators"));
        check("C:boot.ini", Err("separators"));
        check("cfg\0.xml", Err("control"));
        check("cfg\n.xml", Err("control"));
        check(".tmp", Err("hidden"));
        check(&"a".repeat(300), Err("longer"));
        check("", Err("empty"));
    }

    #[test]
    fn finds_macs_in_request_names() {
        let mac = |s: &str| s.parse::<Mac>().ok();
        assert_eq!(mac_in_name("cfg000b82123456.xml"), mac("000b82123456"));
        assert_eq!(mac_in_name("cfg000B82123456"), mac("000b82123456"));
        assert_eq!(
            mac_in_name("gs_cfg000b82123456.bin_v1"),
            mac("000b82123456")
        );
        assert_eq!(mac_in_name("cfggxp2170.xml"), None);
        assert_eq!(mac_in_name("cfg.xml"), None);
        assert_eq!(mac_in_name("cfg000b821234567.xml"), None);
    }

    #[test]
    fn a_firmware_image_changed_since_the_build_is_not_served_half_copied() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("firmware")).unwrap();
        let image = vec![7u8; 4096];
        let entry = ManifestEntry {
            file: "firmware/gxp2170fw.bin".into(),
            hash: hex::encode(Sha256::digest(&image)),
            input: "i".into(),
            version: 1,
            kind: ArtifactKind::Firmware,
            mac: None,
            model: Some("gxp2170".into()),
            encrypted: false,
            size: image.len() as u64,
        };
        let mut manifest = Manifest::default();
        manifest.entries.insert("gxp2170fw.bin".into(), entry);
        let load = |manifest: &Manifest| {
            Snapshot::load(root, manifest.clone(), CredentialTable::default(), None).unwrap()
        };

        std::fs::write(root.join("firmware/gxp2170fw.bin"), &image).unwrap();
        match load(&manifest).resolve("gxp2170fw.bin") {
            Resolution::Found(found) => assert_eq!(found.body.len(), 4096),
            other => panic!("{other:?}"),
        }
        // A copy in progress: shorter than built. Then replaced in place with other bytes.
        for on_disk in [vec![7u8; 1000], vec![8u8; 4096]] {
            std::fs::write(root.join("firmware/gxp2170fw.bin"), &on_disk).unwrap();
            match load(&manifest).resolve("gxp2170fw.bin") {
                Resolution::NotFound { reason, .. } => {
                    assert!(reason.contains("still being copied"), "{reason}")
                }
                other => panic!("served a changed image: {other:?}"),
            }
        }
    }

    #[test]
    fn resolves_from_a_published_build() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("build")).unwrap();
        std::fs::write(root.join("build/cfg.xml"), b"<gs_provision/>").unwrap();
        let mut manifest = Manifest::default();
        manifest.entries.insert(
            "cfg.xml".into(),
            ManifestEntry {
                file: "build/cfg.xml".into(),
                hash: "h".into(),
                input: "i".into(),
                version: 1,
                kind: ArtifactKind::GenericXml,
                mac: None,
                model: None,
                encrypted: false,
                size: 15,
            },
        );
        let snapshot = Snapshot::load(root, manifest, CredentialTable::default(), None).unwrap();
        let store = ArtifactStore::new(snapshot);
        match store.snapshot().resolve("CFG.XML") {
            Resolution::Found(found) => assert_eq!(&found.body[..], b"<gs_provision/>"),
            other => panic!("{other:?}"),
        }
        match store.snapshot().resolve("cfg000b82123456.xml") {
            Resolution::NotFound { reason, .. } => {
                assert!(reason.contains("000b82123456"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.snapshot().resolve("../provdesk.db"),
            Resolution::Rejected { .. }
        ));
        // Reloading with the previous snapshot reuses unchanged bodies even if the file is gone.
        std::fs::remove_file(root.join("build/cfg.xml")).unwrap();
        let previous = store.snapshot();
        let again = Snapshot::load(
            root,
            previous.manifest.clone(),
            CredentialTable::default(),
            Some(&previous),
        )
        .unwrap();
        assert!(matches!(again.resolve("cfg.xml"), Resolution::Found(_)));
        // A new hash for the same file is a new body: it is read, and here it is gone.
        let mut changed = previous.manifest.clone();
        changed.entries.get_mut("cfg.xml").unwrap().hash = "h2".into();
        let reloaded = Snapshot::load(root, changed, CredentialTable::default(), Some(&previous));
        assert!(
            matches!(reloaded, Err(StoreError::Read { .. })),
            "{:?}",
            reloaded.map(|s| s.manifest)
        );
    }

    #[test]
    fn a_verified_load_serves_only_files_with_the_manifests_hash() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("build")).unwrap();
        let mut manifest = Manifest::default();
        for name in ["cfg.xml", "cfg000b82000001.xml", "cfg000b82000001"] {
            let body = format!("<{name}/>");
            std::fs::write(root.join("build").join(name), &body).unwrap();
            manifest.entries.insert(
                name.into(),
                ManifestEntry {
                    file: format!("build/{name}"),
                    hash: hex::encode(Sha256::digest(body.as_bytes())),
                    input: "i".into(),
                    version: 1,
                    kind: ArtifactKind::DeviceXml,
                    mac: None,
                    model: None,
                    encrypted: false,
                    size: body.len() as u64,
                },
            );
        }
        // What a build stopped before its manifest leaves: same name, other bytes; and a file
        // that is gone.
        std::fs::write(root.join("build/cfg000b82000001.xml"), "<plain-text/>").unwrap();
        std::fs::remove_file(root.join("build/cfg000b82000001")).unwrap();
        let snapshot = Snapshot::load_verified(root, manifest, CredentialTable::default(), None);
        assert!(matches!(snapshot.resolve("cfg.xml"), Resolution::Found(_)));
        match snapshot.resolve("cfg000b82000001.xml") {
            Resolution::NotFound { reason, .. } => {
                assert!(
                    reason.contains("not the file the last published build wrote"),
                    "{reason}"
                )
            }
            other => panic!("served a file the manifest does not describe: {other:?}"),
        }
        assert!(matches!(
            snapshot.resolve("cfg000b82000001"),
            Resolution::NotFound { .. }
        ));
        let left_out: Vec<&str> = snapshot.left_out().iter().map(|(f, _)| *f).collect();
        assert_eq!(
            left_out,
            ["build/cfg000b82000001", "build/cfg000b82000001.xml"]
        );
    }
}
