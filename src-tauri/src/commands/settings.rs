//! The Settings screen: read and save `provdesk.toml` (through the core's editor, which keeps
//! comments), this machine's addresses, and the HTTPS certificate (generate, pick own files,
//! export the local CA).

use std::fs;

use provdesk_core::desk::{DeskSettings, TLS_DIR};
use provdesk_core::settings_edit;
use provdesk_serve::http::tls;
use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;

use crate::dto::{InterfaceAddress, SettingsDto, SettingsSaved, TlsState};
use crate::error::{ApiError, ApiResult};
use crate::session::{AppState, Session};

#[tauri::command]
pub async fn read_settings(state: State<'_, AppState>) -> ApiResult<SettingsDto> {
    settings_dto(&state.session())
}

fn settings_dto(session: &Session) -> ApiResult<SettingsDto> {
    let desk = &session.desk();
    let path = desk.settings_path();
    let text = fs::read_to_string(&path).map_err(|e| ApiError::io(&path, e))?;
    let settings = desk.settings().clone();
    let tls_dir = desk.root().join(TLS_DIR);
    let ca = tls_dir.join(tls::CA_CERT_FILE);
    let tls = if settings.tls.cert.is_some() {
        TlsState {
            source: "own",
            ca_file: None,
            cert_file: settings.tls.cert.as_ref().map(|p| p.display().to_string()),
        }
    } else if ca.is_file() {
        let cert = tls_dir.join(tls::SERVER_CERT_FILE);
        TlsState {
            source: "generated",
            ca_file: Some(ca.display().to_string()),
            cert_file: cert.is_file().then(|| cert.display().to_string()),
        }
    } else {
        TlsState {
            source: "none yet",
            ca_file: None,
            cert_file: None,
        }
    };
    Ok(SettingsDto {
        settings,
        file: path.display().to_string(),
        text,
        interfaces: interfaces(),
        tls,
    })
}

/// This machine's addresses, IPv4 first, loopback last; empty when the OS will not say.
fn interfaces() -> Vec<InterfaceAddress> {
    let mut list: Vec<InterfaceAddress> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_link_local())
        .map(|i| InterfaceAddress {
            ip: i.ip().to_string(),
            ipv6: i.ip().is_ipv6(),
            loopback: i.is_loopback(),
            interface: i.name,
        })
        .collect();
    list.sort_by_key(|i| (i.loopback, i.ipv6, i.interface.clone()));
    list.dedup();
    list
}

/// Saves the form's settings into `provdesk.toml` and reopens the desk with them, so the
/// rest of the app (builds, server address) sees the new values at once. Servers that were
/// running are restarted with the new settings (and the Live screen's overrides, if any):
/// a technician who changes a port or the allow-list expects it to apply.
#[tauri::command]
pub async fn save_settings(
    state: State<'_, AppState>,
    settings: DeskSettings,
) -> ApiResult<SettingsSaved> {
    let session = state.session();
    let root = session.desk().root().to_path_buf();
    // Own certificate files are checked before anything is written: a pair that does not load
    // would only fail later, when HTTPS starts.
    if let (Some(_), Some(_)) = (&settings.tls.cert, &settings.tls.key) {
        tls::load_or_generate(&root, &settings.tls, &[]).map_err(|e| {
            ApiError::invalid(format!(
                "{e}; pick a PEM certificate and its matching private key, or clear both to use the generated certificate"
            ))
        })?;
    }
    let before = session.desk().settings().clone();
    let saved = settings_edit::save_settings(&root, &settings).map_err(|e| match e {
        provdesk_core::Error::Diagnostics(list) => ApiError::diagnostics(
            "provdesk.toml was not changed: fix the fields marked below and save again",
            list,
        ),
        other => other.into(),
    })?;
    if saved == before {
        return Ok(SettingsSaved {
            settings: settings_dto(&session)?,
            message: "Nothing changed; provdesk.toml is as it was.".to_string(),
        });
    }
    let fresh = Session::open(&root)?;
    if let Err(e) = fresh.build() {
        eprintln!("warning: build after saving settings failed: {}", e.message);
    }
    let dto = settings_dto(&fresh)?;
    let servers = state.servers();
    let restart = servers.running_options().await;
    // Stops the running servers first: they serve the desk as it was opened.
    state.replace(fresh).await;
    let message = match restart {
        None => "Saved provdesk.toml (comments kept). The servers use the new settings when they start.".to_string(),
        Some(options) => match servers.start(state.session(), options).await {
            Ok(_) => "Saved provdesk.toml (comments kept) and restarted the servers with the new settings.".to_string(),
            Err(e) => format!(
                "Saved provdesk.toml (comments kept), but the servers could not restart: {}. Fix the settings, or start the servers on the Live screen.",
                e.message
            ),
        },
    };
    Ok(SettingsSaved {
        settings: dto,
        message,
    })
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
    Ok(dialog
        .blocking_pick_file()
        .and_then(|p| p.into_path().ok())
        .map(|p| p.display().to_string()))
}

/// Creates the desk's local CA and a server certificate for this machine's addresses (and the
/// public host), unless a valid one is there already.
#[tauri::command]
pub async fn generate_certificate(state: State<'_, AppState>) -> ApiResult<SettingsSaved> {
    let session = state.session();
    let settings = session.desk().settings();
    if settings.tls.cert.is_some() {
        return Err(ApiError::invalid(
            "the desk uses its own certificate files; clear tls.cert and tls.key and save first to use a generated one",
        ));
    }
    let mut hosts: Vec<String> = settings.server.public_host.iter().cloned().collect();
    hosts.extend(
        interfaces()
            .into_iter()
            .filter(|i| !i.loopback)
            .map(|i| i.ip),
    );
    let generated = provdesk_core::desk::TlsSettings {
        client_ca: settings.tls.client_ca.clone(),
        require_client_cert: settings.tls.require_client_cert,
        ..Default::default()
    };
    let material =
        tls::load_or_generate(session.desk().root(), &generated, &hosts).map_err(|e| {
            ApiError::internal(format!(
                "{e}; check that the desk's tls/ folder is writable"
            ))
        })?;
    let cert = session.desk().display_path(&material.cert_path);
    let message = if material.generated {
        format!(
            "Generated {} for {}. Export the CA and install it on browsers (phones accept it without).",
            cert.display(),
            if hosts.is_empty() {
                "localhost".to_string()
            } else {
                hosts.join(", ")
            }
        )
    } else {
        format!("{} is current; kept it.", cert.display())
    };
    Ok(SettingsSaved {
        settings: settings_dto(&session)?,
        message,
    })
}

/// Saves the local CA certificate where the technician chooses, to install on browsers and
/// phones that should trust the desk's HTTPS. `None` when cancelled.
#[tauri::command]
pub async fn export_ca(app: AppHandle, state: State<'_, AppState>) -> ApiResult<Option<String>> {
    let session = state.session();
    let pem = tls::export_ca(session.desk().root()).map_err(|e| {
        ApiError::internal(format!(
            "{e}; check that the desk's tls/ folder is writable"
        ))
    })?;
    let Some(path) = app
        .dialog()
        .file()
        .set_title("Export the ProvDesk CA certificate")
        .set_file_name("provdesk-ca.pem")
        .add_filter("PEM certificate", &["pem", "crt"])
        .blocking_save_file()
        .and_then(|p| p.into_path().ok())
    else {
        return Ok(None);
    };
    fs::write(&path, pem).map_err(|e| ApiError::io(&path, e))?;
    Ok(Some(path.display().to_string()))
}
