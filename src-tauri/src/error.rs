//! The one error shape the UI receives: a stable `kind`, a human `message` that says what to
//! do next, and the core's diagnostics when the problem is in technician input.

use provdesk_core::Diagnostic;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    /// `invalid`, `not-found`, `io`, `settings`, `inventory`, `diagnostics`, `internal`.
    pub kind: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "invalid",
            message: message.into(),
            diagnostics: Vec::new(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "not-found",
            message: message.into(),
            diagnostics: Vec::new(),
        }
    }

    /// Technician input with problems: every diagnostic travels to the UI.
    pub fn diagnostics(message: impl Into<String>, diagnostics: Vec<Diagnostic>) -> ApiError {
        ApiError {
            kind: "diagnostics",
            message: message.into(),
            diagnostics,
        }
    }

    pub fn io(path: &std::path::Path, error: std::io::Error) -> ApiError {
        ApiError {
            kind: "io",
            message: format!(
                "{}: {error}; check that the desk folder exists and is writable",
                path.display()
            ),
            diagnostics: Vec::new(),
        }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "internal",
            message: message.into(),
            diagnostics: Vec::new(),
        }
    }
}

impl From<provdesk_core::Error> for ApiError {
    fn from(error: provdesk_core::Error) -> ApiError {
        use provdesk_core::Error;
        let kind = match &error {
            Error::Io { .. } => "io",
            Error::Settings { .. } => "settings",
            Error::Inventory(_) => "inventory",
            Error::Diagnostics(_) => "diagnostics",
            Error::Mac(_) | Error::PName(_) | Error::Invalid(_) => "invalid",
            Error::Crypt(_) | Error::Binary(_) | Error::Xml(_) => "format",
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
        ApiError {
            kind,
            message,
            diagnostics,
        }
    }
}

impl From<provdesk_core::inventory::InventoryError> for ApiError {
    fn from(error: provdesk_core::inventory::InventoryError) -> ApiError {
        provdesk_core::Error::from(error).into()
    }
}

impl From<provdesk_core::mac::MacError> for ApiError {
    fn from(error: provdesk_core::mac::MacError) -> ApiError {
        ApiError::invalid(error.to_string())
    }
}

impl From<provdesk_core::pvalue::PNameError> for ApiError {
    fn from(error: provdesk_core::pvalue::PNameError) -> ApiError {
        ApiError::invalid(error.to_string())
    }
}
