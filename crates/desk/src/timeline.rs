//! Each device's timeline and diagnosis, and the whole fetch log: `provdesk device history`,
//! `provdesk log` (and its `--follow`), the diagnosis `provdesk device show` prints, the
//! device page's Timeline tab, and the hand-over report's diagnosis of every device.
//!
//! The timeline joins the fetch log with the device's `device_events` (DHCP, plug-and-play,
//! NOTIFY outcomes, syslog lines, builds that changed its files). Live transfer progress is
//! not stored: a transfer is in the timeline once it ends, with its bytes and duration.
//!
//! Invariants: a device's status is computed in one place, [`DeskService::device_rung`]
//! (the core's `status::ladder` over its timeline), for the list, the device page and the
//! diagnosis alike; diagnoses are masked by the device's secrets unless revealed (only a
//! held device's messages can quote a value: neither the fetch log nor the events hold one).

use std::collections::BTreeMap;

use provdesk_core::Mac;
use provdesk_core::build::Manifest;
use provdesk_core::diagnosis::{self, Diagnosis, DiagnosisInput, ServedProtocols};
use provdesk_core::inventory::{
    Device, DeviceEvent, DeviceEventQuery, FetchLogEntry, FetchLogPage, FetchLogQuery,
};
use provdesk_core::profile::ProfileSet;
use provdesk_core::secrets::device_secrets;
use provdesk_core::status::{self, LanEvidence, Rung, STATUS_LOG_DEPTH};
use provdesk_core::timeline::{self, TimelineEntry};
use provdesk_serve::events::Protocol;
use serde::Serialize;
use ts_rs::TS;

use crate::devices::Reveal;
use crate::error::{DeskError, DeskResult};
use crate::service::DeskService;

/// At most this many rows of each table in one device's history: days of a phone's life,
/// and what a page can show. Older rows are left out and `truncated` says so.
pub const HISTORY_LIMIT: usize = 2000;

/// How many of a device's newest events its status and diagnosis read, beside its newest
/// [`STATUS_LOG_DEPTH`] fetches.
pub const EVENT_DEPTH: usize = 64;

/// At most this many fetch-log rows in one page of [`DeskService::fetch_log_page`].
pub const MAX_LOG_PAGE: usize = 5000;

/// One device's history, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct DeviceHistory {
    #[ts(as = "String")]
    pub mac: Mac,
    pub entries: Vec<TimelineEntry>,
    /// More happened in the window than [`HISTORY_LIMIT`] rows of a table: only the newest
    /// are here.
    pub truncated: bool,
}

/// A page of the whole fetch log, in the order it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct LogPage {
    pub entries: Vec<FetchLogEntry>,
    /// The id to ask after for the next page (the last entry's, else the one asked after).
    #[ts(type = "number | null")]
    pub cursor: Option<i64>,
}

impl DeskService {
    /// The history of `mac` (inventory, discovered, or only in the logs), oldest first, from
    /// `since_ms` on when given. A MAC the desk has never heard of is not found.
    pub fn history(&self, mac: Mac, since_ms: Option<i64>) -> DeskResult<DeviceHistory> {
        let fetches = self.inventory().fetch_log(&FetchLogQuery {
            mac: Some(mac),
            since: since_ms,
            limit: Some(HISTORY_LIMIT + 1),
        })?;
        let events = self.inventory().device_events(&DeviceEventQuery {
            mac: Some(mac),
            since_ms,
            limit: Some(HISTORY_LIMIT + 1),
            ..DeviceEventQuery::default()
        })?;
        let truncated = fetches.len() > HISTORY_LIMIT || events.len() > HISTORY_LIMIT;
        if fetches.is_empty() && events.is_empty() && self.inventory().get_device(mac)?.is_none() {
            return Err(DeskError::not_found(format!(
                "{mac} is not in the inventory and has no history"
            )));
        }
        // Both answers come newest first (fetches) or oldest first (events) with one row too
        // many: drop the oldest of each.
        let fetches = fetches.into_iter().take(HISTORY_LIMIT).collect();
        let skip = events.len().saturating_sub(HISTORY_LIMIT);
        let events = events.into_iter().skip(skip).collect();
        Ok(DeviceHistory {
            mac,
            entries: timeline::merge(fetches, events),
            truncated,
        })
    }

    /// The diagnosis of one device of the inventory (or a discovered one).
    pub fn diagnose(&self, mac: Mac, reveal: Reveal) -> DeskResult<Diagnosis> {
        let device = self
            .inventory()
            .get_device(mac)?
            .ok_or_else(|| DeskError::not_found(format!("{mac} is not in the inventory")))?;
        let fetches = self.inventory().fetch_log(&FetchLogQuery {
            mac: Some(mac),
            since: None,
            limit: Some(STATUS_LOG_DEPTH),
        })?;
        let events = self.inventory().device_events(&DeviceEventQuery {
            mac: Some(mac),
            limit: Some(EVENT_DEPTH),
            ..DeviceEventQuery::default()
        })?;
        let lan = crate::lan::lan_evidence_of(self.inventory(), mac)?;
        let context = DiagnosisContext::of(self);
        let found = context.diagnose(&device, fetches, events, &lan);
        Ok(self.masked(&device, found, reveal))
    }

    /// The diagnosis of every device (inventory and discovered), masked, by MAC: what the
    /// hand-over report lists. Two queries for all devices' recent fetches and events,
    /// however many devices there are.
    pub fn diagnose_all(&self) -> DeskResult<BTreeMap<Mac, Diagnosis>> {
        let devices = self.inventory().list_devices()?;
        let mut fetches = self
            .inventory()
            .recent_fetches_by_device(STATUS_LOG_DEPTH)?;
        let mut events = self
            .inventory()
            .recent_device_events_by_device(EVENT_DEPTH)?;
        let mut lan = crate::lan::lan_evidence(self.inventory())?;
        let context = DiagnosisContext::of(self);
        Ok(devices
            .iter()
            .map(|device| {
                let found = context.diagnose(
                    device,
                    fetches.remove(&device.mac).unwrap_or_default(),
                    events.remove(&device.mac).unwrap_or_default(),
                    &lan.remove(&device.mac).unwrap_or_default(),
                );
                (device.mac, self.masked(device, found, Reveal::Masked))
            })
            .collect())
    }

    /// A page of the whole fetch log (it outlives the servers), oldest first, after
    /// `page.after_id`; at most [`MAX_LOG_PAGE`] rows. A follower asks again with `cursor`.
    pub fn fetch_log_page(&self, page: &FetchLogPage) -> DeskResult<LogPage> {
        let page = FetchLogPage {
            limit: page.limit.clamp(1, MAX_LOG_PAGE),
            ..*page
        };
        let entries = self.inventory().fetch_log_page(&page)?;
        let cursor = entries.last().and_then(|e| e.id).or(page.after_id);
        Ok(LogPage { entries, cursor })
    }

    /// Where to start reading the fetch log to get only its newest `newest` rows (matching
    /// `mac` and `since_ms`): the `after_id` of the first page.
    pub fn fetch_log_tail_start(
        &self,
        mac: Option<Mac>,
        since_ms: Option<i64>,
        newest: usize,
    ) -> DeskResult<Option<i64>> {
        Ok(self
            .inventory()
            .fetch_log_tail_start(mac, since_ms, newest)?)
    }

    /// The protocols the desk serves phones now: its running servers', else what its
    /// settings would start (`off` or absent is not served).
    pub fn served_protocols(&self) -> ServedProtocols {
        let listening: Vec<Protocol> = match self.listening() {
            Some(addresses) => addresses.into_iter().map(|(p, _)| p).collect(),
            None => provdesk_serve::service::listen_addresses(
                self.desk().settings(),
                &provdesk_serve::service::ServeOptions::default(),
            )
            .into_iter()
            .filter_map(|(p, address)| address.map(|_| p))
            .collect(),
        };
        ServedProtocols {
            http: listening.contains(&Protocol::Http),
            https: listening.contains(&Protocol::Https),
            tftp: listening.contains(&Protocol::Tftp),
        }
    }

    /// The firmware version the desk serves each model (`gxp2170` → `1.0.11.23`), where the
    /// firmware folder knows it. A folder that cannot be read knows none.
    pub fn firmware_targets(&self) -> BTreeMap<String, String> {
        provdesk_core::firmware::list(self.desk())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|file| Some((file.model?, file.version?)))
            .collect()
    }

    /// A device's status and its evidence, from its newest fetches (newest first, as the
    /// fetch log answers) and events (in any order): the one status computation of the desk.
    pub fn device_rung(
        &self,
        device: &Device,
        fetches: Vec<FetchLogEntry>,
        events: Vec<DeviceEvent>,
        manifest: &Manifest,
        targets: &BTreeMap<String, String>,
        lan: &LanEvidence,
    ) -> Rung {
        let timeline = timeline::merge(fetches, events);
        status::ladder(
            device,
            &timeline,
            manifest,
            targets.get(&device.model).map(String::as_str),
            lan,
        )
    }

    /// `found` with what a held device's messages may quote masked, unless revealed.
    fn masked(&self, device: &Device, mut found: Diagnosis, reveal: Reveal) -> Diagnosis {
        let quotes_values = matches!(
            found.status,
            status::ProvisioningStatus::NeedsAttention { .. }
        );
        if reveal == Reveal::Shown || !quotes_values {
            return found;
        }
        let profiles = ProfileSet::load(self.root());
        let secrets = device_secrets(&profiles, device, self.catalog(), &self.served_options());
        for verdict in &mut found.verdicts {
            verdict.words = secrets.redact(&verdict.words);
        }
        found.summary = secrets.redact(&found.summary);
        if let status::ProvisioningStatus::NeedsAttention { reason } = &mut found.status {
            *reason = secrets.redact(reason);
        }
        found
    }
}

/// What every diagnosis of one call shares: the manifest, the served protocols, the
/// firmware versions.
struct DiagnosisContext {
    manifest: crate::service::PublishedManifest,
    served: ServedProtocols,
    targets: BTreeMap<String, String>,
}

impl DiagnosisContext {
    fn of(desk: &DeskService) -> DiagnosisContext {
        DiagnosisContext {
            manifest: desk.manifest(),
            served: desk.served_protocols(),
            targets: desk.firmware_targets(),
        }
    }

    fn diagnose(
        &self,
        device: &Device,
        fetches: Vec<FetchLogEntry>,
        events: Vec<DeviceEvent>,
        lan: &LanEvidence,
    ) -> Diagnosis {
        let timeline = timeline::merge(fetches, events);
        diagnosis::diagnose(&DiagnosisInput {
            device,
            lan,
            timeline: &timeline,
            manifest: &self.manifest,
            served: self.served,
            target_firmware: self.targets.get(&device.model).map(String::as_str),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provdesk_core::diagnosis::VerdictCode;
    use provdesk_core::inventory::{EventSource, NewDeviceEvent};
    use provdesk_core::status::ProvisioningStatus;

    fn desk() -> (tempfile::TempDir, DeskService) {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        (dir, desk)
    }

    fn fetch(ts: i64, mac: Mac, name: &str, status: &str) -> FetchLogEntry {
        FetchLogEntry {
            id: None,
            ts,
            protocol: "http".into(),
            peer: "192.0.2.7:4000".into(),
            name: name.into(),
            mac: Some(mac),
            user_agent: None,
            status: status.into(),
            reason: (status == "denied").then(|| "not in the allow-list".to_string()),
            bytes: 1,
            duration_ms: 1,
            artifact_hash: None,
        }
    }

    #[test]
    fn history_joins_fetches_and_events_in_order_and_knows_unknown_macs() {
        let (_dir, desk) = desk();
        let phone: Mac = "000b82123456".parse().unwrap();
        desk.inventory()
            .append_fetch_log(&[
                fetch(1_000, phone, "cfg000b82123456", "404"),
                fetch(3_000, phone, "cfg000b82123456.xml", "denied"),
            ])
            .unwrap();
        desk.inventory()
            .append_device_events(&[NewDeviceEvent {
                at_ms: 2_000,
                mac: Some(phone),
                peer: Some("192.0.2.7".into()),
                source: EventSource::Syslog,
                kind: "line".into(),
                summary: "provisioning started".into(),
                detail: None,
            }])
            .unwrap();
        let history = desk.history(phone, None).unwrap();
        let kinds: Vec<&str> = history.entries.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["not-found", "line", "denied"]);
        assert!(!history.truncated);
        let since = desk.history(phone, Some(2_000)).unwrap();
        assert_eq!(since.entries.len(), 2);
        let stranger: Mac = "000b82000009".parse().unwrap();
        assert_eq!(
            desk.history(stranger, None).unwrap_err().kind,
            crate::ErrorKind::NotFound
        );
    }

    #[test]
    fn every_device_is_diagnosed_in_one_call() {
        let (_dir, desk) = desk();
        let quiet: Mac = "000b82000001".parse().unwrap();
        let refused: Mac = "000b82000002".parse().unwrap();
        desk.inventory()
            .import_devices(&[
                Device::new(quiet, "gxp2170"),
                Device::new(refused, "gxp2170"),
            ])
            .unwrap();
        desk.inventory()
            .append_fetch_log(&[fetch(1_000, refused, "cfg000b82000002.xml", "denied")])
            .unwrap();
        let all = desk.diagnose_all().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[&quiet].verdicts[0].code, VerdictCode::NeverAsked);
        assert_eq!(all[&quiet].status, ProvisioningStatus::NeverSeen);
        assert_eq!(all[&refused].verdicts[0].code, VerdictCode::Refused);
        assert!(
            all[&refused].summary.contains("HTTP 403"),
            "{}",
            all[&refused].summary
        );
        assert_eq!(
            desk.diagnose(refused, Reveal::Masked).unwrap(),
            all[&refused]
        );
    }

    #[test]
    fn the_served_protocols_come_from_the_settings_while_nothing_runs() {
        let (_dir, desk) = desk();
        // The sample serves HTTP and TFTP, HTTPS commented out.
        assert_eq!(
            desk.served_protocols(),
            ServedProtocols {
                http: true,
                https: false,
                tftp: true
            }
        );
    }

    #[test]
    fn the_log_pages_forward_from_a_cursor() {
        let (_dir, desk) = desk();
        let phone: Mac = "000b82123456".parse().unwrap();
        desk.inventory()
            .append_fetch_log(&[fetch(1, phone, "a", "200"), fetch(2, phone, "b", "200")])
            .unwrap();
        let first = desk
            .fetch_log_page(&FetchLogPage {
                limit: 1,
                ..FetchLogPage::default()
            })
            .unwrap();
        assert_eq!(first.entries[0].name, "a");
        let second = desk
            .fetch_log_page(&FetchLogPage {
                after_id: first.cursor,
                limit: 10,
                ..FetchLogPage::default()
            })
            .unwrap();
        assert_eq!(second.entries.len(), 1);
        let empty = desk
            .fetch_log_page(&FetchLogPage {
                after_id: second.cursor,
                limit: 10,
                ..FetchLogPage::default()
            })
            .unwrap();
        assert!(empty.entries.is_empty());
        assert_eq!(
            empty.cursor, second.cursor,
            "an empty page keeps the cursor"
        );
    }
}
