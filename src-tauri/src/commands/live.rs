//! The Live screen: start and stop the servers, their status, the device board, and the
//! event stream (one `Channel`, fed in batches by `servers::forward`).

use tauri::State;
use tauri::ipc::Channel;

use crate::dto::{ListenOverrides, LiveBatch, ServerStatus, Tile};
use crate::error::ApiResult;
use crate::session::AppState;

/// Starts the servers on the open desk; `overrides` replace provdesk.toml's listen addresses.
#[tauri::command]
pub async fn start_servers(
    state: State<'_, AppState>,
    overrides: Option<ListenOverrides>,
) -> ApiResult<ServerStatus> {
    let options = overrides.unwrap_or_default().into();
    state.servers().start(state.session(), options).await
}

/// Stops the servers once every request is in the fetch log.
#[tauri::command]
pub async fn stop_servers(state: State<'_, AppState>) -> ApiResult<ServerStatus> {
    let servers = state.servers();
    servers.stop().await?;
    Ok(servers.status(&state.session()).await)
}

#[tauri::command]
pub async fn server_status(state: State<'_, AppState>) -> ApiResult<ServerStatus> {
    Ok(state.servers().status(&state.session()).await)
}

/// Every device of the desk with its provisioning status, for the board's first paint and
/// after a build (when any tile may have gone stale).
#[tauri::command]
pub async fn live_board(state: State<'_, AppState>) -> ApiResult<Vec<Tile>> {
    state.servers().board(state.session()).await
}

/// Sends the Live screen every batch of events from now on, over `on_batch`.
#[tauri::command]
pub async fn live_subscribe(
    state: State<'_, AppState>,
    on_batch: Channel<LiveBatch>,
) -> ApiResult<()> {
    state.servers().feed().subscribe(on_batch);
    Ok(())
}
