//! The parameter catalogue: what each Grandstream P-value means, which values it accepts and
//! which model families use it, for validation, search and the UI's field help.
//!
//! Invariants: the built-in data is `assets/catalog/*.toml`, embedded at compile time and
//! parsed once; a unit test keeps it free of diagnostics. A desk may add or override entries
//! with `DESK/catalog/*.toml` in the same format; loading that overlay never fails, every bad
//! entry becomes a diagnostic with file and line. Entries are kept sorted by P number, one per
//! number.

mod check;
pub mod import;
mod json;
mod load;
mod search;
mod validate;

pub use json::{ChoiceView, EntryView};
pub use validate::{Rule, Violation};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::{Diagnostic, PName};

/// Folder inside a desk that holds catalogue overlay files (`DESK/catalog/*.toml`).
pub const OVERLAY_DIR: &str = "catalog";

/// Model families the built-in data names. Overlays may name others (with a warning), so a
/// new product line can be described before ProvDesk knows it.
pub const KNOWN_FAMILIES: &[&str] = &["gxp", "grp", "gxv", "ht", "wp", "dp", "gac"];

/// The built-in files, split by web UI page so a pull request touches one reviewable file.
const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "account1.toml",
        include_str!("../../../../assets/catalog/account1.toml"),
    ),
    (
        "accounts2to6.toml",
        include_str!("../../../../assets/catalog/accounts2to6.toml"),
    ),
    (
        "network.toml",
        include_str!("../../../../assets/catalog/network.toml"),
    ),
    (
        "maintenance.toml",
        include_str!("../../../../assets/catalog/maintenance.toml"),
    ),
    (
        "syslog.toml",
        include_str!("../../../../assets/catalog/syslog.toml"),
    ),
    (
        "datetime.toml",
        include_str!("../../../../assets/catalog/datetime.toml"),
    ),
    (
        "phonebook.toml",
        include_str!("../../../../assets/catalog/phonebook.toml"),
    ),
    (
        "settings.toml",
        include_str!("../../../../assets/catalog/settings.toml"),
    ),
    (
        "display.toml",
        include_str!("../../../../assets/catalog/display.toml"),
    ),
    (
        "keys.toml",
        include_str!("../../../../assets/catalog/keys.toml"),
    ),
];

/// One P-value as the catalogue describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub p: PName,
    /// Short name as the phone's web UI labels the field, e.g. `SIP Server`.
    pub name: String,
    /// Web UI page, e.g. `Account 1`, `Network`, `Maintenance`.
    pub page: String,
    /// Section on that page, e.g. `General Settings`.
    pub section: String,
    pub kind: ParamType,
    /// Factory default where a public template states it.
    pub default: Option<String>,
    /// Model families (`gxp`, `ht`, …) that use this P-value; empty means all of them.
    pub families: Vec<String>,
    /// Item name in the XML version 2 format, e.g. `account.1.sip.server.1.address`.
    pub alias: Option<String>,
    pub description: String,
    pub source: EntrySource,
}

impl Entry {
    /// Whether a model of `family` uses this P-value as far as the catalogue knows.
    pub fn applies_to(&self, family: &str) -> bool {
        self.families.is_empty() || self.families.iter().any(|f| f == family)
    }

    pub fn is_secret(&self) -> bool {
        matches!(self.kind, ParamType::Secret { .. })
    }
}

/// The shape of the values a P-value accepts. All values are strings on the wire; these
/// describe which strings the phone takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamType {
    /// `0` or `1`.
    Bool,
    /// A whole number, inclusive bounds where known.
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    /// One of a fixed list of values, compared as strings.
    Choice(Vec<Choice>),
    Text {
        max_len: Option<usize>,
    },
    /// A password, PIN or private key: never shown in clear, never logged.
    Secret {
        max_len: Option<usize>,
    },
    /// A host name or IPv4/IPv6 address, optionally with `:port`.
    Host {
        max_len: Option<usize>,
    },
    /// `host[:port]/path`, with or without a scheme (see [`validate`](Catalog::validate)).
    Url {
        max_len: Option<usize>,
    },
    /// `auto`, `customize`, a POSIX TZ string or an old-firmware minute offset.
    TimeZone,
}

impl ParamType {
    /// The `type` word used in the catalogue files and the CLI's JSON.
    pub fn name(&self) -> &'static str {
        match self {
            ParamType::Bool => "bool",
            ParamType::Integer { .. } => "integer",
            ParamType::Choice(_) => "choice",
            ParamType::Text { .. } => "text",
            ParamType::Secret { .. } => "secret",
            ParamType::Host { .. } => "host",
            ParamType::Url { .. } => "url",
            ParamType::TimeZone => "timezone",
        }
    }

    /// The length limit of the string-like types, in characters.
    pub fn max_len(&self) -> Option<usize> {
        match self {
            ParamType::Text { max_len }
            | ParamType::Secret { max_len }
            | ParamType::Host { max_len }
            | ParamType::Url { max_len } => *max_len,
            _ => None,
        }
    }
}

/// One allowed value of a choice, with the label the web UI shows for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

/// Where an entry's current fields come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntrySource {
    Builtin,
    /// Added or changed by a desk overlay; `file` is relative to the desk.
    Overlay {
        file: PathBuf,
    },
}

/// Counts for `provdesk catalog stats`. Entries without families count under `all`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub total: usize,
    pub pages: BTreeMap<String, usize>,
    pub families: BTreeMap<String, usize>,
}

/// The catalogue: entries sorted by P number, with the lookups and the search index built
/// once when it is constructed.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<Entry>,
    search: search::Index,
    aliases: HashMap<String, usize>,
}

impl Catalog {
    /// The catalogue compiled into ProvDesk, parsed on first use.
    pub fn builtin() -> &'static Catalog {
        static BUILTIN: OnceLock<Catalog> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            // The test `builtin_loads_cleanly` keeps the diagnostics empty; were a broken
            // entry to slip through anyway, the good ones still serve.
            let (entries, _diagnostics) = load::parse_builtin();
            Catalog::from_entries(entries)
        })
    }

    /// The built-in catalogue merged with the desk's `catalog/*.toml` files (`desk` is the desk
    /// folder). Files apply in name order; an entry for a known P-value replaces only the
    /// fields it names, an entry for a new P-value adds it. A missing folder is no overlay.
    pub fn load_with_overlay(desk: &Path) -> (Catalog, Vec<Diagnostic>) {
        let mut entries: BTreeMap<PName, Entry> = Catalog::builtin()
            .entries
            .iter()
            .map(|e| (e.p, e.clone()))
            .collect();
        let mut diagnostics = load::apply_overlay_dir(desk, &mut entries);
        let catalog = Catalog::from_entries(entries.into_values());
        diagnostics.extend(catalog.alias_conflicts());
        (catalog, diagnostics)
    }

    /// A catalogue of exactly these entries; for two with the same P number the later wins.
    pub fn from_entries(entries: impl IntoIterator<Item = Entry>) -> Catalog {
        let by_p: BTreeMap<PName, Entry> = entries.into_iter().map(|e| (e.p, e)).collect();
        let entries: Vec<Entry> = by_p.into_values().collect();
        let mut aliases = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            if let Some(alias) = &entry.alias {
                // The lower P number keeps an alias that two entries claim; the overlay
                // loader reports the conflict.
                aliases.entry(alias.to_ascii_lowercase()).or_insert(i);
            }
        }
        let search = search::Index::new(&entries);
        Catalog {
            entries,
            search,
            aliases,
        }
    }

    pub fn get(&self, p: PName) -> Option<&Entry> {
        self.entries
            .binary_search_by_key(&p, |e| e.p)
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The entry whose XML v2 alias is `alias` (compared without case).
    pub fn get_by_alias(&self, alias: &str) -> Option<&Entry> {
        self.aliases
            .get(&alias.to_ascii_lowercase())
            .map(|&i| &self.entries[i])
    }

    /// All entries in P-number order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `p` holds a secret, so callers mask it in output and logs. Unknown P-values
    /// are not secrets as far as the catalogue knows.
    pub fn is_secret(&self, p: PName) -> bool {
        self.get(p).is_some_and(Entry::is_secret)
    }

    pub fn stats(&self) -> Stats {
        let mut pages = BTreeMap::new();
        let mut families = BTreeMap::new();
        for entry in &self.entries {
            *pages.entry(entry.page.clone()).or_insert(0) += 1;
            if entry.families.is_empty() {
                *families.entry("all".to_string()).or_insert(0) += 1;
            }
            for family in &entry.families {
                *families.entry(family.clone()).or_insert(0) += 1;
            }
        }
        Stats {
            total: self.entries.len(),
            pages,
            families,
        }
    }

    fn alias_conflicts(&self) -> Vec<Diagnostic> {
        let mut first: HashMap<String, &Entry> = HashMap::new();
        let mut out = Vec::new();
        for entry in &self.entries {
            let Some(alias) = &entry.alias else { continue };
            match first.get(&alias.to_ascii_lowercase()) {
                None => {
                    first.insert(alias.to_ascii_lowercase(), entry);
                }
                Some(kept) => {
                    let mut d = Diagnostic::warning(
                        "catalog-alias",
                        format!(
                            "alias {alias:?} is used by both {} and {}; lookups by alias find {}",
                            kept.p, entry.p, kept.p
                        ),
                    )
                    .field(entry.p.to_string());
                    if let EntrySource::Overlay { file } = &entry.source {
                        d = d.in_file(file);
                    }
                    out.push(d);
                }
            }
        }
        out
    }
}

/// The family a model belongs to: its leading letters in lower case
/// (`GXP2170` → `gxp`, `ht802` → `ht`). Empty when the model starts with no letter.
pub fn family_of_model(model: &str) -> String {
    model
        .trim()
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> PName {
        text.parse().expect("test P-value names are valid")
    }

    fn builtin_entry(text: &str) -> &'static Entry {
        Catalog::builtin()
            .get(p(text))
            .unwrap_or_else(|| panic!("{text} missing from the built-in catalogue"))
    }

    #[test]
    fn builtin_loads_cleanly() {
        let (entries, diagnostics) = load::parse_builtin();
        let shown: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
        assert!(
            shown.is_empty(),
            "built-in catalogue has problems:\n{}",
            shown.join("\n")
        );
        assert!(entries.len() >= 180, "only {} entries", entries.len());
        assert_eq!(
            Catalog::builtin().len(),
            entries.len(),
            "a P-value appears twice"
        );
    }

    #[test]
    fn every_builtin_entry_is_well_formed() {
        let catalog = Catalog::builtin();
        let mut aliases = HashMap::new();
        for e in catalog.entries() {
            let at = format!("{} ({})", e.p, e.name);
            for (field, text) in [
                ("name", &e.name),
                ("page", &e.page),
                ("section", &e.section),
                ("description", &e.description),
            ] {
                assert!(!text.trim().is_empty(), "{at}: empty {field}");
                assert_eq!(text.trim(), text, "{at}: {field} has stray spaces");
            }
            assert!(
                e.description.ends_with('.'),
                "{at}: description is not a sentence"
            );
            assert_eq!(e.source, EntrySource::Builtin, "{at}");
            for family in &e.families {
                assert!(
                    KNOWN_FAMILIES.contains(&family.as_str()),
                    "{at}: family {family}"
                );
            }
            if let Some(default) = &e.default {
                let errors: Vec<Violation> = validate::check_value(e, default)
                    .into_iter()
                    .filter(|v| v.severity == crate::Severity::Error)
                    .collect();
                assert!(errors.is_empty(), "{at}: default {default:?}: {errors:?}");
            }
            if let ParamType::Choice(choices) = &e.kind {
                assert!(!choices.is_empty(), "{at}: no choices");
                let mut values: Vec<&str> = choices.iter().map(|c| c.value.as_str()).collect();
                values.sort_unstable();
                values.dedup();
                assert_eq!(values.len(), choices.len(), "{at}: repeated choice value");
            }
            if let ParamType::Integer {
                min: Some(min),
                max: Some(max),
            } = e.kind
            {
                assert!(min <= max, "{at}: min {min} > max {max}");
            }
            if let Some(alias) = &e.alias {
                if let Some(other) = aliases.insert(alias.clone(), e.p) {
                    panic!("{at}: alias {alias} also used by {other}");
                }
                assert_eq!(catalog.get_by_alias(alias).map(|x| x.p), Some(e.p), "{at}");
            }
        }
    }

    /// Every P-value listed in the reference facts (§5) is in the catalogue.
    #[test]
    fn covers_the_facts_list() {
        let account1 = "271 270 47 2312 48 35 36 34 3 33 103 2308 2309 2310 52 63 31 81 32 40 130 \
            99 272 2347 2301 2302 2303 79 57 58 59 60 61 62 46 98 2348 183 50 37 29 66 290 191 \
            1347 65 90 298 72 85 104 260 261";
        let network = "8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 92 93 94 95 146 \
            147 148 82 83 1415 38 51 87 1348 1684 7901 7902 7903 1552 1553";
        let maintenance = "212 192 237 232 233 234 235 238 194 193 285 286 145 1411 1414 1359 1360 \
            1361 240 4428 8458 8459 8375 2 196 1650 276 1357 1382 1383 279 280 281 207 208 1387 \
            1362 1409 4503 4504 4505";
        let rest = "30 64 75 102 122 143 144 330 331 332 333 8020 8021 8022 8023 8024 8025 8026 \
            8027 8028 8029 8030 323 301 302 303 1363 1364 1465 1466 2916 2917 2918 6759 934 340 \
            341 1349";
        let catalog = Catalog::builtin();
        let missing: Vec<&str> = [account1, network, maintenance, rest]
            .iter()
            .flat_map(|list| list.split_whitespace())
            .filter(|n| catalog.get(p(&format!("P{n}"))).is_none())
            .collect();
        assert!(missing.is_empty(), "missing: {missing:?}");
    }

    /// Accounts 2 to 6 follow an explicit table of bases, not wazo's `P{line+2}01` rule,
    /// which gives P701 instead of P1701 for account 5.
    #[test]
    fn account_blocks_follow_the_explicit_table() {
        const BASES: [(u32, u32, u32); 5] = [
            (2, 400, 2400),
            (3, 500, 2500),
            (4, 600, 2600),
            (5, 1700, 2700),
            (6, 1800, 2800),
        ];
        // (offset, in the extended block, name, account 1's P-value for the same field)
        const FIELDS: [(u32, bool, &str, u32); 10] = [
            (1, false, "Account Active", 271),
            (2, false, "SIP Server", 47),
            (3, false, "Outbound Proxy", 48),
            (4, false, "SIP User ID", 35),
            (5, false, "Authenticate ID", 36),
            (6, false, "Authenticate Password", 34),
            (7, false, "Name", 3),
            (17, false, "Account Name", 270),
            (48, false, "SIP Transport", 130),
            (12, true, "Secondary SIP Server", 2312),
        ];
        let catalog = Catalog::builtin();
        for (account, base, extended) in BASES {
            for (offset, in_extended, name, account1) in FIELDS {
                let number = if in_extended { extended } else { base } + offset;
                let at = format!("account {account} P{number}");
                let entry = catalog
                    .get(PName::new(number).expect("small number"))
                    .unwrap_or_else(|| panic!("{at} missing"));
                assert_eq!(entry.name, name, "{at}");
                assert_eq!(entry.page, format!("Account {account}"), "{at}");
                let first = catalog
                    .get(PName::new(account1).expect("small number"))
                    .unwrap_or_else(|| panic!("P{account1} missing"));
                assert_eq!(first.name, name, "account 1 P{account1}");
                assert_eq!(first.kind.name(), entry.kind.name(), "{at} type");
                if let Some(alias) = &first.alias {
                    let expected = alias.replacen("account.1.", &format!("account.{account}."), 1);
                    assert_eq!(
                        entry.alias.as_deref(),
                        Some(expected.as_str()),
                        "{at} alias"
                    );
                }
            }
        }
        assert!(
            catalog.get(p("P701")).is_none(),
            "P701 is the wazo rule's mistake"
        );
    }

    #[test]
    fn secrets_are_typed_as_secrets() {
        for secret in [
            "P2", "P196", "P34", "P406", "P1806", "P1359", "P1361", "P83", "P7903", "P8024",
            "P4505",
        ] {
            assert!(Catalog::builtin().is_secret(p(secret)), "{secret}");
        }
        for plain in ["P47", "P35", "P1360", "P99999"] {
            assert!(!Catalog::builtin().is_secret(p(plain)), "{plain}");
        }
    }

    #[test]
    fn looks_up_by_number_and_alias() {
        let sip = builtin_entry("P47");
        assert_eq!(sip.name, "SIP Server");
        assert_eq!(sip.page, "Account 1");
        assert_eq!(sip.kind, ParamType::Host { max_len: None });
        let by_alias = Catalog::builtin().get_by_alias("Account.1.SIP.Server.1.Address");
        assert_eq!(by_alias.map(|e| e.p), Some(p("P47")));
        assert_eq!(
            Catalog::builtin()
                .get_by_alias("account.5.sip.server.1.address")
                .map(|e| e.p),
            Some(p("P1702"))
        );
        assert!(Catalog::builtin().get(p("P99999")).is_none());
    }

    #[test]
    fn family_is_the_leading_letters_in_lower_case() {
        fn check(model: &str, family: &str) {
            assert_eq!(family_of_model(model), family, "{model}");
        }
        check("gxp2170", "gxp");
        check("GXP2170", "gxp");
        check("GRP2612W", "grp");
        check("ht802", "ht");
        check(" WP820 ", "wp");
        check("2170", "");
        check("", "");
    }

    #[test]
    fn applies_to_reads_empty_families_as_all() {
        assert!(builtin_entry("P47").applies_to("ht"));
        assert!(builtin_entry("P402").applies_to("gxp"));
        assert!(!builtin_entry("P402").applies_to("ht"));
    }

    #[test]
    fn stats_count_pages_and_families() {
        let catalog = Catalog::builtin();
        let stats = catalog.stats();
        assert_eq!(stats.total, catalog.len());
        assert_eq!(stats.pages.values().sum::<usize>(), stats.total);
        assert!(stats.pages["Account 1"] >= 50);
        let all = catalog
            .entries()
            .iter()
            .filter(|e| e.families.is_empty())
            .count();
        assert_eq!(stats.families["all"], all);
        assert_eq!(stats.families["gxp"], catalog.len() - all);
        let json = serde_json::to_value(&stats).expect("stats serialize");
        assert_eq!(json["total"], stats.total);
        assert!(json["pages"]["Network"].is_u64());
        assert!(json["families"]["all"].is_u64());
    }

    #[test]
    fn from_entries_sorts_and_keeps_the_later_duplicate() {
        let mut first = builtin_entry("P47").clone();
        let mut second = first.clone();
        second.name = "Replaced".into();
        first.p = p("P9");
        let mut third = builtin_entry("P3").clone();
        third.alias = None;
        let catalog = Catalog::from_entries([builtin_entry("P47").clone(), first, third, second]);
        let numbers: Vec<String> = catalog.entries().iter().map(|e| e.p.to_string()).collect();
        assert_eq!(numbers, ["P3", "P9", "P47"]);
        assert_eq!(
            catalog.get(p("P47")).map(|e| e.name.as_str()),
            Some("Replaced")
        );
    }
}
