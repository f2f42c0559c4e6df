//! MAC addresses as phones use them: parsed from any common spelling, printed as 12 lowercase
//! hex digits (the form in `cfg<mac>` file names and in the User-Agent's `DevId`).

use std::fmt;
use std::str::FromStr;

/// A 48-bit hardware address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac([u8; 6]);

/// Why a text is not a MAC address; carries the text so the message can show it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {input:?}: {reason}")]
pub struct MacError {
    pub input: String,
    pub reason: &'static str,
}

impl Mac {
    pub const fn from_bytes(bytes: [u8; 6]) -> Mac {
        Mac(bytes)
    }

    pub const fn bytes(&self) -> [u8; 6] {
        self.0
    }

    /// The 12 lowercase hex digits, without allocating: every fetch-log row and event line
    /// in a boot storm spells a MAC.
    pub fn hex(&self) -> MacHex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 12];
        for (pair, byte) in text.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        MacHex(text)
    }
}

/// A MAC spelled as 12 lowercase hex digits, on the stack; see [`Mac::hex`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MacHex([u8; 12]);

impl MacHex {
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into it.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for MacHex {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl FromStr for Mac {
    type Err = MacError;

    /// Accepts `000B82123456`, `00:0b:82:12:34:56`, `00-0B-82-12-34-56` and `000b.8212.3456`.
    fn from_str(input: &str) -> Result<Mac, MacError> {
        let fail = |reason| MacError {
            input: input.to_string(),
            reason,
        };
        let trimmed = input.trim();
        let mut digits = Vec::with_capacity(12);
        for c in trimmed.chars() {
            match c {
                ':' | '-' | '.' => {}
                c if c.is_ascii_hexdigit() => digits.push(c as u8),
                _ => {
                    return Err(fail(
                        "only hex digits and ':', '-' or '.' separators are allowed",
                    ));
                }
            }
        }
        if digits.len() != 12 {
            return Err(fail("a MAC address has exactly 12 hex digits"));
        }
        let separators: Vec<usize> = trimmed
            .char_indices()
            .filter(|(_, c)| !c.is_ascii_hexdigit())
            .map(|(i, _)| i)
            .collect();
        let well_placed = match separators.len() {
            0 => true,
            5 => separators.iter().enumerate().all(|(k, &i)| i == 2 + 3 * k),
            2 => separators == [4, 9],
            _ => false,
        };
        if !well_placed {
            return Err(fail(
                "separators must split the address into pairs or groups of four",
            ));
        }
        let mut bytes = [0u8; 6];
        for (k, pair) in digits.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| fail("not ASCII"))?;
            bytes[k] = u8::from_str_radix(text, 16).map_err(|_| fail("not hex"))?;
        }
        Ok(Mac(bytes))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One write of 12 digits: six `{:02x}` writes cost a boot storm measurably more.
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Mac, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_spells_what_display_prints() {
        let mac = Mac::from_bytes([0x00, 0x0b, 0x82, 0x12, 0xab, 0xff]);
        assert_eq!(mac.hex().as_str(), "000b8212abff");
        assert_eq!(&*mac.hex(), mac.to_string());
    }

    fn check(input: &str, expected: Result<&str, &str>) {
        let got = input
            .parse::<Mac>()
            .map(|m| m.to_string())
            .map_err(|e| e.to_string());
        match (got, expected) {
            (Ok(g), Ok(e)) => assert_eq!(g, e, "input {input:?}"),
            (Err(g), Err(e)) => assert!(g.contains(e), "input {input:?}: {g}"),
            (g, e) => panic!("input {input:?}: got {g:?}, expected {e:?}"),
        }
    }

    #[test]
    fn accepts_common_spellings() {
        check("000B82123456", Ok("000b82123456"));
        check("00:0b:82:12:34:56", Ok("000b82123456"));
        check("00-0B-82-12-34-56", Ok("000b82123456"));
        check("000b.8212.3456", Ok("000b82123456"));
        check("  c074ad0b63ee ", Ok("c074ad0b63ee"));
    }

    #[test]
    fn rejects_bad_input_and_shows_it() {
        check("000B8212345", Err("\"000B8212345\""));
        check("000B821234567", Err("exactly 12"));
        check("00:0b:82:12:34:5g", Err("only hex"));
        check("000b:82:12:34:56", Err("separators"));
        check("", Err("exactly 12"));
        check("00 0b 82 12 34 56", Err("only hex"));
    }

    proptest::proptest! {
        #[test]
        fn display_parses_back(bytes: [u8; 6]) {
            let mac = Mac::from_bytes(bytes);
            proptest::prop_assert_eq!(mac.to_string().parse::<Mac>().unwrap(), mac);
            let colons = bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
            proptest::prop_assert_eq!(colons.parse::<Mac>().unwrap(), mac);
        }
    }
}
