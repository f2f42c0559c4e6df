//! The hand-over report: what a technician leaves with the customer at the end of the day,
//! one row per phone (MAC, name, extensions, model, profile, firmware before → now, last
//! contact, status, diagnosis) and a summary counting the phones by status, problems first.
//! [`csv`] writes it for spreadsheets and scripts, [`pdf`] for people.
//!
//! Invariants: pure; nothing here reads the desk, the inventory or the clock, and nothing
//! writes a file. The caller (the desk service) assembles the [`HandoverRow`]s, their
//! diagnosis included, and writes the bytes these functions return. The order of the rows and
//! which statuses count as problems are decided here and nowhere else.

pub mod csv;
pub mod pdf;
mod winansi;

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::profile::EffectiveConfig;
use crate::status::ProvisioningStatus;
use crate::{Mac, PName};

const fn p(n: u32) -> PName {
    match PName::new(n) {
        Some(p) => p,
        None => panic!("P-value number out of range"),
    }
}

/// Each account's "account active" and "SIP user ID" P-values, account 1 first. Accounts 2–6
/// do not follow one rule (account 5 is P17xx, not P7xx), hence the table; see the catalogue
/// (`assets/catalog/account1.toml`, `accounts2to6.toml`).
pub const ACCOUNT_USER_IDS: [(PName, PName); 6] = [
    (p(271), p(35)),
    (p(401), p(404)),
    (p(501), p(504)),
    (p(601), p(604)),
    (p(1701), p(1704)),
    (p(1801), p(1804)),
];

/// A phone's extensions: the SIP user ID of each account that has one and is not switched
/// off (an account is active unless its "account active" value is `0`, the phones' default).
pub fn extensions(config: &EffectiveConfig) -> Vec<String> {
    ACCOUNT_USER_IDS
        .iter()
        .filter(|(active, _)| config.get(*active).map(str::trim) != Some("0"))
        .filter_map(|(_, user_id)| config.non_empty(*user_id))
        .map(|user_id| user_id.trim().to_string())
        .collect()
}

/// The file formats of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    /// RFC 4180, UTF-8, one header row; for spreadsheets and scripts.
    Csv,
    /// A landscape A4 document to hand to the customer.
    Pdf,
}

impl ReportFormat {
    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Csv => "csv",
            ReportFormat::Pdf => "pdf",
        }
    }
}

impl fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for ReportFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<ReportFormat, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(ReportFormat::Csv),
            "pdf" => Ok(ReportFormat::Pdf),
            other => Err(format!(
                "report format {other:?} is not known (use csv or pdf)"
            )),
        }
    }
}

/// One phone of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverRow {
    pub mac: Mac,
    pub name: Option<String>,
    /// The SIP user ID of each active account, account 1 first.
    pub extensions: Vec<String>,
    pub model: String,
    pub profile: Option<String>,
    /// The firmware the phone reported the first time the desk heard from it.
    pub firmware_before: Option<String>,
    /// The firmware it reports now.
    pub firmware_now: Option<String>,
    /// Unix milliseconds of its last request, if it made one.
    pub last_contact: Option<i64>,
    pub status: ProvisioningStatus,
    /// What is wrong or right with it, in plain words (secrets already masked).
    pub diagnosis: String,
}

impl HandoverRow {
    /// The status rung the summary counts this row under.
    pub fn group(&self) -> StatusGroup {
        StatusGroup::of(&self.status)
    }

    /// `1.0.11.3 -> 1.0.11.10` when the firmware changed, the one version when it did not,
    /// empty when the phone never said.
    pub fn firmware_change(&self) -> String {
        match (&self.firmware_before, &self.firmware_now) {
            (Some(before), Some(now)) if before != now => format!("{before} -> {now}"),
            (_, Some(now)) => now.clone(),
            (Some(before), None) => before.clone(),
            (None, None) => String::new(),
        }
    }

    /// The extensions in one cell: `201, 202`.
    pub fn extensions_text(&self) -> String {
        self.extensions.join(", ")
    }
}

/// A status without its details (the version of `got config v3`, the percent of a firmware
/// transfer): what the summary counts. Declared in report order: problems first, then the
/// ladder from the first request up to "on target firmware".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "kebab-case")]
pub enum StatusGroup {
    NeedsAttention,
    Denied,
    Failed,
    Stale,
    NeverSeen,
    GotAddress,
    AskedForServer,
    Requesting,
    GotConfig,
    FirmwareInProgress,
    FirmwareDone,
    UpToDate,
    Applied,
    OnTargetFirmware,
}

impl StatusGroup {
    pub fn of(status: &ProvisioningStatus) -> StatusGroup {
        match status {
            ProvisioningStatus::NeedsAttention { .. } => StatusGroup::NeedsAttention,
            ProvisioningStatus::Denied { .. } => StatusGroup::Denied,
            ProvisioningStatus::Failed { .. } => StatusGroup::Failed,
            ProvisioningStatus::Stale => StatusGroup::Stale,
            ProvisioningStatus::NeverSeen => StatusGroup::NeverSeen,
            ProvisioningStatus::GotAddress { .. } => StatusGroup::GotAddress,
            ProvisioningStatus::AskedForServer => StatusGroup::AskedForServer,
            ProvisioningStatus::Requesting => StatusGroup::Requesting,
            ProvisioningStatus::GotConfig { .. } => StatusGroup::GotConfig,
            ProvisioningStatus::FirmwareInProgress { .. } => StatusGroup::FirmwareInProgress,
            ProvisioningStatus::FirmwareDone => StatusGroup::FirmwareDone,
            ProvisioningStatus::UpToDate => StatusGroup::UpToDate,
            ProvisioningStatus::Applied => StatusGroup::Applied,
            ProvisioningStatus::OnTargetFirmware => StatusGroup::OnTargetFirmware,
        }
    }

    /// Whether a phone in this state needs the technician before the site is handed over:
    /// its files are held back, it was refused, a transfer broke off, it has not fetched
    /// what changed, or it never asked at all.
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            StatusGroup::NeedsAttention
                | StatusGroup::Denied
                | StatusGroup::Failed
                | StatusGroup::Stale
                | StatusGroup::NeverSeen
        )
    }

    /// The words the summary prints, the status labels without their details.
    pub fn label(self) -> &'static str {
        match self {
            StatusGroup::NeedsAttention => "needs attention",
            StatusGroup::Denied => "denied",
            StatusGroup::Failed => "failed",
            StatusGroup::Stale => "stale",
            StatusGroup::NeverSeen => "never seen",
            StatusGroup::GotAddress => "got address",
            StatusGroup::AskedForServer => "asked for server",
            StatusGroup::Requesting => "requesting",
            StatusGroup::GotConfig => "got config",
            StatusGroup::FirmwareInProgress => "firmware in progress",
            StatusGroup::FirmwareDone => "firmware done",
            StatusGroup::UpToDate => "up to date",
            StatusGroup::Applied => "applied",
            StatusGroup::OnTargetFirmware => "on target firmware",
        }
    }
}

/// How many phones are in one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct StatusCount {
    pub status: StatusGroup,
    pub label: String,
    pub count: usize,
    pub problem: bool,
}

/// The report's summary: every status that has phones, problems first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ReportSummary {
    pub devices: usize,
    /// Phones whose status [`StatusGroup::is_problem`].
    pub problems: usize,
    pub by_status: Vec<StatusCount>,
}

/// A whole report: the site, when it was made, and its rows in report order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverReport {
    /// The site's (the desk's) name, for the title.
    pub site: String,
    /// Unix milliseconds.
    pub generated_at: i64,
    /// The offset of the local time every time in the report is written in, east of UTC.
    pub utc_offset_minutes: i32,
    rows: Vec<HandoverRow>,
}

impl HandoverReport {
    /// A report of `rows`, put in report order: problems first (by [`StatusGroup`]), then
    /// by extension (`9` before `10`), then by MAC.
    pub fn new(
        site: &str,
        generated_at: i64,
        utc_offset_minutes: i32,
        mut rows: Vec<HandoverRow>,
    ) -> HandoverReport {
        rows.sort_by(|a, b| {
            a.group()
                .cmp(&b.group())
                .then_with(|| {
                    natural_cmp(
                        a.extensions.first().map_or("", String::as_str),
                        b.extensions.first().map_or("", String::as_str),
                    )
                })
                .then_with(|| a.mac.cmp(&b.mac))
        });
        HandoverReport {
            site: site.to_string(),
            generated_at,
            utc_offset_minutes,
            rows,
        }
    }

    /// The rows in report order.
    pub fn rows(&self) -> &[HandoverRow] {
        &self.rows
    }

    pub fn summary(&self) -> ReportSummary {
        let mut counts = std::collections::BTreeMap::<StatusGroup, usize>::new();
        for row in &self.rows {
            *counts.entry(row.group()).or_default() += 1;
        }
        let by_status: Vec<StatusCount> = counts
            .into_iter()
            .map(|(status, count)| StatusCount {
                status,
                label: status.label().to_string(),
                count,
                problem: status.is_problem(),
            })
            .collect();
        ReportSummary {
            devices: self.rows.len(),
            problems: by_status
                .iter()
                .filter(|c| c.problem)
                .map(|c| c.count)
                .sum(),
            by_status,
        }
    }

    /// The report's own date and time, local: `2026-12-06 18:29`.
    pub fn generated_text(&self) -> String {
        local_time(self.generated_at, self.utc_offset_minutes)
    }

    /// The time zone every time is written in: `UTC`, `UTC+01:00`, `UTC-05:30`.
    pub fn zone_text(&self) -> String {
        zone(self.utc_offset_minutes, "UTC", ":")
    }
}

/// Compares texts with their runs of digits as numbers, so extension `9` sorts before `10`.
/// Empty sorts last: a phone without an extension after those with one.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (digits(a), digits(b));
                let trim = |s: &[u8]| {
                    let zeros = s.iter().take_while(|c| **c == b'0').count();
                    s[zeros..].to_vec()
                };
                let (da, db) = (trim(&a[..na]), trim(&b[..nb]));
                let order = da.len().cmp(&db.len()).then_with(|| da.cmp(&db));
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                let order = x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase());
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

/// The civil date of a count of days since 1970-01-01 (Howard Hinnant's `civil_from_days`):
/// no date crate for one conversion the core needs.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Date and time fields of `ms` shifted by the offset: (year, month, day, hour, minute, second).
fn fields(ms: i64, utc_offset_minutes: i32) -> (i64, u32, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1000) + i64::from(utc_offset_minutes) * 60;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rest = secs.rem_euclid(86_400);
    (
        year,
        month,
        day,
        (rest / 3600) as u32,
        (rest % 3600 / 60) as u32,
        (rest % 60) as u32,
    )
}

fn zone(utc_offset_minutes: i32, utc: &str, separator: &str) -> String {
    if utc_offset_minutes == 0 {
        return utc.to_string();
    }
    let sign = if utc_offset_minutes < 0 { '-' } else { '+' };
    let minutes = utc_offset_minutes.unsigned_abs();
    let prefix = if utc == "Z" { "" } else { "UTC" };
    format!(
        "{prefix}{sign}{:02}{separator}{:02}",
        minutes / 60,
        minutes % 60
    )
}

/// `2026-12-06 18:29` in local time, for people.
pub fn local_time(ms: i64, utc_offset_minutes: i32) -> String {
    let (y, mo, d, h, mi, _) = fields(ms, utc_offset_minutes);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}")
}

/// `2026-12-06T18:29:31+01:00` (RFC 3339), for spreadsheets and scripts.
pub fn rfc3339(ms: i64, utc_offset_minutes: i32) -> String {
    let (y, mo, d, h, mi, s) = fields(ms, utc_offset_minutes);
    let zone = zone(utc_offset_minutes, "Z", ":");
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{zone}")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A row for `mac` (the last two hex digits) with `status` and one extension.
    pub(crate) fn row(mac_tail: u8, ext: &str, status: ProvisioningStatus) -> HandoverRow {
        HandoverRow {
            mac: format!("000b820000{mac_tail:02x}").parse().unwrap(),
            name: Some(format!("Phone {ext}")),
            extensions: if ext.is_empty() {
                Vec::new()
            } else {
                vec![ext.to_string()]
            },
            model: "gxp2170".into(),
            profile: Some("office".into()),
            firmware_before: Some("1.0.9.1".into()),
            firmware_now: Some("1.0.11.3".into()),
            last_contact: Some(1_765_045_771_000),
            diagnosis: status.reason().unwrap_or("fine").to_string(),
            status,
        }
    }

    #[test]
    fn rows_are_ordered_problems_first_then_by_extension_then_mac() {
        let rows = vec![
            row(1, "10", ProvisioningStatus::UpToDate),
            row(2, "9", ProvisioningStatus::UpToDate),
            row(3, "300", ProvisioningStatus::NeverSeen),
            row(
                4,
                "500",
                ProvisioningStatus::Denied {
                    reason: "not on the allow-list".into(),
                },
            ),
            row(5, "", ProvisioningStatus::UpToDate),
            row(6, "9", ProvisioningStatus::UpToDate),
            row(7, "2", ProvisioningStatus::GotConfig { version: 3 }),
        ];
        let report = HandoverReport::new("HQ", 0, 0, rows);
        let order: Vec<String> = report
            .rows()
            .iter()
            .map(|r| {
                format!(
                    "{}:{}",
                    r.mac.to_string().split_off(10),
                    r.extensions_text()
                )
            })
            .collect();
        assert_eq!(
            order,
            ["04:500", "03:300", "07:2", "02:9", "06:9", "01:10", "05:"]
        );
    }

    #[test]
    fn the_summary_counts_by_status_without_details_problems_first() {
        let rows = vec![
            row(1, "1", ProvisioningStatus::GotConfig { version: 3 }),
            row(2, "2", ProvisioningStatus::GotConfig { version: 4 }),
            row(3, "3", ProvisioningStatus::Stale),
            row(4, "4", ProvisioningStatus::UpToDate),
            row(
                5,
                "5",
                ProvisioningStatus::NeedsAttention { reason: "x".into() },
            ),
        ];
        let summary = HandoverReport::new("HQ", 0, 0, rows).summary();
        let counts: Vec<(&str, usize, bool)> = summary
            .by_status
            .iter()
            .map(|c| (c.label.as_str(), c.count, c.problem))
            .collect();
        assert_eq!(
            counts,
            [
                ("needs attention", 1, true),
                ("stale", 1, true),
                ("got config", 2, false),
                ("up to date", 1, false),
            ]
        );
        assert_eq!((summary.devices, summary.problems), (5, 2));
    }

    #[test]
    fn every_status_has_a_group_and_the_brief_s_problems_are_problems() {
        let problems: Vec<StatusGroup> = [
            ProvisioningStatus::NeedsAttention { reason: "r".into() },
            ProvisioningStatus::Denied { reason: "r".into() },
            ProvisioningStatus::Failed { reason: "r".into() },
            ProvisioningStatus::NeverSeen,
            ProvisioningStatus::Stale,
        ]
        .iter()
        .map(StatusGroup::of)
        .collect();
        assert!(problems.iter().all(|g| g.is_problem()), "{problems:?}");
        for fine in [
            ProvisioningStatus::UpToDate,
            ProvisioningStatus::Applied,
            ProvisioningStatus::OnTargetFirmware,
            ProvisioningStatus::GotAddress {
                address: "192.0.2.7".into(),
            },
            ProvisioningStatus::FirmwareInProgress { percent: 4 },
        ] {
            assert!(!StatusGroup::of(&fine).is_problem(), "{fine:?}");
            // The group's words are the label's without the details.
            assert!(
                fine.label()
                    .starts_with(StatusGroup::of(&fine).label().split(' ').next().unwrap())
            );
        }
    }

    #[test]
    fn firmware_change_names_both_versions_only_when_they_differ() {
        let mut r = row(1, "1", ProvisioningStatus::UpToDate);
        assert_eq!(r.firmware_change(), "1.0.9.1 -> 1.0.11.3");
        r.firmware_before = r.firmware_now.clone();
        assert_eq!(r.firmware_change(), "1.0.11.3");
        r.firmware_before = None;
        assert_eq!(r.firmware_change(), "1.0.11.3");
        r.firmware_now = None;
        assert_eq!(r.firmware_change(), "");
    }

    #[test]
    fn times_are_written_in_the_report_s_zone() {
        // 2025-12-06T18:29:31Z.
        let ms = 1_765_045_771_000;
        assert_eq!(rfc3339(ms, 0), "2025-12-06T18:29:31Z");
        assert_eq!(rfc3339(ms, 60), "2025-12-06T19:29:31+01:00");
        assert_eq!(rfc3339(ms, -330), "2025-12-06T12:59:31-05:30");
        assert_eq!(local_time(ms, 6 * 60), "2025-12-07 00:29");
        assert_eq!(local_time(0, 0), "1970-01-01 00:00");
        // A leap day and a date before 1970 come out right.
        assert_eq!(rfc3339(951_782_400_000, 0), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1000, 0), "1969-12-31T23:59:59Z");
        let report = HandoverReport::new("HQ", ms, -330, Vec::new());
        assert_eq!(report.zone_text(), "UTC-05:30");
        assert_eq!(report.generated_text(), "2025-12-06 12:59");
    }

    #[test]
    fn extensions_are_the_user_ids_of_the_active_accounts() {
        use crate::profile::{Source, Sourced};
        let config = |pairs: &[(u32, &str)]| EffectiveConfig {
            params: pairs
                .iter()
                .map(|(n, v)| {
                    let sourced = Sourced {
                        value: v.to_string(),
                        source: Source::DeviceOverride,
                    };
                    (p(*n), sourced)
                })
                .collect(),
        };
        assert_eq!(extensions(&config(&[(35, "201")])), ["201"]);
        assert_eq!(
            extensions(&config(&[
                (35, "201"),
                (404, " 202 "),
                (1704, "205"),
                (1804, "")
            ])),
            ["201", "202", "205"]
        );
        // Switched off: not an extension of this phone; `1` or absent is on.
        assert_eq!(
            extensions(&config(&[
                (271, "0"),
                (35, "201"),
                (401, "1"),
                (404, "202")
            ])),
            ["202"]
        );
        assert!(extensions(&config(&[])).is_empty());
    }

    #[test]
    fn formats_parse_by_name() {
        assert_eq!("PDF".parse::<ReportFormat>(), Ok(ReportFormat::Pdf));
        assert_eq!(" csv".parse::<ReportFormat>(), Ok(ReportFormat::Csv));
        assert!(
            "xlsx"
                .parse::<ReportFormat>()
                .unwrap_err()
                .contains("csv or pdf")
        );
    }
}
