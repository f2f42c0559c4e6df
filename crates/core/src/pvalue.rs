//! P-value names (`P` followed by 1–5 digits, as the phone's configuration templates spell
//! them) and the ordered parameter map every format writes from.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A parameter name such as `P47`. Ordered by number, so maps iterate in numeric order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PName(u32);

/// P-values in numeric order, each with its UTF-8 value.
pub type Params = BTreeMap<PName, String>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid P-value name {input:?}: expected P followed by 1 to 5 digits, e.g. P47")]
pub struct PNameError {
    pub input: String,
}

impl PName {
    /// The largest number a five-digit name can carry.
    pub const MAX: u32 = 99_999;

    pub const fn new(number: u32) -> Option<PName> {
        if number <= Self::MAX {
            Some(PName(number))
        } else {
            None
        }
    }

    pub const fn number(self) -> u32 {
        self.0
    }
}

impl FromStr for PName {
    type Err = PNameError;

    fn from_str(input: &str) -> Result<PName, PNameError> {
        let fail = || PNameError {
            input: input.to_string(),
        };
        let digits = input.strip_prefix('P').ok_or_else(fail)?;
        let well_formed = (1..=5).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            // A leading zero would give two spellings of one parameter (P047 and P47).
            && (digits.len() == 1 || !digits.starts_with('0'));
        if !well_formed {
            return Err(fail());
        }
        digits.parse().map(PName).map_err(|_| fail())
    }
}

impl fmt::Display for PName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.0)
    }
}

impl fmt::Debug for PName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.0)
    }
}

impl serde::Serialize for PName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<PName, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The text shown instead of a secret value.
pub const MASK: &str = "••••••";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_names() {
        for (text, number) in [
            ("P2", 2),
            ("P0", 0),
            ("P47", 47),
            ("P1359", 1359),
            ("P99999", 99_999),
        ] {
            let name: PName = text.parse().unwrap();
            assert_eq!(name.number(), number);
            assert_eq!(name.to_string(), text);
        }
    }

    #[test]
    fn rejects_everything_else_and_shows_it() {
        for bad in [
            "", "P", "p47", "47", "P123456", "P47a", "P-1", "P047", " P47", "P４７",
        ] {
            let err = bad.parse::<PName>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn orders_numerically() {
        let mut names: Vec<PName> = ["P1000", "P2", "P47", "P10"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        names.sort();
        let printed: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        assert_eq!(printed, ["P2", "P10", "P47", "P1000"]);
    }
}
