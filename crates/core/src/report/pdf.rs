//! The report as a PDF to hand to the customer: landscape A4, a title with the site and the
//! date, a summary of the phones by status (problems first) on page 1, then one table row per
//! phone with the column headings repeated on every page, zebra rows, problem statuses in
//! red, and "Page N of M" in every footer.
//!
//! Written with `pdf-writer` (typst's low-level PDF writer: small, no dependencies beyond
//! `itoa`/`ryu`-class crates, maintained with typst) rather than a layout engine: the report
//! is one table, so laying it out here costs less than a typesetting crate's fonts and
//! compile time. Text is set in the built-in Helvetica and Helvetica-Bold with WinAnsi
//! encoding, which every reader has, so no font is embedded.
//!
//! Invariants: a cell never draws past its column (long text is cut with an ellipsis; the
//! CSV has it whole); any text renders (characters outside WinAnsi print as `?`, see
//! [`super::winansi`]); the output depends only on the report.

use pdf_writer::{Content, Date, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::winansi::{self, Face};
use super::{HandoverReport, HandoverRow, fields, local_time};

/// Landscape A4, in points.
const PAGE_WIDTH: f32 = 842.0;
const PAGE_HEIGHT: f32 = 595.0;
const MARGIN: f32 = 36.0;
const CONTENT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;

const TITLE_SIZE: f32 = 18.0;
const SUBTITLE_SIZE: f32 = 10.0;
const SUMMARY_SIZE: f32 = 9.0;
const SUMMARY_LINE: f32 = 13.0;
const SUMMARY_COLUMNS: usize = 4;
const TABLE_SIZE: f32 = 8.0;
const HEADER_HEIGHT: f32 = 16.0;
/// A row of one line; a row whose diagnosis takes two lines is `LINE_HEIGHT` taller.
const ROW_HEIGHT: f32 = 13.0;
const LINE_HEIGHT: f32 = 9.5;
/// The diagnosis may take this many lines; the CSV has it whole.
const DIAGNOSIS_LINES: usize = 2;
const CELL_PADDING: f32 = 4.0;
const FOOTER_SIZE: f32 = 8.0;
/// The footer's baseline; the table stops above `TABLE_BOTTOM`.
const FOOTER_Y: f32 = 20.0;
const TABLE_BOTTOM: f32 = MARGIN;

type Rgb = (f32, f32, f32);
const INK: Rgb = (0.1, 0.12, 0.15);
const MUTED: Rgb = (0.4, 0.43, 0.47);
const HEADER_FILL: Rgb = (0.2, 0.27, 0.35);
const ZEBRA_FILL: Rgb = (0.93, 0.95, 0.97);
const PROBLEM: Rgb = (0.7, 0.1, 0.1);
const WHITE: Rgb = (1.0, 1.0, 1.0);

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// The table's columns: heading and width in points. The diagnosis takes what is left.
const COLUMNS: [(&str, f32); 9] = [
    ("MAC", 62.0),
    ("Name", 92.0),
    ("Extension(s)", 58.0),
    ("Model", 46.0),
    ("Profile", 60.0),
    ("Firmware first -> now", 100.0),
    ("Last contact", 74.0),
    ("Status", 72.0),
    ("Diagnosis", 0.0),
];
const DIAGNOSIS: usize = 8;
const STATUS: usize = 7;

fn column_widths() -> [f32; 9] {
    let mut widths = COLUMNS.map(|(_, w)| w);
    let fixed: f32 = widths.iter().sum();
    widths[DIAGNOSIS] = CONTENT_WIDTH - fixed;
    widths
}

/// What one page holds: the rows `start..end` of the report, and for the first page the
/// title and summary above them.
struct PageSpan {
    start: usize,
    end: usize,
}

/// A row's diagnosis as the lines it is drawn in.
fn diagnosis_lines(row: &HandoverRow) -> Vec<Vec<u8>> {
    let width = column_widths()[DIAGNOSIS] - 2.0 * CELL_PADDING;
    winansi::wrap(
        &row.diagnosis,
        Face::Regular,
        TABLE_SIZE,
        width,
        DIAGNOSIS_LINES,
    )
}

fn row_height(lines: usize) -> f32 {
    ROW_HEIGHT + LINE_HEIGHT * lines.saturating_sub(1) as f32
}

/// The report as PDF bytes.
pub fn write(report: &HandoverReport) -> Vec<u8> {
    let summary_lines = summary_entries(report).len().div_ceil(SUMMARY_COLUMNS);
    let first_table_top = first_page_table_top(summary_lines);
    let diagnoses: Vec<Vec<Vec<u8>>> = report.rows().iter().map(diagnosis_lines).collect();
    let heights: Vec<f32> = diagnoses.iter().map(|d| row_height(d.len())).collect();
    let pages = paginate(&heights, first_table_top);
    let page_count = pages.len();

    let catalog_id = Ref::new(1);
    let tree_id = Ref::new(2);
    let regular_id = Ref::new(3);
    let bold_id = Ref::new(4);
    let info_id = Ref::new(5);
    let page_id = |i: usize| Ref::new(6 + 2 * i as i32);
    let content_id = |i: usize| Ref::new(7 + 2 * i as i32);

    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id)
        .kids((0..page_count).map(page_id))
        .count(page_count as i32);
    for (id, base) in [
        (regular_id, Name(b"Helvetica")),
        (bold_id, Name(b"Helvetica-Bold")),
    ] {
        pdf.type1_font(id)
            .base_font(base)
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let title = format!("Hand-over report: {}", report.site);
    let (y, mo, d, h, mi, s) = fields(report.generated_at, report.utc_offset_minutes);
    let offset = report.utc_offset_minutes;
    pdf.document_info(info_id)
        .title(TextStr(&title))
        .producer(TextStr("ProvDesk"))
        .creation_date(
            Date::new(u16::try_from(y).unwrap_or(0))
                .month(mo as u8)
                .day(d as u8)
                .hour(h as u8)
                .minute(mi as u8)
                .second(s as u8)
                .utc_offset_hour((offset / 60) as i8)
                .utc_offset_minute((offset.unsigned_abs() % 60) as u8),
        );

    for (i, span) in pages.iter().enumerate() {
        let mut page = pdf.page(page_id(i));
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .parent(tree_id)
            .contents(content_id(i));
        page.resources()
            .fonts()
            .pair(REGULAR, regular_id)
            .pair(BOLD, bold_id);
        page.finish();

        let mut content = Content::new();
        let table_top = if i == 0 {
            draw_heading(&mut content, report, &title);
            first_table_top
        } else {
            PAGE_HEIGHT - MARGIN
        };
        draw_table(
            &mut content,
            Rows {
                rows: &report.rows()[span.start..span.end],
                diagnoses: &diagnoses[span.start..span.end],
                first_index: span.start,
            },
            table_top,
            report.utc_offset_minutes,
        );
        draw_footer(&mut content, report, i + 1, page_count);
        pdf.stream(content_id(i), &content.finish());
    }
    pdf.finish()
}

/// The rows of each page, by their heights; at least one page, even for a desk without
/// phones. Each page's table starts at `first_table_top` on page 1, below the top margin
/// after, and ends above the bottom margin.
fn paginate(heights: &[f32], first_table_top: f32) -> Vec<PageSpan> {
    let full_page = PAGE_HEIGHT - MARGIN - HEADER_HEIGHT - TABLE_BOTTOM;
    let mut pages = Vec::new();
    let mut start = 0;
    let mut room = first_table_top - HEADER_HEIGHT - TABLE_BOTTOM;
    let mut used = 0.0;
    for (i, height) in heights.iter().enumerate() {
        // A page takes rows while they fit; page 1 may have no room at all below its summary.
        if used + height > room && (i > start || pages.is_empty()) {
            pages.push(PageSpan { start, end: i });
            start = i;
            used = 0.0;
            room = full_page;
        }
        used += height;
    }
    pages.push(PageSpan {
        start,
        end: heights.len(),
    });
    pages
}

/// Where the table starts on page 1, below the title, the subtitle and `summary_lines` lines
/// of status counts.
fn first_page_table_top(summary_lines: usize) -> f32 {
    let title_baseline = PAGE_HEIGHT - MARGIN - TITLE_SIZE;
    let subtitle_baseline = title_baseline - 18.0;
    let summary_heading = subtitle_baseline - 24.0;
    let summary_first = summary_heading - 16.0;
    let last = summary_first - SUMMARY_LINE * summary_lines.saturating_sub(1) as f32;
    last - 16.0
}

/// The summary's entries, problems first: (text, count, problem).
fn summary_entries(report: &HandoverReport) -> Vec<(String, usize, bool)> {
    report
        .summary()
        .by_status
        .into_iter()
        .map(|c| (c.label, c.count, c.problem))
        .collect()
}

fn fill(content: &mut Content, (r, g, b): Rgb) {
    content.set_fill_rgb(r, g, b);
}

/// Text at a baseline; `bytes` are WinAnsi.
fn text(content: &mut Content, font: Name<'_>, size: f32, x: f32, y: f32, bytes: &[u8]) {
    content
        .begin_text()
        .set_font(font, size)
        .next_line(x, y)
        .show(Str(bytes))
        .end_text();
}

fn draw_heading(content: &mut Content, report: &HandoverReport, title: &str) {
    let title_baseline = PAGE_HEIGHT - MARGIN - TITLE_SIZE;
    fill(content, INK);
    let bytes = winansi::fit(title, Face::Bold, TITLE_SIZE, CONTENT_WIDTH);
    text(content, BOLD, TITLE_SIZE, MARGIN, title_baseline, &bytes);

    let summary = report.summary();
    let subtitle = format!(
        "Generated {}  \u{b7}  {} phone(s)  \u{b7}  all times {}",
        report.generated_text(),
        summary.devices,
        report.zone_text(),
    );
    fill(content, MUTED);
    let bytes = winansi::fit(&subtitle, Face::Regular, SUBTITLE_SIZE, CONTENT_WIDTH);
    text(
        content,
        REGULAR,
        SUBTITLE_SIZE,
        MARGIN,
        title_baseline - 18.0,
        &bytes,
    );

    let heading_baseline = title_baseline - 18.0 - 24.0;
    let fine = summary.devices - summary.problems;
    let heading = if summary.problems == 0 {
        format!("Summary: all {} phone(s) without problems", summary.devices)
    } else {
        format!(
            "Summary: {} phone(s) need attention (listed first), {fine} without problems",
            summary.problems
        )
    };
    fill(content, INK);
    let bytes = winansi::fit(&heading, Face::Bold, 11.0, CONTENT_WIDTH);
    text(content, BOLD, 11.0, MARGIN, heading_baseline, &bytes);

    // Each status as `996  never seen`: the count first, right-aligned in a column of its
    // own, so the numbers line up down the summary.
    let cell = CONTENT_WIDTH / SUMMARY_COLUMNS as f32;
    let count_column = 36.0;
    for (i, (label, count, problem)) in summary_entries(report).into_iter().enumerate() {
        let x = MARGIN + (i % SUMMARY_COLUMNS) as f32 * cell;
        let y = heading_baseline - 16.0 - (i / SUMMARY_COLUMNS) as f32 * SUMMARY_LINE;
        fill(content, if problem { PROBLEM } else { INK });
        let number = count.to_string().into_bytes();
        let number_width = winansi::width(&number, Face::Bold, SUMMARY_SIZE);
        text(
            content,
            BOLD,
            SUMMARY_SIZE,
            x + count_column - number_width,
            y,
            &number,
        );
        let (face, font) = if problem {
            (Face::Bold, BOLD)
        } else {
            (Face::Regular, REGULAR)
        };
        let label_x = x + count_column + 6.0;
        let bytes = winansi::fit(&label, face, SUMMARY_SIZE, cell - count_column - 12.0);
        text(content, font, SUMMARY_SIZE, label_x, y, &bytes);
    }
}

/// The rows of one page: the report's rows `first_index..`, with their diagnosis lines.
struct Rows<'a> {
    rows: &'a [HandoverRow],
    diagnoses: &'a [Vec<Vec<u8>>],
    first_index: usize,
}

/// The table heading at `top`, then the rows below it.
fn draw_table(content: &mut Content, page: Rows<'_>, top: f32, utc_offset_minutes: i32) {
    let widths = column_widths();
    fill(content, HEADER_FILL);
    content
        .rect(MARGIN, top - HEADER_HEIGHT, CONTENT_WIDTH, HEADER_HEIGHT)
        .fill_nonzero();
    fill(content, WHITE);
    let mut x = MARGIN;
    for ((heading, _), width) in COLUMNS.iter().zip(widths) {
        let bytes = winansi::fit(heading, Face::Bold, TABLE_SIZE, width - 2.0 * CELL_PADDING);
        text(
            content,
            BOLD,
            TABLE_SIZE,
            x + CELL_PADDING,
            top - HEADER_HEIGHT + 5.5,
            &bytes,
        );
        x += width;
    }

    let mut row_top = top - HEADER_HEIGHT;
    for (n, (row, diagnosis)) in page.rows.iter().zip(page.diagnoses).enumerate() {
        let height = row_height(diagnosis.len());
        // The first line's baseline, as in a one-line row.
        let baseline = row_top - ROW_HEIGHT + 4.0;
        if (page.first_index + n) % 2 == 1 {
            fill(content, ZEBRA_FILL);
            content
                .rect(MARGIN, row_top - height, CONTENT_WIDTH, height)
                .fill_nonzero();
        }
        row_top -= height;
        let problem = row.group().is_problem();
        let last_contact = row.last_contact.map_or_else(
            || "never".to_string(),
            |ms| local_time(ms, utc_offset_minutes),
        );
        let cells = [
            row.mac.to_string(),
            row.name.clone().unwrap_or_default(),
            row.extensions_text(),
            row.model.clone(),
            row.profile.clone().unwrap_or_default(),
            row.firmware_change(),
            last_contact,
            row.status.label(),
        ];
        let mut x = MARGIN;
        // The fill colour is set only when it changes: a page has hundreds of cells.
        let mut current = None;
        for (column, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let (face, font, color) = if column == STATUS && problem {
                (Face::Bold, BOLD, PROBLEM)
            } else {
                (Face::Regular, REGULAR, INK)
            };
            if current != Some(color) {
                fill(content, color);
                current = Some(color);
            }
            let bytes = winansi::fit(cell, face, TABLE_SIZE, width - 2.0 * CELL_PADDING);
            text(
                content,
                font,
                TABLE_SIZE,
                x + CELL_PADDING,
                baseline,
                &bytes,
            );
            x += width;
        }
        if current != Some(INK) {
            fill(content, INK);
        }
        for (i, line) in diagnosis.iter().enumerate() {
            let y = baseline - i as f32 * LINE_HEIGHT;
            text(content, REGULAR, TABLE_SIZE, x + CELL_PADDING, y, line);
        }
    }
}

fn draw_footer(content: &mut Content, report: &HandoverReport, page: usize, pages: usize) {
    fill(content, MUTED);
    let left = format!(
        "ProvDesk hand-over report  \u{b7}  {}  \u{b7}  {}",
        report.site,
        report.generated_text()
    );
    let right = winansi::encode(&format!("Page {page} of {pages}"));
    let right_width = winansi::width(&right, Face::Regular, FOOTER_SIZE);
    let bytes = winansi::fit(
        &left,
        Face::Regular,
        FOOTER_SIZE,
        CONTENT_WIDTH - right_width - 24.0,
    );
    text(content, REGULAR, FOOTER_SIZE, MARGIN, FOOTER_Y, &bytes);
    text(
        content,
        REGULAR,
        FOOTER_SIZE,
        PAGE_WIDTH - MARGIN - right_width,
        FOOTER_Y,
        &right,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::row;
    use crate::status::ProvisioningStatus;

    fn report(rows: usize) -> HandoverReport {
        let rows = (0..rows)
            .map(|i| {
                let status = if i % 10 == 0 {
                    ProvisioningStatus::NeverSeen
                } else {
                    ProvisioningStatus::UpToDate
                };
                let mut r = row((i % 250) as u8, &format!("{}", 200 + i), status);
                r.mac = format!("000b82{:06x}", i).parse().unwrap();
                r
            })
            .collect();
        HandoverReport::new("Acme (HQ)", 1_765_045_771_000, 60, rows)
    }

    fn count(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count()
    }

    #[test]
    fn pages_hold_every_row_once_in_order() {
        for rows in [0, 1, 20, 33, 34, 35, 100, 1000] {
            let mut heights = vec![row_height(1); rows];
            // Some rows with a two-line diagnosis.
            for h in heights.iter_mut().step_by(7) {
                *h = row_height(2);
            }
            let pages = paginate(&heights, first_page_table_top(2));
            assert_eq!(pages[0].start, 0);
            assert_eq!(pages.last().unwrap().end, rows);
            for pair in pages.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
                assert!(pair[1].end > pair[1].start, "no empty page after the first");
            }
        }
        // Page 1 holds fewer rows than the others: the title and summary are above them.
        let heights = vec![row_height(1); 1000];
        let pages = paginate(&heights, first_page_table_top(2));
        let first = pages[0].end - pages[0].start;
        let second = pages[1].end - pages[1].start;
        assert!(first > 10 && first < second, "{first} {second}");
        // Every row fits above the bottom margin, and one more would not.
        let bottom = PAGE_HEIGHT - MARGIN - HEADER_HEIGHT - second as f32 * ROW_HEIGHT;
        assert!(bottom >= TABLE_BOTTOM, "{bottom}");
        assert!(bottom - ROW_HEIGHT < TABLE_BOTTOM, "{bottom}");
        // Two-line rows take more room: fewer of them on a page.
        let tall = paginate(&vec![row_height(2); 1000], first_page_table_top(2));
        assert!(tall[1].end - tall[1].start < second);
        // A page 1 whose summary leaves no room starts the table on page 2.
        let pages = paginate(&heights, TABLE_BOTTOM + HEADER_HEIGHT + 1.0);
        assert_eq!((pages[0].start, pages[0].end, pages[1].start), (0, 0, 0));
    }

    #[test]
    fn the_document_has_its_pages_fonts_and_title() {
        let bytes = write(&report(1000));
        assert!(bytes.starts_with(b"%PDF-"));
        assert!(bytes.trim_ascii_end().ends_with(b"%%EOF"));
        let report = report(1000);
        let diagnoses: Vec<f32> = report
            .rows()
            .iter()
            .map(|r| row_height(diagnosis_lines(r).len()))
            .collect();
        let pages = paginate(&diagnoses, first_page_table_top(1)).len();
        assert!(pages > 20, "{pages}");
        assert_eq!(
            count(&bytes, b"/Type /Page\n"),
            pages,
            "one page object each"
        );
        assert_eq!(
            count(&bytes, format!("/Count {pages}").as_bytes()),
            1,
            "the page tree counts them"
        );
        assert_eq!(
            count(&bytes, format!("(Page {pages} of {pages}) Tj").as_bytes()),
            1
        );
        assert_eq!(count(&bytes, b"(Page 1 of "), 1);
        assert_eq!(count(&bytes, b"/BaseFont /Helvetica\n"), 1);
        assert_eq!(count(&bytes, b"/BaseFont /Helvetica-Bold\n"), 1);
        assert_eq!(count(&bytes, b"/Encoding /WinAnsiEncoding"), 2);
        assert_eq!(count(&bytes, b"/Title (Hand-over report: Acme (HQ))"), 1);
        for i in [0, 1, 499, 999] {
            let mac = format!("(000b82{i:06x}) Tj");
            assert_eq!(count(&bytes, mac.as_bytes()), 1, "{mac}");
        }
    }

    #[test]
    fn a_date_and_time_fit_the_last_contact_column() {
        let widths = column_widths();
        let time = winansi::encode("2026-12-06 18:49");
        let room = widths[6] - 2.0 * CELL_PADDING;
        assert!(winansi::width(&time, Face::Regular, TABLE_SIZE) <= room);
        let mac = winansi::encode("000b82000003");
        assert!(winansi::width(&mac, Face::Regular, TABLE_SIZE) <= widths[0] - 2.0 * CELL_PADDING);
        assert!(widths[DIAGNOSIS] > 180.0, "{widths:?}");
    }

    #[test]
    fn an_empty_desk_still_has_a_titled_page() {
        let bytes = write(&HandoverReport::new("Empty", 0, 0, Vec::new()));
        assert_eq!(count(&bytes, b"/Type /Page\n"), 1);
        assert_eq!(count(&bytes, b"(Page 1 of 1) Tj"), 1);
        assert_eq!(
            count(&bytes, b"Summary: all 0 phone(s) without problems"),
            1
        );
    }

    #[test]
    fn text_outside_winansi_and_pdf_delimiters_do_not_break_the_document() {
        let mut hostile = row(1, "201", ProvisioningStatus::UpToDate);
        hostile.name = Some("会议室 (main) \\ ) Zoë".into());
        hostile.diagnosis = "x".repeat(500);
        let bytes = write(&HandoverReport::new("Zürich ) (", 0, 0, vec![hostile]));
        // The name is written as hex (it is not ASCII), cut to its column.
        let name = winansi::fit(
            "会议室 (main) \\ ) Zoë",
            Face::Regular,
            TABLE_SIZE,
            COLUMNS[1].1 - 2.0 * CELL_PADDING,
        );
        let hex: String = name.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(count(&bytes, format!("<{hex}> Tj").as_bytes()), 1, "{hex}");
        assert!(hex.starts_with("3F3F3F20"), "{hex}");
        // The long diagnosis ends in an ellipsis (0x85) well before 500 characters.
        assert_eq!(count(&bytes, &b"x".repeat(200)), 0);
    }
}
