//! The one access policy for every protocol: which peers may fetch at all (`[access] allow`),
//! what each protocol can prove about a client (HTTP(S) authentication, HTTPS client
//! certificates) and what a protocol that can prove nothing (TFTP) withholds while HTTP
//! authentication is on. HTTP, HTTPS and TFTP all ask the same [`AccessPolicy`], and so will
//! the DHCP and SIP plug-and-play responders; [`AccessPolicy::summary`] says what is enforced
//! where, once, for `provdesk serve` and the app to show.
//!
//! With `[access] device_files = "owner"` a phone's own files go only to the address that
//! belongs to its MAC, as the [`OwnerDirectory`]s say (the kernel's neighbour table always,
//! the desk's DHCP leases when its responder adds them): every directory that knows the peer
//! must name the file's MAC, and at least one must know it.
//!
//! Invariants: a refusal names the [`Rule`] that refused, in words that never name a user,
//! and that name a device only where the rule is about devices ([`Rule::NotTheOwner`] names
//! the peer's MAC and the file's, for the log; the client never sees a reason); the peer is
//! checked before a name is resolved, so a peer outside the allow-list learns nothing about
//! what the desk holds; a per-device file never leaves over a protocol that cannot
//! authenticate while HTTP authentication is on, unless the settings say so (`[access]
//! tftp_device_files = true`); a peer refused as not the owner gets the answer every
//! protocol gives for an unknown file, so it cannot tell a bound file from a missing one.

use std::net::IpAddr;
use std::sync::Arc;

use provdesk_core::Mac;
use provdesk_core::build::ArtifactKind;
use provdesk_core::desk::{AuthMode, DeskSettings, DeviceFiles};

use crate::events::Protocol;
use crate::http::AccessList;
pub use crate::owners::{NeighbourTable, OwnerDirectory};

/// Why a request was refused; its [`Rule::reason`] is the fetch event's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `device_files = "owner"` and the peer's address does not belong to the file's MAC.
    NotTheOwner {
        peer: IpAddr,
        /// What a directory says `peer` is (another MAC), and which directory says it; `None`
        /// when no directory knows `peer`.
        peer_is: Option<(Mac, &'static str)>,
        /// The MAC whose file was asked for; `None` for a device file whose MAC is unknown.
        file: Option<Mac>,
    },
    /// The peer's address is not in `[access] allow`.
    NotInAllowList,
    /// A per-device file over a protocol that cannot authenticate, while HTTP asks for it.
    DeviceFileWithoutAuthentication,
    /// HTTPS with `[tls] require_client_cert` and no certificate from the client CA.
    NoClientCertificate,
}

impl Rule {
    pub fn reason(&self) -> String {
        match self {
            Rule::NotInAllowList => "not in the allow-list".into(),
            Rule::DeviceFileWithoutAuthentication => {
                "per-device file over TFTP while HTTP authentication is on (TFTP cannot authenticate; [access] tftp_device_files = true serves it anyway)".into()
            }
            Rule::NoClientCertificate => {
                "no client certificate (this desk requires one signed by its client CA)".into()
            }
            Rule::NotTheOwner {
                peer,
                peer_is,
                file,
            } => {
                let is = match peer_is {
                    Some((mac, source)) => format!("{peer} is {mac} ({source})"),
                    None => format!("{peer} has no MAC this desk knows of"),
                };
                let file = match file {
                    Some(mac) => format!("the file is {mac}'s"),
                    None => "the file names no MAC".into(),
                };
                format!("not the owner: {is}, {file} ([access] device_files = \"owner\")")
            }
        }
    }
}

/// The directories that say which MAC an address belongs to, when device files are bound to
/// their owner. Two policies are equal when they ask the same directories.
#[derive(Debug, Clone)]
struct Owners(Vec<Arc<dyn OwnerDirectory>>);

impl PartialEq for Owners {
    fn eq(&self, other: &Owners) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl Eq for Owners {}

impl Owners {
    /// `Ok` when some directory maps `peer` to `file` and none maps it to another MAC.
    fn admit(&self, peer: IpAddr, file: Option<Mac>) -> Result<(), Rule> {
        // A v4 peer of a dual-stack socket arrives as ::ffff:a.b.c.d; directories know a.b.c.d.
        let peer = peer.to_canonical();
        let mut vouched = false;
        let mut other = None;
        for directory in &self.0 {
            match directory.owner_of(peer) {
                Some(mac) if Some(mac) == file => vouched = true,
                Some(mac) => {
                    other = Some((mac, directory.name()));
                    break;
                }
                None => {}
            }
        }
        if vouched && other.is_none() {
            Ok(())
        } else {
            Err(Rule::NotTheOwner {
                peer,
                peer_is: other,
                file,
            })
        }
    }

    /// `neighbour table or DHCP lease`.
    fn names(&self) -> String {
        let names: Vec<&str> = self.0.iter().map(|d| d.name()).collect();
        names.join(" or ")
    }
}

/// What a desk's settings enforce, for every protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    allow: AccessList,
    /// The allow-list as the technician wrote it, for the summary.
    allow_entries: Vec<String>,
    auth: AuthMode,
    tftp_device_files: bool,
    https_client_certificates: bool,
    /// `[encryption] mode = "off"`: per-device XML files go out in clear.
    encryption_off: bool,
    /// `[access] device_files = "owner"`: who says which MAC an address belongs to.
    owners: Option<Owners>,
}

impl Default for AccessPolicy {
    /// Everyone may fetch everything: what an empty `provdesk.toml` says.
    fn default() -> AccessPolicy {
        AccessPolicy {
            allow: AccessList::allow_all(),
            allow_entries: Vec::new(),
            auth: AuthMode::None,
            tftp_device_files: false,
            https_client_certificates: false,
            encryption_off: false,
            owners: None,
        }
    }
}

/// Whether a protocol can tell who asks (a password, a certificate). TFTP cannot; neither
/// will DHCP or SIP plug-and-play, which answer before a phone has any credentials.
fn authenticates(protocol: Protocol) -> bool {
    match protocol {
        Protocol::Http | Protocol::Https => true,
        Protocol::Tftp => false,
    }
}

/// A phone's own file (it carries that phone's secrets), as the store's manifest knows it.
pub fn is_device_file(kind: ArtifactKind) -> bool {
    match kind {
        ArtifactKind::DeviceBinary | ArtifactKind::DeviceXml => true,
        ArtifactKind::ModelXml | ArtifactKind::GenericXml | ArtifactKind::Firmware => false,
    }
}

impl AccessPolicy {
    /// The policy of `[access]`, `[auth]` and `[tls]`. Every bad allow-list entry is reported,
    /// one per line.
    pub fn from_settings(settings: &DeskSettings) -> Result<AccessPolicy, String> {
        let allow = AccessList::parse(&settings.access.allow)?;
        Ok(AccessPolicy {
            allow,
            allow_entries: settings
                .access
                .allow
                .iter()
                .map(|e| e.trim().to_string())
                .collect(),
            auth: settings.auth.mode,
            tftp_device_files: settings.access.tftp_device_files,
            https_client_certificates: settings.tls.require_client_cert,
            encryption_off: settings.encryption.is_off(),
            owners: match settings.access.device_files {
                DeviceFiles::Any => None,
                DeviceFiles::Owner => Some(Owners(vec![Arc::new(NeighbourTable::system())])),
            },
        })
    }

    /// This policy with device files bound to their owner as `directories` say (replacing
    /// the directories it had), or not bound at all for an empty list: for servers set up by
    /// hand and tests.
    pub fn with_owners(self, directories: Vec<Arc<dyn OwnerDirectory>>) -> AccessPolicy {
        AccessPolicy {
            owners: (!directories.is_empty()).then_some(Owners(directories)),
            ..self
        }
    }

    /// This policy asking `directory` too, when device files are bound to their owner (the
    /// desk's DHCP leases, for one); without the binding it changes nothing.
    pub fn with_owner_directory(self, directory: Arc<dyn OwnerDirectory>) -> AccessPolicy {
        let owners = self.owners.map(|Owners(mut list)| {
            list.push(directory);
            Owners(list)
        });
        AccessPolicy { owners, ..self }
    }

    /// Whether device files are bound to their owner (`[access] device_files = "owner"`).
    pub fn binds_device_files(&self) -> bool {
        self.owners.is_some()
    }

    /// This policy with another allow-list (for servers set up by hand: tests, benches).
    pub fn with_allow(self, allow: AccessList) -> AccessPolicy {
        AccessPolicy { allow, ..self }
    }

    /// This policy, refusing HTTPS clients without a certificate or not.
    pub fn with_client_certificates(self, required: bool) -> AccessPolicy {
        AccessPolicy {
            https_client_certificates: required,
            ..self
        }
    }

    /// The first check of every request, before its name is even resolved.
    pub fn admit_peer(&self, _protocol: Protocol, peer: IpAddr) -> Result<(), Rule> {
        if self.allow.allows(peer) {
            Ok(())
        } else {
            Err(Rule::NotInAllowList)
        }
    }

    /// HTTPS: whether a client without a verified certificate may go on.
    pub fn admit_client(&self, protocol: Protocol, has_certificate: bool) -> Result<(), Rule> {
        if protocol == Protocol::Https && self.https_client_certificates && !has_certificate {
            Err(Rule::NoClientCertificate)
        } else {
            Ok(())
        }
    }

    /// Once a name resolved to an artifact: whether `protocol` may hand it out. Protocols that
    /// authenticate answer for themselves (the authenticator runs next); the others may not
    /// hand out a device's own file while HTTP authentication guards it.
    pub fn admit_artifact(&self, protocol: Protocol, kind: ArtifactKind) -> Result<(), Rule> {
        match self.withholds_device_files(protocol) {
            Some(rule) if is_device_file(kind) => Err(rule),
            _ => Ok(()),
        }
    }

    /// The rule by which `protocol` hands out no device's own file, if it has one: it cannot
    /// authenticate while HTTP authentication guards those files. TFTP also answers a name
    /// shaped like a device file with it when that MAC is unknown, so its answers do not list
    /// the inventory.
    pub fn withholds_device_files(&self, protocol: Protocol) -> Option<Rule> {
        (!authenticates(protocol) && self.auth != AuthMode::None && !self.tftp_device_files)
            .then_some(Rule::DeviceFileWithoutAuthentication)
    }

    /// Once a name resolved to an artifact of `kind` for the device `mac` (or, for a miss,
    /// never): whether `peer` may have it. Only a device's own file is bound, and only with
    /// `device_files = "owner"`. A refused peer must get the answer for an unknown file.
    pub fn admit_owner(
        &self,
        peer: IpAddr,
        kind: ArtifactKind,
        mac: Option<Mac>,
    ) -> Result<(), Rule> {
        match &self.owners {
            Some(owners) if is_device_file(kind) => owners.admit(peer, mac),
            _ => Ok(()),
        }
    }

    pub fn auth(&self) -> AuthMode {
        self.auth
    }

    /// What each of `running` enforces, one line each, and every trade-off the settings make.
    pub fn summary(&self, running: &[Protocol]) -> AccessSummary {
        let peers = if self.allow.allows_everyone() {
            "every peer (the allow-list is empty)".to_string()
        } else {
            format!("allow-list {}", self.allow_entries.join(" "))
        };
        let auth = match self.auth {
            AuthMode::None => "no authentication",
            AuthMode::Basic => "basic authentication (P1360/P1361)",
            AuthMode::Digest => "digest authentication (P1360/P1361)",
        };
        // Appended to every protocol's line: the binding applies to all of them alike.
        let owner = match &self.owners {
            Some(owners) => format!(
                "; per-device files only to the phone with that MAC (by {})",
                owners.names()
            ),
            None => String::new(),
        };
        let protocols = running
            .iter()
            .map(|&protocol| {
                let enforces = match protocol {
                    Protocol::Http => format!("{peers}, {auth}"),
                    Protocol::Https => {
                        let certificates = if self.https_client_certificates {
                            "client certificate required"
                        } else {
                            "no client certificate required"
                        };
                        format!("{peers}, {auth}, {certificates}")
                    }
                    Protocol::Tftp => {
                        let device_files = match (self.auth, self.tftp_device_files) {
                            (AuthMode::None, _) => "per-device files served as over HTTP",
                            (_, false) => {
                                "per-device files withheld while HTTP authentication is on"
                            }
                            (_, true) => {
                                "per-device files served without authentication (tftp_device_files = true)"
                            }
                        };
                        format!("{peers}, no authentication possible; {device_files}")
                    }
                };
                let enforces = enforces + &owner;
                ProtocolAccess { protocol, enforces }
            })
            .collect();

        if running.is_empty() {
            // Nothing serves, so nothing is exposed.
            return AccessSummary {
                protocols,
                warnings: Vec::new(),
            };
        }
        let runs = |p: Protocol| running.contains(&p);
        let mut warnings = Vec::new();
        let mut warn = |setting: &str, message: &str| {
            warnings.push(Tradeoff {
                setting: setting.to_string(),
                message: message.to_string(),
            });
        };
        if self.allow.allows_everyone() {
            warn(
                "access.allow",
                "the allow-list is empty: every peer on the LAN may fetch; list the phones' network, e.g. allow = [\"192.168.1.0/24\"]",
            );
        }
        if self.auth == AuthMode::None {
            warn(
                "auth.mode",
                "authentication is off: anyone who may connect can fetch every per-device file (cfg<mac>.xml carries the phone's SIP password)",
            );
        }
        if self.auth == AuthMode::Basic && runs(Protocol::Http) {
            warn(
                "auth.mode",
                "basic authentication over plain HTTP sends P1360/P1361 across the LAN in clear; prefer digest, or HTTPS",
            );
        }
        if self.auth != AuthMode::None && self.tftp_device_files && runs(Protocol::Tftp) {
            warn(
                "access.tftp_device_files",
                "tftp_device_files = true: TFTP hands out per-device files without authentication while HTTP asks for it",
            );
        }
        if runs(Protocol::Https) && !self.https_client_certificates {
            warn(
                "tls.require_client_cert",
                "HTTPS asks clients for no certificate: any peer the allow-list admits gets as far as authentication",
            );
        }
        // Per-device files reach a peer without authentication: over HTTP when it asks for
        // none, over TFTP when it is told to hand them out anyway.
        let unauthenticated_device_files =
            self.auth == AuthMode::None || (self.tftp_device_files && runs(Protocol::Tftp));
        if self.owners.is_none() && unauthenticated_device_files {
            warn(
                "access.device_files",
                "device_files = \"any\": any peer that may fetch can read every phone's own files (cfg<mac> carries the key to its cfg<mac>.xml); \"owner\" serves them only to the phone with that MAC",
            );
        }
        if self.encryption_off {
            warn(
                "encryption.mode",
                "encryption is off: every cfg<mac>.xml is served in clear, SIP passwords included, to whoever may fetch it",
            );
        }
        AccessSummary {
            protocols,
            warnings,
        }
    }
}

/// What `serve` and the app say on start: computed here, only rendered by them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct AccessSummary {
    /// One per running protocol, in the order the servers start.
    pub protocols: Vec<ProtocolAccess>,
    /// Every trade-off the settings make.
    pub warnings: Vec<Tradeoff>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ProtocolAccess {
    pub protocol: Protocol,
    /// E.g. `allow-list 10.99.99.0/24, digest authentication (P1360/P1361)`.
    pub enforces: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct Tradeoff {
    /// The setting that makes it, `section.key` as in `provdesk.toml`.
    pub setting: String,
    pub message: String,
}

impl AccessSummary {
    /// `http: …` per protocol, then `warning: …` per trade-off.
    pub fn lines(&self) -> Vec<String> {
        self.protocols
            .iter()
            .map(|p| format!("{}: {}", p.protocol.as_str(), p.enforces))
            .chain(
                self.warnings
                    .iter()
                    .map(|w| format!("warning: {} ({})", w.message, w.setting)),
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], auth: AuthMode, tftp_device_files: bool) -> AccessPolicy {
        let mut settings = DeskSettings::default();
        settings.access.allow = allow.iter().map(|s| s.to_string()).collect();
        settings.auth.mode = auth;
        settings.access.tftp_device_files = tftp_device_files;
        AccessPolicy::from_settings(&settings).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_allow_list_applies_to_every_protocol() {
        let p = policy(&["10.99.99.0/24"], AuthMode::None, false);
        for protocol in [Protocol::Http, Protocol::Https, Protocol::Tftp] {
            assert_eq!(p.admit_peer(protocol, ip("10.99.99.7")), Ok(()));
            assert_eq!(
                p.admit_peer(protocol, ip("127.0.0.1")),
                Err(Rule::NotInAllowList),
                "{protocol:?}"
            );
        }
        let open = policy(&[], AuthMode::Digest, false);
        assert_eq!(open.admit_peer(Protocol::Tftp, ip("203.0.113.1")), Ok(()));
        assert_eq!(Rule::NotInAllowList.reason(), "not in the allow-list");
    }

    #[test]
    fn tftp_withholds_device_files_only_while_http_authenticates() {
        use ArtifactKind::*;
        let check = |auth, tftp_device_files, kind, protocol, expected: Result<(), Rule>| {
            let p = policy(&[], auth, tftp_device_files);
            assert_eq!(
                p.admit_artifact(protocol, kind),
                expected,
                "{auth:?} {tftp_device_files} {kind:?} {protocol:?}"
            );
        };
        let withheld = Err(Rule::DeviceFileWithoutAuthentication);
        for kind in [DeviceBinary, DeviceXml] {
            check(AuthMode::Digest, false, kind, Protocol::Tftp, withheld);
            check(AuthMode::Basic, false, kind, Protocol::Tftp, withheld);
            check(AuthMode::Digest, true, kind, Protocol::Tftp, Ok(()));
            check(AuthMode::None, false, kind, Protocol::Tftp, Ok(()));
            // HTTP and HTTPS authenticate the request themselves.
            check(AuthMode::Digest, false, kind, Protocol::Http, Ok(()));
            check(AuthMode::Digest, false, kind, Protocol::Https, Ok(()));
        }
        for kind in [ModelXml, GenericXml, Firmware] {
            check(AuthMode::Digest, false, kind, Protocol::Tftp, Ok(()));
        }
    }

    #[test]
    fn client_certificates_are_asked_of_https_only() {
        let mut settings = DeskSettings::default();
        settings.tls.require_client_cert = true;
        let p = AccessPolicy::from_settings(&settings).unwrap();
        assert_eq!(
            p.admit_client(Protocol::Https, false),
            Err(Rule::NoClientCertificate)
        );
        assert_eq!(p.admit_client(Protocol::Https, true), Ok(()));
        assert_eq!(p.admit_client(Protocol::Http, false), Ok(()));
        assert_eq!(p.admit_client(Protocol::Tftp, false), Ok(()));
    }

    #[test]
    fn bad_allow_entries_are_all_reported() {
        let mut settings = DeskSettings::default();
        settings.access.allow = vec!["10.0.0.0/33".into(), "nonsense".into()];
        let err = AccessPolicy::from_settings(&settings).unwrap_err();
        assert_eq!(err.lines().count(), 2, "{err}");
    }

    #[test]
    fn the_summary_says_what_each_protocol_enforces() {
        let p = policy(&["10.99.99.0/24"], AuthMode::Digest, false);
        let summary = p.summary(&[Protocol::Http, Protocol::Tftp]);
        assert_eq!(
            summary.lines(),
            [
                "http: allow-list 10.99.99.0/24, digest authentication (P1360/P1361)",
                "tftp: allow-list 10.99.99.0/24, no authentication possible; per-device files withheld while HTTP authentication is on",
            ]
        );
        assert!(summary.warnings.is_empty(), "{summary:?}");
    }

    #[test]
    fn the_summary_warns_about_every_tradeoff() {
        let settings_of = |summary: &AccessSummary| -> Vec<String> {
            summary.warnings.iter().map(|w| w.setting.clone()).collect()
        };
        let everything = [Protocol::Http, Protocol::Https, Protocol::Tftp];
        let open = policy(&[], AuthMode::None, false).summary(&everything);
        assert_eq!(
            settings_of(&open),
            [
                "access.allow",
                "auth.mode",
                "tls.require_client_cert",
                "access.device_files"
            ]
        );
        assert!(open.lines()[0].starts_with("http: every peer (the allow-list is empty)"));
        assert!(
            open.lines()[2].ends_with("per-device files served as over HTTP"),
            "{:?}",
            open.lines()
        );

        let tradeoff = policy(&["::1"], AuthMode::Basic, true).summary(&everything);
        assert_eq!(
            settings_of(&tradeoff),
            [
                "auth.mode",
                "access.tftp_device_files",
                "tls.require_client_cert",
                "access.device_files"
            ]
        );
        assert!(tradeoff.warnings[0].message.contains("in clear"));
        assert!(tradeoff.lines()[2].contains("tftp_device_files = true"));

        // Only what runs is described and warned about.
        let tftp_only = policy(&["::1"], AuthMode::Digest, true).summary(&[Protocol::Tftp]);
        assert_eq!(tftp_only.protocols.len(), 1);
        assert_eq!(
            settings_of(&tftp_only),
            ["access.tftp_device_files", "access.device_files"]
        );
        let mut clear = DeskSettings::default();
        clear.access.allow = vec!["::1".into()];
        clear.auth.mode = AuthMode::Digest;
        clear.encryption.mode = provdesk_core::desk::EncryptionMode::Off;
        let clear = AccessPolicy::from_settings(&clear).unwrap();
        assert_eq!(
            settings_of(&clear.summary(&[Protocol::Http])),
            ["encryption.mode"]
        );
        let none = policy(&[], AuthMode::None, false).summary(&[]);
        assert_eq!(none, AccessSummary::default());
    }

    /// A directory that knows a fixed list of addresses.
    struct Known(&'static str, Vec<(&'static str, &'static str)>);

    impl OwnerDirectory for Known {
        fn name(&self) -> &'static str {
            self.0
        }

        fn owner_of(&self, peer: IpAddr) -> Option<Mac> {
            self.1
                .iter()
                .find(|(ip, _)| ip.parse::<IpAddr>().ok() == Some(peer))
                .map(|(_, mac)| mac.parse().unwrap())
        }
    }

    fn mac(text: &str) -> Mac {
        text.parse().unwrap()
    }

    fn bound(directories: Vec<Known>) -> AccessPolicy {
        let mut settings = DeskSettings::default();
        settings.access.device_files = DeviceFiles::Owner;
        let directories = directories
            .into_iter()
            .map(|d| Arc::new(d) as Arc<dyn OwnerDirectory>)
            .collect();
        AccessPolicy::from_settings(&settings)
            .unwrap()
            .with_owners(directories)
    }

    #[test]
    fn device_files_go_to_their_owner_only_when_bound() {
        use ArtifactKind::*;
        let a = mac("000b82aaaaaa");
        let neighbours = || {
            Known(
                "neighbour table",
                vec![
                    ("198.51.100.2", "000b82aaaaaa"),
                    ("198.51.100.3", "000b82bbbbbb"),
                ],
            )
        };
        let p = bound(vec![neighbours()]);
        assert!(p.binds_device_files());
        for kind in [DeviceBinary, DeviceXml] {
            assert_eq!(p.admit_owner(ip("198.51.100.2"), kind, Some(a)), Ok(()));
            assert_eq!(
                p.admit_owner(ip("::ffff:198.51.100.2"), kind, Some(a)),
                Ok(()),
                "a dual-stack socket's spelling of an IPv4 peer"
            );
            let other = p.admit_owner(ip("198.51.100.3"), kind, Some(a));
            assert_eq!(
                other,
                Err(Rule::NotTheOwner {
                    peer: ip("198.51.100.3"),
                    peer_is: Some((mac("000b82bbbbbb"), "neighbour table")),
                    file: Some(a)
                })
            );
            assert_eq!(
                other.unwrap_err().reason(),
                "not the owner: 198.51.100.3 is 000b82bbbbbb (neighbour table), the file is 000b82aaaaaa's ([access] device_files = \"owner\")"
            );
            let unknown = p.admit_owner(ip("192.0.2.9"), kind, Some(a)).unwrap_err();
            assert_eq!(
                unknown.reason(),
                "not the owner: 192.0.2.9 has no MAC this desk knows of, the file is 000b82aaaaaa's ([access] device_files = \"owner\")"
            );
            assert!(p.admit_owner(ip("198.51.100.2"), kind, None).is_err());
        }
        // Shared files are anyone's.
        for kind in [ModelXml, GenericXml, Firmware] {
            assert_eq!(p.admit_owner(ip("192.0.2.9"), kind, None), Ok(()));
        }
        // Unbound (the default): everyone, as before.
        let open = policy(&[], AuthMode::None, false);
        assert!(!open.binds_device_files());
        assert_eq!(
            open.admit_owner(ip("192.0.2.9"), DeviceXml, Some(a)),
            Ok(())
        );
        // Adding a directory to an unbound policy binds nothing.
        let still_open = open.with_owner_directory(Arc::new(neighbours()));
        assert!(!still_open.binds_device_files());
        // The settings alone bind to the system's neighbour table.
        let mut settings = DeskSettings::default();
        settings.access.device_files = DeviceFiles::Owner;
        let system = AccessPolicy::from_settings(&settings).unwrap();
        assert!(system.binds_device_files());
        assert!(
            system
                .admit_owner(ip("192.0.2.77"), DeviceXml, Some(a))
                .is_err()
        );
    }

    #[test]
    fn every_directory_that_knows_the_peer_must_agree() {
        let a = mac("000b82aaaaaa");
        let lease = |ip| Known("DHCP lease", vec![(ip, "000b82aaaaaa")]);
        let wire = |ip, m| Known("neighbour table", vec![(ip, m)]);
        // The lease and the wire agree: served.
        let p = bound(vec![
            lease("198.51.100.50"),
            wire("198.51.100.50", "000b82aaaaaa"),
        ]);
        assert_eq!(
            p.admit_owner(ip("198.51.100.50"), ArtifactKind::DeviceXml, Some(a)),
            Ok(())
        );
        // Leased to A, but another MAC answers from that address: refused, naming it.
        let p = bound(vec![
            lease("198.51.100.50"),
            wire("198.51.100.50", "000b82cccccc"),
        ]);
        let refused = p
            .admit_owner(ip("198.51.100.50"), ArtifactKind::DeviceXml, Some(a))
            .unwrap_err();
        assert!(
            refused
                .reason()
                .contains("198.51.100.50 is 000b82cccccc (neighbour table)"),
            "{}",
            refused.reason()
        );
        // Only one directory knows the peer: its word is enough.
        let p = bound(vec![
            lease("198.51.100.50"),
            wire("198.51.100.60", "000b82dddddd"),
        ]);
        assert_eq!(
            p.admit_owner(ip("198.51.100.50"), ArtifactKind::DeviceBinary, Some(a)),
            Ok(())
        );
        assert_eq!(
            p.with_owner_directory(Arc::new(wire("198.51.100.50", "000b82eeeeee")))
                .admit_owner(ip("198.51.100.50"), ArtifactKind::DeviceBinary, Some(a))
                .map_err(|r| r.reason().contains("000b82eeeeee")),
            Err(true)
        );
    }

    #[test]
    fn the_summary_says_device_files_are_bound() {
        let mut settings = DeskSettings::default();
        settings.access.device_files = DeviceFiles::Owner;
        let p = AccessPolicy::from_settings(&settings).unwrap();
        let summary = p.summary(&[Protocol::Http, Protocol::Tftp]);
        for line in &summary.lines()[..2] {
            assert!(
                line.ends_with(
                    "; per-device files only to the phone with that MAC (by neighbour table)"
                ),
                "{line}"
            );
        }
        let settings_of: Vec<&str> = summary
            .warnings
            .iter()
            .map(|w| w.setting.as_str())
            .collect();
        assert!(
            !settings_of.contains(&"access.device_files"),
            "{settings_of:?}"
        );
        let with_leases = p.with_owner_directory(Arc::new(Known("DHCP lease", vec![])));
        assert!(
            with_leases.summary(&[Protocol::Http]).lines()[0]
                .ends_with("(by neighbour table or DHCP lease)")
        );
        // Unbound: the warning names the trade-off and the setting that closes it.
        let open = policy(&["10.0.0.0/8"], AuthMode::None, false).summary(&[Protocol::Http]);
        let warning = open
            .warnings
            .iter()
            .find(|w| w.setting == "access.device_files")
            .expect("a device_files warning");
        assert!(warning.message.contains("\"owner\""), "{}", warning.message);
        assert!(!open.lines()[0].contains("per-device files only"));
    }
}
