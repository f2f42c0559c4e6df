//! The desk itself: what is open, opening another folder, its opening build and its settings file.

use std::fs;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;
use tauri_plugin_opener::OpenerExt;

use crate::dialogs;
use crate::error::{ApiError, ApiResult};
use crate::session::{AppState, Session, blocking};
use provdesk_desk::overview::DeskInfo;

#[tauri::command]
pub async fn desk_info(state: State<'_, AppState>) -> ApiResult<DeskInfo> {
    blocking(state.session(), |desk| desk.info()).await
}

/// How far the build that runs when a desk opens is.
#[tauri::command]
pub async fn desk_build_status(state: State<'_, AppState>) -> ApiResult<provdesk_desk::BuildState> {
    Ok(state.session().build_state())
}

/// Opens (or, for a folder without a desk, creates with the sample) the desk at `path`.
#[tauri::command]
pub async fn open_desk(state: State<'_, AppState>, path: String) -> ApiResult<DeskInfo> {
    let path = PathBuf::from(path.trim());
    if path.as_os_str().is_empty() {
        return Err(ApiError::invalid("choose a folder for the desk"));
    }
    // Opening reads settings and creates or migrates SQLite: not on the async runtime.
    let session = tauri::async_runtime::spawn_blocking(move || Session::open(&path))
        .await
        .map_err(|e| ApiError::internal(format!("opening the desk failed: {e}")))??;
    let info = blocking(session.clone(), |desk| desk.info()).await?;
    state.replace(session).await;
    // The first look at a desk builds it, in the background like at start-up (the window
    // shows already, so it need not wait for the board).
    opening_build(state.session());
    Ok(info)
}

/// Builds a desk just opened on a blocking thread, so the window shows at once; the UI
/// follows it through the desk's build events, and starting the servers waits for it.
pub fn opening_build(session: Session) {
    tauri::async_runtime::spawn_blocking(move || build_opened(&session));
}

/// The opening build at start-up: on its own thread, which waits until the Live screen has
/// read its board (at most [`FIRST_LOOK_WAIT`]) and then builds at a lower priority. On two
/// cores a build of a 1,000-device desk at full priority delayed the window's first frame
/// with data; the previous build's files serve meanwhile, and the banner follows the build's
/// events as before (the UI reads "not started yet" and waits for its `build-started`).
pub fn opening_build_after_first_look(session: Session) {
    let spawned = std::thread::Builder::new()
        .name("opening-build".into())
        .spawn({
            let session = session.clone();
            move || {
                FIRST_LOOK.wait(FIRST_LOOK_WAIT);
                lower_this_threads_priority();
                // Servers started meanwhile built the desk through their publisher already.
                if !session.is_serving() {
                    build_opened(&session);
                    give_back_freed_memory();
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no thread for the opening build ({e}); building now");
        opening_build(session);
    }
}

/// Returns the heap a finished build freed to the system. A build of a large desk holds
/// every file in memory at once; glibc keeps what it freed for reuse, so an idle window
/// would go on holding a build's worth of memory it no longer needs.
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Called when the Live board has been read: the opening build may start.
pub fn first_look() {
    FIRST_LOOK.open();
}

/// How long the opening build waits for the window's first look at the board.
const FIRST_LOOK_WAIT: Duration = Duration::from_secs(3);

/// The nice value of the opening build's thread (Linux), as the servers' fetch-log writer.
#[cfg(target_os = "linux")]
const OPENING_BUILD_NICE: libc::c_int = 10;

static FIRST_LOOK: Gate = Gate::new();

/// A gate that opens once and stays open.
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    const fn new() -> Self {
        Gate {
            open: Mutex::new(false),
            opened: Condvar::new(),
        }
    }

    fn open(&self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if !*open {
            *open = true;
            self.opened.notify_all();
        }
    }

    fn wait(&self, at_most: Duration) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        // Timed out or not, the build goes ahead: it must run even if no board is read.
        let _ = self
            .opened
            .wait_timeout_while(open, at_most, |open| !*open)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

fn build_opened(session: &Session) {
    if let Err(e) = session.build() {
        tracing::warn!(
            "the opening build of {} failed: {}",
            session.root().display(),
            e.message
        );
    }
    give_back_memory();
}

/// Best effort: a thread that cannot lower its priority still builds.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no arguments and cannot fail.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) };
        let Ok(tid) = libc::id_t::try_from(tid) else {
            return;
        };
        // On Linux the nice value is per thread: the window's threads keep theirs. This is a
        // thread of its own, so no pooled thread is left at the lower priority.
        // SAFETY: plain system call on this thread's own id.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, OPENING_BUILD_NICE) } != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "the opening build keeps its priority");
        }
    }
}

/// The build's working memory goes back to the system rather than staying in glibc's free
/// lists, where it counted as the idle app's memory.
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's own free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Asks for a folder with the system dialog; `None` when the technician cancels.
#[tauri::command]
pub async fn choose_folder(app: AppHandle, title: String) -> ApiResult<Option<String>> {
    let picked = dialogs::pick_folder(app.dialog().file().set_title(title)).await;
    Ok(picked.map(|p| p.display().to_string()))
}

/// A text file the technician picks (a CSV device list), read in Rust so the webview needs
/// no file-system access.
#[derive(serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct PickedFile {
    pub name: String,
    pub text: String,
}

#[tauri::command]
pub async fn pick_csv_file(
    app: AppHandle,
    state: State<'_, AppState>,
) -> ApiResult<Option<PickedFile>> {
    let dialog = app
        .dialog()
        .file()
        .set_title("Import devices from a CSV file")
        .add_filter("Device list", &["csv", "txt", "tsv"]);
    let Some(path) = dialogs::pick_file(dialog).await else {
        return Ok(None);
    };
    blocking(state.session(), move |_| read_csv(path).map(Some)).await
}

fn read_csv(path: PathBuf) -> ApiResult<PickedFile> {
    let bytes = fs::read(&path).map_err(|e| ApiError::io(&path, e))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ApiError::invalid(format!(
            "{} is not UTF-8 text; save it as \"CSV UTF-8\" and pick it again",
            path.display()
        ))
    })?;
    Ok(PickedFile {
        name: path.display().to_string(),
        text,
    })
}

/// Opens the desk folder (or a folder inside it) in the system's file manager.
#[tauri::command]
pub async fn reveal_in_desk(
    app: AppHandle,
    state: State<'_, AppState>,
    relative: Option<String>,
) -> ApiResult<()> {
    let session = state.session();
    let mut path = session.desk().root().to_path_buf();
    if let Some(relative) = relative.filter(|r| !r.contains("..")) {
        path.push(relative);
    }
    app.opener()
        .open_path(path.display().to_string(), None::<&str>)
        .map_err(|e| ApiError::internal(format!("cannot open {}: {e}", path.display())))
}
