//! What crosses the IPC boundary, and the one mapping from each core type to it. Every type
//! here derives its TypeScript (`ui/src/lib/generated/`, see `scripts/check-generated`), which
//! `ui/src/lib/api.ts` re-exports: nothing is mirrored by hand.
//!
//! Invariant: no decisions here beyond shape; masking, layering and validation come from the
//! core (catalogue, profile set, builder).

use provdesk_core::Mac;
use provdesk_core::inventory::{Device, DeviceState, FetchLogEntry};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

// Live screen.
use provdesk_core::desk::DeskSettings;
use provdesk_core::status::ProvisioningStatus;
use provdesk_serve::events::{Progress, Protocol};
use std::net::SocketAddr;

pub use provdesk_desk::BuildSummary;
pub use provdesk_desk::lan::{LanLogRow, LanStatus};

// ---- Live screen (servers, event batches, device tiles) ----

/// Listen addresses the technician types on the Live screen; `None` keeps provdesk.toml's,
/// `off` turns a server off, `IP:PORT` with port 0 picks a free port.
#[derive(Debug, Clone, Default, Deserialize, TS)]
#[ts(export)]
pub struct ListenOverrides {
    // A missing field is `None` to serde, so the UI may leave any of them out.
    #[ts(optional = nullable)]
    pub http: Option<String>,
    #[ts(optional = nullable)]
    pub https: Option<String>,
    #[ts(optional = nullable)]
    pub tftp: Option<String>,
}

impl From<ListenOverrides> for provdesk_serve::service::ServeOptions {
    fn from(o: ListenOverrides) -> provdesk_serve::service::ServeOptions {
        let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        provdesk_serve::service::ServeOptions {
            http: clean(o.http),
            https: clean(o.https),
            tftp: clean(o.tftp),
            pnp: None,
            dhcp: None,
            syslog: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ServerUrl {
    pub protocol: Protocol,
    pub url: String,
    /// The bound socket, `127.0.0.1:40123`.
    pub address: String,
}

/// What the Live screen's header shows.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ServerStatus {
    pub running: bool,
    pub urls: Vec<ServerUrl>,
    /// What to put in DHCP option 66 so phones find this server (from `address`).
    pub option66: Option<String>,
    /// The config server path phones are given (P237), `host[:port][/path]` (from `address`).
    pub p237: Option<String>,
    /// P212, the protocol phones use to fetch: 0 TFTP, 1 HTTP, 2 HTTPS (from `address`).
    pub p212: Option<String>,
    /// The address phones are given and why: the story Settings and the device page tell,
    /// and what the Live screen shows (`option66`, `p237`, `p212` above are its fields).
    pub address: provdesk_desk::address::PhoneAddress,
    /// Why the last start failed, each with what to do.
    pub errors: Vec<String>,
    /// The desk's own listen settings, the defaults of the start form.
    pub configured: ListenSettings,
    /// The build done at start.
    pub first_build: Option<BuildSummary>,
    /// While running: what each protocol enforces and the settings' trade-offs, as the serve
    /// crate words them (the same lines `provdesk serve` prints).
    pub access: Option<provdesk_serve::access::AccessSummary>,
    /// Where DHCP and plug-and-play run with these servers (none while stopped).
    pub lan: LanStatus,
}

#[derive(Debug, Clone, Default, Serialize, TS)]
#[ts(export)]
pub struct ListenSettings {
    pub http: Option<String>,
    pub https: Option<String>,
    pub tftp: Option<String>,
}

impl ServerStatus {
    pub fn stopped(settings: &DeskSettings, errors: Vec<String>) -> ServerStatus {
        let address = provdesk_desk::address::phone_address(settings, None);
        ServerStatus {
            running: false,
            urls: Vec::new(),
            option66: address.option66.clone(),
            p237: address.p237.clone(),
            p212: address.p212.clone(),
            address,
            errors,
            configured: ListenSettings::from(settings),
            first_build: None,
            access: None,
            lan: LanStatus::default(),
        }
    }

    /// The status of running servers: their URLs and the values to give phones.
    pub fn running(
        settings: &DeskSettings,
        addresses: &[(Protocol, SocketAddr)],
        urls: Vec<(Protocol, String)>,
        first_build: BuildSummary,
        access: provdesk_serve::access::AccessSummary,
        lan: LanStatus,
    ) -> ServerStatus {
        let address = provdesk_desk::address::phone_address(settings, Some(addresses));
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
            option66: address.option66.clone(),
            p237: address.p237.clone(),
            p212: address.p212.clone(),
            address,
            errors: Vec::new(),
            configured: ListenSettings::from(settings),
            first_build: Some(first_build),
            access: Some(access),
            lan,
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

/// One request in the Live log (from the servers' events or the fetch log): the desk's.
pub use provdesk_desk::LogRow;

/// A transfer under way (the newest of a batch per transfer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ProgressRow {
    #[ts(type = "number")]
    pub transfer: u64,
    pub protocol: Protocol,
    pub peer: String,
    pub name: String,
    #[ts(as = "Option<String>")]
    pub mac: Option<Mac>,
    #[ts(type = "number")]
    pub bytes: u64,
    #[ts(type = "number | null")]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct DiscoveredRow {
    #[ts(as = "String")]
    pub mac: Mac,
    pub model: Option<String>,
    pub ip: String,
    pub firmware_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ListeningRow {
    pub protocol: Protocol,
    pub url: String,
}

/// A device's tile: who it is (from the inventory) and where it is in its provisioning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct Tile {
    #[ts(as = "String")]
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
    /// The newest syslog line the phone sent, as its timeline words it.
    pub last_syslog: Option<LastSyslog>,
}

/// A device's newest syslog line, for its tile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct LastSyslog {
    #[ts(type = "number")]
    pub at_ms: i64,
    /// The timeline row's summary (`info GS_LOG: …`).
    pub text: String,
}

/// A device's newest request, for its tile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct LastRequest {
    #[ts(type = "number")]
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
            last_syslog: None,
        }
    }

    pub fn with_syslog(mut self, last_syslog: Option<LastSyslog>) -> Tile {
        self.last_syslog = last_syslog;
        self
    }
}

/// Everything that happened in one batch window, in arrival order within each list. A boot
/// storm arrives as a few messages a second, never one per request.
#[derive(Debug, Clone, Default, Serialize, TS)]
#[ts(export)]
pub struct LiveBatch {
    pub fetches: Vec<LogRow>,
    /// Coalesced: the newest progress of each transfer.
    pub progress: Vec<ProgressRow>,
    pub builds: Vec<BuildSummary>,
    pub discovered: Vec<DiscoveredRow>,
    pub listening: Vec<ListeningRow>,
    pub warnings: Vec<String>,
    /// DHCP messages and plug-and-play requests, for the Live log.
    pub lan: Vec<LanLogRow>,
    /// The warnings above that are about DHCP (the responder's problems, its pre-flight's
    /// refusal), for the DHCP switch.
    pub lan_warnings: Vec<String>,
    /// A lease was granted, released or declined: the lease table is out of date.
    pub leases_changed: bool,
    /// The new status of every device this batch touched.
    pub tiles: Vec<Tile>,
    /// Events the app fell behind on and lost (the fetch log still has every request).
    #[ts(type = "number")]
    pub missed: u64,
    /// A build was published: every tile may have changed (stale), reload the board.
    pub board_changed: bool,
}

// The Settings and Firmware screens' types are the desk crate's views
// (`provdesk_desk::settings`, `firmware`, `certificates`, `address`), generated for the UI.
