//! One closed event type for everything the servers and the builder report, and the bus
//! that fans it out: subscribers (CLI printer, app) may lag and lose progress events; the
//! recorder that writes the fetch log gets every outcome.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use provdesk_core::build::ArtifactKind;
use provdesk_core::inventory::{EventSource, NewDeviceEvent};
use provdesk_core::{Diagnostic, Mac};
use tokio::sync::{broadcast, mpsc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Https,
    Tftp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Tftp => "tftp",
        }
    }
}

/// How a request ended. Reasons are for people and never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// 200 or 206 (HTTP), or a completed transfer (TFTP).
    Served { status: u16 },
    /// No such file; phones then fall back (`cfg<mac>.xml` → `cfg<model>.xml` → `cfg.xml`).
    NotFound { reason: String },
    /// A malformed or dangerous name (traversal, control characters, too long).
    BadRequest { reason: String },
    /// Refused: allow-list, authentication, client certificate.
    Denied { reason: String },
    /// Started but did not finish (timeout, peer error, connection reset).
    Failed { reason: String },
}

impl Outcome {
    /// The fetch log's `status` column.
    pub fn status_text(&self) -> String {
        self.status_code().into_owned()
    }

    /// [`Outcome::status_text`] without an allocation for the usual statuses.
    pub fn status_code(&self) -> Cow<'static, str> {
        match self {
            Outcome::Served { status: 200 } => "200".into(),
            Outcome::Served { status: 206 } => "206".into(),
            Outcome::Served { status: 304 } => "304".into(),
            Outcome::Served { status } => status.to_string().into(),
            Outcome::NotFound { .. } => "404".into(),
            Outcome::BadRequest { .. } => "400".into(),
            Outcome::Denied { .. } => "denied".into(),
            Outcome::Failed { .. } => "failed".into(),
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Served { .. } => None,
            Outcome::NotFound { reason }
            | Outcome::BadRequest { reason }
            | Outcome::Denied { reason }
            | Outcome::Failed { reason } => Some(reason),
        }
    }
}

/// Which published artifact answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArtifactRef {
    pub kind: ArtifactKind,
    pub hash: String,
    pub version: u64,
}

/// One request (HTTP) or one transfer (TFTP), when it ends.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fetch {
    /// Unix milliseconds when the request arrived.
    pub at_ms: i64,
    pub protocol: Protocol,
    pub peer: SocketAddr,
    /// The requested name as received, with control characters escaped for display.
    pub name: String,
    pub mac: Option<Mac>,
    pub model: Option<String>,
    pub user_agent: Option<String>,
    pub outcome: Outcome,
    pub bytes: u64,
    pub duration_ms: u64,
    pub artifact: Option<ArtifactRef>,
}

impl Fetch {
    /// Appends `Event::Fetch(self)` as the JSON object serde writes for it, byte for byte,
    /// without serde: in a boot storm the JSON log printed through serde cost about 2 us a
    /// request, a twentieth of the server's CPU. The tests hold the two to the same bytes.
    pub fn append_json_event(&self, out: &mut Vec<u8>) {
        let mut number = itoa::Buffer::new();
        out.extend_from_slice(b"{\"event\":\"fetch\",\"at_ms\":");
        out.extend_from_slice(number.format(self.at_ms).as_bytes());
        out.extend_from_slice(b",\"protocol\":\"");
        out.extend_from_slice(self.protocol.as_str().as_bytes());
        out.extend_from_slice(b"\",\"peer\":\"");
        // Addresses hold no character JSON escapes.
        let _ = std::io::Write::write_fmt(out, format_args!("{}", self.peer));
        out.extend_from_slice(b"\",\"name\":");
        json_string(out, &self.name);
        out.extend_from_slice(b",\"mac\":");
        match self.mac {
            Some(mac) => {
                out.push(b'"');
                out.extend_from_slice(mac.hex().as_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"model\":");
        json_option(out, self.model.as_deref());
        out.extend_from_slice(b",\"user_agent\":");
        json_option(out, self.user_agent.as_deref());
        out.extend_from_slice(b",\"outcome\":{\"kind\":\"");
        match &self.outcome {
            Outcome::Served { status } => {
                out.extend_from_slice(b"served\",\"status\":");
                out.extend_from_slice(number.format(*status).as_bytes());
            }
            Outcome::NotFound { reason }
            | Outcome::BadRequest { reason }
            | Outcome::Denied { reason }
            | Outcome::Failed { reason } => {
                out.extend_from_slice(self.outcome.kind().as_bytes());
                out.extend_from_slice(b"\",\"reason\":");
                json_string(out, reason);
            }
        }
        out.extend_from_slice(b"},\"bytes\":");
        out.extend_from_slice(number.format(self.bytes).as_bytes());
        out.extend_from_slice(b",\"duration_ms\":");
        out.extend_from_slice(number.format(self.duration_ms).as_bytes());
        out.extend_from_slice(b",\"artifact\":");
        match &self.artifact {
            Some(artifact) => {
                out.extend_from_slice(b"{\"kind\":\"");
                out.extend_from_slice(artifact.kind.as_str().as_bytes());
                out.extend_from_slice(b"\",\"hash\":");
                json_string(out, &artifact.hash);
                out.extend_from_slice(b",\"version\":");
                out.extend_from_slice(number.format(artifact.version).as_bytes());
                out.push(b'}');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }
}

impl Outcome {
    /// The `kind` tag serde writes (`not-found`).
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Served { .. } => "served",
            Outcome::NotFound { .. } => "not-found",
            Outcome::BadRequest { .. } => "bad-request",
            Outcome::Denied { .. } => "denied",
            Outcome::Failed { .. } => "failed",
        }
    }
}

fn json_option(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => json_string(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON string escaped as serde_json escapes it: quote, backslash and control characters
/// below 0x20 (short forms where JSON has them), everything else as it is.
fn json_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut plain_from = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escaped: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0x0f)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain_from..at]);
        out.extend_from_slice(escaped);
        plain_from = at + 1;
    }
    out.extend_from_slice(&bytes[plain_from..]);
    out.push(b'"');
}

/// A transfer under way (firmware downloads), throttled by the sender.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Unique per transfer within one run.
    pub transfer: u64,
    pub protocol: Protocol,
    pub peer: SocketAddr,
    pub name: String,
    pub mac: Option<Mac>,
    pub bytes: u64,
    pub total: Option<u64>,
}

/// A build finished (the watcher's or the first one).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BuildSummary {
    pub published: bool,
    pub build: u64,
    pub artifacts: usize,
    pub written: usize,
    pub removed: usize,
    pub elapsed_ms: f64,
    pub diagnostics: Vec<Diagnostic>,
    /// Devices held back by errors in their own values ("needs attention"); the build
    /// published for every other device.
    pub held: Vec<provdesk_core::build::HeldDevice>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Listening {
        protocol: Protocol,
        url: String,
    },
    Fetch(Fetch),
    Progress(Progress),
    Build(BuildSummary),
    /// A phone not in the inventory asked for its files.
    Discovered {
        mac: Mac,
        model: Option<String>,
        ip: String,
        firmware_version: Option<String>,
    },
    /// A phone asked for its provisioning server by SIP plug-and-play (a multicast
    /// `SUBSCRIBE` for `ua-profile`); the recorder treats it as a sighting.
    PlugAndPlay {
        mac: Option<Mac>,
        model: Option<String>,
        firmware: Option<String>,
        ip: String,
        outcome: crate::pnp::PnpOutcome,
    },
    Warning {
        message: String,
    },
    /// The DHCP responder started, or a DHCP message came in or went out.
    Dhcp(DhcpEvent),
    /// The syslog receiver started, a phone's line came in, or lines were dropped.
    Syslog(SyslogEvent),
}

/// What the syslog receiver reports (`crate::syslog`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SyslogEvent {
    /// The receiver runs: `udp://HOST:PORT`.
    Listening { url: String },
    /// One line, read and tied to its device when the desk can tell which.
    Line(SyslogLine),
    /// Lines not kept: a source (or all of them together) sent more than its share.
    Dropped(SyslogDropped),
}

/// One syslog line as received.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyslogLine {
    pub at_ms: i64,
    pub peer: SocketAddr,
    /// The device the line is tied to, and how.
    pub mac: Option<Mac>,
    pub tied_by: Option<TiedBy>,
    pub format: provdesk_core::syslog::Format,
    pub facility: Option<&'static str>,
    pub severity: Option<provdesk_core::syslog::Severity>,
    pub hostname: Option<String>,
    pub app: Option<String>,
    pub message: String,
    /// The sender's own clock, when the line says.
    pub sent_at_ms: Option<i64>,
    /// MACs the line names that are no device of the desk's (a relay's other phones).
    pub other_macs: Vec<Mac>,
    /// Bytes of the datagram past the kept part ([`provdesk_core::syslog::MAX_LINE_BYTES`]).
    pub cut_bytes: u64,
}

/// How a syslog line was tied to its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TiedBy {
    /// The line names the MAC of a device of the desk's.
    MacInLine,
    /// The desk's DHCP responder leased the source address to the device.
    Lease,
    /// The device last reached the desk from the source address (a fetch, a plug-and-play
    /// request, a lease seen earlier).
    Address,
}

impl TiedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            TiedBy::MacInLine => "mac-in-line",
            TiedBy::Lease => "lease",
            TiedBy::Address => "address",
        }
    }
}

/// Lines dropped over one report interval.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyslogDropped {
    pub at_ms: i64,
    /// The source, or `None` for the sources not reported one by one.
    pub peer: Option<std::net::IpAddr>,
    pub mac: Option<Mac>,
    pub lines: u64,
    /// Sources this count covers (1 for a named source).
    pub sources: u64,
    /// Why: `rate` (each source over its share) or `total` (all sources together).
    pub reason: &'static str,
    /// The share that was exceeded, in lines a second.
    pub per_second: u32,
}

/// One DHCP happening on the responder's interface, tied to the client's MAC.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DhcpEvent {
    pub at_ms: i64,
    pub interface: String,
    /// `listening` (the responder runs; `address` is the desk's), `discover`, `offer`,
    /// `request`, `ack`, `nak`, `decline`, `release`, `inform`, `pool-exhausted`, `ignored`.
    pub kind: &'static str,
    pub mac: Option<Mac>,
    pub address: Option<std::net::Ipv4Addr>,
    pub vendor_class: Option<String>,
    /// Why (a NAK, an ignored request, an exhausted pool) or what (the pool and URL).
    pub detail: Option<String>,
}

impl Event {
    /// The row this event adds to its device's timeline (`device_events`), if it is one of
    /// the happenings the fetch log does not hold: DHCP messages and plug-and-play requests.
    pub fn device_event(&self) -> Option<NewDeviceEvent> {
        match self {
            Event::Dhcp(dhcp) if dhcp.kind != "listening" => {
                let mut summary = format!("DHCP {}", dhcp.kind.to_uppercase());
                if let Some(address) = dhcp.address {
                    summary.push_str(&format!(" {address}"));
                }
                if let Some(detail) = &dhcp.detail {
                    summary.push_str(&format!(": {detail}"));
                }
                Some(NewDeviceEvent {
                    at_ms: dhcp.at_ms,
                    mac: dhcp.mac,
                    peer: dhcp.address.map(|a| a.to_string()),
                    source: EventSource::Dhcp,
                    kind: dhcp.kind.to_string(),
                    summary,
                    detail: Some(serde_json::json!({
                        "interface": dhcp.interface,
                        "vendor_class": dhcp.vendor_class,
                    })),
                })
            }
            Event::PlugAndPlay {
                mac,
                model,
                firmware,
                ip,
                outcome,
            } => {
                let (kind, summary) = match outcome {
                    crate::pnp::PnpOutcome::Notified { url } => (
                        "subscribe",
                        format!("asked for its provisioning server by plug-and-play; told {url}"),
                    ),
                    crate::pnp::PnpOutcome::Failed { reason } => (
                        "subscribe-failed",
                        format!(
                            "asked for its provisioning server by plug-and-play; no answer sent: {reason}"
                        ),
                    ),
                };
                Some(NewDeviceEvent {
                    at_ms: now_ms(),
                    mac: *mac,
                    peer: Some(ip.clone()),
                    source: EventSource::Pnp,
                    kind: kind.into(),
                    summary,
                    detail: Some(serde_json::json!({ "model": model, "firmware": firmware })),
                })
            }
            Event::Syslog(SyslogEvent::Line(line)) => {
                let mut summary = String::new();
                if let Some(severity) = line.severity {
                    summary.push_str(severity.as_str());
                    summary.push(' ');
                }
                if let Some(app) = &line.app {
                    summary.push_str(app);
                    summary.push_str(": ");
                }
                summary.push_str(&line.message);
                if line.cut_bytes > 0 {
                    summary.push_str(&format!(" (cut: {} more bytes)", line.cut_bytes));
                }
                Some(NewDeviceEvent {
                    at_ms: line.at_ms,
                    mac: line.mac,
                    peer: Some(line.peer.to_string()),
                    source: EventSource::Syslog,
                    kind: "line".into(),
                    summary,
                    detail: Some(serde_json::json!({
                        "format": line.format,
                        "facility": line.facility,
                        "severity": line.severity,
                        "hostname": line.hostname,
                        "app": line.app,
                        "sent_at_ms": line.sent_at_ms,
                        "tied_by": line.tied_by.map(TiedBy::as_str),
                        "other_macs": line.other_macs,
                        "cut_bytes": line.cut_bytes,
                    })),
                })
            }
            Event::Syslog(SyslogEvent::Dropped(dropped)) => Some(NewDeviceEvent {
                at_ms: dropped.at_ms,
                mac: dropped.mac,
                peer: dropped.peer.map(|p| p.to_string()),
                source: EventSource::Syslog,
                kind: "dropped".into(),
                summary: dropped.summary(),
                detail: Some(serde_json::json!({
                    "lines": dropped.lines,
                    "sources": dropped.sources,
                    "reason": dropped.reason,
                    "per_second": dropped.per_second,
                })),
            }),
            _ => None,
        }
    }
}

impl SyslogDropped {
    /// `1234 syslog line(s) dropped: over 100 lines a second from this address`.
    pub fn summary(&self) -> String {
        let share = self.per_second;
        let why = match (self.reason, self.sources) {
            ("rate", 1) => format!("over {share} lines a second from this address"),
            ("rate", n) => format!("{n} addresses each over {share} lines a second"),
            _ => format!("over {share} lines a second from all addresses together"),
        };
        format!("{} syslog line(s) dropped: {why}", self.lines)
    }
}

/// Fans events out. Cloning is cheap; every clone emits into the same bus.
#[derive(Clone)]
pub struct EventBus {
    subscribers: broadcast::Sender<Arc<Event>>,
    /// Outcomes for the fetch-log recorder: unbounded so an outcome is never dropped; the
    /// recorder drains it in batches far faster than phones can produce requests.
    recorder: Option<mpsc::UnboundedSender<Arc<Event>>>,
}

impl EventBus {
    /// A bus whose lagging subscribers lose the oldest events beyond `capacity`.
    pub fn new(capacity: usize) -> EventBus {
        let (subscribers, _) = broadcast::channel(capacity.max(16));
        EventBus {
            subscribers,
            recorder: None,
        }
    }

    /// Connects the recorder; every event but progress is also sent to it.
    pub fn with_recorder(mut self) -> (EventBus, mpsc::UnboundedReceiver<Arc<Event>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.recorder = Some(tx);
        (self, rx)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.subscribers.subscribe()
    }

    pub fn emit(&self, event: Event) {
        let event = Arc::new(event);
        if let Some(recorder) = &self.recorder
            && !matches!(*event, Event::Progress(_))
        {
            // A closed recorder means shutdown is under way; nothing is left to record into.
            let _ = recorder.send(Arc::clone(&event));
        }
        // No subscriber is fine: events are still recorded.
        let _ = self.subscribers.send(event);
    }
}

/// Current time as Unix milliseconds, the unit of every timestamp in events and the log.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(outcome: Outcome) -> Event {
        Event::Fetch(Fetch {
            at_ms: 1,
            protocol: Protocol::Http,
            peer: "127.0.0.1:5000".parse().unwrap(),
            name: "cfg.xml".into(),
            mac: None,
            model: None,
            user_agent: None,
            outcome,
            bytes: 0,
            duration_ms: 0,
            artifact: None,
        })
    }

    #[tokio::test]
    async fn subscribers_and_recorder_both_get_outcomes_but_only_subscribers_get_progress() {
        let (bus, mut recorder) = EventBus::new(16).with_recorder();
        let mut subscriber = bus.subscribe();
        bus.emit(fetch(Outcome::Served { status: 200 }));
        bus.emit(Event::Progress(Progress {
            transfer: 1,
            protocol: Protocol::Tftp,
            peer: "127.0.0.1:5000".parse().unwrap(),
            name: "fw.bin".into(),
            mac: None,
            bytes: 1,
            total: Some(2),
        }));
        assert!(matches!(*subscriber.recv().await.unwrap(), Event::Fetch(_)));
        assert!(matches!(
            *subscriber.recv().await.unwrap(),
            Event::Progress(_)
        ));
        assert!(matches!(*recorder.recv().await.unwrap(), Event::Fetch(_)));
        assert!(recorder.try_recv().is_err());
    }

    /// Every ASCII character, then some that are not, in one string.
    fn every_kind_of_character() -> String {
        let mut text: String = (0u8..=0x7f).map(char::from).collect();
        text.push_str("é€😀\u{2028}\u{fffd}");
        text
    }

    #[test]
    fn fetch_json_is_byte_for_byte_what_serde_writes() {
        let tricky = every_kind_of_character();
        let mut cases = Vec::new();
        for outcome in [
            Outcome::Served { status: 200 },
            Outcome::Served { status: 206 },
            Outcome::NotFound {
                reason: tricky.clone(),
            },
            Outcome::BadRequest {
                reason: "a \"quoted\" \\ reason".into(),
            },
            Outcome::Denied {
                reason: String::new(),
            },
            Outcome::Failed {
                reason: "reset\r\n".into(),
            },
        ] {
            cases.push(Fetch {
                at_ms: 1_795_926_171_043,
                protocol: Protocol::Https,
                peer: "[fe80::1%2]:50000".parse().unwrap(),
                name: tricky.clone(),
                mac: Some(Mac::from_bytes([0, 0x0b, 0x82, 0xab, 0xcd, 0xef])),
                model: Some("gxp2170".into()),
                user_agent: Some(tricky.clone()),
                outcome: outcome.clone(),
                bytes: u64::MAX,
                duration_ms: 12,
                artifact: Some(ArtifactRef {
                    kind: ArtifactKind::DeviceXml,
                    hash: "a979e2e9".into(),
                    version: u64::MAX,
                }),
            });
            let Event::Fetch(plain) = fetch(outcome) else {
                unreachable!()
            };
            cases.push(plain);
        }
        cases.push(Fetch {
            at_ms: -1,
            ..cases[1].clone()
        });
        for case in cases {
            let mut ours = Vec::new();
            case.append_json_event(&mut ours);
            let serde = serde_json::to_vec(&Event::Fetch(case.clone())).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&serde),
                "{case:?}"
            );
        }
    }

    #[test]
    fn serializes_with_a_stable_tag() {
        let json = serde_json::to_value(fetch(Outcome::NotFound {
            reason: "unknown device".into(),
        }))
        .unwrap();
        assert_eq!(json["event"], "fetch");
        assert_eq!(json["outcome"]["kind"], "not-found");
        assert_eq!(json["protocol"], "http");
    }
}
