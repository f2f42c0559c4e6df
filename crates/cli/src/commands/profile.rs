//! `provdesk profile …`: bring a phone's existing Grandstream file into the desk as a profile.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use provdesk_desk::profile_import::{ProfileImport, ProfileImported};

use super::{desk_error, open_service};
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
    let desk = open_service(desk_path)?;
    output::diagnostics(desk.catalog_diagnostics());
    let input = ProfileImport {
        file,
        name,
        replace: force,
        skip_bad,
    };
    match desk.import_profile_file(&input).map_err(desk_error)? {
        ProfileImported::Written {
            path,
            name,
            values,
            bad,
            diagnostics,
        } => {
            output::diagnostics(&diagnostics);
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
        ProfileImported::BadLines { bad, diagnostics } => {
            output::diagnostics(&diagnostics);
            eprintln!(
                "{bad} problem(s) in {}: no profile written (fix the file, or add --skip-bad to \
                 write it with the bad lines as comments)",
                file.display()
            );
            Ok(ExitCode::FAILURE)
        }
        ProfileImported::NothingRead { bad, diagnostics } => {
            output::diagnostics(&diagnostics);
            eprintln!(
                "{bad} problem(s) in {} and no value could be read: no profile written",
                file.display()
            );
            Ok(ExitCode::FAILURE)
        }
        ProfileImported::Exists { path, diagnostics } => {
            output::diagnostics(&diagnostics);
            bail!(
                "{} already exists; add --force to replace it, or choose another --name",
                path.display()
            )
        }
    }
}
