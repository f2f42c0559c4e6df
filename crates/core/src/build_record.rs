//! What a published build keeps in `build/` besides its files and its manifest: the HTTP
//! credential table of that build (`credentials.json`), and the cleanup of the temp files a
//! stopped build leaves in `build/.tmp/`.
//!
//! Why the credentials are stored: a server that starts while the desk's profiles are broken
//! serves the last published build, and with `[auth]` on it needs the P1360/P1361 those files
//! were built with, or every phone gets 401. Deriving them from the built files would mean
//! decrypting each model's XML with a password found in the generic one; storing the table
//! the builder already has is simpler and exact. The file holds passwords, so it is written
//! with mode 0600 (the binary `cfg<mac>` files carry P1360/P1361 in clear anyway, as the
//! format requires), atomically, after the manifest, and names the build it belongs to.
//!
//! Invariants: `credentials.json` is replaced whole or not at all; it is never served (only
//! manifest names are); a temp file is removed only when no build can still be writing it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::build::{CredentialTable, HttpCredentials, TEMP_DIR};
use crate::{Error, Mac, Result};

pub const CREDENTIALS_FILE: &str = "credentials.json";

/// A builder removes temp files older than this before it writes: a build renames each of its
/// temp files within milliseconds, so an older one belongs to a build that was stopped.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    /// The manifest's build number when this table was written.
    build: u64,
    devices: BTreeMap<String, StoredPair>,
    models: BTreeMap<String, StoredPair>,
    generic: Option<StoredPair>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredPair {
    user: String,
    password: String,
}

impl From<&HttpCredentials> for StoredPair {
    fn from(c: &HttpCredentials) -> StoredPair {
        StoredPair {
            user: c.user.clone(),
            password: c.password.clone(),
        }
    }
}

impl From<StoredPair> for HttpCredentials {
    fn from(p: StoredPair) -> HttpCredentials {
        HttpCredentials {
            user: p.user,
            password: p.password,
        }
    }
}

/// The credential table of a published build, as stored next to its manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishedCredentials {
    /// The build number it was written for; a mismatch with the manifest means a build was
    /// stopped between the two writes.
    pub build: u64,
    pub table: CredentialTable,
}

/// Writes `table` as `build/credentials.json` (mode 0600) for build number `build`.
pub fn save_credentials(build_dir: &Path, build: u64, table: &CredentialTable) -> Result<()> {
    let stored = Stored {
        build,
        devices: table
            .devices
            .iter()
            .map(|(mac, c)| (mac.to_string(), c.into()))
            .collect(),
        models: table
            .models
            .iter()
            .map(|(m, c)| (m.clone(), c.into()))
            .collect(),
        generic: table.generic.as_ref().map(Into::into),
    };
    let json = serde_json::to_vec(&stored)
        .map_err(|e| Error::Invalid(format!("{CREDENTIALS_FILE}: {e}")))?;
    write_private(
        &build_dir.join(TEMP_DIR),
        &build_dir.join(CREDENTIALS_FILE),
        &json,
    )
}

/// Reads `build/credentials.json`; `None` when there is none (a desk built before it existed).
pub fn load_credentials(build_dir: &Path) -> Result<Option<PublishedCredentials>> {
    let path = build_dir.join(CREDENTIALS_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Invalid(format!(
            "{}: unreadable credential table ({e}); the next build writes it again",
            path.display()
        ))
    })?;
    let mut table = CredentialTable::default();
    for (mac, pair) in stored.devices {
        let mac: Mac = mac
            .parse()
            .map_err(|e| Error::Invalid(format!("{}: device {mac:?}: {e}", path.display())))?;
        table.devices.insert(mac, pair.into());
    }
    table.models = stored
        .models
        .into_iter()
        .map(|(m, p)| (m, p.into()))
        .collect();
    table.generic = stored.generic.map(Into::into);
    Ok(Some(PublishedCredentials {
        build: stored.build,
        table,
    }))
}

/// Removes the files in `build/.tmp/` last modified more than `older_than` ago (all of them
/// for `Duration::ZERO`); returns the ones removed.
pub fn remove_temp_files(build_dir: &Path, older_than: Duration) -> Result<Vec<PathBuf>> {
    let dir = build_dir.join(TEMP_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let now = SystemTime::now();
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let path = entry.path();
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        let age = metadata
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if !metadata.is_file() || age < older_than {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            // Renamed into place or removed by its own build meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    removed.sort();
    Ok(removed)
}

/// The credential table: owner-only from the moment it exists, and synced, since the servers
/// load it at start.
fn write_private(temp_dir: &Path, target: &Path, bytes: &[u8]) -> Result<()> {
    fs::create_dir_all(temp_dir).map_err(|e| Error::io(temp_dir, e))?;
    crate::fsio::write_atomically(
        target,
        bytes,
        crate::fsio::Replace {
            temp_dir: Some(temp_dir),
            durability: crate::fsio::Durability::Synced,
            access: crate::fsio::Access::Private,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(user: &str, password: &str) -> HttpCredentials {
        HttpCredentials {
            user: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn credentials_round_trip_privately() {
        let dir = tempfile::tempdir().unwrap();
        let build = dir.path().join("build");
        fs::create_dir_all(&build).unwrap();
        assert_eq!(load_credentials(&build).unwrap(), None);
        let mut table = CredentialTable::default();
        table
            .devices
            .insert("000b82000001".parse().unwrap(), pair("phone", "pw1"));
        table.models.insert("gxp2170".into(), pair("model", "pw2"));
        table.generic = Some(pair("any", "pw3"));
        save_credentials(&build, 7, &table).unwrap();
        let loaded = load_credentials(&build).unwrap().unwrap();
        assert_eq!(loaded, PublishedCredentials { build: 7, table });
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(build.join(CREDENTIALS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(fs::read_dir(build.join(TEMP_DIR)).unwrap().count(), 0);
        fs::write(build.join(CREDENTIALS_FILE), "{").unwrap();
        let err = load_credentials(&build).unwrap_err().to_string();
        assert!(err.contains("unreadable credential table"), "{err}");
    }

    #[test]
    fn only_stale_temp_files_are_removed_unless_all_are_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let build = dir.path().join("build");
        assert_eq!(
            remove_temp_files(&build, Duration::ZERO).unwrap(),
            Vec::<PathBuf>::new()
        );
        fs::create_dir_all(build.join(TEMP_DIR)).unwrap();
        let stray = build.join(TEMP_DIR).join("0123456789abcdef");
        fs::write(&stray, "half a file").unwrap();
        // Just written: a build may still be about to rename it.
        assert_eq!(
            remove_temp_files(&build, STALE_TEMP_AGE).unwrap(),
            Vec::<PathBuf>::new()
        );
        assert!(stray.exists());
        let old = SystemTime::now() - 2 * STALE_TEMP_AGE;
        fs::File::options()
            .write(true)
            .open(&stray)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(
            remove_temp_files(&build, STALE_TEMP_AGE).unwrap(),
            vec![stray.clone()]
        );
        fs::write(&stray, "again").unwrap();
        assert_eq!(
            remove_temp_files(&build, Duration::ZERO).unwrap(),
            vec![stray.clone()]
        );
        assert!(!stray.exists());
    }
}
