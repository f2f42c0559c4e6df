//! The address phones are given: what P237 (config server) and P192 (firmware server) point
//! at, with P212 (the protocol) and what to put in DHCP option 66, and why. One function, so
//! Settings, the Live screen and the device page tell the same story.
//!
//! The rule, as the builder and `serve` apply it: the settings' `public_host` names the host
//! when set; otherwise the running servers fill it in from the address they listen on
//! (`provdesk_serve::service::server_address`). With neither, it is not known yet. Profiles
//! that set P237/P192/P212 themselves keep their values: the address fills only empty ones.

use std::net::SocketAddr;

use provdesk_core::build::{BuildOptions, Scheme, ServerAddress};
use provdesk_core::desk::DeskSettings;
use provdesk_serve::events::Protocol;
use serde::Serialize;
use ts_rs::TS;

use crate::service::DeskService;

/// Where the address phones are given comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(export)]
pub enum AddressSource {
    /// `[server] public_host` in `provdesk.toml`.
    PublicHost,
    /// The running servers' listen address (no `public_host`).
    ListenAddress,
    /// No `public_host` and no server running.
    Unknown,
}

/// The address phones are given, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct PhoneAddress {
    pub source: AddressSource,
    /// `host[:port][/path]`, the value of P237 and P192 (phones take it without a scheme).
    pub p237: Option<String>,
    /// P212, the protocol phones fetch with: 0 TFTP, 1 HTTP, 2 HTTPS.
    pub p212: Option<String>,
    /// What to put in DHCP option 66 so phones find this server.
    pub option66: Option<String>,
    /// The story in one sentence, the same on every screen.
    pub message: String,
}

/// The address phones are given under `settings`, with `listening` the running servers'
/// bound addresses (`None` while none run).
pub fn phone_address(
    settings: &DeskSettings,
    listening: Option<&[(Protocol, SocketAddr)]>,
) -> PhoneAddress {
    let has_public_host = settings.server.public_host.is_some();
    let server = match listening {
        Some(addresses) => provdesk_serve::service::server_address(settings, addresses),
        None => BuildOptions::from_settings(settings).server,
    };
    let Some(server) = server else {
        return PhoneAddress {
            source: AddressSource::Unknown,
            p237: None,
            p212: None,
            option66: None,
            message: "P237/P192 (where phones fetch config and firmware): not known until the \
                      servers start (they fill it from the address they listen on). Set a public \
                      host to name it now."
                .to_string(),
        };
    };
    let p237 = server.config_path();
    let (source, message) = match (has_public_host, listening.is_some()) {
        (true, true) => (
            AddressSource::PublicHost,
            format!(
                "Phones are given {p237} (P237/P192): the public host from the settings, with the \
                 port the servers listen on."
            ),
        ),
        (true, false) => (
            AddressSource::PublicHost,
            format!(
                "Phones are given {p237} (P237/P192): the public host from the settings, with the \
                 configured port."
            ),
        ),
        (false, _) => (
            AddressSource::ListenAddress,
            format!(
                "Phones are given {p237} (P237/P192): the servers fill it in from the address \
                 they listen on. Set a public host if phones reach this machine by another name."
            ),
        ),
    };
    PhoneAddress {
        source,
        p212: Some(p212(server.scheme).to_string()),
        option66: Some(option66(&server)),
        p237: Some(p237),
        message,
    }
}

fn p212(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Tftp => "0",
        Scheme::Http => "1",
        Scheme::Https => "2",
    }
}

/// Option 66 takes a URL for HTTP(S); for TFTP a bare host, or `tftp://host:port` when the
/// port is not 69.
pub fn option66(server: &ServerAddress) -> String {
    match server.scheme {
        Scheme::Http => format!("http://{}", server.config_path()),
        Scheme::Https => format!("https://{}", server.config_path()),
        Scheme::Tftp if server.port.is_some() => format!("tftp://{}", server.config_path()),
        Scheme::Tftp => server.host.clone(),
    }
}

/// One address of this machine and the interface it belongs to (the Settings form offers
/// them to listen on and as the public host; a generated certificate names them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct InterfaceAddress {
    pub interface: String,
    pub ip: String,
    pub ipv6: bool,
    pub loopback: bool,
}

/// This machine's addresses, IPv4 first, loopback last; empty when the OS will not say.
pub fn interfaces() -> Vec<InterfaceAddress> {
    let mut list: Vec<InterfaceAddress> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_link_local())
        .map(|i| InterfaceAddress {
            ip: i.ip().to_string(),
            ipv6: i.ip().is_ipv6(),
            loopback: i.is_loopback(),
            interface: i.name,
        })
        .collect();
    list.sort_by_key(|i| (i.loopback, i.ipv6, i.interface.clone()));
    list.dedup();
    list
}

impl DeskService {
    /// The address this desk's phones are given now: from the settings, or from the running
    /// servers' listen address.
    pub fn phone_address(&self) -> PhoneAddress {
        let listening = self.listening();
        phone_address(self.desk().settings(), listening.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(public_host: Option<&str>) -> DeskSettings {
        let mut settings = DeskSettings::default();
        settings.server.public_host = public_host.map(str::to_string);
        settings
    }

    #[test]
    fn public_host_wins_and_is_known_before_the_servers_start() {
        let address = phone_address(&settings(Some("192.0.2.7")), None);
        assert_eq!(address.source, AddressSource::PublicHost);
        assert_eq!(address.p237.as_deref(), Some("192.0.2.7:8080"));
        assert_eq!(address.p212.as_deref(), Some("1"));
        assert_eq!(address.option66.as_deref(), Some("http://192.0.2.7:8080"));
        assert!(
            address.message.contains("public host"),
            "{}",
            address.message
        );

        let listening = [(Protocol::Http, "0.0.0.0:40123".parse().unwrap())];
        let running = phone_address(&settings(Some("192.0.2.7")), Some(&listening));
        assert_eq!(running.p237.as_deref(), Some("192.0.2.7:40123"));
    }

    #[test]
    fn without_public_host_the_running_servers_fill_it_in() {
        let listening = [(Protocol::Http, "127.0.0.1:40123".parse().unwrap())];
        let address = phone_address(&settings(None), Some(&listening));
        assert_eq!(address.source, AddressSource::ListenAddress);
        assert_eq!(address.p237.as_deref(), Some("127.0.0.1:40123"));
        assert!(
            address
                .message
                .contains("fill it in from the address they listen on"),
            "{}",
            address.message
        );
    }

    #[test]
    fn without_either_it_is_not_known_yet_and_says_why() {
        let address = phone_address(&settings(None), None);
        assert_eq!(address.source, AddressSource::Unknown);
        assert_eq!(address.p237, None);
        assert!(
            address.message.contains(
                "not known until the servers start (they fill it from the address they listen on)"
            ),
            "{}",
            address.message
        );
        assert!(!address.message.contains("are not filled in"));
    }

    #[test]
    fn option66_for_tftp_is_a_bare_host_on_port_69() {
        let server = ServerAddress {
            scheme: Scheme::Tftp,
            host: "192.0.2.1".into(),
            port: None,
            base_path: "/".into(),
        };
        assert_eq!(option66(&server), "192.0.2.1");
        let server = ServerAddress {
            port: Some(6969),
            ..server
        };
        assert_eq!(option66(&server), "tftp://192.0.2.1:6969");
    }
}
