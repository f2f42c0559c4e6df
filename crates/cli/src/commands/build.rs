//! `provdesk build`: build every artifact and report what changed.
//!
//! Exit status: 0 when the build published, even when some devices were held back by errors
//! in their own values (everyone else got the change; the held ones are listed as needing
//! attention); 1 when an error in a shared input held back the whole build.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use provdesk_core::build::{BuildOptions, BuildReport, Builder};

use super::open_desk;
use crate::output;

#[derive(Args)]
#[command(
    after_help = "Exit status: 0 when the build published, also when some devices were held back \
by errors in their own values (a variable they lack, an override the catalogue refuses): they \
are listed as needing attention and keep their last good files, and every other device gets the \
build. 1 when an error in a shared input (profile syntax, extends, a model file, the catalogue, \
settings) held back the whole build."
)]
pub struct BuildArgs {
    /// Print the report as JSON (counts, changed files, diagnostics, held devices,
    /// milliseconds).
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
            held(&report);
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

/// Names every device held back and why, on stderr: the build succeeded for everyone else.
fn held(report: &BuildReport) {
    if report.held.is_empty() {
        return;
    }
    eprintln!(
        "warning: {} device(s) need attention: their own values have errors, so their files were held back (the last good ones, if any, keep serving); every other device got this build",
        report.held.len()
    );
    for device in &report.held {
        eprintln!("  {} needs attention:", device.mac);
        for d in &device.diagnostics {
            eprintln!("    {d}");
        }
    }
}
