//! One device's timeline: its fetch-log entries (every request, the misses along the
//! `cfg<mac>` → `cfg<mac>.xml` → `cfg<model>.xml` → `cfg.xml` chain and the refusals
//! included) and its `device_events` rows (DHCP, plug-and-play, NOTIFY outcomes, syslog
//! lines, builds that changed its files), merged into one ordered list of typed entries.
//!
//! Transfer progress is not stored (the servers send it to live subscribers only): a
//! transfer appears once, when it ends, with its bytes and duration from the fetch log.
//!
//! Invariants: pure, no I/O (the caller reads both tables); entries are ordered by time, and
//! at the same millisecond events come before fetches, each table's rows in id order; every
//! entry has an [`EntryId`] naming its row (`fetch:12`, `event:7`), which is what a
//! diagnosis cites as evidence. Events are read generically, by source and kind: a source
//! or kind this module has never heard of still joins the timeline with its own summary.
//! Summaries never hold a secret, since neither table does.

use std::fmt;
use std::str::FromStr;

use crate::Mac;
use crate::build::{ArtifactKind, Manifest};
use crate::inventory::{DeviceEvent, EventSource, FetchLogEntry};
use crate::user_agent::parse_user_agent;

/// The row an entry comes from: a fetch-log row or a `device_events` row, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryId {
    Fetch(i64),
    Event(i64),
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryId::Fetch(id) => write!(f, "fetch:{id}"),
            EntryId::Event(id) => write!(f, "event:{id}"),
        }
    }
}

impl FromStr for EntryId {
    type Err = String;

    fn from_str(text: &str) -> Result<EntryId, String> {
        let bad = || format!("{text:?} is not an entry id (fetch:N or event:N)");
        let (table, id) = text.split_once(':').ok_or_else(bad)?;
        let id: i64 = id.parse().map_err(|_| bad())?;
        match table {
            "fetch" => Ok(EntryId::Fetch(id)),
            "event" => Ok(EntryId::Event(id)),
            _ => Err(bad()),
        }
    }
}

impl serde::Serialize for EntryId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Which part of the desk an entry comes from: the servers' fetch log, or one of the
/// `device_events` sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "lowercase")]
pub enum TimelineSource {
    /// A request to the HTTP, HTTPS or TFTP server.
    Fetch,
    Dhcp,
    Pnp,
    Notify,
    Syslog,
    Build,
}

impl From<EventSource> for TimelineSource {
    fn from(source: EventSource) -> TimelineSource {
        match source {
            EventSource::Dhcp => TimelineSource::Dhcp,
            EventSource::Pnp => TimelineSource::Pnp,
            EventSource::Notify => TimelineSource::Notify,
            EventSource::Syslog => TimelineSource::Syslog,
            EventSource::Build => TimelineSource::Build,
        }
    }
}

/// How a logged request ended, read from the fetch log's `status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FetchOutcome {
    Served,
    NotFound,
    BadRequest,
    Denied,
    Failed,
}

impl FetchOutcome {
    /// The outcome of a fetch-log `status` as the recorder writes it (`200`, `206`, `304`,
    /// `404`, `400`, `denied`, `failed`), and as older desks wrote TFTP transfers
    /// (`completed`, `aborted`, `tftp-error-N`).
    pub fn from_status(status: &str) -> FetchOutcome {
        match status {
            "denied" => FetchOutcome::Denied,
            "404" => FetchOutcome::NotFound,
            "completed" => FetchOutcome::Served,
            _ => match status.parse::<u16>() {
                Ok(200..=399) => FetchOutcome::Served,
                Ok(400..=499) => FetchOutcome::BadRequest,
                _ => FetchOutcome::Failed,
            },
        }
    }

    /// The entry kind of a fetch with this outcome (`served`, `not-found`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FetchOutcome::Served => "served",
            FetchOutcome::NotFound => "not-found",
            FetchOutcome::BadRequest => "bad-request",
            FetchOutcome::Denied => "denied",
            FetchOutcome::Failed => "failed",
        }
    }
}

/// One thing that happened to a device.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct TimelineEntry {
    /// `fetch:12` or `event:7`: the row it comes from, as diagnoses cite it.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub id: EntryId,
    /// Unix milliseconds (for a fetch, when the request arrived).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub at_ms: i64,
    pub source: TimelineSource,
    /// For a fetch its outcome (`served`, `not-found`, `bad-request`, `denied`, `failed`);
    /// for an event its own kind (`ack`, `subscribe`, `changed`, …).
    pub kind: String,
    /// One line for people.
    pub summary: String,
    /// The address it came from or went to.
    pub peer: Option<String>,
    /// The fetch-log row, for a fetch.
    pub fetch: Option<FetchLogEntry>,
    /// The event's details, for an event.
    #[cfg_attr(feature = "ts", ts(type = "Record<string, unknown> | null"))]
    pub detail: Option<serde_json::Value>,
}

impl TimelineEntry {
    /// A fetch-log row as a timeline entry; `None` for a row that was never stored (no id).
    pub fn from_fetch(entry: FetchLogEntry) -> Option<TimelineEntry> {
        let id = EntryId::Fetch(entry.id?);
        let outcome = FetchOutcome::from_status(&entry.status);
        Some(TimelineEntry {
            id,
            at_ms: entry.ts,
            source: TimelineSource::Fetch,
            kind: outcome.as_str().to_string(),
            summary: fetch_summary(&entry, outcome),
            peer: Some(entry.peer.clone()),
            fetch: Some(entry),
            detail: None,
        })
    }

    pub fn from_event(event: DeviceEvent) -> TimelineEntry {
        TimelineEntry {
            id: EntryId::Event(event.id),
            at_ms: event.at_ms,
            source: event.source.into(),
            kind: event.kind,
            summary: event.summary,
            peer: event.peer,
            fetch: None,
            detail: event.detail,
        }
    }

    /// How the request ended, for a fetch.
    pub fn outcome(&self) -> Option<FetchOutcome> {
        self.fetch
            .as_ref()
            .map(|f| FetchOutcome::from_status(&f.status))
    }

    /// The firmware version the phone reported in this request's User-Agent, if it did.
    pub fn reported_firmware(&self) -> Option<String> {
        let agent = parse_user_agent(self.fetch.as_ref()?.user_agent.as_deref()?)?;
        (!agent.firmware.is_empty()).then_some(agent.firmware)
    }
}

/// `HTTP cfg000b82123456.xml: served 1234 bytes in 3 ms (firmware 1.0.11.3)`.
fn fetch_summary(entry: &FetchLogEntry, outcome: FetchOutcome) -> String {
    let protocol = entry.protocol.to_ascii_uppercase();
    let name = &entry.name;
    let reason = entry.reason.as_deref().unwrap_or("no reason given");
    let mut summary = match outcome {
        FetchOutcome::Served => format!(
            "{protocol} {name}: served {} bytes in {} ms",
            entry.bytes, entry.duration_ms
        ),
        FetchOutcome::NotFound => format!("{protocol} {name}: not found ({reason})"),
        FetchOutcome::BadRequest => format!("{protocol} {name}: bad request ({reason})"),
        FetchOutcome::Denied => format!("{protocol} {name}: refused ({reason})"),
        FetchOutcome::Failed => format!(
            "{protocol} {name}: broke off after {} bytes ({reason})",
            entry.bytes
        ),
    };
    if let Some(agent) = entry.user_agent.as_deref().and_then(parse_user_agent)
        && !agent.firmware.is_empty()
    {
        summary.push_str(&format!(" (firmware {})", agent.firmware));
    }
    summary
}

/// The device's fetches and events as one list, oldest first. Either input may be in any
/// order (the fetch log answers newest first); fetch rows without an id are left out.
pub fn merge(fetches: Vec<FetchLogEntry>, events: Vec<DeviceEvent>) -> Vec<TimelineEntry> {
    let mut entries: Vec<TimelineEntry> = events
        .into_iter()
        .map(TimelineEntry::from_event)
        .chain(fetches.into_iter().filter_map(TimelineEntry::from_fetch))
        .collect();
    entries.sort_by_key(|entry| {
        let (rank, id) = match entry.id {
            EntryId::Event(id) => (0, id),
            EntryId::Fetch(id) => (1, id),
        };
        (entry.at_ms, rank, id)
    });
    entries
}

/// What a requested name is to one device: the current manifest decides, and for names it
/// does not have (misses, files of an older build) the name's shape, the way phones spell
/// them (a config prefix such as `gs/` is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// `cfg<mac>` or `cfg<mac>.bin`: its binary bootstrap file.
    OwnBinary,
    /// `cfg<mac>.xml`: its own XML config.
    OwnXml,
    /// `cfg<model>.xml` or `cfg.xml`: the files a phone falls back to.
    SharedXml,
    Firmware,
    /// Another device's file, or a name of no known shape.
    Other,
}

/// The role of `name` for the device `mac`.
pub fn file_role(name: &str, mac: Mac, manifest: &Manifest) -> FileRole {
    if let Some(entry) = manifest.get(name) {
        let own = entry.mac == Some(mac);
        return match entry.kind {
            ArtifactKind::DeviceBinary if own => FileRole::OwnBinary,
            ArtifactKind::DeviceXml if own => FileRole::OwnXml,
            ArtifactKind::DeviceBinary | ArtifactKind::DeviceXml => FileRole::Other,
            ArtifactKind::ModelXml | ArtifactKind::GenericXml => FileRole::SharedXml,
            ArtifactKind::Firmware => FileRole::Firmware,
        };
    }
    let lower = name.to_ascii_lowercase();
    let file = lower.rsplit('/').next().unwrap_or(&lower);
    if file.ends_with("fw.bin") {
        return FileRole::Firmware;
    }
    let Some(stem) = file.strip_prefix("cfg") else {
        return FileRole::Other;
    };
    let mac = mac.to_string();
    if stem == mac || stem == format!("{mac}.bin") {
        return FileRole::OwnBinary;
    }
    if stem == format!("{mac}.xml") {
        return FileRole::OwnXml;
    }
    match stem.strip_suffix(".xml") {
        Some("") => FileRole::SharedXml,
        Some(model)
            if model
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !(model.len() == 12 && model.bytes().all(|b| b.is_ascii_hexdigit())) =>
        {
            FileRole::SharedXml
        }
        _ => FileRole::Other,
    }
}

/// The fetch-log rows of a timeline, newest first: what [`crate::status::derive`] reads.
pub fn fetches_newest_first(timeline: &[TimelineEntry]) -> Vec<FetchLogEntry> {
    timeline
        .iter()
        .rev()
        .filter_map(|entry| entry.fetch.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mac;

    const UA: &str = "Grandstream Model HW GXP2170 V1.1A SW 1.0.11.3 DevId 000b82123456";

    fn mac() -> Mac {
        "000b82123456".parse().unwrap()
    }

    fn fetch(id: i64, ts: i64, name: &str, status: &str) -> FetchLogEntry {
        FetchLogEntry {
            id: Some(id),
            ts,
            protocol: "http".into(),
            peer: "192.0.2.7:40000".into(),
            name: name.into(),
            mac: Some(mac()),
            user_agent: Some(UA.into()),
            status: status.into(),
            reason: (status != "200").then(|| "no such file".to_string()),
            bytes: 1234,
            duration_ms: 3,
            artifact_hash: None,
        }
    }

    fn event(id: i64, at_ms: i64, source: EventSource, kind: &str) -> DeviceEvent {
        DeviceEvent {
            id,
            at_ms,
            mac: Some(mac()),
            peer: Some("192.0.2.7".into()),
            source,
            kind: kind.into(),
            summary: format!("{kind} at {at_ms}"),
            detail: None,
        }
    }

    #[test]
    fn fetches_and_events_merge_in_time_order_events_first_on_ties() {
        let fetches = vec![
            fetch(3, 30, "cfg000b82123456.xml", "200"),
            fetch(2, 20, "cfg000b82123456", "404"),
            fetch(1, 20, "cfg000b82123456.bin", "404"),
        ];
        let events = vec![
            event(9, 40, EventSource::Syslog, "line"),
            event(8, 20, EventSource::Pnp, "subscribe"),
            event(7, 10, EventSource::Dhcp, "ack"),
        ];
        let timeline = merge(fetches, events);
        let ids: Vec<String> = timeline.iter().map(|e| e.id.to_string()).collect();
        assert_eq!(
            ids,
            [
                "event:7", "event:8", "fetch:1", "fetch:2", "fetch:3", "event:9"
            ]
        );
        assert_eq!(timeline[0].source, TimelineSource::Dhcp);
        assert_eq!(timeline[3].kind, "not-found");
        assert_eq!(timeline[4].kind, "served");
        assert_eq!(timeline[5].source, TimelineSource::Syslog);
        let newest_first: Vec<Option<i64>> = fetches_newest_first(&timeline)
            .iter()
            .map(|f| f.id)
            .collect();
        assert_eq!(newest_first, [Some(3), Some(2), Some(1)]);
    }

    #[test]
    fn fetch_summaries_say_what_happened_and_the_reported_firmware() {
        let check = |status: &str, expected: &str| {
            let entry = TimelineEntry::from_fetch(fetch(1, 1, "cfg000b82123456.xml", status))
                .expect("an entry");
            assert_eq!(entry.summary, expected, "{status}");
        };
        check(
            "200",
            "HTTP cfg000b82123456.xml: served 1234 bytes in 3 ms (firmware 1.0.11.3)",
        );
        check(
            "404",
            "HTTP cfg000b82123456.xml: not found (no such file) (firmware 1.0.11.3)",
        );
        check(
            "denied",
            "HTTP cfg000b82123456.xml: refused (no such file) (firmware 1.0.11.3)",
        );
        check(
            "failed",
            "HTTP cfg000b82123456.xml: broke off after 1234 bytes (no such file) (firmware 1.0.11.3)",
        );
        let mut tftp = fetch(1, 1, "cfg.xml", "200");
        tftp.protocol = "tftp".into();
        tftp.user_agent = None;
        let entry = TimelineEntry::from_fetch(tftp).unwrap();
        assert_eq!(entry.summary, "TFTP cfg.xml: served 1234 bytes in 3 ms");
        assert_eq!(entry.reported_firmware(), None);
        let mut unstored = fetch(1, 1, "cfg.xml", "200");
        unstored.id = None;
        assert_eq!(TimelineEntry::from_fetch(unstored), None);
    }

    #[test]
    fn outcomes_are_read_from_every_status_spelling() {
        let check = |status: &str, outcome: FetchOutcome| {
            assert_eq!(FetchOutcome::from_status(status), outcome, "{status}");
        };
        check("200", FetchOutcome::Served);
        check("206", FetchOutcome::Served);
        check("304", FetchOutcome::Served);
        check("completed", FetchOutcome::Served);
        check("404", FetchOutcome::NotFound);
        check("400", FetchOutcome::BadRequest);
        check("416", FetchOutcome::BadRequest);
        check("denied", FetchOutcome::Denied);
        check("failed", FetchOutcome::Failed);
        check("aborted", FetchOutcome::Failed);
        check("tftp-error-1", FetchOutcome::Failed);
        check("500", FetchOutcome::Failed);
    }

    #[test]
    fn file_roles_come_from_the_manifest_else_from_the_name() {
        use crate::build::ManifestEntry;
        let mut manifest = Manifest::default();
        let mut add = |name: &str, kind: ArtifactKind, owner: Option<Mac>| {
            manifest.entries.insert(
                name.into(),
                ManifestEntry {
                    file: format!("build/{name}"),
                    hash: "h".into(),
                    input: "i".into(),
                    version: 1,
                    kind,
                    mac: owner,
                    model: None,
                    encrypted: false,
                    size: 1,
                },
            );
        };
        add(
            "gs/cfg000b82123456.xml",
            ArtifactKind::DeviceXml,
            Some(mac()),
        );
        add(
            "cfg000b82654321.xml",
            ArtifactKind::DeviceXml,
            "000b82654321".parse().ok(),
        );
        add("cfggxp2170.xml", ArtifactKind::ModelXml, None);
        let check = |name: &str, role: FileRole| {
            assert_eq!(file_role(name, mac(), &manifest), role, "{name}");
        };
        check("gs/cfg000b82123456.xml", FileRole::OwnXml);
        check("cfg000b82654321.xml", FileRole::Other);
        check("CFGgxp2170.xml", FileRole::SharedXml);
        check("cfg000b82123456", FileRole::OwnBinary);
        check("cfg000B82123456.bin", FileRole::OwnBinary);
        check("cfg000b82123456.xml", FileRole::OwnXml);
        check("cfg.xml", FileRole::SharedXml);
        check("gs/cfgdp750.xml", FileRole::SharedXml);
        check("cfg000b82999999.xml", FileRole::Other);
        check("gxp2170fw.bin", FileRole::Firmware);
        check("index.html", FileRole::Other);
        check("cfg../x.xml", FileRole::Other);
    }

    #[test]
    fn entry_ids_round_trip_through_text_and_json() {
        for id in [EntryId::Fetch(12), EntryId::Event(7), EntryId::Fetch(-1)] {
            assert_eq!(id.to_string().parse::<EntryId>(), Ok(id));
            assert_eq!(
                serde_json::to_value(id).unwrap(),
                serde_json::json!(id.to_string())
            );
        }
        assert!("fetch".parse::<EntryId>().is_err());
        assert!("row:1".parse::<EntryId>().is_err());
        assert!("event:x".parse::<EntryId>().is_err());
    }

    #[test]
    fn unknown_event_kinds_join_with_their_own_summary() {
        let mut notify = event(1, 5, EventSource::Notify, "something-new");
        notify.detail = Some(serde_json::json!({ "code": 200 }));
        let entry = TimelineEntry::from_event(notify);
        assert_eq!(entry.source, TimelineSource::Notify);
        assert_eq!(entry.kind, "something-new");
        assert_eq!(entry.summary, "something-new at 5");
        assert_eq!(entry.detail, Some(serde_json::json!({ "code": 200 })));
        assert_eq!(entry.outcome(), None);
    }
}
