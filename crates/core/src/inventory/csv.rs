//! Device lists from CSV files, as customers' orders and spreadsheets write them.
//!
//! Invariants: never fails fast — every problem in the file comes back as a `Diagnostic` with
//! the 1-based line of its record and the column it is about, and every good row comes back
//! with its line; a row with any error is left out whole. Accepts a UTF-8 BOM, CRLF, quoted
//! fields and the `;` (or tab) delimiter European Excel writes. A quote that never closes or
//! a value with a line break is an error on its own record, never a reason to swallow the
//! rows after it. One pass over the text: the time grows with the file, not its square.

use std::collections::{BTreeMap, HashMap};

use super::{Device, model_problem, variable_name_problem};
use crate::{Diagnostic, Mac};

/// Diagnostic kinds this parser reports.
const ROW: &str = "csv-row";
const HEADER: &str = "csv-header";
const UNREADABLE: &str = "csv-unreadable";

/// Parses a device list whose first record is a header. `mac` and `model` columns are
/// required, `profile` and `name` optional (these four case-insensitive); every other column
/// is a custom variable. Cells are trimmed; an empty `profile`/`name` is `None` and an empty
/// variable cell leaves the variable out. Rows whose cells are all empty are skipped.
///
/// A record that cannot be split into cells (a quote that is never closed, a quoted value
/// running onto the next line) is an error at the line where the record began, and reading
/// goes on at the next line, so the rows a stray quote would have swallowed are still read.
pub fn parse_devices_csv(
    text: &str,
    profile_exists: &dyn Fn(&str) -> bool,
) -> (Vec<(usize, Device)>, Vec<Diagnostic>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut diagnostics = Vec::new();
    let mut records = Records::new(text, detect_delimiter(text));

    let header = loop {
        match records.next() {
            Some(Ok(record)) if record.is_blank() => continue,
            Some(Ok(record)) => break record,
            Some(Err(broken)) => {
                let field = format!("column {}", broken.column);
                diagnostics.push(broken.diagnostic(HEADER, &field));
                return (Vec::new(), diagnostics);
            }
            None => {
                let message = "the file is empty; the first line must be a header such as \
                               `mac,model,profile,name`";
                return (Vec::new(), vec![unreadable(message)]);
            }
        }
    };
    let Some(columns) = Columns::from_header(&header.cells, header.line, &mut diagnostics) else {
        return (Vec::new(), diagnostics);
    };

    let mut devices = Vec::new();
    let mut first_line_of: HashMap<Mac, usize> = HashMap::new();
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(broken) => {
                let field = cell_name(&header.cells, broken.column);
                diagnostics.push(broken.diagnostic(ROW, &field));
                continue;
            }
        };
        let line = record.line;
        if record.is_blank() {
            continue;
        }
        if record.cells.len() != columns.width {
            diagnostics.push(
                Diagnostic::error(
                    ROW,
                    format!(
                        "this row has {} fields but the header has {}; check for a stray delimiter or a missing quote",
                        record.cells.len(),
                        columns.width
                    ),
                )
                .at_line(line),
            );
            continue;
        }
        if let Some(device) = columns.device(
            &record.cells,
            line,
            profile_exists,
            &mut first_line_of,
            &mut diagnostics,
        ) {
            devices.push((line, device));
        }
    }
    (devices, diagnostics)
}

/// Like `parse_devices_csv`, for a file's raw bytes: text that is not UTF-8 (an Excel
/// "CSV" saved in a legacy code page) gives one diagnostic instead of garbled names.
pub fn parse_devices_csv_bytes(
    bytes: &[u8],
    profile_exists: &dyn Fn(&str) -> bool,
) -> (Vec<(usize, Device)>, Vec<Diagnostic>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_devices_csv(text, profile_exists),
        Err(e) => {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            let message = format!(
                "the file is not UTF-8 text (first bad byte on line {line}); save it as \"CSV UTF-8\""
            );
            (Vec::new(), vec![unreadable(&message).at_line(line)])
        }
    }
}

/// `;` when the header has semicolons but no commas (Excel in locales with a decimal comma),
/// tab for a tab-separated export, `,` otherwise.
fn detect_delimiter(text: &str) -> u8 {
    let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if header.contains(',') {
        b','
    } else if header.contains(';') {
        b';'
    } else if header.contains('\t') {
        b'\t'
    } else {
        b','
    }
}

fn unreadable(reason: &str) -> Diagnostic {
    Diagnostic::error(UNREADABLE, format!("cannot read the device list: {reason}"))
}

/// One record of the file: the 1-based line it begins on and its cells, unquoted.
struct Record {
    line: usize,
    cells: Vec<String>,
}

impl Record {
    fn is_blank(&self) -> bool {
        self.cells.iter().all(|cell| cell.trim().is_empty())
    }
}

/// A record that cannot be split into cells: where it began, which cell (1-based), and why.
#[derive(Debug)]
struct Broken {
    line: usize,
    column: usize,
    problem: String,
}

impl Broken {
    /// The diagnostic for this record, `field` naming its cell (a column name or `column N`).
    fn diagnostic(&self, kind: &'static str, field: &str) -> Diagnostic {
        Diagnostic::error(kind, format!("{field}: {}", self.problem))
            .at(self.line, self.column)
            .field(field)
    }
}

/// The records of a CSV text (RFC 4180 quoting: a cell that begins with `"` runs to the next
/// lone `"`, and `""` inside it is one quote), read in one pass.
///
/// This is written here rather than taken from the `csv` crate because the crate reads an
/// unclosed quote to the end of the file without saying so (every later row becomes one
/// cell), and counts lines differently after blank lines and CRLF ends; knowing where each
/// record and quote begins is what the diagnostics need. A device's cells never hold a line
/// break, so a quoted cell that reaches a line end is reported and reading resumes on the
/// next line: a stray quote costs its own record and nothing else.
struct Records<'a> {
    text: &'a str,
    delimiter: u8,
    /// Byte offset of the next record.
    at: usize,
    /// The 1-based line `at` is on.
    line: usize,
}

impl<'a> Records<'a> {
    fn new(text: &'a str, delimiter: u8) -> Self {
        Records {
            text,
            delimiter,
            at: 0,
            line: 1,
        }
    }

    /// Steps over the line end at `at` (LF, CRLF or a lone CR), if there is one.
    fn skip_line_end(&mut self) {
        let bytes = self.text.as_bytes();
        match bytes.get(self.at) {
            Some(b'\r') if bytes.get(self.at + 1) == Some(&b'\n') => self.at += 2,
            Some(b'\r' | b'\n') => self.at += 1,
            _ => return,
        }
        self.line += 1;
    }

    /// Reads a quoted cell whose opening quote is at `at`, appending its text to `cell`.
    /// On a line end or the end of the file before the closing quote, leaves `at` at that
    /// point and says what went wrong.
    fn quoted(&mut self, cell: &mut String) -> Result<(), String> {
        let bytes = self.text.as_bytes();
        self.at += 1;
        let mut from = self.at;
        loop {
            match bytes.get(self.at) {
                Some(b'"') if bytes.get(self.at + 1) == Some(&b'"') => {
                    cell.push_str(&self.text[from..=self.at]);
                    self.at += 2;
                    from = self.at;
                }
                Some(b'"') => {
                    cell.push_str(&self.text[from..self.at]);
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\r' | b'\n') => {
                    return Err(match closing_quote_line(&self.text[self.at..]) {
                        Some(more) => format!(
                            "the quoted value runs on to line {}, and a device's values cannot \
                             hold a line break; put the value on one line (or is a closing \
                             quote missing?)",
                            self.line + more
                        ),
                        None => UNCLOSED.to_string(),
                    });
                }
                Some(_) => self.at += 1,
                None => return Err(UNCLOSED.to_string()),
            }
        }
    }
}

/// Why a record with a quote that never closes is refused.
const UNCLOSED: &str = "the quote that opens this value is never closed, so it would swallow \
                        the rows after it; close the quote";

/// How many line ends come before the quote that closes a quoted cell, when `rest` starts
/// inside one; `None` when no quote closes it. Stops at the first lone `"`, so reading ahead
/// from each bad record costs no more than the distance to the next quote.
fn closing_quote_line(rest: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    let mut lines = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' if bytes.get(i + 1) == Some(&b'"') => i += 1,
            b'"' => return Some(lines),
            b'\n' => lines += 1,
            b'\r' if bytes.get(i + 1) != Some(&b'\n') => lines += 1,
            _ => {}
        }
        i += 1;
    }
    None
}

impl Iterator for Records<'_> {
    type Item = Result<Record, Broken>;

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.text.as_bytes();
        if self.at >= bytes.len() {
            return None;
        }
        let line = self.line;
        let mut cells = Vec::new();
        loop {
            let mut cell = String::new();
            if bytes[self.at..].first() == Some(&b'"')
                && let Err(problem) = self.quoted(&mut cell)
            {
                let column = cells.len() + 1;
                // Resume on the line after the one the quote opened on.
                while self.at < bytes.len() && !matches!(bytes[self.at], b'\r' | b'\n') {
                    self.at += 1;
                }
                self.skip_line_end();
                return Some(Err(Broken {
                    line,
                    column,
                    problem,
                }));
            }
            // Unquoted text, or what follows a closing quote, runs to the delimiter or the
            // line end; a quote in it is an ordinary character.
            let from = self.at;
            while self.at < bytes.len()
                && bytes[self.at] != self.delimiter
                && !matches!(bytes[self.at], b'\r' | b'\n')
            {
                self.at += 1;
            }
            cell.push_str(&self.text[from..self.at]);
            cells.push(cell);
            if bytes.get(self.at) == Some(&self.delimiter) {
                self.at += 1;
                continue;
            }
            self.skip_line_end();
            return Some(Ok(Record { line, cells }));
        }
    }
}

/// How a diagnostic names cell `column` (1-based): the header's name for it, or `column N`
/// past the header's end or under an unnamed column.
fn cell_name(header: &[String], column: usize) -> String {
    header
        .get(column.wrapping_sub(1))
        .map(|name| name.trim())
        .filter(|name| !name.is_empty())
        .map_or_else(|| format!("column {column}"), str::to_string)
}

/// Where each known column is, and the custom variable columns.
struct Columns {
    mac: usize,
    model: usize,
    profile: Option<usize>,
    name: Option<usize>,
    vars: Vec<(usize, String)>,
    width: usize,
}

impl Columns {
    /// Reads the header; `None` when no row can be read (no `mac` or `model` column).
    fn from_header(
        header: &[String],
        line: usize,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<Columns> {
        let mut known: [Option<usize>; 4] = [None; 4];
        let mut vars = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut problems = Vec::new();
        for (index, raw) in header.iter().enumerate() {
            let name = raw.trim();
            let column = index + 1;
            if name.is_empty() {
                problems.push(
                    Diagnostic::warning(
                        HEADER,
                        format!("column {column} has no name and is ignored"),
                    )
                    .at(line, column),
                );
                continue;
            }
            let slot = ["mac", "model", "profile", "name"]
                .iter()
                .position(|k| k.eq_ignore_ascii_case(name));
            let key = slot.map_or_else(
                || name.to_string(),
                |s| ["mac", "model", "profile", "name"][s].to_string(),
            );
            if let Some(first) = seen.insert(key.clone(), column) {
                problems.push(
                    Diagnostic::error(
                        HEADER,
                        format!("column {name:?} appears twice (columns {first} and {column})"),
                    )
                    .at(line, column)
                    .field(name),
                );
                continue;
            }
            match slot {
                Some(s) => known[s] = Some(index),
                None => match variable_name_problem(name) {
                    None => vars.push((index, name.to_string())),
                    Some(problem) => problems.push(
                        Diagnostic::error(
                            HEADER,
                            format!("column {name:?}: {problem}; the column is ignored"),
                        )
                        .at(line, column)
                        .field(name),
                    ),
                },
            }
        }
        let [mac, model, profile, name] = known;
        let (Some(mac), Some(model)) = (mac, model) else {
            let looks_like_data = header.iter().any(|cell| cell.parse::<Mac>().is_ok());
            let message = if looks_like_data {
                // The per-column complaints about "names" that are really data would only
                // bury the one fix needed.
                problems.clear();
                "the first line looks like data; add a header line naming the columns (mac, model, and optionally profile, name and variables)".to_string()
            } else {
                let missing: Vec<&str> = [("mac", mac), ("model", model)]
                    .iter()
                    .filter(|(_, at)| at.is_none())
                    .map(|(name, _)| *name)
                    .collect();
                format!("the header has no {} column", missing.join(" or "))
            };
            problems.push(Diagnostic::error(HEADER, message).at_line(line));
            diagnostics.append(&mut problems);
            return None;
        };
        diagnostics.append(&mut problems);
        Some(Columns {
            mac,
            model,
            profile,
            name,
            vars,
            width: header.len(),
        })
    }

    /// The device on this row, or `None` after reporting each of its problems.
    fn device(
        &self,
        record: &[String],
        line: usize,
        profile_exists: &dyn Fn(&str) -> bool,
        first_line_of: &mut HashMap<Mac, usize>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<Device> {
        let cell = |index: usize| record.get(index).map_or("", |c| c.trim());
        let optional = |index: Option<usize>| index.map(cell).filter(|c| !c.is_empty());
        let before = diagnostics.len();
        let mut report = |field: &str, message: String| {
            diagnostics.push(Diagnostic::error(ROW, message).at_line(line).field(field));
        };

        let mac = match cell(self.mac).parse::<Mac>() {
            Ok(mac) => {
                match first_line_of.get(&mac) {
                    Some(first) => {
                        report("mac", format!("MAC {mac} already appears on line {first}"))
                    }
                    None => {
                        first_line_of.insert(mac, line);
                    }
                }
                Some(mac)
            }
            Err(e) => {
                report("mac", e.to_string());
                None
            }
        };
        let model = cell(self.model).to_ascii_lowercase();
        if model.is_empty() {
            report("model", "the model is missing".to_string());
        } else if let Some(problem) = model_problem(&model) {
            report("model", problem);
        }
        let profile = optional(self.profile);
        if let Some(profile) = profile
            && !profile_exists(profile)
        {
            report("profile", format!("unknown profile {profile:?}"));
        }

        let mac = mac.filter(|_| diagnostics.len() == before)?;
        let mut device = Device::new(mac, &model);
        device.profile = profile.map(str::to_string);
        device.name = optional(self.name).map(str::to_string);
        device.vars = self
            .vars
            .iter()
            .filter_map(|(index, name)| {
                let value = cell(*index);
                (!value.is_empty()).then(|| (name.clone(), value.to_string()))
            })
            .collect::<BTreeMap<_, _>>();
        Some(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles(name: &str) -> bool {
        ["office", "lobby"].contains(&name)
    }

    /// An expected good row: line, mac, model, profile, name, vars as `k=v` joined by spaces.
    type Row<'a> = (
        usize,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
    );

    /// Parses `text` and compares the good rows (line, mac, model, profile, name, vars as
    /// `k=v` joined by spaces) and the diagnostics (`line:field:kind: message` fragments).
    fn check(text: &str, rows: &[Row<'_>], diagnostics: &[&str]) {
        let (got_rows, got_diags) = parse_devices_csv(text, &profiles);
        let got: Vec<_> = got_rows
            .iter()
            .map(|(line, d)| {
                let vars = d
                    .vars
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                (
                    *line,
                    d.mac.to_string(),
                    d.model.clone(),
                    d.profile.clone(),
                    d.name.clone(),
                    vars,
                )
            })
            .collect();
        let want: Vec<_> = rows
            .iter()
            .map(|(line, mac, model, profile, name, vars)| {
                (
                    *line,
                    mac.to_string(),
                    model.to_string(),
                    profile.map(str::to_string),
                    name.map(str::to_string),
                    vars.to_string(),
                )
            })
            .collect();
        assert_eq!(got, want, "rows; diagnostics were {got_diags:#?}");
        let rendered: Vec<String> = got_diags
            .iter()
            .map(|d| {
                format!(
                    "{}:{}:{}: {}",
                    d.line.map_or("-".into(), |l| l.to_string()),
                    d.field.as_deref().unwrap_or("-"),
                    d.kind,
                    d.message
                )
            })
            .collect();
        assert_eq!(
            rendered.len(),
            diagnostics.len(),
            "diagnostics: {rendered:#?}"
        );
        for (got, want) in rendered.iter().zip(diagnostics) {
            assert!(
                got.contains(want),
                "diagnostic {got:?} should contain {want:?}"
            );
        }
    }

    #[test]
    fn reads_known_columns_and_variables() {
        check(
            "mac,model,profile,name,ext,secret\n\
             000B82000001,GXP2170,office,Reception,101,s1\n\
             00:0b:82:00:00:02,gxp2135,,,102,\n",
            &[
                (
                    2,
                    "000b82000001",
                    "gxp2170",
                    Some("office"),
                    Some("Reception"),
                    "ext=101 secret=s1",
                ),
                (3, "000b82000002", "gxp2135", None, None, "ext=102"),
            ],
            &[],
        );
    }

    #[test]
    fn header_is_case_insensitive_and_trimmed() {
        check(
            " MAC , Model ,PROFILE,Name, ext \n000b82000001,gxp2170,lobby,Hall,7\n",
            &[(
                2,
                "000b82000001",
                "gxp2170",
                Some("lobby"),
                Some("Hall"),
                "ext=7",
            )],
            &[],
        );
    }

    #[test]
    fn bad_mac_names_value_and_reason() {
        check(
            "mac,model\n000b8200000,gxp2170\n000b82000002,gxp2170\n",
            &[(3, "000b82000002", "gxp2170", None, None, "")],
            &[
                "2:mac:csv-row: invalid MAC address \"000b8200000\": a MAC address has exactly 12 hex digits",
            ],
        );
    }

    #[test]
    fn missing_and_bad_models() {
        check(
            "mac,model\n000b82000001,\n000b82000002,GXP 2170\n000b82000003,HT-802\n",
            &[(4, "000b82000003", "ht-802", None, None, "")],
            &[
                "2:model:csv-row: the model is missing",
                "3:model:csv-row: invalid model \"gxp 2170\"",
            ],
        );
    }

    #[test]
    fn unknown_profile() {
        check(
            "mac,model,profile\n000b82000001,gxp2170,ofice\n",
            &[],
            &["2:profile:csv-row: unknown profile \"ofice\""],
        );
    }

    #[test]
    fn duplicate_mac_names_the_first_line() {
        check(
            "mac,model\n000b82000001,gxp2170\n000b82000002,gxp2170\n00:0B:82:00:00:01,gxp2135\n",
            &[
                (2, "000b82000001", "gxp2170", None, None, ""),
                (3, "000b82000002", "gxp2170", None, None, ""),
            ],
            &["4:mac:csv-row: MAC 000b82000001 already appears on line 2"],
        );
    }

    #[test]
    fn wrong_number_of_fields() {
        check(
            "mac,model,ext\n000b82000001,gxp2170\n000b82000002,gxp2170,1,2\n000b82000003,gxp2170,3\n",
            &[(4, "000b82000003", "gxp2170", None, None, "ext=3")],
            &[
                "2:-:csv-row: this row has 2 fields but the header has 3",
                "3:-:csv-row: this row has 4 fields",
            ],
        );
    }

    #[test]
    fn every_problem_of_a_row_is_reported() {
        check(
            "mac,model,profile\nnope,,ghost\n",
            &[],
            &[
                "2:mac:csv-row: invalid MAC address \"nope\"",
                "2:model:csv-row: the model is missing",
                "2:profile:csv-row: unknown profile \"ghost\"",
            ],
        );
    }

    #[test]
    fn bom_crlf_and_quotes() {
        check(
            "\u{feff}mac,model,name,location\r\n000b82000001,gxp2170,\"Smith, John\",\"Floor 2, \"\"B\"\"\"\r\n",
            &[(
                2,
                "000b82000001",
                "gxp2170",
                None,
                Some("Smith, John"),
                "location=Floor 2, \"B\"",
            )],
            &[],
        );
    }

    #[test]
    fn unclosed_quote_is_an_error_and_the_next_rows_are_still_read() {
        // The quote on line 2 never closes: before, the csv crate read the rest of the file
        // into that one name, and the device on line 3 was lost without a word.
        check(
            "mac,model,name\n000b82000001,gxp2170,\"Smith\n000b82000002,gxp2170,Jones\n",
            &[(3, "000b82000002", "gxp2170", None, Some("Jones"), "")],
            &["2:name:csv-row: name: the quote that opens this value is never closed"],
        );
        // The same at the very end of a file without a final line end.
        check(
            "mac,model,name\n000b82000001,gxp2170,Ann\n000b82000002,gxp2170,\"Smith",
            &[(2, "000b82000001", "gxp2170", None, Some("Ann"), "")],
            &["3:name:csv-row: name: the quote that opens this value is never closed"],
        );
    }

    #[test]
    fn stray_quote_that_pairs_with_a_later_one_costs_only_its_own_row() {
        check(
            "mac,model,name\n\
             000b82000001,gxp2170,\"Smith\n\
             000b82000002,gxp2170,Jones\n\
             000b82000003,gxp2170,\"Lee, Ann\"\n",
            &[
                (3, "000b82000002", "gxp2170", None, Some("Jones"), ""),
                (4, "000b82000003", "gxp2170", None, Some("Lee, Ann"), ""),
            ],
            &["2:name:csv-row: name: the quoted value runs on to line 4"],
        );
    }

    #[test]
    fn quoted_value_with_a_line_break_is_an_error_at_the_line_it_began() {
        check(
            "mac,model,note\n000b82000001,gxp2170,\"two\nlines\"\n000b82000002,bad model,x\n",
            &[],
            &[
                "2:note:csv-row: note: the quoted value runs on to line 3, and a device's values cannot hold a line break",
                // The rest of the broken value is read as a row of its own, and refused.
                "3:-:csv-row: this row has 1 fields but the header has 3",
                "4:model:csv-row: invalid model",
            ],
        );
        // CRLF and a name column: the field named is the header's.
        check(
            "mac,model,name\r\n000b82000001,gxp2170,\"A\r\nB\",\r\n000b82000002,gxp2170,C\r\n",
            &[(4, "000b82000002", "gxp2170", None, Some("C"), "")],
            &[
                "2:name:csv-row: name: the quoted value runs on to line 3",
                "3:-:csv-row: this row has 2 fields but the header has 3",
            ],
        );
    }

    #[test]
    fn broken_record_diagnostic_names_the_column_number() {
        let (rows, diagnostics) = parse_devices_csv(
            "mac,model\n000b82000001,\"gxp2170\n000b82000002,gxp2170,\"x\n",
            &profiles,
        );
        assert_eq!(rows.len(), 0);
        let at: Vec<_> = diagnostics
            .iter()
            .map(|d| (d.line, d.column, d.field.clone()))
            .collect();
        assert_eq!(
            at,
            [
                (Some(2), Some(2), Some("model".to_string())),
                // Past the header's end the cell has no name but its number.
                (Some(3), Some(3), Some("column 3".to_string())),
            ],
            "{diagnostics:#?}"
        );
    }

    #[test]
    fn unclosed_quote_in_the_header() {
        check(
            "mac,\"model\n000b82000001,gxp2170\n",
            &[],
            &["1:column 2:csv-header: column 2: the quote that opens this value is never closed"],
        );
    }

    #[test]
    fn line_numbers_stay_right_far_into_the_file() {
        // Lone CR, CRLF and LF line ends, blank lines and escaped quotes on the way.
        let mut text = String::from("mac,model,name\r");
        for i in 0..3000 {
            let end = ["\n", "\r\n", "\r"][i % 3];
            text.push_str(&format!("{:012x},gxp2170,\"a \"\"{i}\"\"\"{end}", i + 1));
            if i % 100 == 0 {
                text.push_str(end);
            }
        }
        text.push_str("000b8200ffff,bad model,x\n");
        let (rows, diagnostics) = parse_devices_csv(&text, &profiles);
        assert_eq!(rows.len(), 3000);
        assert_eq!(rows[2999].1.name.as_deref(), Some("a \"2999\""));
        assert_eq!(rows[2999].0, 3000 + 30 + 1);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!(diagnostics[0].line, Some(3000 + 30 + 2));
    }

    #[test]
    fn semicolon_delimiter_from_european_excel() {
        check(
            "mac;model;name;price\n000b82000001;gxp2170;Desk;1,50\n",
            &[(
                2,
                "000b82000001",
                "gxp2170",
                None,
                Some("Desk"),
                "price=1,50",
            )],
            &[],
        );
    }

    #[test]
    fn tab_delimiter() {
        check(
            "mac\tmodel\n000b82000001\tgxp2170\n",
            &[(2, "000b82000001", "gxp2170", None, None, "")],
            &[],
        );
    }

    #[test]
    fn bad_variable_column_is_reported_on_the_header_line_and_ignored() {
        check(
            "mac,model,sip-user,server_host,ext\n000b82000001,gxp2170,u1,h,101\n",
            &[(2, "000b82000001", "gxp2170", None, None, "ext=101")],
            &[
                "1:sip-user:csv-header: column \"sip-user\": invalid variable name",
                "1:server_host:csv-header: column \"server_host\": variable name \"server_host\" is taken",
            ],
        );
    }

    #[test]
    fn duplicate_and_unnamed_header_columns() {
        check(
            "mac,model,ext,Model,ext,\n000b82000001,gxp2170,1,x,2,\n",
            &[(2, "000b82000001", "gxp2170", None, None, "ext=1")],
            &[
                "1:Model:csv-header: column \"Model\" appears twice (columns 2 and 4)",
                "1:ext:csv-header: column \"ext\" appears twice (columns 3 and 5)",
                "1:-:csv-header: column 6 has no name",
            ],
        );
    }

    #[test]
    fn blank_and_empty_rows_are_skipped() {
        check(
            "mac,model\n\n000b82000001,gxp2170\n,\n \n000b82000002,gxp2170\n",
            &[
                (3, "000b82000001", "gxp2170", None, None, ""),
                (6, "000b82000002", "gxp2170", None, None, ""),
            ],
            &[],
        );
    }

    #[test]
    fn missing_required_columns() {
        check(
            "mac,name\n000b82000001,x\n",
            &[],
            &["1:-:csv-header: the header has no model column"],
        );
        check(
            "ext,name\n",
            &[],
            &["1:-:csv-header: the header has no mac or model column"],
        );
    }

    #[test]
    fn data_without_header() {
        check(
            "000b82000001,gxp2170\n",
            &[],
            &["1:-:csv-header: the first line looks like data"],
        );
    }

    #[test]
    fn empty_file_is_one_diagnostic() {
        check(
            "",
            &[],
            &["-:-:csv-unreadable: cannot read the device list: the file is empty"],
        );
        check(
            "\u{feff}\r\n",
            &[],
            &["-:-:csv-unreadable: cannot read the device list: the file is empty"],
        );
    }

    #[test]
    fn non_utf8_bytes_are_one_diagnostic() {
        let (rows, diagnostics) = parse_devices_csv_bytes(
            b"mac,model,name\n000b82000001,gxp2170,M\xfcller\n",
            &profiles,
        );
        assert!(rows.is_empty());
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!(diagnostics[0].kind, "csv-unreadable");
        assert_eq!(diagnostics[0].line, Some(2));
        assert!(
            diagnostics[0].message.contains("not UTF-8"),
            "{}",
            diagnostics[0].message
        );
        let (rows, diagnostics) =
            parse_devices_csv_bytes(b"mac,model\n000b82000001,gxp2170\n", &profiles);
        assert_eq!((rows.len(), diagnostics.len()), (1, 0));
    }
}
