//! SKELETON — the inventory helper replaces this with `inventory/` (mod.rs, csv.rs, migrations).
//! Signatures are the agreed interface.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Diagnostic, Mac, PName};

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("not implemented yet")]
    NotImplemented,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    Inventory,
    Discovered,
}

/// One row of the inventory. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Device {
    pub mac: Mac,
    /// Lowercase model, e.g. `gxp2170`.
    pub model: String,
    pub profile: Option<String>,
    pub name: Option<String>,
    pub vars: BTreeMap<String, String>,
    pub overrides: BTreeMap<PName, String>,
    pub state: DeviceState,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub last_ip: Option<String>,
    pub firmware_version: Option<String>,
    pub user_agent: Option<String>,
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
        }
    }
}

#[derive(Clone)]
pub struct Inventory {}

impl Inventory {
    pub fn open(_path: &Path) -> Result<Inventory, InventoryError> {
        Err(InventoryError::NotImplemented)
    }
    pub fn set_discovery_cap(&self, _cap: usize) {}
    pub fn list_devices(&self) -> Result<Vec<Device>, InventoryError> {
        Err(InventoryError::NotImplemented)
    }
}

/// Parses a device CSV; see the helper's full version.
pub fn parse_devices_csv(
    _text: &str,
    _profile_exists: &dyn Fn(&str) -> bool,
) -> (Vec<(usize, Device)>, Vec<Diagnostic>) {
    (Vec::new(), Vec::new())
}
