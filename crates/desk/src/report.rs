//! The hand-over report, written once for `provdesk report` and the app's "Export report":
//! every inventory device with its extensions (from its effective configuration), the
//! firmware it first reported and reports now, its last contact, status and diagnosis, as
//! CSV or PDF (the core's `report` module renders; this module gathers).
//!
//! Invariants: secrets never reach the report (a status reason or diagnosis is redacted with
//! the device's own secrets, as the device list masks it); the whole desk costs a fixed
//! number of inventory queries and one effective configuration per device, the profiles
//! being loaded once; a report file is replaced atomically, so the app or a script never
//! opens half a PDF.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use provdesk_core::Mac;
use provdesk_core::build::device_config;
use provdesk_core::fsio::{Replace, write_atomically};
use provdesk_core::inventory::{Device, DeviceState};
use provdesk_core::profile::ProfileSet;
use provdesk_core::report::{self, HandoverReport, HandoverRow, ReportFormat, ReportSummary};
use provdesk_core::secrets::secrets_of_config;
use provdesk_core::status::ProvisioningStatus;
use serde::Serialize;
use ts_rs::TS;

use crate::devices::redact_status;
use crate::error::DeskResult;
use crate::service::DeskService;

/// What writing a report did, for the app's toast and the CLI's line.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ReportWritten {
    /// The file written, as given.
    pub path: String,
    pub format: ReportFormat,
    /// The site the report is titled with.
    pub site: String,
    #[ts(type = "number")]
    pub bytes: u64,
    pub summary: ReportSummary,
}

/// A device's status and the diagnosis in plain words, as the report shows them (before
/// masking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: ProvisioningStatus,
    pub diagnosis: String,
}

impl DeskService {
    /// The name the report is titled with: `[site] name` in `provdesk.toml`, else the desk
    /// folder's name.
    pub fn site_name(&self) -> String {
        let configured = self
            .desk()
            .settings()
            .site
            .as_ref()
            .and_then(|site| site.name.as_deref())
            .map(str::trim)
            .filter(|name| !name.is_empty());
        if let Some(name) = configured {
            return name.to_string();
        }
        std::fs::canonicalize(self.root())
            .unwrap_or_else(|_| self.root().to_path_buf())
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "ProvDesk".to_string())
    }

    /// The status and diagnosis of every device in `devices`: the timeline's diagnosis
    /// (`diagnose_all`), so the report says what the device page and `device show` say — each
    /// device's rung of the status ladder and its verdicts in plain words. The caller masks
    /// secrets in what comes back.
    fn report_verdicts(&self, devices: &[Device]) -> DeskResult<BTreeMap<Mac, Verdict>> {
        let mut diagnoses = self.diagnose_all()?;
        Ok(devices
            .iter()
            .filter_map(|device| diagnoses.remove(&device.mac))
            .map(|found| {
                let diagnosis = if found.verdicts.is_empty() {
                    found.summary
                } else {
                    found
                        .verdicts
                        .iter()
                        .map(|verdict| verdict.words.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                (
                    found.mac,
                    Verdict {
                        status: found.status,
                        diagnosis,
                    },
                )
            })
            .collect())
    }

    /// The report of every inventory device (discovered phones not enrolled are not the
    /// customer's yet), stamped with the current time in this machine's time zone.
    pub fn handover(&self) -> DeskResult<HandoverReport> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let offset_minutes = chrono::Local::now().offset().local_minus_utc() / 60;
        self.handover_at(now, offset_minutes)
    }

    /// [`Self::handover`] at a given time and zone.
    pub fn handover_at(&self, now_ms: i64, utc_offset_minutes: i32) -> DeskResult<HandoverReport> {
        let devices: Vec<Device> = self
            .inventory()
            .list_devices()?
            .into_iter()
            .filter(|d| d.state == DeviceState::Inventory)
            .collect();
        let mut verdicts = self.report_verdicts(&devices)?;
        let mut first_firmware = self.inventory().first_firmware_versions()?;
        let profiles = ProfileSet::load(self.root());
        let options = self.served_options();
        let rows = devices
            .into_iter()
            .map(|device| {
                let (config, _) = device_config(&profiles, &device, &options);
                let secrets =
                    secrets_of_config(&profiles, &device, self.catalog(), &options, &config);
                // Every listed device has a diagnosis; one added since the list was read
                // has not been seen yet.
                let verdict = verdicts.remove(&device.mac).unwrap_or_else(|| Verdict {
                    status: ProvisioningStatus::NeverSeen,
                    diagnosis: ProvisioningStatus::NeverSeen.label(),
                });
                HandoverRow {
                    mac: device.mac,
                    extensions: report::extensions(&config),
                    firmware_before: first_firmware.remove(&device.mac),
                    firmware_now: device.firmware_version,
                    last_contact: device.last_seen,
                    status: redact_status(verdict.status, &secrets),
                    diagnosis: secrets.redact(&verdict.diagnosis),
                    name: device.name,
                    model: device.model,
                    profile: device.profile,
                }
            })
            .collect();
        Ok(HandoverReport::new(
            &self.site_name(),
            now_ms,
            utc_offset_minutes,
            rows,
        ))
    }

    /// The hand-over report as the bytes of a file in `format`.
    pub fn handover_report(&self, format: ReportFormat) -> DeskResult<Vec<u8>> {
        Ok(render(&self.handover()?, format))
    }

    /// Writes the hand-over report to `path` (replaced atomically; its folder must exist).
    pub fn write_handover_report(
        &self,
        format: ReportFormat,
        path: &Path,
    ) -> DeskResult<ReportWritten> {
        let report = self.handover()?;
        let bytes = render(&report, format);
        write_atomically(path, &bytes, Replace::SYNCED)?;
        Ok(ReportWritten {
            path: path.display().to_string(),
            format,
            site: report.site.clone(),
            bytes: bytes.len() as u64,
            summary: report.summary(),
        })
    }
}

/// The report's bytes in `format`.
pub fn render(report: &HandoverReport, format: ReportFormat) -> Vec<u8> {
    match format {
        ReportFormat::Csv => report::csv::write(report),
        ReportFormat::Pdf => report::pdf::write(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{DeviceInput, Rebuild};

    fn desk() -> (tempfile::TempDir, DeskService) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("acme-leeds");
        let service = DeskService::open(&root).unwrap();
        (dir, service)
    }

    fn add(service: &DeskService, mac: &str, ext: &str, secret: &str) {
        let input = DeviceInput {
            mac: mac.into(),
            model: "gxp2170".into(),
            profile: Some("office".into()),
            name: Some(format!("Desk {ext}")),
            vars: [("ext", ext), ("sip_secret", secret)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..DeviceInput::default()
        };
        service.add_device(&input, false, Rebuild::Later).unwrap();
    }

    #[test]
    fn the_site_is_the_setting_or_the_folder_name() {
        let (_dir, service) = desk();
        assert_eq!(service.site_name(), "acme-leeds");
        let settings = service.root().join("provdesk.toml");
        let text = std::fs::read_to_string(&settings).unwrap();
        std::fs::write(
            &settings,
            format!("[site]\nname = \"Acme Ltd, Leeds\"\n{text}"),
        )
        .unwrap();
        let service = DeskService::open(service.root()).unwrap();
        assert_eq!(service.site_name(), "Acme Ltd, Leeds");
    }

    #[test]
    fn rows_carry_extensions_status_and_no_secret() {
        let (_dir, service) = desk();
        add(&service, "000b82000001", "201", "hunter2-secret");
        add(&service, "000b82000002", "202", "other-secret");
        // A refusal whose reason quotes the phone's SIP password (a secret variable).
        let refused = provdesk_core::inventory::FetchLogEntry {
            id: None,
            ts: 5,
            protocol: "http".into(),
            peer: "192.0.2.10:5000".into(),
            name: "cfg000b82000001.xml".into(),
            mac: Some("000b82000001".parse().unwrap()),
            user_agent: Some("Grandstream Model HW GXP2170 SW 1.0.9.1 DevId 000b82000001".into()),
            status: "denied".into(),
            reason: Some("wrong password hunter2-secret".into()),
            bytes: 0,
            duration_ms: 1,
            artifact_hash: None,
        };
        service.inventory().append_fetch_log(&[refused]).unwrap();
        let report = service.handover_at(0, 0).unwrap();
        assert_eq!(report.site, "acme-leeds");
        let rows = report.rows();
        assert_eq!(rows.len(), 2);
        // The refused phone first, its firmware read from its request.
        assert_eq!(rows[0].extensions, ["201"]);
        assert!(matches!(rows[0].status, ProvisioningStatus::Denied { .. }));
        assert!(
            rows[0].diagnosis.contains("wrong password"),
            "{}",
            rows[0].diagnosis
        );
        assert_eq!(rows[0].firmware_before.as_deref(), Some("1.0.9.1"));
        assert_eq!(rows[1].extensions, ["202"]);
        assert_eq!(rows[1].status, ProvisioningStatus::NeverSeen);
        assert!(
            rows[1].diagnosis.contains("never asked"),
            "{}",
            rows[1].diagnosis
        );
        let csv = String::from_utf8(render(&report, ReportFormat::Csv)).unwrap();
        assert!(csv.contains("answering HTTP 401: wrong password"), "{csv}");
        assert!(!csv.contains("hunter2-secret"), "{csv}");
        let pdf = render(&report, ReportFormat::Pdf);
        assert!(pdf.starts_with(b"%PDF-"));
    }

    #[test]
    fn a_report_is_written_where_asked_and_a_missing_folder_is_an_io_error() {
        let (dir, service) = desk();
        add(&service, "000b82000001", "201", "s");
        let path = dir.path().join("handover.pdf");
        let written = service
            .write_handover_report(ReportFormat::Pdf, &path)
            .unwrap();
        assert_eq!(written.bytes, std::fs::metadata(&path).unwrap().len());
        assert_eq!(written.summary.devices, 1);
        assert_eq!(written.summary.problems, 1);
        let err = service
            .write_handover_report(ReportFormat::Csv, &dir.path().join("no/such/dir/r.csv"))
            .unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Io);
        assert!(err.message.contains("no/such/dir"), "{}", err.message);
    }
}
