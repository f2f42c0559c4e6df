//! The Grandstream file formats, each a pure function pair (write/read) with no I/O.

pub mod binary;
pub mod crypt;
pub mod template;
pub mod xml;

/// Whether `text` is an XML config rather than a `Pnnn = value` template: its first character
/// after a UTF-8 BOM and whitespace is `<`. A template line always starts with `P` or `#`, so
/// the two cannot be confused.
pub fn looks_like_xml(text: &str) -> bool {
    text.strip_prefix('\u{FEFF}')
        .unwrap_or(text)
        .trim_start()
        .starts_with('<')
}

#[cfg(test)]
mod tests {
    use super::looks_like_xml;

    #[test]
    fn xml_is_recognised_by_its_first_character() {
        fn check(text: &str, expected: bool) {
            assert_eq!(looks_like_xml(text), expected, "{text:?}");
        }
        check("<?xml version=\"1.0\"?><gs_provision/>", true);
        check("\u{FEFF}\r\n  <gs_provision>", true);
        check("<!-- comment --><gs_provision/>", true);
        check("P2 = admin\n", false);
        check("\u{FEFF}# <b>comment</b>\nP2 = a", false);
        check("", false);
    }
}
