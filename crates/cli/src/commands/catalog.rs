//! `provdesk catalog …`: search the P-value catalogue, print its coverage, and grow it from
//! Grandstream's own configuration templates.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use provdesk_core::catalog::import::{Field, ImportReport};
use provdesk_desk::DeskService;
use provdesk_desk::catalog_import::{TemplateImport, TemplateImported};

use super::{desk_error, open_service};
use crate::output;

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Find P-values by number, name, page or XML v2 alias, best match first.
    Search {
        /// What to look for: `P47`, `47`, `sip server`, `account.1.sip`.
        text: String,
        /// Print an array of entries (p, name, page, section, type, description, …).
        #[arg(long)]
        json: bool,
        /// At most this many results.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// How many P-values the catalogue describes, by web UI page and model family.
    Stats {
        /// Print {"total": N, "pages": {…}, "families": {…}}.
        #[arg(long)]
        json: bool,
    },
    /// Learn P-values, defaults, descriptions and model families from a Grandstream
    /// configuration template (`Pnnn = value` text or XML) into DESK/catalog/00-imported.toml.
    Import(ImportArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    file: PathBuf,
    /// The model the template is for, e.g. GXP2170.
    #[arg(long)]
    model: String,
    /// The firmware version the template is for, e.g. 1.0.11.3.
    #[arg(long)]
    firmware: Option<String>,
    /// Report what would be learned without writing it.
    #[arg(long)]
    dry_run: bool,
    /// Learn from the good lines even when some lines are bad (default: learn nothing then).
    #[arg(long)]
    skip_bad: bool,
    /// Print the report as JSON (new, learned, conflicts, unchanged, diagnostics).
    #[arg(long)]
    json: bool,
}

pub fn run(desk_path: &Path, command: CatalogCommand) -> anyhow::Result<ExitCode> {
    match command {
        CatalogCommand::Search { text, json, limit } => search(desk_path, &text, json, limit),
        CatalogCommand::Stats { json } => stats(desk_path, json),
        CatalogCommand::Import(args) => import(desk_path, &args),
    }
}

/// The open desk, whose catalogue the command reads; problems in its overlay files are shown
/// but do not stop the command.
fn desk(desk_path: &Path) -> anyhow::Result<DeskService> {
    let desk = open_service(desk_path)?;
    output::diagnostics(desk.catalog_diagnostics());
    Ok(desk)
}

fn search(desk_path: &Path, text: &str, json: bool, limit: usize) -> anyhow::Result<ExitCode> {
    let desk = desk(desk_path)?;
    let hits = desk.catalog().search(text, limit);
    if json {
        output::json(&hits)?;
        return Ok(ExitCode::SUCCESS);
    }
    if hits.is_empty() {
        println!("nothing matches {text:?}");
        return Ok(ExitCode::SUCCESS);
    }
    for entry in hits {
        let place = if entry.section.is_empty() {
            entry.page.clone()
        } else {
            format!("{} / {}", entry.page, entry.section)
        };
        println!(
            "{:<7} {:<32} {:<40} {}",
            entry.p.to_string(),
            entry.name,
            place,
            entry.kind.name()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn stats(desk_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let stats = desk(desk_path)?.catalog().stats();
    if json {
        output::json(&stats)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} P-values", stats.total);
    println!("by page:");
    for (page, count) in &stats.pages {
        println!("  {page:<24} {count:>5}");
    }
    println!("by model family (all = every model):");
    for (family, count) in &stats.families {
        println!("  {family:<24} {count:>5}");
    }
    Ok(ExitCode::SUCCESS)
}

fn import(desk_path: &Path, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let desk = open_service(desk_path)?;
    let input = TemplateImport {
        file: &args.file,
        model: &args.model,
        firmware: args.firmware.as_deref(),
        dry_run: args.dry_run,
        skip_bad: args.skip_bad,
    };
    let report = match desk.import_catalog_template(&input).map_err(desk_error)? {
        TemplateImported::Merged(report) => report,
        TemplateImported::Refused { bad, diagnostics } => {
            output::diagnostics(&diagnostics);
            eprintln!(
                "{bad} problem(s) in {}: nothing learned (fix the file, or add --skip-bad to learn \
                 from the good lines)",
                args.file.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.json {
        output::json(&report)?;
    } else {
        output::diagnostics(&report.diagnostics);
        print_report(&report, args.dry_run);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &ImportReport, dry_run: bool) {
    let mut template = report.model.to_ascii_uppercase();
    if let Some(firmware) = &report.firmware {
        template.push(' ');
        template.push_str(firmware);
    }
    let verb = match (dry_run, report.written) {
        (true, _) => "would add to",
        (false, true) => "added to",
        (false, false) => "nothing new for",
    };
    println!(
        "{template} template: {} new, {} learned, {} conflict(s), {} unchanged; {verb} {}",
        report.new.len(),
        report.learned.len(),
        report.conflicts.len(),
        report.unchanged,
        report.file.display()
    );
    for new in &report.new {
        let default = new
            .default
            .as_deref()
            .map_or(String::new(), |d| format!(", default {d:?}"));
        println!(
            "  new       {:<7} {} ({}{default})",
            new.p.to_string(),
            new.name,
            new.kind
        );
    }
    for learned in &report.learned {
        println!(
            "  learned   {:<7} {} {:?}",
            learned.p.to_string(),
            field_name(learned.field),
            learned.value
        );
    }
    for conflict in &report.conflicts {
        let at = conflict
            .line
            .map_or(String::new(), |l| format!(" (line {l})"));
        println!(
            "  conflict  {:<7} {}: template says {:?}; {}{at}",
            conflict.p.to_string(),
            field_name(conflict.field),
            conflict.template,
            conflict.reason
        );
    }
}

fn field_name(field: Field) -> &'static str {
    match field {
        Field::Default => "default",
        Field::Description => "description",
        Field::Family => "family",
    }
}
