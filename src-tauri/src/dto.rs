//! What crosses the IPC boundary, and the one mapping from each core type to it. The UI's
//! `ui/src/lib/api.ts` mirrors these shapes field for field.
//!
//! Invariant: no decisions here beyond shape; masking, layering and validation come from the
//! core (catalogue, profile set, builder).

use provdesk_core::inventory::{Device, DeviceState, FetchLogEntry};
use provdesk_core::{Diagnostic, Mac};
use serde::{Deserialize, Serialize};

// Live screen.
use provdesk_core::build::{Scheme, ServerAddress};
use provdesk_core::desk::DeskSettings;
use provdesk_core::status::ProvisioningStatus;
use provdesk_serve::events::{Progress, Protocol};
use std::net::SocketAddr;

#[derive(Debug, Clone, Serialize)]
pub struct DeskInfo {
    pub root: String,
    pub settings_file: String,
    pub settings_text: String,
    pub devices: usize,
    pub discovered: usize,
    /// Named profiles, `global` first.
    pub profiles: Vec<String>,
    /// Models with a file or a device, lowercase.
    pub models: Vec<String>,
    pub catalog_entries: usize,
    pub catalog_diagnostics: Vec<Diagnostic>,
    /// Whether phones' P237/P192 can be filled in (the desk names a `public_host`).
    pub server_address: Option<String>,
}

pub use provdesk_desk::BuildSummary;

pub use provdesk_desk::BuildState as DeskBuildStatus;

// ---- Live screen (servers, event batches, device tiles) ----

/// Listen addresses the technician types on the Live screen; `None` keeps provdesk.toml's,
/// `off` turns a server off, `IP:PORT` with port 0 picks a free port.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListenOverrides {
    pub http: Option<String>,
    pub https: Option<String>,
    pub tftp: Option<String>,
}

impl From<ListenOverrides> for provdesk_serve::service::ServeOptions {
    fn from(o: ListenOverrides) -> provdesk_serve::service::ServeOptions {
        let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        provdesk_serve::service::ServeOptions {
            http: clean(o.http),
            https: clean(o.https),
            tftp: clean(o.tftp),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerUrl {
    pub protocol: Protocol,
    pub url: String,
    /// The bound socket, `127.0.0.1:40123`.
    pub address: String,
}

/// What the Live screen's header shows.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub running: bool,
    pub urls: Vec<ServerUrl>,
    /// What to put in DHCP option 66 so phones find this server.
    pub option66: Option<String>,
    /// The config server path phones are given (P237), `host[:port][/path]`.
    pub p237: Option<String>,
    /// P212, the protocol phones use to fetch: 0 TFTP, 1 HTTP, 2 HTTPS.
    pub p212: Option<String>,
    /// Why the last start failed, each with what to do.
    pub errors: Vec<String>,
    /// The desk's own listen settings, the defaults of the start form.
    pub configured: ListenSettings,
    /// The build done at start.
    pub first_build: Option<BuildSummary>,
    /// While running: what each protocol enforces and the settings' trade-offs, as the serve
    /// crate words them (the same lines `provdesk serve` prints).
    pub access: Option<provdesk_serve::access::AccessSummary>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ListenSettings {
    pub http: Option<String>,
    pub https: Option<String>,
    pub tftp: Option<String>,
}

impl ServerStatus {
    pub fn stopped(settings: &DeskSettings, errors: Vec<String>) -> ServerStatus {
        ServerStatus {
            running: false,
            urls: Vec::new(),
            option66: None,
            p237: None,
            p212: None,
            errors,
            configured: ListenSettings::from(settings),
            first_build: None,
            access: None,
        }
    }

    /// The status of running servers: their URLs and the values to give phones.
    pub fn running(
        settings: &DeskSettings,
        addresses: &[(Protocol, SocketAddr)],
        urls: Vec<(Protocol, String)>,
        first_build: BuildSummary,
        access: provdesk_serve::access::AccessSummary,
    ) -> ServerStatus {
        let server = provdesk_serve::service::server_address(settings, addresses);
        let urls = urls
            .into_iter()
            .filter_map(|(protocol, url)| {
                let (_, address) = addresses.iter().find(|(p, _)| *p == protocol)?;
                Some(ServerUrl {
                    protocol,
                    url,
                    address: address.to_string(),
                })
            })
            .collect();
        ServerStatus {
            running: true,
            urls,
            option66: server.as_ref().map(option66),
            p237: server.as_ref().map(ServerAddress::config_path),
            p212: server.as_ref().map(|s| {
                match s.scheme {
                    Scheme::Tftp => "0",
                    Scheme::Http => "1",
                    Scheme::Https => "2",
                }
                .to_string()
            }),
            errors: Vec::new(),
            configured: ListenSettings::from(settings),
            first_build: Some(first_build),
            access: Some(access),
        }
    }
}

impl From<&DeskSettings> for ListenSettings {
    fn from(settings: &DeskSettings) -> ListenSettings {
        ListenSettings {
            http: settings.server.http.clone(),
            https: settings.server.https.clone(),
            tftp: settings.server.tftp.clone(),
        }
    }
}

/// Option 66 takes a URL for HTTP(S); for TFTP a bare host, or `tftp://host:port` when the
/// port is not 69.
fn option66(server: &ServerAddress) -> String {
    match server.scheme {
        Scheme::Http => format!("http://{}", server.config_path()),
        Scheme::Https => format!("https://{}", server.config_path()),
        Scheme::Tftp if server.port.is_some() => format!("tftp://{}", server.config_path()),
        Scheme::Tftp => server.host.clone(),
    }
}

/// One request in the Live log (from the servers' events or the fetch log): the desk's.
pub use provdesk_desk::LogRow;

/// A transfer under way (the newest of a batch per transfer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgressRow {
    pub transfer: u64,
    pub protocol: Protocol,
    pub peer: String,
    pub name: String,
    pub mac: Option<Mac>,
    pub bytes: u64,
    pub total: Option<u64>,
}

impl From<&Progress> for ProgressRow {
    fn from(p: &Progress) -> ProgressRow {
        ProgressRow {
            transfer: p.transfer,
            protocol: p.protocol,
            peer: p.peer.to_string(),
            name: p.name.clone(),
            mac: p.mac,
            bytes: p.bytes,
            total: p.total,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveredRow {
    pub mac: Mac,
    pub model: Option<String>,
    pub ip: String,
    pub firmware_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListeningRow {
    pub protocol: Protocol,
    pub url: String,
}

/// A device's tile: who it is (from the inventory) and where it is in its provisioning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tile {
    pub mac: Mac,
    pub name: Option<String>,
    pub model: String,
    pub profile: Option<String>,
    pub state: DeviceState,
    pub last_ip: Option<String>,
    pub status: ProvisioningStatus,
    /// The core's label for the status, `up to date`, `firmware 45%`.
    pub label: String,
    pub last_request: Option<LastRequest>,
}

/// A device's newest request, for its tile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastRequest {
    pub at_ms: i64,
    pub name: String,
    pub status: String,
}

impl From<&FetchLogEntry> for LastRequest {
    fn from(e: &FetchLogEntry) -> LastRequest {
        LastRequest {
            at_ms: e.ts,
            name: e.name.clone(),
            status: e.status.clone(),
        }
    }
}

impl Tile {
    pub fn new(device: &Device, status: ProvisioningStatus, last: Option<&FetchLogEntry>) -> Tile {
        Tile {
            mac: device.mac,
            name: device.name.clone(),
            model: device.model.clone(),
            profile: device.profile.clone(),
            state: device.state,
            last_ip: device.last_ip.clone(),
            label: status.label(),
            status,
            last_request: last.map(LastRequest::from),
        }
    }
}

/// Everything that happened in one batch window, in arrival order within each list. A boot
/// storm arrives as a few messages a second, never one per request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveBatch {
    pub fetches: Vec<LogRow>,
    /// Coalesced: the newest progress of each transfer.
    pub progress: Vec<ProgressRow>,
    pub builds: Vec<BuildSummary>,
    pub discovered: Vec<DiscoveredRow>,
    pub listening: Vec<ListeningRow>,
    pub warnings: Vec<String>,
    /// The new status of every device this batch touched.
    pub tiles: Vec<Tile>,
    /// Events the app fell behind on and lost (the fetch log still has every request).
    pub missed: u64,
    /// A build was published: every tile may have changed (stale), reload the board.
    pub board_changed: bool,
}

// --- Settings and Firmware screens -------------------------------------------------------

/// The Settings screen: the typed settings, the file they come from, and what the form needs
/// to offer (this machine's addresses, the state of the HTTPS certificate).
#[derive(Debug, Clone, Serialize)]
pub struct SettingsDto {
    pub settings: provdesk_core::desk::DeskSettings,
    pub file: String,
    pub text: String,
    pub interfaces: Vec<InterfaceAddress>,
    pub tls: TlsState,
}

/// One address of this machine and the interface it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceAddress {
    pub interface: String,
    pub ip: String,
    pub ipv6: bool,
    pub loopback: bool,
}

/// Which certificate HTTPS will use.
#[derive(Debug, Clone, Serialize)]
pub struct TlsState {
    /// `own` (cert/key files named in the settings), `generated` (DESK/tls/ has them) or
    /// `none yet` (generated when HTTPS first starts, or with the Generate button).
    pub source: &'static str,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SettingsSaved {
    pub settings: SettingsDto,
    /// What changed on disk and what to do next.
    pub message: String,
}

/// The Firmware screen: every served file, who fetches it, and the prefixes in effect.
#[derive(Debug, Clone, Serialize)]
pub struct FirmwareOverview {
    pub files: Vec<FirmwareEntry>,
    /// P232/P233 pairs in effect across the inventory, most used first.
    pub affixes: Vec<provdesk_core::firmware::Affixes>,
    /// Models in the inventory with no firmware file (their phones get a 404 for firmware).
    pub missing: Vec<MissingFirmware>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FirmwareEntry {
    /// The name inside `firmware/`.
    pub file: String,
    pub size: u64,
    pub model: Option<String>,
    /// Inventory devices that will fetch this file, with the name each requests.
    pub devices: Vec<provdesk_core::firmware::FirmwareUse>,
    /// Names the last build answers with this file.
    pub requests: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MissingFirmware {
    pub model: String,
    pub devices: usize,
    pub file: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FirmwareChanged {
    pub overview: FirmwareOverview,
    pub message: String,
}
