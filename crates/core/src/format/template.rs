//! SKELETON — the formats helper replaces this file. Signatures are the agreed interface.
//! Grandstream's template text: `Pnnn = value` lines with `#` comment lines.

use crate::{Diagnostic, PName};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateEntry {
    pub name: PName,
    pub value: String,
    /// The `#` comment lines directly above the entry, without the `#`, joined by '\n'.
    pub comment: Option<String>,
    /// 1-based line number.
    pub line: usize,
}

pub fn parse(_text: &str) -> (Vec<TemplateEntry>, Vec<Diagnostic>) {
    (Vec::new(), Vec::new())
}

pub fn write<'a>(_params: impl IntoIterator<Item = (PName, &'a str)>) -> String {
    String::new()
}
