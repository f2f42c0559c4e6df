//! Devices: list, detail (effective config with layers, file previews, history), add, edit,
//! remove, bulk profile assignment, CSV import and enrolment. Mirrors `provdesk device …`.

use std::collections::BTreeSet;

use provdesk_core::build::{ArtifactKind, device_config, missing_device_variables};
use provdesk_core::inventory::{
    Device, DeviceState, FetchLogQuery, model_problem, parse_devices_csv, variable_name_problem,
};
use provdesk_core::preview;
use provdesk_core::profile::ProfileSet;
use provdesk_core::secrets::{Secrets, device_secrets};
use provdesk_core::{Mac, PName};
use tauri::State;

use crate::dto::{
    BuildSummary, DeviceDetail, DeviceDto, DeviceInput, FilePreview, ImportResult, ImportRow,
    MissingVariables, effective_params,
};
use crate::error::{ApiError, ApiResult};
use crate::session::{AppState, Session};

/// How many fetches the device page shows.
const HISTORY: usize = 200;

#[tauri::command]
pub async fn list_devices(state: State<'_, AppState>) -> ApiResult<Vec<DeviceDto>> {
    let session = state.session();
    let devices = session.inventory().list_devices()?;
    let profiles = ProfileSet::load(session.desk().root());
    let options = session.options();
    Ok(devices
        .iter()
        .map(|d| {
            let secrets = device_secrets(&profiles, d, session.catalog(), &options);
            DeviceDto::with_secrets(d, &secrets)
        })
        .collect())
}

fn parse_mac(text: &str) -> ApiResult<Mac> {
    Ok(text.parse::<Mac>()?)
}

fn get_device(session: &Session, mac: Mac) -> ApiResult<Device> {
    session.inventory().get_device(mac)?.ok_or_else(|| {
        ApiError::not_found(format!(
            "{mac} is not in the inventory; it may have been removed, reload the device list"
        ))
    })
}

#[tauri::command]
pub async fn device_detail(state: State<'_, AppState>, mac: String) -> ApiResult<DeviceDetail> {
    let session = state.session();
    let device = get_device(&session, parse_mac(&mac)?)?;
    detail(&session, device)
}

pub fn detail(session: &Session, device: Device) -> ApiResult<DeviceDetail> {
    let profiles = ProfileSet::load(session.desk().root());
    let (config, mut diagnostics) = device_config(&profiles, &device, &session.options());
    diagnostics.extend(profiles.diagnostics().iter().cloned());
    let password = config
        .non_empty(provdesk_core::build::pvalues::XML_PASSWORD)
        .map(str::to_string);
    let secrets = device_secrets(&profiles, &device, session.catalog(), &session.options());
    let files = previews(session, &device, password.as_deref(), &secrets)?;
    let history = session.inventory().fetch_log(&FetchLogQuery {
        mac: Some(device.mac),
        since: None,
        limit: Some(HISTORY),
    })?;
    Ok(DeviceDetail {
        device: DeviceDto::with_secrets(&device, &secrets),
        params: effective_params(&config, session.catalog(), &secrets),
        diagnostics,
        files,
        history,
    })
}

/// Every file the manifest serves this device, decoded by the core: the binary file as
/// `P-value = value` lines, the XML decrypted with the device's own P1359, secrets masked in
/// `masked`.
fn previews(
    session: &Session,
    device: &Device,
    password: Option<&str>,
    secrets: &Secrets,
) -> ApiResult<Vec<FilePreview>> {
    // The catalogue's secrets, and every value of this device's that carries a secret
    // variable (an account name made from it): what its values table masks.
    let secret = |p| session.catalog().is_secret(p) || secrets.is_secret_param(p);
    let manifest = session.manifest();
    let root = session.desk().root();
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
            let path = root.join(&entry.file);
            match std::fs::read(&path) {
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
    Ok(out)
}

/// Checks a form's device the way `provdesk device add` does, and makes the core's `Device`.
fn device_from_input(input: &DeviceInput, profiles: &ProfileSet) -> ApiResult<Device> {
    let mac = parse_mac(input.mac.trim())?;
    let model = input.model.trim().to_ascii_lowercase();
    if let Some(problem) = model_problem(&model) {
        return Err(ApiError::invalid(format!(
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
            return Err(ApiError::invalid(format!("variable {key:?}: {problem}")));
        }
        device.vars.insert(key.to_string(), value.clone());
    }
    for (key, value) in &input.overrides {
        let name: PName = key.trim().parse()?;
        device.overrides.insert(name, value.clone());
    }
    // Before anything is stored, as `provdesk device add` does: a device its profile cannot
    // be built for would only be held back at the next build.
    let missing = missing_device_variables(profiles, &device);
    if !missing.is_empty() && !input.incomplete {
        return Err(ApiError::invalid(format!(
            "profile {:?} uses the variable(s) {} that {mac} does not define: add them under Variables, or save it as incomplete (it then needs attention and gets no config until they are set)",
            device.profile.as_deref().unwrap_or_default(),
            missing.join(", ")
        )));
    }
    Ok(device)
}

/// The profile a bulk action gives its devices: `None` (or blank) for none, else a profile
/// that must exist.
fn profile_to_give(session: &Session, profile: Option<String>) -> ApiResult<Option<String>> {
    let profile = profile
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    if let Some(profile) = &profile {
        check_profile(&ProfileSet::load(session.desk().root()), profile)?;
    }
    Ok(profile)
}

fn parse_macs(macs: &[String]) -> ApiResult<Vec<Mac>> {
    macs.iter().map(|m| parse_mac(m)).collect()
}

fn check_profile(profiles: &ProfileSet, profile: &str) -> ApiResult<()> {
    if profiles.profile_exists(profile) {
        return Ok(());
    }
    let known: Vec<&str> = profiles.profile_names().collect();
    Err(ApiError::invalid(format!(
        "profile {profile:?} does not exist (known: {}); create it on the Profiles screen",
        known.join(", ")
    )))
}

/// Adds a device; with `replace`, an existing inventory device with that MAC is overwritten
/// (its seen fields stay). Rebuilds its files.
#[tauri::command]
pub async fn add_device(
    state: State<'_, AppState>,
    device: DeviceInput,
    replace: bool,
) -> ApiResult<BuildSummary> {
    let session = state.session();
    let profiles = ProfileSet::load(session.desk().root());
    let device = device_from_input(&device, &profiles)?;
    if let Some(existing) = session.inventory().get_device(device.mac)?
        && existing.state == DeviceState::Inventory
        && !replace
    {
        return Err(ApiError::invalid(format!(
            "{} is already in the inventory; open it from the list to edit it",
            device.mac
        )));
    }
    session.inventory().upsert_device(&device)?;
    session.rebuild_devices(&[device.mac])
}

/// Saves an edited device (same checks as adding). A changed MAC is an add plus a removal.
#[tauri::command]
pub async fn update_device(
    state: State<'_, AppState>,
    original_mac: String,
    device: DeviceInput,
) -> ApiResult<BuildSummary> {
    let session = state.session();
    let original = parse_mac(&original_mac)?;
    let profiles = ProfileSet::load(session.desk().root());
    let device = device_from_input(&device, &profiles)?;
    let mut macs = vec![device.mac];
    if device.mac != original {
        if session.inventory().get_device(device.mac)?.is_some() {
            return Err(ApiError::invalid(format!(
                "{} is already in the inventory; pick another MAC or edit that device",
                device.mac
            )));
        }
        session.inventory().upsert_device(&device)?;
        session.inventory().remove_device(original)?;
        macs.push(original);
    } else {
        get_device(&session, original)?;
        session.inventory().upsert_device(&device)?;
    }
    session.rebuild_devices(&macs)
}

#[tauri::command]
pub async fn remove_devices(
    state: State<'_, AppState>,
    macs: Vec<String>,
) -> ApiResult<BuildSummary> {
    let session = state.session();
    let macs = parse_macs(&macs)?;
    for mac in &macs {
        session.inventory().remove_device(*mac)?;
    }
    session.rebuild_devices(&macs)
}

/// Gives every listed device `profile` (`None` clears it) in one transaction.
#[tauri::command]
pub async fn assign_profile(
    state: State<'_, AppState>,
    macs: Vec<String>,
    profile: Option<String>,
) -> ApiResult<BuildSummary> {
    let session = state.session();
    assign(&session, &parse_macs(&macs)?, profile)
}

pub fn assign(session: &Session, macs: &[Mac], profile: Option<String>) -> ApiResult<BuildSummary> {
    let profile = profile_to_give(session, profile)?;
    let mut devices = Vec::new();
    for mac in macs {
        let mut device = get_device(session, *mac)?;
        device.profile = profile.clone();
        devices.push(device);
    }
    session.inventory().import_devices(&devices)?;
    session.rebuild_devices(macs)
}

/// Imports a device list with the same rules as `provdesk device import`: every bad row is
/// reported; nothing is imported while there are bad rows unless `skip_bad`; `dry_run` only
/// reports. `source` names the file in diagnostics.
#[tauri::command]
pub async fn import_csv(
    state: State<'_, AppState>,
    text: String,
    source: Option<String>,
    dry_run: bool,
    skip_bad: bool,
) -> ApiResult<ImportResult> {
    let session = state.session();
    import(&session, &text, source.as_deref(), dry_run, skip_bad)
}

pub fn import(
    session: &Session,
    text: &str,
    source: Option<&str>,
    dry_run: bool,
    skip_bad: bool,
) -> ApiResult<ImportResult> {
    let profiles = ProfileSet::load(session.desk().root());
    let (rows, mut diagnostics) = parse_devices_csv(text, &|name| profiles.profile_exists(name));
    if let Some(source) = source {
        for d in &mut diagnostics {
            d.file = Some(source.into());
        }
    }
    let bad = diagnostics.iter().filter(|d| d.is_error()).count();
    let existing: BTreeSet<Mac> = session
        .inventory()
        .list_devices()?
        .into_iter()
        .filter(|d| d.state == DeviceState::Inventory)
        .map(|d| d.mac)
        .collect();
    let devices: Vec<Device> = rows.iter().map(|(_, d)| d.clone()).collect();
    let options = session.options();
    let rows: Vec<ImportRow> = rows
        .into_iter()
        .map(|(line, device)| {
            let secrets = device_secrets(&profiles, &device, session.catalog(), &options);
            ImportRow {
                line,
                update: existing.contains(&device.mac),
                device: DeviceDto::with_secrets(&device, &secrets),
            }
        })
        .collect();
    let updated = rows.iter().filter(|r| r.update).count();
    let new = rows.len() - updated;
    let skipping = if bad > 0 {
        format!(", skipping {bad} bad row(s)")
    } else {
        String::new()
    };
    let mut result = ImportResult {
        new,
        updated,
        bad,
        imported: None,
        build: None,
        message: String::new(),
        diagnostics,
        rows,
    };
    if bad > 0 && !skip_bad {
        result.message = format!(
            "{bad} problem(s): nothing imported (fix the rows, or tick \"skip bad rows\" to import the {} good row(s))",
            result.rows.len()
        );
        return Ok(result);
    }
    if dry_run {
        result.message = format!(
            "dry run: would import {} device(s) ({new} new, {updated} updated){skipping}",
            result.rows.len()
        );
        return Ok(result);
    }
    let count = session.inventory().import_devices(&devices)?;
    let macs: Vec<Mac> = devices.iter().map(|d| d.mac).collect();
    result.build = Some(session.rebuild_devices(&macs)?);
    result.imported = Some(count);
    result.message = format!(
        "imported {count} device(s) ({new} new, {updated} updated){}",
        if bad > 0 {
            format!(", skipped {bad} bad row(s)")
        } else {
            String::new()
        }
    );
    Ok(result)
}

/// What enrolling `macs` into `profile` would leave them lacking: the variables the profile
/// uses that each device does not define (only devices that lack some are listed). The UI
/// asks this before it enrolls, so the technician knows which phones will need attention.
#[tauri::command]
pub async fn enroll_check(
    state: State<'_, AppState>,
    macs: Vec<String>,
    profile: Option<String>,
) -> ApiResult<Vec<MissingVariables>> {
    let session = state.session();
    missing_after_enroll(&session, &parse_macs(&macs)?, profile)
}

pub fn missing_after_enroll(
    session: &Session,
    macs: &[Mac],
    profile: Option<String>,
) -> ApiResult<Vec<MissingVariables>> {
    let profile = profile_to_give(session, profile)?;
    let profiles = ProfileSet::load(session.desk().root());
    let mut out = Vec::new();
    for mac in macs {
        let mut device = get_device(session, *mac)?;
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

/// Moves a discovered device into the inventory, with `profile` when given. A device that
/// lacks variables the profile uses is enrolled all the same and held back at the build
/// ("needs attention", in the summary's `held`); `enroll_check` says so beforehand.
#[tauri::command]
pub async fn enroll(
    state: State<'_, AppState>,
    macs: Vec<String>,
    profile: Option<String>,
) -> ApiResult<BuildSummary> {
    let session = state.session();
    enroll_macs(&session, &parse_macs(&macs)?, profile)
}

pub fn enroll_macs(
    session: &Session,
    macs: &[Mac],
    profile: Option<String>,
) -> ApiResult<BuildSummary> {
    let profile = profile_to_give(session, profile)?;
    for mac in macs {
        session.inventory().enroll(*mac, profile.as_deref())?;
    }
    session.rebuild_devices(macs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use provdesk_core::inventory::{FetchLogEntry, Sighting};

    const CSV: &str = "mac,model,profile,name,ext,sip_secret\n\
        00:0b:82:00:00:01,GXP2170,office,Reception,201,sip-pw-1\n\
        00:0b:82:00:00:02,GXP2170,,Sales,202,sip-pw-2\n";

    fn desk() -> (tempfile::TempDir, Session) {
        let dir = tempfile::tempdir().unwrap();
        let session = Session::open(&dir.path().join("desk")).unwrap();
        let result = import(&session, CSV, None, false, false).unwrap();
        assert_eq!(result.imported, Some(2), "{}", result.message);
        (dir, session)
    }

    fn mac(text: &str) -> Mac {
        text.parse().unwrap()
    }

    #[test]
    fn file_previews_mask_secrets_and_keep_the_clear_text_for_reveal() {
        let (_dir, session) = desk();
        let device = get_device(&session, mac("000b82000001")).unwrap();
        let detail = detail(&session, device).unwrap();
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
        // The SIP password and the generated XML password (P1359) the file was encrypted with.
        assert!(masked.contains("<P1359>••••••</P1359>"), "{masked}");
        assert_eq!(xml.secrets, 2);
    }

    #[test]
    fn a_device_its_profile_cannot_be_built_for_is_refused_unless_incomplete() {
        let (_dir, session) = desk();
        let profiles = ProfileSet::load(session.desk().root());
        let mut input = DeviceInput {
            mac: "00:0b:82:00:00:09".into(),
            model: "GXP2170".into(),
            profile: Some("office".into()),
            name: None,
            vars: [("ext".to_string(), "209".to_string())].into(),
            overrides: Default::default(),
            incomplete: false,
        };
        let err = device_from_input(&input, &profiles).unwrap_err();
        assert!(
            err.message
                .contains("variable(s) sip_secret that 000b82000009"),
            "{}",
            err.message
        );
        input.incomplete = true;
        let device = device_from_input(&input, &profiles).unwrap();
        session.inventory().upsert_device(&device).unwrap();
        let summary = session.rebuild_devices(&[device.mac]).unwrap();
        assert!(summary.published, "{:?}", summary.diagnostics);
        assert_eq!(summary.held.len(), 1);
        assert_eq!(summary.held[0].mac, device.mac);
    }

    #[test]
    fn bulk_assign_gives_and_clears_a_profile_and_refuses_unknown_ones() {
        let (_dir, session) = desk();
        let macs = [mac("000b82000001"), mac("000b82000002")];
        let summary = assign(&session, &macs, Some(" office ".into())).unwrap();
        assert!(summary.published);
        for m in macs {
            let device = get_device(&session, m).unwrap();
            assert_eq!(device.profile.as_deref(), Some("office"));
        }
        let err = assign(&session, &macs, Some("nope".into())).unwrap_err();
        assert!(
            err.message.contains("profile \"nope\" does not exist"),
            "{}",
            err.message
        );
        assign(&session, &macs[..1], Some("  ".into())).unwrap();
        assert_eq!(get_device(&session, macs[0]).unwrap().profile, None);
        assert_eq!(
            get_device(&session, macs[1]).unwrap().profile.as_deref(),
            Some("office")
        );
    }

    #[test]
    fn enrolling_a_discovered_phone_makes_it_an_inventory_device_with_history() {
        let (_dir, session) = desk();
        let phone = mac("000b82abcdef");
        let mut sighting = Sighting::new(phone, 1_700_000_000_000);
        sighting.model = Some("GXP2135".into());
        session.inventory().record_sighting(&sighting).unwrap();
        session
            .inventory()
            .append_fetch_log(&[FetchLogEntry {
                id: None,
                ts: 1_700_000_000_000,
                protocol: "http".into(),
                peer: "127.0.0.1:5060".into(),
                name: "cfg000b82abcdef.xml".into(),
                mac: Some(phone),
                user_agent: None,
                status: "404".into(),
                reason: Some("unknown device".into()),
                bytes: 0,
                duration_ms: 1,
                artifact_hash: None,
            }])
            .unwrap();
        assert_eq!(
            get_device(&session, phone).unwrap().state,
            DeviceState::Discovered
        );
        assert!(enroll_macs(&session, &[phone], Some("nope".into())).is_err());
        assert_eq!(
            missing_after_enroll(&session, &[phone], Some("office".into())).unwrap(),
            [MissingVariables {
                mac: phone,
                missing: vec!["ext".into(), "sip_secret".into()]
            }]
        );
        assert!(
            missing_after_enroll(&session, &[phone], None)
                .unwrap()
                .is_empty()
        );
        // Without a profile: the office profile would need an `ext` the phone does not have.
        let summary = enroll_macs(&session, &[phone], None).unwrap();
        assert!(summary.published, "{:?}", summary.diagnostics);
        let device = get_device(&session, phone).unwrap();
        assert_eq!(device.state, DeviceState::Inventory);
        assert_eq!(device.model, "gxp2135");
        let detail = detail(&session, device).unwrap();
        assert_eq!(detail.history.len(), 1);
        assert_eq!(detail.history[0].reason.as_deref(), Some("unknown device"));
        assert!(
            detail.files.iter().any(|f| f.name == "cfg000b82abcdef.xml"),
            "its files are built on enrolment"
        );
    }
}
