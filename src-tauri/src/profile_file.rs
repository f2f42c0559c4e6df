//! Editing one profile file in place with `toml_edit`, so the technician's comments, order
//! and spacing survive a save from the app.
//!
//! Invariant: this module only rewrites the text of `[params]` entries and reads `extends`;
//! what the values mean (layering, validation) stays in provdesk-core.

use std::path::PathBuf;

use provdesk_core::PName;
use provdesk_core::desk::{MODELS_DIR, PROFILES_DIR};
use provdesk_core::profile::GLOBAL;
use toml_edit::{DocumentMut, Item, Table, Value};

use crate::error::{ApiError, ApiResult};

/// Which layer a profile file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileKind {
    Global,
    Profile,
    Model,
}

/// A profile as the UI names it: `global`, `office`, or `models/gxp2170`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRef {
    pub name: String,
    pub kind: ProfileKind,
    /// The file relative to the desk, `profiles/office.toml`.
    pub file: PathBuf,
}

impl ProfileRef {
    pub fn parse(name: &str) -> ApiResult<ProfileRef> {
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
            return Err(ApiError::invalid(format!(
                "{name:?} is not a profile name: use letters, digits, '-' and '_' (e.g. office)"
            )));
        }
        let dir = match kind {
            ProfileKind::Model => MODELS_DIR,
            _ => PROFILES_DIR,
        };
        let stem = if kind == ProfileKind::Model {
            stem.to_ascii_lowercase()
        } else {
            stem.to_string()
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
}

pub fn parse(text: &str) -> ApiResult<DocumentMut> {
    text.parse::<DocumentMut>().map_err(|e| {
        ApiError::invalid(format!(
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

/// The `[params]` entries as written: P-value and the value's text (`1`, `true` → `1`).
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

/// How a new value is written: as a bare number when the old one was a number (or, for a new
/// key, when the catalogue says the field is numeric), as a string otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    Number,
    Text,
}

/// Sets (or with `None` removes) `name` in `[params]`, keeping the entry's comment and place.
/// `label` becomes the trailing comment of a new entry.
pub fn set_value(
    doc: &mut DocumentMut,
    name: PName,
    value: Option<&str>,
    new_spelling: Spelling,
    label: Option<&str>,
) {
    if doc.get("params").and_then(Item::as_table_like).is_none() {
        if value.is_none() {
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
        .find(|key| key.parse::<PName>().ok() == Some(name));
    let Some(value) = value else {
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
            let mut new = spelled(value, new_spelling);
            new.decor_mut().set_prefix(" ");
            if let Some(label) = label {
                new.decor_mut().set_suffix(format!("  # {label}"));
            }
            params.insert(&name.to_string(), Item::Value(new));
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

    fn p(text: &str) -> PName {
        text.parse().unwrap()
    }

    fn check(before: &str, name: &str, value: Option<&str>, after: &str) {
        let mut doc = parse(before).unwrap();
        set_value(&mut doc, p(name), value, Spelling::Text, Some("Label"));
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
    }

    #[test]
    fn profile_names_map_to_files_and_refuse_paths() {
        let r = ProfileRef::parse("models/GXP2170").unwrap();
        assert_eq!(r.file, PathBuf::from("profiles/models/gxp2170.toml"));
        assert_eq!(r.model(), Some("gxp2170"));
        assert_eq!(
            ProfileRef::parse("global").unwrap().kind,
            ProfileKind::Global
        );
        assert_eq!(
            ProfileRef::parse("office").unwrap().file,
            PathBuf::from("profiles/office.toml")
        );
        for bad in ["../x", "a/b", "", ".hidden", "models/../x"] {
            assert!(ProfileRef::parse(bad).is_err(), "{bad}");
        }
    }
}
