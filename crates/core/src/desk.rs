//! The desk: the folder a technician owns (settings, profiles, firmware, inventory, build
//! output). Knows the layout and the settings file; creates a sample desk on first use.
//!
//! Invariant: `init` never overwrites a file the technician already has.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diagnostic::line_column;
use crate::{Error, Result};

pub const SETTINGS_FILE: &str = "provdesk.toml";
pub const PROFILES_DIR: &str = "profiles";
pub const MODELS_DIR: &str = "profiles/models";
pub const FIRMWARE_DIR: &str = "firmware";
pub const BUILD_DIR: &str = "build";
pub const DATABASE_FILE: &str = "provdesk.db";
pub const TLS_DIR: &str = "tls";

/// An opened desk folder with its parsed settings.
#[derive(Debug, Clone)]
pub struct Desk {
    root: PathBuf,
    settings: DeskSettings,
}

/// `provdesk.toml`. Every field has a default so an empty file is a valid desk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(default, deny_unknown_fields)]
pub struct DeskSettings {
    pub server: ServerSettings,
    pub discovery: DiscoverySettings,
    pub tls: TlsSettings,
    pub auth: AuthSettings,
    pub access: AccessSettings,
    pub limits: LimitsSettings,
    pub encryption: EncryptionSettings,
    /// `[dhcp]`; absent means the defaults. Optional so that a settings save that does not
    /// carry it (the app's form does not edit it yet) keeps the file's section as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub dhcp: Option<DhcpSettings>,
    /// `[syslog]`; absent means off. Optional for the same reason as `dhcp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub syslog: Option<SyslogSettings>,
    /// `[site]`: the customer's site, named on the hand-over report. Optional and kept by a
    /// save that does not carry it, as `[dhcp]` (the app's form does not edit it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub site: Option<SiteSettings>,
    /// `[pnp]`; absent means the defaults, kept as the file has it on a save without it
    /// (as `[dhcp]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub pnp: Option<PnpSettings>,
}

/// The syslog receiver: off unless `listen` names an address here or `provdesk serve
/// --syslog ADDR` gives one. While it runs, profiles that leave P207 (syslog server) and
/// P208 (level) empty get this receiver and `level`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogSettings {
    /// `ADDRESS:PORT` to receive on over UDP, e.g. `0.0.0.0:514`; absent, empty or `off`
    /// keeps the receiver off.
    pub listen: Option<String>,
    /// What phones are told to send (P208): `debug`, `info`, `warning` or `error`.
    pub level: crate::syslog::SyslogLevel,
}

impl SyslogSettings {
    /// The address to listen on, when the receiver is on.
    pub fn listen_address(&self) -> Option<&str> {
        self.listen
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.eq_ignore_ascii_case("off"))
    }

    /// Every value that cannot work, as `(field, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(address) = self.listen_address()
            && let Err(message) = crate::settings_edit::check_listen_address(address)
        {
            problems.push(("syslog.listen".to_string(), message));
        }
        problems
    }
}

/// The customer's site.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteSettings {
    /// The site's name as the customer knows it (`Acme Ltd, Leeds office`): the hand-over
    /// report's title. Absent: the desk folder's name.
    pub name: Option<String>,
}

/// SIP plug-and-play (phones multicasting a `SUBSCRIBE` for their provisioning server to
/// 224.0.1.75:5060): off unless an interface is named here or `provdesk serve --pnp` is
/// given, the way `[dhcp] interface` turns the DHCP responder on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PnpSettings {
    /// The interface to join 224.0.1.75 on: a name (`eth1`) or one of its IPv4 addresses.
    /// Absent keeps plug-and-play off; `serve --pnp` without a value then takes the first
    /// interface with an IPv4 address.
    pub interface: Option<String>,
}

impl PnpSettings {
    /// Every value that cannot work, as `(field, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        match &self.interface {
            Some(interface) if !is_interface_name(interface) => vec![(
                "pnp.interface".to_string(),
                format!("{interface:?} is not an interface name or IPv4 address, e.g. eth1"),
            )],
            _ => Vec::new(),
        }
    }
}

/// What Linux accepts as an interface name (at most 15 bytes, no `/`, spaces or control
/// characters); an IPv4 address passes too.
fn is_interface_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= 15
        && !name.contains(['/', ' '])
        && !name.chars().any(char::is_control)
}

/// Who the DHCP responder answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DhcpAnswer {
    /// Only clients whose vendor class (option 60) starts with `Grandstream`.
    #[default]
    Phones,
    Everyone,
}

impl DhcpAnswer {
    pub fn as_str(self) -> &'static str {
        match self {
            DhcpAnswer::Phones => "phones",
            DhcpAnswer::Everyone => "everyone",
        }
    }
}

/// The DHCP responder: off unless an interface is named here or given to
/// `provdesk serve --dhcp IFACE`. Addresses are written as text and checked by
/// [`DhcpSettings::problems`], so every bad one is named by its field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DhcpSettings {
    /// The interface to answer on, e.g. `eth1`; absent keeps the responder off.
    pub interface: Option<String>,
    /// First and last pool address; absent: the half of the interface's subnet that does
    /// not hold the desk's own address.
    pub pool_start: Option<String>,
    pub pool_end: Option<String>,
    pub lease_secs: u32,
    /// Option 3; absent sends none.
    pub router: Option<String>,
    /// Option 6.
    pub dns: Vec<String>,
    /// Option 42.
    pub ntp: Vec<String>,
    /// The phones' time zone as option 2 (time offset), written `+01:00` or `-05:00`: the
    /// one time-zone option Grandstream's DHCP options guide lists (phones take it while
    /// P143, "allow DHCP to set the time zone", is on). A fixed offset from UTC: daylight
    /// saving stays the phone's own rule (P64). Absent sends none.
    pub utc_offset: Option<String>,
    pub answer: DhcpAnswer,
    /// Also send the provisioning URL in option 43 (vendor-encapsulated).
    pub option43: bool,
}

impl Default for DhcpSettings {
    fn default() -> DhcpSettings {
        DhcpSettings {
            interface: None,
            pool_start: None,
            pool_end: None,
            lease_secs: 3600,
            router: None,
            dns: Vec::new(),
            ntp: Vec::new(),
            utc_offset: None,
            answer: DhcpAnswer::Phones,
            option43: true,
        }
    }
}

impl DhcpSettings {
    /// Every value that cannot work, as `(field, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let address = |value: &str| value.trim().parse::<std::net::Ipv4Addr>();
        let mut check = |field: String, value: &str| {
            if address(value).is_err() {
                problems.push((
                    field,
                    format!("{value:?} is not an IPv4 address, e.g. 192.168.1.100"),
                ));
            }
        };
        for (field, value) in [
            ("dhcp.pool_start", &self.pool_start),
            ("dhcp.pool_end", &self.pool_end),
            ("dhcp.router", &self.router),
        ] {
            if let Some(value) = value {
                check(field.to_string(), value);
            }
        }
        for (i, value) in self.dns.iter().enumerate() {
            check(format!("dhcp.dns[{i}]"), value);
        }
        for (i, value) in self.ntp.iter().enumerate() {
            check(format!("dhcp.ntp[{i}]"), value);
        }
        if let (Some(Ok(start)), Some(Ok(end))) = (
            self.pool_start.as_deref().map(address),
            self.pool_end.as_deref().map(address),
        ) && start > end
        {
            problems.push((
                "dhcp.pool_end".to_string(),
                format!("the pool ends ({end}) before it starts ({start})"),
            ));
        }
        if self.pool_start.is_some() != self.pool_end.is_some() {
            problems.push((
                "dhcp.pool_end".to_string(),
                "give both ends of the pool, or neither for the default".to_string(),
            ));
        }
        if let Some(Err(message)) = self.utc_offset_secs() {
            problems.push(("dhcp.utc_offset".to_string(), message));
        }
        if self.lease_secs < 60 {
            problems.push((
                "dhcp.lease_secs".to_string(),
                "a lease under 60 seconds keeps phones renewing: use at least 60 (the default is 3600)".to_string(),
            ));
        }
        if let Some(interface) = &self.interface
            && !is_interface_name(interface)
        {
            problems.push((
                "dhcp.interface".to_string(),
                format!("{interface:?} is not an interface name, e.g. eth1"),
            ));
        }
        problems
    }

    /// `utc_offset` in seconds east of UTC, as option 2 carries it; `None` when not set.
    pub fn utc_offset_secs(&self) -> Option<std::result::Result<i32, String>> {
        self.utc_offset.as_deref().map(parse_utc_offset)
    }
}

/// `+HH:MM` or `-HH:MM` (the sign required, minutes optional: `+2` is `+02:00`) within the
/// offsets in use, −12:00 to +14:00, as seconds east of UTC.
pub fn parse_utc_offset(text: &str) -> std::result::Result<i32, String> {
    let bad = || format!("{text:?} is not an offset from UTC: write +HH:MM or -HH:MM, e.g. +01:00");
    let trimmed = text.trim();
    let (sign, rest) = match trimmed.as_bytes().first() {
        Some(b'+') => (1, &trimmed[1..]),
        Some(b'-') => (-1, &trimmed[1..]),
        _ => return Err(bad()),
    };
    let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "0"));
    let digits = |part: &str| {
        (!part.is_empty() && part.len() <= 2 && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<i32>().ok())
            .flatten()
    };
    let (Some(hours), Some(minutes)) = (digits(hours), digits(minutes)) else {
        return Err(bad());
    };
    if minutes >= 60 {
        return Err(bad());
    }
    let seconds = sign * (hours * 3600 + minutes * 60);
    if !(-12 * 3600..=14 * 3600).contains(&seconds) {
        return Err(format!(
            "{text:?} is outside the offsets in use (-12:00 to +14:00)"
        ));
    }
    Ok(seconds)
}

impl DeskSettings {
    /// `[dhcp]` with its defaults filled in.
    pub fn dhcp(&self) -> DhcpSettings {
        self.dhcp.clone().unwrap_or_default()
    }

    /// `[syslog]` with its defaults filled in.
    pub fn syslog(&self) -> SyslogSettings {
        self.syslog.clone().unwrap_or_default()
    }

    /// `[pnp]` with its defaults filled in.
    pub fn pnp(&self) -> PnpSettings {
        self.pnp.clone().unwrap_or_default()
    }

    /// The interface DHCP answers on, given `serve --dhcp`'s value (`None`: not given): the
    /// flag's, else `[dhcp] interface`; `off` (or empty) is none. The one rule the servers
    /// and the app's DHCP switch share.
    pub fn dhcp_interface(&self, option: Option<&str>) -> Option<String> {
        let chosen = option
            .map(str::to_string)
            .or_else(|| self.dhcp().interface)
            .map(|i| i.trim().to_string())?;
        (!chosen.is_empty() && !chosen.eq_ignore_ascii_case("off")).then_some(chosen)
    }

    /// The interface plug-and-play answers on, given `serve --pnp`'s value (`None`: the
    /// flag was not given; `""`: given without a value): the flag's interface, else
    /// `[pnp] interface`; `off` is none. `Some("")` means the first interface with an IPv4
    /// address. The one rule the CLI and the servers share.
    pub fn pnp_interface(&self, option: Option<&str>) -> Option<String> {
        let configured = self
            .pnp()
            .interface
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty());
        let chosen = match option.map(str::trim) {
            None => configured?,
            Some("") => configured.unwrap_or_default(),
            Some(given) => given.to_string(),
        };
        (!chosen.eq_ignore_ascii_case("off")).then_some(chosen)
    }
}

/// HTTPS: a certificate from files, or one generated on first use under `DESK/tls/`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain and private key; when absent a local CA and server certificate
    /// are generated in `DESK/tls/`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// PEM bundle of CAs whose client certificates are accepted.
    pub client_ca: Option<PathBuf>,
    /// Refuse HTTPS clients without a valid certificate from `client_ca`.
    pub require_client_cert: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    None,
    Basic,
    Digest,
}

/// HTTP(S) authentication with the devices' own P1360/P1361 credentials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub mode: AuthMode,
    pub realm: String,
}

impl Default for AuthSettings {
    fn default() -> AuthSettings {
        AuthSettings {
            mode: AuthMode::None,
            realm: "ProvDesk".into(),
        }
    }
}

/// Which peers may fetch anything at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(default, deny_unknown_fields)]
pub struct AccessSettings {
    /// CIDR blocks or single addresses (`192.168.1.0/24`, `10.0.0.5`, `::1`); empty allows all.
    /// Applies to every protocol (HTTP, HTTPS, TFTP).
    pub allow: Vec<String>,
    /// Serve per-device files (`cfg<mac>`, `cfg<mac>.xml`) over TFTP even while HTTP
    /// authentication is on. TFTP cannot authenticate, so by default it withholds them then.
    pub tftp_device_files: bool,
    /// Who may fetch a device's own files: anyone the rest of `[access]` admits, or only the
    /// phone that owns them (by its MAC), over every protocol.
    pub device_files: DeviceFiles,
}

/// `[access] device_files`: whether a device's own files (`cfg<mac>`, `cfg<mac>.bin`,
/// `cfg<mac>.xml`) are bound to the phone with that MAC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "lowercase")]
pub enum DeviceFiles {
    /// Served to every peer the allow-list (and authentication) admits.
    #[default]
    Any,
    /// Served only to the address that belongs to the file's MAC: the one the desk's DHCP
    /// leased to it, or the one the kernel's neighbour table maps to it for a directly
    /// attached peer. Anyone else gets the answer for an unknown file.
    Owner,
}

impl DeviceFiles {
    /// The spelling in `provdesk.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceFiles::Any => "any",
            DeviceFiles::Owner => "owner",
        }
    }
}

/// Whether `cfg<mac>.xml` is encrypted. Secure by default: a desk whose `provdesk.toml` has
/// no `[encryption]` section encrypts too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionSettings {
    pub mode: EncryptionMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "kebab-case")]
pub enum EncryptionMode {
    /// Each device's XML is encrypted with its own generated password (kept in the
    /// inventory), which the binary `cfg<mac>` carries as P1359; a P1359 that a profile or
    /// the device sets explicitly wins.
    #[default]
    PerDevice,
    /// XML files are served in clear unless a profile or device sets P1359. Every SIP
    /// password on the desk is then readable by anyone who can fetch the file; `serve` warns.
    Off,
}

impl EncryptionMode {
    /// The spelling in `provdesk.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            EncryptionMode::PerDevice => "per-device",
            EncryptionMode::Off => "off",
        }
    }
}

impl EncryptionSettings {
    /// Whether XML files go out in clear by default, which the start-up summary warns about.
    pub fn is_off(&self) -> bool {
        self.mode == EncryptionMode::Off
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// `ADDR:PORT` for plain HTTP, or absent to not serve it.
    pub http: Option<String>,
    pub https: Option<String>,
    pub tftp: Option<String>,
    /// The URL path under which the config files are served, e.g. `/` or `/gs/`.
    pub base_path: String,
    /// The host name or address phones should use to reach this machine. When set, the
    /// builder fills P237/P192/P212 where profiles leave them empty.
    pub public_host: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> ServerSettings {
        ServerSettings {
            http: Some("0.0.0.0:8080".into()),
            https: None,
            tftp: Some("0.0.0.0:69".into()),
            base_path: "/".into(),
            public_host: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(default, deny_unknown_fields)]
pub struct DiscoverySettings {
    /// Unknown phones are recorded as `discovered`; with a profile named here they are
    /// enrolled into it on their first request instead.
    pub auto_enroll_profile: Option<String>,
    /// How many discovered devices the inventory keeps, so a flood of random MACs cannot
    /// grow the database without bound.
    pub max_discovered: u32,
}

impl Default for DiscoverySettings {
    fn default() -> DiscoverySettings {
        DiscoverySettings {
            auto_enroll_profile: None,
            max_discovered: 1000,
        }
    }
}

/// Fair shares under load: how much of each server one client address may hold. The
/// defaults are the servers' own (`provdesk_tftp::Config`, `provdesk_serve::http`); a test
/// in the server crate keeps them equal. Every value is at least 1.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSettings {
    /// TFTP transfers running at once; further requests are answered "server busy".
    pub tftp_transfers: u32,
    /// TFTP transfers running at once from one client address. A phone fetches its files
    /// one after another, so a few are plenty; a flood from one address gets no more.
    pub tftp_transfers_per_address: u32,
    /// HTTP(S) connections open at once, per server.
    pub http_connections: u32,
    /// HTTP(S) connections open at once from one client address, per server.
    pub http_connections_per_address: u32,
}

impl Default for LimitsSettings {
    fn default() -> LimitsSettings {
        LimitsSettings {
            tftp_transfers: 256,
            tftp_transfers_per_address: 8,
            http_connections: 1024,
            http_connections_per_address: 32,
        }
    }
}

impl LimitsSettings {
    /// Every value that cannot work, as `(field, message)`: a limit of 0 would refuse every
    /// request.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let defaults = LimitsSettings::default();
        [
            (
                "limits.tftp_transfers",
                self.tftp_transfers,
                defaults.tftp_transfers,
            ),
            (
                "limits.tftp_transfers_per_address",
                self.tftp_transfers_per_address,
                defaults.tftp_transfers_per_address,
            ),
            (
                "limits.http_connections",
                self.http_connections,
                defaults.http_connections,
            ),
            (
                "limits.http_connections_per_address",
                self.http_connections_per_address,
                defaults.http_connections_per_address,
            ),
        ]
        .into_iter()
        .filter(|(_, value, _)| *value == 0)
        .map(|(field, _, default)| {
            (
                field,
                format!("0 would refuse every request: use at least 1 (the default is {default})"),
            )
        })
        .collect()
    }
}

impl Desk {
    /// Opens an existing desk; a folder without `provdesk.toml` is not a desk.
    pub fn open(root: &Path) -> Result<Desk> {
        let settings_path = root.join(SETTINGS_FILE);
        if !settings_path.is_file() {
            return Err(Error::Invalid(format!(
                "{} is not a ProvDesk desk (no {SETTINGS_FILE}); run `provdesk init --desk {}` to create one",
                root.display(),
                root.display()
            )));
        }
        let settings = load_settings(&settings_path)?;
        Ok(Desk {
            root: root.to_path_buf(),
            settings,
        })
    }

    /// Opens the desk, creating it with the sample content first when it does not exist yet.
    pub fn open_or_init(root: &Path) -> Result<Desk> {
        if root.join(SETTINGS_FILE).is_file() {
            Desk::open(root)
        } else {
            Desk::init(root)
        }
    }

    /// Creates the desk folders and the sample files that are missing, then opens it.
    pub fn init(root: &Path) -> Result<Desk> {
        for dir in [PROFILES_DIR, MODELS_DIR, FIRMWARE_DIR, BUILD_DIR] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        }
        for (relative, content) in SAMPLE_FILES {
            let path = root.join(relative);
            if !path.exists() {
                fs::write(&path, content).map_err(|e| Error::io(&path, e))?;
            }
        }
        Desk::open(root)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn settings(&self) -> &DeskSettings {
        &self.settings
    }

    pub fn settings_path(&self) -> PathBuf {
        self.root.join(SETTINGS_FILE)
    }

    pub fn profiles_dir(&self) -> PathBuf {
        self.root.join(PROFILES_DIR)
    }

    pub fn firmware_dir(&self) -> PathBuf {
        self.root.join(FIRMWARE_DIR)
    }

    pub fn build_dir(&self) -> PathBuf {
        self.root.join(BUILD_DIR)
    }

    pub fn database_path(&self) -> PathBuf {
        self.root.join(DATABASE_FILE)
    }

    /// Opens (creating and migrating if needed) the desk's inventory.
    pub fn inventory(&self) -> Result<crate::inventory::Inventory> {
        let inventory = crate::inventory::Inventory::open(&self.database_path())?;
        inventory.set_discovery_cap(self.settings.discovery.max_discovered as usize);
        Ok(inventory)
    }

    /// The path shown to the technician for a file inside the desk (relative when possible).
    pub fn display_path(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root).unwrap_or(path).to_path_buf()
    }
}

fn load_settings(path: &Path) -> Result<DeskSettings> {
    let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_settings(path, &text)
}

/// The one parser of `provdesk.toml`, shared by opening a desk and by saving edited settings,
/// so both accept exactly the same files.
pub(crate) fn parse_settings(path: &Path, text: &str) -> Result<DeskSettings> {
    let settings: DeskSettings = toml::from_str(text).map_err(|e| {
        let position = e
            .span()
            .map(|span| {
                let (line, column) = line_column(text, span.start);
                format!(":{line}:{column}")
            })
            .unwrap_or_default();
        Error::Settings {
            path: PathBuf::from(format!("{}{position}", path.display())),
            message: e.message().to_string(),
        }
    })?;
    // A limit of 0 reads as a number but cannot work; `serve` must never start with one.
    if let Some((field, message)) = settings.limits.problems().into_iter().next() {
        let key = field.trim_start_matches("limits.");
        let position = text
            .lines()
            .position(|line| {
                line.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map(|index| format!(":{}", index + 1))
            .unwrap_or_default();
        return Err(Error::Settings {
            path: PathBuf::from(format!("{}{position}", path.display())),
            message: format!("{field}: {message}"),
        });
    }
    if let Some((field, message)) = settings
        .dhcp()
        .problems()
        .into_iter()
        .chain(settings.pnp().problems())
        .next()
    {
        return Err(Error::Settings {
            path: path.to_path_buf(),
            message: format!("{field}: {message}"),
        });
    }
    if let Some((field, message)) = settings.syslog().problems().into_iter().next() {
        return Err(Error::Settings {
            path: path.to_path_buf(),
            message: format!("{field}: {message}"),
        });
    }
    Ok(settings)
}

/// Replaces technician input (settings, firmware) durably: see [`crate::fsio`].
pub(crate) fn replace_file(
    target: &Path,
    write: impl FnOnce(&mut fs::File) -> std::io::Result<()>,
) -> Result<()> {
    crate::fsio::replace_with(target, crate::fsio::Replace::SYNCED, write)
}

/// The sample desk: enough to build and serve something meaningful on first start.
const SAMPLE_FILES: &[(&str, &str)] = &[
    (
        SETTINGS_FILE,
        include_str!("../../../assets/sample-desk/provdesk.toml"),
    ),
    (
        "profiles/global.toml",
        include_str!("../../../assets/sample-desk/profiles/global.toml"),
    ),
    (
        "profiles/office.toml",
        include_str!("../../../assets/sample-desk/profiles/office.toml"),
    ),
    (
        "profiles/models/gxp2170.toml",
        include_str!("../../../assets/sample-desk/profiles/models/gxp2170.toml"),
    ),
    (
        "devices-example.csv",
        include_str!("../../../assets/sample-desk/devices-example.csv"),
    ),
    (
        "firmware/README.txt",
        include_str!("../../../assets/sample-desk/firmware/README.txt"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_the_sample_and_keeps_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("desk");
        let desk = Desk::init(&root).unwrap();
        assert!(desk.profiles_dir().join("global.toml").is_file());
        assert!(root.join("profiles/models/gxp2170.toml").is_file());
        assert!(desk.build_dir().is_dir());
        assert_eq!(desk.settings().server.base_path, "/");

        fs::write(root.join("profiles/global.toml"), "# mine\n").unwrap();
        Desk::init(&root).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("profiles/global.toml")).unwrap(),
            "# mine\n"
        );
    }

    #[test]
    fn open_refuses_a_folder_that_is_not_a_desk() {
        let dir = tempfile::tempdir().unwrap();
        let err = Desk::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("provdesk init"), "{err}");
    }

    #[test]
    fn settings_errors_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(SETTINGS_FILE),
            "[server]\nhttp = \"0.0.0.0:80\"\nhtp = 1\n",
        )
        .unwrap();
        let err = Desk::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("provdesk.toml:3:1"), "{err}");
        assert!(err.contains("htp"), "{err}");
    }

    #[test]
    fn limits_default_when_absent_and_refuse_zero_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SETTINGS_FILE);
        fs::write(
            &path,
            "[limits]
tftp_transfers_per_address = 2
",
        )
        .unwrap();
        let limits = Desk::open(dir.path()).unwrap().settings().limits.clone();
        assert_eq!(
            limits,
            LimitsSettings {
                tftp_transfers_per_address: 2,
                ..LimitsSettings::default()
            }
        );
        fs::write(
            &path,
            "[server]\nhttp = \"0.0.0.0:80\"\n\n[limits]\nhttp_connections_per_address = 0\n",
        )
        .unwrap();
        let err = Desk::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("provdesk.toml:5"), "{err}");
        assert!(err.contains("limits.http_connections_per_address"), "{err}");
        assert!(err.contains("at least 1"), "{err}");
    }

    #[test]
    fn dhcp_is_off_by_default_and_bad_values_are_named() {
        let parse = |text: &str| parse_settings(Path::new("provdesk.toml"), text);
        let none = parse("").unwrap();
        assert_eq!(none.dhcp, None);
        assert_eq!(none.dhcp().interface, None);
        assert_eq!(none.dhcp().answer, DhcpAnswer::Phones);
        assert!(none.dhcp().option43);
        let on = parse(
            "[dhcp]\ninterface = \"eth1\"\npool_start = \"198.51.100.100\"\npool_end = \"198.51.100.199\"\nanswer = \"everyone\"\nntp = [\"198.51.100.1\"]\n",
        )
        .unwrap();
        let dhcp = on.dhcp();
        assert_eq!(dhcp.interface.as_deref(), Some("eth1"));
        assert_eq!(dhcp.answer, DhcpAnswer::Everyone);
        assert_eq!(dhcp.lease_secs, 3600);
        let err = parse("[dhcp]\nrouter = \"198.51.100\"\n").unwrap_err();
        assert!(err.to_string().contains("dhcp.router"), "{err}");
        let bad = DhcpSettings {
            pool_start: Some("198.51.100.200".into()),
            pool_end: Some("198.51.100.100".into()),
            dns: vec!["x".into()],
            lease_secs: 5,
            ..DhcpSettings::default()
        };
        let fields: Vec<String> = bad.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["dhcp.dns[0]", "dhcp.pool_end", "dhcp.lease_secs"]);
        assert!(parse("[dhcp]\nanswer = \"all\"\n").is_err());
        let offset = |text: &str| {
            DhcpSettings {
                utc_offset: Some(text.into()),
                ..DhcpSettings::default()
            }
            .utc_offset_secs()
            .unwrap()
        };
        assert_eq!(offset("+01:00"), Ok(3600));
        assert_eq!(offset("-05:30"), Ok(-19800));
        assert_eq!(offset("+2"), Ok(7200));
        assert_eq!(offset("+14:00"), Ok(50400));
        for bad in ["01:00", "+1:60", "+15:00", "-12:01", "UTC+1", "+", "+1:0x"] {
            assert!(offset(bad).is_err(), "{bad}");
        }
        let err = parse("[dhcp]\nutc_offset = \"CET\"\n").unwrap_err();
        assert!(err.to_string().contains("dhcp.utc_offset"), "{err}");
    }

    #[test]
    fn the_samples_commented_dhcp_and_pnp_sections_read_when_uncommented() {
        let sample = SAMPLE_FILES
            .iter()
            .find(|(name, _)| *name == SETTINGS_FILE)
            .map(|(_, text)| *text)
            .unwrap();
        let start = sample.find("# [dhcp]").expect("the sample shows [dhcp]");
        let uncommented: String = sample[start..]
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with('[')
                        || rest.split_once(" = ").is_some_and(|(key, _)| {
                            key.bytes()
                                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
                        }) =>
                {
                    rest
                }
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let text = format!("{}{uncommented}", &sample[..start]);
        let settings = parse_settings(Path::new("provdesk.toml"), &text).unwrap();
        let dhcp = settings.dhcp();
        assert_eq!(dhcp.interface.as_deref(), Some("eth1"));
        assert_eq!(dhcp.utc_offset_secs(), Some(Ok(3600)));
        assert_eq!(dhcp.ntp, ["192.168.1.1"]);
        assert_eq!(settings.pnp_interface(None).as_deref(), Some("eth1"));
        // As shipped, both stay off.
        let shipped = parse_settings(Path::new("provdesk.toml"), sample).unwrap();
        assert_eq!(shipped.dhcp, None);
        assert_eq!(shipped.pnp_interface(None), None);
    }

    #[test]
    fn dhcp_answers_on_the_flags_interface_else_the_settings_and_off_beats_both() {
        let parse = |text: &str| parse_settings(Path::new("provdesk.toml"), text).unwrap();
        let none = parse("");
        assert_eq!(none.dhcp_interface(None), None);
        assert_eq!(none.dhcp_interface(Some(" eth2 ")).as_deref(), Some("eth2"));
        let set = parse("[dhcp]\ninterface = \"eth1\"\n");
        assert_eq!(set.dhcp_interface(None).as_deref(), Some("eth1"));
        assert_eq!(set.dhcp_interface(Some("eth2")).as_deref(), Some("eth2"));
        assert_eq!(set.dhcp_interface(Some("Off")), None);
        assert_eq!(set.dhcp_interface(Some("")), None);
    }

    #[test]
    fn pnp_is_off_unless_the_settings_or_the_flag_name_an_interface() {
        let parse = |text: &str| parse_settings(Path::new("provdesk.toml"), text).unwrap();
        let none = parse("");
        assert_eq!(none.pnp, None);
        assert_eq!(none.pnp_interface(None), None);
        assert_eq!(none.pnp_interface(Some("")).as_deref(), Some(""));
        assert_eq!(none.pnp_interface(Some("d0")).as_deref(), Some("d0"));
        let set = parse("[pnp]\ninterface = \"eth1\"\n");
        assert_eq!(set.pnp_interface(None).as_deref(), Some("eth1"));
        assert_eq!(set.pnp_interface(Some("")).as_deref(), Some("eth1"));
        assert_eq!(set.pnp_interface(Some("d0")).as_deref(), Some("d0"));
        assert_eq!(set.pnp_interface(Some("off")), None);
        assert_eq!(set.pnp_interface(Some("OFF")), None);
        let err =
            parse_settings(Path::new("provdesk.toml"), "[pnp]\ninterface = \"a b\"\n").unwrap_err();
        assert!(err.to_string().contains("pnp.interface"), "{err}");
        assert!(parse_settings(Path::new("provdesk.toml"), "[pnp]\nport = 5060\n").is_err());
    }

    #[test]
    fn syslog_is_off_by_default_and_a_bad_address_is_named() {
        let parse = |text: &str| parse_settings(Path::new("provdesk.toml"), text);
        let none = parse("").unwrap();
        assert_eq!(none.syslog, None);
        assert_eq!(none.syslog().listen_address(), None);
        assert_eq!(none.syslog().level, crate::syslog::SyslogLevel::Info);
        let on = parse("[syslog]\nlisten = \"0.0.0.0:5514\"\nlevel = \"debug\"\n").unwrap();
        assert_eq!(on.syslog().listen_address(), Some("0.0.0.0:5514"));
        assert_eq!(on.syslog().level, crate::syslog::SyslogLevel::Debug);
        let off = parse("[syslog]\nlisten = \"off\"\n").unwrap();
        assert_eq!(off.syslog().listen_address(), None);
        let err = parse("[syslog]\nlisten = \"0.0.0.0\"\n").unwrap_err();
        assert!(err.to_string().contains("syslog.listen"), "{err}");
        assert!(err.to_string().contains("has no port"), "{err}");
        let err = parse("[syslog]\nlevel = \"loud\"\n").unwrap_err();
        assert!(err.to_string().contains("provdesk.toml:2"), "{err}");
    }

    #[test]
    fn encryption_is_per_device_unless_turned_off() {
        let parse = |text: &str| parse_settings(Path::new("provdesk.toml"), text);
        assert_eq!(
            parse("").unwrap().encryption.mode,
            EncryptionMode::PerDevice
        );
        let sample = include_str!("../../../assets/sample-desk/provdesk.toml");
        assert_eq!(
            parse(sample).unwrap().encryption.mode,
            EncryptionMode::PerDevice
        );
        let off = parse("[encryption]\nmode = \"off\"\n").unwrap();
        assert!(off.encryption.is_off());
        let err = parse("[encryption]\nmode = \"aes\"\n").unwrap_err();
        assert!(err.to_string().contains("provdesk.toml:2"), "{err}");
    }

    #[test]
    fn device_files_are_anyones_unless_bound_to_their_owner() {
        let parse = |text: &str| parse_settings(Path::new("provdesk.toml"), text);
        assert_eq!(parse("").unwrap().access.device_files, DeviceFiles::Any);
        let sample = include_str!("../../../assets/sample-desk/provdesk.toml");
        assert_eq!(parse(sample).unwrap().access.device_files, DeviceFiles::Any);
        let owner = parse("[access]\ndevice_files = \"owner\"\n").unwrap();
        assert_eq!(owner.access.device_files, DeviceFiles::Owner);
        assert_eq!(DeviceFiles::Owner.as_str(), "owner");
        let err = parse("[access]\nallow = []\ndevice_files = \"mine\"\n").unwrap_err();
        assert!(err.to_string().contains("provdesk.toml:3"), "{err}");
    }
}
