//! The Tauri commands. Each one takes the open session, calls the core for one thing and maps
//! the result to a DTO; the CLI's commands in `crates/cli` are the model for each.

pub mod desk;
pub mod devices;
pub mod diagnostics;
pub mod events;
pub mod firmware;
pub mod live;
pub mod profiles;
pub mod report;
pub mod settings;
pub mod timeline;
