//! The desk's LAN helpers, for the Live screen's DHCP and plug-and-play switches and for the
//! CLI alike: the interfaces they can be bound to, the DHCP pre-flight as a typed answer, the
//! serve options with either switched on or off, the rows their events add to the Live log,
//! and what the responders know of each device before its first fetch.
//!
//! Invariants: nothing here answers DHCP or joins a multicast group; the pre-flight only
//! sends one DISCOVER from a random locally administered MAC and listens. Switching on never
//! starts anything by itself: it checks the interface and returns the options the servers are
//! restarted with, so a bad interface is refused before the running servers stop. The servers
//! run their own pre-flight again when they start (another server may have appeared since):
//! its refusal is a warning on their event stream, recognised by [`is_lan_warning`].

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use provdesk_core::Mac;
use provdesk_core::desk::DeskSettings;
use provdesk_core::inventory::{DeviceEventQuery, EventSource, Inventory};
use provdesk_core::status::LanEvidence;
use provdesk_serve::dhcp::{PREFLIGHT_WAIT, describe_rival, interface_address, preflight};
use provdesk_serve::events::Event;
use provdesk_serve::pnp::{PnpInterface, PnpOutcome};
use provdesk_serve::service::ServeOptions;
use serde::Serialize;
use ts_rs::TS;

use crate::error::{DeskError, DeskResult, ErrorKind};

/// The value of `ServeOptions::dhcp` that turns the responder off whatever the settings say.
const OFF: &str = "off";

/// How many plug-and-play requests are read to tell which devices asked: far more than a
/// bench of phones, few enough to read on every board.
const PNP_EVIDENCE_DEPTH: usize = 20_000;

/// A network interface DHCP and plug-and-play can be bound to: one with an IPv4 address,
/// loopback excluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct LanInterface {
    pub name: String,
    /// Its IPv4 address, `192.0.2.2`.
    pub address: String,
    /// The prefix length of its subnet, `24`.
    pub prefix: u8,
    /// Whether the interface is operationally up (a cable in, a link).
    pub up: bool,
}

/// Every interface with an IPv4 address except loopback, by name (an interface with several
/// addresses is listed once per address).
pub fn lan_interfaces() -> DeskResult<Vec<LanInterface>> {
    let interfaces = if_addrs::get_if_addrs().map_err(|e| {
        DeskError::new(
            ErrorKind::Io,
            format!("cannot list the network interfaces: {e}"),
        )
    })?;
    let mut list: Vec<LanInterface> = interfaces
        .iter()
        .filter(|i| !i.is_loopback())
        .filter_map(|i| match &i.addr {
            if_addrs::IfAddr::V4(v4) => Some(LanInterface {
                name: i.name.clone(),
                address: v4.ip.to_string(),
                prefix: u32::from(v4.netmask).leading_ones() as u8,
                up: i.is_oper_up(),
            }),
            if_addrs::IfAddr::V6(_) => None,
        })
        .collect();
    list.sort_by(|a, b| (&a.name, &a.address).cmp(&(&b.name, &b.address)));
    list.dedup();
    Ok(list)
}

/// Another DHCP server that answered the pre-flight, and what it offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct RivalServer {
    /// Its address (option 54, else `siaddr`).
    pub server: String,
    /// The address it offered the probe.
    pub offered: String,
    pub router: Option<String>,
    /// Its option 66 (TFTP server name), if it sends one.
    pub option66: Option<String>,
    /// The serve crate's words for it, the same line `provdesk serve` prints.
    pub message: String,
}

/// The pre-flight's answer on one interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct DhcpPreflight {
    pub interface: String,
    /// The desk's own address there, which phones are told to fetch from.
    pub address: String,
    /// Every other server that answered; empty when none did.
    pub rivals: Vec<RivalServer>,
    /// `no other DHCP server answered on eth0` or why the responder will not start.
    pub message: String,
}

impl DhcpPreflight {
    /// Nobody else answered: the desk's responder may start.
    pub fn clear(&self) -> bool {
        self.rivals.is_empty()
    }
}

/// Looks for another DHCP server on `interface` the way the responder does before it
/// starts: one DISCOVER, [`PREFLIGHT_WAIT`] of listening. Blocks for that long; call it on a
/// blocking thread. An interface without an IPv4 address is an error naming the ones there are.
pub fn dhcp_preflight(interface: &str) -> DeskResult<DhcpPreflight> {
    let interface = checked_interface(interface, "DHCP")?;
    let (address, _) = interface_address(&interface).map_err(DeskError::invalid)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DeskError::internal(format!("the pre-flight cannot run: {e}")))?;
    let rivals = runtime
        .block_on(preflight(&interface, PREFLIGHT_WAIT))
        .map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    " (DHCP needs ports 67 and 68: run ProvDesk as root or give it CAP_NET_BIND_SERVICE and CAP_NET_RAW)"
                }
                std::io::ErrorKind::AddrInUse => {
                    " (another DHCP client or server holds port 68 there)"
                }
                _ => "",
            };
            DeskError::new(
                ErrorKind::Serve,
                format!("the DHCP pre-flight on {interface} could not run: {e}{hint}"),
            )
        })?;
    let rivals: Vec<RivalServer> = rivals
        .iter()
        .map(|rival| RivalServer {
            server: rival.server.to_string(),
            offered: rival.address.to_string(),
            router: rival.router.map(|r| r.to_string()),
            option66: rival.option66.clone(),
            message: describe_rival(&interface, rival),
        })
        .collect();
    let message = match rivals.len() {
        0 => format!("no other DHCP server answered on {interface}"),
        1 => rivals[0].message.clone(),
        n => format!(
            "{n} other DHCP servers answer on {interface} ({}); ProvDesk's DHCP responder is not started there",
            rivals
                .iter()
                .map(|r| r.server.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Ok(DhcpPreflight {
        interface,
        address: address.to_string(),
        rivals,
        message,
    })
}

fn checked_interface(interface: &str, what: &str) -> DeskResult<String> {
    let interface = interface.trim();
    if interface.is_empty() {
        return Err(DeskError::invalid(format!(
            "pick the network interface {what} should answer on"
        )));
    }
    if interface.eq_ignore_ascii_case(OFF) {
        return Err(DeskError::invalid(format!(
            "{interface:?} is not an interface name"
        )));
    }
    Ok(interface.to_string())
}

/// Which of the LAN responders the servers run with, and where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct LanStatus {
    /// The interface DHCP answers on (after its pre-flight), or `None`.
    pub dhcp: Option<String>,
    /// The interface plug-and-play listens on, or `None`.
    pub pnp: Option<String>,
}

impl LanStatus {
    /// What servers started with `options` run, by the settings' own rules
    /// (`DeskSettings::dhcp_interface`, `pnp_interface`), which the servers use too.
    pub fn of(options: &ServeOptions, settings: &DeskSettings) -> LanStatus {
        let dhcp = settings.dhcp_interface(options.dhcp.as_deref());
        LanStatus {
            dhcp,
            pnp: settings.pnp_interface(options.pnp.as_deref()),
        }
    }
}

/// `options` with DHCP answering on `interface` (`None`: off). The interface must have an
/// IPv4 address; the pre-flight is the caller's to show first ([`dhcp_preflight`]), and the
/// servers run it again when they start.
pub fn with_dhcp(options: &ServeOptions, interface: Option<&str>) -> DeskResult<ServeOptions> {
    let dhcp = match interface {
        None => OFF.to_string(),
        Some(interface) => {
            let interface = checked_interface(interface, "DHCP")?;
            interface_address(&interface).map_err(DeskError::invalid)?;
            interface
        }
    };
    Ok(ServeOptions {
        dhcp: Some(dhcp),
        ..options.clone()
    })
}

/// `options` with plug-and-play listening on `interface` (`None`: off); an interface without
/// an IPv4 address is refused here, before the servers restart.
pub fn with_pnp(options: &ServeOptions, interface: Option<&str>) -> DeskResult<ServeOptions> {
    let pnp = match interface {
        // `off`, not absent: absent would fall back to `[pnp] interface`.
        None => Some(OFF.to_string()),
        Some(interface) => {
            let interface = checked_interface(interface, "plug-and-play")?;
            PnpInterface::find(&interface)
                .map_err(|e| DeskError::invalid(format!("plug-and-play: {e}")))?;
            Some(interface)
        }
    };
    Ok(ServeOptions {
        pnp,
        ..options.clone()
    })
}

/// Which responder a Live log row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(export)]
pub enum LanSource {
    Dhcp,
    Pnp,
}

/// A DHCP message or a plug-and-play request, as a row of the Live log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct LanLogRow {
    #[ts(type = "number")]
    pub at_ms: i64,
    pub source: LanSource,
    /// `discover`, `offer`, `request`, `ack`, `nak`, `decline`, `release`, `inform`,
    /// `pool-exhausted`, `ignored`, `listening`; `subscribe` or `subscribe-failed`.
    pub kind: String,
    #[ts(as = "Option<String>")]
    pub mac: Option<Mac>,
    /// The address leased or offered (DHCP), the phone's address (plug-and-play).
    pub address: Option<String>,
    pub vendor_class: Option<String>,
    /// One line: the pool and URL, a reason, the URL the phone was told.
    pub detail: Option<String>,
    /// Something the technician should look at (a NAK, a decline, an exhausted pool, an
    /// unanswered request).
    pub problem: bool,
}

impl LanLogRow {
    /// The row for a DHCP or plug-and-play event; `None` for any other event.
    pub fn from_event(event: &Event, now_ms: i64) -> Option<LanLogRow> {
        match event {
            Event::Dhcp(dhcp) => Some(LanLogRow {
                at_ms: dhcp.at_ms,
                source: LanSource::Dhcp,
                kind: dhcp.kind.to_string(),
                mac: dhcp.mac,
                address: dhcp.address.map(|a| a.to_string()),
                vendor_class: dhcp.vendor_class.clone(),
                detail: dhcp.detail.clone(),
                problem: matches!(dhcp.kind, "nak" | "decline" | "pool-exhausted"),
            }),
            Event::PlugAndPlay {
                mac,
                model,
                firmware,
                ip,
                outcome,
            } => {
                let phone = [model.as_deref(), firmware.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                let (kind, told, problem) = match outcome {
                    PnpOutcome::Notified { url } => ("subscribe", format!("told {url}"), false),
                    PnpOutcome::Failed { reason } => (
                        "subscribe-failed",
                        format!("no answer sent: {reason}"),
                        true,
                    ),
                };
                Some(LanLogRow {
                    at_ms: now_ms,
                    source: LanSource::Pnp,
                    kind: kind.into(),
                    mac: *mac,
                    address: Some(ip.clone()),
                    vendor_class: None,
                    detail: Some(if phone.is_empty() {
                        told
                    } else {
                        format!("{phone}: {told}")
                    }),
                    problem,
                })
            }
            _ => None,
        }
    }

    /// Whether the row changes the lease table.
    pub fn changes_leases(&self) -> bool {
        self.source == LanSource::Dhcp
            && matches!(self.kind.as_str(), "ack" | "release" | "decline")
    }
}

/// Whether a servers' warning is about DHCP: the responder's own problems (`DHCP on eth0:
/// …`) and its pre-flight's refusal (another server answers), which the DHCP switch shows.
pub fn is_lan_warning(message: &str) -> bool {
    message.starts_with("DHCP on ") || message.starts_with("another DHCP server answers on ")
}

/// What the responders know of each device (see [`LanEvidence`]): current leases from the
/// inventory's lease table, plug-and-play requests from its device events.
pub fn lan_evidence(inventory: &Inventory) -> DeskResult<HashMap<Mac, LanEvidence>> {
    let now = now_secs();
    let mut evidence: HashMap<Mac, LanEvidence> = HashMap::new();
    for lease in inventory.dhcp_leases()? {
        if lease.expires_at > now {
            evidence.entry(lease.mac).or_default().leased = Some(lease.address.to_string());
        }
    }
    let asked = inventory.device_events(&DeviceEventQuery {
        source: Some(EventSource::Pnp),
        limit: Some(PNP_EVIDENCE_DEPTH),
        ..DeviceEventQuery::default()
    })?;
    for event in asked {
        if let Some(mac) = event.mac
            && event.kind == "subscribe"
        {
            evidence.entry(mac).or_default().asked_for_server = true;
        }
    }
    Ok(evidence)
}

/// [`lan_evidence`] of one device.
pub fn lan_evidence_of(inventory: &Inventory, mac: Mac) -> DeskResult<LanEvidence> {
    let now = now_secs();
    let leased = inventory
        .dhcp_leases()?
        .into_iter()
        .find(|lease| lease.mac == mac && lease.expires_at > now)
        .map(|lease| lease.address.to_string());
    let asked_for_server = inventory
        .device_events(&DeviceEventQuery {
            mac: Some(mac),
            source: Some(EventSource::Pnp),
            ..DeviceEventQuery::default()
        })?
        .iter()
        .any(|event| event.kind == "subscribe");
    Ok(LanEvidence {
        leased,
        asked_for_server,
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use provdesk_core::inventory::{DhcpLease, NewDeviceEvent};
    use provdesk_serve::events::DhcpEvent;

    use super::*;
    use crate::DeskService;

    fn desk() -> (tempfile::TempDir, DeskService) {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        (dir, desk)
    }

    #[test]
    fn interfaces_have_an_ipv4_address_and_no_loopback() {
        let listed = lan_interfaces().unwrap();
        assert!(listed.iter().all(|i| i.name != "lo"), "{listed:?}");
        // Compared with what the kernel says through `ip`, a real peer.
        let output = std::process::Command::new("ip")
            .args(["-4", "-o", "addr", "show"])
            .output()
            .expect("ip from iproute2");
        let text = String::from_utf8(output.stdout).unwrap();
        let mut expected: Vec<(String, String)> = text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let name = fields.get(1)?.to_string();
                let cidr = fields.get(3)?;
                (name != "lo").then(|| (name, cidr.to_string()))
            })
            .collect();
        expected.sort();
        let mut got: Vec<(String, String)> = listed
            .iter()
            .map(|i| (i.name.clone(), format!("{}/{}", i.address, i.prefix)))
            .collect();
        got.sort();
        assert_eq!(got, expected);
    }

    #[test]
    fn an_interface_that_does_not_exist_is_refused_with_the_ones_there_are() {
        let err = dhcp_preflight("provdesk-nosuch0").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(
            err.message.contains("\"provdesk-nosuch0\""),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("lo"),
            "names the interfaces: {}",
            err.message
        );
        let err = dhcp_preflight("  ").unwrap_err();
        assert!(
            err.message.contains("pick the network interface"),
            "{}",
            err.message
        );

        let running = ServeOptions::default();
        let err = with_dhcp(&running, Some("provdesk-nosuch0")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        let err = with_pnp(&running, Some("provdesk-nosuch0")).unwrap_err();
        assert!(
            err.message.starts_with("plug-and-play: "),
            "{}",
            err.message
        );
        assert!(
            with_dhcp(&running, Some("off")).is_err(),
            "off is no interface"
        );
    }

    #[test]
    fn switching_keeps_the_other_options_and_off_beats_the_settings() {
        let (_dir, desk) = desk();
        let mut settings = desk.desk().settings().clone();
        let running = ServeOptions {
            http: Some("127.0.0.1:0".into()),
            tftp: Some("off".into()),
            ..ServeOptions::default()
        };
        assert_eq!(LanStatus::of(&running, &settings), LanStatus::default());

        // Loopback has an address, so the check passes; nothing is started here.
        let on = with_dhcp(&running, Some(" lo ")).unwrap();
        assert_eq!(on.dhcp.as_deref(), Some("lo"));
        assert_eq!(
            (on.http.as_deref(), on.tftp.as_deref()),
            (Some("127.0.0.1:0"), Some("off"))
        );
        assert_eq!(LanStatus::of(&on, &settings).dhcp.as_deref(), Some("lo"));
        let pnp = with_pnp(&on, Some("lo")).unwrap();
        assert_eq!(
            LanStatus::of(&pnp, &settings),
            LanStatus {
                dhcp: Some("lo".into()),
                pnp: Some("lo".into())
            }
        );
        let pnp_off = with_pnp(&pnp, None).unwrap();
        assert_eq!(pnp_off.pnp.as_deref(), Some("off"));
        assert_eq!(LanStatus::of(&pnp_off, &settings).pnp, None);
        // `[pnp] interface` turns it on until the switch turns it off.
        settings.pnp = Some(provdesk_core::desk::PnpSettings {
            interface: Some("eth9".into()),
        });
        assert_eq!(
            LanStatus::of(&running, &settings).pnp.as_deref(),
            Some("eth9")
        );
        assert_eq!(LanStatus::of(&pnp_off, &settings).pnp, None);
        settings.pnp = None;

        // `[dhcp] interface` in the settings turns it on until the switch turns it off.
        settings.dhcp = Some(provdesk_core::desk::DhcpSettings {
            interface: Some("eth9".into()),
            ..settings.dhcp()
        });
        assert_eq!(
            LanStatus::of(&running, &settings).dhcp.as_deref(),
            Some("eth9")
        );
        let off = with_dhcp(&running, None).unwrap();
        assert_eq!(LanStatus::of(&off, &settings).dhcp, None);
    }

    #[test]
    fn dhcp_and_plug_and_play_events_become_log_rows() {
        let ack = Event::Dhcp(DhcpEvent {
            at_ms: 7,
            interface: "eth0".into(),
            kind: "ack",
            mac: "000b82123456".parse().ok(),
            address: Some(Ipv4Addr::new(192, 0, 2, 50)),
            vendor_class: Some("Grandstream GXP2170".into()),
            detail: None,
        });
        let row = LanLogRow::from_event(&ack, 99).unwrap();
        assert_eq!(
            (row.at_ms, row.source, row.kind.as_str()),
            (7, LanSource::Dhcp, "ack")
        );
        assert_eq!(row.address.as_deref(), Some("192.0.2.50"));
        assert!(row.changes_leases() && !row.problem);

        let exhausted = Event::Dhcp(DhcpEvent {
            kind: "pool-exhausted",
            mac: None,
            address: None,
            ..match ack {
                Event::Dhcp(d) => d,
                _ => unreachable!(),
            }
        });
        let row = LanLogRow::from_event(&exhausted, 99).unwrap();
        assert!(row.problem && !row.changes_leases());

        let asked = Event::PlugAndPlay {
            mac: "000b82123456".parse().ok(),
            model: Some("GXP2170".into()),
            firmware: Some("1.0.11.23".into()),
            ip: "192.0.2.50".into(),
            outcome: PnpOutcome::Notified {
                url: "http://192.0.2.2:8080/".into(),
            },
        };
        let row = LanLogRow::from_event(&asked, 99).unwrap();
        assert_eq!(
            (row.at_ms, row.source, row.kind.as_str()),
            (99, LanSource::Pnp, "subscribe")
        );
        assert_eq!(
            row.detail.as_deref(),
            Some("GXP2170 1.0.11.23: told http://192.0.2.2:8080/")
        );
        assert!(
            LanLogRow::from_event(
                &Event::Warning {
                    message: "x".into()
                },
                1
            )
            .is_none()
        );
    }

    #[test]
    fn the_responders_warnings_are_recognised() {
        let rival = provdesk_dhcp_rival();
        assert!(is_lan_warning(&describe_rival("eth0", &rival)));
        assert!(is_lan_warning(
            "DHCP on eth0: cannot listen on port 67: permission denied"
        ));
        assert!(!is_lan_warning("the fetch log cannot be written"));
    }

    /// A rival as the pre-flight reports it, through its public fields.
    fn provdesk_dhcp_rival() -> provdesk_dhcp::RivalOffer {
        provdesk_dhcp::RivalOffer {
            server: Ipv4Addr::new(192, 0, 2, 1),
            address: Ipv4Addr::new(192, 0, 2, 100),
            router: Some(Ipv4Addr::new(192, 0, 2, 1)),
            option66: Some("tftp.example".into()),
        }
    }

    #[test]
    fn evidence_comes_from_current_leases_and_plug_and_play_requests() {
        let (_dir, desk) = desk();
        let leased: Mac = "000b82000001".parse().unwrap();
        let expired: Mac = "000b82000002".parse().unwrap();
        let asked: Mac = "000b82000003".parse().unwrap();
        let inventory = desk.inventory();
        let lease = |mac, last, expires_at| DhcpLease {
            mac,
            address: Ipv4Addr::new(192, 0, 2, last),
            expires_at,
            hostname: None,
            vendor_class: Some("Grandstream GXP2170".into()),
        };
        inventory
            .save_dhcp_lease(&lease(leased, 50, now_secs() + 3600))
            .unwrap();
        inventory.save_dhcp_lease(&lease(expired, 51, 1)).unwrap();
        inventory
            .append_device_events(&[NewDeviceEvent {
                at_ms: 1,
                mac: Some(asked),
                peer: Some("192.0.2.52".into()),
                source: EventSource::Pnp,
                kind: "subscribe".into(),
                summary: "asked for its provisioning server by plug-and-play".into(),
                detail: None,
            }])
            .unwrap();

        let all = lan_evidence(inventory).unwrap();
        assert_eq!(all[&leased].leased.as_deref(), Some("192.0.2.50"));
        assert!(
            !all.contains_key(&expired),
            "an expired lease is no evidence"
        );
        assert!(all[&asked].asked_for_server);
        assert_eq!(lan_evidence_of(inventory, leased).unwrap(), all[&leased]);
        assert_eq!(lan_evidence_of(inventory, asked).unwrap(), all[&asked]);
        assert_eq!(
            lan_evidence_of(inventory, expired).unwrap(),
            LanEvidence::default()
        );
    }

    #[test]
    fn the_device_list_and_page_show_how_far_a_phone_got_before_its_first_fetch() {
        use crate::devices::Reveal;
        use provdesk_core::inventory::Device;
        use provdesk_core::status::ProvisioningStatus;
        let (_dir, desk) = desk();
        let mac: Mac = "000b82000001".parse().unwrap();
        desk.inventory()
            .import_devices(&[Device::new(mac, "gxp2170")])
            .unwrap();
        let status = |desk: &DeskService| {
            let listed = desk.list_devices(Reveal::Masked).unwrap();
            let row = listed.iter().find(|d| d.mac == mac).unwrap().status.clone();
            let page = desk
                .device_detail(mac, Reveal::Masked)
                .unwrap()
                .device
                .status;
            assert_eq!(row, page, "the list and the page agree");
            row
        };
        assert_eq!(status(&desk), Some(ProvisioningStatus::NeverSeen));
        desk.inventory()
            .save_dhcp_lease(&DhcpLease {
                mac,
                address: Ipv4Addr::new(192, 0, 2, 50),
                expires_at: now_secs() + 600,
                hostname: None,
                vendor_class: None,
            })
            .unwrap();
        assert_eq!(
            status(&desk),
            Some(ProvisioningStatus::GotAddress {
                address: "192.0.2.50".into()
            })
        );
    }
}
