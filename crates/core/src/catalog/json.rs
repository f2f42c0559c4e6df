//! The JSON shape of a catalogue entry, as `provdesk catalog search --json` prints it and the
//! app receives it: `p` as `"P47"`, `type` as a word, and the type's details (`min`, `max`,
//! `max_len`, `choices`) only where they apply.
//!
//! Invariant: the domain types stay plain; this module is the one place that decides the
//! field names, so the CLI and the app cannot drift apart.

use serde::Serialize;
use serde::ser::Serializer;

use super::{Choice, Entry, EntrySource, ParamType};
use crate::PName;

#[derive(Serialize)]
struct EntryJson<'a> {
    p: PName,
    name: &'a str,
    page: &'a str,
    section: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    min: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_len: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    choices: Option<Vec<ChoiceJson<'a>>>,
    default: Option<&'a str>,
    /// Empty means every family, as in the catalogue files.
    families: &'a [String],
    alias: Option<&'a str>,
    description: &'a str,
    /// `builtin`, or the overlay file (relative to the desk) that last changed the entry.
    source: String,
}

#[derive(Serialize)]
struct ChoiceJson<'a> {
    value: &'a str,
    label: &'a str,
}

impl Serialize for Entry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (min, max) = match self.kind {
            ParamType::Integer { min, max } => (min, max),
            _ => (None, None),
        };
        let choices = match &self.kind {
            ParamType::Choice(choices) => Some(choices.iter().map(choice_json).collect()),
            _ => None,
        };
        EntryJson {
            p: self.p,
            name: &self.name,
            page: &self.page,
            section: &self.section,
            kind: self.kind.name(),
            min,
            max,
            max_len: self.kind.max_len(),
            choices,
            default: self.default.as_deref(),
            families: &self.families,
            alias: self.alias.as_deref(),
            description: &self.description,
            source: match &self.source {
                EntrySource::Builtin => "builtin".to_string(),
                EntrySource::Overlay { file } => file.to_string_lossy().replace('\\', "/"),
            },
        }
        .serialize(serializer)
    }
}

fn choice_json(choice: &Choice) -> ChoiceJson<'_> {
    ChoiceJson {
        value: &choice.value,
        label: &choice.label,
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
