//! Reads a Grandstream phone's HTTP User-Agent: model, hardware revision, firmware version
//! and MAC. The servers read it from each request (to know an unknown phone), the hand-over
//! report from the fetch log (the firmware a phone first came with). Written without regexes
//! because the format is a fixed word sequence; anything that does not follow it is "not a
//! Grandstream phone" (`None`), never an error.

use crate::Mac;

/// What a Grandstream User-Agent says about the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneAgent {
    /// Lowercase, as in `cfg<model>.xml` (`gxp2170`).
    pub model: String,
    /// `V1.1A` → `1.1A`; many models leave it out.
    pub hw_revision: Option<String>,
    /// `1.0.11.3`; empty when an old User-Agent does not say.
    pub firmware: String,
    pub mac: Mac,
}

/// Parses the two known forms:
///
/// - `Grandstream Model HW <MODEL> [V<rev>] SW <VERSION> DevId <mac>` (current firmware; runs
///   of spaces are allowed between words, as some models send them);
/// - `Grandstream <MODEL> (<image>:<version>/…) DevId <mac>` (old GXP/BT firmware), where
///   the firmware is the version of the first image in the parenthesis.
pub fn parse_user_agent(ua: &str) -> Option<PhoneAgent> {
    let mut words = ua.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("grandstream") {
        return None;
    }
    let second = words.next()?;
    if second == "Model" {
        parse_current(words)
    } else {
        parse_old(second, ua)
    }
}

fn parse_current<'a>(mut words: impl Iterator<Item = &'a str>) -> Option<PhoneAgent> {
    if words.next()? != "HW" {
        return None;
    }
    let model = model_word(words.next()?)?;
    let mut next = words.next()?;
    let mut hw_revision = None;
    if next != "SW" {
        hw_revision = Some(next.strip_prefix('V')?.to_string());
        next = words.next()?;
    }
    if next != "SW" {
        return None;
    }
    let firmware = words.next()?.to_string();
    if words.next()? != "DevId" {
        return None;
    }
    let mac = words.next()?.parse().ok()?;
    Some(PhoneAgent {
        model,
        hw_revision,
        firmware,
        mac,
    })
}

fn parse_old(model: &str, ua: &str) -> Option<PhoneAgent> {
    let model = model_word(model)?;
    let mut words = ua.split_whitespace();
    words.find(|w| *w == "DevId")?;
    let mac = words.next()?.parse().ok()?;
    // `(gxp2000e.bin:1.2.5.3/boot55e.bin:1.1.6.9)`: the first image is the program.
    let firmware = ua
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(inside, _)| inside.split('/').next())
        .and_then(|first| first.split_once(':'))
        .map(|(_, version)| version.trim().to_string())
        .unwrap_or_default();
    Some(PhoneAgent {
        model,
        hw_revision: None,
        firmware,
        mac,
    })
}

/// A model is one word of letters, digits and `_` (`\w+` in wazo's regex), kept lowercase.
fn model_word(word: &str) -> Option<String> {
    let ok = !word.is_empty()
        && word.len() <= 32
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then(|| word.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ua: &str, expected: Option<(&str, Option<&str>, &str, &str)>) {
        let got = parse_user_agent(ua);
        let want = expected.map(|(model, rev, firmware, mac)| PhoneAgent {
            model: model.into(),
            hw_revision: rev.map(Into::into),
            firmware: firmware.into(),
            mac: mac.parse().unwrap(),
        });
        assert_eq!(got, want, "{ua:?}");
    }

    #[test]
    fn reads_every_documented_example() {
        check(
            "Grandstream Model HW GXP1405 SW 1.0.4.23 DevId 000b8240d55c",
            Some(("gxp1405", None, "1.0.4.23", "000b8240d55c")),
        );
        check(
            "Grandstream Model HW GXP2200 V2.2A SW 1.0.1.33 DevId 000b82462d97",
            Some(("gxp2200", Some("2.2A"), "1.0.1.33", "000b82462d97")),
        );
        check(
            "Grandstream Model HW GXV3350  V1.3A SW 1.0.1.8 DevId c074ad150b88",
            Some(("gxv3350", Some("1.3A"), "1.0.1.8", "c074ad150b88")),
        );
        check(
            "Grandstream Model HW GRP2614 SW 1.0.5.15 DevId c074ad0b63ee",
            Some(("grp2614", None, "1.0.5.15", "c074ad0b63ee")),
        );
        check(
            "Grandstream Model HW HT801 V1.1A SW 1.0.17.5 DevId c074ad273a10",
            Some(("ht801", Some("1.1A"), "1.0.17.5", "c074ad273a10")),
        );
        check(
            "Grandstream GXP2000 (gxp2000e.bin:1.2.5.3/boot55e.bin:1.1.6.9) DevId 000b822726c8",
            Some(("gxp2000", None, "1.2.5.3", "000b822726c8")),
        );
    }

    #[test]
    fn tolerates_case_and_spacing_but_not_other_agents() {
        check(
            "grandstream Model HW GXP2170 V1.1A SW 1.0.11.3 DevId 000B82123456",
            Some(("gxp2170", Some("1.1A"), "1.0.11.3", "000b82123456")),
        );
        check(
            "  Grandstream   Model HW  GXP2170   SW 1.0.11.3  DevId 000b82123456 ",
            Some(("gxp2170", None, "1.0.11.3", "000b82123456")),
        );
        check(
            "Grandstream BT200 DevId 000b82000001",
            Some(("bt200", None, "", "000b82000001")),
        );
        check("curl/7.88.1", None);
        check("", None);
        check("Grandstream", None);
        check(
            "Grandstream Model HW GXP2170 SW 1.0 DevId nothex123456",
            None,
        );
        check(
            "Grandstream Model HW GXP2170 1.1A SW 1.0 DevId 000b82123456",
            None,
        );
        check("Grandstream Model HW GXP2170 SW 1.0 DevId", None);
        check(
            "Grandstream Model HW GXP/2170 SW 1.0 DevId 000b82123456",
            None,
        );
        check("Grandstream GXP2000 (no devid here)", None);
    }
}
