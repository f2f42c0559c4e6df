//! TFTP glue: serves the artifact store through `provdesk-tftp` and turns its transfer events
//! into ProvDesk events (`Fetch` per request, `Progress` for large transfers).
//!
//! Invariants: every request the TFTP server answers becomes exactly one `Event::Fetch`, also
//! a refused or unknown one, so a technician sees requests that got nothing; the source only
//! looks names up in the current snapshot (no file system); a firmware request carries no MAC,
//! so its device is inferred from the peer's IP only when exactly one device asked from that IP
//! recently; every request goes through the desk's [`AccessPolicy`] (the allow-list before
//! the name is looked at, then whether TFTP, which cannot authenticate, may hand out the
//! artifact), and a refusal is a TFTP access violation and a `Denied` fetch naming the rule,
//! except a peer that is not the owner of a phone's file (`device_files = "owner"`): it gets
//! the very error a miss of that name gets, and only the `Denied` fetch says why.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use provdesk_core::Mac;
use provdesk_tftp::{ErrorCode, Source, SourceError, TransferEvent, TransferId};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::access::AccessPolicy;
use crate::events::{ArtifactRef, Event, EventBus, Fetch, Outcome, Progress, Protocol, now_ms};
use crate::store::{ArtifactStore, Resolution, mac_in_name, miss_reason};

#[derive(Debug, Clone)]
pub struct TftpConfig {
    pub server: provdesk_tftp::Config,
    /// Transfers at least this large report progress.
    pub progress_threshold: u64,
    /// Least time between two progress events of one transfer, unless 5 points passed.
    pub progress_interval: Duration,
    /// Who may fetch what; the default admits everyone to everything.
    pub policy: AccessPolicy,
}

impl Default for TftpConfig {
    fn default() -> TftpConfig {
        TftpConfig {
            server: provdesk_tftp::Config::default(),
            progress_threshold: 64 * 1024,
            progress_interval: Duration::from_millis(500),
            policy: AccessPolicy::default(),
        }
    }
}

/// How recent a MAC-bearing request from an IP must be to attribute that IP's firmware
/// download to the device: a boot sequence takes seconds, a firmware check follows at once.
const PEER_WINDOW_MS: i64 = 10 * 60 * 1000;
/// Peers remembered at most; older ones are forgotten first.
const MAX_PEERS: usize = 4096;
/// Lookups waiting for their `Started`/`Rejected` event; more means events were lost.
const MAX_WAITING: usize = 4096;

/// Serves `store` over TFTP on `socket` until `shutdown`; returns after every transfer has
/// ended and its `Event::Fetch` was emitted.
pub async fn run(
    socket: UdpSocket,
    config: TftpConfig,
    store: Arc<ArtifactStore>,
    events: EventBus,
    shutdown: CancellationToken,
) -> Result<(), provdesk_tftp::Error> {
    let source = Arc::new(StoreSource {
        store,
        policy: config.policy.clone(),
        waiting: Mutex::default(),
        peers: Mutex::default(),
    });
    let (tx, rx) = mpsc::channel(1024);
    let server = provdesk_tftp::run(
        socket,
        config.server.clone(),
        Arc::clone(&source) as Arc<dyn Source>,
        tx,
        shutdown,
    );
    let translate = translate(rx, &source, &config, &events);
    let (result, ()) = tokio::join!(server, translate);
    result
}

/// What the source found for one request, kept until the server reports how it went.
#[derive(Debug, Clone)]
struct Lookup {
    at_ms: i64,
    mac: Option<Mac>,
    artifact: Option<ArtifactRef>,
    /// Why the name was refused or missing, in the words the log should keep.
    miss: Option<Outcome>,
}

/// The artifact store as a TFTP source.
struct StoreSource {
    store: Arc<ArtifactStore>,
    policy: AccessPolicy,
    waiting: Mutex<HashMap<(SocketAddr, String), VecDeque<Lookup>>>,
    peers: Mutex<PeerMacs>,
}

impl Source for StoreSource {
    fn open(&self, filename: &str, peer: SocketAddr) -> Result<Bytes, SourceError> {
        let at_ms = now_ms();
        // The client gets a fixed text; the event names the rule.
        let denied = |rule: crate::access::Rule, mac: Option<Mac>| {
            let lookup = Lookup {
                at_ms,
                mac,
                artifact: None,
                miss: Some(Outcome::Denied {
                    reason: rule.reason(),
                }),
            };
            (
                lookup,
                Err(SourceError::AccessViolation("access denied".into())),
            )
        };
        let admitted = self.policy.admit_peer(Protocol::Tftp, peer.ip());
        let withheld = self.policy.withholds_device_files(Protocol::Tftp);
        let snapshot = self.store.snapshot();
        let mut not_the_owner = false;
        let (lookup, result) = match admitted.map(|()| snapshot.resolve(filename)) {
            // Nothing is looked up for a peer outside the allow-list; the name may still say
            // which phone it claims to be, as HTTP's User-Agent does.
            Err(rule) => denied(rule, mac_in_name(filename)),
            Ok(Resolution::Found(found)) => {
                let mac = found.entry.mac.or_else(|| mac_in_name(&found.name));
                let admitted = self
                    .policy
                    .admit_artifact(Protocol::Tftp, found.entry.kind)
                    .map(|()| self.policy.admit_owner(peer.ip(), found.entry.kind, mac));
                match admitted {
                    Err(rule) => denied(rule, mac),
                    Ok(Err(rule)) => {
                        not_the_owner = true;
                        let lookup = Lookup {
                            at_ms,
                            mac,
                            artifact: None,
                            miss: Some(Outcome::Denied {
                                reason: rule.reason(),
                            }),
                        };
                        let miss = miss_reason(&found.name);
                        (lookup, Err(SourceError::NotFound(miss)))
                    }
                    Ok(Ok(())) => {
                        let lookup = Lookup {
                            at_ms,
                            mac,
                            artifact: Some(ArtifactRef {
                                kind: found.entry.kind,
                                hash: found.entry.hash.clone(),
                                version: found.entry.version,
                            }),
                            miss: None,
                        };
                        (lookup, Ok(found.body))
                    }
                }
            }
            // While device files are withheld over TFTP, a name shaped like one gets the same
            // denial whether or not that MAC is on the desk, so a peer cannot list the
            // inventory by asking for cfg<mac> names and comparing the answers.
            Ok(Resolution::NotFound { name, reason }) => match (withheld, mac_in_name(&name)) {
                (Some(rule), Some(mac)) => denied(rule, Some(mac)),
                (_, mac) => {
                    let lookup = Lookup {
                        at_ms,
                        mac,
                        artifact: None,
                        miss: Some(Outcome::NotFound {
                            reason: reason.clone(),
                        }),
                    };
                    (lookup, Err(SourceError::NotFound(reason)))
                }
            },
            Ok(Resolution::Rejected { reason }) => {
                let lookup = Lookup {
                    at_ms,
                    mac: None,
                    artifact: None,
                    miss: Some(Outcome::BadRequest {
                        reason: reason.clone(),
                    }),
                };
                (lookup, Err(SourceError::AccessViolation(reason)))
            }
        };
        // Only admitted peers teach which device sits behind an address; one refused another
        // phone's file has not shown which phone it is.
        if let (Ok(()), Some(mac), false) = (admitted, lookup.mac, not_the_owner) {
            lock(&self.peers).saw(peer.ip(), mac, at_ms);
        }
        self.keep(peer, filename, lookup);
        result
    }
}

impl StoreSource {
    /// Keeps `lookup` until the server reports how the request went.
    fn keep(&self, peer: SocketAddr, filename: &str, lookup: Lookup) {
        let mut waiting = lock(&self.waiting);
        if waiting.len() >= MAX_WAITING {
            waiting.clear();
        }
        waiting
            .entry((peer, filename.to_string()))
            .or_default()
            .push_back(lookup);
    }

    fn take(&self, peer: SocketAddr, filename: &str) -> Option<Lookup> {
        let mut waiting = lock(&self.waiting);
        let key = (peer, filename.to_string());
        let queue = waiting.get_mut(&key)?;
        let lookup = queue.pop_front();
        if queue.is_empty() {
            waiting.remove(&key);
        }
        lookup
    }

    /// The request's own MAC, else the one device that asked from this IP recently.
    fn device(&self, lookup: Option<&Lookup>, peer: SocketAddr, at_ms: i64) -> Option<Mac> {
        lookup
            .and_then(|l| l.mac)
            .or_else(|| lock(&self.peers).infer(peer.ip(), at_ms))
    }
}

/// Which device last asked from each IP. A phone names its MAC in its config requests but not
/// in firmware requests; on a provisioning LAN each phone has its own address.
#[derive(Debug, Default)]
struct PeerMacs {
    /// IP → (MAC, when), or `None` when two devices asked from it within the window.
    by_ip: HashMap<IpAddr, (Option<Mac>, i64)>,
}

impl PeerMacs {
    fn saw(&mut self, ip: IpAddr, mac: Mac, at_ms: i64) {
        if self.by_ip.len() >= MAX_PEERS && !self.by_ip.contains_key(&ip) {
            let cutoff = at_ms - PEER_WINDOW_MS;
            self.by_ip.retain(|_, (_, at)| *at >= cutoff);
            if self.by_ip.len() >= MAX_PEERS {
                return;
            }
        }
        let entry = self.by_ip.entry(ip).or_insert((Some(mac), at_ms));
        let recent = at_ms - entry.1 <= PEER_WINDOW_MS;
        entry.0 = match entry.0 {
            Some(known) if known != mac && recent => None,
            None if recent => None,
            _ => Some(mac),
        };
        entry.1 = at_ms;
    }

    fn infer(&self, ip: IpAddr, at_ms: i64) -> Option<Mac> {
        let (mac, at) = self.by_ip.get(&ip)?;
        (at_ms - at <= PEER_WINDOW_MS).then_some(*mac)?
    }
}

/// A transfer between `Started` and its outcome.
struct Running {
    peer: SocketAddr,
    name: String,
    at_ms: i64,
    mac: Option<Mac>,
    artifact: Option<ArtifactRef>,
    size: u64,
    /// When and at what percent the last progress event went out.
    last_progress: Option<(tokio::time::Instant, u64)>,
}

async fn translate(
    mut rx: mpsc::Receiver<TransferEvent>,
    source: &StoreSource,
    config: &TftpConfig,
    events: &EventBus,
) {
    let mut running: HashMap<TransferId, Running> = HashMap::new();
    while let Some(event) = rx.recv().await {
        match event {
            TransferEvent::Started {
                id,
                peer,
                filename,
                size,
                ..
            } => {
                let lookup = source.take(peer, &filename);
                let at_ms = lookup.as_ref().map_or_else(now_ms, |l| l.at_ms);
                let mut transfer = Running {
                    mac: source.device(lookup.as_ref(), peer, at_ms),
                    artifact: lookup.and_then(|l| l.artifact),
                    peer,
                    name: display_name(&filename),
                    at_ms,
                    size,
                    last_progress: None,
                };
                if size >= config.progress_threshold {
                    emit_progress(events, id, &mut transfer, 0);
                }
                running.insert(id, transfer);
            }
            TransferEvent::Progress {
                id, bytes_acked, ..
            } => {
                let Some(transfer) = running.get_mut(&id) else {
                    continue;
                };
                if transfer.size < config.progress_threshold {
                    continue;
                }
                let percent = bytes_acked.saturating_mul(100) / transfer.size.max(1);
                let due = transfer.last_progress.is_none_or(|(at, last)| {
                    percent >= last + 5 || at.elapsed() >= config.progress_interval
                });
                if due {
                    emit_progress(events, id, transfer, bytes_acked);
                }
            }
            TransferEvent::Completed {
                id,
                bytes,
                duration,
                ..
            } => {
                if let Some(transfer) = running.remove(&id) {
                    emit_fetch(
                        events,
                        transfer,
                        Outcome::Served { status: 200 },
                        bytes,
                        duration,
                    );
                }
            }
            TransferEvent::Failed {
                id,
                reason,
                bytes_acked,
            } => {
                if let Some(transfer) = running.remove(&id) {
                    let duration = elapsed_since(transfer.at_ms);
                    let outcome = Outcome::Failed {
                        reason: reason.to_string(),
                    };
                    emit_fetch(events, transfer, outcome, bytes_acked, duration);
                }
            }
            TransferEvent::Rejected {
                peer,
                filename,
                code,
                message,
            } => {
                let lookup = source.take(peer, &filename);
                let at_ms = lookup.as_ref().map_or_else(now_ms, |l| l.at_ms);
                let mac = source.device(lookup.as_ref(), peer, at_ms);
                let outcome = lookup
                    .and_then(|l| l.miss)
                    .unwrap_or_else(|| rejection(code, &message));
                let transfer = Running {
                    peer,
                    name: display_name(&filename),
                    at_ms,
                    mac,
                    artifact: None,
                    size: 0,
                    last_progress: None,
                };
                emit_fetch(events, transfer, outcome, 0, elapsed_since(at_ms));
            }
        }
    }
}

/// A refusal the server made itself, before asking the source.
fn rejection(code: ErrorCode, message: &str) -> Outcome {
    let reason = message.to_string();
    match code {
        ErrorCode::FILE_NOT_FOUND => Outcome::NotFound { reason },
        // Busy, or no transfer socket: the request was fine, the server could not serve it.
        ErrorCode::NOT_DEFINED => Outcome::Failed { reason },
        // Write requests, malformed requests.
        _ => Outcome::BadRequest { reason },
    }
}

fn emit_progress(events: &EventBus, id: TransferId, transfer: &mut Running, bytes: u64) {
    let percent = bytes.saturating_mul(100) / transfer.size.max(1);
    transfer.last_progress = Some((tokio::time::Instant::now(), percent));
    events.emit(Event::Progress(Progress {
        transfer: id.0,
        protocol: Protocol::Tftp,
        peer: transfer.peer,
        name: transfer.name.clone(),
        mac: transfer.mac,
        bytes,
        total: Some(transfer.size),
    }));
}

fn emit_fetch(
    events: &EventBus,
    transfer: Running,
    outcome: Outcome,
    bytes: u64,
    duration: Duration,
) {
    events.emit(Event::Fetch(Fetch {
        at_ms: transfer.at_ms,
        protocol: Protocol::Tftp,
        peer: transfer.peer,
        name: transfer.name,
        mac: transfer.mac,
        model: None,
        user_agent: None,
        outcome,
        bytes,
        duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        artifact: transfer.artifact,
    }));
}

fn elapsed_since(at_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(now_ms() - at_ms).unwrap_or(0))
}

/// The requested name for logs: control characters escaped, so a hostile name cannot forge
/// log lines.
pub fn display_name(name: &str) -> String {
    if name.chars().any(char::is_control) {
        name.chars()
            .flat_map(|c| {
                if c.is_control() {
                    c.escape_default().collect::<Vec<_>>()
                } else {
                    vec![c]
                }
            })
            .collect()
    } else {
        name.to_string()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each update is one map operation; a panic cannot leave a map half-changed.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Snapshot;
    use provdesk_core::build::{ArtifactKind, CredentialTable, Manifest, ManifestEntry};

    const MAC: &str = "000b82123456";

    struct Fixture {
        _dir: tempfile::TempDir,
        addr: SocketAddr,
        events: tokio::sync::broadcast::Receiver<Arc<Event>>,
        shutdown: CancellationToken,
        server: tokio::task::JoinHandle<Result<(), provdesk_tftp::Error>>,
        firmware: Vec<u8>,
    }

    fn entry(file: &str, kind: ArtifactKind, mac: Option<Mac>, size: usize) -> ManifestEntry {
        ManifestEntry {
            file: file.into(),
            hash: format!("hash-of-{file}"),
            input: String::new(),
            version: 7,
            kind,
            mac,
            model: None,
            encrypted: false,
            size: size as u64,
        }
    }

    async fn fixture() -> Fixture {
        fixture_with(AccessPolicy::default()).await
    }

    async fn fixture_with(policy: AccessPolicy) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("build")).unwrap();
        std::fs::create_dir_all(root.join("firmware")).unwrap();
        std::fs::write(root.join(format!("build/cfg{MAC}.xml")), b"<gs_provision/>").unwrap();
        let firmware: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(root.join("firmware/gxp2170fw.bin"), &firmware).unwrap();
        let mut manifest = Manifest::default();
        let mac: Mac = MAC.parse().unwrap();
        manifest.entries.insert(
            format!("cfg{MAC}.xml"),
            entry(
                &format!("build/cfg{MAC}.xml"),
                ArtifactKind::DeviceXml,
                Some(mac),
                15,
            ),
        );
        // Firmware is checked against its manifest hash when loaded, so give it the real one.
        let mut firmware_entry = entry(
            "firmware/gxp2170fw.bin",
            ArtifactKind::Firmware,
            None,
            firmware.len(),
        );
        firmware_entry.hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&firmware));
        manifest
            .entries
            .insert("gxp2170fw.bin".into(), firmware_entry);
        let snapshot = Snapshot::load(root, manifest, CredentialTable::default(), None).unwrap();
        let store = Arc::new(ArtifactStore::new(snapshot));
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let bus = EventBus::new(4096);
        let events = bus.subscribe();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(run(
            socket,
            TftpConfig {
                policy,
                ..TftpConfig::default()
            },
            store,
            bus,
            shutdown.clone(),
        ));
        Fixture {
            _dir: dir,
            addr,
            events,
            shutdown,
            server,
            firmware,
        }
    }

    /// A minimal lock-step client (512-byte blocks, no options): enough to drive the glue.
    async fn get(server: SocketAddr, name: &str) -> Result<Vec<u8>, (u16, String)> {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut request = vec![0, 1];
        request.extend_from_slice(name.as_bytes());
        request.extend_from_slice(b"\0octet\0");
        socket.send_to(&request, server).await.unwrap();
        let mut data = Vec::new();
        let mut buf = vec![0u8; 1024];
        // Bounded: 300 kB in 512-byte blocks is under 600 blocks.
        for _ in 0..10_000 {
            let (len, from) =
                tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
                    .await
                    .expect("server answers")
                    .unwrap();
            let packet = &buf[..len];
            match u16::from_be_bytes([packet[0], packet[1]]) {
                3 => {
                    data.extend_from_slice(&packet[4..]);
                    let ack = [0, 4, packet[2], packet[3]];
                    socket.send_to(&ack, from).await.unwrap();
                    if len < 4 + 512 {
                        return Ok(data);
                    }
                }
                5 => {
                    let code = u16::from_be_bytes([packet[2], packet[3]]);
                    let message = String::from_utf8_lossy(&packet[4..len - 1]).into_owned();
                    return Err((code, message));
                }
                other => panic!("unexpected opcode {other}"),
            }
        }
        panic!("transfer did not end");
    }

    /// The next fetch event, collecting progress events on the way.
    async fn next_fetch(
        events: &mut tokio::sync::broadcast::Receiver<Arc<Event>>,
    ) -> (Fetch, Vec<Progress>) {
        let mut progress = Vec::new();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await
                .expect("an event")
                .unwrap();
            match &*event {
                Event::Fetch(fetch) => return (fetch.clone(), progress),
                Event::Progress(p) => progress.push(p.clone()),
                _ => {}
            }
        }
    }

    #[tokio::test]
    async fn served_missing_and_refused_requests_all_become_fetch_events() {
        let mut f = fixture().await;
        let body = get(f.addr, &format!("CFG{MAC}.XML")).await.unwrap();
        assert_eq!(body, b"<gs_provision/>");
        let (fetch, _) = next_fetch(&mut f.events).await;
        assert_eq!(fetch.outcome, Outcome::Served { status: 200 });
        assert_eq!(fetch.mac, MAC.parse().ok());
        assert_eq!(fetch.bytes, 15);
        assert_eq!(fetch.name, format!("CFG{MAC}.XML"), "the name as received");
        assert_eq!(
            fetch.artifact.map(|a| a.hash),
            Some(format!("hash-of-build/cfg{MAC}.xml"))
        );

        let (code, message) = get(f.addr, "cfg000b82abcdef.xml").await.unwrap_err();
        assert_eq!(code, 1);
        assert!(message.contains("000b82abcdef"), "{message}");
        let (fetch, _) = next_fetch(&mut f.events).await;
        assert!(matches!(fetch.outcome, Outcome::NotFound { .. }));
        assert_eq!(fetch.mac, "000b82abcdef".parse().ok());

        let (code, _) = get(f.addr, "../provdesk.db").await.unwrap_err();
        assert_eq!(code, 2);
        let (fetch, _) = next_fetch(&mut f.events).await;
        assert!(
            matches!(fetch.outcome, Outcome::BadRequest { .. }),
            "{fetch:?}"
        );

        f.shutdown.cancel();
        f.server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn large_transfers_report_progress_and_inherit_the_peers_device() {
        let mut f = fixture().await;
        get(f.addr, &format!("cfg{MAC}.xml")).await.unwrap();
        next_fetch(&mut f.events).await;
        let body = get(f.addr, "gxp2170fw.bin").await.unwrap();
        assert_eq!(body, f.firmware);
        let (fetch, progress) = next_fetch(&mut f.events).await;
        assert_eq!(fetch.outcome, Outcome::Served { status: 200 });
        assert_eq!(fetch.bytes, f.firmware.len() as u64);
        assert_eq!(
            fetch.mac,
            MAC.parse().ok(),
            "the device that asked from this IP"
        );
        assert!(!progress.is_empty());
        assert_eq!(progress[0].bytes, 0);
        assert!(
            progress
                .iter()
                .all(|p| p.total == Some(f.firmware.len() as u64))
        );
        assert!(progress.windows(2).all(|w| w[0].bytes <= w[1].bytes));
        f.shutdown.cancel();
        f.server.await.unwrap().unwrap();
    }

    fn policy(allow: &[&str], auth: provdesk_core::desk::AuthMode) -> AccessPolicy {
        let mut settings = provdesk_core::desk::DeskSettings::default();
        settings.access.allow = allow.iter().map(|s| s.to_string()).collect();
        settings.auth.mode = auth;
        AccessPolicy::from_settings(&settings).unwrap()
    }

    #[tokio::test]
    async fn a_peer_outside_the_allow_list_gets_an_access_violation_and_one_denied_fetch() {
        let mut f = fixture_with(policy(&["127.0.0.2"], Default::default())).await;
        for name in [format!("cfg{MAC}.xml"), "gxp2170fw.bin".to_string()] {
            let (code, message) = get(f.addr, &name).await.unwrap_err();
            assert_eq!((code, message.as_str()), (2, "access denied"));
            let (fetch, _) = next_fetch(&mut f.events).await;
            assert_eq!(
                fetch.outcome,
                Outcome::Denied {
                    reason: "not in the allow-list".into()
                }
            );
            assert_eq!(fetch.name, name);
            assert_eq!(fetch.artifact, None);
        }
        f.shutdown.cancel();
        f.server.await.unwrap().unwrap();
        // Exactly one event per request: nothing else is left.
        while let Ok(event) = f.events.try_recv() {
            assert!(!matches!(*event, Event::Fetch(_)), "{event:?}");
        }
    }

    #[tokio::test]
    async fn device_files_are_withheld_while_http_authenticates_and_shared_files_are_not() {
        let mut f = fixture_with(policy(&[], provdesk_core::desk::AuthMode::Digest)).await;
        let (code, _) = get(f.addr, &format!("cfg{MAC}.xml")).await.unwrap_err();
        assert_eq!(code, 2);
        let (fetch, _) = next_fetch(&mut f.events).await;
        let reason = fetch.outcome.reason().unwrap_or_default().to_string();
        assert!(
            matches!(fetch.outcome, Outcome::Denied { .. })
                && reason.contains("per-device file over TFTP"),
            "{fetch:?}"
        );
        assert_eq!(fetch.mac, MAC.parse().ok(), "the device is still named");
        // A MAC the desk does not know gets the very same answer: no inventory listing.
        let unknown = "cfg000b82ffffff.xml";
        assert_eq!(
            get(f.addr, unknown).await.unwrap_err(),
            (2, "access denied".to_string())
        );
        let (fetch, _) = next_fetch(&mut f.events).await;
        assert!(matches!(fetch.outcome, Outcome::Denied { .. }), "{fetch:?}");
        assert_eq!(get(f.addr, "gxp2170fw.bin").await.unwrap(), f.firmware);
        let (fetch, _) = next_fetch(&mut f.events).await;
        assert_eq!(fetch.outcome, Outcome::Served { status: 200 });
        f.shutdown.cancel();
        f.server.await.unwrap().unwrap();
    }

    /// Loopback is the phone `owner`, as a neighbour table would say.
    struct LoopbackIs(Mac);

    impl crate::access::OwnerDirectory for LoopbackIs {
        fn name(&self) -> &'static str {
            "neighbour table"
        }

        fn owner_of(&self, peer: IpAddr) -> Option<Mac> {
            peer.is_loopback().then_some(self.0)
        }
    }

    fn bound_to(owner: &str) -> AccessPolicy {
        let mut settings = provdesk_core::desk::DeskSettings::default();
        settings.access.device_files = provdesk_core::desk::DeviceFiles::Owner;
        let directory = Arc::new(LoopbackIs(owner.parse().unwrap()));
        AccessPolicy::from_settings(&settings)
            .unwrap()
            .with_owners(vec![directory])
    }

    #[tokio::test]
    async fn a_phones_file_goes_to_its_owner_and_anyone_else_gets_the_answer_for_a_miss() {
        let mut f = fixture_with(bound_to(MAC)).await;
        let name = format!("cfg{MAC}.xml");
        assert_eq!(get(f.addr, &name).await.unwrap(), b"<gs_provision/>");
        let (fetch, _) = next_fetch(&mut f.events).await;
        assert_eq!(fetch.outcome, Outcome::Served { status: 200 });

        let mut f = fixture_with(bound_to("000b82bbbbbb")).await;
        let refused = get(f.addr, &name).await.unwrap_err();
        let (fetch, _) = next_fetch(&mut f.events).await;
        assert_eq!(fetch.mac, MAC.parse().ok());
        assert_eq!(fetch.artifact, None);
        assert_eq!(
            fetch.outcome,
            Outcome::Denied {
                reason: "not the owner: 127.0.0.1 is 000b82bbbbbb (neighbour table), the file is 000b82123456's ([access] device_files = \"owner\")".into()
            }
        );
        // Shared files stay anyone's.
        assert_eq!(get(f.addr, "gxp2170fw.bin").await.unwrap(), f.firmware);
        let (fetch, _) = next_fetch(&mut f.events).await;
        assert_eq!(fetch.outcome, Outcome::Served { status: 200 });
        assert_eq!(
            fetch.mac, None,
            "a refused request taught no MAC for this address"
        );
        // Byte for byte what a MAC nobody has gets, but for the MAC the name itself carries.
        let unknown = "cfg000b82ffffff.xml";
        let (code, message) = get(f.addr, unknown).await.unwrap_err();
        assert_eq!(refused, (code, message.replace("000b82ffffff", MAC)));
        assert_eq!(code, 1, "file not found");
        let (fetch, _) = next_fetch(&mut f.events).await;
        assert!(
            matches!(fetch.outcome, Outcome::NotFound { .. }),
            "{fetch:?}"
        );
        f.shutdown.cancel();
        f.server.await.unwrap().unwrap();
    }

    #[test]
    fn a_shared_ip_attributes_nothing() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a: Mac = "000b82000001".parse().unwrap();
        let b: Mac = "000b82000002".parse().unwrap();
        let mut peers = PeerMacs::default();
        peers.saw(ip, a, 0);
        assert_eq!(peers.infer(ip, 1_000), Some(a));
        assert_eq!(peers.infer(ip, PEER_WINDOW_MS + 1), None, "too old");
        peers.saw(ip, b, 2_000);
        assert_eq!(peers.infer(ip, 3_000), None, "two devices behind one IP");
        // Once the window has passed, the next device owns the IP again.
        peers.saw(ip, b, 3_000 + PEER_WINDOW_MS + 1);
        assert_eq!(peers.infer(ip, 4_000 + PEER_WINDOW_MS), Some(b));
    }

    #[test]
    fn control_characters_are_escaped_for_the_log() {
        assert_eq!(display_name("cfg.xml"), "cfg.xml");
        assert_eq!(display_name("a\nb\0"), "a\\nb\\u{0}");
    }
}
