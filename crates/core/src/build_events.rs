//! A published build's changes in the history of the devices they reach: one
//! `device_events` row (source `build`, kind `changed`) per device whose own files, or whose
//! model's firmware, the build wrote, naming the files and the build number. Both the desk's
//! builds and the servers' publisher go through [`crate::build::Builder`], which calls this
//! after every publish, so no build is missing from a timeline.
//!
//! Invariants: at most [`KEPT_PER_DEVICE`] build rows are kept per device (older ones are
//! deleted in the same pass); a failure to write them never fails the build, it becomes a
//! warning in the report.

use std::collections::BTreeMap;

use crate::build::{ArtifactKind, BuildReport, Manifest};
use crate::inventory::{Device, EventSource, Inventory, NewDeviceEvent};
use crate::{Diagnostic, Mac};

/// Build rows kept per device: months of edits on a busy desk.
pub const KEPT_PER_DEVICE: usize = 100;

/// The diagnostic kind of a build whose changes could not be recorded.
pub const KIND_HISTORY: &str = "history";

/// The rows a published build adds: for each device of `devices` whose files it wrote.
pub fn changes(
    report: &BuildReport,
    manifest: &Manifest,
    devices: &[Device],
    at_ms: i64,
) -> Vec<NewDeviceEvent> {
    let mut by_device: BTreeMap<Mac, Vec<&str>> = BTreeMap::new();
    for name in &report.written {
        let Some(entry) = manifest.get(name) else {
            continue;
        };
        match (entry.mac, entry.kind, entry.model.as_deref()) {
            (Some(mac), _, _) => by_device.entry(mac).or_default().push(name),
            (None, ArtifactKind::Firmware, Some(model)) => {
                for device in devices.iter().filter(|d| d.model == model) {
                    by_device.entry(device.mac).or_default().push(name);
                }
            }
            _ => {}
        }
    }
    let known: std::collections::BTreeSet<Mac> = devices.iter().map(|d| d.mac).collect();
    by_device
        .into_iter()
        .filter(|(mac, _)| known.contains(mac))
        .map(|(mac, files)| NewDeviceEvent {
            at_ms,
            mac: Some(mac),
            peer: None,
            source: EventSource::Build,
            kind: "changed".into(),
            summary: format!("build {} changed {}", report.build, files.join(", ")),
            detail: Some(serde_json::json!({ "build": report.build, "files": files })),
        })
        .collect()
}

/// Appends the rows of a published build and trims each device's build rows; a failure is
/// reported as a warning in `report`.
pub fn record(
    inventory: &Inventory,
    manifest: &Manifest,
    devices: &[Device],
    report: &mut BuildReport,
) {
    let rows = changes(report, manifest, devices, now_ms());
    if rows.is_empty() {
        return;
    }
    let macs: Vec<Option<Mac>> = rows
        .iter()
        .filter(|r| r.mac.is_some())
        .map(|r| r.mac)
        .collect();
    let written = inventory
        .append_device_events(&rows)
        .and_then(|_| inventory.trim_device_events_of(EventSource::Build, &macs, KEPT_PER_DEVICE));
    if let Err(e) = written {
        report.diagnostics.push(Diagnostic::warning(
            KIND_HISTORY,
            format!("the build was published, but its changes could not be added to the devices' history: {e}"),
        ));
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::ManifestEntry;

    fn entry(kind: ArtifactKind, mac: Option<Mac>, model: Option<&str>) -> ManifestEntry {
        ManifestEntry {
            file: "build/x".into(),
            hash: "h".into(),
            input: "i".into(),
            version: 3,
            kind,
            mac,
            model: model.map(Into::into),
            encrypted: false,
            size: 1,
        }
    }

    #[test]
    fn each_device_gets_one_row_naming_its_files_and_its_models_firmware() {
        let a: Mac = "000b82000001".parse().unwrap();
        let b: Mac = "000b82000002".parse().unwrap();
        let c: Mac = "000b82000003".parse().unwrap();
        let mut manifest = Manifest::default();
        manifest.entries.insert(
            "cfg000b82000001.xml".into(),
            entry(ArtifactKind::DeviceXml, Some(a), None),
        );
        manifest.entries.insert(
            "cfg000b82000001".into(),
            entry(ArtifactKind::DeviceBinary, Some(a), None),
        );
        manifest.entries.insert(
            "gxp2170fw.bin".into(),
            entry(ArtifactKind::Firmware, None, Some("gxp2170")),
        );
        manifest.entries.insert(
            "cfggxp2170.xml".into(),
            entry(ArtifactKind::ModelXml, None, Some("gxp2170")),
        );
        let report = BuildReport {
            build: 3,
            written: vec![
                "cfg000b82000001".into(),
                "cfg000b82000001.xml".into(),
                "cfggxp2170.xml".into(),
                "gxp2170fw.bin".into(),
            ],
            ..BuildReport::default()
        };
        let devices = [
            Device::new(a, "gxp2170"),
            Device::new(b, "gxp2170"),
            Device::new(c, "ht802"),
        ];
        let rows = changes(&report, &manifest, &devices, 42);
        let summaries: Vec<(Option<Mac>, &str)> =
            rows.iter().map(|r| (r.mac, r.summary.as_str())).collect();
        assert_eq!(
            summaries,
            [
                (
                    Some(a),
                    "build 3 changed cfg000b82000001, cfg000b82000001.xml, gxp2170fw.bin"
                ),
                (Some(b), "build 3 changed gxp2170fw.bin"),
            ]
        );
        assert!(
            rows.iter()
                .all(|r| r.source == EventSource::Build && r.kind == "changed" && r.at_ms == 42)
        );
        assert_eq!(
            rows[1].detail,
            Some(serde_json::json!({ "build": 3, "files": ["gxp2170fw.bin"] }))
        );
        // Nothing written, nothing to say.
        assert!(changes(&BuildReport::default(), &manifest, &devices, 1).is_empty());
    }
}
