//! TFTP packet codec (RFC 1350, RFC 2347): bytes to [`Packet`] and back, with no I/O.
//!
//! Invariant: `parse(encode(p)) == p` for every packet whose strings hold no NUL byte and whose
//! option names are not empty. Parsing is strict about what a server must understand (opcode,
//! terminated filename and mode) and lenient about the rest (a truncated or non-UTF-8 option is
//! dropped, an ERROR message without its NUL is accepted), because real clients are sloppy there.

use std::fmt;

use bytes::Bytes;

const OP_RRQ: u16 = 1;
const OP_WRQ: u16 = 2;
const OP_DATA: u16 = 3;
const OP_ACK: u16 = 4;
const OP_ERROR: u16 = 5;
const OP_OACK: u16 = 6;

/// A TFTP error code (RFC 1350 §5, RFC 2347). A newtype rather than an enum so that any code a
/// peer sends round-trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    pub const NOT_DEFINED: Self = Self(0);
    pub const FILE_NOT_FOUND: Self = Self(1);
    pub const ACCESS_VIOLATION: Self = Self(2);
    pub const DISK_FULL: Self = Self(3);
    pub const ILLEGAL_OPERATION: Self = Self(4);
    pub const UNKNOWN_TID: Self = Self(5);
    pub const FILE_EXISTS: Self = Self(6);
    pub const NO_SUCH_USER: Self = Self(7);
    pub const OPTION_REFUSED: Self = Self(8);

    /// The name RFC 1350 / RFC 2347 give the code, if it has one.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "not defined",
            1 => "file not found",
            2 => "access violation",
            3 => "disk full",
            4 => "illegal operation",
            5 => "unknown transfer ID",
            6 => "file already exists",
            7 => "no such user",
            8 => "option negotiation refused",
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({name})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Transfer mode of a request. `mail` is obsolete (RFC 1350) and refused by the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Octet,
    Netascii,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Octet => "octet",
            Mode::Netascii => "netascii",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `name\0value\0` pair of a request or an OACK (RFC 2347). The name keeps the peer's
/// spelling; compare it with [`TftpOption::is`], which ignores ASCII case as the RFC requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TftpOption {
    pub name: String,
    pub value: String,
}

impl TftpOption {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }

    /// Whether this option is `name`, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Rrq {
        filename: String,
        mode: Mode,
        options: Vec<TftpOption>,
    },
    Wrq {
        filename: String,
        mode: Mode,
        options: Vec<TftpOption>,
    },
    Data {
        block: u16,
        data: Bytes,
    },
    Ack {
        block: u16,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    Oack {
        options: Vec<TftpOption>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("packet too short ({len} bytes)")]
    TooShort { len: usize },
    #[error("unknown opcode {0}")]
    UnknownOpcode(u16),
    #[error("the {field} is not terminated by a NUL byte")]
    Unterminated { field: &'static str },
    #[error("the {field} is not valid UTF-8")]
    NotUtf8 { field: &'static str },
    #[error("unsupported transfer mode {0:?}")]
    UnsupportedMode(String),
}

/// The opcode of a datagram, if it is long enough to have one. The server uses it to decide
/// whether a packet that failed to parse deserves an answer.
pub fn opcode(buf: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.first()?, *buf.get(1)?]))
}

/// Whether a datagram claims to be a request (RRQ or WRQ).
pub fn is_request(buf: &[u8]) -> bool {
    matches!(opcode(buf), Some(OP_RRQ | OP_WRQ))
}

pub fn parse(buf: &[u8]) -> Result<Packet, ParseError> {
    let op = opcode(buf).ok_or(ParseError::TooShort { len: buf.len() })?;
    let body = &buf[2..];
    match op {
        OP_RRQ | OP_WRQ => {
            let mut rest = body;
            let filename = take_str(&mut rest, "filename")?;
            let mode_text = take_str(&mut rest, "mode")?;
            let mode = if mode_text.eq_ignore_ascii_case("octet") {
                Mode::Octet
            } else if mode_text.eq_ignore_ascii_case("netascii") {
                Mode::Netascii
            } else {
                return Err(ParseError::UnsupportedMode(mode_text));
            };
            let options = parse_options(rest);
            Ok(if op == OP_RRQ {
                Packet::Rrq {
                    filename,
                    mode,
                    options,
                }
            } else {
                Packet::Wrq {
                    filename,
                    mode,
                    options,
                }
            })
        }
        OP_DATA => {
            let block = block_number(body, buf.len())?;
            Ok(Packet::Data {
                block,
                data: Bytes::copy_from_slice(&body[2..]),
            })
        }
        OP_ACK => {
            // Trailing bytes after the block number are ignored: some embedded clients pad.
            let block = block_number(body, buf.len())?;
            Ok(Packet::Ack { block })
        }
        OP_ERROR => {
            let code = ErrorCode(block_number(body, buf.len())?);
            let text = &body[2..];
            // The message is only for humans, so a missing NUL or bad UTF-8 does not make the
            // packet unusable: the error itself still has to abort the transfer.
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            Ok(Packet::Error {
                code,
                message: String::from_utf8_lossy(&text[..end]).into_owned(),
            })
        }
        OP_OACK => Ok(Packet::Oack {
            options: parse_options(body),
        }),
        other => Err(ParseError::UnknownOpcode(other)),
    }
}

fn block_number(body: &[u8], len: usize) -> Result<u16, ParseError> {
    match body {
        [hi, lo, ..] => Ok(u16::from_be_bytes([*hi, *lo])),
        _ => Err(ParseError::TooShort { len }),
    }
}

/// Takes one NUL-terminated UTF-8 string off the front of `rest`.
fn take_str(rest: &mut &[u8], field: &'static str) -> Result<String, ParseError> {
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(ParseError::Unterminated { field })?;
    let text = std::str::from_utf8(&rest[..end]).map_err(|_| ParseError::NotUtf8 { field })?;
    *rest = &rest[end + 1..];
    Ok(text.to_owned())
}

/// Reads `name\0value\0` pairs. An empty name ends the list (clients that pad requests with
/// NULs), an unterminated trailing pair is dropped, and a pair that is not UTF-8 is skipped:
/// RFC 2347 lets a server ignore options it does not understand.
fn parse_options(mut rest: &[u8]) -> Vec<TftpOption> {
    let mut options = Vec::new();
    while !rest.is_empty() {
        let Some(name_end) = rest.iter().position(|&b| b == 0) else {
            break;
        };
        if name_end == 0 {
            break;
        }
        let after_name = &rest[name_end + 1..];
        let Some(value_end) = after_name.iter().position(|&b| b == 0) else {
            break;
        };
        let name = std::str::from_utf8(&rest[..name_end]);
        let value = std::str::from_utf8(&after_name[..value_end]);
        if let (Ok(name), Ok(value)) = (name, value) {
            options.push(TftpOption::new(name, value));
        }
        rest = &after_name[value_end + 1..];
    }
    options
}

impl Packet {
    /// Appends the wire form of the packet to `buf`. Strings must not contain NUL bytes; the
    /// server only encodes strings it built itself or received NUL-free from the parser.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            Packet::Rrq {
                filename,
                mode,
                options,
            } => encode_request(buf, OP_RRQ, filename, *mode, options),
            Packet::Wrq {
                filename,
                mode,
                options,
            } => encode_request(buf, OP_WRQ, filename, *mode, options),
            Packet::Data { block, data } => encode_data(*block, data, buf),
            Packet::Ack { block } => {
                buf.extend_from_slice(&OP_ACK.to_be_bytes());
                buf.extend_from_slice(&block.to_be_bytes());
            }
            Packet::Error { code, message } => {
                buf.extend_from_slice(&OP_ERROR.to_be_bytes());
                buf.extend_from_slice(&code.0.to_be_bytes());
                put_str(buf, message);
            }
            Packet::Oack { options } => {
                buf.extend_from_slice(&OP_OACK.to_be_bytes());
                put_options(buf, options);
            }
        }
    }
}

/// Appends a DATA packet without building a [`Packet`] first.
pub fn encode_data(block: u16, data: &[u8], buf: &mut Vec<u8>) {
    buf.reserve(4 + data.len());
    buf.extend_from_slice(&OP_DATA.to_be_bytes());
    buf.extend_from_slice(&block.to_be_bytes());
    buf.extend_from_slice(data);
}

fn encode_request(buf: &mut Vec<u8>, op: u16, filename: &str, mode: Mode, opts: &[TftpOption]) {
    buf.extend_from_slice(&op.to_be_bytes());
    put_str(buf, filename);
    put_str(buf, mode.as_str());
    put_options(buf, opts);
}

fn put_options(buf: &mut Vec<u8>, options: &[TftpOption]) {
    for option in options {
        put_str(buf, &option.name);
        put_str(buf, &option.value);
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    debug_assert!(!s.contains('\0'), "TFTP strings cannot hold NUL bytes");
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(bytes: &[u8], expected: Result<Packet, ParseError>) {
        assert_eq!(parse(bytes), expected, "parsing {bytes:?}");
    }

    fn encoded(p: &Packet) -> Vec<u8> {
        let mut buf = Vec::new();
        p.encode(&mut buf);
        buf
    }

    #[test]
    fn parses_a_request_with_options_in_any_case() {
        check(
            b"\0\x01cfg000b82123456.xml\0OcTeT\0BLKSIZE\x001428\0tsize\x000\0",
            Ok(Packet::Rrq {
                filename: "cfg000b82123456.xml".into(),
                mode: Mode::Octet,
                options: vec![
                    TftpOption::new("BLKSIZE", "1428"),
                    TftpOption::new("tsize", "0"),
                ],
            }),
        );
        check(
            b"\0\x02f\0NETASCII\0",
            Ok(Packet::Wrq {
                filename: "f".into(),
                mode: Mode::Netascii,
                options: vec![],
            }),
        );
    }

    #[test]
    fn refuses_mail_and_unknown_modes() {
        check(
            b"\0\x01f\0mail\0",
            Err(ParseError::UnsupportedMode("mail".into())),
        );
        check(
            b"\0\x01f\0binary\0",
            Err(ParseError::UnsupportedMode("binary".into())),
        );
    }

    #[test]
    fn requests_need_terminated_filename_and_mode() {
        check(
            b"\0\x01file",
            Err(ParseError::Unterminated { field: "filename" }),
        );
        check(
            b"\0\x01file\0octet",
            Err(ParseError::Unterminated { field: "mode" }),
        );
        check(
            b"\0\x01\xff\xfe\0octet\0",
            Err(ParseError::NotUtf8 { field: "filename" }),
        );
    }

    #[test]
    fn tolerates_sloppy_option_lists() {
        let expected = Ok(Packet::Rrq {
            filename: "f".into(),
            mode: Mode::Octet,
            options: vec![TftpOption::new("blksize", "512")],
        });
        // NUL padding after the options.
        check(b"\0\x01f\0octet\0blksize\x00512\0\0\0\0", expected.clone());
        // A trailing option without its value or terminator.
        check(b"\0\x01f\0octet\0blksize\x00512\0tsize", expected.clone());
        check(
            b"\0\x01f\0octet\0blksize\x00512\0tsize\x000",
            expected.clone(),
        );
        // A non-UTF-8 option is skipped, the rest kept.
        check(b"\0\x01f\0octet\0\xff\0x\0blksize\x00512\0", expected);
    }

    #[test]
    fn parses_data_ack_error_oack() {
        check(
            b"\0\x03\xff\xffabc",
            Ok(Packet::Data {
                block: 65535,
                data: Bytes::from_static(b"abc"),
            }),
        );
        check(
            b"\0\x03\0\x01",
            Ok(Packet::Data {
                block: 1,
                data: Bytes::new(),
            }),
        );
        check(b"\0\x04\x01\x02", Ok(Packet::Ack { block: 0x0102 }));
        check(b"\0\x04\0\x07\0\0", Ok(Packet::Ack { block: 7 }));
        check(
            b"\0\x05\0\x01File not found\0",
            Ok(Packet::Error {
                code: ErrorCode::FILE_NOT_FOUND,
                message: "File not found".into(),
            }),
        );
        // Some clients forget the NUL after the message.
        check(
            b"\0\x05\0\x08no",
            Ok(Packet::Error {
                code: ErrorCode::OPTION_REFUSED,
                message: "no".into(),
            }),
        );
        check(
            b"\0\x06tsize\x0042\0",
            Ok(Packet::Oack {
                options: vec![TftpOption::new("tsize", "42")],
            }),
        );
    }

    #[test]
    fn rejects_short_and_unknown_packets() {
        check(b"", Err(ParseError::TooShort { len: 0 }));
        check(b"\0", Err(ParseError::TooShort { len: 1 }));
        check(b"\0\x04\0", Err(ParseError::TooShort { len: 3 }));
        check(b"\0\x03", Err(ParseError::TooShort { len: 2 }));
        check(b"\0\x05\0", Err(ParseError::TooShort { len: 3 }));
        check(b"\0\x07\0\0", Err(ParseError::UnknownOpcode(7)));
        check(b"\0\0", Err(ParseError::UnknownOpcode(0)));
    }

    #[test]
    fn encodes_the_wire_form() {
        assert_eq!(
            encoded(&Packet::Oack {
                options: vec![TftpOption::new("blksize", "1428")]
            }),
            b"\0\x06blksize\x001428\0"
        );
        assert_eq!(
            encoded(&Packet::Error {
                code: ErrorCode::UNKNOWN_TID,
                message: "x".into()
            }),
            b"\0\x05\0\x05x\0"
        );
        assert_eq!(encoded(&Packet::Ack { block: 258 }), b"\0\x04\x01\x02");
        let mut buf = Vec::new();
        encode_data(1, b"hi", &mut buf);
        assert_eq!(buf, b"\0\x03\0\x01hi");
    }

    #[test]
    fn error_codes_display_their_names() {
        assert_eq!(ErrorCode(1).to_string(), "1 (file not found)");
        assert_eq!(ErrorCode(99).to_string(), "99");
        assert!(TftpOption::new("WindowSize", "8").is("windowsize"));
    }

    fn text() -> impl Strategy<Value = String> {
        "[^\0]{0,40}"
    }

    fn option() -> impl Strategy<Value = TftpOption> {
        ("[^\0]{1,12}", text()).prop_map(|(name, value)| TftpOption { name, value })
    }

    fn mode() -> impl Strategy<Value = Mode> {
        prop_oneof![Just(Mode::Octet), Just(Mode::Netascii)]
    }

    fn packet() -> impl Strategy<Value = Packet> {
        let options = || proptest::collection::vec(option(), 0..6);
        prop_oneof![
            (text(), mode(), options()).prop_map(|(filename, mode, options)| Packet::Rrq {
                filename,
                mode,
                options
            }),
            (text(), mode(), options()).prop_map(|(filename, mode, options)| Packet::Wrq {
                filename,
                mode,
                options
            }),
            (
                any::<u16>(),
                proptest::collection::vec(any::<u8>(), 0..1500)
            )
                .prop_map(|(block, data)| Packet::Data {
                    block,
                    data: data.into()
                }),
            any::<u16>().prop_map(|block| Packet::Ack { block }),
            (any::<u16>(), text()).prop_map(|(code, message)| Packet::Error {
                code: ErrorCode(code),
                message
            }),
            options().prop_map(|options| Packet::Oack { options }),
        ]
    }

    proptest! {
        #[test]
        fn parse_inverts_encode(p in packet()) {
            prop_assert_eq!(parse(&encoded(&p)), Ok(p));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse(&bytes);
        }
    }
}
