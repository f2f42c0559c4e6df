//! SQLite rows ⇄ domain types. Rows are read as plain columns first and decoded afterwards,
//! so a corrupt column becomes an `InventoryError` naming the device and column, never a panic.
//!
//! Invariant: the column lists here (`DEVICE_COLUMNS`, `FETCH_LOG_COLUMNS`) and the `from_row`
//! functions agree in order; every SELECT in `db.rs` uses these constants.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Row;

use super::{Device, DeviceState, FetchLogEntry, InventoryError};
use crate::{Mac, PName};

pub(crate) const DEVICE_COLUMNS: &str = "mac, model, profile, name, vars, overrides, state, \
     first_seen, last_seen, last_ip, firmware_version, user_agent, xml_password";

pub(crate) const FETCH_LOG_COLUMNS: &str = "id, ts, protocol, peer, name, mac, user_agent, \
     status, reason, bytes, duration_ms, artifact_hash";

/// A `devices` row as stored, before its text columns are checked.
pub(crate) struct DeviceRow {
    mac: String,
    model: String,
    profile: Option<String>,
    name: Option<String>,
    vars: String,
    overrides: String,
    state: String,
    first_seen: Option<i64>,
    last_seen: Option<i64>,
    last_ip: Option<String>,
    firmware_version: Option<String>,
    user_agent: Option<String>,
    xml_password: Option<String>,
}

impl DeviceRow {
    /// Reads the columns of `DEVICE_COLUMNS`, in that order.
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<DeviceRow> {
        Ok(DeviceRow {
            mac: row.get(0)?,
            model: row.get(1)?,
            profile: row.get(2)?,
            name: row.get(3)?,
            vars: row.get(4)?,
            overrides: row.get(5)?,
            state: row.get(6)?,
            first_seen: row.get(7)?,
            last_seen: row.get(8)?,
            last_ip: row.get(9)?,
            firmware_version: row.get(10)?,
            user_agent: row.get(11)?,
            xml_password: row.get(12)?,
        })
    }

    pub(crate) fn decode(self, path: &Path) -> Result<Device, InventoryError> {
        let corrupt = |column: &'static str, detail: String| InventoryError::CorruptDevice {
            path: path.to_path_buf(),
            mac: self.mac.clone(),
            column,
            detail,
        };
        let mac: Mac = self
            .mac
            .parse()
            .map_err(|e: crate::mac::MacError| corrupt("mac", e.to_string()))?;
        let vars: BTreeMap<String, String> =
            serde_json::from_str(&self.vars).map_err(|e| corrupt("vars", e.to_string()))?;
        let overrides: BTreeMap<PName, String> = serde_json::from_str(&self.overrides)
            .map_err(|e| corrupt("overrides", e.to_string()))?;
        let state = match self.state.as_str() {
            "inventory" => DeviceState::Inventory,
            "discovered" => DeviceState::Discovered,
            other => return Err(corrupt("state", format!("unknown state {other:?}"))),
        };
        Ok(Device {
            mac,
            model: self.model,
            profile: self.profile,
            name: self.name,
            vars,
            overrides,
            state,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            last_ip: self.last_ip,
            firmware_version: self.firmware_version,
            user_agent: self.user_agent,
            xml_password: self.xml_password,
        })
    }
}

/// The JSON texts stored in `vars` and `overrides`.
pub(crate) fn encode_maps(device: &Device) -> (String, String) {
    // Serializing string-keyed maps of strings cannot fail; an empty object is the safe
    // fallback should serde_json ever disagree.
    let vars = serde_json::to_string(&device.vars).unwrap_or_else(|_| "{}".into());
    let overrides = serde_json::to_string(&device.overrides).unwrap_or_else(|_| "{}".into());
    (vars, overrides)
}

/// A `fetch_log` row as stored.
pub(crate) struct FetchLogRow {
    id: i64,
    ts: i64,
    protocol: String,
    peer: String,
    name: String,
    mac: Option<String>,
    user_agent: Option<String>,
    status: String,
    reason: Option<String>,
    bytes: i64,
    duration_ms: i64,
    artifact_hash: Option<String>,
}

impl FetchLogRow {
    /// Reads the columns of `FETCH_LOG_COLUMNS`, in that order.
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<FetchLogRow> {
        Ok(FetchLogRow {
            id: row.get(0)?,
            ts: row.get(1)?,
            protocol: row.get(2)?,
            peer: row.get(3)?,
            name: row.get(4)?,
            mac: row.get(5)?,
            user_agent: row.get(6)?,
            status: row.get(7)?,
            reason: row.get(8)?,
            bytes: row.get(9)?,
            duration_ms: row.get(10)?,
            artifact_hash: row.get(11)?,
        })
    }

    pub(crate) fn decode(self, path: &Path) -> Result<FetchLogEntry, InventoryError> {
        let corrupt = |column: &'static str, detail: String| InventoryError::CorruptFetchLog {
            path: path.to_path_buf(),
            id: self.id,
            column,
            detail,
        };
        let mac = match &self.mac {
            Some(text) => Some(
                text.parse::<Mac>()
                    .map_err(|e| corrupt("mac", e.to_string()))?,
            ),
            None => None,
        };
        let bytes = u64::try_from(self.bytes).map_err(|e| corrupt("bytes", e.to_string()))?;
        let duration_ms =
            u64::try_from(self.duration_ms).map_err(|e| corrupt("duration_ms", e.to_string()))?;
        Ok(FetchLogEntry {
            id: Some(self.id),
            ts: self.ts,
            protocol: self.protocol,
            peer: self.peer,
            name: self.name,
            mac,
            user_agent: self.user_agent,
            status: self.status,
            reason: self.reason,
            bytes,
            duration_ms,
            artifact_hash: self.artifact_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// Stores one devices row with the given JSON texts and decodes it.
    fn check(vars: &str, overrides: &str, expected: Result<(), &str>) {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::migrate(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO devices (mac, model, vars, overrides, created_at, updated_at)
             VALUES ('000b82000001', 'gxp2170', ?1, ?2, 0, 0)",
            [vars, overrides],
        )
        .unwrap();
        let row = conn
            .query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices"),
                [],
                DeviceRow::from_row,
            )
            .unwrap();
        match (row.decode(Path::new("test.db")), expected) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(want)) => {
                let text = e.to_string();
                assert!(text.contains("000b82000001"), "{text}");
                assert!(text.contains(want), "{text}");
            }
            (got, want) => panic!("got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn decodes_good_json() {
        check(r#"{"ext":"101"}"#, r#"{"P47":"pbx"}"#, Ok(()));
    }

    #[test]
    fn corrupt_json_names_the_device_and_column() {
        check(r#"{"ext":101}"#, "{}", Err("column `vars`"));
        check("{}", r#"{"X47":"pbx"}"#, Err("column `overrides`"));
    }

    #[test]
    fn maps_encode_as_json_objects() {
        let mut device = Device::new("000b82000001".parse().unwrap(), "gxp2170");
        device.vars.insert("ext".into(), "101".into());
        device
            .overrides
            .insert("P47".parse().unwrap(), "pbx".into());
        assert_eq!(
            encode_maps(&device),
            (
                r#"{"ext":"101"}"#.to_string(),
                r#"{"P47":"pbx"}"#.to_string()
            )
        );
    }
}
