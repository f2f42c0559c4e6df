//! Ranked search over the catalogue, fast enough to run on every keystroke over thousands of
//! entries: each entry's searchable text is split into lower-case words once, when the
//! catalogue is built, so a query only compares prefixes.
//!
//! Ranking, highest first: the exact P number (`P47` or `47`), then P numbers starting with
//! the query, then the name equal to the query, the name starting with it, and word matches
//! weighted by where they hit (name, alias, page, section, description). Every query word
//! must match somewhere. Ties go to the lower P number, so account 1 comes before account 2.

use super::{Catalog, Entry};

/// Whole-query matches.
const EXACT_NUMBER: u32 = 100_000;
const NUMBER_PREFIX: u32 = 50_000;
const NAME_EQUALS: u32 = 1_000;
const ALIAS_EQUALS: u32 = 800;
const NAME_STARTS_WITH: u32 = 300;

/// Per query word: (exact word, word prefix) by field.
const P_WORD: (u32, u32) = (100, 50);
const NAME_WORD: (u32, u32) = (40, 30);
const ALIAS_WORD: (u32, u32) = (25, 20);
const PAGE_WORD: (u32, u32) = (15, 12);
const SECTION_WORD: (u32, u32) = (10, 8);
const DESCRIPTION_WORD: (u32, u32) = (5, 3);

/// Precomputed search keys, one per entry, in the catalogue's (P-number) order.
#[derive(Debug, Clone, Default)]
pub(super) struct Index {
    keys: Vec<Key>,
}

#[derive(Debug, Clone)]
struct Key {
    /// The P number's digits, e.g. `47`.
    number: String,
    /// The name's words joined by single spaces, for whole-query comparison.
    name: String,
    alias: String,
    name_words: Vec<String>,
    alias_words: Vec<String>,
    page_words: Vec<String>,
    section_words: Vec<String>,
    description_words: Vec<String>,
}

/// Lower-case runs of letters and digits; everything else separates words.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl Index {
    pub(super) fn new(entries: &[Entry]) -> Index {
        let keys = entries
            .iter()
            .map(|e| {
                let name_words = words(&e.name);
                Key {
                    number: e.p.number().to_string(),
                    name: name_words.join(" "),
                    alias: e.alias.as_deref().unwrap_or_default().to_lowercase(),
                    name_words,
                    alias_words: words(e.alias.as_deref().unwrap_or_default()),
                    page_words: words(&e.page),
                    section_words: words(&e.section),
                    description_words: words(&e.description),
                }
            })
            .collect();
        Index { keys }
    }
}

/// The digits of a query that is just a P number, with or without the `P`.
fn number_query(query: &str) -> Option<&str> {
    let digits = query.strip_prefix('p').unwrap_or(query);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// Best score of one query word against one list of words, or 0.
fn word_score(word: &str, list: &[String], (exact, prefix): (u32, u32)) -> u32 {
    let mut best = 0;
    for candidate in list {
        if candidate == word {
            return exact;
        }
        if candidate.starts_with(word) {
            best = prefix;
        }
    }
    best
}

impl Key {
    /// `query` is the lower-cased query, `joined` its words joined by single spaces.
    fn score(&self, query: &str, joined: &str, query_words: &[String]) -> Option<u32> {
        let mut score = 0;
        if let Some(digits) = number_query(query) {
            if self.number == digits {
                score += EXACT_NUMBER;
            } else if self.number.starts_with(digits) {
                score += NUMBER_PREFIX;
            }
        }
        if !joined.is_empty() {
            if self.name == joined {
                score += NAME_EQUALS;
            } else if self.name.starts_with(joined) {
                score += NAME_STARTS_WITH;
            }
        }
        if !self.alias.is_empty() && self.alias == query {
            score += ALIAS_EQUALS;
        }
        let mut all_words_match = true;
        for word in query_words {
            let as_number = number_query(word).and_then(|digits| {
                // A lone number such as "2" in "account 2" is a page word, not a P number;
                // only words written with the P take part in number matching.
                word.starts_with('p').then(|| {
                    if self.number == digits {
                        P_WORD.0
                    } else if self.number.starts_with(digits) {
                        P_WORD.1
                    } else {
                        0
                    }
                })
            });
            let best = [
                as_number.unwrap_or(0),
                word_score(word, &self.name_words, NAME_WORD),
                word_score(word, &self.alias_words, ALIAS_WORD),
                word_score(word, &self.page_words, PAGE_WORD),
                word_score(word, &self.section_words, SECTION_WORD),
                word_score(word, &self.description_words, DESCRIPTION_WORD),
            ]
            .into_iter()
            .max()
            .unwrap_or(0);
            if best == 0 {
                all_words_match = false;
                break;
            }
            score += best;
        }
        // A bare number query ("47") is allowed to match by number alone.
        (all_words_match || score >= NUMBER_PREFIX)
            .then_some(score)
            .filter(|s| *s > 0)
    }
}

impl Catalog {
    /// Entries matching every word of `query` (case-insensitive), best first, at most `limit`.
    /// An empty query finds nothing.
    pub fn search(&self, query: &str, limit: usize) -> Vec<&Entry> {
        let query = query.trim().to_lowercase();
        let query_words = words(&query);
        if limit == 0 || (query_words.is_empty() && number_query(&query).is_none()) {
            return Vec::new();
        }
        let joined = query_words.join(" ");
        let mut hits: Vec<(u32, usize)> = self
            .search
            .keys
            .iter()
            .enumerate()
            .filter_map(|(i, key)| key.score(&query, &joined, &query_words).map(|s| (s, i)))
            .collect();
        // Entries are stored in P-number order, so the index breaks ties by number.
        hits.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        hits.truncate(limit);
        hits.into_iter().map(|(_, i)| &self.entries()[i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PName;
    use crate::catalog::{EntrySource, ParamType};

    fn found(catalog: &Catalog, query: &str, limit: usize) -> Vec<String> {
        catalog
            .search(query, limit)
            .iter()
            .map(|e| e.p.to_string())
            .collect()
    }

    fn check(query: &str, expected_start: &[&str]) {
        let got = found(Catalog::builtin(), query, 50);
        assert!(
            got.len() >= expected_start.len() && got[..expected_start.len()] == *expected_start,
            "{query:?} found {got:?}"
        );
    }

    #[test]
    fn exact_number_comes_first() {
        check("P47", &["P47"]);
        check("47", &["P47"]);
        check("p47", &["P47"]);
        // Then numbers that start with the query, lowest first.
        check("P40", &["P40", "P401", "P402", "P403"]);
    }

    #[test]
    fn exact_names_rank_by_number() {
        check(
            "sip server",
            &["P47", "P402", "P502", "P602", "P1702", "P1802"],
        );
        let got = found(Catalog::builtin(), "sip server", 50);
        assert!(
            got.contains(&"P2312".to_string()),
            "secondary servers follow: {got:?}"
        );
        check("SIP SERV", &["P47", "P402"]);
    }

    #[test]
    fn password_finds_secrets() {
        let catalog = Catalog::builtin();
        let results = catalog.search("password", 100);
        assert!(results.len() >= 10, "{}", results.len());
        for entry in &results[..10] {
            assert!(
                entry.is_secret(),
                "{} {} is not a secret",
                entry.p,
                entry.name
            );
        }
        for entry in &results {
            if entry.name.to_lowercase().contains("password") {
                assert!(entry.is_secret(), "{} {}", entry.p, entry.name);
            }
        }
    }

    #[test]
    fn syslog_finds_the_syslog_page() {
        check("syslog", &["P207", "P208", "P1387"]);
        check("sysl", &["P207", "P208"]);
    }

    #[test]
    fn every_word_must_match() {
        check("account 5 sip server", &["P1702"]);
        assert_eq!(
            found(Catalog::builtin(), "sip server zebra", 10),
            Vec::<String>::new()
        );
        assert_eq!(found(Catalog::builtin(), "   ", 10), Vec::<String>::new());
        assert_eq!(found(Catalog::builtin(), "sip", 0), Vec::<String>::new());
    }

    #[test]
    fn aliases_and_pages_are_searched() {
        check("account.3.sip.server.1.address", &["P502"]);
        check("dateTime.timezone", &["P64"]);
        check("vlan", &["P51"]);
        let network = found(Catalog::builtin(), "network", 500);
        assert!(network.contains(&"P8".to_string()), "{network:?}");
    }

    #[test]
    fn limit_caps_the_results() {
        assert_eq!(found(Catalog::builtin(), "account", 5).len(), 5);
    }

    fn synthetic(n: u32, name: &str, page: &str, description: &str) -> crate::catalog::Entry {
        crate::catalog::Entry {
            p: PName::new(n).expect("small number"),
            name: name.into(),
            page: page.into(),
            section: "Section".into(),
            kind: ParamType::Text { max_len: None },
            default: None,
            families: Vec::new(),
            alias: None,
            description: description.into(),
            source: EntrySource::Builtin,
        }
    }

    /// A catalogue of 5,000 entries ranks the way a small one does; the index is what keeps
    /// this fast, and it is the same code either way.
    #[test]
    fn ranks_a_large_catalogue() {
        let mut entries: Vec<_> = (1..=5000)
            .map(|n| {
                synthetic(
                    n,
                    &format!("Setting {n}"),
                    &format!("Page {}", n % 50),
                    "Filler text.",
                )
            })
            .collect();
        entries.push(synthetic(
            4321,
            "Ring Timeout",
            "Account 3",
            "How long it rings.",
        ));
        entries.push(synthetic(
            4999,
            "Ring Timeout Extra",
            "Account 1",
            "Another one.",
        ));
        entries.push(synthetic(
            17,
            "Other",
            "Account 1",
            "Ring timeout of the other thing.",
        ));
        entries.push(synthetic(
            3000,
            "Ring Timeout",
            "Account 2",
            "Same name, higher number.",
        ));
        let catalog = Catalog::from_entries(entries);
        assert_eq!(catalog.len(), 5000);
        assert_eq!(
            found(&catalog, "ring timeout", 10),
            ["P3000", "P4321", "P4999", "P17"]
        );
        assert_eq!(found(&catalog, "P4321", 1), ["P4321"]);
        assert_eq!(found(&catalog, "4999", 3), ["P4999"]);
        assert_eq!(found(&catalog, "setting 12", 3), ["P12", "P120", "P121"]);
    }
}
