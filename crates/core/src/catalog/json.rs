//! The JSON shape of a catalogue entry, as `provdesk catalog search --json` prints it and the
//! app receives it: `p` as `"P47"`, `type` as a word, and the type's details (`min`, `max`,
//! `max_len`, `choices`) only where they apply.
//!
//! Invariant: the domain types stay plain; this module is the one place that decides the
//! field names ([`EntryView`]), so the CLI and the app cannot drift apart.

use serde::Serialize;
use serde::ser::Serializer;

use super::{Choice, Entry, EntrySource, ParamType};
use crate::PName;

/// One catalogue entry as it is sent: what the CLI prints with `--json` and what the app's
/// field editor receives (TypeScript `CatalogEntry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export, rename = "CatalogEntry"))]
pub struct EntryView {
    #[cfg_attr(feature = "ts", ts(as = "String"))]
    pub p: PName,
    pub name: String,
    pub page: String,
    pub section: String,
    /// The type word of [`ParamType::name`]: `host`, `choice`, …
    #[serde(rename = "type")]
    #[cfg_attr(
        feature = "ts",
        ts(
            type = "\"bool\" | \"integer\" | \"choice\" | \"text\" | \"secret\" | \"host\" | \"url\" | \"timezone\""
        )
    )]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional, type = "number"))]
    pub min: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional, type = "number"))]
    pub max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub max_len: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub choices: Option<Vec<ChoiceView>>,
    pub default: Option<String>,
    /// Empty means every family, as in the catalogue files.
    pub families: Vec<String>,
    pub alias: Option<String>,
    pub description: String,
    /// `builtin`, or the overlay file (relative to the desk) that last changed the entry.
    pub source: String,
}

/// One allowed value of a choice entry (TypeScript `CatalogChoice`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "ts",
    derive(ts_rs::TS),
    ts(export, rename = "CatalogChoice")
)]
pub struct ChoiceView {
    pub value: String,
    pub label: String,
}

impl From<&Entry> for EntryView {
    fn from(entry: &Entry) -> EntryView {
        let (min, max) = match entry.kind {
            ParamType::Integer { min, max } => (min, max),
            _ => (None, None),
        };
        let choices = match &entry.kind {
            ParamType::Choice(choices) => Some(choices.iter().map(ChoiceView::from).collect()),
            _ => None,
        };
        EntryView {
            p: entry.p,
            name: entry.name.clone(),
            page: entry.page.clone(),
            section: entry.section.clone(),
            kind: entry.kind.name(),
            min,
            max,
            max_len: entry.kind.max_len(),
            choices,
            default: entry.default.clone(),
            families: entry.families.clone(),
            alias: entry.alias.clone(),
            description: entry.description.clone(),
            source: match &entry.source {
                EntrySource::Builtin => "builtin".to_string(),
                EntrySource::Overlay { file } => file.to_string_lossy().replace('\\', "/"),
            },
        }
    }
}

impl From<&Choice> for ChoiceView {
    fn from(choice: &Choice) -> ChoiceView {
        ChoiceView {
            value: choice.value.clone(),
            label: choice.label.clone(),
        }
    }
}

impl Serialize for Entry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EntryView::from(self).serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::catalog::{Catalog, EntrySource};

    fn check(p: &str, expected: Value) {
        let entry = Catalog::builtin()
            .get(p.parse().expect("valid name"))
            .expect("entry exists");
        let got = serde_json::to_value(entry).expect("entries serialize");
        assert_eq!(got, expected, "{p}");
    }

    #[test]
    fn host_entry() {
        let description = &Catalog::builtin()
            .get("P47".parse().expect("valid"))
            .expect("P47")
            .description;
        check(
            "P47",
            json!({
                "p": "P47",
                "name": "SIP Server",
                "page": "Account 1",
                "section": "General Settings",
                "type": "host",
                "default": null,
                "families": [],
                "alias": "account.1.sip.server.1.address",
                "description": description,
                "source": "builtin",
            }),
        );
    }

    #[test]
    fn integer_and_choice_entries_carry_their_details() {
        let expiry = serde_json::to_value(Catalog::builtin().get("P32".parse().expect("valid")))
            .expect("serialize");
        assert_eq!(expiry["type"], "integer");
        assert_eq!(expiry["min"], 1);
        assert_eq!(expiry["max"], 64800);
        assert_eq!(expiry["default"], "60");
        assert!(expiry.get("choices").is_none());
        assert!(expiry.get("max_len").is_none());

        let transport =
            serde_json::to_value(Catalog::builtin().get("P448".parse().expect("valid")))
                .expect("serialize");
        assert_eq!(transport["type"], "choice");
        assert_eq!(
            transport["choices"][0],
            json!({ "value": "0", "label": "UDP" })
        );
        assert_eq!(transport["families"], json!(["gxp", "grp", "gxv"]));
        assert!(transport.get("min").is_none());

        let syslog = serde_json::to_value(Catalog::builtin().get("P207".parse().expect("valid")))
            .expect("serialize");
        assert_eq!(syslog["max_len"], 64);
    }

    #[test]
    fn overlay_entries_name_their_file_and_search_results_serialize_as_an_array() {
        let mut entry = Catalog::builtin()
            .get("P2".parse().expect("valid"))
            .expect("P2")
            .clone();
        entry.source = EntrySource::Overlay {
            file: "catalog/site.toml".into(),
        };
        let value = serde_json::to_value(&entry).expect("serialize");
        assert_eq!(value["source"], "catalog/site.toml");
        assert_eq!(value["type"], "secret");

        let results = Catalog::builtin().search("syslog", 2);
        let array = serde_json::to_value(&results).expect("serialize");
        assert_eq!(array[0]["p"], "P207");
        assert_eq!(array[1]["p"], "P208");
    }
}
