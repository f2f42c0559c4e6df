//! `provdesk crypt …` and `provdesk binary …`: the Grandstream formats on their own, for
//! checking a file by hand or scripting around other tools.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use provdesk_core::Mac;
use provdesk_core::format::{binary, crypt, template};

use crate::output;

#[derive(Subcommand)]
pub enum CryptCommand {
    /// Encrypt IN into OUT (`-` for stdin/stdout).
    Encrypt {
        #[arg(long)]
        password: String,
        input: PathBuf,
        output: PathBuf,
    },
    /// Decrypt IN into OUT (`-` for stdin/stdout).
    Decrypt {
        #[arg(long)]
        password: String,
        input: PathBuf,
        output: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum BinaryCommand {
    /// Encode a `Pnnn = value` text file into a binary cfg<mac> file.
    Encode {
        #[arg(long)]
        mac: String,
        input: PathBuf,
        output: PathBuf,
    },
    /// Decode a binary cfg<mac> file and print its values.
    Decode {
        input: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        Ok(bytes)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

fn write_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path == Path::new("-") {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(bytes)
            .context("cannot write standard output")?;
        stdout.flush().context("cannot write standard output")
    } else {
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
    }
}

pub fn crypt(command: CryptCommand) -> anyhow::Result<ExitCode> {
    match command {
        CryptCommand::Encrypt {
            password,
            input,
            output,
        } => {
            let plaintext = read_input(&input)?;
            write_output(&output, &crypt::encrypt(&plaintext, &password))?;
        }
        CryptCommand::Decrypt {
            password,
            input,
            output,
        } => {
            let file = read_input(&input)?;
            let plaintext =
                crypt::decrypt(&file, &password).with_context(|| format!("{}", input.display()))?;
            write_output(&output, &plaintext)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn binary(command: BinaryCommand) -> anyhow::Result<ExitCode> {
    match command {
        BinaryCommand::Encode { mac, input, output } => {
            let mac: Mac = mac.parse()?;
            let bytes = read_input(&input)?;
            let text = String::from_utf8(bytes)
                .with_context(|| format!("{} is not UTF-8 text", input.display()))?;
            let (entries, mut diagnostics) = template::parse(&text);
            for d in &mut diagnostics {
                d.file = Some(input.clone());
            }
            output::diagnostics(&diagnostics);
            if diagnostics.iter().any(|d| d.is_error()) {
                bail!("{}: not encoded, fix the lines above", input.display());
            }
            let params: Vec<_> = entries.into_iter().map(|e| (e.name, e.value)).collect();
            write_output(&output, &binary::encode(mac, &params))?;
        }
        BinaryCommand::Decode { input, json } => {
            let bytes = read_input(&input)?;
            let decoded = binary::decode(&bytes).with_context(|| format!("{}", input.display()))?;
            if json {
                let params: BTreeMap<String, &str> = decoded
                    .params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.as_str()))
                    .collect();
                output::json(&serde_json::json!({ "mac": decoded.mac, "params": params }))?;
            } else {
                println!("# MAC {}", decoded.mac);
                print!(
                    "{}",
                    template::write(decoded.params.iter().map(|(k, v)| (*k, v.as_str())))
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
