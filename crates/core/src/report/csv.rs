//! The report as CSV: RFC 4180 (comma, CRLF, a field quoted when it holds a comma, a quote or a
//! line break, quotes doubled), UTF-8 without a byte-order mark, one header row.
//!
//! Invariant: no cell starts a formula. A spreadsheet runs a cell that begins with `=`, `+`,
//! `-` or `@` (and some with a tab or carriage return) as a formula, so a device name such as
//! `=HYPERLINK(…)` typed into an inventory could act on the customer's machine; such a cell is
//! written with a leading apostrophe, as OWASP's CSV-injection advice has it. The cost: an
//! extension written `+4930…` reads `'+4930…` in a plain-text reader.

use super::{HandoverReport, rfc3339};

/// The header row, in column order.
pub const COLUMNS: [&str; 11] = [
    "mac",
    "name",
    "extensions",
    "model",
    "profile",
    "firmware_before",
    "firmware_now",
    "last_contact",
    "status",
    "problem",
    "diagnosis",
];

/// The report's rows as CSV bytes, in report order (problems first).
pub fn write(report: &HandoverReport) -> Vec<u8> {
    let mut out = String::with_capacity(160 * (report.rows().len() + 1));
    write_record(&mut out, COLUMNS.iter().copied());
    for row in report.rows() {
        let last_contact = row
            .last_contact
            .map(|ms| rfc3339(ms, report.utc_offset_minutes))
            .unwrap_or_default();
        let mac = row.mac.to_string();
        let extensions = row.extensions_text();
        let status = row.status.label();
        let fields = [
            mac.as_str(),
            row.name.as_deref().unwrap_or_default(),
            extensions.as_str(),
            row.model.as_str(),
            row.profile.as_deref().unwrap_or_default(),
            row.firmware_before.as_deref().unwrap_or_default(),
            row.firmware_now.as_deref().unwrap_or_default(),
            last_contact.as_str(),
            status.as_str(),
            if row.group().is_problem() {
                "yes"
            } else {
                "no"
            },
            row.diagnosis.as_str(),
        ];
        write_record(&mut out, fields.into_iter());
    }
    out.into_bytes()
}

fn write_record<'a>(out: &mut String, fields: impl Iterator<Item = &'a str>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_field(out, field);
    }
    out.push_str("\r\n");
}

/// One field: defused if it could start a formula, quoted if RFC 4180 needs it.
fn write_field(out: &mut String, field: &str) {
    let defuse = field.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = field.contains([',', '"', '\r', '\n']);
    if quote {
        out.push('"');
    }
    if defuse {
        out.push('\'');
    }
    if quote {
        for c in field.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::row;
    use crate::status::ProvisioningStatus;

    fn field(text: &str) -> String {
        let mut out = String::new();
        write_field(&mut out, text);
        out
    }

    #[test]
    fn fields_are_quoted_as_rfc_4180_says() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field(""), "");
        assert_eq!(field("Smith, John"), "\"Smith, John\"");
        assert_eq!(field("the \"boss\""), "\"the \"\"boss\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("Zoë Ærø 会议室"), "Zoë Ærø 会议室");
    }

    #[test]
    fn a_cell_that_could_start_a_formula_gets_an_apostrophe() {
        assert_eq!(field("=1+1"), "'=1+1");
        assert_eq!(field("+4930123"), "'+4930123");
        assert_eq!(field("-5"), "'-5");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("\tx"), "'\tx");
        assert_eq!(
            field("=HYPERLINK(\"http://x\",\"a\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"a\"\")\""
        );
        // Only the first character matters.
        assert_eq!(field("a=b"), "a=b");
        assert_eq!(field("1.0 -> 2.0"), "1.0 -> 2.0");
    }

    #[test]
    fn the_csv_parses_back_into_the_rows_with_a_header() {
        let mut hostile = row(1, "201", ProvisioningStatus::UpToDate);
        hostile.name = Some("=cmd|' /C calc'!A0, \"Reception\"\nsecond line".into());
        hostile.extensions.push("202".into());
        let quiet = row(2, "300", ProvisioningStatus::NeverSeen);
        let report = crate::report::HandoverReport::new("HQ", 0, 60, vec![hostile, quiet]);
        let bytes = write(&report);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("mac,name,extensions,model,profile,firmware_before,"));
        assert!(text.ends_with("\r\n"));

        let mut reader = ::csv::ReaderBuilder::new().from_reader(bytes.as_slice());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, COLUMNS);
        let records: Vec<::csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        // The problem (never seen) comes first.
        assert_eq!(&records[0][0], "000b82000002");
        assert_eq!(&records[0][8], "never seen");
        assert_eq!(&records[0][9], "yes");
        assert_eq!(
            &records[1][1],
            "'=cmd|' /C calc'!A0, \"Reception\"\nsecond line"
        );
        assert_eq!(&records[1][2], "201, 202");
        assert_eq!(&records[1][5], "1.0.9.1");
        assert_eq!(&records[1][6], "1.0.11.3");
        assert_eq!(&records[1][7], "2025-12-06T19:29:31+01:00");
        assert_eq!(&records[1][8], "up to date");
        assert_eq!(&records[1][9], "no");
    }
}
