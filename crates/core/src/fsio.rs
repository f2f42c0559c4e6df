//! The one way the desk replaces a file: write a temp file, flush it, rename it over the
//! target. A reader (a phone, the watcher, an editor) sees the old file or the whole new one,
//! never a part.
//!
//! [`Durability::Synced`] also syncs the file before the rename and the folder after it, so
//! the new content survives a power cut: technician input (settings, profiles, firmware,
//! the catalogue overlay) and the stored credentials. The build's generated files use
//! [`Durability::Rebuildable`]: one sync per file would make a build of 1,000 phones wait for
//! 3,000 disk flushes, and a file lost to a power cut does not match the manifest's hash, so
//! the servers leave it out at start and the next build writes it again.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Whether the new content must survive a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Synced to disk (file, then folder) before the call returns.
    Synced,
    /// Left to the kernel: for files a build can write again.
    Rebuildable,
}

/// Who may read the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The umask decides (0644 typically).
    Shared,
    /// Owner only (0600) from the moment it exists: keys, passwords.
    Private,
}

/// How to replace a file.
#[derive(Debug, Clone, Copy)]
pub struct Replace<'a> {
    /// Where the temp file goes: the target's own folder when `None` (under a hidden name);
    /// it must be on the same file system as the target.
    pub temp_dir: Option<&'a Path>,
    pub durability: Durability,
    pub access: Access,
}

impl Replace<'_> {
    /// Technician input: synced, temp file next to the target.
    pub const SYNCED: Replace<'static> = Replace {
        temp_dir: None,
        durability: Durability::Synced,
        access: Access::Shared,
    };
}

/// Replaces `target` with `bytes` (see the module's comment).
pub fn write_atomically(target: &Path, bytes: &[u8], how: Replace<'_>) -> Result<()> {
    replace_with(target, how, |file| file.write_all(bytes))
}

/// Replaces `target` with what `write` puts into the temp file.
pub fn replace_with(
    target: &Path,
    how: Replace<'_>,
    write: impl FnOnce(&mut fs::File) -> std::io::Result<()>,
) -> Result<()> {
    // A bare file name (`report.pdf`) has the empty path as its parent, which cannot be
    // opened to sync: its folder is the current one.
    let folder = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (temp, mut file) = create_temp(how.temp_dir.unwrap_or(folder), target, how.access)?;
    let mut written = write(&mut file).and_then(|()| file.flush());
    if how.durability == Durability::Synced {
        written = written.and_then(|()| file.sync_all());
    }
    drop(file);
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(Error::io(temp, e));
    }
    if let Err(e) = fs::rename(&temp, target) {
        let _ = fs::remove_file(&temp);
        return Err(Error::io(target, e));
    }
    if how.durability == Durability::Synced {
        sync_folder(folder)?;
    }
    Ok(())
}

/// Makes a rename in `folder` durable (Unix; elsewhere the rename is what we have).
pub fn sync_folder(folder: &Path) -> Result<()> {
    #[cfg(unix)]
    fs::File::open(folder)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| Error::io(folder, e))?;
    #[cfg(not(unix))]
    let _ = folder;
    Ok(())
}

/// A fresh file in `dir`: a hidden name derived from the target's, so loaders that skip dot
/// files (profiles, the catalogue overlay, firmware) never pick it up.
fn create_temp(dir: &Path, target: &Path, access: Access) -> Result<(PathBuf, fs::File)> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if access == Access::Private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = access;
    for _ in 0..16 {
        let temp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
        match options.open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(temp, e)),
        }
    }
    Err(Error::Invalid(format!(
        "{}: cannot create a temporary file",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_file_name_is_replaced_in_the_current_folder() {
        // The current folder is the process's: a child process keeps this test's away from
        // the others running in parallel.
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "fsio::tests::bare_name_child", "--nocapture"])
            .env("FSIO_BARE_NAME_DIR", dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            fs::read_to_string(dir.path().join("report.csv")).unwrap(),
            "a,b\r\n"
        );
    }

    /// Run by the test above in a process of its own; does nothing elsewhere.
    #[test]
    fn bare_name_child() {
        let Some(dir) = std::env::var_os("FSIO_BARE_NAME_DIR") else {
            return;
        };
        std::env::set_current_dir(dir).unwrap();
        write_atomically(Path::new("report.csv"), b"a,b\r\n", Replace::SYNCED).unwrap();
    }

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temp_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("global.toml");
        fs::write(&target, "old").unwrap();
        write_atomically(&target, b"new content", Replace::SYNCED).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new content");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the target: {names:?}");
    }

    #[test]
    fn a_temp_dir_elsewhere_is_used_and_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join(".tmp");
        fs::create_dir(&temp).unwrap();
        let target = dir.path().join("cfg.xml");
        let how = Replace {
            temp_dir: Some(&temp),
            durability: Durability::Rebuildable,
            access: Access::Shared,
        };
        write_atomically(&target, b"<x/>", how).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"<x/>");
        assert_eq!(fs::read_dir(&temp).unwrap().count(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn a_private_file_is_never_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("credentials.json");
        let how = Replace {
            access: Access::Private,
            ..Replace::SYNCED
        };
        write_atomically(&target, b"{}", how).unwrap();
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("provdesk.toml");
        fs::write(&target, "old").unwrap();
        let failed = replace_with(&target, Replace::SYNCED, |_| {
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
