//! The top of the status ladder, read from a device's whole timeline rather than its fetch
//! log alone: never seen → got an address / asked → got config → **applied** → **on target
//! firmware**. "Up to date" only says a file was downloaded; "applied" needs the phone to
//! come back after the download, which only the timeline shows.
//!
//! Invariant: pure functions of their inputs, like the rest of `status`; every upgraded
//! status comes with the entries that prove it.

use crate::Mac;
use crate::build::Manifest;
use crate::inventory::Device;
use crate::timeline::{
    EntryId, FetchOutcome, FileRole, TimelineEntry, TimelineSource, fetches_newest_first, file_role,
};

use super::{LanEvidence, ProvisioningStatus, before_first_fetch, derive};

/// A status and the timeline entries behind it (empty when the status rests on no entry,
/// such as "never seen", or on the manifest alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    pub status: ProvisioningStatus,
    pub evidence: Vec<EntryId>,
}

/// The device's status from its timeline (oldest first), the manifest now served and the
/// firmware version the desk serves for its model: [`derive`] over its fetches, then
/// [`upgrade_applied`]. This is the one place the desk computes a device's status from.
pub fn ladder(
    device: &Device,
    timeline: &[TimelineEntry],
    manifest: &Manifest,
    target_firmware: Option<&str>,
    lan: &LanEvidence,
) -> Rung {
    let log = fetches_newest_first(timeline);
    let status = derive(device, &log, manifest);
    if let Some(upgraded) = upgrade_applied(&status, device, timeline, manifest, target_firmware) {
        return upgraded;
    }
    // Before its first request, what the responders saw of it is the best there is.
    let status = before_first_fetch(status, device.mac, &log, lan);
    let evidence = base_evidence(&status, device.mac, timeline, manifest);
    Rung { status, evidence }
}

/// `Applied` or `OnTargetFirmware` for a device whose derived status is `UpToDate`, when its
/// timeline shows it came back after fetching its current XML; `None` otherwise.
///
/// A fetch F of its own `cfg<mac>.xml` with the hash the manifest serves now is *applied*
/// when, after F and before any fallback request (`cfg<model>.xml`, `cfg.xml`: the phone
/// could not use F), one of these follows:
/// - a syslog line from it (it runs, and speaks);
/// - a new boot: a DHCP DISCOVER or a plug-and-play SUBSCRIBE from it;
/// - a new provisioning round: another request for its own XML;
/// - a NOTIFY (re-provision or reboot) the desk sent it that did not fail, and then any
///   request from it.
///
/// A NOTIFY row counts as failed when its kind or its detail's `status`/`code` says so: a
/// kind containing `fail`, `no-answer`, `timeout`, `error`, `refused` or `rejected`, or a
/// response code of 300 or more.
///
/// Applied becomes `OnTargetFirmware` when `target_firmware` is known and the firmware the
/// phone reports (its newest Grandstream User-Agent, else the inventory's record) is it.
pub fn upgrade_applied(
    status: &ProvisioningStatus,
    device: &Device,
    timeline: &[TimelineEntry],
    manifest: &Manifest,
    target_firmware: Option<&str>,
) -> Option<Rung> {
    if *status != ProvisioningStatus::UpToDate {
        return None;
    }
    let mut evidence = applied_evidence(device.mac, timeline, manifest)?;
    let Some(target) = target_firmware else {
        return Some(Rung {
            status: ProvisioningStatus::Applied,
            evidence,
        });
    };
    let reported = timeline
        .iter()
        .rev()
        .find_map(|entry| entry.reported_firmware().map(|version| (version, entry.id)));
    let on_target = match &reported {
        Some((version, id)) if version == target => {
            if !evidence.contains(id) {
                evidence.push(*id);
            }
            true
        }
        Some(_) => false,
        None => device.firmware_version.as_deref() == Some(target),
    };
    Some(Rung {
        status: if on_target {
            ProvisioningStatus::OnTargetFirmware
        } else {
            ProvisioningStatus::Applied
        },
        evidence,
    })
}

/// The fetch of the current XML and what came after it, per [`upgrade_applied`].
fn applied_evidence(
    mac: Mac,
    timeline: &[TimelineEntry],
    manifest: &Manifest,
) -> Option<Vec<EntryId>> {
    let role = |entry: &TimelineEntry| {
        entry
            .fetch
            .as_ref()
            .map(|fetch| file_role(&fetch.name, mac, manifest))
    };
    let current_xml = |entry: &TimelineEntry| {
        let fetch = entry.fetch.as_ref()?;
        let served = entry.outcome() == Some(FetchOutcome::Served);
        let current = manifest
            .get(&fetch.name)
            .is_some_and(|m| fetch.artifact_hash.as_deref() == Some(m.hash.as_str()));
        (served && current && role(entry) == Some(FileRole::OwnXml)).then_some(entry.id)
    };
    for (at, fetched) in timeline.iter().enumerate().rev() {
        let Some(fetched_id) = current_xml(fetched) else {
            continue;
        };
        let mut notified: Option<EntryId> = None;
        for after in &timeline[at + 1..] {
            if after.fetch.is_some() {
                match role(after) {
                    Some(FileRole::SharedXml) => break,
                    Some(FileRole::OwnXml) => return Some(vec![fetched_id, after.id]),
                    _ => {}
                }
                if let Some(notify) = notified {
                    return Some(vec![fetched_id, notify, after.id]);
                }
                continue;
            }
            match after.source {
                TimelineSource::Syslog => return Some(vec![fetched_id, after.id]),
                TimelineSource::Pnp if after.kind == "subscribe" => {
                    return Some(vec![fetched_id, after.id]);
                }
                TimelineSource::Dhcp if after.kind == "discover" => {
                    return Some(vec![fetched_id, after.id]);
                }
                TimelineSource::Notify if !notify_failed(after) => notified = Some(after.id),
                _ => {}
            }
        }
    }
    None
}

/// Whether a NOTIFY row says the phone did not take it (see [`upgrade_applied`]). Only a
/// 2xx answer counts as taken: the desk's resync writes kind `answered` with the phone's code
/// in `detail.outcome.code`, and `challenge-failed`, `no-answer` or `not-sent` otherwise.
pub fn notify_failed(entry: &TimelineEntry) -> bool {
    if entry.kind != "answered" {
        return true;
    }
    let code = entry
        .detail
        .as_ref()
        .and_then(|detail| detail.get("outcome")?.get("code")?.as_u64());
    !code.is_some_and(|code| (200..300).contains(&code))
}

/// The entries a derived status rests on: the newest fetch for the statuses that come from
/// one (denied, failed, requesting), the newest served file for the "got" statuses, the
/// newest DHCP or plug-and-play entry for the first rungs.
fn base_evidence(
    status: &ProvisioningStatus,
    mac: Mac,
    timeline: &[TimelineEntry],
    manifest: &Manifest,
) -> Vec<EntryId> {
    let newest = |pick: &dyn Fn(&TimelineEntry) -> bool| {
        timeline.iter().rev().find(|e| pick(e)).map(|e| e.id)
    };
    let served = |e: &TimelineEntry| e.outcome() == Some(FetchOutcome::Served);
    let found = match status {
        ProvisioningStatus::Denied { .. }
        | ProvisioningStatus::Failed { .. }
        | ProvisioningStatus::Requesting => newest(&|e| e.fetch.is_some()),
        ProvisioningStatus::UpToDate => newest(&|e| {
            served(e)
                && e.fetch
                    .as_ref()
                    .is_some_and(|f| file_role(&f.name, mac, manifest) == FileRole::OwnXml)
        }),
        ProvisioningStatus::GotConfig { .. }
        | ProvisioningStatus::FirmwareDone
        | ProvisioningStatus::Stale => newest(&served),
        ProvisioningStatus::GotAddress { .. } => newest(&|e| e.source == TimelineSource::Dhcp),
        ProvisioningStatus::AskedForServer => newest(&|e| e.source == TimelineSource::Pnp),
        _ => None,
    };
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{ArtifactKind, ManifestEntry};
    use crate::inventory::{DeviceEvent, EventSource, FetchLogEntry};
    use crate::timeline::merge;

    const MAC: &str = "000b82123456";

    fn mac() -> Mac {
        MAC.parse().unwrap()
    }

    fn manifest() -> Manifest {
        let mut manifest = Manifest {
            build: 4,
            ..Manifest::default()
        };
        for (name, kind, hash) in [
            (format!("cfg{MAC}"), ArtifactKind::DeviceBinary, "b1"),
            (format!("cfg{MAC}.xml"), ArtifactKind::DeviceXml, "x1"),
            ("cfggxp2170.xml".into(), ArtifactKind::ModelXml, "m1"),
            ("gxp2170fw.bin".into(), ArtifactKind::Firmware, "f1"),
        ] {
            let own = matches!(kind, ArtifactKind::DeviceXml | ArtifactKind::DeviceBinary);
            manifest.entries.insert(
                name.clone(),
                ManifestEntry {
                    file: format!("build/{name}"),
                    hash: hash.into(),
                    input: String::new(),
                    version: 4,
                    kind,
                    mac: own.then(mac),
                    model: None,
                    encrypted: false,
                    size: 1,
                },
            );
        }
        manifest
    }

    /// A timeline from lines, oldest first: `fetch NAME STATUS HASH [FIRMWARE]` or
    /// `SOURCE KIND` for an event, with `MAC` standing for the device's MAC.
    fn timeline(lines: &[&str]) -> Vec<TimelineEntry> {
        let mut fetches = Vec::new();
        let mut events = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let words: Vec<String> = line
                .split_whitespace()
                .map(|w| w.replace("MAC", MAC))
                .collect();
            let at = i as i64 * 1000;
            if words[0] == "fetch" {
                fetches.push(FetchLogEntry {
                    id: Some(i as i64),
                    ts: at,
                    protocol: "http".into(),
                    peer: "192.0.2.7:4000".into(),
                    name: words[1].clone(),
                    mac: Some(mac()),
                    user_agent: words.get(4).map(|version| {
                        format!("Grandstream Model HW GXP2170 SW {version} DevId {MAC}")
                    }),
                    status: words[2].clone(),
                    reason: None,
                    bytes: 1,
                    duration_ms: 1,
                    artifact_hash: (words[3] != "-").then(|| words[3].clone()),
                });
            } else {
                events.push(DeviceEvent {
                    id: i as i64,
                    at_ms: at,
                    mac: Some(mac()),
                    peer: None,
                    source: EventSource::parse(&words[0]).expect("a source"),
                    kind: words[1].clone(),
                    summary: line.to_string(),
                    // The shape the desk's resync writes.
                    detail: words.get(2).map(|code| {
                        serde_json::json!({ "outcome": { "kind": words[1], "code": code.parse::<u64>().unwrap() } })
                    }),
                });
            }
        }
        merge(fetches, events)
    }

    fn check(
        lines: &[&str],
        target: Option<&str>,
        expected: ProvisioningStatus,
        evidence: &[&str],
    ) {
        let device = Device::new(mac(), "gxp2170");
        let rung = ladder(
            &device,
            &timeline(lines),
            &manifest(),
            target,
            &LanEvidence::default(),
        );
        assert_eq!(rung.status, expected, "{lines:?}");
        let ids: Vec<String> = rung.evidence.iter().map(EntryId::to_string).collect();
        assert_eq!(ids, evidence, "{lines:?}");
    }

    #[test]
    fn before_any_request_the_responders_evidence_is_the_rung() {
        let device = Device::new(mac(), "gxp2170");
        let leased = LanEvidence {
            leased: Some("198.51.100.100".into()),
            asked_for_server: false,
        };
        let rung = ladder(&device, &[], &manifest(), None, &leased);
        assert_eq!(
            rung.status,
            ProvisioningStatus::GotAddress {
                address: "198.51.100.100".into()
            }
        );
        // A fetch says more than a lease.
        let rung = ladder(
            &device,
            &timeline(&["fetch cfgMAC.xml 200 x1"]),
            &manifest(),
            None,
            &leased,
        );
        assert_eq!(rung.status, ProvisioningStatus::UpToDate);
    }

    #[test]
    fn one_fetch_of_the_xml_is_only_up_to_date() {
        check(
            &["fetch cfgMAC 200 b1", "fetch cfgMAC.xml 200 x1"],
            None,
            ProvisioningStatus::UpToDate,
            &["fetch:1"],
        );
    }

    #[test]
    fn asking_again_for_the_xml_is_applied() {
        check(
            &[
                "fetch cfgMAC 200 b1",
                "fetch cfgMAC.xml 200 x1",
                "fetch cfgMAC 200 b1",
                "fetch cfgMAC.xml 200 x1",
            ],
            None,
            ProvisioningStatus::Applied,
            &["fetch:1", "fetch:3"],
        );
    }

    #[test]
    fn syslog_or_a_new_boot_after_the_fetch_is_applied() {
        for (event, id) in [
            ("syslog line", "event:2"),
            ("pnp subscribe", "event:2"),
            ("dhcp discover", "event:2"),
        ] {
            check(
                &["fetch cfgMAC 200 b1", "fetch cfgMAC.xml 200 x1", event],
                None,
                ProvisioningStatus::Applied,
                &["fetch:1", id],
            );
        }
        // A lease renewal is no reboot.
        check(
            &["fetch cfgMAC.xml 200 x1", "dhcp request"],
            None,
            ProvisioningStatus::UpToDate,
            &["fetch:0"],
        );
    }

    #[test]
    fn a_notify_then_any_request_is_applied_unless_the_notify_failed() {
        check(
            &[
                "fetch cfgMAC.xml 200 x1",
                "notify answered 200",
                "fetch gxp2170fw.bin 404 -",
            ],
            None,
            ProvisioningStatus::Applied,
            &["fetch:0", "event:1", "fetch:2"],
        );
        for failed in [
            "notify no-answer",
            "notify challenge-failed",
            "notify not-sent",
            "notify answered 481",
        ] {
            check(
                &[
                    "fetch cfgMAC.xml 200 x1",
                    failed,
                    "fetch gxp2170fw.bin 404 -",
                ],
                None,
                ProvisioningStatus::UpToDate,
                &["fetch:0"],
            );
        }
    }

    #[test]
    fn a_fallback_after_the_xml_means_it_was_not_taken() {
        check(
            &[
                "fetch cfgMAC.xml 200 x1",
                "fetch cfggxp2170.xml 200 m1",
                "fetch cfgMAC.xml 200 x1",
            ],
            None,
            // The second XML fetch is newest and current, but nothing came after it.
            ProvisioningStatus::UpToDate,
            &["fetch:2"],
        );
        check(
            &[
                "fetch cfgMAC.xml 200 x1",
                "fetch cfg.xml 404 -",
                "syslog line",
            ],
            None,
            ProvisioningStatus::UpToDate,
            &["fetch:0"],
        );
    }

    #[test]
    fn an_old_version_of_the_xml_is_stale_whatever_follows() {
        check(
            &["fetch cfgMAC.xml 200 x0", "fetch cfgMAC.xml 200 x0"],
            None,
            ProvisioningStatus::Stale,
            &["fetch:1"],
        );
    }

    #[test]
    fn on_target_firmware_when_the_reported_version_is_the_served_one() {
        let applied = [
            "fetch cfgMAC.xml 200 x1 1.0.11.3",
            "fetch gxp2170fw.bin 200 f1 1.0.11.3",
            "fetch cfgMAC.xml 200 x1 1.0.11.23",
        ];
        check(
            &applied,
            Some("1.0.11.23"),
            ProvisioningStatus::OnTargetFirmware,
            &["fetch:0", "fetch:2"],
        );
        check(
            &applied,
            Some("1.0.11.40"),
            ProvisioningStatus::Applied,
            &["fetch:0", "fetch:2"],
        );
        check(
            &applied,
            None,
            ProvisioningStatus::Applied,
            &["fetch:0", "fetch:2"],
        );
        // Without a User-Agent (TFTP), the inventory's record of its firmware decides.
        let mut device = Device::new(mac(), "gxp2170");
        device.firmware_version = Some("1.0.11.23".into());
        let rung = ladder(
            &device,
            &timeline(&["fetch cfgMAC.xml 200 x1", "syslog line"]),
            &manifest(),
            Some("1.0.11.23"),
            &LanEvidence::default(),
        );
        assert_eq!(rung.status, ProvisioningStatus::OnTargetFirmware);
    }

    #[test]
    fn the_first_rungs_name_their_entries() {
        check(&[], None, ProvisioningStatus::NeverSeen, &[]);
        check(
            &["fetch cfgMAC.xml 404 -"],
            None,
            ProvisioningStatus::Requesting,
            &["fetch:0"],
        );
        check(
            &["fetch cfgMAC 200 b1"],
            None,
            ProvisioningStatus::GotConfig { version: 4 },
            &["fetch:0"],
        );
    }
}
