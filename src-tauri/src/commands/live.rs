//! The Live screen: start and stop the servers, their status, the device board, the recent
//! requests from the fetch log, the event stream (one `Channel`, fed in batches by
//! `servers::forward`), and the DHCP and plug-and-play switches with the lease table (the
//! desk's `lan` and `dhcp` use-cases).

use tauri::State;
use tauri::ipc::Channel;

use provdesk_desk::dhcp::LeaseRow;
use provdesk_desk::lan::{self, DhcpPreflight, LanInterface};

use crate::dto::{ListenOverrides, LiveBatch, LogRow, ServerStatus, Tile};
use crate::error::ApiResult;
use crate::session::{AppState, Session, blocking};

/// How many requests of history the Live log opens with when the screen asks for no number.
const HISTORY: usize = 1000;

/// Starts the servers on the open desk; `overrides` replace provdesk.toml's listen addresses.
#[tauri::command]
pub async fn start_servers(
    state: State<'_, AppState>,
    overrides: Option<ListenOverrides>,
) -> ApiResult<ServerStatus> {
    let options = overrides.unwrap_or_default().into();
    state.servers().start(state.session(), options).await
}

/// The interfaces DHCP and plug-and-play can be bound to (IPv4, no loopback).
#[tauri::command]
pub async fn lan_interfaces(state: State<'_, AppState>) -> ApiResult<Vec<LanInterface>> {
    blocking(state.session(), |_| lan::lan_interfaces()).await
}

/// Looks for another DHCP server on `interface` (about two seconds); the DHCP switch shows
/// the answer before it starts anything.
#[tauri::command]
pub async fn dhcp_preflight(
    state: State<'_, AppState>,
    interface: String,
) -> ApiResult<DhcpPreflight> {
    blocking(state.session(), move |_| lan::dhcp_preflight(&interface)).await
}

/// Restarts the running servers with DHCP answering on `interface` (`null`: off).
#[tauri::command]
pub async fn set_dhcp(
    state: State<'_, AppState>,
    interface: Option<String>,
) -> ApiResult<ServerStatus> {
    state
        .servers()
        .restart_with(state.session(), |options| {
            lan::with_dhcp(options, interface.as_deref())
        })
        .await
}

/// Restarts the running servers with plug-and-play on `interface` (`null`: off).
#[tauri::command]
pub async fn set_plug_and_play(
    state: State<'_, AppState>,
    interface: Option<String>,
) -> ApiResult<ServerStatus> {
    state
        .servers()
        .restart_with(state.session(), |options| {
            lan::with_pnp(options, interface.as_deref())
        })
        .await
}

/// The DHCP responder's leases, with each lease's device.
#[tauri::command]
pub async fn dhcp_leases(state: State<'_, AppState>) -> ApiResult<Vec<LeaseRow>> {
    blocking(state.session(), |desk| desk.dhcp_leases()).await
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
    let board = state.servers().board(state.session()).await;
    // The board is what the window shows first; the opening build waited for it.
    crate::commands::desk::first_look();
    board
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

/// The newest requests of the fetch log, oldest first, for the Live log to open with (the
/// servers' batches add to it from then on).
#[tauri::command]
pub async fn live_history(
    state: State<'_, AppState>,
    limit: Option<usize>,
) -> ApiResult<Vec<LogRow>> {
    history(state.session(), limit).await
}

pub async fn history(desk: Session, limit: Option<usize>) -> ApiResult<Vec<LogRow>> {
    let limit = limit.unwrap_or(HISTORY);
    blocking(desk, move |d| d.recent_fetches(limit)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use provdesk_core::inventory::FetchLogEntry;

    fn fetch(ts: i64, name: &str) -> FetchLogEntry {
        FetchLogEntry {
            id: None,
            ts,
            protocol: "tftp".into(),
            peer: "10.0.0.7:40000".into(),
            name: name.into(),
            mac: None,
            user_agent: None,
            status: "200".into(),
            reason: None,
            bytes: 512,
            duration_ms: 4,
            artifact_hash: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn live_history_is_the_fetch_log_newest_last() {
        let dir = tempfile::tempdir().unwrap();
        let desk = Session::open(&dir.path().join("desk")).unwrap();
        let entries: Vec<FetchLogEntry> = (0..5)
            .map(|i| fetch(1_000 + i, &format!("cfg{i}.xml")))
            .collect();
        desk.inventory().append_fetch_log(&entries).unwrap();

        let rows = history(desk.clone(), Some(3)).await.unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["cfg2.xml", "cfg3.xml", "cfg4.xml"]);
        let json = serde_json::to_value(&rows[0]).unwrap();
        assert_eq!(json["protocol"], "tftp");
        assert_eq!(json["outcome"], "served");
        assert_eq!(json["at_ms"], 1_002);

        assert_eq!(history(desk, None).await.unwrap().len(), 5);
    }
}
