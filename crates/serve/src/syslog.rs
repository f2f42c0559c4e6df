//! The syslog receiver: phones' lines over UDP, read by `provdesk_core::syslog`, tied to
//! their device and put on the event bus, whose recorder adds them to the device's timeline.
//!
//! Invariants: a line is tied to a device of the desk's only: by a MAC it names that the
//! inventory holds, else by its source address (a lease of the desk's DHCP responder, else
//! the address the device last reached the desk from); a MAC the inventory does not hold
//! ties nothing, so a flood of made-up MACs cannot make up devices. At most
//! [`provdesk_core::syslog::MAX_LINE_BYTES`] of a datagram are kept; the rest is counted
//! (`cut_bytes`). Each source address gets [`SyslogConfig::per_source`] lines a second and
//! all of them together [`SyslogConfig::total`]: what is over is dropped before the bus and
//! counted, reported once per [`SyslogConfig::report_every`] (the busiest sources one by one,
//! the rest together), so a flood costs the bus and the recorder a bounded rate and the
//! receiver bounded memory ([`SyslogConfig::max_sources`] sources tracked). Nothing a sender
//! does stops the receiver: only a failing socket or shutdown does.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use provdesk_core::Mac;
use provdesk_core::inventory::{Device, Inventory};
use provdesk_core::syslog::{self as reader, MAX_LINE_BYTES};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventBus, SyslogDropped, SyslogEvent, SyslogLine, TiedBy, now_ms};
use crate::owners::{LeaseDirectory, OwnerDirectory};

/// A token bucket's size: `rate` lines a second, with bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub rate: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogConfig {
    /// One source address. A phone at level `debug` sends every SIP message, a few dozen
    /// lines in a second at boot; at `info` a few a minute.
    pub per_source: RateLimit,
    /// Every source together: what the bus and the timeline take from syslog at most.
    pub total: RateLimit,
    /// Source addresses tracked at once; further ones share the total bucket only.
    pub max_sources: usize,
    /// How often drops are reported (and idle sources forgotten).
    pub report_every: Duration,
    /// Sources whose drops are reported one by one in a report; the rest are summed.
    pub named_drop_reports: usize,
}

impl Default for SyslogConfig {
    fn default() -> SyslogConfig {
        SyslogConfig {
            per_source: RateLimit {
                rate: 100,
                burst: 500,
            },
            total: RateLimit {
                rate: 1000,
                burst: 5000,
            },
            max_sources: 4096,
            report_every: Duration::from_secs(1),
            named_drop_reports: 8,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    #[error("the syslog socket failed: {0}")]
    Socket(#[source] std::io::Error),
}

/// The biggest UDP payload, so a datagram is never truncated unseen by the kernel: what is
/// cut is cut here, and counted.
const DATAGRAM_BUFFER: usize = 65_536;

/// Addresses learned from the event stream, at most (a peer spoofing many addresses cannot
/// grow the directory further).
const MAX_LEARNED_ADDRESSES: usize = 65_536;

/// A source forgotten after this long without a line (its bucket is full again by then).
const IDLE_SOURCE: Duration = Duration::from_secs(10);

/// Which device an address or a MAC belongs to, as far as the desk knows: the inventory's
/// devices and their last address, the DHCP responder's leases, and what the event stream
/// shows since (fetches, plug-and-play requests, leases).
pub struct DeviceDirectory {
    known: HashSet<Mac>,
    by_address: HashMap<IpAddr, Mac>,
    leases: Arc<LeaseDirectory>,
    /// What the event stream taught since the last reload began, laid over the reload.
    learned: HashMap<IpAddr, Mac>,
}

impl DeviceDirectory {
    /// From the inventory's devices; an address two devices were last seen at belongs to
    /// the one seen last.
    pub fn new(devices: &[Device], leases: Arc<LeaseDirectory>) -> DeviceDirectory {
        let mut directory = DeviceDirectory {
            known: HashSet::new(),
            by_address: HashMap::new(),
            leases,
            learned: HashMap::new(),
        };
        directory.load(devices);
        directory
    }

    fn load(&mut self, devices: &[Device]) {
        let mut by_time: Vec<&Device> = devices.iter().collect();
        by_time.sort_by_key(|d| d.last_seen);
        self.known = devices.iter().map(|d| d.mac).collect();
        self.by_address = by_time
            .into_iter()
            .filter_map(|d| {
                let ip: IpAddr = d.last_ip.as_deref()?.parse().ok()?;
                Some((ip.to_canonical(), d.mac))
            })
            .collect();
        for (ip, mac) in &self.learned {
            self.by_address.insert(*ip, *mac);
            self.known.insert(*mac);
        }
    }

    /// `mac` reached the desk from `ip` just now.
    fn saw(&mut self, ip: IpAddr, mac: Mac) {
        let ip = ip.to_canonical();
        if self.by_address.len() >= MAX_LEARNED_ADDRESSES && !self.by_address.contains_key(&ip) {
            return;
        }
        self.by_address.insert(ip, mac);
        self.known.insert(mac);
        if self.learned.len() < MAX_LEARNED_ADDRESSES {
            self.learned.insert(ip, mac);
        }
    }

    /// The device a line from `peer` naming `macs` belongs to, how it was told, and the
    /// named MACs that are no device of the desk's.
    pub fn tie(&self, peer: IpAddr, macs: &[Mac]) -> (Option<(Mac, TiedBy)>, Vec<Mac>) {
        let peer = peer.to_canonical();
        let named = macs.iter().copied().find(|m| self.known.contains(m));
        let others = macs
            .iter()
            .copied()
            .filter(|m| !self.known.contains(m))
            .collect();
        let tied = named
            .map(|m| (m, TiedBy::MacInLine))
            .or_else(|| self.leases.owner_of(peer).map(|m| (m, TiedBy::Lease)))
            .or_else(|| self.by_address.get(&peer).map(|m| (*m, TiedBy::Address)));
        (tied, others)
    }

    /// Learns from one event of the bus; whether the inventory should be read again (a
    /// device may have been added, removed or discovered).
    fn follow(&mut self, event: &Event) -> bool {
        match event {
            Event::Fetch(fetch) => {
                let mac = fetch.mac.or_else(|| {
                    let agent = fetch.user_agent.as_deref()?;
                    crate::http::parse_user_agent(agent).map(|a| a.mac)
                });
                if let Some(mac) = mac {
                    self.saw(fetch.peer.ip(), mac);
                }
                false
            }
            Event::PlugAndPlay {
                mac: Some(mac), ip, ..
            } => {
                if let Ok(ip) = ip.parse() {
                    self.saw(ip, *mac);
                }
                false
            }
            Event::Dhcp(dhcp) if dhcp.kind == "ack" => {
                if let (Some(mac), Some(address)) = (dhcp.mac, dhcp.address) {
                    self.saw(IpAddr::V4(address), mac);
                }
                false
            }
            Event::Build(_) | Event::Discovered { .. } => true,
            _ => false,
        }
    }
}

/// A source's (or everyone's) bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(limit: RateLimit, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(limit.burst),
            at: now,
        }
    }

    fn take(&mut self, limit: RateLimit, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(limit.rate)).min(f64::from(limit.burst));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
struct Source {
    bucket: Bucket,
    last_line: Instant,
    dropped: u64,
}

/// The receiver's state without its socket: which lines pass, and the drop counts.
pub struct Receiver {
    config: SyslogConfig,
    sources: HashMap<IpAddr, Source>,
    total: Bucket,
    /// Lines of tracked sources over the total, and every dropped line of sources beyond
    /// `max_sources`, since the last report.
    dropped_total: u64,
}

impl Receiver {
    pub fn new(config: SyslogConfig, now: Instant) -> Receiver {
        Receiver {
            total: Bucket::full(config.total, now),
            config,
            sources: HashMap::new(),
            dropped_total: 0,
        }
    }

    /// One datagram from `peer`: its line, when it is within the limits.
    pub fn receive(
        &mut self,
        datagram: &[u8],
        peer: SocketAddr,
        now: Instant,
        now_ms: i64,
        directory: &DeviceDirectory,
    ) -> Option<SyslogLine> {
        let ip = peer.ip().to_canonical();
        let tracked =
            self.sources.len() < self.config.max_sources || self.sources.contains_key(&ip);
        if tracked {
            let limit = self.config.per_source;
            let source = self.sources.entry(ip).or_insert_with(|| Source {
                bucket: Bucket::full(limit, now),
                last_line: now,
                dropped: 0,
            });
            source.last_line = now;
            if !source.bucket.take(limit, now) {
                source.dropped += 1;
                return None;
            }
        }
        if !self.total.take(self.config.total, now) {
            self.dropped_total += 1;
            return None;
        }
        let line = reader::parse(datagram, now_ms);
        let (tied, other_macs) = directory.tie(ip, &line.macs);
        Some(SyslogLine {
            at_ms: now_ms,
            peer,
            mac: tied.map(|(mac, _)| mac),
            tied_by: tied.map(|(_, by)| by),
            format: line.format,
            facility: line.facility,
            severity: line.severity,
            hostname: line.hostname,
            app: line.app,
            message: line.message,
            sent_at_ms: line.sent_at_ms,
            other_macs,
            cut_bytes: datagram.len().saturating_sub(MAX_LINE_BYTES) as u64,
        })
    }

    /// The drops since the last report (the busiest sources by name, the rest summed), and
    /// idle sources forgotten.
    pub fn report(
        &mut self,
        now: Instant,
        now_ms: i64,
        directory: &DeviceDirectory,
    ) -> Vec<SyslogDropped> {
        let mut over: Vec<(IpAddr, u64)> = self
            .sources
            .iter_mut()
            .filter(|(_, s)| s.dropped > 0)
            .map(|(ip, s)| (*ip, std::mem::take(&mut s.dropped)))
            .collect();
        self.sources
            .retain(|_, s| now.saturating_duration_since(s.last_line) < IDLE_SOURCE);
        over.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let named = over.len().min(self.config.named_drop_reports);
        let mut reports: Vec<SyslogDropped> = over[..named]
            .iter()
            .map(|&(ip, lines)| SyslogDropped {
                at_ms: now_ms,
                peer: Some(ip),
                mac: directory.tie(ip, &[]).0.map(|(mac, _)| mac),
                lines,
                sources: 1,
                reason: "rate",
                per_second: self.config.per_source.rate,
            })
            .collect();
        let rest = &over[named..];
        if !rest.is_empty() {
            reports.push(SyslogDropped {
                at_ms: now_ms,
                peer: None,
                mac: None,
                lines: rest.iter().map(|(_, n)| n).sum(),
                sources: rest.len() as u64,
                reason: "rate",
                per_second: self.config.per_source.rate,
            });
        }
        if self.dropped_total > 0 {
            reports.push(SyslogDropped {
                at_ms: now_ms,
                peer: None,
                mac: None,
                lines: std::mem::take(&mut self.dropped_total),
                sources: 0,
                reason: "total",
                per_second: self.config.total.rate,
            });
        }
        reports
    }
}

/// What the receiver reads its devices from.
pub struct DeviceSource {
    pub inventory: Inventory,
    pub leases: Arc<LeaseDirectory>,
}

/// Receives until `shutdown`: every line within the limits becomes an `Event::Syslog` line,
/// drops are reported every [`SyslogConfig::report_every`] and once more at shutdown. The inventory is read at start
/// and again (off the async threads, one read at a time) after a build or a discovery.
pub async fn run(
    socket: UdpSocket,
    config: SyslogConfig,
    source: DeviceSource,
    events: EventBus,
    shutdown: CancellationToken,
) -> Result<(), SyslogError> {
    let DeviceSource { inventory, leases } = source;
    let mut bus = events.subscribe();
    let devices = read_devices(&inventory).await;
    let mut directory = DeviceDirectory::new(&devices, leases);
    // A reload's devices, or `None` when the inventory could not be read (the directory
    // keeps what it knows).
    let (reloaded, mut reloads) = mpsc::channel::<Option<Vec<Device>>>(1);
    let mut reload_wanted = false;
    let mut reloading = false;
    let mut receiver = Receiver::new(config.clone(), Instant::now());
    let mut report = tokio::time::interval(config.report_every);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buffer = vec![0u8; DATAGRAM_BUFFER];
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                // What was dropped since the last report is counted too.
                for dropped in receiver.report(Instant::now(), now_ms(), &directory) {
                    events.emit(Event::Syslog(SyslogEvent::Dropped(dropped)));
                }
                return Ok(());
            }
            received = socket.recv_from(&mut buffer) => {
                let (len, peer) = match received {
                    Ok(received) => received,
                    // An ICMP error for an earlier datagram, or an interrupted call: the
                    // socket itself still works.
                    Err(e) if transient(&e) => continue,
                    Err(e) => return Err(SyslogError::Socket(e)),
                };
                let now = Instant::now();
                if let Some(line) = receiver.receive(&buffer[..len], peer, now, now_ms(), &directory) {
                    events.emit(Event::Syslog(SyslogEvent::Line(line)));
                }
            }
            event = bus.recv() => match event {
                Ok(event) => reload_wanted |= directory.follow(&event),
                // Missed events cost only a late tie; the next reload catches up.
                Err(broadcast::error::RecvError::Lagged(_)) => reload_wanted = true,
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            Some(devices) = reloads.recv() => {
                if let Some(devices) = devices {
                    directory.load(&devices);
                }
                reloading = false;
            }
            _ = report.tick() => {
                for dropped in receiver.report(Instant::now(), now_ms(), &directory) {
                    events.emit(Event::Syslog(SyslogEvent::Dropped(dropped)));
                }
                if reload_wanted && !reloading {
                    reload_wanted = false;
                    reloading = true;
                    directory.learned.clear();
                    let (inventory, reloaded) = (inventory.clone(), reloaded.clone());
                    tokio::task::spawn_blocking(move || {
                        let devices = inventory
                            .list_devices()
                            .map_err(|e| tracing::warn!(error = %e, "syslog: the inventory could not be read; lines keep the devices known before"))
                            .ok();
                        let _ = reloaded.blocking_send(devices);
                    });
                }
            }
        }
    }
}

async fn read_devices(inventory: &Inventory) -> Vec<Device> {
    let inventory = inventory.clone();
    tokio::task::spawn_blocking(move || inventory.list_devices())
        .await
        .ok()
        .and_then(|listed| {
            listed
                .map_err(|e| tracing::warn!(error = %e, "syslog: the inventory could not be read"))
                .ok()
        })
        .unwrap_or_default()
}

/// Errors a UDP socket reports for one datagram, after which it goes on working.
fn transient(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionReset | Interrupted | WouldBlock
    ) || error.raw_os_error() == Some(libc::EMSGSIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(mac: &str, ip: &str, last_seen: i64) -> Device {
        let mut device = Device::new(mac.parse().unwrap(), "gxp2170");
        device.last_ip = Some(ip.into());
        device.last_seen = Some(last_seen);
        device
    }

    fn mac(text: &str) -> Mac {
        text.parse().unwrap()
    }

    fn directory() -> DeviceDirectory {
        DeviceDirectory::new(
            &[
                phone("000b82000001", "198.51.100.11", 2),
                // Seen earlier at the address the first phone has now.
                phone("000b82000002", "198.51.100.11", 1),
                phone("000b82000003", "198.51.100.13", 1),
            ],
            Arc::default(),
        )
    }

    #[test]
    fn a_known_mac_in_the_line_wins_then_the_lease_then_the_last_address() {
        let leases = Arc::new(LeaseDirectory::default());
        let mut directory = directory();
        directory.leases = Arc::clone(&leases);
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(
            directory.tie(ip("198.51.100.11"), &[]),
            (Some((mac("000b82000001"), TiedBy::Address)), vec![])
        );
        let far_future = u64::MAX / 2;
        leases.lease(ip("198.51.100.11"), mac("000b82000003"), far_future);
        assert_eq!(
            directory.tie(ip("198.51.100.11"), &[]).0,
            Some((mac("000b82000003"), TiedBy::Lease))
        );
        let stranger = mac("c074ad000009");
        assert_eq!(
            directory.tie(ip("198.51.100.11"), &[stranger, mac("000b82000002")]),
            (
                Some((mac("000b82000002"), TiedBy::MacInLine)),
                vec![stranger]
            )
        );
        // An unknown address with an unknown MAC is nobody's.
        assert_eq!(
            directory.tie(ip("192.0.2.99"), &[stranger]),
            (None, vec![stranger])
        );
        // A v4 peer on a dual-stack socket is the same address.
        assert_eq!(
            directory.tie(ip("::ffff:198.51.100.13"), &[]).0,
            Some((mac("000b82000003"), TiedBy::Address))
        );
    }

    #[test]
    fn the_event_stream_moves_addresses_and_survives_a_reload() {
        let mut directory = directory();
        let fetch = crate::events::Fetch {
            at_ms: 0,
            protocol: crate::events::Protocol::Http,
            peer: "198.51.100.50:40000".parse().unwrap(),
            name: "cfg.xml".into(),
            mac: None,
            model: None,
            user_agent: Some("Grandstream Model HW GXP2170 SW 1.0.11.3 DevId 000b82000003".into()),
            outcome: crate::events::Outcome::Served { status: 200 },
            bytes: 0,
            duration_ms: 0,
            artifact: None,
        };
        assert!(!directory.follow(&Event::Fetch(fetch)));
        let moved: IpAddr = "198.51.100.50".parse().unwrap();
        assert_eq!(
            directory.tie(moved, &[]).0,
            Some((mac("000b82000003"), TiedBy::Address))
        );
        // A reload from an inventory that has not written the sighting yet keeps it.
        directory.load(&[phone("000b82000003", "198.51.100.13", 1)]);
        assert_eq!(
            directory.tie(moved, &[]).0.map(|t| t.0),
            Some(mac("000b82000003"))
        );
        assert!(directory.follow(&Event::Discovered {
            mac: mac("000b82000004"),
            model: None,
            ip: "198.51.100.60".into(),
            firmware_version: None,
        }));
    }

    #[test]
    fn a_flood_is_cut_to_the_rate_and_every_drop_is_counted() {
        let config = SyslogConfig {
            per_source: RateLimit {
                rate: 10,
                burst: 20,
            },
            total: RateLimit {
                rate: 1000,
                burst: 1000,
            },
            ..SyslogConfig::default()
        };
        let directory = directory();
        let start = Instant::now();
        let mut receiver = Receiver::new(config, start);
        let flood: SocketAddr = "198.51.100.11:514".parse().unwrap();
        let quiet: SocketAddr = "198.51.100.13:514".parse().unwrap();
        let mut passed = 0;
        // 10,000 lines a second for 5 s from one address, and a line a second from another.
        for n in 0..50_000u32 {
            let now = start + Duration::from_micros(u64::from(n) * 100);
            if receiver
                .receive(b"<14>gs: flood", flood, now, 0, &directory)
                .is_some()
            {
                passed += 1;
            }
            if n % 10_000 == 0 {
                let line = receiver.receive(b"<14>gs: hello", quiet, now, 0, &directory);
                assert_eq!(line.unwrap().mac, Some(mac("000b82000003")));
            }
        }
        // The burst, then the rate for 5 s.
        assert!((60..=75).contains(&passed), "{passed}");
        let reports = receiver.report(start + Duration::from_secs(5), 0, &directory);
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].peer, Some(flood.ip()));
        assert_eq!(reports[0].mac, Some(mac("000b82000001")));
        assert_eq!(reports[0].lines, 50_000 - passed);
        // Counted once.
        assert!(
            receiver
                .report(start + Duration::from_secs(6), 0, &directory)
                .is_empty()
        );
        // Idle sources are forgotten.
        receiver.report(start + Duration::from_secs(30), 0, &directory);
        assert!(receiver.sources.is_empty());
    }

    #[test]
    fn many_sources_share_the_total_and_are_reported_together() {
        let config = SyslogConfig {
            per_source: RateLimit { rate: 1, burst: 1 },
            total: RateLimit { rate: 1, burst: 50 },
            max_sources: 100,
            named_drop_reports: 2,
            ..SyslogConfig::default()
        };
        let directory = directory();
        let now = Instant::now();
        let mut receiver = Receiver::new(config, now);
        let mut passed = 0;
        for n in 0..300u32 {
            let peer = SocketAddr::from(([192, 0, 2, (n % 250) as u8], 514));
            passed += usize::from(receiver.receive(b"x", peer, now, 0, &directory).is_some());
        }
        assert_eq!(passed, 50);
        assert!(receiver.sources.len() <= 100);
        let reports = receiver.report(now, 0, &directory);
        let dropped: u64 = reports.iter().map(|r| r.lines).sum();
        assert_eq!(dropped, 250);
        assert!(reports.len() <= 4, "{reports:?}");
        assert!(reports.iter().any(|r| r.reason == "total"), "{reports:?}");
    }

    #[test]
    fn a_huge_datagram_is_cut_and_the_cut_counted() {
        let directory = directory();
        let now = Instant::now();
        let mut receiver = Receiver::new(SyslogConfig::default(), now);
        let mut huge = b"<11>gs: ".to_vec();
        huge.resize(64 * 1024, b'y');
        let line = receiver
            .receive(&huge, "192.0.2.1:514".parse().unwrap(), now, 0, &directory)
            .unwrap();
        assert_eq!(line.cut_bytes, (64 * 1024 - MAX_LINE_BYTES) as u64);
        assert!(line.message.len() <= MAX_LINE_BYTES);
        assert_eq!(line.mac, None);
    }

    #[tokio::test]
    async fn lines_over_the_wire_reach_the_bus_until_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let inventory = Inventory::open(&dir.path().join("provdesk.db")).unwrap();
        inventory
            .upsert_device(&phone("000b82000001", "127.0.0.1", 1))
            .unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let bus = EventBus::new(64);
        let mut events = bus.subscribe();
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            socket,
            SyslogConfig::default(),
            DeviceSource {
                inventory: inventory.clone(),
                leases: Arc::default(),
            },
            bus.clone(),
            stop.clone(),
        ));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let line = async {
            loop {
                // Sent until read: the receiver may not have reached its loop yet.
                client
                    .send_to(b"<12>Dec  6 18:00:00 gxp GS_LOG: hello", address)
                    .await
                    .unwrap();
                let wait = tokio::time::timeout(Duration::from_millis(200), events.recv());
                if let Ok(Ok(event)) = wait.await
                    && let Event::Syslog(SyslogEvent::Line(line)) = &*event
                {
                    return line.clone();
                }
            }
        };
        let line = tokio::time::timeout(Duration::from_secs(5), line)
            .await
            .unwrap();
        assert_eq!(line.message, "hello");
        assert_eq!(line.app.as_deref(), Some("GS_LOG"));
        assert_eq!(line.mac, Some(mac("000b82000001")));
        assert_eq!(line.tied_by, Some(TiedBy::Address));

        // A phone added while serving (seen at that address since) is known after the build
        // that follows every inventory change.
        inventory
            .upsert_device(&phone("000b82000002", "127.0.0.1", 2))
            .unwrap();
        bus.emit(Event::Build(crate::events::BuildSummary {
            published: true,
            build: 2,
            artifacts: 0,
            written: 0,
            removed: 0,
            elapsed_ms: 0.0,
            diagnostics: Vec::new(),
            held: Vec::new(),
        }));
        let retied = async {
            loop {
                client.send_to(b"<12>GS_LOG: again", address).await.unwrap();
                let wait = tokio::time::timeout(Duration::from_millis(200), events.recv());
                if let Ok(Ok(event)) = wait.await
                    && let Event::Syslog(SyslogEvent::Line(line)) = &*event
                    && line.mac == Some(mac("000b82000002"))
                {
                    return;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), retied)
            .await
            .expect("the new phone owns the address after the reload");
        stop.cancel();
        task.await.unwrap().unwrap();
    }
}
