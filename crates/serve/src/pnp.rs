//! SIP plug-and-play (RFC 6080 style, as Grandstream phones do it): a phone without a
//! provisioning server multicasts `SUBSCRIBE sip:MAC%3A<mac>@224.0.1.75` with
//! `Event: ua-profile`; the responder answers `200 OK` to the sender and then sends a `NOTIFY`
//! to the phone's Contact (its port, at the request's source address) whose `application/url` body is the provisioning URL the servers
//! listen on (a folder: it ends in `/`, as the phones expect).
//!
//! [`Responder`] is sans-IO (datagram in, datagrams out); [`run`] moves its datagrams over the
//! socket [`bind`] joined to the group on the chosen interface.
//!
//! Invariants: nothing is sent for a datagram that is not a SUBSCRIBE (responses, other
//! methods and garbage are ignored); a SUBSCRIBE for another event package gets `489 Bad
//! Event` and nothing else; every answered plug-and-play request is one
//! [`Event::PlugAndPlay`], which the recorder turns into a sighting (a new phone becomes
//! discovered); datagrams go only to the address a request came from; an unanswered NOTIFY is
//! sent again at most four times, with at most 1,024 waiting.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use provdesk_core::Mac;
use provdesk_sip::transaction::Retransmit;
use provdesk_sip::{EventHeader, Message, NameAddr, SipUri, Via};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventBus};

/// The SIP multicast group (RFC 6080 §4.1.1, `sip.mcast.net`).
pub const PNP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 1, 75);
pub const PNP_PORT: u16 = 5060;
const EVENT_PACKAGE: &str = "ua-profile";

/// How an answered plug-and-play request ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PnpOutcome {
    /// `200 OK` and the NOTIFY carrying `url` were sent.
    Notified { url: String },
    /// The answer could not be sent.
    Failed { reason: String },
}

/// The interface plug-and-play listens on: its name (when known) and its IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PnpInterface {
    pub name: Option<String>,
    pub address: Ipv4Addr,
}

impl PnpInterface {
    /// `spec` is an interface name (`eth0`), one of this machine's IPv4 addresses, or empty
    /// for the first interface with a non-loopback IPv4 address.
    pub fn find(spec: &str) -> Result<PnpInterface, String> {
        let spec = spec.trim();
        let interfaces = if_addrs::get_if_addrs()
            .map_err(|e| format!("cannot list the network interfaces: {e}"))?;
        let v4 = |i: &if_addrs::Interface| match i.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        };
        let found = if spec.is_empty() {
            interfaces
                .iter()
                .filter(|i| !i.is_loopback() && !i.is_link_local())
                .find_map(|i| v4(i).map(|a| (i.name.clone(), a)))
        } else if let Ok(address) = spec.parse::<Ipv4Addr>() {
            interfaces
                .iter()
                .find(|i| v4(i) == Some(address))
                .map(|i| (i.name.clone(), address))
        } else {
            interfaces
                .iter()
                .filter(|i| i.name == spec)
                .find_map(|i| v4(i).map(|a| (i.name.clone(), a)))
        };
        let (name, address) = found.ok_or_else(|| {
            let names: std::collections::BTreeSet<&str> =
                interfaces.iter().map(|i| i.name.as_str()).collect();
            let names = names.into_iter().collect::<Vec<_>>().join(", ");
            if spec.is_empty() {
                format!("no interface with an IPv4 address to listen on (interfaces: {names})")
            } else {
                format!("no interface {spec:?} with an IPv4 address (interfaces: {names})")
            }
        })?;
        Ok(PnpInterface {
            name: Some(name),
            address,
        })
    }
}

/// A UDP socket on port 5060 that has joined 224.0.1.75 on `interface` (and, on Linux, only
/// takes datagrams that arrived on it).
pub fn bind(interface: &PnpInterface) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(name) = &interface.name
        && let Err(e) = socket.bind_device(Some(name.as_bytes()))
    {
        // Needs CAP_NET_RAW on older kernels; the group membership still names the
        // interface, so only unicast SIP on other interfaces may reach the responder.
        tracing::debug!(error = %e, interface = %name, "plug-and-play socket not bound to its device");
    }
    // The wildcard address: a socket bound to the interface's address would not receive the
    // group's datagrams on Linux.
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, PNP_PORT)).into())?;
    socket.join_multicast_v4(&PNP_GROUP, &interface.address)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

/// What a phone told about itself in its SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub mac: Option<Mac>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub ip: IpAddr,
}

/// The datagrams that answer one request, in the order they go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub datagrams: Vec<(SocketAddr, Vec<u8>)>,
    /// Set when the request was a plug-and-play SUBSCRIBE (the answer holds its NOTIFY).
    pub subscriber: Option<Subscriber>,
}

/// The sans-IO responder.
pub struct Responder {
    /// Where the responder is reached (Via and Contact of what it sends).
    local: SocketAddrV4,
    url: String,
}

impl Responder {
    /// `url` is sent as it is; it should end in `/` ([`folder_url`]).
    pub fn new(local: SocketAddrV4, url: String) -> Responder {
        Responder { local, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The answer to one datagram from `peer`, or `None` when nothing is to be sent.
    pub fn handle(&self, datagram: &[u8], peer: SocketAddr) -> Option<Answer> {
        let request = Message::parse(datagram).ok()?;
        if !request.method()?.eq_ignore_ascii_case("SUBSCRIBE") {
            return None;
        }
        // Without these a response cannot be matched or routed: drop it, as RFC 3261 §18.2.1
        // asks of a malformed request.
        let via = request.top_via()?;
        let (from, call_id, cseq) = (request.from()?, request.call_id()?, request.cseq()?);
        let to = request.to()?;
        let destination = response_destination(&via, peer);
        let local_tag = random_token();
        let Some(event) = request.event().filter(|e| e.is(EVENT_PACKAGE)) else {
            let mut refusal = response(&request, &via, peer, 489, "Bad Event");
            refusal.push_header("Allow-Events", EVENT_PACKAGE);
            return Some(Answer {
                datagrams: vec![(destination, refusal.to_bytes())],
                subscriber: None,
            });
        };
        let our_to = to.clone().with_tag(&local_tag);
        let mut ok = response(&request, &via, peer, 200, "OK");
        ok.set_header("To", our_to.to_string());
        ok.push_header("Contact", self.contact().to_string());
        // The subscription ends with the one NOTIFY (RFC 6665 §4.2.1.1: a 2xx says how long).
        ok.push_header("Expires", "0");

        let contact = request.contact();
        let (notify_to, notify_uri) = notify_target(contact.as_ref(), peer);
        let notify = Message::request("NOTIFY", &notify_uri)
            .with_header(
                "Via",
                format!(
                    "SIP/2.0/UDP {};branch=z9hG4bK{};rport",
                    self.local,
                    random_token()
                ),
            )
            .with_header("Max-Forwards", "70")
            .with_header("From", our_to.to_string())
            .with_header("To", from.to_string())
            .with_header("Call-ID", call_id)
            .with_header("CSeq", format!("{} NOTIFY", cseq.number.wrapping_add(1)))
            .with_header("Contact", self.contact().to_string())
            // The phone's own Event line, parameters quoted as it quoted them.
            .with_header("Event", request.header("Event").unwrap_or(EVENT_PACKAGE))
            .with_header("Subscription-State", "terminated;reason=timeout")
            .with_header("User-Agent", "ProvDesk")
            .with_body("application/url", self.url.as_bytes());

        let subscriber = Subscriber {
            mac: mac_of(&request, &from),
            model: event_param(&event, "model")
                .or_else(|| agent_word(&request, 1))
                .filter(|m| !m.is_empty()),
            firmware: event_param(&event, "version")
                .or_else(|| agent_word(&request, 2))
                .filter(|f| !f.is_empty()),
            ip: peer.ip(),
        };
        Some(Answer {
            datagrams: vec![(destination, ok.to_bytes()), (notify_to, notify.to_bytes())],
            subscriber: Some(subscriber),
        })
    }

    fn contact(&self) -> NameAddr {
        NameAddr::new(&format!("sip:{}", self.local))
    }
}

/// A response to `request` whose top Via records where the request really came from
/// (`received`, and `rport` when the phone asked for it: RFC 3261 §18.2.1, RFC 3581 §4).
fn response(request: &Message, via: &Via, peer: SocketAddr, code: u16, reason: &str) -> Message {
    let mut response = Message::response_to(request, code, reason);
    let mut top = via.clone();
    if top.host != peer.ip().to_string() || top.params.get("rport").is_some() {
        top.params.set("received", Some(&peer.ip().to_string()));
    }
    if top.params.get("rport").is_some() {
        top.params.set("rport", Some(&peer.port().to_string()));
    }
    let vias: Vec<String> = request
        .header_values("Via")
        .iter()
        .skip(1)
        .map(|v| v.to_string())
        .collect();
    response
        .headers
        .retain(|h| !h.name.eq_ignore_ascii_case("Via"));
    for (at, value) in std::iter::once(top.to_string()).chain(vias).enumerate() {
        response.headers.insert(
            at,
            provdesk_sip::Header {
                name: "Via".into(),
                value,
            },
        );
    }
    response
}

/// Where a response goes (UDP, RFC 3261 §18.2.2 with RFC 3581): back to the source port
/// when the Via asks for `rport`, else to the Via's port at the source address.
fn response_destination(via: &Via, peer: SocketAddr) -> SocketAddr {
    if via.params.get("rport").is_some() {
        return peer;
    }
    SocketAddr::new(peer.ip(), via.port.unwrap_or(5060))
}

/// The NOTIFY's destination and request URI: the Contact's port at the address the request
/// came from, and the Contact as the URI; the request's source without a Contact. Never
/// another address than the source: a SUBSCRIBE naming a third host as its Contact must not
/// turn the desk into a reflector (NOTIFY and its resends) towards it.
fn notify_target(contact: Option<&NameAddr>, peer: SocketAddr) -> (SocketAddr, String) {
    match contact.and_then(|c| SipUri::parse(&c.uri)) {
        Some(uri) => {
            let destination = SocketAddr::new(peer.ip(), uri.port.unwrap_or(5060));
            (destination, uri.to_string())
        }
        None => (peer, format!("sip:{peer}")),
    }
}

/// `MAC%3AC074AD112233` (the phones' request URI), else the From user.
fn mac_of(request: &Message, from: &NameAddr) -> Option<Mac> {
    let users = [request.uri(), Some(from.uri.as_str())];
    users.into_iter().flatten().find_map(|uri| {
        let user = provdesk_sip::percent_decode(SipUri::parse(uri)?.user.as_deref()?);
        let hex = user
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("MAC:"))
            .map_or(user.as_str(), |_| &user[4..]);
        hex.parse().ok()
    })
}

fn event_param(event: &EventHeader, name: &str) -> Option<String> {
    event
        .params
        .get(name)
        .flatten()
        .map(|v| v.trim().to_string())
}

/// `User-Agent: Grandstream GRP2612W 1.0.5.67`: word 1 is the model, word 2 the firmware.
fn agent_word(request: &Message, word: usize) -> Option<String> {
    let agent = request.header("User-Agent")?;
    let mut words = agent.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("grandstream") {
        return None;
    }
    words.nth(word - 1).map(str::to_string)
}

fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// When a NOTIFY is sent again: SIP's T1 first, doubling each time; T2 is raised to 8 s so
/// the waits run 0.5, 1, 2, 4 and 8 s (the last one before it is given up).
const RESEND: Retransmit = Retransmit {
    t1: Duration::from_millis(500),
    t2: Duration::from_secs(8),
    timeout: Duration::from_millis(15_500),
};
/// Times a NOTIFY is sent again without an answer before it is given up.
const RESENDS: u32 = 4;
/// NOTIFYs awaiting an answer at most: a flood of SUBSCRIBEs cannot grow the table.
const MAX_PENDING: usize = 1024;

/// Sends a NOTIFY again, with SIP's doubling timer (RFC 3261 §17.1.2.2, timer E), until the
/// phone answers it or four resends went unanswered: UDP may lose it, and a phone
/// that got its 200 OK but no NOTIFY waits for nothing.
#[derive(Default)]
pub struct Resender {
    pending: std::collections::VecDeque<Pending>,
}

struct Pending {
    call_id: String,
    cseq: u32,
    to: SocketAddr,
    datagram: Vec<u8>,
    resent: u32,
    due: Instant,
}

impl Resender {
    /// Starts the timer of a NOTIFY just sent (anything else is ignored).
    pub fn track(&mut self, to: SocketAddr, datagram: &[u8], now: Instant) {
        let Ok(notify) = Message::parse(datagram) else {
            return;
        };
        let (Some(call_id), Some(cseq)) = (notify.call_id(), notify.cseq()) else {
            return;
        };
        if notify.method() != Some("NOTIFY") {
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(Pending {
            call_id: call_id.to_string(),
            cseq: cseq.number,
            to,
            datagram: datagram.to_vec(),
            resent: 0,
            due: now + RESEND.interval(1),
        });
    }

    /// A final response to a NOTIFY (any status from 200 on) ends its resends.
    pub fn answered(&mut self, datagram: &[u8]) {
        let Ok(response) = Message::parse(datagram) else {
            return;
        };
        let (Some(status), Some(call_id), Some(cseq)) =
            (response.status(), response.call_id(), response.cseq())
        else {
            return;
        };
        if status >= 200 && cseq.method.eq_ignore_ascii_case("NOTIFY") {
            self.pending
                .retain(|p| !(p.call_id == call_id && p.cseq == cseq.number));
        }
    }

    /// The NOTIFYs to send again now.
    pub fn due(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        self.pending.retain_mut(|p| {
            if p.due > now {
                return true;
            }
            if p.resent == RESENDS {
                return false;
            }
            p.resent += 1;
            p.due = now + RESEND.interval(p.resent + 1);
            out.push((p.to, p.datagram.clone()));
            true
        });
        out
    }

    /// When [`Resender::due`] has something next.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.due).min()
    }
}

/// `url` with a trailing `/`: phones append file names to it.
pub fn folder_url(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

/// Answers until `shutdown`; a failed send is the request's outcome, never the end.
pub async fn run(
    socket: UdpSocket,
    responder: Responder,
    events: EventBus,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; provdesk_sip::MAX_MESSAGE];
    let mut resender = Resender::default();
    loop {
        let next_due = resender.next_due();
        let (len, peer) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = sleep_until(next_due) => {
                for (destination, datagram) in resender.due(Instant::now()) {
                    // A resend that fails is tried again at its next time, if any.
                    let _ = socket.send_to(&datagram, destination).await;
                }
                continue;
            }
            received = socket.recv_from(&mut buffer) => match received {
                Ok(received) => received,
                // An ICMP error for an earlier send (a phone that went away) surfaces here:
                // not a reason to stop answering the others. The pause keeps a persistent
                // error from spinning.
                Err(e) => {
                    tracing::debug!(error = %e, "plug-and-play receive");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Some(answer) = responder.handle(&buffer[..len], peer) else {
            resender.answered(&buffer[..len]);
            continue;
        };
        let mut failure = None;
        for (destination, datagram) in &answer.datagrams {
            match socket.send_to(datagram, destination).await {
                Ok(_) => resender.track(*destination, datagram, Instant::now()),
                Err(e) => {
                    failure.get_or_insert(format!("cannot send to {destination}: {e}"));
                }
            }
        }
        if let Some(subscriber) = answer.subscriber {
            events.emit(Event::PlugAndPlay {
                mac: subscriber.mac,
                model: subscriber.model,
                firmware: subscriber.firmware,
                ip: subscriber.ip.to_string(),
                outcome: match failure {
                    None => PnpOutcome::Notified {
                        url: responder.url().to_string(),
                    },
                    Some(reason) => PnpOutcome::Failed { reason },
                },
            });
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use provdesk_sip::samples::GRP2612W_SUBSCRIBE as SUBSCRIBE;

    fn responder() -> Responder {
        Responder::new(
            "192.168.1.1:5060".parse().unwrap(),
            "http://192.168.1.1:8080/".into(),
        )
    }

    #[test]
    fn a_phones_subscribe_gets_200_then_a_notify_with_the_url() {
        let peer: SocketAddr = "192.168.1.2:5080".parse().unwrap();
        let answer = responder().handle(SUBSCRIBE.as_bytes(), peer).unwrap();
        assert_eq!(answer.datagrams.len(), 2);
        let (to, ok) = &answer.datagrams[0];
        assert_eq!(*to, peer);
        let ok = Message::parse(ok).unwrap();
        assert_eq!(ok.status(), Some(200));
        let via = ok.top_via().unwrap();
        assert_eq!(via.params.get("rport"), Some(Some("5080")));
        assert_eq!(via.params.get("received"), Some(Some("192.168.1.2")));
        let tag = ok.to().unwrap().tag().unwrap().to_string();
        assert_eq!(ok.cseq().unwrap().method, "SUBSCRIBE");

        let (to, notify) = &answer.datagrams[1];
        assert_eq!(*to, "192.168.1.2:5080".parse().unwrap());
        let notify = Message::parse(notify).unwrap();
        assert_eq!(notify.method(), Some("NOTIFY"));
        assert_eq!(notify.uri(), Some("sip:192.168.1.2:5080"));
        assert_eq!(notify.body, b"http://192.168.1.1:8080/");
        assert_eq!(notify.header("Content-Type"), Some("application/url"));
        assert_eq!(
            notify.header("Event"),
            Message::parse(SUBSCRIBE.as_bytes())
                .unwrap()
                .header("Event")
        );
        assert_eq!(
            notify.header("Subscription-State"),
            Some("terminated;reason=timeout")
        );
        assert_eq!(notify.from().unwrap().tag(), Some(tag.as_str()));
        assert_eq!(notify.to().unwrap().tag(), Some("395400190"));
        assert_eq!(notify.call_id(), Some("490431573-5080-1@BJC.BGI.IG.DA"));

        let phone = answer.subscriber.unwrap();
        assert_eq!(phone.mac, "c074ad112233".parse().ok());
        assert_eq!(phone.model.as_deref(), Some("GRP2612W"));
        assert_eq!(phone.firmware.as_deref(), Some("1.0.5.67"));
    }

    #[test]
    fn without_rport_the_answer_goes_to_the_via_port_and_the_agent_names_the_phone() {
        let text = SUBSCRIBE
            .replace(";rport", "")
            .replace("Contact: <sip:192.168.1.2:5080>\r\n", "")
            .replace(
                "Event: ua-profile;profile-type=\"device\";vendor=\"Grandstream\";model=\"GRP2612W\";version=\"1.0.5.67\"",
                "o: UA-Profile",
            );
        // The phone sent from another port, behind a NAT that changed its address.
        let peer: SocketAddr = "10.0.0.9:40000".parse().unwrap();
        let answer = responder().handle(text.as_bytes(), peer).unwrap();
        let (to, ok) = &answer.datagrams[0];
        assert_eq!(*to, "10.0.0.9:5080".parse().unwrap());
        let via = Message::parse(ok).unwrap().top_via().unwrap();
        assert_eq!(via.params.get("received"), Some(Some("10.0.0.9")));
        assert_eq!(via.params.get("rport"), None);
        // No Contact: the NOTIFY goes where the request came from.
        assert_eq!(answer.datagrams[1].0, peer);
        // A Contact elsewhere: its port, but at the request's source.
        let elsewhere = SUBSCRIBE.replace("<sip:192.168.1.2:5080>", "<sip:203.0.113.9:5070>");
        let answer = responder().handle(elsewhere.as_bytes(), peer).unwrap();
        assert_eq!(answer.datagrams[1].0, "10.0.0.9:5070".parse().unwrap());
        let phone = answer.subscriber.unwrap();
        assert_eq!(phone.model.as_deref(), Some("GRP2612W"));
        assert_eq!(phone.firmware.as_deref(), Some("1.0.5.67"));
    }

    #[test]
    fn other_events_get_489_and_other_messages_nothing() {
        let peer: SocketAddr = "192.168.1.2:5080".parse().unwrap();
        let presence = SUBSCRIBE.replace("Event: ua-profile;", "Event: presence;");
        let answer = responder().handle(presence.as_bytes(), peer).unwrap();
        assert_eq!(answer.datagrams.len(), 1);
        assert!(answer.subscriber.is_none());
        let refusal = Message::parse(&answer.datagrams[0].1).unwrap();
        assert_eq!(refusal.status(), Some(489));
        assert_eq!(refusal.header("Allow-Events"), Some("ua-profile"));
        let options = SUBSCRIBE.replace("SUBSCRIBE sip:", "OPTIONS sip:");
        assert_eq!(responder().handle(options.as_bytes(), peer), None);
        let response = b"SIP/2.0 200 OK\r\nCSeq: 1 NOTIFY\r\n\r\n";
        assert_eq!(responder().handle(response, peer), None);
        let no_via = SUBSCRIBE.replace("Via: ", "X-Via: ");
        assert_eq!(responder().handle(no_via.as_bytes(), peer), None);
        assert_eq!(responder().handle(b"\x00\x01garbage", peer), None);
    }

    #[test]
    fn an_unanswered_notify_is_sent_again_with_a_doubling_wait_then_given_up() {
        let peer: SocketAddr = "192.168.1.2:5080".parse().unwrap();
        let answer = responder().handle(SUBSCRIBE.as_bytes(), peer).unwrap();
        let (to, notify) = answer.datagrams[1].clone();
        let mut resender = Resender::default();
        let start = Instant::now();
        // Only a NOTIFY is tracked.
        resender.track(to, &answer.datagrams[0].1, start);
        assert_eq!(resender.next_due(), None);
        resender.track(to, &notify, start);
        let ms = |n| start + Duration::from_millis(n);
        assert!(resender.due(ms(499)).is_empty());
        let mut resent_at = Vec::new();
        for at in (0..15_000).step_by(50) {
            if !resender.due(ms(at)).is_empty() {
                resent_at.push(at);
            }
        }
        assert_eq!(resent_at, [500, 1500, 3500, 7500]);
        assert_eq!(resender.next_due(), Some(ms(7500) + Duration::from_secs(8)));
        assert!(resender.due(ms(20_000)).is_empty());
        assert_eq!(resender.next_due(), None, "given up");

        // An answer stops it; one for another NOTIFY does not.
        resender.track(to, &notify, start);
        let notify = Message::parse(&notify).unwrap();
        let mut other = Message::response_to(&notify, 200, "OK");
        other.set_header("CSeq", "1 NOTIFY");
        resender.answered(&other.to_bytes());
        assert!(resender.next_due().is_some());
        resender.answered(&Message::response_to(&notify, 200, "OK").to_bytes());
        assert_eq!(resender.next_due(), None);
    }

    #[test]
    fn urls_are_folders() {
        assert_eq!(folder_url("http://a:8080/gs"), "http://a:8080/gs/");
        assert_eq!(folder_url("http://a:8080/"), "http://a:8080/");
    }

    #[tokio::test]
    async fn answers_over_a_socket_and_reports_the_phone() {
        // Unicast on loopback: the multicast join is the scenario test's (it needs its own
        // network namespaces).
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server_address = server.local_addr().unwrap();
        let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let phone_address = phone.local_addr().unwrap();
        let bus = EventBus::new(16);
        let mut events = bus.subscribe();
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            server,
            Responder::new(
                "127.0.0.1:5060".parse().unwrap(),
                "http://127.0.0.1:8080/".into(),
            ),
            bus,
            stop.clone(),
        ));
        let text = SUBSCRIBE.replace("192.168.1.2:5080", &phone_address.to_string());
        phone
            .send_to(text.as_bytes(), server_address)
            .await
            .unwrap();
        let mut buffer = [0u8; 4096];
        let mut got = Vec::new();
        for _ in 0..2 {
            let wait = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                phone.recv_from(&mut buffer),
            );
            let (len, _) = wait.await.unwrap().unwrap();
            got.push(Message::parse(&buffer[..len]).unwrap());
        }
        assert_eq!(got[0].status(), Some(200));
        assert_eq!(got[1].method(), Some("NOTIFY"));
        let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
        let Event::PlugAndPlay { mac, outcome, .. } = &*event else {
            panic!("{event:?}");
        };
        assert_eq!(*mac, "c074ad112233".parse().ok());
        assert_eq!(
            *outcome,
            PnpOutcome::Notified {
                url: "http://127.0.0.1:8080/".into()
            }
        );
        stop.cancel();
        task.await.unwrap().unwrap();
    }
}
