//! The desk's change events, pushed to the UI over one `Channel` so no screen polls: devices,
//! profiles, settings, firmware, builds (with their diagnostics), discovered phones, servers.

use tauri::State;
use tauri::ipc::Channel;

use crate::error::ApiResult;
use crate::session::AppState;

/// Sends every desk event from now on over `on_event`, for whichever desk is open (the
/// subscription follows a switch of desks). A second subscription (the webview reloaded)
/// replaces the first.
#[tauri::command]
pub async fn desk_subscribe(
    state: State<'_, AppState>,
    on_event: Channel<provdesk_desk::DeskEvent>,
) -> ApiResult<()> {
    state.desk_events().subscribe(on_event);
    Ok(())
}
