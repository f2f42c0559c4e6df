//! The one error of the desk service: a stable [`ErrorKind`] the front ends branch on, a
//! message that says what to do next, and every diagnostic when the problem is in technician
//! input. The app sends it as is; the CLI prints the message and the diagnostics.

use provdesk_core::Diagnostic;
use serde::Serialize;
use ts_rs::TS;

/// What went wrong, for a front end to decide how to show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(export)]
pub enum ErrorKind {
    /// Input that breaks a rule (a MAC, a model, a missing variable); the message names it.
    Invalid,
    /// The thing asked for is not there (a device removed meanwhile, a profile file).
    NotFound,
    /// The desk's files could not be read or written.
    Io,
    /// `provdesk.toml` is broken.
    Settings,
    /// The SQLite inventory failed.
    Inventory,
    /// Technician input with problems: see `diagnostics`.
    Diagnostics,
    /// A Grandstream file could not be encoded or decoded.
    Format,
    /// A profile changed on disk since the editor read it.
    Conflict,
    /// The servers could not start or stop (a port in use, permission denied).
    Serve,
    /// A bug: the message is all there is.
    Internal,
}

#[derive(Debug, Clone, Serialize, TS, thiserror::Error)]
#[error("{message}")]
#[ts(export)]
pub struct DeskError {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[ts(optional, as = "Option<Vec<Diagnostic>>")]
    pub diagnostics: Vec<Diagnostic>,
}

pub type DeskResult<T> = Result<T, DeskError>;

impl DeskError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> DeskError {
        DeskError {
            kind,
            message: message.into(),
            diagnostics: Vec::new(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> DeskError {
        DeskError::new(ErrorKind::Invalid, message)
    }

    pub fn not_found(message: impl Into<String>) -> DeskError {
        DeskError::new(ErrorKind::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> DeskError {
        DeskError::new(ErrorKind::Internal, message)
    }

    pub fn conflict(message: impl Into<String>) -> DeskError {
        DeskError::new(ErrorKind::Conflict, message)
    }

    /// Technician input with problems: every diagnostic travels with the error.
    pub fn diagnostics(message: impl Into<String>, diagnostics: Vec<Diagnostic>) -> DeskError {
        DeskError {
            kind: ErrorKind::Diagnostics,
            message: message.into(),
            diagnostics,
        }
    }

    pub fn io(path: &std::path::Path, error: std::io::Error) -> DeskError {
        DeskError::new(
            ErrorKind::Io,
            format!(
                "{}: {error}; check that the desk folder exists and is writable",
                path.display()
            ),
        )
    }
}

impl From<provdesk_core::Error> for DeskError {
    fn from(error: provdesk_core::Error) -> DeskError {
        use provdesk_core::Error;
        let kind = match &error {
            Error::Io { .. } => ErrorKind::Io,
            Error::Settings { .. } => ErrorKind::Settings,
            Error::Inventory(_) => ErrorKind::Inventory,
            Error::Diagnostics(_) => ErrorKind::Diagnostics,
            Error::Mac(_) | Error::PName(_) | Error::Invalid(_) => ErrorKind::Invalid,
            Error::Crypt(_) | Error::Binary(_) | Error::Xml(_) => ErrorKind::Format,
        };
        let diagnostics = match &error {
            Error::Diagnostics(list) => list.clone(),
            _ => Vec::new(),
        };
        let message = match &error {
            Error::Settings { .. } => {
                format!("{error}; fix the line in provdesk.toml and reopen the desk")
            }
            _ => error.to_string(),
        };
        DeskError {
            kind,
            message,
            diagnostics,
        }
    }
}

impl From<provdesk_core::inventory::InventoryError> for DeskError {
    fn from(error: provdesk_core::inventory::InventoryError) -> DeskError {
        provdesk_core::Error::from(error).into()
    }
}

impl From<provdesk_core::mac::MacError> for DeskError {
    fn from(error: provdesk_core::mac::MacError) -> DeskError {
        DeskError::invalid(error.to_string())
    }
}

impl From<provdesk_core::pvalue::PNameError> for DeskError {
    fn from(error: provdesk_core::pvalue::PNameError) -> DeskError {
        DeskError::invalid(error.to_string())
    }
}

impl From<provdesk_serve::service::ServeError> for DeskError {
    fn from(error: provdesk_serve::service::ServeError) -> DeskError {
        DeskError::new(ErrorKind::Serve, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialize_in_kebab_case_and_empty_diagnostics_are_left_out() {
        let error = DeskError::new(ErrorKind::NotFound, "gone");
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "not-found", "message": "gone"})
        );
    }

    #[test]
    fn a_settings_error_says_where_to_fix_it() {
        let error: DeskError = provdesk_core::Error::Settings {
            path: "provdesk.toml".into(),
            message: "line 3: bad".into(),
        }
        .into();
        assert_eq!(error.kind, ErrorKind::Settings);
        assert!(
            error.message.contains("fix the line in provdesk.toml"),
            "{}",
            error.message
        );
    }
}
