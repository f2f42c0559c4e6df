//! The servers inside the app: the same `provdesk_serve::service::Service` as `provdesk serve`,
//! run on Tauri's tokio runtime, and the one event stream to the Live screen (a Tauri
//! `Channel` fed in batches by [`batch::Batcher`], with tiles from [`board::Board`]).
//!
//! Invariants: at most one service runs; while it runs, the open session builds through its
//! publisher (one writer of `build/`); stopping shuts the service down in its own order
//! (servers, watcher, builds, recorder last), so every fetch is in the fetch log before
//! `stop` returns.

pub mod batch;
pub mod board;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use provdesk_core::Mac;
use provdesk_core::build::Manifest;
use provdesk_core::inventory::{DeviceEventQuery, FetchLogQuery, Inventory};
use provdesk_core::status::STATUS_LOG_DEPTH;
use provdesk_serve::events::Event;
use provdesk_serve::service::ServeOptions;
use provdesk_serve::store::ArtifactStore;
use tauri::async_runtime::JoinHandle;
use tauri::ipc::Channel;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::dto::{LanStatus, LiveBatch, ServerStatus, Tile};
use crate::error::{ApiError, ApiResult};
use crate::session::Session;
use provdesk_desk::ErrorKind;
use provdesk_desk::service::devices_in;

use self::batch::Batcher;
use self::board::{Board, Seed};

/// The servers of the open desk, if running, and the Live screen's channel.
#[derive(Default)]
pub struct Servers {
    state: tokio::sync::Mutex<State>,
    feed: Arc<Feed>,
}

#[derive(Default)]
struct State {
    running: Option<Running>,
    /// Why the last start failed; cleared by the next start.
    errors: Vec<String>,
}

struct Running {
    session: Session,
    /// What the servers were started with, so saving settings can restart them alike.
    options: ServeOptions,
    status: ServerStatus,
    forwarder: JoinHandle<()>,
    stop_forwarder: CancellationToken,
}

/// Where batches go: the channel the Live screen subscribed with (replaced when the webview
/// reloads and subscribes again).
#[derive(Default)]
pub struct Feed {
    channel: Mutex<Option<Channel<LiveBatch>>>,
}

impl Feed {
    pub fn subscribe(&self, channel: Channel<LiveBatch>) {
        *self.channel.lock().unwrap_or_else(PoisonError::into_inner) = Some(channel);
    }

    fn send(&self, batch: LiveBatch) {
        send_or_forget(&self.channel, batch);
    }
}

/// Sends `message` on the channel a webview subscribed with; a channel whose webview went
/// away is forgotten (the next subscription brings a new one).
pub fn send_or_forget<T: tauri::ipc::IpcResponse>(slot: &Mutex<Option<Channel<T>>>, message: T) {
    let mut channel = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(c) = channel.as_ref()
        && c.send(message).is_err()
    {
        *channel = None;
    }
}

impl Servers {
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    /// Starts the servers on `session`'s desk. A second start while running reports the
    /// running servers; a failed start (port in use, permission denied) is an error and is
    /// kept for [`Servers::status`].
    pub async fn start(&self, session: Session, options: ServeOptions) -> ApiResult<ServerStatus> {
        let mut state = self.state.lock().await;
        if let Some(running) = &state.running {
            if running.session.same(&session) {
                return Ok(running.status.clone());
            }
            return Err(ApiError::new(
                ErrorKind::Serve,
                "the servers still run for another desk; stop them first",
            ));
        }
        // The desk hands its builder to the servers' publisher (after a build running here
        // finishes), so the publisher is the only writer of build/ from here on.
        let started = match session.start_serving(options.clone()).await {
            Ok(started) => started,
            Err(e) => {
                state.errors = vec![e.message.clone()];
                return Err(e);
            }
        };
        state.errors.clear();
        let status = ServerStatus::running(
            session.desk().settings(),
            &started.addresses,
            started.urls.clone(),
            started.first_build.clone(),
            started.access.clone(),
            LanStatus::of(&options, session.desk().settings()),
        );
        let stop_forwarder = CancellationToken::new();
        let forwarder = tauri::async_runtime::spawn(forward(
            started.events,
            Arc::clone(&self.feed),
            Arc::clone(&started.store),
            session.inventory().clone(),
            session.firmware_targets(),
            stop_forwarder.clone(),
        ));
        state.running = Some(Running {
            session,
            options,
            status: status.clone(),
            forwarder,
            stop_forwarder,
        });
        Ok(status)
    }

    /// The options the running servers were started with; `None` when stopped.
    pub async fn running_options(&self) -> Option<ServeOptions> {
        let state = self.state.lock().await;
        state
            .running
            .as_ref()
            .map(|running| running.options.clone())
    }

    /// Restarts the running servers with `change` applied to their options: DHCP or
    /// plug-and-play switched on or off for this serving session (nothing is saved). The
    /// change is checked before anything stops (an interface without an address leaves the
    /// servers as they were); if the servers cannot start with it, they start again with the
    /// options they had, and the error says both.
    pub async fn restart_with(
        &self,
        session: Session,
        change: impl FnOnce(&ServeOptions) -> ApiResult<ServeOptions>,
    ) -> ApiResult<ServerStatus> {
        let Some(current) = self.running_options().await else {
            return Err(ApiError::new(
                ErrorKind::Serve,
                "start the servers first: DHCP and plug-and-play run with them",
            ));
        };
        let next = change(&current)?;
        if next == current {
            return Ok(self.status(&session).await);
        }
        // A stop that reports an error (the fetch log could not be written) still stopped.
        if let Err(e) = self.stop().await {
            tracing::warn!(
                "stopping the servers to switch DHCP or plug-and-play: {}",
                e.message
            );
        }
        match self.start(session.clone(), next).await {
            Ok(status) => Ok(status),
            Err(e) => {
                let again = match self.start(session, current).await {
                    Ok(_) => "the servers run again as before".to_string(),
                    Err(again) => format!(
                        "the servers could not start again either: {}",
                        again.message
                    ),
                };
                Err(ApiError::new(e.kind, format!("{}; {again}", e.message)))
            }
        }
    }

    /// Stops the servers (if running) once every fetch is in the fetch log; the desk builds
    /// on its own again.
    pub async fn stop(&self) -> ApiResult<()> {
        let mut state = self.state.lock().await;
        let Some(running) = state.running.take() else {
            return Ok(());
        };
        let result = running.session.stop_serving().await;
        // The forwarder sends what the servers reported while stopping, then ends.
        running.stop_forwarder.cancel();
        let _ = running.forwarder.await;
        result.map_err(|e| {
            let message = format!("the servers stopped with an error: {}", e.message);
            state.errors = vec![message.clone()];
            ApiError::new(ErrorKind::Serve, message)
        })
    }

    /// Running or not, with the URLs and phone settings, or why the last start failed.
    pub async fn status(&self, session: &Session) -> ServerStatus {
        let state = self.state.lock().await;
        match &state.running {
            Some(running) => running.status.clone(),
            None => ServerStatus::stopped(session.desk().settings(), state.errors.clone()),
        }
    }

    /// Every device of the open desk with its status: against the running servers' build
    /// when they run, else against the last build on disk.
    pub async fn board(&self, session: Session) -> ApiResult<Vec<Tile>> {
        crate::session::blocking(session, |session| {
            let manifest = session.manifest();
            let devices = session.inventory().list_devices()?;
            // One query for every device's newest requests: a query per device made the
            // board of a 1,000-device desk the slowest part of the window's first paint.
            let mut logs = session
                .inventory()
                .recent_fetches_by_device(STATUS_LOG_DEPTH)?;
            let mut events = session
                .inventory()
                .recent_device_events_by_device(provdesk_desk::timeline::EVENT_DEPTH)?;
            let mut lan = provdesk_desk::lan::lan_evidence(session.inventory())?;
            let targets = session.firmware_targets();
            let mut tiles = Vec::with_capacity(devices.len());
            for device in &devices {
                let log = logs.remove(&device.mac).unwrap_or_default();
                let last = log.first().cloned();
                // The desk's one status computation, as the device list and page use it;
                // transfers under way reach the tiles through the event batches.
                let events = events.remove(&device.mac).unwrap_or_default();
                let last_syslog = board::last_syslog_of(&events);
                let rung = session.device_rung(
                    device,
                    log,
                    events,
                    &manifest,
                    &targets,
                    &lan.remove(&device.mac).unwrap_or_default(),
                );
                tiles.push(Tile::new(device, rung.status, last.as_ref()).with_syslog(last_syslog));
            }
            Ok(tiles)
        })
        .await
    }
}

/// The device's newest timeline events, oldest first, as the desk's status reads them.
fn recent_events(
    inventory: &Inventory,
    mac: Mac,
) -> Result<Vec<provdesk_core::inventory::DeviceEvent>, provdesk_core::inventory::InventoryError> {
    inventory.device_events(&DeviceEventQuery {
        mac: Some(mac),
        limit: Some(provdesk_desk::timeline::EVENT_DEPTH),
        ..DeviceEventQuery::default()
    })
}

fn recent_log(
    inventory: &Inventory,
    mac: Mac,
) -> Result<Vec<provdesk_core::inventory::FetchLogEntry>, provdesk_core::inventory::InventoryError>
{
    inventory.fetch_log(&FetchLogQuery {
        mac: Some(mac),
        limit: Some(STATUS_LOG_DEPTH),
        ..FetchLogQuery::default()
    })
}

/// The subscriber task: events in, one batch out per window, until stopped; then what is
/// still queued goes out in a last batch.
async fn forward(
    mut events: broadcast::Receiver<Arc<Event>>,
    feed: Arc<Feed>,
    store: Arc<ArtifactStore>,
    inventory: Inventory,
    targets: BTreeMap<String, String>,
    stop: CancellationToken,
) {
    let mut batcher = Batcher::default();
    let mut board = Board::with_targets(targets);
    let mut lookup = |mac: Mac| -> Option<Seed> {
        // A device the inventory cannot answer for is simply not on the board yet.
        let device = inventory.get_device(mac).ok()??;
        let log = recent_log(&inventory, mac).unwrap_or_default();
        let lan = provdesk_desk::lan::lan_evidence_of(&inventory, mac).unwrap_or_default();
        let events = recent_events(&inventory, mac).unwrap_or_default();
        Some((device, log, lan, events))
    };
    loop {
        let deadline = batcher.deadline();
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            received = events.recv() => match received {
                Ok(event) => {
                    board.observe(&event, &mut lookup);
                    batcher.push(&event, Instant::now());
                }
                Err(RecvError::Lagged(count)) => batcher.missed(count, Instant::now()),
                Err(RecvError::Closed) => break,
            },
            () = sleep_until(deadline) => {}
        }
        if batcher.ready(Instant::now()) {
            flush(&mut batcher, &mut board, &store, &feed, &mut lookup);
        }
    }
    loop {
        match events.try_recv() {
            Ok(event) => {
                board.observe(&event, &mut lookup);
                batcher.push(&event, Instant::now());
            }
            Err(TryRecvError::Lagged(count)) => batcher.missed(count, Instant::now()),
            Err(_) => break,
        }
    }
    flush(&mut batcher, &mut board, &store, &feed, &mut lookup);
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

fn flush(
    batcher: &mut Batcher,
    board: &mut Board,
    store: &ArtifactStore,
    feed: &Feed,
    lookup: &mut impl FnMut(Mac) -> Option<Seed>,
) {
    let Some(mut batch) = batcher.take() else {
        return;
    };
    let snapshot = store.snapshot();
    let manifest: &Manifest = &snapshot.manifest;
    let devices = devices_in(manifest);
    for build in &mut batch.builds {
        build.devices = devices;
    }
    batch.tiles = board.tiles(manifest, lookup);
    feed.send(batch);
}

#[cfg(test)]
mod tests {
    use super::*;
    use provdesk_core::inventory::Device;
    use provdesk_core::status::ProvisioningStatus;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn http_only() -> ServeOptions {
        ServeOptions {
            http: Some("127.0.0.1:0".into()),
            https: Some("off".into()),
            tftp: Some("off".into()),
            ..ServeOptions::default()
        }
    }

    async fn get(address: &str, name: &str, user_agent: &str) -> Vec<u8> {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!(
            "GET /{name} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: {user_agent}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        response
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_app_serves_builds_through_the_publisher_and_logs_every_fetch_by_stop() {
        let dir = tempfile::tempdir().unwrap();
        let session = Session::open(&dir.path().join("desk")).unwrap();
        let mac: Mac = "000b82001003".parse().unwrap();
        let mut device = Device::new(mac, "gxp2170");
        device.profile = Some("office".into());
        device.vars.insert("ext".into(), "203".into());
        device.vars.insert("sip_secret".into(), "s3cret".into());
        session.inventory().import_devices(&[device]).unwrap();
        let servers = Servers::default();

        let status = servers.start(session.clone(), http_only()).await.unwrap();
        assert!(status.running);
        assert_eq!(status.urls.len(), 1, "{:?}", status.urls);
        let address = status.urls[0].address.clone();
        assert!(!address.ends_with(":0"), "the real port: {address}");
        assert_eq!(status.urls[0].url, format!("http://{address}/"));
        assert_eq!(status.p237.as_deref(), Some(address.as_str()));
        assert_eq!(status.option66, Some(format!("http://{address}")));
        assert_eq!(status.p212.as_deref(), Some("1"));
        let first = status.first_build.as_ref().unwrap();
        assert!(first.published, "{:?}", first.diagnostics);

        // While serving, the session's builds go through the servers' publisher.
        let built = session.rebuild_devices(&[mac]).unwrap();
        assert!(session.is_serving());
        assert_eq!(built.devices, 1, "{built:?}");

        let response = get(
            &address,
            "cfg000b82001003.xml",
            "Grandstream Model HW GXP2170 V1.0A SW 1.0.11.23 DevId 000b82001003",
        )
        .await;
        assert!(
            response.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&response)
        );
        // The served config is encrypted with the device's generated password (the desk's
        // default) and names this server (P237), from the publisher's build.
        let body_at = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let password = session
            .inventory()
            .get_device(mac)
            .unwrap()
            .unwrap()
            .xml_password
            .expect("a generated XML password");
        let xml = provdesk_core::format::crypt::decrypt(&response[body_at..], &password).unwrap();
        let xml = String::from_utf8(xml).unwrap();
        assert!(xml.contains(&format!("<P237>{address}</P237>")), "{xml}");

        servers.stop().await.unwrap();
        let log = session
            .inventory()
            .fetch_log(&FetchLogQuery::default())
            .unwrap();
        assert_eq!(log.len(), 1, "the fetch is logged by the time stop returns");
        assert_eq!(log[0].status, "200");
        let stopped = servers.status(&session).await;
        assert!(!stopped.running);
        assert!(stopped.urls.is_empty());

        // Stopped: the session builds on its own again, and the board reads the log.
        assert!(!session.is_serving());
        assert!(session.build().unwrap().published);
        let board = servers.board(session.clone()).await.unwrap();
        let tile = board.iter().find(|t| t.mac == mac).unwrap();
        assert_eq!(
            tile.last_request.as_ref().unwrap().name,
            "cfg000b82001003.xml"
        );
        // The build without the servers' address changed the config: it is stale now.
        assert_eq!(tile.status, ProvisioningStatus::Stale);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_port_in_use_is_reported_and_kept_for_the_status() {
        let dir = tempfile::tempdir().unwrap();
        let session = Session::open(&dir.path().join("desk")).unwrap();
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap().to_string();
        let servers = Servers::default();
        let options = ServeOptions {
            http: Some(address.clone()),
            ..http_only()
        };
        let err = servers.start(session.clone(), options).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Serve);
        assert!(err.message.contains("already in use"), "{}", err.message);
        let status = servers.status(&session).await;
        assert!(!status.running);
        assert_eq!(status.errors, vec![err.message.clone()]);
        // Builds stay with the session.
        assert!(!session.is_serving());
        assert!(session.build().unwrap().published);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn switching_desks_stops_the_servers_of_the_old_one() {
        use crate::session::AppState;
        let dir = tempfile::tempdir().unwrap();
        let state = AppState::new(Session::open(&dir.path().join("a")).unwrap());
        let old = state.session();
        let status = state
            .servers()
            .start(old.clone(), http_only())
            .await
            .unwrap();
        let address = status.urls[0].address.clone();
        assert!(old.is_serving());

        state
            .replace(Session::open(&dir.path().join("b")).unwrap())
            .await;
        assert!(!state.servers().status(&state.session()).await.running);
        assert!(
            tokio::net::TcpStream::connect(&address).await.is_err(),
            "nothing listens on {address} any more"
        );
        assert!(
            !old.is_serving() && old.build().unwrap().published,
            "the old session builds alone"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn switching_dhcp_restarts_the_servers_and_a_bad_interface_leaves_them_alone() {
        use provdesk_desk::lan;
        let dir = tempfile::tempdir().unwrap();
        let session = Session::open(&dir.path().join("desk")).unwrap();
        let servers = Servers::default();
        let err = servers
            .restart_with(session.clone(), |o| lan::with_dhcp(o, Some("lo")))
            .await
            .unwrap_err();
        assert!(
            err.message.starts_with("start the servers first"),
            "{}",
            err.message
        );

        let status = servers.start(session.clone(), http_only()).await.unwrap();
        let address = status.urls[0].address.clone();
        assert_eq!(status.lan, LanStatus::default());

        // Refused before anything stops: the same servers keep serving.
        let err = servers
            .restart_with(session.clone(), |o| {
                lan::with_pnp(o, Some("provdesk-nosuch0"))
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(err.message.contains("provdesk-nosuch0"), "{}", err.message);
        let same = servers.status(&session).await;
        assert!(same.running);
        assert_eq!(same.urls[0].address, address, "not restarted");

        // On loopback (the only interface a test may answer DHCP on): the servers restart
        // with it, and without it again.
        let on = servers
            .restart_with(session.clone(), |o| lan::with_dhcp(o, Some("lo")))
            .await
            .unwrap();
        assert!(on.running);
        assert_eq!(on.lan.dhcp.as_deref(), Some("lo"));
        assert_eq!(
            servers.running_options().await.unwrap().http.as_deref(),
            Some("127.0.0.1:0"),
            "the other options are kept"
        );
        let response = get(&on.urls[0].address, "cfg.xml", "curl").await;
        assert!(response.starts_with(b"HTTP/1.1 "), "still serving");
        let off = servers
            .restart_with(session.clone(), |o| lan::with_dhcp(o, None))
            .await
            .unwrap();
        assert_eq!(off.lan.dhcp, None);
        servers.stop().await.unwrap();
    }
}
