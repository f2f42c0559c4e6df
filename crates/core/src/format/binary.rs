//! Legacy binary `cfg<mac>` files, byte-compatible with the Perl encode.pl that most PBXs copy.
//!
//! Layout (all big-endian): length in 16-bit words (BE32), checksum word, 6 MAC bytes,
//! CR LF CR LF, then the body `P2=admin&…&gnkey=0b82` padded with NULs to a multiple of 4.
//! Invariants: the 16-bit word sum of every encoded file is 0 mod 0x10000, and
//! `decode(encode(mac, params))` gives back the MAC and the trimmed params in their order.
//!
//! The decoder is more lenient than the encoder where real encoders differ (the BE16 length
//! form, even-only or 16-byte padding, unescaped non-ASCII bytes) and strict where a difference
//! means a damaged file (length, checksum, separator, escapes, `gnkey` last).

use crate::{Mac, PName};

/// Length word + checksum word + MAC + CR LF CR LF.
const HEADER_LEN: usize = 16;
const CRLFCRLF: &[u8; 4] = b"\r\n\r\n";
/// The firmware wants this literal last (Elastix: "to prevent other variables from being
/// followed by a null byte"). wazo derives it from the MAC, which looks like a bug.
const GNKEY: &[u8] = b"gnkey=0b82";

/// What is wrong with a binary config file; offsets are byte offsets into the whole file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    #[error("binary config is {len} bytes, shorter than the 16-byte header (truncated?)")]
    TooShort { len: usize },
    #[error("binary config has an odd length ({len} bytes); the format is made of 16-bit words")]
    OddLength { len: usize },
    #[error(
        "length field says {declared} 16-bit words ({} bytes) but the file has {actual} bytes \
         (truncated or extended?)",
        u64::from(*declared) * 2
    )]
    LengthMismatch { declared: u32, actual: usize },
    #[error(
        "checksum mismatch: stored {stored:#06x}, expected {expected:#06x} (the file is damaged)"
    )]
    Checksum { stored: u16, expected: u16 },
    #[error("bytes 12-15 should be CR LF CR LF (0d0a0d0a) but are {found}")]
    MissingSeparator { found: String },
    #[error("NUL byte at offset {offset} inside the body; NULs may only pad its end")]
    NulInBody { offset: usize },
    #[error("item {item:?} at offset {offset} has no '='")]
    MissingEquals { offset: usize, item: String },
    #[error(
        "invalid parameter name {name:?} at offset {offset}: expected P followed by 1 to 5 digits"
    )]
    BadName { offset: usize, name: String },
    #[error("invalid escape {found:?} at offset {offset}: expected '%' and two hex digits")]
    BadEscape { offset: usize, found: String },
    #[error("value of {name} at offset {offset} is not valid UTF-8 once %XX escapes are decoded")]
    NotUtf8 { name: PName, offset: usize },
    #[error("the body must end with gnkey=0b82, but its last item is {found:?}")]
    MissingGnkey { found: String },
    #[error("gnkey=0b82 at offset {offset} is not the last item; the firmware requires it last")]
    GnkeyNotLast { offset: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBinary {
    pub mac: Mac,
    pub params: Vec<(PName, String)>,
}

/// Encodes the values in the order given (trimmed, `%XX`-escaped), `gnkey=0b82` last.
///
/// Every byte outside `A-Z a-z 0-9 . _ -` becomes `%XX` with uppercase hex, UTF-8 byte by
/// byte, as encode.pl and RFC 3986 do; the firmware URL-decodes values. Empty values are kept
/// (`P48=`), since an empty value is how a technician clears a setting.
pub fn encode(mac: Mac, params: &[(PName, String)]) -> Vec<u8> {
    // Worst case 3 bytes per value byte, plus "P99999=&" and up to 3 padding NULs.
    let capacity =
        HEADER_LEN + params.iter().map(|(_, v)| 8 + 3 * v.len()).sum::<usize>() + GNKEY.len() + 3;
    let mut file = Vec::with_capacity(capacity);
    // Length and checksum are filled in once the body's size is known.
    file.extend_from_slice(&[0; 6]);
    file.extend_from_slice(&mac.bytes());
    file.extend_from_slice(CRLFCRLF);
    for (name, value) in params {
        file.push(b'P');
        file.extend_from_slice(name.number().to_string().as_bytes());
        file.push(b'=');
        for &byte in value.trim().as_bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
                file.push(byte);
            } else {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                file.extend_from_slice(&[
                    b'%',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xF)],
                ]);
            }
        }
        file.push(b'&');
    }
    file.extend_from_slice(GNKEY);
    // Exactly encode.pl: one NUL if odd, then two more if not yet a multiple of 4. The header
    // is 16 bytes, so aligning the file aligns the body.
    if file.len() % 2 == 1 {
        file.push(0);
    }
    if file.len() % 4 != 0 {
        file.extend_from_slice(&[0, 0]);
    }
    // A body of up to 8 GiB fits the 32-bit word count; config files are a few KiB.
    let words = u32::try_from(file.len() / 2).unwrap_or(u32::MAX);
    file[0..4].copy_from_slice(&words.to_be_bytes());
    // The checksum makes the word sum zero; masking turns 0x10000 (sum already 0) into 0000.
    let checksum = 0u16.wrapping_sub(word_sum(&file));
    file[4..6].copy_from_slice(&checksum.to_be_bytes());
    file
}

/// Reads a binary config file back into its MAC and params, in file order.
pub fn decode(file: &[u8]) -> Result<DecodedBinary, BinaryError> {
    if file.len() < HEADER_LEN {
        return Err(BinaryError::TooShort { len: file.len() });
    }
    if file.len() % 2 == 1 {
        return Err(BinaryError::OddLength { len: file.len() });
    }
    let declared = u32::from_be_bytes([file[0], file[1], file[2], file[3]]);
    let actual_words = file.len() / 2;
    // Encoders that write bytes 0-1 as zero and a BE16 in 2-3 agree with the BE32 form below
    // 128 KiB; above it their BE16 wraps, so accept the wrapped count too.
    let be16_form = file[0] == 0
        && file[1] == 0
        && usize::from(u16::from_be_bytes([file[2], file[3]])) == actual_words % 0x10000;
    if usize::try_from(declared).ok() != Some(actual_words) && !be16_form {
        return Err(BinaryError::LengthMismatch {
            declared,
            actual: file.len(),
        });
    }
    let sum = word_sum(file);
    if sum != 0 {
        let stored = u16::from_be_bytes([file[4], file[5]]);
        return Err(BinaryError::Checksum {
            stored,
            // What the checksum would have to be for the rest of the file as it is.
            expected: stored.wrapping_sub(sum),
        });
    }
    if &file[12..16] != CRLFCRLF {
        return Err(BinaryError::MissingSeparator {
            found: hex::encode(&file[12..16]),
        });
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&file[6..12]);

    let padded = &file[HEADER_LEN..];
    let body = &padded[..padded
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1)];
    if let Some(nul) = body.iter().position(|&b| b == 0) {
        return Err(BinaryError::NulInBody {
            offset: HEADER_LEN + nul,
        });
    }
    let mut params = Vec::new();
    let mut offset = HEADER_LEN;
    let mut items = body.split(|&b| b == b'&').peekable();
    while let Some(item) = items.next() {
        let is_last = items.peek().is_none();
        if is_last {
            if item != GNKEY {
                return Err(BinaryError::MissingGnkey {
                    found: String::from_utf8_lossy(item).into_owned(),
                });
            }
            break;
        }
        let Some(eq) = item.iter().position(|&b| b == b'=') else {
            return Err(BinaryError::MissingEquals {
                offset,
                item: String::from_utf8_lossy(item).into_owned(),
            });
        };
        let raw_name = &item[..eq];
        if item == GNKEY {
            return Err(BinaryError::GnkeyNotLast { offset });
        }
        let name = std::str::from_utf8(raw_name)
            .ok()
            .and_then(|n| n.parse::<PName>().ok())
            .ok_or_else(|| BinaryError::BadName {
                offset,
                name: String::from_utf8_lossy(raw_name).into_owned(),
            })?;
        let value_offset = offset + eq + 1;
        let value = percent_decode(&item[eq + 1..], value_offset)?;
        let value = String::from_utf8(value).map_err(|_| BinaryError::NotUtf8 {
            name,
            offset: value_offset,
        })?;
        params.push((name, value));
        offset += item.len() + 1;
    }
    Ok(DecodedBinary {
        mac: Mac::from_bytes(mac),
        params,
    })
}

/// The sum of all big-endian 16-bit words, mod 0x10000. `bytes` has an even length.
fn word_sum(bytes: &[u8]) -> u16 {
    bytes.chunks_exact(2).fold(0u16, |sum, w| {
        sum.wrapping_add(u16::from_be_bytes([w[0], w[1]]))
    })
}

/// Decodes `%XX` escapes only: `+` stays `+`, because encode.pl never writes `+` for a space
/// and a literal `+` in a value (a dial prefix) must survive. `offset` is the value's place in
/// the file, for errors.
fn percent_decode(raw: &[u8], offset: usize) -> Result<Vec<u8>, BinaryError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let escape = raw.get(i + 1..i + 3);
            let byte = escape
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            let Some(byte) = byte else {
                let end = (i + 3).min(raw.len());
                return Err(BinaryError::BadEscape {
                    offset: offset + i,
                    found: String::from_utf8_lossy(&raw[i..end]).into_owned(),
                });
            };
            out.push(byte);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mac() -> Mac {
        "000b82123456".parse().unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(PName, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.parse().unwrap(), v.to_string()))
            .collect()
    }

    /// Encodes and compares with the expected file as hex (spaces ignored) plus a quoted body.
    fn check_encode(pairs: &[(&str, &str)], header_hex: &str, body: &str, padding: usize) {
        let mut expected = hex::decode(header_hex.replace(' ', "")).unwrap();
        expected.extend_from_slice(body.as_bytes());
        expected.extend(std::iter::repeat_n(0, padding));
        let got = encode(mac(), &params(pairs));
        assert_eq!(hex::encode(&got), hex::encode(&expected));
        let decoded = decode(&got).unwrap();
        assert_eq!(decoded.mac, mac());
        let trimmed: Vec<_> = params(pairs)
            .into_iter()
            .map(|(n, v)| (n, v.trim().to_string()))
            .collect();
        assert_eq!(decoded.params, trimmed);
    }

    /// Decodes `file` and compares the error message with a fragment.
    fn check_decode_err(file: &[u8], fragment: &str) {
        match decode(file) {
            Ok(d) => panic!("decoded {d:?}, expected an error containing {fragment:?}"),
            Err(e) => assert!(e.to_string().contains(fragment), "{e}"),
        }
    }

    /// Builds a file around a raw body (NUL-padded to even) with a correct length and checksum.
    fn file_with_body(body: &[u8]) -> Vec<u8> {
        let mut file = vec![0; 6];
        file.extend_from_slice(&mac().bytes());
        file.extend_from_slice(CRLFCRLF);
        file.extend_from_slice(body);
        if file.len() % 2 == 1 {
            file.push(0);
        }
        let words = (file.len() / 2) as u32;
        file[0..4].copy_from_slice(&words.to_be_bytes());
        let checksum = 0u16.wrapping_sub(word_sum(&file));
        file[4..6].copy_from_slice(&checksum.to_be_bytes());
        file
    }

    #[test]
    fn worked_example_from_the_facts() {
        check_encode(
            &[("P2", "admin"), ("P271", "0"), ("P270", "Account name")],
            "00000020 433b 000b82123456 0d0a0d0a",
            "P2=admin&P271=0&P270=Account%20name&gnkey=0b82",
            2,
        );
    }

    #[test]
    fn escapes_trims_and_pads_like_encode_pl() {
        // Body "P2=%C3%A9&gnkey=0b82" is 20 bytes: already a multiple of 4, no padding.
        let file = encode(mac(), &params(&[("P2", "é")]));
        assert_eq!(&file[16..], b"P2=%C3%A9&gnkey=0b82");
        // Odd body (21 bytes): one NUL, then two more to reach 24.
        let file = encode(mac(), &params(&[("P2", "a~")]));
        assert_eq!(&file[16..], b"P2=a%7E&gnkey=0b82\0\0");
        let file = encode(mac(), &params(&[("P20", " x+y/z&=_.- ")]));
        assert_eq!(&file[16..], b"P20=x%2By%2Fz%26%3D_.-&gnkey=0b82\0\0\0");
        // Empty values are kept; no params leaves just the gnkey.
        let file = encode(mac(), &params(&[("P48", "  ")]));
        assert_eq!(&file[16..], b"P48=&gnkey=0b82\0");
        assert_eq!(&encode(mac(), &[])[16..], b"gnkey=0b82\0\0");
    }

    #[test]
    fn checksum_of_zero_is_masked() {
        // Choose the MAC's last word so that the file sums to 0 before the checksum: then
        // 0x10000 - 0 must be stored as 0000, not overflow.
        let pairs = [("P2", "admin")];
        let base = encode(
            Mac::from_bytes([0, 0x0b, 0x82, 0x12, 0, 0]),
            &params(&pairs),
        );
        let rest = word_sum(&base).wrapping_sub(u16::from_be_bytes([base[4], base[5]]));
        let [hi, lo] = 0u16.wrapping_sub(rest).to_be_bytes();
        let mac = Mac::from_bytes([0, 0x0b, 0x82, 0x12, hi, lo]);
        let file = encode(mac, &params(&pairs));
        assert_eq!(&file[4..6], &[0, 0]);
        assert_eq!(word_sum(&file), 0);
        assert_eq!(decode(&file).unwrap().mac, mac);
    }

    #[test]
    fn accepts_the_be16_length_form_and_other_padding() {
        // A 16-byte-padded file (Gemeinschaft) and an even-only padded one (Elastix, sipX).
        let decoded = decode(&file_with_body(
            b"P2=a&gnkey=0b82\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        ))
        .unwrap();
        assert_eq!(decoded.params, params(&[("P2", "a")]));
        assert!(decode(&file_with_body(b"P2=ab&gnkey=0b82")).is_ok());
        // Unescaped spaces and raw UTF-8 (sipX writes values as they are), '+' stays '+'.
        let decoded = decode(&file_with_body("P3=a b+é&gnkey=0b82".as_bytes())).unwrap();
        assert_eq!(decoded.params, params(&[("P3", "a b+é")]));
    }

    #[test]
    fn detects_damage() {
        let good = encode(mac(), &params(&[("P2", "admin"), ("P270", "Account name")]));
        assert!(decode(&good).is_ok());
        // Any flipped byte breaks the word sum or the structure.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(decode(&bad).is_err(), "flipped byte {i} went unnoticed");
        }
        let mut bad = good.clone();
        bad[20] = b'Q';
        check_decode_err(&bad, "checksum mismatch: stored 0x");
        check_decode_err(
            &good[..good.len() - 4],
            "length field says 28 16-bit words (56 bytes) but the file has 52 bytes",
        );
        check_decode_err(&good[..good.len() - 1], "odd length (55 bytes)");
        check_decode_err(&good[..10], "10 bytes, shorter than the 16-byte header");
    }

    #[test]
    fn rejects_malformed_bodies() {
        check_decode_err(
            &file_with_body(b"P2=a&gnkey=0b83"),
            "must end with gnkey=0b82, but its last item is \"gnkey=0b83\"",
        );
        check_decode_err(&file_with_body(b"P2=a\0\0"), "last item is \"P2=a\"");
        check_decode_err(
            &file_with_body(b"P2=a&gnkey=0b82&P3=b"),
            "gnkey=0b82 at offset 21 is not the last item",
        );
        check_decode_err(
            &file_with_body(b"P2=%4&gnkey=0b82\0"),
            "invalid escape \"%4\" at offset 19",
        );
        check_decode_err(
            &file_with_body(b"P2=a%zz&gnkey=0b82"),
            "invalid escape \"%zz\" at offset 20",
        );
        check_decode_err(
            &file_with_body(b"P2=%FF&gnkey=0b82\0"),
            "value of P2 at offset 19 is not valid UTF-8",
        );
        check_decode_err(
            &file_with_body(b"P2=a&X7=b&gnkey=0b82"),
            "invalid parameter name \"X7\" at offset 21",
        );
        check_decode_err(
            &file_with_body(b"P2=a&P3&gnkey=0b82"),
            "item \"P3\" at offset 21 has no '='",
        );
        check_decode_err(
            &file_with_body(b"P2=a\0b&gnkey=0b82\0"),
            "NUL byte at offset 20",
        );
        let mut bad = file_with_body(b"P2=a&gnkey=0b82\0");
        bad[12] = b'\n';
        bad[4..6].copy_from_slice(&[0, 0]);
        let checksum = 0u16.wrapping_sub(word_sum(&bad));
        bad[4..6].copy_from_slice(&checksum.to_be_bytes());
        check_decode_err(&bad, "CR LF CR LF (0d0a0d0a) but are 0a0a0d0a");
    }

    fn arb_params() -> impl Strategy<Value = Vec<(PName, String)>> {
        let value = any::<String>().prop_map(|v| v.trim().to_string());
        proptest::collection::vec(
            ((0..=PName::MAX).prop_map(|n| PName::new(n).unwrap()), value),
            0..20,
        )
    }

    proptest! {
        #[test]
        fn round_trips_and_sums_to_zero(bytes: [u8; 6], params in arb_params()) {
            let mac = Mac::from_bytes(bytes);
            let file = encode(mac, &params);
            prop_assert_eq!(word_sum(&file), 0);
            prop_assert_eq!(file.len() % 4, 0);
            prop_assert_eq!(decode(&file), Ok(DecodedBinary { mac, params }));
        }

        #[test]
        fn trims_values(params in arb_params(), pad in "[ \t\r\n]{0,3}") {
            let padded: Vec<_> = params.iter().map(|(n, v)| (*n, format!("{pad}{v}{pad}"))).collect();
            let mac = mac();
            prop_assert_eq!(decode(&encode(mac, &padded)), Ok(DecodedBinary { mac, params }));
        }
    }
}
