//! Checking one value against its catalogue entry: the rules a build applies to every
//! device's effective config before it writes anything.
//!
//! Invariants: a value holding a `{{ var }}` template is not checked (the caller checks it
//! after substitution); an empty value is always allowed (it means "leave the field empty");
//! only the catalogue's own knowledge is enforced, so a P-value the catalogue does not know is a
//! warning, never an error.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Catalog, Entry, ParamType, family_of_model};
use crate::{Diagnostic, PName, Severity};

/// Which rule a value broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The P-value is not listed for this model's family, or not in the catalogue at all (the
    /// message says which). Warning: the phone most likely ignores it.
    UnknownForModel,
    /// Not a number for an integer, not 0/1 for a bool, not a host, URL or time zone.
    WrongType,
    OutOfRange,
    NotAChoice,
    TooLong,
    /// Something that looks like a password in a field that is not secret. Warning.
    SecretShape,
}

impl Rule {
    /// Stable diagnostic kind, e.g. `catalog-wrong-type`.
    pub fn kind(self) -> &'static str {
        match self {
            Rule::UnknownForModel => "catalog-unknown-for-model",
            Rule::WrongType => "catalog-wrong-type",
            Rule::OutOfRange => "catalog-out-of-range",
            Rule::NotAChoice => "catalog-not-a-choice",
            Rule::TooLong => "catalog-too-long",
            Rule::SecretShape => "catalog-secret-shape",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Rule::UnknownForModel | Rule::SecretShape => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// One broken rule, with a message that names the P-value and says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
}

impl Violation {
    fn new(rule: Rule, message: String) -> Violation {
        Violation {
            rule,
            severity: rule.severity(),
            message,
        }
    }

    /// The violation as a diagnostic about field `p`; the caller adds file, line and device.
    pub fn to_diagnostic(&self, p: PName) -> Diagnostic {
        let d = match self.severity {
            Severity::Error => Diagnostic::error(self.rule.kind(), self.message.clone()),
            Severity::Warning => Diagnostic::warning(self.rule.kind(), self.message.clone()),
        };
        d.field(p.to_string())
    }
}

impl Catalog {
    /// Checks `value` for `p` on a device of `model` (e.g. `GXP2170`; empty skips the family
    /// check). Returns nothing when the value is fine.
    pub fn validate(&self, p: PName, value: &str, model: &str) -> Vec<Violation> {
        if is_template(value) {
            return Vec::new();
        }
        let Some(entry) = self.get(p) else {
            return vec![Violation::new(
                Rule::UnknownForModel,
                format!(
                    "{p} is not in the catalogue at all, so its value cannot be checked; make sure \
                     the number is right for this model, or describe it in DESK/catalog/*.toml"
                ),
            )];
        };
        let mut out = Vec::new();
        let family = family_of_model(model);
        if !family.is_empty() && !entry.applies_to(&family) {
            out.push(Violation::new(
                Rule::UnknownForModel,
                format!(
                    "{} is listed only for {} models, not {}; the phone will probably ignore it",
                    label(entry),
                    entry.families.join(", "),
                    model.trim()
                ),
            ));
        }
        out.extend(check_value(entry, value));
        out
    }
}

/// `{{ var }}` placeholders are substituted later; checking them now would only produce noise.
fn is_template(value: &str) -> bool {
    value
        .find("{{")
        .is_some_and(|start| value[start..].contains("}}"))
}

fn label(entry: &Entry) -> String {
    format!("{} ({})", entry.p, entry.name)
}

/// Type, range, choice and length checks of one value against one entry.
pub(super) fn check_value(entry: &Entry, value: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    if value.is_empty() {
        return out;
    }
    let at = label(entry);
    if let Some(max) = entry.kind.max_len() {
        let length = value.chars().count();
        if length > max {
            out.push(Violation::new(
                Rule::TooLong,
                format!("{at}: {length} characters, but the phone takes at most {max}"),
            ));
        }
    }
    match &entry.kind {
        ParamType::Bool => {
            if value != "0" && value != "1" {
                out.push(Violation::new(
                    Rule::WrongType,
                    format!("{at}: expected 0 (no) or 1 (yes), got {value:?}"),
                ));
            }
        }
        ParamType::Integer { min, max } => match value.parse::<i64>() {
            Err(_) => out.push(Violation::new(
                Rule::WrongType,
                format!("{at}: expected a whole number, got {value:?}"),
            )),
            Ok(n) => {
                let low = min.is_some_and(|min| n < min);
                let high = max.is_some_and(|max| n > max);
                if low || high {
                    let range = match (min, max) {
                        (Some(lo), Some(hi)) => format!("{lo} to {hi}"),
                        (Some(lo), None) => format!("{lo} or more"),
                        (None, Some(hi)) => format!("{hi} or less"),
                        (None, None) => unreachable!("a bound was broken, so one exists"),
                    };
                    out.push(Violation::new(
                        Rule::OutOfRange,
                        format!("{at}: {n} is out of range; allowed is {range}"),
                    ));
                }
            }
        },
        ParamType::Choice(choices) => {
            if !choices.iter().any(|c| c.value == value) {
                let allowed: Vec<String> = choices
                    .iter()
                    .map(|c| format!("{} ({})", c.value, c.label))
                    .collect();
                let mut message = format!("{at}: {value:?} is not one of {}", allowed.join(", "));
                // People often type the label they see in the web UI instead of its number.
                if let Some(meant) = choices.iter().find(|c| c.label.eq_ignore_ascii_case(value)) {
                    message.push_str(&format!("; for {:?} write {}", meant.label, meant.value));
                }
                out.push(Violation::new(Rule::NotAChoice, message));
            }
        }
        ParamType::Text { .. } => {
            if looks_like_password(value) {
                out.push(Violation::new(
                    Rule::SecretShape,
                    format!(
                        "{at}: this looks like a password (12 or more characters mixing upper and \
                         lower case, digits and symbols), but the field is not secret, so it is \
                         shown and stored in clear; if it is a password, move it to the password \
                         field or a secret variable"
                    ),
                ));
            }
        }
        ParamType::Secret { .. } => {}
        ParamType::Host { .. } => {
            if let Err(why) = check_host(value) {
                out.push(Violation::new(
                    Rule::WrongType,
                    format!(
                        "{at}: expected a host name or IP address, optionally with :port ({why})"
                    ),
                ));
            }
        }
        ParamType::Url { .. } => match check_url(value) {
            Err(why) => out.push(Violation::new(
                Rule::WrongType,
                format!(
                    "{at}: expected host[:port]/path, optionally starting with http://, https://, \
                     tftp://, ftp:// or ftps:// ({why})"
                ),
            )),
            Ok(UrlShape { has_password: true }) => out.push(Violation::new(
                Rule::SecretShape,
                format!(
                    "{at}: the address carries a password (user:password@), which is stored and \
                     shown in clear; use the HTTP/HTTPS user name and password fields instead"
                ),
            )),
            Ok(_) => {}
        },
        ParamType::TimeZone => {
            if let Err((rule, why)) = check_timezone(value) {
                out.push(Violation::new(rule, format!("{at}: {why}")));
            }
        }
    }
    out
}

/// The narrow "is this a password?" heuristic behind [`Rule::SecretShape`]. It only fires on
/// values that are hard to mistake for anything else a text field holds: at least 12
/// characters with no spaces, mixing upper case, lower case, digits and ASCII symbols, and
/// not shaped like a URL, an e-mail address, a host name or an LDAP string (`=`). Missing a
/// password is acceptable; a warning on every display name is not.
fn looks_like_password(value: &str) -> bool {
    value.chars().count() >= 12
        && !value.chars().any(char::is_whitespace)
        && value.chars().any(|c| c.is_ascii_uppercase())
        && value.chars().any(|c| c.is_ascii_lowercase())
        && value.chars().any(|c| c.is_ascii_digit())
        && value.chars().any(|c| c.is_ascii_punctuation())
        && !value.contains("://")
        && !value.contains('=')
        && !looks_like_email(value)
        && check_host(value).is_err()
}

fn looks_like_email(value: &str) -> bool {
    match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && check_host_name(domain).is_ok()
        }
        None => false,
    }
}

/// A host name, IPv4 address, bare IPv6 address or `[IPv6]`, each optionally with `:port`.
fn check_host(value: &str) -> Result<(), String> {
    if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| "an IPv6 address opened with [ needs a closing ]".to_string())?;
        inside
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("{inside:?} is not an IPv6 address"))?;
        return match after {
            "" => Ok(()),
            _ => match after.strip_prefix(':') {
                Some(port) => check_port(port),
                None => Err(format!("unexpected {after:?} after the IPv6 address")),
            },
        };
    }
    if value.parse::<Ipv6Addr>().is_ok() {
        return Ok(());
    }
    let (host, port) = match value.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (value, None),
    };
    if host.contains(':') {
        return Err(
            "write an IPv6 address with a port in brackets, e.g. [2001:db8::1]:5060".to_string(),
        );
    }
    if let Some(port) = port {
        check_port(port)?;
    }
    check_host_name(host)
}

fn check_port(port: &str) -> Result<(), String> {
    match port.parse::<u16>() {
        Ok(n) if n > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(format!("port {port:?} is not a number from 1 to 65535")),
    }
}

/// A DNS name (labels of letters, digits, `-` and `_`) or a dotted IPv4 address.
fn check_host_name(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is missing".to_string());
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host
            .parse::<Ipv4Addr>()
            .map(|_| ())
            .map_err(|_| format!("{host:?} is not an IPv4 address"));
    }
    // A single trailing dot is the DNS root, which resolvers accept.
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > 253 {
        return Err("a host name has at most 253 characters".to_string());
    }
    for part in name.split('.') {
        let valid = (1..=63).contains(&part.len())
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !part.starts_with('-')
            && !part.ends_with('-');
        if !valid {
            return Err(format!("{host:?} is not a valid host name"));
        }
    }
    Ok(())
}

struct UrlShape {
    has_password: bool,
}

/// Server paths as the phone takes them (facts §4.1): `host[:port]/path` without a scheme,
/// the scheme coming from a separate protocol setting; newer firmware also accepts a full
/// URL, so both forms pass. `user:password@` is accepted but reported by the caller.
fn check_url(value: &str) -> Result<UrlShape, String> {
    const SCHEMES: [&str; 5] = ["http", "https", "tftp", "ftp", "ftps"];
    if value.chars().any(char::is_whitespace) {
        return Err("it contains a space".to_string());
    }
    let rest = match value.split_once("://") {
        Some((scheme, rest)) => {
            if !SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
                return Err(format!("scheme {scheme:?} is not one the phone uses"));
            }
            rest
        }
        None => value,
    };
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _path)| authority);
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), host),
        None => (None, authority),
    };
    check_host(host)?;
    let has_password = userinfo
        .and_then(|u| u.split_once(':'))
        .is_some_and(|(_, password)| !password.is_empty());
    Ok(UrlShape { has_password })
}

/// P64 values seen in public templates: `auto`, `customize` (use the self-defined zone),
/// POSIX TZ strings (`CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00`, `TZa-9:30`) and, on old
/// firmware, the GMT offset in minutes plus 720 (0 for GMT-12 to 1560 for GMT+14).
fn check_timezone(value: &str) -> Result<(), (Rule, String)> {
    if value == "auto" || value == "customize" {
        return Ok(());
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return match value.parse::<u32>() {
            Ok(n) if n <= 1560 => Ok(()),
            _ => Err((
                Rule::OutOfRange,
                format!(
                    "{value} is out of range for an old-firmware offset; allowed is 0 to 1560 \
                     (GMT offset in minutes plus 720)"
                ),
            )),
        };
    }
    if posix_tz(value) {
        return Ok(());
    }
    Err((
        Rule::WrongType,
        format!(
            "{value:?} is not a time zone the phone takes; use auto, customize, a POSIX TZ string \
             such as CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00, or the offset in minutes plus 720"
        ),
    ))
}

/// `std offset [dst [offset] [,rule,rule]]` as in POSIX `TZ`.
fn posix_tz(value: &str) -> bool {
    let mut c = Cursor {
        bytes: value.as_bytes(),
        at: 0,
    };
    if !c.zone_name() || !c.offset() {
        return false;
    }
    if c.done() {
        return true;
    }
    if !c.zone_name() {
        return false;
    }
    if matches!(c.peek(), Some(b'+' | b'-' | b'0'..=b'9')) && !c.offset() {
        return false;
    }
    if c.eat(b',') && !(c.rule() && c.eat(b',') && c.rule()) {
        return false;
    }
    c.done()
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &[u8] {
        let start = self.at;
        while self.peek().is_some_and(&keep) {
            self.at += 1;
        }
        &self.bytes[start..self.at]
    }

    /// Up to `max_digits` digits as a number, or `None` when there are none.
    fn number(&mut self, max_digits: usize) -> Option<u32> {
        let start = self.at;
        while self.at - start < max_digits && self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        std::str::from_utf8(&self.bytes[start..self.at])
            .ok()?
            .parse()
            .ok()
    }

    /// Three or more letters, or `<…>` quoting letters, digits and signs.
    fn zone_name(&mut self) -> bool {
        if self.eat(b'<') {
            let inner = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-');
            return inner.len() >= 3 && self.eat(b'>');
        }
        self.take_while(|b| b.is_ascii_alphabetic()).len() >= 3
    }

    /// `[+-]hh[:mm[:ss]]` with hours 0-24.
    fn offset(&mut self) -> bool {
        if !self.eat(b'+') {
            self.eat(b'-');
        }
        self.clock(24)
    }

    fn clock(&mut self, max_hours: u32) -> bool {
        if self.number(3).is_none_or(|h| h > max_hours) {
            return false;
        }
        for _ in 0..2 {
            if !self.eat(b':') {
                break;
            }
            if self.number(2).is_none_or(|m| m > 59) {
                return false;
            }
        }
        true
    }

    /// `Jn`, `n` or `Mm.w.d`, optionally followed by `/time`.
    fn rule(&mut self) -> bool {
        let date = if self.eat(b'J') {
            self.number(3).is_some_and(|n| (1..=365).contains(&n))
        } else if self.eat(b'M') {
            self.number(2).is_some_and(|m| (1..=12).contains(&m))
                && self.eat(b'.')
                && self.number(1).is_some_and(|w| (1..=5).contains(&w))
                && self.eat(b'.')
                && self.number(1).is_some_and(|d| d <= 6)
        } else {
            self.number(3).is_some_and(|n| n <= 365)
        };
        if !date {
            return false;
        }
        if self.eat(b'/') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            // Time of day of the switch; RFC 8536 extends POSIX to ±167 hours.
            return self.clock(167);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Choice, EntrySource};

    fn p(text: &str) -> PName {
        text.parse().expect("test P-value names are valid")
    }

    fn entry(kind: ParamType) -> Entry {
        Entry {
            p: p("P9000"),
            name: "Test".into(),
            page: "Test".into(),
            section: "Test".into(),
            kind,
            default: None,
            families: Vec::new(),
            alias: None,
            description: "Test.".into(),
            source: EntrySource::Builtin,
        }
    }

    /// The rules `value` breaks for an entry of `kind`, in order.
    fn check(kind: ParamType, value: &str, expected: &[Rule]) {
        let got: Vec<Rule> = check_value(&entry(kind), value)
            .iter()
            .map(|v| v.rule)
            .collect();
        assert_eq!(got, expected, "{value:?}");
    }

    fn text() -> ParamType {
        ParamType::Text { max_len: None }
    }

    fn host() -> ParamType {
        ParamType::Host { max_len: None }
    }

    fn url() -> ParamType {
        ParamType::Url { max_len: None }
    }

    #[test]
    fn bool_takes_0_and_1() {
        check(ParamType::Bool, "0", &[]);
        check(ParamType::Bool, "1", &[]);
        for bad in ["yes", "true", "2", " 1", "No"] {
            check(ParamType::Bool, bad, &[Rule::WrongType]);
        }
    }

    #[test]
    fn integers_are_checked_against_their_bounds() {
        let expiry = ParamType::Integer {
            min: Some(1),
            max: Some(64800),
        };
        check(expiry.clone(), "60", &[]);
        check(expiry.clone(), "64800", &[]);
        check(expiry.clone(), "0", &[Rule::OutOfRange]);
        check(expiry.clone(), "64801", &[Rule::OutOfRange]);
        check(expiry.clone(), "abc", &[Rule::WrongType]);
        check(expiry.clone(), "6.5", &[Rule::WrongType]);
        check(
            ParamType::Integer {
                min: Some(1),
                max: None,
            },
            "99999999",
            &[],
        );
        check(
            ParamType::Integer {
                min: None,
                max: None,
            },
            "-5",
            &[],
        );
        let message = &check_value(&entry(expiry), "70000")[0].message;
        assert_eq!(
            message,
            "P9000 (Test): 70000 is out of range; allowed is 1 to 64800"
        );
    }

    #[test]
    fn choices_compare_as_strings_and_list_the_allowed_values() {
        let transport = ParamType::Choice(vec![
            Choice {
                value: "0".into(),
                label: "UDP".into(),
            },
            Choice {
                value: "1".into(),
                label: "TCP".into(),
            },
        ]);
        check(transport.clone(), "1", &[]);
        check(transport.clone(), "01", &[Rule::NotAChoice]);
        let message = &check_value(&entry(transport), "udp")[0].message;
        assert_eq!(
            message,
            "P9000 (Test): \"udp\" is not one of 0 (UDP), 1 (TCP); for \"UDP\" write 0"
        );
    }

    #[test]
    fn lengths_count_characters() {
        check(ParamType::Text { max_len: Some(3) }, "abc", &[]);
        check(ParamType::Text { max_len: Some(3) }, "äöü", &[]);
        check(
            ParamType::Text { max_len: Some(3) },
            "abcd",
            &[Rule::TooLong],
        );
        check(
            ParamType::Secret { max_len: Some(4) },
            "hunter2",
            &[Rule::TooLong],
        );
        check(
            ParamType::Host { max_len: Some(15) },
            "pbx.example.com:5060",
            &[Rule::TooLong],
        );
    }

    #[test]
    fn empty_values_are_always_allowed() {
        for kind in [
            ParamType::Bool,
            ParamType::Integer {
                min: Some(1),
                max: Some(2),
            },
            ParamType::Choice(vec![Choice {
                value: "0".into(),
                label: "Off".into(),
            }]),
            host(),
            url(),
            ParamType::TimeZone,
        ] {
            check(kind, "", &[]);
        }
    }

    #[test]
    fn hosts() {
        for good in [
            "pbx.example.com",
            "pbx.example.com:5060",
            "pbx",
            "pbx.example.com.",
            "_sip._udp.example.com",
            "10.0.0.1",
            "10.0.0.1:5080",
            "2001:db8::1",
            "[2001:db8::1]",
            "[2001:db8::1]:5061",
            "sip-1.example.com",
        ] {
            check(host(), good, &[]);
        }
        for bad in [
            "pbx example.com",
            "10.0.0.300",
            "pbx.example.com:0",
            "pbx.example.com:70000",
            "pbx.example.com:",
            "http://pbx.example.com",
            "-pbx.example.com",
            "pbx..example.com",
            "[2001:db8::1",
            "[2001:db8::1]5060",
            "2001:db8::1::5060:x",
            "pbx.example.com/path",
        ] {
            check(host(), bad, &[Rule::WrongType]);
        }
    }

    #[test]
    fn server_paths_with_and_without_scheme() {
        for good in [
            "fm.grandstream.com/gs",
            "10.42.13.88:8000/grandstream/initial",
            "prov.example.com",
            "http://prov.example.com/cfg",
            "HTTPS://prov.example.com:8443/cfg/",
            "tftp://10.0.0.1",
            "[2001:db8::1]:8080/prov",
            "prov.example.com/pb/phonebook.xml",
        ] {
            check(url(), good, &[]);
        }
        for bad in [
            "prov.example.com/my path",
            "gopher://prov.example.com",
            "http://",
            "/only/a/path",
            "http:/prov.example.com",
        ] {
            check(url(), bad, &[Rule::WrongType]);
        }
        check(
            url(),
            "https://admin:s3cret@prov.example.com/cfg",
            &[Rule::SecretShape],
        );
        check(url(), "https://admin@prov.example.com/cfg", &[]);
    }

    #[test]
    fn time_zones() {
        for good in [
            "auto",
            "customize",
            "840",
            "0",
            "1560",
            "CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00",
            "TZa-9:30",
            "TZc-11",
            "MSK-3",
            "EST5EDT",
            "GMT0BST,M3.5.0/1,M10.5.0",
            "MTZ+6MDT+5,M3.2.0,M11.1.0",
            "NZST-12NZDT-13,M9.5.0/02:00:00,M4.1.0/03:00:00",
            "<+0330>-3:30",
            "AAA3BBB,J60/2,J300/2",
        ] {
            check(ParamType::TimeZone, good, &[]);
        }
        for bad in [
            "Europe/Berlin",
            "CET",
            "CET-1CEST,M3.5.0",
            "CET-1,M3.5.0,M10.5.0",
            "UTC+25",
            "GMT+1 ",
        ] {
            check(ParamType::TimeZone, bad, &[Rule::WrongType]);
        }
        check(ParamType::TimeZone, "1600", &[Rule::OutOfRange]);
        check(ParamType::TimeZone, "99999999999", &[Rule::OutOfRange]);
    }

    #[test]
    fn password_shaped_text_is_a_warning() {
        for secret in ["Tr0ub4dor&3xyz", "Xk9#mP2$vL5!qR", "Winter2024!Office"] {
            check(text(), secret, &[Rule::SecretShape]);
        }
        for plain in [
            "John Smith",
            "1001",
            "Reception Desk 2",
            "{ x+ | *x+ | *xx*x+ }",
            "dc=Example1,dc=com",
            "Grandstream GXP2170",
            "John.Smith2@Example.com",
            "Prov-Server01.Example.com",
            "Short1!a",
            "alllowercase1!xyz",
            "CET-1CEST-2,M3.5.0",
        ] {
            check(text(), plain, &[]);
        }
        // Secret fields are where passwords belong.
        check(ParamType::Secret { max_len: None }, "Tr0ub4dor&3xyz", &[]);
        let v = &check_value(&entry(text()), "Tr0ub4dor&3xyz")[0];
        assert_eq!(v.severity, Severity::Warning);
    }

    #[test]
    fn templates_are_left_for_after_substitution() {
        let catalog = Catalog::builtin();
        assert!(
            catalog
                .validate(p("P32"), "{{ expiry }}", "gxp2170")
                .is_empty()
        );
        assert!(
            catalog
                .validate(p("P47"), "{{ pbx }}:5060", "gxp2170")
                .is_empty()
        );
        assert!(
            catalog
                .validate(p("P99999"), "{{ x }}", "gxp2170")
                .is_empty()
        );
        // A dial plan's single braces are not a template.
        assert!(!is_template("{ x+ | *x+ }"));
    }

    #[test]
    fn validate_uses_the_builtin_entries() {
        let catalog = Catalog::builtin();
        let rules = |p_name: &str, value: &str, model: &str| -> Vec<Rule> {
            catalog
                .validate(p(p_name), value, model)
                .iter()
                .map(|v| v.rule)
                .collect()
        };
        assert_eq!(rules("P47", "pbx.example.com:5060", "GXP2170"), []);
        assert_eq!(rules("P32", "100000", "GXP2170"), [Rule::OutOfRange]);
        assert_eq!(rules("P130", "3", "GXP2170"), [Rule::NotAChoice]);
        assert_eq!(rules("P271", "yes", "GXP2170"), [Rule::WrongType]);
        let long_host = format!("{}b", "a.".repeat(32));
        assert_eq!(rules("P207", &long_host, ""), [Rule::TooLong]);
        assert_eq!(rules("P237", "prov.example.com/gs", "GRP2614"), []);
        assert_eq!(
            rules(
                "P64",
                "CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00",
                "HT802"
            ),
            []
        );
        assert_eq!(rules("P34", "", "GXP2170"), []);
    }

    #[test]
    fn unknown_p_values_are_warnings_that_say_why() {
        let catalog = Catalog::builtin();
        let absent = catalog.validate(p("P99999"), "1", "GXP2170");
        assert_eq!(absent.len(), 1);
        assert_eq!(absent[0].rule, Rule::UnknownForModel);
        assert_eq!(absent[0].severity, Severity::Warning);
        assert!(
            absent[0].message.contains("not in the catalogue at all"),
            "{}",
            absent[0].message
        );

        let other_model = catalog.validate(p("P402"), "pbx.example.com", "HT802");
        assert_eq!(other_model.len(), 1);
        assert_eq!(other_model[0].rule, Rule::UnknownForModel);
        assert!(
            other_model[0]
                .message
                .contains("listed only for gxp, grp, gxv models, not HT802"),
            "{}",
            other_model[0].message
        );
        // The value itself is still checked for a model the entry does not list.
        let both = catalog.validate(p("P402"), "not a host", "HT802");
        let rules: Vec<Rule> = both.iter().map(|v| v.rule).collect();
        assert_eq!(rules, [Rule::UnknownForModel, Rule::WrongType]);
        // No model, no family check.
        assert!(
            catalog
                .validate(p("P402"), "pbx.example.com", "")
                .is_empty()
        );
    }

    #[test]
    fn violations_become_diagnostics() {
        let v = &Catalog::builtin().validate(p("P271"), "yes", "GXP2170")[0];
        let d = v.to_diagnostic(p("P271"));
        assert_eq!(d.kind, "catalog-wrong-type");
        assert!(d.is_error());
        assert_eq!(d.field.as_deref(), Some("P271"));
        assert_eq!(
            d.message,
            "P271 (Account Active): expected 0 (no) or 1 (yes), got \"yes\""
        );
    }
}
