//! Settings → Diagnostics: the app's log file and its last lines.

use tauri::{AppHandle, State};
use tauri_plugin_opener::OpenerExt;

use crate::error::{ApiError, ApiResult};
use crate::session::{AppState, blocking};

/// Lines of the log the panel shows.
const SHOWN_LINES: usize = 200;

/// The newest log file and its last lines (read on a blocking thread: a file read).
#[tauri::command]
pub async fn diagnostics_log(
    app: AppHandle,
    state: State<'_, AppState>,
) -> ApiResult<provdesk_desk::diagnostics::LogTail> {
    let folder = crate::logging::folder(&app);
    blocking(state.session(), move |_| {
        provdesk_desk::diagnostics::log_tail(&folder, SHOWN_LINES)
    })
    .await
}

/// Opens the log folder in the system's file manager.
#[tauri::command]
pub async fn reveal_log_folder(app: AppHandle) -> ApiResult<()> {
    let folder = crate::logging::folder(&app);
    app.opener()
        .open_path(folder.display().to_string(), None::<&str>)
        .map_err(|e| ApiError::internal(format!("cannot open {}: {e}", folder.display())))
}
