//! The Firmware screen's use-cases: the files of `DESK/firmware/` with their versions, which
//! devices fetch each, and adding, mapping and removing images (through
//! `provdesk_core::firmware`, which reads the folder once for the builder and for this
//! overview), then a build through the desk's one writer so the servers answer with the new
//! set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use provdesk_core::build::ArtifactKind;
use provdesk_core::firmware::{self, Affixes, FirmwareUse};
use provdesk_core::inventory::{DeviceState, UNKNOWN_MODEL};
use serde::Serialize;
use ts_rs::TS;

use crate::address::PhoneAddress;
use crate::error::{DeskError, DeskResult};
use crate::events::DeskEvent;
use crate::service::DeskService;

/// The Firmware screen: every served file, who fetches it, and the prefixes in effect.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct FirmwareOverview {
    pub files: Vec<FirmwareEntry>,
    /// P232/P233 pairs in effect across the inventory, most used first.
    pub affixes: Vec<Affixes>,
    /// Models in the inventory with no firmware file (their phones get a 404 for firmware).
    pub missing: Vec<MissingFirmware>,
    /// Where phones are told to fetch firmware (P192), the same story as everywhere.
    pub address: PhoneAddress,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct FirmwareEntry {
    /// The name inside `firmware/`.
    pub file: String,
    #[ts(type = "number")]
    pub size: u64,
    pub model: Option<String>,
    /// The version in the name of the file it was added from (or its own name).
    pub version: Option<String>,
    /// Inventory devices that will fetch this file, with the name each requests.
    pub devices: Vec<FirmwareUse>,
    /// Names the last build answers with this file.
    pub requests: Vec<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct MissingFirmware {
    pub model: String,
    pub devices: usize,
    pub file: String,
}

/// A change to the firmware folder, the overview after it, and what it means for phones.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct FirmwareChanged {
    pub overview: FirmwareOverview,
    pub message: String,
}

impl DeskService {
    pub fn firmware_overview(&self) -> DeskResult<FirmwareOverview> {
        let files = firmware::list(self.desk())?;
        let devices: Vec<_> = self
            .inventory()
            .list_devices()?
            .into_iter()
            .filter(|d| d.state == DeviceState::Inventory && d.model != UNKNOWN_MODEL)
            .collect();
        let (mut by_model, affixes) = firmware::uses(self.root(), &devices, &self.options());
        let manifest = self.manifest();
        let mut requests: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, entry) in &manifest.entries {
            if entry.kind == ArtifactKind::Firmware
                && let Some(file) = entry.file.strip_prefix("firmware/")
            {
                requests
                    .entry(file.to_string())
                    .or_default()
                    .push(name.clone());
            }
        }
        let served: BTreeSet<String> = files.iter().filter_map(|f| f.model.clone()).collect();
        let missing = by_model
            .iter()
            .filter(|(model, _)| !served.contains(*model))
            .map(|(model, uses)| MissingFirmware {
                model: model.clone(),
                devices: uses.len(),
                file: firmware::file_for_model(model),
            })
            .collect();
        let files = files
            .into_iter()
            .map(|f| FirmwareEntry {
                devices: f
                    .model
                    .as_ref()
                    .and_then(|m| by_model.remove(m))
                    .unwrap_or_default(),
                requests: requests.remove(&f.name).unwrap_or_default(),
                file: f.name,
                size: f.size,
                model: f.model,
                version: f.version,
            })
            .collect();
        Ok(FirmwareOverview {
            files,
            affixes,
            missing,
            address: self.phone_address(),
        })
    }

    /// Copies the image at `source` into `firmware/`, as `<model>fw.bin` for each of
    /// `models` (or under its own name when none are given), keeping the version its name
    /// carries. Refuses a file that cannot be an image.
    pub fn add_firmware(&self, source: &Path, models: &[String]) -> DeskResult<FirmwareChanged> {
        if source.as_os_str().is_empty() {
            return Err(DeskError::invalid(
                "choose a firmware file first (Choose file… or type its path)",
            ));
        }
        let written = firmware::add(self.desk(), source, models)?;
        let version = firmware::version_in_name(
            &source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
        .map(|v| format!(" (version {v})"))
        .unwrap_or_default();
        let message = format!(
            "Added {}{version} as {}.",
            source.display(),
            names(&written)
        );
        self.firmware_changed(message)
    }

    /// Makes `firmware/<file>` answer exactly `models`.
    pub fn map_firmware(&self, file: &str, models: &[String]) -> DeskResult<FirmwareChanged> {
        let now = firmware::map(self.desk(), file, models)?;
        self.firmware_changed(format!("firmware/{file} is now {}.", names(&now)))
    }

    pub fn remove_firmware(&self, file: &str) -> DeskResult<FirmwareChanged> {
        firmware::remove(self.desk(), file)?;
        self.firmware_changed(format!("Removed firmware/{file}."))
    }

    /// Rebuilds so the manifest (and a running server's store) includes the changed files,
    /// announces the change (after the build, so a screen that reloads sees what is served),
    /// then returns the new overview with `message`.
    fn firmware_changed(&self, message: String) -> DeskResult<FirmwareChanged> {
        let summary = self.build();
        self.events().emit(DeskEvent::FirmwareChanged);
        let summary = summary?;
        let message = if summary.published {
            format!("{message} Phones get it on their next firmware check.")
        } else {
            format!(
                "{message} The build has errors, so the servers keep the previous files: fix them on the Profiles or Devices screen."
            )
        };
        Ok(FirmwareChanged {
            overview: self.firmware_overview()?,
            message,
        })
    }
}

fn names(files: &[String]) -> String {
    files
        .iter()
        .map(|f| format!("firmware/{f}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(dir: &Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        let bytes: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn adds_with_its_version_serves_it_and_announces_the_change() {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        let mut events = desk.events().subscribe();
        let source = image(dir.path(), "gxp2170fw-1.0.11.23.bin");
        let changed = desk.add_firmware(&source, &["GXP2170".into()]).unwrap();
        assert!(
            changed
                .message
                .contains("(version 1.0.11.23) as firmware/gxp2170fw.bin."),
            "{}",
            changed.message
        );
        let entry = &changed.overview.files[0];
        assert_eq!(entry.file, "gxp2170fw.bin");
        assert_eq!(entry.version.as_deref(), Some("1.0.11.23"));
        assert_eq!(entry.requests, ["gxp2170fw.bin"], "the build serves it");
        let events: Vec<DeskEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
        assert!(events.contains(&DeskEvent::FirmwareChanged), "{events:?}");

        let renamed = desk
            .map_firmware("gxp2170fw.bin", &["gxp2160".into()])
            .unwrap();
        assert_eq!(renamed.overview.files[0].file, "gxp2160fw.bin");
        assert_eq!(
            renamed.overview.files[0].version.as_deref(),
            Some("1.0.11.23")
        );
        let removed = desk.remove_firmware("gxp2160fw.bin").unwrap();
        assert!(removed.overview.files.is_empty());
    }

    #[test]
    fn refuses_a_saved_error_page_by_name_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        let page = dir.path().join("GXP2170_1.0.11.23.bin");
        std::fs::write(&page, "<html><body>404 Not Found</body></html>").unwrap();
        let error = desk.add_firmware(&page, &["gxp2170".into()]).unwrap_err();
        assert!(
            error
                .message
                .starts_with("GXP2170_1.0.11.23.bin is an HTML page"),
            "{}",
            error.message
        );
        assert!(desk.firmware_overview().unwrap().files.is_empty());
    }
}
