//! The open desk: the folder, its inventory, its catalogue and the builder that keeps the last
//! manifest in memory. One `Session` per open desk; opening another desk swaps it whole.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use provdesk_core::build::{BuildOptions, BuildReport, Builder};
use provdesk_core::catalog::Catalog;
use provdesk_core::desk::Desk;
use provdesk_core::inventory::Inventory;
use provdesk_core::{Diagnostic, Mac};
use provdesk_serve::publisher::Publisher;

use crate::dto::{BuildSummary, DeskBuildStatus};
use crate::error::{ApiError, ApiResult};
use crate::servers::Servers;

pub struct Session {
    pub desk: Desk,
    pub inventory: Inventory,
    /// The built-in catalogue with the desk's `catalog/*.toml` overlay.
    pub catalog: Catalog,
    pub catalog_diagnostics: Vec<Diagnostic>,
    builder: Mutex<Builder>,
    /// The running servers' publisher while they serve this desk: then every build goes
    /// through it, so `build/` has one writer and the servers swap in each good build.
    serving: Mutex<Option<Publisher>>,
    /// The build that runs when the app opens a desk, in the background so the window shows
    /// at once even for a desk of 10,000 phones.
    opening_build: Mutex<OpeningBuild>,
}

/// Where the opening build of a desk is.
#[derive(Debug, Clone)]
enum OpeningBuild {
    NotStarted,
    Running { started: Instant, devices: usize },
    Done(BuildSummary),
    Failed(String),
}

/// A build the session ran: with its own builder, or through the running servers' publisher
/// (which reports counts, not names).
#[derive(Debug, Clone)]
pub enum Built {
    Here(BuildReport),
    Served {
        summary: provdesk_serve::events::BuildSummary,
        /// Devices with files in the build being served.
        devices: usize,
    },
}

impl Built {
    /// Whether the build reached the served files (a build with errors publishes nothing).
    pub fn published(&self) -> bool {
        match self {
            Built::Here(report) => report.published,
            Built::Served { summary, .. } => summary.published,
        }
    }
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
            opening_build: Mutex::new(OpeningBuild::NotStarted),
            serving: Mutex::new(None),
        })
    }

    pub fn options(&self) -> BuildOptions {
        BuildOptions::from_settings(self.desk.settings())
    }

    /// The session's builder, for reading the manifest. While the servers run, their
    /// publisher writes `build/`, so the builder handed out is a fresh one that reads the
    /// published manifest from disk instead of a copy that may be out of date.
    pub fn builder(&self) -> MutexGuard<'_, Builder> {
        // A panic while building leaves the builder usable: its manifest is re-read on demand.
        let mut builder = self.builder.lock().unwrap_or_else(|p| p.into_inner());
        if self.publisher().is_some() {
            *builder = Builder::new(self.desk.clone());
        }
        builder
    }

    fn publisher(&self) -> Option<Publisher> {
        self.serving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Routes builds through the running servers' publisher (`Some`), or back to the
    /// session's own builder (`None`, after the servers stopped).
    pub fn serve_through(&self, publisher: Option<Publisher>) {
        let stopped = publisher.is_none();
        *self.serving.lock().unwrap_or_else(|p| p.into_inner()) = publisher;
        if stopped {
            // The publisher built with the servers' address; start over from what is on disk.
            *self.builder.lock().unwrap_or_else(|p| p.into_inner()) =
                Builder::new(self.desk.clone());
        }
    }

    /// The build a desk gets when the app opens it, so previews, firmware mappings and tiles
    /// are current. Run on a thread of its own; the UI follows it with [`Session::opening_build`].
    pub fn run_opening_build(&self) {
        // Counted once: the banner says how big the job is.
        let devices = self.inventory.list_devices().map_or(0, |d| d.len());
        self.set_opening(OpeningBuild::Running {
            started: Instant::now(),
            devices,
        });
        let outcome = match self.build() {
            Ok(built) => OpeningBuild::Done(BuildSummary::from(&built)),
            Err(e) => OpeningBuild::Failed(e.message),
        };
        self.set_opening(outcome);
    }

    fn set_opening(&self, state: OpeningBuild) {
        *self.opening_build.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// How far the opening build is, for the banner the window shows while it runs.
    pub fn opening_build(&self) -> DeskBuildStatus {
        let state = self
            .opening_build
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match state {
            OpeningBuild::NotStarted => DeskBuildStatus::default(),
            OpeningBuild::Running { started, devices } => DeskBuildStatus {
                running: true,
                elapsed_ms: started.elapsed().as_millis() as u64,
                devices,
                ..DeskBuildStatus::default()
            },
            OpeningBuild::Done(summary) => DeskBuildStatus {
                devices: summary.devices,
                summary: Some(summary),
                ..DeskBuildStatus::default()
            },
            OpeningBuild::Failed(error) => DeskBuildStatus {
                error: Some(error),
                ..DeskBuildStatus::default()
            },
        }
    }

    /// Waits until no build of the session's own builder runs (the opening build included),
    /// so the servers' publisher does not write `build/` next to it.
    pub fn wait_for_builds(&self) {
        drop(self.builder.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// A full build, after a profile changed.
    pub fn build(&self) -> ApiResult<Built> {
        if let Some(publisher) = self.publisher() {
            let summary = wait(async move { publisher.rebuild_all().await });
            return Ok(self.served(summary));
        }
        Ok(Built::Here(
            self.builder().build(&self.inventory, &self.options())?,
        ))
    }

    /// Rebuilds the files of these devices only (or everything, when the builder decides the
    /// change reaches further).
    pub fn rebuild_devices(&self, macs: &[Mac]) -> ApiResult<Built> {
        if let Some(publisher) = self.publisher() {
            let macs = macs.to_vec();
            let summary = wait(async move { publisher.rebuild_devices(&macs).await });
            return Ok(self.served(summary));
        }
        Ok(Built::Here(self.builder().rebuild_devices(
            &self.inventory,
            macs,
            &self.options(),
        )?))
    }

    fn served(&self, summary: provdesk_serve::events::BuildSummary) -> Built {
        let devices = self
            .publisher()
            .map_or(0, |p| devices_in(&p.store().snapshot().manifest));
        Built::Served { summary, devices }
    }
}

/// How many devices have files of their own in `manifest`.
pub fn devices_in(manifest: &provdesk_core::build::Manifest) -> usize {
    manifest
        .entries
        .values()
        .filter_map(|e| e.mac)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// Waits for `future` from synchronous code: commands are `async` but call the session
/// synchronously, and the servers' publisher is async. On a worker of the multi-threaded
/// runtime the worker is handed over while it waits; elsewhere Tauri's runtime runs it.
pub fn wait<F>(future: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(future))
        }
        // A single-threaded runtime (tests) cannot block; wait on another thread.
        Ok(_) => std::thread::scope(|scope| {
            match scope
                .spawn(|| tauri::async_runtime::block_on(future))
                .join()
            {
                Ok(output) => output,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }),
        Err(_) => tauri::async_runtime::block_on(future),
    }
}

/// What Tauri manages: the session of the desk that is open now, and the servers.
pub struct AppState {
    session: Mutex<Arc<Session>>,
    servers: Arc<Servers>,
}

impl AppState {
    pub fn new(session: Session) -> AppState {
        AppState {
            session: Mutex::new(Arc::new(session)),
            servers: Arc::new(Servers::default()),
        }
    }

    pub fn servers(&self) -> Arc<Servers> {
        Arc::clone(&self.servers)
    }

    /// The current session; commands hold it for their duration, so switching desks never
    /// pulls it from under a running command.
    pub fn session(&self) -> Arc<Session> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Switches desks. Servers of the old desk stop first (their fetch log written), so
    /// nothing serves a desk that is no longer open.
    pub fn replace(&self, session: Session) {
        let servers = self.servers();
        if let Err(e) = wait(async move { servers.stop().await }) {
            eprintln!(
                "warning: stopping the servers of the previous desk: {}",
                e.message
            );
        }
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
    fn the_opening_build_reports_its_progress_and_result() {
        let dir = tempfile::tempdir().unwrap();
        let session = Arc::new(Session::open(&dir.path().join("desk")).unwrap());
        let before = session.opening_build();
        assert!(!before.running && before.summary.is_none() && before.error.is_none());
        // Hold the builder the way a running build does: the opening build waits behind it and
        // reports itself as running meanwhile.
        let held = session.builder.lock().unwrap();
        let opening = {
            let session = Arc::clone(&session);
            std::thread::spawn(move || session.run_opening_build())
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while !session.opening_build().running {
            assert!(Instant::now() < deadline, "the opening build never started");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(held);
        opening.join().unwrap();
        let after = session.opening_build();
        assert!(!after.running);
        let summary = after.summary.expect("a summary once done");
        assert!(summary.published, "{summary:?}");
        assert!(summary.written > 0, "the sample desk has files to write");
        assert!(dir.path().join("desk/build/cfg.xml").exists());
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
