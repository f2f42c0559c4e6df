//! Editing one profile file in place with `toml_edit`, so a technician's comments, order and
//! spacing survive a save from the app: naming rules for profile files, reading `extends` and
//! the `[params]` entries as written, and rewriting one entry.
//!
//! Invariant: this module only rewrites the text of `[params]` entries; what the values mean
//! (layering, substitution) is [`super::ProfileSet`]'s business and what they may be is the
//! catalogue's.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use toml_edit::{DocumentMut, Item, Table, Value};

use super::GLOBAL;
use crate::catalog::{Entry, ParamType};
use crate::desk::{MODELS_DIR, PROFILES_DIR};
use crate::{Error, PName, Result};

/// Which layer a profile file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "lowercase")]
pub enum ProfileKind {
    Global,
    Profile,
    Model,
}

/// A profile as the UI and the CLI name it: `global`, `office`, or `models/gxp2170`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRef {
    pub name: String,
    pub kind: ProfileKind,
    /// The file relative to the desk, `profiles/office.toml`.
    pub file: PathBuf,
}

impl ProfileRef {
    /// Checks a name and maps it to its file. Names are plain words, so no name can reach a
    /// file outside `profiles/`.
    pub fn parse(name: &str) -> Result<ProfileRef> {
        let (kind, stem) = match name.strip_prefix("models/") {
            Some(model) => (ProfileKind::Model, model),
            None if name == GLOBAL => (ProfileKind::Global, name),
            None => (ProfileKind::Profile, name),
        };
        let valid = !stem.is_empty()
            && !stem.starts_with(['.', '-'])
            && stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(Error::Invalid(format!(
                "{name:?} is not a profile name: use letters, digits, '-' and '_' (e.g. office)"
            )));
        }
        let (dir, stem) = match kind {
            ProfileKind::Model => (MODELS_DIR, stem.to_ascii_lowercase()),
            _ => (PROFILES_DIR, stem.to_string()),
        };
        Ok(ProfileRef {
            name: match kind {
                ProfileKind::Model => format!("models/{stem}"),
                _ => stem.clone(),
            },
            kind,
            file: PathBuf::from(dir).join(format!("{stem}.toml")),
        })
    }

    /// The model of a model file.
    pub fn model(&self) -> Option<&str> {
        match self.kind {
            ProfileKind::Model => self.name.strip_prefix("models/"),
            _ => None,
        }
    }

    /// The text of a new, empty file of this kind: a named profile extends `parent` (or
    /// `global`); the global and model files extend nothing.
    pub fn new_file_text(&self, parent: Option<&str>) -> String {
        match self.kind {
            ProfileKind::Profile => {
                let parent = parent.map(str::trim).filter(|p| !p.is_empty());
                format!(
                    "extends = {}\n\n[params]\n",
                    Value::from(parent.unwrap_or(GLOBAL))
                )
            }
            _ => "[params]\n".to_string(),
        }
    }
}

/// Every profile file of the desk, `global` first, then the named profiles, then the model
/// files, each group sorted. `global` is listed even before its file exists.
pub fn list(desk_root: &Path) -> Vec<ProfileRef> {
    let mut names = vec![GLOBAL.to_string()];
    names.extend(
        toml_stems(&desk_root.join(PROFILES_DIR))
            .into_iter()
            .filter(|s| s != GLOBAL),
    );
    names.extend(
        toml_stems(&desk_root.join(MODELS_DIR))
            .into_iter()
            .map(|m| format!("models/{m}")),
    );
    names
        .iter()
        .filter_map(|name| ProfileRef::parse(name).ok())
        .collect()
}

/// `*.toml` stems directly in `dir`, sorted, skipping editors' backup and lock files (the same
/// rule as [`super::ProfileSet::load`]).
fn toml_stems(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut stems: Vec<String> = entries
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_string))
        .filter(|s| !s.starts_with(['.', '#']))
        .collect();
    stems.sort();
    stems
}

/// A short hash of a file's text. The editor keeps the revision it loaded and compares it with
/// the file's current one, to notice edits made outside the app.
pub fn revision(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

/// Parses a profile for editing; a syntax error says where to fix it.
pub fn parse(text: &str) -> Result<DocumentMut> {
    text.parse::<DocumentMut>().map_err(|e| {
        Error::Invalid(format!(
            "the file is not valid TOML ({}); fix it in the raw view",
            e.message().trim()
        ))
    })
}

/// `extends = "…"` of a profile, if it names one.
pub fn extends(doc: &DocumentMut) -> Option<String> {
    doc.get("extends")
        .and_then(Item::as_str)
        .map(str::to_string)
}

/// The `[params]` entries as written: P-value and the value's text (`1`, `true` → `1`), the
/// same reading as the profile loader's. Keys that are not P-values are left out (the loader
/// reports them).
pub fn own_values(doc: &DocumentMut) -> Vec<(PName, String)> {
    let Some(params) = doc.get("params").and_then(Item::as_table_like) else {
        return Vec::new();
    };
    params
        .iter()
        .filter_map(|(key, item)| {
            let name: PName = key.parse().ok()?;
            Some((name, value_text(item.as_value()?)))
        })
        .collect()
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.value().clone(),
        Value::Integer(n) => n.value().to_string(),
        Value::Boolean(b) => if *b.value() { "1" } else { "0" }.to_string(),
        Value::Float(f) => f.value().to_string(),
        other => other.to_string().trim().to_string(),
    }
}

/// How a new value is written: as a bare number or as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    Number,
    Text,
}

impl Spelling {
    /// Numbers for the catalogue's on/off and numeric fields, and for choices that are all
    /// numbers (`P122 = 1`); strings otherwise, the way the sample desk writes them.
    pub fn for_entry(entry: Option<&Entry>) -> Spelling {
        match entry.map(|e| &e.kind) {
            Some(ParamType::Bool | ParamType::Integer { .. }) => Spelling::Number,
            Some(ParamType::Choice(choices))
                if choices.iter().all(|c| c.value.parse::<i64>().is_ok()) =>
            {
                Spelling::Number
            }
            _ => Spelling::Text,
        }
    }
}

/// One change to a `[params]` entry.
#[derive(Debug, Clone, Copy)]
pub struct Edit<'a> {
    pub name: PName,
    /// The new value, or `None` to remove the entry so the inherited value applies.
    pub value: Option<&'a str>,
    /// How a new entry is spelled; an existing entry keeps its own spelling.
    pub spelling: Spelling,
    /// The trailing comment of a new entry (the catalogue's label).
    pub label: Option<&'a str>,
}

/// Applies `edit` to `[params]`, keeping the entry's comment, place and spelling.
pub fn set_value(doc: &mut DocumentMut, edit: Edit<'_>) {
    if doc.get("params").and_then(Item::as_table_like).is_none() {
        if edit.value.is_none() {
            return;
        }
        doc.insert("params", Item::Table(Table::new()));
    }
    let Some(params) = doc.get_mut("params").and_then(Item::as_table_like_mut) else {
        return;
    };
    let existing: Option<String> = params
        .iter()
        .map(|(key, _)| key.to_string())
        .find(|key| key.parse::<PName>().ok() == Some(edit.name));
    let Some(value) = edit.value else {
        if let Some(key) = existing {
            params.remove(&key);
        }
        return;
    };
    match existing.and_then(|key| params.get_mut(&key)) {
        Some(item) => {
            let (spelling, decor) = match item.as_value() {
                Some(old @ (Value::Integer(_) | Value::Boolean(_) | Value::Float(_))) => {
                    (Spelling::Number, old.decor().clone())
                }
                Some(old) => (Spelling::Text, old.decor().clone()),
                None => (Spelling::Text, Default::default()),
            };
            let mut new = spelled(value, spelling);
            *new.decor_mut() = decor;
            *item = Item::Value(new);
        }
        None => {
            let mut new = spelled(value, edit.spelling);
            new.decor_mut().set_prefix(" ");
            if let Some(label) = edit.label {
                new.decor_mut().set_suffix(format!("  # {label}"));
            }
            params.insert(&edit.name.to_string(), Item::Value(new));
        }
    }
}

fn spelled(value: &str, spelling: Spelling) -> Value {
    if spelling == Spelling::Number
        && let Ok(n) = value.trim().parse::<i64>()
    {
        return Value::from(n);
    }
    Value::from(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn p(text: &str) -> PName {
        text.parse().unwrap()
    }

    fn check(before: &str, name: &str, value: Option<&str>, after: &str) {
        let mut doc = parse(before).unwrap();
        set_value(
            &mut doc,
            Edit {
                name: p(name),
                value,
                spelling: Spelling::Text,
                label: Some("Label"),
            },
        );
        assert_eq!(doc.to_string(), after);
    }

    #[test]
    fn changing_a_value_keeps_its_comment_and_spelling() {
        check(
            "# top\n[params]\nP47 = \"a\"   # SIP server\nP122 = 1 # clock\n",
            "P47",
            Some("pbx.example.org"),
            "# top\n[params]\nP47 = \"pbx.example.org\"   # SIP server\nP122 = 1 # clock\n",
        );
        check(
            "[params]\nP122 = 1 # clock\n",
            "P122",
            Some("0"),
            "[params]\nP122 = 0 # clock\n",
        );
    }

    #[test]
    fn new_values_get_a_label_and_removed_ones_go() {
        check(
            "extends = \"global\"\n\n[params]\nP47 = \"a\"\n",
            "P30",
            Some("ntp"),
            "extends = \"global\"\n\n[params]\nP47 = \"a\"\nP30 = \"ntp\"  # Label\n",
        );
        check(
            "[params]\nP47 = \"a\"\nP30 = \"b\"\n",
            "P47",
            None,
            "[params]\nP30 = \"b\"\n",
        );
        check(
            "extends = \"global\"\n",
            "P30",
            Some("x"),
            "extends = \"global\"\n\n[params]\nP30 = \"x\"  # Label\n",
        );
        check(
            "extends = \"global\"\n",
            "P30",
            None,
            "extends = \"global\"\n",
        );
    }

    #[test]
    fn numbers_are_spelled_as_numbers_only_when_they_are_numbers() {
        let mut doc = parse("[params]\n").unwrap();
        for (name, value) in [("P122", "1"), ("P3", "x")] {
            set_value(
                &mut doc,
                Edit {
                    name: p(name),
                    value: Some(value),
                    spelling: Spelling::Number,
                    label: None,
                },
            );
        }
        assert_eq!(doc.to_string(), "[params]\nP122 = 1\nP3 = \"x\"\n");
        let catalog = Catalog::builtin();
        for number in ["P271", "P122"] {
            assert_eq!(
                Spelling::for_entry(catalog.get(p(number))),
                Spelling::Number,
                "{number}"
            );
        }
        assert_eq!(Spelling::for_entry(catalog.get(p("P47"))), Spelling::Text);
        assert_eq!(Spelling::for_entry(None), Spelling::Text);
    }

    #[test]
    fn reads_extends_and_values_as_text() {
        let doc = parse("extends = \"office\"\n[params]\nP1 = 2\nP2 = true\np3 = \"x\"\nbad = 1\n")
            .unwrap();
        assert_eq!(extends(&doc).as_deref(), Some("office"));
        assert_eq!(
            own_values(&doc),
            vec![(p("P1"), "2".into()), (p("P2"), "1".into())]
        );
        assert!(
            parse("[params\n")
                .unwrap_err()
                .to_string()
                .contains("raw view")
        );
    }

    #[test]
    fn profile_names_map_to_files_and_refuse_paths() {
        let r = ProfileRef::parse("models/GXP2170").unwrap();
        assert_eq!(r.file, PathBuf::from("profiles/models/gxp2170.toml"));
        assert_eq!(r.model(), Some("gxp2170"));
        assert_eq!(r.name, "models/gxp2170");
        assert_eq!(
            ProfileRef::parse("global").unwrap().kind,
            ProfileKind::Global
        );
        assert_eq!(
            ProfileRef::parse("office").unwrap().file,
            PathBuf::from("profiles/office.toml")
        );
        for bad in ["../x", "a/b", "", ".hidden", "models/../x", "models/", "-x"] {
            assert!(ProfileRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn new_files_extend_their_parent() {
        let office = ProfileRef::parse("sales").unwrap();
        assert_eq!(
            office.new_file_text(Some("office")),
            "extends = \"office\"\n\n[params]\n"
        );
        assert_eq!(
            office.new_file_text(Some("  ")),
            "extends = \"global\"\n\n[params]\n"
        );
        let model = ProfileRef::parse("models/gxp2135").unwrap();
        assert_eq!(model.new_file_text(Some("office")), "[params]\n");
        // What a new file says is what the loader reads back.
        let text = office.new_file_text(Some("office"));
        assert_eq!(extends(&parse(&text).unwrap()).as_deref(), Some("office"));
    }

    #[test]
    fn lists_global_profiles_then_models() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("profiles/models")).unwrap();
        for file in [
            "profiles/office.toml",
            "profiles/global.toml",
            "profiles/a-b.toml",
            "profiles/.office.toml.swp",
            "profiles/notes.txt",
            "profiles/models/gxp2170.toml",
        ] {
            fs::write(root.join(file), "").unwrap();
        }
        let names: Vec<String> = list(root).into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["global", "a-b", "office", "models/gxp2170"]);
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(list(empty.path()).len(), 1, "global is always listed");
    }

    #[test]
    fn revisions_follow_the_text() {
        assert_eq!(revision("a"), revision("a"));
        assert_ne!(revision("a"), revision("a "));
        assert_eq!(revision("").len(), 16);
    }
}
