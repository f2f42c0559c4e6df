//! The Settings screen's commands: each parses, runs the desk's use-case
//! (`provdesk_desk::settings`, `certificates`) on a blocking thread, and returns its view.
//! Saving is the one sequence the app owns, because it owns the servers: save, stop the
//! servers if they run, open the desk again (settings are read at open), put it in place,
//! build through it, start the servers again with the same options.

use std::path::PathBuf;

use provdesk_core::Diagnostic;
use provdesk_core::desk::DeskSettings;
use provdesk_desk::DeskService;
use provdesk_desk::certificates::CertificateGenerated;
use provdesk_desk::settings::{ServersAfterSave, SettingsSaved, SettingsView};
use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;

use crate::dialogs;
use crate::error::ApiResult;
use crate::session::{AppState, blocking};

#[tauri::command]
pub async fn read_settings(state: State<'_, AppState>) -> ApiResult<SettingsView> {
    blocking(state.session(), |desk| desk.read_settings()).await
}

/// Every problem with the form's settings, each naming its field; empty when they can be
/// saved. The form asks as the technician types.
#[tauri::command]
pub async fn validate_settings(
    state: State<'_, AppState>,
    settings: DeskSettings,
) -> ApiResult<Vec<Diagnostic>> {
    blocking(state.session(), move |desk| {
        Ok(desk.validate_settings(&settings))
    })
    .await
}

#[tauri::command]
pub async fn save_settings(
    state: State<'_, AppState>,
    settings: DeskSettings,
) -> ApiResult<SettingsSaved> {
    let desk = state.session();
    let change = blocking(desk.clone(), move |d| d.save_settings(&settings)).await?;
    if change.is_empty() {
        return blocking(desk, move |d| {
            d.settings_saved(&change, &ServersAfterSave::NotRunning, None)
        })
        .await;
    }
    // The running servers serve the desk as it was opened: they stop before anything builds
    // with the new settings, and a build still running on the old desk finishes first.
    let servers = state.servers();
    let restart = servers.running_options().await;
    // The file is saved already: a stop that reports an error (the fetch log could not be
    // written) still stopped them, and the sequence goes on.
    if let Err(e) = servers.stop().await {
        tracing::warn!("stopping the servers to apply the settings: {}", e.message);
    }
    if let Err(e) = desk.stop_serving().await {
        tracing::warn!(
            "stopping the desk's servers to apply the settings: {}",
            e.message
        );
    }
    let root = desk.root().to_path_buf();
    let fresh = blocking(desk, move |_| DeskService::open(&root)).await?;
    state.replace(fresh.clone()).await;
    let change_now = change.clone();
    let build = blocking(fresh.clone(), move |d| {
        d.settings_applied(&change_now);
        Ok(d.build())
    })
    .await?;
    let after = match restart {
        None => ServersAfterSave::NotRunning,
        Some(options) => match servers.start(fresh.clone(), options).await {
            Ok(_) => ServersAfterSave::Restarted,
            Err(e) => ServersAfterSave::RestartFailed(e.message),
        },
    };
    // With the servers running again, a build error in `build` is superseded by theirs.
    let build = (after != ServersAfterSave::Restarted).then_some(build);
    blocking(fresh, move |d| {
        d.settings_saved(&change, &after, build.as_ref())
    })
    .await
}

/// Asks for one file (a PEM certificate, key or CA bundle); `None` when cancelled.
#[tauri::command]
pub async fn pick_file(
    app: AppHandle,
    title: String,
    filter: String,
    extensions: Vec<String>,
) -> ApiResult<Option<String>> {
    let extensions: Vec<&str> = extensions.iter().map(String::as_str).collect();
    let mut dialog = app.dialog().file().set_title(title);
    if !extensions.is_empty() {
        dialog = dialog.add_filter(filter, &extensions);
    }
    let picked = dialogs::pick_file(dialog).await;
    Ok(picked.map(|p| p.display().to_string()))
}

/// Creates the desk's local CA and a server certificate, unless a valid one is there.
#[tauri::command]
pub async fn generate_certificate(state: State<'_, AppState>) -> ApiResult<CertificateGenerated> {
    blocking(state.session(), |desk| desk.generate_certificate()).await
}

/// Saves the local CA certificate where the technician chooses, to install on browsers and
/// phones that should trust the desk's HTTPS. `None` when cancelled.
#[tauri::command]
pub async fn export_ca(app: AppHandle, state: State<'_, AppState>) -> ApiResult<Option<String>> {
    let desk = state.session();
    // Made (and checked) before the dialog opens: a failure is said before choosing a place.
    blocking(desk.clone(), |d| d.export_ca().map(|_| ())).await?;
    let dialog = app
        .dialog()
        .file()
        .set_title("Export the ProvDesk CA certificate")
        .set_file_name("provdesk-ca.pem")
        .add_filter("PEM certificate", &["pem", "crt"]);
    let Some(path): Option<PathBuf> = dialogs::save_file(dialog).await else {
        return Ok(None);
    };
    let shown = path.display().to_string();
    blocking(desk, move |d| d.export_ca_to(&path)).await?;
    Ok(Some(shown))
}
