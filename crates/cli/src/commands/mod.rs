//! One module per subcommand group.

pub mod build;
pub mod catalog;
pub mod device;
pub mod formats;
pub mod profile;
pub mod serve;

use std::path::Path;
use std::process::ExitCode;

use provdesk_core::desk::Desk;

pub fn init(desk_path: &Path) -> anyhow::Result<ExitCode> {
    let desk = Desk::init(desk_path)?;
    desk.inventory()?;
    println!("desk ready at {}", desk.root().display());
    Ok(ExitCode::SUCCESS)
}

/// Every command but `init` works on an existing desk, creating the sample on first use.
pub fn open_desk(desk_path: &Path) -> anyhow::Result<Desk> {
    Ok(Desk::open_or_init(desk_path)?)
}

/// The desk as the desk service opens it (creating the sample on first use), for commands
/// whose use-cases live in `provdesk_desk`.
pub fn open_desk_service(desk_path: &Path) -> anyhow::Result<provdesk_desk::DeskService> {
    Ok(provdesk_desk::DeskService::open(desk_path)?)
}
