//! The open desk in Tauri's managed state, and which desk the app opens at start.
//!
//! The desk itself (settings, inventory, catalogue, the one writer of `build/`) is a
//! `provdesk_desk::DeskService`; opening another desk swaps it whole.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use provdesk_desk::{DeskEvent, DeskService};
use tauri::ipc::Channel;

use crate::error::{ApiError, ApiResult};
use crate::servers::Servers;

/// The open desk, as commands see it.
pub type Session = DeskService;

/// What Tauri manages: the desk that is open now, the servers, and the UI's event channel.
pub struct AppState {
    session: Mutex<DeskService>,
    servers: std::sync::Arc<Servers>,
    desk_events: std::sync::Arc<DeskEventFeed>,
}

/// Forwards the open desk's events to the channel the UI subscribed with.
#[derive(Default)]
pub struct DeskEventFeed {
    channel: Mutex<Option<Channel<DeskEvent>>>,
    forwarder: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
}

impl DeskEventFeed {
    pub fn subscribe(&self, channel: Channel<DeskEvent>) {
        *self.channel.lock().unwrap_or_else(PoisonError::into_inner) = Some(channel);
    }

    fn send(&self, event: DeskEvent) {
        crate::servers::send_or_forget(&self.channel, event);
    }

    /// Follows `desk` from now on (and no longer the desk open before).
    fn follow(self: &std::sync::Arc<Self>, desk: &DeskService) {
        let mut events = desk.events().subscribe();
        let feed = std::sync::Arc::clone(self);
        // Profiles edited by hand are announced while the feed follows this desk.
        let watch = desk
            .watch_profiles()
            .inspect_err(|e| tracing::warn!("{}", e.message));
        let task = tauri::async_runtime::spawn(async move {
            let _watch = watch;
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match events.recv().await {
                    Ok(event) => feed.send(event),
                    // Too far behind: every screen reloads what it shows.
                    Err(RecvError::Lagged(_)) => feed.send(DeskEvent::DevicesChanged {
                        macs: Vec::new(),
                        all: true,
                    }),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        let previous = self
            .forwarder
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(task);
        if let Some(previous) = previous {
            previous.abort();
        }
    }
}

impl AppState {
    pub fn new(session: DeskService) -> AppState {
        let desk_events = std::sync::Arc::new(DeskEventFeed::default());
        desk_events.follow(&session);
        AppState {
            session: Mutex::new(session),
            servers: std::sync::Arc::new(Servers::default()),
            desk_events,
        }
    }

    pub fn desk_events(&self) -> &DeskEventFeed {
        &self.desk_events
    }

    pub fn servers(&self) -> std::sync::Arc<Servers> {
        std::sync::Arc::clone(&self.servers)
    }

    /// The current desk; commands hold it for their duration, so switching desks never
    /// pulls it from under a running command.
    pub fn session(&self) -> DeskService {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Switches desks. Servers of the old desk stop first (their fetch log written), so
    /// nothing serves a desk that is no longer open.
    pub async fn replace(&self, session: DeskService) {
        if let Err(e) = self.servers.stop().await {
            tracing::warn!("stopping the servers of the previous desk: {}", e.message);
        }
        self.desk_events.follow(&session);
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) = session;
    }
}

/// Runs a desk use-case on a blocking thread: they read SQLite and files and may build, and
/// the async runtime also hosts the servers.
pub async fn blocking<T, F>(desk: DeskService, work: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&DeskService) -> ApiResult<T> + Send + 'static,
{
    tauri::async_runtime::spawn_blocking(move || work(&desk))
        .await
        .map_err(|e| ApiError::internal(format!("a desk task failed: {e}")))?
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
