//! ProvDesk's domain core: everything that decides what a Grandstream phone receives.
//!
//! Invariant: this crate does no network I/O and knows nothing of a GUI. It reads and writes
//! the desk folder (profiles, build output) and the SQLite inventory; servers and the app sit
//! on top of it.

pub mod build;
pub mod build_events;
pub mod build_inputs;
pub mod build_record;
pub mod catalog;
pub mod desk;
pub mod diagnosis;
pub mod diagnostic;
pub mod error;
pub mod firmware;
pub mod format;
pub mod fsio;
#[doc(hidden)]
pub mod fuzzing;
pub mod inventory;
pub mod ip_block;
pub mod mac;
pub mod preview;
pub mod profile;
pub mod profile_io;
pub mod pvalue;
pub mod report;
pub mod secrets;
pub mod settings_edit;
pub mod status;
pub mod syslog;
pub mod timeline;
pub mod user_agent;

pub use diagnostic::{Diagnostic, Severity};
pub use error::{Error, Result};
pub use mac::Mac;
pub use pvalue::{PName, Params};
