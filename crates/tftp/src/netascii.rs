//! Netascii conversion (RFC 764 via RFC 1350): LF becomes CR LF and a bare CR becomes CR NUL.
//!
//! The mapping is a bijection, so a client that decodes what [`encode`] produced gets the
//! original bytes back exactly, CR LF pairs in the source included (they travel as CR NUL CR LF).

/// Converts local bytes to their netascii wire form.
pub fn encode(data: &[u8]) -> Vec<u8> {
    let extra = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count();
    let mut out = Vec::with_capacity(data.len() + extra);
    for &b in data {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            _ => out.push(b),
        }
    }
    out
}

/// Converts netascii back to local bytes: CR LF becomes LF and CR NUL becomes CR. A CR followed
/// by anything else (which a correct sender never produces) is kept as it is.
pub fn decode(wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(wire.len());
    let mut bytes = wire.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if b == b'\r' {
            match bytes.peek() {
                Some(b'\n') => {
                    bytes.next();
                    out.push(b'\n');
                }
                Some(0) => {
                    bytes.next();
                    out.push(b'\r');
                }
                _ => out.push(b'\r'),
            }
        } else {
            out.push(b);
        }
    }
    out
}

/// Whether the data needs conversion at all; most generated configs are LF text, but binary
/// files requested in netascii by mistake often have neither byte.
pub fn needs_encoding(data: &[u8]) -> bool {
    data.iter().any(|&b| b == b'\n' || b == b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(local: &[u8], wire: &[u8]) {
        assert_eq!(encode(local), wire);
        assert_eq!(decode(wire), local);
    }

    #[test]
    fn converts_line_ends_and_bare_cr() {
        check(b"", b"");
        check(b"abc", b"abc");
        check(b"a\nb", b"a\r\nb");
        check(b"a\rb", b"a\r\0b");
        check(b"a\r\nb", b"a\r\0\r\nb");
        check(b"\n\n\r", b"\r\n\r\n\r\0");
    }

    #[test]
    fn needs_encoding_spots_cr_and_lf() {
        assert!(!needs_encoding(b"plain"));
        assert!(needs_encoding(b"x\n"));
        assert!(needs_encoding(b"\r"));
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(data in proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(0u8), any::<u8>()], 0..300)) {
            prop_assert_eq!(decode(&encode(&data)), data);
        }
    }
}
