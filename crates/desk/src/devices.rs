//! Devices, written once for `provdesk device …` and the app's Devices screens: the list with
//! each device's provisioning status, a device's page (effective config with the layer of
//! every value, the values the servers fill in, the files it is served, its requests), add,
//! edit, remove, bulk profile assignment, CSV import with a dry run, enrolment of discovered
//! phones, and export in Grandstream's own formats.
//!
//! Invariants: every rule and message about devices is here (or in the core below); masking
//! is decided by `provdesk_core::secrets` and travels as flags (`secret`, `secret_vars`), so a
//! front end masks by flag, never by name. Every change emits `DeskEvent::DevicesChanged`
//! once it is in the inventory (after its rebuild, when it rebuilds, so one reload shows
//! both).

use std::collections::{BTreeMap, BTreeSet};

use provdesk_core::build::{
    ArtifactKind, BuildOptions, Manifest, device_config, missing_device_variables, pvalues,
};
use provdesk_core::inventory::{
    Device, DeviceEventQuery, DeviceState, FetchLogEntry, FetchLogQuery, model_problem,
    parse_devices_csv, variable_name_problem,
};
use provdesk_core::preview;
use provdesk_core::profile::{EffectiveConfig, ProfileSet, Source};
use provdesk_core::profile_io::{ExportError, ExportFormat, export_device};
use provdesk_core::secrets::{Secrets, device_secrets, secrets_of_config};
use provdesk_core::status::{ProvisioningStatus, STATUS_LOG_DEPTH};
use provdesk_core::{Diagnostic, Mac, PName};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{DeskError, DeskResult, ErrorKind};
use crate::events::{BuildSummary, DeskEvent};
use crate::service::DeskService;

/// How many fetches a device's page shows.
pub const HISTORY: usize = 200;

/// A change to more devices than this is announced as `all` (reload the list) rather than
/// MAC by MAC.
const LISTED_CHANGES: usize = 500;

/// What a change does to `build/` once it is in the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    /// Rebuild the changed devices' files now, through the desk's one writer (the app).
    Now,
    /// Leave it to the next `provdesk build`, or to servers of this desk running in another
    /// process, whose watcher sees the inventory change: a second process must not write
    /// `build/` next to their publisher (the CLI).
    Later,
}

/// Whether messages (a status reason, a diagnostic) may quote secret values. Values
/// themselves always travel in clear with their `secret` flag, for a "Show secrets" switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reveal {
    #[default]
    Masked,
    Shown,
}

/// A device as the list, its page and the import preview show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct DeviceDto {
    #[ts(as = "String")]
    pub mac: Mac,
    pub model: String,
    pub profile: Option<String>,
    pub name: Option<String>,
    pub state: DeviceState,
    #[ts(type = "Record<string, string>")]
    pub vars: BTreeMap<String, String>,
    /// For each of `vars`, whether it is secret (feeds a secret P-value, see
    /// `provdesk_core::secrets`): front ends mask those until the technician reveals them.
    #[ts(type = "Record<string, boolean>")]
    pub secret_vars: BTreeMap<String, bool>,
    #[ts(type = "Record<string, string>")]
    pub overrides: BTreeMap<PName, String>,
    #[ts(type = "number | null")]
    pub first_seen: Option<i64>,
    #[ts(type = "number | null")]
    pub last_seen: Option<i64>,
    pub last_ip: Option<String>,
    pub firmware_version: Option<String>,
    /// Where it is in its provisioning (list and page; not in an import preview), its reason
    /// masked unless revealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub status: Option<ProvisioningStatus>,
    /// The core's label for `status`: `up to date`, `needs attention`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub status_label: Option<String>,
}

impl DeviceDto {
    /// The device with each variable flagged by the core's secret rule.
    pub fn new(d: &Device, secrets: &Secrets) -> DeviceDto {
        DeviceDto {
            mac: d.mac,
            model: d.model.clone(),
            profile: d.profile.clone(),
            name: d.name.clone(),
            state: d.state,
            vars: d.vars.clone(),
            secret_vars: d
                .vars
                .keys()
                .map(|name| (name.clone(), secrets.is_secret_var(name)))
                .collect(),
            overrides: d.overrides.clone(),
            first_seen: d.first_seen,
            last_seen: d.last_seen,
            last_ip: d.last_ip.clone(),
            firmware_version: d.firmware_version.clone(),
            status: None,
            status_label: None,
        }
    }

    fn with_status(
        mut self,
        status: ProvisioningStatus,
        secrets: &Secrets,
        reveal: Reveal,
    ) -> Self {
        self.status_label = Some(status.label());
        self.status = Some(match reveal {
            Reveal::Shown => status,
            Reveal::Masked => redact_status(status, secrets),
        });
        self
    }
}

pub(crate) fn redact_status(status: ProvisioningStatus, secrets: &Secrets) -> ProvisioningStatus {
    match status {
        ProvisioningStatus::Denied { reason } => ProvisioningStatus::Denied {
            reason: secrets.redact(&reason),
        },
        ProvisioningStatus::Failed { reason } => ProvisioningStatus::Failed {
            reason: secrets.redact(&reason),
        },
        ProvisioningStatus::NeedsAttention { reason } => ProvisioningStatus::NeedsAttention {
            reason: secrets.redact(&reason),
        },
        other => other,
    }
}

/// A device as the add and edit forms (and `provdesk device add`) give it.
#[derive(Debug, Clone, Default, Deserialize, TS)]
#[ts(export)]
pub struct DeviceInput {
    pub mac: String,
    pub model: String,
    pub profile: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    #[ts(type = "Record<string, string>")]
    pub vars: BTreeMap<String, String>,
    #[serde(default)]
    #[ts(type = "Record<string, string>")]
    pub overrides: BTreeMap<String, String>,
    /// Store it even though its profile uses variables it does not define (it then needs
    /// attention and gets no config until they are set); without it such a device is refused.
    #[serde(default)]
    pub incomplete: bool,
}

/// The variables a device's profile uses that the device lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct MissingVariables {
    #[ts(as = "String")]
    pub mac: Mac,
    pub missing: Vec<String>,
}

/// One value of an effective configuration, with its layer and what the catalogue knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct EffectiveParam {
    #[ts(as = "String")]
    pub p: PName,
    pub value: String,
    pub source: Source,
    /// The catalogue's label (`SIP Server`), when it knows the P-value.
    pub label: Option<String>,
    pub page: Option<String>,
    /// Shown masked until the technician asks: typed secret by the catalogue, or carrying a
    /// secret variable (the core's rule).
    pub secret: bool,
    /// Filled in by the servers (P237, P192, P212 from the address phones reach them at),
    /// not set by any profile.
    pub server_filled: bool,
}

/// Every value of `config` with its layer, label and secrecy.
pub fn effective_params(
    config: &EffectiveConfig,
    catalog: &provdesk_core::catalog::Catalog,
    secrets: &Secrets,
) -> Vec<EffectiveParam> {
    config
        .params
        .iter()
        .map(|(p, sourced)| {
            let entry = catalog.get(*p);
            EffectiveParam {
                p: *p,
                value: sourced.value.clone(),
                source: sourced.source.clone(),
                label: entry.map(|e| e.name.clone()),
                page: entry.map(|e| e.page.clone()),
                secret: catalog.is_secret(*p) || secrets.is_secret_param(*p),
                server_filled: sourced.source == Source::Server,
            }
        })
        .collect()
}

/// One file a device is served, decoded for reading.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct FilePreview {
    /// The request name, `cfg000b82000001.xml`.
    pub name: String,
    pub kind: ArtifactKind,
    /// Relative to the desk.
    pub file: String,
    /// Encrypted on the wire; `text` is the decrypted content.
    pub encrypted: bool,
    #[ts(type = "number")]
    pub size: u64,
    #[ts(type = "number")]
    pub version: u64,
    pub text: Option<String>,
    /// `text` with every secret of the device masked: what the preview shows until revealed.
    pub masked: Option<String>,
    /// How many values `masked` hides.
    pub secrets: usize,
    /// Why there is no text (firmware, unreadable, no password).
    pub note: Option<String>,
}

/// A device's page.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct DeviceDetail {
    pub device: DeviceDto,
    /// What the device is served: with the running servers' address while they run.
    pub params: Vec<EffectiveParam>,
    pub diagnostics: Vec<Diagnostic>,
    /// The files the published build serves it.
    pub files: Vec<FilePreview>,
    /// Its newest requests, newest first, at most [`HISTORY`].
    pub history: Vec<FetchLogEntry>,
    /// Whether this desk's servers run (in this process), so `params` hold their address.
    pub serving: bool,
    /// The address phones are given (P237/P192) and why: the story Settings and the Live
    /// screen tell, from [`DeskService::phone_address`].
    pub address: crate::address::PhoneAddress,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ImportRow {
    pub line: usize,
    pub device: DeviceDto,
    /// The MAC is already in the inventory: the row updates it.
    pub update: bool,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ImportResult {
    pub rows: Vec<ImportRow>,
    pub diagnostics: Vec<Diagnostic>,
    pub new: usize,
    pub updated: usize,
    /// Rows left out because of errors.
    pub bad: usize,
    /// Bad rows and no `skip_bad`: nothing was (or would be) imported.
    pub refused: bool,
    /// How many devices were stored; `None` for a dry run or a refused import.
    pub imported: Option<usize>,
    /// Rows whose profile uses variables the row does not give: imported all the same (a
    /// CSV is a batch, the others must not wait) and held back at the build.
    pub incomplete: Vec<MissingVariables>,
    pub build: Option<BuildSummary>,
    /// What happened, in one sentence.
    pub message: String,
}

/// What a change did.
#[derive(Debug, Clone, Default)]
pub struct Changed {
    /// The devices changed (an edit that changes a MAC names both).
    pub macs: Vec<Mac>,
    /// The device as stored, for add and update.
    pub device: Option<Device>,
    /// Variables its profile uses that the added device lacks (added as incomplete).
    pub missing: Vec<String>,
    /// The rebuild, with [`Rebuild::Now`].
    pub build: Option<BuildSummary>,
}

/// The options of an import.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions<'a> {
    /// Names the file in diagnostics and messages.
    pub source: Option<&'a str>,
    /// Only report what would be imported.
    pub dry_run: bool,
    /// Import the good rows even when some are bad.
    pub skip_bad: bool,
}

/// Diagnostic kind of each variable a device's profile uses and it lacks, in the error that
/// refuses such a device (`field` names the variable).
pub const MISSING_VARIABLE: &str = "missing-variable";

fn parse_mac(text: &str) -> DeskResult<Mac> {
    Ok(text.trim().parse::<Mac>()?)
}

/// Parses every MAC a front end sends.
pub fn parse_macs(macs: &[String]) -> DeskResult<Vec<Mac>> {
    macs.iter().map(|m| parse_mac(m)).collect()
}

fn check_profile(profiles: &ProfileSet, profile: &str) -> DeskResult<()> {
    if profiles.profile_exists(profile) {
        return Ok(());
    }
    let known: Vec<&str> = profiles.profile_names().collect();
    Err(DeskError::invalid(format!(
        "profile {profile:?} does not exist (known: {})",
        known.join(", ")
    )))
}

/// Checks a device as given and makes the core's `Device`.
fn device_from_input(input: &DeviceInput, profiles: &ProfileSet) -> DeskResult<Device> {
    let mac = parse_mac(&input.mac)?;
    let model = input.model.trim().to_ascii_lowercase();
    if let Some(problem) = model_problem(&model) {
        return Err(DeskError::invalid(format!(
            "model {:?}: {problem}",
            input.model
        )));
    }
    let profile = input
        .profile
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    if let Some(profile) = profile {
        check_profile(profiles, profile)?;
    }
    let mut device = Device::new(mac, &model);
    device.profile = profile.map(str::to_string);
    device.name = input
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    for (key, value) in &input.vars {
        let key = key.trim();
        if let Some(problem) = variable_name_problem(key) {
            return Err(DeskError::invalid(format!("variable {key:?}: {problem}")));
        }
        device.vars.insert(key.to_string(), value.clone());
    }
    for (key, value) in &input.overrides {
        let name: PName = key.trim().parse()?;
        device.overrides.insert(name, value.clone());
    }
    // Before anything is stored: a device its profile cannot be built for would only be held
    // back at the next build.
    let missing = missing_device_variables(profiles, &device);
    if !missing.is_empty() && !input.incomplete {
        let diagnostics = missing
            .iter()
            .map(|name| {
                Diagnostic::error(MISSING_VARIABLE, format!("{mac} does not define {name}"))
                    .field(name.clone())
                    .device(mac)
            })
            .collect();
        return Err(DeskError {
            kind: ErrorKind::Invalid,
            message: format!(
                "profile {:?} uses the variable(s) {} that {mac} does not define",
                device.profile.as_deref().unwrap_or_default(),
                missing.join(", ")
            ),
            diagnostics,
        });
    }
    Ok(device)
}

/// The variables an error refusing a device names as missing (empty for any other error).
pub fn missing_in(error: &DeskError) -> Vec<String> {
    error
        .diagnostics
        .iter()
        .filter(|d| d.kind == MISSING_VARIABLE)
        .filter_map(|d| d.field.clone())
        .collect()
}

impl DeskService {
    /// The profile a bulk action gives its devices: `None` (or blank) for none, else one that
    /// must exist.
    fn profile_to_give(&self, profile: Option<&str>) -> DeskResult<Option<String>> {
        let profile = profile.map(str::trim).filter(|p| !p.is_empty());
        if let Some(profile) = profile {
            check_profile(&ProfileSet::load(self.root()), profile)?;
        }
        Ok(profile.map(str::to_string))
    }

    fn device(&self, mac: Mac) -> DeskResult<Device> {
        self.inventory()
            .get_device(mac)?
            .ok_or_else(|| DeskError::not_found(format!("{mac} is not in the inventory")))
    }

    /// After a change is in the inventory: rebuild (or not) and say so.
    fn changed(&self, mut changed: Changed, rebuild: Rebuild) -> DeskResult<Changed> {
        let build = match rebuild {
            Rebuild::Now => Some(self.rebuild_devices(&changed.macs)),
            Rebuild::Later => None,
        };
        let all = changed.macs.len() > LISTED_CHANGES;
        self.events().emit(DeskEvent::DevicesChanged {
            macs: if all {
                Vec::new()
            } else {
                changed.macs.clone()
            },
            all,
        });
        changed.build = build.transpose()?;
        Ok(changed)
    }

    /// Every device (inventory and discovered), each with its provisioning status from the
    /// published build and its newest requests. One fetch-log query and one effective
    /// configuration per device, however many there are.
    pub fn list_devices(&self, reveal: Reveal) -> DeskResult<Vec<DeviceDto>> {
        let devices = self.inventory().list_devices()?;
        let mut logs = self
            .inventory()
            .recent_fetches_by_device(STATUS_LOG_DEPTH)?;
        let mut events = self
            .inventory()
            .recent_device_events_by_device(crate::timeline::EVENT_DEPTH)?;
        let targets = self.firmware_targets();
        let manifest = self.manifest();
        let profiles = ProfileSet::load(self.root());
        let options = self.served_options();
        Ok(devices
            .iter()
            .map(|d| {
                let secrets = device_secrets(&profiles, d, self.catalog(), &options);
                let log = logs.remove(&d.mac).unwrap_or_default();
                let events = events.remove(&d.mac).unwrap_or_default();
                let rung = self.device_rung(d, log, events, &manifest, &targets);
                DeviceDto::new(d, &secrets).with_status(rung.status, &secrets, reveal)
            })
            .collect())
    }

    /// A device's page: what it is served (values with their layer, the servers' values
    /// marked, the files decoded), its problems and its requests.
    pub fn device_detail(&self, mac: Mac, reveal: Reveal) -> DeskResult<DeviceDetail> {
        let device = self.device(mac)?;
        let options = self.served_options();
        let profiles = ProfileSet::load(self.root());
        let (config, mut diagnostics) = device_config(&profiles, &device, &options);
        diagnostics.extend(profiles.diagnostics().iter().cloned());
        diagnostics.extend(self.catalog_diagnostics().iter().cloned());
        diagnostics.extend(
            self.catalog()
                .check_config(&config, &device.model, Some(device.mac)),
        );
        let secrets = secrets_of_config(&profiles, &device, self.catalog(), &options, &config);
        let history = self.inventory().fetch_log(&FetchLogQuery {
            mac: Some(device.mac),
            since: None,
            limit: Some(HISTORY.max(STATUS_LOG_DEPTH)),
        })?;
        let manifest = self.manifest();
        let events = self.inventory().device_events(&DeviceEventQuery {
            mac: Some(device.mac),
            limit: Some(crate::timeline::EVENT_DEPTH),
            ..DeviceEventQuery::default()
        })?;
        let status = self
            .device_rung(
                &device,
                history[..history.len().min(STATUS_LOG_DEPTH)].to_vec(),
                events,
                &manifest,
                &self.firmware_targets(),
            )
            .status;
        if reveal == Reveal::Masked {
            // A message may quote a value (a validation error, a variable's text).
            for d in &mut diagnostics {
                d.message = secrets.redact(&d.message);
            }
        }
        let password = config.non_empty(pvalues::XML_PASSWORD).map(str::to_string);
        let files = self.previews(&manifest, &device, password.as_deref(), &secrets);
        Ok(DeviceDetail {
            device: DeviceDto::new(&device, &secrets).with_status(status, &secrets, reveal),
            params: effective_params(&config, self.catalog(), &secrets),
            diagnostics,
            files,
            history: history.into_iter().take(HISTORY).collect(),
            serving: self.is_serving(),
            address: self.phone_address(),
        })
    }

    /// Every file the manifest serves this device, decoded by the core: the binary file as
    /// `P-value = value` lines, the XML decrypted with the device's own P1359, its secrets
    /// masked in `masked`.
    fn previews(
        &self,
        manifest: &Manifest,
        device: &Device,
        password: Option<&str>,
        secrets: &Secrets,
    ) -> Vec<FilePreview> {
        // The catalogue's secrets and every value of this device's that carries a secret
        // variable: what its values table masks.
        let secret = |p| self.catalog().is_secret(p) || secrets.is_secret_param(p);
        let mut out = Vec::new();
        for (name, entry) in &manifest.entries {
            let mine = entry.mac == Some(device.mac)
                || (entry.kind == ArtifactKind::Firmware
                    && entry.model.as_deref() == Some(device.model.as_str()));
            if !mine {
                continue;
            }
            let decoded = if entry.kind == ArtifactKind::Firmware {
                // Firmware is not read: it can be tens of megabytes and says nothing readable.
                preview::decode_masking(entry.kind, &[], None, &secret)
            } else {
                match std::fs::read(self.root().join(&entry.file)) {
                    Ok(bytes) => preview::decode_masking(entry.kind, &bytes, password, &secret),
                    Err(e) => preview::Preview {
                        note: Some(format!("cannot read {}: {e}; build again", entry.file)),
                        ..preview::Preview::default()
                    },
                }
            };
            out.push(FilePreview {
                name: name.clone(),
                kind: entry.kind,
                file: entry.file.clone(),
                encrypted: entry.encrypted,
                size: entry.size,
                version: entry.version,
                text: decoded.text,
                masked: decoded.masked,
                secrets: decoded.secrets,
                note: decoded.note,
            });
        }
        out
    }

    /// Adds a device. An inventory device with that MAC is refused unless `replace` (a
    /// discovered one is taken over); so is one its profile cannot be built for unless
    /// `input.incomplete` (see [`missing_in`]).
    pub fn add_device(
        &self,
        input: &DeviceInput,
        replace: bool,
        rebuild: Rebuild,
    ) -> DeskResult<Changed> {
        let profiles = ProfileSet::load(self.root());
        let device = device_from_input(input, &profiles)?;
        if let Some(existing) = self.inventory().get_device(device.mac)?
            && existing.state == DeviceState::Inventory
            && !replace
        {
            return Err(DeskError::conflict(format!(
                "{} is already in the inventory",
                device.mac
            )));
        }
        self.inventory().upsert_device(&device)?;
        let missing = missing_device_variables(&profiles, &device);
        self.changed(
            Changed {
                macs: vec![device.mac],
                device: Some(device),
                missing,
                build: None,
            },
            rebuild,
        )
    }

    /// Saves an edited device (the checks of adding). A changed MAC is an add plus a removal.
    pub fn update_device(
        &self,
        original: Mac,
        input: &DeviceInput,
        rebuild: Rebuild,
    ) -> DeskResult<Changed> {
        let profiles = ProfileSet::load(self.root());
        let device = device_from_input(input, &profiles)?;
        let mut macs = vec![device.mac];
        if device.mac != original {
            if self.inventory().get_device(device.mac)?.is_some() {
                return Err(DeskError::conflict(format!(
                    "{} is already in the inventory; pick another MAC or edit that device",
                    device.mac
                )));
            }
            self.device(original)?;
            self.inventory().upsert_device(&device)?;
            self.inventory().remove_device(original)?;
            macs.push(original);
        } else {
            self.device(original)?;
            self.inventory().upsert_device(&device)?;
        }
        let missing = missing_device_variables(&profiles, &device);
        self.changed(
            Changed {
                macs,
                device: Some(device),
                missing,
                build: None,
            },
            rebuild,
        )
    }

    /// Removes devices (their fetch history stays). Those already gone are skipped; when none
    /// was there, that is an error.
    pub fn remove_devices(&self, macs: &[Mac], rebuild: Rebuild) -> DeskResult<Changed> {
        let mut removed = Vec::new();
        for mac in macs {
            if self.inventory().remove_device(*mac)? {
                removed.push(*mac);
            }
        }
        if removed.is_empty() && !macs.is_empty() {
            let list: Vec<String> = macs.iter().map(Mac::to_string).collect();
            return Err(DeskError::not_found(format!(
                "{} {} not in the inventory",
                list.join(", "),
                if list.len() == 1 { "is" } else { "are" }
            )));
        }
        self.changed(
            Changed {
                macs: removed,
                ..Changed::default()
            },
            rebuild,
        )
    }

    /// Gives every listed device `profile` (`None` or blank clears it) in one transaction.
    pub fn assign_profile(
        &self,
        macs: &[Mac],
        profile: Option<&str>,
        rebuild: Rebuild,
    ) -> DeskResult<Changed> {
        let profile = self.profile_to_give(profile)?;
        let mut devices = Vec::new();
        for mac in macs {
            let mut device = self.device(*mac)?;
            device.profile = profile.clone();
            devices.push(device);
        }
        self.inventory().import_devices(&devices)?;
        self.changed(
            Changed {
                macs: macs.to_vec(),
                ..Changed::default()
            },
            rebuild,
        )
    }

    /// Imports a device list (a header row with `mac` and `model`, optionally `profile` and
    /// `name`, every other column a variable). Every bad row is reported; nothing is imported
    /// while there are bad rows unless `skip_bad`; a dry run only reports.
    pub fn import_devices(
        &self,
        text: &str,
        options: ImportOptions<'_>,
        rebuild: Rebuild,
    ) -> DeskResult<ImportResult> {
        let profiles = ProfileSet::load(self.root());
        let (rows, mut diagnostics) =
            parse_devices_csv(text, &|name| profiles.profile_exists(name));
        if let Some(source) = options.source {
            for d in &mut diagnostics {
                d.file = Some(source.into());
            }
        }
        let bad = diagnostics.iter().filter(|d| d.is_error()).count();
        let existing: BTreeSet<Mac> = self
            .inventory()
            .list_devices()?
            .into_iter()
            .filter(|d| d.state == DeviceState::Inventory)
            .map(|d| d.mac)
            .collect();
        let devices: Vec<Device> = rows.iter().map(|(_, d)| d.clone()).collect();
        let build_options = self.served_options();
        let incomplete: Vec<MissingVariables> = devices
            .iter()
            .map(|d| MissingVariables {
                mac: d.mac,
                missing: missing_device_variables(&profiles, d),
            })
            .filter(|m| !m.missing.is_empty())
            .collect();
        let rows: Vec<ImportRow> = rows
            .into_iter()
            .map(|(line, device)| {
                let secrets = device_secrets(&profiles, &device, self.catalog(), &build_options);
                ImportRow {
                    line,
                    update: existing.contains(&device.mac),
                    device: DeviceDto::new(&device, &secrets),
                }
            })
            .collect();
        let updated = rows.iter().filter(|r| r.update).count();
        let new = rows.len() - updated;
        let good = rows.len();
        let mut result = ImportResult {
            new,
            updated,
            bad,
            refused: false,
            imported: None,
            incomplete,
            build: None,
            message: String::new(),
            diagnostics,
            rows,
        };
        if bad > 0 && !options.skip_bad {
            let within = options
                .source
                .map(|s| format!(" in {s}"))
                .unwrap_or_default();
            result.refused = true;
            result.message = format!(
                "{bad} problem(s){within}: nothing imported (fix the rows, or skip the bad rows to import the {good} good row(s))"
            );
            return Ok(result);
        }
        if options.dry_run {
            let skipping = if bad > 0 {
                format!(", skipping {bad} bad row(s)")
            } else {
                String::new()
            };
            result.message = format!(
                "dry run: would import {good} device(s) ({new} new, {updated} updated){skipping}"
            );
            return Ok(result);
        }
        let count = self.inventory().import_devices(&devices)?;
        let changed = self.changed(
            Changed {
                macs: devices.iter().map(|d| d.mac).collect(),
                ..Changed::default()
            },
            rebuild,
        )?;
        result.build = changed.build;
        result.imported = Some(count);
        let skipped = if bad > 0 {
            format!(", skipped {bad} bad row(s)")
        } else {
            String::new()
        };
        result.message =
            format!("imported {count} device(s) ({new} new, {updated} updated){skipped}");
        Ok(result)
    }

    /// What enrolling `macs` into `profile` would leave them lacking: the variables the
    /// profile uses that each device does not define (only devices that lack some are
    /// listed), asked before enrolling so the technician knows which phones will need
    /// attention.
    pub fn enroll_check(
        &self,
        macs: &[Mac],
        profile: Option<&str>,
    ) -> DeskResult<Vec<MissingVariables>> {
        let profile = self.profile_to_give(profile)?;
        let profiles = ProfileSet::load(self.root());
        let mut out = Vec::new();
        for mac in macs {
            let mut device = self.device(*mac)?;
            if profile.is_some() {
                device.profile = profile.clone();
            }
            let missing = missing_device_variables(&profiles, &device);
            if !missing.is_empty() {
                out.push(MissingVariables { mac: *mac, missing });
            }
        }
        Ok(out)
    }

    /// Moves discovered devices into the inventory, with `profile` when given. A device that
    /// lacks variables the profile uses is enrolled all the same and held back at the build
    /// ("needs attention"); [`DeskService::enroll_check`] says so beforehand.
    pub fn enroll_devices(
        &self,
        macs: &[Mac],
        profile: Option<&str>,
        rebuild: Rebuild,
    ) -> DeskResult<Changed> {
        let profile = self.profile_to_give(profile)?;
        for mac in macs {
            self.inventory().enroll(*mac, profile.as_deref())?;
        }
        self.changed(
            Changed {
                macs: macs.to_vec(),
                ..Changed::default()
            },
            rebuild,
        )
    }

    /// A device's effective configuration in Grandstream's own format, for loading by hand
    /// through the phone's web UI (passwords in clear), and the warnings about it. A device
    /// with configuration errors is refused with every diagnostic.
    pub fn export_device(
        &self,
        mac: Mac,
        format: ExportFormat,
    ) -> DeskResult<(String, Vec<Diagnostic>)> {
        let Some(device) = self.inventory().get_device(mac)? else {
            return Err(DeskError::not_found(format!(
                "{mac} is not in the inventory"
            )));
        };
        let profiles = ProfileSet::load(self.root());
        let options: BuildOptions = self.served_options();
        match export_device(&profiles, self.catalog(), &device, &options, format) {
            Ok(done) => Ok(done),
            Err(ExportError::Diagnostics(diagnostics)) => Err(DeskError::diagnostics(
                format!("{mac} has configuration errors; nothing exported"),
                diagnostics,
            )),
            Err(e) => Err(DeskError::invalid(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provdesk_core::inventory::Sighting;

    const CSV: &str = "mac,model,profile,name,ext,sip_secret\n\
        00:0b:82:00:00:01,GXP2170,office,Reception,201,sip-pw-1\n\
        00:0b:82:00:00:02,GXP2170,,Sales,202,sip-pw-2\n";

    fn desk() -> (tempfile::TempDir, DeskService) {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        let result = desk
            .import_devices(CSV, ImportOptions::default(), Rebuild::Now)
            .unwrap();
        assert_eq!(result.imported, Some(2), "{}", result.message);
        (dir, desk)
    }

    fn mac(text: &str) -> Mac {
        text.parse().unwrap()
    }

    fn entry(ts: i64, mac: Mac, name: &str, status: &str) -> FetchLogEntry {
        FetchLogEntry {
            id: None,
            ts,
            protocol: "http".into(),
            peer: "127.0.0.1:5060".into(),
            name: name.into(),
            mac: Some(mac),
            user_agent: None,
            status: status.into(),
            reason: Some("unknown device".into()),
            bytes: 0,
            duration_ms: 1,
            artifact_hash: None,
        }
    }

    fn input(mac: &str, vars: &[(&str, &str)]) -> DeviceInput {
        DeviceInput {
            mac: mac.into(),
            model: "GXP2170".into(),
            profile: Some("office".into()),
            name: None,
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            overrides: BTreeMap::new(),
            incomplete: false,
        }
    }

    #[test]
    fn file_previews_mask_secrets_and_keep_the_clear_text_for_reveal() {
        let (_dir, desk) = desk();
        let detail = desk
            .device_detail(mac("000b82000001"), Reveal::Masked)
            .unwrap();
        let xml = detail
            .files
            .iter()
            .find(|f| f.kind == ArtifactKind::DeviceXml)
            .expect("the device's XML is previewed");
        let text = xml.text.as_deref().unwrap();
        let masked = xml.masked.as_deref().unwrap();
        assert!(text.contains("<P34>sip-pw-1</P34>"), "{text}");
        assert!(masked.contains("<P34>••••••</P34>"), "{masked}");
        assert!(!masked.contains("sip-pw-1"));
        assert!(
            masked.contains("<P35>201</P35>"),
            "the user ID is no secret"
        );
        assert!(masked.contains("<P1359>••••••</P1359>"), "{masked}");
        assert_eq!(xml.secrets, 2);
        assert!(detail.device.secret_vars["sip_secret"]);
        assert!(!detail.device.secret_vars["ext"]);
        assert!(!detail.serving);
    }

    #[test]
    fn values_the_servers_fill_in_are_marked_with_the_settings_address() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("desk");
        DeskService::open(&root).unwrap();
        let settings = std::fs::read_to_string(root.join("provdesk.toml")).unwrap();
        let edited = settings.replacen(
            "[server]\n",
            "[server]\npublic_host = \"prov.example.com\"\n",
            1,
        );
        assert_ne!(settings, edited, "the sample has a [server] table");
        std::fs::write(root.join("provdesk.toml"), edited).unwrap();
        let desk = DeskService::open(&root).unwrap();
        desk.import_devices(CSV, ImportOptions::default(), Rebuild::Now)
            .unwrap();
        let detail = desk
            .device_detail(mac("000b82000001"), Reveal::Masked)
            .unwrap();
        let p237 = detail
            .params
            .iter()
            .find(|p| p.p.to_string() == "P237")
            .expect("P237 is filled");
        assert!(p237.server_filled);
        assert!(p237.value.starts_with("prov.example.com"), "{}", p237.value);
        assert_eq!(detail.address.p237.as_deref(), Some(p237.value.as_str()));
        assert_eq!(detail.address, desk.phone_address());
        let p35 = detail.params.iter().find(|p| p.p.to_string() == "P35");
        assert!(p35.is_some_and(|p| !p.server_filled));
    }

    /// While this desk's servers run, a device's page shows what they serve: P237/P212 with
    /// the address they listen on, marked server-filled.
    #[test]
    fn while_serving_the_page_shows_the_servers_address() {
        let (_dir, desk) = desk();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let started = runtime
            .block_on(desk.start_serving(provdesk_serve::service::ServeOptions {
                http: Some("127.0.0.1:0".into()),
                https: Some("off".into()),
                tftp: Some("off".into()),
                pnp: None,
                dhcp: None,
                syslog: Some("127.0.0.1:0".into()),
            }))
            .unwrap();
        let port = started.addresses[0].1.port();
        let syslog = started.syslog_url.clone().expect("the receiver runs");
        let detail = desk
            .device_detail(mac("000b82000001"), Reveal::Masked)
            .unwrap();
        runtime.block_on(desk.stop_serving()).unwrap();
        assert!(detail.serving);
        let p237 = detail
            .params
            .iter()
            .find(|p| p.p.to_string() == "P237")
            .expect("P237 is filled while serving");
        assert!(p237.server_filled);
        assert!(
            p237.value.ends_with(&format!(":{port}")),
            "{} (port {port})",
            p237.value
        );
        let p212 = detail.params.iter().find(|p| p.p.to_string() == "P212");
        assert!(p212.is_some_and(|p| p.server_filled && p.value == "1"));
        // The syslog receiver, and the level, where the profiles leave them empty.
        let p207 = detail.params.iter().find(|p| p.p.to_string() == "P207");
        assert!(
            p207.is_some_and(|p| p.server_filled && syslog == format!("udp://{}", p.value)),
            "{p207:?} for {syslog}"
        );
        let p208 = detail.params.iter().find(|p| p.p.to_string() == "P208");
        assert!(p208.is_some_and(|p| p.server_filled && p.value == "2"));
        assert_eq!(detail.address.p237.as_deref(), Some(p237.value.as_str()));
        assert_eq!(
            detail.address.source,
            crate::address::AddressSource::ListenAddress
        );
        // Stopped: the settings (no public_host in the sample) fill nothing.
        let after = desk
            .device_detail(mac("000b82000001"), Reveal::Masked)
            .unwrap();
        assert!(!after.serving && after.address.p237.is_none());
        assert!(!after.params.iter().any(|p| p.p.to_string() == "P207"));
        assert_eq!(after.address.source, crate::address::AddressSource::Unknown);
    }

    #[test]
    fn a_device_its_profile_cannot_be_built_for_is_refused_unless_incomplete() {
        let (_dir, desk) = desk();
        let mut events = desk.events().subscribe();
        let mut form = input("00:0b:82:00:00:09", &[("ext", "209")]);
        let err = desk.add_device(&form, false, Rebuild::Now).unwrap_err();
        assert!(
            err.message
                .contains("variable(s) sip_secret that 000b82000009"),
            "{}",
            err.message
        );
        assert_eq!(missing_in(&err), ["sip_secret"]);
        assert!(
            desk.inventory()
                .get_device(mac("000b82000009"))
                .unwrap()
                .is_none()
        );
        form.incomplete = true;
        let changed = desk.add_device(&form, false, Rebuild::Now).unwrap();
        assert_eq!(changed.missing, ["sip_secret"]);
        let summary = changed.build.unwrap();
        assert!(summary.published, "{:?}", summary.diagnostics);
        assert_eq!(summary.held.len(), 1);
        let mut saw_change = false;
        while let Ok(event) = events.try_recv() {
            saw_change |= event
                == DeskEvent::DevicesChanged {
                    macs: vec![mac("000b82000009")],
                    all: false,
                };
        }
        assert!(saw_change, "the change is announced");
        let listed = desk.list_devices(Reveal::Masked).unwrap();
        let held = listed
            .iter()
            .find(|d| d.mac == mac("000b82000009"))
            .unwrap();
        assert_eq!(held.status_label.as_deref(), Some("needs attention"));

        // Already there: refused unless replacing.
        let err = desk.add_device(&form, false, Rebuild::Later).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
        assert_eq!(err.message, "000b82000009 is already in the inventory");
        form.vars.insert("sip_secret".into(), "pw".into());
        let changed = desk.add_device(&form, true, Rebuild::Later).unwrap();
        assert!(changed.missing.is_empty() && changed.build.is_none());
    }

    #[test]
    fn an_edit_that_changes_the_mac_adds_and_removes() {
        let (_dir, desk) = desk();
        let mut form = input("000b82000003", &[("ext", "201"), ("sip_secret", "pw")]);
        form.name = Some(" Front desk ".into());
        let changed = desk
            .update_device(mac("000b82000001"), &form, Rebuild::Now)
            .unwrap();
        assert_eq!(changed.macs, [mac("000b82000003"), mac("000b82000001")]);
        assert!(
            desk.inventory()
                .get_device(mac("000b82000001"))
                .unwrap()
                .is_none()
        );
        let detail = desk
            .device_detail(mac("000b82000003"), Reveal::Masked)
            .unwrap();
        assert_eq!(detail.device.name.as_deref(), Some("Front desk"));
        let err = desk
            .update_device(
                mac("000b82000003"),
                &input("000b82000002", &[("ext", "1"), ("sip_secret", "pw")]),
                Rebuild::Now,
            )
            .unwrap_err();
        assert!(
            err.message.contains("already in the inventory"),
            "{}",
            err.message
        );
    }

    #[test]
    fn bulk_assign_gives_and_clears_a_profile_and_refuses_unknown_ones() {
        let (_dir, desk) = desk();
        let macs = [mac("000b82000001"), mac("000b82000002")];
        let changed = desk
            .assign_profile(&macs, Some(" office "), Rebuild::Now)
            .unwrap();
        assert!(changed.build.unwrap().published);
        for m in macs {
            assert_eq!(desk.device(m).unwrap().profile.as_deref(), Some("office"));
        }
        let err = desk
            .assign_profile(&macs, Some("nope"), Rebuild::Now)
            .unwrap_err();
        assert!(
            err.message.contains("profile \"nope\" does not exist"),
            "{}",
            err.message
        );
        desk.assign_profile(&macs[..1], Some("  "), Rebuild::Now)
            .unwrap();
        assert_eq!(desk.device(macs[0]).unwrap().profile, None);
    }

    #[test]
    fn removing_skips_devices_already_gone_and_fails_when_none_was_there() {
        let (_dir, desk) = desk();
        let changed = desk
            .remove_devices(&[mac("000b82000001"), mac("000b820000ff")], Rebuild::Now)
            .unwrap();
        assert_eq!(changed.macs, [mac("000b82000001")]);
        let err = desk
            .remove_devices(&[mac("000b82000001")], Rebuild::Later)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert_eq!(err.message, "000b82000001 is not in the inventory");
    }

    #[test]
    fn an_import_with_bad_rows_imports_nothing_unless_told() {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        let csv = format!(
            "{CSV}zz,GXP2170,office,Bad,203,s3\n00:0b:82:00:00:04,GXP2170,office,NoExt,,\n"
        );
        let options = |dry_run, skip_bad| ImportOptions {
            source: Some("order.csv"),
            dry_run,
            skip_bad,
        };
        let refused = desk
            .import_devices(&csv, options(false, false), Rebuild::Now)
            .unwrap();
        assert!(refused.refused);
        assert_eq!(refused.imported, None);
        assert_eq!((refused.rows.len(), refused.bad), (3, 1));
        assert_eq!(refused.diagnostics[0].line, Some(4));
        assert!(
            refused
                .message
                .starts_with("1 problem(s) in order.csv: nothing imported"),
            "{}",
            refused.message
        );
        let dry = desk
            .import_devices(&csv, options(true, true), Rebuild::Now)
            .unwrap();
        assert_eq!(
            dry.message,
            "dry run: would import 3 device(s) (3 new, 0 updated), skipping 1 bad row(s)"
        );
        assert!(desk.inventory().list_devices().unwrap().is_empty());
        let done = desk
            .import_devices(&csv, options(false, true), Rebuild::Now)
            .unwrap();
        assert_eq!(done.imported, Some(3));
        assert_eq!(
            done.incomplete,
            [MissingVariables {
                mac: mac("000b82000004"),
                missing: vec!["ext".into(), "sip_secret".into()]
            }]
        );
        assert!(done.build.is_some_and(|b| b.published));
        let again = desk
            .import_devices(&csv, options(true, true), Rebuild::Now)
            .unwrap();
        assert_eq!((again.new, again.updated), (0, 3));
    }

    #[test]
    fn enrolling_a_discovered_phone_makes_it_an_inventory_device_with_history() {
        let (_dir, desk) = desk();
        let phone = mac("000b82abcdef");
        let mut sighting = Sighting::new(phone, 1_700_000_000_000);
        sighting.model = Some("GXP2135".into());
        desk.inventory().record_sighting(&sighting).unwrap();
        desk.inventory()
            .append_fetch_log(&[entry(
                1_700_000_000_000,
                phone,
                "cfg000b82abcdef.xml",
                "404",
            )])
            .unwrap();
        let listed = desk.list_devices(Reveal::Masked).unwrap();
        let discovered = listed.iter().find(|d| d.mac == phone).unwrap();
        assert_eq!(discovered.state, DeviceState::Discovered);
        assert_eq!(discovered.status, Some(ProvisioningStatus::Requesting));
        assert!(
            desk.enroll_devices(&[phone], Some("nope"), Rebuild::Now)
                .is_err()
        );
        assert_eq!(
            desk.enroll_check(&[phone], Some("office")).unwrap(),
            [MissingVariables {
                mac: phone,
                missing: vec!["ext".into(), "sip_secret".into()]
            }]
        );
        assert!(desk.enroll_check(&[phone], None).unwrap().is_empty());
        let changed = desk.enroll_devices(&[phone], None, Rebuild::Now).unwrap();
        assert!(changed.build.unwrap().published);
        let detail = desk.device_detail(phone, Reveal::Masked).unwrap();
        assert_eq!(detail.device.state, DeviceState::Inventory);
        assert_eq!(detail.device.model, "gxp2135");
        assert_eq!(detail.history.len(), 1);
        assert_eq!(detail.history[0].reason.as_deref(), Some("unknown device"));
        assert!(
            detail.files.iter().any(|f| f.name == "cfg000b82abcdef.xml"),
            "its files are built on enrolment"
        );
    }

    #[test]
    fn export_refuses_a_device_with_errors_and_names_them() {
        let (_dir, desk) = desk();
        let (text, _) = desk
            .export_device(mac("000b82000001"), ExportFormat::Text)
            .unwrap();
        assert!(text.contains("P35 = 201"), "{text}");
        let form = DeviceInput {
            incomplete: true,
            ..input("000b82000005", &[])
        };
        desk.add_device(&form, false, Rebuild::Later).unwrap();
        let err = desk
            .export_device(mac("000b82000005"), ExportFormat::Xml)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Diagnostics);
        assert!(err.message.contains("nothing exported"));
        assert!(!err.diagnostics.is_empty());
    }

    /// A desk of 1,000 devices, each with a few requests: the list (statuses, secret flags)
    /// stays well under a second in a debug build.
    #[test]
    fn a_thousand_devices_list_fast_with_their_status() {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        let mut csv = String::from("mac,model,profile,name,ext,sip_secret\n");
        for n in 0..1000u32 {
            csv.push_str(&format!(
                "000b82{n:06x},GXP2170,office,Desk {n},{},pw-{n}\n",
                1000 + n
            ));
        }
        let result = desk
            .import_devices(&csv, ImportOptions::default(), Rebuild::Now)
            .unwrap();
        assert_eq!(result.imported, Some(1000), "{}", result.message);
        let manifest = desk.manifest();
        let mut log = Vec::new();
        for n in 0..1000u32 {
            let mac = mac(&format!("000b82{n:06x}"));
            let name = format!("cfg{mac}.xml");
            let mut fetched = entry(1_700_000_000_000 + i64::from(n), mac, &name, "200");
            fetched.artifact_hash = manifest.get(&name).map(|e| e.hash.clone());
            log.push(entry(1_699_999_999_000, mac, &format!("cfg{mac}"), "404"));
            log.push(fetched);
        }
        desk.inventory().append_fetch_log(&log).unwrap();

        let started = std::time::Instant::now();
        let listed = desk.list_devices(Reveal::Masked).unwrap();
        let elapsed = started.elapsed();
        println!("listed 1,000 devices in {elapsed:?}");
        assert_eq!(listed.len(), 1000);
        assert!(
            listed
                .iter()
                .all(|d| d.status == Some(ProvisioningStatus::UpToDate)),
            "{:?}",
            listed[0].status
        );
        assert!(listed.iter().all(|d| d.secret_vars["sip_secret"]));
        assert!(
            elapsed < std::time::Duration::from_secs(3),
            "listing 1,000 devices took {elapsed:?}"
        );
    }
}
