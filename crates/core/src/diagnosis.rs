//! A diagnosis in plain words for one device, computed from its timeline: where it is on the
//! status ladder and why, and every problem the timeline shows (never asked; asked over a
//! protocol the desk does not serve; refused, and by which rule; fetched the binary but never
//! the XML; fetched the encrypted XML and fell back to a shared file; downloaded firmware and
//! came back on the old version; files changed since its last fetch).
//!
//! Invariants: pure, no I/O (the caller reads the timeline, the manifest, which protocols
//! are served and the firmware versions); every verdict names the timeline entries it rests
//! on (`evidence`), so a front end can show them; the words quote only what the timeline and
//! the manifest hold, which hold no secret (the caller still masks values a held device's
//! messages may quote).

use crate::Mac;
use crate::build::Manifest;
use crate::inventory::{Device, FetchLogEntry};
use crate::status::{self, LanEvidence, ProvisioningStatus};
use crate::timeline::{EntryId, FetchOutcome, FileRole, TimelineEntry, TimelineSource, file_role};

/// Which protocols the desk serves phones now (its running servers, else its settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServedProtocols {
    pub http: bool,
    pub https: bool,
    pub tftp: bool,
}

impl ServedProtocols {
    /// Whether a fetch-log protocol (`http`, `https`, `tftp`) is among them.
    pub fn serves(&self, protocol: &str) -> bool {
        match protocol {
            "http" => self.http,
            "https" => self.https,
            "tftp" => self.tftp,
            _ => false,
        }
    }

    /// `HTTP and HTTPS`, `nothing`.
    fn names(&self) -> String {
        let names: Vec<&str> = [
            (self.http, "HTTP"),
            (self.https, "HTTPS"),
            (self.tftp, "TFTP"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        match names.as_slice() {
            [] => "nothing".into(),
            [one] => (*one).into(),
            [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        }
    }
}

/// Everything a diagnosis is computed from.
#[derive(Debug, Clone, Copy)]
pub struct DiagnosisInput<'a> {
    pub device: &'a Device,
    /// Its timeline, oldest first (its recent part is enough: see `status::STATUS_LOG_DEPTH`).
    pub timeline: &'a [TimelineEntry],
    /// The build served now.
    pub manifest: &'a Manifest,
    pub served: ServedProtocols,
    /// The version of the firmware the desk serves for the device's model, when known.
    pub target_firmware: Option<&'a str>,
    /// What the DHCP and plug-and-play responders know of it (the rungs before a fetch).
    pub lan: &'a LanEvidence,
}

/// What a verdict is about: a stable code a front end can act on (`stale` offers a resync).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "kebab-case")]
pub enum VerdictCode {
    /// Its own values have errors: the build holds its files back.
    NeedsAttention,
    /// It has never asked this desk for a file.
    NeverAsked,
    /// It asks over a protocol the desk does not serve now (TFTP while only HTTP runs).
    ProtocolNotServed,
    /// Its latest request for a file was refused, and nothing of that name was served since.
    Refused,
    /// It fetched its binary `cfg<mac>` and never asked for its `cfg<mac>.xml` afterwards.
    BinaryWithoutXml,
    /// It fetched its encrypted XML and then asked for `cfg<model>.xml`/`cfg.xml`: it could
    /// not decrypt it (P1359 mismatch).
    XmlNotDecrypted,
    /// It downloaded firmware and came back on the old version.
    FirmwareNotTaken,
    /// Files it fetched have changed since: it needs a resync.
    Stale,
    /// Its newest transfer broke off.
    TransferFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "lowercase")]
pub enum VerdictSeverity {
    /// It will not provision until something changes.
    Problem,
    /// It provisions, or may, but something needs a look (or a resync).
    Warning,
    /// Worth knowing.
    Info,
}

/// One finding, in plain words, with the entries it rests on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct Verdict {
    pub code: VerdictCode,
    pub severity: VerdictSeverity,
    /// What happened and what to do, in sentences.
    pub words: String,
    /// The timeline entries behind it, oldest first (`fetch:12`, `event:7`).
    #[cfg_attr(feature = "ts", ts(type = "Array<string>"))]
    pub evidence: Vec<EntryId>,
}

/// A device's diagnosis.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct Diagnosis {
    #[cfg_attr(feature = "ts", ts(as = "String"))]
    pub mac: Mac,
    pub status: ProvisioningStatus,
    /// The status's label (`applied`, `never seen`).
    pub status_label: String,
    /// The entries the status rests on.
    #[cfg_attr(feature = "ts", ts(type = "Array<string>"))]
    pub status_evidence: Vec<EntryId>,
    /// Most severe first.
    pub verdicts: Vec<Verdict>,
    /// One sentence: the first verdict's words, else what the status means.
    pub summary: String,
}

/// At most this many entries back one verdict: the newest of a run of identical requests
/// say all there is.
const MAX_EVIDENCE: usize = 5;

/// Diagnoses one device.
pub fn diagnose(input: &DiagnosisInput<'_>) -> Diagnosis {
    let rung = status::ladder(
        input.device,
        input.timeline,
        input.manifest,
        input.target_firmware,
        input.lan,
    );
    let facts = Facts {
        mac: input.device.mac,
        timeline: input.timeline,
        manifest: input.manifest,
    };
    let mut verdicts: Vec<Verdict> = [
        needs_attention(&rung.status),
        never_asked(&facts),
        protocol_not_served(&facts, input.served),
        refused(&facts),
        binary_without_xml(&facts),
        xml_not_decrypted(&facts),
        firmware_not_taken(&facts, input.target_firmware),
        stale(&facts, &rung.status),
        transfer_failed(&facts, &rung.status),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Stable: within a severity, the order above (the order a technician checks things in).
    verdicts.sort_by_key(|v| v.severity);
    let summary = match verdicts.first() {
        Some(first) => first.words.clone(),
        None => status_words(&rung.status, input.target_firmware),
    };
    Diagnosis {
        mac: input.device.mac,
        status_label: rung.status.label(),
        status: rung.status,
        status_evidence: rung.evidence,
        verdicts,
        summary,
    }
}

/// What a status means, when no verdict says more.
fn status_words(status: &ProvisioningStatus, target: Option<&str>) -> String {
    match status {
        ProvisioningStatus::NeverSeen => "It has never been seen.".into(),
        ProvisioningStatus::GotAddress { address } => format!(
            "It got the address {address} from this desk's DHCP and has not asked for a file yet."
        ),
        ProvisioningStatus::AskedForServer => {
            "It asked for its provisioning server by plug-and-play and has not asked for a file yet.".into()
        }
        ProvisioningStatus::Requesting => {
            "It asks, but nothing of its own has been served to it yet.".into()
        }
        ProvisioningStatus::GotConfig { version } => format!(
            "It fetched part of its configuration (build {version}: the binary bootstrap or a shared file), not its own XML yet."
        ),
        ProvisioningStatus::FirmwareInProgress { percent } => {
            format!("It is downloading firmware ({percent}%).")
        }
        ProvisioningStatus::FirmwareDone => {
            "It downloaded its firmware; it should reboot and ask for its configuration again.".into()
        }
        ProvisioningStatus::UpToDate => "It fetched its current configuration; nothing shows yet that it applied it (a reboot, a resync, or a syslog line from it after the fetch would).".into(),
        ProvisioningStatus::Applied => match target {
            Some(target) => format!(
                "It fetched its current configuration and came back: applied. It does not report firmware {target} yet, the version this desk serves for its model."
            ),
            None => "It fetched its current configuration and came back: applied.".into(),
        },
        ProvisioningStatus::OnTargetFirmware => format!(
            "It applied its current configuration and runs firmware {}, the version this desk serves for its model.",
            target.unwrap_or("the desk serves")
        ),
        ProvisioningStatus::Stale => "Files it fetched have changed since.".into(),
        ProvisioningStatus::Denied { reason } => format!("Its last request was refused: {reason}."),
        ProvisioningStatus::Failed { reason } => format!("Its last transfer broke off: {reason}."),
        ProvisioningStatus::NeedsAttention { reason } => {
            format!("Its configuration cannot be built: {reason}.")
        }
    }
}

/// The device's timeline with what the verdicts ask of it.
struct Facts<'a> {
    mac: Mac,
    timeline: &'a [TimelineEntry],
    manifest: &'a Manifest,
}

impl<'a> Facts<'a> {
    /// Its fetches, oldest first, with their position in the timeline.
    fn fetches(&self) -> impl DoubleEndedIterator<Item = (usize, &'a FetchLogEntry)> + 'a {
        self.timeline
            .iter()
            .enumerate()
            .filter_map(|(at, entry)| entry.fetch.as_ref().map(|fetch| (at, fetch)))
    }

    fn role(&self, fetch: &FetchLogEntry) -> FileRole {
        file_role(&fetch.name, self.mac, self.manifest)
    }

    fn id(&self, at: usize) -> EntryId {
        self.timeline[at].id
    }

    /// The newest served fetch of a file with `role`.
    fn newest_served(&self, role: FileRole) -> Option<(usize, &'a FetchLogEntry)> {
        self.fetches()
            .rev()
            .find(|(_, f)| served(f) && self.role(f) == role)
    }
}

fn served(fetch: &FetchLogEntry) -> bool {
    FetchOutcome::from_status(&fetch.status) == FetchOutcome::Served
}

/// The newest `MAX_EVIDENCE` of `ids`, oldest first.
fn newest_few(mut ids: Vec<EntryId>) -> Vec<EntryId> {
    let skip = ids.len().saturating_sub(MAX_EVIDENCE);
    ids.drain(..skip);
    ids
}

fn needs_attention(status: &ProvisioningStatus) -> Option<Verdict> {
    let ProvisioningStatus::NeedsAttention { reason } = status else {
        return None;
    };
    Some(Verdict {
        code: VerdictCode::NeedsAttention,
        severity: VerdictSeverity::Problem,
        words: format!(
            "Its configuration cannot be built: {reason}. It is served its last good files, if it has any; fix its values and build again."
        ),
        evidence: Vec::new(),
    })
}

fn never_asked(facts: &Facts<'_>) -> Option<Verdict> {
    if facts.fetches().next().is_some() {
        return None;
    }
    let seen: Vec<EntryId> = facts
        .timeline
        .iter()
        .filter(|e| matches!(e.source, TimelineSource::Dhcp | TimelineSource::Pnp))
        .map(|e| e.id)
        .collect();
    let words = if seen.is_empty() {
        "It has never asked this desk for a file. Check that it is powered and on this network, and that it is pointed at this desk (DHCP option 66, or its config server P237)."
            .to_string()
    } else {
        "It was seen on the network (DHCP or plug-and-play) but has never asked this desk for a file. Check where it is told to provision: DHCP option 66, or its config server P237 and protocol P212."
            .to_string()
    };
    Some(Verdict {
        code: VerdictCode::NeverAsked,
        severity: VerdictSeverity::Warning,
        words,
        evidence: newest_few(seen),
    })
}

/// Its newest requests came over a protocol the desk does not serve now.
fn protocol_not_served(facts: &Facts<'_>, served: ServedProtocols) -> Option<Verdict> {
    let (_, newest) = facts.fetches().next_back()?;
    let protocol = newest.protocol.as_str();
    if served.serves(protocol) {
        return None;
    }
    let run: Vec<EntryId> = facts
        .fetches()
        .rev()
        .take_while(|(_, f)| f.protocol == protocol)
        .map(|(at, _)| facts.id(at))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let upper = protocol.to_ascii_uppercase();
    let fix = match protocol {
        "tftp" if served.http || served.https => format!(
            "set its provisioning protocol P212 to {} and its config server P237 to this desk's address, give it an HTTP URL in DHCP option 66, or turn TFTP on ([server] tftp)",
            if served.http { "HTTP (1)" } else { "HTTPS (2)" }
        ),
        _ => format!(
            "turn {upper} on in the settings ([server] {protocol}) or point it at what this desk serves"
        ),
    };
    let serves = match served.names().as_str() {
        "nothing" => "serves nothing now".to_string(),
        names => format!("serves only {names} now"),
    };
    Some(Verdict {
        code: VerdictCode::ProtocolNotServed,
        severity: VerdictSeverity::Problem,
        words: format!("It asks over {upper}, but this desk {serves}: {fix}."),
        evidence: newest_few(run),
    })
}

/// Which rule refused a request, by the reason the servers log (`access::Rule::reason` and
/// the HTTP authenticator's reasons in `provdesk-serve`), and what the refusal looked like to
/// the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalRule {
    /// `[access] allow` (HTTP 403, TFTP error).
    AllowList,
    /// `[tls] client_ca` / `require_client_cert` (the TLS handshake, or HTTP 403).
    ClientCertificate,
    /// `[access] device_files = "owner"` (answered as not found).
    NotTheOwner,
    /// `[auth]` on: TFTP withholds per-device files (TFTP error).
    TftpWithheld,
    /// `[auth]`: HTTP authentication with P1360/P1361 (HTTP 401).
    Authentication,
}

impl RefusalRule {
    pub fn of(reason: &str) -> RefusalRule {
        if reason.starts_with("not in the allow-list") {
            RefusalRule::AllowList
        } else if reason.starts_with("no client certificate") || reason.starts_with("TLS handshake")
        {
            RefusalRule::ClientCertificate
        } else if reason.starts_with("not the owner") {
            RefusalRule::NotTheOwner
        } else if reason.starts_with("per-device file over TFTP") {
            RefusalRule::TftpWithheld
        } else {
            RefusalRule::Authentication
        }
    }

    /// How the phone saw it, e.g. `HTTP 401`.
    fn answer(self, protocol: &str) -> String {
        let upper = protocol.to_ascii_uppercase();
        match (self, protocol) {
            (_, "tftp") => "a TFTP error".into(),
            (RefusalRule::Authentication, _) => format!("{upper} 401"),
            (RefusalRule::NotTheOwner, _) => format!("{upper} 404"),
            (RefusalRule::ClientCertificate, _) if upper == "HTTPS" => {
                "a refused TLS handshake or HTTPS 403".into()
            }
            _ => format!("{upper} 403"),
        }
    }

    fn advice(self) -> &'static str {
        match self {
            RefusalRule::AllowList => {
                "Its address is not in [access] allow: add it (or its network) there."
            }
            RefusalRule::ClientCertificate => {
                "It shows no certificate signed by the desk's client CA: install one on the phone, or turn [tls] require_client_cert off."
            }
            RefusalRule::NotTheOwner => {
                "Its files go only to the address that belongs to its MAC ([access] device_files = \"owner\"): make sure it asks from its own address, on this desk's LAN."
            }
            RefusalRule::TftpWithheld => {
                "TFTP cannot authenticate, so while [auth] is on its own files go only over HTTP: set its protocol P212 to HTTP, or set [access] tftp_device_files = true."
            }
            RefusalRule::Authentication => {
                "The HTTP user and password it sends (P1360/P1361) must be the ones its profile gives it; a phone that never had them needs them set once by hand or over TFTP."
            }
        }
    }
}

fn refused(facts: &Facts<'_>) -> Option<Verdict> {
    let (at, denied) = facts
        .fetches()
        .rev()
        .find(|(_, f)| FetchOutcome::from_status(&f.status) == FetchOutcome::Denied)?;
    let same_name = |f: &FetchLogEntry| f.name.eq_ignore_ascii_case(&denied.name);
    let served_since = facts
        .fetches()
        .any(|(later, f)| later > at && same_name(f) && served(f));
    if served_since {
        return None;
    }
    let last_served = facts
        .fetches()
        .rev()
        .find(|(_, f)| same_name(f) && served(f))
        .map(|(at, _)| at);
    let refusals: Vec<EntryId> = facts
        .fetches()
        .filter(|(i, f)| {
            last_served.is_none_or(|s| *i > s)
                && same_name(f)
                && FetchOutcome::from_status(&f.status) == FetchOutcome::Denied
        })
        .map(|(i, _)| facts.id(i))
        .collect();
    let reason = denied.reason.as_deref().unwrap_or("no reason logged");
    let rule = RefusalRule::of(reason);
    let times = match refusals.len() {
        1 => String::new(),
        n => format!(" ({n} times)"),
    };
    Some(Verdict {
        code: VerdictCode::Refused,
        severity: VerdictSeverity::Problem,
        words: format!(
            "The desk refused {} over {}{times}, answering {}: {reason}. {}",
            denied.name,
            denied.protocol.to_ascii_uppercase(),
            rule.answer(&denied.protocol),
            rule.advice()
        ),
        evidence: newest_few(refusals),
    })
}

fn binary_without_xml(facts: &Facts<'_>) -> Option<Verdict> {
    let (at, binary) = facts.newest_served(FileRole::OwnBinary)?;
    let has_xml = facts
        .manifest
        .entries
        .values()
        .any(|e| e.mac == Some(facts.mac) && e.kind == crate::build::ArtifactKind::DeviceXml);
    let asked_since = facts
        .fetches()
        .any(|(later, f)| later > at && facts.role(f) == FileRole::OwnXml);
    if !has_xml || asked_since {
        return None;
    }
    Some(Verdict {
        code: VerdictCode::BinaryWithoutXml,
        severity: VerdictSeverity::Problem,
        words: format!(
            "It fetched its binary file {} but has not asked for its XML (cfg{}.xml) since. The binary's settings may send it elsewhere (config server P237, protocol P212, prefix P234/postfix P235), or its firmware reads only the binary format.",
            binary.name, facts.mac
        ),
        evidence: vec![facts.id(at)],
    })
}

fn xml_not_decrypted(facts: &Facts<'_>) -> Option<Verdict> {
    let (at, xml) = facts.newest_served(FileRole::OwnXml)?;
    let encrypted = facts.manifest.get(&xml.name).is_some_and(|e| e.encrypted);
    if !encrypted {
        return None;
    }
    let fallbacks: Vec<(usize, &FetchLogEntry)> = facts
        .fetches()
        .filter(|(later, f)| *later > at && facts.role(f) == FileRole::SharedXml)
        .collect();
    let (_, first) = fallbacks.first()?;
    let mut evidence = vec![facts.id(at)];
    evidence.extend(
        fallbacks
            .iter()
            .take(MAX_EVIDENCE - 1)
            .map(|(i, _)| facts.id(*i)),
    );
    Some(Verdict {
        code: VerdictCode::XmlNotDecrypted,
        severity: VerdictSeverity::Problem,
        words: format!(
            "It fetched its encrypted {} and then asked for {}: it could not decrypt it, so the XML password it has (P1359) is not the one this desk encrypts its file with. Let it fetch its binary cfg{} first (which carries P1359), or set P1359 on the phone to the device's password.",
            xml.name, first.name, facts.mac
        ),
        evidence,
    })
}

fn firmware_not_taken(facts: &Facts<'_>, target: Option<&str>) -> Option<Verdict> {
    let (at, firmware) = facts.newest_served(FileRole::Firmware)?;
    let reported = |i: usize| facts.timeline[i].reported_firmware();
    let before = (0..at).rev().find_map(|i| reported(i).map(|v| (i, v)));
    let (after_at, after) = (at + 1..facts.timeline.len())
        .rev()
        .find_map(|i| reported(i).map(|v| (i, v)))?;
    let not_taken = match target {
        Some(target) => after != target,
        None => before.as_ref().is_some_and(|(_, v)| *v == after),
    };
    if !not_taken {
        return None;
    }
    let offered = target
        .map(|t| format!(" (firmware {t})"))
        .unwrap_or_default();
    let mut evidence: Vec<EntryId> = before.iter().map(|(i, _)| facts.id(*i)).collect();
    evidence.push(facts.id(at));
    evidence.push(facts.id(after_at));
    Some(Verdict {
        code: VerdictCode::FirmwareNotTaken,
        severity: VerdictSeverity::Warning,
        words: format!(
            "It downloaded {}{offered} but came back still on firmware {after}: it did not install the image. Check that the image is for this model and that its version may upgrade from {after} directly (some need an intermediate version).",
            firmware.name
        ),
        evidence,
    })
}

fn stale(facts: &Facts<'_>, status: &ProvisioningStatus) -> Option<Verdict> {
    if *status != ProvisioningStatus::Stale {
        return None;
    }
    // The latest served fetch of each name whose hash the manifest no longer serves.
    let mut seen: Vec<String> = Vec::new();
    let mut changed: Vec<(usize, &FetchLogEntry)> = Vec::new();
    for (at, fetch) in facts.fetches().rev().filter(|(_, f)| served(f)) {
        let name = fetch.name.to_ascii_lowercase();
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        if facts
            .manifest
            .get(&fetch.name)
            .is_some_and(|m| fetch.artifact_hash.as_deref() != Some(m.hash.as_str()))
        {
            changed.push((at, fetch));
        }
    }
    changed.reverse();
    let newest_fetch = changed.last().map(|(at, _)| *at)?;
    let mut evidence: Vec<EntryId> = changed.iter().map(|(at, _)| facts.id(*at)).collect();
    evidence.extend(
        facts.timeline[newest_fetch + 1..]
            .iter()
            .filter(|e| e.source == TimelineSource::Build)
            .map(|e| e.id),
    );
    let names: Vec<String> = changed
        .iter()
        .map(|(_, f)| match facts.manifest.get(&f.name) {
            Some(m) => format!("{} (now build {})", f.name, m.version),
            None => f.name.clone(),
        })
        .collect();
    Some(Verdict {
        code: VerdictCode::Stale,
        severity: VerdictSeverity::Warning,
        words: format!(
            "Its files changed since it last fetched them: {}. Re-provision it (resync) or reboot it to apply the change.",
            names.join(", ")
        ),
        evidence: newest_few(evidence),
    })
}

fn transfer_failed(facts: &Facts<'_>, status: &ProvisioningStatus) -> Option<Verdict> {
    let ProvisioningStatus::Failed { reason } = status else {
        return None;
    };
    let (at, fetch) = facts.fetches().next_back()?;
    Some(Verdict {
        code: VerdictCode::TransferFailed,
        severity: VerdictSeverity::Problem,
        words: format!(
            "Its transfer of {} over {} broke off after {} bytes: {reason}.",
            fetch.name,
            fetch.protocol.to_ascii_uppercase(),
            fetch.bytes
        ),
        evidence: vec![facts.id(at)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{ArtifactKind, ManifestEntry};
    use crate::inventory::{DeviceEvent, EventSource};
    use crate::timeline::merge;

    const MAC: &str = "000b82123456";
    const HTTP_ONLY: ServedProtocols = ServedProtocols {
        http: true,
        https: false,
        tftp: false,
    };
    const ALL: ServedProtocols = ServedProtocols {
        http: true,
        https: true,
        tftp: true,
    };

    fn mac() -> Mac {
        MAC.parse().unwrap()
    }

    /// The device's binary (hash b1), encrypted XML (x1), the model's XML and firmware.
    fn manifest() -> Manifest {
        let mut manifest = Manifest {
            build: 7,
            ..Manifest::default()
        };
        for (name, kind, hash, encrypted) in [
            (format!("cfg{MAC}"), ArtifactKind::DeviceBinary, "b1", false),
            (format!("cfg{MAC}.xml"), ArtifactKind::DeviceXml, "x1", true),
            ("cfggxp2170.xml".into(), ArtifactKind::ModelXml, "m1", false),
            ("cfg.xml".into(), ArtifactKind::GenericXml, "g1", false),
            ("gxp2170fw.bin".into(), ArtifactKind::Firmware, "f1", false),
        ] {
            let own = matches!(kind, ArtifactKind::DeviceXml | ArtifactKind::DeviceBinary);
            manifest.entries.insert(
                name.clone(),
                ManifestEntry {
                    file: format!("build/{name}"),
                    hash: hash.into(),
                    input: String::new(),
                    version: 7,
                    kind,
                    mac: own.then(mac),
                    model: None,
                    encrypted,
                    size: 1,
                },
            );
        }
        manifest
    }

    /// A timeline from lines, oldest first. A fetch is `fetch NAME STATUS HASH` then any of
    /// `sw=VERSION` (a Grandstream User-Agent reporting it), `tftp` (the protocol; HTTP
    /// otherwise) and `why=REASON` (underscores for spaces); an event is `SOURCE KIND`. `MAC`
    /// stands for the device's MAC. Ids are the line numbers.
    fn timeline(lines: &[&str]) -> Vec<TimelineEntry> {
        let mut fetches = Vec::new();
        let mut events = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let words: Vec<String> = line
                .split_whitespace()
                .map(|w| w.replace("MAC", MAC))
                .collect();
            let at = i as i64 * 1000;
            let option = |key: &str| {
                words.iter().find_map(|w| {
                    w.strip_prefix(&format!("{key}="))
                        .map(|v| v.replace('_', " "))
                })
            };
            if words[0] == "fetch" {
                fetches.push(FetchLogEntry {
                    id: Some(i as i64),
                    ts: at,
                    protocol: if words.iter().any(|w| w == "tftp") {
                        "tftp".into()
                    } else {
                        "http".into()
                    },
                    peer: "192.0.2.7:4000".into(),
                    name: words[1].clone(),
                    mac: Some(mac()),
                    user_agent: option("sw").map(|version| {
                        format!("Grandstream Model HW GXP2170 SW {version} DevId {MAC}")
                    }),
                    status: words[2].clone(),
                    reason: option("why"),
                    bytes: 10,
                    duration_ms: 1,
                    artifact_hash: (words[3] != "-").then(|| words[3].clone()),
                });
            } else {
                events.push(DeviceEvent {
                    id: i as i64,
                    at_ms: at,
                    mac: Some(mac()),
                    peer: None,
                    source: EventSource::parse(&words[0]).expect("a source"),
                    kind: words[1].clone(),
                    summary: line.to_string(),
                    detail: None,
                });
            }
        }
        merge(fetches, events)
    }

    fn diagnosis(lines: &[&str], served: ServedProtocols, target: Option<&str>) -> Diagnosis {
        let device = Device::new(mac(), "gxp2170");
        diagnose(&DiagnosisInput {
            device: &device,
            timeline: &timeline(lines),
            manifest: &manifest(),
            served,
            target_firmware: target,
            lan: &LanEvidence::default(),
        })
    }

    /// The diagnosis has exactly the verdict `code` (and no other), whose words contain
    /// every one of `words` and whose evidence is `evidence`.
    fn check(
        lines: &[&str],
        served: ServedProtocols,
        code: VerdictCode,
        words: &[&str],
        evidence: &[&str],
    ) {
        let got = diagnosis(lines, served, None);
        let codes: Vec<VerdictCode> = got.verdicts.iter().map(|v| v.code).collect();
        assert_eq!(codes, [code], "{lines:?}: {got:#?}");
        let verdict = &got.verdicts[0];
        for word in words {
            assert!(
                verdict.words.contains(word),
                "{word:?} not in {:?}",
                verdict.words
            );
        }
        let ids: Vec<String> = verdict.evidence.iter().map(EntryId::to_string).collect();
        assert_eq!(ids, evidence, "{lines:?}");
        assert_eq!(got.summary, verdict.words);
    }

    fn no_verdict(lines: &[&str], served: ServedProtocols) -> Diagnosis {
        let got = diagnosis(lines, served, None);
        assert!(got.verdicts.is_empty(), "{lines:?}: {:#?}", got.verdicts);
        got
    }

    #[test]
    fn never_asked_with_and_without_a_sighting() {
        check(
            &[],
            ALL,
            VerdictCode::NeverAsked,
            &["never asked", "option 66"],
            &[],
        );
        check(
            &["dhcp discover", "dhcp ack", "syslog line"],
            ALL,
            VerdictCode::NeverAsked,
            &["seen on the network", "P212"],
            &["event:0", "event:1"],
        );
    }

    #[test]
    fn asking_over_tftp_while_only_http_is_served() {
        check(
            &[
                "fetch cfgMAC 200 b1",
                "fetch cfgMAC 404 - tftp",
                "fetch cfgMAC.xml 404 - tftp",
            ],
            HTTP_ONLY,
            VerdictCode::ProtocolNotServed,
            &[
                "asks over TFTP",
                "serves only HTTP",
                "P212 to HTTP (1)",
                "[server] tftp",
            ],
            &["fetch:1", "fetch:2"],
        );
        let nothing = diagnosis(
            &["fetch cfgMAC.xml 404 - tftp"],
            ServedProtocols::default(),
            None,
        );
        assert!(
            nothing.verdicts[0]
                .words
                .contains("this desk serves nothing now"),
            "{nothing:#?}"
        );
        // Served, it is only a miss.
        let got = diagnosis(&["fetch cfgMAC.xml 404 - tftp"], ALL, None);
        assert!(
            got.verdicts
                .iter()
                .all(|v| v.code != VerdictCode::ProtocolNotServed)
        );
    }

    #[test]
    fn refused_names_the_rule_and_how_the_phone_saw_it() {
        check(
            &[
                "fetch cfgMAC.xml denied - why=no_credentials_sent;_challenged_for_Digest",
                "fetch cfgMAC.xml denied - why=wrong_password_for_user_201",
            ],
            ALL,
            VerdictCode::Refused,
            &[
                "HTTP 401",
                "(2 times)",
                "wrong password for user 201",
                "P1360/P1361",
            ],
            &["fetch:0", "fetch:1"],
        );
        check(
            &["fetch cfgMAC.xml denied - why=not_in_the_allow-list"],
            ALL,
            VerdictCode::Refused,
            &["HTTP 403", "[access] allow"],
            &["fetch:0"],
        );
        check(
            &[
                "fetch cfgMAC.xml denied - tftp why=per-device_file_over_TFTP_while_HTTP_authentication_is_on",
            ],
            ALL,
            VerdictCode::Refused,
            &["a TFTP error", "tftp_device_files"],
            &["fetch:0"],
        );
        // Digest's first round trip is a 401 by design: served after it, nothing is wrong.
        let fine = no_verdict(
            &[
                "fetch cfgMAC 200 b1",
                "fetch cfgMAC.xml denied - why=no_credentials_sent;_challenged_for_Digest",
                "fetch cfgMAC.xml 200 x1",
            ],
            ALL,
        );
        assert_eq!(fine.status, ProvisioningStatus::UpToDate);
    }

    #[test]
    fn refusal_rules_are_read_from_the_servers_reasons() {
        let check = |reason: &str, rule: RefusalRule| assert_eq!(RefusalRule::of(reason), rule);
        check("not in the allow-list", RefusalRule::AllowList);
        check(
            "no client certificate (this desk requires one signed by its client CA)",
            RefusalRule::ClientCertificate,
        );
        check(
            "TLS handshake refused: no client certificate",
            RefusalRule::ClientCertificate,
        );
        check(
            "not the owner: 192.0.2.9 is 000b82000001 (dhcp), the file is 000b82123456's",
            RefusalRule::NotTheOwner,
        );
        check(
            "per-device file over TFTP while HTTP authentication is on",
            RefusalRule::TftpWithheld,
        );
        check("unknown user", RefusalRule::Authentication);
        assert_eq!(RefusalRule::NotTheOwner.answer("http"), "HTTP 404");
    }

    #[test]
    fn the_binary_without_the_xml() {
        check(
            &["fetch cfgMAC 200 b1", "fetch gxp2170fw.bin 404 -"],
            ALL,
            VerdictCode::BinaryWithoutXml,
            &["binary file cfg000b82123456", "cfg000b82123456.xml", "P237"],
            &["fetch:0"],
        );
        // A request for the XML, whatever its answer, is the phone following on.
        let asked = diagnosis(
            &["fetch cfgMAC 200 b1", "fetch cfgMAC.xml 404 -"],
            ALL,
            None,
        );
        assert!(
            asked
                .verdicts
                .iter()
                .all(|v| v.code != VerdictCode::BinaryWithoutXml)
        );
    }

    #[test]
    fn the_encrypted_xml_then_a_fallback_is_a_p1359_mismatch() {
        check(
            &[
                "fetch cfgMAC.xml 200 x1",
                "fetch cfggxp2170.xml 200 m1",
                "fetch cfg.xml 200 g1",
            ],
            ALL,
            VerdictCode::XmlNotDecrypted,
            &[
                "encrypted cfg000b82123456.xml",
                "asked for cfggxp2170.xml",
                "P1359",
            ],
            &["fetch:0", "fetch:1", "fetch:2"],
        );
        // The fallback after a miss of the XML is the normal chain, not a decryption problem.
        let missed = diagnosis(
            &["fetch cfgMAC.xml 404 -", "fetch cfg.xml 200 g1"],
            ALL,
            None,
        );
        assert!(
            missed
                .verdicts
                .iter()
                .all(|v| v.code != VerdictCode::XmlNotDecrypted)
        );
    }

    #[test]
    fn firmware_downloaded_but_the_phone_came_back_on_the_old_version() {
        let lines = [
            "fetch cfgMAC.xml 200 x1 sw=1.0.11.3",
            "fetch gxp2170fw.bin 200 f1 sw=1.0.11.3",
            "fetch cfgMAC.xml 200 x1 sw=1.0.11.3",
        ];
        check(
            &lines,
            ALL,
            VerdictCode::FirmwareNotTaken,
            &["gxp2170fw.bin", "still on firmware 1.0.11.3"],
            &["fetch:0", "fetch:1", "fetch:2"],
        );
        // With the served version known, any other version is not it.
        let got = diagnosis(&lines, ALL, Some("1.0.11.23"));
        assert_eq!(got.verdicts[0].code, VerdictCode::FirmwareNotTaken);
        assert!(got.verdicts[0].words.contains("(firmware 1.0.11.23)"));
        assert_eq!(got.status, ProvisioningStatus::Applied);
        // Came back on the new one: on target, nothing to say.
        let upgraded = [
            "fetch cfgMAC.xml 200 x1 sw=1.0.11.3",
            "fetch gxp2170fw.bin 200 f1 sw=1.0.11.3",
            "fetch cfgMAC.xml 200 x1 sw=1.0.11.23",
        ];
        let got = diagnosis(&upgraded, ALL, Some("1.0.11.23"));
        assert!(got.verdicts.is_empty(), "{got:#?}");
        assert_eq!(got.status, ProvisioningStatus::OnTargetFirmware);
        assert!(
            got.summary.contains("runs firmware 1.0.11.23"),
            "{}",
            got.summary
        );
    }

    #[test]
    fn stale_names_the_changed_files_and_the_builds_since() {
        check(
            &[
                "fetch cfgMAC 200 b1",
                "fetch cfgMAC.xml 200 x0",
                "build changed",
                "fetch gxp2170fw.bin 404 -",
            ],
            ALL,
            VerdictCode::Stale,
            &["cfg000b82123456.xml (now build 7)", "resync"],
            &["fetch:1", "event:2"],
        );
    }

    #[test]
    fn a_broken_transfer_and_a_held_device() {
        check(
            &[
                "fetch cfgMAC.xml 200 x1",
                "fetch gxp2170fw.bin failed - tftp why=timed_out",
            ],
            ALL,
            VerdictCode::TransferFailed,
            &["gxp2170fw.bin over TFTP broke off after 10 bytes: timed out"],
            &["fetch:1"],
        );
        let device = Device::new(mac(), "gxp2170");
        let mut held = manifest();
        held.held
            .insert(mac(), vec!["P34: undefined variable `sip_secret`".into()]);
        let got = diagnose(&DiagnosisInput {
            device: &device,
            timeline: &[],
            manifest: &held,
            served: ALL,
            target_firmware: None,
            lan: &LanEvidence::default(),
        });
        let codes: Vec<VerdictCode> = got.verdicts.iter().map(|v| v.code).collect();
        // Problems first.
        assert_eq!(
            codes,
            [VerdictCode::NeedsAttention, VerdictCode::NeverAsked]
        );
        assert!(got.summary.contains("sip_secret"), "{}", got.summary);
    }

    #[test]
    fn a_device_that_applied_its_config_has_no_verdict_and_says_so() {
        let got = no_verdict(
            &[
                "fetch cfgMAC 200 b1",
                "fetch cfgMAC.xml 200 x1",
                "fetch cfgMAC 200 b1",
                "fetch cfgMAC.xml 200 x1",
            ],
            ALL,
        );
        assert_eq!(got.status, ProvisioningStatus::Applied);
        assert_eq!(got.status_label, "applied");
        let ids: Vec<String> = got.status_evidence.iter().map(EntryId::to_string).collect();
        assert_eq!(ids, ["fetch:1", "fetch:3"]);
        assert!(got.summary.contains("came back"), "{}", got.summary);
        let json = serde_json::to_value(&got).unwrap();
        assert_eq!(json["status"]["state"], "applied");
        assert_eq!(json["status_evidence"][0], "fetch:1");
    }
}
