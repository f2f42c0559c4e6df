//! Reading catalogue files: the embedded built-in ones and a desk's overlay.
//!
//! Invariant: nothing here fails. A syntax error costs its file, a bad entry costs that entry,
//! and each becomes a diagnostic with file and line, so a technician sees every problem at
//! once. Built-in files are stricter than overlays: every field is required and a P-value may
//! appear only once across them.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::Path;

use serde::Deserialize;

use super::validate::check_value;
use super::{BUILTIN_FILES, Choice, Entry, EntrySource, KNOWN_FAMILIES, OVERLAY_DIR, ParamType};
use crate::diagnostic::line_column;
use crate::{Diagnostic, PName, Severity};

/// The built-in entries and anything wrong with them (a unit test keeps that list empty).
pub(super) fn parse_builtin() -> (Vec<Entry>, Vec<Diagnostic>) {
    let mut entries = BTreeMap::new();
    let mut diagnostics = Vec::new();
    for (name, text) in BUILTIN_FILES {
        let file = Path::new("assets/catalog").join(name);
        parse_file(text, &file, Mode::Builtin, &mut entries, &mut diagnostics);
    }
    (entries.into_values().collect(), diagnostics)
}

/// Applies `desk/catalog/*.toml` in file-name order on top of `entries`.
pub(super) fn apply_overlay_dir(
    desk: &Path,
    entries: &mut BTreeMap<PName, Entry>,
) -> Vec<Diagnostic> {
    let dir = desk.join(OVERLAY_DIR);
    let mut diagnostics = Vec::new();
    let listing = match fs::read_dir(&dir) {
        Ok(listing) => listing,
        // A desk without a catalog folder simply has no overlay.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return diagnostics,
        Err(e) => {
            diagnostics.push(read_error(Path::new(OVERLAY_DIR), &e));
            return diagnostics;
        }
    };
    let mut names: Vec<String> = Vec::new();
    for item in listing {
        match item {
            Ok(item) => {
                let name = item.file_name().to_string_lossy().into_owned();
                let is_file = item
                    .file_type()
                    .is_ok_and(|t| t.is_file() || t.is_symlink());
                if is_file && name.ends_with(".toml") {
                    names.push(name);
                }
            }
            Err(e) => diagnostics.push(read_error(Path::new(OVERLAY_DIR), &e)),
        }
    }
    names.sort();
    for name in names {
        let shown = Path::new(OVERLAY_DIR).join(&name);
        match fs::read_to_string(dir.join(&name)) {
            Ok(text) => parse_file(&text, &shown, Mode::Overlay, entries, &mut diagnostics),
            Err(e) => diagnostics.push(read_error(&shown, &e)),
        }
    }
    diagnostics
}

fn read_error(shown: &Path, e: &io::Error) -> Diagnostic {
    Diagnostic::error(
        "catalog-read",
        format!("cannot read catalogue overlay: {e}"),
    )
    .in_file(shown)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Builtin,
    Overlay,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    param: Vec<toml::Spanned<toml::Table>>,
}

/// One `[[param]]` table as written. Everything is optional here because an overlay entry
/// for a known P-value names only what it changes; `finish` and `merge` decide what is
/// required.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    p: String,
    name: Option<String>,
    page: Option<String>,
    section: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    min: Option<i64>,
    max: Option<i64>,
    max_len: Option<usize>,
    choices: Option<Vec<RawChoice>>,
    default: Option<Scalar>,
    families: Option<Vec<String>>,
    alias: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChoice {
    value: Scalar,
    label: String,
}

/// A value written as a string or a bare integer (`value = 0` and `value = "0"` both work),
/// because P-values are strings on the wire but reviewers naturally write numbers.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn parse_file(
    text: &str,
    file: &Path,
    mode: Mode,
    entries: &mut BTreeMap<PName, Entry>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let raw: RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let mut d = Diagnostic::error("catalog-syntax", e.message().to_string()).in_file(file);
            if let Some(span) = e.span() {
                let (line, column) = line_column(text, span.start);
                d = d.at(line, column);
            }
            diagnostics.push(d);
            return;
        }
    };
    let mut in_this_file = HashSet::new();
    for spanned in raw.param {
        let line = line_column(text, spanned.span().start).0;
        let table = spanned.into_inner();
        // Read `p` before the typed conversion so even a malformed entry's diagnostic names it.
        let p_text = table.get("p").and_then(|v| v.as_str()).map(str::to_string);
        let fail = |message: String| {
            let mut d = Diagnostic::error("catalog-entry", message)
                .in_file(file)
                .at_line(line);
            if let Some(p) = &p_text {
                d = d.field(p.clone());
            }
            d
        };
        let raw: RawParam = match toml::Value::Table(table).try_into() {
            Ok(raw) => raw,
            Err(e) => {
                diagnostics.push(fail(e.message().to_string()));
                continue;
            }
        };
        let p: PName = match raw.p.parse() {
            Ok(p) => p,
            Err(e) => {
                diagnostics.push(fail(e.to_string()));
                continue;
            }
        };
        if !in_this_file.insert(p) {
            diagnostics.push(fail(format!(
                "{p} appears twice in this file; the later one is ignored"
            )));
            continue;
        }
        let source = match mode {
            Mode::Builtin => EntrySource::Builtin,
            Mode::Overlay => EntrySource::Overlay {
                file: file.to_path_buf(),
            },
        };
        let mut notes = Vec::new();
        let built = match (mode, entries.get(&p)) {
            (Mode::Builtin, Some(_)) => Err(format!(
                "{p} is already defined in another built-in file; each P-value belongs to one page"
            )),
            (Mode::Overlay, Some(existing)) => merge(existing.clone(), raw, source, &mut notes),
            (_, None) => finish(p, raw, mode, source, &mut notes),
        };
        for (severity, message) in notes {
            let mut d = fail(message);
            d.severity = severity;
            diagnostics.push(d);
        }
        match built {
            Ok(entry) => {
                entries.insert(p, entry);
            }
            Err(message) => diagnostics.push(fail(message)),
        }
    }
}

type Notes = Vec<(Severity, String)>;

/// A new entry from a complete `[[param]]` table.
fn finish(
    p: PName,
    raw: RawParam,
    mode: Mode,
    source: EntrySource,
    notes: &mut Notes,
) -> Result<Entry, String> {
    let required = |field: &str, value: Option<String>| -> Result<String, String> {
        match value {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ if mode == Mode::Overlay => Err(format!(
                "{p} is not in the catalogue yet, so it needs `{field}` \
                 (a new entry needs p, name, page and type)"
            )),
            _ => Err(format!("`{field}` is missing or empty")),
        }
    };
    // Overlays may leave the descriptive fields out; the built-in files may not.
    let optional = |field: &str, value: Option<String>| -> Result<String, String> {
        match mode {
            Mode::Builtin => required(field, value),
            Mode::Overlay => Ok(value.unwrap_or_default()),
        }
    };
    let name = required("name", raw.name.clone())?;
    let page = required("page", raw.page.clone())?;
    let type_name = required("type", raw.kind.clone())?;
    let section = optional("section", raw.section.clone())?;
    let description = optional("description", raw.description.clone())?;
    let kind = build_kind(&type_name, &raw, None)?;
    let mut entry = Entry {
        p,
        name,
        page,
        section,
        kind,
        default: None,
        families: Vec::new(),
        alias: None,
        description,
        source,
    };
    apply_common(&mut entry, raw, notes)?;
    Ok(entry)
}

/// An overlay entry for a known P-value: the fields it names replace the existing ones.
fn merge(
    mut entry: Entry,
    raw: RawParam,
    source: EntrySource,
    notes: &mut Notes,
) -> Result<Entry, String> {
    for (field, value) in [("name", &raw.name), ("page", &raw.page)] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(format!("`{field}` must not be empty"));
        }
    }
    let type_name = raw
        .kind
        .clone()
        .unwrap_or_else(|| entry.kind.name().to_string());
    // Keep the existing bounds, choices or length when the type stays the same, so an
    // overlay can change just `max` or just `choices`.
    let base = (type_name == entry.kind.name()).then_some(&entry.kind);
    let kind = build_kind(&type_name, &raw, base)?;
    if let Some(name) = raw.name.clone() {
        entry.name = name;
    }
    if let Some(page) = raw.page.clone() {
        entry.page = page;
    }
    if let Some(section) = raw.section.clone() {
        entry.section = section;
    }
    if let Some(description) = raw.description.clone() {
        entry.description = description;
    }
    entry.kind = kind;
    // A default that no longer fits the changed type or bounds would mislead; drop it quietly,
    // since the overlay did not write it.
    if entry.default.as_deref().is_some_and(|d| {
        check_value(&entry, d)
            .iter()
            .any(|v| v.severity == Severity::Error)
    }) {
        entry.default = None;
    }
    entry.source = source;
    apply_common(&mut entry, raw, notes)?;
    Ok(entry)
}

/// Fields that mean the same for new and merged entries: families, alias and default.
fn apply_common(entry: &mut Entry, raw: RawParam, notes: &mut Notes) -> Result<(), String> {
    if let Some(families) = raw.families {
        let mut cleaned: Vec<String> = Vec::new();
        for family in families {
            let family = family.trim().to_ascii_lowercase();
            if family.is_empty() || !family.chars().all(|c| c.is_ascii_lowercase()) {
                return Err(format!(
                    "family {family:?} is not a model family; use the model's leading letters, \
                     e.g. \"gxp\" for a GXP2170"
                ));
            }
            if !KNOWN_FAMILIES.contains(&family.as_str()) {
                notes.push((
                    Severity::Warning,
                    format!(
                        "family {family:?} is not one ProvDesk knows ({}); check the spelling",
                        KNOWN_FAMILIES.join(", ")
                    ),
                ));
            }
            if !cleaned.contains(&family) {
                cleaned.push(family);
            }
        }
        entry.families = cleaned;
    }
    if let Some(alias) = raw.alias {
        let well_formed = !alias.is_empty()
            && alias.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        if !well_formed {
            return Err(format!(
                "alias {alias:?} is not an XML v2 item name such as account.1.sip.server.1.address"
            ));
        }
        entry.alias = Some(alias);
    }
    if let Some(Scalar(default)) = raw.default {
        let problems: Vec<String> = check_value(entry, &default)
            .into_iter()
            .filter(|v| v.severity == Severity::Error)
            .map(|v| v.message)
            .collect();
        if problems.is_empty() {
            entry.default = Some(default);
        } else {
            // Drop a default that does not fit, so no UI offers it as a starting value.
            notes.push((
                Severity::Error,
                format!("default {default:?} is ignored: {}", problems.join("; ")),
            ));
        }
    }
    Ok(())
}

/// The value shape from `type` and its details; `base` supplies details the table leaves out.
fn build_kind(
    type_name: &str,
    raw: &RawParam,
    base: Option<&ParamType>,
) -> Result<ParamType, String> {
    const TYPES: &str = "bool, integer, choice, text, secret, host, url, timezone";
    let takes_range = type_name == "integer";
    let takes_len = matches!(type_name, "text" | "secret" | "host" | "url");
    let takes_choices = type_name == "choice";
    for (field, present, allowed) in [
        ("min", raw.min.is_some(), takes_range),
        ("max", raw.max.is_some(), takes_range),
        ("max_len", raw.max_len.is_some(), takes_len),
        ("choices", raw.choices.is_some(), takes_choices),
    ] {
        if present && !allowed {
            return Err(format!("`{field}` does not apply to type {type_name:?}"));
        }
    }
    let max_len = match raw.max_len {
        Some(0) => return Err("`max_len` must be at least 1".to_string()),
        Some(n) => Some(n),
        None => base.and_then(ParamType::max_len),
    };
    let kind = match type_name {
        "bool" => ParamType::Bool,
        "timezone" => ParamType::TimeZone,
        "text" => ParamType::Text { max_len },
        "secret" => ParamType::Secret { max_len },
        "host" => ParamType::Host { max_len },
        "url" => ParamType::Url { max_len },
        "integer" => {
            let (base_min, base_max) = match base {
                Some(ParamType::Integer { min, max }) => (*min, *max),
                _ => (None, None),
            };
            let min = raw.min.or(base_min);
            let max = raw.max.or(base_max);
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                return Err(format!("`min` {lo} is greater than `max` {hi}"));
            }
            ParamType::Integer { min, max }
        }
        "choice" => {
            let choices = match (&raw.choices, base) {
                (Some(raw_choices), _) => raw_choices
                    .iter()
                    .map(|c| Choice {
                        value: c.value.0.clone(),
                        label: c.label.clone(),
                    })
                    .collect(),
                (None, Some(ParamType::Choice(existing))) => existing.clone(),
                (None, _) => Vec::new(),
            };
            if choices.is_empty() {
                return Err(
                    "type \"choice\" needs `choices = [{ value = \"0\", label = \"…\" }, …]`"
                        .to_string(),
                );
            }
            let mut seen = HashSet::new();
            for choice in &choices {
                if choice.value.is_empty() || choice.label.trim().is_empty() {
                    return Err("every choice needs a non-empty value and label".to_string());
                }
                if !seen.insert(choice.value.as_str()) {
                    return Err(format!("choice value {:?} is listed twice", choice.value));
                }
            }
            ParamType::Choice(choices)
        }
        other => return Err(format!("unknown type {other:?}; use one of {TYPES}")),
    };
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn p(text: &str) -> PName {
        text.parse().expect("test P-value names are valid")
    }

    fn overlay_path(name: &str) -> std::path::PathBuf {
        Path::new(OVERLAY_DIR).join(name)
    }

    /// Loads a desk whose `catalog/` folder holds `files`, and returns the catalogue with the
    /// diagnostics shown as `file:line: severity: message` strings.
    fn load(files: &[(&str, &str)]) -> (Catalog, Vec<String>) {
        let desk = tempfile::tempdir().expect("temp dir");
        let dir = desk.path().join(OVERLAY_DIR);
        fs::create_dir(&dir).expect("catalog dir");
        for (name, text) in files {
            fs::write(dir.join(name), text).expect("write overlay");
        }
        let (catalog, diagnostics) = Catalog::load_with_overlay(desk.path());
        (catalog, diagnostics.iter().map(|d| d.to_string()).collect())
    }

    fn check(files: &[(&str, &str)], expected: &[&str]) -> Catalog {
        let (catalog, shown) = load(files);
        assert_eq!(shown.len(), expected.len(), "diagnostics: {shown:#?}");
        for (got, want) in shown.iter().zip(expected) {
            assert!(got.contains(want), "{got:?} should contain {want:?}");
        }
        catalog
    }

    #[test]
    fn no_catalog_folder_means_the_builtin_catalogue() {
        let desk = tempfile::tempdir().expect("temp dir");
        let (catalog, diagnostics) = Catalog::load_with_overlay(desk.path());
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(catalog.len(), Catalog::builtin().len());
    }

    #[test]
    fn overlay_replaces_only_the_fields_it_names() {
        let catalog = check(
            &[(
                "site.toml",
                "[[param]]\np = \"P32\"\nmax = 120\ndescription = \"Our PBX wants short registrations.\"\n",
            )],
            &[],
        );
        let entry = catalog.get(p("P32")).expect("P32");
        assert_eq!(
            entry.kind,
            ParamType::Integer {
                min: Some(1),
                max: Some(120)
            }
        );
        assert_eq!(entry.description, "Our PBX wants short registrations.");
        assert_eq!(entry.name, "Register Expiration");
        assert_eq!(entry.default.as_deref(), Some("60"));
        assert_eq!(
            entry.source,
            EntrySource::Overlay {
                file: overlay_path("site.toml")
            }
        );
        assert_eq!(
            catalog.get(p("P47")).map(|e| &e.source),
            Some(&EntrySource::Builtin)
        );
    }

    #[test]
    fn overlay_adds_new_entries_and_changes_types() {
        let text = r#"
[[param]]
p = "P26090"
name = "Use SBC"
page = "Account 1"
type = "bool"
default = 0

[[param]]
p = "P130"
choices = [{ value = 0, label = "UDP" }, { value = 1, label = "TCP" }]

[[param]]
p = "P1362"
type = "choice"
choices = [{ value = "en", label = "English" }, { value = "de", label = "Deutsch" }]
families = ["GXP"]
"#;
        let catalog = check(&[("models.toml", text)], &[]);
        let sbc = catalog.get(p("P26090")).expect("new entry");
        assert_eq!(sbc.kind, ParamType::Bool);
        assert_eq!(sbc.default.as_deref(), Some("0"));
        assert_eq!(sbc.section, "");
        let transport = catalog.get(p("P130")).expect("P130");
        assert!(matches!(&transport.kind, ParamType::Choice(c) if c.len() == 2));
        let language = catalog.get(p("P1362")).expect("P1362");
        assert_eq!(language.kind.name(), "choice");
        assert_eq!(language.families, ["gxp"]);
        // The text default `auto` is no longer one of the choices, so it is dropped.
        assert_eq!(language.default, None);
        assert_eq!(language.alias.as_deref(), Some("language.gui"));
    }

    #[test]
    fn later_files_win() {
        let catalog = check(
            &[
                ("a.toml", "[[param]]\np = \"P47\"\nname = \"From A\"\n"),
                ("b.toml", "[[param]]\np = \"P47\"\nname = \"From B\"\n"),
                ("notes.txt", "not a catalogue file"),
            ],
            &[],
        );
        let entry = catalog.get(p("P47")).expect("P47");
        assert_eq!(entry.name, "From B");
        assert_eq!(
            entry.source,
            EntrySource::Overlay {
                file: overlay_path("b.toml")
            }
        );
    }

    #[test]
    fn bad_entries_are_reported_with_file_and_line_and_the_rest_load() {
        let text = r#"[[param]]
p = "P47"
name = "Fine"

[[param]]
p = "P9999"
name = "No type"
page = "X"

[[param]]
p = "P48"
type = "integer"
max_len = 5

[[param]]
p = "P49"
max_length = 3

[[param]]
p = "47"

[[param]]
p = "P32"
min = 100
max = 10

[[param]]
p = "P47"
name = "Twice"

[[param]]
p = "P31"
default = "yes"

[[param]]
p = "P2"
type = "password"

[[param]]
p = "P3"
families = ["gxp", "gpx", "GX P"]

[[param]]
p = "P4"
name = "Octet"
page = "Network"
type = "choice"
choices = [{ value = "1", label = "One" }, { value = "1", label = "Uno" }]

[[param]]
p = "P5"
name = "Alias"
page = "Network"
type = "text"
alias = "account..1"
"#;
        let catalog = check(
            &[("bad.toml", text)],
            &[
                "catalog/bad.toml:5: error: P9999 is not in the catalogue yet, so it needs `type`",
                "catalog/bad.toml:10: error: `max_len` does not apply to type \"integer\"",
                "catalog/bad.toml:15: error: unknown field `max_length`",
                "catalog/bad.toml:19: error: invalid P-value name \"47\"",
                "catalog/bad.toml:22: error: `min` 100 is greater than `max` 10",
                "catalog/bad.toml:27: error: P47 appears twice in this file",
                "catalog/bad.toml:31: error: default \"yes\" is ignored",
                "catalog/bad.toml:35: error: unknown type \"password\"",
                "catalog/bad.toml:39: warning: family \"gpx\" is not one ProvDesk knows",
                "catalog/bad.toml:39: error: family \"gx p\" is not a model family",
                "catalog/bad.toml:43: error: choice value \"1\" is listed twice",
                "catalog/bad.toml:50: error: alias \"account..1\" is not an XML v2 item name",
            ],
        );
        assert_eq!(catalog.get(p("P47")).map(|e| e.name.as_str()), Some("Fine"));
        assert!(catalog.get(p("P9999")).is_none());
        assert_eq!(
            catalog.get(p("P31")).and_then(|e| e.default.as_deref()),
            Some("1"),
            "the bad default is dropped and the built-in one stays"
        );
        assert_eq!(
            catalog.get(p("P3")).map(|e| &e.source),
            Some(&EntrySource::Builtin)
        );
    }

    #[test]
    fn syntax_errors_cost_only_their_file() {
        let (catalog, shown) = load(&[
            (
                "broken.toml",
                "[[param]]\np = \"P47\"\nname = \"unterminated\n",
            ),
            ("good.toml", "[[param]]\np = \"P48\"\nname = \"Kept\"\n"),
            ("typo.toml", "[[params]]\np = \"P47\"\n"),
        ]);
        assert_eq!(shown.len(), 2, "{shown:#?}");
        assert!(
            shown[0].starts_with("catalog/broken.toml:3:"),
            "{}",
            shown[0]
        );
        assert!(shown[0].contains("error:"), "{}", shown[0]);
        assert!(shown[1].starts_with("catalog/typo.toml"), "{}", shown[1]);
        assert!(shown[1].contains("params"), "{}", shown[1]);
        assert_eq!(catalog.get(p("P48")).map(|e| e.name.as_str()), Some("Kept"));
    }

    #[test]
    fn alias_conflicts_are_warnings() {
        let (catalog, shown) = load(&[(
            "alias.toml",
            "[[param]]\np = \"P9000\"\nname = \"Copy\"\npage = \"X\"\ntype = \"host\"\nalias = \"account.1.sip.server.1.address\"\n",
        )]);
        assert_eq!(shown.len(), 1, "{shown:#?}");
        assert!(shown[0].contains(
            "warning: alias \"account.1.sip.server.1.address\" is used by both P47 and P9000"
        ));
        assert!(shown[0].starts_with("catalog/alias.toml"), "{}", shown[0]);
        assert_eq!(
            catalog
                .get_by_alias("account.1.sip.server.1.address")
                .map(|e| e.p),
            Some(p("P47"))
        );
    }

    #[test]
    fn builtin_files_may_not_share_a_p_value() {
        let mut entries = BTreeMap::new();
        let mut diagnostics = Vec::new();
        let text = "[[param]]\np = \"P47\"\nname = \"A\"\npage = \"B\"\nsection = \"C\"\ntype = \"host\"\ndescription = \"D.\"\n";
        parse_file(
            text,
            Path::new("one.toml"),
            Mode::Builtin,
            &mut entries,
            &mut diagnostics,
        );
        parse_file(
            text,
            Path::new("two.toml"),
            Mode::Builtin,
            &mut entries,
            &mut diagnostics,
        );
        let shown: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(shown.len(), 1, "{shown:#?}");
        assert!(
            shown[0].starts_with("two.toml:1: error: P47 is already defined"),
            "{}",
            shown[0]
        );
    }

    #[test]
    fn builtin_files_need_every_descriptive_field() {
        let mut entries = BTreeMap::new();
        let mut diagnostics = Vec::new();
        let text = "[[param]]\np = \"P47\"\nname = \"A\"\npage = \"B\"\ntype = \"host\"\ndescription = \"D.\"\n";
        parse_file(
            text,
            Path::new("one.toml"),
            Mode::Builtin,
            &mut entries,
            &mut diagnostics,
        );
        assert_eq!(diagnostics.len(), 1);
        assert!(
            diagnostics[0].message.contains("`section` is missing"),
            "{}",
            diagnostics[0]
        );
        assert_eq!(diagnostics[0].field.as_deref(), Some("P47"));
    }
}
