//! Growing the catalogue from Grandstream's own configuration templates (`Pnnn = value` text
//! with `#` comments, or gs_provision XML with `<!-- -->` comments): which P-values a model
//! has, their factory defaults, and the vendor's words for them.
//!
//! Invariants:
//! - Importing never overwrites what the catalogue already says. A template that disagrees
//!   (another default, another description) is reported as a conflict and left out.
//! - Re-importing a template changes nothing and reports nothing new.
//! - Everything learned goes to one overlay file, `DESK/catalog/00-imported.toml`, edited with
//!   `toml_edit` so its comments and hand edits survive. It sorts before hand-written overlays,
//!   so a technician's own files still win.
//! - Model support is recorded per family (the catalogue's granularity): a P-value new to the
//!   catalogue is listed for the template's family only, and a known P-value restricted to
//!   other families gains this one. An entry for every family stays that way.
//! - The descriptions of built-in entries are ProvDesk's own words, so a vendor comment that
//!   differs from them is expected, not a conflict; descriptions that came from a template or
//!   an overlay are compared.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, value};

use super::validate::check_value;
use super::{Catalog, Choice, Entry, EntrySource, OVERLAY_DIR, ParamType, family_of_model};
use crate::format::{looks_like_xml, template, xml};
use crate::{Diagnostic, PName, Severity};

/// The overlay file `provdesk catalog import` maintains, inside `DESK/catalog/`. The `00-`
/// makes it apply before the technician's own overlay files.
pub const IMPORTED_FILE: &str = "00-imported.toml";

/// The page of P-values that only a template told us about; the web UI page is unknown.
pub const IMPORTED_PAGE: &str = "Imported";

/// Names longer than this are sentences, not field labels; the P number is used instead.
const MAX_NAME_CHARS: usize = 60;

const FILE_HEADER: &str = "\
# Facts learned from Grandstream configuration templates by `provdesk catalog import`.
# Same format as assets/catalog/*.toml. Edit freely: an import adds to this file but never
# changes a value it already has (it reports a conflict instead). Files in DESK/catalog/
# that sort after this one override it.
";

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("model {model:?}: {problem}")]
    Model { model: String, problem: String },
    #[error("{}: cannot read the catalogue overlay: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{}: {message}; the file is left alone, fix it and import again",
        path.display()
    )]
    Overlay { path: PathBuf, message: String },
    #[error("{}: cannot write the catalogue overlay: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplateFormat {
    Text,
    Xml,
}

/// How a template names a value: a P-value (text, XML v1) or an XML v2 alias, which the
/// catalogue maps to a P-value when the import is merged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FactKey {
    P(PName),
    Alias(String),
}

/// One value of a template with the comment above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFact {
    pub key: FactKey,
    pub value: String,
    /// The comment lines directly above the value, joined by '\n'.
    pub comment: Option<String>,
    /// 1-based line; XML v1 elements carry none.
    pub line: Option<usize>,
}

/// A parsed template, before it is compared with a catalogue.
#[derive(Debug, Clone)]
pub struct ImportOutcome {
    /// Lower case, as the inventory spells models (`gxp2170`).
    pub model: String,
    pub family: String,
    pub firmware: Option<String>,
    pub format: TemplateFormat,
    /// One per key in file order; for a key set twice, the last value at the first position.
    pub facts: Vec<TemplateFact>,
    /// Bad lines, duplicates, an unreadable XML file.
    pub diagnostics: Vec<Diagnostic>,
}

/// A fact about a known P-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Default,
    Description,
    Family,
}

/// A P-value the catalogue did not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewParam {
    pub p: PName,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub default: Option<String>,
    pub line: Option<usize>,
}

/// A fact added to a P-value the catalogue had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Learned {
    pub p: PName,
    pub field: Field,
    pub value: String,
    pub line: Option<usize>,
}

/// Where the template and the catalogue disagree; the catalogue is left as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub p: PName,
    pub field: Field,
    /// What the catalogue says (`None`: nothing, but the template's value does not fit).
    pub catalogue: Option<String>,
    pub template: String,
    pub line: Option<usize>,
    /// Why it is a conflict, in words.
    pub reason: String,
}

/// What an import found and did, for `provdesk catalog import` and the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The overlay file, relative to the desk.
    pub file: PathBuf,
    pub model: String,
    pub family: String,
    pub firmware: Option<String>,
    pub format: TemplateFormat,
    /// Whether the overlay file changed (never on a dry run or when nothing was new).
    pub written: bool,
    pub new: Vec<NewParam>,
    pub learned: Vec<Learned>,
    pub conflicts: Vec<Conflict>,
    /// Template values the catalogue already knew everything about.
    pub unchanged: usize,
    pub diagnostics: Vec<Diagnostic>,
}

/// How [`merge_into_overlay`] behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct MergeOptions {
    /// Compute and report, but do not write the overlay file.
    pub dry_run: bool,
}

/// Reads a template in either form (XML when its first character after a BOM and whitespace
/// is `<`). Never stops at a bad line; an XML file that cannot be read at all gives no facts
/// and one error diagnostic with its line.
pub fn import_template(
    text: &str,
    model: &str,
    firmware: Option<&str>,
) -> Result<ImportOutcome, ImportError> {
    let model_lower = model.trim().to_ascii_lowercase();
    let family = family_of_model(&model_lower);
    if let Some(problem) = crate::inventory::model_problem(&model_lower) {
        return Err(ImportError::Model {
            model: model.to_string(),
            problem,
        });
    }
    if family.is_empty() {
        return Err(ImportError::Model {
            model: model.to_string(),
            problem: "a model name starts with its family's letters, e.g. GXP2170".to_string(),
        });
    }
    let firmware = firmware
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string);
    let (format, raw, diagnostics) = if looks_like_xml(text) {
        let (facts, diagnostics) = read_xml(text);
        (TemplateFormat::Xml, facts, diagnostics)
    } else {
        let (entries, diagnostics) = template::parse(text);
        let facts = entries
            .into_iter()
            .map(|e| TemplateFact {
                key: FactKey::P(e.name),
                value: e.value,
                comment: e.comment,
                line: Some(e.line),
            })
            .collect();
        (TemplateFormat::Text, facts, diagnostics)
    };
    Ok(ImportOutcome {
        model: model_lower,
        family,
        firmware,
        format,
        facts: last_wins(raw),
        diagnostics,
    })
}

fn read_xml(text: &str) -> (Vec<TemplateFact>, Vec<Diagnostic>) {
    let config = match xml::read_config(text) {
        Ok(config) => config,
        Err(e) => {
            let mut d = Diagnostic::error("xml-syntax", e.to_string());
            if let Some(line) = xml_error_line(&e) {
                d = d.at_line(line);
            }
            return (Vec::new(), vec![d]);
        }
    };
    let mut facts: Vec<TemplateFact> = config
        .params
        .into_iter()
        .map(|(p, value)| TemplateFact {
            key: FactKey::P(p),
            comment: config.comments.get(&p).cloned(),
            value,
            line: None,
        })
        .collect();
    for (index, (alias, value)) in config.items.into_iter().enumerate() {
        facts.push(TemplateFact {
            comment: config.item_comments.get(&alias).cloned(),
            key: FactKey::Alias(alias),
            value,
            line: config.item_lines.get(index).copied(),
        });
    }
    (facts, Vec::new())
}

/// The line an XML error points at, so the diagnostic can carry it as a field too.
pub(crate) fn xml_error_line(error: &xml::XmlError) -> Option<usize> {
    use xml::XmlError as E;
    match error {
        E::Syntax { line, .. }
        | E::UnexpectedElement { line, .. }
        | E::UnexpectedText { line, .. }
        | E::MissingName { line, .. }
        | E::UnknownEntity { line, .. }
        | E::BadMac { line, .. }
        | E::DuplicateMac { line } => Some(*line),
        E::InvalidChar { .. } | E::MissingRoot => None,
    }
}

/// Keeps one fact per key: the last value, at the first position, with the last non-empty
/// comment. The template parser has already warned about the duplicate.
fn last_wins(facts: Vec<TemplateFact>) -> Vec<TemplateFact> {
    let mut out: Vec<TemplateFact> = Vec::with_capacity(facts.len());
    let mut seen: HashMap<FactKey, usize> = HashMap::new();
    for fact in facts {
        match seen.get(&fact.key) {
            Some(&at) => {
                let kept = &mut out[at];
                kept.value = fact.value;
                kept.line = fact.line.or(kept.line);
                if fact.comment.is_some() {
                    kept.comment = fact.comment;
                }
            }
            None => {
                seen.insert(fact.key.clone(), out.len());
                out.push(fact);
            }
        }
    }
    out
}

/// A change to the overlay file.
#[derive(Debug, Clone)]
enum Change {
    Add {
        entry: Box<Entry>,
        provenance: String,
    },
    Set {
        p: PName,
        field: Field,
        /// The new value; for a family, the complete new list.
        value: FieldValue,
    },
}

#[derive(Debug, Clone)]
enum FieldValue {
    Text(String),
    List(Vec<String>),
}

/// Compares `outcome` with `catalog`, without touching any file.
fn compare(catalog: &Catalog, outcome: &ImportOutcome) -> (ImportReport, Vec<Change>) {
    let mut report = ImportReport {
        file: Path::new(OVERLAY_DIR).join(IMPORTED_FILE),
        model: outcome.model.clone(),
        family: outcome.family.clone(),
        firmware: outcome.firmware.clone(),
        format: outcome.format,
        written: false,
        new: Vec::new(),
        learned: Vec::new(),
        conflicts: Vec::new(),
        unchanged: 0,
        diagnostics: outcome.diagnostics.clone(),
    };
    let mut changes = Vec::new();
    let mut done: HashSet<PName> = HashSet::new();
    for fact in &outcome.facts {
        let p = match &fact.key {
            FactKey::P(p) => *p,
            FactKey::Alias(alias) => match catalog.get_by_alias(alias) {
                Some(entry) => entry.p,
                None => {
                    let mut d = Diagnostic::warning(
                        "unknown-alias",
                        format!(
                            "item {alias:?} is not an alias the catalogue knows, so nothing is \
                             learned from it; add its P-value with `alias = \"{alias}\"` to a \
                             DESK/catalog/*.toml file and import again"
                        ),
                    )
                    .field(alias.clone());
                    if let Some(line) = fact.line {
                        d = d.at_line(line);
                    }
                    report.diagnostics.push(d);
                    continue;
                }
            },
        };
        // A v1 element and a v2 item naming the same P-value: the first one speaks.
        if !done.insert(p) {
            continue;
        }
        let before = changes.len() + report.conflicts.len();
        match catalog.get(p) {
            None => {
                let (entry, provenance) = new_entry(p, fact, outcome);
                report.new.push(NewParam {
                    p,
                    name: entry.name.clone(),
                    kind: entry.kind.name(),
                    default: entry.default.clone(),
                    line: fact.line,
                });
                changes.push(Change::Add {
                    entry: Box::new(entry),
                    provenance,
                });
            }
            Some(entry) => compare_known(entry, fact, outcome, &mut report, &mut changes),
        }
        if changes.len() + report.conflicts.len() == before {
            report.unchanged += 1;
        }
    }
    (report, changes)
}

/// Default, description and family of a P-value the catalogue already has.
fn compare_known(
    entry: &Entry,
    fact: &TemplateFact,
    outcome: &ImportOutcome,
    report: &mut ImportReport,
    changes: &mut Vec<Change>,
) {
    let p = entry.p;
    // A blank value in a template means "no value stated", not "the default is empty".
    if !fact.value.is_empty() {
        let problems = errors(entry, &fact.value);
        match (&entry.default, problems.is_empty()) {
            (Some(known), _) if *known == fact.value => {}
            (Some(known), fits) => {
                let mut reason = format!("the catalogue's default is {known:?}");
                if !fits {
                    reason.push_str(&format!(
                        ", and the value does not fit the catalogue's type: {}",
                        problems.join("; ")
                    ));
                }
                report.conflicts.push(Conflict {
                    p,
                    field: Field::Default,
                    catalogue: Some(known.clone()),
                    template: fact.value.clone(),
                    line: fact.line,
                    reason,
                });
            }
            (None, true) => {
                report.learned.push(Learned {
                    p,
                    field: Field::Default,
                    value: fact.value.clone(),
                    line: fact.line,
                });
                changes.push(Change::Set {
                    p,
                    field: Field::Default,
                    value: FieldValue::Text(fact.value.clone()),
                });
            }
            (None, false) => report.conflicts.push(Conflict {
                p,
                field: Field::Default,
                catalogue: None,
                template: fact.value.clone(),
                line: fact.line,
                reason: format!(
                    "the value does not fit the catalogue's type: {}",
                    problems.join("; ")
                ),
            }),
        }
    }
    if let Some(description) = fact.comment.as_deref().and_then(description_of) {
        if entry.description.trim().is_empty() {
            report.learned.push(Learned {
                p,
                field: Field::Description,
                value: description.clone(),
                line: fact.line,
            });
            changes.push(Change::Set {
                p,
                field: Field::Description,
                value: FieldValue::Text(description),
            });
        } else if !builtin_words(entry) && normalize(&entry.description) != normalize(&description)
        {
            report.conflicts.push(Conflict {
                p,
                field: Field::Description,
                catalogue: Some(entry.description.clone()),
                template: description,
                line: fact.line,
                reason: "the catalogue describes it differently".to_string(),
            });
        }
    }
    if !entry.applies_to(&outcome.family) {
        let mut families = entry.families.clone();
        families.push(outcome.family.clone());
        report.learned.push(Learned {
            p,
            field: Field::Family,
            value: outcome.family.clone(),
            line: fact.line,
        });
        changes.push(Change::Set {
            p,
            field: Field::Family,
            value: FieldValue::List(families),
        });
    }
}

/// Whether the entry's description is still the built-in one (an overlay may have changed
/// other fields of a built-in entry, which makes its source the overlay).
fn builtin_words(entry: &Entry) -> bool {
    Catalog::builtin()
        .get(entry.p)
        .is_some_and(|builtin| normalize(&builtin.description) == normalize(&entry.description))
}

fn errors(entry: &Entry, value: &str) -> Vec<String> {
    check_value(entry, value)
        .into_iter()
        .filter(|v| v.severity == Severity::Error)
        .map(|v| v.message)
        .collect()
}

fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An entry for a P-value only the template knows, with its name, type and description read
/// from the comment above it as far as Grandstream's comment conventions allow.
fn new_entry(p: PName, fact: &TemplateFact, outcome: &ImportOutcome) -> (Entry, String) {
    let lines = fact.comment.as_deref().map(text_lines).unwrap_or_default();
    let name = name_of(&lines).unwrap_or_else(|| p.to_string());
    let mut entry = Entry {
        p,
        name,
        page: IMPORTED_PAGE.to_string(),
        section: template_label(outcome),
        kind: infer_kind(&lines),
        default: None,
        families: vec![outcome.family.clone()],
        alias: match &fact.key {
            FactKey::Alias(alias) => Some(alias.clone()),
            FactKey::P(_) => None,
        },
        description: fact
            .comment
            .as_deref()
            .and_then(description_of)
            .unwrap_or_default(),
        source: EntrySource::Overlay {
            file: Path::new(OVERLAY_DIR).join(IMPORTED_FILE),
        },
    };
    if entry.kind == (ParamType::Text { max_len: None })
        && entry.name.to_ascii_lowercase().contains("password")
    {
        entry.kind = ParamType::Secret { max_len: None };
    }
    if !fact.value.is_empty() {
        if !errors(&entry, &fact.value).is_empty() {
            // The comment's hints and the value disagree; text takes any value.
            entry.kind = match entry.kind {
                ParamType::Secret { .. } => ParamType::Secret { max_len: None },
                _ => ParamType::Text { max_len: None },
            };
        }
        entry.default = Some(fact.value.clone());
    }
    let mut provenance = format!("Added from the {} template", template_label(outcome));
    if let Some(line) = fact.line {
        provenance.push_str(&format!(", line {line}"));
    }
    provenance.push('.');
    (entry, provenance)
}

/// `GXP2170 1.0.11.3`, or just the model.
fn template_label(outcome: &ImportOutcome) -> String {
    let mut label = outcome.model.to_ascii_uppercase();
    if let Some(firmware) = &outcome.firmware {
        label.push(' ');
        label.push_str(firmware);
    }
    label
}

/// The comment's lines that carry words: rulers (`#####`, `-----`) and blank lines dropped,
/// framing `#`s (`## Network ##`) removed.
fn text_lines(comment: &str) -> Vec<&str> {
    comment
        .lines()
        .map(|line| line.trim().trim_matches('#').trim())
        .filter(|line| line.chars().any(char::is_alphanumeric))
        .collect()
}

/// The comment's prose: its word-bearing lines without the `Number: …` and `String` lines,
/// which the entry's type already says.
fn description_of(comment: &str) -> Option<String> {
    let lines: Vec<&str> = text_lines(comment)
        .into_iter()
        .filter(|line| value_spec(line).is_none() && !line.eq_ignore_ascii_case("string"))
        .collect();
    (!lines.is_empty()).then(|| lines.join(" "))
}

/// The field label: the comment's first sentence (`Account Active. 0 - No, 1 - Yes` gives
/// `Account Active`), unless that line only describes the value's shape.
fn name_of(lines: &[&str]) -> Option<String> {
    let first = lines.first()?;
    if value_spec(first).is_some() || first.eq_ignore_ascii_case("string") {
        return None;
    }
    let name = first
        .split(". ")
        .next()
        .unwrap_or(first)
        .trim()
        .trim_end_matches('.')
        .trim();
    (!name.is_empty() && name.chars().count() <= MAX_NAME_CHARS).then(|| name.to_string())
}

/// The rest of a `Number: …` line, Grandstream's way of stating a value's range or values.
fn value_spec(line: &str) -> Option<&str> {
    let (head, rest) = line.split_once(':')?;
    head.trim().eq_ignore_ascii_case("number").then_some(rest)
}

/// The value type from Grandstream's comment conventions: `Number: 0 - 64800` is a range,
/// `Number: 0, 1, 2` a list of values, `0 - UDP, 1 - TCP` labels them. Anything else is text,
/// which accepts every value.
fn infer_kind(lines: &[&str]) -> ParamType {
    let labels = labels(lines);
    let spec = lines.iter().find_map(|line| value_spec(line));
    if let Some(spec) = spec {
        let spec = spec.trim().trim_end_matches('.').trim();
        if let Some((min, max)) = range(spec) {
            return if (min, max) == (0, 1) {
                ParamType::Bool
            } else {
                ParamType::Integer {
                    min: Some(min),
                    max: Some(max),
                }
            };
        }
        if let Some(values) = list(spec) {
            if values == ["0", "1"] {
                return ParamType::Bool;
            }
            return ParamType::Choice(
                values
                    .into_iter()
                    .map(|v| Choice {
                        label: labels
                            .iter()
                            .find(|(value, _)| *value == v)
                            .map_or_else(|| v.clone(), |(_, label)| label.clone()),
                        value: v,
                    })
                    .collect(),
            );
        }
        return ParamType::Integer {
            min: None,
            max: None,
        };
    }
    if labels.len() >= 2 {
        let values: Vec<&str> = labels.iter().map(|(v, _)| v.as_str()).collect();
        if values == ["0", "1"] {
            return ParamType::Bool;
        }
        return ParamType::Choice(
            labels
                .into_iter()
                .map(|(value, label)| Choice { value, label })
                .collect(),
        );
    }
    ParamType::Text { max_len: None }
}

/// `a - b`, `a-b`, `a to b` or `a ~ b` with whole numbers.
fn range(spec: &str) -> Option<(i64, i64)> {
    for separator in [" - ", " to ", "~", "-"] {
        // Skip a leading minus sign when splitting at '-'.
        let search_from = usize::from(spec.starts_with('-'));
        if let Some(at) = spec[search_from..].find(separator) {
            let at = at + search_from;
            let low = spec[..at].trim().parse().ok()?;
            let high = spec[at + separator.len()..].trim().parse().ok()?;
            return (low <= high).then_some((low, high));
        }
    }
    None
}

/// `0, 1, 2` (two or more distinct whole numbers).
fn list(spec: &str) -> Option<Vec<String>> {
    let values: Vec<String> = spec
        .split(',')
        .map(|v| v.trim().to_string())
        .collect::<Vec<_>>();
    let numeric = values.len() >= 2 && values.iter().all(|v| v.parse::<i64>().is_ok());
    let mut unique = values.clone();
    unique.sort();
    unique.dedup();
    (numeric && unique.len() == values.len()).then_some(values)
}

/// `0 - No, 1 - Yes` pairs anywhere but on the `Number:` line, in order, first label per value.
/// A label starts with a letter, so a range such as `1 - 3600` is not mistaken for one.
fn labels(lines: &[&str]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in lines.iter().filter(|line| value_spec(line).is_none()) {
        for segment in line.split([',', ';']).flat_map(|s| s.split(". ")) {
            let segment = segment.trim();
            let digits_end = segment
                .char_indices()
                .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
                .map_or(segment.len(), |(i, _)| i);
            let number = &segment[..digits_end];
            if number.parse::<i64>().is_err() {
                continue;
            }
            let rest = segment[digits_end..].trim_start();
            let Some(label) = rest
                .strip_prefix(['-', '=', ':'])
                .map(|l| l.trim().trim_end_matches('.').trim())
            else {
                continue;
            };
            if label.chars().next().is_some_and(char::is_alphabetic)
                && !out.iter().any(|(v, _)| v == number)
            {
                out.push((number.to_string(), label.to_string()));
            }
        }
    }
    out
}

/// Compares `outcome` with the desk's catalogue (built-in plus overlay) and adds what is new
/// to `DESK/catalog/00-imported.toml`. The file is written only when something changed, and
/// then atomically (a temp file renamed into place).
pub fn merge_into_overlay(
    desk: &Path,
    outcome: &ImportOutcome,
    options: MergeOptions,
) -> Result<ImportReport, ImportError> {
    let (catalog, overlay_diagnostics) = Catalog::load_with_overlay(desk);
    let (mut report, changes) = compare(&catalog, outcome);
    report.diagnostics.extend(overlay_diagnostics);
    let path = desk.join(OVERLAY_DIR).join(IMPORTED_FILE);
    let existing = match fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => return Err(ImportError::Read { path, source }),
    };
    let mut document = match &existing {
        Some(text) => text
            .parse::<DocumentMut>()
            .map_err(|e| ImportError::Overlay {
                path: path.clone(),
                message: format!("not valid TOML ({})", e.message()),
            })?,
        None => DocumentMut::new(),
    };
    if changes.is_empty() || options.dry_run {
        return Ok(report);
    }
    apply(&mut document, &changes, existing.is_none()).map_err(|message| ImportError::Overlay {
        path: path.clone(),
        message,
    })?;
    write_atomically(&path, document.to_string().as_bytes())
        .map_err(|source| ImportError::Write { path, source })?;
    report.written = true;
    Ok(report)
}

/// Applies the changes to the overlay document: new `[[param]]` tables at the end, new facts
/// into the table that already names the P-value (or a new one holding just `p` and them).
fn apply(document: &mut DocumentMut, changes: &[Change], new_file: bool) -> Result<(), String> {
    if !document.contains_key("param") {
        document.insert("param", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    let params = document
        .get_mut("param")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or("`param` is not a list of [[param]] tables")?;
    let mut first_table = new_file;
    let mut push = |params: &mut ArrayOfTables, mut table: Table, provenance: &str| {
        let mut prefix = String::from("\n");
        if first_table {
            prefix = format!("{FILE_HEADER}\n");
            first_table = false;
        }
        prefix.push_str(&format!("# {provenance}\n"));
        table.decor_mut().set_prefix(prefix);
        params.push(table);
    };
    for change in changes {
        match change {
            Change::Add { entry, provenance } => push(params, entry_table(entry), provenance),
            Change::Set { p, field, value } => {
                let name = p.to_string();
                let position = params
                    .iter()
                    .position(|t| t.get("p").and_then(Item::as_str) == Some(name.as_str()));
                let index = match position {
                    Some(index) => index,
                    None => {
                        let mut table = Table::new();
                        table.insert("p", toml_edit::value(name.as_str()));
                        push(params, table, "Learned from a template.");
                        params.len() - 1
                    }
                };
                let table = params
                    .get_mut(index)
                    .ok_or("the [[param]] table just found is gone")?;
                let key = match field {
                    Field::Default => "default",
                    Field::Description => "description",
                    Field::Family => "families",
                };
                table.insert(
                    key,
                    match value {
                        FieldValue::Text(text) => toml_edit::value(text.as_str()),
                        FieldValue::List(list) => toml_edit::value(list.iter().collect::<Array>()),
                    },
                );
            }
        }
    }
    Ok(())
}

/// A complete `[[param]]` table for a new entry, in the built-in files' field order.
fn entry_table(entry: &Entry) -> Table {
    let mut table = Table::new();
    table.insert("p", value(entry.p.to_string()));
    table.insert("name", value(entry.name.as_str()));
    table.insert("page", value(entry.page.as_str()));
    table.insert("section", value(entry.section.as_str()));
    table.insert("type", value(entry.kind.name()));
    match &entry.kind {
        ParamType::Integer { min, max } => {
            if let Some(min) = min {
                table.insert("min", value(*min));
            }
            if let Some(max) = max {
                table.insert("max", value(*max));
            }
        }
        ParamType::Choice(choices) => {
            let array: Array = choices
                .iter()
                .map(|c| {
                    let mut inline = InlineTable::new();
                    inline.insert("value", c.value.as_str().into());
                    inline.insert("label", c.label.as_str().into());
                    inline
                })
                .collect();
            table.insert("choices", value(array));
        }
        _ => {}
    }
    if let Some(default) = &entry.default {
        table.insert("default", value(default.as_str()));
    }
    table.insert("families", value(entry.families.iter().collect::<Array>()));
    if let Some(alias) = &entry.alias {
        table.insert("alias", value(alias.as_str()));
    }
    if !entry.description.is_empty() {
        table.insert("description", value(entry.description.as_str()));
    }
    table
}

/// Writes next to `path` under a dot name the overlay loader skips, then renames over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    crate::fsio::write_atomically(path, bytes, crate::fsio::Replace::SYNCED)
        .map_err(|e| io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> PName {
        text.parse().expect("test P-value names are valid")
    }

    /// One line per fact: `line key=value` plus the comment, then the diagnostics.
    fn render(outcome: &ImportOutcome) -> String {
        let mut out = String::new();
        for fact in &outcome.facts {
            let key = match &fact.key {
                FactKey::P(p) => p.to_string(),
                FactKey::Alias(alias) => alias.clone(),
            };
            let line = fact.line.map_or("-".to_string(), |l| l.to_string());
            out.push_str(&format!("{line} {key}={:?}", fact.value));
            if let Some(comment) = &fact.comment {
                out.push_str(&format!(" comment={comment:?}"));
            }
            out.push('\n');
        }
        for d in &outcome.diagnostics {
            let line = d.line.map_or("-".to_string(), |l| l.to_string());
            out.push_str(&format!("{line}: {d}\n"));
        }
        out
    }

    fn check(text: &str, expected: &str) {
        let outcome = import_template(text, "GXP2170", Some("1.0.11.3")).expect("valid model");
        assert_eq!(render(&outcome), expected, "input: {text:?}");
    }

    #[test]
    fn reads_text_templates_with_their_odd_cases() {
        check(
            "\u{FEFF}# Admin password\r\n# String\r\nP2 = admin\r\n\r\n# SIP Server\r\nP47 =\r\n\
             # Dial plan\r\nP290 = {x+|*x+|*#x+} # not a comment\r\nP48 = \r\n",
            "3 P2=\"admin\" comment=\"Admin password\\nString\"\n\
             6 P47=\"\" comment=\"SIP Server\"\n\
             8 P290=\"{x+|*x+|*#x+} # not a comment\" comment=\"Dial plan\"\n\
             9 P48=\"\"\n",
        );
    }

    #[test]
    fn keeps_the_last_value_of_a_repeated_p_value_where_it_first_appeared() {
        check(
            "# first\nP2 = a\nP3 = b\nP2 = c\nbad line\n",
            "4 P2=\"c\" comment=\"first\"\n3 P3=\"b\"\n\
             4: warning: P2 is set again (first on line 2); the last value wins\n\
             5: error: expected `Pnnn = value`, a `#` comment or a blank line, found \"bad line\"\n",
        );
    }

    #[test]
    fn reads_xml_templates_v1_and_v2() {
        check(
            "\u{FEFF}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<gs_provision version=\"1\">\r\n\
             <config version=\"1\">\r\n<!-- Account Active. 0 - No, 1 - Yes -->\r\n\
             <!-- Number: 0, 1 -->\r\n<P271>1</P271>\r\n<P48/>\r\n<P2>a&amp;b # c</P2>\r\n\
             <!-- Alias form -->\r\n<item name=\"account.1.sip.server.1.address\">pbx</item>\r\n\
             </config>\r\n</gs_provision>\r\n",
            "- P271=\"1\" comment=\"Account Active. 0 - No, 1 - Yes\\nNumber: 0, 1\"\n\
             - P48=\"\"\n- P2=\"a&b # c\"\n\
             10 account.1.sip.server.1.address=\"pbx\" comment=\"Alias form\"\n",
        );
        check(
            "<gs_provision>\n<config>\n<Foo/>\n</config>\n</gs_provision>\n",
            "3: error: line 3: unexpected element <Foo> inside <config>; expected P-value \
             elements such as <P2>, or <item name=\"…\">\n",
        );
    }

    #[test]
    fn models_need_a_family() {
        for bad in ["2170", "", "GXP 2170"] {
            assert!(import_template("P2 = a\n", bad, None).is_err(), "{bad:?}");
        }
        let outcome = import_template("", " HT802 ", Some("  ")).expect("valid model");
        assert_eq!(
            (outcome.model.as_str(), outcome.family.as_str()),
            ("ht802", "ht")
        );
        assert_eq!(outcome.firmware, None);
    }

    #[test]
    fn infers_names_and_types_from_grandstream_comments() {
        fn check(comment: &str, name: Option<&str>, kind: ParamType) {
            let lines = text_lines(comment);
            assert_eq!(name_of(&lines).as_deref(), name, "{comment:?}");
            assert_eq!(infer_kind(&lines), kind, "{comment:?}");
        }
        let text = ParamType::Text { max_len: None };
        let choice = |pairs: &[(&str, &str)]| {
            ParamType::Choice(
                pairs
                    .iter()
                    .map(|(v, l)| Choice {
                        value: v.to_string(),
                        label: l.to_string(),
                    })
                    .collect(),
            )
        };
        check(
            "Account Active. 0 - No, 1 - Yes. Default value is 1\nNumber: 0, 1\nMandatory",
            Some("Account Active"),
            ParamType::Bool,
        );
        check(
            "Register Expiration (in minutes). Default is 60\nNumber: 1 - 64800",
            Some("Register Expiration (in minutes)"),
            ParamType::Integer {
                min: Some(1),
                max: Some(64800),
            },
        );
        check(
            "SIP Transport. 0 - UDP, 1 - TCP, 2 - TLS\nNumber: 0, 1, 2",
            Some("SIP Transport"),
            choice(&[("0", "UDP"), ("1", "TCP"), ("2", "TLS")]),
        );
        check(
            "Mode. 0 = Off; 1 = On; 2 = Auto",
            Some("Mode"),
            choice(&[("0", "Off"), ("1", "On"), ("2", "Auto")]),
        );
        check(
            "Timeout. Valid range 1 - 3600, 0 - disabled",
            Some("Timeout"),
            text.clone(),
        );
        check(
            "##########\n## Network ##\n# SIP Server\n# String",
            Some("Network"),
            text.clone(),
        );
        check(
            "Number: -12 - 12",
            None,
            ParamType::Integer {
                min: Some(-12),
                max: Some(12),
            },
        );
        check(
            "Number: any",
            None,
            ParamType::Integer {
                min: None,
                max: None,
            },
        );
        check("String", None, text.clone());
        check(&"Very long ".repeat(10), None, text);
    }

    /// A desk folder with `catalog/` files; returns it with the import report.
    fn merge(desk: &Path, text: &str, model: &str) -> ImportReport {
        let outcome = import_template(text, model, Some("1.0.11.3")).expect("valid model");
        merge_into_overlay(desk, &outcome, MergeOptions::default()).expect("merge")
    }

    fn summary(report: &ImportReport) -> String {
        let mut out = String::new();
        for n in &report.new {
            out.push_str(&format!(
                "new {} {:?} {} {:?}\n",
                n.p, n.name, n.kind, n.default
            ));
        }
        for l in &report.learned {
            out.push_str(&format!("learned {} {:?} {:?}\n", l.p, l.field, l.value));
        }
        for c in &report.conflicts {
            out.push_str(&format!(
                "conflict {} {:?} {:?} vs {:?}\n",
                c.p, c.field, c.catalogue, c.template
            ));
        }
        out.push_str(&format!("unchanged {}\n", report.unchanged));
        out
    }

    const TEMPLATE: &str = "# Account Active. 0 - No, 1 - Yes\n# Number: 0, 1\nP271 = 1\n\n\
        # Register Expiration. Default 60\nP32 = 30\n\n\
        # Our vendor words for P47\nP47 =\n\n\
        # Use SBC. 0 - No, 1 - Yes\n# Number: 0, 1\nP26090 = 0\n\n\
        # Remote Phonebook Name\nP26091 = x#y\n\n\
        # Some Password\nP26092 =\n\n\
        # Line Key 1 Type. 0 - Speed Dial, 1 - BLF\nP1363 = 0\n";

    #[test]
    fn learns_new_p_values_defaults_and_families_and_reports_conflicts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let report = merge(dir.path(), TEMPLATE, "GRP2614");
        assert_eq!(
            summary(&report),
            "new P26090 \"Use SBC\" bool Some(\"0\")\n\
             new P26091 \"Remote Phonebook Name\" text Some(\"x#y\")\n\
             new P26092 \"Some Password\" secret None\n\
             learned P1363 Default \"0\"\n\
             learned P1363 Family \"grp\"\n\
             conflict P32 Default Some(\"60\") vs \"30\"\n\
             unchanged 2\n",
        );
        assert!(report.written);
        assert_eq!(report.family, "grp");

        // The overlay loads cleanly and now knows the new P-values.
        let (catalog, diagnostics) = Catalog::load_with_overlay(dir.path());
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let sbc = catalog.get(p("P26090")).expect("learned entry");
        assert_eq!(sbc.page, IMPORTED_PAGE);
        assert_eq!(sbc.section, "GRP2614 1.0.11.3");
        assert_eq!(sbc.families, ["grp"]);
        assert_eq!(sbc.description, "Use SBC. 0 - No, 1 - Yes");
        assert!(catalog.is_secret(p("P26092")));
        assert_eq!(
            catalog.get(p("P32")).and_then(|e| e.default.as_deref()),
            Some("60")
        );

        // A GXP template of the same P-values: the families grow; P1363 knew gxp already.
        let report = merge(dir.path(), TEMPLATE, "GXP2170");
        assert_eq!(
            summary(&report),
            "learned P26090 Family \"gxp\"\n\
             learned P26091 Family \"gxp\"\n\
             learned P26092 Family \"gxp\"\n\
             conflict P32 Default Some(\"60\") vs \"30\"\n\
             unchanged 3\n",
        );
        let (catalog, _) = Catalog::load_with_overlay(dir.path());
        assert_eq!(
            catalog.get(p("P26090")).map(|e| e.families.clone()),
            Some(vec!["grp".to_string(), "gxp".to_string()])
        );
        // An HT template: P1363 is listed for gxp and grp only, so ht joins them.
        let report = merge(dir.path(), "P1363 = 0\n", "HT802");
        assert_eq!(
            summary(&report),
            "learned P1363 Family \"ht\"\nunchanged 0\n"
        );
        let (catalog, diagnostics) = Catalog::load_with_overlay(dir.path());
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert!(
            catalog
                .get(p("P1363"))
                .is_some_and(|e| e.applies_to("ht") && e.applies_to("gxp"))
        );
    }

    #[test]
    fn reimporting_is_idempotent() {
        let dir = tempfile::tempdir().expect("temp dir");
        merge(dir.path(), TEMPLATE, "GRP2614");
        let file = dir.path().join(OVERLAY_DIR).join(IMPORTED_FILE);
        let first = fs::read_to_string(&file).expect("overlay written");
        let again = merge(dir.path(), TEMPLATE, "GRP2614");
        assert!(
            again.new.is_empty() && again.learned.is_empty(),
            "{again:?}"
        );
        assert!(!again.written);
        assert_eq!(fs::read_to_string(&file).expect("overlay"), first);
        // The conflict is still there to see, and still not written.
        assert_eq!(again.conflicts.len(), 1);
    }

    #[test]
    fn the_overlay_file_is_readable_and_keeps_hand_edits() {
        let dir = tempfile::tempdir().expect("temp dir");
        merge(
            dir.path(),
            "# Use SBC. 0 - No, 1 - Yes\nP26090 = 0\n",
            "GRP2614",
        );
        let file = dir.path().join(OVERLAY_DIR).join(IMPORTED_FILE);
        let text = fs::read_to_string(&file).expect("overlay written");
        assert!(text.starts_with(FILE_HEADER), "{text}");
        assert!(
            text.contains(
                "# Added from the GRP2614 1.0.11.3 template, line 2.\n[[param]]\n\
                 p = \"P26090\"\nname = \"Use SBC\"\npage = \"Imported\"\n"
            ),
            "{text}"
        );
        // A technician renames the entry and adds a note; a later import keeps both.
        let edited = text.replace("\"Use SBC\"", "\"Use SBC (site)\" # our name");
        fs::write(&file, &edited).expect("edit");
        let report = merge(
            dir.path(),
            "# Use SBC. 0 - No, 1 - Yes\nP26090 = 0\nP26093 = 5\n",
            "GXP2170",
        );
        assert_eq!(
            summary(&report),
            "new P26093 \"P26093\" text Some(\"5\")\nlearned P26090 Family \"gxp\"\nunchanged 0\n"
        );
        let text = fs::read_to_string(&file).expect("overlay");
        assert!(
            text.contains("name = \"Use SBC (site)\" # our name"),
            "{text}"
        );
        assert!(text.contains("families = [\"grp\", \"gxp\"]"), "{text}");
    }

    #[test]
    fn descriptions_of_imported_entries_are_compared_and_filled() {
        let dir = tempfile::tempdir().expect("temp dir");
        merge(dir.path(), "P26090 = 0\n", "GRP2614");
        // The first template had no comment: the second one's description is learned.
        let report = merge(dir.path(), "# Use SBC\nP26090 = 0\n", "GRP2614");
        assert_eq!(
            summary(&report),
            "learned P26090 Description \"Use SBC\"\nunchanged 0\n"
        );
        // A third template words it differently: a conflict, not a change.
        let report = merge(dir.path(), "# Enable SBC mode\nP26090 = 0\n", "GRP2614");
        assert_eq!(
            summary(&report),
            "conflict P26090 Description Some(\"Use SBC\") vs \"Enable SBC mode\"\nunchanged 0\n"
        );
        // The same words with other spacing are the same description.
        let report = merge(dir.path(), "#   Use  SBC\nP26090 = 0\n", "GRP2614");
        assert_eq!(summary(&report), "unchanged 1\n");
    }

    #[test]
    fn built_in_descriptions_are_not_conflicts_but_bad_defaults_are() {
        let dir = tempfile::tempdir().expect("temp dir");
        let report = merge(
            dir.path(),
            "# Vendor words\nP47 = pbx.example.com\n# Register Expiration\nP32 = soon\n",
            "GXP2170",
        );
        assert_eq!(
            summary(&report),
            "learned P47 Default \"pbx.example.com\"\nconflict P32 Default Some(\"60\") vs \"soon\"\nunchanged 0\n"
        );
        let report = merge(dir.path(), "P130 = 7\nP48 = not a host\n", "GXP2170");
        let reasons: Vec<(&str, Option<&str>, &str)> = report
            .conflicts
            .iter()
            .map(|c| {
                (
                    c.template.as_str(),
                    c.catalogue.as_deref(),
                    c.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert_eq!(reasons[0].1, Some("0"));
        assert!(
            reasons[0].2.contains("and the value does not fit"),
            "{reasons:?}"
        );
        assert_eq!(reasons[1].1, None);
        assert!(
            reasons[1].2.starts_with("the value does not fit"),
            "{reasons:?}"
        );
    }

    #[test]
    fn xml_v2_aliases_map_through_the_catalogue() {
        let dir = tempfile::tempdir().expect("temp dir");
        let report = merge(
            dir.path(),
            "<gs_provision><config version=\"2\">\n\
             <item name=\"account.1.sip.server.1.address\">pbx.example.com</item>\n\
             <item name=\"vendor.new.thing\">1</item>\n</config></gs_provision>",
            "GXP2170",
        );
        assert_eq!(
            summary(&report),
            "learned P47 Default \"pbx.example.com\"\nunchanged 0\n"
        );
        assert_eq!(report.diagnostics.len(), 1);
        let d = &report.diagnostics[0];
        assert_eq!((d.kind, d.line), ("unknown-alias", Some(3)));
        assert!(d.message.contains("vendor.new.thing"), "{}", d.message);
    }

    #[test]
    fn dry_runs_and_broken_overlays_write_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let outcome = import_template("P26090 = 0\n", "GXP2170", None).expect("valid model");
        let report = merge_into_overlay(dir.path(), &outcome, MergeOptions { dry_run: true })
            .expect("dry run");
        assert_eq!(report.new.len(), 1);
        assert!(!report.written);
        assert!(!dir.path().join(OVERLAY_DIR).exists());

        let file = dir.path().join(OVERLAY_DIR).join(IMPORTED_FILE);
        fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        fs::write(&file, "[[param]\n").expect("broken file");
        let err = merge_into_overlay(dir.path(), &outcome, MergeOptions::default())
            .expect_err("broken overlay");
        assert!(err.to_string().contains("not valid TOML"), "{err}");
        assert_eq!(fs::read_to_string(&file).expect("kept"), "[[param]\n");
    }
}
