//! Devices: the Devices screens' commands over `provdesk_desk`'s device use-cases (list,
//! detail, add, edit, remove, bulk profile, CSV import, enrolment). Each parses, runs the
//! use-case on a blocking thread, and returns; the rules and messages are the desk's.
//! Changes rebuild the devices' files at once: this process owns `build/`.

use provdesk_desk::BuildSummary;
use provdesk_desk::devices::{
    Changed, DeviceDetail, DeviceDto, DeviceInput, ImportOptions, ImportResult, MissingVariables,
    Rebuild, Reveal, parse_macs,
};
use tauri::State;

use crate::error::{ApiError, ApiResult};
use crate::session::{AppState, blocking};

/// The rebuild a change ran: with `Rebuild::Now` there always is one.
fn built(changed: Changed) -> ApiResult<BuildSummary> {
    changed
        .build
        .ok_or_else(|| ApiError::internal("the change was saved but no build ran"))
}

#[tauri::command]
pub async fn list_devices(state: State<'_, AppState>) -> ApiResult<Vec<DeviceDto>> {
    blocking(state.session(), |desk| desk.list_devices(Reveal::Masked)).await
}

#[tauri::command]
pub async fn device_detail(state: State<'_, AppState>, mac: String) -> ApiResult<DeviceDetail> {
    blocking(state.session(), move |desk| {
        desk.device_detail(mac.trim().parse()?, Reveal::Masked)
    })
    .await
}

/// Adds a device; with `replace`, an inventory device with that MAC is overwritten.
#[tauri::command]
pub async fn add_device(
    state: State<'_, AppState>,
    device: DeviceInput,
    replace: bool,
) -> ApiResult<BuildSummary> {
    blocking(state.session(), move |desk| {
        built(desk.add_device(&device, replace, Rebuild::Now)?)
    })
    .await
}

/// Saves an edited device; a changed MAC is an add plus a removal.
#[tauri::command]
pub async fn update_device(
    state: State<'_, AppState>,
    original_mac: String,
    device: DeviceInput,
) -> ApiResult<BuildSummary> {
    blocking(state.session(), move |desk| {
        let original = original_mac.trim().parse()?;
        built(desk.update_device(original, &device, Rebuild::Now)?)
    })
    .await
}

#[tauri::command]
pub async fn remove_devices(
    state: State<'_, AppState>,
    macs: Vec<String>,
) -> ApiResult<BuildSummary> {
    blocking(state.session(), move |desk| {
        built(desk.remove_devices(&parse_macs(&macs)?, Rebuild::Now)?)
    })
    .await
}

/// Gives every listed device `profile` (`None` clears it).
#[tauri::command]
pub async fn assign_profile(
    state: State<'_, AppState>,
    macs: Vec<String>,
    profile: Option<String>,
) -> ApiResult<BuildSummary> {
    blocking(state.session(), move |desk| {
        built(desk.assign_profile(&parse_macs(&macs)?, profile.as_deref(), Rebuild::Now)?)
    })
    .await
}

/// Imports a device list; `source` names the file in diagnostics.
#[tauri::command]
pub async fn import_csv(
    state: State<'_, AppState>,
    text: String,
    source: Option<String>,
    dry_run: bool,
    skip_bad: bool,
) -> ApiResult<ImportResult> {
    blocking(state.session(), move |desk| {
        let options = ImportOptions {
            source: source.as_deref(),
            dry_run,
            skip_bad,
        };
        desk.import_devices(&text, options, Rebuild::Now)
    })
    .await
}

/// What enrolling `macs` into `profile` would leave them lacking, asked before enrolling.
#[tauri::command]
pub async fn enroll_check(
    state: State<'_, AppState>,
    macs: Vec<String>,
    profile: Option<String>,
) -> ApiResult<Vec<MissingVariables>> {
    blocking(state.session(), move |desk| {
        desk.enroll_check(&parse_macs(&macs)?, profile.as_deref())
    })
    .await
}

/// Moves discovered devices into the inventory, with `profile` when given.
#[tauri::command]
pub async fn enroll(
    state: State<'_, AppState>,
    macs: Vec<String>,
    profile: Option<String>,
) -> ApiResult<BuildSummary> {
    blocking(state.session(), move |desk| {
        built(desk.enroll_devices(&parse_macs(&macs)?, profile.as_deref(), Rebuild::Now)?)
    })
    .await
}
