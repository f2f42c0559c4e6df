//! The app's log: what the servers, builds and the app itself report through `tracing` (e.g.
//! "accept task panicked", a build after saving settings that failed) goes to a daily file in
//! the app's log folder, at info level, the last 14 days kept; Settings → Diagnostics shows
//! it. Warnings also go to stderr, for whoever started the app from a terminal.
//!
//! `RUST_LOG` overrides the file's level (e.g. `RUST_LOG=provdesk_serve=debug`).

use std::path::Path;

use provdesk_desk::diagnostics::{LOG_PREFIX, LOG_SUFFIX};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, fmt};

/// Days of logs kept; older files are removed as a new day's file starts.
const KEPT_FILES: usize = 14;

/// Holds the log writer's thread: dropping it flushes what is queued. Kept in Tauri's managed
/// state for the app's lifetime.
pub struct LogGuard(#[allow(dead_code)] Option<WorkerGuard>);

/// The app's log folder; a platform without one for apps still gets a log, in the temp
/// folder, rather than no log or no app.
pub fn folder(app: &tauri::AppHandle) -> std::path::PathBuf {
    use tauri::Manager;
    app.path()
        .app_log_dir()
        .unwrap_or_else(|_| std::env::temp_dir().join("provdesk-logs"))
}

/// Installs the subscriber: the file in `folder` (created if needed) and stderr. Without a
/// usable folder the app still logs to stderr and says why.
pub fn init(folder: &Path) -> LogGuard {
    let file_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let appender = std::fs::create_dir_all(folder)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            RollingFileAppender::builder()
                .rotation(Rotation::DAILY)
                .filename_prefix(LOG_PREFIX)
                .filename_suffix(LOG_SUFFIX)
                .max_log_files(KEPT_FILES)
                .build(folder)
                .map_err(|e| e.to_string())
        });
    match appender {
        Ok(appender) => {
            // Writes happen on the appender's own thread: a warning on a server's hot path
            // never waits for the disk.
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let file = fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(file_filter);
            let _ = tracing_subscriber::registry()
                .with(file)
                .with(stderr())
                .try_init();
            tracing::info!(version = env!("CARGO_PKG_VERSION"), "ProvDesk started");
            LogGuard(Some(guard))
        }
        Err(e) => {
            let _ = tracing_subscriber::registry().with(stderr()).try_init();
            tracing::warn!(
                "cannot write the log in {}: {e}; logging to stderr only",
                folder.display()
            );
            LogGuard(None)
        }
    }
}

/// Warnings on stderr, for whoever started the app from a terminal.
fn stderr<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(EnvFilter::new("warn"))
}
