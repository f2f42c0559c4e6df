//! `provdesk build`: build every artifact and report what changed.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use provdesk_core::build::{BuildOptions, Builder};

use super::open_desk;
use crate::output;

#[derive(Args)]
pub struct BuildArgs {
    /// Print the report as JSON (counts, changed files, diagnostics, milliseconds).
    #[arg(long)]
    json: bool,
}

pub fn run(desk_path: &Path, args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let desk = open_desk(desk_path)?;
    let inventory = desk.inventory()?;
    let options = BuildOptions::from_settings(desk.settings());
    let mut builder = Builder::new(desk);
    let report = builder.build(&inventory, &options)?;
    if args.json {
        output::json(&report)?;
    } else {
        output::diagnostics(&report.diagnostics);
        if report.published {
            println!(
                "build {}: {} files for {} devices and {} models; {} written, {} unchanged, {} removed ({:.1} ms)",
                report.build,
                report.artifacts,
                report.devices,
                report.models,
                report.written.len(),
                report.unchanged,
                report.removed.len(),
                report.elapsed_ms
            );
        } else {
            eprintln!(
                "build failed with {} error(s): nothing published, the last good build keeps serving",
                report.errors()
            );
        }
    }
    Ok(if report.published {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
