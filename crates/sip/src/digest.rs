//! Digest access authentication (RFC 7616, RFC 2617 and RFC 2069 without `qop`), as HTTP
//! uses it and SIP borrows it (RFC 3261 §22.4): the one implementation of the response
//! computation and of the `k=v, k="v"` parameter lists, for the servers' HTTP authentication
//! (which checks phones) and for the NOTIFY client (which answers a phone's challenge).
//!
//! Invariants: a password only ever enters [`response`] and never leaves it but hashed;
//! [`Credentials`] prints its password masked; parameter parsing never panics and consumes
//! at least one byte per round.

use std::fmt;

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// The hash of a Digest exchange (RFC 7616 §3.3). `-sess` variants are not offered by the
/// servers and phones ProvDesk talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// `MD5` or `SHA-256`, any case; `None` for anything else.
    pub fn parse(name: &str) -> Option<Algorithm> {
        if name.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if name.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }
}

/// Everything the response hash covers.
#[derive(Clone, Copy)]
pub struct DigestInput<'a> {
    pub user: &'a str,
    pub realm: &'a str,
    pub password: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    pub nonce: &'a str,
    /// Eight hex digits with `qop`; ignored without.
    pub nc: &'a str,
    pub cnonce: &'a str,
    /// `auth`, or `None` for an RFC 2069 exchange.
    pub qop: Option<&'a str>,
}

/// The `response` value of RFC 7616 §3.4.1 (RFC 2069's when `qop` is absent).
pub fn response(algorithm: Algorithm, input: &DigestInput<'_>) -> String {
    let h = |parts: &[&str]| hex_hash(algorithm, &parts.join(":"));
    let ha1 = h(&[input.user, input.realm, input.password]);
    let ha2 = h(&[input.method, input.uri]);
    match input.qop {
        Some(qop) => h(&[&ha1, input.nonce, input.nc, input.cnonce, qop, &ha2]),
        None => h(&[&ha1, input.nonce, &ha2]),
    }
}

fn hex_hash(algorithm: Algorithm, text: &str) -> String {
    let bytes: Vec<u8> = match algorithm {
        Algorithm::Md5 => Md5::digest(text.as_bytes()).to_vec(),
        Algorithm::Sha256 => Sha256::digest(text.as_bytes()).to_vec(),
    };
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    hex
}

/// Parses an auth-param list, `k=v, k="v"` (RFC 7235 §2.1): keys lowercased, quoted values
/// unescaped (they may hold `\"` and commas). The error says what is wrong, never a value.
pub fn parse_params(text: &str) -> Result<Vec<(String, String)>, &'static str> {
    let mut params = Vec::new();
    let mut rest = text.trim_start();
    // Each round consumes at least the `=`, so a hostile header cannot make this loop long.
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or("parameter without '='")?;
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        let (_, escaped) = chars.next().ok_or("unterminated escape")?;
                        out.push(escaped);
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => out.push(c),
                }
            }
            let end = end.ok_or("unterminated quoted string")?;
            value = out;
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if !rest.is_empty() {
            return Err("missing ',' between parameters");
        }
        params.push((key, value));
    }
    Ok(params)
}

/// `"text"` with `"` and `\` escaped, for a quoted-string parameter.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if c != '\r' && c != '\n' {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("the challenge is not Digest (scheme {0:?})")]
    NotDigest(String),
    #[error("malformed Digest challenge: {0}")]
    Malformed(&'static str),
    #[error("the Digest challenge has no {0}")]
    Missing(&'static str),
    #[error("unsupported Digest algorithm {0:?}")]
    Algorithm(String),
    #[error("the Digest challenge offers no qop this client speaks ({0:?})")]
    Qop(String),
}

/// A server's `WWW-Authenticate` (or a SIP phone's `Proxy-Authenticate`) Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The server offered `qop=auth`: the answer carries `qop`, `nc` and `cnonce`. Without a
    /// `qop` at all the exchange is RFC 2069's.
    pub qop_auth: bool,
    /// The server says the previous nonce was stale, not the password wrong.
    pub stale: bool,
}

impl Challenge {
    /// Parses `Digest realm="…", nonce="…", qop="auth,auth-int", …`.
    pub fn parse(header: &str) -> Result<Challenge, ChallengeError> {
        let header = header.trim();
        let (scheme, rest) = header
            .split_once(char::is_whitespace)
            .unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case("Digest") {
            let shown: String = scheme.chars().take(20).collect();
            return Err(ChallengeError::NotDigest(shown));
        }
        let params = parse_params(rest).map_err(ChallengeError::Malformed)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let realm = get("realm").ok_or(ChallengeError::Missing("realm"))?;
        let nonce = get("nonce").ok_or(ChallengeError::Missing("nonce"))?;
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(name) => Algorithm::parse(name)
                .ok_or_else(|| ChallengeError::Algorithm(name.chars().take(20).collect()))?,
        };
        let qop_auth = match get("qop") {
            None => false,
            Some(offered) => {
                if !offered
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
                {
                    return Err(ChallengeError::Qop(offered.chars().take(40).collect()));
                }
                true
            }
        };
        Ok(Challenge {
            realm: realm.to_string(),
            nonce: nonce.to_string(),
            opaque: get("opaque").map(str::to_string),
            algorithm,
            qop_auth,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The `Authorization` (or `Proxy-Authorization`) value answering this challenge for a
    /// request `method uri`. `nc` counts the uses of this nonce from 1; `cnonce` is the
    /// client's random string.
    pub fn answer(
        &self,
        credentials: &Credentials,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> String {
        let nc = format!("{nc:08x}");
        let qop = self.qop_auth.then_some("auth");
        let hash = response(
            self.algorithm,
            &DigestInput {
                user: &credentials.user,
                realm: &self.realm,
                password: &credentials.password,
                method,
                uri,
                nonce: &self.nonce,
                nc: &nc,
                cnonce,
                qop,
            },
        );
        let mut out = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response=\"{hash}\", algorithm={}",
            quote(&credentials.user),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
            self.algorithm.name(),
        );
        if let Some(qop) = qop {
            out.push_str(&format!(", qop={qop}, nc={nc}, cnonce={}", quote(cnonce)));
        }
        if let Some(opaque) = &self.opaque {
            out.push_str(&format!(", opaque={}", quote(opaque)));
        }
        out
    }
}

/// A user name and password to answer challenges with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_2617_example() {
        // RFC 2617 §3.5.
        let input = DigestInput {
            user: "Mufasa",
            realm: "testrealm@host.com",
            password: "Circle Of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            nc: "00000001",
            cnonce: "0a4f113b",
            qop: Some("auth"),
        };
        assert_eq!(
            response(Algorithm::Md5, &input),
            "6629fae49393a05397450978507c4ef1"
        );
    }

    #[test]
    fn matches_the_rfc_7616_examples() {
        let input = DigestInput {
            user: "Mufasa",
            realm: "http-auth@example.org",
            password: "Circle of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            nc: "00000001",
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            qop: Some("auth"),
        };
        assert_eq!(
            response(Algorithm::Md5, &input),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        assert_eq!(
            response(Algorithm::Sha256, &input),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn answers_the_rfc_2617_challenge_with_its_published_response() {
        let challenge = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert!(challenge.qop_auth && !challenge.stale);
        assert_eq!(challenge.algorithm, Algorithm::Md5);
        let credentials = Credentials {
            user: "Mufasa".into(),
            password: "Circle Of Life".into(),
        };
        let answer = challenge.answer(&credentials, "GET", "/dir/index.html", "0a4f113b", 1);
        assert_eq!(
            answer,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, qop=auth, \
             nc=00000001, cnonce=\"0a4f113b\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );
        assert!(!answer.contains("Circle"));
        assert!(!format!("{credentials:?}").contains("Circle"));
    }

    #[test]
    fn challenges_without_qop_are_answered_the_rfc_2069_way() {
        let challenge = Challenge::parse("digest realm=\"pbx\",nonce=abc, stale=TRUE").unwrap();
        assert!(!challenge.qop_auth && challenge.stale);
        let credentials = Credentials {
            user: "201".into(),
            password: "pw".into(),
        };
        let answer = challenge.answer(&credentials, "NOTIFY", "sip:201@198.51.100.7", "c", 1);
        let expected = response(
            Algorithm::Md5,
            &DigestInput {
                user: "201",
                realm: "pbx",
                password: "pw",
                method: "NOTIFY",
                uri: "sip:201@198.51.100.7",
                nonce: "abc",
                nc: "",
                cnonce: "",
                qop: None,
            },
        );
        assert!(
            answer.contains(&format!("response=\"{expected}\"")),
            "{answer}"
        );
        assert!(!answer.contains("qop") && !answer.contains("cnonce"));
    }

    #[test]
    fn unanswerable_challenges_say_why() {
        let parse = |text| Challenge::parse(text).unwrap_err();
        assert_eq!(
            parse("Basic realm=\"x\""),
            ChallengeError::NotDigest("Basic".into())
        );
        assert_eq!(
            parse("Digest nonce=\"n\""),
            ChallengeError::Missing("realm")
        );
        assert_eq!(
            parse("Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess"),
            ChallengeError::Algorithm("MD5-sess".into())
        );
        assert_eq!(
            parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""),
            ChallengeError::Qop("auth-int".into())
        );
        assert_eq!(
            parse("Digest realm=\"r"),
            ChallengeError::Malformed("unterminated quoted string")
        );
    }

    #[test]
    fn parameter_lists_unescape_and_refuse_garbage() {
        let params = parse_params(r#"username="a\"b, c", realm=r ,nc=00000001"#).unwrap();
        assert_eq!(
            params,
            vec![
                ("username".into(), "a\"b, c".into()),
                ("realm".into(), "r".into()),
                ("nc".into(), "00000001".into())
            ]
        );
        assert_eq!(
            parse_params("a=\"1\" b=2"),
            Err("missing ',' between parameters")
        );
        assert_eq!(parse_params("a"), Err("parameter without '='"));
        assert_eq!(parse_params("a=\"x\\"), Err("unterminated escape"));
        assert_eq!(quote("a\"b\\c\r\n"), r#""a\"b\\c""#);
    }
}
