//! `provdesk device …`: add, import, list, show, export, remove and resync devices, through
//! the desk service's device use-cases (the app's Devices screens call the same ones). Each
//! parses its flags, calls one use-case, and prints; the CLI adds only its own flag hints.
//!
//! Changes leave `build/` to `provdesk build` or to a `provdesk serve` of this desk, whose
//! watcher rebuilds on the inventory change: a second process must not write `build/` next
//! to a running publisher.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use provdesk_core::Mac;
use provdesk_core::diagnosis::Diagnosis;
use provdesk_core::inventory::DeviceState;
use provdesk_core::profile::Source;
use provdesk_core::profile_io::ExportFormat;
use provdesk_core::secrets::MASK;
use provdesk_core::status::ProvisioningStatus;
use provdesk_core::timeline::EntryId;
use provdesk_desk::devices::{DeviceInput, ImportOptions, Rebuild, Reveal, missing_in};
use provdesk_desk::resync::{ResyncRequest, ResyncSelection};
use provdesk_desk::{DeskError, DeskService, ErrorKind};

use super::open_service;
use crate::output;

#[derive(Subcommand)]
pub enum DeviceCommand {
    /// Add a device to the inventory.
    Add(AddArgs),
    /// Import devices from a CSV file with a header row (mac, model, profile, name, and any
    /// other column as a variable).
    Import(ImportArgs),
    /// List the inventory and the discovered devices.
    List {
        #[arg(long)]
        json: bool,
        /// Do not mask secrets in what the list says (a status that quotes a value).
        #[arg(long)]
        show_secrets: bool,
    },
    /// Show a device's effective configuration, with where each value comes from.
    Show {
        mac: String,
        #[arg(long)]
        json: bool,
        /// Show secrets instead of masking them, in text and JSON: the values of secret
        /// P-values and of every variable that feeds one (see `provdesk_core::secrets`).
        #[arg(long)]
        show_secrets: bool,
    },
    /// A device's history, oldest first: its requests (misses and refusals included), DHCP
    /// and plug-and-play, NOTIFY outcomes, syslog lines and the builds that changed its
    /// files. Transfers show once they end (progress is not stored).
    History {
        mac: String,
        /// Only what happened from this time on: RFC 3339 (2026-12-06T09:30:00Z) or an age
        /// (30s, 10m, 2h, 1d).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Write a device's effective configuration in Grandstream's own format, for loading by
    /// hand through the phone's web UI. Passwords are included in clear.
    Export {
        mac: String,
        #[arg(long, value_enum)]
        format: Format,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Remove a device from the inventory.
    Remove { mac: String },
    /// Make phones fetch their configuration now: a SIP NOTIFY with `Event: check-sync` to
    /// each one's last known address (DHCP lease, plug-and-play request or last fetch), on
    /// its local SIP port (P40, else 5060), answering a challenge with its own SIP account.
    /// Prints one line per device with the outcome, also kept in its history.
    Resync(ResyncArgs),
}

#[derive(Args)]
#[command(group(
    ArgGroup::new("which")
        .required(true)
        .args(["macs", "all", "profile", "stale"])
))]
pub struct ResyncArgs {
    /// The devices to notify.
    macs: Vec<String>,
    /// Every inventory device.
    #[arg(long)]
    all: bool,
    /// The inventory devices assigned this profile.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// The inventory devices whose files changed since they fetched them.
    #[arg(long)]
    stale: bool,
    /// Restart the phones (`check-sync;reboot=true`) instead of only re-provisioning.
    #[arg(long)]
    reboot: bool,
    /// Send to this address instead of each device's last known one (the port defaults to
    /// the device's local SIP port).
    #[arg(long, value_name = "HOST:PORT")]
    to: Option<String>,
    /// Print the outcomes as a JSON array.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// `Pnnn = value` lines.
    Text,
    /// gs_provision XML (version 1).
    Xml,
}

#[derive(Args)]
pub struct AddArgs {
    mac: String,
    #[arg(long)]
    model: String,
    #[arg(long)]
    profile: Option<String>,
    #[arg(long)]
    name: Option<String>,
    /// A variable the profiles can use as {{ KEY }}, e.g. --var ext=201.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    vars: Vec<String>,
    /// A per-device P-value override, e.g. --set P3="Front desk".
    #[arg(long = "set", value_name = "PNNN=VALUE")]
    overrides: Vec<String>,
    /// Replace the device if the MAC is already in the inventory.
    #[arg(long)]
    replace: bool,
    /// Add it even though its profile uses variables it does not define: it is stored but
    /// "needs attention" and gets no config until they are set (other phones are not
    /// affected). Without this flag such a device is refused, naming the variables.
    #[arg(long)]
    incomplete: bool,
}

#[derive(Args)]
pub struct ImportArgs {
    file: PathBuf,
    /// Check the file and report what would be imported, without importing.
    #[arg(long)]
    dry_run: bool,
    /// Import the good rows even when some rows are bad (default: import nothing then).
    #[arg(long)]
    skip_bad: bool,
}

pub fn run(desk_path: &Path, command: DeviceCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeviceCommand::Add(args) => add(desk_path, args),
        DeviceCommand::Import(args) => import(desk_path, &args),
        DeviceCommand::List { json, show_secrets } => list(desk_path, json, show_secrets),
        DeviceCommand::Show {
            mac,
            json,
            show_secrets,
        } => show(desk_path, &mac, json, show_secrets),
        DeviceCommand::History { mac, since, json } => {
            history(desk_path, &mac, since.as_deref(), json)
        }
        DeviceCommand::Export {
            mac,
            format,
            output,
        } => export(desk_path, &mac, format, output.as_deref()),
        DeviceCommand::Remove { mac } => remove(desk_path, &mac),
        DeviceCommand::Resync(args) => resync(desk_path, args),
    }
}

fn split_pair<'a>(text: &'a str, what: &str) -> anyhow::Result<(&'a str, &'a str)> {
    text.split_once('=')
        .with_context(|| format!("{what} {text:?} has no '=': write it as KEY=VALUE"))
}

fn pairs(list: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    list.iter()
        .map(|pair| {
            let (key, value) = split_pair(pair, what)?;
            Ok((key.to_string(), value.to_string()))
        })
        .collect()
}

fn reveal(show_secrets: bool) -> Reveal {
    if show_secrets {
        Reveal::Shown
    } else {
        Reveal::Masked
    }
}

/// `{mac} is not in the inventory`, with where to look.
fn not_found_hint(error: DeskError) -> anyhow::Error {
    if error.kind == ErrorKind::NotFound {
        anyhow::anyhow!("{} (see `provdesk device list`)", error.message)
    } else {
        error.into()
    }
}

fn add(desk_path: &Path, args: AddArgs) -> anyhow::Result<ExitCode> {
    let input = DeviceInput {
        mac: args.mac,
        model: args.model,
        profile: args.profile,
        name: args.name,
        vars: pairs(&args.vars, "--var")?,
        overrides: pairs(&args.overrides, "--set")?,
        incomplete: args.incomplete,
    };
    let desk = open_service(desk_path)?;
    let changed = match desk.add_device(&input, args.replace, Rebuild::Later) {
        Ok(changed) => changed,
        Err(e) if !missing_in(&e).is_empty() => bail!(
            "{}: give them with {}, or add --incomplete to add it anyway (it then needs attention and gets no config until they are set)",
            e.message,
            provdesk_core::build::var_flags(&missing_in(&e))
        ),
        Err(e) if e.kind == ErrorKind::Conflict => {
            bail!("{}; add --replace to overwrite it", e.message)
        }
        Err(e) => return Err(e.into()),
    };
    let Some(device) = changed.device else {
        bail!("the device was not stored");
    };
    println!("added {} ({})", device.mac, device.model);
    if !changed.missing.is_empty() {
        eprintln!(
            "warning: {} needs attention: it lacks the variable(s) {} and gets no config until they are set (add it again with --var … --replace)",
            device.mac,
            changed.missing.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn import(desk_path: &Path, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let desk = open_service(desk_path)?;
    let source = args.file.display().to_string();
    let options = ImportOptions {
        source: Some(&source),
        dry_run: args.dry_run,
        skip_bad: args.skip_bad,
    };
    let result = desk.import_devices(&text, options, Rebuild::Later)?;
    output::diagnostics(&result.diagnostics);
    if result.refused {
        // The desk's sentence, with this command's flag for skipping the bad rows.
        eprintln!(
            "{} problem(s) in {source}: nothing imported (fix the rows, or add --skip-bad to import the {} good row(s))",
            result.bad,
            result.rows.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    if result.imported.is_some() {
        // Imported all the same (a CSV is a batch, and the others must not wait): these are
        // held back at the build and shown as needing attention.
        for incomplete in &result.incomplete {
            eprintln!(
                "warning: {} needs attention: its profile uses the variable(s) {} that its row does not give",
                incomplete.mac,
                incomplete.missing.join(", ")
            );
        }
    }
    println!("{}", result.message);
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct DeviceSummary<'a> {
    mac: Mac,
    model: &'a str,
    profile: Option<&'a str>,
    name: Option<&'a str>,
    state: DeviceState,
    first_seen: Option<i64>,
    last_seen: Option<i64>,
    last_ip: Option<&'a str>,
    firmware_version: Option<&'a str>,
    status: Option<&'a ProvisioningStatus>,
}

fn list(desk_path: &Path, json: bool, show_secrets: bool) -> anyhow::Result<ExitCode> {
    let desk = open_service(desk_path)?;
    // The list shows no values, but a status may quote one: the desk masks it unless asked.
    let devices = desk.list_devices(reveal(show_secrets))?;
    if json {
        let summaries: Vec<DeviceSummary> = devices
            .iter()
            .map(|d| DeviceSummary {
                mac: d.mac,
                model: &d.model,
                profile: d.profile.as_deref(),
                name: d.name.as_deref(),
                state: d.state,
                first_seen: d.first_seen,
                last_seen: d.last_seen,
                last_ip: d.last_ip.as_deref(),
                firmware_version: d.firmware_version.as_deref(),
                status: d.status.as_ref(),
            })
            .collect();
        output::json(&summaries)?;
        return Ok(ExitCode::SUCCESS);
    }
    if devices.is_empty() {
        println!(
            "no devices yet: add one with `provdesk device add MAC --model MODEL` or import a CSV"
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<12}  {:<10}  {:<12}  {:<20}  {:<10}  {:<14}  FIRMWARE",
        "MAC", "MODEL", "PROFILE", "NAME", "STATE", "STATUS"
    );
    for d in &devices {
        println!(
            "{:<12}  {:<10}  {:<12}  {:<20}  {:<10}  {:<14}  {}",
            d.mac.to_string(),
            d.model,
            d.profile.as_deref().unwrap_or("-"),
            d.name.as_deref().unwrap_or("-"),
            d.state.as_str(),
            d.status_label.as_deref().unwrap_or("-"),
            d.firmware_version.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct ShownParam {
    value: String,
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    /// Masked unless `--show-secrets`.
    secret: bool,
}

/// `value` as printed: masked when the desk flags it secret, unless `--show-secrets` (an empty
/// value hides nothing).
fn shown(secret: bool, value: &str, show_secrets: bool) -> String {
    if secret && !show_secrets && !value.is_empty() {
        MASK.to_string()
    } else {
        value.to_string()
    }
}

fn show(desk_path: &Path, mac: &str, json: bool, show_secrets: bool) -> anyhow::Result<ExitCode> {
    let desk = open_service(desk_path)?;
    let mac: Mac = mac.parse()?;
    let detail = desk
        .device_detail(mac, reveal(show_secrets))
        .map_err(not_found_hint)?;
    let diagnosis = desk.diagnose(mac, reveal(show_secrets))?;
    let device = &detail.device;
    let secret_var = |key: &str| device.secret_vars.get(key).copied().unwrap_or(true);
    if json {
        let params: BTreeMap<String, ShownParam> = detail
            .params
            .iter()
            .map(|param| {
                let line = match &param.source {
                    Source::File { line, .. } => Some(*line),
                    _ => None,
                };
                let value = ShownParam {
                    value: shown(param.secret, &param.value, show_secrets),
                    source: param.source.to_string(),
                    line,
                    secret: param.secret,
                };
                (param.p.to_string(), value)
            })
            .collect();
        let vars: BTreeMap<&str, String> = device
            .vars
            .iter()
            .map(|(key, value)| (key.as_str(), shown(secret_var(key), value, show_secrets)))
            .collect();
        let secret_vars: Vec<&str> = device
            .secret_vars
            .iter()
            .filter(|(_, secret)| **secret)
            .map(|(key, _)| key.as_str())
            .collect();
        output::json(&serde_json::json!({
            "mac": device.mac,
            "model": device.model,
            "profile": device.profile,
            "name": device.name,
            "state": device.state,
            "status": device.status,
            "vars": vars,
            "secret_vars": secret_vars,
            "params": params,
            "diagnostics": detail.diagnostics,
            "diagnosis": diagnosis,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}  {}  profile {}  {}",
        device.mac,
        device.model,
        device.profile.as_deref().unwrap_or("(none)"),
        device.name.as_deref().unwrap_or("")
    );
    if let Some(status) = &device.status {
        match status.reason() {
            Some(reason) => println!("  status: {} ({reason})", status.label()),
            None => println!("  status: {}", status.label()),
        }
    }
    print_diagnosis(&desk, &diagnosis)?;
    for (key, value) in &device.vars {
        println!(
            "  var {key} = {}",
            shown(secret_var(key), value, show_secrets)
        );
    }
    for param in &detail.params {
        let value = shown(param.secret, &param.value, show_secrets);
        let source = match &param.source {
            Source::File { path, line } => format!("{}:{line}", path.display()),
            other => other.to_string(),
        };
        println!("  {:<7} {:<40}  {source}", param.p.to_string(), value);
    }
    output::diagnostics(&detail.diagnostics);
    Ok(ExitCode::SUCCESS)
}

/// The diagnosis under the status: its summary, then each verdict with the entries behind
/// it, as `device history` prints them.
fn print_diagnosis(desk: &DeskService, diagnosis: &Diagnosis) -> anyhow::Result<()> {
    // The summary is the first verdict's words: printed once, with the verdicts.
    if diagnosis.verdicts.is_empty() {
        println!("  diagnosis: {}", diagnosis.summary);
    } else {
        println!("  diagnosis:");
    }
    let history = desk.history(diagnosis.mac, None).ok();
    let entry = |id: &EntryId| {
        history
            .as_ref()
            .and_then(|h| h.entries.iter().find(|e| e.id == *id))
    };
    let print_evidence = |ids: &[EntryId]| {
        for id in ids {
            match entry(id) {
                Some(e) => println!("      {}  {}  [{id}]", output::time_ms(e.at_ms), e.summary),
                None => println!("      [{id}]"),
            }
        }
    };
    for verdict in &diagnosis.verdicts {
        let severity = serde_json::to_value(verdict.severity)?;
        let code = serde_json::to_value(verdict.code)?;
        println!(
            "  - {} {}: {}",
            severity.as_str().unwrap_or_default(),
            code.as_str().unwrap_or_default(),
            verdict.words
        );
        print_evidence(&verdict.evidence);
    }
    if !diagnosis.status_evidence.is_empty() {
        println!("  status {} because:", diagnosis.status_label);
        print_evidence(&diagnosis.status_evidence);
    }
    Ok(())
}

fn history(
    desk_path: &Path,
    mac: &str,
    since: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let since = since
        .map(|text| output::parse_since(text, output::now_ms()))
        .transpose()?;
    let desk = open_service(desk_path)?;
    let mac: Mac = mac.parse()?;
    let history = desk.history(mac, since).map_err(not_found_hint)?;
    if json {
        output::json(&history)?;
        return Ok(ExitCode::SUCCESS);
    }
    if history.entries.is_empty() {
        println!("nothing happened to {mac} in that time");
    }
    for entry in &history.entries {
        let source = serde_json::to_value(entry.source)?;
        println!(
            "{}  {:<6}  {}  [{}]",
            output::time_ms(entry.at_ms),
            source.as_str().unwrap_or_default(),
            entry.summary,
            entry.id
        );
    }
    if history.truncated {
        eprintln!(
            "note: only the newest {} requests and events are shown; narrow it with --since",
            provdesk_desk::timeline::HISTORY_LIMIT
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn export(
    desk_path: &Path,
    mac: &str,
    format: Format,
    output_path: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let desk = open_service(desk_path)?;
    let mac: Mac = mac.parse()?;
    let format = match format {
        Format::Text => ExportFormat::Text,
        Format::Xml => ExportFormat::Xml,
    };
    let (text, warnings) = match desk.export_device(mac, format) {
        Ok(done) => done,
        Err(e) if e.kind == ErrorKind::Diagnostics => {
            output::diagnostics(&e.diagnostics);
            bail!("{mac} has configuration errors (shown above); nothing exported");
        }
        Err(e) => return Err(not_found_hint(e)),
    };
    output::diagnostics(&warnings);
    match output_path {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn remove(desk_path: &Path, mac: &str) -> anyhow::Result<ExitCode> {
    let desk = open_service(desk_path)?;
    let mac: Mac = mac.parse()?;
    desk.remove_devices(&[mac], Rebuild::Later)?;
    println!("removed {mac}");
    Ok(ExitCode::SUCCESS)
}

/// Exits with failure unless every phone took the NOTIFY (answered 2xx), so a script can
/// tell.
fn resync(desk_path: &Path, args: ResyncArgs) -> anyhow::Result<ExitCode> {
    let selection = if args.all {
        ResyncSelection::All
    } else if args.stale {
        ResyncSelection::Stale
    } else if let Some(name) = args.profile {
        ResyncSelection::Profile { name }
    } else {
        ResyncSelection::Devices { macs: args.macs }
    };
    let desk = open_service(desk_path)?;
    let results = desk
        .resync(&ResyncRequest {
            selection,
            reboot: args.reboot,
            to: args.to,
        })
        .map_err(not_found_hint)?;
    if args.json {
        output::json(&results)?;
    } else if results.is_empty() {
        println!("no device selected; nothing sent");
    } else {
        for result in &results {
            println!(
                "{}  {}  {}",
                result.mac,
                result.name.as_deref().unwrap_or("-"),
                result.summary
            );
        }
    }
    Ok(if results.iter().all(|r| r.outcome.accepted()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
