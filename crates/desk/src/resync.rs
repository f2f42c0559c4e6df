//! Push re-provisioning, written once for `provdesk device resync` and the app's
//! "Re-provision" and "Reboot" (device page, board tiles, bulk action): which devices, where
//! each one is (its newest DHCP lease, plug-and-play request or fetch, or the address the
//! technician gives), on which port (account 1's local SIP port, P40, else 5060), with which
//! credentials (its own SIP account: P36 or P35 as the user, P34), and what came of it.
//!
//! Invariants: every selected device gets exactly one outcome, also one that could not be
//! sent (no known address is an outcome, not an error); each outcome is a `device_events` row
//! (source `notify`) and then a [`DeskEvent::Resynced`], in that order, as the device's
//! exchange ends; no outcome, row, event or log line holds a password (credentials go only
//! into the Digest hash); bad input (an unknown MAC or profile, an address that does not
//! parse) is refused before anything is sent.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use provdesk_core::Mac;
use provdesk_core::build::{device_config, pvalues};
use provdesk_core::inventory::{
    Device, DeviceEventQuery, DeviceState, EventSource, FetchLogQuery, NewDeviceEvent,
};
use provdesk_core::profile::ProfileSet;
use provdesk_core::status::ProvisioningStatus;
use provdesk_serve::resync::{NotifyJob, PARALLEL, notify_all};
use provdesk_sip::digest::Credentials;
use provdesk_sip::transaction::{Finished, Outcome, Retransmit};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::devices::{Reveal, parse_macs};
use crate::error::{DeskError, DeskResult};
use crate::events::DeskEvent;
use crate::service::DeskService;

/// The port a phone listens on for SIP when its profile does not say (P40's default).
pub const DEFAULT_SIP_PORT: u16 = 5060;

/// Which devices to notify.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[ts(export)]
pub enum ResyncSelection {
    /// These devices (inventory or discovered), in this order.
    Devices { macs: Vec<String> },
    /// Every inventory device.
    All,
    /// The inventory devices assigned this profile.
    Profile { name: String },
    /// The inventory devices whose status is stale (their files changed since they fetched).
    Stale,
}

/// A re-provision (or reboot) as a front end asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, TS)]
#[ts(export)]
pub struct ResyncRequest {
    pub selection: ResyncSelection,
    /// Restart the phones (`check-sync;reboot=true`) instead of only re-provisioning.
    #[serde(default)]
    pub reboot: bool,
    /// `HOST:PORT` (or `HOST`, the port then the device's) to send to instead of each
    /// device's last known address.
    #[serde(default)]
    pub to: Option<String>,
}

/// Where a device's address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(export)]
pub enum AddressOrigin {
    /// The desk's DHCP responder leased it.
    DhcpLease,
    /// Its plug-and-play SUBSCRIBE came from there.
    PlugAndPlay,
    /// Its newest request to the servers came from there.
    LastFetch,
    /// The inventory's last address for it (its newest request or plug-and-play).
    LastContact,
    /// The technician gave it.
    Given,
}

impl AddressOrigin {
    pub fn label(self) -> &'static str {
        match self {
            AddressOrigin::DhcpLease => "DHCP lease",
            AddressOrigin::PlugAndPlay => "plug-and-play request",
            AddressOrigin::LastFetch => "last fetch",
            AddressOrigin::LastContact => "last contact",
            AddressOrigin::Given => "given",
        }
    }
}

/// What came of one device's NOTIFY.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[ts(export)]
pub enum ResyncOutcome {
    /// The phone answered with a final response (`authenticated`: after our Digest answer).
    /// A 2xx means it took the request.
    Answered {
        code: u16,
        reason: String,
        authenticated: bool,
    },
    /// The phone challenged and the challenge could not be met (no credentials, a wrong
    /// password, a challenge we cannot answer): `reason` says which.
    ChallengeFailed { code: u16, reason: String },
    /// No final answer within the bound, after `sends` datagrams.
    NoAnswer {
        sends: u32,
        #[ts(type = "number")]
        waited_ms: u64,
        /// A provisional (1xx) answer that came, if any.
        provisional: Option<u16>,
    },
    /// Nothing was sent: no known address, a local SIP port that is not one, a socket
    /// that failed.
    NotSent { reason: String },
}

impl ResyncOutcome {
    /// The phone took it (a 2xx).
    pub fn accepted(&self) -> bool {
        matches!(self, ResyncOutcome::Answered { code, .. } if (200..300).contains(code))
    }

    /// The `device_events` kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ResyncOutcome::Answered { .. } => "answered",
            ResyncOutcome::ChallengeFailed { .. } => "challenge-failed",
            ResyncOutcome::NoAnswer { .. } => "no-answer",
            ResyncOutcome::NotSent { .. } => "not-sent",
        }
    }
}

/// One device's re-provision, as the CLI prints it, the app shows it and its history keeps
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ResyncResult {
    #[ts(as = "String")]
    pub mac: Mac,
    pub name: Option<String>,
    pub reboot: bool,
    /// Where the NOTIFY went (`198.51.100.7:5060`), if anywhere.
    pub target: Option<String>,
    pub origin: Option<AddressOrigin>,
    pub outcome: ResyncOutcome,
    #[ts(type = "number")]
    pub elapsed_ms: u64,
    /// When it ended, Unix milliseconds.
    #[ts(type = "number")]
    pub at_ms: i64,
    /// One line for people: what was sent where, and what came of it.
    pub summary: String,
}

/// A device ready to be notified, or the reason it cannot be.
struct Planned {
    device: Device,
    target: Result<(SocketAddr, AddressOrigin), String>,
    user: Option<String>,
    credentials: Option<Credentials>,
}

/// `--to` as given: an address, with or without a port.
struct Given {
    ip: IpAddr,
    port: Option<u16>,
}

impl DeskService {
    /// Sends each selected device a re-provision NOTIFY (a reboot with `request.reboot`)
    /// and returns every outcome, in the order of the selection; several devices are
    /// notified at once. Each outcome is recorded in the device's history and announced as
    /// [`DeskEvent::Resynced`] as it comes. Blocks for up to a few seconds per device
    /// (call it on a blocking thread).
    pub fn resync(&self, request: &ResyncRequest) -> DeskResult<Vec<ResyncResult>> {
        self.resync_with(request, Retransmit::RESYNC)
    }

    pub(crate) fn resync_with(
        &self,
        request: &ResyncRequest,
        timers: Retransmit,
    ) -> DeskResult<Vec<ResyncResult>> {
        let given = request.to.as_deref().map(parse_given).transpose()?;
        let devices = self.resync_selection(&request.selection)?;
        let profiles = ProfileSet::load(self.root());
        let options = self.served_options();
        let leases: BTreeMap<Mac, IpAddr> = self
            .inventory()
            .dhcp_leases()?
            .into_iter()
            .map(|lease| (lease.mac, IpAddr::V4(lease.address)))
            .collect();
        let mut planned = Vec::with_capacity(devices.len());
        for device in devices {
            let (config, _) = device_config(&profiles, &device, &options);
            let value = |p| {
                config
                    .non_empty(p)
                    .filter(|v| !v.contains("{{"))
                    .map(|v| v.trim().to_string())
            };
            let user = value(pvalues::SIP_USER_ID);
            let auth_user = value(pvalues::SIP_AUTH_ID).or_else(|| user.clone());
            let credentials = match (auth_user, value(pvalues::SIP_AUTH_PASSWORD)) {
                (Some(user), Some(password)) => Some(Credentials { user, password }),
                _ => None,
            };
            let port = match value(pvalues::LOCAL_SIP_PORT) {
                None => Ok(DEFAULT_SIP_PORT),
                Some(text) => text.parse::<u16>().ok().filter(|p| *p != 0).ok_or(format!(
                    "its local SIP port (P40) is {text:?}, not a port number; fix the profile"
                )),
            };
            let target = match (&given, port) {
                (Some(given), port) => match given.port.map_or(port, Ok) {
                    Ok(port) => Ok((SocketAddr::new(given.ip, port), AddressOrigin::Given)),
                    Err(reason) => Err(reason),
                },
                (None, Err(reason)) => Err(reason),
                (None, Ok(port)) => match self.last_known_address(&device, &leases)? {
                    Some((ip, origin)) => Ok((SocketAddr::new(ip, port), origin)),
                    None => Err(NO_ADDRESS.to_string()),
                },
            };
            planned.push(Planned {
                device,
                target,
                user,
                credentials,
            });
        }

        let failure = Mutex::new(None);
        let mut results: Vec<Option<ResyncResult>> = vec![None; planned.len()];
        // What cannot be sent is an outcome at once.
        for (index, plan) in planned.iter().enumerate() {
            if let Err(reason) = &plan.target {
                let result = finish(
                    plan,
                    request.reboot,
                    None,
                    ResyncOutcome::NotSent {
                        reason: reason.clone(),
                    },
                    0,
                );
                self.record(&result, &failure);
                results[index] = Some(result);
            }
        }
        let sendable: Vec<(usize, &Planned, SocketAddr, AddressOrigin)> = planned
            .iter()
            .enumerate()
            .filter_map(|(index, plan)| {
                let (target, origin) = *plan.target.as_ref().ok()?;
                Some((index, plan, target, origin))
            })
            .collect();
        let jobs: Vec<NotifyJob> = sendable
            .iter()
            .map(|(_, plan, target, _)| NotifyJob {
                target: *target,
                user: plan.user.clone(),
                credentials: plan.credentials.clone(),
                reboot: request.reboot,
            })
            .collect();
        let sent = Mutex::new(Vec::with_capacity(jobs.len()));
        notify_all(&jobs, timers, PARALLEL, |job, outcome| {
            let (index, plan, target, origin) = sendable[job];
            let (outcome, elapsed_ms) = match outcome {
                Ok(finished) => outcome_of(finished),
                Err(e) => (
                    ResyncOutcome::NotSent {
                        reason: e.to_string(),
                    },
                    0,
                ),
            };
            let result = finish(
                plan,
                request.reboot,
                Some((target, origin)),
                outcome,
                elapsed_ms,
            );
            self.record(&result, &failure);
            sent.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((index, result));
        });
        for (index, result) in sent
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            results[index] = Some(result);
        }
        if let Some(error) = failure
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            return Err(error);
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// The devices a selection names; unknown MACs and profiles are refused, all at once.
    fn resync_selection(&self, selection: &ResyncSelection) -> DeskResult<Vec<Device>> {
        let inventory_devices = || -> DeskResult<Vec<Device>> {
            Ok(self
                .inventory()
                .list_devices()?
                .into_iter()
                .filter(|d| d.state == DeviceState::Inventory)
                .collect())
        };
        match selection {
            ResyncSelection::Devices { macs } => {
                if macs.is_empty() {
                    return Err(DeskError::invalid(
                        "no device named: give MACs, or choose all, a profile or the stale devices",
                    ));
                }
                let mut devices = Vec::new();
                let mut unknown = Vec::new();
                for mac in parse_macs(macs)? {
                    if devices.iter().any(|d: &Device| d.mac == mac) {
                        continue;
                    }
                    match self.inventory().get_device(mac)? {
                        Some(device) => devices.push(device),
                        None => unknown.push(mac.to_string()),
                    }
                }
                if !unknown.is_empty() {
                    return Err(DeskError::not_found(format!(
                        "{} {} not in the inventory; nothing sent",
                        unknown.join(", "),
                        if unknown.len() == 1 { "is" } else { "are" }
                    )));
                }
                Ok(devices)
            }
            ResyncSelection::All => inventory_devices(),
            ResyncSelection::Profile { name } => {
                let profiles = ProfileSet::load(self.root());
                let name = name.trim();
                if !profiles.profile_exists(name) {
                    let known: Vec<&str> = profiles.profile_names().collect();
                    return Err(DeskError::invalid(format!(
                        "profile {name:?} does not exist (known: {}); nothing sent",
                        known.join(", ")
                    )));
                }
                Ok(inventory_devices()?
                    .into_iter()
                    .filter(|d| d.profile.as_deref() == Some(name))
                    .collect())
            }
            ResyncSelection::Stale => {
                let stale: Vec<Mac> = self
                    .list_devices(Reveal::Masked)?
                    .into_iter()
                    .filter(|d| {
                        d.state == DeviceState::Inventory
                            && d.status == Some(ProvisioningStatus::Stale)
                    })
                    .map(|d| d.mac)
                    .collect();
                Ok(inventory_devices()?
                    .into_iter()
                    .filter(|d| stale.contains(&d.mac))
                    .collect())
            }
        }
    }

    /// The newest address the desk saw the device at: its DHCP lease (dated by its newest
    /// DHCP message), its newest plug-and-play request, its newest fetch, else the
    /// inventory's last address. `None` when the desk never saw it.
    pub fn last_known_address(
        &self,
        device: &Device,
        leases: &BTreeMap<Mac, IpAddr>,
    ) -> DeskResult<Option<(IpAddr, AddressOrigin)>> {
        let newest_event = |source| -> DeskResult<Option<(i64, Option<String>)>> {
            Ok(self
                .inventory()
                .device_events(&DeviceEventQuery {
                    mac: Some(device.mac),
                    source: Some(source),
                    limit: Some(1),
                    ..DeviceEventQuery::default()
                })?
                .pop()
                .map(|e| (e.at_ms, e.peer)))
        };
        // (when, address, origin); the first of equals wins, so the order is a preference.
        let mut candidates: Vec<(Option<i64>, IpAddr, AddressOrigin)> = Vec::new();
        if let Some(ip) = leases.get(&device.mac) {
            let when = newest_event(EventSource::Dhcp)?.map(|(at, _)| at);
            candidates.push((when, *ip, AddressOrigin::DhcpLease));
        }
        if let Some((at, Some(peer))) = newest_event(EventSource::Pnp)?
            && let Some(ip) = ip_of(&peer)
        {
            candidates.push((Some(at), ip, AddressOrigin::PlugAndPlay));
        }
        let newest_fetch = self.inventory().fetch_log(&FetchLogQuery {
            mac: Some(device.mac),
            since: None,
            limit: Some(1),
        })?;
        if let Some(fetch) = newest_fetch.first()
            && let Some(ip) = ip_of(&fetch.peer)
        {
            candidates.push((Some(fetch.ts), ip, AddressOrigin::LastFetch));
        }
        if let Some(ip) = device.last_ip.as_deref().and_then(ip_of) {
            candidates.push((device.last_seen, ip, AddressOrigin::LastContact));
        }
        let mut best: Option<(Option<i64>, IpAddr, AddressOrigin)> = None;
        for candidate in candidates {
            if best.as_ref().is_none_or(|b| candidate.0 > b.0) {
                best = Some(candidate);
            }
        }
        Ok(best.map(|(_, ip, origin)| (ip, origin)))
    }

    /// Writes the outcome into the device's history, then announces it; a failed write is
    /// kept for the caller (the others still go on).
    fn record(&self, result: &ResyncResult, failure: &Mutex<Option<DeskError>>) {
        let row = NewDeviceEvent {
            at_ms: result.at_ms,
            mac: Some(result.mac),
            peer: result.target.clone(),
            source: EventSource::Notify,
            kind: result.outcome.kind().to_string(),
            summary: result.summary.clone(),
            detail: serde_json::to_value(DetailRow {
                reboot: result.reboot,
                origin: result.origin,
                outcome: &result.outcome,
                elapsed_ms: result.elapsed_ms,
            })
            .ok(),
        };
        match self.inventory().append_device_events(&[row]) {
            Ok(_) => self.events().emit(DeskEvent::Resynced(result.clone())),
            Err(e) => {
                let mut failure = failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                failure.get_or_insert_with(|| {
                    let mut error = DeskError::from(e);
                    error.message = format!(
                        "the NOTIFYs were sent but their outcomes could not be recorded: {}",
                        error.message
                    );
                    error
                });
            }
        }
    }
}

/// A history row's `detail`.
#[derive(Serialize)]
struct DetailRow<'a> {
    reboot: bool,
    origin: Option<AddressOrigin>,
    outcome: &'a ResyncOutcome,
    elapsed_ms: u64,
}

/// What a device without any address gets.
pub const NO_ADDRESS: &str = "no known address (no DHCP lease, plug-and-play request or fetch seen); give the address to send to (--to HOST:PORT)";

/// The address of `ip:port`, `[v6]:port` or a bare IP.
fn ip_of(peer: &str) -> Option<IpAddr> {
    peer.parse::<SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| peer.parse::<IpAddr>())
        .ok()
}

/// Parses the address to send to: `IP:PORT`, `[v6]:PORT`, `IP`, `HOST:PORT` or `HOST`.
fn parse_given(text: &str) -> DeskResult<Given> {
    let text = text.trim();
    let bad = |why: &str| {
        DeskError::invalid(format!(
            "the address to send to, {text:?}, {why}: write it as HOST:PORT, e.g. 198.51.100.7:5060; nothing sent"
        ))
    };
    if let Ok(address) = text.parse::<SocketAddr>() {
        if address.port() == 0 {
            return Err(bad("has port 0"));
        }
        return Ok(Given {
            ip: address.ip(),
            port: Some(address.port()),
        });
    }
    if let Ok(ip) = text.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(Given { ip, port: None });
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("has no valid port"))?;
            (host, Some(port))
        }
        None => (text, None),
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(bad("is not an address"));
    }
    let ip = (host, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut found| found.next())
        .map(|a| a.ip())
        .ok_or_else(|| bad("does not resolve"))?;
    Ok(Given { ip, port })
}

fn outcome_of(finished: &Finished) -> (ResyncOutcome, u64) {
    let elapsed_ms = u64::try_from(finished.elapsed.as_millis()).unwrap_or(u64::MAX);
    let outcome = match &finished.outcome {
        Outcome::Answered {
            code,
            reason,
            authenticated,
        } => ResyncOutcome::Answered {
            code: *code,
            reason: reason.clone(),
            authenticated: *authenticated,
        },
        Outcome::ChallengeFailed { code, reason } => ResyncOutcome::ChallengeFailed {
            code: *code,
            reason: reason.clone(),
        },
        Outcome::NoAnswer { provisional } => ResyncOutcome::NoAnswer {
            sends: finished.sends,
            waited_ms: elapsed_ms,
            provisional: *provisional,
        },
    };
    (outcome, elapsed_ms)
}

fn finish(
    plan: &Planned,
    reboot: bool,
    target: Option<(SocketAddr, AddressOrigin)>,
    outcome: ResyncOutcome,
    elapsed_ms: u64,
) -> ResyncResult {
    let what = if reboot { "reboot" } else { "re-provision" };
    let summary = match (&outcome, target) {
        (ResyncOutcome::NotSent { reason }, _) => format!("{what} NOTIFY not sent: {reason}"),
        (outcome, Some((target, origin))) => {
            let said = match outcome {
                ResyncOutcome::Answered {
                    code,
                    reason,
                    authenticated,
                } => {
                    let after = if *authenticated {
                        " (after a Digest challenge)"
                    } else {
                        ""
                    };
                    format!("answered {code} {reason}{after}")
                }
                ResyncOutcome::ChallengeFailed { code, reason } => {
                    format!("challenge failed ({code}): {reason}")
                }
                ResyncOutcome::NoAnswer {
                    sends,
                    waited_ms,
                    provisional,
                } => {
                    let provisional = provisional
                        .map(|code| format!(", only a provisional {code}"))
                        .unwrap_or_default();
                    format!(
                        "no answer after {sends} send(s) in {:.1} s{provisional}",
                        *waited_ms as f64 / 1000.0
                    )
                }
                ResyncOutcome::NotSent { reason } => reason.clone(),
            };
            format!("{what} NOTIFY to {target} ({}): {said}", origin.label())
        }
        (_, None) => format!("{what} NOTIFY not sent"),
    };
    ResyncResult {
        mac: plan.device.mac,
        name: plan.device.name.clone(),
        reboot,
        target: target.map(|(t, _)| t.to_string()),
        origin: target.map(|(_, o)| o),
        outcome,
        elapsed_ms,
        at_ms: now_ms(),
        summary,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{DeviceInput, Rebuild};
    use provdesk_core::inventory::{DhcpLease, FetchLogEntry};
    use provdesk_sip::Message;
    use provdesk_sip::digest::{Algorithm, DigestInput, parse_params, response};
    use std::net::UdpSocket;

    const PHONE: &str = "000b82000001";
    const SECRET: &str = "sip-pw-1";

    fn desk_with_phone(overrides: &[(&str, &str)]) -> (tempfile::TempDir, DeskService) {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        let input = DeviceInput {
            mac: PHONE.into(),
            model: "GXP2170".into(),
            profile: Some("office".into()),
            name: Some("Reception".into()),
            vars: [("ext", "201"), ("sip_secret", SECRET)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            overrides: overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            incomplete: false,
        };
        desk.add_device(&input, false, Rebuild::Later).unwrap();
        (dir, desk)
    }

    fn devices(macs: &[&str]) -> ResyncSelection {
        ResyncSelection::Devices {
            macs: macs.iter().map(|m| m.to_string()).collect(),
        }
    }

    /// A phone on loopback that challenges every NOTIFY without credentials with 401 and
    /// answers 200 to a correct Digest answer for user 201 and `password`.
    fn challenging_phone(password: &'static str) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buffer = [0u8; 4096];
            while let Ok((len, peer)) = socket.recv_from(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
                let request = Message::parse(&buffer[..len]).unwrap();
                got.push(text);
                let answer = match request.header("Authorization") {
                    None => Message::response_to(&request, 401, "Unauthorized").with_header(
                        "WWW-Authenticate",
                        "Digest realm=\"gs\", nonce=\"abc\", qop=\"auth\"",
                    ),
                    Some(value) => {
                        let params: BTreeMap<String, String> =
                            parse_params(value.strip_prefix("Digest ").unwrap())
                                .unwrap()
                                .into_iter()
                                .collect();
                        let expected = response(
                            Algorithm::Md5,
                            &DigestInput {
                                user: "201",
                                realm: "gs",
                                password,
                                method: "NOTIFY",
                                uri: request.uri().unwrap(),
                                nonce: "abc",
                                nc: &params["nc"],
                                cnonce: &params["cnonce"],
                                qop: Some("auth"),
                            },
                        );
                        if params["response"] == expected {
                            Message::response_to(&request, 200, "Done")
                        } else {
                            // As phones do: challenged again.
                            Message::response_to(&request, 401, "Unauthorized").with_header(
                                "WWW-Authenticate",
                                "Digest realm=\"gs\", nonce=\"def\", qop=\"auth\"",
                            )
                        }
                    }
                };
                socket.send_to(&answer.to_bytes(), peer).unwrap();
                if request.header("Authorization").is_some() {
                    return got;
                }
            }
            got
        });
        (port, handle)
    }

    #[test]
    fn a_phone_is_notified_on_its_own_port_and_answered_with_its_own_account() {
        let (port, phone) = challenging_phone(SECRET);
        let (_dir, desk) = desk_with_phone(&[("P40", &port.to_string())]);
        let mut events = desk.events().subscribe();
        let results = desk
            .resync(&ResyncRequest {
                selection: devices(&[PHONE]),
                reboot: false,
                to: Some("127.0.0.1".into()),
            })
            .unwrap();
        let got = phone.join().unwrap();
        assert_eq!(got.len(), 2, "the NOTIFY and its Digest answer");
        assert!(got[0].starts_with(&format!("NOTIFY sip:201@127.0.0.1:{port} SIP/2.0")));
        assert!(got.iter().all(|text| !text.contains(SECRET)));
        let [result] = &results[..] else {
            panic!("{results:?}")
        };
        assert_eq!(
            result.outcome,
            ResyncOutcome::Answered {
                code: 200,
                reason: "Done".into(),
                authenticated: true
            }
        );
        assert!(result.outcome.accepted());
        assert_eq!(result.target, Some(format!("127.0.0.1:{port}")));
        assert_eq!(result.origin, Some(AddressOrigin::Given));
        assert_eq!(
            result.summary,
            format!(
                "re-provision NOTIFY to 127.0.0.1:{port} (given): answered 200 Done (after a Digest challenge)"
            )
        );
        let rows = desk
            .inventory()
            .device_events(&DeviceEventQuery {
                mac: Some(PHONE.parse().unwrap()),
                source: Some(EventSource::Notify),
                ..DeviceEventQuery::default()
            })
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].kind, "answered");
        assert_eq!(rows[0].summary, result.summary);
        assert_eq!(rows[0].detail.as_ref().unwrap()["outcome"]["code"], 200);
        assert!(!format!("{rows:?}").contains(SECRET));
        let Ok(DeskEvent::Resynced(announced)) = events.try_recv() else {
            panic!("no event")
        };
        assert_eq!(&announced, result);
    }

    #[test]
    fn a_wrong_password_is_a_failed_challenge_and_no_address_an_outcome() {
        let (port, phone) = challenging_phone("not-the-devices");
        let (_dir, desk) = desk_with_phone(&[]);
        let results = desk
            .resync(&ResyncRequest {
                selection: devices(&[PHONE]),
                reboot: true,
                to: Some(format!("127.0.0.1:{port}")),
            })
            .unwrap();
        phone.join().unwrap();
        let ResyncOutcome::ChallengeFailed { code: 401, reason } = &results[0].outcome else {
            panic!("{:?}", results[0])
        };
        assert_eq!(
            reason,
            "the phone refused the Digest answer for user \"201\" (wrong SIP password?)"
        );
        assert!(results[0].summary.starts_with(&format!(
            "reboot NOTIFY to 127.0.0.1:{port} (given): challenge failed (401)"
        )));
        assert!(!results[0].summary.contains(SECRET));

        // Never seen and no address given: not sent, and said so.
        let results = desk
            .resync(&ResyncRequest {
                selection: ResyncSelection::All,
                reboot: false,
                to: None,
            })
            .unwrap();
        assert_eq!(
            results[0].outcome,
            ResyncOutcome::NotSent {
                reason: NO_ADDRESS.into()
            }
        );
        let rows = desk
            .inventory()
            .device_events(&DeviceEventQuery::default())
            .unwrap();
        assert_eq!(rows.last().unwrap().kind, "not-sent");
    }

    #[test]
    fn bad_selections_and_addresses_are_refused_before_anything_is_sent() {
        let (_dir, desk) = desk_with_phone(&[("P40", "sip")]);
        let refuse = |selection, to: Option<&str>| {
            desk.resync(&ResyncRequest {
                selection,
                reboot: false,
                to: to.map(str::to_string),
            })
            .unwrap_err()
            .message
        };
        assert_eq!(
            refuse(devices(&[PHONE, "000b82000099"]), None),
            "000b82000099 is not in the inventory; nothing sent"
        );
        assert!(refuse(devices(&["nonsense"]), None).contains("nonsense"));
        assert!(refuse(devices(&[]), None).contains("no device named"));
        assert!(
            refuse(
                ResyncSelection::Profile {
                    name: "nope".into()
                },
                None
            )
            .contains("profile \"nope\" does not exist")
        );
        for bad in ["127.0.0.1:0", "127.0.0.1:port", "two words", ""] {
            let message = refuse(devices(&[PHONE]), Some(bad));
            assert!(
                message.contains("write it as HOST:PORT"),
                "{bad}: {message}"
            );
        }
        // A local SIP port that is not one: that device is not sent to.
        let results = desk
            .resync(&ResyncRequest {
                selection: devices(&[PHONE]),
                reboot: false,
                to: Some("127.0.0.1".into()),
            })
            .unwrap();
        let ResyncOutcome::NotSent { reason } = &results[0].outcome else {
            panic!("{results:?}")
        };
        assert!(reason.contains("(P40) is \"sip\""), "{reason}");
        // The profile selection takes only that profile's devices; none are stale yet.
        let office = ResyncSelection::Profile {
            name: "office".into(),
        };
        assert_eq!(desk.resync_selection(&office).unwrap().len(), 1);
        assert!(
            desk.resync_selection(&ResyncSelection::Stale)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_newest_sighting_gives_the_address() {
        let (_dir, desk) = desk_with_phone(&[]);
        let mac: Mac = PHONE.parse().unwrap();
        let device = || desk.inventory().get_device(mac).unwrap().unwrap();
        let leases = || -> BTreeMap<Mac, IpAddr> {
            desk.inventory()
                .dhcp_leases()
                .unwrap()
                .into_iter()
                .map(|l| (l.mac, IpAddr::V4(l.address)))
                .collect()
        };
        let address = || desk.last_known_address(&device(), &leases()).unwrap();
        assert_eq!(address(), None);
        let event = |at_ms, source, peer: &str| NewDeviceEvent {
            at_ms,
            mac: Some(mac),
            peer: Some(peer.into()),
            source,
            kind: "x".into(),
            summary: "x".into(),
            detail: None,
        };
        desk.inventory()
            .append_device_events(&[event(100, EventSource::Pnp, "198.51.100.9")])
            .unwrap();
        assert_eq!(
            address(),
            Some(("198.51.100.9".parse().unwrap(), AddressOrigin::PlugAndPlay))
        );
        desk.inventory()
            .append_fetch_log(&[FetchLogEntry {
                id: None,
                ts: 200,
                protocol: "http".into(),
                peer: "198.51.100.8:40000".into(),
                name: "cfg000b82000001.xml".into(),
                mac: Some(mac),
                user_agent: None,
                status: "200".into(),
                reason: None,
                bytes: 1,
                duration_ms: 1,
                artifact_hash: None,
            }])
            .unwrap();
        assert_eq!(
            address(),
            Some(("198.51.100.8".parse().unwrap(), AddressOrigin::LastFetch))
        );
        desk.inventory()
            .save_dhcp_lease(&DhcpLease {
                mac,
                address: "198.51.100.7".parse().unwrap(),
                expires_at: 2_000_000_000,
                hostname: None,
                vendor_class: None,
            })
            .unwrap();
        // A lease whose messages are older than the fetch does not win...
        desk.inventory()
            .append_device_events(&[event(150, EventSource::Dhcp, "198.51.100.7")])
            .unwrap();
        assert_eq!(address().unwrap().1, AddressOrigin::LastFetch);
        // ...a renewed one does.
        desk.inventory()
            .append_device_events(&[event(300, EventSource::Dhcp, "198.51.100.7")])
            .unwrap();
        assert_eq!(
            address(),
            Some(("198.51.100.7".parse().unwrap(), AddressOrigin::DhcpLease))
        );
    }
}
