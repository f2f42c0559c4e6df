//! `provdesk build`: build every artifact and report what changed.
//!
//! Exit status: 0 when the build published, even when some devices were held back by errors
//! in their own values (everyone else got the change; the held ones are listed as needing
//! attention); 1 when an error in a shared input held back the whole build.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use provdesk_core::build::BuildReport;
use provdesk_desk::BuildSummary;

use super::{desk_error, open_service};
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
    let service = open_service(desk_path)?;
    let report = match service.build_report().map_err(desk_error)? {
        Ok(report) => report,
        // Only servers of this desk in this process build elsewhere, and `provdesk build`
        // starts none; the summary still says what happened.
        Err(summary) => return served_build(&summary, args),
    };
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

/// A build the servers' publisher ran: its counts, without the list of written files.
fn served_build(summary: &BuildSummary, args: &BuildArgs) -> anyhow::Result<ExitCode> {
    if args.json {
        output::json(summary)?;
    } else {
        output::diagnostics(&summary.diagnostics);
        println!(
            "build {}: {} files for {} devices; {} written, {} unchanged, {} removed ({:.1} ms)",
            summary.build,
            summary.artifacts,
            summary.devices,
            summary.written,
            summary.unchanged,
            summary.removed,
            summary.elapsed_ms
        );
    }
    Ok(if summary.published {
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
