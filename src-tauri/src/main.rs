//! ProvDesk's desktop app: plugin wiring, the open desk in managed state, and the command
//! table. Everything a command does is one call into provdesk-core (see `commands/`).
//!
//! Invariant: no domain logic in this crate; it maps core types to DTOs and back.

// No console window next to the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod dialogs;
mod dto;
mod error;
mod logging;
mod servers;
mod session;
mod window;

use tauri::Manager;

use crate::session::{AppState, Session};

fn main() {
    without_gpu_compositing();
    let desk_path =
        match session::desk_from_args(std::env::args(), std::env::var("PROVDESK_DESK").ok()) {
            Ok(path) => path,
            Err(e) => {
                eprintln!("error: {}", e.message);
                std::process::exit(2);
            }
        };
    tauri::Builder::default()
        // First, before anything opens the database: a second start focuses this window
        // instead of fighting over the desk and, later, the servers' ports.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.unminimize();
                let _ = window.set_focus();
            }
        }))
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .setup(move |app| {
            // First, so whatever the rest of the start-up reports is in the log.
            app.manage(logging::init(&logging::folder(app.handle())));
            if let Some(main) = app.get_webview_window("main") {
                window::restore(app.handle(), &main);
            }
            let session = Session::open(&desk_path).map_err(|e| e.message)?;
            let state = AppState::new(session);
            let session = state.session();
            app.manage(state);
            stop_on_signals(app.handle());
            // Build in the background so the window shows at once, even for a large desk; the
            // UI shows a banner until it is done, and problems in the profiles show up there.
            // At start it waits for the Live board to be read first and then runs at a lower
            // priority, so it does not compete with the window's first paint.
            commands::desk::opening_build_after_first_look(session);
            Ok(())
        })
        .on_window_event(|w, event| {
            if w.label() == "main" {
                window::on_event(w, event);
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::desk::desk_info,
            commands::desk::desk_build_status,
            commands::desk::open_desk,
            commands::desk::choose_folder,
            commands::desk::pick_csv_file,
            commands::desk::reveal_in_desk,
            commands::diagnostics::diagnostics_log,
            commands::diagnostics::reveal_log_folder,
            commands::events::desk_subscribe,
            commands::devices::list_devices,
            commands::devices::device_detail,
            commands::devices::add_device,
            commands::devices::update_device,
            commands::devices::remove_devices,
            commands::devices::assign_profile,
            commands::devices::import_csv,
            commands::devices::enroll,
            commands::devices::enroll_check,
            commands::timeline::device_history,
            commands::timeline::device_diagnosis,
            commands::timeline::resync_devices,
            commands::report::export_report,
            commands::profiles::list_profiles,
            commands::profiles::read_profile,
            commands::profiles::profile_revision,
            commands::profiles::save_profile_value,
            commands::profiles::save_profile_raw,
            commands::profiles::create_profile,
            commands::profiles::catalog_entries,
            commands::profiles::catalog_search,
            commands::profiles::build,
            // Live screen.
            commands::live::start_servers,
            commands::live::stop_servers,
            commands::live::server_status,
            commands::live::live_board,
            commands::live::live_history,
            commands::live::live_subscribe,
            commands::live::lan_interfaces,
            commands::live::dhcp_preflight,
            commands::live::set_dhcp,
            commands::live::set_plug_and_play,
            commands::live::dhcp_leases,
            commands::settings::read_settings,
            commands::settings::validate_settings,
            commands::settings::save_settings,
            commands::settings::pick_file,
            commands::settings::generate_certificate,
            commands::settings::export_ca,
            commands::firmware::firmware_overview,
            commands::firmware::pick_firmware_file,
            commands::firmware::add_firmware,
            commands::firmware::map_firmware,
            commands::firmware::remove_firmware,
        ])
        .build(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("error: ProvDesk could not start: {e}");
            std::process::exit(1);
        })
        .run(|app, event| {
            if let tauri::RunEvent::Exit = event {
                window::save(app);
            }
            // Leaving with the servers running: stop them so every request is in the log.
            if let tauri::RunEvent::Exit = event
                && let Some(state) = app.try_state::<AppState>()
            {
                let servers = state.servers();
                if let Err(e) = tauri::async_runtime::block_on(async move { servers.stop().await })
                {
                    tracing::warn!("stopping the servers: {}", e.message);
                }
            }
        });
}

/// Tauri installs no signal handlers, so a SIGTERM (the session ending) or a Ctrl-C in the
/// terminal that started the app would end it at once, with the last fetches not yet in the
/// log. Leave the way closing the window does instead, through `RunEvent::Exit`.
fn stop_on_signals(app: &tauri::AppHandle) {
    let runtime = tauri::async_runtime::handle();
    let stop_requested = {
        let _inside = runtime.inner().enter();
        provdesk_serve::signals::stop_requested()
    };
    match stop_requested {
        Ok(stop) => {
            let app = app.clone();
            runtime.spawn(async move {
                stop.await;
                app.exit(0);
            });
        }
        Err(e) => {
            tracing::warn!("{e}; quit from the window to keep every fetch in the log")
        }
    }
}

/// WebKitGTK composites the page through GL; without a GPU (a laptop's software renderer, a
/// virtual display) that costs about 100 MB in the web process for a window of forms and
/// tables that gains nothing from it, and it is a known source of blank windows on some
/// drivers. Off by default; `PROVDESK_COMPOSITING=on` (or setting
/// `WEBKIT_DISABLE_COMPOSITING_MODE` yourself) leaves WebKit's own choice.
fn without_gpu_compositing() {
    #[cfg(target_os = "linux")]
    {
        const WEBKIT: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";
        let keep = std::env::var("PROVDESK_COMPOSITING").is_ok_and(|v| v == "on");
        if !keep && std::env::var_os(WEBKIT).is_none() {
            // SAFETY: the first thing `main` does, before any other thread exists.
            unsafe { std::env::set_var(WEBKIT, "1") };
        }
    }
}
