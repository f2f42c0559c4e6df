//! `<gs_provision version="1">` XML: a fast writer for the builder and a tolerant reader for
//! importing technicians' existing files.
//!
//! Invariants: `read_config(&write_config(mac, params))` gives back `mac` and `params` (values
//! verbatim, whitespace included) for every value that passes [`check_value`]; the writer's
//! output is byte-stable, so unchanged params give an unchanged file. The reader never trims
//! values: whether leading spaces matter is the importer's decision, not the parser's.

use std::collections::BTreeMap;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::reader::Reader;

use crate::mac::MacError;
use crate::{Mac, PName, Params};

/// What is wrong with an XML config, or with a value that XML cannot carry. Reader errors
/// carry the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error(
        "character U+{:04X} at byte {offset} cannot be written in XML 1.0 (only tab, LF and CR \
         are allowed among control characters)",
        u32::from(*ch)
    )]
    InvalidChar { ch: char, offset: usize },
    #[error("line {line}: XML syntax error: {message}")]
    Syntax { line: usize, message: String },
    #[error("line {line}: unexpected element <{element}> inside {parent}; expected {expected}")]
    UnexpectedElement {
        line: usize,
        element: String,
        parent: String,
        expected: &'static str,
    },
    #[error("line {line}: unexpected text {text:?} inside {parent}")]
    UnexpectedText {
        line: usize,
        parent: String,
        text: String,
    },
    #[error("line {line}: <{element}> has no name=\"…\" attribute")]
    MissingName { line: usize, element: &'static str },
    #[error(
        "line {line}: unknown entity &{name}; (only &amp; &lt; &gt; &quot; &apos; and &#…; exist in XML without a DTD)"
    )]
    UnknownEntity { line: usize, name: String },
    #[error("line {line}: <mac>: {source}")]
    BadMac {
        line: usize,
        #[source]
        source: MacError,
    },
    #[error("line {line}: a second <mac> element; a file is for one device")]
    DuplicateMac { line: usize },
    #[error("no <gs_provision> element: this is not a Grandstream XML config")]
    MissingRoot,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigXml {
    pub mac: Option<Mac>,
    /// `<Pnnn>` values in file order, verbatim (duplicates kept; the importer decides).
    pub params: Vec<(PName, String)>,
    /// Version 2 `<item name="alias">value</item>` entries in file order, for an importer
    /// that maps aliases to P-values. `<item name="a"><part name="b">v</part></item>` is
    /// flattened to `("a.b", "v")`, which is how the v2 alias list names such values.
    pub items: Vec<(String, String)>,
    /// The 1-based line of each entry of `items` (same order), so an importer can point at an
    /// item it cannot map.
    pub item_lines: Vec<usize>,
    /// The comments immediately before each P element (each trimmed; several comments in a
    /// row, as vendor templates write them, joined by '\n'; a blank line between two comments
    /// starts a new group); with duplicate elements the last one's comment wins. Templates use
    /// these as descriptions.
    pub comments: BTreeMap<PName, String>,
    /// The same for version 2 items, by flattened item name. A comment before an `<item>` with
    /// `<part>` elements goes to its first part unless that part has its own.
    pub item_comments: BTreeMap<String, String>,
}

/// XML 1.0 `Char`: tab, LF, CR, and everything from U+0020 except U+FFFE and U+FFFF (Rust
/// chars are never surrogates).
fn is_xml_char(ch: char) -> bool {
    matches!(ch, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Checks that a value can be written as XML 1.0 text. [`write_config`] does not check: the
/// builder calls this for every value first and reports the failures as diagnostics, so no
/// value is ever dropped or altered silently.
pub fn check_value(value: &str) -> Result<(), XmlError> {
    match value.char_indices().find(|&(_, ch)| !is_xml_char(ch)) {
        Some((offset, ch)) => Err(XmlError::InvalidChar { ch, offset }),
        None => Ok(()),
    }
}

/// Writes the config in Grandstream's documented layout, params in numeric order.
///
/// Precondition: every value passes [`check_value`]. A value that does not would make the
/// file invalid XML; debug builds assert, release builds write the character as it is so that
/// the phone rejects the file rather than receive a silently different value.
///
/// `&`, `<` and `>` are escaped; quotes are left alone (text content needs no quote escaping,
/// and technicians read these files). CR is written as `&#13;` because XML parsers turn a
/// literal CR into LF.
pub fn write_config(mac: Option<Mac>, params: &Params) -> String {
    const HEAD: &str =
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<gs_provision version=\"1\">\n";
    const CONFIG: &str = "  <config version=\"1\">\n";
    const TAIL: &str = "  </config>\n</gs_provision>\n";
    // Per param: "    <P12345>" + "</P12345>\n" is at most 25 bytes; escapes are rare.
    let capacity = HEAD.len()
        + 32
        + CONFIG.len()
        + TAIL.len()
        + params.values().map(|v| v.len() + 25).sum::<usize>();
    let mut out = String::with_capacity(capacity);
    out.push_str(HEAD);
    if let Some(mac) = mac {
        out.push_str("  <mac>");
        out.push_str(&mac.to_string());
        out.push_str("</mac>\n");
    }
    out.push_str(CONFIG);
    let mut digits = [0u8; 10];
    for (name, value) in params {
        debug_assert!(
            check_value(value).is_ok(),
            "{name} fails check_value: {value:?}"
        );
        let name = format_name(*name, &mut digits);
        out.push_str("    <");
        out.push_str(name);
        out.push('>');
        push_escaped(&mut out, value);
        out.push_str("</");
        out.push_str(name);
        out.push_str(">\n");
    }
    out.push_str(TAIL);
    out
}

/// `P` and the number, without the formatting machinery (this runs for every param of every
/// device in a build).
fn format_name(name: PName, buffer: &mut [u8; 10]) -> &str {
    let mut n = name.number();
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    start -= 1;
    buffer[start] = b'P';
    // Only ASCII digits and 'P' were written.
    std::str::from_utf8(&buffer[start..]).unwrap_or("P")
}

/// Appends `value` with `&`, `<`, `>` and CR escaped, copying unescaped runs in one piece.
fn push_escaped(out: &mut String, value: &str) {
    let mut run_start = 0;
    for (i, byte) in value.bytes().enumerate() {
        let escape = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'\r' => "&#13;",
            _ => continue,
        };
        // The escaped bytes are ASCII, so `i` is a char boundary.
        out.push_str(&value[run_start..i]);
        out.push_str(escape);
        run_start = i + 1;
    }
    out.push_str(&value[run_start..]);
}

/// Where the reader is; each text-bearing context collects its text.
enum Context {
    Document,
    Root,
    Mac {
        line: usize,
        text: String,
    },
    Config,
    Param {
        name: PName,
        text: String,
    },
    Item {
        name: String,
        text: String,
        has_parts: bool,
        line: usize,
        comment: Option<String>,
    },
    Part {
        name: String,
        text: String,
        line: usize,
        comment: Option<String>,
    },
}

impl Context {
    fn describe(&self) -> String {
        match self {
            Context::Document => "the document".to_string(),
            Context::Root => "<gs_provision>".to_string(),
            Context::Mac { .. } => "<mac>".to_string(),
            Context::Config => "<config>".to_string(),
            Context::Param { name, .. } => format!("<{name}>"),
            Context::Item { .. } => "<item>".to_string(),
            Context::Part { .. } => "<part>".to_string(),
        }
    }
}

/// The reader's state between events.
struct ReadState {
    config: ConfigXml,
    /// Open elements, innermost last; never empty (`Document` stays at the bottom).
    stack: Vec<Context>,
    seen_root: bool,
    /// The last comment, kept until an element or non-blank text comes between it and a P
    /// element.
    pending_comment: Option<String>,
    /// Whether a blank line came after the pending comment, so the next comment starts a new
    /// group instead of joining it.
    comment_gap: bool,
}

impl ReadState {
    fn top(&self) -> &Context {
        // `Document` is never popped, so the stack is never empty.
        self.stack.last().unwrap_or(&Context::Document)
    }

    fn open(&mut self, element: &BytesStart<'_>, line: usize) -> Result<(), XmlError> {
        let name = String::from_utf8_lossy(element.name().as_ref()).into_owned();
        let pending_comment = self.pending_comment.take();
        let unexpected = |parent: &Context, expected| XmlError::UnexpectedElement {
            line,
            element: name.clone(),
            parent: parent.describe(),
            expected,
        };
        let context = match (self.top(), name.as_str()) {
            (Context::Document, "gs_provision") if !self.seen_root => {
                self.seen_root = true;
                Context::Root
            }
            (Context::Document, _) => {
                return Err(unexpected(self.top(), "one <gs_provision> root element"));
            }
            (Context::Root, "mac") => {
                if self.config.mac.is_some() {
                    return Err(XmlError::DuplicateMac { line });
                }
                Context::Mac {
                    line,
                    text: String::new(),
                }
            }
            (Context::Root, "config") => Context::Config,
            (Context::Root, _) => return Err(unexpected(self.top(), "<mac> or <config>")),
            (Context::Config, "item") => Context::Item {
                name: name_attribute(element, line, "item")?,
                text: String::new(),
                has_parts: false,
                line,
                comment: pending_comment,
            },
            (Context::Config, _) => {
                let p = name.parse::<PName>().map_err(|_| {
                    unexpected(
                        self.top(),
                        "P-value elements such as <P2>, or <item name=\"…\">",
                    )
                })?;
                if let Some(comment) = pending_comment {
                    self.config.comments.insert(p, comment);
                }
                Context::Param {
                    name: p,
                    text: String::new(),
                }
            }
            (Context::Item { name: item, .. }, "part") => {
                let part = name_attribute(element, line, "part")?;
                let name = format!("{item}.{part}");
                let mut comment = pending_comment;
                if let Some(Context::Item {
                    has_parts,
                    comment: item_comment,
                    ..
                }) = self.stack.last_mut()
                {
                    *has_parts = true;
                    // The item's comment describes the whole item; its first part carries it.
                    let inherited = item_comment.take();
                    comment = comment.or(inherited);
                }
                Context::Part {
                    name,
                    text: String::new(),
                    line,
                    comment,
                }
            }
            (Context::Item { .. }, _) => {
                return Err(unexpected(self.top(), "text or <part name=\"…\">"));
            }
            (Context::Mac { .. } | Context::Param { .. } | Context::Part { .. }, _) => {
                return Err(unexpected(self.top(), "only text"));
            }
        };
        self.stack.push(context);
        Ok(())
    }

    fn close(&mut self, line: usize) -> Result<(), XmlError> {
        self.pending_comment = None;
        // quick-xml checks that end tags match, so this pops the element being closed.
        let Some(context) = self.stack.pop() else {
            return Ok(());
        };
        match context {
            Context::Document => self.stack.push(Context::Document),
            Context::Root | Context::Config => {}
            Context::Mac { line, text } => {
                let text = text.trim();
                // An empty <mac/> is how templates say "any device".
                if !text.is_empty() {
                    let mac = text
                        .parse()
                        .map_err(|source| XmlError::BadMac { line, source })?;
                    self.config.mac = Some(mac);
                }
            }
            Context::Param { name, text } => self.config.params.push((name, text)),
            Context::Item {
                name,
                text,
                has_parts,
                line: item_line,
                comment,
            } => {
                if !has_parts {
                    self.push_item(name, text, item_line, comment);
                } else if !text.trim().is_empty() {
                    return Err(XmlError::UnexpectedText {
                        line,
                        parent: "<item> with <part> elements".to_string(),
                        text: text.trim().to_string(),
                    });
                }
            }
            Context::Part {
                name,
                text,
                line,
                comment,
            } => self.push_item(name, text, line, comment),
        }
        Ok(())
    }

    fn push_item(&mut self, name: String, text: String, line: usize, comment: Option<String>) {
        if let Some(comment) = comment {
            self.config.item_comments.insert(name.clone(), comment);
        }
        self.config.items.push((name, text));
        self.config.item_lines.push(line);
    }

    fn push_text(&mut self, content: &str, line: usize) -> Result<(), XmlError> {
        let blank = content.trim().is_empty();
        if !blank {
            self.pending_comment = None;
        } else if content.matches('\n').count() >= 2 {
            self.comment_gap = true;
        }
        match self.stack.last_mut() {
            Some(
                Context::Mac { text, .. }
                | Context::Param { text, .. }
                | Context::Item { text, .. }
                | Context::Part { text, .. },
            ) => {
                text.push_str(content);
                Ok(())
            }
            // Indentation between elements.
            _ if blank => Ok(()),
            _ => Err(XmlError::UnexpectedText {
                line,
                parent: self.top().describe(),
                text: content.trim().to_string(),
            }),
        }
    }
}

/// Reads a Grandstream XML config, v1 (`<Pnnn>`) or v2 (`<item name=…>`).
///
/// Accepts what real files contain: an optional declaration, an optional `<mac>` (empty means
/// absent), comments anywhere, `<P48/>` and `<P48></P48>`, entities and CDATA, CRLF line
/// endings and a UTF-8 BOM. Any other element is an error naming it and its line, because a
/// silently ignored element is a setting the technician believes the phone gets.
pub fn read_config(text: &str) -> Result<ConfigXml, XmlError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut lines = LineCounter::new(text);
    let mut reader = Reader::from_str(text);
    let mut state = ReadState {
        config: ConfigXml {
            mac: None,
            params: Vec::new(),
            items: Vec::new(),
            item_lines: Vec::new(),
            comments: BTreeMap::new(),
            item_comments: BTreeMap::new(),
        },
        stack: vec![Context::Document],
        seen_root: false,
        pending_comment: None,
        comment_gap: false,
    };
    loop {
        let line = lines.line_at(reader.buffer_position());
        let event = reader.read_event().map_err(|e| XmlError::Syntax {
            line: lines.line_at(reader.error_position()),
            message: e.to_string(),
        })?;
        let syntax = |e: quick_xml::encoding::EncodingError| XmlError::Syntax {
            line,
            message: e.to_string(),
        };
        match event {
            Event::Start(element) => state.open(&element, line)?,
            Event::Empty(element) => {
                state.open(&element, line)?;
                state.close(line)?;
            }
            Event::End(_) => state.close(line)?,
            // XML 1.0 EOL normalisation turns CRLF into LF, as every XML parser does.
            Event::Text(content) => {
                state.push_text(&content.xml10_content().map_err(syntax)?, line)?
            }
            Event::CData(content) => {
                let content = content.xml10_content().map_err(syntax)?;
                // CDATA is content even when blank, inside a value.
                state.pending_comment = None;
                state.push_text(&content, line)?;
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve(&reference, line)?;
                state.push_text(resolved.encode_utf8(&mut [0; 4]), line)?;
            }
            Event::Comment(comment) => {
                let comment = comment.xml10_content().map_err(syntax)?;
                let comment = comment.trim();
                if !comment.is_empty() {
                    state.pending_comment = match state.pending_comment.take() {
                        Some(previous) if !state.comment_gap => {
                            Some(format!("{previous}\n{comment}"))
                        }
                        _ => Some(comment.to_string()),
                    };
                }
                state.comment_gap = false;
            }
            // The declaration, processing instructions and a DOCTYPE carry no settings.
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if state.stack.len() > 1 {
        return Err(XmlError::Syntax {
            line: lines.line_at(reader.buffer_position()),
            message: format!("the file ends inside {}", state.top().describe()),
        });
    }
    if !state.seen_root {
        return Err(XmlError::MissingRoot);
    }
    Ok(state.config)
}

/// 1-based line numbers of byte positions. Every event needs one, and positions only grow, so
/// it counts newlines incrementally: recounting from the start each time made reading a 7 KB
/// file take milliseconds.
struct LineCounter<'a> {
    text: &'a str,
    position: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text,
            position: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, position: u64) -> usize {
        let position = usize::try_from(position)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        if position < self.position {
            // Error positions may point back to where the bad markup began.
            *self = LineCounter::new(self.text);
        }
        let newlines = self.text.as_bytes()[self.position..position]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += newlines;
        self.position = position;
        self.line
    }
}

/// The `name="…"` attribute of `<item>` or `<part>`, unescaped.
fn name_attribute(
    element: &BytesStart<'_>,
    line: usize,
    tag: &'static str,
) -> Result<String, XmlError> {
    let attribute = element
        .try_get_attribute("name")
        .map_err(|e| XmlError::Syntax {
            line,
            message: e.to_string(),
        })?
        .ok_or(XmlError::MissingName { line, element: tag })?;
    let value = attribute.unescape_value().map_err(|e| XmlError::Syntax {
        line,
        message: e.to_string(),
    })?;
    Ok(value.into_owned())
}

/// `&#…;` and the five predefined entities; anything else needs a DTD we do not read.
fn resolve(reference: &BytesRef<'_>, line: usize) -> Result<char, XmlError> {
    let name = reference.decode().map_err(|e| XmlError::Syntax {
        line,
        message: e.to_string(),
    })?;
    let unknown = || XmlError::UnknownEntity {
        line,
        name: name.to_string(),
    };
    if reference.is_char_ref() {
        return reference
            .resolve_char_ref()
            .map_err(|e| XmlError::Syntax {
                line,
                message: format!("&{name};: {e}"),
            })?
            .ok_or_else(unknown);
    }
    quick_xml::escape::resolve_predefined_entity(&name)
        .and_then(|s| s.chars().next())
        .ok_or_else(unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(n, v)| (n.parse().unwrap(), v.to_string()))
            .collect()
    }

    /// One line per fact, so expectations read like the file they describe.
    fn render(config: &ConfigXml) -> String {
        let mut out = String::new();
        if let Some(mac) = config.mac {
            out.push_str(&format!("mac {mac}\n"));
        }
        for (name, value) in &config.params {
            out.push_str(&format!("{name} {value:?}\n"));
        }
        for (name, value) in &config.items {
            out.push_str(&format!("item {name} {value:?}\n"));
        }
        for (name, comment) in &config.comments {
            out.push_str(&format!("comment {name} {comment:?}\n"));
        }
        out
    }

    /// Reads `input` and compares the rendered result, or the error message with a fragment.
    fn check(input: &str, expected: Result<&str, &str>) {
        match (read_config(input), expected) {
            (Ok(got), Ok(expected)) => assert_eq!(render(&got), expected, "input:\n{input}"),
            (Err(got), Err(fragment)) => {
                assert!(
                    got.to_string().contains(fragment),
                    "{got}\nexpected {fragment:?}"
                )
            }
            (got, expected) => panic!("input:\n{input}\ngot {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn writes_the_documented_layout() {
        let mac = "000b82123456".parse().ok();
        let p = params(&[("P270", "Account name"), ("P2", "admin"), ("P48", "")]);
        assert_eq!(
            write_config(mac, &p),
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n\
             <gs_provision version=\"1\">\n  <mac>000b82123456</mac>\n  <config version=\"1\">\n    \
             <P2>admin</P2>\n    <P48></P48>\n    <P270>Account name</P270>\n  </config>\n\
             </gs_provision>\n"
        );
        assert_eq!(
            write_config(None, &Params::new()),
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<gs_provision version=\"1\">\n  \
             <config version=\"1\">\n  </config>\n</gs_provision>\n"
        );
    }

    #[test]
    fn escapes_markup_and_cr_but_not_quotes() {
        let p = params(&[("P99999", "a&b<c>d\"e'f\r\n\tg ]]> é☎ &amp;")]);
        let xml = write_config(None, &p);
        assert!(
            xml.contains("<P99999>a&amp;b&lt;c&gt;d\"e'f&#13;\n\tg ]]&gt; é☎ &amp;amp;</P99999>"),
            "{xml}"
        );
        assert_eq!(
            read_config(&xml).unwrap().params,
            p.into_iter().collect::<Vec<_>>()
        );
    }

    #[test]
    fn check_value_rejects_what_xml_cannot_carry() {
        assert_eq!(check_value("tab\t, LF\n, CR\r, é, ☎, 🎉, \u{FFFD}"), Ok(()));
        for (value, ch, offset) in [
            ("ab\u{1}", '\u{1}', 2),
            ("é\u{0}", '\u{0}', 2),
            ("\u{1F}", '\u{1F}', 0),
            ("x\u{FFFE}", '\u{FFFE}', 1),
            ("\u{FFFF}", '\u{FFFF}', 0),
        ] {
            assert_eq!(
                check_value(value),
                Err(XmlError::InvalidChar { ch, offset })
            );
        }
        let message = check_value("a\u{7}").unwrap_err().to_string();
        assert!(message.contains("U+0007 at byte 1"), "{message}");
    }

    #[test]
    fn reads_the_writer_output() {
        let p = params(&[("P2", "admin"), ("P270", " spaced  ")]);
        let xml = write_config("000b82123456".parse().ok(), &p);
        check(
            &xml,
            Ok("mac 000b82123456\nP2 \"admin\"\nP270 \" spaced  \"\n"),
        );
    }

    #[test]
    fn reads_real_world_variants() {
        // BOM, CRLF, no declaration, comments everywhere, empty elements in both spellings.
        check(
            "\u{FEFF}<!-- generated -->\r\n<gs_provision>\r\n<!-- c0 -->\r\n  <config version=\"1\">\r\n    \
             <!-- Admin password -->\r\n    <P2>ad<!-- inside -->min</P2>\r\n    <P48/>\r\n    \
             <!-- XML Config File Password --><P1359></P1359>\r\n    <P3>line1\r\nline2</P3>\r\n  \
             </config>\r\n</gs_provision>\r\n<!-- trailing -->\r\n",
            Ok("P2 \"admin\"\nP48 \"\"\nP1359 \"\"\nP3 \"line1\\nline2\"\n\
                comment P2 \"Admin password\"\ncomment P1359 \"XML Config File Password\"\n"),
        );
        // Entities, character references and CDATA.
        check(
            "<gs_provision version=\"1\"><config version=\"1\"><P2>a&amp;b&lt;&gt;&quot;&apos;&#233;&#x263E;</P2>\
             <P3><![CDATA[<raw & text>]]></P3><P4>x<![CDATA[ ]]>y</P4></config></gs_provision>",
            Ok("P2 \"a&b<>\\\"'é☾\"\nP3 \"<raw & text>\"\nP4 \"x y\"\n"),
        );
        // An empty <mac> means no MAC; spacing around a MAC is not part of it.
        check("<gs_provision><mac/><config/></gs_provision>", Ok(""));
        check(
            "<gs_provision><mac> 00:0B:82:12:34:56 </mac></gs_provision>",
            Ok("mac 000b82123456\n"),
        );
    }

    #[test]
    fn comments_must_be_immediately_before_the_element() {
        check(
            "<gs_provision><config><!-- first --><!-- second -->\n\n<P2>a</P2>\
             <!-- orphan --><P3>b</P3><!-- after --></config></gs_provision>",
            Ok("P2 \"a\"\nP3 \"b\"\ncomment P2 \"first\\nsecond\"\ncomment P3 \"orphan\"\n"),
        );
        // Vendor templates write one comment per line above an element; a blank line between
        // comments separates a section heading from the element's own description.
        check(
            "<gs_provision><config>\n<!-- ## Account 1 ## -->\n\n<!-- Account Active. -->\n\
             <!-- Number: 0, 1 -->\n<P271>1</P271>\n</config></gs_provision>",
            Ok("P271 \"1\"\ncomment P271 \"Account Active.\\nNumber: 0, 1\"\n"),
        );
        check(
            "<gs_provision><!-- not for config --><config><P2>a</P2></config></gs_provision>",
            Ok("P2 \"a\"\n"),
        );
    }

    #[test]
    fn reads_version_2_items() {
        check(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gs_provision version=\"1\">\n  \
             <config version=\"2\">\n    <item name=\"account.1.sip.server.1.address\">pbx.example&amp;co</item>\n    \
             <item name=\"account.1.enable\">Yes</item>\n    <item name=\"users.admin.password\"/>\n    \
             <item name=\"account.1.sip.subscriber\">\n      <part name=\"name\">Reception</part>\n      \
             <part name=\"userid\">201</part>\n    </item>\n  </config>\n</gs_provision>\n",
            Ok(
                "item account.1.sip.server.1.address \"pbx.example&co\"\nitem account.1.enable \"Yes\"\n\
                item users.admin.password \"\"\nitem account.1.sip.subscriber.name \"Reception\"\n\
                item account.1.sip.subscriber.userid \"201\"\n",
            ),
        );
    }

    #[test]
    fn version_2_items_keep_their_lines_and_comments() {
        let config = read_config(
            "<gs_provision>\n<config version=\"2\">\n<!-- SIP server -->\n\
             <item name=\"account.1.sip.server.1.address\">pbx</item>\n\
             <!-- Subscriber -->\n<item name=\"account.1.sip.subscriber\">\n\
             <part name=\"name\">Reception</part>\n<!-- Own -->\n<part name=\"userid\">201</part>\n\
             </item>\n</config>\n</gs_provision>\n",
        )
        .expect("valid v2 file");
        assert_eq!(config.item_lines, [4, 7, 9]);
        let comments: Vec<(&str, &str)> = config
            .item_comments
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            comments,
            [
                ("account.1.sip.server.1.address", "SIP server"),
                ("account.1.sip.subscriber.name", "Subscriber"),
                ("account.1.sip.subscriber.userid", "Own"),
            ]
        );
    }

    #[test]
    fn errors_name_the_problem_and_line() {
        check(
            "<gs_provision>\n<config>\n<P2>a</P2>\n<Foo>b</Foo>\n</config>\n</gs_provision>",
            Err("line 4: unexpected element <Foo> inside <config>"),
        );
        check(
            "<gs_provision>\n<config>\r\n<P047>b</P047>\n</config>\n</gs_provision>",
            Err("line 3: unexpected element <P047>"),
        );
        check(
            "<?xml version=\"1.0\"?>\n<provision/>",
            Err("line 2: unexpected element <provision> inside the document"),
        );
        check(
            "<gs_provision>\n<cfg/>\n</gs_provision>",
            Err(
                "line 2: unexpected element <cfg> inside <gs_provision>; expected <mac> or <config>",
            ),
        );
        check(
            "<gs_provision><config><P2>a<b/></P2></config></gs_provision>",
            Err("unexpected element <b> inside <P2>; expected only text"),
        );
        check(
            "<gs_provision>\n<config>\nstray\n</config></gs_provision>",
            Err("line 2: unexpected text \"stray\" inside <config>"),
        );
        check(
            "<gs_provision>\n\n<mac>00:0b</mac></gs_provision>",
            Err("line 3: <mac>: invalid MAC address \"00:0b\""),
        );
        check(
            "<gs_provision><mac>000b82123456</mac>\n<mac>000b82123457</mac></gs_provision>",
            Err("line 2: a second <mac>"),
        );
        check(
            "<gs_provision><config>\n<P2>&nbsp;</P2></config></gs_provision>",
            Err("line 2: unknown entity &nbsp;"),
        );
        check(
            "<gs_provision><config>\n<item>x</item></config></gs_provision>",
            Err("line 2: <item> has no name=\"…\" attribute"),
        );
        check(
            "<gs_provision><config>\n<P2>a</P3></config></gs_provision>",
            Err("line 2: XML syntax error"),
        );
        check(
            "<gs_provision>\n<config>\n<P2>a",
            Err("line 3: XML syntax error: the file ends inside <P2>"),
        );
        check(
            "<gs_provision/><gs_provision/>",
            Err("unexpected element <gs_provision> inside the document"),
        );
        check("", Err("no <gs_provision> element"));
        check(
            "<!-- only a comment -->\n",
            Err("no <gs_provision> element"),
        );
    }

    fn arb_params() -> impl Strategy<Value = Params> {
        let value = "[^\u{0}-\u{8}\u{B}\u{C}\u{E}-\u{1F}\u{FFFE}\u{FFFF}]*";
        proptest::collection::btree_map(
            (0..=PName::MAX).prop_map(|n| PName::new(n).unwrap()),
            value,
            0..20,
        )
    }

    proptest! {
        #[test]
        fn round_trips(mac: Option<[u8; 6]>, params in arb_params()) {
            let mac = mac.map(Mac::from_bytes);
            for value in params.values() {
                prop_assert_eq!(check_value(value), Ok(()));
            }
            let read = read_config(&write_config(mac, &params)).unwrap();
            prop_assert_eq!(read.mac, mac);
            prop_assert_eq!(read.params, params.into_iter().collect::<Vec<_>>());
            prop_assert!(read.items.is_empty() && read.comments.is_empty());
        }
    }
}
