//! The desk itself: what is open, opening another folder, its opening build and its settings file.

use std::fs;
use std::path::PathBuf;

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
    // The first look at a desk builds it, in the background like at start-up.
    opening_build(state.session());
    Ok(info)
}

/// Builds a desk just opened on a blocking thread, so the window shows at once; the UI
/// follows it through the desk's build events, and starting the servers waits for it.
pub fn opening_build(session: Session) {
    tauri::async_runtime::spawn_blocking(move || {
        if let Err(e) = session.build() {
            tracing::warn!(
                "the opening build of {} failed: {}",
                session.root().display(),
                e.message
            );
        }
    });
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
