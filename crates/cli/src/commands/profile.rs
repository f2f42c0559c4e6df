//! `provdesk profile …`: bring a phone's existing Grandstream file into the desk as a profile.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use provdesk_core::catalog::Catalog;
use provdesk_core::profile_io::{
    WriteError, WriteOptions, import_profile, imported_value_count, write_profile,
};

use super::open_desk;
use crate::output;

#[derive(Subcommand)]
pub enum ProfileCommand {
    /// Turn a Grandstream text template, XML v1 or XML v2 file into DESK/profiles/NAME.toml
    /// (values and comments kept).
    Import {
        file: PathBuf,
        /// The profile's name (default: the file name without its extension).
        #[arg(long)]
        name: Option<String>,
        /// Replace an existing profile of that name.
        #[arg(long)]
        force: bool,
        /// Write the profile even when some lines are bad (they are kept as comments).
        #[arg(long)]
        skip_bad: bool,
    },
}

pub fn run(desk_path: &Path, command: ProfileCommand) -> anyhow::Result<ExitCode> {
    match command {
        ProfileCommand::Import {
            file,
            name,
            force,
            skip_bad,
        } => import(desk_path, &file, name.as_deref(), force, skip_bad),
    }
}

fn import(
    desk_path: &Path,
    file: &Path,
    name: Option<&str>,
    force: bool,
    skip_bad: bool,
) -> anyhow::Result<ExitCode> {
    let desk = open_desk(desk_path)?;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", file.display()))?;
    let name = match name {
        Some(name) => name.to_string(),
        None => file
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
            .with_context(|| format!("{}: give the profile a --name", file.display()))?,
    };
    let (catalog, catalog_diagnostics) = Catalog::load_with_overlay(desk.root());
    output::diagnostics(&catalog_diagnostics);
    let (toml, diagnostics) = import_profile(&text, &file.display().to_string(), &catalog);
    output::diagnostics(&diagnostics);
    let bad = diagnostics.iter().filter(|d| d.is_error()).count();
    if bad > 0 && !skip_bad {
        eprintln!(
            "{bad} problem(s) in {}: no profile written (fix the file, or add --skip-bad to \
             write it with the bad lines as comments)",
            file.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let values = imported_value_count(&toml);
    if bad > 0 && values == 0 {
        // A profile that sets nothing would look like a successful import.
        eprintln!(
            "{bad} problem(s) in {} and no value could be read: no profile written",
            file.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let options = WriteOptions { replace: force };
    match write_profile(&desk, &name, &toml, options) {
        Ok(path) => {
            let skipped = if bad > 0 {
                format!(", {bad} bad part(s) kept as comments")
            } else {
                String::new()
            };
            println!(
                "wrote {} from {} ({values} value(s){skipped}); use it with `--profile {name}`",
                path.display(),
                file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(WriteError::Exists { path }) => bail!(
            "{} already exists; add --force to replace it, or choose another --name",
            path.display()
        ),
        Err(e) => Err(e.into()),
    }
}
