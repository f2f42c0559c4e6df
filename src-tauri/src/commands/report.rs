//! "Export report…": the hand-over report (crates/desk report.rs, the one `provdesk report`
//! writes) saved where the technician chooses, as CSV or PDF.

use std::path::PathBuf;

use provdesk_core::report::ReportFormat;
use provdesk_desk::report::ReportWritten;
use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;

use crate::dialogs;
use crate::error::ApiResult;
use crate::session::{AppState, blocking};

/// Asks where to save the report in `format`, then writes it there. `None` when cancelled.
#[tauri::command]
pub async fn export_report(
    app: AppHandle,
    state: State<'_, AppState>,
    format: ReportFormat,
) -> ApiResult<Option<ReportWritten>> {
    let desk = state.session();
    let extension = format.extension();
    let site = desk.site_name();
    let (label, extensions): (&str, &[&str]) = match format {
        ReportFormat::Csv => ("CSV (spreadsheet)", &["csv"]),
        ReportFormat::Pdf => ("PDF document", &["pdf"]),
    };
    let dialog = app
        .dialog()
        .file()
        .set_title("Export the hand-over report")
        .set_file_name(format!("handover-{}.{extension}", file_safe(&site)))
        .add_filter(label, extensions);
    let Some(path): Option<PathBuf> = dialogs::save_file(dialog).await else {
        return Ok(None);
    };
    blocking(desk, move |d| d.write_handover_report(format, &path))
        .await
        .map(Some)
}

/// The site's name as part of a file name: letters, digits, `-`, `_` and `.` kept, the rest `-`.
fn file_safe(site: &str) -> String {
    site.chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::file_safe;

    #[test]
    fn a_site_name_becomes_a_file_name() {
        assert_eq!(file_safe("Acme HQ / floor 2"), "Acme-HQ---floor-2");
        assert_eq!(file_safe("bench_1.2"), "bench_1.2");
    }
}
