//! ProvDesk's application layer: an open desk ([`DeskService`]) and every use-case the
//! command line and the desktop app offer, each written once here. The front ends only parse
//! input and render what comes back; validation, masking and every message live here (or in
//! the core below).
//!
//! No Tauri and no terminal code: `provdesk-cli` and `provdesk-app` depend on this crate, not
//! the other way round. The types a front end sees derive `ts_rs::TS`; `cargo test` writes
//! their TypeScript to `ui/src/lib/generated/` (see `scripts/check-generated`).

pub mod address;
pub mod catalog_import;
pub mod certificates;
pub mod devices;
pub mod dhcp;
pub mod diagnostics;
pub mod error;
pub mod events;
pub mod firmware;
pub mod live;
pub mod overview;
pub mod profile_import;
pub mod profiles;
pub mod report;
pub mod resync;
pub mod service;
pub mod settings;
pub mod timeline;

pub use error::{DeskError, DeskResult, ErrorKind};
pub use events::{BuildState, BuildSummary, DeskEvent, DeskEvents};
pub use live::LogRow;
pub use service::DeskService;
