//! What crosses the IPC boundary, and the one mapping from each core type to it. The UI's
//! `ui/src/lib/api.ts` mirrors these shapes field for field.
//!
//! Invariant: no decisions here beyond shape; masking, layering and validation come from the
//! core (catalogue, profile set, builder).

use std::collections::BTreeMap;

use provdesk_core::build::ArtifactKind;
use provdesk_core::catalog::Catalog;
use provdesk_core::inventory::{Device, DeviceState, FetchLogEntry};
use provdesk_core::profile::edit::ProfileKind;
use provdesk_core::profile::{EffectiveConfig, Source};
use provdesk_core::secrets::Secrets;
use provdesk_core::{Diagnostic, Mac, PName};
use serde::{Deserialize, Serialize};

// Live screen.
use provdesk_core::desk::DeskSettings;
use provdesk_core::status::ProvisioningStatus;
use provdesk_serve::events::{Fetch, Progress, Protocol};
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceDto {
    pub mac: Mac,
    pub model: String,
    pub profile: Option<String>,
    pub name: Option<String>,
    pub state: DeviceState,
    pub vars: BTreeMap<String, String>,
    /// For each of `vars`, whether it is secret (feeds a secret P-value, see
    /// `provdesk_core::secrets`): the UI masks those until the technician reveals them.
    pub secret_vars: BTreeMap<String, bool>,
    pub overrides: BTreeMap<PName, String>,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub last_ip: Option<String>,
    pub firmware_version: Option<String>,
}

impl DeviceDto {
    /// The device with each variable flagged by the core's secret rule.
    pub fn with_secrets(d: &Device, secrets: &Secrets) -> DeviceDto {
        let mut dto = DeviceDto::from(d);
        for (name, secret) in &mut dto.secret_vars {
            *secret = secrets.is_secret_var(name);
        }
        dto
    }
}

/// Without the device's secrets at hand every variable is flagged secret: masking one too many
/// is the safe mistake. Use [`DeviceDto::with_secrets`].
impl From<&Device> for DeviceDto {
    fn from(d: &Device) -> DeviceDto {
        DeviceDto {
            mac: d.mac,
            model: d.model.clone(),
            profile: d.profile.clone(),
            name: d.name.clone(),
            state: d.state,
            vars: d.vars.clone(),
            secret_vars: d.vars.keys().map(|name| (name.clone(), true)).collect(),
            overrides: d.overrides.clone(),
            first_seen: d.first_seen,
            last_seen: d.last_seen,
            last_ip: d.last_ip.clone(),
            firmware_version: d.firmware_version.clone(),
        }
    }
}

/// A device as the add and edit forms send it.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceInput {
    pub mac: String,
    pub model: String,
    pub profile: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default)]
    pub overrides: BTreeMap<String, String>,
    /// Store it even though its profile uses variables it does not define (it then needs
    /// attention and gets no config until they are set); without it such a device is refused.
    #[serde(default)]
    pub incomplete: bool,
}

/// The variables a device's profile uses that the device lacks, said before enrolling it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingVariables {
    pub mac: Mac,
    pub missing: Vec<String>,
}

pub use provdesk_desk::BuildSummary;

pub use provdesk_desk::BuildState as DeskBuildStatus;

/// One value of an effective configuration, with its layer and what the catalogue knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveParam {
    pub p: PName,
    pub value: String,
    pub source: Source,
    /// The catalogue's label (`SIP Server`), when it knows the P-value.
    pub label: Option<String>,
    pub page: Option<String>,
    /// Shown masked until the technician asks: typed secret by the catalogue, or carrying a
    /// secret variable (the core's rule).
    pub secret: bool,
}

pub fn effective_params(
    config: &EffectiveConfig,
    catalog: &Catalog,
    secrets: &Secrets,
) -> Vec<EffectiveParam> {
    config
        .params
        .iter()
        .map(|(p, sourced)| {
            let entry = catalog.get(*p);
            EffectiveParam {
                p: *p,
                value: sourced.value.clone(),
                source: sourced.source.clone(),
                label: entry.map(|e| e.name.clone()),
                page: entry.map(|e| e.page.clone()),
                secret: catalog.is_secret(*p) || secrets.is_secret_param(*p),
            }
        })
        .collect()
}

/// One file a device receives, decoded for reading.
#[derive(Debug, Clone, Serialize)]
pub struct FilePreview {
    /// The request name, `cfg000b82000001.xml`.
    pub name: String,
    pub kind: ArtifactKind,
    /// Relative to the desk.
    pub file: String,
    /// Encrypted on the wire; `text` is the decrypted content.
    pub encrypted: bool,
    pub size: u64,
    pub version: u64,
    pub text: Option<String>,
    /// `text` with every catalogue secret masked: what the preview shows until revealed.
    pub masked: Option<String>,
    /// How many values `masked` hides.
    pub secrets: usize,
    /// Why there is no text (firmware, unreadable, no password).
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceDetail {
    pub device: DeviceDto,
    pub params: Vec<EffectiveParam>,
    pub diagnostics: Vec<Diagnostic>,
    pub files: Vec<FilePreview>,
    pub history: Vec<FetchLogEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportRow {
    pub line: usize,
    pub device: DeviceDto,
    /// The MAC is already in the inventory: the row updates it.
    pub update: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportResult {
    pub rows: Vec<ImportRow>,
    pub diagnostics: Vec<Diagnostic>,
    pub new: usize,
    pub updated: usize,
    /// Rows left out because of errors.
    pub bad: usize,
    /// How many devices were stored; `None` for a dry run or a refused import.
    pub imported: Option<usize>,
    pub build: Option<BuildSummary>,
    /// What happened, in one sentence, the CLI's wording.
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileSummary {
    pub name: String,
    pub kind: ProfileKind,
    pub file: String,
    pub extends: Option<String>,
    pub params: usize,
    pub errors: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileList {
    pub profiles: Vec<ProfileSummary>,
    pub diagnostics: Vec<Diagnostic>,
}

/// A value the profile itself sets.
#[derive(Debug, Clone, Serialize)]
pub struct OwnValue {
    pub p: PName,
    pub value: String,
    pub line: Option<usize>,
    /// The catalogue's verdict on this value.
    pub violations: Vec<Diagnostic>,
    /// The `{{ var }}` names the value uses (filled in per device).
    pub variables: Vec<String>,
}

/// A value the profile inherits from a lower layer.
#[derive(Debug, Clone, Serialize)]
pub struct InheritedValue {
    pub p: PName,
    pub value: String,
    pub source: Source,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileDoc {
    pub name: String,
    pub kind: ProfileKind,
    pub file: String,
    /// A hash of `text`; the editor compares it with `profile_revision` to notice outside edits.
    pub revision: String,
    /// The files layered for this profile, bottom first (global, model, parents, itself).
    pub layers: Vec<String>,
    pub text: String,
    pub extends: Option<String>,
    /// The model the inherited values were computed for, if any.
    pub model: Option<String>,
    pub own: Vec<OwnValue>,
    pub inherited: Vec<InheritedValue>,
    /// Problems in this file (syntax, names, parents).
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SaveResult {
    pub doc: ProfileDoc,
    pub build: BuildSummary,
    /// Warnings from the catalogue about the saved value(s).
    pub warnings: Vec<Diagnostic>,
}

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
    /// What to put in DHCP option 66 so phones find this server (from `address`).
    pub option66: Option<String>,
    /// The config server path phones are given (P237), `host[:port][/path]` (from `address`).
    pub p237: Option<String>,
    /// P212, the protocol phones use to fetch: 0 TFTP, 1 HTTP, 2 HTTPS (from `address`).
    pub p212: Option<String>,
    /// The address phones are given and why: the story Settings and the device page tell.
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
}

#[derive(Debug, Clone, Default, Serialize)]
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

/// One request in the Live log. No field can carry a password: events never hold one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRow {
    pub at_ms: i64,
    pub protocol: Protocol,
    pub peer: String,
    pub name: String,
    pub mac: Option<Mac>,
    pub model: Option<String>,
    pub user_agent: Option<String>,
    /// The fetch log's status: `200`, `206`, `404`, `400`, `denied`, `failed`.
    pub status: String,
    /// `served`, `not-found`, `bad-request`, `denied`, `failed`.
    pub outcome: &'static str,
    /// Why it was a miss, a denial or a failure.
    pub reason: Option<String>,
    pub bytes: u64,
    pub duration_ms: u64,
}

impl From<&Fetch> for LogRow {
    fn from(f: &Fetch) -> LogRow {
        LogRow {
            at_ms: f.at_ms,
            protocol: f.protocol,
            peer: f.peer.to_string(),
            name: f.name.clone(),
            mac: f.mac,
            model: f.model.clone(),
            user_agent: f.user_agent.clone(),
            status: f.outcome.status_text(),
            outcome: f.outcome.kind(),
            reason: f.outcome.reason().map(str::to_string),
            bytes: f.bytes,
            duration_ms: f.duration_ms,
        }
    }
}

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

// The Settings and Firmware screens' types are the desk crate's views
// (`provdesk_desk::settings`, `firmware`, `certificates`, `address`), generated for the UI.

#[cfg(test)]
mod tests {
    use super::*;
    use provdesk_core::profile::Sourced;

    fn p(text: &str) -> PName {
        text.parse().unwrap()
    }

    #[test]
    fn device_variables_carry_the_core_secret_flags() {
        use provdesk_core::build::BuildOptions;
        use provdesk_core::profile::ProfileSet;
        use provdesk_core::secrets::device_secrets;

        let profiles = ProfileSet::from_texts(&[(
            "profiles/acct.toml",
            "[params]\nP34 = \"{{ acct }}\"\nP270 = \"Line {{ acct }}\"\nP35 = \"{{ ext }}\"\n",
        )]);
        let mut device = Device::new("000b82000001".parse().unwrap(), "gxp2170");
        device.profile = Some("acct".into());
        device.vars.insert("acct".into(), "hunter2secret".into());
        device.vars.insert("ext".into(), "201".into());
        let secrets = device_secrets(
            &profiles,
            &device,
            Catalog::builtin(),
            &BuildOptions::default(),
        );
        let dto = DeviceDto::with_secrets(&device, &secrets);
        let flags: Vec<(&str, bool)> = dto
            .secret_vars
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(flags, [("acct", true), ("ext", false)]);
        // Without the secrets at hand, every variable is masked.
        assert!(DeviceDto::from(&device).secret_vars.values().all(|s| *s));

        let (config, _) =
            provdesk_core::build::device_config(&profiles, &device, &BuildOptions::default());
        let params = effective_params(&config, Catalog::builtin(), &secrets);
        let secret: Vec<String> = params
            .iter()
            .filter(|e| e.secret)
            .map(|e| e.p.to_string())
            .collect();
        assert_eq!(secret, ["P34", "P270"], "P270 carries the secret variable");
    }

    #[test]
    fn effective_params_carry_layer_label_and_secrecy() {
        let mut config = EffectiveConfig::default();
        config.params.insert(
            p("P47"),
            Sourced {
                value: "pbx".into(),
                source: Source::File {
                    path: "profiles/office.toml".into(),
                    line: 5,
                },
            },
        );
        config.params.insert(
            p("P34"),
            Sourced {
                value: "s3cret".into(),
                source: Source::DeviceOverride,
            },
        );
        let params = effective_params(&config, Catalog::builtin(), &Secrets::default());
        assert_eq!(params.len(), 2);
        let p34 = &params[0];
        assert_eq!(p34.p, p("P34"));
        assert!(p34.secret, "P34 is the SIP password");
        let p47 = &params[1];
        assert!(!p47.secret);
        assert!(p47.label.is_some());
        let json = serde_json::to_value(p47).unwrap();
        assert_eq!(json["source"]["kind"], "file");
        assert_eq!(json["source"]["line"], 5);
        assert_eq!(json["p"], "P47");
    }
}
