//! The open desk: the folder, its inventory, its catalogue and the builder that keeps the last
//! manifest in memory. One `Session` per open desk; opening another desk swaps it whole.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use provdesk_core::build::{BuildOptions, BuildReport, Builder};
use provdesk_core::catalog::Catalog;
use provdesk_core::desk::Desk;
use provdesk_core::inventory::Inventory;
use provdesk_core::{Diagnostic, Mac};

use crate::error::{ApiError, ApiResult};

pub struct Session {
    pub desk: Desk,
    pub inventory: Inventory,
    /// The built-in catalogue with the desk's `catalog/*.toml` overlay.
    pub catalog: Catalog,
    pub catalog_diagnostics: Vec<Diagnostic>,
    builder: Mutex<Builder>,
}

impl Session {
    /// Opens the desk at `root`, creating it with the sample when the folder has no desk yet
    /// (the same rule as the CLI).
    pub fn open(root: &Path) -> ApiResult<Session> {
        let desk = Desk::open_or_init(root)?;
        let inventory = desk.inventory()?;
        let (catalog, catalog_diagnostics) = Catalog::load_with_overlay(desk.root());
        Ok(Session {
            builder: Mutex::new(Builder::new(desk.clone())),
            desk,
            inventory,
            catalog,
            catalog_diagnostics,
        })
    }

    pub fn options(&self) -> BuildOptions {
        BuildOptions::from_settings(self.desk.settings())
    }

    pub fn builder(&self) -> MutexGuard<'_, Builder> {
        // A panic while building leaves the builder usable: its manifest is re-read on demand.
        self.builder.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A full build, after a profile changed.
    pub fn build(&self) -> ApiResult<BuildReport> {
        Ok(self.builder().build(&self.inventory, &self.options())?)
    }

    /// Rebuilds the files of these devices only (or everything, when the builder decides the
    /// change reaches further).
    pub fn rebuild_devices(&self, macs: &[Mac]) -> ApiResult<BuildReport> {
        Ok(self
            .builder()
            .rebuild_devices(&self.inventory, macs, &self.options())?)
    }
}

/// What Tauri manages: the session of the desk that is open now.
pub struct AppState {
    session: Mutex<Arc<Session>>,
}

impl AppState {
    pub fn new(session: Session) -> AppState {
        AppState {
            session: Mutex::new(Arc::new(session)),
        }
    }

    /// The current session; commands hold it for their duration, so switching desks never
    /// pulls it from under a running command.
    pub fn session(&self) -> Arc<Session> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn replace(&self, session: Session) {
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(session);
    }
}

/// The desk to open: `--desk DIR` (or `--desk=DIR`), else `PROVDESK_DESK`, else the CLI's
/// default desk in the platform data directory.
pub fn desk_from_args(
    args: impl IntoIterator<Item = String>,
    env: Option<String>,
) -> ApiResult<PathBuf> {
    let mut args = args.into_iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--desk" {
            return args
                .next()
                .map(PathBuf::from)
                .ok_or_else(|| ApiError::invalid("--desk needs a folder: --desk DIR"));
        }
        if let Some(dir) = arg.strip_prefix("--desk=") {
            return Ok(PathBuf::from(dir));
        }
    }
    if let Some(dir) = env.filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    Ok(default_desk())
}

/// Same place as `provdesk` without `--desk`, so the app and the CLI share one default desk.
pub fn default_desk() -> PathBuf {
    directories::ProjectDirs::from("", "", "provdesk")
        .map(|dirs| dirs.data_dir().join("default"))
        .unwrap_or_else(|| PathBuf::from("provdesk-desk"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str], env: Option<&str>, expected: &str) {
        let args = args.iter().map(|s| s.to_string());
        let got = desk_from_args(args, env.map(str::to_string)).unwrap();
        assert_eq!(got, PathBuf::from(expected));
    }

    #[test]
    fn desk_argument_beats_environment_beats_default() {
        check(&["app", "--desk", "/a"], Some("/b"), "/a");
        check(&["app", "--desk=/c"], None, "/c");
        check(&["app"], Some("/b"), "/b");
        assert_eq!(
            desk_from_args(["app".to_string()], None).unwrap(),
            default_desk()
        );
        assert!(desk_from_args(["app".into(), "--desk".into()], None).is_err());
    }
}
