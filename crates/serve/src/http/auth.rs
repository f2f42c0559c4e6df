//! HTTP authentication with the phones' own P1360/P1361 credentials: Basic (RFC 7617) and
//! Digest (RFC 7616, MD5 with `qop=auth`, and RFC 2069 clients that send no qop).
//!
//! Invariants: a password or an `Authorization` value never appears in a reason, an event or
//! a log line; reasons name a user only when it is the device's own (an unknown name is often
//! a password typed into the wrong field, so it is never echoed); a captured Digest header
//! cannot be replayed (counts must rise with `qop`, a nonce without `qop` is single-use);
//! secrets are compared in constant time; nonces
//! are stateless (`base64(ts ‖ salt ‖ HMAC-SHA256(key, ts ‖ salt ‖ client ip))`) so a
//! restart or a flood costs no memory (the random salt keeps two challenges in one second
//! apart, or two clients would share a nonce and trip each other's replay check), and only the replay counters live in a small bounded map. Time comes in
//! as a parameter so every rule is testable without waiting.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac as _};
use http::HeaderValue;
use provdesk_core::build::HttpCredentials;
use provdesk_core::desk::{AuthMode, AuthSettings};
use provdesk_sip::digest::{self, Algorithm, DigestInput};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How long a nonce stays valid; a phone fetches its files within seconds of the challenge.
pub const NONCE_TTL_SECS: u64 = 300;
/// Nonces whose replay counter is remembered; beyond this the oldest are forgotten, and every
/// nonce issued no later than a forgotten one is answered `stale=true` (the client takes a
/// new nonce), so forgetting never reopens a replay.
const MAX_TRACKED_NONCES: usize = 4096;
/// Timestamp (8 bytes) + random salt (8 bytes) + truncated HMAC (16 bytes).
const NONCE_BYTES: usize = 32;
/// Longest user name shown in a reason; the rest is cut so a hostile header cannot bloat logs.
const MAX_SHOWN_USER: usize = 64;

/// What a request needs to be authenticated, taken from its head.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    pub method: &'a str,
    /// The request target as sent (`/cfg.xml?x=1`), which Digest's `uri` must equal.
    pub uri: &'a str,
    pub authorization: Option<&'a [u8]>,
    pub peer: IpAddr,
    /// Unix seconds.
    pub now: u64,
}

/// Why a request was refused, and the challenge to send with the 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: String,
    pub challenge: HeaderValue,
}

/// Checks requests against the credentials the build expects.
pub struct Authenticator {
    mode: AuthMode,
    /// Already escaped for a quoted-string.
    realm: String,
    realm_raw: String,
    key: [u8; 32],
    opaque: String,
    counts: Mutex<NonceCounts>,
}

/// The uses seen of each nonce, bounded.
#[derive(Debug, Default)]
struct NonceCounts {
    by_nonce: HashMap<String, NonceCount>,
    /// The newest issue time among nonces forgotten before they expired.
    forgotten_up_to: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct NonceCount {
    /// The highest `nc` accepted; `u32::MAX` once a nonce without `qop` was used.
    last_nc: u32,
    issued: u64,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key signs nonces; keep it out of debug output.
        f.debug_struct("Authenticator")
            .field("mode", &self.mode)
            .field("realm", &self.realm_raw)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// A fresh random nonce key per server run: nonces from an earlier run are answered with
    /// `stale=true`, so phones retry without failing.
    pub fn new(settings: &AuthSettings) -> Authenticator {
        let key: [u8; 32] = rand::random();
        let opaque: [u8; 16] = rand::random();
        Authenticator::with_key(settings, key, URL_SAFE_NO_PAD.encode(opaque))
    }

    fn with_key(settings: &AuthSettings, key: [u8; 32], opaque: String) -> Authenticator {
        Authenticator {
            mode: settings.mode,
            realm: quote_escape(&settings.realm),
            realm_raw: settings.realm.clone(),
            key,
            opaque,
            counts: Mutex::new(NonceCounts::default()),
        }
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// `Ok` when the request may proceed. With authentication on, a request for which the
    /// build has no P1360/P1361 is refused: a desk that turns authentication on must set
    /// them (the global layer's values cover phones the inventory does not know).
    pub fn check(
        &self,
        request: &AuthRequest<'_>,
        expected: Option<&HttpCredentials>,
    ) -> Result<(), Denial> {
        if self.mode == AuthMode::None {
            return Ok(());
        }
        let Some(expected) = expected else {
            return Err(self.deny("no P1360/P1361 configured for this device", request));
        };
        let Some(header) = request.authorization else {
            let reason = match self.mode {
                AuthMode::Digest => "no credentials sent; challenged for Digest",
                _ => "no credentials sent; challenged for Basic",
            };
            return Err(self.deny(reason, request));
        };
        let (scheme, rest) = split_scheme(header);
        match (self.mode, scheme) {
            (AuthMode::Basic, Scheme::Basic) => self.check_basic(rest, expected, request),
            (AuthMode::Digest, Scheme::Digest) => self.check_digest(rest, expected, request),
            (AuthMode::Digest, _) => {
                Err(self.deny("expected Digest credentials, got another scheme", request))
            }
            _ => Err(self.deny("expected Basic credentials, got another scheme", request)),
        }
    }

    fn check_basic(
        &self,
        encoded: &[u8],
        expected: &HttpCredentials,
        request: &AuthRequest<'_>,
    ) -> Result<(), Denial> {
        let Ok(decoded) = STANDARD.decode(trim(encoded)) else {
            return Err(self.deny("malformed Basic credentials (not base64)", request));
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return Err(self.deny("malformed Basic credentials (no ':')", request));
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let user_ok = user.ct_eq(expected.user.as_bytes());
        let password_ok = password.ct_eq(expected.password.as_bytes());
        if !bool::from(user_ok) {
            // Not named: what lands in the user field is often the password.
            return Err(self.deny("unknown user", request));
        }
        if !bool::from(password_ok) {
            let reason = format!("wrong password for user {}", shown_user(user));
            return Err(self.deny(&reason, request));
        }
        Ok(())
    }

    fn check_digest(
        &self,
        params: &[u8],
        expected: &HttpCredentials,
        request: &AuthRequest<'_>,
    ) -> Result<(), Denial> {
        let params = match DigestParams::parse(params) {
            Ok(params) => params,
            Err(what) => {
                let reason = format!("malformed Digest credentials: {what}");
                return Err(self.deny(&reason, request));
            }
        };
        let algorithm = match params.algorithm.as_deref() {
            None => Algorithm::Md5,
            Some(name) => match Algorithm::parse(name) {
                Some(algorithm) => algorithm,
                None => return Err(self.deny("unsupported Digest algorithm", request)),
            },
        };
        if params.realm != self.realm_raw {
            return Err(self.deny("Digest realm is not this server's", request));
        }
        let user = params.username.as_bytes();
        if !bool::from(user.ct_eq(expected.user.as_bytes())) {
            // Not named: what lands in the user field is often the password.
            return Err(self.deny("unknown user", request));
        }
        // The uri the client hashed must be this request's, or a captured response could be
        // replayed against another file.
        if !uri_matches(&params.uri, request.uri) {
            return Err(self.deny("Digest uri does not match the request", request));
        }
        let qop = match params.qop.as_deref() {
            None => None,
            Some("auth") => Some("auth"),
            Some(_) => return Err(self.deny("unsupported Digest qop", request)),
        };
        let nc = match (qop, &params.nc, &params.cnonce) {
            (None, _, _) => None,
            (Some(_), Some(nc), Some(_)) => match parse_nc(nc) {
                Some(nc) => Some(nc),
                None => return Err(self.deny("malformed Digest credentials: nc", request)),
            },
            _ => {
                return Err(self.deny(
                    "malformed Digest credentials: qop without nc or cnonce",
                    request,
                ));
            }
        };
        let computed = digest::response(
            algorithm,
            &DigestInput {
                user: &params.username,
                realm: &params.realm,
                password: &expected.password,
                method: request.method,
                uri: &params.uri,
                nonce: &params.nonce,
                nc: params.nc.as_deref().unwrap_or(""),
                cnonce: params.cnonce.as_deref().unwrap_or(""),
                qop,
            },
        );
        let sent = params.response.to_ascii_lowercase();
        if !bool::from(computed.as_bytes().ct_eq(sent.as_bytes())) {
            let reason = format!("wrong password for user {}", shown_user(user));
            return Err(self.deny(&reason, request));
        }
        // The password is right; from here on a refusal asks the client to retry with a new
        // nonce (`stale=true`) instead of asking a person for the password again.
        let Some(issued) = self.nonce_issued(&params.nonce, request.peer) else {
            return Err(self.deny_stale("nonce not issued by this server run", request));
        };
        if request.now.saturating_sub(issued) > NONCE_TTL_SECS || issued > request.now + 60 {
            return Err(self.deny_stale("nonce expired", request));
        }
        if params.opaque.as_deref().is_some_and(|o| o != self.opaque) {
            return Err(self.deny_stale("opaque does not match", request));
        }
        // Without `qop` (RFC 2069) the response covers only the nonce, method and uri, so the
        // same header would be valid again and again: such a nonce is good for one request.
        // We keep accepting those clients rather than require `qop=auth`: Grandstream phones
        // answer our `qop="auth"` challenge with `qop=auth` and are not touched by this, and an
        // old client without `qop` keeps working at the cost of one more challenge round trip
        // (`stale=true`, no password prompt) per request, where requiring qop would lock it out.
        if !self.record_use(&params.nonce, nc, issued, request.now) {
            let reason = match nc {
                Some(_) => "nonce count replayed",
                None => "nonce without qop used twice",
            };
            return Err(self.deny_stale(reason, request));
        }
        Ok(())
    }

    fn make_nonce(&self, peer: IpAddr, now: u64) -> String {
        let salt: [u8; 8] = rand::random();
        let mut bytes = [0u8; NONCE_BYTES];
        bytes[..8].copy_from_slice(&now.to_be_bytes());
        bytes[8..16].copy_from_slice(&salt);
        let mac = self.nonce_mac(&bytes[..16], peer);
        bytes[16..].copy_from_slice(&mac[..16]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// HMAC over the nonce's timestamp and salt (`stamp`) and the client address.
    fn nonce_mac(&self, stamp: &[u8], peer: IpAddr) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)
            .expect("HMAC-SHA256 takes a key of any length");
        mac.update(stamp);
        match peer.to_canonical() {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        mac.finalize().into_bytes().into()
    }

    /// When this server issued `nonce` to `peer`, or `None` if it did not.
    fn nonce_issued(&self, nonce: &str, peer: IpAddr) -> Option<u64> {
        let bytes = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        if bytes.len() != NONCE_BYTES {
            return None;
        }
        let ts = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let mac = self.nonce_mac(&bytes[..16], peer);
        bool::from(mac[..16].ct_eq(&bytes[16..])).then_some(ts)
    }

    /// Accepts a use of `nonce`: with `qop`, only if `nc` is above every count seen for it;
    /// without (`nc` is `None`), only if the nonce was never used.
    fn record_use(&self, nonce: &str, nc: Option<u32>, issued: u64, now: u64) -> bool {
        let mut counts = match self.counts.lock() {
            Ok(guard) => guard,
            // Counters are plain numbers; a panic elsewhere cannot leave them inconsistent.
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(seen) = counts.by_nonce.get_mut(nonce) {
            return match nc {
                Some(nc) if nc > seen.last_nc => {
                    seen.last_nc = nc;
                    true
                }
                _ => false,
            };
        }
        // Not remembered: maybe forgotten after a use, so not trusted unless issued later.
        if counts.forgotten_up_to.is_some_and(|up_to| issued <= up_to) {
            return false;
        }
        if counts.by_nonce.len() >= MAX_TRACKED_NONCES {
            // Expired nonces are refused before they get here: forgetting them is free.
            counts
                .by_nonce
                .retain(|_, c| now.saturating_sub(c.issued) <= NONCE_TTL_SECS);
            if counts.by_nonce.len() >= MAX_TRACKED_NONCES
                && let Some((oldest, issued)) = counts
                    .by_nonce
                    .iter()
                    .min_by_key(|(_, c)| c.issued)
                    .map(|(k, c)| (k.clone(), c.issued))
            {
                counts.by_nonce.remove(&oldest);
                counts.forgotten_up_to = counts.forgotten_up_to.max(Some(issued));
            }
        }
        counts.by_nonce.insert(
            nonce.to_string(),
            NonceCount {
                last_nc: nc.unwrap_or(u32::MAX),
                issued,
            },
        );
        true
    }

    fn deny(&self, reason: &str, request: &AuthRequest<'_>) -> Denial {
        Denial {
            reason: reason.to_string(),
            challenge: self.challenge(request, false),
        }
    }

    fn deny_stale(&self, reason: &str, request: &AuthRequest<'_>) -> Denial {
        Denial {
            reason: format!("{reason}; challenged again with stale=true"),
            challenge: self.challenge(request, true),
        }
    }

    /// The `WWW-Authenticate` value for this server's mode.
    pub fn challenge(&self, request: &AuthRequest<'_>, stale: bool) -> HeaderValue {
        let text = match self.mode {
            AuthMode::Digest => {
                let nonce = self.make_nonce(request.peer, request.now);
                let stale = if stale { ", stale=true" } else { "" };
                format!(
                    "Digest realm=\"{}\", qop=\"auth\", algorithm=MD5, nonce=\"{nonce}\", opaque=\"{}\"{stale}",
                    self.realm, self.opaque
                )
            }
            _ => format!("Basic realm=\"{}\", charset=\"UTF-8\"", self.realm),
        };
        // Every part is printable ASCII by construction (the realm is escaped).
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("Basic"))
    }
}

fn parse_nc(nc: &str) -> Option<u32> {
    if nc.len() != 8 {
        return None;
    }
    u32::from_str_radix(nc, 16).ok()
}

/// Some clients send an absolute URI in `uri`; its path and query must still be ours.
fn uri_matches(digest_uri: &str, request_target: &str) -> bool {
    if digest_uri == request_target {
        return true;
    }
    digest_uri
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.path_and_query().map(|pq| pq.as_str() == request_target))
        .unwrap_or(false)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Basic,
    Digest,
    Other,
}

fn split_scheme(header: &[u8]) -> (Scheme, &[u8]) {
    let header = trim(header);
    let end = header
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(header.len());
    let (scheme, rest) = header.split_at(end);
    let scheme = if scheme.eq_ignore_ascii_case(b"basic") {
        Scheme::Basic
    } else if scheme.eq_ignore_ascii_case(b"digest") {
        Scheme::Digest
    } else {
        Scheme::Other
    };
    (scheme, rest)
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

#[derive(Debug, Default)]
struct DigestParams {
    username: String,
    realm: String,
    nonce: String,
    uri: String,
    response: String,
    algorithm: Option<String>,
    cnonce: Option<String>,
    opaque: Option<String>,
    qop: Option<String>,
    nc: Option<String>,
}

impl DigestParams {
    /// Parses `k=v, k="v"` pairs; quoted strings may contain `\"` and commas.
    fn parse(bytes: &[u8]) -> Result<DigestParams, &'static str> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8")?;
        let mut params = DigestParams::default();
        let mut seen = (false, false, false, false, false);
        for (key, value) in digest::parse_params(text)? {
            match key.as_str() {
                "username" => (params.username, seen.0) = (value, true),
                "realm" => (params.realm, seen.1) = (value, true),
                "nonce" => (params.nonce, seen.2) = (value, true),
                "uri" => (params.uri, seen.3) = (value, true),
                "response" => (params.response, seen.4) = (value, true),
                "algorithm" => params.algorithm = Some(value),
                "cnonce" => params.cnonce = Some(value),
                "opaque" => params.opaque = Some(value),
                "qop" => params.qop = Some(value),
                "nc" => params.nc = Some(value),
                // Unknown parameters (userhash, charset, …) are ignored as RFC 7616 asks.
                _ => {}
            }
        }
        match seen {
            (true, true, true, true, true) => Ok(params),
            _ => Err("username, realm, nonce, uri and response are required"),
        }
    }
}

fn quote_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || !c.is_ascii() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// A user name as it may appear in a reason: control characters escaped, length bounded.
fn shown_user(user: &[u8]) -> String {
    super::handler::shown(&String::from_utf8_lossy(user), MAX_SHOWN_USER)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn settings(mode: AuthMode, realm: &str) -> AuthSettings {
        AuthSettings {
            mode,
            realm: realm.into(),
        }
    }

    fn creds(user: &str, password: &str) -> HttpCredentials {
        HttpCredentials {
            user: user.into(),
            password: password.into(),
        }
    }

    fn request<'a>(uri: &'a str, authorization: Option<&'a str>, now: u64) -> AuthRequest<'a> {
        AuthRequest {
            method: "GET",
            uri,
            authorization: authorization.map(str::as_bytes),
            peer: "127.0.0.1".parse().unwrap(),
            now,
        }
    }

    /// The client side of Digest, as a phone computes it.
    fn digest_header(
        auth: &Authenticator,
        user: &str,
        password: &str,
        uri: &str,
        nc: u32,
    ) -> String {
        let challenge = auth.challenge(&request(uri, None, NOW), false);
        let challenge = challenge.to_str().unwrap();
        let nonce = challenge
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let nc = format!("{nc:08x}");
        let response = digest::response(
            Algorithm::Md5,
            &DigestInput {
                user,
                realm: &auth.realm_raw,
                password,
                method: "GET",
                uri,
                nonce,
                nc: &nc,
                cnonce: "abc",
                qop: Some("auth"),
            },
        );
        format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             algorithm=MD5, response=\"{response}\", qop=auth, nc={nc}, cnonce=\"abc\", opaque=\"{}\"",
            auth.realm_raw, auth.opaque
        )
    }

    #[test]
    fn parses_the_rfc_7616_authorization_header() {
        let header = br#"username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="8ca523f5e9506fed4657c9700eebdbec", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let p = DigestParams::parse(header).unwrap();
        assert_eq!(p.username, "Mufasa");
        assert_eq!(p.uri, "/dir/index.html");
        assert_eq!(p.nc.as_deref(), Some("00000001"));
        assert_eq!(p.qop.as_deref(), Some("auth"));
        assert_eq!(p.response, "8ca523f5e9506fed4657c9700eebdbec");
        let escaped = DigestParams::parse(
            br#"username="a\"b, c", realm="r", nonce="n", uri="/", response="x""#,
        )
        .unwrap();
        assert_eq!(escaped.username, "a\"b, c");
        assert!(DigestParams::parse(br#"username="a"#).is_err());
        assert!(DigestParams::parse(b"username=a realm=b").is_err());
        assert!(DigestParams::parse(b"username=a").is_err());
    }

    #[test]
    fn no_mode_allows_and_missing_credentials_deny() {
        let off = Authenticator::new(&settings(AuthMode::None, "r"));
        assert!(off.check(&request("/cfg.xml", None, NOW), None).is_ok());
        let on = Authenticator::new(&settings(AuthMode::Digest, "r"));
        let denial = on.check(&request("/cfg.xml", None, NOW), None).unwrap_err();
        assert_eq!(denial.reason, "no P1360/P1361 configured for this device");
        let denial = on
            .check(&request("/cfg.xml", None, NOW), Some(&creds("u", "p")))
            .unwrap_err();
        assert!(
            denial.reason.contains("no credentials sent"),
            "{}",
            denial.reason
        );
        let header = denial.challenge.to_str().unwrap();
        assert!(header.starts_with("Digest realm=\"r\", qop=\"auth\", algorithm=MD5, nonce=\""));
        assert!(!header.contains("stale"));
    }

    #[test]
    fn basic_accepts_the_right_password_only() {
        let auth = Authenticator::new(&settings(AuthMode::Basic, "desk \"1\""));
        let good = creds("admin", "s3cret:x");
        let header = |u: &str, p: &str| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")));
        let ok = header("admin", "s3cret:x");
        assert!(
            auth.check(&request("/", Some(&ok), NOW), Some(&good))
                .is_ok()
        );
        let wrong = header("admin", "guess");
        let denial = auth
            .check(&request("/", Some(&wrong), NOW), Some(&good))
            .unwrap_err();
        assert_eq!(denial.reason, "wrong password for user admin");
        assert_eq!(
            denial.challenge.to_str().unwrap(),
            "Basic realm=\"desk \\\"1\\\"\", charset=\"UTF-8\""
        );
        // A password typed into the user field is not echoed.
        let other = header("s3cret:x", "admin");
        let denial = auth
            .check(&request("/", Some(&other), NOW), Some(&good))
            .unwrap_err();
        assert_eq!(denial.reason, "unknown user");
        for bad in ["Basic !!!", "Basic YWRtaW4=", "Bearer x"] {
            let denial = auth
                .check(&request("/", Some(bad), NOW), Some(&good))
                .unwrap_err();
            assert!(!denial.reason.contains("s3cret"));
        }
    }

    #[test]
    fn digest_accepts_a_correct_response_once_per_count() {
        let auth = Authenticator::new(&settings(AuthMode::Digest, "ProvDesk"));
        let good = creds("phone", "pw");
        let h1 = digest_header(&auth, "phone", "pw", "/cfg.xml", 1);
        assert_eq!(
            auth.check(&request("/cfg.xml", Some(&h1), NOW), Some(&good)),
            Ok(())
        );
        // The same count again is a replay; the client is told to take a new nonce.
        let denial = auth
            .check(&request("/cfg.xml", Some(&h1), NOW), Some(&good))
            .unwrap_err();
        assert!(denial.reason.contains("replayed"), "{}", denial.reason);
        assert!(denial.challenge.to_str().unwrap().ends_with("stale=true"));
        let h2 = digest_header(&auth, "phone", "pw", "/cfg.xml", 2);
        assert_eq!(
            auth.check(&request("/cfg.xml", Some(&h2), NOW + 1), Some(&good)),
            Ok(())
        );
    }

    #[test]
    fn digest_refuses_wrong_password_user_uri_and_old_nonces() {
        let auth = Authenticator::new(&settings(AuthMode::Digest, "ProvDesk"));
        let good = creds("phone", "pw");
        let check = |header: &str, uri: &str, now: u64| {
            auth.check(&request(uri, Some(header), now), Some(&good))
                .unwrap_err()
                .reason
        };
        let wrong = digest_header(&auth, "phone", "nope", "/cfg.xml", 1);
        assert_eq!(
            check(&wrong, "/cfg.xml", NOW),
            "wrong password for user phone"
        );
        let stranger = digest_header(&auth, "eve", "pw", "/cfg.xml", 1);
        assert_eq!(check(&stranger, "/cfg.xml", NOW), "unknown user");
        let elsewhere = digest_header(&auth, "phone", "pw", "/cfg.xml", 1);
        assert!(check(&elsewhere, "/other.xml", NOW).contains("uri does not match"));
        let late = digest_header(&auth, "phone", "pw", "/cfg.xml", 1);
        let reason = check(&late, "/cfg.xml", NOW + NONCE_TTL_SECS + 1);
        assert!(
            reason.contains("expired") && reason.contains("stale=true"),
            "{reason}"
        );
        // A nonce from another run (another key) is stale, not a wrong password.
        let other_run = Authenticator::new(&settings(AuthMode::Digest, "ProvDesk"));
        let foreign = digest_header(&other_run, "phone", "pw", "/cfg.xml", 1)
            .replace(&other_run.opaque, &auth.opaque);
        assert!(check(&foreign, "/cfg.xml", NOW).contains("not issued"));
        // Basic credentials are not accepted in Digest mode.
        let basic = format!("Basic {}", STANDARD.encode("phone:pw"));
        assert!(check(&basic, "/cfg.xml", NOW).contains("expected Digest"));
    }

    /// An RFC 2069 (no `qop`) header for `nonce`.
    fn header_without_qop(nonce: &str) -> String {
        let response = digest::response(
            Algorithm::Md5,
            &DigestInput {
                user: "phone",
                realm: "ProvDesk",
                password: "pw",
                method: "GET",
                uri: "/cfg.xml",
                nonce,
                nc: "",
                cnonce: "",
                qop: None,
            },
        );
        format!(
            "Digest username=\"phone\", realm=\"ProvDesk\", nonce=\"{nonce}\", uri=\"/cfg.xml\", response=\"{response}\""
        )
    }

    #[test]
    fn digest_without_qop_is_accepted_once_per_nonce() {
        let auth = Authenticator::new(&settings(AuthMode::Digest, "ProvDesk"));
        let nonce = auth.make_nonce("127.0.0.1".parse().unwrap(), NOW);
        let header = header_without_qop(&nonce);
        let good = creds("phone", "pw");
        assert_eq!(
            auth.check(&request("/cfg.xml", Some(&header), NOW), Some(&good)),
            Ok(())
        );
        // The same captured header again: refused, and the client is sent a fresh nonce.
        let denial = auth
            .check(&request("/cfg.xml", Some(&header), NOW + 1), Some(&good))
            .unwrap_err();
        assert!(denial.reason.contains("used twice"), "{}", denial.reason);
        assert!(denial.challenge.to_str().unwrap().ends_with("stale=true"));
        // With the fresh nonce the old client goes on.
        let fresh = auth.make_nonce("127.0.0.1".parse().unwrap(), NOW + 1);
        let header = header_without_qop(&fresh);
        assert_eq!(
            auth.check(&request("/cfg.xml", Some(&header), NOW + 1), Some(&good)),
            Ok(())
        );
    }

    #[test]
    fn nonces_are_bound_to_the_client_address() {
        let auth = Authenticator::new(&settings(AuthMode::Digest, "r"));
        let nonce = auth.make_nonce("10.0.0.1".parse().unwrap(), NOW);
        assert_eq!(
            auth.nonce_issued(&nonce, "10.0.0.1".parse().unwrap()),
            Some(NOW)
        );
        assert_eq!(
            auth.nonce_issued(&nonce, "::ffff:10.0.0.1".parse().unwrap()),
            Some(NOW)
        );
        assert_eq!(auth.nonce_issued(&nonce, "10.0.0.2".parse().unwrap()), None);
        assert_eq!(
            auth.nonce_issued("garbage", "10.0.0.1".parse().unwrap()),
            None
        );
    }

    #[test]
    fn nonces_differ_within_one_second() {
        let auth = Authenticator::new(&settings(AuthMode::Digest, "r"));
        let peer = "10.0.0.1".parse().unwrap();
        assert_ne!(auth.make_nonce(peer, NOW), auth.make_nonce(peer, NOW));
    }

    #[test]
    fn replay_counters_stay_bounded() {
        let auth = Authenticator::new(&settings(AuthMode::Digest, "r"));
        for n in 0..(MAX_TRACKED_NONCES as u64 + 10) {
            assert!(auth.record_use(&format!("n{n}"), Some(1), NOW + n, NOW + n));
        }
        assert!(auth.counts.lock().unwrap().by_nonce.len() <= MAX_TRACKED_NONCES);
    }

    #[test]
    fn a_forgotten_nonce_cannot_be_replayed() {
        let auth = Authenticator::new(&settings(AuthMode::Digest, "r"));
        // Every nonce is still valid (within the TTL), so the oldest must be forgotten.
        assert!(auth.record_use("first", None, NOW - 1, NOW));
        for n in 1..=(MAX_TRACKED_NONCES as u64) {
            assert!(auth.record_use(&format!("n{n}"), None, NOW, NOW));
        }
        assert!(!auth.counts.lock().unwrap().by_nonce.contains_key("first"));
        assert!(!auth.record_use("first", None, NOW - 1, NOW + 1));
        // A nonce issued after the forgotten one is still welcome.
        assert!(auth.record_use("late", None, NOW, NOW + 1));
    }
}
