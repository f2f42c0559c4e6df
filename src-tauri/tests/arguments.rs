//! The app binary's command line, checked on the real executable: a bad argument is reported
//! and the app exits before it opens a window or touches a desk, so this runs without a display.
//!
//! Having an integration test also makes `cargo test --workspace` build the app binary itself,
//! with the same features as the rest of the workspace, which the window test (ui/e2e) runs.

use std::process::Command;

#[test]
fn a_desk_flag_without_a_folder_is_an_error_that_says_how() {
    let out = Command::new(env!("CARGO_BIN_EXE_provdesk-app"))
        .arg("--desk")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("run provdesk-app");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--desk needs a folder: --desk DIR"),
        "{stderr}"
    );
}
