//! Structured views of the headers ProvDesk reads and writes: Via, name-addr (From, To,
//! Contact), CSeq, Event, SIP URIs and `;name=value` parameters. Each parses leniently and
//! displays in the usual wire form.

use std::fmt;

/// `;name[=value]` parameters in order; names compare case-insensitively, quoted values are
/// unquoted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// Parses `a=1;b;c="x;y"` (without a leading `;`).
    pub fn parse(text: &str) -> Params {
        let mut params = Vec::new();
        for part in split_outside_quotes(text, ';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            match part.split_once('=') {
                Some((name, value)) => {
                    params.push((name.trim().to_string(), Some(unquote(value.trim()))))
                }
                None => params.push((part.to_string(), None)),
            }
        }
        Params(params)
    }

    /// `None`: absent; `Some(None)`: present without a value (`;rport`).
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Sets (or adds) a parameter.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_string);
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(param) => param.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }
}

impl fmt::Display for Params {
    /// `;a=1;b`, quoting values that are not tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.0 {
            match value {
                Some(v) if v.bytes().all(is_param_byte) && !v.is_empty() => {
                    write!(f, ";{name}={v}")?
                }
                Some(v) => write!(f, ";{name}=\"{}\"", v.replace(['"', '\\'], ""))?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

fn is_param_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~:[]/".contains(&b)
}

/// A Via value: `SIP/2.0/UDP host[:port];params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn parse(text: &str) -> Option<Via> {
        let (protocol, rest) = text.trim().split_once(char::is_whitespace)?;
        let mut protocol = protocol.split('/');
        let (name, _version, transport) = (protocol.next()?, protocol.next()?, protocol.next()?);
        if !name.eq_ignore_ascii_case("SIP") || protocol.next().is_some() {
            return None;
        }
        let rest = rest.trim();
        let (sent_by, params) = match rest.split_once(';') {
            Some((sent_by, params)) => (sent_by.trim(), Params::parse(params)),
            None => (rest, Params::default()),
        };
        let (host, port) = split_host_port(sent_by)?;
        Some(Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// From, To, Contact: `"Display" <uri>;params` or a bare `uri;params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: String,
    pub params: Params,
}

impl NameAddr {
    pub fn parse(text: &str) -> Option<NameAddr> {
        let text = text.trim();
        if let Some(open) = find_outside_quotes(text, '<') {
            let close = open + text[open..].find('>')?;
            let display = unquote(text[..open].trim());
            let after = text[close + 1..].trim();
            let params = after
                .strip_prefix(';')
                .map(Params::parse)
                .unwrap_or_default();
            let uri = text[open + 1..close].trim();
            if uri.is_empty() {
                return None;
            }
            return Some(NameAddr {
                display: (!display.is_empty()).then_some(display),
                uri: uri.to_string(),
                params,
            });
        }
        // Without brackets the parameters belong to the header, not the URI (RFC 3261 §20).
        let (uri, params) = match text.split_once(';') {
            Some((uri, params)) => (uri.trim(), Params::parse(params)),
            None => (text, Params::default()),
        };
        if uri.is_empty() || uri.contains(char::is_whitespace) {
            return None;
        }
        Some(NameAddr {
            display: None,
            uri: uri.to_string(),
            params,
        })
    }

    /// A name-addr for `uri` with no display name or parameters.
    pub fn new(uri: &str) -> NameAddr {
        NameAddr {
            display: None,
            uri: uri.to_string(),
            params: Params::default(),
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    pub fn with_tag(mut self, tag: &str) -> NameAddr {
        self.params.set("tag", Some(tag));
        self
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(display) = &self.display {
            write!(f, "\"{}\" ", display.replace(['"', '\\'], ""))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// `CSeq: 20000 SUBSCRIBE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub number: u32,
    pub method: String,
}

impl CSeq {
    pub fn parse(text: &str) -> Option<CSeq> {
        let mut parts = text.split_whitespace();
        let number = parts.next()?.parse().ok()?;
        let method = parts.next()?.to_string();
        parts.next().is_none().then_some(CSeq { number, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.number, self.method)
    }
}

/// `Event: ua-profile;profile-type="device";model="GRP2612W"` (RFC 6665 / RFC 6080).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHeader {
    /// The event package, e.g. `ua-profile`, `check-sync`.
    pub package: String,
    pub params: Params,
}

impl EventHeader {
    pub fn parse(text: &str) -> Option<EventHeader> {
        let (package, params) = match text.split_once(';') {
            Some((package, params)) => (package.trim(), Params::parse(params)),
            None => (text.trim(), Params::default()),
        };
        if package.is_empty() || package.contains(char::is_whitespace) {
            return None;
        }
        Some(EventHeader {
            package: package.to_string(),
            params,
        })
    }

    /// True when the package is `name` (packages compare case-insensitively).
    pub fn is(&self, name: &str) -> bool {
        self.package.eq_ignore_ascii_case(name)
    }
}

impl fmt::Display for EventHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.package, self.params)
    }
}

/// `sip:user@host:port;params` (also `sips:`); headers after `?` are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub scheme: String,
    /// As written (percent-encoded); see [`percent_decode`].
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl SipUri {
    pub fn parse(text: &str) -> Option<SipUri> {
        let (scheme, rest) = text.trim().split_once(':')?;
        if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
            return None;
        }
        let rest = rest.split('?').next().unwrap_or_default();
        let (address, params) = match rest.split_once(';') {
            Some((address, params)) => (address, Params::parse(params)),
            None => (rest, Params::default()),
        };
        let (user, hostport) = match address.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                // A password after the user is never kept.
                let user = userinfo.split(':').next().unwrap_or_default();
                (Some(user.to_string()), hostport)
            }
            None => (None, address),
        };
        let (host, port) = split_host_port(hostport)?;
        Some(SipUri {
            scheme: scheme.to_ascii_lowercase(),
            user: user.filter(|u| !u.is_empty()),
            host,
            port,
            params,
        })
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// Decodes `%XX` escapes; malformed escapes are kept as they are, bytes that are not UTF-8
/// become replacement characters.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%'
            && let Some(hex) = bytes.get(at + 1..at + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            at += 3;
            continue;
        }
        out.push(bytes[at]);
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    let text = text.trim();
    if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((format!("[{host}]"), port));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port.parse().ok()?)),
        None => (text, None),
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == ':') {
        return None;
    }
    Some((host.to_string(), port))
}

fn unquote(text: &str) -> String {
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => text.to_string(),
    }
}

fn find_outside_quotes(text: &str, wanted: char) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == wanted && !quoted => return Some(at),
            _ => {}
        }
    }
    None
}

fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(at) = find_outside_quotes(rest, separator) {
        parts.push(&rest[..at]);
        rest = &rest[at + separator.len_utf8()..];
    }
    parts.push(rest);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_round_trips_and_takes_received_and_rport() {
        let mut via = Via::parse("SIP/2.0/udp 192.168.1.2:5080;branch=z9hG4bK1;rport").unwrap();
        via.params.set("received", Some("198.51.100.2"));
        via.params.set("rport", Some("5080"));
        assert_eq!(
            via.to_string(),
            "SIP/2.0/UDP 192.168.1.2:5080;branch=z9hG4bK1;rport=5080;received=198.51.100.2"
        );
        let v6 = Via::parse("SIP/2.0/UDP [2001:db8::1]:5060").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("[2001:db8::1]", Some(5060)));
        for bad in [
            "",
            "SIP/2.0/UDP",
            "HTTP/1.1/TCP a",
            "SIP/2.0/UDP a:b",
            "SIP/2.0 a",
        ] {
            assert_eq!(Via::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn name_addrs_with_and_without_brackets() {
        let a = NameAddr::parse("\"Front desk\" <sip:201@pbx;transport=udp>;tag=abc").unwrap();
        assert_eq!(a.display.as_deref(), Some("Front desk"));
        assert_eq!(a.uri, "sip:201@pbx;transport=udp");
        assert_eq!(a.tag(), Some("abc"));
        assert_eq!(
            a.to_string(),
            "\"Front desk\" <sip:201@pbx;transport=udp>;tag=abc"
        );
        let b = NameAddr::parse("sip:201@pbx;tag=x").unwrap();
        assert_eq!((b.uri.as_str(), b.tag()), ("sip:201@pbx", Some("x")));
        assert_eq!(
            NameAddr::new("sip:a@b").with_tag("t").to_string(),
            "<sip:a@b>;tag=t"
        );
        assert_eq!(NameAddr::parse("<>"), None);
        assert_eq!(NameAddr::parse("<sip:a"), None);
    }

    #[test]
    fn uris_events_and_cseq() {
        let uri = SipUri::parse("sip:MAC%3A000B82123456@224.0.1.75;transport=udp?x=y").unwrap();
        assert_eq!(uri.user.as_deref(), Some("MAC%3A000B82123456"));
        assert_eq!((uri.host.as_str(), uri.port), ("224.0.1.75", None));
        assert_eq!(
            uri.to_string(),
            "sip:MAC%3A000B82123456@224.0.1.75;transport=udp"
        );
        assert_eq!(SipUri::parse("tel:+1555"), None);
        assert_eq!(
            SipUri::parse("sip:user:secret@host:5062")
                .unwrap()
                .user
                .as_deref(),
            Some("user")
        );
        assert_eq!(percent_decode("a%3Ab%zz%4"), "a:b%zz%4");
        let event = EventHeader::parse("UA-Profile ; model=\"GXP2170\";effective-by=3600").unwrap();
        assert!(event.is("ua-profile"));
        assert_eq!(event.params.get("MODEL"), Some(Some("GXP2170")));
        assert_eq!(
            event.to_string(),
            "UA-Profile;model=GXP2170;effective-by=3600"
        );
        assert_eq!(CSeq::parse("1 NOTIFY").unwrap().to_string(), "1 NOTIFY");
        assert_eq!(CSeq::parse("x NOTIFY"), None);
        assert_eq!(CSeq::parse("1"), None);
    }

    #[test]
    fn params_quote_what_needs_it() {
        let mut p = Params::parse("profile-type=\"device\";vendor=\"Grand stream\";x");
        assert_eq!(p.get("vendor"), Some(Some("Grand stream")));
        assert_eq!(p.get("x"), Some(None));
        assert_eq!(p.get("y"), None);
        p.set("x", Some("1"));
        assert_eq!(
            p.to_string(),
            ";profile-type=device;vendor=\"Grand stream\";x=1"
        );
    }
}
