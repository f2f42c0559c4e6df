//! `provdesk device …`: add, import, list, show, export and remove inventory devices.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use provdesk_core::build::{BuildOptions, Manifest, device_config, missing_device_variables};
use provdesk_core::catalog::Catalog;
use provdesk_core::inventory::{Device, DeviceState, FetchLogQuery, Inventory, parse_devices_csv};
use provdesk_core::profile::{ProfileSet, Source};
use provdesk_core::profile_io::{ExportError, ExportFormat, export_device};
use provdesk_core::secrets::{Secrets, device_secrets};
use provdesk_core::status::{self, ProvisioningStatus, STATUS_LOG_DEPTH};
use provdesk_core::{Mac, PName};

use super::open_desk;
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
        DeviceCommand::Export {
            mac,
            format,
            output,
        } => export(desk_path, &mac, format, output.as_deref()),
        DeviceCommand::Remove { mac } => remove(desk_path, &mac),
    }
}

fn split_pair<'a>(text: &'a str, what: &str) -> anyhow::Result<(&'a str, &'a str)> {
    text.split_once('=')
        .with_context(|| format!("{what} {text:?} has no '=': write it as KEY=VALUE"))
}

fn add(desk_path: &Path, args: AddArgs) -> anyhow::Result<ExitCode> {
    let desk = open_desk(desk_path)?;
    let mac: Mac = args.mac.parse()?;
    let model = args.model.trim().to_ascii_lowercase();
    if let Some(problem) = provdesk_core::inventory::model_problem(&model) {
        bail!("model {:?}: {problem}", args.model);
    }
    let profiles = ProfileSet::load(desk.root());
    if let Some(profile) = &args.profile
        && !profiles.profile_exists(profile)
    {
        let known: Vec<&str> = profiles.profile_names().collect();
        bail!(
            "profile {profile:?} does not exist (known: {})",
            known.join(", ")
        );
    }
    let mut device = Device::new(mac, &model);
    device.profile = args.profile;
    device.name = args.name;
    for pair in &args.vars {
        let (key, value) = split_pair(pair, "--var")?;
        if let Some(problem) = provdesk_core::inventory::variable_name_problem(key) {
            bail!("--var {key:?}: {problem}");
        }
        device.vars.insert(key.to_string(), value.to_string());
    }
    for pair in &args.overrides {
        let (key, value) = split_pair(pair, "--set")?;
        let name: PName = key.parse()?;
        device.overrides.insert(name, value.to_string());
    }
    // Before anything is stored: a device its profile cannot be built for would only be
    // held back at the next build.
    let missing = missing_device_variables(&profiles, &device);
    if !missing.is_empty() && !args.incomplete {
        bail!(
            "profile {:?} uses the variable(s) {} that {mac} does not define: give them with {}, or add --incomplete to add it anyway (it then needs attention and gets no config until they are set)",
            device.profile.as_deref().unwrap_or_default(),
            missing.join(", "),
            provdesk_core::build::var_flags(&missing)
        );
    }
    let inventory = desk.inventory()?;
    if let Some(existing) = inventory.get_device(mac)?
        && existing.state == DeviceState::Inventory
        && !args.replace
    {
        bail!("{mac} is already in the inventory; add --replace to overwrite it");
    }
    inventory.upsert_device(&device)?;
    println!("added {mac} ({model})");
    if !missing.is_empty() {
        eprintln!(
            "warning: {mac} needs attention: it lacks the variable(s) {} and gets no config until they are set (add it again with --var … --replace)",
            missing.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn import(desk_path: &Path, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let desk = open_desk(desk_path)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let profiles = ProfileSet::load(desk.root());
    let (rows, mut diagnostics) = parse_devices_csv(&text, &|name| profiles.profile_exists(name));
    for d in &mut diagnostics {
        d.file = Some(args.file.clone());
    }
    output::diagnostics(&diagnostics);
    let bad = diagnostics.iter().filter(|d| d.is_error()).count();
    let inventory = desk.inventory()?;
    let existing = inventory
        .list_devices()?
        .into_iter()
        .filter(|d| d.state == DeviceState::Inventory)
        .map(|d| d.mac)
        .collect::<std::collections::BTreeSet<_>>();
    let updates = rows
        .iter()
        .filter(|(_, d)| existing.contains(&d.mac))
        .count();
    let new = rows.len() - updates;
    if bad > 0 && !args.skip_bad {
        eprintln!(
            "{bad} problem(s) in {}: nothing imported (fix the rows, or add --skip-bad to import the {} good row(s))",
            args.file.display(),
            rows.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    if args.dry_run {
        println!(
            "dry run: would import {} device(s) ({new} new, {updates} updated){}",
            rows.len(),
            if bad > 0 {
                format!(", skipping {bad} bad row(s)")
            } else {
                String::new()
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let devices: Vec<Device> = rows.into_iter().map(|(_, d)| d).collect();
    let incomplete: Vec<(Mac, Vec<String>)> = devices
        .iter()
        .map(|d| (d.mac, missing_device_variables(&profiles, d)))
        .filter(|(_, missing)| !missing.is_empty())
        .collect();
    let count = inventory.import_devices(&devices)?;
    // Imported all the same (a CSV is a batch, and the others must not wait): these are held
    // back at the build and shown as needing attention.
    for (mac, missing) in &incomplete {
        eprintln!(
            "warning: {mac} needs attention: its profile uses the variable(s) {} that its row does not give",
            missing.join(", ")
        );
    }
    println!(
        "imported {count} device(s) ({new} new, {updates} updated){}",
        if bad > 0 {
            format!(", skipped {bad} bad row(s)")
        } else {
            String::new()
        }
    );
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
    status: ProvisioningStatus,
}

/// A device's provisioning status from its newest fetch-log entries and the last build.
fn provisioning_status(
    inventory: &Inventory,
    manifest: &Manifest,
    device: &Device,
) -> anyhow::Result<ProvisioningStatus> {
    let log = inventory.fetch_log(&FetchLogQuery {
        mac: Some(device.mac),
        limit: Some(STATUS_LOG_DEPTH),
        ..FetchLogQuery::default()
    })?;
    Ok(status::derive(device, &log, manifest))
}

fn list(desk_path: &Path, json: bool, show_secrets: bool) -> anyhow::Result<ExitCode> {
    let desk = open_desk(desk_path)?;
    let inventory = desk.inventory()?;
    let devices = inventory.list_devices()?;
    let manifest = Manifest::load(&desk.build_dir())?;
    let statuses = devices
        .iter()
        .map(|d| provisioning_status(&inventory, &manifest, d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The list shows no values, but a status may quote one; each device's own secrets are
    // masked wherever they appear.
    let secrets: Vec<Option<Secrets>> = if show_secrets {
        devices.iter().map(|_| None).collect()
    } else {
        let profiles = ProfileSet::load(desk.root());
        let (catalog, _) = Catalog::load_with_overlay(desk.root());
        let options = BuildOptions::from_settings(desk.settings());
        devices
            .iter()
            .map(|d| Some(device_secrets(&profiles, d, &catalog, &options)))
            .collect()
    };
    if json {
        let summaries: Vec<DeviceSummary> = devices
            .iter()
            .zip(&statuses)
            .map(|(d, status)| DeviceSummary {
                mac: d.mac,
                model: &d.model,
                profile: d.profile.as_deref(),
                name: d.name.as_deref(),
                state: d.state,
                first_seen: d.first_seen,
                last_seen: d.last_seen,
                last_ip: d.last_ip.as_deref(),
                firmware_version: d.firmware_version.as_deref(),
                status: status.clone(),
            })
            .collect();
        let mut summaries = serde_json::to_value(&summaries)?;
        if let Some(items) = summaries.as_array_mut() {
            for (item, secrets) in items.iter_mut().zip(&secrets) {
                if let Some(secrets) = secrets {
                    redact_strings(item, secrets);
                }
            }
        }
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
    for ((d, status), secrets) in devices.iter().zip(&statuses).zip(&secrets) {
        let state = match d.state {
            DeviceState::Inventory => "inventory",
            DeviceState::Discovered => "discovered",
        };
        let row = format!(
            "{:<12}  {:<10}  {:<12}  {:<20}  {:<10}  {:<14}  {}",
            d.mac.to_string(),
            d.model,
            d.profile.as_deref().unwrap_or("-"),
            d.name.as_deref().unwrap_or("-"),
            state,
            status.label(),
            d.firmware_version.as_deref().unwrap_or("-")
        );
        match secrets {
            Some(secrets) => println!("{}", secrets.redact(&row)),
            None => println!("{row}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every string in `value` with the device's secrets masked.
fn redact_strings(value: &mut serde_json::Value, secrets: &Secrets) {
    match value {
        serde_json::Value::String(text) => *text = secrets.redact(text),
        serde_json::Value::Array(items) => {
            for item in items {
                redact_strings(item, secrets);
            }
        }
        serde_json::Value::Object(fields) => {
            for field in fields.values_mut() {
                redact_strings(field, secrets);
            }
        }
        _ => {}
    }
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

fn show(desk_path: &Path, mac: &str, json: bool, show_secrets: bool) -> anyhow::Result<ExitCode> {
    let desk = open_desk(desk_path)?;
    let mac: Mac = mac.parse()?;
    let inventory = desk.inventory()?;
    let Some(device) = inventory.get_device(mac)? else {
        bail!("{mac} is not in the inventory (see `provdesk device list`)");
    };
    let status = provisioning_status(&inventory, &Manifest::load(&desk.build_dir())?, &device)?;
    let profiles = ProfileSet::load(desk.root());
    let options = BuildOptions::from_settings(desk.settings());
    let (catalog, catalog_diagnostics) = Catalog::load_with_overlay(desk.root());
    let (config, mut diagnostics) = device_config(&profiles, &device, &options);
    diagnostics.extend(profiles.diagnostics().iter().cloned());
    diagnostics.extend(catalog_diagnostics);
    diagnostics.extend(catalog.check_config(&config, &device.model, Some(device.mac)));
    let secrets = device_secrets(&profiles, &device, &catalog, &options);
    if !show_secrets {
        // A message may quote a value (a validation error, a variable's text).
        for d in &mut diagnostics {
            d.message = secrets.redact(&d.message);
        }
    }
    let var_shown = |key: &str, value: &str| -> String {
        secrets
            .shown(secrets.is_secret_var(key), value, show_secrets)
            .to_string()
    };
    let param_shown = |name: PName, value: &str| -> String {
        secrets
            .shown(secrets.is_secret_param(name), value, show_secrets)
            .to_string()
    };
    if json {
        let params: BTreeMap<String, ShownParam> = config
            .params
            .iter()
            .map(|(name, sourced)| {
                let line = match &sourced.source {
                    Source::File { line, .. } => Some(*line),
                    _ => None,
                };
                let shown = ShownParam {
                    value: param_shown(*name, &sourced.value),
                    source: sourced.source.to_string(),
                    line,
                    secret: secrets.is_secret_param(*name),
                };
                (name.to_string(), shown)
            })
            .collect();
        let mut status_json = serde_json::to_value(&status)?;
        if !show_secrets {
            redact_strings(&mut status_json, &secrets);
        }
        let vars: BTreeMap<&str, String> = device
            .vars
            .iter()
            .map(|(key, value)| (key.as_str(), var_shown(key, value)))
            .collect();
        output::json(&serde_json::json!({
            "mac": device.mac,
            "model": device.model,
            "profile": device.profile,
            "name": device.name,
            "state": device.state,
            "status": status_json,
            "vars": vars,
            "secret_vars": secrets.vars(),
            "params": params,
            "diagnostics": diagnostics,
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
    let status_line = match status.reason() {
        Some(reason) => format!("  status: {} ({reason})", status.label()),
        None => format!("  status: {}", status.label()),
    };
    if show_secrets {
        println!("{status_line}");
    } else {
        println!("{}", secrets.redact(&status_line));
    }
    for (key, value) in &device.vars {
        println!("  var {key} = {}", var_shown(key, value));
    }
    for (name, sourced) in &config.params {
        let value = param_shown(*name, &sourced.value);
        let source = match &sourced.source {
            Source::File { path, line } => format!("{}:{line}", path.display()),
            other => other.to_string(),
        };
        println!("  {:<7} {:<40}  {source}", name.to_string(), value);
    }
    output::diagnostics(&diagnostics);
    Ok(ExitCode::SUCCESS)
}

fn export(
    desk_path: &Path,
    mac: &str,
    format: Format,
    output_path: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let desk = open_desk(desk_path)?;
    let mac: Mac = mac.parse()?;
    let Some(device) = desk.inventory()?.get_device(mac)? else {
        bail!("{mac} is not in the inventory (see `provdesk device list`)");
    };
    let profiles = ProfileSet::load(desk.root());
    let options = BuildOptions::from_settings(desk.settings());
    let (catalog, _) = Catalog::load_with_overlay(desk.root());
    let format = match format {
        Format::Text => ExportFormat::Text,
        Format::Xml => ExportFormat::Xml,
    };
    let (text, warnings) = match export_device(&profiles, &catalog, &device, &options, format) {
        Ok(done) => done,
        Err(ExportError::Diagnostics(diagnostics)) => {
            output::diagnostics(&diagnostics);
            bail!("{mac} has configuration errors (shown above); nothing exported");
        }
        Err(e) => return Err(e.into()),
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
    let desk = open_desk(desk_path)?;
    let mac: Mac = mac.parse()?;
    if desk.inventory()?.remove_device(mac)? {
        println!("removed {mac}");
        Ok(ExitCode::SUCCESS)
    } else {
        bail!("{mac} is not in the inventory")
    }
}
