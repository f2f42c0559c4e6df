//! The inventory: which phones the desk knows (with their profile, variables and overrides),
//! which it has only seen (`discovered`), and the log of every file fetched. Stored in SQLite
//! (`DESK/provdesk.db`, WAL, mode 0600) and safe to share between threads.
//!
//! Invariants: a stored MAC is 12 lowercase hex digits; a stored model matches
//! `[a-z0-9][a-z0-9_-]*`; custom variable names match `[A-Za-z_][A-Za-z0-9_]*` and never shadow
//! a built-in variable; every write is one transaction; the schema only moves forward through
//! `migrate.rs`. Domain types here are plain; SQL rows live in `rows.rs`, CSV in `csv.rs`.

mod csv;
mod db;
mod device_events;
mod dhcp;
mod firmware_history;
mod history;
mod migrate;
mod rows;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::{Mac, PName};

pub use self::csv::{parse_devices_csv, parse_devices_csv_bytes};
pub use self::db::{DEFAULT_DISCOVERY_CAP, Inventory};
pub use self::device_events::{DeviceEvent, DeviceEventQuery, EventSource, NewDeviceEvent};
pub use self::dhcp::DhcpLease;
pub use self::history::FetchLogPage;

/// What went wrong, with the database's path, the operation and the device where known.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: cannot open the inventory database: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{}: database schema version {found} is newer than this ProvDesk knows ({known}); use a newer ProvDesk or another desk", path.display())]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{}: schema migration {version} failed: {source}", path.display())]
    Migration {
        path: PathBuf,
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    /// A query failed; `operation` names the API call (`upsert_device`, `fetch_log`, …).
    #[error("{}: {operation}{}: {source}", path.display(), for_device(mac))]
    Sql {
        path: PathBuf,
        operation: &'static str,
        mac: Option<Mac>,
        #[source]
        source: rusqlite::Error,
    },
    /// A stored device row cannot be read back (e.g. its `vars` JSON is not an object of
    /// strings). `mac` is the stored text, since the MAC itself may be the corrupt column.
    #[error("{}: device {mac}: column `{column}` is corrupt: {detail}", path.display())]
    CorruptDevice {
        path: PathBuf,
        mac: String,
        column: &'static str,
        detail: String,
    },
    #[error("{}: fetch log entry {id}: column `{column}` is corrupt: {detail}", path.display())]
    CorruptFetchLog {
        path: PathBuf,
        id: i64,
        column: &'static str,
        detail: String,
    },
    #[error("{operation}: device {mac} is not in the inventory")]
    UnknownDevice { operation: &'static str, mac: Mac },
    /// The caller handed over a device that would break the inventory's invariants.
    #[error("{operation}: device {mac}: {reason}")]
    InvalidDevice {
        operation: &'static str,
        mac: Mac,
        reason: String,
    },
}

fn for_device(mac: &Option<Mac>) -> String {
    mac.map(|m| format!(" (device {m})")).unwrap_or_default()
}

/// Whether a device is one the technician manages or one that merely asked for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    Inventory,
    Discovered,
}

impl DeviceState {
    /// The spelling stored in the `state` column and used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Inventory => "inventory",
            DeviceState::Discovered => "discovered",
        }
    }
}

/// One row of the inventory. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Device {
    pub mac: Mac,
    /// Lowercase model, e.g. `gxp2170`; `unknown` for a discovered phone that did not say.
    pub model: String,
    pub profile: Option<String>,
    pub name: Option<String>,
    /// Custom variables for profile templates (`{{ ext }}`).
    pub vars: BTreeMap<String, String>,
    /// Per-device P-values, the last layer of the effective config.
    pub overrides: BTreeMap<PName, String>,
    pub state: DeviceState,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub last_ip: Option<String>,
    pub firmware_version: Option<String>,
    pub user_agent: Option<String>,
    /// The password ProvDesk generated for this device's `cfg<mac>.xml` (P1359 when
    /// `[encryption] mode = "per-device"`). A secret: serde never writes it, so no JSON
    /// output or event carries it. `None` when writing a device keeps the stored one (or has
    /// the inventory generate one for a new row).
    #[serde(default, skip_serializing)]
    pub xml_password: Option<String>,
}

/// Characters of generated XML passwords: letters and digits only, which every field of a
/// phone's web UI, the P1359 value and a shell's `-pass pass:` take without quoting.
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// Length of generated XML passwords: 24 of 57 characters is about 140 bits.
pub const XML_PASSWORD_LENGTH: usize = 24;

/// A fresh random XML password (P1359) for one device, from the OS's random source.
pub fn generate_xml_password() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..XML_PASSWORD_LENGTH)
        .map(|_| char::from(PASSWORD_ALPHABET[rng.random_range(0..PASSWORD_ALPHABET.len())]))
        .collect()
}

impl Device {
    pub fn new(mac: Mac, model: &str) -> Device {
        Device {
            mac,
            model: model.to_ascii_lowercase(),
            profile: None,
            name: None,
            vars: BTreeMap::new(),
            overrides: BTreeMap::new(),
            state: DeviceState::Inventory,
            first_seen: None,
            last_seen: None,
            last_ip: None,
            firmware_version: None,
            user_agent: None,
            xml_password: None,
        }
    }

    /// The first reason this device cannot be stored, if any.
    pub fn problem(&self) -> Option<String> {
        if let Some(reason) = model_problem(&self.model) {
            return Some(reason);
        }
        self.vars
            .keys()
            .find_map(|name| variable_name_problem(name))
    }
}

/// The model a discovered phone gets when it did not name one.
pub const UNKNOWN_MODEL: &str = "unknown";

/// A phone seen on the wire (a fetch with a MAC, a User-Agent, a DHCP request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub mac: Mac,
    /// As the phone spells it (`GXP2170`); stored lowercased.
    pub model: Option<String>,
    pub firmware_version: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Unix milliseconds.
    pub at: i64,
}

impl Sighting {
    /// A sighting that says nothing but the MAC and the time; fill in what the phone told.
    pub fn new(mac: Mac, at: i64) -> Sighting {
        Sighting {
            mac,
            model: None,
            firmware_version: None,
            ip: None,
            user_agent: None,
            at,
        }
    }
}

/// What `record_sighting` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SightingOutcome {
    /// The MAC was already stored (inventory or discovered); its seen fields were updated.
    Known,
    /// A new `discovered` row was inserted.
    Discovered,
    /// The MAC is new but the discovered rows are at the cap; nothing was stored.
    CapReached,
}

/// One fetch as the servers report it; mirrors a `fetch_log` row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct FetchLogEntry {
    /// Assigned by the database; ignored by `append_fetch_log`, `Some` when read back.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub id: Option<i64>,
    /// Unix milliseconds.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub ts: i64,
    /// `tftp`, `http`, `https`.
    pub protocol: String,
    /// The peer's address, `ip:port`.
    pub peer: String,
    /// The requested file name.
    pub name: String,
    #[cfg_attr(feature = "ts", ts(as = "Option<String>"))]
    pub mac: Option<Mac>,
    pub user_agent: Option<String>,
    /// `200`, `404`, `denied`, `tftp-error-1`, `completed`, `aborted`, …
    pub status: String,
    pub reason: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub bytes: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub duration_ms: u64,
    pub artifact_hash: Option<String>,
}

impl FetchLogEntry {
    /// This entry as a row to append.
    pub fn as_new(&self) -> NewFetch<'_> {
        NewFetch {
            ts: self.ts,
            protocol: &self.protocol,
            peer: Peer::Text(&self.peer),
            name: &self.name,
            mac: self.mac,
            user_agent: self.user_agent.as_deref(),
            status: Cow::Borrowed(&self.status),
            reason: self.reason.as_deref(),
            bytes: self.bytes,
            duration_ms: self.duration_ms,
            artifact_hash: self.artifact_hash.as_deref(),
        }
    }
}

/// A fetch to append to the log, borrowed from whatever reported it: the recorder writes the
/// servers' events as they are, without first copying their strings into a
/// [`FetchLogEntry`] each (in a boot storm, five allocations a request).
#[derive(Clone)]
pub struct NewFetch<'a> {
    pub ts: i64,
    pub protocol: &'a str,
    pub peer: Peer<'a>,
    pub name: &'a str,
    pub mac: Option<Mac>,
    pub user_agent: Option<&'a str>,
    pub status: Cow<'a, str>,
    pub reason: Option<&'a str>,
    pub bytes: u64,
    pub duration_ms: u64,
    pub artifact_hash: Option<&'a str>,
}

/// The peer of a fetch, stored as `ip:port`.
#[derive(Debug, Clone, Copy)]
pub enum Peer<'a> {
    Address(std::net::SocketAddr),
    /// Already in that form.
    Text(&'a str),
}

impl Peer<'_> {
    /// Writes `ip:port` into `out`. An IPv4 peer, every phone in practice, is spelled by
    /// hand: `SocketAddr`'s `Display` was a tenth of the fetch log's cost in a storm.
    pub fn write_to(&self, out: &mut String) {
        use std::fmt::Write as _;
        match self {
            Peer::Address(std::net::SocketAddr::V4(v4)) => {
                let mut digits = itoa::Buffer::new();
                for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push('.');
                    }
                    out.push_str(digits.format(octet));
                }
                out.push(':');
                out.push_str(digits.format(v4.port()));
            }
            Peer::Address(other) => {
                let _ = write!(out, "{other}");
            }
            Peer::Text(text) => out.push_str(text),
        }
    }
}

/// Filters for `Inventory::fetch_log`. The default returns every entry, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchLogQuery {
    pub mac: Option<Mac>,
    /// Only entries with `ts >= since` (Unix milliseconds).
    pub since: Option<i64>,
    pub limit: Option<usize>,
}

/// Variable names every device has already (its columns and the server's address), which a
/// custom variable must not shadow. Compared case-insensitively, because `Name` next to
/// `name` in a template is a trap.
pub const BUILTIN_VARIABLES: &[&str] = &[
    "mac",
    "model",
    "profile",
    "name",
    "state",
    "first_seen",
    "last_seen",
    "last_ip",
    "firmware_version",
    "user_agent",
    "server_host",
    "server_port",
];

/// Why `model` is not a stored model spelling, if it is not.
pub fn model_problem(model: &str) -> Option<String> {
    let mut bytes = model.bytes();
    let ok = match bytes.next() {
        Some(first) => {
            (first.is_ascii_lowercase() || first.is_ascii_digit())
                && bytes
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        }
        None => return Some("the model is empty".to_string()),
    };
    (!ok).then(|| {
        format!(
            "invalid model {model:?}: use lowercase letters, digits, '-' and '_', starting with a letter or digit (e.g. gxp2170)"
        )
    })
}

/// Why `name` cannot be a custom variable, if it cannot.
pub fn variable_name_problem(name: &str) -> Option<String> {
    let mut bytes = name.bytes();
    let ok = match bytes.next() {
        Some(first) => {
            (first.is_ascii_alphabetic() || first == b'_')
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
        None => false,
    };
    if !ok {
        return Some(format!(
            "invalid variable name {name:?}: use letters, digits and '_', not starting with a digit"
        ));
    }
    BUILTIN_VARIABLES
        .iter()
        .any(|b| b.eq_ignore_ascii_case(name))
        .then(|| format!("variable name {name:?} is taken by a built-in variable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_spelled_as_socket_addr_displays_them() {
        for text in [
            "0.0.0.0:0",
            "192.168.1.20:5060",
            "255.255.255.255:65535",
            "10.0.0.9:69",
            "[::1]:8080",
            "[fe80::1%2]:50000",
        ] {
            let address: std::net::SocketAddr = text.parse().unwrap();
            let mut out = String::from("kept ");
            Peer::Address(address).write_to(&mut out);
            assert_eq!(out, format!("kept {address}"));
            let mut out = String::new();
            Peer::Text(text).write_to(&mut out);
            assert_eq!(out, text);
        }
    }

    fn check_model(model: &str, ok: bool) {
        assert_eq!(model_problem(model).is_none(), ok, "model {model:?}");
    }

    fn check_variable(name: &str, expected: Option<&str>) {
        match (variable_name_problem(name), expected) {
            (None, None) => {}
            (Some(got), Some(want)) => assert!(got.contains(want), "{name:?}: {got}"),
            (got, want) => panic!("{name:?}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn models_are_lowercase_words() {
        check_model("gxp2170", true);
        check_model("ht-802", true);
        check_model("wp_820", true);
        check_model("2170", true);
        check_model("GXP2170", false);
        check_model("", false);
        check_model("-gxp", false);
        check_model("gxp 2170", false);
    }

    #[test]
    fn variable_names_are_identifiers_that_shadow_nothing() {
        check_variable("ext", None);
        check_variable("_x1", None);
        check_variable("Room_2", None);
        check_variable("2x", Some("invalid variable name"));
        check_variable("", Some("invalid variable name"));
        check_variable("sip-user", Some("invalid variable name"));
        check_variable("server_host", Some("built-in"));
        check_variable("Last_IP", Some("built-in"));
    }

    #[test]
    fn device_problem_names_the_first_issue() {
        let mac: Mac = "000b82000001".parse().unwrap();
        assert_eq!(Device::new(mac, "GXP2170").problem(), None);
        let mut device = Device::new(mac, "gxp 2170");
        assert!(device.problem().unwrap().contains("invalid model"));
        device.model = "gxp2170".into();
        device.vars.insert("a b".into(), "x".into());
        assert!(device.problem().unwrap().contains("\"a b\""));
    }

    #[test]
    fn generated_passwords_are_long_plain_and_different() {
        let a = generate_xml_password();
        let b = generate_xml_password();
        assert_eq!(a.len(), XML_PASSWORD_LENGTH);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
        let mut device = Device::new("000b82000001".parse().unwrap(), "gxp2170");
        device.xml_password = Some(a.clone());
        let json = serde_json::to_string(&device).unwrap();
        assert!(!json.contains(&a), "the password leaked into JSON: {json}");
    }

    #[test]
    fn errors_cross_threads() {
        // The servers hand errors to other tasks and the CLI wraps them in anyhow.
        fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
        assert_error::<InventoryError>();
    }

    #[test]
    fn errors_say_where_and_what() {
        let err = InventoryError::Sql {
            path: "/desk/provdesk.db".into(),
            operation: "upsert_device",
            mac: Some("000b82000001".parse().unwrap()),
            source: rusqlite::Error::QueryReturnedNoRows,
        };
        assert_eq!(
            err.to_string(),
            "/desk/provdesk.db: upsert_device (device 000b82000001): Query returned no rows"
        );
    }
}
