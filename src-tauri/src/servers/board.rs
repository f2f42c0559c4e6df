//! The device board behind the Live screen's tiles: each device's newest requests, kept in
//! memory from the events, so a tile's status follows a request at once instead of waiting
//! for the recorder to write the fetch log. The status itself is the core's
//! (`status::derive` with the running server's live transfers), the same as
//! `provdesk device show` prints.
//!
//! Invariants: no I/O here; the caller passes a lookup for devices seen for the first time
//! (their inventory row and logged requests) and the manifest being served. Memory is bounded:
//! [`STATUS_LOG_DEPTH`] requests per device, at most [`Board::MAX_DEVICES`] devices.

use std::collections::{BTreeSet, HashMap, VecDeque};

use provdesk_core::Mac;
use provdesk_core::build::Manifest;
use provdesk_core::inventory::{Device, FetchLogEntry};
use provdesk_core::status::{self, LiveTransfers, STATUS_LOG_DEPTH};
use provdesk_serve::events::{Event, Fetch};

use crate::dto::Tile;

/// A device's inventory row and its newest logged requests (newest first).
pub type Seed = (Device, Vec<FetchLogEntry>);

#[derive(Debug, Default)]
pub struct Board {
    devices: HashMap<Mac, Tracked>,
    live: LiveTransfers,
    /// Devices whose status may have changed since the last [`Board::tiles`].
    touched: BTreeSet<Mac>,
}

#[derive(Debug)]
struct Tracked {
    device: Device,
    /// Newest first, at most `STATUS_LOG_DEPTH`.
    log: VecDeque<FetchLogEntry>,
}

impl Board {
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
                if let Some(tracked) = self.track(mac, lookup) {
                    let entry = log_entry(fetch);
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
            Event::Build(_)
            | Event::Listening { .. }
            | Event::Warning { .. }
            | Event::PlugAndPlay { .. }
            | Event::Dhcp(_)
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
            let (device, mut log) = lookup(mac)?;
            log.truncate(STATUS_LOG_DEPTH);
            self.devices.insert(
                mac,
                Tracked {
                    device,
                    log: log.into(),
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
        let mut tiles = Vec::with_capacity(touched.len());
        for mac in touched {
            let live = self.live.clone();
            let Some(tracked) = self.track(mac, lookup) else {
                continue;
            };
            let log: Vec<FetchLogEntry> = tracked.log.iter().cloned().collect();
            let derived = status::derive(&tracked.device, &log, manifest);
            let status = live.overlay(mac, derived);
            tiles.push(Tile::new(&tracked.device, status, log.first()));
        }
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
            (m == mac()).then(|| (Device::new(m, "gxp2170"), log.clone()))
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
        assert_eq!(tiles[0].status, ProvisioningStatus::UpToDate);
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
        let mut lookup = |m: Mac| inventory_has_it.then(|| (Device::new(m, "gxp2170"), Vec::new()));
        board.observe(&own_xml(1, "h1"), &mut lookup);
        assert!(board.tiles(&manifest("h1"), &mut lookup).is_empty());
        inventory_has_it = true;
        let mut lookup = |m: Mac| inventory_has_it.then(|| (Device::new(m, "gxp2170"), Vec::new()));
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
}
