//! The crate's one error type. Module errors stay precise enums; this wraps them with the
//! context (which file, which device) the caller needs to act on them.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Mac(#[from] crate::mac::MacError),
    #[error(transparent)]
    PName(#[from] crate::pvalue::PNameError),
    #[error(transparent)]
    Crypt(#[from] crate::format::crypt::CryptError),
    #[error(transparent)]
    Binary(#[from] crate::format::binary::BinaryError),
    #[error(transparent)]
    Xml(#[from] crate::format::xml::XmlError),
    #[error(transparent)]
    Inventory(#[from] crate::inventory::InventoryError),
    #[error("{path}: {message}")]
    Settings { path: PathBuf, message: String },
    /// Technician input with problems; every one of them is listed.
    #[error("{}", crate::error::summarize(.0))]
    Diagnostics(Vec<crate::Diagnostic>),
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub(crate) fn summarize(diagnostics: &[crate::Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let mut text = format!("{errors} error(s)");
    for d in diagnostics {
        text.push_str("\n  ");
        text.push_str(&d.to_string());
    }
    text
}
