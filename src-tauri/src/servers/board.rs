//! The device board behind the Live screen's tiles: each device's newest requests, kept in
//! memory from the events, so a tile's status follows a request at once instead of waiting
//! for the recorder to write the fetch log. The status itself is the core's
//! (`status::derive` with the running server's live transfers, and `status::before_first_fetch`
//! with what DHCP and plug-and-play saw), the same as `provdesk device show` prints.
//!
//! Invariants: no I/O here; the caller passes a lookup for devices seen for the first time
//! (their inventory row and logged requests) and the manifest being served. Memory is bounded:
//! [`STATUS_LOG_DEPTH`] requests per device, at most [`Board::MAX_DEVICES`] devices.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use provdesk_core::Mac;
use provdesk_core::build::Manifest;
use provdesk_core::inventory::{Device, DeviceEvent, EventSource, FetchLogEntry, NewDeviceEvent};
use provdesk_core::status::{self, LanEvidence, LiveTransfers, STATUS_LOG_DEPTH};
use provdesk_core::timeline;
use provdesk_serve::events::{Event, Fetch, SyslogEvent};
use provdesk_serve::pnp::PnpOutcome;

use crate::dto::{LastSyslog, Tile};

/// A device's inventory row, its newest logged requests (newest first) and what the desk's
/// DHCP and plug-and-play responders know of it.
/// What the board needs of a device it starts tracking: the row, its newest requests, what
/// the LAN responders know of it and its newest timeline events (DHCP, plug-and-play,
/// NOTIFY, syslog, builds), oldest first.
pub type Seed = (Device, Vec<FetchLogEntry>, LanEvidence, Vec<DeviceEvent>);

#[derive(Debug, Default)]
pub struct Board {
    devices: HashMap<Mac, Tracked>,
    live: LiveTransfers,
    /// Devices whose status may have changed since the last [`Board::tiles`].
    touched: BTreeSet<Mac>,
    /// The firmware version the desk serves per model (for "on target firmware"), as the
    /// servers started.
    targets: BTreeMap<String, String>,
    /// Ids for requests seen live, which the fetch log has not numbered yet: above any row
    /// id, so at the same millisecond a live request sorts after the stored ones.
    next_live_id: i64,
}

/// The first id [`Board`] gives a request seen live.
const FIRST_LIVE_ID: i64 = 1 << 53;

#[derive(Debug)]
struct Tracked {
    device: Device,
    /// Newest first, at most `STATUS_LOG_DEPTH`.
    log: VecDeque<FetchLogEntry>,
    lan: LanEvidence,
    /// Oldest first, at most `EVENT_DEPTH`: what the status ladder reads besides requests.
    events: VecDeque<DeviceEvent>,
}

/// How many of a device's newest timeline events the board keeps, as the desk reads them.
const EVENT_DEPTH: usize = provdesk_desk::timeline::EVENT_DEPTH;

impl Tracked {
    /// Keeps a timeline row seen live (its id is 0: it is not read back from the database).
    fn remember(&mut self, row: NewDeviceEvent) {
        self.events.push_back(DeviceEvent {
            id: 0,
            at_ms: row.at_ms,
            mac: row.mac,
            peer: row.peer,
            source: row.source,
            kind: row.kind,
            summary: row.summary,
            detail: row.detail,
        });
        while self.events.len() > EVENT_DEPTH {
            self.events.pop_front();
        }
    }
}

/// The newest syslog line among `events` (oldest first), for a tile.
pub fn last_syslog_of(events: &[DeviceEvent]) -> Option<LastSyslog> {
    events
        .iter()
        .rev()
        .find(|e| e.source == EventSource::Syslog)
        .map(|e| LastSyslog {
            at_ms: e.at_ms,
            text: e.summary.clone(),
        })
}

impl Board {
    pub fn with_targets(targets: BTreeMap<String, String>) -> Board {
        Board {
            targets,
            ..Board::default()
        }
    }

    /// Beyond a large bench; phones past it still get served and logged, only not tracked.
    pub const MAX_DEVICES: usize = 20_000;

    /// Takes one event in. `lookup` is asked once for a device not tracked yet; `None` (not in
    /// the inventory yet) means it is asked again on its next event.
    pub fn observe(&mut self, event: &Event, lookup: &mut impl FnMut(Mac) -> Option<Seed>) {
        match event {
            Event::Fetch(fetch) => {
                let Some(mac) = fetch.mac else { return };
                self.live.finished(mac);
                self.touched.insert(mac);
                let live_id = FIRST_LIVE_ID + self.next_live_id;
                self.next_live_id += 1;
                if let Some(tracked) = self.track(mac, lookup) {
                    let mut entry = log_entry(fetch);
                    // The timeline leaves out rows without an id.
                    entry.id = Some(live_id);
                    // The recorder may have written this request before the lookup read the
                    // log; then it is there already.
                    if !tracked.log.iter().any(|e| same_request(e, &entry)) {
                        tracked.log.push_front(entry);
                        tracked.log.truncate(STATUS_LOG_DEPTH);
                    }
                    tracked.device.last_ip = Some(fetch.peer.ip().to_string());
                }
            }
            Event::Progress(progress) => {
                if let Some(mac) = progress.mac {
                    self.live.progress(mac, progress.bytes, progress.total);
                    self.touched.insert(mac);
                    self.track(mac, lookup);
                }
            }
            Event::Discovered { mac, .. } => {
                // The recorder has just added it; look it up afresh.
                self.devices.remove(mac);
                self.touched.insert(*mac);
            }
            Event::Dhcp(dhcp) => {
                let Some(mac) = dhcp.mac else { return };
                let Some(row) = event.device_event() else {
                    return;
                };
                self.touched.insert(mac);
                if let Some(tracked) = self.track(mac, lookup) {
                    match dhcp.kind {
                        "ack" => tracked.lan.leased = dhcp.address.map(|a| a.to_string()),
                        "release" | "decline" | "nak" => tracked.lan.leased = None,
                        _ => {}
                    }
                    tracked.remember(row);
                }
            }
            Event::PlugAndPlay {
                mac: Some(mac),
                outcome,
                ..
            } => {
                let Some(row) = event.device_event() else {
                    return;
                };
                self.touched.insert(*mac);
                if let Some(tracked) = self.track(*mac, lookup) {
                    if matches!(outcome, PnpOutcome::Notified { .. }) {
                        tracked.lan.asked_for_server = true;
                    }
                    tracked.remember(row);
                }
            }
            Event::Syslog(SyslogEvent::Line(line)) => {
                let Some(mac) = line.mac else { return };
                // Worded as the device's timeline words it.
                let Some(row) = event.device_event() else {
                    return;
                };
                self.touched.insert(mac);
                if let Some(tracked) = self.track(mac, lookup) {
                    tracked.remember(row);
                }
            }
            Event::Build(_)
            | Event::Listening { .. }
            | Event::Warning { .. }
            | Event::PlugAndPlay { .. }
            | Event::Syslog(_) => {}
        }
    }

    fn track(
        &mut self,
        mac: Mac,
        lookup: &mut impl FnMut(Mac) -> Option<Seed>,
    ) -> Option<&mut Tracked> {
        if !self.devices.contains_key(&mac) {
            if self.devices.len() >= Self::MAX_DEVICES {
                return None;
            }
            let (device, mut log, lan, mut events) = lookup(mac)?;
            log.truncate(STATUS_LOG_DEPTH);
            events.drain(..events.len().saturating_sub(EVENT_DEPTH));
            self.devices.insert(
                mac,
                Tracked {
                    device,
                    log: log.into(),
                    lan,
                    events: events.into(),
                },
            );
        }
        self.devices.get_mut(&mac)
    }

    /// The tiles of the devices touched since the last call, judged against `manifest`.
    pub fn tiles(
        &mut self,
        manifest: &Manifest,
        lookup: &mut impl FnMut(Mac) -> Option<Seed>,
    ) -> Vec<Tile> {
        let touched = std::mem::take(&mut self.touched);
        let targets = std::mem::take(&mut self.targets);
        let mut tiles = Vec::with_capacity(touched.len());
        for mac in touched {
            let live = self.live.clone();
            let Some(tracked) = self.track(mac, lookup) else {
                continue;
            };
            let log: Vec<FetchLogEntry> = tracked.log.iter().cloned().collect();
            let last = log.first().cloned();
            let events: Vec<DeviceEvent> = tracked.events.iter().cloned().collect();
            let last_syslog = last_syslog_of(&events);
            // The same ladder the device list and page climb (applied, on target firmware).
            let rung = status::ladder(
                &tracked.device,
                &timeline::merge(log, events),
                manifest,
                targets.get(&tracked.device.model).map(String::as_str),
                &tracked.lan,
            );
            let status = live.overlay(mac, rung.status);
            tiles.push(Tile::new(&tracked.device, status, last.as_ref()).with_syslog(last_syslog));
        }
        self.targets = targets;
        tiles
    }
}

/// The fetch-log row the recorder writes for this fetch (the fields the status reads).
fn log_entry(fetch: &Fetch) -> FetchLogEntry {
    FetchLogEntry {
        id: None,
        ts: fetch.at_ms,
        protocol: fetch.protocol.as_str().to_string(),
        peer: fetch.peer.to_string(),
        name: fetch.name.clone(),
        mac: fetch.mac,
        user_agent: fetch.user_agent.clone(),
        status: fetch.outcome.status_text(),
        reason: fetch.outcome.reason().map(str::to_string),
        bytes: fetch.bytes,
        duration_ms: fetch.duration_ms,
        artifact_hash: fetch.artifact.as_ref().map(|a| a.hash.clone()),
    }
}

fn same_request(a: &FetchLogEntry, b: &FetchLogEntry) -> bool {
    a.ts == b.ts && a.peer == b.peer && a.name == b.name && a.status == b.status
}

#[cfg(test)]
mod tests {
    use super::*;
    use provdesk_core::build::{ArtifactKind, ManifestEntry};
    use provdesk_core::status::ProvisioningStatus;
    use provdesk_serve::events::{ArtifactRef, Outcome, Progress, Protocol};

    const MAC: &str = "000b82001003";

    fn mac() -> Mac {
        MAC.parse().unwrap()
    }

    fn manifest(hash: &str) -> Manifest {
        let mut manifest = Manifest::default();
        manifest.entries.insert(
            format!("cfg{MAC}.xml"),
            ManifestEntry {
                file: format!("build/cfg{MAC}.xml"),
                hash: hash.into(),
                input: String::new(),
                version: 1,
                kind: ArtifactKind::DeviceXml,
                mac: Some(mac()),
                model: Some("gxp2170".into()),
                encrypted: false,
                size: 10,
            },
        );
        manifest
    }

    fn fetch(at_ms: i64, name: &str, outcome: Outcome, hash: Option<&str>) -> Event {
        Event::Fetch(Fetch {
            at_ms,
            protocol: Protocol::Http,
            peer: "127.0.0.1:5000".parse().unwrap(),
            name: name.into(),
            mac: Some(mac()),
            model: Some("gxp2170".into()),
            user_agent: None,
            outcome,
            bytes: 10,
            duration_ms: 1,
            artifact: hash.map(|h| ArtifactRef {
                kind: ArtifactKind::DeviceXml,
                hash: h.into(),
                version: 1,
            }),
        })
    }

    fn own_xml(at_ms: i64, hash: &str) -> Event {
        fetch(
            at_ms,
            &format!("cfg{MAC}.xml"),
            Outcome::Served { status: 200 },
            Some(hash),
        )
    }

    /// A lookup that knows the one device, with `log` already logged.
    fn known(log: Vec<FetchLogEntry>) -> impl FnMut(Mac) -> Option<Seed> {
        let mut calls = 0;
        move |m| {
            calls += 1;
            assert!(calls <= 1, "a tracked device is not looked up again");
            (m == mac()).then(|| {
                (
                    Device::new(m, "gxp2170"),
                    log.clone(),
                    LanEvidence::default(),
                    Vec::new(),
                )
            })
        }
    }

    fn status_after(events: &[Event], manifest: &Manifest) -> ProvisioningStatus {
        let mut board = Board::default();
        let mut lookup = known(Vec::new());
        for event in events {
            board.observe(event, &mut lookup);
        }
        let tiles = board.tiles(manifest, &mut lookup);
        assert_eq!(tiles.len(), 1);
        tiles[0].status.clone()
    }

    #[test]
    fn a_syslog_line_from_the_phone_shows_on_its_tile_as_its_timeline_words_it() {
        let line = Event::Syslog(SyslogEvent::Line(provdesk_serve::events::SyslogLine {
            at_ms: 5,
            peer: "127.0.0.9:514".parse().unwrap(),
            mac: Some(mac()),
            tied_by: None,
            format: provdesk_core::syslog::Format::Rfc3164,
            facility: None,
            severity: Some(provdesk_core::syslog::Severity::Error),
            hostname: None,
            app: Some("GS_LOG".into()),
            message: "SIP registration failed".into(),
            sent_at_ms: None,
            other_macs: Vec::new(),
            cut_bytes: 0,
        }));
        let mut board = Board::default();
        let mut lookup = known(Vec::new());
        board.observe(&line, &mut lookup);
        let tiles = board.tiles(&manifest("h1"), &mut lookup);
        let shown = tiles[0]
            .last_syslog
            .clone()
            .expect("the line is on the tile");
        assert_eq!(shown.at_ms, 5);
        assert_eq!(Some(shown.text), line.device_event().map(|row| row.summary));
        assert!(
            tiles[0]
                .last_syslog
                .as_ref()
                .is_some_and(|l| l.text.contains("SIP registration failed"))
        );
    }

    #[test]
    fn a_phone_that_comes_back_for_its_xml_is_applied_on_its_tile_live() {
        assert_eq!(
            status_after(&[own_xml(1, "h1"), own_xml(2, "h1")], &manifest("h1")),
            ProvisioningStatus::Applied
        );
    }

    #[test]
    fn a_device_that_fetched_its_own_xml_is_up_to_date_then_stale_after_a_build() {
        let events = [own_xml(1, "h1")];
        assert_eq!(
            status_after(&events, &manifest("h1")),
            ProvisioningStatus::UpToDate
        );
        assert_eq!(
            status_after(&events, &manifest("h2")),
            ProvisioningStatus::Stale
        );
    }

    #[test]
    fn misses_then_denials_show_with_their_reason() {
        let miss = fetch(
            1,
            "cfgxyz.xml",
            Outcome::NotFound {
                reason: "no such file".into(),
            },
            None,
        );
        assert_eq!(
            status_after(std::slice::from_ref(&miss), &manifest("h1")),
            ProvisioningStatus::Requesting
        );
        let denied = fetch(
            2,
            &format!("cfg{MAC}.xml"),
            Outcome::Denied {
                reason: "wrong password".into(),
            },
            None,
        );
        assert_eq!(
            status_after(&[miss, denied], &manifest("h1")),
            ProvisioningStatus::Denied {
                reason: "wrong password".into()
            }
        );
    }

    #[test]
    fn firmware_progress_shows_until_the_transfer_ends() {
        let progress = Event::Progress(Progress {
            transfer: 1,
            protocol: Protocol::Tftp,
            peer: "127.0.0.1:5000".parse().unwrap(),
            name: "gxp2170fw.bin".into(),
            mac: Some(mac()),
            bytes: 45,
            total: Some(100),
        });
        let mut board = Board::default();
        let mut lookup = known(Vec::new());
        board.observe(&own_xml(1, "h1"), &mut lookup);
        board.observe(&progress, &mut lookup);
        let tiles = board.tiles(&manifest("h1"), &mut lookup);
        assert_eq!(
            tiles[0].status,
            ProvisioningStatus::FirmwareInProgress { percent: 45 }
        );
        assert_eq!(tiles[0].label, "firmware 45%");
        assert!(
            board.tiles(&manifest("h1"), &mut lookup).is_empty(),
            "only touched devices are reported"
        );
        board.observe(&own_xml(2, "h1"), &mut lookup);
        let tiles = board.tiles(&manifest("h1"), &mut lookup);
        // The transfer is over, and it came back for its XML: the config was taken.
        assert_eq!(tiles[0].status, ProvisioningStatus::Applied);
        assert_eq!(tiles[0].last_request.as_ref().unwrap().at_ms, 2);
    }

    #[test]
    fn the_logged_history_counts_and_a_request_already_logged_is_not_doubled() {
        let Event::Fetch(first) = own_xml(1, "h1") else {
            unreachable!()
        };
        let logged = vec![log_entry(&first)];
        let mut board = Board::default();
        let mut lookup = known(logged);
        // The recorder wrote the request before the board looked the device up.
        board.observe(&Event::Fetch(first), &mut lookup);
        assert_eq!(board.devices[&mac()].log.len(), 1);
        for at in 2..200 {
            board.observe(&own_xml(at, "h1"), &mut lookup);
        }
        assert_eq!(board.devices[&mac()].log.len(), STATUS_LOG_DEPTH, "bounded");
        let tiles = board.tiles(&manifest("h1"), &mut lookup);
        assert_eq!(tiles[0].last_request.as_ref().unwrap().at_ms, 199);
    }

    #[test]
    fn unknown_devices_are_looked_up_again_once_discovered() {
        let mut board = Board::default();
        let mut inventory_has_it = false;
        let mut lookup = |m: Mac| {
            inventory_has_it.then(|| {
                (
                    Device::new(m, "gxp2170"),
                    Vec::new(),
                    LanEvidence::default(),
                    Vec::new(),
                )
            })
        };
        board.observe(&own_xml(1, "h1"), &mut lookup);
        assert!(board.tiles(&manifest("h1"), &mut lookup).is_empty());
        inventory_has_it = true;
        let mut lookup = |m: Mac| {
            inventory_has_it.then(|| {
                (
                    Device::new(m, "gxp2170"),
                    Vec::new(),
                    LanEvidence::default(),
                    Vec::new(),
                )
            })
        };
        board.observe(
            &Event::Discovered {
                mac: mac(),
                model: Some("gxp2170".into()),
                ip: "127.0.0.1".into(),
                firmware_version: None,
            },
            &mut lookup,
        );
        let tiles = board.tiles(&manifest("h1"), &mut lookup);
        assert_eq!(tiles.len(), 1);
        assert_eq!(tiles[0].model, "gxp2170");
    }

    #[test]
    fn a_lease_then_a_plug_and_play_request_show_before_the_first_fetch() {
        let dhcp = |kind: &'static str| {
            Event::Dhcp(provdesk_serve::events::DhcpEvent {
                at_ms: 1,
                interface: "eth0".into(),
                kind,
                mac: Some(mac()),
                address: Some(std::net::Ipv4Addr::new(192, 0, 2, 50)),
                vendor_class: Some("Grandstream GXP2170".into()),
                detail: None,
            })
        };
        let mut board = Board::default();
        let mut lookup = known(Vec::new());
        board.observe(&dhcp("discover"), &mut lookup);
        let tiles = board.tiles(&manifest("h1"), &mut lookup);
        assert_eq!(
            tiles[0].status,
            ProvisioningStatus::NeverSeen,
            "a DISCOVER leases nothing"
        );
        board.observe(&dhcp("ack"), &mut lookup);
        let tiles = board.tiles(&manifest("h1"), &mut lookup);
        assert_eq!(
            tiles[0].status,
            ProvisioningStatus::GotAddress {
                address: "192.0.2.50".into()
            }
        );
        assert_eq!(tiles[0].label, "got address 192.0.2.50");
        board.observe(
            &Event::PlugAndPlay {
                mac: Some(mac()),
                model: Some("GXP2170".into()),
                firmware: None,
                ip: "192.0.2.50".into(),
                outcome: PnpOutcome::Notified {
                    url: "http://192.0.2.2:8080/".into(),
                },
            },
            &mut lookup,
        );
        let tiles = board.tiles(&manifest("h1"), &mut lookup);
        assert_eq!(tiles[0].status, ProvisioningStatus::AskedForServer);
        // Its first fetch says more (after the SUBSCRIBE, which is stamped when it is seen).
        let later = provdesk_serve::events::now_ms() + 1_000;
        board.observe(&own_xml(later, "h1"), &mut lookup);
        let tiles = board.tiles(&manifest("h1"), &mut lookup);
        assert_eq!(tiles[0].status, ProvisioningStatus::UpToDate);
    }
}
