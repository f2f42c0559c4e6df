//! Profiles to and from Grandstream's own files: a `Pnnn = value` template, an XML v1
//! (`<P47>`) or XML v2 (`<item name="…">`) config becomes a profile TOML, and a device's
//! effective configuration becomes a template or an XML file to load by hand through the
//! phone's web UI.
//!
//! Invariants:
//! - Import loses nothing silently: what cannot become a `[params]` key (an XML v2 item the
//!   catalogue has no P-value for, a line that is not `Pnnn = value`, an XML element the
//!   reader refuses) is kept as a TOML comment naming its line and reported with its line;
//!   one bad element never costs the file's other values.
//! - The comments above a value in the file stay above its key in the TOML.
//! - import → export → import gives the same values, for all three input forms.
//! - Export refuses a value its format cannot carry instead of changing it.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use toml_edit::{Decor, DocumentMut, Item, Key, Table, Value};

use crate::build::{BuildOptions, device_config};
use crate::catalog::{Catalog, Entry, ParamType};
use crate::desk::Desk;
use crate::format::{looks_like_xml, template, xml};
use crate::inventory::Device;
use crate::profile::{EffectiveConfig, ProfileSet};
use crate::{Diagnostic, Mac, PName};

/// Why a configuration cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "{p}: the value has a line break, which a `Pnnn = value` template cannot carry; export \
         as XML instead"
    )]
    LineBreak { p: PName },
    #[error(
        "{p}: the value starts or ends with a space, which a `Pnnn = value` template drops; \
         export as XML instead"
    )]
    EdgeSpace { p: PName },
    #[error("{p}: {source}")]
    Xml {
        p: PName,
        #[source]
        source: xml::XmlError,
    },
    /// The device's configuration has errors (an undefined variable, a value the catalogue
    /// rejects); a file made from it would not be what the build publishes.
    #[error("{}", crate::error::summarize(.0))]
    Diagnostics(Vec<Diagnostic>),
}

/// Why an imported profile cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("profile name {name:?}: {problem}")]
    Name { name: String, problem: String },
    #[error("{} already exists; choose another name or allow replacing it", path.display())]
    Exists { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The two formats a device can be exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// `Pnnn = value` lines with the catalogue's name of each value as a comment.
    Text,
    /// `<gs_provision version="1">` with the device's MAC.
    Xml,
}

/// How [`write_profile`] treats an existing file.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    pub replace: bool,
}

/// One thing the profile will say, in file order.
enum Piece {
    Param {
        p: PName,
        value: String,
        comment: Option<String>,
        /// Said after the value, e.g. what an XML v2 value was before conversion.
        note: Option<String>,
        line: Option<usize>,
    },
    /// A comment of its own: something the file had that cannot be a key.
    Kept { text: String, line: Option<usize> },
}

/// Turns a Grandstream file into profile TOML. `source_name` is how diagnostics and the
/// header name the file; `catalog` maps XML v2 aliases to P-values and converts v2 words such
/// as `Yes` to the P-value's `1`. Returns the TOML text and every problem found (with the
/// line where the file has one).
pub fn import_profile(
    text: &str,
    source_name: &str,
    catalog: &Catalog,
) -> (String, Vec<Diagnostic>) {
    let (pieces, mut diagnostics) = if looks_like_xml(text) {
        read_xml(text, catalog)
    } else {
        read_template(text)
    };
    let pieces = last_value_wins(pieces, &mut diagnostics);
    for piece in &pieces {
        if let Piece::Param {
            p, value, line: at, ..
        } = piece
            && value.contains("{{")
        {
            let mut d = Diagnostic::warning(
                "import-braces",
                format!(
                    "{p}: the value contains `{{{{`, which a profile reads as a variable such as \
                     {{{{ ext }}}}; the build reports it unless that is what you meant"
                ),
            )
            .field(p.to_string());
            if let Some(line) = at {
                d = d.at_line(*line);
            }
            diagnostics.push(d);
        }
    }
    for d in &mut diagnostics {
        d.file = Some(PathBuf::from(source_name));
    }
    diagnostics.sort_by_key(|d| d.line.unwrap_or(usize::MAX));
    (to_toml(&pieces, source_name), diagnostics)
}

fn read_template(text: &str) -> (Vec<Piece>, Vec<Diagnostic>) {
    let (entries, diagnostics) = template::parse(text);
    let raw_lines = raw_lines(text);
    let mut pieces: Vec<Piece> = entries
        .into_iter()
        .map(|e| Piece::Param {
            p: e.name,
            value: e.value,
            comment: e.comment,
            note: None,
            line: Some(e.line),
        })
        .collect();
    for d in diagnostics.iter().filter(|d| d.is_error()) {
        if let Some(line) = d.line {
            let raw = raw_lines.get(line - 1).copied().unwrap_or_default().trim();
            pieces.push(Piece::Kept {
                text: format!("not imported (line {line}): {raw}"),
                line: Some(line),
            });
        }
    }
    pieces.sort_by_key(|piece| match piece {
        Piece::Param { line, .. } | Piece::Kept { line, .. } => line.unwrap_or(usize::MAX),
    });
    (pieces, diagnostics)
}

/// The file's lines, split exactly as the template parser splits them (LF, CRLF or lone CR),
/// so a diagnostic's line number finds its text.
fn raw_lines(text: &str) -> Vec<&str> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut lines = Vec::new();
    let mut rest = text;
    while let Some(end) = rest.find(['\r', '\n']) {
        lines.push(&rest[..end]);
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
    if !rest.is_empty() {
        lines.push(rest);
    }
    lines
}

/// At most this many elements are set aside from one XML file; past that, the file is more
/// broken than a profile import should guess at.
const MAX_SET_ASIDE: usize = 1000;

fn read_xml(text: &str, catalog: &Catalog) -> (Vec<Piece>, Vec<Diagnostic>) {
    // An element the reader refuses (an unknown element, an `<item>` without a name) is set
    // aside: kept as a comment with its line, blanked in a working copy (line ends stay, so
    // every later line number holds), and the file is read again. Each round costs one read
    // of the file and removes one element, so a file's good values are never lost to one bad
    // element.
    let mut working = text.to_string();
    let mut set_aside: Vec<Piece> = Vec::new();
    let mut errors: Vec<Diagnostic> = Vec::new();
    let config = loop {
        match xml::read_config(&working) {
            Ok(config) => break config,
            Err(e) => {
                let mut d = Diagnostic::error("xml-syntax", e.to_string());
                if let Some(line) = crate::catalog::import::xml_error_line(&e) {
                    d = d.at_line(line);
                }
                errors.push(d);
                let span = (set_aside.len() < MAX_SET_ASIDE)
                    .then(|| refused_element(&working, &e))
                    .flatten();
                let Some((line, span)) = span else {
                    return (set_aside, errors);
                };
                set_aside.push(Piece::Kept {
                    text: format!("not imported (line {line}): {}", &working[span.clone()]),
                    line: Some(line),
                });
                let blank: String = working[span.clone()]
                    .chars()
                    .map(|c| if matches!(c, '\r' | '\n') { c } else { ' ' })
                    .collect();
                working.replace_range(span, &blank);
            }
        }
    };
    let (mut pieces, mut diagnostics) = read_xml_config(config, catalog);
    pieces.append(&mut set_aside);
    errors.append(&mut diagnostics);
    (pieces, errors)
}

/// The line and byte range of the element to set aside for reader error `error`: the element
/// the error names, or, when it sits inside a value (`<P2>a<b/></P2>`, a `<part>` without a
/// name), the whole entry of `<config>` around it, since what is left of that value would not
/// be what the file meant. `None` when the error names no element or it cannot be found.
fn refused_element(text: &str, error: &xml::XmlError) -> Option<(usize, std::ops::Range<usize>)> {
    use quick_xml::events::Event;
    use xml::XmlError;

    let (line, element) = match error {
        XmlError::UnexpectedElement { line, element, .. } => (*line, element.as_str()),
        XmlError::MissingName { line, element } => (*line, *element),
        XmlError::BadMac { line, .. } | XmlError::DuplicateMac { line } => (*line, "mac"),
        _ => return None,
    };
    // Entries of `<config>` are at this depth: gs_provision (0) > config (1) > entry (2).
    const ENTRY_DEPTH: usize = 2;
    let text_without_bom = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let bom = text.len() - text_without_bom.len();
    let mut reader = quick_xml::Reader::from_str(text_without_bom);
    // Start offset and line of each open element, outermost first.
    let mut open: Vec<(usize, usize)> = Vec::new();
    let (mut counted_to, mut at_line) = (0, 1);
    // Depth, start and line of the element being set aside, once found.
    let mut target: Option<(usize, usize, usize)> = None;
    loop {
        let position = usize::try_from(reader.buffer_position()).ok()?;
        let event = reader.read_event().ok()?;
        let end = usize::try_from(reader.buffer_position()).ok()?;
        let (named, starts) = match &event {
            Event::Start(e) => (e.name().as_ref() == element.as_bytes(), true),
            Event::Empty(e) => (e.name().as_ref() == element.as_bytes(), false),
            Event::End(_) => {
                open.pop()?;
                if let Some((depth, from, line)) = target
                    && open.len() == depth
                {
                    return Some((line, bom + from..bom + end));
                }
                continue;
            }
            Event::Eof => return None,
            _ => continue,
        };
        if target.is_none() {
            at_line += text_without_bom
                .get(counted_to..position)?
                .bytes()
                .filter(|&b| b == b'\n')
                .count();
            counted_to = position;
            if named && at_line == line {
                let depth = open.len();
                if depth > ENTRY_DEPTH {
                    let (from, line) = open[ENTRY_DEPTH];
                    target = Some((ENTRY_DEPTH, from, line));
                } else if starts {
                    target = Some((depth, position, at_line));
                } else {
                    return Some((at_line, bom + position..bom + end));
                }
            }
        }
        if starts {
            open.push((position, at_line));
        }
    }
}

fn read_xml_config(config: xml::ConfigXml, catalog: &Catalog) -> (Vec<Piece>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let mut pieces: Vec<Piece> = config
        .params
        .into_iter()
        .map(|(p, value)| Piece::Param {
            p,
            comment: config.comments.get(&p).cloned(),
            value,
            note: None,
            line: None,
        })
        .collect();
    for (index, (alias, value)) in config.items.into_iter().enumerate() {
        let line = config.item_lines.get(index).copied();
        let comment = config.item_comments.get(&alias).cloned();
        match catalog.get_by_alias(&alias) {
            Some(entry) => {
                let (converted, note) = v2_value(entry, &value);
                pieces.push(Piece::Param {
                    p: entry.p,
                    value: converted,
                    comment,
                    note,
                    line,
                });
            }
            None => {
                let mut d = Diagnostic::warning(
                    "unknown-alias",
                    format!(
                        "XML v2 item {alias:?} has no P-value in the catalogue, so it is kept as a \
                         comment in the profile; describe it in DESK/catalog/*.toml (with \
                         `alias = \"{alias}\"`) and import again, or set its P-value by hand"
                    ),
                )
                .field(alias.clone());
                if let Some(line) = line {
                    d = d.at_line(line);
                }
                diagnostics.push(d);
                let at = line.map_or(String::new(), |l| format!(" (line {l})"));
                let mut text = String::new();
                if let Some(comment) = comment {
                    text.push_str(&comment);
                    text.push('\n');
                }
                text.push_str(&format!(
                    "unknown XML v2 item{at}: {alias} = {}",
                    toml_string(&value)
                ));
                pieces.push(Piece::Kept { text, line });
            }
        }
    }
    (pieces, diagnostics)
}

/// XML v2 writes words where P-values take numbers (`Yes` for `1`, `UDP` for `0`). A word the
/// catalogue can translate is converted; anything else stays as it was, for the build's
/// validation to report.
fn v2_value(entry: &Entry, value: &str) -> (String, Option<String>) {
    let converted = match &entry.kind {
        ParamType::Bool => match value.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "enable" | "enabled" => Some("1"),
            "no" | "false" | "off" | "disable" | "disabled" => Some("0"),
            _ => None,
        },
        ParamType::Choice(choices) if !choices.iter().any(|c| c.value == value) => choices
            .iter()
            .find(|c| c.label.eq_ignore_ascii_case(value.trim()))
            .map(|c| c.value.as_str()),
        _ => None,
    };
    match converted {
        Some(new) if new != value => (
            new.to_string(),
            Some(format!("XML v2 value {}", toml_string(value))),
        ),
        _ => (value.to_string(), None),
    }
}

/// One key per P-value: the last value, at the first place, as the phone applies a file.
/// Duplicates in a template were reported by its parser; XML duplicates are reported here.
fn last_value_wins(pieces: Vec<Piece>, diagnostics: &mut Vec<Diagnostic>) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
    let mut first: HashMap<PName, usize> = HashMap::new();
    let template_warned: Vec<(Option<usize>, String)> = diagnostics
        .iter()
        .filter(|d| d.kind == "template-duplicate")
        .map(|d| (d.line, d.field.clone().unwrap_or_default()))
        .collect();
    for piece in pieces {
        let Piece::Param {
            p,
            value,
            comment,
            note,
            line,
        } = piece
        else {
            out.push(piece);
            continue;
        };
        match first.get(&p) {
            Some(&at) => {
                if !template_warned.contains(&(line, p.to_string())) {
                    let mut d = Diagnostic::warning(
                        "import-duplicate",
                        format!("{p} is set more than once; the last value wins"),
                    )
                    .field(p.to_string());
                    if let Some(line) = line {
                        d = d.at_line(line);
                    }
                    diagnostics.push(d);
                }
                if let Piece::Param {
                    value: kept_value,
                    comment: kept_comment,
                    note: kept_note,
                    ..
                } = &mut out[at]
                {
                    *kept_value = value;
                    *kept_note = note;
                    if comment.is_some() {
                        *kept_comment = comment;
                    }
                }
            }
            None => {
                first.insert(p, out.len());
                out.push(Piece::Param {
                    p,
                    value,
                    comment,
                    note,
                    line,
                });
            }
        }
    }
    out
}

/// The profile TOML: a header, then `[params]` with each comment above its key.
fn to_toml(pieces: &[Piece], source_name: &str) -> String {
    let mut document = DocumentMut::new();
    let mut params = Table::new();
    params.decor_mut().set_prefix(format!(
        "{}\n",
        comment_lines(&format!(
            "Imported from {source_name} by `provdesk profile import`.\n\
             Values are as the file had them; the comments are the file's own."
        ))
    ));
    let mut pending = String::new();
    for piece in pieces {
        match piece {
            Piece::Kept { text, .. } => pending.push_str(&comment_lines(text)),
            Piece::Param {
                p,
                value,
                comment,
                note,
                ..
            } => {
                if let Some(comment) = comment {
                    pending.push_str(&comment_lines(comment));
                }
                let key = Key::new(p.to_string())
                    .with_leaf_decor(Decor::new(std::mem::take(&mut pending), " "));
                let mut item = Value::from(value.as_str());
                match note {
                    Some(note) => item
                        .decor_mut()
                        .set_suffix(format!("  {}", comment_lines(note).trim_end())),
                    None => item.decor_mut().set_suffix(""),
                }
                item.decor_mut().set_prefix(" ");
                params.insert_formatted(&key, Item::Value(item));
            }
        }
    }
    document.insert("params", Item::Table(params));
    if !pending.is_empty() {
        document.set_trailing(pending);
    }
    document.to_string()
}

/// `# line` for each line, with characters a TOML comment cannot hold replaced.
fn comment_lines(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let clean: String = line
            .chars()
            .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
            .collect();
        let clean = clean.trim_end();
        if clean.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str("# ");
            out.push_str(clean);
            out.push('\n');
        }
    }
    out
}

/// A value as a TOML basic string, for comments that show it.
fn toml_string(value: &str) -> String {
    Value::from(value).to_string().trim().to_string()
}

/// How many values a profile TOML made by [`import_profile`] gives (its `[params]` keys), so
/// a caller can refuse to write a profile that would set nothing.
pub fn imported_value_count(toml: &str) -> usize {
    toml.parse::<DocumentMut>()
        .ok()
        .and_then(|document| {
            document
                .get("params")
                .and_then(Item::as_table)
                .map(Table::len)
        })
        .unwrap_or(0)
}

/// Why `name` cannot name a profile file, if it cannot: it becomes `profiles/NAME.toml`.
pub fn profile_name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    (!ok).then(|| {
        "use letters, digits, '_', '-' and '.', not starting with '.' or '-' (it becomes \
         profiles/NAME.toml)"
            .to_string()
    })
}

/// Writes `text` as `DESK/profiles/NAME.toml`; an existing profile is replaced only when
/// `options.replace` says so. Returns the path relative to the desk.
pub fn write_profile(
    desk: &Desk,
    name: &str,
    text: &str,
    options: WriteOptions,
) -> Result<PathBuf, WriteError> {
    if let Some(problem) = profile_name_problem(name) {
        return Err(WriteError::Name {
            name: name.to_string(),
            problem,
        });
    }
    let dir = desk.profiles_dir();
    let path = dir.join(format!("{name}.toml"));
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError::Io { path, source }
    };
    fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let mut open = fs::OpenOptions::new();
    open.write(true);
    if options.replace {
        open.create(true).truncate(true);
    } else {
        // create_new checks and creates in one step, so two imports cannot both "win".
        open.create_new(true);
    }
    let relative = desk.display_path(&path);
    let mut file = open.open(&path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            WriteError::Exists {
                path: relative.clone(),
            }
        } else {
            WriteError::Io {
                path: relative.clone(),
                source: e,
            }
        }
    })?;
    io::Write::write_all(&mut file, text.as_bytes()).map_err(io_error(&relative))?;
    Ok(relative)
}

/// The configuration as `Pnnn = value` lines in P-value order, each under a comment with the
/// catalogue's name for it, ready for encode.pl, `provdesk binary encode` or the web UI.
pub fn export_text(config: &EffectiveConfig, catalog: &Catalog) -> Result<String, ExportError> {
    let mut out = String::from(
        "# Exported by ProvDesk: one `Pnnn = value` per line. Passwords are in clear.\n",
    );
    for (p, sourced) in &config.params {
        let value = sourced.value.as_str();
        if value.contains(['\r', '\n']) {
            return Err(ExportError::LineBreak { p: *p });
        }
        if value.trim() != value {
            return Err(ExportError::EdgeSpace { p: *p });
        }
        if let Some(entry) = catalog.get(*p) {
            out.push_str(&comment_lines(&format!("{} ({})", entry.name, entry.page)));
        }
        out.push_str(&template::write([(*p, value)]));
    }
    Ok(out)
}

/// The configuration as gs_provision XML for the device `mac`.
pub fn export_xml(mac: Mac, config: &EffectiveConfig) -> Result<String, ExportError> {
    for (p, sourced) in &config.params {
        xml::check_value(&sourced.value).map_err(|source| ExportError::Xml { p: *p, source })?;
    }
    Ok(xml::write_config(Some(mac), &config.values()))
}

/// A device's effective configuration (as the build computes it, validated against
/// `catalog`) in `format`, with the warnings found. Any error stops the export, as it stops a
/// build.
pub fn export_device(
    profiles: &ProfileSet,
    catalog: &Catalog,
    device: &Device,
    options: &BuildOptions,
    format: ExportFormat,
) -> Result<(String, Vec<Diagnostic>), ExportError> {
    let (config, mut diagnostics) = device_config(profiles, device, options);
    diagnostics.extend(profiles.diagnostics().iter().cloned());
    diagnostics.extend(catalog.check_config(&config, &device.model, Some(device.mac)));
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(ExportError::Diagnostics(diagnostics));
    }
    let text = match format {
        ExportFormat::Text => export_text(&config, catalog)?,
        ExportFormat::Xml => export_xml(device.mac, &config)?,
    };
    Ok((text, diagnostics))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Target;
    use std::collections::BTreeMap;

    /// The values a profile TOML gives, read the way the builder reads profiles.
    fn values(toml: &str) -> BTreeMap<String, String> {
        let set = ProfileSet::from_texts(&[("profiles/imported.toml", toml)]);
        assert!(
            set.diagnostics().is_empty(),
            "{:?}\n{toml}",
            set.diagnostics()
        );
        let (config, diagnostics) = set.effective(&Target {
            profile: Some("imported"),
            ..Target::default()
        });
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        config
            .params
            .into_iter()
            .map(|(p, s)| (p.to_string(), s.value))
            .collect()
    }

    fn import(text: &str) -> (String, Vec<String>) {
        let (toml, diagnostics) = import_profile(text, "phone.cfg", Catalog::builtin());
        (toml, diagnostics.iter().map(|d| d.to_string()).collect())
    }

    /// Imports `text` and compares the TOML's `[params]` part and the diagnostics.
    fn check(text: &str, expected_params: &str, expected_diagnostics: &[&str]) {
        let (toml, diagnostics) = import(text);
        let params = toml
            .split_once("[params]\n")
            .map_or(toml.as_str(), |(_, rest)| rest);
        assert_eq!(params, expected_params, "whole TOML:\n{toml}");
        assert_eq!(diagnostics, expected_diagnostics);
    }

    #[test]
    fn text_templates_keep_values_comments_and_odd_cases() {
        check(
            "\u{FEFF}# Admin password\r\n#\r\n# String\r\nP2 = admin\r\n\r\n\
             P48 =\r\n# Dial plan, with # inside\r\nP290 = {x+|*x+|*#x+} # not a comment\r\n\
             P3 = \"quoted\" \\ back\r\n",
            "# Admin password\n#\n# String\nP2 = \"admin\"\nP48 = \"\"\n\
             # Dial plan, with # inside\nP290 = \"{x+|*x+|*#x+} # not a comment\"\n\
             P3 = '\"quoted\" \\ back'\n",
            &[],
        );
    }

    #[test]
    fn bad_lines_are_kept_as_comments_and_reported() {
        check(
            "P2 = a\nP2 admin\n# about P3\nP3 = b\np4 = lower\nP2 = c\n",
            "P2 = \"c\"\n# not imported (line 2): P2 admin\n# about P3\nP3 = \"b\"\n\
             # not imported (line 5): p4 = lower\n",
            &[
                "phone.cfg:2:1: error: expected `Pnnn = value`, a `#` comment or a blank line, \
                 found \"P2 admin\"",
                "phone.cfg:5:1: error: invalid P-value name \"p4\": expected P followed by 1 to 5 \
                 digits, e.g. P47",
                "phone.cfg:6:1: warning: P2 is set again (first on line 1); the last value wins",
            ],
        );
    }

    #[test]
    fn braces_are_imported_with_a_warning() {
        let (toml, diagnostics) = import("P3 = {{ name }}\n");
        assert!(toml.contains("P3 = \"{{ name }}\""), "{toml}");
        assert_eq!(diagnostics.len(), 1);
        assert!(
            diagnostics[0].contains("reads as a variable"),
            "{diagnostics:?}"
        );
    }

    #[test]
    fn xml_v1_keeps_comments_and_verbatim_values() {
        check(
            "\u{FEFF}<?xml version=\"1.0\"?>\r\n<gs_provision version=\"1\">\r\n\
             <mac>000b82123456</mac>\r\n<config version=\"1\">\r\n\
             <!-- Account Active -->\r\n<!-- Number: 0, 1 -->\r\n<P271>1</P271>\r\n\
             <P270> Spaced </P270>\r\n<P48/>\r\n<P2>a&amp;b # c</P2>\r\n<P2>last</P2>\r\n\
             </config>\r\n</gs_provision>\r\n",
            "# Account Active\n# Number: 0, 1\nP271 = \"1\"\nP270 = \" Spaced \"\nP48 = \"\"\n\
             P2 = \"last\"\n",
            &["phone.cfg: warning: P2 is set more than once; the last value wins"],
        );
        let (toml, diagnostics) = import("<gs_provision>\n<config>\n<P2>a</P3>");
        assert!(!toml.contains("P2"), "{toml}");
        assert_eq!(diagnostics.len(), 1);
        assert!(
            diagnostics[0].starts_with("phone.cfg:3: error: line 3: XML syntax error"),
            "{diagnostics:?}"
        );
    }

    #[test]
    fn xml_v1_unknown_element_is_kept_as_a_comment_and_every_good_value_imported() {
        // Before, the one unknown element made the reader give up and `--skip-bad` wrote a
        // profile with none of the six good values.
        let (toml, diagnostics) = import(
            "<gs_provision version=\"1\">\n<config version=\"1\">\n\
             <P271>1</P271>\n<P47>pbx.example.com</P47>\n<P35>201</P35>\n\
             <Vendor_Thing mode=\"x\">on</Vendor_Thing>\n\
             <P36>201</P36>\n<P3>Front desk</P3>\n<P30>pool.ntp.org</P30>\n\
             </config>\n</gs_provision>\n",
        );
        let got = values(&toml);
        let want: BTreeMap<String, String> = [
            ("P271", "1"),
            ("P47", "pbx.example.com"),
            ("P35", "201"),
            ("P36", "201"),
            ("P3", "Front desk"),
            ("P30", "pool.ntp.org"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want, "{toml}");
        assert_eq!(imported_value_count(&toml), 6);
        assert!(
            toml.contains("# not imported (line 6): <Vendor_Thing mode=\"x\">on</Vendor_Thing>\n"),
            "{toml}"
        );
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert!(
            diagnostics[0]
                .starts_with("phone.cfg:6: error: line 6: unexpected element <Vendor_Thing>"),
            "{diagnostics:?}"
        );
    }

    #[test]
    fn a_bad_element_inside_a_value_sets_the_whole_value_aside() {
        // What is left of <P3> without its child would not be what the file meant; later
        // line numbers still hold after a multi-line element is set aside.
        let (toml, diagnostics) = import(
            "<gs_provision>\n<config>\n<P2>admin</P2>\n<P3>Front\n<b>desk</b></P3>\n\
             <item>x</item>\n<P30>pool.ntp.org</P30>\n<Oops/>\n</config>\n</gs_provision>\n",
        );
        let got: Vec<String> = values(&toml).into_keys().collect();
        assert_eq!(got, ["P2", "P30"], "{toml}");
        assert!(
            toml.contains("# not imported (line 4): <P3>Front\n# <b>desk</b></P3>\n"),
            "{toml}"
        );
        assert!(
            toml.contains("# not imported (line 6): <item>x</item>\n"),
            "{toml}"
        );
        assert!(
            toml.contains("# not imported (line 8): <Oops/>\n"),
            "{toml}"
        );
        let lines: Vec<&str> = diagnostics
            .iter()
            .map(|d| d.split(": error").next().unwrap_or(""))
            .collect();
        assert_eq!(
            lines,
            ["phone.cfg:5", "phone.cfg:6", "phone.cfg:8"],
            "{diagnostics:?}"
        );
    }

    #[test]
    fn a_file_that_cannot_be_read_gives_no_values() {
        let (toml, diagnostics) = import("<gs_provision>\n<config>\n<P2>a</P2>\n<P3>b");
        assert_eq!(imported_value_count(&toml), 0, "{toml}");
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    }

    #[test]
    fn xml_v2_maps_aliases_converts_words_and_keeps_unknown_items() {
        check(
            "<gs_provision version=\"1\">\n<config version=\"2\">\n\
             <!-- SIP server -->\n<item name=\"account.1.sip.server.1.address\">pbx.example.com</item>\n\
             <item name=\"account.1.enable\">Yes</item>\n\
             <item name=\"account.1.sip.transport\">tcp</item>\n\
             <!-- Not known -->\n<item name=\"vendor.thing\">a \"b\"</item>\n\
             <item name=\"account.1.sip.subscriber\"><part name=\"userid\">201</part></item>\n\
             </config>\n</gs_provision>\n",
            "# SIP server\nP47 = \"pbx.example.com\"\nP271 = \"1\"  # XML v2 value \"Yes\"\n\
             P130 = \"1\"  # XML v2 value \"tcp\"\n\
             # Not known\n# unknown XML v2 item (line 8): vendor.thing = 'a \"b\"'\n\
             P36 = \"201\"\n",
            &[
                "phone.cfg:8: warning: XML v2 item \"vendor.thing\" has no P-value in the \
               catalogue, so it is kept as a comment in the profile; describe it in \
               DESK/catalog/*.toml (with `alias = \"vendor.thing\"`) and import again, or set \
               its P-value by hand",
            ],
        );
        let (toml, _) = import(
            "<gs_provision><config version=\"2\">\n<!-- Not known -->\n\
             <item name=\"vendor.thing\">a \"b\"</item>\n</config></gs_provision>",
        );
        assert!(
            toml.ends_with(
                "[params]\n# Not known\n# unknown XML v2 item (line 3): vendor.thing = 'a \"b\"'\n"
            ),
            "{toml}"
        );
    }

    #[test]
    fn imported_profiles_load_as_profiles() {
        let (toml, _) = import("# c\nP2 = a\nP48 =\n");
        assert!(
            toml.starts_with("# Imported from phone.cfg by `provdesk profile import`.\n"),
            "{toml}"
        );
        assert_eq!(
            values(&toml),
            BTreeMap::from([
                ("P2".to_string(), "a".to_string()),
                ("P48".to_string(), String::new()),
            ])
        );
    }

    fn config_of(toml: &str) -> EffectiveConfig {
        let set = ProfileSet::from_texts(&[("profiles/imported.toml", toml)]);
        set.effective(&Target {
            profile: Some("imported"),
            ..Target::default()
        })
        .0
    }

    /// import → export (both formats) → import gives the same values.
    fn round_trip(text: &str) {
        let (first, diagnostics) = import(text);
        assert!(
            diagnostics.iter().all(|d| !d.contains("error")),
            "{diagnostics:?}"
        );
        let expected = values(&first);
        assert!(!expected.is_empty());
        let config = config_of(&first);
        let mac: Mac = "000b82123456".parse().expect("valid MAC");
        let as_text = export_text(&config, Catalog::builtin()).expect("text export");
        let as_xml = export_xml(mac, &config).expect("xml export");
        for exported in [as_text, as_xml] {
            let (again, diagnostics) = import(&exported);
            assert!(diagnostics.is_empty(), "{diagnostics:?}\n{exported}");
            assert_eq!(values(&again), expected, "exported:\n{exported}");
        }
    }

    #[test]
    fn round_trips_from_every_input_form() {
        round_trip(
            "\u{FEFF}# Admin\r\nP2 = pa#ss=word\r\nP48 =\r\nP290 = {x+|*x+|*#x+}\r\nP3 = Rézeption\r\n",
        );
        round_trip(
            "<gs_provision version=\"1\"><config version=\"1\"><!-- c --><P2>a&lt;b&gt;&amp;</P2>\
             <P48/><P3>Ré</P3></config></gs_provision>",
        );
        round_trip(
            "<gs_provision><config version=\"2\">\
             <item name=\"account.1.sip.server.1.address\">pbx.example.com:5060</item>\
             <item name=\"account.1.enable\">No</item></config></gs_provision>",
        );
    }

    #[test]
    fn text_export_names_each_value_and_refuses_what_it_cannot_carry() {
        let config = config_of("[params]\nP47 = \"pbx\"\nP99999 = \"x\"\n");
        assert_eq!(
            export_text(&config, Catalog::builtin()).expect("export"),
            "# Exported by ProvDesk: one `Pnnn = value` per line. Passwords are in clear.\n\
             # SIP Server (Account 1)\nP47 = pbx\nP99999 = x\n"
        );
        let broken = config_of("[params]\nP3 = \"two\\nlines\"\n");
        assert!(matches!(
            export_text(&broken, Catalog::builtin()),
            Err(ExportError::LineBreak { .. })
        ));
        let mac: Mac = "000b82123456".parse().expect("valid MAC");
        assert!(export_xml(mac, &broken).is_ok());
        let spaced = config_of("[params]\nP3 = \" x\"\n");
        assert!(matches!(
            export_text(&spaced, Catalog::builtin()),
            Err(ExportError::EdgeSpace { .. })
        ));
        let control = config_of("[params]\nP3 = \"a\\u0001b\"\n");
        let err = export_xml(mac, &control).expect_err("control character");
        assert!(err.to_string().starts_with("P3: character U+0001"), "{err}");
    }

    #[test]
    fn profile_names_become_file_names() {
        for good in ["office", "gxp2170-1.0.11.3", "site_a", "global"] {
            assert_eq!(profile_name_problem(good), None, "{good}");
        }
        for bad in ["", ".hidden", "-x", "a/b", "a\\b", "..", "naïve", "a b"] {
            assert!(profile_name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn write_profile_refuses_to_overwrite_unless_told() {
        let dir = tempfile::tempdir().expect("temp dir");
        let desk = Desk::init(&dir.path().join("desk")).expect("desk");
        let path = write_profile(&desk, "phone", "[params]\n", WriteOptions::default())
            .expect("first write");
        assert_eq!(path, Path::new("profiles/phone.toml"));
        let err = write_profile(&desk, "office", "x", WriteOptions::default())
            .expect_err("sample profile exists");
        assert!(matches!(err, WriteError::Exists { .. }), "{err}");
        write_profile(
            &desk,
            "office",
            "[params]\n",
            WriteOptions { replace: true },
        )
        .expect("replace");
        assert_eq!(
            fs::read_to_string(desk.profiles_dir().join("office.toml")).expect("read"),
            "[params]\n"
        );
        assert!(matches!(
            write_profile(&desk, "../x", "", WriteOptions::default()),
            Err(WriteError::Name { .. })
        ));
    }
}
