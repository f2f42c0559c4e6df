//! Syslog lines as phones send them, read leniently: RFC 5424, RFC 3164 (what Grandstream
//! phones send: `<14>May 19 02:40:38 192.168.1.14 GS_LOG: [00:0b:82:00:a1:be][000] Ethernet
//! link is up`, facility USER) and anything else, which is kept whole as the message. The
//! MAC addresses a line spells are found too, so the receiver can tie a line to its phone
//! when the source address does not say which phone it is.
//!
//! Invariants: [`parse`] never fails and never panics, whatever the bytes; it reads at most
//! [`MAX_LINE_BYTES`] of them (the caller cuts and counts the rest); every text it returns is
//! printable (control characters other than tab are escaped as `\u{..}`), so a line cannot
//! move a terminal's cursor or forge a second log line. Pure: the time a line was received
//! is an argument (it completes the year RFC 3164 leaves out), nothing is read from the
//! network or the clock. Parsing is `syslog_loose`'s (the Vector project's lenient parser);
//! this module turns its result into plain owned values.

use std::fmt;

use syslog_loose::{Message, Protocol, SyslogSeverity, Variant};

use crate::Mac;

/// The longest line kept, in bytes. Phones send lines of a few hundred bytes; a datagram can
/// carry 64 KiB, which is a flood's, not a phone's.
pub const MAX_LINE_BYTES: usize = 2048;

/// MAC addresses read from one line at most (a phone names its own first).
const MAX_MACS: usize = 4;

/// Which syslog format a line was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Rfc3164,
    Rfc5424,
    /// Not syslog at all (no `<PRI>`, no header): the whole line is the message.
    Raw,
}

/// RFC 5424 severities (the low three bits of the priority).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Emergency => "emergency",
            Severity::Alert => "alert",
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
            Severity::Info => "info",
            Severity::Debug => "debug",
        }
    }

    fn from_loose(severity: SyslogSeverity) -> Severity {
        match severity {
            SyslogSeverity::SEV_EMERG => Severity::Emergency,
            SyslogSeverity::SEV_ALERT => Severity::Alert,
            SyslogSeverity::SEV_CRIT => Severity::Critical,
            SyslogSeverity::SEV_ERR => Severity::Error,
            SyslogSeverity::SEV_WARNING => Severity::Warning,
            SyslogSeverity::SEV_NOTICE => Severity::Notice,
            SyslogSeverity::SEV_INFO => Severity::Info,
            SyslogSeverity::SEV_DEBUG => Severity::Debug,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One syslog line, read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyslogMessage {
    pub format: Format,
    /// `user`, `local0`, … (the priority's facility), when the line has a priority.
    pub facility: Option<&'static str>,
    pub severity: Option<Severity>,
    /// The sender's own clock (Unix milliseconds), when the header has a time. RFC 3164
    /// times have no year and no zone: the year is the receiver's (the previous one for a
    /// December line received in January), the zone this machine's.
    pub sent_at_ms: Option<i64>,
    pub hostname: Option<String>,
    /// The tag or APP-NAME (`GS_LOG`, `gs_phone`).
    pub app: Option<String>,
    pub proc_id: Option<String>,
    pub msg_id: Option<String>,
    pub message: String,
    /// The MAC addresses the line spells (header, structured data or message), in order,
    /// each once; all-zero and broadcast addresses are no one's.
    pub macs: Vec<Mac>,
}

/// Reads one datagram's line. `received_ms` is when it arrived (Unix milliseconds).
pub fn parse(bytes: &[u8], received_ms: i64) -> SyslogMessage {
    let bytes = &bytes[..bytes.len().min(MAX_LINE_BYTES)];
    let text = String::from_utf8_lossy(bytes);
    // Senders end lines with newlines, carriage returns or NULs (RFC 3164 relays, BSD
    // syslog); none of them belongs to the message.
    let text = text.trim_end_matches(['\n', '\r', '\0']);
    let (year, month) = year_and_month(received_ms);
    // A line dated in a month after this one is from last year (sent in December, received
    // on the 1st of January).
    let get_year = move |(line_month, ..): syslog_loose::IncompleteDate| {
        if line_month > month { year - 1 } else { year }
    };
    let parsed = syslog_loose::parse_message_with_year(text, get_year, Variant::Either);
    let macs = macs_in(text);
    let message = from_loose(&parsed, text, macs);
    if message.format == Format::Raw {
        return headerless(text, message.macs);
    }
    message
}

/// A line `syslog_loose` could not read: a priority and a tag without the timestamp RFC 3164
/// asks for (`<14>GS_LOG: …`, what many small senders write), or either alone; else raw.
fn headerless(text: &str, macs: Vec<Mac>) -> SyslogMessage {
    let (priority, rest) = split_priority(text);
    let (facility, severity) = priority.map_or((None, None), syslog_loose::decompose_pri);
    let (app, proc_id, message) = match split_tag(rest.trim_start()) {
        Some((app, proc_id, message)) => (Some(app), proc_id, message),
        None => (None, None, rest),
    };
    let format = if priority.is_some() || app.is_some() {
        Format::Rfc3164
    } else {
        Format::Raw
    };
    SyslogMessage {
        format,
        facility: facility.map(|f| f.as_str()),
        severity: severity.map(Severity::from_loose),
        sent_at_ms: None,
        hostname: None,
        app: app.map(printable),
        proc_id: proc_id.map(printable),
        msg_id: None,
        message: printable(message.trim()),
        macs,
    }
}

/// `<PRI>` at the start (1 to 3 digits, at most 191) and the text after it.
fn split_priority(text: &str) -> (Option<u8>, &str) {
    let Some(inner) = text.strip_prefix('<') else {
        return (None, text);
    };
    let Some((digits, rest)) = inner.split_once('>') else {
        return (None, text);
    };
    let priority = (1..=3).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    match digits.parse::<u8>() {
        Ok(value) if priority && value <= 191 => (Some(value), rest),
        _ => (None, text),
    }
}

/// `TAG: message` or `TAG[PID]: message`, with a tag of at most 48 name characters.
fn split_tag(text: &str) -> Option<(&str, Option<&str>, &str)> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')))
        .filter(|&end| (1..=48).contains(&end))?;
    let (tag, rest) = text.split_at(end);
    if let Some(message) = rest.strip_prefix(':') {
        return Some((tag, None, message));
    }
    let (pid, rest) = rest.strip_prefix('[')?.split_once(']')?;
    let message = rest.strip_prefix(':')?;
    Some((tag, Some(pid), message))
}

fn from_loose(parsed: &Message<&str>, text: &str, macs: Vec<Mac>) -> SyslogMessage {
    let has_header = parsed.facility.is_some()
        || parsed.timestamp.is_some()
        || parsed.hostname.is_some()
        || parsed.appname.is_some();
    let format = match parsed.protocol {
        Protocol::RFC5424(_) => Format::Rfc5424,
        Protocol::RFC3164 if has_header => Format::Rfc3164,
        Protocol::RFC3164 => Format::Raw,
    };
    let message = match format {
        // What the parser could not read is kept as it came, not as what it made of it.
        Format::Raw => text,
        _ => parsed.msg.trim_start_matches('\u{feff}'),
    };
    let field = |value: Option<&str>| {
        value
            .map(str::trim)
            .filter(|v| !v.is_empty() && *v != "-")
            .map(printable)
    };
    SyslogMessage {
        format,
        facility: parsed.facility.map(|f| f.as_str()),
        severity: parsed.severity.map(Severity::from_loose),
        sent_at_ms: parsed.timestamp.map(|t| t.timestamp_millis()),
        hostname: field(parsed.hostname),
        app: field(parsed.appname),
        proc_id: parsed.procid.as_ref().map(|p| printable(&p.to_string())),
        msg_id: field(parsed.msgid),
        message: printable(message.trim()),
        macs,
    }
}

/// The receiver's year and month (1–12) at `received_ms`, in UTC: a day's difference from
/// local time matters only on New Year's Eve, where either year is a guess.
fn year_and_month(received_ms: i64) -> (i32, u32) {
    use chrono::Datelike;
    let at = chrono::DateTime::from_timestamp_millis(received_ms).unwrap_or_default();
    (at.year(), at.month())
}

/// `text` with every control character but tab escaped (`\u{1b}`).
fn printable(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Every MAC address `text` spells (`00:0b:82:12:34:56`, `00-0B-…`, `000b.8212.3456` or 12
/// hex digits standing alone), in order, each once, at most [`MAX_MACS`].
pub fn macs_in(text: &str) -> Vec<Mac> {
    let mut macs: Vec<Mac> = Vec::new();
    let is_part = |b: u8| b.is_ascii_hexdigit() || matches!(b, b':' | b'-' | b'.');
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() && macs.len() < MAX_MACS {
        if !is_part(bytes[at]) {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && is_part(bytes[at]) {
            at += 1;
        }
        // A run glued to a letter or digit of a longer word (`x000b82123456`) is not a MAC.
        let glued = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
        if glued(start.checked_sub(1).and_then(|i| bytes.get(i))) || glued(bytes.get(at)) {
            continue;
        }
        // Only ASCII bytes are in a run, so it is a whole `str`.
        let run = text[start..at].trim_matches([':', '-', '.']);
        if !(12..=17).contains(&run.len()) {
            continue;
        }
        let Ok(mac) = run.parse::<Mac>() else {
            continue;
        };
        let bytes = mac.bytes();
        if bytes == [0; 6] || bytes == [0xff; 6] || macs.contains(&mac) {
            continue;
        }
        macs.push(mac);
    }
    macs
}

/// The syslog level Grandstream phones are told to send at (P208): a phone sends what is at
/// least this severe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogLevel {
    /// Every SIP message too: much traffic, for chasing a registration problem.
    Debug,
    /// Boot (model and firmware), registration changes, calls, link up: enough to see a
    /// phone come back after a provisioning, at a few lines a minute.
    #[default]
    Info,
    Warning,
    Error,
}

impl SyslogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            SyslogLevel::Debug => "debug",
            SyslogLevel::Info => "info",
            SyslogLevel::Warning => "warning",
            SyslogLevel::Error => "error",
        }
    }

    /// The P208 value: 0 NONE, 1 DEBUG, 2 INFO, 3 WARNING, 4 ERROR.
    pub fn p208(self) -> &'static str {
        match self {
            SyslogLevel::Debug => "1",
            SyslogLevel::Info => "2",
            SyslogLevel::Warning => "3",
            SyslogLevel::Error => "4",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-06 18:00:00 UTC.
    const NOW: i64 = 1_796_580_000_000;

    fn mac(text: &str) -> Mac {
        text.parse().unwrap()
    }

    #[test]
    fn a_grandstream_line_gives_its_header_and_its_mac() {
        let line = parse(
            b"<14>May 19 02:40:38 192.168.1.14 GS_LOG: [00:0b:82:00:a1:be][000] Ethernet link is up\n",
            NOW,
        );
        assert_eq!(line.format, Format::Rfc3164);
        assert_eq!(line.facility, Some("user"));
        assert_eq!(line.severity, Some(Severity::Info));
        assert_eq!(line.hostname.as_deref(), Some("192.168.1.14"));
        assert_eq!(line.app.as_deref(), Some("GS_LOG"));
        assert_eq!(line.message, "[00:0b:82:00:a1:be][000] Ethernet link is up");
        assert_eq!(line.macs, vec![mac("000b8200a1be")]);
        let sent = chrono::DateTime::from_timestamp_millis(line.sent_at_ms.unwrap()).unwrap();
        assert_eq!(chrono::Datelike::year(&sent), 2026);
    }

    #[test]
    fn rfc5424_lines_as_logger_sends_them() {
        let line = parse(
            b"<13>1 2026-12-06T18:00:01.123456+00:00 bench gxp [4242]: - [timeQuality tzKnown=\"1\"] \xef\xbb\xbfregistered 201 mac=C0-74-AD-11-22-33",
            NOW,
        );
        assert_eq!(line.format, Format::Rfc5424);
        assert_eq!(line.severity, Some(Severity::Notice));
        assert_eq!(line.facility, Some("user"));
        assert_eq!(line.hostname.as_deref(), Some("bench"));
        assert_eq!(line.sent_at_ms, Some(1_796_580_001_123));
        assert_eq!(line.message, "registered 201 mac=C0-74-AD-11-22-33");
        assert_eq!(line.macs, vec![mac("c074ad112233")]);
    }

    #[test]
    fn a_priority_and_a_tag_without_a_timestamp_are_read_too() {
        let line = parse(b"<11>GS_LOG: [00:0b:82:00:a1:be][000] no clock yet", NOW);
        assert_eq!(line.format, Format::Rfc3164);
        assert_eq!(line.severity, Some(Severity::Error));
        assert_eq!(line.facility, Some("user"));
        assert_eq!(line.app.as_deref(), Some("GS_LOG"));
        assert_eq!(line.message, "[00:0b:82:00:a1:be][000] no clock yet");
        assert_eq!(line.macs, vec![mac("000b8200a1be")]);
        let line = parse(b"gs_phone[77]: up", NOW);
        assert_eq!(line.format, Format::Rfc3164);
        assert_eq!(line.severity, None);
        assert_eq!(
            (
                line.app.as_deref(),
                line.proc_id.as_deref(),
                line.message.as_str()
            ),
            (Some("gs_phone"), Some("77"), "up")
        );
        let line = parse(b"<13>just words", NOW);
        assert_eq!(line.format, Format::Rfc3164);
        assert_eq!(line.severity, Some(Severity::Notice));
        assert_eq!((line.app, line.message.as_str()), (None, "just words"));
        // Out of range or not digits: not a priority.
        for text in ["<192>x", "<1a>x", "<>x", "<0013>x"] {
            let line = parse(text.as_bytes(), NOW);
            assert_eq!(line.severity, None, "{text}");
            assert_eq!(line.message, text);
        }
    }

    #[test]
    fn garbage_is_kept_whole_as_a_raw_message() {
        for input in [
            &b"hello there"[..],
            b"",
            b"<999>",
            b"<",
            b"\xff\xfe\x00\x01 not utf-8",
            b"<13>1 broken",
        ] {
            let line = parse(input, NOW);
            assert!(line.message.len() <= MAX_LINE_BYTES * 3, "{line:?}");
            assert!(
                !line.message.chars().any(|c| c.is_control() && c != '\t'),
                "{line:?}"
            );
        }
        let raw = parse(b"hello there", NOW);
        assert_eq!(raw.format, Format::Raw);
        assert_eq!(raw.message, "hello there");
        assert_eq!((raw.severity, raw.facility), (None, None));
    }

    #[test]
    fn control_characters_cannot_forge_a_second_line() {
        let line = parse(b"<14>gs: one\ntwo \x1b[2J\tthree", NOW);
        assert!(!line.message.contains('\n'), "{:?}", line.message);
        assert!(line.message.contains("\\u{a}two"), "{:?}", line.message);
        assert!(
            line.message.contains("\\u{1b}[2J\tthree"),
            "{:?}",
            line.message
        );
    }

    #[test]
    fn only_the_first_bytes_of_a_huge_line_are_read() {
        let mut huge = b"<14>gs: ".to_vec();
        huge.extend(std::iter::repeat_n(b'x', 64 * 1024));
        huge.extend_from_slice(b" 000b82123456");
        let line = parse(&huge, NOW);
        assert!(
            line.message.len() <= MAX_LINE_BYTES,
            "{}",
            line.message.len()
        );
        assert!(line.macs.is_empty(), "the MAC was past the cut");
    }

    #[test]
    fn a_december_line_received_in_january_is_from_last_year() {
        // 2027-01-01 00:00:30 UTC.
        let line = parse(b"<14>Dec 31 23:59:59 host app: bye", 1_798_761_630_000);
        let sent = chrono::DateTime::from_timestamp_millis(line.sent_at_ms.unwrap()).unwrap();
        assert_eq!(chrono::Datelike::year(&sent), 2026);
    }

    #[test]
    fn macs_are_found_in_every_spelling_but_not_inside_words_or_times() {
        let check = |text: &str, expected: &[&str]| {
            let expected: Vec<Mac> = expected.iter().map(|m| mac(m)).collect();
            assert_eq!(macs_in(text), expected, "{text}");
        };
        check("[00:0B:82:12:34:56][000]", &["000b82123456"]);
        check(
            "dev 000b.8212.3456, again 00-0b-82-12-34-56.",
            &["000b82123456"],
        );
        check(
            "DevId 000b82123456 and c074ad112233",
            &["000b82123456", "c074ad112233"],
        );
        check("at 02:40:38 fw 1.0.11.3 hash a979e2e9a979e2e9a979", &[]);
        check("cfgx000b82123456 and 000b82123456x", &[]);
        check("00:00:00:00:00:00 ff:ff:ff:ff:ff:ff", &[]);
        check("000b82123456:", &["000b82123456"]);
        let many = "000b82000001 000b82000002 000b82000003 000b82000004 000b82000005";
        assert_eq!(macs_in(many).len(), MAX_MACS);
    }

    proptest::proptest! {
        /// The fuzz target's checks on stable: any bytes, and lines shaped like syslog.
        #[test]
        fn any_bytes_are_read_within_bounds(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000)) {
            crate::fuzzing::syslog_line(&data);
        }

        #[test]
        fn syslog_shaped_lines_are_read_within_bounds(
            priority in 0u16..300,
            header in "[A-Za-z0-9 :\\[\\]<>.-]{0,60}",
            message in "\\PC{0,200}",
        ) {
            let line = format!("<{priority}>{header} {message}");
            crate::fuzzing::syslog_line(line.as_bytes());
            let read = parse(line.as_bytes(), NOW);
            proptest::prop_assert_eq!(read.severity.is_some(), priority <= 191);
        }
    }

    #[test]
    fn levels_are_the_p208_values() {
        assert_eq!(SyslogLevel::default().p208(), "2");
        assert_eq!(SyslogLevel::Debug.p208(), "1");
        assert_eq!(SyslogLevel::Error.p208(), "4");
    }
}
