//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz) and for their corpus replay in
//! `tests/fuzz_corpus.rs`: the same function runs under libFuzzer and in CI, so a crasher kept
//! in `fuzz/regressions/` stays a test.
//!
//! Each function takes arbitrary bytes, runs one parser against a small fixed build held in
//! memory and panics only when a property the servers rely on breaks: a parser panics, a file
//! outside the build is served, a response head is malformed or smuggles a header, a forged
//! credential is accepted or a captured one replays. Not a stable API for anything but the
//! fuzzer.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use md5::{Digest, Md5};
use provdesk_core::Mac;
use provdesk_core::build::{
    ArtifactKind, CredentialTable, HttpCredentials, Manifest, ManifestEntry,
};
use provdesk_core::desk::{AuthMode, AuthSettings};

use crate::events::{EventBus, Protocol};
use crate::http::auth::{AuthRequest, Authenticator};
use crate::http::handler::{Handler, percent_decode, shown};
use crate::http::plain::fuzz_connection;
use crate::http::{HttpConfig, parse_user_agent};
use crate::store::{ArtifactStore, Resolution, Snapshot, mac_in_name, normalize_name};

/// A target: the name of its folder under `fuzz/corpus/` and its harness.
pub type Target = (&'static str, fn(&[u8]));

/// Every target of this crate.
pub const TARGETS: &[Target] = &[
    ("http_head", http_head),
    ("request_name", request_name),
    ("user_agent", user_agent),
    ("digest", digest),
    ("sip_message", sip_message),
];

const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 5060);
const USER: &str = "admin";
const PASSWORD: &str = "s3cret";
/// What a Digest header may carry in place of a nonce, so the fuzzer gets past the nonce
/// check: the harness puts a nonce this server run issued there.
const NONCE_PLACEHOLDER: &[u8] = b"NONCE";

/// The build every target serves: one device's three files, a model file, the generic file,
/// a firmware image large enough for ranges, and a manifest entry whose file is not loaded.
struct Fixture {
    bodies: BTreeMap<&'static str, Bytes>,
    store: Arc<ArtifactStore>,
    /// No authentication: requests reach the resolver and the range code.
    open: Handler,
    /// Digest with the generic credentials: nothing is served without the password.
    guarded: Handler,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mac: Mac = "000b82123456"
            .parse()
            .ok()
            .unwrap_or(Mac::from_bytes([0; 6]));
        let firmware: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
        let files: [(&str, ArtifactKind, Option<Mac>, Bytes); 5] = [
            (
                "cfg000b82123456.xml",
                ArtifactKind::DeviceXml,
                Some(mac),
                Bytes::from_static(b"<gs_provision><config><P2>x</P2></config></gs_provision>"),
            ),
            (
                "cfg000b82123456",
                ArtifactKind::DeviceBinary,
                Some(mac),
                Bytes::from_static(b"\0\0\0\x0cbinary-cfg"),
            ),
            (
                "cfggxp2170.xml",
                ArtifactKind::ModelXml,
                None,
                Bytes::from_static(b"<gs_provision>model</gs_provision>"),
            ),
            (
                "cfg.xml",
                ArtifactKind::GenericXml,
                None,
                Bytes::from_static(b"<gs_provision>generic</gs_provision>"),
            ),
            (
                "gxp2170fw.bin",
                ArtifactKind::Firmware,
                None,
                Bytes::from(firmware),
            ),
        ];
        let mut manifest = Manifest::default();
        let mut bodies = HashMap::new();
        let mut by_name = BTreeMap::new();
        for (name, kind, mac, body) in files {
            let file = format!("build/{name}");
            manifest
                .entries
                .insert(name.to_string(), entry(&file, kind, mac, &body));
            bodies.insert(file, body.clone());
            by_name.insert(name, body);
        }
        // In the manifest, but its bytes were never loaded (a firmware still being copied).
        manifest.entries.insert(
            "cfg000b82999999.xml".into(),
            entry(
                "build/cfg000b82999999.xml",
                ArtifactKind::DeviceXml,
                None,
                b"gone",
            ),
        );
        let credentials = CredentialTable {
            generic: Some(HttpCredentials {
                user: USER.into(),
                password: PASSWORD.into(),
            }),
            ..CredentialTable::default()
        };
        let store = Arc::new(ArtifactStore::new(Snapshot::from_bodies(
            manifest,
            credentials,
            bodies,
        )));
        let events = EventBus::new(16);
        let open = HttpConfig::new(Protocol::Http);
        let mut guarded = HttpConfig::new(Protocol::Http);
        guarded.auth = digest_settings();
        Fixture {
            bodies: by_name,
            open: Handler::new(&open, "/".into(), Arc::clone(&store), events.clone()),
            guarded: Handler::new(&guarded, "/".into(), Arc::clone(&store), events),
            store,
        }
    })
}

fn entry(file: &str, kind: ArtifactKind, mac: Option<Mac>, body: &[u8]) -> ManifestEntry {
    ManifestEntry {
        file: file.into(),
        hash: hex::encode(sha2::Sha256::digest(body)),
        input: String::new(),
        version: 1,
        kind,
        mac,
        model: None,
        encrypted: false,
        size: body.len() as u64,
    }
}

fn digest_settings() -> AuthSettings {
    AuthSettings {
        mode: AuthMode::Digest,
        ..AuthSettings::default()
    }
}

/// The bytes of one plain-HTTP connection: pipelined heads, each answered by the handler
/// without and with authentication. Every response head is well formed and carries no
/// header line the handler did not set; only files of the build are served, whole or as the
/// range asked; nothing is served without the password when authentication is on.
pub fn http_head(data: &[u8]) {
    let fixture = fixture();
    for exchange in fuzz_connection(data, &fixture.open, PEER) {
        check_response_head(&exchange.head);
        let status = exchange.status.as_u16();
        assert!(status < 500, "server error {status} for a client's request");
        let is_head = exchange.method.as_ref() == Some(&http::Method::HEAD);
        if is_head {
            assert!(exchange.body.is_empty(), "a HEAD response with a body");
        } else if status != 304 {
            assert_eq!(
                content_length(&exchange.head),
                Some(exchange.body.len()),
                "Content-Length is not the body's length"
            );
        }
        if !is_head && (status == 200 || status == 206) {
            let body = exchange.body.as_slice();
            let served = fixture.bodies.values().any(|file| {
                if status == 200 {
                    file.as_ref() == body
                } else {
                    !body.is_empty() && file.windows(body.len()).any(|w| w == body)
                }
            });
            assert!(
                served,
                "status {status} with a body that is no file of the build"
            );
        }
    }
    for exchange in fuzz_connection(data, &fixture.guarded, PEER) {
        check_response_head(&exchange.head);
        let status = exchange.status.as_u16();
        assert!(
            !(200..300).contains(&status) && status != 304,
            "status {status} without the password"
        );
    }
}

/// `HTTP/1.1 <status>`, header lines, one blank line at the very end: a bare LF or an early
/// blank line would let a request's bytes split the response.
fn check_response_head(head: &[u8]) {
    assert!(head.starts_with(b"HTTP/1.1 "), "bad status line: {head:?}");
    assert!(
        head.ends_with(b"\r\n\r\n"),
        "head does not end with CRLF CRLF"
    );
    let end = head.len() - 4;
    assert!(
        head[..end].windows(4).all(|w| w != b"\r\n\r\n"),
        "a blank line inside the response head"
    );
    for (i, &b) in head.iter().enumerate() {
        match b {
            b'\n' => assert!(
                i > 0 && head[i - 1] == b'\r',
                "bare LF in the response head"
            ),
            b'\r' => assert_eq!(
                head.get(i + 1),
                Some(&b'\n'),
                "bare CR in the response head"
            ),
            _ => {}
        }
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// A requested name as HTTP (percent-decoded) and TFTP (as sent) hand it to the resolver:
/// a rejected name is one [`normalize_name`] refuses and nothing else; a found one is a file
/// of the build, whole; an accepted name can address nothing outside the flat build folder;
/// a MAC read from a name is spelled in it.
pub fn request_name(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    check_name(&raw);
    match percent_decode(&raw) {
        Ok(decoded) => {
            for forbidden in ['/', '\\', '\0'] {
                assert!(
                    raw.contains(forbidden) || !decoded.contains(forbidden),
                    "decoding made a {forbidden:?} out of an escape"
                );
            }
            check_name(&decoded);
        }
        Err(reason) => assert!(!reason.is_empty()),
    }
}

fn check_name(name: &str) {
    let fixture = fixture();
    let normalized = normalize_name(name);
    if let Ok(flat) = &normalized {
        assert!(
            flat.len() <= crate::store::MAX_NAME_LEN,
            "over-long name accepted"
        );
        assert!(
            !flat.contains("..")
                && !flat.contains(['/', '\\', ':'])
                && !flat.starts_with('.')
                && !flat.chars().any(char::is_control),
            "dangerous name accepted: {flat:?}"
        );
        assert_eq!(*flat, flat.to_ascii_lowercase(), "name not lowercased");
    }
    let snapshot = fixture.store.snapshot();
    match snapshot.resolve(name) {
        Resolution::Rejected { reason } => {
            assert!(
                normalized.is_err(),
                "{name:?} rejected ({reason}) but normalizes"
            )
        }
        Resolution::Found(found) => {
            assert_eq!(normalized.as_ref().ok(), Some(&found.name));
            let body = fixture.bodies.get(found.name.as_str());
            assert_eq!(
                body,
                Some(&found.body),
                "found {} with another body",
                found.name
            );
        }
        Resolution::NotFound { name: missing, .. } => {
            assert_eq!(normalized.as_ref().ok(), Some(&missing));
            assert!(
                !fixture.bodies.contains_key(missing.as_str()),
                "{missing} not found"
            );
        }
    }
    if let Some(mac) = mac_in_name(name) {
        let spelled = format!("cfg{}", mac.hex().as_str());
        assert!(
            name.to_ascii_lowercase().contains(&spelled),
            "MAC {mac} read from {name:?}, which does not spell it"
        );
    }
}

/// A User-Agent header as the handler reads it (escaped for the event first): no panic, and
/// what is read is a plausible phone (a lowercase model; the text shown is bounded and has no
/// control characters).
pub fn user_agent(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    const MAX: usize = 256;
    let escaped = shown(&raw, MAX);
    // The cut adds '…'; an escape sequence (`\u{10ffff}`) can overshoot by one item.
    assert!(
        escaped.len() <= MAX + 16,
        "shown text of {} bytes",
        escaped.len()
    );
    assert!(
        !escaped.chars().any(char::is_control),
        "a control character reached the shown text"
    );
    for text in [raw.as_ref(), escaped.as_str()] {
        if let Some(agent) = parse_user_agent(text) {
            assert!(!agent.model.is_empty(), "empty model from {text:?}");
            assert_eq!(agent.model, agent.model.to_ascii_lowercase());
            assert!(text.contains("DevId"), "a MAC without DevId in {text:?}");
        }
    }
}

/// An `Authorization` header against Digest and Basic authentication. The input may say
/// `NONCE` where a nonce goes; it is replaced by one this server issued, so the fuzzer reaches
/// the checks behind the nonce. A header the fuzzer made up is never accepted by Digest (it
/// cannot know the password's hash), and a correct one built from the input's fields (uri,
/// cnonce and nc, split at newlines) is accepted at most once.
pub fn digest(data: &[u8]) {
    let now = 1_800_000_000;
    let digest = Authenticator::new(&digest_settings());
    let basic = Authenticator::new(&AuthSettings {
        mode: AuthMode::Basic,
        ..AuthSettings::default()
    });
    let expected = HttpCredentials {
        user: USER.into(),
        password: PASSWORD.into(),
    };
    let mut request = AuthRequest {
        method: "GET",
        uri: "/cfg000b82123456.xml",
        authorization: None,
        peer: PEER.ip(),
        now,
    };
    let nonce = issued_nonce(&digest, &request);
    let header = replace_all(data, NONCE_PLACEHOLDER, nonce.as_bytes());
    request.authorization = Some(&header);
    assert!(
        digest.check(&request, Some(&expected)).is_err(),
        "Digest accepted a made-up header: {:?}",
        String::from_utf8_lossy(&header)
    );
    // Basic may rightly accept `admin:s3cret`; it must only not panic.
    let _ = basic.check(&request, Some(&expected));

    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\n');
    let uri = fields.next().unwrap_or_default();
    let cnonce = fields.next().unwrap_or_default();
    let nc = fields.next().unwrap_or_default();
    let header = correct_header(uri, cnonce, nc, &nonce);
    let request = AuthRequest {
        uri,
        authorization: Some(header.as_bytes()),
        ..request
    };
    if digest.check(&request, Some(&expected)).is_ok() {
        assert!(
            digest.check(&request, Some(&expected)).is_err(),
            "the same Digest header was accepted twice: {header}"
        );
    }
}

/// The `Authorization` a phone that knows the password sends for `GET uri` (qop=auth, MD5).
fn correct_header(uri: &str, cnonce: &str, nc: &str, nonce: &str) -> String {
    let response = md5_hex(&format!(
        "{}:{nonce}:{nc}:{cnonce}:auth:{}",
        md5_hex(&format!("{USER}:ProvDesk:{PASSWORD}")),
        md5_hex(&format!("GET:{uri}"))
    ));
    format!(
        "Digest username=\"{USER}\", realm=\"ProvDesk\", nonce=\"{nonce}\", uri=\"{}\", \
         qop=auth, nc={nc}, cnonce=\"{}\", response=\"{response}\"",
        quoted(uri),
        quoted(cnonce)
    )
}

/// A nonce from a challenge this authenticator issued.
fn issued_nonce(auth: &Authenticator, request: &AuthRequest<'_>) -> String {
    let challenge = auth.challenge(request, false);
    let text = challenge.to_str().unwrap_or_default();
    text.split_once("nonce=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(nonce, _)| nonce.to_string())
        .unwrap_or_default()
}

fn replace_all(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

fn quoted(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

/// A datagram on the plug-and-play port: the SIP codec and the responder. Properties: no
/// panic; whatever the responder sends parses again, answers the request's Call-ID, and a
/// NOTIFY carries exactly the URL.
pub fn sip_message(data: &[u8]) {
    use crate::pnp::Responder;
    use provdesk_sip::Message;
    const URL: &str = "http://192.0.2.1:8080/";
    if let Ok(message) = Message::parse(data) {
        let again = Message::parse(&message.to_bytes());
        assert!(again.is_ok(), "our own output does not parse: {again:?}");
    }
    notify_client_reads(data);
    let responder = Responder::new(PNP_LOCAL, URL.into());
    let Some(answer) = responder.handle(data, PEER) else {
        return;
    };
    let request = Message::parse(data).ok();
    let call_id = request.as_ref().and_then(|r| r.call_id());
    for (_, datagram) in &answer.datagrams {
        let sent = Message::parse(datagram);
        let Ok(sent) = sent else {
            panic!("the responder sent what does not parse: {sent:?}");
        };
        assert_eq!(sent.call_id(), call_id, "another dialog");
        if sent.method() == Some("NOTIFY") {
            assert_eq!(sent.body, URL.as_bytes());
        }
    }
}

/// The re-provision client takes `data` as a phone's answer (again and again, as a phone
/// could send it): it never panics, whatever it sends parses, and it answers a challenge at
/// most twice (once more only for a stale nonce).
fn notify_client_reads(data: &[u8]) {
    use provdesk_sip::Message;
    use provdesk_sip::digest::Credentials;
    use provdesk_sip::transaction::{NotifyClient, NotifyRequest, Retransmit, Step};
    let now = std::time::Instant::now();
    let request = NotifyRequest {
        target: "192.0.2.7:5060".parse().expect("an address"),
        local: std::net::SocketAddr::V4(PNP_LOCAL),
        user: Some("201".into()),
        event: "check-sync".into(),
        // Fixed, so a seed can hold a matching answer (branch z9hG4bKfuzz.1, Call-ID
        // fuzz@192.0.2.1).
        token: "fuzz".into(),
        cnonce: "c".into(),
    };
    let credentials = Credentials {
        user: USER.into(),
        password: PASSWORD.into(),
    };
    let (mut client, _) = NotifyClient::new(request, Some(credentials), Retransmit::RESYNC, now);
    let mut answers = 0;
    for _ in 0..4 {
        match client.on_datagram(data, now) {
            Step::Send(datagram) => {
                answers += 1;
                let sent = String::from_utf8_lossy(&datagram).into_owned();
                assert!(
                    Message::parse(&datagram).is_ok(),
                    "sent what does not parse"
                );
                assert!(!sent.contains(PASSWORD), "the password left in clear");
            }
            Step::Wait | Step::Done(_) => break,
        }
    }
    assert!(answers <= 2, "answered {answers} challenges");
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = provdesk_sip::digest::Challenge::parse(text);
    }
}

const PNP_LOCAL: std::net::SocketAddrV4 =
    std::net::SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 5060);

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness must reach what it claims to check: a phone's request is served, a
    /// traversal is not, and authentication turns the same request away.
    #[test]
    fn the_fixture_serves_a_phone_and_refuses_a_traversal() {
        let fixture = fixture();
        let request = b"GET /cfg000b82123456.xml HTTP/1.1\r\nHost: x\r\n\r\n\
                        GET /gxp2170fw.bin HTTP/1.1\r\nRange: bytes=10-19\r\n\r\n\
                        GET /%2e%2e/etc/passwd HTTP/1.1\r\nConnection: close\r\n\r\n";
        let statuses: Vec<u16> = fuzz_connection(request, &fixture.open, PEER)
            .iter()
            .map(|e| e.status.as_u16())
            .collect();
        assert_eq!(statuses, [200, 206, 400]);
        let guarded: Vec<u16> = fuzz_connection(request, &fixture.guarded, PEER)
            .iter()
            .map(|e| e.status.as_u16())
            .collect();
        assert_eq!(guarded, [401, 401, 400]);
        http_head(request);
    }

    /// The accepted-once check is only worth something if the header it builds is accepted.
    #[test]
    fn a_correct_digest_header_is_accepted_once() {
        let auth = Authenticator::new(&digest_settings());
        let expected = HttpCredentials {
            user: USER.into(),
            password: PASSWORD.into(),
        };
        let mut request = AuthRequest {
            method: "GET",
            uri: "/cfg.xml",
            authorization: None,
            peer: PEER.ip(),
            now: 1_800_000_000,
        };
        let nonce = issued_nonce(&auth, &request);
        let header = correct_header("/cfg.xml", "ab\"c", "00000001", &nonce);
        request.authorization = Some(header.as_bytes());
        assert_eq!(auth.check(&request, Some(&expected)), Ok(()));
        assert!(auth.check(&request, Some(&expected)).is_err());
    }
}
