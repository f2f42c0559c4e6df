//! What the app shows of an open desk as a whole: where it is, how many devices, which
//! profiles and models the forms offer, and the catalogue's state.

use std::collections::BTreeSet;

use provdesk_core::Diagnostic;
use provdesk_core::inventory::{DeviceState, UNKNOWN_MODEL};
use provdesk_core::profile::{GLOBAL, ProfileSet};
use serde::Serialize;
use ts_rs::TS;

use crate::error::{DeskError, DeskResult};
use crate::service::DeskService;

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct DeskInfo {
    pub root: String,
    pub settings_file: String,
    pub settings_text: String,
    /// Devices in the inventory (discovered phones not counted).
    pub devices: usize,
    pub discovered: usize,
    /// Named profiles, `global` first.
    pub profiles: Vec<String>,
    /// Models with a file or a device, lowercase.
    pub models: Vec<String>,
    pub catalog_entries: usize,
    pub catalog_diagnostics: Vec<Diagnostic>,
}

impl DeskService {
    /// The desk at a glance, for the window's chrome and the forms' choices.
    pub fn info(&self) -> DeskResult<DeskInfo> {
        let desk = self.desk();
        let devices = self.inventory().list_devices()?;
        let discovered = devices
            .iter()
            .filter(|d| d.state == DeviceState::Discovered)
            .count();
        let profiles = ProfileSet::load(desk.root());
        let mut names = vec![GLOBAL.to_string()];
        names.extend(profiles.profile_names().map(str::to_string));
        let mut models: BTreeSet<String> = profiles.model_names().map(str::to_string).collect();
        models.extend(
            devices
                .iter()
                .filter(|d| d.model != UNKNOWN_MODEL)
                .map(|d| d.model.clone()),
        );
        let settings_path = desk.settings_path();
        let settings_text = std::fs::read_to_string(&settings_path)
            .map_err(|e| DeskError::io(&settings_path, e))?;
        Ok(DeskInfo {
            root: desk.root().display().to_string(),
            settings_file: settings_path.display().to_string(),
            settings_text,
            devices: devices.len() - discovered,
            discovered,
            profiles: names,
            models: models.into_iter().collect(),
            catalog_entries: self.catalog().len(),
            catalog_diagnostics: self.catalog_diagnostics().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_desk_at_a_glance() {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        let info = desk.info().unwrap();
        assert_eq!(info.profiles.first().map(String::as_str), Some("global"));
        assert!(
            info.profiles.iter().any(|p| p == "office"),
            "{:?}",
            info.profiles
        );
        assert_eq!((info.devices, info.discovered), (0, 0));
        assert!(info.catalog_entries > 0);
        assert!(
            info.settings_text.contains("[server]"),
            "{}",
            info.settings_text
        );
    }
}
