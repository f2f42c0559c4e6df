//! One module per subcommand group.

pub mod build;
pub mod catalog;
pub mod device;
pub mod dhcp;
pub mod formats;
pub mod log;
pub mod profile;
pub mod report;
pub mod serve;

use std::path::Path;
use std::process::ExitCode;

use provdesk_core::desk::Desk;
use provdesk_desk::{DeskError, DeskService};

pub fn init(desk_path: &Path) -> anyhow::Result<ExitCode> {
    let desk = Desk::init(desk_path)?;
    desk.inventory()?;
    println!("desk ready at {}", desk.root().display());
    Ok(ExitCode::SUCCESS)
}

/// The desk service over the desk at `desk_path`: every command but `init` works on an
/// existing desk, creating the sample on first use.
pub fn open_service(desk_path: &Path) -> anyhow::Result<DeskService> {
    DeskService::open(desk_path).map_err(desk_error)
}

/// A desk service error for the terminal: its diagnostics on stderr, one per line, then the
/// message as the command's error.
pub fn desk_error(error: DeskError) -> anyhow::Error {
    crate::output::diagnostics(&error.diagnostics);
    anyhow::Error::msg(error.message)
}
