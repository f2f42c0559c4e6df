//! The Firmware screen: the files of `DESK/firmware/`, which devices fetch each, and adding,
//! mapping and removing files (all through `provdesk_core::firmware`, then a rebuild so the
//! servers answer with the new set).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use provdesk_core::build::ArtifactKind;
use provdesk_core::firmware;
use provdesk_core::inventory::{DeviceState, UNKNOWN_MODEL};
use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;

use crate::dto::{FirmwareChanged, FirmwareEntry, FirmwareOverview, MissingFirmware};
use crate::error::{ApiError, ApiResult};
use crate::session::{AppState, Session};

#[tauri::command]
pub async fn firmware_overview(state: State<'_, AppState>) -> ApiResult<FirmwareOverview> {
    overview(&state.session())
}

fn overview(session: &Session) -> ApiResult<FirmwareOverview> {
    let desk = &session.desk();
    let files = firmware::list(desk)?;
    let devices: Vec<_> = session
        .inventory()
        .list_devices()?
        .into_iter()
        .filter(|d| d.state == DeviceState::Inventory && d.model != UNKNOWN_MODEL)
        .collect();
    let (mut by_model, affixes) = firmware::uses(desk.root(), &devices, &session.options());
    let manifest = session.manifest();
    let mut requests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, entry) in &manifest.entries {
        if entry.kind == ArtifactKind::Firmware
            && let Some(file) = entry.file.strip_prefix("firmware/")
        {
            requests
                .entry(file.to_string())
                .or_default()
                .push(name.clone());
        }
    }
    let served: BTreeSet<String> = files.iter().filter_map(|f| f.model.clone()).collect();
    let missing = by_model
        .iter()
        .filter(|(model, _)| !served.contains(*model))
        .map(|(model, uses)| MissingFirmware {
            model: model.clone(),
            devices: uses.len(),
            file: firmware::file_for_model(model),
        })
        .collect();
    let files = files
        .into_iter()
        .map(|f| FirmwareEntry {
            devices: f
                .model
                .as_ref()
                .and_then(|m| by_model.remove(m))
                .unwrap_or_default(),
            requests: requests.remove(&f.name).unwrap_or_default(),
            file: f.name,
            size: f.size,
            model: f.model,
        })
        .collect();
    Ok(FirmwareOverview {
        files,
        affixes,
        missing,
    })
}

/// Rebuilds so the manifest (and a running server's store) includes the changed files, then
/// returns the new overview with `message`.
fn changed(session: &Session, message: String) -> ApiResult<FirmwareChanged> {
    let report = session.build()?;
    let message = if report.published {
        format!("{message} Phones get it on their next firmware check.")
    } else {
        format!(
            "{message} The build has errors, so the servers keep the previous files: fix them on the Profiles or Devices screen."
        )
    };
    Ok(FirmwareChanged {
        overview: overview(session)?,
        message,
    })
}

/// Asks for a firmware image with the system dialog; `None` when cancelled.
#[tauri::command]
pub async fn pick_firmware_file(app: AppHandle) -> ApiResult<Option<String>> {
    Ok(app
        .dialog()
        .file()
        .set_title("Add a firmware image")
        .add_filter("Firmware image", &["bin", "zip", "img"])
        .blocking_pick_file()
        .and_then(|p| p.into_path().ok())
        .map(|p| p.display().to_string()))
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
    if path.as_os_str().is_empty() {
        return Err(ApiError::invalid(
            "choose a firmware file first (Choose file… or type its path)",
        ));
    }
    let session = state.session();
    let written = firmware::add(session.desk(), &path, &models)?;
    let message = format!("Added {} as {}.", path.display(), names(&written));
    changed(&session, message)
}

/// Makes `firmware/<file>` answer exactly `models`.
#[tauri::command]
pub async fn map_firmware(
    state: State<'_, AppState>,
    file: String,
    models: Vec<String>,
) -> ApiResult<FirmwareChanged> {
    let session = state.session();
    let names_now = firmware::map(session.desk(), &file, &models)?;
    changed(
        &session,
        format!("firmware/{file} is now {}.", names(&names_now)),
    )
}

#[tauri::command]
pub async fn remove_firmware(
    state: State<'_, AppState>,
    file: String,
) -> ApiResult<FirmwareChanged> {
    let session = state.session();
    firmware::remove(session.desk(), &file)?;
    changed(&session, format!("Removed firmware/{file}."))
}

fn names(files: &[String]) -> String {
    files
        .iter()
        .map(|f| format!("firmware/{f}"))
        .collect::<Vec<_>>()
        .join(", ")
}
