//! What crosses the IPC boundary, and the one mapping from each core type to it. The UI's
//! `ui/src/lib/api.ts` mirrors these shapes field for field.
//!
//! Invariant: no decisions here beyond shape; masking, layering and validation come from the
//! core (catalogue, profile set, builder).

use std::collections::BTreeMap;

use provdesk_core::build::{ArtifactKind, BuildReport};
use provdesk_core::catalog::Catalog;
use provdesk_core::inventory::{Device, DeviceState, FetchLogEntry};
use provdesk_core::profile::{EffectiveConfig, Source};
use provdesk_core::{Diagnostic, Mac, PName};
use serde::{Deserialize, Serialize};

use crate::profile_file::ProfileKind;

#[derive(Debug, Clone, Serialize)]
pub struct DeskInfo {
    pub root: String,
    pub settings_file: String,
    pub settings_text: String,
    pub devices: usize,
    pub discovered: usize,
    /// Named profiles, `global` first.
    pub profiles: Vec<String>,
    /// Models with a file or a device, lowercase.
    pub models: Vec<String>,
    pub catalog_entries: usize,
    pub catalog_diagnostics: Vec<Diagnostic>,
    /// Whether phones' P237/P192 can be filled in (the desk names a `public_host`).
    pub server_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceDto {
    pub mac: Mac,
    pub model: String,
    pub profile: Option<String>,
    pub name: Option<String>,
    pub state: DeviceState,
    pub vars: BTreeMap<String, String>,
    pub overrides: BTreeMap<PName, String>,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub last_ip: Option<String>,
    pub firmware_version: Option<String>,
}

impl From<&Device> for DeviceDto {
    fn from(d: &Device) -> DeviceDto {
        DeviceDto {
            mac: d.mac,
            model: d.model.clone(),
            profile: d.profile.clone(),
            name: d.name.clone(),
            state: d.state,
            vars: d.vars.clone(),
            overrides: d.overrides.clone(),
            first_seen: d.first_seen,
            last_seen: d.last_seen,
            last_ip: d.last_ip.clone(),
            firmware_version: d.firmware_version.clone(),
        }
    }
}

/// A device as the add and edit forms send it.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceInput {
    pub mac: String,
    pub model: String,
    pub profile: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default)]
    pub overrides: BTreeMap<String, String>,
}

/// A build, summed up for a toast ("rebuilt 42 files in 35 ms") and a problems list.
#[derive(Debug, Clone, Serialize)]
pub struct BuildSummary {
    pub published: bool,
    pub build: u64,
    pub artifacts: usize,
    pub devices: usize,
    pub written: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub errors: usize,
    pub diagnostics: Vec<Diagnostic>,
    pub elapsed_ms: f64,
}

/// At most this many diagnostics travel with a build summary; the count is always exact.
const SUMMARY_DIAGNOSTICS: usize = 200;

impl From<&BuildReport> for BuildSummary {
    fn from(r: &BuildReport) -> BuildSummary {
        let mut diagnostics = r.diagnostics.clone();
        // Errors first: they are why nothing was published.
        diagnostics.sort_by_key(|d| std::cmp::Reverse(d.severity));
        diagnostics.truncate(SUMMARY_DIAGNOSTICS);
        BuildSummary {
            published: r.published,
            build: r.build,
            artifacts: r.artifacts,
            devices: r.devices,
            written: r.written.len(),
            removed: r.removed.len(),
            unchanged: r.unchanged,
            errors: r.errors(),
            diagnostics,
            elapsed_ms: (r.elapsed_ms * 10.0).round() / 10.0,
        }
    }
}

/// One value of an effective configuration, with its layer and what the catalogue knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveParam {
    pub p: PName,
    pub value: String,
    pub source: Source,
    /// The catalogue's label (`SIP Server`), when it knows the P-value.
    pub label: Option<String>,
    pub page: Option<String>,
    /// Shown masked until the technician asks.
    pub secret: bool,
}

pub fn effective_params(config: &EffectiveConfig, catalog: &Catalog) -> Vec<EffectiveParam> {
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
                secret: catalog.is_secret(*p),
            }
        })
        .collect()
}

/// One file a device receives, decoded for reading.
#[derive(Debug, Clone, Serialize)]
pub struct FilePreview {
    /// The request name, `cfg000b82000001.xml`.
    pub name: String,
    pub kind: ArtifactKind,
    /// Relative to the desk.
    pub file: String,
    /// Encrypted on the wire; `text` is the decrypted content.
    pub encrypted: bool,
    pub size: u64,
    pub version: u64,
    pub text: Option<String>,
    /// Why there is no text (firmware, unreadable, no password).
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceDetail {
    pub device: DeviceDto,
    pub params: Vec<EffectiveParam>,
    pub diagnostics: Vec<Diagnostic>,
    pub files: Vec<FilePreview>,
    pub history: Vec<FetchLogEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportRow {
    pub line: usize,
    pub device: DeviceDto,
    /// The MAC is already in the inventory: the row updates it.
    pub update: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportResult {
    pub rows: Vec<ImportRow>,
    pub diagnostics: Vec<Diagnostic>,
    pub new: usize,
    pub updated: usize,
    /// Rows left out because of errors.
    pub bad: usize,
    /// How many devices were stored; `None` for a dry run or a refused import.
    pub imported: Option<usize>,
    pub build: Option<BuildSummary>,
    /// What happened, in one sentence, the CLI's wording.
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileSummary {
    pub name: String,
    pub kind: ProfileKind,
    pub file: String,
    pub extends: Option<String>,
    pub params: usize,
    pub errors: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileList {
    pub profiles: Vec<ProfileSummary>,
    pub diagnostics: Vec<Diagnostic>,
}

/// A value the profile itself sets.
#[derive(Debug, Clone, Serialize)]
pub struct OwnValue {
    pub p: PName,
    pub value: String,
    pub line: Option<usize>,
    /// The catalogue's verdict on this value.
    pub violations: Vec<Diagnostic>,
}

/// A value the profile inherits from a lower layer.
#[derive(Debug, Clone, Serialize)]
pub struct InheritedValue {
    pub p: PName,
    pub value: String,
    pub source: Source,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileDoc {
    pub name: String,
    pub kind: ProfileKind,
    pub file: String,
    pub text: String,
    pub extends: Option<String>,
    /// The model the inherited values were computed for, if any.
    pub model: Option<String>,
    pub own: Vec<OwnValue>,
    pub inherited: Vec<InheritedValue>,
    /// Problems in this file (syntax, names, parents).
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SaveResult {
    pub doc: ProfileDoc,
    pub build: BuildSummary,
    /// Warnings from the catalogue about the saved value(s).
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FirmwareFile {
    /// Relative to the desk, `firmware/gxp2170fw.bin`.
    pub file: String,
    pub size: u64,
    /// Models whose firmware request this file answers.
    pub models: Vec<String>,
    /// Request names that answer with this file.
    pub requests: Vec<String>,
}

// --- Settings and Firmware screens -------------------------------------------------------

/// The Settings screen: the typed settings, the file they come from, and what the form needs
/// to offer (this machine's addresses, the state of the HTTPS certificate).
#[derive(Debug, Clone, Serialize)]
pub struct SettingsDto {
    pub settings: provdesk_core::desk::DeskSettings,
    pub file: String,
    pub text: String,
    pub interfaces: Vec<InterfaceAddress>,
    pub tls: TlsState,
}

/// One address of this machine and the interface it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceAddress {
    pub interface: String,
    pub ip: String,
    pub ipv6: bool,
    pub loopback: bool,
}

/// Which certificate HTTPS will use.
#[derive(Debug, Clone, Serialize)]
pub struct TlsState {
    /// `own` (cert/key files named in the settings), `generated` (DESK/tls/ has them) or
    /// `none yet` (generated when HTTPS first starts, or with the Generate button).
    pub source: &'static str,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SettingsSaved {
    pub settings: SettingsDto,
    /// What changed on disk and what to do next.
    pub message: String,
}

/// The Firmware screen: every served file, who fetches it, and the prefixes in effect.
#[derive(Debug, Clone, Serialize)]
pub struct FirmwareOverview {
    pub files: Vec<FirmwareEntry>,
    /// P232/P233 pairs in effect across the inventory, most used first.
    pub affixes: Vec<provdesk_core::firmware::Affixes>,
    /// Models in the inventory with no firmware file (their phones get a 404 for firmware).
    pub missing: Vec<MissingFirmware>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FirmwareEntry {
    /// The name inside `firmware/`.
    pub file: String,
    pub size: u64,
    pub model: Option<String>,
    /// Inventory devices that will fetch this file, with the name each requests.
    pub devices: Vec<provdesk_core::firmware::FirmwareUse>,
    /// Names the last build answers with this file.
    pub requests: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MissingFirmware {
    pub model: String,
    pub devices: usize,
    pub file: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FirmwareChanged {
    pub overview: FirmwareOverview,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use provdesk_core::profile::Sourced;

    fn p(text: &str) -> PName {
        text.parse().unwrap()
    }

    #[test]
    fn effective_params_carry_layer_label_and_secrecy() {
        let mut config = EffectiveConfig::default();
        config.params.insert(
            p("P47"),
            Sourced {
                value: "pbx".into(),
                source: Source::File {
                    path: "profiles/office.toml".into(),
                    line: 5,
                },
            },
        );
        config.params.insert(
            p("P34"),
            Sourced {
                value: "s3cret".into(),
                source: Source::DeviceOverride,
            },
        );
        let params = effective_params(&config, Catalog::builtin());
        assert_eq!(params.len(), 2);
        let p34 = &params[0];
        assert_eq!(p34.p, p("P34"));
        assert!(p34.secret, "P34 is the SIP password");
        let p47 = &params[1];
        assert!(!p47.secret);
        assert!(p47.label.is_some());
        let json = serde_json::to_value(p47).unwrap();
        assert_eq!(json["source"]["kind"], "file");
        assert_eq!(json["source"]["line"], 5);
        assert_eq!(json["p"], "P47");
    }

    #[test]
    fn build_summary_puts_errors_first_and_rounds() {
        let report = BuildReport {
            published: false,
            written: vec!["a".into(), "b".into()],
            diagnostics: vec![
                Diagnostic::warning("w", "warn"),
                Diagnostic::error("e", "err"),
            ],
            elapsed_ms: 12.3456,
            ..BuildReport::default()
        };
        let s = BuildSummary::from(&report);
        assert_eq!(s.written, 2);
        assert_eq!(s.errors, 1);
        assert_eq!(s.diagnostics[0].kind, "e");
        assert_eq!(s.elapsed_ms, 12.3);
    }
}
