//! The one error shape the UI receives is the desk service's: a stable `kind`, a human
//! `message` that says what to do next, and the core's diagnostics when the problem is in
//! technician input.

pub use provdesk_desk::{DeskError as ApiError, DeskResult as ApiResult};
