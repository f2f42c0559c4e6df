//! The Firmware screen's commands: each parses, runs the desk's use-case
//! (`provdesk_desk::firmware`) on a blocking thread, and returns its view.

use std::path::PathBuf;

use provdesk_desk::firmware::{FirmwareChanged, FirmwareOverview};
use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;

use crate::dialogs;
use crate::error::ApiResult;
use crate::session::{AppState, blocking};

#[tauri::command]
pub async fn firmware_overview(state: State<'_, AppState>) -> ApiResult<FirmwareOverview> {
    blocking(state.session(), |desk| desk.firmware_overview()).await
}

/// Asks for a firmware image with the system dialog; `None` when cancelled.
#[tauri::command]
pub async fn pick_firmware_file(app: AppHandle) -> ApiResult<Option<String>> {
    let dialog = app
        .dialog()
        .file()
        .set_title("Add a firmware image")
        .add_filter("Firmware image", &["bin", "zip", "img"]);
    let picked = dialogs::pick_file(dialog).await;
    Ok(picked.map(|p| p.display().to_string()))
}

/// Copies the image at `path` into `firmware/`, as `<model>fw.bin` for each of `models` (or
/// under its own name when none are given). Takes a path so the e2e test and a typed path in
/// the UI work the same as the dialog.
#[tauri::command]
pub async fn add_firmware(
    state: State<'_, AppState>,
    path: String,
    models: Vec<String>,
) -> ApiResult<FirmwareChanged> {
    let path = PathBuf::from(path.trim());
    blocking(state.session(), move |desk| {
        desk.add_firmware(&path, &models)
    })
    .await
}

/// Makes `firmware/<file>` answer exactly `models`.
#[tauri::command]
pub async fn map_firmware(
    state: State<'_, AppState>,
    file: String,
    models: Vec<String>,
) -> ApiResult<FirmwareChanged> {
    blocking(state.session(), move |desk| {
        desk.map_firmware(&file, &models)
    })
    .await
}

#[tauri::command]
pub async fn remove_firmware(
    state: State<'_, AppState>,
    file: String,
) -> ApiResult<FirmwareChanged> {
    blocking(state.session(), move |desk| desk.remove_firmware(&file)).await
}
