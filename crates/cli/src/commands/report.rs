//! `provdesk report`: the hand-over report of every phone, as CSV (to stdout or a file) or PDF
//! (to a file, or to stdout when it is not a terminal).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use provdesk_core::report::ReportFormat;

use super::{desk_error, open_service};

#[derive(Args)]
pub struct ReportArgs {
    /// csv or pdf. Default: the --output file's extension, else csv.
    #[arg(long, value_parser = parse_format)]
    format: Option<ReportFormat>,
    /// The file to write (replaced atomically). Default: stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// With --output: print what was written as JSON.
    #[arg(long, requires = "output")]
    json: bool,
}

fn parse_format(text: &str) -> Result<ReportFormat, String> {
    text.parse()
}

/// The format asked for, else the one the output file's name says, else CSV.
fn format_of(args: &ReportArgs) -> ReportFormat {
    args.format.unwrap_or_else(|| {
        args.output
            .as_deref()
            .and_then(Path::extension)
            .and_then(|e| e.to_str())
            .and_then(|e| e.parse().ok())
            .unwrap_or(ReportFormat::Csv)
    })
}

pub fn run(desk_path: &Path, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let format = format_of(args);
    let Some(output) = &args.output else {
        let mut stdout = std::io::stdout().lock();
        if format == ReportFormat::Pdf && stdout.is_terminal() {
            bail!(
                "a PDF is binary and would garble this terminal: give --output FILE (or redirect stdout to a file)"
            );
        }
        let desk = open_service(desk_path)?;
        let bytes = desk.handover_report(format).map_err(desk_error)?;
        stdout
            .write_all(&bytes)
            .and_then(|()| stdout.flush())
            .context("writing the report to stdout")?;
        return Ok(ExitCode::SUCCESS);
    };
    let desk = open_service(desk_path)?;
    let written = desk
        .write_handover_report(format, output)
        .map_err(desk_error)?;
    if args.json {
        crate::output::json(&written)?;
        return Ok(ExitCode::SUCCESS);
    }
    let summary = &written.summary;
    let counts: Vec<String> = summary
        .by_status
        .iter()
        .map(|c| format!("{} {}", c.count, c.label))
        .collect();
    println!(
        "wrote {} ({} report of {}): {} phone(s), {} with problems{}{}",
        written.path,
        written.format,
        written.site,
        summary.devices,
        summary.problems,
        if counts.is_empty() { "" } else { ": " },
        counts.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
