//! A device's provisioning status, derived from its fetch log and the current manifest: what a
//! technician watching a board of phones needs to know ("did it get its config, is it
//! downloading firmware, is what it has still current?").
//!
//! Invariant: pure functions of their inputs, no I/O; the caller reads the fetch log and the
//! manifest, and a running server adds its live transfers through [`LiveTransfers`].

mod ladder;

use std::collections::{BTreeMap, BTreeSet};

use crate::Mac;
use crate::build::{ArtifactKind, Manifest};
use crate::inventory::{Device, FetchLogEntry};

pub use self::ladder::{Rung, ladder, notify_failed, upgrade_applied};

/// How many of a device's newest fetch-log entries the status looks at: enough for several
/// boot sequences (each is 3–6 requests), few enough to read for hundreds of devices.
pub const STATUS_LOG_DEPTH: usize = 64;

/// Where a device is in its provisioning, newest evidence first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ProvisioningStatus {
    /// No request from this device has been logged.
    NeverSeen,
    /// The desk's DHCP responder leased it an address; it has not asked for a file yet.
    GotAddress { address: String },
    /// It asked for its provisioning server (SIP plug-and-play); no file request yet.
    AskedForServer,
    /// The device asks, but nothing of its own was served yet (misses, fallbacks).
    Requesting,
    /// It fetched current config, but not its own full XML (only the binary bootstrap file,
    /// or the shared `cfg<model>.xml`/`cfg.xml`); `version` is that artifact's build.
    GotConfig {
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        version: u64,
    },
    /// A transfer is under way (from a running server's progress events).
    FirmwareInProgress { percent: u8 },
    /// Its last successful fetch was a firmware image.
    FirmwareDone,
    /// It fetched its own XML and everything it fetched is still what the build serves.
    UpToDate,
    /// It came back after fetching its config (a request after a resync or reboot, or its
    /// syslog speaks after the fetch): the config was taken, not only downloaded.
    Applied,
    /// Applied, and the firmware it reports is the one the desk serves for its model.
    OnTargetFirmware,
    /// Something it fetched has changed in the build since: it needs to provision again.
    Stale,
    /// Its last request was refused (allow-list, authentication).
    Denied { reason: String },
    /// Its last transfer started and did not finish.
    Failed { reason: String },
    /// Its own values have errors (a variable it lacks, an override the catalogue refuses):
    /// the last build held its files back, so it is served its last good files, if any.
    NeedsAttention { reason: String },
}

impl ProvisioningStatus {
    /// A short label for tables: `up to date`, `firmware 45%`, `got config v3`.
    pub fn label(&self) -> String {
        match self {
            ProvisioningStatus::NeverSeen => "never seen".into(),
            ProvisioningStatus::GotAddress { address } => format!("got address {address}"),
            ProvisioningStatus::AskedForServer => "asked for server".into(),
            ProvisioningStatus::Applied => "applied".into(),
            ProvisioningStatus::OnTargetFirmware => "on target firmware".into(),
            ProvisioningStatus::Requesting => "requesting".into(),
            ProvisioningStatus::GotConfig { version } => format!("got config v{version}"),
            ProvisioningStatus::FirmwareInProgress { percent } => format!("firmware {percent}%"),
            ProvisioningStatus::FirmwareDone => "firmware done".into(),
            ProvisioningStatus::UpToDate => "up to date".into(),
            ProvisioningStatus::Stale => "stale".into(),
            ProvisioningStatus::Denied { .. } => "denied".into(),
            ProvisioningStatus::Failed { .. } => "failed".into(),
            ProvisioningStatus::NeedsAttention { .. } => "needs attention".into(),
        }
    }

    /// The reason behind a denied or failed status, for `device show`.
    pub fn reason(&self) -> Option<&str> {
        match self {
            ProvisioningStatus::Denied { reason }
            | ProvisioningStatus::Failed { reason }
            | ProvisioningStatus::NeedsAttention { reason } => Some(reason),
            _ => None,
        }
    }
}

/// Whether a fetch-log status text means the file was served (`200`, `206`).
fn served(entry: &FetchLogEntry) -> bool {
    matches!(entry.status.as_str(), "200" | "206")
}

/// What a logged request name was, judged by the current manifest and, for names the build no
/// longer has, by its shape.
fn kind_of(name: &str, manifest: &Manifest) -> Option<ArtifactKind> {
    if let Some(entry) = manifest.get(name) {
        return Some(entry.kind);
    }
    let lower = name.to_ascii_lowercase();
    (lower.ends_with("fw.bin")).then_some(ArtifactKind::Firmware)
}

/// The status of `device` from its fetch-log entries (newest first; entries of other devices
/// are ignored) and the manifest now being served. The rules, first match wins:
///
/// 0. The manifest holds the device back (`held`): `NeedsAttention` with its messages. What it
///    fetched matters less than that its configuration cannot be built.
/// 1. No entries: `NeverSeen`, or `Requesting` when the device was seen by other means
///    (`last_seen` is set).
/// 2. The newest entry was refused (`denied`): `Denied` with its reason.
/// 3. The newest entry is a transfer that broke off (`failed`): `Failed` with its reason.
/// 4. Nothing was ever served to it, or its newest entry is a miss while the build has no
///    file of its own: `Requesting`.
/// 5. Any file it was served (latest fetch per name) now has another hash in the manifest:
///    `Stale`. Names the build no longer has are not compared.
/// 6. Its newest served file is firmware: `FirmwareDone`.
/// 7. It was served its own `cfg<mac>.xml`: `UpToDate`.
/// 8. Otherwise (binary bootstrap only, or only the shared model/generic XML):
///    `GotConfig` with the newest served artifact's build version.
///
/// A live transfer overrides all of this; see [`LiveTransfers::overlay`].
pub fn derive(device: &Device, log: &[FetchLogEntry], manifest: &Manifest) -> ProvisioningStatus {
    if let Some(messages) = manifest.held.get(&device.mac) {
        return ProvisioningStatus::NeedsAttention {
            reason: messages.join("; "),
        };
    }
    let entries: Vec<&FetchLogEntry> = log
        .iter()
        .filter(|e| e.mac.is_none_or(|mac| mac == device.mac))
        .collect();
    let Some(newest) = entries.first() else {
        return if device.last_seen.is_some() {
            ProvisioningStatus::Requesting
        } else {
            ProvisioningStatus::NeverSeen
        };
    };
    let reason = || newest.reason.clone().unwrap_or_default();
    match newest.status.as_str() {
        "denied" => return ProvisioningStatus::Denied { reason: reason() },
        "failed" => return ProvisioningStatus::Failed { reason: reason() },
        _ => {}
    }
    let has_own_files = manifest.entries.values().any(|e| e.mac == Some(device.mac));
    let served_entries: Vec<&&FetchLogEntry> = entries.iter().filter(|e| served(e)).collect();
    if served_entries.is_empty() || (!served(newest) && !has_own_files) {
        return ProvisioningStatus::Requesting;
    }

    // The latest fetch of each name decides whether that name is still current.
    let mut latest: BTreeMap<String, &FetchLogEntry> = BTreeMap::new();
    for entry in &served_entries {
        latest
            .entry(entry.name.to_ascii_lowercase())
            .or_insert(entry);
    }
    let stale = latest.iter().any(|(name, entry)| {
        manifest
            .get(name)
            .is_some_and(|current| entry.artifact_hash.as_deref() != Some(current.hash.as_str()))
    });
    if stale {
        return ProvisioningStatus::Stale;
    }

    let newest_served = served_entries[0];
    if kind_of(&newest_served.name, manifest) == Some(ArtifactKind::Firmware) {
        return ProvisioningStatus::FirmwareDone;
    }
    let got_own_xml = latest.keys().any(|name| {
        manifest
            .get(name)
            .is_some_and(|e| e.kind == ArtifactKind::DeviceXml)
    });
    if got_own_xml {
        return ProvisioningStatus::UpToDate;
    }
    let version = manifest
        .get(&newest_served.name)
        .map_or(manifest.build, |e| e.version);
    ProvisioningStatus::GotConfig { version }
}

/// What the desk's own LAN responders know of a device: a DHCP lease it holds now, and
/// whether it asked for its provisioning server by plug-and-play. The caller reads it from
/// the inventory (`dhcp_leases`, `device_events` with source `dhcp`/`pnp`) or from the
/// servers' events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LanEvidence {
    /// The address of a lease that has not expired.
    pub leased: Option<String>,
    /// It sent a plug-and-play `SUBSCRIBE` for its provisioning server.
    pub asked_for_server: bool,
}

/// The rungs before the first fetch: a status [`derive`] could only call `NeverSeen` (or
/// `Requesting`, when the only sighting is the responders' and the device has logged no
/// request at all) becomes `AskedForServer` when it asked by plug-and-play, else
/// `GotAddress` when it holds a current lease from the desk. Asking for the server comes
/// after getting an address in a phone's boot, so it wins. Any other status is kept: a
/// request says more than DHCP or plug-and-play can.
pub fn before_first_fetch(
    derived: ProvisioningStatus,
    mac: Mac,
    log: &[FetchLogEntry],
    evidence: &LanEvidence,
) -> ProvisioningStatus {
    let requested = log.iter().any(|e| e.mac.is_none_or(|m| m == mac));
    let upgradable = match derived {
        ProvisioningStatus::NeverSeen => true,
        ProvisioningStatus::Requesting => !requested,
        _ => false,
    };
    if !upgradable {
        return derived;
    }
    if evidence.asked_for_server {
        return ProvisioningStatus::AskedForServer;
    }
    match &evidence.leased {
        Some(address) => ProvisioningStatus::GotAddress {
            address: address.clone(),
        },
        None => derived,
    }
}

#[cfg(test)]
mod before_first_fetch_tests {
    use super::*;

    fn mac() -> Mac {
        "000b82123456".parse().unwrap()
    }

    fn leased(address: &str) -> LanEvidence {
        LanEvidence {
            leased: Some(address.into()),
            asked_for_server: false,
        }
    }

    fn asked() -> LanEvidence {
        LanEvidence {
            leased: None,
            asked_for_server: true,
        }
    }

    fn request(mac: Option<Mac>) -> FetchLogEntry {
        FetchLogEntry {
            id: None,
            ts: 1,
            protocol: "http".into(),
            peer: "192.0.2.20:5000".into(),
            name: "cfg000b82123456.xml".into(),
            mac,
            user_agent: None,
            status: "404".into(),
            reason: None,
            bytes: 0,
            duration_ms: 1,
            artifact_hash: None,
        }
    }

    fn check(
        derived: ProvisioningStatus,
        log: &[FetchLogEntry],
        evidence: &LanEvidence,
        expected: ProvisioningStatus,
    ) {
        assert_eq!(before_first_fetch(derived, mac(), log, evidence), expected);
    }

    #[test]
    fn a_lease_turns_never_seen_into_got_address() {
        check(
            ProvisioningStatus::NeverSeen,
            &[],
            &leased("192.0.2.50"),
            ProvisioningStatus::GotAddress {
                address: "192.0.2.50".into(),
            },
        );
    }

    #[test]
    fn a_plug_and_play_request_is_asked_for_server_and_wins_over_the_lease() {
        check(
            ProvisioningStatus::NeverSeen,
            &[],
            &asked(),
            ProvisioningStatus::AskedForServer,
        );
        let both = LanEvidence {
            leased: Some("192.0.2.50".into()),
            asked_for_server: true,
        };
        check(
            ProvisioningStatus::NeverSeen,
            &[],
            &both,
            ProvisioningStatus::AskedForServer,
        );
        // The plug-and-play sighting made it `Requesting`; it has not requested a file.
        check(
            ProvisioningStatus::Requesting,
            &[],
            &both,
            ProvisioningStatus::AskedForServer,
        );
    }

    #[test]
    fn without_evidence_the_derived_status_stays() {
        check(
            ProvisioningStatus::NeverSeen,
            &[],
            &LanEvidence::default(),
            ProvisioningStatus::NeverSeen,
        );
        check(
            ProvisioningStatus::Requesting,
            &[],
            &LanEvidence::default(),
            ProvisioningStatus::Requesting,
        );
    }

    #[test]
    fn a_logged_request_says_more_than_dhcp_or_plug_and_play() {
        // A miss of its own: it asked for a file, so it is past these rungs.
        check(
            ProvisioningStatus::Requesting,
            &[request(Some(mac()))],
            &asked(),
            ProvisioningStatus::Requesting,
        );
        check(
            ProvisioningStatus::Requesting,
            &[request(None)],
            &leased("192.0.2.50"),
            ProvisioningStatus::Requesting,
        );
        // Another device's request is not this one's.
        let other: Mac = "000b82abcdef".parse().unwrap();
        check(
            ProvisioningStatus::Requesting,
            &[request(Some(other))],
            &asked(),
            ProvisioningStatus::AskedForServer,
        );
        for later in [
            ProvisioningStatus::UpToDate,
            ProvisioningStatus::Stale,
            ProvisioningStatus::GotConfig { version: 2 },
            ProvisioningStatus::Denied {
                reason: "allow-list".into(),
            },
            ProvisioningStatus::NeedsAttention {
                reason: "missing ext".into(),
            },
        ] {
            check(later.clone(), &[], &leased("192.0.2.50"), later);
        }
    }
}

/// Transfers under way on a running server, by device, fed by its progress and outcome
/// events. Bounded: a transfer is forgotten when its outcome arrives, and at most
/// [`LiveTransfers::MAX`] devices are tracked at once.
#[derive(Debug, Clone, Default)]
pub struct LiveTransfers {
    by_device: BTreeMap<Mac, (u64, Option<u64>)>,
}

impl LiveTransfers {
    /// More than a bench of phones downloading at once; a flood beyond it is not tracked.
    pub const MAX: usize = 4096;

    /// A transfer to `mac` reached `bytes` of `total`.
    pub fn progress(&mut self, mac: Mac, bytes: u64, total: Option<u64>) {
        if self.by_device.len() >= Self::MAX && !self.by_device.contains_key(&mac) {
            return;
        }
        self.by_device.insert(mac, (bytes, total));
    }

    /// A request of `mac` ended (whatever the outcome): its transfer is no longer live.
    pub fn finished(&mut self, mac: Mac) {
        self.by_device.remove(&mac);
    }

    /// Devices with a transfer under way.
    pub fn devices(&self) -> BTreeSet<Mac> {
        self.by_device.keys().copied().collect()
    }

    /// The derived status, unless a transfer of this device is under way.
    pub fn overlay(&self, mac: Mac, derived: ProvisioningStatus) -> ProvisioningStatus {
        match self.by_device.get(&mac) {
            Some((bytes, total)) => {
                let percent = match total {
                    Some(total) if *total > 0 => ((bytes.min(total) * 100) / total) as u8,
                    _ => 0,
                };
                ProvisioningStatus::FirmwareInProgress { percent }
            }
            None => derived,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::ManifestEntry;

    const MAC: &str = "000b82123456";

    fn mac() -> Mac {
        MAC.parse().unwrap()
    }

    fn manifest(entries: &[(&str, ArtifactKind, &str, u64)]) -> Manifest {
        let mut manifest = Manifest {
            build: 9,
            ..Manifest::default()
        };
        for (name, kind, hash, version) in entries {
            let own = matches!(kind, ArtifactKind::DeviceXml | ArtifactKind::DeviceBinary);
            manifest.entries.insert(
                name.to_string(),
                ManifestEntry {
                    file: format!("build/{name}"),
                    hash: hash.to_string(),
                    input: String::new(),
                    version: *version,
                    kind: *kind,
                    mac: own.then(mac),
                    model: None,
                    encrypted: false,
                    size: 1,
                },
            );
        }
        manifest
    }

    fn built() -> Manifest {
        manifest(&[
            (&format!("cfg{MAC}"), ArtifactKind::DeviceBinary, "b1", 3),
            (&format!("cfg{MAC}.xml"), ArtifactKind::DeviceXml, "x1", 4),
            ("cfggxp2170.xml", ArtifactKind::ModelXml, "m1", 2),
            ("gxp2170fw.bin", ArtifactKind::Firmware, "f1", 1),
        ])
    }

    /// A log entry; `spec` is `name status hash`, with `-` for no hash.
    fn entry(ts: i64, spec: &str) -> FetchLogEntry {
        let parts: Vec<&str> = spec.split_whitespace().collect();
        FetchLogEntry {
            id: None,
            ts,
            protocol: "tftp".into(),
            peer: "192.0.2.1:1000".into(),
            name: parts[0].replace("MAC", MAC),
            mac: Some(mac()),
            user_agent: None,
            status: parts[1].into(),
            reason: Some(format!("reason {ts}")),
            bytes: 1,
            duration_ms: 1,
            artifact_hash: (parts[2] != "-").then(|| parts[2].to_string()),
        }
    }

    /// `specs` are oldest first, as a phone makes them; the log is newest first.
    fn check(specs: &[&str], manifest: &Manifest, expected: ProvisioningStatus) {
        let mut log: Vec<FetchLogEntry> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| entry(i as i64, s))
            .collect();
        log.reverse();
        let device = Device::new(mac(), "gxp2170");
        assert_eq!(derive(&device, &log, manifest), expected, "{specs:?}");
    }

    #[test]
    fn a_held_device_needs_attention_whatever_it_fetched() {
        let mut held = built();
        held.held.insert(
            mac(),
            vec!["profiles/office.toml:9:10: error: P34: undefined variable `sip_secret`".into()],
        );
        let expected = ProvisioningStatus::NeedsAttention {
            reason: "profiles/office.toml:9:10: error: P34: undefined variable `sip_secret`".into(),
        };
        check(&[], &held, expected.clone());
        check(&["cfgMAC.xml 200 x1"], &held, expected.clone());
        assert_eq!(expected.label(), "needs attention");
        assert!(expected.reason().unwrap().contains("sip_secret"));
        // Another device's problem is not this one's.
        let mut other = built();
        other
            .held
            .insert("000b82000009".parse().unwrap(), vec!["x".into()]);
        check(&["cfgMAC.xml 200 x1"], &other, ProvisioningStatus::UpToDate);
    }

    #[test]
    fn never_seen_without_log_and_requesting_when_seen_otherwise() {
        check(&[], &built(), ProvisioningStatus::NeverSeen);
        let mut device = Device::new(mac(), "gxp2170");
        device.last_seen = Some(1);
        assert_eq!(
            derive(&device, &[], &built()),
            ProvisioningStatus::Requesting
        );
    }

    #[test]
    fn requesting_while_only_misses_were_logged() {
        check(
            &["cfgMAC.xml 404 -", "cfgMAC 404 -"],
            &manifest(&[]),
            ProvisioningStatus::Requesting,
        );
        // An unknown device that was served only misses, and then asks again.
        check(
            &["cfggxp2170.xml 200 m1", "cfgMAC.xml 404 -"],
            &manifest(&[("cfggxp2170.xml", ArtifactKind::ModelXml, "m1", 2)]),
            ProvisioningStatus::Requesting,
        );
    }

    #[test]
    fn got_config_with_only_the_bootstrap_or_a_shared_file() {
        check(
            &["cfgMAC 200 b1"],
            &built(),
            ProvisioningStatus::GotConfig { version: 3 },
        );
        check(
            &["cfgMAC.xml 404 -", "cfggxp2170.xml 200 m1"],
            &built(),
            ProvisioningStatus::GotConfig { version: 2 },
        );
    }

    #[test]
    fn up_to_date_once_its_own_xml_is_current() {
        check(
            &["cfgMAC 200 b1", "cfgMAC.xml 200 x1"],
            &built(),
            ProvisioningStatus::UpToDate,
        );
        // HT502 order: XML first, then the binary.
        check(
            &["cfgMAC.xml 200 x1", "cfgMAC 200 b1"],
            &built(),
            ProvisioningStatus::UpToDate,
        );
        // A miss for a name the build does not have does not undo it.
        check(
            &["cfgMAC.xml 200 x1", "cfgMAC.cfg 404 -"],
            &built(),
            ProvisioningStatus::UpToDate,
        );
    }

    #[test]
    fn stale_when_anything_it_fetched_changed() {
        check(
            &["cfgMAC 200 b0", "cfgMAC.xml 200 x1"],
            &built(),
            ProvisioningStatus::Stale,
        );
        check(&["cfgMAC.xml 200 x0"], &built(), ProvisioningStatus::Stale);
        // Fetching the new version again makes it current.
        check(
            &["cfgMAC.xml 200 x0", "cfgMAC.xml 200 x1"],
            &built(),
            ProvisioningStatus::UpToDate,
        );
    }

    #[test]
    fn firmware_done_after_a_completed_download() {
        check(
            &["cfgMAC.xml 200 x1", "gxp2170fw.bin 200 f1"],
            &built(),
            ProvisioningStatus::FirmwareDone,
        );
        // After the reboot it fetches its config again.
        check(
            &[
                "cfgMAC.xml 200 x1",
                "gxp2170fw.bin 200 f1",
                "cfgMAC.xml 200 x1",
            ],
            &built(),
            ProvisioningStatus::UpToDate,
        );
    }

    #[test]
    fn denied_and_failed_come_from_the_newest_entry() {
        check(
            &["cfgMAC.xml 200 x1", "cfgMAC.xml denied -"],
            &built(),
            ProvisioningStatus::Denied {
                reason: "reason 1".into(),
            },
        );
        check(
            &["gxp2170fw.bin failed -"],
            &built(),
            ProvisioningStatus::Failed {
                reason: "reason 0".into(),
            },
        );
    }

    #[test]
    fn other_devices_entries_are_ignored() {
        let mut other = entry(5, "cfgMAC.xml denied -");
        other.mac = Some("000b82000001".parse().unwrap());
        let device = Device::new(mac(), "gxp2170");
        let log = vec![other, entry(1, "cfgMAC.xml 200 x1")];
        assert_eq!(
            derive(&device, &log, &built()),
            ProvisioningStatus::UpToDate
        );
    }

    #[test]
    fn live_transfers_overlay_the_derived_status_until_they_end() {
        let mut live = LiveTransfers::default();
        live.progress(mac(), 450, Some(1000));
        assert_eq!(
            live.overlay(mac(), ProvisioningStatus::UpToDate),
            ProvisioningStatus::FirmwareInProgress { percent: 45 }
        );
        live.progress(mac(), 10, None);
        assert_eq!(
            live.overlay(mac(), ProvisioningStatus::UpToDate),
            ProvisioningStatus::FirmwareInProgress { percent: 0 }
        );
        live.finished(mac());
        assert_eq!(
            live.overlay(mac(), ProvisioningStatus::Stale),
            ProvisioningStatus::Stale
        );
    }

    #[test]
    fn serializes_with_a_state_tag_and_has_labels() {
        let json = serde_json::to_value(ProvisioningStatus::GotConfig { version: 3 }).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"state": "got-config", "version": 3})
        );
        let json = serde_json::to_value(ProvisioningStatus::UpToDate).unwrap();
        assert_eq!(json, serde_json::json!({"state": "up-to-date"}));
        assert_eq!(
            ProvisioningStatus::FirmwareInProgress { percent: 7 }.label(),
            "firmware 7%"
        );
        assert_eq!(ProvisioningStatus::NeverSeen.label(), "never seen");
    }
}
