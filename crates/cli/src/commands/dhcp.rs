//! `provdesk dhcp …`: what the desk's DHCP responder has handed out.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::{desk_error, open_service};

#[derive(Subcommand)]
pub enum DhcpCommand {
    /// The leases granted by `provdesk serve --dhcp`, by address.
    Leases {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(desk_path: &Path, command: DhcpCommand) -> anyhow::Result<ExitCode> {
    match command {
        DhcpCommand::Leases { json } => leases(desk_path, json),
    }
}

fn leases(desk_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let desk = open_service(desk_path)?;
    let rows = desk.dhcp_leases().map_err(desk_error)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no leases (start the responder with `provdesk serve --dhcp IFACE`)");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<15}  {:<12}  {:<20}  {:<8}  CLIENT",
        "ADDRESS", "MAC", "EXPIRES", "STATE"
    );
    for row in rows {
        let expires =
            chrono::DateTime::from_timestamp(i64::try_from(row.expires_at).unwrap_or(i64::MAX), 0)
                .map(|t| {
                    t.with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_else(|| row.expires_at.to_string());
        let client = row
            .device
            .or(row.vendor_class)
            .or(row.hostname)
            .unwrap_or_default();
        println!(
            "{:<15}  {:<12}  {:<20}  {:<8}  {client}",
            row.address,
            row.mac.to_string(),
            expires,
            if row.expired { "expired" } else { "active" },
        );
    }
    Ok(ExitCode::SUCCESS)
}
