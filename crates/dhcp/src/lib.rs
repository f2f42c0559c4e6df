//! A small sans-IO DHCPv4 responder for a provisioning bench.
//!
//! The desk hands out addresses on one interface and tells phones where their configuration
//! lives (option 66, option 43, option 150, `siaddr`/`sname`). Nothing here touches a socket
//! or a clock: [`Responder::handle`] takes a datagram and the time and returns what to send,
//! where, and what happened; leases go to a [`LeaseStore`] so the I/O side can persist them.
//! Packets are decoded and encoded with `dhcproto`.
//!
//! Rules, in the order they apply:
//! - only BOOTREQUESTs from Ethernet clients (htype 1, hlen 6) are considered; relayed
//!   requests (`giaddr` set) are ignored, because the pool is the interface's own subnet;
//! - in [`Answer::Phones`] mode only clients whose option 60 starts with `Grandstream`
//!   (what the phones send from P148, e.g. `Grandstream GXP2170`) are answered, plus clients
//!   with a static reservation (they are devices the desk knows);
//! - DISCOVER → OFFER (the reservation, else the client's previous address, else the address
//!   it asks for if free, else the first free pool address, else the address of the oldest
//!   offer not yet requested, so a DISCOVER flood cannot starve phones); a pool whose every
//!   address is leased is [`EventKind::PoolExhausted`], never silence;
//! - the lease table holds at most one entry per pool address plus the reservations,
//!   whatever the number of clients;
//! - REQUEST → ACK or NAK following RFC 2131 §4.3.2 (SELECTING, INIT-REBOOT,
//!   RENEWING/REBINDING); a REQUEST naming another server drops our offer silently;
//! - DECLINE quarantines the address; RELEASE frees it; INFORM gets the options without an
//!   address.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Flags, HType, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};

/// An Ethernet hardware address.
pub type HwAddr = [u8; 6];

/// How long an offered address stays held for the client that was offered it.
pub const OFFER_HOLD_SECS: u64 = 60;
/// How long a declined address (someone else answered ARP for it) is kept out of the pool.
pub const DECLINE_HOLD_SECS: u64 = 600;

/// Who gets an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Answer {
    /// Only clients whose vendor class (option 60) starts with `Grandstream`.
    #[default]
    Phones,
    /// Every client on the segment.
    Everyone,
}

/// Where phones find their configuration, derived from the servers that actually listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioning {
    /// Option 66: `http://HOST:PORT/BASE` when HTTP is on, the TFTP host otherwise.
    pub option66: String,
    /// `siaddr` and `sname`: the host option 66 names, so the three never disagree (a phone
    /// that ignores option 66 and falls back to `siaddr` still reaches the same machine).
    pub next_server: Ipv4Addr,
    /// Option 150 (TFTP server address) when TFTP is on.
    pub tftp: Option<Ipv4Addr>,
}

impl Provisioning {
    /// `http` is the HTTP listener's host and port when HTTP is on; `base` the URL path the
    /// files are under (`""` or `"/"` for the root); `tftp` the TFTP host when TFTP is on.
    /// `None` when neither server runs: there is nothing to point a phone at.
    pub fn from_servers(
        http: Option<(Ipv4Addr, u16)>,
        base: &str,
        tftp: Option<Ipv4Addr>,
    ) -> Option<Provisioning> {
        match (http, tftp) {
            (Some((host, port)), _) => {
                let base = base.trim_matches('/');
                // Phones append file names to the path: it must end in `/`.
                let option66 = if base.is_empty() {
                    format!("http://{host}:{port}/")
                } else {
                    format!("http://{host}:{port}/{base}/")
                };
                Some(Provisioning {
                    option66,
                    next_server: host,
                    tftp,
                })
            }
            (None, Some(host)) => Some(Provisioning {
                option66: host.to_string(),
                next_server: host,
                tftp: Some(host),
            }),
            (None, None) => None,
        }
    }
}

/// Everything the responder answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The desk's own address on the interface (server identifier, option 54).
    pub server: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub pool_start: Ipv4Addr,
    pub pool_end: Ipv4Addr,
    pub lease_secs: u32,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub ntp: Vec<Ipv4Addr>,
    /// Option 2, the local time's offset from UTC in seconds (east positive). The one
    /// time-zone option Grandstream's DHCP options guide lists; phones take it when P143
    /// ("Allow DHCP Option 2 to override time zone") is on. A fixed offset: daylight saving
    /// stays the phone's own rule.
    pub time_offset: Option<i32>,
    pub answer: Answer,
    pub provisioning: Provisioning,
    /// Send option 43 (see [`option43`]) to Grandstream clients.
    pub option43: bool,
    /// Fixed addresses for known devices.
    pub reservations: HashMap<HwAddr, Ipv4Addr>,
}

/// The default pool on a subnet: the half of the subnet's host addresses that does not
/// contain the desk's own address, so the desk (and, usually, a router at `.1` or `.254`
/// on the desk's side) stays out of it. `None` for subnets too small to share (/31, /32).
pub fn default_pool(server: Ipv4Addr, netmask: Ipv4Addr) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let mask = u32::from(netmask);
    let network = u32::from(server) & mask;
    let broadcast = network | !mask;
    if broadcast.checked_sub(network)? < 4 {
        return None;
    }
    let first = network + 1;
    let last = broadcast - 1;
    let middle = network + (broadcast - network) / 2;
    let server = u32::from(server);
    let (start, end) = if server <= middle {
        (middle + 1, last)
    } else {
        (first, middle)
    };
    Some((Ipv4Addr::from(start), Ipv4Addr::from(end)))
}

/// Option 43's layout. Grandstream documents option 43 only in screenshots (see
/// grandstream-facts §4.4), so the desk uses the common vendor-encapsulated form of RFC 2132
/// §8.4 with the sub-option numbering of TR-069/TR-111 (which Grandstream phones also
/// implement for their ACS URL): a sequence of `code, length, value`, here one sub-option
/// `1` (the configuration server URL) holding the same URL as option 66. `None` when the URL
/// does not fit a sub-option (over 255 bytes). To be verified on hardware; it can be
/// switched off (`option43 = false`).
pub fn option43(url: &str) -> Option<Vec<u8>> {
    let len = u8::try_from(url.len()).ok()?;
    let mut out = Vec::with_capacity(url.len() + 2);
    out.push(1);
    out.push(len);
    out.extend_from_slice(url.as_bytes());
    Some(out)
}

/// One lease as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub mac: HwAddr,
    pub address: Ipv4Addr,
    /// Unix seconds.
    pub expires_at: u64,
    pub hostname: Option<String>,
    pub vendor_class: Option<String>,
}

/// Where bound leases go. Only ACKed leases are stored; offers live in memory for
/// [`OFFER_HOLD_SECS`].
pub trait LeaseStore {
    fn save(&mut self, lease: &Lease);
    fn remove(&mut self, mac: &HwAddr);
}

/// A store that keeps nothing (tests, or a desk that does not persist).
impl LeaseStore for () {
    fn save(&mut self, _: &Lease) {}
    fn remove(&mut self, _: &HwAddr) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Discover,
    Offer,
    Request,
    Ack,
    Nak,
    Decline,
    Release,
    Inform,
    /// A DISCOVER found no free address.
    PoolExhausted,
    /// A request the rules say not to answer; `detail` says why.
    Ignored,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Discover => "discover",
            EventKind::Offer => "offer",
            EventKind::Request => "request",
            EventKind::Ack => "ack",
            EventKind::Nak => "nak",
            EventKind::Decline => "decline",
            EventKind::Release => "release",
            EventKind::Inform => "inform",
            EventKind::PoolExhausted => "pool-exhausted",
            EventKind::Ignored => "ignored",
        }
    }
}

/// What happened, tied to the client's MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub mac: HwAddr,
    pub address: Option<Ipv4Addr>,
    pub vendor_class: Option<String>,
    pub detail: Option<String>,
}

/// Where a reply goes (RFC 2131 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// To 255.255.255.255:68: NAKs, and clients that set the broadcast flag.
    Broadcast,
    /// To a client that already has an address (`ciaddr`): port 68.
    Unicast(Ipv4Addr),
    /// To an address the client does not have yet: the RFC wants a unicast to `chaddr`,
    /// which needs an ARP entry; an I/O side that cannot write one broadcasts instead.
    Hardware { address: Ipv4Addr, mac: HwAddr },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub bytes: Vec<u8>,
    pub to: Destination,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    pub reply: Option<Reply>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed DHCP packet: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

#[derive(Debug, Clone)]
struct Entry {
    address: Ipv4Addr,
    expires_at: u64,
    bound: bool,
    hostname: Option<String>,
    vendor_class: Option<String>,
}

/// The responder: configuration, the lease table, and the rules.
pub struct Responder {
    config: Config,
    entries: HashMap<HwAddr, Entry>,
    owners: HashMap<Ipv4Addr, HwAddr>,
    declined: HashMap<Ipv4Addr, u64>,
}

/// What the client said, pulled out of the message once.
struct Request<'a> {
    message: &'a Message,
    mac: HwAddr,
    vendor_class: Option<String>,
    hostname: Option<String>,
    requested: Option<Ipv4Addr>,
    server_id: Option<Ipv4Addr>,
}

impl Responder {
    /// `leases` are what the store kept, e.g. from before a restart.
    pub fn new(config: Config, leases: Vec<Lease>) -> Responder {
        let mut responder = Responder {
            config,
            entries: HashMap::new(),
            owners: HashMap::new(),
            declined: HashMap::new(),
        };
        for lease in leases {
            if !responder.in_subnet(lease.address) {
                continue;
            }
            responder.owners.insert(lease.address, lease.mac);
            responder.entries.insert(
                lease.mac,
                Entry {
                    address: lease.address,
                    expires_at: lease.expires_at,
                    bound: true,
                    hostname: lease.hostname,
                    vendor_class: lease.vendor_class,
                },
            );
        }
        responder
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The bound leases (expired ones included until their address is reused).
    pub fn leases(&self) -> Vec<Lease> {
        let mut leases: Vec<Lease> = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.bound)
            .map(|(mac, entry)| Lease {
                mac: *mac,
                address: entry.address,
                expires_at: entry.expires_at,
                hostname: entry.hostname.clone(),
                vendor_class: entry.vendor_class.clone(),
            })
            .collect();
        leases.sort_by_key(|lease| u32::from(lease.address));
        leases
    }

    /// Handles one datagram that arrived on port 67 at `now` (Unix seconds).
    pub fn handle(
        &mut self,
        datagram: &[u8],
        now: u64,
        store: &mut dyn LeaseStore,
    ) -> Result<Outcome, Malformed> {
        let message = Message::from_bytes(datagram).map_err(|e| Malformed(e.to_string()))?;
        if message.opcode() != Opcode::BootRequest {
            return Ok(Outcome::default());
        }
        // `hlen` before `chaddr()`: dhcproto slices its 16-byte `chaddr` by the `hlen` byte
        // from the wire, and panics on one over 16 (found by the `dhcp_packet` fuzz target).
        if message.htype() != HType::Eth || message.hlen() != 6 {
            return Err(Malformed("not an Ethernet client (htype 1, hlen 6)".into()));
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(message.chaddr());
        let Some(kind) = message.opts().msg_type() else {
            // BOOTP without DHCP: the desk does not answer BOOTP.
            return Ok(Outcome::default());
        };
        let request = Request {
            message: &message,
            mac,
            vendor_class: match message.opts().get(OptionCode::ClassIdentifier) {
                Some(DhcpOption::ClassIdentifier(bytes)) => {
                    Some(String::from_utf8_lossy(bytes).into_owned())
                }
                _ => None,
            },
            hostname: match message.opts().get(OptionCode::Hostname) {
                Some(DhcpOption::Hostname(name)) => Some(name.clone()),
                _ => None,
            },
            requested: match message.opts().get(OptionCode::RequestedIpAddress) {
                Some(DhcpOption::RequestedIpAddress(address)) => Some(*address),
                _ => None,
            },
            server_id: match message.opts().get(OptionCode::ServerIdentifier) {
                Some(DhcpOption::ServerIdentifier(address)) => Some(*address),
                _ => None,
            },
        };
        let received = match kind {
            MessageType::Discover => EventKind::Discover,
            MessageType::Request => EventKind::Request,
            MessageType::Decline => EventKind::Decline,
            MessageType::Release => EventKind::Release,
            MessageType::Inform => EventKind::Inform,
            // Server messages and the rest are not ours to answer.
            _ => return Ok(Outcome::default()),
        };
        let mut outcome = Outcome::default();
        outcome
            .events
            .push(request.event(received, request.requested.or(nonzero(message.ciaddr()))));
        if !message.giaddr().is_unspecified() {
            outcome.events.push(request.event_detail(
                EventKind::Ignored,
                None,
                "relayed request: the pool is this interface's subnet only",
            ));
            return Ok(outcome);
        }
        if !self.answers(&request) {
            outcome.events.push(request.event_detail(
                EventKind::Ignored,
                None,
                "not a Grandstream phone (option 60) and answer = phones",
            ));
            return Ok(outcome);
        }
        match kind {
            MessageType::Discover => self.discover(&request, now, store, &mut outcome),
            MessageType::Request => self.request(&request, now, store, &mut outcome),
            MessageType::Decline => self.decline(&request, now, store),
            MessageType::Release => self.release(&request, store),
            MessageType::Inform => self.inform(&request, &mut outcome),
            _ => {}
        }
        Ok(outcome)
    }

    fn answers(&self, request: &Request<'_>) -> bool {
        match self.config.answer {
            Answer::Everyone => true,
            Answer::Phones => {
                is_grandstream(request.vendor_class.as_deref())
                    || self.config.reservations.contains_key(&request.mac)
            }
        }
    }

    fn in_subnet(&self, address: Ipv4Addr) -> bool {
        let mask = u32::from(self.config.netmask);
        u32::from(address) & mask == u32::from(self.config.server) & mask
            && address != self.config.server
            && u32::from(address) & !mask != 0
            && u32::from(address) | mask != u32::MAX
    }

    fn in_pool(&self, address: Ipv4Addr) -> bool {
        let a = u32::from(address);
        a >= u32::from(self.config.pool_start)
            && a <= u32::from(self.config.pool_end)
            && self.in_subnet(address)
    }

    /// Whether `mac` may have `address` now: it is its reservation, or it holds it, or it is
    /// a pool address no one else holds, is reserved for, or declined.
    fn available_to(&self, mac: &HwAddr, address: Ipv4Addr, now: u64) -> bool {
        if self.config.reservations.get(mac) == Some(&address) {
            return true;
        }
        if !self.in_pool(address) {
            return false;
        }
        if self
            .config
            .reservations
            .iter()
            .any(|(other, reserved)| other != mac && *reserved == address)
        {
            return false;
        }
        if self
            .declined
            .get(&address)
            .is_some_and(|until| *until > now)
        {
            return false;
        }
        match self.owners.get(&address) {
            Some(owner) if owner == mac => true,
            Some(owner) => self
                .entries
                .get(owner)
                .is_none_or(|entry| entry.expires_at <= now),
            None => true,
        }
    }

    fn choose(&self, request: &Request<'_>, now: u64) -> Option<Ipv4Addr> {
        let mac = &request.mac;
        if let Some(reserved) = self.config.reservations.get(mac) {
            return Some(*reserved);
        }
        if let Some(entry) = self.entries.get(mac)
            && self.available_to(mac, entry.address, now)
        {
            return Some(entry.address);
        }
        if let Some(requested) = request.requested
            && self.available_to(mac, requested, now)
        {
            return Some(requested);
        }
        let (start, end) = (
            u32::from(self.config.pool_start),
            u32::from(self.config.pool_end),
        );
        if let Some(free) = (start..=end)
            .map(Ipv4Addr::from)
            .find(|address| self.available_to(mac, *address, now))
        {
            return Some(free);
        }
        // Every address is leased or offered. Under a DISCOVER flood (random MACs that never
        // REQUEST) offers alone would starve real phones for OFFER_HOLD_SECS, so the oldest
        // offer nobody has requested yet yields (RFC 2131 §4.3.1 lets a server reuse an
        // offered address; a client that loses it gets a NAK and starts again).
        self.entries
            .iter()
            .filter(|(other, entry)| {
                *other != mac
                    && !entry.bound
                    && self.owners.get(&entry.address) == Some(*other)
                    && self.in_pool(entry.address)
                    && !self
                        .config
                        .reservations
                        .values()
                        .any(|reserved| *reserved == entry.address)
            })
            .min_by_key(|(_, entry)| entry.expires_at)
            .map(|(_, entry)| entry.address)
    }

    /// Records `address` as `mac`'s, evicting whoever held it before (their entry expired).
    fn take(
        &mut self,
        request: &Request<'_>,
        address: Ipv4Addr,
        expires_at: u64,
        bound: bool,
        store: &mut dyn LeaseStore,
    ) {
        let mac = request.mac;
        if let Some(previous) = self.owners.insert(address, mac)
            && previous != mac
            && let Some(old) = self.entries.remove(&previous)
            && old.bound
        {
            store.remove(&previous);
        }
        if let Some(old) = self.entries.get(&mac)
            && old.address != address
            && self.owners.get(&old.address) == Some(&mac)
        {
            self.owners.remove(&old.address);
        }
        let entry = Entry {
            address,
            expires_at,
            bound,
            hostname: request.hostname.clone(),
            vendor_class: request.vendor_class.clone(),
        };
        if bound {
            store.save(&Lease {
                mac,
                address,
                expires_at,
                hostname: entry.hostname.clone(),
                vendor_class: entry.vendor_class.clone(),
            });
        }
        self.entries.insert(mac, entry);
    }

    fn forget(&mut self, mac: &HwAddr, store: &mut dyn LeaseStore) {
        if let Some(old) = self.entries.remove(mac) {
            if self.owners.get(&old.address) == Some(mac) {
                self.owners.remove(&old.address);
            }
            if old.bound {
                store.remove(mac);
            }
        }
    }

    fn discover(
        &mut self,
        request: &Request<'_>,
        now: u64,
        store: &mut dyn LeaseStore,
        outcome: &mut Outcome,
    ) {
        let Some(address) = self.choose(request, now) else {
            outcome.events.push(request.event_detail(
                EventKind::PoolExhausted,
                None,
                &format!(
                    "no free address in {}–{}",
                    self.config.pool_start, self.config.pool_end
                ),
            ));
            return;
        };
        // A bound lease stays bound (and stored) while it is re-offered.
        let existing = self
            .entries
            .get(&request.mac)
            .filter(|e| e.address == address && e.bound);
        let (expires_at, bound) = match existing {
            Some(entry) => (entry.expires_at.max(now + OFFER_HOLD_SECS), true),
            None => (now + OFFER_HOLD_SECS, false),
        };
        if !bound {
            self.take(request, address, expires_at, false, store);
        }
        let bytes = self.reply(request, MessageType::Offer, Some(address));
        outcome.reply = Some(Reply {
            bytes,
            to: destination(request.message, address),
        });
        outcome
            .events
            .push(request.event(EventKind::Offer, Some(address)));
    }

    fn request(
        &mut self,
        request: &Request<'_>,
        now: u64,
        store: &mut dyn LeaseStore,
        outcome: &mut Outcome,
    ) {
        let message = request.message;
        let ciaddr = nonzero(message.ciaddr());
        let address = match (request.server_id, request.requested, ciaddr) {
            // SELECTING: the client chose a server.
            (Some(server), _, _) if server != self.config.server => {
                if let Some(entry) = self.entries.get(&request.mac)
                    && !entry.bound
                {
                    self.forget(&request.mac, store);
                }
                outcome.events.push(request.event_detail(
                    EventKind::Ignored,
                    None,
                    &format!("the client chose another server ({server})"),
                ));
                return;
            }
            (Some(_), Some(requested), _) => requested,
            (Some(_), None, Some(ciaddr)) => ciaddr,
            (Some(_), None, None) => {
                self.nak(request, outcome, "REQUEST without a requested address");
                return;
            }
            // INIT-REBOOT, or RENEWING/REBINDING: only a client we know gets an answer.
            (None, requested, ciaddr) => {
                let Some(wanted) = requested.or(ciaddr) else {
                    self.nak(request, outcome, "REQUEST without a requested address");
                    return;
                };
                let known = self.entries.get(&request.mac).map(|entry| entry.address);
                let reserved = self.config.reservations.get(&request.mac).copied();
                match known.or(reserved) {
                    Some(address) if address == wanted => wanted,
                    Some(address) => {
                        self.nak(
                            request,
                            outcome,
                            &format!("this client's address is {address}"),
                        );
                        return;
                    }
                    None if !self.in_subnet(wanted) => {
                        self.nak(
                            request,
                            outcome,
                            &format!("{wanted} is not on this network"),
                        );
                        return;
                    }
                    None => {
                        // RFC 2131 §4.3.2: no record of the client, remain silent.
                        outcome.events.push(request.event_detail(
                            EventKind::Ignored,
                            Some(wanted),
                            "no record of this client",
                        ));
                        return;
                    }
                }
            }
        };
        if !self.available_to(&request.mac, address, now) {
            self.nak(
                request,
                outcome,
                &format!("{address} is not available to this client"),
            );
            return;
        }
        let expires_at = now + u64::from(self.config.lease_secs);
        self.take(request, address, expires_at, true, store);
        let bytes = self.reply(request, MessageType::Ack, Some(address));
        let to = match ciaddr {
            Some(ciaddr) => Destination::Unicast(ciaddr),
            None => destination(message, address),
        };
        outcome.reply = Some(Reply { bytes, to });
        outcome
            .events
            .push(request.event(EventKind::Ack, Some(address)));
    }

    fn nak(&self, request: &Request<'_>, outcome: &mut Outcome, why: &str) {
        let mut reply = base_reply(request.message);
        reply
            .opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Nak));
        reply
            .opts_mut()
            .insert(DhcpOption::ServerIdentifier(self.config.server));
        reply
            .opts_mut()
            .insert(DhcpOption::Message(why.to_string()));
        if let Ok(bytes) = reply.to_vec() {
            outcome.reply = Some(Reply {
                bytes,
                to: Destination::Broadcast,
            });
        }
        outcome
            .events
            .push(request.event_detail(EventKind::Nak, None, why));
    }

    fn decline(&mut self, request: &Request<'_>, now: u64, store: &mut dyn LeaseStore) {
        let Some(address) = request.requested else {
            return;
        };
        if self
            .entries
            .get(&request.mac)
            .is_some_and(|entry| entry.address == address)
        {
            self.forget(&request.mac, store);
        }
        if self.in_pool(address) {
            self.declined.insert(address, now + DECLINE_HOLD_SECS);
        }
    }

    fn release(&mut self, request: &Request<'_>, store: &mut dyn LeaseStore) {
        let ciaddr = request.message.ciaddr();
        if self
            .entries
            .get(&request.mac)
            .is_some_and(|entry| entry.address == ciaddr)
        {
            self.forget(&request.mac, store);
        }
    }

    fn inform(&self, request: &Request<'_>, outcome: &mut Outcome) {
        let ciaddr = request.message.ciaddr();
        let bytes = self.reply(request, MessageType::Ack, None);
        let to = match nonzero(ciaddr) {
            Some(ciaddr) => Destination::Unicast(ciaddr),
            None => Destination::Broadcast,
        };
        outcome.reply = Some(Reply { bytes, to });
        outcome
            .events
            .push(request.event(EventKind::Ack, nonzero(ciaddr)));
    }

    /// An OFFER or ACK; `address` is `None` for the ACK to an INFORM (no lease).
    fn reply(
        &self,
        request: &Request<'_>,
        kind: MessageType,
        address: Option<Ipv4Addr>,
    ) -> Vec<u8> {
        let config = &self.config;
        let mut reply = base_reply(request.message);
        reply.set_ciaddr(request.message.ciaddr());
        if let Some(address) = address {
            reply.set_yiaddr(address);
        }
        let provisioning = &config.provisioning;
        reply.set_siaddr(provisioning.next_server);
        reply.set_sname_str(provisioning.next_server.to_string());
        let opts = reply.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        opts.insert(DhcpOption::ServerIdentifier(config.server));
        if address.is_some() {
            opts.insert(DhcpOption::AddressLeaseTime(config.lease_secs));
            opts.insert(DhcpOption::Renewal(config.lease_secs / 2));
            opts.insert(DhcpOption::Rebinding(config.lease_secs / 8 * 7));
        }
        opts.insert(DhcpOption::SubnetMask(config.netmask));
        if let Some(router) = config.router {
            opts.insert(DhcpOption::Router(vec![router]));
        }
        if !config.dns.is_empty() {
            opts.insert(DhcpOption::DomainNameServer(config.dns.clone()));
        }
        if !config.ntp.is_empty() {
            opts.insert(DhcpOption::NtpServers(config.ntp.clone()));
        }
        if let Some(offset) = config.time_offset {
            opts.insert(DhcpOption::TimeOffset(offset));
        }
        opts.insert(DhcpOption::TFTPServerName(
            provisioning.option66.clone().into_bytes(),
        ));
        // Option 43's meaning is the vendor's named in option 60: only Grandstream clients
        // get the Grandstream layout.
        if config.option43
            && is_grandstream(request.vendor_class.as_deref())
            && let Some(value) = option43(&provisioning.option66)
        {
            opts.insert(DhcpOption::VendorExtensions(value));
        }
        if let Some(tftp) = provisioning.tftp {
            opts.insert(DhcpOption::TFTPServerAddress(tftp));
        }
        // Encoding a message built from valid parts cannot fail; an empty reply is dropped.
        reply.to_vec().unwrap_or_default()
    }
}

impl Request<'_> {
    fn event(&self, kind: EventKind, address: Option<Ipv4Addr>) -> Event {
        Event {
            kind,
            mac: self.mac,
            address,
            vendor_class: self.vendor_class.clone(),
            detail: None,
        }
    }

    fn event_detail(&self, kind: EventKind, address: Option<Ipv4Addr>, detail: &str) -> Event {
        Event {
            detail: Some(detail.to_string()),
            ..self.event(kind, address)
        }
    }
}

fn nonzero(address: Ipv4Addr) -> Option<Ipv4Addr> {
    (!address.is_unspecified()).then_some(address)
}

fn is_grandstream(vendor_class: Option<&str>) -> bool {
    vendor_class.is_some_and(|class| {
        class.len() >= 11 && class.as_bytes()[..11].eq_ignore_ascii_case(b"grandstream")
    })
}

/// A BOOTREPLY with the client's transaction, flags and hardware address.
fn base_reply(request: &Message) -> Message {
    let mut reply = Message::default();
    reply
        .set_opcode(Opcode::BootReply)
        .set_htype(HType::Eth)
        .set_xid(request.xid())
        .set_flags(request.flags())
        .set_chaddr(request.chaddr());
    reply.opts_mut().clear();
    reply
}

/// RFC 2131 §4.1 for a reply carrying `yiaddr`: broadcast when the client asked for it,
/// otherwise to the hardware address.
fn destination(request: &Message, address: Ipv4Addr) -> Destination {
    if request.flags().broadcast() {
        return Destination::Broadcast;
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(request.chaddr());
    Destination::Hardware { address, mac }
}

/// What another server offered to the pre-flight's DISCOVER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RivalOffer {
    /// Option 54, else the packet's `siaddr`.
    pub server: Ipv4Addr,
    pub address: Ipv4Addr,
    pub router: Option<Ipv4Addr>,
    pub option66: Option<String>,
}

/// The pre-flight's DISCOVER: broadcast flag set so the offer reaches a socket that has no
/// address yet, and a vendor class that starts like a phone's, because the question is
/// whether a phone would get an answer from someone else (another desk in `phones` mode
/// included).
pub fn probe_discover(mac: HwAddr, xid: u32) -> Vec<u8> {
    let mut message = Message::default();
    message
        .set_xid(xid)
        .set_flags(Flags::default().set_broadcast())
        .set_chaddr(&mac);
    let opts = message.opts_mut();
    opts.insert(DhcpOption::MessageType(MessageType::Discover));
    opts.insert(DhcpOption::ClassIdentifier(
        b"Grandstream ProvDesk-preflight".to_vec(),
    ));
    opts.insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::TFTPServerName,
    ]));
    message.to_vec().unwrap_or_default()
}

/// Reads an OFFER answering [`probe_discover`]'s `xid`; anything else is `None`.
pub fn parse_rival_offer(datagram: &[u8], xid: u32) -> Option<RivalOffer> {
    let message = Message::from_bytes(datagram).ok()?;
    if message.opcode() != Opcode::BootReply
        || message.xid() != xid
        || !message.opts().has_msg_type(MessageType::Offer)
    {
        return None;
    }
    let server = match message.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(address)) => *address,
        _ => message.siaddr(),
    };
    let router = match message.opts().get(OptionCode::Router) {
        Some(DhcpOption::Router(routers)) => routers.first().copied(),
        _ => None,
    };
    let option66 = match message.opts().get(OptionCode::TFTPServerName) {
        Some(DhcpOption::TFTPServerName(bytes)) => {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
        _ => None,
    };
    Some(RivalOffer {
        server,
        address: message.yiaddr(),
        router,
        option66,
    })
}

pub mod fuzzing;

#[cfg(test)]
mod tests;
