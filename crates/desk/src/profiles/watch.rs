//! Notices profile files edited outside ProvDesk (a text editor, a script, a `git pull`) while
//! a desk is open, and announces them as [`DeskEvent::ProfilesChanged`], so the app's profile
//! editor reloads or shows a conflict without polling. The servers' own watcher (which also
//! rebuilds) only runs while they serve; this one runs whenever the app has a desk open.
//!
//! Invariants: hidden files (editors' swap files, the desk's own temp files before their
//! rename) and anything but `*.toml` are never announced; a save through a temp file and a
//! rename is announced under the file's own name; a burst of changes is one event.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use provdesk_core::desk::PROFILES_DIR;

use crate::error::{DeskError, DeskResult, ErrorKind};
use crate::events::{DeskEvent, DeskEvents};
use crate::service::DeskService;

/// Quiet time after the last change before it is announced: an editor's save (write, rename,
/// chmod) is one event.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches `profiles/` while it lives; dropping it stops the watch.
pub struct ProfileWatch {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

impl std::fmt::Debug for ProfileWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProfileWatch")
    }
}

impl DeskService {
    /// Announces every change under `profiles/` from now on (changes made after this returns
    /// are seen), until the returned guard is dropped. Keep the guard with the desk.
    pub fn watch_profiles(&self) -> DeskResult<ProfileWatch> {
        let dir = self.desk().profiles_dir();
        std::fs::create_dir_all(&dir).map_err(|e| DeskError::io(&dir, e))?;
        // Events name paths as the system resolves them (a symlinked temp folder, say).
        let real = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        let events = self.events().clone();
        let bases = [dir.clone(), real];
        let cannot_watch = |e: notify_debouncer_full::notify::Error| {
            DeskError::new(
                ErrorKind::Io,
                format!(
                    "{}: cannot watch for changes made outside ProvDesk ({e}); reopen the \
                     desk to see them",
                    dir.display()
                ),
            )
        };
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
            announce(&events, &bases, result);
        })
        .map_err(cannot_watch)?;
        debouncer
            .watch(&dir, RecursiveMode::Recursive)
            .map_err(cannot_watch)?;
        Ok(ProfileWatch {
            _debouncer: debouncer,
        })
    }
}

/// Emits one `ProfilesChanged` for the profile files a batch of file events touched.
fn announce(events: &DeskEvents, bases: &[PathBuf], result: DebounceEventResult) {
    let batch = match result {
        Ok(batch) => batch,
        Err(errors) => {
            for e in errors {
                tracing::warn!("watching the profiles: {e}");
            }
            return;
        }
    };
    let files: BTreeSet<String> = batch
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::Access(_) | EventKind::Other))
        .flat_map(|e| &e.paths)
        .filter_map(|path| profile_file(bases, path))
        .collect();
    if !files.is_empty() {
        events.emit(DeskEvent::ProfilesChanged {
            files: files.into_iter().collect(),
        });
    }
}

/// `profiles/office.toml` for a profile file under one of `bases`, else `None`.
fn profile_file(bases: &[PathBuf], path: &Path) -> Option<String> {
    let relative = bases.iter().find_map(|base| path.strip_prefix(base).ok())?;
    let name = relative.file_name()?.to_str()?;
    let visible = !name.starts_with(['.', '#', '~']);
    if !visible || !name.ends_with(".toml") {
        return None;
    }
    Some(super::slashed(&Path::new(PROFILES_DIR).join(relative)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_toml_files_under_profiles_count() {
        let bases = [PathBuf::from("/desk/profiles")];
        let check = |path: &str| profile_file(&bases, Path::new(path));
        assert_eq!(
            check("/desk/profiles/office.toml").as_deref(),
            Some("profiles/office.toml")
        );
        assert_eq!(
            check("/desk/profiles/models/gxp2170.toml").as_deref(),
            Some("profiles/models/gxp2170.toml")
        );
        for ignored in [
            "/desk/profiles/.office.toml.0123456789abcdef.tmp",
            "/desk/profiles/.office.toml.swp",
            "/desk/profiles/office.toml~",
            "/desk/profiles/#office.toml#",
            "/desk/profiles/models",
            "/desk/build/cfg000b82000001",
        ] {
            assert_eq!(check(ignored), None, "{ignored}");
        }
    }
}
