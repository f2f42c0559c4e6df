//! A small sans-IO SIP message codec (RFC 3261 syntax, read leniently): what ProvDesk needs to
//! answer a phone's plug-and-play `SUBSCRIBE` and to send `NOTIFY` messages, and nothing of a
//! SIP stack (no dialogs or sockets): `transaction` is the one client transaction the desk
//! runs (a re-provision NOTIFY with its retransmissions and Digest answer), `digest` the
//! Digest computation that HTTP shares.
//!
//! Why not a crate: the SIP message crates on crates.io are either full stacks (far more than
//! two messages need) or strict parsers without a release for years (`rsip` 0.4, 2022); phones
//! send slightly irregular messages (bare `\n`, compact headers, odd spacing) that a strict
//! grammar refuses, and a codec of this size is cheaper to own and to fuzz.
//!
//! Invariants: [`Message::parse`] never panics and never allocates more than a bounded
//! multiple of its input; header names are kept as received but matched case-insensitively
//! with compact forms expanded; [`Message::to_bytes`] always writes a `Content-Length` that
//! matches the body.

use std::fmt;

pub mod digest;
mod headers;
pub mod transaction;

pub use headers::{CSeq, EventHeader, NameAddr, Params, SipUri, Via, percent_decode};

/// Longest message accepted: a UDP datagram cannot be larger.
pub const MAX_MESSAGE: usize = 65_535;

/// The protocol version this codec writes.
pub const VERSION: &str = "SIP/2.0";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("message of {0} bytes is larger than {MAX_MESSAGE}")]
    TooLarge(usize),
    #[error("the header section is not text (UTF-8)")]
    NotText,
    #[error("bad start line: {0:?}")]
    StartLine(String),
    #[error("bad header line: {0:?}")]
    Header(String),
    #[error("Content-Length {declared} but only {available} body bytes")]
    Truncated { declared: usize, available: usize },
    #[error("bad Content-Length {0:?}")]
    ContentLength(String),
}

/// A request's method and URI, or a response's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

/// One header as received: its name (any case, possibly compact) and its raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

/// The full name of a compact header form (RFC 3261 §7.3.3, RFC 3265, RFC 3515, RFC 4028).
pub fn full_name(name: &str) -> &str {
    if name.len() != 1 {
        return name;
    }
    match name.as_bytes()[0].to_ascii_lowercase() {
        b'i' => "Call-ID",
        b'm' => "Contact",
        b'e' => "Content-Encoding",
        b'l' => "Content-Length",
        b'c' => "Content-Type",
        b'f' => "From",
        b's' => "Subject",
        b'k' => "Supported",
        b't' => "To",
        b'v' => "Via",
        b'o' => "Event",
        b'u' => "Allow-Events",
        b'r' => "Refer-To",
        b'b' => "Referred-By",
        b'x' => "Session-Expires",
        _ => name,
    }
}

fn same_header(a: &str, b: &str) -> bool {
    full_name(a).eq_ignore_ascii_case(full_name(b))
}

impl Message {
    /// A request with no headers yet.
    pub fn request(method: &str, uri: &str) -> Message {
        Message {
            start: StartLine::Request {
                method: method.to_string(),
                uri: uri.to_string(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response to `request` (RFC 3261 §8.2.6.2): its Via headers in order, From, To,
    /// Call-ID and CSeq copied; the caller adds a To tag and anything else.
    pub fn response_to(request: &Message, code: u16, reason: &str) -> Message {
        let mut response = Message {
            start: StartLine::Response {
                code,
                reason: reason.to_string(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        };
        for header in &request.headers {
            let name = full_name(&header.name);
            if ["Via", "From", "To", "Call-ID", "CSeq"]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name))
            {
                response.headers.push(Header {
                    name: canonical(name).to_string(),
                    value: header.value.clone(),
                });
            }
        }
        response
    }

    /// Parses one message. Lenient: bare `\n` line ends, leading blank lines (keep-alives),
    /// folded header lines, compact names, any spacing around `:`; the body is what
    /// `Content-Length` says (the rest of the datagram without one; extra bytes are ignored).
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(ParseError::TooLarge(bytes.len()));
        }
        let (head, rest) = split_head(bytes);
        let head = std::str::from_utf8(head).map_err(|_| ParseError::NotText)?;
        let mut lines = head
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .skip_while(|l| l.trim().is_empty());
        let first = lines.next().ok_or(ParseError::Empty)?;
        let start = parse_start_line(first)?;
        let mut headers: Vec<Header> = Vec::new();
        for line in lines {
            if line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                // A folded continuation of the header before.
                let Some(last) = headers.last_mut() else {
                    return Err(ParseError::Header(line.to_string()));
                };
                last.value.push(' ');
                last.value.push_str(line.trim());
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(ParseError::Header(line.to_string()));
            };
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(ParseError::Header(line.to_string()));
            }
            headers.push(Header {
                name: name.to_string(),
                value: value.trim().to_string(),
            });
        }
        let mut message = Message {
            start,
            headers,
            body: Vec::new(),
        };
        let body = match message.header("Content-Length") {
            Some(text) => {
                let declared: usize = text
                    .trim()
                    .parse()
                    .map_err(|_| ParseError::ContentLength(text.to_string()))?;
                if declared > rest.len() {
                    return Err(ParseError::Truncated {
                        declared,
                        available: rest.len(),
                    });
                }
                &rest[..declared]
            }
            None => rest,
        };
        message.body = body.to_vec();
        Ok(message)
    }

    /// The message as it goes on the wire, with a `Content-Length` that matches the body
    /// (any given one is replaced).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(256 + self.body.len());
        match &self.start {
            StartLine::Request { method, uri } => {
                out.push_str(&format!("{method} {uri} {VERSION}\r\n"));
            }
            StartLine::Response { code, reason } => {
                out.push_str(&format!("{VERSION} {code} {reason}\r\n"));
            }
        }
        for header in &self.headers {
            if same_header(&header.name, "Content-Length") {
                continue;
            }
            // A value never spans lines on the wire: a line break in it would start a header.
            let value = header.value.replace(['\r', '\n'], " ");
            out.push_str(&format!("{}: {value}\r\n", header.name));
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The first value of header `name` (compact forms and case do not matter).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| same_header(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// Every value of a list header (Via, Contact, Allow, ...): all its lines, each split at
    /// commas outside quotes and angle brackets. Not for headers whose values hold commas
    /// (dates, authentication).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|h| same_header(&h.name, name))
            .flat_map(|h| split_list(&h.value))
            .collect()
    }

    /// Adds a header at the end.
    pub fn push_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push(Header {
            name: name.to_string(),
            value: value.into(),
        });
    }

    /// Builder form of [`Message::push_header`].
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Message {
        self.push_header(name, value);
        self
    }

    /// Replaces the first header `name` (keeping its place), or adds it.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        match self.headers.iter_mut().find(|h| same_header(&h.name, name)) {
            Some(header) => header.value = value.into(),
            None => self.push_header(name, value),
        }
    }

    /// The body with its type.
    pub fn with_body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Message {
        self.set_header("Content-Type", content_type);
        self.body = body.into();
        self
    }

    /// The topmost Via, parsed.
    pub fn top_via(&self) -> Option<Via> {
        self.header_values("Via")
            .first()
            .and_then(|v| Via::parse(v))
    }

    pub fn from(&self) -> Option<NameAddr> {
        self.header("From").and_then(NameAddr::parse)
    }

    pub fn to(&self) -> Option<NameAddr> {
        self.header("To").and_then(NameAddr::parse)
    }

    pub fn call_id(&self) -> Option<&str> {
        self.header("Call-ID").filter(|v| !v.is_empty())
    }

    pub fn cseq(&self) -> Option<CSeq> {
        self.header("CSeq").and_then(CSeq::parse)
    }

    /// The first Contact, parsed.
    pub fn contact(&self) -> Option<NameAddr> {
        self.header_values("Contact")
            .first()
            .and_then(|v| NameAddr::parse(v))
    }

    pub fn event(&self) -> Option<EventHeader> {
        self.header("Event").and_then(EventHeader::parse)
    }
}

impl fmt::Display for Message {
    /// The wire form, for logs (a body that is not text shows as replacement characters).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// The usual spelling of a header name.
fn canonical(name: &str) -> &str {
    for known in [
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Event", "Expires",
    ] {
        if known.eq_ignore_ascii_case(name) {
            return known;
        }
    }
    name
}

/// Splits at the first empty line (CRLF CRLF, or LF LF from sloppy senders).
fn split_head(bytes: &[u8]) -> (&[u8], &[u8]) {
    // Leading blank lines are keep-alives, not the end of the headers.
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(bytes.len());
    let mut at = start;
    while at < bytes.len() {
        if bytes[at] == b'\n' {
            let next = &bytes[at + 1..];
            if next.starts_with(b"\r\n") {
                return (&bytes[..at], &bytes[at + 3..]);
            }
            if next.starts_with(b"\n") {
                return (&bytes[..at], &bytes[at + 2..]);
            }
        }
        at += 1;
    }
    (bytes, &[])
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    let bad = || ParseError::StartLine(line.chars().take(200).collect());
    let mut parts = line.split_whitespace();
    let first = parts.next().ok_or_else(bad)?;
    if first.to_ascii_uppercase().starts_with("SIP/") {
        let code: u16 = parts.next().and_then(|c| c.parse().ok()).ok_or_else(bad)?;
        if !(100..=699).contains(&code) {
            return Err(bad());
        }
        let reason = parts.collect::<Vec<_>>().join(" ");
        return Ok(StartLine::Response { code, reason });
    }
    let uri = parts.next().ok_or_else(bad)?;
    let version = parts.next().ok_or_else(bad)?;
    if !version.to_ascii_uppercase().starts_with("SIP/")
        || parts.next().is_some()
        || !first.bytes().all(is_token_byte)
    {
        return Err(bad());
    }
    Ok(StartLine::Request {
        method: first.to_string(),
        uri: uri.to_string(),
    })
}

/// RFC 3261 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Splits a list value at commas that are outside quotes and `<...>`.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut from = 0;
    for (at, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(value[from..at].trim());
                from = at + 1;
            }
            _ => {}
        }
    }
    parts.push(value[from..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// Real messages, for the tests of this crate and of the servers that use it.
#[doc(hidden)]
pub mod samples {
    /// A real GRP2612W's plug-and-play request (from the public gs_tools project,
    /// `plugnplay/gspnp_responder.py/fake_grp2612.py`).
    pub const GRP2612W_SUBSCRIBE: &str = "SUBSCRIBE sip:MAC%3AC074AD112233@224.0.1.75 SIP/2.0\r\n\
    Via: SIP/2.0/UDP 192.168.1.2:5080;branch=z9hG4bK1611133778;rport\r\n\
    From: <sip:MAC%3AC074AD112233@224.0.1.75>;tag=395400190\r\n\
    To: <sip:MAC%3AC074AD112233@224.0.1.75>\r\n\
    Call-ID: 490431573-5080-1@BJC.BGI.IG.DA\r\n\
    CSeq: 20000 SUBSCRIBE\r\n\
    Contact: <sip:192.168.1.2:5080>\r\n\
    User-Agent: Grandstream GRP2612W 1.0.5.67\r\n\
    Expires: 0\r\n\
    Event: ua-profile;profile-type=\"device\";vendor=\"Grandstream\";model=\"GRP2612W\";version=\"1.0.5.67\"\r\n\
    Accept: application/url\r\n\
    Content-Length: 0\r\n\r\n";
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::samples::GRP2612W_SUBSCRIBE as GRP2612W;

    #[test]
    fn parses_a_real_plug_and_play_subscribe() {
        let m = Message::parse(GRP2612W.as_bytes()).unwrap();
        assert_eq!(m.method(), Some("SUBSCRIBE"));
        assert_eq!(m.uri(), Some("sip:MAC%3AC074AD112233@224.0.1.75"));
        let via = m.top_via().unwrap();
        assert_eq!(via.transport, "UDP");
        assert_eq!((via.host.as_str(), via.port), ("192.168.1.2", Some(5080)));
        assert_eq!(via.params.get("branch"), Some(Some("z9hG4bK1611133778")));
        assert_eq!(via.params.get("rport"), Some(None));
        assert_eq!(m.from().unwrap().tag(), Some("395400190"));
        assert_eq!(m.to().unwrap().tag(), None);
        assert_eq!(m.call_id(), Some("490431573-5080-1@BJC.BGI.IG.DA"));
        assert_eq!(
            m.cseq().unwrap(),
            CSeq {
                number: 20000,
                method: "SUBSCRIBE".into()
            }
        );
        let contact = SipUri::parse(&m.contact().unwrap().uri).unwrap();
        assert_eq!(
            (contact.host.as_str(), contact.port),
            ("192.168.1.2", Some(5080))
        );
        let event = m.event().unwrap();
        assert_eq!(event.package, "ua-profile");
        assert_eq!(event.params.get("model"), Some(Some("GRP2612W")));
        assert_eq!(event.params.get("version"), Some(Some("1.0.5.67")));
        assert_eq!(
            m.header("user-agent"),
            Some("Grandstream GRP2612W 1.0.5.67")
        );
        let uri = SipUri::parse(m.uri().unwrap()).unwrap();
        assert_eq!(uri.user.as_deref(), Some("MAC%3AC074AD112233"));
        assert_eq!(
            percent_decode(uri.user.as_deref().unwrap()),
            "MAC:C074AD112233"
        );
        assert!(m.body.is_empty());
    }

    #[test]
    fn is_lenient_about_line_ends_compact_names_folding_and_spacing() {
        let text = "\r\n\r\nNOTIFY sip:a@b SIP/2.0\n\
v : SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1 , SIP/2.0/UDP 10.0.0.2:5070\n\
v: SIP/2.0/UDP 10.0.0.3\n\
i:abc\n\
o: check-sync\n\
f: \"Desk, Inc\" <sip:desk@10.0.0.9>;tag=1\n\
Subject: a long\n\x20 folded value\n\
c: text/plain\n\
l: 5\n\nhelloEXTRA";
        let m = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(m.call_id(), Some("abc"));
        assert_eq!(m.event().unwrap().package, "check-sync");
        assert_eq!(m.header_values("Via").len(), 3);
        assert_eq!(m.top_via().unwrap().host, "10.0.0.1");
        assert_eq!(m.top_via().unwrap().port, None);
        let from = m.from().unwrap();
        assert_eq!(from.display.as_deref(), Some("Desk, Inc"));
        assert_eq!(from.uri, "sip:desk@10.0.0.9");
        assert_eq!(m.header("subject"), Some("a long folded value"));
        assert_eq!(m.header("Content-Type"), Some("text/plain"));
        assert_eq!(m.body, b"hello");
    }

    #[test]
    fn parses_responses_and_refuses_what_is_not_sip() {
        let m = Message::parse(b"SIP/2.0 489 Bad Event\r\nCSeq: 1 SUBSCRIBE\r\n\r\n").unwrap();
        assert_eq!(m.status(), Some(489));
        assert_eq!(
            m.start,
            StartLine::Response {
                code: 489,
                reason: "Bad Event".into()
            }
        );
        for bad in [
            &b""[..],
            b"\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"SIP/2.0 99 Low\r\n\r\n",
            b"SIP/2.0 abc OK\r\n\r\n",
            b"INVITE sip:a SIP/2.0\r\nno colon here\r\n\r\n",
            b"INVITE sip:a SIP/2.0\r\nContent-Length: 10\r\n\r\nshort",
            b"INVITE sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n",
            b"INVITE sip:a SIP/2.0\r\nBad Name: x\r\n\r\n",
            b"\xff\xfe SIP/2.0\r\n\r\n",
        ] {
            assert!(
                Message::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            Message::parse(&vec![b'a'; MAX_MESSAGE + 1]),
            Err(ParseError::TooLarge(MAX_MESSAGE + 1))
        );
    }

    #[test]
    fn formats_what_it_parses_and_fixes_the_content_length() {
        let m = Message::request("NOTIFY", "sip:192.168.1.2:5080")
            .with_header("Via", "SIP/2.0/UDP 192.168.1.1:5060;branch=z9hG4bKx")
            .with_header("Content-Length", "999")
            .with_header("Subject", "no\r\ninjection")
            .with_body("application/url", "http://192.168.1.1:8080/");
        let bytes = m.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("NOTIFY sip:192.168.1.2:5080 SIP/2.0\r\n"),
            "{text}"
        );
        assert!(
            text.ends_with("Content-Length: 24\r\n\r\nhttp://192.168.1.1:8080/"),
            "{text}"
        );
        assert!(text.contains("Subject: no  injection\r\n"), "{text}");
        let back = Message::parse(&bytes).unwrap();
        assert_eq!(back.body, m.body);
        assert_eq!(back.header("Content-Type"), Some("application/url"));
        assert_eq!(back.header_values("Content-Length"), vec!["24"]);
    }

    #[test]
    fn a_response_copies_the_dialog_headers_in_order() {
        let request = Message::parse(GRP2612W.as_bytes()).unwrap();
        let response = Message::response_to(&request, 200, "OK");
        let names: Vec<&str> = response.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["Via", "From", "To", "Call-ID", "CSeq"]);
        let text = response.to_string();
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
        assert!(text.contains("CSeq: 20000 SUBSCRIBE\r\n"), "{text}");
    }

    #[test]
    fn lists_split_outside_quotes_and_brackets() {
        assert_eq!(
            split_list("\"a, b\" <sip:x;p=1,2>, <sip:y> ,,"),
            vec!["\"a, b\" <sip:x;p=1,2>", "<sip:y>"]
        );
        assert_eq!(
            split_list("\"esc\\\", still\" <sip:z>"),
            vec!["\"esc\\\", still\" <sip:z>"]
        );
    }
}
