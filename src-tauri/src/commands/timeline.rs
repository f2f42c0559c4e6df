//! A device's timeline and diagnosis for the device page's Timeline tab, and push
//! re-provisioning (NOTIFY check-sync, or a reboot) from the device page, the Live board's
//! tiles and the Devices list's bulk bar. The desk decides the addresses, ports, credentials
//! and verdicts; these only parse, call and return.

use provdesk_core::diagnosis::Diagnosis;
use provdesk_desk::devices::Reveal;
use provdesk_desk::resync::{ResyncRequest, ResyncResult};
use provdesk_desk::timeline::DeviceHistory;
use tauri::State;

use crate::error::ApiResult;
use crate::session::{AppState, blocking};

/// The history of `mac`, oldest first, from `since_ms` on when given.
#[tauri::command]
pub async fn device_history(
    state: State<'_, AppState>,
    mac: String,
    since_ms: Option<i64>,
) -> ApiResult<DeviceHistory> {
    blocking(state.session(), move |desk| {
        desk.history(mac.trim().parse()?, since_ms)
    })
    .await
}

/// The diagnosis of `mac`, its secrets masked.
#[tauri::command]
pub async fn device_diagnosis(state: State<'_, AppState>, mac: String) -> ApiResult<Diagnosis> {
    blocking(state.session(), move |desk| {
        desk.diagnose(mac.trim().parse()?, Reveal::Masked)
    })
    .await
}

/// Sends the selected devices a re-provision (or reboot) NOTIFY and returns every outcome;
/// it takes up to a few seconds for a phone that does not answer.
#[tauri::command]
pub async fn resync_devices(
    state: State<'_, AppState>,
    request: ResyncRequest,
) -> ApiResult<Vec<ResyncResult>> {
    blocking(state.session(), move |desk| desk.resync(&request)).await
}
