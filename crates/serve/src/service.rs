//! The running service: binds the sockets, does the first build, and starts the servers, the
//! recorder and the watcher around one event bus; shuts them down in the order that loses
//! nothing.
//!
//! Invariants: every socket is bound before anything starts, so a port problem is reported
//! before a single file is served; `Listening` is emitted only once its server runs; at
//! shutdown the servers stop first, then the watcher and pending builds, and the recorder
//! last, after it has written every fetch the servers reported.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use provdesk_core::Mac;
use provdesk_core::build::{BuildOptions, Builder, Manifest, Scheme, ServerAddress, SyslogTarget};
use provdesk_core::build_record;
use provdesk_core::desk::{Desk, DeskSettings};
use provdesk_core::inventory::{FetchLogQuery, Inventory, InventoryError};
use provdesk_core::status::{self, LiveTransfers, ProvisioningStatus, STATUS_LOG_DEPTH};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{AccessPolicy, AccessSummary};
use crate::events::{BuildSummary, Event, EventBus, Protocol};
use crate::publisher::Publisher;
use crate::recorder::{self, RecorderConfig, RecorderError};
use crate::store::{ArtifactStore, Snapshot};
use crate::tftp::{self, TftpConfig};
use crate::watcher::{WatchError, Watcher, WatcherConfig};

/// Events a slow subscriber may fall behind by before it loses the oldest (progress first
/// matters little: the recorder gets every outcome on its own channel).
const BUS_CAPACITY: usize = 4096;

/// Listen addresses that override the desk's settings: `None` keeps the setting, `"off"`
/// turns the server off, anything else is `IP:PORT` (port 0 picks a free port).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServeOptions {
    pub http: Option<String>,
    pub https: Option<String>,
    pub tftp: Option<String>,
    /// SIP plug-and-play on this interface (a name or one of its IPv4 addresses; empty for
    /// `[pnp] interface`, else the first one with an IPv4 address; `"off"` turns it off);
    /// `None` follows `[pnp] interface` (off when absent).
    pub pnp: Option<String>,
    /// Answer DHCP on this interface (overrides `[dhcp] interface`); `"off"` turns it off.
    pub dhcp: Option<String>,
    /// Receive syslog on this `IP:PORT` over UDP (overrides `[syslog] listen`); `"off"`
    /// turns it off.
    pub syslog: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "{protocol} address {address:?}: {message} (write it as IP:PORT, e.g. 0.0.0.0:8080, or `off`)"
    )]
    BadAddress {
        protocol: &'static str,
        address: String,
        message: String,
    },
    #[error("cannot listen for {protocol} on {address}: permission denied; {fix}")]
    PermissionDenied {
        protocol: &'static str,
        address: SocketAddr,
        fix: String,
    },
    #[error(
        "cannot listen for {protocol} on {address}: the address is already in use (is another server or provdesk serve running?); pick another port, e.g. --{protocol} {example}"
    )]
    AddressInUse {
        protocol: &'static str,
        address: SocketAddr,
        example: String,
    },
    #[error("cannot listen for {protocol} on {address}: {source}")]
    Bind {
        protocol: &'static str,
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Desk(#[from] provdesk_core::Error),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error("the TFTP server stopped: {0}")]
    Tftp(#[from] provdesk_tftp::Error),
    #[error(transparent)]
    Recorder(#[from] RecorderError),
    #[error("HTTP: {0}")]
    Http(#[from] crate::http::HttpError),
    #[error("HTTPS certificate: {0}")]
    Tls(#[from] crate::http::tls::TlsError),
    #[error("{path}: [access] allow: {message}")]
    Access { path: String, message: String },
    #[error("plug-and-play: {0}")]
    Pnp(String),
    #[error("cannot send a NOTIFY to {target}: {source}")]
    Notify {
        target: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Syslog(#[from] crate::syslog::SyslogError),
    #[error("a server task stopped unexpectedly: {0}")]
    Task(String),
    #[error("cannot listen for {name}: {source}")]
    Signal {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// A service that is set up but not started: subscribe to [`Service::events`] first to see
/// everything from the first build on.
pub struct Service {
    desk: Desk,
    /// The desk's one builder: the service's publisher owns it while it runs, so nothing
    /// else can build this desk meanwhile.
    builder: Builder,
    options: ServeOptions,
    bus: EventBus,
    recorder: UnboundedReceiver<Arc<Event>>,
}

/// The sockets that were bound, before the servers take them.
struct Bound {
    http: Option<TcpListener>,
    https: Option<TcpListener>,
    tftp: Option<UdpSocket>,
    addresses: Vec<(Protocol, SocketAddr)>,
}

impl Service {
    /// A service for the builder's desk. It takes the builder by value: whoever starts
    /// servers hands over the only handle that writes `build/`.
    pub fn new(builder: Builder, options: ServeOptions) -> Service {
        let (bus, recorder) = EventBus::new(BUS_CAPACITY).with_recorder();
        Service {
            desk: builder.desk().clone(),
            builder,
            options,
            bus,
            recorder,
        }
    }

    pub fn events(&self) -> EventBus {
        self.bus.clone()
    }

    /// `Service::new(builder, options).launch()`, for callers that need no event before
    /// start.
    pub async fn start(
        builder: Builder,
        options: ServeOptions,
    ) -> Result<RunningService, ServeError> {
        Service::new(builder, options).launch().await
    }

    /// Binds every socket, builds, then starts the recorder, the watcher and the servers.
    pub async fn launch(self) -> Result<RunningService, ServeError> {
        let Service {
            desk,
            builder,
            options,
            bus,
            recorder: recorder_rx,
        } = self;
        let settings = desk.settings().clone();
        let policy =
            AccessPolicy::from_settings(&settings).map_err(|message| ServeError::Access {
                path: desk.settings_path().display().to_string(),
                message,
            })?;
        // The desk's own DHCP leases say who owns an address too (with device files bound to
        // their owner; otherwise nobody asks).
        let leases = Arc::new(crate::owners::LeaseDirectory::default());
        let policy = match settings.dhcp_interface(options.dhcp.as_deref()) {
            Some(_) => policy.with_owner_directory(Arc::clone(&leases) as _),
            None => policy,
        };
        let bound = bind_all(&settings, &options).await?;
        let syslog = bind_syslog(&settings, &options).await?;
        let pnp = match settings.pnp_interface(options.pnp.as_deref()) {
            Some(spec) => Some(bind_pnp(&spec, &settings, &bound.addresses)?),
            None => None,
        };
        let inventory = desk.inventory()?;

        let last_build = {
            let (desk, bus) = (desk.clone(), bus.clone());
            tokio::task::spawn_blocking(move || last_build_on_disk(&desk, &bus))
                .await
                .map_err(|e| ServeError::Task(e.to_string()))?
        };
        let store = Arc::new(ArtifactStore::new(last_build));
        let build_options = BuildOptions {
            server: server_address(&settings, &bound.addresses),
            encryption: settings.encryption.mode,
            syslog: syslog
                .as_ref()
                .map(|(_, address)| syslog_target(&settings, *address)),
        };
        let publisher = Publisher::new(
            builder,
            inventory.clone(),
            Arc::clone(&store),
            bus.clone(),
            build_options,
        );
        let first_build = publisher.rebuild_all().await;

        let servers = CancellationToken::new();
        let background = CancellationToken::new();
        let recorder_stop = CancellationToken::new();
        let rebuilds = TaskTracker::new();

        let recorder = {
            let publisher = publisher.clone();
            let rebuilds = rebuilds.clone();
            tokio::spawn(recorder::run(
                recorder_rx,
                inventory.clone(),
                RecorderConfig {
                    auto_enroll_profile: settings.discovery.auto_enroll_profile.clone(),
                    desk_root: Some(desk.root().to_path_buf()),
                    ..RecorderConfig::default()
                },
                bus.clone(),
                move |macs: Vec<Mac>| {
                    let publisher = publisher.clone();
                    rebuilds.spawn(async move {
                        publisher.rebuild_devices(&macs).await;
                    });
                },
                recorder_stop.clone(),
            ))
        };

        let watcher = Watcher::new(
            &desk,
            inventory.clone(),
            publisher.clone(),
            bus.clone(),
            WatcherConfig::default(),
        )?;
        let watcher = tokio::spawn(watcher.run(background.clone()));

        let live = Arc::new(Mutex::new(LiveTransfers::default()));
        let overlay = tokio::spawn(follow_transfers(
            bus.clone(),
            Arc::clone(&live),
            background.clone(),
        ));

        let mut server_tasks: Vec<JoinHandle<Result<(), ServeError>>> = Vec::new();
        if let Some(socket) = bound.tftp {
            let (store, bus, stop) = (Arc::clone(&store), bus.clone(), servers.clone());
            let limits = &settings.limits;
            let config = TftpConfig {
                policy: policy.clone(),
                server: provdesk_tftp::Config {
                    max_transfers: limits.tftp_transfers as usize,
                    max_transfers_per_address: limits.tftp_transfers_per_address as usize,
                    ..provdesk_tftp::Config::default()
                },
                ..TftpConfig::default()
            };
            server_tasks.push(tokio::spawn(async move {
                let result = tftp::run(socket, config, store, bus.clone(), stop).await;
                if let Err(e) = &result {
                    bus.emit(Event::Warning {
                        message: format!("the TFTP server stopped: {e}"),
                    });
                }
                result.map_err(ServeError::from)
            }));
        }
        server_tasks.extend(start_http_servers(
            bound.http,
            bound.https,
            &desk,
            &policy,
            Arc::clone(&store),
            bus.clone(),
            servers.clone(),
        )?);

        if let Some((socket, responder)) = pnp {
            let task = crate::pnp::run(socket, responder, bus.clone(), servers.clone());
            server_tasks.push(tokio::spawn(async move {
                task.await.map_err(|e| ServeError::Pnp(e.to_string()))
            }));
        }

        let syslog_address = match syslog {
            Some((socket, address)) => {
                let source = crate::syslog::DeviceSource {
                    inventory: inventory.clone(),
                    leases: Arc::clone(&leases),
                };
                let task = crate::syslog::run(
                    socket,
                    crate::syslog::SyslogConfig::default(),
                    source,
                    bus.clone(),
                    servers.clone(),
                );
                let warn = bus.clone();
                server_tasks.push(tokio::spawn(async move {
                    let result = task.await;
                    if let Err(e) = &result {
                        warn.emit(Event::Warning {
                            message: format!("the syslog receiver stopped: {e}"),
                        });
                    }
                    result.map_err(ServeError::from)
                }));
                bus.emit(Event::Syslog(crate::events::SyslogEvent::Listening {
                    url: syslog_url(address),
                }));
                Some(address)
            }
            None => None,
        };

        // DHCP runs beside the servers: its pre-flight takes seconds and any problem it finds
        // is a warning, never a reason to stop serving files.
        if let Some(interface) = settings.dhcp_interface(options.dhcp.as_deref()) {
            let find = |protocol| {
                bound
                    .addresses
                    .iter()
                    .find(|(p, _)| *p == protocol)
                    .map(|(_, a)| *a)
            };
            let start = crate::dhcp::DhcpStart {
                interface,
                settings: settings.dhcp(),
                http: find(Protocol::Http),
                tftp: find(Protocol::Tftp),
                base_path: settings.server.base_path.clone(),
                owners: Arc::clone(&leases),
            };
            let (inventory, bus, stop) = (inventory.clone(), bus.clone(), servers.clone());
            server_tasks.push(tokio::spawn(async move {
                crate::dhcp::run(start, inventory, bus, stop).await;
                Ok(())
            }));
        }

        // The HTTP servers announce themselves once they run; TFTP is announced here.
        for (protocol, address) in bound.addresses.iter().filter(|(p, _)| *p == Protocol::Tftp) {
            bus.emit(Event::Listening {
                protocol: *protocol,
                url: url(*protocol, *address, &settings),
            });
        }

        let running: Vec<Protocol> = bound.addresses.iter().map(|(p, _)| *p).collect();
        let access = policy.summary(&running);
        Ok(RunningService {
            access,
            addresses: bound.addresses,
            syslog: syslog_address,
            settings,
            bus,
            store,
            inventory,
            publisher,
            first_build,
            live,
            servers,
            background,
            recorder_stop,
            rebuilds,
            server_tasks,
            watcher,
            overlay,
            recorder,
        })
    }
}

/// The place where the HTTP and HTTPS servers start, on the listeners bound above. Until the
/// `http` module lands they serve nothing: the listeners are held until shutdown so that the
/// ports stay reserved and the reported addresses stay true.
fn start_http_servers(
    http: Option<TcpListener>,
    https: Option<TcpListener>,
    desk: &Desk,
    policy: &AccessPolicy,
    store: Arc<ArtifactStore>,
    events: EventBus,
    shutdown: CancellationToken,
) -> Result<Vec<JoinHandle<Result<(), ServeError>>>, ServeError> {
    use crate::http::{self, HttpConfig};
    let settings = desk.settings();
    let config = |protocol| HttpConfig {
        base_path: settings.server.base_path.clone(),
        auth: settings.auth.clone(),
        policy: policy.clone(),
        max_connections: settings.limits.http_connections as usize,
        max_connections_per_address: settings.limits.http_connections_per_address as usize,
        ..HttpConfig::new(protocol)
    };
    let mut tasks = Vec::new();
    if let Some(listener) = http {
        let task = http::run(
            listener,
            config(Protocol::Http),
            Arc::clone(&store),
            events.clone(),
            shutdown.clone(),
        );
        tasks.push(tokio::spawn(
            async move { task.await.map_err(ServeError::from) },
        ));
    }
    if let Some(listener) = https {
        // The certificate names every address phones may use for this machine.
        let mut hosts: Vec<String> = settings.server.public_host.iter().cloned().collect();
        if let Ok(address) = listener.local_addr() {
            hosts.push(reachable_ip(address.ip()).to_string());
        }
        let material = http::tls::load_or_generate(desk.root(), &settings.tls, &hosts)?;
        let https_config = config(Protocol::Https);
        let task = http::run_tls(
            listener,
            https_config,
            material.config,
            store,
            events,
            shutdown,
        );
        tasks.push(tokio::spawn(
            async move { task.await.map_err(ServeError::from) },
        ));
    }
    Ok(tasks)
}

/// A started service. Dropping it without [`RunningService::shutdown`] aborts nothing
/// cleanly; call `shutdown` so the fetch log is complete.
pub struct RunningService {
    /// What each running protocol enforces and the settings' trade-offs, for the start-up
    /// notice of `serve` and the app.
    access: AccessSummary,
    addresses: Vec<(Protocol, SocketAddr)>,
    /// The syslog receiver's bound address, when it runs.
    syslog: Option<SocketAddr>,
    settings: DeskSettings,
    bus: EventBus,
    store: Arc<ArtifactStore>,
    inventory: Inventory,
    publisher: Publisher,
    first_build: BuildSummary,
    live: Arc<Mutex<LiveTransfers>>,
    servers: CancellationToken,
    background: CancellationToken,
    recorder_stop: CancellationToken,
    rebuilds: TaskTracker,
    server_tasks: Vec<JoinHandle<Result<(), ServeError>>>,
    watcher: JoinHandle<()>,
    overlay: JoinHandle<()>,
    recorder: JoinHandle<Result<(), RecorderError>>,
}

impl RunningService {
    /// Each server's protocol and the address it is bound to (with the real port).
    pub fn addresses(&self) -> Vec<(Protocol, SocketAddr)> {
        self.addresses.clone()
    }

    /// Each server's URL as a phone or a person would use it.
    pub fn urls(&self) -> Vec<(Protocol, String)> {
        self.addresses
            .iter()
            .map(|(p, a)| (*p, url(*p, *a, &self.settings)))
            .collect()
    }

    pub fn events(&self) -> EventBus {
        self.bus.clone()
    }

    /// The syslog receiver's URL (`udp://HOST:PORT`), when it runs.
    pub fn syslog_url(&self) -> Option<String> {
        self.syslog.map(syslog_url)
    }

    /// What each running protocol enforces, and every trade-off the settings make; computed
    /// once at start, rendered by the CLI and the app.
    pub fn access(&self) -> &AccessSummary {
        &self.access
    }

    pub fn store(&self) -> Arc<ArtifactStore> {
        Arc::clone(&self.store)
    }

    pub fn inventory(&self) -> Inventory {
        self.inventory.clone()
    }

    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// The build done at start.
    pub fn first_build(&self) -> &BuildSummary {
        &self.first_build
    }

    /// A device's provisioning status: its fetch log against the build being served, with
    /// its transfer under way if there is one. `None` for a MAC the inventory does not hold.
    pub fn status(&self, mac: Mac) -> Result<Option<ProvisioningStatus>, InventoryError> {
        let Some(device) = self.inventory.get_device(mac)? else {
            return Ok(None);
        };
        let log = self.inventory.fetch_log(&FetchLogQuery {
            mac: Some(mac),
            limit: Some(STATUS_LOG_DEPTH),
            ..FetchLogQuery::default()
        })?;
        let derived = status::derive(&device, &log, &self.store.snapshot().manifest);
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(Some(live.overlay(mac, derived)))
    }

    /// Stops the servers (transfers in flight end with an error to the client and are
    /// logged as failed), then the watcher and pending builds, and returns once the recorder
    /// has written every fetch.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let mut first_error: Option<ServeError> = None;
        let mut keep = |result: Result<(), ServeError>| {
            if let Err(e) = result
                && first_error.is_none()
            {
                first_error = Some(e);
            }
        };
        self.servers.cancel();
        for task in self.server_tasks {
            keep(joined(task.await));
        }
        self.background.cancel();
        self.publisher.stop_waiting();
        keep(joined(self.watcher.await.map(Ok::<(), ServeError>)));
        keep(joined(self.overlay.await.map(Ok::<(), ServeError>)));
        self.rebuilds.close();
        self.rebuilds.wait().await;
        self.recorder_stop.cancel();
        keep(joined(self.recorder.await));
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn joined<E: Into<ServeError>>(
    result: Result<Result<(), E>, tokio::task::JoinError>,
) -> Result<(), ServeError> {
    match result {
        Ok(inner) => inner.map_err(Into::into),
        Err(e) => Err(ServeError::Task(e.to_string())),
    }
}

/// Keeps the live transfers of each device for [`RunningService::status`].
async fn follow_transfers(bus: EventBus, live: Arc<Mutex<LiveTransfers>>, stop: CancellationToken) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    let mut events = bus.subscribe();
    drop(bus);
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(event) => follow(&live, &event),
            // Missed events only delay the overlay until the next progress or outcome.
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        }
        // Then whatever else is queued, and a pause: in a boot storm a wake-up per request
        // cost the servers' threads. The bus holds far more than a pause's worth of events.
        loop {
            match events.try_recv() {
                Ok(event) => follow(&live, &event),
                Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return,
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(FOLLOW_PAUSE) => {}
        }
    }
}

/// Longest the live-transfer overlay lags behind the events.
const FOLLOW_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

fn follow(live: &Mutex<LiveTransfers>, event: &Event) {
    let mut live = live.lock().unwrap_or_else(PoisonError::into_inner);
    match event {
        Event::Progress(p) => {
            if let Some(mac) = p.mac {
                live.progress(mac, p.bytes, p.total);
            }
        }
        Event::Fetch(f) => {
            if let Some(mac) = f.mac {
                live.finished(mac);
            }
        }
        _ => {}
    }
}

/// The last build published on disk, served until the first build of this run replaces it
/// (or, when that build has errors, instead of it): only files whose bytes have the
/// manifest's hash, with the credentials that build stored. Temp files of a stopped build
/// are removed, and so are files that do not match (the next build writes them again, as it
/// would not rewrite a file whose input did not change); both are reported.
fn last_build_on_disk(desk: &Desk, bus: &EventBus) -> Snapshot {
    let warn = |message: String| bus.emit(Event::Warning { message });
    let build_dir = desk.build_dir();
    // Every temp file, however new: no build of this process runs yet, and the app starts
    // its servers only after its opening build. A `provdesk build` run at this very moment
    // would fail with an I/O error, never publish a part.
    match build_record::remove_temp_files(&build_dir, std::time::Duration::ZERO) {
        Ok(removed) if !removed.is_empty() => warn(format!(
            "removed {} temp file(s) a stopped build left in build/.tmp",
            removed.len()
        )),
        Ok(_) => {}
        Err(e) => warn(format!("cleaning build/.tmp: {e}")),
    }
    let manifest = match Manifest::load(&build_dir) {
        Ok(manifest) => manifest,
        Err(e) => {
            warn(format!(
                "the previous build cannot be served ({e}); serving starts with this run's build"
            ));
            return Snapshot::default();
        }
    };
    let credentials = match build_record::load_credentials(&build_dir) {
        Ok(Some(stored)) => {
            if stored.build != manifest.build {
                warn(format!(
                    "the stored credentials are of build {}, the manifest of build {}: a build was stopped in between; phones whose P1360/P1361 changed get 401 until this run's build is published",
                    stored.build, manifest.build
                ));
            }
            stored.table
        }
        Ok(None) => {
            if !manifest.entries.is_empty()
                && desk.settings().auth.mode != provdesk_core::desk::AuthMode::None
            {
                warn(format!(
                    "no credentials are stored with the previous build (build/{}); with [auth] on, phones get 401 until this run's build is published",
                    build_record::CREDENTIALS_FILE
                ));
            }
            Default::default()
        }
        Err(e) => {
            warn(format!(
                "{e}; with [auth] on, phones get 401 until this run's build is published"
            ));
            Default::default()
        }
    };
    let snapshot = Snapshot::load_verified(desk.root(), manifest, credentials, None);
    let left_out = snapshot.left_out();
    if !left_out.is_empty() {
        for (file, _) in &left_out {
            // Generated files only: firmware belongs to the technician.
            let generated = file.starts_with(&format!("{}/", provdesk_core::desk::BUILD_DIR));
            if generated {
                let _ = std::fs::remove_file(desk.root().join(file));
            }
        }
        const NAMED: usize = 20;
        let mut names: Vec<&str> = left_out.iter().take(NAMED).map(|(f, _)| *f).collect();
        let more = left_out.len().saturating_sub(NAMED);
        if more > 0 {
            names.push("…");
        }
        warn(format!(
            "{} file(s) of the previous build are not served: they do not match its manifest (a build stopped before writing it, or an edit by hand) or cannot be read; the next build writes them again: {}{}. First reason: {}",
            left_out.len(),
            names.join(", "),
            if more > 0 {
                format!(" ({more} more)")
            } else {
                String::new()
            },
            left_out[0].1,
        ));
    }
    snapshot
}

/// Which address each protocol listens on: the flag, else the desk's setting; `off` or an
/// absent setting means not at all.
pub fn listen_addresses(
    settings: &DeskSettings,
    options: &ServeOptions,
) -> Vec<(Protocol, Option<String>)> {
    let pick = |flag: &Option<String>, setting: &Option<String>| {
        flag.clone()
            .or_else(|| setting.clone())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.eq_ignore_ascii_case("off") && !s.is_empty())
    };
    vec![
        (Protocol::Http, pick(&options.http, &settings.server.http)),
        (
            Protocol::Https,
            pick(&options.https, &settings.server.https),
        ),
        (Protocol::Tftp, pick(&options.tftp, &settings.server.tftp)),
    ]
}

async fn bind_all(settings: &DeskSettings, options: &ServeOptions) -> Result<Bound, ServeError> {
    let mut bound = Bound {
        http: None,
        https: None,
        tftp: None,
        addresses: Vec::new(),
    };
    for (protocol, address) in listen_addresses(settings, options) {
        let Some(address) = address else {
            continue;
        };
        let name = protocol.as_str();
        let socket_addr = resolve(name, &address).await?;
        let bind_err = |source: std::io::Error| bind_error(protocol, socket_addr, source);
        let local = match protocol {
            Protocol::Http | Protocol::Https => {
                // `http::bind` asks for a backlog big enough for a boot storm.
                let listener = crate::http::bind(socket_addr).map_err(bind_err)?;
                let local = listener.local_addr().map_err(bind_err)?;
                if protocol == Protocol::Http {
                    bound.http = Some(listener);
                } else {
                    bound.https = Some(listener);
                }
                local
            }
            Protocol::Tftp => {
                let socket = UdpSocket::bind(socket_addr).await.map_err(bind_err)?;
                let local = socket.local_addr().map_err(bind_err)?;
                bound.tftp = Some(socket);
                local
            }
        };
        bound.addresses.push((protocol, local));
    }
    Ok(bound)
}

/// The syslog receiver's address: the command line's, else `[syslog] listen`; `off` or
/// neither is none.
fn syslog_listen(settings: &DeskSettings, options: &ServeOptions) -> Option<String> {
    let chosen = options
        .syslog
        .clone()
        .or_else(|| settings.syslog().listen)
        .map(|l| l.trim().to_string())?;
    (!chosen.is_empty() && !chosen.eq_ignore_ascii_case("off")).then_some(chosen)
}

/// Binds the syslog receiver's UDP socket, when it is on.
async fn bind_syslog(
    settings: &DeskSettings,
    options: &ServeOptions,
) -> Result<Option<(UdpSocket, SocketAddr)>, ServeError> {
    const NAME: &str = "syslog";
    let Some(address) = syslog_listen(settings, options) else {
        return Ok(None);
    };
    let socket_addr = resolve(NAME, &address).await?;
    let bind_err = |source: std::io::Error| {
        let mut example = socket_addr;
        example.set_port(5514);
        match source.kind() {
            std::io::ErrorKind::PermissionDenied if socket_addr.port() < 1024 => {
                ServeError::PermissionDenied {
                    protocol: NAME,
                    address: socket_addr,
                    fix: format!(
                        "ports below 1024 need privileges: use a port above 1024 (e.g. --syslog {example}; phones are told the port in P207) or allow it: sudo setcap cap_net_bind_service=+ep $(command -v provdesk)"
                    ),
                }
            }
            std::io::ErrorKind::AddrInUse => ServeError::AddressInUse {
                protocol: NAME,
                address: socket_addr,
                example: example.to_string(),
            },
            _ => ServeError::Bind {
                protocol: NAME,
                address: socket_addr,
                source,
            },
        }
    };
    let socket = UdpSocket::bind(socket_addr).await.map_err(bind_err)?;
    let local = socket.local_addr().map_err(bind_err)?;
    Ok(Some((socket, local)))
}

/// How phones reach the syslog receiver (P207/P208): the desk's public host, else the
/// address it is bound to (a reachable one for a wildcard), and the desk's level.
pub fn syslog_target(settings: &DeskSettings, bound: SocketAddr) -> SyslogTarget {
    SyslogTarget {
        host: settings
            .server
            .public_host
            .clone()
            .unwrap_or_else(|| host_text(reachable_ip(bound.ip()))),
        port: bound.port(),
        level: settings.syslog().level,
    }
}

/// `udp://HOST:PORT`.
fn syslog_url(address: SocketAddr) -> String {
    format!(
        "udp://{}:{}",
        host_text(reachable_ip(address.ip())),
        address.port()
    )
}

/// Joins the plug-and-play group on the interface `spec` names and prepares the responder
/// with the URL of the first running server, as seen from that interface.
fn bind_pnp(
    spec: &str,
    settings: &DeskSettings,
    addresses: &[(Protocol, SocketAddr)],
) -> Result<(UdpSocket, crate::pnp::Responder), ServeError> {
    use crate::pnp::{self, PNP_GROUP, PNP_PORT, PnpInterface};
    let interface = PnpInterface::find(spec).map_err(ServeError::Pnp)?;
    let url = pnp_url(settings, addresses, interface.address).ok_or_else(|| {
        ServeError::Pnp("it hands phones the provisioning URL: turn on HTTP, HTTPS or TFTP".into())
    })?;
    let socket = pnp::bind(&interface).map_err(|source| {
        let on = interface.name.as_deref().unwrap_or("the interface");
        ServeError::Pnp(match source.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "UDP port {PNP_PORT} is already in use (is a SIP server or another provdesk serve running?)"
            ),
            std::io::ErrorKind::PermissionDenied => {
                format!("cannot join {PNP_GROUP} on {on}: permission denied")
            }
            _ => format!("cannot join {PNP_GROUP}:{PNP_PORT} on {on} ({}): {source}", interface.address),
        })
    })?;
    let local = std::net::SocketAddrV4::new(interface.address, PNP_PORT);
    Ok((socket, pnp::Responder::new(local, url)))
}

/// The URL plug-and-play hands out: the first running of HTTP, HTTPS and TFTP, at the desk's
/// public host, else the address it is bound to, else (a wildcard) the interface's own
/// address; always a folder.
fn pnp_url(
    settings: &DeskSettings,
    addresses: &[(Protocol, SocketAddr)],
    interface: Ipv4Addr,
) -> Option<String> {
    let (protocol, address) = [Protocol::Http, Protocol::Https, Protocol::Tftp]
        .into_iter()
        .find_map(|p| addresses.iter().find(|(q, _)| *q == p).copied())?;
    let ip = match address.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(interface),
        ip => ip,
    };
    let host = settings
        .server
        .public_host
        .clone()
        .unwrap_or_else(|| host_text(ip));
    let url = url_at(protocol, &host, address.port(), settings);
    Some(crate::pnp::folder_url(&url))
}

async fn resolve(protocol: &'static str, address: &str) -> Result<SocketAddr, ServeError> {
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bad = |message: String| ServeError::BadAddress {
        protocol,
        address: address.to_string(),
        message,
    };
    let mut found = tokio::net::lookup_host(address)
        .await
        .map_err(|e| bad(e.to_string()))?;
    found
        .next()
        .ok_or_else(|| bad("the name resolves to no address".into()))
}

/// Turns a bind failure into the message that says what to do.
fn bind_error(protocol: Protocol, address: SocketAddr, source: std::io::Error) -> ServeError {
    let name = protocol.as_str();
    let (example_port, flag) = match protocol {
        Protocol::Http => (8080, "--http"),
        Protocol::Https => (8443, "--https"),
        Protocol::Tftp => (6969, "--tftp"),
    };
    let mut example = address;
    example.set_port(example_port);
    match source.kind() {
        std::io::ErrorKind::PermissionDenied if address.port() < 1024 => {
            let binary = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "$(command -v provdesk)".into());
            ServeError::PermissionDenied {
                protocol: name,
                address,
                fix: format!(
                    "ports below 1024 need privileges: use a port above 1024 (e.g. {flag} {example}) or allow it: sudo setcap cap_net_bind_service=+ep {binary}"
                ),
            }
        }
        std::io::ErrorKind::AddrInUse => ServeError::AddressInUse {
            protocol: name,
            address,
            example: example.to_string(),
        },
        _ => ServeError::Bind {
            protocol: name,
            address,
            source,
        },
    }
}

/// How phones reach this machine, for P237/P192/P212 where profiles leave them empty: the
/// first running of HTTP, HTTPS and TFTP, at the desk's public host or a reachable address.
pub fn server_address(
    settings: &DeskSettings,
    addresses: &[(Protocol, SocketAddr)],
) -> Option<ServerAddress> {
    let (protocol, address) = [Protocol::Http, Protocol::Https, Protocol::Tftp]
        .into_iter()
        .find_map(|p| addresses.iter().find(|(q, _)| *q == p).copied())?;
    let (scheme, default_port) = match protocol {
        Protocol::Http => (Scheme::Http, 80),
        Protocol::Https => (Scheme::Https, 443),
        Protocol::Tftp => (Scheme::Tftp, 69),
    };
    let host = settings
        .server
        .public_host
        .clone()
        .unwrap_or_else(|| host_text(reachable_ip(address.ip())));
    Some(ServerAddress {
        scheme,
        host,
        port: (address.port() != default_port).then_some(address.port()),
        base_path: match scheme {
            Scheme::Tftp => "/".into(),
            _ => settings.server.base_path.clone(),
        },
    })
}

/// The bound IP when it is a specific one; for a wildcard, this machine's first non-loopback
/// IPv4 address, else loopback.
pub fn reachable_ip(bound: IpAddr) -> IpAddr {
    if !bound.is_unspecified() {
        return bound;
    }
    if_addrs::get_if_addrs()
        .ok()
        .and_then(|interfaces| {
            interfaces
                .into_iter()
                .filter(|i| !i.is_loopback() && !i.is_link_local())
                .map(|i| i.ip())
                .find(IpAddr::is_ipv4)
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `http://HOST:PORT/base/`, `tftp://HOST:PORT`.
fn url(protocol: Protocol, address: SocketAddr, settings: &DeskSettings) -> String {
    let host = host_text(reachable_ip(address.ip()));
    url_at(protocol, &host, address.port(), settings)
}

fn url_at(protocol: Protocol, host: &str, port: u16, settings: &DeskSettings) -> String {
    match protocol {
        Protocol::Tftp => format!("tftp://{host}:{port}"),
        Protocol::Http | Protocol::Https => {
            let path = settings.server.base_path.trim_matches('/');
            let path = if path.is_empty() {
                "/".to_string()
            } else {
                format!("/{path}/")
            };
            format!("{}://{host}:{port}{path}", protocol.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeskSettings {
        DeskSettings::default()
    }

    fn options(http: &str, https: &str, tftp: &str) -> ServeOptions {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        ServeOptions {
            http: opt(http),
            https: opt(https),
            tftp: opt(tftp),
            pnp: None,
            dhcp: None,
            syslog: None,
        }
    }

    #[test]
    fn flags_override_settings_and_off_disables() {
        let got = listen_addresses(&settings(), &options("off", "", "127.0.0.1:0"));
        assert_eq!(
            got,
            vec![
                (Protocol::Http, None),
                (Protocol::Https, None),
                (Protocol::Tftp, Some("127.0.0.1:0".into())),
            ]
        );
        let got = listen_addresses(&settings(), &ServeOptions::default());
        assert_eq!(got[0], (Protocol::Http, Some("0.0.0.0:8080".into())));
        assert_eq!(got[2], (Protocol::Tftp, Some("0.0.0.0:69".into())));
    }

    #[test]
    fn the_syslog_flag_overrides_the_setting_and_phones_get_the_public_host() {
        let mut s = settings();
        let flag = |syslog: Option<&str>| ServeOptions {
            syslog: syslog.map(str::to_string),
            ..ServeOptions::default()
        };
        assert_eq!(syslog_listen(&s, &flag(None)), None);
        s.syslog = Some(provdesk_core::desk::SyslogSettings {
            listen: Some("0.0.0.0:514".into()),
            level: provdesk_core::syslog::SyslogLevel::Debug,
        });
        assert_eq!(
            syslog_listen(&s, &flag(None)).as_deref(),
            Some("0.0.0.0:514")
        );
        assert_eq!(
            syslog_listen(&s, &flag(Some("127.0.0.1:5514"))).as_deref(),
            Some("127.0.0.1:5514")
        );
        assert_eq!(syslog_listen(&s, &flag(Some("OFF"))), None);
        let bound: SocketAddr = "127.0.0.1:5514".parse().unwrap();
        let target = syslog_target(&s, bound);
        assert_eq!(
            (target.p207(), target.level.p208()),
            ("127.0.0.1:5514".into(), "1")
        );
        s.server.public_host = Some("prov.example".into());
        assert_eq!(syslog_target(&s, bound).p207(), "prov.example:5514");
        let standard: SocketAddr = "0.0.0.0:514".parse().unwrap();
        assert_eq!(syslog_target(&s, standard).p207(), "prov.example");
        assert_eq!(syslog_url(bound), "udp://127.0.0.1:5514");
    }

    #[test]
    fn the_server_address_prefers_the_public_host_then_the_bound_ip() {
        let tftp: SocketAddr = "127.0.0.1:6969".parse().unwrap();
        let http: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let got = server_address(&settings(), &[(Protocol::Tftp, tftp)]).unwrap();
        assert_eq!(got.scheme, Scheme::Tftp);
        assert_eq!(got.config_path(), "127.0.0.1:6969");
        let mut with_host = settings();
        with_host.server.public_host = Some("prov.example.com".into());
        with_host.server.base_path = "/gs/".into();
        let got = server_address(
            &with_host,
            &[(Protocol::Tftp, tftp), (Protocol::Http, http)],
        )
        .unwrap();
        assert_eq!(got.scheme, Scheme::Http);
        assert_eq!(got.config_path(), "prov.example.com/gs");
        assert_eq!(server_address(&settings(), &[]), None);
        // A wildcard is replaced by an address phones can reach.
        let any: SocketAddr = "0.0.0.0:6969".parse().unwrap();
        let got = server_address(&settings(), &[(Protocol::Tftp, any)]).unwrap();
        assert_ne!(got.host, "0.0.0.0");
    }

    #[test]
    fn urls_have_the_real_port_and_base_path() {
        let mut s = settings();
        let http: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(url(Protocol::Http, http, &s), "http://127.0.0.1:8080/");
        s.server.base_path = "/gs".into();
        assert_eq!(url(Protocol::Http, http, &s), "http://127.0.0.1:8080/gs/");
        let tftp: SocketAddr = "[::1]:69".parse().unwrap();
        assert_eq!(url(Protocol::Tftp, tftp, &s), "tftp://[::1]:69");
    }

    #[test]
    fn plug_and_play_hands_out_the_first_server_as_the_phone_reaches_it() {
        let lan = Ipv4Addr::new(198, 51, 100, 1);
        let any_http: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let tftp: SocketAddr = "198.51.100.1:6969".parse().unwrap();
        let mut s = settings();
        assert_eq!(
            pnp_url(
                &s,
                &[(Protocol::Tftp, tftp), (Protocol::Http, any_http)],
                lan
            )
            .as_deref(),
            Some("http://198.51.100.1:8080/")
        );
        assert_eq!(
            pnp_url(&s, &[(Protocol::Tftp, tftp)], lan).as_deref(),
            Some("tftp://198.51.100.1:6969/")
        );
        s.server.base_path = "/gs".into();
        s.server.public_host = Some("prov.example.com".into());
        assert_eq!(
            pnp_url(&s, &[(Protocol::Http, any_http)], lan).as_deref(),
            Some("http://prov.example.com:8080/gs/")
        );
        assert_eq!(pnp_url(&s, &[], lan), None);
    }

    #[test]
    fn bind_errors_say_what_to_do() {
        let low: SocketAddr = "0.0.0.0:69".parse().unwrap();
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let message = bind_error(Protocol::Tftp, low, denied).to_string();
        assert!(message.contains("--tftp 0.0.0.0:6969"), "{message}");
        assert!(
            message.contains("setcap cap_net_bind_service=+ep"),
            "{message}"
        );
        let in_use = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let message =
            bind_error(Protocol::Http, "0.0.0.0:8080".parse().unwrap(), in_use).to_string();
        assert!(message.contains("0.0.0.0:8080"), "{message}");
        assert!(message.contains("already in use"), "{message}");
    }

    #[tokio::test]
    async fn an_address_in_use_is_reported_with_the_address() {
        let taken = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = taken.local_addr().unwrap().to_string();
        let err = bind_all(&settings(), &options("off", "off", &address))
            .await
            .err()
            .expect("the port is taken");
        assert!(err.to_string().contains(&address), "{err}");
        assert!(err.to_string().contains("already in use"), "{err}");
    }

    #[tokio::test]
    async fn starts_serves_over_tftp_and_shuts_down_with_the_log_written() {
        let dir = tempfile::tempdir().unwrap();
        let desk = Desk::init(&dir.path().join("desk")).unwrap();
        let service = Service::new(
            Builder::new(desk.clone()),
            options("off", "off", "127.0.0.1:0"),
        );
        let mut events = service.events().subscribe();
        let running = service.launch().await.unwrap();
        assert!(running.first_build().published);
        let (protocol, address) = running.addresses()[0];
        assert_eq!(protocol, Protocol::Tftp);
        assert_ne!(address.port(), 0);
        // The first build filled P237 with the server's own address.
        let snapshot = running.store().snapshot();
        let crate::store::Resolution::Found(cfg) = snapshot.resolve("cfg.xml") else {
            panic!("cfg.xml is built");
        };
        let text = String::from_utf8_lossy(&cfg.body).into_owned();
        assert!(
            text.contains(&format!("<P237>127.0.0.1:{}</P237>", address.port())),
            "{text}"
        );
        assert!(text.contains("<P212>0</P212>"), "{text}");

        // One request over the wire, answered with a miss.
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client
            .send_to(b"\0\x01cfg000b82abcdef.xml\0octet\0", address)
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let wait = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            client.recv_from(&mut buf),
        );
        let (len, _) = wait.await.unwrap().unwrap();
        assert_eq!(&buf[..4], b"\0\x05\0\x01", "{:?}", &buf[..len]);
        let listening = async {
            loop {
                if let Event::Listening { url, .. } = &*events.recv().await.unwrap() {
                    return url.clone();
                }
            }
        };
        let url = tokio::time::timeout(std::time::Duration::from_secs(5), listening)
            .await
            .unwrap();
        assert_eq!(url, format!("tftp://127.0.0.1:{}", address.port()));

        let inventory = running.inventory();
        running.shutdown().await.unwrap();
        let log = inventory.fetch_log(&FetchLogQuery::default()).unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].status, "404");
        let mac: Mac = "000b82abcdef".parse().unwrap();
        let device = inventory.get_device(mac).unwrap().unwrap();
        assert_eq!(device.model, provdesk_core::inventory::UNKNOWN_MODEL);
    }

    #[tokio::test]
    async fn start_up_after_a_stopped_build_serves_only_the_manifest_with_its_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let desk = Desk::init(&dir.path().join("desk")).unwrap();
        let office = desk.profiles_dir().join("office.toml");
        std::fs::write(
            &office,
            "[params]\nP35 = \"{{ ext }}\"\nP1360 = \"phone{{ ext }}\"\nP1361 = \"pw{{ ext }}\"\n",
        )
        .unwrap();
        let inventory = desk.inventory().unwrap();
        let mac: Mac = "000b82000001".parse().unwrap();
        let mut device = provdesk_core::inventory::Device::new(mac, "gxp2170");
        device.profile = Some("office".into());
        device.vars.insert("ext".into(), "201".into());
        inventory.upsert_device(&device).unwrap();
        let report = Builder::new(desk.clone())
            .build(&inventory, &BuildOptions::default())
            .unwrap();
        assert!(report.published, "{:?}", report.diagnostics);
        // A stopped build: one file rewritten without its manifest, one temp file left.
        let build_dir = desk.build_dir();
        std::fs::write(build_dir.join("cfg000b82000001.xml"), "<not-published/>").unwrap();
        let stray = build_dir.join(".tmp/00000000deadbeef");
        std::fs::write(&stray, "half").unwrap();
        // And profiles that no longer build.
        // Long enough not to look like a save in progress (that would hold the build).
        std::fs::write(&office, "[params\nP35 = \"{{ ext }}\"\n").unwrap();

        let service = Service::new(
            Builder::new(desk.clone()),
            options("off", "off", "127.0.0.1:0"),
        );
        let mut events = service.events().subscribe();
        let running = service.launch().await.unwrap();
        assert!(!running.first_build().published);
        let snapshot = running.store().snapshot();
        assert!(matches!(
            snapshot.resolve("cfg000b82000001.xml"),
            crate::store::Resolution::NotFound { .. }
        ));
        assert!(matches!(
            snapshot.resolve("cfg000b82000001"),
            crate::store::Resolution::Found(_)
        ));
        let expected = snapshot
            .credentials
            .lookup(Some(mac), Some("gxp2170"))
            .unwrap();
        assert_eq!(
            (expected.user.as_str(), expected.password.as_str()),
            ("phone201", "pw201")
        );
        assert!(!stray.exists());
        let mut warnings = Vec::new();
        while let Ok(event) = events.try_recv() {
            if let Event::Warning { message } = &*event {
                warnings.push(message.clone());
            }
        }
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("not served") && w.contains("build/cfg000b82000001.xml")),
            "{warnings:?}"
        );
        assert!(
            warnings.iter().any(|w| w.contains("build/.tmp")),
            "{warnings:?}"
        );
        running.shutdown().await.unwrap();
    }
}
