//! Grandstream's template text: `Pnnn = value` lines, `#` comment lines and blank lines, the
//! input format of encode.pl, GAPSLite and the Elastix templates.
//!
//! Invariants: parsing never stops at a bad line (every problem becomes a diagnostic and the
//! rest is still read), and entries keep file order and duplicates, because the binary encoder
//! writes params in the order given.
//!
//! Unlike encode.pl, a `#` inside a value is part of the value: only a line whose first
//! non-blank character is `#` is a comment. encode.pl cuts every line at `#`, which silently
//! truncates passwords and dial plans (`*#`), the classic complaint about that tool.

use std::collections::HashMap;

use crate::{Diagnostic, PName};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateEntry {
    pub name: PName,
    pub value: String,
    /// The `#` comment lines directly above the entry, without the `#`, joined by '\n'.
    pub comment: Option<String>,
    /// 1-based line number.
    pub line: usize,
}

/// Reads a template. Accepts a UTF-8 BOM and LF, CRLF or lone-CR line endings; spaces around
/// `=` and around the value are trimmed, and the line is split at the first `=`, so values may
/// contain `=`. Contiguous comment lines directly above an entry (no blank line between)
/// become its `comment`, without the `#` and one following space.
///
/// Diagnostics: `template-syntax` (error) for a line that is not a comment, blank or
/// `name = value`, or whose name is not a P-value name; `template-duplicate` (warning) when a
/// name is set again. Both entries are kept, so the later value wins wherever the entries are
/// applied in order.
pub fn parse(text: &str) -> (Vec<TemplateEntry>, Vec<Diagnostic>) {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut entries = Vec::new();
    let mut diagnostics = Vec::new();
    let mut first_seen: HashMap<PName, usize> = HashMap::new();
    let mut comment: Vec<&str> = Vec::new();
    for (index, raw) in lines(text).enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            comment.clear();
            continue;
        }
        if let Some(body) = trimmed.strip_prefix('#') {
            comment.push(body.strip_prefix(' ').unwrap_or(body));
            continue;
        }
        let column = raw.chars().take_while(|c| c.is_whitespace()).count() + 1;
        let Some((name, value)) = trimmed.split_once('=') else {
            diagnostics.push(
                Diagnostic::error(
                    "template-syntax",
                    format!(
                        "expected `Pnnn = value`, a `#` comment or a blank line, found {trimmed:?}"
                    ),
                )
                .at(line, column)
                .field(trimmed),
            );
            comment.clear();
            continue;
        };
        let name_text = name.trim();
        let name = match name_text.parse::<PName>() {
            Ok(name) => name,
            Err(error) => {
                diagnostics.push(
                    Diagnostic::error("template-syntax", error.to_string())
                        .at(line, column)
                        .field(name_text),
                );
                comment.clear();
                continue;
            }
        };
        if let Some(first) = first_seen.get(&name) {
            diagnostics.push(
                Diagnostic::warning(
                    "template-duplicate",
                    format!("{name} is set again (first on line {first}); the last value wins"),
                )
                .at(line, column)
                .field(name.to_string()),
            );
        } else {
            first_seen.insert(name, line);
        }
        entries.push(TemplateEntry {
            name,
            value: value.trim().to_string(),
            comment: (!comment.is_empty()).then(|| comment.join("\n")),
            line,
        });
        comment.clear();
    }
    (entries, diagnostics)
}

/// Writes `P2 = admin` lines in the order given, each newline-terminated; an empty value is
/// written as `P48 =`.
///
/// The format has no escaping: a value's surrounding whitespace and any line break in it do
/// not survive [`parse`]. Values reaching this are already validated single-line settings.
pub fn write<'a>(params: impl IntoIterator<Item = (PName, &'a str)>) -> String {
    let mut out = String::new();
    for (name, value) in params {
        out.reserve(value.len() + 12);
        out.push_str(&name.to_string());
        out.push_str(" =");
        if !value.is_empty() {
            out.push(' ');
            out.push_str(value);
        }
        out.push('\n');
    }
    out
}

/// Splits at LF, CRLF or a lone CR (old Mac editors), without the terminators.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(end) => {
                let terminator = if current[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[end + terminator..]);
                Some(&current[..end])
            }
            None => {
                rest = None;
                // A final line without terminator; nothing after a trailing newline.
                (!current.is_empty()).then_some(current)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;
    use proptest::prelude::*;

    /// Parses `input` and compares a one-line-per-fact rendering of entries and diagnostics.
    fn check(input: &str, expected: &str) {
        let (entries, diagnostics) = parse(input);
        let mut got = String::new();
        for e in &entries {
            got.push_str(&format!("{} {}={:?}", e.line, e.name, e.value));
            if let Some(comment) = &e.comment {
                got.push_str(&format!(" comment={comment:?}"));
            }
            got.push('\n');
        }
        for d in &diagnostics {
            let severity = if d.severity == Severity::Error {
                "error"
            } else {
                "warning"
            };
            got.push_str(&format!(
                "{severity} {} line {} field {:?}: {}\n",
                d.kind,
                d.line.unwrap_or(0),
                d.field.as_deref().unwrap_or(""),
                d.message
            ));
        }
        assert_eq!(got, expected, "input: {input:?}");
    }

    #[test]
    fn reads_entries_with_and_without_spaces() {
        check(
            "P2 = admin\nP271=1\n  P270   =   Account name  \nP48 =\nP49=\n",
            "1 P2=\"admin\"\n2 P271=\"1\"\n3 P270=\"Account name\"\n4 P48=\"\"\n5 P49=\"\"\n",
        );
    }

    #[test]
    fn keeps_hash_and_equals_inside_values() {
        check(
            "P34 = pa#ss=word # not a comment\nP290 = {x+|*x+|*#x+}\nP2==a=\n",
            "1 P34=\"pa#ss=word # not a comment\"\n2 P290=\"{x+|*x+|*#x+}\"\n3 P2=\"=a=\"\n",
        );
    }

    #[test]
    fn attaches_contiguous_comments() {
        check(
            "# Section\n\n# Admin password\n#   indented\n  #no space\nP2 = admin\n\
             P3 = x\n# orphan\n\n#\n# after empty\nP4 = y\n# trailing\n",
            "6 P2=\"admin\" comment=\"Admin password\\n  indented\\nno space\"\n\
             7 P3=\"x\"\n12 P4=\"y\" comment=\"\\nafter empty\"\n",
        );
    }

    #[test]
    fn handles_bom_and_line_endings() {
        check(
            "\u{FEFF}# c\r\nP2 = a\r\nP3 = b\rP4 = c\n\rP5 = d",
            "2 P2=\"a\" comment=\"c\"\n3 P3=\"b\"\n4 P4=\"c\"\n6 P5=\"d\"\n",
        );
        check("", "");
        check("\u{FEFF}", "");
        check("\n\r\n\r", "");
    }

    #[test]
    fn reports_bad_lines_and_keeps_going() {
        check(
            "# about P2\nP2 admin\nP3 = ok\np4 = lower\n = no name\nP047 = zero\nX = y\nP5 = fine\n",
            "3 P3=\"ok\"\n8 P5=\"fine\"\n\
             error template-syntax line 2 field \"P2 admin\": expected `Pnnn = value`, a `#` comment or a blank line, found \"P2 admin\"\n\
             error template-syntax line 4 field \"p4\": invalid P-value name \"p4\": expected P followed by 1 to 5 digits, e.g. P47\n\
             error template-syntax line 5 field \"\": invalid P-value name \"\": expected P followed by 1 to 5 digits, e.g. P47\n\
             error template-syntax line 6 field \"P047\": invalid P-value name \"P047\": expected P followed by 1 to 5 digits, e.g. P47\n\
             error template-syntax line 7 field \"X\": invalid P-value name \"X\": expected P followed by 1 to 5 digits, e.g. P47\n",
        );
        // A comment above a bad line does not move down to the next entry.
        check(
            "# c\nbad\nP2 = a\n",
            "3 P2=\"a\"\nerror template-syntax line 2 field \"bad\": expected `Pnnn = value`, a `#` comment or a blank line, found \"bad\"\n",
        );
    }

    #[test]
    fn keeps_duplicates_in_order_with_a_warning() {
        check(
            "P2 = a\nP3 = b\nP2 = c\nP2 = d\n",
            "1 P2=\"a\"\n2 P3=\"b\"\n3 P2=\"c\"\n4 P2=\"d\"\n\
             warning template-duplicate line 3 field \"P2\": P2 is set again (first on line 1); the last value wins\n\
             warning template-duplicate line 4 field \"P2\": P2 is set again (first on line 1); the last value wins\n",
        );
    }

    #[test]
    fn diagnostics_carry_line_and_column() {
        let (_, diagnostics) = parse("P2 = a\n   P2x = b\n");
        assert_eq!(
            (diagnostics[0].line, diagnostics[0].column),
            (Some(2), Some(4))
        );
    }

    #[test]
    fn writes_one_line_per_param() {
        let p2: PName = "P2".parse().unwrap();
        let p48: PName = "P48".parse().unwrap();
        assert_eq!(
            write([(p48, ""), (p2, "a # b"), (p2, "x=y")]),
            "P48 =\nP2 = a # b\nP2 = x=y\n"
        );
        assert_eq!(write([]), "");
    }

    proptest! {
        #[test]
        fn write_then_parse_round_trips(
            params in proptest::collection::vec(
                ((0..=PName::MAX).prop_map(|n| PName::new(n).unwrap()), "[^\r\n]*"),
                0..20,
            )
        ) {
            let params: Vec<(PName, String)> =
                params.into_iter().map(|(n, v)| (n, v.trim().to_string())).collect();
            let text = write(params.iter().map(|(n, v)| (*n, v.as_str())));
            let (entries, diagnostics) = parse(&text);
            prop_assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:?}");
            let read: Vec<(PName, String)> = entries.into_iter().map(|e| (e.name, e.value)).collect();
            prop_assert_eq!(read, params);
        }
    }
}
