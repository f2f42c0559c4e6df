//! The DHCP responder's I/O: the interface's address, a pre-flight that looks for another DHCP
//! server, a UDP socket on port 67 bound to the interface, and the loop that feeds
//! `provdesk_dhcp::Responder` and persists its leases in the inventory.
//!
//! Invariants: nothing is answered before the pre-flight has listened on the interface and
//! heard no other server; any failure here (no such interface, port 67 taken, a rival) is a
//! warning and leaves the rest of `serve` running; every DHCP message in or out is one
//! [`Event::Dhcp`] naming the client's MAC; a reply never waits for the disk, yet every lease
//! acknowledged is in the inventory when [`run`] returns (its writer drains first).

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use provdesk_core::Mac;
use provdesk_core::desk::{DhcpAnswer, DhcpSettings};
use provdesk_core::inventory::{DhcpLease, DhcpLeaseWrite, Inventory};

use crate::owners::LeaseDirectory;
use provdesk_dhcp::{
    Answer, Config, Destination, HwAddr, Lease, LeaseStore, Provisioning, Responder, RivalOffer,
};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::events::{DhcpEvent, Event, EventBus, now_ms};

/// The device variable that reserves an address: `provdesk device add MAC … --var
/// dhcp_address=192.168.1.50`. A variable rather than a column, so that reservations need no
/// new device field and travel with the device in CSV imports.
pub const RESERVATION_VARIABLE: &str = "dhcp_address";

/// How long the pre-flight listens for another server's OFFER.
pub const PREFLIGHT_WAIT: Duration = Duration::from_secs(2);

const SERVER_PORT: u16 = 67;
/// The responder socket's receive buffer: a storm of 1,000 DISCOVERs and their REQUESTs.
const RECEIVE_BUFFER: usize = 4 << 20;
const CLIENT_PORT: u16 = 68;

/// What the responder needs from the rest of the service.
#[derive(Debug, Clone)]
pub struct DhcpStart {
    pub interface: String,
    pub settings: DhcpSettings,
    /// The HTTP listener, when HTTP is on (an unspecified IP means the interface's).
    pub http: Option<SocketAddr>,
    /// The TFTP listener, when TFTP is on.
    pub tftp: Option<SocketAddr>,
    pub base_path: String,
    /// Kept current with every lease, for `[access] device_files = "owner"`.
    pub owners: Arc<LeaseDirectory>,
}

/// The interface's IPv4 address and netmask.
pub fn interface_address(interface: &str) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let interfaces =
        if_addrs::get_if_addrs().map_err(|e| format!("cannot list the network interfaces: {e}"))?;
    interfaces
        .iter()
        .filter(|candidate| candidate.name == interface)
        .find_map(|candidate| match &candidate.addr {
            if_addrs::IfAddr::V4(v4) => Some((v4.ip, v4.netmask)),
            if_addrs::IfAddr::V6(_) => None,
        })
        .ok_or_else(|| {
            let names: std::collections::BTreeSet<&str> =
                interfaces.iter().map(|i| i.name.as_str()).collect();
            format!(
                "interface {interface:?} has no IPv4 address (interfaces here: {}); give it a static address first",
                names.into_iter().collect::<Vec<_>>().join(", ")
            )
        })
}

/// The responder's configuration from the settings and the servers that listen.
pub fn config(start: &DhcpStart, server: Ipv4Addr, netmask: Ipv4Addr) -> Result<Config, String> {
    let host = |address: SocketAddr| match address {
        SocketAddr::V4(v4) if !v4.ip().is_unspecified() => *v4.ip(),
        _ => server,
    };
    let provisioning = Provisioning::from_servers(
        start.http.map(|a| (host(a), a.port())),
        &start.base_path,
        start.tftp.map(host),
    )
    .ok_or("neither HTTP nor TFTP is on: there is no provisioning server to point phones at")?;
    let settings = &start.settings;
    let parse = |value: &str| {
        value
            .trim()
            .parse::<Ipv4Addr>()
            .map_err(|e| format!("{value:?}: {e}"))
    };
    let (pool_start, pool_end) = match (&settings.pool_start, &settings.pool_end) {
        (Some(start), Some(end)) => (parse(start)?, parse(end)?),
        _ => provdesk_dhcp::default_pool(server, netmask)
            .ok_or("the interface's subnet is too small for a pool")?,
    };
    let list = |values: &[String]| {
        values
            .iter()
            .map(|v| parse(v))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Config {
        server,
        netmask,
        pool_start,
        pool_end,
        lease_secs: settings.lease_secs,
        router: settings.router.as_deref().map(parse).transpose()?,
        dns: list(&settings.dns)?,
        ntp: list(&settings.ntp)?,
        time_offset: settings.utc_offset_secs().transpose()?,
        answer: match settings.answer {
            DhcpAnswer::Phones => Answer::Phones,
            DhcpAnswer::Everyone => Answer::Everyone,
        },
        provisioning,
        option43: settings.option43,
        reservations: HashMap::new(),
    })
}

/// The reservations the inventory's devices carry, and a message per device whose
/// `dhcp_address` is not an address of the interface's subnet (it is then not reserved).
pub fn reservations(
    devices: &[provdesk_core::inventory::Device],
    server: Ipv4Addr,
    netmask: Ipv4Addr,
) -> (HashMap<HwAddr, Ipv4Addr>, Vec<String>) {
    let mask = u32::from(netmask);
    let mut reserved = HashMap::new();
    let mut problems = Vec::new();
    let mut taken: HashMap<Ipv4Addr, Mac> = HashMap::new();
    for device in devices {
        let Some(value) = device.vars.get(RESERVATION_VARIABLE) else {
            continue;
        };
        let fits = |a: Ipv4Addr| {
            let a = u32::from(a);
            a & mask == u32::from(server) & mask
                && a != u32::from(server)
                && a & !mask != 0
                && a | mask != u32::MAX
        };
        match value.trim().parse::<Ipv4Addr>() {
            Ok(address) if !fits(address) => problems.push(format!(
                "{}: {RESERVATION_VARIABLE} {address} is not a host address of {server}'s subnet, so it is not reserved",
                device.mac
            )),
            Ok(address) => {
                if let Some(other) = taken.insert(address, device.mac) {
                    problems.push(format!(
                        "{}: {RESERVATION_VARIABLE} {address} is also reserved for {other}; only one of them gets it",
                        device.mac
                    ));
                }
                reserved.insert(device.mac.bytes(), address);
            }
            Err(_) => problems.push(format!(
                "{}: {RESERVATION_VARIABLE} {value:?} is not an IPv4 address, so nothing is reserved",
                device.mac
            )),
        }
    }
    (reserved, problems)
}

/// A UDP socket on `port` bound to `interface` (SO_BINDTODEVICE), broadcast allowed, address
/// reuse on so the pre-flight's client port and another tool can coexist.
fn bind(interface: &str, port: u16) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_broadcast(true)?;
    // After a power cut every phone's DISCOVER arrives within milliseconds; the default
    // buffer (about 200 KB) overflows after a few hundred and the rest wait seconds for their
    // retransmission. Best effort: the kernel caps it at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    socket.bind_device(Some(interface.as_bytes()))?;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = interface;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).into())?;
    UdpSocket::from_std(socket.into())
}

/// Sends a DISCOVER on the interface and listens [`PREFLIGHT_WAIT`] for OFFERs; returns
/// every other server that answered.
pub async fn preflight(interface: &str, wait: Duration) -> io::Result<Vec<RivalOffer>> {
    let socket = bind(interface, CLIENT_PORT)?;
    let xid: u32 = rand::random();
    // A locally administered address, so no real device's lease is touched.
    let mut mac: HwAddr = rand::random();
    mac[0] = (mac[0] & 0xfe) | 0x02;
    let probe = provdesk_dhcp::probe_discover(mac, xid);
    socket
        .send_to(&probe, (Ipv4Addr::BROADCAST, SERVER_PORT))
        .await?;
    let mut rivals: Vec<RivalOffer> = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buffer = vec![0u8; 1500];
    loop {
        match tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer)).await {
            Err(_) => break,
            Ok(Err(e)) => return Err(e),
            Ok(Ok((len, _))) => {
                if let Some(offer) = provdesk_dhcp::parse_rival_offer(&buffer[..len], xid)
                    && !rivals.iter().any(|r| r.server == offer.server)
                {
                    rivals.push(offer);
                }
            }
        }
    }
    Ok(rivals)
}

/// How a rival is described to the technician.
pub fn describe_rival(interface: &str, rival: &RivalOffer) -> String {
    format!(
        "another DHCP server answers on {interface}: {} offers {} (router {}, option 66 {}); \
         ProvDesk's DHCP responder is not started there (the other servers keep running): \
         turn that server off, or point its option 66 at this desk",
        rival.server,
        rival.address,
        rival.router.map_or("none".to_string(), |r| r.to_string()),
        rival
            .option66
            .as_deref()
            .map_or("none".to_string(), |o| format!("{o:?}")),
    )
}

/// The pre-flight, then the responder until `stop`. Problems become warnings.
pub async fn run(start: DhcpStart, inventory: Inventory, bus: EventBus, stop: CancellationToken) {
    let interface = start.interface.clone();
    let warn = |message: String| {
        bus.emit(Event::Warning {
            message: format!("DHCP on {interface}: {message}"),
        })
    };
    let (server, netmask) = match interface_address(&interface) {
        Ok(found) => found,
        Err(message) => return warn(message),
    };
    let mut config = match config(&start, server, netmask) {
        Ok(config) => config,
        Err(message) => return warn(message),
    };
    // Reservations as the inventory has them at start; a device edited later is picked up
    // at the next start.
    let devices = {
        let inventory = inventory.clone();
        tokio::task::spawn_blocking(move || inventory.list_devices()).await
    };
    match devices {
        Ok(Ok(devices)) => {
            let (reserved, problems) = reservations(&devices, server, netmask);
            for problem in problems {
                warn(problem);
            }
            config.reservations = reserved;
        }
        Ok(Err(e)) => warn(format!("the devices' reservations cannot be read: {e}")),
        Err(e) => warn(format!("the devices' reservations cannot be read: {e}")),
    }
    let rivals = tokio::select! {
        _ = stop.cancelled() => return,
        rivals = preflight(&interface, PREFLIGHT_WAIT) => rivals,
    };
    match rivals {
        Err(e) => return warn(format!("the pre-flight check could not run: {e}")),
        Ok(rivals) if !rivals.is_empty() => {
            for rival in &rivals {
                bus.emit(Event::Warning {
                    message: describe_rival(&interface, rival),
                });
            }
            return;
        }
        Ok(_) => {}
    }
    let socket = match bind(&interface, SERVER_PORT) {
        Ok(socket) => socket,
        Err(e) => return warn(format!("cannot listen on port 67: {e}")),
    };
    let leases = {
        let inventory = inventory.clone();
        tokio::task::spawn_blocking(move || inventory.dhcp_leases())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
    };
    let leases: Vec<Lease> = match leases {
        Ok(leases) => leases.into_iter().map(to_lease).collect(),
        Err(message) => {
            warn(format!(
                "the stored leases cannot be read ({message}); starting with none"
            ));
            Vec::new()
        }
    };
    for lease in &leases {
        start.owners.lease(
            lease.address.into(),
            Mac::from_bytes(lease.mac),
            lease.expires_at,
        );
    }
    let mut responder = Responder::new(config, leases);
    bus.emit(Event::Dhcp(DhcpEvent {
        at_ms: now_ms(),
        interface: interface.clone(),
        kind: "listening",
        mac: None,
        address: Some(server),
        vendor_class: None,
        detail: Some(format!(
            "pool {}–{}, option 66 {}",
            responder.config().pool_start,
            responder.config().pool_end,
            responder.config().provisioning.option66
        )),
    }));
    // Leases are written behind the replies, in batches: the loop never waits for the disk,
    // and a storm of ACKs costs one commit per batch. The queue is drained before `run`
    // returns, so every acknowledged lease is stored when `serve` has stopped.
    let (queue, queued) = tokio::sync::mpsc::channel(WRITE_QUEUE);
    let writer = tokio::spawn(write_leases(
        inventory,
        queued,
        bus.clone(),
        interface.clone(),
    ));
    let mut buffer = vec![0u8; 1500];
    loop {
        let (len, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            received = socket.recv_from(&mut buffer) => match received {
                Ok(received) => received,
                Err(e) => {
                    // ICMP errors from earlier sends surface here; they do not end the loop.
                    tracing::debug!("dhcp receive: {e}");
                    continue;
                }
            },
        };
        let mut store = Pending::default();
        let outcome = match responder.handle(&buffer[..len], unix_secs(), &mut store) {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::debug!("dhcp from {peer}: {e}");
                continue;
            }
        };
        if let Some(reply) = &outcome.reply {
            let to = match reply.to {
                Destination::Unicast(address) => address,
                // Without writing an ARP entry a unicast to an address the client does not
                // have yet cannot be delivered; every client accepts the broadcast.
                Destination::Broadcast | Destination::Hardware { .. } => Ipv4Addr::BROADCAST,
            };
            if let Err(e) = socket.send_to(&reply.bytes, (to, CLIENT_PORT)).await {
                warn(format!("cannot send a reply to {to}: {e}"));
            }
        }
        for event in outcome.events {
            bus.emit(Event::Dhcp(DhcpEvent {
                at_ms: now_ms(),
                interface: interface.clone(),
                kind: event.kind.as_str(),
                mac: Some(Mac::from_bytes(event.mac)),
                address: event.address,
                vendor_class: event.vendor_class,
                detail: event.detail,
            }));
        }
        for write in store.0 {
            match &write {
                DhcpLeaseWrite::Save(lease) => {
                    start
                        .owners
                        .lease(lease.address.into(), lease.mac, lease.expires_at)
                }
                DhcpLeaseWrite::Remove(mac) => start.owners.release(*mac),
            }
            // Full only when the disk falls WRITE_QUEUE writes behind: then the responder
            // waits for it rather than dropping a lease.
            if queue.send(write).await.is_err() {
                break;
            }
        }
    }
    drop(queue);
    if let Err(e) = writer.await {
        warn(format!("the lease writer stopped: {e}"));
    }
}

/// How many lease writes may wait for the disk before the responder waits too.
const WRITE_QUEUE: usize = 8192;
/// The most writes one transaction takes.
const WRITE_BATCH: usize = 1024;

/// Stores queued lease writes until the queue closes, as many per transaction as have
/// queued up while the previous one was written.
async fn write_leases(
    inventory: Inventory,
    mut queued: tokio::sync::mpsc::Receiver<DhcpLeaseWrite>,
    bus: EventBus,
    interface: String,
) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while queued.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        let inventory = inventory.clone();
        let writes = std::mem::take(&mut batch);
        let written =
            tokio::task::spawn_blocking(move || inventory.apply_dhcp_lease_writes(&writes)).await;
        let problem = match written {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        bus.emit(Event::Warning {
            message: format!("DHCP on {interface}: leases could not be stored: {problem}"),
        });
    }
}

/// The lease writes of one packet, queued after its reply went out.
#[derive(Default)]
struct Pending(Vec<DhcpLeaseWrite>);

impl LeaseStore for Pending {
    fn save(&mut self, lease: &Lease) {
        self.0.push(DhcpLeaseWrite::Save(DhcpLease {
            mac: Mac::from_bytes(lease.mac),
            address: lease.address,
            expires_at: lease.expires_at,
            hostname: lease.hostname.clone(),
            vendor_class: lease.vendor_class.clone(),
        }));
    }

    fn remove(&mut self, mac: &HwAddr) {
        self.0.push(DhcpLeaseWrite::Remove(Mac::from_bytes(*mac)));
    }
}

fn to_lease(lease: DhcpLease) -> Lease {
    Lease {
        mac: lease.mac.bytes(),
        address: lease.address,
        expires_at: lease.expires_at,
        hostname: lease.hostname,
        vendor_class: lease.vendor_class,
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(http: Option<&str>, tftp: Option<&str>) -> DhcpStart {
        DhcpStart {
            interface: "d0".into(),
            settings: DhcpSettings::default(),
            http: http.map(|a| a.parse().unwrap()),
            tftp: tftp.map(|a| a.parse().unwrap()),
            base_path: "/".into(),
            owners: Arc::default(),
        }
    }

    #[test]
    fn option_66_names_the_listener_or_the_interface_for_a_wildcard() {
        let server = Ipv4Addr::new(198, 51, 100, 1);
        let mask = Ipv4Addr::new(255, 255, 255, 0);
        let config = config(
            &start(Some("0.0.0.0:8080"), Some("0.0.0.0:69")),
            server,
            mask,
        )
        .unwrap();
        assert_eq!(config.provisioning.option66, "http://198.51.100.1:8080/");
        assert_eq!(config.provisioning.tftp, Some(server));
        assert_eq!(config.pool_start, Ipv4Addr::new(198, 51, 100, 128));
        let config = config_of(&start(None, Some("198.51.100.1:69")), server, mask);
        assert_eq!(config.provisioning.option66, "198.51.100.1");
        assert!(super::config(&start(None, None), server, mask).is_err());
    }

    fn config_of(start: &DhcpStart, server: Ipv4Addr, mask: Ipv4Addr) -> Config {
        config(start, server, mask).unwrap()
    }

    #[test]
    fn reservations_come_from_the_devices_dhcp_address() {
        let server = Ipv4Addr::new(198, 51, 100, 1);
        let mask = Ipv4Addr::new(255, 255, 255, 0);
        let device = |mac: &str, address: &str| {
            let mut device = provdesk_core::inventory::Device::new(mac.parse().unwrap(), "gxp2170");
            device
                .vars
                .insert(RESERVATION_VARIABLE.into(), address.into());
            device
        };
        let devices = [
            device("000b82000001", "198.51.100.50"),
            device("000b82000002", "192.0.2.5"),
            device("000b82000003", "nope"),
            device("000b82000004", "198.51.100.255"),
        ];
        let (reserved, problems) = reservations(&devices, server, mask);
        assert_eq!(reserved.len(), 1);
        assert_eq!(
            reserved.get(&[0, 0x0b, 0x82, 0, 0, 1]),
            Some(&Ipv4Addr::new(198, 51, 100, 50))
        );
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("000b82000002"), "{problems:#?}");
    }

    #[test]
    fn a_rival_is_named_with_what_it_offers() {
        let text = describe_rival(
            "d0",
            &RivalOffer {
                server: Ipv4Addr::new(198, 51, 100, 3),
                address: Ipv4Addr::new(198, 51, 100, 160),
                router: None,
                option66: Some("http://198.51.100.3:8080/".into()),
            },
        );
        assert!(
            text.contains("198.51.100.3 offers 198.51.100.160"),
            "{text}"
        );
        assert!(text.contains("\"http://198.51.100.3:8080/\""), "{text}");
    }
}
