//! Option negotiation (RFC 2347 blksize/tsize/timeout, RFC 2348, RFC 2349, RFC 7440 windowsize).
//!
//! Invariant: the OACK holds exactly the options that were accepted, with the values the
//! transfer will use; an option that is unknown, repeated, out of range or not a number is left
//! out (RFC 2347 lets a server ignore it), and with nothing accepted there is no OACK at all,
//! so the transfer falls back to plain RFC 1350.

use std::time::Duration;

use crate::codec::{Mode, TftpOption};
use crate::server::Config;

/// RFC 1350's block size, used when the client does not negotiate one.
pub const DEFAULT_BLKSIZE: u16 = 512;
/// The largest block size RFC 2348 allows.
pub const MAX_BLKSIZE: u16 = 65464;
/// The largest window the server agrees to, whatever the configuration says. Keeping the window
/// at most half the 16-bit block-number space lets an ACK be placed unambiguously: a number up
/// to 32768 blocks ahead of the last ACK is new, anything else is stale.
pub const MAX_WINDOWSIZE: u16 = 32768;

/// The parameters a transfer runs with, after negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferOptions {
    pub mode: Mode,
    pub blksize: u16,
    pub windowsize: u16,
    /// Retransmission interval: the negotiated `timeout`, or the server's default.
    pub timeout: Duration,
    /// The size announced in the OACK, if the client asked for it.
    pub tsize: Option<u64>,
}

/// The result of negotiation: the transfer's parameters and the OACK to send (empty: no OACK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiation {
    pub options: TransferOptions,
    pub oack: Vec<TftpOption>,
}

/// Decides the transfer parameters for a read request of `size` bytes (the source's size).
///
/// `tsize` is answered in octet mode only: in netascii the bytes on the wire and the file the
/// client writes differ in size, so any number would be wrong for somebody (tftpd-hpa makes
/// the same choice). It is also left out for an empty file, because curl (7.88 here) takes
/// `tsize 0` in an OACK as illegal and aborts, while without it the download just works.
pub fn negotiate(requested: &[TftpOption], mode: Mode, size: u64, config: &Config) -> Negotiation {
    let mut options = TransferOptions {
        mode,
        blksize: DEFAULT_BLKSIZE,
        windowsize: 1,
        timeout: config.timeout,
        tsize: None,
    };
    let mut oack: Vec<TftpOption> = Vec::new();
    for option in requested {
        // The first accepted occurrence of an option wins; a repeat is ignored rather than
        // letting a client make the OACK contradict itself.
        if oack.iter().any(|accepted| accepted.is(&option.name)) {
            continue;
        }
        let Some(value) = number(&option.value) else {
            continue;
        };
        let reply = if option.is("blksize") {
            if !(8..=u64::from(MAX_BLKSIZE)).contains(&value) {
                continue;
            }
            // Clamped, not refused: RFC 2348 lets the server answer with a smaller size.
            let max = config.max_blksize.clamp(8, MAX_BLKSIZE);
            options.blksize = (value as u16).min(max);
            options.blksize.to_string()
        } else if option.is("windowsize") {
            if !(1..=65535).contains(&value) {
                continue;
            }
            let max = config.max_windowsize.clamp(1, MAX_WINDOWSIZE);
            options.windowsize = (value as u16).min(max);
            options.windowsize.to_string()
        } else if option.is("timeout") {
            // RFC 2349: the server takes the value as it is or leaves the option out.
            if !(1..=255).contains(&value) {
                continue;
            }
            options.timeout = Duration::from_secs(value);
            option.value.clone()
        } else if option.is("tsize") {
            if mode != Mode::Octet || size == 0 {
                continue;
            }
            options.tsize = Some(size);
            size.to_string()
        } else {
            continue;
        };
        oack.push(TftpOption::new(option.name.clone(), reply));
    }
    Negotiation { options, oack }
}

/// A decimal option value. Signs, spaces and overflow make it malformed.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            max_blksize: 1468,
            max_windowsize: 64,
            timeout: Duration::from_millis(700),
            ..Config::default()
        }
    }

    fn opts(pairs: &[(&str, &str)]) -> Vec<TftpOption> {
        pairs.iter().map(|(n, v)| TftpOption::new(*n, *v)).collect()
    }

    /// Negotiates `request` for a 1000-byte file and compares the OACK and parameters.
    fn check(mode: Mode, request: &[(&str, &str)], oack: &[(&str, &str)], expected: (u16, u16)) {
        let n = negotiate(&opts(request), mode, 1000, &config());
        assert_eq!(n.oack, opts(oack), "OACK for {request:?}");
        assert_eq!(
            (n.options.blksize, n.options.windowsize),
            expected,
            "blksize and windowsize for {request:?}"
        );
    }

    #[test]
    fn no_options_means_plain_rfc1350() {
        let n = negotiate(&[], Mode::Octet, 1000, &config());
        assert!(n.oack.is_empty());
        assert_eq!(n.options.blksize, 512);
        assert_eq!(n.options.windowsize, 1);
        assert_eq!(n.options.timeout, Duration::from_millis(700));
        assert_eq!(n.options.tsize, None);
    }

    #[test]
    fn accepts_and_echoes_in_the_clients_spelling() {
        check(
            Mode::Octet,
            &[("BlkSize", "1428"), ("TSIZE", "0"), ("windowsize", "8")],
            &[("BlkSize", "1428"), ("TSIZE", "1000"), ("windowsize", "8")],
            (1428, 8),
        );
    }

    #[test]
    fn clamps_blksize_and_windowsize_to_the_config() {
        check(
            Mode::Octet,
            &[("blksize", "65464"), ("windowsize", "65535")],
            &[("blksize", "1468"), ("windowsize", "64")],
            (1468, 64),
        );
        let mut big = config();
        big.max_blksize = 65535;
        big.max_windowsize = 65535;
        let n = negotiate(
            &opts(&[("blksize", "65464"), ("windowsize", "65535")]),
            Mode::Octet,
            0,
            &big,
        );
        assert_eq!(n.options.blksize, MAX_BLKSIZE);
        assert_eq!(n.options.windowsize, MAX_WINDOWSIZE);
    }

    #[test]
    fn ignores_out_of_range_malformed_unknown_and_repeated_options() {
        check(
            Mode::Octet,
            &[
                ("blksize", "7"),
                ("windowsize", "0"),
                ("timeout", "0"),
                ("timeout", "256"),
                ("blksize", "65465"),
                ("blksize", "+512"),
                ("blksize", " 512"),
                ("tsize", ""),
                ("tsize", "99999999999999999999999"),
                ("multicast", "1"),
                ("rollover", "0"),
            ],
            &[],
            (512, 1),
        );
        check(
            Mode::Octet,
            &[("blksize", "1024"), ("BLKSIZE", "8")],
            &[("blksize", "1024")],
            (1024, 1),
        );
    }

    #[test]
    fn timeout_is_taken_as_is() {
        let n = negotiate(&opts(&[("timeout", "3")]), Mode::Octet, 0, &config());
        assert_eq!(n.oack, opts(&[("timeout", "3")]));
        assert_eq!(n.options.timeout, Duration::from_secs(3));
    }

    #[test]
    fn tsize_reports_the_size_in_octet_mode_unless_empty() {
        let n = negotiate(&opts(&[("tsize", "0")]), Mode::Octet, 41_943_040, &config());
        assert_eq!(n.oack, opts(&[("tsize", "41943040")]));
        assert_eq!(n.options.tsize, Some(41_943_040));
        for (mode, size) in [(Mode::Netascii, 1000), (Mode::Octet, 0)] {
            let n = negotiate(&opts(&[("tsize", "0")]), mode, size, &config());
            assert!(n.oack.is_empty(), "{mode} {size}");
            assert_eq!(n.options.tsize, None);
        }
    }
}
